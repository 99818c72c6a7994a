/* attention.c — causal attention kernels (see attention.h): rotary embedding, blocked GQA
 * attention forward/backward through GEMM strips, and decode attention over a KV cache. */
#include "kernels/attention.h"
#include "kernels/ops.h"
#include <cblas.h>
#include <omp.h>
#include <string.h>

/* `omp simd` marks the softmax loops whose reductions may be reordered; clang reports such a
 * loop as a warning when it does not vectorize it (at -O1, or around a libm call). */
#ifdef __clang__
#pragma clang diagnostic ignored "-Wpass-failed"
#endif


void RNAME(rope_table)(real *cs, real *sn, int64_t pos0, int64_t T, int64_t r, double base) {
    int64_t h = r / 2;
    for (int64_t j = 0; j < h; j++) {
        /* inv_freq_j = 1 / base^(2j / r) */
        real inv = (real)1 / (real)pow((real)base, (real)(2 * j) / (real)r);
        for (int64_t t = 0; t < T; t++) {
            real th = (real)(pos0 + t) * inv;
            cs[t * h + j] = RCOS(th);
            sn[t * h + j] = RSIN(th);
        }
    }
}

void RNAME(rope_apply)(real *x, int64_t ld, int64_t B, int64_t T, int64_t nh, int64_t hd,
                       int64_t r, const real *cs, const real *sn, int inverse) {
    int64_t h = r / 2;
    if (h == 0) return;
    real sg = inverse ? -1 : 1;
#pragma omp parallel for schedule(static) if (B * T * nh * h > 16384)
    for (int64_t row = 0; row < B * T; row++) {
        const real *c = cs + (row % T) * h, *s = sn + (row % T) * h;
        for (int64_t hh = 0; hh < nh; hh++) {
            real *x1 = x + row * ld + hh * hd, *x2 = x1 + h;
            for (int64_t j = 0; j < h; j++) {
                real a = x1[j], b = x2[j], sj = sg * s[j];
                x1[j] = a * c[j] - b * sj;
                x2[j] = a * sj + b * c[j];
            }
        }
    }
}

/* First token of the segment of token t (sg: one row's segment ids). */
static int64_t seg_first(const int32_t *sg, int64_t t) {
    int64_t f = t;
    while (f > 0 && sg[f - 1] == sg[t]) f--;
    return f;
}

/* Key window of a strip: keys k0 .. r0+nr-1, k0 = the first key any of its rows can see (0
 * without segments).  Row i of the strip sees keys lo .. nv-1 of the window, updated row by
 * row: lo moves to the row itself where a new segment starts. */
static int64_t strip_k0(const attn_shape *s, int64_t b, int64_t r0) {
    return s->seg ? seg_first(s->seg + b * s->T, r0) : 0;
}
static int64_t strip_lo(const attn_shape *s, int64_t b, int64_t t, int64_t k0, int64_t lo_prev,
                        int first) {
    const int32_t *sg = s->seg ? s->seg + b * s->T : NULL;
    if (sg && !first && sg[t] != sg[t - 1]) return t - k0;
    return first ? 0 : lo_prev;
}

/* One strip of the forward: query rows r0 .. r0+nr-1 of (b, h) against keys k0 .. r0+nr-1.
 * S: [nr, n - k0] work, il: [nr] work. */
static void strip_forward(const attn_shape *s, const real *q, const real *k, const real *v,
                          int64_t ld, real *o, int64_t ldo, real *lse, int64_t b, int64_t h,
                          int64_t r0, int64_t nr, real *S, real *il) {
    int64_t T = s->T, hd = s->hd, g = h / (s->Hq / s->Hk), n = r0 + nr;
    int64_t k0 = strip_k0(s, b, r0), nk = n - k0, lo = 0;
    const real *Q = q + (b * T + r0) * ld + h * hd;
    const real *K = k + (b * T + k0) * ld + g * hd;
    const real *V = v + (b * T + k0) * ld + g * hd;
    real *O = o + (b * T + r0) * ldo + h * hd;
    /* S = scale Q K^T  [nr, nk] */
    RNAME(gemm)(0, 1, nr, nk, hd, (real)s->scale, Q, ld, K, ld, 0, S, nk);
    for (int64_t i = 0; i < nr; i++) {
        real *row = S + i * nk;
        int64_t nv = r0 + i + 1 - k0; /* visible keys: lo .. nv-1 */
        lo = strip_lo(s, b, r0 + i, k0, lo, i == 0);
        real m = row[lo];
#pragma omp simd reduction(max : m)
        for (int64_t j = lo + 1; j < nv; j++) m = row[j] > m ? row[j] : m;
        /* p_j = exp(s_j - m), l = sum_j p_j */
        real l = 0;
#pragma omp simd reduction(+ : l)
        for (int64_t j = lo; j < nv; j++) {
            real p = RNAME(vexp)(row[j] - m);
            row[j] = p;
            l += p;
        }
        for (int64_t j = 0; j < lo; j++) row[j] = 0;
        for (int64_t j = nv; j < nk; j++) row[j] = 0;
        il[i] = (real)1 / l;
        lse[(b * s->Hq + h) * T + r0 + i] = m + RLOG(l);
    }
    /* O = diag(1/l) P V  [nr, hd] */
    RNAME(gemm)(0, 0, nr, hd, nk, 1, S, nk, V, ld, 0, O, ldo);
    for (int64_t i = 0; i < nr; i++)
        for (int64_t d = 0; d < hd; d++) O[i * ldo + d] *= il[i];
}

static int worker_count(int nwork, int64_t ntask) {
    int nt = omp_get_max_threads();
    if (nt > nwork) nt = nwork;
    if (nt > ntask) nt = (int)ntask;
    return nt < 1 ? 1 : nt;
}

void RNAME(attn_forward)(const attn_shape *s, const real *q, const real *k, const real *v,
                         int64_t ld, real *o, int64_t ldo, real *lse, real *work, int nwork) {
    int64_t T = s->T, bq = s->bq < T ? s->bq : T;
    if (s->B <= 0 || T <= 0) return;
    int64_t nblk = (T + bq - 1) / bq, ntask = s->B * s->Hq * nblk;
    int64_t wsz = attn_work_size(s, 0);
    int nt = worker_count(nwork, ntask), nblas = ssmlm_blas_serial_begin(nt);
#pragma omp parallel num_threads(nt)
    {
        real *S = work + (int64_t)omp_get_thread_num() * wsz, *il = S + bq * T;
        /* the longest strips (last query blocks) first, for balance */
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < ntask; task++) {
            int64_t blk = nblk - 1 - task % nblk, bh = task / nblk;
            int64_t r0 = blk * bq, nr = T - r0 < bq ? T - r0 : bq;
            strip_forward(s, q, k, v, ld, o, ldo, lse, bh / s->Hq, bh % s->Hq, r0, nr, S, il);
        }
    }
    ssmlm_blas_serial_end(nblas);
}

/* One strip of the backward: query rows r0 .. r0+nr-1 of (b, h).  Writes dq of these rows and
 * adds into dk, dv of keys k0 .. r0+nr-1.  P, dP: [nr, n - k0] work, D: [nr] work. */
static void strip_backward(const attn_shape *s, const real *q, const real *k, const real *v,
                           int64_t ld, const real *o, int64_t ldo, const real *dout,
                           int64_t lddo, const real *lse, real *dq, real *dk, real *dv,
                           int64_t ldd, int64_t b, int64_t h, int64_t r0, int64_t nr, real *P,
                           real *dP, real *D) {
    int64_t T = s->T, hd = s->hd, g = h / (s->Hq / s->Hk), n = r0 + nr;
    int64_t k0 = strip_k0(s, b, r0), nk = n - k0, lo = 0;
    real scale = (real)s->scale;
    const real *Q = q + (b * T + r0) * ld + h * hd;
    const real *K = k + (b * T + k0) * ld + g * hd;
    const real *V = v + (b * T + k0) * ld + g * hd;
    const real *O = o + (b * T + r0) * ldo + h * hd;
    const real *dO = dout + (b * T + r0) * lddo + h * hd;
    const real *L = lse + (b * s->Hq + h) * T + r0;
    /* D_i = do_i . o_i */
    for (int64_t i = 0; i < nr; i++) {
        real acc = 0;
        for (int64_t d = 0; d < hd; d++) acc += dO[i * lddo + d] * O[i * ldo + d];
        D[i] = acc;
    }
    /* P = exp(scale Q K^T - lse), causal (and within the segment) */
    RNAME(gemm)(0, 1, nr, nk, hd, scale, Q, ld, K, ld, 0, P, nk);
    for (int64_t i = 0; i < nr; i++) {
        real *row = P + i * nk, li = L[i];
        int64_t nv = r0 + i + 1 - k0;
        lo = strip_lo(s, b, r0 + i, k0, lo, i == 0);
#pragma omp simd
        for (int64_t j = lo; j < nv; j++) row[j] = RNAME(vexp)(row[j] - li);
        for (int64_t j = 0; j < lo; j++) row[j] = 0;
        for (int64_t j = nv; j < nk; j++) row[j] = 0;
    }
    /* dP = dO V^T, then dS = P (dP - D) in place */
    RNAME(gemm)(0, 1, nr, nk, hd, 1, dO, lddo, V, ld, 0, dP, nk);
    for (int64_t i = 0; i < nr; i++) {
        real *pr = P + i * nk, *dr = dP + i * nk, di = D[i];
#pragma omp simd
        for (int64_t j = 0; j < nk; j++) dr[j] = pr[j] * (dr[j] - di);
    }
    /* dq = scale dS K;  dk += scale dS^T Q;  dv += P^T dO */
    real *dQ = dq + (b * T + r0) * ldd + h * hd;
    real *dK = dk + (b * T + k0) * ldd + g * hd, *dV = dv + (b * T + k0) * ldd + g * hd;
    RNAME(gemm)(0, 0, nr, hd, nk, scale, dP, nk, K, ld, 0, dQ, ldd);
    RNAME(gemm)(1, 0, nk, hd, nr, scale, dP, nk, Q, ld, 1, dK, ldd);
    RNAME(gemm)(1, 0, nk, hd, nr, 1, P, nk, dO, lddo, 1, dV, ldd);
}

void RNAME(attn_backward)(const attn_shape *s, const real *q, const real *k, const real *v,
                          int64_t ld, const real *o, int64_t ldo, const real *dout, int64_t lddo,
                          const real *lse, real *dq, real *dk, real *dv, int64_t ldd, real *work,
                          int nwork) {
    int64_t T = s->T, bq = s->bq < T ? s->bq : T, hd = s->hd, G = s->Hq / s->Hk;
    if (s->B <= 0 || T <= 0) return;
    int64_t nblk = (T + bq - 1) / bq, ntask = s->B * s->Hk;
    int64_t wsz = attn_work_size(s, 1);
    int nt = worker_count(nwork, ntask), nblas = ssmlm_blas_serial_begin(nt);
    /* one task per (sequence, kv head): it owns dk, dv of that head, so no races */
#pragma omp parallel num_threads(nt)
    {
        real *P = work + (int64_t)omp_get_thread_num() * wsz, *dP = P + bq * T, *D = dP + bq * T;
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < ntask; task++) {
            int64_t b = task / s->Hk, g = task % s->Hk;
            for (int64_t t = 0; t < T; t++) {
                memset(dk + (b * T + t) * ldd + g * hd, 0, (size_t)hd * sizeof(real));
                memset(dv + (b * T + t) * ldd + g * hd, 0, (size_t)hd * sizeof(real));
            }
            for (int64_t h = g * G; h < (g + 1) * G; h++)
                for (int64_t blk = 0; blk < nblk; blk++) {
                    int64_t r0 = blk * bq, nr = T - r0 < bq ? T - r0 : bq;
                    strip_backward(s, q, k, v, ld, o, ldo, dout, lddo, lse, dq, dk, dv, ldd, b, h,
                                   r0, nr, P, dP, D);
                }
        }
    }
    ssmlm_blas_serial_end(nblas);
}

/* ---- decode ----------------------------------------------------------------------------
 * Work item = one key span of one sequence, all heads: it walks the span's cache rows in
 * order (each row holds every kv head), reads each k and v once for the G query heads that
 * share it, and keeps an online softmax per query head over chunks of keys.  The span split
 * depends only on the sequence's own length, so the result does not depend on the thread
 * count or on the other sequences of the batch. */

/* Keys per chunk of the online softmax: 64, fewer with many heads (the item's score buffer
 * [Hq, chunk] stays within DECODE_SCORES reals, or one key per head). */
#define DECODE_SCORES 2048
static int64_t decode_chunk(int64_t Hq) {
    int64_t c = DECODE_SCORES / Hq;
    return c < 1 ? 1 : c > 64 ? 64 : c;
}

/* Software prefetch this many bytes of cache rows ahead, into L2: the row-interleaved K and V
 * (each pass reads half of every row) defeat the hardware prefetchers.  Measured on one core
 * of the benchmark machine (AMD EPYC, Zen 3), 12 heads x 64 dims, 16K keys: 12.7 -> 6.5 ms. */
#define DECODE_PREFETCH_BYTES (128 * 1024)
#define DECODE_LINE (64 / (int64_t)sizeof(real))

/* Requests the n reals at p into L2 (no fault, no effect on results). */
static inline void prefetch_row(const real *p, int64_t n) {
    for (int64_t e = 0; e < n; e += DECODE_LINE) __builtin_prefetch(p + e, 0, 2);
}

/* Work of one item: acc [Hq, hd] | m [Hq] | l [Hq] | scores [Hq, chunk]. */
static int64_t decode_item_size(int64_t Hq, int64_t hd) { return Hq * (hd + 2 + decode_chunk(Hq)); }

int64_t RNAME(attn_decode_work_size)(int64_t B, int64_t Hq, int64_t hd) {
    return B * ATTN_DECODE_SPLITS * decode_item_size(Hq, hd);
}

/* Spans of a sequence of n keys: at most ATTN_DECODE_SPLITS, each >= ATTN_DECODE_MIN_SPAN
 * keys rounded to a chunk multiple (the last one shorter).  Returns the count, *span the
 * keys per span. */
static int64_t decode_spans(int64_t n, int64_t chunk, int64_t *span) {
    int64_t ns = (n + ATTN_DECODE_MIN_SPAN - 1) / ATTN_DECODE_MIN_SPAN;
    ns = ns < 1 ? 1 : ns > ATTN_DECODE_SPLITS ? ATTN_DECODE_SPLITS : ns;
    int64_t sp = (n + ns - 1) / ns;
    sp = (sp + chunk - 1) / chunk * chunk;
    *span = sp;
    return (n + sp - 1) / sp;
}

/* a . b with one vector register of lanes (64 bytes) and a halving tree at the end, written
 * out so that the compiler vectorizes it without reassociating anything itself (gcc 12 ends an
 * `omp simd` reduction with a serial sum of the lanes). */
#define DOT_LANES (64 / (int64_t)sizeof(real))
static inline real dot(const real *restrict a, const real *restrict b, int64_t n) {
    real p[DOT_LANES] = {0}, s = 0;
    int64_t d = 0;
    for (; d + DOT_LANES <= n; d += DOT_LANES)
        for (int64_t e = 0; e < DOT_LANES; e++) p[e] += a[d + e] * b[d + e];
    for (; d < n; d++) s += a[d] * b[d];
    for (int64_t w = DOT_LANES / 2; w >= 1; w /= 2)
        for (int64_t e = 0; e < w; e++) p[e] += p[e + w];
    return s + p[0];
}

/* y += a x */
static inline void axpy(real *restrict y, real a, const real *restrict x, int64_t n) {
#pragma omp simd
    for (int64_t d = 0; d < n; d++) y[d] += a * x[d];
}

#if !REAL_IS_F64
/* ---- fp32 register tiles for GQA decode (head dims of 16, 32, 64 or 128) ----------------
 * With GQA the plain loops below cost ~G times more instructions per byte of cache than
 * without (each head re-reads its k and v rows from L1 and keeps its accumulator in memory);
 * these keep the query rows of up to 4 heads of a group, or their output accumulators, in
 * vector registers across a chunk of keys, load each k and v row once per group, and reduce
 * each score with a 4-step shuffle tree.  Vectors of 16 floats (GCC/Clang vector extensions:
 * one AVX-512 register, two AVX ones elsewhere).  hybrid-130m (12 heads, 3 kv heads, 64
 * dims), batch 8 x 16K: 50-55 -> 42-43 ms per step. */
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

static inline __attribute__((always_inline)) v16f ld16(const float *p) {
    v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* lanes of v permuted by constant indices (gcc and clang spell it differently) */
#if defined(__clang__)
#define SHUF16(v, ...) __builtin_shufflevector(v, v, __VA_ARGS__)
#else
#define SHUF16(v, ...) __builtin_shuffle(v, (v16i){__VA_ARGS__})
#endif

static inline __attribute__((always_inline)) float hsum16(v16f v) {
    v += SHUF16(v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    v += SHUF16(v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
    v += SHUF16(v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    v += SHUF16(v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    return v[0];
}

/* Rows to request into L2 while a tile walks a chunk: row j of the tile's walk requests the
 * cache row at p + j * ldt (n reals) for j < rows; spread over the walk (a burst of a chunk's
 * worth of prefetches at once stalls on the miss queues). */
typedef struct tile_prefetch {
    const float *p;
    int64_t rows, ldt, n;
} tile_prefetch;

static inline __attribute__((always_inline)) void tile_prefetch_row(const tile_prefetch *pf, int64_t j) {
    if (pf && j < pf->rows) prefetch_row(pf->p + j * pf->ldt, pf->n);
}

/* sc[h * chunk + j] = scale q_h . k_j for the hp heads h0.. of kv head g, keys c0 .. c0+nc-1;
 * nv = hd / 16 vectors per row (hp * nv <= 16). */
static inline __attribute__((always_inline)) void tile_scores(const float *q, const float *K, int64_t ldt,
                                                              int64_t c0, int64_t nc, int64_t g, int64_t h0,
                                                              int hp, int nv, float scale, float *sc,
                                                              int64_t chunk, const tile_prefetch *pf) {
    int64_t hd = 16 * (int64_t)nv;
    v16f qv[4][8];
    for (int h = 0; h < hp; h++)
        for (int v = 0; v < nv; v++) qv[h][v] = ld16(q + (h0 + h) * hd + 16 * v);
    for (int64_t j = 0; j < nc; j++) {
        tile_prefetch_row(pf, j);
        const float *kr = K + (c0 + j) * ldt + g * hd;
        v16f kv[8];
        for (int v = 0; v < nv; v++) kv[v] = ld16(kr + 16 * v);
        for (int h = 0; h < hp; h++) {
            v16f a = qv[h][0] * kv[0];
            for (int v = 1; v < nv; v++) a += qv[h][v] * kv[v];
            sc[(h0 + h) * chunk + j] = scale * hsum16(a);
        }
    }
}

/* acc_h += sum_j sc[h * chunk + j] v_j for the hp heads h0.. of kv head g. */
static inline __attribute__((always_inline)) void tile_values(float *acc, const float *V, int64_t ldt, int64_t c0,
                                                              int64_t nc, int64_t g, int64_t h0, int hp, int nv,
                                                              const float *sc, int64_t chunk,
                                                              const tile_prefetch *pf) {
    int64_t hd = 16 * (int64_t)nv;
    v16f av[4][8];
    for (int h = 0; h < hp; h++)
        for (int v = 0; v < nv; v++) av[h][v] = ld16(acc + (h0 + h) * hd + 16 * v);
    for (int64_t j = 0; j < nc; j++) {
        tile_prefetch_row(pf, j);
        const float *vr = V + (c0 + j) * ldt + g * hd;
        v16f vv[8];
        for (int v = 0; v < nv; v++) vv[v] = ld16(vr + 16 * v);
        for (int h = 0; h < hp; h++) {
            float p = sc[(h0 + h) * chunk + j];
            for (int v = 0; v < nv; v++) av[h][v] += p * vv[v];
        }
    }
    for (int h = 0; h < hp; h++)
        for (int v = 0; v < nv; v++) memcpy(acc + (h0 + h) * hd + 16 * v, &av[h][v], sizeof av[h][v]);
}

/* Both passes over heads [h0, h0 + n) of kv head g, in tiles of up to hpmax heads; nv a
 * constant at each call site. */
#define TILE_HEADS(CALL, HPMAX)                                                                                     \
    for (int64_t h = h0; h < h0 + n;) {                                                                          \
        int64_t r = h0 + n - h;                                                                                  \
        int hp = r >= (HPMAX) ? (HPMAX) : (int)r;                                                                \
        switch (hp) {                                                                                            \
        case 4: CALL(4); break;                                                                                  \
        case 3: CALL(3); break;                                                                                  \
        case 2: CALL(2); break;                                                                                  \
        default: CALL(1); break;                                                                                 \
        }                                                                                                        \
        h += hp;                                                                                                 \
    }

static inline __attribute__((always_inline)) void group_scores(int nv, const float *q, const float *K, int64_t ldt,
                                                               int64_t c0, int64_t nc, int64_t g, int64_t h0,
                                                               int64_t n, float scale, float *sc, int64_t chunk,
                                                               const tile_prefetch *pf) {
#define SC(HP) tile_scores(q, K, ldt, c0, nc, g, h, HP, nv, scale, sc, chunk, h == h0 ? pf : NULL)
    TILE_HEADS(SC, nv == 8 ? 2 : 4)
#undef SC
}

static inline __attribute__((always_inline)) void group_values(int nv, float *acc, const float *V, int64_t ldt,
                                                               int64_t c0, int64_t nc, int64_t g, int64_t h0,
                                                               int64_t n, const float *sc, int64_t chunk,
                                                               const tile_prefetch *pf) {
#define VA(HP) tile_values(acc, V, ldt, c0, nc, g, h, HP, nv, sc, chunk, h == h0 ? pf : NULL)
    TILE_HEADS(VA, nv == 8 ? 2 : 4)
#undef VA
}
#undef TILE_HEADS

/* Scores (values = 0) or values (values = 1) of a chunk for every kv head; 0 when hd has no
 * tile (the caller then runs the plain loops). */
static int tiled_chunk(int values, int64_t hd, const float *q, const float *KV, int64_t ldt, int64_t c0, int64_t nc,
                       int64_t Hk, int64_t G, float scale, float *sc, float *acc, int64_t chunk,
                       const tile_prefetch *pf0) {
    for (int64_t g = 0; g < Hk; g++) {
        int64_t h0 = g * G;
        const tile_prefetch *pf = g == 0 ? pf0 : NULL; /* the first walk over the chunk */
        switch (hd) {
#define CASE(NV)                                                                                                  \
    case 16 * NV:                                                                                                 \
        if (values) group_values(NV, acc, KV, ldt, c0, nc, g, h0, G, sc, chunk, pf);                              \
        else group_scores(NV, q, KV, ldt, c0, nc, g, h0, G, scale, sc, chunk, pf);                                \
        break;
            CASE(1) CASE(2) CASE(4) CASE(8)
#undef CASE
        default: return 0;
        }
    }
    return 1;
}
#endif

/* Keys j0 .. j1-1 (j0 < j1) of one sequence for every query head h (kv head g = h / G):
 *   q: [Hq, hd];  key j of kv head g at K + j*ldt + g*hd, value likewise at V;
 *   out (decode_item_size reals): acc [Hq, hd] = sum_j exp(s_hj - m_h) v_j |
 *        m [Hq] = max_j s_hj | l [Hq] = sum_j exp(s_hj - m_h) | scores [Hq, chunk],
 *   s_hj = scale q_h . k_j. */
static void decode_span(const real *q, const real *K, const real *V, int64_t ldt, int64_t j0,
                        int64_t j1, int64_t Hq, int64_t Hk, int64_t hd, real scale, real *out) {
    int64_t G = Hq / Hk, chunk = decode_chunk(Hq), kvw = Hk * hd;
    int64_t ahead = DECODE_PREFETCH_BYTES / (ldt * (int64_t)sizeof(real));
    ahead = ahead < 4 ? 4 : ahead;
    real *acc = out, *m = acc + Hq * hd, *l = m + Hq, *sc = l + Hq;
    /* fp32, GQA (G >= 2) with a head dim of 16, 32, 64 or 128: the register tiles.  Without GQA
     * the plain loops read each cache row once, in order, and were measured faster
     * (transformer-130m, batch 8 x 4K: 106 vs 114 ms per step) */
    int tiled = !REAL_IS_F64 && G >= 2 && (hd == 16 || hd == 32 || hd == 64 || hd == 128);
    for (int64_t i = 0; i < Hq * (hd + 2); i++) out[i] = 0;
    for (int64_t c0 = j0; c0 < j1; c0 += chunk) {
        int64_t nc = j1 - c0 < chunk ? j1 - c0 : chunk;
        /* s_hj = scale q_h . k_j  [Hq, nc], row by row through the cache */
        if (tiled) {
#if !REAL_IS_F64
            tile_prefetch pf = {K + (c0 + ahead) * ldt, j1 - (c0 + ahead), ldt, kvw};
            tiled_chunk(0, hd, q, K, ldt, c0, nc, Hk, G, scale, sc, NULL, chunk, &pf);
#endif
        } else
            for (int64_t j = 0; j < nc; j++) {
                const real *kr = K + (c0 + j) * ldt;
                if (c0 + j + ahead < j1) prefetch_row(kr + ahead * ldt, kvw);
                for (int64_t g = 0; g < Hk; g++)
                    for (int64_t h = g * G; h < (g + 1) * G; h++)
                        sc[h * chunk + j] = scale * dot(q + h * hd, kr + g * hd, hd);
            }
        for (int64_t h = 0; h < Hq; h++) {
            real *s = sc + h * chunk, mc = s[0];
#pragma omp simd reduction(max : mc)
            for (int64_t j = 1; j < nc; j++) mc = s[j] > mc ? s[j] : mc;
            /* running max; rescale what was accumulated by exp(m_old - m_new) */
            if (c0 == j0 || mc > m[h]) {
                real f = c0 == j0 ? 0 : RNAME(vexp)(m[h] - mc);
                l[h] *= f;
                for (int64_t d = 0; d < hd; d++) acc[h * hd + d] *= f;
                m[h] = mc;
            }
            /* p_hj = exp(s_hj - m_h), l_h += sum_j p_hj */
            real mh = m[h], lc = 0;
#pragma omp simd reduction(+ : lc)
            for (int64_t j = 0; j < nc; j++) {
                real p = RNAME(vexp)(s[j] - mh);
                s[j] = p;
                lc += p;
            }
            l[h] += lc;
        }
        /* acc_h += sum_j p_hj v_j, row by row */
        if (tiled) {
#if !REAL_IS_F64
            tile_prefetch pf = {V + (c0 + ahead) * ldt, j1 - (c0 + ahead), ldt, kvw};
            tiled_chunk(1, hd, NULL, V, ldt, c0, nc, Hk, G, 0, sc, acc, chunk, &pf);
#endif
        } else
            for (int64_t j = 0; j < nc; j++) {
                const real *vr = V + (c0 + j) * ldt;
                if (c0 + j + ahead < j1) prefetch_row(vr + ahead * ldt, kvw);
                for (int64_t g = 0; g < Hk; g++)
                    for (int64_t h = g * G; h < (g + 1) * G; h++)
                        axpy(acc + h * hd, sc[h * chunk + j], vr + g * hd, hd);
            }
    }
}

void RNAME(attn_decode)(const real *q, int64_t ldq, const real *kc, const real *vc, int64_t ldb,
                        int64_t ldt, const int64_t *last, int64_t B, int64_t Hq, int64_t Hk,
                        int64_t hd, double scale, real *o, int64_t ldo, real *work) {
    if (B <= 0) return;
    int64_t chunk = decode_chunk(Hq), isz = decode_item_size(Hq, hd);
    int64_t nitem = B * ATTN_DECODE_SPLITS, nbusy = 0;
    for (int64_t b = 0; b < B; b++) {
        int64_t span;
        nbusy += decode_spans(last[b] + 1, chunk, &span);
    }
    int nt = omp_get_max_threads();
    nt = nt > nbusy ? (int)nbusy : nt;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < nitem; it++) {
            int64_t b = it / ATTN_DECODE_SPLITS, sp = it % ATTN_DECODE_SPLITS, span;
            int64_t n = last[b] + 1, ns = decode_spans(n, chunk, &span);
            if (sp >= ns) continue;
            int64_t j1 = (sp + 1) * span < n ? (sp + 1) * span : n;
            decode_span(q + b * ldq, kc + b * ldb, vc + b * ldb, ldt, sp * span, j1, Hq, Hk, hd,
                        (real)scale, work + it * isz);
        }
        /* o_h = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s,  M = max_s m_s */
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < B * Hq; bh++) {
            int64_t b = bh / Hq, h = bh % Hq, span, ns = decode_spans(last[b] + 1, chunk, &span);
            const real *p0 = work + b * ATTN_DECODE_SPLITS * isz;
            real M = p0[Hq * hd + h], L = 0, *oh = o + b * ldo + h * hd;
            for (int64_t sp = 1; sp < ns; sp++) {
                real ms = p0[sp * isz + Hq * hd + h];
                M = ms > M ? ms : M;
            }
            for (int64_t d = 0; d < hd; d++) oh[d] = 0;
            for (int64_t sp = 0; sp < ns; sp++) {
                const real *ps = p0 + sp * isz;
                real f = RNAME(vexp)(ps[Hq * hd + h] - M);
                L += f * ps[Hq * hd + Hq + h];
                axpy(oh, f, ps + h * hd, hd);
            }
            real il = (real)1 / L;
            for (int64_t d = 0; d < hd; d++) oh[d] *= il;
        }
    }
}

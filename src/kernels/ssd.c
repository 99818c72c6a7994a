/* ssd.c — Mamba-2 SSD kernels (see ssd.h): the recurrence, the chunked forward and the chunked
 * backward (math.md §2 step 5, §3, §4.3).
 *
 * Chunked form.  Time is cut into chunks of Q tokens; the heads of one group are cut into
 * blocks of about SSD_BLOCK_COLS columns (hb heads of width P).  A block is one sequence b,
 * one group g and its heads; it walks its chunks in order carrying the state transposed,
 * St [N, hb P], so that all heads of the block share every GEMM:
 *   cs_l = sum_{k<=l} dt_k A  (per head, inside the chunk),  Lambda = cs_{q-1}
 *   Y_l  = sum_{s<=l} (C_l.B_s) exp(cs_l - cs_s) X_s + exp(cs_l) S C_l,   X_s = dt_s x_s
 *   S'   = exp(Lambda) S + sum_s exp(Lambda - cs_s) X_s B_s^T
 * The decay matrix is never formed: with m = the middle of the chunk's cs range,
 * exp(cs_l - cs_s) = e_l f_s where e_l = exp(cs_l - m), f_s = exp(m - cs_s), so
 *   Y   = diag(e) [tril(C B^T) | C] [X' ; exp(m) St]       X' = diag(f) X       (one GEMM)
 *   St' = exp(Lambda - m) (exp(m) St + B^T X')                                   (one GEMM)
 * with tril(C B^T) computed once per chunk and group.  The split needs |cs_l - m| bounded
 * (SSD_HALF_RANGE); a chunk whose decay range is wider for some head of the block is cut
 * into shorter segments that each satisfy it (chunking is exact for any cut).
 *
 * The backward recomputes the chunk states, then walks the chunks in reverse with the
 * state cotangent G (math.md §4.3, chunked), in the same split-decay form.
 *
 * Segment boundaries (d->seg) cut the chunks the same way: a segment that starts a new
 * document starts from the zero state (forward), and the state cotangent it hands back to the
 * tokens before it is zero (backward); the recurrence uses a decay of 0 at such a token. */
#include "kernels/ssd.h"
#include "kernels/ops.h"
#include <cblas.h>
#include <omp.h>
#include <string.h>

#if defined(__clang__)
/* clang reports `omp simd` loops it leaves scalar (e.g. at -O1 in the sanitizer build) as a
 * warning; that is an optimization report, not a problem in the code. */
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

/* Largest |cs_l - m| of a segment: keeps e_l, f_s and their products far from overflow. */
#if REAL_IS_F64
#define SSD_HALF_RANGE 300.0
#else
#define SSD_HALF_RANGE 60.0f
#endif
/* Target width hb P of a head block (the N dimension of the per-chunk GEMMs); a compile-time
 * tuning knob, like SSD_SCAN_ROWS below. */
#ifndef SSD_BLOCK_COLS
#define SSD_BLOCK_COLS 512
#endif

ssd_dims RNAME(ssd_dims_make)(int64_t B, int64_t T, int64_t H, int64_t P, int64_t G, int64_t N,
                              int64_t Q) {
    ssd_dims d = {B, T, H, P, G, N, Q, H * P, H * P, G * N, H * P * N, NULL};
    return d;
}

/* Token t of sequence b (row = b T + t) starts a new segment: the state before it is 0. */
static inline int seg_reset(const ssd_dims *d, int64_t row, int64_t t) {
    return d->seg && t > 0 && d->seg[row] != d->seg[row - 1];
}

/* ---- recurrence ------------------------------------------------------------------------- */

/* One token of the recurrence on rows [p0, p1) of a head's state S [P, N]:
 * S[p,:] = da S[p,:] + dtv x[p] B;  y[p] = S[p,:].C + Dh x[p]   (x, y: the head's [P] rows).
 * Four rows per pass share the loads of B and C and keep four independent sums. */
static void scan_rows(real *S, int64_t N, int64_t p0, int64_t p1, real da, real dtv,
                      const real *x, const real *Br, const real *Cr, real Dh, real *y) {
    int64_t p = p0;
    for (; p + 4 <= p1; p += 4) {
        real *s0 = S + p * N, *s1 = s0 + N, *s2 = s1 + N, *s3 = s2 + N;
        const real u0 = dtv * x[p], u1 = dtv * x[p + 1], u2 = dtv * x[p + 2], u3 = dtv * x[p + 3];
        real a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
        for (int64_t n = 0; n < N; n++) {
            const real b = Br[n], c = Cr[n];
            const real v0 = da * s0[n] + u0 * b, v1 = da * s1[n] + u1 * b;
            const real v2 = da * s2[n] + u2 * b, v3 = da * s3[n] + u3 * b;
            s0[n] = v0, s1[n] = v1, s2[n] = v2, s3[n] = v3;
            a0 += v0 * c, a1 += v1 * c, a2 += v2 * c, a3 += v3 * c;
        }
        y[p] = a0 + Dh * x[p];
        y[p + 1] = a1 + Dh * x[p + 1];
        y[p + 2] = a2 + Dh * x[p + 2];
        y[p + 3] = a3 + Dh * x[p + 3];
    }
    for (; p < p1; p++) {
        real *s = S + p * N, acc = 0;
        const real u = dtv * x[p];
#pragma omp simd reduction(+ : acc)
        for (int64_t n = 0; n < N; n++) {
            const real v = da * s[n] + u * Br[n];
            s[n] = v;
            acc += v * Cr[n];
        }
        y[p] = acc + Dh * x[p];
    }
}

/* Rows of a head's state updated together over all tokens (a [SSD_SCAN_ROWS, N] tile stays
 * in L1 while the tokens stream by). */
#ifndef SSD_SCAN_ROWS
#define SSD_SCAN_ROWS 16
#endif

/* Per (b, h, tile of rows): for each token, S[p,:] = exp(dt A) S[p,:] + dt x[p] B;
 * y[p] = S[p,:].C + D x[p]. */
void RNAME(ssd_scan)(const ssd_dims *d, real *y, const real *x, const real *dt, const real *A,
                     const real *Bm, const real *Cm, const real *D, real *state) {
    const int64_t Bn = d->B, T = d->T, H = d->H, P = d->P, N = d->N, hg = d->H / d->G;
    const int64_t ntile = (P + SSD_SCAN_ROWS - 1) / SSD_SCAN_ROWS;
#pragma omp parallel for collapse(3) schedule(static)
    for (int64_t b = 0; b < Bn; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t pt = 0; pt < ntile; pt++) {
                const int64_t p0 = pt * SSD_SCAN_ROWS;
                const int64_t p1 = p0 + SSD_SCAN_ROWS < P ? p0 + SSD_SCAN_ROWS : P;
                real *S = state + b * d->ldst + h * P * N;
                const int64_t g = h / hg;
                const real Dh = D ? D[h] : 0;
                for (int64_t t = 0; t < T; t++) {
                    const int64_t row = b * T + t;
                    const real dtv = dt[row * H + h];
                    const real da = seg_reset(d, row, t) ? 0 : REXP(dtv * A[h]);
                    scan_rows(S, N, p0, p1, da, dtv, x + row * d->ldx + h * P,
                              Bm + row * d->ldbc + g * N, Cm + row * d->ldbc + g * N, Dh,
                              y + row * d->ldy + h * P);
                }
            }
}

void RNAME(ssd_step)(const ssd_dims *d, real *y, const real *x, const real *dt, const real *A,
                     const real *Bm, const real *Cm, const real *D, real *state) {
    ssd_dims one = *d;
    one.T = 1;
    one.seg = NULL;
    RNAME(ssd_scan)(&one, y, x, dt, A, Bm, Cm, D, state);
}

/* ---- blocking and work space ------------------------------------------------------------ */

static int64_t rup(int64_t n) { return (n + 15) / 16 * 16; }

typedef struct plan {
    int64_t hg, hb;  /* heads per group, heads per block */
    int64_t nbg;     /* blocks per group */
    int64_t nblk;    /* blocks in all: B G nbg */
    int64_t nc;      /* chunks */
    int64_t wmax;    /* widest block: hb P */
    int64_t lda;     /* row stride of a chunk's [tril(C B^T) | C] matrix: Q + N */
    int64_t cbc;     /* reals of all those matrices: B nc G Q (Q + N) */
} plan;

static plan plan_make(const ssd_dims *d) {
    plan p;
    p.hg = d->H / d->G;
    p.hb = SSD_BLOCK_COLS / d->P;
    if (p.hb < 1) p.hb = 1;
    if (p.hb > p.hg) p.hb = p.hg;
    p.nbg = (p.hg + p.hb - 1) / p.hb;
    p.nblk = d->B * d->G * p.nbg;
    p.nc = (d->T + d->Q - 1) / d->Q;
    p.wmax = p.hb * d->P;
    p.lda = d->Q + d->N;
    p.cbc = rup(d->B * p.nc * d->G * d->Q * p.lda);
    return p;
}

/* One block's view of the work space and its decay factors of the current segment. */
typedef struct blk {
    int64_t b, g, h0, nh, w; /* sequence, group, first head, heads, width nh P */
    real *W;                 /* [len + N, w]: X' rows, then exp(m) St rows */
    real *Y;                 /* [Q, w] forward: GEMM output;  backward: dY' */
    real *St;                /* [N, w] running state (transposed) */
    real *e, *f;             /* [nh][Q] e_l = exp(cs_l - m), f_l = exp(m - cs_l) */
    real *em, *eL, *eLm;     /* [nh] exp(m), exp(Lambda), exp(Lambda - m) */
    /* backward only */
    real *V;                 /* [Q + N, w] */
    real *Gt, *Gs, *Stmp;    /* [N, w] state cotangent, exp(Lambda - m) Gt, a segment state */
    real *Z, *dCB;           /* [Q, Q] */
    real *cols, *rr;         /* [Q] */
    real *wv, *vv;           /* [nh][Q] */
    real *Sbuf;              /* [nc][N, w] chunk entry states */
    real *dBp, *dCp;         /* [T, N] this block's share of dB, dC */
    real *dAp, *dDp;         /* [hb] */
} blk;

static int64_t blk_common_size(const ssd_dims *d, const plan *p) {
    return rup((d->Q + d->N) * p->wmax) + rup(d->Q * p->wmax) + rup(d->N * p->wmax) +
           rup(2 * p->hb * d->Q) + rup(3 * p->hb);
}
static int64_t blk_backward_size(const ssd_dims *d, const plan *p) {
    return blk_common_size(d, p) + rup((d->Q + d->N) * p->wmax) + 3 * rup(d->N * p->wmax) +
           2 * rup(d->Q * d->Q) + 2 * rup(d->Q) + rup(2 * p->hb * d->Q) +
           rup(p->nc * d->N * p->wmax) + 2 * rup(d->T * d->N) + rup(2 * p->hb);
}

static real *take(real **cur, int64_t n) {
    real *r = *cur;
    *cur += rup(n);
    return r;
}

static blk blk_make(const ssd_dims *d, const plan *p, int64_t u, real *base, int backward) {
    blk k;
    memset(&k, 0, sizeof k);
    k.b = u / (d->G * p->nbg);
    k.g = (u / p->nbg) % d->G;
    int64_t j = u % p->nbg;
    k.h0 = k.g * p->hg + j * p->hb;
    k.nh = p->hg - j * p->hb < p->hb ? p->hg - j * p->hb : p->hb;
    k.w = k.nh * d->P;
    real *cur = base + u * (backward ? blk_backward_size(d, p) : blk_common_size(d, p));
    k.W = take(&cur, (d->Q + d->N) * p->wmax);
    k.Y = take(&cur, d->Q * p->wmax);
    k.St = take(&cur, d->N * p->wmax);
    k.e = take(&cur, p->hb * d->Q);
    k.f = k.e + p->hb * d->Q;
    cur = k.e + rup(2 * p->hb * d->Q);
    k.em = take(&cur, 3 * p->hb);
    k.eL = k.em + p->hb;
    k.eLm = k.eL + p->hb;
    if (backward) {
        k.V = take(&cur, (d->Q + d->N) * p->wmax);
        k.Gt = take(&cur, d->N * p->wmax);
        k.Gs = take(&cur, d->N * p->wmax);
        k.Stmp = take(&cur, d->N * p->wmax);
        k.Z = take(&cur, d->Q * d->Q);
        k.dCB = take(&cur, d->Q * d->Q);
        k.cols = take(&cur, d->Q);
        k.rr = take(&cur, d->Q);
        k.wv = take(&cur, 2 * p->hb * d->Q);
        k.vv = k.wv + p->hb * d->Q;
        k.Sbuf = take(&cur, p->nc * d->N * p->wmax);
        k.dBp = take(&cur, d->T * d->N);
        k.dCp = take(&cur, d->T * d->N);
        k.dAp = take(&cur, 2 * p->hb);
        k.dDp = k.dAp + p->hb;
    }
    return k;
}

int64_t RNAME(ssd_forward_work_size)(const ssd_dims *d) {
    plan p = plan_make(d);
    return p.cbc + p.nblk * blk_common_size(d, &p);
}

int64_t RNAME(ssd_backward_work_size)(const ssd_dims *d) {
    plan p = plan_make(d);
    return p.cbc + p.nblk * blk_backward_size(d, &p);
}

/* ---- chunk pieces ----------------------------------------------------------------------- */

/* For every chunk c and group g: cbc[b, c, g] = [tril(C B^T) | C], shape [q, q + N] (row
 * stride Q + N; q = the chunk's length, the C columns start at column q). */
static void build_cbc(const ssd_dims *d, const plan *p, const real *Bm, const real *Cm,
                      real *cbc) {
    const int64_t Q = d->Q, N = d->N, G = d->G;
#pragma omp parallel for collapse(3) schedule(static)
    for (int64_t b = 0; b < d->B; b++)
        for (int64_t c = 0; c < p->nc; c++)
            for (int64_t g = 0; g < G; g++) {
                const int64_t t0 = c * Q, q = d->T - t0 < Q ? d->T - t0 : Q;
                const real *Bc = Bm + (b * d->T + t0) * d->ldbc + g * N;
                const real *Cc = Cm + (b * d->T + t0) * d->ldbc + g * N;
                real *M = cbc + ((b * p->nc + c) * G + g) * Q * p->lda;
                /* M[l, s] = C_l . B_s  [q, q] */
                RNAME(gemm)(0, 1, q, q, N, 1, Cc, d->ldbc, Bc, d->ldbc, 0, M, p->lda);
                for (int64_t l = 0; l < q; l++) {
                    real *r = M + l * p->lda;
                    for (int64_t s = l + 1; s < q; s++) r[s] = 0;
                    memcpy(r + q, Cc + l * d->ldbc, (size_t)N * sizeof(real));
                }
            }
}

/* End of the segment of chunk [t0, t0 + q) that starts at local index s0: the longest run
 * that crosses no segment boundary of d->seg and whose decay range
 * sum_{k=s0+1}^{l} |dt_k A| stays within 2 SSD_HALF_RANGE for every head. */
static int64_t seg_end(const ssd_dims *d, const blk *k, const real *dt, const real *A,
                       int64_t row0, int64_t s0, int64_t q) {
    const real lim = 2 * SSD_HALF_RANGE;
    int64_t end = q;
    if (d->seg)
        for (int64_t l = s0 + 1; l < q; l++)
            if (d->seg[row0 + l] != d->seg[row0 + l - 1]) {
                end = l;
                break;
            }
    for (int64_t j = 0; j < k->nh; j++) {
        const int64_t h = k->h0 + j;
        real run = 0;
        for (int64_t l = s0 + 1; l < end; l++) {
            run -= dt[(row0 + l) * d->H + h] * A[h];
            if (run > lim) {
                end = l;
                break;
            }
        }
    }
    return end;
}

/* Decay factors of the segment of len tokens starting at global row r0 (= b T + t): per head
 * cs_l = sum_{k<=l} dt_k A, m = (cs_0 + cs_{len-1}) / 2, e_l = exp(cs_l - m),
 * f_l = exp(m - cs_l), exp(m), exp(Lambda), exp(Lambda - m) with Lambda = cs_{len-1}. */
static void seg_decays(const ssd_dims *d, blk *k, const real *dt, const real *A, int64_t r0,
                       int64_t len) {
    for (int64_t j = 0; j < k->nh; j++) {
        const int64_t h = k->h0 + j;
        real *e = k->e + j * d->Q, *f = k->f + j * d->Q;
        real cs = 0;
        for (int64_t l = 0; l < len; l++) {
            cs += dt[(r0 + l) * d->H + h] * A[h];
            e[l] = cs; /* cs_l for now */
        }
        const real lam = cs, m = (e[0] + lam) / 2;
        for (int64_t l = 0; l < len; l++) {
            real v = e[l] - m;
            e[l] = REXP(v);
            f[l] = REXP(-v);
        }
        k->em[j] = REXP(m);
        k->eL[j] = REXP(lam);
        k->eLm[j] = REXP(lam - m);
    }
}

/* W rows [0, len): X'[l, jP+p] = f_l dt_l x_l[p];  rows [len, len + N): exp(m) S (S: [N, w]). */
static void seg_fill_w(const ssd_dims *d, blk *k, const real *x, const real *dt, const real *S,
                       int64_t r0, int64_t len) {
    const int64_t P = d->P, w = k->w;
    for (int64_t l = 0; l < len; l++) {
        const real *xr = x + (r0 + l) * d->ldx + k->h0 * P;
        const real *dr = dt + (r0 + l) * d->H + k->h0;
        real *Wr = k->W + l * w;
        for (int64_t j = 0; j < k->nh; j++) {
            const real s = k->f[j * d->Q + l] * dr[j];
            for (int64_t p = 0; p < P; p++) Wr[j * P + p] = s * xr[j * P + p];
        }
    }
    for (int64_t n = 0; n < d->N; n++) {
        const real *Sr = S + n * w;
        real *Wr = k->W + (len + n) * w;
        for (int64_t j = 0; j < k->nh; j++)
            for (int64_t p = 0; p < P; p++) Wr[j * P + p] = k->em[j] * Sr[j * P + p];
    }
}

/* After seg_fill_w: state update of the segment, S = exp(Lambda - m) (exp(m) S + B^T X'),
 * written to Sout ([N, w], may equal the S given to seg_fill_w).  Bs: B rows of the segment. */
static void seg_state(const ssd_dims *d, blk *k, const real *Bs, int64_t len, real *Sout) {
    const int64_t P = d->P, w = k->w;
    real *Wb = k->W + len * w;
    /* Wb[N, w] += B_seg^T [N, len] X' [len, w] */
    RNAME(gemm)(1, 0, d->N, w, len, 1, Bs, d->ldbc, k->W, w, 1, Wb, w);
    for (int64_t n = 0; n < d->N; n++)
        for (int64_t j = 0; j < k->nh; j++)
            for (int64_t p = 0; p < P; p++)
                Sout[n * w + j * P + p] = k->eLm[j] * Wb[n * w + j * P + p];
}

/* Loads state0 ([H, P, N] of sequence b, or zeros) into the transposed block state [N, w]. */
static void state_load(const ssd_dims *d, const blk *k, const real *state0, real *St) {
    const int64_t P = d->P, N = d->N, w = k->w;
    if (!state0) {
        memset(St, 0, (size_t)(N * w) * sizeof(real));
        return;
    }
    const real *s0 = state0 + k->b * d->ldst + k->h0 * P * N;
    for (int64_t c = 0; c < w; c++)
        for (int64_t n = 0; n < N; n++) St[n * w + c] = s0[c * N + n];
}

/* Writes the block's transposed state St [N, w] into state ([H, P, N] of sequence b). */
static void state_store(const ssd_dims *d, const blk *k, const real *St, real *state) {
    const int64_t P = d->P, N = d->N, w = k->w;
    real *s1 = state + k->b * d->ldst + k->h0 * P * N;
    for (int64_t c = 0; c < w; c++)
        for (int64_t n = 0; n < N; n++) s1[c * N + n] = St[n * w + c];
}

/* ---- forward ---------------------------------------------------------------------------- */

void RNAME(ssd_forward)(const ssd_dims *d, real *y, const real *x, const real *dt, const real *A,
                        const real *Bm, const real *Cm, const real *D, const real *state0,
                        real *state1, real *work) {
    if (d->B <= 0) return;
    plan p = plan_make(d);
    const int64_t Q = d->Q, N = d->N, P = d->P, T = d->T;
    int nthr = ssmlm_blas_serial_begin(omp_get_max_threads());
    build_cbc(d, &p, Bm, Cm, work);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t u = 0; u < p.nblk; u++) {
        blk k = blk_make(d, &p, u, work + p.cbc, 0);
        const int64_t w = k.w;
        state_load(d, &k, state0, k.St);
        for (int64_t c = 0; c < p.nc; c++) {
            const int64_t t0 = c * Q, q = T - t0 < Q ? T - t0 : Q;
            const real *M = work + ((k.b * p.nc + c) * d->G + k.g) * Q * p.lda;
            for (int64_t s0 = 0; s0 < q;) {
                const int64_t row0 = k.b * T + t0;
                const int64_t s1 = seg_end(d, &k, dt, A, row0, s0, q), len = s1 - s0;
                const int64_t r0 = row0 + s0;
                const real *Bs = Bm + r0 * d->ldbc + k.g * N, *Cs = Cm + r0 * d->ldbc + k.g * N;
                if (seg_reset(d, r0, t0 + s0)) memset(k.St, 0, (size_t)(N * w) * sizeof(real));
                seg_decays(d, &k, dt, A, r0, len);
                seg_fill_w(d, &k, x, dt, k.St, r0, len);
                if (len == q) {
                    /* Y [q, w] = [tril(CB) | C] [q, q+N] . [X' ; exp(m) St] [q+N, w] */
                    RNAME(gemm)(0, 0, q, w, q + N, 1, M, p.lda, k.W, w, 0, k.Y, w);
                } else {
                    RNAME(gemm)(0, 0, len, w, len, 1, M + s0 * p.lda + s0, p.lda, k.W, w, 0, k.Y,
                                w);
                    RNAME(gemm)(0, 0, len, w, N, 1, Cs, d->ldbc, k.W + len * w, w, 1, k.Y, w);
                }
                /* y_l = e_l Y_l + D x_l */
                for (int64_t l = 0; l < len; l++) {
                    const real *xr = x + (r0 + l) * d->ldx + k.h0 * P;
                    real *yr = y + (r0 + l) * d->ldy + k.h0 * P;
                    const real *Yr = k.Y + l * w;
                    for (int64_t j = 0; j < k.nh; j++) {
                        const real el = k.e[j * Q + l], Dh = D ? D[k.h0 + j] : 0;
                        for (int64_t q2 = j * P; q2 < (j + 1) * P; q2++)
                            yr[q2] = el * Yr[q2] + Dh * xr[q2];
                    }
                }
                seg_state(d, &k, Bs, len, k.St);
                s0 = s1;
            }
        }
        if (state1) state_store(d, &k, k.St, state1);
    }
    ssmlm_blas_serial_end(nthr);
}

/* ---- backward --------------------------------------------------------------------------- */

/* Backward through one segment [r0, r0 + len) of a block.  S: the state entering the segment
 * ([N, w]); k->Gt holds the cotangent of the state after it and receives the one before it.
 * M: the segment's corner of the chunk's [tril(CB) | C] (row stride lda); fused: the segment
 * is the whole chunk (then M's C columns follow). */
static void seg_backward(const ssd_dims *d, const plan *pl, blk *k, const real *M, int fused,
                         const real *S, int64_t r0, int64_t len, const real *dy, const real *x,
                         const real *dt, const real *A, const real *Bm, const real *Cm,
                         const real *D, real *dx, real *ddt) {
    const int64_t Q = d->Q, N = d->N, P = d->P, w = k->w, lda = pl->lda;
    const int64_t tl = r0 - k->b * d->T; /* token index inside the sequence */
    const real *Bs = Bm + r0 * d->ldbc + k->g * N, *Cs = Cm + r0 * d->ldbc + k->g * N;
    real *Xp = k->W, *Sm = k->W + len * w, *dYp = k->Y, *V = k->V;

    seg_decays(d, k, dt, A, r0, len);
    seg_fill_w(d, k, x, dt, S, r0, len);
    /* dY'_l = e_l dy_l;  Gs = exp(Lambda - m) Gt */
    for (int64_t l = 0; l < len; l++) {
        const real *dyr = dy + (r0 + l) * d->ldy + k->h0 * P;
        for (int64_t j = 0; j < k->nh; j++) {
            const real el = k->e[j * Q + l];
            for (int64_t p = 0; p < P; p++) dYp[l * w + j * P + p] = el * dyr[j * P + p];
        }
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < k->nh; j++)
            for (int64_t p = 0; p < P; p++)
                k->Gs[n * w + j * P + p] = k->eLm[j] * k->Gt[n * w + j * P + p];

    /* v_l = exp(cs_l) dy_l . (S C_l) = dY'_l . (C exp(m) St)_l   (Y_off's share of da) */
    RNAME(gemm)(0, 0, len, w, N, 1, Cs, d->ldbc, Sm, w, 0, V, w);
    for (int64_t j = 0; j < k->nh; j++)
        for (int64_t l = 0; l < len; l++) {
            real acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int64_t p = 0; p < P; p++) acc += dYp[l * w + j * P + p] * V[l * w + j * P + p];
            k->vv[j * Q + l] = acc;
        }
    /* V_top = B Gs: the chunk-state path's dX'; w_s = X'_s . (B Gs)_s */
    RNAME(gemm)(0, 0, len, w, N, 1, Bs, d->ldbc, k->Gs, w, 0, V, w);
    for (int64_t j = 0; j < k->nh; j++)
        for (int64_t l = 0; l < len; l++) {
            real acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int64_t p = 0; p < P; p++) acc += Xp[l * w + j * P + p] * V[l * w + j * P + p];
            k->wv[j * Q + l] = acc;
        }
    /* V_top += tril(CB)^T dY' (intra-chunk dX');  V_bot = C^T dY' (dS through Y_off) */
    if (fused) {
        memset(V + len * w, 0, (size_t)(N * w) * sizeof(real));
        RNAME(gemm)(1, 0, len + N, w, len, 1, M, lda, dYp, w, 1, V, w);
    } else {
        RNAME(gemm)(1, 0, len, w, len, 1, M, lda, dYp, w, 1, V, w);
        RNAME(gemm)(1, 0, N, w, len, 1, Cs, d->ldbc, dYp, w, 0, V + len * w, w);
    }

    memset(k->dCB, 0, (size_t)(len * len) * sizeof(real));
    for (int64_t j = 0; j < k->nh; j++) {
        const int64_t h = k->h0 + j;
        const real *f = k->f + j * Q;
        /* Z[l, s] = dY'_l . X'_s = exp(cs_l - cs_s) dy_l . X_s  (s <= l) */
        RNAME(gemm)(0, 1, len, len, P, 1, dYp + j * P, w, Xp + j * P, w, 0, k->Z, len);
        /* dCB += tril(Z);  intra share of da_k: R_k = sum_{l>=k} sum_{s<k} CB_ls Z_ls */
        for (int64_t s = 0; s < len; s++) k->cols[s] = 0;
        k->rr[0] = 0;
        for (int64_t l = len - 1; l >= 0; l--) {
            const real *Zr = k->Z + l * len, *Mr = M + l * lda;
            real *dr = k->dCB + l * len, r = 0;
            for (int64_t s = 0; s < l; s++) {
                dr[s] += Zr[s];
                k->cols[s] += Mr[s] * Zr[s];
                r += k->cols[s];
            }
            dr[l] += Zr[l];
            if (l > 0) k->rr[l] = r;
        }
        /* da_k = R_k + sum_{s<k} w_s + sum_{l>=k} v_l + exp(Lambda) <G, S> */
        real dlam = 0;
        for (int64_t n = 0; n < N; n++) {
            const real *Gr = k->Gt + n * w + j * P, *Sr = S + n * w + j * P;
#pragma omp simd reduction(+ : dlam)
            for (int64_t p = 0; p < P; p++) dlam += Gr[p] * Sr[p];
        }
        dlam *= k->eL[j];
        real *vv = k->vv + j * Q, *wv = k->wv + j * Q;
        for (int64_t l = len - 2; l >= 0; l--) vv[l] += vv[l + 1];
        real wpre = 0, dAacc = 0, dDacc = 0;
        const real Dh = D ? D[h] : 0;
        for (int64_t l = 0; l < len; l++) {
            const int64_t row = r0 + l;
            const real da = k->rr[l] + wpre + vv[l] + dlam;
            wpre += wv[l];
            const real dtv = dt[row * d->H + h];
            const real *xr = x + row * d->ldx + h * P, *dyr = dy + row * d->ldy + h * P;
            real *dxr = dx + row * d->ldx + h * P;
            const real *Vr = V + l * w + j * P;
            real xdX = 0, xdy = 0;
#pragma omp simd reduction(+ : xdX, xdy)
            for (int64_t p = 0; p < P; p++) {
                const real dX = f[l] * Vr[p];
                dxr[p] = dtv * dX + Dh * dyr[p];
                xdX += dX * xr[p];
                xdy += dyr[p] * xr[p];
            }
            ddt[row * d->H + h] = xdX + A[h] * da;
            dAacc += dtv * da;
            dDacc += xdy;
        }
        k->dAp[j] += dAacc;
        k->dDp[j] += dDacc;
    }

    /* dC rows = dCB B + dY' (exp(m) St)^T;  dB rows = dCB^T C + X' Gs^T */
    real *dCr = k->dCp + tl * N, *dBr = k->dBp + tl * N;
    RNAME(gemm)(0, 0, len, N, len, 1, k->dCB, len, Bs, d->ldbc, 0, dCr, N);
    RNAME(gemm)(0, 1, len, N, w, 1, dYp, w, Sm, w, 1, dCr, N);
    RNAME(gemm)(1, 0, len, N, len, 1, k->dCB, len, Cs, d->ldbc, 0, dBr, N);
    RNAME(gemm)(0, 1, len, N, w, 1, Xp, w, k->Gs, w, 1, dBr, N);

    /* G before the segment = exp(m) V_bot + exp(Lambda) G */
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < k->nh; j++)
            for (int64_t p = 0; p < P; p++) {
                const int64_t i = n * w + j * P + p;
                k->Gt[i] = k->em[j] * V[(len + n) * w + j * P + p] + k->eL[j] * k->Gt[i];
            }
}

void RNAME(ssd_backward)(const ssd_dims *d, const real *dy, const real *dstate1, const real *x,
                         const real *dt, const real *A, const real *Bm, const real *Cm,
                         const real *D, const real *state0, real *dx, real *ddt, real *dA,
                         real *dD, real *dB, real *dC, real *dstate0, real *work) {
    plan p = plan_make(d);
    const int64_t Q = d->Q, N = d->N, T = d->T, G = d->G;
    for (int64_t h = 0; h < d->H; h++) {
        dA[h] = 0;
        if (dD) dD[h] = 0;
    }
    if (d->B <= 0) return;
    int nthr = ssmlm_blas_serial_begin(omp_get_max_threads());
    build_cbc(d, &p, Bm, Cm, work);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t u = 0; u < p.nblk; u++) {
        blk k = blk_make(d, &p, u, work + p.cbc, 1);
        const int64_t w = k.w, row0b = k.b * T;
        for (int64_t j = 0; j < k.nh; j++) k.dAp[j] = k.dDp[j] = 0;
        /* recompute the state entering every chunk */
        state_load(d, &k, state0, k.St);
        for (int64_t c = 0; c < p.nc; c++) {
            const int64_t t0 = c * Q, q = T - t0 < Q ? T - t0 : Q;
            memcpy(k.Sbuf + c * N * w, k.St, (size_t)(N * w) * sizeof(real));
            for (int64_t s0 = 0; s0 < q;) {
                const int64_t s1 = seg_end(d, &k, dt, A, row0b + t0, s0, q), r0 = row0b + t0 + s0;
                if (seg_reset(d, r0, t0 + s0)) memset(k.St, 0, (size_t)(N * w) * sizeof(real));
                seg_decays(d, &k, dt, A, r0, s1 - s0);
                seg_fill_w(d, &k, x, dt, k.St, r0, s1 - s0);
                seg_state(d, &k, Bm + r0 * d->ldbc + k.g * N, s1 - s0, k.St);
                s0 = s1;
            }
        }
        /* reverse sweep with the state cotangent */
        if (dstate1)
            state_load(d, &k, dstate1, k.Gt);
        else
            memset(k.Gt, 0, (size_t)(N * w) * sizeof(real));
        for (int64_t c = p.nc - 1; c >= 0; c--) {
            const int64_t t0 = c * Q, q = T - t0 < Q ? T - t0 : Q;
            const real *M = work + ((k.b * p.nc + c) * G + k.g) * Q * p.lda;
            const real *Sc = k.Sbuf + c * N * w;
            for (int64_t s1 = q; s1 > 0;) {
                /* find the segment ending at s1 and the state entering it (the zero state
                 * where a new document starts: the state before it is then not needed) */
                int64_t s0 = 0;
                const real *S = Sc;
                if (seg_reset(d, row0b + t0, t0)) {
                    memset(k.Stmp, 0, (size_t)(N * w) * sizeof(real));
                    S = k.Stmp;
                }
                for (;;) {
                    int64_t e = seg_end(d, &k, dt, A, row0b + t0, s0, q);
                    if (e >= s1) break;
                    const int64_t r0 = row0b + t0 + s0;
                    if (seg_reset(d, row0b + t0 + e, t0 + e)) {
                        memset(k.Stmp, 0, (size_t)(N * w) * sizeof(real));
                    } else {
                        seg_decays(d, &k, dt, A, r0, e - s0);
                        seg_fill_w(d, &k, x, dt, S, r0, e - s0);
                        seg_state(d, &k, Bm + r0 * d->ldbc + k.g * N, e - s0, k.Stmp);
                    }
                    S = k.Stmp;
                    s0 = e;
                }
                seg_backward(d, &p, &k, M + s0 * p.lda + s0, s0 == 0 && s1 == q, S,
                             row0b + t0 + s0, s1 - s0, dy, x, dt, A, Bm, Cm, D, dx, ddt);
                /* the state entering a new document was the constant 0 */
                if (seg_reset(d, row0b + t0 + s0, t0 + s0))
                    memset(k.Gt, 0, (size_t)(N * w) * sizeof(real));
                s1 = s0;
            }
        }
        if (dstate0) state_store(d, &k, k.Gt, dstate0);
    }
    /* dB, dC: sum the blocks of each group */
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < d->B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t g = 0; g < G; g++) {
                real *dBr = dB + (b * T + t) * d->ldbc + g * N, *dCr = dC + (b * T + t) * d->ldbc + g * N;
                for (int64_t n = 0; n < N; n++) dBr[n] = dCr[n] = 0;
                for (int64_t j = 0; j < p.nbg; j++) {
                    blk k = blk_make(d, &p, (b * G + g) * p.nbg + j, work + p.cbc, 1);
                    for (int64_t n = 0; n < N; n++) {
                        dBr[n] += k.dBp[t * N + n];
                        dCr[n] += k.dCp[t * N + n];
                    }
                }
            }
    for (int64_t u = 0; u < p.nblk; u++) {
        blk k = blk_make(d, &p, u, work + p.cbc, 1);
        for (int64_t j = 0; j < k.nh; j++) {
            dA[k.h0 + j] += k.dAp[j];
            if (dD) dD[k.h0 + j] += k.dDp[j];
        }
    }
    ssmlm_blas_serial_end(nthr);
}

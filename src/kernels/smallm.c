/* smallm.c — fp32 linear layers that stream the weights once: y[M,N] = x[M,K] W[N,K]^T + b for
 * small M (decode: one row of x per sequence), W fp32 or bf16; and the bf16-weight product for
 * large M (prefill) through blocks widened for BLAS sgemm.  See bf16.h.
 *
 * Small-M kernel: each OpenMP thread takes a contiguous range of output rows (weight rows).
 *   Few rows of x (M = 1 with AVX-512, M <= 4 portable): the weight rows one after the other,
 *     each dotted with all M rows of x (in L1) with several accumulators along k: the weights
 *     stream strictly sequentially (interleaving several weight rows without prefetching ran at
 *     about half the memory bandwidth on the development machine).
 *   More rows of x: tiles of several rows of x by several weight rows (fewer loads per
 *     multiply-add).
 * Two tile versions:
 *   AVX-512 (intrinsics, when the compiler targets AVX-512 F/BW/VL): 16 lanes, bf16 widened by
 *     vpmovzxwd + shift, the K % 16 tail through masked loads.  M >= 2: up to 8 rows of x by 3
 *     weight rows (24 accumulators); per 16 k the 3 weight vectors are loaded (and widened)
 *     once and each row of x once, and the weight rows PF_TILES tiles ahead are prefetched into
 *     L2 (measured at M = 8, fp32, 768 x 3352 weights from memory: 870 us with 4 x 4 tiles and
 *     no prefetch, ~365 us so, the memory-bound time being ~320 us; the hardware prefetcher
 *     alone does not keep 3 short interleaved rows streaming while the core is busy
 *     multiplying);
 *   portable (GCC/Clang vector extensions): one native vector (8 lanes with AVX, 4 with SSE or
 *     NEON), tiles of 4 rows of x by 2 weight rows, a scalar tail.  Built everywhere and tested
 *     against the reference even where AVX-512 is used.
 * Precision independent: compiled in the fp32 pass only. */
#include "kernels/bf16.h"
#include "base/base.h"
#include <cblas.h>
#include <omp.h>

#ifndef SSMLM_REAL_F64

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>
#define HAVE_AVX512 1
#else
#define HAVE_AVX512 0
#endif

#define MR 4        /* rows of x per portable tile */
#define NR_VX 2     /* weight rows per portable tile (more rows of x) */
#define NR_MAX 4
#define MR_W 8      /* AVX-512, more rows of x: rows of x per tile */
#define NR_W 3      /* ... weight rows per tile */
#define PF_TILES 4  /* ... prefetch distance, in tiles */
#define KU_MAX 4    /* accumulators along k per output */
#define BF16_BLOCK_ELEMS (1 << 21) /* widened weights per sgemm of the blocked product: 8 MiB */
/* portable: up to this many rows of x, weight rows streamed one after the other (AVX-512 does so
 * only at M = 1: its tiles with prefetch are as fast there and faster from M = 2, measured
 * 10-35 % at M = 2-4 in bf16) */
#define SEQ_MAX_M_VX 4

/* ---- portable tile ------------------------------------------------------------------------ */
/* lanes: one native vector register (AVX: 8 floats; SSE, NEON: 4) */
#ifdef __AVX__
#define VL 8
#else
#define VL 4
#endif

typedef float vf __attribute__((vector_size(VL * 4)));
typedef uint32_t vu __attribute__((vector_size(VL * 4)));
typedef uint16_t vh __attribute__((vector_size(VL * 2)));

/* VL weights from k: fp32 as they are, bf16 shifted into the upper half of fp32 lanes. */
static inline __attribute__((always_inline)) vf load_w(const void *w, int64_t k, int bf16) {
    if (bf16) {
        vh h;
        memcpy(&h, (const uint16_t *)w + k, sizeof h);
        vu u = __builtin_convertvector(h, vu) << 16;
        return (vf)u;
    }
    vf v;
    memcpy(&v, (const float *)w + k, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) float scalar_w(const void *w, int64_t k, int bf16) {
    return bf16 ? bf16_to_f32(((const uint16_t *)w)[k]) : ((const float *)w)[k];
}

/* Sum of the lanes, pairwise (a chain of VL dependent adds costs as much as a short row). */
static inline __attribute__((always_inline)) float hsum(vf v) {
    float t[VL];
    memcpy(t, &v, sizeof t);
    for (int h = VL / 2; h >= 1; h /= 2)
        for (int l = 0; l < h; l++) t[l] += t[l + h];
    return t[0];
}

/* y[r, j] = x_r . w_j (+ b_j) for r < mr rows of x and j < nr weight rows, over all K, with ku
 * independent accumulators along k per output.  x: rows of stride K; w: rows of stride K (fp32 or
 * bf16 elements); y: row stride ldy.  mr, nr, ku and bf16 are constants at every call site: the
 * loops unroll and the accumulators stay in registers. */
static inline __attribute__((always_inline)) void tile_vx(float *y, int64_t ldy, const float *x, const void *w,
                                                          const float *b, int64_t K, int mr, int nr, int ku,
                                                          int bf16) {
    vf acc[MR][NR_MAX][KU_MAX];
    #pragma GCC unroll 4
    for (int r = 0; r < mr; r++)
        #pragma GCC unroll 4
        for (int j = 0; j < nr; j++)
            #pragma GCC unroll 4
            for (int u = 0; u < ku; u++) acc[r][j][u] = (vf){0};
    size_t es = bf16 ? 2 : 4;
    const char *wc = w;
    int64_t k = 0;
    for (; k + VL * ku <= K; k += VL * ku)
        #pragma GCC unroll 4
        for (int u = 0; u < ku; u++) {
            vf xv[MR];
            #pragma GCC unroll 4
            for (int r = 0; r < mr; r++) memcpy(&xv[r], x + r * K + k + u * VL, sizeof xv[r]);
            #pragma GCC unroll 4
            for (int j = 0; j < nr; j++) {
                vf wv = load_w(wc + (size_t)j * (size_t)K * es, k + u * VL, bf16);
                #pragma GCC unroll 4
                for (int r = 0; r < mr; r++) acc[r][j][u] += xv[r] * wv;
            }
        }
    for (; k + VL <= K; k += VL) {
        vf xv[MR];
        #pragma GCC unroll 4
        for (int r = 0; r < mr; r++) memcpy(&xv[r], x + r * K + k, sizeof xv[r]);
        #pragma GCC unroll 4
        for (int j = 0; j < nr; j++) {
            vf wv = load_w(wc + (size_t)j * (size_t)K * es, k, bf16);
            #pragma GCC unroll 4
            for (int r = 0; r < mr; r++) acc[r][j][0] += xv[r] * wv;
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < mr; r++)
        #pragma GCC unroll 4
        for (int j = 0; j < nr; j++) {
            vf a = acc[r][j][0];
            #pragma GCC unroll 4
            for (int u = 1; u < ku; u++) a += acc[r][j][u];
            const void *wj = wc + (size_t)j * (size_t)K * es;
            float s = hsum(a);
            for (int64_t t = k; t < K; t++) s += x[r * K + t] * scalar_w(wj, t, bf16);
            y[r * ldy + j] = b ? s + b[j] : s;
        }
}

/* ---- AVX-512 tile ------------------------------------------------------------------------- */
#if HAVE_AVX512
/* 16 weights from k, widened from bf16 when bf16; _mask: only the lanes of mask (zeros elsewhere). */
static inline __attribute__((always_inline)) __m512 load_w512(const void *w, int64_t k, int bf16) {
    if (bf16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + k))), 16));
    return _mm512_loadu_ps((const float *)w + k);
}
static inline __attribute__((always_inline)) __m512 load_w512_mask(const void *w, int64_t k, __mmask16 mask,
                                                                   int bf16) {
    if (bf16)
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)w + k)), 16));
    return _mm512_maskz_loadu_ps(mask, (const float *)w + k);
}

/* y = x . w (+ b) for one row of x and one weight row (M = 1), with KU_MAX accumulators along
 * k; the K % 16 tail through masked loads. */
static inline __attribute__((always_inline)) void row_512(float *y, const float *x, const void *w, const float *b,
                                                          int64_t K, int bf16) {
    __m512 acc[KU_MAX];
    #pragma GCC unroll 4
    for (int u = 0; u < KU_MAX; u++) acc[u] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 * KU_MAX <= K; k += 16 * KU_MAX)
        #pragma GCC unroll 4
        for (int u = 0; u < KU_MAX; u++)
            acc[u] = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + u * 16), load_w512(w, k + u * 16, bf16), acc[u]);
    for (; k < K; k += 16) {
        __mmask16 mask = K - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (K - k)) - 1);
        acc[0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, x + k), load_w512_mask(w, k, mask, bf16), acc[0]);
    }
    __m512 a = acc[0];
    #pragma GCC unroll 4
    for (int u = 1; u < KU_MAX; u++) a = _mm512_add_ps(a, acc[u]);
    float v = _mm512_reduce_add_ps(a);
    *y = b ? v + *b : v;
}

/* y[r, j] (+ b_j) for r < mr <= MR_W rows of x, j < nr <= NR_W weight rows (M >= 2): per 16 k,
 * the nr weight vectors first (widened once when bf16), then each row of x once, into mr x nr
 * accumulators.  pf (may be NULL): weights to bring into L2 meanwhile, pf_len bytes from pf, nr
 * cache lines per 16 k (as many as an fp32 tile consumes). */
static inline __attribute__((always_inline)) void tile_512_wide(float *y, int64_t ldy, const float *x, const void *w,
                                                                const float *b, int64_t K, int mr, int nr, int bf16,
                                                                const char *pf, int64_t pf_len) {
    __m512 acc[MR_W][NR_W];
    #pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
        #pragma GCC unroll 3
        for (int j = 0; j < nr; j++) acc[r][j] = _mm512_setzero_ps();
    size_t es = bf16 ? 2 : 4;
    const char *wc = w;
    int64_t k = 0, off = 0;
    for (; k + 16 <= K; k += 16) {
        if (pf && off < pf_len) {
            #pragma GCC unroll 3
            for (int j = 0; j < nr; j++, off += 64) _mm_prefetch(pf + off, _MM_HINT_T1);
        }
        __m512 wv[NR_W];
        #pragma GCC unroll 3
        for (int j = 0; j < nr; j++) wv[j] = load_w512(wc + (size_t)j * (size_t)K * es, k, bf16);
        #pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            __m512 xv = _mm512_loadu_ps(x + r * K + k);
            /* keep xv in a register: folded into each multiply-add as a memory operand (what
             * gcc does by itself) it is loaded nr times, and the loads, not the multiply-adds,
             * bound the loop (M = 8 fp32 from memory: 490 -> 365 us; 8 x 768 x 420 in cache:
             * 57 -> 95 GFMA/s on the 2 cores) */
            __asm__("" : "+v"(xv));
            #pragma GCC unroll 3
            for (int j = 0; j < nr; j++) acc[r][j] = _mm512_fmadd_ps(xv, wv[j], acc[r][j]);
        }
    }
    if (k < K) {
        __mmask16 mask = (__mmask16)((1u << (K - k)) - 1);
        __m512 wv[NR_W];
        #pragma GCC unroll 3
        for (int j = 0; j < nr; j++) wv[j] = load_w512_mask(wc + (size_t)j * (size_t)K * es, k, mask, bf16);
        #pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            __m512 xv = _mm512_maskz_loadu_ps(mask, x + r * K + k);
            #pragma GCC unroll 3
            for (int j = 0; j < nr; j++) acc[r][j] = _mm512_fmadd_ps(xv, wv[j], acc[r][j]);
        }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
        #pragma GCC unroll 3
        for (int j = 0; j < nr; j++) {
            float v = _mm512_reduce_add_ps(acc[r][j]);
            y[r * ldy + j] = b ? v + b[j] : v;
        }
}

/* Columns [n0, n1) of y[M, N] with the wide tiles (M >= 2); bf16 a constant. */
static inline __attribute__((always_inline)) void cols_512_wide(int bf16, float *y, const float *x, const char *w,
                                                                const float *b, int64_t M, int64_t N, int64_t K,
                                                                int64_t n0, int64_t n1) {
    size_t ws = (size_t)K * (bf16 ? 2 : 4);
    for (int64_t n = n0; n < n1; n += NR_W) {
        int nr = n1 - n >= NR_W ? NR_W : 1;
        /* the weights PF_TILES tiles ahead, while the first rows of x pass */
        const char *pf = n + (PF_TILES + 1) * NR_W <= n1 ? w + (n + PF_TILES * NR_W) * (int64_t)ws : NULL;
        int64_t pf_len = NR_W * (int64_t)ws;
        for (int64_t m = 0; m < M; m += MR_W) {
            float *yt = y + m * N + n;
            const float *xt = x + m * K;
            const char *wt = w + n * (int64_t)ws, *p = m == 0 ? pf : NULL;
            const float *bt = b ? b + n : NULL;
            int mr = M - m >= MR_W ? MR_W : (int)(M - m);
#define WIDE_CASE(R)                                                                                           \
    case R:                                                                                                    \
        if (nr == NR_W) tile_512_wide(yt, N, xt, wt, bt, K, R, NR_W, bf16, p, pf_len);                          \
        else tile_512_wide(yt, N, xt, wt, bt, K, R, 1, bf16, p, pf_len);                                       \
        break;
            switch (mr) {
                WIDE_CASE(1) WIDE_CASE(2) WIDE_CASE(3) WIDE_CASE(4) WIDE_CASE(5) WIDE_CASE(6) WIDE_CASE(7)
                default: WIDE_CASE(8)
            }
#undef WIDE_CASE
        }
        if (nr == 1) n += 1 - NR_W; /* one row at a time at the end of the range */
    }
}
#endif

/* ---- driver ------------------------------------------------------------------------------- */

/* Portable: columns [0, nr) of y (row stride N) from nr weight rows at w, all M rows of x, MR
 * at a time. */
static inline __attribute__((always_inline)) void all_rows_of_x(float *y, int64_t N, const float *x, const void *w,
                                                                const float *b, int64_t M, int64_t K, int nr, int ku,
                                                                int bf16) {
    int64_t m = 0;
    for (; m + MR <= M; m += MR) tile_vx(y + m * N, N, x + m * K, w, b, K, MR, nr, ku, bf16);
    switch (M - m) {
    case 1: tile_vx(y + m * N, N, x + m * K, w, b, K, 1, nr, ku, bf16); break;
    case 2: tile_vx(y + m * N, N, x + m * K, w, b, K, 2, nr, ku, bf16); break;
    case 3: tile_vx(y + m * N, N, x + m * K, w, b, K, 3, nr, ku, bf16); break;
    default: break;
    }
}

/* Output columns [n0, n1) of y[M, N]; avx512 and bf16 are constants here.
 * AVX-512: M = 1 the weight rows one after the other (they stream sequentially), M >= 2 the wide
 * tiles with prefetch.  Portable: M <= SEQ_MAX_M_VX the weight rows one after the other, each
 * with all rows of x and several accumulators along k (several rows interleaved ran at half the
 * memory bandwidth here); more rows of x: groups of NR_VX weight rows per tile. */
static inline __attribute__((always_inline)) void cols_impl(int avx512, int bf16, float *y, const float *x,
                                                            const char *w, const float *b, int64_t M, int64_t N,
                                                            int64_t K, int64_t n0, int64_t n1) {
    size_t ws = (size_t)K * (bf16 ? 2 : 4);
#if HAVE_AVX512
    if (avx512) {
        if (M == 1)
            for (int64_t n = n0; n < n1; n++) row_512(y + n, x, w + n * ws, b ? b + n : NULL, K, bf16);
        else cols_512_wide(bf16, y, x, w, b, M, N, K, n0, n1);
        return;
    }
#else
    (void)avx512;
#endif
    if (M <= SEQ_MAX_M_VX) {
        for (int64_t n = n0; n < n1; n++) {
            if (M == 1) tile_vx(y + n, N, x, w + n * ws, b ? b + n : NULL, K, 1, 1, 4, bf16);
            else all_rows_of_x(y + n, N, x, w + n * ws, b ? b + n : NULL, M, K, 1, 2, bf16);
        }
        return;
    }
    int64_t n = n0;
    for (; n + NR_VX <= n1; n += NR_VX) all_rows_of_x(y + n, N, x, w + n * ws, b ? b + n : NULL, M, K, NR_VX, 1, bf16);
    for (; n < n1; n++) all_rows_of_x(y + n, N, x, w + n * ws, b ? b + n : NULL, M, K, 1, 1, bf16);
}

static void cols(int avx512, int bf16, float *y, const float *x, const void *w, const float *b, int64_t M,
                 int64_t N, int64_t K, int64_t n0, int64_t n1) {
    if (avx512 && bf16) cols_impl(1, 1, y, x, w, b, M, N, K, n0, n1);
    else if (avx512) cols_impl(1, 0, y, x, w, b, M, N, K, n0, n1);
    else if (bf16) cols_impl(0, 1, y, x, w, b, M, N, K, n0, n1);
    else cols_impl(0, 0, y, x, w, b, M, N, K, n0, n1);
}

static void smallm_impl(int avx512, float *y, const float *x, const void *w, int bf16, const float *b, int64_t M,
                        int64_t N, int64_t K) {
    SSMLM_ASSERT(!avx512 || HAVE_AVX512);
    if (M <= 0 || N <= 0) return;
    /* each thread a contiguous range of whole tiles of output rows */
    int64_t unit = avx512 && M > 1 ? NR_W : 4, units = (N + unit - 1) / unit;
    /* a parallel region costs microseconds (more with passive waiting): only for real work */
#pragma omp parallel if (N * K * (M < MR ? M : MR) >= ((int64_t)1 << 18))
    {
        int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t n0 = units * t / nt * unit, n1 = units * (t + 1) / nt * unit;
        if (n1 > N) n1 = N;
        if (n0 < n1) cols(avx512, bf16, y, x, w, b, M, N, K, n0, n1);
    }
}

void smallm_f32(float *y, const float *x, const float *wf, const uint16_t *wb, const float *b, int64_t M,
                int64_t N, int64_t K) {
    SSMLM_ASSERT((wf == NULL) != (wb == NULL));
    smallm_impl(HAVE_AVX512, y, x, wb ? (const void *)wb : (const void *)wf, wb != NULL, b, M, N, K);
}

void smallm_portable_f32(float *y, const float *x, const float *wf, const uint16_t *wb, const float *b, int64_t M,
                         int64_t N, int64_t K) {
    SSMLM_ASSERT((wf == NULL) != (wb == NULL));
    smallm_impl(0, y, x, wb ? (const void *)wb : (const void *)wf, wb != NULL, b, M, N, K);
}

int smallm_uses_avx512(void) { return HAVE_AVX512; }

void smallm_ref_f32(float *y, const float *x, const float *wf, const uint16_t *wb, const float *b, int64_t M,
                    int64_t N, int64_t K) {
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            float s = b ? b[n] : 0;
            for (int64_t k = 0; k < K; k++)
                s += x[m * K + k] * (wb ? bf16_to_f32(wb[n * K + k]) : wf[n * K + k]);
            y[m * N + n] = s;
        }
}

void bf16_gemm_blocked_f32(float *y, const float *x, const uint16_t *wb, const float *b, int64_t M, int64_t N,
                           int64_t K) {
    if (M <= 0 || N <= 0) return;
    /* blocks of BF16_BLOCK_ELEMS widened weights (at least 64 rows): large enough for sgemm to run
     * near its full speed, small enough to stay in the last-level cache */
    int64_t rows = (int64_t)BF16_BLOCK_ELEMS / (K > 0 ? K : 1);
    rows = rows < 64 ? 64 : rows;
    rows = rows > N ? N : rows;
    float *buf = ssmlm_alloc((size_t)(rows * (K > 0 ? K : 1)) * sizeof(float));
    SSMLM_ASSERT(buf != NULL);
    for (int64_t n0 = 0; n0 < N; n0 += rows) {
        int64_t nr = N - n0 < rows ? N - n0 : rows;
        bf16_widen_array(buf, wb + n0 * K, nr * K);
        if (K > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)M, (blasint)nr, (blasint)K, 1, x,
                        (blasint)K, buf, (blasint)K, 0, y + n0, (blasint)N);
        else
            for (int64_t m = 0; m < M; m++) memset(y + m * N + n0, 0, (size_t)nr * sizeof(float));
    }
    ssmlm_free(buf);
    if (b) {
#pragma omp parallel for schedule(static)
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) y[m * N + n] += b[n];
    }
}

#endif

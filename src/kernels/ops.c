/* ops.c — basic numeric kernels (see ops.h).  Plain loops, OpenMP over rows/channels; GEMMs
 * go to OpenBLAS, except the fp32 linear layers with few rows or bf16 weights (src/kernels/smallm.c). */
#include "kernels/ops.h"
#include "kernels/bf16.h"
#include <cblas.h>
#include <omp.h>
#include <string.h>

/* clang reports `omp simd` loops it leaves scalar (e.g. at -O1) as warnings */
#ifdef __clang__
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

void RNAME(gemm)(int ta, int tb, int64_t M, int64_t N, int64_t K, real alpha, const real *A,
                 int64_t lda, const real *B, int64_t ldb, real beta, real *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
        return;
    }
    if (M == 1) {
        /* one row (decode at batch 1): OpenBLAS 0.3.21's sgemm with M = 1 runs 2-4x slower than
         * its gemv (reference performance.md §2.5).  c[1,N] = alpha a op(B) + beta c, with a
         * the row of op(A): stride 1, or lda when A is transposed. */
        blasint incx = ta ? (blasint)lda : 1;
#if REAL_IS_F64
        cblas_dgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, (blasint)(tb ? N : K), (blasint)(tb ? K : N),
                    alpha, B, (blasint)ldb, A, incx, beta, C, 1);
#else
        cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, (blasint)(tb ? N : K), (blasint)(tb ? K : N),
                    alpha, B, (blasint)ldb, A, incx, beta, C, 1);
#endif
        return;
    }
#if REAL_IS_F64
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta,
                C, (blasint)ldc);
#else
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta,
                C, (blasint)ldc);
#endif
}

void RNAME(linear_forward)(real *y, const real *x, const real *W, const real *b, int64_t M,
                           int64_t N, int64_t K) {
#if !REAL_IS_F64
    /* bf16 weights (a registered bf16 arena) and small M: the weight-streaming kernels */
    if (bf16_arena_contains(W)) {
        const uint16_t *Wb = (const uint16_t *)(const void *)W;
        if (M <= SMALLM_MAX_M_BF16) smallm_f32(y, x, NULL, Wb, b, M, N, K);
        else bf16_gemm_blocked_f32(y, x, Wb, b, M, N, K);
        return;
    }
    if (M <= SMALLM_MAX_M_F32) {
        smallm_f32(y, x, W, NULL, b, M, N, K);
        return;
    }
#endif
    RNAME(gemm)(0, 1, M, N, K, 1, x, K, W, K, 0, y, N);
    if (b) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) y[i * N + j] += b[j];
    }
}

void RNAME(linear_backward)(real *dx, real *dW, real *db, const real *dy, const real *x,
                            const real *W, int64_t M, int64_t N, int64_t K, int accum_dx) {
#if !REAL_IS_F64
    SSMLM_ASSERT(!bf16_arena_contains(W)); /* bf16 weights are for inference */
#endif
    if (dx) RNAME(gemm)(0, 0, M, K, N, 1, dy, N, W, K, accum_dx ? 1 : 0, dx, K);
    if (dW) RNAME(gemm)(1, 0, N, K, M, 1, dy, N, x, K, 1, dW, K);
    if (db) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) db[j] += dy[i * N + j];
    }
}

/* Input at time t (may be negative: taken from state0 or zero). */
static inline real conv_in(const real *x, int64_t ldx, const real *st, int64_t t, int64_t c,
                           int64_t K) {
    if (t >= 0) return x[t * ldx + c];
    if (!st) return 0;
    /* t = -1 is the newest state entry (index K-1) */
    return st[c * K + (K + t)];
}

/* w [C, K] -> wt [K, C]: the kernels below then run contiguously over channels. */
static real *conv_weight_t(const real *w, int64_t C, int64_t K) {
    real *wt = ssmlm_alloc((size_t)(C * K) * sizeof(real));
    SSMLM_ASSERT(wt != NULL);
    for (int64_t c = 0; c < C; c++)
        for (int64_t k = 0; k < K; k++) wt[k * C + c] = w[c * K + k];
    return wt;
}

void RNAME(conv1d_forward)(real *y, int64_t ldy, const real *x, int64_t ldx, const real *w,
                           const real *b, const real *state0, const int32_t *seg, int64_t B,
                           int64_t T, int64_t C, int64_t K) {
    real *wt = conv_weight_t(w, C, K);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t bb = 0; bb < B; bb++)
        for (int64_t t = 0; t < T; t++) {
            const real *xb = x + bb * T * ldx;
            const real *sb = state0 ? state0 + bb * C * K : NULL;
            const int32_t *sg = seg ? seg + bb * T : NULL;
            /* with segments, the history in state0 belongs to the row's first segment */
            if (sg && sg[t] != sg[0]) sb = NULL;
            real *yr = y + (bb * T + t) * ldy;
            for (int64_t c = 0; c < C; c++) yr[c] = b ? b[c] : 0;
            for (int64_t k = 0; k < K; k++) {
                int64_t ti = t - (K - 1) + k;
                const real *wk = wt + k * C;
                if (ti >= 0) {
                    if (sg && sg[ti] != sg[t]) continue; /* an earlier segment reads 0 */
                    const real *xr = xb + ti * ldx;
                    for (int64_t c = 0; c < C; c++) yr[c] += wk[c] * xr[c];
                } else if (sb) {
                    for (int64_t c = 0; c < C; c++) yr[c] += wk[c] * conv_in(xb, ldx, sb, ti, c, K);
                }
            }
        }
    ssmlm_free(wt);
}

void RNAME(conv1d_backward)(real *dx, int64_t ldx, real *dw, real *db, const real *dy,
                            int64_t ldy, const real *x, int64_t ldx_in, const real *w,
                            const int32_t *seg, int64_t B, int64_t T, int64_t C, int64_t K) {
    if (dx) {
        real *wt = conv_weight_t(w, C, K);
        /* dx_s = sum_k w[k] dy_{s + K-1-k}  (over the taps t of s's own segment) */
#pragma omp parallel for collapse(2) schedule(static)
        for (int64_t bb = 0; bb < B; bb++)
            for (int64_t s = 0; s < T; s++) {
                const int32_t *sg = seg ? seg + bb * T : NULL;
                real *dxr = dx + (bb * T + s) * ldx;
                for (int64_t c = 0; c < C; c++) dxr[c] = 0;
                for (int64_t k = 0; k < K; k++) {
                    int64_t t = s + (K - 1) - k;
                    if (t >= T || (sg && sg[t] != sg[s])) continue;
                    const real *wk = wt + k * C, *g = dy + (bb * T + t) * ldy;
                    for (int64_t c = 0; c < C; c++) dxr[c] += wk[c] * g[c];
                }
            }
        ssmlm_free(wt);
    }
    if (dw || db) {
        /* per-thread partial sums over rows, [K+1][C] each (row K = bias), then a reduction */
        int nt = omp_get_max_threads();
        real *part = ssmlm_calloc((size_t)(nt * (K + 1) * C) * sizeof(real));
        SSMLM_ASSERT(part != NULL);
#pragma omp parallel num_threads(nt)
        {
            real *my = part + (int64_t)omp_get_thread_num() * (K + 1) * C;
#pragma omp for collapse(2) schedule(static)
            for (int64_t bb = 0; bb < B; bb++)
                for (int64_t t = 0; t < T; t++) {
                    const int32_t *sg = seg ? seg + bb * T : NULL;
                    const real *g = dy + (bb * T + t) * ldy;
                    for (int64_t c = 0; c < C; c++) my[K * C + c] += g[c];
                    for (int64_t k = 0; k < K; k++) {
                        int64_t ti = t - (K - 1) + k;
                        if (ti < 0 || (sg && sg[ti] != sg[t])) continue;
                        const real *xr = x + (bb * T + ti) * ldx_in;
                        real *pk = my + k * C;
                        for (int64_t c = 0; c < C; c++) pk[c] += g[c] * xr[c];
                    }
                }
        }
        for (int i = 1; i < nt; i++)
            for (int64_t j = 0; j < (K + 1) * C; j++) part[j] += part[(int64_t)i * (K + 1) * C + j];
        for (int64_t c = 0; c < C; c++) {
            if (db) db[c] += part[K * C + c];
            if (dw)
                for (int64_t k = 0; k < K; k++) dw[c * K + k] += part[k * C + c];
        }
        ssmlm_free(part);
    }
}

void RNAME(conv1d_final_state)(real *state, const real *x, int64_t ldx, const real *state0,
                               const int32_t *seg, int64_t B, int64_t T, int64_t C, int64_t K) {
    for (int64_t bb = 0; bb < B; bb++) {
        const int32_t *sg = seg ? seg + bb * T : NULL;
        const real *sb = state0 && (!sg || sg[0] == sg[T - 1]) ? state0 + bb * C * K : NULL;
        for (int64_t c = 0; c < C; c++)
            for (int64_t k = 0; k < K; k++) {
                int64_t t = T - K + k; /* k = K-1 is the last token */
                int keep = t >= -(K - 1) && (t < 0 || !sg || sg[t] == sg[T - 1]);
                real v = keep ? conv_in(x + bb * T * ldx, ldx, sb, t, c, K) : 0;
                state[(bb * C + c) * K + k] = v;
            }
    }
}

void RNAME(conv1d_step)(real *y, int64_t ldy, const real *x, int64_t ldx, real *state,
                        const real *w, const real *b, int64_t B, int64_t C, int64_t K) {
    for (int64_t bb = 0; bb < B; bb++)
        for (int64_t c = 0; c < C; c++) {
            real *s = state + (bb * C + c) * K;
            memmove(s, s + 1, (size_t)(K - 1) * sizeof(real));
            s[K - 1] = x[bb * ldx + c];
            real acc = b ? b[c] : 0;
            for (int64_t k = 0; k < K; k++) acc += s[k] * w[c * K + k];
            y[bb * ldy + c] = acc;
        }
}

void RNAME(rmsnorm_forward)(real *y, real *rstd, const real *x, const real *w, int64_t M,
                            int64_t C, int64_t gs, double eps) {
    int64_t ng = C / gs;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < M; i++)
        for (int64_t g = 0; g < ng; g++) {
            const real *xr = x + i * C + g * gs;
            real *yr = y + i * C + g * gs;
            double ss = 0;
            for (int64_t c = 0; c < gs; c++) ss += (double)xr[c] * xr[c];
            real r = (real)(1.0 / sqrt(ss / (double)gs + eps));
            if (rstd) rstd[i * ng + g] = r;
            for (int64_t c = 0; c < gs; c++) yr[c] = xr[c] * r * w[g * gs + c];
        }
}

void RNAME(rmsnorm_backward)(real *dx, real *dw, const real *dy, const real *x, const real *rstd,
                             const real *w, int64_t M, int64_t C, int64_t gs) {
    int64_t ng = C / gs;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < M; i++)
        for (int64_t g = 0; g < ng; g++) {
            const real *xr = x + i * C + g * gs, *dyr = dy + i * C + g * gs, *wg = w + g * gs;
            real *dxr = dx + i * C + g * gs;
            real r = rstd[i * ng + g];
            double dot = 0;
            for (int64_t c = 0; c < gs; c++) dot += (double)(xr[c] * r) * wg[c] * dyr[c];
            real m = (real)(dot / (double)gs);
            for (int64_t c = 0; c < gs; c++) dxr[c] = r * (wg[c] * dyr[c] - xr[c] * r * m);
        }
    if (dw) {
        /* per-thread partial sums over rows, contiguous in channels */
        int nt = omp_get_max_threads();
        real *part = ssmlm_calloc((size_t)(nt * C) * sizeof(real));
        SSMLM_ASSERT(part != NULL);
#pragma omp parallel num_threads(nt)
        {
            real *my = part + (int64_t)omp_get_thread_num() * C;
#pragma omp for schedule(static)
            for (int64_t i = 0; i < M; i++)
                for (int64_t g = 0; g < ng; g++) {
                    real r = rstd[i * ng + g];
                    const real *xr = x + i * C + g * gs, *dyr = dy + i * C + g * gs;
                    real *pg = my + g * gs;
                    for (int64_t c = 0; c < gs; c++) pg[c] += dyr[c] * xr[c] * r;
                }
        }
        for (int64_t c = 0; c < C; c++) {
            real acc = 0;
            for (int i = 0; i < nt; i++) acc += part[(int64_t)i * C + c];
            dw[c] += acc;
        }
        ssmlm_free(part);
    }
}

void RNAME(layernorm_forward)(real *y, real *mean, real *rstd, const real *x, const real *w,
                              const real *b, int64_t M, int64_t C, double eps, real one) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < M; i++) {
        const real *xr = x + i * C;
        double mu = 0, var = 0;
        for (int64_t c = 0; c < C; c++) mu += xr[c];
        mu /= (double)C;
        for (int64_t c = 0; c < C; c++) var += ((double)xr[c] - mu) * ((double)xr[c] - mu);
        var /= (double)C;
        real r = (real)(1.0 / sqrt(var + eps)), m = (real)mu;
        if (mean) mean[i] = m;
        if (rstd) rstd[i] = r;
        for (int64_t c = 0; c < C; c++) y[i * C + c] = (xr[c] - m) * r * (w[c] + one) + b[c];
    }
}

void RNAME(layernorm_backward)(real *dx, real *dw, real *db, const real *dy, const real *x,
                               const real *mean, const real *rstd, const real *w, int64_t M,
                               int64_t C, real one) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < M; i++) {
        const real *xr = x + i * C, *dyr = dy + i * C;
        real m = mean[i], r = rstd[i];
        double s1 = 0, s2 = 0;
        for (int64_t c = 0; c < C; c++) {
            double g = (double)dyr[c] * (w[c] + one), xh = (double)(xr[c] - m) * r;
            s1 += g;
            s2 += g * xh;
        }
        s1 /= (double)C;
        s2 /= (double)C;
        for (int64_t c = 0; c < C; c++) {
            real g = dyr[c] * (w[c] + one), xh = (xr[c] - m) * r;
            dx[i * C + c] = r * (g - (real)s1 - xh * (real)s2);
        }
    }
    /* dw, db: per-thread partial sums over rows, contiguous in channels */
    int nt = omp_get_max_threads();
    real *part = ssmlm_calloc((size_t)(nt * 2 * C) * sizeof(real));
    SSMLM_ASSERT(part != NULL);
#pragma omp parallel num_threads(nt)
    {
        real *pw = part + (int64_t)omp_get_thread_num() * 2 * C, *pb = pw + C;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < M; i++) {
            const real *xr = x + i * C, *dyr = dy + i * C;
            real m = mean[i], r = rstd[i];
            for (int64_t c = 0; c < C; c++) {
                pw[c] += dyr[c] * (xr[c] - m) * r;
                pb[c] += dyr[c];
            }
        }
    }
    for (int64_t c = 0; c < C; c++) {
        real aw = 0, ab = 0;
        for (int i = 0; i < nt; i++) {
            aw += part[(int64_t)i * 2 * C + c];
            ab += part[(int64_t)i * 2 * C + C + c];
        }
        dw[c] += aw;
        db[c] += ab;
    }
    ssmlm_free(part);
}

double RNAME(cross_entropy)(real *dlogits, const real *logits, const int32_t *labels, int64_t M,
                            int64_t V, real scale, int64_t *count) {
    double total = 0;
    int64_t n = 0;
#pragma omp parallel for schedule(static) reduction(+ : total, n)
    for (int64_t i = 0; i < M; i++) {
        const real *l = logits + i * V;
        int32_t y = labels[i];
        if (y < 0) {
            if (dlogits) memset(dlogits + i * V, 0, (size_t)V * sizeof(real));
            continue;
        }
        real mx = l[0], ly = l[y];
        for (int64_t j = 1; j < V; j++) mx = l[j] > mx ? l[j] : mx;
        /* exp once per logit (vectorized); dlogits may alias logits, so l[y] is read first */
        real se = 0;
        if (dlogits) {
            real *d = dlogits + i * V;
#pragma omp simd reduction(+ : se)
            for (int64_t j = 0; j < V; j++) {
                d[j] = RNAME(vexp)(l[j] - mx);
                se += d[j];
            }
            real f = scale / se;
            for (int64_t j = 0; j < V; j++) d[j] *= f;
            d[y] -= scale;
        } else {
#pragma omp simd reduction(+ : se)
            for (int64_t j = 0; j < V; j++) se += RNAME(vexp)(l[j] - mx);
        }
        total += (double)mx + log((double)se) - (double)ly;
        n++;
    }
    if (count) *count = n;
    return total;
}

void RNAME(vec_add)(real *y, const real *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void RNAME(vec_zero)(real *y, int64_t n) { memset(y, 0, (size_t)n * sizeof(real)); }

int RNAME(vec_all_finite)(const real *x, int64_t n) {
    int ok = 1;
#pragma omp parallel for schedule(static) reduction(&& : ok)
    for (int64_t i = 0; i < n; i++) ok = ok && isfinite(x[i]);
    return ok;
}

/* ops.h — basic numeric kernels shared by the layers: GEMM (BLAS), linear layers, activations,
 * causal depthwise conv1d, RMSNorm / LayerNorm (optionally grouped and gated), cross-entropy.
 * All tensors row-major.  Backward functions ACCUMULATE (+=) into parameter gradients and
 * OVERWRITE input gradients unless the name says otherwise. */
#ifndef SSMLM_OPS_H
#define SSMLM_OPS_H

#include "kernels/real.h"
#include "kernels/vmath.h"
#include "base/base.h"

/* C[M,N] = alpha * op(A) op(B) + beta * C (BLAS; ta/tb: 0 = as stored, 1 = transposed). */
void RNAME(gemm)(int ta, int tb, int64_t M, int64_t N, int64_t K, real alpha, const real *A,
                 int64_t lda, const real *B, int64_t ldb, real beta, real *C, int64_t ldc);

/* y[M,N] = x[M,K] W[N,K]^T + b[N] (b may be NULL).  fp32: W may point into a registered bf16
 * arena (src/kernels/bf16.h), then it holds bf16 bits; M <= 16 (fp32 weights) or 32 (bf16) runs the
 * weight-streaming kernel, larger M BLAS sgemm (bf16: on widened blocks of rows). */
void RNAME(linear_forward)(real *y, const real *x, const real *W, const real *b, int64_t M,
                           int64_t N, int64_t K);
/* dx[M,K] = dy W (overwrite, or += if accum_dx); dW[N,K] += dy^T x; db[N] += sum_rows dy.
 * dx, dW, db may each be NULL to skip.  W in fp32/fp64 only (never bf16). */
void RNAME(linear_backward)(real *dx, real *dW, real *db, const real *dy, const real *x,
                            const real *W, int64_t M, int64_t N, int64_t K, int accum_dx);

/* Causal depthwise conv over time.  x, y: [B, T, C] with channel stride ld (>= C);
 * w: [C, K] (tap K-1 multiplies the current token); b: [C] or NULL.
 * state0: [B, C, K] earlier inputs (index K-1 newest) or NULL for zeros.
 * seg: [B, T] segment ids (non-decreasing within a row) or NULL (one segment per row): a tap
 * reads 0 when its token lies in another segment than the current token; the inputs of state0
 * belong to the row's first segment. */
void RNAME(conv1d_forward)(real *y, int64_t ldy, const real *x, int64_t ldx, const real *w,
                           const real *b, const real *state0, const int32_t *seg, int64_t B,
                           int64_t T, int64_t C, int64_t K);
/* dy: [B,T,C] (ld ldy) -> dx (overwrite, ld ldx), dw += , db += (NULL to skip).
 * Assumes a zero initial state; seg as in the forward. */
void RNAME(conv1d_backward)(real *dx, int64_t ldx, real *dw, real *db, const real *dy,
                            int64_t ldy, const real *x, int64_t ldx_in, const real *w,
                            const int32_t *seg, int64_t B, int64_t T, int64_t C, int64_t K);
/* State after a sequence: [B, C, K] last K inputs, zero-padded on the left.  state0 as above;
 * with seg, inputs outside the last token's segment read 0 (the state a fresh sequence would
 * have after that segment alone, continuing state0 only when the row is one segment). */
void RNAME(conv1d_final_state)(real *state, const real *x, int64_t ldx, const real *state0,
                               const int32_t *seg, int64_t B, int64_t T, int64_t C, int64_t K);
/* One token: x [B, C] (ld ldx) pushed into state [B, C, K]; y [B, C] (ld ldy). */
void RNAME(conv1d_step)(real *y, int64_t ldy, const real *x, int64_t ldx, real *state,
                        const real *w, const real *b, int64_t B, int64_t C, int64_t K);

/* RMSNorm over groups of gs contiguous channels of rows of width C (C % gs == 0):
 * y = x * rstd * w.  rstd (may be NULL): [M, C/gs] saved for backward. */
void RNAME(rmsnorm_forward)(real *y, real *rstd, const real *x, const real *w, int64_t M,
                            int64_t C, int64_t gs, double eps);
/* dx (overwrite) and dw (+=) given x and the saved rstd. */
void RNAME(rmsnorm_backward)(real *dx, real *dw, const real *dy, const real *x, const real *rstd,
                             const real *w, int64_t M, int64_t C, int64_t gs);
/* LayerNorm with weight and bias: y = (x - mean) * rstd * (w + one) + b; one = 1 for
 * zero-centered gamma (LayerNorm1p), else 0.  mean, rstd: [M] saved (may be NULL). */
void RNAME(layernorm_forward)(real *y, real *mean, real *rstd, const real *x, const real *w,
                              const real *b, int64_t M, int64_t C, double eps, real one);
void RNAME(layernorm_backward)(real *dx, real *dw, real *db, const real *dy, const real *x,
                               const real *mean, const real *rstd, const real *w, int64_t M,
                               int64_t C, real one);

/* Softmax cross-entropy over rows of logits [M, V]; labels < 0 ignored.  Returns the summed
 * loss (double); *count = number of counted rows.  If dlogits != NULL, writes
 * (softmax - onehot) * scale there (zero rows for ignored labels); dlogits may alias logits. */
double RNAME(cross_entropy)(real *dlogits, const real *logits, const int32_t *labels, int64_t M,
                            int64_t V, real scale, int64_t *count);

/* Elementwise helpers. */
void RNAME(vec_add)(real *y, const real *x, int64_t n);          /* y += x */
void RNAME(vec_zero)(real *y, int64_t n);
int RNAME(vec_all_finite)(const real *x, int64_t n);

#endif

/* bf16.h — bf16 weight storage for inference: fp32 <-> bf16 conversion, the registry of bf16
 * weight arenas (how a kernel recognises that a weight pointer holds bf16 bits), and the
 * fp32 linear kernels that read bf16 or fp32 weights (src/kernels/smallm.c).
 *
 * bf16 = the upper 16 bits of an fp32: widening is a 16-bit left shift; narrowing rounds to
 * nearest, ties to even, and keeps NaN a NaN (quiet, sign kept).  fp32 math throughout: weights
 * are widened in registers and every accumulator is fp32.  fp32 builds only (the fp64 numeric
 * code never sees bf16 weights). */
#ifndef SSMLM_BF16_H
#define SSMLM_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* fp32 -> bf16 bits, round to nearest even; NaN stays NaN (quiet bit set). */
static inline uint16_t bf16_from_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* bf16 bits -> fp32 (exact). */
static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* dst[i] = bf16(src[i]) / dst[i] = fp32(src[i]) for n values (OpenMP over large n). */
void bf16_round_array(uint16_t *dst, const float *src, int64_t n);
void bf16_widen_array(float *dst, const uint16_t *src, int64_t n);

/* Registry of bf16 arenas: [p, p + bytes) holds bf16 weights.  Thread-safe.  A model registers
 * its bf16 arena when created and removes it when freed; linear kernels ask whether a weight
 * pointer lies inside a registered arena. */
void bf16_arena_register(const void *p, size_t bytes);
void bf16_arena_unregister(const void *p);
int bf16_arena_contains(const void *p);

/* ---- fp32 linear kernels with fp32 or bf16 weights (src/kernels/smallm.c) ---------------- */

/* Rows of x up to which the fp32 linear_forward uses smallm_f32 (above: BLAS sgemm; with bf16
 * weights the blocked product); measured crossovers on the development machine. */
#define SMALLM_MAX_M_F32 16
#define SMALLM_MAX_M_BF16 32

/* y[M,N] = x[M,K] W[N,K]^T + b[N] (b may be NULL) with W fp32 (wf) or bf16 bits (wb): exactly one
 * of wf, wb is non-NULL.  For small M (decode): OpenMP over ranges of output rows; each weight
 * row is read from memory once and dotted with all M rows of x (kept in cache), widened from
 * bf16 in registers; fp32 vector accumulators.  Any M works; it pays off for small M. */
void smallm_f32(float *y, const float *x, const float *wf, const uint16_t *wb, const float *b,
                int64_t M, int64_t N, int64_t K);

/* The same product for any M with bf16 weights: blocks of weight rows are widened into an fp32
 * scratch and multiplied with BLAS sgemm (prefill). */
void bf16_gemm_blocked_f32(float *y, const float *x, const uint16_t *wb, const float *b, int64_t M,
                           int64_t N, int64_t K);

/* smallm_f32 with the portable tiles even where the AVX-512 ones exist (for tests), and whether
 * smallm_f32 uses AVX-512. */
void smallm_portable_f32(float *y, const float *x, const float *wf, const uint16_t *wb, const float *b,
                         int64_t M, int64_t N, int64_t K);
int smallm_uses_avx512(void);

/* Plain reference of smallm_f32: one scalar fp32 dot product per output, no vectors. */
void smallm_ref_f32(float *y, const float *x, const float *wf, const uint16_t *wb, const float *b,
                    int64_t M, int64_t N, int64_t K);

#endif

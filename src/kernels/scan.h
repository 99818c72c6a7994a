/* scan.h — the Mamba-1 selective scan (math.md §1 step 6, backward §4.2), channels last.
 *
 * Per batch b and channel e, with state h[e, 0..N) (h = h0 or 0 before the first token):
 *   δ_t    = softplus(delta_t[e] + delta_bias[e])        (softplus only if delta_softplus)
 *   h_t    = exp(δ_t A[e,:]) ⊙ h_{t-1} + δ_t u_t[e] B_t[:]
 *   y_t[e] = <h_t, C_t> + D[e] u_t[e]
 *   out_t  = y_t · silu(z_t[e])                          (only if z != NULL)
 * With segment ids (seg), h_{t-1} is taken as 0 at the first token of every segment but the
 * row's first (seg[t] != seg[t-1]): documents packed into one row do not see each other.
 *
 * Memory: forward saves the state entering every chunk of SCAN_M1_CHUNK tokens (`ckpt`,
 * [B, nchunks, E, N]); backward walks the chunks in reverse, recomputes the states inside one
 * chunk from its saved boundary and runs the reverse (adjoint) scan, so no per-token state is
 * ever stored.
 *
 * Row strides: every [B, T, X] operand is rows of X values with its own row stride (ld_*),
 * sequence b starting at row b*T.  States [B, E, N] have a batch stride (>= E*N). */
#ifndef SSMLM_SCAN_H
#define SSMLM_SCAN_H

#include "kernels/real.h"
#include "kernels/vmath.h"

/* Tokens between saved states. */
#define SCAN_M1_CHUNK 32
/* Channels handled together (the vector lanes of the kernel). */
#define SCAN_M1_EBLOCK 16

/* Operands of one scan call (precision-specific struct: scan_m1_io_f32 / _f64). */
typedef struct RNAME(scan_m1_io) {
    int64_t B, T, E, N;
    const real *u;          int64_t ld_u;     /* [B, T, E] input */
    const real *delta;      int64_t ld_delta; /* [B, T, E] before bias and softplus */
    const real *delta_bias;                   /* [E] or NULL */
    int delta_softplus;                       /* apply softplus to delta + bias */
    const real *A;                            /* [E, N] */
    const real *Bm;         int64_t ld_B;     /* [B, T, N] input matrix */
    const real *Cm;         int64_t ld_C;     /* [B, T, N] output matrix */
    const real *D;                            /* [E] skip weight or NULL */
    const real *z;          int64_t ld_z;     /* [B, T, E] gate or NULL */
    const int32_t *seg;                       /* [B, T] segment ids (non-decreasing per row)
                                                 or NULL: one segment per row */
} RNAME(scan_m1_io);

/* Gradients written by the backward scan.  Inputs' gradients are OVERWRITTEN, parameter-like
 * ones (dA, dD, ddelta_bias) ACCUMULATED; any pointer may be NULL to skip it. */
typedef struct RNAME(scan_m1_grads) {
    real *du;          int64_t ld_du;      /* [B, T, E] */
    real *ddelta;      int64_t ld_ddelta;  /* [B, T, E] w.r.t. delta before bias / softplus */
    real *dB;          int64_t ld_dB;      /* [B, T, N] */
    real *dC;          int64_t ld_dC;      /* [B, T, N] */
    real *dz;          int64_t ld_dz;      /* [B, T, E] (only if io->z) */
    real *dA;                              /* [E, N] += */
    real *dD;                              /* [E] += */
    real *ddelta_bias;                     /* [E] += */
    real *dh0;         int64_t ld_dh0;     /* [B, E, N] gradient of the initial state */
} RNAME(scan_m1_grads);

static inline int64_t scan_m1_nchunks(int64_t T) { return (T + SCAN_M1_CHUNK - 1) / SCAN_M1_CHUNK; }
/* Reals of saved chunk-boundary states: [B, nchunks, E, N]. */
static inline int64_t scan_m1_ckpt_size(int64_t B, int64_t T, int64_t E, int64_t N) {
    return B * scan_m1_nchunks(T) * E * N;
}
/* Channel blocks given to one task of a sequence: up to 4 neighbouring blocks, so that a task
 * walks its rows (each on another page) once for all of them, while leaving at least 32 tasks
 * to share among threads when the shapes allow.  Depends on the shapes only, so results do not
 * depend on the thread count. */
static inline int64_t scan_m1_blocks_per_task(int64_t B, int64_t E) {
    int64_t nblk = (E + SCAN_M1_EBLOCK - 1) / SCAN_M1_EBLOCK, G = 4;
    while (G > 1 && B * ((nblk + G - 1) / G) < 32) G--;
    return G;
}
/* Tasks per sequence. */
static inline int64_t scan_m1_ntask(int64_t B, int64_t E) {
    int64_t nblk = (E + SCAN_M1_EBLOCK - 1) / SCAN_M1_EBLOCK, G = scan_m1_blocks_per_task(B, E);
    return (nblk + G - 1) / G;
}
/* Reals of scratch needed by the backward scan: partial dB, dC of each task [B, T, ntask, 2N]
 * and partial dA, dD, ddelta_bias of each sequence [B, E, N+2]. */
static inline int64_t scan_m1_backward_scratch_size(int64_t B, int64_t T, int64_t E, int64_t N) {
    return B * T * scan_m1_ntask(B, E) * 2 * N + B * E * (N + 2);
}

/* out: [B, T, E] (row stride ld_out).  h0: initial states [B, E, N] (batch stride ld_h0) or
 * NULL for zeros; h1: final states (batch stride ld_h1) or NULL; h1 may alias h0.
 * ckpt: [B, nchunks, E, N] saved states for backward, or NULL. */
void RNAME(scan_m1_forward)(const RNAME(scan_m1_io) *s, real *out, int64_t ld_out,
                            const real *h0, int64_t ld_h0, real *h1, int64_t ld_h1, real *ckpt);

/* dout: [B, T, E] gradient of out (row stride ld_dout); dh1: gradient of the final states
 * [B, E, N] (batch stride ld_dh1) or NULL; ckpt from the forward over the same operands.
 * scratch: scan_m1_backward_scratch_size reals. */
void RNAME(scan_m1_backward)(const RNAME(scan_m1_io) *s, const real *ckpt, const real *dout,
                             int64_t ld_dout, const real *dh1, int64_t ld_dh1,
                             const RNAME(scan_m1_grads) *g, real *scratch);

/* One token per sequence (s->T is taken as 1, s->seg is ignored; rows are sequences): updates
 * the states h [B, E, N] (batch stride ld_h) in place and writes out [B, E] (row stride
 * ld_out). */
void RNAME(scan_m1_step)(const RNAME(scan_m1_io) *s, real *out, int64_t ld_out, real *h,
                         int64_t ld_h);

#endif

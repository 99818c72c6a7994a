/* ssd.h — the Mamba-2 SSM core ("state space duality"): the plain recurrence (reference and
 * decode path), the chunked SSD forward built on GEMMs, and its chunked backward.
 *
 * Per sequence b and head h (group g = h / (H/G)), with a scalar decay per head:
 *   S_t = exp(dt_t A) S_{t-1} + dt_t x_t B_t^T        (S: [P, N])
 *   y_t = S_t C_t + D x_t
 * Layouts (row-major, strides in elements):
 *   x, dx  [B, T, H, P]  token stride ldx  (>= H P; x may live inside a wider row, e.g. xBC)
 *   y, dy  [B, T, H, P]  token stride ldy  (>= H P)
 *   Bm, Cm, dB, dC [B, T, G, N]  token stride ldbc (>= G N)
 *   dt, ddt [B, T, H] contiguous (dt after softplus, > 0);  A, D, dA, dD [H] (A < 0; D may be NULL)
 *   states [B, H, P, N] with sequence stride ldst (>= H P N).
 * Segments: with seg [B, T] (ids non-decreasing within a row), the state is reset to 0 before
 * the first token of every segment but the row's first (seg[t] != seg[t-1]), i.e. the decay
 * across a segment boundary is 0: packed documents do not see each other.  The initial state
 * feeds the row's first segment.  seg == NULL: one segment per row.
 * The chunked kernels take caller-provided work space (sizes from the *_work_size functions,
 * which depend only on the dims); their results do not depend on the thread count. */
#ifndef SSMLM_SSD_H
#define SSMLM_SSD_H

#include "kernels/real.h"

typedef struct ssd_dims {
    int64_t B, T, H, P, G, N;
    int64_t Q;     /* chunk length of the chunked kernels */
    int64_t ldx;   /* token stride of x and dx */
    int64_t ldy;   /* token stride of y and dy */
    int64_t ldbc;  /* token stride of Bm, Cm, dB and dC */
    int64_t ldst;  /* sequence stride of the states */
    const int32_t *seg; /* [B, T] segment ids or NULL (see above) */
} ssd_dims;

/* Dims with contiguous tensors (ldx = ldy = H P, ldbc = G N, ldst = H P N), no segments. */
ssd_dims RNAME(ssd_dims_make)(int64_t B, int64_t T, int64_t H, int64_t P, int64_t G, int64_t N,
                              int64_t Q);

/* Plain recurrence over T tokens.  state: [B, H, P, N] (stride ldst) holds the initial state
 * on entry (zero it for a fresh start) and the state after the last token on exit. */
void RNAME(ssd_scan)(const ssd_dims *d, real *y, const real *x, const real *dt, const real *A,
                     const real *Bm, const real *Cm, const real *D, real *state);

/* One token per sequence (d->T and d->seg are ignored): x, y [B, H, P], dt [B, H], Bm, Cm
 * [B, G, N] with the strides of d; state updated in place. */
void RNAME(ssd_step)(const ssd_dims *d, real *y, const real *x, const real *dt, const real *A,
                     const real *Bm, const real *Cm, const real *D, real *state);

/* Chunked SSD forward (chunk length d->Q, T need not be a multiple of it).
 * state0: initial state or NULL (zeros); state1: final state or NULL; state0 may equal state1.
 * work: ssd_forward_work_size(d) reals. */
int64_t RNAME(ssd_forward_work_size)(const ssd_dims *d);
void RNAME(ssd_forward)(const ssd_dims *d, real *y, const real *x, const real *dt, const real *A,
                        const real *Bm, const real *Cm, const real *D, const real *state0,
                        real *state1, real *work);

/* Chunked SSD backward.  Given dy and the cotangent of the final state dstate1 (NULL = zero),
 * OVERWRITES dx, ddt, dB, dC, dA [H], dD [H] (= sum over b, t, p of dy x) and dstate0
 * (dD, dstate0 may be NULL to skip).  Forward quantities (chunk states included) are
 * recomputed from the inputs and state0 (NULL = zeros).  work: ssd_backward_work_size(d)
 * reals. */
int64_t RNAME(ssd_backward_work_size)(const ssd_dims *d);
void RNAME(ssd_backward)(const ssd_dims *d, const real *dy, const real *dstate1, const real *x,
                         const real *dt, const real *A, const real *Bm, const real *Cm,
                         const real *D, const real *state0, real *dx, real *ddt, real *dA,
                         real *dD, real *dB, real *dC, real *dstate0, real *work);

#endif

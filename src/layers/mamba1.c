/* mamba1.c — the Mamba-1 mixer (mamba_ssm `Mamba`, math.md §1): in_proj -> causal depthwise
 * conv + SiLU -> x_proj (dt | B | C) -> dt_proj -> selective scan with D skip and SiLU(z)
 * gate -> out_proj.  Forward, backward and the single-token step of layers.h.
 *
 * Saved for backward (acts, per token): xz [2E] (in_proj output: x then z), conv output
 * before SiLU [E], xc = SiLU(conv) [E], x_dbl [R+2N], dt before bias [E], gated scan output
 * [E]; plus the scan's chunk-boundary states [B, ceil(T/SCAN_M1_CHUNK), E, N].
 * Per-sequence state: conv [E, K] (last K pre-conv x, newest at K-1), then ssm [E, N]. */
#include "layers/layers.h"
#include "kernels/scan.h"
#include <string.h>

typedef struct m1_dims {
    int64_t D, E, N, K, R, P, S; /* P = R + 2N (x_proj rows), S = state size per sequence */
} m1_dims;

static m1_dims m1_dims_of(const ssmlm_config *c) {
    m1_dims d;
    d.D = c->d_model;
    d.E = ssmlm_m1_d_inner(c);
    d.N = c->m1_d_state;
    d.K = c->m1_d_conv;
    d.R = c->m1_dt_rank;
    d.P = d.R + 2 * d.N;
    d.S = ssmlm_mamba1_state_size(c);
    SSMLM_ASSERT(d.D > 0 && d.E > 0 && d.N > 0 && d.K > 0 && d.R > 0);
    return d;
}

/* Reals per token of the saved tensors xz, conv, xc, x_dbl, dt, y. */
static int64_t m1_saved_per_token(const m1_dims *d) { return 6 * d->E + d->P; }

int64_t RNAME(mamba1_acts_size)(const ssmlm_config *c, int64_t B, int64_t T) {
    m1_dims d = m1_dims_of(c);
    return B * T * m1_saved_per_token(&d) + scan_m1_ckpt_size(B, T, d.E, d.N);
}

int64_t RNAME(mamba1_scratch_size)(const ssmlm_config *c, int64_t B, int64_t T) {
    m1_dims d = m1_dims_of(c);
    int64_t M = B * T;
    /* forward without acts keeps its intermediates here; step is the forward with T = 1 */
    int64_t fwd = M * m1_saved_per_token(&d) + d.E * d.N + 2 * B * d.E * d.K;
    /* A, dA, dy_gated, dxz, dxc, ddt, dx_dbl, scan partials */
    int64_t bwd = 2 * d.E * d.N + M * (5 * d.E + d.P) +
                  scan_m1_backward_scratch_size(B, T, d.E, d.N);
    return fwd > bwd ? fwd : bwd;
}

/* Views of the saved tensors (in acts, or in scratch when forward runs without acts). */
typedef struct m1_saved {
    real *xz, *conv, *xc, *xdbl, *dt, *yg, *ckpt, *end;
} m1_saved;

static m1_saved m1_saved_at(real *p, const m1_dims *d, int64_t M) {
    m1_saved s;
    s.xz = p;
    s.conv = s.xz + M * 2 * d->E;
    s.xc = s.conv + M * d->E;
    s.xdbl = s.xc + M * d->E;
    s.dt = s.xdbl + M * d->P;
    s.yg = s.dt + M * d->E;
    s.ckpt = s.yg + M * d->E;
    s.end = s.ckpt;
    return s;
}

/* A = -exp(A_log), [E, N]. */
static void m1_make_A(real *A, const real *A_log, int64_t n) {
    for (int64_t i = 0; i < n; i++) A[i] = -REXP(A_log[i]);
}

/* xc = silu(v), [M, E]. */
static void m1_silu(real *xc, const real *v, int64_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 15))
    for (int64_t i = 0; i < n; i++) xc[i] = v[i] * RNAME(vsigmoid)(v[i]);
}

/* The scan operands of the layer: u = xc, delta = dt (bias and softplus inside the scan),
 * B and C from x_dbl, z from the second half of xz. */
static RNAME(scan_m1_io) m1_scan_io(const m1_dims *d, real *const *w, int64_t B, int64_t T,
                                    const real *xz, const real *xc, const real *xdbl,
                                    const real *dt, const real *A) {
    RNAME(scan_m1_io) s;
    memset(&s, 0, sizeof s);
    s.B = B;
    s.T = T;
    s.E = d->E;
    s.N = d->N;
    s.u = xc;
    s.ld_u = d->E;
    s.delta = dt;
    s.ld_delta = d->E;
    s.delta_bias = w[M1_DT_PROJ_B];
    s.delta_softplus = 1;
    s.A = A;
    s.Bm = xdbl + d->R;
    s.ld_B = d->P;
    s.Cm = xdbl + d->R + d->N;
    s.ld_C = d->P;
    s.D = w[M1_D];
    s.z = xz + d->E;
    s.ld_z = 2 * d->E;
    return s;
}

/* xdbl [M, P] = xc W_x^T;  dt [M, E] = xdbl[:, :R] W_dt^T. */
static void m1_project(const m1_dims *d, real *const *w, int64_t M, const real *xc, real *xdbl,
                       real *dt) {
    RNAME(linear_forward)(xdbl, xc, w[M1_X_PROJ], NULL, M, d->P, d->E);
    RNAME(gemm)(0, 1, M, d->E, d->R, 1, xdbl, d->P, w[M1_DT_PROJ_W], d->R, 0, dt, d->E);
}

void RNAME(mamba1_forward)(const ssmlm_config *c, real *const *w, int64_t B, int64_t T,
                           const int32_t *seg, const real *x, real *y, real *acts, real *scratch,
                           const real *state0, real *state1, int64_t cap) {
    (void)cap;
    const m1_dims d = m1_dims_of(c);
    const int64_t M = B * T, E = d.E, K = d.K;
    m1_saved s = m1_saved_at(acts ? acts : scratch, &d, M);
    real *A = acts ? scratch : s.end;
    real *conv0 = A + E * d.N, *conv1 = conv0 + B * E * K; /* [B, E, K] each */

    /* xz = x W_in^T, [M, 2E] */
    RNAME(linear_forward)(s.xz, x, w[M1_IN_PROJ], NULL, M, 2 * E, d.D);
    /* conv history from state0 (gathered first: state1 may alias state0) */
    if (state0)
        for (int64_t b = 0; b < B; b++)
            memcpy(conv0 + b * E * K, state0 + b * d.S, (size_t)(E * K) * sizeof(real));
    RNAME(conv1d_forward)(s.conv, E, s.xz, 2 * E, w[M1_CONV_W], w[M1_CONV_B],
                          state0 ? conv0 : NULL, seg, B, T, E, K);
    m1_silu(s.xc, s.conv, M * E);
    m1_project(&d, w, M, s.xc, s.xdbl, s.dt);
    m1_make_A(A, w[M1_A_LOG], E * d.N);
    RNAME(scan_m1_io) io = m1_scan_io(&d, w, B, T, s.xz, s.xc, s.xdbl, s.dt, A);
    io.seg = seg;
    RNAME(scan_m1_forward)(&io, s.yg, E, state0 ? state0 + E * K : NULL, d.S,
                           state1 ? state1 + E * K : NULL, d.S, acts ? s.ckpt : NULL);
    /* y = y_gated W_out^T, [M, D] */
    RNAME(linear_forward)(y, s.yg, w[M1_OUT_PROJ], NULL, M, d.D, E);
    if (state1) {
        RNAME(conv1d_final_state)(conv1, s.xz, 2 * E, state0 ? conv0 : NULL, seg, B, T, E, K);
        for (int64_t b = 0; b < B; b++)
            memcpy(state1 + b * d.S, conv1 + b * E * K, (size_t)(E * K) * sizeof(real));
    }
}

void RNAME(mamba1_backward)(const ssmlm_config *c, real *const *w, real *const *gw, int64_t B,
                            int64_t T, const int32_t *seg, const real *x, const real *acts,
                            const real *dy, real *dx, real *scratch) {
    const m1_dims d = m1_dims_of(c);
    const int64_t M = B * T, E = d.E, N = d.N, P = d.P, R = d.R;
    m1_saved s = m1_saved_at((real *)acts, &d, M);
    real *A = scratch, *dA = A + E * N;
    real *dyg = dA + E * N;   /* [M, E] gradient of the gated scan output */
    real *dxz = dyg + M * E;  /* [M, 2E] */
    real *dxc = dxz + M * 2 * E; /* [M, E] gradient of xc, then of the conv output */
    real *ddt = dxc + M * E;  /* [M, E] */
    real *dxdbl = ddt + M * E; /* [M, P] */
    real *sscr = dxdbl + M * P;

    /* out_proj: dyg = dy W_out, dW_out += dy^T y_gated */
    RNAME(linear_backward)(dyg, gw[M1_OUT_PROJ], NULL, dy, s.yg, w[M1_OUT_PROJ], M, d.D, E, 0);

    m1_make_A(A, w[M1_A_LOG], E * N);
    RNAME(vec_zero)(dA, E * N);
    RNAME(scan_m1_io) io = m1_scan_io(&d, w, B, T, s.xz, s.xc, s.xdbl, s.dt, A);
    io.seg = seg;
    RNAME(scan_m1_grads) g;
    memset(&g, 0, sizeof g);
    g.du = dxc;
    g.ld_du = E;
    g.ddelta = ddt;
    g.ld_ddelta = E;
    g.dB = dxdbl + R;
    g.ld_dB = P;
    g.dC = dxdbl + R + N;
    g.ld_dC = P;
    g.dz = dxz + E;
    g.ld_dz = 2 * E;
    g.dA = gw[M1_A_LOG] ? dA : NULL;
    g.dD = gw[M1_D];
    g.ddelta_bias = gw[M1_DT_PROJ_B];
    RNAME(scan_m1_backward)(&io, s.ckpt, dyg, E, NULL, 0, &g, sscr);
    /* A = -exp(A_log): dA_log = dA ⊙ A */
    if (gw[M1_A_LOG])
        for (int64_t i = 0; i < E * N; i++) gw[M1_A_LOG][i] += dA[i] * A[i];

    /* dt_proj: dx_dbl[:, :R] = ddt W_dt;  dW_dt += ddt^T x_dbl[:, :R] */
    RNAME(gemm)(0, 0, M, R, E, 1, ddt, E, w[M1_DT_PROJ_W], R, 0, dxdbl, P);
    if (gw[M1_DT_PROJ_W])
        RNAME(gemm)(1, 0, E, R, M, 1, ddt, E, s.xdbl, P, 1, gw[M1_DT_PROJ_W], R);
    /* x_proj: dxc += dx_dbl W_x;  dW_x += dx_dbl^T xc */
    RNAME(linear_backward)(dxc, gw[M1_X_PROJ], NULL, dxdbl, s.xc, w[M1_X_PROJ], M, P, E, 1);
    /* SiLU: d conv = dxc silu'(conv) */
#pragma omp parallel for schedule(static) if (M * E > (1 << 15))
    for (int64_t i = 0; i < M * E; i++) {
        real v = s.conv[i], sg = RNAME(vsigmoid)(v);
        dxc[i] *= sg * (1 + v * (1 - sg));
    }
    /* conv: dx part of dxz, dW_conv, db_conv */
    RNAME(conv1d_backward)(dxz, 2 * E, gw[M1_CONV_W], w[M1_CONV_B] ? gw[M1_CONV_B] : NULL, dxc, E,
                           s.xz, 2 * E, w[M1_CONV_W], seg, B, T, E, d.K);
    /* in_proj: dx = dxz W_in, dW_in += dxz^T x */
    RNAME(linear_backward)(dx, gw[M1_IN_PROJ], NULL, dxz, x, w[M1_IN_PROJ], M, 2 * E, d.D, 0);
}

void RNAME(mamba1_step)(const ssmlm_config *c, real *const *w, int64_t B, const real *x, real *y,
                        real *state, const int64_t *pos, int64_t cap, real *scratch) {
    (void)pos;
    (void)cap;
    const m1_dims d = m1_dims_of(c);
    const int64_t E = d.E, K = d.K;
    m1_saved s = m1_saved_at(scratch, &d, B);
    real *A = s.end;

    RNAME(linear_forward)(s.xz, x, w[M1_IN_PROJ], NULL, B, 2 * E, d.D);
    /* push x into the conv state [E, K] of each sequence and convolve */
    for (int64_t b = 0; b < B; b++)
        RNAME(conv1d_step)(s.conv + b * E, E, s.xz + b * 2 * E, 2 * E, state + b * d.S,
                           w[M1_CONV_W], w[M1_CONV_B], 1, E, K);
    m1_silu(s.xc, s.conv, B * E);
    m1_project(&d, w, B, s.xc, s.xdbl, s.dt);
    m1_make_A(A, w[M1_A_LOG], E * d.N);
    RNAME(scan_m1_io) io = m1_scan_io(&d, w, B, 1, s.xz, s.xc, s.xdbl, s.dt, A);
    RNAME(scan_m1_step)(&io, s.yg, E, state + E * K, d.S);
    RNAME(linear_forward)(y, s.yg, w[M1_OUT_PROJ], NULL, B, d.D, E);
}

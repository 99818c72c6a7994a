/* mamba2.c — the Mamba-2 mixer (math.md §2): in_proj -> causal conv + SiLU on xBC ->
 * SSD with D skip (chunked for sequences, the recurrence for single tokens) -> gated grouped
 * RMSNorm (norm_before_gate=False) -> out_proj.
 *
 * Saved for backward (acts): the in_proj output zxbcdt [B T, 2E+2GN+H], the SSD output y
 * (D x included) [B T, E] and the norm's rstd [B T, G].  The backward recomputes the conv, dt,
 * the SSD internals (chunk states included) and the norm output.
 * After forward, scratch holds xBC_conv [B T, cd], dt [B T, H], A [H], v = y silu(z) [B T, E]
 * and y_normed [B T, E], each starting at a multiple of 16 reals (tests read them).
 * Per-sequence state: conv [conv_dim, K] (pre-conv xBC, newest at K-1), then ssm [H, P, N]. */
#include "layers/layers.h"
#include "kernels/ssd.h"
#include <string.h>

/* The gated norm's eps is fixed at 1e-5 in the references (not the config's norm_eps). */
#define M2_GATED_NORM_EPS 1e-5

typedef struct m2dims {
    int64_t D, E, H, P, G, N, K, Q;
    int64_t cd; /* conv_dim = E + 2GN: the xBC channels */
    int64_t dp; /* in_proj rows 2E + 2GN + H: z | xBC | dt */
    int64_t ss; /* state reals per sequence */
} m2dims;

static m2dims dims_of(const ssmlm_config *c) {
    m2dims m;
    m.D = c->d_model;
    m.E = ssmlm_m2_d_inner(c);
    m.H = ssmlm_m2_nheads(c);
    m.P = c->m2_headdim;
    m.G = c->m2_ngroups;
    m.N = c->m2_d_state;
    m.K = c->m2_d_conv;
    m.Q = c->m2_chunk_size;
    m.cd = ssmlm_m2_conv_dim(c);
    m.dp = ssmlm_m2_in_proj_dim(c);
    m.ss = ssmlm_mamba2_state_size(c);
    return m;
}

/* SSD view of xBC [B T, cd] (x | B | C), y [B T, E] and the ssm part of the states. */
static ssd_dims ssd_of(const m2dims *m, int64_t B, int64_t T) {
    ssd_dims s = RNAME(ssd_dims_make)(B, T, m->H, m->P, m->G, m->N, m->Q);
    s.ldx = m->cd;
    s.ldbc = m->cd;
    s.ldy = m->E;
    s.ldst = m->ss;
    return s;
}

static int64_t rup(int64_t n) { return (n + 15) / 16 * 16; }

static real *take(real **cur, int64_t n) {
    real *r = *cur;
    *cur += rup(n);
    return r;
}

int64_t RNAME(mamba2_acts_size)(const ssmlm_config *c, int64_t B, int64_t T) {
    m2dims m = dims_of(c);
    int64_t BT = B * T;
    return rup(BT * m.dp) + rup(BT * m.E) + rup(BT * m.G);
}

static int64_t fwd_scratch(const m2dims *m, int64_t B, int64_t T) {
    ssd_dims s = ssd_of(m, B, T);
    int64_t BT = B * T;
    return rup(BT * m->cd) + rup(BT * m->H) + rup(m->H) + 2 * rup(BT * m->E) +
           RNAME(ssd_forward_work_size)(&s);
}

static int64_t bwd_scratch(const m2dims *m, int64_t B, int64_t T) {
    ssd_dims s = ssd_of(m, B, T);
    int64_t BT = B * T;
    return rup(BT * m->dp) + 3 * rup(BT * m->cd) + 2 * rup(BT * m->H) + 3 * rup(m->H) +
           3 * rup(BT * m->E) + RNAME(ssd_backward_work_size)(&s);
}

static int64_t step_scratch(const m2dims *m, int64_t B) {
    return rup(B * m->dp) + rup(B * m->cd) + rup(B * m->H) + rup(m->H) + 3 * rup(B * m->E);
}

int64_t RNAME(mamba2_scratch_size)(const ssmlm_config *c, int64_t B, int64_t T) {
    m2dims m = dims_of(c);
    int64_t f = fwd_scratch(&m, B, T), b = bwd_scratch(&m, B, T), s = step_scratch(&m, B);
    int64_t r = f > b ? f : b;
    return r > s ? r : s;
}

/* xbc [B T, cd] = silu(conv(xBC)) over the sequence (conv state0 per sequence, or zeros;
 * seg: segment ids or NULL).  dsilu (may be NULL): receives silu'(conv(xBC)) for the
 * backward. */
static void conv_silu(const m2dims *m, real *const *w, int64_t B, int64_t T, const int32_t *seg,
                      const real *zx, real *xbc, real *dsilu, const real *state0) {
    if (!state0) {
        RNAME(conv1d_forward)(xbc, m->cd, zx + m->E, m->dp, w[M2_CONV_W], w[M2_CONV_B], NULL, seg,
                              B, T, m->cd, m->K);
    } else {
        for (int64_t b = 0; b < B; b++)
            RNAME(conv1d_forward)(xbc + b * T * m->cd, m->cd, zx + b * T * m->dp + m->E, m->dp,
                                  w[M2_CONV_W], w[M2_CONV_B], state0 + b * m->ss,
                                  seg ? seg + b * T : NULL, 1, T, m->cd, m->K);
    }
    const int64_t n = B * T * m->cd;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        /* silu(v) = v s, silu'(v) = s (1 + v (1 - s)), s = sigmoid(v) */
        const real v = xbc[i], sg = RNAME(sigmoid)(v);
        if (dsilu) dsilu[i] = sg * (1 + v * (1 - sg));
        xbc[i] = v * sg;
    }
}

/* dt [M, H] = softplus(dt_raw + dt_bias);  Aneg [H] = -exp(A_log). */
static void dt_and_a(const m2dims *m, real *const *w, int64_t M, const real *zx, real *dt,
                     real *Aneg) {
    const real *bias = w[M2_DT_BIAS], *alog = w[M2_A_LOG];
    const int64_t off = m->E + m->cd;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < M; i++)
        for (int64_t h = 0; h < m->H; h++)
            dt[i * m->H + h] = RNAME(softplus)(zx[i * m->dp + off + h] + bias[h]);
    for (int64_t h = 0; h < m->H; h++) Aneg[h] = -REXP(alog[h]);
}

/* v = y silu(z) [M, E];  yn = rmsnorm over groups of E/G channels (rstd may be NULL). */
static void gated_norm(const m2dims *m, real *const *w, int64_t M, const real *zx,
                       const real *y, real *v, real *yn, real *rstd) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < M; i++)
        for (int64_t e = 0; e < m->E; e++)
            v[i * m->E + e] = y[i * m->E + e] * RNAME(silu)(zx[i * m->dp + e]);
    RNAME(rmsnorm_forward)(yn, rstd, v, w[M2_NORM_W], M, m->E, m->E / m->G, M2_GATED_NORM_EPS);
}

/* x, y [B, T, D]; states [B][conv_dim K + H P N] (see layers.h). */
void RNAME(mamba2_forward)(const ssmlm_config *c, real *const *w, int64_t B, int64_t T,
                           const int32_t *seg, const real *x, real *y, real *acts, real *scratch,
                           const real *state0, real *state1, int64_t cap) {
    (void)cap;
    m2dims m = dims_of(c);
    ssd_dims sd = ssd_of(&m, B, T);
    sd.seg = seg;
    const int64_t BT = B * T, ckn = m.cd * m.K;
    real *cur = acts;
    real *zx = take(&cur, BT * m.dp), *yssd = take(&cur, BT * m.E), *rstd = take(&cur, BT * m.G);
    cur = scratch;
    real *xbc = take(&cur, BT * m.cd), *dt = take(&cur, BT * m.H), *Aneg = take(&cur, m.H);
    real *v = take(&cur, BT * m.E), *yn = take(&cur, BT * m.E), *work = cur;

    RNAME(linear_forward)(zx, x, w[M2_IN_PROJ], NULL, BT, m.dp, m.D);
    conv_silu(&m, w, B, T, seg, zx, xbc, NULL, state0);
    dt_and_a(&m, w, BT, zx, dt, Aneg);
    RNAME(ssd_forward)(&sd, yssd, xbc, dt, Aneg, xbc + m.E, xbc + m.E + m.G * m.N, w[M2_D],
                       state0 ? state0 + ckn : NULL, state1 ? state1 + ckn : NULL, work);
    gated_norm(&m, w, BT, zx, yssd, v, yn, rstd);
    RNAME(linear_forward)(y, yn, w[M2_OUT_PROJ], NULL, BT, m.D, m.E);
    if (state1)
        for (int64_t b = 0; b < B; b++)
            RNAME(conv1d_final_state)(state1 + b * m.ss, zx + b * T * m.dp + m.E, m.dp,
                                      state0 ? state0 + b * m.ss : NULL,
                                      seg ? seg + b * T : NULL, 1, T, m.cd, m.K);
}

/* x, dy, dx [B, T, D]; acts from mamba2_forward (run with state0 == NULL). */
void RNAME(mamba2_backward)(const ssmlm_config *c, real *const *w, real *const *gw, int64_t B,
                            int64_t T, const int32_t *seg, const real *x, const real *acts,
                            const real *dy, real *dx, real *scratch) {
    m2dims m = dims_of(c);
    ssd_dims sd = ssd_of(&m, B, T);
    sd.seg = seg;
    const int64_t BT = B * T, E = m.E, GN = m.G * m.N, dtoff = m.E + m.cd;
    const real *zx = acts, *yssd = acts + rup(BT * m.dp), *rstd = yssd + rup(BT * m.E);
    real *cur = scratch;
    real *dzx = take(&cur, BT * m.dp), *dsilu = take(&cur, BT * m.cd), *xbc = take(&cur, BT * m.cd);
    real *dt = take(&cur, BT * m.H), *ddt = take(&cur, BT * m.H);
    real *Aneg = take(&cur, m.H), *dA = take(&cur, m.H), *dD = take(&cur, m.H);
    real *e1 = take(&cur, BT * E), *e2 = take(&cur, BT * E), *e3 = take(&cur, BT * E);
    real *dxbc = take(&cur, BT * m.cd), *work = cur;

    /* recompute conv, dt, A and the norm output */
    conv_silu(&m, w, B, T, seg, zx, xbc, dsilu, NULL);
    dt_and_a(&m, w, BT, zx, dt, Aneg);
    const real *nw = w[M2_NORM_W];
    const int64_t gs = E / m.G;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < BT; i++)
        for (int64_t e = 0; e < E; e++) {
            real v = yssd[i * E + e] * RNAME(silu)(zx[i * m.dp + e]);
            e1[i * E + e] = v;
            e2[i * E + e] = v * rstd[i * m.G + e / gs] * nw[e];
        }

    /* out_proj: dyn (e3) = dy W_out, dW_out += dy^T yn */
    RNAME(linear_backward)(e3, gw[M2_OUT_PROJ], NULL, dy, e2, w[M2_OUT_PROJ], BT, m.D, E, 0);
    /* norm: dv (e2) */
    RNAME(rmsnorm_backward)(e2, gw[M2_NORM_W], e3, e1, rstd, nw, BT, E, gs);
    /* gate v = y silu(z): dz = dv y silu'(z) (into dzx), dy_ssd (e3) = dv silu(z) */
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < BT; i++)
        for (int64_t e = 0; e < E; e++) {
            const real z = zx[i * m.dp + e], dv = e2[i * E + e], sg = RNAME(sigmoid)(z);
            dzx[i * m.dp + e] = dv * yssd[i * E + e] * sg * (1 + z * (1 - sg));
            e3[i * E + e] = dv * z * sg;
        }

    /* SSD */
    RNAME(ssd_backward)(&sd, e3, NULL, xbc, dt, Aneg, xbc + E, xbc + E + GN, w[M2_D], NULL, dxbc,
                        ddt, dA, gw[M2_D] ? dD : NULL, dxbc + E, dxbc + E + GN, NULL, work);
    /* dt = softplus(dt_raw + dt_bias);  A = -exp(A_log): dA_log = dA A */
    const real *bias = w[M2_DT_BIAS];
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < BT; i++)
        for (int64_t h = 0; h < m.H; h++) {
            const real pre = zx[i * m.dp + dtoff + h] + bias[h];
            dzx[i * m.dp + dtoff + h] = ddt[i * m.H + h] * RNAME(softplus_grad)(pre);
        }
    if (gw[M2_DT_BIAS])
        for (int64_t i = 0; i < BT; i++)
            for (int64_t h = 0; h < m.H; h++) gw[M2_DT_BIAS][h] += dzx[i * m.dp + dtoff + h];
    for (int64_t h = 0; h < m.H; h++) {
        if (gw[M2_A_LOG]) gw[M2_A_LOG][h] += dA[h] * Aneg[h];
        if (gw[M2_D]) gw[M2_D][h] += dD[h];
    }

    /* conv + SiLU on xBC, into dzx's xBC columns */
    const int64_t n = BT * m.cd;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) dxbc[i] *= dsilu[i];
    RNAME(conv1d_backward)(dzx + E, m.dp, gw[M2_CONV_W], gw[M2_CONV_B], dxbc, m.cd, zx + E, m.dp,
                           w[M2_CONV_W], seg, B, T, m.cd, m.K);
    /* in_proj */
    RNAME(linear_backward)(dx, gw[M2_IN_PROJ], NULL, dzx, x, w[M2_IN_PROJ], BT, m.dp, m.D, 0);
}

/* x, y [B, D]; state [B][conv_dim K + H P N] updated in place. */
void RNAME(mamba2_step)(const ssmlm_config *c, real *const *w, int64_t B, const real *x, real *y,
                        real *state, const int64_t *pos, int64_t cap, real *scratch) {
    (void)pos;
    (void)cap;
    m2dims m = dims_of(c);
    ssd_dims sd = ssd_of(&m, B, 1);
    real *cur = scratch;
    real *zx = take(&cur, B * m.dp), *xbc = take(&cur, B * m.cd), *dt = take(&cur, B * m.H);
    real *Aneg = take(&cur, m.H), *ys = take(&cur, B * m.E), *v = take(&cur, B * m.E);
    real *yn = take(&cur, B * m.E);

    RNAME(linear_forward)(zx, x, w[M2_IN_PROJ], NULL, B, m.dp, m.D);
    for (int64_t b = 0; b < B; b++)
        RNAME(conv1d_step)(xbc + b * m.cd, m.cd, zx + b * m.dp + m.E, m.dp, state + b * m.ss,
                           w[M2_CONV_W], w[M2_CONV_B], 1, m.cd, m.K);
    for (int64_t i = 0; i < B * m.cd; i++) xbc[i] = RNAME(silu)(xbc[i]);
    dt_and_a(&m, w, B, zx, dt, Aneg);
    RNAME(ssd_step)(&sd, ys, xbc, dt, Aneg, xbc + m.E, xbc + m.E + m.G * m.N, w[M2_D],
                    state + m.cd * m.K);
    gated_norm(&m, w, B, zx, ys, v, yn, NULL);
    RNAME(linear_forward)(y, yn, w[M2_OUT_PROJ], NULL, B, m.D, m.E);
}

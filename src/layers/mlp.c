/* mlp.c — the MLP sublayer: a = x W1^T [B, T, F1] (F1 = F, or 2F when gated), h = act(a)
 * [B, T, F], y = h W2^T [B, T, D]; no biases.  Activations (c->mlp_act):
 *   GELU        h = a Phi(a)                  (exact erf form)
 *   RELU2       h = relu(a)^2
 *   SWIGLU      h = silu(a[:F]) a[F:]         (Megatron)
 *   GATED_SILU  h = a[:F] silu(a[F:])         (mamba_ssm GatedMLP)
 * Only a is saved for backward (h is recomputed).  acts may be NULL when no backward follows
 * (a then lives in scratch).  No inference state; step is forward on one token. */
#include "layers/layers.h"

#define INV_SQRT2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794

static int is_gated(int act) { return act == SSMLM_ACT_SWIGLU || act == SSMLM_ACT_GATED_SILU; }

/* h [M, F] = act(a [M, F1]) */
static void act_forward(int act, real *h, const real *a, int64_t M, int64_t F) {
    int64_t F1 = is_gated(act) ? 2 * F : F;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < M; i++) {
        const real *ar = a + i * F1, *a2 = ar + F;
        real *hr = h + i * F;
        switch (act) {
        case SSMLM_ACT_GELU:
            for (int64_t j = 0; j < F; j++)
                hr[j] = (real)0.5 * ar[j] * ((real)1 + RNAME(verf)(ar[j] * (real)INV_SQRT2));
            break;
        case SSMLM_ACT_RELU2:
            for (int64_t j = 0; j < F; j++) hr[j] = ar[j] > 0 ? ar[j] * ar[j] : 0;
            break;
        case SSMLM_ACT_SWIGLU:
            for (int64_t j = 0; j < F; j++) hr[j] = RNAME(silu)(ar[j]) * a2[j];
            break;
        default: /* SSMLM_ACT_GATED_SILU */
            for (int64_t j = 0; j < F; j++) hr[j] = ar[j] * RNAME(silu)(a2[j]);
            break;
        }
    }
}

/* da [M, F1] from dh [M, F] and a [M, F1] */
static void act_backward(int act, real *da, const real *dh, const real *a, int64_t M,
                         int64_t F) {
    int64_t F1 = is_gated(act) ? 2 * F : F;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < M; i++) {
        const real *ar = a + i * F1, *a2 = ar + F, *g = dh + i * F;
        real *dr = da + i * F1, *d2 = dr + F;
        switch (act) {
        case SSMLM_ACT_GELU:
            /* gelu'(a) = Phi(a) + a phi(a) */
            for (int64_t j = 0; j < F; j++) {
                real v = ar[j];
                real cdf = (real)0.5 * ((real)1 + RNAME(verf)(v * (real)INV_SQRT2));
                real pdf = (real)INV_SQRT_2PI * RNAME(vexp)((real)-0.5 * v * v);
                dr[j] = g[j] * (cdf + v * pdf);
            }
            break;
        case SSMLM_ACT_RELU2:
            for (int64_t j = 0; j < F; j++) dr[j] = ar[j] > 0 ? g[j] * 2 * ar[j] : 0;
            break;
        case SSMLM_ACT_SWIGLU:
            for (int64_t j = 0; j < F; j++) {
                dr[j] = g[j] * a2[j] * RNAME(silu_grad)(ar[j]);
                d2[j] = g[j] * RNAME(silu)(ar[j]);
            }
            break;
        default: /* SSMLM_ACT_GATED_SILU */
            for (int64_t j = 0; j < F; j++) {
                dr[j] = g[j] * RNAME(silu)(a2[j]);
                d2[j] = g[j] * ar[j] * RNAME(silu_grad)(a2[j]);
            }
            break;
        }
    }
}

int64_t RNAME(mlp_acts_size)(const ssmlm_config *c, int64_t B, int64_t T) {
    return B * T * ssmlm_mlp_fc1_rows(c);
}

/* forward: [a when acts == NULL] | h [M, F];  backward: h, later dh [M, F] | da [M, F1] */
int64_t RNAME(mlp_scratch_size)(const ssmlm_config *c, int64_t B, int64_t T) {
    return B * T * (c->mlp_hidden + ssmlm_mlp_fc1_rows(c));
}

void RNAME(mlp_forward)(const ssmlm_config *c, real *const *w, int64_t B, int64_t T,
                        const int32_t *seg, const real *x, real *y, real *acts, real *scratch,
                        const real *state0, real *state1, int64_t cap) {
    (void)seg, (void)state0, (void)state1, (void)cap; /* per token: no segments, no state */
    int64_t M = B * T, D = c->d_model, F = c->mlp_hidden, F1 = ssmlm_mlp_fc1_rows(c);
    real *a = acts ? acts : scratch, *h = acts ? scratch : scratch + M * F1;
    RNAME(linear_forward)(a, x, w[MLP_FC1], NULL, M, F1, D);
    act_forward(c->mlp_act, h, a, M, F);
    RNAME(linear_forward)(y, h, w[MLP_FC2], NULL, M, D, F);
}

void RNAME(mlp_backward)(const ssmlm_config *c, real *const *w, real *const *gw, int64_t B,
                         int64_t T, const int32_t *seg, const real *x, const real *acts,
                         const real *dy, real *dx, real *scratch) {
    (void)seg;
    int64_t M = B * T, D = c->d_model, F = c->mlp_hidden;
    real *h = scratch, *da = scratch + M * F;
    act_forward(c->mlp_act, h, acts, M, F);
    /* dW2 += dy^T h, then dh = dy W2 (into h's place) */
    RNAME(linear_backward)(NULL, gw[MLP_FC2], NULL, dy, h, w[MLP_FC2], M, D, F, 0);
    RNAME(linear_backward)(h, NULL, NULL, dy, NULL, w[MLP_FC2], M, D, F, 0);
    act_backward(c->mlp_act, da, h, acts, M, F);
    RNAME(linear_backward)(dx, gw[MLP_FC1], NULL, da, x, w[MLP_FC1], M, ssmlm_mlp_fc1_rows(c), D,
                           0);
}

void RNAME(mlp_step)(const ssmlm_config *c, real *const *w, int64_t B, const real *x, real *y,
                     real *state, const int64_t *pos, int64_t cap, real *scratch) {
    (void)state, (void)pos;
    RNAME(mlp_forward)(c, w, B, 1, NULL, x, y, NULL, scratch, NULL, NULL, cap);
}

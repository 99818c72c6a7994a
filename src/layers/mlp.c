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

/* exp and erf of the elementwise loops.  fp64: libm.  fp32: branch-free forms that the
 * compiler vectorizes (libm's expf/erff are scalar calls and would dominate the MLP time). */
#if REAL_IS_F64
static inline real act_exp(real x) { return exp(x); }
static inline real act_erf(real x) { return erf(x); }
#else
/* x = n ln2 + r, exp(r) by a degree-7 polynomial (Cephes), 2^n from the exponent bits;
 * below 1.5 ulp, x clamped to [-87, 88]. */
static inline float act_exp(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float n = (x * 1.44269504088896341f + shifter) - shifter;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } u;
    u.i = ((int32_t)n + 127) << 23;
    return p * u.f;
}
/* erf(x) = x P(x^2) / Q(x^2) on [-4, 4] (the rational approximation used by XLA and Eigen);
 * absolute error below 4e-7, erf(+-4) rounds to +-1 in fp32. */
static inline float act_erf(float x) {
    x = x > 4.0f ? 4.0f : x;
    x = x < -4.0f ? -4.0f : x;
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 - 2.10102402082508e-06f;
    p = p * x2 - 5.69250639462346e-05f;
    p = p * x2 - 7.34990630326855e-04f;
    p = p * x2 - 2.95459980854025e-03f;
    p = p * x2 - 1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 - 2.13374055278905e-04f;
    q = q * x2 - 1.68282697438203e-03f;
    q = q * x2 - 7.37332916720468e-03f;
    q = q * x2 - 1.42647390514189e-02f;
    return x * p / q;
}
#endif

static inline real act_sigmoid(real v) { return (real)1 / ((real)1 + act_exp(-v)); }
static inline real act_silu(real v) { return v * act_sigmoid(v); }
/* silu'(v) = s (1 + v (1 - s)), s = sigmoid(v) */
static inline real act_silu_grad(real v) {
    real sg = act_sigmoid(v);
    return sg * ((real)1 + v * ((real)1 - sg));
}

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
                hr[j] = (real)0.5 * ar[j] * ((real)1 + act_erf(ar[j] * (real)INV_SQRT2));
            break;
        case SSMLM_ACT_RELU2:
            for (int64_t j = 0; j < F; j++) hr[j] = ar[j] > 0 ? ar[j] * ar[j] : 0;
            break;
        case SSMLM_ACT_SWIGLU:
            for (int64_t j = 0; j < F; j++) hr[j] = act_silu(ar[j]) * a2[j];
            break;
        default: /* SSMLM_ACT_GATED_SILU */
            for (int64_t j = 0; j < F; j++) hr[j] = ar[j] * act_silu(a2[j]);
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
                real cdf = (real)0.5 * ((real)1 + act_erf(v * (real)INV_SQRT2));
                real pdf = (real)INV_SQRT_2PI * act_exp((real)-0.5 * v * v);
                dr[j] = g[j] * (cdf + v * pdf);
            }
            break;
        case SSMLM_ACT_RELU2:
            for (int64_t j = 0; j < F; j++) dr[j] = ar[j] > 0 ? g[j] * 2 * ar[j] : 0;
            break;
        case SSMLM_ACT_SWIGLU:
            for (int64_t j = 0; j < F; j++) {
                dr[j] = g[j] * a2[j] * act_silu_grad(ar[j]);
                d2[j] = g[j] * act_silu(ar[j]);
            }
            break;
        default: /* SSMLM_ACT_GATED_SILU */
            for (int64_t j = 0; j < F; j++) {
                dr[j] = g[j] * act_silu(a2[j]);
                d2[j] = g[j] * ar[j] * act_silu_grad(a2[j]);
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
                        const real *x, real *y, real *acts, real *scratch, const real *state0,
                        real *state1, int64_t cap) {
    (void)state0, (void)state1, (void)cap;
    int64_t M = B * T, D = c->d_model, F = c->mlp_hidden, F1 = ssmlm_mlp_fc1_rows(c);
    real *a = acts ? acts : scratch, *h = acts ? scratch : scratch + M * F1;
    RNAME(linear_forward)(a, x, w[MLP_FC1], NULL, M, F1, D);
    act_forward(c->mlp_act, h, a, M, F);
    RNAME(linear_forward)(y, h, w[MLP_FC2], NULL, M, D, F);
}

void RNAME(mlp_backward)(const ssmlm_config *c, real *const *w, real *const *gw, int64_t B,
                         int64_t T, const real *x, const real *acts, const real *dy, real *dx,
                         real *scratch) {
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
    RNAME(mlp_forward)(c, w, B, 1, x, y, NULL, scratch, NULL, NULL, cap);
}

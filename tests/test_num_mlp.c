/* test_num_mlp.c — the MLP sublayer (src/layers/mlp.c): every golden case of kind
 * "gated_mlp" (output and all gradients), every activation against its definition evaluated
 * in double, finite-difference gradients of every activation (fp64 build), gradient
 * accumulation, forward without acts, and step == forward. */
#include "golden.h"
#include "layers/layers.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A layer instance with its parameters, gradients, input and output cotangent. */
typedef struct mlp_case {
    ssmlm_config c;
    int64_t B, T;
    real *w[MLP_NSLOTS], *gw[MLP_NSLOTS];
    int64_t n[MLP_NSLOTS];
    real *x, *dout, *y, *dx, *acts, *scratch;
} mlp_case;

static void case_alloc(mlp_case *m, int64_t B, int64_t T) {
    const ssmlm_config *c = &m->c;
    m->B = B;
    m->T = T;
    memset(m->w, 0, sizeof m->w);
    memset(m->gw, 0, sizeof m->gw);
    m->n[MLP_FC1] = ssmlm_mlp_fc1_rows(c) * c->d_model;
    m->n[MLP_FC2] = c->d_model * c->mlp_hidden;
    for (int s = MLP_FC1; s <= MLP_FC2; s++) {
        m->w[s] = calloc((size_t)m->n[s], sizeof(real));
        m->gw[s] = calloc((size_t)m->n[s], sizeof(real));
    }
    int64_t M = B * T * c->d_model;
    m->x = calloc((size_t)M, sizeof(real));
    m->dout = calloc((size_t)M, sizeof(real));
    m->y = calloc((size_t)M, sizeof(real));
    m->dx = calloc((size_t)M, sizeof(real));
    m->acts = calloc((size_t)RNAME(mlp_acts_size)(c, B, T), sizeof(real));
    m->scratch = calloc((size_t)RNAME(mlp_scratch_size)(c, B, T), sizeof(real));
}

static void case_free(mlp_case *m) {
    for (int s = 0; s < MLP_NSLOTS; s++) {
        free(m->w[s]);
        free(m->gw[s]);
    }
    free(m->x);
    free(m->dout);
    free(m->y);
    free(m->dx);
    free(m->acts);
    free(m->scratch);
}

static void forward(mlp_case *m) {
    RNAME(mlp_forward)(&m->c, m->w, m->B, m->T, NULL, m->x, m->y, m->acts, m->scratch, NULL, NULL,
                       0);
}

static void backward(mlp_case *m) {
    RNAME(mlp_backward)(&m->c, m->w, m->gw, m->B, m->T, NULL, m->x, m->acts, m->dout, m->dx,
                        m->scratch);
}

static void test_golden(const char *name) {
    golden g;
    if (!golden_open(&g, name)) {
        golden_close(&g);
        return;
    }
    mlp_case m;
    ssmlm_config_defaults(&m.c);
    m.c.d_model = (int64_t)golden_cfg(&g, "in_features");
    m.c.mlp_hidden = (int64_t)golden_cfg(&g, "hidden_resolved");
    cJSON *act = cJSON_GetObjectItemCaseSensitive(g.config, "activation");
    CHECK(cJSON_IsString(act) && strcmp(act->valuestring, "silu") == 0,
          "%s: GatedMLP activation must be silu", name);
    CHECK(golden_cfg(&g, "bias") == 0, "%s: GatedMLP with bias is not supported", name);
    m.c.mlp_act = SSMLM_ACT_GATED_SILU;
    const ssmlm_st_tensor *u = ssmlm_st_find(&g.st, "input.u");
    CHECK(u && u->ndim == 3, "%s: input.u must be [B, L, d]", name);
    if (!u || u->ndim != 3) {
        golden_close(&g);
        return;
    }
    case_alloc(&m, u->shape[0], u->shape[1]);
    int64_t n;
    const char *pn[] = {"param.fc1.weight", "param.fc2.weight"};
    for (int s = MLP_FC1; s <= MLP_FC2; s++) {
        real *t = golden_get(&g, pn[s - MLP_FC1], &n);
        CHECK(t && n == m.n[s], "%s: %s size", name, pn[s - MLP_FC1]);
        if (t && n == m.n[s]) memcpy(m.w[s], t, (size_t)n * sizeof(real));
        free(t);
    }
    int64_t M = m.B * m.T * m.c.d_model;
    real *x = golden_get(&g, "input.u", &n), *dout = golden_get(&g, "input.dout", NULL);
    if (x && dout && n == M) {
        memcpy(m.x, x, (size_t)M * sizeof(real));
        memcpy(m.dout, dout, (size_t)M * sizeof(real));
        forward(&m);
        golden_check(&g, "output.out", m.y, M, GOLDEN_TOL_FWD);
        backward(&m);
        golden_check(&g, "grad.fc1.weight", m.gw[MLP_FC1], m.n[MLP_FC1], GOLDEN_TOL_GRAD);
        golden_check(&g, "grad.fc2.weight", m.gw[MLP_FC2], m.n[MLP_FC2], GOLDEN_TOL_GRAD);
        golden_check(&g, "grad.u", m.dx, M, GOLDEN_TOL_GRAD);
    }
    free(x);
    free(dout);
    case_free(&m);
    golden_close(&g);
}

static int is_gated_act(int act) { return act == SSMLM_ACT_SWIGLU || act == SSMLM_ACT_GATED_SILU; }

static const char *act_name(int act) {
    static const char *names[] = {"gelu", "relu2", "swiglu", "gated_silu"};
    return names[act];
}

static void random_case(mlp_case *m, int act, int64_t D, int64_t F, int64_t B, int64_t T,
                        uint64_t seed) {
    ssmlm_config_defaults(&m->c);
    m->c.d_model = D;
    m->c.mlp_hidden = F;
    m->c.mlp_act = act;
    case_alloc(m, B, T);
    fill_uniform(m->w[MLP_FC1], m->n[MLP_FC1], 0.8, &seed);
    fill_uniform(m->w[MLP_FC2], m->n[MLP_FC2], 0.5, &seed);
    fill_uniform(m->x, B * T * D, 1.0, &seed);
    fill_uniform(m->dout, B * T * D, 1.0, &seed);
}

#if REAL_IS_F64
/* loss = sum(y * dout), in double */
static double loss_fn(void *ctx) {
    mlp_case *m = ctx;
    forward(m);
    double l = 0;
    for (int64_t i = 0; i < m->B * m->T * m->c.d_model; i++) l += (double)m->y[i] * m->dout[i];
    return l;
}

/* Finite differences of every parameter and the input. */
static void test_fd(int act) {
    mlp_case m;
    random_case(&m, act, 5, 7, 2, 3, 11 + (uint64_t)act);
    forward(&m);
    backward(&m);
    char what[128];
    const char *sn[] = {"fc1", "fc2"};
    for (int s = MLP_FC1; s <= MLP_FC2; s++) {
        snprintf(what, sizeof what, "mlp %s d%s", act_name(act), sn[s - MLP_FC1]);
        fd_check(what, m.w[s], m.gw[s], m.n[s], loss_fn, &m, 200, 1e-6);
    }
    snprintf(what, sizeof what, "mlp %s dx", act_name(act));
    fd_check(what, m.x, m.dx, m.B * m.T * m.c.d_model, loss_fn, &m, 200, 1e-6);
    case_free(&m);
}
#endif

/* The layer against the definition evaluated in double with libm (covers the fp32 build's
 * own exp / erf); pre-activations span about [-6, 6]. */
static void test_reference(int act) {
    mlp_case m;
    int64_t D = 6, F = 9, B = 2, T = 5, F1;
    random_case(&m, act, D, F, B, T, 300 + (uint64_t)act);
    for (int64_t i = 0; i < m.n[MLP_FC1]; i++) m.w[MLP_FC1][i] *= 2;
    forward(&m);
    F1 = ssmlm_mlp_fc1_rows(&m.c);
    int64_t M = B * T;
    double *a = calloc((size_t)F1, sizeof(double)), *h = calloc((size_t)F, sizeof(double));
    real *want = calloc((size_t)(M * D), sizeof(real));
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < F1; j++) {
            a[j] = 0;
            for (int64_t e = 0; e < D; e++) a[j] += (double)m.x[i * D + e] * m.w[MLP_FC1][j * D + e];
        }
        for (int64_t j = 0; j < F; j++) {
            double u = a[j], g = is_gated_act(act) ? a[F + j] : 0;
            switch (act) {
            case SSMLM_ACT_GELU: h[j] = 0.5 * u * (1 + erf(u / sqrt(2.0))); break;
            case SSMLM_ACT_RELU2: h[j] = u > 0 ? u * u : 0; break;
            case SSMLM_ACT_SWIGLU: h[j] = u / (1 + exp(-u)) * g; break;
            default: h[j] = u * g / (1 + exp(-g)); break;
            }
        }
        for (int64_t e = 0; e < D; e++) {
            double acc = 0;
            for (int64_t j = 0; j < F; j++) acc += h[j] * m.w[MLP_FC2][e * F + j];
            want[i * D + e] = (real)acc;
        }
    }
    char what[128];
    snprintf(what, sizeof what, "mlp %s forward == definition in double", act_name(act));
    golden_compare(what, m.y, want, M * D, REAL_IS_F64 ? 1e-13 : 2e-6);
    free(a);
    free(h);
    free(want);
    case_free(&m);
}

/* Backward adds into gw; forward without acts and step (one token) match forward. */
static void test_conventions(int act) {
    mlp_case m;
    int64_t D = 6, F = 9, B = 3, T = 4, M = B * T * D;
    random_case(&m, act, D, F, B, T, 100 + (uint64_t)act);
    forward(&m);
    backward(&m);
    real *g1[MLP_NSLOTS] = {0};
    for (int s = MLP_FC1; s <= MLP_FC2; s++) {
        g1[s] = malloc((size_t)m.n[s] * sizeof(real));
        memcpy(g1[s], m.gw[s], (size_t)m.n[s] * sizeof(real));
    }
    backward(&m);
    char what[128];
    for (int s = MLP_FC1; s <= MLP_FC2; s++) {
        for (int64_t i = 0; i < m.n[s]; i++) g1[s][i] *= 2;
        snprintf(what, sizeof what, "mlp %s gradient accumulates (slot %d)", act_name(act), s);
        golden_compare(what, m.gw[s], g1[s], m.n[s], REAL_IS_F64 ? 1e-14 : 1e-6);
        free(g1[s]);
    }

    real *y0 = malloc((size_t)M * sizeof(real)), *y1 = malloc((size_t)M * sizeof(real));
    memcpy(y0, m.y, (size_t)M * sizeof(real));
    RNAME(mlp_forward)(&m.c, m.w, B, T, NULL, m.x, y1, NULL, m.scratch, NULL, NULL, 0);
    snprintf(what, sizeof what, "mlp %s forward without acts", act_name(act));
    golden_compare(what, y1, y0, M, 0);

    real *st = calloc((size_t)RNAME(mlp_scratch_size)(&m.c, B * T, 1), sizeof(real));
    int64_t *pos = calloc((size_t)(B * T), sizeof(int64_t));
    RNAME(mlp_step)(&m.c, m.w, B * T, m.x, y1, NULL, pos, 0, st);
    snprintf(what, sizeof what, "mlp %s step == forward", act_name(act));
    golden_compare(what, y1, y0, M, REAL_IS_F64 ? 1e-14 : 1e-6);
    free(st);
    free(pos);
    free(y0);
    free(y1);
    case_free(&m);
}

int main(void) {
    char **cases = golden_cases_of_kind("gated_mlp");
    int ncases = 0;
    for (int i = 0; cases[i]; i++, ncases++) test_golden(cases[i]);
    CHECK(ncases > 0, "no golden case of kind gated_mlp");
    golden_free_list(cases);

    for (int act = SSMLM_ACT_GELU; act <= SSMLM_ACT_GATED_SILU; act++) {
#if REAL_IS_F64
        test_fd(act);
#endif
        test_reference(act);
        test_conventions(act);
    }
    TEST_END();
}

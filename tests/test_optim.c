/* test_optim.c — AdamW against hand-computed values (bias correction over two steps, decoupled
 * weight decay on flagged tensors only, the no-decay list, clipping scale, gradient norm, NaN/Inf
 * naming the tensor, thread-count independence), the LR schedule and the paper's recipe; for
 * fp32 and fp64 models. */
#include "test.h"
#include "train/optim.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A tiny hybrid model with an allocated gradient arena (one forward + backward). */
static ssmlm_model *make_model(ssmlm_dtype dt) {
    ssmlm_config c;
    ssmlm_model *m = NULL;
    CHECK_OK(ssmlm_preset(&c, "tiny-hybrid"));
    CHECK_OK(ssmlm_model_create(&m, &c, dt));
    if (!m) return NULL;
    ssmlm_model_init(m, 7);
    int32_t ids[8], labels[8];
    for (int t = 0; t < 8; t++) {
        ids[t] = (int32_t)(t * 37 % 256);
        labels[t] = (int32_t)((t + 1) * 37 % 256);
    }
    CHECK_OK(ssmlm_model_forward(m, ids, labels, 1, 8, NULL, NULL));
    CHECK_OK(ssmlm_model_backward(m, 0));
    ssmlm_model_zero_grad(m);
    return m;
}

static int is64(ssmlm_model *m) { return ssmlm_model_dtype(m) == SSMLM_F64; }

static double get(const void *base, int f64, int64_t j) {
    return f64 ? ((const double *)base)[j] : (double)((const float *)base)[j];
}
static void put(void *base, int f64, int64_t j, double v) {
    if (f64) ((double *)base)[j] = v;
    else ((float *)base)[j] = (float)v;
}
static double par(ssmlm_model *m, int i, int64_t j) { return get(ssmlm_model_param_data(m, i), is64(m), j); }
static void set_par(ssmlm_model *m, int i, int64_t j, double v) { put(ssmlm_model_param_data(m, i), is64(m), j, v); }
static void set_grad(ssmlm_model *m, int i, int64_t j, double v) { put(ssmlm_model_grad_data(m, i), is64(m), j, v); }
/* Moment (0 = m, 1 = v) of element j of parameter i. */
static double mom(ssmlm_optimizer *o, ssmlm_model *m, int which, int i, int64_t j) {
    return get(ssmlm_optimizer_moment(o, which), is64(m), ssmlm_model_param(m, i)->offset + j);
}

static size_t arena_bytes(ssmlm_model *m) {
    const ssmlm_param_info *last = ssmlm_model_param(m, ssmlm_model_n_params(m) - 1);
    return (size_t)(last->offset + last->numel) * (is64(m) ? 8 : 4);
}

static int close_rel(double got, double want, double tol) {
    return fabs(got - want) <= tol * fmax(fabs(want), 1e-300);
}

static int find(ssmlm_model *m, const char *name) {
    int i = ssmlm_model_find_param(m, name);
    CHECK(i >= 0, "tensor %s not in the model", name);
    return i < 0 ? 0 : i;
}

/* Two steps on one decayed and one non-decayed element, every value written out by hand. */
static void test_two_steps(ssmlm_dtype dt) {
    ssmlm_model *m = make_model(dt);
    if (!m) return;
    double tol = dt == SSMLM_F64 ? 1e-14 : 2e-6;
    int D = find(m, "embedding.weight"), N = find(m, "norm_f.weight");
    CHECK(ssmlm_model_param(m, D)->weight_decay == 1 && ssmlm_model_param(m, N)->weight_decay == 0,
          "table flags of embedding / final norm");
    double pD1 = par(m, D, 1);
    set_par(m, D, 0, 1.0);
    set_par(m, N, 0, 2.0);
    ssmlm_adamw_config c;
    ssmlm_adamw_defaults(&c);
    c.clip = 0;
    ssmlm_optimizer *o = NULL;
    CHECK_OK(ssmlm_optimizer_create(&o, m, &c));
    if (!o) return;
    CHECK(ssmlm_optimizer_steps(o) == 0, "fresh optimizer has taken steps");

    /* step 1: g = 0.5 and -0.5; m = 0.1 g, v = 0.05 g^2; bias corrections 0.1 and 0.05 */
    set_grad(m, D, 0, 0.5);
    set_grad(m, N, 0, -0.5);
    double norm = -1;
    CHECK_OK(ssmlm_optimizer_step(o, m, 0.1, &norm));
    CHECK(close_rel(norm, sqrt(0.5), 1e-15), "step 1 grad norm %.17g", norm);
    double wD = 1.0 - 0.1 * 0.1 * 1.0 - 0.1 * 0.5 / (0.5 + 1e-8);
    double wN = 2.0 + 0.1 * 0.5 / (0.5 + 1e-8);
    CHECK(close_rel(par(m, D, 0), wD, tol), "%s step 1: decayed p %.17g, want %.17g", dt ? "f64" : "f32",
          par(m, D, 0), wD);
    CHECK(close_rel(par(m, N, 0), wN, tol), "step 1: no-decay p %.17g, want %.17g", par(m, N, 0), wN);
    CHECK(close_rel(mom(o, m, 0, D, 0), 0.05, tol) && close_rel(mom(o, m, 1, D, 0), 0.0125, tol),
          "step 1 moments %g %g", mom(o, m, 0, D, 0), mom(o, m, 1, D, 0));
    /* a zero-gradient element of a decayed tensor only decays */
    CHECK(close_rel(par(m, D, 1), pD1 * (1 - 0.01), tol), "step 1: zero-grad element %.17g", par(m, D, 1));
    CHECK(ssmlm_optimizer_steps(o) == 1, "steps after one step");

    /* step 2: g = 0.25 for both.  m = 0.9 m + 0.1 g, v = 0.95 v + 0.05 g^2;
     * bias corrections 1 - 0.9^2 = 0.19 and 1 - 0.95^2 = 0.0975 */
    set_grad(m, D, 0, 0.25);
    set_grad(m, N, 0, 0.25);
    CHECK_OK(ssmlm_optimizer_step(o, m, 0.1, &norm));
    CHECK(close_rel(norm, sqrt(0.125), 1e-15), "step 2 grad norm %.17g", norm);
    double mD = 0.07, vD = 0.015, mN = -0.02, vN = 0.015;
    CHECK(close_rel(mom(o, m, 0, D, 0), mD, tol * 4) && close_rel(mom(o, m, 1, D, 0), vD, tol * 4),
          "step 2 moments of the decayed element %.17g %.17g", mom(o, m, 0, D, 0), mom(o, m, 1, D, 0));
    CHECK(close_rel(mom(o, m, 0, N, 0), mN, tol * 10) && close_rel(mom(o, m, 1, N, 0), vN, tol * 4),
          "step 2 moments of the no-decay element %.17g %.17g", mom(o, m, 0, N, 0), mom(o, m, 1, N, 0));
    double den = sqrt(vD / 0.0975) + 1e-8;
    wD = wD * (1 - 0.01) - 0.1 * (mD / 0.19) / den;
    wN = wN - 0.1 * (mN / 0.19) / den;
    CHECK(close_rel(par(m, D, 0), wD, tol * 4), "step 2: decayed p %.17g, want %.17g", par(m, D, 0), wD);
    CHECK(close_rel(par(m, N, 0), wN, tol * 4), "step 2: no-decay p %.17g, want %.17g", par(m, N, 0), wN);
    CHECK(close_rel(par(m, D, 1), pD1 * 0.99 * 0.99, tol * 2), "step 2: zero-grad element %.17g", par(m, D, 1));
    CHECK(ssmlm_optimizer_steps(o) == 2, "steps after two steps");
    ssmlm_optimizer_free(o);
    ssmlm_model_free(m);
}

/* Zero gradients: Adam's term is 0, so decayed tensors shrink by (1 - lr wd) and the others
 * keep their exact bits. */
static void test_decay_flags(ssmlm_dtype dt) {
    ssmlm_model *m = make_model(dt);
    if (!m) return;
    int n = ssmlm_model_n_params(m), f64 = is64(m);
    size_t bytes = arena_bytes(m);
    void *before = malloc(bytes);
    memcpy(before, ssmlm_model_param_data(m, 0), bytes);
    ssmlm_adamw_config c;
    ssmlm_adamw_defaults(&c);
    ssmlm_optimizer *o = NULL;
    CHECK_OK(ssmlm_optimizer_create(&o, m, &c));
    if (!o) return;
    /* the table: matrices decay; norms, biases, A_log, D, dt_bias do not */
    int n_decay = 0, n_keep = 0;
    for (int i = 0; i < n; i++) {
        const ssmlm_param_info *p = ssmlm_model_param(m, i);
        int expect = !(strstr(p->name, "norm") || strstr(p->name, "bias") || strstr(p->name, "A_log") ||
                       strstr(p->name, ".D"));
        CHECK(ssmlm_optimizer_decays(o, i) == expect, "decay flag of %s is %d", p->name, ssmlm_optimizer_decays(o, i));
        n_decay += expect;
        n_keep += !expect;
    }
    CHECK(n_decay > 3 && n_keep > 3, "both kinds present (%d decayed, %d not)", n_decay, n_keep);

    const char *pat[] = {"embedding"};
    CHECK_OK(ssmlm_optimizer_set_no_decay(o, pat, 1));
    int E = find(m, "embedding.weight");
    CHECK(!ssmlm_optimizer_decays(o, E), "embedding still decays after the no-decay list");
    CHECK_OK(ssmlm_optimizer_step(o, m, 0.01, NULL));
    for (int i = 0; i < n; i++) {
        const ssmlm_param_info *p = ssmlm_model_param(m, i);
        int bad = 0;
        for (int64_t j = 0; j < p->numel && !bad; j++) {
            double old = get(before, f64, p->offset + j), now = par(m, i, j);
            if (ssmlm_optimizer_decays(o, i)) {
                double want = f64 ? old - 0.001 * old : (double)((float)old - 0.001f * (float)old);
                bad = !close_rel(now, want, f64 ? 1e-15 : 1e-7);
            } else {
                bad = now != old;
            }
        }
        CHECK(!bad, "%s: weight decay %s", p->name, ssmlm_optimizer_decays(o, i) ? "not applied" : "applied");
    }
    CHECK(par(m, E, 3) == get(before, f64, ssmlm_model_param(m, E)->offset + 3), "embedding changed");

    /* n = 0 restores the table; empty patterns are rejected */
    CHECK_OK(ssmlm_optimizer_set_no_decay(o, NULL, 0));
    CHECK(ssmlm_optimizer_decays(o, E), "table flag not restored");
    const char *empty[] = {"norm", ""};
    CHECK(ssmlm_optimizer_set_no_decay(o, empty, 2) == SSMLM_ERR_INVALID, "empty pattern accepted");
    CHECK(strstr(ssmlm_last_error(), "pattern 1"), "error names the pattern: %s", ssmlm_last_error());
    CHECK(ssmlm_optimizer_set_no_decay(o, NULL, -1) == SSMLM_ERR_INVALID, "negative pattern count accepted");
    free(before);
    ssmlm_optimizer_free(o);
    ssmlm_model_free(m);
}

/* g = 3 and 4 in two tensors: norm 5; clip 1 scales by 0.2, clip 10 does not scale. */
static void test_clip(ssmlm_dtype dt) {
    double tol = dt == SSMLM_F64 ? 1e-15 : 1e-6;
    for (int k = 0; k < 2; k++) {
        ssmlm_model *m = make_model(dt);
        if (!m) return;
        int a = find(m, "layers.0.norm.weight"), b = ssmlm_model_n_params(m) - 1;
        set_grad(m, a, 2, 3.0);
        set_grad(m, b, 5, -4.0);
        ssmlm_adamw_config c;
        ssmlm_adamw_defaults(&c);
        c.clip = k == 0 ? 1.0 : 10.0;
        double s = k == 0 ? 0.2 : 1.0;
        ssmlm_optimizer *o = NULL;
        CHECK_OK(ssmlm_optimizer_create(&o, m, &c));
        if (!o) return;
        double norm = 0;
        CHECK_OK(ssmlm_optimizer_step(o, m, 1e-3, &norm));
        CHECK(close_rel(norm, 5.0, 1e-15), "pre-clip norm %.17g", norm);
        CHECK(close_rel(mom(o, m, 0, a, 2), 0.1 * 3 * s, tol) && close_rel(mom(o, m, 0, b, 5), -0.1 * 4 * s, tol),
              "clip %g: first moments %.9g %.9g", c.clip, mom(o, m, 0, a, 2), mom(o, m, 0, b, 5));
        CHECK(close_rel(mom(o, m, 1, a, 2), 0.05 * 9 * s * s, tol) && close_rel(mom(o, m, 1, b, 5), 0.05 * 16 * s * s, tol),
              "clip %g: second moments %.9g %.9g", c.clip, mom(o, m, 1, a, 2), mom(o, m, 1, b, 5));
        CHECK(get(ssmlm_model_grad_data(m, a), is64(m), 2) == 3.0, "the step modified the gradients");
        ssmlm_optimizer_free(o);
        ssmlm_model_free(m);
    }
}

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

static void fill_grads(ssmlm_model *m, uint64_t seed) {
    for (int i = 0; i < ssmlm_model_n_params(m); i++)
        for (int64_t j = 0; j < ssmlm_model_param(m, i)->numel; j++)
            set_grad(m, i, j, ((double)lcg(&seed) * 0x1.0p-53 - 0.5) * 0.02);
}

/* The norm against a plain double sum; bit-identical steps at 1 and 3 threads. */
static void test_norm_and_threads(ssmlm_dtype dt) {
    ssmlm_model *m = make_model(dt), *m2 = make_model(dt);
    if (!m || !m2) return;
    fill_grads(m, 11);
    fill_grads(m2, 11);
    double want = 0;
    for (int i = 0; i < ssmlm_model_n_params(m); i++)
        for (int64_t j = 0; j < ssmlm_model_param(m, i)->numel; j++) {
            double g = get(ssmlm_model_grad_data(m, i), is64(m), j);
            want += g * g;
        }
    want = sqrt(want);
    double norm = 0;
    CHECK_OK(ssmlm_grad_norm(m, &norm));
    CHECK(close_rel(norm, want, 1e-12), "grad norm %.17g, plain sum %.17g", norm, want);
    CHECK(ssmlm_model_numel(m) > 4 * 8192, "model too small to span several blocks");

    int threads = ssmlm_get_threads();
    ssmlm_adamw_config c;
    ssmlm_adamw_defaults(&c);
    c.clip = 0.01; /* active: the norm is far above */
    ssmlm_optimizer *o1 = NULL, *o3 = NULL;
    CHECK_OK(ssmlm_optimizer_create(&o1, m, &c));
    CHECK_OK(ssmlm_optimizer_create(&o3, m2, &c));
    if (!o1 || !o3) return;
    double n1 = 0, n3 = 0;
    for (int step = 0; step < 2; step++) {
        ssmlm_set_threads(1);
        CHECK_OK(ssmlm_optimizer_step(o1, m, 3e-3, &n1));
        ssmlm_set_threads(3);
        CHECK_OK(ssmlm_optimizer_step(o3, m2, 3e-3, &n3));
        CHECK(memcmp(&n1, &n3, sizeof n1) == 0, "norm differs between 1 and 3 threads: %.17g %.17g", n1, n3);
    }
    ssmlm_set_threads(threads);
    size_t bytes = arena_bytes(m);
    CHECK(memcmp(ssmlm_model_param_data(m, 0), ssmlm_model_param_data(m2, 0), bytes) == 0,
          "parameters differ between 1 and 3 threads");
    CHECK(memcmp(ssmlm_optimizer_moment(o1, 1), ssmlm_optimizer_moment(o3, 1), bytes) == 0,
          "second moments differ between 1 and 3 threads");
    ssmlm_optimizer_free(o1);
    ssmlm_optimizer_free(o3);
    ssmlm_model_free(m);
    ssmlm_model_free(m2);
}

/* A NaN or Inf gradient stops the step, names tensor and element, and changes nothing. */
static void test_nonfinite(ssmlm_dtype dt) {
    ssmlm_model *m = make_model(dt);
    if (!m) return;
    ssmlm_adamw_config c;
    ssmlm_adamw_defaults(&c);
    ssmlm_optimizer *o = NULL;
    CHECK_OK(ssmlm_optimizer_create(&o, m, &c));
    if (!o) return;
    fill_grads(m, 5);
    CHECK_OK(ssmlm_optimizer_step(o, m, 1e-3, NULL));
    size_t bytes = arena_bytes(m);
    void *p0 = malloc(bytes), *m0 = malloc(bytes);
    memcpy(p0, ssmlm_model_param_data(m, 0), bytes);
    memcpy(m0, ssmlm_optimizer_moment(o, 0), bytes);
    int i = find(m, "layers.1.mlp.fc1.weight");
    const ssmlm_param_info *p = ssmlm_model_param(m, i);
    int64_t j = p->shape[1] + 7; /* row 1, column 7 */
    const double bad[2] = {NAN, -INFINITY};
    const char *word[2] = {"NaN", "-Inf"};
    for (int k = 0; k < 2; k++) {
        set_grad(m, i, j, bad[k]);
        double norm = 1;
        ssmlm_status s = ssmlm_optimizer_step(o, m, 1e-3, &norm);
        CHECK(s == SSMLM_ERR_NUMERIC, "step with a %s gradient returned %s", word[k], ssmlm_status_name(s));
        const char *e = ssmlm_last_error();
        char idx[64];
        snprintf(idx, sizeof idx, "element %lld [1, 7]", (long long)j);
        CHECK(strstr(e, p->name) && strstr(e, word[k]) && strstr(e, idx) && strstr(e, "step 2"),
              "error does not name tensor, value, element and step: %s", e);
        CHECK(ssmlm_last_hint()[0] != 0, "no hint for a NaN gradient");
        CHECK(ssmlm_grad_norm(m, &norm) == SSMLM_ERR_NUMERIC, "grad norm accepted a %s", word[k]);
        CHECK(memcmp(p0, ssmlm_model_param_data(m, 0), bytes) == 0, "a failed step changed the parameters");
        CHECK(memcmp(m0, ssmlm_optimizer_moment(o, 0), bytes) == 0, "a failed step changed the moments");
        CHECK(ssmlm_optimizer_steps(o) == 1, "a failed step was counted");
    }
    /* an earlier tensor's NaN is the one reported */
    set_grad(m, 0, 3, NAN);
    CHECK(ssmlm_optimizer_step(o, m, 1e-3, NULL) == SSMLM_ERR_NUMERIC &&
              strstr(ssmlm_last_error(), ssmlm_model_param(m, 0)->name),
          "first non-finite tensor not reported: %s", ssmlm_last_error());
    free(p0);
    free(m0);
    ssmlm_optimizer_free(o);
    ssmlm_model_free(m);
}

/* Rejections: bad hyperparameters, lr, missing gradients, another model. */
static void test_errors(void) {
    ssmlm_config cfg;
    CHECK_OK(ssmlm_preset(&cfg, "tiny-mamba2"));
    ssmlm_model *fresh = NULL, *m = make_model(SSMLM_F32);
    CHECK_OK(ssmlm_model_create(&fresh, &cfg, SSMLM_F32));
    if (!fresh || !m) return;
    ssmlm_adamw_config c;
    ssmlm_optimizer *o = NULL;
    ssmlm_adamw_defaults(&c);
    CHECK(c.beta1 == 0.9 && c.beta2 == 0.95 && c.eps == 1e-8 && c.weight_decay == 0.1 && c.clip == 1.0,
          "defaults are not the paper's");
    double bad[5][5] = {{1.0, 0.95, 1e-8, 0.1, 1}, {0.9, -0.1, 1e-8, 0.1, 1}, {0.9, 0.95, 0, 0.1, 1},
                        {0.9, 0.95, 1e-8, -1, 1}, {0.9, 0.95, 1e-8, 0.1, NAN}};
    for (int k = 0; k < 5; k++) {
        ssmlm_adamw_config b = {bad[k][0], bad[k][1], bad[k][2], bad[k][3], bad[k][4]};
        CHECK(ssmlm_optimizer_create(&o, m, &b) == SSMLM_ERR_INVALID && !o, "bad config %d accepted", k);
    }
    double norm;
    CHECK(ssmlm_grad_norm(fresh, &norm) == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), "no gradients"),
          "norm without gradients: %s", ssmlm_last_error());
    CHECK_OK(ssmlm_optimizer_create(&o, m, &c));
    if (!o) return;
    CHECK(ssmlm_optimizer_step(o, m, -1e-3, NULL) == SSMLM_ERR_INVALID, "negative lr accepted");
    CHECK(ssmlm_optimizer_step(o, m, NAN, NULL) == SSMLM_ERR_INVALID, "NaN lr accepted");
    CHECK(ssmlm_optimizer_step(o, fresh, 1e-3, NULL) == SSMLM_ERR_INVALID, "step on another model accepted");
    CHECK(ssmlm_optimizer_steps(o) == 0, "rejected steps were counted");
    ssmlm_optimizer_free(o);
    ssmlm_optimizer_free(NULL);
    ssmlm_model_free(m);
    ssmlm_model_free(fresh);
}

/* fp64 gradients whose squares overflow: the norm is still finite and right. */
static void test_norm_overflow(void) {
    ssmlm_model *m = make_model(SSMLM_F64);
    if (!m) return;
    set_grad(m, 1, 0, 3e200);
    set_grad(m, 2, 0, 4e200);
    double norm = 0;
    CHECK_OK(ssmlm_grad_norm(m, &norm));
    CHECK(close_rel(norm, 5e200, 1e-15), "overflowing norm %.17g", norm);
    ssmlm_model_free(m);
}

static void test_schedule(void) {
    ssmlm_schedule s = {1e-3, 1e-4, 10, 110};
    const double tol = 1e-15;
    CHECK(ssmlm_schedule_lr(&s, 0) == 0, "lr at step 0: %g", ssmlm_schedule_lr(&s, 0));
    CHECK(ssmlm_schedule_lr(&s, -3) == 0, "negative step");
    CHECK(close_rel(ssmlm_schedule_lr(&s, 1), 1e-4, tol), "warmup step 1: %.17g", ssmlm_schedule_lr(&s, 1));
    CHECK(close_rel(ssmlm_schedule_lr(&s, 5), 5e-4, tol), "mid warmup: %.17g", ssmlm_schedule_lr(&s, 5));
    CHECK(close_rel(ssmlm_schedule_lr(&s, 10), 1e-3, tol), "end of warmup: %.17g", ssmlm_schedule_lr(&s, 10));
    /* t = 0.25: min + 0.5 (1 + cos(pi/4)) (max - min), cos(pi/4) = sqrt(1/2) */
    double want = 1e-4 + 0.5 * (1 + sqrt(0.5)) * 9e-4;
    CHECK(close_rel(ssmlm_schedule_lr(&s, 35), want, tol), "t = 1/4: %.17g, want %.17g", ssmlm_schedule_lr(&s, 35), want);
    CHECK(close_rel(ssmlm_schedule_lr(&s, 60), 5.5e-4, tol), "t = 1/2: %.17g", ssmlm_schedule_lr(&s, 60));
    want = 1e-4 + 0.5 * (1 - sqrt(0.5)) * 9e-4;
    CHECK(close_rel(ssmlm_schedule_lr(&s, 85), want, tol), "t = 3/4: %.17g", ssmlm_schedule_lr(&s, 85));
    CHECK(close_rel(ssmlm_schedule_lr(&s, 110), 1e-4, tol), "end: %.17g", ssmlm_schedule_lr(&s, 110));
    CHECK(ssmlm_schedule_lr(&s, 111) == 1e-4 && ssmlm_schedule_lr(&s, 1000000000) == 1e-4, "after the end");
    int mono = 1;
    for (int64_t k = 11; k <= 120; k++) mono &= ssmlm_schedule_lr(&s, k) <= ssmlm_schedule_lr(&s, k - 1);
    CHECK(mono, "lr increases after the warmup");
    ssmlm_schedule nw = {2e-3, 0, 0, 100};
    CHECK(ssmlm_schedule_lr(&nw, 0) == 2e-3, "no warmup: peak at step 0");
    CHECK(close_rel(ssmlm_schedule_lr(&nw, 50), 1e-3, tol), "no warmup, half way");
    ssmlm_schedule w = {1.0, 0.1, 10, 10};
    CHECK(ssmlm_schedule_lr(&w, 10) == 1.0 && ssmlm_schedule_lr(&w, 11) == 0.1, "total = warmup");
}

static void test_recipe(void) {
    ssmlm_schedule s;
    ssmlm_adamw_config a;
    ssmlm_recipe_paper(10000, &s, &a);
    CHECK(s.peak_lr == 3e-4 && s.min_lr == 3e-5 && s.total == 10000 && s.warmup == 100,
          "recipe for 10000 steps: peak %g min %g warmup %lld total %lld", s.peak_lr, s.min_lr,
          (long long)s.warmup, (long long)s.total);
    CHECK(a.beta1 == 0.9 && a.beta2 == 0.95 && a.eps == 1e-8 && a.weight_decay == 0.1 && a.clip == 1.0,
          "recipe AdamW settings");
    const int64_t runs[][2] = {{300, 3}, {150, 2}, {1, 1}, {0, 0}, {73242188, 732422}, {100000000000LL, 1000000000}};
    for (int k = 0; k < 6; k++) {
        ssmlm_recipe_paper(runs[k][0], &s, NULL);
        CHECK(s.warmup == runs[k][1], "warmup of %lld steps is %lld, want %lld", (long long)runs[k][0],
              (long long)s.warmup, (long long)runs[k][1]);
    }
    /* the recipe's schedule reaches the peak at the end of warmup and 10 % at the end */
    ssmlm_recipe_paper(1000, &s, &a);
    CHECK(close_rel(ssmlm_schedule_lr(&s, s.warmup), 3e-4, 1e-15) &&
              close_rel(ssmlm_schedule_lr(&s, 1000), 3e-5, 1e-15),
          "recipe schedule ends");
}

int main(void) {
    for (int d = 0; d < 2; d++) {
        ssmlm_dtype dt = d ? SSMLM_F64 : SSMLM_F32;
        test_two_steps(dt);
        test_decay_flags(dt);
        test_clip(dt);
        test_norm_and_threads(dt);
        test_nonfinite(dt);
    }
    test_errors();
    test_norm_overflow();
    test_schedule();
    test_recipe();
    TEST_END();
}

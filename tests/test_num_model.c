/* test_num_model.c — whole models: the golden tiny LMs (mamba_ssm checkpoints) reproduce
 * logits, loss and every parameter gradient; finite-difference checks of whole tiny models of
 * each family on odd shapes (fp64); save/load round trip; checkpoint errors. */
#include "golden.h"
#include "model/model.h"
#include <stdlib.h>
#include <string.h>

static void golden_lm(const char *name) {
    golden g;
    if (!golden_open(&g, name)) return;
    char dir[1024];
    cJSON *ck = cJSON_GetObjectItemCaseSensitive(g.info, "checkpoint_dir");
    snprintf(dir, sizeof dir, "%s/%s", golden_dir(), cJSON_IsString(ck) ? ck->valuestring : name);
    ssmlm_model *m = NULL;
    ssmlm_status s = ssmlm_model_load(&m, dir, REAL_IS_F64 ? SSMLM_F64 : SSMLM_F32);
    CHECK(s == SSMLM_OK, "load %s: %s", dir, ssmlm_last_error());
    if (s != SSMLM_OK) {
        golden_close(&g);
        return;
    }
    int64_t n_ids = 0;
    int32_t *ids = golden_get_i32(&g, "input.input_ids", &n_ids);
    int32_t *labels = golden_get_i32(&g, "input.labels", NULL);
    /* The reference's rotary table holds PyTorch's float32 cos/sin (one float32 unit off libm
     * in some entries), so in fp64 a model with rotary attention agrees to ~3e-8, not 1e-10. */
    const ssmlm_config *mc = ssmlm_model_config(m);
    int rope = strchr(mc->pattern, '*') && mc->attn_rotary_dim > 0;
    double tol_fwd = REAL_IS_F64 && rope ? 3e-7 : GOLDEN_TOL_FWD;
    double tol_grad = REAL_IS_F64 && rope ? 3e-7 : GOLDEN_TOL_GRAD;
    const ssmlm_st_tensor *lt = ssmlm_st_find(&g.st, "output.logits");
    int64_t B = lt->shape[0], T = lt->shape[1], V = lt->shape[2];
    CHECK(V == ssmlm_config_vocab_padded(ssmlm_model_config(m)), "%s: padded vocab %lld", name, (long long)V);
    real *logits = malloc((size_t)(B * T * V) * sizeof(real));
    double loss = 0;
    CHECK_OK(ssmlm_model_forward(m, ids, labels, B, T, logits, &loss));
    golden_check(&g, "output.logits", logits, B * T * V, tol_fwd);
    real lossr = (real)loss;
    golden_check(&g, "output.loss", &lossr, 1, tol_fwd);
    /* decode: prefill the first decode_prefill_len tokens, then one token at a time */
    cJSON *pl = cJSON_GetObjectItemCaseSensitive(g.info, "decode_prefill_len");
    int64_t P = cJSON_IsNumber(pl) ? (int64_t)pl->valuedouble : 4;
    real *dl = malloc((size_t)(B * T * V) * sizeof(real));
    prefill_then_steps(m, ids, B, T, P, V, dl);
    golden_check(&g, "decode.logits", dl, B * T * V, tol_fwd);
    free(dl);
    CHECK_OK(ssmlm_model_forward(m, ids, labels, B, T, logits, &loss));
    CHECK_OK(ssmlm_model_backward(m, 0));
    int checked = 0;
    for (int i = 0; i < ssmlm_model_n_params(m); i++) {
        char alt[3][160], gname[200];
        int n = model_param_alt_names(m, i, alt);
        const ssmlm_param_info *p = ssmlm_model_param(m, i);
        snprintf(gname, sizeof gname, "grad.%s", n ? alt[0] : p->name);
        if (!golden_has(&g, gname) && n > 1) snprintf(gname, sizeof gname, "grad.%s", alt[1]);
        CHECK(golden_has(&g, gname), "%s: no reference gradient for %s (%s)", name, p->name, gname);
        if (!golden_has(&g, gname)) continue;
        golden_check(&g, gname, ssmlm_model_grad_data(m, i), p->numel, tol_grad);
        checked++;
    }
    CHECK(checked == ssmlm_model_n_params(m), "%s: %d of %d gradients compared", name, checked, ssmlm_model_n_params(m));
    free(ids);
    free(labels);
    free(logits);
    ssmlm_model_free(m);
    golden_close(&g);
}

#if REAL_IS_F64
typedef struct fd_ctx {
    ssmlm_model *m;
    int32_t *ids, *labels;
    int64_t B, T;
} fd_ctx;

static double fd_loss(void *p) {
    fd_ctx *c = p;
    double loss = 0;
    ssmlm_model_forward(c->m, c->ids, c->labels, c->B, c->T, NULL, &loss);
    return loss;
}

/* Every parameter tensor of a small model against central differences. */
static void fd_model(ssmlm_config *c, const char *what) {
    ssmlm_model *m = NULL;
    /* large steps make the SSM parameters matter: their gradients stay far above the
     * rounding floor of the differences */
    c->dt_min = 0.3;
    c->dt_max = 0.9;
    ssmlm_status s = ssmlm_model_create(&m, c, SSMLM_F64);
    CHECK(s == SSMLM_OK, "%s: create: %s", what, ssmlm_last_error());
    if (s != SSMLM_OK) return;
    ssmlm_model_init(m, 7);
    /* perturb norms, D and biases away from their initial constants so every gradient is generic */
    uint64_t seed = 99;
    for (int i = 0; i < ssmlm_model_n_params(m); i++) {
        const ssmlm_param_info *p = ssmlm_model_param(m, i);
        real *w = ssmlm_model_param_data(m, i);
        real tmp[4096];
        int64_t n = p->numel < 4096 ? p->numel : 4096;
        fill_uniform(tmp, n, 0.1, &seed);
        for (int64_t j = 0; j < n; j++) w[j] += tmp[j];
        if (strstr(p->name, "out_proj") || strstr(p->name, "fc2"))
            for (int64_t j = 0; j < p->numel; j++) w[j] *= 20; /* make layer outputs matter */
    }
    fd_ctx ctx = {m, NULL, NULL, 2, 11};
    ctx.ids = malloc(22 * sizeof(int32_t));
    ctx.labels = malloc(22 * sizeof(int32_t));
    for (int i = 0; i < 22; i++) {
        ctx.ids[i] = (int32_t)((i * 7 + 3) % c->vocab_size);
        ctx.labels[i] = i % 5 == 4 ? -1 : (int32_t)((i * 5 + 1) % c->vocab_size);
    }
    double loss;
    CHECK_OK(ssmlm_model_forward(m, ctx.ids, ctx.labels, 2, 11, NULL, &loss));
    CHECK_OK(ssmlm_model_backward(m, 0));
    for (int i = 0; i < ssmlm_model_n_params(m); i++) {
        const ssmlm_param_info *p = ssmlm_model_param(m, i);
        char w[256];
        snprintf(w, sizeof w, "%s %s", what, p->name);
        /* copy the gradient: fd_check's forwards do not touch it, but be explicit */
        real *gcopy = malloc((size_t)p->numel * sizeof(real));
        memcpy(gcopy, ssmlm_model_grad_data(m, i), (size_t)p->numel * sizeof(real));
        fd_check(w, ssmlm_model_param_data(m, i), gcopy, p->numel, fd_loss, &ctx, 6, 1e-5);
        free(gcopy);
    }
    free(ctx.ids);
    free(ctx.labels);
    ssmlm_model_free(m);
}

static void fd_families(void) {
    ssmlm_config c;
    /* Mamba-2 hybrid with GQA, several groups, T not a multiple of the chunk, LayerNorm */
    ssmlm_config_defaults(&c);
    c.d_model = 12;
    c.vocab_size = 19;
    c.vocab_pad_multiple = 8;
    strcpy(c.pattern, "M*+M");
    c.n_layer = 4;
    c.m2_d_state = 5;
    c.m2_headdim = 3;
    c.m2_ngroups = 2;
    c.m2_chunk_size = 4;
    c.attn_heads = 4;
    c.attn_kv_heads = 2;
    c.attn_head_dim = 6;
    c.attn_rotary_dim = 4;
    c.mlp_hidden = 10;
    c.mlp_act = SSMLM_ACT_SWIGLU;
    c.tie_embeddings = 1;
    fd_model(&c, "hybrid(tied, rmsnorm)");
    c.norm_kind = SSMLM_NORM_LAYER;
    c.norm_zero_centered = 1;
    c.tie_embeddings = 0;
    c.mlp_act = SSMLM_ACT_GELU;
    fd_model(&c, "hybrid(untied, layernorm1p)");
    /* Transformer: MHA, rope, squared ReLU */
    strcpy(c.pattern, "*+*+");
    c.attn_kv_heads = 4;
    c.mlp_act = SSMLM_ACT_RELU2;
    fd_model(&c, "transformer");
    /* Mamba-1 */
    ssmlm_config_defaults(&c);
    c.d_model = 10;
    c.vocab_size = 13;
    strcpy(c.pattern, "MMM");
    c.n_layer = 3;
    c.ssm_kind = SSMLM_SSM_MAMBA1;
    c.m1_d_state = 3;
    c.m1_d_conv = 3;
    c.m1_dt_rank = 2;
    fd_model(&c, "mamba1");
    /* Mamba-2 alone */
    ssmlm_config_defaults(&c);
    c.d_model = 8;
    c.vocab_size = 11;
    strcpy(c.pattern, "MM");
    c.n_layer = 2;
    c.m2_d_state = 4;
    c.m2_headdim = 4;
    c.m2_chunk_size = 3;
    fd_model(&c, "mamba2");
}
#endif

static void save_load_roundtrip(void) {
    ssmlm_config c;
    ssmlm_preset(&c, "tiny-hybrid");
    ssmlm_model *a = NULL, *b = NULL;
    CHECK_OK(ssmlm_model_create(&a, &c, REAL_IS_F64 ? SSMLM_F64 : SSMLM_F32));
    if (!a) return;
    ssmlm_model_init(a, 3);
    char dir[] = "/tmp/ssmlm_model_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    CHECK_OK(ssmlm_model_save(a, dir));
    CHECK_OK(ssmlm_model_load(&b, dir, REAL_IS_F64 ? SSMLM_F64 : SSMLM_F32));
    if (b) {
        int32_t ids[12], labels[12];
        for (int i = 0; i < 12; i++) ids[i] = labels[i] = (i * 37) % 256;
        double la = 0, lb = 1;
        ssmlm_model_forward(a, ids, labels, 2, 6, NULL, &la);
        ssmlm_model_forward(b, ids, labels, 2, 6, NULL, &lb);
        CHECK(la == lb, "reloaded model computes the same loss: %.17g vs %.17g", la, lb);
        ssmlm_model_free(b);
    }
    /* a checkpoint whose config does not match its weights */
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    ssmlm_config c2 = c;
    c2.d_model = 32;
    c2.attn_head_dim = 8;
    ssmlm_config_save_json(&c2, path);
    b = NULL;
    ssmlm_status s = ssmlm_model_load(&b, dir, SSMLM_F32);
    CHECK(s == SSMLM_ERR_FORMAT && strstr(ssmlm_last_error(), "shape"), "shape mismatch reported: %s", ssmlm_last_error());
    ssmlm_model_free(b);
    /* missing folder */
    s = ssmlm_model_load(&b, "/nonexistent/model", SSMLM_F32);
    CHECK(s == SSMLM_ERR_IO && strstr(ssmlm_last_error(), "/nonexistent/model"), "missing folder named: %s", ssmlm_last_error());
    snprintf(path, sizeof path, "rm -rf %s", dir);
    CHECK(system(path) == 0, "cleanup");
    ssmlm_model_free(a);
}

/* A model of a preset in the test's precision, initialized with seed (NULL on failure). */
static ssmlm_model *preset_model(const char *preset, uint64_t seed, ssmlm_config *c) {
    ssmlm_model *m = NULL;
    CHECK_OK(ssmlm_preset(c, preset));
    CHECK_OK(ssmlm_model_create(&m, c, REAL_IS_F64 ? SSMLM_F64 : SSMLM_F32));
    if (m) ssmlm_model_init(m, seed);
    return m;
}

/* prefill(P tokens) then steps == full forward, for prompts shorter than, equal to and longer
 * than the chunk; each family's tiny preset; batch of 2. */
static void decode_matches_forward(const char *preset) {
    ssmlm_config c;
    ssmlm_model *m = preset_model(preset, 11, &c);
    if (!m) return;
    int64_t B = 2, T = 40, V = ssmlm_config_vocab_padded(&c), Q = c.m2_chunk_size;
    int32_t ids[80];
    for (int i = 0; i < B * T; i++) ids[i] = (int32_t)((i * 131 + 7) % c.vocab_size);
    real *full = malloc((size_t)(B * T * V) * sizeof(real)), *got = malloc((size_t)(B * T * V) * sizeof(real));
    CHECK_OK(ssmlm_model_forward(m, ids, NULL, B, T, full, NULL));
    int64_t plens[3] = {Q - 3, Q, Q + 5};
    for (int k = 0; k < 3; k++) {
        int64_t P = plens[k];
        prefill_then_steps(m, ids, B, T, P, V, got);
        char what[128];
        snprintf(what, sizeof what, "%s prefill %lld + steps vs forward", preset, (long long)P);
        golden_compare(what, got, full, B * T * V, REAL_IS_F64 ? 1e-10 : 2e-4);
        /* capacity and vocabulary errors, on a state that has seen T tokens */
        ssmlm_state *st = NULL;
        CHECK_OK(ssmlm_state_create(&st, m, B, T));
        if (!st) break;
        CHECK_OK(ssmlm_model_prefill(m, st, ids, T, NULL));
        int32_t bad[2] = {0, (int32_t)c.vocab_size};
        CHECK(ssmlm_model_step(m, st, bad, NULL) == SSMLM_ERR_INVALID, "%s: id >= vocab rejected", preset);
        if (strchr(c.pattern, '*')) {
            int32_t ok2[2] = {1, 2};
            CHECK(ssmlm_model_step(m, st, ok2, NULL) == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), "capacity"),
                  "%s: step past capacity rejected: %s", preset, ssmlm_last_error());
        }
        ssmlm_state_free(st);
    }
    free(full);
    free(got);
    ssmlm_model_free(m);
}

/* Two prompts of different lengths prefilled into one batched state, then stepped together:
 * each sequence's logits equal the full forward of that sequence alone. */
static void ragged_batch(const char *preset) {
    ssmlm_config c;
    ssmlm_model *m = preset_model(preset, 5, &c);
    if (!m) return;
    enum { STEPS = 9 };
    int64_t P[2] = {7, 21}, V = ssmlm_config_vocab_padded(&c);
    int32_t seq[2][40];
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 40; t++) seq[b][t] = (int32_t)((t * 17 + b * 101 + 3) % c.vocab_size);
    ssmlm_state *st = NULL;
    CHECK_OK(ssmlm_state_create(&st, m, 2, 40));
    real *full = malloc((size_t)(40 * V) * sizeof(real)), *one = malloc((size_t)(2 * V) * sizeof(real)),
         *last = malloc((size_t)(40 * V) * sizeof(real));
    for (int b = 0; b < 2 && st; b++) CHECK_OK(ssmlm_model_prefill_one(m, st, b, seq[b], P[b], last));
    CHECK(st && ssmlm_state_pos(st, 0) == 7 && ssmlm_state_pos(st, 1) == 21, "positions after ragged prefill");
    real *got[2] = {malloc((size_t)(STEPS * V) * sizeof(real)), malloc((size_t)(STEPS * V) * sizeof(real))};
    for (int k = 0; k < STEPS && st; k++) {
        int32_t tok[2] = {seq[0][P[0] + k], seq[1][P[1] + k]};
        CHECK_OK(ssmlm_model_step(m, st, tok, one));
        for (int b = 0; b < 2; b++) memcpy(got[b] + k * V, one + b * V, (size_t)V * sizeof(real));
    }
    for (int b = 0; b < 2; b++) {
        int64_t T = P[b] + STEPS;
        CHECK_OK(ssmlm_model_forward(m, seq[b], NULL, 1, T, full, NULL));
        char what[128];
        snprintf(what, sizeof what, "%s ragged batch, sequence %d", preset, b);
        golden_compare(what, got[b], full + P[b] * V, STEPS * V, REAL_IS_F64 ? 1e-10 : 2e-4);
        free(got[b]);
    }
    CHECK(ssmlm_model_prefill_one(m, st, 2, seq[0], 3, NULL) == SSMLM_ERR_INVALID, "sequence index outside the batch rejected");
    free(full);
    free(one);
    free(last);
    ssmlm_state_free(st);
    ssmlm_model_free(m);
}

/* One processed prompt forked into three continuations: each equals its own full forward. */
static void fork_prompt(const char *preset) {
    ssmlm_config c;
    ssmlm_model *m = preset_model(preset, 8, &c);
    if (!m) return;
    int64_t P = 13, V = ssmlm_config_vocab_padded(&c);
    int32_t seq[3][24];
    for (int b = 0; b < 3; b++)
        for (int t = 0; t < 24; t++) seq[b][t] = (int32_t)(t < P ? (t * 29 + 5) % c.vocab_size : (t * 7 + b * 53) % c.vocab_size);
    ssmlm_state *st = NULL;
    CHECK_OK(ssmlm_state_create(&st, m, 3, 24));
    if (!st) return;
    CHECK_OK(ssmlm_model_prefill_one(m, st, 0, seq[0], P, NULL));
    CHECK_OK(ssmlm_state_copy_seq(st, 1, st, 0));
    CHECK_OK(ssmlm_state_copy_seq(st, 2, st, 0));
    real *one = malloc((size_t)(3 * V) * sizeof(real)), *full = malloc((size_t)(24 * V) * sizeof(real));
    real *got[3];
    for (int b = 0; b < 3; b++) got[b] = malloc((size_t)((24 - P) * V) * sizeof(real));
    for (int64_t t = P; t < 24; t++) {
        int32_t tok[3] = {seq[0][t], seq[1][t], seq[2][t]};
        CHECK_OK(ssmlm_model_step(m, st, tok, one));
        for (int b = 0; b < 3; b++) memcpy(got[b] + (t - P) * V, one + b * V, (size_t)V * sizeof(real));
    }
    for (int b = 0; b < 3; b++) {
        CHECK_OK(ssmlm_model_forward(m, seq[b], NULL, 1, 24, full, NULL));
        char what[128];
        snprintf(what, sizeof what, "%s fork %d", preset, b);
        golden_compare(what, got[b], full + P * V, (24 - P) * V, REAL_IS_F64 ? 1e-10 : 2e-4);
        free(got[b]);
    }
    free(one);
    free(full);
    ssmlm_state_free(st);
    ssmlm_model_free(m);
}

int main(void) {
    fork_prompt("tiny-hybrid");
    fork_prompt("tiny-mamba");
    ragged_batch("tiny-transformer");
    ragged_batch("tiny-mamba");
    ragged_batch("tiny-hybrid");
    decode_matches_forward("tiny-transformer");
    decode_matches_forward("tiny-mamba");
    decode_matches_forward("tiny-mamba2");
    decode_matches_forward("tiny-hybrid");
    char **cases = golden_cases_of_kind("lm");
    int n = 0;
    for (int i = 0; cases[i]; i++, n++) golden_lm(cases[i]);
    CHECK(n >= 3, "found %d golden LM cases", n);
    golden_free_list(cases);
#if REAL_IS_F64
    fd_families();
#endif
    save_load_roundtrip();
    TEST_END();
}

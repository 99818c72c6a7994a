/* test_config.c — config JSON (ssmlm's own format and mamba_ssm's config.json) and validation:
 * the golden checkpoints' configs, exact round trips, every validation rule with its message
 * and hint, malformed JSON, wrong types, unknown and duplicate keys. */
#include "golden.h"
#include "base/base.h"
#include <dirent.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_tmp[64];

static int has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n;
}

/* Parses text and expects status `want`, a message naming `m1` (and `m2`), a hint naming `h`.
 * The output config must be left untouched. */
static void expect_fail_at(int line, const char *text, ssmlm_status want, const char *m1, const char *m2,
                           const char *h) {
    ssmlm_config c, before;
    memset(&c, 0x5a, sizeof c);
    before = c;
    ssmlm_clear_error();
    ssmlm_status s = ssmlm_config_parse_json(&c, text, "t.json");
    const char *msg = ssmlm_last_error(), *hint = ssmlm_last_hint();
    CHECK(s == want, "line %d: %s -> %s (want %s): %s", line, text, ssmlm_status_name(s), ssmlm_status_name(want), msg);
    CHECK(has(msg, "t.json"), "line %d: message does not name the source: %s", line, msg);
    if (m1) CHECK(has(msg, m1), "line %d: message lacks '%s': %s", line, m1, msg);
    if (m2) CHECK(has(msg, m2), "line %d: message lacks '%s': %s", line, m2, msg);
    if (h) CHECK(has(hint, h), "line %d: hint lacks '%s': %s", line, h, hint);
    CHECK(memcmp(&c, &before, sizeof c) == 0, "line %d: a failed parse changed the output config", line);
}
#define EXPECT_FAIL(text, want, m1, m2, h) expect_fail_at(__LINE__, text, want, m1, m2, h)

static int parse_ok(ssmlm_config *c, const char *text) {
    ssmlm_status s = ssmlm_config_parse_json(c, text, "t.json");
    CHECK(s == SSMLM_OK, "parse %s: %s", text, ssmlm_last_error());
    return s == SSMLM_OK;
}

/* to_json -> parse must give back the same bytes; and save -> load through a file. */
static void check_round_trip(const ssmlm_config *c, const char *what) {
    char *text = ssmlm_config_to_json(c);
    CHECK(text != NULL, "%s: to_json failed", what);
    if (!text) return;
    ssmlm_config back;
    ssmlm_status s = ssmlm_config_parse_json(&back, text, what);
    CHECK(s == SSMLM_OK, "%s: reparse failed: %s\n%s", what, ssmlm_last_error(), text);
    CHECK(s != SSMLM_OK || memcmp(&back, c, sizeof back) == 0, "%s: round trip differs\n%s", what, text);
    free(text);
    char path[128];
    snprintf(path, sizeof path, "%s/rt.json", g_tmp);
    CHECK_OK(ssmlm_config_save_json(c, path));
    memset(&back, 0, sizeof back);
    s = ssmlm_config_load_json(&back, path);
    CHECK(s == SSMLM_OK, "%s: load failed: %s", what, ssmlm_last_error());
    CHECK(s != SSMLM_OK || memcmp(&back, c, sizeof back) == 0, "%s: file round trip differs", what);
    unlink(path);
}

/* ---- golden mamba_ssm checkpoints ------------------------------------------------------------ */

static double num(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static void test_golden_configs(void) {
    char **cases = golden_cases_of_kind("lm");
    int n = 0;
    for (int i = 0; cases[i]; i++, n++) {
        golden g;
        if (!golden_open(&g, cases[i])) continue;
        const cJSON *dir = cJSON_GetObjectItemCaseSensitive(g.info, "checkpoint_dir");
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/config.json", golden_dir(), cJSON_IsString(dir) ? dir->valuestring : "?");
        ssmlm_config c;
        ssmlm_status s = ssmlm_config_load_json(&c, path);
        CHECK(s == SSMLM_OK, "%s: %s", path, ssmlm_last_error());
        if (s != SSMLM_OK) {
            golden_close(&g);
            continue;
        }
        const cJSON *k = g.config;
        /* index.json holds the same config (plus resolved extras, which must be ignored) */
        char *text = cJSON_PrintUnformatted(k);
        ssmlm_config c2;
        if (parse_ok(&c2, text)) CHECK(memcmp(&c, &c2, sizeof c) == 0, "%s: config.json and index.json configs differ", cases[i]);
        free(text);

        CHECK(c.d_model == num(k, "d_model", -1), "%s: d_model %lld", cases[i], (long long)c.d_model);
        CHECK(c.vocab_size == num(k, "vocab_size", -1), "%s: vocab_size", cases[i]);
        CHECK(ssmlm_config_vocab_padded(&c) == num(k, "vocab_size_padded", -1), "%s: padded vocab %lld", cases[i],
              (long long)ssmlm_config_vocab_padded(&c));
        CHECK(c.norm_eps == num(k, "norm_epsilon", -1), "%s: norm_eps %g", cases[i], c.norm_eps);
        CHECK(c.norm_kind == SSMLM_NORM_RMS, "%s: norm", cases[i]);
        CHECK(c.tie_embeddings == cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(k, "tie_embeddings")), "%s: tie", cases[i]);
        /* pattern: block i -> 'M' or '*', then '+' when d_intermediate > 0 */
        int64_t nb = (int64_t)num(k, "n_layer", 0), dint = (int64_t)num(k, "d_intermediate", 0);
        char want[SSMLM_MAX_LAYERS + 1] = "";
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(k, "attn_layer_idx");
        for (int64_t b = 0, p = 0; b < nb && p < SSMLM_MAX_LAYERS - 1; b++) {
            char ch = 'M';
            for (const cJSON *e = idx ? idx->child : NULL; e; e = e->next)
                if (e->valuedouble == (double)b) ch = '*';
            want[p++] = ch;
            if (dint > 0) want[p++] = '+';
            want[p] = 0;
        }
        CHECK(strcmp(c.pattern, want) == 0, "%s: pattern %s, want %s", cases[i], c.pattern, want);
        CHECK(c.n_layer == (int64_t)strlen(want), "%s: n_layer %lld", cases[i], (long long)c.n_layer);
        const cJSON *ssm = cJSON_GetObjectItemCaseSensitive(k, "ssm_cfg");
        const cJSON *layer = cJSON_GetObjectItemCaseSensitive(ssm, "layer");
        int m2 = cJSON_IsString(layer) && strcmp(layer->valuestring, "Mamba2") == 0;
        CHECK(c.ssm_kind == (m2 ? 2 : 1), "%s: ssm_kind %d", cases[i], c.ssm_kind);
        if (m2) {
            CHECK(c.m2_d_state == num(ssm, "d_state", 128), "%s: d_state", cases[i]);
            CHECK(c.m2_headdim == num(ssm, "headdim", 64), "%s: headdim", cases[i]);
            CHECK(c.m2_ngroups == num(ssm, "ngroups", 1), "%s: ngroups", cases[i]);
            CHECK(c.m2_chunk_size == num(ssm, "chunk_size", 256), "%s: chunk_size", cases[i]);
            CHECK(c.m2_d_conv == num(ssm, "d_conv", 4) && c.m2_expand == num(ssm, "expand", 2), "%s: conv/expand", cases[i]);
        } else {
            CHECK(c.m1_d_state == num(ssm, "d_state", 16), "%s: d_state", cases[i]);
            CHECK(c.m1_dt_rank == (c.d_model + 15) / 16, "%s: dt_rank %lld", cases[i], (long long)c.m1_dt_rank);
            CHECK(c.m1_d_conv == 4 && c.m1_expand == 2 && c.m1_conv_bias == 1, "%s: mamba1 defaults", cases[i]);
        }
        const cJSON *att = cJSON_GetObjectItemCaseSensitive(k, "attn_cfg");
        if (strchr(c.pattern, '*')) {
            double h = num(att, "num_heads", -1);
            CHECK(c.attn_heads == h, "%s: heads", cases[i]);
            CHECK(c.attn_kv_heads == num(att, "num_heads_kv", h), "%s: kv_heads", cases[i]);
            CHECK(c.attn_head_dim == num(att, "head_dim", (double)(c.d_model / c.attn_heads)), "%s: head_dim", cases[i]);
            CHECK(c.attn_rotary_dim == num(att, "rotary_emb_dim", 0), "%s: rotary", cases[i]);
            CHECK(c.attn_rope_base == num(att, "rotary_emb_base", 10000), "%s: rope base", cases[i]);
            CHECK(c.attn_qkv_bias == 1 && c.attn_out_bias == 1 && c.attn_d_conv == 0, "%s: MHA defaults", cases[i]);
        }
        if (dint > 0) {
            CHECK(c.mlp_act == SSMLM_ACT_GATED_SILU, "%s: mlp act", cases[i]);
            CHECK(c.mlp_hidden == (dint + 127) / 128 * 128, "%s: mlp hidden %lld", cases[i], (long long)c.mlp_hidden);
        }
        check_round_trip(&c, cases[i]);
        golden_close(&g);
    }
    CHECK(n >= 3, "expected at least 3 golden lm cases, found %d", n);
    golden_free_list(cases);

    /* the known cases, field by field */
    ssmlm_config c;
    char path[1024];
    snprintf(path, sizeof path, "%s/lm_hybrid_ckpt/config.json", golden_dir());
    if (ssmlm_config_load_json(&c, path) == SSMLM_OK) {
        CHECK(strcmp(c.pattern, "M+M+*+M+") == 0, "lm_hybrid pattern %s", c.pattern);
        CHECK(c.mlp_hidden == 128 && c.mlp_act == SSMLM_ACT_GATED_SILU, "lm_hybrid mlp");
        CHECK(c.attn_heads == 4 && c.attn_kv_heads == 2 && c.attn_head_dim == 4 && c.attn_rotary_dim == 4, "lm_hybrid attn");
        CHECK(c.attn_softmax_scale == 0, "lm_hybrid softmax_scale default");
        CHECK(c.ssm_kind == 2 && c.m2_ngroups == 2 && c.m2_d_state == 8 && c.m2_headdim == 4 && c.m2_chunk_size == 4, "lm_hybrid m2");
        CHECK(c.tie_embeddings == 0 && c.vocab_pad_multiple == 8 && ssmlm_config_vocab_padded(&c) == 56, "lm_hybrid vocab");
        CHECK(c.a_init_min == 1 && c.a_init_max == 16 && c.dt_min == 0.001 && c.dt_max == 0.1, "lm_hybrid init");
    } else {
        CHECK(0, "%s: %s", path, ssmlm_last_error());
    }
    snprintf(path, sizeof path, "%s/lm_mamba1_ckpt/config.json", golden_dir());
    if (ssmlm_config_load_json(&c, path) == SSMLM_OK) {
        CHECK(strcmp(c.pattern, "MM") == 0 && c.ssm_kind == 1, "lm_mamba1 pattern %s", c.pattern);
        CHECK(c.m1_d_state == 4 && c.m1_dt_rank == 1 && c.m1_d_conv == 4 && c.m1_expand == 2, "lm_mamba1 sizes");
        CHECK(c.tie_embeddings == 1 && ssmlm_config_vocab_padded(&c) == 56, "lm_mamba1 vocab");
    } else {
        CHECK(0, "%s: %s", path, ssmlm_last_error());
    }
    snprintf(path, sizeof path, "%s/lm_mamba2_ckpt/config.json", golden_dir());
    if (ssmlm_config_load_json(&c, path) == SSMLM_OK) {
        CHECK(strcmp(c.pattern, "MM") == 0 && c.ssm_kind == 2, "lm_mamba2 pattern %s", c.pattern);
        CHECK(c.m2_d_state == 8 && c.m2_headdim == 8 && c.m2_chunk_size == 4 && c.m2_ngroups == 1, "lm_mamba2 sizes");
        CHECK(c.vocab_pad_multiple == 16 && ssmlm_config_vocab_padded(&c) == 64, "lm_mamba2 vocab");
    } else {
        CHECK(0, "%s: %s", path, ssmlm_last_error());
    }
}

/* ---- more mamba_ssm configs ----------------------------------------------------------------- */

static void test_mamba_ssm_format(void) {
    ssmlm_config c;
    /* state-spaces/mamba-130m (older keys only) */
    if (parse_ok(&c, "{\"d_model\": 768, \"n_layer\": 24, \"vocab_size\": 50277, \"ssm_cfg\": {}, \"rms_norm\": true,"
                     " \"residual_in_fp32\": true, \"fused_add_norm\": true, \"pad_vocab_size_multiple\": 8}")) {
        CHECK(c.ssm_kind == 1 && c.n_layer == 24 && c.m1_dt_rank == 48 && c.m1_d_state == 16, "mamba-130m");
        CHECK(ssmlm_config_vocab_padded(&c) == 50280 && c.tie_embeddings == 1, "mamba-130m vocab");
        CHECK(strspn(c.pattern, "M") == 24 && strlen(c.pattern) == 24, "mamba-130m pattern %s", c.pattern);
    }
    /* state-spaces/mamba2-130m */
    if (parse_ok(&c, "{\"d_model\":768,\"d_intermediate\":0,\"n_layer\":24,\"vocab_size\":50277,\"ssm_cfg\":{\"layer\":\"Mamba2\"},"
                     "\"attn_layer_idx\":[],\"attn_cfg\":{},\"rms_norm\":true,\"residual_in_fp32\":true,\"fused_add_norm\":true,"
                     "\"pad_vocab_size_multiple\":16,\"tie_embeddings\":true}")) {
        CHECK(c.ssm_kind == 2 && c.m2_d_state == 128 && c.m2_headdim == 64 && c.m2_ngroups == 1, "mamba2-130m");
        CHECK(c.m2_chunk_size == 256 && c.m2_d_conv == 4 && c.m2_expand == 2, "mamba2-130m chunk %lld", (long long)c.m2_chunk_size);
        CHECK(ssmlm_config_vocab_padded(&c) == 50288, "mamba2-130m vocab");
    }
    /* a mamba2attn-style hybrid: no biases, conv on qkv, LayerNorm, untied, extra keys ignored */
    if (parse_ok(&c, "{\"d_model\": 2560, \"d_intermediate\": 0, \"n_layer\": 64, \"vocab_size\": 50277, \"foo\": [1],"
                     " \"ssm_cfg\": {\"layer\": \"Mamba2\", \"ngroups\": 1, \"A_init_range\": [2, 8], \"dt_min\": 0.002,"
                     " \"d_ssm\": null, \"rmsnorm\": true, \"norm_before_gate\": false, \"unknown_kw\": 3},"
                     " \"attn_layer_idx\": [9, 18, 27, 36, 45, 56],"
                     " \"attn_cfg\": {\"causal\": true, \"d_conv\": 4, \"head_dim\": 128, \"num_heads\": 30,"
                     " \"out_proj_bias\": false, \"qkv_proj_bias\": false, \"rotary_emb_dim\": 64, \"softmax_scale\": null},"
                     " \"rms_norm\": false, \"tie_embeddings\": false, \"pad_vocab_size_multiple\": 16}")) {
        CHECK(c.n_layer == 64 && c.pattern[9] == '*' && c.pattern[56] == '*' && c.pattern[10] == 'M', "hybrid pattern %s", c.pattern);
        int na = 0;
        for (int i = 0; c.pattern[i]; i++) na += c.pattern[i] == '*';
        CHECK(na == 6, "hybrid has %d attention layers", na);
        CHECK(c.attn_heads == 30 && c.attn_kv_heads == 30 && c.attn_head_dim == 128 && c.attn_rotary_dim == 64, "hybrid attn");
        CHECK(c.attn_qkv_bias == 0 && c.attn_out_bias == 0 && c.attn_d_conv == 4 && c.attn_softmax_scale == 0, "hybrid attn flags");
        CHECK(c.norm_kind == SSMLM_NORM_LAYER && c.tie_embeddings == 0, "hybrid norm/tie");
        CHECK(c.a_init_min == 2 && c.a_init_max == 8 && c.dt_min == 0.002, "hybrid ssm init");
        check_round_trip(&c, "mamba2attn");
    }
    /* d_intermediate rounds up to a multiple of 128 */
    if (parse_ok(&c, "{\"d_model\": 16, \"n_layer\": 1, \"vocab_size\": 50, \"d_intermediate\": 129, \"ssm_cfg\": {\"layer\": \"Mamba2\", \"headdim\": 8}}"))
        CHECK(c.mlp_hidden == 256 && strcmp(c.pattern, "M+") == 0, "d_intermediate 129 -> %lld, %s", (long long)c.mlp_hidden, c.pattern);
    /* Mamba-1 explicit dt_rank and options */
    if (parse_ok(&c, "{\"d_model\": 32, \"n_layer\": 1, \"vocab_size\": 50, \"ssm_cfg\": {\"layer\": \"Mamba1\", \"dt_rank\": 5, \"d_conv\": 3, \"conv_bias\": false}}"))
        CHECK(c.m1_dt_rank == 5 && c.m1_d_conv == 3 && c.m1_conv_bias == 0, "mamba1 options");
    if (parse_ok(&c, "{\"d_model\": 33, \"n_layer\": 1, \"vocab_size\": 50, \"ssm_cfg\": {\"dt_rank\": \"auto\"}}"))
        CHECK(c.m1_dt_rank == 3, "dt_rank auto = ceil(33/16) -> %lld", (long long)c.m1_dt_rank);

    const char *base = "\"d_model\": 16, \"n_layer\": 2, \"vocab_size\": 50";
    char t[1024];
#define MS(...) (snprintf(t, sizeof t, __VA_ARGS__), t)
    EXPECT_FAIL(MS("{\"d_model\": \"16\", \"n_layer\": 2, \"vocab_size\": 50}"), SSMLM_ERR_FORMAT, "d_model", "string", NULL);
    EXPECT_FAIL(MS("{\"d_model\": 16, \"n_layer\": 2.5, \"vocab_size\": 50}"), SSMLM_ERR_FORMAT, "n_layer", NULL, NULL);
    EXPECT_FAIL(MS("{\"d_model\": 16, \"n_layer\": 2}"), SSMLM_ERR_FORMAT, "vocab_size", "missing", NULL);
    EXPECT_FAIL(MS("{\"d_model\": 16, \"n_layer\": 0, \"vocab_size\": 50}"), SSMLM_ERR_INVALID, "n_layer", NULL, "try");
    EXPECT_FAIL(MS("{\"d_model\": 16, \"n_layer\": 2000, \"vocab_size\": 50}"), SSMLM_ERR_INVALID, "n_layer", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"ssm_cfg\": []}", base), SSMLM_ERR_FORMAT, "ssm_cfg", "array", NULL);
    EXPECT_FAIL(MS("{%s, \"ssm_cfg\": {\"d_state\": \"x\"}}", base), SSMLM_ERR_FORMAT, "ssm_cfg.d_state", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"ssm_cfg\": {\"d_state\": -4}}", base), SSMLM_ERR_FORMAT, "ssm_cfg.d_state", "-4", NULL);
    EXPECT_FAIL(MS("{%s, \"ssm_cfg\": {\"layer\": 2}}", base), SSMLM_ERR_FORMAT, "ssm_cfg.layer", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"ssm_cfg\": {\"layer\": \"Mamba3\"}}", base), SSMLM_ERR_UNSUPPORTED, "Mamba3", NULL, "Mamba2");
    EXPECT_FAIL(MS("{%s, \"ssm_cfg\": {\"bias\": true}}", base), SSMLM_ERR_UNSUPPORTED, "ssm_cfg.bias", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"ssm_cfg\": {\"layer\": \"Mamba2\", \"headdim\": 8, \"norm_before_gate\": true}}", base),
                SSMLM_ERR_UNSUPPORTED, "norm_before_gate", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"ssm_cfg\": {\"layer\": \"Mamba2\", \"headdim\": 8, \"d_ssm\": 16}}", base),
                SSMLM_ERR_UNSUPPORTED, "d_ssm", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"ssm_cfg\": {\"layer\": \"Mamba2\", \"A_init_range\": [1]}}", base), SSMLM_ERR_FORMAT, "A_init_range", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"ssm_cfg\": {\"layer\": \"Mamba2\"}}", base), SSMLM_ERR_INVALID, "headdim", "d_inner (32)", "try 32");
    EXPECT_FAIL(MS("{%s, \"attn_layer_idx\": [7], \"attn_cfg\": {\"num_heads\": 4}}", base), SSMLM_ERR_INVALID, "attn_layer_idx[0]", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"attn_layer_idx\": [-1], \"attn_cfg\": {\"num_heads\": 4}}", base), SSMLM_ERR_FORMAT, "attn_layer_idx[0]", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"attn_layer_idx\": \"1\"}", base), SSMLM_ERR_FORMAT, "attn_layer_idx", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"attn_layer_idx\": [1]}", base), SSMLM_ERR_FORMAT, "num_heads", NULL, "num_heads");
    EXPECT_FAIL(MS("{%s, \"attn_layer_idx\": [1], \"attn_cfg\": {\"num_heads\": 4, \"num_heads_kv\": 3}}", base),
                SSMLM_ERR_INVALID, "kv_heads", NULL, "try 2 or 4");
    EXPECT_FAIL(MS("{%s, \"attn_layer_idx\": [1], \"attn_cfg\": {\"num_heads\": 4, \"mlp_dim\": 64}}", base),
                SSMLM_ERR_UNSUPPORTED, "mlp_dim", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"attn_layer_idx\": [1], \"attn_cfg\": {\"num_heads\": 4, \"rotary_emb_interleaved\": true}}", base),
                SSMLM_ERR_UNSUPPORTED, "rotary_emb_interleaved", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"attn_layer_idx\": [1], \"attn_cfg\": {\"num_heads\": 4, \"causal\": false}}", base),
                SSMLM_ERR_UNSUPPORTED, "causal", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"attn_cfg\": 4}", base), SSMLM_ERR_FORMAT, "attn_cfg", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"rms_norm\": \"yes\"}", base), SSMLM_ERR_FORMAT, "rms_norm", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"tie_embeddings\": 0}", base), SSMLM_ERR_FORMAT, "tie_embeddings", NULL, NULL);
    EXPECT_FAIL(MS("{%s, \"n_layer\": 3}", base), SSMLM_ERR_FORMAT, "n_layer", "twice", NULL);
    EXPECT_FAIL(MS("{%s, \"ssm_cfg\": {\"d_state\": 4, \"d_state\": 8}}", base), SSMLM_ERR_FORMAT, "ssm_cfg.d_state", "twice", NULL);
    EXPECT_FAIL("{\"model_type\": \"mamba\", \"hidden_size\": 768, \"num_hidden_layers\": 24, \"vocab_size\": 50280,"
                " \"pad_vocab_size_multiple\": 8, \"residual_in_fp32\": true}", SSMLM_ERR_UNSUPPORTED, "Hugging Face", NULL, NULL);
#undef MS
}

/* ---- ssmlm format --------------------------------------------------------------------------- */

static void test_ssmlm_format(void) {
    ssmlm_config c, d;
    ssmlm_config_defaults(&d);
    if (parse_ok(&c, "{}")) {
        /* defaults with the auto sizes resolved */
        CHECK(c.d_model == d.d_model && strcmp(c.pattern, d.pattern) == 0 && c.n_layer == 4, "empty config");
        CHECK(c.m1_dt_rank == (d.d_model + 15) / 16, "dt_rank auto -> %lld", (long long)c.m1_dt_rank);
        CHECK(c.attn_head_dim == d.d_model / d.attn_heads, "head_dim auto -> %lld", (long long)c.attn_head_dim);
        CHECK(c.mlp_hidden == 4 * d.d_model, "mlp hidden auto -> %lld", (long long)c.mlp_hidden);
        CHECK(c.m2_chunk_size == d.m2_chunk_size && c.init_std == d.init_std && c.seed == d.seed, "defaults kept");
        check_round_trip(&c, "defaults");
    }
    if (parse_ok(&c, "{\"format\": \"ssmlm\", \"version\": 1, \"pattern\": \"M-M*\", \"d_model\": 64,"
                     " \"attention\": {\"heads\": 4, \"kv_heads\": 4, \"head_dim\": \"auto\", \"rotary_percent\": 0.5},"
                     " \"mlp\": {\"hidden\": \"auto\", \"activation\": \"swiglu\"}, \"mamba2\": {\"headdim\": 16}}")) {
        CHECK(strcmp(c.pattern, "M+M*") == 0 && c.n_layer == 4, "'-' read as '+': %s", c.pattern);
        CHECK(c.attn_head_dim == 16 && c.attn_rotary_dim == 8, "rotary_percent: head_dim %lld rotary %lld",
              (long long)c.attn_head_dim, (long long)c.attn_rotary_dim);
        CHECK(c.mlp_hidden == 256 && c.mlp_act == SSMLM_ACT_SWIGLU, "mlp");
    }
    if (parse_ok(&c, "{\"pattern\": \"M\", \"ssm\": \"mamba1\", \"d_model\": 40, \"mamba1\": {\"dt_rank\": \"auto\"}}"))
        CHECK(c.ssm_kind == 1 && c.m1_dt_rank == 3, "mamba1 auto rank %lld", (long long)c.m1_dt_rank);
    /* pattern from ratios (paper Algorithm 1): the 8B hybrid's 56 layers */
    if (parse_ok(&c, "{\"pattern_ratios\": {\"layers\": 56, \"attention\": 0.08, \"mlp\": 0.5}, \"d_model\": 256,"
                     " \"mamba2\": {\"headdim\": 64}}")) {
        int nm = 0, na = 0, nf = 0;
        for (int i = 0; c.pattern[i]; i++) {
            nm += c.pattern[i] == 'M';
            na += c.pattern[i] == '*';
            nf += c.pattern[i] == '+';
        }
        CHECK(c.n_layer == 56 && nm == 24 && na == 4 && nf == 28, "ratios: %s", c.pattern);
        CHECK(strcmp(c.pattern, "M+M+M++M+M*+M+M+M+M++M*+M+M+M+M+M*++M+M+M+M+M*+M++M+M+M+") == 0, "ratios pattern %s", c.pattern);
        check_round_trip(&c, "ratios");
    }
    if (parse_ok(&c, "{\"pattern_ratios\": {\"layers\": 2}, \"n_layer\": 2}"))
        CHECK(strcmp(c.pattern, "MM") == 0, "ratios without attention/mlp: %s", c.pattern);
    if (parse_ok(&c, "{\"seed\": \"18446744073709551615\"}")) CHECK(c.seed == UINT64_MAX, "big seed");
    if (parse_ok(&c, "{\"seed\": 9007199254740991}")) CHECK(c.seed == 9007199254740991ULL, "seed 2^53-1");

    EXPECT_FAIL("{\"format\": \"mamba\"}", SSMLM_ERR_FORMAT, "format", NULL, NULL);
    EXPECT_FAIL("{\"format\": \"ssmlm\", \"version\": 2}", SSMLM_ERR_UNSUPPORTED, "version", NULL, NULL);
    EXPECT_FAIL("{\"d_model\": \"16\"}", SSMLM_ERR_FORMAT, "d_model", "string \"16\"", NULL);
    EXPECT_FAIL("{\"d_model\": 16.5}", SSMLM_ERR_FORMAT, "d_model", "16.5", NULL);
    EXPECT_FAIL("{\"d_model\": -16}", SSMLM_ERR_FORMAT, "d_model", "non-negative integer", NULL);
    EXPECT_FAIL("{\"d_model\": 1e400}", SSMLM_ERR_FORMAT, "d_model", NULL, NULL);
    EXPECT_FAIL("{\"d_model\": null}", SSMLM_ERR_FORMAT, "d_model", "null", NULL);
    EXPECT_FAIL("{\"d_model\": true}", SSMLM_ERR_FORMAT, "d_model", NULL, NULL);
    EXPECT_FAIL("{\"d_model\": 0}", SSMLM_ERR_INVALID, "d_model", NULL, "try 256");
    EXPECT_FAIL("{\"norm_eps\": \"small\"}", SSMLM_ERR_FORMAT, "norm_eps", NULL, NULL);
    EXPECT_FAIL("{\"norm_eps\": -1e-5}", SSMLM_ERR_INVALID, "norm_eps", NULL, "try 1e-05");
    EXPECT_FAIL("{\"tie_embeddings\": 1}", SSMLM_ERR_FORMAT, "tie_embeddings", "true or false", NULL);
    EXPECT_FAIL("{\"ssm\": \"mamba3\"}", SSMLM_ERR_FORMAT, "ssm", "\"mamba2\"", NULL);
    EXPECT_FAIL("{\"norm\": \"batchnorm\"}", SSMLM_ERR_FORMAT, "norm", "\"layernorm\"", NULL);
    EXPECT_FAIL("{\"mlp\": {\"activation\": \"tanh\"}}", SSMLM_ERR_FORMAT, "mlp.activation", "\"gated_silu\"", NULL);
    EXPECT_FAIL("{\"mamba2\": 5}", SSMLM_ERR_FORMAT, "mamba2", "object", NULL);
    EXPECT_FAIL("{\"mamba2\": {\"headdim\": [4]}}", SSMLM_ERR_FORMAT, "mamba2.headdim", "array", NULL);
    EXPECT_FAIL("{\"mamba1\": {\"dt_rank\": \"big\"}}", SSMLM_ERR_FORMAT, "mamba1.dt_rank", NULL, NULL);
    EXPECT_FAIL("{\"pattern\": 5}", SSMLM_ERR_FORMAT, "pattern", NULL, NULL);
    EXPECT_FAIL("{\"pattern\": \"MxM\"}", SSMLM_ERR_INVALID, "pattern", "'x'", "M");
    EXPECT_FAIL("{\"pattern\": \"\"}", SSMLM_ERR_INVALID, "pattern", "empty", NULL);
    EXPECT_FAIL("{\"pattern\": \"MM\", \"n_layer\": 3}", SSMLM_ERR_FORMAT, "n_layer", "2 layers", "try 2");
    EXPECT_FAIL("{\"name\": 3}", SSMLM_ERR_FORMAT, "name", NULL, NULL);
    EXPECT_FAIL("{\"name\": \"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
                SSMLM_ERR_FORMAT, "name", "70 bytes", NULL);
    EXPECT_FAIL("{\"seed\": -1}", SSMLM_ERR_FORMAT, "seed", NULL, NULL);
    EXPECT_FAIL("{\"seed\": 1.5}", SSMLM_ERR_FORMAT, "seed", NULL, NULL);
    EXPECT_FAIL("{\"seed\": \"12x\"}", SSMLM_ERR_FORMAT, "seed", NULL, NULL);
    EXPECT_FAIL("{\"seed\": \"18446744073709551616\"}", SSMLM_ERR_FORMAT, "seed", NULL, NULL);
    EXPECT_FAIL("{\"seed\": 9007199254740993}", SSMLM_ERR_FORMAT, "seed", NULL, NULL);
    EXPECT_FAIL("{\"pattern\": \"MM\", \"pattern_ratios\": {\"layers\": 2}}", SSMLM_ERR_FORMAT, "pattern_ratios", NULL, NULL);
    EXPECT_FAIL("{\"pattern_ratios\": 3}", SSMLM_ERR_FORMAT, "pattern_ratios", NULL, NULL);
    EXPECT_FAIL("{\"pattern_ratios\": {\"attention\": 0.1}}", SSMLM_ERR_FORMAT, "layers", NULL, NULL);
    EXPECT_FAIL("{\"pattern_ratios\": {\"layers\": 8, \"attention\": 0.7, \"mlp\": 0.7}}", SSMLM_ERR_INVALID, "pattern_ratios", NULL, NULL);
    EXPECT_FAIL("{\"attention\": {\"rotary_dim\": 4, \"rotary_percent\": 0.5}}", SSMLM_ERR_FORMAT, "rotary_percent", NULL, NULL);
    EXPECT_FAIL("{\"attention\": {\"rotary_percent\": 1.5}}", SSMLM_ERR_FORMAT, "rotary_percent", NULL, NULL);
    EXPECT_FAIL("{\"pattern\": \"*\", \"attention\": {\"heads\": 4, \"head_dim\": 10, \"rotary_percent\": 0.5}}",
                SSMLM_ERR_INVALID, "rotary_percent", "odd", "try rotary_dim 4");
    EXPECT_FAIL("{\"pattern\": \"M\", \"d_model\": 500, \"mamba2\": {\"headdim\": 48}}", SSMLM_ERR_INVALID,
                "mamba2.headdim 48", "d_inner 1000", "try 40 or 50");
    /* unknown and duplicate keys */
    EXPECT_FAIL("{\"d_modle\": 16}", SSMLM_ERR_FORMAT, "\"d_modle\"", "\"d_model\"", "did you mean \"d_model\"");
    EXPECT_FAIL("{\"mamba2\": {\"hedadim\": 4}}", SSMLM_ERR_FORMAT, "mamba2.hedadim", "mamba2.headdim", "headdim");
    EXPECT_FAIL("{\"atention\": {}}", SSMLM_ERR_FORMAT, "atention", "\"attention\"", "attention");
    EXPECT_FAIL("{\"pattern_ratios\": {\"layers\": 8, \"atention\": 0.1}}", SSMLM_ERR_FORMAT, "atention", "pattern_ratios.attention", NULL);
    EXPECT_FAIL("{\"format\": \"ssmlm\", \"ssm_cfg\": {}}", SSMLM_ERR_FORMAT, "ssm_cfg", NULL, "did you mean");
    EXPECT_FAIL("{\"d_model\": 16, \"d_model\": 32}", SSMLM_ERR_FORMAT, "d_model", "twice", NULL);
    EXPECT_FAIL("{\"mamba2\": {\"headdim\": 4, \"headdim\": 8}}", SSMLM_ERR_FORMAT, "mamba2.headdim", "twice", NULL);
}

/* ---- malformed input and files ---------------------------------------------------------------- */

static void test_malformed(void) {
    EXPECT_FAIL("", SSMLM_ERR_FORMAT, "malformed JSON", "line 1", "syntax");
    EXPECT_FAIL("{", SSMLM_ERR_FORMAT, "malformed JSON", NULL, NULL);
    EXPECT_FAIL("{\"d_model\": 1", SSMLM_ERR_FORMAT, "malformed JSON", NULL, NULL);
    EXPECT_FAIL("{} x", SSMLM_ERR_FORMAT, "malformed JSON", "line 1, column 4", NULL);
    EXPECT_FAIL("{\n  \"d_model\": 16,\n  \"vocab_size\": ,\n}", SSMLM_ERR_FORMAT, "malformed JSON", "line 3, column", NULL);
    EXPECT_FAIL("{\"d_model\": 16,}", SSMLM_ERR_FORMAT, "malformed JSON", NULL, NULL);
    EXPECT_FAIL("[1, 2]", SSMLM_ERR_FORMAT, "top level", "object", NULL);
    EXPECT_FAIL("null", SSMLM_ERR_FORMAT, "top level", NULL, NULL);
    EXPECT_FAIL("\"text\"", SSMLM_ERR_FORMAT, "top level", NULL, NULL);
    /* deep nesting must fail cleanly */
    char deep[4096];
    size_t n = (size_t)snprintf(deep, sizeof deep, "{\"a\": ");
    for (int i = 0; i < 1500; i++) deep[n++] = '[';
    deep[n] = 0;
    EXPECT_FAIL(deep, SSMLM_ERR_FORMAT, "malformed JSON", NULL, NULL);

    ssmlm_config c;
    CHECK(ssmlm_config_parse_json(&c, NULL, "x") == SSMLM_ERR_INVALID, "NULL text");
    char path[128];
    snprintf(path, sizeof path, "%s/missing.json", g_tmp);
    CHECK(ssmlm_config_load_json(&c, path) == SSMLM_ERR_IO && has(ssmlm_last_error(), "missing.json"), "missing file: %s", ssmlm_last_error());
    CHECK(ssmlm_config_load_json(&c, g_tmp) == SSMLM_ERR_IO, "directory: %s", ssmlm_last_error());
    snprintf(path, sizeof path, "%s/nul.json", g_tmp);
    write_file(path, "{}\0{}", 5);
    CHECK(ssmlm_config_load_json(&c, path) == SSMLM_ERR_FORMAT && has(ssmlm_last_error(), "NUL"), "NUL byte: %s", ssmlm_last_error());
    unlink(path);
    snprintf(path, sizeof path, "%s/bad.json", g_tmp);
    const char *bad = "{\n\"d_model\": 16\n\"vocab_size\": 50}";
    write_file(path, bad, strlen(bad));
    CHECK(ssmlm_config_load_json(&c, path) == SSMLM_ERR_FORMAT && has(ssmlm_last_error(), "bad.json") &&
          has(ssmlm_last_error(), "line 3"), "malformed file: %s", ssmlm_last_error());
    unlink(path);
    /* saving an invalid config is refused and leaves nothing behind */
    ssmlm_config_defaults(&c);
    c.d_model = 0;
    snprintf(path, sizeof path, "%s/invalid.json", g_tmp);
    CHECK(ssmlm_config_save_json(&c, path) == SSMLM_ERR_INVALID, "saving an invalid config");
    CHECK(access(path, F_OK) != 0, "invalid config was written");
    ssmlm_config_defaults(&c);
    c.attn_head_dim = 32;
    c.mlp_hidden = 1024;
    c.m1_dt_rank = 16;
    snprintf(path, sizeof path, "%s/nodir/x.json", g_tmp);
    CHECK(ssmlm_config_save_json(&c, path) == SSMLM_ERR_IO, "save into a missing folder");
}

/* ---- exact round trips ---------------------------------------------------------------------- */

static void test_round_trips(void) {
    ssmlm_config c;
    ssmlm_config_defaults(&c);
    /* every field away from its default, awkward strings and doubles */
    snprintf(c.name, sizeof c.name, "odd \"name\" \\ tab\t nl\n ctl\x01 del\x7f \xc3\xbcnicode");
    c.d_model = 96;
    c.vocab_size = 1000;
    c.vocab_pad_multiple = 7;
    snprintf(c.pattern, sizeof c.pattern, "M*+M+*");
    c.n_layer = 6;
    c.ssm_kind = SSMLM_SSM_MAMBA1;
    c.tie_embeddings = 1;
    c.norm_kind = SSMLM_NORM_LAYER;
    c.norm_zero_centered = 1;
    c.norm_eps = 0.1 + 0.2;
    c.m1_d_state = 5;
    c.m1_d_conv = 3;
    c.m1_expand = 3;
    c.m1_dt_rank = 7;
    c.m1_conv_bias = 0;
    c.m2_d_state = 9;
    c.m2_d_conv = 2;
    c.m2_expand = 1;
    c.m2_headdim = 12;
    c.m2_ngroups = 4;
    c.m2_chunk_size = 33;
    c.m2_conv_bias = 0;
    c.dt_min = 1.0 / 3.0;
    c.dt_max = 0.7;
    c.dt_init_floor = 1e-300;
    c.a_init_min = 1.5;
    c.a_init_max = 17.25;
    c.attn_heads = 6;
    c.attn_kv_heads = 3;
    c.attn_head_dim = 10;
    c.attn_rotary_dim = 6;
    c.attn_rope_base = 5e5;
    c.attn_softmax_scale = 0.12345678901234568;
    c.attn_qkv_bias = 1;
    c.attn_out_bias = 1;
    c.attn_d_conv = 3;
    c.mlp_hidden = 100;
    c.mlp_act = SSMLM_ACT_SWIGLU;
    c.init_std = 5e-324;
    c.seed = UINT64_MAX;
    CHECK_OK(ssmlm_config_validate(&c));
    check_round_trip(&c, "all fields");
    c.ssm_kind = SSMLM_SSM_MAMBA2;
    check_round_trip(&c, "all fields, mamba2");
    uint64_t seeds[] = {0, 1, (1ULL << 53) - 1, 1ULL << 53, (1ULL << 53) + 1, UINT64_MAX - 1};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        c.seed = seeds[i];
        check_round_trip(&c, "seed");
    }
    /* every preset */
    const char *const *names = ssmlm_preset_names();
    for (int i = 0; names && names[i]; i++) {
        ssmlm_config p;
        ssmlm_status s = ssmlm_preset(&p, names[i]);
        CHECK(s == SSMLM_OK, "preset %s: %s", names[i], ssmlm_last_error());
        if (s != SSMLM_OK) continue;
        /* presets may leave the sizes of unused layer kinds at 0 ("auto"): resolve them as a
         * load does, then the round trip must be exact */
        if (p.attn_head_dim == 0) p.attn_head_dim = p.d_model / p.attn_heads;
        if (p.mlp_hidden == 0) p.mlp_hidden = 4 * p.d_model;
        if (p.m1_dt_rank == 0) p.m1_dt_rank = (p.d_model + 15) / 16;
        check_round_trip(&p, names[i]);
    }
    /* the written file holds every key; nothing but the target is left in the folder */
    char path[128];
    snprintf(path, sizeof path, "%s/all.json", g_tmp);
    CHECK_OK(ssmlm_config_save_json(&c, path));
    char *text = NULL;
    if (ssmlm_file_read(path, &text, NULL) == SSMLM_OK) {
        static const char *const keys[] = {"\"format\": \"ssmlm\"", "\"version\": 1", "\"mamba1\": {", "\"mamba2\": {",
                                           "\"ssm_init\": {", "\"attention\": {", "\"mlp\": {", "\"a_init_max\": 17.25",
                                           "\"norm_eps\": 0.30000000000000004", "\"seed\": \"18446744073709551614\"", NULL};
        for (int i = 0; keys[i]; i++) CHECK(has(text, keys[i]), "saved config lacks %s:\n%s", keys[i], text);
        free(text);
    }
    DIR *d = opendir(g_tmp);
    int others = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "all.json")) others++;
    if (d) closedir(d);
    CHECK(others == 0, "%d stray files in %s", others, g_tmp);
    unlink(path);
}

/* ---- validation rules ------------------------------------------------------------------------ */

enum { V_I64 = 1, V_INT, V_F64 };
typedef struct rule {
    int line;
    int mamba1;             /* base: 0 hybrid with Mamba-2, 1 hybrid with Mamba-1 */
    size_t off; int type; double bad;      /* the field to break */
    size_t off2; int type2; double v2;     /* optional second change made first */
    const char *msg_has, *hint_has;
    size_t fix_off; int fix_type;          /* where the hint's value goes (0: no fix check) */
} rule;

#define OFF(m) offsetof(ssmlm_config, m)
#define TI64(m) OFF(m), V_I64
#define TINT(m) OFF(m), V_INT
#define TF64(m) OFF(m), V_F64
#define NOFIX 0, 0
#define NONE 0, 0, 0

static void set_field(ssmlm_config *c, size_t off, int type, double v) {
    char *p = (char *)c + off;
    if (type == V_I64) *(int64_t *)(void *)p = (int64_t)v;
    else if (type == V_INT) *(int *)(void *)p = (int)v;
    else if (type == V_F64) *(double *)(void *)p = v;
}

/* The hint's last whitespace-separated token that is a whole number. */
static int hint_value(const char *hint, double *out) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", hint);
    int found = 0;
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
        char *end;
        double v = strtod(tok, &end);
        if (end != tok && *end == 0) {
            *out = v;
            found = 1;
        }
    }
    return found;
}

static void base_config(ssmlm_config *c, int mamba1) {
    ssmlm_config_defaults(c);
    c->d_model = 64;
    c->vocab_size = 100;
    snprintf(c->pattern, sizeof c->pattern, "M*+M");
    c->n_layer = 4;
    c->ssm_kind = mamba1 ? SSMLM_SSM_MAMBA1 : SSMLM_SSM_MAMBA2;
    c->m1_dt_rank = 4;
    c->m2_d_state = 16;
    c->m2_headdim = 16; /* E 128, H 8 */
    c->m2_ngroups = 1;
    c->m2_chunk_size = 16;
    c->attn_heads = 8;
    c->attn_kv_heads = 4;
    c->attn_head_dim = 8;
    c->attn_rotary_dim = 4;
    c->mlp_hidden = 256;
}

static void test_validation(void) {
    const double NaN = nan("");
    const rule rules[] = {
        {__LINE__, 0, TI64(d_model), 0, NONE, "d_model", "try 256", TI64(d_model)},
        {__LINE__, 0, TI64(d_model), -5, NONE, "d_model", "try", TI64(d_model)},
        {__LINE__, 0, TI64(d_model), 1 << 30, NONE, "d_model", "try", NOFIX},
        {__LINE__, 0, TI64(vocab_size), 0, NONE, "vocab_size", "try", TI64(vocab_size)},
        {__LINE__, 0, TI64(vocab_size), 1 << 25, NONE, "vocab_size", "try", TI64(vocab_size)},
        {__LINE__, 0, TI64(vocab_pad_multiple), 0, NONE, "vocab_pad_multiple", "try 8", TI64(vocab_pad_multiple)},
        {__LINE__, 0, TI64(n_layer), 5, NONE, "n_layer", "try 4", TI64(n_layer)},
        {__LINE__, 0, TINT(ssm_kind), 3, NONE, "ssm", "mamba2", NOFIX},
        {__LINE__, 0, TINT(tie_embeddings), 2, NONE, "tie_embeddings", "1", TINT(tie_embeddings)},
        {__LINE__, 0, TINT(norm_kind), 7, NONE, "norm", "layernorm", NOFIX},
        {__LINE__, 0, TINT(norm_zero_centered), -1, NONE, "norm_zero_centered", "0", TINT(norm_zero_centered)},
        {__LINE__, 0, TF64(norm_eps), 0, NONE, "norm_eps", "try 1e-05", TF64(norm_eps)},
        {__LINE__, 0, TF64(norm_eps), NaN, NONE, "norm_eps", "try", TF64(norm_eps)},
        {__LINE__, 0, TF64(norm_eps), INFINITY, NONE, "norm_eps", "try", TF64(norm_eps)},
        {__LINE__, 0, TF64(init_std), -0.02, NONE, "init_std", "try 0.02", TF64(init_std)},
        /* Mamba-2 */
        {__LINE__, 0, TI64(m2_d_state), 0, NONE, "mamba2.d_state", "try 128", TI64(m2_d_state)},
        {__LINE__, 0, TI64(m2_d_conv), 0, NONE, "mamba2.d_conv", "try 4", TI64(m2_d_conv)},
        {__LINE__, 0, TI64(m2_expand), 0, NONE, "mamba2.expand", "try 2", TI64(m2_expand)},
        {__LINE__, 0, TI64(m2_expand), 1 << 20, NONE, "mamba2.expand", "try", NOFIX},
        {__LINE__, 0, TI64(m2_headdim), 0, NONE, "mamba2.headdim", "try 64", TI64(m2_headdim)},
        {__LINE__, 0, TI64(m2_headdim), 48, TI64(d_model), 500, "mamba2.headdim 48 does not divide d_inner 1000", "try 40 or 50", TI64(m2_headdim)},
        {__LINE__, 0, TI64(m2_headdim), 2000, NONE, "mamba2.headdim", "try 128", TI64(m2_headdim)},
        {__LINE__, 0, TI64(m2_ngroups), 3, NONE, "mamba2.ngroups 3 does not divide nheads 8", "try 2 or 4", TI64(m2_ngroups)},
        {__LINE__, 0, TI64(m2_ngroups), 0, NONE, "mamba2.ngroups", "try 1", TI64(m2_ngroups)},
        {__LINE__, 0, TI64(m2_ngroups), 16, NONE, "mamba2.ngroups", "try 8", TI64(m2_ngroups)},
        {__LINE__, 0, TI64(m2_headdim), 32, TI64(m2_ngroups), 8, "mamba2.ngroups", "try 4", TI64(m2_ngroups)},
        {__LINE__, 0, TI64(m2_chunk_size), 0, NONE, "mamba2.chunk_size", "try 64", TI64(m2_chunk_size)},
        {__LINE__, 0, TI64(m2_d_state), 1 << 23, TI64(m2_ngroups), 8, "conv_dim", "mamba2.d_state", TI64(m2_d_state)},
        {__LINE__, 0, TINT(m2_conv_bias), 2, NONE, "mamba2.conv_bias", "1", TINT(m2_conv_bias)},
        {__LINE__, 0, TF64(dt_min), 0, NONE, "ssm_init.dt_min", "try 0.001", TF64(dt_min)},
        {__LINE__, 0, TF64(dt_min), 1, NONE, "ssm_init.dt_min 1 exceeds ssm_init.dt_max 0.1", "try dt_max 1", TF64(dt_max)},
        {__LINE__, 0, TF64(dt_max), NaN, NONE, "ssm_init.dt_max", "try 0.1", TF64(dt_max)},
        {__LINE__, 0, TF64(dt_init_floor), -1, NONE, "ssm_init.dt_init_floor", "try 0.0001", TF64(dt_init_floor)},
        {__LINE__, 0, TF64(a_init_min), 0, NONE, "ssm_init.a_init_min", "try 1", TF64(a_init_min)},
        {__LINE__, 0, TF64(a_init_min), 20, NONE, "ssm_init.a_init_min 20 exceeds ssm_init.a_init_max 16", "try a_init_max 20", TF64(a_init_max)},
        {__LINE__, 0, TF64(a_init_max), -3, NONE, "ssm_init.a_init_max", "try 16", TF64(a_init_max)},
        /* Mamba-1 */
        {__LINE__, 1, TI64(m1_d_state), 0, NONE, "mamba1.d_state", "try 16", TI64(m1_d_state)},
        {__LINE__, 1, TI64(m1_d_conv), -1, NONE, "mamba1.d_conv", "try 4", TI64(m1_d_conv)},
        {__LINE__, 1, TI64(m1_expand), 0, NONE, "mamba1.expand", "try 2", TI64(m1_expand)},
        {__LINE__, 1, TI64(m1_dt_rank), 0, NONE, "mamba1.dt_rank", "try 4", TI64(m1_dt_rank)},
        {__LINE__, 1, TINT(m1_conv_bias), 5, NONE, "mamba1.conv_bias", "1", TINT(m1_conv_bias)},
        {__LINE__, 1, TF64(dt_min), -1, NONE, "ssm_init.dt_min", "try", TF64(dt_min)},
        /* attention */
        {__LINE__, 0, TI64(attn_heads), 0, NONE, "attention.heads", "try 4", TI64(attn_heads)},
        {__LINE__, 0, TI64(attn_kv_heads), 3, NONE, "attention.kv_heads 3 does not divide attention.heads 8", "try 2 or 4", TI64(attn_kv_heads)},
        {__LINE__, 0, TI64(attn_kv_heads), 0, NONE, "attention.kv_heads", "try 8", TI64(attn_kv_heads)},
        {__LINE__, 0, TI64(attn_kv_heads), 16, NONE, "attention.kv_heads", "try 8", TI64(attn_kv_heads)},
        {__LINE__, 0, TI64(attn_head_dim), 0, NONE, "attention.head_dim", "try 8", TI64(attn_head_dim)},
        {__LINE__, 0, TI64(attn_head_dim), 1 << 22, NONE, "head_dim", "try", TI64(attn_head_dim)},
        {__LINE__, 0, TI64(attn_rotary_dim), 5, NONE, "attention.rotary_dim 5 must be even", "try 4 or 6", TI64(attn_rotary_dim)},
        {__LINE__, 0, TI64(attn_rotary_dim), 7, NONE, "attention.rotary_dim", "try 6", TI64(attn_rotary_dim)},
        {__LINE__, 0, TI64(attn_rotary_dim), 10, NONE, "attention.rotary_dim", "8", TI64(attn_rotary_dim)},
        {__LINE__, 0, TI64(attn_rotary_dim), -2, NONE, "attention.rotary_dim", "try 0", TI64(attn_rotary_dim)},
        {__LINE__, 0, TF64(attn_rope_base), 0, NONE, "attention.rope_base", "try 10000", TF64(attn_rope_base)},
        {__LINE__, 0, TF64(attn_softmax_scale), -1, NONE, "attention.softmax_scale", "0.353553", TF64(attn_softmax_scale)},
        {__LINE__, 0, TI64(attn_d_conv), -1, NONE, "attention.d_conv", "4", TI64(attn_d_conv)},
        {__LINE__, 0, TINT(attn_qkv_bias), 3, NONE, "attention.qkv_bias", "1", TINT(attn_qkv_bias)},
        {__LINE__, 0, TINT(attn_out_bias), -1, NONE, "attention.out_bias", "1", TINT(attn_out_bias)},
        /* MLP */
        {__LINE__, 0, TI64(mlp_hidden), 0, NONE, "mlp.hidden", "try 256", TI64(mlp_hidden)},
        {__LINE__, 0, TI64(mlp_hidden), 1 << 24, TINT(mlp_act), SSMLM_ACT_SWIGLU, "mlp.hidden", "try", TI64(mlp_hidden)},
        {__LINE__, 0, TINT(mlp_act), 9, NONE, "mlp.activation", "gated_silu", NOFIX},
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const rule *r = &rules[i];
        ssmlm_config c;
        base_config(&c, r->mamba1);
        CHECK_OK(ssmlm_config_validate(&c));
        if (r->type2) set_field(&c, r->off2, r->type2, r->v2);
        set_field(&c, r->off, r->type, r->bad);
        ssmlm_clear_error();
        ssmlm_status s = ssmlm_config_validate(&c);
        const char *msg = ssmlm_last_error(), *hint = ssmlm_last_hint();
        CHECK(s == SSMLM_ERR_INVALID, "rule at line %d: validate -> %s", r->line, ssmlm_status_name(s));
        CHECK(has(msg, r->msg_has), "rule at line %d: message lacks '%s': %s", r->line, r->msg_has, msg);
        CHECK(has(hint, r->hint_has), "rule at line %d: hint lacks '%s': %s", r->line, r->hint_has, hint);
        if (!r->fix_type) continue;
        double v = 0;
        CHECK(hint_value(hint, &v), "rule at line %d: no value in hint '%s'", r->line, hint);
        set_field(&c, r->fix_off, r->fix_type, v);
        s = ssmlm_config_validate(&c);
        CHECK(s == SSMLM_OK, "rule at line %d: the hint's value %g is not valid: %s", r->line, v, ssmlm_last_error());
    }

    ssmlm_config c;
    /* headdim hints keep nheads a multiple of ngroups: d_inner 1000, ngroups 2 */
    base_config(&c, 0);
    c.d_model = 500;
    c.m2_ngroups = 2;
    c.m2_headdim = 48;
    CHECK(ssmlm_config_validate(&c) == SSMLM_ERR_INVALID && has(ssmlm_last_hint(), "try 25 or 50"),
          "headdim hint with ngroups 2: %s", ssmlm_last_hint());
    c.m2_headdim = 2000;
    CHECK(ssmlm_config_validate(&c) == SSMLM_ERR_INVALID && has(ssmlm_last_hint(), "try 500"),
          "headdim above d_inner with ngroups 2: %s", ssmlm_last_hint());
    /* strings */
    base_config(&c, 0);
    memset(c.name, 'x', sizeof c.name);
    CHECK(ssmlm_config_validate(&c) == SSMLM_ERR_INVALID && has(ssmlm_last_error(), "name"), "unterminated name");
    base_config(&c, 0);
    memset(c.pattern, 'M', sizeof c.pattern);
    CHECK(ssmlm_config_validate(&c) == SSMLM_ERR_INVALID && has(ssmlm_last_error(), "pattern"), "unterminated pattern");
    base_config(&c, 0);
    c.pattern[0] = 0;
    c.n_layer = 0;
    CHECK(ssmlm_config_validate(&c) == SSMLM_ERR_INVALID && has(ssmlm_last_error(), "pattern") &&
          has(ssmlm_last_hint(), "MMMM"), "empty pattern: %s", ssmlm_last_error());
    base_config(&c, 0);
    c.pattern[1] = '-';
    CHECK(ssmlm_config_validate(&c) == SSMLM_ERR_INVALID && has(ssmlm_last_error(), "'-' at position 1"),
          "unnormalized pattern: %s", ssmlm_last_error());
    base_config(&c, 0);
    c.pattern[2] = '\n';
    CHECK(ssmlm_config_validate(&c) == SSMLM_ERR_INVALID && has(ssmlm_last_error(), "0x0a"), "control byte: %s", ssmlm_last_error());
    CHECK(ssmlm_config_validate(NULL) == SSMLM_ERR_INVALID, "NULL config");

    /* only the layer kinds of the pattern are checked */
    base_config(&c, 1);
    c.m2_headdim = 48;
    c.a_init_min = -1;
    CHECK_OK(ssmlm_config_validate(&c)); /* Mamba-2 settings unused by a Mamba-1 model */
    base_config(&c, 0);
    c.m1_dt_rank = 0;
    c.m1_d_state = -1;
    CHECK_OK(ssmlm_config_validate(&c));
    base_config(&c, 0);
    snprintf(c.pattern, sizeof c.pattern, "M+M");
    c.n_layer = 3;
    c.attn_heads = 0;
    c.attn_rotary_dim = 3;
    CHECK_OK(ssmlm_config_validate(&c)); /* no attention layer */
    snprintf(c.pattern, sizeof c.pattern, "*+*+");
    c.n_layer = 4;
    c.attn_heads = 8;
    c.attn_rotary_dim = 4;
    c.m2_headdim = 7;
    c.dt_min = -1;
    CHECK_OK(ssmlm_config_validate(&c)); /* no Mamba layer */
    snprintf(c.pattern, sizeof c.pattern, "M*M*");
    c.m2_headdim = 16;
    c.dt_min = 0.001;
    c.mlp_hidden = 0;
    c.mlp_act = 42;
    CHECK_OK(ssmlm_config_validate(&c)); /* no MLP layer */
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/ssmlm_test_config_XXXXXX");
    if (!mkdtemp(g_tmp)) {
        fprintf(stderr, "cannot create a temporary folder\n");
        return 1;
    }
    test_golden_configs();
    test_mamba_ssm_format();
    test_ssmlm_format();
    test_malformed();
    test_round_trips();
    test_validation();
    rmdir(g_tmp);
    TEST_END();
}

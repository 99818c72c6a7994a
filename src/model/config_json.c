/* config_json.c — model configs as JSON.  Two input formats, told apart by their keys:
 *
 *   ssmlm's own format ("format": "ssmlm"): every field of ssmlm_config under a fixed key,
 *   grouped into "mamba1", "mamba2", "ssm_init", "attention" and "mlp" objects.  Missing keys
 *   keep their defaults; unknown keys are rejected (naming the nearest valid key).  The writer
 *   emits every field, with doubles printed so that they read back bit for bit.
 *
 *   mamba_ssm's config.json (MambaConfig: d_model, d_intermediate, n_layer, vocab_size, ssm_cfg,
 *   attn_layer_idx, attn_cfg, ...): block i becomes one layer, 'M' or '*' when i is in
 *   attn_layer_idx, followed by an MLP layer '+' (GatedMLP) when d_intermediate > 0.  Unknown
 *   keys are ignored; settings this code cannot honour are rejected.
 *
 * After parsing, the "auto" sizes are resolved (n_layer, attention head_dim, MLP hidden size,
 * Mamba-1 dt_rank) and the config is validated. */
#include "base/base.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#define FORMAT_VERSION 1
/* Integers below 2^53 are exact in a JSON number (a double) and cannot be confused with a
 * neighbour rounded to the same double. */
#define JSON_INT_LIMIT 9007199254740992.0

/* ---- field table of the ssmlm format ------------------------------------------------------ */

typedef enum {
    T_INT,      /* int64_t, non-negative */
    T_REAL,     /* double, finite */
    T_BOOL,     /* int 0/1 as false/true */
    T_ENUM,     /* int, written as one of the names */
    T_FORMAT,   /* "format": "ssmlm" */
    T_VERSION,  /* "version": FORMAT_VERSION */
    T_NAME,     /* name[64] */
    T_PATTERN,  /* pattern[], '-' read as '+' */
    T_NLAYER,   /* optional on input: must equal the pattern's length */
    T_SEED,     /* uint64: a number, or a string of digits when above 2^53 */
    T_RATIOS,   /* input only: {"layers", "attention", "mlp"} instead of "pattern" */
    T_PERCENT   /* input only: attention.rotary_percent instead of rotary_dim */
} field_type;

typedef struct enum_name { const char *name; int value; } enum_name;

static const enum_name k_ssm_names[] = {{"mamba1", SSMLM_SSM_MAMBA1}, {"mamba2", SSMLM_SSM_MAMBA2}, {NULL, 0}};
static const enum_name k_norm_names[] = {{"rmsnorm", SSMLM_NORM_RMS}, {"layernorm", SSMLM_NORM_LAYER}, {NULL, 0}};
static const enum_name k_act_names[] = {{"gelu", SSMLM_ACT_GELU}, {"relu2", SSMLM_ACT_RELU2},
                                        {"swiglu", SSMLM_ACT_SWIGLU}, {"gated_silu", SSMLM_ACT_GATED_SILU},
                                        {NULL, 0}};

typedef struct field {
    const char *section; /* NULL: top level */
    const char *key;
    field_type type;
    size_t off;
    const enum_name *names; /* T_ENUM */
    int auto_zero;          /* T_INT: "auto" (or 0) means derived from other fields */
} field;

#define FLD(sec, key, type, member) {sec, key, type, offsetof(ssmlm_config, member), NULL, 0}
#define FLD_AUTO(sec, key, member) {sec, key, T_INT, offsetof(ssmlm_config, member), NULL, 1}
#define FLD_ENUM(sec, key, member, names) {sec, key, T_ENUM, offsetof(ssmlm_config, member), names, 0}
#define FLD_SPECIAL(sec, key, type) {sec, key, type, 0, NULL, 0}

/* Output order is table order; a section's fields are contiguous. */
static const field k_fields[] = {
    FLD_SPECIAL(NULL, "format", T_FORMAT),
    FLD_SPECIAL(NULL, "version", T_VERSION),
    FLD_SPECIAL(NULL, "name", T_NAME),
    FLD(NULL, "d_model", T_INT, d_model),
    FLD_SPECIAL(NULL, "n_layer", T_NLAYER),
    FLD_SPECIAL(NULL, "pattern", T_PATTERN),
    FLD_SPECIAL(NULL, "pattern_ratios", T_RATIOS),
    FLD(NULL, "vocab_size", T_INT, vocab_size),
    FLD(NULL, "vocab_pad_multiple", T_INT, vocab_pad_multiple),
    FLD_ENUM(NULL, "ssm", ssm_kind, k_ssm_names),
    FLD(NULL, "tie_embeddings", T_BOOL, tie_embeddings),
    FLD_ENUM(NULL, "norm", norm_kind, k_norm_names),
    FLD(NULL, "norm_zero_centered", T_BOOL, norm_zero_centered),
    FLD(NULL, "norm_eps", T_REAL, norm_eps),
    FLD("mamba1", "d_state", T_INT, m1_d_state),
    FLD("mamba1", "d_conv", T_INT, m1_d_conv),
    FLD("mamba1", "expand", T_INT, m1_expand),
    FLD_AUTO("mamba1", "dt_rank", m1_dt_rank),
    FLD("mamba1", "conv_bias", T_BOOL, m1_conv_bias),
    FLD("mamba2", "d_state", T_INT, m2_d_state),
    FLD("mamba2", "d_conv", T_INT, m2_d_conv),
    FLD("mamba2", "expand", T_INT, m2_expand),
    FLD("mamba2", "headdim", T_INT, m2_headdim),
    FLD("mamba2", "ngroups", T_INT, m2_ngroups),
    FLD("mamba2", "chunk_size", T_INT, m2_chunk_size),
    FLD("mamba2", "conv_bias", T_BOOL, m2_conv_bias),
    FLD("ssm_init", "dt_min", T_REAL, dt_min),
    FLD("ssm_init", "dt_max", T_REAL, dt_max),
    FLD("ssm_init", "dt_init_floor", T_REAL, dt_init_floor),
    FLD("ssm_init", "a_init_min", T_REAL, a_init_min),
    FLD("ssm_init", "a_init_max", T_REAL, a_init_max),
    FLD("attention", "heads", T_INT, attn_heads),
    FLD("attention", "kv_heads", T_INT, attn_kv_heads),
    FLD_AUTO("attention", "head_dim", attn_head_dim),
    FLD("attention", "rotary_dim", T_INT, attn_rotary_dim),
    FLD_SPECIAL("attention", "rotary_percent", T_PERCENT),
    FLD("attention", "rope_base", T_REAL, attn_rope_base),
    FLD("attention", "softmax_scale", T_REAL, attn_softmax_scale),
    FLD("attention", "qkv_bias", T_BOOL, attn_qkv_bias),
    FLD("attention", "out_bias", T_BOOL, attn_out_bias),
    FLD("attention", "d_conv", T_INT, attn_d_conv),
    FLD_AUTO("mlp", "hidden", mlp_hidden),
    FLD_ENUM("mlp", "activation", mlp_act, k_act_names),
    FLD(NULL, "init_std", T_REAL, init_std),
    FLD_SPECIAL(NULL, "seed", T_SEED),
};
#define N_FIELDS ((int)(sizeof k_fields / sizeof k_fields[0]))

static const char *const k_sections[] = {"mamba1", "mamba2", "ssm_init", "attention", "mlp", NULL};
static const char *const k_ratio_keys[] = {"layers", "attention", "mlp", NULL};

static int same(const char *a, const char *b) {
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* ---- error helpers -------------------------------------------------------------------------- */

static ssmlm_status fail_at(ssmlm_status st, const char *where, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ssmlm_status fail_at(ssmlm_status st, const char *where, const char *hint, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ssmlm_fail(st, hint, "%s: %s", where, msg);
}

/* Short description of a JSON value for messages: 12, "abc", true, an array, ... */
static void describe(const cJSON *v, char *buf, size_t cap) {
    if (!v) snprintf(buf, cap, "nothing");
    else if (cJSON_IsNumber(v)) snprintf(buf, cap, "%.17g", v->valuedouble);
    else if (cJSON_IsString(v)) snprintf(buf, cap, "the string \"%.40s%s\"", v->valuestring, strlen(v->valuestring) > 40 ? "..." : "");
    else if (cJSON_IsTrue(v)) snprintf(buf, cap, "true");
    else if (cJSON_IsFalse(v)) snprintf(buf, cap, "false");
    else if (cJSON_IsNull(v)) snprintf(buf, cap, "null");
    else if (cJSON_IsArray(v)) snprintf(buf, cap, "an array");
    else if (cJSON_IsObject(v)) snprintf(buf, cap, "an object");
    else snprintf(buf, cap, "an unreadable value");
}

static ssmlm_status fail_type(const char *where, const char *key, const char *want, const cJSON *v) {
    char got[96], hint[160];
    describe(v, got, sizeof got);
    snprintf(hint, sizeof hint, "give %s as %s (JSON numbers and true/false are written without quotes)", key, want);
    return fail_at(SSMLM_ERR_FORMAT, where, hint, "%s must be %s, got %s", key, want, got);
}

/* Levenshtein distance of two short strings (capped at 63 chars each). */
static int edit_distance(const char *a, const char *b) {
    int n = (int)strnlen(a, 63), m = (int)strnlen(b, 63);
    int row[64];
    for (int j = 0; j <= m; j++) row[j] = j;
    for (int i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= m; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

static void nearest_of(const char *key, const char *cand, const char **best, int *best_d) {
    int d = edit_distance(key, cand);
    if (d < *best_d) {
        *best_d = d;
        *best = cand;
    }
}

/* Unknown key `key` inside `section` (NULL: top level) of the ssmlm format. */
static ssmlm_status fail_unknown(const char *where, const char *section, const char *key) {
    const char *best = NULL;
    int best_d = 1 << 30;
    if (section && strcmp(section, "pattern_ratios") == 0) {
        for (int i = 0; k_ratio_keys[i]; i++) nearest_of(key, k_ratio_keys[i], &best, &best_d);
    } else {
        for (int i = 0; i < N_FIELDS; i++)
            if (same(k_fields[i].section, section)) nearest_of(key, k_fields[i].key, &best, &best_d);
        if (!section)
            for (int i = 0; k_sections[i]; i++) nearest_of(key, k_sections[i], &best, &best_d);
    }
    char hint[160];
    snprintf(hint, sizeof hint, "did you mean \"%s\"?", best ? best : "");
    return fail_at(SSMLM_ERR_FORMAT, where, hint, "unknown key \"%s%s%.64s\" (the nearest valid key is \"%s%s%s\")",
                   section ? section : "", section ? "." : "", key, section ? section : "",
                   section ? "." : "", best ? best : "");
}

/* Rejects an object that holds the same key twice (cJSON keeps both). */
static ssmlm_status check_duplicates(const cJSON *obj, const char *where, const char *path) {
    for (const cJSON *a = obj->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0)
                return fail_at(SSMLM_ERR_FORMAT, where, "keep one of them", "key \"%s%s%.64s\" appears twice",
                               path ? path : "", path ? "." : "", a->string);
    return SSMLM_OK;
}

/* ---- typed readers (key: the full dotted name, for messages) -------------------------------- */

static ssmlm_status read_int(const cJSON *v, const char *where, const char *key, int64_t *out) {
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble >= JSON_INT_LIMIT || v->valuedouble != floor(v->valuedouble))
        return fail_type(where, key, "a non-negative integer", v);
    *out = (int64_t)v->valuedouble;
    return SSMLM_OK;
}

static ssmlm_status read_real(const cJSON *v, const char *where, const char *key, double *out) {
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return fail_type(where, key, "a finite number", v);
    *out = v->valuedouble;
    return SSMLM_OK;
}

static ssmlm_status read_bool(const cJSON *v, const char *where, const char *key, int *out) {
    if (!cJSON_IsBool(v)) return fail_type(where, key, "true or false", v);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return SSMLM_OK;
}

static ssmlm_status read_enum(const cJSON *v, const char *where, const char *key, const enum_name *names, int *out) {
    char want[160] = "one of";
    for (int i = 0; names[i].name; i++) {
        if (cJSON_IsString(v) && strcmp(v->valuestring, names[i].name) == 0) {
            *out = names[i].value;
            return SSMLM_OK;
        }
        size_t n = strlen(want);
        snprintf(want + n, sizeof want - n, "%s \"%s\"", i ? "," : "", names[i].name);
    }
    return fail_type(where, key, want, v);
}

/* uint64 seed: an exact integer number, or a string of decimal digits. */
static ssmlm_status read_seed(const cJSON *v, const char *where, uint64_t *out) {
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0 &&
        v->valuedouble < JSON_INT_LIMIT && v->valuedouble == floor(v->valuedouble)) {
        *out = (uint64_t)v->valuedouble;
        return SSMLM_OK;
    }
    if (cJSON_IsString(v) && v->valuestring[0]) {
        uint64_t x = 0;
        const char *p = v->valuestring;
        for (; *p >= '0' && *p <= '9'; p++) {
            uint64_t d = (uint64_t)(*p - '0');
            if (x > (UINT64_MAX - d) / 10) break;
            x = x * 10 + d;
        }
        if (*p == 0) {
            *out = x;
            return SSMLM_OK;
        }
    }
    return fail_type(where, "seed", "an integer in 0..2^64-1 (a string of digits from 2^53 on)", v);
}

/* ---- derived defaults ------------------------------------------------------------------------ */

/* Resolves the sizes that 0 ("auto") leaves to other fields. */

/* ---- ssmlm format ------------------------------------------------------------------------------ */

typedef struct ssmlm_extras {
    int have_pattern, have_ratios, have_nlayer, have_percent;
    int64_t n_layer, ratio_layers;
    double ratio_attn, ratio_mlp, rotary_percent;
} ssmlm_extras;

static ssmlm_status parse_ratios(const cJSON *v, const char *where, ssmlm_extras *x) {
    if (!cJSON_IsObject(v)) return fail_type(where, "pattern_ratios", "an object {\"layers\", \"attention\", \"mlp\"}", v);
    ssmlm_status s = check_duplicates(v, where, "pattern_ratios");
    if (s != SSMLM_OK) return s;
    int have_layers = 0;
    x->ratio_attn = 0;
    x->ratio_mlp = 0;
    for (const cJSON *it = v->child; it; it = it->next) {
        if (strcmp(it->string, "layers") == 0) {
            s = read_int(it, where, "pattern_ratios.layers", &x->ratio_layers);
            have_layers = 1;
        } else if (strcmp(it->string, "attention") == 0) {
            s = read_real(it, where, "pattern_ratios.attention", &x->ratio_attn);
        } else if (strcmp(it->string, "mlp") == 0) {
            s = read_real(it, where, "pattern_ratios.mlp", &x->ratio_mlp);
        } else {
            s = fail_unknown(where, "pattern_ratios", it->string);
        }
        if (s != SSMLM_OK) return s;
    }
    if (!have_layers)
        return fail_at(SSMLM_ERR_FORMAT, where, "e.g. {\"layers\": 56, \"attention\": 0.08, \"mlp\": 0.5}",
                       "pattern_ratios needs \"layers\"");
    x->have_ratios = 1;
    return SSMLM_OK;
}

/* The value v of field f (a key of the ssmlm format) into c, or into x for the keys that
 * need the whole config first. */
static ssmlm_status parse_field(const field *f, const cJSON *v, const char *where, ssmlm_config *c,
                                ssmlm_extras *x) {
    char key[96];
    snprintf(key, sizeof key, "%s%s%s", f->section ? f->section : "", f->section ? "." : "", f->key);
    char *base = (char *)c + f->off;
    ssmlm_status s = SSMLM_OK;
    switch (f->type) {
    case T_INT:
        if (f->auto_zero && cJSON_IsString(v) && strcmp(v->valuestring, "auto") == 0) {
            *(int64_t *)(void *)base = 0;
            return SSMLM_OK;
        }
        return read_int(v, where, key, (int64_t *)(void *)base);
    case T_REAL: return read_real(v, where, key, (double *)(void *)base);
    case T_BOOL: return read_bool(v, where, key, (int *)(void *)base);
    case T_ENUM: return read_enum(v, where, key, f->names, (int *)(void *)base);
    case T_FORMAT:
        if (!cJSON_IsString(v) || strcmp(v->valuestring, "ssmlm") != 0) return fail_type(where, key, "\"ssmlm\"", v);
        return SSMLM_OK;
    case T_VERSION: {
        int64_t ver = 0;
        if ((s = read_int(v, where, key, &ver)) != SSMLM_OK) return s;
        if (ver != FORMAT_VERSION)
            return fail_at(SSMLM_ERR_UNSUPPORTED, where, "use a newer ssmlm or re-save the config",
                           "config format version %lld is not supported (this build reads version %d)",
                           (long long)ver, FORMAT_VERSION);
        return SSMLM_OK;
    }
    case T_NAME:
        if (!cJSON_IsString(v)) return fail_type(where, key, "a string", v);
        if (strlen(v->valuestring) >= sizeof c->name)
            return fail_at(SSMLM_ERR_FORMAT, where, "shorten the name", "name is %zu bytes long; at most %zu are allowed",
                           strlen(v->valuestring), sizeof c->name - 1);
        memset(c->name, 0, sizeof c->name);
        memcpy(c->name, v->valuestring, strlen(v->valuestring));
        return SSMLM_OK;
    case T_PATTERN: {
        if (!cJSON_IsString(v)) return fail_type(where, key, "a string of M, *, + (or -)", v);
        size_t n = strlen(v->valuestring);
        if (n > SSMLM_MAX_LAYERS)
            return fail_at(SSMLM_ERR_FORMAT, where, "use fewer layers", "pattern has %zu layers; at most %d are allowed",
                           n, SSMLM_MAX_LAYERS);
        memset(c->pattern, 0, sizeof c->pattern);
        for (size_t i = 0; i < n; i++) c->pattern[i] = v->valuestring[i] == '-' ? '+' : v->valuestring[i];
        x->have_pattern = 1;
        return SSMLM_OK;
    }
    case T_NLAYER:
        x->have_nlayer = 1;
        return read_int(v, where, key, &x->n_layer);
    case T_SEED: return read_seed(v, where, &c->seed);
    case T_RATIOS: return parse_ratios(v, where, x);
    case T_PERCENT:
        if ((s = read_real(v, where, key, &x->rotary_percent)) != SSMLM_OK) return s;
        if (x->rotary_percent < 0 || x->rotary_percent > 1)
            return fail_type(where, key, "a number in [0, 1]", v);
        x->have_percent = 1;
        return SSMLM_OK;
    }
    return s;
}

/* The members of one object: top level (sec NULL) or one of k_sections. */
static ssmlm_status parse_object(const cJSON *obj, const char *sec, const char *where, ssmlm_config *c,
                                 ssmlm_extras *x) {
    ssmlm_status s = check_duplicates(obj, where, sec);
    if (s != SSMLM_OK) return s;
    for (const cJSON *it = obj->child; it; it = it->next) {
        const field *f = NULL;
        for (int i = 0; i < N_FIELDS && !f; i++)
            if (same(k_fields[i].section, sec) && strcmp(k_fields[i].key, it->string) == 0) f = &k_fields[i];
        if (f) {
            s = parse_field(f, it, where, c, x);
        } else if (!sec) {
            const char *sub = NULL;
            for (int i = 0; k_sections[i] && !sub; i++)
                if (strcmp(k_sections[i], it->string) == 0) sub = k_sections[i];
            if (!sub) return fail_unknown(where, NULL, it->string);
            if (!cJSON_IsObject(it)) return fail_type(where, sub, "an object", it);
            s = parse_object(it, sub, where, c, x);
        } else {
            return fail_unknown(where, sec, it->string);
        }
        if (s != SSMLM_OK) return s;
    }
    return SSMLM_OK;
}

static ssmlm_status parse_ssmlm(const cJSON *root, const char *where, ssmlm_config *c) {
    ssmlm_extras x = {0};
    ssmlm_status s = parse_object(root, NULL, where, c, &x);
    if (s != SSMLM_OK) return s;
    if (x.have_pattern && x.have_ratios)
        return fail_at(SSMLM_ERR_FORMAT, where, "remove one of them", "both \"pattern\" and \"pattern_ratios\" are given");
    if (x.have_ratios) {
        memset(c->pattern, 0, sizeof c->pattern);
        s = ssmlm_pattern_allocate(x.ratio_layers, x.ratio_attn, x.ratio_mlp, c->pattern);
        if (s != SSMLM_OK) {
            ssmlm_error_context("%s: pattern_ratios", where);
            return s;
        }
    }
    size_t n = strnlen(c->pattern, sizeof c->pattern);
    if (x.have_nlayer && x.n_layer != (int64_t)n) {
        char hint[64];
        snprintf(hint, sizeof hint, "try %zu, or drop n_layer", n);
        return fail_at(SSMLM_ERR_FORMAT, where, hint, "n_layer is %lld but the pattern has %zu layers",
                       (long long)x.n_layer, n);
    }
    if (x.have_percent) {
        const cJSON *att = cJSON_GetObjectItemCaseSensitive(root, "attention");
        if (cJSON_GetObjectItemCaseSensitive(att, "rotary_dim"))
            return fail_at(SSMLM_ERR_FORMAT, where, "remove one of them",
                           "both attention.rotary_dim and attention.rotary_percent are given");
    }
    ssmlm_config_resolve(c);
    if (x.have_percent) {
        /* Megatron: rotary dims = int(head_dim * rotary_percent) */
        c->attn_rotary_dim = (int64_t)((double)c->attn_head_dim * x.rotary_percent);
        if (c->attn_rotary_dim % 2) {
            char hint[96];
            snprintf(hint, sizeof hint, "try rotary_dim %lld", (long long)(c->attn_rotary_dim - 1));
            return fail_at(SSMLM_ERR_INVALID, where, hint,
                           "attention.rotary_percent %g of head_dim %lld gives rotary_dim %lld, which is odd",
                           x.rotary_percent, (long long)c->attn_head_dim, (long long)c->attn_rotary_dim);
        }
    }
    return SSMLM_OK;
}

/* ---- mamba_ssm format ----------------------------------------------------------------------- */

/* Optional member readers: keep *out when the key is absent.  member() finds the key and
 * spells its path ("ssm_cfg.d_state") for messages. */
static const cJSON *member(const cJSON *obj, const char *key, const char *path, char full[96]) {
    snprintf(full, 96, "%s%s%s", path ? path : "", path ? "." : "", key);
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static ssmlm_status opt_int(const cJSON *obj, const char *key, const char *path, const char *where, int64_t *out) {
    char full[96];
    const cJSON *v = member(obj, key, path, full);
    return v ? read_int(v, where, full, out) : SSMLM_OK;
}

static ssmlm_status opt_real(const cJSON *obj, const char *key, const char *path, const char *where, double *out) {
    char full[96];
    const cJSON *v = member(obj, key, path, full);
    return v ? read_real(v, where, full, out) : SSMLM_OK;
}

static ssmlm_status opt_bool(const cJSON *obj, const char *key, const char *path, const char *where, int *out) {
    char full[96];
    const cJSON *v = member(obj, key, path, full);
    return v ? read_bool(v, where, full, out) : SSMLM_OK;
}

/* A mamba_ssm option this code cannot honour: present with a value other than `ok`. */
static ssmlm_status reject_bool(const cJSON *obj, const char *key, const char *path, const char *where, int ok) {
    int v = ok;
    ssmlm_status s = opt_bool(obj, key, path, where, &v);
    if (s != SSMLM_OK) return s;
    if (v != ok)
        return fail_at(SSMLM_ERR_UNSUPPORTED, where, NULL, "%s.%s = %s is not supported", path, key, v ? "true" : "false");
    return SSMLM_OK;
}

static ssmlm_status parse_ssm_cfg(const cJSON *ssm, const char *where, ssmlm_config *c) {
    const char *P = "ssm_cfg";
    ssmlm_status s;
    const cJSON *layer = cJSON_GetObjectItemCaseSensitive(ssm, "layer");
    c->ssm_kind = SSMLM_SSM_MAMBA1;
    if (layer) {
        if (!cJSON_IsString(layer)) return fail_type(where, "ssm_cfg.layer", "\"Mamba1\" or \"Mamba2\"", layer);
        if (strcmp(layer->valuestring, "Mamba2") == 0)
            c->ssm_kind = SSMLM_SSM_MAMBA2;
        else if (strcmp(layer->valuestring, "Mamba1") != 0)
            return fail_at(SSMLM_ERR_UNSUPPORTED, where, "supported layers: \"Mamba1\", \"Mamba2\"",
                           "ssm_cfg.layer \"%.40s\" is not supported", layer->valuestring);
    }
    if ((s = reject_bool(ssm, "bias", P, where, 0)) != SSMLM_OK) return s;
    if ((s = opt_real(ssm, "dt_min", P, where, &c->dt_min)) != SSMLM_OK) return s;
    if ((s = opt_real(ssm, "dt_max", P, where, &c->dt_max)) != SSMLM_OK) return s;
    if ((s = opt_real(ssm, "dt_init_floor", P, where, &c->dt_init_floor)) != SSMLM_OK) return s;
    if (c->ssm_kind == SSMLM_SSM_MAMBA1) {
        /* mamba_simple.Mamba defaults */
        c->m1_d_state = 16;
        c->m1_d_conv = 4;
        c->m1_expand = 2;
        c->m1_dt_rank = 0;
        c->m1_conv_bias = 1;
        if ((s = opt_int(ssm, "d_state", P, where, &c->m1_d_state)) != SSMLM_OK) return s;
        if ((s = opt_int(ssm, "d_conv", P, where, &c->m1_d_conv)) != SSMLM_OK) return s;
        if ((s = opt_int(ssm, "expand", P, where, &c->m1_expand)) != SSMLM_OK) return s;
        if ((s = opt_bool(ssm, "conv_bias", P, where, &c->m1_conv_bias)) != SSMLM_OK) return s;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(ssm, "dt_rank");
        if (r && !(cJSON_IsString(r) && strcmp(r->valuestring, "auto") == 0)) {
            if ((s = read_int(r, where, "ssm_cfg.dt_rank", &c->m1_dt_rank)) != SSMLM_OK) return s;
            if (c->m1_dt_rank == 0) return fail_type(where, "ssm_cfg.dt_rank", "\"auto\" or a positive integer", r);
        }
        return SSMLM_OK;
    }
    /* mamba2.Mamba2 defaults */
    c->m2_d_state = 128;
    c->m2_d_conv = 4;
    c->m2_expand = 2;
    c->m2_headdim = 64;
    c->m2_ngroups = 1;
    c->m2_chunk_size = 256;
    c->m2_conv_bias = 1;
    c->a_init_min = 1;
    c->a_init_max = 16;
    if ((s = opt_int(ssm, "d_state", P, where, &c->m2_d_state)) != SSMLM_OK) return s;
    if ((s = opt_int(ssm, "d_conv", P, where, &c->m2_d_conv)) != SSMLM_OK) return s;
    if ((s = opt_int(ssm, "expand", P, where, &c->m2_expand)) != SSMLM_OK) return s;
    if ((s = opt_int(ssm, "headdim", P, where, &c->m2_headdim)) != SSMLM_OK) return s;
    if ((s = opt_int(ssm, "ngroups", P, where, &c->m2_ngroups)) != SSMLM_OK) return s;
    if ((s = opt_int(ssm, "chunk_size", P, where, &c->m2_chunk_size)) != SSMLM_OK) return s;
    if ((s = opt_bool(ssm, "conv_bias", P, where, &c->m2_conv_bias)) != SSMLM_OK) return s;
    if ((s = reject_bool(ssm, "rmsnorm", P, where, 1)) != SSMLM_OK) return s;
    if ((s = reject_bool(ssm, "norm_before_gate", P, where, 0)) != SSMLM_OK) return s;
    if ((s = reject_bool(ssm, "D_has_hdim", P, where, 0)) != SSMLM_OK) return s;
    if ((s = reject_bool(ssm, "learnable_init_states", P, where, 0)) != SSMLM_OK) return s;
    const cJSON *range = cJSON_GetObjectItemCaseSensitive(ssm, "A_init_range");
    if (range) {
        if (!cJSON_IsArray(range) || cJSON_GetArraySize(range) != 2)
            return fail_type(where, "ssm_cfg.A_init_range", "an array of 2 numbers", range);
        if ((s = read_real(range->child, where, "ssm_cfg.A_init_range[0]", &c->a_init_min)) != SSMLM_OK) return s;
        if ((s = read_real(range->child->next, where, "ssm_cfg.A_init_range[1]", &c->a_init_max)) != SSMLM_OK) return s;
    }
    const cJSON *d_ssm = cJSON_GetObjectItemCaseSensitive(ssm, "d_ssm");
    if (d_ssm && !cJSON_IsNull(d_ssm)) {
        int64_t v = 0;
        if ((s = read_int(d_ssm, where, "ssm_cfg.d_ssm", &v)) != SSMLM_OK) return s;
        if (v != c->m2_expand * c->d_model)
            return fail_at(SSMLM_ERR_UNSUPPORTED, where, "remove d_ssm (the SSM must span all of d_inner)",
                           "ssm_cfg.d_ssm %lld differs from d_inner %lld; a partial SSM is not supported",
                           (long long)v, (long long)(c->m2_expand * c->d_model));
    }
    return SSMLM_OK;
}

static ssmlm_status parse_attn_cfg(const cJSON *att, int required, const char *where, ssmlm_config *c) {
    const char *P = "attn_cfg";
    ssmlm_status s;
    const cJSON *nh = cJSON_GetObjectItemCaseSensitive(att, "num_heads");
    if (!nh && required)
        return fail_at(SSMLM_ERR_FORMAT, where, "add e.g. \"attn_cfg\": {\"num_heads\": 8, \"causal\": true}",
                       "attn_layer_idx names attention layers but attn_cfg.num_heads is missing");
    /* modules/mha.MHA defaults */
    c->attn_qkv_bias = 1;
    c->attn_out_bias = 1;
    c->attn_rotary_dim = 0;
    c->attn_rope_base = 10000;
    c->attn_softmax_scale = 0;
    c->attn_d_conv = 0;
    c->attn_head_dim = 0;
    if ((s = opt_int(att, "num_heads", P, where, &c->attn_heads)) != SSMLM_OK) return s;
    c->attn_kv_heads = c->attn_heads;
    if ((s = opt_int(att, "num_heads_kv", P, where, &c->attn_kv_heads)) != SSMLM_OK) return s;
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(att, "head_dim");
    if (hd && !cJSON_IsNull(hd) && (s = read_int(hd, where, "attn_cfg.head_dim", &c->attn_head_dim)) != SSMLM_OK) return s;
    if ((s = opt_int(att, "rotary_emb_dim", P, where, &c->attn_rotary_dim)) != SSMLM_OK) return s;
    if ((s = opt_real(att, "rotary_emb_base", P, where, &c->attn_rope_base)) != SSMLM_OK) return s;
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(att, "softmax_scale");
    if (sc && !cJSON_IsNull(sc) && (s = read_real(sc, where, "attn_cfg.softmax_scale", &c->attn_softmax_scale)) != SSMLM_OK) return s;
    if ((s = opt_bool(att, "qkv_proj_bias", P, where, &c->attn_qkv_bias)) != SSMLM_OK) return s;
    if ((s = opt_bool(att, "out_proj_bias", P, where, &c->attn_out_bias)) != SSMLM_OK) return s;
    if ((s = opt_int(att, "d_conv", P, where, &c->attn_d_conv)) != SSMLM_OK) return s;
    if ((s = reject_bool(att, "rotary_emb_interleaved", P, where, 0)) != SSMLM_OK) return s;
    /* MHA defaults to causal=False; a language model needs causal attention */
    if ((s = reject_bool(att, "causal", P, where, 1)) != SSMLM_OK) return s;
    int64_t mlp_dim = 0;
    if ((s = opt_int(att, "mlp_dim", P, where, &mlp_dim)) != SSMLM_OK) return s;
    if (mlp_dim != 0)
        return fail_at(SSMLM_ERR_UNSUPPORTED, where, "use d_intermediate for an MLP instead",
                       "attn_cfg.mlp_dim %lld (an MLP fused into attention) is not supported", (long long)mlp_dim);
    return SSMLM_OK;
}

static ssmlm_status parse_mamba_ssm(const cJSON *root, const char *where, ssmlm_config *c) {
    ssmlm_status s;
    snprintf(c->name, sizeof c->name, "mamba_ssm");
    static const char *const required[] = {"d_model", "n_layer", "vocab_size", NULL};
    for (int i = 0; required[i]; i++)
        if (!cJSON_GetObjectItemCaseSensitive(root, required[i]))
            return fail_at(SSMLM_ERR_FORMAT, where, "a mamba_ssm config.json names d_model, n_layer and vocab_size",
                           "missing key \"%s\"", required[i]);
    if ((s = check_duplicates(root, where, NULL)) != SSMLM_OK) return s;
    int64_t n_block = 0, d_int = 0;
    if ((s = opt_int(root, "d_model", NULL, where, &c->d_model)) != SSMLM_OK) return s;
    if ((s = opt_int(root, "n_layer", NULL, where, &n_block)) != SSMLM_OK) return s;
    if ((s = opt_int(root, "vocab_size", NULL, where, &c->vocab_size)) != SSMLM_OK) return s;
    if ((s = opt_int(root, "d_intermediate", NULL, where, &d_int)) != SSMLM_OK) return s;
    c->vocab_pad_multiple = 8;
    if ((s = opt_int(root, "pad_vocab_size_multiple", NULL, where, &c->vocab_pad_multiple)) != SSMLM_OK) return s;
    c->tie_embeddings = 1;
    if ((s = opt_bool(root, "tie_embeddings", NULL, where, &c->tie_embeddings)) != SSMLM_OK) return s;
    int rms = 1, ignored = 0;
    if ((s = opt_bool(root, "rms_norm", NULL, where, &rms)) != SSMLM_OK) return s;
    c->norm_kind = rms ? SSMLM_NORM_RMS : SSMLM_NORM_LAYER;
    c->norm_zero_centered = 0;
    c->norm_eps = 1e-5;
    /* numerics-only switches: same math either way */
    if ((s = opt_bool(root, "residual_in_fp32", NULL, where, &ignored)) != SSMLM_OK) return s;
    if ((s = opt_bool(root, "fused_add_norm", NULL, where, &ignored)) != SSMLM_OK) return s;

    const cJSON *ssm = cJSON_GetObjectItemCaseSensitive(root, "ssm_cfg");
    if (ssm && !cJSON_IsNull(ssm) && !cJSON_IsObject(ssm)) return fail_type(where, "ssm_cfg", "an object", ssm);
    if (ssm && cJSON_IsObject(ssm) && (s = check_duplicates(ssm, where, "ssm_cfg")) != SSMLM_OK) return s;
    if ((s = parse_ssm_cfg(cJSON_IsObject(ssm) ? ssm : NULL, where, c)) != SSMLM_OK) return s;

    int per_block = d_int > 0 ? 2 : 1;
    if (n_block < 1 || n_block > SSMLM_MAX_LAYERS / per_block) {
        char hint[64];
        snprintf(hint, sizeof hint, "try n_layer in 1..%d", SSMLM_MAX_LAYERS / per_block);
        return fail_at(SSMLM_ERR_INVALID, where, hint, "n_layer %lld gives %lld layers; 1..%d are supported",
                       (long long)n_block, (long long)(n_block * per_block), SSMLM_MAX_LAYERS);
    }
    char is_attn[SSMLM_MAX_LAYERS] = {0};
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(root, "attn_layer_idx");
    int n_attn = 0;
    if (idx && !cJSON_IsNull(idx)) {
        if (!cJSON_IsArray(idx)) return fail_type(where, "attn_layer_idx", "an array of layer indices", idx);
        int k = 0;
        for (const cJSON *e = idx->child; e; e = e->next, k++) {
            int64_t i = 0;
            char key[48];
            snprintf(key, sizeof key, "attn_layer_idx[%d]", k);
            if ((s = read_int(e, where, key, &i)) != SSMLM_OK) return s;
            if (i >= n_block)
                return fail_at(SSMLM_ERR_INVALID, where, NULL, "%s is %lld; layers are 0..%lld (n_layer %lld)", key,
                               (long long)i, (long long)(n_block - 1), (long long)n_block);
            n_attn += !is_attn[i];
            is_attn[i] = 1;
        }
    }
    const cJSON *att = cJSON_GetObjectItemCaseSensitive(root, "attn_cfg");
    if (att && !cJSON_IsNull(att) && !cJSON_IsObject(att)) return fail_type(where, "attn_cfg", "an object", att);
    if (att && cJSON_IsObject(att) && (s = check_duplicates(att, where, "attn_cfg")) != SSMLM_OK) return s;
    if ((att && cJSON_IsObject(att)) || n_attn > 0)
        if ((s = parse_attn_cfg(cJSON_IsObject(att) ? att : NULL, n_attn > 0, where, c)) != SSMLM_OK) return s;

    memset(c->pattern, 0, sizeof c->pattern);
    for (int64_t i = 0, p = 0; i < n_block; i++) {
        c->pattern[p++] = is_attn[i] ? '*' : 'M';
        if (d_int > 0) c->pattern[p++] = '+';
    }
    if (d_int > 0) {
        /* GatedMLP: hidden rounded up to a multiple of 128, value * silu(gate) */
        c->mlp_act = SSMLM_ACT_GATED_SILU;
        c->mlp_hidden = (d_int + 127) / 128 * 128;
    }
    c->init_std = 0.02;
    ssmlm_config_resolve(c);
    return SSMLM_OK;
}

/* ---- entry points ------------------------------------------------------------------------------ */

static int has_any(const cJSON *root, const char *const *keys) {
    for (int i = 0; keys[i]; i++)
        if (cJSON_GetObjectItemCaseSensitive(root, keys[i])) return 1;
    return 0;
}

ssmlm_status ssmlm_config_parse_json(ssmlm_config *out, const char *text, const char *where) {
    if (!where) where = "config";
    if (!out || !text) return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "%s: no config or no text given", where);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        size_t pos = end && end >= text ? (size_t)(end - text) : 0;
        size_t line = 1, col = 1;
        for (size_t i = 0; i < pos && text[i]; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        return fail_at(SSMLM_ERR_FORMAT, where, "check the JSON syntax near that position (commas, quotes, brackets)",
                       "malformed JSON at line %zu, column %zu (byte %zu)", line, col, pos);
    }
    ssmlm_status s;
    ssmlm_config c;
    ssmlm_config_defaults(&c);
    static const char *const ssmlm_keys[] = {"format", "version", "name", "pattern", "pattern_ratios", "ssm",
                                             "mamba1", "mamba2", "ssm_init", "attention", "mlp", "norm",
                                             "norm_eps", "norm_zero_centered", "vocab_pad_multiple",
                                             "init_std", "seed", NULL};
    static const char *const mamba_ssm_keys[] = {"ssm_cfg", "d_intermediate", "n_layer", "attn_layer_idx",
                                                 "attn_cfg", "rms_norm", "residual_in_fp32", "fused_add_norm",
                                                 "pad_vocab_size_multiple", NULL};
    static const char *const hf_keys[] = {"model_type", "hidden_size", "num_hidden_layers", NULL};
    if (!cJSON_IsObject(root)) {
        s = fail_type(where, "the top level", "a JSON object", root);
    } else if (!has_any(root, ssmlm_keys) && !cJSON_GetObjectItemCaseSensitive(root, "d_model") &&
               has_any(root, hf_keys)) {
        s = fail_at(SSMLM_ERR_UNSUPPORTED, where, "convert it to mamba_ssm's config.json (d_model, n_layer, ...)",
                    "this looks like a Hugging Face transformers config, which is not supported");
    } else if (has_any(root, ssmlm_keys) || !has_any(root, mamba_ssm_keys)) {
        s = parse_ssmlm(root, where, &c);
    } else {
        s = parse_mamba_ssm(root, where, &c);
    }
    cJSON_Delete(root);
    if (s != SSMLM_OK) return s;
    s = ssmlm_config_validate(&c);
    if (s != SSMLM_OK) {
        ssmlm_error_context("%s", where);
        return s;
    }
    *out = c;
    return SSMLM_OK;
}

ssmlm_status ssmlm_config_load_json(ssmlm_config *c, const char *path) {
    char *text = NULL;
    size_t n = 0;
    ssmlm_status s = ssmlm_file_read(path, &text, &n);
    if (s != SSMLM_OK) return s;
    if (strlen(text) != n) {
        size_t at = strlen(text);
        free(text);
        return fail_at(SSMLM_ERR_FORMAT, path, "the file is not a text JSON file", "contains a NUL byte at offset %zu", at);
    }
    s = ssmlm_config_parse_json(c, text, path);
    free(text);
    return s;
}

/* ---- writer ------------------------------------------------------------------------------------ */

static void emit_field(ssmlm_text *b, const field *f, const ssmlm_config *c) {
    const char *base = (const char *)c + f->off;
    switch (f->type) {
    case T_INT: ssmlm_text_printf(b, "%lld", (long long)*(const int64_t *)(const void *)base); break;
    case T_REAL: ssmlm_json_number(b, *(const double *)(const void *)base); break;
    case T_BOOL: ssmlm_text_printf(b, "%s", *(const int *)(const void *)base ? "true" : "false"); break;
    case T_ENUM: {
        int v = *(const int *)(const void *)base;
        const char *name = NULL;
        for (int i = 0; f->names[i].name; i++)
            if (f->names[i].value == v) name = f->names[i].name;
        if (name) ssmlm_json_string(b, name, 0);
        else ssmlm_text_printf(b, "null");
        break;
    }
    case T_FORMAT: ssmlm_json_string(b, "ssmlm", 0); break;
    case T_VERSION: ssmlm_text_printf(b, "%d", FORMAT_VERSION); break;
    case T_NAME: {
        char name[sizeof c->name];
        memcpy(name, c->name, sizeof name);
        name[sizeof name - 1] = 0;
        ssmlm_json_string(b, name, 0);
        break;
    }
    case T_PATTERN: {
        char pat[sizeof c->pattern];
        memcpy(pat, c->pattern, sizeof pat);
        pat[sizeof pat - 1] = 0;
        ssmlm_json_string(b, pat, 0);
        break;
    }
    case T_NLAYER: ssmlm_text_printf(b, "%lld", (long long)c->n_layer); break;
    case T_SEED:
        if (c->seed < ((uint64_t)1 << 53)) ssmlm_text_printf(b, "%llu", (unsigned long long)c->seed);
        else ssmlm_text_printf(b, "\"%llu\"", (unsigned long long)c->seed);
        break;
    case T_RATIOS:
    case T_PERCENT: break;
    }
}

char *ssmlm_config_to_json(const ssmlm_config *c) {
    ssmlm_text b = {0};
    const char *open = NULL; /* section being written */
    int first = 1;
    ssmlm_text_printf(&b, "{");
    for (int i = 0; i < N_FIELDS; i++) {
        const field *f = &k_fields[i];
        if (f->type == T_RATIOS || f->type == T_PERCENT) continue;
        if (!same(open, f->section)) {
            if (open) ssmlm_text_printf(&b, "\n  }");
            if (f->section) {
                ssmlm_text_printf(&b, ",\n  \"%s\": {", f->section);
                first = 1;
            }
            open = f->section;
        }
        const char *indent = f->section ? "    " : "  ";
        ssmlm_text_printf(&b, "%s\n%s\"%s\": ", first ? "" : ",", indent, f->key);
        first = 0;
        emit_field(&b, f, c);
    }
    if (open) ssmlm_text_printf(&b, "\n  }");
    ssmlm_text_printf(&b, "\n}\n");
    if (b.failed) {
        free(b.s);
        ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory writing a config as JSON");
        return NULL;
    }
    return b.s;
}

ssmlm_status ssmlm_config_save_json(const ssmlm_config *c, const char *path) {
    ssmlm_status s = ssmlm_config_validate(c);
    if (s != SSMLM_OK) {
        ssmlm_error_context("not saving %s", path);
        return s;
    }
    char *text = ssmlm_config_to_json(c);
    if (!text) return SSMLM_ERR_MEMORY;
    ssmlm_atomic_file af;
    s = ssmlm_atomic_open(&af, path);
    if (s == SSMLM_OK) {
        ssmlm_atomic_write(&af, text, strlen(text));
        s = ssmlm_atomic_close(&af, 1);
    }
    free(text);
    return s;
}

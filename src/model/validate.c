/* validate.c — checks a configuration before anything is sized from it.  Only the settings of
 * the layer kinds present in the pattern are checked (Mamba-2 fields only when the pattern has
 * 'M' and the SSM kind is Mamba-2, and so on).  Each failure names the field by its key in the
 * JSON config (e.g. "mamba2.headdim"), states the rule, and gives in the hint a valid value
 * computed from the config ("try 40 or 50"). */
#include "base/base.h"
#include "layers/layers.h"
#include <math.h>
#include <stdarg.h>
#include <string.h>

/* Upper bound of every size; any product of two sizes then fits comfortably in int64. */
#define DIM_LIMIT ((int64_t)1 << 24)

typedef struct checker {
    const ssmlm_config *c;
    ssmlm_config def; /* defaults, the source of "try" values for sizes that are not derived */
} checker;

static ssmlm_status invalid(const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static ssmlm_status invalid(const char *hint, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ssmlm_fail(SSMLM_ERR_INVALID, hint, "%s", msg);
}

/* Divisors d of n nearest to v from below (largest < v) and above (smallest > v), among those
 * whose quotient n/d is a multiple of q; 0 if none. */
static void nearest_divisors(int64_t n, int64_t v, int64_t q, int64_t *lo, int64_t *hi) {
    *lo = 0;
    *hi = 0;
    for (int64_t i = 1; i * i <= n; i++) {
        if (n % i) continue;
        int64_t pair[2] = {i, n / i};
        for (int k = 0; k < 2; k++) {
            int64_t d = pair[k];
            if ((n / d) % q) continue;
            if (d < v && d > *lo) *lo = d;
            if (d > v && (*hi == 0 || d < *hi)) *hi = d;
        }
    }
}

/* "try v" when v divides n (with n/v a multiple of q), else "try A or B" with the nearest such
 * divisors of n; q falls back to 1 when no divisor qualifies. */
static void divisor_hint_q(char *hint, size_t cap, int64_t n, int64_t v, int64_t q) {
    int64_t lo, hi;
    if (v >= 1 && n % v == 0 && (n / v) % q == 0) {
        snprintf(hint, cap, "try %lld", (long long)v);
        return;
    }
    nearest_divisors(n, v, q, &lo, &hi);
    if (!lo && !hi) nearest_divisors(n, v, 1, &lo, &hi);
    if (lo && hi)
        snprintf(hint, cap, "try %lld or %lld", (long long)lo, (long long)hi);
    else
        snprintf(hint, cap, "try %lld", (long long)(lo ? lo : hi));
}

static void divisor_hint(char *hint, size_t cap, int64_t n, int64_t v) { divisor_hint_q(hint, cap, n, v, 1); }

/* 1 <= v <= DIM_LIMIT; `suggest` is a valid value for the hint. */
static ssmlm_status check_size(const char *key, int64_t v, int64_t suggest) {
    char hint[96];
    if (v < 1) {
        snprintf(hint, sizeof hint, "try %lld", (long long)suggest);
        return invalid(hint, "%s is %lld; it must be a positive integer", key, (long long)v);
    }
    if (v > DIM_LIMIT) {
        snprintf(hint, sizeof hint, "try %lld", (long long)(suggest <= DIM_LIMIT ? suggest : DIM_LIMIT));
        return invalid(hint, "%s is %lld; it must be at most %lld", key, (long long)v,
                       (long long)DIM_LIMIT);
    }
    return SSMLM_OK;
}

/* A derived size (a product of fields) must also stay within DIM_LIMIT. */
static ssmlm_status check_derived(const char *what, int64_t v, const char *key, int64_t suggest) {
    if (v <= DIM_LIMIT) return SSMLM_OK;
    char hint[96];
    snprintf(hint, sizeof hint, "try %s %lld", key, (long long)suggest);
    return invalid(hint, "%s is %lld; it must be at most %lld", what, (long long)v,
                   (long long)DIM_LIMIT);
}

static ssmlm_status check_bool(const char *key, int v) {
    if (v == 0 || v == 1) return SSMLM_OK;
    return invalid("try 0 (false) or 1 (true)", "%s is %d; it must be 0 (false) or 1 (true)", key, v);
}

/* Finite and > 0. */
static ssmlm_status check_positive(const char *key, double v, double suggest) {
    if (isfinite(v) && v > 0) return SSMLM_OK;
    char hint[64];
    snprintf(hint, sizeof hint, "try %g", suggest);
    return invalid(hint, "%s is %g; it must be a finite number > 0", key, v);
}

static ssmlm_status check_global(const checker *k) {
    const ssmlm_config *c = k->c;
    char hint[128];
    ssmlm_status s;
    if (!memchr(c->name, 0, sizeof c->name))
        return invalid("try a name of at most 63 bytes", "name is not a string of at most %zu bytes",
                       sizeof c->name - 1);
    size_t n = strnlen(c->pattern, sizeof c->pattern);
    if (n == sizeof c->pattern)
        return invalid("try a pattern of at most 1024 layers",
                       "pattern is not a string of at most %d layers", SSMLM_MAX_LAYERS);
    if (n == 0)
        return invalid("try \"MMMM\" (M Mamba, * attention, + MLP)", "pattern is empty; it needs at least one layer");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)c->pattern[i];
        if (ch == 'M' || ch == '*' || ch == '+') continue;
        if (ch >= 0x20 && ch < 0x7f)
            return invalid("use M (Mamba), * (attention) or + (MLP; '-' in config files)",
                           "pattern has '%c' at position %zu; only M, * and + are allowed", ch, i);
        return invalid("use M (Mamba), * (attention) or + (MLP; '-' in config files)",
                       "pattern has byte 0x%02x at position %zu; only M, * and + are allowed", ch, i);
    }
    if (c->n_layer != (int64_t)n) {
        snprintf(hint, sizeof hint, "try %zu", n);
        return invalid(hint, "n_layer is %lld but the pattern \"%.40s%s\" has %zu layers",
                       (long long)c->n_layer, c->pattern, n > 40 ? "..." : "", n);
    }
    if ((s = check_size("d_model", c->d_model, k->def.d_model)) != SSMLM_OK) return s;
    if ((s = check_size("vocab_size", c->vocab_size, k->def.vocab_size)) != SSMLM_OK) return s;
    if ((s = check_size("vocab_pad_multiple", c->vocab_pad_multiple, k->def.vocab_pad_multiple)) != SSMLM_OK) return s;
    if (c->ssm_kind != SSMLM_SSM_MAMBA1 && c->ssm_kind != SSMLM_SSM_MAMBA2)
        return invalid("try \"mamba1\" (1) or \"mamba2\" (2)", "ssm is %d; it must be mamba1 (1) or mamba2 (2)", c->ssm_kind);
    if ((s = check_bool("tie_embeddings", c->tie_embeddings)) != SSMLM_OK) return s;
    if (c->norm_kind != SSMLM_NORM_RMS && c->norm_kind != SSMLM_NORM_LAYER)
        return invalid("try \"rmsnorm\" (0) or \"layernorm\" (1)", "norm is %d; it must be rmsnorm (0) or layernorm (1)", c->norm_kind);
    if ((s = check_bool("norm_zero_centered", c->norm_zero_centered)) != SSMLM_OK) return s;
    if ((s = check_positive("norm_eps", c->norm_eps, k->def.norm_eps)) != SSMLM_OK) return s;
    if ((s = check_positive("init_std", c->init_std, k->def.init_std)) != SSMLM_OK) return s;
    return SSMLM_OK;
}

/* dt range (both kinds) and, for Mamba-2, the A range. */
static ssmlm_status check_ssm_init(const checker *k, int a_range) {
    const ssmlm_config *c = k->c;
    char hint[96];
    ssmlm_status s;
    if ((s = check_positive("ssm_init.dt_min", c->dt_min, k->def.dt_min)) != SSMLM_OK) return s;
    if ((s = check_positive("ssm_init.dt_max", c->dt_max, c->dt_min > k->def.dt_max ? c->dt_min : k->def.dt_max)) != SSMLM_OK) return s;
    if (c->dt_min > c->dt_max) {
        snprintf(hint, sizeof hint, "try dt_max %g", c->dt_min);
        return invalid(hint, "ssm_init.dt_min %g exceeds ssm_init.dt_max %g", c->dt_min, c->dt_max);
    }
    if (!isfinite(c->dt_init_floor) || c->dt_init_floor < 0)
        return invalid("try 0.0001", "ssm_init.dt_init_floor is %g; it must be a finite number >= 0", c->dt_init_floor);
    if (!a_range) return SSMLM_OK;
    if ((s = check_positive("ssm_init.a_init_min", c->a_init_min, k->def.a_init_min)) != SSMLM_OK) return s;
    if ((s = check_positive("ssm_init.a_init_max", c->a_init_max, c->a_init_min > k->def.a_init_max ? c->a_init_min : k->def.a_init_max)) != SSMLM_OK) return s;
    if (c->a_init_min > c->a_init_max) {
        snprintf(hint, sizeof hint, "try a_init_max %g", c->a_init_min);
        return invalid(hint, "ssm_init.a_init_min %g exceeds ssm_init.a_init_max %g", c->a_init_min, c->a_init_max);
    }
    return SSMLM_OK;
}

static ssmlm_status check_mamba1(const checker *k) {
    const ssmlm_config *c = k->c;
    ssmlm_status s;
    if ((s = check_size("mamba1.d_state", c->m1_d_state, k->def.m1_d_state)) != SSMLM_OK) return s;
    if ((s = check_size("mamba1.d_conv", c->m1_d_conv, k->def.m1_d_conv)) != SSMLM_OK) return s;
    if ((s = check_size("mamba1.expand", c->m1_expand, k->def.m1_expand)) != SSMLM_OK) return s;
    /* mamba_ssm's "auto" rank */
    int64_t rank = (c->d_model + 15) / 16;
    if ((s = check_size("mamba1.dt_rank", c->m1_dt_rank, rank)) != SSMLM_OK) return s;
    if ((s = check_derived("d_inner (mamba1.expand * d_model)", ssmlm_m1_d_inner(c), "mamba1.expand",
                           DIM_LIMIT / c->d_model > 0 ? DIM_LIMIT / c->d_model : 1)) != SSMLM_OK) return s;
    if ((s = check_bool("mamba1.conv_bias", c->m1_conv_bias)) != SSMLM_OK) return s;
    return check_ssm_init(k, 0);
}

static ssmlm_status check_mamba2(const checker *k) {
    const ssmlm_config *c = k->c;
    char hint[96];
    ssmlm_status s;
    if ((s = check_size("mamba2.d_state", c->m2_d_state, k->def.m2_d_state)) != SSMLM_OK) return s;
    if ((s = check_size("mamba2.d_conv", c->m2_d_conv, k->def.m2_d_conv)) != SSMLM_OK) return s;
    if ((s = check_size("mamba2.expand", c->m2_expand, k->def.m2_expand)) != SSMLM_OK) return s;
    if ((s = check_derived("d_inner (mamba2.expand * d_model)", ssmlm_m2_d_inner(c), "mamba2.expand",
                           DIM_LIMIT / c->d_model > 0 ? DIM_LIMIT / c->d_model : 1)) != SSMLM_OK) return s;
    int64_t E = ssmlm_m2_d_inner(c);
    /* headdim hints keep nheads a multiple of a usable ngroups */
    int64_t G = c->m2_ngroups >= 1 && c->m2_ngroups <= E ? c->m2_ngroups : 1;
    if (c->m2_headdim < 1 || c->m2_headdim > E) {
        divisor_hint_q(hint, sizeof hint, E, c->m2_headdim < 1 ? 64 : c->m2_headdim, G);
        return invalid(hint, "mamba2.headdim is %lld; it must be in 1..d_inner (%lld)",
                       (long long)c->m2_headdim, (long long)E);
    }
    if (E % c->m2_headdim) {
        divisor_hint_q(hint, sizeof hint, E, c->m2_headdim, G);
        return invalid(hint, "mamba2.headdim %lld does not divide d_inner %lld (= expand %lld * d_model %lld)",
                       (long long)c->m2_headdim, (long long)E, (long long)c->m2_expand, (long long)c->d_model);
    }
    int64_t H = E / c->m2_headdim;
    if (c->m2_ngroups < 1 || c->m2_ngroups > H) {
        divisor_hint(hint, sizeof hint, H, c->m2_ngroups < 1 ? 1 : c->m2_ngroups);
        return invalid(hint, "mamba2.ngroups is %lld; it must be in 1..nheads (%lld = d_inner %lld / headdim %lld)",
                       (long long)c->m2_ngroups, (long long)H, (long long)E, (long long)c->m2_headdim);
    }
    if (H % c->m2_ngroups) {
        divisor_hint(hint, sizeof hint, H, c->m2_ngroups);
        return invalid(hint, "mamba2.ngroups %lld does not divide nheads %lld (= d_inner %lld / headdim %lld)",
                       (long long)c->m2_ngroups, (long long)H, (long long)E, (long long)c->m2_headdim);
    }
    if ((s = check_size("mamba2.chunk_size", c->m2_chunk_size, k->def.m2_chunk_size)) != SSMLM_OK) return s;
    int64_t n_fit = (DIM_LIMIT - E) / (2 * c->m2_ngroups);
    if ((s = check_derived("conv_dim (d_inner + 2 * ngroups * d_state)", ssmlm_m2_conv_dim(c),
                           "mamba2.d_state", n_fit > 0 ? n_fit : 1)) != SSMLM_OK) return s;
    if ((s = check_bool("mamba2.conv_bias", c->m2_conv_bias)) != SSMLM_OK) return s;
    return check_ssm_init(k, 1);
}

static ssmlm_status check_attention(const checker *k) {
    const ssmlm_config *c = k->c;
    char hint[96];
    ssmlm_status s;
    /* a multiple of kv_heads near d_model / 64 */
    int64_t heads_try = c->d_model % 64 == 0 ? c->d_model / 64 : 1, kv = c->attn_kv_heads;
    if (kv >= 1 && kv <= DIM_LIMIT) heads_try = (heads_try + kv - 1) / kv * kv;
    if ((s = check_size("attention.heads", c->attn_heads, heads_try)) != SSMLM_OK) return s;
    if (c->attn_kv_heads < 1 || c->attn_kv_heads > c->attn_heads) {
        divisor_hint(hint, sizeof hint, c->attn_heads, c->attn_kv_heads < 1 ? c->attn_heads : c->attn_kv_heads);
        return invalid(hint, "attention.kv_heads is %lld; it must be in 1..heads (%lld)",
                       (long long)c->attn_kv_heads, (long long)c->attn_heads);
    }
    if (c->attn_heads % c->attn_kv_heads) {
        divisor_hint(hint, sizeof hint, c->attn_heads, c->attn_kv_heads);
        return invalid(hint, "attention.kv_heads %lld does not divide attention.heads %lld",
                       (long long)c->attn_kv_heads, (long long)c->attn_heads);
    }
    int64_t hd_try = c->d_model / c->attn_heads > 0 ? c->d_model / c->attn_heads : 1;
    if (hd_try < c->attn_rotary_dim && c->attn_rotary_dim <= DIM_LIMIT) hd_try = c->attn_rotary_dim;
    if ((s = check_size("attention.head_dim", c->attn_head_dim, hd_try)) != SSMLM_OK) return s;
    int64_t qkv_limit = DIM_LIMIT / (c->attn_heads + 2 * c->attn_kv_heads);
    if ((s = check_derived("qkv size (head_dim * (heads + 2 * kv_heads))", ssmlm_attn_qkv_dim(c),
                           "attention.head_dim", qkv_limit > 0 ? qkv_limit : 1)) != SSMLM_OK) return s;
    int64_t hd = c->attn_head_dim, r = c->attn_rotary_dim;
    if (r < 0 || r > hd) {
        snprintf(hint, sizeof hint, "try %lld (no rotary) or %lld (all of head_dim)", 0LL, (long long)(hd & ~(int64_t)1));
        return invalid(hint, "attention.rotary_dim is %lld; it must be in 0..head_dim (%lld)", (long long)r, (long long)hd);
    }
    if (r % 2) {
        if (r + 1 <= hd)
            snprintf(hint, sizeof hint, "try %lld or %lld", (long long)(r - 1), (long long)(r + 1));
        else
            snprintf(hint, sizeof hint, "try %lld", (long long)(r - 1));
        return invalid(hint, "attention.rotary_dim %lld must be even (rotary rotates pairs of dims)", (long long)r);
    }
    if ((s = check_positive("attention.rope_base", c->attn_rope_base, k->def.attn_rope_base)) != SSMLM_OK) return s;
    if (!isfinite(c->attn_softmax_scale) || c->attn_softmax_scale < 0) {
        snprintf(hint, sizeof hint, "try 0 (means 1/sqrt(head_dim)) or %.6g", 1 / sqrt((double)hd));
        return invalid(hint, "attention.softmax_scale is %g; it must be a finite number >= 0", c->attn_softmax_scale);
    }
    if (c->attn_d_conv < 0 || c->attn_d_conv > DIM_LIMIT)
        return invalid("try 0 (no conv) or 4", "attention.d_conv is %lld; it must be in 0..%lld",
                       (long long)c->attn_d_conv, (long long)DIM_LIMIT);
    if ((s = check_bool("attention.qkv_bias", c->attn_qkv_bias)) != SSMLM_OK) return s;
    return check_bool("attention.out_bias", c->attn_out_bias);
}

static ssmlm_status check_mlp(const checker *k) {
    const ssmlm_config *c = k->c;
    ssmlm_status s;
    int64_t f_try = 4 * c->d_model <= DIM_LIMIT / 2 ? 4 * c->d_model : DIM_LIMIT / 2;
    if ((s = check_size("mlp.hidden", c->mlp_hidden, f_try)) != SSMLM_OK) return s;
    if (c->mlp_act < SSMLM_ACT_GELU || c->mlp_act > SSMLM_ACT_GATED_SILU)
        return invalid("try \"gelu\" (0), \"relu2\" (1), \"swiglu\" (2) or \"gated_silu\" (3)",
                       "mlp.activation is %d; it must be gelu (0), relu2 (1), swiglu (2) or gated_silu (3)", c->mlp_act);
    return check_derived("fc1 rows (2 * mlp.hidden for gated activations)", ssmlm_mlp_fc1_rows(c),
                         "mlp.hidden", DIM_LIMIT / 2);
}

ssmlm_status ssmlm_config_validate(const ssmlm_config *c) {
    if (!c) return invalid(NULL, "config is NULL");
    checker k = {.c = c};
    ssmlm_config_defaults(&k.def);
    ssmlm_status s = check_global(&k);
    if (s != SSMLM_OK) return s;
    int has_m = strchr(c->pattern, 'M') != NULL, has_a = strchr(c->pattern, '*') != NULL;
    int has_f = strchr(c->pattern, '+') != NULL;
    if (has_m && c->ssm_kind == SSMLM_SSM_MAMBA1 && (s = check_mamba1(&k)) != SSMLM_OK) return s;
    if (has_m && c->ssm_kind == SSMLM_SSM_MAMBA2 && (s = check_mamba2(&k)) != SSMLM_OK) return s;
    if (has_a && (s = check_attention(&k)) != SSMLM_OK) return s;
    if (has_f && (s = check_mlp(&k)) != SSMLM_OK) return s;
    return SSMLM_OK;
}

/* config.c — model configuration: defaults, derived sizes and validation.  Every validation
 * message names the field, the rule and a valid nearby value. */
#include "base/base.h"
#include "layers/layers.h"
#include <math.h>
#include <string.h>

void ssmlm_config_defaults(ssmlm_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "custom");
    c->d_model = 256;
    c->vocab_size = 256;
    c->vocab_pad_multiple = 8;
    snprintf(c->pattern, sizeof c->pattern, "MMMM");
    c->n_layer = 4;
    c->ssm_kind = SSMLM_SSM_MAMBA2;
    c->tie_embeddings = 0;
    c->norm_kind = SSMLM_NORM_RMS;
    c->norm_eps = 1e-5;
    c->m1_d_state = 16;
    c->m1_d_conv = 4;
    c->m1_expand = 2;
    c->m1_dt_rank = 0; /* auto */
    c->m1_conv_bias = 1;
    c->m2_d_state = 128;
    c->m2_d_conv = 4;
    c->m2_expand = 2;
    c->m2_headdim = 64;
    c->m2_ngroups = 1;
    c->m2_chunk_size = 64;
    c->m2_conv_bias = 1;
    c->dt_min = 0.001;
    c->dt_max = 0.1;
    c->dt_init_floor = 1e-4;
    c->a_init_min = 1;
    c->a_init_max = 16;
    c->attn_heads = 8;
    c->attn_kv_heads = 8;
    c->attn_head_dim = 0; /* D / heads */
    c->attn_rotary_dim = 0;
    c->attn_rope_base = 10000;
    c->mlp_hidden = 0; /* 4 D */
    c->mlp_act = SSMLM_ACT_GELU;
    c->init_std = 0.02;
    c->seed = 1234;
}

int64_t ssmlm_config_vocab_padded(const ssmlm_config *c) {
    int64_t m = c->vocab_pad_multiple > 0 ? c->vocab_pad_multiple : 1;
    return (c->vocab_size + m - 1) / m * m;
}

int64_t ssmlm_m1_d_inner(const ssmlm_config *c) { return c->m1_expand * c->d_model; }
int64_t ssmlm_m2_d_inner(const ssmlm_config *c) { return c->m2_expand * c->d_model; }
int64_t ssmlm_m2_nheads(const ssmlm_config *c) {
    return c->m2_headdim > 0 ? ssmlm_m2_d_inner(c) / c->m2_headdim : 0;
}
int64_t ssmlm_m2_conv_dim(const ssmlm_config *c) {
    return ssmlm_m2_d_inner(c) + 2 * c->m2_ngroups * c->m2_d_state;
}
int64_t ssmlm_m2_in_proj_dim(const ssmlm_config *c) {
    return 2 * ssmlm_m2_d_inner(c) + 2 * c->m2_ngroups * c->m2_d_state + ssmlm_m2_nheads(c);
}
int64_t ssmlm_attn_qkv_dim(const ssmlm_config *c) {
    return c->attn_head_dim * (c->attn_heads + 2 * c->attn_kv_heads);
}
int64_t ssmlm_mlp_fc1_rows(const ssmlm_config *c) {
    int gated = c->mlp_act == SSMLM_ACT_SWIGLU || c->mlp_act == SSMLM_ACT_GATED_SILU;
    return gated ? 2 * c->mlp_hidden : c->mlp_hidden;
}
int64_t ssmlm_mamba1_state_size(const ssmlm_config *c) {
    int64_t E = ssmlm_m1_d_inner(c);
    return E * c->m1_d_conv + E * c->m1_d_state;
}
int64_t ssmlm_mamba2_state_size(const ssmlm_config *c) {
    return ssmlm_m2_conv_dim(c) * c->m2_d_conv + ssmlm_m2_d_inner(c) * c->m2_d_state;
}
int64_t ssmlm_attention_state_size(const ssmlm_config *c, int64_t cap) {
    return cap * 2 * c->attn_kv_heads * c->attn_head_dim + ssmlm_attn_qkv_dim(c) * c->attn_d_conv;
}

void ssmlm_config_resolve(ssmlm_config *c) {
    c->n_layer = (int64_t)strnlen(c->pattern, sizeof c->pattern);
    if (c->attn_head_dim == 0 && c->attn_heads > 0) c->attn_head_dim = c->d_model / c->attn_heads;
    if (c->mlp_hidden == 0) c->mlp_hidden = 4 * c->d_model;
    /* mamba_ssm: dt_rank "auto" = ceil(d_model / 16) */
    if (c->m1_dt_rank == 0) c->m1_dt_rank = (c->d_model + 15) / 16;
}

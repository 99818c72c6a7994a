/* params.c — the parameter table generated from a config: for every layer of the pattern,
 * the tensors of its kind (name, shape, init rule, weight-decay flag, slot), then the
 * embedding, final norm and LM head; and parameter counts per component. */
#include "model/model.h"
#include <string.h>

typedef struct table_builder {
    ssmlm_param_entry *e;
    int n, cap;
    int64_t off;
    ssmlm_status status;
} table_builder;

static void add(table_builder *tb, int layer, int slot, const char *name, int init, int wd,
                int ndim, int64_t d0, int64_t d1, int64_t d2) {
    if (tb->status != SSMLM_OK) return;
    if (tb->n == tb->cap) {
        int cap = tb->cap ? 2 * tb->cap : 64;
        ssmlm_param_entry *e = realloc(tb->e, (size_t)cap * sizeof *e);
        if (!e) {
            tb->status = ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory building the parameter table");
            return;
        }
        tb->e = e;
        tb->cap = cap;
    }
    ssmlm_param_entry *p = &tb->e[tb->n++];
    memset(p, 0, sizeof *p);
    if (layer >= 0)
        snprintf(p->info.name, sizeof p->info.name, "layers.%d.%s", layer, name);
    else
        snprintf(p->info.name, sizeof p->info.name, "%s", name);
    int64_t dims[3] = {d0, d1, d2};
    p->info.ndim = ndim;
    p->info.numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->info.shape[i] = dims[i];
        p->info.numel *= dims[i];
    }
    p->info.offset = tb->off;
    /* 16 elements = 64 bytes in fp32, 128 in fp64: aligned in both */
    tb->off += (p->info.numel + 15) / 16 * 16;
    p->info.layer = layer;
    p->info.slot = slot;
    p->info.weight_decay = wd;
    p->init = init;
}

ssmlm_status ssmlm_param_table(const ssmlm_config *c, ssmlm_param_entry **out, int *n,
                               int64_t *arena_numel) {
    table_builder tb = {0};
    int64_t D = c->d_model, V = ssmlm_config_vocab_padded(c);
    int ln = c->norm_kind == SSMLM_NORM_LAYER;
    add(&tb, -1, GLOBAL_EMBED, "embedding.weight", INIT_NORMAL, 1, 2, V, D, 0);
    for (int l = 0; l < (int)c->n_layer; l++) {
        char k = c->pattern[l];
        add(&tb, l, SLOT_NORM_W, "norm.weight", INIT_NORM, 0, 1, D, 0, 0);
        if (ln) add(&tb, l, SLOT_NORM_B, "norm.bias", INIT_ZERO, 0, 1, D, 0, 0);
        if (k == 'M' && c->ssm_kind == SSMLM_SSM_MAMBA1) {
            int64_t E = ssmlm_m1_d_inner(c), N = c->m1_d_state, K = c->m1_d_conv, R = c->m1_dt_rank;
            add(&tb, l, M1_IN_PROJ, "mixer.in_proj.weight", INIT_NORMAL, 1, 2, 2 * E, D, 0);
            add(&tb, l, M1_CONV_W, "mixer.conv1d.weight", INIT_CONV, 1, 3, E, 1, K);
            if (c->m1_conv_bias) add(&tb, l, M1_CONV_B, "mixer.conv1d.bias", INIT_CONV, 0, 1, E, 0, 0);
            add(&tb, l, M1_X_PROJ, "mixer.x_proj.weight", INIT_NORMAL, 1, 2, R + 2 * N, E, 0);
            add(&tb, l, M1_DT_PROJ_W, "mixer.dt_proj.weight", INIT_DT_PROJ, 1, 2, E, R, 0);
            add(&tb, l, M1_DT_PROJ_B, "mixer.dt_proj.bias", INIT_DT_BIAS, 0, 1, E, 0, 0);
            add(&tb, l, M1_A_LOG, "mixer.A_log", INIT_A_LOG_M1, 0, 2, E, N, 0);
            add(&tb, l, M1_D, "mixer.D", INIT_ONE, 0, 1, E, 0, 0);
            add(&tb, l, M1_OUT_PROJ, "mixer.out_proj.weight", INIT_OUT, 1, 2, D, E, 0);
        } else if (k == 'M') {
            int64_t E = ssmlm_m2_d_inner(c), H = ssmlm_m2_nheads(c), K = c->m2_d_conv;
            int64_t CD = ssmlm_m2_conv_dim(c);
            add(&tb, l, M2_IN_PROJ, "mixer.in_proj.weight", INIT_NORMAL, 1, 2, ssmlm_m2_in_proj_dim(c), D, 0);
            add(&tb, l, M2_CONV_W, "mixer.conv1d.weight", INIT_CONV, 1, 3, CD, 1, K);
            if (c->m2_conv_bias) add(&tb, l, M2_CONV_B, "mixer.conv1d.bias", INIT_CONV, 0, 1, CD, 0, 0);
            add(&tb, l, M2_DT_BIAS, "mixer.dt_bias", INIT_DT_BIAS, 0, 1, H, 0, 0);
            add(&tb, l, M2_A_LOG, "mixer.A_log", INIT_A_LOG_M2, 0, 1, H, 0, 0);
            add(&tb, l, M2_D, "mixer.D", INIT_ONE, 0, 1, H, 0, 0);
            add(&tb, l, M2_NORM_W, "mixer.norm.weight", INIT_ONE, 0, 1, E, 0, 0);
            add(&tb, l, M2_OUT_PROJ, "mixer.out_proj.weight", INIT_OUT, 1, 2, D, E, 0);
        } else if (k == '*') {
            int64_t Q = ssmlm_attn_qkv_dim(c), O = c->attn_heads * c->attn_head_dim;
            add(&tb, l, AT_QKV_W, "mixer.in_proj.weight", INIT_NORMAL, 1, 2, Q, D, 0);
            if (c->attn_qkv_bias) add(&tb, l, AT_QKV_B, "mixer.in_proj.bias", INIT_ZERO, 0, 1, Q, 0, 0);
            if (c->attn_d_conv > 0) {
                add(&tb, l, AT_CONV_W, "mixer.conv1d.weight", INIT_CONV, 1, 3, Q, 1, c->attn_d_conv);
                add(&tb, l, AT_CONV_B, "mixer.conv1d.bias", INIT_CONV, 0, 1, Q, 0, 0);
            }
            add(&tb, l, AT_OUT_W, "mixer.out_proj.weight", INIT_OUT, 1, 2, D, O, 0);
            if (c->attn_out_bias) add(&tb, l, AT_OUT_B, "mixer.out_proj.bias", INIT_ZERO, 0, 1, D, 0, 0);
        } else {
            add(&tb, l, MLP_FC1, "mlp.fc1.weight", INIT_NORMAL, 1, 2, ssmlm_mlp_fc1_rows(c), D, 0);
            add(&tb, l, MLP_FC2, "mlp.fc2.weight", INIT_OUT, 1, 2, D, c->mlp_hidden, 0);
        }
    }
    add(&tb, -1, GLOBAL_NORM_W, "norm_f.weight", INIT_NORM, 0, 1, D, 0, 0);
    if (ln) add(&tb, -1, GLOBAL_NORM_B, "norm_f.bias", INIT_ZERO, 0, 1, D, 0, 0);
    if (!c->tie_embeddings) add(&tb, -1, GLOBAL_LM_HEAD, "lm_head.weight", INIT_NORMAL, 1, 2, V, D, 0);
    if (tb.status != SSMLM_OK) {
        free(tb.e);
        return tb.status;
    }
    *out = tb.e;
    *n = tb.n;
    if (arena_numel) *arena_numel = tb.off;
    return SSMLM_OK;
}

ssmlm_status ssmlm_config_count_params(const ssmlm_config *c, ssmlm_param_counts *out) {
    memset(out, 0, sizeof *out);
    ssmlm_param_entry *e = NULL;
    int n = 0;
    ssmlm_status s = ssmlm_param_table(c, &e, &n, NULL);
    if (s != SSMLM_OK) return s;
    for (int i = 0; i < n; i++) {
        const ssmlm_param_info *p = &e[i].info;
        if (p->layer < 0) {
            if (p->slot == GLOBAL_EMBED) out->embedding += p->numel;
            else if (p->slot == GLOBAL_LM_HEAD) out->lm_head += p->numel;
            else out->final_norm += p->numel;
        } else {
            char k = c->pattern[p->layer];
            if (k == 'M') out->mamba += p->numel;
            else if (k == '*') out->attention += p->numel;
            else out->mlp += p->numel;
        }
        out->total += p->numel;
    }
    for (int l = 0; l < (int)c->n_layer; l++) {
        char k = c->pattern[l];
        if (k == 'M') out->n_mamba++;
        else if (k == '*') out->n_attention++;
        else out->n_mlp++;
    }
    free(e);
    return SSMLM_OK;
}

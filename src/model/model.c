/* model.c — model lifetime: allocation of the parameter arena from the table, seeded
 * initialization, parameter lookup, and dispatch of forward/backward to the precision. */
#include "model/model.h"
#include <math.h>
#include <string.h>

ssmlm_status ssmlm_model_create(ssmlm_model **out, const ssmlm_config *c, ssmlm_dtype dtype) {
    *out = NULL;
    ssmlm_status s = ssmlm_config_validate(c);
    if (s != SSMLM_OK) return s;
    if (dtype != SSMLM_F32 && dtype != SSMLM_F64)
        return ssmlm_fail(SSMLM_ERR_INVALID, "use f32 or f64", "unknown dtype %d", (int)dtype);
    ssmlm_model *m = calloc(1, sizeof *m);
    if (!m) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory");
    m->cfg = *c;
    m->dtype = dtype;
    m->esize = dtype == SSMLM_F64 ? 8 : 4;
    s = ssmlm_param_table(c, &m->params, &m->n_params, &m->arena_numel);
    if (s != SSMLM_OK) {
        free(m);
        return s;
    }
    m->w = ssmlm_calloc((size_t)m->arena_numel * m->esize);
    m->slot_index = malloc((size_t)c->n_layer * SSMLM_MAX_SLOTS * sizeof(int));
    if (!m->w || !m->slot_index) {
        double gb = (double)m->arena_numel * (double)m->esize / 1e9;
        ssmlm_model_free(m);
        return ssmlm_fail(SSMLM_ERR_MEMORY, "use bf16 inference or a smaller model",
                          "cannot allocate %.2f GB for the parameters", gb);
    }
    for (int64_t i = 0; i < c->n_layer * SSMLM_MAX_SLOTS; i++) m->slot_index[i] = -1;
    for (int i = 0; i < GLOBAL_NSLOTS; i++) m->global_index[i] = -1;
    for (int i = 0; i < m->n_params; i++) {
        const ssmlm_param_info *p = &m->params[i].info;
        if (p->layer >= 0) m->slot_index[p->layer * SSMLM_MAX_SLOTS + p->slot] = i;
        else m->global_index[p->slot] = i;
    }
    *out = m;
    return SSMLM_OK;
}

void ssmlm_model_free(ssmlm_model *m) {
    if (!m) return;
    ssmlm_free(m->w);
    ssmlm_free(m->g);
    ssmlm_free(m->acts);
    free(m->layer_act_off);
    free(m->ids);
    free(m->labels);
    free(m->params);
    free(m->slot_index);
    free(m);
}

const ssmlm_config *ssmlm_model_config(const ssmlm_model *m) { return &m->cfg; }
ssmlm_dtype ssmlm_model_dtype(const ssmlm_model *m) { return m->dtype; }
int ssmlm_model_n_params(const ssmlm_model *m) { return m->n_params; }
const ssmlm_param_info *ssmlm_model_param(const ssmlm_model *m, int i) {
    return i >= 0 && i < m->n_params ? &m->params[i].info : NULL;
}
int ssmlm_model_find_param(const ssmlm_model *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].info.name, name) == 0) return i;
    return -1;
}
void *ssmlm_model_param_data(ssmlm_model *m, int i) { return model_w(m, i); }
void *ssmlm_model_grad_data(ssmlm_model *m, int i) { return model_g(m, i); }
int64_t ssmlm_model_numel(const ssmlm_model *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += m->params[i].info.numel;
    return n;
}

void ssmlm_model_zero_grad(ssmlm_model *m) {
    if (m->g) memset(m->g, 0, (size_t)m->arena_numel * m->esize);
}

static void set(ssmlm_model *m, int i, int64_t j, double v) {
    size_t at = (size_t)(m->params[i].info.offset + j);
    if (m->dtype == SSMLM_F64) ((double *)m->w)[at] = v;
    else ((float *)m->w)[at] = (float)v;
}

void ssmlm_model_init(ssmlm_model *m, uint64_t seed) {
    const ssmlm_config *c = &m->cfg;
    double out_std = c->init_std / sqrt(2.0 * (double)c->n_layer);
    for (int i = 0; i < m->n_params; i++) {
        const ssmlm_param_info *p = &m->params[i].info;
        /* one stream per tensor: the value of a tensor does not depend on the others */
        ssmlm_rng r;
        ssmlm_rng_seed(&r, seed * 0x9e3779b97f4a7c15ull + (uint64_t)i * 0x632be59bd9b4e019ull + 1);
        int64_t K = p->ndim == 3 ? p->shape[2] : 1;
        for (int64_t j = 0; j < p->numel; j++) {
            double v = 0;
            switch (m->params[i].init) {
            case INIT_NORMAL: v = c->init_std * ssmlm_rng_normal(&r); break;
            case INIT_OUT: v = out_std * ssmlm_rng_normal(&r); break;
            case INIT_ZERO: v = 0; break;
            case INIT_ONE: v = 1; break;
            case INIT_NORM: v = c->norm_kind == SSMLM_NORM_LAYER && c->norm_zero_centered ? 0 : 1; break;
            case INIT_CONV: {
                int64_t k = p->ndim == 3 ? K : (p->layer >= 0 && c->pattern[p->layer] == '*' ? c->attn_d_conv
                                                 : c->ssm_kind == SSMLM_SSM_MAMBA1 ? c->m1_d_conv : c->m2_d_conv);
                double b = 1.0 / sqrt((double)k);
                v = (2 * ssmlm_rng_uniform(&r) - 1) * b;
                break;
            }
            case INIT_DT_BIAS: {
                double lo = log(c->dt_min), hi = log(c->dt_max);
                double dt = exp(lo + ssmlm_rng_uniform(&r) * (hi - lo));
                if (dt < c->dt_init_floor) dt = c->dt_init_floor;
                v = dt + log(-expm1(-dt)); /* inverse softplus */
                break;
            }
            case INIT_A_LOG_M1: v = log((double)(j % p->shape[1] + 1)); break;
            case INIT_A_LOG_M2:
                v = log(c->a_init_min + ssmlm_rng_uniform(&r) * (c->a_init_max - c->a_init_min));
                break;
            case INIT_DT_PROJ: {
                double b = 1.0 / sqrt((double)c->m1_dt_rank);
                v = (2 * ssmlm_rng_uniform(&r) - 1) * b;
                break;
            }
            }
            set(m, i, j, v);
        }
    }
}

ssmlm_status ssmlm_model_forward(ssmlm_model *m, const int32_t *ids, const int32_t *labels,
                                 int64_t B, int64_t T, void *logits, double *loss) {
    if (B <= 0 || T <= 0)
        return ssmlm_fail(SSMLM_ERR_INVALID, "give at least one token", "batch %lld x %lld tokens is empty",
                          (long long)B, (long long)T);
    int64_t V = ssmlm_config_vocab_padded(&m->cfg);
    for (int64_t i = 0; i < B * T; i++) {
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
            return ssmlm_fail(SSMLM_ERR_INVALID, "token ids must be in [0, vocab_size)",
                              "token %lld has id %d, outside the vocabulary of %lld", (long long)i,
                              ids[i], (long long)m->cfg.vocab_size);
        if (labels && labels[i] >= V)
            return ssmlm_fail(SSMLM_ERR_INVALID, "labels must be < the padded vocabulary; negative = ignored",
                              "label %lld is %d, outside the vocabulary of %lld", (long long)i,
                              labels[i], (long long)V);
    }
    return m->dtype == SSMLM_F64 ? ssmlm_model_forward_f64(m, ids, labels, B, T, logits, loss)
                                 : ssmlm_model_forward_f32(m, ids, labels, B, T, logits, loss);
}

ssmlm_status ssmlm_model_backward(ssmlm_model *m, int accumulate) {
    if (!m->have_forward || !m->labels)
        return ssmlm_fail(SSMLM_ERR_INVALID, "call ssmlm_model_forward with labels first",
                          "backward without a forward pass that computed a loss");
    if (!m->g) {
        m->g = ssmlm_calloc((size_t)m->arena_numel * m->esize);
        if (!m->g) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "cannot allocate the gradients");
    } else if (!accumulate) {
        ssmlm_model_zero_grad(m);
    }
    return m->dtype == SSMLM_F64 ? ssmlm_model_backward_f64(m, accumulate)
                                 : ssmlm_model_backward_f32(m, accumulate);
}

size_t ssmlm_config_activation_bytes(const ssmlm_config *c, int64_t B, int64_t T) {
    return (size_t)model_acts_numel_f32(c, B, T) * sizeof(float);
}

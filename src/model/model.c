/* model.c — model lifetime: allocation of the parameter arenas from the table (fp32/fp64, or
 * bf16 matrices for inference), seeded initialization, parameter lookup, and dispatch of
 * forward/backward to the precision. */
#include "model/model.h"
#include "kernels/bf16.h"
#include <math.h>
#include <string.h>

/* Whether parameter p is one of the matrices a bf16-weight model stores as bf16: those that go
 * through the linear layers (in/out/x projections, qkv and attention output, MLP fc1/fc2, LM head)
 * and the embedding table.  Norms, convolutions, A_log, D, dt biases and Mamba-1's small dt_proj
 * stay fp32. */
static int param_is_bf16_matrix(const ssmlm_config *c, const ssmlm_param_info *p) {
    if (p->layer < 0) return p->slot == GLOBAL_EMBED || p->slot == GLOBAL_LM_HEAD;
    switch (c->pattern[p->layer]) {
    case 'M':
        if (c->ssm_kind == SSMLM_SSM_MAMBA1)
            return p->slot == M1_IN_PROJ || p->slot == M1_X_PROJ || p->slot == M1_OUT_PROJ;
        return p->slot == M2_IN_PROJ || p->slot == M2_OUT_PROJ;
    case '*': return p->slot == AT_QKV_W || p->slot == AT_OUT_W;
    default: return p->slot == MLP_FC1 || p->slot == MLP_FC2;
    }
}

/* Allocates the arenas and points every parameter at its storage.  fp32/fp64: one arena laid
 * out by the table's offsets.  bf16 weights: the matrices packed into the bf16 arena, the other
 * tensors into a small fp32 arena (each tensor 64-byte aligned in both). */
static ssmlm_status model_alloc(ssmlm_model *m) {
    if (!m->bf16_weights) {
        m->w = ssmlm_calloc((size_t)m->arena_numel * m->esize);
        if (!m->w)
            return ssmlm_fail(SSMLM_ERR_MEMORY, "use bf16 weights for inference, or a smaller model",
                              "cannot allocate %.2f GB for the parameters",
                              (double)m->arena_numel * (double)m->esize / 1e9);
        for (int i = 0; i < m->n_params; i++)
            m->params[i].data = (char *)m->w + (size_t)m->params[i].info.offset * m->esize;
        return SSMLM_OK;
    }
    int64_t nf = 0, nb = 0;
    for (int i = 0; i < m->n_params; i++) {
        ssmlm_param_entry *e = &m->params[i];
        e->bf16 = param_is_bf16_matrix(&m->cfg, &e->info);
        if (e->bf16) nb += (e->info.numel + 31) / 32 * 32;
        else nf += (e->info.numel + 15) / 16 * 16;
    }
    m->arena_numel = nf;
    m->wb_numel = nb;
    m->w = ssmlm_calloc((size_t)(nf > 0 ? nf : 1) * m->esize);
    m->wb = ssmlm_calloc((size_t)(nb > 0 ? nb : 1) * sizeof(uint16_t));
    if (!m->w || !m->wb)
        return ssmlm_fail(SSMLM_ERR_MEMORY, "use a smaller model",
                          "cannot allocate %.2f GB for the parameters (%.2f GB of them bf16 matrices)",
                          ((double)nf * (double)m->esize + 2.0 * (double)nb) / 1e9, 2.0 * (double)nb / 1e9);
    bf16_arena_register(m->wb, (size_t)nb * sizeof(uint16_t));
    nf = nb = 0;
    for (int i = 0; i < m->n_params; i++) {
        ssmlm_param_entry *e = &m->params[i];
        if (e->bf16) {
            e->data = m->wb + nb;
            nb += (e->info.numel + 31) / 32 * 32;
        } else {
            e->data = (char *)m->w + (size_t)nf * m->esize;
            nf += (e->info.numel + 15) / 16 * 16;
        }
    }
    return SSMLM_OK;
}

ssmlm_status ssmlm_model_create_ex(ssmlm_model **out, const ssmlm_config *c, ssmlm_dtype dtype, unsigned flags) {
    *out = NULL;
    ssmlm_config rc = *c;
    ssmlm_config_resolve(&rc);
    ssmlm_status s = ssmlm_config_validate(&rc);
    if (s != SSMLM_OK) return s;
    c = &rc;
    if (dtype != SSMLM_F32 && dtype != SSMLM_F64)
        return ssmlm_fail(SSMLM_ERR_INVALID, "use f32 or f64", "unknown dtype %d", (int)dtype);
    if (flags & ~(unsigned)SSMLM_MODEL_BF16_WEIGHTS)
        return ssmlm_fail(SSMLM_ERR_INVALID, "the only flag is SSMLM_MODEL_BF16_WEIGHTS", "unknown model flags 0x%x",
                          flags & ~(unsigned)SSMLM_MODEL_BF16_WEIGHTS);
    int bf16 = (flags & SSMLM_MODEL_BF16_WEIGHTS) != 0;
    if (bf16 && dtype != SSMLM_F32)
        return ssmlm_fail(SSMLM_ERR_INVALID, "use SSMLM_F32 (fp32 math on bf16 weights), or f64 without bf16 weights",
                          "bf16 weights need an fp32 model; an fp64 model keeps full-precision weights");
    ssmlm_model *m = calloc(1, sizeof *m);
    if (!m) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory");
    m->cfg = rc;
    m->dtype = dtype;
    m->esize = dtype == SSMLM_F64 ? 8 : 4;
    m->bf16_weights = bf16;
    s = ssmlm_param_table(&m->cfg, &m->params, &m->n_params, &m->arena_numel);
    if (s != SSMLM_OK) {
        free(m);
        return s;
    }
    s = model_alloc(m);
    if (s != SSMLM_OK) {
        ssmlm_model_free(m);
        return s;
    }
    m->slot_index = malloc((size_t)c->n_layer * SSMLM_MAX_SLOTS * sizeof(int));
    if (!m->slot_index) {
        ssmlm_model_free(m);
        return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory");
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

ssmlm_status ssmlm_model_create(ssmlm_model **out, const ssmlm_config *c, ssmlm_dtype dtype) {
    return ssmlm_model_create_ex(out, c, dtype, 0);
}

void ssmlm_model_free(ssmlm_model *m) {
    if (!m) return;
    if (m->wb) bf16_arena_unregister(m->wb);
    ssmlm_free(m->wb);
    ssmlm_free(m->w);
    ssmlm_free(m->g);
    ssmlm_free(m->acts);
    free(m->layer_act_off);
    free(m->ids);
    free(m->labels);
    free(m->seg);
    free(m->fwd_seg);
    free(m->params);
    free(m->slot_index);
    free(m);
}

int ssmlm_model_weights_bf16(const ssmlm_model *m) { return m->bf16_weights; }
int ssmlm_model_param_bf16(const ssmlm_model *m, int i) { return i >= 0 && i < m->n_params && m->params[i].bf16; }
size_t ssmlm_model_weight_bytes(const ssmlm_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += model_param_bytes(m, i);
    return n;
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

/* Element j of parameter i = v in its storage: a bf16 value is the fp32 value rounded, so a
 * bf16-weight model equals an fp32 model initialized with the same seed, weights rounded. */
static void set(ssmlm_model *m, int i, int64_t j, double v) {
    void *d = m->params[i].data;
    if (m->params[i].bf16) ((uint16_t *)d)[j] = bf16_from_f32((float)v);
    else if (m->dtype == SSMLM_F64) ((double *)d)[j] = v;
    else ((float *)d)[j] = (float)v;
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

ssmlm_status ssmlm_model_set_segments(ssmlm_model *m, const int32_t *seg, int64_t n) {
    free(m->seg);
    m->seg = NULL;
    m->seg_n = 0;
    if (!seg) return SSMLM_OK;
    if (n <= 0)
        return ssmlm_fail(SSMLM_ERR_INVALID, "give B*T segment ids, or NULL to clear them",
                          "ssmlm_model_set_segments: %lld segment ids", (long long)n);
    m->seg = malloc((size_t)n * sizeof(int32_t));
    if (!m->seg) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory for %lld segment ids", (long long)n);
    memcpy(m->seg, seg, (size_t)n * sizeof(int32_t));
    m->seg_n = n;
    return SSMLM_OK;
}

/* The segment ids set on m must cover B x T tokens and be non-decreasing within each row. */
static ssmlm_status check_segments(const ssmlm_model *m, int64_t B, int64_t T) {
    if (!m->seg) return SSMLM_OK;
    if (m->seg_n != B * T)
        return ssmlm_fail(SSMLM_ERR_INVALID,
                          "set B*T segment ids for each batch, or clear them with ssmlm_model_set_segments(m, NULL, 0)",
                          "segment ids: %lld set, but the forward has %lld x %lld = %lld tokens",
                          (long long)m->seg_n, (long long)B, (long long)T, (long long)(B * T));
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 1; t < T; t++)
            if (m->seg[b * T + t] < m->seg[b * T + t - 1])
                return ssmlm_fail(SSMLM_ERR_INVALID,
                                  "segment ids number the documents of a row in order: non-decreasing within each row",
                                  "segment ids decrease in row %lld at token %lld (%d after %d)", (long long)b,
                                  (long long)t, m->seg[b * T + t], m->seg[b * T + t - 1]);
    return SSMLM_OK;
}

ssmlm_status ssmlm_model_forward(ssmlm_model *m, const int32_t *ids, const int32_t *labels,
                                 int64_t B, int64_t T, void *logits, double *loss) {
    if (B <= 0 || T <= 0)
        return ssmlm_fail(SSMLM_ERR_INVALID, "give at least one token", "batch %lld x %lld tokens is empty",
                          (long long)B, (long long)T);
    ssmlm_status sst = check_segments(m, B, T);
    if (sst != SSMLM_OK) return sst;
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
    if (m->bf16_weights)
        return ssmlm_fail(SSMLM_ERR_UNSUPPORTED,
                          "train an fp32 (or fp64) model: create or load it without SSMLM_MODEL_BF16_WEIGHTS",
                          "bf16 weights are for inference; this model cannot compute gradients");
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

/* ---- inference state ------------------------------------------------------------------ */

int64_t model_layer_state_size(const ssmlm_config *c, int l, int64_t cap) {
    switch (c->pattern[l]) {
    case 'M': return c->ssm_kind == SSMLM_SSM_MAMBA1 ? ssmlm_mamba1_state_size(c) : ssmlm_mamba2_state_size(c);
    case '*': return ssmlm_attention_state_size(c, cap);
    default: return 0;
    }
}

void ssmlm_state_plan(const ssmlm_config *c, size_t *fixed_bytes, size_t *kv_bytes_per_pos, ssmlm_dtype dtype) {
    size_t es = dtype == SSMLM_F64 ? 8 : 4, fixed = 0, kv = 0;
    for (int l = 0; l < c->n_layer; l++) {
        int64_t s0 = model_layer_state_size(c, l, 0), s1 = model_layer_state_size(c, l, 1);
        fixed += (size_t)s0 * es;
        kv += (size_t)(s1 - s0) * es;
    }
    if (fixed_bytes) *fixed_bytes = fixed;
    if (kv_bytes_per_pos) *kv_bytes_per_pos = kv;
}

ssmlm_status ssmlm_state_create(ssmlm_state **out, const ssmlm_model *m, int64_t batch, int64_t cap) {
    *out = NULL;
    const ssmlm_config *c = &m->cfg;
    if (batch < 1 || cap < 1)
        return ssmlm_fail(SSMLM_ERR_INVALID, "use at least one sequence and one position",
                          "state for %lld sequences of capacity %lld", (long long)batch, (long long)cap);
    ssmlm_state *s = calloc(1, sizeof *s);
    if (!s) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory");
    s->model = m;
    s->dtype = m->dtype;
    s->B = batch;
    s->cap = cap;
    s->layer_off = malloc((size_t)c->n_layer * sizeof(int64_t));
    s->pos = calloc((size_t)batch, sizeof(int64_t));
    int64_t off = 0;
    for (int l = 0; l < c->n_layer && s->layer_off; l++) {
        s->layer_off[l] = off;
        off += (batch * model_layer_state_size(c, l, cap) + 15) / 16 * 16;
    }
    s->data_numel = off;
    s->scratch_numel = m->dtype == SSMLM_F64 ? model_step_scratch_f64(c, batch) : model_step_scratch_f32(c, batch);
    s->data = ssmlm_calloc((size_t)off * m->esize);
    s->work = ssmlm_calloc((size_t)(4 * batch * c->d_model + 2 * batch + s->scratch_numel) * m->esize);
    if (!s->layer_off || !s->pos || !s->data || !s->work) {
        double gb = (double)off * (double)m->esize / 1e9;
        ssmlm_state_free(s);
        return ssmlm_fail(SSMLM_ERR_MEMORY, "lower the batch or the context capacity",
                          "cannot allocate %.2f GB of inference state", gb);
    }
    *out = s;
    return SSMLM_OK;
}

void ssmlm_state_free(ssmlm_state *s) {
    if (!s) return;
    ssmlm_free(s->data);
    ssmlm_free(s->work);
    free(s->layer_off);
    free(s->pos);
    free(s);
}

int64_t ssmlm_state_batch(const ssmlm_state *s) { return s->B; }
int64_t ssmlm_state_capacity(const ssmlm_state *s) { return s->cap; }

ssmlm_status ssmlm_state_copy_seq(ssmlm_state *dst, int64_t db, const ssmlm_state *src, int64_t sb) {
    if (dst->model != src->model || dst->cap != src->cap)
        return ssmlm_fail(SSMLM_ERR_INVALID, "create both states from the same model with the same capacity",
                          "states of different models or capacities (%lld vs %lld)", (long long)dst->cap,
                          (long long)src->cap);
    if (db < 0 || db >= dst->B || sb < 0 || sb >= src->B)
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "sequence %lld -> %lld outside the batches %lld / %lld", (long long)sb,
                          (long long)db, (long long)src->B, (long long)dst->B);
    const ssmlm_config *c = &src->model->cfg;
    size_t es = src->model->esize;
    for (int l = 0; l < c->n_layer; l++) {
        int64_t ss = model_layer_state_size(c, l, src->cap);
        if (!ss) continue;
        /* attention: only the positions the sequence has filled */
        int64_t n = ss;
        if (c->pattern[l] == '*') {
            int64_t kv = ssmlm_attention_state_size(c, 1) - ssmlm_attention_state_size(c, 0);
            memmove((char *)dst->data + (size_t)(dst->layer_off[l] + db * ss + src->cap * kv) * es,
                   (const char *)src->data + (size_t)(src->layer_off[l] + sb * ss + src->cap * kv) * es,
                   (size_t)(ss - src->cap * kv) * es);
            n = src->pos[sb] * kv;
        }
        memmove((char *)dst->data + (size_t)(dst->layer_off[l] + db * ss) * es,
                (const char *)src->data + (size_t)(src->layer_off[l] + sb * ss) * es, (size_t)n * es);
    }
    dst->pos[db] = src->pos[sb];
    return SSMLM_OK;
}

int64_t ssmlm_state_pos(const ssmlm_state *s, int64_t b) { return b >= 0 && b < s->B ? s->pos[b] : -1; }

static ssmlm_status check_ids(const ssmlm_model *m, const int32_t *ids, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
            return ssmlm_fail(SSMLM_ERR_INVALID, "token ids must be in [0, vocab_size)",
                              "token %lld has id %d, outside the vocabulary of %lld", (long long)i, ids[i],
                              (long long)m->cfg.vocab_size);
    return SSMLM_OK;
}

static int has_attention(const ssmlm_config *c) { return strchr(c->pattern, '*') != NULL; }

ssmlm_status ssmlm_model_prefill(ssmlm_model *m, ssmlm_state *s, const int32_t *ids, int64_t T, void *logits) {
    if (s->model != m) return ssmlm_fail(SSMLM_ERR_INVALID, "create the state from this model", "state belongs to another model");
    if (T < 1) return ssmlm_fail(SSMLM_ERR_INVALID, "give at least one prompt token", "empty prompt");
    if (has_attention(&m->cfg) && T > s->cap)
        return ssmlm_fail(SSMLM_ERR_INVALID, "create the state with a larger capacity",
                          "prompt of %lld tokens exceeds the state's context capacity %lld", (long long)T, (long long)s->cap);
    ssmlm_status st = check_ids(m, ids, s->B * T);
    if (st != SSMLM_OK) return st;
    return m->dtype == SSMLM_F64 ? ssmlm_model_prefill_f64(m, s, ids, T, logits)
                                 : ssmlm_model_prefill_f32(m, s, ids, T, logits);
}

ssmlm_status ssmlm_model_prefill_one(ssmlm_model *m, ssmlm_state *s, int64_t b, const int32_t *ids, int64_t T,
                                     void *logits) {
    if (s->model != m) return ssmlm_fail(SSMLM_ERR_INVALID, "create the state from this model", "state belongs to another model");
    if (b < 0 || b >= s->B)
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "sequence %lld is outside the state's batch of %lld", (long long)b,
                          (long long)s->B);
    if (T < 1) return ssmlm_fail(SSMLM_ERR_INVALID, "give at least one prompt token", "empty prompt");
    if (has_attention(&m->cfg) && T > s->cap)
        return ssmlm_fail(SSMLM_ERR_INVALID, "create the state with a larger capacity",
                          "prompt of %lld tokens exceeds the state's context capacity %lld", (long long)T, (long long)s->cap);
    ssmlm_status st = check_ids(m, ids, T);
    if (st != SSMLM_OK) return st;
    return m->dtype == SSMLM_F64 ? ssmlm_model_prefill_one_f64(m, s, b, ids, T, logits)
                                 : ssmlm_model_prefill_one_f32(m, s, b, ids, T, logits);
}

ssmlm_status ssmlm_model_step(ssmlm_model *m, ssmlm_state *s, const int32_t *ids, void *logits) {
    if (s->model != m) return ssmlm_fail(SSMLM_ERR_INVALID, "create the state from this model", "state belongs to another model");
    for (int64_t b = 0; b < s->B && has_attention(&m->cfg); b++)
        if (s->pos[b] >= s->cap)
            return ssmlm_fail(SSMLM_ERR_INVALID, "create the state with a larger capacity",
                              "sequence %lld is at its context capacity %lld", (long long)b, (long long)s->cap);
    ssmlm_status st = check_ids(m, ids, s->B);
    if (st != SSMLM_OK) return st;
    return m->dtype == SSMLM_F64 ? ssmlm_model_step_f64(m, s, ids, logits) : ssmlm_model_step_f32(m, s, ids, logits);
}

/* forward.c — model forward and backward over the layer pattern (compiled for fp32 and fp64).
 *   resid_0 = E[ids];  resid_{l+1} = resid_l + layer_l(norm_l(resid_l));
 *   logits = norm_f(resid_L) W_lm^T;  loss = mean cross-entropy over non-ignored labels.
 * A bf16-weight model's matrices reach the layers and the LM head as bf16 pointers, which the
 * linear kernels recognise (src/kernels/bf16.h); the embedding lookup widens its rows here.
 * Activation arena (one allocation, re-planned when B or T change):
 *   resid [L+1][BT D] | norm stats [L][2 BT] | layer acts | hn [BT D] | final stats [2 BT] |
 *   logits [BT V] | scratch (max over layers) | 4 work buffers [BT D]. */
#include "kernels/bf16.h"
#include "layers/layers.h"
#include "model/model.h"
#include <string.h>

typedef RNAME(layer_ops) layer_ops;

static const layer_ops *ops_of(const ssmlm_config *c, int l) { return RNAME(layer_ops_of)(c, c->pattern[l]); }

/* Slot pointer arrays of layer l (parameters or gradients). */
static void layer_slots(ssmlm_model *m, int l, real **w, real **g) {
    for (int s = 0; s < SSMLM_MAX_SLOTS; s++) {
        int i = m->slot_index[l * SSMLM_MAX_SLOTS + s];
        if (w) w[s] = (real *)model_w(m, i);
        if (g) g[s] = (real *)model_g(m, i);
    }
}

/* x[i] = E[ids[i]] for n tokens: x [n, D].  A bf16 table (bf16-weight models) is widened. */
static void embed_rows(const ssmlm_model *m, real *x, const int32_t *ids, int64_t n, int64_t D) {
    int e = m->global_index[GLOBAL_EMBED];
    if (m->params[e].bf16) {
        const uint16_t *E = model_w(m, e);
#pragma omp parallel for schedule(static) if (n * D > (1 << 16))
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < D; j++) x[i * D + j] = bf16_to_f32(E[(int64_t)ids[i] * D + j]);
        return;
    }
    const real *E = model_w(m, e);
#pragma omp parallel for schedule(static) if (n * D > (1 << 16))
    for (int64_t i = 0; i < n; i++) memcpy(x + i * D, E + (int64_t)ids[i] * D, (size_t)D * sizeof(real));
}

/* Elements of the activation arena for B x T tokens (layout in the file header). */
int64_t RNAME(model_acts_numel)(const ssmlm_config *c, int64_t B, int64_t T) {
    int64_t BT = B * T, D = c->d_model, V = ssmlm_config_vocab_padded(c), L = c->n_layer;
    int64_t off = (L + 1) * BT * D + L * 2 * BT, scratch = 0;
    for (int l = 0; l < L; l++) {
        const layer_ops *o = ops_of(c, l);
        off += (o->acts_size(c, B, T) + 15) / 16 * 16;
        int64_t s = o->scratch_size(c, B, T);
        scratch = s > scratch ? s : scratch;
    }
    return off + BT * D + 2 * BT + BT * V + scratch + 4 * BT * D;
}

typedef struct plan {
    int64_t BT, D, V, L;
    real *resid, *stats, *hn, *fstats, *logits, *scratch, *work;
} plan;

static ssmlm_status plan_acts(ssmlm_model *m, int64_t B, int64_t T, plan *p) {
    const ssmlm_config *c = &m->cfg;
    p->BT = B * T;
    p->D = c->d_model;
    p->V = ssmlm_config_vocab_padded(c);
    p->L = c->n_layer;
    if (!m->acts || m->act_B != B || m->act_T != T) {
        ssmlm_free(m->acts);
        m->acts = NULL;
        free(m->layer_act_off);
        m->layer_act_off = malloc((size_t)p->L * sizeof(int64_t));
        if (!m->layer_act_off) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory");
        int64_t off = (p->L + 1) * p->BT * p->D + p->L * 2 * p->BT, scratch = 0;
        for (int l = 0; l < p->L; l++) {
            const layer_ops *o = ops_of(c, l);
            m->layer_act_off[l] = off;
            off += (o->acts_size(c, B, T) + 15) / 16 * 16;
            int64_t s = o->scratch_size(c, B, T);
            scratch = s > scratch ? s : scratch;
        }
        m->scratch_numel = scratch;
        int64_t total = RNAME(model_acts_numel)(c, B, T);
        m->acts_bytes = (size_t)total * sizeof(real);
        m->acts = ssmlm_alloc(m->acts_bytes);
        if (!m->acts)
            return ssmlm_fail(SSMLM_ERR_MEMORY, "use a smaller batch or sequence length",
                              "cannot allocate %.2f GB of activations for %lld x %lld tokens",
                              (double)m->acts_bytes / 1e9, (long long)B, (long long)T);
        m->act_B = B;
        m->act_T = T;
    }
    real *a = m->acts;
    p->resid = a;
    p->stats = a + (p->L + 1) * p->BT * p->D;
    int64_t end = p->L > 0 ? m->layer_act_off[p->L - 1] + (ops_of(c, (int)p->L - 1)->acts_size(c, B, T) + 15) / 16 * 16
                           : (p->L + 1) * p->BT * p->D;
    p->hn = a + end;
    p->fstats = p->hn + p->BT * p->D;
    p->logits = p->fstats + 2 * p->BT;
    p->scratch = p->logits + p->BT * p->V;
    p->work = p->scratch + m->scratch_numel;
    return SSMLM_OK;
}

/* Pre-norm of a layer or the final norm: y = norm(x) with stats [2 BT] saved. */
static void norm_fwd(const ssmlm_config *c, real *y, real *stats, const real *x, const real *w,
                     const real *b, int64_t M, int64_t D) {
    if (c->norm_kind == SSMLM_NORM_LAYER)
        RNAME(layernorm_forward)(y, stats, stats + M, x, w, b, M, D, c->norm_eps,
                                 c->norm_zero_centered ? 1 : 0);
    else
        RNAME(rmsnorm_forward)(y, stats, x, w, M, D, D, c->norm_eps);
}

static void norm_bwd(const ssmlm_config *c, real *dx, real *dw, real *db, const real *dy,
                     const real *x, const real *stats, const real *w, int64_t M, int64_t D) {
    if (c->norm_kind == SSMLM_NORM_LAYER)
        RNAME(layernorm_backward)(dx, dw, db, dy, x, stats, stats + M, w, M, D,
                                  c->norm_zero_centered ? 1 : 0);
    else
        RNAME(rmsnorm_backward)(dx, dw, dy, x, stats, w, M, D, D);
}

/* Forward over B x T tokens with the model's segment ids (m->seg, checked by the caller); with
 * st != NULL every layer also writes its state after the last token into st, for the B
 * sequences starting at state slot b0 (prefill, which uses no segments). */
static ssmlm_status forward_impl(ssmlm_model *m, const int32_t *ids, const int32_t *labels,
                                 int64_t B, int64_t T, void *logits_out, double *loss,
                                 ssmlm_state *st, int64_t b0) {
    const ssmlm_config *c = &m->cfg;
    plan p;
    ssmlm_status s = plan_acts(m, B, T, &p);
    if (s != SSMLM_OK) return s;
    int64_t BT = p.BT, D = p.D, V = p.V;
    free(m->ids);
    free(m->labels);
    m->ids = malloc((size_t)BT * sizeof(int32_t));
    m->labels = labels ? malloc((size_t)BT * sizeof(int32_t)) : NULL;
    if (!m->ids || (labels && !m->labels)) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory");
    memcpy(m->ids, ids, (size_t)BT * sizeof(int32_t));
    if (labels) memcpy(m->labels, labels, (size_t)BT * sizeof(int32_t));
    /* the segments of this forward, kept for its backward */
    free(m->fwd_seg);
    m->fwd_seg = NULL;
    if (m->seg && !st) {
        SSMLM_ASSERT(m->seg_n == BT);
        m->fwd_seg = malloc((size_t)BT * sizeof(int32_t));
        if (!m->fwd_seg) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory");
        memcpy(m->fwd_seg, m->seg, (size_t)BT * sizeof(int32_t));
    }

    embed_rows(m, p.resid, ids, BT, D);

    real *normed = p.work, *y = p.work + BT * D;
    real *w[SSMLM_MAX_SLOTS];
    for (int l = 0; l < p.L; l++) {
        layer_slots(m, l, w, NULL);
        real *x = p.resid + l * BT * D, *xn = p.resid + (l + 1) * BT * D;
        norm_fwd(c, normed, p.stats + l * 2 * BT, x, w[SLOT_NORM_W], w[SLOT_NORM_B], BT, D);
        real *state1 = st ? (real *)st->data + st->layer_off[l] + b0 * model_layer_state_size(c, l, st->cap) : NULL;
        ops_of(c, l)->forward(c, w, B, T, m->fwd_seg, normed, y, (real *)m->acts + m->layer_act_off[l],
                              p.scratch, NULL, state1, st ? st->cap : 0);
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < BT * D; i++) xn[i] = x[i] + y[i];
    }
    norm_fwd(c, p.hn, p.fstats, p.resid + p.L * BT * D, model_w(m, m->global_index[GLOBAL_NORM_W]),
             model_w(m, m->global_index[GLOBAL_NORM_B]), BT, D);
    int lm = m->global_index[c->tie_embeddings ? GLOBAL_EMBED : GLOBAL_LM_HEAD];
    RNAME(linear_forward)(p.logits, p.hn, model_w(m, lm), NULL, BT, V, D);
    if (logits_out) memcpy(logits_out, p.logits, (size_t)(BT * V) * sizeof(real));
    m->have_forward = 1;
    m->loss_count = 0;
    if (labels) {
        int64_t count = 0;
        double total = RNAME(cross_entropy)(NULL, p.logits, labels, BT, V, 1, &count);
        m->loss_count = count;
        if (loss) *loss = count ? total / (double)count : 0;
    } else if (loss) {
        *loss = 0;
    }
    return SSMLM_OK;
}

ssmlm_status RNAME(ssmlm_model_forward)(ssmlm_model *m, const int32_t *ids, const int32_t *labels,
                                        int64_t B, int64_t T, void *logits_out, double *loss) {
    return forward_impl(m, ids, labels, B, T, logits_out, loss, NULL, 0);
}

ssmlm_status RNAME(ssmlm_model_prefill)(ssmlm_model *m, ssmlm_state *s, const int32_t *ids, int64_t T,
                                        void *logits) {
    ssmlm_status st = forward_impl(m, ids, NULL, s->B, T, logits, NULL, s, 0);
    if (st == SSMLM_OK)
        for (int64_t b = 0; b < s->B; b++) s->pos[b] = T;
    m->have_forward = 0; /* no labels: nothing for backward */
    return st;
}

ssmlm_status RNAME(ssmlm_model_prefill_one)(ssmlm_model *m, ssmlm_state *s, int64_t b, const int32_t *ids,
                                            int64_t T, void *logits) {
    ssmlm_status st = forward_impl(m, ids, NULL, 1, T, logits, NULL, s, b);
    if (st == SSMLM_OK) s->pos[b] = T;
    m->have_forward = 0;
    return st;
}

int64_t RNAME(model_step_scratch)(const ssmlm_config *c, int64_t B) {
    int64_t mx = 0;
    for (int l = 0; l < c->n_layer; l++) {
        int64_t v = ops_of(c, l)->scratch_size(c, B, 1);
        mx = v > mx ? v : mx;
    }
    return mx;
}

/* x = E[ids]; per layer x += step(norm(x)); logits = norm_f(x) W^T. */
ssmlm_status RNAME(ssmlm_model_step)(ssmlm_model *m, ssmlm_state *s, const int32_t *ids, void *logits) {
    const ssmlm_config *c = &m->cfg;
    int64_t B = s->B, D = c->d_model, V = ssmlm_config_vocab_padded(c);
    real *x = s->work, *normed = x + B * D, *y = normed + B * D, *hn = y + B * D, *stats = hn + B * D,
         *scratch = stats + 2 * B;
    embed_rows(m, x, ids, B, D);
    real *w[SSMLM_MAX_SLOTS];
    for (int l = 0; l < c->n_layer; l++) {
        layer_slots(m, l, w, NULL);
        norm_fwd(c, normed, stats, x, w[SLOT_NORM_W], w[SLOT_NORM_B], B, D);
        ops_of(c, l)->step(c, w, B, normed, y, (real *)s->data + s->layer_off[l], s->pos, s->cap, scratch);
        for (int64_t i = 0; i < B * D; i++) x[i] += y[i];
    }
    norm_fwd(c, hn, stats, x, model_w(m, m->global_index[GLOBAL_NORM_W]),
             model_w(m, m->global_index[GLOBAL_NORM_B]), B, D);
    if (logits) {
        int lm = m->global_index[c->tie_embeddings ? GLOBAL_EMBED : GLOBAL_LM_HEAD];
        RNAME(linear_forward)(logits, hn, model_w(m, lm), NULL, B, V, D);
    }
    for (int64_t b = 0; b < B; b++) s->pos[b]++;
    return SSMLM_OK;
}

ssmlm_status RNAME(ssmlm_model_backward)(ssmlm_model *m, int accumulate) {
    (void)accumulate;
    const ssmlm_config *c = &m->cfg;
    plan p;
    ssmlm_status s = plan_acts(m, m->act_B, m->act_T, &p);
    if (s != SSMLM_OK) return s;
    int64_t B = m->act_B, T = m->act_T, BT = p.BT, D = p.D, V = p.V;
    real *dres = p.work, *normed = p.work + BT * D, *dnormed = p.work + 2 * BT * D,
         *dx = p.work + 3 * BT * D;
    /* d logits = (softmax - onehot) / count, in place over the saved logits */
    real scale = m->loss_count ? (real)1 / (real)m->loss_count : 0;
    RNAME(cross_entropy)(p.logits, p.logits, m->labels, BT, V, scale, NULL);
    m->have_forward = 0; /* logits consumed */
    int lm = m->global_index[c->tie_embeddings ? GLOBAL_EMBED : GLOBAL_LM_HEAD];
    RNAME(linear_backward)(dnormed, model_g(m, lm), NULL, p.logits, p.hn, model_w(m, lm), BT, V, D, 0);
    int nw = m->global_index[GLOBAL_NORM_W], nb = m->global_index[GLOBAL_NORM_B];
    norm_bwd(c, dres, model_g(m, nw), model_g(m, nb), dnormed, p.resid + p.L * BT * D, p.fstats,
             model_w(m, nw), BT, D);

    real *w[SSMLM_MAX_SLOTS], *g[SSMLM_MAX_SLOTS];
    for (int l = (int)p.L - 1; l >= 0; l--) {
        layer_slots(m, l, w, g);
        const real *x = p.resid + l * BT * D, *st = p.stats + l * 2 * BT;
        norm_fwd(c, normed, (real *)st, x, w[SLOT_NORM_W], w[SLOT_NORM_B], BT, D);
        ops_of(c, l)->backward(c, w, g, B, T, m->fwd_seg, normed, (real *)m->acts + m->layer_act_off[l],
                               dres, dnormed, p.scratch);
        norm_bwd(c, dx, g[SLOT_NORM_W], g[SLOT_NORM_B], dnormed, x, st, w[SLOT_NORM_W], BT, D);
        RNAME(vec_add)(dres, dx, BT * D);
    }
    /* embedding: scatter-add of the row gradients (serial over tokens: rows may repeat) */
    real *gE = model_g(m, m->global_index[GLOBAL_EMBED]);
    for (int64_t i = 0; i < BT; i++) {
        real *row = gE + (int64_t)m->ids[i] * D;
        const real *d = dres + i * D;
        for (int64_t j = 0; j < D; j++) row[j] += d[j];
    }
    return SSMLM_OK;
}

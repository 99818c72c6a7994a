/* test_num_segments.c — documents packed into one row with segment ids.  For every layer kind
 * (Mamba-1, Mamba-2, attention with and without conv/rotary, MLP) and for whole tiny models of
 * each family, a packed batch gives the outputs of running each document alone from a fresh
 * state, and gradients equal to the sum of the per-document gradients; the same run without
 * segment ids must differ (the comparison can fail).  seg == NULL is bit-identical to all-zero
 * ids.  fp64: finite differences of the layer backward passes and of the SSD / selective-scan
 * kernels (initial and final states included) with segments; chunked SSD == recurrence with
 * segments (also where wide decay ranges cut the chunks).  Invalid ids are clear errors. */
#include "golden.h"
#include "kernels/scan.h"
#include "kernels/ssd.h"
#include "model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL_FWD (REAL_IS_F64 ? 1e-9 : 2e-4)
#define TOL_GRAD (REAL_IS_F64 ? 1e-9 : 2e-3)

static real *zeros(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(real)); }

static real *randoms(int64_t n, double a, uint64_t *seed) {
    real *x = zeros(n);
    fill_uniform(x, n, a, seed);
    return x;
}

static double max_abs_diff(const real *a, const real *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

static double max_abs(const real *a, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i]));
    return m;
}

/* ---- segment layouts ------------------------------------------------------------------- */

/* Document lengths of each row (0-terminated lists); ids are 3 d + 2 for document d of a row
 * (any non-decreasing numbering works; only equality matters). */
typedef struct layout {
    int64_t B, T;
    const int64_t *rows[4];
} layout;

static int32_t *layout_seg(const layout *L) {
    int32_t *seg = malloc((size_t)(L->B * L->T) * sizeof(int32_t));
    for (int64_t b = 0; b < L->B; b++) {
        int64_t t = 0;
        for (int d = 0; L->rows[b][d]; d++)
            for (int64_t i = 0; i < L->rows[b][d]; i++, t++) seg[b * L->T + t] = 3 * d + 2;
        SSMLM_ASSERT(t == L->T);
    }
    return seg;
}

/* Iterates the documents: row b, first token t0, length n. */
typedef struct doc_iter {
    const layout *L;
    int64_t b, d, t0, n;
} doc_iter;

static int doc_next(doc_iter *it) {
    if (it->n == 0 && it->b == 0 && it->d == 0) {
        it->t0 = 0;
    } else {
        it->t0 += it->n;
        it->d++;
        if (!it->L->rows[it->b][it->d]) {
            it->b++;
            it->d = 0;
            it->t0 = 0;
        }
    }
    if (it->b >= it->L->B) return 0;
    it->n = it->L->rows[it->b][it->d];
    return 1;
}

/* Rows: {5, 1, 17, 9} and {16, 3, 13}: with chunks of 8 or 16, boundaries inside chunks,
 * across them and exactly at a chunk start, and a 1-token document. */
static const int64_t k_row_a[] = {5, 1, 17, 9, 0};
static const int64_t k_row_b[] = {16, 3, 13, 0};
/* Odd shapes: T = 37 and T = 45 (across the selective scan's 32-token chunk). */
static const int64_t k_row_c[] = {7, 1, 9, 13, 7, 0};
static const int64_t k_row_d[] = {1, 8, 28, 0};
static const int64_t k_row_e[] = {32, 1, 12, 0};
static const int64_t k_row_f[] = {3, 29, 13, 0};
/* Longer rows for attention: several query strips of 64 rows, a strip starting mid-document. */
static const int64_t k_row_g[] = {70, 1, 40, 29, 0};
static const int64_t k_row_h[] = {64, 64, 12, 0};
/* States: last documents shorter than the conv width; rows shorter than it. */
static const int64_t k_row_i[] = {7, 1, 9, 17, 2, 1, 0};
static const int64_t k_row_j[] = {1, 8, 26, 2, 0};
static const int64_t k_row_k[] = {2, 1, 0};
static const int64_t k_row_l[] = {3, 0};

/* ---- one layer of a model, driven through the layer API -------------------------------- */

typedef struct lyr {
    ssmlm_config c;
    ssmlm_model *m; /* owns the parameters */
    const RNAME(layer_ops) *f;
    int64_t ss;     /* state size per sequence (Mamba) */
    real *w[SSMLM_MAX_SLOTS], *gw[SSMLM_MAX_SLOTS];
    int64_t numel[SSMLM_MAX_SLOTS];
} lyr;

/* Layer 0 of a one-layer model of config c, parameters initialized and perturbed (norms, D and
 * biases away from their constants). */
static int lyr_make(lyr *L, const ssmlm_config *c, uint64_t seed) {
    memset(L, 0, sizeof *L);
    L->c = *c;
    ssmlm_status s = ssmlm_model_create(&L->m, c, REAL_IS_F64 ? SSMLM_F64 : SSMLM_F32);
    CHECK(s == SSMLM_OK, "create %s: %s", c->name, ssmlm_last_error());
    if (s != SSMLM_OK) return 0;
    ssmlm_model_init(L->m, seed);
    L->f = RNAME(layer_ops_of)(c, c->pattern[0]);
    if (c->pattern[0] == 'M')
        L->ss = c->ssm_kind == SSMLM_SSM_MAMBA1 ? ssmlm_mamba1_state_size(c) : ssmlm_mamba2_state_size(c);
    for (int sl = 2; sl < SSMLM_MAX_SLOTS; sl++) {
        int i = L->m->slot_index[sl];
        if (i < 0) continue;
        L->w[sl] = model_w(L->m, i);
        L->numel[sl] = L->m->params[i].info.numel;
        L->gw[sl] = zeros(L->numel[sl]);
        real *noise = randoms(L->numel[sl], 0.1, &seed);
        for (int64_t j = 0; j < L->numel[sl]; j++) L->w[sl][j] += noise[j];
        free(noise);
    }
    return 1;
}

static void lyr_free(lyr *L) {
    for (int sl = 0; sl < SSMLM_MAX_SLOTS; sl++) free(L->gw[sl]);
    ssmlm_model_free(L->m);
}

static void lyr_zero_grads(lyr *L) {
    for (int sl = 0; sl < SSMLM_MAX_SLOTS; sl++)
        if (L->gw[sl]) memset(L->gw[sl], 0, (size_t)L->numel[sl] * sizeof(real));
}

/* Copies of all parameter gradients, one after another. */
static int64_t lyr_grad_numel(const lyr *L) {
    int64_t n = 0;
    for (int sl = 0; sl < SSMLM_MAX_SLOTS; sl++) n += L->gw[sl] ? L->numel[sl] : 0;
    return n;
}
static void lyr_grads_copy(const lyr *L, real *dst) {
    for (int sl = 0; sl < SSMLM_MAX_SLOTS; sl++)
        if (L->gw[sl]) {
            memcpy(dst, L->gw[sl], (size_t)L->numel[sl] * sizeof(real));
            dst += L->numel[sl];
        }
}

/* Forward (and backward if dy) of B x T tokens; y [B T D]; dx, grads accumulated in L->gw. */
static void lyr_run(lyr *L, int64_t B, int64_t T, const int32_t *seg, const real *x, real *y,
                    const real *dy, real *dx, const real *state0, real *state1) {
    real *acts = zeros(L->f->acts_size(&L->c, B, T));
    real *scratch = zeros(L->f->scratch_size(&L->c, B, T));
    L->f->forward(&L->c, L->w, B, T, seg, x, y, acts, scratch, state0, state1, 0);
    if (dy) L->f->backward(&L->c, L->w, L->gw, B, T, seg, x, acts, dy, dx, scratch);
    free(acts);
    free(scratch);
}

/* Packed run with segments == each document alone (outputs, input gradients, summed parameter
 * gradients); without segments the outputs differ (except for the MLP); seg == NULL and all-zero
 * ids give the same bits. */
static void layer_packed_vs_docs(lyr *L, const char *what, const layout *lay, uint64_t seed) {
    const int64_t B = lay->B, T = lay->T, D = L->c.d_model, n = B * T * D, ng = lyr_grad_numel(L);
    int32_t *seg = layout_seg(lay);
    real *x = randoms(n, 1.0, &seed), *dy = randoms(n, 1.0, &seed);
    real *y = zeros(n), *dx = zeros(n), *ys = zeros(n), *dxs = zeros(n);
    real *g = zeros(ng), *gs = zeros(ng);
    char msg[160];

    lyr_zero_grads(L);
    lyr_run(L, B, T, seg, x, y, dy, dx, NULL, NULL);
    lyr_grads_copy(L, g);
    lyr_zero_grads(L);
    doc_iter it = {lay, 0, 0, 0, 0};
    while (doc_next(&it)) {
        const int64_t off = (it.b * T + it.t0) * D;
        lyr_run(L, 1, it.n, NULL, x + off, ys + off, dy + off, dxs + off, NULL, NULL);
    }
    lyr_grads_copy(L, gs);
    snprintf(msg, sizeof msg, "%s: packed outputs == documents alone", what);
    golden_compare(msg, y, ys, n, TOL_FWD);
    snprintf(msg, sizeof msg, "%s: packed dx == documents alone", what);
    golden_compare(msg, dx, dxs, n, TOL_GRAD);
    snprintf(msg, sizeof msg, "%s: packed parameter gradients == sum over documents", what);
    golden_compare(msg, g, gs, ng, TOL_GRAD);

    /* without segments the documents see each other: the comparison above can fail */
    real *y0 = zeros(n);
    lyr_run(L, B, T, NULL, x, y0, NULL, NULL, NULL, NULL);
    double leak = max_abs_diff(y0, ys, n) / fmax(max_abs(ys, n), 1e-30);
    if (L->c.pattern[0] == '+')
        CHECK(leak <= TOL_FWD, "%s: the MLP ignores segments (%.3g)", what, leak);
    else
        CHECK(leak > 100 * TOL_FWD, "%s: without segments the outputs should differ (%.3g)", what,
              leak);

    /* seg == NULL and all-zero ids: identical bits */
    int32_t *zseg = calloc((size_t)(B * T), sizeof(int32_t));
    real *y1 = zeros(n), *dx0 = zeros(n), *dx1 = zeros(n), *g0 = zeros(ng), *g1 = zeros(ng);
    lyr_zero_grads(L);
    lyr_run(L, B, T, NULL, x, y0, dy, dx0, NULL, NULL);
    lyr_grads_copy(L, g0);
    lyr_zero_grads(L);
    lyr_run(L, B, T, zseg, x, y1, dy, dx1, NULL, NULL);
    lyr_grads_copy(L, g1);
    CHECK(memcmp(y0, y1, (size_t)n * sizeof(real)) == 0, "%s: y with seg NULL != all-zero seg", what);
    CHECK(memcmp(dx0, dx1, (size_t)n * sizeof(real)) == 0, "%s: dx with seg NULL != all-zero seg", what);
    CHECK(memcmp(g0, g1, (size_t)ng * sizeof(real)) == 0, "%s: grads with seg NULL != all-zero seg", what);

    free(zseg);
    free(y0);
    free(y1);
    free(dx0);
    free(dx1);
    free(g0);
    free(g1);
    free(seg);
    free(x);
    free(dy);
    free(y);
    free(dx);
    free(ys);
    free(dxs);
    free(g);
    free(gs);
}

/* Mamba layers with states: the row's first document continues state0, the others start
 * fresh, and state1 is the state after the last document alone. */
static void layer_states(lyr *L, const char *what, const layout *lay, uint64_t seed) {
    const int64_t B = lay->B, T = lay->T, D = L->c.d_model, n = B * T * D, ss = L->ss;
    int32_t *seg = layout_seg(lay);
    real *x = randoms(n, 1.0, &seed), *s0 = randoms(B * ss, 1.0, &seed);
    real *y = zeros(n), *ys = zeros(n), *s1 = zeros(B * ss), *s1s = zeros(B * ss);
    real *tmp = zeros(ss);
    char msg[160];
    lyr_run(L, B, T, seg, x, y, NULL, NULL, s0, s1);
    doc_iter it = {lay, 0, 0, 0, 0};
    while (doc_next(&it)) {
        const int64_t off = (it.b * T + it.t0) * D;
        int last = !lay->rows[it.b][it.d + 1];
        lyr_run(L, 1, it.n, NULL, x + off, ys + off, NULL, NULL, it.d == 0 ? s0 + it.b * ss : NULL,
                last ? s1s + it.b * ss : tmp);
    }
    snprintf(msg, sizeof msg, "%s: packed from state0 == documents alone", what);
    golden_compare(msg, y, ys, n, TOL_FWD);
    snprintf(msg, sizeof msg, "%s: final state == last document's", what);
    golden_compare(msg, s1, s1s, B * ss, TOL_FWD);
    free(seg);
    free(x);
    free(s0);
    free(y);
    free(ys);
    free(s1);
    free(s1s);
    free(tmp);
}

#if REAL_IS_F64
typedef struct lyr_fd {
    lyr *L;
    int64_t B, T;
    const int32_t *seg;
    real *x, *dy, *y;
} lyr_fd;

/* loss = sum(y dy) */
static double lyr_fd_loss(void *p) {
    lyr_fd *c = p;
    lyr_run(c->L, c->B, c->T, c->seg, c->x, c->y, NULL, NULL, NULL, NULL);
    double s = 0;
    for (int64_t i = 0; i < c->B * c->T * c->L->c.d_model; i++) s += (double)c->y[i] * c->dy[i];
    return s;
}

/* Finite differences of the layer backward with segments: x and every parameter. */
static void layer_fd(lyr *L, const char *what, const layout *lay, uint64_t seed) {
    const int64_t B = lay->B, T = lay->T, n = B * T * L->c.d_model;
    int32_t *seg = layout_seg(lay);
    lyr_fd c = {L, B, T, seg, randoms(n, 1.0, &seed), randoms(n, 1.0, &seed), zeros(n)};
    real *dx = zeros(n);
    char msg[160];
    lyr_zero_grads(L);
    lyr_run(L, B, T, seg, c.x, c.y, c.dy, dx, NULL, NULL);
    snprintf(msg, sizeof msg, "%s FD dx", what);
    fd_check(msg, c.x, dx, n, lyr_fd_loss, &c, 40, 1e-6);
    for (int sl = 2; sl < SSMLM_MAX_SLOTS; sl++) {
        if (!L->gw[sl]) continue;
        snprintf(msg, sizeof msg, "%s FD %s", what, L->m->params[L->m->slot_index[sl]].info.name);
        fd_check(msg, L->w[sl], L->gw[sl], L->numel[sl], lyr_fd_loss, &c, 12, 1e-6);
    }
    free(seg);
    free(c.x);
    free(c.dy);
    free(c.y);
    free(dx);
}
#endif

/* ---- layer configs ---------------------------------------------------------------------- */

static void cfg_base(ssmlm_config *c, const char *name, const char *pattern, int64_t d) {
    ssmlm_config_defaults(c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->d_model = d;
    c->vocab_size = 16;
    strcpy(c->pattern, pattern);
    c->n_layer = (int64_t)strlen(pattern);
}

static void cfg_mamba1(ssmlm_config *c) {
    cfg_base(c, "mamba1 layer", "M", 10);
    c->ssm_kind = SSMLM_SSM_MAMBA1;
    c->m1_d_state = 5;
    c->m1_d_conv = 4;
    c->m1_expand = 2; /* E = 20: a full and a partial channel block */
    c->m1_dt_rank = 3;
    c->m1_conv_bias = 1;
}

static void cfg_mamba2(ssmlm_config *c, int wide_decay) {
    cfg_base(c, wide_decay ? "mamba2 layer (wide decay)" : "mamba2 layer", "M", 12);
    c->ssm_kind = SSMLM_SSM_MAMBA2;
    c->m2_d_state = 5;
    c->m2_d_conv = 4;
    c->m2_expand = 2;
    c->m2_headdim = 6; /* H = 4 */
    c->m2_ngroups = 2;
    c->m2_chunk_size = 8;
    c->m2_conv_bias = 1;
}

/* Every group gets a slow head (dt ~ 1, A = -0.01) and a fast one (dt ~ 8, A = -64: a decay
 * of ~500 per token, beyond exp's range over a chunk): chunks are then also cut where the decay
 * range is wide, while the slow heads keep a long memory (and gradients of A far above the
 * rounding floor). */
static void m2_wide_decay(lyr *L) {
    const int64_t H = ssmlm_m2_nheads(&L->c);
    for (int64_t h = 0; h < H; h++) {
        const double dt = h % 2 ? 8.0 : 1.0;
        L->w[M2_A_LOG][h] = (real)log(h % 2 ? 64.0 : 0.01);
        L->w[M2_DT_BIAS][h] = (real)(dt + log(-expm1(-dt))); /* inverse softplus */
    }
}

static void cfg_attention(ssmlm_config *c, int conv_rope) {
    cfg_base(c, conv_rope ? "attention layer (conv, rotary)" : "attention layer", "*", 12);
    c->attn_heads = 4;
    c->attn_kv_heads = 2;
    c->attn_head_dim = 5;
    c->attn_rotary_dim = conv_rope ? 4 : 0;
    c->attn_d_conv = conv_rope ? 3 : 0;
    c->attn_qkv_bias = conv_rope;
    c->attn_out_bias = conv_rope;
}

static void cfg_mlp(ssmlm_config *c) {
    cfg_base(c, "mlp layer", "+", 12);
    c->mlp_hidden = 20;
    c->mlp_act = SSMLM_ACT_SWIGLU;
}

static void test_layers(void) {
    const layout lay32 = {2, 32, {k_row_a, k_row_b}};
    const layout lay37 = {2, 37, {k_row_c, k_row_d}};
    const layout lay45 = {2, 45, {k_row_e, k_row_f}};
    const layout lay140 = {2, 140, {k_row_g, k_row_h}};
    const layout lay_st = {2, 37, {k_row_i, k_row_j}}, lay_st3 = {2, 3, {k_row_k, k_row_l}};
    ssmlm_config c;
    lyr L;

    cfg_mamba1(&c);
    if (lyr_make(&L, &c, 11)) {
        layer_packed_vs_docs(&L, "mamba1 T=32", &lay32, 1);
        layer_packed_vs_docs(&L, "mamba1 T=45", &lay45, 2);
        layer_states(&L, "mamba1 T=45", &lay45, 3);
        layer_states(&L, "mamba1 T=37", &lay_st, 3);
        layer_states(&L, "mamba1 T=3", &lay_st3, 3);
#if REAL_IS_F64
        layer_fd(&L, "mamba1 T=45", &lay45, 4);
#endif
        lyr_free(&L);
    }
    for (int wide = 0; wide <= 1; wide++) {
        cfg_mamba2(&c, wide);
        if (!lyr_make(&L, &c, 12)) continue;
        if (wide) m2_wide_decay(&L);
        layer_packed_vs_docs(&L, c.name, &lay32, 5);
        layer_packed_vs_docs(&L, c.name, &lay37, 6);
        layer_states(&L, c.name, &lay37, 7);
        layer_states(&L, c.name, &lay_st, 7);
        layer_states(&L, c.name, &lay_st3, 7);
#if REAL_IS_F64
        layer_fd(&L, c.name, &lay37, 8);
#endif
        lyr_free(&L);
    }
    for (int cr = 0; cr <= 1; cr++) {
        cfg_attention(&c, cr);
        if (!lyr_make(&L, &c, 13)) continue;
        layer_packed_vs_docs(&L, c.name, &lay37, 9);
        layer_packed_vs_docs(&L, c.name, &lay140, 10);
#if REAL_IS_F64
        layer_fd(&L, c.name, &lay37, 11);
        layer_fd(&L, c.name, &lay140, 12);
#endif
        lyr_free(&L);
    }
    cfg_mlp(&c);
    if (lyr_make(&L, &c, 14)) {
        layer_packed_vs_docs(&L, "mlp", &lay37, 12);
        lyr_free(&L);
    }
}

/* ---- SSD kernel: chunked == recurrence with segments; finite differences ---------------- */

typedef struct ssd_prob {
    ssd_dims d;
    real *x, *dt, *A, *Bm, *Cm, *D, *s0, *dy, *ds1, *y, *s1, *work;
} ssd_prob;

/* dt uniform in [dt_lo, dt_hi]; A[h] = -a (1 + u/4), u uniform in [-1, 1], with a = a_even for
 * even heads and a_odd for odd ones. */
static void ssd_prob_make(ssd_prob *p, const layout *lay, const int32_t *seg, int64_t H, int64_t P,
                          int64_t G, int64_t N, int64_t Q, double dt_lo, double dt_hi,
                          double a_even, double a_odd, uint64_t seed) {
    const int64_t B = lay->B, T = lay->T;
    p->d = RNAME(ssd_dims_make)(B, T, H, P, G, N, Q);
    p->d.seg = seg;
    p->x = randoms(B * T * H * P, 1.0, &seed);
    p->dt = randoms(B * T * H, 1.0, &seed);
    for (int64_t i = 0; i < B * T * H; i++) p->dt[i] = (real)(dt_lo + (dt_hi - dt_lo) * (0.5 + 0.5 * p->dt[i]));
    p->A = randoms(H, 1.0, &seed);
    for (int64_t h = 0; h < H; h++) p->A[h] = -(real)((h % 2 ? a_odd : a_even) * (1 + p->A[h] / 4));
    p->Bm = randoms(B * T * G * N, 1.0, &seed);
    p->Cm = randoms(B * T * G * N, 1.0, &seed);
    p->D = randoms(H, 1.0, &seed);
    p->s0 = randoms(B * H * P * N, 1.0, &seed);
    p->dy = randoms(B * T * H * P, 1.0, &seed);
    p->ds1 = randoms(B * H * P * N, 1.0, &seed);
    p->y = zeros(B * T * H * P);
    p->s1 = zeros(B * H * P * N);
    int64_t wf = RNAME(ssd_forward_work_size)(&p->d), wb = RNAME(ssd_backward_work_size)(&p->d);
    p->work = zeros(wf > wb ? wf : wb);
}

static void ssd_prob_free(ssd_prob *p) {
    real *a[] = {p->x, p->dt, p->A, p->Bm, p->Cm, p->D, p->s0, p->dy, p->ds1, p->y, p->s1, p->work};
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) free(a[i]);
}

#if REAL_IS_F64
/* loss = sum(y dy) + sum(state1 ds1) of the chunked forward */
static double ssd_loss(void *ctx) {
    ssd_prob *p = ctx;
    const ssd_dims *d = &p->d;
    RNAME(ssd_forward)(d, p->y, p->x, p->dt, p->A, p->Bm, p->Cm, p->D, p->s0, p->s1, p->work);
    double s = 0;
    for (int64_t i = 0; i < d->B * d->T * d->H * d->P; i++) s += (double)p->y[i] * p->dy[i];
    for (int64_t i = 0; i < d->B * d->H * d->P * d->N; i++) s += (double)p->s1[i] * p->ds1[i];
    return s;
}
#endif

static void test_ssd_kernel(const char *what, const layout *lay, int64_t Q, double dt_lo,
                            double dt_hi, double a_even, double a_odd) {
    int32_t *seg = layout_seg(lay);
    ssd_prob p;
    ssd_prob_make(&p, lay, seg, 4, 3, 2, 5, Q, dt_lo, dt_hi, a_even, a_odd, 21);
    const ssd_dims *d = &p.d;
    const int64_t ny = d->B * d->T * d->H * d->P, ns = d->B * d->H * d->P * d->N;
    char msg[160];
    /* chunked == recurrence, both with segments, from state0 */
    real *yr = zeros(ny), *sr = zeros(ns);
    memcpy(sr, p.s0, (size_t)ns * sizeof(real));
    RNAME(ssd_scan)(d, yr, p.x, p.dt, p.A, p.Bm, p.Cm, p.D, sr);
    RNAME(ssd_forward)(d, p.y, p.x, p.dt, p.A, p.Bm, p.Cm, p.D, p.s0, p.s1, p.work);
    snprintf(msg, sizeof msg, "%s: chunked y == recurrence with segments", what);
    golden_compare(msg, p.y, yr, ny, TOL_FWD);
    snprintf(msg, sizeof msg, "%s: chunked final state == recurrence with segments", what);
    golden_compare(msg, p.s1, sr, ns, TOL_FWD);
    /* the recurrence, document by document (state0 for each row's first document only) */
    {
        real *yd = zeros(ny), *st = zeros(d->H * d->P * d->N);
        doc_iter it = {lay, 0, 0, 0, 0};
        while (doc_next(&it)) {
            ssd_dims one = RNAME(ssd_dims_make)(1, it.n, d->H, d->P, d->G, d->N, d->Q);
            const int64_t r = it.b * d->T + it.t0;
            if (it.d == 0)
                memcpy(st, p.s0 + it.b * d->ldst, (size_t)(d->H * d->P * d->N) * sizeof(real));
            else
                memset(st, 0, (size_t)(d->H * d->P * d->N) * sizeof(real));
            RNAME(ssd_scan)(&one, yd + r * d->ldy, p.x + r * d->ldx, p.dt + r * d->H, p.A,
                            p.Bm + r * d->ldbc, p.Cm + r * d->ldbc, p.D, st);
        }
        snprintf(msg, sizeof msg, "%s: recurrence with segments == documents alone", what);
        golden_compare(msg, yr, yd, ny, TOL_FWD);
        free(yd);
        free(st);
    }
#if REAL_IS_F64
    /* backward against finite differences (initial state, final-state cotangent included) */
    {
        const int64_t nx = ny, ndt = d->B * d->T * d->H, nbc = d->B * d->T * d->G * d->N;
        real *dx = zeros(nx), *ddt = zeros(ndt), *dA = zeros(d->H), *dD = zeros(d->H);
        real *dB = zeros(nbc), *dC = zeros(nbc), *ds0 = zeros(ns);
        RNAME(ssd_backward)(d, p.dy, p.ds1, p.x, p.dt, p.A, p.Bm, p.Cm, p.D, p.s0, dx, ddt, dA, dD,
                            dB, dC, ds0, p.work);
        struct { const char *name; real *x, *g; int64_t n; } t[] = {
            {"x", p.x, dx, nx}, {"dt", p.dt, ddt, ndt}, {"A", p.A, dA, d->H}, {"D", p.D, dD, d->H},
            {"B", p.Bm, dB, nbc}, {"C", p.Cm, dC, nbc}, {"state0", p.s0, ds0, ns}};
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
            snprintf(msg, sizeof msg, "%s FD d%s", what, t[i].name);
            fd_check(msg, t[i].x, t[i].g, t[i].n, ssd_loss, &p, 30, 1e-6);
        }
        /* state0 reaches only the first document of each row */
        double far = 0;
        for (int64_t i = 0; i < ns; i++) far = fmax(far, fabs(ds0[i]));
        CHECK(far > 0, "%s: dstate0 is zero", what);
        free(dx);
        free(ddt);
        free(dA);
        free(dD);
        free(dB);
        free(dC);
        free(ds0);
    }
#endif
    free(yr);
    free(sr);
    free(seg);
    ssd_prob_free(&p);
}

/* ---- selective scan kernel: finite differences with segments, h0 and dh1 ---------------- */

typedef struct scan_prob {
    RNAME(scan_m1_io) io;
    real *u, *delta, *A, *Bm, *Cm, *D, *z, *bias, *h0, *dout, *dh1, *out, *h1, *ckpt;
} scan_prob;

static void scan_prob_make(scan_prob *p, const layout *lay, const int32_t *seg, int64_t E,
                           int64_t N, uint64_t seed) {
    const int64_t B = lay->B, T = lay->T;
    memset(p, 0, sizeof *p);
    p->u = randoms(B * T * E, 1.0, &seed);
    p->delta = randoms(B * T * E, 1.5, &seed);
    p->A = randoms(E * N, 1.0, &seed);
    for (int64_t i = 0; i < E * N; i++) p->A[i] = -(real)(1.2 + p->A[i]);
    p->Bm = randoms(B * T * N, 1.0, &seed);
    p->Cm = randoms(B * T * N, 1.0, &seed);
    p->D = randoms(E, 1.0, &seed);
    p->z = randoms(B * T * E, 2.0, &seed);
    p->bias = randoms(E, 1.0, &seed);
    p->h0 = randoms(B * E * N, 1.0, &seed);
    p->dout = randoms(B * T * E, 1.0, &seed);
    p->dh1 = randoms(B * E * N, 1.0, &seed);
    p->out = zeros(B * T * E);
    p->h1 = zeros(B * E * N);
    p->ckpt = zeros(scan_m1_ckpt_size(B, T, E, N));
    RNAME(scan_m1_io) *s = &p->io;
    s->B = B, s->T = T, s->E = E, s->N = N;
    s->u = p->u, s->ld_u = E;
    s->delta = p->delta, s->ld_delta = E;
    s->delta_bias = p->bias;
    s->delta_softplus = 1;
    s->A = p->A;
    s->Bm = p->Bm, s->ld_B = N;
    s->Cm = p->Cm, s->ld_C = N;
    s->D = p->D;
    s->z = p->z, s->ld_z = E;
    s->seg = seg;
}

static void scan_prob_free(scan_prob *p) {
    real *a[] = {p->u, p->delta, p->A, p->Bm, p->Cm, p->D, p->z, p->bias, p->h0, p->dout, p->dh1,
                 p->out, p->h1, p->ckpt};
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) free(a[i]);
}

#if REAL_IS_F64
static double scan_loss(void *ctx) {
    scan_prob *p = ctx;
    const int64_t E = p->io.E, N = p->io.N, B = p->io.B, T = p->io.T;
    RNAME(scan_m1_forward)(&p->io, p->out, E, p->h0, E * N, p->h1, E * N, NULL);
    double s = 0;
    for (int64_t i = 0; i < B * T * E; i++) s += (double)p->out[i] * p->dout[i];
    for (int64_t i = 0; i < B * E * N; i++) s += (double)p->h1[i] * p->dh1[i];
    return s;
}
#endif

static void test_scan_kernel(const char *what, const layout *lay, int64_t E, int64_t N) {
    int32_t *seg = layout_seg(lay);
    scan_prob p;
    scan_prob_make(&p, lay, seg, E, N, 31);
    const int64_t B = lay->B, T = lay->T, EN = E * N;
    char msg[160];
    RNAME(scan_m1_forward)(&p.io, p.out, E, p.h0, EN, p.h1, EN, p.ckpt);
    /* each document alone: state h0 for each row's first document, zeros for the others */
    {
        real *od = zeros(B * T * E), *h1d = zeros(B * EN), *tmp = zeros(EN);
        doc_iter it = {lay, 0, 0, 0, 0};
        while (doc_next(&it)) {
            scan_prob q;
            const int64_t r = it.b * T + it.t0;
            q.io = p.io;
            q.io.B = 1, q.io.T = it.n, q.io.seg = NULL;
            q.io.u = p.u + r * E, q.io.delta = p.delta + r * E, q.io.z = p.z + r * E;
            q.io.Bm = p.Bm + r * N, q.io.Cm = p.Cm + r * N;
            int last = !lay->rows[it.b][it.d + 1];
            RNAME(scan_m1_forward)(&q.io, od + r * E, E, it.d == 0 ? p.h0 + it.b * EN : NULL, EN,
                                   last ? h1d + it.b * EN : tmp, EN, NULL);
        }
        snprintf(msg, sizeof msg, "%s: scan with segments == documents alone", what);
        golden_compare(msg, p.out, od, B * T * E, TOL_FWD);
        snprintf(msg, sizeof msg, "%s: final state == last document's", what);
        golden_compare(msg, p.h1, h1d, B * EN, TOL_FWD);
        free(od);
        free(h1d);
        free(tmp);
    }
#if REAL_IS_F64
    {
        real *du = zeros(B * T * E), *ddelta = zeros(B * T * E), *dB = zeros(B * T * N);
        real *dC = zeros(B * T * N), *dz = zeros(B * T * E), *dA = zeros(EN), *dD = zeros(E);
        real *dbias = zeros(E), *dh0 = zeros(B * EN);
        real *scratch = zeros(scan_m1_backward_scratch_size(B, T, E, N));
        RNAME(scan_m1_grads) g = {du, E, ddelta, E, dB, N, dC, N, dz, E, dA, dD, dbias, dh0, EN};
        RNAME(scan_m1_backward)(&p.io, p.ckpt, p.dout, E, p.dh1, EN, &g, scratch);
        struct { const char *name; real *x, *g; int64_t n; } t[] = {
            {"u", p.u, du, B * T * E}, {"delta", p.delta, ddelta, B * T * E}, {"B", p.Bm, dB, B * T * N},
            {"C", p.Cm, dC, B * T * N}, {"z", p.z, dz, B * T * E}, {"A", p.A, dA, EN},
            {"D", p.D, dD, E}, {"delta_bias", p.bias, dbias, E}, {"h0", p.h0, dh0, B * EN}};
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
            snprintf(msg, sizeof msg, "%s FD d%s", what, t[i].name);
            fd_check(msg, t[i].x, t[i].g, t[i].n, scan_loss, &p, 30, 1e-6);
        }
        real *a[] = {du, ddelta, dB, dC, dz, dA, dD, dbias, dh0, scratch};
        for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) free(a[i]);
    }
#endif
    free(seg);
    scan_prob_free(&p);
}

static void test_kernels(void) {
    const layout lay32 = {2, 32, {k_row_a, k_row_b}};
    const layout lay45 = {2, 45, {k_row_e, k_row_f}};
    test_ssd_kernel("ssd Q=8", &lay32, 8, 0.05, 0.6, 1.5, 1.5);
    test_ssd_kernel("ssd Q=16", &lay32, 16, 0.05, 0.6, 1.5, 1.5);
    /* odd heads decay by up to ~300 per token (beyond exp's range over a chunk): chunks cut
     * by wide decay ranges and by documents; even heads keep a long memory */
    test_ssd_kernel("ssd Q=8 wide decay", &lay32, 8, 10, 40, 0.003, 6);
    test_scan_kernel("scan E=20 N=5", &lay45, 20, 5);
    test_scan_kernel("scan E=40 N=17", &lay45, 40, 17);
}

/* ---- whole models ----------------------------------------------------------------------- */

/* A tiny preset with parameters perturbed so that every layer matters to the logits. */
static ssmlm_model *tiny_model(const char *preset) {
    ssmlm_config c;
    ssmlm_model *m = NULL;
    CHECK_OK(ssmlm_preset(&c, preset));
    CHECK_OK(ssmlm_model_create(&m, &c, REAL_IS_F64 ? SSMLM_F64 : SSMLM_F32));
    if (!m) return NULL;
    ssmlm_model_init(m, 5);
    uint64_t seed = 77;
    for (int i = 0; i < ssmlm_model_n_params(m); i++) {
        const ssmlm_param_info *p = ssmlm_model_param(m, i);
        real *w = ssmlm_model_param_data(m, i);
        real *noise = randoms(p->numel, 0.05, &seed);
        for (int64_t j = 0; j < p->numel; j++) w[j] += noise[j];
        free(noise);
        if (strstr(p->name, "out_proj") || strstr(p->name, "fc2"))
            for (int64_t j = 0; j < p->numel; j++) w[j] *= 10;
    }
    return m;
}

static int64_t count_labels(const int32_t *labels, int64_t n) {
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) c += labels[i] >= 0;
    return c;
}

/* Packed rows with segments == each document alone: logits, summed loss, and the gradient of
 * the summed loss (the model's loss is a mean: scale by the counted labels). */
static void model_packed_vs_docs(const char *preset) {
    ssmlm_model *m = tiny_model(preset);
    if (!m) return;
    const layout lay = {2, 32, {k_row_a, k_row_b}};
    const int64_t B = lay.B, T = lay.T, BT = B * T;
    const int64_t V = ssmlm_config_vocab_padded(ssmlm_model_config(m)), ng = m->arena_numel;
    int32_t *seg = layout_seg(&lay), *ids = malloc((size_t)BT * sizeof(int32_t));
    int32_t *labels = malloc((size_t)BT * sizeof(int32_t));
    const uint64_t vocab = (uint64_t)ssmlm_model_config(m)->vocab_size; /* bytes (+ EOD) */
    uint64_t seed = 3;
    for (int64_t i = 0; i < BT; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((seed >> 33) % vocab);
        labels[i] = i % 7 == 3 ? -1 : (int32_t)((seed >> 45) % vocab);
    }
    real *lg = zeros(BT * V), *lgs = zeros(BT * V), *g = zeros(ng), *gs = zeros(ng);
    char msg[160];
    double loss = 0, lsum = 0;

    CHECK_OK(ssmlm_model_set_segments(m, seg, BT));
    CHECK_OK(ssmlm_model_forward(m, ids, labels, B, T, lg, &loss));
    CHECK_OK(ssmlm_model_backward(m, 0));
    const double n_all = (double)count_labels(labels, BT);
    for (int64_t i = 0; i < ng; i++) g[i] = (real)((double)((real *)m->g)[i] * n_all);

    CHECK_OK(ssmlm_model_set_segments(m, NULL, 0));
    doc_iter it = {&lay, 0, 0, 0, 0};
    while (doc_next(&it)) {
        const int64_t r = it.b * T + it.t0, cnt = count_labels(labels + r, it.n);
        double l = 0;
        CHECK_OK(ssmlm_model_forward(m, ids + r, labels + r, 1, it.n, lgs + r * V, &l));
        CHECK_OK(ssmlm_model_backward(m, 0));
        lsum += l * (double)cnt;
        for (int64_t i = 0; i < ng; i++) gs[i] += (real)((double)((real *)m->g)[i] * (double)cnt);
    }
    snprintf(msg, sizeof msg, "%s: packed logits == documents alone", preset);
    golden_compare(msg, lg, lgs, BT * V, TOL_FWD);
    CHECK(fabs(loss * n_all - lsum) <= TOL_FWD * fmax(1.0, fabs(lsum)),
          "%s: summed loss packed %.10g, documents %.10g", preset, loss * n_all, lsum);
    snprintf(msg, sizeof msg, "%s: packed gradients == sum over documents", preset);
    golden_compare(msg, g, gs, ng, TOL_GRAD);

    /* without segments the logits differ: the comparison can fail */
    CHECK_OK(ssmlm_model_forward(m, ids, labels, B, T, lg, &loss));
    double leak = max_abs_diff(lg, lgs, BT * V) / fmax(max_abs(lgs, BT * V), 1e-30);
    CHECK(leak > 100 * TOL_FWD, "%s: without segments the logits should differ (%.3g)", preset, leak);

    /* seg == NULL and all-zero ids: identical bits, logits and gradients */
    int32_t *zseg = calloc((size_t)BT, sizeof(int32_t));
    real *g0 = zeros(ng);
    CHECK_OK(ssmlm_model_forward(m, ids, labels, B, T, lg, &loss));
    CHECK_OK(ssmlm_model_backward(m, 0));
    memcpy(g0, m->g, (size_t)ng * sizeof(real));
    CHECK_OK(ssmlm_model_set_segments(m, zseg, BT));
    double loss1 = 0;
    CHECK_OK(ssmlm_model_forward(m, ids, labels, B, T, lgs, &loss1));
    CHECK_OK(ssmlm_model_backward(m, 0));
    CHECK(memcmp(lg, lgs, (size_t)(BT * V) * sizeof(real)) == 0 && loss == loss1,
          "%s: logits with seg NULL != all-zero seg", preset);
    CHECK(memcmp(g0, m->g, (size_t)ng * sizeof(real)) == 0, "%s: gradients with seg NULL != all-zero seg",
          preset);

    free(zseg);
    free(g0);
    free(seg);
    free(ids);
    free(labels);
    free(lg);
    free(lgs);
    free(g);
    free(gs);
    ssmlm_model_free(m);
}

/* Invalid segment ids are clear errors; NULL clears; the backward uses its forward's ids. */
static void model_segment_errors(void) {
    ssmlm_model *m = tiny_model("tiny-mamba2");
    if (!m) return;
    const int64_t B = 2, T = 6, BT = B * T;
    int32_t ids[12], labels[12];
    for (int i = 0; i < 12; i++) ids[i] = labels[i] = (int32_t)(i * 11 % 256);
    double loss;

    /* wrong length */
    const int32_t good[12] = {0, 0, 1, 1, 1, 2, 0, 0, 0, 0, 4, 4};
    CHECK_OK(ssmlm_model_set_segments(m, good, BT - 1));
    ssmlm_status s = ssmlm_model_forward(m, ids, labels, B, T, NULL, &loss);
    CHECK(s == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), "segment ids") &&
              strstr(ssmlm_last_error(), "11") && strstr(ssmlm_last_error(), "12"),
          "wrong length: %s (%s)", ssmlm_status_name(s), ssmlm_last_error());
    CHECK(strlen(ssmlm_last_hint()) > 0, "wrong length: no hint");
    /* decreasing within a row (row 1, token 3); decreasing across rows is fine */
    const int32_t bad[12] = {0, 0, 1, 1, 1, 2, 0, 0, 3, 2, 4, 4};
    CHECK_OK(ssmlm_model_set_segments(m, bad, BT));
    s = ssmlm_model_forward(m, ids, labels, B, T, NULL, &loss);
    CHECK(s == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), "decrease") &&
              strstr(ssmlm_last_error(), "row 1") && strstr(ssmlm_last_error(), "token 3"),
          "decreasing: %s (%s)", ssmlm_status_name(s), ssmlm_last_error());
    /* an empty array is not a clear */
    s = ssmlm_model_set_segments(m, good, 0);
    CHECK(s == SSMLM_ERR_INVALID, "zero count: %s", ssmlm_status_name(s));
    /* valid ids; then the backward of that forward keeps them after a clear */
    CHECK_OK(ssmlm_model_set_segments(m, good, BT));
    CHECK_OK(ssmlm_model_forward(m, ids, labels, B, T, NULL, &loss));
    CHECK_OK(ssmlm_model_backward(m, 0));
    real *g1 = zeros(m->arena_numel);
    memcpy(g1, m->g, (size_t)m->arena_numel * sizeof(real));
    CHECK_OK(ssmlm_model_forward(m, ids, labels, B, T, NULL, &loss));
    CHECK_OK(ssmlm_model_set_segments(m, NULL, 0));
    CHECK_OK(ssmlm_model_backward(m, 0));
    CHECK(memcmp(g1, m->g, (size_t)m->arena_numel * sizeof(real)) == 0,
          "backward did not use the segment ids of its forward");
    /* cleared: any shape runs again, and it differs from the segmented run */
    CHECK_OK(ssmlm_model_forward(m, ids, labels, 1, BT, NULL, &loss));
    CHECK_OK(ssmlm_model_forward(m, ids, labels, B, T, NULL, &loss));
    CHECK_OK(ssmlm_model_backward(m, 0));
    CHECK(memcmp(g1, m->g, (size_t)m->arena_numel * sizeof(real)) != 0,
          "gradients without segments equal those with segments");
    free(g1);
    ssmlm_model_free(m);
}

int main(void) {
    test_kernels();
    test_layers();
    const char *presets[] = {"tiny-transformer", "tiny-mamba", "tiny-mamba2", "tiny-hybrid"};
    for (int i = 0; i < 4; i++) model_packed_vs_docs(presets[i]);
    model_segment_errors();
    TEST_END();
}

/* attention.c — the self-attention sublayer (mamba_ssm MHA semantics, math.md §5):
 *   qkv = x W_qkv^T (+ b)              [B, T, hd (Hq + 2 Hk)]: all q heads, all k heads, all v heads
 *   qkv = conv(qkv)                    optional depthwise causal conv, no activation
 *   q, k = rope(q), rope(k)            first r dims of each head (GPT-NeoX half rotation)
 *   ctx = causal GQA softmax attention [B, T, Hq hd]  (within each segment when seg is given)
 *   y = ctx W_out^T (+ b)              [B, T, D]
 * Saved for backward (acts): the pre-conv qkv (only with a conv), the post-rope qkv, ctx and
 * the row log-sum-exp [B, Hq, T]; the probabilities are recomputed.  acts may be NULL when no
 * backward follows: forward then keeps these in scratch, which is sized for it.
 * State per sequence: KV cache [cap, 2, Hk, hd] of post-rope k and v, then (with a conv) the
 * conv state [qkv_dim, K] of pre-conv qkv. */
#include "kernels/attention.h"
#include "layers/layers.h"
#include <omp.h>
#include <string.h>

/* Query rows per strip of the attention kernels. */
#define ATTN_BQ 64

typedef struct at_dims {
    int64_t D, Hq, Hk, hd, qkv, ctx, r, K; /* K: conv width, 0 = no conv */
    double scale;
} at_dims;

static at_dims dims_of(const ssmlm_config *c) {
    at_dims d;
    d.D = c->d_model;
    d.Hq = c->attn_heads;
    d.Hk = c->attn_kv_heads;
    d.hd = c->attn_head_dim;
    d.qkv = ssmlm_attn_qkv_dim(c);
    d.ctx = d.Hq * d.hd;
    d.r = c->attn_rotary_dim;
    d.K = c->attn_d_conv;
    d.scale = c->attn_softmax_scale > 0 ? c->attn_softmax_scale : 1.0 / sqrt((double)d.hd);
    return d;
}

static attn_shape shape_of(const at_dims *d, int64_t B, int64_t T) {
    attn_shape s = {B, T, d->Hq, d->Hk, d->hd, d->scale, ATTN_BQ, NULL};
    return s;
}

/* Worker areas the kernels get in scratch.  It must not depend on the thread count of the
 * moment (scratch is sized once, the thread count may change later), so it is the processor
 * count, capped; the kernels run min(threads, areas) workers. */
static int64_t n_workers(void) {
    int n = omp_get_num_procs();
    return n < 1 ? 1 : n > 64 ? 64 : n;
}

/* Layout of the saved activations (in acts, or in scratch when acts is NULL). */
typedef struct at_acts {
    real *qkv_pre; /* [B, T, qkv] pre-conv qkv (conv only) */
    real *qkv;     /* [B, T, qkv] post-conv, post-rope */
    real *ctx;     /* [B, T, Hq hd] */
    real *lse;     /* [B, Hq, T] */
} at_acts;

static int64_t acts_layout(const at_dims *d, int64_t B, int64_t T, real *base, at_acts *a) {
    int64_t M = B * T, off = 0;
    if (a) a->qkv_pre = d->K ? base + off : NULL;
    off += d->K ? M * d->qkv : 0;
    if (a) a->qkv = base + off;
    off += M * d->qkv;
    if (a) a->ctx = base + off;
    off += M * d->ctx;
    if (a) a->lse = base + off;
    off += B * d->Hq * T;
    return off;
}

int64_t RNAME(attention_acts_size)(const ssmlm_config *c, int64_t B, int64_t T) {
    at_dims d = dims_of(c);
    return acts_layout(&d, B, T, NULL, NULL);
}

/* scratch of forward: [acts when acts == NULL] rope tables [T, r] | worker areas */
static int64_t fwd_scratch(const at_dims *d, int64_t B, int64_t T) {
    attn_shape s = shape_of(d, B, T);
    return acts_layout(d, B, T, NULL, NULL) + T * d->r + n_workers() * attn_work_size(&s, 0);
}
/* scratch of backward: dqkv [B, T, qkv] | dqkv_pre (conv only) | dctx [B, T, Hq hd] |
 * rope tables [T, r] | worker areas */
static int64_t bwd_scratch(const at_dims *d, int64_t B, int64_t T) {
    attn_shape s = shape_of(d, B, T);
    int64_t M = B * T;
    return M * d->qkv * (d->K ? 2 : 1) + M * d->ctx + T * d->r +
           n_workers() * attn_work_size(&s, 1);
}
/* scratch of step: qkv [B, qkv] | qkv_pre (conv only) | ctx [B, Hq hd] | rope tables [B, r] |
 * decode work */
static int64_t step_scratch(const at_dims *d, int64_t B) {
    return B * (d->qkv * (d->K ? 2 : 1) + d->ctx + d->r) +
           RNAME(attn_decode_work_size)(B, d->Hq, d->hd);
}

int64_t RNAME(attention_scratch_size)(const ssmlm_config *c, int64_t B, int64_t T) {
    at_dims d = dims_of(c);
    int64_t f = fwd_scratch(&d, B, T), b = bwd_scratch(&d, B, T), s = step_scratch(&d, B);
    int64_t m = f > b ? f : b;
    return m > s ? m : s;
}

void RNAME(attention_forward)(const ssmlm_config *c, real *const *w, int64_t B, int64_t T,
                              const int32_t *seg, const real *x, real *y, real *acts,
                              real *scratch, const real *state0, real *state1, int64_t cap) {
    SSMLM_ASSERT(state0 == NULL);
    SSMLM_ASSERT(state1 == NULL || (T <= cap && seg == NULL));
    at_dims d = dims_of(c);
    attn_shape s = shape_of(&d, B, T);
    s.seg = seg;
    int64_t M = B * T, h = d.r / 2;
    at_acts a;
    real *sp = scratch;
    if (acts) {
        acts_layout(&d, B, T, acts, &a);
    } else {
        sp += acts_layout(&d, B, T, scratch, &a);
    }
    real *cs = sp, *sn = cs + T * h, *work = sn + T * h;

    /* qkv = x W^T + b, then the optional causal conv (no activation) */
    if (d.K) {
        RNAME(linear_forward)(a.qkv_pre, x, w[AT_QKV_W], w[AT_QKV_B], M, d.qkv, d.D);
        RNAME(conv1d_forward)(a.qkv, d.qkv, a.qkv_pre, d.qkv, w[AT_CONV_W], w[AT_CONV_B], NULL,
                              seg, B, T, d.qkv, d.K);
    } else {
        RNAME(linear_forward)(a.qkv, x, w[AT_QKV_W], w[AT_QKV_B], M, d.qkv, d.D);
    }
    real *q = a.qkv, *k = q + d.Hq * d.hd, *v = k + d.Hk * d.hd;
    if (h) {
        RNAME(rope_table)(cs, sn, 0, T, d.r, c->attn_rope_base);
        RNAME(rope_apply)(q, d.qkv, B, T, d.Hq + d.Hk, d.hd, d.r, cs, sn, 0); /* q and k heads */
    }
    RNAME(attn_forward)(&s, q, k, v, d.qkv, a.ctx, d.ctx, a.lse, work, (int)n_workers());
    RNAME(linear_forward)(y, a.ctx, w[AT_OUT_W], w[AT_OUT_B], M, d.D, d.ctx);

    if (state1) {
        int64_t ssz = ssmlm_attention_state_size(c, cap), kvw = d.Hk * d.hd;
#pragma omp parallel for collapse(2) schedule(static)
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++) {
                real *kv = state1 + b * ssz + t * 2 * kvw;
                const real *row = a.qkv + (b * T + t) * d.qkv;
                memcpy(kv, row + d.ctx, (size_t)kvw * sizeof(real));
                memcpy(kv + kvw, row + d.ctx + kvw, (size_t)kvw * sizeof(real));
            }
        if (d.K)
            for (int64_t b = 0; b < B; b++)
                RNAME(conv1d_final_state)(state1 + b * ssz + cap * 2 * kvw,
                                          a.qkv_pre + b * T * d.qkv, d.qkv, NULL, NULL, 1, T,
                                          d.qkv, d.K);
    }
}

void RNAME(attention_backward)(const ssmlm_config *c, real *const *w, real *const *gw,
                               int64_t B, int64_t T, const int32_t *seg, const real *x,
                               const real *acts, const real *dy, real *dx, real *scratch) {
    at_dims d = dims_of(c);
    attn_shape s = shape_of(&d, B, T);
    s.seg = seg;
    int64_t M = B * T, h = d.r / 2;
    at_acts a;
    acts_layout(&d, B, T, (real *)acts, &a);
    real *dqkv = scratch, *dqkv_pre = dqkv + M * d.qkv;
    real *dctx = dqkv_pre + (d.K ? M * d.qkv : 0);
    real *cs = dctx + M * d.ctx, *sn = cs + T * h, *work = sn + T * h;

    /* out projection: dctx = dy W_out, dW_out += dy^T ctx, db_out += sum dy */
    RNAME(linear_backward)(dctx, gw[AT_OUT_W], gw[AT_OUT_B], dy, a.ctx, w[AT_OUT_W], M, d.D,
                           d.ctx, 0);
    const real *q = a.qkv, *k = q + d.Hq * d.hd, *v = k + d.Hk * d.hd;
    real *dq = dqkv, *dk = dq + d.Hq * d.hd, *dv = dk + d.Hk * d.hd;
    RNAME(attn_backward)(&s, q, k, v, d.qkv, a.ctx, d.ctx, dctx, d.ctx, a.lse, dq, dk, dv, d.qkv,
                         work, (int)n_workers());
    /* rope backward: rotate the gradients by -theta */
    if (h) {
        RNAME(rope_table)(cs, sn, 0, T, d.r, c->attn_rope_base);
        RNAME(rope_apply)(dq, d.qkv, B, T, d.Hq + d.Hk, d.hd, d.r, cs, sn, 1); /* dq and dk */
    }
    real *dlin = dqkv;
    if (d.K) {
        RNAME(conv1d_backward)(dqkv_pre, d.qkv, gw[AT_CONV_W], gw[AT_CONV_B], dqkv, d.qkv,
                               a.qkv_pre, d.qkv, w[AT_CONV_W], seg, B, T, d.qkv, d.K);
        dlin = dqkv_pre;
    }
    RNAME(linear_backward)(dx, gw[AT_QKV_W], gw[AT_QKV_B], dlin, x, w[AT_QKV_W], M, d.qkv, d.D,
                           0);
}

void RNAME(attention_step)(const ssmlm_config *c, real *const *w, int64_t B, const real *x,
                           real *y, real *state, const int64_t *pos, int64_t cap,
                           real *scratch) {
    at_dims d = dims_of(c);
    int64_t h = d.r / 2, ssz = ssmlm_attention_state_size(c, cap), kvw = d.Hk * d.hd;
    real *qkv = scratch, *qkv_pre = qkv + B * d.qkv;
    real *ctx = qkv_pre + (d.K ? B * d.qkv : 0);
    real *cs = ctx + B * d.ctx, *sn = cs + B * h;

    if (d.K) {
        RNAME(linear_forward)(qkv_pre, x, w[AT_QKV_W], w[AT_QKV_B], B, d.qkv, d.D);
        for (int64_t b = 0; b < B; b++)
            RNAME(conv1d_step)(qkv + b * d.qkv, d.qkv, qkv_pre + b * d.qkv, d.qkv,
                               state + b * ssz + cap * 2 * kvw, w[AT_CONV_W], w[AT_CONV_B], 1,
                               d.qkv, d.K);
    } else {
        RNAME(linear_forward)(qkv, x, w[AT_QKV_W], w[AT_QKV_B], B, d.qkv, d.D);
    }
    for (int64_t b = 0; b < B; b++) {
        SSMLM_ASSERT(pos[b] >= 0 && pos[b] < cap);
        real *row = qkv + b * d.qkv;
        if (h) {
            RNAME(rope_table)(cs + b * h, sn + b * h, pos[b], 1, d.r, c->attn_rope_base);
            RNAME(rope_apply)(row, d.qkv, 1, 1, d.Hq + d.Hk, d.hd, d.r, cs + b * h, sn + b * h, 0);
        }
        /* append k, v at pos[b] */
        real *kv = state + b * ssz + pos[b] * 2 * kvw;
        memcpy(kv, row + d.ctx, (size_t)kvw * sizeof(real));
        memcpy(kv + kvw, row + d.ctx + kvw, (size_t)kvw * sizeof(real));
    }
    /* the new token at pos[b] attends keys 0 .. pos[b] */
    RNAME(attn_decode)(qkv, d.qkv, state, state + kvw, ssz, 2 * kvw, pos, B, d.Hq, d.Hk, d.hd,
                       d.scale, ctx, d.ctx, sn + B * h);
    RNAME(linear_forward)(y, ctx, w[AT_OUT_W], w[AT_OUT_B], B, d.D, d.ctx);
}

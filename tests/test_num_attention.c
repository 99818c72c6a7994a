/* test_num_attention.c — the attention kernels (src/kernels/attention.c) and sublayer
 * (src/layers/attention.c): every golden case of kind "mha" (output, intermediates, prefill +
 * decode, all gradients); the blocked kernels against a plain reference at several strip
 * sizes; finite-difference gradients (fp64 build) for MHA / GQA / MQA, with and without rope,
 * biases and conv; prefill + steps == forward for several prefill lengths; the state written
 * by forward == the state built by steps; batch independence of the step. */
#include "base/base.h"
#include "golden.h"
#include "kernels/attention.h"
#include "layers/layers.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define TOL_EXACT (REAL_IS_F64 ? 1e-12 : 2e-5)

static real *alloc_real(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(real)); }

/* ---- a layer instance ----------------------------------------------------------------- */
typedef struct at_case {
    ssmlm_config c;
    int64_t B, T;
    real *w[AT_NSLOTS], *gw[AT_NSLOTS];
    int64_t n[AT_NSLOTS];
    real *x, *dout, *y, *dx, *acts, *scratch;
} at_case;

static void case_alloc(at_case *a, int64_t B, int64_t T) {
    const ssmlm_config *c = &a->c;
    int64_t qkv = ssmlm_attn_qkv_dim(c), ctx = c->attn_heads * c->attn_head_dim, D = c->d_model;
    a->B = B;
    a->T = T;
    memset(a->w, 0, sizeof a->w);
    memset(a->gw, 0, sizeof a->gw);
    memset(a->n, 0, sizeof a->n);
    a->n[AT_QKV_W] = qkv * D;
    a->n[AT_QKV_B] = c->attn_qkv_bias ? qkv : 0;
    a->n[AT_CONV_W] = c->attn_d_conv ? qkv * c->attn_d_conv : 0;
    a->n[AT_CONV_B] = c->attn_d_conv ? qkv : 0;
    a->n[AT_OUT_W] = D * ctx;
    a->n[AT_OUT_B] = c->attn_out_bias ? D : 0;
    for (int s = AT_QKV_W; s < AT_NSLOTS; s++)
        if (a->n[s]) {
            a->w[s] = alloc_real(a->n[s]);
            a->gw[s] = alloc_real(a->n[s]);
        }
    int64_t M = B * T * D;
    a->x = alloc_real(M);
    a->dout = alloc_real(M);
    a->y = alloc_real(M);
    a->dx = alloc_real(M);
    a->acts = alloc_real(RNAME(attention_acts_size)(c, B, T));
    a->scratch = alloc_real(RNAME(attention_scratch_size)(c, B, T));
}

static void case_free(at_case *a) {
    for (int s = 0; s < AT_NSLOTS; s++) {
        free(a->w[s]);
        free(a->gw[s]);
    }
    free(a->x);
    free(a->dout);
    free(a->y);
    free(a->dx);
    free(a->acts);
    free(a->scratch);
}

static void forward(at_case *a) {
    RNAME(attention_forward)(&a->c, a->w, a->B, a->T, NULL, a->x, a->y, a->acts, a->scratch, NULL,
                             NULL, 0);
}

static void backward(at_case *a) {
    RNAME(attention_backward)(&a->c, a->w, a->gw, a->B, a->T, NULL, a->x, a->acts, a->dout, a->dx,
                              a->scratch);
}

static const char *slot_name(int s) {
    switch (s) {
    case AT_QKV_W: return "in_proj.weight";
    case AT_QKV_B: return "in_proj.bias";
    case AT_CONV_W: return "conv1d.weight";
    case AT_CONV_B: return "conv1d.bias";
    case AT_OUT_W: return "out_proj.weight";
    default: return "out_proj.bias";
    }
}

/* Runs prefill of P tokens (forward with state1) and then steps the remaining tokens one at a
 * time; out: [B, T, D].  state: [B][state_size(cap)] (zeroed here). */
static void prefill_and_step(at_case *a, int64_t P, int64_t cap, real *out) {
    const ssmlm_config *c = &a->c;
    int64_t B = a->B, T = a->T, D = c->d_model, ssz = ssmlm_attention_state_size(c, cap);
    real *state = alloc_real(B * ssz);
    if (P > 0) {
        real *xp = alloc_real(B * P * D), *yp = alloc_real(B * P * D);
        real *acts = alloc_real(RNAME(attention_acts_size)(c, B, P));
        real *scr = alloc_real(RNAME(attention_scratch_size)(c, B, P));
        for (int64_t b = 0; b < B; b++)
            memcpy(xp + b * P * D, a->x + b * T * D, (size_t)(P * D) * sizeof(real));
        RNAME(attention_forward)(c, a->w, B, P, NULL, xp, yp, acts, scr, NULL, state, cap);
        for (int64_t b = 0; b < B; b++)
            memcpy(out + b * T * D, yp + b * P * D, (size_t)(P * D) * sizeof(real));
        free(xp);
        free(yp);
        free(acts);
        free(scr);
    }
    real *xs = alloc_real(B * D), *ys = alloc_real(B * D);
    real *scr = alloc_real(RNAME(attention_scratch_size)(c, B, 1));
    int64_t *pos = calloc((size_t)B, sizeof(int64_t));
    for (int64_t t = P; t < T; t++) {
        for (int64_t b = 0; b < B; b++) {
            memcpy(xs + b * D, a->x + (b * T + t) * D, (size_t)D * sizeof(real));
            pos[b] = t;
        }
        RNAME(attention_step)(c, a->w, B, xs, ys, state, pos, cap, scr);
        for (int64_t b = 0; b < B; b++)
            memcpy(out + (b * T + t) * D, ys + b * D, (size_t)D * sizeof(real));
    }
    free(xs);
    free(ys);
    free(scr);
    free(pos);
    free(state);
}

/* ---- golden cases ------------------------------------------------------------------- */
static double cfg_or(const golden *g, const char *key, double dflt) {
    double v = golden_cfg(g, key);
    return isnan(v) ? dflt : v;
}

static void load_param(golden *g, at_case *a, int slot) {
    char name[128];
    snprintf(name, sizeof name, "param.%s", slot_name(slot));
    int64_t n = 0;
    real *t = golden_get(g, name, &n);
    CHECK(t && n == a->n[slot], "%s: %s has %lld values, expected %lld", g->name, name,
          (long long)n, (long long)a->n[slot]);
    if (t && n == a->n[slot]) memcpy(a->w[slot], t, (size_t)n * sizeof(real));
    free(t);
}

/* Gathers heads [B, T, nh, hd] from rows of width ld starting at column col. */
static real *gather_heads(const real *src, int64_t ld, int64_t col, int64_t BT, int64_t nh,
                          int64_t hd) {
    real *o = alloc_real(BT * nh * hd);
    for (int64_t i = 0; i < BT; i++)
        memcpy(o + i * nh * hd, src + i * ld + col, (size_t)(nh * hd) * sizeof(real));
    return o;
}

static void test_golden(const char *name) {
    golden g;
    if (!golden_open(&g, name)) {
        golden_close(&g);
        return;
    }
    at_case a;
    ssmlm_config *c = &a.c;
    ssmlm_config_defaults(c);
    c->d_model = (int64_t)golden_cfg(&g, "d_model");
    c->attn_heads = (int64_t)golden_cfg(&g, "num_heads");
    c->attn_kv_heads = (int64_t)cfg_or(&g, "num_heads_kv", (double)c->attn_heads);
    c->attn_head_dim = (int64_t)cfg_or(&g, "head_dim", (double)(c->d_model / c->attn_heads));
    c->attn_rotary_dim = (int64_t)cfg_or(&g, "rotary_emb_dim", 0);
    c->attn_rope_base = cfg_or(&g, "rotary_emb_base", 10000);
    c->attn_softmax_scale = cfg_or(&g, "softmax_scale", 0);
    c->attn_qkv_bias = (int)cfg_or(&g, "qkv_proj_bias", 1);
    c->attn_out_bias = (int)cfg_or(&g, "out_proj_bias", 1);
    c->attn_d_conv = (int64_t)cfg_or(&g, "d_conv", 0);
    CHECK(cfg_or(&g, "causal", 0) == 1, "%s: only causal attention is supported", name);
    CHECK(cfg_or(&g, "rotary_emb_interleaved", 0) == 0, "%s: interleaved rotary unsupported",
          name);
    const ssmlm_st_tensor *u = ssmlm_st_find(&g.st, "input.u");
    CHECK(u && u->ndim == 3 && u->shape[2] == c->d_model, "%s: input.u must be [B, L, d]", name);
    if (!u || u->ndim != 3 || u->shape[2] != c->d_model) {
        golden_close(&g);
        return;
    }
    case_alloc(&a, u->shape[0], u->shape[1]);
    int64_t B = a.B, T = a.T, D = c->d_model, M = B * T * D, BT = B * T;
    int64_t Hq = c->attn_heads, Hk = c->attn_kv_heads, hd = c->attn_head_dim;
    int64_t qkv = ssmlm_attn_qkv_dim(c), r = c->attn_rotary_dim;
    for (int s = AT_QKV_W; s < AT_NSLOTS; s++)
        if (a.n[s]) load_param(&g, &a, s);
    int64_t n = 0;
    real *x = golden_get(&g, "input.u", &n), *dout = golden_get(&g, "input.dout", NULL);
    if (!x || !dout || n != M) goto done;
    memcpy(a.x, x, (size_t)M * sizeof(real));
    memcpy(a.dout, dout, (size_t)M * sizeof(real));

    /* The reference rotates with a float32 cos/sin table (torch's fp32 cos, not correctly
     * rounded), while the fp64 build computes the table in double: with rope, every value
     * after the rotation differs from the f64 file by float32 rounding of the table
     * (<= 2 * 2^-24 relative), so the fp64 build checks those at 3e-7. */
    double tol_fwd = GOLDEN_TOL_FWD, tol_grad = GOLDEN_TOL_GRAD;
    if (REAL_IS_F64 && r > 0) tol_fwd = tol_grad = 3e-7;
    forward(&a);
    golden_check(&g, "output.out", a.y, M, tol_fwd);
    /* intermediates: acts hold [qkv_pre (conv)] | qkv post-rope | ctx | lse */
    const real *qkv_r = a.acts + (c->attn_d_conv ? BT * qkv : 0), *ctx = qkv_r + BT * qkv;
    if (golden_has(&g, "inter.qkv")) {
        /* inter.qkv is before the rotation: undo it */
        real *t = alloc_real(BT * qkv), *cs = alloc_real(T * r / 2 + 1),
             *sn = alloc_real(T * r / 2 + 1);
        memcpy(t, qkv_r, (size_t)(BT * qkv) * sizeof(real));
        if (r) {
            RNAME(rope_table)(cs, sn, 0, T, r, c->attn_rope_base);
            RNAME(rope_apply)(t, qkv, B, T, Hq + Hk, hd, r, cs, sn, 1);
        }
        golden_check(&g, "inter.qkv", t, BT * qkv, GOLDEN_TOL_FWD);
        free(t);
        free(cs);
        free(sn);
    }
    if (golden_has(&g, "inter.q_rot")) {
        real *t = gather_heads(qkv_r, qkv, 0, BT, Hq, hd);
        golden_check(&g, "inter.q_rot", t, BT * Hq * hd, tol_fwd);
        free(t);
    }
    if (golden_has(&g, "inter.k_rot")) {
        real *t = gather_heads(qkv_r, qkv, Hq * hd, BT, Hk, hd);
        golden_check(&g, "inter.k_rot", t, BT * Hk * hd, tol_fwd);
        free(t);
    }
    if (golden_has(&g, "inter.context"))
        golden_check(&g, "inter.context", ctx, BT * Hq * hd, tol_fwd);

    backward(&a);
    for (int s = AT_QKV_W; s < AT_NSLOTS; s++) {
        if (!a.n[s]) continue;
        char gname[128];
        snprintf(gname, sizeof gname, "grad.%s", slot_name(s));
        golden_check(&g, gname, a.gw[s], a.n[s], tol_grad);
    }
    golden_check(&g, "grad.u", a.dx, M, tol_grad);

    if (golden_has(&g, "decode.out")) {
        cJSON *pl = cJSON_GetObjectItemCaseSensitive(g.info, "decode_prefill_len");
        CHECK(cJSON_IsNumber(pl), "%s: no decode_prefill_len", name);
        real *dec = alloc_real(M);
        prefill_and_step(&a, cJSON_IsNumber(pl) ? (int64_t)pl->valuedouble : 0, T + 3, dec);
        golden_check(&g, "decode.out", dec, M, tol_fwd);
        free(dec);
    }
done:
    free(x);
    free(dout);
    case_free(&a);
    golden_close(&g);
}

/* ---- kernels against a plain reference ------------------------------------------------ */
/* o[b,t,h] = sum_{j<=t} softmax_j(scale q.k_j) v_j, written directly from the definition. */
static void attn_reference(const attn_shape *s, const real *q, const real *k, const real *v,
                           int64_t ld, real *o, int64_t ldo) {
    int64_t T = s->T, hd = s->hd, G = s->Hq / s->Hk;
    double *p = malloc((size_t)T * sizeof(double));
    for (int64_t b = 0; b < s->B; b++)
        for (int64_t h = 0; h < s->Hq; h++)
            for (int64_t t = 0; t < T; t++) {
                const real *qt = q + (b * T + t) * ld + h * hd;
                double m = -INFINITY, l = 0;
                for (int64_t j = 0; j <= t; j++) {
                    const real *kj = k + (b * T + j) * ld + (h / G) * hd;
                    double d = 0;
                    for (int64_t e = 0; e < hd; e++) d += (double)qt[e] * kj[e];
                    p[j] = d * s->scale;
                    m = fmax(m, p[j]);
                }
                for (int64_t j = 0; j <= t; j++) l += (p[j] = exp(p[j] - m));
                for (int64_t e = 0; e < hd; e++) {
                    double acc = 0;
                    for (int64_t j = 0; j <= t; j++)
                        acc += p[j] * v[(b * T + j) * ld + (h / G) * hd + e];
                    o[(b * T + t) * ldo + h * hd + e] = (real)(acc / l);
                }
            }
    free(p);
}

/* Kernel inputs: qkv rows [B*T, ld] with q | k | v and a cotangent for o. */
typedef struct kern_case {
    attn_shape s;
    int64_t ld, ldo;
    real *qkv, *o, *lse, *dout, *dqkv, *work;
    int nwork;
} kern_case;

static void kern_alloc(kern_case *k, attn_shape s, uint64_t seed) {
    k->s = s;
    k->ld = s.hd * (s.Hq + 2 * s.Hk) + 3; /* padded rows: strides are honoured */
    k->ldo = s.Hq * s.hd;
    int64_t BT = s.B * s.T;
    k->qkv = alloc_real(BT * k->ld);
    k->o = alloc_real(BT * k->ldo);
    k->lse = alloc_real(s.B * s.Hq * s.T);
    k->dout = alloc_real(BT * k->ldo);
    k->dqkv = alloc_real(BT * k->ld);
    k->nwork = omp_get_max_threads();
    k->work = alloc_real(k->nwork * attn_work_size(&s, 1));
    fill_uniform(k->qkv, BT * k->ld, 1.5, &seed);
    fill_uniform(k->dout, BT * k->ldo, 1.0, &seed);
}

static void kern_free(kern_case *k) {
    free(k->qkv);
    free(k->o);
    free(k->lse);
    free(k->dout);
    free(k->dqkv);
    free(k->work);
}

static void kern_forward(kern_case *k) {
    const real *q = k->qkv, *kk = q + k->s.Hq * k->s.hd, *v = kk + k->s.Hk * k->s.hd;
    RNAME(attn_forward)(&k->s, q, kk, v, k->ld, k->o, k->ldo, k->lse, k->work, k->nwork);
}

static void kern_backward(kern_case *k) {
    const real *q = k->qkv, *kk = q + k->s.Hq * k->s.hd, *v = kk + k->s.Hk * k->s.hd;
    real *dq = k->dqkv, *dk = dq + k->s.Hq * k->s.hd, *dv = dk + k->s.Hk * k->s.hd;
    RNAME(attn_backward)(&k->s, q, kk, v, k->ld, k->o, k->ldo, k->dout, k->ldo, k->lse, dq, dk,
                         dv, k->ld, k->work, k->nwork);
}

/* Strip sizes 1, 3, 64 and T give the reference output; backward agrees across strip sizes. */
static void test_kernel_strips(int64_t B, int64_t T, int64_t Hq, int64_t Hk, int64_t hd) {
    attn_shape s = {B, T, Hq, Hk, hd, 1.0 / sqrt((double)hd), T, NULL};
    kern_case k;
    kern_alloc(&k, s, 7 + (uint64_t)T);
    int64_t BT = B * T, no = BT * k.ldo;
    real *ref = alloc_real(no), *dref = alloc_real(BT * k.ld);
    const real *q = k.qkv, *kk = q + Hq * hd, *v = kk + Hk * hd;
    attn_reference(&s, q, kk, v, k.ld, ref, k.ldo);
    kern_forward(&k);
    kern_backward(&k);
    memcpy(dref, k.dqkv, (size_t)(BT * k.ld) * sizeof(real));
    int64_t bqs[] = {1, 3, 64, T};
    for (int i = 0; i < 4; i++) {
        k.s.bq = bqs[i];
        memset(k.o, 0, (size_t)no * sizeof(real));
        kern_forward(&k);
        char what[128];
        snprintf(what, sizeof what, "attn kernel B%lld T%lld Hq%lld Hk%lld hd%lld bq%lld forward",
                 (long long)B, (long long)T, (long long)Hq, (long long)Hk, (long long)hd,
                 (long long)bqs[i]);
        golden_compare(what, k.o, ref, no, TOL_EXACT);
        memset(k.dqkv, 0x7f, (size_t)(BT * k.ld) * sizeof(real)); /* dq/dk/dv are overwritten */
        kern_backward(&k);
        /* compare only the q, k, v columns (the 3 pad columns are not written) */
        real *got = alloc_real(BT * (k.ld - 3)), *want = alloc_real(BT * (k.ld - 3));
        for (int64_t row = 0; row < BT; row++) {
            memcpy(got + row * (k.ld - 3), k.dqkv + row * k.ld, (size_t)(k.ld - 3) * sizeof(real));
            memcpy(want + row * (k.ld - 3), dref + row * k.ld, (size_t)(k.ld - 3) * sizeof(real));
        }
        snprintf(what, sizeof what, "attn kernel T%lld bq%lld backward", (long long)T,
                 (long long)bqs[i]);
        golden_compare(what, got, want, BT * (k.ld - 3), TOL_EXACT);
        free(got);
        free(want);
    }
    free(ref);
    free(dref);
    kern_free(&k);
}

/* Decode kernel: the last query row of every sequence, against the sequence kernel. */
static void test_kernel_decode(void) {
    int64_t B = 3, T = 150, Hq = 4, Hk = 2, hd = 5;
    attn_shape s = {B, T, Hq, Hk, hd, 0.4, 16, NULL};
    kern_case k;
    kern_alloc(&k, s, 99);
    kern_forward(&k);
    int64_t last[3] = {T - 1, 70, 0}, ldq = Hq * hd;
    real *qd = alloc_real(B * ldq), *od = alloc_real(B * ldq), *want = alloc_real(B * ldq);
    for (int64_t b = 0; b < B; b++) {
        memcpy(qd + b * ldq, k.qkv + (b * T + last[b]) * k.ld, (size_t)ldq * sizeof(real));
        memcpy(want + b * ldq, k.o + (b * T + last[b]) * k.ldo, (size_t)ldq * sizeof(real));
    }
    const real *kk = k.qkv + Hq * hd, *v = kk + Hk * hd;
    real *work = alloc_real(RNAME(attn_decode_work_size)(B, Hq, hd));
    RNAME(attn_decode)(qd, ldq, kk, v, T * k.ld, k.ld, last, B, Hq, Hk, hd, s.scale, od, ldq, work);
    golden_compare("attn_decode == attn_forward rows", od, want, B * ldq, TOL_EXACT);
    free(qd);
    free(od);
    free(want);
    free(work);
    kern_free(&k);
}

/* One decode query per sequence, written directly from the definition (double sums):
 * o[b,h] = sum_{j<=last[b]} softmax_j(scale q.k_j) v_j, cache layout as attn_decode. */
static void decode_reference(const real *q, int64_t ldq, const real *kc, const real *vc,
                             int64_t ldb, int64_t ldt, const int64_t *last, int64_t B,
                             int64_t Hq, int64_t Hk, int64_t hd, double scale, real *o,
                             int64_t ldo) {
    int64_t G = Hq / Hk;
    for (int64_t b = 0; b < B; b++) {
        int64_t n = last[b] + 1;
        double *p = malloc((size_t)n * sizeof(double));
        for (int64_t h = 0; h < Hq; h++) {
            const real *qh = q + b * ldq + h * hd;
            double m = -INFINITY, l = 0;
            for (int64_t j = 0; j < n; j++) {
                const real *kj = kc + b * ldb + j * ldt + (h / G) * hd;
                double d = 0;
                for (int64_t e = 0; e < hd; e++) d += (double)qh[e] * kj[e];
                p[j] = d * scale;
                m = fmax(m, p[j]);
            }
            for (int64_t j = 0; j < n; j++) l += (p[j] = exp(p[j] - m));
            for (int64_t e = 0; e < hd; e++) {
                double acc = 0;
                for (int64_t j = 0; j < n; j++)
                    acc += p[j] * vc[b * ldb + j * ldt + (h / G) * hd + e];
                o[b * ldo + h * hd + e] = (real)(acc / l);
            }
        }
        free(p);
    }
}

/* Decode kernel on a KV cache laid out like the layer's ([cap, 2, Hk, hd] per sequence, here
 * with padded strides): == the reference within TOL_EXACT for any thread count; bit-identical
 * for 1 and 3 threads and for each sequence run alone (the span split depends only on the
 * sequence's own length); the work area is not overrun. */
static void test_kernel_decode_cache(int64_t B, int64_t Hq, int64_t Hk, int64_t hd,
                                     const int64_t *last) {
    int64_t cap = 1;
    for (int64_t b = 0; b < B; b++) cap = last[b] + 1 > cap ? last[b] + 1 : cap;
    int64_t ldt = 2 * Hk * hd + 1, ldb = cap * ldt + 5, ldq = Hq * hd + 2, ldo = Hq * hd + 3;
    int64_t nw = RNAME(attn_decode_work_size)(B, Hq, hd);
    uint64_t seed = 1000 + (uint64_t)(B * 7 + Hq * 5 + Hk * 3 + hd);
    real *kc = alloc_real(B * ldb), *q = alloc_real(B * ldq), *want = alloc_real(B * ldo);
    real *o1 = alloc_real(B * ldo), *o3 = alloc_real(B * ldo), *oa = alloc_real(ldo);
    real *work = alloc_real(nw + 16);
    fill_uniform(kc, B * ldb, 1.5, &seed);
    fill_uniform(q, B * ldq, 1.5, &seed);
    for (int64_t i = 0; i < 16; i++) work[nw + i] = (real)12345;
    double scale = 2.0 / sqrt((double)hd); /* peaky enough for the running max to move */
    const real *vc = kc + Hk * hd;
    decode_reference(q, ldq, kc, vc, ldb, ldt, last, B, Hq, Hk, hd, scale, want, ldo);
    int nt0 = omp_get_max_threads();
    memset(o1, 0x7f, (size_t)(B * ldo) * sizeof(real)); /* o is overwritten */
    omp_set_num_threads(1);
    RNAME(attn_decode)(q, ldq, kc, vc, ldb, ldt, last, B, Hq, Hk, hd, scale, o1, ldo, work);
    omp_set_num_threads(3);
    RNAME(attn_decode)(q, ldq, kc, vc, ldb, ldt, last, B, Hq, Hk, hd, scale, o3, ldo, work);
    omp_set_num_threads(nt0);
    char what[160];
    snprintf(what, sizeof what, "attn_decode B%lld Hq%lld Hk%lld hd%lld last[0] %lld == reference",
             (long long)B, (long long)Hq, (long long)Hk, (long long)hd, (long long)last[0]);
    /* only the written columns (ldo is padded) */
    real *g = alloc_real(B * Hq * hd), *w = alloc_real(B * Hq * hd);
    for (int64_t b = 0; b < B; b++) {
        memcpy(g + b * Hq * hd, o1 + b * ldo, (size_t)(Hq * hd) * sizeof(real));
        memcpy(w + b * Hq * hd, want + b * ldo, (size_t)(Hq * hd) * sizeof(real));
    }
    golden_compare(what, g, w, B * Hq * hd, TOL_EXACT);
    int same = 1;
    for (int64_t b = 0; b < B; b++)
        same = same && memcmp(o1 + b * ldo, o3 + b * ldo, (size_t)(Hq * hd) * sizeof(real)) == 0;
    CHECK(same, "%s: 1 and 3 threads give different bits", what);
    for (int64_t b = 0; b < B; b++) {
        RNAME(attn_decode)(q + b * ldq, ldq, kc + b * ldb, vc + b * ldb, ldb, ldt, last + b, 1, Hq,
                           Hk, hd, scale, oa, ldo, work);
        CHECK(memcmp(oa, o1 + b * ldo, (size_t)(Hq * hd) * sizeof(real)) == 0,
              "%s: sequence %lld alone differs from the batch", what, (long long)b);
    }
    int guard = 1;
    for (int64_t i = 0; i < 16; i++) guard = guard && work[nw + i] == (real)12345;
    CHECK(guard, "%s: work area overrun", what);
    free(kc);
    free(q);
    free(want);
    free(o1);
    free(o3);
    free(oa);
    free(work);
    free(g);
    free(w);
}

/* Odd shapes: B 1..3, G = 1, 2, 3, 4, 5, 8, head dims 1, 7, 80 (plain loops) and 16, 32, 64, 128
 * (fp32 register tiles, heads in tiles of 4 or 2 and their remainders), contexts of one key,
 * of several chunks not a multiple of the chunk, of several spans (up to the 16-span cap) and
 * ragged. */
static void test_kernel_decode_shapes(void) {
    const int64_t l1[] = {0}, l2[] = {4999}, l3[] = {1300, 64, 0}, l4[] = {700, 257},
                  l5[] = {2047, 1000, 511}, l6[] = {900}, l7[] = {300, 299}, l8[] = {8191};
    test_kernel_decode_cache(1, 1, 1, 1, l1);
    test_kernel_decode_cache(1, 2, 1, 7, l2);
    test_kernel_decode_cache(3, 4, 1, 64, l3);
    test_kernel_decode_cache(2, 4, 4, 80, l4);
    test_kernel_decode_cache(3, 12, 3, 64, l5);
    test_kernel_decode_cache(1, 64, 16, 7, l6); /* many heads: shorter chunks */
    test_kernel_decode_cache(2, 6, 3, 1, l7);
    test_kernel_decode_cache(1, 2, 2, 64, l8); /* spans longer than the minimum */
    test_kernel_decode_cache(2, 10, 2, 16, l4); /* G 5: a tile of 4 heads and one of 1 */
    test_kernel_decode_cache(1, 6, 2, 32, l6);  /* G 3 */
    test_kernel_decode_cache(2, 16, 2, 128, l7); /* G 8, hd 128: tiles of 2 heads */
    test_kernel_decode_cache(1, 4, 4, 128, l1);
}

/* Rope: the inverse undoes the rotation, and rotation preserves the norm of each pair. */
static void test_rope(void) {
    int64_t B = 2, T = 5, nh = 3, hd = 6, r = 4, ld = nh * hd + 1;
    uint64_t seed = 5;
    real *x = alloc_real(B * T * ld), *x0 = alloc_real(B * T * ld);
    real *cs = alloc_real(T * r / 2), *sn = alloc_real(T * r / 2);
    fill_uniform(x, B * T * ld, 1, &seed);
    memcpy(x0, x, (size_t)(B * T * ld) * sizeof(real));
    RNAME(rope_table)(cs, sn, 0, T, r, 10000);
    RNAME(rope_apply)(x, ld, B, T, nh, hd, r, cs, sn, 0);
    /* row t = 0 is unchanged (theta 0); dims >= r unchanged; at t = 1, j = 0 theta = 1 */
    int ok = 1;
    for (int64_t e = 0; e < ld; e++) ok = ok && x[e] == x0[e];
    for (int64_t row = 0; row < B * T; row++)
        for (int64_t h = 0; h < nh; h++)
            for (int64_t e = r; e < hd; e++)
                ok = ok && x[row * ld + h * hd + e] == x0[row * ld + h * hd + e];
    CHECK(ok, "rope changes position 0 or dims beyond the rotary dim");
    real a0 = x0[ld], b0 = x0[ld + 2];
    real want0 = (real)(a0 * cos(1.0) - b0 * sin(1.0)), want2 = (real)(a0 * sin(1.0) + b0 * cos(1.0));
    CHECK(fabs((double)(x[ld] - want0)) < 1e-6 && fabs((double)(x[ld + 2] - want2)) < 1e-6,
          "rope at t=1, j=0: got (%g, %g), want (%g, %g)", (double)x[ld], (double)x[ld + 2],
          (double)want0, (double)want2);
    /* j = 1: theta = t * 10000^(-1/2) */
    real a1 = x0[ld + 1], b1 = x0[ld + 3], th = (real)0.01;
    CHECK(fabs((double)(x[ld + 1] - (a1 * cos(th) - b1 * sin(th)))) < 1e-6,
          "rope at t=1, j=1 uses inv_freq 1/100");
    /* a table starting at position 3 equals rows 3.. of the table from 0 */
    real *cs3 = alloc_real(2 * r / 2), *sn3 = alloc_real(2 * r / 2);
    RNAME(rope_table)(cs3, sn3, 3, 2, r, 10000);
    golden_compare("rope table from position 3 (cos)", cs3, cs + 3 * r / 2, 2 * r / 2, 0);
    golden_compare("rope table from position 3 (sin)", sn3, sn + 3 * r / 2, 2 * r / 2, 0);
    free(cs3);
    free(sn3);
    real *y = alloc_real(B * T * ld);
    memcpy(y, x0, (size_t)(B * T * ld) * sizeof(real));
    RNAME(rope_apply)(y, ld, B, T, nh, hd, r, cs, sn, 0);
    RNAME(rope_apply)(y, ld, B, T, nh, hd, r, cs, sn, 1);
    golden_compare("rope inverse undoes rope", y, x0, B * T * ld, TOL_EXACT);
    free(x);
    free(x0);
    free(y);
    free(cs);
    free(sn);
}

/* ---- layer-level checks on random configurations ------------------------------------- */
typedef struct at_cfg {
    const char *name;
    int64_t D, Hq, Hk, hd, r, K;
    int qkv_bias, out_bias;
    double scale;
} at_cfg;

static const at_cfg CFGS[] = {
    {"mha rope biases", 7, 3, 3, 6, 4, 0, 1, 1, 0},
    {"gqa rope conv", 8, 4, 2, 6, 4, 3, 0, 0, 0},
    {"gqa nope conv biases", 9, 6, 2, 5, 0, 4, 1, 1, 0.3},
    {"mqa full rope", 6, 2, 1, 4, 4, 0, 0, 1, 0},
    {"mha nope", 5, 2, 2, 3, 0, 0, 0, 0, 0},
};
#define NCFGS ((int)(sizeof CFGS / sizeof CFGS[0]))

static void random_case(at_case *a, const at_cfg *f, int64_t B, int64_t T, uint64_t seed) {
    ssmlm_config *c = &a->c;
    ssmlm_config_defaults(c);
    c->d_model = f->D;
    c->attn_heads = f->Hq;
    c->attn_kv_heads = f->Hk;
    c->attn_head_dim = f->hd;
    c->attn_rotary_dim = f->r;
    c->attn_rope_base = 10000;
    c->attn_softmax_scale = f->scale;
    c->attn_qkv_bias = f->qkv_bias;
    c->attn_out_bias = f->out_bias;
    c->attn_d_conv = f->K;
    case_alloc(a, B, T);
    for (int s = AT_QKV_W; s < AT_NSLOTS; s++)
        if (a->n[s]) fill_uniform(a->w[s], a->n[s], s == AT_QKV_W ? 0.7 : 0.5, &seed);
    fill_uniform(a->x, B * T * f->D, 1.0, &seed);
    fill_uniform(a->dout, B * T * f->D, 1.0, &seed);
}

#if REAL_IS_F64
static double loss_fn(void *ctx) {
    at_case *a = ctx;
    forward(a);
    double l = 0;
    for (int64_t i = 0; i < a->B * a->T * a->c.d_model; i++) l += (double)a->y[i] * a->dout[i];
    return l;
}

static void test_fd(const at_cfg *f) {
    at_case a;
    random_case(&a, f, 2, 11, 31);
    forward(&a);
    backward(&a);
    char what[160];
    for (int s = AT_QKV_W; s < AT_NSLOTS; s++) {
        if (!a.n[s]) continue;
        snprintf(what, sizeof what, "attention [%s] d%s", f->name, slot_name(s));
        fd_check(what, a.w[s], a.gw[s], a.n[s], loss_fn, &a, 150, 1e-5);
    }
    snprintf(what, sizeof what, "attention [%s] dx", f->name);
    fd_check(what, a.x, a.dx, a.B * a.T * f->D, loss_fn, &a, 150, 1e-5);
    case_free(&a);
}

static double kern_loss(void *ctx) {
    kern_case *k = ctx;
    kern_forward(k);
    double l = 0;
    for (int64_t i = 0; i < k->s.B * k->s.T * k->ldo; i++) l += (double)k->o[i] * k->dout[i];
    return l;
}

/* Kernel gradients by finite differences with several strips per sequence. */
static void test_kernel_fd(void) {
    attn_shape s = {2, 13, 4, 2, 3, 0.7, 4, NULL};
    kern_case k;
    kern_alloc(&k, s, 3);
    kern_forward(&k);
    kern_backward(&k);
    fd_check("attn kernel (bq 4) dq, dk, dv", k.qkv, k.dqkv, s.B * s.T * k.ld, kern_loss, &k, 400,
             1e-5);
    kern_free(&k);
}
#endif

/* Prefill of P tokens + steps == forward, for several P; state from forward == state from
 * steps; backward accumulates; forward without acts == forward with acts. */
static void test_decode(const at_cfg *f) {
    at_case a;
    int64_t B = 2, T = 11, D = f->D, M = B * T * D;
    random_case(&a, f, B, T, 77);
    forward(&a);
    real *out = alloc_real(M);
    int64_t Ps[] = {0, 1, 4, 10, 11};
    char what[160];
    for (int i = 0; i < 5; i++) {
        memset(out, 0, (size_t)M * sizeof(real));
        prefill_and_step(&a, Ps[i], T + (i % 2) * 5, out);
        snprintf(what, sizeof what, "attention [%s] prefill %lld + steps == forward", f->name,
                 (long long)Ps[i]);
        golden_compare(what, out, a.y, M, TOL_EXACT);
    }

    /* state after forward(T tokens) == state after T steps from a zero state */
    const ssmlm_config *c = &a.c;
    int64_t cap = T + 2, ssz = ssmlm_attention_state_size(c, cap);
    real *s1 = alloc_real(B * ssz), *s2 = alloc_real(B * ssz), *y = alloc_real(M);
    RNAME(attention_forward)(c, a.w, B, T, NULL, a.x, y, a.acts, a.scratch, NULL, s1, cap);
    real *xs = alloc_real(B * D), *ys = alloc_real(B * D);
    real *scr = alloc_real(RNAME(attention_scratch_size)(c, B, 1));
    int64_t pos[2];
    for (int64_t t = 0; t < T; t++) {
        for (int64_t b = 0; b < B; b++) {
            memcpy(xs + b * D, a.x + (b * T + t) * D, (size_t)D * sizeof(real));
            pos[b] = t;
        }
        RNAME(attention_step)(c, a.w, B, xs, ys, s2, pos, cap, scr);
    }
    snprintf(what, sizeof what, "attention [%s] state of forward == state of steps", f->name);
    golden_compare(what, s1, s2, B * ssz, TOL_EXACT);
    free(s1);
    free(s2);
    free(xs);
    free(ys);
    free(scr);

    /* forward without acts */
    real *scr2 = alloc_real(RNAME(attention_scratch_size)(c, B, T));
    RNAME(attention_forward)(c, a.w, B, T, NULL, a.x, y, NULL, scr2, NULL, NULL, 0);
    snprintf(what, sizeof what, "attention [%s] forward without acts", f->name);
    golden_compare(what, y, a.y, M, 0);
    free(scr2);

    /* gradients accumulate into gw */
    forward(&a);
    backward(&a);
    real *g1[AT_NSLOTS] = {0};
    for (int s = AT_QKV_W; s < AT_NSLOTS; s++)
        if (a.n[s]) {
            g1[s] = alloc_real(a.n[s]);
            for (int64_t j = 0; j < a.n[s]; j++) g1[s][j] = 2 * a.gw[s][j];
        }
    backward(&a);
    for (int s = AT_QKV_W; s < AT_NSLOTS; s++)
        if (a.n[s]) {
            snprintf(what, sizeof what, "attention [%s] d%s accumulates", f->name, slot_name(s));
            golden_compare(what, a.gw[s], g1[s], a.n[s], TOL_EXACT);
            free(g1[s]);
        }
    free(y);
    free(out);
    case_free(&a);
}

/* Two sequences of different lengths stepped together == each stepped alone (and == their
 * own full forward). */
static void test_batch_independence(const at_cfg *f) {
    int64_t TA = 9, TB = 14, PA = 3, PB = 8, D = f->D, cap = 20;
    at_case A, Bc;
    random_case(&A, f, 1, TA, 123);
    random_case(&Bc, f, 1, TB, 456);
    for (int s = AT_QKV_W; s < AT_NSLOTS; s++)
        if (A.n[s]) memcpy(Bc.w[s], A.w[s], (size_t)A.n[s] * sizeof(real));
    forward(&A);
    forward(&Bc);
    const ssmlm_config *c = &A.c;
    int64_t ssz = ssmlm_attention_state_size(c, cap);
    real *state = alloc_real(2 * ssz), *y = alloc_real(TB * D);
    /* prefill each alone into its own slot */
    real *acts = alloc_real(RNAME(attention_acts_size)(c, 1, PB));
    real *scr = alloc_real(RNAME(attention_scratch_size)(c, 1, PB));
    RNAME(attention_forward)(c, A.w, 1, PA, NULL, A.x, y, acts, scr, NULL, state, cap);
    RNAME(attention_forward)(c, A.w, 1, PB, NULL, Bc.x, y, acts, scr, NULL, state + ssz, cap);
    /* then step both together while both have tokens */
    real *xs = alloc_real(2 * D), *ys = alloc_real(2 * D), *outA = alloc_real(TA * D),
         *outB = alloc_real(TB * D);
    real *scr1 = alloc_real(RNAME(attention_scratch_size)(c, 2, 1));
    int64_t n = TA - PA < TB - PB ? TA - PA : TB - PB;
    for (int64_t i = 0; i < n; i++) {
        int64_t pos[2] = {PA + i, PB + i};
        memcpy(xs, A.x + pos[0] * D, (size_t)D * sizeof(real));
        memcpy(xs + D, Bc.x + pos[1] * D, (size_t)D * sizeof(real));
        RNAME(attention_step)(c, A.w, 2, xs, ys, state, pos, cap, scr1);
        memcpy(outA + pos[0] * D, ys, (size_t)D * sizeof(real));
        memcpy(outB + pos[1] * D, ys + D, (size_t)D * sizeof(real));
    }
    char what[160];
    snprintf(what, sizeof what, "attention [%s] batched steps, sequence A", f->name);
    golden_compare(what, outA + PA * D, A.y + PA * D, n * D, TOL_EXACT);
    snprintf(what, sizeof what, "attention [%s] batched steps, sequence B", f->name);
    golden_compare(what, outB + PB * D, Bc.y + PB * D, n * D, TOL_EXACT);
    free(state);
    free(y);
    free(acts);
    free(scr);
    free(xs);
    free(ys);
    free(outA);
    free(outB);
    free(scr1);
    case_free(&A);
    case_free(&Bc);
}

/* BLAS made single-threaded around the attention workers: with OpenBLAS's OpenMP build nothing
 * is changed (its openblas_set_num_threads would also set the OpenMP team size of the caller,
 * and the workers' own region would then run on one thread); with its pthreads build BLAS runs
 * on one thread until the end call, which restores the count. */
static void test_blas_serial(void) {
    int omp0 = omp_get_max_threads(), blas0 = openblas_get_num_threads();
    int saved = ssmlm_blas_serial_begin(2);
    if (openblas_get_parallel() == 2)
        CHECK(saved == 0 && omp_get_max_threads() == omp0, "OpenMP OpenBLAS: OpenMP threads %d -> %d", omp0,
              omp_get_max_threads());
    else
        CHECK(openblas_get_num_threads() == 1, "pthreads OpenBLAS: BLAS threads %d inside", openblas_get_num_threads());
    ssmlm_blas_serial_end(saved);
    CHECK(omp_get_max_threads() == omp0 && openblas_get_num_threads() == blas0, "thread counts restored: %d %d",
          omp_get_max_threads(), openblas_get_num_threads());
}

int main(void) {
    char **cases = golden_cases_of_kind("mha");
    int ncases = 0;
    for (int i = 0; cases[i]; i++, ncases++) test_golden(cases[i]);
    CHECK(ncases > 0, "no golden case of kind mha");
    golden_free_list(cases);

    test_rope();
    test_kernel_strips(2, 37, 4, 2, 8);
    test_kernel_strips(1, 150, 3, 1, 5);
    test_kernel_strips(2, 1, 2, 2, 4);
    test_kernel_decode();
    test_kernel_decode_shapes();
    test_blas_serial();
#if REAL_IS_F64
    test_kernel_fd();
#endif
    for (int i = 0; i < NCFGS; i++) {
#if REAL_IS_F64
        test_fd(&CFGS[i]);
#endif
        test_decode(&CFGS[i]);
        test_batch_independence(&CFGS[i]);
    }
    TEST_END();
}

/* optim.c — AdamW over the model's parameter arena: global gradient norm with NaN/Inf
 * detection, clipping, decoupled weight decay, bias-corrected Adam; the LR schedule and the
 * paper's recipe.  Work is split into fixed blocks of each tensor so that the result does not
 * depend on the number of threads. */
#include "train/optim.h"
#include "model/model.h"
#include <math.h>
#include <string.h>

/* Elements per block: the unit of parallel work and of partial norm sums. */
#define OPT_BLOCK 8192

typedef char param_name[sizeof ((ssmlm_param_info *)0)->name];

struct ssmlm_optimizer {
    ssmlm_adamw_config cfg;
    ssmlm_dtype dtype;
    int n_params;
    int64_t arena_numel;
    int64_t steps;
    void *m, *v;                 /* [arena_numel] in the model's dtype */
    unsigned char *table_decay;  /* [n_params] weight-decay flag of the parameter table */
    unsigned char *decay;        /* [n_params] effective flag (table and no-decay list) */
    param_name *names;           /* [n_params] tensor names, for the no-decay list */
};

void ssmlm_adamw_defaults(ssmlm_adamw_config *c) {
    c->beta1 = 0.9;
    c->beta2 = 0.95;
    c->eps = 1e-8;
    c->weight_decay = 0.1;
    c->clip = 1.0;
}

static ssmlm_status adamw_validate(const ssmlm_adamw_config *c) {
    if (!(c->beta1 >= 0 && c->beta1 < 1))
        return ssmlm_fail(SSMLM_ERR_INVALID, "the paper uses 0.9", "AdamW beta1 %g is outside [0, 1)", c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1))
        return ssmlm_fail(SSMLM_ERR_INVALID, "the paper uses 0.95", "AdamW beta2 %g is outside [0, 1)", c->beta2);
    if (!(c->eps > 0 && isfinite(c->eps)))
        return ssmlm_fail(SSMLM_ERR_INVALID, "the paper uses 1e-8", "AdamW eps %g must be positive", c->eps);
    if (!(c->weight_decay >= 0 && isfinite(c->weight_decay)))
        return ssmlm_fail(SSMLM_ERR_INVALID, "the paper uses 0.1; 0 turns weight decay off",
                          "AdamW weight decay %g must be >= 0", c->weight_decay);
    if (!(c->clip >= 0 && isfinite(c->clip)))
        return ssmlm_fail(SSMLM_ERR_INVALID, "the paper uses 1.0; 0 turns clipping off",
                          "gradient clip %g must be >= 0", c->clip);
    return SSMLM_OK;
}

ssmlm_status ssmlm_optimizer_create(ssmlm_optimizer **out, const ssmlm_model *m, const ssmlm_adamw_config *c) {
    *out = NULL;
    ssmlm_status s = adamw_validate(c);
    if (s != SSMLM_OK) return s;
    if (m->bf16_weights)
        return ssmlm_fail(SSMLM_ERR_UNSUPPORTED,
                          "train an fp32 (or fp64) model: create or load it without SSMLM_MODEL_BF16_WEIGHTS",
                          "bf16 weights are for inference; an optimizer cannot update them");
    ssmlm_optimizer *o = calloc(1, sizeof *o);
    if (!o) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory");
    o->cfg = *c;
    o->dtype = m->dtype;
    o->n_params = m->n_params;
    o->arena_numel = m->arena_numel;
    size_t bytes = (size_t)m->arena_numel * m->esize;
    o->m = ssmlm_calloc(bytes);
    o->v = ssmlm_calloc(bytes);
    size_t np = (size_t)(m->n_params > 0 ? m->n_params : 1);
    o->decay = malloc(np);
    o->table_decay = malloc(np);
    o->names = malloc(np * sizeof *o->names);
    if (!o->m || !o->v || !o->decay || !o->table_decay || !o->names) {
        ssmlm_optimizer_free(o);
        return ssmlm_fail(SSMLM_ERR_MEMORY, "train a smaller model",
                          "cannot allocate %.2f GB for the AdamW moments", 2.0 * (double)bytes / 1e9);
    }
    for (int i = 0; i < m->n_params; i++) {
        o->table_decay[i] = o->decay[i] = m->params[i].info.weight_decay != 0;
        memcpy(o->names[i], m->params[i].info.name, sizeof o->names[i]);
    }
    *out = o;
    return SSMLM_OK;
}

void ssmlm_optimizer_free(ssmlm_optimizer *o) {
    if (!o) return;
    ssmlm_free(o->m);
    ssmlm_free(o->v);
    free(o->decay);
    free(o->table_decay);
    free(o->names);
    free(o);
}

int64_t ssmlm_optimizer_steps(const ssmlm_optimizer *o) { return o->steps; }
void ssmlm_optimizer_set_steps(ssmlm_optimizer *o, int64_t steps) { o->steps = steps; }
const ssmlm_adamw_config *ssmlm_optimizer_config(const ssmlm_optimizer *o) { return &o->cfg; }
void *ssmlm_optimizer_moment(const ssmlm_optimizer *o, int which) { return which == 0 ? o->m : which == 1 ? o->v : NULL; }
int64_t ssmlm_optimizer_moments_numel(const ssmlm_optimizer *o) { return o->arena_numel; }
ssmlm_dtype ssmlm_optimizer_dtype(const ssmlm_optimizer *o) { return o->dtype; }
int ssmlm_optimizer_decays(const ssmlm_optimizer *o, int i) {
    return i >= 0 && i < o->n_params ? o->decay[i] : 0;
}

ssmlm_status ssmlm_optimizer_set_no_decay(ssmlm_optimizer *o, const char *const *patterns, int n) {
    if (n < 0 || (n > 0 && !patterns))
        return ssmlm_fail(SSMLM_ERR_INVALID, "give n >= 0 patterns (n = 0 restores the table)",
                          "no-decay list of %d patterns is invalid (negative count or no list)", n);
    for (int k = 0; k < n; k++)
        if (!patterns[k] || !patterns[k][0])
            return ssmlm_fail(SSMLM_ERR_INVALID, "give substrings of tensor names, e.g. \"embedding\"",
                              "no-decay pattern %d is empty (it would match every tensor)", k);
    for (int i = 0; i < o->n_params; i++) {
        o->decay[i] = o->table_decay[i];
        for (int k = 0; k < n && o->decay[i]; k++)
            if (strstr(o->names[i], patterns[k])) o->decay[i] = 0;
    }
    return SSMLM_OK;
}

/* ---- blocks ------------------------------------------------------------------------------ */

/* Blocks of every tensor in table order: tensor i owns blocks [first[i], first[i+1]). */
typedef struct block_plan {
    int64_t *first;
    int64_t n;
} block_plan;

static ssmlm_status plan_blocks(const ssmlm_model *m, block_plan *bp) {
    bp->first = malloc((size_t)(m->n_params + 1) * sizeof *bp->first);
    if (!bp->first) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory");
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++) {
        bp->first[i] = n;
        n += (m->params[i].info.numel + OPT_BLOCK - 1) / OPT_BLOCK;
    }
    bp->first[m->n_params] = n;
    bp->n = n;
    return SSMLM_OK;
}

/* Tensor of block b (binary search), and the block's element range in it. */
static int block_locate(const ssmlm_model *m, const block_plan *bp, int64_t b, int64_t *j0, int64_t *len) {
    int lo = 0, hi = m->n_params - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (bp->first[mid] <= b) lo = mid;
        else hi = mid - 1;
    }
    /* tensors without elements own no blocks: skip to the one that holds b */
    while (bp->first[lo + 1] <= b) lo++;
    *j0 = (b - bp->first[lo]) * OPT_BLOCK;
    int64_t rest = m->params[lo].info.numel - *j0;
    *len = rest < OPT_BLOCK ? rest : OPT_BLOCK;
    return lo;
}

/* ---- gradient norm ----------------------------------------------------------------------- */

/* sum x^2 in double, four interleaved accumulators in a fixed order */
#define DEFINE_SUMSQ(T, NAME)                                                                  \
    static double NAME(const T *x, int64_t n) {                                                \
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                                 \
        int64_t j = 0;                                                                         \
        for (; j + 4 <= n; j += 4) {                                                           \
            double x0 = x[j], x1 = x[j + 1], x2 = x[j + 2], x3 = x[j + 3];                     \
            a0 += x0 * x0;                                                                     \
            a1 += x1 * x1;                                                                     \
            a2 += x2 * x2;                                                                     \
            a3 += x3 * x3;                                                                     \
        }                                                                                      \
        for (; j < n; j++) a0 += (double)x[j] * (double)x[j];                                  \
        return (a0 + a1) + (a2 + a3);                                                          \
    }
DEFINE_SUMSQ(float, sumsq_f32)
DEFINE_SUMSQ(double, sumsq_f64)

static double grad_at(const ssmlm_model *m, int i, int64_t j) {
    const void *g = model_g(m, i);
    return m->dtype == SSMLM_F64 ? ((const double *)g)[j] : (double)((const float *)g)[j];
}

/* Names the first non-finite gradient, or returns SSMLM_OK if every gradient is finite. */
static ssmlm_status find_nonfinite(const ssmlm_model *m) {
    for (int i = 0; i < m->n_params; i++) {
        const ssmlm_param_info *p = &m->params[i].info;
        for (int64_t j = 0; j < p->numel; j++) {
            double x = grad_at(m, i, j);
            if (isfinite(x)) continue;
            char coords[96] = "";
            int64_t rem = j, idx[4] = {0};
            for (int d = p->ndim - 1; d >= 0; d--) {
                idx[d] = p->shape[d] ? rem % p->shape[d] : 0;
                rem = p->shape[d] ? rem / p->shape[d] : 0;
            }
            size_t at = 0;
            for (int d = 0; d < p->ndim && at < sizeof coords; d++)
                at += (size_t)snprintf(coords + at, sizeof coords - at, "%s%lld", d ? ", " : "",
                                       (long long)idx[d]);
            return ssmlm_fail(SSMLM_ERR_NUMERIC,
                              "lower the learning rate, check the data, or resume from an earlier checkpoint",
                              "gradient of %s is %s at element %lld [%s]", p->name,
                              isnan(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf", (long long)j, coords);
        }
    }
    return SSMLM_OK;
}

/* Norm of finite gradients whose squares overflow double (fp64 only): scale by max |g|. */
static double scaled_norm(const ssmlm_model *m) {
    double mx = 0, acc = 0;
    for (int i = 0; i < m->n_params; i++)
        for (int64_t j = 0; j < m->params[i].info.numel; j++) mx = fmax(mx, fabs(grad_at(m, i, j)));
    for (int i = 0; i < m->n_params; i++)
        for (int64_t j = 0; j < m->params[i].info.numel; j++) {
            double x = grad_at(m, i, j) / mx;
            acc += x * x;
        }
    return mx * sqrt(acc);
}

ssmlm_status ssmlm_grad_norm(const ssmlm_model *m, double *norm) {
    *norm = 0;
    if (!m->g)
        return ssmlm_fail(SSMLM_ERR_INVALID, "run ssmlm_model_backward before the optimizer step",
                          "the model has no gradients yet");
    block_plan bp;
    ssmlm_status s = plan_blocks(m, &bp);
    if (s != SSMLM_OK) return s;
    double *part = malloc((size_t)(bp.n > 0 ? bp.n : 1) * sizeof *part);
    if (!part) {
        free(bp.first);
        return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory");
    }
    int f64 = m->dtype == SSMLM_F64;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < bp.n; b++) {
        int64_t j0, len;
        int i = block_locate(m, &bp, b, &j0, &len);
        const void *g = model_g(m, i);
        part[b] = f64 ? sumsq_f64((const double *)g + j0, len) : sumsq_f32((const float *)g + j0, len);
    }
    double total = 0;
    for (int64_t b = 0; b < bp.n; b++) total += part[b];
    free(part);
    free(bp.first);
    if (isfinite(total)) {
        *norm = sqrt(total);
        return SSMLM_OK;
    }
    s = find_nonfinite(m);
    if (s != SSMLM_OK) return s;
    *norm = scaled_norm(m);
    return SSMLM_OK;
}

/* ---- AdamW step -------------------------------------------------------------------------- */

typedef struct adamw_coef {
    double gscale;    /* clip scale */
    double lrwd;      /* lr * weight decay, 0 for tensors that do not decay */
    double b1, b2;
    double step;      /* lr / (1 - b1^t) */
    double isbc2;     /* 1 / sqrt(1 - b2^t) */
    double eps;
} adamw_coef;

/* p, g, m, v: [n].  p -= lrwd p;  m, v updated;  p -= step m / (sqrt(v) isbc2 + eps). */
#define DEFINE_ADAMW(T, SQRT, NAME)                                                            \
    static void NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict v,         \
                     int64_t n, const adamw_coef *k) {                                         \
        const T gs = (T)k->gscale, lrwd = (T)k->lrwd, b1 = (T)k->b1, b2 = (T)k->b2;            \
        const T c1 = (T)(1 - k->b1), c2 = (T)(1 - k->b2), st = (T)k->step;                     \
        const T is2 = (T)k->isbc2, eps = (T)k->eps;                                            \
        for (int64_t j = 0; j < n; j++) {                                                      \
            T gj = g[j] * gs;                                                                  \
            T pj = p[j];                                                                       \
            pj -= lrwd * pj;                                                                   \
            T mj = b1 * m[j] + c1 * gj;                                                        \
            T vj = b2 * v[j] + c2 * (gj * gj);                                                 \
            m[j] = mj;                                                                         \
            v[j] = vj;                                                                         \
            p[j] = pj - st * mj / (SQRT(vj) * is2 + eps);                                      \
        }                                                                                      \
    }
DEFINE_ADAMW(float, sqrtf, adamw_f32)
DEFINE_ADAMW(double, sqrt, adamw_f64)

ssmlm_status ssmlm_optimizer_step(ssmlm_optimizer *o, ssmlm_model *m, double lr, double *grad_norm) {
    if (grad_norm) *grad_norm = 0;
    if (m->dtype != o->dtype || m->n_params != o->n_params || m->arena_numel != o->arena_numel)
        return ssmlm_fail(SSMLM_ERR_INVALID, "create the optimizer for the model it updates",
                          "optimizer was created for another model (%d tensors, %lld elements) than this one "
                          "(%d tensors, %lld elements)", o->n_params, (long long)o->arena_numel, m->n_params,
                          (long long)m->arena_numel);
    if (!(lr >= 0 && isfinite(lr)))
        return ssmlm_fail(SSMLM_ERR_INVALID, "check the schedule", "learning rate %g is not a finite value >= 0", lr);
    double norm;
    ssmlm_status s = ssmlm_grad_norm(m, &norm);
    if (s != SSMLM_OK) {
        ssmlm_error_context("AdamW step %lld", (long long)(o->steps + 1));
        return s;
    }
    if (grad_norm) *grad_norm = norm;
    block_plan bp;
    s = plan_blocks(m, &bp);
    if (s != SSMLM_OK) return s;
    const ssmlm_adamw_config *c = &o->cfg;
    double t = (double)(o->steps + 1);
    adamw_coef k = {
        .gscale = c->clip > 0 && norm > c->clip ? c->clip / norm : 1.0,
        .b1 = c->beta1,
        .b2 = c->beta2,
        .step = lr / (1 - pow(c->beta1, t)),
        .isbc2 = 1 / sqrt(1 - pow(c->beta2, t)),
        .eps = c->eps,
    };
    int f64 = m->dtype == SSMLM_F64;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < bp.n; b++) {
        int64_t j0, len;
        int i = block_locate(m, &bp, b, &j0, &len);
        adamw_coef kb = k;
        kb.lrwd = o->decay[i] ? lr * c->weight_decay : 0.0;
        size_t at = (size_t)(m->params[i].info.offset + j0);
        if (f64)
            adamw_f64((double *)m->w + at, (const double *)m->g + at, (double *)o->m + at, (double *)o->v + at,
                      len, &kb);
        else
            adamw_f32((float *)m->w + at, (const float *)m->g + at, (float *)o->m + at, (float *)o->v + at,
                      len, &kb);
    }
    free(bp.first);
    o->steps++;
    return SSMLM_OK;
}

/* ---- schedule ---------------------------------------------------------------------------- */

double ssmlm_schedule_lr(const ssmlm_schedule *s, int64_t step) {
    if (step < 0) step = 0;
    if (s->warmup > 0 && step <= s->warmup) return s->peak_lr * (double)step / (double)s->warmup;
    if (step > s->total) return s->min_lr;
    double t = (double)(step - s->warmup) / (double)(s->total - s->warmup);
    return s->min_lr + 0.5 * (1 + cos(M_PI * t)) * (s->peak_lr - s->min_lr);
}

void ssmlm_recipe_paper(int64_t total_steps, ssmlm_schedule *s, ssmlm_adamw_config *a) {
    if (total_steps < 0) total_steps = 0;
    /* warmup = max(ceil(1 % of the run), ceil(the paper's 50,000 / 73,242,188 of it)), in
     * integers so that e.g. 300 steps give exactly 3 */
    const int64_t pw = 50000, pt = 73242188;
    int64_t w_min = total_steps / 100 + (total_steps % 100 != 0);
    int64_t w_paper = total_steps / pt * pw + ((total_steps % pt) * pw + pt - 1) / pt;
    s->peak_lr = 3e-4;
    s->min_lr = 3e-5;
    s->total = total_steps;
    s->warmup = w_min > w_paper ? w_min : w_paper;
    if (a) ssmlm_adamw_defaults(a);
}

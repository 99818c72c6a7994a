/* sample.c — greedy / temperature / top-k / top-p sampling of one row of logits (sample.h). */
#include "infer/sample.h"
#include <math.h>
#include <string.h>

void ssmlm_sampler_config_defaults(ssmlm_sampler_config *c) {
    c->temperature = 1.0;
    c->top_k = 0;
    c->top_p = 1.0;
    c->seed = 0;
}

ssmlm_status ssmlm_sampler_config_check(const ssmlm_sampler_config *c) {
    if (!(c->temperature >= 0) || !isfinite(c->temperature))
        return ssmlm_fail(SSMLM_ERR_INVALID, "use 0 for greedy decoding or a positive temperature such as 0.8",
                          "sampling temperature %g is invalid", c->temperature);
    if (c->top_k < 0)
        return ssmlm_fail(SSMLM_ERR_INVALID, "use 0 for no limit or a positive count such as 40",
                          "top-k %lld is negative", (long long)c->top_k);
    if (!(c->top_p > 0 && c->top_p <= 1))
        return ssmlm_fail(SSMLM_ERR_INVALID, "use a value in (0, 1], e.g. 0.9; 1 keeps every token",
                          "top-p %g is outside (0, 1]", c->top_p);
    return SSMLM_OK;
}

ssmlm_status ssmlm_sampler_init(ssmlm_sampler *s, const ssmlm_sampler_config *c, int64_t vocab) {
    memset(s, 0, sizeof *s);
    ssmlm_status st = ssmlm_sampler_config_check(c);
    if (st != SSMLM_OK) return st;
    if (vocab < 1) return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "sampler for a vocabulary of %lld tokens", (long long)vocab);
    s->cfg = *c;
    s->vocab = vocab;
    s->cand = malloc((size_t)vocab * sizeof *s->cand);
    if (!s->cand) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory for a sampler of %lld tokens", (long long)vocab);
    return SSMLM_OK;
}

void ssmlm_sampler_free(ssmlm_sampler *s) {
    if (!s) return;
    free(s->cand);
    s->cand = NULL;
}

void ssmlm_sampler_rng(ssmlm_rng *r, uint64_t seed, int64_t index) {
    ssmlm_rng_seed(r, seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(index + 1)));
}

/* a ranks before b: larger logit, then lower id (prob holds the logit while ranking). */
static int better(const ssmlm_candidate *a, const ssmlm_candidate *b) {
    return a->prob > b->prob || (a->prob == b->prob && a->id < b->id);
}

static int cmp_rank(const void *pa, const void *pb) {
    const ssmlm_candidate *a = pa, *b = pb;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

/* Min-heap on rank: the root is the worst kept candidate. */
static void sift_down(ssmlm_candidate *h, int64_t n, int64_t i) {
    for (;;) {
        int64_t w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && better(&h[w], &h[l])) w = l;
        if (r < n && better(&h[w], &h[r])) w = r;
        if (w == i) return;
        ssmlm_candidate t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static ssmlm_status check_row(const ssmlm_sampler *s, const double *logits, int64_t n_logits, int64_t *argmax) {
    if (n_logits < s->vocab)
        return ssmlm_fail(SSMLM_ERR_INVALID, "pass a whole row of logits", "row of %lld logits for a vocabulary of %lld",
                          (long long)n_logits, (long long)s->vocab);
    int64_t best = 0;
    for (int64_t i = 0; i < s->vocab; i++) {
        if (isnan(logits[i]) || logits[i] == INFINITY)
            return ssmlm_fail(SSMLM_ERR_NUMERIC, "the model produced non-finite values; check the checkpoint",
                              "logit of token %lld is %g", (long long)i, logits[i]);
        if (logits[i] > logits[best]) best = i;
    }
    if (logits[best] == -INFINITY)
        return ssmlm_fail(SSMLM_ERR_NUMERIC, "the model produced non-finite values; check the checkpoint",
                          "every logit is -inf");
    *argmax = best;
    return SSMLM_OK;
}

/* Fills cand[0..n) with the kept candidates, sorted when `sorted` (always when truncating). */
static ssmlm_status kept_set(ssmlm_sampler *s, const double *logits, int64_t n_logits, int sorted, int64_t *n_out) {
    int64_t best = 0;
    ssmlm_status st = check_row(s, logits, n_logits, &best);
    if (st != SSMLM_OK) return st;
    ssmlm_candidate *c = s->cand;
    const ssmlm_sampler_config *cfg = &s->cfg;
    if (cfg->temperature == 0) {
        c[0].id = best;
        c[0].prob = 1;
        *n_out = 1;
        return SSMLM_OK;
    }
    int64_t V = s->vocab, n = V;
    for (int64_t i = 0; i < V; i++) {
        c[i].id = i;
        c[i].prob = logits[i];
    }
    if (cfg->top_k > 0 && cfg->top_k < V) {
        n = cfg->top_k;
        for (int64_t i = n / 2 - 1; i >= 0; i--) sift_down(c, n, i);
        for (int64_t i = n; i < V; i++)
            if (better(&c[i], &c[0])) {
                c[0] = c[i];
                sift_down(c, n, 0);
            }
    }
    int truncating = n < V || cfg->top_p < 1;
    if (sorted || truncating) qsort(c, (size_t)n, sizeof *c, cmp_rank);
    /* p_i = exp((l_i - l_max) / T) / sum */
    double mx = logits[best], sum = 0;
    for (int64_t i = 0; i < n; i++) {
        c[i].prob = exp((c[i].prob - mx) / cfg->temperature);
        sum += c[i].prob;
    }
    int64_t kept = 0;
    for (int64_t i = 0; i < n; i++) {
        c[i].prob /= sum;
        if (c[i].prob > 0) c[kept++] = c[i];
    }
    n = kept;
    if (cfg->top_p < 1) {
        double cum = 0;
        int64_t j = 0;
        while (j < n) {
            cum += c[j++].prob;
            if (cum >= cfg->top_p - 1e-12) break;
        }
        n = j;
        for (int64_t i = 0; i < n; i++) c[i].prob /= cum;
    }
    *n_out = n;
    return SSMLM_OK;
}

ssmlm_status ssmlm_sampler_candidates(ssmlm_sampler *s, const double *logits, int64_t n_logits,
                                      const ssmlm_candidate **out, int64_t *n_out) {
    *out = NULL;
    *n_out = 0;
    ssmlm_status st = kept_set(s, logits, n_logits, 1, n_out);
    if (st == SSMLM_OK) *out = s->cand;
    return st;
}

ssmlm_status ssmlm_sampler_draw(ssmlm_sampler *s, ssmlm_rng *rng, const double *logits, int64_t n_logits,
                                int32_t *token) {
    int64_t n;
    ssmlm_status st = kept_set(s, logits, n_logits, 0, &n);
    if (st != SSMLM_OK) return st;
    if (n == 1) {
        *token = (int32_t)s->cand[0].id;
        return SSMLM_OK;
    }
    /* inverse CDF: the first candidate whose cumulative mass exceeds u */
    double u = ssmlm_rng_uniform(rng), cum = 0;
    int64_t pick = n - 1;
    for (int64_t i = 0; i < n; i++) {
        cum += s->cand[i].prob;
        if (u < cum) {
            pick = i;
            break;
        }
    }
    *token = (int32_t)s->cand[pick].id;
    return SSMLM_OK;
}

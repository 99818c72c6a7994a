/* score.c — continuation log-probabilities (score.h).  The context's tokens but the last go
 * through the chunked prefill of a one-sequence state and its last token through one step,
 * whose logits score every continuation's first token; that state is then forked (copied)
 * into one sequence per continuation and the continuations are stepped together, each
 * sequence leaving the batch after its last scored token. */
#include "infer/score.h"
#include "infer/generate.h"
#include <math.h>
#include <string.h>

/* log p(tok) = l_tok - log sum_i exp(l_i) over the real vocabulary; greedy if tok is the argmax. */
static void score_token(const double *row, int64_t vocab, int32_t tok, ssmlm_score_result *r) {
    int64_t best = 0;
    for (int64_t i = 1; i < vocab; i++)
        if (row[i] > row[best]) best = i;
    double mx = row[best], sum = 0;
    for (int64_t i = 0; i < vocab; i++) sum += exp(row[i] - mx);
    r->logprob += row[tok] - mx - log(sum);
    if (best != tok) r->greedy = 0;
}

static ssmlm_status check_ids(const int32_t *ids, int64_t n, int64_t vocab, const char *what, int index) {
    for (int64_t t = 0; t < n; t++)
        if (ids[t] < 0 || ids[t] >= vocab) {
            char name[48];
            if (index < 0) snprintf(name, sizeof name, "%s", what);
            else snprintf(name, sizeof name, "%s %d", what, index);
            return ssmlm_fail(SSMLM_ERR_INVALID, "token ids must be in [0, vocab_size)",
                              "%s: token %lld has id %d, outside the model's vocabulary of %lld", name, (long long)t,
                              ids[t], (long long)vocab);
        }
    return SSMLM_OK;
}

ssmlm_status ssmlm_score(ssmlm_model *m, const int32_t *context, int64_t n_ctx, const int32_t *const *conts,
                         const int64_t *n_cont, int n, ssmlm_score_result *out) {
    const ssmlm_config *c = ssmlm_model_config(m);
    int64_t V = ssmlm_config_vocab_padded(c), vocab = c->vocab_size;
    if (n < 1) return ssmlm_fail(SSMLM_ERR_INVALID, "pass at least one continuation", "scoring %d continuations", n);
    if (n_ctx < 1 || !context)
        return ssmlm_fail(SSMLM_ERR_INVALID, "give at least one context token", "the scoring context is empty");
    ssmlm_status st = check_ids(context, n_ctx, vocab, "context", -1);
    int64_t longest = 0;
    for (int i = 0; i < n && st == SSMLM_OK; i++) {
        if (n_cont[i] < 0 || (n_cont[i] > 0 && !conts[i]))
            return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "continuation %d has %lld tokens", i, (long long)n_cont[i]);
        st = check_ids(conts[i], n_cont[i], vocab, "continuation", i);
        if (n_cont[i] > longest) longest = n_cont[i];
    }
    if (st != SSMLM_OK) return st;
    for (int i = 0; i < n; i++) out[i] = (ssmlm_score_result){0, 1};
    if (longest == 0) return SSMLM_OK;

    size_t es = ssmlm_model_dtype(m) == SSMLM_F64 ? sizeof(double) : sizeof(float);
    int64_t cap = n_ctx + longest;
    ssmlm_state *ctx_state = NULL, *state = NULL;
    void *logits = malloc((size_t)(n * V) * es);
    double *row = malloc((size_t)V * sizeof(double));
    int64_t *slot = malloc((size_t)n * sizeof(int64_t)), *keep = calloc((size_t)n, sizeof(int64_t));
    int32_t *next = malloc((size_t)n * sizeof(int32_t));
    if (!logits || !row || !slot || !keep || !next) {
        st = ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory for scoring %d continuations", n);
        goto done;
    }
    /* the context once */
    if ((st = ssmlm_state_create(&ctx_state, m, 1, cap)) != SSMLM_OK) goto done;
    if (n_ctx > 1 && (st = ssmlm_model_prefill_one(m, ctx_state, 0, context, n_ctx - 1, NULL)) != SSMLM_OK) goto done;
    if ((st = ssmlm_model_step(m, ctx_state, &context[n_ctx - 1], logits)) != SSMLM_OK) goto done;
    infer_logits_row(m, logits, 0, V, row);
    int64_t n_active = 0;
    for (int i = 0; i < n; i++)
        if (n_cont[i] > 0) {
            score_token(row, vocab, conts[i][0], &out[i]);
            if (n_cont[i] > 1) slot[n_active++] = i;
        }
    if (n_active == 0) goto done;
    /* fork into the continuations that go on */
    if ((st = ssmlm_state_create(&state, m, n_active, cap)) != SSMLM_OK) goto done;
    for (int64_t k = 0; k < n_active; k++)
        if ((st = ssmlm_state_copy_seq(state, k, ctx_state, 0)) != SSMLM_OK) goto done;
    ssmlm_state_free(ctx_state);
    ctx_state = NULL;
    /* step j feeds token j-1 and scores token j */
    for (int64_t j = 1; n_active > 0; j++) {
        for (int64_t k = 0; k < n_active; k++) next[k] = conts[slot[k]][j - 1];
        if ((st = ssmlm_model_step(m, state, next, logits)) != SSMLM_OK) goto done;
        int64_t n_keep = 0;
        for (int64_t k = 0; k < n_active; k++) {
            int64_t i = slot[k];
            infer_logits_row(m, logits, k, V, row);
            score_token(row, vocab, conts[i][j], &out[i]);
            if (n_cont[i] > j + 1) {
                keep[n_keep] = k;
                slot[n_keep++] = i;
            }
        }
        if (n_keep < n_active && (st = infer_state_compact(&state, m, keep, n_keep)) != SSMLM_OK) goto done;
        n_active = n_keep;
    }
done:
    ssmlm_state_free(ctx_state);
    ssmlm_state_free(state);
    free(logits);
    free(row);
    free(slot);
    free(keep);
    free(next);
    return st;
}

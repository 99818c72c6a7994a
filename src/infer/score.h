/* score.h — log-probabilities of continuations given a shared context (the building block of
 * multiple-choice evaluation): the context is processed once and forked into one sequence per
 * continuation, and the continuations are stepped together. */
#ifndef SSMLM_INFER_SCORE_H
#define SSMLM_INFER_SCORE_H

#include "base/base.h"

typedef struct ssmlm_score_result {
    double logprob;    /* sum over the continuation's tokens of log p(token | everything before) */
    int greedy;        /* 1 if every token is the argmax (lowest index on ties) of its row */
} ssmlm_score_result;

/* context [n_ctx >= 1]; conts[i] [n_cont[i] >= 0] for i < n; out [n].  Probabilities are the
 * softmax over the real vocabulary (padded logits are excluded).  An empty continuation scores
 * 0 and counts as greedy. */
ssmlm_status ssmlm_score(ssmlm_model *m, const int32_t *context, int64_t n_ctx, const int32_t *const *conts,
                         const int64_t *n_cont, int n, ssmlm_score_result *out);

#endif

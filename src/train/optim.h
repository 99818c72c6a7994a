/* optim.h — AdamW with global-norm gradient clipping, the learning-rate schedule (linear
 * warmup, cosine decay to a floor) and the paper's training recipe.
 *
 * The optimizer keeps its first and second moments in the MODEL's dtype (fp32 moments for an
 * fp32 model, fp64 for an fp64 model), in two arenas with the parameter arena's layout: the
 * moments of parameter i start at ssmlm_model_param(m, i)->offset.  fp32 moments are what
 * Megatron keeps beside bf16 weights; fp64 moments keep the fp64 models exact for tests.
 *
 * Every loop runs over fixed blocks of a tensor (the block size does not depend on the thread
 * count) and partial norms are summed in block order, so a step gives the same bits at any
 * thread count. */
#ifndef SSMLM_OPTIM_H
#define SSMLM_OPTIM_H

#include "ssmlm.h"

typedef struct ssmlm_adamw_config {
    double beta1, beta2, eps, weight_decay; /* paper: 0.9, 0.95, 1e-8, 0.1 */
    double clip;                             /* global-norm clip, 0 = off; paper 1.0 */
} ssmlm_adamw_config;

/* The paper's values: beta1 0.9, beta2 0.95, eps 1e-8, weight decay 0.1, clip 1.0. */
void ssmlm_adamw_defaults(ssmlm_adamw_config *c);

typedef struct ssmlm_optimizer ssmlm_optimizer;

/* Moments (zero) for model m, which must have the same parameter table at every step.
 * Rejects betas outside [0, 1), eps <= 0, negative weight decay or clip. */
ssmlm_status ssmlm_optimizer_create(ssmlm_optimizer **out, const ssmlm_model *m, const ssmlm_adamw_config *c);
void ssmlm_optimizer_free(ssmlm_optimizer *o);

/* Global L2 norm of all gradients, sqrt(sum g^2) accumulated in double.  A NaN or Inf gradient
 * gives SSMLM_ERR_NUMERIC naming the first such tensor (table order) and element (flat index
 * and coordinates).  SSMLM_ERR_INVALID when no backward has run yet. */
ssmlm_status ssmlm_grad_norm(const ssmlm_model *m, double *norm);

/* One AdamW step with learning rate lr, t = steps + 1:
 *   s = clip / max(norm, clip)            (s = 1 when clip = 0), g <- s g
 *   p <- p - lr wd p                      (tensors that decay, see below)
 *   m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
 *   p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * The gradients themselves are not modified.  grad_norm (may be NULL) receives the pre-clip
 * norm.  On a NaN/Inf gradient nothing changes (parameters, moments, step count) and the
 * status is SSMLM_ERR_NUMERIC. */
ssmlm_status ssmlm_optimizer_step(ssmlm_optimizer *o, ssmlm_model *m, double lr, double *grad_norm);
/* Completed steps t. */
int64_t ssmlm_optimizer_steps(const ssmlm_optimizer *o);

/* Weight decay applies to the tensors whose table flag is set (matrices, embeddings, conv
 * weights).  A no-decay list adds exceptions: a tensor whose name contains any of the n
 * substrings is not decayed (e.g. "embedding").  n = 0 restores the table.  Empty patterns
 * are rejected (they would match every tensor). */
ssmlm_status ssmlm_optimizer_set_no_decay(ssmlm_optimizer *o, const char *const *patterns, int n);
/* 1 if parameter i is decayed. */
int ssmlm_optimizer_decays(const ssmlm_optimizer *o, int i);
const ssmlm_adamw_config *ssmlm_optimizer_config(const ssmlm_optimizer *o);

/* Moment arenas for the training-state file and tests: which 0 = first moment m, 1 = second
 * moment v; ssmlm_optimizer_moments_numel elements of the model's dtype, parameter-arena
 * layout (the padding between tensors stays zero). */
void *ssmlm_optimizer_moment(const ssmlm_optimizer *o, int which);
int64_t ssmlm_optimizer_moments_numel(const ssmlm_optimizer *o);
ssmlm_dtype ssmlm_optimizer_dtype(const ssmlm_optimizer *o);
void ssmlm_optimizer_set_steps(ssmlm_optimizer *o, int64_t steps);

/* Learning-rate schedule (Megatron's "cosine" style):
 *   0 < warmup, step <= warmup: lr = peak * step / warmup       (0 at step 0)
 *   warmup < step <= total:     lr = min + 0.5 (1 + cos(pi t)) (peak - min),
 *                               t = (step - warmup) / (total - warmup)
 *   step > total:               lr = min
 * Negative steps count as 0.  Steps may be counted in samples: the caller converts. */
typedef struct ssmlm_schedule {
    double peak_lr, min_lr;
    int64_t warmup, total;
} ssmlm_schedule;
double ssmlm_schedule_lr(const ssmlm_schedule *s, int64_t step);

/* The paper's recipe (§3.2; architectures.md §6) scaled to a run of total_steps: peak 3e-4,
 * min 3e-5 (10 %), AdamW (0.9, 0.95), eps 1e-8, wd 0.1, clip 1.0.  Warmup is the fraction
 * max(1 %, 50,000 / 73,242,188) of the run, rounded up: the paper's own ratio (0.07 %) would
 * leave a short run with no warmup at all, so in practice 1 % (at least one step). */
void ssmlm_recipe_paper(int64_t total_steps, ssmlm_schedule *s, ssmlm_adamw_config *a);

#endif

/* train.h — the training loop: micro-batched gradient accumulation, data parallelism over
 * ranks, AdamW with the LR schedule, validation, metrics (JSONL + SVG loss curve),
 * checkpoints that survive SIGKILL, bit-exact resume, NaN/Inf detection. */
#ifndef SSMLM_TRAIN_H
#define SSMLM_TRAIN_H

#include "base/progress.h"
#include "train/data.h"
#include "train/dist.h"
#include "train/optim.h"

typedef struct ssmlm_train_config {
    const char *out_dir;       /* checkpoints, metrics.jsonl, loss.svg */
    int64_t steps;             /* optimizer steps of this run (total, counting resumed steps) */
    int64_t batch_rows;        /* global batch: rows of seq_len tokens per optimizer step */
    int64_t micro_rows;        /* rows per forward/backward on one rank */
    int64_t seq_len;
    ssmlm_schedule sched;
    ssmlm_adamw_config adam;
    int64_t eval_every;        /* steps between validation passes (0 = only at the end) */
    int64_t eval_rows;         /* validation rows per pass */
    int64_t ckpt_every;        /* steps between checkpoints (0 = only at the end) */
    int keep;                  /* checkpoints kept (>= 1) */
    int resume;                /* continue from out_dir/latest */
    int cross_doc;             /* let state and attention cross document boundaries */
    const char *no_decay;      /* comma-separated name substrings exempt from weight decay, or NULL
                                * (the parameter table already exempts norms, biases, A_log, D, dt_bias) */
    uint64_t seed;
    int quiet;
} ssmlm_train_config;

void ssmlm_train_defaults(ssmlm_train_config *tc);

/* Summary of a run, for callers and tests. */
typedef struct ssmlm_train_result {
    int64_t steps_done;        /* last completed step */
    double last_loss, last_val_loss;
    double tokens_per_s;       /* training tokens per second over this run */
    double seconds;
    double allreduce_seconds;  /* time in the gradient all-reduce */
} ssmlm_train_result;

/* Trains m on batches from train (and val, may be NULL).  On every rank the same model and
 * batchers must be given; rank 0 alone writes files and the progress display. */
ssmlm_status ssmlm_train_run(ssmlm_model *m, ssmlm_batcher *train, ssmlm_batcher *val,
                             const ssmlm_train_config *tc, ssmlm_dist *d, ssmlm_progress *p,
                             ssmlm_train_result *res);

/* Path of the newest complete checkpoint folder in out_dir (from out_dir/latest). */
ssmlm_status ssmlm_train_latest(const char *out_dir, char *path, size_t n);

#endif

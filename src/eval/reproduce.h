/* reproduce.h — small-scale reproductions of the paper's findings (`ssmlm reproduce`): the
 * shared options, one training run of an experiment (model + documents -> trained model,
 * timings, validation loss), and the report helpers every experiment writes with.
 *
 * Experiments:
 *   phonebook        Transformer / Mamba / Mamba-2 / hybrid trained on synthetic phone books,
 *                    evaluated on standard and reversed books up to 2x the training length
 *                    (paper Figures 3 and 7)                          src/eval/repro_phonebook.c
 *   attention-ratio  hybrids of one depth and size with 0..50% attention layers, validation
 *                    loss vs attention fraction (paper Figure 4)      src/eval/repro_ratio.c
 */
#ifndef SSMLM_EVAL_REPRODUCE_H
#define SSMLM_EVAL_REPRODUCE_H

#include "base/progress.h"
#include "train/data.h"
#include "train/train.h"

typedef struct ssmlm_repro_options {
    const char *out_dir;    /* report folder (created); each run trains in out_dir/runs/<name> */
    double budget;          /* training steps x budget (1 = the default, about 30 minutes on 2 cores) */
    int quick;              /* smoke-test sizes: a few minutes in all */
    uint64_t seed;          /* data, init and evaluation seeds derive from it */
    int quiet;              /* no progress display */
} ssmlm_repro_options;

void ssmlm_repro_defaults(ssmlm_repro_options *o);

ssmlm_status ssmlm_reproduce_phonebook(const ssmlm_repro_options *o);
ssmlm_status ssmlm_reproduce_attention_ratio(const ssmlm_repro_options *o);

/* ---- one training run -------------------------------------------------------------------- */
typedef struct repro_train_spec {
    const char *name;       /* run name: folder out_dir/runs/<name>, progress label */
    int64_t steps, batch_rows, seq_len;
    double lr, min_lr;      /* cosine from lr to min_lr after warmup */
    int64_t warmup;
    double weight_decay;    /* < 0: the AdamW default */
    double val_fraction;    /* documents held out for the validation loss (0 = none) */
    int64_t eval_rows;      /* validation rows per pass (0 = the loop's default) */
    uint64_t seed;
} repro_train_spec;

typedef struct repro_train_out {
    ssmlm_train_result res;
    int64_t params;         /* parameter count of the model */
    int64_t tokens;         /* training tokens processed (steps x rows x seq_len) */
} repro_train_out;

/* Creates the model of c (seeded init), trains it on docs as spec says with checkpoints and
 * metrics in out_dir/runs/<spec->name>, and returns it in *model (caller frees).  Prints a
 * one-line header and the progress bar unless o->quiet. */
ssmlm_status repro_train(const ssmlm_repro_options *o, const ssmlm_config *c, const ssmlm_docs *docs,
                         const repro_train_spec *spec, ssmlm_model **model, repro_train_out *out);
/* Trains an existing model further (a later phase of a curriculum: new data, a fresh optimizer
 * and schedule) in out_dir/runs/<spec->name>; spec->seed orders the data.  The model stays the
 * caller's, trained or not. */
ssmlm_status repro_train_more(const ssmlm_repro_options *o, ssmlm_model *m, const ssmlm_docs *docs,
                              const repro_train_spec *spec, repro_train_out *out);

/* ---- report helpers ---------------------------------------------------------------------- */
/* Report text is an ssmlm_text (src/base/base.h: ssmlm_text_printf, ssmlm_text_free). */
/* Writes the text to out_dir/<file> atomically (temp file + rename). */
ssmlm_status repro_text_save(const ssmlm_text *t, const char *out_dir, const char *file);

/* ---- attention-ratio experiment (repro_ratio.c): its parts, for tests ---------------------- */
#define REPRO_RATIO_LAYERS 24
#define REPRO_RATIO_POINTS 7
/* Attention ratios given to Algorithm 1 (the paper's notation): 0, 0.04, 0.08, 0.17, 0.25, 0.33,
 * 0.5, which place 0, 1, 2, 4, 6, 8, 12 attention layers among 24. */
extern const double repro_ratio_points[REPRO_RATIO_POINTS];
/* The experiment's model for an attention ratio: 24 layers from Algorithm 1 with MLP ratio 0,
 * tiny-mamba2 widths (d_model 64, byte vocabulary), attention 7 heads x 16 without position
 * encoding, so that an attention layer has about the parameters of a Mamba-2 layer. */
ssmlm_status repro_ratio_config(double attn_ratio, ssmlm_config *c);

/* The training mixture: seeded documents of byte tokens ending with SSMLM_BYTE_EOD, each
 * token with a recall flag (1 = only recalling the document's earlier context predicts it). */
typedef enum { REPRO_MIX_STORY, REPRO_MIX_PHONEBOOK, REPRO_MIX_MQAR, REPRO_MIX_COPY, REPRO_MIX_KINDS } repro_mix_kind;
const char *repro_mix_kind_name(int kind);
/* Story document i (language-like text, repro_ratio.c describes it), at most max_len tokens
 * (16 <= max_len <= 4096, cap >= max_len); *n gets the length. */
ssmlm_status repro_story_document(uint64_t seed, int64_t i, int64_t max_len, int32_t *tok, uint8_t *recall,
                                  int64_t cap, int64_t *n);
/* Document i of the mixture: its kind is drawn from (seed, i) with shares 55/15/15/15% (story,
 * phonebook, MQAR, copy); synthetic documents longer than max_len are cut to max_len - 1 tokens
 * plus EOD. */
ssmlm_status repro_mix_document(uint64_t seed, int64_t i, int64_t max_len, int32_t *tok, uint8_t *recall,
                                int64_t cap, int64_t *n, int *kind);

typedef struct repro_mix {
    ssmlm_docs *docs;       /* the documents, every token scored */
    int64_t n, n_tokens;
    int64_t *start;         /* [n + 1] token offsets */
    int32_t *tokens;        /* [n_tokens] */
    uint8_t *recall;        /* [n_tokens] recall flags */
    uint8_t *kind;          /* [n] repro_mix_kind */
} repro_mix;
/* Documents first, first + 1, ... until there are at least min_docs of them and min_tokens
 * tokens.  Free with repro_mix_free. */
ssmlm_status repro_mix_build(uint64_t seed, int64_t first, int64_t max_len, int64_t min_docs, int64_t min_tokens,
                             repro_mix *out);
void repro_mix_free(repro_mix *m);

/* Mean cross-entropy (nats/token) of every token after each document's first (each document
 * alone), overall, by kind, over the recall tokens and over the other tokens; with the token
 * counts. */
typedef struct repro_mix_loss {
    double all, kind[REPRO_MIX_KINDS], recall, other;
    int64_t n_all, n_kind[REPRO_MIX_KINDS], n_recall, n_other;
} repro_mix_loss;
/* Evaluates an fp32 model on docs of at most T + 1 tokens, rows x T tokens per forward. */
ssmlm_status repro_mix_eval(ssmlm_model *m, const repro_mix *val, int64_t T, int64_t rows, repro_mix_loss *out);

#endif

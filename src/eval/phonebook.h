/* phonebook.h — the Phonebook evaluation (evals.md §4): copying a phone number out of a book in
 * the context, in the standard layout (book, two shots, query) or the reversed one (shots and
 * the question before the book), as accuracy and "fuzzy memory" (correct digits) vs book length.
 *
 * Protocol (evals.md §4.1-4.2): for every length N (entries) and book r = 0..R-1, the prompt
 * and label come from ssmlm_phonebook_make with an RNG seeded from (seed, N, r) alone, so the
 * standard and the reversed evaluation ask about the same books and queries.  Greedy decoding
 * of at most max_new (50) tokens that stops at the first "\n" (the post-processing keeps only
 * the text before it, so stopping there changes nothing) or at the end-of-document token; the
 * prediction is that text, strip()ped; a sample is correct when it equals the label exactly.
 * Per length: mean accuracy, its std across books (ddof 1) and standard error, mean correct
 * digits (all samples, and the wrong ones alone), mean correct prefix, mean prompt tokens. */
#ifndef SSMLM_EVAL_PHONEBOOK_H
#define SSMLM_EVAL_PHONEBOOK_H

#include "base/base.h"
#include "base/progress.h"
#include "ssmlm.h"

#define SSMLM_PB_MAX_NEW 50
#define SSMLM_PB_LABEL_DIGITS 10

/* ---- metrics (pure functions) -------------------------------------------------------------- */
/* Post-processing: the text before the first "\n" of gen [n], with leading and trailing
 * whitespace removed as Python's str.strip() does on ASCII (space, \t \n \v \f \r, \x1c-\x1f).
 * Writes at most cap-1 bytes and a NUL into out (cap >= 1); returns the length written. */
size_t ssmlm_pb_postprocess(const char *gen, size_t n, char *out, size_t cap);
/* 1 when the post-processed prediction equals the label exactly. */
int ssmlm_pb_exact(const char *pred, const char *label);
/* #{i < 10 : i < len(pred) and pred[i] == label[i]} (label of 10 digits; evals.md §4.2). */
int ssmlm_pb_correct_digits(const char *pred, const char *label);
/* Length of the common prefix of pred and label (at most 10). */
int ssmlm_pb_correct_prefix(const char *pred, const char *label);

/* ---- evaluation ---------------------------------------------------------------------------- */
typedef struct ssmlm_pb_config {
    const int64_t *lengths;  /* book lengths N in entries (each >= 3) */
    int n_lengths;
    int64_t books;           /* R books (one prompt each) per length */
    int reversed;            /* the reversed layout (evals.md §4.2) */
    int allow_dup_names;     /* 0: unique full names in a book (the default) */
    uint64_t seed;
    int64_t max_new;         /* new tokens at most (SSMLM_PB_MAX_NEW) */
    int batch;               /* prompts per batched generation (default 16) */
} ssmlm_pb_config;

void ssmlm_pb_config_defaults(ssmlm_pb_config *c);

/* One evaluated prompt. */
typedef struct ssmlm_pb_sample {
    int64_t n_entries, book;
    char label[SSMLM_PB_LABEL_DIGITS + 1];
    char pred[SSMLM_PB_MAX_NEW + 1];  /* post-processed prediction (truncated to 50 bytes) */
    int correct, digits, prefix;
    int64_t prompt_tokens;
} ssmlm_pb_sample;

/* The numbers of one length. */
typedef struct ssmlm_pb_point {
    int64_t n_entries;
    int64_t samples;
    double accuracy;         /* mean of correct over the samples */
    double accuracy_std;     /* std of correct across books (ddof 1; 0 for one book) */
    double accuracy_se;      /* accuracy_std / sqrt(samples) */
    double digits;           /* mean correct digits (0..10) */
    double digits_wrong;     /* mean correct digits of the wrong samples (NaN when none is wrong) */
    double prefix;           /* mean correct prefix */
    double prompt_tokens;    /* mean prompt length in tokens */
} ssmlm_pb_point;

/* Prompt and label of book r of length N (what the evaluation asks); caller frees both. */
ssmlm_status ssmlm_pb_book(const ssmlm_pb_config *c, int64_t n_entries, int64_t book, char **prompt, char **label);

/* Per-length numbers from samples [n] of one length. */
void ssmlm_pb_summarize(const ssmlm_pb_sample *s, int64_t n, ssmlm_pb_point *out);

/* Evaluates a byte-level model: points [n_lengths]; samples (may be NULL) receives
 * n_lengths x books records, length-major.  p (may be NULL) is a progress display the caller
 * has begun (so one bar can span several evaluations): every evaluated book advances it by one. */
ssmlm_status ssmlm_pb_evaluate(ssmlm_model *m, const ssmlm_pb_config *c, ssmlm_progress *p,
                               ssmlm_pb_point *points, ssmlm_pb_sample *samples);

/* Appends a JSON object to t: the settings, the points ("entries", "prompt_tokens",
 * "accuracy", "accuracy_std", "accuracy_se", "correct_digits", "correct_digits_wrong" (null
 * when none is wrong), "correct_prefix", "samples") and, when samples is not NULL, every
 * sample ("entries", "book", "label", "prediction", "correct", "digits", "prefix"). */
void ssmlm_pb_json(ssmlm_text *t, const ssmlm_pb_config *c, const ssmlm_pb_point *points,
                   const ssmlm_pb_sample *samples);

#endif

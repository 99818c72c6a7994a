/* synth.h — seeded synthetic task generators: Phonebook (Jelassi et al. 2024), multi-query
 * associative recall (MQAR, Zoology/Based) and copying.  Documents are byte tokens (0..255)
 * ended by SSMLM_BYTE_EOD (256); a loss mask scores only the part the model must produce.
 *
 * Document i is generated from its own RNG stream, seeded from (seed, i): it does not depend
 * on n_docs, and the same config always gives the same corpus.
 *
 * PHONEBOOK: n entries uniform in [min_entries, max_entries] (min >= 3); prompt and label from
 *   ssmlm_phonebook_make (evals.md §4.1, or §4.2 with reversed); the document is
 *       prompt + " " + label + "\n" + EOD
 *   and the mask scores the 10 label digits and the "\n".  With queries = Q > 1, Q - 1 more
 *   entries (distinct, none of them a shot or the first query; drawn after a, b, q) follow as
 *   lines "First Last: dddddddddd\n" before the EOD, each answer's digits and "\n" scored:
 *   the prompt stays a prefix of the document, which holds Q copy examples instead of one
 *   (a book of n entries has at most n - 2 queries: Q is capped there).
 *
 * The alphabet of MQAR and copy has A = vocab symbols (0 selects 64); symbol s is the byte
 * 0x21 + s (printable ASCII, so A <= 94).
 *
 * MQAR: A even, 4 <= A; keys are symbols [0, A/2), values [A/2, A).  n pairs uniform in
 *   [min_entries, max_entries] (1 <= n <= A/2); n distinct keys (uniform, without
 *   replacement), each with a value uniform over the value symbols; then every key is queried
 *   once, in a uniformly shuffled order:
 *       k1 v1 k2 v2 ... kn vn "\n" q1 v(q1) q2 v(q2) ... qn v(qn) "\n" EOD
 *   The mask scores the answers v(qj) only.
 *
 * COPY: A >= 2; length n uniform in [min_entries, max_entries] (n >= 1); n symbols uniform:
 *       s1 ... sn "\n" s1 ... sn "\n" EOD
 *   The mask scores the copy and its closing "\n".
 *
 * With mask_all every token of the document (EOD included) is scored: a denser training
 * signal, since parts of the prompt are copies too (the phonebook's two shots repeat book
 * lines, the reversed query repeats the question's name).
 */
#ifndef SSMLM_TRAIN_SYNTH_H
#define SSMLM_TRAIN_SYNTH_H

#include "base/base.h"

typedef enum { SSMLM_SYNTH_PHONEBOOK, SSMLM_SYNTH_MQAR, SSMLM_SYNTH_COPY } ssmlm_synth_task;

typedef struct ssmlm_synth_config {
    int task;                           /* ssmlm_synth_task */
    int64_t n_docs;
    uint64_t seed;
    int64_t min_entries, max_entries;   /* phonebook entries per book (uniform), MQAR pairs, copy length */
    int reversed;                       /* phonebook: reversed layout (evals.md §4.2) */
    int allow_dup_names;                /* phonebook: default 0 = unique full names */
    int64_t vocab;                      /* MQAR / copy: alphabet size A (0 = 64) */
    int mask_all;                       /* score every token (all tasks), not only the answers */
    int64_t queries;                    /* phonebook: queried entries per book (0 or 1: one) */
} ssmlm_synth_config;

/* Defaults for a task: 1000 documents, seed 0; phonebook 20..60 entries, MQAR 4..16 pairs,
 * copy 8..32 symbols; standard layout, unique names, A = 64. */
void ssmlm_synth_defaults(ssmlm_synth_config *cfg, int task);
/* Checks the config (the error names the field and the rule). */
ssmlm_status ssmlm_synth_validate(const ssmlm_synth_config *cfg);
/* "phonebook", "mqar", "copy" <-> the enum (-1 / NULL when unknown). */
int ssmlm_synth_task_parse(const char *name);
const char *ssmlm_synth_task_name(int task);

/* Writes document i of the task as byte tokens plus mask into tok / mask, which must hold
 * cap entries; *n receives the length (EOD included).  Returns SSMLM_ERR_INVALID with the
 * needed size in *n when cap is too small (call with cap 0 to size it). */
ssmlm_status ssmlm_synth_document(const ssmlm_synth_config *cfg, int64_t i, int32_t *tok,
                                  uint8_t *mask, int64_t cap, int64_t *n);

/* Phonebook prompt text and label exactly as evals.md §4.1 (standard) / §4.2 (reversed):
 *   entries     "First Last: dddddddddd" (first digit 6..9), names frequency-weighted from
 *               the built-in lists (names.c), gender 1/2 each, capitalized like Python's
 *               str.capitalize(); unique full names unless allow_dup (resampled)
 *   standard    "\n".join(entries) + "\n\n" + entries[a] + "\n" + entries[b] + "\n\n" + name(q) + ":"
 *   reversed    entries[a] + "\n" + entries[b] + "\n\n" + "What is the phone number of " + name(q)
 *               + "?\n\n" + "\n".join(entries) + "\n\n" + name(q) + ":"
 *   label       phone(q)
 * with a, b, q three distinct indices drawn uniformly in that order after the entries.
 * n_entries >= 3.  *prompt and *label are malloc'ed; the caller frees them. */
ssmlm_status ssmlm_phonebook_make(ssmlm_rng *r, int64_t n_entries, int reversed, int allow_dup,
                                  char **prompt, char **label);

/* Uniform integer in [0, n) without modulo bias (n >= 1). */
uint64_t ssmlm_synth_below(ssmlm_rng *r, uint64_t n);

/* ---- built-in name lists (names.c) ------------------------------------------------------- */
typedef struct ssmlm_name {
    const char *name;    /* upper case, as in the Census files */
    uint16_t weight;     /* relative frequency in thousandths of a percent */
} ssmlm_name;
typedef struct ssmlm_name_list {
    const ssmlm_name *names;
    int64_t n;
} ssmlm_name_list;
typedef enum { SSMLM_NAMES_MALE, SSMLM_NAMES_FEMALE, SSMLM_NAMES_LAST } ssmlm_names_kind;
/* NULL for an unknown kind. */
const ssmlm_name_list *ssmlm_names_builtin(int kind);

#endif

/* sample.h — next-token sampling: greedy, temperature, top-k and top-p (nucleus) over one row
 * of logits, with a seeded random stream per sequence.
 *
 * Given logits l_i of the real vocabulary (entries >= vocab_size, the padding, are ignored):
 *   temperature 0:  the argmax (lowest index on ties), probability 1.
 *   otherwise:      order the ids by logit (descending, lower index first on ties); keep the
 *                   first top_k (if top_k > 0); p_i = softmax(l_i / temperature) over the kept
 *                   ids; then keep the shortest prefix whose mass reaches top_p (if top_p < 1,
 *                   "reaches" allowing 1e-12 for rounding), renormalize and draw one id.
 * Ids whose probability underflows to exactly 0 are dropped from the kept set. */
#ifndef SSMLM_INFER_SAMPLE_H
#define SSMLM_INFER_SAMPLE_H

#include "base/base.h"

typedef struct ssmlm_sampler_config {
    double temperature; /* >= 0; 0 = greedy */
    int64_t top_k;      /* >= 0; 0 = no limit */
    double top_p;       /* in (0, 1]; 1 = no limit */
    uint64_t seed;      /* with the sequence index, seeds each sequence's stream */
} ssmlm_sampler_config;

/* One kept candidate. */
typedef struct ssmlm_candidate {
    int64_t id;
    double prob;        /* renormalized over the kept set */
} ssmlm_candidate;

/* Scratch for one vocabulary; one sampler serves any number of sequences (each brings its
 * own RNG). */
typedef struct ssmlm_sampler {
    ssmlm_sampler_config cfg;
    int64_t vocab;            /* real vocabulary size */
    ssmlm_candidate *cand;    /* [vocab] */
} ssmlm_sampler;

/* temperature 1, no top-k, top_p 1, seed 0. */
void ssmlm_sampler_config_defaults(ssmlm_sampler_config *c);
/* Rejects a negative or non-finite temperature, a negative top_k, top_p outside (0, 1]. */
ssmlm_status ssmlm_sampler_config_check(const ssmlm_sampler_config *c);

ssmlm_status ssmlm_sampler_init(ssmlm_sampler *s, const ssmlm_sampler_config *c, int64_t vocab);
void ssmlm_sampler_free(ssmlm_sampler *s);

/* The random stream of sequence `index`: xoshiro256** seeded (through splitmix64) with
 *   seed XOR (0x9E3779B97F4A7C15 * (index + 1)),
 * so a sequence draws the same tokens whatever else shares its batch. */
void ssmlm_sampler_rng(ssmlm_rng *r, uint64_t seed, int64_t index);

/* The kept candidates for one row of n_logits >= vocab logits, most probable first; *out points
 * into the sampler's scratch (valid until the next call), *n_out is their count.  Fails on a
 * NaN or +Inf logit, or when every logit is -Inf. */
ssmlm_status ssmlm_sampler_candidates(ssmlm_sampler *s, const double *logits, int64_t n_logits,
                                      const ssmlm_candidate **out, int64_t *n_out);

/* Draws the next token from the kept candidates (greedy draws nothing from the RNG). */
ssmlm_status ssmlm_sampler_draw(ssmlm_sampler *s, ssmlm_rng *rng, const double *logits, int64_t n_logits,
                                int32_t *token);

#endif

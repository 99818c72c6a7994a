/* trainstate.h — the training-state file: everything besides the weights that a run needs to
 * resume bit-exactly (optimizer moments and step count, RNG states, data position, counters,
 * run metadata), checked against the model it is loaded into.
 *
 * Format: a safetensors file (self-describing; readable by any safetensors library).
 *   tensors
 *     "adam.m", "adam.v"   F32 or F64 (the model's dtype) [moments_numel]: first and second
 *                          AdamW moments in the parameter-arena layout, tensor i at its table
 *                          offset (listed in "layout"), zero padding between tensors
 *     "step"               I64 [1]  the loop's step
 *     "adam.step"          I64 [1]  AdamW steps taken (bias correction)
 *     "tokens_seen"        I64 [1]  the uint64 counter, bit for bit
 *     "rng"                U8 [n_rng, 32]  xoshiro256** states, s[0..3] as little-endian u64
 *     "data_pos"           U8 [data_pos_len]  the caller's opaque data position
 *   __metadata__ (string values)
 *     "format"        "ssmlm-trainstate"
 *     "version"       "1"
 *     "fingerprint"   16 hex digits, ssmlm_model_fingerprint of the model
 *     "dtype"         "F32" or "F64"
 *     "n_params", "moments_numel"   decimal
 *     "layout"        JSON [[name, offset, numel], ...] of the parameter table
 *     "adamw"         JSON {"beta1", "beta2", "eps", "weight_decay", "clip"} (informative:
 *                     the optimizer given to load keeps its own configuration)
 *     "run"           the caller's meta_json (may be empty)
 *     "checksum"      16 hex digits: FNV-1a-64 over the data of every tensor in file order,
 *                     each tensor's bytes taken as little-endian 64-bit words, then its
 *                     remaining bytes one at a time (h = (h ^ w) * 0x100000001b3)
 */
#ifndef SSMLM_TRAINSTATE_H
#define SSMLM_TRAINSTATE_H

#include "base/base.h"
#include "train/optim.h"

#define SSMLM_TRAINSTATE_MAX_RNG 4
#define SSMLM_TRAINSTATE_MAX_DATA_POS 64

typedef struct ssmlm_trainstate {
    int64_t step;
    uint64_t tokens_seen;
    ssmlm_rng rng[SSMLM_TRAINSTATE_MAX_RNG];
    int n_rng;                                        /* 0..4 */
    unsigned char data_pos[SSMLM_TRAINSTATE_MAX_DATA_POS];
    int data_pos_len;                                 /* 0..64 */
    char meta_json[2048];                             /* "" or a JSON value (schedule, ...) */
} ssmlm_trainstate;

/* Writes ts and the optimizer's moments and step count for model m (temp file + rename: a
 * failed save leaves any previous file untouched and no partial file). */
ssmlm_status ssmlm_trainstate_save(const char *path, const ssmlm_trainstate *ts, const ssmlm_optimizer *o,
                                   const ssmlm_model *m);
/* Reads a file written by ssmlm_trainstate_save into ts and o (moments, step count).  Checks
 * the format, version, checksum, every tensor's dtype and shape, and that the model's
 * fingerprint and dtype are those of the file; on any failure ts and o are unchanged. */
ssmlm_status ssmlm_trainstate_load(const char *path, ssmlm_trainstate *ts, ssmlm_optimizer *o,
                                   const ssmlm_model *m);

/* FNV-1a-64 of what fixes the model's computation and memory layout: the config JSON
 * (ssmlm_config_to_json) with the name, seed and initialization-only fields reset to their
 * defaults, then every tensor's name, shape, offset and weight-decay flag.  0 when out of memory. */
uint64_t ssmlm_model_fingerprint(const ssmlm_model *m);

#endif

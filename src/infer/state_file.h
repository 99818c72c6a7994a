/* state_file.h — saving, restoring and forking one sequence of an inference state.
 *
 * A state file holds one sequence: the conv and SSM states of every Mamba layer, the filled
 * part of every attention layer's KV cache (and its qkv conv window when the layer has one)
 * and the sequence's position.  It is a safetensors file stamped with the model's
 * architecture fingerprint, a hash of its weights and its dtype, and checksummed, so that a
 * state is only ever restored into the model that produced it.  docs/STATE_FILE.md documents
 * the format.
 */
#ifndef SSMLM_STATE_FILE_H
#define SSMLM_STATE_FILE_H

#include "base/base.h"

#define SSMLM_STATE_FORMAT "ssmlm-state"
#define SSMLM_STATE_VERSION "1"

/* Capacity a state needs to hold sequence b of s: its position when the model has attention
 * layers, else 1 (Mamba states have a fixed size). */
int64_t ssmlm_state_capacity_needed(const ssmlm_state *s, int64_t b);

/* 64-bit hash of the model's weights (every parameter tensor in table order, its bytes in the
 * model's dtype).  Reads the whole parameter arena: compute it once per loaded model. */
uint64_t ssmlm_model_weights_hash(const ssmlm_model *m);

/* The hash used for the weights and the state file checksum: 1 MiB blocks hashed independently
 * (in parallel), folded in order; the same value for any thread count. */
uint64_t ssmlm_hash_bytes(const void *data, size_t n);

#endif

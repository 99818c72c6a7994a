/* registry.c — the layer kinds' function tables, looked up by pattern character. */
#include "layers/layers.h"

#define LAYER_OPS(kind)                                                                      \
    {RNAME(kind##_acts_size), RNAME(kind##_scratch_size), RNAME(kind##_forward),             \
     RNAME(kind##_backward), RNAME(kind##_step)}
static const RNAME(layer_ops) k_mamba1 = LAYER_OPS(mamba1);
static const RNAME(layer_ops) k_mamba2 = LAYER_OPS(mamba2);
static const RNAME(layer_ops) k_attn = LAYER_OPS(attention);
static const RNAME(layer_ops) k_mlp = LAYER_OPS(mlp);

const RNAME(layer_ops) *RNAME(layer_ops_of)(const ssmlm_config *c, char kind) {
    switch (kind) {
    case 'M': return c->ssm_kind == SSMLM_SSM_MAMBA1 ? &k_mamba1 : &k_mamba2;
    case '*': return &k_attn;
    default: return &k_mlp;
    }
}

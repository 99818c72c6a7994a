/* layers.h — the layer kinds of a model: Mamba-1, Mamba-2, attention and MLP sublayers, plus
 * the embedding and LM head.  Each kind has forward, backward and a single-token step, all
 * working on the NORMED input of the layer (the pre-norm and the residual add live in
 * src/model/forward.c).
 *
 * Parameters reach a layer as an array of pointers indexed by the slot enums below (the
 * model's parameter table fills it; absent optional tensors, e.g. biases, are NULL).  Slots
 * 0 and 1 are the layer's pre-norm weight and bias, owned by the model.
 *
 * Conventions shared by every kind (x, y: [B, T, D], row-major):
 *   *_acts_size(c, B, T)     reals saved by forward for backward (the caller allocates)
 *   *_scratch_size(c, B, T)  reals of temporary space needed by forward, backward or step
 *                            (step uses T = 1)
 *   *_state_size(c, cap)     reals of inference state per sequence (cap: KV capacity)
 *   forward(c, w, B, T, seg, x, y, acts, scratch, state0, state1, cap)
 *        y = sublayer(x) (overwrite).  state0: per-sequence state to start from (NULL = fresh;
 *        attention accepts only NULL), state1: where to write the state after the last token
 *        (NULL = not needed).  States are [B][state_size].
 *   backward(c, w, gw, B, T, seg, x, acts, dy, dx, scratch)
 *        dx = d loss / d x (overwrite), gw[slot] += d loss / d w[slot] (NULL slots skipped).
 *        Assumes forward ran with state0 == NULL and the same seg.
 *   seg: segment ids [B*T] (int32, non-decreasing within each row) or NULL (one segment per
 *        row).  Documents packed into one row: a token interacts only with earlier tokens of
 *        its own segment — the SSM state restarts from 0 and conv taps of an earlier segment
 *        read 0 at a segment's first token; attention masks keys of other segments; the MLP
 *        ignores it.  state0 feeds the row's first segment; state1 is the state after the
 *        last segment alone (attention: seg must be NULL when state1 is written).
 *   step(c, w, B, x, y, state, pos, cap, scratch)
 *        one token per sequence: x, y [B, D]; state updated in place; pos[b] = number of
 *        tokens the sequence has already seen (used by attention). */
#ifndef SSMLM_LAYERS_H
#define SSMLM_LAYERS_H

#include "kernels/ops.h"

enum { SLOT_NORM_W = 0, SLOT_NORM_B = 1 };
enum { M1_IN_PROJ = 2, M1_CONV_W, M1_CONV_B, M1_X_PROJ, M1_DT_PROJ_W, M1_DT_PROJ_B, M1_A_LOG,
       M1_D, M1_OUT_PROJ, M1_NSLOTS };
enum { M2_IN_PROJ = 2, M2_CONV_W, M2_CONV_B, M2_DT_BIAS, M2_A_LOG, M2_D, M2_NORM_W, M2_OUT_PROJ,
       M2_NSLOTS };
enum { AT_QKV_W = 2, AT_QKV_B, AT_CONV_W, AT_CONV_B, AT_OUT_W, AT_OUT_B, AT_NSLOTS };
enum { MLP_FC1 = 2, MLP_FC2, MLP_NSLOTS };
#define SSMLM_MAX_SLOTS 12

/* Derived sizes (precision independent; src/model/config.c). */
int64_t ssmlm_m1_d_inner(const ssmlm_config *c);
int64_t ssmlm_m2_d_inner(const ssmlm_config *c);
int64_t ssmlm_m2_nheads(const ssmlm_config *c);
int64_t ssmlm_m2_conv_dim(const ssmlm_config *c);   /* E + 2 G N */
int64_t ssmlm_m2_in_proj_dim(const ssmlm_config *c); /* 2E + 2GN + H */
int64_t ssmlm_attn_qkv_dim(const ssmlm_config *c);  /* hd (Hq + 2 Hk) */
int64_t ssmlm_mlp_fc1_rows(const ssmlm_config *c);  /* F or 2F */

/* State sizes per sequence, in reals. */
int64_t ssmlm_mamba1_state_size(const ssmlm_config *c);    /* E K + E N: conv [E,K], ssm [E,N] */
int64_t ssmlm_mamba2_state_size(const ssmlm_config *c);    /* conv [conv_dim,K], ssm [H,P,N] */
int64_t ssmlm_attention_state_size(const ssmlm_config *c, int64_t cap); /* KV [cap,2,Hk,hd] (+conv [qkv,K]) */

#define SSMLM_DECLARE_LAYER(kind)                                                             \
    int64_t RNAME(kind##_acts_size)(const ssmlm_config *c, int64_t B, int64_t T);            \
    int64_t RNAME(kind##_scratch_size)(const ssmlm_config *c, int64_t B, int64_t T);         \
    void RNAME(kind##_forward)(const ssmlm_config *c, real *const *w, int64_t B, int64_t T,  \
                               const int32_t *seg, const real *x, real *y, real *acts,        \
                               real *scratch, const real *state0, real *state1, int64_t cap); \
    void RNAME(kind##_backward)(const ssmlm_config *c, real *const *w, real *const *gw,       \
                                int64_t B, int64_t T, const int32_t *seg, const real *x,      \
                                const real *acts, const real *dy, real *dx, real *scratch);   \
    void RNAME(kind##_step)(const ssmlm_config *c, real *const *w, int64_t B, const real *x, \
                            real *y, real *state, const int64_t *pos, int64_t cap,            \
                            real *scratch);

SSMLM_DECLARE_LAYER(mamba1)
SSMLM_DECLARE_LAYER(mamba2)
SSMLM_DECLARE_LAYER(attention)
SSMLM_DECLARE_LAYER(mlp)

/* The five functions of a layer kind, for code that walks a pattern. */
typedef struct RNAME(layer_ops) {
    int64_t (*acts_size)(const ssmlm_config *, int64_t, int64_t);
    int64_t (*scratch_size)(const ssmlm_config *, int64_t, int64_t);
    void (*forward)(const ssmlm_config *, real *const *, int64_t, int64_t, const int32_t *,
                    const real *, real *, real *, real *, const real *, real *, int64_t);
    void (*backward)(const ssmlm_config *, real *const *, real *const *, int64_t, int64_t,
                     const int32_t *, const real *, const real *, const real *, real *, real *);
    void (*step)(const ssmlm_config *, real *const *, int64_t, const real *, real *, real *,
                 const int64_t *, int64_t, real *);
} RNAME(layer_ops);

/* Functions of pattern character kind ('M' by c->ssm_kind, '*', '+'). */
const RNAME(layer_ops) *RNAME(layer_ops_of)(const ssmlm_config *c, char kind);

#endif

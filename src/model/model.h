/* model.h — internal model structure shared by the model files: the parameter table, the
 * arenas (parameters, gradients, activations) and the per-layer slot pointers. */
#ifndef SSMLM_MODEL_H
#define SSMLM_MODEL_H

#include "base/base.h"
#include "layers/layers.h"

/* Initialization rules of the parameter table. */
enum {
    INIT_NORMAL = 0,  /* N(0, init_std) */
    INIT_OUT,         /* N(0, init_std / sqrt(2 n_layer)): output projections */
    INIT_ZERO,
    INIT_ONE,         /* or 0 for zero-centered norms */
    INIT_CONV,        /* U(-1/sqrt(K), 1/sqrt(K)) */
    INIT_DT_BIAS,     /* inv_softplus(dt), dt log-uniform in [dt_min, dt_max], floored */
    INIT_A_LOG_M1,    /* log(n + 1) along the state dim */
    INIT_A_LOG_M2,    /* log U(a_init_min, a_init_max) */
    INIT_DT_PROJ,     /* U(-R^-1/2, R^-1/2) */
    INIT_NORM         /* 1, or 0 when the norm is zero-centered */
};

/* Global (non-layer) parameter slots. */
enum { GLOBAL_EMBED = 0, GLOBAL_NORM_W, GLOBAL_NORM_B, GLOBAL_LM_HEAD, GLOBAL_NSLOTS };

typedef struct ssmlm_param_entry {
    ssmlm_param_info info;
    int init;
    int bf16;     /* stored as bf16 bits (the matrices of a bf16-weight model) */
    void *data;   /* where the values live (set by the model) */
} ssmlm_param_entry;

/* Builds the parameter table of a config (malloc'ed array; caller frees).  Offsets are in
 * elements, each tensor starting on a 64-byte boundary for either precision. */
ssmlm_status ssmlm_param_table(const ssmlm_config *c, ssmlm_param_entry **out, int *n,
                               int64_t *arena_numel);

struct ssmlm_model {
    ssmlm_config cfg;
    ssmlm_dtype dtype;
    size_t esize;                 /* 4 or 8 */
    int n_params;
    ssmlm_param_entry *params;
    int64_t arena_numel;          /* elements of w (and g) */
    void *w, *g;                  /* parameter and gradient arenas */
    /* bf16-weight models (inference): the matrices live in wb (registered as a bf16 arena,
     * src/kernels/bf16.h), the other tensors in w; no fp32 copy of the matrices exists */
    int bf16_weights;
    uint16_t *wb;
    int64_t wb_numel;
    int *slot_index;              /* [n_layer][SSMLM_MAX_SLOTS] param index or -1 */
    int global_index[GLOBAL_NSLOTS];
    /* activations of the last forward */
    int64_t act_B, act_T;
    void *acts;
    size_t acts_bytes;
    int64_t *layer_act_off;       /* [n_layer] offset (elements) of each layer's saved acts */
    int64_t scratch_numel;
    int32_t *ids, *labels;        /* copies, [B*T] */
    int32_t *seg;                 /* segment ids set for the next forwards (copy) or NULL */
    int64_t seg_n;                /* their count */
    int32_t *fwd_seg;             /* the segment ids the last forward used (copy) or NULL */
    int64_t loss_count;
    int have_forward;
};

struct ssmlm_state {
    const ssmlm_model *model;
    ssmlm_dtype dtype;
    int64_t B, cap;
    int64_t *layer_off;           /* [n_layer] offset (elements) of each layer's [B][size] state */
    int64_t *pos;                 /* [B] tokens seen */
    void *data;                   /* all layer states */
    int64_t data_numel;
    void *work;                   /* step buffers: x, normed, y, hn [B D], stats [2B], scratch */
    int64_t scratch_numel;
};

/* Pointer to parameter i (or its gradient) in the model's precision; a bf16-stored parameter
 * gives its bf16 bits (the linear kernels recognise the bf16 arena). */
static inline void *model_w(const ssmlm_model *m, int i) { return i < 0 ? NULL : m->params[i].data; }
/* Bytes of parameter i as stored. */
static inline size_t model_param_bytes(const ssmlm_model *m, int i) {
    return (size_t)m->params[i].info.numel * (m->params[i].bf16 ? 2 : m->esize);
}
static inline void *model_g(const ssmlm_model *m, int i) {
    return i < 0 || !m->g ? NULL : (char *)m->g + (size_t)m->params[i].info.offset * m->esize;
}

/* mamba_ssm / Hugging Face names of parameter i (src/io/checkpoint.c); returns the count. */
int model_param_alt_names(const ssmlm_model *m, int i, char out[3][160]);

int64_t model_acts_numel_f32(const ssmlm_config *c, int64_t B, int64_t T);
int64_t model_acts_numel_f64(const ssmlm_config *c, int64_t B, int64_t T);
ssmlm_status ssmlm_model_forward_f32(ssmlm_model *m, const int32_t *ids, const int32_t *labels,
                                     int64_t B, int64_t T, void *logits, double *loss);
ssmlm_status ssmlm_model_forward_f64(ssmlm_model *m, const int32_t *ids, const int32_t *labels,
                                     int64_t B, int64_t T, void *logits, double *loss);
int64_t model_layer_state_size(const ssmlm_config *c, int l, int64_t cap);
int64_t model_step_scratch_f32(const ssmlm_config *c, int64_t B);
int64_t model_step_scratch_f64(const ssmlm_config *c, int64_t B);
ssmlm_status ssmlm_model_prefill_f32(ssmlm_model *m, ssmlm_state *s, const int32_t *ids, int64_t T, void *logits);
ssmlm_status ssmlm_model_prefill_f64(ssmlm_model *m, ssmlm_state *s, const int32_t *ids, int64_t T, void *logits);
ssmlm_status ssmlm_model_prefill_one_f32(ssmlm_model *m, ssmlm_state *s, int64_t b, const int32_t *ids, int64_t T, void *logits);
ssmlm_status ssmlm_model_prefill_one_f64(ssmlm_model *m, ssmlm_state *s, int64_t b, const int32_t *ids, int64_t T, void *logits);
ssmlm_status ssmlm_model_step_f32(ssmlm_model *m, ssmlm_state *s, const int32_t *ids, void *logits);
ssmlm_status ssmlm_model_step_f64(ssmlm_model *m, ssmlm_state *s, const int32_t *ids, void *logits);
ssmlm_status ssmlm_model_backward_f32(ssmlm_model *m, int accumulate);
ssmlm_status ssmlm_model_backward_f64(ssmlm_model *m, int accumulate);

#endif

/* ssmlm.h — the public interface of libssmlm: configs, presets, layer patterns, models
 * (build, initialize, load, forward, backward), safetensors files and error reporting.
 *
 * Dimension glossary (used in every shape comment of the project):
 *   B batch, T tokens, D d_model, E d_inner, N d_state, H heads, P head dim, G groups,
 *   K conv width, Q chunk, L layers, V vocab (padded), R dt_rank, F MLP hidden size.
 *
 * Every function that can fail returns ssmlm_status; on failure ssmlm_last_error() holds a
 * message naming what failed and where, and ssmlm_last_hint() a hint (possibly empty).
 */
#ifndef SSMLM_H
#define SSMLM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status and errors ---------------------------------------------------------------- */
typedef enum {
    SSMLM_OK = 0,
    SSMLM_ERR_INVALID,   /* invalid argument or configuration */
    SSMLM_ERR_IO,        /* file could not be opened, read or written */
    SSMLM_ERR_FORMAT,    /* malformed or hostile file content */
    SSMLM_ERR_MEMORY,    /* allocation failed */
    SSMLM_ERR_NUMERIC,   /* NaN or Inf found */
    SSMLM_ERR_UNSUPPORTED
} ssmlm_status;

const char *ssmlm_last_error(void);
const char *ssmlm_last_hint(void);
const char *ssmlm_status_name(ssmlm_status s);

/* ---- configuration ------------------------------------------------------------------- */
#define SSMLM_MAX_LAYERS 1024

typedef enum { SSMLM_SSM_MAMBA1 = 1, SSMLM_SSM_MAMBA2 = 2 } ssmlm_ssm_kind;

/* MLP activation.  GELU, RELU2 (squared ReLU): fc1 [F, D] then act;  SWIGLU (Megatron):
 * fc1 [2F, D], silu(first half) * second half;  GATED_SILU (mamba_ssm GatedMLP): fc1 [2F, D],
 * first half * silu(second half). */
typedef enum {
    SSMLM_ACT_GELU = 0,
    SSMLM_ACT_RELU2,
    SSMLM_ACT_SWIGLU,
    SSMLM_ACT_GATED_SILU
} ssmlm_act;

typedef enum { SSMLM_NORM_RMS = 0, SSMLM_NORM_LAYER } ssmlm_norm_kind;

/* Layer kinds of a pattern character. */
typedef enum { SSMLM_LAYER_MAMBA = 'M', SSMLM_LAYER_ATTN = '*', SSMLM_LAYER_MLP = '+' } ssmlm_layer_kind;

typedef struct ssmlm_config {
    char name[64];
    int64_t d_model;
    int64_t n_layer;              /* = strlen(pattern) */
    int64_t vocab_size;           /* real vocabulary */
    int64_t vocab_pad_multiple;   /* logits are [.., V] with V = vocab_size rounded up */
    char pattern[SSMLM_MAX_LAYERS + 1]; /* 'M' Mamba, '*' attention, '+' MLP */
    int ssm_kind;                 /* which Mamba 'M' means */
    int tie_embeddings;
    int norm_kind;                /* ssmlm_norm_kind, for the layer pre-norms and the final norm */
    int norm_zero_centered;       /* LayerNorm1p: scale = 1 + weight */
    double norm_eps;

    /* Mamba-1 */
    int64_t m1_d_state, m1_d_conv, m1_expand, m1_dt_rank; /* dt_rank: resolved (ceil(D/16) for auto) */
    int m1_conv_bias;
    /* Mamba-2 */
    int64_t m2_d_state, m2_d_conv, m2_expand, m2_headdim, m2_ngroups, m2_chunk_size;
    int m2_conv_bias;
    /* SSM initialization (both kinds) */
    double dt_min, dt_max, dt_init_floor, a_init_min, a_init_max;

    /* attention */
    int64_t attn_heads, attn_kv_heads, attn_head_dim;
    int64_t attn_rotary_dim;      /* rotated dims per head; 0 = no position encoding */
    double attn_rope_base;
    double attn_softmax_scale;    /* 0 = 1/sqrt(head_dim) */
    int attn_qkv_bias, attn_out_bias;
    int64_t attn_d_conv;          /* mamba_ssm MHA: depthwise causal conv on qkv (0 = none) */

    /* MLP */
    int64_t mlp_hidden;           /* F */
    int mlp_act;                  /* ssmlm_act */

    /* initialization */
    double init_std;              /* std of input projections and embeddings */
    uint64_t seed;
} ssmlm_config;

/* A config with every field at its default (Mamba-2 defaults of the paper, RMSNorm, untied). */
void ssmlm_config_defaults(ssmlm_config *c);
/* Resolves "auto" sizes: n_layer = strlen(pattern), attention head_dim 0 = d_model / heads,
 * MLP hidden 0 = 4 d_model, Mamba-1 dt_rank 0 = ceil(d_model / 16).  Presets, loaded configs
 * and created models are always resolved. */
void ssmlm_config_resolve(ssmlm_config *c);
/* Checks every rule; on failure the error names the field, the rule and a valid nearby value. */
ssmlm_status ssmlm_config_validate(const ssmlm_config *c);
/* Padded vocabulary V. */
int64_t ssmlm_config_vocab_padded(const ssmlm_config *c);
/* Loads a config JSON: either ssmlm's own keys or mamba_ssm's config.json (detected by keys). */
ssmlm_status ssmlm_config_load_json(ssmlm_config *c, const char *path);
ssmlm_status ssmlm_config_parse_json(ssmlm_config *c, const char *text, const char *where);
/* Writes ssmlm's own JSON form (temp file + rename). */
ssmlm_status ssmlm_config_save_json(const ssmlm_config *c, const char *path);
/* Serializes into a malloc'ed string (caller frees). */
char *ssmlm_config_to_json(const ssmlm_config *c);

/* Presets: transformer-8b, mamba-8b, mamba2-8b, hybrid-8b, *-130m, *-840m, tiny-*. */
ssmlm_status ssmlm_preset(ssmlm_config *c, const char *name);
/* NULL-terminated list of preset names. */
const char *const *ssmlm_preset_names(void);

/* Paper Algorithm 1: layer pattern with round(n*attn) attention and round(n*mlp) MLP layers.
 * out must hold n+1 chars.  Uses '+' for MLP. */
ssmlm_status ssmlm_pattern_allocate(int64_t n_layers, double attn_ratio, double mlp_ratio, char *out);
/* Validates an explicit pattern (M, *, +, and '-' as a synonym of '+', rewritten in place). */
ssmlm_status ssmlm_pattern_normalize(char *pattern);

/* ---- parameter table ------------------------------------------------------------------ */
typedef struct ssmlm_param_info {
    char name[96];        /* ssmlm name, e.g. "layers.3.mixer.in_proj.weight" */
    int ndim;
    int64_t shape[4];
    int64_t numel;
    int64_t offset;       /* in elements from the start of the parameter arena (64-byte aligned);
                           * the fp32/fp64 layout, also for a bf16-weight model (which stores its
                           * tensors elsewhere: use ssmlm_model_param_data) */
    int layer;            /* layer index, or -1 for embedding / final norm / lm head */
    int slot;             /* which parameter of its layer kind (src/layers/layers.h) */
    int weight_decay;     /* 1 if AdamW weight decay applies */
} ssmlm_param_info;

/* Parameter counts per component, for `ssmlm info`. */
typedef struct ssmlm_param_counts {
    int64_t embedding, lm_head, final_norm;
    int64_t mamba, attention, mlp; /* summed over layers, pre-norms included */
    int64_t n_mamba, n_attention, n_mlp;
    int64_t total;
} ssmlm_param_counts;

ssmlm_status ssmlm_config_count_params(const ssmlm_config *c, ssmlm_param_counts *out);
/* Bytes of activations an fp32 training step (forward + backward) keeps for B x T tokens. */
size_t ssmlm_config_activation_bytes(const ssmlm_config *c, int64_t B, int64_t T);

/* ---- models -------------------------------------------------------------------------- */
typedef enum { SSMLM_F32 = 0, SSMLM_F64 = 1 } ssmlm_dtype;

typedef struct ssmlm_model ssmlm_model;

/* Allocates a model (parameters only) for a validated config. */
ssmlm_status ssmlm_model_create(ssmlm_model **out, const ssmlm_config *c, ssmlm_dtype dtype);
/* Model flags of ssmlm_model_create_ex / ssmlm_model_load_ex. */
enum {
    /* Inference with bf16 weights: the weight matrices (every linear layer, the LM head and the
     * embedding table) are stored as bf16 only, halving their memory and the bytes a decode step
     * streams; norms, convolutions and the SSM parameters stay fp32.  Math stays fp32 (weights are
     * widened in registers, fp32 accumulators).  SSMLM_F32 only; backward is refused. */
    SSMLM_MODEL_BF16_WEIGHTS = 1u << 0
};
ssmlm_status ssmlm_model_create_ex(ssmlm_model **out, const ssmlm_config *c, ssmlm_dtype dtype, unsigned flags);
void ssmlm_model_free(ssmlm_model *m);
/* 1 when the model stores its matrices as bf16 (SSMLM_MODEL_BF16_WEIGHTS). */
int ssmlm_model_weights_bf16(const ssmlm_model *m);
/* 1 when tensor i is stored as bf16: ssmlm_model_param_data then gives uint16_t bf16 bits. */
int ssmlm_model_param_bf16(const ssmlm_model *m, int i);
/* Bytes of all parameters as stored. */
size_t ssmlm_model_weight_bytes(const ssmlm_model *m);
const ssmlm_config *ssmlm_model_config(const ssmlm_model *m);
ssmlm_dtype ssmlm_model_dtype(const ssmlm_model *m);
int ssmlm_model_n_params(const ssmlm_model *m);      /* number of tensors */
const ssmlm_param_info *ssmlm_model_param(const ssmlm_model *m, int i);
int ssmlm_model_find_param(const ssmlm_model *m, const char *name); /* index or -1 */
void *ssmlm_model_param_data(ssmlm_model *m, int i);  /* float* or double* by dtype; uint16_t*
                                                       * (bf16 bits) where ssmlm_model_param_bf16 */
void *ssmlm_model_grad_data(ssmlm_model *m, int i);   /* NULL before the first backward */
int64_t ssmlm_model_numel(const ssmlm_model *m);
/* Seeded initialization (see docs/ARCHITECTURE.md for the rules).  A bf16-weight model gets the
 * fp32 model's values rounded to bf16 (nearest even). */
void ssmlm_model_init(ssmlm_model *m, uint64_t seed);

/* Forward over B sequences of T tokens.  ids, labels: [B*T]; labels < 0 are ignored.
 * logits (may be NULL): [B, T, V] in the model's dtype.  loss (may be NULL): mean CE over
 * the positions whose label is not ignored.  labels may be NULL (no loss). Keeps the
 * activations needed by ssmlm_model_backward. */
ssmlm_status ssmlm_model_forward(ssmlm_model *m, const int32_t *ids, const int32_t *labels,
                                 int64_t B, int64_t T, void *logits, double *loss);
/* Segment ids for the following forwards: seg [n] (n = B*T of those forwards), int32,
 * non-decreasing within each row, numbering the documents packed into the row; a token then
 * interacts only with earlier tokens of its own segment (SSM and conv states restart, attention
 * is masked), as if each document ran alone.  Copied; they stay set until replaced or cleared
 * with seg = NULL (one segment per row).  ssmlm_model_forward rejects them when n != B*T or
 * when they decrease within a row; the backward uses those of its forward; prefill ignores
 * them. */
ssmlm_status ssmlm_model_set_segments(ssmlm_model *m, const int32_t *seg, int64_t n);
/* Gradients of the last forward's mean loss, written into the gradient arena (overwritten
 * when accumulate is 0, added to otherwise). */
ssmlm_status ssmlm_model_backward(ssmlm_model *m, int accumulate);
/* Zero the gradient arena. */
void ssmlm_model_zero_grad(ssmlm_model *m);

/* ---- inference state (prefill, then one token at a time) ------------------------------ */
/* Per sequence: conv and SSM states of every Mamba layer (fixed size) and the KV cache of every
 * attention layer (cap positions). */
typedef struct ssmlm_state ssmlm_state;

ssmlm_status ssmlm_state_create(ssmlm_state **out, const ssmlm_model *m, int64_t batch, int64_t cap);
void ssmlm_state_free(ssmlm_state *s);
/* Bytes of state per sequence: fixed Mamba state, and KV cache per position. */
void ssmlm_state_plan(const ssmlm_config *c, size_t *fixed_bytes, size_t *kv_bytes_per_pos, ssmlm_dtype dtype);
/* Copies sequence sb of src into sequence db of dst (same model and capacity; dst may be src):
 * the building block of forking a processed prompt into several continuations. */
ssmlm_status ssmlm_state_copy_seq(ssmlm_state *dst, int64_t db, const ssmlm_state *src, int64_t sb);
int64_t ssmlm_state_batch(const ssmlm_state *s);
int64_t ssmlm_state_capacity(const ssmlm_state *s);
/* Tokens sequence b has seen. */
int64_t ssmlm_state_pos(const ssmlm_state *s, int64_t b);
/* Runs T tokens of each of the state's B sequences through the parallel (chunked) path from a
 * fresh state, leaving the state after the last token.  ids [B*T]; logits [B, T, V] or NULL. */
ssmlm_status ssmlm_model_prefill(ssmlm_model *m, ssmlm_state *s, const int32_t *ids, int64_t T,
                                 void *logits);
/* Prefills only sequence b of the state (fresh, T tokens; the other sequences are untouched):
 * prompts of different lengths share one batched state.  logits [T, V] or NULL. */
ssmlm_status ssmlm_model_prefill_one(ssmlm_model *m, ssmlm_state *s, int64_t b, const int32_t *ids,
                                     int64_t T, void *logits);
/* One token per sequence through the recurrent step.  ids [B]; logits [B, V] or NULL. */
ssmlm_status ssmlm_model_step(ssmlm_model *m, ssmlm_state *s, const int32_t *ids, void *logits);

/* One sequence of a state to/from a file (docs/STATE_FILE.md): stamped with the model's
 * architecture, weights and dtype; a mismatching, truncated or corrupt file is refused. */
ssmlm_status ssmlm_state_save(const ssmlm_state *s, int64_t b, const char *path);
ssmlm_status ssmlm_state_load(ssmlm_state *s, int64_t b, const char *path);
/* n copies of sequence b of src in a new state of capacity cap (0 = src's; >= its position). */
ssmlm_status ssmlm_state_fork(ssmlm_state **out, const ssmlm_state *src, int64_t b, int64_t n, int64_t cap);

/* ---- safetensors ---------------------------------------------------------------------- */
typedef enum {
    SSMLM_ST_F32 = 0, SSMLM_ST_F64, SSMLM_ST_BF16, SSMLM_ST_F16,
    SSMLM_ST_I64, SSMLM_ST_I32, SSMLM_ST_U16, SSMLM_ST_U8, SSMLM_ST_I8
} ssmlm_st_dtype;

typedef struct ssmlm_st_tensor {
    char *name;
    int dtype;            /* ssmlm_st_dtype */
    int ndim;
    int64_t shape[8];
    int64_t numel;
    const void *data;     /* points into the mapped file */
    size_t nbytes;
} ssmlm_st_tensor;

typedef struct ssmlm_safetensors {
    char *path;
    void *map;
    size_t size;
    int n;
    ssmlm_st_tensor *tensors; /* sorted by data offset */
    char *metadata_json;      /* "__metadata__" object as JSON text, or NULL */
} ssmlm_safetensors;

/* Opens and validates a file: every rejection names the file, the tensor and the reason. */
ssmlm_status ssmlm_st_open(ssmlm_safetensors *st, const char *path);
void ssmlm_st_close(ssmlm_safetensors *st);
const ssmlm_st_tensor *ssmlm_st_find(const ssmlm_safetensors *st, const char *name);
/* Converts a floating tensor to float or double (dst holds numel values). */
ssmlm_status ssmlm_st_read_f32(const ssmlm_st_tensor *t, float *dst);
ssmlm_status ssmlm_st_read_f64(const ssmlm_st_tensor *t, double *dst);
/* Converts a floating tensor to bf16 bits (via fp32, round to nearest even; BF16 copied as is). */
ssmlm_status ssmlm_st_read_bf16(const ssmlm_st_tensor *t, uint16_t *dst);
size_t ssmlm_st_dtype_size(int dtype);
const char *ssmlm_st_dtype_name(int dtype);

/* A tensor to write. */
typedef struct ssmlm_st_out {
    const char *name;
    int dtype;            /* F32, F64, BF16 (data: uint16_t bits) or I64/I32 */
    int ndim;
    int64_t shape[8];
    const void *data;
} ssmlm_st_out;
/* Writes tensors (temp file + rename). metadata_json: a JSON object of strings, or NULL. */
ssmlm_status ssmlm_st_write(const char *path, const ssmlm_st_out *t, int n, const char *metadata_json);

/* ---- checkpoints ---------------------------------------------------------------------- */
/* Loads a model folder: config.json (ssmlm or mamba_ssm) + model.safetensors (ssmlm names,
 * mamba_ssm names or HF names).  Every expected tensor must be present with its shape.  A
 * training run folder (`ssmlm train --out DIR`) loads its latest checkpoint. */
ssmlm_status ssmlm_model_load(ssmlm_model **out, const char *dir, ssmlm_dtype dtype);
/* The same with model flags (SSMLM_MODEL_BF16_WEIGHTS: each matrix is converted to bf16 as it is
 * read; F32, F64, BF16 and F16 files; no full-precision copy of the model is made). */
ssmlm_status ssmlm_model_load_ex(ssmlm_model **out, const char *dir, ssmlm_dtype dtype, unsigned flags);
/* Writes config.json + model.safetensors into dir (created if needed), temp + rename.  Tensors
 * are written in their storage type (F32, F64, or BF16 for a bf16-weight model's matrices). */
ssmlm_status ssmlm_model_save(const ssmlm_model *m, const char *dir);

/* ---- files ---------------------------------------------------------------------------- */
/* Reads a whole file as NUL-terminated text (caller frees). */
ssmlm_status ssmlm_file_read_text(const char *path, char **text);

/* ---- threads -------------------------------------------------------------------------- */
void ssmlm_set_threads(int n);
int ssmlm_get_threads(void);
/* How idle OpenMP threads wait, chosen once at program start (call first thing in main, before
 * any OpenMP work).  Built against the OpenMP variant of OpenBLAS, BLAS runs on the same
 * OpenMP threads and libgomp's default (spin briefly, then sleep) is kept: a decode step opens
 * ~100 short parallel regions, and a sleeping thread costs a wake-up each.  Built against an
 * OpenBLAS with its own pthreads, spinning OpenMP threads would take the cores from BLAS's, so
 * unless OMP_WAIT_POLICY is set it is set to passive and the program re-executes itself
 * (libgomp reads the variable when it loads).  Returns the OpenBLAS threading model
 * (0 serial, 1 pthreads, 2 OpenMP). */
int ssmlm_threads_init(char **argv);

#ifdef __cplusplus
}
#endif
#endif

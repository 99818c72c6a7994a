/* state_file.c — one sequence of an inference state to and from a safetensors file, stamped
 * with the model (architecture fingerprint, weights hash, dtype) and checksummed; forking a
 * sequence into a new state.  The format is documented in docs/STATE_FILE.md. */
#include "infer/state_file.h"
#include "model/model.h"
#include "train/trainstate.h"
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <string.h>

/* ---- hashing ------------------------------------------------------------------------------ */

#define HASH_BLOCK ((size_t)1 << 20)

static const uint64_t k_p1 = 0x9e3779b185ebca87ull, k_p2 = 0xc2b2ae3d27d4eb4full, k_p3 = 0x165667b19e3779f9ull;

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t load_le64(const unsigned char *p) {
    uint64_t w = 0;
    for (int i = 7; i >= 0; i--) w = (w << 8) | p[i];
    return w;
}

/* murmur3's 64-bit finalizer: a bijection that mixes every input bit into every output bit */
static uint64_t fmix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

/* acc = rotl(acc + w p2, 31) p1 */
static uint64_t lane_round(uint64_t acc, uint64_t w) { return rotl64(acc + w * k_p2, 31) * k_p1; }

/* Fold x into h: h = fmix64(rotl(h, 29) p1 ^ x) (order-sensitive, injective in x). */
static uint64_t hash_mix(uint64_t h, uint64_t x) { return fmix64((rotl64(h, 29) * k_p1) ^ x); }

/* One block: four lanes over 32-byte stripes, remaining words into lane 0, remaining bytes into
 * lane 1, lanes combined and finalized with the length. */
static uint64_t hash_block(const unsigned char *p, size_t n, uint64_t seed) {
    uint64_t v[4] = {seed + k_p1 + k_p2, seed + k_p2, seed, seed - k_p1};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int j = 0; j < 4; j++) v[j] = lane_round(v[j], load_le64(p + i + 8 * (size_t)j));
    for (; i + 8 <= n; i += 8) v[0] = lane_round(v[0], load_le64(p + i));
    for (; i < n; i++) v[1] = lane_round(v[1], p[i]);
    uint64_t h = rotl64(v[0], 1) + rotl64(v[1], 7) + rotl64(v[2], 12) + rotl64(v[3], 18);
    return fmix64(h ^ (uint64_t)n);
}

uint64_t ssmlm_hash_bytes(const void *data, size_t n) {
    const unsigned char *p = data;
    int64_t nb = (int64_t)((n + HASH_BLOCK - 1) / HASH_BLOCK);
    uint64_t h = fmix64((uint64_t)n ^ k_p3);
    if (nb <= 1) return hash_mix(h, hash_block(p, n, 0));
    uint64_t *bh = malloc((size_t)nb * sizeof *bh);
    if (!bh) { /* same value, one block after the other */
        for (int64_t k = 0; k < nb; k++) {
            size_t o = (size_t)k * HASH_BLOCK, len = n - o < HASH_BLOCK ? n - o : HASH_BLOCK;
            h = hash_mix(h, hash_block(p + o, len, (uint64_t)k));
        }
        return h;
    }
#pragma omp parallel for schedule(static) if (nb > 8)
    for (int64_t k = 0; k < nb; k++) {
        size_t o = (size_t)k * HASH_BLOCK, len = n - o < HASH_BLOCK ? n - o : HASH_BLOCK;
        bh[k] = hash_block(p + o, len, (uint64_t)k);
    }
    for (int64_t k = 0; k < nb; k++) h = hash_mix(h, bh[k]);
    free(bh);
    return h;
}

static uint64_t hash_str(uint64_t h, const char *s) { return hash_mix(h, ssmlm_hash_bytes(s, strlen(s))); }

/* The stored bytes: a bf16-weight model (tagged) never matches its fp32 original, whose states
 * differ numerically. */
uint64_t ssmlm_model_weights_hash(const ssmlm_model *m) {
    uint64_t h = fmix64((uint64_t)m->esize ^ k_p3 ^ (m->bf16_weights ? k_p1 : 0));
    for (int i = 0; i < m->n_params; i++) h = hash_mix(h, ssmlm_hash_bytes(model_w(m, i), model_param_bytes(m, i)));
    return h;
}

/* ---- where a sequence lives in a state ----------------------------------------------------- */

/* Sequence b's part of layer l: fixed = conv/SSM state (Mamba) or the qkv conv window
 * (attention, often empty); kv = the KV cache [cap, 2, Hk hd] (attention), of which
 * kv_per_pos * pos elements are filled.  Offsets in elements from s->data. */
typedef struct seq_layer {
    int64_t kv_off, kv_per_pos;   /* kv_per_pos 0: no KV cache */
    int64_t fixed_off, fixed_numel;
} seq_layer;

static seq_layer seq_layer_of(const ssmlm_state *s, int l, int64_t b) {
    const ssmlm_config *c = &s->model->cfg;
    seq_layer r = {0, 0, 0, 0};
    int64_t ss = model_layer_state_size(c, l, s->cap), base = s->layer_off[l] + b * ss;
    if (c->pattern[l] == SSMLM_LAYER_ATTN) {
        r.kv_per_pos = ssmlm_attention_state_size(c, 1) - ssmlm_attention_state_size(c, 0);
        r.kv_off = base;
        r.fixed_off = base + s->cap * r.kv_per_pos;
        r.fixed_numel = ss - s->cap * r.kv_per_pos;
    } else {
        r.fixed_off = base;
        r.fixed_numel = ss;
    }
    return r;
}

static void *elem(const ssmlm_state *s, int64_t off) { return (char *)s->data + (size_t)off * s->model->esize; }

static int has_attention(const ssmlm_config *c) { return strchr(c->pattern, SSMLM_LAYER_ATTN) != NULL; }

int64_t ssmlm_state_capacity_needed(const ssmlm_state *s, int64_t b) {
    if (!s || b < 0 || b >= s->B) return -1;
    return has_attention(&s->model->cfg) && s->pos[b] > 1 ? s->pos[b] : 1;
}

/* Copies sequence sb of src into sequence db of dst (same model, any capacities that hold it). */
static void copy_seq_any_cap(ssmlm_state *dst, int64_t db, const ssmlm_state *src, int64_t sb) {
    const ssmlm_config *c = &src->model->cfg;
    size_t es = src->model->esize;
    for (int l = 0; l < c->n_layer; l++) {
        seq_layer d = seq_layer_of(dst, l, db), r = seq_layer_of(src, l, sb);
        if (r.kv_per_pos) memmove(elem(dst, d.kv_off), elem(src, r.kv_off), (size_t)(src->pos[sb] * r.kv_per_pos) * es);
        if (r.fixed_numel) memmove(elem(dst, d.fixed_off), elem(src, r.fixed_off), (size_t)r.fixed_numel * es);
    }
    dst->pos[db] = src->pos[sb];
}

/* ---- the file's tensors ------------------------------------------------------------------- */

/* Tensor k of sequence b: "layers.{l}.kv" [pos, 2, Hk hd] for attention, "layers.{l}.qkv_conv"
 * [n] for an attention layer's conv window, "layers.{l}.mamba" [n] for a Mamba layer; in layer
 * order.  Returns the count; out (may be NULL) receives name, shape and data offset. */
typedef struct state_tensor {
    char name[48];
    int ndim;
    int64_t shape[3];
    int64_t off, numel;
} state_tensor;

static int seq_tensors(const ssmlm_state *s, int64_t b, int64_t pos, state_tensor *out) {
    const ssmlm_config *c = &s->model->cfg;
    int n = 0;
    for (int l = 0; l < c->n_layer; l++) {
        seq_layer r = seq_layer_of(s, l, b);
        if (r.kv_per_pos) {
            if (out) {
                state_tensor *t = &out[n];
                snprintf(t->name, sizeof t->name, "layers.%d.kv", l);
                t->ndim = 3;
                t->shape[0] = pos;
                t->shape[1] = 2;
                t->shape[2] = r.kv_per_pos / 2;
                t->off = r.kv_off;
                t->numel = pos * r.kv_per_pos;
            }
            n++;
        }
        if (r.fixed_numel) {
            if (out) {
                state_tensor *t = &out[n];
                snprintf(t->name, sizeof t->name, "layers.%d.%s", l, r.kv_per_pos ? "qkv_conv" : "mamba");
                t->ndim = 1;
                t->shape[0] = r.fixed_numel;
                t->off = r.fixed_off;
                t->numel = r.fixed_numel;
            }
            n++;
        }
    }
    return n;
}

/* Checksum: every metadata entry but "checksum" (key, value) in file order, then every tensor
 * in data order (name, dtype name, rank, dims, data). */
static uint64_t checksum_meta(uint64_t h, const char *key, const char *value) {
    return hash_str(hash_str(h, key), value);
}

static uint64_t checksum_tensor(uint64_t h, const char *name, const char *dtype, int ndim, const int64_t *shape,
                                const void *data, size_t nbytes) {
    h = hash_str(hash_str(h, name), dtype);
    h = hash_mix(h, (uint64_t)ndim);
    for (int d = 0; d < ndim; d++) h = hash_mix(h, (uint64_t)shape[d]);
    return hash_mix(h, ssmlm_hash_bytes(data, nbytes));
}

static uint64_t checksum_start(void) { return fmix64(k_p3 ^ 0x5353544154450001ull); }

static void hex64(char out[17], uint64_t v) { snprintf(out, 17, "%016" PRIx64, v); }

/* ---- save --------------------------------------------------------------------------------- */

ssmlm_status ssmlm_state_save(const ssmlm_state *s, int64_t b, const char *path) {
    if (!s || !path) return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "saving inference state: no state or no path");
    if (b < 0 || b >= s->B)
        return ssmlm_fail(SSMLM_ERR_INVALID, "give a sequence index in [0, batch)",
                          "saving inference state to %s: sequence %lld is outside the state's batch of %lld", path,
                          (long long)b, (long long)s->B);
    const ssmlm_model *m = s->model;
    const ssmlm_config *c = &m->cfg;
    int st_dt = m->dtype == SSMLM_F64 ? SSMLM_ST_F64 : SSMLM_ST_F32;
    uint64_t fp = ssmlm_model_fingerprint(m);
    if (!fp) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "saving inference state to %s: out of memory", path);
    int n = seq_tensors(s, b, s->pos[b], NULL);
    state_tensor *ts = calloc((size_t)(n > 0 ? n : 1), sizeof *ts);
    ssmlm_st_out *outs = calloc((size_t)(n > 0 ? n : 1), sizeof *outs);
    cJSON *meta = cJSON_CreateObject();
    char *meta_text = NULL;
    ssmlm_status status = SSMLM_OK;
    if (!ts || !outs || !meta) {
        status = ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "saving inference state to %s: out of memory", path);
        goto done;
    }
    seq_tensors(s, b, s->pos[b], ts);

    char fp_hex[17], w_hex[17], sum_hex[17], pos_txt[24], cap_txt[24];
    hex64(fp_hex, fp);
    hex64(w_hex, ssmlm_model_weights_hash(m));
    snprintf(pos_txt, sizeof pos_txt, "%lld", (long long)s->pos[b]);
    snprintf(cap_txt, sizeof cap_txt, "%lld", (long long)ssmlm_state_capacity_needed(s, b));
    const char *entries[][2] = {
        {"format", SSMLM_STATE_FORMAT}, {"version", SSMLM_STATE_VERSION}, {"model", c->name},
        {"pattern", c->pattern},        {"dtype", ssmlm_st_dtype_name(st_dt)}, {"fingerprint", fp_hex},
        {"weights", w_hex},             {"position", pos_txt},                 {"capacity", cap_txt},
    };
    uint64_t h = checksum_start();
    int ok = 1;
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        h = checksum_meta(h, entries[i][0], entries[i][1]);
        ok = ok && cJSON_AddStringToObject(meta, entries[i][0], entries[i][1]) != NULL;
    }
    for (int i = 0; i < n; i++) {
        outs[i].name = ts[i].name;
        outs[i].dtype = st_dt;
        outs[i].ndim = ts[i].ndim;
        memcpy(outs[i].shape, ts[i].shape, sizeof ts[i].shape);
        outs[i].data = elem(s, ts[i].off);
        h = checksum_tensor(h, ts[i].name, ssmlm_st_dtype_name(st_dt), ts[i].ndim, ts[i].shape, outs[i].data,
                            (size_t)ts[i].numel * m->esize);
    }
    hex64(sum_hex, h);
    ok = ok && cJSON_AddStringToObject(meta, "checksum", sum_hex) != NULL;
    meta_text = ok ? cJSON_PrintUnformatted(meta) : NULL;
    if (!meta_text) {
        status = ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "saving inference state to %s: out of memory", path);
        goto done;
    }
    status = ssmlm_st_write(path, outs, n, meta_text);
    if (status != SSMLM_OK) ssmlm_error_context("saving inference state to %s", path);
done:
    free(meta_text);
    cJSON_Delete(meta);
    free(outs);
    free(ts);
    return status;
}

/* ---- load --------------------------------------------------------------------------------- */

/* Metadata string value, or NULL. */
static const char *meta_str(const cJSON *meta, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Strict decimal integer in [0, 2^62]. */
static int parse_count(const char *t, int64_t *out) {
    if (!t || !*t || strlen(t) > 19) return 0;
    int64_t v = 0;
    for (const char *q = t; *q; q++) {
        if (*q < '0' || *q > '9') return 0;
        v = v * 10 + (*q - '0');
    }
    if ((t[0] == '0' && t[1]) || v > ((int64_t)1 << 62)) return 0;
    *out = v;
    return 1;
}

#define LOAD_FAIL(code, hint, ...)                                                            \
    do {                                                                                      \
        status = ssmlm_fail(code, hint, __VA_ARGS__);                                         \
        goto done;                                                                            \
    } while (0)

ssmlm_status ssmlm_state_load(ssmlm_state *s, int64_t b, const char *path) {
    if (!s || !path) return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "loading inference state: no state or no path");
    if (b < 0 || b >= s->B)
        return ssmlm_fail(SSMLM_ERR_INVALID, "give a sequence index in [0, batch)",
                          "loading inference state %s: sequence %lld is outside the state's batch of %lld", path,
                          (long long)b, (long long)s->B);
    const ssmlm_model *m = s->model;
    const ssmlm_config *c = &m->cfg;
    const char *corrupt = "the file is damaged: save the state again";
    ssmlm_safetensors st;
    ssmlm_status status = ssmlm_st_open(&st, path);
    if (status != SSMLM_OK) {
        ssmlm_error_context("loading inference state");
        return status;
    }
    cJSON *meta = st.metadata_json ? cJSON_Parse(st.metadata_json) : NULL;
    state_tensor *want = NULL;
    const char *format = meta_str(meta, "format");
    if (!format || strcmp(format, SSMLM_STATE_FORMAT) != 0)
        LOAD_FAIL(SSMLM_ERR_FORMAT, "give a file written by ssmlm_state_save",
                  "%s: not an inference state file (metadata format is '%s', expected '" SSMLM_STATE_FORMAT "')",
                  path, format ? format : "missing");
    const char *version = meta_str(meta, "version");
    if (!version || strcmp(version, SSMLM_STATE_VERSION) != 0)
        LOAD_FAIL(SSMLM_ERR_UNSUPPORTED, "use the ssmlm version that wrote it",
                  "%s: state file version '%s' is not supported (this build reads version " SSMLM_STATE_VERSION ")",
                  path, version ? version : "missing");

    /* integrity first, so that damage is reported as damage and not as a mismatch */
    const char *sum_text = meta_str(meta, "checksum");
    if (!sum_text) LOAD_FAIL(SSMLM_ERR_FORMAT, corrupt, "%s: metadata lacks \"checksum\"", path);
    uint64_t h = checksum_start();
    for (const cJSON *e = meta->child; e; e = e->next)
        if (strcmp(e->string, "checksum") != 0) h = checksum_meta(h, e->string, e->valuestring);
    for (int i = 0; i < st.n; i++) {
        const ssmlm_st_tensor *t = &st.tensors[i];
        h = checksum_tensor(h, t->name, ssmlm_st_dtype_name(t->dtype), t->ndim, t->shape, t->data, t->nbytes);
    }
    char hex[17];
    hex64(hex, h);
    if (strcmp(hex, sum_text) != 0)
        LOAD_FAIL(SSMLM_ERR_FORMAT, corrupt, "%s: checksum is %s but the file records %s (corrupted file)", path,
                  hex, sum_text);

    /* the model */
    const char *dtype = meta_str(meta, "dtype"), *fp_text = meta_str(meta, "fingerprint");
    const char *w_text = meta_str(meta, "weights"), *name = meta_str(meta, "model");
    const char *pattern = meta_str(meta, "pattern");
    int64_t pos = 0, need = 0;
    if (!dtype || !fp_text || !w_text || !name || !pattern || !parse_count(meta_str(meta, "position"), &pos) ||
        !parse_count(meta_str(meta, "capacity"), &need))
        LOAD_FAIL(SSMLM_ERR_FORMAT, corrupt,
                  "%s: metadata needs \"model\", \"pattern\", \"dtype\", \"fingerprint\", \"weights\" and decimal "
                  "\"position\" and \"capacity\"", path);
    int st_dt = m->dtype == SSMLM_F64 ? SSMLM_ST_F64 : SSMLM_ST_F32;
    if (strcmp(dtype, ssmlm_st_dtype_name(st_dt)) != 0)
        LOAD_FAIL(SSMLM_ERR_INVALID, "load the model with the dtype the state was saved with",
                  "%s: state was saved from an %s model, this model is %s", path, dtype, ssmlm_st_dtype_name(st_dt));
    uint64_t fp = ssmlm_model_fingerprint(m);
    if (!fp) LOAD_FAIL(SSMLM_ERR_MEMORY, NULL, "loading inference state %s: out of memory", path);
    hex64(hex, fp);
    if (strcmp(hex, fp_text) != 0)
        LOAD_FAIL(SSMLM_ERR_INVALID, "restore a state into the model that saved it",
                  "%s: state belongs to another model architecture ('%s', pattern %s, fingerprint %s; this model: "
                  "'%s', pattern %s, fingerprint %s)", path, name, pattern, fp_text, c->name, c->pattern, hex);
    hex64(hex, ssmlm_model_weights_hash(m));
    if (strcmp(hex, w_text) != 0)
        LOAD_FAIL(SSMLM_ERR_INVALID,
                  "restore a state into the model that saved it: the same checkpoint, with bf16 weights "
                  "(--bf16) only if that model had them",
                  "%s: state was saved from a model with the same architecture but other weights (weights hash %s, "
                  "this model %s)", path, w_text, hex);
    int64_t need_here = has_attention(c) && pos > 1 ? pos : 1;
    if (need != need_here)
        LOAD_FAIL(SSMLM_ERR_FORMAT, corrupt, "%s: capacity %lld does not match position %lld", path, (long long)need,
                  (long long)pos);
    if (need > s->cap)
        LOAD_FAIL(SSMLM_ERR_INVALID, "create the state with a larger capacity",
                  "%s: the saved sequence is at position %lld, more than the state's KV capacity %lld", path,
                  (long long)pos, (long long)s->cap);

    /* the tensors: exactly those of this model at this position, in layer order */
    int n = seq_tensors(s, b, pos, NULL);
    want = calloc((size_t)(n > 0 ? n : 1), sizeof *want);
    if (!want) LOAD_FAIL(SSMLM_ERR_MEMORY, NULL, "loading inference state %s: out of memory", path);
    seq_tensors(s, b, pos, want);
    if (st.n != n) LOAD_FAIL(SSMLM_ERR_FORMAT, corrupt, "%s: %d tensors, this model's state has %d", path, st.n, n);
    for (int i = 0; i < n; i++) {
        const ssmlm_st_tensor *t = &st.tensors[i];
        int same = strcmp(t->name, want[i].name) == 0 && t->dtype == st_dt && t->ndim == want[i].ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == want[i].shape[d];
        if (!same)
            LOAD_FAIL(SSMLM_ERR_FORMAT, corrupt, "%s: tensor %d is '%s' %s of rank %d, expected '%s' %s [%lld%s]", path,
                      i, t->name, ssmlm_st_dtype_name(t->dtype), t->ndim, want[i].name, ssmlm_st_dtype_name(st_dt),
                      (long long)want[i].shape[0], want[i].ndim > 1 ? ", ..." : "");
    }
    for (int i = 0; i < n; i++) memcpy(elem(s, want[i].off), st.tensors[i].data, st.tensors[i].nbytes);
    s->pos[b] = pos;
done:
    free(want);
    cJSON_Delete(meta);
    ssmlm_st_close(&st);
    return status;
}

/* ---- fork --------------------------------------------------------------------------------- */

ssmlm_status ssmlm_state_fork(ssmlm_state **out, const ssmlm_state *src, int64_t b, int64_t n, int64_t cap) {
    if (!out) return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "forking inference state: no output");
    *out = NULL;
    if (!src) return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "forking inference state: no source state");
    if (b < 0 || b >= src->B)
        return ssmlm_fail(SSMLM_ERR_INVALID, "give a sequence index in [0, batch)",
                          "forking inference state: sequence %lld is outside the state's batch of %lld", (long long)b,
                          (long long)src->B);
    if (n < 1)
        return ssmlm_fail(SSMLM_ERR_INVALID, "fork into at least one sequence",
                          "forking inference state: %lld copies requested", (long long)n);
    if (cap < 0)
        return ssmlm_fail(SSMLM_ERR_INVALID, "give a capacity >= the position, or 0 for the source's capacity",
                          "forking inference state: negative capacity %lld", (long long)cap);
    if (cap == 0) cap = src->cap;
    int64_t need = ssmlm_state_capacity_needed(src, b);
    if (cap < need)
        return ssmlm_fail(SSMLM_ERR_INVALID, "give a capacity of at least the sequence's position",
                          "forking inference state: sequence %lld is at position %lld, more than the capacity %lld",
                          (long long)b, (long long)src->pos[b], (long long)cap);
    ssmlm_state *s = NULL;
    ssmlm_status status = ssmlm_state_create(&s, src->model, n, cap);
    if (status != SSMLM_OK) {
        ssmlm_error_context("forking inference state");
        return status;
    }
    for (int64_t k = 0; k < n; k++) copy_seq_any_cap(s, k, src, b);
    *out = s;
    return SSMLM_OK;
}

/* trainstate.c — save and load of the training-state file (format in trainstate.h): AdamW
 * moments, counters, RNG states, data position and run metadata in one safetensors file,
 * fingerprinted against the model and checksummed. */
#include "train/trainstate.h"
#include "model/model.h"
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <string.h>

#define TS_FORMAT "ssmlm-trainstate"
#define TS_VERSION "1"
#define TS_RNG_BYTES 32

static const uint64_t k_fnv_offset = 0xcbf29ce484222325ull, k_fnv_prime = 0x100000001b3ull;

static uint64_t fnv_bytes(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * k_fnv_prime;
    return h;
}

/* Checksum step of one tensor: little-endian 64-bit words, then the remaining bytes. */
static uint64_t fnv_words(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = 0;
        for (int b = 7; b >= 0; b--) w = (w << 8) | p[i + (size_t)b];
        h = (h ^ w) * k_fnv_prime;
    }
    return fnv_bytes(h, p + i, n - i);
}

uint64_t ssmlm_model_fingerprint(const ssmlm_model *m) {
    ssmlm_config c = m->cfg, d;
    ssmlm_config_defaults(&d);
    c.name[0] = 0;
    c.seed = d.seed;
    c.init_std = d.init_std;
    c.dt_min = d.dt_min;
    c.dt_max = d.dt_max;
    c.dt_init_floor = d.dt_init_floor;
    c.a_init_min = d.a_init_min;
    c.a_init_max = d.a_init_max;
    char *json = ssmlm_config_to_json(&c);
    if (!json) return 0;
    uint64_t h = fnv_bytes(k_fnv_offset, json, strlen(json));
    free(json);
    for (int i = 0; i < m->n_params; i++) {
        const ssmlm_param_info *p = &m->params[i].info;
        char line[256];
        int n = snprintf(line, sizeof line, "\n%s %d %lld %lld %lld %lld @%lld wd%d", p->name, p->ndim,
                         (long long)p->shape[0], (long long)p->shape[1], (long long)p->shape[2],
                         (long long)p->shape[3], (long long)p->offset, p->weight_decay);
        h = fnv_bytes(h, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    }
    return h;
}

/* ---- save -------------------------------------------------------------------------------- */

static int add_str(cJSON *o, const char *key, const char *value) {
    return cJSON_AddStringToObject(o, key, value) != NULL;
}

/* cJSON value printed to a string and added as a string value; takes ownership of v. */
static int add_json_str(cJSON *o, const char *key, cJSON *v) {
    if (!v) return 0;
    char *text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    if (!text) return 0;
    int ok = add_str(o, key, text);
    free(text);
    return ok;
}

static cJSON *layout_json(const ssmlm_model *m) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < m->n_params; i++) {
        const ssmlm_param_info *p = &m->params[i].info;
        cJSON *e = cJSON_CreateArray();
        if (!e || !cJSON_AddItemToArray(a, e)) {
            cJSON_Delete(e);
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddItemToArray(e, cJSON_CreateString(p->name));
        cJSON_AddItemToArray(e, cJSON_CreateNumber((double)p->offset));
        cJSON_AddItemToArray(e, cJSON_CreateNumber((double)p->numel));
    }
    return a;
}

static cJSON *adamw_json(const ssmlm_adamw_config *c) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "beta1", c->beta1);
    cJSON_AddNumberToObject(o, "beta2", c->beta2);
    cJSON_AddNumberToObject(o, "eps", c->eps);
    cJSON_AddNumberToObject(o, "weight_decay", c->weight_decay);
    cJSON_AddNumberToObject(o, "clip", c->clip);
    return o;
}

static void put_u64le(unsigned char *dst, uint64_t x) {
    for (int b = 0; b < 8; b++) dst[b] = (unsigned char)(x >> (8 * b));
}

static uint64_t get_u64le(const unsigned char *src) {
    uint64_t x = 0;
    for (int b = 7; b >= 0; b--) x = (x << 8) | src[b];
    return x;
}

/* Checks that optimizer and model belong together. */
static ssmlm_status check_pair(const ssmlm_optimizer *o, const ssmlm_model *m) {
    if (ssmlm_optimizer_dtype(o) != m->dtype || ssmlm_optimizer_moments_numel(o) != m->arena_numel)
        return ssmlm_fail(SSMLM_ERR_INVALID, "create the optimizer for this model",
                          "the optimizer (%lld %s moments) does not belong to the model (%lld %s parameters)",
                          (long long)ssmlm_optimizer_moments_numel(o),
                          ssmlm_optimizer_dtype(o) == SSMLM_F64 ? "F64" : "F32", (long long)m->arena_numel,
                          m->dtype == SSMLM_F64 ? "F64" : "F32");
    return SSMLM_OK;
}

static ssmlm_status check_state(const ssmlm_trainstate *ts) {
    if (ts->step < 0)
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "training state step %lld is negative", (long long)ts->step);
    if (ts->n_rng < 0 || ts->n_rng > SSMLM_TRAINSTATE_MAX_RNG)
        return ssmlm_fail(SSMLM_ERR_INVALID, "use at most 4 RNG streams", "training state has %d RNG states (0..%d)",
                          ts->n_rng, SSMLM_TRAINSTATE_MAX_RNG);
    if (ts->data_pos_len < 0 || ts->data_pos_len > SSMLM_TRAINSTATE_MAX_DATA_POS)
        return ssmlm_fail(SSMLM_ERR_INVALID, "keep the data position within 64 bytes",
                          "training state data position has %d bytes (0..%d)", ts->data_pos_len,
                          SSMLM_TRAINSTATE_MAX_DATA_POS);
    if (!memchr(ts->meta_json, 0, sizeof ts->meta_json))
        return ssmlm_fail(SSMLM_ERR_INVALID, "keep the run metadata under 2048 bytes",
                          "training state run metadata is not NUL-terminated within %zu bytes", sizeof ts->meta_json);
    if (ts->meta_json[0]) {
        cJSON *j = cJSON_Parse(ts->meta_json);
        if (!j)
            return ssmlm_fail(SSMLM_ERR_INVALID, "give a JSON object such as {\"tokens\": 1000}",
                              "training state run metadata is not valid JSON");
        cJSON_Delete(j);
    }
    return SSMLM_OK;
}

ssmlm_status ssmlm_trainstate_save(const char *path, const ssmlm_trainstate *ts, const ssmlm_optimizer *o,
                                   const ssmlm_model *m) {
    ssmlm_status s = check_pair(o, m);
    if (s == SSMLM_OK) s = check_state(ts);
    if (s != SSMLM_OK) {
        ssmlm_error_context("not saving training state %s", path);
        return s;
    }
    int64_t step = ts->step, adam_step = ssmlm_optimizer_steps(o), tokens;
    memcpy(&tokens, &ts->tokens_seen, sizeof tokens);
    unsigned char rng[SSMLM_TRAINSTATE_MAX_RNG * TS_RNG_BYTES];
    for (int k = 0; k < ts->n_rng; k++)
        for (int w = 0; w < 4; w++) put_u64le(rng + k * TS_RNG_BYTES + 8 * w, ts->rng[k].s[w]);
    int mdt = m->dtype == SSMLM_F64 ? SSMLM_ST_F64 : SSMLM_ST_F32;
    ssmlm_st_out t[] = {
        {"adam.m", mdt, 1, {m->arena_numel}, ssmlm_optimizer_moment(o, 0)},
        {"adam.v", mdt, 1, {m->arena_numel}, ssmlm_optimizer_moment(o, 1)},
        {"step", SSMLM_ST_I64, 1, {1}, &step},
        {"adam.step", SSMLM_ST_I64, 1, {1}, &adam_step},
        {"tokens_seen", SSMLM_ST_I64, 1, {1}, &tokens},
        {"rng", SSMLM_ST_U8, 2, {ts->n_rng, TS_RNG_BYTES}, rng},
        {"data_pos", SSMLM_ST_U8, 1, {ts->data_pos_len}, ts->data_pos},
    };
    int nt = (int)(sizeof t / sizeof t[0]);
    /* empty tensors last: they then sit at the end of the data section, after every byte */
    if (ts->n_rng == 0) {
        ssmlm_st_out e = t[5];
        t[5] = t[6];
        t[6] = e;
    }
    uint64_t sum = k_fnv_offset;
    for (int i = 0; i < nt; i++) {
        int64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        sum = fnv_words(sum, t[i].data, (size_t)numel * ssmlm_st_dtype_size(t[i].dtype));
    }
    char hex_fp[32], hex_sum[32], num[2][32];
    snprintf(hex_fp, sizeof hex_fp, "%016" PRIx64, ssmlm_model_fingerprint(m));
    snprintf(hex_sum, sizeof hex_sum, "%016" PRIx64, sum);
    snprintf(num[0], sizeof num[0], "%d", m->n_params);
    snprintf(num[1], sizeof num[1], "%lld", (long long)m->arena_numel);
    cJSON *meta = cJSON_CreateObject();
    int ok = meta && add_str(meta, "format", TS_FORMAT) && add_str(meta, "version", TS_VERSION) &&
             add_str(meta, "fingerprint", hex_fp) && add_str(meta, "dtype", ssmlm_st_dtype_name(mdt)) &&
             add_str(meta, "n_params", num[0]) && add_str(meta, "moments_numel", num[1]) &&
             add_json_str(meta, "layout", layout_json(m)) &&
             add_json_str(meta, "adamw", adamw_json(ssmlm_optimizer_config(o))) &&
             add_str(meta, "run", ts->meta_json) && add_str(meta, "checksum", hex_sum);
    char *meta_text = ok ? cJSON_PrintUnformatted(meta) : NULL;
    cJSON_Delete(meta);
    if (!meta_text) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory writing training state %s", path);
    s = ssmlm_st_write(path, t, nt, meta_text);
    free(meta_text);
    if (s != SSMLM_OK) ssmlm_error_context("saving training state");
    return s;
}

/* ---- load -------------------------------------------------------------------------------- */

#define LOAD_FAIL(status, hint, ...)                                                           \
    do {                                                                                       \
        s = ssmlm_fail(status, hint, __VA_ARGS__);                                             \
        goto done;                                                                             \
    } while (0)

static const char *meta_get(const cJSON *meta, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Tensor name with the given dtype, rank and (for rank >= 1) leading size; NULL + error. */
static const ssmlm_st_tensor *want_tensor(const ssmlm_safetensors *st, const char *name, int dtype, int ndim,
                                          int64_t dim0, ssmlm_status *s) {
    const ssmlm_st_tensor *t = ssmlm_st_find(st, name);
    const char *hint = "the file is damaged or was not written by ssmlm; use another checkpoint";
    if (!t) {
        *s = ssmlm_fail(SSMLM_ERR_FORMAT, hint, "%s: tensor '%s' is missing", st->path, name);
        return NULL;
    }
    if (t->dtype != dtype || t->ndim != ndim || (dim0 >= 0 && t->shape[0] != dim0)) {
        char shape[96] = "";
        size_t at = 0;
        for (int d = 0; d < t->ndim && at < sizeof shape; d++)
            at += (size_t)snprintf(shape + at, sizeof shape - at, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        *s = ssmlm_fail(SSMLM_ERR_FORMAT, hint, "%s: tensor '%s' is %s [%s], expected %s of rank %d%s", st->path,
                        name, ssmlm_st_dtype_name(t->dtype), shape, ssmlm_st_dtype_name(dtype), ndim,
                        dim0 >= 0 ? " with the model's size" : "");
        return NULL;
    }
    return t;
}

static int64_t get_i64(const ssmlm_st_tensor *t) {
    int64_t x;
    memcpy(&x, t->data, sizeof x);
    return x;
}

ssmlm_status ssmlm_trainstate_load(const char *path, ssmlm_trainstate *ts, ssmlm_optimizer *o,
                                   const ssmlm_model *m) {
    ssmlm_status s = check_pair(o, m);
    if (s != SSMLM_OK) return s;
    ssmlm_safetensors st;
    s = ssmlm_st_open(&st, path);
    if (s != SSMLM_OK) {
        ssmlm_error_context("loading training state");
        return s;
    }
    cJSON *meta = st.metadata_json ? cJSON_Parse(st.metadata_json) : NULL;
    const char *bad = "the file is damaged or was not written by ssmlm; use another checkpoint";
    const char *format = meta_get(meta, "format");
    if (!format || strcmp(format, TS_FORMAT) != 0)
        LOAD_FAIL(SSMLM_ERR_FORMAT, "give the trainstate.safetensors file of a checkpoint folder",
                  "%s is not a training state (its metadata has no \"format\": \"" TS_FORMAT "\")", path);
    const char *version = meta_get(meta, "version");
    if (!version || strcmp(version, TS_VERSION) != 0)
        LOAD_FAIL(SSMLM_ERR_UNSUPPORTED, "use the ssmlm version that wrote it",
                  "%s: training state version '%s' is not supported (this build reads version " TS_VERSION ")",
                  path, version ? version : "(missing)");
    char want_fp[32];
    snprintf(want_fp, sizeof want_fp, "%016" PRIx64, ssmlm_model_fingerprint(m));
    const char *fp = meta_get(meta, "fingerprint");
    if (!fp || strcmp(fp, want_fp) != 0)
        LOAD_FAIL(SSMLM_ERR_INVALID,
                  "resume with the model configuration (architecture, vocabulary, pattern) of the run that wrote it",
                  "%s was written for a model with fingerprint %s, but this model's fingerprint is %s", path,
                  fp ? fp : "(missing)", want_fp);
    const char *want_dt = m->dtype == SSMLM_F64 ? "F64" : "F32";
    const char *dt = meta_get(meta, "dtype");
    if (!dt || strcmp(dt, want_dt) != 0)
        LOAD_FAIL(SSMLM_ERR_INVALID, "resume with the precision the run was started with",
                  "%s holds %s optimizer moments but the model is %s", path, dt ? dt : "(missing)", want_dt);
    const char *sum_text = meta_get(meta, "checksum"), *run = meta_get(meta, "run");
    if (!sum_text || !run) LOAD_FAIL(SSMLM_ERR_FORMAT, bad, "%s: metadata lacks \"checksum\" or \"run\"", path);
    uint64_t sum = k_fnv_offset;
    for (int i = 0; i < st.n; i++) sum = fnv_words(sum, st.tensors[i].data, st.tensors[i].nbytes);
    char have_sum[32];
    snprintf(have_sum, sizeof have_sum, "%016" PRIx64, sum);
    if (strcmp(have_sum, sum_text) != 0)
        LOAD_FAIL(SSMLM_ERR_FORMAT, bad, "%s: data checksum is %s but the file records %s (corrupted data)", path,
                  have_sum, sum_text);
    int mdt = m->dtype == SSMLM_F64 ? SSMLM_ST_F64 : SSMLM_ST_F32;
    const ssmlm_st_tensor *tm, *tv, *tstep, *tastep, *ttok, *trng, *tpos;
    if (!(tm = want_tensor(&st, "adam.m", mdt, 1, m->arena_numel, &s)) ||
        !(tv = want_tensor(&st, "adam.v", mdt, 1, m->arena_numel, &s)) ||
        !(tstep = want_tensor(&st, "step", SSMLM_ST_I64, 1, 1, &s)) ||
        !(tastep = want_tensor(&st, "adam.step", SSMLM_ST_I64, 1, 1, &s)) ||
        !(ttok = want_tensor(&st, "tokens_seen", SSMLM_ST_I64, 1, 1, &s)) ||
        !(trng = want_tensor(&st, "rng", SSMLM_ST_U8, 2, -1, &s)) ||
        !(tpos = want_tensor(&st, "data_pos", SSMLM_ST_U8, 1, -1, &s)))
        goto done;
    if (st.n != 7) LOAD_FAIL(SSMLM_ERR_FORMAT, bad, "%s: %d tensors, expected 7", path, st.n);
    int64_t n_rng = trng->shape[0];
    if (trng->shape[1] != TS_RNG_BYTES || n_rng > SSMLM_TRAINSTATE_MAX_RNG)
        LOAD_FAIL(SSMLM_ERR_FORMAT, bad, "%s: 'rng' is [%lld, %lld], expected [0..%d, %d]", path, (long long)n_rng,
                  (long long)trng->shape[1], SSMLM_TRAINSTATE_MAX_RNG, TS_RNG_BYTES);
    if (tpos->numel > SSMLM_TRAINSTATE_MAX_DATA_POS)
        LOAD_FAIL(SSMLM_ERR_FORMAT, bad, "%s: data position has %lld bytes, at most %d", path,
                  (long long)tpos->numel, SSMLM_TRAINSTATE_MAX_DATA_POS);
    if (strlen(run) >= sizeof ts->meta_json)
        LOAD_FAIL(SSMLM_ERR_FORMAT, bad, "%s: run metadata has %zu bytes, at most %zu", path, strlen(run),
                  sizeof ts->meta_json - 1);
    int64_t step = get_i64(tstep), adam_step = get_i64(tastep);
    if (step < 0 || adam_step < 0)
        LOAD_FAIL(SSMLM_ERR_FORMAT, bad, "%s: negative step count (step %lld, adam.step %lld)", path,
                  (long long)step, (long long)adam_step);

    /* everything checked: fill the outputs */
    memcpy(ssmlm_optimizer_moment(o, 0), tm->data, tm->nbytes);
    memcpy(ssmlm_optimizer_moment(o, 1), tv->data, tv->nbytes);
    ssmlm_optimizer_set_steps(o, adam_step);
    memset(ts, 0, sizeof *ts);
    ts->step = step;
    int64_t tokens = get_i64(ttok);
    memcpy(&ts->tokens_seen, &tokens, sizeof tokens);
    ts->n_rng = (int)n_rng;
    const unsigned char *rb = trng->data;
    for (int k = 0; k < ts->n_rng; k++)
        for (int w = 0; w < 4; w++) ts->rng[k].s[w] = get_u64le(rb + k * TS_RNG_BYTES + 8 * w);
    ts->data_pos_len = (int)tpos->numel;
    if (tpos->numel) memcpy(ts->data_pos, tpos->data, (size_t)tpos->numel);
    memcpy(ts->meta_json, run, strlen(run) + 1);
    s = SSMLM_OK;
done:
    cJSON_Delete(meta);
    ssmlm_st_close(&st);
    return s;
}

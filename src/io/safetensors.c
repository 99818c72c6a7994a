/* safetensors.c — defensive reader and atomic writer for the safetensors format:
 * [u64 little-endian header length N][N bytes of JSON header][data].  Every count, offset and
 * size is checked against the file before any tensor is used; JSON is parsed by cJSON. */
#include "base/base.h"
#include "kernels/bf16.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#define ST_MAX_HEADER (100u * 1024u * 1024u)

static const struct { const char *name; size_t size; } k_dtypes[] = {
    [SSMLM_ST_F32] = {"F32", 4}, [SSMLM_ST_F64] = {"F64", 8}, [SSMLM_ST_BF16] = {"BF16", 2},
    [SSMLM_ST_F16] = {"F16", 2}, [SSMLM_ST_I64] = {"I64", 8}, [SSMLM_ST_I32] = {"I32", 4},
    [SSMLM_ST_U16] = {"U16", 2}, [SSMLM_ST_U8] = {"U8", 1},   [SSMLM_ST_I8] = {"I8", 1},
};
#define N_DTYPES ((int)(sizeof k_dtypes / sizeof k_dtypes[0]))

size_t ssmlm_st_dtype_size(int dtype) {
    return dtype >= 0 && dtype < N_DTYPES ? k_dtypes[dtype].size : 0;
}
const char *ssmlm_st_dtype_name(int dtype) {
    return dtype >= 0 && dtype < N_DTYPES ? k_dtypes[dtype].name : "?";
}

static int cmp_offset(const void *a, const void *b) {
    const ssmlm_st_tensor *x = a, *y = b;
    const char *px = x->data, *py = y->data;
    if (px != py) return px < py ? -1 : 1;
    return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes); /* empty tensors first at a shared offset */
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void ssmlm_st_close(ssmlm_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) free(st->tensors[i].name);
    free(st->tensors);
    free(st->metadata_json);
    free(st->path);
    ssmlm_file_unmap(st->map, st->size);
    memset(st, 0, sizeof *st);
}

#define ST_FAIL(...) do { s = ssmlm_fail(SSMLM_ERR_FORMAT, hint, __VA_ARGS__); goto fail; } while (0)

ssmlm_status ssmlm_st_open(ssmlm_safetensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    const char *hint = "the file is not a valid safetensors file; re-export it or check the download";
    ssmlm_status s = ssmlm_file_map(path, &st->map, &st->size);
    cJSON *root = NULL;
    if (s != SSMLM_OK) return s;
    st->path = strdup(path);
    const unsigned char *p = st->map;
    if (st->size < 8) ST_FAIL("%s: file is %zu bytes, too short for the 8-byte header length", path, st->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen > ST_MAX_HEADER) ST_FAIL("%s: header length %llu exceeds the limit of %u bytes", path, (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > st->size - 8) ST_FAIL("%s: header length %llu runs past the end of the %zu-byte file (truncated?)", path, (unsigned long long)hlen, st->size);
    char *htext = malloc(hlen + 1);
    if (!htext) { s = ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory"); goto fail; }
    memcpy(htext, p + 8, hlen);
    htext[hlen] = 0;
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(htext, (size_t)hlen, &end, 0);
    int trailing = 0;
    for (const char *q = end; root && q && q < htext + hlen; q++)
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') trailing = 1;
    free(htext);
    if (!root || !cJSON_IsObject(root)) ST_FAIL("%s: header is not a JSON object", path);
    if (trailing) ST_FAIL("%s: header has bytes after the JSON object", path);
    size_t data_start = 8 + (size_t)hlen, data_size = st->size - data_start;
    int count = cJSON_GetArraySize(root);
    st->tensors = calloc((size_t)(count > 0 ? count : 1), sizeof *st->tensors);
    if (!st->tensors) { s = ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory"); goto fail; }
    uint64_t *ends = calloc((size_t)(count > 0 ? count : 1), sizeof *ends);
    if (!ends) { s = ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory"); goto fail; }
    for (cJSON *it = root->child; it; it = it->next) {
        const char *name = it->string;
        if (!name) { free(ends); ST_FAIL("%s: header entry without a name", path); }
        if (strcmp(name, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) { free(ends); ST_FAIL("%s: __metadata__ is not an object", path); }
            if (st->metadata_json) { free(ends); ST_FAIL("%s: __metadata__ appears twice", path); }
            for (cJSON *mv = it->child; mv; mv = mv->next)
                if (!cJSON_IsString(mv)) { free(ends); ST_FAIL("%s: __metadata__ value '%s' is not a string", path, mv->string ? mv->string : "?"); }
            st->metadata_json = cJSON_PrintUnformatted(it);
            continue;
        }
        ssmlm_st_tensor *t = &st->tensors[st->n];
        if (!cJSON_IsObject(it)) { free(ends); ST_FAIL("%s: tensor '%s': entry is not an object", path, name); }
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off)) {
            free(ends);
            ST_FAIL("%s: tensor '%s': needs string 'dtype', array 'shape' and array 'data_offsets'", path, name);
        }
        t->dtype = -1;
        for (int d = 0; d < N_DTYPES; d++)
            if (strcmp(dt->valuestring, k_dtypes[d].name) == 0) t->dtype = d;
        if (t->dtype < 0) { free(ends); ST_FAIL("%s: tensor '%s': unknown dtype '%s' (supported: F32 F64 BF16 F16 I64 I32 U16 U8 I8)", path, name, dt->valuestring); }
        t->ndim = cJSON_GetArraySize(sh);
        if (t->ndim > 8) { free(ends); ST_FAIL("%s: tensor '%s': %d dimensions (at most 8)", path, name, t->ndim); }
        int64_t numel = 1;
        int d = 0;
        for (cJSON *e = sh->child; e; e = e->next, d++) {
            if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 9.0e15 || e->valuedouble != (double)(int64_t)e->valuedouble) {
                free(ends); ST_FAIL("%s: tensor '%s': shape entry %d is not a non-negative integer", path, name, d);
            }
            t->shape[d] = (int64_t)e->valuedouble;
            if (t->shape[d] != 0 && numel > INT64_MAX / 16 / t->shape[d]) { free(ends); ST_FAIL("%s: tensor '%s': shape is absurdly large", path, name); }
            numel *= t->shape[d];
        }
        t->numel = numel;
        if (cJSON_GetArraySize(off) != 2) { free(ends); ST_FAIL("%s: tensor '%s': data_offsets must have 2 entries", path, name); }
        double b0 = off->child->valuedouble, b1 = off->child->next->valuedouble;
        if (!cJSON_IsNumber(off->child) || !cJSON_IsNumber(off->child->next) || b0 < 0 || b1 < b0 || b1 > 9.0e15 ||
            b0 != (double)(uint64_t)b0 || b1 != (double)(uint64_t)b1) {
            free(ends); ST_FAIL("%s: tensor '%s': data_offsets [%g, %g] are not ordered non-negative integers", path, name, b0, b1);
        }
        uint64_t o0 = (uint64_t)b0, o1 = (uint64_t)b1;
        size_t want = (size_t)numel * k_dtypes[t->dtype].size;
        if (o1 - o0 != want) { free(ends); ST_FAIL("%s: tensor '%s': %s shape holds %zu bytes but data_offsets span %llu", path, name, k_dtypes[t->dtype].name, want, (unsigned long long)(o1 - o0)); }
        if (o1 > data_size) { free(ends); ST_FAIL("%s: tensor '%s': data [%llu, %llu) lies outside the %zu-byte data section (truncated file?)", path, name, (unsigned long long)o0, (unsigned long long)o1, data_size); }
        t->name = strdup(name);
        t->data = p + data_start + o0;
        t->nbytes = want;
        ends[st->n] = o1;
        st->n++;
    }
    free(ends);
    qsort(st->tensors, (size_t)st->n, sizeof *st->tensors, cmp_offset);
    /* contiguity: tensors tile the data section without gaps or overlaps */
    size_t pos = 0;
    for (int i = 0; i < st->n; i++) {
        size_t o0 = (size_t)((const unsigned char *)st->tensors[i].data - (p + data_start));
        if (o0 < pos) ST_FAIL("%s: tensor '%s' overlaps the previous tensor '%s'", path, st->tensors[i].name, st->tensors[i - 1].name);
        if (o0 > pos) ST_FAIL("%s: gap of %zu bytes before tensor '%s' (data must be contiguous)", path, o0 - pos, st->tensors[i].name);
        pos = o0 + st->tensors[i].nbytes;
    }
    if (pos != data_size) ST_FAIL("%s: %zu trailing bytes after the last tensor", path, data_size - pos);
    /* duplicate names: sort name pointers, compare neighbours (n log n on hostile headers) */
    if (st->n > 1) {
        const char **names = malloc((size_t)st->n * sizeof *names);
        if (!names) { s = ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory"); goto fail; }
        for (int i = 0; i < st->n; i++) names[i] = st->tensors[i].name;
        qsort(names, (size_t)st->n, sizeof *names, cmp_name);
        const char *dup = NULL;
        for (int i = 1; i < st->n && !dup; i++)
            if (strcmp(names[i - 1], names[i]) == 0) dup = names[i];
        if (dup) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", dup);
            free(names);
            ST_FAIL("%s: tensor '%s' appears twice", path, buf);
        }
        free(names);
    }
    cJSON_Delete(root);
    return SSMLM_OK;
fail:
    cJSON_Delete(root);
    ssmlm_st_close(st);
    return s;
}

const ssmlm_st_tensor *ssmlm_st_find(const ssmlm_safetensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

static double bf16_to_double(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static double f16_to_double(uint16_t h) {
    int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0) v = ldexp(m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexp(m + 1024, e - 25);
    return sign ? -v : v;
}

/* Element i of a tensor as double (unaligned-safe). */
static double st_get(const ssmlm_st_tensor *t, int64_t i) {
    const unsigned char *p = (const unsigned char *)t->data + (size_t)i * ssmlm_st_dtype_size(t->dtype);
    switch (t->dtype) {
    case SSMLM_ST_F32: { float v; memcpy(&v, p, 4); return v; }
    case SSMLM_ST_F64: { double v; memcpy(&v, p, 8); return v; }
    case SSMLM_ST_BF16: { uint16_t v; memcpy(&v, p, 2); return bf16_to_double(v); }
    case SSMLM_ST_F16: { uint16_t v; memcpy(&v, p, 2); return f16_to_double(v); }
    case SSMLM_ST_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case SSMLM_ST_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case SSMLM_ST_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case SSMLM_ST_U8: return *p;
    case SSMLM_ST_I8: return (int8_t)*p;
    }
    return NAN;
}

ssmlm_status ssmlm_st_read_f32(const ssmlm_st_tensor *t, float *dst) {
    if (t->dtype == SSMLM_ST_F32) { memcpy(dst, t->data, t->nbytes); return SSMLM_OK; }
    for (int64_t i = 0; i < t->numel; i++) dst[i] = (float)st_get(t, i);
    return SSMLM_OK;
}

ssmlm_status ssmlm_st_read_bf16(const ssmlm_st_tensor *t, uint16_t *dst) {
    if (t->dtype == SSMLM_ST_BF16) { memcpy(dst, t->data, t->nbytes); return SSMLM_OK; }
    if (t->dtype == SSMLM_ST_F32) {
        const unsigned char *p = t->data;
#pragma omp parallel for schedule(static) if (t->numel > (1 << 16))
        for (int64_t i = 0; i < t->numel; i++) {
            float v;
            memcpy(&v, p + (size_t)i * 4, 4);
            dst[i] = bf16_from_f32(v);
        }
        return SSMLM_OK;
    }
    /* via fp32, so that a tensor rounds as the fp32 model's copy of it would */
    for (int64_t i = 0; i < t->numel; i++) dst[i] = bf16_from_f32((float)st_get(t, i));
    return SSMLM_OK;
}

ssmlm_status ssmlm_st_read_f64(const ssmlm_st_tensor *t, double *dst) {
    if (t->dtype == SSMLM_ST_F64) { memcpy(dst, t->data, t->nbytes); return SSMLM_OK; }
    for (int64_t i = 0; i < t->numel; i++) dst[i] = st_get(t, i);
    return SSMLM_OK;
}

ssmlm_status ssmlm_st_write(const char *path, const ssmlm_st_out *t, int n, const char *metadata_json) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory");
    if (metadata_json) {
        cJSON *meta = cJSON_Parse(metadata_json);
        if (!meta) { cJSON_Delete(root); return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "metadata is not valid JSON"); }
        cJSON_AddItemToObject(root, "__metadata__", meta);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        cJSON *e = cJSON_CreateObject(), *sh = cJSON_CreateArray(), *of = cJSON_CreateArray();
        cJSON_AddStringToObject(e, "dtype", ssmlm_st_dtype_name(t[i].dtype));
        for (int d = 0; d < t[i].ndim; d++) {
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t[i].shape[d]));
            numel *= t[i].shape[d];
        }
        uint64_t nb = (uint64_t)numel * ssmlm_st_dtype_size(t[i].dtype);
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + nb)));
        off += nb;
        cJSON_AddItemToObject(e, "shape", sh);
        cJSON_AddItemToObject(e, "data_offsets", of);
        cJSON_AddItemToObject(root, t[i].name, e);
    }
    char *h = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!h) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory");
    size_t hl = strlen(h), padded = (hl + 7) & ~(size_t)7;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(((uint64_t)padded >> (8 * i)) & 0xff);
    ssmlm_atomic_file af;
    ssmlm_status s = ssmlm_atomic_open(&af, path);
    if (s != SSMLM_OK) { free(h); return s; }
    ssmlm_atomic_write(&af, len8, 8);
    ssmlm_atomic_write(&af, h, hl);
    for (size_t i = hl; i < padded; i++) ssmlm_atomic_write(&af, " ", 1);
    free(h);
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        ssmlm_atomic_write(&af, t[i].data, (size_t)numel * ssmlm_st_dtype_size(t[i].dtype));
    }
    return ssmlm_atomic_close(&af, 1);
}

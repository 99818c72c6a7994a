/* data.c — corpora of token documents (Megatron indexed datasets, raw token files, byte
 * text, synthetic tasks, arrays) and the packing batcher.  Formats and packing rules are
 * documented in data.h; the Megatron layout in ../shared/reference/formats.md §6.1. */
#include "train/data.h"
#include <math.h>
#include <string.h>

/* Storage dtypes: the Megatron codes, plus raw uint32 files (no Megatron code). */
#define DT_U32 100

struct ssmlm_docs {
    int64_t n;                  /* documents */
    int64_t *start;             /* [n+1] token offset of each document in the storage */
    const unsigned char *tok;   /* token storage (mapped file or owned buffer) */
    int dtype;                  /* ssmlm_mmid_dtype or DT_U32 */
    int itemsize;
    void *map;                  /* mmap'd file behind tok, or NULL */
    size_t map_size;
    void *owned;                /* owned token buffer, or NULL */
    uint8_t *mask;              /* [total] 1 = scored, or NULL */
    int max_known;              /* max_token cached */
    int64_t max_token;
};

static int dtype_size(int dtype) {
    switch (dtype) {
    case SSMLM_MMID_U8: case SSMLM_MMID_I8: return 1;
    case SSMLM_MMID_I16: case SSMLM_MMID_U16: return 2;
    case SSMLM_MMID_I32: case SSMLM_MMID_F32: case DT_U32: return 4;
    case SSMLM_MMID_I64: case SSMLM_MMID_F64: return 8;
    }
    return 0;
}

/* ---- little-endian decoding (files may be unaligned) ----------------------------------------- */
static uint64_t le_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint32_t le_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t le_u16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

static int32_t from_i64(int64_t v) { return v < INT32_MIN || v > INT32_MAX ? -1 : (int32_t)v; }
static int32_t from_f64(double v) {
    return !(v > -2147483649.0 && v < 2147483648.0) ? -1 : (int32_t)v; /* NaN fails both */
}

/* Token k of the storage as int32 (data.h: unrepresentable values read as -1). */
static int32_t tok_at(const ssmlm_docs *d, int64_t k) {
    const unsigned char *p = d->tok + (size_t)k * (size_t)d->itemsize;
    switch (d->dtype) {
    case SSMLM_MMID_U8: return p[0];
    case SSMLM_MMID_I8: return (int8_t)p[0];
    case SSMLM_MMID_U16: return le_u16(p);
    case SSMLM_MMID_I16: return (int16_t)le_u16(p);
    case SSMLM_MMID_I32: return (int32_t)le_u32(p);
    case DT_U32: return from_i64(le_u32(p));
    case SSMLM_MMID_I64: return from_i64((int64_t)le_u64(p));
    case SSMLM_MMID_F32: {
        uint32_t u = le_u32(p);
        float f;
        memcpy(&f, &u, 4);
        return from_f64(f);
    }
    case SSMLM_MMID_F64: {
        uint64_t u = le_u64(p);
        double f;
        memcpy(&f, &u, 8);
        return from_f64(f);
    }
    }
    SSMLM_ASSERT(0);
}

static void read_tokens(const ssmlm_docs *d, int64_t k0, int64_t n, int32_t *dst) {
    if (d->dtype == SSMLM_MMID_U16) {
        const unsigned char *p = d->tok + (size_t)k0 * 2;
        for (int64_t j = 0; j < n; j++) dst[j] = le_u16(p + 2 * j);
    } else if (d->dtype == SSMLM_MMID_I32) {
        const unsigned char *p = d->tok + (size_t)k0 * 4;
        for (int64_t j = 0; j < n; j++) dst[j] = (int32_t)le_u32(p + 4 * j);
    } else {
        for (int64_t j = 0; j < n; j++) dst[j] = tok_at(d, k0 + j);
    }
}

/* ---- accessors -------------------------------------------------------------------------------- */
int64_t ssmlm_docs_count(const ssmlm_docs *d) { return d->n; }

int64_t ssmlm_docs_length(const ssmlm_docs *d, int64_t i) {
    SSMLM_ASSERT(i >= 0 && i < d->n);
    return d->start[i + 1] - d->start[i];
}

int64_t ssmlm_docs_total_tokens(const ssmlm_docs *d) { return d->start[d->n]; }

void ssmlm_docs_read(const ssmlm_docs *d, int64_t i, int64_t off, int64_t n, int32_t *dst) {
    SSMLM_ASSERT(i >= 0 && i < d->n && off >= 0 && n >= 0);
    SSMLM_ASSERT(off + n <= d->start[i + 1] - d->start[i]);
    read_tokens(d, d->start[i] + off, n, dst);
}

const uint8_t *ssmlm_docs_mask(const ssmlm_docs *d, int64_t i) {
    SSMLM_ASSERT(i >= 0 && i < d->n);
    return d->mask ? d->mask + d->start[i] : NULL;
}

int64_t ssmlm_docs_max_token(const ssmlm_docs *d) {
    if (!d->max_known) {
        /* the cache is a private detail: the handle is never defined const */
        ssmlm_docs *m = (ssmlm_docs *)d;
        int64_t total = d->start[d->n], best = -1;
        int32_t buf[4096];
        for (int64_t k = 0; k < total; k += 4096) {
            int64_t c = total - k < 4096 ? total - k : 4096;
            read_tokens(d, k, c, buf);
            for (int64_t j = 0; j < c; j++)
                if (buf[j] > best) best = buf[j];
        }
        m->max_token = best;
        m->max_known = 1;
    }
    return d->max_token;
}

ssmlm_status ssmlm_docs_check_vocab(const ssmlm_docs *d, int64_t vocab) {
    int32_t buf[4096];
    for (int64_t i = 0; i < d->n; i++) {
        int64_t len = d->start[i + 1] - d->start[i];
        for (int64_t off = 0; off < len; off += 4096) {
            int64_t c = len - off < 4096 ? len - off : 4096;
            read_tokens(d, d->start[i] + off, c, buf);
            for (int64_t j = 0; j < c; j++)
                if (buf[j] < 0 || buf[j] >= vocab)
                    return ssmlm_fail(SSMLM_ERR_INVALID,
                                      "use a model whose vocabulary covers the data's tokenizer",
                                      "document %lld, token %lld: id %d is outside the vocabulary [0, %lld)",
                                      (long long)i, (long long)(off + j), buf[j], (long long)vocab);
        }
    }
    return SSMLM_OK;
}

void ssmlm_docs_free(ssmlm_docs *d) {
    if (!d) return;
    ssmlm_file_unmap(d->map, d->map_size);
    free(d->owned);
    free(d->start);
    free(d->mask);
    free(d);
}

static ssmlm_docs *docs_new(void) {
    ssmlm_docs *d = calloc(1, sizeof *d);
    if (!d) ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory for a corpus");
    return d;
}

static char *join_path(const char *prefix, const char *ext) {
    size_t n = strlen(prefix), m = strlen(ext);
    char *p = malloc(n + m + 1);
    if (p) {
        memcpy(p, prefix, n);
        memcpy(p + n, ext, m + 1);
    }
    return p;
}

/* ---- Megatron indexed dataset ----------------------------------------------------------------- */
#define MMID_HEADER 34
static const unsigned char k_mmid_magic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};

/* Every message of the Megatron reader starts with the file it is about and names the field
 * and its value. */
static const char *const k_mmid_hint = "regenerate the dataset (e.g. Megatron's tools/preprocess_data.py)";

/* The header and the counts against the .idx size (before the .bin is opened). */
static ssmlm_status megatron_header(const char *ipath, const unsigned char *ix, size_t isize) {
    const char *hint = k_mmid_hint;
    if (isize < MMID_HEADER)
        return ssmlm_fail(SSMLM_ERR_FORMAT, hint, "%s: header: the file has %zu bytes, the header needs %d",
                          ipath, isize, MMID_HEADER);
    if (memcmp(ix, k_mmid_magic, 9) != 0)
        return ssmlm_fail(SSMLM_ERR_FORMAT, "give the prefix of a Megatron .bin/.idx pair",
                          "%s: magic is not \"MMIDIDX\\0\\0\": not a Megatron index file", ipath);
    uint64_t version = le_u64(ix + 9);
    if (version != 1)
        return ssmlm_fail(SSMLM_ERR_FORMAT, hint, "%s: version %llu is not supported (only 1)", ipath,
                          (unsigned long long)version);
    int code = ix[17], item = dtype_size(code);
    if (!item || code == DT_U32)
        return ssmlm_fail(SSMLM_ERR_FORMAT, "dtype codes are 1..8 (formats.md §6.1)",
                          "%s: dtype code %d is unknown", ipath, code);
    uint64_t S = le_u64(ix + 18), D = le_u64(ix + 26);
    uint64_t room = isize - MMID_HEADER;
    if (S > room / 12)
        return ssmlm_fail(SSMLM_ERR_FORMAT, hint,
                          "%s: sequence_count %llu needs %llu bytes of sizes and pointers, the file has %llu after the header",
                          ipath, (unsigned long long)S, (unsigned long long)S * 12, (unsigned long long)room);
    if (D > (room - 12 * S) / 8)
        return ssmlm_fail(SSMLM_ERR_FORMAT, hint,
                          "%s: document_count %llu needs %llu bytes of document indices, the file has %llu left",
                          ipath, (unsigned long long)D, (unsigned long long)D * 8,
                          (unsigned long long)(room - 12 * S));
    if (D < 1)
        return ssmlm_fail(SSMLM_ERR_FORMAT, hint,
                          "%s: document_count 0: the document index holds at least its leading 0", ipath);
    uint64_t need = MMID_HEADER + 12 * S + 8 * D;
    if (isize != need && isize != need + S) /* + S: the multimodal sequence_modes */
        return ssmlm_fail(SSMLM_ERR_FORMAT, hint,
                          "%s: file size %zu does not match sequence_count %llu and document_count %llu (%llu bytes expected)",
                          ipath, isize, (unsigned long long)S, (unsigned long long)D, (unsigned long long)need);
    return SSMLM_OK;
}

/* Validates the sequences and documents of a mapped .idx (header already checked) against
 * the .bin size and fills d->start. */
static ssmlm_status megatron_index(ssmlm_docs *d, const char *ipath, const unsigned char *ix, const char *bpath,
                                   size_t bsize) {
    const char *hint = k_mmid_hint;
    int code = ix[17], item = dtype_size(code);
    uint64_t S = le_u64(ix + 18), D = le_u64(ix + 26);
    const unsigned char *lens = ix + MMID_HEADER, *ptrs = lens + 4 * S, *didx = ptrs + 8 * S;
    /* pointers are the running sum of length x itemsize and end exactly at the .bin size */
    uint64_t run = 0;
    for (uint64_t s = 0; s < S; s++) {
        int32_t len = (int32_t)le_u32(lens + 4 * s);
        int64_t ptr = (int64_t)le_u64(ptrs + 8 * s);
        if (len < 0)
            return ssmlm_fail(SSMLM_ERR_FORMAT, hint, "%s: sequence_lengths[%llu] = %d is negative", ipath,
                              (unsigned long long)s, len);
        if (ptr < 0 || (uint64_t)ptr != run)
            return ssmlm_fail(SSMLM_ERR_FORMAT, hint,
                              "%s: sequence_pointers[%llu] = %lld, expected %llu (the running sum of sequence_lengths x %d bytes)",
                              ipath, (unsigned long long)s, (long long)ptr, (unsigned long long)run, item);
        run += (uint64_t)len * (uint64_t)item;
        if (run > bsize)
            return ssmlm_fail(SSMLM_ERR_FORMAT, "the .bin is truncated or belongs to another index",
                              "%s: sequence_lengths[%llu] = %d ends at byte %llu, past the end of %s (%zu bytes)",
                              ipath, (unsigned long long)s, len, (unsigned long long)run, bpath, bsize);
    }
    if (run != bsize)
        return ssmlm_fail(SSMLM_ERR_FORMAT, "the .bin belongs to another index or has trailing data",
                          "%s: has %zu bytes but %s describes %llu (sum of sequence_lengths x %d)", bpath, bsize,
                          ipath, (unsigned long long)run, item);
    int64_t prev = 0;
    for (uint64_t j = 0; j < D; j++) {
        int64_t v = (int64_t)le_u64(didx + 8 * j);
        if (j == 0 && v != 0)
            return ssmlm_fail(SSMLM_ERR_FORMAT, hint, "%s: document_indices[0] = %lld, must be 0", ipath, (long long)v);
        if (v < prev)
            return ssmlm_fail(SSMLM_ERR_FORMAT, hint,
                              "%s: document_indices[%llu] = %lld is below document_indices[%llu] = %lld (not monotonic)",
                              ipath, (unsigned long long)j, (long long)v, (unsigned long long)j - 1, (long long)prev);
        if ((uint64_t)v > S)
            return ssmlm_fail(SSMLM_ERR_FORMAT, hint, "%s: document_indices[%llu] = %lld is past sequence_count %llu",
                              ipath, (unsigned long long)j, (long long)v, (unsigned long long)S);
        prev = v;
    }
    if ((uint64_t)prev != S)
        return ssmlm_fail(SSMLM_ERR_FORMAT, hint,
                          "%s: document_indices[%llu] = %lld, the last entry must equal sequence_count %llu", ipath,
                          (unsigned long long)D - 1, (long long)prev, (unsigned long long)S);

    d->n = (int64_t)D - 1;
    d->start = malloc((size_t)D * sizeof *d->start);
    if (!d->start) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "%s: out of memory for %llu documents", ipath, (unsigned long long)D);
    /* token offset of sequence s = pointer / itemsize (pointers are the running sum) */
    for (uint64_t j = 0; j < D; j++) {
        uint64_t s = le_u64(didx + 8 * j);
        d->start[j] = (int64_t)((s < S ? le_u64(ptrs + 8 * s) : run) / (uint64_t)item);
    }
    d->dtype = code;
    d->itemsize = item;
    return SSMLM_OK;
}

ssmlm_status ssmlm_docs_open_megatron(ssmlm_docs **out, const char *prefix) {
    *out = NULL;
    ssmlm_status s = SSMLM_OK;
    char *ipath = join_path(prefix, ".idx"), *bpath = join_path(prefix, ".bin");
    void *imap = NULL;
    size_t isize = 0;
    ssmlm_docs *d = docs_new();
    if (!ipath || !bpath || !d) {
        s = ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory opening %s", prefix);
        goto done;
    }
    if ((s = ssmlm_file_map(ipath, &imap, &isize)) != SSMLM_OK) goto done;
    if ((s = megatron_header(ipath, imap, isize)) != SSMLM_OK) goto done;
    if ((s = ssmlm_file_map(bpath, &d->map, &d->map_size)) != SSMLM_OK) goto done;
    if ((s = megatron_index(d, ipath, imap, bpath, d->map_size)) != SSMLM_OK) goto done;
    d->tok = d->map;
    *out = d;
    d = NULL;
done:
    ssmlm_file_unmap(imap, isize);
    ssmlm_docs_free(d);
    free(ipath);
    free(bpath);
    return s;
}

/* ---- raw token files --------------------------------------------------------------------------- */
ssmlm_status ssmlm_docs_open_tokens(ssmlm_docs **out, const char *path, int bits, int64_t eod_id) {
    *out = NULL;
    if (bits != 16 && bits != 32)
        return ssmlm_fail(SSMLM_ERR_INVALID, "raw token files hold uint16 or uint32 tokens",
                          "%s: token width %d bits is not supported (16 or 32)", path, bits);
    int64_t top = bits == 16 ? 65535 : 4294967295LL;
    if (eod_id > top)
        return ssmlm_fail(SSMLM_ERR_INVALID, "give the tokenizer's end-of-document id",
                          "%s: eod id %lld does not fit uint%d tokens", path, (long long)eod_id, bits);
    ssmlm_docs *d = docs_new();
    if (!d) return SSMLM_ERR_MEMORY;
    ssmlm_status s = ssmlm_file_map(path, &d->map, &d->map_size);
    if (s != SSMLM_OK) goto fail;
    d->dtype = bits == 16 ? SSMLM_MMID_U16 : DT_U32;
    d->itemsize = bits / 8;
    d->tok = d->map;
    if (d->map_size % (size_t)d->itemsize) {
        s = ssmlm_fail(SSMLM_ERR_FORMAT, "check the token width (--bits) and that the file is complete",
                       "%s: size %zu bytes is not a multiple of %d (uint%d tokens)", path, d->map_size,
                       d->itemsize, bits);
        goto fail;
    }
    int64_t total = (int64_t)(d->map_size / (size_t)d->itemsize), n = 0;
    /* count documents: each eod ends one, and a tail without an eod is one more */
    const unsigned char *p = d->tok;
    int64_t last_end = 0;
    if (eod_id >= 0) {
        for (int64_t k = 0; k < total; k++) {
            uint32_t v = bits == 16 ? le_u16(p + 2 * k) : le_u32(p + 4 * k);
            if (v == (uint64_t)eod_id) n++, last_end = k + 1;
        }
    }
    if (last_end < total) n++;
    d->start = malloc((size_t)(n + 1) * sizeof *d->start);
    if (!d->start) {
        s = ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "%s: out of memory for %lld documents", path, (long long)n);
        goto fail;
    }
    int64_t j = 0;
    d->start[0] = 0;
    if (eod_id >= 0) {
        for (int64_t k = 0; k < total; k++) {
            uint32_t v = bits == 16 ? le_u16(p + 2 * k) : le_u32(p + 4 * k);
            if (v == (uint64_t)eod_id) d->start[++j] = k + 1;
        }
    }
    if (last_end < total) d->start[++j] = total;
    SSMLM_ASSERT(j == n);
    d->n = n;
    *out = d;
    return SSMLM_OK;
fail:
    ssmlm_docs_free(d);
    return s;
}

/* ---- byte text --------------------------------------------------------------------------------- */
ssmlm_status ssmlm_docs_open_text(ssmlm_docs **out, const char *path, const char *doc_sep) {
    *out = NULL;
    char *text = NULL;
    size_t size = 0;
    ssmlm_status s = ssmlm_file_read(path, &text, &size);
    if (s != SSMLM_OK) return s;
    size_t sep = doc_sep ? strlen(doc_sep) : 0;
    ssmlm_docs *d = docs_new();
    if (!d) {
        free(text);
        return SSMLM_ERR_MEMORY;
    }
    /* two passes over the pieces: count, then fill */
    int64_t n = 0, total = 0;
    uint16_t *tok = NULL;
    for (int pass = 0; pass < 2; pass++) {
        n = 0, total = 0;
        size_t pos = 0;
        while (pos <= size) {
            const char *hit = sep ? memmem(text + pos, size - pos, doc_sep, sep) : NULL;
            size_t end = hit ? (size_t)(hit - text) : size;
            if (end > pos) {
                if (pass) {
                    d->start[n] = total;
                    for (size_t k = pos; k < end; k++) tok[total + (int64_t)(k - pos)] = (unsigned char)text[k];
                    tok[total + (int64_t)(end - pos)] = SSMLM_BYTE_EOD;
                }
                n++;
                total += (int64_t)(end - pos) + 1;
            }
            if (!hit) break;
            pos = end + sep;
        }
        if (!pass) {
            d->start = malloc((size_t)(n + 1) * sizeof *d->start);
            tok = malloc((size_t)(total ? total : 1) * sizeof *tok);
            d->owned = tok;
            if (!d->start || !tok) {
                free(text);
                ssmlm_docs_free(d);
                return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "%s: out of memory for %lld tokens", path, (long long)total);
            }
        }
    }
    free(text);
    d->start[n] = total;
    d->n = n;
    d->tok = (const unsigned char *)tok;
    d->dtype = SSMLM_MMID_U16;
    d->itemsize = 2;
    *out = d;
    return SSMLM_OK;
}

/* ---- in-memory corpora ------------------------------------------------------------------------- */
/* A corpus with int32 storage for n documents and total tokens (and a mask if asked). */
static ssmlm_status docs_alloc_i32(ssmlm_docs **out, int64_t n, int64_t total, int with_mask) {
    ssmlm_docs *d = docs_new();
    if (!d) return SSMLM_ERR_MEMORY;
    d->n = n;
    d->start = malloc((size_t)(n + 1) * sizeof *d->start);
    d->owned = malloc((size_t)(total ? total : 1) * sizeof(int32_t));
    d->mask = with_mask ? malloc((size_t)(total ? total : 1)) : NULL;
    if (!d->start || !d->owned || (with_mask && !d->mask)) {
        ssmlm_docs_free(d);
        return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory for a corpus of %lld tokens", (long long)total);
    }
    d->tok = d->owned;
    d->dtype = SSMLM_MMID_I32;
    d->itemsize = 4;
    *out = d;
    return SSMLM_OK;
}

ssmlm_status ssmlm_docs_from_arrays(ssmlm_docs **out, int64_t n, const int64_t *starts,
                                    const int32_t *tokens, const uint8_t *mask) {
    *out = NULL;
    if (n < 0 || starts[0] != 0)
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "corpus from arrays: %lld documents, starts[0] = %lld (must be 0)",
                          (long long)n, (long long)(n >= 0 ? starts[0] : 0));
    for (int64_t i = 0; i < n; i++)
        if (starts[i + 1] < starts[i])
            return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "corpus from arrays: starts[%lld] = %lld is below starts[%lld] = %lld",
                              (long long)i + 1, (long long)starts[i + 1], (long long)i, (long long)starts[i]);
    ssmlm_docs *d;
    int64_t total = starts[n];
    ssmlm_status s = docs_alloc_i32(&d, n, total, mask != NULL);
    if (s != SSMLM_OK) return s;
    memcpy(d->start, starts, (size_t)(n + 1) * sizeof *starts);
    if (total) memcpy(d->owned, tokens, (size_t)total * sizeof *tokens);
    if (mask && total) memcpy(d->mask, mask, (size_t)total);
    *out = d;
    return SSMLM_OK;
}

ssmlm_status ssmlm_docs_synthetic(ssmlm_docs **out, const ssmlm_synth_config *cfg) {
    *out = NULL;
    ssmlm_status s = ssmlm_synth_validate(cfg);
    if (s != SSMLM_OK) return s;
    int64_t cap = 4096, total = 0;
    ssmlm_docs *d;
    if ((s = docs_alloc_i32(&d, cfg->n_docs, cap, 1)) != SSMLM_OK) return s;
    for (int64_t i = 0; i < cfg->n_docs; i++) {
        int64_t n;
        for (;;) {
            s = ssmlm_synth_document(cfg, i, (int32_t *)d->owned + total, d->mask + total, cap - total, &n);
            if (s == SSMLM_OK || n <= cap - total) break;
            /* the document did not fit: grow (doubling) and generate it again */
            int64_t want = cap * 2 > total + n ? cap * 2 : total + n;
            void *t = realloc(d->owned, (size_t)want * sizeof(int32_t));
            if (t) d->owned = t;
            uint8_t *m = t ? realloc(d->mask, (size_t)want) : NULL;
            if (m) d->mask = m;
            if (!t || !m) {
                ssmlm_docs_free(d);
                return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "synthetic %s: out of memory for %lld tokens",
                                  ssmlm_synth_task_name(cfg->task), (long long)want);
            }
            cap = want;
        }
        if (s != SSMLM_OK) {
            ssmlm_docs_free(d);
            return s;
        }
        d->start[i] = total;
        total += n;
    }
    d->start[cfg->n_docs] = total;
    d->tok = d->owned;
    *out = d;
    return SSMLM_OK;
}

/* ---- Megatron writer --------------------------------------------------------------------------- */
/* Buffered little-endian writes into an atomic file; the first error sticks. */
typedef struct bufw {
    ssmlm_atomic_file af;
    unsigned char buf[1 << 16];
    size_t n;
    ssmlm_status st;
} bufw;

static void bw_flush(bufw *w) {
    if (w->st == SSMLM_OK && w->n) w->st = ssmlm_atomic_write(&w->af, w->buf, w->n);
    w->n = 0;
}
static void bw_put(bufw *w, uint64_t v, int bytes) {
    if (w->n + (size_t)bytes > sizeof w->buf) bw_flush(w);
    for (int i = 0; i < bytes; i++) w->buf[w->n++] = (unsigned char)(v >> (8 * i));
}

ssmlm_status ssmlm_docs_write_megatron(const ssmlm_docs *d, const char *prefix, int token_bytes) {
    int code;
    int64_t lo, hi;
    switch (token_bytes) {
    case 1: code = SSMLM_MMID_U8, lo = 0, hi = 255; break;
    case 2: code = SSMLM_MMID_U16, lo = 0, hi = 65535; break;
    case 4: code = SSMLM_MMID_I32, lo = INT32_MIN, hi = INT32_MAX; break;
    case 8: code = SSMLM_MMID_I64, lo = INT32_MIN, hi = INT32_MAX; break;
    default:
        return ssmlm_fail(SSMLM_ERR_INVALID, "use 2 (uint16, vocabularies below 65500) or 4 (int32)",
                          "writing %s: token size %d bytes is not 1, 2, 4 or 8", prefix, token_bytes);
    }
    ssmlm_status s = SSMLM_OK;
    char *ipath = join_path(prefix, ".idx"), *bpath = join_path(prefix, ".bin");
    bufw *bw = calloc(1, sizeof *bw), *iw = calloc(1, sizeof *iw);
    int32_t *buf = malloc(4096 * sizeof *buf);
    int bin_open = 0, idx_open = 0;
    if (!ipath || !bpath || !bw || !iw || !buf) {
        s = ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory writing %s", prefix);
        goto done;
    }
    if ((s = ssmlm_atomic_open(&bw->af, bpath)) != SSMLM_OK) goto done;
    bin_open = 1;
    if ((s = ssmlm_atomic_open(&iw->af, ipath)) != SSMLM_OK) goto done;
    idx_open = 1;

    /* .bin: the tokens of every document, checked against the token type */
    for (int64_t i = 0; i < d->n && bw->st == SSMLM_OK; i++) {
        int64_t len = d->start[i + 1] - d->start[i];
        for (int64_t off = 0; off < len; off += 4096) {
            int64_t c = len - off < 4096 ? len - off : 4096;
            read_tokens(d, d->start[i] + off, c, buf);
            for (int64_t j = 0; j < c; j++) {
                if (buf[j] < lo || buf[j] > hi) {
                    s = ssmlm_fail(SSMLM_ERR_INVALID, "use a wider token size (4 bytes holds any id)",
                                   "writing %s: document %lld, token %lld: id %d does not fit %d-byte tokens",
                                   bpath, (long long)i, (long long)(off + j), buf[j], token_bytes);
                    goto done;
                }
                bw_put(bw, (uint64_t)(int64_t)buf[j], token_bytes);
            }
        }
    }
    bw_flush(bw);
    if ((s = bw->st) != SSMLM_OK) goto done;

    /* .idx: one sequence per document, split at INT32_MAX tokens */
    const int64_t seq_max = INT32_MAX;
    uint64_t S = 0;
    for (int64_t i = 0; i < d->n; i++) {
        int64_t len = d->start[i + 1] - d->start[i];
        S += len ? (uint64_t)((len + seq_max - 1) / seq_max) : 1;
    }
    for (int i = 0; i < 9; i++) bw_put(iw, k_mmid_magic[i], 1);
    bw_put(iw, 1, 8);
    bw_put(iw, (uint64_t)code, 1);
    bw_put(iw, S, 8);
    bw_put(iw, (uint64_t)d->n + 1, 8);
    for (int64_t i = 0; i < d->n; i++) { /* sequence_lengths */
        int64_t len = d->start[i + 1] - d->start[i];
        do {
            int64_t c = len < seq_max ? len : seq_max;
            bw_put(iw, (uint64_t)c, 4);
            len -= c;
        } while (len > 0);
    }
    uint64_t ptr = 0;
    for (int64_t i = 0; i < d->n; i++) { /* sequence_pointers */
        int64_t len = d->start[i + 1] - d->start[i];
        do {
            int64_t c = len < seq_max ? len : seq_max;
            bw_put(iw, ptr, 8);
            ptr += (uint64_t)c * (uint64_t)token_bytes;
            len -= c;
        } while (len > 0);
    }
    uint64_t seq = 0;
    bw_put(iw, 0, 8);
    for (int64_t i = 0; i < d->n; i++) { /* document_indices */
        int64_t len = d->start[i + 1] - d->start[i];
        seq += len ? (uint64_t)((len + seq_max - 1) / seq_max) : 1;
        bw_put(iw, seq, 8);
    }
    bw_flush(iw);
    s = iw->st;
done:
    /* both files commit only when both were written: the .bin first, then the .idx */
    if (bin_open) {
        ssmlm_status c = ssmlm_atomic_close(&bw->af, s == SSMLM_OK);
        if (s == SSMLM_OK) s = c;
    }
    if (idx_open) {
        ssmlm_status c = ssmlm_atomic_close(&iw->af, s == SSMLM_OK);
        if (s == SSMLM_OK) s = c;
    }
    free(buf);
    free(bw);
    free(iw);
    free(ipath);
    free(bpath);
    return s;
}

/* ---- batcher ----------------------------------------------------------------------------------- */
struct ssmlm_batcher {
    const ssmlm_docs *d;
    int64_t T;
    uint64_t seed;
    int64_t n;              /* documents in the split */
    int64_t *ids;           /* [n] their corpus indices, ascending */
    int64_t *order;         /* [n] corpus indices in the shuffled order of order_epoch */
    uint64_t order_epoch;
    int64_t tokens;         /* tokens in the split */
    ssmlm_batcher_pos pos;  /* next row (normalized: at a token) */
    int32_t *row;           /* [T+1] */
    uint8_t *scored;        /* [T+1] target is scored */
    uint8_t *first;         /* [T+1] first token of a document */
};

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Independent RNG streams of a batcher: split assignment and one per epoch. */
static void stream_seed(ssmlm_rng *r, uint64_t seed, uint64_t tag, uint64_t k) {
    ssmlm_rng_seed(r, mix64(mix64(mix64(seed + 0x9e3779b97f4a7c15ull) ^ tag) + k));
}

static void shuffle(int64_t *a, int64_t n, ssmlm_rng *r) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)ssmlm_synth_below(r, (uint64_t)i + 1);
        int64_t t = a[i];
        a[i] = a[j], a[j] = t;
    }
}

static void ensure_order(ssmlm_batcher *b, uint64_t epoch) {
    if (b->order_epoch == epoch) return;
    ssmlm_rng r;
    stream_seed(&r, b->seed, 2, epoch);
    memcpy(b->order, b->ids, (size_t)b->n * sizeof *b->ids);
    shuffle(b->order, b->n, &r);
    b->order_epoch = epoch;
}

static int64_t pos_doclen(ssmlm_batcher *b, const ssmlm_batcher_pos *p) {
    ensure_order(b, p->epoch);
    return ssmlm_docs_length(b->d, b->order[p->doc]);
}

/* Moves a position at the end of a document to the next token (next epoch if needed). */
static void normalize(ssmlm_batcher *b, ssmlm_batcher_pos *p) {
    while (p->offset >= pos_doclen(b, p)) {
        p->offset = 0;
        if (++p->doc == b->n) p->doc = 0, p->epoch++;
    }
}

/* Walks ntok tokens from *p (normalized), advancing it; the outputs may be NULL. */
static void walk(ssmlm_batcher *b, ssmlm_batcher_pos *p, int64_t ntok, int32_t *tok, uint8_t *scored,
                 uint8_t *first) {
    int64_t j = 0;
    while (j < ntok) {
        int64_t id = (ensure_order(b, p->epoch), b->order[p->doc]);
        int64_t len = ssmlm_docs_length(b->d, id), take = len - p->offset;
        if (take > ntok - j) take = ntok - j;
        if (tok) {
            ssmlm_docs_read(b->d, id, p->offset, take, tok + j);
            const uint8_t *m = ssmlm_docs_mask(b->d, id);
            for (int64_t u = 0; u < take; u++) {
                scored[j + u] = m ? m[p->offset + u] : 1;
                first[j + u] = p->offset + u == 0;
            }
        }
        j += take;
        p->offset += take;
        normalize(b, p);
    }
}

ssmlm_status ssmlm_batcher_create(ssmlm_batcher **out, const ssmlm_docs *d, int64_t T, uint64_t seed,
                                  double val_fraction, int split) {
    *out = NULL;
    if (T < 1)
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "batcher: sequence length T = %lld must be at least 1", (long long)T);
    if (!(val_fraction >= 0 && val_fraction < 1))
        return ssmlm_fail(SSMLM_ERR_INVALID, "e.g. 0.01 holds out 1%% of the documents",
                          "batcher: val_fraction %g must be in [0, 1)", val_fraction);
    if (split != 0 && split != 1)
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "batcher: split %d must be 0 (train) or 1 (validation)", split);
    int64_t all = d->n;
    int64_t n_val = (int64_t)floor(val_fraction * (double)all + 0.5);
    if (val_fraction > 0 && n_val < 1) n_val = 1;
    if (n_val > all - 1) n_val = all > 0 ? all - 1 : 0;
    int64_t n = split ? n_val : all - n_val;
    if (n < 1)
        return ssmlm_fail(SSMLM_ERR_INVALID,
                          split ? "set val_fraction above 0 and give at least 2 documents" : "give a corpus with documents",
                          "batcher: the %s split of a corpus of %lld documents (val_fraction %g) is empty",
                          split ? "validation" : "training", (long long)all, val_fraction);
    ssmlm_batcher *b = calloc(1, sizeof *b);
    uint8_t *is_val = calloc((size_t)all, 1);
    int64_t *perm = n_val ? malloc((size_t)all * sizeof *perm) : NULL;
    if (b) {
        b->ids = malloc((size_t)n * sizeof *b->ids);
        b->order = malloc((size_t)n * sizeof *b->order);
        b->row = malloc((size_t)(T + 1) * sizeof *b->row);
        b->scored = malloc((size_t)(T + 1));
        b->first = malloc((size_t)(T + 1));
    }
    if (!b || !is_val || (n_val && !perm) || !b->ids || !b->order || !b->row || !b->scored || !b->first) {
        free(is_val);
        free(perm);
        ssmlm_batcher_free(b);
        return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "batcher: out of memory for %lld documents", (long long)all);
    }
    /* the validation documents: the first n_val of a seeded permutation of all documents */
    if (n_val) {
        ssmlm_rng r;
        stream_seed(&r, seed, 1, 0);
        for (int64_t i = 0; i < all; i++) perm[i] = i;
        shuffle(perm, all, &r);
        for (int64_t i = 0; i < n_val; i++) is_val[perm[i]] = 1;
    }
    int64_t k = 0;
    b->tokens = 0;
    for (int64_t i = 0; i < all; i++)
        if (is_val[i] == split) {
            b->ids[k++] = i;
            b->tokens += ssmlm_docs_length(d, i);
        }
    SSMLM_ASSERT(k == n);
    free(is_val);
    free(perm);
    b->d = d;
    b->T = T;
    b->seed = seed;
    b->n = n;
    if (b->tokens == 0) {
        ssmlm_batcher_free(b);
        return ssmlm_fail(SSMLM_ERR_INVALID, "give documents with tokens",
                          "batcher: the %s split (%lld documents) holds no tokens", split ? "validation" : "training",
                          (long long)n);
    }
    b->order_epoch = UINT64_MAX; /* no order computed yet */
    ensure_order(b, 0);
    normalize(b, &b->pos);
    *out = b;
    return SSMLM_OK;
}

ssmlm_status ssmlm_batcher_next(ssmlm_batcher *b, int64_t rows, int32_t *ids, int32_t *labels, int32_t *seg) {
    if (rows < 0)
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "batcher: %lld rows requested", (long long)rows);
    int64_t T = b->T;
    for (int64_t r = 0; r < rows; r++) {
        /* T tokens move the position; the label of the last one is the token at the new position */
        walk(b, &b->pos, T, b->row, b->scored, b->first);
        ensure_order(b, b->pos.epoch);
        int64_t id = b->order[b->pos.doc];
        const uint8_t *m = ssmlm_docs_mask(b->d, id);
        ssmlm_docs_read(b->d, id, b->pos.offset, 1, b->row + T);
        b->scored[T] = m ? m[b->pos.offset] : 1;
        b->first[T] = b->pos.offset == 0;
        int32_t *oi = ids + r * T, *ol = labels ? labels + r * T : NULL, *os = seg ? seg + r * T : NULL;
        int32_t s = 0;
        for (int64_t t = 0; t < T; t++) {
            if (t > 0) s += b->first[t];
            oi[t] = b->row[t];
            if (ol) ol[t] = b->scored[t + 1] ? b->row[t + 1] : -1;
            if (os) os[t] = s;
        }
    }
    return SSMLM_OK;
}

ssmlm_status ssmlm_batcher_skip(ssmlm_batcher *b, int64_t rows) {
    if (rows < 0)
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "batcher: cannot skip %lld rows", (long long)rows);
    for (int64_t r = 0; r < rows; r++) walk(b, &b->pos, b->T, NULL, NULL, NULL);
    return SSMLM_OK;
}

ssmlm_status ssmlm_batcher_next_shard(ssmlm_batcher *b, int64_t rows, int rank, int world, int32_t *ids,
                                      int32_t *labels, int32_t *seg) {
    if (world < 1 || rank < 0 || rank >= world)
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "batcher: rank %d of world size %d", rank, world);
    ssmlm_status s = ssmlm_batcher_skip(b, (int64_t)rank * rows);
    if (s == SSMLM_OK) s = ssmlm_batcher_next(b, rows, ids, labels, seg);
    if (s == SSMLM_OK) s = ssmlm_batcher_skip(b, (int64_t)(world - 1 - rank) * rows);
    return s;
}

ssmlm_batcher_pos ssmlm_batcher_tell(const ssmlm_batcher *b) { return b->pos; }

ssmlm_status ssmlm_batcher_seek(ssmlm_batcher *b, ssmlm_batcher_pos pos) {
    if (pos.doc < 0 || pos.doc >= b->n)
        return ssmlm_fail(SSMLM_ERR_INVALID, "resume with the same data, seed and split",
                          "batcher position: document %lld is outside [0, %lld)", (long long)pos.doc, (long long)b->n);
    int64_t len = pos_doclen(b, &pos);
    if (pos.offset < 0 || pos.offset > len)
        return ssmlm_fail(SSMLM_ERR_INVALID, "resume with the same data, seed and split",
                          "batcher position: offset %lld is outside document %lld of epoch %llu (%lld tokens)",
                          (long long)pos.offset, (long long)pos.doc, (unsigned long long)pos.epoch, (long long)len);
    normalize(b, &pos);
    b->pos = pos;
    return SSMLM_OK;
}

int64_t ssmlm_batcher_docs(const ssmlm_batcher *b) { return b->n; }
int64_t ssmlm_batcher_tokens(const ssmlm_batcher *b) { return b->tokens; }

int64_t ssmlm_batcher_doc_id(const ssmlm_batcher *b, int64_t i) {
    SSMLM_ASSERT(i >= 0 && i < b->n);
    return b->ids[i];
}

void ssmlm_batcher_free(ssmlm_batcher *b) {
    if (!b) return;
    free(b->ids);
    free(b->order);
    free(b->row);
    free(b->scored);
    free(b->first);
    free(b);
}

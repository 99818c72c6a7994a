/* test_dataset.c — corpora and packing: the Megatron .idx/.bin reader and writer (exact byte
 * layout, round trips, every corrupt field rejected by name), raw token files, byte text, and
 * the batcher (shifted labels, masks, document numbers, seeded epochs, exact resume, splits,
 * data-parallel shards). */
#include "test.h"
#include "train/data.h"
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tmp[64] = "/tmp/ssmlm_dataset_XXXXXX";

static int has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static void tmp_path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", g_tmp, name); }

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot create %s", path);
    if (!f) return;
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static unsigned char *slurp(const char *path, size_t *n) {
    char *data;
    if (ssmlm_file_read(path, &data, n) != SSMLM_OK) return NULL;
    return (unsigned char *)data;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- hand-built Megatron files ---------------------------------------------------------------- */
typedef struct bytes {
    unsigned char b[4096];
    size_t n;
} bytes;

static void put(bytes *w, uint64_t v, int nb) {
    for (int i = 0; i < nb; i++) w->b[w->n++] = (unsigned char)(v >> (8 * i));
}

/* An .idx laid out per formats.md §6.1: the header carries S and D as given, then nl
 * lengths, nl pointers, nd document indices and `extra` zero bytes. */
typedef struct idx_spec {
    char magic[9];
    uint64_t version;
    int code;
    uint64_t S, D;
    int nl, nd;
    int32_t lens[8];
    int64_t ptrs[8];
    int64_t didx[9];
    int extra;
} idx_spec;

static bytes idx_bytes(const idx_spec *s) {
    bytes w = {{0}, 0};
    memcpy(w.b, s->magic, 9);
    w.n = 9;
    put(&w, s->version, 8);
    put(&w, (uint64_t)s->code, 1);
    put(&w, s->S, 8);
    put(&w, s->D, 8);
    for (int i = 0; i < s->nl; i++) put(&w, (uint32_t)s->lens[i], 4);
    for (int i = 0; i < s->nl; i++) put(&w, (uint64_t)s->ptrs[i], 8);
    for (int i = 0; i < s->nd; i++) put(&w, (uint64_t)s->didx[i], 8);
    for (int i = 0; i < s->extra; i++) put(&w, 0, 1);
    return w;
}

/* The valid base case: uint16 tokens 10..15 in 4 sequences [3, 0, 2, 1] forming 3 documents:
 * {seq0, seq1} = 10 11 12, {seq2} = 13 14, {seq3} = 15. */
static idx_spec base_spec(void) {
    idx_spec s = {{'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0}, 1, SSMLM_MMID_U16, 4, 4, 4, 4,
                  {3, 0, 2, 1}, {0, 6, 6, 10}, {0, 2, 3, 4}, 0};
    return s;
}

static void write_pair(const char *prefix, const idx_spec *s, int bin_tokens) {
    char path[256];
    bytes w = idx_bytes(s);
    snprintf(path, sizeof path, "%s.idx", prefix);
    write_file(path, w.b, w.n);
    unsigned char bin[64];
    for (int i = 0; i < bin_tokens; i++) bin[2 * i] = (unsigned char)(10 + i), bin[2 * i + 1] = 0;
    snprintf(path, sizeof path, "%s.bin", prefix);
    write_file(path, bin, (size_t)bin_tokens * 2);
}

static void expect_reject_at(int line, const idx_spec *s, int bin_tokens, ssmlm_status want, const char *file_ext,
                             const char *what) {
    char prefix[256], named[300];
    tmp_path(prefix, sizeof prefix, "bad");
    write_pair(prefix, s, bin_tokens);
    snprintf(named, sizeof named, "%s%s", prefix, file_ext);
    ssmlm_docs *d = (ssmlm_docs *)1;
    ssmlm_status st = ssmlm_docs_open_megatron(&d, prefix);
    const char *msg = ssmlm_last_error();
    CHECK(st == want && d == NULL, "line %d: got %s (want %s): %s", line, ssmlm_status_name(st), ssmlm_status_name(want), msg);
    CHECK(has(msg, named), "line %d: message does not name %s: %s", line, named, msg);
    CHECK(has(msg, what), "line %d: message lacks '%s': %s", line, what, msg);
    if (st == SSMLM_OK) ssmlm_docs_free(d);
}
#define EXPECT_REJECT(spec, bin_tokens, ext, what) expect_reject_at(__LINE__, &(spec), bin_tokens, SSMLM_ERR_FORMAT, ext, what)

static void check_doc(const ssmlm_docs *d, int64_t i, const int32_t *want, int64_t n, const char *what) {
    int32_t got[64];
    int64_t len = ssmlm_docs_length(d, i);
    int ok = len == n && n <= 64;
    if (ok) {
        ssmlm_docs_read(d, i, 0, n, got);
        ok = memcmp(got, want, (size_t)n * sizeof *got) == 0;
    }
    CHECK(ok, "%s: document %lld differs (length %lld, want %lld)", what, (long long)i, (long long)len, (long long)n);
}

static void test_megatron_layout(void) {
    char prefix[256], path[300];
    tmp_path(prefix, sizeof prefix, "hand");
    idx_spec s = base_spec();
    write_pair(prefix, &s, 6);
    ssmlm_docs *d;
    CHECK_OK(ssmlm_docs_open_megatron(&d, prefix));
    if (d) {
        CHECK(ssmlm_docs_count(d) == 3 && ssmlm_docs_total_tokens(d) == 6, "3 documents, 6 tokens");
        check_doc(d, 0, (int32_t[]){10, 11, 12}, 3, "hand-built");
        check_doc(d, 1, (int32_t[]){13, 14}, 2, "hand-built");
        check_doc(d, 2, (int32_t[]){15}, 1, "hand-built");
        int32_t mid[2];
        ssmlm_docs_read(d, 0, 1, 2, mid);
        CHECK(mid[0] == 11 && mid[1] == 12, "read at an offset");
        CHECK(ssmlm_docs_mask(d, 0) == NULL, "no mask");
        CHECK(ssmlm_docs_max_token(d) == 15, "max token");
        CHECK_OK(ssmlm_docs_check_vocab(d, 16));
        CHECK(ssmlm_docs_check_vocab(d, 15) == SSMLM_ERR_INVALID && has(ssmlm_last_error(), "document 2, token 0: id 15"),
              "vocab 15: %s", ssmlm_last_error());
        ssmlm_docs_free(d);
    }
    /* multimodal files append one sequence_modes byte per sequence: accepted */
    s.extra = 4;
    write_pair(prefix, &s, 6);
    CHECK_OK(ssmlm_docs_open_megatron(&d, prefix));
    ssmlm_docs_free(d);
    /* an empty dataset: no sequences, document_indices = [0] */
    idx_spec e = base_spec();
    e.S = 0, e.D = 1, e.nl = 0, e.nd = 1;
    write_pair(prefix, &e, 0);
    CHECK_OK(ssmlm_docs_open_megatron(&d, prefix));
    if (d) CHECK(ssmlm_docs_count(d) == 0 && ssmlm_docs_total_tokens(d) == 0 && ssmlm_docs_max_token(d) == -1, "empty dataset");
    ssmlm_docs_free(d);

    /* the writer produces exactly the documented bytes: one sequence per document */
    int64_t starts[] = {0, 3, 5, 6};
    int32_t toks[] = {10, 11, 12, 13, 14, 15};
    CHECK_OK(ssmlm_docs_from_arrays(&d, 3, starts, toks, NULL));
    tmp_path(prefix, sizeof prefix, "written");
    CHECK_OK(ssmlm_docs_write_megatron(d, prefix, 2));
    ssmlm_docs_free(d);
    idx_spec w = {{'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0}, 1, SSMLM_MMID_U16, 3, 4, 3, 4,
                  {3, 2, 1}, {0, 6, 10}, {0, 1, 2, 3}, 0};
    bytes want = idx_bytes(&w);
    size_t n;
    snprintf(path, sizeof path, "%s.idx", prefix);
    unsigned char *got = slurp(path, &n);
    CHECK(got && n == want.n && n == 34 + 12 * 3 + 8 * 4 && memcmp(got, want.b, n) == 0, "written .idx bytes (%zu)", n);
    free(got);
    snprintf(path, sizeof path, "%s.bin", prefix);
    got = slurp(path, &n);
    unsigned char want_bin[] = {10, 0, 11, 0, 12, 0, 13, 0, 14, 0, 15, 0};
    CHECK(got && n == sizeof want_bin && memcmp(got, want_bin, n) == 0, "written .bin bytes");
    free(got);
}

static void test_megatron_corrupt(void) {
    idx_spec s;
    char prefix[256], path[300];
    tmp_path(prefix, sizeof prefix, "bad");

    s = base_spec();
    s.nl = 0, s.nd = 0;
    s.S = 0;
    {
        /* shorter than the 34-byte header */
        bytes w = idx_bytes(&s);
        snprintf(path, sizeof path, "%s.idx", prefix);
        write_file(path, w.b, 20);
        ssmlm_docs *d;
        CHECK(ssmlm_docs_open_megatron(&d, prefix) == SSMLM_ERR_FORMAT && has(ssmlm_last_error(), "header") &&
                  has(ssmlm_last_error(), path),
              "short header: %s", ssmlm_last_error());
    }
    s = base_spec(), s.magic[6] = 'Y';
    EXPECT_REJECT(s, 6, ".idx", "magic");
    s = base_spec(), s.version = 2;
    EXPECT_REJECT(s, 6, ".idx", "version 2");
    s = base_spec(), s.code = 9;
    EXPECT_REJECT(s, 6, ".idx", "dtype code 9");
    s = base_spec(), s.code = 0;
    EXPECT_REJECT(s, 6, ".idx", "dtype code 0");
    s = base_spec(), s.S = 1000;
    EXPECT_REJECT(s, 6, ".idx", "sequence_count 1000");
    s = base_spec(), s.S = 0xffffffffffffffffull;
    EXPECT_REJECT(s, 6, ".idx", "sequence_count 18446744073709551615");
    s = base_spec(), s.D = 1000;
    EXPECT_REJECT(s, 6, ".idx", "document_count 1000");
    s = base_spec(), s.D = 0, s.nd = 0, s.S = 0, s.nl = 0;
    EXPECT_REJECT(s, 0, ".idx", "document_count 0");
    s = base_spec(), s.extra = 3;
    EXPECT_REJECT(s, 6, ".idx", "file size");
    s = base_spec(), s.S = 3, s.D = 5;
    EXPECT_REJECT(s, 6, ".idx", "file size");
    s = base_spec(), s.lens[1] = -1;
    EXPECT_REJECT(s, 6, ".idx", "sequence_lengths[1] = -1");
    s = base_spec(), s.ptrs[2] = 8;
    EXPECT_REJECT(s, 6, ".idx", "sequence_pointers[2] = 8");
    s = base_spec(), s.ptrs[0] = -8;
    EXPECT_REJECT(s, 6, ".idx", "sequence_pointers[0] = -8");
    s = base_spec(), s.lens[3] = 5;
    EXPECT_REJECT(s, 6, ".idx", "sequence_lengths[3] = 5 ends at byte 20, past the end");
    s = base_spec(), s.lens[0] = 0x7fffffff;
    EXPECT_REJECT(s, 6, ".idx", "sequence_lengths[0]");
    s = base_spec();
    EXPECT_REJECT(s, 7, ".bin", "describes 12");   /* trailing token in the .bin */
    s = base_spec();
    EXPECT_REJECT(s, 5, ".idx", "past the end");   /* truncated .bin */
    s = base_spec(), s.didx[0] = 1;
    EXPECT_REJECT(s, 6, ".idx", "document_indices[0] = 1");
    s = base_spec(), s.didx[1] = 3, s.didx[2] = 2;
    EXPECT_REJECT(s, 6, ".idx", "document_indices[2] = 2 is below document_indices[1] = 3 (not monotonic)");
    s = base_spec(), s.didx[3] = 5;
    EXPECT_REJECT(s, 6, ".idx", "document_indices[3] = 5 is past sequence_count 4");
    s = base_spec(), s.didx[3] = 3;
    EXPECT_REJECT(s, 6, ".idx", "document_indices[3] = 3, the last entry must equal sequence_count 4");

    /* a missing .bin or .idx is an I/O error naming the file */
    s = base_spec();
    write_pair(prefix, &s, 6);
    snprintf(path, sizeof path, "%s.bin", prefix);
    unlink(path);
    ssmlm_docs *d;
    CHECK(ssmlm_docs_open_megatron(&d, prefix) == SSMLM_ERR_IO && has(ssmlm_last_error(), path),
          "missing .bin: %s", ssmlm_last_error());
    tmp_path(prefix, sizeof prefix, "nothing_here");
    CHECK(ssmlm_docs_open_megatron(&d, prefix) == SSMLM_ERR_IO && has(ssmlm_last_error(), "nothing_here.idx"),
          "missing .idx: %s", ssmlm_last_error());
}

/* A corpus of n documents with tokens = 1000 * doc + position (lengths given). */
static ssmlm_docs *coded_corpus(int64_t n, const int64_t *lens, int with_mask) {
    int64_t *starts = malloc((size_t)(n + 1) * sizeof *starts);
    starts[0] = 0;
    for (int64_t i = 0; i < n; i++) starts[i + 1] = starts[i] + lens[i];
    int32_t *tok = malloc((size_t)(starts[n] + 1) * sizeof *tok);
    uint8_t *mask = malloc((size_t)starts[n] + 1);
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < lens[i]; k++) {
            tok[starts[i] + k] = (int32_t)(1000 * i + k);
            mask[starts[i] + k] = k % 2 == 0; /* even positions are scored */
        }
    ssmlm_docs *d = NULL;
    CHECK_OK(ssmlm_docs_from_arrays(&d, n, starts, tok, with_mask ? mask : NULL));
    free(starts);
    free(tok);
    free(mask);
    return d;
}

static int same_docs(const ssmlm_docs *a, const ssmlm_docs *b) {
    if (ssmlm_docs_count(a) != ssmlm_docs_count(b)) return 0;
    for (int64_t i = 0; i < ssmlm_docs_count(a); i++) {
        int64_t len = ssmlm_docs_length(a, i);
        if (len != ssmlm_docs_length(b, i)) return 0;
        int32_t *x = malloc((size_t)(len + 1) * sizeof *x), *y = malloc((size_t)(len + 1) * sizeof *y);
        ssmlm_docs_read(a, i, 0, len, x);
        ssmlm_docs_read(b, i, 0, len, y);
        int eq = memcmp(x, y, (size_t)len * sizeof *x) == 0;
        free(x);
        free(y);
        if (!eq) return 0;
    }
    return 1;
}

static void test_megatron_roundtrip(void) {
    char prefix[256], path[300];
    /* random documents (some empty) with ids up to top, written at each token width */
    int64_t n = 50, starts[51];
    int32_t tok[50 * 40];
    uint64_t x = 12345;
    starts[0] = 0;
    for (int64_t i = 0; i < n; i++) starts[i + 1] = starts[i] + (int64_t)(i * 7 % 40);
    const int64_t tops[] = {255, 65535, 300000, 2147483647};
    const int widths[] = {1, 2, 4, 8};
    for (int k = 0; k < 4; k++) {
        for (int64_t j = 0; j < starts[n]; j++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            tok[j] = (int32_t)((x >> 33) % (uint64_t)(tops[k] + 1));
        }
        tok[0] = (int32_t)tops[k]; /* the first token of document 1 (document 0 is empty) */
        ssmlm_docs *d, *e;
        CHECK_OK(ssmlm_docs_from_arrays(&d, n, starts, tok, NULL));
        char name[16];
        snprintf(name, sizeof name, "rt%d", widths[k]);
        tmp_path(prefix, sizeof prefix, name);
        CHECK_OK(ssmlm_docs_write_megatron(d, prefix, widths[k]));
        CHECK_OK(ssmlm_docs_open_megatron(&e, prefix));
        if (e) {
            CHECK(same_docs(d, e), "round trip with %d-byte tokens", widths[k]);
            CHECK(ssmlm_docs_max_token(e) == tops[k], "max token %lld", (long long)ssmlm_docs_max_token(e));
        }
        ssmlm_docs_free(e);
        /* a narrower type is refused, naming the document and token, and nothing is written */
        if (k > 0 && k < 3) {
            tmp_path(prefix, sizeof prefix, "narrow");
            CHECK(ssmlm_docs_write_megatron(d, prefix, widths[k - 1]) == SSMLM_ERR_INVALID &&
                      has(ssmlm_last_error(), "document 1, token 0") && has(ssmlm_last_error(), "does not fit"),
                  "narrow type: %s", ssmlm_last_error());
            snprintf(path, sizeof path, "%s.bin", prefix);
            CHECK(!file_exists(path), "a refused write leaves no .bin");
            snprintf(path, sizeof path, "%s.idx", prefix);
            CHECK(!file_exists(path), "a refused write leaves no .idx");
        }
        CHECK(ssmlm_docs_write_megatron(d, prefix, 3) == SSMLM_ERR_INVALID, "3-byte tokens refused");
        ssmlm_docs_free(d);
    }

    /* float and int64 storage read as int32; unrepresentable values read as -1 */
    idx_spec s = {{'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0}, 1, SSMLM_MMID_F32, 1, 2, 1, 2, {4}, {0}, {0, 1}, 0};
    tmp_path(prefix, sizeof prefix, "f32");
    bytes w = idx_bytes(&s);
    snprintf(path, sizeof path, "%s.idx", prefix);
    write_file(path, w.b, w.n);
    float f[4] = {1.0f, 2.0f, NAN, 3e10f};
    snprintf(path, sizeof path, "%s.bin", prefix);
    write_file(path, f, sizeof f);
    ssmlm_docs *d;
    CHECK_OK(ssmlm_docs_open_megatron(&d, prefix));
    if (d) {
        check_doc(d, 0, (int32_t[]){1, 2, -1, -1}, 4, "float32 tokens");
        CHECK(ssmlm_docs_check_vocab(d, 100) == SSMLM_ERR_INVALID && has(ssmlm_last_error(), "document 0, token 2: id -1"),
              "NaN token reported: %s", ssmlm_last_error());
    }
    ssmlm_docs_free(d);
}

/* ---- raw token files ------------------------------------------------------------------------- */
static void test_raw_tokens(void) {
    char path[256];
    tmp_path(path, sizeof path, "tokens16.bin");
    uint16_t t16[] = {5, 1, 7, 8, 1, 9};
    write_file(path, t16, sizeof t16);
    ssmlm_docs *d;
    CHECK_OK(ssmlm_docs_open_tokens(&d, path, 16, 1));
    if (d) {
        CHECK(ssmlm_docs_count(d) == 3, "eod split: %lld documents", (long long)ssmlm_docs_count(d));
        check_doc(d, 0, (int32_t[]){5, 1}, 2, "eod split");
        check_doc(d, 1, (int32_t[]){7, 8, 1}, 3, "eod split");
        check_doc(d, 2, (int32_t[]){9}, 1, "eod split (tail without eod)");
    }
    ssmlm_docs_free(d);
    CHECK_OK(ssmlm_docs_open_tokens(&d, path, 16, -1));
    if (d) check_doc(d, 0, (int32_t[]){5, 1, 7, 8, 1, 9}, 6, "no eod: one document");
    ssmlm_docs_free(d);
    /* the file ends with an eod: no empty tail document */
    uint16_t e16[] = {3, 2, 4, 2};
    write_file(path, e16, sizeof e16);
    CHECK_OK(ssmlm_docs_open_tokens(&d, path, 16, 2));
    if (d) CHECK(ssmlm_docs_count(d) == 2 && ssmlm_docs_length(d, 1) == 2, "trailing eod");
    ssmlm_docs_free(d);
    /* odd byte length for uint16 */
    write_file(path, t16, 5);
    CHECK(ssmlm_docs_open_tokens(&d, path, 16, 1) == SSMLM_ERR_FORMAT && has(ssmlm_last_error(), path) &&
              has(ssmlm_last_error(), "not a multiple of 2"),
          "odd length: %s", ssmlm_last_error());
    CHECK(ssmlm_docs_open_tokens(&d, path, 8, 1) == SSMLM_ERR_INVALID && has(ssmlm_last_error(), "8 bits"),
          "8-bit tokens: %s", ssmlm_last_error());
    CHECK(ssmlm_docs_open_tokens(&d, path, 16, 70000) == SSMLM_ERR_INVALID && has(ssmlm_last_error(), "eod id 70000"),
          "eod beyond uint16: %s", ssmlm_last_error());
    /* uint32 */
    tmp_path(path, sizeof path, "tokens32.bin");
    uint32_t t32[] = {100000, 0, 4000000000u, 0};
    write_file(path, t32, sizeof t32);
    CHECK_OK(ssmlm_docs_open_tokens(&d, path, 32, 0));
    if (d) {
        check_doc(d, 0, (int32_t[]){100000, 0}, 2, "uint32");
        check_doc(d, 1, (int32_t[]){-1, 0}, 2, "uint32 beyond int32 reads -1");
    }
    ssmlm_docs_free(d);
    write_file(path, t32, 6);
    CHECK(ssmlm_docs_open_tokens(&d, path, 32, 0) == SSMLM_ERR_FORMAT && has(ssmlm_last_error(), "not a multiple of 4"),
          "uint32 length: %s", ssmlm_last_error());
    /* empty file: no documents */
    write_file(path, t32, 0);
    CHECK_OK(ssmlm_docs_open_tokens(&d, path, 32, 0));
    if (d) CHECK(ssmlm_docs_count(d) == 0, "empty token file");
    ssmlm_docs_free(d);
}

/* ---- text -------------------------------------------------------------------------------------- */
static void test_text(void) {
    char path[256];
    tmp_path(path, sizeof path, "text.txt");
    const char text[] = "ab\n\ncd\n\n\n\n\xc3\xa9z\n\n";
    write_file(path, text, sizeof text - 1);
    ssmlm_docs *d;
    CHECK_OK(ssmlm_docs_open_text(&d, path, "\n\n"));
    if (d) {
        CHECK(ssmlm_docs_count(d) == 3, "3 text documents, got %lld", (long long)ssmlm_docs_count(d));
        check_doc(d, 0, (int32_t[]){'a', 'b', SSMLM_BYTE_EOD}, 3, "text");
        check_doc(d, 1, (int32_t[]){'c', 'd', SSMLM_BYTE_EOD}, 3, "text");
        check_doc(d, 2, (int32_t[]){0xc3, 0xa9, 'z', SSMLM_BYTE_EOD}, 4, "text bytes >= 128");
        CHECK(ssmlm_docs_max_token(d) == SSMLM_BYTE_EOD, "max token");
        CHECK_OK(ssmlm_docs_check_vocab(d, SSMLM_BYTE_VOCAB));
    }
    ssmlm_docs_free(d);
    CHECK_OK(ssmlm_docs_open_text(&d, path, NULL));
    if (d) {
        CHECK(ssmlm_docs_count(d) == 1 && ssmlm_docs_length(d, 0) == (int64_t)sizeof text, "whole file one document");
        int32_t last;
        ssmlm_docs_read(d, 0, ssmlm_docs_length(d, 0) - 1, 1, &last);
        CHECK(last == SSMLM_BYTE_EOD, "ends with EOD");
    }
    ssmlm_docs_free(d);
    write_file(path, "", 0);
    CHECK_OK(ssmlm_docs_open_text(&d, path, ""));
    if (d) CHECK(ssmlm_docs_count(d) == 0, "empty text");
    ssmlm_docs_free(d);
    tmp_path(path, sizeof path, "no_such_file.txt");
    CHECK(ssmlm_docs_open_text(&d, path, NULL) == SSMLM_ERR_IO && has(ssmlm_last_error(), path), "missing text file");
}

/* ---- batcher ----------------------------------------------------------------------------------- */
/* Checks rows of a coded corpus (token = 1000 doc + position, even positions scored):
 * labels are the next token or -1, rows continue each other, seg counts document starts.
 * Appends each visited document to visits (when a new one starts). */
static int check_rows(const int32_t *ids, const int32_t *labels, const int32_t *seg, int64_t rows, int64_t T,
                      const int64_t *lens, int64_t *visits, int64_t *nvisits, int32_t *prev_last) {
    int ok = 1;
    for (int64_t r = 0; r < rows; r++) {
        const int32_t *x = ids + r * T, *l = labels + r * T, *s = seg + r * T;
        for (int64_t t = 0; t < T; t++) {
            int32_t tok = x[t], prev = t ? x[t - 1] : *prev_last;
            int start = tok % 1000 == 0;
            /* the stream continues the previous token's document or starts a new one after its end */
            if (prev >= 0) {
                int cont = tok == prev + 1 && tok / 1000 == prev / 1000;
                int next = start && prev % 1000 == lens[prev / 1000] - 1;
                ok &= cont || next;
            }
            if (start) visits[(*nvisits)++] = tok / 1000;
            ok &= s[t] == (t == 0 ? 0 : s[t - 1] + start);
            if (t + 1 < T) ok &= l[t] == (x[t + 1] % 2 == 0 ? x[t + 1] : -1);
            if (t + 1 == T && r + 1 < rows) ok &= l[t] == (ids[(r + 1) * T] % 2 == 0 ? ids[(r + 1) * T] : -1);
        }
        *prev_last = x[T - 1];
    }
    return ok;
}

#define NDOC 23
static int64_t g_lens[NDOC];

static void test_batcher_stream(void) {
    for (int64_t i = 0; i < NDOC; i++) g_lens[i] = i * 7 % 19; /* 0..18, with empty documents */
    ssmlm_docs *d = coded_corpus(NDOC, g_lens, 1);
    int64_t nonempty = 0, total = 0;
    for (int64_t i = 0; i < NDOC; i++) nonempty += g_lens[i] > 0, total += g_lens[i];
    const int64_t T = 8, R = 4;
    ssmlm_batcher *b;
    CHECK_OK(ssmlm_batcher_create(&b, d, T, 77, 0.0, 0));
    if (!b) return;
    CHECK(ssmlm_batcher_docs(b) == NDOC && ssmlm_batcher_tokens(b) == total, "whole corpus in the training split");
    /* about 4 epochs */
    int64_t steps = 4 * total / (R * T) + 1;
    int32_t *ids = malloc((size_t)(steps * R * T) * sizeof *ids), *lab = malloc((size_t)(steps * R * T) * sizeof *lab),
            *seg = malloc((size_t)(steps * R * T) * sizeof *seg);
    for (int64_t k = 0; k < steps; k++) CHECK_OK(ssmlm_batcher_next(b, R, ids + k * R * T, lab + k * R * T, seg + k * R * T));
    int64_t visits[4096], nv = 0;
    int32_t prev = -1;
    CHECK(check_rows(ids, lab, seg, steps * R, T, g_lens, visits, &nv, &prev), "rows: labels, masks, seg or continuity wrong");
    CHECK(ids[0] % 1000 == 0, "the stream starts at a document start");
    /* every epoch visits each non-empty document once; epochs are shuffled differently */
    int epochs_ok = 1, same_order = 1, sorted = 1;
    for (int64_t e = 0; (e + 1) * nonempty <= nv; e++) {
        int seen[NDOC] = {0};
        for (int64_t k = 0; k < nonempty; k++) seen[visits[e * nonempty + k]]++;
        for (int64_t i = 0; i < NDOC; i++) epochs_ok &= seen[i] == (g_lens[i] > 0);
        if (e > 0)
            for (int64_t k = 0; k < nonempty; k++) same_order &= visits[e * nonempty + k] == visits[k];
    }
    for (int64_t k = 1; k < nonempty; k++) sorted &= visits[k] > visits[k - 1];
    CHECK(nv >= 3 * nonempty, "at least 3 epochs read (%lld visits)", (long long)nv);
    CHECK(epochs_ok, "an epoch does not visit every document exactly once");
    CHECK(!same_order, "every epoch has the same order");
    CHECK(!sorted, "epoch 0 is not shuffled");
    CHECK(ssmlm_batcher_tell(b).epoch >= 3, "epoch counter %llu", (unsigned long long)ssmlm_batcher_tell(b).epoch);

    /* same seed: same rows; another seed: other rows; NULL labels/seg allowed */
    ssmlm_batcher *c, *e;
    CHECK_OK(ssmlm_batcher_create(&c, d, T, 77, 0.0, 0));
    CHECK_OK(ssmlm_batcher_create(&e, d, T, 78, 0.0, 0));
    int32_t *ids2 = malloc((size_t)(steps * R * T) * sizeof *ids2);
    for (int64_t k = 0; k < steps; k++) CHECK_OK(ssmlm_batcher_next(c, R, ids2 + k * R * T, NULL, NULL));
    CHECK(memcmp(ids, ids2, (size_t)(steps * R * T) * sizeof *ids) == 0, "same seed, different rows");
    for (int64_t k = 0; k < steps; k++) CHECK_OK(ssmlm_batcher_next(e, R, ids2 + k * R * T, NULL, NULL));
    CHECK(memcmp(ids, ids2, (size_t)(steps * R * T) * sizeof *ids) != 0, "another seed, same rows");
    ssmlm_batcher_free(c);
    ssmlm_batcher_free(e);

    /* tell/seek: from any saved position, next() continues exactly as the uninterrupted run */
    ssmlm_batcher_pos pos[512];
    ssmlm_batcher *u;
    CHECK_OK(ssmlm_batcher_create(&u, d, T, 77, 0.0, 0));
    int64_t nsteps = steps < 512 ? steps : 512;
    for (int64_t k = 0; k < nsteps; k++) {
        pos[k] = ssmlm_batcher_tell(u);
        CHECK_OK(ssmlm_batcher_skip(u, R));
    }
    int resume_ok = 1;
    int32_t row[4 * 8], lrow[4 * 8], srow[4 * 8];
    for (int64_t k = 0; k < nsteps; k += 3) {
        ssmlm_batcher *v;
        CHECK_OK(ssmlm_batcher_create(&v, d, T, 77, 0.0, 0));
        CHECK_OK(ssmlm_batcher_seek(v, pos[k]));
        CHECK_OK(ssmlm_batcher_next(v, R, row, lrow, srow));
        resume_ok &= memcmp(row, ids + k * R * T, sizeof row) == 0 && memcmp(lrow, lab + k * R * T, sizeof lrow) == 0 &&
                     memcmp(srow, seg + k * R * T, sizeof srow) == 0;
        if (k + 1 < nsteps) {
            ssmlm_batcher_pos p = ssmlm_batcher_tell(v);
            resume_ok &= p.epoch == pos[k + 1].epoch && p.doc == pos[k + 1].doc && p.offset == pos[k + 1].offset;
        }
        ssmlm_batcher_free(v);
    }
    CHECK(resume_ok, "seek + next differs from the uninterrupted sequence");
    /* seeking to the end of a document normalizes to the start of the next one */
    int64_t km = 0;
    while (km + 1 < nsteps && ids[km * R * T] % 1000 == 0) km++;
    ssmlm_batcher_pos p = pos[km];
    p.offset = g_lens[ids[km * R * T] / 1000];
    CHECK_OK(ssmlm_batcher_seek(u, p));
    ssmlm_batcher_pos q = ssmlm_batcher_tell(u);
    CHECK(q.offset == 0 && (q.doc != p.doc || q.epoch != p.epoch), "seek to a document end is normalized");
    CHECK_OK(ssmlm_batcher_next(u, 1, row, NULL, NULL));
    CHECK(row[0] % 1000 == 0, "the row after a document end starts a document");
    CHECK_OK(ssmlm_batcher_seek(u, q));
    ssmlm_batcher_pos bad = {0, NDOC, 0};
    CHECK(ssmlm_batcher_seek(u, bad) == SSMLM_ERR_INVALID && has(ssmlm_last_error(), "document 23"),
          "doc out of range: %s", ssmlm_last_error());
    bad.doc = -1;
    CHECK(ssmlm_batcher_seek(u, bad) == SSMLM_ERR_INVALID, "negative doc");
    bad.doc = 0, bad.offset = 1000;
    CHECK(ssmlm_batcher_seek(u, bad) == SSMLM_ERR_INVALID && has(ssmlm_last_error(), "offset 1000"),
          "offset out of range: %s", ssmlm_last_error());
    CHECK(ssmlm_batcher_tell(u).doc == q.doc && ssmlm_batcher_tell(u).offset == q.offset, "a refused seek keeps the position");
    ssmlm_batcher_free(u);

    /* data-parallel shards: rank r gets rows [r*R, (r+1)*R) of the global batch */
    ssmlm_batcher *g;
    CHECK_OK(ssmlm_batcher_create(&g, d, T, 5, 0.0, 0));
    int shard_ok = 1;
    ssmlm_batcher *rk[3];
    for (int r = 0; r < 3; r++) CHECK_OK(ssmlm_batcher_create(&rk[r], d, T, 5, 0.0, 0));
    int32_t gl_ids[3 * 4 * 8], gl_lab[3 * 4 * 8], sh_ids[4 * 8], sh_lab[4 * 8], sh_seg[4 * 8];
    for (int step = 0; step < 20; step++) {
        CHECK_OK(ssmlm_batcher_next(g, 3 * R, gl_ids, gl_lab, NULL));
        for (int r = 0; r < 3; r++) {
            CHECK_OK(ssmlm_batcher_next_shard(rk[r], R, r, 3, sh_ids, sh_lab, sh_seg));
            shard_ok &= memcmp(sh_ids, gl_ids + r * R * T, sizeof sh_ids) == 0 &&
                        memcmp(sh_lab, gl_lab + r * R * T, sizeof sh_lab) == 0;
            ssmlm_batcher_pos a = ssmlm_batcher_tell(rk[r]), c2 = ssmlm_batcher_tell(g);
            shard_ok &= a.epoch == c2.epoch && a.doc == c2.doc && a.offset == c2.offset;
        }
    }
    CHECK(shard_ok, "shards differ from the global batch");
    CHECK(ssmlm_batcher_next_shard(g, R, 3, 3, sh_ids, NULL, NULL) == SSMLM_ERR_INVALID, "rank 3 of 3");
    for (int r = 0; r < 3; r++) ssmlm_batcher_free(rk[r]);
    ssmlm_batcher_free(g);

    free(ids);
    free(ids2);
    free(lab);
    free(seg);
    ssmlm_batcher_free(b);
    ssmlm_docs_free(d);
}

static void test_batcher_split(void) {
    ssmlm_docs *d = coded_corpus(NDOC, g_lens, 0);
    ssmlm_batcher *tr, *va;
    CHECK_OK(ssmlm_batcher_create(&tr, d, 5, 9, 0.25, 0));
    CHECK_OK(ssmlm_batcher_create(&va, d, 5, 9, 0.25, 1));
    if (!tr || !va) return;
    int64_t nt = ssmlm_batcher_docs(tr), nv = ssmlm_batcher_docs(va);
    CHECK(nv == 6 && nt == NDOC - 6, "split sizes %lld / %lld (round(0.25 x 23) = 6)", (long long)nt, (long long)nv);
    int where[NDOC] = {0}, ok = 1;
    for (int64_t i = 0; i < nt; i++) where[ssmlm_batcher_doc_id(tr, i)] |= 1;
    for (int64_t i = 0; i < nv; i++) where[ssmlm_batcher_doc_id(va, i)] |= 2;
    for (int64_t i = 0; i < NDOC; i++) ok &= where[i] == 1 || where[i] == 2;
    CHECK(ok, "train and validation splits overlap or miss a document");
    /* validation rows hold validation documents only (no masks: labels are the next token) */
    int32_t ids[40 * 5], lab[40 * 5];
    CHECK_OK(ssmlm_batcher_next(va, 40, ids, lab, NULL));
    int only_val = 1, next_ok = 1;
    for (int64_t k = 0; k < 40 * 5; k++) {
        only_val &= where[ids[k] / 1000] == 2;
        if (k + 1 < 40 * 5) next_ok &= lab[k] == ids[k + 1];
    }
    CHECK(only_val, "validation rows contain training documents");
    CHECK(next_ok, "unmasked labels are the next token");
    /* another seed gives another split; the split does not depend on the split argument */
    ssmlm_batcher *v2;
    CHECK_OK(ssmlm_batcher_create(&v2, d, 5, 10, 0.25, 1));
    int differ = 0;
    for (int64_t i = 0; v2 && i < nv; i++) differ |= ssmlm_batcher_doc_id(v2, i) != ssmlm_batcher_doc_id(va, i);
    CHECK(differ, "seed 10 gives the same validation split as seed 9");
    ssmlm_batcher_free(v2);
    /* a tiny fraction still holds out one document */
    CHECK_OK(ssmlm_batcher_create(&v2, d, 5, 9, 0.001, 1));
    if (v2) CHECK(ssmlm_batcher_docs(v2) == 1, "one validation document");
    ssmlm_batcher_free(v2);
    /* a large fraction still leaves one training document */
    CHECK_OK(ssmlm_batcher_create(&v2, d, 5, 9, 0.99, 0));
    if (v2) CHECK(ssmlm_batcher_docs(v2) == 1, "one training document");
    ssmlm_batcher_free(v2);
    ssmlm_batcher_free(tr);
    ssmlm_batcher_free(va);

    /* argument errors */
    ssmlm_batcher *x;
    CHECK(ssmlm_batcher_create(&x, d, 0, 1, 0.0, 0) == SSMLM_ERR_INVALID && x == NULL, "T = 0");
    CHECK(ssmlm_batcher_create(&x, d, 4, 1, 1.0, 0) == SSMLM_ERR_INVALID && has(ssmlm_last_error(), "val_fraction"), "fraction 1");
    CHECK(ssmlm_batcher_create(&x, d, 4, 1, -0.5, 0) == SSMLM_ERR_INVALID, "negative fraction");
    CHECK(ssmlm_batcher_create(&x, d, 4, 1, NAN, 0) == SSMLM_ERR_INVALID, "NaN fraction");
    CHECK(ssmlm_batcher_create(&x, d, 4, 1, 0.1, 2) == SSMLM_ERR_INVALID, "split 2");
    CHECK(ssmlm_batcher_create(&x, d, 4, 1, 0.0, 1) == SSMLM_ERR_INVALID && has(ssmlm_last_error(), "validation"),
          "empty validation split: %s", ssmlm_last_error());
    ssmlm_docs_free(d);
    /* a corpus of empty documents has no tokens to pack */
    int64_t zeros[3] = {0, 0, 0};
    d = coded_corpus(3, zeros, 0);
    CHECK(ssmlm_batcher_create(&x, d, 4, 1, 0.0, 0) == SSMLM_ERR_INVALID && has(ssmlm_last_error(), "no tokens"),
          "no tokens: %s", ssmlm_last_error());
    ssmlm_docs_free(d);
}

/* Byte text with EOD: seg switches right after each EOD; T = 1 rows; long documents. */
static void test_batcher_eod(void) {
    char path[256];
    tmp_path(path, sizeof path, "eod.txt");
    const char text[] = "hello\n\nw\n\nsome longer document here\n\nab";
    write_file(path, text, sizeof text - 1);
    ssmlm_docs *d;
    CHECK_OK(ssmlm_docs_open_text(&d, path, "\n\n"));
    if (!d) return;
    ssmlm_batcher *b;
    const int64_t T = 6, R = 30;
    CHECK_OK(ssmlm_batcher_create(&b, d, T, 3, 0.0, 0));
    int32_t ids[30 * 6], lab[30 * 6], seg[30 * 6];
    CHECK_OK(ssmlm_batcher_next(b, R, ids, lab, seg));
    int ok = 1, eods = 0;
    for (int64_t r = 0; r < R; r++)
        for (int64_t t = 0; t < T; t++) {
            const int64_t k = r * T + t;
            int after_eod = t > 0 && ids[k - 1] == SSMLM_BYTE_EOD;
            ok &= seg[k] == (t == 0 ? 0 : seg[k - 1] + after_eod);
            if (k + 1 < R * T) ok &= lab[k] == ids[k + 1];
            eods += ids[k] == SSMLM_BYTE_EOD;
        }
    CHECK(ok, "seg must increase right after each EOD");
    CHECK(eods >= 4, "EODs in the stream: %d", eods);
    ssmlm_batcher_free(b);
    /* T = 1: one token per row, its label the next token */
    CHECK_OK(ssmlm_batcher_create(&b, d, 1, 3, 0.0, 0));
    int32_t one[50], onel[50], ones[50];
    CHECK_OK(ssmlm_batcher_next(b, 50, one, onel, ones));
    ok = 1;
    for (int k = 0; k < 50; k++) ok &= ones[k] == 0 && (k + 1 == 50 || onel[k] == one[k + 1]);
    CHECK(ok, "T = 1 rows");
    ssmlm_batcher_free(b);
    ssmlm_docs_free(d);
}

static void cleanup(void) {
    const char *names[] = {"hand.idx", "hand.bin", "written.idx", "written.bin", "bad.idx", "bad.bin", "rt1.idx",
                           "rt1.bin", "rt2.idx", "rt2.bin", "rt4.idx", "rt4.bin", "rt8.idx", "rt8.bin", "f32.idx",
                           "f32.bin", "tokens16.bin", "tokens32.bin", "text.txt", "eod.txt", NULL};
    char path[256];
    for (int i = 0; names[i]; i++) {
        tmp_path(path, sizeof path, names[i]);
        unlink(path);
    }
    CHECK(rmdir(g_tmp) == 0, "temporary folder %s not empty after the test", g_tmp);
}

int main(void) {
    if (!mkdtemp(g_tmp)) {
        fprintf(stderr, "cannot create a temporary folder\n");
        return 1;
    }
    test_megatron_layout();
    test_megatron_corrupt();
    test_megatron_roundtrip();
    test_raw_tokens();
    test_text();
    test_batcher_stream();
    test_batcher_split();
    test_batcher_eod();
    cleanup();
    TEST_END();
}

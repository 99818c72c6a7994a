/* test_safetensors.c — the safetensors reader against hostile and corrupt files (each must be
 * rejected with a message naming the problem), a write/read round trip, the BF16/F16/integer
 * conversions, and every golden file. */
#include "golden.h"
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tmp[64];

static int has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Writes [u64 header length][header][data]; hlen_override (if not ~0) replaces the length. */
static void write_st(const char *path, const char *header, const void *data, size_t ndata, uint64_t hlen_override) {
    size_t hl = strlen(header);
    FILE *f = fopen(path, "wb");
    if (!f) {
        CHECK(0, "cannot create %s", path);
        return;
    }
    unsigned char len[8];
    put_u64(len, hlen_override != ~(uint64_t)0 ? hlen_override : (uint64_t)hl);
    fwrite(len, 1, 8, f);
    fwrite(header, 1, hl, f);
    if (ndata) fwrite(data, 1, ndata, f);
    fclose(f);
}

static void write_raw(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        CHECK(0, "cannot create %s", path);
        return;
    }
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

/* Opens path and expects `want`, a message naming the file and containing `what`. */
static void expect_reject_at(int line, const char *path, ssmlm_status want, const char *what) {
    ssmlm_safetensors st;
    memset(&st, 0x5a, sizeof st);
    ssmlm_status s = ssmlm_st_open(&st, path);
    const char *msg = ssmlm_last_error();
    CHECK(s == want, "line %d: %s -> %s (want %s): %s", line, path, ssmlm_status_name(s), ssmlm_status_name(want), msg);
    CHECK(has(msg, path), "line %d: message does not name the file: %s", line, msg);
    CHECK(has(msg, what), "line %d: message lacks '%s': %s", line, what, msg);
    CHECK(st.n == 0 && st.tensors == NULL && st.map == NULL && st.path == NULL, "line %d: rejected handle not cleared", line);
    ssmlm_st_close(&st); /* closing a rejected (cleared) handle is harmless */
}
#define EXPECT_REJECT(path, want, what) expect_reject_at(__LINE__, path, want, what)

/* One header + data written to a fresh file, then expected to be rejected. */
static void reject_case_at(int line, const char *name, const char *header, size_t ndata, const char *what) {
    char path[256];
    unsigned char data[64] = {0};
    snprintf(path, sizeof path, "%s/%s.safetensors", g_tmp, name);
    write_st(path, header, data, ndata, ~(uint64_t)0);
    expect_reject_at(line, path, SSMLM_ERR_FORMAT, what);
    unlink(path);
}
#define REJECT_CASE(name, header, ndata, what) reject_case_at(__LINE__, name, header, ndata, what)

static void test_hostile(void) {
    char path[256];
    unsigned char bytes[64] = {0};

    /* sizes of the file itself */
    snprintf(path, sizeof path, "%s/empty.safetensors", g_tmp);
    write_raw(path, bytes, 0);
    EXPECT_REJECT(path, SSMLM_ERR_FORMAT, "too short");
    unlink(path);
    snprintf(path, sizeof path, "%s/short.safetensors", g_tmp);
    write_raw(path, bytes, 5);
    EXPECT_REJECT(path, SSMLM_ERR_FORMAT, "too short");
    unlink(path);
    snprintf(path, sizeof path, "%s/past_end.safetensors", g_tmp);
    write_st(path, "{}", NULL, 0, 100);
    EXPECT_REJECT(path, SSMLM_ERR_FORMAT, "past the end");
    unlink(path);
    snprintf(path, sizeof path, "%s/huge_len.safetensors", g_tmp);
    write_st(path, "{}", NULL, 0, (uint64_t)1 << 63);
    EXPECT_REJECT(path, SSMLM_ERR_FORMAT, "exceeds the limit");
    write_st(path, "{}", NULL, 0, ~(uint64_t)0 - 1);
    EXPECT_REJECT(path, SSMLM_ERR_FORMAT, "exceeds the limit");
    unlink(path);
    snprintf(path, sizeof path, "%s/zero_len.safetensors", g_tmp);
    write_st(path, "", NULL, 0, ~(uint64_t)0);
    EXPECT_REJECT(path, SSMLM_ERR_FORMAT, "not a JSON object");
    unlink(path);

    /* the header */
    REJECT_CASE("not_json", "{not json", 0, "not a JSON object");
    REJECT_CASE("trailing_junk", "{} trailing junk", 0, "bytes after the JSON object");
    REJECT_CASE("meta_twice", "{\"__metadata__\":{\"a\":\"1\"},\"__metadata__\":{\"b\":\"2\"}}", 0, "appears twice");
    REJECT_CASE("meta_number", "{\"__metadata__\":{\"a\":1}}", 0, "not a string");
    /* a FIFO is refused without blocking */
    snprintf(path, sizeof path, "%s/fifo.safetensors", g_tmp);
    CHECK(mkfifo(path, 0600) == 0, "mkfifo");
    EXPECT_REJECT(path, SSMLM_ERR_IO, "not a regular file");
    unlink(path);
    REJECT_CASE("json_array", "[1, 2, 3]", 0, "not a JSON object");
    REJECT_CASE("json_string", "\"tensor\"", 0, "not a JSON object");
    REJECT_CASE("entry_number", "{\"a\": 5}", 0, "'a': entry is not an object");
    REJECT_CASE("no_dtype", "{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "'dtype'");
    REJECT_CASE("no_shape", "{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, "'shape'");
    REJECT_CASE("no_offsets", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, "'data_offsets'");
    REJECT_CASE("dtype_number", "{\"a\": {\"dtype\": 7, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "'dtype'");
    REJECT_CASE("shape_object", "{\"a\": {\"dtype\": \"F32\", \"shape\": {}, \"data_offsets\": [0, 4]}}", 4, "'shape'");
    REJECT_CASE("unknown_dtype", "{\"a\": {\"dtype\": \"F8_E4M3\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1,
                "unknown dtype 'F8_E4M3'");
    REJECT_CASE("neg_shape", "{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4,
                "shape entry 0 is not a non-negative integer");
    REJECT_CASE("frac_shape", "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 1.5], \"data_offsets\": [0, 12]}}", 12,
                "shape entry 1 is not a non-negative integer");
    REJECT_CASE("string_shape", "{\"a\": {\"dtype\": \"F32\", \"shape\": [\"2\"], \"data_offsets\": [0, 8]}}", 8,
                "shape entry 0");
    REJECT_CASE("inf_shape", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1e999], \"data_offsets\": [0, 8]}}", 8, "shape entry 0");
    REJECT_CASE("many_dims", "{\"a\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 1]}}", 1,
                "9 dimensions");
    REJECT_CASE("huge_shape", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1099511627776, 1099511627776], \"data_offsets\": [0, 4]}}", 4,
                "absurdly large");
    REJECT_CASE("size_mismatch", "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4,
                "holds 8 bytes but data_offsets span 4");
    REJECT_CASE("dtype_size_mismatch", "{\"a\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                "holds 8 bytes but data_offsets span 4");
    REJECT_CASE("offsets_reversed", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", 4,
                "not ordered");
    REJECT_CASE("offsets_negative", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 4,
                "not ordered");
    REJECT_CASE("offsets_frac", "{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0.5, 1.5]}}", 2, "data_offsets");
    REJECT_CASE("offsets_strings", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [\"0\", \"4\"]}}", 4,
                "data_offsets");
    REJECT_CASE("offsets_three", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 8,
                "must have 2 entries");
    REJECT_CASE("offsets_one", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4]}}", 4, "must have 2 entries");
    REJECT_CASE("offsets_huge", "{\"a\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [1e300, 1e300]}}", 0,
                "data_offsets");
    REJECT_CASE("out_of_file", "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 8,
                "outside the 8-byte data section");
    REJECT_CASE("out_of_file_late", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                                    " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 6,
                "'b': data [4, 8) lies outside");
    REJECT_CASE("overlap", "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                           " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12,
                "'b' overlaps the previous tensor 'a'");
    REJECT_CASE("gap", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                       " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}", 12,
                "gap of 4 bytes before tensor 'b'");
    REJECT_CASE("leading_gap", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8,
                "gap of 4 bytes before tensor 'a'");
    REJECT_CASE("trailing", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 8,
                "4 trailing bytes");
    REJECT_CASE("trailing_no_tensors", "{}", 3, "3 trailing bytes");
    REJECT_CASE("duplicate", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                             " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8,
                "'a' appears twice");
    REJECT_CASE("metadata_array", "{\"__metadata__\": [1]}", 0, "__metadata__ is not an object");

    /* things that are not files */
    snprintf(path, sizeof path, "%s/missing.safetensors", g_tmp);
    EXPECT_REJECT(path, SSMLM_ERR_IO, "cannot open");
    EXPECT_REJECT(g_tmp, SSMLM_ERR_IO, "not a regular file");
}

/* ---- valid files ---------------------------------------------------------------------------- */

static void test_round_trip(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/rt.safetensors", g_tmp);
    float a[6] = {1.5f, -2.25f, 3e-38f, 1e38f, 0.0f, -0.0f};
    double b[4] = {1.0 / 3.0, -1e-300, 1e300, 6.02214076e23};
    int64_t ids[3] = {-1, INT64_MAX, 42};
    float scalar = 7.0f;
    ssmlm_st_out out[] = {
        {"a.weight", SSMLM_ST_F32, 2, {2, 3}, a},
        {"b", SSMLM_ST_F64, 1, {4}, b},
        {"ids", SSMLM_ST_I64, 1, {3}, ids},
        {"scalar", SSMLM_ST_F32, 0, {0}, &scalar},
        {"empty", SSMLM_ST_F32, 2, {0, 5}, a},
    };
    CHECK_OK(ssmlm_st_write(path, out, 5, "{\"format\": \"pt\", \"note\": \"x\"}"));
    ssmlm_safetensors st;
    ssmlm_status s = ssmlm_st_open(&st, path);
    CHECK(s == SSMLM_OK, "open %s: %s", path, ssmlm_last_error());
    if (s != SSMLM_OK) return;
    CHECK(st.n == 5, "n = %d", st.n);
    CHECK(st.metadata_json && has(st.metadata_json, "\"format\":\"pt\"") && has(st.metadata_json, "\"note\":\"x\""), "metadata %s", st.metadata_json);
    for (int i = 1; i < st.n; i++) CHECK(st.tensors[i - 1].data <= st.tensors[i].data, "tensors not sorted by offset");
    const ssmlm_st_tensor *t = ssmlm_st_find(&st, "a.weight");
    CHECK(t && t->dtype == SSMLM_ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6 &&
          t->nbytes == 24 && memcmp(t->data, a, 24) == 0, "a.weight");
    if (t) {
        double d[6];
        CHECK_OK(ssmlm_st_read_f64(t, d));
        int ok = 1;
        for (int i = 0; i < 6; i++) ok &= d[i] == (double)a[i];
        CHECK(ok, "a.weight as f64");
    }
    t = ssmlm_st_find(&st, "b");
    CHECK(t && t->dtype == SSMLM_ST_F64 && t->numel == 4 && memcmp(t->data, b, 32) == 0, "b");
    if (t) {
        float f[4];
        CHECK_OK(ssmlm_st_read_f32(t, f));
        CHECK(f[0] == (float)b[0] && f[1] == (float)b[1] && isinf(f[2]) && f[3] == (float)b[3], "b as f32");
    }
    t = ssmlm_st_find(&st, "ids");
    CHECK(t && t->dtype == SSMLM_ST_I64 && t->numel == 3 && memcmp(t->data, ids, 24) == 0, "ids");
    if (t) {
        double d[3];
        CHECK_OK(ssmlm_st_read_f64(t, d));
        CHECK(d[0] == -1 && d[1] == (double)INT64_MAX && d[2] == 42, "ids as f64");
    }
    t = ssmlm_st_find(&st, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1 && t->nbytes == 4 && memcmp(t->data, &scalar, 4) == 0, "scalar");
    t = ssmlm_st_find(&st, "empty");
    CHECK(t && t->ndim == 2 && t->numel == 0 && t->nbytes == 0, "empty tensor");
    CHECK(ssmlm_st_find(&st, "missing") == NULL, "find missing");
    ssmlm_st_close(&st);
    ssmlm_st_close(&st); /* twice is harmless */

    /* no metadata, no tensors */
    CHECK_OK(ssmlm_st_write(path, NULL, 0, NULL));
    s = ssmlm_st_open(&st, path);
    CHECK(s == SSMLM_OK && st.n == 0 && st.metadata_json == NULL, "empty file: %s", ssmlm_last_error());
    ssmlm_st_close(&st);
    unlink(path);

    /* nothing else was left in the folder (temp files renamed) */
    DIR *d = opendir(g_tmp);
    int others = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) others++;
    if (d) closedir(d);
    CHECK(others == 0, "%d stray files in %s", others, g_tmp);

    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", g_tmp);
    CHECK(ssmlm_st_write(path, out, 1, NULL) == SSMLM_ERR_IO, "write into a missing folder");
}

/* Hand-made half-precision and integer bytes (little endian). */
static void test_conversions(void) {
    static const uint16_t bf16[] = {0x3F80, 0xC000, 0x0001, 0x7F80, 0x3E00, 0x8000};
    static const double bf16_want[] = {1.0, -2.0, 0x1p-133, INFINITY, 0.125, -0.0};
    static const uint16_t f16[] = {0x3C00, 0xC000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0xFC00, 0x7E00, 0x3555, 0x8001};
    static const double f16_want[] = {1.0, -2.0, 0x1p-24, 1023 * 0x1p-24, 0x1p-14, 65504.0, -INFINITY, NAN,
                                      0x1.554p-2, -0x1p-24};
    unsigned char data[128];
    size_t n = 0;
    /* U8 first so that every later tensor is misaligned */
    data[n++] = 255;
    for (size_t i = 0; i < 6; i++, n += 2) {
        data[n] = (unsigned char)(bf16[i] & 0xff);
        data[n + 1] = (unsigned char)(bf16[i] >> 8);
    }
    for (size_t i = 0; i < 10; i++, n += 2) {
        data[n] = (unsigned char)(f16[i] & 0xff);
        data[n + 1] = (unsigned char)(f16[i] >> 8);
    }
    int32_t i32 = -5;
    memcpy(data + n, &i32, 4);
    n += 4;
    data[n++] = 0xff; /* U16 65535 */
    data[n++] = 0xff;
    data[n++] = 0x80; /* I8 -128 */
    float f = -1.75f;
    memcpy(data + n, &f, 4);
    n += 4;
    const char *header =
        "{\"u8\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]},"
        " \"bf16\": {\"dtype\": \"BF16\", \"shape\": [2, 3], \"data_offsets\": [1, 13]},"
        " \"f16\": {\"dtype\": \"F16\", \"shape\": [10], \"data_offsets\": [13, 33]},"
        " \"i32\": {\"dtype\": \"I32\", \"shape\": [1], \"data_offsets\": [33, 37]},"
        " \"u16\": {\"dtype\": \"U16\", \"shape\": [1], \"data_offsets\": [37, 39]},"
        " \"i8\": {\"dtype\": \"I8\", \"shape\": [1], \"data_offsets\": [39, 40]},"
        " \"f32\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [40, 44]}}";
    char path[256];
    snprintf(path, sizeof path, "%s/conv.safetensors", g_tmp);
    write_st(path, header, data, n, ~(uint64_t)0);
    ssmlm_safetensors st;
    ssmlm_status s = ssmlm_st_open(&st, path);
    CHECK(s == SSMLM_OK, "open %s: %s", path, ssmlm_last_error());
    if (s != SSMLM_OK) return;
    double d[16];
    float fl[16];
    const ssmlm_st_tensor *t = ssmlm_st_find(&st, "bf16");
    if (t) {
        ssmlm_st_read_f64(t, d);
        ssmlm_st_read_f32(t, fl);
        for (int i = 0; i < 6; i++) {
            CHECK(d[i] == bf16_want[i] && signbit(d[i]) == signbit(bf16_want[i]), "bf16 0x%04x -> %a, want %a", bf16[i], d[i], bf16_want[i]);
            CHECK(fl[i] == (float)bf16_want[i], "bf16 0x%04x as f32 -> %a", bf16[i], (double)fl[i]);
        }
    } else {
        CHECK(0, "bf16 missing");
    }
    t = ssmlm_st_find(&st, "f16");
    if (t) {
        ssmlm_st_read_f64(t, d);
        ssmlm_st_read_f32(t, fl);
        for (int i = 0; i < 10; i++) {
            int ok = isnan(f16_want[i]) ? isnan(d[i]) && isnan(fl[i])
                                        : d[i] == f16_want[i] && fl[i] == (float)f16_want[i] && signbit(d[i]) == signbit(f16_want[i]);
            CHECK(ok, "f16 0x%04x -> %a / %a, want %a", f16[i], d[i], (double)fl[i], f16_want[i]);
        }
    } else {
        CHECK(0, "f16 missing");
    }
    static const struct { const char *name; double want; } ints[] = {
        {"u8", 255}, {"i32", -5}, {"u16", 65535}, {"i8", -128}, {"f32", -1.75}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        t = ssmlm_st_find(&st, ints[i].name);
        CHECK(t != NULL, "%s missing", ints[i].name);
        if (!t) continue;
        ssmlm_st_read_f64(t, d);
        ssmlm_st_read_f32(t, fl);
        CHECK(d[0] == ints[i].want && fl[0] == (float)ints[i].want, "%s -> %g / %g", ints[i].name, d[0], (double)fl[0]);
    }
    CHECK(ssmlm_st_dtype_size(SSMLM_ST_BF16) == 2 && ssmlm_st_dtype_size(SSMLM_ST_I64) == 8 && ssmlm_st_dtype_size(99) == 0 &&
          ssmlm_st_dtype_size(-1) == 0, "dtype sizes");
    CHECK(strcmp(ssmlm_st_dtype_name(SSMLM_ST_F16), "F16") == 0 && strcmp(ssmlm_st_dtype_name(42), "?") == 0, "dtype names");
    ssmlm_st_close(&st);
    unlink(path);
}

/* ---- the golden files --------------------------------------------------------------------- */

static int open_golden_file(const char *path) {
    ssmlm_safetensors st;
    ssmlm_status s = ssmlm_st_open(&st, path);
    CHECK(s == SSMLM_OK, "%s: %s", path, ssmlm_last_error());
    if (s != SSMLM_OK) return 0;
    CHECK(st.n > 0, "%s has no tensors", path);
    size_t total = 0;
    for (int i = 0; i < st.n; i++) total += st.tensors[i].nbytes;
    CHECK(total > 0 && total < st.size, "%s: tensor bytes %zu vs file %zu", path, total, st.size);
    ssmlm_st_close(&st);
    return 1;
}

static void test_golden_files(void) {
    DIR *d = opendir(golden_dir());
    CHECK(d != NULL, "cannot list %s", golden_dir());
    if (!d) return;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char path[1024];
        size_t len = strlen(e->d_name);
        if (len > 12 && strcmp(e->d_name + len - 12, ".safetensors") == 0) {
            snprintf(path, sizeof path, "%s/%s", golden_dir(), e->d_name);
            n += open_golden_file(path);
            continue;
        }
        /* checkpoint folders hold model.safetensors */
        snprintf(path, sizeof path, "%s/%s/model.safetensors", golden_dir(), e->d_name);
        struct stat sb;
        if (e->d_name[0] != '.' && stat(path, &sb) == 0) n += open_golden_file(path);
    }
    closedir(d);
    CHECK(n >= 25, "only %d golden safetensors files opened", n);

    /* case files carry {"case", "kind"} metadata; a checkpoint's tensors equal the case's params */
    char path[1024];
    snprintf(path, sizeof path, "%s/lm_hybrid.safetensors", golden_dir());
    ssmlm_safetensors cs, ck;
    if (ssmlm_st_open(&cs, path) == SSMLM_OK) {
        CHECK(cs.metadata_json && has(cs.metadata_json, "\"case\":\"lm_hybrid\"") && has(cs.metadata_json, "\"kind\":\"lm\""), "metadata %s", cs.metadata_json);
        snprintf(path, sizeof path, "%s/lm_hybrid_ckpt/model.safetensors", golden_dir());
        if (ssmlm_st_open(&ck, path) == SSMLM_OK) {
            int matched = 0;
            for (int i = 0; i < ck.n; i++) {
                char name[256];
                snprintf(name, sizeof name, "param.%s", ck.tensors[i].name);
                const ssmlm_st_tensor *p = ssmlm_st_find(&cs, name);
                CHECK(p && p->nbytes == ck.tensors[i].nbytes && memcmp(p->data, ck.tensors[i].data, p->nbytes) == 0,
                      "checkpoint tensor %s differs from the case's %s", ck.tensors[i].name, name);
                matched += p != NULL;
            }
            CHECK(matched == ck.n && ck.n > 10, "matched %d of %d checkpoint tensors", matched, ck.n);
            ssmlm_st_close(&ck);
        }
        ssmlm_st_close(&cs);
    } else {
        CHECK(0, "%s: %s", path, ssmlm_last_error());
    }
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/ssmlm_test_st_XXXXXX");
    if (!mkdtemp(g_tmp)) {
        fprintf(stderr, "cannot create a temporary folder\n");
        return 1;
    }
    test_hostile();
    test_round_trip();
    test_conversions();
    test_golden_files();
    rmdir(g_tmp);
    TEST_END();
}

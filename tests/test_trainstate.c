/* test_trainstate.c — the training-state file: a save/load round trip restores moments, step
 * counts, RNG states, data position and metadata bit for bit, and resuming gives the same
 * parameters as not stopping; the fingerprint; a file for another model, another dtype, or a
 * truncated, corrupt or foreign file is refused with a clear error and changes nothing; saves
 * go through temp + rename. */
#include "golden.h"
#include "train/trainstate.h"
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256];

static ssmlm_model *make_model(const char *preset, ssmlm_dtype dt) {
    ssmlm_config c;
    ssmlm_model *m = NULL;
    CHECK_OK(ssmlm_preset(&c, preset));
    CHECK_OK(ssmlm_model_create(&m, &c, dt));
    if (!m) return NULL;
    ssmlm_model_init(m, 3);
    int32_t ids[6] = {1, 2, 3, 4, 5, 6}, labels[6] = {2, 3, 4, 5, 6, 7};
    CHECK_OK(ssmlm_model_forward(m, ids, labels, 1, 6, NULL, NULL));
    CHECK_OK(ssmlm_model_backward(m, 0));
    return m;
}

static size_t arena_bytes(const ssmlm_model *m) {
    const ssmlm_param_info *last = ssmlm_model_param(m, ssmlm_model_n_params(m) - 1);
    return (size_t)(last->offset + last->numel) * (ssmlm_model_dtype(m) == SSMLM_F64 ? 8 : 4);
}

static void fill_grads(ssmlm_model *m, uint64_t seed) {
    ssmlm_rng r;
    ssmlm_rng_seed(&r, seed);
    for (int i = 0; i < ssmlm_model_n_params(m); i++) {
        void *g = ssmlm_model_grad_data(m, i);
        for (int64_t j = 0; j < ssmlm_model_param(m, i)->numel; j++) {
            double v = (ssmlm_rng_uniform(&r) - 0.5) * 0.01;
            if (ssmlm_model_dtype(m) == SSMLM_F64) ((double *)g)[j] = v;
            else ((float *)g)[j] = (float)v;
        }
    }
}

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", g_dir, name); }

/* Number of files in the test folder whose name contains s. */
static int count_files(const char *s) {
    DIR *d = opendir(g_dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, s)) n++;
    if (d) closedir(d);
    return n;
}



static void sample_state(ssmlm_trainstate *ts) {
    memset(ts, 0, sizeof *ts);
    ts->step = 3;
    ts->tokens_seen = 0xfedcba9876543210ull; /* above INT64_MAX: kept bit for bit */
    ts->n_rng = 3;
    for (int k = 0; k < 3; k++) {
        ssmlm_rng_seed(&ts->rng[k], 100 + (uint64_t)k);
        for (int d = 0; d < k + 1; d++) ssmlm_rng_u64(&ts->rng[k]);
    }
    ts->data_pos_len = 40;
    for (int i = 0; i < 40; i++) ts->data_pos[i] = (unsigned char)(255 - 7 * i);
    snprintf(ts->meta_json, sizeof ts->meta_json, "{\"peak_lr\": 0.0003, \"note\": \"tiny \\\"run\\\"\"}");
}

/* Independent implementation of the documented checksum. */
static uint64_t doc_checksum(const ssmlm_safetensors *st) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < st->n; i++) {
        const unsigned char *p = st->tensors[i].data;
        size_t n = st->tensors[i].nbytes, j = 0;
        for (; j + 8 <= n; j += 8) {
            uint64_t w;
            memcpy(&w, p + j, 8); /* little-endian host */
            h = (h ^ w) * 0x100000001b3ull;
        }
        for (; j < n; j++) h = (h ^ p[j]) * 0x100000001b3ull;
    }
    return h;
}

/* Save after three steps, load into a fresh optimizer, continue both: identical bits. */
static void test_round_trip(ssmlm_dtype dt) {
    ssmlm_model *m = make_model("tiny-hybrid", dt);
    if (!m) return;
    ssmlm_adamw_config c;
    ssmlm_adamw_defaults(&c);
    ssmlm_optimizer *o = NULL, *o2 = NULL;
    CHECK_OK(ssmlm_optimizer_create(&o, m, &c));
    CHECK_OK(ssmlm_optimizer_create(&o2, m, &c));
    if (!o || !o2) return;
    for (int s = 0; s < 3; s++) {
        fill_grads(m, 10 + (uint64_t)s);
        CHECK_OK(ssmlm_optimizer_step(o, m, 1e-3, NULL));
    }
    ssmlm_trainstate ts, back;
    sample_state(&ts);
    char path[512];
    path_in(path, sizeof path, "state.safetensors");
    CHECK_OK(ssmlm_trainstate_save(path, &ts, o, m));
    CHECK(count_files(".tmp.") == 0, "temp file left after a save");

    /* self-describing: metadata and the documented checksum */
    ssmlm_safetensors st;
    CHECK_OK(ssmlm_st_open(&st, path));
    if (st.map) {
        char sum[32];
        snprintf(sum, sizeof sum, "\"checksum\":\"%016" PRIx64 "\"", doc_checksum(&st));
        CHECK(st.metadata_json && strstr(st.metadata_json, sum), "checksum is not the documented one: %s", sum);
        CHECK(strstr(st.metadata_json, "\"format\":\"ssmlm-trainstate\"") &&
                  strstr(st.metadata_json, "embedding.weight"),
              "metadata lacks format or layout");
        const ssmlm_st_tensor *t = ssmlm_st_find(&st, "adam.v");
        CHECK(t && t->dtype == (dt == SSMLM_F64 ? SSMLM_ST_F64 : SSMLM_ST_F32) &&
                  t->numel == ssmlm_optimizer_moments_numel(o),
              "adam.v tensor");
        t = ssmlm_st_find(&st, "step");
        int64_t step = -1;
        if (t) memcpy(&step, t->data, 8);
        CHECK(t && t->dtype == SSMLM_ST_I64 && step == 3, "step tensor");
        ssmlm_st_close(&st);
    }

    memset(&back, 0x5a, sizeof back);
    CHECK_OK(ssmlm_trainstate_load(path, &back, o2, m));
    size_t bytes = arena_bytes(m);
    CHECK(memcmp(ssmlm_optimizer_moment(o, 0), ssmlm_optimizer_moment(o2, 0), bytes) == 0, "first moments differ");
    CHECK(memcmp(ssmlm_optimizer_moment(o, 1), ssmlm_optimizer_moment(o2, 1), bytes) == 0, "second moments differ");
    CHECK(ssmlm_optimizer_steps(o2) == 3, "optimizer steps %lld", (long long)ssmlm_optimizer_steps(o2));
    CHECK(back.step == 3 && back.tokens_seen == ts.tokens_seen, "counters");
    CHECK(back.n_rng == 3 && memcmp(back.rng, ts.rng, 3 * sizeof ts.rng[0]) == 0, "rng states");
    CHECK(back.data_pos_len == 40 && memcmp(back.data_pos, ts.data_pos, 40) == 0, "data position");
    CHECK(strcmp(back.meta_json, ts.meta_json) == 0, "metadata '%s'", back.meta_json);
    CHECK(ssmlm_rng_u64(&back.rng[2]) == ssmlm_rng_u64(&ts.rng[2]), "restored rng stream diverges");

    /* resume: two more steps from the saved point equal two more steps without stopping */
    void *saved = malloc(bytes), *cont = malloc(bytes);
    memcpy(saved, ssmlm_model_param_data(m, 0), bytes);
    for (int s = 3; s < 5; s++) {
        fill_grads(m, 10 + (uint64_t)s);
        CHECK_OK(ssmlm_optimizer_step(o, m, 1e-3, NULL));
    }
    memcpy(cont, ssmlm_model_param_data(m, 0), bytes);
    memcpy(ssmlm_model_param_data(m, 0), saved, bytes);
    for (int s = 3; s < 5; s++) {
        fill_grads(m, 10 + (uint64_t)s);
        CHECK_OK(ssmlm_optimizer_step(o2, m, 1e-3, NULL));
    }
    CHECK(memcmp(cont, ssmlm_model_param_data(m, 0), bytes) == 0, "resumed parameters differ");
    CHECK(memcmp(ssmlm_optimizer_moment(o, 1), ssmlm_optimizer_moment(o2, 1), bytes) == 0, "resumed moments differ");

    /* an empty state (no rng, no data position, no metadata) round-trips too */
    ssmlm_trainstate empty, eback;
    memset(&empty, 0, sizeof empty);
    CHECK_OK(ssmlm_trainstate_save(path, &empty, o, m));
    memset(&eback, 0x33, sizeof eback);
    CHECK_OK(ssmlm_trainstate_load(path, &eback, o2, m));
    CHECK(eback.step == 0 && eback.n_rng == 0 && eback.data_pos_len == 0 && eback.meta_json[0] == 0 &&
              eback.tokens_seen == 0,
          "empty state");
    /* only a data position, no rng */
    empty.data_pos_len = 5;
    memcpy(empty.data_pos, "abcde", 5);
    CHECK_OK(ssmlm_trainstate_save(path, &empty, o, m));
    CHECK_OK(ssmlm_trainstate_load(path, &eback, o2, m));
    CHECK(eback.data_pos_len == 5 && memcmp(eback.data_pos, "abcde", 5) == 0 && eback.n_rng == 0, "data position only");
    free(saved);
    free(cont);
    unlink(path);
    ssmlm_optimizer_free(o);
    ssmlm_optimizer_free(o2);
    ssmlm_model_free(m);
}

static void test_fingerprint(void) {
    ssmlm_config c;
    ssmlm_model *a = NULL, *b = NULL, *d = NULL, *e = NULL;
    CHECK_OK(ssmlm_preset(&c, "tiny-mamba2"));
    CHECK_OK(ssmlm_model_create(&a, &c, SSMLM_F32));
    snprintf(c.name, sizeof c.name, "renamed");
    c.seed = 99;
    c.init_std = 0.01;
    CHECK_OK(ssmlm_model_create(&b, &c, SSMLM_F64));
    c.d_model = 32;
    CHECK_OK(ssmlm_model_create(&d, &c, SSMLM_F32));
    CHECK_OK(ssmlm_preset(&c, "tiny-mamba2"));
    c.vocab_size = 200;
    CHECK_OK(ssmlm_model_create(&e, &c, SSMLM_F32));
    if (!a || !b || !d || !e) return;
    uint64_t fa = ssmlm_model_fingerprint(a);
    CHECK(fa != 0 && fa == ssmlm_model_fingerprint(a), "fingerprint not stable");
    CHECK(fa == ssmlm_model_fingerprint(b), "name, seed, init or dtype changed the fingerprint");
    CHECK(fa != ssmlm_model_fingerprint(d), "d_model did not change the fingerprint");
    CHECK(fa != ssmlm_model_fingerprint(e), "vocabulary did not change the fingerprint");
    ssmlm_model_free(a);
    ssmlm_model_free(b);
    ssmlm_model_free(d);
    ssmlm_model_free(e);
}

/* Loads that must fail, each leaving ts and the optimizer as they were. */
static void expect_refused(const char *path, ssmlm_optimizer *o, ssmlm_model *m, ssmlm_status want,
                           const char *word, const char *what) {
    ssmlm_trainstate ts;
    memset(&ts, 0x11, sizeof ts);
    ssmlm_trainstate before = ts;
    size_t bytes = arena_bytes(m);
    void *m0 = malloc(bytes);
    memcpy(m0, ssmlm_optimizer_moment(o, 0), bytes);
    int64_t steps = ssmlm_optimizer_steps(o);
    ssmlm_status s = ssmlm_trainstate_load(path, &ts, o, m);
    CHECK(s == want, "%s: status %s, want %s (%s)", what, ssmlm_status_name(s), ssmlm_status_name(want),
          ssmlm_last_error());
    CHECK(strstr(ssmlm_last_error(), word) != NULL, "%s: error lacks '%s': %s", what, word, ssmlm_last_error());
    CHECK(memcmp(&ts, &before, sizeof ts) == 0, "%s: a refused load changed the training state", what);
    CHECK(memcmp(m0, ssmlm_optimizer_moment(o, 0), bytes) == 0 && ssmlm_optimizer_steps(o) == steps,
          "%s: a refused load changed the optimizer", what);
    free(m0);
}

static void test_refusals(void) {
    ssmlm_model *m = make_model("tiny-hybrid", SSMLM_F32), *other = make_model("tiny-mamba2", SSMLM_F32);
    ssmlm_model *m64 = make_model("tiny-hybrid", SSMLM_F64);
    if (!m || !other || !m64) return;
    ssmlm_adamw_config c;
    ssmlm_adamw_defaults(&c);
    ssmlm_optimizer *o = NULL, *oo = NULL, *o64 = NULL, *probe = NULL;
    CHECK_OK(ssmlm_optimizer_create(&o, m, &c));
    CHECK_OK(ssmlm_optimizer_create(&probe, m, &c));
    CHECK_OK(ssmlm_optimizer_create(&oo, other, &c));
    CHECK_OK(ssmlm_optimizer_create(&o64, m64, &c));
    if (!o || !oo || !o64 || !probe) return;
    fill_grads(m, 1);
    CHECK_OK(ssmlm_optimizer_step(o, m, 1e-3, NULL));
    fill_grads(m, 2);
    CHECK_OK(ssmlm_optimizer_step(probe, m, 1e-3, NULL));
    ssmlm_trainstate ts;
    sample_state(&ts);
    char path[512], bad[512];
    path_in(path, sizeof path, "good.safetensors");
    path_in(bad, sizeof bad, "bad.safetensors");
    CHECK_OK(ssmlm_trainstate_save(path, &ts, o, m));

    expect_refused(path, oo, other, SSMLM_ERR_INVALID, "fingerprint", "another model");
    expect_refused(path, o64, m64, SSMLM_ERR_INVALID, "F32", "another dtype");
    expect_refused(path, probe, other, SSMLM_ERR_INVALID, "does not belong", "optimizer of another model");
    path_in(bad, sizeof bad, "missing.safetensors");
    expect_refused(bad, probe, m, SSMLM_ERR_IO, "missing.safetensors", "missing file");
    path_in(bad, sizeof bad, "bad.safetensors");

    size_t n = 0;
    unsigned char *good = read_all(path, &n);
    CHECK(good && n > 1000, "cannot read back %s", path);
    if (!good) return;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | good[i];

    write_all(bad, good, n - 100);
    expect_refused(bad, probe, m, SSMLM_ERR_FORMAT, "training state", "truncated data");
    write_all(bad, good, (size_t)hlen / 2);
    expect_refused(bad, probe, m, SSMLM_ERR_FORMAT, "truncated", "truncated header");
    write_all(bad, good, 0);
    expect_refused(bad, probe, m, SSMLM_ERR_FORMAT, "too short", "empty file");

    unsigned char *flip = malloc(n);
    memcpy(flip, good, n);
    flip[8 + hlen + 12345 % (n - 8 - hlen)] ^= 0x10; /* a bit inside the moments */
    write_all(bad, flip, n);
    expect_refused(bad, probe, m, SSMLM_ERR_FORMAT, "checksum", "flipped data bit");
    memcpy(flip, good, n);
    char *ver = memmem(flip, 8 + hlen, "\"version\":\"1\"", 13);
    CHECK(ver != NULL, "version not in the header");
    if (ver) {
        ver[11] = '9';
        write_all(bad, flip, n);
        expect_refused(bad, probe, m, SSMLM_ERR_UNSUPPORTED, "version '9'", "future version");
    }
    memcpy(flip, good, n);
    char *fmt = memmem(flip, 8 + hlen, "ssmlm-trainstate", 16);
    if (fmt) {
        fmt[0] = 'x';
        write_all(bad, flip, n);
        expect_refused(bad, probe, m, SSMLM_ERR_FORMAT, "not a training state", "wrong format name");
    }
    for (size_t i = 0; i < n; i++) flip[i] = (unsigned char)(i * 2654435761u >> 13);
    write_all(bad, flip, n);
    expect_refused(bad, probe, m, SSMLM_ERR_FORMAT, "bad.safetensors", "random bytes");
    free(flip);

    /* a model file is not a training state */
    CHECK_OK(ssmlm_model_save(m, g_dir));
    char mpath[512];
    path_in(mpath, sizeof mpath, "model.safetensors");
    expect_refused(mpath, probe, m, SSMLM_ERR_FORMAT, "not a training state", "model file");

    /* a well-formed file (right checksum and fingerprint) with 5 rng states */
    ssmlm_safetensors st;
    CHECK_OK(ssmlm_st_open(&st, path));
    if (st.map) {
        unsigned char rng5[5 * 32] = {0};
        ssmlm_st_out t[7];
        int k = 0;
        for (int i = 0; i < st.n && k < 7; i++) {
            const ssmlm_st_tensor *s = &st.tensors[i];
            t[k] = (ssmlm_st_out){s->name, s->dtype, s->ndim, {0}, s->data};
            memcpy(t[k].shape, s->shape, sizeof t[k].shape);
            if (strcmp(s->name, "rng") == 0) {
                t[k].shape[0] = 5;
                t[k].data = rng5;
            }
            k++;
        }
        /* recompute the checksum over the new data, in the same order */
        uint64_t h = 0xcbf29ce484222325ull;
        for (int i = 0; i < k; i++) {
            size_t nb = ssmlm_st_dtype_size(t[i].dtype);
            for (int d = 0; d < t[i].ndim; d++) nb *= (size_t)t[i].shape[d];
            const unsigned char *p = t[i].data;
            size_t j = 0;
            for (; j + 8 <= nb; j += 8) {
                uint64_t w;
                memcpy(&w, p + j, 8);
                h = (h ^ w) * 0x100000001b3ull;
            }
            for (; j < nb; j++) h = (h ^ p[j]) * 0x100000001b3ull;
        }
        char *meta = strdup(st.metadata_json), *cs = strstr(meta, "\"checksum\":\"");
        if (cs) {
            char hex[17];
            snprintf(hex, sizeof hex, "%016" PRIx64, h);
            memcpy(cs + 12, hex, 16);
        }
        CHECK_OK(ssmlm_st_write(bad, t, k, meta));
        free(meta);
        ssmlm_st_close(&st);
        expect_refused(bad, probe, m, SSMLM_ERR_FORMAT, "'rng'", "five rng states");
    }
    free(good);
    unlink(bad);
    unlink(mpath);
    char cpath[512];
    path_in(cpath, sizeof cpath, "config.json");
    unlink(cpath);
    unlink(path);
    ssmlm_optimizer_free(o);
    ssmlm_optimizer_free(oo);
    ssmlm_optimizer_free(o64);
    ssmlm_optimizer_free(probe);
    ssmlm_model_free(m);
    ssmlm_model_free(other);
    ssmlm_model_free(m64);
}

/* Saves that fail leave no partial file and keep the previous one. */
static void test_atomic(void) {
    ssmlm_model *m = make_model("tiny-mamba", SSMLM_F32);
    if (!m) return;
    ssmlm_adamw_config c;
    ssmlm_adamw_defaults(&c);
    ssmlm_optimizer *o = NULL;
    CHECK_OK(ssmlm_optimizer_create(&o, m, &c));
    if (!o) return;
    ssmlm_trainstate ts;
    sample_state(&ts);
    char path[512], nodir[512], asdir[512];
    path_in(path, sizeof path, "keep.safetensors");
    path_in(nodir, sizeof nodir, "no/such/folder/state.safetensors");
    path_in(asdir, sizeof asdir, "a_folder");
    CHECK_OK(ssmlm_trainstate_save(path, &ts, o, m));
    size_t n0 = 0, n1 = 0;
    void *before = read_all(path, &n0);

    ssmlm_status s = ssmlm_trainstate_save(nodir, &ts, o, m);
    CHECK(s == SSMLM_ERR_IO && strstr(ssmlm_last_error(), "no/such/folder"), "unwritable folder: %s %s",
          ssmlm_status_name(s), ssmlm_last_error());
    struct stat sb;
    CHECK(stat(nodir, &sb) != 0, "a file appeared in a missing folder");

    /* the target is a folder: everything is written, the rename fails, the temp file goes */
    CHECK(mkdir(asdir, 0755) == 0, "mkdir %s", asdir);
    s = ssmlm_trainstate_save(asdir, &ts, o, m);
    CHECK(s == SSMLM_ERR_IO && strstr(ssmlm_last_error(), "rename"), "save over a folder: %s %s",
          ssmlm_status_name(s), ssmlm_last_error());
    CHECK(stat(asdir, &sb) == 0 && S_ISDIR(sb.st_mode), "the folder was replaced");
    CHECK(count_files(".tmp.") == 0, "temp file left after a failed rename");
    rmdir(asdir);

    /* invalid state: refused before anything is written; the old file is intact */
    const char *why[4] = {"RNG", "data position", "JSON", "negative"};
    for (int k = 0; k < 4; k++) {
        ssmlm_trainstate bad = ts;
        if (k == 0) bad.n_rng = 5;
        if (k == 1) bad.data_pos_len = 65;
        if (k == 2) snprintf(bad.meta_json, sizeof bad.meta_json, "{not json");
        if (k == 3) bad.step = -1;
        s = ssmlm_trainstate_save(path, &bad, o, m);
        CHECK(s == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), why[k]), "invalid state %d: %s %s", k,
              ssmlm_status_name(s), ssmlm_last_error());
    }
    void *after = read_all(path, &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0, "a failed save changed the previous file");
    CHECK(count_files(".tmp.") == 0, "temp files left");
    free(before);
    free(after);
    unlink(path);
    ssmlm_optimizer_free(o);
    ssmlm_model_free(m);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/ssmlm_trainstate_XXXXXX");
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "cannot create a temporary folder\n");
        return 1;
    }
    test_round_trip(SSMLM_F32);
    test_round_trip(SSMLM_F64);
    test_fingerprint();
    test_refusals();
    test_atomic();
    CHECK(rmdir(g_dir) == 0, "files left in %s", g_dir);
    TEST_END();
}

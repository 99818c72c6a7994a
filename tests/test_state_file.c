/* test_state_file.c — inference state files and forks: a saved and restored sequence (into a
 * fresh state, into a slot of a batched state) continues bit for bit like the uninterrupted run;
 * a fork continued three ways equals three uninterrupted runs; a file from another
 * architecture, other weights or another dtype, truncated or with flipped bytes, a missing file,
 * a capacity too small and bad indices are refused with a clear error naming the file, leaving
 * the target state unchanged. */
#include "golden.h"
#include "infer/state_file.h"
#include "model/model.h"
#include "train/trainstate.h"
#include <dirent.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[256];

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", g_dir, name); }

static ssmlm_model *make_model(const char *preset, ssmlm_dtype dt, uint64_t seed, int64_t qkv_conv) {
    ssmlm_config c;
    ssmlm_model *m = NULL;
    CHECK_OK(ssmlm_preset(&c, preset));
    c.attn_d_conv = qkv_conv;
    CHECK_OK(ssmlm_model_create(&m, &c, dt));
    if (m) ssmlm_model_init(m, seed);
    return m;
}

static ssmlm_state *make_state(const ssmlm_model *m, int64_t B, int64_t cap) {
    ssmlm_state *s = NULL;
    CHECK_OK(ssmlm_state_create(&s, m, B, cap));
    return s;
}

static int has_attn(const ssmlm_model *m) { return strchr(ssmlm_model_config(m)->pattern, '*') != NULL; }

static size_t logits_bytes(const ssmlm_model *m, int64_t B) {
    return (size_t)(B * ssmlm_config_vocab_padded(ssmlm_model_config(m))) *
           (ssmlm_model_dtype(m) == SSMLM_F64 ? 8 : 4);
}

/* Sequence a of s1 and sequence b of s2 hold the same position and the same bits: every Mamba
 * state, every attention layer's filled KV positions and conv window (layout of
 * src/layers/layers.h: KV [cap, 2, Hk, hd] then the conv window). */
static int same_seq(const ssmlm_state *s1, int64_t a, const ssmlm_state *s2, int64_t b) {
    if (s1->model != s2->model || s1->pos[a] != s2->pos[b]) return 0;
    const ssmlm_config *c = &s1->model->cfg;
    size_t es = s1->model->esize;
    for (int l = 0; l < c->n_layer; l++) {
        int64_t n1 = model_layer_state_size(c, l, s1->cap), n2 = model_layer_state_size(c, l, s2->cap);
        const char *p1 = (const char *)s1->data + (size_t)(s1->layer_off[l] + a * n1) * es;
        const char *p2 = (const char *)s2->data + (size_t)(s2->layer_off[l] + b * n2) * es;
        if (c->pattern[l] == '*') {
            int64_t kv = 2 * c->attn_kv_heads * c->attn_head_dim, tail = n1 - s1->cap * kv;
            if (memcmp(p1, p2, (size_t)(s1->pos[a] * kv) * es) != 0) return 0;
            if (memcmp(p1 + (size_t)(s1->cap * kv) * es, p2 + (size_t)(s2->cap * kv) * es, (size_t)tail * es) != 0)
                return 0;
        } else if (n1 && memcmp(p1, p2, (size_t)n1 * es) != 0) {
            return 0;
        }
    }
    return 1;
}



static int count_temp_files(void) {
    DIR *d = opendir(g_dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

static const int32_t k_prompt[7] = {72, 101, 108, 108, 111, 44, 32};
static const int32_t k_prompt2[5] = {3, 250, 17, 256, 9};
static const int32_t k_prompt3[9] = {119, 111, 114, 108, 100, 33, 10, 0, 200};

/* Steps s n times with ids[k*B .. k*B+B) and writes the logits of every step into out. */
static void run_steps(ssmlm_model *m, ssmlm_state *s, const int32_t *ids, int n, char *out) {
    size_t lb = logits_bytes(m, ssmlm_state_batch(s));
    for (int k = 0; k < n; k++) CHECK_OK(ssmlm_model_step(m, s, ids + (size_t)k * (size_t)ssmlm_state_batch(s), out + k * lb));
}

/* Save after the prompt, restore into a fresh state and into a slot of a batched state, continue:
 * the same logits, bit for bit, as without the interruption. */
static void test_round_trip(const char *preset, ssmlm_dtype dt, int64_t qkv_conv) {
    ssmlm_model *m = make_model(preset, dt, 1, qkv_conv);
    if (!m) return;
    enum { NS = 6 };
    const int32_t cont[NS] = {97, 98, 256, 0, 120, 33};
    char path[512];
    path_in(path, sizeof path, "rt.state");
    size_t lb1 = logits_bytes(m, 1), lb3 = logits_bytes(m, 3);
    char *ref = malloc(NS * lb1), *got = malloc(NS * lb1), *ref3 = malloc(NS * lb3), *got3 = malloc(NS * lb3);

    /* uninterrupted */
    ssmlm_state *r = make_state(m, 1, 32);
    CHECK_OK(ssmlm_model_prefill(m, r, k_prompt, 7, NULL));
    run_steps(m, r, cont, NS, ref);

    /* saved after the prompt, restored into a fresh state of another capacity */
    ssmlm_state *a = make_state(m, 1, 32), *c = make_state(m, 1, 16);
    CHECK_OK(ssmlm_model_prefill(m, a, k_prompt, 7, NULL));
    CHECK_OK(ssmlm_state_save(a, 0, path));
    CHECK(count_temp_files() == 0, "temp file left after a save");
    CHECK_OK(ssmlm_state_load(c, 0, path));
    CHECK(ssmlm_state_pos(c, 0) == 7, "%s: restored position %lld", preset, (long long)ssmlm_state_pos(c, 0));
    CHECK(same_seq(a, 0, c, 0), "%s: restored state differs from the saved one", preset);
    run_steps(m, c, cont, NS, got);
    CHECK(memcmp(ref, got, NS * lb1) == 0, "%s %s: logits after a restore differ from the uninterrupted run",
          preset, dt == SSMLM_F64 ? "f64" : "f32");

    /* self-describing metadata */
    ssmlm_safetensors st;
    CHECK_OK(ssmlm_st_open(&st, path));
    if (st.map) {
        char fp[64];
        snprintf(fp, sizeof fp, "\"fingerprint\":\"%016" PRIx64 "\"", ssmlm_model_fingerprint(m));
        CHECK(st.metadata_json && strstr(st.metadata_json, "\"format\":\"ssmlm-state\"") &&
                  strstr(st.metadata_json, "\"version\":\"1\"") && strstr(st.metadata_json, "\"position\":\"7\"") &&
                  strstr(st.metadata_json, fp) &&
                  strstr(st.metadata_json, dt == SSMLM_F64 ? "\"dtype\":\"F64\"" : "\"dtype\":\"F32\""),
              "%s: metadata %s", preset, st.metadata_json ? st.metadata_json : "(none)");
        const ssmlm_config *cfg = ssmlm_model_config(m);
        for (int l = 0; l < cfg->n_layer; l++) {
            char name[64];
            snprintf(name, sizeof name, "layers.%d.%s", l, cfg->pattern[l] == '*' ? "kv" : "mamba");
            const ssmlm_st_tensor *t = ssmlm_st_find(&st, name);
            CHECK((t != NULL) == (cfg->pattern[l] != '+'), "%s: tensor %s", preset, name);
            if (t && cfg->pattern[l] == '*')
                CHECK(t->ndim == 3 && t->shape[0] == 7 && t->shape[1] == 2 &&
                          t->shape[2] == cfg->attn_kv_heads * cfg->attn_head_dim,
                      "%s: %s is not [7, 2, Hk hd]", preset, name);
            snprintf(name, sizeof name, "layers.%d.qkv_conv", l);
            CHECK((ssmlm_st_find(&st, name) != NULL) == (cfg->pattern[l] == '*' && qkv_conv > 0), "%s: %s", preset,
                  name);
        }
        ssmlm_st_close(&st);
    }

    /* batched: slot 1 restored between two other prompts == slot 1 prefilled directly */
    ssmlm_state *p = make_state(m, 3, 20), *q = make_state(m, 3, 24);
    CHECK_OK(ssmlm_model_prefill_one(m, p, 0, k_prompt2, 5, NULL));
    CHECK_OK(ssmlm_model_prefill_one(m, p, 1, k_prompt, 7, NULL));
    CHECK_OK(ssmlm_model_prefill_one(m, p, 2, k_prompt3, 9, NULL));
    CHECK_OK(ssmlm_model_prefill_one(m, q, 0, k_prompt2, 5, NULL));
    CHECK_OK(ssmlm_model_prefill_one(m, q, 2, k_prompt3, 9, NULL));
    CHECK_OK(ssmlm_state_load(q, 1, path));
    int32_t ids3[NS * 3];
    for (int k = 0; k < NS; k++) {
        ids3[3 * k] = 40 + k;
        ids3[3 * k + 1] = cont[k];
        ids3[3 * k + 2] = 250 - k;
    }
    run_steps(m, p, ids3, NS, ref3);
    run_steps(m, q, ids3, NS, got3);
    CHECK(memcmp(ref3, got3, NS * lb3) == 0, "%s: batched logits after a restore into slot 1 differ", preset);

    /* mid-generation save of slot 2 of a batch, restored into slot 0 of another */
    CHECK_OK(ssmlm_state_save(q, 2, path));
    ssmlm_state *e = make_state(m, 2, 15);
    CHECK_OK(ssmlm_state_load(e, 0, path));
    CHECK(ssmlm_state_pos(e, 0) == 15 && same_seq(q, 2, e, 0), "%s: slot 2 -> slot 0 restore differs", preset);
    CHECK(ssmlm_state_pos(e, 1) == 0, "%s: the other slot changed", preset);

    /* capacity: attention needs the position, Mamba states do not */
    ssmlm_state *small = make_state(m, 1, 14);
    ssmlm_status stt = ssmlm_state_load(small, 0, path);
    if (has_attn(m))
        CHECK(stt == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), path) && strstr(ssmlm_last_error(), "capacity"),
              "%s: capacity 14 < position 15 accepted (%s)", preset, ssmlm_last_error());
    else
        CHECK(stt == SSMLM_OK && same_seq(q, 2, small, 0), "%s: Mamba-only state refused capacity 14: %s", preset,
              ssmlm_last_error());

    ssmlm_state_free(small);
    ssmlm_state_free(e);
    ssmlm_state_free(p);
    ssmlm_state_free(q);
    ssmlm_state_free(a);
    ssmlm_state_free(c);
    ssmlm_state_free(r);
    free(ref);
    free(got);
    free(ref3);
    free(got3);
    ssmlm_model_free(m);
}

/* One prompt forked into three continuations == three prompts prefilled separately. */
static void test_fork(const char *preset) {
    ssmlm_model *m = make_model(preset, SSMLM_F32, 5, 0);
    if (!m) return;
    enum { NS = 8 };
    int32_t ids[NS * 3];
    for (int k = 0; k < NS * 3; k++) ids[k] = (int32_t)((k * 37 + 11) % 257);
    size_t lb = logits_bytes(m, 3);
    char *ref = malloc(NS * lb), *got = malloc(NS * lb);
    ssmlm_state *a = make_state(m, 1, 12), *r = make_state(m, 3, 30), *f = NULL;
    CHECK_OK(ssmlm_model_prefill(m, a, k_prompt, 7, NULL));
    for (int b = 0; b < 3; b++) CHECK_OK(ssmlm_model_prefill_one(m, r, b, k_prompt, 7, NULL));
    CHECK_OK(ssmlm_state_fork(&f, a, 0, 3, 30));
    if (f) {
        CHECK(ssmlm_state_batch(f) == 3 && ssmlm_state_capacity(f) == 30, "%s: fork is %lld x %lld", preset,
              (long long)ssmlm_state_batch(f), (long long)ssmlm_state_capacity(f));
        for (int b = 0; b < 3; b++) CHECK(same_seq(f, b, a, 0), "%s: fork %d differs from its source", preset, b);
        run_steps(m, r, ids, NS, ref);
        run_steps(m, f, ids, NS, got);
        CHECK(memcmp(ref, got, NS * lb) == 0, "%s: forked continuations differ from their own runs", preset);
        CHECK(ssmlm_state_pos(a, 0) == 7, "%s: fork moved its source", preset);
    }
    /* fork of one slot of a batch, capacity 0 = the source's */
    ssmlm_state *g = NULL;
    CHECK_OK(ssmlm_state_fork(&g, r, 1, 2, 0));
    if (g) {
        CHECK(ssmlm_state_capacity(g) == 30 && same_seq(g, 0, r, 1) && same_seq(g, 1, r, 1),
              "%s: fork of slot 1 differs", preset);
        ssmlm_state_free(g);
        g = NULL;
    }
    /* errors */
    CHECK(ssmlm_state_fork(&g, a, 1, 3, 30) == SSMLM_ERR_INVALID && !g && strstr(ssmlm_last_error(), "sequence 1"),
          "%s: fork of a missing sequence: %s", preset, ssmlm_last_error());
    CHECK(ssmlm_state_fork(&g, a, -1, 3, 30) == SSMLM_ERR_INVALID && !g, "%s: fork of sequence -1", preset);
    CHECK(ssmlm_state_fork(&g, a, 0, 0, 30) == SSMLM_ERR_INVALID && !g, "%s: fork into 0 sequences", preset);
    CHECK(ssmlm_state_fork(&g, a, 0, 2, -3) == SSMLM_ERR_INVALID && !g, "%s: negative capacity", preset);
    ssmlm_status st = ssmlm_state_fork(&g, a, 0, 2, 5);
    if (has_attn(m)) {
        CHECK(st == SSMLM_ERR_INVALID && !g && strstr(ssmlm_last_error(), "capacity"),
              "%s: fork into capacity 5 < position 7: %s", preset, ssmlm_last_error());
    } else {
        CHECK(st == SSMLM_OK && g && same_seq(g, 1, a, 0), "%s: Mamba-only fork into capacity 5", preset);
    }
    ssmlm_state_free(g);
    ssmlm_state_free(f);
    ssmlm_state_free(r);
    ssmlm_state_free(a);
    free(ref);
    free(got);
    ssmlm_model_free(m);
}

/* Loads path into slot 1 of target expecting status want and a message naming the file and
 * containing what (may be NULL); the target must be unchanged (compared with its snapshot). */
static int g_rejections;
static void expect_reject(ssmlm_state *target, const ssmlm_state *snap, const char *path, ssmlm_status want,
                          const char *what, const char *label) {
    ssmlm_status st = ssmlm_state_load(target, 1, path);
    const char *msg = ssmlm_last_error();
    int ok = st != SSMLM_OK && (want == SSMLM_OK || st == want) && strstr(msg, path) && (!what || strstr(msg, what));
    CHECK(ok, "%s: got %s \"%s\", expected %s%s%s", label, ssmlm_status_name(st), msg,
          want == SSMLM_OK ? "an error" : ssmlm_status_name(want), what ? " mentioning " : "", what ? what : "");
    CHECK(same_seq(target, 0, snap, 0) && same_seq(target, 1, snap, 1), "%s: target state changed", label);
    g_rejections++;
}

static void test_errors(void) {
    ssmlm_model *mh = make_model("tiny-hybrid", SSMLM_F32, 1, 0), *mh2 = make_model("tiny-hybrid", SSMLM_F32, 2, 0);
    ssmlm_model *mm = make_model("tiny-mamba2", SSMLM_F32, 1, 0), *m64 = make_model("tiny-hybrid", SSMLM_F64, 1, 0);
    ssmlm_model *mt = make_model("tiny-transformer", SSMLM_F32, 1, 0);
    if (!mh || !mh2 || !mm || !m64 || !mt) return;
    char path[512], bad[512], tpath[512];
    path_in(path, sizeof path, "h.state");
    path_in(bad, sizeof bad, "bad.state");
    path_in(tpath, sizeof tpath, "t.state");
    ssmlm_state *src = make_state(mh, 2, 16);
    CHECK_OK(ssmlm_model_prefill_one(mh, src, 1, k_prompt, 7, NULL));
    CHECK_OK(ssmlm_state_save(src, 1, path));

    /* targets with content in both slots, and their snapshots */
    ssmlm_state *th = make_state(mh, 2, 16), *sh = make_state(mh, 2, 16);
    CHECK_OK(ssmlm_model_prefill_one(mh, th, 0, k_prompt3, 9, NULL));
    CHECK_OK(ssmlm_model_prefill_one(mh, th, 1, k_prompt2, 5, NULL));
    for (int b = 0; b < 2; b++) CHECK_OK(ssmlm_state_copy_seq(sh, b, th, b));

    /* good file, wrong target */
    ssmlm_state *tm = make_state(mm, 2, 16), *sm = make_state(mm, 2, 16);
    ssmlm_state *t2 = make_state(mh2, 2, 16), *s2 = make_state(mh2, 2, 16);
    ssmlm_state *t64 = make_state(m64, 2, 16), *s64 = make_state(m64, 2, 16);
    ssmlm_state *tc = make_state(mh, 2, 6), *sc = make_state(mh, 2, 6);
    expect_reject(tm, sm, path, SSMLM_ERR_INVALID, "architecture", "another architecture");
    expect_reject(t2, s2, path, SSMLM_ERR_INVALID, "other weights", "same architecture, other weights");
    expect_reject(t64, s64, path, SSMLM_ERR_INVALID, "F64", "another dtype");
    expect_reject(tc, sc, path, SSMLM_ERR_INVALID, "capacity", "capacity too small");

    /* bad indices */
    CHECK(ssmlm_state_load(th, 2, path) == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), path) &&
              strstr(ssmlm_last_error(), "sequence 2"),
          "load into sequence 2 of 2: %s", ssmlm_last_error());
    CHECK(ssmlm_state_load(th, -1, path) == SSMLM_ERR_INVALID, "load into sequence -1");
    CHECK(ssmlm_state_save(src, 2, bad) == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), bad) &&
              access(bad, F_OK) != 0,
          "save of sequence 2 of 2: %s", ssmlm_last_error());
    CHECK(ssmlm_state_save(src, -1, bad) == SSMLM_ERR_INVALID, "save of sequence -1");
    CHECK(same_seq(th, 0, sh, 0) && same_seq(th, 1, sh, 1), "bad index changed the state");

    /* missing file, unwritable path, a safetensors file that is not a state */
    char missing[512], nodir[512];
    path_in(missing, sizeof missing, "missing.state");
    path_in(nodir, sizeof nodir, "no/such/dir.state");
    expect_reject(th, sh, missing, SSMLM_ERR_IO, "cannot open", "missing file");
    CHECK(ssmlm_state_save(src, 1, nodir) == SSMLM_ERR_IO && strstr(ssmlm_last_error(), nodir),
          "save into a missing folder: %s", ssmlm_last_error());
    float x[4] = {1, 2, 3, 4};
    ssmlm_st_out o = {"x", SSMLM_ST_F32, 1, {4}, x};
    CHECK_OK(ssmlm_st_write(bad, &o, 1, "{\"format\":\"ssmlm-trainstate\"}"));
    expect_reject(th, sh, bad, SSMLM_ERR_FORMAT, "not an inference state", "foreign safetensors file");
    CHECK_OK(ssmlm_st_write(bad, &o, 1, NULL));
    expect_reject(th, sh, bad, SSMLM_ERR_FORMAT, "not an inference state", "safetensors without metadata");
    CHECK_OK(ssmlm_st_write(bad, &o, 1, "{\"format\":\"ssmlm-state\",\"version\":\"2\"}"));
    expect_reject(th, sh, bad, SSMLM_ERR_UNSUPPORTED, "version", "future version");
    CHECK_OK(ssmlm_st_write(bad, &o, 1, "{\"format\":\"ssmlm-state\",\"version\":\"1\"}"));
    expect_reject(th, sh, bad, SSMLM_ERR_FORMAT, "checksum", "no checksum");
    write_all(bad, "not a state", 11);
    expect_reject(th, sh, bad, SSMLM_ERR_FORMAT, NULL, "text file");

    /* every truncation of a small file (tiny-transformer, 3 positions) */
    ssmlm_state *ts = make_state(mt, 1, 8), *tt = make_state(mt, 2, 8), *st2 = make_state(mt, 2, 8);
    CHECK_OK(ssmlm_model_prefill(mt, ts, k_prompt, 3, NULL));
    CHECK_OK(ssmlm_state_save(ts, 0, tpath));
    size_t n = 0;
    unsigned char *full = read_all(tpath, &n);
    CHECK(full && n > 64, "cannot read %s", tpath);
    int before = test_failed;
    for (size_t len = 0; full && len < n && test_failed == before; len++) {
        write_all(bad, full, len);
        expect_reject(tt, st2, bad, SSMLM_OK, NULL, "truncated file");
    }
    CHECK(test_failed == before, "a truncation of %s was accepted or changed the state", tpath);
    write_all(bad, full, n);
    CHECK_OK(ssmlm_state_load(tt, 1, bad));
    CHECK(same_seq(tt, 1, ts, 0), "untruncated copy restores differently");
    CHECK_OK(ssmlm_state_copy_seq(st2, 1, tt, 1));

    /* every header byte flipped three ways, then data bytes */
    uint64_t hlen = 0;
    for (int i = 7; full && n >= 8 && i >= 0; i--) hlen = (hlen << 8) | full[i];
    CHECK(hlen > 0 && hlen + 8 < n, "header length %llu", (unsigned long long)hlen);
    const unsigned char masks[3] = {0x01, 0x20, 0x80};
    before = test_failed;
    for (size_t i = 0; full && hlen + 8 < n && i < 8 + hlen && test_failed == before; i++)
        for (int k = 0; k < 3; k++) {
            full[i] ^= masks[k];
            write_all(bad, full, n);
            full[i] ^= masks[k];
            expect_reject(tt, st2, bad, SSMLM_OK, NULL, "flipped header byte");
            if (test_failed != before) fprintf(stderr, "  header byte %zu ^ 0x%02x accepted\n", i, masks[k]);
        }
    for (size_t i = 8 + (size_t)hlen; full && i < n && test_failed == before; i += 97) {
        full[i] ^= 0x04;
        write_all(bad, full, n);
        full[i] ^= 0x04;
        expect_reject(tt, st2, bad, SSMLM_ERR_FORMAT, "checksum", "flipped data byte");
    }
    free(full);

    ssmlm_state_free(ts);
    ssmlm_state_free(tt);
    ssmlm_state_free(st2);
    ssmlm_state_free(tc);
    ssmlm_state_free(sc);
    ssmlm_state_free(t64);
    ssmlm_state_free(s64);
    ssmlm_state_free(t2);
    ssmlm_state_free(s2);
    ssmlm_state_free(tm);
    ssmlm_state_free(sm);
    ssmlm_state_free(th);
    ssmlm_state_free(sh);
    ssmlm_state_free(src);
    unlink(bad);
    unlink(path);
    unlink(tpath);
    ssmlm_model_free(mh);
    ssmlm_model_free(mh2);
    ssmlm_model_free(mm);
    ssmlm_model_free(m64);
    ssmlm_model_free(mt);
}

/* The hash does not depend on the thread count and sees every byte. */
static void test_hash(void) {
    size_t n = (3u << 20) + 13;
    unsigned char *p = malloc(n);
    if (!p) return;
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 131 + (i >> 9));
    int threads = ssmlm_get_threads();
    uint64_t h = ssmlm_hash_bytes(p, n);
    ssmlm_set_threads(1);
    CHECK(ssmlm_hash_bytes(p, n) == h, "hash depends on the thread count");
    ssmlm_set_threads(threads);
    const size_t at[4] = {0, 1u << 20, n - 13, n - 1};
    for (int k = 0; k < 4; k++) {
        p[at[k]] ^= 1;
        CHECK(ssmlm_hash_bytes(p, n) != h, "flip of byte %zu not seen", at[k]);
        p[at[k]] ^= 1;
    }
    CHECK(ssmlm_hash_bytes(p, n - 1) != h && ssmlm_hash_bytes(p, 0) != ssmlm_hash_bytes(p, 1), "length not hashed");
    free(p);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/ssmlm_state_file_XXXXXX");
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "cannot create a temporary folder\n");
        return 1;
    }
    test_hash();
    test_round_trip("tiny-hybrid", SSMLM_F32, 0);
    test_round_trip("tiny-hybrid", SSMLM_F64, 0);
    test_round_trip("tiny-hybrid", SSMLM_F32, 4);
    test_round_trip("tiny-mamba", SSMLM_F32, 0);
    test_round_trip("tiny-mamba2", SSMLM_F32, 0);
    test_round_trip("tiny-transformer", SSMLM_F32, 0);
    test_fork("tiny-hybrid");
    test_fork("tiny-mamba");
    test_fork("tiny-transformer");
    test_errors();
    CHECK(g_rejections > 1000, "only %d rejections tested", g_rejections);
    CHECK(count_temp_files() == 0, "temp files left in %s", g_dir);
    char rt[512];
    path_in(rt, sizeof rt, "rt.state");
    unlink(rt);
    CHECK(rmdir(g_dir) == 0, "files left in %s", g_dir);
    TEST_END();
}

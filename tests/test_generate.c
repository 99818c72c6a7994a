/* test_generate.c — batched generation and scoring on tiny random models of every family:
 * greedy = argmax of the full forward, seeded sampling reproducible, a batch of prompts of
 * different lengths == each prompt alone, stop strings / end of document / max-new, the order
 * of streamed events, scores == log-softmax of a full forward, input errors naming the prompt,
 * and the `ssmlm generate` / `ssmlm score` commands end to end. */
#include "golden.h"
#include "infer/generate.h"
#include "infer/score.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXN 128
#define MAXSEQ 4

/* What the callback saw. */
typedef struct collect {
    int32_t tok[MAXSEQ][MAXN];
    int64_t n[MAXSEQ];
    char text[MAXSEQ][MAXN + 1];
    size_t len[MAXSEQ];
    int finish[MAXSEQ], events_after_finish, bad_count;
    int order[MAXSEQ * MAXN][2]; /* (seq, n_generated) of each event */
    int n_events;
    int stop_after; /* > 0: return 1 at this n_generated of sequence 0 */
} collect;

static int on_event(void *user, const ssmlm_gen_event *ev) {
    collect *c = user;
    int s = ev->seq;
    if (s < 0 || s >= MAXSEQ || c->n[s] >= MAXN) return 1;
    if (c->finish[s]) c->events_after_finish++;
    if (ev->n_generated != c->n[s] + 1) c->bad_count++;
    c->tok[s][c->n[s]++] = ev->token;
    if (c->len[s] + ev->n_text <= MAXN) {
        memcpy(c->text[s] + c->len[s], ev->text, ev->n_text);
        c->len[s] += ev->n_text;
    }
    c->finish[s] = ev->finish;
    if (c->n_events < MAXSEQ * MAXN) {
        c->order[c->n_events][0] = s;
        c->order[c->n_events++][1] = (int)ev->n_generated;
    }
    return c->stop_after > 0 && s == 0 && ev->n_generated == c->stop_after;
}

static ssmlm_model *tiny(const char *preset, ssmlm_dtype dt) {
    ssmlm_config c;
    ssmlm_model *m = NULL;
    CHECK_OK(ssmlm_preset(&c, preset));
    CHECK_OK(ssmlm_model_create(&m, &c, dt));
    if (m) ssmlm_model_init(m, 11);
    return m;
}

static ssmlm_gen_config gen_cfg(double temperature, int64_t max_new) {
    ssmlm_gen_config g;
    ssmlm_gen_config_defaults(&g);
    g.sampler.temperature = temperature;
    g.sampler.seed = 77;
    g.max_new = max_new;
    g.eod = -1;
    return g;
}

static ssmlm_status run_gen(ssmlm_model *m, const ssmlm_gen_request *r, int n, const ssmlm_gen_config *g, collect *c) {
    memset(c, 0, sizeof *c);
    return ssmlm_generate(m, r, n, g, on_event, c);
}

/* Row t of [T, V] logits as doubles. */
static void row_of(const ssmlm_model *m, const void *logits, int64_t t, int64_t V, double *out) {
    for (int64_t i = 0; i < V; i++)
        out[i] = ssmlm_model_dtype(m) == SSMLM_F64 ? ((const double *)logits)[t * V + i] : ((const float *)logits)[t * V + i];
}

/* Full forward over ids[T]; logits [T, V] malloc'ed (doubles). */
static double *full_logits(ssmlm_model *m, const int32_t *ids, int64_t T) {
    int64_t V = ssmlm_config_vocab_padded(ssmlm_model_config(m));
    size_t es = ssmlm_model_dtype(m) == SSMLM_F64 ? 8 : 4;
    void *raw = malloc((size_t)(T * V) * es);
    double *out = malloc((size_t)(T * V) * sizeof(double));
    CHECK_OK(ssmlm_model_forward(m, ids, NULL, 1, T, raw, NULL));
    for (int64_t t = 0; t < T; t++) row_of(m, raw, t, V, out + t * V);
    free(raw);
    return out;
}

/* Greedy tokens are the argmax of a full forward over prompt + generated tokens. */
static void check_greedy_vs_forward(ssmlm_model *m, const char *name, const char *prompt, const collect *c) {
    const ssmlm_config *cf = ssmlm_model_config(m);
    int64_t V = ssmlm_config_vocab_padded(cf), P = (int64_t)strlen(prompt), T = P + c->n[0];
    int32_t *ids = malloc((size_t)T * sizeof(int32_t));
    for (int64_t t = 0; t < P; t++) ids[t] = (unsigned char)prompt[t];
    for (int64_t t = 0; t < c->n[0]; t++) ids[P + t] = c->tok[0][t];
    double *lg = full_logits(m, ids, T);
    int ok = 1;
    for (int64_t t = 0; t < c->n[0]; t++) {
        const double *r = lg + (P - 1 + t) * V;
        int64_t best = 0;
        for (int64_t i = 1; i < cf->vocab_size; i++)
            if (r[i] > r[best]) best = i;
        if (best != c->tok[0][t]) ok = 0;
    }
    CHECK(ok, "%s: greedy tokens are the argmax of the full forward", name);
    free(lg);
    free(ids);
}

static void test_family(const char *preset, ssmlm_dtype dt) {
    char name[64];
    snprintf(name, sizeof name, "%s/%s", preset, dt == SSMLM_F64 ? "f64" : "f32");
    ssmlm_model *m = tiny(preset, dt);
    if (!m) return;
    static collect a, b, c;

    /* greedy: deterministic, max-new honoured, equals the full forward's argmax */
    ssmlm_gen_request r1 = {.text = "The quick brown fox"};
    ssmlm_gen_config g = gen_cfg(0, 24);
    CHECK_OK(run_gen(m, &r1, 1, &g, &a));
    CHECK_OK(run_gen(m, &r1, 1, &g, &b));
    CHECK(a.n[0] == 24 && a.finish[0] == SSMLM_GEN_MAX_NEW, "%s: max-new 24 gives %lld tokens (finish %d)", name,
          (long long)a.n[0], a.finish[0]);
    CHECK(memcmp(a.tok, b.tok, sizeof a.tok) == 0, "%s: greedy is deterministic", name);
    CHECK(a.bad_count == 0 && a.events_after_finish == 0, "%s: event counts", name);
    if (dt == SSMLM_F64) check_greedy_vs_forward(m, name, r1.text, &a);

    /* seeded sampling reproducible, another seed differs */
    g = gen_cfg(1.0, 32);
    CHECK_OK(run_gen(m, &r1, 1, &g, &a));
    CHECK_OK(run_gen(m, &r1, 1, &g, &b));
    g.sampler.seed = 78;
    CHECK_OK(run_gen(m, &r1, 1, &g, &c));
    CHECK(memcmp(a.tok, b.tok, sizeof a.tok) == 0, "%s: same seed, same tokens", name);
    CHECK(memcmp(a.tok, c.tok, sizeof a.tok) != 0, "%s: another seed, other tokens", name);

    /* batch independence: 3 prompts (1, 7 and 37 tokens, several chunks), own max-new, sampled
     * with top-k/top-p, together == each alone with its stream index */
    int32_t long_ids[37];
    for (int i = 0; i < 37; i++) long_ids[i] = (i * 37 + 5) % 256;
    ssmlm_gen_request r3[3] = {{.text = "A", .max_new = 9}, {.text = "seven!!", .max_new = 20},
                               {.ids = long_ids, .n_ids = 37, .max_new = 14}};
    g = gen_cfg(0.9, 0);
    g.sampler.top_k = 50;
    g.sampler.top_p = 0.95;
    g.first_index = 5;
    CHECK_OK(run_gen(m, r3, 3, &g, &a));
    for (int i = 0; i < 3; i++) {
        ssmlm_gen_config gi = g;
        gi.first_index = ssmlm_gen_stream_index(&g, i);
        CHECK_OK(run_gen(m, &r3[i], 1, &gi, &b));
        CHECK(a.n[i] == r3[i].max_new && b.n[0] == a.n[i] && memcmp(a.tok[i], b.tok[0], sizeof a.tok[i]) == 0,
              "%s: prompt %d in the batch == alone (%lld vs %lld tokens)", name, i, (long long)a.n[i], (long long)b.n[0]);
    }
    /* streaming order: step by step, live sequences in index order */
    int ok = 1, k = 0;
    for (int step = 1; step <= 20; step++)
        for (int i = 0; i < 3; i++)
            if (step <= r3[i].max_new) {
                if (k >= a.n_events || a.order[k][0] != i || a.order[k][1] != step) ok = 0;
                k++;
            }
    CHECK(ok && k == a.n_events, "%s: events come step by step in sequence order", name);
    CHECK(a.events_after_finish == 0 && a.bad_count == 0, "%s: no event after a sequence finished", name);
    if (strcmp(preset, "tiny-hybrid") != 0 || dt != SSMLM_F32) {
        ssmlm_model_free(m);
        return;
    }

    /* stop strings: the text stops before the first match, which is not emitted */
    g = gen_cfg(0, 60);
    ssmlm_gen_request rs = {.text = "Once upon a time"};
    CHECK_OK(run_gen(m, &rs, 1, &g, &a));
    int64_t n_all = a.n[0];
    int32_t all[MAXN];
    memcpy(all, a.tok[0], sizeof all);
    char full[MAXN + 1];
    size_t flen = 0;
    for (int64_t t = 0; t < n_all; t++)
        if (all[t] < 256) full[flen++] = (char)all[t];
    CHECK(flen >= 20, "enough text for the stop tests (%zu bytes)", flen);
    if (flen >= 20) {
        char s1[4] = {full[12], full[13], full[14], 0}, s2[3] = {full[15], full[16], 0};
        const char *stops[3] = {s1, s2, "\xff\xfe\xfd never"};
        for (int variant = 0; variant < 3; variant++) {
            g.stop = variant == 0 ? stops : variant == 1 ? stops + 1 : stops + 2;
            g.n_stop = variant == 2 ? 1 : variant == 0 ? 3 : 2;
            CHECK_OK(run_gen(m, &rs, 1, &g, &b));
            /* reference: feed the tokens one by one, stop at the first token that completes a stop */
            char t[MAXN + 1];
            size_t tl = 0;
            int64_t n_tok = n_all, cut = -1;
            for (int64_t q = 0; q < n_all && cut < 0; q++) {
                if (all[q] < 256) t[tl++] = (char)all[q];
                for (int s = 0; s < g.n_stop; s++) {
                    size_t ls = strlen(g.stop[s]);
                    if (all[q] < 256 && tl >= ls && memcmp(t + tl - ls, g.stop[s], ls) == 0 &&
                        (cut < 0 || (int64_t)(tl - ls) < cut)) {
                        cut = (int64_t)(tl - ls);
                        n_tok = q + 1;
                    }
                }
            }
            size_t want_len = cut >= 0 ? (size_t)cut : tl;
            CHECK(b.n[0] == n_tok && memcmp(b.tok[0], all, (size_t)n_tok * sizeof(int32_t)) == 0,
                  "stop variant %d: %lld tokens, want %lld", variant, (long long)b.n[0], (long long)n_tok);
            CHECK(b.len[0] == want_len && memcmp(b.text[0], t, want_len) == 0, "stop variant %d: streamed text (%zu bytes, want %zu)",
                  variant, b.len[0], want_len);
            CHECK(b.finish[0] == (cut >= 0 ? SSMLM_GEN_STOP_STRING : SSMLM_GEN_MAX_NEW), "stop variant %d: finish %d", variant,
                  b.finish[0]);
        }
        g.stop = NULL;
        g.n_stop = 0;
        /* end of document: make the 5th generated token the EOD id */
        g.eod = all[4];
        int64_t first = 0;
        while (all[first] != all[4]) first++;
        CHECK_OK(run_gen(m, &rs, 1, &g, &b));
        CHECK(b.n[0] == first + 1 && b.finish[0] == SSMLM_GEN_EOD, "EOD stops at token %lld (got %lld)", (long long)first + 1,
              (long long)b.n[0]);
        g.eod = -1;
        /* a callback can end a sequence */
        memset(&b, 0, sizeof b);
        b.stop_after = 3;
        CHECK_OK(ssmlm_generate(m, &rs, 1, &g, on_event, &b));
        CHECK(b.n[0] == 3, "callback stops the sequence after 3 tokens (%lld)", (long long)b.n[0]);
    }

    /* errors name the prompt */
    ssmlm_gen_request bad[3] = {{.text = "ok"}, {.text = ""}, {.text = "fine"}};
    g = gen_cfg(0, 4);
    CHECK(run_gen(m, bad, 3, &g, &a) == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), "prompt 1 is empty"), "empty: %s",
          ssmlm_last_error());
    int32_t big[2] = {5, 257};
    bad[1] = (ssmlm_gen_request){.ids = big, .n_ids = 2};
    CHECK(run_gen(m, bad, 3, &g, &a) == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), "prompt 1: token 1 has id 257"),
          "id beyond vocab: %s", ssmlm_last_error());
    bad[1] = (ssmlm_gen_request){.text = "longer prompt"};
    g.ctx = 16;
    CHECK(run_gen(m, bad, 3, &g, &a) == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), "prompt 1: 13 prompt tokens + 4 new") &&
              strstr(ssmlm_last_error(), "context maximum of 16"),
          "context: %s", ssmlm_last_error());
    g.ctx = 17; /* exactly enough */
    CHECK_OK(run_gen(m, bad, 3, &g, &a));
    CHECK(a.n[1] == 4, "prompt + new tokens == context works");
    g.sampler.top_p = 0;
    CHECK(run_gen(m, bad, 3, &g, &a) == SSMLM_ERR_INVALID, "invalid sampler rejected");
    g = gen_cfg(0, 4);
    const char *empty_stop[1] = {""};
    g.stop = empty_stop;
    g.n_stop = 1;
    CHECK(run_gen(m, bad, 3, &g, &a) == SSMLM_ERR_INVALID, "empty stop string rejected");
    ssmlm_model_free(m);
}

/* Scores == sums of log-softmax of a full forward over context + continuation. */
static void test_score(const char *preset, ssmlm_dtype dt) {
    ssmlm_model *m = tiny(preset, dt);
    if (!m) return;
    const ssmlm_config *cf = ssmlm_model_config(m);
    int64_t V = ssmlm_config_vocab_padded(cf);
    const char *ctx_text = "In the beginning there was a context of a few chunks, long enough.";
    int64_t n_ctx = (int64_t)strlen(ctx_text);
    int32_t ctx[128], c0[8], c1[1], c3[30];
    for (int64_t i = 0; i < n_ctx; i++) ctx[i] = (unsigned char)ctx_text[i];
    for (int i = 0; i < 8; i++) c0[i] = 'a' + i;
    c1[0] = 256;
    for (int i = 0; i < 30; i++) c3[i] = (i * 7) % 257;
    /* continuation 4 = the greedy continuation of the context */
    static collect gc;
    ssmlm_gen_request r = {.ids = ctx, .n_ids = n_ctx};
    ssmlm_gen_config g = gen_cfg(0, 5);
    CHECK_OK(run_gen(m, &r, 1, &g, &gc));
    const int32_t *conts[5] = {c0, c1, NULL, c3, gc.tok[0]};
    int64_t ncont[5] = {8, 1, 0, 30, 5};
    ssmlm_score_result res[5];
    CHECK_OK(ssmlm_score(m, ctx, n_ctx, conts, ncont, 5, res));
    double tol = dt == SSMLM_F64 ? 1e-9 : 2e-3;
    for (int i = 0; i < 5; i++) {
        int64_t T = n_ctx + ncont[i];
        int32_t ids[256];
        memcpy(ids, ctx, (size_t)n_ctx * sizeof(int32_t));
        if (ncont[i]) memcpy(ids + n_ctx, conts[i], (size_t)ncont[i] * sizeof(int32_t));
        double *lg = full_logits(m, ids, T), want = 0;
        int greedy = 1;
        for (int64_t t = n_ctx; t < T; t++) {
            const double *row = lg + (t - 1) * V;
            double mx = row[0], s = 0;
            int64_t best = 0;
            for (int64_t v = 1; v < cf->vocab_size; v++)
                if (row[v] > mx) mx = row[v], best = v;
            for (int64_t v = 0; v < cf->vocab_size; v++) s += exp(row[v] - mx);
            want += row[ids[t]] - mx - log(s);
            greedy &= best == ids[t];
        }
        CHECK(fabs(res[i].logprob - want) <= tol * fmax(1, fabs(want)), "%s %s: continuation %d logprob %.12f, forward %.12f",
              preset, dt == SSMLM_F64 ? "f64" : "f32", i, res[i].logprob, want);
        if (dt == SSMLM_F64) CHECK(res[i].greedy == greedy, "%s: continuation %d greedy flag", preset, i);
        free(lg);
    }
    CHECK(res[2].logprob == 0 && res[2].greedy == 1, "empty continuation scores 0 and is greedy");
    CHECK(res[4].greedy == 1 && res[0].greedy == 0, "%s: greedy continuation flagged", preset);
    int32_t badc[2] = {1, 300};
    const int32_t *bc[1] = {badc};
    int64_t bn[1] = {2};
    CHECK(ssmlm_score(m, ctx, n_ctx, bc, bn, 1, res) == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), "continuation 0"),
          "bad continuation named: %s", ssmlm_last_error());
    CHECK(ssmlm_score(m, ctx, 0, conts, ncont, 1, res) == SSMLM_ERR_INVALID, "empty context rejected");
    ssmlm_model_free(m);
}

static char g_out[1 << 16];
static int run(const char *args) { return run_ssmlm(args, g_out, sizeof g_out); }

static void test_cli(void) {
    char dir[] = "/tmp/ssmlm_gen_XXXXXX", args[2048];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    ssmlm_model *m = tiny("tiny-hybrid", SSMLM_F32);
    if (!m) return;
    CHECK_OK(ssmlm_model_save(m, dir));
    size_t fixed, kv;
    ssmlm_state_plan(ssmlm_model_config(m), &fixed, &kv, SSMLM_F32);
    char want[128];

    snprintf(args, sizeof args, "generate --model %s --ids \"72 105\" --max-new 6 --memory-plan --temperature 0", dir);
    CHECK(run(args) == 0 && strstr(g_out, "memory plan") && strstr(g_out, "6 new tokens, stopped: max-new"), "generate: %s", g_out);
    snprintf(want, sizeof want, "(%zu bytes)", fixed);
    CHECK(strstr(g_out, want) != NULL, "memory plan prints the fixed state bytes %s: %s", want, g_out);
    snprintf(want, sizeof want, "(%zu bytes)  = %zu bytes x 8 positions", kv * 8, kv);
    CHECK(strstr(g_out, want) != NULL, "memory plan prints the KV cache at context 8 %s: %s", want, g_out);
    snprintf(args, sizeof args, "generate --model %s --prompt ab --prompt cde --max-new 3 --ctx 40 --memory-plan --seed 3", dir);
    CHECK(run(args) == 0 && strstr(g_out, "=== sequence 1 of 2") && strstr(g_out, "=== sequence 2 of 2") &&
              strstr(g_out, "context 40 positions, 2 sequences"),
          "two prompts: %s", g_out);
    snprintf(want, sizeof want, "(%zu bytes)", 2 * (fixed + 40 * kv));
    CHECK(strstr(g_out, want) != NULL, "batch total %s: %s", want, g_out);
    snprintf(args, sizeof args, "printf 'first\\n\\nsecond\\nthird\\n' > %s/prompts.txt", dir);
    CHECK(system(args) == 0, "write prompts");
    snprintf(args, sizeof args, "generate --model %s --prompt-file %s/prompts.txt --max-new 2 --no-stream --stop zz", dir, dir);
    CHECK(run(args) == 0 && strstr(g_out, "=== sequence 3 of 3"), "prompt file: %s", g_out);

    /* score prints what ssmlm_score computes */
    snprintf(args, sizeof args, "score --model %s --context \"Hello wor\" --continuation ld --continuation \"k!\"", dir);
    CHECK(run(args) == 0 && strstr(g_out, "\"ld\"") && strstr(g_out, "\"k!\""), "score: %s", g_out);
    int32_t ctx[9], c0[2] = {'l', 'd'}, c1[2] = {'k', '!'};
    for (int i = 0; i < 9; i++) ctx[i] = (unsigned char)"Hello wor"[i];
    const int32_t *conts[2] = {c0, c1};
    int64_t nc[2] = {2, 2};
    ssmlm_score_result res[2];
    CHECK_OK(ssmlm_score(m, ctx, 9, conts, nc, 2, res));
    char *line = strstr(g_out, "\n0 ");
    double lp = NAN;
    CHECK(line && sscanf(line, "%*d %lf", &lp) == 1 && fabs(lp - res[0].logprob) < 1e-5, "score CLI %.6f vs %.6f", lp,
          res[0].logprob);
    snprintf(args, sizeof args, "score --model %s --ids --context \"1 2 3\" --continuation \"4 5\"", dir);
    CHECK(run(args) == 0 && strstr(g_out, "4 5"), "score --ids: %s", g_out);

    /* --help and errors */
    CHECK(run("generate --help") == 0 && strstr(g_out, "usage: ssmlm generate"), "generate --help");
    CHECK(run("score --help") == 0 && strstr(g_out, "usage: ssmlm score"), "score --help");
    snprintf(args, sizeof args, "generate --model %s --prompt \"\"", dir);
    CHECK(run(args) == 1 && strstr(g_out, "error: prompt 0 is empty") && strstr(g_out, "hint:"), "empty prompt: %s", g_out);
    snprintf(args, sizeof args, "generate --model %s --ids \"1 999\"", dir);
    CHECK(run(args) == 1 && strstr(g_out, "id 999, outside") && strstr(g_out, "hint:"), "ids beyond vocab: %s", g_out);
    snprintf(args, sizeof args, "generate --model %s --prompt abc --max-new 5 --ctx 7", dir);
    CHECK(run(args) == 1 && strstr(g_out, "exceed the context maximum of 7") && strstr(g_out, "hint:"), "beyond --ctx: %s", g_out);
    snprintf(args, sizeof args, "generate --model %s/missing --prompt abc", dir);
    CHECK(run(args) == 1 && strstr(g_out, "error:") && strstr(g_out, "hint:"), "missing model: %s", g_out);
    snprintf(args, sizeof args, "generate --model %s --prompt abc --temperature -1", dir);
    CHECK(run(args) == 1 && strstr(g_out, "temperature"), "bad temperature: %s", g_out);
    snprintf(args, sizeof args, "generate --model %s", dir);
    CHECK(run(args) == 2 && strstr(g_out, "error:"), "no prompt: %s", g_out);
    snprintf(args, sizeof args, "score --model %s --context \"\" --continuation a", dir);
    CHECK(run(args) == 1 && strstr(g_out, "context is empty"), "empty score context: %s", g_out);
    snprintf(args, sizeof args, "rm -rf %s", dir);
    CHECK(system(args) == 0, "cleanup");
    ssmlm_model_free(m);
}

/* A processed prompt saved to a file, restored and continued == one uninterrupted prompt; a
 * restored state forked into two prompts == each uninterrupted; a state of another model is
 * refused. */
static void test_saved_state(const char *preset) {
    /* large initial weights: the greedy tokens depend strongly on the input */
    ssmlm_config c;
    ssmlm_model *m = NULL, *other = tiny("tiny-mamba2", SSMLM_F64);
    CHECK_OK(ssmlm_preset(&c, preset));
    c.init_std = 0.5;
    CHECK_OK(ssmlm_model_create(&m, &c, SSMLM_F64));
    if (!m || !other) return;
    ssmlm_model_init(m, 3);
    char path[] = "/tmp/ssmlm_gen_state_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    ssmlm_gen_config g = gen_cfg(0, 10);
    collect c1, c2;
    ssmlm_gen_request save = {.text = "The state of ", .max_new = -1, .state_out = path};
    CHECK_OK(run_gen(m, &save, 1, &g, &c1));
    CHECK(c1.n[0] == 0, "%s: saving only processes the prompt (%lld tokens produced)", preset, (long long)c1.n[0]);
    ssmlm_gen_request cont[2] = {{.text = "the art", .state_in = path}, {.text = "a union", .state_in = path}};
    CHECK_OK(run_gen(m, cont, 2, &g, &c1));
    ssmlm_gen_request whole[2] = {{.text = "The state of the art"}, {.text = "The state of a union"}};
    CHECK_OK(run_gen(m, whole, 2, &g, &c2));
    for (int i = 0; i < 2; i++)
        CHECK(c1.n[i] == 10 && c2.n[i] == 10 && memcmp(c1.tok[i], c2.tok[i], sizeof(int32_t) * 10) == 0,
              "%s: restored continuation %d differs from the uninterrupted one", preset, i);
    /* control: the two continuations differ from each other, so the comparison can fail */
    CHECK(memcmp(c2.tok[0], c2.tok[1], sizeof(int32_t) * 10) != 0, "%s: the two prompts give the same tokens", preset);
    ssmlm_gen_request wrong = {.text = "x", .state_in = path};
    ssmlm_status st = run_gen(other, &wrong, 1, &g, &c1);
    CHECK(st != SSMLM_OK && strstr(ssmlm_last_error(), path), "%s: a state of another model is refused: %s", preset,
          ssmlm_last_error());
    unlink(path);
    ssmlm_model_free(m);
    ssmlm_model_free(other);
}

int main(void) {
    test_saved_state("tiny-hybrid");
    test_saved_state("tiny-transformer");
    /* tiny models: one thread keeps the run short on a loaded machine; the hybrid runs again
     * with two threads (the batched step splits its work across them) */
    int threads = ssmlm_get_threads();
    ssmlm_set_threads(1);
    const char *presets[4] = {"tiny-transformer", "tiny-mamba", "tiny-mamba2", "tiny-hybrid"};
    for (int p = 0; p < 4; p++) {
        test_family(presets[p], SSMLM_F32);
        test_family(presets[p], SSMLM_F64);
        test_score(presets[p], SSMLM_F64);
        test_score(presets[p], SSMLM_F32);
    }
    ssmlm_set_threads(2);
    test_family("tiny-hybrid", SSMLM_F32);
    ssmlm_set_threads(threads);
    setenv("OMP_NUM_THREADS", "1", 1);
    test_cli();
    TEST_END();
}

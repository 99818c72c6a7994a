/* test_phonebook_eval.c — the Phonebook evaluation: post-processing and metrics on hand-made
 * predictions, per-length summaries, seeded books (both layouts ask about the same book), the
 * batched evaluation against one-prompt generation, argument checks, JSON output and the
 * `ssmlm eval phonebook` command. */
#include "eval/phonebook.h"
#include "golden.h"
#include "infer/generate.h"
#include "train/data.h"
#include <math.h>
#include <string.h>
#include <unistd.h>

static char g_tmp[64];

static void test_postprocess(void) {
    char out[64];
    const char *cases[][2] = {
        {"9757431444\n", "9757431444"},
        {" 9757431444\nJohn Doe: 6000000000\n", "9757431444"}, /* text after the newline is ignored */
        {"  \t9757431444 \r\n", "9757431444"},                   /* strip() on both sides */
        {"\n9757431444", ""},                                     /* nothing before the first newline */
        {"97574 31444", "97574 31444"},                           /* inner spaces stay */
        {"", ""},
        {"\x1c" "12\x1f", "12"},                                  /* Python's isspace() includes \x1c-\x1f */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = ssmlm_pb_postprocess(cases[i][0], strlen(cases[i][0]), out, sizeof out);
        CHECK(strcmp(out, cases[i][1]) == 0 && n == strlen(cases[i][1]), "postprocess case %zu: '%s'", i, out);
    }
    /* no terminating newline: everything (up to the cap) */
    size_t n = ssmlm_pb_postprocess("0123456789abcdef", 16, out, 8);
    CHECK(n == 7 && strcmp(out, "0123456") == 0, "postprocess truncates to cap-1: '%s'", out);
    n = ssmlm_pb_postprocess("97\n57", 2, out, sizeof out); /* only n bytes are read */
    CHECK(n == 2 && strcmp(out, "97") == 0, "postprocess reads n bytes: '%s'", out);
}

static void test_metrics(void) {
    const char *g = "9757431444";
    struct {
        const char *pred;
        int exact, digits, prefix;
    } cases[] = {
        {"9757431444", 1, 10, 10},
        {"9757431445", 0, 9, 9},
        {"0757431444", 0, 9, 0},    /* one wrong digit at the start: fuzzy memory but no prefix */
        {"97574", 0, 5, 5},         /* shorter */
        {"975743144499", 0, 10, 10}, /* longer: every digit right, still wrong */
        {"", 0, 0, 0},
        {"2222222222", 0, 0, 0},
        {"1111111111", 0, 1, 0},    /* a 1 at place 7 */
        {"9 57431444", 0, 9, 1},
        {" 9757431444", 0, 2, 0},   /* taken as it is: shifted by one, 2 digits line up by chance */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int e = ssmlm_pb_exact(cases[i].pred, g), d = ssmlm_pb_correct_digits(cases[i].pred, g),
            p = ssmlm_pb_correct_prefix(cases[i].pred, g);
        CHECK(e == cases[i].exact && d == cases[i].digits && p == cases[i].prefix,
              "'%s': exact %d digits %d prefix %d, want %d %d %d", cases[i].pred, e, d, p, cases[i].exact,
              cases[i].digits, cases[i].prefix);
    }
    /* the exact match follows the post-processing: whitespace around the answer is stripped */
    char out[64];
    ssmlm_pb_postprocess(" 9757431444 \n", 13, out, sizeof out);
    CHECK(ssmlm_pb_exact(out, g), "stripped answer matches");
}

static void test_summarize(void) {
    ssmlm_pb_sample s[4];
    memset(s, 0, sizeof s);
    int correct[4] = {1, 0, 1, 0}, digits[4] = {10, 3, 10, 5}, prefix[4] = {10, 1, 10, 0};
    for (int i = 0; i < 4; i++) {
        s[i].n_entries = 7;
        s[i].correct = correct[i];
        s[i].digits = digits[i];
        s[i].prefix = prefix[i];
        s[i].prompt_tokens = 100 + i;
    }
    ssmlm_pb_point p;
    ssmlm_pb_summarize(s, 4, &p);
    /* std of (1, 0, 1, 0) with ddof 1: sqrt(4 x 0.25 / 3) */
    CHECK(p.n_entries == 7 && p.samples == 4 && p.accuracy == 0.5 && fabs(p.accuracy_std - sqrt(1.0 / 3)) < 1e-12 &&
              fabs(p.accuracy_se - sqrt(1.0 / 3) / 2) < 1e-12,
          "accuracy %g std %g se %g", p.accuracy, p.accuracy_std, p.accuracy_se);
    CHECK(p.digits == 7 && p.digits_wrong == 4 && p.prefix == 5.25 && p.prompt_tokens == 101.5,
          "digits %g wrong %g prefix %g tokens %g", p.digits, p.digits_wrong, p.prefix, p.prompt_tokens);
    ssmlm_pb_summarize(s, 1, &p); /* one sample, all correct */
    CHECK(p.accuracy == 1 && p.accuracy_std == 0 && isnan(p.digits_wrong), "one correct sample: std 0, no wrong digits");
}

/* Books are seeded by (seed, N, book): both layouts ask about the same entries and query. */
static void test_books(void) {
    ssmlm_pb_config c;
    ssmlm_pb_config_defaults(&c);
    c.seed = 5;
    char *p1, *l1, *p2, *l2, *p3, *l3, *p4, *l4;
    CHECK_OK(ssmlm_pb_book(&c, 6, 2, &p1, &l1));
    CHECK_OK(ssmlm_pb_book(&c, 6, 2, &p2, &l2));
    CHECK(strcmp(p1, p2) == 0 && strcmp(l1, l2) == 0, "same (seed, N, book): same prompt");
    CHECK_OK(ssmlm_pb_book(&c, 6, 3, &p3, &l3));
    CHECK(strcmp(p1, p3) != 0, "another book: another prompt");
    c.reversed = 1;
    CHECK_OK(ssmlm_pb_book(&c, 6, 2, &p4, &l4));
    CHECK(strcmp(l1, l4) == 0, "reversed: same label %s %s", l1, l4);
    /* standard: book "\n\n" shots "\n\n" query; reversed: shots, question, book, query */
    const char *book_end = strstr(p1, "\n\n");
    size_t book_len = book_end ? (size_t)(book_end - p1) : 0;
    CHECK(book_len > 0 && memmem(p4, strlen(p4), p1, book_len) != NULL, "the reversed prompt holds the same book");
    const char *q1 = strrchr(p1, '\n'), *q4 = strrchr(p4, '\n');
    CHECK(q1 && q4 && strcmp(q1, q4) == 0, "same query line");
    char question[128];
    snprintf(question, sizeof question, "What is the phone number of %.*s?\n\n", (int)strlen(q1 + 1) - 1, q1 + 1);
    CHECK(strstr(p4, question) != NULL, "reversed prompt asks '%s'", question);
    int lines = 0;
    for (const char *x = p1; *x; x++) lines += *x == '\n';
    CHECK(lines == 6 + 4, "standard prompt of 6 entries has 10 newlines (%d)", lines);
    free(p1), free(l1), free(p2), free(l2), free(p3), free(l3), free(p4), free(l4);
}

static int on_token(void *user, const ssmlm_gen_event *ev) {
    char *buf = user;
    size_t n = strlen(buf);
    if (ev->token < 256 && n < 60) buf[n] = (char)ev->token, buf[n + 1] = 0;
    return 0;
}

static void test_evaluate(ssmlm_model *m) {
    int64_t lengths[] = {3, 5};
    ssmlm_pb_config c;
    ssmlm_pb_config_defaults(&c);
    c.lengths = lengths;
    c.n_lengths = 2;
    c.books = 5;
    c.seed = 9;
    c.batch = 3; /* batches of 3 and 2 */
    ssmlm_pb_point pts[2];
    ssmlm_pb_sample smp[10];
    ssmlm_progress prog;
    ssmlm_progress_init(&prog, stderr);
    prog.enabled = 0;
    ssmlm_progress_begin(&prog, 10, "test");
    CHECK_OK(ssmlm_pb_evaluate(m, &c, &prog, pts, smp));
    CHECK(prog.done == 10, "progress advanced by one per book: %lld", (long long)prog.done);
    int ok = 1;
    for (int i = 0; i < 10; i++) {
        ssmlm_pb_sample *s = &smp[i];
        ok &= s->n_entries == lengths[i / 5] && s->book == i % 5 && strlen(s->label) == 10;
        ok &= s->correct == ssmlm_pb_exact(s->pred, s->label) && s->digits == ssmlm_pb_correct_digits(s->pred, s->label) &&
              s->prefix == ssmlm_pb_correct_prefix(s->pred, s->label);
        char *prompt, *label;
        CHECK_OK(ssmlm_pb_book(&c, s->n_entries, s->book, &prompt, &label));
        ok &= strcmp(label, s->label) == 0 && s->prompt_tokens == (int64_t)strlen(prompt);
        /* the same prompt alone, greedy, up to 50 tokens: the same prediction */
        if (i == 4 || i == 7) {
            char buf[64] = "", want[64];
            const char *stop[] = {"\n"};
            ssmlm_gen_config gc;
            ssmlm_gen_config_defaults(&gc);
            gc.sampler.temperature = 0;
            gc.max_new = 50;
            gc.stop = stop;
            gc.n_stop = 1;
            ssmlm_gen_request r = {.text = prompt};
            CHECK_OK(ssmlm_generate(m, &r, 1, &gc, on_token, buf));
            ssmlm_pb_postprocess(buf, strlen(buf), want, sizeof want);
            CHECK(strcmp(want, s->pred) == 0, "book %d: batched '%s', alone '%s'", i, s->pred, want);
        }
        free(prompt);
        free(label);
    }
    CHECK(ok, "samples consistent with their books and metrics");
    for (int l = 0; l < 2; l++) {
        ssmlm_pb_point want;
        ssmlm_pb_summarize(smp + 5 * l, 5, &want);
        CHECK(pts[l].n_entries == lengths[l] && pts[l].samples == 5 && pts[l].accuracy == want.accuracy &&
                  pts[l].digits == want.digits && pts[l].prompt_tokens == want.prompt_tokens,
              "point %d summarizes its samples", l);
        CHECK(pts[l].accuracy >= 0 && pts[l].accuracy <= 1 && pts[l].digits >= 0 && pts[l].digits <= 10 &&
                  pts[l].prefix >= 0 && pts[l].prefix <= pts[l].digits + 1e-12,
              "point %d in range: acc %g digits %g prefix %g", l, pts[l].accuracy, pts[l].digits, pts[l].prefix);
    }
    CHECK(pts[1].prompt_tokens > pts[0].prompt_tokens + 30, "longer books, longer prompts");
    /* deterministic: again with another batch size */
    ssmlm_pb_sample smp2[10];
    c.batch = 16;
    CHECK_OK(ssmlm_pb_evaluate(m, &c, NULL, pts, smp2));
    int same = 1;
    for (int i = 0; i < 10; i++) same &= strcmp(smp[i].pred, smp2[i].pred) == 0;
    CHECK(same, "predictions do not depend on the batch size");

    /* JSON */
    ssmlm_text t = {0};
    ssmlm_pb_json(&t, &c, pts, smp);
    cJSON *j = cJSON_Parse(t.s);
    CHECK(j != NULL, "JSON parses");
    cJSON *jp = cJSON_GetObjectItem(j, "points"), *js = cJSON_GetObjectItem(j, "samples");
    CHECK(cJSON_GetArraySize(jp) == 2 && cJSON_GetArraySize(js) == 10, "2 points, 10 samples");
    cJSON *p0 = cJSON_GetArrayItem(jp, 0);
    CHECK(cJSON_GetObjectItem(p0, "entries")->valuedouble == 3 &&
              fabs(cJSON_GetObjectItem(p0, "accuracy")->valuedouble - pts[0].accuracy) < 1e-15,
          "point 0 in JSON");
    cJSON *s0 = cJSON_GetArrayItem(js, 0);
    CHECK(strcmp(cJSON_GetObjectItem(s0, "prediction")->valuestring, smp[0].pred) == 0 ||
              strpbrk(smp[0].pred, "\"\\") || smp[0].pred[0] < 0x20,
          "sample 0 prediction in JSON");
    cJSON_Delete(j);
    ssmlm_text_free(&t);

    /* argument checks */
    int64_t bad[] = {2};
    c.lengths = bad;
    c.n_lengths = 1;
    CHECK(ssmlm_pb_evaluate(m, &c, NULL, pts, NULL) == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), "below 3"),
          "length 2 rejected: %s", ssmlm_last_error());
    c.lengths = lengths;
    c.books = 0;
    CHECK(ssmlm_pb_evaluate(m, &c, NULL, pts, NULL) == SSMLM_ERR_INVALID, "0 books rejected");
    c.books = 1;
    c.max_new = 5;
    CHECK(ssmlm_pb_evaluate(m, &c, NULL, pts, NULL) == SSMLM_ERR_INVALID, "max_new 5 rejected");
}

/* The JSON writers of src/base: escaping in both byte policies, and numbers that read back
 * exactly (shortest form) or as null. */
static void test_json_string(void) {
    ssmlm_text t = {0};
    ssmlm_json_string(&t, "a\"b\\c\n\t\x01\x7f\xff", 1);
    CHECK(t.s && strcmp(t.s, "\"a\\\"b\\\\c\\n\\t\\u0001\\u007f\\u00ff\"") == 0, "escaped: %s", t.s ? t.s : "(null)");
    cJSON *j = cJSON_Parse(t.s);
    CHECK(cJSON_IsString(j) && strcmp(j->valuestring, "a\"b\\c\n\t\x01\x7f\xc3\xbf") == 0, "escaped string parses back");
    cJSON_Delete(j);
    ssmlm_text_free(&t);
    ssmlm_json_string(&t, "caf\xc3\xa9", 0); /* UTF-8 kept as is */
    CHECK(t.s && strcmp(t.s, "\"caf\xc3\xa9\"") == 0, "utf-8 copied: %s", t.s ? t.s : "(null)");
    ssmlm_text_free(&t);
    const double xs[] = {0.1, 1.0 / 3.0, -2.5e-300, 123456789.0, 0.0};
    for (int i = 0; i < 5; i++) {
        ssmlm_json_number(&t, xs[i]);
        CHECK(t.s && strtod(t.s, NULL) == xs[i], "number %.17g written as %s", xs[i], t.s ? t.s : "(null)");
        ssmlm_text_free(&t);
    }
    ssmlm_json_number(&t, 0.1);
    CHECK(t.s && strcmp(t.s, "0.1") == 0, "shortest form: %s", t.s ? t.s : "(null)");
    ssmlm_text_free(&t);
    ssmlm_json_number(&t, NAN);
    CHECK(t.s && strcmp(t.s, "null") == 0, "NaN written as null: %s", t.s ? t.s : "(null)");
    ssmlm_text_free(&t);
}

static void test_non_byte_model(void) {
    ssmlm_config c;
    CHECK_OK(ssmlm_preset(&c, "tiny-mamba2"));
    c.vocab_size = 100;
    ssmlm_model *m;
    CHECK_OK(ssmlm_model_create(&m, &c, SSMLM_F32));
    int64_t lengths[] = {3};
    ssmlm_pb_config pc;
    ssmlm_pb_config_defaults(&pc);
    pc.lengths = lengths;
    pc.n_lengths = 1;
    ssmlm_pb_point p;
    CHECK(ssmlm_pb_evaluate(m, &pc, NULL, &p, NULL) == SSMLM_ERR_UNSUPPORTED, "a 100-token vocabulary is refused");
    ssmlm_model_free(m);
}

static void test_cli(const char *model_dir) {
    static char out[1 << 16];
    char args[1024], json[128];
    snprintf(json, sizeof json, "%s/pb.json", g_tmp);
    snprintf(args, sizeof args, "eval phonebook --model %s --lengths 3,4 --books 3 --seed 2 --quiet --json %s", model_dir, json);
    int rc = run_ssmlm(args, out, sizeof out);
    CHECK(rc == 0, "eval phonebook exit %d: %s", rc, out);
    CHECK(strstr(out, "entries") && strstr(out, "accuracy") && strstr(out, "standard layout"), "table printed: %s", out);
    size_t n;
    char *text = read_all(json, &n);
    cJSON *j = text ? cJSON_ParseWithLength(text, n) : NULL; /* read_all does not NUL-terminate */
    CHECK(j != NULL, "--json writes JSON");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "points")) == 2 &&
              cJSON_GetArraySize(cJSON_GetObjectItem(j, "samples")) == 6 &&
              strcmp(cJSON_GetObjectItem(j, "layout")->valuestring, "standard") == 0,
          "JSON has 2 points and 6 samples");
    cJSON_Delete(j);
    free(text);
    snprintf(args, sizeof args, "eval phonebook --model %s --lengths 3 --books 2 --reversed --quiet", model_dir);
    rc = run_ssmlm(args, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "reversed layout"), "--reversed: %s", out);
    rc = run_ssmlm("eval phonebook --help", out, sizeof out);
    CHECK(rc == 0 && strstr(out, "usage: ssmlm eval phonebook"), "--help");
    snprintf(args, sizeof args, "eval phonebook --model %s --lengths 2", model_dir);
    rc = run_ssmlm(args, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "--lengths"), "--lengths 2 is a usage error: %s", out);
    rc = run_ssmlm("eval phonebook --lengths 3", out, sizeof out);
    CHECK(rc == 2 && strstr(out, "--model"), "--model is required: %s", out);
    rc = run_ssmlm("eval nope", out, sizeof out);
    CHECK(rc == 2 && strstr(out, "unknown task"), "unknown task: %s", out);
    rc = run_ssmlm("eval phonebook --model /nonexistent/model --quiet", out, sizeof out);
    CHECK(rc == 1 && strstr(out, "error:"), "missing model: %s", out);
}

int main(int argc, char **argv) {
    (void)argc;
    ssmlm_threads_init(argv); /* as the ssmlm program does */
    snprintf(g_tmp, sizeof g_tmp, "/tmp/ssmlm_pbeval_XXXXXX");
    CHECK(mkdtemp(g_tmp) != NULL, "mkdtemp");
    test_postprocess();
    test_metrics();
    test_summarize();
    test_books();
    test_json_string();
    test_non_byte_model();

    /* a small random byte-level hybrid: its answers are noise, the plumbing is what is tested */
    ssmlm_config c;
    CHECK_OK(ssmlm_preset(&c, "tiny-hybrid"));
    ssmlm_model *m;
    CHECK_OK(ssmlm_model_create(&m, &c, SSMLM_F32));
    ssmlm_model_init(m, 3);
    test_evaluate(m);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/model", g_tmp);
    CHECK_OK(ssmlm_model_save(m, dir));
    ssmlm_model_free(m);
    test_cli(dir);

    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}

/* cmd_eval.c — `ssmlm eval <task>`: evaluations of a model folder.  Tasks: phonebook
 * (src/eval/phonebook.h): accuracy and correct digits vs book length, standard or reversed. */
#include "cli.h"
#include "base/base.h"
#include "eval/phonebook.h"
#include <string.h>

#define MAX_LENGTHS 256

static void phonebook_help(FILE *f) {
    fprintf(f,
            "usage: ssmlm eval phonebook --model DIR [options]\n"
            "\n"
            "Phonebook (Jelassi et al. 2024; the paper's Figures 3 and 7): a book of N \"First Last:\n"
            "dddddddddd\" lines, two of them repeated as examples, then a name; the model must copy that\n"
            "name's number.  Greedy decoding, up to 50 new tokens; the text before the first newline,\n"
            "stripped, must equal the number.  Books are seeded by (seed, N, book), so the standard and\n"
            "the reversed layout ask about the same books.  Byte-level models only.\n"
            "\n"
            "  --model DIR       model folder (config.json + model.safetensors) or training run folder\n"
            "  --lengths LIST    book lengths in entries, comma-separated (default 5,10,20,40)\n"
            "  --books R         books per length (default 20)\n"
            "  --reversed        the reversed layout: the question comes before the book\n"
            "  --seed S          seed of the books (default 0)\n"
            "  --batch B         prompts generated together (default 16, at most 64)\n"
            "  --json FILE       write every number and every prediction as JSON\n"
            "  --threads N       threads (default: all cores)\n"
            "  --quiet           no progress display\n"
            "\n"
            "Columns: entries N, mean prompt length in tokens, accuracy (exact match) with its std\n"
            "across books, mean correct digits (digits equal to the number's at the same place, of\n"
            "10), the same over the wrong answers only (\"fuzzy memory\"; chance is about 1), and the\n"
            "mean correct prefix.\n");
}

static int parse_lengths(const char *s, int64_t *out, int *n) {
    *n = 0;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 3 || v > 1000000 || *n == MAX_LENGTHS) return 0;
        out[(*n)++] = v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return 0;
    }
    return *n > 0;
}

static int eval_phonebook(int argc, char **argv) {
    const char *model_dir = NULL, *json = NULL, *v;
    int64_t lengths[MAX_LENGTHS] = {5, 10, 20, 40}, x;
    int n_lengths = 4, quiet = 0;
    ssmlm_pb_config c;
    ssmlm_pb_config_defaults(&c);
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            phonebook_help(stdout);
            return 0;
        } else if (cli_flag(argv, i, "--reversed")) {
            c.reversed = 1;
        } else if (cli_flag(argv, i, "--quiet")) {
            quiet = 1;
        } else if ((v = cli_opt(argc, argv, &i, "--model", &missing))) {
            model_dir = v;
        } else if ((v = cli_opt(argc, argv, &i, "--json", &missing))) {
            json = v;
        } else if ((v = cli_opt(argc, argv, &i, "--lengths", &missing))) {
            if (!parse_lengths(v, lengths, &n_lengths))
                return cli_usage_error("eval phonebook", "--lengths '%s' must be comma-separated integers >= 3 (at most %d)", v,
                                       MAX_LENGTHS);
        } else if ((v = cli_opt(argc, argv, &i, "--books", &missing))) {
            if (!cli_parse_i64(v, &x) || x < 1 || x > 1000000)
                return cli_usage_error("eval phonebook", "--books '%s' must be an integer in [1, 1000000]", v);
            c.books = x;
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &missing))) {
            if (!cli_parse_i64(v, &x) || x < 0) return cli_usage_error("eval phonebook", "--seed '%s' must be an integer >= 0", v);
            c.seed = (uint64_t)x;
        } else if ((v = cli_opt(argc, argv, &i, "--batch", &missing))) {
            if (!cli_parse_i64(v, &x) || x < 1 || x > 64)
                return cli_usage_error("eval phonebook", "--batch '%s' must be an integer in [1, 64]", v);
            c.batch = (int)x;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (!cli_parse_i64(v, &x) || x < 1 || x > 4096)
                return cli_usage_error("eval phonebook", "--threads '%s' must be an integer in [1, 4096]", v);
            ssmlm_set_threads((int)x);
        } else {
            return cli_usage_error("eval phonebook", missing ? "option %s needs a value" : "unknown option '%s'", argv[i]);
        }
        if (missing) return cli_usage_error("eval phonebook", "option %s needs a value", argv[i]);
    }
    if (!model_dir) return cli_usage_error("eval phonebook", "--model DIR is required");
    c.lengths = lengths;
    c.n_lengths = n_lengths;

    int rc = 0;
    ssmlm_model *m = NULL;
    ssmlm_pb_point *pts = calloc((size_t)n_lengths, sizeof *pts);
    ssmlm_pb_sample *smp = json ? calloc((size_t)(n_lengths * c.books), sizeof *smp) : NULL;
    ssmlm_text t = {0};
    if (!pts || (json && !smp)) {
        fprintf(stderr, "error: out of memory for %lld samples\n", (long long)(n_lengths * c.books));
        rc = 1;
        goto done;
    }
    if (ssmlm_model_load(&m, model_dir, SSMLM_F32) != SSMLM_OK) {
        rc = cli_error();
        goto done;
    }
    ssmlm_progress prog;
    ssmlm_progress_init(&prog, stderr);
    prog.enabled = !quiet;
    ssmlm_progress_begin(&prog, n_lengths * c.books, c.reversed ? "phonebook (reversed)" : "phonebook");
    if (ssmlm_pb_evaluate(m, &c, &prog, pts, smp) != SSMLM_OK) {
        rc = cli_error();
        goto done;
    }
    ssmlm_progress_end(&prog);
    printf("phonebook, %s layout, %lld books per length, seed %llu\n", c.reversed ? "reversed" : "standard",
           (long long)c.books, (unsigned long long)c.seed);
    printf("%8s %8s %16s %8s %14s %8s\n", "entries", "tokens", "accuracy", "digits", "digits wrong", "prefix");
    for (int i = 0; i < n_lengths; i++) {
        const ssmlm_pb_point *p = &pts[i];
        char wrong[32];
        if (p->digits_wrong == p->digits_wrong) snprintf(wrong, sizeof wrong, "%.2f", p->digits_wrong);
        else snprintf(wrong, sizeof wrong, "-");
        printf("%8lld %8.0f %9.3f ±%5.3f %8.2f %14s %8.2f\n", (long long)p->n_entries, p->prompt_tokens, p->accuracy,
               p->accuracy_std, p->digits, wrong, p->prefix);
    }
    if (json) {
        ssmlm_pb_json(&t, &c, pts, smp);
        ssmlm_text_printf(&t, "\n");
        ssmlm_atomic_file af;
        if (t.failed) {
            fprintf(stderr, "error: out of memory composing %s\n", json);
            rc = 1;
        } else if (ssmlm_atomic_open(&af, json) != SSMLM_OK) {
            rc = cli_error();
        } else {
            ssmlm_status ws = ssmlm_atomic_write(&af, t.s, t.n);
            if (ssmlm_atomic_close(&af, ws == SSMLM_OK) != SSMLM_OK || ws != SSMLM_OK) rc = cli_error();
        }
    }
done:
    ssmlm_text_free(&t);
    ssmlm_model_free(m);
    free(pts);
    free(smp);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: ssmlm eval <task> --model DIR [options]   (ssmlm eval <task> --help for details)\n"
            "\n"
            "tasks:\n"
            "  phonebook   copy a phone number out of a book in the context: accuracy and correct\n"
            "              digits vs book length, standard or reversed layout\n");
}

int cmd_eval(int argc, char **argv) {
    if (argc < 2 || cli_flag(argv, 1, "--help") || cli_flag(argv, 1, "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "phonebook") == 0) return eval_phonebook(argc - 1, argv + 1);
    return cli_usage_error("eval", "unknown task '%s' (phonebook)", argv[1]);
}

/* cmd_generate.c — `ssmlm generate` (batched sampling with streaming output) and `ssmlm score`
 * (log-probabilities of continuations given a context).  Text is byte-level: bytes are token
 * ids 0..255 and 256 ends a document; models with another vocabulary print token ids. */
#include "cli.h"
#include "infer/generate.h"
#include "infer/score.h"
#include "train/data.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct id_list {
    int32_t *v;
    int64_t n;
} id_list;

/* Whitespace- or comma-separated non-negative integers. */
static int parse_ids(const char *s, id_list *out) {
    out->v = malloc((strlen(s) / 2 + 1) * sizeof(int32_t));
    out->n = 0;
    while (out->v && *s) {
        if (isspace((unsigned char)*s) || *s == ',') {
            s++;
            continue;
        }
        char *end;
        long long x = strtoll(s, &end, 10);
        if (end == s || x < 0 || x > INT32_MAX) return 0;
        out->v[out->n++] = (int32_t)x;
        s = end;
    }
    return out->v != NULL;
}

static void print_bytes(size_t n) {
    if (n >= (size_t)1 << 30) printf("%10.2f GiB", (double)n / (double)(1 << 30));
    else if (n >= (size_t)1 << 20) printf("%10.2f MiB", (double)n / (double)(1 << 20));
    else printf("%10.2f KiB", (double)n / 1024.0);
    printf("  (%zu bytes)", n);
}

static void print_memory_plan(const ssmlm_model *m, ssmlm_dtype dtype, int64_t ctx, int n) {
    const ssmlm_config *c = ssmlm_model_config(m);
    size_t fixed = 0, kv = 0;
    ssmlm_state_plan(c, &fixed, &kv, dtype);
    printf("memory plan (%s%s, context %lld positions, %d sequence%s):\n", dtype == SSMLM_F64 ? "f64" : "f32",
           ssmlm_model_weights_bf16(m) ? ", bf16 weights" : "", (long long)ctx, n, n == 1 ? "" : "s");
    printf("  weights                           ");
    print_bytes(ssmlm_model_weight_bytes(m));
    printf("\n  fixed SSM/conv state per sequence ");
    print_bytes(fixed);
    printf("\n  KV cache per sequence             ");
    print_bytes(kv * (size_t)ctx);
    printf("  = %zu bytes x %lld positions\n", kv, (long long)ctx);
    printf("  total for the batch               ");
    print_bytes((fixed + kv * (size_t)ctx) * (size_t)n);
    printf("\n");
}

static const char *finish_name(int f) {
    switch (f) {
    case SSMLM_GEN_MAX_NEW: return "max-new";
    case SSMLM_GEN_EOD: return "end of document";
    case SSMLM_GEN_STOP_STRING: return "stop string";
    case SSMLM_GEN_CALLBACK: return "callback";
    default: return "running";
    }
}

typedef struct out_state {
    int n, stream, as_ids;
    char **text;        /* per sequence, when not streaming */
    size_t *len, *cap;
    int done;
} out_state;

static void append(out_state *o, int i, const char *s, size_t n) {
    if (o->len[i] + n + 1 > o->cap[i]) {
        size_t cap = 2 * (o->len[i] + n + 1);
        char *t = realloc(o->text[i], cap);
        if (!t) return;
        o->text[i] = t;
        o->cap[i] = cap;
    }
    memcpy(o->text[i] + o->len[i], s, n);
    o->len[i] += n;
    o->text[i][o->len[i]] = 0;
}

static int on_token(void *user, const ssmlm_gen_event *ev) {
    out_state *o = user;
    char idbuf[16];
    const char *s = ev->text;
    size_t n = ev->n_text;
    if (o->as_ids) {
        n = (size_t)snprintf(idbuf, sizeof idbuf, "%s%d", ev->n_generated > 1 ? " " : "", ev->token);
        s = idbuf;
    }
    if (o->stream) {
        fwrite(s, 1, n, stdout);
        fflush(stdout);
        if (ev->finish) {
            printf("\n");
            fprintf(stderr, "[%lld new tokens, stopped: %s]\n", (long long)ev->n_generated, finish_name(ev->finish));
        }
        return 0;
    }
    append(o, ev->seq, s, n);
    if (ev->finish) {
        if (o->n > 1)
            printf("=== sequence %d of %d (%lld new tokens, stopped: %s) ===\n", ev->seq + 1, o->n,
                   (long long)ev->n_generated, finish_name(ev->finish));
        fwrite(o->text[ev->seq] ? o->text[ev->seq] : "", 1, o->len[ev->seq], stdout);
        printf("\n");
        if (o->n == 1)
            fprintf(stderr, "[%lld new tokens, stopped: %s]\n", (long long)ev->n_generated, finish_name(ev->finish));
        fflush(stdout);
    }
    return 0;
}

#define MAX_ITEMS 4096

static void generate_help(void) {
    printf("usage: ssmlm generate --model DIR (--prompt TEXT | --prompt-file F | --ids \"1 2 3\") [options]\n\n"
           "Generates a continuation of each prompt with the model in DIR.  All prompts run together in one\n"
           "batch: each is prefilled through the chunked (parallel) path, then all sequences decode one token\n"
           "at a time through the recurrent step.  Text is byte-level (bytes = token ids 0..255, 256 ends a\n"
           "document); models with another vocabulary print token ids.\n\n"
           "  --model DIR          model folder (config.json + model.safetensors)\n"
           "  --prompt TEXT        a prompt (repeatable)\n"
           "  --prompt-file F      one prompt per line (empty lines skipped)\n"
           "  --ids \"1 2 3\"        a prompt as token ids (repeatable)\n"
           "  --max-new N          new tokens per prompt (default 64)\n"
           "  --temperature T      0 = greedy (argmax); default 1\n"
           "  --top-k K            sample among the K most likely tokens (0 = all, default)\n"
           "  --top-p P            sample among the most likely tokens covering mass P, in (0, 1] (default 1)\n"
           "  --seed S             sampling seed (default 0); prompt i uses stream i of this seed, so its\n"
           "                       tokens do not depend on the other prompts\n"
           "  --stop STR           stop when the generated text contains STR (not printed; repeatable)\n"
           "  --eod ID             token that ends a sequence (default 256 for byte models, else none; -1 none)\n"
           "  --ctx N              context capacity per sequence (default: longest prompt + max-new);\n"
           "                       a prompt that needs more is an error\n"
           "  --memory-plan        print the fixed SSM/conv state and the KV cache bytes first\n"
           "  --dtype f32|f64      compute precision (default f32)\n"
           "  --bf16               keep the weight matrices in bf16 (half the memory, faster decode;\n"
           "                       fp32 math; f32 only).  Logits differ slightly from full fp32 weights,\n"
           "                       and states saved with one setting are refused by the other\n"
           "  --no-stream          print each sequence when it is complete\n"
           "  --save-state FILE    once the prompt is processed, save its state (one prompt only;\n"
           "                       with --max-new 0 nothing is generated)\n"
           "  --load-state FILE    start every prompt from a saved state: the prompt continues it\n"
           "                       (several prompts fork the saved state into several continuations)\n\n"
           "One prompt streams its text as it is produced; several prompts print one block per sequence,\n"
           "in the order they finish, headed by the sequence number and why it stopped.\n");
}

int cmd_generate(int argc, char **argv) {
    const char *model_dir = NULL, *v, *prompt_file = NULL;
    const char *texts[MAX_ITEMS], *id_strs[MAX_ITEMS], *stops[MAX_ITEMS];
    const char *save_state = NULL, *load_state = NULL;
    int n_texts = 0, n_id_strs = 0, n_stops = 0, memory_plan = 0, stream = 1, have_eod = 0, max_new_zero = 0;
    unsigned flags = 0;
    int64_t eod = -1;
    ssmlm_dtype dtype = SSMLM_F32;
    ssmlm_gen_config cfg;
    ssmlm_gen_config_defaults(&cfg);
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        double d;
        int64_t x;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            generate_help();
            return 0;
        } else if (cli_flag(argv, i, "--memory-plan")) {
            memory_plan = 1;
        } else if (cli_flag(argv, i, "--no-stream")) {
            stream = 0;
        } else if (cli_flag(argv, i, "--bf16")) {
            flags |= SSMLM_MODEL_BF16_WEIGHTS;
        } else if ((v = cli_opt(argc, argv, &i, "--model", &missing))) {
            model_dir = v;
        } else if ((v = cli_opt(argc, argv, &i, "--save-state", &missing))) {
            save_state = v;
        } else if ((v = cli_opt(argc, argv, &i, "--load-state", &missing))) {
            load_state = v;
        } else if ((v = cli_opt(argc, argv, &i, "--prompt-file", &missing))) {
            prompt_file = v;
        } else if ((v = cli_opt(argc, argv, &i, "--prompt", &missing))) {
            if (n_texts == MAX_ITEMS) return cli_usage_error("generate", "more than %d --prompt options", MAX_ITEMS);
            texts[n_texts++] = v;
        } else if ((v = cli_opt(argc, argv, &i, "--ids", &missing))) {
            if (n_id_strs == MAX_ITEMS) return cli_usage_error("generate", "more than %d --ids options", MAX_ITEMS);
            id_strs[n_id_strs++] = v;
        } else if ((v = cli_opt(argc, argv, &i, "--stop", &missing))) {
            if (n_stops == MAX_ITEMS) return cli_usage_error("generate", "more than %d --stop options", MAX_ITEMS);
            stops[n_stops++] = v;
        } else if ((v = cli_opt(argc, argv, &i, "--max-new", &missing))) {
            if (!cli_parse_i64(v, &x) || x < 0) return cli_usage_error("generate", "--max-new '%s' must be a non-negative integer", v);
            cfg.max_new = x > 0 ? x : 1;
            max_new_zero = x == 0;
        } else if ((v = cli_opt(argc, argv, &i, "--ctx", &missing))) {
            if (!cli_parse_i64(v, &x) || x < 1) return cli_usage_error("generate", "--ctx '%s' must be a positive integer", v);
            cfg.ctx = x;
        } else if ((v = cli_opt(argc, argv, &i, "--top-k", &missing))) {
            if (!cli_parse_i64(v, &x)) return cli_usage_error("generate", "--top-k '%s' is not an integer", v);
            cfg.sampler.top_k = x;
        } else if ((v = cli_opt(argc, argv, &i, "--eod", &missing))) {
            if (!cli_parse_i64(v, &x) || x < -1) return cli_usage_error("generate", "--eod '%s' must be a token id or -1", v);
            eod = x;
            have_eod = 1;
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &missing))) {
            if (!cli_parse_i64(v, &x)) return cli_usage_error("generate", "--seed '%s' is not an integer", v);
            cfg.sampler.seed = (uint64_t)x;
        } else if ((v = cli_opt(argc, argv, &i, "--temperature", &missing))) {
            if (!cli_parse_f64(v, &d)) return cli_usage_error("generate", "--temperature '%s' is not a number", v);
            cfg.sampler.temperature = d;
        } else if ((v = cli_opt(argc, argv, &i, "--top-p", &missing))) {
            if (!cli_parse_f64(v, &d)) return cli_usage_error("generate", "--top-p '%s' is not a number", v);
            cfg.sampler.top_p = d;
        } else if ((v = cli_opt(argc, argv, &i, "--dtype", &missing))) {
            if (strcmp(v, "f32") == 0) dtype = SSMLM_F32;
            else if (strcmp(v, "f64") == 0) dtype = SSMLM_F64;
            else return cli_usage_error("generate", "--dtype '%s' must be f32 or f64", v);
        } else {
            return cli_usage_error("generate", missing ? "option %s needs a value" : "unknown option '%s'", argv[i]);
        }
        if (missing) return cli_usage_error("generate", "option %s needs a value", argv[i]);
    }
    if (!model_dir) return cli_usage_error("generate", "--model DIR is required");
    if (!n_texts && !n_id_strs && !prompt_file)
        return cli_usage_error("generate", "give a prompt with --prompt TEXT, --prompt-file F or --ids \"1 2 3\"");
    if (ssmlm_sampler_config_check(&cfg.sampler) != SSMLM_OK) return cli_error();
    cfg.stop = stops;
    cfg.n_stop = n_stops;

    int rc = 0, n = 0;
    char *file_text = NULL;
    ssmlm_model *m = NULL;
    ssmlm_gen_request *req = calloc(MAX_ITEMS * 3, sizeof *req);
    id_list *lists = calloc(MAX_ITEMS, sizeof *lists);
    out_state o = {0};
    if (!req || !lists) {
        fprintf(stderr, "error: out of memory\n");
        rc = 1;
        goto done;
    }
    for (int i = 0; i < n_texts; i++) req[n++].text = texts[i];
    for (int i = 0; i < n_id_strs; i++) {
        if (!parse_ids(id_strs[i], &lists[i])) {
            rc = cli_usage_error("generate", "--ids '%s' must hold non-negative integers", id_strs[i]);
            goto done;
        }
        req[n].ids = lists[i].v;
        req[n++].n_ids = lists[i].n;
    }
    if (prompt_file) {
        if (ssmlm_file_read_text(prompt_file, &file_text) != SSMLM_OK) {
            rc = cli_error();
            goto done;
        }
        for (char *line = strtok(file_text, "\n"); line; line = strtok(NULL, "\n")) {
            size_t len = strlen(line);
            if (len && line[len - 1] == '\r') line[--len] = 0;
            if (!len) continue;
            if (n == MAX_ITEMS * 3) {
                fprintf(stderr, "error: %s holds more than %d prompts\nhint: split it into several runs\n", prompt_file, n);
                rc = 1;
                goto done;
            }
            req[n++].text = line;
        }
        if (n == 0) {
            fprintf(stderr, "error: %s holds no prompt\nhint: write one prompt per line\n", prompt_file);
            rc = 1;
            goto done;
        }
    }
    if (save_state && n != 1) {
        rc = cli_usage_error("generate", "--save-state takes exactly one prompt (got %d)", n);
        goto done;
    }
    if (max_new_zero && !save_state) {
        rc = cli_usage_error("generate", "--max-new 0 generates nothing; it is meant for --save-state");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        req[i].state_in = load_state;
        req[i].state_out = save_state;
        if (max_new_zero) req[i].max_new = -1;
    }
    if (ssmlm_model_load_ex(&m, model_dir, dtype, flags) != SSMLM_OK) {
        rc = cli_error();
        goto done;
    }
    const ssmlm_config *c = ssmlm_model_config(m);
    o.as_ids = c->vocab_size > SSMLM_BYTE_VOCAB;
    cfg.eod = have_eod ? eod : (c->vocab_size == SSMLM_BYTE_VOCAB ? SSMLM_BYTE_EOD : -1);
    /* validate every prompt and find the context the batch needs (for the memory plan) */
    int64_t ctx = cfg.ctx;
    for (int i = 0; i < n; i++) {
        const int32_t *ids;
        int32_t *owned;
        int64_t len, need;
        ssmlm_status st = ssmlm_gen_prompt_tokens(m, &req[i], i, &cfg, &ids, &len, &owned, &need);
        free(owned);
        if (st != SSMLM_OK) {
            rc = cli_error();
            goto done;
        }
        if (!cfg.ctx && need > ctx) ctx = need;
    }
    if (memory_plan) print_memory_plan(m, dtype, ctx, n);
    o.n = n;
    o.stream = stream && n == 1;
    o.text = calloc((size_t)n, sizeof(char *));
    o.len = calloc((size_t)n, sizeof(size_t));
    o.cap = calloc((size_t)n, sizeof(size_t));
    if (!o.text || !o.len || !o.cap) {
        fprintf(stderr, "error: out of memory\n");
        rc = 1;
        goto done;
    }
    fflush(stdout);
    if (ssmlm_generate(m, req, n, &cfg, on_token, &o) != SSMLM_OK) rc = cli_error();
done:
    for (int i = 0; o.text && i < n; i++) free(o.text[i]);
    free(o.text);
    free(o.len);
    free(o.cap);
    for (int i = 0; lists && i < n_id_strs; i++) free(lists[i].v);
    free(lists);
    free(req);
    free(file_text);
    ssmlm_model_free(m);
    return rc;
}

/* Text with non-printable bytes as \xNN, quoted. */
static void print_quoted(const int32_t *ids, int64_t n, int as_ids) {
    if (as_ids) {
        for (int64_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
        return;
    }
    putchar('"');
    for (int64_t i = 0; i < n; i++) {
        int b = ids[i];
        if (b == '"' || b == '\\') printf("\\%c", b);
        else if (b >= 32 && b < 127) putchar(b);
        else if (b == '\n') printf("\\n");
        else if (b < 256) printf("\\x%02x", b);
        else printf("<%d>", b);
    }
    putchar('"');
}

static int text_ids(const char *s, int as_ids, id_list *out, const char *what) {
    if (as_ids) {
        if (!parse_ids(s, out)) return cli_usage_error("score", "%s '%s' must hold non-negative integers (--ids)", what, s);
        return 0;
    }
    out->n = (int64_t)strlen(s);
    out->v = malloc((size_t)(out->n + 1) * sizeof(int32_t));
    if (!out->v) return 1;
    for (int64_t i = 0; i < out->n; i++) out->v[i] = (unsigned char)s[i];
    return 0;
}

int cmd_score(int argc, char **argv) {
    const char *model_dir = NULL, *context = NULL, *v, *conts[MAX_ITEMS];
    int n = 0, as_ids = 0;
    unsigned flags = 0;
    ssmlm_dtype dtype = SSMLM_F32;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            printf("usage: ssmlm score --model DIR --context TEXT --continuation TEXT [--continuation TEXT ...]\n"
                   "                   [--ids] [--dtype f32|f64] [--bf16]\n\n"
                   "Prints, for each continuation, the sum of the log-probabilities of its tokens given the\n"
                   "context and everything before them, and whether it is the greedy continuation (every token\n"
                   "the most likely one).  The context is processed once and shared by all continuations.\n\n"
                   "  --model DIR            model folder (config.json + model.safetensors)\n"
                   "  --context TEXT         the shared context (byte-level text)\n"
                   "  --continuation TEXT    a continuation to score (repeatable)\n"
                   "  --ids                  context and continuations are token ids (\"1 2 3\") instead of text\n"
                   "  --dtype f32|f64        compute precision (default f32)\n"
                   "  --bf16                 keep the weight matrices in bf16 (half the memory; fp32 math;\n"
                   "                         f32 only); scores differ slightly from full fp32 weights\n");
            return 0;
        } else if (cli_flag(argv, i, "--ids")) {
            as_ids = 1;
        } else if (cli_flag(argv, i, "--bf16")) {
            flags |= SSMLM_MODEL_BF16_WEIGHTS;
        } else if ((v = cli_opt(argc, argv, &i, "--model", &missing))) {
            model_dir = v;
        } else if ((v = cli_opt(argc, argv, &i, "--context", &missing))) {
            context = v;
        } else if ((v = cli_opt(argc, argv, &i, "--continuation", &missing))) {
            if (n == MAX_ITEMS) return cli_usage_error("score", "more than %d continuations", MAX_ITEMS);
            conts[n++] = v;
        } else if ((v = cli_opt(argc, argv, &i, "--dtype", &missing))) {
            if (strcmp(v, "f32") == 0) dtype = SSMLM_F32;
            else if (strcmp(v, "f64") == 0) dtype = SSMLM_F64;
            else return cli_usage_error("score", "--dtype '%s' must be f32 or f64", v);
        } else {
            return cli_usage_error("score", missing ? "option %s needs a value" : "unknown option '%s'", argv[i]);
        }
        if (missing) return cli_usage_error("score", "option %s needs a value", argv[i]);
    }
    if (!model_dir) return cli_usage_error("score", "--model DIR is required");
    if (!context) return cli_usage_error("score", "--context TEXT is required");
    if (!n) return cli_usage_error("score", "give at least one --continuation TEXT");
    int rc = 0;
    id_list ctx = {0};
    id_list *ls = calloc((size_t)n, sizeof *ls);
    const int32_t **cp = calloc((size_t)n, sizeof *cp);
    int64_t *cn = calloc((size_t)n, sizeof *cn);
    ssmlm_score_result *res = calloc((size_t)n, sizeof *res);
    ssmlm_model *m = NULL;
    if (!ls || !cp || !cn || !res) {
        fprintf(stderr, "error: out of memory\n");
        rc = 1;
        goto done;
    }
    if ((rc = text_ids(context, as_ids, &ctx, "--context"))) goto done;
    for (int i = 0; i < n; i++) {
        if ((rc = text_ids(conts[i], as_ids, &ls[i], "--continuation"))) goto done;
        cp[i] = ls[i].v;
        cn[i] = ls[i].n;
    }
    if (ssmlm_model_load_ex(&m, model_dir, dtype, flags) != SSMLM_OK || ssmlm_score(m, ctx.v, ctx.n, cp, cn, n, res) != SSMLM_OK) {
        rc = cli_error();
        goto done;
    }
    printf("context: %lld tokens\n%-4s %14s %7s %7s  %s\n", (long long)ctx.n, "#", "logprob", "tokens", "greedy",
           "continuation");
    for (int i = 0; i < n; i++) {
        printf("%-4d %14.6f %7lld %7s  ", i, res[i].logprob, (long long)cn[i], res[i].greedy ? "yes" : "no");
        print_quoted(cp[i], cn[i], as_ids);
        printf("\n");
    }
done:
    free(ctx.v);
    for (int i = 0; ls && i < n; i++) free(ls[i].v);
    free(ls);
    free(cp);
    free(cn);
    free(res);
    ssmlm_model_free(m);
    return rc;
}

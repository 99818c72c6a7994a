/* cmd_train.c — `ssmlm train`: train any architecture on Megatron indexed datasets, raw token
 * files, plain text (byte-level) or a built-in synthetic task, with the paper's recipe,
 * checkpoints, exact resume and data parallelism over MPI ranks. */
#include "cli.h"
#include "base/base.h"
#include "train/synth.h"
#include "train/train.h"
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    printf(
        "usage: ssmlm train (--preset NAME | --config FILE | --resume) --data SPEC --out DIR [options]\n"
        "       mpirun -np R ssmlm train ...   (data parallel: each rank takes batch/R rows)\n\n"
        "model\n"
        "  --preset NAME        a preset (ssmlm info --help lists them)\n"
        "  --config FILE        ssmlm or mamba_ssm config.json\n"
        "  --pattern P          override the layer pattern (M Mamba, * attention, + MLP)\n"
        "  --init-from DIR      start from a model folder's weights (continued pretraining:\n"
        "                       new sequence length and schedule, fresh optimizer)\n"
        "  --resume             continue the run in --out bit-exactly from its latest checkpoint\n"
        "  --dtype f32|f64      training precision (default f32)\n"
        "data\n"
        "  --data SPEC          megatron:PREFIX (PREFIX.bin + PREFIX.idx), tokens16:FILE, tokens32:FILE,\n"
        "                       text:FILE (byte-level tokens, 256 = end of document),\n"
        "                       synth:phonebook | synth:phonebook-reversed | synth:mqar | synth:copy\n"
        "  --eod ID             token files: split documents at this id (default: one document)\n"
        "  --doc-sep S          text: split documents at this string (e.g. '\\n\\n'; default none)\n"
        "  --synth-docs N       synthetic documents to generate (default 20000)\n"
        "  --synth-min N, --synth-max N   entries / pairs / length per synthetic document (default 4, 16)\n"
        "  --synth-vocab A      alphabet of synth:mqar and synth:copy (default 64)\n"
        "  --val-fraction F     documents held out for validation (default 0.01)\n"
        "  --cross-doc          let state and attention flow across document boundaries\n"
        "                       (default: they do not)\n"
        "schedule and optimizer\n"
        "  --steps N            optimizer steps (default 100)\n"
        "  --batch R            global batch in rows of --seq tokens (default 8)\n"
        "  --micro-batch r      rows per forward/backward (gradient accumulation; default = batch/ranks)\n"
        "  --seq T              sequence length (default 256)\n"
        "  --recipe paper       the paper's recipe scaled to --steps: AdamW (0.9, 0.95), wd 0.1,\n"
        "                       clip 1.0, peak 3e-4 -> min 3e-5 cosine, short linear warmup\n"
        "  --lr X, --min-lr X   peak and final learning rate (default 3e-4, 3e-5)\n"
        "  --warmup N           warmup steps (default 1%% of --steps, at least 1)\n"
        "  --warmup-samples N   warmup given in samples (rows) instead\n"
        "  --wd X, --clip X, --beta1 X, --beta2 X, --eps X\n"
        "  --no-decay LIST      comma-separated name parts exempt from weight decay, added to the\n"
        "                       default exemptions (norms, biases, A_log, D, dt_bias), e.g. embedding\n"
        "  --seed N             initialization and data order (default 1234)\n"
        "output\n"
        "  --out DIR            checkpoints (step_*/), metrics.jsonl, loss.svg (required)\n"
        "  --eval-every N       validation every N steps (default: at the end)\n"
        "  --eval-rows N        validation rows (default 8)\n"
        "  --ckpt-every N       checkpoint every N steps (default: at the end)\n"
        "  --keep K             checkpoints kept (default 2)\n"
        "  --threads N          CPU threads per process\n"
        "  --quiet              no progress display\n");
}

typedef struct train_args {
    const char *preset, *config, *pattern, *init_from, *data, *out, *doc_sep;
    int resume, dtype, cross_doc, quiet, paper;
    int64_t eod, synth_docs, synth_min, synth_max, synth_vocab, warmup, warmup_samples, threads;
    double val_fraction, lr, min_lr, wd, clip, beta1, beta2, eps;
    ssmlm_train_config tc;
} train_args;

/* Parses a numeric option value; returns 0 and prints an error on failure. */
static int num_i(const char *opt, const char *v, int64_t *out, int64_t lo) {
    if (!cli_parse_i64(v, out) || *out < lo) {
        cli_usage_error("train", "%s '%s' must be an integer >= %lld", opt, v, (long long)lo);
        return 0;
    }
    return 1;
}
static int num_f(const char *opt, const char *v, double *out) {
    if (!cli_parse_f64(v, out) || *out < 0) {
        cli_usage_error("train", "%s '%s' must be a non-negative number", opt, v);
        return 0;
    }
    return 1;
}

static int parse_args(int argc, char **argv, train_args *a) {
    memset(a, 0, sizeof *a);
    ssmlm_train_defaults(&a->tc);
    a->tc.out_dir = NULL;
    a->eod = -1;
    a->synth_docs = 20000;
    a->synth_min = 4;
    a->synth_max = 16;
    a->warmup = -1;
    a->warmup_samples = -1;
    a->val_fraction = 0.01;
    a->lr = -1;
    a->min_lr = -1;
    a->wd = a->clip = a->beta1 = a->beta2 = a->eps = -1;
    int64_t micro = 0, tmp;
    const char *v;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
#define OPT(name) (v = cli_opt(argc, argv, &i, name, &missing))
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            usage();
            return -1;
        } else if (cli_flag(argv, i, "--resume")) a->resume = 1;
        else if (cli_flag(argv, i, "--cross-doc")) a->cross_doc = 1;
        else if (cli_flag(argv, i, "--quiet")) a->quiet = 1;
        else if (OPT("--preset")) a->preset = v;
        else if (OPT("--config")) a->config = v;
        else if (OPT("--pattern")) a->pattern = v;
        else if (OPT("--init-from")) a->init_from = v;
        else if (OPT("--data")) a->data = v;
        else if (OPT("--out")) a->tc.out_dir = a->out = v;
        else if (OPT("--doc-sep")) a->doc_sep = v;
        else if (OPT("--no-decay")) a->tc.no_decay = v;
        else if (OPT("--recipe")) {
            if (strcmp(v, "paper") != 0) return cli_usage_error("train", "--recipe '%s': the only recipe is 'paper'", v);
            a->paper = 1;
        } else if (OPT("--dtype")) {
            if (strcmp(v, "f32") && strcmp(v, "f64")) return cli_usage_error("train", "--dtype must be f32 or f64");
            a->dtype = strcmp(v, "f64") == 0;
        } else if (OPT("--eod")) { if (!num_i("--eod", v, &a->eod, 0)) return 2; }
        else if (OPT("--synth-docs")) { if (!num_i("--synth-docs", v, &a->synth_docs, 1)) return 2; }
        else if (OPT("--synth-min")) { if (!num_i("--synth-min", v, &a->synth_min, 1)) return 2; }
        else if (OPT("--synth-max")) { if (!num_i("--synth-max", v, &a->synth_max, 1)) return 2; }
        else if (OPT("--synth-vocab")) { if (!num_i("--synth-vocab", v, &a->synth_vocab, 2)) return 2; }
        else if (OPT("--steps")) { if (!num_i("--steps", v, &a->tc.steps, 1)) return 2; }
        else if (OPT("--batch")) { if (!num_i("--batch", v, &a->tc.batch_rows, 1)) return 2; }
        else if (OPT("--micro-batch")) { if (!num_i("--micro-batch", v, &micro, 1)) return 2; }
        else if (OPT("--seq")) { if (!num_i("--seq", v, &a->tc.seq_len, 1)) return 2; }
        else if (OPT("--warmup")) { if (!num_i("--warmup", v, &a->warmup, 0)) return 2; }
        else if (OPT("--warmup-samples")) { if (!num_i("--warmup-samples", v, &a->warmup_samples, 0)) return 2; }
        else if (OPT("--eval-every")) { if (!num_i("--eval-every", v, &a->tc.eval_every, 0)) return 2; }
        else if (OPT("--eval-rows")) { if (!num_i("--eval-rows", v, &a->tc.eval_rows, 1)) return 2; }
        else if (OPT("--ckpt-every")) { if (!num_i("--ckpt-every", v, &a->tc.ckpt_every, 0)) return 2; }
        else if (OPT("--keep")) { if (!num_i("--keep", v, &tmp, 1)) return 2; a->tc.keep = (int)tmp; }
        else if (OPT("--seed")) { if (!num_i("--seed", v, &tmp, 0)) return 2; a->tc.seed = (uint64_t)tmp; }
        else if (OPT("--threads")) { if (!num_i("--threads", v, &a->threads, 1)) return 2; }
        else if (OPT("--val-fraction")) {
            if (!num_f("--val-fraction", v, &a->val_fraction) || a->val_fraction >= 1)
                return cli_usage_error("train", "--val-fraction must be in [0, 1)");
        } else if (OPT("--lr")) { if (!num_f("--lr", v, &a->lr)) return 2; }
        else if (OPT("--min-lr")) { if (!num_f("--min-lr", v, &a->min_lr)) return 2; }
        else if (OPT("--wd")) { if (!num_f("--wd", v, &a->wd)) return 2; }
        else if (OPT("--clip")) { if (!num_f("--clip", v, &a->clip)) return 2; }
        else if (OPT("--beta1")) { if (!num_f("--beta1", v, &a->beta1)) return 2; }
        else if (OPT("--beta2")) { if (!num_f("--beta2", v, &a->beta2)) return 2; }
        else if (OPT("--eps")) { if (!num_f("--eps", v, &a->eps)) return 2; }
        else return cli_usage_error("train", missing ? "option %s needs a value" : "unknown option '%s'", argv[i]);
        if (missing) return cli_usage_error("train", "option %s needs a value", argv[i]);
#undef OPT
    }
    if (!a->out) return cli_usage_error("train", "--out DIR is required");
    if (!a->data) return cli_usage_error("train", "--data SPEC is required");
    if (!a->resume && !a->preset && !a->config && !a->init_from)
        return cli_usage_error("train", "give --preset, --config, --init-from or --resume");
    a->tc.micro_rows = micro;
    a->tc.resume = a->resume;
    a->tc.cross_doc = a->cross_doc;
    a->tc.quiet = a->quiet;
    return 0;
}

/* Opens the documents named by --data. */
static int open_docs(const train_args *a, ssmlm_docs **docs) {
    const char *spec = a->data, *colon = strchr(spec, ':');
    if (!colon) return cli_usage_error("train", "--data '%s' needs a kind, e.g. text:corpus.txt or synth:phonebook", spec);
    size_t k = (size_t)(colon - spec);
    const char *arg = colon + 1;
    ssmlm_status s;
    if (k == 8 && !strncmp(spec, "megatron", k)) s = ssmlm_docs_open_megatron(docs, arg);
    else if (k == 8 && !strncmp(spec, "tokens16", k)) s = ssmlm_docs_open_tokens(docs, arg, 16, a->eod);
    else if (k == 8 && !strncmp(spec, "tokens32", k)) s = ssmlm_docs_open_tokens(docs, arg, 32, a->eod);
    else if (k == 4 && !strncmp(spec, "text", k)) s = ssmlm_docs_open_text(docs, arg, a->doc_sep);
    else if (k == 5 && !strncmp(spec, "synth", k)) {
        ssmlm_synth_config sc;
        memset(&sc, 0, sizeof sc);
        if (!strcmp(arg, "phonebook")) sc.task = SSMLM_SYNTH_PHONEBOOK;
        else if (!strcmp(arg, "phonebook-reversed")) { sc.task = SSMLM_SYNTH_PHONEBOOK; sc.reversed = 1; }
        else if (!strcmp(arg, "mqar")) sc.task = SSMLM_SYNTH_MQAR;
        else if (!strcmp(arg, "copy")) sc.task = SSMLM_SYNTH_COPY;
        else return cli_usage_error("train", "unknown synthetic task '%s' (phonebook, phonebook-reversed, mqar, copy)", arg);
        sc.n_docs = a->synth_docs;
        sc.seed = a->tc.seed;
        sc.min_entries = a->synth_min;
        sc.max_entries = a->synth_max < a->synth_min ? a->synth_min : a->synth_max;
        sc.vocab = a->synth_vocab;
        s = ssmlm_docs_synthetic(docs, &sc);
    } else {
        return cli_usage_error("train", "--data kind '%.*s' is not one of megatron, tokens16, tokens32, text, synth", (int)k, spec);
    }
    return s == SSMLM_OK ? 0 : cli_error();
}

int cmd_train(int argc, char **argv) {
    ssmlm_dist dist;
    if (ssmlm_dist_init(&dist, NULL, NULL) != SSMLM_OK) return cli_error();
    train_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        ssmlm_dist_finalize(&dist);
        return rc < 0 ? 0 : rc;
    }
    if (a.threads > 0) ssmlm_set_threads((int)a.threads);
    ssmlm_config c;
    ssmlm_model *m = NULL;
    ssmlm_docs *docs = NULL;
    ssmlm_batcher *tb = NULL, *vb = NULL;
    ssmlm_dtype dt = a.dtype ? SSMLM_F64 : SSMLM_F32;
    /* model: from the run being resumed, a folder, or a preset/config */
    if (a.resume) {
        char dir[4096], cpath[4200];
        if (ssmlm_train_latest(a.out, dir, sizeof dir) != SSMLM_OK) { rc = cli_error(); goto done; }
        snprintf(cpath, sizeof cpath, "%s/config.json", dir);
        if (ssmlm_config_load_json(&c, cpath) != SSMLM_OK || ssmlm_model_create(&m, &c, dt) != SSMLM_OK) { rc = cli_error(); goto done; }
    } else if (a.init_from) {
        if (ssmlm_model_load(&m, a.init_from, dt) != SSMLM_OK) { rc = cli_error(); goto done; }
        c = *ssmlm_model_config(m);
    } else {
        if ((rc = cli_load_config(&c, a.preset, a.config))) goto done;
        if (a.pattern) {
            if (strlen(a.pattern) > SSMLM_MAX_LAYERS) { rc = cli_usage_error("train", "--pattern is too long"); goto done; }
            strcpy(c.pattern, a.pattern);
            if (ssmlm_pattern_normalize(c.pattern) != SSMLM_OK) { rc = cli_error(); goto done; }
            c.n_layer = (int64_t)strlen(c.pattern);
        }
        if (ssmlm_model_create(&m, &c, dt) != SSMLM_OK) { rc = cli_error(); goto done; }
        ssmlm_model_init(m, a.tc.seed);
    }
    if ((rc = open_docs(&a, &docs))) goto done;
    if (ssmlm_docs_check_vocab(docs, c.vocab_size) != SSMLM_OK) {
        ssmlm_error_context("data %s", a.data);
        rc = cli_error();
        goto done;
    }
    if (ssmlm_batcher_create(&tb, docs, a.tc.seq_len, a.tc.seed, a.val_fraction, 0) != SSMLM_OK) { rc = cli_error(); goto done; }
    if (a.val_fraction > 0 && ssmlm_batcher_create(&vb, docs, a.tc.seq_len, a.tc.seed, a.val_fraction, 1) != SSMLM_OK) {
        rc = cli_error();
        goto done;
    }
    /* schedule and optimizer */
    ssmlm_train_config *tc = &a.tc;
    if (tc->micro_rows == 0) tc->micro_rows = tc->batch_rows / dist.size > 0 ? tc->batch_rows / dist.size : 1;
    if (a.paper) ssmlm_recipe_paper(tc->steps, &tc->sched, &tc->adam);
    else {
        tc->sched.total = tc->steps;
        tc->sched.warmup = tc->steps / 100 > 1 ? tc->steps / 100 : 1;
    }
    if (a.lr >= 0) tc->sched.peak_lr = a.lr;
    if (a.min_lr >= 0) tc->sched.min_lr = a.min_lr;
    if (a.warmup >= 0) tc->sched.warmup = a.warmup;
    if (a.warmup_samples >= 0) tc->sched.warmup = (a.warmup_samples + tc->batch_rows - 1) / tc->batch_rows;
    if (a.wd >= 0) tc->adam.weight_decay = a.wd;
    if (a.clip >= 0) tc->adam.clip = a.clip;
    if (a.beta1 >= 0) tc->adam.beta1 = a.beta1;
    if (a.beta2 >= 0) tc->adam.beta2 = a.beta2;
    if (a.eps >= 0) tc->adam.eps = a.eps;
    if (dist.rank == 0 && !a.quiet) {
        ssmlm_param_counts pc;
        ssmlm_config_count_params(&c, &pc);
        size_t act = ssmlm_config_activation_bytes(&c, tc->micro_rows, tc->seq_len);
        fprintf(stderr, "model %s: %s, %.2fM parameters; %d rank(s) x %d thread(s)\n", c.name, c.pattern,
                (double)pc.total / 1e6, dist.size, ssmlm_get_threads());
        fprintf(stderr, "memory: %.1f MB weights+grads+AdamW, %.1f MB activations per micro-batch of %lld x %lld\n",
                16.0 * (double)pc.total / 1e6, (double)act / 1e6, (long long)tc->micro_rows, (long long)tc->seq_len);
        fprintf(stderr, "data: %lld documents, %lld tokens; steps %lld x %lld rows x %lld tokens; lr %.2e -> %.2e, warmup %lld\n",
                (long long)ssmlm_docs_count(docs), (long long)ssmlm_docs_total_tokens(docs), (long long)tc->steps,
                (long long)tc->batch_rows, (long long)tc->seq_len, tc->sched.peak_lr, tc->sched.min_lr, (long long)tc->sched.warmup);
    }
    ssmlm_progress prog;
    ssmlm_progress_init(&prog, stderr);
    ssmlm_train_result res;
    if (ssmlm_train_run(m, tb, vb, tc, &dist, a.quiet ? NULL : &prog, &res) != SSMLM_OK) {
        rc = cli_error();
        goto done;
    }
    if (dist.rank == 0) {
        printf("trained to step %lld: loss %.4f", (long long)res.steps_done, res.last_loss);
        if (vb) printf(", validation loss %.4f", res.last_val_loss);
        printf(", %.0f tokens/s; checkpoints, metrics.jsonl and loss.svg in %s\n", res.tokens_per_s, a.out);
        if (dist.size > 1)
            printf("all-reduce: %.3f s of %.3f s (%.1f%%) on rank 0 of %d\n", res.allreduce_seconds, res.seconds,
                   res.seconds > 0 ? 100 * res.allreduce_seconds / res.seconds : 0.0, dist.size);
    }
done:
    ssmlm_batcher_free(tb);
    ssmlm_batcher_free(vb);
    ssmlm_docs_free(docs);
    ssmlm_model_free(m);
    ssmlm_dist_finalize(&dist);
    return rc;
}

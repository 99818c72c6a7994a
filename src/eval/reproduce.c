/* reproduce.c — what every `ssmlm reproduce` experiment shares: options, one training run
 * (model creation, batchers, the training loop) and the report text buffer. */
#include "eval/reproduce.h"
#include <string.h>

void ssmlm_repro_defaults(ssmlm_repro_options *o) {
    memset(o, 0, sizeof *o);
    o->out_dir = "reproduce";
    o->budget = 1.0;
    o->seed = 1;
}

ssmlm_status repro_train(const ssmlm_repro_options *o, const ssmlm_config *c, const ssmlm_docs *docs,
                         const repro_train_spec *spec, ssmlm_model **model, repro_train_out *out) {
    ssmlm_model *m = NULL;
    *model = NULL;
    memset(out, 0, sizeof *out);
    ssmlm_status s = ssmlm_model_create(&m, c, SSMLM_F32);
    if (s != SSMLM_OK) return s;
    ssmlm_model_init(m, spec->seed);
    if ((s = repro_train_more(o, m, docs, spec, out)) != SSMLM_OK) {
        ssmlm_model_free(m);
        return s;
    }
    *model = m;
    return SSMLM_OK;
}

ssmlm_status repro_train_more(const ssmlm_repro_options *o, ssmlm_model *m, const ssmlm_docs *docs,
                              const repro_train_spec *spec, repro_train_out *out) {
    ssmlm_status s = SSMLM_OK;
    ssmlm_batcher *tb = NULL, *vb = NULL;
    const ssmlm_config *c = ssmlm_model_config(m);
    char dir[4096];
    memset(out, 0, sizeof *out);
    if (snprintf(dir, sizeof dir, "%s/runs/%s", o->out_dir, spec->name) >= (int)sizeof dir)
        return ssmlm_fail(SSMLM_ERR_INVALID, "use a shorter output folder", "reproduce: run folder name too long");
    if ((s = ssmlm_mkdir_p(dir)) != SSMLM_OK) return s;
    if ((s = ssmlm_docs_check_vocab(docs, c->vocab_size)) != SSMLM_OK) goto fail;
    if ((s = ssmlm_batcher_create(&tb, docs, spec->seq_len, spec->seed, spec->val_fraction, 0)) != SSMLM_OK) goto fail;
    if (spec->val_fraction > 0 &&
        (s = ssmlm_batcher_create(&vb, docs, spec->seq_len, spec->seed, spec->val_fraction, 1)) != SSMLM_OK)
        goto fail;

    ssmlm_train_config tc;
    ssmlm_train_defaults(&tc);
    tc.out_dir = dir;
    tc.steps = spec->steps;
    tc.batch_rows = tc.micro_rows = spec->batch_rows;
    tc.seq_len = spec->seq_len;
    tc.sched.peak_lr = spec->lr;
    tc.sched.min_lr = spec->min_lr;
    tc.sched.warmup = spec->warmup;
    tc.sched.total = spec->steps;
    if (spec->weight_decay >= 0) tc.adam.weight_decay = spec->weight_decay;
    tc.eval_every = 0;
    if (spec->eval_rows > 0) tc.eval_rows = spec->eval_rows;
    tc.keep = 1;
    tc.seed = spec->seed;
    tc.quiet = o->quiet;

    ssmlm_param_counts pc;
    if ((s = ssmlm_config_count_params(c, &pc)) != SSMLM_OK) goto fail;
    out->params = pc.total;
    out->tokens = spec->steps * spec->batch_rows * spec->seq_len;
    if (!o->quiet)
        fprintf(stderr, "%s: %s, %.2fM parameters, %lld steps x %lld rows x %lld tokens\n", spec->name, c->pattern,
                (double)pc.total / 1e6, (long long)spec->steps, (long long)spec->batch_rows,
                (long long)spec->seq_len);
    ssmlm_progress prog;
    ssmlm_progress_init(&prog, stderr);
    ssmlm_dist one = {.rank = 0, .size = 1}; /* experiments run in one process */
    if ((s = ssmlm_train_run(m, tb, vb, &tc, &one, o->quiet ? NULL : &prog, &out->res)) != SSMLM_OK)
        ssmlm_error_context("training %s", spec->name);
fail:
    ssmlm_batcher_free(tb);
    ssmlm_batcher_free(vb);
    return s;
}

ssmlm_status repro_text_save(const ssmlm_text *t, const char *out_dir, const char *file) {
    char path[4096];
    if (t->failed) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "reproduce: out of memory composing %s", file);
    if (snprintf(path, sizeof path, "%s/%s", out_dir, file) >= (int)sizeof path)
        return ssmlm_fail(SSMLM_ERR_INVALID, "use a shorter output folder", "reproduce: path of %s too long", file);
    ssmlm_atomic_file af;
    ssmlm_status s = ssmlm_atomic_open(&af, path);
    if (s != SSMLM_OK) return s;
    ssmlm_atomic_write(&af, t->s ? t->s : "", t->n);
    return ssmlm_atomic_close(&af, 1);
}

/* train.c — the training loop (see train.h).
 *
 * One optimizer step: every rank reads the same global batch of batch_rows rows from the
 * batcher (so the data position is identical everywhere) and processes its own contiguous
 * slice in micro-batches.  The gradient of the global mean loss is
 *     g = sum_i (c_i / C) g_i,   c_i = scored tokens of micro-batch i, C = sum over all ranks,
 * accumulated in the gradient arena by rescaling it between micro-batches, then summed over
 * ranks.  Every rank then takes the same deterministic AdamW step, so weights stay equal.
 *
 * Checkpoints: out_dir/step_NNNNNNNN/{config.json, model.safetensors, trainstate.safetensors}
 * are written into a temporary folder that is renamed into place, then out_dir/latest (the
 * folder name) is replaced atomically; older folders beyond `keep` are removed.  A SIGKILL at
 * any moment leaves `latest` naming a complete checkpoint. */
#include "train/train.h"
#include "eval/svg.h"
#include "train/trainstate.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void ssmlm_train_defaults(ssmlm_train_config *tc) {
    memset(tc, 0, sizeof *tc);
    tc->out_dir = "run";
    tc->steps = 100;
    tc->batch_rows = 8;
    tc->micro_rows = 8;
    tc->seq_len = 256;
    ssmlm_adamw_defaults(&tc->adam);
    tc->sched.peak_lr = 3e-4;
    tc->sched.min_lr = 3e-5;
    tc->sched.warmup = 10;
    tc->sched.total = 100;
    tc->eval_every = 0;
    tc->eval_rows = 8;
    tc->ckpt_every = 0;
    tc->keep = 2;
    tc->seed = 1234;
}

/* ---- gradient arena helpers ------------------------------------------------------------ */

static void grad_scale(ssmlm_model *m, double f) {
    int f64 = ssmlm_model_dtype(m) == SSMLM_F64;
    for (int i = 0; i < ssmlm_model_n_params(m); i++) {
        int64_t n = ssmlm_model_param(m, i)->numel;
        void *g = ssmlm_model_grad_data(m, i);
        if (f64) {
            double *x = g;
            for (int64_t j = 0; j < n; j++) x[j] *= f;
        } else {
            float *x = g;
            float ff = (float)f;
            for (int64_t j = 0; j < n; j++) x[j] *= ff;
        }
    }
}

/* The gradient arena is one allocation: tensors are laid out from parameter 0 with padding
 * in between (zero), so one all-reduce covers [first tensor, end of last tensor). */
static ssmlm_status grad_allreduce(ssmlm_model *m, ssmlm_dist *d) {
    if (d->size <= 1) return SSMLM_OK;
    int n = ssmlm_model_n_params(m);
    const ssmlm_param_info *last = ssmlm_model_param(m, n - 1);
    int64_t total = last->offset + last->numel;
    void *g0 = ssmlm_model_grad_data(m, 0);
    return ssmlm_model_dtype(m) == SSMLM_F64 ? ssmlm_dist_allreduce_f64(d, g0, total)
                                              : ssmlm_dist_allreduce_f32(d, g0, total);
}

static int64_t count_scored(const int32_t *labels, int64_t n) {
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) c += labels[i] >= 0;
    return c;
}

/* ---- checkpoints -------------------------------------------------------------------------- */

ssmlm_status ssmlm_train_latest(const char *out_dir, char *path, size_t n) {
    char lp[4096], *text = NULL;
    snprintf(lp, sizeof lp, "%s/latest", out_dir);
    ssmlm_status s = ssmlm_file_read(lp, &text, NULL);
    if (s != SSMLM_OK)
        return ssmlm_fail(SSMLM_ERR_IO, "start without --resume, or point --out at a run folder",
                          "no checkpoint to resume in %s (missing %s)", out_dir, lp);
    size_t len = strcspn(text, "\r\n");
    text[len] = 0;
    if (len == 0 || strchr(text, '/')) {
        free(text);
        return ssmlm_fail(SSMLM_ERR_FORMAT, "remove the file to start afresh", "%s does not name a checkpoint folder", lp);
    }
    snprintf(path, n, "%s/%s", out_dir, text);
    free(text);
    return SSMLM_OK;
}

static void remove_tree(const char *dir) {
    DIR *dd = opendir(dir);
    if (!dd) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(dd))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(dd);
    rmdir(dir);
}

/* Removes step_* folders beyond the newest `keep` (never `newest`), and temporary folders
 * left by interrupted writes. */
static void prune_checkpoints(const char *out_dir, int keep, int64_t newest) {
    enum { MAX_SEEN = 4096 };
    int64_t steps[MAX_SEEN];
    int n = 0;
    char p[4096];
    DIR *dd = opendir(out_dir);
    if (!dd) return;
    struct dirent *e;
    while ((e = readdir(dd))) {
        long long st;
        char tail[16] = "";
        if (sscanf(e->d_name, "step_%lld%15s", &st, tail) < 1) continue;
        if (strncmp(tail, ".tmp", 4) == 0) {
            snprintf(p, sizeof p, "%s/%s", out_dir, e->d_name);
            remove_tree(p);
        } else if (tail[0] == 0 && n < MAX_SEEN) {
            steps[n++] = st;
        }
    }
    closedir(dd);
    for (int i = 0; i < n; i++) {
        int newer = 0;
        for (int j = 0; j < n; j++) newer += steps[j] > steps[i];
        if (newer >= keep && steps[i] != newest) {
            snprintf(p, sizeof p, "%s/step_%08lld", out_dir, (long long)steps[i]);
            remove_tree(p);
        }
    }
}

static ssmlm_status write_checkpoint(const ssmlm_train_config *tc, ssmlm_model *m, ssmlm_optimizer *o,
                                     ssmlm_trainstate *ts) {
    char tmp[4096], fin[4096], name[64], p[4200];
    snprintf(name, sizeof name, "step_%08lld", (long long)ts->step);
    snprintf(fin, sizeof fin, "%s/%s", tc->out_dir, name);
    snprintf(tmp, sizeof tmp, "%s/%s.tmp.%ld", tc->out_dir, name, (long)getpid());
    remove_tree(tmp);
    ssmlm_status s = ssmlm_model_save(m, tmp);
    if (s == SSMLM_OK) {
        snprintf(p, sizeof p, "%s/trainstate.safetensors", tmp);
        s = ssmlm_trainstate_save(p, ts, o, m);
    }
    if (s == SSMLM_OK) {
        remove_tree(fin); /* a folder of the same step from an earlier, interrupted run */
        if (rename(tmp, fin) != 0)
            s = ssmlm_fail(SSMLM_ERR_IO, NULL, "cannot rename %s to %s: %s", tmp, fin, strerror(errno));
    }
    if (s == SSMLM_OK) {
        snprintf(p, sizeof p, "%s/latest", tc->out_dir);
        ssmlm_atomic_file af;
        s = ssmlm_atomic_open(&af, p);
        if (s == SSMLM_OK) {
            ssmlm_atomic_write(&af, name, strlen(name));
            ssmlm_atomic_write(&af, "\n", 1);
            s = ssmlm_atomic_close(&af, 1);
        }
    }
    if (s != SSMLM_OK) {
        remove_tree(tmp);
        ssmlm_error_context("writing checkpoint %s", fin);
        return s;
    }
    prune_checkpoints(tc->out_dir, tc->keep < 1 ? 1 : tc->keep, ts->step);
    return SSMLM_OK;
}

/* Loads weights and training state of the newest checkpoint into m / o / ts. */
static ssmlm_status read_checkpoint(const ssmlm_train_config *tc, ssmlm_model *m, ssmlm_optimizer *o,
                                    ssmlm_trainstate *ts) {
    char dir[4096], p[4200];
    ssmlm_status s = ssmlm_train_latest(tc->out_dir, dir, sizeof dir);
    if (s != SSMLM_OK) return s;
    ssmlm_model *src = NULL;
    s = ssmlm_model_load(&src, dir, ssmlm_model_dtype(m));
    if (s != SSMLM_OK) return s;
    if (ssmlm_model_n_params(src) != ssmlm_model_n_params(m)) {
        ssmlm_model_free(src);
        return ssmlm_fail(SSMLM_ERR_FORMAT, "resume with the configuration the run was started with",
                          "checkpoint %s has a different model", dir);
    }
    size_t es = ssmlm_model_dtype(m) == SSMLM_F64 ? 8 : 4;
    for (int i = 0; i < ssmlm_model_n_params(m); i++) {
        const ssmlm_param_info *a = ssmlm_model_param(m, i), *b = ssmlm_model_param(src, i);
        if (a->numel != b->numel || strcmp(a->name, b->name) != 0) {
            ssmlm_model_free(src);
            return ssmlm_fail(SSMLM_ERR_FORMAT, "resume with the configuration the run was started with",
                              "checkpoint %s: tensor %s does not match the model", dir, b->name);
        }
        memcpy(ssmlm_model_param_data(m, i), ssmlm_model_param_data(src, i), (size_t)a->numel * es);
    }
    ssmlm_model_free(src);
    snprintf(p, sizeof p, "%s/trainstate.safetensors", dir);
    return ssmlm_trainstate_load(p, ts, o, m);
}

/* ---- metrics --------------------------------------------------------------------------- */

typedef struct curve {
    double *x, *y;
    int64_t n, cap;
} curve;

static void curve_add(curve *c, double x, double y) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->x = realloc(c->x, (size_t)c->cap * sizeof(double));
        c->y = realloc(c->y, (size_t)c->cap * sizeof(double));
    }
    c->x[c->n] = x;
    c->y[c->n] = y;
    c->n++;
}

/* Re-reads metrics.jsonl so a resumed run's curve includes the earlier steps. */
static void load_curves(const char *path, curve *tr, curve *va) {
    char *text = NULL;
    if (ssmlm_file_read(path, &text, NULL) != SSMLM_OK) return;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        const char *ps = strstr(line, "\"step\":"), *pl = strstr(line, "\"loss\":"), *pv = strstr(line, "\"val_loss\":");
        if (!ps) continue;
        double st = atof(ps + 7);
        if (pl) curve_add(tr, st, atof(pl + 7));
        if (pv) curve_add(va, st, atof(pv + 11));
    }
    free(text);
}

static void write_plot(const char *out_dir, curve *tr, curve *va) {
    char p[4096];
    snprintf(p, sizeof p, "%s/loss.svg", out_dir);
    ssmlm_plot_series s[2] = {{.name = "train", .x = tr->x, .y = tr->y, .n = tr->n},
                              {.name = "validation", .x = va->x, .y = va->y, .n = va->n}};
    ssmlm_plot plot = {.title = "Training loss", .xlabel = "step", .ylabel = "loss (nats/token)",
                       .series = s, .n_series = va->n ? 2 : 1};
    ssmlm_svg_plot(p, &plot);
}

/* Mean validation loss over the same eval_rows rows every time (from vstart); micro-batches are
 * spread over the ranks and the sums reduced. */
static ssmlm_status validate(ssmlm_model *m, ssmlm_batcher *val, ssmlm_batcher_pos vstart,
                             const ssmlm_train_config *tc, ssmlm_dist *d, int32_t *ids, int32_t *labels,
                             int32_t *seg, double *out) {
    int64_t T = tc->seq_len, rows = tc->eval_rows, mr = tc->micro_rows;
    ssmlm_status s0 = ssmlm_batcher_seek(val, vstart);
    if (s0 != SSMLM_OK) return s0;
    double acc[2] = {0, 0}; /* sum of loss*count, count */
    for (int64_t r0 = 0; r0 < rows; r0 += mr) {
        int64_t nr = rows - r0 < mr ? rows - r0 : mr;
        ssmlm_status s = ssmlm_batcher_next(val, nr, ids, labels, seg);
        if (s != SSMLM_OK) return s;
        if ((r0 / mr) % d->size != d->rank) continue;
        int64_t c = count_scored(labels, nr * T);
        if (!c) continue;
        ssmlm_model_set_segments(m, tc->cross_doc ? NULL : seg, nr * T);
        double loss;
        s = ssmlm_model_forward(m, ids, labels, nr, T, NULL, &loss);
        if (s != SSMLM_OK) return s;
        acc[0] += loss * (double)c;
        acc[1] += (double)c;
    }
    ssmlm_dist_allreduce_f64(d, acc, 2);
    *out = acc[1] > 0 ? acc[0] / acc[1] : NAN;
    return SSMLM_OK;
}

/* ---- the loop -------------------------------------------------------------------------- */

ssmlm_status ssmlm_train_run(ssmlm_model *m, ssmlm_batcher *train, ssmlm_batcher *val,
                             const ssmlm_train_config *tc, ssmlm_dist *d, ssmlm_progress *p,
                             ssmlm_train_result *res) {
    memset(res, 0, sizeof *res);
    int64_t T = tc->seq_len, R = tc->batch_rows, mr = tc->micro_rows;
    if (T < 1 || R < 1 || mr < 1 || tc->steps < 0)
        return ssmlm_fail(SSMLM_ERR_INVALID, "e.g. --seq 256 --batch 8 --micro-batch 4",
                          "sequence length, batch and micro-batch must be positive");
    if (R % (mr * d->size) != 0)
        return ssmlm_fail(SSMLM_ERR_INVALID, "make the batch a multiple of micro-batch x ranks",
                          "batch %lld rows is not a multiple of micro-batch %lld x %d ranks", (long long)R,
                          (long long)mr, d->size);
    int root = d->rank == 0;
    ssmlm_status s = SSMLM_OK;
    if (root) s = ssmlm_mkdir_p(tc->out_dir);
    if (s != SSMLM_OK) return s;
    /* probe that the folder is writable before any work is done */
    if (root) {
        char probe[4096];
        snprintf(probe, sizeof probe, "%s/.write_test", tc->out_dir);
        ssmlm_atomic_file af;
        s = ssmlm_atomic_open(&af, probe);
        if (s != SSMLM_OK) return s;
        ssmlm_atomic_close(&af, 0);
    }
    ssmlm_optimizer *o = NULL;
    s = ssmlm_optimizer_create(&o, m, &tc->adam);
    if (s != SSMLM_OK) return s;
    if (tc->no_decay && *tc->no_decay) {
        char buf[1024], *pats[64];
        int np = 0;
        snprintf(buf, sizeof buf, "%s", tc->no_decay);
        for (char *t = strtok(buf, ","); t && np < 64; t = strtok(NULL, ",")) pats[np++] = t;
        s = ssmlm_optimizer_set_no_decay(o, (const char *const *)pats, np);
        if (s != SSMLM_OK) {
            ssmlm_optimizer_free(o);
            return s;
        }
    }
    ssmlm_trainstate ts;
    memset(&ts, 0, sizeof ts);
    if (tc->resume) {
        s = read_checkpoint(tc, m, o, &ts);
        ssmlm_batcher_pos pos;
        if (s == SSMLM_OK && ts.data_pos_len != (int)sizeof pos)
            s = ssmlm_fail(SSMLM_ERR_FORMAT, "resume with the data the run was started with",
                           "checkpoint data position has %d bytes, expected %zu", ts.data_pos_len, sizeof pos);
        if (s == SSMLM_OK) {
            memcpy(&pos, ts.data_pos, sizeof pos);
            s = ssmlm_batcher_seek(train, pos);
        }
        if (s != SSMLM_OK) {
            ssmlm_optimizer_free(o);
            return s;
        }
    }
    int64_t rows_local = R / d->size, nmicro = rows_local / mr;
    int32_t *ids = malloc((size_t)(R * T) * sizeof(int32_t)), *labels = malloc((size_t)(R * T) * sizeof(int32_t)),
            *seg = malloc((size_t)(R * T) * sizeof(int32_t));
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", tc->out_dir);
    curve ctr = {0}, cva = {0};
    if (root && tc->resume) load_curves(mpath, &ctr, &cva);
    FILE *mf = root ? fopen(mpath, tc->resume ? "a" : "w") : NULL;
    if (root && !mf) {
        s = ssmlm_fail(SSMLM_ERR_IO, "check that the output folder is writable", "cannot write %s", mpath);
        goto done;
    }
    if (!ids || !labels || !seg) {
        s = ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory for the batch");
        goto done;
    }
    int64_t start = ts.step;
    ssmlm_batcher_pos vstart = {0, 0, 0};
    if (val) vstart = ssmlm_batcher_tell(val);
    if (p && root) {
        ssmlm_progress_begin(p, tc->steps, "train");
        ssmlm_progress_skip(p, start);
    }
    double t_run = ssmlm_time(), tok_run = 0;
    for (int64_t step = start + 1; step <= tc->steps; step++) {
        double t0 = ssmlm_time();
        double lr = ssmlm_schedule_lr(&tc->sched, step);
        s = ssmlm_batcher_next(train, R, ids, labels, seg);
        if (s != SSMLM_OK) break;
        /* this rank's slice: rows [rank * rows_local, (rank+1) * rows_local) */
        const int32_t *my_ids = ids + d->rank * rows_local * T, *my_lab = labels + d->rank * rows_local * T,
                      *my_seg = seg + d->rank * rows_local * T;
        double counts[2] = {(double)count_scored(my_lab, rows_local * T), 0};
        ssmlm_dist_allreduce_f64(d, counts, 1);
        double C = counts[0], loss_sum = 0, prev_w = 0, bad_loss = 0;
        ssmlm_model_zero_grad(m);
        for (int64_t k = 0; k < nmicro && C > 0; k++) {
            const int32_t *mi = my_ids + k * mr * T, *ml = my_lab + k * mr * T, *ms = my_seg + k * mr * T;
            double c = (double)count_scored(ml, mr * T);
            if (c == 0) continue;
            ssmlm_model_set_segments(m, tc->cross_doc ? NULL : ms, mr * T);
            double loss;
            s = ssmlm_model_forward(m, mi, ml, mr, T, NULL, &loss);
            if (s != SSMLM_OK) goto done;
            if (!isfinite(loss)) { /* reported after the reduction, so no rank waits alone */
                bad_loss = loss;
                break;
            }
            loss_sum += loss * c;
            /* arena holds S/prev_w; rescale so that adding g_k gives S'/w */
            double w = c / C;
            if (prev_w > 0) grad_scale(m, prev_w / w);
            s = ssmlm_model_backward(m, prev_w > 0);
            if (s != SSMLM_OK) goto done;
            prev_w = w;
        }
        if (prev_w > 0) grad_scale(m, prev_w);
        double t_ar = ssmlm_time();
        s = grad_allreduce(m, d);
        res->allreduce_seconds += ssmlm_time() - t_ar;
        if (s != SSMLM_OK) goto done;
        double red[2] = {loss_sum, bad_loss != 0 ? 1 : 0};
        ssmlm_dist_allreduce_f64(d, red, 2);
        if (red[1] > 0) {
            s = ssmlm_fail(SSMLM_ERR_NUMERIC, "lower the learning rate or check the data; the last checkpoint is intact",
                           "loss is %g at step %lld", bad_loss != 0 ? bad_loss : NAN, (long long)step);
            goto done;
        }
        double loss = C > 0 ? red[0] / C : NAN, gnorm = 0;
        s = ssmlm_optimizer_step(o, m, lr, &gnorm);
        if (s != SSMLM_OK) {
            ssmlm_error_context("step %lld", (long long)step);
            goto done;
        }
        double dt = ssmlm_time() - t0, tok = (double)(R * T);
        tok_run += tok;
        ts.step = step;
        ts.tokens_seen += (uint64_t)tok;
        res->steps_done = step;
        res->last_loss = loss;
        double vloss = NAN;
        int do_eval = val && ((tc->eval_every > 0 && step % tc->eval_every == 0) || step == tc->steps);
        if (do_eval) {
            s = validate(m, val, vstart, tc, d, ids, labels, seg, &vloss);
            if (s != SSMLM_OK) goto done;
            res->last_val_loss = vloss;
        }
        if (root) {
            fprintf(mf, "{\"step\":%lld,\"loss\":%.6f,\"lr\":%.6e,\"grad_norm\":%.6f,\"tokens\":%llu,\"tok_per_s\":%.1f",
                    (long long)step, loss, lr, gnorm, (unsigned long long)ts.tokens_seen, tok / dt);
            if (do_eval) fprintf(mf, ",\"val_loss\":%.6f", vloss);
            fprintf(mf, "}\n");
            fflush(mf);
            curve_add(&ctr, (double)step, loss);
            if (do_eval) curve_add(&cva, (double)step, vloss);
            if (p)
                ssmlm_progress_update(p, step, "loss %.4f lr %.2e |g| %.3f %.0f tok/s", loss, lr, gnorm,
                                      tok_run / (ssmlm_time() - t_run));
        }
        int do_ckpt = (tc->ckpt_every > 0 && step % tc->ckpt_every == 0) || step == tc->steps;
        if (do_ckpt && root) {
            ssmlm_batcher_pos pos = ssmlm_batcher_tell(train);
            memcpy(ts.data_pos, &pos, sizeof pos);
            ts.data_pos_len = (int)sizeof pos;
            snprintf(ts.meta_json, sizeof ts.meta_json,
                     "{\"steps\":%lld,\"batch_rows\":%lld,\"micro_rows\":%lld,\"seq_len\":%lld,\"ranks\":%d,"
                     "\"peak_lr\":%.9g,\"min_lr\":%.9g,\"warmup\":%lld,\"decay_end\":%lld,\"loss\":%.6f}",
                     (long long)tc->steps, (long long)R, (long long)mr, (long long)T, d->size, tc->sched.peak_lr,
                     tc->sched.min_lr, (long long)tc->sched.warmup, (long long)tc->sched.total, loss);
            s = write_checkpoint(tc, m, o, &ts);
            if (s != SSMLM_OK) goto done;
            write_plot(tc->out_dir, &ctr, &cva);
        }
    }
    res->seconds = ssmlm_time() - t_run;
    res->tokens_per_s = res->seconds > 0 ? tok_run / res->seconds : 0;
    if (p && root) ssmlm_progress_end(p);
done:
    if (mf) fclose(mf);
    if (root && s != SSMLM_OK && ctr.n) write_plot(tc->out_dir, &ctr, &cva);
    free(ctr.x);
    free(ctr.y);
    free(cva.x);
    free(cva.y);
    free(ids);
    free(labels);
    free(seg);
    ssmlm_model_set_segments(m, NULL, 0);
    ssmlm_optimizer_free(o);
    return s;
}

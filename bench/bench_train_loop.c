/* bench_train_loop.c — training throughput through the full loop (ssmlm_train_run: packing
 * batcher over random-token documents, gradient arena, AdamW with the schedule, metrics.jsonl,
 * one checkpoint at the end) against the bare forward + backward step on the same kind of batch
 * (same rows, same document segments), interleaved, for the two ~26M models of
 * bench_train_step (bench_models.h) at batch 2 x seq 1024.
 *
 * Per round and model: one ssmlm_train_run of --steps steps into a fresh folder under /tmp, then
 * the same number of bare steps (the order alternates between rounds).  Reported:
 *   loop tokens/s    = steps x B x T / (run wall time - final checkpoint time)
 *   loop step        = median per-step time the loop logs in metrics.jsonl (steps >= 2)
 *   loop step 1      = the first logged step (first touch of the AdamW moments)
 *   bare step        = median of the bare steps
 *   outside steps    = run wall time - checkpoint - sum of the logged step times (AdamW moment
 *                      allocation, output-folder probe, metrics writes, loss plot)
 *   checkpoint       = from the last metrics.jsonl write (its mtime) to the rename of
 *                      out_dir/latest (its ctime): weights + AdamW state + fsyncs + renames
 *   MFU              = model FLOP/s / (peak FMA FLOP/s of one core x threads); the peak comes
 *                      from an FMA loop of independent accumulators (AVX-512 and AVX2, the
 *                      faster one) run in the same process; the same-run OpenBLAS sgemm
 *                      GFLOP/s is printed as a second denominator.
 * Each round of a model waits (up to 30 s) for a moment when other processes use at most
 * --max-foreign of the CPUs; a round during which they used more is dropped and repeated (at
 * most 2 extra rounds per model), and every round's share is printed.
 * usage: bench_train_loop [--rounds R] [--steps S] [--threads N] [--batch B] [--seq T]
 *                         [--max-foreign F] */
#include "bench_common.h"
#include "bench_models.h"
#include "train/train.h"
#include <dirent.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

/* Median [min-max] of n values, leaving them in place. */
static bench_stats stats_of(const double *x, int n) {
    double *c = malloc((size_t)n * sizeof(double));
    memcpy(c, x, (size_t)n * sizeof(double));
    bench_stats s = bench_summarize(c, n);
    free(c);
    return s;
}

/* ---- peak FMA rate ----------------------------------------------------------------------- */
/* acc_i <- acc_i * a + b on independent registers (enough of them to cover the FMA latency on
 * every port), for about `seconds`; returns FLOP/s (2 per lane per FMA). */
#if defined(__AVX512F__)
static double fma_rate_512(double seconds) {
    __m512 acc[16], a = _mm512_set1_ps(0.9999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_ps(1.0f + 0.01f * (float)i);
    double t0 = bench_now(), t;
    long iters = 0;
    do {
        for (int r = 0; r < 4096; r++)
            for (int i = 0; i < 16; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
        iters += 4096;
    } while ((t = bench_now() - t0) < seconds);
    __m512 s = acc[0];
    for (int i = 1; i < 16; i++) s = _mm512_add_ps(s, acc[i]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return (double)iters * 16 * 16 * 2 / t;
}
#endif
#if defined(__AVX2__) && defined(__FMA__)
static double fma_rate_256(double seconds) {
    __m256 acc[12], a = _mm256_set1_ps(0.9999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps(1.0f + 0.01f * (float)i);
    double t0 = bench_now(), t;
    long iters = 0;
    do {
        for (int r = 0; r < 4096; r++)
            for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
        iters += 4096;
    } while ((t = bench_now() - t0) < seconds);
    __m256 s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, acc[i]);
    float v[8];
    _mm256_storeu_ps(v, s);
    volatile float sink = v[0] + v[7];
    (void)sink;
    return (double)iters * 12 * 8 * 2 / t;
}
#endif
static double fma_rate(int wide, double seconds) {
#if defined(__AVX512F__)
    if (wide) return fma_rate_512(seconds);
#endif
#if defined(__AVX2__) && defined(__FMA__)
    return fma_rate_256(seconds);
#else
    (void)wide, (void)seconds;
    return 0;
#endif
}

/* Best of 5 short runs on one thread, and the sum over `threads` threads running at once. */
static void fma_peak(int threads, double *one, double *all) {
    *one = *all = 0;
    for (int wide = 0; wide < 2; wide++)
        for (int r = 0; r < 5; r++) {
            double g = fma_rate(wide, 0.05);
            if (g > *one) *one = g;
        }
    for (int wide = 0; wide < 2; wide++)
        for (int r = 0; r < 3; r++) {
            double sum = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sum)
            sum += fma_rate(wide, 0.1);
            if (sum > *all) *all = sum;
        }
}

/* ---- the loop's own records ------------------------------------------------------------- */

static double ts_sec(struct timespec t) { return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec; }

/* Final checkpoint: last write of metrics.jsonl to the rename of `latest`; also its bytes. */
static double checkpoint_seconds(const char *dir, double *bytes) {
    char p[1024];
    struct stat a, b;
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    if (stat(p, &a) != 0) return NAN;
    snprintf(p, sizeof p, "%s/latest", dir);
    if (stat(p, &b) != 0) return NAN;
    *bytes = 0;
    DIR *dd = opendir(dir);
    struct dirent *e;
    while (dd && (e = readdir(dd))) {
        if (strncmp(e->d_name, "step_", 5)) continue;
        const char *files[3] = {"config.json", "model.safetensors", "trainstate.safetensors"};
        for (int i = 0; i < 3; i++) {
            struct stat sf;
            char fp[1400];
            snprintf(fp, sizeof fp, "%s/%s/%s", dir, e->d_name, files[i]);
            if (stat(fp, &sf) == 0) *bytes += (double)sf.st_size;
        }
    }
    if (dd) closedir(dd);
    return ts_sec(b.st_ctim) - ts_sec(a.st_mtim);
}

/* ---- measurements -------------------------------------------------------------------------- */
typedef struct model_run {
    ssmlm_config cfg;
    ssmlm_model *m;
    double flops_tok;
    double *loop_tps, *loop_step, *bare_step, *ratio, *ckpt, *ckpt_mb, *fixed;
    int n;
} model_run;

static int usage(void) {
    fprintf(stderr, "usage: bench_train_loop [--rounds R] [--steps S] [--threads N] [--batch B] [--seq T] "
                    "[--max-foreign F]\n");
    return 2;
}

int main(int argc, char **argv) {
    int rounds = 3, steps = 4, threads = 2;
    int64_t B = 2, T = 1024;
    double max_foreign = 0.10;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--seq") && i + 1 < argc) T = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--max-foreign") && i + 1 < argc) max_foreign = atof(argv[++i]);
        else return usage();
    }
    if (rounds < 1 || steps < 2 || threads < 1 || B < 1 || T < 1) return usage();
    ssmlm_set_threads(threads);

    /* random-token documents, lengths uniform in [64, 2048], vocab 8192 */
    enum { NDOC = 512 };
    int64_t starts[NDOC + 1];
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    starts[0] = 0;
    for (int i = 0; i < NDOC; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        starts[i + 1] = starts[i] + 64 + (int64_t)((rng >> 33) % 1985);
    }
    int32_t *tok = malloc((size_t)starts[NDOC] * sizeof(int32_t));
    for (int64_t i = 0; i < starts[NDOC]; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((rng >> 33) % 8192);
    }
    ssmlm_docs *docs = NULL;
    ssmlm_batcher *loop_b = NULL, *bare_b = NULL;
    ssmlm_dist dist;
    if (ssmlm_docs_from_arrays(&docs, NDOC, starts, tok, NULL) != SSMLM_OK ||
        ssmlm_batcher_create(&loop_b, docs, T, 1, 0.0, 0) != SSMLM_OK ||
        ssmlm_batcher_create(&bare_b, docs, T, 2, 0.0, 0) != SSMLM_OK || ssmlm_dist_init(&dist, NULL, NULL) != SSMLM_OK) {
        fprintf(stderr, "error: %s\nhint: %s\n", ssmlm_last_error(), ssmlm_last_hint());
        return 1;
    }
    free(tok);
    int32_t *ids = malloc((size_t)(B * T) * sizeof(int32_t)), *labels = malloc((size_t)(B * T) * sizeof(int32_t)),
            *seg = malloc((size_t)(B * T) * sizeof(int32_t));
    char base[] = "/tmp/ssmlm_bench_loop_XXXXXX";
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }

    int maxr = rounds + 2; /* attempts per model */
    model_run mr[2];
    for (int k = 0; k < 2; k++) {
        memset(&mr[k], 0, sizeof mr[k]);
        bench_model_config(&mr[k].cfg, k);
        if (ssmlm_model_create(&mr[k].m, &mr[k].cfg, SSMLM_F32) != SSMLM_OK) {
            fprintf(stderr, "error: %s\n", ssmlm_last_error());
            return 1;
        }
        ssmlm_model_init(mr[k].m, 1);
        mr[k].flops_tok = bench_flops_per_token(&mr[k].cfg, T);
        double **cols[7] = {&mr[k].loop_tps, &mr[k].loop_step, &mr[k].bare_step, &mr[k].ratio, &mr[k].ckpt,
                            &mr[k].ckpt_mb, &mr[k].fixed};
        for (int c = 0; c < 7; c++) *cols[c] = calloc((size_t)maxr, sizeof(double));
    }

    double peak1, peak_all;
    bench_wait_quiet(max_foreign, 30);
    fma_peak(threads, &peak1, &peak_all);
    int64_t GM = 2048, GN = 2048, GK = 512;
    float *A = bench_random(GM * GK, 1), *Bw = bench_random(GN * GK, 2), *C = malloc((size_t)(GM * GN) * sizeof(float));
    double *gs = malloc((size_t)(2 * maxr + 2) * sizeof(double));
    int ng = 0;
    bench_sgemm_once(GM, GN, GK, A, Bw, C);

    printf("bench_train_loop: batch %lld x seq %lld, %d thread(s), %d loop steps per run, fp32\n", (long long)B,
           (long long)T, threads, steps);
    for (int k = 0; k < 2; k++) {
        ssmlm_param_counts pc;
        ssmlm_config_count_params(&mr[k].cfg, &pc);
        printf("%-16s pattern %-16s params %.2fM  FLOP/token %.1f M\n", mr[k].cfg.name, mr[k].cfg.pattern,
               (double)pc.total / 1e6, mr[k].flops_tok / 1e6);
    }
    printf("peak FMA: %.1f GFLOP/s on one thread; %d threads at once: %.1f GFLOP/s (%.2fx)\n", peak1 / 1e9, threads,
           peak_all / 1e9, peak_all / peak1);
    printf("data: %d random-token documents (vocab 8192, 64-2048 tokens), document boundaries on\n\n", NDOC);

    /* warm-up: one bare step per model */
    double loss;
    for (int k = 0; k < 2; k++) {
        ssmlm_batcher_next(bare_b, B, ids, labels, seg);
        ssmlm_model_set_segments(mr[k].m, seg, B * T);
        ssmlm_model_forward(mr[k].m, ids, labels, B, T, NULL, &loss);
        ssmlm_model_backward(mr[k].m, 0);
        ssmlm_model_set_segments(mr[k].m, NULL, 0);
    }

    printf("| round | model | others' CPU | loop tokens/s | loop step 1 s | loop step s | bare step s | loop / bare | "
           "outside steps s | checkpoint s |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    double *bare_t = malloc((size_t)steps * sizeof(double)), *loop_t = malloc((size_t)(steps + 1) * sizeof(double));
    int attempts[2] = {0, 0}, busy_kept = 0;
    /* one unit = one model's loop run and bare steps; the two models alternate */
    for (int unit = 0; unit < 2 * maxr; unit++) {
        int k = unit % 2;
        if (mr[k].n >= rounds || attempts[k] >= maxr) continue;
        int a = ++attempts[k];
        bench_wait_quiet(max_foreign, 30);
        gs[ng++] = bench_sgemm_once(GM, GN, GK, A, Bw, C);
        bench_cpu_sample c0 = bench_cpu_now();
        double r_tps = 0, r_ls = 0, r_bs = 0, r_ck = 0, r_mb = 0, r_fx = 0, r_f1 = 0;
        for (int phase = 0; phase < 2; phase++) {
            int do_loop = (phase == 0) == (a % 2 == 1);
            if (do_loop) {
                char dir[512];
                snprintf(dir, sizeof dir, "%s/run_%d_%d", base, k, a);
                ssmlm_train_config tc;
                ssmlm_train_defaults(&tc);
                tc.out_dir = dir;
                tc.steps = steps;
                tc.batch_rows = tc.micro_rows = B;
                tc.seq_len = T;
                tc.sched.warmup = 1;
                tc.sched.total = steps;
                tc.keep = 1;
                tc.quiet = 1;
                ssmlm_train_result res;
                double t0 = bench_now();
                ssmlm_status s = ssmlm_train_run(mr[k].m, loop_b, NULL, &tc, &dist, NULL, &res);
                double wall = bench_now() - t0;
                if (s != SSMLM_OK) {
                    fprintf(stderr, "error: %s\nhint: %s\n", ssmlm_last_error(), ssmlm_last_hint());
                    return 1;
                }
                double bytes = 0;
                r_ck = checkpoint_seconds(dir, &bytes);
                r_mb = bytes / 1e6;
                r_tps = (double)(steps * B * T) / (wall - r_ck);
                int n = bench_read_step_times(dir, (double)(B * T), loop_t, steps + 1);
                if (n != steps) {
                    fprintf(stderr, "error: %s/metrics.jsonl has %d steps, expected %d\n", dir, n, steps);
                    return 1;
                }
                double sum = 0;
                for (int i = 0; i < n; i++) sum += loop_t[i];
                r_fx = wall - r_ck - sum;
                r_f1 = loop_t[0];
                r_ls = bench_summarize(loop_t + 1, n - 1).median;
                /* removed and committed to disk before the next timing (ext4 discards freed
                 * blocks at the journal commit, which the next fsync would otherwise wait for) */
                bench_rmtree(dir);
                sync();
            } else {
                for (int i = 0; i < steps; i++) {
                    ssmlm_batcher_next(bare_b, B, ids, labels, seg);
                    double t0 = bench_now();
                    ssmlm_model_set_segments(mr[k].m, seg, B * T);
                    ssmlm_model_forward(mr[k].m, ids, labels, B, T, NULL, &loss);
                    ssmlm_model_backward(mr[k].m, 0);
                    bare_t[i] = bench_now() - t0;
                }
                ssmlm_model_set_segments(mr[k].m, NULL, 0);
                r_bs = bench_summarize(bare_t, steps).median;
            }
        }
        double foreign = bench_cpu_foreign(c0, bench_cpu_now());
        gs[ng++] = bench_sgemm_once(GM, GN, GK, A, Bw, C);
        /* a busy unit is dropped unless this model has no attempt left to replace it */
        int keep = foreign <= max_foreign || maxr - a < rounds - mr[k].n;
        busy_kept += keep && foreign > max_foreign;
        printf("| %d%s | %s | %.0f%% | %.0f | %.3f | %.3f | %.3f | %.3f | %.2f | %.2f |\n", a, keep ? "" : " (dropped)",
               mr[k].cfg.name, 100 * foreign, r_tps, r_f1, r_ls, r_bs, r_ls / r_bs, r_fx, r_ck);
        fflush(stdout);
        if (!keep) continue;
        int j = mr[k].n++;
        mr[k].loop_tps[j] = r_tps;
        mr[k].loop_step[j] = r_ls;
        mr[k].bare_step[j] = r_bs;
        mr[k].ratio[j] = r_ls / r_bs;
        mr[k].ckpt[j] = r_ck;
        mr[k].ckpt_mb[j] = r_mb;
        mr[k].fixed[j] = r_fx;
    }
    if (busy_kept) printf("\nwarning: %d kept round(s) ran while other processes used > %.0f%% of the CPUs\n", busy_kept, 100 * max_foreign);
    bench_stats g = bench_summarize(gs, ng);
    double denom = peak1 * threads;

    printf("\nmedian [min-max] over %d kept rounds per model; MFU = model FLOP/s / (%.1f GFLOP/s per core x %d)\n\n",
           rounds, peak1 / 1e9, threads);
    printf("| model | path | step s | tokens/s | GFLOP/s | MFU | fraction of sgemm (%.0f GFLOP/s) |\n", g.median);
    printf("|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < 2; k++) {
        model_run *r = &mr[k];
        int n = r->n;
        double ft = r->flops_tok;
        bench_stats bs = stats_of(r->bare_step, n), ls = stats_of(r->loop_step, n), lt = stats_of(r->loop_tps, n);
        double tb = (double)(B * T) / bs.median, tl = (double)(B * T) / ls.median;
        printf("| %s | bare forward + backward | %.3f [%.3f-%.3f] | %.0f | %.1f | %.1f%% | %.1f%% |\n", r->cfg.name,
               bs.median, bs.min, bs.max, tb, tb * ft / 1e9, 100 * tb * ft / denom, 100 * tb * ft / (g.median * 1e9));
        printf("| %s | loop, per step (steps >= 2) | %.3f [%.3f-%.3f] | %.0f | %.1f | %.1f%% | %.1f%% |\n", r->cfg.name,
               ls.median, ls.min, ls.max, tl, tl * ft / 1e9, 100 * tl * ft / denom, 100 * tl * ft / (g.median * 1e9));
        printf("| %s | loop, whole run without the checkpoint | | %.0f [%.0f-%.0f] | %.1f | %.1f%% | %.1f%% |\n",
               r->cfg.name, lt.median, lt.min, lt.max, lt.median * ft / 1e9, 100 * lt.median * ft / denom,
               100 * lt.median * ft / (g.median * 1e9));
    }
    printf("\n| model | loop step / bare step | whole-run tokens/s / bare | outside the steps s | final checkpoint s | "
           "checkpoint MB | MB/s |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < 2; k++) {
        model_run *r = &mr[k];
        int n = r->n;
        double *rel = malloc((size_t)n * sizeof(double)), *rate = malloc((size_t)n * sizeof(double));
        for (int j = 0; j < n; j++) {
            rel[j] = r->loop_tps[j] / ((double)(B * T) / r->bare_step[j]);
            rate[j] = r->ckpt_mb[j] / r->ckpt[j];
        }
        bench_stats ra = stats_of(r->ratio, n), re = stats_of(rel, n), fx = stats_of(r->fixed, n),
                    ck = stats_of(r->ckpt, n), rt = stats_of(rate, n);
        printf("| %s | %.3f [%.3f-%.3f] | %.3f [%.3f-%.3f] | %.2f [%.2f-%.2f] | %.2f [%.2f-%.2f] | %.0f | %.0f [%.0f-%.0f] |\n",
               r->cfg.name, ra.median, ra.min, ra.max, re.median, re.min, re.max, fx.median, fx.min, fx.max, ck.median,
               ck.min, ck.max, r->ckpt_mb[0], rt.median, rt.min, rt.max);
        free(rel);
        free(rate);
    }
    printf("\nsgemm 2048 x 2048 x 512 (NT), %d thread(s): %.1f GFLOP/s [%.1f-%.1f]\n", threads, g.median, g.min, g.max);

    bench_rmtree(base);
    for (int k = 0; k < 2; k++) {
        ssmlm_model_free(mr[k].m);
        double *cols[7] = {mr[k].loop_tps, mr[k].loop_step, mr[k].bare_step, mr[k].ratio, mr[k].ckpt, mr[k].ckpt_mb,
                           mr[k].fixed};
        for (int c = 0; c < 7; c++) free(cols[c]);
    }
    ssmlm_batcher_free(loop_b);
    ssmlm_batcher_free(bare_b);
    ssmlm_docs_free(docs);
    ssmlm_dist_finalize(&dist);
    free(A);
    free(Bw);
    free(C);
    free(gs);
    free(ids);
    free(labels);
    free(seg);
    free(bare_t);
    free(loop_t);
    return 0;
}

/* bench_train_mpi.c — data parallelism on one machine: `ssmlm train` as 2 MPI ranks x 1 thread
 * against 1 process x 2 threads, same model, same data, same global batch.
 *
 * The benchmark writes, under a fresh folder in /tmp, a Megatron indexed dataset of
 * random-token documents (vocab 8192, 64-2048 tokens each; ssmlm_docs_write_megatron) and the
 * hybrid-25m config of bench_models.h (ssmlm_config_save_json), then runs the ssmlm program
 * next to this binary (argv[0]'s folder/../ssmlm), alternating per repetition:
 *   2 ranks:  mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 ssmlm train ...
 *             --batch B --micro-batch B/2 --threads 1      (TCP over loopback, ob1)
 *   1 rank:   ssmlm train ... --batch B --micro-batch B --threads 2
 * Tokens/s come from rank 0's metrics.jsonl over steps 2..S (step 1 is the warm-up); the
 * all-reduce time from the line the program prints at the end of a multi-rank run, as a share
 * of the summed step times (it includes step 1's all-reduce, where connections are set up,
 * and any time rank 0 waits for the other rank).  The final checkpoint is outside both.
 * Each run first waits (up to 30 s) for other processes to use at most 10 % of the CPUs; a run
 * during which they used more is printed as dropped and repeated (twice at most).  Without
 * mpirun, or with a library built without MPI, it says so and exits 0.
 * usage: bench_train_mpi [--reps N] [--steps S] [--batch B] [--seq T] */
#include "bench_common.h"
#include "bench_models.h"
#include "train/data.h"
#include "train/dist.h"
#include <math.h>
#include <unistd.h>

typedef struct run_result {
    double tps;       /* tokens/s over steps 2..S */
    double step_sum;  /* seconds, all steps */
    double allreduce; /* seconds (2 ranks) */
    double foreign;
} run_result;


/* Runs one training command, prints its output on failure; returns 0 on success. */
static int run_train(const char *cmd, const char *out_dir, int steps, double tokens_per_step, run_result *r) {
    bench_wait_quiet(0.10, 30);
    bench_cpu_sample c0 = bench_cpu_now();
    FILE *p = popen(cmd, "r");
    if (!p) {
        perror("popen");
        return 1;
    }
    char line[2048], all[8192] = "";
    r->allreduce = NAN;
    while (fgets(line, sizeof line, p)) {
        double a;
        if (sscanf(line, "all-reduce: %lf s", &a) == 1) r->allreduce = a;
        if (strlen(all) + strlen(line) < sizeof all) strcat(all, line);
    }
    int rc = pclose(p);
    r->foreign = bench_cpu_foreign(c0, bench_cpu_now());
    double *dt = malloc((size_t)(steps + 1) * sizeof(double));
    int n = bench_read_step_times(out_dir, tokens_per_step, dt, steps + 1);
    if (rc != 0 || n != steps) {
        fprintf(stderr, "error: `%s` exited with %d and logged %d of %d steps; its output:\n%s\n", cmd, rc, n, steps, all);
        free(dt);
        return 1;
    }
    r->step_sum = 0;
    double later = 0;
    for (int i = 0; i < n; i++) {
        r->step_sum += dt[i];
        if (i > 0) later += dt[i];
    }
    r->tps = tokens_per_step * (n - 1) / later;
    free(dt);
    return 0;
}

int main(int argc, char **argv) {
    int reps = 3, steps = 6;
    int64_t B = 2, T = 1024;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--seq") && i + 1 < argc) T = atoll(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_train_mpi [--reps N] [--steps S] [--batch B] [--seq T]\n");
            return 2;
        }
    }
    if (reps < 1 || steps < 2 || B < 2 || B % 2 || T < 1) {
        fprintf(stderr, "bench_train_mpi: need --reps >= 1, --steps >= 2, an even --batch >= 2, --seq >= 1\n");
        return 2;
    }
    if (system("command -v mpirun >/dev/null 2>&1") != 0) {
        printf("bench_train_mpi: mpirun not found; nothing measured (install openmpi-bin to run it)\n");
        return 0;
    }
    if (!ssmlm_dist_has_mpi()) {
        printf("bench_train_mpi: ssmlm was built without MPI (no mpicc at build time); nothing measured\n");
        return 0;
    }
    char prog[1024];
    const char *slash = strrchr(argv[0], '/');
    snprintf(prog, sizeof prog, "%.*s../ssmlm", slash ? (int)(slash - argv[0] + 1) : 0, argv[0]);
    if (access(prog, X_OK) != 0) {
        fprintf(stderr, "error: %s not found\nhint: build it with make (the benchmark runs the program next to it)\n", prog);
        return 1;
    }
    setenv("OMPI_MCA_btl", "self,tcp", 1);
    setenv("OMPI_MCA_btl_tcp_if_include", "lo", 1);
    setenv("OMPI_MCA_oob_tcp_if_include", "lo", 1);
    setenv("OMPI_MCA_pml", "ob1", 1);

    char base[] = "/tmp/ssmlm_bench_mpi_XXXXXX";
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    /* data: random-token documents as a Megatron dataset (uint16 tokens) */
    enum { NDOC = 512 };
    int64_t starts[NDOC + 1];
    uint64_t rng = 0x2545F4914F6CDD1Dull;
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
    char prefix[600], cfg_path[600];
    snprintf(prefix, sizeof prefix, "%s/random", base);
    snprintf(cfg_path, sizeof cfg_path, "%s/hybrid-25m.json", base);
    ssmlm_docs *docs = NULL;
    ssmlm_config cfg;
    bench_model_config(&cfg, 1);
    if (ssmlm_docs_from_arrays(&docs, NDOC, starts, tok, NULL) != SSMLM_OK ||
        ssmlm_docs_write_megatron(docs, prefix, 2) != SSMLM_OK || ssmlm_config_save_json(&cfg, cfg_path) != SSMLM_OK) {
        fprintf(stderr, "error: %s\nhint: %s\n", ssmlm_last_error(), ssmlm_last_hint());
        return 1;
    }
    int64_t total_tokens = ssmlm_docs_total_tokens(docs);
    ssmlm_docs_free(docs);
    free(tok);

    ssmlm_param_counts pc;
    ssmlm_config_count_params(&cfg, &pc);
    printf("bench_train_mpi: %s (%s, %.2fM parameters, fp32), global batch %lld x seq %lld, %d steps per run "
           "(tokens/s over steps 2-%d)\n",
           cfg.name, cfg.pattern, (double)pc.total / 1e6, (long long)B, (long long)T, steps, steps);
    printf("data: %d random-token documents, %lld tokens (Megatron uint16); all-reduce of %.1f MB of fp32 gradients "
           "per step over TCP loopback\n\n",
           NDOC, (long long)total_tokens, 4.0 * (double)pc.total / 1e6);

    double tokens_per_step = (double)(B * T);
    double *tps[2], *share = malloc((size_t)reps * sizeof(double));
    for (int k = 0; k < 2; k++) tps[k] = malloc((size_t)reps * sizeof(double));
    printf("| rep | layout | others' CPU | tokens/s | all-reduce s | all-reduce / step time |\n|---|---|---|---|---|---|\n");
    for (int r = 0; r < reps; r++) {
        for (int ph = 0; ph < 2; ph++) {
            int mpi = (ph == 0) == (r % 2 == 0); /* tps[0]: 2 ranks x 1 thread, tps[1]: 1 x 2 */
            char out[700], args[4096], cmd[8192];
            snprintf(out, sizeof out, "%s/run_%s_%d", base, mpi ? "mpi" : "threads", r);
            snprintf(args, sizeof args,
                     "train --config %s --data megatron:%s --steps %d --batch %lld --micro-batch %lld --seq %lld "
                     "--val-fraction 0 --quiet --out %s --threads %d",
                     cfg_path, prefix, steps, (long long)B, (long long)(mpi ? B / 2 : B), (long long)T, out, mpi ? 1 : 2);
            if (mpi)
                snprintf(cmd, sizeof cmd, "mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 %s %s 2>&1",
                         prog, args);
            else
                snprintf(cmd, sizeof cmd, "%s %s 2>&1", prog, args);
            /* a run during which other processes used > 10 % of the CPUs is repeated (twice at most) */
            for (int attempt = 0; attempt < 3; attempt++) {
                run_result res;
                if (run_train(cmd, out, steps, tokens_per_step, &res)) {
                    bench_rmtree(base);
                    for (int k = 0; k < 2; k++) free(tps[k]);
                    free(share);
                    return 1;
                }
                bench_rmtree(out);
                sync(); /* the deletion reaches the disk before the next run */
                int keep = res.foreign <= 0.10 || attempt == 2;
                printf("| %d%s | %s | %.0f%% | %.0f | ", r + 1, keep ? "" : " (dropped)",
                       mpi ? "2 ranks x 1 thread" : "1 process x 2 threads", 100 * res.foreign, res.tps);
                if (mpi) printf("%.3f | %.1f%% |\n", res.allreduce, 100 * res.allreduce / res.step_sum);
                else printf("- | - |\n");
                fflush(stdout);
                if (!keep) continue;
                tps[mpi ? 0 : 1][r] = res.tps;
                if (mpi) share[r] = res.allreduce / res.step_sum;
                break;
            }
        }
    }
    double *ratio = malloc((size_t)reps * sizeof(double));
    for (int r = 0; r < reps; r++) ratio[r] = tps[0][r] / tps[1][r];
    bench_stats a = bench_summarize(tps[0], reps), b = bench_summarize(tps[1], reps), q = bench_summarize(ratio, reps),
                s = bench_summarize(share, reps);
    printf("\n| layout | tokens/s median [min-max] |\n|---|---|\n");
    printf("| 2 ranks x 1 thread (MPI) | %.0f [%.0f-%.0f] |\n", a.median, a.min, a.max);
    printf("| 1 process x 2 threads | %.0f [%.0f-%.0f] |\n", b.median, b.min, b.max);
    printf("\nthroughput ratio MPI / threads: %.3f [%.3f-%.3f] (per repetition)\n", q.median, q.min, q.max);
    printf("all-reduce share of the step time (2 ranks): %.1f%% [%.1f%%-%.1f%%]\n", 100 * s.median, 100 * s.min,
           100 * s.max);
    bench_rmtree(base);
    for (int k = 0; k < 2; k++) free(tps[k]);
    free(share);
    free(ratio);
    return 0;
}

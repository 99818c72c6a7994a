/* bench_train_step.c — one training step (forward + backward) of a ~25M-parameter
 * Mamba-2-Hybrid (d_model 512, 12 layers by Algorithm 1) and a Transformer of the same size, at
 * seq 1024, on 1 and 2 threads.  Prints tokens/s and achieved GFLOP/s (FLOPs counted per
 * layer kind, scans included) as a fraction of OpenBLAS sgemm GFLOP/s on a training-sized GEMM
 * (2048 x 2048 x 512, NT) measured in the same run, interleaved with the model steps.
 *
 * The models and the FLOP convention are in bench_models.h.
 * usage: bench_train_step [--reps N] [--batch B] [--seq T] [--threads 1,2] */
#include "bench_common.h"
#include "bench_models.h"
#include <math.h>

int main(int argc, char **argv) {
    int reps = 5;
    int64_t B = 2, T = 1024;
    int threads[2] = {1, 2}, nthreads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--seq") && i + 1 < argc) T = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            nthreads = sscanf(argv[++i], "%d,%d", &threads[0], &threads[1]);
        } else {
            fprintf(stderr, "usage: bench_train_step [--reps N] [--batch B] [--seq T] [--threads 1,2]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    ssmlm_config cfg[2];
    bench_model_config(&cfg[0], 0);
    bench_model_config(&cfg[1], 1);
    ssmlm_model *m[2];
    int32_t *ids = malloc((size_t)(B * T) * sizeof(int32_t)), *labels = malloc((size_t)(B * T) * sizeof(int32_t));
    for (int64_t i = 0; i < B * T; i++) {
        ids[i] = (int32_t)((i * 2654435761u) % 8192);
        labels[i] = (int32_t)(((i + 1) * 2654435761u) % 8192);
    }
    for (int k = 0; k < 2; k++) {
        if (ssmlm_model_create(&m[k], &cfg[k], SSMLM_F32) != SSMLM_OK) {
            fprintf(stderr, "error: %s\n", ssmlm_last_error());
            return 1;
        }
        ssmlm_model_init(m[k], 1);
        ssmlm_param_counts pc;
        ssmlm_config_count_params(&cfg[k], &pc);
        printf("%-16s pattern %-16s params %.2fM  FLOP/token %.1f M\n", cfg[k].name, cfg[k].pattern,
               (double)pc.total / 1e6, bench_flops_per_token(&cfg[k], T) / 1e6);
    }
    int64_t GM = 2048, GN = 2048, GK = 512;
    float *A = bench_random(GM * GK, 1), *Bw = bench_random(GN * GK, 2), *C = malloc((size_t)(GM * GN) * sizeof(float));
    printf("batch %lld x seq %lld, %d repetitions (median [min-max])\n\n", (long long)B, (long long)T, reps);
    printf("| threads | model | step s | tokens/s | GFLOP/s | sgemm GFLOP/s | fraction of sgemm |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (int ti = 0; ti < nthreads; ti++) {
        ssmlm_set_threads(threads[ti]);
        double *ts[2], *gs = malloc((size_t)reps * 2 * sizeof(double));
        for (int k = 0; k < 2; k++) ts[k] = malloc((size_t)reps * sizeof(double));
        double loss;
        for (int k = 0; k < 2; k++) { /* warm-up */
            ssmlm_model_forward(m[k], ids, labels, B, T, NULL, &loss);
            ssmlm_model_backward(m[k], 0);
        }
        bench_sgemm_once(GM, GN, GK, A, Bw, C);
        int ng = 0;
        for (int r = 0; r < reps; r++) {
            gs[ng++] = bench_sgemm_once(GM, GN, GK, A, Bw, C);
            for (int k = 0; k < 2; k++) {
                double t0 = bench_now();
                ssmlm_model_forward(m[k], ids, labels, B, T, NULL, &loss);
                ssmlm_model_backward(m[k], 0);
                ts[k][r] = bench_now() - t0;
            }
            gs[ng++] = bench_sgemm_once(GM, GN, GK, A, Bw, C);
        }
        bench_stats g = bench_summarize(gs, ng);
        double frac[2];
        for (int k = 0; k < 2; k++) {
            bench_stats s = bench_summarize(ts[k], reps);
            double tok = (double)(B * T) / s.median;
            double gf = tok * bench_flops_per_token(&cfg[k], T) / 1e9;
            frac[k] = gf / g.median;
            printf("| %d | %s | %.3f [%.3f-%.3f] | %.0f | %.1f | %.1f [%.1f-%.1f] | %.1f%% |\n", threads[ti], cfg[k].name,
                   s.median, s.min, s.max, tok, gf, g.median, g.min, g.max, 100 * frac[k]);
            free(ts[k]);
        }
        printf("| %d | hybrid / transformer fraction | | | | | %.1f%% |\n", threads[ti], 100 * frac[1] / frac[0]);
        free(gs);
    }
    for (int k = 0; k < 2; k++) ssmlm_model_free(m[k]);
    free(A);
    free(Bw);
    free(C);
    free(ids);
    free(labels);
    return 0;
}

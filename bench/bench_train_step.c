/* bench_train_step.c — one training step (forward + backward) of a ~25M-parameter
 * Mamba-2-Hybrid (d_model 512, 12 layers by Algorithm 1) and a Transformer of the same size, at
 * seq 1024, on 1 and 2 threads.  Prints tokens/s and achieved GFLOP/s (FLOPs counted per
 * layer kind, scans included) as a fraction of OpenBLAS sgemm GFLOP/s on a training-sized GEMM
 * (2048 x 2048 x 512, NT) measured in the same run, interleaved with the model steps.
 *
 * FLOP convention per token (forward + backward = 3x forward):
 *   6 x (matmul parameters, LM head included)
 *   + attention: 3 x 4 T_eff d per attention layer, T_eff = (T+1)/2 (causal: QK^T and PV)
 *   + Mamba-2 SSD: 3 x [2 H (Q P + 2 N P) + 2 Q N G]  (chunked form, math.md §3)
 *   + Mamba-1 scan: 3 x 9 E N
 * usage: bench_train_step [--reps N] [--batch B] [--seq T] [--threads 1,2] */
#include "bench_common.h"
#include <math.h>

static double flops_per_token(const ssmlm_config *c, int64_t T) {
    ssmlm_param_counts pc;
    ssmlm_config_count_params(c, &pc);
    /* matmul parameters: everything but the embedding lookup (counted via the head if tied),
     * norms, conv, and SSM vectors (small; counted as matmul, <0.5% error) */
    double matmul = (double)(pc.total - pc.embedding + (c->tie_embeddings ? pc.embedding : 0));
    double f = 6 * matmul;
    double t_eff = (double)(T + 1) / 2;
    double attn = 4 * t_eff * (double)(c->attn_heads * c->attn_head_dim);
    int64_t E = c->m2_expand * c->d_model, H = E / c->m2_headdim, Q = c->m2_chunk_size;
    double ssd = 2.0 * (double)H * ((double)Q * (double)c->m2_headdim + 2.0 * (double)c->m2_d_state * (double)c->m2_headdim) +
                 2.0 * (double)Q * (double)c->m2_d_state * (double)c->m2_ngroups;
    double m1 = 9.0 * (double)(c->m1_expand * c->d_model) * (double)c->m1_d_state;
    f += 3 * (double)pc.n_attention * attn;
    f += 3 * (double)pc.n_mamba * (c->ssm_kind == SSMLM_SSM_MAMBA2 ? ssd : m1);
    return f;
}

static void make_config(ssmlm_config *c, int hybrid) {
    ssmlm_config_defaults(c);
    c->d_model = 512;
    c->vocab_size = 8192;
    c->tie_embeddings = 1;
    c->attn_heads = 8;
    c->attn_kv_heads = hybrid ? 2 : 8;
    c->attn_head_dim = 64;
    c->mlp_hidden = 2048;
    if (hybrid) {
        snprintf(c->name, sizeof c->name, "hybrid-25m");
        ssmlm_pattern_allocate(12, 0.08, 0.5, c->pattern);
        c->n_layer = 12;
        c->mlp_act = SSMLM_ACT_GELU;
        c->m2_d_state = 128;
        c->m2_headdim = 64;
        c->m2_chunk_size = 64;
    } else {
        snprintf(c->name, sizeof c->name, "transformer-25m");
        strcpy(c->pattern, "*+*+*+*+*+*+*+");
        c->n_layer = 14;
        c->attn_rotary_dim = 32;
        c->mlp_act = SSMLM_ACT_RELU2;
        c->norm_kind = SSMLM_NORM_LAYER;
        c->norm_zero_centered = 1;
    }
}

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
    make_config(&cfg[0], 0);
    make_config(&cfg[1], 1);
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
               (double)pc.total / 1e6, flops_per_token(&cfg[k], T) / 1e6);
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
            double gf = tok * flops_per_token(&cfg[k], T) / 1e9;
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

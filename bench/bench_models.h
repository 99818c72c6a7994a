/* bench_models.h — what the training benchmarks share: the ~26M-parameter models of the step
 * benchmark (hybrid-25m, transformer-25m), their FLOP count per token, and a check of how much
 * CPU other processes used while a measurement ran, and removal of the benchmarks' temporary
 * folders.  Header-only.
 *
 * FLOP convention per token (forward + backward = 3x forward):
 *   6 x (matmul parameters, LM head included)
 *   + attention: 3 x 4 T_eff d per attention layer, T_eff = (T+1)/2 (causal: QK^T and PV)
 *   + Mamba-2 SSD: 3 x [2 H (Q P + 2 N P) + 2 Q N G]  (chunked form, math.md §3)
 *   + Mamba-1 scan: 3 x 9 E N */
#ifndef SSMLM_BENCH_MODELS_H
#define SSMLM_BENCH_MODELS_H

#include "ssmlm.h"
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static inline double bench_flops_per_token(const ssmlm_config *c, int64_t T) {
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

/* hybrid != 0: hybrid-25m, d_model 512, 12 layers by Algorithm 1 (12, 0.08, 0.5), GQA 8/2,
 * GELU MLP 2048; otherwise transformer-25m, 7 x (MHA 8 x 64 with half RoPE + squared-ReLU MLP
 * 2048), LayerNorm1p.  Both vocab 8192, tied. */
static inline void bench_model_config(ssmlm_config *c, int hybrid) {
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

/* ---- CPU used by other processes ----------------------------------------------------------
 * busy = all CPU time of the machine (/proc/stat minus idle and iowait; time stolen by the
 * host counts as busy); own = this process and its waited-for descendants (/proc/self/stat
 * utime + stime + cutime + cstime).  Between two samples, (busy - own) / (elapsed x CPUs) is
 * the share of the machine that other processes took: a measurement with a large share ran on
 * a busy machine. */
typedef struct bench_cpu_sample { double busy, total, own; } bench_cpu_sample;

static inline bench_cpu_sample bench_cpu_now(void) {
    bench_cpu_sample s = {0, 0, 0};
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        unsigned long long v[10] = {0};
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7], &v[8], &v[9]) >= 8) {
            double tot = 0;
            for (int i = 0; i < 8; i++) tot += (double)v[i]; /* guest time is already in user */
            s.total = tot;
            s.busy = tot - (double)v[3] - (double)v[4];
        }
        fclose(f);
    }
    f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
        unsigned long long ut = 0, st = 0, cut = 0, cst = 0;
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &ut, &st, &cut, &cst) == 4)
            s.own = (double)(ut + st + cut + cst);
        fclose(f);
    }
    return s;
}

/* Share of all CPUs (0..1) that other processes used between a and b (0 when unknown). */
static inline double bench_cpu_foreign(bench_cpu_sample a, bench_cpu_sample b) {
    double tot = b.total - a.total;
    if (tot <= 0) return 0;
    double f = ((b.busy - a.busy) - (b.own - a.own)) / tot;
    return f < 0 ? 0 : f;
}

/* Waits until other processes use at most `share` of the CPUs over a 0.5 s window, or until
 * max_s seconds passed; returns the last window's share. */
static inline double bench_wait_quiet(double share, double max_s) {
    struct timespec half = {0, 500000000L};
    double waited = 0, f = 0;
    for (;;) {
        bench_cpu_sample a = bench_cpu_now();
        nanosleep(&half, NULL);
        f = bench_cpu_foreign(a, bench_cpu_now());
        waited += 0.5;
        if (f <= share || waited >= max_s) return f;
    }
}

/* ---- temporary folders -------------------------------------------------------------------- */
static int bench_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Removes a folder and everything below it (symbolic links are not followed). */
static inline void bench_rmtree(const char *dir) { nftw(dir, bench_rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* Per-step seconds of a training run, from its metrics.jsonl (tokens per step / tok_per_s);
 * returns the number of steps read. */
static inline int bench_read_step_times(const char *dir, double tokens_per_step, double *dt, int max) {
    char p[1024], line[1024];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    FILE *f = fopen(p, "r");
    int n = 0;
    if (!f) return 0;
    while (n < max && fgets(line, sizeof line, f)) {
        const char *q = strstr(line, "\"tok_per_s\":");
        if (q && atof(q + 12) > 0) dt[n++] = tokens_per_step / atof(q + 12);
    }
    fclose(f);
    return n;
}

#endif

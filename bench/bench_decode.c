/* bench_decode.c — decode speed (one token per sequence through ssmlm_model_step), fp32, against
 * the memory-bandwidth roofline measured in the same run.
 *
 *   BW      read-only sum over a 1 GiB float array, 2 threads, 64 independent accumulators per
 *           thread; median of 5 passes, GB = 1e9 bytes.
 *   bytes per step (B sequences at context L):
 *           4 x (parameters read per step: every weight matrix once, the tied embedding/LM head
 *                counted once; an untied embedding table is only looked up, so not counted)
 *           + B x (2 x fixed state bytes (read and written) + L x KV bytes per position)
 *   roofline step time = bytes per step / BW; fraction = roofline time / measured time.
 *
 * Part 1: short context (prefill 64, then 64 timed steps, median over repetitions), batch 1,
 *         mamba2-130m, hybrid-130m, transformer-130m.
 * Part 2: time per step vs context (paper Figure 5): transformer-130m and hybrid-130m, one
 *         prefill per model, context and batch, then timed steps; speedup hybrid vs transformer
 *         next to the speedup predicted from bytes per step.
 * OpenMP waiting threads: unless OMP_WAIT_POLICY is set, the program re-executes itself with
 * OMP_WAIT_POLICY=passive (spinning OpenMP workers starve OpenBLAS's own threads in the step's
 * matrix-vector products; run with OMP_WAIT_POLICY=active to see the default behaviour).
 * Usage: bench_decode [--ctx 1024,4096] [--batch 1,8] [--reps 5] [--steps 32] [--short-only]
 *        [--model NAME --ctx L --batch B --steps S]  (one configuration, for profiling) */
#include "bench_common.h"
#include "bench_models.h"
#include <omp.h>
#include <stdint.h>
#include <unistd.h>

#define MAXN 16
#define THREADS 2

/* ---- memory bandwidth ------------------------------------------------------------------- */
static float bw_sum(const float *x, int64_t n) {
    float total = 0;
#pragma omp parallel num_threads(THREADS) reduction(+ : total)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t per = (n / nt) & ~(int64_t)63, lo = per * t, hi = t == nt - 1 ? n : lo + per;
        float acc[64] = {0};
        int64_t i = lo;
        for (; i + 64 <= hi; i += 64)
            for (int k = 0; k < 64; k++) acc[k] += x[i + k];
        for (; i < hi; i++) acc[0] += x[i];
        float s = 0;
        for (int k = 0; k < 64; k++) s += acc[k];
        total += s;
    }
    return total;
}

static double measure_bw(void) {
    const int64_t n = (int64_t)1 << 28; /* 1 GiB of floats */
    float *x = malloc((size_t)n * sizeof *x);
    if (!x) return 0;
#pragma omp parallel for num_threads(THREADS) schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = (float)(i & 7) * 0.125f;
    volatile float sink = bw_sum(x, n); /* warm-up */
    double t[5];
    for (int r = 0; r < 5; r++) {
        double t0 = bench_now();
        sink += bw_sum(x, n);
        t[r] = (double)n * sizeof(float) / (bench_now() - t0) / 1e9;
    }
    (void)sink;
    free(x);
    return bench_summarize(t, 5).median;
}

/* ---- models ------------------------------------------------------------------------------ */
typedef struct decode_model {
    ssmlm_config c;
    ssmlm_model *m;
    double param_bytes; /* weights read per step */
    double fixed, kv;   /* state bytes per sequence: fixed, KV per position */
} decode_model;

static int model_open(decode_model *d, const char *preset) {
    memset(d, 0, sizeof *d);
    if (ssmlm_preset(&d->c, preset) != SSMLM_OK || ssmlm_model_create(&d->m, &d->c, SSMLM_F32) != SSMLM_OK) {
        fprintf(stderr, "bench_decode: %s: %s\n", preset, ssmlm_last_error());
        return 0;
    }
    ssmlm_model_init(d->m, 1);
    ssmlm_param_counts pc;
    ssmlm_config_count_params(&d->c, &pc);
    d->param_bytes = 4.0 * (double)(pc.total - (d->c.tie_embeddings ? 0 : pc.embedding));
    size_t fixed, kv;
    ssmlm_state_plan(&d->c, &fixed, &kv, SSMLM_F32);
    d->fixed = (double)fixed;
    d->kv = (double)kv;
    return 1;
}

static double step_bytes(const decode_model *d, int64_t B, double ctx) {
    return d->param_bytes + (double)B * (2.0 * d->fixed + ctx * d->kv);
}

/* Prefills B sequences of L tokens (L >= 1), then times `steps` single steps; writes the
 * per-step seconds to t[0..steps).  Returns 0 on failure. */
static int run_decode(decode_model *d, int64_t B, int64_t L, int steps, double *t, double *prefill_s) {
    ssmlm_state *s = NULL;
    int32_t *ids = malloc((size_t)(B * L) * sizeof *ids);
    float *logits = malloc((size_t)(B * ssmlm_config_vocab_padded(&d->c)) * sizeof *logits);
    int ok = ids && logits && ssmlm_state_create(&s, d->m, B, L + steps) == SSMLM_OK;
    for (int64_t i = 0; ok && i < B * L; i++) ids[i] = (int32_t)((i * 7919 + 13) % d->c.vocab_size);
    double t0 = bench_now();
    if (ok) ok = ssmlm_model_prefill(d->m, s, ids, L, NULL) == SSMLM_OK;
    if (prefill_s) *prefill_s = bench_now() - t0;
    for (int k = 0; ok && k < steps; k++) {
        for (int64_t b = 0; b < B; b++) ids[b] = (int32_t)((k * 31 + b * 101 + 5) % d->c.vocab_size);
        double a = bench_now();
        ok = ssmlm_model_step(d->m, s, ids, logits) == SSMLM_OK;
        t[k] = bench_now() - a;
    }
    if (!ok) fprintf(stderr, "bench_decode: %s B=%lld L=%lld: %s\n", d->c.name, (long long)B, (long long)L, ssmlm_last_error());
    ssmlm_state_free(s);
    free(ids);
    free(logits);
    return ok;
}

static int parse_list(const char *s, int64_t *out) {
    int n = 0;
    while (*s && n < MAXN) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 1) return 0;
        out[n++] = v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return 0;
    }
    return n;
}

int main(int argc, char **argv) {
    /* libgomp reads OMP_WAIT_POLICY once, at load: set it by re-executing (see RESULTS.md) */
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
    }
    int64_t ctx[MAXN] = {1024, 4096}, batch[MAXN] = {1, 8};
    int nctx = 2, nbatch = 2, reps = 5, steps = 32, short_only = 0;
    const char *one = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ctx") && i + 1 < argc) nctx = parse_list(argv[++i], ctx);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) nbatch = parse_list(argv[++i], batch);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) one = argv[++i];
        else if (!strcmp(argv[i], "--short-only")) short_only = 1;
        else {
            fprintf(stderr, "usage: bench_decode [--ctx L,L..] [--batch B,B..] [--reps N] [--steps S] [--short-only] [--model NAME]\n");
            return 2;
        }
    }
    if (nctx < 1 || nbatch < 1 || reps < 1 || reps > 64 || steps < 2) {
        fprintf(stderr, "bench_decode: bad arguments\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    ssmlm_set_threads(THREADS);
    double *t = malloc((size_t)(steps > 64 ? steps : 64) * sizeof *t);

    if (one) { /* one configuration, for profiling */
        decode_model d;
        if (!model_open(&d, one)) return 1;
        double pf;
        if (!run_decode(&d, batch[0], ctx[0], steps, t, &pf)) return 1;
        bench_stats st = bench_summarize(t, steps);
        printf("%s B=%lld L=%lld: prefill %.2f s, step %.3f ms [%.3f-%.3f]\n", one, (long long)batch[0],
               (long long)ctx[0], pf, 1e3 * st.median, 1e3 * st.min, 1e3 * st.max);
        ssmlm_model_free(d.m);
        free(t);
        return 0;
    }

    double foreign = bench_wait_quiet(0.10, 30);
    bench_cpu_sample c0 = bench_cpu_now();
    double bw = measure_bw();
    printf("OMP_WAIT_POLICY=%s\n\n", getenv("OMP_WAIT_POLICY"));
    printf("## Decode, fp32, %d threads\n\nmemory bandwidth (1 GiB read-only sum, %d threads, median of 5): **%.1f GB/s**"
           " (other processes before: %.0f%% of CPUs)\n\n",
           THREADS, THREADS, bw, 100 * foreign);

    /* Part 1: short context, batch 1 */
    const char *shortm[3] = {"mamba2-130m", "hybrid-130m", "transformer-130m"};
    printf("Batch 1, prefill 64 then 64 timed steps, %d repetitions (per-token time = mean of a repetition's 64 steps; "
           "median [min-max] over repetitions)\n\n",
           reps);
    printf("| model | params | MB read / token | roofline tok/s | ms / token | tokens/s | fraction of roofline |\n"
           "|---|---|---|---|---|---|---|\n");
    for (int mi = 0; mi < 3; mi++) {
        decode_model d;
        if (!model_open(&d, shortm[mi])) return 1;
        double per[64], st64[64];
        for (int r = 0; r < reps; r++) {
            if (!run_decode(&d, 1, 64, 64, st64, NULL)) return 1;
            double sum = 0;
            for (int k = 0; k < 64; k++) sum += st64[k];
            per[r] = sum / 64;
        }
        bench_stats st = bench_summarize(per, reps);
        double bytes = step_bytes(&d, 1, 64 + 32); /* mean context over the timed steps */
        double roof = bw * 1e9 / bytes;
        printf("| %s | %.1fM | %.1f | %.1f | %.2f [%.2f-%.2f] | %.1f | %.1f%% |\n", shortm[mi], d.param_bytes / 4e6,
               bytes / 1e6, roof, 1e3 * st.median, 1e3 * st.min, 1e3 * st.max, 1 / st.median,
               100 * (1 / st.median) / roof);
        fflush(stdout);
        ssmlm_model_free(d.m);
    }
    printf("\nother processes during part 1: %.0f%% of CPUs\n\n", 100 * bench_cpu_foreign(c0, bench_cpu_now()));
    if (short_only) {
        free(t);
        return 0;
    }

    /* Part 2: time per step vs context, transformer vs hybrid */
    const char *figm[2] = {"transformer-130m", "hybrid-130m"};
    double meas[2][MAXN][MAXN], pred[2][MAXN][MAXN];
    c0 = bench_cpu_now();
    printf("Time per decode step vs context (one prefill per model, context and batch; %d timed steps, median [min-max])\n\n"
           "| model | batch | context | prefill s | ms / step | ms / token | MB read / step | roofline ms / step | fraction |\n"
           "|---|---|---|---|---|---|---|---|---|\n",
           steps);
    for (int mi = 0; mi < 2; mi++) {
        decode_model d;
        if (!model_open(&d, figm[mi])) return 1;
        for (int bi = 0; bi < nbatch; bi++)
            for (int ci = 0; ci < nctx; ci++) {
                double pf;
                if (!run_decode(&d, batch[bi], ctx[ci], steps, t, &pf)) return 1;
                bench_stats st = bench_summarize(t, steps);
                double bytes = step_bytes(&d, batch[bi], (double)ctx[ci] + 0.5 * steps);
                meas[mi][bi][ci] = st.median;
                pred[mi][bi][ci] = bytes / (bw * 1e9);
                printf("| %s | %lld | %lld | %.1f | %.2f [%.2f-%.2f] | %.3f | %.1f | %.2f | %.1f%% |\n", figm[mi],
                       (long long)batch[bi], (long long)ctx[ci], pf, 1e3 * st.median, 1e3 * st.min, 1e3 * st.max,
                       1e3 * st.median / (double)batch[bi], bytes / 1e6, 1e3 * pred[mi][bi][ci],
                       100 * pred[mi][bi][ci] / st.median);
                fflush(stdout);
            }
        ssmlm_model_free(d.m);
    }
    printf("\nother processes during part 2: %.0f%% of CPUs\n\n", 100 * bench_cpu_foreign(c0, bench_cpu_now()));
    printf("Speedup of hybrid-130m over transformer-130m per decode step\n\n"
           "| batch | context | measured | predicted from bytes | measured / predicted |\n|---|---|---|---|---|\n");
    for (int bi = 0; bi < nbatch; bi++)
        for (int ci = 0; ci < nctx; ci++) {
            double m = meas[0][bi][ci] / meas[1][bi][ci], p = pred[0][bi][ci] / pred[1][bi][ci];
            printf("| %lld | %lld | %.2fx | %.2fx | %.2f |\n", (long long)batch[bi], (long long)ctx[ci], m, p, m / p);
        }
    free(t);
    return 0;
}

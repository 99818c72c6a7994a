/* bench_decode.c — decode speed (one token per sequence through ssmlm_model_step), fp32 and bf16
 * weights, against
 * the memory-bandwidth roofline measured in the same run; prefill speed against the training
 * forward.
 *
 *   BW      read-only sum over a 1 GiB float array, 2 threads, 64 independent accumulators per
 *           thread, GB = 1e9 bytes; sampled (median of 3 passes) next to every timing it is
 *           compared with, since the bandwidth of a virtual machine drifts (see bw_init).
 *   bytes per step (B sequences at context L):
 *           (bytes of the parameters read per step, as stored: 4 per fp32 value, 2 per bf16 one;
 *            every weight matrix once, the tied embedding/LM head counted once; an untied
 *            embedding table is only looked up, so not counted)
 *           + B x (2 x fixed state bytes (read and written) + L x KV bytes per position)
 *   roofline step time = bytes per step / BW; fraction = roofline time / measured time.
 *
 * Part 1: short context (prefill 64, then 64 timed steps, median over repetitions), batch 1:
 *         mamba2-130m, hybrid-130m, transformer-130m and the ~1B models hybrid-840m and
 *         transformer-840m (d_model 1024, 48 layers; --no-1b leaves them out), each with fp32
 *         and with bf16 weights (SSMLM_MODEL_BF16_WEIGHTS), and the bf16 / fp32 speedup; the two
 *         weight settings alternate, each repetition after its own bandwidth sample.
 * Part 2: time per step vs context (paper Figure 5): transformer-130m and hybrid-130m at each
 *         batch and context, timed in alternating rounds; the speedup of the hybrid next to the speedup
 *         predicted from bytes per step; an SVG plot of ms per generated token vs context
 *         (log-log) to --svg PATH (default bench/fig5_decode.svg when run from the repository
 *         root, else fig5_decode.svg).
 *         The state at context L comes from (--fill):
 *           synthetic  (default) a real prefill of a short prompt (--prompt, 64 tokens), then
 *                      KV cache rows prompt..L-1 of every attention layer filled with uniform
 *                      values in [-1, 1] and every position set to L (the Mamba states are
 *                      those of the real prompt): a decode step costs the same as after a
 *                      real prefill of L tokens, which takes minutes at 16K-32K x batch 8;
 *           real       ssmlm_model_prefill_one of L tokens per sequence.
 *         A configuration whose state does not fit in 70% of the available memory is skipped
 *         (printed with the reason; e.g. transformer-130m KV at 32K x batch 8 is 19 GB).
 * Part 3: prefill vs decode vs training forward, batch 1, the 130m models: one prompt of
 *         --prefill-len tokens (2048) through ssmlm_model_prefill and through
 *         ssmlm_model_forward (with labels, as in training), same threads; decode tokens/s at
 *         that context (synthetic state).
 * Part 4: the paper's hybrid-8b with bf16 weights (about 17 GB; constant +-0.001 weights, the
 *         timing does not depend on the values, but each page is written: see touch_weights) at context --ctx8b (4096), batch 1, synthetic state: ms per
 *         token against its roofline.  Not in the default --parts (it needs ~18 GB free).
 * OpenMP waiting threads: as the ssmlm program (ssmlm_threads_init): with the OpenMP build of
 * OpenBLAS the libgomp default; with its pthreads build OMP_WAIT_POLICY=passive unless set.
 * Usage: bench_decode [--parts 1,2,3] [--ctx 1024,4096,16384,32768] [--batch 1,8] [--reps 5]
 *        [--steps 32] [--fill synthetic|real] [--prompt 64] [--svg PATH]
 *        [--prefill-len 2048] [--no-1b] [--short-only (= --parts 1)] [--ctx8b 4096]
 *        [--model NAME [--bf16] --ctx L --batch B --steps S]  (one configuration, for profiling) */
#include "bench_common.h"
#include "bench_models.h"
#include "eval/svg.h"
#include "model/model.h"
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <sys/stat.h>
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

/* The bandwidth baseline: this guest's memory bandwidth drifts by up to ~1.5x within minutes
 * (31-53 GB/s seen), so it is sampled next to every timing it is compared with, not once per
 * run.  One 1 GiB array, written once; bw_sample: median of `passes` sums, GB/s. */
static float *g_bw_x;
static const int64_t g_bw_n = (int64_t)1 << 28; /* 1 GiB of floats */

static int bw_init(void) {
    g_bw_x = malloc((size_t)g_bw_n * sizeof *g_bw_x);
    if (!g_bw_x) return 0;
#pragma omp parallel for num_threads(THREADS) schedule(static)
    for (int64_t i = 0; i < g_bw_n; i++) g_bw_x[i] = (float)(i & 7) * 0.125f;
    volatile float sink = bw_sum(g_bw_x, g_bw_n); /* warm-up */
    (void)sink;
    return 1;
}

static double bw_sample(int passes) {
    double t[8];
    volatile float sink = 0;
    if (passes > 8) passes = 8;
    for (int r = 0; r < passes; r++) {
        double t0 = bench_now();
        sink += bw_sum(g_bw_x, g_bw_n);
        t[r] = (double)g_bw_n * sizeof(float) / (bench_now() - t0) / 1e9;
    }
    (void)sink;
    return bench_summarize(t, passes).median;
}

/* Bytes the system could still give this process (MemAvailable), 0 when unknown. */
static double mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024;
}

/* ---- options ------------------------------------------------------------------------------ */
typedef struct options {
    int64_t ctx[MAXN], batch[MAXN];
    int nctx, nbatch, reps, steps, synthetic, with_1b, parts, bf16;
    int64_t prompt, prefill_len, ctx8b;
    const char *svg, *one;
} options;

/* ---- models ------------------------------------------------------------------------------ */
typedef struct decode_model {
    ssmlm_config c;
    ssmlm_model *m;
    double param_bytes; /* weights read per step */
    double fixed, kv;   /* state bytes per sequence: fixed, KV per position */
} decode_model;

/* bf16: the model with SSMLM_MODEL_BF16_WEIGHTS; init 0 leaves the weights zero. */
static int model_open(decode_model *d, const char *preset, int bf16, int init) {
    memset(d, 0, sizeof *d);
    if (ssmlm_preset(&d->c, preset) != SSMLM_OK ||
        ssmlm_model_create_ex(&d->m, &d->c, SSMLM_F32, bf16 ? SSMLM_MODEL_BF16_WEIGHTS : 0) != SSMLM_OK) {
        fprintf(stderr, "bench_decode: %s: %s\n", preset, ssmlm_last_error());
        return 0;
    }
    if (init) ssmlm_model_init(d->m, 1);
    ssmlm_param_counts pc;
    ssmlm_config_count_params(&d->c, &pc);
    /* the embedding table is a matrix: bf16 in a bf16-weight model */
    d->param_bytes = (double)ssmlm_model_weight_bytes(d->m) -
                     (d->c.tie_embeddings ? 0.0 : (bf16 ? 2.0 : 4.0) * (double)pc.embedding);
    size_t fixed, kv;
    ssmlm_state_plan(&d->c, &fixed, &kv, SSMLM_F32);
    d->fixed = (double)fixed;
    d->kv = (double)kv;
    return 1;
}

static double step_bytes(const decode_model *d, int64_t B, double ctx) {
    return d->param_bytes + (double)B * (2.0 * d->fixed + ctx * d->kv);
}

/* Bytes a run at batch B, context L needs beyond the model: the state, and with real prefill
 * the activations of one sequence's forward. */
static double run_bytes(const decode_model *d, int64_t B, int64_t L, int steps, int synthetic) {
    double st = (double)B * (d->fixed + (double)(L + steps) * d->kv);
    return st + (double)ssmlm_config_activation_bytes(&d->c, 1, synthetic ? 64 : L);
}

/* Synthetic context: positions P..L-1 of every attention layer's KV cache get uniform values
 * in [-1, 1] (a fixed LCG per row), and every sequence's position becomes L. */
static void fill_synthetic(const decode_model *d, ssmlm_state *s, int64_t P, int64_t L) {
    const ssmlm_config *c = &d->c;
    int64_t kv = ssmlm_attention_state_size(c, 1) - ssmlm_attention_state_size(c, 0);
    for (int l = 0; l < c->n_layer; l++) {
        if (c->pattern[l] != '*') continue;
        int64_t ss = model_layer_state_size(c, l, s->cap);
        float *base = (float *)s->data + s->layer_off[l];
#pragma omp parallel for num_threads(THREADS) schedule(static) collapse(2)
        for (int64_t b = 0; b < s->B; b++)
            for (int64_t t = P; t < L; t++) {
                float *row = base + b * ss + t * kv;
                uint32_t r = (uint32_t)(t * 2654435761u + (uint64_t)b * 40503u + (uint64_t)l * 97u);
                for (int64_t e = 0; e < kv; e++) {
                    r = r * 1664525u + 1013904223u;
                    row[e] = (float)(r >> 8) * (2.0f / 16777216.0f) - 1.0f;
                }
            }
    }
    for (int64_t b = 0; b < s->B; b++) s->pos[b] = L;
}

/* A decode run: B sequences brought to context L (real prefill or synthetic, see the file
 * header), then timed single steps. */
typedef struct decode_run {
    decode_model *d;
    ssmlm_state *s;
    int32_t *ids;
    float *logits;
    int64_t B, L;
    int k; /* steps taken */
} decode_run;

static void run_free(decode_run *r) {
    ssmlm_state_free(r->s);
    free(r->ids);
    free(r->logits);
    memset(r, 0, sizeof *r);
}

/* Builds the state (room for max_steps steps); *setup_s = seconds taken.  0 on failure. */
static int run_setup(decode_run *r, decode_model *d, int64_t B, int64_t L, int max_steps, int synthetic,
                     int64_t prompt, double *setup_s) {
    memset(r, 0, sizeof *r);
    r->d = d, r->B = B, r->L = L;
    int64_t P = synthetic && prompt < L ? prompt : L;
    r->ids = malloc((size_t)(B > P ? B : P) * sizeof *r->ids);
    r->logits = malloc((size_t)(B * ssmlm_config_vocab_padded(&d->c)) * sizeof *r->logits);
    int ok = r->ids && r->logits && ssmlm_state_create(&r->s, d->m, B, L + max_steps) == SSMLM_OK;
    double t0 = bench_now();
    for (int64_t b = 0; ok && b < B; b++) {
        for (int64_t i = 0; i < P; i++) r->ids[i] = (int32_t)(((b * P + i) * 7919 + 13) % d->c.vocab_size);
        ok = ssmlm_model_prefill_one(d->m, r->s, b, r->ids, P, NULL) == SSMLM_OK;
    }
    if (ok && P < L) fill_synthetic(d, r->s, P, L);
    if (setup_s) *setup_s = bench_now() - t0;
    if (!ok) {
        fprintf(stderr, "bench_decode: %s B=%lld L=%lld: %s\n", d->c.name, (long long)B, (long long)L,
                ssmlm_last_error());
        run_free(r);
    }
    return ok;
}

/* Times n more steps, seconds of each into t[0..n).  0 on failure. */
static int run_steps(decode_run *r, int n, double *t) {
    for (int i = 0; i < n; i++, r->k++) {
        for (int64_t b = 0; b < r->B; b++) r->ids[b] = (int32_t)((r->k * 31 + b * 101 + 5) % r->d->c.vocab_size);
        double a = bench_now();
        if (ssmlm_model_step(r->d->m, r->s, r->ids, r->logits) != SSMLM_OK) {
            fprintf(stderr, "bench_decode: %s step: %s\n", r->d->c.name, ssmlm_last_error());
            return 0;
        }
        t[i] = bench_now() - a;
    }
    return 1;
}

/* Setup, `steps` timed steps (t[0..steps)), free. */
static int run_decode(decode_model *d, int64_t B, int64_t L, int steps, int synthetic, int64_t prompt,
                      double *t, double *setup_s) {
    decode_run r;
    if (!run_setup(&r, d, B, L, steps, synthetic, prompt, setup_s)) return 0;
    int ok = run_steps(&r, steps, t);
    run_free(&r);
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

/* ---- part 1: short context, batch 1, fp32 and bf16 weights ---------------------------------- */
/* Both weight settings of a model are timed in alternation, each repetition next to its own
 * bandwidth sample: a repetition's fraction of the roofline uses the bandwidth measured just
 * before it, and the bf16 / fp32 speedup pairs repetitions taken seconds apart. */
static int part_short(const options *o) {
    const char *names[5] = {"mamba2-130m", "hybrid-130m", "transformer-130m", "hybrid-840m", "transformer-840m"};
    static const char *const wname[2] = {"fp32", "bf16"};
    int nm = o->with_1b ? 5 : 3, R = o->reps;
    bench_cpu_sample c0 = bench_cpu_now();
    printf("Batch 1, prefill 64 then 64 timed steps; %d repetitions, fp32 and bf16 alternating, each after its own "
           "bandwidth sample (median of 3 sums over 1 GiB). Per repetition: per-token time = mean of its 64 steps, "
           "fraction = (bytes / the bandwidth just measured) / that time. Median [min-max] over repetitions; "
           "bf16 / fp32 = median of the paired repetitions' ratios.\n\n",
           R);
    printf("| model | weights | params | MB read / token | bandwidth GB/s | ms / token | tokens/s | fraction of roofline "
           "| bf16 / fp32 tok/s |\n|---|---|---|---|---|---|---|---|---|\n");
    for (int mi = 0; mi < nm; mi++) {
        decode_model d[2];
        double per[2][64], bw[2][64], frac[2][64], ratio[64], bytes[2], st64[64];
        for (int w = 0; w < 2; w++) {
            if (!model_open(&d[w], names[mi], w, 1)) return 0;
            bytes[w] = step_bytes(&d[w], 1, 64 + 32.5); /* mean context over the timed steps */
        }
        for (int r = 0; r < R; r++) {
            for (int w = 0; w < 2; w++) {
                bw[w][r] = bw_sample(3);
                if (!run_decode(&d[w], 1, 64, 64, 0, 64, st64, NULL)) return 0;
                double sum = 0;
                for (int k = 0; k < 64; k++) sum += st64[k];
                per[w][r] = sum / 64;
                frac[w][r] = bytes[w] / (bw[w][r] * 1e9) / per[w][r];
            }
            ratio[r] = per[0][r] / per[1][r];
        }
        ssmlm_param_counts pc;
        ssmlm_config_count_params(&d[0].c, &pc);
        for (int w = 0; w < 2; w++) {
            bench_stats t = bench_summarize(per[w], R), b = bench_summarize(bw[w], R), f = bench_summarize(frac[w], R);
            char rs[64] = "";
            if (w) {
                bench_stats q = bench_summarize(ratio, R);
                snprintf(rs, sizeof rs, "**%.2fx** [%.2f-%.2f]", q.median, q.min, q.max);
            }
            printf("| %s | %s | %.1fM | %.1f | %.1f [%.1f-%.1f] | %.2f [%.2f-%.2f] | %.1f | **%.1f%%** [%.0f-%.0f] | %s |\n",
                   names[mi], wname[w], (double)(pc.total - (d[w].c.tie_embeddings ? 0 : pc.embedding)) / 1e6,
                   bytes[w] / 1e6, b.median, b.min, b.max, 1e3 * t.median, 1e3 * t.min, 1e3 * t.max, 1 / t.median,
                   100 * f.median, 100 * f.min, 100 * f.max, rs);
        }
        for (int w = 0; w < 2; w++) ssmlm_model_free(d[w].m);
    }
    printf("\nparams = parameters read per token (an untied embedding table is only looked up). "
           "Other processes during part 1: %.0f%% of CPUs\n\n",
           100 * bench_cpu_foreign(c0, bench_cpu_now()));
    return 1;
}

/* ---- part 2: time per step vs context (Figure 5) ------------------------------------------ */
static void write_svg(const options *o, const char *const *names, double meas[2][MAXN][MAXN]) {
    static const char *colors[2] = {"#d62728", "#1f77b4"};
    ssmlm_plot_series ser[2 * MAXN];
    char label[2 * MAXN][64];
    double x[MAXN], y[2 * MAXN][MAXN];
    int ns = 0;
    for (int ci = 0; ci < o->nctx; ci++) x[ci] = (double)o->ctx[ci];
    for (int mi = 0; mi < 2; mi++)
        for (int bi = 0; bi < o->nbatch; bi++, ns++) {
            for (int ci = 0; ci < o->nctx; ci++) /* ms per generated token; NaN (skipped) leaves a gap */
                y[ns][ci] = 1e3 * meas[mi][bi][ci] / (double)o->batch[bi];
            snprintf(label[ns], sizeof label[ns], "%s, batch %lld", names[mi], (long long)o->batch[bi]);
            ser[ns] = (ssmlm_plot_series){.name = label[ns], .x = x, .y = y[ns], .n = o->nctx,
                                          .color = colors[mi], .dashed = bi > 0};
        }
    ssmlm_plot p = {.title = "Decode time per generated token vs context (fp32, 2 threads)",
                    .xlabel = "context (tokens)", .ylabel = "ms per generated token", .log_x = 1, .log_y = 1,
                    .series = ser, .n_series = ns};
    if (ssmlm_svg_plot(o->svg, &p) == SSMLM_OK) printf("plot: %s\n\n", o->svg);
    else fprintf(stderr, "bench_decode: %s: %s\n", o->svg, ssmlm_last_error());
}

/* The two models at one batch and context are timed in alternation: ROUNDS rounds, each a
 * bandwidth sample, then steps / ROUNDS steps of each model (both states built first when both
 * fit in memory together; otherwise one model after the other, each round still after its own
 * bandwidth sample).  A model's predicted time uses the median of its rounds' bandwidth. */
#define ROUNDS 4
static int part_context(const options *o) {
    const char *names[2] = {"transformer-130m", "hybrid-130m"};
    double meas[2][MAXN][MAXN], pred[2][MAXN][MAXN], byte_ratio[MAXN][MAXN];
    int chunk = o->steps / ROUNDS > 0 ? o->steps / ROUNDS : 1, total = chunk * ROUNDS;
    double *t = malloc((size_t)total * sizeof *t), *tt[2] = {malloc((size_t)total * sizeof(double)),
                                                              malloc((size_t)total * sizeof(double))};
    if (!t || !tt[0] || !tt[1]) return 0;
    bench_cpu_sample c0 = bench_cpu_now();
    if (o->synthetic)
        printf("Time per decode step vs context; state: synthetic (real prefill of %lld tokens per sequence, then KV rows "
               "up to the context filled with uniform [-1, 1] values); %d timed steps in %d rounds alternating the two "
               "models, each round after a bandwidth sample (median of 3 sums over 1 GiB); median [min-max]\n\n",
               (long long)o->prompt, total, ROUNDS);
    else
        printf("Time per decode step vs context; state: real prefill of the whole context, one sequence at a time; %d timed "
               "steps in %d rounds alternating the two models, each round after a bandwidth sample; median [min-max]\n\n",
               total, ROUNDS);
    printf("| model | batch | context | setup s | ms / step | ms / token | MB read / step | bandwidth GB/s | roofline ms / step "
           "| fraction |\n|---|---|---|---|---|---|---|---|---|---|\n");
    decode_model d[2];
    for (int mi = 0; mi < 2; mi++)
        if (!model_open(&d[mi], names[mi], 0, 1)) return 0;
    for (int bi = 0; bi < o->nbatch; bi++)
        for (int ci = 0; ci < o->nctx; ci++) {
            int64_t B = o->batch[bi], L = o->ctx[ci];
            double need[2], avail = mem_available(), bytes[2], setup[2] = {0, 0}, bws[2][ROUNDS];
            int fits[2];
            for (int mi = 0; mi < 2; mi++) {
                need[mi] = run_bytes(&d[mi], B, L, total, o->synthetic);
                fits[mi] = !(avail > 0 && need[mi] > 0.7 * avail);
                bytes[mi] = step_bytes(&d[mi], B, (double)L + 0.5 * (total + 1));
                meas[mi][bi][ci] = NAN;
            }
            byte_ratio[bi][ci] = bytes[0] / bytes[1];
            int together = fits[0] && fits[1] && !(avail > 0 && need[0] + need[1] > 0.7 * avail);
            /* groups of models timed together: {0, 1}, or each fitting model alone */
            int groups[2][2], gsize[2], ng = 0;
            if (together) groups[0][0] = 0, groups[0][1] = 1, gsize[0] = 2, ng = 1;
            else
                for (int mi = 0; mi < 2; mi++)
                    if (fits[mi]) groups[ng][0] = mi, gsize[ng++] = 1;
            for (int g = 0; g < ng; g++) {
                decode_run run[2];
                for (int k = 0; k < gsize[g]; k++) {
                    int mi = groups[g][k];
                    if (!run_setup(&run[k], &d[mi], B, L, total, o->synthetic, o->prompt, &setup[mi])) return 0;
                }
                for (int r = 0; r < ROUNDS; r++)
                    for (int k = 0; k < gsize[g]; k++) {
                        int mi = groups[g][k];
                        bws[mi][r] = bw_sample(3);
                        if (!run_steps(&run[k], chunk, t)) return 0;
                        memcpy(tt[mi] + r * chunk, t, (size_t)chunk * sizeof *t);
                    }
                for (int k = 0; k < gsize[g]; k++) run_free(&run[k]);
            }
            for (int mi = 0; mi < 2; mi++) {
                if (!fits[mi]) {
                    pred[mi][bi][ci] = NAN;
                    printf("| %s | %lld | %lld | skipped: needs %.1f GB of state, more than 70%% of the %.1f GB available "
                           "| | | | | | |\n",
                           names[mi], (long long)B, (long long)L, need[mi] / 1e9, avail / 1e9);
                    continue;
                }
                double bw = bench_summarize(bws[mi], ROUNDS).median;
                bench_stats st = bench_summarize(tt[mi], total);
                meas[mi][bi][ci] = st.median;
                pred[mi][bi][ci] = bytes[mi] / (bw * 1e9);
                printf("| %s | %lld | %lld | %.1f | %.2f [%.2f-%.2f] | %.3f | %.1f | %.1f | %.2f | %.1f%% |\n", names[mi],
                       (long long)B, (long long)L, setup[mi], 1e3 * st.median, 1e3 * st.min, 1e3 * st.max,
                       1e3 * st.median / (double)B, bytes[mi] / 1e6, bw, 1e3 * pred[mi][bi][ci],
                       100 * pred[mi][bi][ci] / st.median);
            }
        }
    for (int mi = 0; mi < 2; mi++) ssmlm_model_free(d[mi].m);
    free(t);
    free(tt[0]);
    free(tt[1]);
    printf("\nsetup = building the state (prefill%s). Other processes during part 2: %.0f%% of CPUs\n\n",
           o->synthetic ? " of the prompt + synthetic fill" : "", 100 * bench_cpu_foreign(c0, bench_cpu_now()));
    printf("Speedup of hybrid-130m over transformer-130m per decode step (predicted: from bytes per step, each model "
           "at the bandwidth of its own rounds; for a skipped configuration, the ratio of bytes)\n\n"
           "| batch | context | measured | predicted from bytes | measured / predicted |\n|---|---|---|---|---|\n");
    for (int bi = 0; bi < o->nbatch; bi++)
        for (int ci = 0; ci < o->nctx; ci++) {
            double m = meas[0][bi][ci] / meas[1][bi][ci], p = pred[0][bi][ci] / pred[1][bi][ci];
            if (isnan(m))
                printf("| %lld | %lld | (skipped) | %.2fx | |\n", (long long)o->batch[bi], (long long)o->ctx[ci],
                       isnan(p) ? byte_ratio[bi][ci] : p);
            else
                printf("| %lld | %lld | %.2fx | %.2fx | %.2f |\n", (long long)o->batch[bi], (long long)o->ctx[ci], m, p,
                       m / p);
        }
    printf("\n");
    write_svg(o, names, meas);
    return 1;
}

/* ---- part 3: prefill vs decode vs training forward ----------------------------------------- */
static int part_prefill(const options *o) {
    const char *names[3] = {"mamba2-130m", "hybrid-130m", "transformer-130m"};
    int64_t N = o->prefill_len;
    int reps = o->reps < 3 ? o->reps : 3;
    int32_t *ids = malloc((size_t)(N + 1) * sizeof *ids);
    double *t = malloc((size_t)(o->steps > reps ? o->steps : reps) * sizeof *t), tf[8], tp[8];
    bench_cpu_sample c0 = bench_cpu_now();
    printf("Prefill vs decode vs training forward, batch 1, one prompt of %lld tokens, %d threads; forward and prefill: "
           "one warm-up, then median of %d; decode: %d steps at context %lld (synthetic state)\n\n"
           "| model | forward tok/s | prefill tok/s | prefill / forward | decode tok/s | prefill / decode |\n"
           "|---|---|---|---|---|---|\n",
           (long long)N, THREADS, reps, o->steps, (long long)N);
    for (int mi = 0; mi < 3; mi++) {
        decode_model d;
        if (!model_open(&d, names[mi], 0, 1)) return 0;
        for (int64_t i = 0; i <= N; i++) ids[i] = (int32_t)((i * 7919 + 13) % d.c.vocab_size);
        ssmlm_state *s = NULL;
        int ok = ssmlm_state_create(&s, d.m, 1, N + 1) == SSMLM_OK;
        for (int r = -1; ok && r < reps; r++) { /* r = -1: warm-up (allocates the activations) */
            double a = bench_now();
            ok = ssmlm_model_forward(d.m, ids, ids + 1, 1, N, NULL, NULL) == SSMLM_OK;
            double b = bench_now();
            ok = ok && ssmlm_model_prefill(d.m, s, ids, N, NULL) == SSMLM_OK;
            if (r >= 0) tf[r] = b - a, tp[r] = bench_now() - b;
        }
        ssmlm_state_free(s);
        ok = ok && run_decode(&d, 1, N, o->steps, 1, o->prompt, t, NULL);
        if (!ok) {
            fprintf(stderr, "bench_decode: %s: %s\n", names[mi], ssmlm_last_error());
            return 0;
        }
        double f = (double)N / bench_summarize(tf, reps).median, p = (double)N / bench_summarize(tp, reps).median;
        double dec = 1 / bench_summarize(t, o->steps).median;
        printf("| %s | %.0f | %.0f | %.2f | %.1f | %.0fx |\n", names[mi], f, p, p / f, dec, p / dec);
        ssmlm_model_free(d.m);
    }
    printf("\nOther processes during part 3: %.0f%% of CPUs\n\n", 100 * bench_cpu_foreign(c0, bench_cpu_now()));
    free(ids);
    free(t);
    return 1;
}

/* ---- part 4: hybrid-8b, bf16 weights ----------------------------------------------------- */
/* Writes every parameter (+-0.001, alternating): the weights must be real memory, not the
 * kernel's shared zero page that a fresh calloc'ed arena reads from (which would run faster
 * than memory can). */
static void touch_weights(ssmlm_model *m) {
    for (int i = 0; i < ssmlm_model_n_params(m); i++) {
        int64_t n = ssmlm_model_param(m, i)->numel;
        void *d = ssmlm_model_param_data(m, i);
        if (ssmlm_model_param_bf16(m, i)) {
            uint16_t *w = d;
#pragma omp parallel for num_threads(THREADS) schedule(static)
            for (int64_t j = 0; j < n; j++) w[j] = (uint16_t)(j & 1 ? 0xba83u : 0x3a83u); /* -+0.001 */
        } else {
            float *w = d;
#pragma omp parallel for num_threads(THREADS) schedule(static)
            for (int64_t j = 0; j < n; j++) w[j] = j & 1 ? -0.001f : 0.001f;
        }
    }
}

static int part_8b(const options *o) {
    decode_model d;
    int64_t L = o->ctx8b;
    double need = 0;
    {
        ssmlm_config c;
        ssmlm_param_counts pc;
        if (ssmlm_preset(&c, "hybrid-8b") != SSMLM_OK || ssmlm_config_count_params(&c, &pc) != SSMLM_OK) return 0;
        need = 2.0 * (double)pc.total;
    }
    if (mem_available() > 0 && need > 0.9 * mem_available()) {
        printf("hybrid-8b, bf16: skipped: needs %.1f GB of weights, %.1f GB available\n\n", need / 1e9,
               mem_available() / 1e9);
        return 1;
    }
    double t0 = bench_now();
    if (!model_open(&d, "hybrid-8b", 1, 0)) return 0;
    touch_weights(d.m);
    double create = bench_now() - t0;
    double *t = malloc((size_t)o->steps * sizeof *t), setup, bw = 0;
    decode_run run;
    int ok = t && run_setup(&run, &d, 1, L, o->steps, 1, o->prompt, &setup);
    if (ok) {
        bw = bw_sample(3); /* just before the timed steps */
        ok = run_steps(&run, o->steps, t);
        run_free(&run);
    }
    if (ok) {
        bench_stats st = bench_summarize(t, o->steps);
        double bytes = step_bytes(&d, 1, (double)L + 0.5 * (o->steps + 1)), roof = bytes / (bw * 1e9);
        printf("hybrid-8b, bf16 weights (+-0.001, written so that they occupy memory), batch 1, context %lld (synthetic state), %d timed steps\n\n"
               "| weights GB | state MB at context | created in | setup s | ms / token | tokens/s | roofline ms / token "
               "| bandwidth GB/s | fraction of roofline |\n|---|---|---|---|---|---|---|---|---|\n"
               "| %.2f | %.1f | %.0f s | %.1f | %.0f [%.0f-%.0f] | %.2f | %.0f | %.1f | %.1f%% |\n\n",
               (long long)L, o->steps, (double)ssmlm_model_weight_bytes(d.m) / 1e9,
               (d.fixed + (double)L * d.kv) / 1e6, create, setup, 1e3 * st.median, 1e3 * st.min, 1e3 * st.max,
               1 / st.median, 1e3 * roof, bw, 100 * roof / st.median);
    }
    ssmlm_model_free(d.m);
    free(t);
    return ok;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_decode [--parts 1,2,3] [--ctx L,L..] [--batch B,B..] [--reps N] [--steps S]\n"
                    "                    [--fill synthetic|real] [--prompt P] [--svg PATH] [--prefill-len N] [--no-1b]\n"
                    "                    [--short-only] [--ctx8b L] [--model NAME [--bf16]]\n"
                    "parts: 1 short context fp32/bf16, 2 Figure 5, 3 prefill vs forward, 4 hybrid-8b bf16\n");
}

int main(int argc, char **argv) {
    ssmlm_threads_init(argv); /* as the ssmlm program does */
    options o = {.ctx = {1024, 4096, 16384, 32768}, .batch = {1, 8}, .nctx = 4, .nbatch = 2, .reps = 5, .steps = 32,
                 .synthetic = 1, .with_1b = 1, .parts = 7, .prompt = 64, .prefill_len = 2048, .ctx8b = 4096,
                 .svg = NULL, .one = NULL};
    int ok = 1;
    for (int i = 1; i < argc && ok; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-1b")) o.with_1b = 0;
        else if (!strcmp(a, "--short-only")) o.parts = 1;
        else if (!strcmp(a, "--bf16")) o.bf16 = 1;
        else if (!v) ok = 0;
        else if (!strcmp(a, "--ctx")) ok = (o.nctx = parse_list(v, o.ctx)) > 0, i++;
        else if (!strcmp(a, "--batch")) ok = (o.nbatch = parse_list(v, o.batch)) > 0, i++;
        else if (!strcmp(a, "--reps")) o.reps = atoi(v), i++;
        else if (!strcmp(a, "--steps")) o.steps = atoi(v), i++;
        else if (!strcmp(a, "--prompt")) o.prompt = atoll(v), i++;
        else if (!strcmp(a, "--prefill-len")) o.prefill_len = atoll(v), i++;
        else if (!strcmp(a, "--ctx8b")) o.ctx8b = atoll(v), i++;
        else if (!strcmp(a, "--svg")) o.svg = v, i++;
        else if (!strcmp(a, "--model")) o.one = v, i++;
        else if (!strcmp(a, "--fill")) {
            ok = !strcmp(v, "synthetic") || !strcmp(v, "real");
            o.synthetic = !strcmp(v, "synthetic");
            i++;
        } else if (!strcmp(a, "--parts")) {
            int64_t p[MAXN];
            int n = parse_list(v, p);
            o.parts = 0;
            for (int k = 0; k < n; k++) o.parts |= p[k] >= 1 && p[k] <= 4 ? 1 << (p[k] - 1) : 0;
            ok = n > 0 && o.parts;
            i++;
        } else ok = 0;
    }
    if (!ok || o.reps < 1 || o.reps > 64 || o.steps < 2 || o.prompt < 1 || o.prefill_len < 1 || o.ctx8b < 1) {
        usage();
        return 2;
    }
    if (!o.svg) { /* bench/fig5_decode.svg from the repository root, else in the current folder */
        struct stat sb;
        o.svg = stat("bench", &sb) == 0 && S_ISDIR(sb.st_mode) ? "bench/fig5_decode.svg" : "fig5_decode.svg";
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    ssmlm_set_threads(THREADS);

    if (o.one) { /* one configuration, for profiling */
        decode_model d;
        double *t = malloc((size_t)o.steps * sizeof *t), setup;
        if (!model_open(&d, o.one, o.bf16, 1)) return 1;
        if (!run_decode(&d, o.batch[0], o.ctx[0], o.steps, o.synthetic, o.prompt, t, &setup)) return 1;
        bench_stats st = bench_summarize(t, o.steps);
        printf("%s%s B=%lld L=%lld (%s state): setup %.2f s, step %.3f ms [%.3f-%.3f]\n", o.one, o.bf16 ? " bf16" : "", (long long)o.batch[0],
               (long long)o.ctx[0], o.synthetic ? "synthetic" : "real prefill", setup, 1e3 * st.median, 1e3 * st.min,
               1e3 * st.max);
        ssmlm_model_free(d.m);
        free(t);
        return 0;
    }

    double foreign = bench_wait_quiet(0.10, 30);
    if (!bw_init()) {
        fprintf(stderr, "bench_decode: cannot allocate the 1 GiB bandwidth array\n");
        return 1;
    }
    double bw = bw_sample(5);
    const char *policy = getenv("OMP_WAIT_POLICY");
    printf("OpenBLAS %s, OMP_WAIT_POLICY=%s\n\n", openblas_get_parallel() == 2 ? "OpenMP build" : "pthreads build",
           policy ? policy : "unset (libgomp default: spin, then sleep)");
    printf("## Decode, %d threads\n\nmemory bandwidth at the start (1 GiB read-only sum, %d threads, median of 5): "
           "**%.1f GB/s** (other processes before: %.0f%% of CPUs); sampled again next to every timing below\n\n",
           THREADS, THREADS, bw, 100 * foreign);
    if ((o.parts & 1) && !part_short(&o)) return 1;
    if ((o.parts & 2) && !part_context(&o)) return 1;
    if ((o.parts & 4) && !part_prefill(&o)) return 1;
    if ((o.parts & 8) && !part_8b(&o)) return 1;
    return 0;
}

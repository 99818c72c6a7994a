/* test_bf16.c — bf16 weights for inference: fp32 -> bf16 rounding bits; the small-M
 * weight-streaming kernel (both tile versions) and the blocked bf16 product against reference
 * products on odd shapes; models of every family created with bf16 weights == fp32 models whose
 * weights are the bf16-rounded values (forward, prefill, steps), decode == forward, and the
 * difference to full fp32 weights reported and bounded; save/load round trips (BF16, F32, F64
 * and F16 files); errors; state files; `ssmlm generate --bf16` / `ssmlm score --bf16`. */
#include "golden.h"
#include "infer/score.h"
#include "kernels/bf16.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "train/optim.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static float f_of_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- rounding ------------------------------------------------------------------------------ */

static void test_rounding(void) {
    static const struct { uint32_t in; uint16_t out; const char *what; } cases[] = {
        {0x3f800000u, 0x3f80, "1.0"},
        {0xbf800000u, 0xbf80, "-1.0"},
        {0x00000000u, 0x0000, "+0"},
        {0x80000000u, 0x8000, "-0"},
        {0x3f808000u, 0x3f80, "tie 1 + 2^-8 -> even (down)"},
        {0x3f818000u, 0x3f82, "tie above an odd mantissa -> even (up)"},
        {0xbf818000u, 0xbf82, "negative tie -> even (magnitude up)"},
        {0x3f808001u, 0x3f81, "just above a tie -> up"},
        {0x3f807fffu, 0x3f80, "just below a tie -> down"},
        {0x3fffffffu, 0x4000, "carry into the exponent"},
        {0x7f800000u, 0x7f80, "+inf"},
        {0xff800000u, 0xff80, "-inf"},
        {0x7f7f0000u, 0x7f7f, "bf16 max finite"},
        {0x7f7f7fffu, 0x7f7f, "below max + half ulp -> max"},
        {0x7f7f8000u, 0x7f80, "tie above bf16 max (odd) -> inf"},
        {0x7f7fffffu, 0x7f80, "fp32 max finite -> inf"},
        {0xff7fffffu, 0xff80, "-fp32 max finite -> -inf"},
        {0x00000001u, 0x0000, "smallest denormal -> 0"},
        {0x00008000u, 0x0000, "denormal tie -> even 0"},
        {0x00018000u, 0x0002, "denormal tie above odd -> 2"},
        {0x00008001u, 0x0001, "denormal above tie -> 1"},
        {0x807fffffu, 0x8080, "largest negative denormal -> -min normal"},
        {0x00400000u, 0x0040, "exact denormal"},
        {0x7fc00000u, 0x7fc0, "quiet NaN"},
        {0xffc00001u, 0xffc0, "negative NaN keeps sign"},
        {0x7f800001u, 0x7fc0, "NaN with only a low payload bit stays NaN (not inf)"},
        {0x7fbfffffu, 0x7fff, "signalling NaN stays NaN (quieted)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = bf16_from_f32(f_of_bits(cases[i].in));
        CHECK(got == cases[i].out, "round 0x%08x (%s): got 0x%04x, want 0x%04x", cases[i].in, cases[i].what, got,
              cases[i].out);
    }
    /* widening is exact: every bf16 is the fp32 with the same upper half */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bf16_to_f32((uint16_t)h);
        uint32_t u;
        memcpy(&u, &f, 4);
        bad += u != h << 16;
        if (!isnan(f)) bad += bf16_from_f32(f) != h; /* representable values round to themselves */
    }
    CHECK(bad == 0, "widen is the 16-bit shift and bf16 values round to themselves (%d bad)", bad);
    /* the array versions (parallel above 64K values) == the scalar ones */
    int64_t n = 200003;
    float *f = malloc((size_t)n * sizeof(float)), *g = malloc((size_t)n * sizeof(float));
    uint16_t *h = malloc((size_t)n * sizeof(uint16_t));
    uint64_t seed = 5;
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        f[i] = f_of_bits((uint32_t)(seed >> 32));
    }
    bf16_round_array(h, f, n);
    bf16_widen_array(g, h, n);
    bad = 0;
    for (int64_t i = 0; i < n; i++) {
        bad += h[i] != bf16_from_f32(f[i]);
        uint32_t u;
        memcpy(&u, &g[i], 4);
        bad += u != (uint32_t)h[i] << 16;
    }
    CHECK(bad == 0, "array round/widen == scalar (%d bad)", bad);
    free(f);
    free(g);
    free(h);
}

/* ---- kernels ------------------------------------------------------------------------------- */

/* Reference y = x W^T + b in double, and per output the summation error scale
 * sum_k |x_k w_k| + |b| (fp32 accumulation stays far below 1e-5 of it; one wrong term shows as
 * about 1/K of it). */
static void reference(double *want, double *scale, const float *x, const float *w, const float *b, int64_t M,
                      int64_t N, int64_t K) {
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double y = b ? b[n] : 0, sc = b ? fabs(b[n]) : 0;
            for (int64_t k = 0; k < K; k++) {
                double t = (double)x[m * K + k] * w[n * K + k];
                y += t;
                sc += fabs(t);
            }
            want[m * N + n] = y;
            scale[m * N + n] = sc + 1e-30;
        }
}

/* max over outputs of |got - want| / scale (NaN counts as infinite). */
static double rel_err(const float *got, const double *want, const double *scale, int64_t n) {
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / scale[i];
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

typedef void (*linear_fn)(float *y, const float *x, const float *wf, const uint16_t *wb, const float *b, int64_t M,
                          int64_t N, int64_t K);

static void blocked(float *y, const float *x, const float *wf, const uint16_t *wb, const float *b, int64_t M,
                    int64_t N, int64_t K) {
    (void)wf;
    bf16_gemm_blocked_f32(y, x, wb, b, M, N, K);
}

static void test_kernels(void) {
    const int64_t Ns[] = {1, 7, 33, 257}, Ks[] = {1, 7, 33, 257};
    const struct { linear_fn f; const char *name; int bf16_only; } fns[] = {
        {smallm_f32, smallm_uses_avx512() ? "smallm (AVX-512)" : "smallm (portable)", 0},
        {smallm_portable_f32, "smallm portable", 0},
        {smallm_ref_f32, "smallm reference", 0},
        {blocked, "bf16 blocked sgemm", 1},
    };
    printf("small-M kernel: %s tiles\n", smallm_uses_avx512() ? "AVX-512" : "portable");
    float *x = malloc(32 * 257 * sizeof(float)), *w = malloc(257 * 257 * sizeof(float));
    float *wr = malloc(257 * 257 * sizeof(float)), *b = malloc(257 * sizeof(float));
    float *y = malloc(32 * 257 * sizeof(float)), *yr = malloc(32 * 257 * sizeof(float));
    double *want = malloc(32 * 257 * sizeof(double)), *scale = malloc(32 * 257 * sizeof(double));
    uint16_t *wb = malloc(257 * 257 * sizeof(uint16_t));
    uint64_t seed = 3;
    double worst[4][2] = {{0}};
    int blas_ok = 1;
    for (int in = 0; in < 4; in++)
        for (int ik = 0; ik < 4; ik++) {
            int64_t N = Ns[in], K = Ks[ik];
            fill_uniform(w, N * K, 1.0, &seed);
            fill_uniform(b, N, 1.0, &seed);
            bf16_round_array(wb, w, N * K);
            bf16_widen_array(wr, wb, N * K);
            /* every M up to 17 (tiles of 4 and 8 rows of x and their remainders), and 24 and 32 */
            for (int64_t M = 1; M <= 32; M = M < 17 ? M + 1 : M + 8 - (M == 17)) {
                fill_uniform(x, M * K, 1.0, &seed);
                for (int bias = 0; bias < 2; bias++) {
                    const float *bb = bias ? b : NULL;
                    for (int wt = 0; wt < 2; wt++) {
                        reference(want, scale, x, wt ? wr : w, bb, M, N, K);
                        for (int f = 0; f < 4; f++) {
                            if (fns[f].bf16_only && !wt) continue;
                            memset(y, 0xff, (size_t)(M * N) * sizeof(float)); /* NaN: every output written */
                            fns[f].f(y, x, wt ? NULL : w, wt ? wb : NULL, bb, M, N, K);
                            double e = rel_err(y, want, scale, M * N);
                            if (!(e <= worst[f][wt])) worst[f][wt] = isnan(e) ? INFINITY : e;
                            if (e > 1e-5)
                                CHECK(0, "%s %s M=%lld N=%lld K=%lld bias=%d: error %.3g", fns[f].name,
                                      wt ? "bf16" : "fp32", (long long)M, (long long)N, (long long)K, bias, e);
                        }
                    }
                    /* == the reference gemm (BLAS) on the widened weights */
                    RNAME(gemm)(0, 1, M, N, K, 1, x, K, wr, K, 0, yr, N);
                    if (bb)
                        for (int64_t m = 0; m < M; m++)
                            for (int64_t n = 0; n < N; n++) yr[m * N + n] += bb[n];
                    smallm_f32(y, x, NULL, wb, bb, M, N, K);
                    for (int64_t i = 0; i < M * N; i++)
                        if (!(fabs(y[i] - yr[i]) <= 1e-5 * (fabs(yr[i]) + sqrt((double)K)))) blas_ok = 0;
                }
            }
        }
    for (int f = 0; f < 4; f++)
        for (int wt = fns[f].bf16_only; wt < 2; wt++)
            CHECK(worst[f][wt] <= 1e-5, "%s %s: worst relative error %.3g", fns[f].name, wt ? "bf16" : "fp32",
                  worst[f][wt]);
    printf("kernel errors / sum|x w| (tolerance 1e-5): fp32 %.2g %.2g %.2g, bf16 %.2g %.2g %.2g %.2g\n", worst[0][0],
           worst[1][0], worst[2][0], worst[0][1], worst[1][1], worst[2][1], worst[3][1]);
    CHECK(blas_ok, "smallm with bf16 weights == BLAS gemm on the widened weights");

    /* linear_forward: a registered bf16 arena is recognised; M beyond the small-M limit goes through
     * the blocked product (K = 4096: 64-row blocks, 130 rows = 3 blocks, the last short) */
    int64_t N = 130, K = 4096, Ms[] = {1, 16, 17, 32, 33, 40};
    uint16_t *arena = ssmlm_alloc((size_t)(N * K) * sizeof(uint16_t));
    float *w2 = malloc((size_t)(N * K) * sizeof(float)), *x2 = malloc((size_t)(40 * K) * sizeof(float));
    float *y2 = malloc((size_t)(40 * N) * sizeof(float));
    double *want2 = malloc((size_t)(40 * N) * sizeof(double)), *scale2 = malloc((size_t)(40 * N) * sizeof(double));
    fill_uniform(w2, N * K, 1.0, &seed);
    fill_uniform(x2, 40 * K, 1.0, &seed);
    bf16_round_array(arena, w2, N * K);
    bf16_widen_array(w2, arena, N * K);
    CHECK(!bf16_arena_contains(arena), "unregistered arena not recognised");
    bf16_arena_register(arena, (size_t)(N * K) * sizeof(uint16_t));
    CHECK(bf16_arena_contains(arena) && bf16_arena_contains(arena + N * K - 1) && !bf16_arena_contains(arena + N * K),
          "registered arena recognised over exactly its bytes");
    for (int i = 0; i < 6; i++) {
        int64_t M = Ms[i];
        reference(want2, scale2, x2, w2, b, M, N, K);
        RNAME(linear_forward)(y2, x2, (const real *)(const void *)arena, b, M, N, K);
        double e = rel_err(y2, want2, scale2, M * N);
        CHECK(e <= 1e-5, "linear_forward bf16 M=%lld: error %.3g", (long long)M, e);
        RNAME(linear_forward)(y2, x2, w2, b, M, N, K);
        e = rel_err(y2, want2, scale2, M * N);
        CHECK(e <= 1e-5, "linear_forward fp32 M=%lld: error %.3g", (long long)M, e);
    }
    bf16_arena_unregister(arena);
    CHECK(!bf16_arena_contains(arena), "unregistered again");
    ssmlm_free(arena);
    free(w2);
    free(x2);
    free(y2);
    free(want2);
    free(scale2);
    free(want);
    free(scale);
    free(x);
    free(w);
    free(wr);
    free(b);
    free(y);
    free(yr);
    free(wb);
}

/* ---- models -------------------------------------------------------------------------------- */

static double max_abs(const float *a, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

static int64_t argmax(const float *a, int64_t n) {
    int64_t k = 0;
    for (int64_t i = 1; i < n; i++)
        if (a[i] > a[k]) k = i;
    return k;
}

static int is_matrix_name(const char *name) {
    const char *keys[] = {"in_proj.weight", "out_proj.weight", "x_proj.weight", "fc1.weight", "fc2.weight",
                          "embedding.weight", "lm_head.weight"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strstr(name, keys[i])) return 1;
    return 0;
}

/* Every tensor of a equals b's: bf16 tensors bit for bit against bf16(b), the others exactly. */
static int same_weights_as_rounded(ssmlm_model *a, ssmlm_model *b) {
    int bad = 0;
    for (int i = 0; i < ssmlm_model_n_params(a); i++) {
        const ssmlm_param_info *p = ssmlm_model_param(a, i);
        const float *src = ssmlm_model_param_data(b, i);
        if (ssmlm_model_param_bf16(a, i)) {
            const uint16_t *h = ssmlm_model_param_data(a, i);
            for (int64_t j = 0; j < p->numel; j++) bad += h[j] != bf16_from_f32(src[j]);
        } else {
            bad += memcmp(ssmlm_model_param_data(a, i), src, (size_t)p->numel * sizeof(float)) != 0;
        }
    }
    return bad == 0;
}

/* A bf16-weight model of a config against fp32 models with rounded and with full weights. */
static void test_model(const char *preset, int untie) {
    ssmlm_config c;
    CHECK_OK(ssmlm_preset(&c, preset));
    if (untie) c.tie_embeddings = 0;
    c.init_std = 0.1; /* logits well above rounding noise */
    ssmlm_model *mb = NULL, *mr = NULL, *mf = NULL;
    CHECK_OK(ssmlm_model_create_ex(&mb, &c, SSMLM_F32, SSMLM_MODEL_BF16_WEIGHTS));
    CHECK_OK(ssmlm_model_create(&mr, &c, SSMLM_F32));
    CHECK_OK(ssmlm_model_create(&mf, &c, SSMLM_F32));
    if (!mb || !mr || !mf) goto done;
    ssmlm_model_init(mb, 7);
    ssmlm_model_init(mr, 7);
    ssmlm_model_init(mf, 7);
    CHECK(ssmlm_model_weights_bf16(mb) && !ssmlm_model_weights_bf16(mr), "%s: weights_bf16 query", preset);
    /* which tensors are bf16, and the bytes they take */
    size_t want_bytes = 0;
    int flags_ok = 1;
    for (int i = 0; i < ssmlm_model_n_params(mb); i++) {
        const ssmlm_param_info *p = ssmlm_model_param(mb, i);
        int mat = is_matrix_name(p->name);
        flags_ok &= ssmlm_model_param_bf16(mb, i) == mat && !ssmlm_model_param_bf16(mr, i);
        want_bytes += (size_t)p->numel * (mat ? 2 : 4);
    }
    CHECK(flags_ok, "%s: exactly the matrices are bf16", preset);
    CHECK(ssmlm_model_weight_bytes(mb) == want_bytes &&
              ssmlm_model_weight_bytes(mr) == (size_t)ssmlm_model_numel(mr) * sizeof(float),
          "%s: weight bytes %zu (want %zu)", preset, ssmlm_model_weight_bytes(mb), want_bytes);
    /* seeded init == the fp32 init rounded */
    CHECK(same_weights_as_rounded(mb, mr), "%s: bf16 init == fp32 init rounded to bf16", preset);
    for (int i = 0; i < ssmlm_model_n_params(mb); i++)
        if (ssmlm_model_param_bf16(mb, i))
            bf16_widen_array(ssmlm_model_param_data(mr, i), ssmlm_model_param_data(mb, i),
                             ssmlm_model_param(mb, i)->numel);

    int64_t B = 2, T = 37, V = ssmlm_config_vocab_padded(&c), n = B * T * V;
    int32_t ids[74];
    for (int i = 0; i < B * T; i++) ids[i] = (int32_t)((i * 89 + 5) % c.vocab_size);
    float *lb = malloc((size_t)n * sizeof(float)), *lr = malloc((size_t)n * sizeof(float));
    float *lf = malloc((size_t)n * sizeof(float)), *db = malloc((size_t)n * sizeof(float));
    float *dr = malloc((size_t)n * sizeof(float));
    double lossb = 0, lossr = 0;
    int32_t labels[74];
    for (int i = 0; i < B * T; i++) labels[i] = ids[(i + 1) % (B * T)];
    CHECK_OK(ssmlm_model_forward(mb, ids, labels, B, T, lb, &lossb));
    CHECK_OK(ssmlm_model_forward(mr, ids, labels, B, T, lr, &lossr));
    CHECK_OK(ssmlm_model_forward(mf, ids, NULL, B, T, lf, NULL));
    double scale = max_abs(lr, n);
    double e_fwd = max_diff(lb, lr, n) / scale;
    CHECK(e_fwd <= 1e-5 && fabs(lossb - lossr) <= 1e-5 * fabs(lossr),
          "%s: bf16 forward == rounded fp32: %.3g (loss %.7f vs %.7f)", preset, e_fwd, lossb, lossr);
    /* prefill + steps, bf16 vs rounded fp32, and == the bf16 full forward */
    int64_t P = 19;
    prefill_then_steps(mb, ids, B, T, P, V, db);
    prefill_then_steps(mr, ids, B, T, P, V, dr);
    double e_dec = max_diff(db, dr, n) / scale, e_dec_fwd = max_diff(db, lb, n) / scale;
    CHECK(e_dec <= 1e-5, "%s: bf16 prefill + steps == rounded fp32: %.3g", preset, e_dec);
    CHECK(e_dec_fwd <= 1e-4, "%s: bf16 decode == bf16 forward: %.3g", preset, e_dec_fwd);
    /* against full fp32 weights: report, bound, and the greedy tokens */
    double abs_full = max_diff(lb, lf, n), rel_full = abs_full / max_abs(lf, n);
    int agree = 0;
    for (int64_t r = 0; r < B * T; r++) agree += argmax(lb + r * V, c.vocab_size) == argmax(lf + r * V, c.vocab_size);
    printf("%-16s%s bf16 vs fp32 weights: max |dlogit| %.3g, relative to max |logit| %.3g; greedy token agrees at "
           "%d of %lld positions; vs rounded fp32: forward %.2g, decode %.2g\n",
           preset, untie ? " (untied)" : "", abs_full, rel_full, agree, (long long)(B * T), e_fwd, e_dec);
    CHECK(rel_full < 5e-2 && rel_full > 0, "%s: bf16 vs fp32 logits differ by %.3g of the logit scale", preset,
          rel_full);
    CHECK(agree >= (B * T) * 9 / 10, "%s: greedy tokens agree at %d of %lld positions", preset, agree,
          (long long)(B * T));
    /* backward refused; forward with labels still fine */
    CHECK(ssmlm_model_backward(mb, 0) == SSMLM_ERR_UNSUPPORTED &&
              strstr(ssmlm_last_error(), "bf16 weights are for inference"),
          "%s: backward refused: %s", preset, ssmlm_last_error());
    CHECK(ssmlm_model_grad_data(mb, 0) == NULL, "%s: no gradient arena", preset);
    {
        ssmlm_adamw_config ac;
        ssmlm_adamw_defaults(&ac);
        ssmlm_optimizer *opt = NULL;
        CHECK(ssmlm_optimizer_create(&opt, mb, &ac) == SSMLM_ERR_UNSUPPORTED && !opt &&
                  strstr(ssmlm_last_error(), "optimizer cannot update"),
              "%s: optimizer refused: %s", preset, ssmlm_last_error());
    }
    free(lb);
    free(lr);
    free(lf);
    free(db);
    free(dr);
done:
    ssmlm_model_free(mb);
    ssmlm_model_free(mr);
    ssmlm_model_free(mf);
}

/* float -> f16 bits for values that f16 represents (normal range), truncating extra bits. */
static uint16_t f16_trunc(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    int e = (int)((u >> 23) & 0xff) - 127 + 15;
    if ((u & 0x7fffffffu) == 0 || e <= 0) return (uint16_t)sign;
    return (uint16_t)(sign | (uint32_t)e << 10 | ((u >> 13) & 0x3ffu));
}

static float f16_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e ? ldexpf((float)(m + 1024), e - 25) : ldexpf((float)m, -24);
    return h >> 15 ? -v : v;
}

/* Save -> load round trips, file dtypes, conversion on load from F32, F64, F16 files. */
static void test_files(void) {
    char dir[] = "/tmp/ssmlm_bf16_XXXXXX", sub[1200], path[1300];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    ssmlm_config c;
    CHECK_OK(ssmlm_preset(&c, "tiny-hybrid"));
    c.tie_embeddings = 0;
    ssmlm_model *mb = NULL, *mf = NULL, *m64 = NULL, *l = NULL;
    CHECK_OK(ssmlm_model_create_ex(&mb, &c, SSMLM_F32, SSMLM_MODEL_BF16_WEIGHTS));
    CHECK_OK(ssmlm_model_create(&mf, &c, SSMLM_F32));
    CHECK_OK(ssmlm_model_create(&m64, &c, SSMLM_F64));
    if (!mb || !mf || !m64) goto done;
    ssmlm_model_init(mb, 9);
    ssmlm_model_init(mf, 9);
    ssmlm_model_init(m64, 9);

    /* a bf16 model writes BF16 matrices and F32 for the rest; reloading in bf16 is bit exact */
    snprintf(sub, sizeof sub, "%s/b", dir);
    CHECK_OK(ssmlm_model_save(mb, sub));
    snprintf(path, sizeof path, "%s/model.safetensors", sub);
    ssmlm_safetensors st;
    if (ssmlm_st_open(&st, path) == SSMLM_OK) {
        int ok = 1;
        for (int i = 0; i < ssmlm_model_n_params(mb); i++) {
            const ssmlm_st_tensor *t = ssmlm_st_find(&st, ssmlm_model_param(mb, i)->name);
            ok &= t && t->dtype == (ssmlm_model_param_bf16(mb, i) ? SSMLM_ST_BF16 : SSMLM_ST_F32);
        }
        CHECK(ok, "saved dtypes: BF16 for the matrices, F32 for the rest");
        ssmlm_st_close(&st);
    } else {
        CHECK(0, "open %s: %s", path, ssmlm_last_error());
    }
    CHECK_OK(ssmlm_model_load_ex(&l, sub, SSMLM_F32, SSMLM_MODEL_BF16_WEIGHTS));
    if (l) {
        int same = ssmlm_model_weights_bf16(l);
        for (int i = 0; i < ssmlm_model_n_params(l); i++) {
            size_t bytes = (size_t)ssmlm_model_param(l, i)->numel * (ssmlm_model_param_bf16(l, i) ? 2 : 4);
            same &= memcmp(ssmlm_model_param_data(l, i), ssmlm_model_param_data(mb, i), bytes) == 0;
        }
        CHECK(same, "bf16 save -> bf16 load is bit exact");
        ssmlm_model_free(l);
        l = NULL;
    }
    /* ... and loads as an fp32 model holding the widened values */
    CHECK_OK(ssmlm_model_load(&l, sub, SSMLM_F32));
    if (l) {
        int bad = 0;
        for (int i = 0; i < ssmlm_model_n_params(l); i++) {
            const float *v = ssmlm_model_param_data(l, i);
            for (int64_t j = 0; j < ssmlm_model_param(l, i)->numel; j++) {
                const void *src = ssmlm_model_param_data(mb, i);
                float want = ssmlm_model_param_bf16(mb, i) ? bf16_to_f32(((const uint16_t *)src)[j])
                                                           : ((const float *)src)[j];
                bad += v[j] != want;
            }
        }
        CHECK(bad == 0 && !ssmlm_model_weights_bf16(l), "bf16 file loads into an fp32 model exactly (%d bad)", bad);
        ssmlm_model_free(l);
        l = NULL;
    }
    /* an F32 file loads into bf16 == the fp32 weights rounded (== the bf16 model of the same seed) */
    snprintf(sub, sizeof sub, "%s/f", dir);
    CHECK_OK(ssmlm_model_save(mf, sub));
    CHECK_OK(ssmlm_model_load_ex(&l, sub, SSMLM_F32, SSMLM_MODEL_BF16_WEIGHTS));
    if (l) {
        CHECK(same_weights_as_rounded(l, mf), "F32 file -> bf16 model rounds each tensor");
        ssmlm_model_free(l);
        l = NULL;
    }
    /* an F64 file: rounded through fp32 */
    snprintf(sub, sizeof sub, "%s/d", dir);
    CHECK_OK(ssmlm_model_save(m64, sub));
    CHECK_OK(ssmlm_model_load_ex(&l, sub, SSMLM_F32, SSMLM_MODEL_BF16_WEIGHTS));
    if (l) {
        int bad = 0;
        for (int i = 0; i < ssmlm_model_n_params(l); i++) {
            const double *src = ssmlm_model_param_data(m64, i);
            for (int64_t j = 0; j < ssmlm_model_param(l, i)->numel; j++) {
                if (ssmlm_model_param_bf16(l, i))
                    bad += ((const uint16_t *)ssmlm_model_param_data(l, i))[j] != bf16_from_f32((float)src[j]);
                else
                    bad += ((const float *)ssmlm_model_param_data(l, i))[j] != (float)src[j];
            }
        }
        CHECK(bad == 0, "F64 file -> bf16 model (%d bad)", bad);
        ssmlm_model_free(l);
        l = NULL;
    }
    /* an F16 file (every tensor F16) */
    snprintf(sub, sizeof sub, "%s/h", dir);
    CHECK_OK(ssmlm_mkdir_p(sub));
    snprintf(path, sizeof path, "%s/config.json", sub);
    CHECK_OK(ssmlm_config_save_json(&c, path));
    int np = ssmlm_model_n_params(mf);
    ssmlm_st_out *outs = calloc((size_t)np, sizeof *outs);
    uint16_t **h16 = calloc((size_t)np, sizeof *h16);
    for (int i = 0; i < np; i++) {
        const ssmlm_param_info *p = ssmlm_model_param(mf, i);
        h16[i] = malloc((size_t)p->numel * sizeof(uint16_t));
        const float *v = ssmlm_model_param_data(mf, i);
        for (int64_t j = 0; j < p->numel; j++) h16[i][j] = f16_trunc(v[j]);
        outs[i].name = p->name;
        outs[i].dtype = SSMLM_ST_F16;
        outs[i].ndim = p->ndim;
        memcpy(outs[i].shape, p->shape, sizeof p->shape);
        outs[i].data = h16[i];
    }
    snprintf(path, sizeof path, "%s/model.safetensors", sub);
    CHECK_OK(ssmlm_st_write(path, outs, np, NULL));
    CHECK_OK(ssmlm_model_load_ex(&l, sub, SSMLM_F32, SSMLM_MODEL_BF16_WEIGHTS));
    if (l) {
        int bad = 0;
        for (int i = 0; i < np; i++)
            for (int64_t j = 0; j < ssmlm_model_param(l, i)->numel; j++) {
                float want = f16_value(h16[i][j]);
                if (ssmlm_model_param_bf16(l, i))
                    bad += ((const uint16_t *)ssmlm_model_param_data(l, i))[j] != bf16_from_f32(want);
                else
                    bad += ((const float *)ssmlm_model_param_data(l, i))[j] != want;
            }
        CHECK(bad == 0, "F16 file -> bf16 model (%d bad)", bad);
        ssmlm_model_free(l);
        l = NULL;
    }
    for (int i = 0; i < np; i++) free(h16[i]);
    free(h16);
    free(outs);

    /* errors */
    ssmlm_model *e = NULL;
    CHECK(ssmlm_model_create_ex(&e, &c, SSMLM_F64, SSMLM_MODEL_BF16_WEIGHTS) == SSMLM_ERR_INVALID && !e &&
              strstr(ssmlm_last_error(), "bf16") && ssmlm_last_hint()[0],
          "bf16 + F64 refused: %s", ssmlm_last_error());
    snprintf(sub, sizeof sub, "%s/f", dir);
    CHECK(ssmlm_model_load_ex(&e, sub, SSMLM_F64, SSMLM_MODEL_BF16_WEIGHTS) == SSMLM_ERR_INVALID && !e,
          "load bf16 + F64 refused: %s", ssmlm_last_error());
    CHECK(ssmlm_model_create_ex(&e, &c, SSMLM_F32, 0x10) == SSMLM_ERR_INVALID && !e, "unknown flag refused: %s",
          ssmlm_last_error());
done:
    ssmlm_model_free(mb);
    ssmlm_model_free(mf);
    ssmlm_model_free(m64);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    CHECK(system(path) == 0, "cleanup");
}

/* State files: a bf16 model restores its own states; a state of the fp32 original is refused. */
static void test_state_files(void) {
    ssmlm_config c;
    CHECK_OK(ssmlm_preset(&c, "tiny-hybrid"));
    ssmlm_model *mb = NULL, *mf = NULL;
    ssmlm_state *sb = NULL, *sf = NULL;
    CHECK_OK(ssmlm_model_create_ex(&mb, &c, SSMLM_F32, SSMLM_MODEL_BF16_WEIGHTS));
    CHECK_OK(ssmlm_model_create(&mf, &c, SSMLM_F32));
    if (!mb || !mf) goto done;
    ssmlm_model_init(mb, 4);
    ssmlm_model_init(mf, 4);
    CHECK_OK(ssmlm_state_create(&sb, mb, 1, 16));
    CHECK_OK(ssmlm_state_create(&sf, mf, 1, 16));
    if (!sb || !sf) goto done;
    int32_t ids[5] = {1, 2, 3, 4, 5};
    char pb[] = "/tmp/ssmlm_bf16_state_XXXXXX", pf[] = "/tmp/ssmlm_bf16_statf_XXXXXX";
    int fd1 = mkstemp(pb), fd2 = mkstemp(pf);
    CHECK(fd1 >= 0 && fd2 >= 0, "mkstemp");
    close(fd1);
    close(fd2);
    CHECK_OK(ssmlm_model_prefill(mb, sb, ids, 5, NULL));
    CHECK_OK(ssmlm_model_prefill(mf, sf, ids, 5, NULL));
    CHECK_OK(ssmlm_state_save(sb, 0, pb));
    CHECK_OK(ssmlm_state_save(sf, 0, pf));
    CHECK_OK(ssmlm_state_load(sb, 0, pb));
    CHECK(ssmlm_state_load(sb, 0, pf) == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), "other weights") &&
              strstr(ssmlm_last_hint(), "bf16"),
          "fp32-weight state refused by the bf16 model: %s / %s", ssmlm_last_error(), ssmlm_last_hint());
    CHECK(ssmlm_state_load(sf, 0, pb) == SSMLM_ERR_INVALID, "bf16-weight state refused by the fp32 model");
    unlink(pb);
    unlink(pf);
done:
    ssmlm_state_free(sb);
    ssmlm_state_free(sf);
    ssmlm_model_free(mb);
    ssmlm_model_free(mf);
}

/* ---- CLI ----------------------------------------------------------------------------------- */

static char g_out[1 << 16];
static int run(const char *args) { return run_ssmlm(args, g_out, sizeof g_out); }

static void test_cli(void) {
    char dir[] = "/tmp/ssmlm_bf16_cli_XXXXXX", args[2048];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    ssmlm_config c;
    ssmlm_model *m = NULL, *mb = NULL;
    CHECK_OK(ssmlm_preset(&c, "tiny-hybrid"));
    c.init_std = 0.3;
    CHECK_OK(ssmlm_model_create(&m, &c, SSMLM_F32));
    if (!m) return;
    ssmlm_model_init(m, 2);
    CHECK_OK(ssmlm_model_save(m, dir));
    snprintf(args, sizeof args,
             "generate --model %s --bf16 --ids \"72 105\" --max-new 6 --temperature 0 --memory-plan", dir);
    CHECK(run(args) == 0 && strstr(g_out, "bf16 weights") && strstr(g_out, "6 new tokens, stopped: max-new"),
          "generate --bf16: %s", g_out);
    CHECK_OK(ssmlm_model_load_ex(&mb, dir, SSMLM_F32, SSMLM_MODEL_BF16_WEIGHTS));
    char want[96];
    if (mb) {
        snprintf(want, sizeof want, "(%zu bytes)", ssmlm_model_weight_bytes(mb));
        CHECK(strstr(g_out, want) != NULL, "memory plan prints the bf16 weight bytes %s: %s", want, g_out);
    }
    snprintf(args, sizeof args, "score --model %s --bf16 --context \"Hello wor\" --continuation ld", dir);
    CHECK(run(args) == 0 && strstr(g_out, "\"ld\""), "score --bf16: %s", g_out);
    if (mb) {
        int32_t ctx[9], c0[2] = {'l', 'd'};
        for (int i = 0; i < 9; i++) ctx[i] = (unsigned char)"Hello wor"[i];
        const int32_t *conts[1] = {c0};
        int64_t nc[1] = {2};
        ssmlm_score_result res[1];
        CHECK_OK(ssmlm_score(mb, ctx, 9, conts, nc, 1, res));
        char *line = strstr(g_out, "\n0 ");
        double lp = NAN;
        CHECK(line && sscanf(line, "%*d %lf", &lp) == 1 && fabs(lp - res[0].logprob) < 1e-5,
              "score --bf16 prints the bf16 model's log-probability: %.6f vs %.6f", lp, res[0].logprob);
    }
    snprintf(args, sizeof args, "generate --model %s --bf16 --dtype f64 --ids \"72 105\"", dir);
    CHECK(run(args) == 1 && strstr(g_out, "error:") && strstr(g_out, "bf16") && strstr(g_out, "hint:"),
          "generate --bf16 --dtype f64 refused: %s", g_out);
    CHECK(run("generate --help") == 0 && strstr(g_out, "--bf16"), "generate --help mentions --bf16");
    CHECK(run("score --help") == 0 && strstr(g_out, "--bf16"), "score --help mentions --bf16");
    snprintf(args, sizeof args, "rm -rf %s", dir);
    CHECK(system(args) == 0, "cleanup");
    ssmlm_model_free(m);
    ssmlm_model_free(mb);
}

int main(void) {
    test_rounding();
    test_kernels();
    test_model("tiny-transformer", 0);
    test_model("tiny-mamba", 0);
    test_model("tiny-mamba2", 1);
    test_model("tiny-hybrid", 0);
    test_files();
    test_state_files();
    test_cli();
    TEST_END();
}

/* test_num_mamba2.c — the Mamba-2 SSD kernels (src/kernels/ssd.c) and the Mamba-2 layer
 * (src/layers/mamba2.c): golden vectors (ssd_core and every case of kind "mamba2"),
 * chunked == recurrence == token-by-token step, and finite-difference gradient checks. */
#include "golden.h"
#include "kernels/ssd.h"
#include "layers/layers.h"
#include <stdlib.h>
#include <string.h>

static real *alloc_r(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(real)); }

static real *alloc_fill(int64_t n, double a, uint64_t *seed) {
    real *x = alloc_r(n);
    fill_uniform(x, n, a, seed);
    return x;
}

static int64_t rup16(int64_t n) { return (n + 15) / 16 * 16; }

/* Relative max error of got vs want (0 if both are zero). */
static double rel_err(const real *got, const real *want, int64_t n) {
    double mx = 0, err = 0;
    for (int64_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs((double)want[i]));
        err = fmax(err, fabs((double)got[i] - (double)want[i]));
        if (!isfinite((double)got[i])) return INFINITY;
    }
    return err / fmax(mx, 1e-30);
}

/* ---- the SSD core: ssd_core golden --------------------------------------------------- */

static void test_ssd_core_golden(void) {
    golden g;
    if (!golden_open(&g, "ssd_core")) return;
    const int64_t B = (int64_t)golden_cfg(&g, "batch"), T = (int64_t)golden_cfg(&g, "seqlen");
    const int64_t H = (int64_t)golden_cfg(&g, "nheads"), P = (int64_t)golden_cfg(&g, "headdim");
    const int64_t G = (int64_t)golden_cfg(&g, "ngroups"), N = (int64_t)golden_cfg(&g, "d_state");
    const int64_t Q = (int64_t)golden_cfg(&g, "chunk_size");
    ssd_dims d = RNAME(ssd_dims_make)(B, T, H, P, G, N, Q);
    const int64_t nx = B * T * H * P, nbc = B * T * G * N, nst = B * H * P * N, ndt = B * T * H;

    real *x = golden_get(&g, "input.x", NULL), *dt_raw = golden_get(&g, "input.dt_raw", NULL);
    real *dt_bias = golden_get(&g, "input.dt_bias", NULL), *A_log = golden_get(&g, "input.A_log", NULL);
    real *Bm = golden_get(&g, "input.B", NULL), *Cm = golden_get(&g, "input.C", NULL);
    real *D = golden_get(&g, "input.D", NULL), *s0 = golden_get(&g, "input.initial_state", NULL);
    real *dout = golden_get(&g, "input.dout", NULL), *dfin = golden_get(&g, "input.dfinal_state", NULL);
    if (!x || !dt_raw || !dt_bias || !A_log || !Bm || !Cm || !D || !s0 || !dout || !dfin) return;

    /* the chain in front of the core: dt = softplus(dt_raw + dt_bias), A = -exp(A_log) */
    real *dt = alloc_r(ndt), *A = alloc_r(H);
    for (int64_t i = 0; i < ndt; i++) dt[i] = RNAME(softplus)(dt_raw[i] + dt_bias[i % H]);
    for (int64_t h = 0; h < H; h++) A[h] = -REXP(A_log[h]);
    golden_check(&g, "inter.dt", dt, ndt, GOLDEN_TOL_FWD);
    golden_check(&g, "inter.A", A, H, GOLDEN_TOL_FWD);

    /* chunked forward */
    real *y = alloc_r(nx), *s1 = alloc_r(nst);
    real *work = alloc_r(RNAME(ssd_forward_work_size)(&d));
    RNAME(ssd_forward)(&d, y, x, dt, A, Bm, Cm, D, s0, s1, work);
    golden_check(&g, "output.y", y, nx, GOLDEN_TOL_FWD);
    golden_check(&g, "output.final_state", s1, nst, GOLDEN_TOL_FWD);

    /* recurrence */
    real *yr = alloc_r(nx), *sr = alloc_r(nst);
    memcpy(sr, s0, (size_t)nst * sizeof(real));
    RNAME(ssd_scan)(&d, yr, x, dt, A, Bm, Cm, D, sr);
    golden_check(&g, "output.y", yr, nx, GOLDEN_TOL_FWD);
    golden_check(&g, "output.final_state", sr, nst, GOLDEN_TOL_FWD);

    /* chunk_states_in[b, c] = final state after the first c Q tokens;
     * Y_diag = each chunk alone from a zero state without the D skip */
    const int64_t nc = (T + Q - 1) / Q;
    real *states_in = alloc_r(B * nc * H * P * N), *ydiag = alloc_r(nx);
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < nc; c++) {
            const int64_t t0 = c * Q, q = T - t0 < Q ? T - t0 : Q;
            ssd_dims dp = RNAME(ssd_dims_make)(1, t0, H, P, G, N, Q);
            real *dst = states_in + (b * nc + c) * H * P * N;
            RNAME(ssd_forward)(&dp, y, x + b * T * H * P, dt + b * T * H, A, Bm + b * T * G * N,
                               Cm + b * T * G * N, D, s0 + b * H * P * N, dst, work);
            ssd_dims dc = RNAME(ssd_dims_make)(1, q, H, P, G, N, Q);
            const int64_t r = b * T + t0;
            RNAME(ssd_forward)(&dc, ydiag + r * H * P, x + r * H * P, dt + r * H, A,
                               Bm + r * G * N, Cm + r * G * N, NULL, NULL, NULL, work);
        }
    golden_check(&g, "inter.chunk_states_in", states_in, B * nc * H * P * N, GOLDEN_TOL_FWD);
    golden_check(&g, "inter.Y_diag", ydiag, nx, GOLDEN_TOL_FWD);

    /* backward: loss = sum(y dout) + sum(final_state dfinal_state) */
    real *dx = alloc_r(nx), *ddt = alloc_r(ndt), *dA = alloc_r(H), *dD = alloc_r(H);
    real *dB = alloc_r(nbc), *dC = alloc_r(nbc), *ds0 = alloc_r(nst);
    real *bwork = alloc_r(RNAME(ssd_backward_work_size)(&d));
    RNAME(ssd_backward)(&d, dout, dfin, x, dt, A, Bm, Cm, D, s0, dx, ddt, dA, dD, dB, dC, ds0, bwork);
    real *ddt_raw = alloc_r(ndt), *ddt_bias = alloc_r(H), *dA_log = alloc_r(H);
    for (int64_t i = 0; i < ndt; i++) {
        ddt_raw[i] = ddt[i] * RNAME(softplus_grad)(dt_raw[i] + dt_bias[i % H]);
        ddt_bias[i % H] += ddt_raw[i];
    }
    for (int64_t h = 0; h < H; h++) dA_log[h] = dA[h] * A[h];
    golden_check(&g, "grad.x", dx, nx, GOLDEN_TOL_GRAD);
    golden_check(&g, "grad.dt_raw", ddt_raw, ndt, GOLDEN_TOL_GRAD);
    golden_check(&g, "grad.dt_bias", ddt_bias, H, GOLDEN_TOL_GRAD);
    golden_check(&g, "grad.A_log", dA_log, H, GOLDEN_TOL_GRAD);
    golden_check(&g, "grad.B", dB, nbc, GOLDEN_TOL_GRAD);
    golden_check(&g, "grad.C", dC, nbc, GOLDEN_TOL_GRAD);
    golden_check(&g, "grad.D", dD, H, GOLDEN_TOL_GRAD);
    golden_check(&g, "grad.initial_state", ds0, nst, GOLDEN_TOL_GRAD);

    real *bufs[] = {x, dt_raw, dt_bias, A_log, Bm, Cm, D, s0, dout, dfin, dt, A, y, s1, work,
                    yr, sr, states_in, ydiag, dx, ddt, dA, dD, dB, dC, ds0, bwork, ddt_raw,
                    ddt_bias, dA_log};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    golden_close(&g);
}

/* ---- the SSD core: random problems with padded strides --------------------------------- */

typedef struct prob {
    ssd_dims d;
    real *x, *dt, *A, *Bm, *Cm, *D, *s0, *dy, *ds1; /* inputs (strided as in d) */
    real *y, *s1, *work;                             /* forward outputs, work */
} prob;

/* A decay dt A wider than the kernels' split-decay range (2 x 60 in fp32, 2 x 300 in fp64):
 * a chunk holding such a token is cut into segments there. */
#define SPIKE_DECAY (REAL_IS_F64 ? 610.0 : 130.0)

/* Random problem; dt in [dtlo, dthi], A in [-amax, -amax/4]; x, B, C and y rows padded.
 * spike: every 5th token (from the 4th) of the even heads decays by SPIKE_DECAY. */
static void prob_make(prob *pr, int64_t B, int64_t T, int64_t H, int64_t P, int64_t G, int64_t N,
                      int64_t Q, double dtlo, double dthi, double amax, int spike, uint64_t seed) {
    memset(pr, 0, sizeof *pr);
    ssd_dims d = RNAME(ssd_dims_make)(B, T, H, P, G, N, Q);
    d.ldx = H * P + 3;
    d.ldy = H * P + 1;
    d.ldbc = G * N + 2;
    d.ldst = H * P * N + 5;
    pr->d = d;
    const int64_t BT = B * T;
    pr->x = alloc_fill(BT * d.ldx, 1.0, &seed);
    pr->Bm = alloc_fill(BT * d.ldbc, 1.0, &seed);
    pr->Cm = alloc_fill(BT * d.ldbc, 1.0, &seed);
    pr->D = alloc_fill(H, 1.0, &seed);
    pr->s0 = alloc_fill(B * d.ldst, 1.0, &seed);
    pr->dy = alloc_fill(BT * d.ldy, 1.0, &seed);
    pr->ds1 = alloc_fill(B * d.ldst, 1.0, &seed);
    pr->dt = alloc_fill(BT * H, 0.5, &seed);
    for (int64_t i = 0; i < BT * H; i++) pr->dt[i] = (real)(dtlo + (dthi - dtlo) * (pr->dt[i] + 0.5));
    pr->A = alloc_fill(H, 0.5, &seed);
    for (int64_t h = 0; h < H; h++) pr->A[h] = (real)(-amax * (0.25 + 0.75 * (pr->A[h] + 0.5)));
    for (int64_t i = 0; spike && i < BT; i++)
        for (int64_t h = 0; h < H; h += 2)
            if (i % T % 5 == 3) pr->dt[i * H + h] = (real)(SPIKE_DECAY / -pr->A[h]);
    pr->y = alloc_r(BT * d.ldy);
    pr->s1 = alloc_r(B * d.ldst);
    int64_t wf = RNAME(ssd_forward_work_size)(&d), wb = RNAME(ssd_backward_work_size)(&d);
    pr->work = alloc_r(wf > wb ? wf : wb);
}

static void prob_free(prob *pr) {
    real *bufs[] = {pr->x, pr->dt, pr->A, pr->Bm, pr->Cm, pr->D, pr->s0, pr->dy, pr->ds1,
                    pr->y, pr->s1, pr->work};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

/* Copies the [B, T, H, P] part of a strided tensor (ld) into dense form. */
static void dense(real *dst, const real *src, int64_t rows, int64_t width, int64_t ld) {
    for (int64_t r = 0; r < rows; r++) memcpy(dst + r * width, src + r * ld, (size_t)width * sizeof(real));
}

/* chunked == recurrence == token-by-token step (y and final state), from state s0 or zeros. */
static void check_consistency(const char *what, prob *pr, int with_state) {
    const ssd_dims *d = &pr->d;
    const int64_t B = d->B, T = d->T, H = d->H, HP = d->H * d->P, HPN = HP * d->N;
    const double tol = REAL_IS_F64 ? 1e-11 : 2e-4;
    const real *st0 = with_state ? pr->s0 : NULL;
    /* chunked */
    for (int64_t i = 0; i < B * T * d->ldy; i++) pr->y[i] = 7; /* padding must stay untouched */
    RNAME(ssd_forward)(d, pr->y, pr->x, pr->dt, pr->A, pr->Bm, pr->Cm, pr->D, st0, pr->s1, pr->work);
    /* recurrence */
    real *yr = alloc_r(B * T * d->ldy), *sr = alloc_r(B * d->ldst);
    if (with_state) memcpy(sr, pr->s0, (size_t)(B * d->ldst) * sizeof(real));
    RNAME(ssd_scan)(d, yr, pr->x, pr->dt, pr->A, pr->Bm, pr->Cm, pr->D, sr);
    /* steps: token t of sequence b sits at row b T + t */
    real *ys = alloc_r(B * T * d->ldy), *ss = alloc_r(B * d->ldst), *dtt = alloc_r(B * H);
    if (with_state) memcpy(ss, pr->s0, (size_t)(B * d->ldst) * sizeof(real));
    ssd_dims ds = *d;
    ds.ldx = T * d->ldx;
    ds.ldy = T * d->ldy;
    ds.ldbc = T * d->ldbc;
    for (int64_t t = 0; t < T; t++) {
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++) dtt[b * H + h] = pr->dt[(b * T + t) * H + h];
        RNAME(ssd_step)(&ds, ys + t * d->ldy, pr->x + t * d->ldx, dtt, pr->A, pr->Bm + t * d->ldbc,
                        pr->Cm + t * d->ldbc, pr->D, ss);
    }
    const int64_t nmax = B * T * HP > B * HPN ? B * T * HP : B * HPN;
    real *a = alloc_r(nmax), *r = alloc_r(nmax), *s = alloc_r(nmax);
    dense(a, pr->y, B * T, HP, d->ldy);
    dense(r, yr, B * T, HP, d->ldy);
    dense(s, ys, B * T, HP, d->ldy);
    double e1 = rel_err(a, r, B * T * HP), e2 = rel_err(s, r, B * T * HP);
    CHECK(e1 <= tol, "%s: chunked vs recurrence y: rel %.3g", what, e1);
    CHECK(e2 <= tol, "%s: step vs recurrence y: rel %.3g", what, e2);
    int pad_ok = 1;
    for (int64_t i = 0; i < B * T; i++)
        if (pr->y[i * d->ldy + HP] != 7) pad_ok = 0;
    CHECK(pad_ok, "%s: chunked forward wrote outside y's rows", what);
    dense(a, pr->s1, B, HPN, d->ldst);
    dense(r, sr, B, HPN, d->ldst);
    dense(s, ss, B, HPN, d->ldst);
    e1 = rel_err(a, r, B * HPN);
    e2 = rel_err(s, r, B * HPN);
    CHECK(e1 <= tol, "%s: chunked vs recurrence final state: rel %.3g", what, e1);
    CHECK(e2 <= tol, "%s: step vs recurrence final state: rel %.3g", what, e2);
    free(yr), free(sr), free(ys), free(ss), free(dtt), free(a), free(r), free(s);
}

static void test_ssd_consistency(void) {
    static const struct {
        int64_t B, T, H, P, G, N, Q;
        double dtlo, dthi, amax;
        int spike;
    } cases[] = {
        {2, 3, 4, 3, 2, 5, 8, 0.01, 1.0, 2.0, 0},     /* T < Q */
        {2, 8, 4, 3, 2, 5, 8, 0.01, 1.0, 2.0, 0},     /* T == Q */
        {2, 21, 6, 4, 3, 7, 8, 0.01, 1.0, 2.0, 0},    /* T % Q != 0, 3 groups */
        {1, 37, 8, 5, 1, 6, 16, 0.001, 0.2, 8.0, 0},  /* one group */
        {3, 19, 4, 3, 4, 4, 5, 0.1, 2.0, 16.0, 0},    /* one head per group */
        {1, 70, 256, 4, 1, 3, 32, 0.01, 0.5, 1.0, 0}, /* several head blocks per group */
        {2, 23, 4, 3, 2, 5, 8, 0.01, 1.0, 2.0, 1},    /* chunks cut into segments */
        {1, 40, 8, 2, 2, 3, 16, 0.2, 1.0, 200.0, 0},  /* wide decays everywhere */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        prob pr;
        prob_make(&pr, cases[i].B, cases[i].T, cases[i].H, cases[i].P, cases[i].G, cases[i].N,
                  cases[i].Q, cases[i].dtlo, cases[i].dthi, cases[i].amax, cases[i].spike, 100 + i);
        char what[96];
        snprintf(what, sizeof what, "ssd case %zu (T=%lld Q=%lld)", i, (long long)cases[i].T,
                 (long long)cases[i].Q);
        check_consistency(what, &pr, 0);
        check_consistency(what, &pr, 1);
        prob_free(&pr);
    }
}

/* The backward does not depend on the chunk length: Q = T (one chunk) vs small Q. */
static void test_ssd_backward_chunk_invariance(void) {
    const double tol = REAL_IS_F64 ? 1e-11 : 5e-4;
    for (int wide = 0; wide < 2; wide++) {
        prob pr;
        prob_make(&pr, 2, 13, 6, 3, 2, 4, 13, 0.01, 1.0, 2.0, wide, 7 + wide);
        const ssd_dims *d = &pr.d;
        const int64_t BT = d->B * d->T, H = d->H;
        real *out[2][8];
        int64_t sz[8] = {BT * d->ldx, BT * H, H, H, BT * d->ldbc, BT * d->ldbc, d->B * d->ldst, 0};
        for (int v = 0; v < 2; v++) {
            ssd_dims dq = *d;
            dq.Q = v ? 4 : d->T;
            real *work = alloc_r(RNAME(ssd_backward_work_size)(&dq));
            for (int j = 0; j < 7; j++) out[v][j] = alloc_r(sz[j]);
            RNAME(ssd_backward)(&dq, pr.dy, pr.ds1, pr.x, pr.dt, pr.A, pr.Bm, pr.Cm, pr.D, pr.s0,
                                out[v][0], out[v][1], out[v][2], out[v][3], out[v][4], out[v][5],
                                out[v][6], work);
            free(work);
        }
        static const char *names[] = {"dx", "ddt", "dA", "dD", "dB", "dC", "dstate0"};
        for (int j = 0; j < 7; j++) {
            double e = rel_err(out[1][j], out[0][j], sz[j]);
            CHECK(e <= tol, "ssd backward%s: %s with Q=4 vs one chunk: rel %.3g", wide ? " (segments)" : "",
                  names[j], e);
            free(out[0][j]);
            free(out[1][j]);
        }
        prob_free(&pr);
    }
}

/* The chunked kernels give bitwise the same results with 1 and 2 threads. */
static void test_ssd_thread_invariance(void) {
    prob pr;
    prob_make(&pr, 2, 45, 48, 8, 2, 6, 16, 0.01, 1.0, 2.0, 0, 77);
    const ssd_dims *d = &pr.d;
    const int64_t BT = d->B * d->T, H = d->H;
    int64_t sz[9] = {BT * d->ldy, d->B * d->ldst, BT * d->ldx, BT * H, H, H, BT * d->ldbc,
                     BT * d->ldbc, d->B * d->ldst};
    real *out[2][9];
    const int saved = ssmlm_get_threads();
    for (int v = 0; v < 2; v++) {
        ssmlm_set_threads(v + 1);
        for (int j = 0; j < 9; j++) out[v][j] = alloc_r(sz[j]);
        RNAME(ssd_forward)(d, out[v][0], pr.x, pr.dt, pr.A, pr.Bm, pr.Cm, pr.D, pr.s0, out[v][1],
                           pr.work);
        RNAME(ssd_backward)(d, pr.dy, pr.ds1, pr.x, pr.dt, pr.A, pr.Bm, pr.Cm, pr.D, pr.s0,
                            out[v][2], out[v][3], out[v][4], out[v][5], out[v][6], out[v][7],
                            out[v][8], pr.work);
    }
    ssmlm_set_threads(saved);
    int same = 1;
    for (int j = 0; j < 9; j++) {
        same &= memcmp(out[0][j], out[1][j], (size_t)sz[j] * sizeof(real)) == 0;
        free(out[0][j]);
        free(out[1][j]);
    }
    CHECK(same, "ssd chunked forward/backward differ between 1 and 2 threads");
    prob_free(&pr);
}

#if REAL_IS_F64
/* Finite differences of loss = sum(y dy) + sum(state1 ds1) through the chunked forward.
 * fd_check's step (1e-6) leaves ~1e-9 absolute round-off in the difference quotient, i.e.
 * up to ~1e-5 relative on entries far below the largest gradient: hence tol 1e-4. */
static double ssd_loss(void *ctx) {
    prob *pr = ctx;
    const ssd_dims *d = &pr->d;
    RNAME(ssd_forward)(d, pr->y, pr->x, pr->dt, pr->A, pr->Bm, pr->Cm, pr->D, pr->s0, pr->s1, pr->work);
    double l = 0;
    for (int64_t i = 0; i < d->B * d->T; i++)
        for (int64_t c = 0; c < d->H * d->P; c++) l += pr->y[i * d->ldy + c] * pr->dy[i * d->ldy + c];
    for (int64_t b = 0; b < d->B; b++)
        for (int64_t c = 0; c < d->H * d->P * d->N; c++)
            l += pr->s1[b * d->ldst + c] * pr->ds1[b * d->ldst + c];
    return l;
}

static void test_ssd_fd(void) {
    for (int wide = 0; wide < 2; wide++) {
        prob pr;
        prob_make(&pr, 2, 11, 4, 3, 2, 5, 4, 0.05, 1.0, 3.0, wide, 55 + wide);
        const ssd_dims *d = &pr.d;
        const int64_t BT = d->B * d->T, H = d->H;
        real *dx = alloc_r(BT * d->ldx), *ddt = alloc_r(BT * H), *dA = alloc_r(H), *dD = alloc_r(H);
        real *dB = alloc_r(BT * d->ldbc), *dC = alloc_r(BT * d->ldbc), *ds0 = alloc_r(d->B * d->ldst);
        RNAME(ssd_backward)(d, pr.dy, pr.ds1, pr.x, pr.dt, pr.A, pr.Bm, pr.Cm, pr.D, pr.s0, dx, ddt,
                            dA, dD, dB, dC, ds0, pr.work);
        const char *sfx = wide ? " (segments)" : "";
        char w[64];
        snprintf(w, sizeof w, "ssd dx%s", sfx);
        fd_check(w, pr.x, dx, BT * d->ldx, ssd_loss, &pr, 40, 1e-4);
        snprintf(w, sizeof w, "ssd ddt%s", sfx);
        fd_check(w, pr.dt, ddt, BT * H, ssd_loss, &pr, 40, 1e-4);
        snprintf(w, sizeof w, "ssd dA%s", sfx);
        fd_check(w, pr.A, dA, H, ssd_loss, &pr, 40, 1e-4);
        snprintf(w, sizeof w, "ssd dD%s", sfx);
        fd_check(w, pr.D, dD, H, ssd_loss, &pr, 40, 1e-4);
        snprintf(w, sizeof w, "ssd dB%s", sfx);
        fd_check(w, pr.Bm, dB, BT * d->ldbc, ssd_loss, &pr, 40, 1e-4);
        snprintf(w, sizeof w, "ssd dC%s", sfx);
        fd_check(w, pr.Cm, dC, BT * d->ldbc, ssd_loss, &pr, 40, 1e-4);
        snprintf(w, sizeof w, "ssd dstate0%s", sfx);
        fd_check(w, pr.s0, ds0, d->B * d->ldst, ssd_loss, &pr, 40, 1e-4);
        free(dx), free(ddt), free(dA), free(dD), free(dB), free(dC), free(ds0);
        prob_free(&pr);
    }
}
#endif

/* ---- the layer ------------------------------------------------------------------------- */

typedef struct layer {
    ssmlm_config c;
    int64_t B, T, D, E, H, P, G, N, K, cd, dp, ss;
    real *w[M2_NSLOTS], *gw[M2_NSLOTS];
    int64_t wn[M2_NSLOTS];
    real *x, *y, *dy, *dx, *acts, *scratch;
} layer;

static void layer_make(layer *L, int64_t D, int64_t N, int64_t K, int64_t expand, int64_t P,
                       int64_t G, int64_t Q, int conv_bias, int64_t B, int64_t T) {
    memset(L, 0, sizeof *L);
    ssmlm_config_defaults(&L->c);
    L->c.d_model = D;
    L->c.m2_d_state = N;
    L->c.m2_d_conv = K;
    L->c.m2_expand = expand;
    L->c.m2_headdim = P;
    L->c.m2_ngroups = G;
    L->c.m2_chunk_size = Q;
    L->c.m2_conv_bias = conv_bias;
    L->B = B, L->T = T, L->D = D, L->P = P, L->G = G, L->N = N, L->K = K;
    L->E = ssmlm_m2_d_inner(&L->c);
    L->H = ssmlm_m2_nheads(&L->c);
    L->cd = ssmlm_m2_conv_dim(&L->c);
    L->dp = ssmlm_m2_in_proj_dim(&L->c);
    L->ss = ssmlm_mamba2_state_size(&L->c);
    L->wn[M2_IN_PROJ] = L->dp * D;
    L->wn[M2_CONV_W] = L->cd * K;
    L->wn[M2_CONV_B] = conv_bias ? L->cd : 0;
    L->wn[M2_DT_BIAS] = L->H;
    L->wn[M2_A_LOG] = L->H;
    L->wn[M2_D] = L->H;
    L->wn[M2_NORM_W] = L->E;
    L->wn[M2_OUT_PROJ] = D * L->E;
    for (int s = M2_IN_PROJ; s < M2_NSLOTS; s++)
        if (L->wn[s]) {
            L->w[s] = alloc_r(L->wn[s]);
            L->gw[s] = alloc_r(L->wn[s]);
        }
    L->x = alloc_r(B * T * D);
    L->y = alloc_r(B * T * D);
    L->dy = alloc_r(B * T * D);
    L->dx = alloc_r(B * T * D);
    L->acts = alloc_r(RNAME(mamba2_acts_size)(&L->c, B, T));
    L->scratch = alloc_r(RNAME(mamba2_scratch_size)(&L->c, B, T));
}

static void layer_free(layer *L) {
    for (int s = 0; s < M2_NSLOTS; s++) free(L->w[s]), free(L->gw[s]);
    free(L->x), free(L->y), free(L->dy), free(L->dx), free(L->acts), free(L->scratch);
}

/* Runs steps over all tokens from zero states: out [B, T, D], state [B][ss]. */
static void layer_decode(layer *L, real *out, real *state) {
    const int64_t B = L->B, T = L->T, D = L->D;
    real *xt = alloc_r(B * D), *yt = alloc_r(B * D);
    real *scr = alloc_r(RNAME(mamba2_scratch_size)(&L->c, B, 1));
    memset(state, 0, (size_t)(B * L->ss) * sizeof(real));
    for (int64_t t = 0; t < T; t++) {
        for (int64_t b = 0; b < B; b++) memcpy(xt + b * D, L->x + (b * T + t) * D, (size_t)D * sizeof(real));
        RNAME(mamba2_step)(&L->c, L->w, B, xt, yt, state, NULL, 0, scr);
        for (int64_t b = 0; b < B; b++) memcpy(out + (b * T + t) * D, yt + b * D, (size_t)D * sizeof(real));
    }
    free(xt), free(yt), free(scr);
}

/* Conv and ssm parts of per-sequence states [B][ss] as [B, cd, K] and [B, H, P, N]. */
static void split_state(const layer *L, const real *st, real *conv, real *ssm) {
    const int64_t ck = L->cd * L->K, hpn = L->H * L->P * L->N;
    for (int64_t b = 0; b < L->B; b++) {
        memcpy(conv + b * ck, st + b * L->ss, (size_t)ck * sizeof(real));
        memcpy(ssm + b * hpn, st + b * L->ss + ck, (size_t)hpn * sizeof(real));
    }
}

static void test_layer_golden(const char *name) {
    golden g;
    if (!golden_open(&g, name)) return;
    const ssmlm_st_tensor *tu = ssmlm_st_find(&g.st, "input.u");
    CHECK(tu && tu->ndim == 3, "%s: input.u missing or not [B, L, d]", name);
    if (!tu || tu->ndim != 3) {
        golden_close(&g);
        return;
    }
    layer L;
    layer_make(&L, (int64_t)golden_cfg(&g, "d_model"), (int64_t)golden_cfg(&g, "d_state"),
               (int64_t)golden_cfg(&g, "d_conv"), (int64_t)golden_cfg(&g, "expand"),
               (int64_t)golden_cfg(&g, "headdim"), (int64_t)golden_cfg(&g, "ngroups"),
               (int64_t)golden_cfg(&g, "chunk_size"), golden_cfg(&g, "conv_bias") != 0,
               tu->shape[0], tu->shape[1]);
    CHECK(L.H == (int64_t)golden_cfg(&g, "nheads") && L.cd == (int64_t)golden_cfg(&g, "conv_dim") &&
              L.dp == (int64_t)golden_cfg(&g, "d_in_proj") && L.E == (int64_t)golden_cfg(&g, "d_inner"),
          "%s: derived sizes differ from index.json", name);
    CHECK(golden_cfg(&g, "norm_eps") == 1e-5, "%s: gated norm eps is not 1e-5", name);
    static const struct {
        int slot;
        const char *name;
    } params[] = {{M2_IN_PROJ, "in_proj.weight"}, {M2_CONV_W, "conv1d.weight"},
                  {M2_CONV_B, "conv1d.bias"},     {M2_DT_BIAS, "dt_bias"},
                  {M2_A_LOG, "A_log"},            {M2_D, "D"},
                  {M2_NORM_W, "norm.weight"},     {M2_OUT_PROJ, "out_proj.weight"}};
    const size_t np = sizeof params / sizeof *params;
    for (size_t i = 0; i < np; i++) {
        if (!L.w[params[i].slot]) continue;
        char pn[96];
        snprintf(pn, sizeof pn, "param.%s", params[i].name);
        int64_t n = 0;
        real *v = golden_get(&g, pn, &n);
        if (v && n == L.wn[params[i].slot]) memcpy(L.w[params[i].slot], v, (size_t)n * sizeof(real));
        CHECK(v && n == L.wn[params[i].slot], "%s: %s has %lld values, expected %lld", name, pn,
              (long long)n, (long long)L.wn[params[i].slot]);
        free(v);
    }
    const int64_t B = L.B, T = L.T, BT = B * T, D = L.D;
    real *u = golden_get(&g, "input.u", NULL), *dout = golden_get(&g, "input.dout", NULL);
    if (u) memcpy(L.x, u, (size_t)(BT * D) * sizeof(real));
    if (dout) memcpy(L.dy, dout, (size_t)(BT * D) * sizeof(real));
    free(u), free(dout);

    /* forward, with the final states */
    real *st = alloc_r(B * L.ss), *conv = alloc_r(B * L.cd * L.K), *ssm = alloc_r(B * L.H * L.P * L.N);
    RNAME(mamba2_forward)(&L.c, L.w, B, T, NULL, L.x, L.y, L.acts, L.scratch, NULL, st, 0);
    golden_check(&g, "output.out", L.y, BT * D, GOLDEN_TOL_FWD);
    split_state(&L, st, conv, ssm);
    golden_check(&g, "output.conv_state", conv, B * L.cd * L.K, GOLDEN_TOL_FWD);
    golden_check(&g, "output.ssm_state", ssm, B * L.H * L.P * L.N, GOLDEN_TOL_FWD);
    /* acts: zxbcdt | y_ssd | rstd;  scratch after forward: xBC_conv | dt | A | v | y_normed */
    golden_check(&g, "inter.zxbcdt", L.acts, BT * L.dp, GOLDEN_TOL_FWD);
    golden_check(&g, "inter.y_ssd", L.acts + rup16(BT * L.dp), BT * L.E, GOLDEN_TOL_FWD);
    golden_check(&g, "inter.xBC_conv", L.scratch, BT * L.cd, GOLDEN_TOL_FWD);
    const int64_t dt_off = rup16(BT * L.cd);
    golden_check(&g, "inter.dt", L.scratch + dt_off, BT * L.H, GOLDEN_TOL_FWD);
    const int64_t yn_off = dt_off + rup16(BT * L.H) + rup16(L.H) + rup16(BT * L.E);
    golden_check(&g, "inter.y_normed", L.scratch + yn_off, BT * L.E, GOLDEN_TOL_FWD);

    /* forward without states gives the same output */
    real *y2 = alloc_r(BT * D);
    RNAME(mamba2_forward)(&L.c, L.w, B, T, NULL, L.x, y2, L.acts, L.scratch, NULL, NULL, 0);
    golden_check(&g, "output.out", y2, BT * D, GOLDEN_TOL_FWD);

    /* decode: one step per token from zero states */
    real *dst = alloc_r(B * L.ss), *dout_dec = alloc_r(BT * D);
    layer_decode(&L, dout_dec, dst);
    golden_check(&g, "decode.out", dout_dec, BT * D, GOLDEN_TOL_FWD);
    split_state(&L, dst, conv, ssm);
    golden_check(&g, "decode.conv_state", conv, B * L.cd * L.K, GOLDEN_TOL_FWD);
    golden_check(&g, "decode.ssm_state", ssm, B * L.H * L.P * L.N, GOLDEN_TOL_FWD);

    /* backward (gradients accumulate: start from a known offset and subtract it) */
    for (size_t i = 0; i < np; i++) {
        real *gp = L.gw[params[i].slot];
        for (int64_t j = 0; gp && j < L.wn[params[i].slot]; j++) gp[j] = 1;
    }
    RNAME(mamba2_backward)(&L.c, L.w, L.gw, B, T, NULL, L.x, L.acts, L.dy, L.dx, L.scratch);
    golden_check(&g, "grad.u", L.dx, BT * D, GOLDEN_TOL_GRAD);
    for (size_t i = 0; i < np; i++) {
        real *gp = L.gw[params[i].slot];
        if (!gp) continue;
        for (int64_t j = 0; j < L.wn[params[i].slot]; j++) gp[j] -= 1;
        char gn[96];
        snprintf(gn, sizeof gn, "grad.%s", params[i].name);
        golden_check(&g, gn, gp, L.wn[params[i].slot], GOLDEN_TOL_GRAD);
    }
    free(st), free(conv), free(ssm), free(y2), free(dst), free(dout_dec);
    layer_free(&L);
    golden_close(&g);
}

/* Random layer parameters (dt around 0.05..1, A in -[1, 4.5], perturbed D and norm weight). */
static void layer_randomize(layer *L, uint64_t seed) {
    fill_uniform(L->w[M2_IN_PROJ], L->wn[M2_IN_PROJ], 0.4, &seed);
    fill_uniform(L->w[M2_CONV_W], L->wn[M2_CONV_W], 0.5, &seed);
    if (L->w[M2_CONV_B]) fill_uniform(L->w[M2_CONV_B], L->wn[M2_CONV_B], 0.3, &seed);
    fill_uniform(L->w[M2_DT_BIAS], L->H, 1.0, &seed);
    for (int64_t h = 0; h < L->H; h++) L->w[M2_DT_BIAS][h] -= 1;
    fill_uniform(L->w[M2_A_LOG], L->H, 0.75, &seed);
    for (int64_t h = 0; h < L->H; h++) L->w[M2_A_LOG][h] += (real)0.75;
    fill_uniform(L->w[M2_D], L->H, 1.0, &seed);
    fill_uniform(L->w[M2_NORM_W], L->E, 0.3, &seed);
    for (int64_t e = 0; e < L->E; e++) L->w[M2_NORM_W][e] += 1;
    fill_uniform(L->w[M2_OUT_PROJ], L->wn[M2_OUT_PROJ], 0.3, &seed);
    fill_uniform(L->x, L->B * L->T * L->D, 1.0, &seed);
    fill_uniform(L->dy, L->B * L->T * L->D, 1.0, &seed);
}

/* Layer forward over T tokens in two calls (prefix, then the rest from the prefix's state),
 * and token-by-token steps, both equal the single forward; also from a non-zero state. */
static void test_layer_state_passing(void) {
    layer L;
    layer_make(&L, 12, 5, 4, 2, 3, 2, 4, 1, 2, 11);
    layer_randomize(&L, 91);
    const int64_t B = L.B, T = L.T, D = L.D, BT = B * T, t1 = 6, t2 = T - t1;
    const double tol = REAL_IS_F64 ? 1e-11 : 2e-4;
    real *st = alloc_r(B * L.ss);
    RNAME(mamba2_forward)(&L.c, L.w, B, T, NULL, L.x, L.y, L.acts, L.scratch, NULL, st, 0);

    /* split in two */
    layer A, C;
    layer_make(&A, 12, 5, 4, 2, 3, 2, 4, 1, 2, t1);
    layer_make(&C, 12, 5, 4, 2, 3, 2, 4, 1, 2, t2);
    for (int s = M2_IN_PROJ; s < M2_NSLOTS; s++)
        if (L.w[s]) memcpy(A.w[s], L.w[s], (size_t)L.wn[s] * sizeof(real)), memcpy(C.w[s], L.w[s], (size_t)L.wn[s] * sizeof(real));
    for (int64_t b = 0; b < B; b++) {
        memcpy(A.x + b * t1 * D, L.x + b * T * D, (size_t)(t1 * D) * sizeof(real));
        memcpy(C.x + b * t2 * D, L.x + (b * T + t1) * D, (size_t)(t2 * D) * sizeof(real));
    }
    real *sa = alloc_r(B * L.ss), *sc = alloc_r(B * L.ss);
    RNAME(mamba2_forward)(&A.c, A.w, B, t1, NULL, A.x, A.y, A.acts, A.scratch, NULL, sa, 0);
    RNAME(mamba2_forward)(&C.c, C.w, B, t2, NULL, C.x, C.y, C.acts, C.scratch, sa, sc, 0);
    real *y2 = alloc_r(BT * D);
    for (int64_t b = 0; b < B; b++) {
        memcpy(y2 + b * T * D, A.y + b * t1 * D, (size_t)(t1 * D) * sizeof(real));
        memcpy(y2 + (b * T + t1) * D, C.y + b * t2 * D, (size_t)(t2 * D) * sizeof(real));
    }
    double e = rel_err(y2, L.y, BT * D);
    CHECK(e <= tol, "mamba2 layer: prefix + continuation vs one forward: rel %.3g", e);
    e = rel_err(sc, st, B * L.ss);
    CHECK(e <= tol, "mamba2 layer: state after continuation: rel %.3g", e);
    /* the same, continuing in place (state0 == state1) */
    memcpy(sc, sa, (size_t)(B * L.ss) * sizeof(real));
    RNAME(mamba2_forward)(&C.c, C.w, B, t2, NULL, C.x, C.y, C.acts, C.scratch, sc, sc, 0);
    e = rel_err(sc, st, B * L.ss);
    CHECK(e <= tol, "mamba2 layer: in-place state continuation: rel %.3g", e);

    /* a continuation shorter than the conv width */
    layer S;
    layer_make(&S, 12, 5, 4, 2, 3, 2, 4, 1, 2, 2);
    for (int s = M2_IN_PROJ; s < M2_NSLOTS; s++)
        if (L.w[s]) memcpy(S.w[s], L.w[s], (size_t)L.wn[s] * sizeof(real));
    for (int64_t b = 0; b < B; b++) memcpy(S.x + b * 2 * D, C.x + b * t2 * D, (size_t)(2 * D) * sizeof(real));
    real *s2 = alloc_r(B * L.ss), *ref = alloc_r(B * L.ss);
    RNAME(mamba2_forward)(&S.c, S.w, B, 2, NULL, S.x, S.y, S.acts, S.scratch, sa, s2, 0);
    memcpy(ref, sa, (size_t)(B * L.ss) * sizeof(real));
    real *xt = alloc_r(B * D), *yt = alloc_r(B * D), *scr = alloc_r(RNAME(mamba2_scratch_size)(&L.c, B, 1));
    double es = 0;
    for (int64_t t = 0; t < 2; t++) {
        for (int64_t b = 0; b < B; b++) memcpy(xt + b * D, S.x + (b * 2 + t) * D, (size_t)D * sizeof(real));
        RNAME(mamba2_step)(&L.c, L.w, B, xt, yt, ref, NULL, 0, scr);
        for (int64_t b = 0; b < B; b++) es = fmax(es, rel_err(yt + b * D, S.y + (b * 2 + t) * D, D));
    }
    CHECK(es <= tol, "mamba2 layer: steps from a state vs forward from it: rel %.3g", es);
    e = rel_err(s2, ref, B * L.ss);
    CHECK(e <= tol, "mamba2 layer: short continuation state vs steps: rel %.3g", e);

    /* steps from zero over the whole sequence */
    real *yd = alloc_r(BT * D), *sd = alloc_r(B * L.ss);
    layer_decode(&L, yd, sd);
    e = rel_err(yd, L.y, BT * D);
    CHECK(e <= tol, "mamba2 layer: steps vs forward: rel %.3g", e);
    e = rel_err(sd, st, B * L.ss);
    CHECK(e <= tol, "mamba2 layer: state after steps vs forward: rel %.3g", e);

    free(st), free(sa), free(sc), free(y2), free(s2), free(ref), free(xt), free(yt), free(scr);
    free(yd), free(sd);
    layer_free(&A), layer_free(&C), layer_free(&S), layer_free(&L);
}

#if REAL_IS_F64
static double layer_loss(void *ctx) {
    layer *L = ctx;
    RNAME(mamba2_forward)(&L->c, L->w, L->B, L->T, NULL, L->x, L->y, L->acts, L->scratch, NULL,
                          NULL, 0);
    double l = 0;
    for (int64_t i = 0; i < L->B * L->T * L->D; i++) l += L->y[i] * L->dy[i];
    return l;
}

static void test_layer_fd(void) {
    static const struct {
        int64_t D, N, K, P, G, Q, B, T;
        int conv_bias;
    } cases[] = {{12, 5, 4, 3, 2, 4, 2, 11, 1}, {10, 3, 3, 5, 1, 3, 3, 7, 0}};
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        layer L;
        layer_make(&L, cases[ci].D, cases[ci].N, cases[ci].K, 2, cases[ci].P, cases[ci].G,
                   cases[ci].Q, cases[ci].conv_bias, cases[ci].B, cases[ci].T);
        layer_randomize(&L, 300 + ci);
        layer_loss(&L);
        RNAME(mamba2_backward)(&L.c, L.w, L.gw, L.B, L.T, NULL, L.x, L.acts, L.dy, L.dx, L.scratch);
        static const char *names[M2_NSLOTS] = {NULL, NULL, "in_proj", "conv_w", "conv_b",
                                               "dt_bias", "A_log", "D", "norm_w", "out_proj"};
        for (int s = M2_IN_PROJ; s < M2_NSLOTS; s++) {
            if (!L.w[s]) continue;
            char w[64];
            snprintf(w, sizeof w, "mamba2 layer case %zu d%s", ci, names[s]);
            fd_check(w, L.w[s], L.gw[s], L.wn[s], layer_loss, &L, 40, 1e-4);
        }
        char w[64];
        snprintf(w, sizeof w, "mamba2 layer case %zu dx", ci);
        fd_check(w, L.x, L.dx, L.B * L.T * L.D, layer_loss, &L, 60, 1e-4);
        layer_free(&L);
    }
}
#endif

int main(void) {
    test_ssd_core_golden();
    test_ssd_consistency();
    test_ssd_backward_chunk_invariance();
    test_ssd_thread_invariance();
#if REAL_IS_F64
    test_ssd_fd();
#endif
    char **cases = golden_cases_of_kind("mamba2");
    int n = 0;
    for (int i = 0; cases[i]; i++, n++) test_layer_golden(cases[i]);
    CHECK(n >= 2, "expected at least 2 golden cases of kind mamba2, found %d", n);
    golden_free_list(cases);
    test_layer_state_passing();
#if REAL_IS_F64
    test_layer_fd();
#endif
    TEST_END();
}

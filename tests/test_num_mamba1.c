/* test_num_mamba1.c — the Mamba-1 selective scan (src/kernels/scan.c) and the Mamba-1 layer
 * (src/layers/mamba1.c): golden vectors (scan_m1 and every case of kind "mamba1": outputs,
 * intermediates, final states, token-by-token decode, all gradients); the scan against a plain
 * reference that keeps every state (several chunks, channel blocks with a tail, several state
 * passes) and batched against one sequence at a time; finite-difference checks of every
 * gradient on other shapes (fp64 build); and chunked prefill == whole sequence ==
 * token-by-token steps, with and without an initial state. */
#include "golden.h"
#include "kernels/scan.h"
#include "layers/layers.h"
#include <stdlib.h>
#include <string.h>

static real *zeros(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(real)); }

static real *copy_of(const real *x, int64_t n) {
    real *y = zeros(n);
    memcpy(y, x, (size_t)n * sizeof(real));
    return y;
}

#if REAL_IS_F64
static double dot(const real *a, const real *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}
#endif

/* Rows t0..t0+n-1 of every sequence of x [B, T, C] into [B, n, C]. */
static void take_rows(real *dst, const real *x, int64_t B, int64_t T, int64_t C, int64_t t0,
                      int64_t n) {
    for (int64_t b = 0; b < B; b++)
        memcpy(dst + b * n * C, x + (b * T + t0) * C, (size_t)(n * C) * sizeof(real));
}

static void put_rows(real *x, const real *src, int64_t B, int64_t T, int64_t C, int64_t t0,
                     int64_t n) {
    for (int64_t b = 0; b < B; b++)
        memcpy(x + (b * T + t0) * C, src + b * n * C, (size_t)(n * C) * sizeof(real));
}

/* ======================================================================================== */
/* selective scan kernel                                                                     */
/* ======================================================================================== */

/* A scan problem with owned arrays (all contiguous: ld = row width). */
typedef struct scan_prob {
    int64_t B, T, E, N;
    real *u, *delta, *bias, *A, *Bm, *Cm, *D, *z, *h0, *dout, *dh1;
    real *out, *h1, *ckpt, *scratch;
    RNAME(scan_m1_io) io;
} scan_prob;

static void scan_prob_io(scan_prob *p) {
    RNAME(scan_m1_io) *s = &p->io;
    memset(s, 0, sizeof *s);
    s->B = p->B;
    s->T = p->T;
    s->E = p->E;
    s->N = p->N;
    s->u = p->u;
    s->ld_u = p->E;
    s->delta = p->delta;
    s->ld_delta = p->E;
    s->delta_bias = p->bias;
    s->delta_softplus = 1;
    s->A = p->A;
    s->Bm = p->Bm;
    s->ld_B = p->N;
    s->Cm = p->Cm;
    s->ld_C = p->N;
    s->D = p->D;
    s->z = p->z;
    s->ld_z = p->E;
}

static void scan_prob_alloc_outputs(scan_prob *p) {
    p->out = zeros(p->B * p->T * p->E);
    p->h1 = zeros(p->B * p->E * p->N);
    p->ckpt = zeros(scan_m1_ckpt_size(p->B, p->T, p->E, p->N));
    p->scratch = zeros(scan_m1_backward_scratch_size(p->B, p->T, p->E, p->N));
}

static void scan_prob_free(scan_prob *p) {
    real *all[] = {p->u, p->delta, p->bias, p->A, p->Bm, p->Cm, p->D, p->z, p->h0,
                   p->dout, p->dh1, p->out, p->h1, p->ckpt, p->scratch};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

typedef struct scan_grad_bufs {
    real *du, *ddelta, *dB, *dC, *dz, *dA, *dD, *dbias, *dh0;
    RNAME(scan_m1_grads) g;
} scan_grad_bufs;

static void scan_grads_alloc(scan_grad_bufs *q, const scan_prob *p) {
    int64_t BTE = p->B * p->T * p->E, BTN = p->B * p->T * p->N;
    q->du = zeros(BTE);
    q->ddelta = zeros(BTE);
    q->dz = zeros(BTE);
    q->dB = zeros(BTN);
    q->dC = zeros(BTN);
    q->dA = zeros(p->E * p->N);
    q->dD = zeros(p->E);
    q->dbias = zeros(p->E);
    q->dh0 = zeros(p->B * p->E * p->N);
    RNAME(scan_m1_grads) *g = &q->g;
    memset(g, 0, sizeof *g);
    g->du = q->du;
    g->ld_du = p->E;
    g->ddelta = q->ddelta;
    g->ld_ddelta = p->E;
    g->dB = q->dB;
    g->ld_dB = p->N;
    g->dC = q->dC;
    g->ld_dC = p->N;
    g->dz = q->dz;
    g->ld_dz = p->E;
    g->dA = q->dA;
    g->dD = q->dD;
    g->ddelta_bias = q->dbias;
    g->dh0 = q->dh0;
    g->ld_dh0 = p->E * p->N;
}

static void scan_grads_free(scan_grad_bufs *q) {
    real *all[] = {q->du, q->ddelta, q->dB, q->dC, q->dz, q->dA, q->dD, q->dbias, q->dh0};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

static void scan_prob_forward(scan_prob *p) {
    int64_t EN = p->E * p->N;
    RNAME(scan_m1_forward)(&p->io, p->out, p->E, p->h0, EN, p->h1, EN, p->ckpt);
}

static void scan_prob_backward(scan_prob *p, scan_grad_bufs *q) {
    int64_t EN = p->E * p->N;
    RNAME(scan_m1_backward)(&p->io, p->ckpt, p->dout, p->E, p->dh1, EN, &q->g, p->scratch);
}

static void test_scan_golden(void) {
    golden g;
    if (!golden_open(&g, "scan_m1")) {
        golden_close(&g);
        return;
    }
    scan_prob p;
    memset(&p, 0, sizeof p);
    p.B = (int64_t)golden_cfg(&g, "batch");
    p.T = (int64_t)golden_cfg(&g, "seqlen");
    p.E = (int64_t)golden_cfg(&g, "dim");
    p.N = (int64_t)golden_cfg(&g, "d_state");
    CHECK(golden_cfg(&g, "delta_softplus") == 1, "scan_m1: expected delta_softplus");
    p.u = golden_get(&g, "input.u", NULL);
    p.delta = golden_get(&g, "input.delta", NULL);
    p.bias = golden_get(&g, "input.delta_bias", NULL);
    p.A = golden_get(&g, "input.A", NULL);
    p.Bm = golden_get(&g, "input.B", NULL);
    p.Cm = golden_get(&g, "input.C", NULL);
    p.D = golden_get(&g, "input.D", NULL);
    p.z = golden_get(&g, "input.z", NULL);
    p.dout = golden_get(&g, "input.dout", NULL);
    if (!p.u || !p.delta || !p.bias || !p.A || !p.Bm || !p.Cm || !p.D || !p.z || !p.dout) {
        scan_prob_free(&p);
        golden_close(&g);
        return;
    }
    scan_prob_io(&p);
    scan_prob_alloc_outputs(&p);
    scan_prob_forward(&p);
    int64_t BTE = p.B * p.T * p.E, BTN = p.B * p.T * p.N;
    golden_check(&g, "output.out", p.out, BTE, GOLDEN_TOL_FWD);
    golden_check(&g, "output.last_state", p.h1, p.B * p.E * p.N, GOLDEN_TOL_FWD);

    scan_grad_bufs q;
    scan_grads_alloc(&q, &p);
    scan_prob_backward(&p, &q);
    golden_check(&g, "grad.u", q.du, BTE, GOLDEN_TOL_GRAD);
    golden_check(&g, "grad.delta", q.ddelta, BTE, GOLDEN_TOL_GRAD);
    golden_check(&g, "grad.A", q.dA, p.E * p.N, GOLDEN_TOL_GRAD);
    golden_check(&g, "grad.B", q.dB, BTN, GOLDEN_TOL_GRAD);
    golden_check(&g, "grad.C", q.dC, BTN, GOLDEN_TOL_GRAD);
    golden_check(&g, "grad.D", q.dD, p.E, GOLDEN_TOL_GRAD);
    golden_check(&g, "grad.z", q.dz, BTE, GOLDEN_TOL_GRAD);
    golden_check(&g, "grad.delta_bias", q.dbias, p.E, GOLDEN_TOL_GRAD);

    /* parameter-like gradients accumulate: a second backward doubles them */
    scan_prob_backward(&p, &q);
    real *want = golden_get(&g, "grad.A", NULL);
    if (want) {
        for (int64_t i = 0; i < p.E * p.N; i++) want[i] *= 2;
        golden_compare("scan_m1 grad.A accumulates", q.dA, want, p.E * p.N, GOLDEN_TOL_GRAD);
        free(want);
    }
    scan_grads_free(&q);
    scan_prob_free(&p);
    golden_close(&g);
}

/* A random problem; optional parts (bias, D, z, h0, dh1) present if `full`. */
static void scan_prob_random(scan_prob *p, int64_t B, int64_t T, int64_t E, int64_t N, int full,
                             uint64_t seed) {
    memset(p, 0, sizeof *p);
    p->B = B;
    p->T = T;
    p->E = E;
    p->N = N;
    int64_t BTE = B * T * E, BTN = B * T * N, EN = E * N;
    p->u = zeros(BTE);
    fill_uniform(p->u, BTE, 1.0, &seed);
    p->delta = zeros(BTE);
    fill_uniform(p->delta, BTE, 1.5, &seed);
    p->A = zeros(EN);
    fill_uniform(p->A, EN, 0.5, &seed);
    for (int64_t i = 0; i < EN; i++) p->A[i] = -(real)(1 + i % N) * ((real)1 + p->A[i]);
    p->Bm = zeros(BTN);
    fill_uniform(p->Bm, BTN, 1.0, &seed);
    p->Cm = zeros(BTN);
    fill_uniform(p->Cm, BTN, 1.0, &seed);
    p->dout = zeros(BTE);
    fill_uniform(p->dout, BTE, 1.0, &seed);
    if (full) {
        p->bias = zeros(E);
        fill_uniform(p->bias, E, 1.0, &seed);
        for (int64_t e = 0; e < E; e++) p->bias[e] -= 1;
        p->D = zeros(E);
        fill_uniform(p->D, E, 1.0, &seed);
        p->z = zeros(BTE);
        fill_uniform(p->z, BTE, 2.0, &seed);
        p->h0 = zeros(B * EN);
        fill_uniform(p->h0, B * EN, 1.0, &seed);
        p->dh1 = zeros(B * EN);
        fill_uniform(p->dh1, B * EN, 1.0, &seed);
    }
    scan_prob_io(p);
    scan_prob_alloc_outputs(p);
}

#if REAL_IS_F64
static double scan_loss(void *ctx) {
    scan_prob *p = ctx;
    scan_prob_forward(p);
    double l = dot(p->out, p->dout, p->B * p->T * p->E);
    if (p->dh1) l += dot(p->h1, p->dh1, p->B * p->E * p->N);
    return l;
}

/* Finite differences of every scan gradient. */
static void test_scan_fd(int64_t B, int64_t T, int64_t E, int64_t N, int full, uint64_t seed) {
    scan_prob p;
    scan_prob_random(&p, B, T, E, N, full, seed);
    scan_prob_forward(&p);
    scan_grad_bufs q;
    scan_grads_alloc(&q, &p);
    scan_prob_backward(&p, &q);
    char what[128];
    int64_t BTE = B * T * E, BTN = B * T * N;
#define SCAN_FD(name, x, gx, n)                                                             \
    do {                                                                                    \
        snprintf(what, sizeof what, "scan FD B%lld T%lld E%lld N%lld full%d: %s",          \
                 (long long)B, (long long)T, (long long)E, (long long)N, full, name);       \
        fd_check(what, x, gx, n, scan_loss, &p, 60, 1e-5);                                  \
    } while (0)
    SCAN_FD("u", p.u, q.du, BTE);
    SCAN_FD("delta", p.delta, q.ddelta, BTE);
    SCAN_FD("A", p.A, q.dA, E * N);
    SCAN_FD("B", p.Bm, q.dB, BTN);
    SCAN_FD("C", p.Cm, q.dC, BTN);
    if (full) {
        SCAN_FD("D", p.D, q.dD, E);
        SCAN_FD("z", p.z, q.dz, BTE);
        SCAN_FD("delta_bias", p.bias, q.dbias, E);
        SCAN_FD("h0", p.h0, q.dh0, B * E * N);
    }
#undef SCAN_FD
    scan_grads_free(&q);
    scan_prob_free(&p);
}

#endif

/* Forward over the whole sequence == two forwards chained through the state == steps. */
static void test_scan_chain(int64_t B, int64_t T, int64_t E, int64_t N, int64_t T1, int full,
                            uint64_t seed) {
    scan_prob p;
    scan_prob_random(&p, B, T, E, N, full, seed);
    scan_prob_forward(&p);
    const int64_t EN = E * N, BTE = B * T * E, T2 = T - T1;
    char what[160];
    snprintf(what, sizeof what, "scan chain B%lld T%lld E%lld N%lld split %lld full%d",
             (long long)B, (long long)T, (long long)E, (long long)N, (long long)T1, full);
    double tol = REAL_IS_F64 ? 1e-12 : 1e-5;

    /* two parts: state passes from the first to the second (in place: h1 aliases h0) */
    real *out = zeros(BTE), *h = p.h0 ? copy_of(p.h0, B * EN) : zeros(B * EN);
    int64_t parts[2][2] = {{0, T1}, {T1, T2}};
    for (int k = 0; k < 2; k++) {
        int64_t t0 = parts[k][0], n = parts[k][1];
        scan_prob q;
        memset(&q, 0, sizeof q);
        q.B = B;
        q.T = n;
        q.E = E;
        q.N = N;
        q.u = zeros(B * n * E);
        take_rows(q.u, p.u, B, T, E, t0, n);
        q.delta = zeros(B * n * E);
        take_rows(q.delta, p.delta, B, T, E, t0, n);
        q.Bm = zeros(B * n * N);
        take_rows(q.Bm, p.Bm, B, T, N, t0, n);
        q.Cm = zeros(B * n * N);
        take_rows(q.Cm, p.Cm, B, T, N, t0, n);
        if (p.z) {
            q.z = zeros(B * n * E);
            take_rows(q.z, p.z, B, T, E, t0, n);
        }
        q.A = p.A;
        q.D = p.D;
        q.bias = p.bias;
        scan_prob_io(&q);
        real *o = zeros(B * n * E);
        RNAME(scan_m1_forward)(&q.io, o, E, h, EN, h, EN, NULL);
        put_rows(out, o, B, T, E, t0, n);
        free(o);
        free(q.u);
        free(q.delta);
        free(q.Bm);
        free(q.Cm);
        free(q.z);
    }
    char w2[200];
    snprintf(w2, sizeof w2, "%s: output", what);
    golden_compare(w2, out, p.out, BTE, tol);
    snprintf(w2, sizeof w2, "%s: final state", what);
    golden_compare(w2, h, p.h1, B * EN, tol);

    /* token by token */
    memset(out, 0, (size_t)BTE * sizeof(real));
    if (p.h0) memcpy(h, p.h0, (size_t)(B * EN) * sizeof(real));
    else memset(h, 0, (size_t)(B * EN) * sizeof(real));
    for (int64_t t = 0; t < T; t++) {
        RNAME(scan_m1_io) s = p.io;
        s.T = 1;
        s.u = p.u + t * E;
        s.ld_u = T * E;
        s.delta = p.delta + t * E;
        s.ld_delta = T * E;
        s.Bm = p.Bm + t * N;
        s.ld_B = T * N;
        s.Cm = p.Cm + t * N;
        s.ld_C = T * N;
        if (p.z) {
            s.z = p.z + t * E;
            s.ld_z = T * E;
        }
        RNAME(scan_m1_step)(&s, out + t * E, T * E, h, EN);
    }
    snprintf(w2, sizeof w2, "%s: steps output", what);
    golden_compare(w2, out, p.out, BTE, tol);
    snprintf(w2, sizeof w2, "%s: steps state", what);
    golden_compare(w2, h, p.h1, B * EN, tol);
    free(out);
    free(h);
    scan_prob_free(&p);
}

/* ---- plain reference: every state kept, double accumulation (math.md §1 step 6, §4.2) ---- */

static double ref_softplus(double v) { return v > 20 ? v : log1p(exp(v)); }
static double ref_sigmoid(double v) { return 1 / (1 + exp(-v)); }

/* Forward and backward of the scan of p, written as plainly as possible: out, h1 and every
 * gradient (dA, dD, dbias zeroed first) into q. */
static void ref_scan(const scan_prob *p, real *out, real *h1, scan_grad_bufs *q) {
    const int64_t B = p->B, T = p->T, E = p->E, N = p->N;
    double *h = calloc((size_t)((T + 1) * N), sizeof *h), *g = calloc((size_t)N, sizeof *g);
    double *dB = calloc((size_t)(B * T * N), sizeof *dB);
    double *dC = calloc((size_t)(B * T * N), sizeof *dC);
    memset(q->dA, 0, (size_t)(E * N) * sizeof(real));
    memset(q->dD, 0, (size_t)E * sizeof(real));
    memset(q->dbias, 0, (size_t)E * sizeof(real));
    for (int64_t b = 0; b < B; b++)
        for (int64_t e = 0; e < E; e++) {
            const int64_t EN = E * N;
            for (int64_t n = 0; n < N; n++) h[n] = p->h0 ? p->h0[b * EN + e * N + n] : 0;
            /* forward, keeping h_t in h[(t+1) N ..] */
            for (int64_t t = 0; t < T; t++) {
                int64_t r = b * T + t;
                double dt = ref_softplus((double)p->delta[r * E + e] + (p->bias ? p->bias[e] : 0));
                double u = p->u[r * E + e], y = p->D ? p->D[e] * u : 0;
                for (int64_t n = 0; n < N; n++) {
                    double a = exp(dt * p->A[e * N + n]);
                    h[(t + 1) * N + n] = a * h[t * N + n] + dt * u * p->Bm[r * N + n];
                    y += h[(t + 1) * N + n] * p->Cm[r * N + n];
                }
                if (p->z) y *= p->z[r * E + e] * ref_sigmoid(p->z[r * E + e]);
                out[r * E + e] = (real)y;
            }
            for (int64_t n = 0; n < N; n++) {
                h1[b * EN + e * N + n] = (real)h[T * N + n];
                g[n] = p->dh1 ? p->dh1[b * EN + e * N + n] : 0; /* a_{t+1} g_{t+1} */
            }
            /* reverse */
            double dD = 0, dbias = 0;
            for (int64_t t = T - 1; t >= 0; t--) {
                int64_t r = b * T + t;
                double pre = (double)p->delta[r * E + e] + (p->bias ? p->bias[e] : 0);
                double dt = ref_softplus(pre), u = p->u[r * E + e], dout = p->dout[r * E + e];
                double dy = dout, y = p->D ? p->D[e] * u : 0;
                for (int64_t n = 0; n < N; n++) y += h[(t + 1) * N + n] * p->Cm[r * N + n];
                if (p->z) {
                    double zv = p->z[r * E + e], sz = ref_sigmoid(zv);
                    dy = dout * zv * sz;
                    q->dz[r * E + e] = (real)(dout * y * sz * (1 + zv * (1 - sz)));
                }
                double du = p->D ? p->D[e] * dy : 0, ddt = 0;
                dD += dy * u;
                for (int64_t n = 0; n < N; n++) {
                    double a = exp(dt * p->A[e * N + n]), hp = h[t * N + n];
                    double gn = g[n] + dy * p->Cm[r * N + n];
                    dC[r * N + n] += dy * h[(t + 1) * N + n];
                    dB[r * N + n] += gn * dt * u;
                    du += gn * dt * p->Bm[r * N + n];
                    ddt += gn * (p->Bm[r * N + n] * u + p->A[e * N + n] * a * hp);
                    q->dA[e * N + n] += (real)(gn * dt * a * hp);
                    g[n] = a * gn;
                }
                double dpre = pre > 20 ? ddt : ddt * ref_sigmoid(pre);
                q->du[r * E + e] = (real)du;
                q->ddelta[r * E + e] = (real)dpre;
                dbias += dpre;
            }
            q->dD[e] += (real)dD;
            q->dbias[e] += (real)dbias;
            for (int64_t n = 0; n < N; n++) q->dh0[b * EN + e * N + n] = (real)g[n];
        }
    for (int64_t i = 0; i < B * T * N; i++) {
        q->dB[i] = (real)dB[i];
        q->dC[i] = (real)dC[i];
    }
    free(h);
    free(g);
    free(dB);
    free(dC);
}

/* The kernel against the plain reference (chunk boundaries, channel and state blocks). */
static void test_scan_reference(int64_t B, int64_t T, int64_t E, int64_t N, int full,
                                uint64_t seed) {
    scan_prob p;
    scan_prob_random(&p, B, T, E, N, full, seed);
    scan_prob_forward(&p);
    scan_grad_bufs q, r;
    scan_grads_alloc(&q, &p);
    scan_grads_alloc(&r, &p);
    scan_prob_backward(&p, &q);
    const int64_t BTE = B * T * E, BTN = B * T * N, EN = E * N;
    real *out = zeros(BTE), *h1 = zeros(B * EN);
    ref_scan(&p, out, h1, &r);
    double tf = REAL_IS_F64 ? 1e-12 : 1e-5, tg = REAL_IS_F64 ? 1e-12 : 1e-4;
    char w[160];
#define REF_CMP(name, got, want, n, tol)                                                     \
    do {                                                                                    \
        snprintf(w, sizeof w, "scan vs reference B%lld T%lld E%lld N%lld full%d: %s",      \
                 (long long)B, (long long)T, (long long)E, (long long)N, full, name);       \
        golden_compare(w, got, want, n, tol);                                               \
    } while (0)
    REF_CMP("out", p.out, out, BTE, tf);
    REF_CMP("final state", p.h1, h1, B * EN, tf);
    REF_CMP("du", q.du, r.du, BTE, tg);
    REF_CMP("ddelta", q.ddelta, r.ddelta, BTE, tg);
    REF_CMP("dB", q.dB, r.dB, BTN, tg);
    REF_CMP("dC", q.dC, r.dC, BTN, tg);
    REF_CMP("dA", q.dA, r.dA, EN, tg);
    if (full) {
        REF_CMP("dz", q.dz, r.dz, BTE, tg);
        REF_CMP("dD", q.dD, r.dD, E, tg);
        REF_CMP("ddelta_bias", q.dbias, r.dbias, E, tg);
        REF_CMP("dh0", q.dh0, r.dh0, B * EN, tg);
    }
#undef REF_CMP
    free(out);
    free(h1);
    scan_grads_free(&q);
    scan_grads_free(&r);
    scan_prob_free(&p);
}

/* A batch large enough for the kernel to give several channel blocks to one task, against the
 * same sequences one at a time (one block per task): every output and gradient. */
static void test_scan_batched(int64_t B, int64_t T, int64_t E, int64_t N, uint64_t seed) {
    scan_prob p;
    scan_prob_random(&p, B, T, E, N, 1, seed);
    scan_prob_forward(&p);
    scan_grad_bufs q;
    scan_grads_alloc(&q, &p);
    scan_prob_backward(&p, &q);
    const int64_t TE = T * E, TN = T * N, EN = E * N;
    real *dA = zeros(EN), *dD = zeros(E), *dbias = zeros(E);
    double tol = REAL_IS_F64 ? 1e-12 : 1e-5;
    int ok = 1;
    for (int64_t b = 0; b < B; b++) {
        scan_prob o;
        memset(&o, 0, sizeof o);
        o.B = 1;
        o.T = T;
        o.E = E;
        o.N = N;
        o.u = p.u + b * TE;
        o.delta = p.delta + b * TE;
        o.z = p.z + b * TE;
        o.Bm = p.Bm + b * TN;
        o.Cm = p.Cm + b * TN;
        o.h0 = p.h0 + b * EN;
        o.dh1 = p.dh1 + b * EN;
        o.dout = p.dout + b * TE;
        o.A = p.A;
        o.D = p.D;
        o.bias = p.bias;
        scan_prob_io(&o);
        scan_prob_alloc_outputs(&o);
        scan_prob_forward(&o);
        scan_grad_bufs r;
        scan_grads_alloc(&r, &o);
        scan_prob_backward(&o, &r);
        ok &= golden_compare("scan batched: out", p.out + b * TE, o.out, TE, tol);
        ok &= golden_compare("scan batched: h1", p.h1 + b * EN, o.h1, EN, tol);
        ok &= golden_compare("scan batched: du", q.du + b * TE, r.du, TE, tol);
        ok &= golden_compare("scan batched: ddelta", q.ddelta + b * TE, r.ddelta, TE, tol);
        ok &= golden_compare("scan batched: dz", q.dz + b * TE, r.dz, TE, tol);
        ok &= golden_compare("scan batched: dB", q.dB + b * TN, r.dB, TN, tol);
        ok &= golden_compare("scan batched: dC", q.dC + b * TN, r.dC, TN, tol);
        ok &= golden_compare("scan batched: dh0", q.dh0 + b * EN, r.dh0, EN, tol);
        for (int64_t i = 0; i < EN; i++) dA[i] += r.dA[i];
        for (int64_t e = 0; e < E; e++) {
            dD[e] += r.dD[e];
            dbias[e] += r.dbias[e];
        }
        scan_grads_free(&r);
        free(o.out);
        free(o.h1);
        free(o.ckpt);
        free(o.scratch);
        if (!ok) break;
    }
    golden_compare("scan batched: dA", q.dA, dA, EN, tol);
    golden_compare("scan batched: dD", q.dD, dD, E, tol);
    golden_compare("scan batched: ddelta_bias", q.dbias, dbias, E, tol);
    free(dA);
    free(dD);
    free(dbias);
    scan_grads_free(&q);
    scan_prob_free(&p);
}

/* The fp32 vectorizable exp / softplus / sigmoid against the C library. */
static void test_fast_math(void) {
    double worst_exp = 0, worst_sp = 0, worst_sig = 0;
    for (int i = 0; i <= 200000; i++) {
        double v = -90.0 + 120.0 * i / 200000.0;
        double ge = (double)RNAME(vexp)((real)v), ref_e = exp((double)(real)v);
        /* below e^-85 the fp32 version flushes towards e^-87 (harmless for decays) */
        if (ref_e > 1e-37) worst_exp = fmax(worst_exp, fabs(ge - ref_e) / ref_e);
        double x = (double)(real)(v / 3.0);
        real sg;
        double sp = (double)RNAME(vsoftplus)((real)x, &sg);
        double ref_sp = x > 20 ? x : log1p(exp(x));
        worst_sp = fmax(worst_sp, fabs(sp - ref_sp) / fmax(ref_sp, 1e-30));
        double ref_sig = 1 / (1 + exp(-x));
        worst_sig = fmax(worst_sig, fabs((double)sg - ref_sig) / ref_sig);
        double sig2 = (double)RNAME(vsigmoid)((real)x);
        worst_sig = fmax(worst_sig, fabs(sig2 - ref_sig) / ref_sig);
    }
    double tol = REAL_IS_F64 ? 1e-15 : 1e-6;
    CHECK(worst_exp <= tol, "vexp: relative error %.3g", worst_exp);
    /* NaN propagates (and never reaches the integer conversion: UBSan checks that) */
    volatile real nanv = (real)NAN;
    CHECK(isnan((double)RNAME(vexp)(nanv)), "vexp(NaN) is NaN");
    CHECK(RNAME(vexp)((real)-1e30) >= 0 && RNAME(vexp)((real)-1e30) < (real)1e-30, "vexp of a huge negative is ~0");
    CHECK(worst_sp <= tol, "vsoftplus: relative error %.3g", worst_sp);
    CHECK(worst_sig <= tol, "vsoftplus/sigmoid: relative error %.3g", worst_sig);
}

/* ======================================================================================== */
/* Mamba-1 layer                                                                             */
/* ======================================================================================== */

static const struct {
    int slot;
    const char *name;
} m1_params[] = {
    {M1_IN_PROJ, "in_proj.weight"},   {M1_CONV_W, "conv1d.weight"},
    {M1_CONV_B, "conv1d.bias"},       {M1_X_PROJ, "x_proj.weight"},
    {M1_DT_PROJ_W, "dt_proj.weight"}, {M1_DT_PROJ_B, "dt_proj.bias"},
    {M1_A_LOG, "A_log"},              {M1_D, "D"},
    {M1_OUT_PROJ, "out_proj.weight"},
};
#define N_M1_PARAMS ((int)(sizeof m1_params / sizeof m1_params[0]))

static int64_t m1_param_numel(const ssmlm_config *c, int slot) {
    int64_t D = c->d_model, E = ssmlm_m1_d_inner(c), N = c->m1_d_state, K = c->m1_d_conv,
            R = c->m1_dt_rank;
    switch (slot) {
    case M1_IN_PROJ: return 2 * E * D;
    case M1_CONV_W: return E * K;
    case M1_CONV_B: return E;
    case M1_X_PROJ: return (R + 2 * N) * E;
    case M1_DT_PROJ_W: return E * R;
    case M1_DT_PROJ_B: return E;
    case M1_A_LOG: return E * N;
    case M1_D: return E;
    case M1_OUT_PROJ: return D * E;
    default: return 0;
    }
}

/* A layer problem: parameters (w), gradients (gw), input, cotangent, buffers. */
typedef struct m1_prob {
    ssmlm_config c;
    int64_t B, T;
    real *w[SSMLM_MAX_SLOTS], *gw[SSMLM_MAX_SLOTS];
    real *x, *dout, *y, *dx, *acts, *scratch, *state1;
} m1_prob;

static void m1_prob_buffers(m1_prob *p) {
    int64_t M = p->B * p->T, D = p->c.d_model;
    for (int i = 0; i < N_M1_PARAMS; i++) {
        int s = m1_params[i].slot;
        p->gw[s] = p->w[s] ? zeros(m1_param_numel(&p->c, s)) : NULL;
    }
    p->y = zeros(M * D);
    p->dx = zeros(M * D);
    p->acts = zeros(RNAME(mamba1_acts_size)(&p->c, p->B, p->T));
    p->scratch = zeros(RNAME(mamba1_scratch_size)(&p->c, p->B, p->T));
    p->state1 = zeros(p->B * ssmlm_mamba1_state_size(&p->c));
}

static void m1_prob_free(m1_prob *p) {
    for (int i = 0; i < SSMLM_MAX_SLOTS; i++) {
        free(p->w[i]);
        free(p->gw[i]);
    }
    free(p->x);
    free(p->dout);
    free(p->y);
    free(p->dx);
    free(p->acts);
    free(p->scratch);
    free(p->state1);
}

static void m1_forward(m1_prob *p, int with_acts, const real *state0, real *state1) {
    RNAME(mamba1_forward)(&p->c, p->w, p->B, p->T, NULL, p->x, p->y, with_acts ? p->acts : NULL,
                          p->scratch, state0, state1, 0);
}

static void m1_backward(m1_prob *p) {
    RNAME(mamba1_backward)(&p->c, p->w, p->gw, p->B, p->T, NULL, p->x, p->acts, p->dout, p->dx,
                           p->scratch);
}

/* Runs mamba1_step over every token from a zero state; y [B, T, D], state [B][S]. */
static void m1_decode(m1_prob *p, const real *state0, real *y, real *state) {
    int64_t B = p->B, T = p->T, D = p->c.d_model, S = ssmlm_mamba1_state_size(&p->c);
    real *scr = zeros(RNAME(mamba1_scratch_size)(&p->c, B, 1));
    real *xt = zeros(B * D), *yt = zeros(B * D);
    int64_t *pos = calloc((size_t)B, sizeof *pos);
    if (state0) memcpy(state, state0, (size_t)(B * S) * sizeof(real));
    else memset(state, 0, (size_t)(B * S) * sizeof(real));
    for (int64_t t = 0; t < T; t++) {
        take_rows(xt, p->x, B, T, D, t, 1);
        RNAME(mamba1_step)(&p->c, p->w, B, xt, yt, state, pos, 0, scr);
        put_rows(y, yt, B, T, D, t, 1);
        for (int64_t b = 0; b < B; b++) pos[b]++;
    }
    free(scr);
    free(xt);
    free(yt);
    free(pos);
}

/* Splits states [B][S] into conv [B, E, K] and ssm [B, E, N]. */
static void m1_split_state(const ssmlm_config *c, int64_t B, const real *state, real *conv,
                           real *ssm) {
    int64_t E = ssmlm_m1_d_inner(c), K = c->m1_d_conv, N = c->m1_d_state;
    int64_t S = ssmlm_mamba1_state_size(c);
    for (int64_t b = 0; b < B; b++) {
        memcpy(conv + b * E * K, state + b * S, (size_t)(E * K) * sizeof(real));
        memcpy(ssm + b * E * N, state + b * S + E * K, (size_t)(E * N) * sizeof(real));
    }
}

static void test_layer_golden(const char *case_name) {
    golden g;
    if (!golden_open(&g, case_name)) {
        golden_close(&g);
        return;
    }
    m1_prob p;
    memset(&p, 0, sizeof p);
    ssmlm_config_defaults(&p.c);
    p.c.ssm_kind = SSMLM_SSM_MAMBA1;
    p.c.d_model = (int64_t)golden_cfg(&g, "d_model");
    p.c.m1_d_state = (int64_t)golden_cfg(&g, "d_state");
    p.c.m1_d_conv = (int64_t)golden_cfg(&g, "d_conv");
    p.c.m1_expand = (int64_t)golden_cfg(&g, "expand");
    p.c.m1_dt_rank = (int64_t)golden_cfg(&g, "dt_rank_resolved");
    p.c.m1_conv_bias = golden_cfg(&g, "conv_bias") == 1;
    CHECK(golden_cfg(&g, "bias") != 1, "%s: in/out projection biases are not supported", case_name);
    const ssmlm_st_tensor *tu = ssmlm_st_find(&g.st, "input.u");
    CHECK(tu && tu->ndim == 3, "%s: input.u [B, T, D] missing", case_name);
    if (!tu || tu->ndim != 3) {
        golden_close(&g);
        return;
    }
    p.B = tu->shape[0];
    p.T = tu->shape[1];
    CHECK(tu->shape[2] == p.c.d_model, "%s: input.u width", case_name);
    const int64_t B = p.B, T = p.T, M = B * T, D = p.c.d_model, E = ssmlm_m1_d_inner(&p.c);
    const int64_t N = p.c.m1_d_state, K = p.c.m1_d_conv, R = p.c.m1_dt_rank, P = R + 2 * N;
    int ok = 1;
    for (int i = 0; i < N_M1_PARAMS; i++) {
        char name[128];
        snprintf(name, sizeof name, "param.%s", m1_params[i].name);
        int s = m1_params[i].slot;
        if (s == M1_CONV_B && !p.c.m1_conv_bias) {
            CHECK(!golden_has(&g, name), "%s: conv bias present but conv_bias is off", case_name);
            continue;
        }
        int64_t n = 0;
        p.w[s] = golden_get(&g, name, &n);
        ok = ok && p.w[s] && n == m1_param_numel(&p.c, s);
        CHECK(!p.w[s] || n == m1_param_numel(&p.c, s), "%s: %s has %lld values", case_name,
              name, (long long)n);
    }
    p.x = golden_get(&g, "input.u", NULL);
    p.dout = golden_get(&g, "input.dout", NULL);
    if (!ok || !p.x || !p.dout) {
        m1_prob_free(&p);
        golden_close(&g);
        return;
    }
    m1_prob_buffers(&p);
    real tol_f = GOLDEN_TOL_FWD, tol_g = GOLDEN_TOL_GRAD;

    /* forward (with saved activations) and the state after the last token */
    m1_forward(&p, 1, NULL, p.state1);
    golden_check(&g, "output.out", p.y, M * D, tol_f);
    real *conv = zeros(B * E * K), *ssm = zeros(B * E * N);
    m1_split_state(&p.c, B, p.state1, conv, ssm);
    golden_check(&g, "output.conv_state", conv, B * E * K, tol_f);
    golden_check(&g, "output.ssm_state", ssm, B * E * N, tol_f);

    /* intermediates, read from the saved activations (layout in mamba1.c: xz [M,2E],
     * conv [M,E], xc [M,E], x_dbl [M,R+2N], dt before bias [M,E], gated y [M,E]) */
    const real *xz = p.acts, *xc = xz + M * 3 * E, *xdbl = xc + M * E, *dt = xdbl + M * P,
               *yg = dt + M * E;
    if (golden_has(&g, "inter.xz")) golden_check(&g, "inter.xz", xz, M * 2 * E, tol_f);
    if (golden_has(&g, "inter.x_conv")) golden_check(&g, "inter.x_conv", xc, M * E, tol_f);
    if (golden_has(&g, "inter.x_dbl")) golden_check(&g, "inter.x_dbl", xdbl, M * P, tol_f);
    if (golden_has(&g, "inter.dt_pre")) {
        real *dtp = zeros(M * E);
        for (int64_t i = 0; i < M * E; i++) dtp[i] = dt[i] + p.w[M1_DT_PROJ_B][i % E];
        golden_check(&g, "inter.dt_pre", dtp, M * E, tol_f);
        free(dtp);
    }
    if (golden_has(&g, "inter.y_gated")) golden_check(&g, "inter.y_gated", yg, M * E, tol_f);

    /* forward without saved activations gives the same output */
    real *y_acts = copy_of(p.y, M * D);
    m1_forward(&p, 0, NULL, NULL);
    char what[160];
    snprintf(what, sizeof what, "%s forward without acts", case_name);
    golden_compare(what, p.y, y_acts, M * D, REAL_IS_F64 ? 1e-14 : 1e-6);
    free(y_acts);

    /* token-by-token decode from zero states */
    real *ydec = zeros(M * D), *sdec = zeros(B * ssmlm_mamba1_state_size(&p.c));
    m1_decode(&p, NULL, ydec, sdec);
    golden_check(&g, "decode.out", ydec, M * D, tol_f);
    m1_split_state(&p.c, B, sdec, conv, ssm);
    golden_check(&g, "decode.conv_state", conv, B * E * K, tol_f);
    golden_check(&g, "decode.ssm_state", ssm, B * E * N, tol_f);
    free(ydec);
    free(sdec);
    free(conv);
    free(ssm);

    /* backward of loss = sum(out * dout) */
    m1_forward(&p, 1, NULL, NULL);
    m1_backward(&p);
    for (int i = 0; i < N_M1_PARAMS; i++) {
        int s = m1_params[i].slot;
        if (!p.w[s]) continue;
        char name[128];
        snprintf(name, sizeof name, "grad.%s", m1_params[i].name);
        golden_check(&g, name, p.gw[s], m1_param_numel(&p.c, s), tol_g);
    }
    golden_check(&g, "grad.u", p.dx, M * D, tol_g);

    /* parameter gradients accumulate, dx is overwritten */
    m1_backward(&p);
    real *want = golden_get(&g, "grad.in_proj.weight", NULL);
    if (want) {
        int64_t n = m1_param_numel(&p.c, M1_IN_PROJ);
        for (int64_t i = 0; i < n; i++) want[i] *= 2;
        snprintf(what, sizeof what, "%s grad.in_proj.weight after two backwards", case_name);
        golden_compare(what, p.gw[M1_IN_PROJ], want, n, tol_g);
        free(want);
    }
    golden_check(&g, "grad.u", p.dx, M * D, tol_g);
    m1_prob_free(&p);
    golden_close(&g);
}

/* Random parameters in realistic ranges. */
static void m1_prob_random(m1_prob *p, int64_t D, int64_t N, int64_t K, int64_t R,
                           int64_t expand, int conv_bias, int64_t B, int64_t T, uint64_t seed) {
    memset(p, 0, sizeof *p);
    ssmlm_config_defaults(&p->c);
    p->c.ssm_kind = SSMLM_SSM_MAMBA1;
    p->c.d_model = D;
    p->c.m1_d_state = N;
    p->c.m1_d_conv = K;
    p->c.m1_dt_rank = R;
    p->c.m1_expand = expand;
    p->c.m1_conv_bias = conv_bias;
    p->B = B;
    p->T = T;
    const int64_t E = ssmlm_m1_d_inner(&p->c);
    for (int i = 0; i < N_M1_PARAMS; i++) {
        int s = m1_params[i].slot;
        if (s == M1_CONV_B && !conv_bias) continue;
        int64_t n = m1_param_numel(&p->c, s);
        p->w[s] = zeros(n);
        double a = s == M1_IN_PROJ ? 1 / sqrt((double)D)
                 : s == M1_X_PROJ ? 4 / sqrt((double)E)
                 : s == M1_OUT_PROJ ? 1 / sqrt((double)E)
                 : s == M1_DT_PROJ_W ? 1 / sqrt((double)R)
                 : 0.5;
        fill_uniform(p->w[s], n, a, &seed);
    }
    for (int64_t e = 0; e < E; e++) {
        p->w[M1_DT_PROJ_B][e] -= 1; /* dt around 0.3 */
        p->w[M1_D][e] += 1;
        for (int64_t n = 0; n < N; n++) p->w[M1_A_LOG][e * N + n] += (real)log((double)(n + 1));
    }
    p->x = zeros(B * T * D);
    fill_uniform(p->x, B * T * D, 1.0, &seed);
    p->dout = zeros(B * T * D);
    fill_uniform(p->dout, B * T * D, 1.0, &seed);
    m1_prob_buffers(p);
}

#if REAL_IS_F64
static double m1_loss(void *ctx) {
    m1_prob *p = ctx;
    m1_forward(p, 0, NULL, NULL);
    return dot(p->y, p->dout, p->B * p->T * p->c.d_model);
}

/* Entries of the dt / A paths are ~1e-6 while the loss sums O(1) terms, so the finite
 * differences carry ~1e-5 relative noise there: tolerance 1e-4 (a wrong formula is off by far
 * more). */
static void test_layer_fd(int64_t D, int64_t N, int64_t K, int64_t R, int conv_bias, int64_t B,
                          int64_t T, uint64_t seed) {
    m1_prob p;
    m1_prob_random(&p, D, N, K, R, 2, conv_bias, B, T, seed);
    m1_forward(&p, 1, NULL, NULL);
    m1_backward(&p);
    char what[160];
    for (int i = 0; i < N_M1_PARAMS; i++) {
        int s = m1_params[i].slot;
        if (!p.w[s]) continue;
        snprintf(what, sizeof what, "mamba1 FD D%lld N%lld K%lld R%lld bias%d B%lld T%lld: %s",
                 (long long)D, (long long)N, (long long)K, (long long)R, conv_bias, (long long)B,
                 (long long)T, m1_params[i].name);
        fd_check(what, p.w[s], p.gw[s], m1_param_numel(&p.c, s), m1_loss, &p, 40, 1e-4);
    }
    snprintf(what, sizeof what, "mamba1 FD D%lld N%lld bias%d B%lld T%lld: input", (long long)D,
             (long long)N, conv_bias, (long long)B, (long long)T);
    fd_check(what, p.x, p.dx, B * T * D, m1_loss, &p, 60, 1e-4);
    m1_prob_free(&p);
}

#endif

/* forward(whole) == forward(first T1) then forward(rest, from its state) == steps, starting
 * from zero or from a random state; the chained call also runs with state1 == state0. */
static void test_layer_chain(int64_t D, int64_t N, int64_t K, int64_t R, int conv_bias, int64_t B,
                             int64_t T, int64_t T1, int with_state0, uint64_t seed) {
    m1_prob p;
    m1_prob_random(&p, D, N, K, R, 2, conv_bias, B, T, seed);
    const int64_t S = ssmlm_mamba1_state_size(&p.c), M = B * T;
    real *s0 = NULL;
    if (with_state0) {
        s0 = zeros(B * S);
        fill_uniform(s0, B * S, 1.0, &seed);
    }
    m1_forward(&p, 1, s0, p.state1);
    real *y_whole = copy_of(p.y, M * D), *s_whole = copy_of(p.state1, B * S);

    char what[200], w2[240];
    snprintf(what, sizeof what, "mamba1 chain D%lld N%lld K%lld B%lld T%lld split %lld state0 %d",
             (long long)D, (long long)N, (long long)K, (long long)B, (long long)T, (long long)T1,
             with_state0);
    double tol = REAL_IS_F64 ? 1e-12 : 2e-5;

    /* two forwards chained through the state (second one in place) */
    real *y_parts = zeros(M * D), *st = zeros(B * S);
    for (int k = 0; k < 2; k++) {
        int64_t t0 = k ? T1 : 0, n = k ? T - T1 : T1;
        m1_prob q;
        memset(&q, 0, sizeof q);
        q.c = p.c;
        q.B = B;
        q.T = n;
        memcpy(q.w, p.w, sizeof q.w);
        q.x = zeros(B * n * D);
        take_rows(q.x, p.x, B, T, D, t0, n);
        q.y = zeros(B * n * D);
        q.acts = zeros(RNAME(mamba1_acts_size)(&q.c, B, n));
        q.scratch = zeros(RNAME(mamba1_scratch_size)(&q.c, B, n));
        if (k == 0) m1_forward(&q, 1, s0, st);
        else m1_forward(&q, 0, st, st);
        put_rows(y_parts, q.y, B, T, D, t0, n);
        free(q.x);
        free(q.y);
        free(q.acts);
        free(q.scratch);
    }
    snprintf(w2, sizeof w2, "%s: chained output", what);
    golden_compare(w2, y_parts, y_whole, M * D, tol);
    snprintf(w2, sizeof w2, "%s: chained state", what);
    golden_compare(w2, st, s_whole, B * S, tol);

    /* token by token */
    m1_decode(&p, s0, y_parts, st);
    snprintf(w2, sizeof w2, "%s: steps output", what);
    golden_compare(w2, y_parts, y_whole, M * D, tol);
    snprintf(w2, sizeof w2, "%s: steps state", what);
    golden_compare(w2, st, s_whole, B * S, tol);

    free(y_parts);
    free(st);
    free(y_whole);
    free(s_whole);
    free(s0);
    m1_prob_free(&p);
}

int main(void) {
    test_fast_math();
    test_scan_golden();

    char **cases = golden_cases_of_kind("mamba1");
    int n_cases = 0;
    for (int i = 0; cases[i]; i++, n_cases++) test_layer_golden(cases[i]);
    CHECK(n_cases >= 1, "no golden case of kind mamba1");
    golden_free_list(cases);

    /* chunk boundaries (SCAN_M1_CHUNK), channel blocks with a tail, several state passes */
    test_scan_chain(2, 75, 21, 5, 33, 1, 11);
    test_scan_chain(1, 40, 16, 20, 7, 0, 12);
    test_scan_chain(3, 9, 5, 37, 4, 1, 13);
    test_scan_batched(16, 40, 120, 20, 14);
    test_scan_reference(2, 75, 21, 20, 1, 15);
    test_scan_reference(1, 33, 40, 5, 0, 16);
    test_scan_reference(16, 40, 120, 17, 1, 17);
    test_layer_chain(10, 3, 3, 3, 1, 2, 13, 5, 0, 21);
    test_layer_chain(10, 3, 3, 3, 1, 2, 13, 5, 1, 22);
    test_layer_chain(10, 3, 3, 3, 0, 2, 13, 2, 1, 23);
    test_layer_chain(12, 18, 4, 2, 1, 3, 70, 37, 1, 24);
    test_layer_chain(9, 4, 5, 1, 1, 1, 6, 1, 1, 25);
#if REAL_IS_F64
    test_scan_fd(2, 13, 6, 4, 1, 31);
    test_scan_fd(2, 70, 19, 18, 1, 32);
    test_scan_fd(1, 7, 3, 2, 0, 33);
    test_layer_fd(10, 3, 3, 3, 1, 2, 13, 41);
    test_layer_fd(10, 3, 3, 3, 0, 2, 13, 42);
    test_layer_fd(7, 17, 4, 2, 1, 2, 45, 43);
#endif
    TEST_END();
}

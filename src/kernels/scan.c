/* scan.c — Mamba-1 selective scan (see scan.h): forward that saves one state per chunk of
 * SCAN_M1_CHUNK tokens, backward that recomputes the states of a chunk and runs the reverse
 * scan, and the single-token step.
 *
 * Channels are independent, so work is split into tasks of (sequence b, up to GMAX blocks of
 * EB neighbouring channels); a task owns its channels' columns of every [B, T, E] tensor.
 * Inside a task the state is held transposed as tiles [NB states][EB channels], so the
 * innermost loops run over EB contiguous channels and vectorize for any N (N > NB takes
 * several passes).  Sums over channels (dB, dC) are formed per task and added up afterwards;
 * sums over sequences (dA, dD, ddelta_bias) per sequence, likewise.  The backward keeps one
 * chunk of recomputed states of one block on the stack (bwd_task, ~37K reals). */
#include "kernels/scan.h"
#include "base/base.h"
#include <string.h>

#define EB SCAN_M1_EBLOCK
#define NB 16
#define QC SCAN_M1_CHUNK

typedef RNAME(scan_m1_io) scan_io;
typedef RNAME(scan_m1_grads) scan_grads;

static inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

/* δ (and dδ/d(delta) for softplus) of EB channels e0.. of one token; lanes >= ne get 0 input. */
static inline void delta_row(const scan_io *s, const real *row, int64_t e0, int64_t ne, real *dt,
                             real *dsig) {
    real v[EB];
    for (int64_t e = 0; e < EB; e++)
        v[e] = e < ne ? row[e0 + e] + (s->delta_bias ? s->delta_bias[e0 + e] : 0) : 0;
    if (s->delta_softplus) {
        for (int64_t e = 0; e < EB; e++) dt[e] = RNAME(vsoftplus)(v[e], &dsig[e]);
    } else {
        for (int64_t e = 0; e < EB; e++) {
            dt[e] = v[e];
            dsig[e] = 1;
        }
    }
}

/* EB values of a row (0 beyond ne, or all 0 if row is NULL). */
static inline void load_row(real *dst, const real *row, int64_t ne) {
    for (int64_t e = 0; e < EB; e++) dst[e] = row && e < ne ? row[e] : 0;
}

/* Channel blocks per task (at most; scan_m1_blocks_per_task picks the number). */
#define GMAX 4
/* Below this many (token, channel, state) elements a call runs on one thread. */
#define PAR_MIN (1 << 15)

/* ---- forward ----------------------------------------------------------------------------- */

/* One task: sequence b, channel blocks k0..k1-1 (at most GMAX), all states (in passes of NB),
 * all tokens. */
static void forward_task(const scan_io *s, int64_t b, int64_t k0, int64_t k1, real *out,
                         int64_t ld_out, const real *h0, int64_t ld_h0, real *h1, int64_t ld_h1,
                         real *ckpt) {
    const int64_t T = s->T, E = s->E, N = s->N, nc = scan_m1_nchunks(T), G = k1 - k0;
    const real *u = s->u + b * T * s->ld_u, *dl = s->delta + b * T * s->ld_delta;
    const real *Bm = s->Bm + b * T * s->ld_B, *Cm = s->Cm + b * T * s->ld_C;
    const real *z = s->z ? s->z + b * T * s->ld_z : NULL;
    const int32_t *sgid = s->seg ? s->seg + b * T : NULL;
    real *o = out + b * T * ld_out;
    real At[GMAX][NB][EB], h[GMAX][NB][EB], Dv[GMAX][EB];
    real dt[EB], sg[EB], uu[EB], dtu[EB], acc[EB];
    for (int64_t g = 0; g < G; g++) {
        int64_t e0 = (k0 + g) * EB;
        load_row(Dv[g], s->D ? s->D + e0 : NULL, imin(EB, E - e0));
    }
    for (int64_t n0 = 0; n0 < N; n0 += NB) {
        const int64_t nn = imin(NB, N - n0);
        const int first = n0 == 0, last = n0 + NB >= N;
        for (int64_t g = 0; g < G; g++) {
            const int64_t e0 = (k0 + g) * EB, ne = imin(EB, E - e0);
            for (int64_t n = 0; n < nn; n++)
                for (int64_t e = 0; e < EB; e++) {
                    At[g][n][e] = e < ne ? s->A[(e0 + e) * N + n0 + n] : 0;
                    h[g][n][e] = e < ne && h0 ? h0[b * ld_h0 + (e0 + e) * N + n0 + n] : 0;
                }
        }
        for (int64_t t = 0; t < T; t++) {
            const real *Bt = Bm + t * s->ld_B + n0, *Ct = Cm + t * s->ld_C + n0;
            for (int64_t g = 0; g < G; g++) {
                const int64_t e0 = (k0 + g) * EB, ne = imin(EB, E - e0);
                if (ckpt && t % QC == 0) {
                    real *ck = ckpt + ((b * nc + t / QC) * E + e0) * N + n0;
                    for (int64_t e = 0; e < ne; e++)
                        for (int64_t n = 0; n < nn; n++) ck[e * N + n] = h[g][n][e];
                }
                /* a new segment starts from the zero state */
                if (sgid && t > 0 && sgid[t] != sgid[t - 1])
                    for (int64_t n = 0; n < nn; n++)
                        for (int64_t e = 0; e < EB; e++) h[g][n][e] = 0;
                delta_row(s, dl + t * s->ld_delta, e0, ne, dt, sg);
                load_row(uu, u + t * s->ld_u + e0, ne);
                for (int64_t e = 0; e < EB; e++) {
                    dtu[e] = dt[e] * uu[e];
                    acc[e] = first ? Dv[g][e] * uu[e] : 0;
                }
                for (int64_t n = 0; n < nn; n++) {
                    const real bn = Bt[n], cn = Ct[n];
                    /* h = exp(δ A) h + δ u B_n;  y += h C_n */
                    for (int64_t e = 0; e < EB; e++) {
                        real a = RNAME(vexp)(dt[e] * At[g][n][e]);
                        h[g][n][e] = a * h[g][n][e] + dtu[e] * bn;
                        acc[e] += h[g][n][e] * cn;
                    }
                }
                real *orow = o + t * ld_out + e0;
                if (!first)
                    for (int64_t e = 0; e < ne; e++) acc[e] += orow[e];
                if (last && z) {
                    const real *zr = z + t * s->ld_z + e0;
                    for (int64_t e = 0; e < ne; e++)
                        acc[e] *= zr[e] * RNAME(vsigmoid)(zr[e]);
                }
                for (int64_t e = 0; e < ne; e++) orow[e] = acc[e];
            }
        }
        if (h1)
            for (int64_t g = 0; g < G; g++) {
                const int64_t e0 = (k0 + g) * EB, ne = imin(EB, E - e0);
                for (int64_t e = 0; e < ne; e++)
                    for (int64_t n = 0; n < nn; n++)
                        h1[b * ld_h1 + (e0 + e) * N + n0 + n] = h[g][n][e];
            }
    }
}

void RNAME(scan_m1_forward)(const scan_io *s, real *out, int64_t ld_out, const real *h0,
                            int64_t ld_h0, real *h1, int64_t ld_h1, real *ckpt) {
    const int64_t nblk = (s->E + EB - 1) / EB, G = scan_m1_blocks_per_task(s->B, s->E);
    const int64_t ntask = scan_m1_ntask(s->B, s->E);
    SSMLM_ASSERT(G <= GMAX);
#pragma omp parallel for collapse(2) schedule(static) if (s->B * s->T * s->E * s->N > PAR_MIN)
    for (int64_t b = 0; b < s->B; b++)
        for (int64_t k = 0; k < ntask; k++)
            forward_task(s, b, k * G, imin(nblk, (k + 1) * G), out, ld_out, h0, ld_h0, h1,
                         ld_h1, ckpt);
}

/* ---- backward ---------------------------------------------------------------------------- */

/* Per-task state: for each of its channel blocks the transposed A, the adjoint carried
 * backwards (a_{t+1} ⊙ g_{t+1}), dA, dD and ddelta_bias; and the states and decays of one
 * chunk of one block, recomputed from the saved boundary state. */
typedef struct bwd_task {
    real At[GMAX][NB][EB];
    real G[GMAX][NB][EB];
    real dA[GMAX][NB][EB];
    real Dv[GMAX][EB], dD[GMAX][EB], dbias[GMAX][EB];
    real h[QC + 1][NB][EB];  /* h[i] = state before token t0+i */
    real a[QC][NB][EB];      /* exp(δ A) of token t0+i */
    real dt[QC][EB], sg[QC][EB];
    real pB[QC][NB][EB], pC[QC][NB][EB]; /* dB, dC terms per channel lane, summed over blocks */
} bwd_task;

/* Arguments shared by every task of one backward call. */
typedef struct bwd_args {
    const scan_io *s;
    const real *ckpt, *dout, *dh1;
    int64_t ld_dout, ld_dh1;
    const scan_grads *g;
    int64_t ntask;
    real *pbc; /* [B, T, ntask, 2N] partial dB | dC of each task's channel blocks */
    real *pp;  /* [B, E, N+2] partial dA | dD | ddelta_bias of each sequence */
} bwd_args;

/* Chunk [t0, t0+L) of sequence b, channel block kb (block g of its task), states
 * n0..n0+nn-1: recompute the states, then run the reverse scan and write this pass's share of
 * the gradients (the first pass, n0 == 0, overwrites the row gradients; later passes add) and
 * the block's dB/dC terms per lane (block 0 of the task overwrites, later blocks add). */
static void backward_chunk(const bwd_args *A, bwd_task *w, int64_t b, int64_t kb, int64_t g,
                           int64_t n0, int64_t nn, int64_t c) {
    const scan_io *s = A->s;
    const int64_t T = s->T, E = s->E, N = s->N, nc = scan_m1_nchunks(T);
    const int64_t e0 = kb * EB, ne = imin(EB, E - e0), t0 = c * QC, L = imin(QC, T - t0);
    const int first = n0 == 0;
    const real *u = s->u + b * T * s->ld_u, *dl = s->delta + b * T * s->ld_delta;
    const real *Bm = s->Bm + b * T * s->ld_B, *Cm = s->Cm + b * T * s->ld_C;
    const real *z = s->z ? s->z + b * T * s->ld_z : NULL;
    const int32_t *sgid = s->seg ? s->seg + b * T : NULL;
    const real *dO = A->dout + b * T * A->ld_dout;
    const scan_grads *gr = A->g;
    real (*At)[EB] = w->At[g], (*Gc)[EB] = w->G[g], (*dA)[EB] = w->dA[g];
    const real *Dv = w->Dv[g];
    real uu[EB], dtu[EB], dov[EB], dyv[EB], dsz[EB], ysum[EB], sgB[EB], sdd[EB];

    const real *ck = A->ckpt + ((b * nc + c) * E + e0) * N + n0;
    for (int64_t n = 0; n < nn; n++)
        for (int64_t e = 0; e < EB; e++) w->h[0][n][e] = e < ne ? ck[e * N + n] : 0;
    /* recompute the chunk: a_t = exp(δ_t A), h_t = a_t h_{t-1} + δ_t u_t B_t */
    for (int64_t i = 0; i < L; i++) {
        const int64_t t = t0 + i;
        delta_row(s, dl + t * s->ld_delta, e0, ne, w->dt[i], w->sg[i]);
        load_row(uu, u + t * s->ld_u + e0, ne);
        for (int64_t e = 0; e < EB; e++) dtu[e] = w->dt[i][e] * uu[e];
        const real *Bt = Bm + t * s->ld_B + n0;
        for (int64_t n = 0; n < nn; n++) {
            const real bn = Bt[n];
            for (int64_t e = 0; e < EB; e++) {
                real a = RNAME(vexp)(w->dt[i][e] * At[n][e]);
                w->a[i][n][e] = a;
                w->h[i + 1][n][e] = a * w->h[i][n][e] + dtu[e] * bn;
            }
        }
        /* first token of a segment: h_{t-1} counts as 0, i.e. a_t = 0 (no gradient flows
         * back through the state, nor into δ_t and A through the decay) */
        if (sgid && t > 0 && sgid[t] != sgid[t - 1])
            for (int64_t n = 0; n < nn; n++) {
                const real bn = Bt[n];
                for (int64_t e = 0; e < EB; e++) {
                    w->a[i][n][e] = 0;
                    w->h[i + 1][n][e] = dtu[e] * bn;
                }
            }
    }
    /* reverse scan over the chunk */
    for (int64_t i = L - 1; i >= 0; i--) {
        const int64_t t = t0 + i;
        const real *dt = w->dt[i], *sg = w->sg[i];
        load_row(uu, u + t * s->ld_u + e0, ne);
        load_row(dov, dO + t * A->ld_dout + e0, ne);
        if (z) {
            /* out = y silu(z): dy = dout silu(z), dz = dout y silu'(z) */
            const real *zr = z + t * s->ld_z + e0;
            for (int64_t e = 0; e < EB; e++) {
                real zv = e < ne ? zr[e] : 0, sz = RNAME(vsigmoid)(zv);
                dyv[e] = dov[e] * zv * sz;
                dsz[e] = sz * (1 + zv * (1 - sz));
            }
        } else {
            for (int64_t e = 0; e < EB; e++) dyv[e] = dov[e];
        }
        for (int64_t e = 0; e < EB; e++) {
            dtu[e] = dt[e] * uu[e];
            ysum[e] = first ? Dv[e] * uu[e] : 0;
            sgB[e] = 0;
            sdd[e] = 0;
        }
        const real *Bt = Bm + t * s->ld_B + n0, *Ct = Cm + t * s->ld_C + n0;
        for (int64_t n = 0; n < nn; n++) {
            const real bn = Bt[n], cn = Ct[n];
            real *pB = w->pB[i][n], *pC = w->pC[i][n];
            /* g_t = dy_t C_t + a_{t+1} g_{t+1};  dC_t = Σ_e dy h_t;  dB_t = Σ_e g δ u;
             * du += δ Σ_n g B;  dδ += Σ_n g (B u + A a_t h_{t-1}) = u Σ_n g B + Σ_n A q;
             * dA += δ q,  with q = g a_t h_{t-1} */
            for (int64_t e = 0; e < EB; e++) {
                real hn = w->h[i + 1][n][e], a = w->a[i][n][e];
                real gn = Gc[n][e] + dyv[e] * cn;
                real q = gn * a * w->h[i][n][e];
                ysum[e] += hn * cn;
                pC[e] = (g ? pC[e] : 0) + dyv[e] * hn;
                pB[e] = (g ? pB[e] : 0) + gn * dtu[e];
                sgB[e] += gn * bn;
                sdd[e] += At[n][e] * q;
                dA[n][e] += dt[e] * q;
                Gc[n][e] = a * gn;
            }
        }
        for (int64_t e = 0; e < EB; e++) {
            sdd[e] += uu[e] * sgB[e];
            w->dbias[g][e] += sg[e] * sdd[e];
            if (first) w->dD[g][e] += dyv[e] * uu[e];
        }
        if (gr->du) {
            real *r = gr->du + (b * T + t) * gr->ld_du + e0;
            for (int64_t e = 0; e < ne; e++)
                r[e] = (first ? Dv[e] * dyv[e] : r[e]) + dt[e] * sgB[e];
        }
        if (gr->ddelta) {
            real *r = gr->ddelta + (b * T + t) * gr->ld_ddelta + e0;
            for (int64_t e = 0; e < ne; e++) r[e] = (first ? 0 : r[e]) + sg[e] * sdd[e];
        }
        if (z && gr->dz) {
            real *r = gr->dz + (b * T + t) * gr->ld_dz + e0;
            for (int64_t e = 0; e < ne; e++) r[e] = (first ? 0 : r[e]) + dov[e] * dsz[e] * ysum[e];
        }
    }
}

/* Task ks: sequence b, channel blocks k0..k1-1.  Chunks run in reverse; inside a chunk the
 * blocks run one after another over the same rows. */
static void backward_task(const bwd_args *A, int64_t b, int64_t ks, int64_t k0, int64_t k1) {
    const scan_io *s = A->s;
    const int64_t T = s->T, E = s->E, N = s->N, nc = scan_m1_nchunks(T), G = k1 - k0;
    bwd_task task;
    bwd_task *w = &task;
    real *pp = A->pp + b * E * (N + 2);
    for (int64_t g = 0; g < G; g++) {
        const int64_t e0 = (k0 + g) * EB;
        load_row(w->Dv[g], s->D ? s->D + e0 : NULL, imin(EB, E - e0));
        for (int64_t e = 0; e < EB; e++) w->dD[g][e] = w->dbias[g][e] = 0;
    }
    for (int64_t n0 = 0; n0 < N; n0 += NB) {
        const int64_t nn = imin(NB, N - n0);
        for (int64_t g = 0; g < G; g++) {
            const int64_t e0 = (k0 + g) * EB, ne = imin(EB, E - e0);
            for (int64_t n = 0; n < nn; n++)
                for (int64_t e = 0; e < EB; e++) {
                    w->At[g][n][e] = e < ne ? s->A[(e0 + e) * N + n0 + n] : 0;
                    w->G[g][n][e] =
                        e < ne && A->dh1 ? A->dh1[b * A->ld_dh1 + (e0 + e) * N + n0 + n] : 0;
                    w->dA[g][n][e] = 0;
                }
        }
        for (int64_t c = nc - 1; c >= 0; c--) {
            for (int64_t g = 0; g < G; g++) backward_chunk(A, w, b, k0 + g, g, n0, nn, c);
            /* dB_t, dC_t of the task: sum the channel lanes (pairwise, in place) */
            const int64_t t0 = c * QC, L = imin(QC, T - t0);
            for (int64_t i = 0; i < L; i++) {
                for (int64_t half = EB / 2; half >= 1; half /= 2)
                    for (int64_t n = 0; n < nn; n++)
                        for (int64_t e = 0; e < half; e++) {
                            w->pB[i][n][e] += w->pB[i][n][e + half];
                            w->pC[i][n][e] += w->pC[i][n][e + half];
                        }
                real *pb = A->pbc + ((b * T + t0 + i) * A->ntask + ks) * 2 * N + n0;
                for (int64_t n = 0; n < nn; n++) {
                    pb[n] = w->pB[i][n][0];
                    pb[N + n] = w->pC[i][n][0];
                }
            }
        }
        for (int64_t g = 0; g < G; g++) {
            const int64_t e0 = (k0 + g) * EB, ne = imin(EB, E - e0);
            for (int64_t e = 0; e < ne; e++)
                for (int64_t n = 0; n < nn; n++) {
                    pp[(e0 + e) * (N + 2) + n0 + n] = w->dA[g][n][e];
                    if (A->g->dh0)
                        A->g->dh0[b * A->g->ld_dh0 + (e0 + e) * N + n0 + n] = w->G[g][n][e];
                }
        }
    }
    for (int64_t g = 0; g < G; g++) {
        const int64_t e0 = (k0 + g) * EB, ne = imin(EB, E - e0);
        for (int64_t e = 0; e < ne; e++) {
            pp[(e0 + e) * (N + 2) + N] = w->dD[g][e];
            pp[(e0 + e) * (N + 2) + N + 1] = w->dbias[g][e];
        }
    }
}

void RNAME(scan_m1_backward)(const scan_io *s, const real *ckpt, const real *dout,
                             int64_t ld_dout, const real *dh1, int64_t ld_dh1,
                             const scan_grads *g, real *scratch) {
    const int64_t B = s->B, T = s->T, E = s->E, N = s->N, nblk = (E + EB - 1) / EB;
    SSMLM_ASSERT(ckpt != NULL && scratch != NULL);
    const int64_t G = scan_m1_blocks_per_task(B, E), ntask = scan_m1_ntask(B, E);
    SSMLM_ASSERT(G <= GMAX);
    bwd_args A = {s,      ckpt, dout, dh1, ld_dout, ld_dh1, g, ntask, scratch,
                  scratch + B * T * ntask * 2 * N};
#pragma omp parallel for collapse(2) schedule(static) if (B * T * E * N > PAR_MIN)
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < ntask; k++)
            backward_task(&A, b, k, k * G, imin(nblk, (k + 1) * G));
    if (g->dB || g->dC) {
        /* sum the tasks' partials (in place into the first) */
#pragma omp parallel for schedule(static) if (B * T * ntask * N > PAR_MIN)
        for (int64_t bt = 0; bt < B * T; bt++) {
            real *p = A.pbc + bt * ntask * 2 * N;
            for (int64_t k = 1; k < ntask; k++)
                for (int64_t n = 0; n < 2 * N; n++) p[n] += p[k * 2 * N + n];
            for (int64_t n = 0; n < N; n++) {
                if (g->dB) g->dB[bt * g->ld_dB + n] = p[n];
                if (g->dC) g->dC[bt * g->ld_dC + n] = p[N + n];
            }
        }
    }
#pragma omp parallel for schedule(static) if (B * E * N > PAR_MIN)
    for (int64_t e = 0; e < E; e++)
        for (int64_t b = 0; b < B; b++) {
            const real *p = A.pp + (b * E + e) * (N + 2);
            if (g->dA)
                for (int64_t n = 0; n < N; n++) g->dA[e * N + n] += p[n];
            if (g->dD) g->dD[e] += p[N];
            if (g->ddelta_bias) g->ddelta_bias[e] += p[N + 1];
        }
}

/* ---- single-token step ------------------------------------------------------------------- */

void RNAME(scan_m1_step)(const scan_io *s, real *out, int64_t ld_out, real *h, int64_t ld_h) {
    const int64_t B = s->B, E = s->E, N = s->N;
#pragma omp parallel for collapse(2) schedule(static) if (B * E * N > PAR_MIN)
    for (int64_t b = 0; b < B; b++)
        for (int64_t e = 0; e < E; e++) {
            real v = s->delta[b * s->ld_delta + e] + (s->delta_bias ? s->delta_bias[e] : 0), sg;
            real dt = s->delta_softplus ? RNAME(vsoftplus)(v, &sg) : v;
            real uv = s->u[b * s->ld_u + e], dtu = dt * uv;
            const real *A = s->A + e * N, *Bt = s->Bm + b * s->ld_B, *Ct = s->Cm + b * s->ld_C;
            real *hr = h + b * ld_h + e * N;
            real y = 0;
            /* h = exp(δ A) h + δ u B;  y = <h, C> + D u */
            for (int64_t n = 0; n < N; n++)
                hr[n] = RNAME(vexp)(dt * A[n]) * hr[n] + dtu * Bt[n];
            for (int64_t n = 0; n < N; n++) y += hr[n] * Ct[n];
            if (s->D) y += s->D[e] * uv;
            if (s->z) {
                real zv = s->z[b * s->ld_z + e];
                y *= zv * RNAME(vsigmoid)(zv);
            }
            out[b * ld_out + e] = y;
        }
}

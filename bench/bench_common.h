/* bench_common.h — shared pieces of the benchmarks: timing statistics (median, min, max of
 * repeated runs) and the same-run baselines (OpenBLAS sgemm GFLOP/s). Header-only. */
#ifndef SSMLM_BENCH_COMMON_H
#define SSMLM_BENCH_COMMON_H

#include "ssmlm.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct bench_stats { double median, min, max; } bench_stats;

static inline bench_stats bench_summarize(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, bench_cmp);
    bench_stats s = {n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]), t[0], t[n - 1]};
    return s;
}

/* OpenBLAS sgemm C[M,N] = A[M,K] B[N,K]^T: one timed call, GFLOP/s. */
static inline double bench_sgemm_once(int64_t M, int64_t N, int64_t K, float *A, float *B, float *C) {
    double t0 = bench_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)M, (blasint)N, (blasint)K, 1.0f, A,
                (blasint)K, B, (blasint)K, 0.0f, C, (blasint)N);
    return 2.0 * (double)M * (double)N * (double)K / (bench_now() - t0) / 1e9;
}

static inline float *bench_random(int64_t n, unsigned seed) {
    float *x = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((seed >> 9) * (1.0 / 8388608.0) - 1.0) * 0.1f;
    }
    return x;
}

#endif

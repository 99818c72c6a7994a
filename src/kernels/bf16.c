/* bf16.c — bf16 array conversion and the registry of bf16 weight arenas (see bf16.h).
 * Precision independent: compiled in the fp32 pass only (the fp64 pass sees an empty file). */
#include "kernels/bf16.h"
#include "base/base.h"
#include <pthread.h>

#ifndef SSMLM_REAL_F64

void bf16_round_array(uint16_t *dst, const float *src, int64_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) dst[i] = bf16_from_f32(src[i]);
}

void bf16_widen_array(float *dst, const uint16_t *src, int64_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

/* A few models at a time: a small array searched linearly under a read-write lock. */
typedef struct arena_range {
    uintptr_t lo, hi;
} arena_range;

static pthread_rwlock_t g_lock = PTHREAD_RWLOCK_INITIALIZER;
static arena_range *g_ranges;
static int g_n, g_cap;

void bf16_arena_register(const void *p, size_t bytes) {
    if (!p || !bytes) return;
    pthread_rwlock_wrlock(&g_lock);
    if (g_n == g_cap) {
        int cap = g_cap ? 2 * g_cap : 8;
        arena_range *r = realloc(g_ranges, (size_t)cap * sizeof *r);
        SSMLM_ASSERT(r != NULL);
        g_ranges = r;
        g_cap = cap;
    }
    g_ranges[g_n].lo = (uintptr_t)p;
    g_ranges[g_n].hi = (uintptr_t)p + bytes;
    g_n++;
    pthread_rwlock_unlock(&g_lock);
}

void bf16_arena_unregister(const void *p) {
    if (!p) return;
    pthread_rwlock_wrlock(&g_lock);
    for (int i = 0; i < g_n; i++)
        if (g_ranges[i].lo == (uintptr_t)p) {
            g_ranges[i] = g_ranges[--g_n];
            break;
        }
    if (g_n == 0) {
        free(g_ranges);
        g_ranges = NULL;
        g_cap = 0;
    }
    pthread_rwlock_unlock(&g_lock);
}

int bf16_arena_contains(const void *p) {
    uintptr_t a = (uintptr_t)p;
    int found = 0;
    pthread_rwlock_rdlock(&g_lock);
    for (int i = 0; i < g_n && !found; i++) found = a >= g_ranges[i].lo && a < g_ranges[i].hi;
    pthread_rwlock_unlock(&g_lock);
    return found;
}

#endif

/* dist.c — data-parallel collectives over MPI (sum all-reduce, broadcast, barrier, identity
 * check), or their single-process equivalents when built without SSMLM_MPI. */
#include "train/dist.h"
#include "base/base.h"
#include <stdlib.h>
#include <string.h>
#ifdef SSMLM_MPI
#include <mpi.h>
#endif

#define DIST_DEFAULT_CHUNK ((size_t)256 << 20)

int ssmlm_dist_has_mpi(void) {
#ifdef SSMLM_MPI
    return 1;
#else
    return 0;
#endif
}

/* Ranks announced by a launcher in the environment (0 when none is). */
static int launcher_size(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

#ifdef SSMLM_MPI
static int launched_by_mpi(void) {
    const char *force = getenv("SSMLM_DIST");
    if (force && strcmp(force, "mpi") == 0) return 1;
    return launcher_size() > 0 || getenv("PMIX_RANK") || getenv("PMI_RANK");
}
#endif

static int dist_ready(ssmlm_dist *d, const char *op) {
    if (!d || d->size < 1 || d->rank < 0 || d->rank >= d->size) {
        ssmlm_fail(SSMLM_ERR_INVALID, "call ssmlm_dist_init first", "%s: distributed context not initialized", op);
        return 0;
    }
    return 1;
}

#ifdef SSMLM_MPI
static ssmlm_status mpi_fail(int rc, const char *op, const char *detail) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
    msg[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING - 1] = 0;
    return ssmlm_fail(SSMLM_ERR_IO, "check that every rank makes the same calls with the same sizes",
                      "%s (%s) failed: %s", op, detail, len ? msg : "MPI error");
}

/* Elements per MPI call: chunk_bytes / elem, at least 1, at most INT_MAX. */
static int64_t chunk_elems(const ssmlm_dist *d, size_t elem) {
    size_t bytes = d->chunk_bytes ? d->chunk_bytes : DIST_DEFAULT_CHUNK;
    int64_t n = (int64_t)(bytes / elem);
    if (n < 1) n = 1;
    if (n > 0x7fffffff) n = 0x7fffffff;
    return n;
}

static ssmlm_status allreduce_sum(ssmlm_dist *d, void *x, int64_t n, size_t elem, MPI_Datatype type,
                                  const char *op) {
    int64_t chunk = chunk_elems(d, elem);
    for (int64_t i = 0; i < n; i += chunk) {
        int64_t m = n - i < chunk ? n - i : chunk;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)x + (size_t)i * elem, (int)m, type, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) {
            char detail[96];
            snprintf(detail, sizeof detail, "elements %lld..%lld of %lld", (long long)i, (long long)(i + m),
                     (long long)n);
            return mpi_fail(rc, op, detail);
        }
    }
    return SSMLM_OK;
}
#endif

ssmlm_status ssmlm_dist_init(ssmlm_dist *d, int *argc, char ***argv) {
    memset(d, 0, sizeof *d);
    d->rank = 0;
    d->size = 1;
    d->chunk_bytes = DIST_DEFAULT_CHUNK;
#ifdef SSMLM_MPI
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized)
        return ssmlm_fail(SSMLM_ERR_INVALID, "initialize the distributed context once per process",
                          "ssmlm_dist_init: MPI was already finalized in this process");
    if (!inited) {
        if (!launched_by_mpi()) return SSMLM_OK;
        int provided = 0;
        /* only the main thread calls MPI; OpenMP threads run between the calls */
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return ssmlm_fail(SSMLM_ERR_IO, "run under mpirun, or check the MPI installation",
                              "ssmlm_dist_init: MPI_Init failed");
        d->initialized_mpi = 1;
    }
    /* failures come back as statuses instead of aborting every rank */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    return SSMLM_OK;
#else
    (void)argc;
    (void)argv;
    int n = launcher_size();
    if (n > 1)
        return ssmlm_fail(SSMLM_ERR_UNSUPPORTED,
                          "install libopenmpi-dev and rebuild (make clean && make), or run one process",
                          "ssmlm_dist_init: started as one of %d ranks by an MPI launcher, but this build has no MPI",
                          n);
    return SSMLM_OK;
#endif
}

void ssmlm_dist_finalize(ssmlm_dist *d) {
    if (!d) return;
#ifdef SSMLM_MPI
    if (d->initialized_mpi) {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
    }
#endif
    d->initialized_mpi = 0;
    d->rank = 0;
    d->size = 1;
}

ssmlm_status ssmlm_dist_allreduce_f32(ssmlm_dist *d, float *x, int64_t n) {
    if (!dist_ready(d, "allreduce_f32")) return SSMLM_ERR_INVALID;
    if (n < 0 || (n > 0 && !x))
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "allreduce_f32: bad buffer (%lld elements at %p)", (long long)n,
                          (void *)x);
#ifdef SSMLM_MPI
    if (d->size > 1) return allreduce_sum(d, x, n, sizeof(float), MPI_FLOAT, "allreduce_f32");
#endif
    return SSMLM_OK;
}

ssmlm_status ssmlm_dist_allreduce_f64(ssmlm_dist *d, double *x, int64_t n) {
    if (!dist_ready(d, "allreduce_f64")) return SSMLM_ERR_INVALID;
    if (n < 0 || (n > 0 && !x))
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "allreduce_f64: bad buffer (%lld elements at %p)", (long long)n,
                          (void *)x);
#ifdef SSMLM_MPI
    if (d->size > 1) return allreduce_sum(d, x, n, sizeof(double), MPI_DOUBLE, "allreduce_f64");
#endif
    return SSMLM_OK;
}

ssmlm_status ssmlm_dist_bcast(ssmlm_dist *d, void *buf, int64_t bytes, int root) {
    if (!dist_ready(d, "bcast")) return SSMLM_ERR_INVALID;
    if (root < 0 || root >= d->size)
        return ssmlm_fail(SSMLM_ERR_INVALID, "use a root between 0 and size-1", "bcast: root %d out of range (%d ranks)",
                          root, d->size);
    if (bytes < 0 || (bytes > 0 && !buf))
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "bcast: bad buffer (%lld bytes at %p)", (long long)bytes, buf);
#ifdef SSMLM_MPI
    if (d->size > 1) {
        int64_t chunk = chunk_elems(d, 1);
        for (int64_t i = 0; i < bytes; i += chunk) {
            int64_t m = bytes - i < chunk ? bytes - i : chunk;
            int rc = MPI_Bcast((char *)buf + i, (int)m, MPI_BYTE, root, MPI_COMM_WORLD);
            if (rc != MPI_SUCCESS) {
                char detail[96];
                snprintf(detail, sizeof detail, "bytes %lld..%lld of %lld from rank %d", (long long)i,
                         (long long)(i + m), (long long)bytes, root);
                return mpi_fail(rc, "bcast", detail);
            }
        }
    }
#endif
    return SSMLM_OK;
}

void ssmlm_dist_barrier(ssmlm_dist *d) {
#ifdef SSMLM_MPI
    if (d && d->size > 1) MPI_Barrier(MPI_COMM_WORLD);
#else
    (void)d;
#endif
}

/* h <- (h ^ w) * P over 8-byte words (a bijection of h for fixed w and of w for fixed h, so one
 * changed word always changes the result), then the splitmix64 finalizer. */
uint64_t ssmlm_dist_hash(const void *buf, int64_t bytes) {
    const uint64_t P = 0x100000001b3ull;
    const unsigned char *p = buf;
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)bytes;
    int64_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * P;
    }
    if (i < bytes) {
        uint64_t w = 0;
        memcpy(&w, p + i, (size_t)(bytes - i));
        h = (h ^ w) * P;
    }
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

ssmlm_status ssmlm_dist_check_same(ssmlm_dist *d, const void *buf, int64_t bytes, const char *what) {
    if (!what) what = "buffer";
    if (!dist_ready(d, "check_same")) return SSMLM_ERR_INVALID;
    if (bytes < 0 || (bytes > 0 && !buf))
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "check_same %s: bad buffer (%lld bytes at %p)", what,
                          (long long)bytes, buf);
    if (d->size == 1) return SSMLM_OK;
#ifdef SSMLM_MPI
    uint64_t mine[2] = {ssmlm_dist_hash(buf, bytes), (uint64_t)bytes};
    uint64_t *all = malloc(sizeof(uint64_t) * 2 * (size_t)d->size);
    int ok = all != NULL, all_ok = 0;
    /* every rank must learn whether any rank failed to allocate, before the gather */
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all_ok) {
        free(all);
        return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "check_same %s: out of memory on some rank", what);
    }
    int rc = MPI_Allgather(mine, 2, MPI_UINT64_T, all, 2, MPI_UINT64_T, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        free(all);
        return mpi_fail(rc, "check_same", what);
    }
    int ndiff = 0, first = -1;
    for (int r = 1; r < d->size; r++) {
        if (all[2 * r] != all[0] || all[2 * r + 1] != all[1]) {
            if (first < 0) first = r;
            ndiff++;
        }
    }
    ssmlm_status s = SSMLM_OK;
    if (ndiff)
        s = ssmlm_fail(SSMLM_ERR_NUMERIC,
                       "the ranks diverged: check that every rank starts from the same seed/checkpoint and "
                       "applies the same all-reduced update",
                       "%s differs across ranks: %d of %d ranks differ from rank 0, first rank %d "
                       "(%llu bytes, hash %016llx) vs rank 0 (%llu bytes, hash %016llx)",
                       what, ndiff, d->size, first, (unsigned long long)all[2 * first + 1],
                       (unsigned long long)all[2 * first], (unsigned long long)all[1],
                       (unsigned long long)all[0]);
    free(all);
    return s;
#else
    return SSMLM_OK;
#endif
}

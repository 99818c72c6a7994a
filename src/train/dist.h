/* dist.h — data parallelism across processes: a thin layer over MPI (sum-reduction of gradient
 * buffers, broadcast, barrier, a cross-rank identity check).  Built with -DSSMLM_MPI (mk/mpi.mk
 * adds it when mpicc exists) it uses MPI; built without, every process is rank 0 of 1 and every
 * call is a no-op, so the same training code runs in both builds.
 *
 * Every function except init/finalize is collective: all ranks call it, in the same order, with
 * the same sizes.  A failure is returned on every rank that sees it. */
#ifndef SSMLM_DIST_H
#define SSMLM_DIST_H

#include "ssmlm.h"
#include <stddef.h>

typedef struct ssmlm_dist {
    int rank, size;
    int initialized_mpi;  /* 1 when ssmlm_dist_init called MPI_Init (finalize then ends MPI) */
    size_t chunk_bytes;   /* most bytes per MPI call (counts are int); init sets 256 MiB */
} ssmlm_dist;

/* 1 when this library was built with MPI. */
int ssmlm_dist_has_mpi(void);

/* Built with MPI: joins MPI when the process was started by an MPI launcher (mpirun/mpiexec,
 * srun: OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_SIZE or PMI_RANK in the environment) or when
 * SSMLM_DIST=mpi is set; uses an MPI that the caller already initialized; otherwise (a plain
 * `./ssmlm train`) runs as rank 0 of 1 without touching MPI.  Built without MPI: rank 0 of 1,
 * and an error if a launcher started several ranks (each would train alone and write the same
 * files).  argc/argv may be NULL.  With MPI, sets MPI_ERRORS_RETURN on MPI_COMM_WORLD so that
 * failed collectives come back as statuses. */
ssmlm_status ssmlm_dist_init(ssmlm_dist *d, int *argc, char ***argv);
/* Ends MPI if init started it; safe to call twice, or on a failed init. */
void ssmlm_dist_finalize(ssmlm_dist *d);

/* In-place sum over ranks of n floats/doubles (chunked, MPI_IN_PLACE).  n == 0 is allowed. */
ssmlm_status ssmlm_dist_allreduce_f32(ssmlm_dist *d, float *x, int64_t n);
ssmlm_status ssmlm_dist_allreduce_f64(ssmlm_dist *d, double *x, int64_t n);
/* Copies bytes of buf on rank root to buf on every other rank. */
ssmlm_status ssmlm_dist_bcast(ssmlm_dist *d, void *buf, int64_t bytes, int root);
void ssmlm_dist_barrier(ssmlm_dist *d);

/* Checks that every rank holds the same bytes (a 64-bit hash of each rank's buffer and its size
 * are compared); on a difference every rank returns SSMLM_ERR_NUMERIC, the message naming
 * `what` and the ranks that differ from rank 0. */
ssmlm_status ssmlm_dist_check_same(ssmlm_dist *d, const void *buf, int64_t bytes, const char *what);

/* The hash check_same compares: any single 8-byte word changed changes it. */
uint64_t ssmlm_dist_hash(const void *buf, int64_t bytes);

#endif

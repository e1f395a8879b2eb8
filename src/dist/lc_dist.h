/* Data parallelism over processes: a thin layer over MPI (Open MPI) with a
 * 1-process fallback.  A NULL lc_dist is the single process: rank 0 of 1,
 * every collective a no-op that leaves the data as it is, so callers need
 * no special case.  A build without MPI (meson finds no 'mpi' dependency)
 * compiles the same functions for the single process only.
 *
 * Collectives are called by every rank in the same order (MPI's rule); the
 * library reads no environment variable: whether the process was started by
 * mpirun is the CLI's decision (tools/cli_env.c). */
#ifndef LC_DIST_H
#define LC_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_core.h"

typedef struct lc_dist lc_dist;

/* True when this build has MPI. */
bool lc_dist_available(void);
/* Initialises MPI (MPI_Init_thread, funneled) and returns the world's
 * handle; LC_ERR_UNSUPPORTED in a build without MPI. */
lc_status lc_dist_create(lc_dist **out, int *argc, char ***argv);
/* Finalises MPI (once per process: a destroyed handle cannot be made
 * again); NULL is a no-op. */
void lc_dist_destroy(lc_dist *d);
/* Ends every rank's process at once with `code` (after an error on one
 * rank that the others would wait for forever); NULL: returns. */
void lc_dist_abort(lc_dist *d, int code);

int lc_dist_rank(const lc_dist *d);       /* 0 for NULL */
int lc_dist_size(const lc_dist *d);       /* 1 for NULL */
int lc_dist_local_rank(const lc_dist *d); /* the rank among the processes of this machine */
int lc_dist_local_size(const lc_dist *d);

/* In-place sums over the ranks.  The float sum is cut into buckets of at
 * most bucket_floats (0: 4 Mi floats) that are all in flight at once
 * (non-blocking all-reduces); every rank gets the same bits. */
lc_status lc_dist_sum_f32(lc_dist *d, float *buf, size_t n, size_t bucket_floats);
/* The same, started now and finished by lc_dist_sum_wait (which waits for
 * every sum started so far); the buffer must stay untouched in between.
 * Each rank starts its sums in the same order (one collective each). */
lc_status lc_dist_sum_f32_start(lc_dist *d, float *buf, size_t n, size_t bucket_floats);
lc_status lc_dist_sum_wait(lc_dist *d);
lc_status lc_dist_sum_f64(lc_dist *d, double *buf, size_t n);
/* The largest value over the ranks, in place. */
lc_status lc_dist_max_i32(lc_dist *d, int *v);
/* rank root's bytes to every rank. */
lc_status lc_dist_bcast(lc_dist *d, void *buf, size_t bytes, int root);
/* All ranks' `bytes` bytes, rank after rank, into out (size * bytes). */
lc_status lc_dist_allgather(lc_dist *d, const void *in, void *out, size_t bytes);
lc_status lc_dist_barrier(lc_dist *d);

/* Seconds spent in collectives so far (all-reduces of sums), for the note
 * on scaling; 0 for NULL. */
double lc_dist_sum_seconds(const lc_dist *d);

#endif

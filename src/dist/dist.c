/* lc_dist over MPI, or the single process when built without it. */
#include "lc_dist.h"

#include <stdlib.h>
#include <string.h>

#ifdef LAYCA_HAVE_MPI
#include <mpi.h>

struct lc_dist {
    int rank, size, local_rank, local_size;
    MPI_Comm local;
    double sum_s;
    MPI_Request req[64]; /* sums started and not yet waited for */
    int n_req;
};

bool lc_dist_available(void) { return true; }

static lc_status mpi_error(int rc, const char *call)
{
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return LC_ERR(LC_ERR_IO, "%s failed: %s", call, msg);
}
#define MPI_TRY(call) do { int rc_ = (call); if (rc_ != MPI_SUCCESS) return mpi_error(rc_, #call); } while (0)

lc_status lc_dist_create(lc_dist **out, int *argc, char ***argv)
{
    *out = NULL;
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited) MPI_TRY(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    /* errors come back as codes, never as an abort inside MPI */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    lc_dist *d = calloc(1, sizeof *d);
    if (!d) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    /* the processes that share this machine (for the device choice) */
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &d->local) != MPI_SUCCESS) {
        d->local = MPI_COMM_NULL;
        d->local_rank = d->rank;
        d->local_size = d->size;
    } else {
        MPI_Comm_rank(d->local, &d->local_rank);
        MPI_Comm_size(d->local, &d->local_size);
    }
    *out = d;
    return LC_OK;
}

void lc_dist_destroy(lc_dist *d)
{
    if (!d) return;
    if (d->local != MPI_COMM_NULL) MPI_Comm_free(&d->local);
    free(d);
    MPI_Finalize();
}

void lc_dist_abort(lc_dist *d, int code)
{
    if (d) MPI_Abort(MPI_COMM_WORLD, code);
}

int lc_dist_rank(const lc_dist *d) { return d ? d->rank : 0; }
int lc_dist_size(const lc_dist *d) { return d ? d->size : 1; }
int lc_dist_local_rank(const lc_dist *d) { return d ? d->local_rank : 0; }
int lc_dist_local_size(const lc_dist *d) { return d ? d->local_size : 1; }
double lc_dist_sum_seconds(const lc_dist *d) { return d ? d->sum_s : 0.0; }

lc_status lc_dist_sum_wait(lc_dist *d)
{
    if (!d || d->n_req == 0) return LC_OK;
    double t0 = MPI_Wtime();
    int k = d->n_req;
    d->n_req = 0;
    MPI_TRY(MPI_Waitall(k, d->req, MPI_STATUSES_IGNORE));
    d->sum_s += MPI_Wtime() - t0;
    return LC_OK;
}

lc_status lc_dist_sum_f32_start(lc_dist *d, float *buf, size_t n, size_t bucket_floats)
{
    if (!d || d->size == 1 || n == 0) return LC_OK;
    size_t bf = bucket_floats ? bucket_floats : (size_t)4 << 20;
    if (bf > (size_t)1 << 30) bf = (size_t)1 << 30;
    for (size_t off = 0; off < n;) {
        /* up to LC_COUNTOF(d->req) buckets in flight, then wait for them */
        if (d->n_req == (int)LC_COUNTOF(d->req)) LC_TRY(lc_dist_sum_wait(d));
        size_t m = n - off < bf ? n - off : bf;
        double t0 = MPI_Wtime();
        MPI_TRY(MPI_Iallreduce(MPI_IN_PLACE, buf + off, (int)m, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &d->req[d->n_req++]));
        d->sum_s += MPI_Wtime() - t0;
        off += m;
    }
    return LC_OK;
}

lc_status lc_dist_sum_f32(lc_dist *d, float *buf, size_t n, size_t bucket_floats)
{
    LC_TRY(lc_dist_sum_f32_start(d, buf, n, bucket_floats));
    return lc_dist_sum_wait(d);
}

lc_status lc_dist_sum_f64(lc_dist *d, double *buf, size_t n)
{
    if (!d || d->size == 1 || n == 0) return LC_OK;
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    return LC_OK;
}

lc_status lc_dist_max_i32(lc_dist *d, int *v)
{
    if (!d || d->size == 1) return LC_OK;
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    return LC_OK;
}

lc_status lc_dist_bcast(lc_dist *d, void *buf, size_t bytes, int root)
{
    if (!d || d->size == 1 || bytes == 0) return LC_OK;
    if (bytes > (size_t)1 << 30) return LC_ERR(LC_ERR_INVALID, "broadcast of %zu bytes: at most 1 GiB", bytes);
    MPI_TRY(MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD));
    return LC_OK;
}

lc_status lc_dist_allgather(lc_dist *d, const void *in, void *out, size_t bytes)
{
    if (!d || d->size == 1) {
        if (bytes) memmove(out, in, bytes);
        return LC_OK;
    }
    MPI_TRY(MPI_Allgather(in, (int)bytes, MPI_BYTE, out, (int)bytes, MPI_BYTE, MPI_COMM_WORLD));
    return LC_OK;
}

lc_status lc_dist_barrier(lc_dist *d)
{
    if (!d || d->size == 1) return LC_OK;
    MPI_TRY(MPI_Barrier(MPI_COMM_WORLD));
    return LC_OK;
}

#else /* the single process */

struct lc_dist {
    int unused;
};

bool lc_dist_available(void) { return false; }

lc_status lc_dist_create(lc_dist **out, int *argc, char ***argv)
{
    *out = NULL;
    return LC_ERR(LC_ERR_UNSUPPORTED, "this layca was built without MPI (install libopenmpi-dev and rebuild)");
}

void lc_dist_destroy(lc_dist *d) { (void)d; }
void lc_dist_abort(lc_dist *d, int code) { (void)d, (void)code; }
int lc_dist_rank(const lc_dist *d) { return 0; }
int lc_dist_size(const lc_dist *d) { return 1; }
int lc_dist_local_rank(const lc_dist *d) { return 0; }
int lc_dist_local_size(const lc_dist *d) { return 1; }
double lc_dist_sum_seconds(const lc_dist *d) { return 0.0; }
lc_status lc_dist_sum_f32(lc_dist *d, float *buf, size_t n, size_t bucket_floats) { return LC_OK; }
lc_status lc_dist_sum_f32_start(lc_dist *d, float *buf, size_t n, size_t bucket_floats) { return LC_OK; }
lc_status lc_dist_sum_wait(lc_dist *d) { return LC_OK; }
lc_status lc_dist_sum_f64(lc_dist *d, double *buf, size_t n) { return LC_OK; }
lc_status lc_dist_max_i32(lc_dist *d, int *v) { return LC_OK; }
lc_status lc_dist_bcast(lc_dist *d, void *buf, size_t bytes, int root) { return LC_OK; }

lc_status lc_dist_allgather(lc_dist *d, const void *in, void *out, size_t bytes)
{
    if (bytes) memmove(out, in, bytes);
    return LC_OK;
}

lc_status lc_dist_barrier(lc_dist *d) { return LC_OK; }

#endif

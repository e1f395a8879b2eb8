/* Data parallelism in the trainer (lc_train_opts.dist): the device of each
 * rank, the batch split, the gradient exchange between backward and the
 * optimizer step, the sums of the loss and hit counts, the stop decision,
 * and the per-rank parts of a checkpoint.  With one rank every hook leaves
 * the run as it was. */
#include "trainer_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A list "SEL0,SEL1,..." gives rank r of a machine item r mod the count;
 * a single selector is every rank's. */
static void pick_from_list(lc_trainer *t)
{
    const char *sel = t->o.device;
    int count = 1;
    for (const char *c = sel; *c; c++) count += *c == ',';
    if (count == 1) return;
    int want = lc_dist_local_rank(t->o.dist) % count;
    for (int k = 0; k < want; k++) sel = strchr(sel, ',') + 1;
    size_t len = strcspn(sel, ",");
    snprintf(t->dist_device, sizeof t->dist_device, "%.*s", (int)len, sel);
    t->o.device = t->dist_device;
    t->o.rt.selector = t->dist_device;
}

/* Rank r of a machine takes item r of a --device list; without --device,
 * the machine's GPU number r mod GPUs; without GPUs every rank takes the
 * default device. */
static lc_status pick_device(lc_trainer *t)
{
    if (t->o.device && t->o.device[0]) {
        pick_from_list(t);
        return LC_OK;
    }
    lc_device_info *d;
    int n;
    LC_TRY(lc_rt_list_devices(&d, &n));
    int gpus = 0;
    for (int i = 0; i < n; i++) gpus += (d[i].type & CL_DEVICE_TYPE_GPU) != 0;
    int want = gpus ? lc_dist_local_rank(t->o.dist) % gpus : -1;
    for (int i = 0, g = 0; i < n && want >= 0; i++) {
        if (!(d[i].type & CL_DEVICE_TYPE_GPU) || g++ != want) continue;
        snprintf(t->dist_device, sizeof t->dist_device, "%d:%d", d[i].platform, d[i].device);
        t->o.device = t->dist_device;
        t->o.rt.selector = t->dist_device;
        t->o.rt.selector_source = NULL;
    }
    if (gpus && lc_dist_local_size(t->o.dist) > gpus && t->rank == 0)
        LC_WARN("%d ranks on this machine share %d GPU%s", lc_dist_local_size(t->o.dist), gpus, gpus == 1 ? "" : "s");
    free(d);
    return LC_OK;
}

lc_status lc_train_dist_begin(lc_trainer *t)
{
    t->rank = lc_dist_rank(t->o.dist);
    t->ranks = lc_dist_size(t->o.dist);
    if (t->ranks == 1) return LC_OK;
    if (t->rank != 0) {
        /* rank 0 writes every file and prints the progress */
        t->o.metrics_path = NULL;
        t->o.quiet = true;
        t->o.progress = LC_PROGRESS_QUIET;
        t->o.progress_fn = NULL;
    }
    return pick_device(t);
}

lc_status lc_train_dist_batch(lc_trainer *t)
{
    t->lbatch = t->batch;
    if (t->ranks == 1) return LC_OK;
    if (t->batch % t->ranks)
        return LC_ERR(LC_ERR_INVALID, "--batch %d is not divisible by the %d ranks: the global batch is split evenly "
                      "(give a multiple of %d)", t->batch, t->ranks, t->ranks);
    t->lbatch = t->batch / t->ranks;
    if (t->rank == 0)
        LC_INFO("data parallel over %d ranks: %d of each batch of %d examples per rank", t->ranks, t->lbatch, t->batch);
    return LC_OK;
}

/* The gradient arena is exchanged in buckets of whole parameters (a
 * parameter larger than this is a bucket of its own): floats [lo, hi),
 * the buckets tiling [0, param_floats) in offset order, gaps included. */
#define BUCKET_FLOATS ((size_t)1 << 20)

typedef struct lc_dist_bucket {
    size_t lo, hi;
    int ready;   /* this step: the last backward launch writing it (-1: none) */
    float *host; /* its floats on the host: mapped, or in dist_buf */
    cl_event ev; /* complete when its final values are on the host */
} lc_dist_bucket;

/* The buckets, once (params in offset order: insertion sort, a few dozen). */
static lc_status plan_buckets(lc_trainer *t)
{
    const lc_graph *g = t->g;
    int np = g->n_params;
    t->dist_bk = calloc((size_t)np + 1, sizeof *t->dist_bk);
    t->dist_pb = calloc((size_t)np + 1, sizeof *t->dist_pb);
    t->dist_last = calloc((size_t)np + 1, sizeof *t->dist_last);
    t->dist_order = calloc((size_t)np + 1, sizeof *t->dist_order);
    int *idx = t->dist_order; /* the parameters by offset, then the buckets' order */
    if (!t->dist_bk || !t->dist_pb || !t->dist_last || !idx) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < np; i++) {
        int j = i;
        for (; j > 0 && g->params[idx[j - 1]].offset > g->params[i].offset; j--) idx[j] = idx[j - 1];
        idx[j] = i;
    }
    int nb = 0;
    size_t lo = 0;
    for (int k = 0; k < np; k++) {
        const lc_param *p = &g->params[idx[k]];
        if (k > 0 && (size_t)(p->offset + p->numel) - lo > BUCKET_FLOATS) {
            t->dist_bk[nb++].hi = (size_t)p->offset;
            lo = (size_t)p->offset;
            t->dist_bk[nb].lo = lo;
        }
        t->dist_pb[idx[k]] = nb;
    }
    t->dist_bk[nb++].hi = (size_t)g->param_floats;
    t->dist_nbk = nb;
    return LC_OK;
}

/* This step's readiness of the buckets (from the current launch list) and
 * the order they finish in: by last launch, then offset.  The order
 * depends on the graph only (launches follow the nodes' order), so every
 * rank starts the same collectives in the same order. */
static void order_buckets(lc_trainer *t)
{
    lc_dist_bucket *bk = t->dist_bk;
    int *order = t->dist_order;
    lc_exec_grad_last_launch(t->ex, t->dist_last);
    for (int b = 0; b < t->dist_nbk; b++) bk[b].ready = -1;
    for (int p = 0; p < t->g->n_params; p++) bk[t->dist_pb[p]].ready = LC_MAX(bk[t->dist_pb[p]].ready, t->dist_last[p]);
    for (int i = 0; i < t->dist_nbk; i++) {
        int j = i;
        for (; j > 0 && bk[order[j - 1]].ready > bk[i].ready; j--) order[j] = order[j - 1];
        order[j] = i;
    }
}

/* Enqueues the bucket's copy to the host after the launches so far: a map
 * of its region where the buffers are host memory, else a read into
 * dist_buf; its event tells when the values are there. */
static lc_status bucket_to_host(lc_trainer *t, lc_dist_bucket *b, bool mapped)
{
    cl_mem buf = lc_exec_grads(t->ex);
    size_t off = b->lo * sizeof(float), bytes = (b->hi - b->lo) * sizeof(float);
    cl_int err = CL_SUCCESS;
    if (mapped) {
        b->host = clEnqueueMapBuffer(t->rt->queue, buf, CL_FALSE, CL_MAP_READ | CL_MAP_WRITE, off, bytes, 0, NULL,
                                     &b->ev, &err);
        if (err == CL_SUCCESS && !b->host) err = CL_MAP_FAILURE;
    } else {
        b->host = t->dist_buf + b->lo;
        err = clEnqueueReadBuffer(t->rt->queue, buf, CL_FALSE, off, bytes, b->host, 0, NULL, &b->ev);
    }
    if (err != CL_SUCCESS) b->ev = NULL;
    LC_TRY(lc_rt_check(err, mapped ? "clEnqueueMapBuffer (gradient bucket)" : "clEnqueueReadBuffer (gradient bucket)"));
    return lc_rt_check(clFlush(t->rt->queue), "clFlush");
}

/* Waits for the bucket's event, then weights each rank's mean over its n
 * examples by n / n_global and starts the bucket's sum over the ranks. */
static lc_status bucket_start(lc_trainer *t, lc_dist_bucket *b, int n, int n_global)
{
    double tw = lc_now_s();
    LC_TRY(lc_rt_check(clWaitForEvents(1, &b->ev), "clWaitForEvents (gradient bucket)"));
    t->dist_wait_s += lc_now_s() - tw;
    size_t nf = b->hi - b->lo;
    if (n > 0) {
        float w = (float)((double)n / (double)n_global);
        for (size_t i = 0; i < nf; i++) b->host[i] *= w;
    } else {
        memset(b->host, 0, nf * sizeof(float)); /* no example of the last, short batch */
    }
    t->dist_buckets++;
    return lc_dist_sum_f32_start(t->o.dist, b->host, nf, 0);
}

/* Backward launches [from, to), timed as the wait for the backward pass
 * (host GEMMs run in this thread). */
static lc_status backward_part(lc_trainer *t, int from, int to)
{
    double t0 = lc_now_s();
    lc_status st = lc_exec_backward_part(t->ex, from, to);
    t->dist_wait_s += lc_now_s() - t0;
    return st;
}

/* The backward pass (n > 0) and the mean gradient of the global batch,
 * bucket by bucket: the launches up to the last one writing the next
 * bucket, its copy to the host, the start of its sum while the launches
 * left run; then the wait for all sums and the copies back. */
static lc_status exchange(lc_trainer *t, int n, int n_global)
{
    const int *order = t->dist_order;
    bool mapped = lc_rt_host_blas_usable(t->rt);
    int total = n > 0 ? lc_exec_backward_launches(t->ex) : 0, done = 0;
    lc_status st = LC_OK;
    int k = 0;
    for (; k < t->dist_nbk && st == LC_OK; k++) {
        lc_dist_bucket *b = &t->dist_bk[order[k]];
        int to = LC_MIN(b->ready + 1, total);
        if (to > done) st = backward_part(t, done, to);
        done = LC_MAX(done, to);
        if (st == LC_OK) st = bucket_to_host(t, b, mapped);
        if (st == LC_OK) st = bucket_start(t, b, n, n_global);
        t->dist_early += st == LC_OK && done < total;
    }
    if (st == LC_OK && done < total) st = backward_part(t, done, total);
    if (st == LC_OK) st = lc_dist_sum_wait(t->o.dist);
    for (int j = 0; j < k; j++) {
        lc_dist_bucket *b = &t->dist_bk[order[j]];
        if (b->ev) clReleaseEvent(b->ev);
        b->ev = NULL;
        if (mapped && b->host) {
            lc_status s2 = lc_rt_unmap(t->rt, lc_exec_grads(t->ex), b->host);
            if (st == LC_OK) st = s2;
        }
        b->host = NULL;
    }
    if (st == LC_OK && !mapped)
        st = lc_rt_write(t->rt, lc_exec_grads(t->ex), 0, (size_t)t->g->param_floats * sizeof(float), t->dist_buf);
    return st;
}

/* ranks > 1: runs the backward pass (n > 0) and leaves the mean gradient
 * of the global batch in the gradient arena.  Where the device's buffers
 * live in host memory (lc_rt_host_blas_usable) each bucket is mapped and
 * summed in place; elsewhere it is staged: read, summed, written back. */
lc_status lc_train_dist_grads(lc_trainer *t, int n, int n_global)
{
    if (t->ranks == 1) return LC_OK;
    size_t nf = (size_t)t->g->param_floats;
    if (!t->dist_nbk) LC_TRY(plan_buckets(t));
    if (!t->dist_buf && !lc_rt_host_blas_usable(t->rt)) {
        t->dist_buf = malloc((nf ? nf : 1) * sizeof(float));
        if (!t->dist_buf) return LC_ERR(LC_ERR_NOMEM, "out of memory for the gradients' staging (%zu floats)", nf);
    }
    order_buckets(t);
    double t0 = lc_now_s(), w0 = t->dist_wait_s;
    lc_status st = exchange(t, n, n_global);
    /* the exchange proper: the time waiting for the backward launches apart */
    t->dist_s += lc_now_s() - t0 - (t->dist_wait_s - w0);
    t->dist_steps++;
    return st;
}

lc_status lc_train_dist_sum(lc_trainer *t, double *v, int n)
{
    if (t->ranks == 1) return LC_OK;
    return lc_dist_sum_f64(t->o.dist, v, (size_t)n);
}

lc_status lc_train_dist_acc(lc_trainer *t, float acc[3])
{
    if (t->ranks == 1) return LC_OK;
    double v[3] = {acc[0], acc[1], acc[2]};
    LC_TRY(lc_dist_sum_f64(t->o.dist, v, 3));
    for (int k = 0; k < 3; k++) acc[k] = (float)v[k];
    return LC_OK;
}

/* A signal reaches the ranks at different steps: they stop together, at
 * the first step after any of them saw it. */
lc_status lc_train_dist_stop(lc_trainer *t, int *stop)
{
    if (t->ranks == 1) return LC_OK;
    return lc_dist_max_i32(t->o.dist, stop);
}

void lc_train_dist_shard(const lc_trainer *t, int64_t n, int64_t *lo, int64_t *hi)
{
    *lo = n * t->rank / t->ranks;
    *hi = n * (t->rank + 1) / t->ranks;
}

/* Every rank must hold the same weights (the same gradients and the same
 * optimizer step); a difference is an error, never a silent fork. */
lc_status lc_train_dist_same_weights(lc_trainer *t)
{
    if (t->ranks == 1) return LC_OK;
    LC_TRY(lc_exec_read_params(t->ex, t->host_params));
    uint64_t h = lc_hash64(t->host_params, (size_t)t->g->param_floats * sizeof(float), 0);
    uint64_t *all = malloc((size_t)t->ranks * sizeof *all);
    if (!all) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    lc_status st = lc_dist_allgather(t->o.dist, &h, all, sizeof h);
    for (int r = 1; r < t->ranks && st == LC_OK; r++)
        if (all[r] != all[0])
            st = LC_ERR(LC_ERR_INVALID, "step %lld: the weights of rank %d differ from rank 0's (hash %016" PRIx64
                        " vs %016" PRIx64 "): the ranks diverged", (long long)t->step, r, all[r], all[0]);
    free(all);
    return st;
}

/* Checkpoints: *all gets every rank's accumulators (malloc'ed, ranks x 3,
 * for the file rank 0 writes; NULL with one rank) and acc their sum (the
 * epoch's figures so far). */
lc_status lc_train_dist_acc_save(lc_trainer *t, float acc[3], float **all)
{
    *all = NULL;
    if (t->ranks == 1) return LC_OK;
    *all = malloc((size_t)t->ranks * 3 * sizeof **all);
    if (!*all) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    LC_TRY(lc_dist_allgather(t->o.dist, acc, *all, 3 * sizeof(float)));
    return lc_train_dist_acc(t, acc);
}

void lc_train_dist_report(lc_trainer *t)
{
    if (t->ranks == 1 || t->rank != 0 || t->dist_steps == 0) return;
    double per = 1e3 / (double)t->dist_steps;
    LC_INFO("gradient all-reduce over %d ranks: %.2f ms per step (MPI %.2f ms, the rest host copies or maps), %.1f%% "
            "of the training time; %.2f ms per step waiting for the backward pass; %lld of %lld buckets started "
            "before the backward pass ended", t->ranks, t->dist_s * per, lc_dist_sum_seconds(t->o.dist) * per,
            t->train_time > 0 ? 100 * t->dist_s / t->train_time : 0.0, t->dist_wait_s * per,
            (long long)t->dist_early, (long long)t->dist_buckets);
}

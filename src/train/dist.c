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

/* Each rank's mean over its n examples weighted by n / n_global, summed
 * over the ranks in place. */
static lc_status sum_grads(lc_trainer *t, float *g, size_t nf, int n, int n_global)
{
    if (n > 0) {
        float w = (float)((double)n / (double)n_global);
        for (size_t i = 0; i < nf; i++) g[i] *= w;
    } else {
        memset(g, 0, nf * sizeof(float)); /* no example of the last, short batch */
    }
    return lc_dist_sum_f32(t->o.dist, g, nf, 0);
}

/* The mean gradient of the global batch.  Where the device's buffers live
 * in host memory (lc_rt_host_blas_usable) the gradient arena is mapped and
 * summed in place; elsewhere it is staged: read, summed, written back. */
lc_status lc_train_dist_grads(lc_trainer *t, int n, int n_global)
{
    if (t->ranks == 1) return LC_OK;
    double tw = lc_now_s();
    LC_TRY(lc_rt_finish(t->rt)); /* the backward pass, timed apart from the exchange */
    double t0 = lc_now_s();
    t->dist_wait_s += t0 - tw;
    size_t nf = (size_t)t->g->param_floats;
    cl_mem buf = lc_exec_grads(t->ex);
    if (lc_rt_host_blas_usable(t->rt)) {
        float *g;
        LC_TRY(lc_rt_map(t->rt, buf, &g));
        lc_status st = sum_grads(t, g, nf, n, n_global);
        lc_status st2 = lc_rt_unmap(t->rt, buf, g);
        LC_TRY(st);
        LC_TRY(st2);
    } else {
        if (!t->dist_buf) {
            t->dist_buf = malloc((nf ? nf : 1) * sizeof(float));
            if (!t->dist_buf) return LC_ERR(LC_ERR_NOMEM, "out of memory for the gradients' staging (%zu floats)", nf);
        }
        if (n > 0) LC_TRY(lc_exec_read_grads(t->ex, t->dist_buf));
        LC_TRY(sum_grads(t, t->dist_buf, nf, n, n_global));
        LC_TRY(lc_rt_write(t->rt, buf, 0, nf * sizeof(float), t->dist_buf));
    }
    t->dist_s += lc_now_s() - t0;
    t->dist_steps++;
    return LC_OK;
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
            "of the training time; %.2f ms per step waiting for the backward pass before it", t->ranks,
            t->dist_s * per, lc_dist_sum_seconds(t->o.dist) * per,
            t->train_time > 0 ? 100 * t->dist_s / t->train_time : 0.0, t->dist_wait_s * per);
}

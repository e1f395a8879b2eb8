/* The executor: creation, replay of the launch lists, the API (lc_exec.h). */
#include "exec_int.h"

void lc_exec_destroy(lc_exec *ex)
{
    if (!ex) return;
    if (ex->acc_event) {
        clWaitForEvents(1, &ex->acc_event);
        clReleaseEvent(ex->acc_event);
    }
    for (int i = 0; i < N_LISTS; i++) lcx_llist_free(&ex->lists[i]);
    for (int i = 0; i < ex->n_subs; i++)
        if (ex->subs[i]) clReleaseMemObject(ex->subs[i]);
    free(ex->subs);
    free(ex->sub_origin);
    free(ex->sub_parent);
    cl_mem bufs[] = {ex->params, ex->grads, ex->acts, ex->correct, ex->acc};
    for (size_t i = 0; i < LC_COUNTOF(bufs); i++)
        if (bufs[i]) clReleaseMemObject(bufs[i]);
    free(ex->host_conv);
    free(ex->dconv);
    free(ex);
}

/* ---- dropout masks (the host twin of dropout.cl) ---- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t lc_dropout_key(uint64_t seed, uint64_t step, const char *node)
{
    uint64_t salt = lc_hash64(node, strlen(node), 0xd0d0);
    return mix64(mix64(seed ^ mix64(step + 0x9E3779B97F4A7C15ull)) ^ salt);
}

uint32_t lc_dropout_threshold(double rate)
{
    if (!(rate > 0)) return 0;
    double t = rate * 16777216.0;
    return t >= 16777215.0 ? 16777215u : (uint32_t)t;
}

bool lc_dropout_keep(uint64_t key, uint64_t index, uint32_t threshold)
{
    return (uint32_t)(mix64(key + (index + 1) * 0x9E3779B97F4A7C15ull) >> 40) >= threshold;
}

static lc_status list_for(lc_exec *ex, int nb, bool tr, int *idx)
{
    for (int i = 0; i < N_LISTS; i++)
        if (ex->lists[i].batch == nb && ex->lists[i].training == tr) { *idx = i; return LC_OK; }
    /* slots 0 and 1 hold the planned batch for good; others are recycled */
    int slot = -1;
    for (int i = 2; i < N_LISTS && slot < 0; i++)
        if (ex->lists[i].batch == 0) slot = i;
    if (slot < 0) {
        slot = 2 + ex->recycle;
        ex->recycle = (ex->recycle + 1) % (N_LISTS - 2);
    }
    lcx_llist_free(&ex->lists[slot]);
    lc_status st = lcx_build_list(ex, &ex->lists[slot], nb, tr);
    if (st != LC_OK) { lcx_llist_free(&ex->lists[slot]); return st; }
    *idx = slot;
    return LC_OK;
}

/* A conv node on the host: the arenas it touches are mapped (the first map
 * waits for the queued work), computed on, and unmapped. */
static lc_status run_host_conv(lc_exec *ex, int id, int nb, int schedule)
{
    const lc_graph *g = ex->g;
    const lc_node *nd = &g->nodes[id];
    const lc_node *c = nd->op == LC_OP_CONV2D ? nd : &g->nodes[nd->fwd];
    conv_dims d = lcx_conv_dims_of(g, c);
    bool pw = lc_exec_conv_pointwise(g, id);
    int chunk = pw ? nb : lc_exec_conv_chunk(g, id, nb);
    if (!pw && nd->aux_offset < 0) return LC_ERR(LC_ERR_INVALID, "node '%s': conv workspace is not planned", nd->name);
    cl_mem bufs[3] = {ex->acts, ex->params, ex->grads};
    float *p[3] = {NULL, NULL, NULL};
    lc_status st = LC_OK;
    for (int i = 0; i < 3 && st == LC_OK; i++) st = lc_rt_map(ex->rt, bufs[i], &p[i]);
#define HPTR(l) (p[(l).buf == ex->acts ? 0 : (l).buf == ex->params ? 1 : 2] + (l).off)
    if (st == LC_OK) {
        loc a = lcx_where(ex, nd->inputs[0]), b = lcx_where(ex, nd->inputs[1]), y = lcx_where(ex, id);
        const float *bias = nd->op == LC_OP_CONV2D && c->bias ? HPTR(lcx_where(ex, c->inputs[2])) : NULL;
        float *ws = pw ? NULL : HPTR(lcx_aux_of(ex, id));
        int kind = nd->op == LC_OP_CONV2D ? HC_FWD : nd->op == LC_OP_CONV2D_DX ? HC_DX : HC_DW;
        st = lc_host_conv(ex->rt, kind, schedule, &d, nb, chunk, pw, HPTR(a), HPTR(b), bias, HPTR(y), ws,
                          pw ? 0 : (size_t)nd->aux_floats);
    }
#undef HPTR
    for (int i = 0; i < 3; i++) {
        lc_status u = lc_rt_unmap(ex->rt, bufs[i], p[i]);
        if (st == LC_OK) st = u;
    }
    return st;
}

lc_status lcx_run(lc_exec *ex, const llist *L, int from, int to)
{
    if (ex->opts.plan_only) return LC_ERR(LC_ERR_INVALID, "graph '%s': a plan-only executor runs nothing", ex->g->name);
    for (int i = from; i < to; i++) {
        const launch *x = &L->l[i];
        if (x->kind == L_HOST_CONV) {
            LC_TRY(run_host_conv(ex, x->node, x->nb, ex->host_conv[x->node]));
        } else if (x->kind == L_GEMM && x->batch > 1) {
            LC_TRY(lc_rt_sgemm_strided_batched(ex->rt, x->ta, x->tb, x->m, x->n, x->kk, x->alpha, x->a, x->ao, x->lda,
                                               x->sa, x->b, x->bo, x->ldb, x->sb, x->beta, x->c, x->co, x->ldc, x->sc,
                                               x->batch));
        } else if (x->kind == L_GEMM) {
            LC_TRY(lc_rt_sgemm(ex->rt, x->ta, x->tb, x->m, x->n, x->kk, x->alpha, x->a, x->ao, x->lda, x->b, x->bo,
                               x->ldb, x->beta, x->c, x->co, x->ldc));
        } else {
            if (x->rng_arg >= 0) {
                cl_ulong key = lc_dropout_key(ex->seed, ex->last_step, ex->g->nodes[x->rng_node].name);
                LC_TRY(lc_rt_check(clSetKernelArg(x->k, (cl_uint)x->rng_arg, sizeof key, &key), "clSetKernelArg"));
            }
            LC_TRY(lc_rt_launch(ex->rt, x->k, x->dims, x->global, x->has_local ? x->local : NULL,
                                ex->g->nodes[x->node].name));
        }
    }
    return LC_OK;
}

static bool same_gemm(const launch *a, const launch *b)
{
    return a->ta == b->ta && a->tb == b->tb && a->m == b->m && a->n == b->n && a->kk == b->kk && a->lda == b->lda &&
           a->ldb == b->ldb && a->ldc == b->ldc && a->batch == b->batch && a->sa == b->sa && a->sb == b->sb &&
           a->sc == b->sc;
}

void lc_exec_plan_memory(const lc_graph *g, int extra_param_arenas, lc_exec_memory *out)
{
    memset(out, 0, sizeof *out);
    uint64_t p = (uint64_t)(g->param_floats > 0 ? g->param_floats : 1) * 4;
    uint64_t a = (uint64_t)(g->act_floats > 0 ? g->act_floats : 1) * 4;
    out->params = out->grads = p;
    out->extra = (uint64_t)(extra_param_arenas > 0 ? extra_param_arenas : 0) * p;
    out->acts = a;
    out->small = (uint64_t)(g->planned_batch > 0 ? g->planned_batch : 0) * 8 + 16;
    out->total = out->params + out->grads + out->extra + out->acts + out->small;
    out->largest = LC_MAX(p, a);
}

lc_status lc_exec_check_memory(lc_rt *rt, const lc_graph *g, int extra_param_arenas)
{
    lc_exec_memory m;
    lc_exec_plan_memory(g, extra_param_arenas, &m);
    char what[128], detail[320];
    snprintf(what, sizeof what, "model '%s' at batch %d", g->name, g->planned_batch);
    snprintf(detail, sizeof detail,
             "parameters %llu, gradients %llu, optimizer state %llu (%d arenas), activations %llu bytes",
             (unsigned long long)m.params, (unsigned long long)m.grads, (unsigned long long)m.extra,
             extra_param_arenas, (unsigned long long)m.acts);
    return lc_rt_check_plan(rt, what, m.total, m.largest, detail);
}

lc_status lc_exec_create(lc_exec **out, lc_rt *rt, lc_graph *g)
{
    lc_exec_opts o = {0};
    return lc_exec_create_opts(out, rt, g, &o);
}

lc_status lc_exec_create_opts(lc_exec **out, lc_rt *rt, lc_graph *g, const lc_exec_opts *opts)
{
    *out = NULL;
    LC_TRY(lc_exec_ops_check());
    if (g->planned_batch <= 0) return LC_ERR(LC_ERR_INVALID, "graph '%s' is not planned", g->name);
    if (g->aux_fn != lc_exec_aux_floats) { /* planned without the lowering's workspaces */
        g->aux_fn = lc_exec_aux_floats;
        LC_TRY(lc_graph_plan(g, g->planned_batch));
    }
    if (!opts->plan_only) LC_TRY(lc_exec_check_memory(rt, g, 0));
    lc_exec *ex = calloc(1, sizeof *ex);
    if (!ex) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    ex->rt = rt;
    ex->g = g;
    ex->opts = *opts;
    ex->training = g->n_forward > 0 && g->n_forward < g->n_nodes;
    ex->gpu = opts->kernels == LC_EXEC_KERNELS_GPU ||
              (opts->kernels == LC_EXEC_KERNELS_AUTO && (rt->device_only || !(rt->info.type & CL_DEVICE_TYPE_CPU)));
    ex->elt_wg = lc_rt_wg_cap(rt, 256);
    lc_status st;
#define CHECK(x) do { st = (x); if (st != LC_OK) goto fail; } while (0)
    size_t pbytes = (size_t)(g->param_floats > 0 ? g->param_floats : 1) * 4;
    size_t abytes = (size_t)(g->act_floats > 0 ? g->act_floats : 1) * 4;
    if (!opts->plan_only) {
        CHECK(lc_rt_alloc(rt, pbytes, &ex->params));
        CHECK(lc_rt_alloc(rt, pbytes, &ex->grads));
        CHECK(lc_rt_alloc(rt, abytes, &ex->acts));
        CHECK(lc_rt_alloc(rt, (size_t)g->planned_batch * 8, &ex->correct));
        CHECK(lc_rt_alloc(rt, 16, &ex->acc));
        CHECK(lc_rt_fill_zero(rt, ex->params, 0, pbytes));
        CHECK(lc_rt_fill_zero(rt, ex->grads, 0, pbytes));
        CHECK(lc_rt_fill_zero(rt, ex->acts, 0, abytes));
        CHECK(lc_rt_fill_zero(rt, ex->acc, 0, 16));
        ex->bytes = 2 * pbytes + abytes + (size_t)g->planned_batch * 8 + 16;
        CHECK(lcx_choose_conv(ex));
    }
    CHECK(lcx_choose_device_conv(ex));
    CHECK(lcx_build_list(ex, &ex->lists[0], g->planned_batch, true));
    CHECK(lcx_build_list(ex, &ex->lists[1], g->planned_batch, false));
    ex->cur = ex->training ? 0 : 1;
    ex->n = g->planned_batch;
    if (opts->plan_only) {
        *out = ex;
        return LC_OK;
    }
    /* Run every GEMM shape once so CLBlast compiles its kernels now, not
     * inside the training loop.  Outputs are scratch until the first real
     * step; parameter gradients are zeroed again below. */
    const llist *L0 = &ex->lists[0];
    for (int i = 0; i < L0->count; i++) {
        if (L0->l[i].kind != L_GEMM) continue;
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) seen = L0->l[j].kind == L_GEMM && same_gemm(&L0->l[i], &L0->l[j]);
        if (!seen) CHECK(lcx_run(ex, L0, i, i + 1));
    }
    CHECK(lc_rt_fill_zero(rt, ex->grads, 0, pbytes));
    CHECK(lc_rt_finish(rt));
    *out = ex;
    return LC_OK;
fail:
#undef CHECK
    lc_exec_destroy(ex);
    return st;
}

cl_mem lc_exec_params(const lc_exec *ex) { return ex->params; }
cl_mem lc_exec_grads(const lc_exec *ex) { return ex->grads; }

lc_status lc_exec_write_params(lc_exec *ex, const float *host)
{
    return lc_rt_write(ex->rt, ex->params, 0, (size_t)ex->g->param_floats * 4, host);
}

lc_status lc_exec_read_params(lc_exec *ex, float *host)
{
    return lc_rt_read(ex->rt, ex->params, 0, (size_t)ex->g->param_floats * 4, host);
}

lc_status lc_exec_read_grads(lc_exec *ex, float *host)
{
    return lc_rt_read(ex->rt, ex->grads, 0, (size_t)ex->g->param_floats * 4, host);
}

lc_status lc_exec_set_batch(lc_exec *ex, const float *x, const int32_t *y, int n)
{
    lc_graph *g = ex->g;
    if (n <= 0 || n > g->planned_batch)
        return LC_ERR(LC_ERR_INVALID, "batch of %d examples does not fit the plan (1..%d)", n, g->planned_batch);
    LC_TRY(list_for(ex, n, ex->training, &ex->cur));
    ex->n = n;
    size_t xs = (size_t)n * (size_t)lc_shape_numel(&g->nodes[g->input].shape) * 4;
    LC_TRY(lc_rt_write(ex->rt, ex->acts, (size_t)g->nodes[g->input].offset * 4, xs, x));
    if (g->labels >= 0 && y)
        LC_TRY(lc_rt_write(ex->rt, ex->acts, (size_t)g->nodes[g->labels].offset * 4, (size_t)n * 4, y));
    return LC_OK;
}

lc_status lc_exec_set_mode(lc_exec *ex, bool training)
{
    if (ex->training == training) return LC_OK;
    int idx;
    LC_TRY(list_for(ex, ex->n, training, &idx));
    ex->training = training;
    ex->cur = idx;
    return LC_OK;
}

bool lc_exec_training(const lc_exec *ex) { return ex->training; }
void lc_exec_set_seed(lc_exec *ex, uint64_t seed) { ex->seed = seed; }
void lc_exec_set_step(lc_exec *ex, uint64_t step) { ex->step = ex->last_step = step; }
uint64_t lc_exec_step(const lc_exec *ex) { return ex->step; }

lc_status lc_exec_forward(lc_exec *ex)
{
    const llist *L = &ex->lists[ex->cur];
    if (L->training) ex->last_step = ex->step++;
    return lcx_run(ex, L, 0, L->n_fwd);
}

lc_status lc_exec_backward(lc_exec *ex)
{
    const llist *L = &ex->lists[ex->cur];
    return lcx_run(ex, L, L->n_fwd, L->count);
}

int lc_exec_backward_launches(const lc_exec *ex)
{
    const llist *L = &ex->lists[ex->cur];
    return L->count - L->n_fwd;
}

lc_status lc_exec_backward_part(lc_exec *ex, int from, int to)
{
    const llist *L = &ex->lists[ex->cur];
    if (from < 0 || from > to || to > L->count - L->n_fwd)
        return LC_ERR(LC_ERR_INVALID, "backward launches [%d, %d): the pass has %d", from, to, L->count - L->n_fwd);
    return lcx_run(ex, L, L->n_fwd + from, L->n_fwd + to);
}

/* Whether launch x names the gradient arena: a GEMM's output (or the
 * sub-buffer it was rebased on) or a kernel argument. */
static bool names_grads(const lc_exec *ex, const launch *x)
{
    if (x->kind == L_GEMM) {
        cl_mem c = x->c;
        for (int i = 0; i < ex->n_subs; i++)
            if (ex->subs[i] == c) c = ex->sub_parent[i];
        return c == ex->grads;
    }
    if (x->kind != L_KERNEL) return false; /* a host conv writes its node's value only */
    for (int a = 0; a < x->nargs; a++)
        if (x->arg_size[a] == sizeof(cl_mem) && !memcmp(x->arg_bytes + x->arg_at[a], &ex->grads, sizeof(cl_mem)))
            return true;
    return false;
}

void lc_exec_grad_last_launch(const lc_exec *ex, int *last)
{
    const lc_graph *g = ex->g;
    const llist *L = &ex->lists[ex->cur];
    for (int p = 0; p < g->n_params; p++) last[p] = -1;
    for (int i = L->n_fwd; i < L->count; i++) {
        int node = L->l[i].node;
        if (lcx_where(ex, node).buf == ex->grads) {
            last[g->nodes[g->nodes[node].grad_of].param_index] = i - L->n_fwd;
        } else if (names_grads(ex, &L->l[i])) {
            for (int p = 0; p < g->n_params; p++) last[p] = i - L->n_fwd;
        }
    }
}

lc_status lc_exec_stats5(lc_exec *ex, double *loss_sum, double *correct, double *correct5, bool reset)
{
    float acc[3];
    LC_TRY(lc_rt_read(ex->rt, ex->acc, 0, sizeof acc, acc));
    if (loss_sum) *loss_sum = acc[0];
    if (correct) *correct = acc[1];
    if (correct5) *correct5 = acc[2];
    if (reset) LC_TRY(lc_rt_fill_zero(ex->rt, ex->acc, 0, 16));
    return LC_OK;
}

lc_status lc_exec_stats_get(lc_exec *ex, float acc[3])
{
    return lc_rt_read(ex->rt, ex->acc, 0, 3 * sizeof(float), acc);
}

lc_status lc_exec_stats_set(lc_exec *ex, const float acc[3])
{
    return lc_rt_write(ex->rt, ex->acc, 0, 3 * sizeof(float), acc);
}

lc_status lc_exec_stats_request(lc_exec *ex)
{
    if (ex->acc_event) {
        clWaitForEvents(1, &ex->acc_event); /* one in flight at a time */
        clReleaseEvent(ex->acc_event);
        ex->acc_event = NULL;
    }
    cl_int err = clEnqueueReadBuffer(ex->rt->queue, ex->acc, CL_FALSE, 0, sizeof ex->acc_host, ex->acc_host, 0, NULL,
                                     &ex->acc_event);
    if (err != CL_SUCCESS) {
        ex->acc_event = NULL;
        return lc_rt_check(err, "clEnqueueReadBuffer (loss accumulators)");
    }
    return LC_OK;
}

lc_status lc_exec_stats_collect(lc_exec *ex, float acc[3])
{
    if (!ex->acc_event) return LC_ERR(LC_ERR_INVALID, "no read of the loss accumulators is pending");
    cl_int err = clWaitForEvents(1, &ex->acc_event);
    clReleaseEvent(ex->acc_event);
    ex->acc_event = NULL;
    LC_TRY(lc_rt_check(err, "clWaitForEvents (loss accumulators)"));
    memcpy(acc, ex->acc_host, sizeof ex->acc_host);
    return LC_OK;
}

bool lc_exec_stats_pending(const lc_exec *ex) { return ex->acc_event != NULL; }

lc_status lc_exec_stats(lc_exec *ex, double *loss_sum, double *correct, bool reset)
{
    return lc_exec_stats5(ex, loss_sum, correct, NULL, reset);
}

lc_status lc_exec_read_node(lc_exec *ex, int id, float *host)
{
    const lc_graph *g = ex->g;
    if (id < 0 || id >= g->n_nodes) return LC_ERR(LC_ERR_INVALID, "no node %d", id);
    const lc_node *n = &g->nodes[id];
    loc l = lcx_where(ex, id);
    size_t count = (size_t)lc_shape_numel(&n->shape) * (n->batched ? (size_t)ex->n : 1);
    if (l.buf == ex->acts && n->offset < 0) return LC_ERR(LC_ERR_INVALID, "node '%s' has no storage", n->name);
    return lc_rt_read(ex->rt, l.buf, (size_t)l.off * 4, count * 4, host);
}

lc_exec_counts lc_exec_launch_counts(const lc_exec *ex)
{
    const llist *L = &ex->lists[0];
    int progs = 0, host = 0, gemms = 0, batched = 0;
    for (int p = 0; p < P_COUNT; p++) progs += ex->prog[p] != NULL;
    for (int i = 0; i < L->count; i++) {
        host += L->l[i].kind == L_HOST_CONV;
        gemms += L->l[i].kind == L_GEMM;
        batched += L->l[i].kind == L_GEMM && L->l[i].batch > 1;
    }
    return (lc_exec_counts){.forward = L->n_fwd,
                            .backward = L->count - L->n_fwd,
                            .programs = progs,
                            .host = host,
                            .gemm = gemms,
                            .gemm_batched = batched,
                            .gpu_kernels = ex->gpu};
}

static const llist *info_list(const lc_exec *ex)
{
    return &ex->lists[ex->g->n_forward > 0 && ex->g->n_forward < ex->g->n_nodes ? 0 : 1];
}

int lc_exec_launch_total(const lc_exec *ex) { return info_list(ex)->count; }

lc_status lc_exec_launch_info_get(const lc_exec *ex, int i, lc_exec_launch_info *out)
{
    const llist *L = info_list(ex);
    if (i < 0 || i >= L->count) return LC_ERR(LC_ERR_INVALID, "no launch %d (the list has %d)", i, L->count);
    const launch *x = &L->l[i];
    memset(out, 0, sizeof *out);
    out->node = ex->g->nodes[x->node].name;
    out->kind = x->kind == L_KERNEL ? 0 : x->kind == L_GEMM ? 1 : 2;
    out->kernel = x->kind == L_KERNEL ? x->kname : x->kind == L_GEMM ? (x->batch > 1 ? "gemm-batched" : "gemm")
                                                                      : "host-conv";
    for (int d = 0; d < 3; d++) {
        out->global[d] = x->global[d];
        out->local[d] = x->has_local ? x->local[d] : 0;
    }
    out->nargs = x->nargs;
    for (int a = 0; a < x->nargs; a++) {
        out->arg_size[a] = x->arg_size[a];
        out->arg[a] = x->arg_bytes + x->arg_at[a];
    }
    out->ta = x->ta;
    out->tb = x->tb;
    out->m = x->m;
    out->n = x->n;
    out->k = x->kk;
    out->lda = x->lda;
    out->ldb = x->ldb;
    out->ldc = x->ldc;
    out->batch = x->kind == L_GEMM ? (x->batch > 1 ? x->batch : 1) : 0;
    out->stride[0] = x->sa;
    out->stride[1] = x->sb;
    out->stride[2] = x->sc;
    out->off[0] = x->ao;
    out->off[1] = x->bo;
    out->off[2] = x->co;
    for (int k = 0; k < 3; k++) out->base[k] = x->base[k];
    return LC_OK;
}

size_t lc_exec_reduction_wg(const lc_exec *ex) { return LC_MAX(ex->wg[P_NORM], ex->wg[P_LOSS]); }

size_t lc_exec_device_bytes(const lc_exec *ex) { return ex->bytes; }

lc_status lc_exec_set_input(lc_exec *ex, int id, const float *data, int n)
{
    const lc_graph *g = ex->g;
    if (id < 0 || id >= g->n_nodes || lc_op_kind(g->nodes[id].op) != 'D' || g->nodes[id].offset < 0)
        return LC_ERR(LC_ERR_INVALID, "node %d is not an uploaded input", id);
    if (n != ex->n)
        return LC_ERR(LC_ERR_INVALID, "input '%s': %d examples, the batch has %d", g->nodes[id].name, n, ex->n);
    size_t bytes = (size_t)n * (size_t)lc_shape_numel(&g->nodes[id].shape) * 4;
    return lc_rt_write(ex->rt, ex->acts, (size_t)g->nodes[id].offset * 4, bytes, data);
}

/* ---- per-op profile ---- */

static const char *part_of(const launch *x)
{
    if (x->kind == L_GEMM) return x->batch > 1 ? "gemm-batched" : "gemm";
    if (x->kind == L_HOST_CONV) return "host-conv";
    return x->kname ? x->kname : "kernel";
}

lc_status lc_exec_profile(lc_exec *ex, int reps, lc_exec_prof_by by, lc_exec_prof_entry *out, int max, int *n_out,
                          double *step_ms)
{
    const llist *L = &ex->lists[ex->cur];
    if (reps < 1) reps = 1;
    if (n_out) *n_out = 0;
    if (step_ms) *step_ms = 0;
    lc_exec_prof_entry *e = calloc((size_t)L->count + 1, sizeof *e);
    if (!e) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    int ne = 0;
    uint64_t step = ex->step, last = ex->last_step;
    if (L->training) ex->last_step = ex->step;
    lc_status st = lc_rt_finish(ex->rt);
    for (int r = 0; r < reps && st == LC_OK; r++)
        for (int i = 0; i < L->count && st == LC_OK; i++) {
            const launch *x = &L->l[i];
            const lc_node *nd = &ex->g->nodes[x->node];
            double t0 = lc_now_s();
            st = lcx_run(ex, L, i, i + 1);
            if (st == LC_OK) st = lc_rt_finish(ex->rt);
            double dt = lc_now_s() - t0;
            const char *a = by == LC_PROF_NODE ? nd->name : lc_op_name(nd->op);
            const char *b = by == LC_PROF_OP ? "" : part_of(x);
            int k = 0;
            while (k < ne && (strcmp(e[k].op, a) || strcmp(e[k].part, b))) k++;
            if (k == ne) {
                snprintf(e[k].op, sizeof e[k].op, "%s", a);
                snprintf(e[k].part, sizeof e[k].part, "%s", b);
                ne++;
            }
            e[k].ms += dt * 1e3 / reps;
            if (r == 0) e[k].launches++;
        }
    ex->step = step;
    ex->last_step = last;
    if (st == LC_OK) {
        /* largest first (insertion sort: a few dozen groups) */
        for (int i = 1; i < ne; i++)
            for (int j = i; j > 0 && e[j].ms > e[j - 1].ms; j--) {
                lc_exec_prof_entry t = e[j];
                e[j] = e[j - 1];
                e[j - 1] = t;
            }
        double tot = 0;
        for (int i = 0; i < ne; i++) tot += e[i].ms;
        if (out)
            for (int i = 0; i < ne && i < max; i++) out[i] = e[i];
        if (n_out) *n_out = ne;
        if (step_ms) *step_ms = tot;
    }
    free(e);
    return st;
}

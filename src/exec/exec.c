/* Lowering of IR nodes to launches (kernels and CLBlast GEMMs) and the
 * executor that replays them. */
#include "lc_exec.h"

#include <stdlib.h>
#include <string.h>

typedef enum { L_KERNEL, L_GEMM } lkind;

typedef struct launch {
    lkind kind;
    int node;
    cl_kernel k;
    int dims;
    size_t global[2], local[2];
    bool has_local;
    /* GEMM */
    bool ta, tb;
    size_t m, n, kk, ao, bo, co, lda, ldb, ldc;
    float alpha, beta;
    cl_mem a, b, c;
} launch;

typedef struct llist {
    int batch;          /* 0 = unused slot */
    launch *l;
    int count, n_fwd, cap;
} llist;

#define N_LISTS 3

struct lc_exec {
    lc_rt *rt;
    lc_graph *g;
    cl_mem params, grads, acts, correct, acc;
    cl_program p_elt, p_loss;
    llist lists[N_LISTS];
    int cur;            /* index of the list of the current batch */
    int n;              /* current batch size */
    size_t bytes;
};

static void llist_free(llist *L)
{
    for (int i = 0; i < L->count; i++)
        if (L->l[i].k) clReleaseKernel(L->l[i].k);
    free(L->l);
    memset(L, 0, sizeof *L);
}

void lc_exec_destroy(lc_exec *ex)
{
    if (!ex) return;
    for (int i = 0; i < N_LISTS; i++) llist_free(&ex->lists[i]);
    cl_mem bufs[] = {ex->params, ex->grads, ex->acts, ex->correct, ex->acc};
    for (size_t i = 0; i < LC_COUNTOF(bufs); i++)
        if (bufs[i]) clReleaseMemObject(bufs[i]);
    free(ex);
}

/* Where a node's value lives. */
typedef struct loc { cl_mem buf; int off; } loc;

static bool is_param_grad(const lc_graph *g, const lc_node *n)
{
    return lc_op_kind(n->op) == 'B' && !n->batched && n->grad_of >= 0 && g->nodes[n->grad_of].op == LC_OP_PARAM;
}

static loc where(const lc_exec *ex, int id)
{
    const lc_graph *g = ex->g;
    const lc_node *n = &g->nodes[id];
    if (n->op == LC_OP_PARAM) return (loc){ex->params, (int)g->params[n->param_index].offset};
    if (is_param_grad(g, n)) {
        const lc_node *p = &g->nodes[n->grad_of];
        return (loc){ex->grads, (int)g->params[p->param_index].offset};
    }
    return (loc){ex->acts, (int)n->offset};
}

static launch *push(llist *L)
{
    if (L->count == L->cap) {
        int nc = L->cap ? L->cap * 2 : 64;
        launch *nl = realloc(L->l, (size_t)nc * sizeof *nl);
        if (!nl) return NULL;
        L->l = nl;
        L->cap = nc;
    }
    launch *x = &L->l[L->count++];
    memset(x, 0, sizeof *x);
    return x;
}

static lc_status kern(lc_exec *ex, llist *L, int node, cl_program p, const char *name, const lc_arg *args, int nargs,
                      int dims, size_t g0, size_t g1, size_t l0)
{
    launch *x = push(L);
    if (!x) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    x->kind = L_KERNEL;
    x->node = node;
    LC_TRY(lc_rt_kernel(ex->rt, p, name, &x->k));
    LC_TRY(lc_rt_set_args(x->k, args, nargs, name));
    x->dims = dims;
    x->global[0] = g0 ? g0 : 1;
    x->global[1] = g1 ? g1 : 1;
    if (l0) {
        x->has_local = true;
        x->local[0] = l0;
        x->local[1] = 1;
    }
    return LC_OK;
}

static lc_status gemm(llist *L, int node, bool ta, bool tb, size_t m, size_t n, size_t k, loc a, size_t lda, loc b,
                      size_t ldb, loc c, size_t ldc)
{
    launch *x = push(L);
    if (!x) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    *x = (launch){.kind = L_GEMM, .node = node, .ta = ta, .tb = tb, .m = m, .n = n, .kk = k, .alpha = 1.0f,
                  .beta = 0.0f, .a = a.buf, .ao = (size_t)a.off, .lda = lda, .b = b.buf, .bo = (size_t)b.off,
                  .ldb = ldb, .c = c.buf, .co = (size_t)c.off, .ldc = ldc};
    return LC_OK;
}

static int numel(const lc_graph *g, int id) { return (int)lc_shape_numel(&g->nodes[id].shape); }

/* The lowering: IR node -> launches, for batch size nb. */
static lc_status lower_node(lc_exec *ex, llist *L, int id, int nb)
{
    lc_graph *g = ex->g;
    lc_node *nd = &g->nodes[id];
    int in0 = nd->n_inputs > 0 ? nd->inputs[0] : -1, in1 = nd->n_inputs > 1 ? nd->inputs[1] : -1;
    loc y = where(ex, id);
    int total = nb * numel(g, id);
    switch (nd->op) {
    case LC_OP_INPUT:
    case LC_OP_LABELS:
    case LC_OP_PARAM:
    case LC_OP_FLATTEN:
    case LC_OP_RESHAPE:
        return LC_OK;
    case LC_OP_DENSE: {
        int in = numel(g, in0), out = nd->units;
        /* y[n,out] = x[n,in] W[out,in]^T */
        LC_TRY(gemm(L, id, false, true, (size_t)nb, (size_t)out, (size_t)in, where(ex, in0), (size_t)in,
                    where(ex, in1), (size_t)in, y, (size_t)out));
        if (nd->bias) {
            loc b = where(ex, nd->inputs[2]);
            int relu = 0;
            lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(b.buf), LC_ARG(b.off), LC_ARG(nb), LC_ARG(out), LC_ARG(relu)};
            LC_TRY(kern(ex, L, id, ex->p_elt, "lc_bias_act", a, 7, 2, (size_t)out, (size_t)nb, 0));
        }
        return LC_OK;
    }
    case LC_OP_RELU: {
        loc x = where(ex, in0);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(x.buf), LC_ARG(x.off), LC_ARG(total)};
        return kern(ex, L, id, ex->p_elt, "lc_relu_fwd", a, 5, 1, (size_t)total, 0, 0);
    }
    case LC_OP_ADD:
    case LC_OP_ACCUM: {
        loc a0 = where(ex, in0), a1 = where(ex, in1);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(a1.buf), LC_ARG(a1.off),
                      LC_ARG(total)};
        return kern(ex, L, id, ex->p_elt, "lc_add", a, 7, 1, (size_t)total, 0, 0);
    }
    case LC_OP_SOFTMAX_CE: {
        loc z = where(ex, in0), lab = where(ex, in1);
        int classes = numel(g, in0);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(ex->correct), LC_ARG(z.buf), LC_ARG(z.off),
                      LC_ARG(lab.buf), LC_ARG(lab.off), LC_ARG(nb), LC_ARG(classes)};
        LC_TRY(kern(ex, L, id, ex->p_loss, "lc_softmax_ce_fwd", a, 9, 1, (size_t)nb, 0, 0));
        lc_arg s[] = {LC_ARG(ex->acc), LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(ex->correct), LC_ARG(nb)};
        return kern(ex, L, id, ex->p_loss, "lc_loss_stats", s, 5, 1, 64, 0, 64);
    }
    case LC_OP_SOFTMAX_CE_DX: {
        loc z = where(ex, in0), lab = where(ex, in1);
        int classes = numel(g, in0);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(z.buf), LC_ARG(z.off), LC_ARG(lab.buf), LC_ARG(lab.off),
                      LC_ARG(nb), LC_ARG(classes)};
        return kern(ex, L, id, ex->p_loss, "lc_softmax_ce_bwd", a, 8, 1, (size_t)nb, 0, 0);
    }
    case LC_OP_DENSE_DX: {
        /* dx[n,in] = dy[n,out] W[out,in] */
        int in = numel(g, id), out = numel(g, in0);
        return gemm(L, id, false, false, (size_t)nb, (size_t)in, (size_t)out, where(ex, in0), (size_t)out,
                    where(ex, in1), (size_t)in, y, (size_t)in);
    }
    case LC_OP_DENSE_DW: {
        /* dW[out,in] = dy[n,out]^T x[n,in] */
        int out = numel(g, in0), in = numel(g, in1);
        return gemm(L, id, true, false, (size_t)out, (size_t)in, (size_t)nb, where(ex, in0), (size_t)out,
                    where(ex, in1), (size_t)in, y, (size_t)in);
    }
    case LC_OP_BIAS_DB: {
        loc dy = where(ex, in0);
        int cols = numel(g, in0);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(nb), LC_ARG(cols)};
        return kern(ex, L, id, ex->p_elt, "lc_bias_grad", a, 6, 1, (size_t)cols, 0, 0);
    }
    case LC_OP_RELU_DX: {
        loc dy = where(ex, in0), yy = where(ex, in1);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(yy.buf), LC_ARG(yy.off),
                      LC_ARG(total)};
        return kern(ex, L, id, ex->p_elt, "lc_relu_bwd", a, 7, 1, (size_t)total, 0, 0);
    }
    case LC_OP_COUNT:
        break;
    }
    return LC_ERR(LC_ERR_UNSUPPORTED, "node '%s': op %s has no lowering", nd->name, lc_op_name(nd->op));
}

static lc_status build_list(lc_exec *ex, llist *L, int nb)
{
    L->batch = nb;
    for (int i = 0; i < ex->g->n_nodes; i++) {
        if (i == ex->g->n_forward) L->n_fwd = L->count;
        lc_status st = lower_node(ex, L, i, nb);
        if (st != LC_OK) return st;
    }
    if (ex->g->n_forward >= ex->g->n_nodes) L->n_fwd = L->count;
    return LC_OK;
}

static lc_status list_for(lc_exec *ex, int nb, int *idx)
{
    for (int i = 0; i < N_LISTS; i++)
        if (ex->lists[i].batch == nb) { *idx = i; return LC_OK; }
    /* slot 0 holds the planned batch for good; others are recycled */
    int slot = 1;
    for (int i = 1; i < N_LISTS; i++)
        if (ex->lists[i].batch == 0) { slot = i; break; }
    llist_free(&ex->lists[slot]);
    lc_status st = build_list(ex, &ex->lists[slot], nb);
    if (st != LC_OK) { llist_free(&ex->lists[slot]); return st; }
    *idx = slot;
    return LC_OK;
}

static lc_status run(lc_exec *ex, const llist *L, int from, int to)
{
    for (int i = from; i < to; i++) {
        const launch *x = &L->l[i];
        if (x->kind == L_GEMM) {
            LC_TRY(lc_rt_sgemm(ex->rt, x->ta, x->tb, x->m, x->n, x->kk, x->alpha, x->a, x->ao, x->lda, x->b, x->bo,
                               x->ldb, x->beta, x->c, x->co, x->ldc));
        } else {
            LC_TRY(lc_rt_launch(ex->rt, x->k, x->dims, x->global, x->has_local ? x->local : NULL,
                                ex->g->nodes[x->node].name));
        }
    }
    return LC_OK;
}

lc_status lc_exec_create(lc_exec **out, lc_rt *rt, lc_graph *g)
{
    *out = NULL;
    if (g->planned_batch <= 0) return LC_ERR(LC_ERR_INVALID, "graph '%s' is not planned", g->name);
    lc_exec *ex = calloc(1, sizeof *ex);
    if (!ex) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    ex->rt = rt;
    ex->g = g;
    lc_status st;
#define CHECK(x) do { st = (x); if (st != LC_OK) goto fail; } while (0)
    size_t pbytes = (size_t)(g->param_floats > 0 ? g->param_floats : 1) * 4;
    size_t abytes = (size_t)(g->act_floats > 0 ? g->act_floats : 1) * 4;
    CHECK(lc_rt_alloc(rt, pbytes, &ex->params));
    CHECK(lc_rt_alloc(rt, pbytes, &ex->grads));
    CHECK(lc_rt_alloc(rt, abytes, &ex->acts));
    CHECK(lc_rt_alloc(rt, (size_t)g->planned_batch * 4, &ex->correct));
    CHECK(lc_rt_alloc(rt, 16, &ex->acc));
    CHECK(lc_rt_fill_zero(rt, ex->params, 0, pbytes));
    CHECK(lc_rt_fill_zero(rt, ex->grads, 0, pbytes));
    CHECK(lc_rt_fill_zero(rt, ex->acts, 0, abytes));
    CHECK(lc_rt_fill_zero(rt, ex->acc, 0, 16));
    ex->bytes = 2 * pbytes + abytes + (size_t)g->planned_batch * 4 + 16;
    CHECK(lc_rt_program(rt, "eltwise", "", &ex->p_elt));
    CHECK(lc_rt_program(rt, "loss", "", &ex->p_loss));
    CHECK(build_list(ex, &ex->lists[0], g->planned_batch));
    ex->cur = 0;
    ex->n = g->planned_batch;
    /* Run every GEMM once so CLBlast compiles its kernels now, not inside
     * the training loop.  Outputs are scratch until the first real step;
     * parameter gradients are zeroed again below. */
    for (int i = 0; i < ex->lists[0].count; i++)
        if (ex->lists[0].l[i].kind == L_GEMM) CHECK(run(ex, &ex->lists[0], i, i + 1));
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
    LC_TRY(list_for(ex, n, &ex->cur));
    ex->n = n;
    size_t xs = (size_t)n * (size_t)lc_shape_numel(&g->nodes[g->input].shape) * 4;
    LC_TRY(lc_rt_write(ex->rt, ex->acts, (size_t)g->nodes[g->input].offset * 4, xs, x));
    if (g->labels >= 0 && y)
        LC_TRY(lc_rt_write(ex->rt, ex->acts, (size_t)g->nodes[g->labels].offset * 4, (size_t)n * 4, y));
    return LC_OK;
}

lc_status lc_exec_forward(lc_exec *ex)
{
    const llist *L = &ex->lists[ex->cur];
    return run(ex, L, 0, L->n_fwd);
}

lc_status lc_exec_backward(lc_exec *ex)
{
    const llist *L = &ex->lists[ex->cur];
    return run(ex, L, L->n_fwd, L->count);
}

lc_status lc_exec_stats(lc_exec *ex, double *loss_sum, double *correct, bool reset)
{
    float acc[2];
    LC_TRY(lc_rt_read(ex->rt, ex->acc, 0, sizeof acc, acc));
    if (loss_sum) *loss_sum = acc[0];
    if (correct) *correct = acc[1];
    if (reset) LC_TRY(lc_rt_fill_zero(ex->rt, ex->acc, 0, 16));
    return LC_OK;
}

lc_status lc_exec_read_node(lc_exec *ex, int id, float *host)
{
    const lc_graph *g = ex->g;
    if (id < 0 || id >= g->n_nodes) return LC_ERR(LC_ERR_INVALID, "no node %d", id);
    const lc_node *n = &g->nodes[id];
    loc l = where(ex, id);
    size_t count = (size_t)lc_shape_numel(&n->shape) * (n->batched ? (size_t)ex->n : 1);
    if (l.buf == ex->acts && n->offset < 0) return LC_ERR(LC_ERR_INVALID, "node '%s' has no storage", n->name);
    return lc_rt_read(ex->rt, l.buf, (size_t)l.off * 4, count * 4, host);
}

lc_exec_counts lc_exec_launch_counts(const lc_exec *ex)
{
    const llist *L = &ex->lists[0];
    return (lc_exec_counts){.forward = L->n_fwd, .backward = L->count - L->n_fwd, .programs = 2};
}

size_t lc_exec_device_bytes(const lc_exec *ex) { return ex->bytes; }

/* Lowering of IR nodes to launches (kernels and CLBlast GEMMs) and the
 * executor that replays them.
 *
 * conv2d: im2col + GEMM over chunks of examples (the whole batch when the
 * workspace fits, see lc_graph_conv_chunk), the workspace being the node's
 * auxiliary block in the activation arena:
 *   forward  col[K, nc*ohw] = im2col(x); t[cout, nc*ohw] = W[cout, K] col;
 *            y (NCHW) = scatter(t) + b
 *   dW       t = dy as [cout, nc*ohw]; col = im2col(x); dW (+)= t col^T
 *   dx       t = dy as [cout, nc*ohw]; dcol = W^T t; dx = col2im(dcol)
 * with K = cin*kh*kw.  1x1 stride-1 unpadded convs skip im2col: one GEMM per
 * example on the NCHW planes.
 * On CPU devices whose buffers live in host memory, each conv node can
 * instead run on the host as one launch (L_HOST_CONV: the arenas mapped, a
 * schedule of host_conv.c / host_wino.c on the host workers and BLAS, the
 * same workspace): chunked (the steps above), blocked (im2col + GEMM per
 * worker and group of examples, in cache) or Winograd F(2x2, 3x3) / F(4x4,
 * 3x3) for 3x3 stride-1 convs.  The implementation is chosen per node by
 * timing the candidates at creation, once per device and shape (cached
 * beside the program cache, lc_rt_choice_*); LAYCA_CONV=device|
 * host-chunked|host-blocked|host-winograd|host-winograd4 forces one, host
 * meaning the fastest that applies in that order reversed (Winograd 4,
 * Winograd 2, blocked, chunked).
 * batchnorm: a per-channel statistics kernel (batch statistics + running
 * update in training, the running statistics in evaluation) writes
 * [mean, 1/std] into the node's auxiliary block, an elementwise kernel
 * normalises; the backward reads the same block.
 * dropout: counter-based mask from (seed, step, node), recomputed by the
 * backward; the key argument is set before each replay.
 * Kernel styles (lc_exec_opts.kernels): the CPU style above (a row or a
 * plane per work-item), and the GPU style (non-CPU devices, device-only
 * mode): one element per work-item on ranges whose first dimension runs
 * along memory (kern_nd), strided coalesced per-channel reductions, 1x1
 * convs as one strided-batched GEMM, and per conv node a device schedule
 * (GEMM or batched: strided-batched GEMMs from and to NCHW, split-K weight
 * gradients; lc_exec.h), chosen by timing at creation like the host ones.
 * Fused ReLUs (act_relu, see lc_graph_fuse) are applied by the producer's
 * last kernel (bias_act, the conv's layout change or channel bias,
 * batchnorm's apply, or an in-place ReLU after a GEMM or a host conv); the
 * FUSED_RELU node is a view with no launch. */
#include "lc_exec.h"
#include "exec_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { L_KERNEL, L_GEMM, L_HOST_CONV } lkind;

/* Kernel arguments kept with their launch (as handed to clSetKernelArg),
 * for lc_exec_launch_info. */
#define ARG_MAX 20
#define ARG_BYTES 256

typedef struct launch {
    lkind kind;
    int node;
    cl_kernel k;
    int nargs;
    uint16_t arg_size[ARG_MAX], arg_at[ARG_MAX];
    uint8_t arg_bytes[ARG_BYTES];
    int dims;
    size_t global[3], local[3];
    bool has_local;
    int rng_arg;        /* dropout: index of the key argument, else -1 */
    int rng_node;       /* dropout: the forward dropout node */
    const char *kname;  /* kernel name (a literal), for profiles */
    /* GEMM (batch > 1: strided-batched, with strides sa, sb, sc) */
    bool ta, tb;
    size_t m, n, kk, ao, bo, co, lda, ldb, ldc;
    size_t batch, sa, sb, sc;
    float alpha, beta;
    cl_mem a, b, c;
    int64_t base[3];    /* element origin of the sub-buffer a, b, c were rebased on (0: the arena itself) */
    /* L_HOST_CONV: the node's conv on the host over nb examples */
    int nb;
} launch;

typedef struct llist {
    int batch;          /* 0 = unused slot */
    bool training;
    launch *l;
    int count, n_fwd, cap;
} llist;

/* slot 0: planned batch, training; slot 1: planned batch, evaluation; the
 * others hold other batch sizes and are recycled */
#define N_LISTS 6

enum { P_ELT, P_LOSS, P_CONV, P_POOL, P_NORM, P_DROP, P_COUNT };
static const char *const prog_names[P_COUNT] = {"eltwise", "loss", "conv", "pool", "norm", "dropout"};

/* work-group sizes wanted for the reduction kernels of norm.cl (LC_RED_WG)
 * and loss.cl (LC_STATS_WG); the executor builds them with the largest
 * power of two up to this that the device and the kernels allow (GPU
 * style: RED_WG_GPU for norm.cl, many work-groups per channel of up to
 * that many work-items) */
#define RED_WG 64
#define RED_WG_GPU 256

struct lc_exec {
    lc_rt *rt;
    lc_graph *g;
    lc_exec_opts opts;
    cl_mem params, grads, acts, correct, acc;
    cl_program prog[P_COUNT];
    size_t wg[P_COUNT];  /* the fixed work-group size a program was built with (0: none) */
    cl_mem *subs;        /* sub-buffers GEMM operands were rebased on (owned) */
    int64_t *sub_origin; /* their element origins */
    cl_mem *sub_parent;
    int n_subs, cap_subs;
    llist lists[N_LISTS];
    int cur;            /* index of the list of the current batch and mode */
    int n;              /* current batch size */
    int recycle;        /* next slot to recycle */
    bool training;
    uint64_t seed, step, last_step;
    size_t bytes;
    uint8_t *host_conv; /* per node: 0 or the host schedule of a conv (HC_CHUNKED, HC_BLOCKED) */
    bool gpu;           /* GPU-style kernels (lc_exec_opts.kernels) */
    size_t elt_wg;      /* work-group size cap of the GPU-style elementwise kernels */
    uint8_t *dconv;     /* per node: the device conv schedule (LC_EXEC_CONV_GEMM / _BATCHED; GPU style) */
    cl_event acc_event; /* pending lc_exec_stats_request */
    float acc_host[3];
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
    if (ex->acc_event) {
        clWaitForEvents(1, &ex->acc_event);
        clReleaseEvent(ex->acc_event);
    }
    for (int i = 0; i < N_LISTS; i++) llist_free(&ex->lists[i]);
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

/* ---- lowering ---- */

/* Where a node's value lives: a buffer and an offset in floats, 64-bit
 * (kernels take it as ulong). */
typedef struct loc { cl_mem buf; cl_ulong off; } loc;

static bool is_param_grad(const lc_graph *g, const lc_node *n)
{
    return lc_op_kind(n->op) == 'B' && !n->batched && n->grad_of >= 0 && g->nodes[n->grad_of].op == LC_OP_PARAM;
}

static loc where(const lc_exec *ex, int id)
{
    const lc_graph *g = ex->g;
    const lc_node *n = &g->nodes[id];
    if (n->op == LC_OP_PARAM) return (loc){ex->params, (cl_ulong)g->params[n->param_index].offset};
    if (is_param_grad(g, n)) {
        const lc_node *p = &g->nodes[n->grad_of];
        return (loc){ex->grads, (cl_ulong)g->params[p->param_index].offset};
    }
    return (loc){ex->acts, (cl_ulong)n->offset};
}

/* a node's auxiliary block; its planned offset is checked (>= 0) by the
 * callers that need one */
static loc aux_of(const lc_exec *ex, int id) { return (loc){ex->acts, (cl_ulong)ex->g->nodes[id].aux_offset}; }
static loc shift(loc l, int64_t floats) { return (loc){l.buf, (cl_ulong)((int64_t)l.off + floats)}; }

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
    x->rng_arg = -1;
    x->rng_node = -1;
    return x;
}

/* The programs with fixed-size work-groups: their size macro and kernels. */
static const char *const norm_wg_kernels[] = {"lc_bn_stats",    "lc_bn_bwd_sums", "lc_bn_dgamma",
                                              "lc_channel_sum", "lc_gpu_bn_part", "lc_gpu_sums_part"};
static const char *const loss_wg_kernels[] = {"lc_loss_stats"};

static lc_status program(lc_exec *ex, int p, cl_program *out)
{
    if (!ex->prog[p]) {
        if (p == P_NORM)
            LC_TRY(lc_rt_program_wg(ex->rt, prog_names[p], "", "LC_RED_WG", ex->gpu ? RED_WG_GPU : RED_WG, norm_wg_kernels,
                                    (int)LC_COUNTOF(norm_wg_kernels), &ex->prog[p], &ex->wg[p]));
        else if (p == P_LOSS)
            LC_TRY(lc_rt_program_wg(ex->rt, prog_names[p], "", "LC_STATS_WG", RED_WG, loss_wg_kernels,
                                    (int)LC_COUNTOF(loss_wg_kernels), &ex->prog[p], &ex->wg[p]));
        else
            LC_TRY(lc_rt_program(ex->rt, prog_names[p], "", &ex->prog[p]));
    }
    *out = ex->prog[p];
    return LC_OK;
}

/* The work-group size program p's fixed-size kernels were built with. */
static lc_status fixed_wg(lc_exec *ex, int p, size_t *wg)
{
    cl_program unused;
    LC_TRY(program(ex, p, &unused));
    *wg = ex->wg[p];
    return LC_OK;
}

static lc_status kern(lc_exec *ex, llist *L, int node, int prog, const char *name, const lc_arg *args, int nargs,
                      int dims, size_t g0, size_t g1, size_t l0)
{
    cl_program p;
    LC_TRY(program(ex, prog, &p));
    launch *x = push(L);
    if (!x) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    x->kind = L_KERNEL;
    x->node = node;
    x->kname = name;
    LC_TRY(lc_rt_kernel(ex->rt, p, name, &x->k));
    LC_TRY(lc_rt_set_args(x->k, args, nargs, name));
    if (nargs > ARG_MAX) return LC_ERR(LC_ERR_INVALID, "kernel %s: %d arguments", name, nargs);
    size_t at = 0;
    for (int i = 0; i < nargs; i++) {
        if (at + args[i].size > ARG_BYTES) return LC_ERR(LC_ERR_INVALID, "kernel %s: arguments too large", name);
        memcpy(x->arg_bytes + at, args[i].ptr, args[i].size);
        x->arg_size[i] = (uint16_t)args[i].size;
        x->arg_at[i] = (uint16_t)at;
        at += args[i].size;
    }
    x->nargs = nargs;
    x->dims = dims;
    x->global[0] = g0 ? g0 : 1;
    x->global[1] = g1 ? g1 : 1;
    x->global[2] = 1;
    if (l0) {
        x->has_local = true;
        x->local[0] = l0;
        x->local[1] = x->local[2] = 1;
    }
    return LC_OK;
}

/* The smallest power of two >= v (v >= 1), at most cap (a power of two). */
static size_t pow2_upto(size_t v, size_t cap)
{
    size_t p = 1;
    while (p < v && p < cap) p *= 2;
    return p;
}

/* A GPU-style launch on a range of up to three dimensions (g1, g2 may be
 * 1), with work-groups of up to ex->elt_wg work-items (and the kernel's
 * own limit) shaped to the range: dimension 0 (along memory) first, so a
 * group covers neighbouring floats even when a plane is small. */
static lc_status kern_nd(lc_exec *ex, llist *L, int node, int prog, const char *name, const lc_arg *args, int nargs,
                         size_t g0, size_t g1, size_t g2)
{
    LC_TRY(kern(ex, L, node, prog, name, args, nargs, 1, g0, 0, 0));
    launch *x = &L->l[L->count - 1];
    size_t cap = ex->elt_wg ? ex->elt_wg : 1, kw = 0;
    if (lc_rt_kernel_wg(ex->rt, x->k, &kw) == LC_OK && kw > 0)
        while (cap > kw) cap /= 2;
    x->dims = g2 > 1 ? 3 : g1 > 1 ? 2 : 1;
    x->global[0] = g0 ? g0 : 1;
    x->global[1] = g1 ? g1 : 1;
    x->global[2] = g2 ? g2 : 1;
    x->has_local = true;
    x->local[0] = pow2_upto(x->global[0], cap);
    x->local[1] = pow2_upto(x->global[1], cap / x->local[0]);
    x->local[2] = 1;
    return LC_OK;
}

/* A GEMM operand at l spanning rows x cols with leading dimension ld: the
 * buffer and offset to hand lc_rt_sgemm.  CLBlast indexes with 32-bit ints,
 * so an operand that reaches past element 2^31 - 1 of its arena (or, for
 * tests, starts at or past opts.gemm_rebase_at) is rebased on a sub-buffer
 * that starts at an aligned origin at or before it; sub-buffers are made
 * once per (arena, origin) and owned by the executor.  An operand that
 * spans more than CLBlast can index by itself is refused. */
static lc_status gemm_operand(lc_exec *ex, int node, loc l, uint64_t ext, cl_mem *buf, size_t *off, int64_t *base)
{
    *buf = l.buf;
    *off = (size_t)l.off;
    *base = 0;
    bool need = l.off + ext > LC_RT_CLBLAST_MAX_ELEMS ||
                (ex->opts.gemm_rebase_at > 0 && l.off >= (uint64_t)ex->opts.gemm_rebase_at);
    if (!need) return LC_OK;
    uint64_t start = lc_rt_sub_buffer_start(ex->rt, l.off * 4) / 4, rel = l.off - start;
    if (rel + ext > LC_RT_CLBLAST_MAX_ELEMS)
        return LC_ERR(LC_ERR_UNSUPPORTED,
                      "node '%s': a GEMM operand spans %llu elements, more than the 2^31 - 1 CLBlast can index "
                      "(use a smaller batch)",
                      ex->g->nodes[node].name, (unsigned long long)(rel + ext));
    int i = 0;
    while (i < ex->n_subs && !(ex->sub_parent[i] == l.buf && ex->sub_origin[i] == (int64_t)start)) i++;
    if (i == ex->n_subs) {
        if (ex->n_subs == ex->cap_subs) {
            int nc = ex->cap_subs ? 2 * ex->cap_subs : 8;
            cl_mem *a = realloc(ex->subs, (size_t)nc * sizeof *a);
            if (a) ex->subs = a;
            int64_t *o = a ? realloc(ex->sub_origin, (size_t)nc * sizeof *o) : NULL;
            if (o) ex->sub_origin = o;
            cl_mem *pa = o ? realloc(ex->sub_parent, (size_t)nc * sizeof *pa) : NULL;
            if (!pa) return LC_ERR(LC_ERR_NOMEM, "out of memory");
            ex->sub_parent = pa;
            ex->cap_subs = nc;
        }
        cl_mem sub = NULL;
        if (l.buf) { /* plan-only executors have no arenas to cut */
            uint64_t shift_bytes = 0;
            LC_TRY(lc_rt_sub_buffer(ex->rt, l.buf, l.off * 4, &sub, &shift_bytes));
            if (shift_bytes != rel * 4) {
                clReleaseMemObject(sub);
                return LC_ERR(LC_ERR_DEVICE, "node '%s': sub-buffer origin mismatch", ex->g->nodes[node].name);
            }
        }
        ex->subs[i] = sub;
        ex->sub_origin[i] = (int64_t)start;
        ex->sub_parent[i] = l.buf;
        ex->n_subs++;
    }
    *buf = ex->subs[i];
    *off = (size_t)rel;
    *base = (int64_t)start;
    return LC_OK;
}

/* Elements an operand of batch matrices rows x cols (leading dimension
 * ld, stride between matrices) spans from its first one. */
static uint64_t operand_extent(size_t rows, size_t cols, size_t ld, size_t stride, size_t batch)
{
    if (!rows || !cols || !batch) return 0;
    return (uint64_t)(batch - 1) * stride + (uint64_t)(rows - 1) * ld + cols;
}

/* A GEMM launch; batch > 1: strided-batched (strides sa, sb, sc). */
static lc_status gemm_sb(lc_exec *ex, llist *L, int node, bool ta, bool tb, size_t m, size_t n, size_t k, loc a,
                         size_t lda, size_t sa, loc b, size_t ldb, size_t sb, float beta, loc c, size_t ldc, size_t sc,
                         size_t batch)
{
    cl_mem ab, bb, cb;
    size_t ao, bo, co;
    int64_t base[3];
    LC_TRY(gemm_operand(ex, node, a, operand_extent(ta ? k : m, ta ? m : k, lda, sa, batch), &ab, &ao, &base[0]));
    LC_TRY(gemm_operand(ex, node, b, operand_extent(tb ? n : k, tb ? k : n, ldb, sb, batch), &bb, &bo, &base[1]));
    LC_TRY(gemm_operand(ex, node, c, operand_extent(m, n, ldc, sc, batch), &cb, &co, &base[2]));
    launch *x = push(L);
    if (!x) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    *x = (launch){.kind = L_GEMM, .node = node, .rng_arg = -1, .rng_node = -1, .ta = ta, .tb = tb, .m = m, .n = n,
                  .kk = k, .alpha = 1.0f, .beta = beta, .a = ab, .ao = ao, .lda = lda, .b = bb, .bo = bo, .ldb = ldb,
                  .c = cb, .co = co, .ldc = ldc, .base = {base[0], base[1], base[2]}, .batch = batch, .sa = sa,
                  .sb = sb, .sc = sc};
    return LC_OK;
}

static lc_status gemm_b(lc_exec *ex, llist *L, int node, bool ta, bool tb, size_t m, size_t n, size_t k, loc a,
                        size_t lda, loc b, size_t ldb, float beta, loc c, size_t ldc)
{
    return gemm_sb(ex, L, node, ta, tb, m, n, k, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}

static lc_status gemm(lc_exec *ex, llist *L, int node, bool ta, bool tb, size_t m, size_t n, size_t k, loc a,
                      size_t lda, loc b, size_t ldb, loc c, size_t ldc)
{
    return gemm_b(ex, L, node, ta, tb, m, n, k, a, lda, b, ldb, 0.0f, c, ldc);
}

static int64_t numel(const lc_graph *g, int id) { return lc_shape_numel(&g->nodes[id].shape); }

/* channels and spatial size of a [c, h, w] or flat [c] shape */
static void chan_hw(const lc_shape *s, int *c, int *hw)
{
    *c = s->dims[0];
    *hw = s->rank == 3 ? s->dims[1] * s->dims[2] : 1;
}

/* Sizes of a conv2d node (forward node `c`). */
/* conv_dims: exec_host.h */

static conv_dims conv_dims_of(const lc_graph *g, const lc_node *c)
{
    const lc_node *x = &g->nodes[c->inputs[0]];
    conv_dims d = {.cin = x->shape.dims[0], .h = x->shape.dims[1], .w = x->shape.dims[2], .cout = c->units,
                   .oh = c->shape.dims[1], .ow = c->shape.dims[2], .kh = c->kh, .kw = c->kw, .sh = c->sh,
                   .sw = c->sw, .pt = c->pad_t, .pl = c->pad_l};
    d.ohw = d.oh * d.ow;
    d.K = d.cin * d.kh * d.kw;
    return d;
}

static lc_status im2col(lc_exec *ex, llist *L, int id, loc col, loc x, int nc, const conv_dims *d)
{
    lc_arg a[] = {LC_ARG(col.buf), LC_ARG(col.off), LC_ARG(x.buf), LC_ARG(x.off), LC_ARG(nc), LC_ARG(d->cin),
                  LC_ARG(d->h), LC_ARG(d->w), LC_ARG(d->kh), LC_ARG(d->kw), LC_ARG(d->sh), LC_ARG(d->sw),
                  LC_ARG(d->pt), LC_ARG(d->pl), LC_ARG(d->oh), LC_ARG(d->ow)};
    if (ex->gpu)
        return kern_nd(ex, L, id, P_CONV, "lc_gpu_im2col", a, 16, (size_t)d->ohw, (size_t)nc, (size_t)d->cin);
    return kern(ex, L, id, P_CONV, "lc_im2col", a, 16, 2, (size_t)nc * (size_t)d->oh, (size_t)d->K, 0);
}

static lc_status col2im(lc_exec *ex, llist *L, int id, loc dx, loc col, int nc, const conv_dims *d)
{
    lc_arg a[] = {LC_ARG(dx.buf), LC_ARG(dx.off), LC_ARG(col.buf), LC_ARG(col.off), LC_ARG(nc), LC_ARG(d->cin),
                  LC_ARG(d->h), LC_ARG(d->w), LC_ARG(d->kh), LC_ARG(d->kw), LC_ARG(d->sh), LC_ARG(d->sw),
                  LC_ARG(d->pt), LC_ARG(d->pl), LC_ARG(d->oh), LC_ARG(d->ow)};
    if (ex->gpu)
        return kern_nd(ex, L, id, P_CONV, "lc_gpu_col2im", a, 16, (size_t)d->h * (size_t)d->w, (size_t)nc,
                       (size_t)d->cin);
    return kern(ex, L, id, P_CONV, "lc_col2im", a, 16, 1, (size_t)nc * (size_t)d->cin * (size_t)d->h, 0, 0);
}

/* t[c, nc*hw] <- y[nc, c, hw] */
static lc_status to_cn(lc_exec *ex, llist *L, int id, loc t, loc y, int nc, int c, int hw)
{
    lc_arg a[] = {LC_ARG(t.buf), LC_ARG(t.off), LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(nc), LC_ARG(c), LC_ARG(hw)};
    if (ex->gpu) return kern_nd(ex, L, id, P_CONV, "lc_gpu_nc_to_cn", a, 7, (size_t)hw, (size_t)nc, (size_t)c);
    return kern(ex, L, id, P_CONV, "lc_nc_to_cn", a, 7, 1, (size_t)nc * (size_t)c, 0, 0);
}

/* y[nc, c, hw] <- t[c, nc*hw] (+ b) (ReLU when relu) */
static lc_status to_nc(lc_exec *ex, llist *L, int id, loc y, loc t, loc b, int has_bias, int relu, int nc, int c,
                       int hw)
{
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off),   LC_ARG(t.buf), LC_ARG(t.off), LC_ARG(b.buf), LC_ARG(b.off),
                  LC_ARG(has_bias), LC_ARG(relu), LC_ARG(nc),    LC_ARG(c),     LC_ARG(hw)};
    if (ex->gpu) return kern_nd(ex, L, id, P_CONV, "lc_gpu_cn_to_nc", a, 11, (size_t)hw, (size_t)c, (size_t)nc);
    return kern(ex, L, id, P_CONV, "lc_cn_to_nc", a, 11, 1, (size_t)nc * (size_t)c, 0, 0);
}

/* y[nb, c, hw] += b (when has_bias), then ReLU (when relu), in place */
static lc_status bias_relu(lc_exec *ex, llist *L, int id, loc y, loc b, int has_bias, int relu, int nb, int c, int hw)
{
    if (!has_bias && !relu) return LC_OK;
    if (ex->gpu) {
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(b.buf), LC_ARG(b.off), LC_ARG(has_bias),
                      LC_ARG(relu),  LC_ARG(nb),    LC_ARG(c),     LC_ARG(hw)};
        return kern_nd(ex, L, id, P_CONV, "lc_gpu_channel_bias", a, 9, (size_t)hw, (size_t)c, (size_t)nb);
    }
    int planes = nb * c;
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(b.buf), LC_ARG(b.off), LC_ARG(has_bias),
                  LC_ARG(relu),  LC_ARG(c),     LC_ARG(hw),    LC_ARG(planes)};
    return kern(ex, L, id, P_CONV, "lc_channel_bias", a, 9, 1, (size_t)planes, 0, 0);
}

/* ReLU of n floats at y, in place (a fused ReLU after a GEMM or a host conv) */
static lc_status relu_inplace(lc_exec *ex, llist *L, int id, loc y, cl_ulong n)
{
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(n)};
    if (ex->gpu) return kern_nd(ex, L, id, P_ELT, "lc_gpu_relu_fwd", a, 5, ((size_t)n + 3) / 4, 1, 1);
    return kern(ex, L, id, P_ELT, "lc_relu_fwd", a, 5, 1, ((size_t)n + 15) / 16, 0, 0);
}

/* The device conv schedule of node id (GPU style; LC_EXEC_CONV_GEMM in
 * CPU style, where only that one exists). */
static int dconv_of(const lc_exec *ex, int id)
{
    if (!ex->gpu) return LC_EXEC_CONV_GEMM;
    int v = ex->dconv ? ex->dconv[id] : 0;
    return v ? v : LC_EXEC_CONV_GEMM;
}

static lc_status lower_conv(lc_exec *ex, llist *L, int id, int nb)
{
    lc_graph *g = ex->g;
    lc_node *nd = &g->nodes[id];
    const lc_node *c = nd->op == LC_OP_CONV2D ? nd : &g->nodes[nd->fwd];
    conv_dims d = conv_dims_of(g, c);
    loc y = where(ex, id);
    int hw = d.h * d.w;
    bool fwd = nd->op == LC_OP_CONV2D;
    int relu = fwd && nd->act_relu, has_bias = fwd && c->bias;
    loc b = has_bias ? where(ex, c->inputs[2]) : (loc){ex->params, 0};
    if (ex->host_conv && ex->host_conv[id]) {
        launch *x = push(L);
        if (!x) return LC_ERR(LC_ERR_NOMEM, "out of memory");
        x->kind = L_HOST_CONV;
        x->node = id;
        x->nb = nb;
        /* the host schedules add the bias; a fused ReLU follows */
        if (relu) LC_TRY(relu_inplace(ex, L, id, y, (cl_ulong)nb * (cl_ulong)d.cout * (cl_ulong)d.ohw));
        return LC_OK;
    }
    int sched = dconv_of(ex, id);
    bool pw = lc_graph_conv_pointwise(g, id);
    if (pw && ex->gpu && nd->op != LC_OP_CONV2D_DW) {
        /* 1x1 stride 1: x_n is already [cin, hw]; one strided-batched GEMM
         * over the examples */
        size_t in = (size_t)d.cin * hw, out = (size_t)d.cout * hw;
        if (fwd) /* y_n = W x_n */
            LC_TRY(gemm_sb(ex, L, id, false, false, (size_t)d.cout, (size_t)hw, (size_t)d.cin, where(ex, c->inputs[1]),
                           (size_t)d.cin, 0, where(ex, nd->inputs[0]), (size_t)hw, in, 0.0f, y, (size_t)hw, out,
                           (size_t)nb));
        else /* dx_n = W^T dy_n */
            LC_TRY(gemm_sb(ex, L, id, true, false, (size_t)d.cin, (size_t)hw, (size_t)d.cout, where(ex, nd->inputs[1]),
                           (size_t)d.cin, 0, where(ex, nd->inputs[0]), (size_t)hw, out, 0.0f, y, (size_t)hw, in,
                           (size_t)nb));
        return fwd ? bias_relu(ex, L, id, y, b, has_bias, relu, nb, d.cout, hw) : LC_OK;
    }
    if (pw && !ex->gpu) { /* 1x1 stride 1: x_n is already [cin, hw]; a GEMM per example */
        for (int n = 0; n < nb; n++) {
            if (fwd) { /* y_n = W x_n */
                LC_TRY(gemm(ex, L, id, false, false, (size_t)d.cout, (size_t)hw, (size_t)d.cin, where(ex, c->inputs[1]),
                            (size_t)d.cin, shift(where(ex, nd->inputs[0]), (int64_t)n * d.cin * hw), (size_t)hw,
                            shift(y, (int64_t)n * d.cout * hw), (size_t)hw));
            } else if (nd->op == LC_OP_CONV2D_DX) { /* dx_n = W^T dy_n */
                LC_TRY(gemm(ex, L, id, true, false, (size_t)d.cin, (size_t)hw, (size_t)d.cout, where(ex, nd->inputs[1]),
                            (size_t)d.cin, shift(where(ex, nd->inputs[0]), (int64_t)n * d.cout * hw), (size_t)hw,
                            shift(y, (int64_t)n * d.cin * hw), (size_t)hw));
            } else { /* dW (+)= dy_n x_n^T */
                LC_TRY(gemm_b(ex, L, id, false, true, (size_t)d.cout, (size_t)d.cin, (size_t)hw,
                              shift(where(ex, nd->inputs[0]), (int64_t)n * d.cout * hw), (size_t)hw,
                              shift(where(ex, nd->inputs[1]), (int64_t)n * d.cin * hw), (size_t)hw,
                              n ? 1.0f : 0.0f, y, (size_t)d.cin));
            }
        }
        return fwd ? bias_relu(ex, L, id, y, b, has_bias, relu, nb, d.cout, hw) : LC_OK;
    }
    /* im2col + GEMM over chunks (GPU style: the pointwise weight gradient
     * too, its "im2col" a layout change) */
    int chunk = lc_graph_conv_chunk(g, id, nb);
    if (nd->aux_offset < 0) return LC_ERR(LC_ERR_INVALID, "node '%s': conv workspace is not planned", nd->name);
    loc ws = aux_of(ex, id);
    loc col = ws, t = shift(ws, (int64_t)d.K * chunk * d.ohw);
    int slices = nd->op == LC_OP_CONV2D_DW && sched == LC_EXEC_CONV_BATCHED ? lc_graph_conv_dw_slices(g, id, nb) : 1;
    loc part = shift(ws, (int64_t)chunk * lc_graph_conv_ws_per_example(g, id)); /* split-K partial sums */
    for (int n0 = 0; n0 < nb; n0 += chunk) {
        int nc = nb - n0 < chunk ? nb - n0 : chunk;
        size_t cols = (size_t)nc * (size_t)d.ohw, ohw = (size_t)d.ohw;
        if (fwd) {
            loc x = shift(where(ex, nd->inputs[0]), (int64_t)n0 * d.cin * hw);
            loc yy = shift(y, (int64_t)n0 * d.cout * d.ohw);
            LC_TRY(im2col(ex, L, id, col, x, nc, &d));
            if (sched == LC_EXEC_CONV_BATCHED) { /* y_n = W col_n, straight into NCHW */
                LC_TRY(gemm_sb(ex, L, id, false, false, (size_t)d.cout, ohw, (size_t)d.K, where(ex, nd->inputs[1]),
                               (size_t)d.K, 0, col, cols, ohw, 0.0f, yy, ohw, (size_t)d.cout * ohw, (size_t)nc));
                LC_TRY(bias_relu(ex, L, id, yy, b, has_bias, relu, nc, d.cout, d.ohw));
            } else {
                LC_TRY(gemm(ex, L, id, false, false, (size_t)d.cout, cols, (size_t)d.K, where(ex, nd->inputs[1]),
                            (size_t)d.K, col, cols, t, cols));
                LC_TRY(to_nc(ex, L, id, yy, t, b, has_bias, relu, nc, d.cout, d.ohw));
            }
        } else if (nd->op == LC_OP_CONV2D_DX) {
            loc dy = shift(where(ex, nd->inputs[0]), (int64_t)n0 * d.cout * d.ohw);
            if (sched == LC_EXEC_CONV_BATCHED) { /* dcol_n = W^T dy_n, straight from NCHW */
                LC_TRY(gemm_sb(ex, L, id, true, false, (size_t)d.K, ohw, (size_t)d.cout, where(ex, nd->inputs[1]),
                               (size_t)d.K, 0, dy, ohw, (size_t)d.cout * ohw, 0.0f, col, cols, ohw, (size_t)nc));
            } else {
                LC_TRY(to_cn(ex, L, id, t, dy, nc, d.cout, d.ohw));
                LC_TRY(gemm(ex, L, id, true, false, (size_t)d.K, cols, (size_t)d.cout, where(ex, nd->inputs[1]),
                            (size_t)d.K, t, cols, col, cols));
            }
            LC_TRY(col2im(ex, L, id, shift(y, (int64_t)n0 * d.cin * hw), col, nc, &d));
        } else { /* CONV2D_DW */
            LC_TRY(to_cn(ex, L, id, t, shift(where(ex, nd->inputs[0]), (int64_t)n0 * d.cout * d.ohw), nc, d.cout,
                         d.ohw));
            LC_TRY(im2col(ex, L, id, col, shift(where(ex, nd->inputs[1]), (int64_t)n0 * d.cin * hw), nc, &d));
            int s = slices;
            size_t per_slice = (size_t)(g->dw_split_cols > 0 ? g->dw_split_cols : LC_DW_SPLIT_COLS);
            if ((size_t)s * per_slice > cols) s = (int)(cols / per_slice); /* a smaller last chunk */
            if (s > 1) {
                /* split-K: slice j = t[:, j*ks : (j+1)*ks] col[:, j*ks : (j+1)*ks]^T,
                 * the columns left over into slice s; then the slices added in order */
                size_t ks = cols / (size_t)s, rest = cols - ks * (size_t)s, wsz = (size_t)d.cout * (size_t)d.K;
                LC_TRY(gemm_sb(ex, L, id, false, true, (size_t)d.cout, (size_t)d.K, ks, t, cols, ks, col, cols, ks,
                               0.0f, part, (size_t)d.K, wsz, (size_t)s));
                if (rest)
                    LC_TRY(gemm(ex, L, id, false, true, (size_t)d.cout, (size_t)d.K, rest, shift(t, (int64_t)(ks * s)),
                                cols, shift(col, (int64_t)(ks * s)), cols, shift(part, (int64_t)(wsz * s)),
                                (size_t)d.K));
                cl_ulong count = wsz;
                int nsl = s + (rest > 0), acc = n0 > 0;
                lc_arg a[] = {LC_ARG(y.buf),  LC_ARG(y.off), LC_ARG(part.buf), LC_ARG(part.off),
                              LC_ARG(count), LC_ARG(nsl),   LC_ARG(acc)};
                LC_TRY(kern_nd(ex, L, id, P_CONV, "lc_gpu_sum_slices", a, 7, wsz, 1, 1));
            } else {
                LC_TRY(gemm_b(ex, L, id, false, true, (size_t)d.cout, (size_t)d.K, cols, t, cols, col, cols,
                              n0 ? 1.0f : 0.0f, y, (size_t)d.K));
            }
        }
    }
    return LC_OK;
}

/* dst[0..count) = src[skip..skip + count) (norm.cl) */
static lc_status copy_floats(lc_exec *ex, llist *L, int id, loc dst, loc src, int skip, int count)
{
    lc_arg a[] = {LC_ARG(dst.buf), LC_ARG(dst.off), LC_ARG(src.buf), LC_ARG(src.off), LC_ARG(skip), LC_ARG(count)};
    return kern(ex, L, id, P_NORM, "lc_copy_floats", a, 6, 1, (size_t)count, 0, 0);
}

/* A batchnorm's gamma or beta gradient (node id) in training, when the
 * batchnorm's input gradient came first: its sums (sum dy, sum dy * xhat
 * per channel, kept by the planner) are these gradients. */
static bool bn_sums_ready(const lc_exec *ex, int id, bool tr)
{
    const lc_graph *g = ex->g;
    const lc_node *nd = &g->nodes[id];
    if (!tr || nd->fwd < 0 || g->nodes[nd->fwd].op != LC_OP_BATCHNORM) return false;
    int dx = lc_graph_bn_dx_of(g, nd->fwd);
    return dx >= 0 && dx < id && g->nodes[dx].aux_offset >= 0 && g->nodes[dx].aux_last >= id;
}

/* Work-groups per channel of a GPU-style per-channel reduction over nb
 * planes of hw with groups of red work-items: enough for every work-item to
 * read about 64 values, at most LC_RED_PARTS and one per plane. */
static int red_parts(int nb, int hw, size_t red)
{
    int64_t want = ((int64_t)nb * hw + (int64_t)red * 64 - 1) / ((int64_t)red * 64);
    int64_t lim = nb < LC_RED_PARTS ? nb : LC_RED_PARTS;
    return (int)(want < 1 ? 1 : want > lim ? lim : want);
}

/* GPU style: per-channel sums of dy (and of dy * (x - mean), with_x) over
 * nb examples in parts work-groups per channel (partial results at part +
 * skip floats), then combined in order into out (lc_gpu_sums_finish's
 * `what`) */
static lc_status gpu_sums(lc_exec *ex, llist *L, int id, loc out, loc part, int skip, loc dy, loc x, loc st, int with_x,
                          int what, int nb, int c, int hw)
{
    size_t red;
    LC_TRY(fixed_wg(ex, P_NORM, &red));
    int parts = red_parts(nb, hw, red);
    lc_arg a[] = {LC_ARG(part.buf), LC_ARG(part.off), LC_ARG(skip),   LC_ARG(dy.buf), LC_ARG(dy.off),
                  LC_ARG(x.buf),    LC_ARG(x.off),    LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(with_x),
                  LC_ARG(nb),       LC_ARG(c),        LC_ARG(hw),     LC_ARG(parts)};
    LC_TRY(kern(ex, L, id, P_NORM, "lc_gpu_sums_part", a, 14, 2, red * (size_t)parts, (size_t)c, red));
    lc_arg b[] = {LC_ARG(out.buf), LC_ARG(out.off), LC_ARG(part.buf), LC_ARG(part.off), LC_ARG(skip),
                  LC_ARG(st.buf),  LC_ARG(st.off),  LC_ARG(what),     LC_ARG(c),        LC_ARG(parts)};
    return kern(ex, L, id, P_NORM, "lc_gpu_sums_finish", b, 10, 1, (size_t)c, 0, 0);
}

/* The lowering: IR node -> launches, for batch size nb and a mode. */
static lc_status lower_node(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    lc_graph *g = ex->g;
    lc_node *nd = &g->nodes[id];
    int in0 = nd->n_inputs > 0 ? nd->inputs[0] : -1, in1 = nd->n_inputs > 1 ? nd->inputs[1] : -1;
    const lc_node *f = nd->fwd >= 0 ? &g->nodes[nd->fwd] : nd; /* attributes */
    loc y = where(ex, id);
    cl_ulong total = (cl_ulong)nb * (cl_ulong)numel(g, id); /* ulong n of the elementwise kernels */
    switch (nd->op) {
    case LC_OP_INPUT:
    case LC_OP_LABELS:
    case LC_OP_PARAM:
    case LC_OP_FLATTEN:
    case LC_OP_RESHAPE:
        return LC_OK;
    case LC_OP_DENSE: {
        int64_t in = numel(g, in0);
        int out = nd->units;
        /* y[n,out] = x[n,in] W[out,in]^T */
        LC_TRY(gemm(ex, L, id, false, true, (size_t)nb, (size_t)out, (size_t)in, where(ex, in0), (size_t)in,
                    where(ex, in1), (size_t)in, y, (size_t)out));
        int relu = nd->act_relu;
        if (nd->bias) { /* + b, and a fused ReLU */
            loc b = where(ex, nd->inputs[2]);
            lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(b.buf), LC_ARG(b.off), LC_ARG(nb), LC_ARG(out), LC_ARG(relu)};
            if (ex->gpu) return kern_nd(ex, L, id, P_ELT, "lc_bias_act", a, 7, (size_t)out, (size_t)nb, 1);
            return kern(ex, L, id, P_ELT, "lc_bias_act", a, 7, 2, (size_t)out, (size_t)nb, 0);
        }
        return relu ? relu_inplace(ex, L, id, y, total) : LC_OK;
    }
    case LC_OP_FUSED_RELU: /* applied by its input's producer */
        return LC_OK;
    case LC_OP_MASK:
        return LC_OK;
    case LC_OP_GATE: {
        loc x = where(ex, in0), m = where(ex, in1);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(x.buf), LC_ARG(x.off), LC_ARG(m.buf), LC_ARG(m.off),
                      LC_ARG(total)};
        return kern(ex, L, id, P_ELT, "lc_mul", a, 7, 1, (size_t)total, 0, 0);
    }
    case LC_OP_RELU: {
        loc x = where(ex, in0);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(x.buf), LC_ARG(x.off), LC_ARG(total)};
        if (ex->gpu) return kern_nd(ex, L, id, P_ELT, "lc_gpu_relu_fwd", a, 5, ((size_t)total + 3) / 4, 1, 1);
        return kern(ex, L, id, P_ELT, "lc_relu_fwd", a, 5, 1, ((size_t)total + 15) / 16, 0, 0);
    }
    case LC_OP_ADD:
    case LC_OP_ACCUM: {
        loc a0 = where(ex, in0), a1 = where(ex, in1);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(a1.buf), LC_ARG(a1.off),
                      LC_ARG(total)};
        return kern(ex, L, id, P_ELT, "lc_add", a, 7, 1, (size_t)total, 0, 0);
    }
    case LC_OP_SOFTMAX_CE: {
        loc z = where(ex, in0), lab = where(ex, in1);
        int classes = (int)numel(g, in0);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(ex->correct), LC_ARG(z.buf), LC_ARG(z.off),
                      LC_ARG(lab.buf), LC_ARG(lab.off), LC_ARG(nb), LC_ARG(classes)};
        LC_TRY(kern(ex, L, id, P_LOSS, "lc_softmax_ce_fwd", a, 9, 1, (size_t)nb, 0, 0));
        lc_arg s[] = {LC_ARG(ex->acc), LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(ex->correct), LC_ARG(nb)};
        size_t wg;
        LC_TRY(fixed_wg(ex, P_LOSS, &wg));
        return kern(ex, L, id, P_LOSS, "lc_loss_stats", s, 5, 1, wg, 0, wg);
    }
    case LC_OP_SOFTMAX_CE_DX: {
        loc z = where(ex, in0), lab = where(ex, in1);
        int classes = (int)numel(g, in0);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(z.buf), LC_ARG(z.off), LC_ARG(lab.buf), LC_ARG(lab.off),
                      LC_ARG(nb), LC_ARG(classes)};
        return kern(ex, L, id, P_LOSS, "lc_softmax_ce_bwd", a, 8, 1, (size_t)nb, 0, 0);
    }
    case LC_OP_DENSE_DX: {
        /* dx[n,in] = dy[n,out] W[out,in] */
        int64_t in = numel(g, id), out = numel(g, in0);
        return gemm(ex, L, id, false, false, (size_t)nb, (size_t)in, (size_t)out, where(ex, in0), (size_t)out,
                    where(ex, in1), (size_t)in, y, (size_t)in);
    }
    case LC_OP_DENSE_DW: {
        /* dW[out,in] = dy[n,out]^T x[n,in] */
        int64_t out = numel(g, in0), in = numel(g, in1);
        return gemm(ex, L, id, true, false, (size_t)out, (size_t)in, (size_t)nb, where(ex, in0), (size_t)out,
                    where(ex, in1), (size_t)in, y, (size_t)in);
    }
    case LC_OP_BIAS_DB: {
        loc dy = where(ex, in0);
        int cols = (int)numel(g, in0);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(nb), LC_ARG(cols)};
        return kern(ex, L, id, P_ELT, "lc_bias_grad", a, 6, 1, (size_t)cols, 0, 0);
    }
    case LC_OP_RELU_DX: {
        loc dy = where(ex, in0), yy = where(ex, in1);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(yy.buf), LC_ARG(yy.off),
                      LC_ARG(total)};
        if (ex->gpu) return kern_nd(ex, L, id, P_ELT, "lc_gpu_relu_bwd", a, 7, ((size_t)total + 3) / 4, 1, 1);
        return kern(ex, L, id, P_ELT, "lc_relu_bwd", a, 7, 1, ((size_t)total + 15) / 16, 0, 0);
    }
    case LC_OP_CONV2D:
    case LC_OP_CONV2D_DX:
    case LC_OP_CONV2D_DW:
        return lower_conv(ex, L, id, nb);
    case LC_OP_CHANNEL_DB: {
        size_t red;
        LC_TRY(fixed_wg(ex, P_NORM, &red));
        loc dy = where(ex, in0);
        int c, hw;
        chan_hw(&g->nodes[in0].shape, &c, &hw);
        if (bn_sums_ready(ex, id, tr)) /* a batchnorm's beta: the input gradient's sum dy */
            return copy_floats(ex, L, id, y, aux_of(ex, lc_graph_bn_dx_of(g, nd->fwd)), 0, c);
        if (ex->gpu) return gpu_sums(ex, L, id, y, aux_of(ex, id), 0, dy, dy, dy, 0, 0, nb, c, hw);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(nb), LC_ARG(c), LC_ARG(hw)};
        return kern(ex, L, id, P_NORM, "lc_channel_sum", a, 7, 1, (size_t)c * red, 0, red);
    }
    case LC_OP_BATCHNORM: {
        size_t red;
        LC_TRY(fixed_wg(ex, P_NORM, &red));
        int c, hw;
        chan_hw(&nd->shape, &c, &hw);
        loc x = where(ex, in0), st = aux_of(ex, id), rm = where(ex, nd->inputs[1]), rv = where(ex, nd->inputs[2]);
        loc gm = nd->affine ? where(ex, nd->inputs[3]) : (loc){ex->params, 0};
        loc bt = nd->affine ? where(ex, nd->inputs[4]) : (loc){ex->params, 0};
        float eps = (float)nd->eps, mom = (float)nd->momentum;
        if (tr && ex->gpu) { /* partial means and squared deviations, then combined */
            int parts = red_parts(nb, hw, red), skip = 2 * c; /* after the statistics */
            lc_arg a[] = {LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(skip), LC_ARG(x.buf), LC_ARG(x.off),
                          LC_ARG(nb),     LC_ARG(c),      LC_ARG(hw),   LC_ARG(parts)};
            LC_TRY(kern(ex, L, id, P_NORM, "lc_gpu_bn_part", a, 9, 2, red * (size_t)parts, (size_t)c, red));
            lc_arg b[] = {LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(rm.buf), LC_ARG(rm.off), LC_ARG(rv.buf),
                          LC_ARG(rv.off), LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(skip), LC_ARG(nb),
                          LC_ARG(c),      LC_ARG(hw),     LC_ARG(parts),  LC_ARG(eps),  LC_ARG(mom)};
            LC_TRY(kern(ex, L, id, P_NORM, "lc_gpu_bn_finish", b, 15, 1, (size_t)c, 0, 0));
        } else if (tr) {
            lc_arg a[] = {LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(rm.buf), LC_ARG(rm.off), LC_ARG(rv.buf),
                          LC_ARG(rv.off), LC_ARG(x.buf), LC_ARG(x.off), LC_ARG(nb), LC_ARG(c), LC_ARG(hw),
                          LC_ARG(eps), LC_ARG(mom)};
            LC_TRY(kern(ex, L, id, P_NORM, "lc_bn_stats", a, 13, 1, (size_t)c * red, 0, red));
        } else {
            lc_arg a[] = {LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(rm.buf), LC_ARG(rm.off), LC_ARG(rv.buf),
                          LC_ARG(rv.off), LC_ARG(c), LC_ARG(eps)};
            LC_TRY(kern(ex, L, id, P_NORM, "lc_bn_stats_eval", a, 8, 1, (size_t)c, 0, 0));
        }
        int affine = nd->affine, relu = nd->act_relu, planes = nb * c;
        if (ex->gpu) {
            lc_arg a[] = {LC_ARG(y.buf),  LC_ARG(y.off),  LC_ARG(x.buf),  LC_ARG(x.off),  LC_ARG(st.buf),
                          LC_ARG(st.off), LC_ARG(gm.buf), LC_ARG(gm.off), LC_ARG(bt.buf), LC_ARG(bt.off),
                          LC_ARG(affine), LC_ARG(relu),   LC_ARG(nb),     LC_ARG(c),      LC_ARG(hw)};
            return kern_nd(ex, L, id, P_NORM, "lc_gpu_bn_apply", a, 15, (size_t)hw, (size_t)c, (size_t)nb);
        }
        lc_arg a[] = {LC_ARG(y.buf),  LC_ARG(y.off),  LC_ARG(x.buf),  LC_ARG(x.off),  LC_ARG(st.buf),
                      LC_ARG(st.off), LC_ARG(gm.buf), LC_ARG(gm.off), LC_ARG(bt.buf), LC_ARG(bt.off),
                      LC_ARG(affine), LC_ARG(relu),   LC_ARG(c),      LC_ARG(hw),     LC_ARG(planes)};
        return kern(ex, L, id, P_NORM, "lc_bn_apply", a, 15, 1, (size_t)planes, 0, 0);
    }
    case LC_OP_BATCHNORM_DX: {
        size_t red;
        LC_TRY(fixed_wg(ex, P_NORM, &red));
        int c, hw;
        chan_hw(&nd->shape, &c, &hw);
        loc dy = where(ex, in0), x = where(ex, in1), st = aux_of(ex, nd->fwd), sums = aux_of(ex, id);
        loc gm = f->affine ? where(ex, f->inputs[3]) : (loc){ex->params, 0};
        int affine = f->affine, planes = nb * c;
        if (tr && ex->gpu) {
            LC_TRY(gpu_sums(ex, L, id, sums, sums, 2 * c, dy, x, st, 1, 2, nb, c, hw));
        } else if (tr) {
            lc_arg a[] = {LC_ARG(sums.buf), LC_ARG(sums.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(x.buf),
                          LC_ARG(x.off), LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(nb), LC_ARG(c), LC_ARG(hw)};
            LC_TRY(kern(ex, L, id, P_NORM, "lc_bn_bwd_sums", a, 11, 1, (size_t)c * red, 0, red));
        }
        if (tr) {
            lc_arg b[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(x.buf), LC_ARG(x.off),
                          LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(sums.buf), LC_ARG(sums.off), LC_ARG(gm.buf),
                          LC_ARG(gm.off), LC_ARG(affine), LC_ARG(nb), LC_ARG(c), LC_ARG(hw)};
            if (ex->gpu)
                return kern_nd(ex, L, id, P_NORM, "lc_gpu_bn_bwd_dx", b, 16, (size_t)hw, (size_t)c, (size_t)nb);
            return kern(ex, L, id, P_NORM, "lc_bn_bwd_dx", b, 16, 1, (size_t)planes, 0, 0);
        }
        if (ex->gpu) {
            lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(st.buf), LC_ARG(st.off),
                          LC_ARG(gm.buf), LC_ARG(gm.off), LC_ARG(affine), LC_ARG(nb), LC_ARG(c), LC_ARG(hw)};
            return kern_nd(ex, L, id, P_NORM, "lc_gpu_bn_bwd_dx_eval", a, 12, (size_t)hw, (size_t)c, (size_t)nb);
        }
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(st.buf), LC_ARG(st.off),
                      LC_ARG(gm.buf), LC_ARG(gm.off), LC_ARG(affine), LC_ARG(c), LC_ARG(hw), LC_ARG(planes)};
        return kern(ex, L, id, P_NORM, "lc_bn_bwd_dx_eval", a, 12, 1, (size_t)planes, 0, 0);
    }
    case LC_OP_BATCHNORM_DGAMMA: {
        size_t red;
        LC_TRY(fixed_wg(ex, P_NORM, &red));
        int c, hw;
        chan_hw(&g->nodes[in1].shape, &c, &hw);
        loc dy = where(ex, in0), x = where(ex, in1), st = aux_of(ex, nd->fwd);
        if (bn_sums_ready(ex, id, tr)) /* the input gradient's sum dy * xhat */
            return copy_floats(ex, L, id, y, aux_of(ex, lc_graph_bn_dx_of(g, nd->fwd)), c, c);
        if (ex->gpu) return gpu_sums(ex, L, id, y, aux_of(ex, id), 0, dy, x, st, 1, 1, nb, c, hw);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(x.buf), LC_ARG(x.off),
                      LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(nb), LC_ARG(c), LC_ARG(hw)};
        return kern(ex, L, id, P_NORM, "lc_bn_dgamma", a, 11, 1, (size_t)c * red, 0, red);
    }
    case LC_OP_MAXPOOL:
    case LC_OP_AVGPOOL:
    case LC_OP_MAXPOOL_DX:
    case LC_OP_AVGPOOL_DX: {
        bool fwd = nd->op == LC_OP_MAXPOOL || nd->op == LC_OP_AVGPOOL;
        const lc_shape *xs = fwd ? &g->nodes[in0].shape : &nd->shape, *ys = &f->shape;
        int nc = nb * xs->dims[0], h = xs->dims[1], w = xs->dims[2], oh = ys->dims[1], ow = ys->dims[2];
        loc a0 = where(ex, in0);
        bool two = f->kh == 2 && f->kw == 2 && f->sh == 2 && f->sw == 2;
        if (ex->gpu) { /* one work-item per output (forward) or input (backward) element */
            size_t r0 = (size_t)(fwd ? ow : w), r1 = (size_t)(fwd ? oh : h);
            if (two && nd->op == LC_OP_MAXPOOL) { /* one work-item per 2x2 window */
                lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(nc),
                              LC_ARG(h),     LC_ARG(w),     LC_ARG(oh),     LC_ARG(ow)};
                return kern_nd(ex, L, id, P_POOL, "lc_gpu_maxpool2_fwd", a, 9, (size_t)ow, (size_t)oh, (size_t)nc);
            }
            if (two && nd->op == LC_OP_MAXPOOL_DX) {
                loc x = where(ex, in1);
                lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(x.buf),
                              LC_ARG(x.off), LC_ARG(nc),    LC_ARG(h),      LC_ARG(w),      LC_ARG(oh),
                              LC_ARG(ow)};
                return kern_nd(ex, L, id, P_POOL, "lc_gpu_maxpool2_bwd", a, 11, (size_t)ow, (size_t)oh, (size_t)nc);
            }
            if (nd->op == LC_OP_MAXPOOL_DX && f->sh == f->kh && f->sw == f->kw) { /* windows tile the input */
                loc x = where(ex, in1);
                lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(x.buf),
                              LC_ARG(x.off), LC_ARG(nc),    LC_ARG(h),      LC_ARG(w),      LC_ARG(f->kh),
                              LC_ARG(f->kw), LC_ARG(oh),    LC_ARG(ow)};
                return kern_nd(ex, L, id, P_POOL, "lc_gpu_maxpool_bwd_tiled", a, 13, (size_t)ow, (size_t)oh,
                               (size_t)nc);
            }
            if (nd->op == LC_OP_MAXPOOL_DX) {
                loc x = where(ex, in1);
                lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(x.buf),
                              LC_ARG(x.off), LC_ARG(nc),    LC_ARG(h),      LC_ARG(w),      LC_ARG(f->kh),
                              LC_ARG(f->kw), LC_ARG(f->sh), LC_ARG(f->sw),  LC_ARG(oh),     LC_ARG(ow)};
                return kern_nd(ex, L, id, P_POOL, "lc_gpu_maxpool_bwd", a, 15, r0, r1, (size_t)nc);
            }
            const char *kn = nd->op == LC_OP_MAXPOOL   ? "lc_gpu_maxpool_fwd"
                             : nd->op == LC_OP_AVGPOOL ? "lc_gpu_avgpool_fwd"
                                                       : "lc_gpu_avgpool_bwd";
            lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(nc),
                          LC_ARG(h),     LC_ARG(w),     LC_ARG(f->kh),  LC_ARG(f->kw),  LC_ARG(f->sh),
                          LC_ARG(f->sw), LC_ARG(oh),    LC_ARG(ow)};
            return kern_nd(ex, L, id, P_POOL, kn, a, 13, r0, r1, (size_t)nc);
        }
        /* 2x2 stride 2: vectorised kernels */
        if (two && nd->op == LC_OP_MAXPOOL) {
            lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(nc), LC_ARG(h),
                          LC_ARG(w), LC_ARG(oh), LC_ARG(ow)};
            return kern(ex, L, id, P_POOL, "lc_maxpool2_fwd", a, 9, 1, (size_t)nc * (size_t)oh, 0, 0);
        }
        if (two && nd->op == LC_OP_MAXPOOL_DX) {
            loc x = where(ex, in1);
            lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(x.buf), LC_ARG(x.off),
                          LC_ARG(nc), LC_ARG(h), LC_ARG(w), LC_ARG(oh), LC_ARG(ow)};
            return kern(ex, L, id, P_POOL, "lc_maxpool2_bwd", a, 11, 1, (size_t)nc * (size_t)oh, 0, 0);
        }
        if (nd->op == LC_OP_MAXPOOL_DX) {
            loc x = where(ex, in1);
            lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(x.buf), LC_ARG(x.off),
                          LC_ARG(nc), LC_ARG(h), LC_ARG(w), LC_ARG(f->kh), LC_ARG(f->kw), LC_ARG(f->sh),
                          LC_ARG(f->sw), LC_ARG(oh), LC_ARG(ow)};
            if (f->sh == f->kh && f->sw == f->kw) { /* windows tile the input */
                lc_arg b[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(x.buf),
                              LC_ARG(x.off), LC_ARG(nc), LC_ARG(h), LC_ARG(w), LC_ARG(f->kh), LC_ARG(f->kw), LC_ARG(oh),
                              LC_ARG(ow)};
                return kern(ex, L, id, P_POOL, "lc_maxpool_bwd_tiled", b, 13, 1, (size_t)nc * (size_t)oh, 0, 0);
            }
            return kern(ex, L, id, P_POOL, "lc_maxpool_bwd", a, 15, 1, (size_t)nc * (size_t)h, 0, 0);
        }
        const char *kn = nd->op == LC_OP_MAXPOOL ? "lc_maxpool_fwd"
                         : nd->op == LC_OP_AVGPOOL ? "lc_avgpool_fwd" : "lc_avgpool_bwd";
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(nc), LC_ARG(h), LC_ARG(w),
                      LC_ARG(f->kh), LC_ARG(f->kw), LC_ARG(f->sh), LC_ARG(f->sw), LC_ARG(oh), LC_ARG(ow)};
        /* one work-item per output row (forward) or input row (backward) */
        return kern(ex, L, id, P_POOL, kn, a, 13, 1, (size_t)nc * (size_t)(fwd ? oh : h), 0, 0);
    }
    case LC_OP_GLOBAL_AVGPOOL:
    case LC_OP_GLOBAL_AVGPOOL_DX: {
        const lc_shape *xs = nd->op == LC_OP_GLOBAL_AVGPOOL ? &g->nodes[in0].shape : &nd->shape;
        int nc = nb * xs->dims[0], hw = xs->dims[1] * xs->dims[2];
        loc a0 = where(ex, in0);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(nc), LC_ARG(hw)};
        /* the forward: one work-item per plane (its hw values in a loop) in both styles */
        if (nd->op == LC_OP_GLOBAL_AVGPOOL) return kern(ex, L, id, P_POOL, "lc_gap_fwd", a, 6, 1, (size_t)nc, 0, 0);
        if (ex->gpu) return kern_nd(ex, L, id, P_POOL, "lc_gpu_gap_bwd", a, 6, (size_t)hw, (size_t)nc, 1);
        return kern(ex, L, id, P_POOL, "lc_gap_bwd", a, 6, 1, (size_t)nc, 0, 0);
    }
    case LC_OP_DROPOUT:
    case LC_OP_DROPOUT_DX: {
        loc x = where(ex, in0);
        if (!tr || f->rate == 0) {
            lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(x.buf), LC_ARG(x.off), LC_ARG(total)};
            return kern(ex, L, id, P_DROP, "lc_copy", a, 5, 1, (size_t)total, 0, 0);
        }
        cl_ulong key = 0;
        cl_uint thr = lc_dropout_threshold(f->rate);
        float scale = (float)(1.0 / (1.0 - f->rate));
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(x.buf), LC_ARG(x.off), LC_ARG(total), LC_ARG(key),
                      LC_ARG(thr), LC_ARG(scale)};
        LC_TRY(kern(ex, L, id, P_DROP, "lc_dropout", a, 8, 1, (size_t)total, 0, 0));
        L->l[L->count - 1].rng_arg = 5;
        L->l[L->count - 1].rng_node = nd->op == LC_OP_DROPOUT ? id : nd->fwd;
        return LC_OK;
    }
    case LC_OP_COUNT:
        break;
    }
    return LC_ERR(LC_ERR_UNSUPPORTED, "node '%s': op %s has no lowering", nd->name, lc_op_name(nd->op));
}

static lc_status build_list(lc_exec *ex, llist *L, int nb, bool tr)
{
    L->batch = nb;
    L->training = tr;
    for (int i = 0; i < ex->g->n_nodes; i++) {
        if (i == ex->g->n_forward) L->n_fwd = L->count;
        lc_status st = lower_node(ex, L, i, nb, tr);
        if (st != LC_OK) return st;
    }
    if (ex->g->n_forward >= ex->g->n_nodes) L->n_fwd = L->count;
    return LC_OK;
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
    llist_free(&ex->lists[slot]);
    lc_status st = build_list(ex, &ex->lists[slot], nb, tr);
    if (st != LC_OK) { llist_free(&ex->lists[slot]); return st; }
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
    conv_dims d = conv_dims_of(g, c);
    bool pw = lc_graph_conv_pointwise(g, id);
    int chunk = pw ? nb : lc_graph_conv_chunk(g, id, nb);
    if (!pw && nd->aux_offset < 0) return LC_ERR(LC_ERR_INVALID, "node '%s': conv workspace is not planned", nd->name);
    cl_mem bufs[3] = {ex->acts, ex->params, ex->grads};
    float *p[3] = {NULL, NULL, NULL};
    lc_status st = LC_OK;
    for (int i = 0; i < 3 && st == LC_OK; i++) st = lc_rt_map(ex->rt, bufs[i], &p[i]);
#define HPTR(l) (p[(l).buf == ex->acts ? 0 : (l).buf == ex->params ? 1 : 2] + (l).off)
    if (st == LC_OK) {
        loc a = where(ex, nd->inputs[0]), b = where(ex, nd->inputs[1]), y = where(ex, id);
        const float *bias = nd->op == LC_OP_CONV2D && c->bias ? HPTR(where(ex, c->inputs[2])) : NULL;
        float *ws = pw ? NULL : HPTR(aux_of(ex, id));
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

static lc_status run(lc_exec *ex, const llist *L, int from, int to)
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

/* ---- conv on the host or on the device: chosen per conv node by timing
 * (once per device and shape, cached like the GEMM backends) when the
 * device's buffers live in host memory; LAYCA_CONV forces one (exec.c's
 * header comment) ---- */

static double time_list(lc_exec *ex, const llist *L, int reps, double stop_above)
{
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        if (lc_rt_finish(ex->rt) != LC_OK) return 1e30;
        double t0 = lc_now_s();
        if (run(ex, L, 0, L->count) != LC_OK || lc_rt_finish(ex->rt) != LC_OK) return 1e30;
        double t = lc_now_s() - t0;
        if (r == 0 && t > stop_above) return t; /* the warm-up alone is too slow */
        if (r > 0 && t < best) best = t;
    }
    return best;
}

/* Times the conv node's candidates: the device lowering and the host
 * schedules that fit its workspace; *best gets 0 (device) or a schedule. */
static lc_status time_conv(lc_exec *ex, int id, int *best)
{
    const lc_graph *g = ex->g;
    const lc_node *nd = &g->nodes[id];
    int nb = g->planned_batch;
    const lc_node *c = nd->op == LC_OP_CONV2D ? nd : &g->nodes[nd->fwd];
    conv_dims d = conv_dims_of(g, c);
    int kind = nd->op == LC_OP_CONV2D ? HC_FWD : nd->op == LC_OP_CONV2D_DX ? HC_DX : HC_DW;
    bool pw = lc_graph_conv_pointwise(g, id);
    int threads = lc_rt_host_threads(ex->rt);
    bool blk = !pw && lc_host_conv_blocked_threads(&d, nb, kind, threads, (size_t)nd->aux_floats) > 0;
    bool win = !pw && lc_host_wino_threads(&d, nb, kind, 2, threads, (size_t)nd->aux_floats) > 0;
    bool win4 = !pw && lc_host_wino_threads(&d, nb, kind, 4, threads, (size_t)nd->aux_floats) > 0;
    /* the usual winners first, so that a slow candidate stops after its
     * warm-up run (3 x the best so far) */
    int cand[5] = {HC_WINO4, HC_WINO, HC_BLOCKED, HC_CHUNKED, 0};
    double t[5] = {0, 0, 0, 0, 0}, tbest = 1e30;
    *best = 0;
    for (int i = 0; i < 5; i++) {
        if ((cand[i] == HC_BLOCKED && !blk) || (cand[i] == HC_WINO && !win) || (cand[i] == HC_WINO4 && !win4))
            continue;
        llist T = {0};
        ex->host_conv[id] = (uint8_t)cand[i];
        lc_status st = lower_conv(ex, &T, id, nb);
        if (st == LC_OK) t[i] = time_list(ex, &T, 3, 3 * tbest);
        llist_free(&T);
        if (st != LC_OK) return st;
        if (t[i] < tbest) { tbest = t[i]; *best = cand[i]; }
    }
    ex->host_conv[id] = 0;
    LC_DEBUG("conv node '%s' (%s): winograd 4 %.3f, winograd 2 %.3f, blocked %.3f, chunked %.3f, device %.3f ms "
             "(0: not applicable) -> %s",
             nd->name, lc_op_name(nd->op), t[0] * 1e3, t[1] * 1e3, t[2] * 1e3, t[3] * 1e3, t[4] * 1e3,
             *best == HC_WINO4     ? "host winograd 4"
             : *best == HC_WINO    ? "host winograd 2"
             : *best == HC_BLOCKED ? "host blocked"
             : *best == HC_CHUNKED ? "host chunked"
                                   : "device");
    return LC_OK;
}

static lc_status choose_conv(lc_exec *ex)
{
    lc_graph *g = ex->g;
    if (!lc_rt_host_blas_usable(ex->rt) || !lc_rt_host_sgemm_available()) return LC_OK;
    const char *force = ex->opts.host_conv;
    if (force && !strcmp(force, "device")) return LC_OK;
    int forced = !force ? 0 : !strcmp(force, "host-chunked")                            ? HC_CHUNKED
                 : !strcmp(force, "host-blocked")                           ? HC_BLOCKED
                 : !strcmp(force, "host-winograd")                          ? HC_WINO
                 : !strcmp(force, "host-winograd4") || !strcmp(force, "host") ? HC_WINO4
                                                                           : 0;
    ex->host_conv = calloc((size_t)g->n_nodes, sizeof *ex->host_conv);
    if (!ex->host_conv) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->n_nodes; i++) {
        const lc_node *nd = &g->nodes[i];
        if (nd->op != LC_OP_CONV2D && nd->op != LC_OP_CONV2D_DX && nd->op != LC_OP_CONV2D_DW) continue;
        const lc_node *c = nd->op == LC_OP_CONV2D ? nd : &g->nodes[nd->fwd];
        conv_dims d = conv_dims_of(g, c);
        int nb = g->planned_batch, chunk = lc_graph_conv_chunk(g, i, nb);
        if (forced) {
            int kind = nd->op == LC_OP_CONV2D ? HC_FWD : nd->op == LC_OP_CONV2D_DX ? HC_DX : HC_DW;
            int th = lc_rt_host_threads(ex->rt);
            bool pw = lc_graph_conv_pointwise(g, i);
            bool blk = !pw && lc_host_conv_blocked_threads(&d, nb, kind, th, (size_t)nd->aux_floats) > 0;
            bool win = !pw && lc_host_wino_threads(&d, nb, kind, 2, th, (size_t)nd->aux_floats) > 0;
            bool win4 = !pw && lc_host_wino_threads(&d, nb, kind, 4, th, (size_t)nd->aux_floats) > 0;
            int s = forced;
            if (s == HC_WINO4 && !win4) s = HC_WINO; /* not 3x3 stride 1, or no room */
            if (s == HC_WINO && !win) s = HC_BLOCKED;
            if (s == HC_BLOCKED && !blk) s = HC_CHUNKED;
            ex->host_conv[i] = (uint8_t)s;
            continue;
        }
        char key[256];
        snprintf(key, sizeof key, "conv7|%s|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|t%d", lc_op_name(nd->op), d.cin,
                 d.h, d.w, d.cout, d.kh, d.kw, d.sh, d.sw, d.pt, d.pl, d.oh, d.ow, nb, chunk,
                 lc_rt_host_threads(ex->rt));
        int v = lc_rt_choice_get(ex->rt, key);
        if (v == HC_BLOCKED || v == HC_WINO || v == HC_WINO4) { /* a cached schedule must still fit */
            int kind = nd->op == LC_OP_CONV2D ? HC_FWD : nd->op == LC_OP_CONV2D_DX ? HC_DX : HC_DW;
            int th = lc_rt_host_threads(ex->rt);
            size_t ws = (size_t)nd->aux_floats;
            bool pw = lc_graph_conv_pointwise(g, i);
            bool fits = pw || (v == HC_BLOCKED ? lc_host_conv_blocked_threads(&d, nb, kind, th, ws)
                                               : lc_host_wino_threads(&d, nb, kind, v == HC_WINO ? 2 : 4, th, ws)) > 0;
            if (!fits) v = -1;
        }
        if (v < 0 || v > HC_WINO4) {
            LC_TRY(time_conv(ex, i, &v));
            lc_rt_choice_set(ex->rt, key, v);
        }
        ex->host_conv[i] = (uint8_t)v;
    }
    return LC_OK;
}

/* ---- device conv schedules (GPU style): chosen per conv node by timing
 * the ones that apply, once per device and shape (lc_rt_choice_*), or
 * forced by lc_exec_opts.device_conv ---- */

/* Whether the batched schedule applies to conv node id (the plain GEMM one
 * always does). */
static bool dconv_batched_applies(const lc_exec *ex, int id)
{
    const lc_graph *g = ex->g;
    const lc_node *nd = &g->nodes[id];
    if (nd->op == LC_OP_CONV2D_DW) return lc_graph_conv_dw_slices(g, id, g->planned_batch) > 1;
    return !lc_graph_conv_pointwise(g, id); /* a pointwise one is one batched GEMM anyway */
}

static lc_status choose_device_conv(lc_exec *ex)
{
    lc_graph *g = ex->g;
    if (!ex->gpu) return LC_OK;
    ex->dconv = calloc((size_t)g->n_nodes, sizeof *ex->dconv);
    if (!ex->dconv) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    int forced = ex->opts.device_conv;
    for (int i = 0; i < g->n_nodes; i++) {
        const lc_node *nd = &g->nodes[i];
        if (nd->op != LC_OP_CONV2D && nd->op != LC_OP_CONV2D_DX && nd->op != LC_OP_CONV2D_DW) continue;
        if (ex->host_conv && ex->host_conv[i]) continue;
        bool batched = dconv_batched_applies(ex, i);
        if (!batched || forced == LC_EXEC_CONV_GEMM) {
            ex->dconv[i] = LC_EXEC_CONV_GEMM;
            continue;
        }
        if (forced == LC_EXEC_CONV_BATCHED || ex->opts.plan_only) {
            ex->dconv[i] = forced == LC_EXEC_CONV_BATCHED ? LC_EXEC_CONV_BATCHED : LC_EXEC_CONV_GEMM;
            continue;
        }
        const lc_node *c = nd->op == LC_OP_CONV2D ? nd : &g->nodes[nd->fwd];
        conv_dims d = conv_dims_of(g, c);
        int nb = g->planned_batch;
        char key[256];
        snprintf(key, sizeof key, "dconv1|%s|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d", lc_op_name(nd->op), d.cin,
                 d.h, d.w, d.cout, d.kh, d.kw, d.sh, d.sw, d.pt, d.pl, d.oh, d.ow, nb, lc_graph_conv_chunk(g, i, nb),
                 lc_graph_conv_dw_slices(g, i, nb));
        int v = lc_rt_choice_get(ex->rt, key);
        if (v != LC_EXEC_CONV_GEMM && v != LC_EXEC_CONV_BATCHED) {
            double t[2] = {1e30, 1e30};
            for (int k = 0; k < 2; k++) {
                llist T = {0};
                ex->dconv[i] = (uint8_t)(k ? LC_EXEC_CONV_BATCHED : LC_EXEC_CONV_GEMM);
                lc_status st = lower_conv(ex, &T, i, nb);
                /* an untimed run first: CLBlast compiles the kernels of a GEMM shape on its first call */
                if (st == LC_OK) st = run(ex, &T, 0, T.count);
                if (st == LC_OK) t[k] = time_list(ex, &T, 3, k ? 3 * t[0] : 1e30);
                llist_free(&T);
                if (st != LC_OK && k == 1) { /* the batched schedule failed here: the plain one */
                    LC_DEBUG("conv node '%s': the batched schedule failed: %s", nd->name, lc_error_message());
                    lc_error_clear();
                    t[1] = 1e30;
                } else if (st != LC_OK) {
                    return st;
                }
            }
            v = t[1] < t[0] ? LC_EXEC_CONV_BATCHED : LC_EXEC_CONV_GEMM;
            LC_DEBUG("conv node '%s' (%s) on the device: gemm %.3f ms, batched %.3f ms -> %s", nd->name,
                     lc_op_name(nd->op), t[0] * 1e3, t[1] * 1e3, v == LC_EXEC_CONV_BATCHED ? "batched" : "gemm");
            lc_rt_choice_set(ex->rt, key, v);
        }
        ex->dconv[i] = (uint8_t)v;
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
    if (g->planned_batch <= 0) return LC_ERR(LC_ERR_INVALID, "graph '%s' is not planned", g->name);
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
        CHECK(choose_conv(ex));
    }
    CHECK(choose_device_conv(ex));
    CHECK(build_list(ex, &ex->lists[0], g->planned_batch, true));
    CHECK(build_list(ex, &ex->lists[1], g->planned_batch, false));
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
        if (!seen) CHECK(run(ex, L0, i, i + 1));
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
    return run(ex, L, 0, L->n_fwd);
}

lc_status lc_exec_backward(lc_exec *ex)
{
    const llist *L = &ex->lists[ex->cur];
    return run(ex, L, L->n_fwd, L->count);
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
    loc l = where(ex, id);
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
            st = run(ex, L, i, i + 1);
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

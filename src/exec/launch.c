/* Launch lists: kernels with their arguments, GEMMs with their operands. */
#include "exec_int.h"

const char *const lcx_prog_names[P_COUNT] = {"eltwise", "loss", "conv", "pool", "norm", "dropout"};

/* The programs with fixed-size work-groups: their size macro and kernels. */
static const char *const norm_wg_kernels[] = {"lc_bn_stats",    "lc_bn_bwd_sums", "lc_bn_dgamma",
                                              "lc_channel_sum", "lc_gpu_bn_part", "lc_gpu_sums_part"};
static const char *const loss_wg_kernels[] = {"lc_loss_stats"};

void lcx_llist_free(llist *L)
{
    for (int i = 0; i < L->count; i++)
        if (L->l[i].k) clReleaseKernel(L->l[i].k);
    free(L->l);
    memset(L, 0, sizeof *L);
}

launch *lcx_push(llist *L)
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

lc_status lcx_program(lc_exec *ex, int p, cl_program *out)
{
    if (!ex->prog[p]) {
        if (p == P_NORM)
            LC_TRY(lc_rt_program_wg(ex->rt, lcx_prog_names[p], "", "LC_RED_WG", ex->gpu ? LC_RED_WG_GPU : LC_RED_WG_CPU, norm_wg_kernels,
                                    (int)LC_COUNTOF(norm_wg_kernels), &ex->prog[p], &ex->wg[p]));
        else if (p == P_LOSS)
            LC_TRY(lc_rt_program_wg(ex->rt, lcx_prog_names[p], "", "LC_STATS_WG", LC_RED_WG_CPU, loss_wg_kernels,
                                    (int)LC_COUNTOF(loss_wg_kernels), &ex->prog[p], &ex->wg[p]));
        else
            LC_TRY(lc_rt_program(ex->rt, lcx_prog_names[p], "", &ex->prog[p]));
    }
    *out = ex->prog[p];
    return LC_OK;
}

/* The work-group size program p's fixed-size kernels were built with. */
lc_status lcx_fixed_wg(lc_exec *ex, int p, size_t *wg)
{
    cl_program unused;
    LC_TRY(lcx_program(ex, p, &unused));
    *wg = ex->wg[p];
    return LC_OK;
}

lc_status lcx_kern(lc_exec *ex, llist *L, int node, int prog, const char *name, const lc_arg *args, int nargs,
                      int dims, size_t g0, size_t g1, size_t l0)
{
    cl_program p;
    LC_TRY(lcx_program(ex, prog, &p));
    launch *x = lcx_push(L);
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
lc_status lcx_kern_nd(lc_exec *ex, llist *L, int node, int prog, const char *name, const lc_arg *args, int nargs,
                         size_t g0, size_t g1, size_t g2)
{
    LC_TRY(lcx_kern(ex, L, node, prog, name, args, nargs, 1, g0, 0, 0));
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
lc_status lcx_gemm_sb(lc_exec *ex, llist *L, int node, bool ta, bool tb, size_t m, size_t n, size_t k, loc a,
                         size_t lda, size_t sa, loc b, size_t ldb, size_t sb, float beta, loc c, size_t ldc, size_t sc,
                         size_t batch)
{
    cl_mem ab, bb, cb;
    size_t ao, bo, co;
    int64_t base[3];
    LC_TRY(gemm_operand(ex, node, a, operand_extent(ta ? k : m, ta ? m : k, lda, sa, batch), &ab, &ao, &base[0]));
    LC_TRY(gemm_operand(ex, node, b, operand_extent(tb ? n : k, tb ? k : n, ldb, sb, batch), &bb, &bo, &base[1]));
    LC_TRY(gemm_operand(ex, node, c, operand_extent(m, n, ldc, sc, batch), &cb, &co, &base[2]));
    launch *x = lcx_push(L);
    if (!x) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    *x = (launch){.kind = L_GEMM, .node = node, .rng_arg = -1, .rng_node = -1, .ta = ta, .tb = tb, .m = m, .n = n,
                  .kk = k, .alpha = 1.0f, .beta = beta, .a = ab, .ao = ao, .lda = lda, .b = bb, .bo = bo, .ldb = ldb,
                  .c = cb, .co = co, .ldc = ldc, .base = {base[0], base[1], base[2]}, .batch = batch, .sa = sa,
                  .sb = sb, .sc = sc};
    return LC_OK;
}

lc_status lcx_gemm_b(lc_exec *ex, llist *L, int node, bool ta, bool tb, size_t m, size_t n, size_t k, loc a,
                        size_t lda, loc b, size_t ldb, float beta, loc c, size_t ldc)
{
    return lcx_gemm_sb(ex, L, node, ta, tb, m, n, k, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}

lc_status lcx_gemm(lc_exec *ex, llist *L, int node, bool ta, bool tb, size_t m, size_t n, size_t k, loc a,
                      size_t lda, loc b, size_t ldb, loc c, size_t ldc)
{
    return lcx_gemm_b(ex, L, node, ta, tb, m, n, k, a, lda, b, ldb, 0.0f, c, ldc);
}

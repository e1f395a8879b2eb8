/* The lowering: per op, the launches of a node (the executor's part of the op registry, lc_ir.h). */
#include "exec_int.h"

static bool is_param_grad(const lc_graph *g, const lc_node *n)
{
    return lc_op_kind(n->op) == 'B' && !n->batched && n->grad_of >= 0 && g->nodes[n->grad_of].op == LC_OP_PARAM;
}

loc lcx_where(const lc_exec *ex, int id)
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
loc lcx_aux_of(const lc_exec *ex, int id) { return (loc){ex->acts, (cl_ulong)ex->g->nodes[id].aux_offset}; }
loc lcx_shift(loc l, int64_t floats) { return (loc){l.buf, (cl_ulong)((int64_t)l.off + floats)}; }

int64_t lcx_numel(const lc_graph *g, int id) { return lc_shape_numel(&g->nodes[id].shape); }

/* channels and spatial size of a [c, h, w] or flat [c] shape */
void lcx_chan_hw(const lc_shape *s, int *c, int *hw)
{
    *c = s->dims[0];
    *hw = s->rank == 3 ? s->dims[1] * s->dims[2] : 1;
}

/* ReLU of n floats at y, in place (a fused ReLU after a GEMM or a host conv) */
lc_status lcx_relu_inplace(lc_exec *ex, llist *L, int id, loc y, cl_ulong n)
{
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(n)};
    if (ex->gpu) return KERN_ND(ex, L, id, P_ELT, "lc_gpu_relu_fwd", a, ((size_t)n + LC_GPU_ELT_VEC - 1) / LC_GPU_ELT_VEC, 1, 1);
    return KERN(ex, L, id, P_ELT, "lc_relu_fwd", a, 1, ((size_t)n + LC_ELT_VEC - 1) / LC_ELT_VEC, 0, 0);
}

/* dst[0..count) = src[skip..skip + count) (norm.cl) */
static lc_status copy_floats(lc_exec *ex, llist *L, int id, loc dst, loc src, int skip, int count)
{
    lc_arg a[] = {LC_ARG(dst.buf), LC_ARG(dst.off), LC_ARG(src.buf), LC_ARG(src.off), LC_ARG(skip), LC_ARG(count)};
    return KERN(ex, L, id, P_NORM, "lc_copy_floats", a, 1, (size_t)count, 0, 0);
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
    LC_TRY(lcx_fixed_wg(ex, P_NORM, &red));
    int parts = red_parts(nb, hw, red);
    lc_arg a[] = {LC_ARG(part.buf), LC_ARG(part.off), LC_ARG(skip),   LC_ARG(dy.buf), LC_ARG(dy.off),
                  LC_ARG(x.buf),    LC_ARG(x.off),    LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(with_x),
                  LC_ARG(nb),       LC_ARG(c),        LC_ARG(hw),     LC_ARG(parts)};
    LC_TRY(KERN(ex, L, id, P_NORM, "lc_gpu_sums_part", a, 2, red * (size_t)parts, (size_t)c, red));
    lc_arg b[] = {LC_ARG(out.buf), LC_ARG(out.off), LC_ARG(part.buf), LC_ARG(part.off), LC_ARG(skip),
                  LC_ARG(st.buf),  LC_ARG(st.off),  LC_ARG(what),     LC_ARG(c),        LC_ARG(parts)};
    return KERN(ex, L, id, P_NORM, "lc_gpu_sums_finish", b, 1, (size_t)c, 0, 0);
}

/* The locals every lowering function starts from: the node, its first two
 * inputs, the forward node whose attributes it uses (itself for forward
 * nodes), its value and its element count at batch nb. */
#define NODE_LOCALS                                                                                                    \
    lc_graph *g = ex->g;                                                                                               \
    lc_node *nd = &g->nodes[id];                                                                                       \
    int in0 = nd->n_inputs > 0 ? nd->inputs[0] : -1, in1 = nd->n_inputs > 1 ? nd->inputs[1] : -1;                     \
    const lc_node *f = nd->fwd >= 0 ? &g->nodes[nd->fwd] : nd;                                                         \
    loc y = lcx_where(ex, id);                                                                                         \
    cl_ulong total = (cl_ulong)nb * (cl_ulong)lcx_numel(g, id);                                                        \
    (void)in0, (void)in1, (void)f, (void)y, (void)total, (void)tr

typedef lc_status (*lower_fn)(lc_exec *ex, llist *L, int id, int nb, bool tr);
typedef int64_t (*aux_fn)(const lc_graph *g, int id, int nb);

/* ---- auxiliary storage (lc_exec_aux_floats) ---- */

/* conv2d and its input gradient: the chunk's im2col workspace (none for
 * pointwise ones, which need no im2col) */
static int64_t aux_conv(const lc_graph *g, int id, int nb)
{
    if (lc_exec_conv_pointwise(g, id)) return 0;
    return (int64_t)lc_exec_conv_chunk(g, id, nb) * lc_exec_conv_ws_per_example(g, id);
}

/* conv2d's weight gradient: the chunk's workspace, then the split-K slices */
static int64_t aux_conv_dw(const lc_graph *g, int id, int nb)
{
    int64_t ws = (int64_t)lc_exec_conv_chunk(g, id, nb) * lc_exec_conv_ws_per_example(g, id);
    int s = lc_exec_conv_dw_slices(g, id, nb);
    return s > 1 ? ws + (int64_t)(s + 1) * lc_shape_numel(&g->nodes[id].shape) : ws;
}

/* batchnorm: mean, 1/std per channel; its input gradient: sum(dy),
 * sum(dy * xhat) per channel; then partial results */
static int64_t aux_bn(const lc_graph *g, int id, int nb)
{
    (void)nb;
    return 2 * (int64_t)g->nodes[id].shape.dims[0] * (1 + LC_RED_PARTS);
}

/* per-channel reductions: partial results */
static int64_t aux_red(const lc_graph *g, int id, int nb)
{
    (void)nb;
    return 2 * (int64_t)g->nodes[id].shape.dims[0] * LC_RED_PARTS;
}


/* data, parameters, views: no launch (a fused ReLU is applied by its
 * input's producer) */
static lc_status lower_nothing(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    (void)ex, (void)L, (void)id, (void)nb, (void)tr;
    return LC_OK;
}

static lc_status lower_dense(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    int64_t in = lcx_numel(g, in0);
    int out = nd->units;
    /* y[n,out] = x[n,in] W[out,in]^T */
    LC_TRY(lcx_gemm(ex, L, id, false, true, (size_t)nb, (size_t)out, (size_t)in, lcx_where(ex, in0), (size_t)in,
                lcx_where(ex, in1), (size_t)in, y, (size_t)out));
    int relu = nd->act_relu;
    if (nd->bias) { /* + b, and a fused ReLU */
        loc b = lcx_where(ex, nd->inputs[2]);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(b.buf), LC_ARG(b.off), LC_ARG(nb), LC_ARG(out), LC_ARG(relu)};
        if (ex->gpu) return KERN_ND(ex, L, id, P_ELT, "lc_bias_act", a, (size_t)out, (size_t)nb, 1);
        return KERN(ex, L, id, P_ELT, "lc_bias_act", a, 2, (size_t)out, (size_t)nb, 0);
    }
    return relu ? lcx_relu_inplace(ex, L, id, y, total) : LC_OK;
}

static lc_status lower_relu(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    loc x = lcx_where(ex, in0);
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(x.buf), LC_ARG(x.off), LC_ARG(total)};
    size_t vecs = ((size_t)total + LC_ELT_VEC - 1) / LC_ELT_VEC, gvecs = ((size_t)total + LC_GPU_ELT_VEC - 1) / LC_GPU_ELT_VEC;
    if (ex->gpu) return KERN_ND(ex, L, id, P_ELT, "lc_gpu_relu_fwd", a, gvecs, 1, 1);
    return KERN(ex, L, id, P_ELT, "lc_relu_fwd", a, 1, vecs, 0, 0);
}

/* leaky ReLU and its gradient (inputs dy, x; the slope from the forward node) */
static lc_status lower_leaky_relu(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    loc x = lcx_where(ex, in0);
    float slope = (float)f->slope;
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(x.buf), LC_ARG(x.off), LC_ARG(total), LC_ARG(slope)};
    if (ex->gpu) return KERN_ND(ex, L, id, P_ELT, "lc_leaky_relu_fwd", a, (size_t)total, 1, 1);
    return KERN(ex, L, id, P_ELT, "lc_leaky_relu_fwd", a, 1, (size_t)total, 0, 0);
}

static lc_status lower_leaky_relu_grad(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    loc dy = lcx_where(ex, in0), x = lcx_where(ex, in1);
    float slope = (float)f->slope;
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(x.buf), LC_ARG(x.off),
                  LC_ARG(total), LC_ARG(slope)};
    if (ex->gpu) return KERN_ND(ex, L, id, P_ELT, "lc_leaky_relu_bwd", a, (size_t)total, 1, 1);
    return KERN(ex, L, id, P_ELT, "lc_leaky_relu_bwd", a, 1, (size_t)total, 0, 0);
}

/* elementwise of two inputs: add (and accumulate), gate (a product) */
static lc_status lower_binary(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    loc a0 = lcx_where(ex, in0), a1 = lcx_where(ex, in1);
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(a1.buf), LC_ARG(a1.off),
                  LC_ARG(total)};
    return KERN(ex, L, id, P_ELT, nd->op == LC_OP_GATE ? "lc_mul" : "lc_add", a, 1, (size_t)total, 0, 0);
}

static lc_status lower_loss(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    loc z = lcx_where(ex, in0), lab = lcx_where(ex, in1);
    int classes = (int)lcx_numel(g, in0);
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(ex->correct), LC_ARG(z.buf), LC_ARG(z.off),
                  LC_ARG(lab.buf), LC_ARG(lab.off), LC_ARG(nb), LC_ARG(classes)};
    LC_TRY(KERN(ex, L, id, P_LOSS, "lc_softmax_ce_fwd", a, 1, (size_t)nb, 0, 0));
    lc_arg s[] = {LC_ARG(ex->acc), LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(ex->correct), LC_ARG(nb)};
    size_t wg;
    LC_TRY(lcx_fixed_wg(ex, P_LOSS, &wg));
    return KERN(ex, L, id, P_LOSS, "lc_loss_stats", s, 1, wg, 0, wg);
}

static lc_status lower_loss_grad(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    loc z = lcx_where(ex, in0), lab = lcx_where(ex, in1);
    int classes = (int)lcx_numel(g, in0);
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(z.buf), LC_ARG(z.off), LC_ARG(lab.buf), LC_ARG(lab.off),
                  LC_ARG(nb), LC_ARG(classes)};
    return KERN(ex, L, id, P_LOSS, "lc_softmax_ce_bwd", a, 1, (size_t)nb, 0, 0);
}

static lc_status lower_dense_grad_input(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    /* dx[n,in] = dy[n,out] W[out,in] */
    int64_t in = lcx_numel(g, id), out = lcx_numel(g, in0);
    return lcx_gemm(ex, L, id, false, false, (size_t)nb, (size_t)in, (size_t)out, lcx_where(ex, in0), (size_t)out,
                lcx_where(ex, in1), (size_t)in, y, (size_t)in);
}

static lc_status lower_dense_grad_weight(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    /* dW[out,in] = dy[n,out]^T x[n,in] */
    int64_t out = lcx_numel(g, in0), in = lcx_numel(g, in1);
    return lcx_gemm(ex, L, id, true, false, (size_t)out, (size_t)in, (size_t)nb, lcx_where(ex, in0), (size_t)out,
                lcx_where(ex, in1), (size_t)in, y, (size_t)in);
}

static lc_status lower_bias_grad(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    loc dy = lcx_where(ex, in0);
    int cols = (int)lcx_numel(g, in0);
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(nb), LC_ARG(cols)};
    return KERN(ex, L, id, P_ELT, "lc_bias_grad", a, 1, (size_t)cols, 0, 0);
}

static lc_status lower_relu_grad(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    loc dy = lcx_where(ex, in0), yy = lcx_where(ex, in1);
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(yy.buf), LC_ARG(yy.off),
                  LC_ARG(total)};
    if (ex->gpu) return KERN_ND(ex, L, id, P_ELT, "lc_gpu_relu_bwd", a, ((size_t)total + LC_GPU_ELT_VEC - 1) / LC_GPU_ELT_VEC, 1, 1);
    return KERN(ex, L, id, P_ELT, "lc_relu_bwd", a, 1, ((size_t)total + LC_ELT_VEC - 1) / LC_ELT_VEC, 0, 0);
}

static lc_status lower_conv(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    (void)tr;
    return lcx_lower_conv(ex, L, id, nb);
}

static lc_status lower_channel_bias_grad(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    size_t red;
    LC_TRY(lcx_fixed_wg(ex, P_NORM, &red));
    loc dy = lcx_where(ex, in0);
    int c, hw;
    lcx_chan_hw(&g->nodes[in0].shape, &c, &hw);
    if (bn_sums_ready(ex, id, tr)) /* a batchnorm's beta: the input gradient's sum dy */
        return copy_floats(ex, L, id, y, lcx_aux_of(ex, lc_graph_bn_dx_of(g, nd->fwd)), 0, c);
    if (ex->gpu) return gpu_sums(ex, L, id, y, lcx_aux_of(ex, id), 0, dy, dy, dy, 0, 0, nb, c, hw);
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(nb), LC_ARG(c), LC_ARG(hw)};
    return KERN(ex, L, id, P_NORM, "lc_channel_sum", a, 1, (size_t)c * red, 0, red);
}

static lc_status lower_batchnorm(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    size_t red;
    LC_TRY(lcx_fixed_wg(ex, P_NORM, &red));
    int c, hw;
    lcx_chan_hw(&nd->shape, &c, &hw);
    loc x = lcx_where(ex, in0), st = lcx_aux_of(ex, id), rm = lcx_where(ex, nd->inputs[1]), rv = lcx_where(ex, nd->inputs[2]);
    loc gm = nd->affine ? lcx_where(ex, nd->inputs[3]) : (loc){ex->params, 0};
    loc bt = nd->affine ? lcx_where(ex, nd->inputs[4]) : (loc){ex->params, 0};
    float eps = (float)nd->eps, mom = (float)nd->momentum;
    if (tr && ex->gpu) { /* partial means and squared deviations, then combined */
        int parts = red_parts(nb, hw, red), skip = 2 * c; /* after the statistics */
        lc_arg a[] = {LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(skip), LC_ARG(x.buf), LC_ARG(x.off),
                      LC_ARG(nb),     LC_ARG(c),      LC_ARG(hw),   LC_ARG(parts)};
        LC_TRY(KERN(ex, L, id, P_NORM, "lc_gpu_bn_part", a, 2, red * (size_t)parts, (size_t)c, red));
        lc_arg b[] = {LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(rm.buf), LC_ARG(rm.off), LC_ARG(rv.buf),
                      LC_ARG(rv.off), LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(skip), LC_ARG(nb),
                      LC_ARG(c),      LC_ARG(hw),     LC_ARG(parts),  LC_ARG(eps),  LC_ARG(mom)};
        LC_TRY(KERN(ex, L, id, P_NORM, "lc_gpu_bn_finish", b, 1, (size_t)c, 0, 0));
    } else if (tr) {
        lc_arg a[] = {LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(rm.buf), LC_ARG(rm.off), LC_ARG(rv.buf),
                      LC_ARG(rv.off), LC_ARG(x.buf), LC_ARG(x.off), LC_ARG(nb), LC_ARG(c), LC_ARG(hw),
                      LC_ARG(eps), LC_ARG(mom)};
        LC_TRY(KERN(ex, L, id, P_NORM, "lc_bn_stats", a, 1, (size_t)c * red, 0, red));
    } else {
        lc_arg a[] = {LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(rm.buf), LC_ARG(rm.off), LC_ARG(rv.buf),
                      LC_ARG(rv.off), LC_ARG(c), LC_ARG(eps)};
        LC_TRY(KERN(ex, L, id, P_NORM, "lc_bn_stats_eval", a, 1, (size_t)c, 0, 0));
    }
    int affine = nd->affine, relu = nd->act_relu, planes = nb * c;
    if (ex->gpu) {
        lc_arg a[] = {LC_ARG(y.buf),  LC_ARG(y.off),  LC_ARG(x.buf),  LC_ARG(x.off),  LC_ARG(st.buf),
                      LC_ARG(st.off), LC_ARG(gm.buf), LC_ARG(gm.off), LC_ARG(bt.buf), LC_ARG(bt.off),
                      LC_ARG(affine), LC_ARG(relu),   LC_ARG(nb),     LC_ARG(c),      LC_ARG(hw)};
        return KERN_ND(ex, L, id, P_NORM, "lc_gpu_bn_apply", a, (size_t)hw, (size_t)c, (size_t)nb);
    }
    lc_arg a[] = {LC_ARG(y.buf),  LC_ARG(y.off),  LC_ARG(x.buf),  LC_ARG(x.off),  LC_ARG(st.buf),
                  LC_ARG(st.off), LC_ARG(gm.buf), LC_ARG(gm.off), LC_ARG(bt.buf), LC_ARG(bt.off),
                  LC_ARG(affine), LC_ARG(relu),   LC_ARG(c),      LC_ARG(hw),     LC_ARG(planes)};
    return KERN(ex, L, id, P_NORM, "lc_bn_apply", a, 1, (size_t)planes, 0, 0);
}

static lc_status lower_batchnorm_grad_input(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    size_t red;
    LC_TRY(lcx_fixed_wg(ex, P_NORM, &red));
    int c, hw;
    lcx_chan_hw(&nd->shape, &c, &hw);
    loc dy = lcx_where(ex, in0), x = lcx_where(ex, in1), st = lcx_aux_of(ex, nd->fwd), sums = lcx_aux_of(ex, id);
    loc gm = f->affine ? lcx_where(ex, f->inputs[3]) : (loc){ex->params, 0};
    int affine = f->affine, planes = nb * c;
    if (tr && ex->gpu) {
        LC_TRY(gpu_sums(ex, L, id, sums, sums, 2 * c, dy, x, st, 1, 2, nb, c, hw));
    } else if (tr) {
        lc_arg a[] = {LC_ARG(sums.buf), LC_ARG(sums.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(x.buf),
                      LC_ARG(x.off), LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(nb), LC_ARG(c), LC_ARG(hw)};
        LC_TRY(KERN(ex, L, id, P_NORM, "lc_bn_bwd_sums", a, 1, (size_t)c * red, 0, red));
    }
    if (tr) {
        lc_arg b[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(x.buf), LC_ARG(x.off),
                      LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(sums.buf), LC_ARG(sums.off), LC_ARG(gm.buf),
                      LC_ARG(gm.off), LC_ARG(affine), LC_ARG(nb), LC_ARG(c), LC_ARG(hw)};
        if (ex->gpu)
            return KERN_ND(ex, L, id, P_NORM, "lc_gpu_bn_bwd_dx", b, (size_t)hw, (size_t)c, (size_t)nb);
        return KERN(ex, L, id, P_NORM, "lc_bn_bwd_dx", b, 1, (size_t)planes, 0, 0);
    }
    if (ex->gpu) {
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(st.buf), LC_ARG(st.off),
                      LC_ARG(gm.buf), LC_ARG(gm.off), LC_ARG(affine), LC_ARG(nb), LC_ARG(c), LC_ARG(hw)};
        return KERN_ND(ex, L, id, P_NORM, "lc_gpu_bn_bwd_dx_eval", a, (size_t)hw, (size_t)c, (size_t)nb);
    }
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(st.buf), LC_ARG(st.off),
                  LC_ARG(gm.buf), LC_ARG(gm.off), LC_ARG(affine), LC_ARG(c), LC_ARG(hw), LC_ARG(planes)};
    return KERN(ex, L, id, P_NORM, "lc_bn_bwd_dx_eval", a, 1, (size_t)planes, 0, 0);
}

static lc_status lower_batchnorm_grad_weight(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    size_t red;
    LC_TRY(lcx_fixed_wg(ex, P_NORM, &red));
    int c, hw;
    lcx_chan_hw(&g->nodes[in1].shape, &c, &hw);
    loc dy = lcx_where(ex, in0), x = lcx_where(ex, in1), st = lcx_aux_of(ex, nd->fwd);
    if (bn_sums_ready(ex, id, tr)) /* the input gradient's sum dy * xhat */
        return copy_floats(ex, L, id, y, lcx_aux_of(ex, lc_graph_bn_dx_of(g, nd->fwd)), c, c);
    if (ex->gpu) return gpu_sums(ex, L, id, y, lcx_aux_of(ex, id), 0, dy, x, st, 1, 1, nb, c, hw);
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(dy.buf), LC_ARG(dy.off), LC_ARG(x.buf), LC_ARG(x.off),
                  LC_ARG(st.buf), LC_ARG(st.off), LC_ARG(nb), LC_ARG(c), LC_ARG(hw)};
    return KERN(ex, L, id, P_NORM, "lc_bn_dgamma", a, 1, (size_t)c * red, 0, red);
}

static lc_status lower_pool(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    bool fwd = nd->op == LC_OP_MAXPOOL || nd->op == LC_OP_AVGPOOL;
    const lc_shape *xs = fwd ? &g->nodes[in0].shape : &nd->shape, *ys = &f->shape;
    int nc = nb * xs->dims[0], h = xs->dims[1], w = xs->dims[2], oh = ys->dims[1], ow = ys->dims[2];
    loc a0 = lcx_where(ex, in0);
    /* the 2x2 and tiled kernels are for unpadded windows; the general ones
     * take the top and left padding (the bottom and right only set oh, ow)
     * and avgpool's divisor rule */
    bool unpadded = !f->pad_t && !f->pad_l && !f->pad_b && !f->pad_r;
    bool two = unpadded && f->kh == 2 && f->kw == 2 && f->sh == 2 && f->sw == 2;
    bool tiled = unpadded && f->sh == f->kh && f->sw == f->kw;
    int incl = f->count_pad || unpadded; /* without padding both rules divide by kh * kw */
    if (ex->gpu) { /* one work-item per output (forward) or input (backward) element */
        size_t r0 = (size_t)(fwd ? ow : w), r1 = (size_t)(fwd ? oh : h);
        if (two && nd->op == LC_OP_MAXPOOL) { /* one work-item per 2x2 window */
            lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(nc),
                          LC_ARG(h),     LC_ARG(w),     LC_ARG(oh),     LC_ARG(ow)};
            return KERN_ND(ex, L, id, P_POOL, "lc_gpu_maxpool2_fwd", a, (size_t)ow, (size_t)oh, (size_t)nc);
        }
        if (two && nd->op == LC_OP_MAXPOOL_DX) {
            loc x = lcx_where(ex, in1);
            lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(x.buf),
                          LC_ARG(x.off), LC_ARG(nc),    LC_ARG(h),      LC_ARG(w),      LC_ARG(oh),
                          LC_ARG(ow)};
            return KERN_ND(ex, L, id, P_POOL, "lc_gpu_maxpool2_bwd", a, (size_t)ow, (size_t)oh, (size_t)nc);
        }
        if (nd->op == LC_OP_MAXPOOL_DX && tiled) { /* windows tile the input */
            loc x = lcx_where(ex, in1);
            lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(x.buf),
                          LC_ARG(x.off), LC_ARG(nc),    LC_ARG(h),      LC_ARG(w),      LC_ARG(f->kh),
                          LC_ARG(f->kw), LC_ARG(oh),    LC_ARG(ow)};
            return KERN_ND(ex, L, id, P_POOL, "lc_gpu_maxpool_bwd_tiled", a, (size_t)ow, (size_t)oh,
                           (size_t)nc);
        }
        if (nd->op == LC_OP_MAXPOOL_DX) {
            loc x = lcx_where(ex, in1);
            lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(x.buf),
                          LC_ARG(x.off), LC_ARG(nc),    LC_ARG(h),      LC_ARG(w),      LC_ARG(f->kh),
                          LC_ARG(f->kw), LC_ARG(f->sh), LC_ARG(f->sw),  LC_ARG(f->pad_t), LC_ARG(f->pad_l),
                          LC_ARG(oh),    LC_ARG(ow)};
            return KERN_ND(ex, L, id, P_POOL, "lc_gpu_maxpool_bwd", a, r0, r1, (size_t)nc);
        }
        const char *kn = nd->op == LC_OP_MAXPOOL   ? "lc_gpu_maxpool_fwd"
                         : nd->op == LC_OP_AVGPOOL ? "lc_gpu_avgpool_fwd"
                                                   : "lc_gpu_avgpool_bwd";
        lc_arg a[] = {LC_ARG(y.buf),    LC_ARG(y.off),    LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(nc),
                      LC_ARG(h),        LC_ARG(w),        LC_ARG(f->kh),  LC_ARG(f->kw),  LC_ARG(f->sh),
                      LC_ARG(f->sw),    LC_ARG(f->pad_t), LC_ARG(f->pad_l), LC_ARG(oh),   LC_ARG(ow),
                      LC_ARG(incl)};
        /* maxpool takes no divisor rule: all but the last argument */
        return lcx_kern_nd(ex, L, id, P_POOL, kn, a, (int)LC_COUNTOF(a) - (nd->op == LC_OP_MAXPOOL), r0, r1,
                           (size_t)nc);
    }
    /* 2x2 stride 2: vectorised kernels */
    if (two && nd->op == LC_OP_MAXPOOL) {
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(nc), LC_ARG(h),
                      LC_ARG(w), LC_ARG(oh), LC_ARG(ow)};
        return KERN(ex, L, id, P_POOL, "lc_maxpool2_fwd", a, 1, (size_t)nc * (size_t)oh, 0, 0);
    }
    if (two && nd->op == LC_OP_MAXPOOL_DX) {
        loc x = lcx_where(ex, in1);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(x.buf), LC_ARG(x.off),
                      LC_ARG(nc), LC_ARG(h), LC_ARG(w), LC_ARG(oh), LC_ARG(ow)};
        return KERN(ex, L, id, P_POOL, "lc_maxpool2_bwd", a, 1, (size_t)nc * (size_t)oh, 0, 0);
    }
    if (nd->op == LC_OP_MAXPOOL_DX) {
        loc x = lcx_where(ex, in1);
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(x.buf), LC_ARG(x.off),
                      LC_ARG(nc), LC_ARG(h), LC_ARG(w), LC_ARG(f->kh), LC_ARG(f->kw), LC_ARG(f->sh),
                      LC_ARG(f->sw), LC_ARG(f->pad_t), LC_ARG(f->pad_l), LC_ARG(oh), LC_ARG(ow)};
        if (tiled) { /* windows tile the input */
            lc_arg b[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(x.buf),
                          LC_ARG(x.off), LC_ARG(nc), LC_ARG(h), LC_ARG(w), LC_ARG(f->kh), LC_ARG(f->kw), LC_ARG(oh),
                          LC_ARG(ow)};
            return KERN(ex, L, id, P_POOL, "lc_maxpool_bwd_tiled", b, 1, (size_t)nc * (size_t)oh, 0, 0);
        }
        return KERN(ex, L, id, P_POOL, "lc_maxpool_bwd", a, 1, (size_t)nc * (size_t)h, 0, 0);
    }
    const char *kn = nd->op == LC_OP_MAXPOOL ? "lc_maxpool_fwd"
                     : nd->op == LC_OP_AVGPOOL ? "lc_avgpool_fwd" : "lc_avgpool_bwd";
    lc_arg a[] = {LC_ARG(y.buf),    LC_ARG(y.off),    LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(nc),
                  LC_ARG(h),        LC_ARG(w),        LC_ARG(f->kh),  LC_ARG(f->kw),  LC_ARG(f->sh),
                  LC_ARG(f->sw),    LC_ARG(f->pad_t), LC_ARG(f->pad_l), LC_ARG(oh),   LC_ARG(ow),
                  LC_ARG(incl)};
    /* one work-item per output row (forward) or input row (backward);
     * maxpool takes no divisor rule: all but the last argument */
    return lcx_kern(ex, L, id, P_POOL, kn, a, (int)LC_COUNTOF(a) - (nd->op == LC_OP_MAXPOOL), 1,
                    (size_t)nc * (size_t)(fwd ? oh : h), 0, 0);
}

static lc_status lower_global_avgpool(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    const lc_shape *xs = nd->op == LC_OP_GLOBAL_AVGPOOL ? &g->nodes[in0].shape : &nd->shape;
    int nc = nb * xs->dims[0], hw = xs->dims[1] * xs->dims[2];
    loc a0 = lcx_where(ex, in0);
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(a0.buf), LC_ARG(a0.off), LC_ARG(nc), LC_ARG(hw)};
    /* the forward: one work-item per plane (its hw values in a loop) in both styles */
    if (nd->op == LC_OP_GLOBAL_AVGPOOL) return KERN(ex, L, id, P_POOL, "lc_gap_fwd", a, 1, (size_t)nc, 0, 0);
    if (ex->gpu) return KERN_ND(ex, L, id, P_POOL, "lc_gpu_gap_bwd", a, (size_t)hw, (size_t)nc, 1);
    return KERN(ex, L, id, P_POOL, "lc_gap_bwd", a, 1, (size_t)nc, 0, 0);
}

static lc_status lower_dropout(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    NODE_LOCALS;
    loc x = lcx_where(ex, in0);
    if (!tr || f->rate == 0) {
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(x.buf), LC_ARG(x.off), LC_ARG(total)};
        return KERN(ex, L, id, P_DROP, "lc_copy", a, 1, (size_t)total, 0, 0);
    }
    cl_ulong key = 0;
    cl_uint thr = lc_dropout_threshold(f->rate);
    float scale = (float)(1.0 / (1.0 - f->rate));
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(x.buf), LC_ARG(x.off), LC_ARG(total), LC_ARG(key),
                  LC_ARG(thr), LC_ARG(scale)};
    LC_TRY(KERN(ex, L, id, P_DROP, "lc_dropout", a, 1, (size_t)total, 0, 0));
    L->l[L->count - 1].rng_arg = 5;
    L->l[L->count - 1].rng_node = nd->op == LC_OP_DROPOUT ? id : nd->fwd;
    return LC_OK;
}

/* The executor's part of the op registry: per op, its lowering and the
 * auxiliary storage it needs (NULL: none). */
static const struct { lower_fn lower; aux_fn aux; } lowerings[LC_OP_COUNT] = {
    [LC_OP_INPUT] = {.lower = lower_nothing},
    [LC_OP_LABELS] = {.lower = lower_nothing},
    [LC_OP_PARAM] = {.lower = lower_nothing},
    [LC_OP_FLATTEN] = {.lower = lower_nothing},
    [LC_OP_RESHAPE] = {.lower = lower_nothing},
    [LC_OP_DENSE] = {.lower = lower_dense},
    [LC_OP_FUSED_RELU] = {.lower = lower_nothing},
    [LC_OP_MASK] = {.lower = lower_nothing},
    [LC_OP_GATE] = {.lower = lower_binary},
    [LC_OP_RELU] = {.lower = lower_relu},
    [LC_OP_ADD] = {.lower = lower_binary},
    [LC_OP_ACCUM] = {.lower = lower_binary},
    [LC_OP_SOFTMAX_CE] = {.lower = lower_loss},
    [LC_OP_SOFTMAX_CE_DX] = {.lower = lower_loss_grad},
    [LC_OP_DENSE_DX] = {.lower = lower_dense_grad_input},
    [LC_OP_DENSE_DW] = {.lower = lower_dense_grad_weight},
    [LC_OP_BIAS_DB] = {.lower = lower_bias_grad},
    [LC_OP_RELU_DX] = {.lower = lower_relu_grad},
    [LC_OP_CONV2D] = {.lower = lower_conv, .aux = aux_conv},
    [LC_OP_CONV2D_DX] = {.lower = lower_conv, .aux = aux_conv},
    [LC_OP_CONV2D_DW] = {.lower = lower_conv, .aux = aux_conv_dw},
    [LC_OP_CHANNEL_DB] = {.lower = lower_channel_bias_grad, .aux = aux_red},
    [LC_OP_BATCHNORM] = {.lower = lower_batchnorm, .aux = aux_bn},
    [LC_OP_BATCHNORM_DX] = {.lower = lower_batchnorm_grad_input, .aux = aux_bn},
    [LC_OP_BATCHNORM_DGAMMA] = {.lower = lower_batchnorm_grad_weight, .aux = aux_red},
    [LC_OP_MAXPOOL] = {.lower = lower_pool},
    [LC_OP_AVGPOOL] = {.lower = lower_pool},
    [LC_OP_MAXPOOL_DX] = {.lower = lower_pool},
    [LC_OP_AVGPOOL_DX] = {.lower = lower_pool},
    [LC_OP_GLOBAL_AVGPOOL] = {.lower = lower_global_avgpool},
    [LC_OP_GLOBAL_AVGPOOL_DX] = {.lower = lower_global_avgpool},
    [LC_OP_DROPOUT] = {.lower = lower_dropout},
    [LC_OP_DROPOUT_DX] = {.lower = lower_dropout},
    [LC_OP_LEAKY_RELU] = {.lower = lower_leaky_relu},
    [LC_OP_LEAKY_RELU_DX] = {.lower = lower_leaky_relu_grad},
};

lc_status lc_exec_ops_check(void)
{
    for (int op = 0; op < LC_OP_COUNT; op++)
        if (!lowerings[op].lower)
            return LC_ERR(LC_ERR_INVALID, "op registry: op '%s' has no lowering (src/exec/lower.c)", lc_op_name((lc_op)op));
    return LC_OK;
}

/* The lowering: IR node -> launches, for batch size nb and a mode. */
static lc_status lower_node(lc_exec *ex, llist *L, int id, int nb, bool tr)
{
    lc_op op = ex->g->nodes[id].op;
    if ((unsigned)op >= LC_OP_COUNT || !lowerings[op].lower)
        return LC_ERR(LC_ERR_UNSUPPORTED, "node '%s': op %s has no lowering", ex->g->nodes[id].name, lc_op_name(op));
    return lowerings[op].lower(ex, L, id, nb, tr);
}

int64_t lc_exec_aux_floats(const lc_graph *g, int id, int nb)
{
    lc_op op = g->nodes[id].op;
    return (unsigned)op < LC_OP_COUNT && lowerings[op].aux ? lowerings[op].aux(g, id, nb) : 0;
}

lc_status lc_exec_compile(lc_graph *g, int batch, bool train, FILE *dump)
{
    g->aux_fn = lc_exec_aux_floats;
    return lc_graph_compile(g, batch, train, dump);
}

lc_status lcx_build_list(lc_exec *ex, llist *L, int nb, bool tr)
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

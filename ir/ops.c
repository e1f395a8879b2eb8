/* The op registry (IR part): each op's shape rule, gradient rule, FLOP
 * count and JSON attributes, built from LC_OP_TABLE (lc_ir.h). */
#include "lc_ir.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

/* ---- shape rules ---- */

#define SHAPE_ERR(n, ...)                                                                                              \
    (lc_error_set(LC_ERR_INVALID, __VA_ARGS__),                                                                        \
     lc_error_prefix(LC_ERR_INVALID, "node '%s' (%s)", (n)->name, lc_op_name((n)->op)))

/* a * b for non-negative counts, INT64_MAX when it overflows */
static int64_t mul_sat(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

const char *lc_numel_str(int64_t k, char *buf, size_t len)
{
    if (k == INT64_MAX) snprintf(buf, len, "more than 9.2e18");
    else if (k < 1000000000000000LL) snprintf(buf, len, "%lld", (long long)k);
    else snprintf(buf, len, "%.3g", (double)k);
    return buf;
}

static bool same_shape(const lc_shape *a, const lc_shape *b)
{
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

static lc_node *in0_of(lc_graph *g, lc_node *n) { return &g->nodes[n->inputs[0]]; }

/* data, parameters, backward nodes: their shapes are set where they are made */
static lc_status shape_none(lc_graph *g, int id)
{
    (void)g;
    (void)id;
    return LC_OK;
}

/* the input's shape (elementwise ops, views) */
static lc_status shape_same(lc_graph *g, int id)
{
    lc_node *n = &g->nodes[id], *in0 = in0_of(g, n);
    n->shape = in0->shape;
    n->batched = in0->batched;
    return LC_OK;
}

static lc_status shape_dense(lc_graph *g, int id)
{
    lc_node *n = &g->nodes[id], *in0 = in0_of(g, n);
    char b1[64];
    if (in0->shape.rank != 1)
        return SHAPE_ERR(n, "dense expects a flat input, got %s from '%s' (add a flatten node before it)",
                         lc_shape_str(&in0->shape, b1, sizeof b1), in0->name);
    lc_node *w = &g->nodes[n->inputs[1]];
    if ((int64_t)n->units * in0->shape.dims[0] > LC_MAX_NUMEL)
        return SHAPE_ERR(n, "the weight [%d, %d] would have %lld values, more than the %lld supported", n->units,
                         in0->shape.dims[0], (long long)n->units * in0->shape.dims[0], (long long)LC_MAX_NUMEL);
    w->shape.dims[1] = in0->shape.dims[0];
    w->fan_in = in0->shape.dims[0];
    w->fan_out = n->units;
    if (n->bias) g->nodes[n->inputs[2]].fan_in = in0->shape.dims[0];
    n->shape = (lc_shape){1, {n->units}};
    n->batched = true;
    return LC_OK;
}

static lc_status shape_gate(lc_graph *g, int id)
{
    lc_node *n = &g->nodes[id], *in0 = in0_of(g, n), *in1 = &g->nodes[n->inputs[1]];
    char b1[64], b2[64];
    if (!same_shape(&in0->shape, &in1->shape))
        return SHAPE_ERR(n, "gate needs a mask of the input's shape %s, got %s",
                         lc_shape_str(&in0->shape, b1, sizeof b1), lc_shape_str(&in1->shape, b2, sizeof b2));
    n->shape = in0->shape;
    n->batched = true;
    return LC_OK;
}

static lc_status shape_flatten(lc_graph *g, int id)
{
    lc_node *n = &g->nodes[id], *in0 = in0_of(g, n);
    char b1[64], b2[64];
    int64_t k = lc_shape_numel(&in0->shape);
    if (k > LC_MAX_NUMEL)
        return SHAPE_ERR(n, "flattening %s from '%s' gives %s values per example, more than the %lld supported",
                         lc_shape_str(&in0->shape, b1, sizeof b1), in0->name, lc_numel_str(k, b2, sizeof b2),
                         (long long)LC_MAX_NUMEL);
    n->shape = (lc_shape){1, {(int)k}};
    n->batched = in0->batched;
    return LC_OK;
}

static lc_status shape_add(lc_graph *g, int id)
{
    lc_node *n = &g->nodes[id], *in0 = in0_of(g, n), *in1 = &g->nodes[n->inputs[1]];
    char b1[64], b2[64];
    if (!same_shape(&in0->shape, &in1->shape))
        return SHAPE_ERR(n, "add needs equal shapes, got %s from '%s' and %s from '%s'",
                         lc_shape_str(&in0->shape, b1, sizeof b1), in0->name, lc_shape_str(&in1->shape, b2, sizeof b2),
                         in1->name);
    n->shape = in0->shape;
    n->batched = true;
    return LC_OK;
}

/* conv2d output size and resolved padding; false when the kernel does not fit */
static bool conv_out(lc_node *n, int64_t h, int64_t w, int64_t *oh, int64_t *ow)
{
    if (n->pad_mode == LC_PAD_SAME) {
        *oh = (h + n->sh - 1) / n->sh;
        *ow = (w + n->sw - 1) / n->sw;
        int64_t th = (*oh - 1) * n->sh + n->kh - h, tw = (*ow - 1) * n->sw + n->kw - w;
        if (th < 0) th = 0;
        if (tw < 0) tw = 0;
        n->pad_t = (int)(th / 2);
        n->pad_b = (int)(th - th / 2);
        n->pad_l = (int)(tw / 2);
        n->pad_r = (int)(tw - tw / 2);
        return true;
    }
    int ph = n->pad_mode == LC_PAD_EXPLICIT ? n->ph : 0, pw = n->pad_mode == LC_PAD_EXPLICIT ? n->pw : 0;
    n->pad_t = n->pad_b = ph;
    n->pad_l = n->pad_r = pw;
    *oh = h + 2 * ph >= n->kh ? (h + 2 * ph - n->kh) / n->sh + 1 : 0;
    *ow = w + 2 * pw >= n->kw ? (w + 2 * pw - n->kw) / n->sw + 1 : 0;
    return *oh >= 1 && *ow >= 1;
}

static lc_status shape_conv2d(lc_graph *g, int id)
{
    lc_node *n = &g->nodes[id], *in0 = in0_of(g, n);
    char b1[64], b2[64];
    if (in0->shape.rank != 3)
        return SHAPE_ERR(n, "conv2d expects a [channels, height, width] input, got %s from '%s'",
                         lc_shape_str(&in0->shape, b1, sizeof b1), in0->name);
    int64_t cin = in0->shape.dims[0], oh, ow;
    if (!conv_out(n, in0->shape.dims[1], in0->shape.dims[2], &oh, &ow))
        return SHAPE_ERR(n, "conv2d kernel %dx%d with padding %dx%d does not fit the input %s from '%s'", n->kh, n->kw,
                         n->pad_t, n->pad_l, lc_shape_str(&in0->shape, b1, sizeof b1), in0->name);
    /* every count below must fit the ints that hold it */
    int64_t taps = n->kh * (int64_t)n->kw, fan_in = cin * taps, fan_out = n->units * taps;
    int64_t wn = mul_sat(n->units, fan_in), out = mul_sat(mul_sat(n->units, oh), ow);
    if (fan_in > LC_MAX_NUMEL || fan_out > LC_MAX_NUMEL || wn > LC_MAX_NUMEL)
        return SHAPE_ERR(n, "the weight [%d, %lld, %d, %d] would have %s values, more than the %lld supported", n->units,
                         (long long)cin, n->kh, n->kw, lc_numel_str(wn, b2, sizeof b2), (long long)LC_MAX_NUMEL);
    if (out > LC_MAX_NUMEL)
        return SHAPE_ERR(n, "the output [%d, %lld, %lld] would have %s values per example, more than the %lld supported",
                         n->units, (long long)oh, (long long)ow, lc_numel_str(out, b2, sizeof b2),
                         (long long)LC_MAX_NUMEL);
    lc_node *wt = &g->nodes[n->inputs[1]];
    wt->shape = (lc_shape){4, {n->units, (int)cin, n->kh, n->kw}};
    wt->fan_in = (int)fan_in;
    wt->fan_out = (int)fan_out;
    if (n->bias) {
        lc_node *b = &g->nodes[n->inputs[2]];
        b->shape = (lc_shape){1, {n->units}};
        b->fan_in = wt->fan_in;
        b->fan_out = wt->fan_out;
    }
    n->shape = (lc_shape){3, {n->units, (int)oh, (int)ow}};
    n->batched = true;
    return LC_OK;
}

static lc_status shape_batchnorm(lc_graph *g, int id)
{
    lc_node *n = &g->nodes[id], *in0 = in0_of(g, n);
    char b1[64];
    if (in0->shape.rank != 3 && in0->shape.rank != 1)
        return SHAPE_ERR(n, "batchnorm expects a [channels, height, width] or flat input, got %s from '%s'",
                         lc_shape_str(&in0->shape, b1, sizeof b1), in0->name);
    int c = in0->shape.dims[0];
    for (int k = 1; k < n->n_inputs; k++) {
        lc_node *p = &g->nodes[n->inputs[k]];
        p->shape = (lc_shape){1, {c}};
        p->fan_in = p->fan_out = c;
    }
    n->shape = in0->shape;
    n->batched = true;
    return LC_OK;
}

static lc_status shape_pool(lc_graph *g, int id)
{
    lc_node *n = &g->nodes[id], *in0 = in0_of(g, n);
    char b1[64];
    if (in0->shape.rank != 3)
        return SHAPE_ERR(n, "%s expects a [channels, height, width] input, got %s from '%s'", lc_op_name(n->op),
                         lc_shape_str(&in0->shape, b1, sizeof b1), in0->name);
    /* every window holds a real value: no side's padding reaches a window */
    if (n->pad_t < 0 || n->pad_b < 0 || n->pad_l < 0 || n->pad_r < 0 || n->pad_t >= n->kh || n->pad_b >= n->kh ||
        n->pad_l >= n->kw || n->pad_r >= n->kw)
        return SHAPE_ERR(n, "%s padding [%d, %d, %d, %d] (top, left, bottom, right) must be in [0, window) on each "
                         "side, the window is %dx%d", lc_op_name(n->op), n->pad_t, n->pad_l, n->pad_b, n->pad_r, n->kh,
                         n->kw);
    int64_t h = (int64_t)in0->shape.dims[1] + n->pad_t + n->pad_b, w = (int64_t)in0->shape.dims[2] + n->pad_l + n->pad_r;
    if (h < n->kh || w < n->kw)
        return SHAPE_ERR(n, "%s window %dx%d does not fit the input %s from '%s' with padding [%d, %d, %d, %d]",
                         lc_op_name(n->op), n->kh, n->kw, lc_shape_str(&in0->shape, b1, sizeof b1), in0->name, n->pad_t,
                         n->pad_l, n->pad_b, n->pad_r);
    n->shape = (lc_shape){3, {in0->shape.dims[0], (int)((h - n->kh) / n->sh + 1), (int)((w - n->kw) / n->sw + 1)}};
    n->batched = true;
    return LC_OK;
}

static lc_status shape_gap(lc_graph *g, int id)
{
    lc_node *n = &g->nodes[id], *in0 = in0_of(g, n);
    char b1[64];
    if (in0->shape.rank != 3)
        return SHAPE_ERR(n, "global_avgpool expects a [channels, height, width] input, got %s from '%s'",
                         lc_shape_str(&in0->shape, b1, sizeof b1), in0->name);
    n->shape = (lc_shape){1, {in0->shape.dims[0]}};
    n->batched = true;
    return LC_OK;
}

static lc_status shape_loss(lc_graph *g, int id)
{
    lc_node *n = &g->nodes[id], *in0 = in0_of(g, n);
    char b1[64];
    if (in0->shape.rank != 1 || in0->shape.dims[0] != g->classes)
        return SHAPE_ERR(n, "the loss needs logits of shape [%d] (the number of classes), got %s from '%s'", g->classes,
                         lc_shape_str(&in0->shape, b1, sizeof b1), in0->name);
    n->shape = (lc_shape){1, {1}};
    n->batched = true;
    return LC_OK;
}

/* ---- gradient rules ---- */

static lc_status ops_grad(lc_graph *g, int id, int gi);

static int add_bwd(lc_graph *g, lc_op op, int grad_of, const char *suffix, const int *ins, int nin,
                   const lc_shape *shape, bool batched)
{
    char name[LC_NAME_MAX];
    snprintf(name, sizeof name, "%.40s.%s", g->nodes[grad_of].name, suffix);
    /* shape usually points into g->nodes, which adding a node may move */
    lc_shape sh = *shape;
    int id = lc_graph_add_node(g, op, name, ins, nin);
    if (id < 0) return -1;
    lc_node *n = &g->nodes[id];
    n->shape = sh;
    n->batched = batched;
    n->grad_of = grad_of;
    n->needs_grad = false;
    return id;
}

/* Adds contribution `gnode` to the gradient of value v. */
static lc_status add_grad(lc_graph *g, int v, int gnode)
{
    if (gnode < 0) return LC_ERR_NOMEM;
    lc_node *n = &g->nodes[v];
    if (n->grad < 0) {
        n->grad = gnode;
        return LC_OK;
    }
    int ins[2] = {n->grad, gnode};
    lc_shape s = n->shape;
    int acc = add_bwd(g, LC_OP_ACCUM, v, "grad_sum", ins, 2, &s, true);
    if (acc < 0) return LC_ERR_NOMEM;
    g->nodes[v].grad = acc;
    return LC_OK;
}

/* Input x's gradient contribution op(ins) when x needs one; fwd: the
 * forward node whose attributes it uses (-1: none). */
static lc_status input_grad(lc_graph *g, int x, lc_op op, const int *ins, int nin, int fwd)
{
    if (!g->nodes[x].needs_grad) return LC_OK;
    int dx = add_bwd(g, op, x, "grad", ins, nin, &g->nodes[x].shape, true);
    if (dx >= 0 && fwd >= 0) g->nodes[dx].fwd = fwd;
    return add_grad(g, x, dx);
}

/* Parameter p's gradient op(ins) when p is trainable. */
static lc_status param_grad(lc_graph *g, int p, lc_op op, const int *ins, int nin, int fwd)
{
    if (!g->nodes[p].trainable) return LC_OK;
    int d = add_bwd(g, op, p, "grad", ins, nin, &g->nodes[p].shape, false);
    if (d < 0) return LC_ERR_NOMEM;
    if (fwd >= 0) g->nodes[d].fwd = fwd;
    g->params[g->nodes[p].param_index].grad_node = d;
    return LC_OK;
}

static lc_op bwd_op(const lc_graph *g, int id) { return (lc_op)lc_op_get(g->nodes[id].op)->bwd; }

static lc_status grad_none(lc_graph *g, int id, int gi)
{
    (void)g;
    (void)id;
    (void)gi;
    return LC_OK;
}

/* the loss: its gradient needs no incoming one (lc_graph_autodiff) */
static lc_status grad_loss(lc_graph *g, int id, int gi)
{
    (void)gi;
    lc_node n = g->nodes[id];
    int x = n.inputs[0], ins[2] = {x, n.inputs[1]};
    if (id != g->loss || !g->nodes[x].needs_grad) return LC_OK;
    return add_grad(g, x, add_bwd(g, bwd_op(g, id), x, "grad", ins, 2, &g->nodes[x].shape, true));
}

static lc_status grad_dense(lc_graph *g, int id, int gi)
{
    lc_node n = g->nodes[id];
    int x = n.inputs[0], w = n.inputs[1];
    LC_TRY(input_grad(g, x, LC_OP_DENSE_DX, (int[]){gi, w}, 2, -1));
    LC_TRY(param_grad(g, w, LC_OP_DENSE_DW, (int[]){gi, x}, 2, -1));
    return n.bias ? param_grad(g, n.inputs[2], LC_OP_BIAS_DB, &gi, 1, -1) : LC_OK;
}

/* elementwise, the backward reading the output: dx = bwd(dy, y) */
static lc_status grad_eltwise_y(lc_graph *g, int id, int gi)
{
    return input_grad(g, g->nodes[id].inputs[0], bwd_op(g, id), (int[]){gi, id}, 2, -1);
}

/* elementwise, the backward reading the input: dx = bwd(dy, x) */
static lc_status grad_eltwise_x(lc_graph *g, int id, int gi)
{
    int x = g->nodes[id].inputs[0];
    return input_grad(g, x, bwd_op(g, id), (int[]){gi, x}, 2, id);
}

/* d(x * mask)/dx = mask: the same op on the gradient */
static lc_status grad_gate(lc_graph *g, int id, int gi)
{
    return input_grad(g, g->nodes[id].inputs[0], bwd_op(g, id), (int[]){gi, g->nodes[id].inputs[1]}, 2, -1);
}

/* the gradient passes unchanged (a fused ReLU: its producer's backward masks it) */
static lc_status grad_pass(lc_graph *g, int id, int gi)
{
    int x = g->nodes[id].inputs[0];
    return g->nodes[x].needs_grad ? add_grad(g, x, gi) : LC_OK;
}

static lc_status grad_flatten(lc_graph *g, int id, int gi)
{
    return input_grad(g, g->nodes[id].inputs[0], bwd_op(g, id), &gi, 1, -1);
}

static lc_status grad_add(lc_graph *g, int id, int gi)
{
    for (int k = 0; k < 2; k++) {
        int x = g->nodes[id].inputs[k];
        if (g->nodes[x].needs_grad) LC_TRY(add_grad(g, x, gi));
    }
    return LC_OK;
}

static lc_status grad_conv2d(lc_graph *g, int id, int gi)
{
    lc_node n = g->nodes[id];
    int x = n.inputs[0], w = n.inputs[1];
    LC_TRY(input_grad(g, x, LC_OP_CONV2D_DX, (int[]){gi, w}, 2, id));
    LC_TRY(param_grad(g, w, LC_OP_CONV2D_DW, (int[]){gi, x}, 2, id));
    return n.bias ? param_grad(g, n.inputs[2], LC_OP_CHANNEL_DB, &gi, 1, id) : LC_OK;
}

static lc_status grad_batchnorm(lc_graph *g, int id, int gi)
{
    lc_node n = g->nodes[id];
    int x = n.inputs[0];
    LC_TRY(input_grad(g, x, LC_OP_BATCHNORM_DX, (int[]){gi, x}, 2, id));
    if (!n.affine) return LC_OK;
    LC_TRY(param_grad(g, n.inputs[3], LC_OP_BATCHNORM_DGAMMA, (int[]){gi, x}, 2, id));
    return param_grad(g, n.inputs[4], LC_OP_CHANNEL_DB, &gi, 1, id);
}

/* windows (pooling), the backward reading the input: dx = bwd(dy, x) */
static lc_status grad_window_x(lc_graph *g, int id, int gi)
{
    int x = g->nodes[id].inputs[0];
    return input_grad(g, x, bwd_op(g, id), (int[]){gi, x}, 2, id);
}

/* the backward reads only the incoming gradient: dx = bwd(dy) */
static lc_status grad_dy(lc_graph *g, int id, int gi)
{
    return input_grad(g, g->nodes[id].inputs[0], bwd_op(g, id), &gi, 1, id);
}

lc_status lc_graph_autodiff(lc_graph *g)
{
    if (g->loss < 0) return LC_ERR(LC_ERR_INVALID, "graph '%s' has no loss to differentiate", g->name);
    int nf = g->n_nodes;
    g->n_forward = nf;
    for (int i = 0; i < nf; i++) g->nodes[i].grad = -1;
    for (int i = 0; i < g->n_params; i++) g->params[i].grad_node = -1;
    for (int i = nf - 1; i >= 0; i--) {
        int gi = g->nodes[i].grad;
        if (i == g->loss) { /* the start: its gradient needs no incoming one */
            LC_TRY(ops_grad(g, i, -1));
            continue;
        }
        if (gi < 0) continue;
        if (g->nodes[i].act_relu) {
            /* a fused ReLU: the gradient of the op's own result is the
             * incoming one where the (fused) output is positive */
            int ins[2] = {gi, i};
            gi = add_bwd(g, LC_OP_RELU_DX, i, "grad_relu", ins, 2, &g->nodes[i].shape, true);
            if (gi < 0) return LC_ERR_NOMEM;
        }
        LC_TRY(ops_grad(g, i, gi));
    }
    return LC_OK;
}

/* ---- FLOP counts (multiply-adds count 2) ---- */

static int64_t out_elems(const lc_graph *g, int id, int nb)
{
    const lc_node *n = &g->nodes[id];
    return lc_shape_numel(&n->shape) * (n->batched ? nb : 1);
}

static int64_t flops_zero(const lc_graph *g, int id, int nb)
{
    (void)g;
    (void)id;
    (void)nb;
    return 0;
}
static int64_t flops_out1(const lc_graph *g, int id, int nb) { return out_elems(g, id, nb); }
/* one per element of the first input (reductions) */
static int64_t flops_in1(const lc_graph *g, int id, int nb)
{
    return lc_shape_numel(&g->nodes[g->nodes[id].inputs[0]].shape) * nb;
}
/* dense and its gradients: 2 * batch * in * out */
static int64_t flops_dense(const lc_graph *g, int id, int nb)
{
    const lc_node *n = &g->nodes[id];
    int64_t a = lc_shape_numel(&g->nodes[n->inputs[0]].shape), b = lc_shape_numel(&g->nodes[n->inputs[1]].shape);
    if (n->op == LC_OP_DENSE) return 2 * nb * b + (n->bias ? nb * (int64_t)n->units : 0); /* b = in * out */
    if (n->op == LC_OP_DENSE_DX) return 2 * nb * b;                                    /* b = W */
    return 2 * nb * a * b;                                                              /* dy [out], x [in] */
}
/* conv2d and its gradients: 2 * batch * out_h * out_w * filters * in * kh * kw */
static int64_t flops_conv(const lc_graph *g, int id, int nb)
{
    const lc_node *n = &g->nodes[id], *c = n->op == LC_OP_CONV2D ? n : &g->nodes[n->fwd];
    int64_t cin = g->nodes[c->inputs[0]].shape.dims[0];
    return 2 * (int64_t)nb * c->shape.dims[1] * c->shape.dims[2] * c->units * cin * c->kh * c->kw;
}
/* pooling: a window's values per output */
static int64_t flops_window(const lc_graph *g, int id, int nb)
{
    const lc_node *n = &g->nodes[id], *f = n->fwd >= 0 ? &g->nodes[n->fwd] : n;
    return (int64_t)f->kh * f->kw * lc_shape_numel(&f->shape) * nb;
}
/* batchnorm: statistics and the normalisation, about 8 per element */
static int64_t flops_bnorm(const lc_graph *g, int id, int nb) { return 8 * out_elems(g, id, nb); }
/* softmax cross-entropy: exp, sum, max per logit */
static int64_t flops_loss(const lc_graph *g, int id, int nb)
{
    return 4 * lc_shape_numel(&g->nodes[g->nodes[id].inputs[0]].shape) * nb;
}

/* ---- the table ---- */

#define LC_UNPAREN_(...) __VA_ARGS__
/* attrs_<ID>: a zero entry, then the op's attributes (whose specs leave
 * the trailing fields zero) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define LC_ATTRS_(id, nm, kd, ni, js, sh, gr, bw, fl, ats) static const lc_attr_spec attrs_##id[] = {{0}, LC_UNPAREN_ ats};
LC_OP_TABLE(LC_ATTRS_)
#undef LC_ATTRS_
#pragma GCC diagnostic pop

static const lc_op_info ops_[LC_OP_COUNT] = {
#define LC_INFO_(id, nm, kd, ni, js, sh, gr, bw, fl, ats)                                                            \
    [LC_OP_##id] = {.name = nm, .kind = kd, .nin = ni, .json = js, .shape = shape_##sh, .grad = grad_##gr,             \
                    .bwd = LC_OP_##bw, .flops = flops_##fl, .attrs = attrs_##id + 1,                                   \
                    .n_attrs = (int)(sizeof attrs_##id / sizeof attrs_##id[0]) - 1, .shape_rule = #sh,               \
                    .grad_rule = #gr},
    LC_OP_TABLE(LC_INFO_)
#undef LC_INFO_
};

static lc_status ops_grad(lc_graph *g, int id, int gi) { return ops_[g->nodes[id].op].grad(g, id, gi); }

const lc_op_info *lc_op_get(lc_op op) { return (unsigned)op < LC_OP_COUNT ? &ops_[op] : NULL; }
const char *lc_op_name(lc_op op) { return (unsigned)op < LC_OP_COUNT ? ops_[op].name : "?"; }
char lc_op_kind(lc_op op) { return (unsigned)op < LC_OP_COUNT ? ops_[op].kind : '?'; }

int lc_op_find(const char *name)
{
    for (int i = 0; i < LC_OP_COUNT; i++)
        if (ops_[i].json && !strcmp(ops_[i].name, name)) return i;
    return -1;
}

void lc_op_set_defaults(lc_graph *g, int id)
{
    lc_node *n = &g->nodes[id];
    const lc_op_info *o = lc_op_get(n->op);
    for (int k = 0; o && k < o->n_attrs; k++)
        if (o->attrs[k].at) *(double *)((char *)n + o->attrs[k].at) = o->attrs[k].def;
}

lc_status lc_ops_check(void)
{
    for (int i = 0; i < LC_OP_COUNT; i++) {
        const lc_op_info *o = &ops_[i];
        if (!o->name || !strchr("DPFBV", o->kind) || o->nin < -1 || o->nin > LC_MAX_INPUTS)
            return LC_ERR(LC_ERR_INVALID, "op registry: op %d has no name, kind or arity", i);
        for (int k = 0; k < i; k++)
            if (!strcmp(ops_[k].name, o->name)) return LC_ERR(LC_ERR_INVALID, "op registry: '%s' twice", o->name);
        bool fwd = o->kind == 'F' || (o->kind == 'V' && o->shape != shape_none);
        if (fwd && (o->shape == shape_none || o->grad == grad_none))
            return LC_ERR(LC_ERR_INVALID, "op registry: forward op '%s' lacks a shape or gradient rule", o->name);
        bool generic = o->grad == grad_eltwise_y || o->grad == grad_eltwise_x || o->grad == grad_gate ||
                       o->grad == grad_flatten || o->grad == grad_window_x || o->grad == grad_dy ||
                       o->grad == grad_loss;
        if (generic && (o->bwd < 0 || o->bwd >= LC_OP_COUNT || (ops_[o->bwd].kind == 'F' && o->bwd != i)))
            return LC_ERR(LC_ERR_INVALID, "op registry: '%s' (gradient rule %s) names no backward op", o->name,
                          o->grad_rule);
        if (o->json && o->kind != 'F' && o->kind != 'V')
            return LC_ERR(LC_ERR_INVALID, "op registry: '%s' is not a forward op but may appear in a model file",
                          o->name);
        for (int k = 0; k < o->n_attrs; k++) {
            const lc_attr_spec *a = &o->attrs[k];
            if (!a->key || !a->example || (a->at && (a->type != LC_ATTR_REAL || a->at < sizeof(lc_op) ||
                                                     a->at + sizeof(double) > sizeof(lc_node))))
                return LC_ERR(LC_ERR_INVALID, "op registry: '%s' attribute %d is malformed", o->name, k);
        }
    }
    return LC_OK;
}

int64_t lc_graph_node_flops(const lc_graph *g, int id, int nb) { return ops_[g->nodes[id].op].flops(g, id, nb); }

int64_t lc_graph_node_bytes(const lc_graph *g, int id, int nb)
{
    const lc_node *n = &g->nodes[id];
    if (n->op == LC_OP_PARAM || lc_op_kind(n->op) == 'D' || lc_op_kind(n->op) == 'V') return 0;
    int64_t b = out_elems(g, id, nb);
    for (int k = 0; k < n->n_inputs; k++) b += out_elems(g, n->inputs[k], nb);
    return 4 * b;
}

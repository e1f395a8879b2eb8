/* The reference interpreter of forward graphs in double precision: the
 * reference's part of the op registry (lc_ir.h), one forward and one
 * backward function per forward op.
 *
 * Modes: training (batchnorm uses batch statistics and updates its running
 * statistics, dropout applies the given masks) or evaluation (batchnorm uses
 * the running statistics, dropout is the identity); the backward
 * differentiates the function the forward computed.  conv2d padding is
 * worked out here from the node's pad mode (Keras/TF "same": out =
 * ceil(in / stride), the odd extra row/column at the bottom/right), not taken
 * from the IR's resolved padding.  Fused ReLUs (lc_graph_fuse): a node with
 * act_relu applies max(., 0) to its result, and its backward masks the
 * incoming gradient where that output is not positive; a FUSED_RELU node is
 * the identity (a view of its input). */
#include "lc_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Padding of one axis: (before, after) and the output size. */
static int ref_conv_pad(const lc_node *nd, int in, int k, int s, int axis, int *before, int *after)
{
    if (nd->pad_mode == LC_PAD_SAME) {
        int out = (in + s - 1) / s;
        int total = (out - 1) * s + k - in;
        if (total < 0) total = 0;
        *before = total / 2;
        *after = total - total / 2;
        return out;
    }
    int p = nd->pad_mode == LC_PAD_EXPLICIT ? (axis ? nd->pw : nd->ph) : 0;
    *before = *after = p;
    return (in + 2 * p - k) / s + 1;
}

typedef struct ref_conv {
    int cin, h, w, cout, kh, kw, sh, sw, pt, pb, pl, pr, hp, wp, oh, ow;
} ref_conv;

static ref_conv ref_conv_of(const lc_graph *g, const lc_node *nd)
{
    const lc_shape *xs = &g->nodes[nd->inputs[0]].shape;
    ref_conv c = {.cin = xs->dims[0], .h = xs->dims[1], .w = xs->dims[2], .cout = nd->units, .kh = nd->kh,
                  .kw = nd->kw, .sh = nd->sh, .sw = nd->sw};
    c.oh = ref_conv_pad(nd, c.h, c.kh, c.sh, 0, &c.pt, &c.pb);
    c.ow = ref_conv_pad(nd, c.w, c.kw, c.sw, 1, &c.pl, &c.pr);
    c.hp = c.h + c.pt + c.pb;
    c.wp = c.w + c.pl + c.pr;
    return c;
}

/* x [n, c, h, w] -> zero-padded xp [n, c, hp, wp] */
static double *ref_pad(const double *x, int n, const ref_conv *c)
{
    double *xp = calloc((size_t)n * c->cin * c->hp * c->wp + 1, sizeof *xp);
    for (int p = 0; p < n * c->cin; p++)
        for (int i = 0; i < c->h; i++)
            for (int j = 0; j < c->w; j++)
                xp[((size_t)p * c->hp + i + c->pt) * c->wp + j + c->pl] = x[((size_t)p * c->h + i) * c->w + j];
    return xp;
}

static void ref_chan_hw(const lc_shape *s, int *c, int *hw)
{
    *c = s->dims[0];
    *hw = s->rank == 3 ? s->dims[1] * s->dims[2] : 1;
}

typedef struct rctx {
    lc_ref_run *r;
    const lc_graph *g;
    double *pd;                 /* the parameters in double */
    const double *gi;           /* backward: the incoming gradient */
    double *dx;                 /* backward: the contribution to the first input's gradient */
    const lc_ref_opts *o;
    int n;
    const float *x;
    const int32_t *y;
} rctx;

#define NUMEL(id) ((size_t)lc_shape_numel(&g->nodes[id].shape))
#define PV(id) (cx->pd + g->params[g->nodes[id].param_index].offset)
#define PN(id) (r->pnew + g->params[g->nodes[id].param_index].offset)
#define PG(id) (r->pgrad + g->params[g->nodes[id].param_index].offset)

/* The locals of a forward function: the node, its value's size, its first
 * input's value and shape, the options and the batch. */
#define FWD_LOCALS                                                                                                     \
    lc_ref_run *r = cx->r;                                                                                             \
    const lc_graph *g = cx->g;                                                                                         \
    const lc_node *nd = &g->nodes[i];                                                                                  \
    int n = cx->n;                                                                                                     \
    size_t sz = (size_t)n * NUMEL(i);                                                                                  \
    const double *a = nd->n_inputs ? r->val[nd->inputs[0]] : NULL;                                                     \
    const lc_shape *xs = nd->n_inputs ? &g->nodes[nd->inputs[0]].shape : NULL;                                         \
    const lc_ref_opts *o = cx->o;                                                                                      \
    const float *x = cx->x;                                                                                            \
    const int32_t *y = cx->y;                                                                                          \
    (void)nd, (void)sz, (void)a, (void)xs, (void)o, (void)x, (void)y, (void)n

/* The locals of a backward function: also the incoming gradient gi (a
 * fused ReLU's mask applied) and dx, this node's contribution to its first
 * input's gradient. */
#define BWD_LOCALS                                                                                                     \
    FWD_LOCALS;                                                                                                        \
    int in0 = nd->inputs[0];                                                                                           \
    size_t sz0 = (size_t)n * NUMEL(in0);                                                                               \
    const double *gi = cx->gi;                                                                                         \
    double *dx = cx->dx;                                                                                               \
    (void)sz0, (void)gi, (void)dx

static void fwd_none(rctx *cx, int i) { (void)cx, (void)i; }
static void bwd_none(rctx *cx, int i) { (void)cx, (void)i; }

static void fwd_input(rctx *cx, int i)
{
    FWD_LOCALS;
    for (size_t k = 0; k < sz; k++) r->val[i][k] = x[k];
}

static void fwd_mask(rctx *cx, int i)
{
    FWD_LOCALS;
    for (size_t k = 0; k < sz; k++) r->val[i][k] = o->gates[i][k];
}

static void fwd_gate(rctx *cx, int i)
{
    FWD_LOCALS;
    /* the mask node may come later in the list: read the upload */
    for (size_t k = 0; k < sz; k++) r->val[i][k] = a[k] * o->gates[nd->inputs[1]][k];
}

static void fwd_dense(rctx *cx, int i)
{
    FWD_LOCALS;
    lc_ref_dense_fwd(r->val[i], a, PV(nd->inputs[1]), nd->bias ? PV(nd->inputs[2]) : NULL, n,
                     (int)NUMEL(nd->inputs[0]), nd->units);
}

static void fwd_relu(rctx *cx, int i)
{
    FWD_LOCALS;
    lc_ref_relu_fwd(r->val[i], a, sz);
}

static void fwd_flatten(rctx *cx, int i)
{
    FWD_LOCALS;
    memcpy(r->val[i], a, sz * sizeof(double));
}

static void fwd_add(rctx *cx, int i)
{
    FWD_LOCALS;
    lc_ref_add_fwd(r->val[i], a, r->val[nd->inputs[1]], sz);
}

static void fwd_softmax_ce(rctx *cx, int i)
{
    FWD_LOCALS;
    r->loss = lc_ref_softmax_ce_fwd(r->val[i], &r->correct, a, y, n, (int)NUMEL(nd->inputs[0]));
}

static void fwd_conv2d(rctx *cx, int i)
{
    FWD_LOCALS;
    ref_conv c = ref_conv_of(g, nd);
    double *xp = ref_pad(a, n, &c);
    lc_ref_conv2d_fwd(r->val[i], xp, PV(nd->inputs[1]), nd->bias ? PV(nd->inputs[2]) : NULL, n, c.cin, c.hp,
                      c.wp, c.cout, c.kh, c.kw, c.sh, c.sw, 0, 0);
    free(xp);
}

static void fwd_batchnorm(rctx *cx, int i)
{
    FWD_LOCALS;
    int c, hw;
    ref_chan_hw(xs, &c, &hw);
    const double *gm = nd->affine ? PV(nd->inputs[3]) : NULL, *bt = nd->affine ? PV(nd->inputs[4]) : NULL;
    if (o->eval)
        lc_ref_batchnorm_fwd(r->val[i], NULL, NULL, PV(nd->inputs[1]), PV(nd->inputs[2]), a, gm, bt, n, c, hw,
                             nd->eps, nd->momentum, false);
    else
        lc_ref_batchnorm_fwd(r->val[i], NULL, NULL, PN(nd->inputs[1]), PN(nd->inputs[2]), a, gm, bt, n, c, hw,
                             nd->eps, nd->momentum, true);
}

/* the window of a pooling node */
static lc_ref_pool pool_of(const lc_node *nd)
{
    return (lc_ref_pool){nd->kh, nd->kw, nd->sh, nd->sw, nd->pad_t, nd->pad_l, nd->pad_b, nd->pad_r, nd->count_pad};
}

static void fwd_maxpool(rctx *cx, int i)
{
    FWD_LOCALS;
    lc_ref_pool p = pool_of(nd);
    lc_ref_maxpool_fwd(r->val[i], a, n, xs->dims[0], xs->dims[1], xs->dims[2], &p);
}

static void fwd_avgpool(rctx *cx, int i)
{
    FWD_LOCALS;
    lc_ref_pool p = pool_of(nd);
    lc_ref_avgpool_fwd(r->val[i], a, n, xs->dims[0], xs->dims[1], xs->dims[2], &p);
}

static void fwd_global_avgpool(rctx *cx, int i)
{
    FWD_LOCALS;
    lc_ref_global_avgpool_fwd(r->val[i], a, n, xs->dims[0], xs->dims[1] * xs->dims[2]);
}

static void fwd_dropout(rctx *cx, int i)
{
    FWD_LOCALS;
    if (o->eval || !o->masks || !o->masks[i]) {
        double s = o->eval ? 1.0 : 1.0 / (1.0 - nd->rate);
        for (size_t k = 0; k < sz; k++) r->val[i][k] = a[k] * s;
    } else {
        lc_ref_dropout_fwd(r->val[i], a, o->masks[i], nd->rate, sz);
    }
}

static void bwd_softmax_ce(rctx *cx, int i)
{
    BWD_LOCALS;
    lc_ref_softmax_ce_bwd(dx, r->val[in0], y, n, (int)NUMEL(in0));
}

static void bwd_dense(rctx *cx, int i)
{
    BWD_LOCALS;
    int w = nd->inputs[1];
    lc_ref_dense_bwd(dx, PG(w), nd->bias ? PG(nd->inputs[2]) : NULL, gi, r->val[in0], PV(w), n,
                     (int)NUMEL(in0), nd->units);
}

static void bwd_relu(rctx *cx, int i)
{
    BWD_LOCALS;
    for (size_t k = 0; k < sz; k++) dx[k] = r->val[i][k] > 0 ? gi[k] : 0;
}

static void bwd_gate(rctx *cx, int i)
{
    BWD_LOCALS;
    for (size_t k = 0; k < sz; k++) dx[k] = gi[k] * o->gates[nd->inputs[1]][k];
}

static void bwd_flatten(rctx *cx, int i)
{
    BWD_LOCALS;
    for (size_t k = 0; k < sz; k++) dx[k] = gi[k];
}

static void bwd_add(rctx *cx, int i)
{
    BWD_LOCALS;
    for (size_t k = 0; k < sz; k++) { dx[k] = gi[k]; r->grad[nd->inputs[1]][k] += gi[k]; }
}

static void bwd_conv2d(rctx *cx, int i)
{
    BWD_LOCALS;
    ref_conv c = ref_conv_of(g, nd);
    double *xp = ref_pad(r->val[in0], n, &c);
    double *dxp = calloc((size_t)n * c.cin * c.hp * c.wp + 1, sizeof *dxp);
    lc_ref_conv2d_bwd(dxp, PG(nd->inputs[1]), nd->bias ? PG(nd->inputs[2]) : NULL, gi, xp, PV(nd->inputs[1]), n,
                      c.cin, c.hp, c.wp, c.cout, c.kh, c.kw, c.sh, c.sw, 0, 0);
    for (int p = 0; p < n * c.cin; p++)
        for (int a = 0; a < c.h; a++)
            for (int b = 0; b < c.w; b++)
                dx[((size_t)p * c.h + a) * c.w + b] = dxp[((size_t)p * c.hp + a + c.pt) * c.wp + b + c.pl];
    free(xp);
    free(dxp);
}

static void bwd_batchnorm(rctx *cx, int i)
{
    BWD_LOCALS;
    int c, hw;
    ref_chan_hw(xs, &c, &hw);
    const double *gm = nd->affine ? PV(nd->inputs[3]) : NULL;
    double *dg = nd->affine ? PG(nd->inputs[3]) : NULL, *db = nd->affine ? PG(nd->inputs[4]) : NULL;
    if (!o->eval) {
        lc_ref_batchnorm_bwd(dx, dg, db, gi, r->val[in0], gm, n, c, hw, nd->eps);
    } else { /* y = gamma (x - rm) / sqrt(rv + eps) + beta with fixed rm, rv */
        const double *rm = PV(nd->inputs[1]), *rv = PV(nd->inputs[2]);
        for (int ch = 0; ch < c; ch++) {
            double inv = 1.0 / sqrt(rv[ch] + nd->eps), gg = gm ? gm[ch] : 1.0, sdy = 0, sdyx = 0;
            for (int ni = 0; ni < n; ni++)
                for (int k = 0; k < hw; k++) {
                    size_t e = ((size_t)ni * c + ch) * hw + k;
                    dx[e] = gi[e] * gg * inv;
                    sdy += gi[e];
                    sdyx += gi[e] * (r->val[in0][e] - rm[ch]) * inv;
                }
            if (dg) dg[ch] = sdyx;
            if (db) db[ch] = sdy;
        }
    }
}

static void bwd_maxpool(rctx *cx, int i)
{
    BWD_LOCALS;
    lc_ref_pool p = pool_of(nd);
    lc_ref_maxpool_bwd(dx, gi, r->val[in0], n, xs->dims[0], xs->dims[1], xs->dims[2], &p);
}

static void bwd_avgpool(rctx *cx, int i)
{
    BWD_LOCALS;
    lc_ref_pool p = pool_of(nd);
    lc_ref_avgpool_bwd(dx, gi, n, xs->dims[0], xs->dims[1], xs->dims[2], &p);
}

static void bwd_global_avgpool(rctx *cx, int i)
{
    BWD_LOCALS;
    lc_ref_global_avgpool_bwd(dx, gi, n, xs->dims[0], xs->dims[1] * xs->dims[2]);
}

static void bwd_dropout(rctx *cx, int i)
{
    BWD_LOCALS;
    if (o->eval || !o->masks || !o->masks[i]) {
        double s = o->eval ? 1.0 : 1.0 / (1.0 - nd->rate);
        for (size_t k = 0; k < sz; k++) dx[k] = gi[k] * s;
    } else {
        lc_ref_dropout_bwd(dx, gi, o->masks[i], nd->rate, sz);
    }
}

static void fwd_leaky_relu(rctx *cx, int i)
{
    FWD_LOCALS;
    for (size_t k = 0; k < sz; k++) r->val[i][k] = a[k] > 0 ? a[k] : nd->slope * a[k];
}

static void bwd_leaky_relu(rctx *cx, int i)
{
    BWD_LOCALS;
    for (size_t k = 0; k < sz; k++) dx[k] = r->val[in0][k] > 0 ? gi[k] : nd->slope * gi[k];
}

typedef void (*ref_fn)(rctx *cx, int i);
static const struct { ref_fn fwd, bwd; } ref_ops[LC_OP_COUNT] = {
    [LC_OP_INPUT] = {fwd_input, bwd_none},
    [LC_OP_LABELS] = {fwd_none, bwd_none},
    [LC_OP_PARAM] = {fwd_none, bwd_none},
    [LC_OP_DENSE] = {fwd_dense, bwd_dense},
    [LC_OP_RELU] = {fwd_relu, bwd_relu},
    [LC_OP_FLATTEN] = {fwd_flatten, bwd_flatten},
    [LC_OP_ADD] = {fwd_add, bwd_add},
    [LC_OP_SOFTMAX_CE] = {fwd_softmax_ce, bwd_softmax_ce},
    [LC_OP_CONV2D] = {fwd_conv2d, bwd_conv2d},
    [LC_OP_BATCHNORM] = {fwd_batchnorm, bwd_batchnorm},
    [LC_OP_MAXPOOL] = {fwd_maxpool, bwd_maxpool},
    [LC_OP_AVGPOOL] = {fwd_avgpool, bwd_avgpool},
    [LC_OP_GLOBAL_AVGPOOL] = {fwd_global_avgpool, bwd_global_avgpool},
    [LC_OP_DROPOUT] = {fwd_dropout, bwd_dropout},
    [LC_OP_MASK] = {fwd_mask, bwd_none},
    [LC_OP_GATE] = {fwd_gate, bwd_gate},
    [LC_OP_FUSED_RELU] = {fwd_flatten, bwd_flatten},
    [LC_OP_LEAKY_RELU] = {fwd_leaky_relu, bwd_leaky_relu},
};

lc_status lc_ref_ops_check(void)
{
    for (int op = 0; op < LC_OP_COUNT; op++) {
        char k = lc_op_kind((lc_op)op);
        if (k == 'B' || (k == 'V' && !lc_op_get((lc_op)op)->json && op != LC_OP_FUSED_RELU)) continue;
        if (!ref_ops[op].fwd || !ref_ops[op].bwd)
            return LC_ERR(LC_ERR_INVALID, "op registry: op '%s' has no reference forward or backward (src/ref/graph.c)",
                          lc_op_name((lc_op)op));
    }
    return LC_OK;
}

void lc_ref_run_free(lc_ref_run *r, const lc_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        free(r->val[i]);
        free(r->grad[i]);
    }
    free(r->val);
    free(r->grad);
    free(r->pgrad);
    free(r->pnew);
}

/* The backward of node i: its incoming gradient (masked by a fused ReLU
 * first) through the op's backward into its first input's gradient. */
static void backward_node(rctx *cx, int i)
{
    lc_ref_run *r = cx->r;
    const lc_graph *g = cx->g;
    const lc_node *nd = &g->nodes[i];
    int in0 = nd->inputs[0];
    size_t sz = (size_t)cx->n * NUMEL(i), sz0 = (size_t)cx->n * NUMEL(in0);
    double *gi = r->grad[i], *masked = NULL;
    if (nd->act_relu) { /* the fused ReLU's backward first */
        masked = malloc((sz + 1) * sizeof *masked);
        for (size_t k = 0; k < sz; k++) masked[k] = r->val[i][k] > 0 ? gi[k] : 0;
        gi = masked;
    }
    double *dx = calloc(sz0 + 1, sizeof *dx); /* this node's contribution to grad[in0] */
    cx->gi = gi;
    cx->dx = dx;
    ref_ops[nd->op].bwd(cx, i);
    if (r->grad[in0])
        for (size_t k = 0; k < sz0; k++) r->grad[in0][k] += dx[k];
    free(dx);
    free(masked);
}

lc_status lc_ref_run_graph(lc_ref_run *r, const lc_graph *g, const float *params, const float *x, const int32_t *y,
                           int n, const lc_ref_opts *o)
{
    LC_TRY(lc_ref_ops_check());
    lc_ref_opts def = {0};
    if (!o) o = &def;
    int nf = g->n_forward ? g->n_forward : g->n_nodes;
    memset(r, 0, sizeof *r);
    r->n = n;
    r->val = calloc((size_t)g->n_nodes, sizeof *r->val);
    r->grad = calloc((size_t)g->n_nodes, sizeof *r->grad);
    r->pgrad = calloc((size_t)g->param_floats + 1, sizeof *r->pgrad);
    r->pnew = calloc((size_t)g->param_floats + 1, sizeof *r->pnew);
    double *pd = malloc(((size_t)g->param_floats + 1) * sizeof *pd);
    if (!r->val || !r->grad || !r->pgrad || !r->pnew || !pd) {
        free(pd);
        return LC_ERR(LC_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < g->param_floats; i++) pd[i] = r->pnew[i] = params[i];
    rctx cx = {.r = r, .g = g, .pd = pd, .o = o, .n = n, .x = x, .y = y};
    for (int i = 0; i < nf; i++) {
        const lc_node *nd = &g->nodes[i];
        if (nd->op == LC_OP_PARAM || nd->op == LC_OP_LABELS) continue;
        size_t sz = (size_t)n * NUMEL(i);
        r->val[i] = calloc(sz + 1, sizeof(double));
        r->grad[i] = calloc(sz + 1, sizeof(double));
        if (!ref_ops[nd->op].fwd) {
            free(pd);
            return LC_ERR(LC_ERR_UNSUPPORTED, "node '%s': op %s has no reference", nd->name, lc_op_name(nd->op));
        }
        ref_ops[nd->op].fwd(&cx, i);
        if (nd->act_relu) lc_ref_relu_fwd(r->val[i], r->val[i], sz);
    }
    for (int i = nf - 1; i >= 0; i--) {
        lc_op op = g->nodes[i].op;
        if (op == LC_OP_PARAM || op == LC_OP_LABELS || op == LC_OP_INPUT || op == LC_OP_MASK) continue;
        backward_node(&cx, i);
    }
    free(pd);
    return LC_OK;
}

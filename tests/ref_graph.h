/* A double-precision interpreter of forward graphs for tests: runs the
 * forward pass with the reference ops and differentiates it by walking the
 * forward nodes backwards (independently of the IR's autodiff).
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
#ifndef LC_REF_GRAPH_H
#define LC_REF_GRAPH_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lc_ir.h"
#include "lc_ref.h"

typedef struct ref_run {
    int n;            /* batch */
    double **val;     /* per node value (NULL for params) */
    double **grad;    /* per node gradient of the mean loss */
    double loss;      /* mean loss */
    int correct;
    double *pgrad;    /* parameter gradients, in the parameter arena layout */
    double *pnew;     /* parameters after the forward (running statistics updated in training) */
} ref_run;

typedef struct ref_opts {
    bool eval;                /* evaluation mode (default: training) */
    const uint8_t *const *masks; /* training: per node id, the dropout keep mask (n * numel); NULL = keep all */
    const float *const *gates;   /* per MASK node id, its uploaded values (n * numel) */
} ref_opts;

static inline void ref_run_free(ref_run *r, const lc_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) { free(r->val[i]); free(r->grad[i]); }
    free(r->val); free(r->grad); free(r->pgrad); free(r->pnew);
}

/* Padding of one axis: (before, after) and the output size. */
static inline int ref_conv_pad(const lc_node *nd, int in, int k, int s, int axis, int *before, int *after)
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

static inline ref_conv ref_conv_of(const lc_graph *g, const lc_node *nd)
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
static inline double *ref_pad(const double *x, int n, const ref_conv *c)
{
    double *xp = calloc((size_t)n * c->cin * c->hp * c->wp + 1, sizeof *xp);
    for (int p = 0; p < n * c->cin; p++)
        for (int i = 0; i < c->h; i++)
            for (int j = 0; j < c->w; j++)
                xp[((size_t)p * c->hp + i + c->pt) * c->wp + j + c->pl] = x[((size_t)p * c->h + i) * c->w + j];
    return xp;
}

static inline void ref_chan_hw(const lc_shape *s, int *c, int *hw)
{
    *c = s->dims[0];
    *hw = s->rank == 3 ? s->dims[1] * s->dims[2] : 1;
}

/* params: arena layout (floats) of g; x: n * input numel; y: n labels. */
static inline void ref_run_graph_opts(ref_run *r, const lc_graph *g, const float *params, const float *x,
                                      const int32_t *y, int n, const ref_opts *o)
{
    ref_opts def = {0};
    if (!o) o = &def;
    int nf = g->n_forward ? g->n_forward : g->n_nodes;
    r->n = n;
    r->val = calloc((size_t)g->n_nodes, sizeof *r->val);
    r->grad = calloc((size_t)g->n_nodes, sizeof *r->grad);
    r->pgrad = calloc((size_t)g->param_floats + 1, sizeof *r->pgrad);
    r->pnew = calloc((size_t)g->param_floats + 1, sizeof *r->pnew);
    double *pd = malloc(((size_t)g->param_floats + 1) * sizeof *pd);
    for (int64_t i = 0; i < g->param_floats; i++) pd[i] = r->pnew[i] = params[i];
#define NUMEL(id) ((size_t)lc_shape_numel(&g->nodes[id].shape))
#define PV(id) (pd + g->params[g->nodes[id].param_index].offset)
#define PN(id) (r->pnew + g->params[g->nodes[id].param_index].offset)
#define PG(id) (r->pgrad + g->params[g->nodes[id].param_index].offset)
    for (int i = 0; i < nf; i++) {
        const lc_node *nd = &g->nodes[i];
        if (nd->op == LC_OP_PARAM || nd->op == LC_OP_LABELS) continue;
        size_t sz = (size_t)n * NUMEL(i);
        r->val[i] = calloc(sz + 1, sizeof(double));
        r->grad[i] = calloc(sz + 1, sizeof(double));
        const double *a = nd->n_inputs ? r->val[nd->inputs[0]] : NULL;
        const lc_shape *xs = nd->n_inputs ? &g->nodes[nd->inputs[0]].shape : NULL;
        switch (nd->op) {
        case LC_OP_INPUT: for (size_t k = 0; k < sz; k++) r->val[i][k] = x[k]; break;
        case LC_OP_MASK: for (size_t k = 0; k < sz; k++) r->val[i][k] = o->gates[i][k]; break;
        case LC_OP_GATE: /* the mask node may come later in the list: read the upload */
            for (size_t k = 0; k < sz; k++) r->val[i][k] = a[k] * o->gates[nd->inputs[1]][k];
            break;
        case LC_OP_DENSE:
            lc_ref_dense_fwd(r->val[i], a, PV(nd->inputs[1]), nd->bias ? PV(nd->inputs[2]) : NULL, n,
                             (int)NUMEL(nd->inputs[0]), nd->units);
            break;
        case LC_OP_RELU: lc_ref_relu_fwd(r->val[i], a, sz); break;
        case LC_OP_FLATTEN:
        case LC_OP_FUSED_RELU: memcpy(r->val[i], a, sz * sizeof(double)); break;
        case LC_OP_ADD: lc_ref_add_fwd(r->val[i], a, r->val[nd->inputs[1]], sz); break;
        case LC_OP_SOFTMAX_CE:
            r->loss = lc_ref_softmax_ce_fwd(r->val[i], &r->correct, a, y, n, (int)NUMEL(nd->inputs[0]));
            break;
        case LC_OP_CONV2D: {
            ref_conv c = ref_conv_of(g, nd);
            double *xp = ref_pad(a, n, &c);
            lc_ref_conv2d_fwd(r->val[i], xp, PV(nd->inputs[1]), nd->bias ? PV(nd->inputs[2]) : NULL, n, c.cin, c.hp,
                              c.wp, c.cout, c.kh, c.kw, c.sh, c.sw, 0, 0);
            free(xp);
            break;
        }
        case LC_OP_BATCHNORM: {
            int c, hw;
            ref_chan_hw(xs, &c, &hw);
            const double *gm = nd->affine ? PV(nd->inputs[3]) : NULL, *bt = nd->affine ? PV(nd->inputs[4]) : NULL;
            if (o->eval)
                lc_ref_batchnorm_fwd(r->val[i], NULL, NULL, PV(nd->inputs[1]), PV(nd->inputs[2]), a, gm, bt, n, c, hw,
                                     nd->eps, nd->momentum, false);
            else
                lc_ref_batchnorm_fwd(r->val[i], NULL, NULL, PN(nd->inputs[1]), PN(nd->inputs[2]), a, gm, bt, n, c, hw,
                                     nd->eps, nd->momentum, true);
            break;
        }
        case LC_OP_MAXPOOL:
            lc_ref_maxpool_fwd(r->val[i], a, n, xs->dims[0], xs->dims[1], xs->dims[2], nd->kh, nd->kw, nd->sh, nd->sw);
            break;
        case LC_OP_AVGPOOL:
            lc_ref_avgpool_fwd(r->val[i], a, n, xs->dims[0], xs->dims[1], xs->dims[2], nd->kh, nd->kw, nd->sh, nd->sw);
            break;
        case LC_OP_GLOBAL_AVGPOOL:
            lc_ref_global_avgpool_fwd(r->val[i], a, n, xs->dims[0], xs->dims[1] * xs->dims[2]);
            break;
        case LC_OP_DROPOUT:
            if (o->eval || !o->masks || !o->masks[i]) {
                double s = o->eval ? 1.0 : 1.0 / (1.0 - nd->rate);
                for (size_t k = 0; k < sz; k++) r->val[i][k] = a[k] * s;
            } else {
                lc_ref_dropout_fwd(r->val[i], a, o->masks[i], nd->rate, sz);
            }
            break;
        default: break;
        }
        if (nd->act_relu) lc_ref_relu_fwd(r->val[i], r->val[i], sz);
    }
    for (int i = nf - 1; i >= 0; i--) {
        const lc_node *nd = &g->nodes[i];
        if (nd->op == LC_OP_PARAM || nd->op == LC_OP_LABELS || nd->op == LC_OP_INPUT || nd->op == LC_OP_MASK) continue;
        int in0 = nd->inputs[0];
        size_t sz = (size_t)n * NUMEL(i), sz0 = (size_t)n * NUMEL(in0);
        const lc_shape *xs = &g->nodes[in0].shape;
        double *gi = r->grad[i], *masked = NULL;
        if (nd->act_relu) { /* the fused ReLU's backward first */
            masked = malloc((sz + 1) * sizeof *masked);
            for (size_t k = 0; k < sz; k++) masked[k] = r->val[i][k] > 0 ? gi[k] : 0;
            gi = masked;
        }
        double *dx = calloc(sz0 + 1, sizeof *dx); /* this node's contribution to grad[in0] */
        switch (nd->op) {
        case LC_OP_SOFTMAX_CE:
            lc_ref_softmax_ce_bwd(dx, r->val[in0], y, n, (int)NUMEL(in0));
            break;
        case LC_OP_DENSE: {
            int w = nd->inputs[1];
            lc_ref_dense_bwd(dx, PG(w), nd->bias ? PG(nd->inputs[2]) : NULL, gi, r->val[in0], PV(w), n,
                             (int)NUMEL(in0), nd->units);
            break;
        }
        case LC_OP_RELU:
            for (size_t k = 0; k < sz; k++) dx[k] = r->val[i][k] > 0 ? gi[k] : 0;
            break;
        case LC_OP_GATE:
            for (size_t k = 0; k < sz; k++) dx[k] = gi[k] * o->gates[nd->inputs[1]][k];
            break;
        case LC_OP_FLATTEN:
        case LC_OP_FUSED_RELU:
            for (size_t k = 0; k < sz; k++) dx[k] = gi[k];
            break;
        case LC_OP_ADD:
            for (size_t k = 0; k < sz; k++) { dx[k] = gi[k]; r->grad[nd->inputs[1]][k] += gi[k]; }
            break;
        case LC_OP_CONV2D: {
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
            break;
        }
        case LC_OP_BATCHNORM: {
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
            break;
        }
        case LC_OP_MAXPOOL:
            lc_ref_maxpool_bwd(dx, gi, r->val[in0], n, xs->dims[0], xs->dims[1], xs->dims[2], nd->kh, nd->kw, nd->sh,
                               nd->sw);
            break;
        case LC_OP_AVGPOOL:
            lc_ref_avgpool_bwd(dx, gi, n, xs->dims[0], xs->dims[1], xs->dims[2], nd->kh, nd->kw, nd->sh, nd->sw);
            break;
        case LC_OP_GLOBAL_AVGPOOL:
            lc_ref_global_avgpool_bwd(dx, gi, n, xs->dims[0], xs->dims[1] * xs->dims[2]);
            break;
        case LC_OP_DROPOUT:
            if (o->eval || !o->masks || !o->masks[i]) {
                double s = o->eval ? 1.0 : 1.0 / (1.0 - nd->rate);
                for (size_t k = 0; k < sz; k++) dx[k] = gi[k] * s;
            } else {
                lc_ref_dropout_bwd(dx, gi, o->masks[i], nd->rate, sz);
            }
            break;
        default: break;
        }
        if (r->grad[in0])
            for (size_t k = 0; k < sz0; k++) r->grad[in0][k] += dx[k];
        free(dx);
        free(masked);
    }
    free(pd);
#undef NUMEL
#undef PV
#undef PN
#undef PG
}

static inline void ref_run_graph(ref_run *r, const lc_graph *g, const float *params, const float *x,
                                 const int32_t *y, int n)
{
    ref_run_graph_opts(r, g, params, x, y, n, NULL);
}

/* max |a-b| / max |b| over n values */
static inline double ref_rel_err_f(const float *a, const double *b, size_t n)
{
    double md = 0, mb = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > md || d != d) md = d != d ? INFINITY : d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / mb;
}

#endif

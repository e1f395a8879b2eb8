/* A double-precision interpreter of forward graphs for tests: runs the
 * forward pass with the reference ops and differentiates it by walking the
 * forward nodes backwards (independently of the IR's autodiff). */
#ifndef LC_REF_GRAPH_H
#define LC_REF_GRAPH_H

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
} ref_run;

static inline void ref_run_free(ref_run *r, const lc_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) { free(r->val[i]); free(r->grad[i]); }
    free(r->val); free(r->grad); free(r->pgrad);
}

/* params: arena layout (floats) of g; x: n * input numel; y: n labels. */
static inline void ref_run_graph(ref_run *r, const lc_graph *g, const float *params, const float *x,
                                 const int32_t *y, int n)
{
    int nf = g->n_forward ? g->n_forward : g->n_nodes;
    r->n = n;
    r->val = calloc((size_t)g->n_nodes, sizeof *r->val);
    r->grad = calloc((size_t)g->n_nodes, sizeof *r->grad);
    r->pgrad = calloc((size_t)g->param_floats + 1, sizeof *r->pgrad);
    double *pd = malloc(((size_t)g->param_floats + 1) * sizeof *pd);
    for (int64_t i = 0; i < g->param_floats; i++) pd[i] = params[i];
#define NUMEL(id) ((size_t)lc_shape_numel(&g->nodes[id].shape))
#define PV(id) (pd + g->params[g->nodes[id].param_index].offset)
#define PG(id) (r->pgrad + g->params[g->nodes[id].param_index].offset)
    for (int i = 0; i < nf; i++) {
        const lc_node *nd = &g->nodes[i];
        if (nd->op == LC_OP_PARAM || nd->op == LC_OP_LABELS) continue;
        size_t sz = (size_t)n * NUMEL(i);
        r->val[i] = calloc(sz + 1, sizeof(double));
        r->grad[i] = calloc(sz + 1, sizeof(double));
        const double *a = nd->n_inputs ? r->val[nd->inputs[0]] : NULL;
        switch (nd->op) {
        case LC_OP_INPUT: for (size_t k = 0; k < sz; k++) r->val[i][k] = x[k]; break;
        case LC_OP_DENSE:
            lc_ref_dense_fwd(r->val[i], a, PV(nd->inputs[1]), nd->bias ? PV(nd->inputs[2]) : NULL, n,
                             (int)NUMEL(nd->inputs[0]), nd->units);
            break;
        case LC_OP_RELU: lc_ref_relu_fwd(r->val[i], a, sz); break;
        case LC_OP_FLATTEN: memcpy(r->val[i], a, sz * sizeof(double)); break;
        case LC_OP_ADD: lc_ref_add_fwd(r->val[i], a, r->val[nd->inputs[1]], sz); break;
        case LC_OP_SOFTMAX_CE:
            r->loss = lc_ref_softmax_ce_fwd(r->val[i], &r->correct, a, y, n, (int)NUMEL(nd->inputs[0]));
            break;
        default: break;
        }
    }
    for (int i = nf - 1; i >= 0; i--) {
        const lc_node *nd = &g->nodes[i];
        if (nd->op == LC_OP_PARAM || nd->op == LC_OP_LABELS || nd->op == LC_OP_INPUT) continue;
        int in0 = nd->inputs[0];
        size_t sz = (size_t)n * NUMEL(i);
        double *gi = r->grad[i];
        switch (nd->op) {
        case LC_OP_SOFTMAX_CE: {
            double *t = malloc(sz * NUMEL(in0) * sizeof *t + 8);
            lc_ref_softmax_ce_bwd(t, r->val[in0], y, n, (int)NUMEL(in0));
            for (size_t k = 0; k < (size_t)n * NUMEL(in0); k++) r->grad[in0][k] += t[k];
            free(t);
            break;
        }
        case LC_OP_DENSE: {
            int w = nd->inputs[1];
            size_t nin = NUMEL(in0);
            double *dx = calloc((size_t)n * nin, sizeof *dx);
            lc_ref_dense_bwd(dx, PG(w), nd->bias ? PG(nd->inputs[2]) : NULL, gi, r->val[in0], PV(w), n, (int)nin,
                             nd->units);
            for (size_t k = 0; k < (size_t)n * nin; k++) r->grad[in0][k] += dx[k];
            free(dx);
            break;
        }
        case LC_OP_RELU:
            for (size_t k = 0; k < sz; k++) r->grad[in0][k] += r->val[i][k] > 0 ? gi[k] : 0;
            break;
        case LC_OP_FLATTEN:
            for (size_t k = 0; k < sz; k++) r->grad[in0][k] += gi[k];
            break;
        case LC_OP_ADD:
            for (size_t k = 0; k < sz; k++) { r->grad[in0][k] += gi[k]; r->grad[nd->inputs[1]][k] += gi[k]; }
            break;
        default: break;
        }
    }
    free(pd);
#undef NUMEL
#undef PV
#undef PG
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

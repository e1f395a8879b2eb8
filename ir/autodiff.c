/* Reverse-mode autodiff and dead-code elimination. */
#include "lc_ir.h"

#include <stdlib.h>
#include <string.h>

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

lc_status lc_graph_autodiff(lc_graph *g)
{
    if (g->loss < 0) return LC_ERR(LC_ERR_INVALID, "graph '%s' has no loss to differentiate", g->name);
    int nf = g->n_nodes;
    g->n_forward = nf;
    for (int i = 0; i < nf; i++) g->nodes[i].grad = -1;
    for (int i = 0; i < g->n_params; i++) g->params[i].grad_node = -1;

    for (int i = nf - 1; i >= 0; i--) {
        /* copy: adding nodes may move g->nodes */
        lc_node n = g->nodes[i];
        int x = n.n_inputs > 0 ? n.inputs[0] : -1;
        if (n.op == LC_OP_SOFTMAX_CE) {
            if (i != g->loss || !g->nodes[x].needs_grad) continue;
            int ins[2] = {x, n.inputs[1]};
            LC_TRY(add_grad(g, x, add_bwd(g, LC_OP_SOFTMAX_CE_DX, x, "grad", ins, 2, &g->nodes[x].shape, true)));
            continue;
        }
        int gi = n.grad;
        if (gi < 0) continue;
        if (n.act_relu) {
            /* a fused ReLU: the gradient of the op's own result is the
             * incoming one where the (fused) output is positive */
            int ins[2] = {gi, i};
            gi = add_bwd(g, LC_OP_RELU_DX, i, "grad_relu", ins, 2, &g->nodes[i].shape, true);
            if (gi < 0) return LC_ERR_NOMEM;
        }
        switch (n.op) {
        case LC_OP_DENSE: {
            int w = n.inputs[1];
            if (g->nodes[x].needs_grad) {
                int ins[2] = {gi, w};
                LC_TRY(add_grad(g, x, add_bwd(g, LC_OP_DENSE_DX, x, "grad", ins, 2, &g->nodes[x].shape, true)));
            }
            if (g->nodes[w].trainable) {
                int ins[2] = {gi, x};
                int dw = add_bwd(g, LC_OP_DENSE_DW, w, "grad", ins, 2, &g->nodes[w].shape, false);
                if (dw < 0) return LC_ERR_NOMEM;
                g->params[g->nodes[w].param_index].grad_node = dw;
            }
            if (n.bias && g->nodes[n.inputs[2]].trainable) {
                int b = n.inputs[2];
                int db = add_bwd(g, LC_OP_BIAS_DB, b, "grad", &gi, 1, &g->nodes[b].shape, false);
                if (db < 0) return LC_ERR_NOMEM;
                g->params[g->nodes[b].param_index].grad_node = db;
            }
            break;
        }
        case LC_OP_RELU:
            if (g->nodes[x].needs_grad) {
                int ins[2] = {gi, i};
                LC_TRY(add_grad(g, x, add_bwd(g, LC_OP_RELU_DX, x, "grad", ins, 2, &g->nodes[x].shape, true)));
            }
            break;
        case LC_OP_GATE:
            /* d(x * mask)/dx = mask: the same op on the gradient */
            if (g->nodes[x].needs_grad) {
                int ins[2] = {gi, n.inputs[1]};
                LC_TRY(add_grad(g, x, add_bwd(g, LC_OP_GATE, x, "grad", ins, 2, &g->nodes[x].shape, true)));
            }
            break;
        case LC_OP_FUSED_RELU: /* the producer applied the ReLU: its gradient is this one */
            if (g->nodes[x].needs_grad) LC_TRY(add_grad(g, x, gi));
            break;
        case LC_OP_FLATTEN:
            if (g->nodes[x].needs_grad)
                LC_TRY(add_grad(g, x, add_bwd(g, LC_OP_RESHAPE, x, "grad", &gi, 1, &g->nodes[x].shape, true)));
            break;
        case LC_OP_ADD:
            for (int k = 0; k < 2; k++)
                if (g->nodes[n.inputs[k]].needs_grad) LC_TRY(add_grad(g, n.inputs[k], gi));
            break;
        case LC_OP_CONV2D: {
            int w = n.inputs[1];
            if (g->nodes[x].needs_grad) {
                int ins[2] = {gi, w};
                int dx = add_bwd(g, LC_OP_CONV2D_DX, x, "grad", ins, 2, &g->nodes[x].shape, true);
                if (dx >= 0) g->nodes[dx].fwd = i;
                LC_TRY(add_grad(g, x, dx));
            }
            if (g->nodes[w].trainable) {
                int ins[2] = {gi, x};
                int dw = add_bwd(g, LC_OP_CONV2D_DW, w, "grad", ins, 2, &g->nodes[w].shape, false);
                if (dw < 0) return LC_ERR_NOMEM;
                g->nodes[dw].fwd = i;
                g->params[g->nodes[w].param_index].grad_node = dw;
            }
            if (n.bias && g->nodes[n.inputs[2]].trainable) {
                int b = n.inputs[2];
                int db = add_bwd(g, LC_OP_CHANNEL_DB, b, "grad", &gi, 1, &g->nodes[b].shape, false);
                if (db < 0) return LC_ERR_NOMEM;
                g->nodes[db].fwd = i;
                g->params[g->nodes[b].param_index].grad_node = db;
            }
            break;
        }
        case LC_OP_BATCHNORM: {
            if (g->nodes[x].needs_grad) {
                int ins[2] = {gi, x};
                int dx = add_bwd(g, LC_OP_BATCHNORM_DX, x, "grad", ins, 2, &g->nodes[x].shape, true);
                if (dx >= 0) g->nodes[dx].fwd = i;
                LC_TRY(add_grad(g, x, dx));
            }
            if (n.affine && g->nodes[n.inputs[3]].trainable) {
                int gm = n.inputs[3];
                int ins[2] = {gi, x};
                int dg = add_bwd(g, LC_OP_BATCHNORM_DGAMMA, gm, "grad", ins, 2, &g->nodes[gm].shape, false);
                if (dg < 0) return LC_ERR_NOMEM;
                g->nodes[dg].fwd = i;
                g->params[g->nodes[gm].param_index].grad_node = dg;
            }
            if (n.affine && g->nodes[n.inputs[4]].trainable) {
                int bt = n.inputs[4];
                int db = add_bwd(g, LC_OP_CHANNEL_DB, bt, "grad", &gi, 1, &g->nodes[bt].shape, false);
                if (db < 0) return LC_ERR_NOMEM;
                g->nodes[db].fwd = i;
                g->params[g->nodes[bt].param_index].grad_node = db;
            }
            break;
        }
        case LC_OP_MAXPOOL:
            if (g->nodes[x].needs_grad) {
                int ins[2] = {gi, x};
                int dx = add_bwd(g, LC_OP_MAXPOOL_DX, x, "grad", ins, 2, &g->nodes[x].shape, true);
                if (dx >= 0) g->nodes[dx].fwd = i;
                LC_TRY(add_grad(g, x, dx));
            }
            break;
        case LC_OP_AVGPOOL:
        case LC_OP_GLOBAL_AVGPOOL:
        case LC_OP_DROPOUT:
            if (g->nodes[x].needs_grad) {
                lc_op op = n.op == LC_OP_AVGPOOL ? LC_OP_AVGPOOL_DX
                           : n.op == LC_OP_DROPOUT ? LC_OP_DROPOUT_DX : LC_OP_GLOBAL_AVGPOOL_DX;
                int dx = add_bwd(g, op, x, "grad", &gi, 1, &g->nodes[x].shape, true);
                if (dx >= 0) g->nodes[dx].fwd = i;
                LC_TRY(add_grad(g, x, dx));
            }
            break;
        default:
            break;
        }
    }
    return LC_OK;
}

lc_status lc_graph_dce(lc_graph *g)
{
    int n = g->n_nodes, nf = g->n_forward ? g->n_forward : n;
    char *live = calloc((size_t)n, 1);
    int *remap = malloc((size_t)n * sizeof *remap);
    if (!live || !remap) { free(live); free(remap); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < nf; i++) live[i] = 1;
    for (int p = 0; p < g->n_params; p++)
        if (g->params[p].grad_node >= 0) live[g->params[p].grad_node] = 1;
    for (int i = n - 1; i >= nf; i--)
        if (live[i])
            for (int k = 0; k < g->nodes[i].n_inputs; k++) live[g->nodes[i].inputs[k]] = 1;
    int m = 0;
    for (int i = 0; i < n; i++) {
        remap[i] = live[i] ? m : -1;
        if (live[i]) g->nodes[m++] = g->nodes[i];
    }
    for (int i = 0; i < m; i++) {
        lc_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_inputs; k++) nd->inputs[k] = remap[nd->inputs[k]];
        if (nd->grad >= 0) nd->grad = remap[nd->grad];
        if (nd->grad_of >= 0) nd->grad_of = remap[nd->grad_of];
        if (nd->owner >= 0) nd->owner = remap[nd->owner];
        if (nd->fwd >= 0) nd->fwd = remap[nd->fwd];
    }
    for (int p = 0; p < g->n_params; p++) {
        g->params[p].node = remap[g->params[p].node];
        if (g->params[p].grad_node >= 0) g->params[p].grad_node = remap[g->params[p].grad_node];
    }
    g->n_nodes = m;
    free(live);
    free(remap);
    return LC_OK;
}

/* Dead-code elimination of backward nodes (autodiff itself: ir/ops.c, from
 * the registry's gradient rules). */
#include "lc_ir.h"

#include <stdlib.h>
#include <string.h>

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

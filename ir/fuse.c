/* Elementwise fusion: ReLUs folded into the dense, conv2d and batchnorm
 * nodes that produce their input. */
#include "lc_ir.h"

#include <stdlib.h>

int lc_graph_fuse(lc_graph *g)
{
    int n = g->n_nodes, fused = 0;
    /* consumers per node (a node using a value twice counts twice) */
    int *uses = calloc((size_t)(n ? n : 1), sizeof *uses);
    if (!uses) {
        LC_ERR(LC_ERR_NOMEM, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++) uses[g->nodes[i].inputs[k]]++;
    for (int i = 0; i < n; i++) {
        lc_node *r = &g->nodes[i];
        if (r->op != LC_OP_RELU || r->n_inputs != 1) continue;
        int p = r->inputs[0];
        lc_node *pn = &g->nodes[p];
        bool producer = pn->op == LC_OP_DENSE || pn->op == LC_OP_CONV2D || pn->op == LC_OP_BATCHNORM;
        /* the producer's own value disappears: nobody else may read it */
        if (!producer || pn->act_relu || uses[p] != 1 || pn->keep_value || p == g->logits || !pn->batched) continue;
        pn->act_relu = true;
        r->op = LC_OP_FUSED_RELU;
        fused++;
    }
    free(uses);
    return fused;
}

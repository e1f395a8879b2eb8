/* Liveness-based static memory plan for the activation arena, and the
 * compile pipeline. */
#include "lc_ir.h"

#include <stdlib.h>
#include <string.h>

/* True for values that live in the activation arena. */
static bool in_arena(const lc_graph *g, const lc_node *n)
{
    if (n->op == LC_OP_PARAM) return false;
    if (!n->batched) return false; /* parameter gradients live beside the parameters */
    if (lc_op_kind(n->op) == 'V') return false;
    (void)g;
    return true;
}

typedef struct { int id; int64_t size; } plan_item;

static int by_size_desc(const void *a, const void *b)
{
    const plan_item *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->id - y->id;
}

lc_status lc_graph_plan(lc_graph *g, int batch)
{
    if (batch <= 0) return LC_ERR(LC_ERR_INVALID, "batch size must be positive, got %d", batch);
    int n = g->n_nodes;
    for (int i = 0; i < n; i++) {
        g->nodes[i].def = (lc_op_kind(g->nodes[i].op) == 'D') ? 0 : i;
        g->nodes[i].last_use = i;
        g->nodes[i].offset = -1;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++) {
            int r = lc_graph_storage_root(g, g->nodes[i].inputs[k]);
            if (g->nodes[r].last_use < i) g->nodes[r].last_use = i;
        }
    if (g->loss >= 0) g->nodes[g->loss].last_use = n; /* read after the step */
    if (g->logits >= 0) {
        int r = lc_graph_storage_root(g, g->logits);
        g->nodes[r].last_use = n;
    }

    plan_item *items = malloc((size_t)n * sizeof *items);
    int *placed = malloc((size_t)n * sizeof *placed);
    if (!items || !placed) { free(items); free(placed); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (in_arena(g, &g->nodes[i])) {
            int64_t s = (int64_t)batch * lc_shape_numel(&g->nodes[i].shape);
            items[m++] = (plan_item){i, (s + LC_ACT_ALIGN - 1) / LC_ACT_ALIGN * LC_ACT_ALIGN};
        }
    qsort(items, (size_t)m, sizeof *items, by_size_desc);
    int64_t peak = 0;
    int np = 0;
    for (int a = 0; a < m; a++) {
        lc_node *v = &g->nodes[items[a].id];
        int64_t off = 0;
        /* First fit: bump past every overlapping (in time and space) value
         * until a gap is found.  Sizes are few, so the quadratic loop is fine. */
        bool moved = true;
        while (moved) {
            moved = false;
            for (int b = 0; b < np; b++) {
                lc_node *u = &g->nodes[placed[b]];
                int64_t us = (int64_t)batch * lc_shape_numel(&u->shape);
                us = (us + LC_ACT_ALIGN - 1) / LC_ACT_ALIGN * LC_ACT_ALIGN;
                bool time = !(u->last_use < v->def || v->last_use < u->def);
                bool space = !(u->offset + us <= off || off + items[a].size <= u->offset);
                if (time && space) { off = u->offset + us; moved = true; }
            }
        }
        v->offset = off;
        placed[np++] = items[a].id;
        if (off + items[a].size > peak) peak = off + items[a].size;
    }
    /* views take their root's offset */
    for (int i = 0; i < n; i++)
        if (lc_op_kind(g->nodes[i].op) == 'V') {
            int r = lc_graph_storage_root(g, i);
            g->nodes[i].offset = g->nodes[r].offset;
        }
    free(items);
    free(placed);
    g->planned_batch = batch;
    g->act_floats = peak;
    return LC_OK;
}

lc_status lc_graph_compile(lc_graph *g, int batch, bool train, FILE *dump)
{
    LC_TRY(lc_graph_infer(g));
    LC_TRY(lc_graph_verify(g));
    if (dump) lc_graph_dump(g, dump, "after shape inference");
    if (train) {
        LC_TRY(lc_graph_autodiff(g));
        if (dump) lc_graph_dump(g, dump, "after autodiff");
        LC_TRY(lc_graph_dce(g));
        LC_TRY(lc_graph_verify(g));
        if (dump) lc_graph_dump(g, dump, "after dead-code elimination");
    } else {
        g->n_forward = g->n_nodes;
    }
    LC_TRY(lc_graph_plan(g, batch));
    if (dump) lc_graph_dump(g, dump, "after memory planning");
    return LC_OK;
}

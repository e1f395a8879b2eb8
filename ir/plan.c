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

/* One block to place: a node's value or its auxiliary storage. */
typedef struct plan_item {
    int id;
    bool aux;
    int64_t size;       /* floats, aligned */
    int def, last;
    int64_t offset;
} plan_item;

static int by_size_desc(const void *a, const void *b)
{
    const plan_item *x = *(plan_item *const *)a, *y = *(plan_item *const *)b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    if (x->id != y->id) return x->id - y->id;
    return (int)x->aux - (int)y->aux;
}

static int by_offset(const void *a, const void *b)
{
    const plan_item *x = *(plan_item *const *)a, *y = *(plan_item *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int64_t align_act(int64_t s) { return (s + LC_ACT_ALIGN - 1) / LC_ACT_ALIGN * LC_ACT_ALIGN; }

lc_status lc_graph_plan(lc_graph *g, int batch)
{
    if (batch <= 0) return LC_ERR(LC_ERR_INVALID, "batch size must be positive, got %d", batch);
    int n = g->n_nodes;
    for (int i = 0; i < n; i++) {
        lc_node *nd = &g->nodes[i];
        nd->def = (lc_op_kind(nd->op) == 'D') ? 0 : i;
        nd->last_use = i;
        nd->offset = -1;
        nd->aux_floats = g->aux_fn ? g->aux_fn(g, i, batch) : 0;
        nd->aux_offset = -1;
        nd->aux_last = i;
    }
    for (int i = 0; i < n; i++) {
        const lc_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_inputs; k++) {
            int r = lc_graph_storage_root(g, nd->inputs[k]);
            if (g->nodes[r].last_use < i) g->nodes[r].last_use = i;
        }
        /* batchnorm backward nodes read the forward node's statistics */
        if ((nd->op == LC_OP_BATCHNORM_DX || nd->op == LC_OP_BATCHNORM_DGAMMA) && nd->fwd >= 0 &&
            g->nodes[nd->fwd].aux_last < i)
            g->nodes[nd->fwd].aux_last = i;
        /* gamma's and beta's gradients are taken from the input gradient's
         * sums when there is one (it comes first) */
        if ((nd->op == LC_OP_BATCHNORM_DGAMMA || nd->op == LC_OP_CHANNEL_DB) && nd->fwd >= 0 &&
            g->nodes[nd->fwd].op == LC_OP_BATCHNORM) {
            int dx = lc_graph_bn_dx_of(g, nd->fwd);
            if (dx >= 0 && dx < i && g->nodes[dx].aux_last < i) g->nodes[dx].aux_last = i;
        }
    }
    /* the uploaded batch (examples, labels) stays intact for the whole step,
     * so passes can be replayed on it without uploading it again */
    for (int i = 0; i < n; i++)
        if (lc_op_kind(g->nodes[i].op) == 'D') g->nodes[i].last_use = n;
    if (g->loss >= 0) g->nodes[g->loss].last_use = n; /* read after the step */
    for (int i = 0; i < n; i++) {
        if (!g->nodes[i].keep_value) continue;
        g->nodes[lc_graph_storage_root(g, i)].last_use = n;
        if (g->nodes[i].grad >= 0) g->nodes[lc_graph_storage_root(g, g->nodes[i].grad)].last_use = n;
    }
    if (g->logits >= 0) {
        int r = lc_graph_storage_root(g, g->logits);
        g->nodes[r].last_use = n;
    }

    plan_item *items = malloc((size_t)(2 * n + 1) * sizeof *items);
    plan_item **order = malloc((size_t)(2 * n + 1) * sizeof *order);
    plan_item **conf = malloc((size_t)(2 * n + 1) * sizeof *conf);
    if (!items || !order || !conf) {
        free(items); free(order); free(conf);
        return LC_ERR(LC_ERR_NOMEM, "out of memory");
    }
    int m = 0;
    g->aux_peak_floats = 0;
    for (int i = 0; i < n; i++) {
        const lc_node *nd = &g->nodes[i];
        if (in_arena(g, nd)) {
            int64_t s = (int64_t)batch * lc_shape_numel(&nd->shape);
            items[m++] = (plan_item){i, false, align_act(s), nd->def, nd->last_use, -1};
        }
        if (nd->aux_floats > 0) {
            items[m++] = (plan_item){i, true, align_act(nd->aux_floats), i, nd->aux_last, -1};
            if (nd->aux_floats > g->aux_peak_floats) g->aux_peak_floats = nd->aux_floats;
        }
    }
    /* Offsets never exceed the sum of the sizes: bound it so that no offset
     * (or byte count) can overflow. */
    int64_t total = 0;
    for (int a = 0; a < m; a++) {
        if (items[a].size > LC_MAX_ARENA_FLOATS - total) {
            free(items); free(order); free(conf);
            return LC_ERR(LC_ERR_INVALID, "graph '%s': the activations of batch %d would need more than %lld floats "
                          "(%.3g GiB); use a smaller batch or model", g->name, batch, (long long)LC_MAX_ARENA_FLOATS,
                          (double)LC_MAX_ARENA_FLOATS * 4 / 1073741824.0);
        }
        total += items[a].size;
    }
    for (int a = 0; a < m; a++) order[a] = &items[a];
    qsort(order, (size_t)m, sizeof *order, by_size_desc);
    int64_t peak = 0;
    /* Largest first, each at the lowest offset that does not collide with an
     * already placed block alive at the same time. */
    for (int a = 0; a < m; a++) {
        plan_item *v = order[a];
        int nc = 0;
        for (int b = 0; b < a; b++) {
            plan_item *u = order[b];
            if (!(u->last < v->def || v->last < u->def)) conf[nc++] = u;
        }
        qsort(conf, (size_t)nc, sizeof *conf, by_offset);
        int64_t off = 0;
        for (int b = 0; b < nc; b++) {
            if (conf[b]->offset >= off + v->size) break; /* the gap before it fits */
            if (conf[b]->offset + conf[b]->size > off) off = conf[b]->offset + conf[b]->size;
        }
        v->offset = off;
        if (off + v->size > peak) peak = off + v->size;
    }
    for (int a = 0; a < m; a++) {
        lc_node *nd = &g->nodes[items[a].id];
        if (items[a].aux) nd->aux_offset = items[a].offset;
        else nd->offset = items[a].offset;
    }
    /* views take their root's offset */
    for (int i = 0; i < n; i++)
        if (lc_op_kind(g->nodes[i].op) == 'V') {
            int r = lc_graph_storage_root(g, i);
            g->nodes[i].offset = g->nodes[r].offset;
        }
    free(items);
    free(order);
    free(conf);
    g->planned_batch = batch;
    g->act_floats = peak;
    return LC_OK;
}

lc_status lc_graph_compile(lc_graph *g, int batch, bool train, FILE *dump)
{
    LC_TRY(lc_graph_infer(g));
    LC_TRY(lc_graph_verify(g));
    if (dump) lc_graph_dump(g, dump, "after shape inference");
    if (!g->no_fusion) {
        if (lc_graph_fuse(g) < 0) return LC_ERR_NOMEM;
        if (dump) lc_graph_dump(g, dump, "after fusion");
    }
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

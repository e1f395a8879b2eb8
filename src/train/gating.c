/* Fixed gating (the paper's "prevent feedback improvement"): with the
 * initial weights, an ungated copy of the model runs over every split and
 * each ReLU's on/off pattern per example is recorded; the model's ReLUs
 * (except `keep`) then become gates fed by those patterns. */
#include "trainer_internal.h"

#include <stdlib.h>
#include <string.h>

const lc_dataset *lc_trainer_split(lc_trainer *t, int split)
{
    return split == 0 ? &t->train : split == 1 ? &t->val : &t->test;
}

void lc_gating_free(lc_gating *g)
{
    for (int s = 0; s < 3; s++) {
        for (int k = 0; g->bits[s] && k < g->n; k++) free(g->bits[s][k]);
        free(g->bits[s]);
    }
    free(g->mask);
    free(g->numel);
    free(g->buf);
    memset(g, 0, sizeof *g);
}

lc_status lc_gating_upload(lc_trainer *t, int split, const int32_t *idx, int n)
{
    lc_gating *gt = &t->gate;
    for (int k = 0; k < gt->n; k++) {
        int64_t m = gt->numel[k];
        for (int i = 0; i < n; i++) {
            const uint8_t *b = gt->bits[split][k] + (int64_t)idx[i] * m;
            float *d = gt->buf + (int64_t)i * m;
            for (int64_t j = 0; j < m; j++) d[j] = (float)b[j];
        }
        LC_TRY(lc_exec_set_input(t->ex, gt->mask[k], gt->buf, n));
    }
    return LC_OK;
}

/* Records the patterns of split s with the ungated executor ex2. */
static lc_status record_split(lc_trainer *t, lc_exec *ex2, lc_graph *g2, const int *relu, int s, float *out)
{
    lc_gating *gt = &t->gate;
    const lc_dataset *d = lc_trainer_split(t, s);
    int64_t es = lc_dataset_example_size(d);
    for (int k = 0; k < gt->n; k++) {
        gt->bits[s][k] = malloc((size_t)(d->n * gt->numel[k]) + 1);
        if (!gt->bits[s][k]) return LC_ERR(LC_ERR_NOMEM, "out of memory for the gating masks");
    }
    for (int64_t i = 0; i < d->n; i += t->batch) {
        int nb = (int)LC_MIN((int64_t)t->batch, d->n - i);
        LC_TRY(lc_exec_set_batch(ex2, d->x + i * es, d->y + i, nb));
        LC_TRY(lc_exec_forward(ex2));
        for (int k = 0; k < gt->n; k++) {
            int id = lc_graph_find(g2, t->g->nodes[relu[k]].name);
            LC_TRY(lc_exec_read_node(ex2, id, out));
            uint8_t *b = gt->bits[s][k] + i * gt->numel[k];
            for (int64_t j = 0; j < nb * gt->numel[k]; j++) b[j] = out[j] > 0.0f;
        }
    }
    return LC_OK;
}

lc_status lc_gating_setup(lc_trainer *t, const float *params, int keep)
{
    lc_graph *g = t->g, *g2 = NULL;
    lc_gating *gt = &t->gate;
    lc_exec *ex2 = NULL;
    lc_status st;
    int *relu = malloc((size_t)g->n_nodes * sizeof *relu);
    int *mask_of = malloc((size_t)g->n_nodes * sizeof *mask_of);
    float *out = NULL;
    if (!relu || !mask_of) { st = LC_ERR(LC_ERR_NOMEM, "out of memory"); goto done; }
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == LC_OP_RELU && i != keep) relu[n++] = i;
    gt->n = n;
    gt->mask = calloc((size_t)(n ? n : 1), sizeof *gt->mask);
    gt->numel = calloc((size_t)(n ? n : 1), sizeof *gt->numel);
    for (int s = 0; s < 3; s++) gt->bits[s] = calloc((size_t)(n ? n : 1), sizeof(uint8_t *));
    int64_t widest = 1;
    for (int k = 0; k < n; k++) {
        gt->numel[k] = lc_shape_numel(&g->nodes[relu[k]].shape);
        widest = LC_MAX(widest, gt->numel[k]);
    }
    gt->buf = malloc((size_t)(t->batch * widest) * sizeof(float));
    out = malloc((size_t)(t->batch * widest) * sizeof(float));
    if (!gt->mask || !gt->numel || !gt->bits[0] || !gt->bits[1] || !gt->bits[2] || !gt->buf || !out) {
        st = LC_ERR(LC_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* the same model, ungated, forward only; parameters share the layout */
    if ((st = lc_model_load(t->o.model_path, &g2, NULL)) != LC_OK) goto done;
    for (int k = 0; k < n; k++) {
        /* read after the whole forward pass: keep them from being reused */
        int id = lc_graph_find(g2, g->nodes[relu[k]].name);
        if (id >= 0) g2->nodes[id].keep_value = true;
    }
    if ((st = lc_exec_compile(g2, t->batch, false, NULL)) != LC_OK) goto done;
    lc_exec_opts xo = {.host_conv = t->o.host_conv};
    if ((st = lc_exec_create_opts(&ex2, t->rt, g2, &xo)) != LC_OK) goto done;
    if ((st = lc_exec_set_mode(ex2, false)) != LC_OK) goto done;
    if ((st = lc_exec_write_params(ex2, params)) != LC_OK) goto done;
    for (int s = 0; s < 3 && st == LC_OK; s++) st = record_split(t, ex2, g2, relu, s, out);
    if (st != LC_OK) goto done;
    if (lc_graph_gate_relus(g, keep, mask_of) != n) { st = LC_ERR(LC_ERR_INVALID, "gating the ReLUs failed"); goto done; }
    for (int k = 0; k < n; k++) gt->mask[k] = mask_of[relu[k]];
    LC_INFO("fixed gating: %d ReLUs hold their initial on/off pattern%s%s", n, keep >= 0 ? "; free: " : "",
            keep >= 0 ? g->nodes[keep].name : "");
    st = LC_OK;
done:
    lc_exec_destroy(ex2);
    lc_graph_destroy(g2);
    free(out);
    free(relu);
    free(mask_of);
    return st;
}

/* Fuzz target: model JSON (lc_model_parse), then the whole compile pipeline
 * (shape inference, verifier, autodiff, DCE, memory plan) on what parses,
 * with checks of the plan and of the initial parameter values. */
#include <math.h>
#include <stdlib.h>

#include "lc_fuzz.h"
#include "lc_model.h"

static bool in_arena(const lc_node *n)
{
    return n->op != LC_OP_PARAM && n->batched && lc_op_kind(n->op) != 'V';
}

typedef struct block {
    int64_t off, size;
    int def, last;
} block;

/* Values alive at the same time never share memory, and everything lies in
 * the arena. */
static const char *check_plan(const lc_graph *g, int batch)
{
    if (g->planned_batch != batch) return "the plan is not for the batch asked";
    if (g->act_floats < 0) return "negative arena size";
    block *b = malloc((size_t)(2 * g->n_nodes + 1) * sizeof *b);
    if (!b) return NULL;
    int m = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const lc_node *n = &g->nodes[i];
        if (in_arena(n)) {
            if (n->offset < 0) { free(b); return "a value without a place in the arena"; }
            b[m++] = (block){n->offset, batch * lc_shape_numel(&n->shape), n->def, n->last_use};
        }
        if (n->aux_floats > 0) {
            if (n->aux_offset < 0) { free(b); return "an auxiliary block without a place"; }
            b[m++] = (block){n->aux_offset, n->aux_floats, n->def, n->aux_last};
        }
    }
    const char *why = NULL;
    for (int i = 0; i < m && !why; i++) {
        if (b[i].off + b[i].size > g->act_floats) why = "a block ends past the arena";
        if (m > 2000) continue; /* the pairwise check is quadratic */
        for (int j = 0; j < i && !why; j++) {
            bool live = !(b[i].last < b[j].def || b[j].last < b[i].def);
            bool mem = b[i].off < b[j].off + b[j].size && b[j].off < b[i].off + b[i].size;
            if (live && mem) why = "two blocks alive at the same time overlap";
        }
    }
    free(b);
    return why;
}

static const char *check_params(const lc_graph *g)
{
    int64_t end = 0;
    for (int i = 0; i < g->n_params; i++) {
        const lc_param *p = &g->params[i];
        if (p->offset % LC_PARAM_ALIGN) return "a parameter that is not aligned";
        if (p->offset < end) return "parameters overlap";
        if (p->numel <= 0 || p->numel > LC_MAX_NUMEL) return "a parameter size out of range";
        end = p->offset + p->numel;
    }
    if (end > g->param_floats) return "a parameter ends past the arena";
    if (g->param_floats > ((int64_t)1 << 20)) return NULL; /* not worth allocating here */
    float *w = malloc((size_t)(g->param_floats ? g->param_floats : 1) * sizeof *w);
    if (!w) return NULL;
    lc_graph_init_params(g, w, 7);
    const char *why = NULL;
    for (int64_t k = 0; k < g->param_floats && !why; k++)
        if (!isfinite(w[k])) why = "an initial parameter value is not finite";
    free(w);
    return why;
}

const char *lc_fuzz_model(const uint8_t *data, size_t size)
{
    char *text = (char *)lc_fuzz_copy(data, size);
    if (!text) return NULL;
    lc_graph *g = (lc_graph *)text; /* must be reset */
    lc_train_spec ts;
    const char *why = NULL;
    lc_error_clear();
    lc_status st = lc_model_parse(text, size, "fuzz.json", &g, &ts);
    if (st != LC_OK) {
        why = lc_fuzz_check_error(st);
        if (!why && g) why = "*out is not NULL after an error";
        g = NULL;
        goto done;
    }
    if (!g || g->input < 0 || g->loss < 0 || g->logits < 0) {
        why = "a model without input, logits or loss";
        goto done;
    }
    for (int k = 1; k < ts.n_milestones; k++)
        if (ts.milestones[k] <= ts.milestones[k - 1]) why = "milestones that do not increase";
    if (why) goto done;
    lc_fuzz_accepted++;
    int batch = 1 + (int)(size % 3);
    st = lc_graph_compile(g, batch, true, NULL);
    if (st != LC_OK) {
        why = lc_fuzz_check_error(st);
        goto done;
    }
    why = check_plan(g, batch);
    if (!why) why = check_params(g);
    int L = lc_graph_kernel_layers(g, NULL, 0);
    if (!why && (L < 0 || L > g->n_params)) why = "more kernel layers than parameters";
done:
    lc_graph_destroy(g);
    free(text);
    return why;
}

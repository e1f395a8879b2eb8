/* Graph builder, op table, shape inference, verifier, initialisers, dump. */
#include "lc_ir.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *lc_init_name(lc_init i)
{
    static const char *n[] = {"none", "zeros", "constant", "he_uniform", "he_normal", "glorot_uniform"};
    return (unsigned)i < LC_COUNTOF(n) ? n[i] : "?";
}

int64_t lc_shape_numel(const lc_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dims[i] <= 0) return 0;
        if (n > INT64_MAX / s->dims[i]) return INT64_MAX;
        n *= s->dims[i];
    }
    return n;
}

const char *lc_shape_str(const lc_shape *s, char *buf, size_t len)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int i = 0; i < s->rank && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ", %d" : "%d", s->dims[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
    return buf;
}

lc_graph *lc_graph_create(const char *name)
{
    lc_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    snprintf(g->name, sizeof g->name, "%s", name ? name : "model");
    g->input = g->labels = g->logits = g->loss = -1;
    return g;
}

void lc_graph_destroy(lc_graph *g)
{
    if (!g) return;
    free(g->nodes);
    free(g->params);
    free(g);
}

static int new_node(lc_graph *g, lc_op op, const char *name)
{
    if (g->n_nodes == g->cap) {
        int nc = g->cap ? g->cap * 2 : 32;
        lc_node *nn = realloc(g->nodes, (size_t)nc * sizeof *nn);
        if (!nn) { LC_ERR(LC_ERR_NOMEM, "out of memory growing the graph"); return -1; }
        g->nodes = nn;
        g->cap = nc;
    }
    int id = g->n_nodes++;
    lc_node *n = &g->nodes[id];
    memset(n, 0, sizeof *n);
    n->op = op;
    snprintf(n->name, sizeof n->name, "%s", name);
    n->grad_of = -1;
    n->grad = -1;
    n->fwd = -1;
    n->aux_last = -1;
    n->param_index = -1;
    n->owner = -1;
    n->offset = -1;
    lc_op_set_defaults(g, id);
    return id;
}

int lc_graph_find(const lc_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].name, name)) return i;
    return -1;
}

int lc_graph_add_input(lc_graph *g, const char *name, const lc_shape *shape)
{
    if (g->input >= 0) { LC_ERR(LC_ERR_INVALID, "graph already has an input"); return -1; }
    int id = new_node(g, LC_OP_INPUT, name);
    if (id < 0) return -1;
    g->nodes[id].shape = *shape;
    g->nodes[id].batched = true;
    g->input = id;
    return id;
}

int lc_graph_add_labels(lc_graph *g, const char *name, int classes)
{
    int id = new_node(g, LC_OP_LABELS, name);
    if (id < 0) return -1;
    g->nodes[id].shape = (lc_shape){1, {1}};
    g->nodes[id].batched = true;
    g->nodes[id].dtype = LC_I32;
    g->labels = id;
    g->classes = classes;
    return id;
}

int lc_graph_add_param(lc_graph *g, const char *name, const lc_shape *shape, lc_init init, double value,
                       int fan_in, int fan_out, bool is_kernel)
{
    if (lc_graph_find(g, name) >= 0) {
        LC_ERR(LC_ERR_INVALID, "duplicate tensor name '%s'", name);
        return -1;
    }
    int id = new_node(g, LC_OP_PARAM, name);
    if (id < 0) return -1;
    lc_param *np = realloc(g->params, (size_t)(g->n_params + 1) * sizeof *np);
    if (!np) { LC_ERR(LC_ERR_NOMEM, "out of memory"); return -1; }
    g->params = np;
    lc_node *n = &g->nodes[id];
    n->shape = *shape;
    n->init = init;
    n->init_value = value;
    n->fan_in = fan_in;
    n->fan_out = fan_out;
    n->trainable = true;
    n->is_kernel = is_kernel;
    n->param_index = g->n_params;
    g->params[g->n_params++] = (lc_param){.node = id, .offset = 0, .numel = lc_shape_numel(shape), .grad_node = -1};
    return id;
}

int lc_graph_add_node(lc_graph *g, lc_op op, const char *name, const int *inputs, int n_inputs)
{
    if (n_inputs > LC_MAX_INPUTS) { LC_ERR(LC_ERR_INVALID, "node '%s': too many inputs", name); return -1; }
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i] < 0 || inputs[i] >= g->n_nodes) {
            LC_ERR(LC_ERR_INVALID, "node '%s': input %d is not a node", name, i);
            return -1;
        }
    int id = new_node(g, op, name);
    if (id < 0) return -1;
    lc_node *n = &g->nodes[id];
    memcpy(n->inputs, inputs, (size_t)n_inputs * sizeof *inputs);
    n->n_inputs = n_inputs;
    return id;
}

int lc_graph_add_dense(lc_graph *g, const char *name, int x, int units, bool bias, lc_init init, lc_init bias_init,
                       double bias_value)
{
    char pn[LC_NAME_MAX + 8];
    /* fan_in is known only after shape inference; it is filled in there. */
    snprintf(pn, sizeof pn, "%s.weight", name);
    int w = lc_graph_add_param(g, pn, &(lc_shape){2, {units, 0}}, init, 0, 0, units, true);
    if (w < 0) return -1;
    int ins[3] = {x, w, -1};
    int nin = 2;
    if (bias) {
        snprintf(pn, sizeof pn, "%s.bias", name);
        int b = lc_graph_add_param(g, pn, &(lc_shape){1, {units}}, bias_init, bias_value, 0, units, false);
        if (b < 0) return -1;
        ins[nin++] = b;
    }
    int id = lc_graph_add_node(g, LC_OP_DENSE, name, ins, nin);
    if (id < 0) return -1;
    g->nodes[id].units = units;
    g->nodes[id].bias = bias;
    g->nodes[w].owner = id;
    if (bias) g->nodes[ins[2]].owner = id;
    return id;
}

/* "<name>.<suffix>" parameter owned by the next node; shape filled in by
 * shape inference. */
static int add_param_of(lc_graph *g, const char *name, const char *suffix, int rank, lc_init init, double value,
                        bool is_kernel)
{
    char pn[LC_NAME_MAX + 24];
    snprintf(pn, sizeof pn, "%s.%s", name, suffix);
    if (strlen(pn) >= LC_NAME_MAX) {
        LC_ERR(LC_ERR_INVALID, "tensor name '%s' is too long (at most %d characters)", pn, LC_NAME_MAX - 1);
        return -1;
    }
    lc_shape s = {rank, {0, 0, 0, 0}};
    return lc_graph_add_param(g, pn, &s, init, value, 0, 0, is_kernel);
}

int lc_graph_add_conv2d(lc_graph *g, const char *name, int x, int filters, int kh, int kw, int sh, int sw,
                        lc_pad_mode pad_mode, int ph, int pw, bool bias, lc_init init, lc_init bias_init,
                        double bias_value)
{
    if (filters < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0) {
        LC_ERR(LC_ERR_INVALID, "node '%s' (conv2d): filters, kernel and stride must be positive and padding "
               "non-negative (filters %d, kernel %dx%d, stride %dx%d, pad %dx%d)", name, filters, kh, kw, sh, sw, ph, pw);
        return -1;
    }
    int w = add_param_of(g, name, "weight", 4, init, 0, true);
    if (w < 0) return -1;
    int ins[3] = {x, w, -1}, nin = 2;
    if (bias) {
        int b = add_param_of(g, name, "bias", 1, bias_init, bias_value, false);
        if (b < 0) return -1;
        ins[nin++] = b;
    }
    int id = lc_graph_add_node(g, LC_OP_CONV2D, name, ins, nin);
    if (id < 0) return -1;
    lc_node *n = &g->nodes[id];
    n->units = filters;
    n->bias = bias;
    n->kh = kh; n->kw = kw; n->sh = sh; n->sw = sw;
    n->pad_mode = pad_mode;
    n->ph = pad_mode == LC_PAD_EXPLICIT ? ph : 0;
    n->pw = pad_mode == LC_PAD_EXPLICIT ? pw : 0;
    for (int k = 1; k < nin; k++) g->nodes[ins[k]].owner = id;
    return id;
}

int lc_graph_add_batchnorm(lc_graph *g, const char *name, int x, double momentum, double eps, bool affine)
{
    if (!(momentum >= 0 && momentum <= 1) || !(eps > 0)) {
        LC_ERR(LC_ERR_INVALID, "node '%s' (batchnorm): momentum must be in [0, 1] and epsilon positive (got %g, %g)",
               name, momentum, eps);
        return -1;
    }
    int ins[5] = {x, -1, -1, -1, -1}, nin = 1;
    if ((ins[nin++] = add_param_of(g, name, "running_mean", 1, LC_INIT_ZEROS, 0, false)) < 0) return -1;
    if ((ins[nin++] = add_param_of(g, name, "running_var", 1, LC_INIT_CONSTANT, 1, false)) < 0) return -1;
    g->nodes[ins[1]].trainable = g->nodes[ins[2]].trainable = false;
    if (affine) {
        if ((ins[nin++] = add_param_of(g, name, "weight", 1, LC_INIT_CONSTANT, 1, false)) < 0) return -1;
        if ((ins[nin++] = add_param_of(g, name, "bias", 1, LC_INIT_ZEROS, 0, false)) < 0) return -1;
    }
    int id = lc_graph_add_node(g, LC_OP_BATCHNORM, name, ins, nin);
    if (id < 0) return -1;
    lc_node *n = &g->nodes[id];
    n->momentum = momentum;
    n->eps = eps;
    n->affine = affine;
    for (int k = 1; k < nin; k++) g->nodes[ins[k]].owner = id;
    return id;
}

int lc_graph_add_pool(lc_graph *g, lc_op op, const char *name, int x, int kh, int kw, int sh, int sw)
{
    return lc_graph_add_pool_pad(g, op, name, x, kh, kw, sh, sw, NULL, true);
}

int lc_graph_add_pool_pad(lc_graph *g, lc_op op, const char *name, int x, int kh, int kw, int sh, int sw,
                          const int pads[4], bool count_pad)
{
    if (op != LC_OP_MAXPOOL && op != LC_OP_AVGPOOL) {
        LC_ERR(LC_ERR_INVALID, "node '%s': %s is not a pooling op", name, lc_op_name(op));
        return -1;
    }
    if (kh < 1 || kw < 1 || sh < 1 || sw < 1) {
        LC_ERR(LC_ERR_INVALID, "node '%s' (%s): kernel and stride must be positive (kernel %dx%d, stride %dx%d)", name,
               lc_op_name(op), kh, kw, sh, sw);
        return -1;
    }
    int id = lc_graph_add_node(g, op, name, &x, 1);
    if (id < 0) return -1;
    lc_node *n = &g->nodes[id];
    n->kh = kh; n->kw = kw; n->sh = sh; n->sw = sw;
    if (pads) {
        n->pad_t = pads[0]; n->pad_l = pads[1]; n->pad_b = pads[2]; n->pad_r = pads[3];
    }
    n->count_pad = count_pad;
    return id;
}

int lc_graph_add_dropout(lc_graph *g, const char *name, int x, double rate)
{
    if (!(rate >= 0 && rate < 1)) {
        LC_ERR(LC_ERR_INVALID, "node '%s' (dropout): rate must be in [0, 1), got %g", name, rate);
        return -1;
    }
    int id = lc_graph_add_node(g, LC_OP_DROPOUT, name, &x, 1);
    if (id < 0) return -1;
    g->nodes[id].rate = rate;
    return id;
}

int lc_graph_storage_root(const lc_graph *g, int id)
{
    while (lc_op_kind(g->nodes[id].op) == 'V') id = g->nodes[id].inputs[0];
    return id;
}

/* ---- shape inference (the rules: ir/ops.c) ---- */

#define SHAPE_ERR(n, ...) (lc_error_set(LC_ERR_INVALID, __VA_ARGS__), lc_error_prefix(LC_ERR_INVALID, "node '%s' (%s)", (n)->name, lc_op_name((n)->op)))

static lc_status infer_node(lc_graph *g, int id)
{
    const lc_op_info *o = lc_op_get(g->nodes[id].op);
    if (!o || o->kind == 'B') return SHAPE_ERR(&g->nodes[id], "op is not a forward op");
    return o->shape(g, id);
}

void lc_graph_layout_params(lc_graph *g)
{
    int64_t off = 0;
    for (int i = 0; i < g->n_params; i++) {
        lc_param *p = &g->params[i];
        p->numel = lc_shape_numel(&g->nodes[p->node].shape);
        p->offset = off;
        off += (p->numel + LC_PARAM_ALIGN - 1) / LC_PARAM_ALIGN * LC_PARAM_ALIGN;
    }
    g->param_floats = off;
}

lc_status lc_graph_infer(lc_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        lc_node *n = &g->nodes[i];
        if (lc_op_kind(n->op) == 'B') break;
        LC_TRY(infer_node(g, i));
        /* a backstop for every op: no value or parameter beyond the limit */
        int64_t k = lc_shape_numel(&n->shape);
        if (k > LC_MAX_NUMEL) {
            char b1[64], b2[64];
            return SHAPE_ERR(n, "%s %s has %s values%s, more than the %lld supported",
                             n->op == LC_OP_PARAM ? "the parameter" : "the value", lc_shape_str(&n->shape, b1, sizeof b1),
                             lc_numel_str(k, b2, sizeof b2), n->batched ? " per example" : "", (long long)LC_MAX_NUMEL);
        }
        if (n->op == LC_OP_PARAM) n->needs_grad = n->trainable;
        else {
            n->needs_grad = false;
            for (int k = 0; k < n->n_inputs; k++) n->needs_grad |= g->nodes[n->inputs[k]].needs_grad;
        }
    }
    lc_graph_layout_params(g);
    return LC_OK;
}

lc_status lc_graph_verify(const lc_graph *g)
{
    if (g->input < 0) return LC_ERR(LC_ERR_INVALID, "graph '%s' has no input", g->name);
    if (g->loss < 0) return LC_ERR(LC_ERR_INVALID, "graph '%s' has no loss", g->name);
    for (int i = 0; i < g->n_nodes; i++) {
        const lc_node *n = &g->nodes[i];
        int want = lc_op_get(n->op) ? lc_op_get(n->op)->nin : -2;
        if (want == -2) return LC_ERR(LC_ERR_INVALID, "node '%s' has no op (%d)", n->name, (int)n->op);
        if (want >= 0 && n->n_inputs != want)
            return LC_ERR(LC_ERR_INVALID, "node '%s' (%s) has %d inputs, expected %d", n->name, lc_op_name(n->op),
                          n->n_inputs, want);
        for (int k = 0; k < n->n_inputs; k++) {
            int in = n->inputs[k];
            /* data nodes (uploaded before the step) may be added later */
            if (in < 0 || in >= g->n_nodes || (in >= i && lc_op_kind(g->nodes[in].op) != 'D'))
                return LC_ERR(LC_ERR_INVALID, "node '%s' input %d (%d) does not precede it", n->name, k, in);
        }
        if (n->op == LC_OP_PARAM && lc_shape_numel(&n->shape) <= 0)
            return LC_ERR(LC_ERR_INVALID, "parameter '%s' has an empty shape", n->name);
        if (lc_op_kind(n->op) != 'P' && lc_op_kind(n->op) != 'D' && n->batched && lc_shape_numel(&n->shape) <= 0)
            return LC_ERR(LC_ERR_INVALID, "node '%s' has an empty shape", n->name);
    }
    return LC_OK;
}

/* ---- initialisers ---- */

void lc_graph_init_params(const lc_graph *g, float *host, uint64_t seed)
{
    memset(host, 0, (size_t)g->param_floats * sizeof *host);
    for (int i = 0; i < g->n_params; i++) {
        const lc_param *p = &g->params[i];
        const lc_node *n = &g->nodes[p->node];
        /* Each tensor gets its own stream so adding a layer does not change
         * the others' initial values. */
        lc_rng r;
        lc_rng_seed(&r, seed ^ lc_hash64(n->name, strlen(n->name), 0x51ed));
        float *w = host + p->offset;
        double fi = n->fan_in > 0 ? n->fan_in : 1, fo = n->fan_out > 0 ? n->fan_out : 1;
        for (int64_t k = 0; k < p->numel; k++) {
            double v = 0;
            switch (n->init) {
            case LC_INIT_NONE:
            case LC_INIT_ZEROS: v = 0; break;
            case LC_INIT_CONSTANT: v = n->init_value; break;
            case LC_INIT_HE_UNIFORM: { double l = sqrt(6.0 / fi); v = (2 * lc_rng_uniform(&r) - 1) * l; break; }
            case LC_INIT_GLOROT_UNIFORM: { double l = sqrt(6.0 / (fi + fo)); v = (2 * lc_rng_uniform(&r) - 1) * l; break; }
            case LC_INIT_HE_NORMAL: {
                /* truncated at 2 sigma, redrawn outside (Keras 2.1 convention) */
                double z;
                do { z = lc_rng_normal(&r); } while (fabs(z) > 2.0);
                v = z * sqrt(2.0 / fi);
                break;
            }
            }
            w[k] = (float)v;
        }
    }
}

int lc_graph_bn_dx_of(const lc_graph *g, int bn)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == LC_OP_BATCHNORM_DX && g->nodes[i].fwd == bn) return i;
    return -1;
}

int lc_graph_kernel_layers(const lc_graph *g, int *param_ids, int max)
{
    int n = 0;
    /* forward order = order of the owning nodes */
    for (int i = 0; i < g->n_forward || (g->n_forward == 0 && i < g->n_nodes); i++) {
        const lc_node *nd = &g->nodes[i];
        if (lc_op_kind(nd->op) != 'F') continue;
        for (int k = 0; k < nd->n_inputs; k++) {
            const lc_node *in = &g->nodes[nd->inputs[k]];
            if (in->op == LC_OP_PARAM && in->is_kernel) {
                if (param_ids && n < max) param_ids[n] = in->param_index;
                n++;
            }
        }
    }
    return n;
}

int64_t lc_graph_trainable_count(const lc_graph *g)
{
    int64_t c = 0;
    for (int i = 0; i < g->n_params; i++)
        if (g->nodes[g->params[i].node].trainable) c += g->params[i].numel;
    return c;
}

/* ---- dump ---- */

void lc_graph_dump(const lc_graph *g, FILE *f, const char *title)
{
    char b[64];
    fprintf(f, "== %s: graph '%s', %d nodes (%d forward), %d parameters (%lld floats)\n", title, g->name,
            g->n_nodes, g->n_forward ? g->n_forward : g->n_nodes, g->n_params, (long long)g->param_floats);
    for (int i = 0; i < g->n_nodes; i++) {
        const lc_node *n = &g->nodes[i];
        fprintf(f, "%4d %-24s = %-28s(", i, n->name, lc_op_name(n->op));
        for (int k = 0; k < n->n_inputs; k++) fprintf(f, "%s%%%d", k ? ", " : "", n->inputs[k]);
        fprintf(f, ") %s%s", n->batched ? "N x " : "", lc_shape_str(&n->shape, b, sizeof b));
        if (n->op == LC_OP_PARAM)
            fprintf(f, " init=%s%s%s @p%lld", lc_init_name(n->init), n->is_kernel ? " kernel" : "",
                    n->trainable ? "" : " frozen", (long long)g->params[n->param_index].offset);
        if (n->grad_of >= 0) fprintf(f, " d(%%%d)", n->grad_of);
        if (n->op == LC_OP_CONV2D)
            fprintf(f, " k%dx%d s%dx%d pad[%d,%d,%d,%d]", n->kh, n->kw, n->sh, n->sw, n->pad_t, n->pad_l, n->pad_b,
                    n->pad_r);
        if (n->op == LC_OP_MAXPOOL || n->op == LC_OP_AVGPOOL) {
            fprintf(f, " k%dx%d s%dx%d", n->kh, n->kw, n->sh, n->sw);
            if (n->pad_t || n->pad_l || n->pad_b || n->pad_r)
                fprintf(f, " pad[%d,%d,%d,%d]%s", n->pad_t, n->pad_l, n->pad_b, n->pad_r,
                        n->op == LC_OP_AVGPOOL && !n->count_pad ? " exclude_pad" : "");
        }
        if (n->op == LC_OP_BATCHNORM)
            fprintf(f, " momentum=%g eps=%g%s", n->momentum, n->eps, n->affine ? " affine" : "");
        if (n->op == LC_OP_DROPOUT) fprintf(f, " rate=%g", n->rate);
        const lc_op_info *oi = lc_op_get(n->op);
        for (int a = 0; oi && a < oi->n_attrs; a++) /* registry-parsed attributes */
            if (oi->attrs[a].at) fprintf(f, " %s=%g", oi->attrs[a].key, *(const double *)((const char *)n + oi->attrs[a].at));
        if (n->act_relu) fprintf(f, " +relu");
        if (n->offset >= 0 && n->op != LC_OP_PARAM)
            fprintf(f, " @a%lld live[%d,%d]", (long long)n->offset, n->def, n->last_use);
        if (n->aux_floats > 0 && n->aux_offset >= 0)
            fprintf(f, " aux %lld @a%lld live[%d,%d]", (long long)n->aux_floats, (long long)n->aux_offset, n->def,
                    n->aux_last);
        fputc('\n', f);
    }
    if (g->planned_batch)
        fprintf(f, "   memory plan: batch %d, activations %.2f MiB (largest conv workspace %.2f MiB), parameters "
                "%.2f MiB (x2 with gradients)\n",
                g->planned_batch, (double)g->act_floats * 4 / 1048576.0, (double)g->aux_peak_floats * 4 / 1048576.0,
                (double)g->param_floats * 4 / 1048576.0);
}

int lc_graph_gate_relus(lc_graph *g, int keep, int *mask_of)
{
    if (lc_graph_infer(g) != LC_OK) return -1; /* the masks take the ReLUs' shapes */
    int n0 = g->n_nodes, count = 0;
    if (mask_of)
        for (int i = 0; i < n0; i++) mask_of[i] = -1;
    for (int i = 0; i < n0; i++) {
        if (g->nodes[i].op != LC_OP_RELU || i == keep) continue;
        char name[LC_NAME_MAX];
        snprintf(name, sizeof name, "%.50s.mask", g->nodes[i].name);
        int m = new_node(g, LC_OP_MASK, name);
        if (m < 0) return -1;
        g->nodes[m].shape = g->nodes[i].shape;
        g->nodes[m].batched = true;
        g->nodes[i].op = LC_OP_GATE;
        g->nodes[i].inputs[1] = m;
        g->nodes[i].n_inputs = 2;
        if (mask_of) mask_of[i] = m;
        count++;
    }
    return count;
}

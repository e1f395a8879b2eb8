/* ONNX -> a layca model file (JSON text) and its parameters.
 *
 * The graph's nodes are read in order (ONNX requires a topological order).
 * Every value the importer meets is either an activation (a layca node's
 * output, with its per-example shape: ONNX's first dimension is the batch)
 * or a constant (an initializer, a bound input or a Constant node's output).
 * Constants feed the weights of the layer that uses them; a final Softmax
 * becomes the loss; a Pad is folded into the Conv or pooling after it.
 * Anything layca cannot express is an error naming the node and what is
 * missing.  docs/onnx.md has the mapping. */
#include "imp.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- messages ---- */

const char *imp_node_name(const imp *m)
{
    const Onnx__NodeProto *nd = m->nd;
    if (!nd) return "";
    if (nd->name && nd->name[0]) return nd->name;
    return nd->n_output && nd->output[0] ? nd->output[0] : "";
}

lc_status imp_err(const imp *m, lc_status st, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!m->nd) return lc_error_set(st, "%s: %s", m->where, msg);
    return lc_error_set(st, "%s: node '%s' (%s): %s", m->where, imp_node_name(m), m->nd->op_type ? m->nd->op_type : "?",
                        msg);
}

/* ---- values ---- */

imp_val *imp_find(imp *m, const char *name)
{
    for (int i = m->n_vals - 1; i >= 0; i--)
        if (!strcmp(m->vals[i].name, name)) return &m->vals[i];
    return NULL;
}

static imp_val *new_val(imp *m, const char *name)
{
    if (m->n_vals == m->cap_vals) {
        int cap = m->cap_vals ? 2 * m->cap_vals : 64;
        imp_val *v = realloc(m->vals, (size_t)cap * sizeof *v);
        if (!v) return NULL;
        m->vals = v;
        m->cap_vals = cap;
    }
    imp_val *v = &m->vals[m->n_vals++];
    memset(v, 0, sizeof *v);
    v->name = name;
    v->node = -1;
    return v;
}

lc_status imp_set_act(imp *m, int k, int node, const lc_shape *ox, const lc_shape *ly)
{
    if ((size_t)k >= m->nd->n_output || !m->nd->output[k][0]) return LC_OK;
    imp_val *v = new_val(m, m->nd->output[k]);
    if (!v) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    v->kind = IMP_ACT;
    v->node = node;
    v->ox = *ox;
    v->ly = ly ? *ly : *ox;
    return LC_OK;
}

lc_status imp_add_const(imp *m, const char *name, lc_onnx_value *c)
{
    imp_val *v = new_val(m, name);
    if (!v) {
        lc_onnx_value_deinit(c);
        return LC_ERR(LC_ERR_NOMEM, "out of memory");
    }
    v->kind = IMP_CONST;
    v->c = *c;
    memset(c, 0, sizeof *c);
    return LC_OK;
}

lc_status imp_alias(imp *m, int k, const imp_val *v)
{
    if ((size_t)k >= m->nd->n_output || !m->nd->output[k][0]) return LC_OK;
    imp_val copy = *v; /* v may move when vals grows */
    if (copy.kind == IMP_CONST) {
        size_t n = (size_t)(copy.c.numel ? copy.c.numel : 1);
        copy.c.f = v->c.f ? malloc(n * sizeof *copy.c.f) : NULL;
        copy.c.i64 = v->c.i64 ? malloc(n * sizeof *copy.c.i64) : NULL;
        if ((v->c.f && !copy.c.f) || (v->c.i64 && !copy.c.i64)) {
            lc_onnx_value_deinit(&copy.c);
            return LC_ERR(LC_ERR_NOMEM, "out of memory");
        }
        if (v->c.f) memcpy(copy.c.f, v->c.f, (size_t)copy.c.numel * sizeof *copy.c.f);
        if (v->c.i64) memcpy(copy.c.i64, v->c.i64, (size_t)copy.c.numel * sizeof *copy.c.i64);
    }
    imp_val *o = new_val(m, m->nd->output[k]);
    if (!o) {
        if (copy.kind == IMP_CONST) lc_onnx_value_deinit(&copy.c);
        return LC_ERR(LC_ERR_NOMEM, "out of memory");
    }
    copy.name = o->name;
    *o = copy;
    return LC_OK;
}

lc_status imp_set_pad(imp *m, int k, int src, const int64_t pad[4])
{
    if ((size_t)k >= m->nd->n_output || !m->nd->output[k][0]) return LC_OK;
    imp_val *v = new_val(m, m->nd->output[k]);
    if (!v) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    v->kind = IMP_PAD;
    v->src = src;
    memcpy(v->pad, pad, sizeof v->pad);
    v->pad_node = imp_node_name(m);
    return LC_OK;
}

/* Input k of the node: present and known. */
lc_status imp_input(imp *m, int k, imp_val **out)
{
    if ((size_t)k >= m->nd->n_input || !m->nd->input[k][0])
        return imp_err(m, LC_ERR_INVALID, "input %d is missing", k);
    imp_val *v = imp_find(m, m->nd->input[k]);
    if (!v) return imp_err(m, LC_ERR_INVALID, "input %d ('%s') is not produced by an earlier node, an initializer or "
                           "a graph input", k, m->nd->input[k]);
    if (v->kind == IMP_SOFTMAX)
        return imp_err(m, LC_ERR_UNSUPPORTED, "input '%s' is a Softmax's output: a Softmax is supported only as the "
                       "graph's output (it becomes the loss)", v->name);
    *out = v;
    return LC_OK;
}

lc_status imp_act(imp *m, int k, imp_val **out)
{
    LC_TRY(imp_input(m, k, out));
    if ((*out)->kind == IMP_PAD)
        return imp_err(m, LC_ERR_UNSUPPORTED, "input %d ('%s') is the output of the Pad node '%s': a Pad is "
                       "supported only right before a Conv, MaxPool or AveragePool (folded into its padding)", k,
                       (*out)->name, (*out)->pad_node);
    if ((*out)->kind != IMP_ACT)
        return imp_err(m, LC_ERR_UNSUPPORTED, "input %d ('%s') is a constant; layca needs an activation there", k,
                       (*out)->name);
    return LC_OK;
}

lc_status imp_const(imp *m, int k, bool f32, imp_val **out)
{
    LC_TRY(imp_input(m, k, out));
    if ((*out)->kind != IMP_CONST)
        return imp_err(m, LC_ERR_UNSUPPORTED, "input %d ('%s') must be a constant (an initializer or a Constant): "
                       "layca's weights are parameters", k, (*out)->name);
    if (f32 && !(*out)->c.f)
        return imp_err(m, LC_ERR_UNSUPPORTED, "input %d ('%s') must be FLOAT", k, (*out)->name);
    if (!f32 && !(*out)->c.i64)
        return imp_err(m, LC_ERR_UNSUPPORTED, "input %d ('%s') must be INT64", k, (*out)->name);
    return LC_OK;
}

bool imp_has_input(const imp *m, int k) { return (size_t)k < m->nd->n_input && m->nd->input[k][0]; }

/* How many node inputs and graph outputs name value `name`. */
int imp_uses(const imp *m, const char *name)
{
    int n = 0;
    for (size_t i = 0; i < m->g->n_node; i++)
        for (size_t k = 0; k < m->g->node[i]->n_input; k++) n += !strcmp(m->g->node[i]->input[k], name);
    for (size_t i = 0; i < m->g->n_output; i++) n += m->g->output[i]->name && !strcmp(m->g->output[i]->name, name);
    return n;
}

/* ---- attributes ---- */

const Onnx__AttributeProto *imp_attr(const imp *m, const char *name)
{
    for (size_t i = 0; i < m->nd->n_attribute; i++)
        if (m->nd->attribute[i]->name && !strcmp(m->nd->attribute[i]->name, name)) return m->nd->attribute[i];
    return NULL;
}

lc_status imp_check_attrs(const imp *m, const char *const *known)
{
    for (size_t i = 0; i < m->nd->n_attribute; i++) {
        const char *a = m->nd->attribute[i]->name ? m->nd->attribute[i]->name : "";
        bool ok = false;
        for (int k = 0; known[k]; k++) ok |= !strcmp(a, known[k]);
        if (!ok) return imp_err(m, LC_ERR_UNSUPPORTED, "attribute '%s' is not supported", a);
    }
    return LC_OK;
}

/* The attribute `name` of the given type, or NULL when absent (*st: an
 * error when present with another type). */
static const Onnx__AttributeProto *typed_attr(const imp *m, const char *name, Onnx__AttributeProto__AttributeType type,
                                              const char *tname, lc_status *st)
{
    const Onnx__AttributeProto *a = imp_attr(m, name);
    *st = LC_OK;
    if (a && a->type != type) {
        *st = imp_err(m, LC_ERR_INVALID, "attribute '%s' must be %s", name, tname);
        return NULL;
    }
    return a;
}

lc_status imp_attr_int(const imp *m, const char *name, int64_t def, int64_t *out)
{
    lc_status st;
    const Onnx__AttributeProto *a = typed_attr(m, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, "an INT", &st);
    *out = a ? a->i : def;
    return st;
}

lc_status imp_attr_float(const imp *m, const char *name, double def, double *out)
{
    lc_status st;
    const Onnx__AttributeProto *a = typed_attr(m, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, "a FLOAT", &st);
    *out = a ? a->f : def;
    return st;
}

/* INTS attribute: *n values into out (at most max); *n = -1 when absent. */
lc_status imp_attr_ints(const imp *m, const char *name, int64_t *out, int max, int *n)
{
    lc_status st;
    const Onnx__AttributeProto *a = typed_attr(m, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, "INTS", &st);
    *n = -1;
    if (!a) return st;
    if (a->n_ints > (size_t)max)
        return imp_err(m, LC_ERR_UNSUPPORTED, "attribute '%s' has %zu values (at most %d here)", name, a->n_ints, max);
    for (size_t i = 0; i < a->n_ints; i++) out[i] = a->ints[i];
    *n = (int)a->n_ints;
    return LC_OK;
}

lc_status imp_attr_str(const imp *m, const char *name, const char *def, char *out, size_t cap)
{
    lc_status st;
    const Onnx__AttributeProto *a = typed_attr(m, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, "a STRING", &st);
    snprintf(out, cap, "%s", def);
    if (!a) return st;
    size_t n = a->s.len < cap - 1 ? a->s.len : cap - 1;
    memcpy(out, a->s.data, n);
    out[n] = 0;
    return LC_OK;
}

/* Only the first output may be used (extra outputs: masks, indices,
 * training statistics). */
lc_status imp_one_output(const imp *m)
{
    for (size_t k = 1; k < m->nd->n_output; k++)
        if (m->nd->output[k][0])
            return imp_err(m, LC_ERR_UNSUPPORTED, "output %zu ('%s') is not supported (layca computes the first "
                           "output only)", k, m->nd->output[k]);
    return LC_OK;
}

/* ---- layca nodes and parameters ---- */

/* A layca node name from an ONNX name: [A-Za-z0-9_-], at most 40
 * characters, unique, never one of the names layca reserves. */
void imp_make_name(imp *m, const char *base, const char *suffix, char *out)
{
    char b[48];
    size_t n = 0;
    for (const char *p = base; *p && n < 32; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok) c = '_';
        if (c == '_' && (n == 0 || b[n - 1] == '_')) continue;
        b[n++] = c;
    }
    while (n && b[n - 1] == '_') n--;
    b[n] = 0;
    if (!n) snprintf(b, sizeof b, "n");
    for (int k = 1;; k++) {
        if (k == 1) snprintf(out, LC_NAME_MAX, "%s%s", b, suffix);
        else snprintf(out, LC_NAME_MAX, "%s%s_%d", b, suffix, k);
        bool clash = !strcmp(out, "input") || !strcmp(out, "labels") || !strcmp(out, "loss");
        for (int i = 0; i < m->n_nodes && !clash; i++) clash = !strcmp(m->nodes[i].name, out);
        if (!clash) return;
    }
}

int imp_add_node(imp *m, const char *op, int in0, int in1)
{
    if (m->n_nodes == m->cap_nodes) {
        int cap = m->cap_nodes ? 2 * m->cap_nodes : 32;
        imp_node *v = realloc(m->nodes, (size_t)cap * sizeof *v);
        if (!v) return -1;
        m->nodes = v;
        m->cap_nodes = cap;
    }
    imp_node *n = &m->nodes[m->n_nodes];
    memset(n, 0, sizeof *n);
    char name[LC_NAME_MAX];
    imp_make_name(m, imp_node_name(m), "", name);
    memcpy(n->name, name, sizeof name);
    n->op = op;
    n->in[0] = in0;
    n->in[1] = in1;
    n->n_in = in1 == IMP_NONE ? 1 : 2;
    return m->n_nodes++;
}

/* Takes data (malloc'ed, freed on failure). */
lc_status imp_add_tensor(imp *m, int node, const char *suffix, int rank, const int64_t *dims, float *data)
{
    if (m->n_tens == m->cap_tens) {
        int cap = m->cap_tens ? 2 * m->cap_tens : 32;
        lc_st_tensor *t = realloc(m->tens, (size_t)cap * sizeof *t);
        if (!t) {
            free(data);
            return LC_ERR(LC_ERR_NOMEM, "out of memory");
        }
        m->tens = t;
        m->cap_tens = cap;
    }
    lc_st_tensor *t = &m->tens[m->n_tens++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s.%s", m->nodes[node].name, suffix);
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->shape[i] = dims[i];
    t->data = data;
    return LC_OK;
}

/* A copy of constant v's values times scale, as a parameter of node. */
lc_status imp_param(imp *m, int node, const char *suffix, const imp_val *v, double scale, int rank,
                    const int64_t *dims)
{
    float *d = malloc((size_t)(v->c.numel ? v->c.numel : 1) * sizeof *d);
    if (!d) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < v->c.numel; i++) d[i] = (float)(scale * v->c.f[i]);
    return imp_add_tensor(m, node, suffix, rank, dims, d);
}

/* ---- the graph ---- */

static lc_status bind_inputs(imp *m, const lc_onnx_import_opts *o, const Onnx__ValueInfoProto **data)
{
    *data = NULL;
    for (size_t i = 0; i < m->g->n_input; i++) {
        const Onnx__ValueInfoProto *in = m->g->input[i];
        const char *name = in->name ? in->name : "";
        if (imp_find(m, name)) continue; /* an initializer listed as an input (IR < 4) */
        const lc_onnx_value *b = NULL;
        for (int k = 0; o && k < o->n_bind; k++)
            if (!strcmp(o->bind[k].name, name)) b = &o->bind[k];
        if (b) {
            lc_onnx_value c = *b;
            size_t n = (size_t)(c.numel ? c.numel : 1);
            c.f = b->f ? malloc(n * sizeof *c.f) : NULL;
            c.i64 = b->i64 ? malloc(n * sizeof *c.i64) : NULL;
            if ((b->f && !c.f) || (b->i64 && !c.i64)) {
                lc_onnx_value_deinit(&c);
                return LC_ERR(LC_ERR_NOMEM, "out of memory");
            }
            if (b->f) memcpy(c.f, b->f, (size_t)c.numel * sizeof *c.f);
            if (b->i64) memcpy(c.i64, b->i64, (size_t)c.numel * sizeof *c.i64);
            LC_TRY(imp_add_const(m, name, &c));
            continue;
        }
        if (*data)
            return imp_err(m, LC_ERR_UNSUPPORTED, "graph input '%s': a layca model has one input ('%s'); the others "
                           "must be initializers", name, (*data)->name);
        *data = in;
    }
    if (!*data) return imp_err(m, LC_ERR_INVALID, "the graph has no data input (every input is an initializer)");
    return LC_OK;
}

static lc_status data_input(imp *m, const Onnx__ValueInfoProto *in)
{
    const char *name = in->name ? in->name : "";
    const Onnx__TypeProto *t = in->type;
    if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type)
        return imp_err(m, LC_ERR_UNSUPPORTED, "graph input '%s' is not a tensor", name);
    if (t->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return imp_err(m, LC_ERR_UNSUPPORTED, "graph input '%s' has type %s (layca inputs are FLOAT)", name,
                       lc_onnx_dtype_name(t->tensor_type->elem_type));
    const Onnx__TensorShapeProto *s = t->tensor_type->shape;
    int r = s ? (int)s->n_dim : 0;
    if (r < 1 || r > 4)
        return imp_err(m, LC_ERR_UNSUPPORTED, "graph input '%s' has rank %d (supported: 1 to 4, the first dimension "
                       "being the batch)", name, r);
    lc_shape ox = {0, {0}};
    for (int i = 0; i < r; i++) {
        const Onnx__TensorShapeProto__Dimension *d = s->dim[i];
        bool known = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        if (i == 0) {
            m->batch = known && d->dim_value > 0 && d->dim_value < (1 << 30) ? (int)d->dim_value : 0;
            if (r > 1) continue;
        }
        if (!known || d->dim_value < 1 || d->dim_value > (1 << 24))
            return imp_err(m, LC_ERR_UNSUPPORTED, "graph input '%s': dimension %d must be a fixed size in [1, %d]", name,
                           i, 1 << 24);
        ox.dims[ox.rank++] = (int)d->dim_value;
    }
    /* a rank-1 input is one example */
    if (r == 1) {
        m->nobatch = true;
        m->batch = 1;
    }
    m->input_shape = ox;
    imp_val *v = new_val(m, name);
    if (!v) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    v->kind = IMP_ACT;
    v->node = IMP_INPUT;
    v->ox = v->ly = ox;
    return LC_OK;
}

static lc_status read_initializers(imp *m)
{
    for (size_t i = 0; i < m->g->n_initializer; i++) {
        lc_onnx_value c;
        LC_TRY(lc_onnx_value_from_proto(m->g->initializer[i], m->where, &c));
        LC_TRY(imp_add_const(m, m->g->initializer[i]->name ? m->g->initializer[i]->name : "", &c));
    }
    return LC_OK;
}

static lc_status read_opset(imp *m, const Onnx__ModelProto *mp)
{
    m->opset = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const char *d = mp->opset_import[i]->domain ? mp->opset_import[i]->domain : "";
        if (!d[0] || !strcmp(d, "ai.onnx")) m->opset = (int)mp->opset_import[i]->version;
    }
    if (m->opset < 0) return imp_err(m, LC_ERR_UNSUPPORTED, "the model imports no version of the default ONNX opset");
    return LC_OK;
}

static lc_status import_nodes(imp *m)
{
    for (size_t i = 0; i < m->g->n_node; i++) {
        m->nd = m->g->node[i];
        const char *d = m->nd->domain ? m->nd->domain : "";
        if (d[0] && strcmp(d, "ai.onnx"))
            return imp_err(m, LC_ERR_UNSUPPORTED, "domain '%s' is not supported (the default ONNX domain only)", d);
        const char *op = m->nd->op_type ? m->nd->op_type : "";
        imp_op_fn fn = imp_op_find(op);
        if (!fn)
            return imp_err(m, LC_ERR_UNSUPPORTED, "op %s is not supported (supported: Conv, Gemm, MatMul, Add, Relu, "
                           "LeakyRelu, MaxPool, AveragePool, GlobalAveragePool, BatchNormalization, Dropout, Flatten, "
                           "Reshape, Constant, Identity, Pad before a Conv or pooling, a final Softmax)", op);
        LC_TRY(fn(m));
    }
    m->nd = NULL;
    return LC_OK;
}

/* The graph output: its layca node becomes the logits, the last node. */
static lc_status graph_output(imp *m, lc_onnx_import *out)
{
    if (m->g->n_output != 1)
        return imp_err(m, LC_ERR_UNSUPPORTED, "the graph has %zu outputs (a layca model has one)", m->g->n_output);
    const char *name = m->g->output[0]->name ? m->g->output[0]->name : "";
    imp_val *v = imp_find(m, name);
    if (!v) return imp_err(m, LC_ERR_INVALID, "graph output '%s' is not produced by any node", name);
    if (v->kind == IMP_SOFTMAX) {
        out->softmax_folded = true;
        v = &m->vals[v->src];
    }
    if (v->kind != IMP_ACT || v->node == IMP_INPUT)
        return imp_err(m, LC_ERR_UNSUPPORTED, "graph output '%s' is %s, not computed by a layer", name,
                       v->kind == IMP_CONST ? "a constant" : v->kind == IMP_PAD ? "a Pad's output" : "the input");
    int64_t classes = lc_shape_numel(&v->ly);
    if (classes > (1 << 20))
        return imp_err(m, LC_ERR_UNSUPPORTED, "graph output '%s' has %lld values per example (a layca model has at "
                       "most %d classes)", name, (long long)classes, 1 << 20);
    if (classes < 2)
        return imp_err(m, LC_ERR_UNSUPPORTED, "graph output '%s' has %lld value(s) per example; a layca model's "
                       "output (its logits) has at least 2", name, (long long)classes);
    int node = v->node;
    if (v->ly.rank != 1 || node != m->n_nodes - 1) {
        imp_node *src = &m->nodes[node];
        char base[LC_NAME_MAX];
        snprintf(base, sizeof base, "%s", src->name);
        char name[LC_NAME_MAX];
        imp_make_name(m, base, "_flat", name);
        node = imp_add_node(m, "flatten", node, IMP_NONE);
        if (node < 0) return LC_ERR(LC_ERR_NOMEM, "out of memory");
        memcpy(m->nodes[node].name, name, sizeof name);
    }
    m->classes = (int)classes;
    snprintf(out->output, sizeof out->output, "%s", m->nodes[node].name);
    return LC_OK;
}

static lc_status import_graph(imp *m, const Onnx__ModelProto *mp, const lc_onnx_import_opts *o, lc_onnx_import *out)
{
    if (!mp->graph) return imp_err(m, LC_ERR_INVALID, "the model has no graph");
    m->g = mp->graph;
    LC_TRY(read_opset(m, mp));
    LC_TRY(read_initializers(m));
    const Onnx__ValueInfoProto *data;
    LC_TRY(bind_inputs(m, o, &data));
    LC_TRY(data_input(m, data));
    LC_TRY(import_nodes(m));
    LC_TRY(graph_output(m, out));
    out->batch = m->batch;
    LC_TRY(imp_write_json(m, mp, out));
    return LC_OK;
}

lc_status lc_onnx_import_parse(const uint8_t *bytes, size_t len, const char *where, const lc_onnx_import_opts *opts,
                               lc_onnx_import *out)
{
    memset(out, 0, sizeof *out);
    imp m = {.where = where};
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, bytes);
    if (!mp) return LC_ERR(LC_ERR_FORMAT, "%s: not an ONNX model (protobuf decoding failed: truncated or not a model)",
                           where);
    lc_status st = import_graph(&m, mp, opts, out);
    if (st == LC_OK) {
        out->tensors = m.tens;
        out->n_tensors = m.n_tens;
        m.tens = NULL;
        m.n_tens = 0;
    }
    for (int i = 0; i < m.n_vals; i++) lc_onnx_value_deinit(&m.vals[i].c);
    free(m.vals);
    free(m.nodes);
    for (int i = 0; i < m.n_tens; i++) free((void *)m.tens[i].data);
    free(m.tens);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (st != LC_OK) lc_onnx_import_deinit(out);
    return st;
}

void lc_onnx_import_deinit(lc_onnx_import *r)
{
    if (!r) return;
    free(r->json);
    for (int i = 0; i < r->n_tensors; i++) free((void *)r->tensors[i].data);
    free(r->tensors);
    memset(r, 0, sizeof *r);
}

lc_status lc_onnx_import_params(const lc_onnx_import *r, const lc_graph *g, float *params)
{
    memset(params, 0, (size_t)g->param_floats * sizeof *params);
    for (int i = 0; i < g->n_params; i++) {
        const lc_node *n = &g->nodes[g->params[i].node];
        const lc_st_tensor *t = NULL;
        for (int k = 0; k < r->n_tensors && !t; k++)
            if (!strcmp(r->tensors[k].name, n->name)) t = &r->tensors[k];
        if (!t) return LC_ERR(LC_ERR_NOT_FOUND, "parameter '%s' is not among the imported tensors", n->name);
        bool same = t->rank == n->shape.rank;
        for (int d = 0; same && d < t->rank; d++) same = t->shape[d] == n->shape.dims[d];
        if (!same) {
            char b[64];
            return LC_ERR(LC_ERR_INVALID, "parameter '%s': the imported tensor's shape differs from the model's %s",
                          n->name, lc_shape_str(&n->shape, b, sizeof b));
        }
        memcpy(params + g->params[i].offset, t->data, (size_t)g->params[i].numel * sizeof *params);
    }
    if (r->n_tensors != g->n_params)
        return LC_ERR(LC_ERR_INVALID, "%d imported tensors for the model's %d parameters", r->n_tensors, g->n_params);
    return LC_OK;
}

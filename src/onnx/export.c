/* layca graph -> ONNX inference graph (opset 13, IR version 7).
 *
 * Values are named after the layca nodes, initializers after the
 * parameters ("conv1.weight"), the data input is "input" [N, ...] and the
 * one output is the logits (the loss is left out: no Softmax).  Dropout is
 * an ONNX Dropout with its ratio (identity in inference), batchnorm uses
 * its running statistics, global_avgpool is GlobalAveragePool + Flatten
 * (layca's value is [C] per example). */
#include "onnx_int.h"

#include <stdlib.h>
#include <string.h>

#define EXPORT_OPSET 13
#define EXPORT_IR_VERSION 7

/* Everything the model points to, freed together. */
typedef struct exp {
    void **ptrs;
    int n_ptrs, cap_ptrs;
    bool oom;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    const lc_graph *g;
    const float *params;
} exp;

static void *ex_alloc(exp *e, size_t size)
{
    if (e->oom) return NULL;
    if (e->n_ptrs == e->cap_ptrs) {
        int cap = e->cap_ptrs ? 2 * e->cap_ptrs : 256;
        void **p = realloc(e->ptrs, (size_t)cap * sizeof *p);
        if (!p) {
            e->oom = true;
            return NULL;
        }
        e->ptrs = p;
        e->cap_ptrs = cap;
    }
    void *m = calloc(1, size ? size : 1);
    if (!m) {
        e->oom = true;
        return NULL;
    }
    return e->ptrs[e->n_ptrs++] = m;
}

static char *ex_str(exp *e, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = ex_alloc(e, n);
    if (d) memcpy(d, s, n);
    return d;
}

static Onnx__AttributeProto *add_attr(exp *e, Onnx__NodeProto *nd, const char *name,
                                      Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = ex_alloc(e, sizeof *a);
    Onnx__AttributeProto **list = ex_alloc(e, (nd->n_attribute + 1) * sizeof *list);
    if (!a || !list) return NULL;
    onnx__attribute_proto__init(a);
    a->name = ex_str(e, name);
    a->has_type = 1;
    a->type = type;
    if (nd->n_attribute) memcpy(list, nd->attribute, nd->n_attribute * sizeof *list);
    list[nd->n_attribute++] = a;
    nd->attribute = list;
    return a;
}

static void attr_ints(exp *e, Onnx__NodeProto *nd, const char *name, const int *v, int n)
{
    Onnx__AttributeProto *a = add_attr(e, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *d = ex_alloc(e, (size_t)n * sizeof *d);
    if (!a || !d) return;
    for (int i = 0; i < n; i++) d[i] = v[i];
    a->ints = d;
    a->n_ints = (size_t)n;
}

static void attr_int(exp *e, Onnx__NodeProto *nd, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = add_attr(e, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!a) return;
    a->has_i = 1;
    a->i = v;
}

static void attr_float(exp *e, Onnx__NodeProto *nd, const char *name, double v)
{
    Onnx__AttributeProto *a = add_attr(e, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (!a) return;
    a->has_f = 1;
    a->f = (float)v;
}

/* A node of op_type reading `ins` (value names), writing `out`. */
static Onnx__NodeProto *add_node(exp *e, const char *op_type, const char *name, const char *const *ins, int n_in,
                                 const char *out)
{
    if (e->n_nodes == e->cap_nodes) {
        e->oom = true;
        return NULL;
    }
    Onnx__NodeProto *nd = ex_alloc(e, sizeof *nd);
    char **in = ex_alloc(e, (size_t)n_in * sizeof *in), **o = ex_alloc(e, sizeof *o);
    if (!nd || !in || !o) return NULL;
    onnx__node_proto__init(nd);
    nd->op_type = ex_str(e, op_type);
    nd->name = ex_str(e, name);
    for (int i = 0; i < n_in; i++) in[i] = ex_str(e, ins[i]);
    nd->input = in;
    nd->n_input = (size_t)n_in;
    o[0] = ex_str(e, out);
    nd->output = o;
    nd->n_output = 1;
    e->nodes[e->n_nodes++] = nd;
    return nd;
}

/* A FLOAT initializer; data is referenced, not copied (it outlives the packing). */
static void add_init(exp *e, const char *name, const int64_t *dims, int rank, const float *data, int64_t numel)
{
    if (e->n_inits == e->cap_inits) {
        e->oom = true;
        return;
    }
    Onnx__TensorProto *t = ex_alloc(e, sizeof *t);
    int64_t *d = ex_alloc(e, (size_t)rank * sizeof *d);
    if (!t || !d) return;
    onnx__tensor_proto__init(t);
    t->name = ex_str(e, name);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    if (rank) memcpy(d, dims, (size_t)rank * sizeof *d);
    t->dims = d;
    t->n_dims = (size_t)rank;
    t->has_raw_data = 1;
    t->raw_data.data = (uint8_t *)data;
    t->raw_data.len = (size_t)numel * sizeof(float);
    e->inits[e->n_inits++] = t;
}

/* Parameter input k of node id as an initializer named after it; its name. */
static const char *param_init(exp *e, int id, int k)
{
    const lc_node *p = &e->g->nodes[e->g->nodes[id].inputs[k]];
    const lc_param *pr = &e->g->params[p->param_index];
    int64_t dims[LC_MAX_RANK];
    for (int i = 0; i < p->shape.rank; i++) dims[i] = p->shape.dims[i];
    add_init(e, p->name, dims, p->shape.rank, e->params + pr->offset, pr->numel);
    return p->name;
}

/* A constant vector of n copies of v named "<node>.<suffix>". */
static const char *const_init(exp *e, const char *node, const char *suffix, int n, float v, char *name, size_t cap)
{
    float *d = ex_alloc(e, (size_t)n * sizeof *d);
    if (!d) return "";
    for (int i = 0; i < n; i++) d[i] = v;
    snprintf(name, cap, "%s.%s", node, suffix);
    int64_t dim = n;
    add_init(e, name, &dim, 1, d, n);
    return name;
}

static void export_batchnorm(exp *e, int id)
{
    const lc_node *n = &e->g->nodes[id];
    int c = e->g->nodes[n->inputs[1]].shape.dims[0];
    char gname[LC_NAME_MAX + 16], bname[LC_NAME_MAX + 16];
    const char *ins[5] = {e->g->nodes[n->inputs[0]].name};
    ins[1] = n->affine ? param_init(e, id, 3) : const_init(e, n->name, "weight", c, 1.0f, gname, sizeof gname);
    ins[2] = n->affine ? param_init(e, id, 4) : const_init(e, n->name, "bias", c, 0.0f, bname, sizeof bname);
    ins[3] = param_init(e, id, 1);
    ins[4] = param_init(e, id, 2);
    Onnx__NodeProto *nd = add_node(e, "BatchNormalization", n->name, ins, 5, n->name);
    if (!nd) return;
    attr_float(e, nd, "epsilon", n->eps);
    attr_float(e, nd, "momentum", n->momentum);
}

static void export_window(exp *e, int id, const char *op)
{
    const lc_node *n = &e->g->nodes[id];
    bool conv = n->op == LC_OP_CONV2D;
    const char *ins[3] = {e->g->nodes[n->inputs[0]].name};
    int n_in = 1;
    if (conv) {
        ins[n_in++] = param_init(e, id, 1);
        if (n->bias) ins[n_in++] = param_init(e, id, 2);
    }
    Onnx__NodeProto *nd = add_node(e, op, n->name, ins, n_in, n->name);
    if (!nd) return;
    int k[2] = {n->kh, n->kw}, s[2] = {n->sh, n->sw}, p[4] = {n->pad_t, n->pad_l, n->pad_b, n->pad_r};
    attr_ints(e, nd, "kernel_shape", k, 2);
    attr_ints(e, nd, "strides", s, 2);
    if (conv || p[0] || p[1] || p[2] || p[3]) attr_ints(e, nd, "pads", p, 4);
    if (n->op == LC_OP_AVGPOOL && (p[0] || p[1] || p[2] || p[3])) attr_int(e, nd, "count_include_pad", n->count_pad);
}

/* One forward node; false for an op without an ONNX form. */
static bool export_node(exp *e, int id)
{
    const lc_node *n = &e->g->nodes[id];
    const char *x = n->n_inputs ? e->g->nodes[n->inputs[0]].name : "";
    const char *ins[3] = {x};
    char tmp[LC_NAME_MAX + 16];
    Onnx__NodeProto *nd;
    switch (n->op) {
    case LC_OP_INPUT: case LC_OP_LABELS: case LC_OP_PARAM: case LC_OP_SOFTMAX_CE: return true;
    case LC_OP_DENSE:
        ins[1] = param_init(e, id, 1);
        if (n->bias) ins[2] = param_init(e, id, 2);
        if ((nd = add_node(e, "Gemm", n->name, ins, n->bias ? 3 : 2, n->name))) attr_int(e, nd, "transB", 1);
        return true;
    case LC_OP_CONV2D: export_window(e, id, "Conv"); return true;
    case LC_OP_MAXPOOL: export_window(e, id, "MaxPool"); return true;
    case LC_OP_AVGPOOL: export_window(e, id, "AveragePool"); return true;
    case LC_OP_BATCHNORM: export_batchnorm(e, id); return true;
    case LC_OP_RELU: add_node(e, "Relu", n->name, ins, 1, n->name); return true;
    case LC_OP_LEAKY_RELU:
        if ((nd = add_node(e, "LeakyRelu", n->name, ins, 1, n->name))) attr_float(e, nd, "alpha", n->slope);
        return true;
    case LC_OP_ADD:
        ins[1] = e->g->nodes[n->inputs[1]].name;
        add_node(e, "Add", n->name, ins, 2, n->name);
        return true;
    case LC_OP_FLATTEN:
        if ((nd = add_node(e, "Flatten", n->name, ins, 1, n->name))) attr_int(e, nd, "axis", 1);
        return true;
    case LC_OP_GLOBAL_AVGPOOL:
        snprintf(tmp, sizeof tmp, "%s.gap", n->name); /* no layca name has a dot */
        add_node(e, "GlobalAveragePool", tmp, ins, 1, tmp);
        ins[0] = tmp;
        if ((nd = add_node(e, "Flatten", n->name, ins, 1, n->name))) attr_int(e, nd, "axis", 1);
        return true;
    case LC_OP_DROPOUT: {
        float *r = ex_alloc(e, sizeof *r);
        if (!r) return true;
        *r = (float)n->rate;
        snprintf(tmp, sizeof tmp, "%s.ratio", n->name);
        add_init(e, tmp, NULL, 0, r, 1);
        ins[1] = tmp;
        add_node(e, "Dropout", n->name, ins, 2, n->name);
        return true;
    }
    default: return false;
    }
}

/* A FLOAT tensor value [N, dims...] (N symbolic). */
static Onnx__ValueInfoProto *value_info(exp *e, const char *name, const lc_shape *s)
{
    Onnx__ValueInfoProto *v = ex_alloc(e, sizeof *v);
    Onnx__TypeProto *t = ex_alloc(e, sizeof *t);
    Onnx__TypeProto__Tensor *tt = ex_alloc(e, sizeof *tt);
    Onnx__TensorShapeProto *sh = ex_alloc(e, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dims = ex_alloc(e, (size_t)(s->rank + 1) * sizeof *dims);
    if (!v || !t || !tt || !sh || !dims) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i <= s->rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = ex_alloc(e, sizeof *d);
        if (!d) return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        if (i == 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = ex_str(e, "N");
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = s->dims[i - 1];
        }
        dims[i] = d;
    }
    sh->dim = dims;
    sh->n_dim = (size_t)s->rank + 1;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->name = ex_str(e, name);
    v->type = t;
    return v;
}

static lc_status build_graph(exp *e, Onnx__GraphProto *gp)
{
    const lc_graph *g = e->g;
    if (g->input < 0 || g->logits < 0) return LC_ERR(LC_ERR_INVALID, "graph '%s' has no input or no logits", g->name);
    for (int i = 0; i < g->n_nodes && lc_op_kind(g->nodes[i].op) != 'B'; i++)
        if (!export_node(e, i))
            return LC_ERR(LC_ERR_UNSUPPORTED, "node '%s' (%s) has no ONNX form in this exporter", g->nodes[i].name,
                          lc_op_name(g->nodes[i].op));
    onnx__graph_proto__init(gp);
    gp->name = ex_str(e, g->name[0] ? g->name : "layca");
    gp->node = e->nodes;
    gp->n_node = e->n_nodes;
    gp->initializer = e->inits;
    gp->n_initializer = e->n_inits;
    Onnx__ValueInfoProto **in = ex_alloc(e, sizeof *in), **out = ex_alloc(e, sizeof *out);
    if (!in || !out) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    in[0] = value_info(e, g->nodes[g->input].name, &g->nodes[g->input].shape);
    out[0] = value_info(e, g->nodes[g->logits].name, &g->nodes[g->logits].shape);
    gp->input = in;
    gp->n_input = 1;
    gp->output = out;
    gp->n_output = 1;
    return e->oom ? LC_ERR(LC_ERR_NOMEM, "out of memory") : LC_OK;
}

lc_status lc_onnx_export(const lc_graph *g, const float *params, uint8_t **bytes, size_t *len)
{
    *bytes = NULL;
    *len = 0;
    exp e = {.g = g, .params = params};
    e.cap_nodes = 2 * (size_t)g->n_nodes + 1;
    e.cap_inits = (size_t)g->n_params + 2 * (size_t)g->n_nodes + 1;
    e.nodes = calloc(e.cap_nodes, sizeof *e.nodes);
    e.inits = calloc(e.cap_inits, sizeof *e.inits);
    Onnx__GraphProto gp;
    lc_status st = e.nodes && e.inits ? build_graph(&e, &gp) : LC_ERR(LC_ERR_NOMEM, "out of memory");
    if (st == LC_OK) {
        Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opsets[1] = {&opset};
        opset.domain = "";
        opset.has_version = 1;
        opset.version = EXPORT_OPSET;
        Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
        mp.has_ir_version = 1;
        mp.ir_version = EXPORT_IR_VERSION;
        mp.producer_name = "layca";
        mp.producer_version = LAYCA_VERSION;
        mp.opset_import = opsets;
        mp.n_opset_import = 1;
        mp.graph = &gp;
        size_t n = onnx__model_proto__get_packed_size(&mp);
        *bytes = malloc(n ? n : 1);
        if (!*bytes) st = LC_ERR(LC_ERR_NOMEM, "out of memory");
        else *len = onnx__model_proto__pack(&mp, *bytes);
    }
    for (int i = 0; i < e.n_ptrs; i++) free(e.ptrs[i]);
    free(e.ptrs);
    free(e.nodes);
    free(e.inits);
    return st;
}

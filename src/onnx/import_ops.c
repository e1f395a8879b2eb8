/* The ONNX importer's ops: one function per ONNX op type, each checking
 * every attribute it is given, and the JSON writer. */
#include "imp.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NOMEM() LC_ERR(LC_ERR_NOMEM, "out of memory")

static const char *shape_str(const lc_shape *s, char *b, size_t n) { return lc_shape_str(s, b, n); }

static lc_status need_batch(const imp *m)
{
    if (m->nobatch)
        return imp_err(m, LC_ERR_UNSUPPORTED, "the graph's input has rank 1 (one example, no batch dimension); this "
                       "op needs a batch dimension");
    return LC_OK;
}

static lc_status need_image(const imp *m, const imp_val *x)
{
    char b[64];
    if (x->ly.rank != 3)
        return imp_err(m, LC_ERR_UNSUPPORTED, "input '%s' is %s per example; this op needs [channels, height, width] "
                       "(a 4-D tensor)", x->name, shape_str(&x->ly, b, sizeof b));
    return LC_OK;
}

/* A layer named after its weight's module, as PyTorch exports name them:
 * "block.conv1.weight" -> "block_conv1" (so its parameters are
 * "block_conv1.weight", ...).  Weights named otherwise leave the name. */
static void name_from_weight(imp *m, int id, const char *wname)
{
    const char *dot = strrchr(wname, '.');
    if (!dot || dot == wname) return;
    char base[LC_NAME_MAX], name[LC_NAME_MAX];
    snprintf(base, sizeof base, "%.*s", (int)(dot - wname < LC_NAME_MAX - 1 ? dot - wname : LC_NAME_MAX - 1), wname);
    imp_make_name(m, base, "", name);
    memcpy(m->nodes[id].name, name, sizeof name);
}

/* One layca node of op on input x with the same shape. */
static lc_status same_shape_op(imp *m, const char *op, const char *attrs)
{
    imp_val *x;
    LC_TRY(imp_act(m, 0, &x));
    lc_shape ox = x->ox, ly = x->ly;
    int id = imp_add_node(m, op, x->node, IMP_NONE);
    if (id < 0) return NOMEM();
    snprintf(m->nodes[id].attrs, sizeof m->nodes[id].attrs, "%s", attrs);
    return imp_set_act(m, 0, id, &ox, &ly);
}

static lc_status op_relu(imp *m)
{
    static const char *const known[] = {NULL};
    LC_TRY(imp_check_attrs(m, known));
    return same_shape_op(m, "relu", "");
}

static lc_status op_leaky_relu(imp *m)
{
    static const char *const known[] = {"alpha", NULL};
    LC_TRY(imp_check_attrs(m, known));
    double alpha;
    LC_TRY(imp_attr_float(m, "alpha", 0.01, &alpha));
    char a[64];
    snprintf(a, sizeof a, ", \"slope\": %.9g", alpha);
    return same_shape_op(m, "leaky_relu", a);
}

/* Dropout in inference (identity); layca's dropout node keeps the rate for
 * training.  Opset < 12: attribute ratio; later: inputs ratio and
 * training_mode (constants). */
static lc_status op_dropout(imp *m)
{
    static const char *const known[] = {"ratio", "seed", "is_test", NULL};
    LC_TRY(imp_check_attrs(m, known));
    LC_TRY(imp_one_output(m));
    double ratio;
    LC_TRY(imp_attr_float(m, "ratio", 0.5, &ratio));
    imp_val *c;
    if (imp_has_input(m, 1)) {
        LC_TRY(imp_const(m, 1, true, &c));
        if (c->c.numel != 1) return imp_err(m, LC_ERR_INVALID, "the ratio '%s' must be a scalar", c->name);
        ratio = c->c.f[0];
    }
    if (imp_has_input(m, 2)) {
        LC_TRY(imp_const(m, 2, false, &c));
        if (c->c.numel != 1 || c->c.i64[0])
            return imp_err(m, LC_ERR_UNSUPPORTED, "training_mode '%s' must be false (inference graphs only)", c->name);
    }
    if (!(ratio >= 0 && ratio < 1)) return imp_err(m, LC_ERR_INVALID, "ratio %g is not in [0, 1)", ratio);
    char a[64];
    snprintf(a, sizeof a, ", \"rate\": %.9g", ratio);
    return same_shape_op(m, "dropout", a);
}

/* How many nodes and graph outputs use layca node `node`'s value, under any
 * of its names: the values naming it beyond the first are the outputs of
 * Identity (or a Reshape that changes nothing), each one use of another. */
static int node_uses(const imp *m, int node)
{
    int uses = 0, names = 0;
    for (int i = 0; i < m->n_vals; i++)
        if (m->vals[i].kind == IMP_ACT && m->vals[i].node == node) {
            uses += imp_uses(m, m->vals[i].name);
            names++;
        }
    return uses - (names - 1);
}

/* Add of two activations of one shape, or the bias of a MatMul (or a Gemm
 * without one) whose only use is this Add. */
static lc_status op_add(imp *m)
{
    static const char *const known[] = {NULL};
    LC_TRY(imp_check_attrs(m, known));
    imp_val *a, *b;
    if (imp_find(m, m->nd->n_input > 0 ? m->nd->input[0] : "") &&
        imp_find(m, m->nd->input[0])->kind == IMP_CONST && m->nd->n_input > 1) {
        LC_TRY(imp_act(m, 1, &a));
        LC_TRY(imp_const(m, 0, true, &b));
    } else {
        LC_TRY(imp_act(m, 0, &a));
        imp_val *v = m->nd->n_input > 1 ? imp_find(m, m->nd->input[1]) : NULL;
        if (v && v->kind == IMP_CONST) LC_TRY(imp_const(m, 1, true, &b));
        else LC_TRY(imp_act(m, 1, &b));
    }
    char b1[64], b2[64];
    if (b->kind == IMP_ACT) {
        if (memcmp(&a->ly, &b->ly, sizeof a->ly) || memcmp(&a->ox, &b->ox, sizeof a->ox))
            return imp_err(m, LC_ERR_UNSUPPORTED, "inputs '%s' %s and '%s' %s differ in shape (layca adds equal shapes; "
                           "no broadcasting)", a->name, shape_str(&a->ly, b1, sizeof b1), b->name,
                           shape_str(&b->ly, b2, sizeof b2));
        lc_shape ox = a->ox, ly = a->ly;
        int id = imp_add_node(m, "add", a->node, b->node);
        if (id < 0) return NOMEM();
        return imp_set_act(m, 0, id, &ox, &ly);
    }
    imp_node *p = a->node >= 0 ? &m->nodes[a->node] : NULL;
    if (!p || strcmp(p->op, "dense") || p->bias || node_uses(m, a->node) != 1)
        return imp_err(m, LC_ERR_UNSUPPORTED, "adding the constant '%s' is supported only as the bias of a MatMul or "
                       "Gemm whose only use is this Add", b->name);
    int64_t n = p->units;
    bool fits = b->c.numel == n && b->c.rank >= 1 && b->c.dims[b->c.rank - 1] == n &&
                (b->c.rank == 1 || (b->c.rank == 2 && b->c.dims[0] == 1));
    if (!fits)
        return imp_err(m, LC_ERR_UNSUPPORTED, "the constant '%s' (%lld values) is not a bias of %lld units", b->name,
                       (long long)b->c.numel, (long long)n);
    int node = a->node;
    lc_shape ox = a->ox, ly = a->ly;
    m->nodes[node].bias = 1;
    LC_TRY(imp_param(m, node, "bias", b, 1.0, 1, &n));
    return imp_set_act(m, 0, node, &ox, &ly);
}

/* The prologue of ops with one attribute, axis: the input x, the axis
 * (def when absent, negative values counted from the end) and the ONNX rank r. */
static lc_status axis_op(imp *m, int64_t def, imp_val **x, int64_t *axis, int *r)
{
    static const char *const known[] = {"axis", NULL};
    LC_TRY(imp_check_attrs(m, known));
    LC_TRY(need_batch(m));
    LC_TRY(imp_act(m, 0, x));
    LC_TRY(imp_attr_int(m, "axis", def, axis));
    *r = (*x)->ox.rank + 1;
    if (*axis < 0) *axis += *r;
    return LC_OK;
}

/* A Softmax over the features of each example: allowed as the graph's
 * output only, where it becomes the loss (graph_output checks). */
static lc_status op_softmax(imp *m)
{
    imp_val *x;
    int64_t axis;
    int r;
    LC_TRY(axis_op(m, m->opset < 13 ? 1 : -1, &x, &axis, &r));
    bool over_features = (r == 2 && axis == 1) || (m->opset < 13 && axis == 1);
    if (!over_features)
        return imp_err(m, LC_ERR_UNSUPPORTED, "a Softmax over axis %lld of a rank-%d tensor: only a softmax over each "
                       "example's features (a final Softmax of [N, classes]) is supported", (long long)axis, r);
    int src = (int)(x - m->vals);
    lc_shape ox = x->ox;
    LC_TRY(imp_set_act(m, 0, IMP_INPUT, &ox, NULL));
    imp_val *v = m->nd->n_output && m->nd->output[0][0] ? imp_find(m, m->nd->output[0]) : NULL;
    if (v) {
        v->kind = IMP_SOFTMAX;
        v->src = src;
    }
    return LC_OK;
}

static lc_status flatten_to(imp *m, imp_val *x)
{
    lc_shape f = {1, {(int)lc_shape_numel(&x->ly)}};
    int id = imp_add_node(m, "flatten", x->node, IMP_NONE);
    if (id < 0) return NOMEM();
    return imp_set_act(m, 0, id, &f, &f);
}

static lc_status op_flatten(imp *m)
{
    imp_val *x;
    int64_t axis;
    int r;
    LC_TRY(axis_op(m, 1, &x, &axis, &r));
    if (axis != 1)
        return imp_err(m, LC_ERR_UNSUPPORTED, "axis %lld of a rank-%d tensor: layca flattens each example (axis 1); "
                       "another axis moves values across the batch dimension", (long long)axis, r);
    return flatten_to(m, x);
}

/* Reshape keeping the batch: to [N, features] (a flatten), or to the shape
 * the value has already (nothing). */
static lc_status op_reshape(imp *m)
{
    static const char *const known[] = {"allowzero", NULL};
    LC_TRY(imp_check_attrs(m, known));
    LC_TRY(need_batch(m));
    imp_val *x, *s;
    LC_TRY(imp_act(m, 0, &x));
    LC_TRY(imp_const(m, 1, false, &s));
    int64_t allowzero;
    LC_TRY(imp_attr_int(m, "allowzero", 0, &allowzero));
    int64_t t[LC_ONNX_MAX_RANK] = {0}, numel = lc_shape_numel(&x->ox), known_prod = 1;
    int r = (int)s->c.numel, minus = -1;
    if (s->c.rank != 1 || r < 1 || r > LC_ONNX_MAX_RANK)
        return imp_err(m, LC_ERR_UNSUPPORTED, "the shape '%s' must be a list of 1 to %d sizes", s->name,
                       LC_ONNX_MAX_RANK);
    for (int i = 0; i < r; i++) {
        t[i] = s->c.i64[i];
        if (t[i] == 0 && !allowzero) t[i] = i == 0 ? -2 : (i - 1 < x->ox.rank ? x->ox.dims[i - 1] : 0);
        if (t[i] == 0) return imp_err(m, LC_ERR_UNSUPPORTED, "a size of 0 in '%s' (empty tensors)", s->name);
        if (t[i] < -2 || t[i] > ((int64_t)1 << 31))
            return imp_err(m, LC_ERR_INVALID, "size %lld in '%s' is out of range", (long long)s->c.i64[i], s->name);
        if (t[i] == -1 && i > 0) {
            if (minus >= 0) return imp_err(m, LC_ERR_INVALID, "'%s' has more than one -1", s->name);
            minus = i;
        } else if (i > 0) known_prod *= t[i];
        if (known_prod > ((int64_t)1 << 31))
            return imp_err(m, LC_ERR_INVALID, "the shape '%s' has more values than any example", s->name);
    }
    bool batch_ok = t[0] == -2 || (t[0] == -1 && minus < 0) || (m->batch > 0 && t[0] == m->batch);
    if (minus > 0) t[minus] = known_prod > 0 && numel % known_prod == 0 ? numel / known_prod : -3;
    int64_t prod = 1;
    for (int i = 1; i < r; i++) prod *= t[i];
    if (!batch_ok || prod != numel)
        return imp_err(m, LC_ERR_UNSUPPORTED, "this reshape does not keep the batch dimension and each example's %lld "
                       "values (layca reshapes each example only)", (long long)numel);
    bool same = r - 1 == x->ox.rank;
    for (int i = 1; same && i < r; i++) same = t[i] == x->ox.dims[i - 1];
    if (same) {
        lc_shape ox = x->ox, ly = x->ly;
        return imp_set_act(m, 0, x->node, &ox, &ly);
    }
    if (r != 2)
        return imp_err(m, LC_ERR_UNSUPPORTED, "a reshape to %d dimensions: layca reshapes each example to a flat "
                       "vector only ([N, features])", r);
    return flatten_to(m, x);
}

static lc_status op_gap(imp *m)
{
    static const char *const known[] = {NULL};
    LC_TRY(imp_check_attrs(m, known));
    LC_TRY(need_batch(m));
    imp_val *x;
    LC_TRY(imp_act(m, 0, &x));
    LC_TRY(need_image(m, x));
    lc_shape ox = {3, {x->ly.dims[0], 1, 1}}, ly = {1, {x->ly.dims[0]}};
    int id = imp_add_node(m, "global_avgpool", x->node, IMP_NONE);
    if (id < 0) return NOMEM();
    return imp_set_act(m, 0, id, &ox, &ly);
}

/* kernel_shape, strides, pads, dilations of a 2-D window; pads 4 values. */
typedef struct window {
    int64_t k[2], s[2], p[4], d[2];
} window;

static lc_status read_window(imp *m, window *w, bool kernel_required)
{
    int n;
    LC_TRY(imp_attr_ints(m, "kernel_shape", w->k, 2, &n));
    if (n < 0 && kernel_required) return imp_err(m, LC_ERR_INVALID, "attribute 'kernel_shape' is missing");
    if (n >= 0 && n != 2)
        return imp_err(m, LC_ERR_UNSUPPORTED, "kernel_shape has %d values: layca windows are 2-D", n);
    w->s[0] = w->s[1] = 1;
    LC_TRY(imp_attr_ints(m, "strides", w->s, 2, &n));
    if (n >= 0 && n != 2) return imp_err(m, LC_ERR_UNSUPPORTED, "strides has %d values: layca windows are 2-D", n);
    memset(w->p, 0, sizeof w->p);
    LC_TRY(imp_attr_ints(m, "pads", w->p, 4, &n));
    if (n >= 0 && n != 4) return imp_err(m, LC_ERR_UNSUPPORTED, "pads has %d values (4 for a 2-D window)", n);
    w->d[0] = w->d[1] = 1;
    LC_TRY(imp_attr_ints(m, "dilations", w->d, 2, &n));
    if (w->d[0] != 1 || w->d[1] != 1 || (n >= 0 && n != 2))
        return imp_err(m, LC_ERR_UNSUPPORTED, "dilations other than 1 are not supported");
    for (int i = 0; i < 2; i++)
        if (w->s[i] < 1 || w->s[i] > 1024 || (kernel_required && (w->k[i] < 1 || w->k[i] > 1024)))
            return imp_err(m, LC_ERR_UNSUPPORTED, "kernel_shape and strides must be in [1, 1024]");
    for (int i = 0; i < 4; i++)
        if (w->p[i] < 0 || w->p[i] > 1024) return imp_err(m, LC_ERR_UNSUPPORTED, "pads must be in [0, 1024]");
    return LC_OK;
}

/* auto_pad SAME_UPPER / SAME_LOWER: the pads it gives for input h, w. */
static void same_pads(const window *w, int h, int wd, bool upper, int64_t p[4])
{
    int64_t in[2] = {h, wd};
    for (int i = 0; i < 2; i++) {
        int64_t out = (in[i] + w->s[i] - 1) / w->s[i], tot = (out - 1) * w->s[i] + w->k[i] - in[i];
        if (tot < 0) tot = 0;
        p[i] = upper ? tot / 2 : tot - tot / 2;
        p[i + 2] = tot - p[i];
    }
}

/* Input 0 of a Conv or pooling, and the padding [top, left, bottom, right]
 * of the Pad whose output it is (zeros and *pad_node NULL without one). */
static lc_status padded_input(imp *m, imp_val **x, int64_t pad[4], const char **pad_node)
{
    imp_val *v;
    LC_TRY(imp_input(m, 0, &v));
    memset(pad, 0, 4 * sizeof *pad);
    *pad_node = NULL;
    if (v->kind != IMP_PAD) return imp_act(m, 0, x);
    memcpy(pad, v->pad, 4 * sizeof *pad);
    *pad_node = v->pad_node;
    *x = &m->vals[v->src]; /* an activation (op_pad checked) */
    return LC_OK;
}

static lc_status op_pool(imp *m, const char *op)
{
    static const char *const known[] = {"kernel_shape", "strides", "pads", "dilations", "auto_pad", "ceil_mode",
                                        "storage_order", "count_include_pad", NULL};
    LC_TRY(imp_check_attrs(m, known));
    LC_TRY(need_batch(m));
    LC_TRY(imp_one_output(m));
    imp_val *x;
    int64_t pre[4];
    const char *pad_node;
    LC_TRY(padded_input(m, &x, pre, &pad_node));
    LC_TRY(need_image(m, x));
    window w;
    LC_TRY(read_window(m, &w, true));
    char ap[32];
    LC_TRY(imp_attr_str(m, "auto_pad", "NOTSET", ap, sizeof ap));
    int h = x->ly.dims[1], wd = x->ly.dims[2];
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER"))
        same_pads(&w, (int)(h + pre[0] + pre[2]), (int)(wd + pre[1] + pre[3]), ap[5] == 'U', w.p);
    else if (strcmp(ap, "NOTSET") && strcmp(ap, "VALID"))
        return imp_err(m, LC_ERR_INVALID, "auto_pad '%s' is not an ONNX value", ap);
    int64_t ceil_mode, incl = 0;
    LC_TRY(imp_attr_int(m, "ceil_mode", 0, &ceil_mode));
    LC_TRY(imp_attr_int(m, "count_include_pad", 0, &incl));
    if (pad_node) {
        /* the Pad's zeros (MaxPool: -inf, op_pad checked) are values the window sees */
        bool own = w.p[0] || w.p[1] || w.p[2] || w.p[3];
        if (op[0] == 'a' && own && !incl)
            return imp_err(m, LC_ERR_UNSUPPORTED, "pads [%lld, %lld, %lld, %lld] counting only the real values "
                           "(count_include_pad 0) after the Pad '%s', whose zeros count: layca's average pooling "
                           "counts all of its padding or none", (long long)w.p[0], (long long)w.p[1],
                           (long long)w.p[2], (long long)w.p[3], pad_node);
        for (int i = 0; i < 4; i++) w.p[i] += pre[i];
        if (op[0] == 'a') incl = 1;
    }
    /* ONNX pads are [top, left, bottom, right] here as in layca */
    for (int i = 0; i < 4; i++)
        if (w.p[i] >= w.k[i % 2])
            return imp_err(m, LC_ERR_UNSUPPORTED, "padding (pads [%lld, %lld, %lld, %lld]%s%s%s%s%s) as large as the "
                           "window %lldx%lld: layca's pooling needs each side's padding smaller than the window",
                           (long long)w.p[0], (long long)w.p[1], (long long)w.p[2], (long long)w.p[3],
                           strcmp(ap, "NOTSET") ? ", auto_pad " : "", strcmp(ap, "NOTSET") ? ap : "",
                           pad_node ? ", with the Pad '" : "", pad_node ? pad_node : "", pad_node ? "' before it" : "",
                           (long long)w.k[0], (long long)w.k[1]);
    int64_t ph = h + w.p[0] + w.p[2], pw = wd + w.p[1] + w.p[3]; /* the padded input */
    if (ph < w.k[0] || pw < w.k[1])
        return imp_err(m, LC_ERR_INVALID, "the window %lldx%lld does not fit the input %dx%d with pads [%lld, %lld, "
                       "%lld, %lld]", (long long)w.k[0], (long long)w.k[1], h, wd, (long long)w.p[0],
                       (long long)w.p[1], (long long)w.p[2], (long long)w.p[3]);
    if (ceil_mode && ((ph - w.k[0]) % w.s[0] || (pw - w.k[1]) % w.s[1]))
        return imp_err(m, LC_ERR_UNSUPPORTED, "ceil_mode 1 where it changes the output size: layca rounds down");
    lc_shape o = {3, {x->ly.dims[0], (int)((ph - w.k[0]) / w.s[0] + 1), (int)((pw - w.k[1]) / w.s[1] + 1)}};
    int id = imp_add_node(m, op, x->node, IMP_NONE);
    if (id < 0) return NOMEM();
    int n = snprintf(m->nodes[id].attrs, sizeof m->nodes[id].attrs,
                     ", \"kernel\": [%lld, %lld], \"stride\": [%lld, %lld]", (long long)w.k[0], (long long)w.k[1],
                     (long long)w.s[0], (long long)w.s[1]);
    if (w.p[0] || w.p[1] || w.p[2] || w.p[3]) {
        n += snprintf(m->nodes[id].attrs + n, sizeof m->nodes[id].attrs - (size_t)n,
                      ", \"pad\": [%lld, %lld, %lld, %lld]", (long long)w.p[0], (long long)w.p[1], (long long)w.p[2],
                      (long long)w.p[3]);
        if (op[0] == 'a') /* ONNX counts only the real values unless told: layca's default is the other */
            snprintf(m->nodes[id].attrs + n, sizeof m->nodes[id].attrs - (size_t)n, ", \"count_include_pad\": %s",
                     incl ? "true" : "false");
    }
    return imp_set_act(m, 0, id, &o, NULL);
}

static lc_status op_maxpool(imp *m) { return op_pool(m, "maxpool"); }
static lc_status op_avgpool(imp *m) { return op_pool(m, "avgpool"); }

/* The layca padding of a convolution with ONNX pads p (top, left, bottom,
 * right): symmetric -> explicit, else what "same" resolves to, else none. */
static lc_status conv_pad(imp *m, const window *w, int h, int wd, const char *pad_node, char *out, size_t cap)
{
    const int64_t *p = w->p;
    for (int i = 0; i < 4; i++)
        if (p[i] > 1024)
            return imp_err(m, LC_ERR_UNSUPPORTED, "padding %lld%s%s%s: layca pads a convolution by at most 1024",
                           (long long)p[i], pad_node ? " (with the Pad '" : "", pad_node ? pad_node : "",
                           pad_node ? "' before it)" : "");
    if (p[0] == p[2] && p[1] == p[3]) {
        snprintf(out, cap, "[%lld, %lld]", (long long)p[0], (long long)p[1]);
        return LC_OK;
    }
    int64_t s[4];
    same_pads(w, h, wd, true, s);
    if (!memcmp(s, p, sizeof s)) {
        snprintf(out, cap, "\"same\"");
        return LC_OK;
    }
    return imp_err(m, LC_ERR_UNSUPPORTED, "pads [%lld, %lld, %lld, %lld]%s%s%s: layca pads symmetrically, or as "
                   "\"same\" (the extra row and column at the bottom and right)", (long long)p[0], (long long)p[1],
                   (long long)p[2], (long long)p[3], pad_node ? " (with the Pad '" : "", pad_node ? pad_node : "",
                   pad_node ? "' before it)" : "");
}

static lc_status op_conv(imp *m)
{
    static const char *const known[] = {"kernel_shape", "strides", "pads", "dilations", "auto_pad", "group", NULL};
    LC_TRY(imp_check_attrs(m, known));
    LC_TRY(need_batch(m));
    imp_val *x, *wt, *b = NULL;
    int64_t pre[4];
    const char *pad_node;
    LC_TRY(padded_input(m, &x, pre, &pad_node));
    LC_TRY(need_image(m, x));
    LC_TRY(imp_const(m, 1, true, &wt));
    if (imp_has_input(m, 2)) LC_TRY(imp_const(m, 2, true, &b));
    int64_t group;
    LC_TRY(imp_attr_int(m, "group", 1, &group));
    if (group != 1)
        return imp_err(m, LC_ERR_UNSUPPORTED, "group %lld: layca convolutions have one group", (long long)group);
    if (wt->c.rank != 4 || wt->c.dims[1] != x->ly.dims[0])
        return imp_err(m, LC_ERR_INVALID, "the weight '%s' must be [filters, %d, kh, kw]", wt->name, x->ly.dims[0]);
    window w;
    LC_TRY(read_window(m, &w, false));
    if (!imp_attr(m, "kernel_shape")) w.k[0] = wt->c.dims[2], w.k[1] = wt->c.dims[3];
    if (w.k[0] != wt->c.dims[2] || w.k[1] != wt->c.dims[3])
        return imp_err(m, LC_ERR_INVALID, "kernel_shape differs from the weight '%s'", wt->name);
    int64_t f = wt->c.dims[0];
    if (f < 1 || f > (1 << 20)) return imp_err(m, LC_ERR_UNSUPPORTED, "%lld filters (1 to %d)", (long long)f, 1 << 20);
    if (b && (b->c.rank != 1 || b->c.dims[0] != f))
        return imp_err(m, LC_ERR_INVALID, "the bias '%s' must be [%lld]", b->name, (long long)f);
    char ap[32], pad[48];
    LC_TRY(imp_attr_str(m, "auto_pad", "NOTSET", ap, sizeof ap));
    int h = x->ly.dims[1], wd = x->ly.dims[2];
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER"))
        same_pads(&w, (int)(h + pre[0] + pre[2]), (int)(wd + pre[1] + pre[3]), ap[5] == 'U', w.p);
    else if (!strcmp(ap, "VALID")) memset(w.p, 0, sizeof w.p);
    else if (strcmp(ap, "NOTSET")) return imp_err(m, LC_ERR_INVALID, "auto_pad '%s' is not an ONNX value", ap);
    for (int i = 0; i < 4; i++) w.p[i] += pre[i]; /* the Pad's zeros */
    LC_TRY(conv_pad(m, &w, h, wd, pad_node, pad, sizeof pad));
    int64_t oh = (h + w.p[0] + w.p[2] - w.k[0]), ow = (wd + w.p[1] + w.p[3] - w.k[1]);
    if (oh < 0 || ow < 0) return imp_err(m, LC_ERR_INVALID, "the kernel does not fit the padded input");
    lc_shape o = {3, {(int)f, (int)(oh / w.s[0] + 1), (int)(ow / w.s[1] + 1)}};
    int id = imp_add_node(m, "conv2d", x->node, IMP_NONE);
    if (id < 0) return NOMEM();
    name_from_weight(m, id, wt->name);
    snprintf(m->nodes[id].attrs, sizeof m->nodes[id].attrs,
             ", \"filters\": %lld, \"kernel\": [%lld, %lld], \"stride\": [%lld, %lld], \"pad\": %s, \"bias\": %s",
             (long long)f, (long long)w.k[0], (long long)w.k[1], (long long)w.s[0], (long long)w.s[1], pad,
             b ? "true" : "false");
    LC_TRY(imp_param(m, id, "weight", wt, 1.0, 4, wt->c.dims));
    if (b) LC_TRY(imp_param(m, id, "bias", b, 1.0, 1, &f));
    return imp_set_act(m, 0, id, &o, NULL);
}

static lc_status op_batchnorm(imp *m)
{
    static const char *const known[] = {"epsilon", "momentum", "training_mode", "spatial", "is_test", NULL};
    LC_TRY(imp_check_attrs(m, known));
    LC_TRY(need_batch(m));
    LC_TRY(imp_one_output(m));
    imp_val *x, *c[4];
    LC_TRY(imp_act(m, 0, &x));
    for (int k = 0; k < 4; k++) LC_TRY(imp_const(m, k + 1, true, &c[k]));
    int64_t tm, spatial;
    double eps, mom;
    LC_TRY(imp_attr_int(m, "training_mode", 0, &tm));
    LC_TRY(imp_attr_int(m, "spatial", 1, &spatial));
    LC_TRY(imp_attr_float(m, "epsilon", 1e-5, &eps));
    LC_TRY(imp_attr_float(m, "momentum", 0.9, &mom));
    if (tm) return imp_err(m, LC_ERR_UNSUPPORTED, "training_mode 1: inference graphs only");
    if (spatial != 1) return imp_err(m, LC_ERR_UNSUPPORTED, "spatial 0: layca normalises per channel");
    if (x->ly.rank != 3 && x->ly.rank != 1)
        return imp_err(m, LC_ERR_UNSUPPORTED, "input '%s': layca normalises [N, C, H, W] or [N, C]", x->name);
    if (!(eps >= 1e-12 && eps <= 1)) return imp_err(m, LC_ERR_UNSUPPORTED, "epsilon %g is not in [1e-12, 1]", eps);
    if (!(mom >= 0 && mom <= 1)) return imp_err(m, LC_ERR_UNSUPPORTED, "momentum %g is not in [0, 1]", mom);
    int64_t ch = x->ly.dims[0];
    for (int k = 0; k < 4; k++)
        if (c[k]->c.numel != ch || c[k]->c.rank != 1)
            return imp_err(m, LC_ERR_INVALID, "input %d ('%s') must have %lld values, one per channel", k + 1,
                           c[k]->name, (long long)ch);
    lc_shape ox = x->ox, ly = x->ly;
    int id = imp_add_node(m, "batchnorm", x->node, IMP_NONE);
    if (id < 0) return NOMEM();
    name_from_weight(m, id, c[0]->name);
    snprintf(m->nodes[id].attrs, sizeof m->nodes[id].attrs, ", \"momentum\": %.9g, \"epsilon\": %.9g, \"affine\": true",
             mom, eps);
    static const char *const suffix[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int k = 0; k < 4; k++) LC_TRY(imp_param(m, id, suffix[k], c[k], 1.0, 1, &ch));
    return imp_set_act(m, 0, id, &ox, &ly);
}

/* A dense layer [units, in] from W (already in layca's layout) on x. */
static lc_status add_dense(imp *m, imp_val *x, const char *wname, int64_t units, float *w, const imp_val *bias,
                           double beta)
{
    int64_t in = x->ly.dims[0], dims[2] = {units, in};
    lc_shape o = {1, {(int)units}};
    int id = imp_add_node(m, "dense", x->node, IMP_NONE);
    if (id < 0) {
        free(w);
        return NOMEM();
    }
    name_from_weight(m, id, wname);
    m->nodes[id].units = (int)units;
    m->nodes[id].bias = bias != NULL;
    LC_TRY(imp_add_tensor(m, id, "weight", 2, dims, w));
    if (bias) {
        float *b = malloc((size_t)units * sizeof *b);
        if (!b) return NOMEM();
        for (int64_t i = 0; i < units; i++) b[i] = (float)(beta * bias->c.f[bias->c.numel == 1 ? 0 : i]);
        LC_TRY(imp_add_tensor(m, id, "bias", 1, &units, b));
    }
    return imp_set_act(m, 0, id, &o, NULL);
}

/* W[n][k] = scale * B[k][n] (trans) or scale * B[n][k]. */
static float *dense_weight(const imp_val *b, bool trans, double scale)
{
    int64_t r = b->c.dims[0], c = b->c.dims[1];
    float *w = malloc((size_t)(r * c > 0 ? r * c : 1) * sizeof *w);
    if (!w) return NULL;
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < c; j++) {
            float v = (float)(scale * b->c.f[i * c + j]);
            if (trans) w[j * r + i] = v;
            else w[i * c + j] = v;
        }
    return w;
}

static lc_status flat_input(imp *m, imp_val *x)
{
    char b[64];
    if (x->ox.rank != 1)
        return imp_err(m, LC_ERR_UNSUPPORTED, "input '%s' is %s per example; layca's dense layer takes [N, features] "
                       "(no batched matrix products)", x->name, shape_str(&x->ox, b, sizeof b));
    return LC_OK;
}

static lc_status op_gemm(imp *m)
{
    static const char *const known[] = {"alpha", "beta", "transA", "transB", NULL};
    LC_TRY(imp_check_attrs(m, known));
    LC_TRY(need_batch(m));
    imp_val *x, *b, *c = NULL;
    LC_TRY(imp_act(m, 0, &x));
    LC_TRY(flat_input(m, x));
    LC_TRY(imp_const(m, 1, true, &b));
    if (imp_has_input(m, 2)) LC_TRY(imp_const(m, 2, true, &c));
    int64_t ta, tb;
    double alpha, beta;
    LC_TRY(imp_attr_int(m, "transA", 0, &ta));
    LC_TRY(imp_attr_int(m, "transB", 0, &tb));
    LC_TRY(imp_attr_float(m, "alpha", 1, &alpha));
    LC_TRY(imp_attr_float(m, "beta", 1, &beta));
    if (ta) return imp_err(m, LC_ERR_UNSUPPORTED, "transA 1: the activation is [N, features] in layca (transA 0)");
    int64_t k = x->ly.dims[0];
    if (b->c.rank != 2 || b->c.dims[tb ? 1 : 0] != k)
        return imp_err(m, LC_ERR_INVALID, "B ('%s') must be a matrix with %lld %s", b->name, (long long)k,
                       tb ? "columns" : "rows");
    int64_t units = b->c.dims[tb ? 0 : 1];
    if (units < 1 || units > (1 << 24))
        return imp_err(m, LC_ERR_UNSUPPORTED, "%lld units (layca's dense layers have 1 to %d)", (long long)units,
                       1 << 24);
    if (c) {
        bool vec = c->c.numel == units && (c->c.rank == 1 || (c->c.rank == 2 && c->c.dims[0] == 1));
        if (c->c.numel != 1 && !vec)
            return imp_err(m, LC_ERR_UNSUPPORTED, "C ('%s') must be a scalar or a vector of %lld (a bias; no per-row "
                           "bias)", c->name, (long long)units);
    }
    float *w = dense_weight(b, !tb, alpha);
    if (!w) return NOMEM();
    return add_dense(m, x, b->name, units, w, c, beta);
}

static lc_status op_matmul(imp *m)
{
    static const char *const known[] = {NULL};
    LC_TRY(imp_check_attrs(m, known));
    LC_TRY(need_batch(m));
    imp_val *x, *b;
    LC_TRY(imp_act(m, 0, &x));
    LC_TRY(flat_input(m, x));
    LC_TRY(imp_const(m, 1, true, &b));
    int64_t k = x->ly.dims[0];
    if (b->c.rank != 2 || b->c.dims[0] != k || b->c.dims[1] < 1 || b->c.dims[1] > (1 << 24))
        return imp_err(m, LC_ERR_UNSUPPORTED, "B ('%s') must be a [%lld, units] matrix, 1 to %d units", b->name,
                       (long long)k, 1 << 24);
    float *w = dense_weight(b, true, 1.0);
    if (!w) return NOMEM();
    return add_dense(m, x, b->name, b->c.dims[1], w, NULL, 1.0);
}

/* Constant: its value joins the constants, as an initializer's does. */
static lc_status op_constant(imp *m)
{
    static const char *const known[] = {"value", "value_float", "value_floats", "value_int", "value_ints", NULL};
    LC_TRY(imp_check_attrs(m, known));
    LC_TRY(imp_one_output(m));
    if (m->nd->n_attribute != 1)
        return imp_err(m, LC_ERR_INVALID, "%zu attributes: a Constant has one of value, value_float, value_floats, "
                       "value_int, value_ints", m->nd->n_attribute);
    const Onnx__AttributeProto *a = m->nd->attribute[0];
    const char *an = a->name, *out = m->nd->n_output ? m->nd->output[0] : "";
    lc_onnx_value c;
    memset(&c, 0, sizeof c);
    if (!strcmp(an, "value")) {
        if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR || !a->t)
            return imp_err(m, LC_ERR_INVALID, "attribute 'value' must be a TENSOR");
        if (lc_onnx_value_from_proto(a->t, m->where, &c) != LC_OK) {
            char msg[512];
            const char *e = lc_error_message();
            size_t n = strlen(m->where);
            if (!strncmp(e, m->where, n) && !strncmp(e + n, ": ", 2)) e += n + 2; /* imp_err names the file */
            snprintf(msg, sizeof msg, "%s", e);
            return imp_err(m, LC_ERR_UNSUPPORTED, "attribute 'value': %s", msg);
        }
    } else {
        bool f = !strncmp(an, "value_float", 11), many = an[strlen(an) - 1] == 's';
        Onnx__AttributeProto__AttributeType want =
            f ? (many ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS : ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
              : (many ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS : ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
        if (a->type != want)
            return imp_err(m, LC_ERR_INVALID, "attribute '%s' must be %s", an,
                           f ? (many ? "FLOATS" : "a FLOAT") : (many ? "INTS" : "an INT"));
        size_t n = many ? (f ? a->n_floats : a->n_ints) : 1;
        if (n > ((size_t)1 << 31)) return imp_err(m, LC_ERR_UNSUPPORTED, "attribute '%s' has too many values", an);
        c.rank = many;
        c.dims[0] = (int64_t)n;
        c.numel = (int64_t)n;
        if (f) c.f = malloc((n ? n : 1) * sizeof *c.f);
        else c.i64 = malloc((n ? n : 1) * sizeof *c.i64);
        if (!c.f && !c.i64) return NOMEM();
        for (size_t i = 0; i < n; i++) {
            if (f) c.f[i] = many ? a->floats[i] : a->f;
            else c.i64[i] = many ? a->ints[i] : a->i;
        }
    }
    snprintf(c.name, sizeof c.name, "%s", out);
    if (!out[0]) {
        lc_onnx_value_deinit(&c);
        return LC_OK;
    }
    return imp_add_const(m, out, &c);
}

/* Identity: another name for its input (an activation or a constant). */
static lc_status op_identity(imp *m)
{
    static const char *const known[] = {NULL};
    LC_TRY(imp_check_attrs(m, known));
    imp_val *x;
    LC_TRY(imp_input(m, 0, &x));
    return imp_alias(m, 0, x);
}

/* Pad in constant mode on the height and width: no layca node; the padding
 * is folded into the one Conv, MaxPool or AveragePool that uses the output
 * (padded_input): zeros before a Conv or an AveragePool (whose padding
 * then counts), -inf before a MaxPool (layca's max pooling ignores its
 * padding).  Opset < 11: attributes pads and value; later: the inputs pads
 * and constant_value, constants. */
static lc_status op_pad(imp *m)
{
    static const char *const known[] = {"mode", "pads", "value", NULL};
    LC_TRY(imp_check_attrs(m, known));
    LC_TRY(need_batch(m));
    imp_val *x;
    LC_TRY(imp_act(m, 0, &x));
    LC_TRY(need_image(m, x));
    int src = (int)(x - m->vals);
    char mode[32];
    LC_TRY(imp_attr_str(m, "mode", "constant", mode, sizeof mode));
    if (strcmp(mode, "constant"))
        return imp_err(m, LC_ERR_UNSUPPORTED, "mode '%s': layca folds only a constant Pad (into the padding of the Conv "
                       "or pooling after it)", mode);
    int64_t p[8];
    int n = 0;
    double value = 0;
    if (m->opset < 11) {
        LC_TRY(imp_attr_ints(m, "pads", p, 8, &n));
        if (n < 0) return imp_err(m, LC_ERR_INVALID, "attribute 'pads' is missing");
        LC_TRY(imp_attr_float(m, "value", 0, &value));
    } else {
        if (imp_attr(m, "pads") || imp_attr(m, "value"))
            return imp_err(m, LC_ERR_INVALID, "attributes pads and value are inputs from opset 11 on (this model's "
                           "opset is %d)", m->opset);
        imp_val *c;
        LC_TRY(imp_input(m, 1, &c));
        if (c->kind != IMP_CONST)
            return imp_err(m, LC_ERR_UNSUPPORTED, "the pads '%s' are computed in the graph: layca folds a Pad whose "
                           "pads are a constant (an initializer or a Constant)", c->name);
        LC_TRY(imp_const(m, 1, false, &c));
        if (c->c.numel > 8)
            return imp_err(m, LC_ERR_UNSUPPORTED, "the pads '%s' have %lld values (8 for a [N, C, H, W] input)", c->name,
                           (long long)c->c.numel);
        n = (int)c->c.numel;
        memcpy(p, c->c.i64, (size_t)n * sizeof *p);
        if (imp_has_input(m, 2)) {
            LC_TRY(imp_const(m, 2, true, &c));
            if (c->c.numel != 1) return imp_err(m, LC_ERR_INVALID, "the constant_value '%s' must be a scalar", c->name);
            value = c->c.f[0];
        }
        if (imp_has_input(m, 3))
            return imp_err(m, LC_ERR_UNSUPPORTED, "the axes input is not supported (pads for all 4 axes)");
    }
    if (n != 8) return imp_err(m, LC_ERR_UNSUPPORTED, "pads has %d values (8 for a [N, C, H, W] input)", n);
    for (int i = 0; i < 8; i++)
        if (p[i] < 0 || p[i] > 1024)
            return imp_err(m, LC_ERR_UNSUPPORTED, "pad %lld: layca pads by 0 to 1024 (a negative pad crops)",
                           (long long)p[i]);
    if (p[0] || p[1] || p[4] || p[5])
        return imp_err(m, LC_ERR_UNSUPPORTED, "pads [%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld] pad the batch or "
                       "channel axis: layca pads the height and width only", (long long)p[0], (long long)p[1],
                       (long long)p[2], (long long)p[3], (long long)p[4], (long long)p[5], (long long)p[6],
                       (long long)p[7]);
    int64_t sp[4] = {p[2], p[3], p[6], p[7]}; /* [top, left, bottom, right] */
    const char *out = m->nd->n_output ? m->nd->output[0] : "";
    if (!out[0]) return LC_OK;
    /* the one node that uses the output */
    int uses = imp_uses(m, out);
    const Onnx__NodeProto *u = NULL;
    size_t uk = 0;
    for (size_t i = 0; i < m->g->n_node && !u; i++)
        for (size_t k = 0; k < m->g->node[i]->n_input && !u; k++)
            if (!strcmp(m->g->node[i]->input[k], out)) u = m->g->node[i], uk = k;
    const char *uop = u && u->op_type ? u->op_type : "";
    const char *uname = u ? (u->name && u->name[0] ? u->name : u->n_output ? u->output[0] : "") : "";
    bool conv = !strcmp(uop, "Conv"), maxpool = !strcmp(uop, "MaxPool"), avg = !strcmp(uop, "AveragePool");
    if (uses != 1)
        return imp_err(m, LC_ERR_UNSUPPORTED, "its output '%s' has %d uses: layca folds a Pad into the one Conv, "
                       "MaxPool or AveragePool that uses it", out, uses);
    if (!u)
        return imp_err(m, LC_ERR_UNSUPPORTED, "its output '%s' is the graph's output: layca folds a Pad into the Conv, "
                       "MaxPool or AveragePool after it", out);
    if (!(conv || maxpool || avg) || uk != 0)
        return imp_err(m, LC_ERR_UNSUPPORTED, "its output '%s' goes to node '%s' (%s)%s: layca folds a Pad only into the "
                       "Conv, MaxPool or AveragePool after it", out, uname, uop, uk ? " as a weight" : "");
    if (maxpool && !(value <= -FLT_MAX))
        return imp_err(m, LC_ERR_UNSUPPORTED, "constant value %g before the MaxPool '%s': layca's padded max pooling "
                       "ignores its padding (as -inf would); padding with %g can change the maxima", value, uname,
                       value);
    if (!maxpool && value != 0)
        return imp_err(m, LC_ERR_UNSUPPORTED, "constant value %g before the %s '%s': layca pads a %s with zeros", value,
                       uop, uname, conv ? "convolution" : "counting average pooling");
    return imp_set_pad(m, 0, src, sp);
}

static const struct {
    const char *name;
    imp_op_fn fn;
} op_table[] = {
    {"Conv", op_conv},
    {"Gemm", op_gemm},
    {"MatMul", op_matmul},
    {"Add", op_add},
    {"Relu", op_relu},
    {"LeakyRelu", op_leaky_relu},
    {"MaxPool", op_maxpool},
    {"AveragePool", op_avgpool},
    {"GlobalAveragePool", op_gap},
    {"BatchNormalization", op_batchnorm},
    {"Dropout", op_dropout},
    {"Flatten", op_flatten},
    {"Reshape", op_reshape},
    {"Softmax", op_softmax},
    {"Constant", op_constant},
    {"Identity", op_identity},
    {"Pad", op_pad},
};

imp_op_fn imp_op_find(const char *op_type)
{
    for (size_t i = 0; i < LC_COUNTOF(op_table); i++)
        if (!strcmp(op_table[i].name, op_type)) return op_table[i].fn;
    return NULL;
}

/* ---- the model file ---- */

static const char *in_name(const imp *m, int node) { return node == IMP_INPUT ? "input" : m->nodes[node].name; }

lc_status imp_write_json(imp *m, const Onnx__ModelProto *mp, lc_onnx_import *out)
{
    lc_strbuf b = {0};
    char name[LC_NAME_MAX];
    imp_make_name(m, m->g->name && m->g->name[0] ? m->g->name : "onnx-model", "", name);
    lc_strbuf_printf(&b, "{\n  \"format\": \"layca-model/1\",\n  \"name\": ");
    lc_strbuf_json_string(&b, name);
    char desc[256];
    snprintf(desc, sizeof desc, "imported from ONNX (producer %s %s, opset %d)",
             mp->producer_name && mp->producer_name[0] ? mp->producer_name : "unknown",
             mp->producer_version ? mp->producer_version : "", m->opset);
    lc_strbuf_printf(&b, ",\n  \"description\": ");
    lc_strbuf_json_string(&b, desc);
    lc_strbuf_printf(&b, ",\n  \"input\": {\"shape\": [");
    for (int i = 0; i < m->input_shape.rank; i++) lc_strbuf_printf(&b, "%s%d", i ? ", " : "", m->input_shape.dims[i]);
    lc_strbuf_printf(&b, "]},\n  \"classes\": %d,\n  \"nodes\": [\n", m->classes);
    for (int i = 0; i < m->n_nodes; i++) {
        const imp_node *n = &m->nodes[i];
        lc_strbuf_printf(&b, "    {\"name\": ");
        lc_strbuf_json_string(&b, n->name);
        lc_strbuf_printf(&b, ", \"op\": \"%s\", \"inputs\": [", n->op);
        for (int k = 0; k < n->n_in; k++) {
            if (k) lc_strbuf_printf(&b, ", ");
            lc_strbuf_json_string(&b, in_name(m, n->in[k]));
        }
        lc_strbuf_printf(&b, "]");
        if (!strcmp(n->op, "dense"))
            lc_strbuf_printf(&b, ", \"units\": %d, \"bias\": %s", n->units, n->bias ? "true" : "false");
        lc_strbuf_printf(&b, "%s}%s\n", n->attrs, i + 1 < m->n_nodes ? "," : "");
    }
    lc_strbuf_printf(&b, "  ],\n  \"loss\": \"softmax_cross_entropy\"\n}\n");
    if (b.oom) {
        lc_strbuf_free(&b);
        return NOMEM();
    }
    out->json = b.s;
    return LC_OK;
}

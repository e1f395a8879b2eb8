/* Registry-driven op tests: every op a model file may name (lc_ir.h's
 * LC_OP_TABLE with json = 1) is tested by being registered.  For each one a
 * model is built from the registry's attribute examples:
 *   input -> pre (a trainable layer, so the op's backward is exercised)
 *         -> the op -> flatten -> dense head -> softmax cross-entropy
 * (input [2, 6, 6] with a 1x1 conv as pre, or a flat [12] input with a
 * dense pre when the op needs a flat input), and checked:
 *   - JSON: the examples parse; a missing required attribute, an unknown
 *     key and a wrong number of inputs are errors naming them;
 *   - the reference's gradients (src/ref/graph.c) against central finite
 *     differences of the reference loss;
 *   - the device (forward value of the op, loss, every parameter gradient)
 *     against the reference.
 * And every module's table is complete (lc_ops_check, lc_exec_ops_check,
 * lc_ref_ops_check). */
#include "lc_test.h"
#include "lc_test_rt.h"

#include <math.h>
#include <string.h>

#include "lc_exec.h"
#include "lc_model.h"
#include "ref_graph.h"

#define N 3 /* batch */

static lc_rt *rt;

/* The op's node as JSON: its attributes' examples, minus `skip` (a key to
 * leave out, or NULL), plus `extra` (text, or ""), its inputs `ins`. */
static void node_json(char *buf, size_t len, const lc_op_info *o, const char *skip, const char *extra, const char *ins)
{
    size_t k = (size_t)snprintf(buf, len, "{\"name\": \"t\", \"op\": \"%s\", \"inputs\": %s", o->name, ins);
    for (int a = 0; a < o->n_attrs && k < len; a++)
        if (!skip || strcmp(skip, o->attrs[a].key))
            k += (size_t)snprintf(buf + k, len - k, ", \"%s\": %s", o->attrs[a].key, o->attrs[a].example);
    if (k < len) snprintf(buf + k, len - k, "%s}", extra);
}

/* The test model around the op's node; flat: the flat variant. */
static void model_json(char *buf, size_t len, const char *node, bool flat)
{
    snprintf(buf, len,
             "{\"format\": \"layca-model/1\", \"input\": {\"shape\": %s}, \"classes\": 4,"
             " \"defaults\": {\"init\": \"glorot_uniform\", \"bias\": true, \"bias_init\": \"constant\","
             " \"bias_value\": 0.05}, \"nodes\": [%s, %s, {\"name\": \"f\", \"op\": \"flatten\"},"
             " {\"name\": \"head\", \"op\": \"dense\", \"units\": 4}], \"loss\": \"softmax_cross_entropy\"}",
             flat ? "[12]" : "[2, 6, 6]",
             flat ? "{\"name\": \"pre\", \"op\": \"dense\", \"units\": 12}"
                  : "{\"name\": \"pre\", \"op\": \"conv2d\", \"filters\": 2, \"kernel\": 1}",
             node);
}

static const char *ins_of(const lc_op_info *o) { return o->nin == 2 ? "[\"pre\", \"pre\"]" : "[\"pre\"]"; }

static lc_status parse(const char *json, lc_graph **g)
{
    return lc_model_parse(json, strlen(json), "t.json", g, NULL);
}

/* The op's test graph, compiled for training at batch N (ReLUs unfused:
 * the op's own lowering is what is tested); NULL when neither variant
 * compiles (an error then). */
static lc_graph *op_graph(const lc_op_info *o)
{
    char node[1024], json[2048];
    node_json(node, sizeof node, o, NULL, "", ins_of(o));
    for (int flat = 0; flat < 2; flat++) {
        model_json(json, sizeof json, node, flat);
        lc_graph *g = NULL;
        if (parse(json, &g) != LC_OK) continue; /* shape inference runs when parsing */
        g->no_fusion = true;
        g->nodes[lc_graph_find(g, "t")].keep_value = true; /* read after the step */
        if (lc_graph_compile(g, N, true, NULL) == LC_OK) return g;
        lc_graph_destroy(g);
    }
    ck_abort_msg("%s: the test model compiles neither with a [2, 6, 6] nor with a flat input: %s", o->name,
                 lc_error_message());
    return NULL;
}

static void random_inputs(const lc_graph *g, float *params, float *x, int32_t *y, uint64_t seed)
{
    lc_graph_init_params(g, params, seed);
    lc_rng r;
    lc_rng_seed(&r, seed + 1);
    /* running variances away from zero, the rest as initialised */
    int64_t k = lc_shape_numel(&g->nodes[g->input].shape);
    for (int64_t i = 0; i < N * k; i++) x[i] = (float)(2 * lc_rng_uniform(&r) - 1);
    for (int i = 0; i < N; i++) y[i] = (int32_t)(i % g->classes);
}

START_TEST(tables_complete)
{
    ck_assert_msg(lc_ops_check() == LC_OK, "%s", lc_error_message());
    ck_assert_msg(lc_exec_ops_check() == LC_OK, "%s", lc_error_message());
    ck_assert_msg(lc_ref_ops_check() == LC_OK, "%s", lc_error_message());
    int json = 0;
    for (int op = 0; op < LC_OP_COUNT; op++) {
        const lc_op_info *o = lc_op_get((lc_op)op);
        if (!o->json) continue;
        json++;
        ck_assert_int_eq(lc_op_find(o->name), op);
    }
    ck_assert_int_ge(json, 10);
    ck_assert_int_eq(lc_op_find("softmax_cross_entropy"), -1); /* the loss is not a node of a model file */
    ck_assert_int_eq(lc_op_find("no_such_op"), -1);
}
END_TEST

START_TEST(json_attributes)
{
    const lc_op_info *o = lc_op_get((lc_op)_i);
    if (!o->json) return;
    char node[1024], json[2048];
    lc_graph *g = op_graph(o);
    bool flat = lc_shape_numel(&g->nodes[g->input].shape) == 12 && g->nodes[g->input].shape.rank == 1;
    lc_graph_destroy(g);
    /* each required attribute, left out */
    for (int a = 0; a < o->n_attrs; a++) {
        if (!o->attrs[a].required) continue;
        node_json(node, sizeof node, o, o->attrs[a].key, "", ins_of(o));
        model_json(json, sizeof json, node, flat);
        ck_assert_msg(parse(json, &g) != LC_OK, "%s without %s parsed", o->name, o->attrs[a].key);
        ck_assert_msg(strstr(lc_error_message(), o->attrs[a].key), "%s: '%s'", o->name, lc_error_message());
    }
    /* an unknown key */
    node_json(node, sizeof node, o, NULL, ", \"bogus_key\": 1", ins_of(o));
    model_json(json, sizeof json, node, flat);
    ck_assert(parse(json, &g) != LC_OK);
    ck_assert_msg(strstr(lc_error_message(), "bogus_key") && strstr(lc_error_message(), "unknown key"), "%s: '%s'",
                  o->name, lc_error_message());
    /* one input too many */
    node_json(node, sizeof node, o, NULL, "", o->nin == 2 ? "[\"pre\", \"pre\", \"pre\"]" : "[\"pre\", \"pre\"]");
    model_json(json, sizeof json, node, flat);
    ck_assert(parse(json, &g) != LC_OK);
    ck_assert_msg(strstr(lc_error_message(), "inputs") && strstr(lc_error_message(), o->name), "%s: '%s'", o->name,
                  lc_error_message());
    /* registry-parsed attributes: the default when absent; a non-numeric value */
    for (int a = 0; a < o->n_attrs; a++) {
        if (!o->attrs[a].at) continue;
        node_json(node, sizeof node, o, o->attrs[a].key, "", ins_of(o));
        model_json(json, sizeof json, node, flat);
        ck_assert_msg(parse(json, &g) == LC_OK, "%s: %s", o->name, lc_error_message());
        const lc_node *t = &g->nodes[lc_graph_find(g, "t")];
        ck_assert_msg(*(const double *)((const char *)t + o->attrs[a].at) == o->attrs[a].def,
                      "%s: %s is not its default when absent", o->name, o->attrs[a].key);
        lc_graph_destroy(g);
        char extra[64];
        snprintf(extra, sizeof extra, ", \"%s\": \"x\"", o->attrs[a].key);
        node_json(node, sizeof node, o, o->attrs[a].key, extra, ins_of(o));
        model_json(json, sizeof json, node, flat);
        ck_assert(parse(json, &g) != LC_OK);
        ck_assert_msg(strstr(lc_error_message(), o->attrs[a].key), "%s: '%s'", o->name, lc_error_message());
    }
}
END_TEST

/* The reference loss (mean over the batch). */
static double ref_loss(const lc_graph *g, const float *p, const float *x, const int32_t *y)
{
    ref_run r;
    ref_run_graph(&r, g, p, x, y, N);
    double l = r.loss;
    ref_run_free(&r, g);
    return l;
}

START_TEST(reference_vs_finite_differences)
{
    const lc_op_info *o = lc_op_get((lc_op)_i);
    if (!o->json) return;
    lc_graph *g = op_graph(o);
    int64_t k = lc_shape_numel(&g->nodes[g->input].shape);
    float *p = calloc((size_t)g->param_floats + 1, 4), *x = calloc((size_t)(N * k), 4);
    int32_t y[N];
    random_inputs(g, p, x, y, 11 + (uint64_t)_i);
    ref_run r;
    ref_run_graph(&r, g, p, x, y, N);
    /* every trainable parameter tensor: its largest-gradient entry and a few others */
    for (int t = 0; t < g->n_params; t++) {
        const lc_param *pp = &g->params[t];
        if (!g->nodes[pp->node].trainable) continue;
        double gmax = 0;
        for (int64_t e = 0; e < pp->numel; e++) gmax = fmax(gmax, fabs(r.pgrad[pp->offset + e]));
        for (int64_t e = 0; e < pp->numel; e += 1 + pp->numel / 5) {
            float *w = &p[pp->offset + e], w0 = *w;
            *w = w0 + 1e-3f;
            double up = ref_loss(g, p, x, y), hu = (double)*w - w0;
            *w = w0 - 1e-3f;
            double dn = ref_loss(g, p, x, y), hd = (double)w0 - *w;
            *w = w0;
            double fd = (up - dn) / (hu + hd), an = r.pgrad[pp->offset + e];
            ck_assert_msg(fabs(fd - an) <= 2e-3 * fmax(gmax, 1e-3) + 1e-6,
                          "%s: d loss / d %s[%lld]: reference %.8g, finite differences %.8g (largest %.3g)", o->name,
                          g->nodes[pp->node].name, (long long)e, an, fd, gmax);
        }
    }
    ref_run_free(&r, g);
    free(p);
    free(x);
    lc_graph_destroy(g);
}
END_TEST

static double max_abs(const float *a, const double *b, size_t n, double *bmax)
{
    double d = 0;
    *bmax = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        if (a[i] != a[i]) d = INFINITY;
        *bmax = fmax(*bmax, fabs(b[i]));
    }
    return d;
}

START_TEST(device_vs_reference)
{
    const lc_op_info *o = lc_op_get((lc_op)_i);
    if (!o->json) return;
    if (!rt) rt = lc_test_rt_create();
    lc_graph *g = op_graph(o);
    int64_t k = lc_shape_numel(&g->nodes[g->input].shape);
    float *p = calloc((size_t)g->param_floats + 1, 4), *x = calloc((size_t)(N * k), 4);
    int32_t y[N];
    random_inputs(g, p, x, y, 29 + (uint64_t)_i);
    lc_exec *ex;
    ck_assert_msg(lc_exec_create(&ex, rt, g) == LC_OK, "%s: %s", o->name, lc_error_message());
    lc_exec_set_seed(ex, 77);
    lc_exec_set_step(ex, 0);
    ck_assert_int_eq(lc_exec_write_params(ex, p), LC_OK);
    ck_assert_int_eq(lc_exec_set_batch(ex, x, y, N), LC_OK);
    ck_assert_msg(lc_exec_forward(ex) == LC_OK && lc_exec_backward(ex) == LC_OK, "%s: %s", o->name,
                  lc_error_message());
    /* the reference with the executor's dropout masks */
    uint8_t **masks = calloc((size_t)g->n_nodes, sizeof *masks);
    for (int i = 0; i < g->n_forward; i++) {
        const lc_node *nd = &g->nodes[i];
        if (nd->op != LC_OP_DROPOUT) continue;
        size_t cnt = (size_t)N * (size_t)lc_shape_numel(&nd->shape);
        masks[i] = malloc(cnt);
        uint64_t key = lc_dropout_key(77, 0, nd->name);
        for (size_t e = 0; e < cnt; e++) masks[i][e] = lc_dropout_keep(key, e, lc_dropout_threshold(nd->rate));
    }
    ref_opts ro = {.masks = (const uint8_t *const *)masks};
    ref_run r;
    ref_run_graph_opts(&r, g, p, x, y, N, &ro);
    /* the op's value */
    int t = lc_graph_find(g, "t");
    size_t cnt = (size_t)N * (size_t)lc_shape_numel(&g->nodes[t].shape);
    float *v = malloc(cnt * 4);
    ck_assert_int_eq(lc_exec_read_node(ex, t, v), LC_OK);
    double ref_max, d = max_abs(v, r.val[t], cnt, &ref_max);
    ck_assert_msg(d <= 1e-4 * fmax(ref_max, 1), "%s: value differs by %.3g (largest %.3g)", o->name, d, ref_max);
    double loss_sum, correct;
    ck_assert_int_eq(lc_exec_stats(ex, &loss_sum, &correct, true), LC_OK);
    ck_assert_msg(fabs(loss_sum / N - r.loss) <= 1e-4 * fmax(fabs(r.loss), 1), "%s: loss %.8g, reference %.8g",
                  o->name, loss_sum / N, r.loss);
    /* every parameter gradient (the pre layer's go through the op's backward) */
    float *gd = calloc((size_t)g->param_floats + 1, 4);
    ck_assert_int_eq(lc_exec_read_grads(ex, gd), LC_OK);
    /* the scale of the gradients: a tensor whose gradient is zero in exact
     * arithmetic (a bias before a batchnorm) gets rounding at that scale */
    double scale = 0;
    for (int q = 0; q < g->n_params; q++)
        for (int64_t e = 0; e < g->params[q].numel; e++)
            scale = fmax(scale, fabs(r.pgrad[g->params[q].offset + e]));
    for (int q = 0; q < g->n_params; q++) {
        const lc_param *pp = &g->params[q];
        if (!g->nodes[pp->node].trainable) continue;
        d = max_abs(gd + pp->offset, r.pgrad + pp->offset, (size_t)pp->numel, &ref_max);
        ck_assert_msg(d <= 1e-4 * fmax(ref_max, 1e-2 * scale), "%s: gradient of %s differs by %.3g (largest %.3g)",
                      o->name, g->nodes[pp->node].name, d, ref_max);
        ck_assert_msg(ref_max > 0 || strcmp(g->nodes[pp->node].name, "pre.weight"),
                      "%s: no gradient reaches pre.weight (the op's backward is not exercised)", o->name);
    }
    for (int i = 0; i < g->n_nodes; i++) free(masks[i]);
    free(masks);
    free(gd);
    free(v);
    ref_run_free(&r, g);
    lc_exec_destroy(ex);
    free(p);
    free(x);
    lc_graph_destroy(g);
}
END_TEST

START_TEST(flops_and_bytes)
{
    /* dense: 2 * batch * in * out multiply-adds plus the bias */
    const char *json = "{\"format\": \"layca-model/1\", \"input\": {\"shape\": [5]}, \"classes\": 3, \"nodes\": ["
                       "{\"name\": \"d\", \"op\": \"dense\", \"units\": 3, \"bias\": true}],"
                       " \"loss\": \"softmax_cross_entropy\"}";
    lc_graph *g;
    ck_assert_int_eq(parse(json, &g), LC_OK);
    ck_assert_int_eq(lc_graph_compile(g, 4, true, NULL), LC_OK);
    int d = lc_graph_find(g, "d");
    ck_assert_int_eq(lc_graph_node_flops(g, d, 4), 2 * 4 * 5 * 3 + 4 * 3);
    ck_assert_int_eq(lc_graph_node_bytes(g, d, 4), 4 * (4 * 5 + 15 + 3 + 4 * 3));
    int dw = g->params[g->nodes[lc_graph_find(g, "d.weight")].param_index].grad_node;
    ck_assert_int_eq(lc_graph_node_flops(g, dw, 4), 2 * 4 * 5 * 3);
    ck_assert_int_eq(lc_graph_node_bytes(g, g->input, 4), 0);
    lc_graph_destroy(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("registry");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, tables_complete);
    tcase_add_test(tc, flops_and_bytes);
    tcase_add_loop_test(tc, json_attributes, 0, LC_OP_COUNT);
    tcase_add_loop_test(tc, reference_vs_finite_differences, 0, LC_OP_COUNT);
    tcase_add_loop_test(tc, device_vs_reference, 0, LC_OP_COUNT);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int failed = lc_test_run(suite());
    if (rt) lc_rt_destroy(rt);
    return failed;
}

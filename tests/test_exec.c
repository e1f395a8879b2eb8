/* Device execution against the double-precision reference: every lowered
 * op (dense via CLBlast, bias, relu, flatten, add, softmax cross-entropy,
 * and their gradients) on odd sizes, full and partial batches. */
#include "lc_test.h"

#include <string.h>

#include "lc_exec.h"
#include "ref_graph.h"

static lc_rt *rt;

static void setup_rt(void)
{
    if (!rt && lc_rt_create(&rt, NULL, false) != LC_OK) lc_test_skip_all("no OpenCL device");
}

enum { G_MLP, G_RESIDUAL, G_FLATTEN, G_NOBIAS };

/* Builds a small graph of the given kind. */
static lc_graph *make_graph(int kind, int in, int hidden, int classes)
{
    lc_graph *g = lc_graph_create("t");
    int x;
    if (kind == G_FLATTEN) {
        lc_shape s = {3, {1, 3, in}};
        x = lc_graph_add_input(g, "input", &s);
        x = lc_graph_add_node(g, LC_OP_FLATTEN, "flat", &x, 1);
        in = 3 * in;
    } else {
        lc_shape s = {1, {in}};
        x = lc_graph_add_input(g, "input", &s);
    }
    bool bias = kind != G_NOBIAS;
    int h = lc_graph_add_dense(g, "fc1", x, hidden, bias, LC_INIT_HE_UNIFORM, LC_INIT_CONSTANT, 0.1);
    h = lc_graph_add_node(g, LC_OP_RELU, "r1", &h, 1);
    if (kind == G_RESIDUAL) {
        int h2 = lc_graph_add_dense(g, "fc2", h, hidden, bias, LC_INIT_HE_UNIFORM, LC_INIT_CONSTANT, -0.05);
        h2 = lc_graph_add_node(g, LC_OP_RELU, "r2", &h2, 1);
        int ins[2] = {h2, h};
        h = lc_graph_add_node(g, LC_OP_ADD, "sum", ins, 2);
    }
    int z = lc_graph_add_dense(g, "out", h, classes, bias, LC_INIT_GLOROT_UNIFORM, LC_INIT_CONSTANT, 0.02);
    g->logits = z;
    lc_graph_add_labels(g, "labels", classes);
    int l[2] = {z, g->labels};
    g->loss = lc_graph_add_node(g, LC_OP_SOFTMAX_CE, "loss", l, 2);
    return g;
}

/* Runs forward+backward on the device and with the reference; compares
 * logits, per-example losses, correct counts and every parameter gradient. */
static void check_graph(int kind, int in, int hidden, int classes, int planned, int n)
{
    setup_rt();
    lc_graph *g = make_graph(kind, in, hidden, classes);
    ck_assert_int_eq(lc_graph_compile(g, planned, true, NULL), LC_OK);
    lc_exec *ex;
    lc_status st = lc_exec_create(&ex, rt, g);
    ck_assert_msg(st == LC_OK, "exec: %s", lc_error_message());

    float *p = malloc((size_t)g->param_floats * 4);
    lc_graph_init_params(g, p, 7);
    int64_t xin = lc_shape_numel(&g->nodes[g->input].shape);
    float *x = malloc((size_t)(n * xin) * 4);
    int32_t *y = malloc((size_t)n * 4);
    lc_rng r;
    lc_rng_seed(&r, (uint64_t)(n * 131 + kind));
    for (int64_t i = 0; i < n * xin; i++) x[i] = (float)(2 * lc_rng_uniform(&r) - 1);
    for (int i = 0; i < n; i++) y[i] = (int32_t)lc_rng_below(&r, (uint64_t)classes);

    ck_assert_int_eq(lc_exec_write_params(ex, p), LC_OK);
    ck_assert_int_eq(lc_exec_stats(ex, NULL, NULL, true), LC_OK);
    ck_assert_int_eq(lc_exec_set_batch(ex, x, y, n), LC_OK);
    ck_assert_int_eq(lc_exec_forward(ex), LC_OK);
    ck_assert_int_eq(lc_exec_backward(ex), LC_OK);

    ref_run rr;
    ref_run_graph(&rr, g, p, x, y, n);

    float *dev = malloc((size_t)(n * classes + g->param_floats + 16) * 4);
    ck_assert_int_eq(lc_exec_read_node(ex, g->logits, dev), LC_OK);
    double e = ref_rel_err_f(dev, rr.val[g->logits], (size_t)(n * classes));
    ck_assert_msg(e < 1e-5, "logits kind %d n %d: rel err %g", kind, n, e);
    ck_assert_int_eq(lc_exec_read_node(ex, g->loss, dev), LC_OK);
    e = ref_rel_err_f(dev, rr.val[g->loss], (size_t)n);
    ck_assert_msg(e < 1e-5, "loss kind %d n %d: rel err %g", kind, n, e);
    double ls, c;
    ck_assert_int_eq(lc_exec_stats(ex, &ls, &c, true), LC_OK);
    ck_assert_msg(fabs(ls / n - rr.loss) < 1e-5 * fmax(1, rr.loss), "mean loss %g vs %g", ls / n, rr.loss);
    ck_assert_int_eq((int)c, rr.correct);

    ck_assert_int_eq(lc_exec_read_grads(ex, dev), LC_OK);
    for (int i = 0; i < g->n_params; i++) {
        const lc_param *pp = &g->params[i];
        e = ref_rel_err_f(dev + pp->offset, rr.pgrad + pp->offset, (size_t)pp->numel);
        ck_assert_msg(e < 1e-4, "grad of %s (kind %d, n %d): rel err %g", g->nodes[pp->node].name, kind, n, e);
    }
    ref_run_free(&rr, g);
    free(dev);
    free(p);
    free(x);
    free(y);
    lc_exec_destroy(ex);
    lc_graph_destroy(g);
}

START_TEST(mlp_odd_sizes)
{
    static const int nb[] = {1, 31, 33, 65};
    for (size_t i = 0; i < LC_COUNTOF(nb); i++) check_graph(G_MLP, 33, 31, 7, nb[i], nb[i]);
    check_graph(G_MLP, 1, 65, 3, 17, 17);
}
END_TEST

START_TEST(mlp_no_bias)
{
    check_graph(G_NOBIAS, 65, 33, 10, 31, 31);
}
END_TEST

START_TEST(residual_add)
{
    check_graph(G_RESIDUAL, 31, 31, 5, 33, 33);
}
END_TEST

START_TEST(flatten_input)
{
    check_graph(G_FLATTEN, 11, 17, 4, 9, 9);
}
END_TEST

/* A batch smaller than the plan (the last partial batch of an epoch) */
START_TEST(partial_batch)
{
    check_graph(G_MLP, 33, 31, 7, 65, 33);
    check_graph(G_RESIDUAL, 31, 31, 5, 64, 1);
}
END_TEST

START_TEST(batch_too_large)
{
    setup_rt();
    lc_graph *g = make_graph(G_MLP, 5, 5, 3);
    ck_assert_int_eq(lc_graph_compile(g, 4, true, NULL), LC_OK);
    lc_exec *ex;
    ck_assert_int_eq(lc_exec_create(&ex, rt, g), LC_OK);
    float x[25] = {0};
    int32_t y[5] = {0};
    ck_assert_int_eq(lc_exec_set_batch(ex, x, y, 5), LC_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lc_error_message(), "does not fit"));
    lc_exec_destroy(ex);
    lc_graph_destroy(g);
}
END_TEST

/* Numerically stable loss: huge logits give finite values. */
START_TEST(softmax_large_logits)
{
    setup_rt();
    lc_graph *g = make_graph(G_MLP, 3, 3, 4);
    ck_assert_int_eq(lc_graph_compile(g, 2, true, NULL), LC_OK);
    lc_exec *ex;
    ck_assert_int_eq(lc_exec_create(&ex, rt, g), LC_OK);
    float *p = calloc((size_t)g->param_floats, 4);
    /* identity-ish weights scaled up so logits reach ~1e3 */
    for (int i = 0; i < g->n_params; i++) {
        const lc_param *pp = &g->params[i];
        for (int64_t k = 0; k < pp->numel; k++) p[pp->offset + k] = (k % 4 == 0) ? 30.0f : 0.0f;
    }
    float x[6] = {40, 1, 2, -3, 5, 60};
    int32_t y[2] = {1, 2};
    ck_assert_int_eq(lc_exec_write_params(ex, p), LC_OK);
    ck_assert_int_eq(lc_exec_set_batch(ex, x, y, 2), LC_OK);
    ck_assert_int_eq(lc_exec_forward(ex), LC_OK);
    ck_assert_int_eq(lc_exec_backward(ex), LC_OK);
    ref_run rr;
    ref_run_graph(&rr, g, p, x, y, 2);
    float l[2];
    ck_assert_int_eq(lc_exec_read_node(ex, g->loss, l), LC_OK);
    for (int i = 0; i < 2; i++) {
        ck_assert(isfinite(l[i]));
        ck_assert_msg(fabs(l[i] - rr.val[g->loss][i]) <= 1e-5 * fmax(1, fabs(rr.val[g->loss][i])), "loss %g vs %g",
                      l[i], rr.val[g->loss][i]);
    }
    ref_run_free(&rr, g);
    free(p);
    lc_exec_destroy(ex);
    lc_graph_destroy(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("exec");
    TCase *tc = tcase_create("device_vs_reference");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, mlp_odd_sizes);
    tcase_add_test(tc, mlp_no_bias);
    tcase_add_test(tc, residual_add);
    tcase_add_test(tc, flatten_input);
    tcase_add_test(tc, partial_batch);
    tcase_add_test(tc, batch_too_large);
    tcase_add_test(tc, softmax_large_logits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int rc = lc_test_run(suite());
    lc_rt_destroy(rt);
    return rc;
}

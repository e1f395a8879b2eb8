/* The whole trainer on small generated data in the official idx format:
 * one SGD step from --init weights against a double-precision computation,
 * the disk cache of programs, loss going down, metrics lines. */
#include "lc_test.h"
#include "lc_test_files.h"
#include "lc_test_rt.h"

#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

#include "lc_metrics.h"
#include "lc_train.h"
#include "lc_test_idx.h"
#include "ref_graph.h"

static char dir[512], model_path[600], data_spec[600];

static void write_idx(const char *name_img, const char *name_lab, int n, uint64_t seed)
{
    lc_test_write_idx(dir, name_img, name_lab, n, seed, false);
}

static void setup(void)
{
    if (dir[0]) return;
    lc_rt *rt;
    rt = lc_test_rt_create();
    lc_rt_destroy(rt);
    snprintf(dir, sizeof dir, "%s/train", lc_test_tmpdir());
    ck_assert_int_eq(lc_mkdirs(dir), LC_OK);
    write_idx("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60, 1);
    write_idx("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 30, 2);
    snprintf(data_spec, sizeof data_spec, "mnist:%s", dir);
    snprintf(model_path, sizeof model_path, "%s/tiny.json", dir);
    FILE *f = fopen(model_path, "w");
    fputs("{\"format\": \"layca-model/1\", \"name\": \"tiny\", \"input\": {\"shape\": [1, 4, 4]}, \"classes\": 3,\n"
          " \"defaults\": {\"bias\": true, \"init\": \"he_uniform\", \"bias_init\": \"constant\", \"bias_value\": 0.05},\n"
          " \"nodes\": [{\"name\": \"flat\", \"op\": \"flatten\"}, {\"name\": \"fc1\", \"op\": \"dense\", \"units\": 9},\n"
          "  {\"name\": \"r1\", \"op\": \"relu\"}, {\"name\": \"fc2\", \"op\": \"dense\", \"units\": 3}]}\n", f);
    fclose(f);
    /* the cache of these tests is their own */
    char cache[600];
    snprintf(cache, sizeof cache, "%s/cache", dir);
    ck_assert_int_eq(lc_cache_dir_set(cache), LC_OK);
}

static lc_train_opts base_opts(void)
{
    lc_train_opts o;
    lc_train_opts_init(&o);
    o.model_path = model_path;
    o.data_spec = data_spec;
    o.quiet = true;
    o.device = lc_test_device();
    o.device_only = lc_test_device_only();
    return o;
}

/* One full-batch step from --init weights, compared with w - lr (g + 2 wd w)
 * computed in double from the same normalised data. */
static void one_step(double lr, double wd, double momentum)
{
    setup();
    lc_graph *g;
    lc_train_spec ts;
    ck_assert_int_eq(lc_model_load(model_path, &g, &ts), LC_OK);
    ck_assert_int_eq(lc_graph_compile(g, 60, true, NULL), LC_OK);
    float *w0 = malloc((size_t)g->param_floats * 4), *w1 = malloc((size_t)g->param_floats * 4);
    lc_graph_init_params(g, w0, 99); /* not the trainer's seed: --init must win */
    char init[700], out[700];
    snprintf(init, sizeof init, "%s/init.safetensors", dir);
    snprintf(out, sizeof out, "%s/out.safetensors", dir);
    ck_assert_int_eq(lc_model_save_params(init, g, w0), LC_OK);

    lc_train_opts o = base_opts();
    o.init_path = init;
    o.save_path = out;
    o.no_shuffle = true;
    o.spec.steps = 1;
    o.spec.batch = 60;
    o.spec.lr = lr;
    o.spec.weight_decay = wd;
    o.spec.momentum = momentum;
    lc_train_result res;
    lc_status st = lc_train_run(&o, &res);
    ck_assert_msg(st == LC_OK, "train: %s", lc_error_message());
    ck_assert_int_eq(res.steps, 1);
    lc_train_result_free(&res);
    memset(w1, 0, (size_t)g->param_floats * 4);
    ck_assert_int_eq(lc_model_load_params(out, g, w1), LC_OK);

    lc_dataset tr, te;
    lc_data_opts dopt = {.seed = 1, .classes = 3};
    double mean, sd;
    char desc[256];
    ck_assert_int_eq(lc_data_open(data_spec, &dopt, &tr, &te, &mean, &sd, desc, sizeof desc), LC_OK);
    ref_run rr;
    ref_run_graph(&rr, g, w0, tr.x, tr.y, (int)tr.n);
    double *expect = malloc((size_t)g->param_floats * sizeof *expect);
    for (int64_t i = 0; i < g->param_floats; i++) expect[i] = w0[i] - lr * (rr.pgrad[i] + 2 * wd * w0[i]);
    for (int i = 0; i < g->n_params; i++) {
        const lc_param *p = &g->params[i];
        double e = ref_rel_err_f(w1 + p->offset, expect + p->offset, (size_t)p->numel);
        ck_assert_msg(e < 1e-4, "%s after one step: rel err %g", g->nodes[p->node].name, e);
        /* and it moved */
        double moved = ref_rel_err_f(w0 + p->offset, expect + p->offset, (size_t)p->numel);
        ck_assert_msg(moved > 1e-4, "%s did not move", g->nodes[p->node].name);
    }
    ref_run_free(&rr, g);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
    free(expect);
    free(w0);
    free(w1);
    lc_graph_destroy(g);
}

START_TEST(sgd_step_matches_reference) { one_step(0.5, 0.0, 0.0); }
END_TEST

START_TEST(sgd_step_weight_decay_momentum) { one_step(0.2, 0.01, 0.9); }
END_TEST

/* The second run of the same model builds no program from source. */
START_TEST(program_cache_hit)
{
    setup();
    char cache[700];
    snprintf(cache, sizeof cache, "%s/cache2", dir);
    ck_assert_int_eq(lc_cache_dir_set(cache), LC_OK);
    lc_train_opts o = base_opts();
    o.spec.steps = 2;
    lc_train_result r1, r2;
    ck_assert_int_eq(lc_train_run(&o, &r1), LC_OK);
    ck_assert_int_gt(r1.programs_built, 0);
    ck_assert_int_eq(r1.programs_from_cache, 0);
    ck_assert_int_eq(lc_train_run(&o, &r2), LC_OK);
    ck_assert_int_eq(r2.programs_built, 0);
    /* every program the first run built, except those it rebuilt with fewer
     * work-items per group than the device allows (the second run knows) */
    ck_assert_int_gt(r2.programs_from_cache, 0);
    ck_assert_int_le(r2.programs_from_cache, r1.programs_built);
    lc_train_result_free(&r1);
    lc_train_result_free(&r2);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    ck_assert_int_eq(lc_cache_dir_set(cache), LC_OK);
}
END_TEST

/* Training learns the generated task; metrics lines carry every field. */
/* The loss records of a run with `per_epoch` steps of `examples` examples
 * an epoch, one every `every` steps and at each epoch's end: their windows
 * tile each epoch, and their example-weighted means are the epoch's train
 * loss and accuracy. */
static void check_loss_records(const lc_metrics *m, int every, int per_epoch, int examples)
{
    int k = 0;
    for (int e = 0; e < m->n_eval; e++) {
        int expect = 0;
        for (int s = e * per_epoch + 1; s <= (e + 1) * per_epoch; s++) expect += s % every == 0 || s == (e + 1) * per_epoch;
        double n = 0, loss = 0, acc = 0;
        for (int i = 0; i < expect; i++, k++) {
            ck_assert_msg(k < m->n_loss, "epoch %d: %d loss records, expected %d", e + 1, i, expect);
            const lc_loss_rec *r = &m->loss[k];
            int64_t s = (int64_t)r->step;
            ck_assert_msg(s > e * per_epoch && s <= (e + 1) * per_epoch && (s % every == 0 || s == (e + 1) * per_epoch),
                          "loss record %d at step %lld (epoch %d)", k, (long long)s, e + 1);
            ck_assert_msg(fabs(r->epoch - (double)s / per_epoch) < 1e-6, "record at step %lld: epoch %g", (long long)s,
                          r->epoch);
            ck_assert(r->examples > 0 && isfinite(r->loss) && r->acc >= 0 && r->acc <= 1 && r->lr == m->eval[e].lr);
            n += r->examples;
            loss += r->examples * r->loss;
            acc += r->examples * r->acc;
        }
        ck_assert_msg(n == examples, "epoch %d: the loss records cover %g examples, not %d", e + 1, n, examples);
        const lc_eval_rec *ev = &m->eval[e];
        ck_assert_msg(fabs(loss / n - ev->train_loss) <= 1e-5 + 1e-5 * ev->train_loss &&
                          fabs(acc / n - ev->train_acc) <= 1e-5,
                      "epoch %d: loss records average %.7f / %.7f, the epoch %.7f / %.7f", e + 1, loss / n, acc / n,
                      ev->train_loss, ev->train_acc);
    }
    ck_assert_int_eq(k, m->n_loss);
}

START_TEST(learns_and_writes_metrics)
{
    setup();
    char metrics[700];
    snprintf(metrics, sizeof metrics, "%s/m.jsonl", dir);
    lc_train_opts o = base_opts();
    o.metrics_path = metrics;
    o.spec.epochs = 15;
    o.spec.batch = 8; /* 60 examples: 7 full batches and a partial one */
    o.spec.lr = 0.05;
    o.spec.momentum = 0.9;
    o.log_every = 3;
    lc_train_result r;
    ck_assert_msg(lc_train_run(&o, &r) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(r.steps, 15 * 8);
    ck_assert_msg(r.test_acc > 0.9, "test accuracy %g", r.test_acc);
    /* the first line, once: the resolved settings */
    char *text = lc_test_read_text(metrics);
    char *nl = strchr(text, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = 0;
    static const char settings[] = "{\"kind\": \"settings\", ";
    ck_assert_msg(!strncmp(text, settings, strlen(settings)), "first line: %.200s", text);
    ck_assert_ptr_nonnull(strstr(text, "\"lr\": 0.050000000000000003"));
    ck_assert_ptr_nonnull(strstr(text, "\"momentum\": 0.90000000000000002"));
    ck_assert_ptr_nonnull(strstr(text, "\"epochs\": 15"));
    ck_assert_ptr_nonnull(strstr(text, "\"layers\": [\"fc1\", \"fc2\"]"));
    ck_assert_ptr_null(strstr(nl + 1, "\"kind\": \"settings\""));
    free(text);
    lc_metrics m;
    ck_assert_msg(lc_metrics_load(metrics, &m) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(m.n_eval, 15);
    for (int i = 0; i < m.n_eval; i++) {
        const lc_eval_rec *e = &m.eval[i];
        ck_assert_msg(e->epoch == i + 1 && isfinite(e->step) && isfinite(e->lr) && isfinite(e->train_loss) &&
                      isfinite(e->train_acc) && isfinite(e->test_loss) && isfinite(e->test_acc) && isfinite(e->time_s),
                      "eval line %d lacks a field", i);
    }
    /* every kernel layer is named, in forward order; a rotation record after
     * each epoch's first batch, and after the last step */
    ck_assert_int_eq(m.n_layers, 2);
    ck_assert_str_eq(m.layer[0], "fc1");
    ck_assert_str_eq(m.layer[1], "fc2");
    ck_assert_int_eq(m.n_rot, 16);
    double rot_first = m.rot[0].rotation[0], rot_last = m.rot[m.n_rot - 1].rotation[0];
    ck_assert_msg(rot_last > rot_first && rot_last > 0.01, "fc1 rotation %g -> %g", rot_first, rot_last);
    double first = m.eval[0].train_loss, last = m.eval[m.n_eval - 1].train_loss;
    ck_assert_msg(last < 0.5 * first, "train loss %g -> %g", first, last);
    check_loss_records(&m, 3, 8, 60);
    lc_metrics_deinit(&m);
    lc_train_result_free(&r);
}
END_TEST

START_TEST(steps_partial_epoch)
{
    setup();
    lc_train_opts o = base_opts();
    o.spec.steps = 11;
    o.spec.batch = 8;
    lc_train_result r;
    ck_assert_int_eq(lc_train_run(&o, &r), LC_OK);
    ck_assert_int_eq(r.steps, 11);
    ck_assert_int_eq(r.epochs, 2);
    lc_train_result_free(&r);
}
END_TEST

START_TEST(bad_inputs)
{
    setup();
    lc_train_opts o = base_opts();
    lc_train_result r;
    o.data_spec = "mnist:/nonexistent-folder";
    ck_assert_int_ne(lc_train_run(&o, &r), LC_OK);
    ck_assert_ptr_nonnull(strstr(lc_error_message(), "nonexistent-folder"));
    /* a data set whose examples do not fit the model */
    o = base_opts();
    char m2[700];
    snprintf(m2, sizeof m2, "%s/wrong_input.json", dir);
    FILE *f = fopen(m2, "w");
    fputs("{\"format\": \"layca-model/1\", \"input\": {\"shape\": [15]}, \"classes\": 3,"
          " \"nodes\": [{\"name\": \"fc\", \"op\": \"dense\", \"units\": 3}]}", f);
    fclose(f);
    o.model_path = m2;
    ck_assert_int_ne(lc_train_run(&o, &r), LC_OK);
    ck_assert_msg(strstr(lc_error_message(), "16 values") && strstr(lc_error_message(), "[15]"), "%s",
                  lc_error_message());
    /* a checkpoint of another shape */
    o = base_opts();
    char bad[700];
    snprintf(bad, sizeof bad, "%s/other.safetensors", dir);
    lc_graph *g;
    ck_assert_int_eq(lc_model_load(m2, &g, NULL), LC_OK);
    ck_assert_int_eq(lc_graph_compile(g, 1, true, NULL), LC_OK);
    float *p = calloc((size_t)g->param_floats, 4);
    ck_assert_int_eq(lc_model_save_params(bad, g, p), LC_OK);
    free(p);
    lc_graph_destroy(g);
    o.init_path = bad;
    ck_assert_int_ne(lc_train_run(&o, &r), LC_OK);
    ck_assert_msg(strstr(lc_error_message(), "fc1.weight"), "%s", lc_error_message());
    /* the module settings reach the runtime and the optimizer */
    o = base_opts();
    o.rt.host_threads = -2;
    ck_assert_int_eq(lc_train_run(&o, &r), LC_ERR_INVALID);
    ck_assert_msg(strstr(lc_error_message(), "host_threads"), "%s", lc_error_message());
    o = base_opts();
    o.optim_geometry.vec = 3;
    ck_assert_int_eq(lc_train_run(&o, &r), LC_ERR_INVALID);
    ck_assert_msg(strstr(lc_error_message(), "vector width 3"), "%s", lc_error_message());
}
END_TEST

/* Layca through the whole trainer: one step rotates each kernel layer by
 * arctan(rho_l) (eq. 1 rates with alpha), and the norms stay the initial
 * ones. */
static void layca_rotation_case(double alpha)
{
    setup();
    double rho = 0.1;
    lc_train_opts o = base_opts();
    o.spec.layca = 1;
    o.spec.lr = rho;
    o.spec.alpha = alpha;
    o.spec.steps = 1;
    o.spec.batch = 16;
    lc_train_result r;
    ck_assert_msg(lc_train_run(&o, &r) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(r.n_layers, 2);
    double mult[2];
    lc_ref_layer_multipliers(mult, 2, alpha);
    for (int l = 0; l < 2; l++) {
        double rl = rho * mult[l], want = 1 - 1 / sqrt(1 + rl * rl);
        ck_assert_msg(fabs(r.rotation[l] - want) <= 1e-5 * want + 1e-9, "alpha %g layer %d: rotation %.9g, want %.9g",
                      alpha, l, r.rotation[l], want);
    }
    lc_train_result_free(&r);
}

START_TEST(layca_one_step_rotation)
{
    layca_rotation_case(0.0);
    layca_rotation_case(0.5);
    layca_rotation_case(-0.3);
}
END_TEST

START_TEST(layca_keeps_norms)
{
    setup();
    lc_train_opts o = base_opts();
    o.spec.layca = 1;
    o.spec.lr = 0.05;
    o.spec.steps = 25;
    o.spec.batch = 8;
    lc_train_result r;
    ck_assert_msg(lc_train_run(&o, &r) == LC_OK, "%s", lc_error_message());
    lc_graph *g;
    ck_assert_int_eq(lc_model_load(model_path, &g, NULL), LC_OK);
    ck_assert_int_eq(lc_graph_compile(g, 8, true, NULL), LC_OK);
    float *p = malloc((size_t)g->param_floats * 4);
    lc_graph_init_params(g, p, 1); /* the trainer's default seed */
    int kl[2];
    ck_assert_int_eq(lc_graph_kernel_layers(g, kl, 2), 2);
    for (int l = 0; l < 2; l++) {
        const lc_param *pp = &g->params[kl[l]];
        double n0 = 0;
        for (int64_t i = 0; i < pp->numel; i++) n0 += (double)p[pp->offset + i] * p[pp->offset + i];
        n0 = sqrt(n0);
        ck_assert_msg(fabs(r.norm[l] - n0) <= 1e-5 * n0, "layer %d norm %.9g, initial %.9g", l, r.norm[l], n0);
        ck_assert_msg(r.rotation[l] > 0.01, "layer %d did not rotate (%g)", l, r.rotation[l]);
    }
    free(p);
    lc_graph_destroy(g);
    lc_train_result_free(&r);
}
END_TEST

/* Silhouette (cosine) against a direct computation written differently
 * (explicit cosine per pair, per-class means by search), and known values. */
static double silhouette_direct(const float *x, const int32_t *y, int n, int d)
{
    double total = 0;
    for (int i = 0; i < n; i++) {
        double best_other = INFINITY, own = 0;
        int own_n = 0;
        for (int c = 0; c < 8; c++) {
            double s = 0;
            int m = 0;
            for (int j = 0; j < n; j++) {
                if (y[j] != c || j == i) continue;
                double dot = 0, na = 0, nb = 0;
                for (int k = 0; k < d; k++) {
                    dot += (double)x[i * d + k] * x[j * d + k];
                    na += (double)x[i * d + k] * x[i * d + k];
                    nb += (double)x[j * d + k] * x[j * d + k];
                }
                s += 1 - dot / sqrt(na * nb);
                m++;
            }
            if (c == y[i]) { own = s; own_n = m; }
            else if (m > 0 && s / m < best_other) best_other = s / m;
        }
        if (own_n == 0) continue;
        double a = own / own_n;
        total += (best_other - a) / fmax(a, best_other);
    }
    return total / n;
}

START_TEST(silhouette_matches_direct)
{
    lc_rng r;
    lc_rng_seed(&r, 11);
    enum { N = 57, D = 13, C = 4 };
    float x[N * D];
    int32_t y[N];
    for (int i = 0; i < N; i++) {
        y[i] = (int32_t)lc_rng_below(&r, C);
        for (int k = 0; k < D; k++) x[i * D + k] = (float)(lc_rng_normal(&r) + (k == y[i] ? 2.0 : 0.0));
    }
    double got;
    ck_assert_int_eq(lc_silhouette_cosine(x, y, N, D, C, &got), LC_OK);
    double want = silhouette_direct(x, y, N, D);
    ck_assert_msg(fabs(got - want) < 1e-9, "silhouette %.12g vs direct %.12g", got, want);
    ck_assert(got > 0.05 && got < 1);
    /* orthogonal classes of identical vectors: exactly 1 */
    float z[6 * 2] = {1, 0, 2, 0, 3, 0, 0, 1, 0, 5, 0, 2};
    int32_t zy[6] = {0, 0, 0, 1, 1, 1};
    ck_assert_int_eq(lc_silhouette_cosine(z, zy, 6, 2, 2, &got), LC_OK);
    ck_assert_msg(fabs(got - 1) < 1e-12, "%g", got);
    /* one class only: an error, not a number */
    int32_t one[6] = {0};
    ck_assert_int_eq(lc_silhouette_cosine(z, one, 6, 2, 2, &got), LC_ERR_INVALID);
}
END_TEST

/* Fixed gating through the trainer: with a zero rate the gated network is
 * the initial network (the masks are its own ReLU patterns), so the test
 * loss equals the normal run's; once the trained layer moves, the frozen
 * patterns change the result. */
static double run_deep_layer(const char *layer, bool fixed, double lr, int steps, double *silhouette)
{
    char m[700];
    snprintf(m, sizeof m, "%s/deep.json", dir);
    FILE *f = fopen(m, "w");
    fputs("{\"format\": \"layca-model/1\", \"name\": \"deep\", \"input\": {\"shape\": [16]}, \"classes\": 3,\n"
          " \"defaults\": {\"bias\": true, \"init\": \"he_uniform\"},\n"
          " \"nodes\": [{\"name\": \"fc1\", \"op\": \"dense\", \"units\": 9}, {\"name\": \"r1\", \"op\": \"relu\"},\n"
          "  {\"name\": \"fc2\", \"op\": \"dense\", \"units\": 7}, {\"name\": \"r2\", \"op\": \"relu\"},\n"
          "  {\"name\": \"fc3\", \"op\": \"dense\", \"units\": 8}, {\"name\": \"r3\", \"op\": \"relu\"},\n"
          "  {\"name\": \"fc4\", \"op\": \"dense\", \"units\": 9}, {\"name\": \"r4\", \"op\": \"relu\"},\n"
          "  {\"name\": \"fc5\", \"op\": \"dense\", \"units\": 3}]}\n", f);
    fclose(f);
    lc_train_opts o = base_opts();
    o.model_path = m;
    o.train_only = layer;
    o.fixed_gating = fixed;
    o.spec.lr = lr;
    o.spec.steps = steps;
    o.spec.batch = 20;
    o.silhouette = silhouette ? "r1" : NULL;
    o.silhouette_samples = 30;
    lc_train_result r;
    ck_assert_msg(lc_train_run(&o, &r) == LC_OK, "%s", lc_error_message());
    if (silhouette) *silhouette = r.silhouette;
    double loss = r.test_loss;
    lc_train_result_free(&r);
    return loss;
}

static double run_deep(bool fixed, double lr, int steps, double *silhouette)
{
    return run_deep_layer("fc1", fixed, lr, steps, silhouette);
}

START_TEST(fixed_gating_trainer)
{
    setup();
    double a = run_deep(false, 0.0, 2, NULL), b = run_deep(true, 0.0, 2, NULL);
    ck_assert_msg(fabs(a - b) <= 1e-6 * fabs(a), "zero rate: normal %.9g vs fixed gating %.9g", a, b);
    a = run_deep(false, 0.5, 12, NULL);
    b = run_deep(true, 0.5, 12, NULL);
    ck_assert_msg(fabs(a - b) > 1e-4, "trained: normal %.9g and fixed gating %.9g should differ", a, b);
    /* training the last hidden layer: the gated ReLUs before it sit on a frozen
     * prefix, so fixed gating changes nothing */
    a = run_deep_layer("fc4", false, 0.5, 12, NULL);
    b = run_deep_layer("fc4", true, 0.5, 12, NULL);
    ck_assert_msg(fabs(a - b) <= 1e-6 * fabs(a), "frozen prefix: normal %.9g vs fixed gating %.9g", a, b);
    double s;
    run_deep(false, 0.5, 12, &s);
    ck_assert_msg(s > -1 && s < 1, "silhouette %g", s);
}
END_TEST

/* Fused and unfused Layca agree over 20 steps on a CNN (conv, batchnorm,
 * pooling), and the fused step is 2 launches whatever the depth. */
START_TEST(layca_fused_unfused_cnn)
{
    setup();
    char m[700], out[2][700];
    snprintf(m, sizeof m, "%s/cnn.json", dir);
    FILE *f = fopen(m, "w");
    fputs("{\"format\": \"layca-model/1\", \"name\": \"cnn\", \"input\": {\"shape\": [1, 4, 4]}, \"classes\": 3,\n"
          " \"nodes\": [{\"name\": \"c1\", \"op\": \"conv2d\", \"filters\": 5, \"kernel\": 3},\n"
          "  {\"name\": \"r1\", \"op\": \"relu\"}, {\"name\": \"b1\", \"op\": \"batchnorm\"},\n"
          "  {\"name\": \"c2\", \"op\": \"conv2d\", \"filters\": 6, \"kernel\": 3, \"bias\": true},\n"
          "  {\"name\": \"p\", \"op\": \"maxpool\", \"kernel\": 2}, {\"name\": \"f\", \"op\": \"flatten\"},\n"
          "  {\"name\": \"d\", \"op\": \"dense\", \"units\": 3}]}\n", f);
    fclose(f);
    for (int v = 0; v < 2; v++) {
        lc_train_opts o = base_opts();
        o.model_path = m;
        o.spec.layca = 1;
        o.spec.lr = 0.05;
        o.spec.steps = 20;
        o.spec.batch = 8;
        o.no_fuse = v == 1;
        snprintf(out[v], sizeof out[v], "%s/cnn%d.safetensors", dir, v);
        o.save_path = out[v];
        lc_train_result r;
        ck_assert_msg(lc_train_run(&o, &r) == LC_OK, "%s", lc_error_message());
        if (v == 0) ck_assert_int_eq(r.launches_optimizer, 2);
        else ck_assert_int_gt(r.launches_optimizer, 2);
        lc_train_result_free(&r);
    }
    lc_graph *g;
    ck_assert_int_eq(lc_model_load(m, &g, NULL), LC_OK);
    ck_assert_int_eq(lc_graph_compile(g, 8, true, NULL), LC_OK);
    float *a = calloc((size_t)g->param_floats, 4), *b = calloc((size_t)g->param_floats, 4);
    ck_assert_int_eq(lc_model_load_params(out[0], g, a), LC_OK);
    ck_assert_int_eq(lc_model_load_params(out[1], g, b), LC_OK);
    for (int i = 0; i < g->n_params; i++) {
        const lc_param *p = &g->params[i];
        double md = 0, mx = 1e-30;
        for (int64_t k = 0; k < p->numel; k++) {
            md = fmax(md, fabs((double)a[p->offset + k] - b[p->offset + k]));
            mx = fmax(mx, fabs((double)b[p->offset + k]));
        }
        ck_assert_msg(md <= 1e-4 * mx, "%s: fused vs unfused differ by %g (max %g)", g->nodes[p->node].name, md, mx);
    }
    free(a);
    free(b);
    lc_graph_destroy(g);
}
END_TEST

START_TEST(layca_two_launches_deep)
{
    setup();
    char m[700];
    snprintf(m, sizeof m, "%s/mlp100.json", dir);
    FILE *f = fopen(m, "w");
    fputs("{\"format\": \"layca-model/1\", \"name\": \"mlp100\", \"input\": {\"shape\": [16]}, \"classes\": 3,"
          " \"defaults\": {\"bias\": true}, \"nodes\": [", f);
    for (int i = 0; i < 99; i++) fprintf(f, "{\"name\": \"d%d\", \"op\": \"dense\", \"units\": 12}, {\"name\": \"r%d\", \"op\": \"relu\"}, ", i, i);
    fputs("{\"name\": \"out\", \"op\": \"dense\", \"units\": 3}]}", f);
    fclose(f);
    const char *models[2] = {m, NULL};
    char mlp11[700];
    const char *srcroot = getenv("LAYCA_SOURCE_ROOT");
    snprintf(mlp11, sizeof mlp11, "%s/models/mlp11.json", srcroot ? srcroot : "..");
    models[1] = mlp11;
    int want_layers[2] = {100, 11};
    const char *sh = getenv("LAYCA_SHARED");
    char pool[1400], probe[800];
    snprintf(probe, sizeof probe, "%s/data/mnist/t10k-images-idx3-ubyte.gz", sh ? sh : "../../shared");
    snprintf(pool, sizeof pool, "idx:%s/data/mnist/t10k-images-idx3-ubyte.gz,%s/data/mnist/t10k-labels-idx1-ubyte.gz",
             sh ? sh : "../../shared", sh ? sh : "../../shared");
    FILE *pf = fopen(probe, "rb");
    int count = pf ? 2 : 1; /* mlp11 needs the 28x28 MNIST pool from the shared data */
    if (pf) fclose(pf);
    else fprintf(stderr, "# %s absent: mlp11 part skipped\n", probe);
    for (int i = 0; i < count; i++) {
        lc_train_opts o = base_opts();
        o.model_path = models[i];
        if (i == 1) {
            o.data_spec = pool;
            o.data.per_class = 1;
            o.data.test_subset = 100;
        }
        o.spec.layca = 1;
        o.spec.lr = 0.01;
        o.spec.steps = 2;
        o.spec.batch = 8;
        lc_train_result r;
        ck_assert_msg(lc_train_run(&o, &r) == LC_OK, "%s", lc_error_message());
        ck_assert_int_eq(r.n_layers, want_layers[i]);
        ck_assert_int_eq(r.launches_optimizer, 2);
        lc_train_result_free(&r);
    }
}
END_TEST

/* ======================================================================
 * Long runs: checkpoints and exact resume, outputs that never overwrite
 * inputs, non-finite losses, flag precedence, evaluation of saved weights.
 * ====================================================================== */

/* A small CNN with batch normalisation and dropout on the 4x4 images. */
static const char *cnn_model(void)
{
    static char path[700];
    if (path[0]) return path;
    snprintf(path, sizeof path, "%s/cnn_bn_dropout.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"format\": \"layca-model/1\", \"name\": \"cnn_bn_dropout\", \"input\": {\"shape\": [1, 4, 4]}, \"classes\": 3,\n"
          " \"defaults\": {\"bias\": false, \"init\": \"he_uniform\"},\n"
          " \"nodes\": [{\"name\": \"c1\", \"op\": \"conv2d\", \"filters\": 5, \"kernel\": 3, \"pad\": 1},\n"
          "  {\"name\": \"bn1\", \"op\": \"batchnorm\"}, {\"name\": \"r1\", \"op\": \"relu\"},\n"
          "  {\"name\": \"p1\", \"op\": \"maxpool\", \"kernel\": 2}, {\"name\": \"flat\", \"op\": \"flatten\"},\n"
          "  {\"name\": \"drop\", \"op\": \"dropout\", \"rate\": 0.3},\n"
          "  {\"name\": \"fc\", \"op\": \"dense\", \"units\": 3, \"bias\": true}]}\n", f);
    fclose(f);
    return path;
}

/* An uninterrupted run against one stopped after `stop_at` steps (a
 * checkpoint at `ckpt_at`, then more steps and lines that the resume must
 * drop) and resumed: the same weights and metrics bytes. */
static void resume_case(lc_train_opts base, const char *tag, int64_t ckpt_at, int64_t stop_at)
{
    char ma[800], wa[800], mb[800], wb[800], cdir[800];
    snprintf(ma, sizeof ma, "%s/%s-a.jsonl", dir, tag);
    snprintf(wa, sizeof wa, "%s/%s-a.safetensors", dir, tag);
    snprintf(mb, sizeof mb, "%s/%s-b.jsonl", dir, tag);
    snprintf(wb, sizeof wb, "%s/%s-b.safetensors", dir, tag);
    snprintf(cdir, sizeof cdir, "%s/%s-ckpt", dir, tag);
    lc_train_opts o = base;
    o.metrics_path = ma;
    o.save_path = wa;
    lc_train_result r;
    ck_assert_msg(lc_train_run(&o, &r) == LC_OK, "%s: %s", tag, lc_error_message());
    int64_t total = r.steps;
    lc_train_result_free(&r);
    ck_assert_int_gt(total, stop_at);

    /* the interrupted run: a checkpoint, then steps whose lines are lost */
    o = base;
    o.metrics_path = mb;
    o.save_path = wb;
    o.checkpoint_dir = cdir;
    o.checkpoint_every = ckpt_at;
    lc_trainer *t;
    ck_assert_msg(lc_trainer_create(&t, &o) == LC_OK, "%s", lc_error_message());
    char ck[2048] = "";
    while (lc_trainer_steps_done(t) < stop_at) {
        ck_assert_msg(lc_trainer_step(t) == LC_OK, "%s", lc_error_message());
        if (lc_trainer_steps_done(t) == ckpt_at) ck_assert_int_eq(lc_trainer_checkpoint(t, ck, sizeof ck), LC_OK);
    }
    lc_trainer_destroy(t);
    ck_assert(ck[0]);
    /* resumed from the folder (its latest checkpoint) */
    o.resume = cdir;
    ck_assert_msg(lc_train_run(&o, &r) == LC_OK, "%s resume: %s", tag, lc_error_message());
    ck_assert_int_eq(r.resumed_from, ckpt_at);
    ck_assert_int_eq(r.steps, total);
    lc_train_result_free(&r);
    ck_assert_msg(lc_test_same_bytes(wa, wb), "%s: the resumed run's weights differ from the uninterrupted run's", tag);
    char *a = lc_test_metrics_without_time(ma), *b = lc_test_metrics_without_time(mb);
    ck_assert_msg(!strcmp(a, b), "%s: metrics differ (uninterrupted, resumed), %s", tag, lc_test_first_diff(a, b));
    ck_assert_ptr_nonnull(strstr(a, "\"kind\": \"eval\""));
    free(a);
    free(b);
}

START_TEST(resume_is_exact)
{
    setup();
    /* Layca-Adam on the MLP, checkpoint mid-epoch, stop after an epoch end */
    lc_train_opts o = base_opts();
    snprintf(o.spec.optimizer, sizeof o.spec.optimizer, "adam");
    o.spec.layca = 1;
    o.spec.lr = 0.02;
    o.spec.epochs = 3;
    o.spec.batch = 8; /* 8 steps per epoch, the last one partial */
    o.rotation_every = 5;
    o.log_every = 5; /* the loss of step 5 is read when its checkpoint is written */
    resume_case(o, "adam", 5, 13);
    /* a loss window open across the checkpoint (records at 4 and 8) */
    o = base_opts();
    o.spec.epochs = 2;
    o.spec.batch = 8;
    o.log_every = 4;
    resume_case(o, "sgd-window", 6, 13);
    /* the CNN: batch-norm statistics, dropout masks, flips; a checkpoint at
     * an epoch's end */
    o = base_opts();
    o.model_path = cnn_model();
    o.spec.momentum = 0.9;
    o.spec.lr = 0.05;
    o.spec.epochs = 3;
    o.spec.batch = 8;
    o.flip = true;
    resume_case(o, "cnn", 8, 19);
}
END_TEST

START_TEST(resume_refuses_other_runs)
{
    setup();
    char cdir[800], m[800], path[2100];
    snprintf(cdir, sizeof cdir, "%s/refuse-ckpt", dir);
    snprintf(m, sizeof m, "%s/refuse.jsonl", dir);
    lc_train_opts o = base_opts();
    o.spec.epochs = 2;
    o.spec.batch = 8;
    o.metrics_path = m;
    o.checkpoint_dir = cdir;
    o.checkpoint_every = 4;
    lc_trainer *t;
    ck_assert_int_eq(lc_trainer_create(&t, &o), LC_OK);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(lc_trainer_step(t), LC_OK);
    ck_assert_int_eq(lc_trainer_checkpoint(t, path, sizeof path), LC_OK);
    lc_trainer_destroy(t);
    lc_train_result r;
    /* another learning rate: refused, naming it */
    lc_train_opts o2 = o;
    o2.resume = path;
    o2.spec.lr = 0.5;
    ck_assert_int_ne(lc_train_run(&o2, &r), LC_OK);
    ck_assert_msg(strstr(lc_error_message(), "lr = 0.01") && strstr(lc_error_message(), "lr = 0.5"), "%s",
                  lc_error_message());
    /* another model */
    o2 = o;
    o2.resume = path;
    o2.model_path = cnn_model();
    ck_assert_int_ne(lc_train_run(&o2, &r), LC_OK);
    ck_assert_msg(strstr(lc_error_message(), "model_name"), "%s", lc_error_message());
    /* another metrics file */
    o2 = o;
    o2.resume = path;
    char other[800];
    snprintf(other, sizeof other, "%s/refuse-other.jsonl", dir);
    FILE *f = fopen(other, "w");
    fputs("{\"kind\": \"settings\"}\n", f);
    fclose(f);
    o2.metrics_path = other;
    ck_assert_int_ne(lc_train_run(&o2, &r), LC_OK);
    ck_assert_msg(strstr(lc_error_message(), "not this run's metrics"), "%s", lc_error_message());
    /* a damaged checkpoint: one byte of the data changed */
    uint8_t *b;
    size_t n;
    ck_assert_int_eq(lc_file_read(path, &b, &n), LC_OK);
    b[n - 100] ^= 0x40;
    char bad[900];
    snprintf(bad, sizeof bad, "%s/damaged.safetensors", dir);
    ck_assert_int_eq(lc_file_write_atomic(bad, b, n), LC_OK);
    free(b);
    o2 = o;
    o2.resume = bad;
    ck_assert_int_ne(lc_train_run(&o2, &r), LC_OK);
    ck_assert_msg(strstr(lc_error_message(), "checksum"), "%s", lc_error_message());
    /* weights saved with --save are not a checkpoint */
    o2 = o;
    char w[800];
    snprintf(w, sizeof w, "%s/refuse-w.safetensors", dir);
    o2.save_path = w;
    o2.checkpoint_every = 0;
    o2.checkpoint_dir = NULL;
    o2.metrics_path = NULL;
    ck_assert_int_eq(lc_train_run(&o2, &r), LC_OK);
    lc_train_result_free(&r);
    o2.resume = w;
    o2.save_path = NULL;
    ck_assert_int_ne(lc_train_run(&o2, &r), LC_OK);
    ck_assert_msg(strstr(lc_error_message(), "not a layca checkpoint"), "%s", lc_error_message());
    /* the right settings resume, and the weights file of a checkpoint
     * starts a run with --init */
    o2 = o;
    o2.resume = path;
    ck_assert_msg(lc_train_run(&o2, &r) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(r.resumed_from, 4);
    lc_train_result_free(&r);
    o2 = base_opts();
    o2.init_path = path;
    o2.spec.steps = 1;
    ck_assert_msg(lc_train_run(&o2, &r) == LC_OK, "%s", lc_error_message());
    lc_train_result_free(&r);
}
END_TEST

static uint64_t hash_file(const char *p)
{
    uint8_t *b;
    size_t n;
    ck_assert_int_eq(lc_file_read(p, &b, &n), LC_OK);
    uint64_t h = lc_hash64(b, n, 0);
    free(b);
    return h;
}

static void expect_refused(lc_train_opts o, const char *what)
{
    lc_train_result r;
    double t0 = lc_now_s();
    lc_status st = lc_train_run(&o, &r);
    ck_assert_msg(st != LC_OK, "%s: accepted", what);
    ck_assert_msg(strstr(lc_error_message(), what), "expected '%s' in: %s", what, lc_error_message());
    (void)t0;
}

START_TEST(outputs_never_overwrite_inputs)
{
    setup();
    if (lc_test_extra_config()) { /* checks of paths and settings: the same on every device */
        fprintf(stderr, "# %s: default configuration only\n", "outputs_never_overwrite_inputs");
        return;
    }
    uint64_t model_h = hash_file(model_path);
    char labels[700], out[700], missing[700], link[700], m[700];
    snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte", dir);
    uint64_t labels_h = hash_file(labels);
    snprintf(out, sizeof out, "%s/ow-out.safetensors", dir);
    snprintf(missing, sizeof missing, "%s/no/such/folder/w.safetensors", dir);
    snprintf(link, sizeof link, "%s/ow-link.safetensors", dir);
    snprintf(m, sizeof m, "%s/ow-m.jsonl", dir);
    remove(link);
    ck_assert_int_eq(symlink(model_path, link), 0);
    lc_train_opts o = base_opts();
    o.spec.steps = 3;

    lc_train_opts x = o;
    x.save_path = model_path;
    expect_refused(x, "would overwrite the model file");
    x = o;
    x.metrics_path = model_path;
    expect_refused(x, "would overwrite the model file");
    x = o;
    x.save_path = link; /* the same file through a symlink */
    expect_refused(x, "would overwrite the model file");
    x = o;
    x.metrics_path = labels;
    expect_refused(x, "data file");
    x = o;
    x.save_path = out;
    x.metrics_path = out;
    expect_refused(x, "name the same file");
    x = o;
    x.init_path = out;
    ck_assert_int_eq(lc_file_write_atomic(out, "x", 1), LC_OK);
    x.save_path = out;
    expect_refused(x, "would overwrite --init");
    x = o;
    x.metrics_path = "/dev/full";
    expect_refused(x, "not a regular file");
    /* a missing output folder: refused before any training (the metrics
     * file, in an existing folder, is not even created) */
    remove(m);
    x = o;
    x.save_path = missing;
    x.metrics_path = m;
    expect_refused(x, "does not exist");
    ck_assert_msg(access(m, F_OK) != 0, "the metrics file was written before the output folders were checked");
    /* a checkpoint folder named relative to the working folder, not yet
     * made (its nearest existing parent is "."): accepted and made */
    char cwd[PATH_MAX];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(dir), 0);
    x = o;
    x.checkpoint_dir = "ow-rel-ckpt/sub";
    x.checkpoint_every = 2;
    lc_train_result r;
    lc_status st = lc_train_run(&x, &r);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(st == LC_OK, "a relative checkpoint folder: %s", lc_error_message());
    lc_train_result_free(&r);
    char ck[800];
    snprintf(ck, sizeof ck, "%s/ow-rel-ckpt/sub/ckpt-000000000002.safetensors", dir);
    ck_assert_msg(access(ck, F_OK) == 0, "no checkpoint %s", ck);
    /* the inputs are intact */
    ck_assert(hash_file(model_path) == model_h);
    ck_assert(hash_file(labels) == labels_h);
    remove(link);
}
END_TEST

static bool file_has(const char *path, const char *what)
{
    char *t = lc_test_read_text(path);
    bool has = strstr(t, what) != NULL;
    free(t);
    return has;
}

START_TEST(nonfinite_loss)
{
    setup();
    char m[700];
    snprintf(m, sizeof m, "%s/nan.jsonl", dir);
    lc_train_opts o = base_opts();
    o.metrics_path = m;
    o.spec.lr = 1e30;
    o.spec.epochs = 3;
    o.spec.batch = 8;
    lc_train_result r;
    /* stops, naming the step and where the non-finite values are */
    ck_assert_int_ne(lc_train_run(&o, &r), LC_OK);
    const char *e = lc_error_message();
    ck_assert_msg(strstr(e, "step ") && strstr(e, "not finite") && strstr(e, "first non-finite"), "%s", e);
    lc_metrics mt;
    ck_assert_msg(lc_metrics_load(m, &mt) == LC_OK, "the metrics of a stopped run: %s", lc_error_message());
    lc_metrics_deinit(&mt);
    ck_assert(file_has(m, "\"kind\": \"nonfinite\""));
    ck_assert(!file_has(m, "nan") && !file_has(m, "inf"));
    /* going on: every line stays JSON, the accuracy of NaN predictions is 0 */
    o.on_nonfinite = LC_NONFINITE_CONTINUE;
    ck_assert_msg(lc_train_run(&o, &r) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(r.steps, 24);
    ck_assert(isnan(r.train_loss));
    ck_assert_msg(r.test_acc <= 0.5, "a diverged run reports test accuracy %g", r.test_acc);
    lc_train_result_free(&r);
    ck_assert_msg(lc_metrics_load(m, &mt) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(mt.n_eval, 3);
    ck_assert(isnan(mt.eval[2].train_loss)); /* null in the file */
    lc_metrics_deinit(&mt);
    ck_assert(file_has(m, "\"train_loss\": null") && file_has(m, "\"nonfinite\": true"));
    ck_assert(!file_has(m, "nan") && !file_has(m, "inf"));
}
END_TEST

/* The settings record (the metrics' first line) of a run of `o`. */
static char *settings_of(lc_train_opts o)
{
    char m[700];
    snprintf(m, sizeof m, "%s/prec.jsonl", dir);
    o.metrics_path = m;
    lc_trainer *t;
    ck_assert_msg(lc_trainer_create(&t, &o) == LC_OK, "%s", lc_error_message());
    lc_trainer_destroy(t);
    char *s = lc_test_read_text(m);
    ck_assert_ptr_nonnull(strstr(s, "{\"kind\": \"settings\""));
    return s;
}

static void expect_setting(lc_train_opts o, const char *what, const char *want)
{
    char *s = settings_of(o);
    ck_assert_msg(strstr(s, want), "%s: '%s' not in the settings %s", what, want, s);
    free(s);
}

START_TEST(flags_override_the_train_section)
{
    setup();
    if (lc_test_extra_config()) { /* checks of paths and settings: the same on every device */
        fprintf(stderr, "# %s: default configuration only\n", "flags_override_the_train_section");
        return;
    }
    char p[700];
    snprintf(p, sizeof p, "%s/prec.json", dir);
    FILE *f = fopen(p, "w");
    fputs("{\"format\": \"layca-model/1\", \"name\": \"prec\", \"input\": {\"shape\": [1, 4, 4]}, \"classes\": 3,\n"
          " \"nodes\": [{\"name\": \"flat\", \"op\": \"flatten\"}, {\"name\": \"fc1\", \"op\": \"dense\", \"units\": 5},\n"
          "  {\"name\": \"r1\", \"op\": \"relu\"}, {\"name\": \"fc2\", \"op\": \"dense\", \"units\": 3}],\n"
          " \"train\": {\"optimizer\": \"adam\", \"layca\": true, \"lr\": 0.5, \"momentum\": 0.25, \"nesterov\": true,\n"
          "  \"alpha\": 0.125, \"weight_decay\": 0.0625, \"schedule\": {\"milestones\": [2], \"factor\": 0.5},\n"
          "  \"epochs\": 4, \"steps\": 5, \"batch\": 16, \"seed\": 7}}\n", f);
    fclose(f);
    lc_train_opts o = base_opts();
    o.model_path = p;
    /* the file alone */
    char *s = settings_of(o);
    static const char *const file_vals[] = {"\"optimizer\": \"adam\"", "\"layca\": true", "\"lr\": 0.5",
                                            "\"momentum\": 0.25", "\"nesterov\": true", "\"alpha\": 0.125",
                                            "\"weight_decay\": 0.0625",
                                            "\"schedule\": {\"milestones\": [2], \"factor\": 0.5}", "\"steps\": 5",
                                            "\"epochs\": 2", "\"batch\": 16", "\"seed\": 7"};
    for (size_t i = 0; i < LC_COUNTOF(file_vals); i++)
        ck_assert_msg(strstr(s, file_vals[i]), "'%s' not in %s", file_vals[i], s);
    free(s);
    /* each flag wins over its key */
    lc_train_opts x = o;
    snprintf(x.spec.optimizer, sizeof x.spec.optimizer, "rmsprop");
    expect_setting(x, "--optimizer", "\"optimizer\": \"rmsprop\"");
    x = o;
    x.spec.layca = 0;
    expect_setting(x, "--no-layca", "\"layca\": false");
    x = o;
    x.spec.lr = 0.75;
    expect_setting(x, "--lr", "\"lr\": 0.75");
    x = o;
    x.spec.momentum = 0.375;
    expect_setting(x, "--momentum", "\"momentum\": 0.375");
    x = o;
    x.spec.nesterov = 0;
    expect_setting(x, "nesterov", "\"nesterov\": false");
    x = o;
    x.spec.alpha = -0.25;
    expect_setting(x, "--alpha", "\"alpha\": -0.25");
    x = o;
    x.spec.weight_decay = 0.5;
    expect_setting(x, "--weight-decay", "\"weight_decay\": 0.5");
    x = o;
    x.spec.n_milestones = 2;
    x.spec.milestones[0] = 1;
    x.spec.milestones[1] = 3;
    x.spec.factor = 0.25;
    expect_setting(x, "--schedule", "\"schedule\": {\"milestones\": [1, 3], \"factor\": 0.25}");
    x = o;
    x.spec.epochs = 3; /* replaces the file's steps: 3 epochs of 4 steps (60 examples, batch 16) */
    expect_setting(x, "--epochs", "\"epochs\": 3, \"steps\": 12");
    x = o;
    x.spec.steps = 9;
    expect_setting(x, "--steps", "\"epochs\": 3, \"steps\": 9");
    x = o;
    x.spec.batch = 8;
    expect_setting(x, "--batch", "\"batch\": 8");
    x = o;
    x.spec.seed = 11;
    expect_setting(x, "--seed", "\"seed\": 11");
}
END_TEST

START_TEST(eval_of_saved_weights)
{
    setup();
    char w[700];
    snprintf(w, sizeof w, "%s/eval-w.safetensors", dir);
    lc_train_opts o = base_opts();
    o.save_path = w;
    o.spec.epochs = 6;
    o.spec.batch = 8;
    o.spec.lr = 0.05;
    o.spec.momentum = 0.9;
    lc_train_result r;
    ck_assert_msg(lc_train_run(&o, &r) == LC_OK, "%s", lc_error_message());
    lc_eval_opts eo = {.model_path = model_path, .weights_path = w, .data_spec = data_spec, .split = 2, .batch = 7,
                       .device = lc_test_device(), .device_only = lc_test_device_only()};
    eo.data.seed = 1;
    lc_eval_result e;
    ck_assert_msg(lc_eval_run(&eo, &e) == LC_OK, "%s", lc_error_message());
    ck_assert(e.norm_from_weights);
    ck_assert_int_eq(e.n, 30);
    /* the same figures as the trainer's last evaluation */
    ck_assert_msg(fabs(e.top1 - r.test_acc) < 1e-9, "eval top-1 %g, training's last test accuracy %g", e.top1, r.test_acc);
    ck_assert_msg(fabs(e.loss - r.test_loss) < 1e-5 * fmax(1, r.test_loss), "loss %g vs %g", e.loss, r.test_loss);
    /* the confusion matrix holds every example; its diagonal is the top-1 */
    int64_t all = 0, diag = 0;
    for (int a = 0; a < e.classes; a++)
        for (int b = 0; b < e.classes; b++) {
            all += e.confusion[a * e.classes + b];
            if (a == b) diag += e.confusion[a * e.classes + b];
        }
    ck_assert_int_eq(all, 30);
    ck_assert_msg(fabs((double)diag / 30 - e.top1) < 1e-12, "diagonal %lld of 30, top-1 %g", (long long)diag, e.top1);
    for (int c = 0; c < 3; c++) ck_assert(e.class_acc[c] >= 0 && e.class_acc[c] <= 1);
    lc_eval_result_free(&e);
    lc_train_result_free(&r);
    /* weights of another model are refused */
    eo.model_path = cnn_model();
    ck_assert_int_ne(lc_eval_run(&eo, &e), LC_OK);
    ck_assert_msg(strstr(lc_error_message(), "missing") || strstr(lc_error_message(), "not a parameter"), "%s",
                  lc_error_message());
}
END_TEST

/* ---- 20 training steps against a double-precision reference -----------------
 * models/mlp3.json (Layca-SGD, 28x28 generated idx data) and
 * models/small_cnn.json (SGD with momentum, generated CIFAR-10 binary data)
 * train 20 steps (one epoch, no shuffling) through the trainer on the
 * configured path (tests/lc_test_rt.h) and, in the default configuration,
 * also in device-only mode on the same device; the test repeats the same 20
 * steps in double precision (tests/ref_graph.h for forward and backward,
 * lc_ref for the optimizer, the trainer's data pipeline and initial
 * weights).  Measured: every path within 6e-6 of the reference (RMS,
 * relative to the RMS weight; host Winograd convolutions forced: 2e-6).
 * Float and double still take some discrete decisions differently: a ReLU
 * whose input lies within rounding of 0 flips and moves one example's
 * contribution to one row of the kernel before it (seen in a shuffled
 * order of these data: 567 elements of one row of mlp3's fc1, 0.9% of
 * max |w|, after step 19), and momentum SGD on random data amplifies such
 * differences (small_cnn, shuffled: 1e-3 RMS between two float paths).
 * Tolerance, per tensor: RMS difference <= 5e-3 of the RMS weight, at most
 * 2% of the elements off by more than 5e-3 max |w|; the final training and
 * test losses within 5e-3, relative.  A wrong kernel is off by O(1) nearly
 * everywhere after one step. */
typedef struct ref_traj {
    double *w;          /* double weights after the steps, arena layout */
    double train_loss;  /* mean over the steps of the batch losses */
    double test_loss;
} ref_traj;

static void reference_steps(const char *model, const char *data, int batch, int steps, ref_traj *out)
{
    lc_graph *g;
    lc_train_spec ts;
    ck_assert_int_eq(lc_model_load(model, &g, &ts), LC_OK);
    lc_train_spec_defaults(&ts);
    ck_assert_int_eq(lc_graph_compile(g, batch, true, NULL), LC_OK);
    lc_dataset tr, va, te;
    lc_data_opts dopt = {.seed = (uint64_t)ts.seed, .classes = g->classes};
    char desc[256];
    ck_assert_int_eq(lc_data_open3(data, &dopt, &tr, &va, &te, NULL, desc, sizeof desc), LC_OK);
    ck_assert_int_ge(tr.n, (int64_t)batch * steps);
    size_t nf = (size_t)g->param_floats;
    float *wf = malloc(nf * 4);
    double *w = malloc(nf * sizeof *w), *s1 = calloc(nf, sizeof *s1), *s2 = calloc(nf, sizeof *s2);
    double *n0 = calloc((size_t)g->n_params + 1, sizeof *n0);
    lc_graph_init_params(g, wf, (uint64_t)ts.seed); /* the trainer's initial weights */
    for (size_t k = 0; k < nf; k++) w[k] = wf[k];
    for (int i = 0; i < g->n_params; i++) {
        const lc_param *p = &g->params[i];
        for (int64_t k = 0; k < p->numel; k++) n0[i] += w[p->offset + k] * w[p->offset + k];
        n0[i] = sqrt(n0[i]);
    }
    lc_optim_kind kind;
    ck_assert_int_eq(lc_optim_kind_parse(ts.optimizer, &kind), LC_OK);
    lc_ref_optim ro;
    lc_ref_optim_defaults(&ro, (lc_ref_optim_kind)kind);
    if (kind == LC_OPTIM_SGD || kind == LC_OPTIM_SGD_AMOM) ro.momentum = ts.momentum;
    ro.weight_decay = ts.weight_decay;
    int64_t xin = lc_shape_numel(&g->nodes[g->input].shape);
    double loss_sum = 0;
    for (int s = 0; s < steps; s++) {
        for (size_t k = 0; k < nf; k++) wf[k] = (float)w[k];
        ref_run rr;
        ref_run_graph(&rr, g, wf, tr.x + (size_t)s * batch * xin, tr.y + (size_t)s * batch, batch);
        loss_sum += rr.loss;
        double rate = lc_train_schedule_lr(&ts, 0);
        for (int i = 0; i < g->n_params; i++) {
            const lc_param *p = &g->params[i];
            const lc_node *pn = &g->nodes[p->node];
            if (!pn->trainable || p->grad_node < 0) continue;
            double *wi = w + p->offset;
            if (ts.layca && pn->is_kernel)
                lc_ref_layca_step(wi, s1 + p->offset, s2 + p->offset, rr.pgrad + p->offset, (size_t)p->numel, &ro,
                                  rate, n0[i], s + 1);
            else
                lc_ref_optim_step(wi, s1 + p->offset, s2 + p->offset, rr.pgrad + p->offset, (size_t)p->numel, &ro,
                                  rate, s + 1);
        }
        ref_run_free(&rr, g);
    }
    out->train_loss = loss_sum / steps;
    /* the test loss with the final weights, in evaluation mode */
    for (size_t k = 0; k < nf; k++) wf[k] = (float)w[k];
    ref_opts eo = {.eval = true};
    ref_run rr;
    lc_graph *ge;
    ck_assert_int_eq(lc_model_load(model, &ge, NULL), LC_OK);
    ck_assert_int_eq(lc_graph_compile(ge, (int)te.n, false, NULL), LC_OK);
    ck_assert_int_eq(ge->param_floats, g->param_floats);
    ref_run_graph_opts(&rr, ge, wf, te.x, te.y, (int)te.n, &eo);
    out->test_loss = rr.loss;
    ref_run_free(&rr, ge);
    lc_graph_destroy(ge);
    out->w = w;
    free(wf);
    free(s1);
    free(s2);
    free(n0);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&va);
    lc_dataset_deinit(&te);
    lc_graph_destroy(g);
}

static void paths_match_reference(const char *model_file, const char *data, int batch, const char *tag)
{
    char m[1024], out[700];
    const char *srcroot = getenv("LAYCA_SOURCE_ROOT");
    snprintf(m, sizeof m, "%s/models/%s", srcroot ? srcroot : "..", model_file);
    ref_traj ref;
    double t0 = lc_now_s();
    reference_steps(m, data, batch, 20, &ref);
    fprintf(stderr, "# %s, double reference: train loss %.6f, test loss %.6f, %.1f s\n", model_file, ref.train_loss,
            ref.test_loss, lc_now_s() - t0);
    lc_graph *g;
    ck_assert_int_eq(lc_model_load(m, &g, NULL), LC_OK);
    ck_assert_int_eq(lc_graph_compile(g, batch, true, NULL), LC_OK);
    float *w = calloc((size_t)g->param_floats, 4), *w0 = calloc((size_t)g->param_floats, 4);
    lc_graph_init_params(g, w0, 1);
    /* the configured path; in the default configuration also device-only */
    int n_paths = lc_test_extra_config() ? 1 : 2;
    for (int v = 0; v < n_paths; v++) {
        lc_train_opts o = base_opts();
        o.model_path = m;
        o.data_spec = data;
        o.no_shuffle = true;
        o.spec.steps = 20;
        o.spec.batch = batch;
        o.eval_every = 1000; /* evaluate once, at the end */
        if (v == 1) o.device_only = true;
        snprintf(out, sizeof out, "%s/%s-%d.safetensors", dir, tag, v);
        o.save_path = out;
        lc_train_result r;
        t0 = lc_now_s();
        ck_assert_msg(lc_train_run(&o, &r) == LC_OK, "%s: %s", model_file, lc_error_message());
        const char *path = o.device_only ? "device-only" : "host shortcuts allowed";
        fprintf(stderr, "# %s, %s: train loss %.6f, test loss %.6f, %.1f s\n", model_file, path, r.train_loss,
                r.test_loss, lc_now_s() - t0);
        ck_assert_int_eq(r.steps, 20);
        ck_assert_msg(lc_test_rel(r.train_loss, ref.train_loss, 1e-3) <= 5e-3, "%s (%s): train loss %.7g vs %.7g",
                      model_file, path, r.train_loss, ref.train_loss);
        ck_assert_msg(lc_test_rel(r.test_loss, ref.test_loss, 1e-3) <= 5e-3, "%s (%s): test loss %.7g vs %.7g",
                      model_file, path, r.test_loss, ref.test_loss);
        lc_train_result_free(&r);
        ck_assert_int_eq(lc_model_load_params(out, g, w), LC_OK);
        for (int i = 0; i < g->n_params; i++) {
            const lc_param *p = &g->params[i];
            double md = 0, mx = 1e-30, moved = 0, sd = 0, sw = 0;
            for (int64_t k = 0; k < p->numel; k++) {
                double rw = ref.w[p->offset + k], d = (double)w[p->offset + k] - rw;
                md = fmax(md, fabs(d));
                mx = fmax(mx, fabs(rw));
                moved = fmax(moved, fabs(rw - w0[p->offset + k]));
                sd += d * d;
                sw += rw * rw;
            }
            int64_t off = 0;
            for (int64_t k = 0; k < p->numel; k++)
                off += fabs((double)w[p->offset + k] - ref.w[p->offset + k]) > 5e-3 * mx;
            double rms = sqrt(sd / fmax(sw, 1e-300));
            fprintf(stderr, "#   %-14s max |w - ref| %.3g (max |w| %.3g, moved %.3g), RMS ratio %.3g, %lld of %lld off\n",
                    g->nodes[p->node].name, md, mx, moved, rms, (long long)off, (long long)p->numel);
            ck_assert_msg(moved > 1e-4 * mx, "%s: %s did not train", model_file, g->nodes[p->node].name);
            ck_assert_msg(rms <= 5e-3, "%s (%s): %s: RMS difference %g of the RMS weight", model_file, path,
                          g->nodes[p->node].name, rms);
            ck_assert_msg(off <= p->numel / 50, "%s (%s): %s: %lld of %lld elements differ by more than %g",
                          model_file, path, g->nodes[p->node].name, (long long)off, (long long)p->numel, 5e-3 * mx);
        }
    }
    free(w);
    free(w0);
    free(ref.w);
    lc_graph_destroy(g);
}

START_TEST(mlp3_20_steps_vs_reference)
{
    setup();
    char d[700], spec[800];
    snprintf(d, sizeof d, "%s/mnist28", dir);
    ck_assert_int_eq(lc_mkdirs(d), LC_OK);
    lc_test_write_idx_sized(d, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 320, 11, 28, 10);
    lc_test_write_idx_sized(d, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 100, 12, 28, 10);
    snprintf(spec, sizeof spec, "mnist:%s", d);
    paths_match_reference("mlp3.json", spec, 16, "mlp3");
}
END_TEST

START_TEST(small_cnn_20_steps_vs_reference)
{
    setup();
    char d[700], spec[800];
    snprintf(d, sizeof d, "%s/cifar", dir);
    ck_assert_int_eq(lc_mkdirs(d), LC_OK);
    lc_test_write_cifar10(d, 32, 40, 13);
    snprintf(spec, sizeof spec, "cifar10:%s", d);
    paths_match_reference("small_cnn.json", spec, 8, "small_cnn");
}
END_TEST

/* padded max and average pooling (a maxpool before its ReLU: windows of
 * negative values next to the padding) */
START_TEST(padded_pool_cnn_20_steps_vs_reference)
{
    setup();
    char d[700], spec[800];
    snprintf(d, sizeof d, "%s/cifar", dir);
    ck_assert_int_eq(lc_mkdirs(d), LC_OK);
    lc_test_write_cifar10(d, 32, 40, 14);
    snprintf(spec, sizeof spec, "cifar10:%s", d);
    paths_match_reference("small_cnn_pad.json", spec, 8, "small_cnn_pad");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("trainer");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, sgd_step_matches_reference);
    tcase_add_test(tc, sgd_step_weight_decay_momentum);
    tcase_add_test(tc, program_cache_hit);
    tcase_add_test(tc, learns_and_writes_metrics);
    tcase_add_test(tc, steps_partial_epoch);
    tcase_add_test(tc, bad_inputs);
    tcase_add_test(tc, layca_one_step_rotation);
    tcase_add_test(tc, layca_keeps_norms);
    tcase_add_test(tc, silhouette_matches_direct);
    tcase_add_test(tc, fixed_gating_trainer);
    tcase_add_test(tc, layca_fused_unfused_cnn);
    tcase_add_test(tc, layca_two_launches_deep);
    tcase_add_test(tc, mlp3_20_steps_vs_reference);
    tcase_add_test(tc, small_cnn_20_steps_vs_reference);
    tcase_add_test(tc, padded_pool_cnn_20_steps_vs_reference);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("long_runs");
    tcase_set_timeout(tl, 600);
    tcase_add_test(tl, resume_is_exact);
    tcase_add_test(tl, resume_refuses_other_runs);
    tcase_add_test(tl, outputs_never_overwrite_inputs);
    tcase_add_test(tl, nonfinite_loss);
    tcase_add_test(tl, flags_override_the_train_section);
    tcase_add_test(tl, eval_of_saved_weights);
    suite_add_tcase(s, tl);
    return s;
}

int main(void) { return lc_test_run(suite()); }

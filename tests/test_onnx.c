/* ONNX import and export (src/onnx, docs/onnx.md):
 *   - ONNX's own backend node test cases (generated at test time by
 *     python3-onnx, tools/onnx_node_cases.py): every case whose ops are all
 *     supported is imported and run forward on the device, each output
 *     compared to ONNX's expected values; the cases layca cannot express
 *     are listed with the reason in tests/data/onnx/node_skips.txt, and the
 *     list must be exact (a listed case that passes fails the test too);
 *   - a residual CNN exported by torch.onnx.export (tools/onnx_golden.py):
 *     PyTorch's outputs to 1e-4, then a few training steps lower the loss;
 *   - a small CNN whose export has Constant -> Pad -> AveragePool
 *     (tools/onnx_golden_pad.py), and a copy with a Pad before the Conv and
 *     Identity nodes: the Pads folded, PyTorch's outputs to 1e-4;
 *   - export: onnx.checker accepts it and importing it back gives the same
 *     outputs;
 *   - bad input: truncated and foreign bytes, unsupported ops, attributes
 *     and shapes are errors naming the node or tensor. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "lc_exec.h"
#include "lc_model.h"
#include "lc_onnx.h"
#include "lc_test.h"
#include "lc_test_rt.h"
#include "onnx.pb-c.h"

/* |got - want| <= TOL * max(1, |want|): 1e-4 absolute for values up to 1,
 * relative beyond. */
#define TOL 1e-4

static lc_rt *rt;

static const char *src_root(void)
{
    const char *s = getenv("LAYCA_SOURCE_ROOT");
    return s && *s ? s : "../..";
}

static const char *python(void)
{
    const char *p = getenv("LAYCA_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

static char *path_join(char *buf, size_t cap, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    ck_assert_uint_lt(la + lb + 1, cap);
    memcpy(buf, a, la);
    buf[la] = '/';
    memcpy(buf + la + 1, b, lb + 1);
    return buf;
}

static lc_status read_value(const char *path, lc_onnx_value *v)
{
    uint8_t *bytes;
    size_t len;
    LC_TRY(lc_file_read(path, &bytes, &len));
    lc_status st = lc_onnx_value_parse(bytes, len, path, v);
    free(bytes);
    return st;
}

/* The imported model, compiled for `batch`, with its parameters on the device. */
typedef struct model {
    lc_graph *g;
    lc_exec *ex;
    float *params;
} model;

static void model_free(model *md)
{
    lc_exec_destroy(md->ex);
    lc_graph_destroy(md->g);
    free(md->params);
    memset(md, 0, sizeof *md);
}

/* The model of `json` with the parameters of r, or else `params` (in the
 * layout of json's graph). */
static lc_status model_build_json(const char *json, const lc_onnx_import *r, const float *params, int batch, bool train,
                                  model *md)
{
    memset(md, 0, sizeof *md);
    LC_TRY(lc_model_parse(json, strlen(json), "imported", &md->g, NULL));
    LC_TRY(lc_exec_compile(md->g, batch, train, NULL));
    md->params = calloc((size_t)md->g->param_floats + 1, sizeof *md->params);
    if (!md->params) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    if (r) LC_TRY(lc_onnx_import_params(r, md->g, md->params));
    else memcpy(md->params, params, (size_t)md->g->param_floats * sizeof *params);
    if (!rt) rt = lc_test_rt_create();
    LC_TRY(lc_exec_create(&md->ex, rt, md->g));
    return lc_exec_write_params(md->ex, md->params);
}

static lc_status model_build(const lc_onnx_import *r, int batch, bool train, model *md)
{
    return model_build_json(r->json, r, NULL, batch, train, md);
}

/* Evaluation-mode forward of n examples; the logits into out. */
static lc_status model_forward(model *md, const float *x, const int32_t *labels, int n, float *out)
{
    int32_t *zero = labels ? NULL : calloc((size_t)n, sizeof *zero);
    lc_status st = lc_exec_set_mode(md->ex, false);
    if (st == LC_OK) st = lc_exec_set_batch(md->ex, x, labels ? labels : zero, n);
    if (st == LC_OK) st = lc_exec_forward(md->ex);
    if (st == LC_OK) st = lc_exec_read_node(md->ex, md->g->logits, out);
    free(zero);
    return st;
}

/* Largest error in units of TOL * max(1, |want|) (<= 1 passes) and the
 * largest absolute error. */
static double compare(const float *got, const float *want, int64_t n, double *max_abs)
{
    double worst = 0;
    *max_abs = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d == d)) d = INFINITY;
        *max_abs = fmax(*max_abs, d);
        worst = fmax(worst, d / (TOL * fmax(1.0, fabs(want[i]))));
    }
    return worst;
}

/* ---- ONNX's node test cases ---- */

#define MAX_BIND 8

/* One test data set of a case: imports with the inputs past the first
 * bound, runs input 0 through the device, compares output 0. */
static lc_status run_data_set(const uint8_t *bytes, size_t len, const char *dir, const char *set)
{
    char p[1024], sd[1024];
    path_join(sd, sizeof sd, dir, set);
    lc_onnx_value in[MAX_BIND + 1], want;
    memset(in, 0, sizeof in);
    memset(&want, 0, sizeof want);
    lc_onnx_import r = {0};
    model md = {0};
    float *got = NULL;
    lc_status st = LC_OK;
    int n_in = 0;
    for (; n_in <= MAX_BIND && st == LC_OK; n_in++) {
        char f[32];
        snprintf(f, sizeof f, "input_%d.pb", n_in);
        struct stat sb;
        if (stat(path_join(p, sizeof p, sd, f), &sb)) break;
        st = read_value(p, &in[n_in]);
    }
    if (st == LC_OK) st = read_value(path_join(p, sizeof p, sd, "output_0.pb"), &want);
    if (st == LC_OK && (n_in < 1 || !in[0].f)) st = LC_ERR(LC_ERR_UNSUPPORTED, "input 0 is not a FLOAT tensor");
    if (st == LC_OK) {
        lc_onnx_import_opts o = {.bind = in + 1, .n_bind = n_in - 1};
        st = lc_onnx_import_parse(bytes, len, dir, &o, &r);
    }
    int batch = in[0].rank > 1 ? (int)in[0].dims[0] : 1;
    if (st == LC_OK) st = model_build(&r, batch, false, &md);
    if (st == LC_OK && want.numel != (int64_t)batch * md.g->classes)
        st = LC_ERR(LC_ERR_INVALID, "%lld values expected, the model gives %lld", (long long)want.numel,
                    (long long)batch * md.g->classes);
    if (st == LC_OK && !want.f) st = LC_ERR(LC_ERR_UNSUPPORTED, "the expected output is not FLOAT");
    if (st == LC_OK && !(got = malloc((size_t)want.numel * sizeof *got))) st = LC_ERR(LC_ERR_NOMEM, "out of memory");
    if (st == LC_OK) st = model_forward(&md, in[0].f, NULL, batch, got);
    double max_abs;
    if (st == LC_OK && compare(got, want.f, want.numel, &max_abs) > 1)
        st = LC_ERR(LC_ERR_INVALID, "%s: max abs error %.3g beyond the tolerance", set, max_abs);
    free(got);
    model_free(&md);
    lc_onnx_import_deinit(&r);
    for (int i = 0; i < n_in && i <= MAX_BIND; i++) lc_onnx_value_deinit(&in[i]);
    lc_onnx_value_deinit(&want);
    return st;
}

static lc_status run_case(const char *dir)
{
    char p[1024];
    uint8_t *bytes;
    size_t len;
    LC_TRY(lc_file_read(path_join(p, sizeof p, dir, "model.onnx"), &bytes, &len));
    lc_status st = LC_OK;
    int sets = 0;
    for (int k = 0; k < 8 && st == LC_OK; k++) {
        char set[32];
        struct stat sb;
        snprintf(set, sizeof set, "test_data_set_%d", k);
        if (stat(path_join(p, sizeof p, dir, set), &sb)) continue;
        st = run_data_set(bytes, len, dir, set);
        sets++;
    }
    free(bytes);
    if (st == LC_OK && !sets) st = LC_ERR(LC_ERR_NOT_FOUND, "%s: no test data set", dir);
    return st;
}

/* True when every op of the case's model is one the importer supports. */
static bool case_selected(const char *dir)
{
    char p[1024], ops[1024];
    uint8_t *bytes;
    size_t len;
    if (lc_file_read(path_join(p, sizeof p, dir, "model.onnx"), &bytes, &len) != LC_OK) return false;
    lc_status st = lc_onnx_model_ops(bytes, len, dir, ops, sizeof ops);
    free(bytes);
    if (st != LC_OK || !ops[0]) return false;
    for (char *tok = strtok(ops, ","); tok; tok = strtok(NULL, ","))
        if (!lc_onnx_op_supported(tok)) return false;
    return true;
}

#define MAX_SKIPS 256
typedef struct skip_list {
    char name[MAX_SKIPS][96];
    bool seen[MAX_SKIPS];
    int n;
} skip_list;

/* tests/data/onnx/node_skips.txt: "test_name  reason", '#' comments. */
static void read_skips(skip_list *s)
{
    char p[1024], line[512];
    snprintf(p, sizeof p, "%s/tests/data/onnx/node_skips.txt", src_root());
    FILE *f = fopen(p, "r");
    ck_assert_msg(f, "cannot open %s", p);
    s->n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        ck_assert_int_lt(s->n, MAX_SKIPS);
        ck_assert_int_eq(sscanf(line, "%95s", s->name[s->n]), 1);
        s->seen[s->n++] = false;
    }
    fclose(f);
}

static int skip_find(const skip_list *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], name)) return i;
    return -1;
}

/* Generates the cases into dir; false when python3-onnx is missing. */
static bool generate_cases(const char *dir)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' '%s/tools/onnx_node_cases.py' '%s' >/dev/null 2>&1", python(), src_root(), dir);
    int rc = system(cmd);
    return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

START_TEST(node_cases)
{
    char dir[1024], node[1024];
    snprintf(dir, sizeof dir, "%s/node-cases", lc_test_tmpdir());
    if (!generate_cases(dir)) {
        ck_assert_msg(!lc_test_data_required(), "%s could not generate ONNX's node test cases (python3-onnx, "
                      "python3-numpy)", python());
        printf("# ONNX node cases not run: %s has no onnx module\n", python());
        return;
    }
    skip_list *skips = calloc(1, sizeof *skips);
    read_skips(skips);
    DIR *d = opendir(path_join(node, sizeof node, dir, "node"));
    ck_assert_msg(d, "no folder %s", node);
    char **names = NULL;
    int n = 0, total = 0, passed = 0, skipped = 0, wrong = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "test_", 5)) continue;
        names = realloc(names, (size_t)(n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        char cd[1024];
        path_join(cd, sizeof cd, node, names[i]);
        if (!case_selected(cd)) continue;
        total++;
        lc_status st = run_case(cd);
        int k = skip_find(skips, names[i]);
        if (k >= 0) skips->seen[k] = true;
        if (st == LC_OK && k < 0) passed++;
        else if (st != LC_OK && k >= 0) skipped++;
        else if (st == LC_OK) {
            printf("# %s passes but is listed in node_skips.txt\n", names[i]);
            wrong++;
        } else {
            printf("# %s fails and is not listed in node_skips.txt: %s\n", names[i], lc_error_message());
            wrong++;
        }
    }
    for (int k = 0; k < skips->n; k++)
        if (!skips->seen[k]) {
            printf("# %s is listed in node_skips.txt but is not a case of the supported ops\n", skips->name[k]);
            wrong++;
        }
    printf("# ONNX node cases of the supported ops: %d passed, %d skipped (listed), %d total\n", passed, skipped, total);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(skips);
    ck_assert_int_eq(wrong, 0);
    ck_assert_int_gt(passed, 30);
}
END_TEST

/* ---- a residual CNN exported by PyTorch (tools/onnx_golden.py) ---- */

typedef struct golden {
    uint8_t *bytes;
    size_t len;
    lc_onnx_value x, y, labels;
    int32_t lab[64];
    int n;
} golden;

/* tests/data/onnx/<model>, <prefix>_input.pb, <prefix>_output.pb and, when
 * there, <prefix>_labels.pb (else labels 0). */
static void golden_load_files(golden *gd, const char *model, const char *prefix)
{
    char p[1024], dir[1024], f[256];
    memset(gd, 0, sizeof *gd);
    snprintf(dir, sizeof dir, "%s/tests/data/onnx", src_root());
    ck_assert_msg(lc_file_read(path_join(p, sizeof p, dir, model), &gd->bytes, &gd->len) == LC_OK, "%s",
                  lc_error_message());
    snprintf(f, sizeof f, "%s_input.pb", prefix);
    ck_assert_msg(read_value(path_join(p, sizeof p, dir, f), &gd->x) == LC_OK, "%s", lc_error_message());
    snprintf(f, sizeof f, "%s_output.pb", prefix);
    ck_assert_msg(read_value(path_join(p, sizeof p, dir, f), &gd->y) == LC_OK, "%s", lc_error_message());
    gd->n = (int)gd->x.dims[0];
    ck_assert_int_le(gd->n, 64);
    snprintf(f, sizeof f, "%s_labels.pb", prefix);
    struct stat sb;
    if (stat(path_join(p, sizeof p, dir, f), &sb)) return;
    ck_assert_msg(read_value(p, &gd->labels) == LC_OK, "%s", lc_error_message());
    ck_assert(gd->labels.i64 && gd->labels.numel == gd->n);
    for (int i = 0; i < gd->n; i++) gd->lab[i] = (int32_t)gd->labels.i64[i];
}

static void golden_load(golden *gd)
{
    golden_load_files(gd, "resnet_small.onnx", "resnet_small");
    ck_assert_ptr_nonnull(gd->labels.i64);
}

static void golden_free(golden *gd)
{
    free(gd->bytes);
    lc_onnx_value_deinit(&gd->x);
    lc_onnx_value_deinit(&gd->y);
    lc_onnx_value_deinit(&gd->labels);
}

/* Imports the golden model and checks its forward pass against PyTorch's
 * outputs; returns the largest absolute error. */
static double check_golden(const golden *gd, const lc_onnx_import *r, float *logits)
{
    model md;
    ck_assert_msg(model_build(r, gd->n, false, &md) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(md.g->classes * gd->n, gd->y.numel);
    ck_assert_msg(model_forward(&md, gd->x.f, gd->lab, gd->n, logits) == LC_OK, "%s", lc_error_message());
    double max_abs, worst = compare(logits, gd->y.f, gd->y.numel, &max_abs);
    model_free(&md);
    ck_assert_msg(worst <= 1, "the imported model differs from PyTorch: max abs error %.3g", max_abs);
    return max_abs;
}

START_TEST(torch_resnet_forward)
{
    golden gd;
    golden_load(&gd);
    lc_onnx_import r;
    ck_assert_msg(lc_onnx_import_parse(gd.bytes, gd.len, "resnet_small.onnx", NULL, &r) == LC_OK, "%s",
                  lc_error_message());
    /* the structure survived: batchnorms, the residual add, pooling */
    ck_assert_ptr_nonnull(strstr(r.json, "\"op\": \"batchnorm\""));
    ck_assert_ptr_nonnull(strstr(r.json, "\"op\": \"add\""));
    ck_assert_ptr_nonnull(strstr(r.json, "\"op\": \"maxpool\""));
    ck_assert_ptr_nonnull(strstr(r.json, "\"op\": \"global_avgpool\""));
    ck_assert_int_eq(r.batch, 0); /* exported with a dynamic batch */
    /* layers are named after PyTorch's modules: its parameter names, '.' inside a name becoming '_' */
    static const char *const names[] = {"stem.weight", "stem.bias", "bn.running_var", "block_conv1.weight",
                                        "block_bn2.bias", "fc.weight", "fc.bias"};
    for (size_t i = 0; i < LC_COUNTOF(names); i++) {
        bool found = false;
        for (int k = 0; k < r.n_tensors; k++) found |= !strcmp(r.tensors[k].name, names[i]);
        ck_assert_msg(found, "no imported tensor %s", names[i]);
    }
    float *logits = malloc((size_t)gd.y.numel * sizeof *logits);
    double err = check_golden(&gd, &r, logits);
    printf("# residual CNN from PyTorch: max abs error %.3g over %lld logits\n", err, (long long)gd.y.numel);
    free(logits);
    lc_onnx_import_deinit(&r);
    golden_free(&gd);
}
END_TEST

/* A few plain SGD steps on the golden batch: the loss falls. */
START_TEST(torch_resnet_trains)
{
    golden gd;
    golden_load(&gd);
    lc_onnx_import r;
    ck_assert_msg(lc_onnx_import_parse(gd.bytes, gd.len, "resnet_small.onnx", NULL, &r) == LC_OK, "%s",
                  lc_error_message());
    model md;
    ck_assert_msg(model_build(&r, gd.n, true, &md) == LC_OK, "%s", lc_error_message());
    float *grads = malloc((size_t)md.g->param_floats * sizeof *grads);
    double first = 0, last = 0;
    for (int step = 0; step < 12; step++) {
        double loss;
        ck_assert(lc_exec_set_mode(md.ex, true) == LC_OK);
        ck_assert(lc_exec_set_batch(md.ex, gd.x.f, gd.lab, gd.n) == LC_OK);
        ck_assert_msg(lc_exec_forward(md.ex) == LC_OK, "%s", lc_error_message());
        ck_assert_msg(lc_exec_backward(md.ex) == LC_OK, "%s", lc_error_message());
        ck_assert(lc_exec_stats(md.ex, &loss, NULL, true) == LC_OK);
        loss /= gd.n;
        ck_assert(isfinite(loss));
        if (step == 0) first = loss;
        last = loss;
        /* the device moved the running statistics: read them back first */
        ck_assert(lc_exec_read_params(md.ex, md.params) == LC_OK);
        ck_assert(lc_exec_read_grads(md.ex, grads) == LC_OK);
        for (int i = 0; i < md.g->n_params; i++) {
            const lc_param *p = &md.g->params[i];
            if (!md.g->nodes[p->node].trainable) continue;
            for (int64_t k = 0; k < p->numel; k++) md.params[p->offset + k] -= 0.05f * grads[p->offset + k];
        }
        ck_assert(lc_exec_write_params(md.ex, md.params) == LC_OK);
    }
    printf("# residual CNN from PyTorch, 12 SGD steps on one batch: loss %.4f -> %.4f\n", first, last);
    ck_assert_msg(last < 0.7 * first, "the loss did not fall: %.4f -> %.4f", first, last);
    free(grads);
    model_free(&md);
    lc_onnx_import_deinit(&r);
    golden_free(&gd);
}
END_TEST

/* ---- Pad folding: a small CNN from PyTorch (tools/onnx_golden_pad.py) ---- */

/* pad_small.onnx: AvgPool2d(3, stride=1, padding=1) counting its padding,
 * exported as Constant -> Pad -> AveragePool; pad_small_conv.onnx: the
 * same with the Conv's padding in a Pad before it and Identity nodes on
 * the way.  Both give PyTorch's logits. */
START_TEST(torch_pad_forward)
{
    static const char *const files[] = {"pad_small.onnx", "pad_small_conv.onnx"};
    for (size_t i = 0; i < LC_COUNTOF(files); i++) {
        golden gd;
        golden_load_files(&gd, files[i], "pad_small");
        lc_onnx_import r;
        ck_assert_msg(lc_onnx_import_parse(gd.bytes, gd.len, files[i], NULL, &r) == LC_OK, "%s", lc_error_message());
        /* the Pads are folded: the pooling pads 1 on each side counting the zeros, the conv pads 1 */
        ck_assert_msg(strstr(r.json, "\"op\": \"avgpool\", \"inputs\": [\"Relu\"], \"kernel\": [3, 3], "
                                     "\"stride\": [1, 1], \"pad\": [1, 1, 1, 1], \"count_include_pad\": true"),
                      "%s", r.json);
        ck_assert_msg(strstr(r.json, "\"kernel\": [3, 3], \"stride\": [1, 1], \"pad\": [1, 1], \"bias\": true"),
                      "%s", r.json);
        ck_assert_ptr_null(strstr(r.json, "Pad\""));
        float *logits = malloc((size_t)gd.y.numel * sizeof *logits);
        double err = check_golden(&gd, &r, logits);
        printf("# %s (Pad folded) from PyTorch: max abs error %.3g over %lld logits\n", files[i], err,
               (long long)gd.y.numel);
        free(logits);
        lc_onnx_import_deinit(&r);
        golden_free(&gd);
    }
}
END_TEST

/* Small cases in the layout of ONNX's node tests, numpy's values
 * (tools/onnx_golden_pad.py): Pad's opset 10 attribute form before an
 * AveragePool; Constants (value_ints, value_float -inf) giving a Pad before
 * a MaxPool, an Identity of a constant shape. */
START_TEST(pad_cases)
{
    static const char *const names[] = {"pad_opset10_avgpool", "pad_maxpool_neg_inf"};
    for (size_t i = 0; i < LC_COUNTOF(names); i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/tests/data/onnx/pad_cases/%s", src_root(), names[i]);
        ck_assert_msg(run_case(dir) == LC_OK, "%s", lc_error_message());
    }
}
END_TEST

/* ---- export ---- */

/* onnx.checker on the file: 1 valid, 0 invalid, -1 no python3-onnx. */
static int onnx_checker(const char *path)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import onnx' >/dev/null 2>&1", python());
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc)) return -1;
    snprintf(cmd, sizeof cmd, "'%s' -c 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), "
             "full_check=True)' '%s'", python(), path);
    rc = system(cmd);
    return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

/* Exports model json with params (its graph's layout), checks the file
 * with onnx.checker, imports it back and compares the logits of batch x
 * (n examples) with the original's: they must agree to float rounding. */
static void export_roundtrip(const char *json, const float *params, const float *x, int n, const char *file)
{
    lc_graph *g;
    ck_assert_msg(lc_model_parse(json, strlen(json), file, &g, NULL) == LC_OK, "%s", lc_error_message());
    uint8_t *bytes;
    size_t len;
    ck_assert_msg(lc_onnx_export(g, params, &bytes, &len) == LC_OK, "%s", lc_error_message());
    char path[1024];
    path_join(path, sizeof path, lc_test_tmpdir(), file);
    ck_assert(lc_file_write_atomic(path, bytes, len) == LC_OK);
    int ok = onnx_checker(path);
    ck_assert_msg(ok != 0, "onnx.checker refuses the export %s", path);
    if (ok < 0) {
        ck_assert_msg(!lc_test_data_required(), "%s has no onnx module for onnx.checker", python());
        printf("# %s: onnx.checker not run (no python3-onnx)\n", file);
    }
    lc_onnx_import r;
    ck_assert_msg(lc_onnx_import_parse(bytes, len, path, NULL, &r) == LC_OK, "%s", lc_error_message());
    model a, b;
    ck_assert_msg(model_build_json(json, NULL, params, n, false, &a) == LC_OK, "%s", lc_error_message());
    ck_assert_msg(model_build(&r, n, false, &b) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(a.g->classes, b.g->classes);
    int64_t k = (int64_t)n * a.g->classes;
    float *ya = malloc((size_t)k * sizeof *ya), *yb = malloc((size_t)k * sizeof *yb);
    ck_assert(model_forward(&a, x, NULL, n, ya) == LC_OK && model_forward(&b, x, NULL, n, yb) == LC_OK);
    double max_abs = 0;
    for (int64_t i = 0; i < k; i++) max_abs = fmax(max_abs, fabs((double)ya[i] - yb[i]));
    printf("# %s: export -> import gives the same logits (max abs difference %.3g)\n", file, max_abs);
    ck_assert_msg(max_abs <= 1e-6, "%s: the round trip changes the logits by %.3g", file, max_abs);
    free(ya);
    free(yb);
    model_free(&a);
    model_free(&b);
    lc_onnx_import_deinit(&r);
    free(bytes);
    lc_graph_destroy(g);
}

/* The imported residual CNN: export, check, import back. */
START_TEST(export_torch_resnet)
{
    golden gd;
    golden_load(&gd);
    lc_onnx_import r;
    ck_assert(lc_onnx_import_parse(gd.bytes, gd.len, "resnet_small.onnx", NULL, &r) == LC_OK);
    lc_graph *g;
    ck_assert(lc_model_parse(r.json, strlen(r.json), "imported", &g, NULL) == LC_OK);
    float *params = calloc((size_t)g->param_floats + 1, sizeof *params);
    ck_assert(lc_onnx_import_params(&r, g, params) == LC_OK);
    export_roundtrip(r.json, params, gd.x.f, gd.n, "resnet_small_export.onnx");
    free(params);
    lc_graph_destroy(g);
    lc_onnx_import_deinit(&r);
    golden_free(&gd);
}
END_TEST

/* Every op the exporter knows, in a model written for layca: "same"
 * padding with an odd total (8 wide, stride 2: pads 0 and 1), dropout, leaky ReLU,
 * padded average (counting only the real values) and max pooling,
 * batchnorm without affine parameters on a flat value,
 * dense layers with and without bias. */
START_TEST(export_every_op)
{
    static const char json[] =
        "{\"format\": \"layca-model/1\", \"name\": \"export-ops\", \"input\": {\"shape\": [2, 8, 8]}, \"classes\": 5,"
        " \"nodes\": ["
        "  {\"name\": \"c1\", \"op\": \"conv2d\", \"filters\": 4, \"kernel\": 3, \"stride\": 2, \"pad\": \"same\","
        "   \"bias\": true},"
        "  {\"name\": \"b1\", \"op\": \"batchnorm\", \"affine\": true},"
        "  {\"name\": \"r1\", \"op\": \"relu\"},"
        "  {\"name\": \"c2\", \"op\": \"conv2d\", \"filters\": 4, \"kernel\": [3, 1], \"pad\": [1, 0]},"
        "  {\"name\": \"s\", \"op\": \"add\", \"inputs\": [\"c2\", \"r1\"]},"
        "  {\"name\": \"l\", \"op\": \"leaky_relu\", \"slope\": 0.1},"
        "  {\"name\": \"p\", \"op\": \"avgpool\", \"kernel\": 2, \"stride\": 1, \"pad\": [1, 0, 0, 1],"
        "   \"count_include_pad\": false},"
        "  {\"name\": \"m\", \"op\": \"maxpool\", \"kernel\": [2, 2], \"pad\": 1},"
        "  {\"name\": \"g\", \"op\": \"global_avgpool\", \"inputs\": [\"l\"]},"
        "  {\"name\": \"f\", \"op\": \"flatten\", \"inputs\": [\"m\"]},"
        "  {\"name\": \"d0\", \"op\": \"dense\", \"units\": 4, \"bias\": false},"
        "  {\"name\": \"s2\", \"op\": \"add\", \"inputs\": [\"d0\", \"g\"]},"
        "  {\"name\": \"bn\", \"op\": \"batchnorm\", \"affine\": false},"
        "  {\"name\": \"dr\", \"op\": \"dropout\", \"rate\": 0.3},"
        "  {\"name\": \"fc\", \"op\": \"dense\", \"units\": 5, \"bias\": true, \"bias_init\": \"constant\","
        "   \"bias_value\": 0.5}],"
        " \"loss\": \"softmax_cross_entropy\"}";
    lc_graph *g;
    ck_assert_msg(lc_model_parse(json, strlen(json), "export-ops", &g, NULL) == LC_OK, "%s", lc_error_message());
    float *params = calloc((size_t)g->param_floats + 1, sizeof *params);
    lc_graph_init_params(g, params, 3);
    /* running statistics away from 0 and 1 */
    for (int i = 0; i < g->n_params; i++) {
        const lc_param *p = &g->params[i];
        const char *nm = g->nodes[p->node].name;
        bool var = strstr(nm, "running_var") != NULL;
        if (var || strstr(nm, "running_mean"))
            for (int64_t k = 0; k < p->numel; k++)
                params[p->offset + k] = var ? 0.5f + 0.1f * (float)k : 0.1f * (float)k - 0.2f;
    }
    int n = 3;
    float x[3 * 2 * 8 * 8];
    for (size_t i = 0; i < LC_COUNTOF(x); i++) x[i] = (float)sin(0.37 * (double)i);
    export_roundtrip(json, params, x, n, "export_ops.onnx");
    free(params);
    lc_graph_destroy(g);
}
END_TEST

/* ---- bad input ---- */

/* The golden model changed by `mutate`, imported: the error must name
 * every one of the NULL-terminated strings. */
typedef void (*mutation)(Onnx__ModelProto *m);

static Onnx__NodeProto *node_named(Onnx__ModelProto *m, const char *name)
{
    for (size_t i = 0; i < m->graph->n_node; i++)
        if (!strcmp(m->graph->node[i]->name, name)) return m->graph->node[i];
    ck_abort_msg("no node %s", name);
    return NULL;
}

static Onnx__AttributeProto *attr_named(Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (!strcmp(n->attribute[i]->name, name)) return n->attribute[i];
    ck_abort_msg("no attribute %s", name);
    return NULL;
}

/* mutations change the unpacked model in place (its strings are freed with it) */
static void mut_op(Onnx__ModelProto *m) { memcpy(node_named(m, "/block/Relu")->op_type, "Selu", 4); }
static void mut_group(Onnx__ModelProto *m) { attr_named(node_named(m, "/conv3/Conv"), "group")->i = 2; }
static void mut_dilation(Onnx__ModelProto *m) { attr_named(node_named(m, "/stem/Conv"), "dilations")->ints[1] = 2; }
/* padding as large as the window */
static void mut_pool_pads(Onnx__ModelProto *m) { attr_named(node_named(m, "/pool/MaxPool"), "pads")->ints[0] = 9; }
static void mut_flatten(Onnx__ModelProto *m) { attr_named(node_named(m, "/flat/Flatten"), "axis")->i = 2; }
static void mut_transa(Onnx__ModelProto *m) { attr_named(node_named(m, "/fc/Gemm"), "alpha")->name[0] = 'x'; }
/* fc.weight [10, 16] seen as [16, 10]: the same values, a shape that does not fit */
static void mut_shape(Onnx__ModelProto *m)
{
    for (size_t i = 0; i < m->graph->n_initializer; i++)
        if (!strcmp(m->graph->initializer[i]->name, "fc.weight")) {
            m->graph->initializer[i]->dims[0] = 16;
            m->graph->initializer[i]->dims[1] = 10;
        }
}
/* stem.bias with one value too few */
static void mut_short(Onnx__ModelProto *m)
{
    for (size_t i = 0; i < m->graph->n_initializer; i++)
        if (!strcmp(m->graph->initializer[i]->name, "stem.bias")) m->graph->initializer[i]->raw_data.len -= 4;
}

/* mutations of pad_small.onnx and pad_small_conv.onnx */
static void set_string(char *s, const char *v)
{
    ck_assert_uint_le(strlen(v), strlen(s));
    memcpy(s, v, strlen(v) + 1);
}
static void mut_pad_reflect(Onnx__ModelProto *m)
{
    ProtobufCBinaryData *mode = &attr_named(node_named(m, "/avg/Pad"), "mode")->s;
    memcpy(mode->data, "reflect", 7);
    mode->len = 7;
}
static void mut_pad_relu(Onnx__ModelProto *m) { set_string(node_named(m, "/avg/AveragePool")->op_type, "Relu"); }
static void mut_pad_maxpool(Onnx__ModelProto *m) { set_string(node_named(m, "/avg/AveragePool")->op_type, "MaxPool"); }
static void mut_pad_twice(Onnx__ModelProto *m) { set_string(node_named(m, "/pool/MaxPool")->input[0], "/avg/Pad_output_0"); }
static void mut_pad_computed(Onnx__ModelProto *m) { set_string(node_named(m, "/avg/Pad")->input[1], "/Relu_output_0"); }
/* the pool's own pads, counting only the real values, after the Pad's counted zeros */
static void mut_pad_pool_pads(Onnx__ModelProto *m)
{
    Onnx__AttributeProto *p = attr_named(node_named(m, "/avg/AveragePool"), "pads");
    for (size_t i = 0; i < p->n_ints; i++) p->ints[i] = 1;
}
/* pads [0, 0, 1, 1, 0, 0, 0, 1]: the conv's padding [1, 1, 0, 1] is not symmetric */
static void mut_pad_conv_asym(Onnx__ModelProto *m)
{
    Onnx__TensorProto *t = attr_named(node_named(m, "/conv/PadConstant"), "value")->t;
    ck_assert_uint_eq(t->raw_data.len, 64);
    memset(t->raw_data.data + 6 * 8, 0, 8);
}

static void expect_error(const golden *gd, mutation mutate, const char *const *want)
{
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, gd->len, gd->bytes);
    ck_assert_ptr_nonnull(m);
    mutate(m);
    size_t len = onnx__model_proto__get_packed_size(m);
    uint8_t *bytes = malloc(len);
    ck_assert_uint_eq(onnx__model_proto__pack(m, bytes), len);
    lc_onnx_import r;
    lc_status st = lc_onnx_import_parse(bytes, len, "bad.onnx", NULL, &r);
    ck_assert_msg(st != LC_OK, "a bad model was imported (%s ...)", want[0]);
    for (int i = 0; want[i]; i++)
        ck_assert_msg(strstr(lc_error_message(), want[i]), "the error '%s' does not name '%s'", lc_error_message(),
                      want[i]);
    free(bytes);
    onnx__model_proto__free_unpacked(m, NULL);
}

START_TEST(bad_models)
{
    golden gd;
    golden_load(&gd);
    lc_onnx_import r;
    /* truncated, and not protobuf at all */
    for (size_t cut = 1; cut < gd.len; cut += gd.len / 7) {
        lc_status st = lc_onnx_import_parse(gd.bytes, cut, "cut.onnx", NULL, &r);
        ck_assert_msg(st != LC_OK, "a model cut at %zu bytes was imported", cut);
        ck_assert_ptr_nonnull(strstr(lc_error_message(), "cut.onnx"));
    }
    static const uint8_t text[] = "{\"format\": \"layca-model/1\"}";
    ck_assert_int_eq(lc_onnx_import_parse(text, sizeof text - 1, "text.onnx", NULL, &r), LC_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(lc_error_message(), "not an ONNX model"));
    ck_assert_int_eq(lc_onnx_import_parse(text, 0, "empty.onnx", NULL, &r), LC_ERR_INVALID);
    static const char *const op[] = {"'/block/Relu'", "op Selu is not supported", NULL};
    static const char *const group[] = {"'/conv3/Conv'", "group 2", NULL};
    static const char *const dil[] = {"'/stem/Conv'", "dilations", NULL};
    static const char *const pads[] = {"'/pool/MaxPool'", "pads [9, 1, 1, 1]", "smaller than the window", NULL};
    static const char *const flat[] = {"'/flat/Flatten'", "axis 2", NULL};
    static const char *const attr[] = {"'/fc/Gemm'", "attribute 'xlpha' is not supported", NULL};
    static const char *const shape[] = {"'/fc/Gemm'", "'fc.weight'", "16 columns", NULL};
    static const char *const shrt[] = {"tensor 'stem.bias'", "28 bytes of data for 8 values", NULL};
    expect_error(&gd, mut_op, op);
    expect_error(&gd, mut_group, group);
    expect_error(&gd, mut_dilation, dil);
    expect_error(&gd, mut_pool_pads, pads);
    expect_error(&gd, mut_flatten, flat);
    expect_error(&gd, mut_transa, attr);
    expect_error(&gd, mut_shape, shape);
    expect_error(&gd, mut_short, shrt);
    golden_free(&gd);
}
END_TEST

/* A Pad that cannot be folded: errors naming the node and why. */
START_TEST(bad_pads)
{
    static const struct {
        const char *model;
        mutation mutate;
        const char *want[4];
    } cases[] = {
        {"pad_small.onnx", mut_pad_reflect, {"node '/avg/Pad' (Pad)", "mode 'reflect'", "constant Pad", NULL}},
        {"pad_small.onnx", mut_pad_relu, {"node '/avg/Pad' (Pad)", "goes to node '/avg/AveragePool' (Relu)",
                                          "only into the Conv, MaxPool or AveragePool after it", NULL}},
        {"pad_small.onnx", mut_pad_maxpool, {"node '/avg/Pad' (Pad)", "constant value 0 before the MaxPool",
                                             "ignores its padding", NULL}},
        {"pad_small.onnx", mut_pad_twice, {"node '/avg/Pad' (Pad)", "'/avg/Pad_output_0' has 2 uses", NULL}},
        {"pad_small.onnx", mut_pad_computed, {"node '/avg/Pad' (Pad)", "the pads '/Relu_output_0' are computed", NULL}},
        {"pad_small.onnx", mut_pad_pool_pads, {"node '/avg/AveragePool' (AveragePool)", "count_include_pad 0",
                                               "after the Pad '/avg/Pad'", NULL}},
        {"pad_small_conv.onnx", mut_pad_conv_asym, {"node '/conv/Conv' (Conv)", "pads [1, 1, 0, 1] (with the Pad "
                                                    "'/conv/Pad' before it)", "symmetrically", NULL}},
    };
    for (size_t i = 0; i < LC_COUNTOF(cases); i++) {
        golden gd;
        golden_load_files(&gd, cases[i].model, "pad_small");
        expect_error(&gd, cases[i].mutate, cases[i].want);
        golden_free(&gd);
    }
}
END_TEST

/* ---- the commands ---- */

static int run_layca(const char *args)
{
    const char *b = getenv("LAYCA_BUILD_ROOT");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%.1000s/tools/layca' %.6000s 2>/dev/null", b && *b ? b : "..", args);
    int rc = system(cmd);
    return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static bool same_bytes(const char *a, const uint8_t *bytes, size_t len)
{
    uint8_t *d;
    size_t n;
    if (lc_file_read(a, &d, &n) != LC_OK) return false;
    bool same = n == len && !memcmp(d, bytes, n);
    free(d);
    return same;
}

START_TEST(commands)
{
    char in[1024], json[1024], w[1024], onnx[1024], args[4200];
    snprintf(in, sizeof in, "%s/tests/data/onnx/resnet_small.onnx", src_root());
    path_join(json, sizeof json, lc_test_tmpdir(), "cli.json");
    path_join(w, sizeof w, lc_test_tmpdir(), "cli.safetensors");
    path_join(onnx, sizeof onnx, lc_test_tmpdir(), "cli.onnx");
    uint8_t *orig;
    size_t len;
    ck_assert(lc_file_read(in, &orig, &len) == LC_OK);
    /* an output over the input is refused, the input left alone */
    snprintf(args, sizeof args, "import '%s' -o '%s'", in, in);
    ck_assert_int_eq(run_layca(args), 2);
    snprintf(args, sizeof args, "import '%s' -o '%s' --weights '%s'", in, json, in);
    ck_assert_int_eq(run_layca(args), 2);
    ck_assert(same_bytes(in, orig, len));
    snprintf(args, sizeof args, "import '%s' -o '%s'", in, json);
    ck_assert_int_eq(run_layca(args), 0);
    lc_graph *g;
    ck_assert_msg(lc_model_load(json, &g, NULL) == LC_OK, "%s", lc_error_message());
    float *params = calloc((size_t)g->param_floats + 1, sizeof *params);
    ck_assert_msg(lc_model_load_params(w, g, params) == LC_OK, "%s", lc_error_message()); /* the default weights path */
    free(params);
    lc_graph_destroy(g);
    snprintf(args, sizeof args, "export '%s' --weights '%s' -o '%s'", json, w, json);
    ck_assert_int_eq(run_layca(args), 2);
    snprintf(args, sizeof args, "export '%s' -o '%s'", json, onnx);
    ck_assert_int_eq(run_layca(args), 2); /* --weights is needed */
    snprintf(args, sizeof args, "export '%s' --weights '%s' -o '%s'", json, w, onnx);
    ck_assert_int_eq(run_layca(args), 0);
    snprintf(args, sizeof args, "import '%s' -o '%s' --weights '%s'", onnx, json, w);
    ck_assert_int_eq(run_layca(args), 0);
    /* an unsupported model: an error, and nothing written */
    snprintf(args, sizeof args, "import '%s' -o '%s/never.json'", json, lc_test_tmpdir());
    ck_assert_int_eq(run_layca(args), 1);
    char never[1024];
    struct stat sb;
    ck_assert_int_ne(stat(path_join(never, sizeof never, lc_test_tmpdir(), "never.json"), &sb), 0);
    free(orig);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("onnx");
    TCase *tc = tcase_create("onnx");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, node_cases);
    tcase_add_test(tc, torch_resnet_forward);
    tcase_add_test(tc, torch_resnet_trains);
    tcase_add_test(tc, torch_pad_forward);
    tcase_add_test(tc, pad_cases);
    tcase_add_test(tc, export_torch_resnet);
    tcase_add_test(tc, export_every_op);
    tcase_add_test(tc, bad_models);
    tcase_add_test(tc, bad_pads);
    tcase_add_test(tc, commands);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int failed = lc_test_run(suite());
    if (rt) lc_rt_destroy(rt);
    return failed;
}

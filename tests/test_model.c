/* Tests for the model module (JSON -> IR, safetensors) and the IR passes it
 * feeds: strict loader errors on the broken files of tests/data/models/bad
 * (one problem each, expected messages in EXPECTED.txt), structure and
 * shapes of valid models, seeded initialisers, autodiff / DCE / memory plan
 * invariants, and checkpoint round trips and broken checkpoints.  No OpenCL. */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__GLIBC__)
#include <malloc.h> /* mallopt(M_PERTURB): freed memory is scribbled, so a use after free shows */
#endif

#include "lc_metrics.h"
#include "lc_exec.h"
#include "lc_model.h"
#include "lc_test.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ------------------------------------------------------------------------ */
/* paths and small helpers                                                  */
/* ------------------------------------------------------------------------ */

/* snprintf into a path buffer; truncation ends the run. */
static const char *pathf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const char *pathf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len) { /* also used outside tests: no ck_assert here */
        fprintf(stderr, "path too long: %s...\n", buf);
        exit(1);
    }
    return buf;
}

static const char *source_root(void)
{
    const char *r = getenv("LAYCA_SOURCE_ROOT");
    return r && *r ? r : "..";
}

/* "<source>/<rel>" into buf. */
static const char *src_path(char *buf, size_t len, const char *rel)
{
    pathf(buf, len, "%s/%s", source_root(), rel);
    return buf;
}

static const char *tmp_path(char *buf, size_t len, const char *name)
{
    pathf(buf, len, "%s/%s", lc_test_tmpdir(), name);
    return buf;
}

/* A copy of s with control characters escaped, for failure messages (a raw
 * newline inside a TAP line would break the report). */
static const char *esc(const char *s)
{
    static char buf[2048];
    size_t o = 0;
    for (; *s && o + 5 < sizeof buf; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n') { buf[o++] = '\\'; buf[o++] = 'n'; }
        else if (c == '\r') { buf[o++] = '\\'; buf[o++] = 'r'; }
        else if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(buf + o, sizeof buf - o, "\\x%02x", c);
        else buf[o++] = (char)c;
    }
    buf[o] = 0;
    return buf;
}

/* For hot loops: Check records a mark point (a write) for every passing
 * ck_assert, which is slow over millions of elements. */
#define FAST_CHECK(cond, ...)                                                                            \
    do {                                                                                                 \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);                                                          \
    } while (0)

/* One line of printable text: no newline, no control byte (messages escape them). */
static bool one_line(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return false;
    return true;
}

#define ASSERT_MSG_HAS(sub)                                                                              \
    ck_assert_msg(strstr(lc_error_message(), (sub)) != NULL, "error message \"%s\" lacks \"%s\"",          \
                  esc(lc_error_message()), (sub))

#define ASSERT_ONE_LINE()                                                                                \
    ck_assert_msg(one_line(lc_error_message()), "error message is not one line: \"%s\"", esc(lc_error_message()))

static lc_graph *load_model(const char *rel, lc_train_spec *ts)
{
    char p[1024];
    src_path(p, sizeof p, rel);
    lc_graph *g = NULL;
    lc_status st = lc_model_load(p, &g, ts);
    ck_assert_msg(st == LC_OK, "%s: %s", p, esc(lc_error_message()));
    ck_assert_ptr_nonnull(g);
    return g;
}

static lc_graph *parse_model(const char *text, lc_train_spec *ts)
{
    lc_graph *g = NULL;
    lc_status st = lc_model_parse(text, strlen(text), "inline.json", &g, ts);
    ck_assert_msg(st == LC_OK, "inline model: %s", esc(lc_error_message()));
    ck_assert_ptr_nonnull(g);
    return g;
}

/* Every node's shape is plausible (a corrupt one would send the planner
 * reading far out of bounds, killing the whole suite). */
static void check_shapes_sane(const lc_graph *g, const char *what)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const lc_shape *sh = &g->nodes[i].shape;
        bool ok = sh->rank >= 0 && sh->rank <= LC_MAX_RANK;
        for (int k = 0; ok && k < sh->rank; k++) ok = sh->dims[k] >= 0 && sh->dims[k] <= (1 << 26);
        if (!ok)
            ck_abort_msg("%s: after autodiff node %d '%s' (%s, gradient of '%s') has a corrupt shape (rank %d, "
                         "dims %d, %d): it was read from freed memory?",
                         what, i, g->nodes[i].name, lc_op_name(g->nodes[i].op),
                         g->nodes[i].grad_of >= 0 ? g->nodes[g->nodes[i].grad_of].name : "-", sh->rank, sh->dims[0],
                         sh->dims[1]);
    }
}

/* lc_graph_compile's passes one by one, with a shape check after autodiff
 * so that a corrupted graph fails the test instead of crashing the suite.
 * Tests of lc_graph_compile itself call it directly (as lc_exec_compile,
 * which plans the lowering's workspaces too). */
static void compile_guarded(lc_graph *g, int batch, bool train, const char *what)
{
    if (!train) {
        ck_assert_msg(lc_exec_compile(g, batch, false, NULL) == LC_OK, "%s: %s", what, esc(lc_error_message()));
        return;
    }
    ck_assert_msg(lc_graph_infer(g) == LC_OK, "%s: infer: %s", what, esc(lc_error_message()));
    ck_assert_msg(lc_graph_verify(g) == LC_OK, "%s: verify: %s", what, esc(lc_error_message()));
    if (!g->no_fusion) ck_assert_msg(lc_graph_fuse(g) >= 0, "%s: fuse: %s", what, esc(lc_error_message()));
    ck_assert_msg(lc_graph_autodiff(g) == LC_OK, "%s: autodiff: %s", what, esc(lc_error_message()));
    check_shapes_sane(g, what);
    ck_assert_msg(lc_graph_dce(g) == LC_OK, "%s: dce: %s", what, esc(lc_error_message()));
    ck_assert_msg(lc_graph_verify(g) == LC_OK, "%s: verify after dce: %s", what, esc(lc_error_message()));
    g->aux_fn = lc_exec_aux_floats;
    ck_assert_msg(lc_graph_plan(g, batch) == LC_OK, "%s: plan: %s", what, esc(lc_error_message()));
}

static lc_graph *compiled(const char *rel, int batch, bool train)
{
    lc_graph *g = load_model(rel, NULL);
    compile_guarded(g, batch, train, rel);
    return g;
}

static int find_node(const lc_graph *g, const char *name)
{
    int id = lc_graph_find(g, name);
    ck_assert_msg(id >= 0, "graph '%s' has no node '%s'", g->name, name);
    return id;
}

static const lc_param *find_param(const lc_graph *g, const char *name)
{
    int id = find_node(g, name);
    ck_assert_msg(g->nodes[id].op == LC_OP_PARAM, "'%s' is not a parameter", name);
    int pi = g->nodes[id].param_index;
    ck_assert_int_ge(pi, 0);
    ck_assert_int_lt(pi, g->n_params);
    ck_assert_int_eq(g->params[pi].node, id);
    return &g->params[pi];
}

static void assert_shape(const lc_shape *s, int rank, int d0, int d1, int d2, const char *what)
{
    int d[3] = {d0, d1, d2};
    char b[64];
    bool ok = s->rank == rank;
    for (int i = 0; ok && i < rank; i++) ok = s->dims[i] == d[i];
    ck_assert_msg(ok, "%s: shape %s, expected rank %d [%d, %d, %d]", what, lc_shape_str(s, b, sizeof b), rank, d0,
                  d1, d2);
}

static float *alloc_params(const lc_graph *g)
{
    float *p = calloc((size_t)(g->param_floats > 0 ? g->param_floats : 1), sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

static const float *tensor(const lc_graph *g, const float *host, const char *name, int64_t *numel)
{
    const lc_param *p = find_param(g, name);
    if (numel) *numel = p->numel;
    return host + p->offset;
}

/* ------------------------------------------------------------------------ */
/* 1. broken model files                                                    */
/* ------------------------------------------------------------------------ */

typedef struct bad_case {
    char file[128];
    char sub[384];
} bad_case;

#define MAX_BAD 256
static bad_case bad_cases[MAX_BAD];
static int n_bad;
static char bad_list_error[2048];

static void read_expected(void)
{
    char p[1024];
    pathf(p, sizeof p, "%s/tests/data/models/bad/EXPECTED.txt", source_root());
    FILE *f = fopen(p, "r");
    if (!f) {
        snprintf(bad_list_error, sizeof bad_list_error, "cannot open %s (is LAYCA_SOURCE_ROOT set?)", p);
        return;
    }
    char line[1024];
    int ln = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r')) line[--l] = 0;
        if (!l) continue;
        char *sp = strchr(line, ' ');
        if (!sp || !sp[1] || n_bad == MAX_BAD || (size_t)(sp - line) >= sizeof bad_cases[0].file ||
            strlen(sp + 1) >= sizeof bad_cases[0].sub) {
            snprintf(bad_list_error, sizeof bad_list_error, "%s:%d: expected '<file> <substring>'", p, ln);
            break;
        }
        *sp = 0; /* lengths checked above */
        memcpy(bad_cases[n_bad].file, line, strlen(line) + 1);
        memcpy(bad_cases[n_bad].sub, sp + 1, strlen(sp + 1) + 1);
        n_bad++;
    }
    fclose(f);
}

START_TEST(t_bad_list)
{
    ck_assert_msg(!bad_list_error[0], "%s", bad_list_error);
    ck_assert_msg(n_bad >= 20, "only %d broken model files listed", n_bad);
    /* every listed file exists, once */
    for (int i = 0; i < n_bad; i++) {
        char p[1024];
        pathf(p, sizeof p, "%s/tests/data/models/bad/%s", source_root(), bad_cases[i].file);
        ck_assert_msg(access(p, R_OK) == 0, "EXPECTED.txt lists %s, which does not exist", bad_cases[i].file);
        for (int k = 0; k < i; k++)
            ck_assert_msg(strcmp(bad_cases[i].file, bad_cases[k].file), "EXPECTED.txt lists %s twice",
                          bad_cases[i].file);
    }
    /* every .json in the folder is listed */
    char d[1024];
    pathf(d, sizeof d, "%s/tests/data/models/bad", source_root());
    DIR *dir = opendir(d);
    ck_assert_msg(dir != NULL, "cannot open %s", d);
    int n_json = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 5, ".json")) continue;
        n_json++;
        bool listed = false;
        for (int i = 0; i < n_bad; i++) listed |= !strcmp(bad_cases[i].file, e->d_name);
        if (!listed) {
            closedir(dir);
            ck_abort_msg("%s is not listed in EXPECTED.txt", e->d_name);
        }
    }
    closedir(dir);
    ck_assert_int_eq(n_json, n_bad);
}
END_TEST

/* One TAP line per broken file. */
START_TEST(t_bad_file)
{
    const bad_case *bc = &bad_cases[_i];
    char p[1024];
    pathf(p, sizeof p, "%s/tests/data/models/bad/%s", source_root(), bc->file);
    lc_graph *g = (lc_graph *)&p; /* must be reset to NULL */
    lc_train_spec ts;
    lc_error_clear();
    lc_status st = lc_model_load(p, &g, &ts);
    if (st == LC_OK) {
        lc_graph_destroy(g);
        ck_abort_msg("bad/%s: loaded without error (expected one containing \"%s\")", bc->file, bc->sub);
    }
    const char *m = lc_error_message();
    ck_assert_msg(st == LC_ERR_INVALID, "bad/%s: status %s, expected %s; message \"%s\"", bc->file,
                  lc_status_name(st), lc_status_name(LC_ERR_INVALID), esc(m));
    ck_assert_msg(g == NULL, "bad/%s: *out not NULL after an error", bc->file);
    ck_assert_msg(one_line(m), "bad/%s: message is not one line: \"%s\"", bc->file, esc(m));
    ck_assert_msg(strstr(m, bc->file) != NULL, "bad/%s: message does not name the file: \"%s\"", bc->file, esc(m));
    ck_assert_msg(strstr(m, bc->sub) != NULL, "bad/%s: message \"%s\" lacks \"%s\"", bc->file, esc(m), bc->sub);
}
END_TEST

/* lc_model_parse works over (bytes, length): a message about a syntax error
 * must quote neither bytes past `len` nor a newline. */
START_TEST(t_syntax_error_stays_in_bounds)
{
    /* '|' marks the end of the input; what follows must never be read */
    static const char *const cases[] = {
        "{\"format\": |\nSECRET-PAST-THE-END",
        "{\"format\": |SECRET-PAST-THE-END",
        "{\"format\": \"layca|SECRET-PAST-THE-END",
        "{\"format\": \"layca-model/1\", \"classes\": 1|\nSECRET-PAST-THE-END",
        "|\nSECRET-PAST-THE-END",
        "{\"format\" \"layca-model/1\",\n  \"name\": \"x\"}|",
    };
    for (size_t i = 0; i < LC_COUNTOF(cases); i++) {
        lc_graph *g = NULL;
        lc_error_clear();
        lc_status st = lc_model_parse(cases[i], strcspn(cases[i], "|"), "mem.json", &g, NULL);
        ck_assert_msg(st == LC_ERR_INVALID, "case %zu: status %s", i, lc_status_name(st));
        ck_assert_ptr_null(g);
        const char *m = lc_error_message();
        ck_assert_msg(strstr(m, "mem.json") && strstr(m, "not valid JSON"), "case %zu: \"%s\"", i, esc(m));
        ck_assert_msg(!strstr(m, "SECRET") && !strchr(m, '|'), "case %zu: message quotes bytes past the end of the input: \"%s\"", i,
                      esc(m));
        ck_assert_msg(one_line(m), "case %zu: message is not one line: \"%s\"", i, esc(m));
    }
}
END_TEST

START_TEST(t_load_missing_file)
{
    char p[1024];
    src_path(p, sizeof p, "tests/data/models/ok/no_such_model.json");
    lc_graph *g = NULL;
    lc_status st = lc_model_load(p, &g, NULL);
    ck_assert_int_eq(st, LC_ERR_IO);
    ck_assert_ptr_null(g);
    ASSERT_MSG_HAS("no_such_model.json");
    ASSERT_ONE_LINE();
}
END_TEST

/* ------------------------------------------------------------------------ */
/* 2. valid models                                                          */
/* ------------------------------------------------------------------------ */

static void check_kernel_layers(const lc_graph *g, const char *const *names, int n)
{
    int ids[64];
    int k = lc_graph_kernel_layers(g, ids, 64);
    ck_assert_int_eq(k, n);
    for (int i = 0; i < n; i++) {
        const lc_node *p = &g->nodes[g->params[ids[i]].node];
        ck_assert_msg(!strcmp(p->name, names[i]), "kernel layer %d is '%s', expected '%s'", i, p->name, names[i]);
        ck_assert(p->is_kernel);
    }
    /* NULL ids: just the count */
    ck_assert_int_eq(lc_graph_kernel_layers(g, NULL, 0), n);
}

static void check_dense_param(const lc_graph *g, const char *dense, int out, int in, bool bias)
{
    char w[96], b[96];
    snprintf(w, sizeof w, "%s.weight", dense);
    snprintf(b, sizeof b, "%s.bias", dense);
    int d = find_node(g, dense);
    ck_assert_int_eq(g->nodes[d].op, LC_OP_DENSE);
    ck_assert_int_eq(g->nodes[d].units, out);
    ck_assert_int_eq(g->nodes[d].n_inputs, bias ? 3 : 2);
    const lc_param *pw = find_param(g, w);
    const lc_node *nw = &g->nodes[pw->node];
    assert_shape(&nw->shape, 2, out, in, 0, w); /* PyTorch layout [out, in] */
    ck_assert_int_eq(pw->numel, (int64_t)out * in);
    ck_assert(nw->is_kernel);
    ck_assert(nw->trainable);
    ck_assert(!nw->batched);
    ck_assert_int_eq(nw->fan_in, in);
    ck_assert_int_eq(nw->fan_out, out);
    ck_assert_int_eq(nw->owner, d);
    ck_assert_int_eq(g->nodes[d].inputs[1], pw->node);
    ck_assert_int_eq(pw->offset % LC_PARAM_ALIGN, 0);
    if (bias) {
        const lc_param *pb = find_param(g, b);
        const lc_node *nb = &g->nodes[pb->node];
        assert_shape(&nb->shape, 1, out, 0, 0, b);
        ck_assert(!nb->is_kernel);
        ck_assert(nb->trainable);
        ck_assert_int_eq(nb->owner, d);
        ck_assert_int_eq(g->nodes[d].inputs[2], pb->node);
        ck_assert_int_eq(pb->offset % LC_PARAM_ALIGN, 0);
    } else {
        ck_assert_msg(lc_graph_find(g, b) < 0, "'%s' exists but the layer has no bias", b);
    }
}

static void check_train_unset(const lc_train_spec *t)
{
    ck_assert_str_eq(t->optimizer, "");
    ck_assert_int_eq(t->layca, -1);
    ck_assert(isnan(t->lr) && isnan(t->momentum) && isnan(t->alpha) && isnan(t->weight_decay) && isnan(t->factor));
    ck_assert_int_eq(t->nesterov, -1);
    ck_assert_int_eq(t->n_milestones, -1);
    ck_assert_int_eq(t->epochs, -1);
    ck_assert_int_eq(t->batch, -1);
    ck_assert(t->steps == -1 && t->seed == -1);
}

START_TEST(t_mlp3)
{
    lc_train_spec ts;
    lc_graph *g = load_model("models/mlp3.json", &ts);
    ck_assert_str_eq(g->name, "mlp3");
    /* input, 3 x (weight, dense), 2 relu, labels, loss */
    ck_assert_int_eq(g->n_nodes, 11);
    ck_assert_int_eq(g->n_params, 3);
    ck_assert_int_eq(g->classes, 10);
    assert_shape(&g->nodes[g->input].shape, 1, 784, 0, 0, "input");
    check_dense_param(g, "fc1", 784, 784, false);
    check_dense_param(g, "fc2", 784, 784, false);
    check_dense_param(g, "fc3", 10, 784, false);
    ck_assert_int_eq(lc_graph_trainable_count(g), 784 * 784 * 2 + 784 * 10);
    ck_assert_int_eq(lc_graph_trainable_count(g), 1237152);
    static const char *const kl[] = {"fc1.weight", "fc2.weight", "fc3.weight"};
    check_kernel_layers(g, kl, 3);
    /* the train section is parsed (its values are tuned elsewhere; exact
     * values are checked on the test's own files) */
    ck_assert_str_eq(ts.optimizer, "sgd");
    ck_assert(isfinite(ts.lr) && ts.lr > 0);
    ck_assert_int_gt(ts.batch, 0);

    ck_assert_msg(lc_exec_compile(g, 128, true, NULL) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(g->n_forward, 11);
    /* backward: ce grad, fc3 (dx, dw), relu2, fc2 (dx, dw), relu1, fc1 dw */
    ck_assert_int_eq(g->n_nodes, 19);
    assert_shape(&g->nodes[g->input].shape, 1, 784, 0, 0, "input");
    ck_assert(g->nodes[g->input].batched);
    ck_assert_int_eq(g->logits, find_node(g, "fc3"));
    assert_shape(&g->nodes[g->logits].shape, 1, 10, 0, 0, "logits");
    ck_assert_int_eq(g->nodes[g->loss].op, LC_OP_SOFTMAX_CE);
    ck_assert_int_eq(g->planned_batch, 128);
    ck_assert_int_gt(g->act_floats, 0);
    ck_assert_int_eq(g->param_floats, 2 * 784 * 784 + ((7840 + 255) / 256) * 256);
    lc_graph_destroy(g);
}
END_TEST

START_TEST(t_mlp11)
{
    lc_train_spec ts;
    lc_graph *g = load_model("models/mlp11.json", &ts);
    /* input, 11 x (weight, bias, dense), 10 relu, labels, loss */
    ck_assert_int_eq(g->n_nodes, 46);
    ck_assert_int_eq(g->n_params, 22);
    const char *names[11];
    char buf[11][32];
    for (int i = 0; i < 11; i++) {
        char d[32];
        snprintf(d, sizeof d, "dense%d", i);
        check_dense_param(g, d, i == 10 ? 10 : 784, 784, true);
        snprintf(buf[i], sizeof buf[i], "dense%d.weight", i);
        names[i] = buf[i];
        /* parameters are listed in model order: weight then bias */
        ck_assert_str_eq(g->nodes[g->params[2 * i].node].name, buf[i]);
    }
    check_kernel_layers(g, names, 11);
    ck_assert_int_eq(lc_graph_trainable_count(g), 10 * (784 * 784 + 784) + 784 * 10 + 10);
    ck_assert_str_eq(ts.optimizer, "sgd");
    ck_assert(isfinite(ts.lr) && ts.lr > 0);
    ck_assert_int_gt(ts.batch, 0);

    compile_guarded(g, 64, true, "mlp11");
    ck_assert_int_eq(g->logits, find_node(g, "dense10"));
    assert_shape(&g->nodes[g->logits].shape, 1, 10, 0, 0, "logits");
    assert_shape(&g->nodes[g->input].shape, 1, 784, 0, 0, "input");
    /* biases zero-initialised */
    float *h = alloc_params(g);
    lc_graph_init_params(g, h, 3);
    for (int i = 0; i < 11; i++) {
        char b[32];
        snprintf(b, sizeof b, "dense%d.bias", i);
        int64_t n;
        const float *v = tensor(g, h, b, &n);
        for (int64_t k = 0; k < n; k++) FAST_CHECK(v[k] == 0.0f, "%s[%lld] = %g", b, (long long)k, v[k]);
    }
    free(h);
    lc_graph_destroy(g);
}
END_TEST

START_TEST(t_tiny_bias)
{
    lc_train_spec ts;
    lc_graph *g = load_model("tests/data/models/ok/tiny_mlp_bias.json", &ts);
    ck_assert_str_eq(g->name, "tiny-mlp-bias");
    check_train_unset(&ts); /* no train section */
    ck_assert_int_eq(g->n_nodes, 10);
    check_dense_param(g, "fc1", 5, 6, true);
    check_dense_param(g, "fc2", 3, 5, true);
    ck_assert_int_eq(g->nodes[find_node(g, "fc1")].inputs[0], g->input);
    ck_assert_int_eq(g->nodes[find_node(g, "fc2")].inputs[0], find_node(g, "relu1"));
    ck_assert_int_eq(g->nodes[find_node(g, "fc1.weight")].init, LC_INIT_HE_UNIFORM);
    ck_assert_int_eq(g->nodes[find_node(g, "fc1.bias")].init, LC_INIT_ZEROS);
    ck_assert_int_eq(g->nodes[find_node(g, "fc2.weight")].init, LC_INIT_GLOROT_UNIFORM);
    ck_assert_int_eq(g->nodes[find_node(g, "fc2.bias")].init, LC_INIT_CONSTANT);
    ck_assert_int_eq(lc_graph_trainable_count(g), 5 * 6 + 5 + 3 * 5 + 3);
    static const char *const kl[] = {"fc1.weight", "fc2.weight"};
    check_kernel_layers(g, kl, 2);
    ck_assert_msg(lc_exec_compile(g, 3, true, NULL) == LC_OK, "%s", lc_error_message());
    assert_shape(&g->nodes[g->logits].shape, 1, 3, 0, 0, "logits");
    float *h = alloc_params(g);
    lc_graph_init_params(g, h, 11);
    int64_t n;
    const float *b2 = tensor(g, h, "fc2.bias", &n);
    for (int64_t k = 0; k < n; k++) ck_assert(b2[k] == 0.5f);
    const float *w1 = tensor(g, h, "fc1.weight", &n);
    for (int64_t k = 0; k < n; k++) ck_assert(fabsf(w1[k]) <= 1.0f); /* sqrt(6 / 6) */
    const float *w2 = tensor(g, h, "fc2.weight", &n);
    for (int64_t k = 0; k < n; k++) ck_assert(fabs(w2[k]) <= sqrt(6.0 / 8.0) * (1 + 1e-6));
    free(h);
    lc_graph_destroy(g);
}
END_TEST

START_TEST(t_residual)
{
    lc_train_spec ts;
    lc_graph *g = load_model("tests/data/models/ok/residual_mlp.json", &ts);
    /* a partial train section: the rest stays unset */
    ck_assert_str_eq(ts.optimizer, "sgd");
    ck_assert(ts.lr == 0.05);
    ck_assert_int_eq(ts.batch, 16);
    ck_assert_int_eq(ts.n_milestones, 0);
    ck_assert(ts.factor == 0.5);
    ck_assert_int_eq(ts.layca, -1);
    ck_assert_int_eq(ts.nesterov, -1);
    ck_assert(isnan(ts.momentum) && isnan(ts.alpha) && isnan(ts.weight_decay));
    ck_assert_int_eq(ts.epochs, -1);
    ck_assert(ts.steps == -1 && ts.seed == -1);
    assert_shape(&g->nodes[g->input].shape, 2, 2, 4, 0, "input");
    assert_shape(&g->nodes[find_node(g, "flat")].shape, 1, 8, 0, 0, "flat");
    check_dense_param(g, "fc1", 8, 8, false);
    check_dense_param(g, "fc2", 8, 8, true);
    check_dense_param(g, "fc3", 4, 8, false);
    int s = find_node(g, "s");
    ck_assert_int_eq(g->nodes[s].op, LC_OP_ADD);
    ck_assert_int_eq(g->nodes[s].n_inputs, 2);
    ck_assert_int_eq(g->nodes[s].inputs[0], find_node(g, "fc2"));
    ck_assert_int_eq(g->nodes[s].inputs[1], find_node(g, "r1"));
    ck_assert_int_eq(g->nodes[find_node(g, "fc3")].inputs[0], find_node(g, "r2"));
    ck_assert_int_eq(g->nodes[find_node(g, "fc1.weight")].init, LC_INIT_HE_NORMAL);
    ck_assert_int_eq(lc_graph_trainable_count(g), 64 + 64 + 8 + 32);
    static const char *const kl[] = {"fc1.weight", "fc2.weight", "fc3.weight"};
    check_kernel_layers(g, kl, 3);
    ck_assert_msg(lc_exec_compile(g, 5, true, NULL) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(g->logits, find_node(g, "fc3"));
    assert_shape(&g->nodes[g->logits].shape, 1, 4, 0, 0, "logits");
    /* r1 feeds fc2 and the residual add: its gradient is a sum */
    int r1 = find_node(g, "r1"), acc = -1;
    for (int i = g->n_forward; i < g->n_nodes; i++)
        if (g->nodes[i].op == LC_OP_ACCUM && g->nodes[i].grad_of == r1) acc = i;
    ck_assert_msg(acc >= 0, "no accumulate node for the gradient of r1");
    /* nothing differentiates the input or its flatten view */
    int flat = find_node(g, "flat");
    for (int i = g->n_forward; i < g->n_nodes; i++)
        ck_assert_msg(g->nodes[i].grad_of != g->input && g->nodes[i].grad_of != flat,
                      "backward node '%s' differentiates the input", g->nodes[i].name);
    lc_graph_destroy(g);
}
END_TEST

START_TEST(t_train_all_keys)
{
    lc_train_spec ts;
    lc_graph *g = load_model("tests/data/models/ok/train_all_keys.json", &ts);
    ck_assert_str_eq(ts.optimizer, "adam");
    ck_assert_int_eq(ts.layca, 1);
    ck_assert(ts.lr == 0.003);
    ck_assert(ts.momentum == 0.5);
    ck_assert_int_eq(ts.nesterov, 1);
    ck_assert(ts.alpha == -0.25);
    ck_assert(ts.weight_decay == 0.0005);
    ck_assert_int_eq(ts.n_milestones, 3);
    ck_assert_int_eq(ts.milestones[0], 3);
    ck_assert_int_eq(ts.milestones[1], 5);
    ck_assert_int_eq(ts.milestones[2], 8);
    ck_assert(ts.factor == 0.1);
    ck_assert_int_eq(ts.epochs, 10);
    ck_assert_int_eq(ts.batch, 32);
    ck_assert(ts.steps == 1000);
    ck_assert(ts.seed == 42);
    /* defaults: no bias, glorot_uniform */
    check_dense_param(g, "fc1", 2, 4, false);
    ck_assert_int_eq(g->nodes[find_node(g, "fc1.weight")].init, LC_INIT_GLOROT_UNIFORM);
    lc_graph_destroy(g);
    /* a NULL train spec is allowed */
    g = load_model("tests/data/models/ok/train_all_keys.json", NULL);
    lc_graph_destroy(g);
}
END_TEST

START_TEST(t_parse_inline)
{
    static const char *text =
        "{\"format\": \"layca-model/1\", \"input\": {\"shape\": [1, 3, 3]}, \"classes\": 2,"
        " \"nodes\": [{\"name\": \"f\", \"op\": \"flatten\"}, {\"name\": \"fc\", \"op\": \"dense\", \"units\": 2}]}";
    lc_train_spec ts;
    ts.epochs = 77;
    lc_graph *g = parse_model(text, &ts);
    check_train_unset(&ts);
    ck_assert_str_eq(g->name, "model"); /* default name */
    check_dense_param(g, "fc", 2, 9, false);
    ck_assert_msg(lc_exec_compile(g, 1, false, NULL) == LC_OK, "%s", lc_error_message());
    assert_shape(&g->nodes[g->logits].shape, 1, 2, 0, 0, "logits");
    lc_graph_destroy(g);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* 3. initialisers                                                          */
/* ------------------------------------------------------------------------ */

/* 400 -> a: he_uniform 500 (+ constant bias 0.25) -> b: glorot 300 ->
 * c: he_normal 400 -> d: zeros 10 (+ he_uniform bias) */
static const char *init_model =
    "{\"format\": \"layca-model/1\", \"name\": \"init\", \"input\": {\"shape\": [400]}, \"classes\": 10,"
    " \"nodes\": ["
    "  {\"name\": \"a\", \"op\": \"dense\", \"units\": 500, \"init\": \"he_uniform\", \"bias\": true,"
    "   \"bias_init\": \"constant\", \"bias_value\": 0.25},"
    "  {\"name\": \"b\", \"op\": \"dense\", \"units\": 300, \"init\": \"glorot_uniform\"},"
    "  {\"name\": \"c\", \"op\": \"dense\", \"units\": 400, \"init\": \"he_normal\"},"
    "  {\"name\": \"d\", \"op\": \"dense\", \"units\": 10, \"init\": \"zeros\", \"bias\": true, \"bias_init\": \"he_uniform\"}]}";

/* Same first layer, different rest. */
static const char *init_model2 =
    "{\"format\": \"layca-model/1\", \"name\": \"init2\", \"input\": {\"shape\": [400]}, \"classes\": 10,"
    " \"nodes\": ["
    "  {\"name\": \"x0\", \"op\": \"relu\"},"
    "  {\"name\": \"a\", \"op\": \"dense\", \"units\": 500, \"init\": \"he_uniform\", \"bias\": true,"
    "   \"bias_init\": \"constant\", \"bias_value\": 0.25},"
    "  {\"name\": \"z\", \"op\": \"dense\", \"units\": 10, \"init\": \"he_uniform\"}]}";

typedef struct stats { double mean, var, maxabs; } stats;

static stats stats_of(const float *w, int64_t n)
{
    double s = 0, s2 = 0, m = 0;
    for (int64_t k = 0; k < n; k++) s += w[k];
    double mean = s / (double)n;
    for (int64_t k = 0; k < n; k++) {
        double d = w[k] - mean;
        s2 += d * d;
        if (fabs(w[k]) > m) m = fabs(w[k]);
    }
    return (stats){mean, s2 / (double)(n - 1), m};
}

static lc_graph *init_graph(float **host, uint64_t seed)
{
    lc_graph *g = parse_model(init_model, NULL);
    ck_assert_msg(lc_exec_compile(g, 2, true, NULL) == LC_OK, "%s", lc_error_message());
    *host = alloc_params(g);
    lc_graph_init_params(g, *host, seed);
    return g;
}

START_TEST(t_init_reproducible)
{
    float *h1, *h2, *h3;
    lc_graph *g1 = init_graph(&h1, 1234), *g2 = init_graph(&h2, 1234), *g3 = init_graph(&h3, 1235);
    ck_assert_int_eq(g1->param_floats, g2->param_floats);
    ck_assert_msg(!memcmp(h1, h2, (size_t)g1->param_floats * sizeof *h1), "same seed, different values");
    /* the same buffer initialised twice: also identical */
    lc_graph_init_params(g2, h2, 1234);
    ck_assert(!memcmp(h1, h2, (size_t)g1->param_floats * sizeof *h1));
    static const char *const rnd[] = {"a.weight", "b.weight", "c.weight", "d.bias"};
    for (size_t t = 0; t < LC_COUNTOF(rnd); t++) {
        int64_t n;
        const float *x = tensor(g1, h1, rnd[t], &n), *y = tensor(g3, h3, rnd[t], NULL);
        int64_t same = 0;
        for (int64_t k = 0; k < n; k++) same += x[k] == y[k];
        ck_assert_msg(same * 100 < n, "%s: %lld of %lld values equal under seeds 1234 and 1235", rnd[t],
                      (long long)same, (long long)n);
    }
    /* different tensors of one model get different streams */
    const float *aw = tensor(g1, h1, "a.weight", NULL), *bw = tensor(g1, h1, "b.weight", NULL);
    ck_assert(aw[0] != bw[0] || aw[1] != bw[1]);
    /* a tensor's values do not depend on the rest of the model */
    lc_graph *g4 = parse_model(init_model2, NULL);
    ck_assert_msg(lc_exec_compile(g4, 2, true, NULL) == LC_OK, "%s", lc_error_message());
    float *h4 = alloc_params(g4);
    lc_graph_init_params(g4, h4, 1234);
    int64_t n;
    const float *a4 = tensor(g4, h4, "a.weight", &n);
    ck_assert_msg(!memcmp(aw, a4, (size_t)n * sizeof *aw), "a.weight changes with the rest of the model");
    free(h1); free(h2); free(h3); free(h4);
    lc_graph_destroy(g1); lc_graph_destroy(g2); lc_graph_destroy(g3); lc_graph_destroy(g4);
}
END_TEST

START_TEST(t_init_he_uniform)
{
    float *h;
    lc_graph *g = init_graph(&h, 99);
    int64_t n;
    const float *w = tensor(g, h, "a.weight", &n);
    ck_assert_int_eq(n, 500 * 400);
    ck_assert_int_eq(g->nodes[find_node(g, "a.weight")].fan_in, 400);
    double lim = sqrt(6.0 / 400), var = 2.0 / 400;
    stats s = stats_of(w, n);
    ck_assert_msg(s.maxabs <= lim * (1 + 1e-6), "max |w| %g > %g", s.maxabs, lim);
    ck_assert_msg(s.maxabs > 0.99 * lim, "max |w| %g, the bound is %g", s.maxabs, lim);
    ck_assert_msg(fabs(s.mean) < 4 * sqrt(var / (double)n), "mean %g", s.mean);
    ck_assert_msg(fabs(s.var / var - 1) < 0.02, "variance %g, expected %g", s.var, var);
    /* the he_uniform bias of d uses d's fan_in (400) */
    const float *db = tensor(g, h, "d.bias", &n);
    double dl = sqrt(6.0 / 400);
    bool nonzero = false;
    for (int64_t k = 0; k < n; k++) {
        ck_assert(fabs(db[k]) <= dl * (1 + 1e-6));
        nonzero |= db[k] != 0;
    }
    ck_assert(nonzero);
    free(h);
    lc_graph_destroy(g);
}
END_TEST

START_TEST(t_init_glorot_uniform)
{
    float *h;
    lc_graph *g = init_graph(&h, 5);
    int64_t n;
    const float *w = tensor(g, h, "b.weight", &n);
    ck_assert_int_eq(n, 300 * 500);
    double lim = sqrt(6.0 / (500 + 300)), var = 2.0 / (500 + 300);
    stats s = stats_of(w, n);
    ck_assert_msg(s.maxabs <= lim * (1 + 1e-6), "max |w| %g > %g", s.maxabs, lim);
    ck_assert_msg(s.maxabs > 0.99 * lim, "max |w| %g, the bound is %g", s.maxabs, lim);
    ck_assert_msg(fabs(s.mean) < 4 * sqrt(var / (double)n), "mean %g", s.mean);
    ck_assert_msg(fabs(s.var / var - 1) < 0.02, "variance %g, expected %g", s.var, var);
    free(h);
    lc_graph_destroy(g);
}
END_TEST

START_TEST(t_init_he_normal)
{
    float *h;
    lc_graph *g = init_graph(&h, 77);
    int64_t n;
    const float *w = tensor(g, h, "c.weight", &n);
    ck_assert_int_eq(n, 400 * 300);
    double sigma = sqrt(2.0 / 300);
    /* std of N(0,1) truncated to [-2, 2]: sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)) */
    double phi2 = exp(-2.0) / sqrt(2 * M_PI), Phi = erf(2.0 / sqrt(2.0));
    double tstd = sqrt(1 - 4 * phi2 / Phi);
    ck_assert(fabs(tstd - 0.8796) < 1e-3);
    stats s = stats_of(w, n);
    ck_assert_msg(s.maxabs <= 2 * sigma * (1 + 1e-6), "max |w| %g > 2 sigma = %g", s.maxabs, 2 * sigma);
    ck_assert_msg(s.maxabs > 1.98 * sigma, "max |w| %g: not truncated at 2 sigma (%g)?", s.maxabs, 2 * sigma);
    ck_assert_msg(fabs(s.mean) < 4 * tstd * sigma / sqrt((double)n), "mean %g", s.mean);
    ck_assert_msg(fabs(sqrt(s.var) / (tstd * sigma) - 1) < 0.02, "std %g, expected %g (untruncated %g)", sqrt(s.var),
                  tstd * sigma, sigma);
    /* roughly normal: about 68.3% / 0.9545 = 71.6% within 1 sigma */
    int64_t in1 = 0;
    for (int64_t k = 0; k < n; k++) in1 += fabs(w[k]) <= sigma;
    double f1 = (double)in1 / (double)n;
    ck_assert_msg(fabs(f1 - 0.6827 / 0.9545) < 0.01, "%.4f within 1 sigma", f1);
    free(h);
    lc_graph_destroy(g);
}
END_TEST

START_TEST(t_init_zeros_constant)
{
    float *h;
    lc_graph *g = init_graph(&h, 3);
    int64_t n;
    const float *w = tensor(g, h, "d.weight", &n);
    ck_assert_int_eq(n, 10 * 400);
    for (int64_t k = 0; k < n; k++) FAST_CHECK(w[k] == 0.0f, "d.weight[%lld] = %g", (long long)k, w[k]);
    const float *b = tensor(g, h, "a.bias", &n);
    ck_assert_int_eq(n, 500);
    for (int64_t k = 0; k < n; k++) FAST_CHECK(b[k] == 0.25f, "a.bias[%lld] = %g", (long long)k, b[k]);
    free(h);
    lc_graph_destroy(g);
}
END_TEST

static void check_gaps(const lc_graph *g, uint64_t seed)
{
    float *h = malloc((size_t)g->param_floats * sizeof *h);
    ck_assert_ptr_nonnull(h);
    memset(h, 0xff, (size_t)g->param_floats * sizeof *h); /* NaN everywhere */
    lc_graph_init_params(g, h, seed);
    char *owned = calloc((size_t)g->param_floats, 1);
    ck_assert_ptr_nonnull(owned);
    int64_t expect = 0;
    for (int i = 0; i < g->n_params; i++) {
        const lc_param *p = &g->params[i];
        ck_assert_int_eq(p->offset % LC_PARAM_ALIGN, 0);
        ck_assert_int_eq(p->offset, expect); /* packed in order, each rounded up */
        expect += (p->numel + LC_PARAM_ALIGN - 1) / LC_PARAM_ALIGN * LC_PARAM_ALIGN;
        ck_assert_int_le(p->offset + p->numel, g->param_floats);
        for (int64_t k = 0; k < p->numel; k++) {
            FAST_CHECK(!owned[p->offset + k], "%s overlaps another tensor", g->nodes[p->node].name);
            owned[p->offset + k] = 1;
            FAST_CHECK(isfinite(h[p->offset + k]), "%s[%lld] not initialised", g->nodes[p->node].name, (long long)k);
        }
    }
    ck_assert_int_eq(expect, g->param_floats);
    int64_t gaps = 0;
    for (int64_t k = 0; k < g->param_floats; k++)
        if (!owned[k]) {
            uint32_t bits;
            memcpy(&bits, &h[k], 4);
            FAST_CHECK(bits == 0, "gap float %lld is 0x%08x, not zero", (long long)k, bits);
            gaps++;
        }
    ck_assert_int_gt(gaps, 0);
    free(owned);
    free(h);
}

START_TEST(t_init_gaps_zero)
{
    float *h;
    lc_graph *g = init_graph(&h, 8);
    check_gaps(g, 8);
    free(h);
    lc_graph_destroy(g);
    g = load_model("models/mlp11.json", NULL);
    check_gaps(g, 8);
    lc_graph_destroy(g);
    g = load_model("tests/data/models/ok/residual_mlp.json", NULL);
    check_gaps(g, 1);
    lc_graph_destroy(g);
    g = load_model("tests/data/models/ok/small_cnn.json", NULL);
    check_gaps(g, 2);
    lc_graph_destroy(g);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* 4. IR: autodiff, DCE, memory plan                                        */
/* ------------------------------------------------------------------------ */

static const char *const all_models[] = {"models/mlp3.json", "models/mlp11.json",
                                         "tests/data/models/ok/tiny_mlp_bias.json",
                                         "tests/data/models/ok/residual_mlp.json",
                                         "tests/data/models/ok/train_all_keys.json",
                                         "tests/data/models/ok/small_cnn.json"};

/* Every trainable parameter has a gradient node of its shape; frozen ones
 * none; every backward node is needed (feeds a later node or is a parameter
 * gradient). */
static void check_grads(const lc_graph *g, const char *what)
{
    for (int p = 0; p < g->n_params; p++) {
        const lc_param *pa = &g->params[p];
        const lc_node *pn = &g->nodes[pa->node];
        ck_assert_int_eq(pn->op, LC_OP_PARAM);
        if (!pn->trainable) {
            ck_assert_msg(pa->grad_node < 0, "%s: frozen '%s' has a gradient", what, pn->name);
            for (int i = g->n_forward; i < g->n_nodes; i++)
                ck_assert_msg(g->nodes[i].grad_of != pa->node, "%s: '%s' differentiates frozen '%s'", what,
                              g->nodes[i].name, pn->name);
            continue;
        }
        ck_assert_msg(pa->grad_node >= g->n_forward && pa->grad_node < g->n_nodes, "%s: '%s' has no gradient (%d)",
                      what, pn->name, pa->grad_node);
        const lc_node *gn = &g->nodes[pa->grad_node];
        ck_assert_int_eq(gn->grad_of, pa->node);
        ck_assert_msg(lc_op_kind(gn->op) == 'B', "%s: gradient of '%s' is a %s node", what, pn->name,
                      lc_op_name(gn->op));
        if (pn->owner >= 0 && g->nodes[pn->owner].op == LC_OP_DENSE)
            ck_assert_int_eq(gn->op, pn->is_kernel ? LC_OP_DENSE_DW : LC_OP_BIAS_DB);
        ck_assert(!gn->batched);
        char b1[64], b2[64];
        bool same = gn->shape.rank == pn->shape.rank;
        for (int k = 0; same && k < gn->shape.rank; k++) same = gn->shape.dims[k] == pn->shape.dims[k];
        ck_assert_msg(same, "%s: gradient of '%s' has shape %s, the parameter %s", what, pn->name,
                      lc_shape_str(&gn->shape, b1, sizeof b1), lc_shape_str(&pn->shape, b2, sizeof b2));
    }
    for (int i = g->n_forward; i < g->n_nodes; i++) {
        const lc_node *n = &g->nodes[i];
        ck_assert_msg(lc_op_kind(n->op) == 'B' || lc_op_kind(n->op) == 'V', "%s: node %d '%s' (%s) after the forward part",
                      what, i, n->name, lc_op_name(n->op));
        bool used = false;
        for (int p = 0; p < g->n_params; p++) used |= g->params[p].grad_node == i;
        for (int j = i + 1; j < g->n_nodes && !used; j++)
            for (int k = 0; k < g->nodes[j].n_inputs; k++) used |= g->nodes[j].inputs[k] == i;
        ck_assert_msg(used, "%s: backward node %d '%s' (%s) is not needed", what, i, n->name, lc_op_name(n->op));
    }
    ck_assert_msg(lc_graph_verify(g) == LC_OK, "%s: %s", what, lc_error_message());
}

START_TEST(t_autodiff_all_params)
{
    for (size_t m = 0; m < LC_COUNTOF(all_models); m++) {
        lc_graph *g = compiled(all_models[m], 4, true);
        check_grads(g, all_models[m]);
        int n_grads = 0, n_trainable = 0;
        for (int p = 0; p < g->n_params; p++) {
            n_grads += g->params[p].grad_node >= 0;
            n_trainable += g->nodes[g->params[p].node].trainable;
        }
        ck_assert_int_eq(n_grads, n_trainable);
        ck_assert_int_gt(n_trainable, 0);
        lc_graph_destroy(g);
    }
}
END_TEST

static void check_plan(const lc_graph *g, const char *what);
static void freeze(lc_graph *g, const char *name);

/* Narrow MLPs of many depths: the node array grows (and may move) while
 * autodiff appends backward nodes; every gradient must still get its
 * parameter's shape. */
START_TEST(t_autodiff_deep)
{
    for (int depth = 2; depth <= 90; depth += 1) {
        char *text = malloc(64 * 1024);
        ck_assert_ptr_nonnull(text);
        size_t o = (size_t)snprintf(text, 1024,
                                    "{\"format\": \"layca-model/1\", \"name\": \"deep\", \"input\": {\"shape\": [3]},"
                                    " \"classes\": 2, \"defaults\": {\"bias\": %s}, \"nodes\": [",
                                    depth % 2 ? "true" : "false");
        for (int k = 0; k < depth; k++)
            o += (size_t)snprintf(text + o, 64 * 1024 - o,
                                  "{\"name\": \"d%d\", \"op\": \"dense\", \"units\": %d}, {\"name\": \"r%d\", \"op\": \"relu\"}, ", k,
                                  3 + k % 4, k);
        snprintf(text + o, 64 * 1024 - o, "{\"name\": \"out\", \"op\": \"dense\", \"units\": 2}]}");
        lc_graph *g = parse_model(text, NULL);
        free(text);
        if (depth % 3 == 0) freeze(g, "d0.weight");
        char what[64];
        snprintf(what, sizeof what, "deep MLP, depth %d", depth);
        compile_guarded(g, 3, true, what);
        check_grads(g, what);
        check_plan(g, what);
        lc_graph_destroy(g);
    }
}
END_TEST

START_TEST(t_eval_has_no_backward)
{
    for (size_t m = 0; m < LC_COUNTOF(all_models); m++) {
        lc_graph *g = load_model(all_models[m], NULL);
        int n = g->n_nodes;
        ck_assert_msg(lc_exec_compile(g, 4, false, NULL) == LC_OK, "%s", lc_error_message());
        ck_assert_int_eq(g->n_nodes, n);
        ck_assert_int_eq(g->n_forward, n);
        for (int i = 0; i < n; i++) ck_assert(lc_op_kind(g->nodes[i].op) != 'B');
        lc_graph_destroy(g);
    }
}
END_TEST

static void freeze(lc_graph *g, const char *name) { g->nodes[find_node(g, name)].trainable = false; }

static bool has_grad_of(const lc_graph *g, const char *name)
{
    int id = find_node(g, name);
    for (int i = g->n_forward; i < g->n_nodes; i++)
        if (g->nodes[i].grad_of == id) return true;
    return false;
}

START_TEST(t_freeze_first_layer)
{
    lc_graph *g = load_model("models/mlp3.json", NULL);
    freeze(g, "fc1.weight");
    ck_assert_msg(lc_exec_compile(g, 8, true, NULL) == LC_OK, "%s", lc_error_message());
    check_grads(g, "mlp3, fc1 frozen");
    ck_assert_int_lt(find_param(g, "fc1.weight")->grad_node, 0);
    ck_assert_int_ge(find_param(g, "fc2.weight")->grad_node, 0);
    ck_assert_int_ge(find_param(g, "fc3.weight")->grad_node, 0);
    /* no gradient flows into the frozen prefix */
    ck_assert(!has_grad_of(g, "fc1.weight"));
    ck_assert(!has_grad_of(g, "fc1"));
    ck_assert(!has_grad_of(g, "relu1"));
    ck_assert_int_eq(g->n_nodes, 19 - 3);
    ck_assert_int_eq(lc_graph_trainable_count(g), 784 * 784 + 7840);
    lc_graph_destroy(g);

    /* freezing the last layer keeps the gradients flowing through it */
    g = load_model("models/mlp3.json", NULL);
    freeze(g, "fc3.weight");
    ck_assert_msg(lc_exec_compile(g, 8, true, NULL) == LC_OK, "%s", lc_error_message());
    check_grads(g, "mlp3, fc3 frozen");
    ck_assert_int_lt(find_param(g, "fc3.weight")->grad_node, 0);
    ck_assert(has_grad_of(g, "relu2"));
    ck_assert_int_eq(g->n_nodes, 19 - 1);
    lc_graph_destroy(g);

    /* mlp11 with the first two layers (weights and biases) frozen */
    g = load_model("models/mlp11.json", NULL);
    freeze(g, "dense0.weight");
    freeze(g, "dense0.bias");
    freeze(g, "dense1.weight");
    freeze(g, "dense1.bias");
    compile_guarded(g, 8, true, "mlp11, 2 layers frozen");
    check_grads(g, "mlp11, 2 layers frozen");
    ck_assert(!has_grad_of(g, "relu1"));
    ck_assert(!has_grad_of(g, "dense1"));
    ck_assert(has_grad_of(g, "relu2"));
    lc_graph_destroy(g);
}
END_TEST

/* A graph with every kind of ReLU site: after conv (bias), batchnorm
 * (spatial and flat), dense (with and without bias); after a conv whose
 * value has a second user, after an add. */
static lc_graph *fusion_graph(void)
{
    lc_graph *g = lc_graph_create("fuse");
    lc_shape s = {3, {3, 8, 8}};
    int x = lc_graph_add_input(g, "input", &s);
    x = lc_graph_add_conv2d(g, "c1", x, 4, 3, 3, 1, 1, LC_PAD_SAME, 0, 0, true, LC_INIT_HE_UNIFORM, LC_INIT_ZEROS, 0);
    x = lc_graph_add_node(g, LC_OP_RELU, "r1", &x, 1);
    x = lc_graph_add_conv2d(g, "c2", x, 4, 3, 3, 1, 1, LC_PAD_SAME, 0, 0, false, LC_INIT_HE_UNIFORM, LC_INIT_ZEROS, 0);
    x = lc_graph_add_batchnorm(g, "b2", x, 0.9, 1e-3, true);
    int r2 = lc_graph_add_node(g, LC_OP_RELU, "r2", &x, 1);
    int c3 = lc_graph_add_conv2d(g, "c3", r2, 4, 3, 3, 1, 1, LC_PAD_SAME, 0, 0, false, LC_INIT_HE_UNIFORM,
                                 LC_INIT_ZEROS, 0);
    int r3 = lc_graph_add_node(g, LC_OP_RELU, "r3", &c3, 1);
    int ins[2] = {r3, c3}; /* c3 has a second user: not fused */
    x = lc_graph_add_node(g, LC_OP_ADD, "sum", ins, 2);
    x = lc_graph_add_node(g, LC_OP_RELU, "r4", &x, 1); /* after an add: not fused */
    x = lc_graph_add_node(g, LC_OP_FLATTEN, "flat", &x, 1);
    x = lc_graph_add_dense(g, "f5", x, 9, true, LC_INIT_HE_UNIFORM, LC_INIT_ZEROS, 0);
    x = lc_graph_add_node(g, LC_OP_RELU, "r5", &x, 1);
    x = lc_graph_add_dense(g, "f6", x, 7, false, LC_INIT_HE_UNIFORM, LC_INIT_ZEROS, 0);
    x = lc_graph_add_node(g, LC_OP_RELU, "r6", &x, 1);
    x = lc_graph_add_batchnorm(g, "b7", x, 0.9, 1e-3, false);
    x = lc_graph_add_node(g, LC_OP_RELU, "r7", &x, 1);
    x = lc_graph_add_dense(g, "out", x, 3, true, LC_INIT_HE_UNIFORM, LC_INIT_ZEROS, 0);
    g->logits = x;
    lc_graph_add_labels(g, "labels", 3);
    int l[2] = {x, g->labels};
    g->loss = lc_graph_add_node(g, LC_OP_SOFTMAX_CE, "loss", l, 2);
    ck_assert_msg(g->loss >= 0, "%s", lc_error_message());
    return g;
}

/* the ReLU named r is fused into the node named p (or, fused false, left alone) */
static void check_fused(const lc_graph *g, const char *r, const char *p, bool fused, const char *what)
{
    int ri = find_node(g, r), pi = find_node(g, p);
    const lc_node *rn = &g->nodes[ri], *pn = &g->nodes[pi];
    ck_assert_msg(rn->op == (fused ? LC_OP_FUSED_RELU : LC_OP_RELU) && pn->act_relu == fused,
                  "%s: %s after %s: op %s, act_relu %d", what, r, p, lc_op_name(rn->op), pn->act_relu);
    if (!fused) return;
    ck_assert_int_eq(lc_graph_storage_root(g, ri), pi);
    if (g->planned_batch) ck_assert_int_eq(rn->offset, pn->offset);
    if (g->n_forward == g->n_nodes) return;
    /* the backward: one ReLU gradient of the producer's output gradient,
     * which the producer's own backward nodes read */
    int masks = 0;
    for (int i = g->n_forward; i < g->n_nodes; i++) {
        const lc_node *b = &g->nodes[i];
        if (b->op != LC_OP_RELU_DX || b->inputs[1] != pi) continue;
        masks++;
        ck_assert_int_eq(b->inputs[0], pn->grad);
        ck_assert_int_eq(pn->grad, rn->grad);
        int readers = 0;
        for (int j = i + 1; j < g->n_nodes; j++)
            for (int k = 0; k < g->nodes[j].n_inputs; k++) readers += g->nodes[j].inputs[k] == i;
        ck_assert_msg(readers > 0, "%s: the gradient mask of %s is not used", what, p);
    }
    ck_assert_int_eq(masks, 1);
}

START_TEST(t_fusion)
{
    static const char *const fused[][2] = {{"r1", "c1"}, {"r2", "b2"}, {"r5", "f5"}, {"r6", "f6"}, {"r7", "b7"}};
    for (int train = 0; train < 2; train++) {
        const char *what = train ? "fusion, training" : "fusion, inference";
        lc_graph *g = fusion_graph();
        compile_guarded(g, 5, train, what);
        for (size_t k = 0; k < LC_COUNTOF(fused); k++) check_fused(g, fused[k][0], fused[k][1], true, what);
        check_fused(g, "r3", "c3", false, what);
        ck_assert_int_eq(g->nodes[find_node(g, "r4")].op, LC_OP_RELU);
        if (train) check_grads(g, what);
        check_plan(g, what);
        lc_graph_destroy(g);
    }
    /* kept values (the silhouette's node, the gating recorder's) and
     * g->no_fusion stop it; a fused ReLU may itself be kept */
    lc_graph *g = fusion_graph();
    g->nodes[find_node(g, "c1")].keep_value = true;
    g->nodes[find_node(g, "r5")].keep_value = true;
    compile_guarded(g, 5, true, "fusion with kept values");
    check_fused(g, "r1", "c1", false, "kept producer");
    check_fused(g, "r5", "f5", true, "kept ReLU");
    check_fused(g, "r6", "f6", true, "kept values");
    int r5 = find_node(g, "r5");
    ck_assert_int_eq(g->nodes[find_node(g, "f5")].last_use, g->n_nodes); /* kept through its view */
    ck_assert_int_ge(g->nodes[r5].grad, 0);
    lc_graph_destroy(g);
    g = fusion_graph();
    g->no_fusion = true;
    compile_guarded(g, 5, true, "no fusion");
    for (size_t k = 0; k < LC_COUNTOF(fused); k++) check_fused(g, fused[k][0], fused[k][1], false, "no fusion");
    check_grads(g, "no fusion");
    lc_graph_destroy(g);
    /* fixed gating first: the gated ReLUs become gates, the free one fuses */
    g = fusion_graph();
    ck_assert_int_eq(lc_graph_gate_relus(g, find_node(g, "r5"), NULL), 6);
    compile_guarded(g, 5, true, "gated");
    check_fused(g, "r5", "f5", true, "gated");
    ck_assert_int_eq(g->nodes[find_node(g, "r1")].op, LC_OP_GATE);
    ck_assert(!g->nodes[find_node(g, "c1")].act_relu);
    check_plan(g, "gated"); /* (check_grads expects no forward op in the backward part: gates' are gates) */
    lc_graph_destroy(g);
    /* the paper's networks: every ReLU right after a dense, conv or
     * batchnorm with no other user is fused */
    for (size_t m = 0; m < LC_COUNTOF(all_models); m++) {
        g = compiled(all_models[m], 4, true);
        int relus = 0, views = 0;
        for (int i = 0; i < g->n_forward; i++) {
            relus += g->nodes[i].op == LC_OP_RELU;
            views += g->nodes[i].op == LC_OP_FUSED_RELU;
            if (g->nodes[i].op != LC_OP_RELU) continue;
            const lc_node *p = &g->nodes[g->nodes[i].inputs[0]];
            ck_assert_msg(p->op != LC_OP_DENSE && p->op != LC_OP_CONV2D && p->op != LC_OP_BATCHNORM,
                          "%s: ReLU '%s' after %s '%s' left unfused", all_models[m], g->nodes[i].name,
                          lc_op_name(p->op), p->name);
        }
        ck_assert_msg(views > 0 || relus == 0, "%s: nothing fused (%d ReLUs)", all_models[m], relus);
        check_grads(g, all_models[m]);
        lc_graph_destroy(g);
    }
}
END_TEST

/* Freeze after autodiff: DCE must drop the parameter gradient and the input
 * gradients that only fed it. */
START_TEST(t_dce_after_freeze)
{
    lc_graph *g = load_model("models/mlp3.json", NULL);
    ck_assert(lc_graph_infer(g) == LC_OK);
    ck_assert(lc_graph_verify(g) == LC_OK);
    ck_assert(lc_graph_autodiff(g) == LC_OK);
    ck_assert_int_eq(g->n_nodes, 19);
    ck_assert(has_grad_of(g, "relu1"));
    ck_assert(has_grad_of(g, "fc1"));
    int w1 = find_node(g, "fc1.weight");
    g->nodes[w1].trainable = false;
    g->params[g->nodes[w1].param_index].grad_node = -1;
    char names[3][LC_NAME_MAX];
    for (int p = 0; p < 3; p++) snprintf(names[p], LC_NAME_MAX, "%s", g->nodes[g->params[p].node].name);
    ck_assert_msg(lc_graph_dce(g) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(g->n_forward, 11);
    ck_assert_int_eq(g->n_nodes, 16);
    ck_assert(!has_grad_of(g, "fc1.weight"));
    ck_assert(!has_grad_of(g, "fc1"));
    ck_assert(!has_grad_of(g, "relu1"));
    /* remapped ids stay consistent */
    ck_assert_str_eq(g->nodes[g->input].name, "input");
    ck_assert_str_eq(g->nodes[g->loss].name, "loss");
    ck_assert_str_eq(g->nodes[g->logits].name, "fc3");
    for (int p = 0; p < 3; p++) ck_assert_str_eq(g->nodes[g->params[p].node].name, names[p]);
    check_grads(g, "mlp3 after dce");
    ck_assert_msg(lc_graph_plan(g, 16) == LC_OK, "%s", lc_error_message());
    lc_graph_destroy(g);
}
END_TEST

static bool in_arena(const lc_node *n) { return n->op != LC_OP_PARAM && n->batched && lc_op_kind(n->op) != 'V'; }

static int64_t act_size(const lc_graph *g, int i)
{
    return (int64_t)g->planned_batch * lc_shape_numel(&g->nodes[i].shape);
}

/* One block of the activation arena: a value or a node's auxiliary storage. */
typedef struct plan_block {
    int id;
    bool aux;
    int64_t offset, size;
    int def, last;
} plan_block;

/* Recomputes the values' liveness independently and checks that no two
 * blocks alive at the same time share storage (auxiliary blocks, e.g. conv
 * workspaces, use the planner's own interval [node, aux_last]). */
static void check_plan(const lc_graph *g, const char *what)
{
    int n = g->n_nodes;
    int *def = malloc((size_t)n * sizeof *def), *last = malloc((size_t)n * sizeof *last);
    plan_block *bl = malloc((size_t)(2 * n + 1) * sizeof *bl);
    ck_assert(def && last && bl);
    for (int i = 0; i < n; i++) {
        def[i] = lc_op_kind(g->nodes[i].op) == 'D' ? 0 : i;
        last[i] = i;
    }
    for (int j = 0; j < n; j++)
        for (int k = 0; k < g->nodes[j].n_inputs; k++) {
            int r = lc_graph_storage_root(g, g->nodes[j].inputs[k]);
            if (last[r] < j) last[r] = j;
        }
    last[g->loss] = n;
    last[lc_graph_storage_root(g, g->logits)] = n;
    int nb = 0;
    for (int i = 0; i < n; i++) {
        const lc_node *v = &g->nodes[i];
        if (v->aux_floats > 0) {
            ck_assert_msg(v->aux_offset >= 0 && v->aux_offset % LC_ACT_ALIGN == 0 &&
                              v->aux_offset + v->aux_floats <= g->act_floats,
                          "%s: '%s' auxiliary block at %lld", what, v->name, (long long)v->aux_offset);
            bl[nb++] = (plan_block){i, true, v->aux_offset, v->aux_floats, i, v->aux_last > i ? v->aux_last : i};
        }
        if (lc_op_kind(v->op) == 'V') {
            int r = lc_graph_storage_root(g, i);
            ck_assert_msg(v->offset == g->nodes[r].offset, "%s: view '%s' not at its root's offset", what, v->name);
            continue;
        }
        if (!in_arena(v)) continue;
        ck_assert_msg(v->offset >= 0 && v->offset % LC_ACT_ALIGN == 0, "%s: '%s' at offset %lld", what, v->name,
                      (long long)v->offset);
        ck_assert_msg(v->offset + act_size(g, i) <= g->act_floats, "%s: '%s' ends past the arena", what, v->name);
        ck_assert_msg(v->def <= def[i] && v->last_use >= last[i], "%s: '%s' planned live [%d, %d], used [%d, %d]",
                      what, v->name, v->def, v->last_use, def[i], last[i]);
        bl[nb++] = (plan_block){i, false, v->offset, act_size(g, i), def[i], last[i]};
    }
    /* a batchnorm's gamma and beta gradients read its input gradient's sums */
    for (int i = 0; i < n; i++) {
        const lc_node *v = &g->nodes[i];
        if ((v->op != LC_OP_BATCHNORM_DGAMMA && v->op != LC_OP_CHANNEL_DB) || v->fwd < 0 ||
            g->nodes[v->fwd].op != LC_OP_BATCHNORM)
            continue;
        int dx = lc_graph_bn_dx_of(g, v->fwd);
        if (dx >= 0 && dx < i)
            ck_assert_msg(g->nodes[dx].aux_last >= i, "%s: the sums of '%s' end before '%s' reads them", what,
                          g->nodes[dx].name, v->name);
    }
    int pairs = 0;
    for (int a = 0; a < nb; a++)
        for (int b = a + 1; b < nb; b++) {
            const plan_block *u = &bl[a], *v = &bl[b];
            bool time = !(u->last < v->def || v->last < u->def);
            bool space = u->offset < v->offset + v->size && v->offset < u->offset + u->size;
            FAST_CHECK(!(time && space),
                          "%s: '%s'%s [%lld, +%lld) live [%d, %d] and '%s'%s [%lld, +%lld) live [%d, %d] overlap", what,
                          g->nodes[u->id].name, u->aux ? " (aux)" : "", (long long)u->offset, (long long)u->size,
                          u->def, u->last, g->nodes[v->id].name, v->aux ? " (aux)" : "", (long long)v->offset,
                          (long long)v->size, v->def, v->last);
            pairs++;
        }
    ck_assert_int_gt(pairs, 0);
    free(bl);
    free(def);
    free(last);
}

/* The activation arena is bounded (no int64 offset can overflow): a plan
 * over LC_MAX_ARENA_FLOATS is an error naming the batch, not a wrapped size. */
START_TEST(t_plan_arena_limit)
{
    lc_strbuf js = {0};
    lc_strbuf_printf(&js, "{\"format\": \"layca-model/1\", \"input\": {\"shape\": [8, 4096, 4096]}, \"classes\": 2, \"nodes\": [");
    for (int i = 0; i < 600; i++) lc_strbuf_printf(&js, "{\"name\": \"r%d\", \"op\": \"relu\"}, ", i);
    lc_strbuf_printf(&js, "{\"name\": \"f\", \"op\": \"flatten\"}, {\"name\": \"o\", \"op\": \"dense\", \"units\": 2}]}");
    ck_assert(!js.oom);
    lc_graph *g = NULL;
    ck_assert_int_eq(lc_model_parse(js.s, js.len, "chain.json", &g, NULL), LC_OK);
    /* batch 1 fits; 2^20 examples of 600 values of 2^27 floats (2^56.2) do not */
    ck_assert_int_eq(lc_exec_compile(g, 1, false, NULL), LC_OK);
    ck_assert_int_le(g->act_floats, (int64_t)602 * 134217728);
    ck_assert_int_eq(lc_graph_plan(g, 1 << 20), LC_ERR_INVALID);
    ASSERT_MSG_HAS("the activations of batch 1048576 would need more than");
    ASSERT_ONE_LINE();
    lc_graph_destroy(g);
    lc_strbuf_free(&js);
}
END_TEST

START_TEST(t_plan_no_overlap)
{
    static const int batches[] = {1, 7, 128};
    for (size_t m = 0; m < LC_COUNTOF(all_models); m++)
        for (size_t b = 0; b < LC_COUNTOF(batches); b++)
            for (int train = 0; train < 2; train++) {
                char what[256];
                snprintf(what, sizeof what, "%s batch %d %s", all_models[m], batches[b], train ? "train" : "eval");
                lc_graph *g = compiled(all_models[m], batches[b], train);
                ck_assert_int_eq(g->planned_batch, batches[b]);
                check_plan(g, what);
                lc_graph_destroy(g);
            }
    /* a frozen prefix too */
    lc_graph *g = load_model("models/mlp3.json", NULL);
    freeze(g, "fc1.weight");
    ck_assert(lc_exec_compile(g, 33, true, NULL) == LC_OK);
    check_plan(g, "mlp3 frozen fc1");
    lc_graph_destroy(g);
}
END_TEST

START_TEST(t_plan_reuses_memory)
{
    lc_graph *g = compiled("models/mlp11.json", 128, true);
    int64_t sum = 0, biggest = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (in_arena(&g->nodes[i])) {
            int64_t s = act_size(g, i);
            sum += (s + LC_ACT_ALIGN - 1) / LC_ACT_ALIGN * LC_ACT_ALIGN;
            if (s > biggest) biggest = s;
        }
    ck_assert_int_ge(g->act_floats, biggest);
    ck_assert_msg(g->act_floats < sum, "peak %lld floats, sum of all activations %lld: no reuse",
                  (long long)g->act_floats, (long long)sum);
    /* planning again for another batch size rescales */
    int64_t peak128 = g->act_floats;
    ck_assert(lc_graph_plan(g, 256) == LC_OK);
    ck_assert_int_eq(g->planned_batch, 256);
    ck_assert_int_gt(g->act_floats, peak128);
    check_plan(g, "mlp11 replanned at 256");
    ck_assert(lc_graph_plan(g, 0) != LC_OK);
    lc_graph_destroy(g);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* 5. safetensors                                                           */
/* ------------------------------------------------------------------------ */

/* A small independent JSON reader (not cJSON) to check the header. */
typedef struct jv jv;
struct jv {
    char type; /* o a s n t f z */
    char *str;
    double num;
    int n, cap;
    char **keys;
    jv *items;
};

typedef struct jp { const char *p, *end; } jp;

static void jfree(jv *v)
{
    for (int i = 0; i < v->n; i++) {
        if (v->keys) free(v->keys[i]);
        jfree(&v->items[i]);
    }
    free(v->keys);
    free(v->items);
    free(v->str);
    memset(v, 0, sizeof *v);
}

static void jws(jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static bool jstr(jp *j, char **out)
{
    if (j->p >= j->end || *j->p != '"') return false;
    j->p++;
    size_t cap = 16, n = 0;
    char *s = malloc(cap);
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if ((unsigned char)c < 0x20) { free(s); return false; }
        if (c == '\\') {
            if (j->p >= j->end) { free(s); return false; }
            char e = *j->p++;
            switch (e) {
            case '"': case '\\': case '/': c = e; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u':
                for (int k = 0; k < 4; k++, j->p++)
                    if (j->p >= j->end || !strchr("0123456789abcdefABCDEF", *j->p)) { free(s); return false; }
                c = '?';
                break;
            default: free(s); return false;
            }
        }
        if (n + 2 > cap) s = realloc(s, cap *= 2);
        s[n++] = c;
    }
    if (j->p >= j->end) { free(s); return false; }
    j->p++;
    s[n] = 0;
    *out = s;
    return true;
}

static bool jdigits(jp *j)
{
    const char *s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    return j->p > s;
}

static bool jval(jp *j, jv *v, int depth)
{
    memset(v, 0, sizeof *v);
    jws(j);
    if (depth > 32 || j->p >= j->end) return false;
    char c = *j->p;
    if (c == '{' || c == '[') {
        v->type = c == '{' ? 'o' : 'a';
        char close = c == '{' ? '}' : ']';
        j->p++;
        jws(j);
        if (j->p < j->end && *j->p == close) { j->p++; return true; }
        for (;;) {
            char *key = NULL;
            if (v->type == 'o') {
                jws(j);
                if (!jstr(j, &key)) return false;
                jws(j);
                if (j->p >= j->end || *j->p != ':') { free(key); return false; }
                j->p++;
            }
            jv item;
            if (!jval(j, &item, depth + 1)) { free(key); jfree(&item); return false; }
            if (v->n == v->cap) {
                v->cap = v->cap ? 2 * v->cap : 4;
                v->items = realloc(v->items, (size_t)v->cap * sizeof *v->items);
                if (v->type == 'o') v->keys = realloc(v->keys, (size_t)v->cap * sizeof *v->keys);
            }
            if (v->type == 'o') v->keys[v->n] = key;
            v->items[v->n++] = item;
            jws(j);
            if (j->p >= j->end) return false;
            if (*j->p == ',') { j->p++; continue; }
            if (*j->p == close) { j->p++; return true; }
            return false;
        }
    }
    if (c == '"') { v->type = 's'; return jstr(j, &v->str); }
    static const struct { const char *w; char t; } lits[] = {{"true", 't'}, {"false", 'f'}, {"null", 'z'}};
    for (size_t i = 0; i < LC_COUNTOF(lits); i++) {
        size_t l = strlen(lits[i].w);
        if ((size_t)(j->end - j->p) >= l && !strncmp(j->p, lits[i].w, l)) {
            j->p += l;
            v->type = lits[i].t;
            return true;
        }
    }
    /* number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
    const char *s = j->p;
    if (j->p < j->end && *j->p == '-') j->p++;
    if (j->p < j->end && *j->p == '0') j->p++;
    else if (!jdigits(j)) return false;
    if (j->p < j->end && *j->p == '.') { j->p++; if (!jdigits(j)) return false; }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (!jdigits(j)) return false;
    }
    char tmp[64];
    size_t l = (size_t)(j->p - s);
    if (l >= sizeof tmp) return false;
    memcpy(tmp, s, l);
    tmp[l] = 0;
    v->type = 'n';
    v->num = strtod(tmp, NULL);
    return true;
}

/* Parses a whole document (trailing whitespace allowed). */
static bool jparse(const char *text, size_t len, jv *out)
{
    jp j = {text, text + len};
    if (!jval(&j, out, 0)) { jfree(out); return false; }
    jws(&j);
    if (j.p != j.end) { jfree(out); return false; }
    return true;
}

static const jv *jget(const jv *o, const char *key)
{
    if (o->type != 'o') return NULL;
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return &o->items[i];
    return NULL;
}

START_TEST(t_json_reader_self_test)
{
    jv v;
    static const char *good = "{\"a\": [1, -2.5e3, true, false, null, \"x\\\"y\"], \"b\": {}} ";
    ck_assert(jparse(good, strlen(good), &v));
    ck_assert(v.type == 'o' && v.n == 2);
    const jv *a = jget(&v, "a");
    ck_assert(a && a->type == 'a' && a->n == 6 && a->items[1].num == -2500 && !strcmp(a->items[5].str, "x\"y"));
    jfree(&v);
    static const char *bad[] = {"{", "{\"a\" 1}", "[1,]", "{\"a\": 01}", "[1] x", "\"abc", "{\"a\":tru}", ""};
    for (size_t i = 0; i < LC_COUNTOF(bad); i++) ck_assert_msg(!jparse(bad[i], strlen(bad[i]), &v), "%s", bad[i]);
}
END_TEST

static uint64_t get_le64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) v |= (uint64_t)b[k] << (8 * k);
    return v;
}

static void put_le64(uint8_t *b, uint64_t v)
{
    for (int k = 0; k < 8; k++) b[k] = (uint8_t)(v >> (8 * k));
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static uint8_t *read_bytes(const char *path, size_t *len)
{
    uint8_t *b;
    ck_assert_msg(lc_file_read(path, &b, len) == LC_OK, "%s", lc_error_message());
    return b;
}

/* Loaded, compiled model with seeded parameters. */
static lc_graph *model_with_params(const char *rel, uint64_t seed, float **host)
{
    lc_graph *g = compiled(rel, 2, true);
    *host = alloc_params(g);
    lc_graph_init_params(g, *host, seed);
    return g;
}

static void check_params_equal(const lc_graph *g, const float *a, const float *b, const char *what)
{
    for (int i = 0; i < g->n_params; i++) {
        const lc_param *p = &g->params[i];
        ck_assert_msg(!memcmp(a + p->offset, b + p->offset, (size_t)p->numel * sizeof *a), "%s: '%s' differs", what,
                      g->nodes[p->node].name);
    }
}

START_TEST(t_st_roundtrip)
{
    static const char *const models[] = {"models/mlp3.json", "models/mlp11.json",
                                         "tests/data/models/ok/residual_mlp.json",
                                         "tests/data/models/ok/small_cnn.json"};
    for (size_t m = 0; m < LC_COUNTOF(models); m++) {
        float *h;
        lc_graph *g = model_with_params(models[m], 1000 + m, &h);
        char p[1024];
        tmp_path(p, sizeof p, "roundtrip.safetensors");
        ck_assert_msg(lc_model_save_params(p, g, h) == LC_OK, "%s", lc_error_message());
        float *back = alloc_params(g);
        ck_assert_msg(lc_model_load_params(p, g, back) == LC_OK, "%s: %s", models[m], lc_error_message());
        check_params_equal(g, h, back, models[m]);
        /* nothing written outside the tensors */
        ck_assert(!memcmp(h, back, (size_t)g->param_floats * sizeof *h));
        /* the generic reader sees the same tensors */
        lc_st_file f;
        ck_assert_msg(lc_safetensors_load(p, &f) == LC_OK, "%s", lc_error_message());
        ck_assert_int_eq(f.n, g->n_params);
        for (int i = 0; i < g->n_params; i++) {
            const lc_node *pn = &g->nodes[g->params[i].node];
            const lc_st_tensor *t = lc_st_file_find(&f, pn->name);
            ck_assert_msg(t != NULL, "'%s' not in the file", pn->name);
            ck_assert_int_eq(t->rank, pn->shape.rank);
            for (int k = 0; k < t->rank; k++) ck_assert_int_eq(t->shape[k], pn->shape.dims[k]);
            ck_assert(!memcmp(t->data, h + g->params[i].offset, (size_t)g->params[i].numel * 4));
        }
        ck_assert_ptr_null(lc_st_file_find(&f, "nope"));
        lc_st_file_deinit(&f);
        lc_st_file_deinit(&f); /* twice is harmless */
        unlink(p);
        free(back);
        free(h);
        lc_graph_destroy(g);
    }
}
END_TEST

START_TEST(t_st_header)
{
    float *h;
    lc_graph *g = model_with_params("models/mlp11.json", 5, &h);
    char p[1024];
    tmp_path(p, sizeof p, "header.safetensors");
    ck_assert(lc_model_save_params(p, g, h) == LC_OK);
    size_t len;
    uint8_t *b = read_bytes(p, &len);
    ck_assert_uint_ge(len, 8);
    uint64_t hl = get_le64(b);
    ck_assert_uint_le(hl, len - 8);
    ck_assert_msg(hl % 8 == 0, "header length %llu: data not 8-byte aligned", (unsigned long long)hl);
    const char *hs = (const char *)b + 8;
    for (uint64_t k = 0; k < hl; k++)
        FAST_CHECK((unsigned char)hs[k] >= 0x20 && (unsigned char)hs[k] < 0x7f, "header byte %llu is 0x%02x",
                   (unsigned long long)k, (unsigned char)hs[k]);
    jv v;
    ck_assert_msg(jparse(hs, hl, &v), "the header is not valid JSON: %.*s", (int)LC_MIN(hl, 300), hs);
    ck_assert(v.type == 'o');
    uint64_t dlen = len - 8 - hl;
    int n_tensors = 0;
    uint64_t *begin = calloc((size_t)v.n, sizeof *begin), *end = calloc((size_t)v.n, sizeof *end);
    for (int i = 0; i < v.n; i++) {
        const jv *e = &v.items[i];
        ck_assert(e->type == 'o');
        if (!strcmp(v.keys[i], "__metadata__")) {
            for (int k = 0; k < e->n; k++) ck_assert(e->items[k].type == 's'); /* string -> string */
            const jv *fmt = jget(e, "format");
            ck_assert_msg(fmt && !strcmp(fmt->str, "pt"), "__metadata__.format should be \"pt\"");
            continue;
        }
        const lc_param *pa = find_param(g, v.keys[i]);
        const lc_node *pn = &g->nodes[pa->node];
        ck_assert_int_eq(e->n, 3);
        const jv *dt = jget(e, "dtype"), *sh = jget(e, "shape"), *of = jget(e, "data_offsets");
        ck_assert(dt && dt->type == 's' && !strcmp(dt->str, "F32"));
        ck_assert(sh && sh->type == 'a' && sh->n == pn->shape.rank);
        for (int k = 0; k < sh->n; k++) ck_assert(sh->items[k].type == 'n' && sh->items[k].num == pn->shape.dims[k]);
        ck_assert(of && of->type == 'a' && of->n == 2 && of->items[0].type == 'n' && of->items[1].type == 'n');
        uint64_t bo = (uint64_t)of->items[0].num, eo = (uint64_t)of->items[1].num;
        ck_assert(of->items[0].num == (double)bo && of->items[1].num == (double)eo);
        ck_assert_uint_eq(eo - bo, (uint64_t)pa->numel * 4);
        ck_assert_uint_le(eo, dlen);
        ck_assert(!memcmp(b + 8 + hl + bo, h + pa->offset, (size_t)pa->numel * 4));
        begin[n_tensors] = bo;
        end[n_tensors] = eo;
        n_tensors++;
    }
    ck_assert_int_eq(n_tensors, g->n_params);
    /* the data section is exactly covered, without overlaps */
    uint64_t pos = 0;
    for (int round = 0; round < n_tensors; round++) {
        int found = -1;
        for (int i = 0; i < n_tensors; i++)
            if (begin[i] == pos) found = i;
        ck_assert_msg(found >= 0, "no tensor starts at data byte %llu", (unsigned long long)pos);
        pos = end[found];
    }
    ck_assert_uint_eq(pos, dlen);
    free(begin);
    free(end);
    jfree(&v);
    free(b);
    unlink(p);
    free(h);
    lc_graph_destroy(g);
}
END_TEST

static const char *tiny = "tests/data/models/ok/tiny_mlp_bias.json";

/* The tiny model's tensors as lc_st_tensor entries (fc1.weight [5, 6],
 * fc1.bias [5], fc2.weight [3, 5], fc2.bias [3]). */
static int tiny_tensors(const lc_graph *g, const float *h, lc_st_tensor *t)
{
    for (int i = 0; i < g->n_params; i++) {
        const lc_node *pn = &g->nodes[g->params[i].node];
        memset(&t[i], 0, sizeof t[i]);
        snprintf(t[i].name, sizeof t[i].name, "%s", pn->name);
        t[i].rank = pn->shape.rank;
        for (int k = 0; k < pn->shape.rank; k++) t[i].shape[k] = pn->shape.dims[k];
        t[i].data = h + g->params[i].offset;
    }
    return g->n_params;
}

/* Loads `path` into g and expects a one-line error naming the file and
 * containing each of the NULL-terminated substrings. */
static void expect_load_error(const lc_graph *g, const char *path, const char *what, ...)
{
    float *dst = alloc_params(g);
    lc_error_clear();
    lc_status st = lc_model_load_params(path, g, dst);
    const char *m = lc_error_message();
    ck_assert_msg(st != LC_OK, "%s: loaded without error", what);
    ck_assert_msg(one_line(m), "%s: message is not one line: \"%s\"", what, esc(m));
    ck_assert_msg(strstr(m, path) != NULL, "%s: message does not name the file: \"%s\"", what, esc(m));
    va_list ap;
    va_start(ap, what);
    for (const char *s; (s = va_arg(ap, const char *));)
        ck_assert_msg(strstr(m, s) != NULL, "%s: message \"%s\" lacks \"%s\"", what, esc(m), s);
    va_end(ap);
    free(dst);
}

START_TEST(t_st_broken)
{
    float *h;
    lc_graph *g = model_with_params(tiny, 21, &h);
    ck_assert_int_eq(g->n_params, 4);
    char good[1024], p[1024];
    tmp_path(good, sizeof good, "tiny.safetensors");
    ck_assert(lc_model_save_params(good, g, h) == LC_OK);
    size_t len;
    uint8_t *b = read_bytes(good, &len);
    uint64_t hl = get_le64(b), dlen = len - 8 - hl;
    ck_assert_uint_eq(dlen, (30 + 5 + 15 + 3) * 4);
    tmp_path(p, sizeof p, "broken.safetensors");

    /* cut in the data: fc1.weight (the first 120 bytes) no longer fits */
    write_bytes(p, b, (size_t)(8 + hl + dlen / 2));
    expect_load_error(g, p, "truncated", "fc1.weight", "data_offsets", NULL);
    /* cut in the header */
    write_bytes(p, b, (size_t)(8 + hl / 2));
    expect_load_error(g, p, "cut in the header", "header length", NULL);
    /* shorter than the length field */
    write_bytes(p, b, 5);
    expect_load_error(g, p, "5 bytes", "not a safetensors file", NULL);
    /* header length larger than the file */
    ck_assert_uint_ge(hl, 32);
    uint8_t *c = malloc(len);
    ck_assert_ptr_nonnull(c);
    memcpy(c, b, len);
    put_le64(c, len);
    write_bytes(p, c, len);
    expect_load_error(g, p, "header length > file", "exceeds the file", NULL);
    put_le64(c, UINT64_MAX);
    write_bytes(p, c, len);
    expect_load_error(g, p, "header length 2^64-1", "exceeds the file", NULL);
    /* not JSON */
    memcpy(c, b, len);
    memcpy(c + 8, "this is not JSON", 16);
    write_bytes(p, c, len);
    expect_load_error(g, p, "not JSON", "not a JSON object", NULL);
    /* JSON, but not an object */
    memcpy(c, b, len);
    memset(c + 8, ' ', (size_t)hl);
    memcpy(c + 8, "[1, 2]", 6);
    write_bytes(p, c, len);
    expect_load_error(g, p, "array header", "not a JSON object", NULL);
    /* dtype F16 */
    memcpy(c, b, len);
    char *f32 = NULL;
    for (uint64_t k = 8; k + 3 <= 8 + hl && !f32; k++)
        if (!memcmp(c + k, "F32", 3)) f32 = (char *)c + k;
    ck_assert_ptr_nonnull(f32);
    memcpy(f32, "F16", 3);
    write_bytes(p, c, len);
    expect_load_error(g, p, "F16", "F16", NULL);
    free(c);

    lc_st_tensor t[8];
    int n = tiny_tensors(g, h, t);
    /* a missing tensor */
    ck_assert(lc_safetensors_write(p, t, n - 1, NULL) == LC_OK);
    expect_load_error(g, p, "missing", "'fc2.bias'", "missing", NULL);
    /* a wrong shape: names the tensor and both shapes */
    t[0].shape[0] = 6;
    t[0].shape[1] = 5;
    ck_assert(lc_safetensors_write(p, t, n, NULL) == LC_OK);
    expect_load_error(g, p, "wrong shape", "'fc1.weight'", "[6, 5]", "[5, 6]", NULL);
    t[0].rank = 1;
    t[0].shape[0] = 30;
    ck_assert(lc_safetensors_write(p, t, n, NULL) == LC_OK);
    expect_load_error(g, p, "wrong rank", "'fc1.weight'", "[30]", "[5, 6]", NULL);
    n = tiny_tensors(g, h, t);
    /* an extra tensor: a checkpoint of another model */
    static const float extra[4] = {1, 2, 3, 4};
    t[n] = (lc_st_tensor){.name = "other.weight", .rank = 2, .shape = {2, 2}, .data = extra};
    ck_assert(lc_safetensors_write(p, t, n + 1, NULL) == LC_OK);
    expect_load_error(g, p, "extra tensor", "'other.weight'", "not a parameter", NULL);
    /* another model's whole checkpoint */
    float *h3;
    lc_graph *g3 = model_with_params("models/mlp3.json", 2, &h3);
    ck_assert(lc_model_save_params(p, g3, h3) == LC_OK);
    expect_load_error(g, p, "mlp3 checkpoint", "'fc1.weight'", "[784, 784]", "[5, 6]", NULL);
    free(h3);
    lc_graph_destroy(g3);
    /* a NaN value */
    float *hn = alloc_params(g);
    memcpy(hn, h, (size_t)g->param_floats * sizeof *h);
    float *w2 = hn + find_param(g, "fc2.weight")->offset;
    w2[7] = NAN;
    ck_assert(lc_model_save_params(p, g, hn) == LC_OK);
    expect_load_error(g, p, "NaN", "'fc2.weight'", "non-finite", "7", NULL);
    w2[7] = 1.0f;
    w2[3] = -INFINITY;
    ck_assert(lc_model_save_params(p, g, hn) == LC_OK);
    expect_load_error(g, p, "-inf", "'fc2.weight'", "non-finite", "3", NULL);
    free(hn);
    /* a file that does not exist */
    tmp_path(p, sizeof p, "does-not-exist.safetensors");
    expect_load_error(g, p, "no file", "does-not-exist", NULL);

    unlink(good);
    tmp_path(p, sizeof p, "broken.safetensors");
    unlink(p);
    free(b);
    free(h);
    lc_graph_destroy(g);
}
END_TEST

/* An extra tensor named like a node that is not a parameter ("relu1", or
 * "fc1") is not a parameter either. */
START_TEST(t_st_extra_named_like_node)
{
    float *h;
    lc_graph *g = model_with_params(tiny, 4, &h);
    lc_st_tensor t[8];
    int n = tiny_tensors(g, h, t);
    static const float extra[5] = {1, 2, 3, 4, 5};
    static const char *const names[] = {"relu1", "fc1", "input"};
    char p[1024];
    tmp_path(p, sizeof p, "extra-node.safetensors");
    for (size_t i = 0; i < LC_COUNTOF(names); i++) {
        t[n] = (lc_st_tensor){.rank = 1, .shape = {5}, .data = extra};
        snprintf(t[n].name, sizeof t[n].name, "%s", names[i]);
        ck_assert(lc_safetensors_write(p, t, n + 1, NULL) == LC_OK);
        char q[64];
        snprintf(q, sizeof q, "'%s'", names[i]);
        expect_load_error(g, p, names[i], q, "not a parameter", NULL);
    }
    unlink(p);
    free(h);
    lc_graph_destroy(g);
}
END_TEST

/* Builds a file by hand: a header with spaces, newlines and padding, the
 * metadata between tensors, tensors and data in another order. pad_to is the
 * residue (mod 8) of the header length. */
static size_t handbuilt(const lc_graph *g, const float *h, int pad_mod8, uint8_t **out)
{
    static const char *const order[] = {"fc2.bias", "fc1.weight", "fc2.weight", "fc1.bias"};
    char hdr[2048];
    size_t o = 0;
    uint64_t off = 0;
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "  {\n");
    for (int i = 0; i < 4; i++) {
        const lc_param *pa = find_param(g, order[i]);
        const lc_node *pn = &g->nodes[pa->node];
        char shape[64];
        lc_shape_str(&pn->shape, shape, sizeof shape);
        uint64_t e = off + (uint64_t)pa->numel * 4;
        if (i) o += (size_t)snprintf(hdr + o, sizeof hdr - o, " ,\n");
        if (i % 2)
            o += (size_t)snprintf(hdr + o, sizeof hdr - o,
                                  "   \"%s\" : { \"data_offsets\" : [ %llu , %llu ] , \"shape\" : %s,\n"
                                  "      \"dtype\":\"F32\" }",
                                  order[i], (unsigned long long)off, (unsigned long long)e, shape);
        else
            o += (size_t)snprintf(hdr + o, sizeof hdr - o, "\"%s\":{\"shape\":%s,\"dtype\":\"F32\",\"data_offsets\":[%llu,%llu]}",
                                  order[i], shape, (unsigned long long)off, (unsigned long long)e);
        if (i == 1)
            o += (size_t)snprintf(hdr + o, sizeof hdr - o,
                                  ",\n \"__metadata__\": {\"format\": \"pt\", \"note\": \"hand \\\"made\\\"\"}");
        off = e;
    }
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "\n}\t");
    while (o % 8 != (size_t)pad_mod8) hdr[o++] = ' ';
    size_t len = 8 + o + off;
    uint8_t *b = malloc(len);
    ck_assert_ptr_nonnull(b);
    put_le64(b, o);
    memcpy(b + 8, hdr, o);
    uint8_t *d = b + 8 + o;
    for (int i = 0; i < 4; i++) {
        const lc_param *pa = find_param(g, order[i]);
        memcpy(d, h + pa->offset, (size_t)pa->numel * 4);
        d += pa->numel * 4;
    }
    *out = b;
    return len;
}

START_TEST(t_st_handbuilt)
{
    float *h;
    lc_graph *g = model_with_params(tiny, 31, &h);
    char p[1024];
    tmp_path(p, sizeof p, "hand.safetensors");
    for (int pad = 0; pad < 8; pad++) {
        uint8_t *b;
        size_t len = handbuilt(g, h, pad, &b);
        ck_assert_uint_eq(get_le64(b) % 8, (uint64_t)pad);
        jv v;
        ck_assert_msg(jparse((const char *)b + 8, get_le64(b), &v), "the hand-built header is not JSON");
        jfree(&v);
        write_bytes(p, b, len);
        free(b);
        float *back = alloc_params(g);
        ck_assert_msg(lc_model_load_params(p, g, back) == LC_OK, "pad %d: %s", pad, esc(lc_error_message()));
        check_params_equal(g, h, back, "hand-built");
        free(back);
    }
    unlink(p);
    free(h);
    lc_graph_destroy(g);
}
END_TEST

/* lc_st_tensor.data is a float pointer: it must be aligned for float even
 * when the header length is not a multiple of 4 (files from elsewhere). */
START_TEST(t_st_data_aligned)
{
    float *h;
    lc_graph *g = model_with_params(tiny, 32, &h);
    char p[1024];
    tmp_path(p, sizeof p, "hand-odd.safetensors");
    for (int pad = 0; pad < 8; pad++) {
        uint8_t *b;
        size_t len = handbuilt(g, h, pad, &b);
        write_bytes(p, b, len);
        free(b);
        lc_st_file f;
        ck_assert_msg(lc_safetensors_load(p, &f) == LC_OK, "%s", esc(lc_error_message()));
        ck_assert_int_eq(f.n, 4);
        for (int i = 0; i < f.n; i++) {
            ck_assert_msg((uintptr_t)f.tensors[i].data % _Alignof(float) == 0,
                          "header length %% 8 = %d: tensor '%s' data at a misaligned address", pad, f.tensors[i].name);
            const lc_param *pa = find_param(g, f.tensors[i].name);
            ck_assert(!memcmp(f.tensors[i].data, h + pa->offset, (size_t)pa->numel * 4));
        }
        lc_st_file_deinit(&f);
    }
    unlink(p);
    free(h);
    lc_graph_destroy(g);
}
END_TEST

/* Malformed headers the reader must refuse, so that a tensor's shape always
 * describes the bytes behind its data pointer.  All cases run; the failures
 * are listed together. */
START_TEST(t_st_bad_headers)
{
    static const struct { const char *what, *header; size_t data; const char *sub; } cases[] = {
        {"element count overflows (2^32 x 2^32 in 0 bytes)",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0, "'x'"},
        {"non-integer dimension", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "'x'"},
        {"negative dimension", "{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "'x'"},
        {"offsets are strings", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",\"8\"]}}", 8, "'x'"},
        {"offsets past the data", "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "'x'"},
        {"size does not match the shape", "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "'x'"},
        {"a tensor twice",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "'x'"},
        {"entry is not an object", "{\"x\": 3}", 0, "'x'"},
        {"missing dtype", "{\"x\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'x'"},
        {"rank 5", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, "'x'"},
    };
    char p[1024], fails[4096] = "";
    int n_fail = 0;
    tmp_path(p, sizeof p, "bad-header.safetensors");
    for (size_t i = 0; i < LC_COUNTOF(cases); i++) {
        size_t hl = strlen(cases[i].header), len = 8 + hl + cases[i].data;
        uint8_t *b = calloc(1, len);
        ck_assert_ptr_nonnull(b);
        put_le64(b, hl);
        memcpy(b + 8, cases[i].header, hl);
        write_bytes(p, b, len);
        free(b);
        lc_st_file f;
        lc_error_clear();
        lc_status st = lc_safetensors_load(p, &f);
        const char *m = lc_error_message();
        const char *why = NULL;
        if (st == LC_OK) {
            lc_st_file_deinit(&f);
            why = "accepted";
        } else if (!one_line(m) || !strstr(m, p) || !strstr(m, cases[i].sub)) {
            why = m;
        }
        if (why) {
            n_fail++;
            size_t o = strlen(fails);
            snprintf(fails + o, sizeof fails - o, "%s[%s: %s]", o ? "; " : "", cases[i].what, esc(why));
        }
    }
    unlink(p);
    ck_assert_msg(n_fail == 0, "%d malformed headers not refused with a message naming the file and tensor: %s",
                  n_fail, fails);
}
END_TEST

START_TEST(t_st_write_metadata)
{
    static const float x[3] = {1.5f, -2.0f, 0.0f};
    lc_st_tensor t = {.name = "x", .rank = 1, .shape = {3}, .data = x};
    static const char *const meta[] = {"format", "pt", "k", "v", NULL};
    char p[1024];
    tmp_path(p, sizeof p, "meta.safetensors");
    ck_assert(lc_safetensors_write(p, &t, 1, meta) == LC_OK);
    size_t len;
    uint8_t *b = read_bytes(p, &len);
    jv v;
    ck_assert(jparse((const char *)b + 8, get_le64(b), &v));
    const jv *m = jget(&v, "__metadata__");
    ck_assert(m && m->n == 2 && !strcmp(jget(m, "k")->str, "v"));
    jfree(&v);
    free(b);
    lc_st_file f;
    ck_assert(lc_safetensors_load(p, &f) == LC_OK);
    ck_assert_int_eq(f.n, 1);
    ck_assert(!memcmp(f.tensors[0].data, x, sizeof x));
    lc_st_file_deinit(&f);
    /* no tensors at all is a valid file */
    ck_assert(lc_safetensors_write(p, NULL, 0, NULL) == LC_OK);
    ck_assert(lc_safetensors_load(p, &f) == LC_OK);
    ck_assert_int_eq(f.n, 0);
    lc_st_file_deinit(&f);
    unlink(p);
    /* an unwritable path is an error, not a crash */
    tmp_path(p, sizeof p, "no/such/dir/x.safetensors");
    ck_assert(lc_safetensors_write(p, &t, 1, NULL) != LC_OK);
    ASSERT_ONE_LINE();
}
END_TEST

/* ------------------------------------------------------------------------ */

/* ==== metrics reader ==== */

static const char metrics_ok[] =
    "{\"kind\": \"rotation\", \"epoch\": 0.5, \"step\": 4, \"rotation\": {\"fc\\\"1\": 0.25, \"fc2\": null}, "
    "\"norm\": {\"fc\\\"1\": 3, \"fc2\": 4}}\n"
    "\n"
    "{\"kind\": \"eval\", \"epoch\": 1, \"step\": 8, \"lr\": 0.1, \"train_loss\": 0.5, \"train_acc\": 0.75, "
    "\"test_loss\": null, \"test_acc\": 0.5}\n"
    "{\"kind\": \"silhouette\", \"epoch\": 1, \"value\": 0.1}\n";

START_TEST(t_metrics_read)
{
    lc_metrics m;
    ck_assert_int_eq(lc_metrics_parse(metrics_ok, strlen(metrics_ok), "m.jsonl", &m), LC_OK);
    ck_assert_int_eq(m.n_rot, 1);
    ck_assert_int_eq(m.n_eval, 1);
    ck_assert_int_eq(m.n_layers, 2);
    ck_assert_str_eq(m.layer[0], "fc\"1");
    ck_assert_str_eq(m.layer[1], "fc2");
    ck_assert(m.rot[0].epoch == 0.5 && m.rot[0].step == 4);
    ck_assert(m.rot[0].rotation[0] == 0.25 && isnan(m.rot[0].rotation[1]));
    ck_assert(m.rot[0].norm[0] == 3 && m.rot[0].norm[1] == 4);
    ck_assert(m.eval[0].epoch == 1 && m.eval[0].train_acc == 0.75 && isnan(m.eval[0].test_loss));
    lc_metrics_deinit(&m);
}
END_TEST

/* The writers' lines, exactly, and read back by the reader */
START_TEST(t_metrics_write_read)
{
    lc_strbuf b = {0};
    char names[2][LC_NAME_MAX] = {"fc\"1", "fc2"};
    double rot[2] = {0.25, NAN}, norm[2] = {3, 4};
    const char *keys[2] = {"lr", "data"}, *values[2] = {"0.5", "\"mnist:d\""};
    lc_metrics_line_settings(&b, 2, keys, values, 2, names);
    lc_strbuf_printf(&b, "\n");
    lc_metrics_line_rotation(&b, &(lc_rot_rec){.epoch = 0.5, .step = 4, .rotation = rot, .norm = norm}, 2, names);
    lc_strbuf_printf(&b, "\n");
    lc_eval_rec e = {.epoch = 1, .step = 8, .lr = 0.1, .train_loss = 0.5, .train_acc = 0.75, .test_loss = NAN,
                     .test_acc = 0.5, .test_top5 = 1, .has_val = true, .val_loss = 0.25, .val_acc = 1, .val_top5 = 1,
                     .time_s = 1.5};
    lc_metrics_line_eval(&b, &e);
    lc_strbuf_printf(&b, "\n");
    lc_metrics_line_silhouette(&b, 1, 8, "fc2", 0.125);
    lc_strbuf_printf(&b, "\n");
    lc_metrics_line_nonfinite(&b, 1, 9, INFINITY, "fc2");
    lc_strbuf_printf(&b, "\n");
    ck_assert_str_eq(b.s,
        "{\"kind\": \"settings\", \"lr\": 0.5, \"data\": \"mnist:d\", \"layers\": [\"fc\\\"1\", \"fc2\"]}\n"
        "{\"kind\": \"rotation\", \"epoch\": 0.500000, \"step\": 4, \"rotation\": {\"fc\\\"1\": 0.25, \"fc2\": null}, "
        "\"norm\": {\"fc\\\"1\": 3, \"fc2\": 4}, \"nonfinite\": true}\n"
        "{\"kind\": \"eval\", \"epoch\": 1, \"step\": 8, \"lr\": 0.1, \"train_loss\": 0.500000, \"train_acc\": 0.750000, "
        "\"val_loss\": 0.250000, \"val_acc\": 1.000000, \"val_top5\": 1.000000, \"test_loss\": null, "
        "\"test_acc\": 0.500000, \"test_top5\": 1.000000, \"nonfinite\": true, \"time_s\": 1.500}\n"
        "{\"kind\": \"silhouette\", \"epoch\": 1, \"step\": 8, \"node\": \"fc2\", \"value\": 0.125000}\n"
        "{\"kind\": \"nonfinite\", \"epoch\": 1, \"step\": 9, \"train_loss\": null, \"where\": \"fc2\", "
        "\"nonfinite\": true}\n");
    lc_metrics m;
    ck_assert_int_eq(lc_metrics_parse(b.s, b.len, "w.jsonl", &m), LC_OK);
    ck_assert(m.n_rot == 1 && m.n_eval == 1 && m.n_layers == 2);
    ck_assert_str_eq(m.layer[0], "fc\"1");
    ck_assert(m.rot[0].epoch == 0.5 && m.rot[0].step == 4 && m.rot[0].rotation[0] == 0.25 && isnan(m.rot[0].rotation[1]));
    ck_assert(m.rot[0].norm[0] == 3 && m.rot[0].norm[1] == 4);
    const lc_eval_rec *r = &m.eval[0];
    ck_assert(r->epoch == 1 && r->step == 8 && r->lr == 0.1 && r->train_loss == 0.5 && r->train_acc == 0.75);
    ck_assert(isnan(r->test_loss) && r->test_acc == 0.5 && r->test_top5 == 1 && r->time_s == 1.5);
    ck_assert(r->has_val && r->val_loss == 0.25 && r->val_acc == 1 && r->val_top5 == 1);
    lc_metrics_deinit(&m);
    /* a line without a validation split */
    lc_strbuf_clear(&b);
    e.has_val = false;
    lc_metrics_line_eval(&b, &e);
    ck_assert_ptr_null(strstr(b.s, "val_"));
    ck_assert_int_eq(lc_metrics_parse(b.s, b.len, "w.jsonl", &m), LC_OK);
    ck_assert(!m.eval[0].has_val && isnan(m.eval[0].val_loss));
    lc_metrics_deinit(&m);
    lc_strbuf_free(&b);
}
END_TEST

/* A kill leaves half a line at the end (no newline): it is skipped with a
 * warning and everything before it is read.  The same bytes in the middle of
 * the file, or ended by a newline, stay an error naming the line. */
START_TEST(t_metrics_unfinished_last_line)
{
    char *full = NULL;
    size_t flen = 0;
    char p[1024];
    pathf(p, sizeof p, "%s/tests/data/metrics/partial_metrics_deep120.jsonl", source_root());
    ck_assert_int_eq(lc_file_read(p, (uint8_t **)&full, &flen), LC_OK);
    ck_assert_uint_eq(flen, 4096); /* the probe's file: one cut rotation record */
    ck_assert(full[flen - 1] != '\n');
    lc_strbuf b = {0};
    lc_strbuf_printf(&b, "%s", metrics_ok);
    lc_strbuf_printf(&b, "%.*s", (int)flen, full);
    lc_metrics m;
    ck_assert_int_eq(lc_metrics_parse(b.s, b.len, "cut.jsonl", &m), LC_OK);
    ck_assert_int_eq(m.n_rot, 1);
    ck_assert_int_eq(m.n_eval, 1);
    lc_metrics_deinit(&m);
    /* with a newline after it, the cut line is an error naming it */
    lc_strbuf_printf(&b, "\n");
    ck_assert_int_eq(lc_metrics_parse(b.s, b.len, "cut.jsonl", &m), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("cut.jsonl:5: not a JSON object");
    ck_assert_int_eq(m.n_rot, 0);
    /* followed by a whole line */
    lc_strbuf_printf(&b, "%s", metrics_ok);
    ck_assert_int_eq(lc_metrics_parse(b.s, b.len, "cut.jsonl", &m), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("cut.jsonl:5: not a JSON object");
    /* the probe's file alone: nothing whole is left to plot, and it says so */
    ck_assert_int_eq(lc_metrics_load(p, &m), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("partial_metrics_deep120.jsonl: no evaluation or rotation lines");
    /* a complete last line without a newline is read */
    ck_assert_int_eq(lc_metrics_parse(metrics_ok, strlen(metrics_ok) - 1, "m.jsonl", &m), LC_OK);
    ck_assert_int_eq(m.n_eval, 1);
    lc_metrics_deinit(&m);
    lc_strbuf_free(&b);
    free(full);
}
END_TEST

/* Files written before non-finite numbers became null hold nan / inf
 * tokens: read as missing values; text inside strings is left alone. */
START_TEST(t_metrics_nonfinite_tokens)
{
    char p[1024];
    pathf(p, sizeof p, "%s/tests/data/metrics/nan_metrics_sgd_lr1e30.jsonl", source_root());
    lc_metrics m;
    ck_assert_msg(lc_metrics_load(p, &m) == LC_OK, "%s", lc_error_message());
    ck_assert_int_gt(m.n_eval, 1);
    ck_assert(isnan(m.eval[0].train_loss) && isnan(m.eval[0].test_loss));
    ck_assert(m.eval[0].test_acc == 1.0);
    lc_metrics_deinit(&m);
    static const char t[] = "{\"kind\": \"rotation\", \"epoch\": 1, \"step\": 2, \"rotation\": {\"nan\": -nan, "
                            "\"inf, x\": inf, \"y\": -Infinity}}\n";
    ck_assert_int_eq(lc_metrics_parse(t, strlen(t), "t.jsonl", &m), LC_OK);
    ck_assert_int_eq(m.n_layers, 3);
    ck_assert_str_eq(m.layer[0], "nan");
    ck_assert_str_eq(m.layer[1], "inf, x");
    for (int l = 0; l < 3; l++) ck_assert(isnan(m.rot[0].rotation[l]));
    lc_metrics_deinit(&m);
    /* a word that merely starts like one is still an error */
    static const char u[] = "{\"kind\": \"eval\", \"epoch\": 1, \"lr\": nano}\n";
    ck_assert_int_eq(lc_metrics_parse(u, strlen(u), "u.jsonl", &m), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("u.jsonl:1: not a JSON object");
}
END_TEST

/* Names quoted in messages come from the file: escaped, one line. */
START_TEST(t_metrics_errors_printable)
{
    static const char t[] =
        "{\"kind\": \"rotation\", \"epoch\": 1, \"step\": 2, \"rotation\": {\"a\": 0.1}}\n"
        "{\"kind\": \"rotation\", \"epoch\": 2, \"step\": 4, \"rotation\": {\"\\u001b[2Jb\": 0.1}}\n";
    lc_metrics m;
    ck_assert_int_eq(lc_metrics_parse(t, strlen(t), "e.jsonl", &m), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("e.jsonl:2: layer 0 is '\\x1b[2Jb', earlier lines have 'a'");
    ASSERT_ONE_LINE();
    /* layer names longer than the 63 bytes kept still match themselves */
    lc_strbuf b = {0};
    for (int k = 0; k < 2; k++)
        lc_strbuf_printf(&b, "{\"kind\": \"rotation\", \"epoch\": %d, \"rotation\": {\"%0100d\": 0.5}}\n", k, 7);
    ck_assert_int_eq(lc_metrics_parse(b.s, b.len, "long.jsonl", &m), LC_OK);
    ck_assert_int_eq(m.n_rot, 2);
    lc_metrics_deinit(&m);
    lc_strbuf_free(&b);
    /* a FIFO is refused, not waited on */
    char f[1024];
    snprintf(f, sizeof f, "%s/metrics.fifo", lc_test_tmpdir());
    ck_assert_int_eq(mkfifo(f, 0600), 0);
    alarm(30);
    ck_assert_int_eq(lc_metrics_load(f, &m), LC_ERR_INVALID);
    ASSERT_MSG_HAS("metrics.fifo: is a FIFO");
    lc_graph *g = NULL;
    ck_assert_int_eq(lc_model_load(f, &g, NULL), LC_ERR_INVALID);
    ck_assert_ptr_null(g);
    lc_st_file sf;
    ck_assert_int_eq(lc_safetensors_load(f, &sf), LC_ERR_INVALID);
    ASSERT_MSG_HAS("metrics.fifo: is a FIFO");
    alarm(0);
    unlink(f);
}
END_TEST

/* A PyTorch state dict of a conv-BN-dense network (nn.Sequential names,
 * batchnorm's int64 num_batches_tracked): loaded through a name map, the
 * counter ignored; without the map, or with a broken one, clear errors. */
START_TEST(t_init_pytorch_state_dict)
{
    lc_graph *g = parse_model("{\"format\": \"layca-model/1\", \"input\": {\"shape\": [2, 4, 4]}, \"classes\": 2,"
                              " \"nodes\": [{\"name\": \"c1\", \"op\": \"conv2d\", \"filters\": 3, \"kernel\": 3,"
                              " \"bias\": true}, {\"name\": \"bn1\", \"op\": \"batchnorm\", \"affine\": true},"
                              " {\"name\": \"r\", \"op\": \"relu\"}, {\"name\": \"f\", \"op\": \"flatten\"},"
                              " {\"name\": \"fc\", \"op\": \"dense\", \"units\": 2, \"bias\": true}]}",
                              NULL);
    static const char *const torch[][2] = {
        {"features.0.weight", "c1.weight"},   {"features.0.bias", "c1.bias"},
        {"features.1.weight", "bn1.weight"},  {"features.1.bias", "bn1.bias"},
        {"features.1.running_mean", "bn1.running_mean"}, {"features.1.running_var", "bn1.running_var"},
        {"classifier.weight", "fc.weight"},   {"classifier.bias", "fc.bias"}};
    enum { NT = (int)LC_COUNTOF(torch) };
    lc_st_tensor t[NT + 1];
    float *vals[NT];
    memset(t, 0, sizeof t);
    for (int i = 0; i < NT; i++) {
        const lc_node *p = &g->nodes[lc_graph_find(g, torch[i][1])];
        snprintf(t[i].name, sizeof t[i].name, "%s", torch[i][0]);
        t[i].rank = p->shape.rank;
        int64_t k = lc_shape_numel(&p->shape);
        for (int d = 0; d < p->shape.rank; d++) t[i].shape[d] = p->shape.dims[d];
        vals[i] = malloc((size_t)k * 4);
        for (int64_t e = 0; e < k; e++) vals[i][e] = (float)(0.25 * i + 0.001 * (double)e);
        t[i].data = vals[i];
    }
    int64_t batches = 1234;
    snprintf(t[NT].name, sizeof t[NT].name, "features.1.num_batches_tracked");
    t[NT].rank = 0;
    t[NT].dtype = LC_ST_I64;
    t[NT].raw = &batches;
    char p[1024];
    tmp_path(p, sizeof p, "torch_state.safetensors");
    ck_assert_int_eq(lc_safetensors_write(p, t, NT + 1, NULL), LC_OK);
    float *dst = alloc_params(g);
    const char *map = "features.0=c1,features.1=bn1,classifier=fc";
    ck_assert_msg(lc_model_load_params_map(p, g, dst, map) == LC_OK, "%s", lc_error_message());
    for (int i = 0; i < NT; i++) {
        const lc_param *pp = &g->params[g->nodes[lc_graph_find(g, torch[i][1])].param_index];
        ck_assert_msg(!memcmp(dst + pp->offset, vals[i], (size_t)pp->numel * 4), "%s", torch[i][1]);
    }
    /* without the map: the first missing parameter, and the hint */
    lc_error_clear();
    ck_assert(lc_model_load_params(p, g, dst) != LC_OK);
    ck_assert_msg(strstr(lc_error_message(), "'c1.weight' is missing") && strstr(lc_error_message(), "--init-map"),
                  "%s", lc_error_message());
    /* the first pair that applies wins; a pair that places nothing is harmless */
    ck_assert(lc_model_load_params_map(p, g, dst, "features.0=c1,features.1=bn1,classifier=fc,fc=other") == LC_OK);
    ck_assert(lc_model_load_params_map(p, g, dst, "features.0=c1,features.1=bn,classifier=fc") != LC_OK);
    ck_assert_msg(strstr(lc_error_message(), "'bn1.running_mean' is missing"), "%s", lc_error_message());
    /* malformed maps */
    static const char *const bad[] = {"features.0", "=c1", "features.0=", "a=b,,c=d"};
    for (size_t i = 0; i < LC_COUNTOF(bad); i++) {
        ck_assert(lc_model_load_params_map(p, g, dst, bad[i]) != LC_OK);
        ck_assert_msg(strstr(lc_error_message(), "--init-map") && strstr(lc_error_message(), "FROM=TO"), "%s: %s",
                      bad[i], lc_error_message());
    }
    /* a float "num_batches_tracked" is not a counter: an unknown tensor */
    float fb = 3;
    t[NT].dtype = LC_ST_F32;
    t[NT].raw = NULL;
    t[NT].data = &fb;
    ck_assert_int_eq(lc_safetensors_write(p, t, NT + 1, NULL), LC_OK);
    ck_assert(lc_model_load_params_map(p, g, dst, map) != LC_OK);
    ck_assert_msg(strstr(lc_error_message(), "'features.1.num_batches_tracked' (mapped to 'bn1.num_batches_tracked') "
                                             "is not a parameter"), "%s", lc_error_message());
    for (int i = 0; i < NT; i++) free(vals[i]);
    free(dst);
    lc_graph_destroy(g);
}
END_TEST

int main(void)
{
#ifdef M_PERTURB
    /* as meson's MALLOC_PERTURB_ does, also when the binary is run by hand */
    if (!getenv("MALLOC_PERTURB_")) mallopt(M_PERTURB, 0xa5);
#endif
    read_expected();
    Suite *s = suite_create("model");

    TCase *bad = tcase_create("bad_models");
    tcase_add_test(bad, t_bad_list);
    if (n_bad > 0) tcase_add_loop_test(bad, t_bad_file, 0, n_bad);
    tcase_add_test(bad, t_syntax_error_stays_in_bounds);
    tcase_add_test(bad, t_load_missing_file);
    suite_add_tcase(s, bad);

    TCase *ok = tcase_create("valid_models");
    tcase_add_test(ok, t_mlp3);
    tcase_add_test(ok, t_mlp11);
    tcase_add_test(ok, t_tiny_bias);
    tcase_add_test(ok, t_residual);
    tcase_add_test(ok, t_train_all_keys);
    tcase_add_test(ok, t_parse_inline);
    suite_add_tcase(s, ok);

    TCase *init = tcase_create("init");
    tcase_add_test(init, t_init_reproducible);
    tcase_add_test(init, t_init_he_uniform);
    tcase_add_test(init, t_init_glorot_uniform);
    tcase_add_test(init, t_init_he_normal);
    tcase_add_test(init, t_init_zeros_constant);
    tcase_add_test(init, t_init_gaps_zero);
    suite_add_tcase(s, init);

    TCase *ir = tcase_create("ir");
    tcase_add_test(ir, t_autodiff_all_params);
    tcase_add_test(ir, t_autodiff_deep);
    tcase_add_test(ir, t_eval_has_no_backward);
    tcase_add_test(ir, t_freeze_first_layer);
    tcase_add_test(ir, t_dce_after_freeze);
    tcase_add_test(ir, t_plan_no_overlap);
    tcase_add_test(ir, t_plan_reuses_memory);
    tcase_add_test(ir, t_plan_arena_limit);
    tcase_add_test(ir, t_fusion);
    suite_add_tcase(s, ir);

    TCase *st = tcase_create("safetensors");
    tcase_add_test(st, t_json_reader_self_test);
    tcase_add_test(st, t_st_roundtrip);
    tcase_add_test(st, t_st_header);
    tcase_add_test(st, t_st_broken);
    tcase_add_test(st, t_st_extra_named_like_node);
    tcase_add_test(st, t_st_handbuilt);
    tcase_add_test(st, t_st_data_aligned);
    tcase_add_test(st, t_st_bad_headers);
    tcase_add_test(st, t_st_write_metadata);
    tcase_add_test(st, t_init_pytorch_state_dict);
    suite_add_tcase(s, st);

    TCase *mt = tcase_create("metrics");
    tcase_add_test(mt, t_metrics_read);
    tcase_add_test(mt, t_metrics_write_read);
    tcase_add_test(mt, t_metrics_unfinished_last_line);
    tcase_add_test(mt, t_metrics_nonfinite_tokens);
    tcase_add_test(mt, t_metrics_errors_printable);
    suite_add_tcase(s, mt);

    int rc = lc_test_run(s);
    rmdir(lc_test_tmpdir());
    return rc;
}

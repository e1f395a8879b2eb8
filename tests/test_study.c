/* The study module (src/study) in this process, on tiny generated data and
 * tiny scales: results files (one row per run), figures (PNG and SVG),
 * resumption (max_runs, finished runs skipped and left untouched), changed
 * parameters refused (force goes on), a failed run recorded while the study
 * goes on (retry_failed reruns it), the MNIST toy with its fixed-gating
 * runs.  A few checks run `layca study` itself for its flags and exit
 * codes. */
#include "lc_test.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "lc_test_idx.h"
#include "lc_plot.h"
#include "lc_study.h"
#include "lc_train.h"

static char layca[1024], dir[1024], model[1200], data[1200], pool[1200], out[200000];

static void write_idx(const char *folder, const char *name_img, const char *name_lab, int n, uint64_t seed)
{
    lc_test_write_idx(folder, name_img, name_lab, n, seed, true);
}

static void setup(void)
{
    if (dir[0]) return;
    lc_rt *rt;
    if (lc_rt_create(&rt, NULL, false) != LC_OK) lc_test_skip_all("no OpenCL device");
    lc_rt_destroy(rt);
    const char *b = getenv("LAYCA_BUILD_ROOT");
    snprintf(layca, sizeof layca, "%s/tools/layca", b ? b : "..");
    snprintf(dir, sizeof dir, "%s/study", lc_test_tmpdir());
    ck_assert_int_eq(lc_mkdirs(dir), LC_OK);
    write_idx(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60, 1);
    write_idx(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 30, 2);
    snprintf(data, sizeof data, "mnist:%s", dir);
    /* an MNIST-like pool (the toy draws its training images from the test set) */
    snprintf(pool, sizeof pool, "%s/pool", dir);
    ck_assert_int_eq(lc_mkdirs(pool), LC_OK);
    write_idx(pool, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 90, 3);
    snprintf(model, sizeof model, "%s/tiny.json", dir);
    FILE *f = fopen(model, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"format\": \"layca-model/1\", \"name\": \"tinymlp\", \"input\": {\"shape\": [16]}, \"classes\": 3,\n"
          " \"defaults\": {\"bias\": true, \"init\": \"he_uniform\", \"bias_init\": \"constant\", \"bias_value\": 0.05},\n"
          " \"nodes\": [{\"name\": \"dense0\", \"op\": \"dense\", \"units\": 8}, {\"name\": \"relu0\", \"op\": \"relu\"},\n"
          "  {\"name\": \"dense1\", \"op\": \"dense\", \"units\": 8}, {\"name\": \"relu1\", \"op\": \"relu\"},\n"
          "  {\"name\": \"dense2\", \"op\": \"dense\", \"units\": 3}],\n"
          " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.1, \"epochs\": 2, \"batch\": 16}}\n", f);
    fclose(f);
    char cache[1100];
    snprintf(cache, sizeof cache, "%s/cache", dir);
    setenv("LAYCA_CACHE_DIR", cache, 1);
}

/* Runs `layca ARGS` (the command line); returns the exit code; `out` gets
 * stdout+stderr. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char args[4096], cmd[6000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", layca, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int st = pclose(p);
    ck_assert_msg(WIFEXITED(st), "'%s' did not exit normally (crash?)", args);
    return WEXITSTATUS(st);
}

/* Creates and runs a study in this process; `out` gets its log, its report
 * and the error message if any.  *usage: the error was the options'. */
static lc_status study(const lc_study_opts *opts, lc_study_summary *sum, bool *usage)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *log = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(log);
    lc_study_opts o = *opts;
    o.log = log;
    lc_study *s = NULL;
    lc_strbuf report = {0};
    bool u = false;
    memset(sum, 0, sizeof *sum);
    lc_error_clear();
    lc_status st = lc_study_create(&o, &s, &u);
    if (st == LC_OK) st = lc_study_run(s, &report, sum);
    fclose(log);
    snprintf(out, sizeof out, "%s%s%s%s", buf ? buf : "", report.s ? report.s : "", st != LC_OK ? "error: " : "",
             st != LC_OK ? lc_error_message() : "");
    free(buf);
    lc_strbuf_free(&report);
    lc_study_destroy(s);
    if (usage) *usage = u;
    return st;
}

/* A study that must finish with every run ok */
static void study_ok(const lc_study_opts *o, lc_study_summary *sum)
{
    lc_status st = study(o, sum, NULL);
    ck_assert_msg(st == LC_OK && sum->failed == 0, "status %d, %d failed:\n%s", st, sum->failed, out);
}

/* The plan (what --dry-run prints) */
static void plan(const lc_study_opts *o)
{
    lc_study *s;
    bool usage;
    ck_assert_msg(lc_study_create(o, &s, &usage) == LC_OK, "%s", lc_error_message());
    lc_strbuf b = {0};
    ck_assert_int_eq(lc_study_plan_text(s, &b), LC_OK);
    snprintf(out, sizeof out, "%s", b.s ? b.s : "");
    lc_strbuf_free(&b);
    lc_study_destroy(s);
}

static char *slurp(const char *path)
{
    uint8_t *d;
    size_t n;
    if (lc_file_read(path, &d, &n) != LC_OK) return NULL;
    char *s = realloc(d, n + 1);
    ck_assert_ptr_nonnull(s);
    s[n] = 0;
    return s;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The rows of results.csv with this status (the header excluded) */
static int csv_rows(const char *study_dir, const char *status)
{
    char p[1600], pat[64];
    snprintf(p, sizeof p, "%s/results.csv", study_dir);
    char *s = slurp(p);
    ck_assert_msg(s != NULL, "%s missing", p);
    ck_assert_msg(!strncmp(s, "id,status,", 10), "%s: header '%.60s'", p, s);
    snprintf(pat, sizeof pat, ",%s,", status ? status : "");
    int n = 0;
    for (char *line = strtok(strchr(s, '\n') + 1, "\n"); line; line = strtok(NULL, "\n"))
        if (!status || strstr(line, pat)) n++;
    free(s);
    return n;
}

static void check_figure(const char *study_dir, const char *name)
{
    char p[1400];
    snprintf(p, sizeof p, "%s/%s.png", study_dir, name);
    uint8_t *d;
    size_t n;
    ck_assert_msg(lc_file_read(p, &d, &n) == LC_OK, "%s missing", p);
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    ck_assert_msg(n > 100 && !memcmp(d, sig, 8), "%s is not a PNG", p);
    free(d);
    snprintf(p, sizeof p, "%s/%s.svg", study_dir, name);
    char *s = slurp(p);
    ck_assert_msg(s != NULL, "%s missing", p);
    ck_assert_msg(strstr(s, "<svg") != NULL, "%s is not an SVG", p);
    free(s);
}

/* alpha-sweep at alphas 0 and 0.2, 4 steps, on the tiny model */
static void sweep_opts(lc_study_opts *o, const char *d, int steps)
{
    lc_study_opts_init(o, LC_STUDY_ALPHA_SWEEP);
    o->model = model;
    o->data = data;
    o->alphas[0] = 0;
    o->alphas[1] = 0.2;
    o->n_alphas = 2;
    o->steps = steps;
    o->scale = 0;
    o->train_subset = 40;
    o->test_subset = 20;
    o->out = d;
}

/* lr-grid at these rates, 3 steps, paper scale */
static void grid_opts(lc_study_opts *o, const char *d, const double *lrs, int n)
{
    lc_study_opts_init(o, LC_STUDY_LR_GRID);
    o->model = model;
    o->data = data;
    memcpy(o->lrs, lrs, (size_t)n * sizeof *lrs);
    o->n_lrs = n;
    o->steps = 3;
    o->scale = 1;
    o->out = d;
}

/* Learning-rate drops for the figures: the end of the last epoch at the
 * higher rate; the rotation figure of a run with named layers is drawn. */
START_TEST(lr_drops_and_rotation_figure)
{
    const char *text =
        "{\"kind\": \"rotation\", \"epoch\": 0.5, \"step\": 4, \"rotation\": {\"fc1\": 0.01, \"fc2\": 0.02}, "
        "\"norm\": {\"fc1\": 3, \"fc2\": 4}}\n"
        "{\"kind\": \"eval\", \"epoch\": 1, \"step\": 8, \"lr\": 0.1, \"train_loss\": 0.5, \"train_acc\": 0.75, "
        "\"test_loss\": 0.5, \"test_acc\": 0.5}\n"
        "{\"kind\": \"eval\", \"epoch\": 2, \"step\": 16, \"lr\": 0.1, \"train_loss\": 0.4, \"train_acc\": 0.8, "
        "\"test_loss\": 0.4, \"test_acc\": 0.6}\n"
        "{\"kind\": \"eval\", \"epoch\": 3, \"step\": 24, \"lr\": 0.02, \"train_loss\": 0.3, \"train_acc\": 0.85, "
        "\"test_loss\": 0.3, \"test_acc\": 0.7}\n"
        "{\"kind\": \"eval\", \"epoch\": 4, \"step\": 32, \"lr\": 0.02, \"train_loss\": 0.3, \"train_acc\": 0.85, "
        "\"test_loss\": 0.3, \"test_acc\": 0.7}\n"
        "{\"kind\": \"eval\", \"epoch\": 5, \"step\": 40, \"lr\": 0.004, \"train_loss\": 0.2, \"train_acc\": 0.9, "
        "\"test_loss\": 0.3, \"test_acc\": 0.7}\n"
        "{\"kind\": \"rotation\", \"epoch\": 5, \"step\": 40, \"rotation\": {\"fc1\": 0.3, \"fc2\": 0.1}, "
        "\"norm\": {\"fc1\": 3, \"fc2\": 4}}\n";
    lc_metrics m;
    ck_assert_msg(lc_metrics_parse(text, strlen(text), "t.jsonl", &m) == LC_OK, "%s", lc_error_message());
    double x[8];
    ck_assert_int_eq(lc_plot_lr_drops(&m, x, 8), 2);
    ck_assert(x[0] == 2 && x[1] == 4);
    ck_assert_int_eq(lc_plot_lr_drops(&m, x, 1), 1);
    char prefix[1024], png[1100];
    snprintf(prefix, sizeof prefix, "%s/rot", lc_test_tmpdir());
    ck_assert_msg(lc_plot_rotation(&m, prefix, "t") == LC_OK, "%s", lc_error_message());
    snprintf(png, sizeof png, "%s.svg", prefix);
    uint8_t *d;
    size_t n;
    ck_assert_int_eq(lc_file_read(png, &d, &n), LC_OK);
    free(d);
    ck_assert_int_gt((long long)n, 1000);
    lc_metrics_deinit(&m);
}
END_TEST

/* The command line: help, flags, usage errors (exit 2), a dry run. */
START_TEST(cli_flags)
{
    setup();
    ck_assert_int_eq(run("study"), 2);
    ck_assert_int_eq(run("help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "study NAME"));
    ck_assert_int_eq(run("study --help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "mnist-toy"));
    ck_assert_int_eq(run("study frobnicate"), 2);
    ck_assert_ptr_nonnull(strstr(out, "unknown study 'frobnicate'"));
    ck_assert_int_eq(run("study alpha-sweep --scale paper"), 2);
    ck_assert_msg(strstr(out, "needs --model and --data") && strstr(out, "e.g. layca study alpha-sweep --model") &&
                  strstr(out, "(see 'layca study --help')"), "%s", out);
    ck_assert_int_eq(run("study weight-decay --scale paper --model %s", model), 2);
    ck_assert_msg(strstr(out, "needs --data"), "%s", out);
    ck_assert_int_eq(run("study mnist-toy --alphas 0"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--alphas does not apply to study mnist-toy"));
    ck_assert_int_eq(run("study alpha-sweep --model %s --data %s --alphas 0,1.5", model, data), 2);
    ck_assert_ptr_nonnull(strstr(out, "--alphas '0,1.5'"));
    ck_assert_int_eq(run("study lr-grid --model %s --data %s --scale huge", model, data), 2);
    ck_assert_int_eq(run("study optimizers --model %s --data %s --optimizers sgd,lbfgs", model, data), 2);
    ck_assert_int_eq(run("study lr-grid --model %s --data %s --bogus 1", model, data), 2);
    ck_assert_ptr_nonnull(strstr(out, "unknown option '--bogus'"));
    ck_assert_int_eq(run("study lr-grid --model %s --data %s --epochs 2 --steps 3", model, data), 2);
    /* failure injection is the library's, not a flag of the shipped command */
    ck_assert_int_eq(run("study lr-grid --model %s --data %s --test-fail-run sgd-lr1", model, data), 2);
    ck_assert_ptr_nonnull(strstr(out, "unknown option '--test-fail-run'"));
    /* --dry-run: the plan on stdout, nothing written */
    char d[1400];
    snprintf(d, sizeof d, "%s/dry-cli", dir);
    ck_assert_int_eq(run("study weight-decay --model %s --data %s --scale paper --dry-run --out %s", model, data, d), 0);
    ck_assert_msg(strstr(out, "sgd-wd0.0005") && strstr(out, "L2 0.0005"), "%s", out);
    ck_assert_msg(!exists(d), "--dry-run wrote %s", d);
}
END_TEST

/* Options the library refuses, naming them */
START_TEST(option_errors)
{
    setup();
    lc_study_opts o;
    lc_study *s;
    bool usage;
    lc_study_opts_init(&o, LC_STUDY_ALPHA_SWEEP);
    o.scale = 1;
    ck_assert_int_eq(lc_study_create(&o, &s, &usage), LC_ERR_INVALID);
    ck_assert_msg(usage && strstr(lc_error_message(), "needs --model and --data"), "%s", lc_error_message());
    ck_assert_ptr_null(s);
    o.model = model;
    o.data = data;
    o.fail_run = "no-such-run";
    ck_assert_int_eq(lc_study_create(&o, &s, &usage), LC_ERR_INVALID);
    ck_assert_msg(usage && strstr(lc_error_message(), "'no-such-run': no run of that id"), "%s", lc_error_message());
    /* a model file that cannot be read is not a usage error */
    o.fail_run = NULL;
    o.model = "/nonexistent/model.json";
    ck_assert_int_ne(lc_study_create(&o, &s, &usage), LC_OK);
    ck_assert(!usage);
    o.kind = LC_STUDY_COUNT;
    ck_assert_int_eq(lc_study_create(&o, &s, &usage), LC_ERR_INVALID);
    ck_assert_int_eq(lc_study_kind_from_name("lr-grid"), LC_STUDY_LR_GRID);
    ck_assert_int_eq(lc_study_kind_from_name("frobnicate"), LC_STUDY_COUNT);
    ck_assert_str_eq(lc_study_kind_name(LC_STUDY_WEIGHT_DECAY), "weight-decay");
}
END_TEST

/* The plans at the paper's scale; nothing written */
START_TEST(plans)
{
    setup();
    char d[1400];
    snprintf(d, sizeof d, "%s/dry", dir);
    lc_study_opts o;
    lc_study_opts_init(&o, LC_STUDY_ALPHA_SWEEP);
    o.model = model;
    o.data = data;
    o.scale = 1;
    o.out = d;
    plan(&o);
    ck_assert_msg(count(out, "-alpha") == 26, "13 alphas x 2 optimizers expected:\n%s", out);
    ck_assert_ptr_nonnull(strstr(out, "layca-alpha-0.80"));
    ck_assert_ptr_nonnull(strstr(out, "sgd-alpha+0.80"));
    o.kind = LC_STUDY_LR_GRID;
    plan(&o);
    ck_assert_msg(count(out, " sgd-lr") == 10, "10 rates expected:\n%s", out);
    ck_assert_ptr_nonnull(strstr(out, "sgd-lr9 "));
    ck_assert_ptr_nonnull(strstr(out, "sgd-lr0.000457247"));
    o.kind = LC_STUDY_OPTIMIZERS;
    plan(&o);
    ck_assert_ptr_nonnull(strstr(out, "adam-l2"));
    ck_assert_ptr_nonnull(strstr(out, "adagrad-layca"));
    ck_assert_msg(count(out, "-layca ") == 5 && count(out, "-l2 ") == 5, "%s", out);
    o.kind = LC_STUDY_WEIGHT_DECAY;
    plan(&o);
    ck_assert_ptr_nonnull(strstr(out, "sgd-wd0.0005"));
    ck_assert_ptr_nonnull(strstr(out, "L2 0.0005"));
    o.kind = LC_STUDY_MNIST_TOY;
    o.data = NULL;
    o.mnist = pool;
    plan(&o);
    /* paper: 10 repetitions x 2 trained layers (dense0, dense1) x 2 modes */
    ck_assert_msg(count(out, "-normal") == 20 && count(out, "-fixed") == 20, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "4000 steps"));
    /* without `mnist`, the caller's default folder */
    o.mnist = NULL;
    o.mnist_default = pool;
    plan(&o);
    ck_assert_msg(count(out, "-normal") == 20, "%s", out);
    ck_assert_msg(!exists(d), "a plan wrote %s", d);
}
END_TEST

START_TEST(sweep_writes_results_and_figures)
{
    setup();
    char d[1400], p[1500];
    snprintf(d, sizeof d, "%s/sweep", dir);
    lc_study_opts o;
    lc_study_summary sum;
    sweep_opts(&o, d, 4);
    study_ok(&o, &sum);
    ck_assert_msg(strstr(out, "QUICK"), "the scale is not announced:\n%s", out);
    ck_assert_msg(sum.runs == 4 && sum.done == 4 && sum.new_runs == 4 && !sum.stopped, "%s", out);
    ck_assert_int_eq(csv_rows(d, NULL), 4);
    ck_assert_int_eq(csv_rows(d, "ok"), 4);
    snprintf(p, sizeof p, "%s/results.json", d);
    char *js = slurp(p);
    ck_assert_ptr_nonnull(js);
    ck_assert_int_eq(count(js, "{\"id\": "), 4);
    ck_assert_ptr_nonnull(strstr(js, "\"table\""));
    free(js);
    snprintf(p, sizeof p, "%s/study.json", d);
    char *sj = slurp(p);
    ck_assert_ptr_nonnull(sj);
    ck_assert_ptr_nonnull(strstr(sj, "\"alphas\": [0, 0.2]"));
    free(sj);
    for (int i = 0; i < 4; i++) {
        static const char *ids[4] = {"layca-alpha+0.00", "sgd-alpha+0.00", "layca-alpha+0.20", "sgd-alpha+0.20"};
        snprintf(p, sizeof p, "%s/runs/%s/metrics.jsonl", d, ids[i]);
        ck_assert_msg(exists(p), "%s missing", p);
        snprintf(p, sizeof p, "%s/runs/%s/result.json", d, ids[i]);
        char *r = slurp(p);
        ck_assert_msg(r && strstr(r, "\"status\": \"ok\""), "%s: %s", p, r ? r : "missing");
        free(r);
    }
    check_figure(d, "accuracy-vs-alpha");
    check_figure(d, "rotation-alpha0-layca");
    check_figure(d, "rotation-alpha0-sgd");
    check_figure(d, "loss-layca-alphas");
    /* the report: the table with both optimizers, no paper numbers for this
     * model, the figures and results files */
    ck_assert_msg(strstr(out, "Layca") && strstr(out, "SGD") && strstr(out, "paper: no numbers"), "%s", out);
    ck_assert_msg(strstr(out, "figure: ") && strstr(out, "/rotation-alpha0-layca.{png,svg}") &&
                  strstr(out, "results: "), "%s", out);

    /* the same for lr-grid (log x figure) */
    snprintf(d, sizeof d, "%s/grid", dir);
    grid_opts(&o, d, (const double[]){0.3, 0.03}, 2);
    study_ok(&o, &sum);
    ck_assert_int_eq(csv_rows(d, "ok"), 2);
    check_figure(d, "accuracy-vs-lr");

    /* optimizers: every optimizer with and without Layca, median rotation */
    snprintf(d, sizeof d, "%s/optim", dir);
    o.kind = LC_STUDY_OPTIMIZERS;
    o.n_lrs = 0;
    snprintf(o.optimizers[0], sizeof o.optimizers[0], "sgd");
    snprintf(o.optimizers[1], sizeof o.optimizers[1], "adam");
    o.n_optimizers = 2;
    o.out = d;
    study_ok(&o, &sum);
    ck_assert_int_eq(csv_rows(d, "ok"), 4);
    ck_assert_msg(strstr(out, "92.53") && strstr(out, "92.72"), "paper numbers missing:\n%s", out);
    check_figure(d, "accuracy-curves");
    check_figure(d, "rotation-adam-layca");
    snprintf(p, sizeof p, "%s/runs/sgd-layca/result.json", d);
    char *r = slurp(p);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(!strstr(r, "\"rotation_median\": null"), "%s", r);
    free(r);
}
END_TEST

static void read_result(const char *study_dir, const char *id, char **text, struct timespec *mtime)
{
    char p[1500];
    snprintf(p, sizeof p, "%s/runs/%s/result.json", study_dir, id);
    struct stat st;
    ck_assert_msg(stat(p, &st) == 0, "%s missing", p);
    *mtime = st.st_mtim;
    *text = slurp(p);
    ck_assert_ptr_nonnull(*text);
}

/* A second start with the same options skips the finished runs, leaving
 * their files untouched. */
static void resume_same(const char *d)
{
    lc_study_opts o;
    lc_study_summary sum;
    sweep_opts(&o, d, 4);
    o.max_runs = 2;
    study_ok(&o, &sum);
    ck_assert_msg(sum.stopped && sum.new_runs == 2 && strstr(out, "stopped after 2 new runs"), "%s", out);
    ck_assert_int_eq(csv_rows(d, NULL), 2);
    char *t0, *t1, p[1500];
    struct timespec m0, m1;
    read_result(d, "layca-alpha+0.00", &t0, &m0);
    read_result(d, "sgd-alpha+0.00", &t1, &m1);
    snprintf(p, sizeof p, "%s/runs/layca-alpha+0.20/result.json", d);
    ck_assert_msg(!exists(p), "a third run ran under max_runs 2");

    o.max_runs = 0;
    study_ok(&o, &sum);
    ck_assert_msg(strstr(out, "skipping finished run layca-alpha+0.00") && strstr(out, "skipping finished run sgd-alpha+0.00"),
                  "%s", out);
    ck_assert_msg(strstr(out, "[3/4] layca-alpha+0.20") && strstr(out, "[4/4] sgd-alpha+0.20"), "%s", out);
    ck_assert_msg(!strstr(out, "[1/4]") && !strstr(out, "[2/4]"), "a finished run ran again:\n%s", out);
    ck_assert_int_eq(csv_rows(d, "ok"), 4);
    char *u0, *u1;
    struct timespec n0, n1;
    read_result(d, "layca-alpha+0.00", &u0, &n0);
    read_result(d, "sgd-alpha+0.00", &u1, &n1);
    ck_assert_str_eq(t0, u0);
    ck_assert_str_eq(t1, u1);
    ck_assert(m0.tv_sec == n0.tv_sec && m0.tv_nsec == n0.tv_nsec);
    ck_assert(m1.tv_sec == n1.tv_sec && m1.tv_nsec == n1.tv_nsec);
    free(t0); free(t1); free(u0); free(u1);

    /* a third start does nothing new */
    study_ok(&o, &sum);
    ck_assert_msg(sum.new_runs == 0 && count(out, "skipping finished run") == 4 && strstr(out, "0 new runs"), "%s", out);
}

START_TEST(resume_and_changed_parameters)
{
    setup();
    char d[1400], p[1500];
    snprintf(d, sizeof d, "%s/resume", dir);
    resume_same(d);

    /* other parameters: refused, naming what changed */
    lc_study_opts o;
    lc_study_summary sum;
    sweep_opts(&o, d, 5);
    bool usage;
    ck_assert_int_eq(study(&o, &sum, &usage), LC_ERR_INVALID);
    ck_assert_msg(!usage && strstr(out, "other parameters") && strstr(out, "steps 5 (stored: 4)") && strstr(out, "--force"),
                  "%s", out);
    /* the refused start touched nothing */
    ck_assert_int_eq(csv_rows(d, "ok"), 4);
    /* force: the runs whose settings changed run again (all of them here) */
    o.force = true;
    study_ok(&o, &sum);
    ck_assert_msg(!strstr(out, "skipping finished") && count(out, "other settings; running it again") == 4, "%s", out);
    snprintf(p, sizeof p, "%s/runs/layca-alpha+0.00/result.json", d);
    char *r = slurp(p);
    ck_assert_msg(r && strstr(r, "\"steps\": 5"), "%s", r ? r : "missing");
    free(r);
    /* force with one more alpha: only the new runs run */
    o.alphas[2] = 0.4;
    o.n_alphas = 3;
    study_ok(&o, &sum);
    ck_assert_msg(count(out, "skipping finished run") == 4 && strstr(out, "[5/6] layca-alpha+0.40") && sum.new_runs == 2,
                  "%s", out);
    ck_assert_int_eq(csv_rows(d, "ok"), 6);
}
END_TEST

/* A run that fails (failure injected) is recorded; the others go on. */
START_TEST(failed_run_recorded)
{
    setup();
    char d[1400];
    snprintf(d, sizeof d, "%s/fail", dir);
    lc_study_opts o;
    lc_study_summary sum;
    grid_opts(&o, d, (const double[]){1, 0.1, 0.01}, 3);
    o.fail_run = "sgd-lr0.1";
    ck_assert_int_eq(study(&o, &sum, NULL), LC_OK);
    ck_assert_msg(sum.failed == 1 && sum.failed_now == 1 && sum.done == 3, "%s", out);
    ck_assert_msg(strstr(out, "sgd-lr0.1: FAILED") && strstr(out, "[3/3] sgd-lr0.01"), "%s", out);
    ck_assert_int_eq(csv_rows(d, NULL), 3);
    ck_assert_int_eq(csv_rows(d, "ok"), 2);
    ck_assert_int_eq(csv_rows(d, "error"), 1);
    char p[1500];
    snprintf(p, sizeof p, "%s/runs/sgd-lr0.1/result.json", d);
    char *r = slurp(p);
    ck_assert_msg(r && strstr(r, "\"status\": \"error\"") && strstr(r, "no-such-data"), "%s", r ? r : "missing");
    free(r);
    /* the table and figure are made from the runs that finished */
    check_figure(d, "accuracy-vs-lr");
    /* a restart leaves it alone... */
    o.fail_run = NULL;
    ck_assert_int_eq(study(&o, &sum, NULL), LC_OK);
    ck_assert_msg(sum.failed == 1 && sum.failed_now == 0 && strstr(out, "skipping failed run sgd-lr0.1") &&
                  count(out, "skipping finished run") == 2, "%s", out);
    /* ...and the command line says so with exit code 1 */
    ck_assert_int_eq(run("study lr-grid --model %s --data %s --lrs 1,0.1,0.01 --steps 3 --scale paper --out %s", model,
                         data, d), 1);
    ck_assert_msg(strstr(out, "1 run failed (0 in this invocation)"), "%s", out);
    /* ...unless retry_failed */
    o.retry_failed = true;
    study_ok(&o, &sum);
    ck_assert_msg(strstr(out, "[2/3] sgd-lr0.1") && count(out, "skipping finished run") == 2, "%s", out);
    ck_assert_int_eq(csv_rows(d, "ok"), 3);
}
END_TEST

START_TEST(mnist_toy)
{
    setup();
    char d[1400];
    snprintf(d, sizeof d, "%s/toy", dir);
    lc_study_opts o;
    lc_study_summary sum;
    lc_study_opts_init(&o, LC_STUDY_MNIST_TOY);
    o.model = model;
    o.mnist = pool;
    o.per_class = 5;
    o.steps = 3;
    o.reps = 2;
    o.out = d;
    study_ok(&o, &sum);
    /* 2 repetitions x 2 layers (dense0, dense1; dense2 is the classifier) x 2 modes */
    ck_assert_int_eq(csv_rows(d, NULL), 8);
    ck_assert_msg(csv_rows(d, "ok") == 8, "every run, fixed gating included, must train:\n%s", out);
    ck_assert_msg(strstr(out, "layer") && strstr(out, "normal") && strstr(out, "fixed") && strstr(out, "std"), "%s", out);
    check_figure(d, "accuracy-by-layer");
    /* repetition r: seed r for the data draw and the weights */
    char p[1500];
    snprintf(p, sizeof p, "%s/runs/r1-dense0-normal/result.json", d);
    char *r = slurp(p);
    ck_assert_msg(r && strstr(r, "seed=1 ") && strstr(r, "train_only=dense0") && strstr(r, "per_class=5"), "%s",
                  r ? r : "missing");
    free(r);
    snprintf(p, sizeof p, "%s/runs/r0-dense1-fixed/result.json", d);
    r = slurp(p);
    ck_assert_msg(r && strstr(r, "fixed_gating=1") && strstr(r, "seed=0 ") && strstr(r, "\"status\": \"ok\""), "%s",
                  r ? r : "missing");
    free(r);
    /* a second start skips every finished run */
    study_ok(&o, &sum);
    ck_assert_int_eq(count(out, "skipping finished run"), 8);
    /* rerun: the finished runs whose id contains the text run again */
    o.rerun = "r1-dense0";
    study_ok(&o, &sum);
    ck_assert_msg(strstr(out, "running r1-dense0-normal again") && strstr(out, "[5/8] r1-dense0-normal") &&
                  !strstr(out, "skipping finished run r1-dense0-normal"), "%s", out);
    ck_assert_int_eq(count(out, "skipping finished run"), 6);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("study");
    TCase *tc = tcase_create("study");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, cli_flags);
    tcase_add_test(tc, lr_drops_and_rotation_figure);
    tcase_add_test(tc, option_errors);
    tcase_add_test(tc, plans);
    tcase_add_test(tc, sweep_writes_results_and_figures);
    tcase_add_test(tc, resume_and_changed_parameters);
    tcase_add_test(tc, failed_run_recorded);
    tcase_add_test(tc, mnist_toy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lc_test_run(suite()); }

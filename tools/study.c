/* `layca study NAME`: the Layca paper's studies as commands (reference
 * sections 3, 5 and 6).  Each study is a list of runs; each run is one
 * lc_train_run in this process with its own folder OUT/runs/<id>/ holding
 * metrics.jsonl and result.json.  result.json is written atomically once
 * the run is over, so a run with one is finished and skipped on restart.
 * After every run OUT/results.csv and OUT/results.json are rewritten from
 * all finished runs; at the end the table goes to stdout (and
 * OUT/table.txt) and the figures to OUT/ as PNG and SVG.
 *
 * The study's parameters are kept in OUT/study.json; a restart with other
 * parameters is refused unless --force.  Each result.json also holds its
 * run's full settings ("config"), so under --force only the runs whose
 * settings changed are rerun. */
#include "cli_parse.h"
#include "study.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "lc_metrics.h"
#include "lc_train.h"
#include "plot.h"

#define EXIT_USAGE 2
#define MAX_LIST 32
#define MAX_RUNS 512

static const char *study_help =
    "usage: layca study NAME [options]\n"
    "\n"
    "The Layca paper's studies as commands.  A study is a list of training runs, each in its own\n"
    "folder OUT/runs/<id>/ (metrics.jsonl, result.json), summarised in a table beside the paper's\n"
    "numbers (stdout, OUT/table.txt, OUT/results.csv, OUT/results.json) and figures (OUT/*.png, *.svg).\n"
    "A run with a result.json is finished and skipped, so a stopped study restarts where it stopped.\n"
    "\n"
    "studies:\n"
    "  mnist-toy     section 3: models/mlp11.json, each hidden layer dense0..dense9 trained alone,\n"
    "                normally and with fixed gating (feedback improvement prevented), plain SGD lr 10,\n"
    "                full batch, R repetitions (repetition r: 10 images per class drawn with seed r,\n"
    "                initial weights with seed r)\n"
    "  alpha-sweep   section 5: the 13 alpha values x {Layca (rho 3^-3), SGD (lr 1)}\n"
    "  lr-grid       SGD at alpha 0 for lr = 3^2 .. 3^-7\n"
    "  optimizers    section 6.2: SGD, SGD_AMom, Adam, RMSprop, Adagrad without Layca (+ L2 5e-4) and\n"
    "                with Layca (no L2); the paper's rates and schedules\n"
    "  weight-decay  section 6.3: SGD with L2 5e-4 and without\n"
    "  alpha-sweep, lr-grid, optimizers and weight-decay need --model and --data (the paper: models/\n"
    "  cifar10_vgg.json, resnet32_cifar100.json, tiny_imagenet_cnn.json for the first two,\n"
    "  models/wilson_vgg.json for the last two); --scale quick without --model takes models/small_cnn.json.\n"
    "\n"
    "common options:\n"
    "  --out DIR            the study's folder (default runs/study-NAME)\n"
    "  --scale quick|paper  quick (the default on a CPU device): fewer steps or epochs, data subsets,\n"
    "                       fewer repetitions, all printed; paper (the default on other devices): the\n"
    "                       paper's settings\n"
    "  --device SEL         P:D index or a name substring\n"
    "  --device-only        no host shortcuts: a CPU device runs exactly what a GPU runs\n"
    "  --max-runs N         stop after N new runs (run the same command again to go on)\n"
    "  --dry-run            print the runs (and which are finished) and exit\n"
    "  --retry-failed       rerun the runs that ended in an error\n"
    "  --rerun TEXT         rerun the finished runs whose id contains TEXT (e.g. 'fixed', 'alpha+0.20')\n"
    "  --force              go on in a folder whose study.json holds other parameters (the runs whose\n"
    "                       settings changed are rerun)\n"
    "  --verbose            the trainer's own progress lines\n"
    "settings (override the study's and the model file's):\n"
    "  --model M.json  --data SPEC  --epochs N  --steps N  --batch N  --seed N  --eval-every N\n"
    "  --schedule M1,M2,..:F | --no-schedule    --flip | --no-flip\n"
    "  --per-class N  --train-subset N  --test-subset N   (0: all examples)\n"
    "  mnist-toy:    --mnist DIR (the folder of t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz];\n"
    "                default $LAYCA_SHARED/data/mnist, else ../shared/data/mnist), --reps R, --lr F\n"
    "  alpha-sweep:  --lr-layca F (default 3^-3), --lr-sgd F (default 1, the paper's CIFAR-10 best)\n"
    "  optimizers:   --optimizers LIST (default sgd,sgd_amom,adam,rmsprop,adagrad)\n"
    "  weight-decay: --lr F (default 0.5)\n"
    "\n"
    "Exit code: 0 done or stopped by --max-runs, 1 a run failed (recorded;\n"
    "the others went on), 2 a usage error.\n";

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

typedef struct sb {
    char *p;
    size_t n, cap;
    bool oom;
} sb;

static void sb_printf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) { b->oom = true; return; }
        if (b->p && (size_t)k < room) { b->n += (size_t)k; return; }
        size_t nc = (b->cap ? b->cap * 2 : 4096) + (size_t)k + 1;
        char *q = realloc(b->p, nc);
        if (!q) { b->oom = true; return; }
        b->p = q;
        b->cap = nc;
    }
}

static void sb_free(sb *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void sb_json_str(sb *b, const char *s)
{
    sb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') sb_printf(b, "\\%c", *p);
        else if (*p == '\n') sb_printf(b, "\\n");
        else if (*p == '\t') sb_printf(b, "\\t");
        else if (*p < 0x20) sb_printf(b, "\\u%04x", *p);
        else sb_printf(b, "%c", *p);
    }
    sb_printf(b, "\"");
}

static void sb_json_num(sb *b, double v)
{
    if (isfinite(v)) sb_printf(b, "%.9g", v);
    else sb_printf(b, "null");
}

static void sb_csv_str(sb *b, const char *s)
{
    if (!s || !*s) return;
    if (!strpbrk(s, ",\"\n")) { sb_printf(b, "%s", s); return; }
    sb_printf(b, "\"");
    for (; *s; s++) {
        if (*s == '"') sb_printf(b, "\"\"");
        else if (*s == '\n') sb_printf(b, " ");
        else sb_printf(b, "%c", *s);
    }
    sb_printf(b, "\"");
}

/* The value after "key": in a flat JSON object written by this file. */
static const char *json_value(const char *text, const char *key)
{
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(text, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static double json_num(const char *text, const char *key)
{
    const char *p = json_value(text, key);
    if (!p || !strncmp(p, "null", 4)) return NAN;
    char *end;
    double v = strtod(p, &end);
    return end == p ? NAN : v;
}

static bool json_str(const char *text, const char *key, char *out, size_t len)
{
    const char *p = json_value(text, key);
    if (!out || len == 0) return false;
    out[0] = 0;
    if (!p || *p != '"') return false;
    size_t o = 0;
    for (p++; *p && *p != '"'; p++) {
        char c = *p;
        if (c == '\\' && p[1]) {
            p++;
            c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
            if (*p == 'u' && p[1] && p[2] && p[3] && p[4]) {
                char h[5] = {p[1], p[2], p[3], p[4], 0};
                c = (char)strtol(h, NULL, 16);
                p += 4;
            }
        }
        if (o + 1 < len) out[o++] = c;
    }
    out[o] = 0;
    return *p == '"';
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}


/* "a,b,c" -> numbers */
static bool parse_list(const char *s, double *out, int max, int *n)
{
    char buf[1024];
    if (strlen(s) >= sizeof buf) return false;
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (*n >= max || !lc_parse_double(tok, &out[*n])) return false;
        (*n)++;
    }
    return *n > 0;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "layca: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'layca study --help')\n");
    va_end(ap);
    return EXIT_USAGE;
}

static int fail(void)
{
    fprintf(stderr, "layca: error: %s\n", lc_error_message());
    return 1;
}

static const char *fmt_g(char *buf, size_t len, double v)
{
    if (isnan(v)) snprintf(buf, len, "-");
    else snprintf(buf, len, "%.6g", v);
    return buf;
}

static const char *fmt_pct(char *buf, size_t len, double frac)
{
    if (!isfinite(frac)) snprintf(buf, len, "-");
    else snprintf(buf, len, "%.2f", 100 * frac);
    return buf;
}

static double median_of(const double *v, int n, double *lo, double *hi)
{
    *lo = *hi = NAN;
    if (n <= 0) return NAN;
    double *c = malloc((size_t)n * sizeof *c);
    if (!c) return NAN;
    memcpy(c, v, (size_t)n * sizeof *c);
    for (int i = 1; i < n; i++) /* insertion sort: a few dozen layers */
        for (int j = i; j > 0 && c[j - 1] > c[j]; j--) { double t = c[j]; c[j] = c[j - 1]; c[j - 1] = t; }
    *lo = c[0];
    *hi = c[n - 1];
    double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

/* ------------------------------------------------------------------ */
/* the paper's numbers (reference section 6)                           */

static const double paper_alphas[13] = {-0.8, -0.6, -0.4, -0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8};

typedef enum { TASK_NONE, TASK_C10, TASK_C100, TASK_TINY, TASK_WILSON, TASK_MNIST } task_kind;
static const char *task_title[] = {"", "CIFAR-10 VGG (C10-CNN1)", "CIFAR-100 ResNet-32 (C100-resnet)",
                                   "Tiny ImageNet CNN (tiny-CNN)", "Wilson et al. VGG on CIFAR-10 (C10-CNN2)",
                                   "MNIST toy (mlp11)"};

/* section 6.1 (Figure 2 data); negative = marked * (final train accuracy
 * < 98%, left out of the paper's figure) */
static const double paper_alpha_acc[4][2][13] = {
    [TASK_C10] = {{79.79, 83.49, 85.14, 84.66, 85.03, 87.12, 89.18, 89.43, 88.63, 87.88, 85.05, 70.36, 51.80},
                  {77.33, 76.75, 77.92, 79.49, 79.00, 80.54, 80.32, 82.57, 83.75, 83.44, 83.61, 80.21, 66.03}},
    [TASK_C100] = {{-2.95, -44.06, 47.50, 47.26, 49.31, 52.19, 54.98, 54.28, 51.41, 46.92, 40.70, 31.37, -23.04},
                   {-1.00, -9.68, 43.68, 43.58, 45.49, 43.92, 43.86, 45.76, 45.79, 44.73, 44.08, 37.19, -26.64}},
    [TASK_TINY] = {{-16.78, 40.31, 41.02, 41.77, 41.06, 44.50, 50.75, 49.34, 45.54, 42.58, 37.81, 28.29, 20.22},
                   {-14.34, 37.65, 39.84, 41.55, 41.70, 42.47, 43.01, 42.03, 41.38, 40.18, 38.35, 31.78, 13.02}},
};
/* section 6.2: SGD at alpha 0, lr = 3^-7 .. 3^2 */
static const double paper_lr_acc[4][10] = {
    [TASK_C10] = {58.6, 60.4, 64.1, 70.2, 75.4, 80.4, 80.4, 81.5, 75.2, 69.2},
    [TASK_C100] = {-2.9, -5.5, -33.9, -36.7, 40.3, 43.6, 44.0, 43.6, -1.0, -1.0},
    [TASK_TINY] = {-7.7, -13.8, 29.3, 29.5, 35.7, 40.8, 42.5, 39.1, 30.2, 28.7},
};
/* section 6.3 */
static const double paper_toy[2][10] = {{74.47, 75.98, 74.93, 73.12, 70.60, 68.27, 65.65, 63.08, 60.45, 57.52},
                                        {46.39, 45.36, 45.08, 45.38, 45.75, 46.24, 48.66, 49.69, 51.45, 57.52}};

/* section 6.4 (Wilson VGG, 250 epochs) */
typedef struct optim_paper {
    const char *name;       /* trainer name */
    const char *label;
    double lr, rho;         /* without Layca (+ L2 5e-4); Layca's rotation rate */
    double acc_plain, acc_layca, cos_plain; /* %, %, median final cosine distance (NaN: not given) */
} optim_paper;
static const optim_paper paper_optims[5] = {
    {"sgd", "SGD", 0.5, 1.0 / 27, 92.53, 92.33, 0.997},
    {"sgd_amom", "SGD_AMom", 0.5, 1.0 / 243, 92.19, 92.65, NAN},
    {"adam", "Adam", 3e-4, 1.0 / 243, 91.43, 92.72, 0.938},
    {"rmsprop", "RMSprop", 3e-4, 1.0 / 27, 91.19, 92.29, 0.959},
    {"adagrad", "Adagrad", 0.01, 1.0 / 27, 88.97, 92.54, 0.896},
};

static void fmt_paper(char *buf, size_t len, double v)
{
    if (isnan(v)) snprintf(buf, len, "-");
    else if (v < 0) snprintf(buf, len, "%.2f*", -v);
    else snprintf(buf, len, "%.2f", v);
}

/* ------------------------------------------------------------------ */
/* studies, runs                                                        */

typedef enum { S_MNIST, S_ALPHA, S_LRGRID, S_OPTIM, S_WD, S_COUNT } study_kind;
static const char *study_names[S_COUNT] = {"mnist-toy", "alpha-sweep", "lr-grid", "optimizers", "weight-decay"};

typedef enum { R_PENDING, R_OK, R_ERROR, R_UNSUPPORTED } run_status;
static const char *status_names[] = {"pending", "ok", "error", "unsupported"};

typedef struct schedule {
    int n;
    int ms[LC_MAX_MILESTONES];
    double factor;
} schedule;

typedef struct run {
    char id[64];
    /* settings */
    char optimizer[16];
    int layca;
    double lr, momentum, alpha, weight_decay; /* momentum NaN: the trainer's default */
    int epochs;
    int64_t steps;                            /* > 0: steps instead of epochs */
    int batch;
    schedule sched;
    int64_t seed;
    char train_only[32];
    bool fixed;
    bool fail;                                /* --test-fail-run */
    char config[4096];
    /* labels */
    int rep, layer;
    char group[24];                           /* mnist mode, alpha-sweep optimizer, optimizer name */
    double x;                                 /* alpha, lr, weight decay */
    int paper_idx;                            /* index into the paper's list, -1 none */
    /* outcome */
    run_status status;
    bool loaded;                              /* finished in an earlier invocation */
    char message[1024];
    double test_acc, test_loss, train_acc, train_loss, train_s, wall_s;
    double steps_done, epochs_done;
    double rot_med, rot_min, rot_max;
    int n_layers;
} run;

typedef struct study {
    study_kind kind;
    const char *name;
    /* options */
    char out[1024];
    const char *device;
    bool device_only;          /* --device-only: no host shortcuts */
    int scale;                 /* -1 unset, 0 quick, 1 paper */
    long long max_runs;        /* 0 = no limit */
    bool dry_run, retry_failed, force, verbose;
    const char *model_opt, *data_opt, *mnist_opt, *fail_run, *rerun;
    int epochs, batch, reps, eval_every, per_class; /* -1 unset */
    int64_t steps, seed, train_subset, test_subset; /* -1 unset */
    double lr, lr_layca, lr_sgd;                    /* NaN unset */
    int sched_set;             /* -1 unset, 1 --schedule, 0 --no-schedule */
    schedule sched_opt;
    int flip;                  /* -1 unset */
    double alphas[MAX_LIST], lrs[MAX_LIST];
    int n_alphas, n_lrs;       /* 0 unset */
    char optims[5][16];
    int n_optims;
    /* resolved */
    bool quick;
    char model[1024], data[2400];
    char model_name[64];
    task_kind task;
    lc_train_spec mspec;       /* the model file's train section with the defaults */
    int n_layers_toy;          /* mnist-toy: hidden layers dense0.. */
    char notes[12][400];
    int n_notes;
    run *runs;
    int n_runs;
    sb params;                 /* study.json */
} study;

static void note(study *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(study *S, const char *fmt, ...)
{
    if (S->n_notes >= (int)LC_COUNTOF(S->notes)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(S->notes[S->n_notes++], sizeof S->notes[0], fmt, ap);
    va_end(ap);
}

static void sched_str(const schedule *s, char *buf, size_t len)
{
    if (s->n <= 0) { snprintf(buf, len, "none"); return; }
    size_t o = 0;
    for (int i = 0; i < s->n && o < len; i++) o += (size_t)snprintf(buf + o, len - o, "%s%d", i ? "," : "", s->ms[i]);
    if (o < len) snprintf(buf + o, len - o, ":%g", s->factor);
}

/* milestones of a schedule meant for `from` epochs, moved to `to` epochs
 * proportionally (the ones that fall on epoch 0, past the end or onto an
 * earlier one are dropped) */
static schedule sched_scale(const schedule *s, int from, int to)
{
    schedule r = {.n = 0, .factor = s->factor};
    if (from <= 0 || from == to) return *s;
    for (int i = 0; i < s->n; i++) {
        int m = (int)lround((double)s->ms[i] * to / from);
        if (m <= 0 || m >= to || (r.n && m <= r.ms[r.n - 1])) continue;
        r.ms[r.n++] = m;
    }
    return r;
}

static run *add_run(study *S, const char *id)
{
    if (S->n_runs >= MAX_RUNS) return NULL;
    run *r = &S->runs[S->n_runs++];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->optimizer, sizeof r->optimizer, "sgd");
    r->momentum = 0;
    r->epochs = S->epochs;
    r->steps = S->steps;
    r->batch = S->batch;
    r->seed = S->seed;
    r->paper_idx = -1;
    r->x = NAN;
    r->test_acc = r->test_loss = r->train_acc = r->train_loss = r->train_s = r->wall_s = NAN;
    r->steps_done = r->epochs_done = r->rot_med = r->rot_min = r->rot_max = NAN;
    if (S->fail_run && !strcmp(S->fail_run, id)) r->fail = true;
    return r;
}

static void run_config(const study *S, run *r)
{
    char sc[256], mom[32];
    sched_str(&r->sched, sc, sizeof sc);
    if (isnan(r->momentum)) snprintf(mom, sizeof mom, "default");
    else snprintf(mom, sizeof mom, "%.9g", r->momentum);
    snprintf(r->config, sizeof r->config,
             "model=%s data=%s optimizer=%s layca=%d lr=%.9g momentum=%s alpha=%.9g weight_decay=%.9g epochs=%d "
             "steps=%lld batch=%d schedule=%s seed=%lld per_class=%d train_subset=%lld test_subset=%lld "
             "train_only=%s fixed_gating=%d flip=%d eval_every=%d",
             S->model, S->data, r->optimizer, r->layca, r->lr, mom, r->alpha, r->weight_decay, r->epochs,
             (long long)r->steps, r->batch, sc, (long long)r->seed, S->per_class, (long long)S->train_subset,
             (long long)S->test_subset, r->train_only[0] ? r->train_only : "-", r->fixed, S->flip, S->eval_every);
}

/* ------------------------------------------------------------------ */
/* options                                                              */

#define M_TOY (1u << S_MNIST)
#define M_CNN ((1u << S_ALPHA) | (1u << S_LRGRID) | (1u << S_OPTIM) | (1u << S_WD))
#define M_ALL (M_TOY | M_CNN)

static bool allowed(const study *S, unsigned mask) { return (mask >> S->kind) & 1u; }

static int parse_schedule_opt(const char *s, schedule *out)
{
    const char *colon = strrchr(s, ':');
    double f;
    if (!colon || !lc_parse_double(colon + 1, &f) || f <= 0)
        return usage_error("--schedule '%s': expected MILESTONES:FACTOR, e.g. 80,90,97:0.2", s);
    char buf[512];
    size_t len = (size_t)(colon - s);
    if (len >= sizeof buf) return usage_error("--schedule '%s': too long", s);
    memcpy(buf, s, len);
    buf[len] = 0;
    out->n = 0;
    out->factor = f;
    int last = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        long long v;
        if (!lc_parse_long(tok, 1, 1000000, &v) || v <= last || out->n >= LC_MAX_MILESTONES)
            return usage_error("--schedule '%s': milestones must be increasing positive epoch numbers", s);
        out->ms[out->n++] = last = (int)v;
    }
    return 0;
}

static int parse_options(study *S, int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(study_help, stdout); return -1; }
        if (!strcmp(a, "--dry-run")) { S->dry_run = true; continue; }
        if (!strcmp(a, "--retry-failed")) { S->retry_failed = true; continue; }
        if (!strcmp(a, "--force")) { S->force = true; continue; }
        if (!strcmp(a, "--verbose")) { S->verbose = true; continue; }
        if (!strcmp(a, "--device-only")) { S->device_only = true; continue; }
        if (!strcmp(a, "--no-schedule") && allowed(S, M_CNN)) { S->sched_set = 0; continue; }
        if (!strcmp(a, "--flip") && allowed(S, M_CNN)) { S->flip = 1; continue; }
        if (!strcmp(a, "--no-flip") && allowed(S, M_CNN)) { S->flip = 0; continue; }
        if (a[0] != '-') return usage_error("unexpected argument '%s' (one study at a time)", a);
        unsigned mask = 0;
        static const struct { const char *name; unsigned mask; } opts[] = {
            {"--out", M_ALL}, {"--scale", M_ALL}, {"--rerun", M_ALL}, {"--device", M_ALL}, {"--max-runs", M_ALL},
            {"--model", M_ALL}, {"--data", M_ALL}, {"--steps", M_ALL}, {"--batch", M_ALL},
            {"--seed", M_ALL}, {"--eval-every", M_ALL}, {"--per-class", M_ALL}, {"--train-subset", M_ALL},
            {"--test-subset", M_ALL}, {"--test-fail-run", M_ALL}, {"--mnist", M_TOY}, {"--reps", M_TOY},
            {"--lr", M_TOY | (1u << S_WD)}, {"--epochs", M_CNN}, {"--schedule", M_CNN},
            {"--lr-layca", 1u << S_ALPHA}, {"--lr-sgd", 1u << S_ALPHA}, {"--sgd-lr", 1u << S_ALPHA},
            {"--alphas", 1u << S_ALPHA}, {"--lrs", 1u << S_LRGRID}, {"--optimizers", 1u << S_OPTIM},
            {"--no-schedule", M_CNN}, {"--flip", M_CNN}, {"--no-flip", M_CNN},
        };
        bool known = false;
        for (size_t k = 0; k < LC_COUNTOF(opts); k++)
            if (!strcmp(a, opts[k].name)) { known = true; mask = opts[k].mask; }
        if (!known) return usage_error("unknown option '%s' for study %s", a, S->name);
        if (!allowed(S, mask)) return usage_error("%s does not apply to study %s", a, S->name);
        if (i + 1 >= argc) return usage_error("%s needs a value", a);
        const char *v = argv[++i];
        double d;
        long long n;
        if (!strcmp(a, "--out")) {
            if (!*v || strlen(v) > 900) return usage_error("--out '%s': expected a folder path", v);
            snprintf(S->out, sizeof S->out, "%s", v);
        } else if (!strcmp(a, "--scale")) {
            if (!strcmp(v, "quick")) S->scale = 0;
            else if (!strcmp(v, "paper")) S->scale = 1;
            else return usage_error("--scale '%s': expected quick or paper", v);
        } else if (!strcmp(a, "--device")) S->device = v;
        else if (!strcmp(a, "--max-runs")) {
            if (!lc_parse_long(v, 1, 1000000, &n)) return usage_error("--max-runs '%s': expected a positive integer", v);
            S->max_runs = n;
        } else if (!strcmp(a, "--model")) S->model_opt = v;
        else if (!strcmp(a, "--data")) S->data_opt = v;
        else if (!strcmp(a, "--mnist")) S->mnist_opt = v;
        else if (!strcmp(a, "--test-fail-run")) S->fail_run = v;
        else if (!strcmp(a, "--rerun")) {
            if (!*v) return usage_error("%s", "--rerun needs a non-empty part of a run id");
            S->rerun = v;
        }
        else if (!strcmp(a, "--steps")) {
            if (!lc_parse_long(v, 1, 2000000000LL, &n)) return usage_error("--steps '%s': expected a positive integer", v);
            S->steps = n;
        } else if (!strcmp(a, "--epochs")) {
            if (!lc_parse_long(v, 1, 1000000, &n)) return usage_error("--epochs '%s': expected a positive integer", v);
            S->epochs = (int)n;
        } else if (!strcmp(a, "--batch")) {
            if (!lc_parse_long(v, 1, 1 << 20, &n)) return usage_error("--batch '%s': expected a positive integer", v);
            S->batch = (int)n;
        } else if (!strcmp(a, "--seed")) {
            if (!lc_parse_long(v, 0, 2000000000LL, &n)) return usage_error("--seed '%s': expected a non-negative integer", v);
            S->seed = n;
        } else if (!strcmp(a, "--eval-every")) {
            if (!lc_parse_long(v, 1, 1000000, &n)) return usage_error("--eval-every '%s': expected a positive integer", v);
            S->eval_every = (int)n;
        } else if (!strcmp(a, "--reps")) {
            if (!lc_parse_long(v, 1, 1000, &n)) return usage_error("--reps '%s': expected a positive integer", v);
            S->reps = (int)n;
        } else if (!strcmp(a, "--per-class")) {
            if (!lc_parse_long(v, 0, 1 << 30, &n)) return usage_error("--per-class '%s': expected a non-negative integer", v);
            S->per_class = (int)n;
        } else if (!strcmp(a, "--train-subset")) {
            if (!lc_parse_long(v, 0, 1LL << 40, &n)) return usage_error("--train-subset '%s': expected a non-negative integer", v);
            S->train_subset = n;
        } else if (!strcmp(a, "--test-subset")) {
            if (!lc_parse_long(v, 0, 1LL << 40, &n)) return usage_error("--test-subset '%s': expected a non-negative integer", v);
            S->test_subset = n;
        } else if (!strcmp(a, "--lr") || !strcmp(a, "--lr-layca") || !strcmp(a, "--lr-sgd") || !strcmp(a, "--sgd-lr")) {
            if (!lc_parse_double(v, &d) || d <= 0) return usage_error("%s '%s': expected a positive number", a, v);
            if (!strcmp(a, "--lr")) S->lr = d;
            else if (!strcmp(a, "--lr-layca")) S->lr_layca = d;
            else S->lr_sgd = d;
        } else if (!strcmp(a, "--schedule")) {
            int rc = parse_schedule_opt(v, &S->sched_opt);
            if (rc) return rc;
            S->sched_set = 1;
        } else if (!strcmp(a, "--alphas")) {
            if (!parse_list(v, S->alphas, MAX_LIST, &S->n_alphas))
                return usage_error("--alphas '%s': expected a comma-separated list of numbers in (-1, 1)", v);
            for (int k = 0; k < S->n_alphas; k++)
                if (S->alphas[k] <= -1 || S->alphas[k] >= 1)
                    return usage_error("--alphas '%s': expected a comma-separated list of numbers in (-1, 1)", v);
        } else if (!strcmp(a, "--lrs")) {
            if (!parse_list(v, S->lrs, MAX_LIST, &S->n_lrs))
                return usage_error("--lrs '%s': expected a comma-separated list of positive numbers", v);
            for (int k = 0; k < S->n_lrs; k++)
                if (S->lrs[k] <= 0) return usage_error("--lrs '%s': expected a comma-separated list of positive numbers", v);
        } else if (!strcmp(a, "--optimizers")) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            S->n_optims = 0;
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
                int k = 0;
                while (k < 5 && strcasecmp(tok, paper_optims[k].name)) k++;
                if (k == 5 || S->n_optims >= 5)
                    return usage_error("--optimizers '%s': expected a list of sgd, sgd_amom, adam, rmsprop, adagrad", v);
                snprintf(S->optims[S->n_optims++], sizeof S->optims[0], "%s", paper_optims[k].name);
            }
            if (!S->n_optims) return usage_error("--optimizers '%s': empty list", v);
        }
    }
    if (S->epochs > 0 && S->steps > 0) return usage_error("%s", "give --epochs or --steps, not both");
    if (S->per_class > 0 && S->train_subset > 0) return usage_error("%s", "give --per-class or --train-subset, not both");
    return 0;
}

/* ------------------------------------------------------------------ */
/* resolving a study: defaults, scale, the run list                     */

static void params_line(sb *b, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void params_line(sb *b, const char *key, const char *fmt, ...)
{
    char v[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    sb_printf(b, ",\n  \"%s\": %s", key, v);
}

static void list_str(char *buf, size_t len, const double *v, int n)
{
    size_t o = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < n && o < len; i++) o += (size_t)snprintf(buf + o, len - o, "%s%.9g", i ? ", " : "", v[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

static bool default_scale_is_quick(const char *device)
{
    lc_rt *rt;
    if (lc_rt_create(&rt, device, false) != LC_OK) { lc_error_clear(); return true; }
    bool cpu = (rt->info.type & CL_DEVICE_TYPE_CPU) != 0;
    lc_rt_destroy(rt);
    return cpu;
}

static int resolve_model(study *S)
{
    lc_graph *g;
    lc_train_spec ts;
    if (lc_model_load(S->model, &g, &ts) != LC_OK) return fail();
    lc_train_spec_defaults(&ts);
    S->mspec = ts;
    snprintf(S->model_name, sizeof S->model_name, "%s", g->name);
    int count = 0;
    char nm[32];
    for (; count < 1000; count++) {
        snprintf(nm, sizeof nm, "dense%d", count);
        if (lc_graph_find(g, nm) < 0) break;
    }
    S->n_layers_toy = count - 1; /* the last dense is the classifier, never trained alone */
    lc_graph_destroy(g);
    if (!strcmp(S->model_name, "cifar10_vgg")) S->task = TASK_C10;
    else if (!strcmp(S->model_name, "resnet32_cifar100")) S->task = TASK_C100;
    else if (!strcmp(S->model_name, "tiny_imagenet_cnn")) S->task = TASK_TINY;
    else if (!strcmp(S->model_name, "wilson_vgg")) S->task = TASK_WILSON;
    else if (!strcmp(S->model_name, "mlp11")) S->task = TASK_MNIST;
    return 0;
}

static int resolve_toy(study *S)
{
    const int paper_steps = 4000, paper_reps = 10;
    const int quick_steps = 300, quick_reps = 2;
    if (!S->model_opt) {
        if (!file_exists("models/mlp11.json"))
            return usage_error("%s", "mnist-toy: models/mlp11.json not found here; run from the project folder or give --model");
        snprintf(S->model, sizeof S->model, "models/mlp11.json");
    }
    if (resolve_model(S)) return 1;
    if (S->n_layers_toy < 1)
        return usage_error("mnist-toy: model '%s' has no hidden layers named dense0, dense1, ... before its last dense layer",
                           S->model);
    bool pool = false;
    if (!S->data_opt) {
        char dir[1024];
        const char *sh = getenv("LAYCA_SHARED");
        if (S->mnist_opt) snprintf(dir, sizeof dir, "%s", S->mnist_opt);
        else if (sh && *sh) snprintf(dir, sizeof dir, "%s/data/mnist", sh);
        else snprintf(dir, sizeof dir, "../shared/data/mnist");
        char img[1100], lab[1100];
        snprintf(img, sizeof img, "%s/t10k-images-idx3-ubyte.gz", dir);
        snprintf(lab, sizeof lab, "%s/t10k-labels-idx1-ubyte.gz", dir);
        if (!file_exists(img)) { /* raw files */
            snprintf(img, sizeof img, "%s/t10k-images-idx3-ubyte", dir);
            snprintf(lab, sizeof lab, "%s/t10k-labels-idx1-ubyte", dir);
        }
        if (!file_exists(img) || !file_exists(lab)) {
            fprintf(stderr, "layca: error: mnist-toy: no MNIST test set (t10k-images-idx3-ubyte[.gz], "
                            "t10k-labels-idx1-ubyte[.gz]) in %s; give --mnist DIR\n", dir);
            return 1;
        }
        snprintf(S->data, sizeof S->data, "idx:%s,%s", img, lab);
        pool = true;
    }
    int steps = S->steps > 0 ? (int)S->steps : S->quick ? quick_steps : paper_steps;
    int reps = S->reps > 0 ? S->reps : S->quick ? quick_reps : paper_reps;
    double lr = isnan(S->lr) ? 10.0 : S->lr;
    int batch = S->batch > 0 ? S->batch : 100;
    if (S->per_class < 0 && S->train_subset < 0) S->per_class = 10;
    if (S->per_class < 0) S->per_class = 0;
    if (S->train_subset < 0) S->train_subset = 0;
    if (S->test_subset < 0) S->test_subset = 0;
    if (S->eval_every < 0) S->eval_every = steps;
    S->flip = 0;
    int64_t seed0 = S->seed >= 0 ? S->seed : 0;
    if (steps != paper_steps) note(S, "%d full-batch steps per run instead of the paper's %d", steps, paper_steps);
    if (reps != paper_reps) note(S, "%d repetition%s instead of the paper's %d", reps, reps == 1 ? "" : "s", paper_reps);
    if (pool)
        note(S, "training images: %d per class drawn from the 10,000 MNIST test images (seed = repetition), tested on "
                "the other %d; the paper draws from the 60k training set and tests on all 10k (not available here)",
             S->per_class, 10000 - 10 * S->per_class);
    if (S->task != TASK_MNIST) note(S, "model %s is not the paper's mlp11: the paper's numbers are not shown", S->model);
    if (lr != 10.0 || batch < 100) note(S, "lr %g, batch %d (paper: lr 10, full batch of 100)", lr, batch);

    sb *b = &S->params;
    params_line(b, "steps", "%d", steps);
    params_line(b, "repetitions", "%d", reps);
    params_line(b, "first_seed", "%lld", (long long)seed0);
    params_line(b, "lr", "%.9g", lr);
    params_line(b, "batch", "%d", batch);
    params_line(b, "layers", "%d", S->n_layers_toy);
    params_line(b, "modes", "%s", "[\"normal\", \"fixed\"]");
    for (int rep = 0; rep < reps; rep++)
        for (int l = 0; l < S->n_layers_toy; l++)
            for (int m = 0; m < 2; m++) {
                char id[64];
                snprintf(id, sizeof id, "r%d-dense%d-%s", rep, l, m ? "fixed" : "normal");
                run *r = add_run(S, id);
                if (!r) return usage_error("%s", "too many runs");
                r->lr = lr;
                r->epochs = -1;
                r->steps = steps;
                r->batch = batch;
                r->seed = seed0 + rep;
                r->rep = rep;
                r->layer = l;
                r->x = l;
                r->fixed = m == 1;
                snprintf(r->group, sizeof r->group, "%s", m ? "fixed" : "normal");
                snprintf(r->train_only, sizeof r->train_only, "dense%d", l);
                r->paper_idx = S->task == TASK_MNIST && l < 10 ? l : -1;
            }
    return 0;
}

/* epochs, batch, data subsets and schedule of the CNN studies */
static void resolve_cnn_common(study *S, int paper_epochs)
{
    const int quick_epochs = 3;
    const int64_t quick_train = 2000, quick_test = 1000;
    int model_epochs = S->mspec.epochs;
    if (paper_epochs <= 0) paper_epochs = model_epochs;
    if (S->epochs <= 0 && S->steps <= 0) S->epochs = S->quick ? LC_MIN(quick_epochs, model_epochs) : model_epochs;
    if (S->batch <= 0) S->batch = S->mspec.batch;
    if (S->seed < 0) S->seed = S->mspec.seed;
    if (S->quick && S->per_class < 0 && S->train_subset < 0) {
        S->train_subset = quick_train;
        note(S, "training examples: a seeded draw of %lld (paper: the whole training set)", (long long)quick_train);
    }
    /* the test subset is a seeded draw (kept in order), so it covers every
     * class even where the split is sorted by class (image folders) */
    if (S->quick && S->test_subset < 0) {
        S->test_subset = quick_test;
        note(S, "test examples: a seeded draw of %lld (paper: the whole test set)", (long long)quick_test);
    }
    if (S->per_class < 0) S->per_class = 0;
    if (S->train_subset < 0) S->train_subset = 0;
    if (S->test_subset < 0) S->test_subset = 0;
    if (S->eval_every < 0) S->eval_every = 1;
    const char *ref = S->task == TASK_NONE && paper_epochs == model_epochs ? "the model file's" : "the paper's";
    if (S->steps > 0) note(S, "%lld steps per run instead of %s %d epochs", (long long)S->steps, ref, paper_epochs);
    else if (S->epochs != paper_epochs) note(S, "%d epochs per run instead of %s %d", S->epochs, ref, paper_epochs);
    if (S->batch != 128) note(S, "batch %d (paper: 128)", S->batch);
    if (S->task == TASK_NONE)
        note(S, "model '%s' is none of the paper's networks: its numbers are shown for reference only", S->model_name);
    if (!strncmp(S->data, "images:", 7) && (S->task == TASK_C10 || S->task == TASK_WILSON))
        note(S, "CIFAR-10 read from JPEG re-encodings (pixels differ slightly from the official binary release)");
}

/* the schedule for a run: --schedule / --no-schedule, else `base` (meant for
 * `base_epochs`) scaled to the run's epochs */
static schedule pick_schedule(study *S, const schedule *base, int base_epochs, const char *what)
{
    if (S->sched_set == 1) return S->sched_opt;
    if (S->sched_set == 0) return (schedule){.n = 0, .factor = 1};
    if (S->steps > 0 || S->epochs == base_epochs) return *base;
    schedule s = sched_scale(base, base_epochs, S->epochs);
    char a[256], c[256];
    sched_str(base, a, sizeof a);
    sched_str(&s, c, sizeof c);
    note(S, "%sschedule %s of %d epochs scaled to %d epochs: %s", what, a, base_epochs, S->epochs, c);
    return s;
}

static void params_common(study *S)
{
    sb *b = &S->params;
    params_line(b, "epochs", "%d", S->steps > 0 ? -1 : S->epochs);
    params_line(b, "steps", "%lld", (long long)(S->steps > 0 ? S->steps : -1));
    params_line(b, "batch", "%d", S->batch);
    params_line(b, "seed", "%lld", (long long)S->seed);
    params_line(b, "per_class", "%d", S->per_class);
    params_line(b, "train_subset", "%lld", (long long)S->train_subset);
    params_line(b, "test_subset", "%lld", (long long)S->test_subset);
    params_line(b, "eval_every", "%d", S->eval_every);
    params_line(b, "flip", "%s", S->flip ? "true" : "false");
}

static int resolve_alpha_lr(study *S)
{
    if (resolve_model(S)) return 1;
    if (S->flip < 0) S->flip = 0;
    resolve_cnn_common(S, 0);
    schedule base = {.n = S->mspec.n_milestones, .factor = S->mspec.factor};
    memcpy(base.ms, S->mspec.milestones, sizeof base.ms);
    schedule sc = pick_schedule(S, &base, S->mspec.epochs, "");
    char scs[256];
    sched_str(&sc, scs, sizeof scs);
    params_common(S);
    params_line(&S->params, "schedule", "\"%s\"", scs);
    char ls[1024];
    if (S->kind == S_ALPHA) {
        double lr_layca = isnan(S->lr_layca) ? 1.0 / 27 : S->lr_layca;
        double lr_sgd = isnan(S->lr_sgd) ? 1.0 : S->lr_sgd;
        const double *al = S->n_alphas ? S->alphas : paper_alphas;
        int na = S->n_alphas ? S->n_alphas : 13;
        if (S->n_alphas) note(S, "alpha values %d of the paper's 13 (--alphas)", na);
        if (S->task == TASK_C100 || S->task == TASK_TINY)
            if (isnan(S->lr_sgd)) note(S, "SGD lr 1 (the paper's CIFAR-10 best; it used 3^-1 for %s: --lr-sgd 0.3333)",
                                       S->task == TASK_C100 ? "CIFAR-100" : "Tiny ImageNet");
        params_line(&S->params, "lr_layca", "%.9g", lr_layca);
        params_line(&S->params, "lr_sgd", "%.9g", lr_sgd);
        list_str(ls, sizeof ls, al, na);
        params_line(&S->params, "alphas", "%s", ls);
        for (int i = 0; i < na; i++)
            for (int k = 0; k < 2; k++) {
                char id[64];
                snprintf(id, sizeof id, "%s-alpha%+.2f", k ? "sgd" : "layca", al[i]);
                run *r = add_run(S, id);
                if (!r) return usage_error("%s", "too many runs");
                r->layca = k == 0;
                r->lr = k ? lr_sgd : lr_layca;
                r->alpha = al[i];
                r->sched = sc;
                r->x = al[i];
                snprintf(r->group, sizeof r->group, "%s", k ? "sgd" : "layca");
                for (int j = 0; j < 13; j++)
                    if (fabs(al[i] - paper_alphas[j]) < 1e-9) r->paper_idx = j;
            }
    } else {
        double grid[10];
        for (int i = 0; i < 10; i++) grid[i] = pow(3.0, 2 - i); /* 3^2 .. 3^-7 */
        const double *lv = S->n_lrs ? S->lrs : grid;
        int nl = S->n_lrs ? S->n_lrs : 10;
        if (S->n_lrs) note(S, "learning rates from --lrs instead of the paper's 3^2 .. 3^-7");
        list_str(ls, sizeof ls, lv, nl);
        params_line(&S->params, "lrs", "%s", ls);
        for (int i = 0; i < nl; i++) {
            char id[64];
            snprintf(id, sizeof id, "sgd-lr%.6g", lv[i]);
            run *r = add_run(S, id);
            if (!r) return usage_error("%s", "too many runs");
            r->lr = lv[i];
            r->sched = sc;
            r->x = lv[i];
            snprintf(r->group, sizeof r->group, "sgd");
            for (int j = 0; j < 10; j++) /* paper list: 3^-7 .. 3^2 */
                if (fabs(log(lv[i]) / log(3.0) - (j - 7)) < 1e-6) r->paper_idx = j;
        }
    }
    return 0;
}

static int resolve_optim_wd(study *S)
{
    if (resolve_model(S)) return 1;
    if (S->flip < 0) S->flip = 1;
    resolve_cnn_common(S, 250);
    if (S->task != TASK_WILSON && S->task != TASK_NONE)
        note(S, "the paper ran this study on the Wilson et al. VGG (models/wilson_vgg.json), not on %s", S->model_name);
    schedule plain = {.n = 9, .ms = {25, 50, 75, 100, 125, 150, 175, 200, 225}, .factor = 0.5};
    schedule lay = {.n = 3, .ms = {100, 170, 220}, .factor = 0.2};
    schedule sp = pick_schedule(S, &plain, 250, "without Layca: ");
    schedule sl = pick_schedule(S, &lay, 250, "with Layca: ");
    char a[256], c[256];
    sched_str(&sp, a, sizeof a);
    sched_str(&sl, c, sizeof c);
    params_common(S);
    params_line(&S->params, "schedule_without_layca", "\"%s\"", a);
    if (!S->flip) note(S, "no horizontal flips (the paper's V1 augmentation)");
    if (S->kind == S_OPTIM) {
        params_line(&S->params, "schedule_layca", "\"%s\"", c);
        if (!S->n_optims)
            for (int k = 0; k < 5; k++) snprintf(S->optims[S->n_optims++], sizeof S->optims[0], "%s", paper_optims[k].name);
        else note(S, "optimizers from --optimizers");
        sb ol = {0};
        for (int k = 0; k < S->n_optims; k++) sb_printf(&ol, "%s\"%s\"", k ? ", " : "[", S->optims[k]);
        sb_printf(&ol, "]");
        params_line(&S->params, "optimizers", "%s", ol.p ? ol.p : "[]");
        sb_free(&ol);
        for (int k = 0; k < S->n_optims; k++) {
            int p = 0;
            while (p < 5 && strcmp(paper_optims[p].name, S->optims[k])) p++;
            for (int m = 0; m < 2; m++) {
                char id[64];
                snprintf(id, sizeof id, "%s-%s", paper_optims[p].name, m ? "layca" : "l2");
                run *r = add_run(S, id);
                if (!r) return usage_error("%s", "too many runs");
                snprintf(r->optimizer, sizeof r->optimizer, "%s", paper_optims[p].name);
                r->layca = m;
                r->lr = m ? paper_optims[p].rho : paper_optims[p].lr;
                r->weight_decay = m ? 0 : 5e-4;
                r->momentum = !strcmp(r->optimizer, "sgd") ? 0 : !strcmp(r->optimizer, "sgd_amom") ? 0.9 : NAN;
                r->sched = m ? sl : sp;
                r->paper_idx = p;
                snprintf(r->group, sizeof r->group, "%s", paper_optims[p].label);
            }
        }
    } else {
        double lr = isnan(S->lr) ? 0.5 : S->lr;
        if (lr != 0.5) note(S, "SGD lr %g (paper: 0.5)", lr);
        params_line(&S->params, "lr", "%.9g", lr);
        params_line(&S->params, "weight_decays", "%s", "[0.0005, 0]");
        for (int m = 0; m < 2; m++) {
            run *r = add_run(S, m ? "sgd-wd0" : "sgd-wd0.0005");
            if (!r) return usage_error("%s", "too many runs");
            r->lr = lr;
            r->weight_decay = m ? 0 : 5e-4;
            r->sched = sp;
            r->x = r->weight_decay;
            r->paper_idx = m;
            snprintf(r->group, sizeof r->group, "sgd");
        }
    }
    return 0;
}

static int resolve(study *S)
{
    S->runs = calloc(MAX_RUNS, sizeof *S->runs);
    if (!S->runs) { fprintf(stderr, "layca: error: out of memory\n"); return 1; }
    if (S->model_opt) snprintf(S->model, sizeof S->model, "%s", S->model_opt);
    if (S->data_opt) snprintf(S->data, sizeof S->data, "%s", S->data_opt);
    if (S->kind != S_MNIST) {
        if (!S->model_opt && S->quick && file_exists("models/small_cnn.json")) {
            snprintf(S->model, sizeof S->model, "models/small_cnn.json");
            note(S, "model models/small_cnn.json (quick scale without --model; the paper's networks are larger)");
        }
        if (!S->model[0] || !S->data[0]) {
            const char *ex = S->kind == S_OPTIM || S->kind == S_WD ? "models/wilson_vgg.json" : "models/cifar10_vgg.json";
            return usage_error("study %s needs %s, e.g. layca study %s --model %s --data images:/tmp/cifar10 "
                               "(tools/datasets.sh cifar10-jpeg /tmp/cifar10 extracts the CIFAR-10 JPEGs there)",
                               S->name, S->model[0] ? "--data" : S->data[0] ? "--model" : "--model and --data", S->name, ex);
        }
    }
    sb *b = &S->params;
    sb_printf(b, "{\n  \"format\": \"layca-study/1\"");
    params_line(b, "study", "\"%s\"", S->name);
    params_line(b, "scale", "\"%s\"", S->quick ? "quick" : "paper");
    int rc;
    if (S->kind == S_MNIST) rc = resolve_toy(S);
    else if (S->kind == S_ALPHA || S->kind == S_LRGRID) rc = resolve_alpha_lr(S);
    else rc = resolve_optim_wd(S);
    if (rc) return rc;
    /* the model and data after resolution, with their paths as given */
    sb head = {0};
    sb_json_str(&head, S->model);
    params_line(b, "model", "%s", head.p);
    sb_free(&head);
    sb_json_str(&head, S->data);
    params_line(b, "data", "%s", head.p);
    sb_free(&head);
    sb ids = {0};
    sb_printf(&ids, "[");
    for (int i = 0; i < S->n_runs; i++) {
        run_config(S, &S->runs[i]);
        sb_printf(&ids, "%s\"%s\"", i ? ", " : "", S->runs[i].id);
    }
    sb_printf(&ids, "]");
    params_line(b, "runs", "%s", ids.p);
    sb_free(&ids);
    sb_printf(b, "\n}\n");
    if (b->oom) { fprintf(stderr, "layca: error: out of memory\n"); return 1; }
    if (S->fail_run) {
        bool found = false;
        for (int i = 0; i < S->n_runs; i++) found |= S->runs[i].fail;
        if (!found) return usage_error("--test-fail-run '%s': no run of that id", S->fail_run);
    }
    return 0;
}

/* study.json: refuse other parameters unless --force.  Compares line by
 * line ("key": value). */
static int check_params(study *S)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/study.json", S->out);
    if (!file_exists(path)) return 0;
    uint8_t *data;
    size_t len;
    if (lc_file_read(path, &data, &len) != LC_OK) return fail();
    char *old = realloc(data, len + 1);
    if (!old) { free(data); fprintf(stderr, "layca: error: out of memory\n"); return 1; }
    old[len] = 0;
    if (!strcmp(old, S->params.p)) { free(old); return 0; }
    /* name the differences */
    char diff[2048] = "";
    size_t o = 0;
    int nd = 0;
    char *now = strdup(S->params.p);
    if (!now) { free(old); return 1; }
    for (char *line = strtok(now, "\n"); line; line = strtok(NULL, "\n")) {
        char *q = strstr(line, "\": ");
        if (!q || line[0] != ' ') continue;
        size_t klen = (size_t)(q - line) + 2; /* `  "key":` */
        char key[128];
        if (klen >= sizeof key) continue;
        memcpy(key, line, klen);
        key[klen] = 0;
        const char *val = q + 3;
        char *ol = strstr(old, key);
        char oldv[512] = "(none)";
        if (ol) {
            ol += klen + 1;
            size_t n = strcspn(ol, "\n");
            snprintf(oldv, sizeof oldv, "%.*s", (int)(n < 500 ? n : 500), ol);
        }
        char nv[512];
        snprintf(nv, sizeof nv, "%s", val);
        size_t nl = strlen(nv), olen = strlen(oldv);
        if (nl && nv[nl - 1] == ',') nv[--nl] = 0;
        if (olen && oldv[olen - 1] == ',') oldv[--olen] = 0;
        if (!strcmp(nv, oldv)) continue;
        if (nd++ < 4 && o < sizeof diff)
            o += (size_t)snprintf(diff + o, sizeof diff - o, "%s%.*s %.120s (stored: %.120s)", o ? "; " : "",
                                  (int)(klen - 5), key + 3, nv, oldv);
    }
    free(now);
    free(old);
    if (!nd) snprintf(diff, sizeof diff, "the file's layout");
    if (S->force) {
        fprintf(stderr, "study: %s holds other parameters (%s); going on under --force: runs whose settings changed "
                        "are rerun\n", path, diff);
        return 0;
    }
    fprintf(stderr, "layca: error: %s holds a study with other parameters: %s%s; use the same options, another --out, "
                    "or --force to go on with the new ones (runs whose settings changed are rerun)\n",
            path, diff, nd > 4 ? "; ..." : "");
    return 1;
}

/* ------------------------------------------------------------------ */
/* results                                                              */

static void run_dir(const study *S, const run *r, char *buf, size_t len)
{
    snprintf(buf, len, "%s/runs/%s", S->out, r->id);
}

static lc_status write_result(const study *S, const run *r)
{
    sb b = {0};
    sb_printf(&b, "{\n  \"id\": ");
    sb_json_str(&b, r->id);
    sb_printf(&b, ",\n  \"status\": \"%s\",\n  \"test_acc\": ", status_names[r->status]);
    sb_json_num(&b, r->test_acc);
    sb_printf(&b, ",\n  \"test_loss\": ");
    sb_json_num(&b, r->test_loss);
    sb_printf(&b, ",\n  \"train_acc\": ");
    sb_json_num(&b, r->train_acc);
    sb_printf(&b, ",\n  \"train_loss\": ");
    sb_json_num(&b, r->train_loss);
    sb_printf(&b, ",\n  \"steps\": ");
    sb_json_num(&b, r->steps_done);
    sb_printf(&b, ",\n  \"epochs\": ");
    sb_json_num(&b, r->epochs_done);
    sb_printf(&b, ",\n  \"train_s\": ");
    sb_json_num(&b, r->train_s);
    sb_printf(&b, ",\n  \"wall_s\": ");
    sb_json_num(&b, r->wall_s);
    sb_printf(&b, ",\n  \"layers\": %d,\n  \"rotation_median\": ", r->n_layers);
    sb_json_num(&b, r->rot_med);
    sb_printf(&b, ",\n  \"rotation_min\": ");
    sb_json_num(&b, r->rot_min);
    sb_printf(&b, ",\n  \"rotation_max\": ");
    sb_json_num(&b, r->rot_max);
    sb_printf(&b, ",\n  \"message\": ");
    sb_json_str(&b, r->message);
    sb_printf(&b, ",\n  \"config\": ");
    sb_json_str(&b, r->config);
    sb_printf(&b, "\n}\n");
    if (b.oom) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    char path[1200], dir[1100];
    run_dir(S, r, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/result.json", dir);
    lc_status st = lc_file_write_atomic(path, b.p, b.n);
    sb_free(&b);
    return st;
}

/* Reads a finished run's result.json; false when there is none (or it is
 * unreadable, with a warning: the run is then done again). */
static bool load_result(const study *S, run *r, char *config, size_t clen)
{
    char path[1200], dir[1100];
    run_dir(S, r, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/result.json", dir);
    if (!file_exists(path)) return false;
    uint8_t *data;
    size_t len;
    if (lc_file_read(path, &data, &len) != LC_OK) {
        fprintf(stderr, "study: warning: %s\n", lc_error_message());
        return false;
    }
    char *t = realloc(data, len + 1);
    if (!t) { free(data); return false; }
    t[len] = 0;
    char status[32];
    bool ok = json_str(t, "status", status, sizeof status) && json_str(t, "config", config, clen);
    int s = -1;
    for (int i = 1; ok && i < 4; i++)
        if (!strcmp(status, status_names[i])) s = i;
    if (!ok || s < 0) {
        fprintf(stderr, "study: warning: %s is not a finished run's result; running it again\n", path);
        free(t);
        return false;
    }
    r->status = (run_status)s;
    r->test_acc = json_num(t, "test_acc");
    r->test_loss = json_num(t, "test_loss");
    r->train_acc = json_num(t, "train_acc");
    r->train_loss = json_num(t, "train_loss");
    r->steps_done = json_num(t, "steps");
    r->epochs_done = json_num(t, "epochs");
    r->train_s = json_num(t, "train_s");
    r->wall_s = json_num(t, "wall_s");
    double nl = json_num(t, "layers");
    r->n_layers = isfinite(nl) ? (int)nl : 0;
    r->rot_med = json_num(t, "rotation_median");
    r->rot_min = json_num(t, "rotation_min");
    r->rot_max = json_num(t, "rotation_max");
    json_str(t, "message", r->message, sizeof r->message);
    free(t);
    return true;
}

/* labels of a run for the CSV and JSON, per study */
static int label_names(const study *S, const char **names)
{
    switch (S->kind) {
    case S_MNIST: names[0] = "repetition"; names[1] = "layer"; names[2] = "mode"; return 3;
    case S_ALPHA: names[0] = "optimizer"; names[1] = "alpha"; return 2;
    case S_LRGRID: names[0] = "lr"; return 1;
    case S_OPTIM: names[0] = "optimizer"; names[1] = "layca"; names[2] = "lr"; names[3] = "weight_decay"; return 4;
    case S_WD: names[0] = "weight_decay"; names[1] = "lr"; return 2;
    default: return 0;
    }
}

static void label_values(const study *S, const run *r, char v[4][64])
{
    switch (S->kind) {
    case S_MNIST:
        snprintf(v[0], 64, "%d", r->rep);
        snprintf(v[1], 64, "%d", r->layer);
        snprintf(v[2], 64, "%s", r->group);
        break;
    case S_ALPHA:
        snprintf(v[0], 64, "%s", r->group);
        snprintf(v[1], 64, "%.9g", r->alpha);
        break;
    case S_LRGRID: snprintf(v[0], 64, "%.9g", r->lr); break;
    case S_OPTIM:
        snprintf(v[0], 64, "%s", r->optimizer);
        snprintf(v[1], 64, "%s", r->layca ? "true" : "false");
        snprintf(v[2], 64, "%.9g", r->lr);
        snprintf(v[3], 64, "%.9g", r->weight_decay);
        break;
    case S_WD:
        snprintf(v[0], 64, "%.9g", r->weight_decay);
        snprintf(v[1], 64, "%.9g", r->lr);
        break;
    default: break;
    }
}

/* The summary table */
#define TCOLS 12
#define TCELL 48
typedef struct table {
    int nc, nr;
    char head[TCOLS][TCELL];
    char (*cell)[TCOLS][TCELL];
    char title[512];
    char lines[6][512]; /* under the table */
    int nlines;
} table;

static void t_head(table *t, const char *h)
{
    if (t->nc < TCOLS) snprintf(t->head[t->nc++], TCELL, "%s", h);
}

static char (*t_row(table *t))[TCELL]
{
    if (t->nr >= MAX_RUNS) return NULL;
    memset(t->cell[t->nr], 0, sizeof t->cell[0]);
    return t->cell[t->nr++];
}

static void t_line(table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void t_line(table *t, const char *fmt, ...)
{
    if (t->nlines >= 6) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->lines[t->nlines++], sizeof t->lines[0], fmt, ap);
    va_end(ap);
}

static const char *status_cell(const run *r, char *buf, size_t len, double frac)
{
    if (r->status == R_OK && !isfinite(r->train_loss)) {
        char a[32];
        snprintf(buf, len, "%s (NaN loss)", fmt_pct(a, sizeof a, frac));
        return buf;
    }
    if (r->status == R_OK) return fmt_pct(buf, len, frac);
    snprintf(buf, len, "%s", status_names[r->status]);
    return buf;
}

static void build_table(const study *S, table *t)
{
    char b1[32], b2[32];
    const char *scale = S->quick ? "quick scale" : "paper scale";
    if (S->kind == S_MNIST) {
        snprintf(t->title, sizeof t->title, "mnist-toy (%s): test accuracy (%%) with one layer trained alone, over repetitions",
                 scale);
        t_head(t, "layer");
        t_head(t, "mode");
        t_head(t, "runs");
        t_head(t, "test acc mean");
        t_head(t, "std");
        t_head(t, "paper");
        double mean_n[2][64];
        for (int l = 0; l < S->n_layers_toy; l++)
            for (int m = 0; m < 2; m++) {
                const char *mode = m ? "fixed" : "normal";
                double sum = 0, sq = 0;
                int n = 0, unsup = 0, err = 0, total = 0;
                for (int i = 0; i < S->n_runs; i++) {
                    const run *r = &S->runs[i];
                    if (r->layer != l || strcmp(r->group, mode)) continue;
                    total++;
                    if (r->status == R_OK && isfinite(r->test_acc)) { n++; sum += 100 * r->test_acc; sq += 1e4 * r->test_acc * r->test_acc; }
                    unsup += r->status == R_UNSUPPORTED;
                    err += r->status == R_ERROR;
                }
                char (*row)[TCELL] = t_row(t);
                if (!row) return;
                snprintf(row[0], TCELL, "%d", l);
                snprintf(row[1], TCELL, "%s", mode);
                snprintf(row[2], TCELL, "%d/%d", n, total);
                double mean = n ? sum / n : NAN;
                if (l < 64) mean_n[m][l] = mean;
                if (n) snprintf(row[3], TCELL, "%.2f", mean);
                else snprintf(row[3], TCELL, "%s", unsup ? "unsupported" : err ? "error" : "pending");
                if (n >= 2) snprintf(row[4], TCELL, "%.2f", sqrt(fmax(0, (sq - sum * sum / n) / (n - 1))));
                else snprintf(row[4], TCELL, "-");
                if (S->task == TASK_MNIST && l < 10) fmt_paper(row[5], TCELL, paper_toy[m][l]);
                else snprintf(row[5], TCELL, "-");
            }
        if (S->task == TASK_MNIST)
            t_line(t, "paper: section 6.3 (Fig. 1a/1c), means over 10 runs of 4000 steps; fixed = feedback improvement "
                      "prevented");
        else t_line(t, "paper: none shown (the paper's numbers are for models/mlp11.json)");
        if (S->n_layers_toy >= 10 && isfinite(mean_n[0][1]) && isfinite(mean_n[0][9]))
            t_line(t, "normal, layer 1 minus layer 9: %.2f points (paper: 18.46, the \"nearly 20%%\")",
                   mean_n[0][1] - mean_n[0][9]);
        t_line(t, "std: sample standard deviation over the repetitions that finished");
        return;
    }
    if (S->kind == S_ALPHA || S->kind == S_LRGRID) {
        bool known = S->task == TASK_C10 || S->task == TASK_C100 || S->task == TASK_TINY;
        if (S->kind == S_ALPHA) {
            snprintf(t->title, sizeof t->title, "alpha-sweep (%s, %s): test and final train accuracy (%%)", scale,
                     S->model_name);
            t_head(t, "alpha");
            t_head(t, "optimizer");
            t_head(t, "rate");
        } else {
            snprintf(t->title, sizeof t->title, "lr-grid (%s, %s): SGD at alpha 0, test and final train accuracy (%%)",
                     scale, S->model_name);
            t_head(t, "lr");
            t_head(t, "log3 lr");
        }
        t_head(t, "test acc");
        t_head(t, "train acc");
        t_head(t, "median cos");
        t_head(t, known ? "paper" : "paper (none)");
        for (int k = 0; k < (S->kind == S_ALPHA ? 2 : 1); k++)
            for (int i = 0; i < S->n_runs; i++) {
                const run *r = &S->runs[i];
                if (S->kind == S_ALPHA && r->layca != (k == 0)) continue;
                char (*row)[TCELL] = t_row(t);
                if (!row) return;
                int c = 0;
                if (S->kind == S_ALPHA) {
                    snprintf(row[c++], TCELL, "%+.2f", r->alpha);
                    snprintf(row[c++], TCELL, "%s", r->layca ? "Layca" : "SGD");
                    snprintf(row[c++], TCELL, "%s %.4g", r->layca ? "rho" : "lr", r->lr);
                } else {
                    snprintf(row[c++], TCELL, "%.6g", r->lr);
                    double e = log(r->lr) / log(3.0);
                    if (fabs(e - lround(e)) < 1e-6) snprintf(row[c++], TCELL, "%+ld", lround(e));
                    else snprintf(row[c++], TCELL, "%.2f", e);
                }
                status_cell(r, row[c++], TCELL, r->test_acc);
                if (r->status == R_OK) {
                    fmt_pct(b1, sizeof b1, r->train_acc);
                    snprintf(row[c], TCELL, "%s%s", b1, isfinite(r->train_acc) && r->train_acc < 0.98 ? "*" : "");
                }
                c++;
                snprintf(row[c++], TCELL, "%s", r->status == R_OK && isfinite(r->rot_med) ? fmt_g(b2, sizeof b2, r->rot_med) : "-");
                if (known && r->paper_idx >= 0)
                    fmt_paper(row[c], TCELL, S->kind == S_ALPHA ? paper_alpha_acc[S->task][r->layca ? 0 : 1][r->paper_idx]
                                                                : paper_lr_acc[S->task][r->paper_idx]);
                else snprintf(row[c], TCELL, "-");
            }
        if (known)
            t_line(t, "paper: %s, section %s (V1, final-epoch test accuracy%s)", task_title[S->task],
                   S->kind == S_ALPHA ? "6.1 / Figure 2" : "6.2", S->task == TASK_TINY ? ", best-validation checkpoint" : "");
        else t_line(t, "paper: no numbers for model '%s' (they exist for cifar10_vgg, resnet32_cifar100, tiny_imagenet_cnn)",
                    S->model_name);
        t_line(t, "*: final train accuracy < 98%% (the paper leaves such runs out of its figure)");
        t_line(t, "median cos: median over layers of the final cosine distance to the initial weights (layer rotation)");
        return;
    }
    if (S->kind == S_OPTIM) {
        snprintf(t->title, sizeof t->title, "optimizers (%s, %s): test accuracy (%%) and final median layer rotation", scale,
                 S->model_name);
        t_head(t, "optimizer");
        t_head(t, "layca");
        t_head(t, "rate");
        t_head(t, "L2");
        t_head(t, "test acc");
        t_head(t, "paper");
        t_head(t, "train acc");
        t_head(t, "median cos");
        t_head(t, "paper cos");
        for (int i = 0; i < S->n_runs; i++) {
            const run *r = &S->runs[i];
            const optim_paper *p = &paper_optims[r->paper_idx];
            char (*row)[TCELL] = t_row(t);
            if (!row) return;
            snprintf(row[0], TCELL, "%s", p->label);
            snprintf(row[1], TCELL, "%s", r->layca ? "yes" : "no");
            snprintf(row[2], TCELL, "%s %.4g", r->layca ? "rho" : "lr", r->lr);
            snprintf(row[3], TCELL, "%g", r->weight_decay);
            status_cell(r, row[4], TCELL, r->test_acc);
            fmt_paper(row[5], TCELL, r->layca ? p->acc_layca : p->acc_plain);
            if (r->status == R_OK) fmt_pct(row[6], TCELL, r->train_acc);
            snprintf(row[7], TCELL, "%s", r->status == R_OK ? fmt_g(b2, sizeof b2, r->rot_med) : "-");
            if (r->layca) snprintf(row[8], TCELL, ">= 0.98");
            else if (isnan(p->cos_plain)) snprintf(row[8], TCELL, "-");
            else snprintf(row[8], TCELL, "%.3f", p->cos_plain);
        }
        t_line(t, "paper: %s, section 6.4 (V1, test accuracy at epoch 250; median per-layer cosine distance at the end)",
               task_title[TASK_WILSON]);
        if (S->task != TASK_WILSON) t_line(t, "(this study ran on '%s', not the paper's network)", S->model_name);
        return;
    }
    /* weight decay */
    snprintf(t->title, sizeof t->title, "weight-decay (%s, %s): SGD with and without L2", scale, S->model_name);
    t_head(t, "L2");
    t_head(t, "test acc");
    t_head(t, "paper");
    t_head(t, "train acc");
    t_head(t, "paper train");
    t_head(t, "median cos");
    t_head(t, "min-max cos");
    t_head(t, "paper cos");
    static const double p_test[2] = {92.58, 87.41}, p_train[2] = {99.53, 91.00};
    static const char *p_cos[2] = {"0.997", "0.33 (0.15-0.83)"};
    for (int i = 0; i < S->n_runs; i++) {
        const run *r = &S->runs[i];
        char (*row)[TCELL] = t_row(t);
        if (!row) return;
        snprintf(row[0], TCELL, "%g", r->weight_decay);
        status_cell(r, row[1], TCELL, r->test_acc);
        fmt_paper(row[2], TCELL, p_test[r->paper_idx]);
        if (r->status == R_OK) fmt_pct(row[3], TCELL, r->train_acc);
        fmt_paper(row[4], TCELL, p_train[r->paper_idx]);
        snprintf(row[5], TCELL, "%s", r->status == R_OK ? fmt_g(b2, sizeof b2, r->rot_med) : "-");
        if (r->status == R_OK && isfinite(r->rot_min)) snprintf(row[6], TCELL, "%.3g-%.3g", r->rot_min, r->rot_max);
        else snprintf(row[6], TCELL, "-");
        snprintf(row[7], TCELL, "%s", p_cos[r->paper_idx]);
    }
    t_line(t, "paper: %s, section 6.5 (V1, SGD lr 0.5, 250 epochs)", task_title[TASK_WILSON]);
    if (S->task != TASK_WILSON) t_line(t, "(this study ran on '%s', not the paper's network)", S->model_name);
}

static void table_text(const study *S, const table *t, sb *b)
{
    int w[TCOLS];
    for (int c = 0; c < t->nc; c++) {
        w[c] = (int)strlen(t->head[c]);
        for (int r = 0; r < t->nr; r++) w[c] = LC_MAX(w[c], (int)strlen(t->cell[r][c]));
    }
    sb_printf(b, "%s\n", t->title);
    for (int i = 0; i < S->n_notes; i++) sb_printf(b, "  scale: %s\n", S->notes[i]);
    if (!S->n_notes) sb_printf(b, "  scale: the paper's settings\n");
    for (int c = 0; c < t->nc; c++) sb_printf(b, "%s%-*s", c ? "  " : "", w[c], t->head[c]);
    sb_printf(b, "\n");
    for (int c = 0; c < t->nc; c++) {
        sb_printf(b, "%s", c ? "  " : "");
        for (int k = 0; k < w[c]; k++) sb_printf(b, "-");
    }
    sb_printf(b, "\n");
    for (int r = 0; r < t->nr; r++) {
        for (int c = 0; c < t->nc; c++) sb_printf(b, "%s%-*s", c ? "  " : "", w[c], t->cell[r][c][0] ? t->cell[r][c] : "-");
        sb_printf(b, "\n");
    }
    for (int i = 0; i < t->nlines; i++) sb_printf(b, "%s\n", t->lines[i]);
}

static lc_status write_results(const study *S)
{
    const char *ln[4];
    int nl = label_names(S, ln);
    sb csv = {0}, js = {0};
    sb_printf(&csv, "id,status");
    for (int k = 0; k < nl; k++) sb_printf(&csv, ",%s", ln[k]);
    sb_printf(&csv, ",test_acc,test_loss,train_acc,train_loss,steps,epochs,train_s,wall_s,rotation_median,rotation_min,"
                    "rotation_max,message\n");
    sb_printf(&js, "{\n  \"format\": \"layca-study-results/1\",\n  \"study\": \"%s\",\n  \"scale\": \"%s\",\n  \"model\": ",
              S->name, S->quick ? "quick" : "paper");
    sb_json_str(&js, S->model);
    sb_printf(&js, ",\n  \"data\": ");
    sb_json_str(&js, S->data);
    sb_printf(&js, ",\n  \"scale_notes\": [");
    for (int i = 0; i < S->n_notes; i++) {
        sb_printf(&js, "%s", i ? ", " : "");
        sb_json_str(&js, S->notes[i]);
    }
    sb_printf(&js, "],\n  \"runs\": [");
    int nrows = 0;
    for (int i = 0; i < S->n_runs; i++) {
        const run *r = &S->runs[i];
        if (r->status == R_PENDING) continue;
        char lv[4][64];
        label_values(S, r, lv);
        char nb[11][40];
        const double vals[11] = {r->test_acc, r->test_loss, r->train_acc, r->train_loss, r->steps_done, r->epochs_done,
                                 r->train_s, r->wall_s, r->rot_med, r->rot_min, r->rot_max};
        for (int k = 0; k < 11; k++) {
            if (isfinite(vals[k])) snprintf(nb[k], sizeof nb[k], "%.9g", vals[k]);
            else nb[k][0] = 0;
        }
        sb_printf(&csv, "%s,%s", r->id, status_names[r->status]);
        for (int k = 0; k < nl; k++) sb_printf(&csv, ",%s", lv[k]);
        for (int k = 0; k < 11; k++) sb_printf(&csv, ",%s", nb[k]);
        sb_printf(&csv, ",");
        sb_csv_str(&csv, r->message);
        sb_printf(&csv, "\n");

        sb_printf(&js, "%s\n    {\"id\": \"%s\", \"status\": \"%s\"", nrows ? "," : "", r->id, status_names[r->status]);
        for (int k = 0; k < nl; k++) {
            bool num = strcmp(ln[k], "mode") && strcmp(ln[k], "optimizer") && strcmp(ln[k], "layca");
            if (!strcmp(ln[k], "layca")) sb_printf(&js, ", \"%s\": %s", ln[k], lv[k]);
            else if (num) sb_printf(&js, ", \"%s\": %s", ln[k], lv[k]);
            else sb_printf(&js, ", \"%s\": \"%s\"", ln[k], lv[k]);
        }
        static const char *keys[11] = {"test_acc", "test_loss", "train_acc", "train_loss", "steps", "epochs",
                                       "train_s", "wall_s", "rotation_median", "rotation_min", "rotation_max"};
        for (int k = 0; k < 11; k++) sb_printf(&js, ", \"%s\": %s", keys[k], nb[k][0] ? nb[k] : "null");
        sb_printf(&js, ", \"message\": ");
        sb_json_str(&js, r->message);
        sb_printf(&js, "}");
        nrows++;
    }
    sb_printf(&js, "\n  ],\n  \"table\": {\"title\": ");
    table t = {0};
    t.cell = calloc(MAX_RUNS, sizeof *t.cell);
    if (!t.cell) { sb_free(&csv); sb_free(&js); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    build_table(S, &t);
    sb_json_str(&js, t.title);
    sb_printf(&js, ", \"columns\": [");
    for (int c = 0; c < t.nc; c++) {
        sb_printf(&js, "%s", c ? ", " : "");
        sb_json_str(&js, t.head[c]);
    }
    sb_printf(&js, "],\n    \"rows\": [");
    for (int r = 0; r < t.nr; r++) {
        sb_printf(&js, "%s\n      [", r ? "," : "");
        for (int c = 0; c < t.nc; c++) {
            sb_printf(&js, "%s", c ? ", " : "");
            sb_json_str(&js, t.cell[r][c]);
        }
        sb_printf(&js, "]");
    }
    sb_printf(&js, "],\n    \"notes\": [");
    for (int i = 0; i < t.nlines; i++) {
        sb_printf(&js, "%s", i ? ", " : "");
        sb_json_str(&js, t.lines[i]);
    }
    sb_printf(&js, "]}\n}\n");
    sb txt = {0};
    table_text(S, &t, &txt);
    free(t.cell);
    lc_status st = LC_OK;
    if (csv.oom || js.oom || txt.oom) st = LC_ERR(LC_ERR_NOMEM, "out of memory");
    char path[1100];
    if (st == LC_OK) {
        snprintf(path, sizeof path, "%s/results.csv", S->out);
        st = lc_file_write_atomic(path, csv.p, csv.n);
    }
    if (st == LC_OK) {
        snprintf(path, sizeof path, "%s/results.json", S->out);
        st = lc_file_write_atomic(path, js.p, js.n);
    }
    if (st == LC_OK) {
        snprintf(path, sizeof path, "%s/table.txt", S->out);
        st = lc_file_write_atomic(path, txt.p, txt.n);
    }
    sb_free(&csv);
    sb_free(&js);
    sb_free(&txt);
    return st;
}

/* ------------------------------------------------------------------ */
/* figures                                                              */

static const double C_LAYCA[3] = {0.84, 0.15, 0.16}, C_SGD[3] = {0.12, 0.47, 0.71};
static const double C_LAYCA_P[3] = {0.96, 0.62, 0.60}, C_SGD_P[3] = {0.62, 0.78, 0.91};

typedef struct figs {
    char list[64][1200];
    int n;
} figs;

/* lc_plot's legend sits in the top left corner: with an automatic y range,
 * leave room above the data for it. */
static lc_status plot(const study *S, figs *F, const char *name, const lc_figure *f0, const lc_series *s, int n)
{
    char prefix[1100];
    snprintf(prefix, sizeof prefix, "%s/%s", S->out, name);
    lc_figure f = *f0;
    if (f.legend && f.ymin == f.ymax) {
        double lo = INFINITY, hi = -INFINITY;
        int entries = 0;
        for (int i = 0; i < n; i++) {
            entries += s[i].label != NULL;
            for (int j = 0; j < s[i].n; j++)
                if (isfinite(s[i].y[j])) { lo = fmin(lo, s[i].y[j]); hi = fmax(hi, s[i].y[j]); }
        }
        if (isfinite(lo)) {
            double pad = (hi - lo) * 0.05 + 1e-9 + (hi == lo ? fabs(hi) * 0.05 + 0.5 : 0);
            double q = 0.06 * entries + 0.05; /* the legend's share of the height */
            f.ymin = lo - pad;
            f.ymax = f.ymin + (hi + pad - f.ymin) / (1 - q);
        }
    }
    LC_TRY(lc_plot(prefix, &f, s, n));
    if (F->n < 64) snprintf(F->list[F->n++], sizeof F->list[0], "%s.{png,svg}", prefix);
    return LC_OK;
}

/* Rotation curves as `layca plot` and the paper draw them: x epoch with a
 * prepended 0 (distance 0), one line per layer coloured viridis from first to
 * last, a colour bar "First layer".."Last layer". */
static lc_status plot_rotation(const study *S, figs *F, const run *r, const char *name, const char *title)
{
    char path[1200], dir[1100];
    run_dir(S, r, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    lc_metrics m;
    LC_TRY(lc_metrics_load(path, &m));
    int L = m.n_layers, n = m.n_rot + 1;
    lc_status st = LC_OK;
    if (L <= 0 || m.n_rot == 0) { lc_metrics_deinit(&m); return LC_OK; }
    double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * L * sizeof *y);
    lc_series *s = calloc((size_t)L, sizeof *s);
    if (!x || !y || !s) { st = LC_ERR(LC_ERR_NOMEM, "out of memory"); goto out; }
    double ymax = 0;
    x[0] = 0;
    for (int i = 0; i < m.n_rot; i++) x[i + 1] = m.rot[i].epoch;
    for (int l = 0; l < L; l++) {
        y[l * n] = 0;
        for (int i = 0; i < m.n_rot; i++) {
            y[l * n + i + 1] = m.rot[i].rotation[l];
            if (isfinite(m.rot[i].rotation[l])) ymax = fmax(ymax, m.rot[i].rotation[l]);
        }
        s[l] = (lc_series){.x = x, .y = y + l * n, .n = n};
        lc_viridis(L > 1 ? (double)l / (L - 1) : 0, s[l].rgb);
    }
    double top = ymax <= 1e-3 ? 1e-3 : ymax <= 1e-2 ? 1e-2 : ymax <= 1e-1 ? 1e-1 : fmax(1.1, ymax * 1.02);
    lc_figure f = {.title = title, .xlabel = "Epoch", .ylabel = "Cosine distance", .xmin = 0,
                   .xmax = x[n - 1] > 0 ? x[n - 1] : 1, .ymin = 0, .ymax = top,
                   .colorbar_low = "First layer", .colorbar_high = "Last layer"};
    st = plot(S, F, name, &f, s, L);
out:
    free(x);
    free(y);
    free(s);
    lc_metrics_deinit(&m);
    return st;
}

/* one curve per run from its metrics: train loss (which 0) or test accuracy
 * in % (which 1) against the epoch */
static lc_status curve(const study *S, const run *r, int which, double **xs, double **ys, int *n)
{
    char path[1200], dir[1100];
    run_dir(S, r, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    lc_metrics m;
    *xs = *ys = NULL;
    *n = 0;
    LC_TRY(lc_metrics_load(path, &m));
    int k = m.n_eval;
    *xs = malloc((size_t)(k ? k : 1) * sizeof **xs);
    *ys = malloc((size_t)(k ? k : 1) * sizeof **ys);
    if (!*xs || !*ys) { lc_metrics_deinit(&m); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < k; i++) {
        (*xs)[i] = m.eval[i].epoch;
        (*ys)[i] = which ? 100 * m.eval[i].test_acc : m.eval[i].train_loss;
    }
    *n = k;
    lc_metrics_deinit(&m);
    return LC_OK;
}

static lc_status curves_figure(const study *S, figs *F, const run **rs, int nr, int which, const char *name,
                               const char *title, char labels[][48], const double (*rgb)[3], const bool *dashed)
{
    double *xs[32] = {0}, *ys[32] = {0};
    lc_series s[32];
    int n = 0;
    lc_status st = LC_OK;
    for (int i = 0; i < nr && i < 32 && st == LC_OK; i++) {
        int k;
        st = curve(S, rs[i], which, &xs[n], &ys[n], &k);
        if (st != LC_OK) break;
        s[n] = (lc_series){.x = xs[n], .y = ys[n], .n = k, .label = labels[i], .dashed = dashed && dashed[i], .points = k < 30};
        memcpy(s[n].rgb, rgb[i], sizeof s[n].rgb);
        n++;
    }
    if (st == LC_OK && n > 0) {
        lc_figure f = {.title = title, .xlabel = "Epoch", .ylabel = which ? "Test accuracy (%)" : "Training loss",
                       .legend = true};
        st = plot(S, F, name, &f, s, n);
    }
    for (int i = 0; i < 32; i++) { free(xs[i]); free(ys[i]); }
    return st;
}

static lc_status figures(const study *S, figs *F)
{
    char title[640];
    const char *scale = S->quick ? "quick scale" : "paper scale";
    if (S->kind == S_MNIST) {
        int L = S->n_layers_toy;
        double *x = calloc((size_t)L, sizeof *x), *y = calloc((size_t)L * 4, sizeof *y);
        if (!x || !y) { free(x); free(y); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
        int nok[2] = {0, 0};
        for (int l = 0; l < L; l++) {
            x[l] = l;
            for (int m = 0; m < 2; m++) {
                double sum = 0;
                int n = 0;
                for (int i = 0; i < S->n_runs; i++) {
                    const run *r = &S->runs[i];
                    if (r->layer == l && r->fixed == (m == 1) && r->status == R_OK && isfinite(r->test_acc)) {
                        sum += 100 * r->test_acc;
                        n++;
                    }
                }
                y[m * L + l] = n ? sum / n : NAN;
                nok[m] += n > 0;
                y[(2 + m) * L + l] = S->task == TASK_MNIST && l < 10 ? paper_toy[m][l] : NAN;
            }
        }
        lc_series s[4];
        int n = 0;
        if (nok[0]) s[n++] = (lc_series){.x = x, .y = y, .n = L, .rgb = {C_SGD[0], C_SGD[1], C_SGD[2]}, .label = "normal", .points = true};
        if (nok[1]) s[n++] = (lc_series){.x = x, .y = y + L, .n = L, .rgb = {C_LAYCA[0], C_LAYCA[1], C_LAYCA[2]}, .label = "fixed gating", .points = true};
        if (S->task == TASK_MNIST) {
            s[n++] = (lc_series){.x = x, .y = y + 2 * L, .n = L, .rgb = {C_SGD_P[0], C_SGD_P[1], C_SGD_P[2]}, .label = "paper: normal", .dashed = true};
            s[n++] = (lc_series){.x = x, .y = y + 3 * L, .n = L, .rgb = {C_LAYCA_P[0], C_LAYCA_P[1], C_LAYCA_P[2]}, .label = "paper: fixed", .dashed = true};
        }
        snprintf(title, sizeof title, "MNIST toy, one layer trained (%s)", scale);
        lc_figure f = {.title = title, .xlabel = "Index of the trained layer", .ylabel = "Test accuracy (%)",
                       .legend = true, .xmin = -0.5, .xmax = L - 0.5};
        lc_status st = n ? plot(S, F, "accuracy-by-layer", &f, s, n) : LC_OK;
        free(x);
        free(y);
        return st;
    }
    if (S->kind == S_ALPHA || S->kind == S_LRGRID) {
        bool known = S->task == TASK_C10 || S->task == TASK_C100 || S->task == TASK_TINY;
        double x[2][MAX_LIST], y[2][MAX_LIST], px[2][13], py[2][13];
        int n[2] = {0, 0}, np[2] = {0, 0};
        for (int i = 0; i < S->n_runs; i++) {
            const run *r = &S->runs[i];
            int k = S->kind == S_ALPHA && !r->layca ? 1 : 0;
            if (r->status != R_OK || n[k] >= MAX_LIST) continue;
            x[k][n[k]] = S->kind == S_ALPHA ? r->alpha : r->lr;
            y[k][n[k]++] = 100 * r->test_acc;
        }
        if (known) {
            int cnt = S->kind == S_ALPHA ? 13 : 10;
            for (int k = 0; k < (S->kind == S_ALPHA ? 2 : 1); k++)
                for (int j = 0; j < cnt; j++) {
                    px[k][np[k]] = S->kind == S_ALPHA ? paper_alphas[j] : pow(3.0, j - 7);
                    py[k][np[k]++] = fabs(S->kind == S_ALPHA ? paper_alpha_acc[S->task][k][j] : paper_lr_acc[S->task][j]);
                }
        }
        lc_series s[4];
        int ns = 0;
        if (S->kind == S_ALPHA) {
            if (n[0]) s[ns++] = (lc_series){.x = x[0], .y = y[0], .n = n[0], .rgb = {C_LAYCA[0], C_LAYCA[1], C_LAYCA[2]}, .label = "Layca", .points = true};
            if (n[1]) s[ns++] = (lc_series){.x = x[1], .y = y[1], .n = n[1], .rgb = {C_SGD[0], C_SGD[1], C_SGD[2]}, .label = "SGD", .points = true};
            if (known) {
                s[ns++] = (lc_series){.x = px[0], .y = py[0], .n = 13, .rgb = {C_LAYCA_P[0], C_LAYCA_P[1], C_LAYCA_P[2]}, .label = "paper: Layca", .dashed = true};
                s[ns++] = (lc_series){.x = px[1], .y = py[1], .n = 13, .rgb = {C_SGD_P[0], C_SGD_P[1], C_SGD_P[2]}, .label = "paper: SGD", .dashed = true};
            }
            snprintf(title, sizeof title, "%s: test accuracy against alpha (%s)", S->model_name, scale);
            lc_figure f = {.title = title, .xlabel = "alpha (< 0: first layers faster, > 0: last layers faster)",
                           .ylabel = "Test accuracy (%)", .legend = true, .xmin = -1, .xmax = 1};
            if (ns) LC_TRY(plot(S, F, "accuracy-vs-alpha", &f, s, ns));
            /* rotation curves at alpha 0, and the Layca training-loss plateaus */
            const run *a0[2] = {NULL, NULL};
            const run *pl[5];
            char lab[5][48];
            double rgb[5][3];
            int npl = 0;
            static const double plateau_alphas[5] = {0, 0.1, 0.2, 0.3, 0.4};
            for (int i = 0; i < S->n_runs; i++) {
                const run *r = &S->runs[i];
                if (r->status != R_OK) continue;
                if (r->alpha == 0) a0[r->layca ? 0 : 1] = r;
            }
            for (int j = 0; j < 5; j++)
                for (int i = 0; i < S->n_runs; i++) {
                    const run *r = &S->runs[i];
                    if (r->status == R_OK && r->layca && fabs(r->alpha - plateau_alphas[j]) < 1e-9) {
                        pl[npl] = r;
                        snprintf(lab[npl], sizeof lab[0], "alpha %.1f", r->alpha);
                        lc_viridis(plateau_alphas[j] / 0.4 * 0.9, rgb[npl]);
                        npl++;
                    }
                }
            for (int k = 0; k < 2; k++) {
                if (!a0[k]) continue;
                snprintf(title, sizeof title, "%s, %s, alpha 0: layer rotation (%s)", S->model_name, k ? "SGD" : "Layca", scale);
                LC_TRY(plot_rotation(S, F, a0[k], k ? "rotation-alpha0-sgd" : "rotation-alpha0-layca", title));
            }
            if (npl) {
                snprintf(title, sizeof title, "%s, Layca: training loss for alpha 0 .. 0.4 (plateaus, %s)", S->model_name, scale);
                LC_TRY(curves_figure(S, F, pl, npl, 0, "loss-layca-alphas", title, lab, (const double(*)[3])rgb, NULL));
            }
        } else {
            if (n[0]) s[ns++] = (lc_series){.x = x[0], .y = y[0], .n = n[0], .rgb = {C_SGD[0], C_SGD[1], C_SGD[2]}, .label = "SGD, alpha 0", .points = true};
            if (known) s[ns++] = (lc_series){.x = px[0], .y = py[0], .n = 10, .rgb = {C_SGD_P[0], C_SGD_P[1], C_SGD_P[2]}, .label = "paper", .dashed = true};
            snprintf(title, sizeof title, "%s: SGD test accuracy against the learning rate (%s)", S->model_name, scale);
            double lo = INFINITY, hi = 0;
            for (int i = 0; i < ns; i++)
                for (int j = 0; j < s[i].n; j++) { lo = fmin(lo, s[i].x[j]); hi = fmax(hi, s[i].x[j]); }
            lc_figure f = {.title = title, .xlabel = "Learning rate", .ylabel = "Test accuracy (%)", .legend = true,
                           .logx = true, .xmin = lo / 2, .xmax = hi * 2};
            if (ns) LC_TRY(plot(S, F, "accuracy-vs-lr", &f, s, ns));
        }
        return LC_OK;
    }
    /* optimizers, weight decay: test accuracy curves and each run's rotation */
    const run *rs[32];
    char lab[32][48];
    double rgb[32][3];
    bool dashed[32];
    int nr = 0;
    for (int i = 0; i < S->n_runs && nr < 32; i++) {
        const run *r = &S->runs[i];
        if (r->status != R_OK) continue;
        rs[nr] = r;
        if (S->kind == S_OPTIM) {
            snprintf(lab[nr], sizeof lab[0], "%s%s", paper_optims[r->paper_idx].label, r->layca ? " + Layca" : " + L2");
            lc_viridis(r->paper_idx / 4.0 * 0.9, rgb[nr]);
            dashed[nr] = !r->layca;
        } else {
            snprintf(lab[nr], sizeof lab[0], "L2 %g", r->weight_decay);
            memcpy(rgb[nr], r->weight_decay > 0 ? C_SGD : C_LAYCA, sizeof rgb[0]);
            dashed[nr] = false;
        }
        nr++;
    }
    if (nr) {
        snprintf(title, sizeof title, "%s: test accuracy (%s)", S->model_name, scale);
        LC_TRY(curves_figure(S, F, rs, nr, 1, "accuracy-curves", title, lab, (const double(*)[3])rgb, dashed));
    }
    for (int i = 0; i < nr; i++) {
        char name[128];
        snprintf(name, sizeof name, "rotation-%s", rs[i]->id);
        snprintf(title, sizeof title, "%s, %.47s: layer rotation (%s)", S->model_name, lab[i], scale);
        LC_TRY(plot_rotation(S, F, rs[i], name, title));
    }
    return LC_OK;
}

/* ------------------------------------------------------------------ */
/* running                                                              */

static void run_desc(const run *r, char *buf, size_t len)
{
    char sc[128];
    sched_str(&r->sched, sc, sizeof sc);
    size_t o = (size_t)snprintf(buf, len, "%s%s %s %.4g", r->layca ? "layca-" : "", r->optimizer, r->layca ? "rho" : "lr", r->lr);
    if (r->alpha != 0 && o < len) o += (size_t)snprintf(buf + o, len - o, ", alpha %g", r->alpha);
    if (r->weight_decay > 0 && o < len) o += (size_t)snprintf(buf + o, len - o, ", L2 %g", r->weight_decay);
    if (r->train_only[0] && o < len) o += (size_t)snprintf(buf + o, len - o, ", only %s%s", r->train_only, r->fixed ? ", fixed gating" : "");
    if (o < len) {
        if (r->steps > 0) o += (size_t)snprintf(buf + o, len - o, ", %lld steps", (long long)r->steps);
        else o += (size_t)snprintf(buf + o, len - o, ", %d epochs", r->epochs);
    }
    if (r->sched.n > 0 && o < len) o += (size_t)snprintf(buf + o, len - o, ", schedule %s", sc);
    if (o < len) snprintf(buf + o, len - o, ", seed %lld", (long long)r->seed);
}

/* The study's progress: the running run's line every ~10 s with the ETA of
 * the whole study (this run's estimate, plus the runs left at the mean wall
 * time of the runs done in this process, or of this one). */
typedef struct study_progress {
    int index, total;           /* the run (1-based) and the study's runs */
    int left_after;             /* runs still to do after this one */
    double done_s;              /* wall time of the runs done in this process */
    int done;                   /* their number */
    double t_run, last;         /* this run's start, the last line */
} study_progress;

static void format_hms(double s, char *buf, size_t cap)
{
    long long v = isfinite(s) && s >= 0 ? (long long)(s + 0.5) : -1;
    if (v < 0) snprintf(buf, cap, "?");
    else if (v >= 3600) snprintf(buf, cap, "%lldh%02lldm", v / 3600, (v / 60) % 60);
    else snprintf(buf, cap, "%lldm%02llds", v / 60, v % 60);
}

static double study_eta(const study_progress *sp, double run_eta)
{
    double run_s = lc_now_s() - sp->t_run + run_eta;
    double per = sp->done > 0 ? sp->done_s / sp->done : run_s;
    return run_eta + sp->left_after * per;
}

static void on_study_progress(void *ctx, const lc_train_progress *p)
{
    study_progress *sp = ctx;
    double now = lc_now_s();
    if (p->epoch_end || now - sp->last < 10.0) return;
    sp->last = now;
    char a[32], b[32];
    format_hms(p->eta_s, a, sizeof a);
    format_hms(study_eta(sp, isfinite(p->eta_s) ? p->eta_s : 0), b, sizeof b);
    fprintf(stderr, "[%d/%d] step %lld/%lld, loss %.4f, run ETA %s, study ETA %s\n", sp->index, sp->total,
            (long long)p->step, (long long)p->total_steps, p->loss, a, b);
}

static void do_run(const study *S, run *r, study_progress *sp)
{
    char dir[1100], metrics[1200], bad[1200];
    run_dir(S, r, dir, sizeof dir);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
    lc_train_opts o;
    lc_train_opts_init(&o);
    /* a diverged run is a result (its table cell says "NaN loss"), not a failure */
    o.on_nonfinite = LC_NONFINITE_CONTINUE;
    sp->t_run = sp->last = lc_now_s();
    if (!S->verbose) {
        o.progress_fn = on_study_progress;
        o.progress_ctx = sp;
    }
    o.model_path = S->model;
    o.data_spec = S->data;
    if (r->fail) { /* test hook: a data spec that cannot be read */
        snprintf(bad, sizeof bad, "mnist:%s/no-such-data (--test-fail-run)", dir);
        o.data_spec = bad;
    }
    o.device = S->device;
    o.device_only = S->device_only;
    o.metrics_path = metrics;
    o.quiet = !S->verbose;
    o.eval_every = S->eval_every;
    o.data.per_class = S->per_class;
    o.data.train_subset = S->train_subset;
    o.data.test_subset = S->test_subset;
    o.train_only = r->train_only[0] ? r->train_only : NULL;
    o.fixed_gating = r->fixed;
    o.flip = S->flip == 1;
    snprintf(o.spec.optimizer, sizeof o.spec.optimizer, "%s", r->optimizer);
    o.spec.layca = r->layca;
    o.spec.lr = r->lr;
    o.spec.momentum = r->momentum;
    o.spec.nesterov = 0;
    o.spec.alpha = r->alpha;
    o.spec.weight_decay = r->weight_decay;
    o.spec.n_milestones = r->sched.n;
    memcpy(o.spec.milestones, r->sched.ms, sizeof o.spec.milestones);
    o.spec.factor = r->sched.n > 0 ? r->sched.factor : 1.0;
    if (r->steps > 0) o.spec.steps = r->steps;
    else o.spec.epochs = r->epochs;
    o.spec.batch = r->batch;
    o.spec.seed = r->seed;

    lc_log_level lvl = lc_log_get_level();
    if (!S->verbose && lvl == LC_LOG_INFO) lc_log_set_level(LC_LOG_WARN);
    double t0 = lc_now_s();
    lc_train_result res;
    lc_error_clear();
    memset(&res, 0, sizeof res);
    lc_status st = lc_mkdirs(dir);
    if (st == LC_OK) st = lc_train_run(&o, &res);
    r->wall_s = lc_now_s() - t0;
    lc_log_set_level(lvl);
    r->message[0] = 0;
    if (st != LC_OK) {
        r->status = st == LC_ERR_UNSUPPORTED ? R_UNSUPPORTED : R_ERROR;
        snprintf(r->message, sizeof r->message, "%s", lc_error_message());
        lc_train_result_free(&res);
        return;
    }
    r->status = R_OK;
    r->test_acc = res.test_acc;
    r->test_loss = res.test_loss;
    r->train_acc = res.train_acc;
    r->train_loss = res.train_loss;
    r->steps_done = (double)res.steps;
    r->epochs_done = res.epochs;
    r->train_s = res.seconds;
    /* the final rotation: the metrics file's last rotation record */
    lc_metrics m;
    if (lc_metrics_load(metrics, &m) == LC_OK) {
        if (m.n_rot > 0) {
            r->n_layers = m.n_layers;
            r->rot_med = median_of(m.rot[m.n_rot - 1].rotation, m.n_layers, &r->rot_min, &r->rot_max);
        }
        lc_metrics_deinit(&m);
    } else {
        lc_error_clear();
        r->n_layers = res.n_layers;
        r->rot_med = median_of(res.rotation, res.n_layers, &r->rot_min, &r->rot_max);
    }
    lc_train_result_free(&res);
}

int lc_study_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(study_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    study *S = calloc(1, sizeof *S);
    if (!S) { fprintf(stderr, "layca: error: out of memory\n"); return 1; }
    int rc = 0;
    S->kind = S_COUNT;
    for (int k = 0; k < S_COUNT; k++)
        if (!strcmp(argv[1], study_names[k])) S->kind = (study_kind)k;
    if (S->kind == S_COUNT) {
        rc = usage_error("unknown study '%s' (known: mnist-toy, alpha-sweep, lr-grid, optimizers, weight-decay)", argv[1]);
        goto end;
    }
    S->name = study_names[S->kind];
    S->scale = -1;
    S->epochs = S->batch = S->reps = S->eval_every = S->per_class = -1;
    S->steps = S->seed = S->train_subset = S->test_subset = -1;
    S->lr = S->lr_layca = S->lr_sgd = NAN;
    S->sched_set = -1;
    S->flip = -1;
    rc = parse_options(S, argc, argv);
    if (rc) { rc = rc < 0 ? 0 : rc; goto end; }
    if (!S->out[0]) snprintf(S->out, sizeof S->out, "runs/study-%s", S->name);
    S->quick = S->scale >= 0 ? S->scale == 0 : default_scale_is_quick(S->device);
    if ((rc = resolve(S))) goto end;

    /* what the scale changed, loudly */
    if (!S->dry_run) fprintf(stderr, "study %s: %d runs in %s, %s scale%s\n", S->name, S->n_runs, S->out, S->quick ? "QUICK" : "paper",
            S->scale < 0 ? (S->quick ? " (the default on a CPU device; --scale paper for the paper's settings)"
                                     : " (the default on this device; --scale quick for a short version)")
                         : "");
    for (int i = 0; i < S->n_notes && !S->dry_run; i++) fprintf(stderr, "  %s: %s\n", S->quick ? "QUICK" : "note", S->notes[i]);

    if (S->dry_run) {
        printf("study %s, %s scale, %d runs, folder %s\n", S->name, S->quick ? "quick" : "paper", S->n_runs, S->out);
        for (int i = 0; i < S->n_notes; i++) printf("  scale: %s\n", S->notes[i]);
        for (int i = 0; i < S->n_runs; i++) {
            run *r = &S->runs[i];
            char d[512], cfg[4096];
            run_desc(r, d, sizeof d);
            const char *state = "";
            if (load_result(S, r, cfg, sizeof cfg)) state = r->status == R_OK ? "  [finished]" : r->status == R_ERROR ? "  [failed]" : "  [unsupported]";
            printf("%3d  %-22s %s%s\n", i + 1, r->id, d, state);
        }
        goto end;
    }

    if ((rc = check_params(S))) goto end;
    char path[1200];
    snprintf(path, sizeof path, "%s/runs", S->out);
    if (lc_mkdirs(path) != LC_OK) { rc = fail(); goto end; }
    snprintf(path, sizeof path, "%s/study.json", S->out);
    if (lc_file_write_atomic(path, S->params.p, S->params.n) != LC_OK) { rc = fail(); goto end; }

    /* finished runs */
    for (int i = 0; i < S->n_runs; i++) {
        run *r = &S->runs[i];
        char cfg[4096];
        if (!load_result(S, r, cfg, sizeof cfg)) continue;
        if (strcmp(cfg, r->config)) {
            fprintf(stderr, "study: run %s was made with other settings; running it again\n", r->id);
            r->status = R_PENDING;
            r->message[0] = 0;
            continue;
        }
        if (S->rerun && strstr(r->id, S->rerun)) {
            fprintf(stderr, "study: running %s again (--rerun %s)\n", r->id, S->rerun);
            r->status = R_PENDING;
            r->message[0] = 0;
            continue;
        }
        r->loaded = true;
    }
    double t_start = lc_now_s();
    study_progress sp = {.total = S->n_runs};
    int todo = 0;
    for (int i = 0; i < S->n_runs; i++)
        todo += !(S->runs[i].loaded && (S->runs[i].status == R_OK || (S->runs[i].status == R_ERROR && !S->retry_failed)));
    if (S->max_runs > 0 && todo > S->max_runs) todo = (int)S->max_runs;
    long long new_runs = 0;
    bool stopped = false;
    int failed_now = 0;
    for (int i = 0; i < S->n_runs; i++) {
        run *r = &S->runs[i];
        if (r->loaded && r->status == R_OK) { fprintf(stderr, "skipping finished run %s\n", r->id); continue; }
        if (r->loaded && r->status == R_ERROR && !S->retry_failed) {
            fprintf(stderr, "skipping failed run %s (--retry-failed reruns it): %s\n", r->id, r->message);
            continue;
        }
        if (S->max_runs > 0 && new_runs >= S->max_runs) { stopped = true; break; }
        char d[512];
        run_desc(r, d, sizeof d);
        fprintf(stderr, "[%d/%d] %s: %s\n", i + 1, S->n_runs, r->id, d);
        sp.index = i + 1;
        sp.left_after = todo - (int)new_runs - 1;
        if (sp.left_after < 0) sp.left_after = 0;
        do_run(S, r, &sp);
        sp.done_s += r->wall_s;
        sp.done++;
        r->loaded = false;
        if (r->status != R_UNSUPPORTED) new_runs++;
        if (r->status == R_OK) {
            char a[32], b[32], c[32];
            format_hms(study_eta(&sp, 0), c, sizeof c);
            fprintf(stderr, "[%d/%d] %s: test acc %s%%, train acc %s%% (%.1f s); study ETA %s\n", i + 1, S->n_runs,
                    r->id, fmt_pct(a, sizeof a, r->test_acc), fmt_pct(b, sizeof b, r->train_acc), r->wall_s, c);
        } else if (r->status == R_UNSUPPORTED) {
            fprintf(stderr, "[%d/%d] %s: unsupported by the trainer (%s); recorded as unsupported, going on\n", i + 1,
                    S->n_runs, r->id, r->message);
        } else {
            failed_now++;
            fprintf(stderr, "[%d/%d] %s: FAILED: %s; recorded, going on\n", i + 1, S->n_runs, r->id, r->message);
        }
        if (write_result(S, r) != LC_OK || write_results(S) != LC_OK) { rc = fail(); goto end; }
    }
    if (write_results(S) != LC_OK) { rc = fail(); goto end; }

    /* the table and the figures */
    table t = {0};
    t.cell = calloc(MAX_RUNS, sizeof *t.cell);
    if (!t.cell) { rc = 1; goto end; }
    build_table(S, &t);
    sb txt = {0};
    table_text(S, &t, &txt);
    free(t.cell);
    if (txt.p) fputs(txt.p, stdout);
    sb_free(&txt);
    figs *F = calloc(1, sizeof *F);
    if (!F) { rc = 1; goto end; }
    lc_status fst = figures(S, F);
    for (int i = 0; i < F->n; i++) printf("figure: %s\n", F->list[i]);
    free(F);
    printf("results: %s/results.csv, %s/results.json, %s/table.txt\n", S->out, S->out, S->out);
    fflush(stdout);
    if (fst != LC_OK) { rc = fail(); goto end; }

    int done = 0, errors = 0, unsup = 0;
    for (int i = 0; i < S->n_runs; i++) {
        done += S->runs[i].status != R_PENDING;
        errors += S->runs[i].status == R_ERROR;
        unsup += S->runs[i].status == R_UNSUPPORTED;
    }
    fprintf(stderr, "study %s: %lld new run%s in %.1f s; %d of %d runs finished (%d failed, %d unsupported)\n", S->name,
            new_runs, new_runs == 1 ? "" : "s", lc_now_s() - t_start, done, S->n_runs, errors, unsup);
    if (stopped)
        fprintf(stderr, "study %s: stopped after %lld new runs (--max-runs); run the same command again to go on\n", S->name,
                new_runs);
    if (errors) {
        fprintf(stderr, "layca: error: %d run%s failed (%d in this invocation), see %s/results.csv; the others went on; "
                        "--retry-failed reruns them\n",
                errors, errors == 1 ? "" : "s", failed_now, S->out);
        rc = 1;
    }
end:
    sb_free(&S->params);
    free(S->runs);
    free(S);
    return rc;
}

/* The study module's shared pieces: the paper's numbers, options, small text
 * helpers, creating and destroying a study. */
#include "study_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const kind_names[LC_STUDY_COUNT] = {"mnist-toy", "alpha-sweep", "lr-grid", "optimizers",
                                                       "weight-decay"};
const char *const lc_study_status_names[] = {"pending", "ok", "error"};

const char *lc_study_kind_name(lc_study_kind k) { return k >= 0 && k < LC_STUDY_COUNT ? kind_names[k] : "?"; }

lc_study_kind lc_study_kind_from_name(const char *name)
{
    for (int k = 0; k < LC_STUDY_COUNT; k++)
        if (name && !strcmp(name, kind_names[k])) return (lc_study_kind)k;
    return LC_STUDY_COUNT;
}

/* ------------------------------------------------------------------ */
/* the paper's numbers (reference section 6)                           */

const double lc_study_paper_alphas[13] = {-0.8, -0.6, -0.4, -0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8};

const char *const lc_study_task_title[] = {"", "CIFAR-10 VGG (C10-CNN1)", "CIFAR-100 ResNet-32 (C100-resnet)",
                                  "Tiny ImageNet CNN (tiny-CNN)", "Wilson et al. VGG on CIFAR-10 (C10-CNN2)",
                                  "MNIST toy (mlp11)"};

/* section 6.1 (Figure 2 data); negative = marked * (final train accuracy
 * < 98%, left out of the paper's figure) */
const double lc_study_paper_alpha_acc[4][2][13] = {
    [TASK_C10] = {{79.79, 83.49, 85.14, 84.66, 85.03, 87.12, 89.18, 89.43, 88.63, 87.88, 85.05, 70.36, 51.80},
                  {77.33, 76.75, 77.92, 79.49, 79.00, 80.54, 80.32, 82.57, 83.75, 83.44, 83.61, 80.21, 66.03}},
    [TASK_C100] = {{-2.95, -44.06, 47.50, 47.26, 49.31, 52.19, 54.98, 54.28, 51.41, 46.92, 40.70, 31.37, -23.04},
                   {-1.00, -9.68, 43.68, 43.58, 45.49, 43.92, 43.86, 45.76, 45.79, 44.73, 44.08, 37.19, -26.64}},
    [TASK_TINY] = {{-16.78, 40.31, 41.02, 41.77, 41.06, 44.50, 50.75, 49.34, 45.54, 42.58, 37.81, 28.29, 20.22},
                   {-14.34, 37.65, 39.84, 41.55, 41.70, 42.47, 43.01, 42.03, 41.38, 40.18, 38.35, 31.78, 13.02}},
};
/* section 6.2: SGD at alpha 0, lr = 3^-7 .. 3^2 */
const double lc_study_paper_lr_acc[4][10] = {
    [TASK_C10] = {58.6, 60.4, 64.1, 70.2, 75.4, 80.4, 80.4, 81.5, 75.2, 69.2},
    [TASK_C100] = {-2.9, -5.5, -33.9, -36.7, 40.3, 43.6, 44.0, 43.6, -1.0, -1.0},
    [TASK_TINY] = {-7.7, -13.8, 29.3, 29.5, 35.7, 40.8, 42.5, 39.1, 30.2, 28.7},
};
/* section 6.3 */
const double lc_study_paper_toy[2][10] = {{74.47, 75.98, 74.93, 73.12, 70.60, 68.27, 65.65, 63.08, 60.45, 57.52},
                                        {46.39, 45.36, 45.08, 45.38, 45.75, 46.24, 48.66, 49.69, 51.45, 57.52}};

/* section 6.4 (Wilson VGG, 250 epochs) */
const optim_paper lc_study_paper_optims[LC_STUDY_MAX_OPTIMIZERS] = {
    {"sgd", "SGD", 0.5, 1.0 / 27, 92.53, 92.33, 0.997},
    {"sgd_amom", "SGD_AMom", 0.5, 1.0 / 243, 92.19, 92.65, NAN},
    {"adam", "Adam", 3e-4, 1.0 / 243, 91.43, 92.72, 0.938},
    {"rmsprop", "RMSprop", 3e-4, 1.0 / 27, 91.19, 92.29, 0.959},
    {"adagrad", "Adagrad", 0.01, 1.0 / 27, 88.97, 92.54, 0.896},
};

int lc_study_paper_optimizer_count(void) { return LC_STUDY_MAX_OPTIMIZERS; }
const char *lc_study_paper_optimizer(int i) { return i >= 0 && i < LC_STUDY_MAX_OPTIMIZERS ? lc_study_paper_optims[i].name : NULL; }

/* ------------------------------------------------------------------ */
/* helpers                                                              */

void lc_study_json_str(lc_strbuf *b, const char *s)
{
    lc_strbuf_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') lc_strbuf_printf(b, "\\%c", *p);
        else if (*p == '\n') lc_strbuf_printf(b, "\\n");
        else if (*p == '\t') lc_strbuf_printf(b, "\\t");
        else if (*p < 0x20) lc_strbuf_printf(b, "\\u%04x", *p);
        else lc_strbuf_printf(b, "%c", *p);
    }
    lc_strbuf_printf(b, "\"");
}

void lc_study_csv_str(lc_strbuf *b, const char *s)
{
    if (!s || !*s) return;
    if (!strpbrk(s, ",\"\n")) { lc_strbuf_printf(b, "%s", s); return; }
    lc_strbuf_printf(b, "\"");
    for (; *s; s++) {
        if (*s == '"') lc_strbuf_printf(b, "\"\"");
        else if (*s == '\n') lc_strbuf_printf(b, " ");
        else lc_strbuf_printf(b, "%c", *s);
    }
    lc_strbuf_printf(b, "\"");
}

bool lc_study_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

const char *lc_study_fmt_g(char *buf, size_t len, double v)
{
    if (isnan(v)) snprintf(buf, len, "-");
    else snprintf(buf, len, "%.6g", v);
    return buf;
}

const char *lc_study_fmt_pct(char *buf, size_t len, double frac)
{
    if (!isfinite(frac)) snprintf(buf, len, "-");
    else snprintf(buf, len, "%.2f", 100 * frac);
    return buf;
}

double lc_study_median(const double *v, int n, double *lo, double *hi)
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

void lc_study_fmt_paper(char *buf, size_t len, double v)
{
    if (isnan(v)) snprintf(buf, len, "-");
    else if (v < 0) snprintf(buf, len, "%.2f*", -v);
    else snprintf(buf, len, "%.2f", v);
}

void lc_study_note(study *S, const char *fmt, ...)
{
    if (S->n_notes >= (int)LC_COUNTOF(S->notes)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(S->notes[S->n_notes++], sizeof S->notes[0], fmt, ap);
    va_end(ap);
}

void lc_study_sched_str(const schedule *s, char *buf, size_t len)
{
    if (s->n <= 0) { snprintf(buf, len, "none"); return; }
    size_t o = 0;
    for (int i = 0; i < s->n && o < len; i++) o += (size_t)snprintf(buf + o, len - o, "%s%d", i ? "," : "", s->ms[i]);
    if (o < len) snprintf(buf + o, len - o, ":%g", s->factor);
}

void lc_study_run_dir(const study *S, const run *r, char *buf, size_t len)
{
    snprintf(buf, len, "%s/runs/%s", S->out, r->id);
}

void lc_study_run_desc(const run *r, char *buf, size_t len)
{
    char sc[128];
    lc_study_sched_str(&r->sched, sc, sizeof sc);
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

/* ------------------------------------------------------------------ */
/* options, creating                                                    */

void lc_study_opts_init(lc_study_opts *o, lc_study_kind kind)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->scale = -1;
    o->epochs = o->batch = o->reps = o->eval_every = o->per_class = -1;
    o->steps = o->seed = o->train_subset = o->test_subset = -1;
    o->lr = o->lr_layca = o->lr_sgd = NAN;
    o->sched_set = -1;
    o->flip = -1;
}

static bool default_scale_is_quick(const lc_study_opts *so)
{
    lc_train_opts t;
    lc_train_opts_init(&t);
    t.device = so->device;
    t.device_only = so->device_only;
    if (so->train_opts) so->train_opts(&t);
    lc_rt_opts ro = t.rt;
    ro.selector = t.device;
    ro.device_only = t.device_only;
    lc_rt *rt;
    if (lc_rt_create_opts(&rt, &ro) != LC_OK) { lc_error_clear(); return true; }
    bool cpu = (rt->info.type & CL_DEVICE_TYPE_CPU) != 0;
    lc_rt_destroy(rt);
    return cpu;
}

lc_status lc_study_create(const lc_study_opts *o, lc_study **out, bool *usage)
{
    *out = NULL;
    *usage = false;
    if (o->kind < 0 || o->kind >= LC_STUDY_COUNT) {
        *usage = true;
        return LC_ERR(LC_ERR_INVALID, "unknown study kind %d", (int)o->kind);
    }
    study *S = calloc(1, sizeof *S);
    if (!S) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    S->kind = o->kind;
    S->name = kind_names[o->kind];
    S->o = *o;
    S->log = o->log ? o->log : stderr;
    if (o->out && *o->out) snprintf(S->out, sizeof S->out, "%s", o->out);
    else snprintf(S->out, sizeof S->out, "runs/study-%s", S->name);
    S->epochs = o->epochs;
    S->batch = o->batch;
    S->eval_every = o->eval_every;
    S->per_class = o->per_class;
    S->steps = o->steps;
    S->seed = o->seed;
    S->train_subset = o->train_subset;
    S->test_subset = o->test_subset;
    S->flip = o->flip;
    S->n_optims = o->n_optimizers;
    memcpy(S->optims, o->optimizers, sizeof S->optims);
    S->quick = o->scale >= 0 ? o->scale == 0 : default_scale_is_quick(o);
    lc_status st = lc_study_resolve(S);
    if (st != LC_OK) {
        *usage = S->usage;
        lc_study_destroy(S);
        return st;
    }
    *out = S;
    return LC_OK;
}

void lc_study_destroy(lc_study *S)
{
    if (!S) return;
    lc_strbuf_free(&S->params);
    free(S->runs);
    free(S);
}

int lc_study_run_count(const lc_study *S) { return S->n_runs; }
const char *lc_study_out(const lc_study *S) { return S->out; }

/* layca-bench: the same training work measured on every OpenCL device
 * present, side by side, each figure the median of repeats with its range.
 * `layca-bench --help` defines every figure; docs/bench.md says more. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "cli_env.h"
#include "cli_parse.h"
#include "lc_train.h"

static const char *help_text =
    "usage: layca-bench [options]\n"
    "\n"
    "Measures the same work on OpenCL devices and prints one line per measurement\n"
    "(--json: one JSON object per line), or with --compare one side-by-side table.\n"
    "\n"
    "devices and work:\n"
    "  --compare            one table: rows are measurements, columns the devices (with platform,\n"
    "                       driver and version); host BLAS figures in a table of their own\n"
    "  --devices LIST       comma-separated selectors (P:D indices or name substrings); default: every\n"
    "                       device found (RUSTICL_ENABLE=llvmpipe adds Mesa's rusticl here)\n"
    "  --device SEL         one device\n"
    "  --model FILE         a model to train (repeatable); default: every models/*.json, or with\n"
    "                       --compare models/mlp3.json\n"
    "  --batch N            batch size (default 128)\n"
    "  --steps N            training steps per repeat (default 20, --quick 5)\n"
    "  --repeats N          repeats of every figure (default 5, --quick 3); each figure is reported\n"
    "                       as the median with its minimum and maximum\n"
    "  --quick              small run: no 1024^3 GEMM, no start-up and no per-op profile; fewer steps\n"
    "  --copy-mib N         size of each copy buffer (default 64)\n"
    "  --gemm LIST          SGEMM shapes MxNxK, comma-separated (default 128x784x784 and, without\n"
    "                       --quick, 1024x1024x1024)\n"
    "  --device-only        no host shortcuts in the training step: CLBlast GEMMs and device\n"
    "                       convolutions even where buffers live in host memory\n"
    "  --clblast-alloc      also time each SGEMM with CLBlast allocating its temporary buffer per\n"
    "                       call (the default without --quick)\n"
    "outputs:\n"
    "  --json               one JSON object per measurement on stdout\n"
    "  --report DIR         also write DIR/bench.md, DIR/bench.json and DIR/bench.png|svg\n"
    "  --profile[=op|kernel|node], --no-profile   per-op time of each model's step (default: kernel,\n"
    "                       off with --quick and --compare)\n"
    "\n"
    "figures (time is host wall-clock time around the work and a clFinish, unless said):\n"
    "  copy             gbps: bytes read plus bytes written by one copy kernel over a buffer of\n"
    "                   --copy-mib MiB (float4 per work-item), divided by its time.  clpeak counts the\n"
    "                   bytes read only, by a read-mostly kernel, timed by OpenCL events: a copy\n"
    "                   that runs at clpeak's figure shows here as up to twice it.\n"
    "  launch_latency   us: 200 launches of an empty one-work-item kernel enqueued back to back,\n"
    "                   then one clFinish, divided by 200: the cost per launch of a stream of\n"
    "                   small launches (enqueue + run).  clpeak's latency is one launch's queued\n"
    "                   to end time on the device's profiling clock, waited for alone.\n"
    "  gemm             gflops: 2*M*N*K / time of one row-major SGEMM (NN), after a warm-up call.\n"
    "                   backend clblast: CLBlast with layca's reused temporary buffer;\n"
    "                   clblast-alloc (--clblast-alloc, or without --quick): CLBlast allocating\n"
    "                   its own per call (layca before), run alternately with clblast;\n"
    "                   temp_bytes: the temporary buffer it needs (0: direct kernel, no padding).\n"
    "                   clpeak's GFLOP/s is a peak of multiply-adds, not a GEMM.\n"
    "  host gemm        the same SGEMM by the host BLAS on host memory: a property of the host\n"
    "                   CPU and its BLAS, not of any OpenCL device (device \"host\").\n"
    "  train_step       ms per training step (upload, forward, backward, optimizer; SGD) averaged\n"
    "                   over --steps steps after 2 warm-up steps; images_per_s = batch / step;\n"
    "                   cpu_ms: CPU time of the whole process per step; path: host-shortcuts when\n"
    "                   layca used the host BLAS or host convolutions on a host-memory device,\n"
    "                   else device.\n"
    "  optimizer_step   ms per optimizer step alone (sgd, layca-fused, layca-unfused); gbps: the\n"
    "                   least traffic it needs (sgd: 12 bytes per parameter, Layca: 24) per\n"
    "                   second; share_of_copy: that over the device's median copy gbps.\n"
    "  memory           MiB of the activation plan, the parameters, and all device buffers.\n"
    "  startup          s from process start to the end of step 1 (cold: empty caches; warm: all\n"
    "                   caches filled), one child process each; not with --quick.\n"
    "  op               where the step's time goes: each launch timed alone (see --profile).\n";

typedef struct bench {
    bench_results *res;
    int cur;          /* device index in res (-1: host) */
    bool json, compare;
    int batch, steps, repeats;
    const char *self;
    double copy_gbps; /* median, of the current device, for shares */
    bool profile;
    lc_exec_prof_by profile_by;
    size_t copy_bytes;
    size_t gemm[16][3];
    int n_gemm;
    bool quick;
    bool clblast_alloc; /* also time CLBlast allocating its temporary buffer per call */
} bench;

/* A figure handed to emit: a string, or n numbers (one per repeat). */
typedef struct fig { const char *key; const char *s; const double *v; int n; } fig;
#define FS(k, str) ((fig){(k), (str), NULL, 0})
#define FA(k, arr, cnt) ((fig){(k), NULL, (arr), (cnt)})
#define FV(k, val) ((fig){(k), NULL, (const double[]){(val)}, 1})

static void json_str(const char *s)
{
    lc_strbuf b = {0};
    lc_strbuf_json_string(&b, s ? s : "");
    fputs(b.s ? b.s : "\"\"", stdout);
    lc_strbuf_free(&b);
}

static void json_num(double v)
{
    if (isfinite(v)) printf("%.6g", v);
    else printf("null");
}

/* Records one measurement and prints it: a text line (on stderr as progress
 * under --compare without --json) or a JSON object. */
static void emit(bench *b, const char *what, const char *model, int batch, const fig *f, int n)
{
    bench_results *r = b->res;
    if (r->n == r->cap) {
        int nc = r->cap ? r->cap * 2 : 64;
        bench_rec *nr = realloc(r->rec, (size_t)nc * sizeof *nr);
        if (nr) { r->rec = nr; r->cap = nc; }
    }
    if (r->n < r->cap) {
        bench_rec *rec = &r->rec[r->n++];
        memset(rec, 0, sizeof *rec);
        rec->dev = b->cur;
        snprintf(rec->what, sizeof rec->what, "%s", what);
        snprintf(rec->model, sizeof rec->model, "%s", model ? model : "");
        rec->batch = batch;
        for (int i = 0; i < n && rec->nf < BENCH_MAXFIG; i++) {
            bench_fig *bf = &rec->f[rec->nf++];
            snprintf(bf->key, sizeof bf->key, "%s", f[i].key);
            if (f[i].s) {
                bf->is_str = true;
                snprintf(bf->s, sizeof bf->s, "%s", f[i].s);
            } else {
                bf->n = f[i].n < BENCH_MAXREP ? f[i].n : BENCH_MAXREP;
                memcpy(bf->v, f[i].v, (size_t)bf->n * sizeof *bf->v);
            }
        }
    }
    const char *devname = b->cur < 0 ? "host" : r->dev[b->cur].info.name;
    if (b->json) {
        printf("{\"device\": ");
        json_str(devname);
        if (b->cur >= 0) printf(", \"device_id\": \"%s\"", r->dev[b->cur].id);
        printf(", \"what\": \"%s\"", what);
        if (model) { printf(", \"model\": "); json_str(model); }
        if (batch) printf(", \"batch\": %d", batch);
        int reps = 0;
        for (int i = 0; i < n; i++) {
            printf(", \"%s\": ", f[i].key);
            if (f[i].s) { json_str(f[i].s); continue; }
            double med, lo, hi;
            bench_stats(f[i].v, f[i].n, &med, &lo, &hi);
            json_num(med);
            if (f[i].n > 1) {
                printf(", \"%s_min\": ", f[i].key);
                json_num(lo);
                printf(", \"%s_max\": ", f[i].key);
                json_num(hi);
                if (f[i].n > reps) reps = f[i].n;
            }
        }
        if (reps) printf(", \"repeats\": %d", reps);
        printf("}\n");
        fflush(stdout);
        return;
    }
    FILE *out = b->compare ? stderr : stdout;
    char head[200];
    snprintf(head, sizeof head, "%s%s%s", what, model ? " " : "", model ? model : "");
    fprintf(out, "  %-36.36s", head);
    if (batch) fprintf(out, " b%-4d", batch);
    else fprintf(out, "      ");
    for (int i = 0; i < n; i++) {
        if (f[i].s) { fprintf(out, "  %s %s", f[i].key, f[i].s); continue; }
        double med, lo, hi;
        char a[32], c[32], d[32];
        bench_stats(f[i].v, f[i].n, &med, &lo, &hi);
        bench_num(a, sizeof a, med);
        if (f[i].n > 1) {
            bench_num(c, sizeof c, lo);
            bench_num(d, sizeof d, hi);
            fprintf(out, "  %s %s [%s-%s]", f[i].key, a, c, d);
        } else {
            fprintf(out, "  %s %s", f[i].key, a);
        }
    }
    fprintf(out, "\n");
    fflush(out);
}

static int fail(const char *what)
{
    fprintf(stderr, "layca-bench: error: %s: %s\n", what, lc_error_message());
    return 1;
}

/* ---- peaks ---- */

static lc_status bench_copy(bench *b, lc_rt *rt)
{
    size_t bytes = b->copy_bytes;
    if (bytes > rt->info.max_alloc_bytes / 2) bytes = (size_t)(rt->info.max_alloc_bytes / 2);
    bytes &= ~(size_t)15;
    cl_mem x, y;
    LC_TRY(lc_rt_alloc(rt, bytes, &x));
    lc_status st = lc_rt_alloc(rt, bytes, &y);
    if (st != LC_OK) { clReleaseMemObject(x); return st; }
    cl_program p;
    cl_kernel k = NULL, ke = NULL;
    double gbps[BENCH_MAXREP], ms[BENCH_MAXREP], lat[BENCH_MAXREP];
    int R = b->repeats;
    if ((st = lc_rt_fill_zero(rt, x, 0, bytes)) != LC_OK) goto done;
    if ((st = lc_rt_fill_zero(rt, y, 0, bytes)) != LC_OK) goto done;
    if ((st = lc_rt_program(rt, "bench", "", &p)) != LC_OK) goto done;
    if ((st = lc_rt_kernel(rt, p, "lc_bench_copy", &k)) != LC_OK) goto done;
    int n4 = (int)(bytes / 16);
    lc_arg a[] = {LC_ARG(y), LC_ARG(x), LC_ARG(n4)};
    if ((st = lc_rt_set_args(k, a, 3, "lc_bench_copy")) != LC_OK) goto done;
    size_t g = (size_t)n4;
    for (int r = -1; r < R; r++) { /* r == -1: warm-up */
        lc_rt_finish(rt);
        double t0 = lc_now_s();
        if ((st = lc_rt_launch(rt, k, 1, &g, NULL, "lc_bench_copy")) != LC_OK) goto done;
        if ((st = lc_rt_finish(rt)) != LC_OK) goto done;
        double t = lc_now_s() - t0;
        if (r < 0) continue;
        gbps[r] = 2.0 * (double)bytes / t / 1e9;
        ms[r] = t * 1e3;
    }
    /* launch latency: many tiny launches, one wait */
    if ((st = lc_rt_kernel(rt, p, "lc_bench_empty", &ke)) != LC_OK) goto done;
    lc_arg e[] = {LC_ARG(x)};
    if ((st = lc_rt_set_args(ke, e, 1, "lc_bench_empty")) != LC_OK) goto done;
    size_t one = 1;
    enum { LAUNCHES = 200 };
    for (int r = -1; r < R; r++) {
        lc_rt_finish(rt);
        double t0 = lc_now_s();
        for (int i = 0; i < LAUNCHES; i++)
            if ((st = lc_rt_launch(rt, ke, 1, &one, NULL, "lc_bench_empty")) != LC_OK) goto done;
        if ((st = lc_rt_finish(rt)) != LC_OK) goto done;
        if (r >= 0) lat[r] = (lc_now_s() - t0) / LAUNCHES * 1e6;
    }
    double lo, hi;
    bench_stats(gbps, R, &b->copy_gbps, &lo, &hi);
    fig f[] = {FA("gbps", gbps, R), FA("ms", ms, R), FV("bytes", (double)bytes)};
    emit(b, "copy", NULL, 0, f, 3);
    fig fl[] = {FA("us", lat, R)};
    emit(b, "launch_latency", NULL, 0, fl, 1);
done:
    if (k) clReleaseKernel(k);
    if (ke) clReleaseKernel(ke);
    clReleaseMemObject(x);
    clReleaseMemObject(y);
    return st;
}

/* Calls per timed sample so that a sample lasts at least ~5 ms. */
static int calls_for(double t) { return t >= 5e-3 ? 1 : t <= 5e-5 ? 100 : (int)ceil(5e-3 / t); }

/* CLBlast SGEMM on the device: with the reused temporary buffer and, unless
 * --quick (or with --clblast-alloc), with CLBlast's own allocation per call,
 * the two alternating. */
static lc_status bench_gemm(bench *b, lc_rt *rt, size_t m, size_t n, size_t k)
{
    cl_mem A, B, C;
    LC_TRY(lc_rt_alloc(rt, m * k * 4, &A));
    lc_status st = lc_rt_alloc(rt, k * n * 4, &B);
    if (st != LC_OK) { clReleaseMemObject(A); return st; }
    if ((st = lc_rt_alloc(rt, m * n * 4, &C)) != LC_OK) { clReleaseMemObject(A); clReleaseMemObject(B); return st; }
    lc_rt_fill_zero(rt, A, 0, m * k * 4);
    lc_rt_fill_zero(rt, B, 0, k * n * 4);
    int nv = b->clblast_alloc ? 2 : 1, R = b->repeats;
    double gf[2][BENCH_MAXREP], ms[2][BENCH_MAXREP];
    size_t temp = 0;
    if ((st = lc_rt_clblast_temp_bytes(rt, false, false, m, n, k, 0, k, 0, n, 0, n, &temp)) != LC_OK) goto done;
    int calls[2] = {1, 1};
    for (int r = -1; r < R; r++) {
        for (int v = 0; v < nv; v++) {
            lc_rt_clblast_reuse_temp(rt, v == 0);
            int c = r < 0 ? 1 : calls[v];
            lc_rt_finish(rt);
            double t0 = lc_now_s();
            for (int i = 0; i < c && st == LC_OK; i++)
                st = lc_rt_sgemm_with(rt, LC_GEMM_CLBLAST, false, false, m, n, k, 1.0f, A, 0, k, B, 0, n, 0.0f, C, 0, n);
            if (st != LC_OK) goto done;
            if ((st = lc_rt_finish(rt)) != LC_OK) goto done;
            double t = (lc_now_s() - t0) / c;
            if (r < 0) {
                /* the warm-up call compiled the kernels: time one more */
                lc_rt_finish(rt);
                t0 = lc_now_s();
                if ((st = lc_rt_sgemm_with(rt, LC_GEMM_CLBLAST, false, false, m, n, k, 1.0f, A, 0, k, B, 0, n, 0.0f,
                                           C, 0, n)) != LC_OK)
                    goto done;
                if ((st = lc_rt_finish(rt)) != LC_OK) goto done;
                calls[v] = calls_for(lc_now_s() - t0);
                continue;
            }
            gf[v][r] = 2.0 * (double)m * (double)n * (double)k / t / 1e9;
            ms[v][r] = t * 1e3;
        }
    }
    char shape[64];
    snprintf(shape, sizeof shape, "%zux%zux%zu", m, n, k);
    for (int v = 0; v < nv; v++) {
        fig f[] = {FS("shape", shape), FS("backend", v == 0 ? "clblast" : "clblast-alloc"), FA("gflops", gf[v], R),
                   FA("ms", ms[v], R), FV("temp_bytes", (double)temp)};
        emit(b, "gemm", NULL, 0, f, 5);
    }
done:
    lc_rt_clblast_reuse_temp(rt, true);
    clReleaseMemObject(A);
    clReleaseMemObject(B);
    clReleaseMemObject(C);
    return st;
}

/* The host BLAS on host memory: no OpenCL device involved. */
static lc_status bench_host_gemm(bench *b, size_t m, size_t n, size_t k)
{
    float *A = calloc(m * k, 4), *B = calloc(k * n, 4), *C = calloc(m * n, 4);
    lc_status st = LC_OK;
    if (!A || !B || !C) { st = LC_ERR(LC_ERR_NOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < m * k; i++) A[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < k * n; i++) B[i] = (float)(i % 5) * 0.1f;
    int R = b->repeats, calls = 1;
    double gf[BENCH_MAXREP], ms[BENCH_MAXREP];
    for (int r = -1; r < R; r++) {
        int c = r < 0 ? 1 : calls;
        double t0 = lc_now_s();
        for (int i = 0; i < c && st == LC_OK; i++)
            st = lc_rt_host_sgemm(false, false, m, n, k, 1.0f, A, k, B, n, 0.0f, C, n);
        if (st != LC_OK) goto done;
        double t = (lc_now_s() - t0) / c;
        if (r < 0) { calls = calls_for(t); continue; }
        gf[r] = 2.0 * (double)m * (double)n * (double)k / t / 1e9;
        ms[r] = t * 1e3;
    }
    char shape[64];
    snprintf(shape, sizeof shape, "%zux%zux%zu", m, n, k);
    fig f[] = {FS("shape", shape), FS("backend", "host-blas"), FA("gflops", gf, R), FA("ms", ms, R)};
    emit(b, "gemm", NULL, 0, f, 4);
done:
    free(A);
    free(B);
    free(C);
    return st;
}

/* ---- a model's training step ---- */

typedef struct setup {
    lc_graph *g;
    lc_exec *ex;
    lc_optim *opt;
    float *x;
    int32_t *y;
    double *rates;
} setup;

static void setup_free(setup *s)
{
    lc_optim_destroy(s->opt);
    lc_exec_destroy(s->ex);
    lc_graph_destroy(s->g);
    free(s->x);
    free(s->y);
    free(s->rates);
    memset(s, 0, sizeof *s);
}

static lc_status make_setup(setup *s, lc_rt *rt, const char *path, int batch, const lc_optim_config *oc, double rate)
{
    memset(s, 0, sizeof *s);
    lc_train_spec ts;
    LC_TRY(lc_model_load(path, &s->g, &ts));
    lc_graph *g = s->g;
    LC_TRY(lc_exec_compile(g, batch, true, NULL));
    lc_exec_opts xo = cli_env_exec_opts();
    LC_TRY(lc_exec_create_opts(&s->ex, rt, g, &xo));
    float *p = malloc((size_t)g->param_floats * 4 + 4);
    if (!p) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    lc_graph_init_params(g, p, 1);
    lc_status st = lc_exec_write_params(s->ex, p);
    free(p);
    LC_TRY(st);
    lc_optim_tensor *t = lc_train_optim_tensors(g, false);
    s->rates = calloc((size_t)g->n_params + 1, sizeof *s->rates);
    if (!t || !s->rates) { free(t); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < g->n_params; i++) s->rates[i] = rate;
    st = lc_optim_create(&s->opt, rt, oc, t, g->n_params, g->param_floats, lc_exec_params(s->ex),
                         lc_exec_grads(s->ex));
    free(t);
    LC_TRY(st);
    LC_TRY(lc_optim_set_rates(s->opt, s->rates));
    int64_t in = lc_shape_numel(&g->nodes[g->input].shape);
    s->x = malloc((size_t)(batch * in) * 4);
    s->y = malloc((size_t)batch * 4);
    if (!s->x || !s->y) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    lc_rng r;
    lc_rng_seed(&r, 3);
    for (int64_t i = 0; i < batch * in; i++) s->x[i] = (float)lc_rng_normal(&r);
    for (int i = 0; i < batch; i++) s->y[i] = (int32_t)lc_rng_below(&r, (uint64_t)g->classes);
    return LC_OK;
}

/* CPU seconds used by the whole process (all threads) so far */
static double cpu_s(void)
{
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u) != 0) return NAN;
    return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec + 1e-6 * (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static lc_status train_steps(setup *s, lc_rt *rt, int batch, int steps, double *sec, double *cpu)
{
    lc_rt_finish(rt);
    double t0 = lc_now_s(), c0 = cpu_s();
    for (int i = 0; i < steps; i++) {
        LC_TRY(lc_exec_set_batch(s->ex, s->x, s->y, batch));
        LC_TRY(lc_exec_forward(s->ex));
        LC_TRY(lc_exec_backward(s->ex));
        LC_TRY(lc_optim_step(s->opt));
    }
    LC_TRY(lc_rt_finish(rt));
    *sec = lc_now_s() - t0;
    if (cpu) *cpu = cpu_s() - c0;
    return LC_OK;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Where the step's time goes: each launch timed alone (a wait after each),
 * grouped per op and part; one "op" line per group, largest first, with its
 * share of the profiled step (the sum of the groups) and of the measured
 * step.  The launches of the optimizer are not included. */
static lc_status bench_profile(bench *b, setup *s, const char *model, double step_ms)
{
    enum { MAXE = 256 };
    lc_exec_prof_entry *e = calloc(MAXE, sizeof *e);
    if (!e) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    int n = 0;
    double tot = 0;
    int reps = b->steps < 3 ? b->steps : 3;
    lc_status st = lc_exec_profile(s->ex, reps, b->profile_by, e, MAXE, &n, &tot);
    if (st == LC_OK) {
        if (n > MAXE) n = MAXE;
        for (int i = 0; i < n; i++) {
            fig f[6];
            int nf = 0;
            f[nf++] = FS("op", e[i].op);
            if (e[i].part[0]) f[nf++] = FS("part", e[i].part);
            f[nf++] = FV("ms", e[i].ms);
            f[nf++] = FV("share", tot > 0 ? e[i].ms / tot : NAN);
            f[nf++] = FV("share_of_step", step_ms > 0 ? e[i].ms / step_ms : NAN);
            f[nf++] = FV("launches", e[i].launches);
            emit(b, "op", model, b->batch, f, nf);
        }
        fig f[] = {FV("ms", tot), FV("measured_ms", step_ms)};
        emit(b, "op_total", model, b->batch, f, 2);
    }
    free(e);
    return st;
}

static lc_status bench_model(bench *b, lc_rt *rt, const char *path)
{
    setup s;
    lc_optim_config oc;
    lc_optim_config_defaults(&oc, LC_OPTIM_SGD);
    oc.geometry = cli_env_load()->optim; /* LAYCA_OPTIM_* */
    lc_status st = make_setup(&s, rt, path, b->batch, &oc, 0.01);
    if (st != LC_OK) { setup_free(&s); return st; }
    int R = b->repeats;
    double ms[BENCH_MAXREP], sps[BENCH_MAXREP], ips[BENCH_MAXREP], cpu_ms[BENCH_MAXREP], sec, cpu;
    if ((st = train_steps(&s, rt, b->batch, 2, &sec, NULL)) == LC_OK) {
        for (int r = 0; r < R && st == LC_OK; r++) {
            st = train_steps(&s, rt, b->batch, b->steps, &sec, &cpu);
            ms[r] = sec / b->steps * 1e3;
            sps[r] = 1e3 / ms[r];
            ips[r] = b->batch * 1e3 / ms[r];
            cpu_ms[r] = cpu / b->steps * 1e3;
        }
    }
    if (st == LC_OK) {
        lc_exec_counts c = lc_exec_launch_counts(s.ex);
        const char *path_kind = b->res->dev[b->cur].host_shortcuts ? "host-shortcuts" : "device";
        fig f[] = {FA("ms", ms, R), FA("steps_per_s", sps, R), FA("images_per_s", ips, R),
                   FV("launches", (double)(c.forward + c.backward + lc_optim_launches_per_step(s.opt))),
                   FA("cpu_ms", cpu_ms, R), FS("path", path_kind)};
        emit(b, "train_step", base_name(path), b->batch, f, 6);
        fig m[] = {FV("activation_mib", (double)s.g->act_floats * 4 / 1048576.0),
                   FV("parameter_mib", (double)s.g->param_floats * 4 / 1048576.0),
                   FV("device_mib", (double)lc_exec_device_bytes(s.ex) / 1048576.0)};
        emit(b, "memory", base_name(path), b->batch, m, 3);
        double med, lo, hi;
        bench_stats(ms, R, &med, &lo, &hi);
        if (b->profile) st = bench_profile(b, &s, base_name(path), med);
    }
    /* the optimizer step alone: plain SGD, Layca fused, Layca unfused */
    for (int v = 0; v < 3 && st == LC_OK; v++) {
        if (v) {
            lc_optim_destroy(s.opt);
            s.opt = NULL;
            lc_optim_config lc;
            lc_optim_config_defaults(&lc, LC_OPTIM_SGD);
            lc.geometry = cli_env_load()->optim; /* LAYCA_OPTIM_* */
            lc.layca = true;
            lc_optim_tensor *t = lc_train_optim_tensors(s.g, true);
            if (!t) { st = LC_ERR(LC_ERR_NOMEM, "out of memory"); break; }
            st = lc_optim_create(&s.opt, rt, &lc, t, s.g->n_params, s.g->param_floats, lc_exec_params(s.ex),
                                 lc_exec_grads(s.ex));
            free(t);
            if (st != LC_OK) break;
            lc_optim_set_fused(s.opt, v == 1);
            if ((st = lc_optim_set_rates(s.opt, s.rates)) != LC_OK) break;
        }
        /* warm-up, then sized so a repeat lasts ~20 ms at least */
        lc_rt_finish(rt);
        double t0 = lc_now_s();
        for (int i = 0; i < 3 && st == LC_OK; i++) st = lc_optim_step(s.opt);
        lc_rt_finish(rt);
        double one = (lc_now_s() - t0) / 3;
        int reps = one >= 0.02 ? 1 : one <= 2e-4 ? 100 : (int)ceil(0.02 / one);
        double oms[BENCH_MAXREP], gbps[BENCH_MAXREP], share[BENCH_MAXREP];
        /* minimum traffic: plain SGD reads w, g and writes w; the fused
         * Layca step also writes and reads the step s once more and reads w
         * again (two passes) */
        double per = v == 0 ? 12.0 : 24.0;
        double gb = per * (double)s.g->param_floats / 1e9;
        for (int r = 0; r < R && st == LC_OK; r++) {
            lc_rt_finish(rt);
            t0 = lc_now_s();
            for (int i = 0; i < reps && st == LC_OK; i++) st = lc_optim_step(s.opt);
            lc_rt_finish(rt);
            oms[r] = (lc_now_s() - t0) / reps * 1e3;
            gbps[r] = gb / (oms[r] / 1e3);
            share[r] = b->copy_gbps > 0 ? gbps[r] / b->copy_gbps : NAN;
        }
        if (st != LC_OK) break;
        fig f[] = {FS("variant", v == 0 ? "sgd" : v == 1 ? "layca-fused" : "layca-unfused"), FA("ms", oms, R),
                   FV("launches", (double)lc_optim_launches_per_step(s.opt)), FA("gbps", gbps, R),
                   FA("share_of_copy", share, R)};
        emit(b, "optimizer_step", base_name(path), 0, f, 5);
    }
    setup_free(&s);
    return st;
}

/* ---- start-up: a child process from start to the end of step 1 ---- */

static bool device_only; /* --device-only: no host shortcuts (lc_rt_opts.device_only) */

static lc_status open_rt(lc_rt **rt, const char *sel)
{
    lc_rt_opts o = cli_env_rt_opts(sel, device_only);
    return lc_rt_create_opts(rt, &o);
}

static int startup_child(const char *device, const char *model, int batch)
{
    double t0 = lc_now_s();
    lc_rt *rt;
    if (open_rt(&rt, device) != LC_OK) return fail("device");
    setup s;
    lc_optim_config oc;
    lc_optim_config_defaults(&oc, LC_OPTIM_SGD);
    oc.geometry = cli_env_load()->optim; /* LAYCA_OPTIM_* */
    double sec;
    if (make_setup(&s, rt, model, batch, &oc, 0.01) != LC_OK || train_steps(&s, rt, batch, 1, &sec, NULL) != LC_OK) {
        setup_free(&s);
        lc_rt_destroy(rt);
        return fail(model);
    }
    printf("%.6f %d %d\n", lc_now_s() - t0, rt->programs_built, rt->programs_from_cache);
    setup_free(&s);
    lc_rt_destroy(rt);
    return 0;
}

static lc_status bench_startup(bench *b, const char *device, const char *model)
{
    char dir[] = "/tmp/layca-bench-XXXXXX";
    if (!mkdtemp(dir)) return LC_ERR(LC_ERR_IO, "mkdtemp failed");
    /* run 0, cold: an empty layca cache and no PoCL kernel cache; run 1 fills
     * PoCL's own cache of the kernels' native code (not reported); run 2,
     * warm: every cache populated, as a user's second run */
    for (int run = 0; run < 3; run++) {
        bool warm = run > 0;
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "LAYCA_CACHE_DIR=%s %s '%s' --startup-child '%s' --device '%s' --batch %d%s", dir,
                 warm ? "" : "POCL_KERNEL_CACHE=0", b->self, model, device, b->batch,
                 device_only ? " --device-only" : "");
        FILE *p = popen(cmd, "r");
        if (!p) return LC_ERR(LC_ERR_IO, "cannot run %s", b->self);
        double s = NAN;
        int built = -1, cached = -1;
        if (fscanf(p, "%lf %d %d", &s, &built, &cached) != 3) s = NAN;
        pclose(p);
        if (run == 1) continue;
        fig f[] = {FS("variant", warm ? "warm" : "cold"), FV("s", s), FV("programs_built", built),
                   FV("programs_from_cache", cached)};
        emit(b, "startup", base_name(model), b->batch, f, 4);
    }
    char rm[600];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0) LC_DEBUG("could not remove %s", dir);
    return LC_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void host_info(bench_results *r)
{
    snprintf(r->host_cpu, sizeof r->host_cpu, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) != 0) continue;
            const char *c = strchr(line, ':');
            if (!c) continue;
            c++;
            while (*c == ' ') c++;
            snprintf(r->host_cpu, sizeof r->host_cpu, "%s", c);
            r->host_cpu[strcspn(r->host_cpu, "\n")] = 0;
            break;
        }
        fclose(f);
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    r->host_threads = n > 0 ? (int)n : 0;
}

/* Adds the devices LIST names (comma-separated selectors) to r, in order,
 * without duplicates. */
static int pick_devices(bench_results *r, const char *list, const lc_device_info *all, int n_all)
{
    if (!list) {
        for (int i = 0; i < n_all && r->n_dev < BENCH_MAXDEV; i++) {
            bench_dev *d = &r->dev[r->n_dev++];
            memset(d, 0, sizeof *d);
            d->info = all[i];
            snprintf(d->id, sizeof d->id, "%d:%d", all[i].platform, all[i].device);
        }
        return 0;
    }
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (!*tok) continue;
        lc_device_info info;
        lc_rt_opts so = cli_env_rt_opts(tok, false);
        if (lc_rt_select(&so, &info) != LC_OK) {
            fprintf(stderr, "layca-bench: --devices: %s\n", lc_error_message());
            return 2;
        }
        bool dup = false;
        for (int i = 0; i < r->n_dev; i++)
            dup |= r->dev[i].info.platform == info.platform && r->dev[i].info.device == info.device;
        if (dup || r->n_dev == BENCH_MAXDEV) continue;
        bench_dev *d = &r->dev[r->n_dev++];
        memset(d, 0, sizeof *d);
        d->info = info;
        snprintf(d->id, sizeof d->id, "%d:%d", info.platform, info.device);
    }
    return 0;
}

static bool parse_shapes(const char *s, bench *b)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    b->n_gemm = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        unsigned long long m, n, k;
        char extra;
        if (sscanf(tok, "%llux%llux%llu%c", &m, &n, &k, &extra) != 3 || !m || !n || !k || m > 65536 || n > 65536 ||
            k > 65536 || b->n_gemm == 16)
            return false;
        b->gemm[b->n_gemm][0] = m;
        b->gemm[b->n_gemm][1] = n;
        b->gemm[b->n_gemm][2] = k;
        b->n_gemm++;
    }
    return b->n_gemm > 0;
}

static int usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "layca-bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see --help)\n");
    return 2;
}

/* The flags of layca-bench besides those kept in bench. */
typedef struct bench_args {
    const char *device, *devices, *report, *models[64];
    int n_models;
} bench_args;

/* Parses argv into b and a and settles the defaults that depend on other
 * flags; returns -1 to go on, else the exit code (--help, a usage error, a
 * --startup-child run). */
static int parse_bench_args(int argc, char **argv, bench *b, bench_args *a)
{
    int profile_flag = -1, clblast_alloc = -1;
    long long v;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--json")) b->json = true;
        else if (!strcmp(f, "--quick")) b->quick = true;
        else if (!strcmp(f, "--compare")) b->compare = true;
        else if (!strcmp(f, "--device-only")) device_only = true;
        else if (!strcmp(f, "--clblast-alloc")) clblast_alloc = 1;
        else if (!strcmp(f, "--no-profile")) profile_flag = 0;
        else if (!strcmp(f, "--profile") || !strncmp(f, "--profile=", 10)) {
            profile_flag = 1;
            const char *p = f[9] == '=' ? f + 10 : "kernel";
            if (!strcmp(p, "op")) b->profile_by = LC_PROF_OP;
            else if (!strcmp(p, "kernel")) b->profile_by = LC_PROF_KERNEL;
            else if (!strcmp(p, "node")) b->profile_by = LC_PROF_NODE;
            else return usage("--profile takes op, kernel or node, got '%s'", p);
        } else if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(help_text, stdout);
            return 0;
        } else if (val && !strcmp(f, "--startup-child")) {
            const char *m = argv[++i];
            for (int j = i + 1; j + 1 < argc; j++) {
                if (!strcmp(argv[j], "--device")) a->device = argv[j + 1];
                if (!strcmp(argv[j], "--batch")) b->batch = atoi(argv[j + 1]);
            }
            for (int j = i + 1; j < argc; j++) device_only |= !strcmp(argv[j], "--device-only");
            return startup_child(a->device && *a->device ? a->device : NULL, m, b->batch);
        } else if (!strcmp(f, "--device") || !strcmp(f, "--devices") || !strcmp(f, "--model") ||
                   !strcmp(f, "--report") || !strcmp(f, "--batch") || !strcmp(f, "--steps") ||
                   !strcmp(f, "--repeats") || !strcmp(f, "--copy-mib") || !strcmp(f, "--gemm")) {
            if (!val) return usage("%s needs a value", f);
            i++;
            if (!strcmp(f, "--device")) a->device = val;
            else if (!strcmp(f, "--devices")) a->devices = val;
            else if (!strcmp(f, "--report")) a->report = val;
            else if (!strcmp(f, "--model")) {
                if (a->n_models < 64) a->models[a->n_models++] = val;
            } else if (!strcmp(f, "--gemm")) {
                if (!parse_shapes(val, b)) return usage("--gemm '%s': expected MxNxK[,MxNxK...] (at most 16)", val);
            } else {
                long long lo = 1, hi = !strcmp(f, "--repeats") ? BENCH_MAXREP : !strcmp(f, "--copy-mib") ? 4096 : 1 << 20;
                if (!lc_parse_long(val, lo, hi, &v)) {
                    char msg[128];
                    snprintf(msg, sizeof msg, "%s '%%s': expected an integer in [%lld, %lld]", f, lo, hi);
                    return usage(msg, val);
                }
                if (!strcmp(f, "--batch")) b->batch = (int)v;
                else if (!strcmp(f, "--steps")) b->steps = (int)v;
                else if (!strcmp(f, "--repeats")) b->repeats = (int)v;
                else b->copy_bytes = (size_t)v << 20;
            }
        } else {
            return usage("unknown option '%s'", f);
        }
    }
    if (a->device && a->devices) return usage("%s", "give --device or --devices, not both");
    if (b->steps < 0) b->steps = b->quick ? 5 : 20;
    if (b->repeats < 0) b->repeats = b->quick ? 3 : 5;
    b->profile = profile_flag >= 0 ? profile_flag == 1 : !(b->quick || b->compare);
    b->clblast_alloc = clblast_alloc >= 0 ? clblast_alloc == 1 : !b->quick;
    if (b->n_gemm == 0) {
        b->gemm[b->n_gemm][0] = 128, b->gemm[b->n_gemm][1] = 784, b->gemm[b->n_gemm][2] = 784, b->n_gemm++;
        if (!b->quick) b->gemm[b->n_gemm][0] = b->gemm[b->n_gemm][1] = b->gemm[b->n_gemm][2] = 1024, b->n_gemm++;
    }
    return -1;
}

/* Without --model: mlp3 for --compare, else every model in models/ of the
 * source tree (LAYCA_SOURCE_ROOT) or of the current folder, into a's list;
 * the paths made are in owned.  Returns -1 to go on, else the exit code. */
static int default_models(const bench *b, bench_args *a, char **owned, int *n_owned)
{
    const char *root = getenv("LAYCA_SOURCE_ROOT");
    if (a->n_models == 0 && b->compare) {
        char *p = malloc(1100);
        snprintf(p, 1100, "%s/models/mlp3.json", root ? root : ".");
        owned[(*n_owned)++] = p;
        a->models[a->n_models++] = p;
    } else if (a->n_models == 0) {
        /* every model in models/ beside the binary's source tree, or ./models */
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/models", root ? root : ".");
        DIR *d = opendir(dir);
        if (!d) { fprintf(stderr, "layca-bench: no --model given and no %s folder\n", dir); return 2; }
        struct dirent *e;
        while ((e = readdir(d)) && *n_owned < 64) {
            size_t l = strlen(e->d_name);
            if (l > 5 && !strcmp(e->d_name + l - 5, ".json")) {
                char *p = malloc(strlen(dir) + l + 2);
                sprintf(p, "%s/%s", dir, e->d_name);
                owned[(*n_owned)++] = p;
            }
        }
        closedir(d);
        qsort(owned, (size_t)*n_owned, sizeof *owned, cmp_str);
        for (int i = 0; i < *n_owned; i++) a->models[a->n_models++] = owned[i];
    }
    return -1;
}

/* Every measurement on device di of b's results (copies, GEMMs, models,
 * start-up on mlp11, else the first model).  Returns 0, else the exit code
 * of the last failure (reported; the others go on). */
static int bench_device(bench *b, int di, const bench_args *a)
{
    int rc = 0;
    bench_dev *d = &b->res->dev[di];
    b->cur = di;
    b->copy_gbps = NAN;
    lc_rt *rt;
    if (open_rt(&rt, d->id) != LC_OK) {
        snprintf(d->error, sizeof d->error, "%s", lc_error_message());
        return fail(d->id);
    }
    const char *ts = lc_rt_tune_state(rt);
    snprintf(d->tune, sizeof d->tune, "%s", !strncmp(ts, "tuned", 5) ? "tuned" : !strncmp(ts, "ignored", 7) ? "ignored (see the warning)" : "default");
    d->host_shortcuts = !device_only && lc_rt_host_blas_usable(rt);
    if (!b->json)
        fprintf(b->compare ? stderr : stdout, "device %s: %s (%s, %s, driver %s; CLBlast parameters %s)\n", d->id,
                rt->info.name, lc_rt_device_type_name(rt->info.type), rt->info.platform_name,
                rt->info.driver_version, d->tune);
    bool any_mlp11 = false;
    for (int m = 0; m < a->n_models; m++) any_mlp11 |= strstr(a->models[m], "mlp11") != NULL;
    lc_status st = bench_copy(b, rt);
    for (int gi = 0; gi < b->n_gemm && st == LC_OK; gi++) st = bench_gemm(b, rt, b->gemm[gi][0], b->gemm[gi][1], b->gemm[gi][2]);
    for (int m = 0; m < a->n_models && st == LC_OK; m++) {
        st = bench_model(b, rt, a->models[m]);
        if (st != LC_OK) {
            rc = fail(a->models[m]);
            st = LC_OK;
        }
    }
    for (int m = 0; m < a->n_models && st == LC_OK && !b->quick; m++)
        if (strstr(a->models[m], "mlp11") || (m == 0 && !any_mlp11)) st = bench_startup(b, d->id, a->models[m]);
    if (st != LC_OK) {
        snprintf(d->error, sizeof d->error, "%s", lc_error_message());
        rc = fail(rt->info.name);
    }
    lc_rt_destroy(rt);
    return rc;
}

int main(int argc, char **argv)
{
    cli_env_load(); /* the log level and the cache folder */
    bench_results res;
    memset(&res, 0, sizeof res);
    bench b = {.res = &res, .cur = -1, .batch = 128, .steps = -1, .repeats = -1, .self = argv[0], .profile = true,
               .profile_by = LC_PROF_KERNEL, .copy_bytes = (size_t)64 << 20};
    bench_args a = {0};
    char *owned[64];
    int n_owned = 0;
    int rc = parse_bench_args(argc, argv, &b, &a);
    if (rc >= 0) return rc;
    if ((rc = default_models(&b, &a, owned, &n_owned)) >= 0) return rc;
    res.repeats = b.repeats;
    res.batch = b.batch;
    res.steps = b.steps;
    res.quick = b.quick;
    res.device_only = device_only;
    for (int m = 0; m < a.n_models; m++) res.models[res.n_models++] = a.models[m];
    host_info(&res);

    lc_device_info *devs;
    int nd;
    if (lc_rt_list_devices(&devs, &nd) != LC_OK) return fail("listing devices");
    if (nd == 0) { fprintf(stderr, "layca-bench: no OpenCL device found\n"); free(devs); return 1; }
    rc = pick_devices(&res, a.device ? a.device : a.devices, devs, nd);
    free(devs);
    if (rc) return rc;
    if (b.compare && res.n_dev < 2 && !a.device && !a.devices)
        fprintf(stderr, "layca-bench: only one OpenCL device found (RUSTICL_ENABLE=llvmpipe adds Mesa's rusticl)\n");

    /* the host BLAS first: not a property of any OpenCL device */
    if (lc_rt_host_sgemm_available()) {
        b.cur = -1;
        if (!b.json) fprintf(b.compare ? stderr : stdout, "host: %s, %d threads (host BLAS, no OpenCL)\n",
                             res.host_cpu, res.host_threads);
        for (int gi = 0; gi < b.n_gemm; gi++)
            if (bench_host_gemm(&b, b.gemm[gi][0], b.gemm[gi][1], b.gemm[gi][2]) != LC_OK) rc = fail("host BLAS");
    }
    for (int di = 0; di < res.n_dev; di++) {
        int r = bench_device(&b, di, &a);
        if (r) rc = r;
    }
    if (b.compare && !b.json) bench_print_tables(&res, stdout);
    if (a.report) {
        if (bench_write_report(&res, a.report) != LC_OK) rc = fail(a.report);
        else fprintf(stderr, "layca-bench: report written to %s\n", a.report);
    }
    free(res.rec);
    for (int i = 0; i < n_owned; i++) free(owned[i]);
    return rc;
}

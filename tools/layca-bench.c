/* layca-bench: the same training work measured on every OpenCL device
 * present, next to the device's own measured peaks.
 *
 *   layca-bench [--device SEL] [--model FILE]... [--batch N] [--steps N] [--json] [--quick]
 *               [--profile[=op|kernel|node]] [--no-profile] [--device-only]
 *
 * Measures per device: copy bandwidth, launch latency, SGEMM GFLOP/s per
 * backend, training step time and images/s for each model, optimizer step
 * time (plain, Layca fused, Layca unfused) with its bytes moved as a share
 * of the copy bandwidth, cold and warm start (process start to the end of
 * the first training step), device memory of the plan, and where each
 * model's step spends its time ("op" lines: ms per step and share per op;
 * --profile=kernel splits ops into their kernels and GEMMs, =node per node;
 * on by default, --no-profile skips it).  Prints a table
 * on stdout, or with --json one JSON object per measurement.  --device-only
 * turns the host shortcuts off (lc_rt_opts.device_only): a CPU device runs
 * what a GPU runs. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lc_train.h"

typedef struct fig { const char *key; double v; const char *s; } fig;

typedef struct bench {
    bool json;
    int batch, steps;
    const char *self;
    double copy_gbps; /* of the current device, for shares */
    bool profile;     /* per-op timing after each model's step */
    lc_exec_prof_by profile_by;
} bench;

static void emit(bench *b, const lc_rt *rt, const char *what, const char *model, int batch, const fig *f, int n)
{
    if (b->json) {
        printf("{\"device\": \"%s\", \"what\": \"%s\"", rt->info.name, what);
        if (model) printf(", \"model\": \"%s\"", model);
        if (batch) printf(", \"batch\": %d", batch);
        for (int i = 0; i < n; i++) {
            if (f[i].s) printf(", \"%s\": \"%s\"", f[i].key, f[i].s);
            else if (isfinite(f[i].v)) printf(", \"%s\": %.6g", f[i].key, f[i].v);
            else printf(", \"%s\": null", f[i].key);
        }
        printf("}\n");
    } else {
        char head[160];
        snprintf(head, sizeof head, "%s%s%s", what, model ? " " : "", model ? model : "");
        printf("  %-44.44s", head);
        if (batch) printf(" b%-4d", batch);
        else printf("      ");
        for (int i = 0; i < n; i++) {
            if (f[i].s) printf("  %s %s", f[i].key, f[i].s);
            else printf("  %s %.4g", f[i].key, f[i].v);
        }
        printf("\n");
    }
    fflush(stdout);
}

static int fail(const char *what)
{
    fprintf(stderr, "layca-bench: error: %s: %s\n", what, lc_error_message());
    return 1;
}

/* ---- peaks ---- */

static lc_status bench_copy(bench *b, lc_rt *rt)
{
    size_t bytes = (size_t)64 << 20;
    if (bytes > rt->info.max_alloc_bytes / 2) bytes = rt->info.max_alloc_bytes / 2;
    bytes &= ~(size_t)15;
    cl_mem x, y;
    LC_TRY(lc_rt_alloc(rt, bytes, &x));
    lc_status st = lc_rt_alloc(rt, bytes, &y);
    if (st != LC_OK) { clReleaseMemObject(x); return st; }
    cl_program p;
    cl_kernel k = NULL, ke = NULL;
    double best = 1e30, lat = NAN;
    if ((st = lc_rt_fill_zero(rt, x, 0, bytes)) != LC_OK) goto done;
    if ((st = lc_rt_program(rt, "bench", "", &p)) != LC_OK) goto done;
    if ((st = lc_rt_kernel(rt, p, "lc_bench_copy", &k)) != LC_OK) goto done;
    int n4 = (int)(bytes / 16);
    lc_arg a[] = {LC_ARG(y), LC_ARG(x), LC_ARG(n4)};
    if ((st = lc_rt_set_args(k, a, 3, "lc_bench_copy")) != LC_OK) goto done;
    size_t g = (size_t)n4;
    for (int r = 0; r < 6; r++) {
        lc_rt_finish(rt);
        double t0 = lc_now_s();
        if ((st = lc_rt_launch(rt, k, 1, &g, NULL, "lc_bench_copy")) != LC_OK) goto done;
        lc_rt_finish(rt);
        double t = lc_now_s() - t0;
        if (r && t < best) best = t;
    }
    b->copy_gbps = 2.0 * (double)bytes / best / 1e9;
    /* launch latency: many tiny launches, one wait */
    if ((st = lc_rt_kernel(rt, p, "lc_bench_empty", &ke)) != LC_OK) goto done;
    lc_arg e[] = {LC_ARG(x)};
    if ((st = lc_rt_set_args(ke, e, 1, "lc_bench_empty")) != LC_OK) goto done;
    size_t one = 1;
    for (int r = 0; r < 2; r++) {
        lc_rt_finish(rt);
        double t0 = lc_now_s();
        for (int i = 0; i < 500; i++)
            if ((st = lc_rt_launch(rt, ke, 1, &one, NULL, "lc_bench_empty")) != LC_OK) goto done;
        lc_rt_finish(rt);
        lat = (lc_now_s() - t0) / 500 * 1e6;
    }
    fig f[] = {{"gbps", b->copy_gbps, NULL}, {"ms", best * 1e3, NULL}, {"bytes", (double)bytes, NULL}};
    emit(b, rt, "copy", NULL, 0, f, 3);
    fig fl[] = {{"us", lat, NULL}};
    emit(b, rt, "launch_latency", NULL, 0, fl, 1);
done:
    if (k) clReleaseKernel(k);
    if (ke) clReleaseKernel(ke);
    clReleaseMemObject(x);
    clReleaseMemObject(y);
    return st;
}

static lc_status bench_gemm(bench *b, lc_rt *rt, size_t m, size_t n, size_t k)
{
    cl_mem A, B, C;
    LC_TRY(lc_rt_alloc(rt, m * k * 4, &A));
    LC_TRY(lc_rt_alloc(rt, k * n * 4, &B));
    LC_TRY(lc_rt_alloc(rt, m * n * 4, &C));
    lc_rt_fill_zero(rt, A, 0, m * k * 4);
    lc_rt_fill_zero(rt, B, 0, k * n * 4);
    int backends[2] = {LC_GEMM_CLBLAST, LC_GEMM_HOST};
    lc_status st = LC_OK;
    for (int bi = 0; bi < (lc_rt_host_blas_usable(rt) ? 2 : 1); bi++) {
        double best = 1e30;
        for (int r = 0; r < 4; r++) {
            lc_rt_finish(rt);
            double t0 = lc_now_s();
            st = lc_rt_sgemm_with(rt, backends[bi], false, false, m, n, k, 1.0f, A, 0, k, B, 0, n, 0.0f, C, 0, n);
            if (st != LC_OK) goto done;
            lc_rt_finish(rt);
            double t = lc_now_s() - t0;
            if (r && t < best) best = t;
        }
        char shape[64];
        snprintf(shape, sizeof shape, "%zux%zux%zu", m, n, k);
        fig f[] = {{"shape", 0, shape}, {"backend", 0, lc_rt_gemm_backend_name(backends[bi])},
                   {"gflops", 2.0 * (double)m * (double)n * (double)k / best / 1e9, NULL}, {"ms", best * 1e3, NULL}};
        emit(b, rt, "gemm", NULL, 0, f, 4);
    }
done:
    clReleaseMemObject(A);
    clReleaseMemObject(B);
    clReleaseMemObject(C);
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
    LC_TRY(lc_graph_compile(g, batch, true, NULL));
    LC_TRY(lc_exec_create(&s->ex, rt, g));
    float *p = malloc((size_t)g->param_floats * 4 + 4);
    if (!p) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    lc_graph_init_params(g, p, 1);
    lc_status st = lc_exec_write_params(s->ex, p);
    free(p);
    LC_TRY(st);
    lc_optim_tensor *t = calloc((size_t)g->n_params + 1, sizeof *t);
    s->rates = calloc((size_t)g->n_params + 1, sizeof *s->rates);
    if (!t || !s->rates) { free(t); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < g->n_params; i++) {
        const lc_node *n = &g->nodes[g->params[i].node];
        t[i] = (lc_optim_tensor){g->params[i].offset, g->params[i].numel, n->trainable && g->params[i].grad_node >= 0,
                                 n->is_kernel};
        s->rates[i] = rate;
    }
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

static double last_cpu_s; /* CPU seconds of the last train_steps */

static lc_status train_steps(setup *s, lc_rt *rt, int batch, int steps, double *sec)
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
    last_cpu_s = cpu_s() - c0;
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
static lc_status bench_profile(bench *b, lc_rt *rt, setup *s, const char *model, double step_ms)
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
            fig f[] = {{"op", 0, e[i].op}, {"part", 0, e[i].part[0] ? e[i].part : NULL}, {"ms", e[i].ms, NULL},
                       {"share", tot > 0 ? e[i].ms / tot : NAN, NULL},
                       {"share_of_step", step_ms > 0 ? e[i].ms / step_ms : NAN, NULL},
                       {"launches", e[i].launches, NULL}};
            if (!f[1].s) {
                f[1] = f[2]; f[2] = f[3]; f[3] = f[4]; f[4] = f[5];
                emit(b, rt, "op", model, b->batch, f, 5);
            } else {
                emit(b, rt, "op", model, b->batch, f, 6);
            }
        }
        fig f[] = {{"ms", tot, NULL}, {"measured_ms", step_ms, NULL}};
        emit(b, rt, "op_total", model, b->batch, f, 2);
    }
    free(e);
    (void)rt;
    return st;
}

static lc_status bench_model(bench *b, lc_rt *rt, const char *path)
{
    setup s;
    lc_optim_config oc;
    lc_optim_config_defaults(&oc, LC_OPTIM_SGD);
    lc_status st = make_setup(&s, rt, path, b->batch, &oc, 0.01);
    if (st != LC_OK) { setup_free(&s); return st; }
    double sec;
    if ((st = train_steps(&s, rt, b->batch, 2, &sec)) == LC_OK && (st = train_steps(&s, rt, b->batch, b->steps, &sec)) == LC_OK) {
        lc_exec_counts c = lc_exec_launch_counts(s.ex);
        double ms = sec / b->steps * 1e3;
        fig f[] = {{"ms", ms, NULL}, {"steps_per_s", 1e3 / ms, NULL}, {"images_per_s", b->batch * 1e3 / ms, NULL},
                   {"launches", (double)(c.forward + c.backward + lc_optim_launches_per_step(s.opt)), NULL},
                   {"cpu_ms", last_cpu_s / b->steps * 1e3, NULL}};
        emit(b, rt, "train_step", base_name(path), b->batch, f, 5);
        fig m[] = {{"activation_mib", (double)s.g->act_floats * 4 / 1048576.0, NULL},
                   {"parameter_mib", (double)s.g->param_floats * 4 / 1048576.0, NULL},
                   {"device_mib", (double)lc_exec_device_bytes(s.ex) / 1048576.0, NULL}};
        emit(b, rt, "memory", base_name(path), b->batch, m, 3);
        if (b->profile) st = bench_profile(b, rt, &s, base_name(path), ms);
    }
    /* the optimizer step alone: plain SGD, Layca fused, Layca unfused */
    for (int v = 0; v < 3 && st == LC_OK; v++) {
        if (v) {
            lc_optim_destroy(s.opt);
            s.opt = NULL;
            lc_optim_config lc;
            lc_optim_config_defaults(&lc, LC_OPTIM_SGD);
            lc.layca = true;
            lc_optim_tensor *t = calloc((size_t)s.g->n_params + 1, sizeof *t);
            for (int i = 0; i < s.g->n_params; i++)
                t[i] = (lc_optim_tensor){s.g->params[i].offset, s.g->params[i].numel, true,
                                         s.g->nodes[s.g->params[i].node].is_kernel};
            st = lc_optim_create(&s.opt, rt, &lc, t, s.g->n_params, s.g->param_floats, lc_exec_params(s.ex),
                                 lc_exec_grads(s.ex));
            free(t);
            if (st != LC_OK) break;
            lc_optim_set_fused(s.opt, v == 1);
            if ((st = lc_optim_set_rates(s.opt, s.rates)) != LC_OK) break;
        }
        int reps = LC_MAX(10, b->steps * 2);
        for (int r = 0; r < 2 && st == LC_OK; r++) {
            lc_rt_finish(rt);
            double t0 = lc_now_s();
            for (int i = 0; i < (r ? reps : 3) && st == LC_OK; i++) st = lc_optim_step(s.opt);
            lc_rt_finish(rt);
            if (!r) continue;
            double ms = (lc_now_s() - t0) / reps * 1e3;
            /* minimum traffic: plain SGD reads w, g and writes w; the fused
             * Layca step also writes and reads the step s once more and
             * reads w again (two passes) */
            double per = v == 0 ? 12.0 : 24.0;
            double gb = per * (double)s.g->param_floats / 1e9;
            fig f[] = {{"variant", 0, v == 0 ? "sgd" : v == 1 ? "layca-fused" : "layca-unfused"},
                       {"ms", ms, NULL},
                       {"launches", (double)lc_optim_launches_per_step(s.opt), NULL},
                       {"gbps", gb / (ms / 1e3), NULL},
                       {"share_of_copy", b->copy_gbps > 0 ? gb / (ms / 1e3) / b->copy_gbps : NAN, NULL}};
            emit(b, rt, "optimizer_step", base_name(path), 0, f, 5);
        }
    }
    setup_free(&s);
    return st;
}

/* ---- start-up: a child process from start to the end of step 1 ---- */

static bool device_only; /* --device-only */

static int startup_child(const char *device, const char *model, int batch)
{
    double t0 = lc_now_s();
    lc_rt *rt;
    if (lc_rt_create_opts(&rt, &(lc_rt_opts){.selector = device, .device_only = device_only}) != LC_OK)
        return fail("device");
    setup s;
    lc_optim_config oc;
    lc_optim_config_defaults(&oc, LC_OPTIM_SGD);
    double sec;
    if (make_setup(&s, rt, model, batch, &oc, 0.01) != LC_OK || train_steps(&s, rt, batch, 1, &sec) != LC_OK) {
        setup_free(&s);
        lc_rt_destroy(rt);
        return fail(model);
    }
    printf("%.6f %d %d\n", lc_now_s() - t0, rt->programs_built, rt->programs_from_cache);
    setup_free(&s);
    lc_rt_destroy(rt);
    return 0;
}

static lc_status bench_startup(bench *b, lc_rt *rt, const char *device, const char *model)
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
        fig f[] = {{"variant", 0, warm ? "warm" : "cold"}, {"s", s, NULL}, {"programs_built", built, NULL},
                   {"programs_from_cache", cached, NULL}};
        emit(b, rt, "startup", base_name(model), b->batch, f, 4);
    }
    char rm[600];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0) LC_DEBUG("could not remove %s", dir);
    return LC_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv)
{
    bench b = {.batch = 128, .steps = 20, .self = argv[0], .profile = true, .profile_by = LC_PROF_KERNEL};
    const char *device = NULL, *models[64];
    int n_models = 0;
    bool quick = false;
    char *owned[64];
    int n_owned = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json")) b.json = true;
        else if (!strcmp(a, "--quick")) quick = true;
        else if (!strcmp(a, "--no-profile")) b.profile = false;
        else if (!strcmp(a, "--device-only")) device_only = true;
        else if (!strcmp(a, "--profile") || !strncmp(a, "--profile=", 10)) {
            b.profile = true;
            const char *v = a[9] == '=' ? a + 10 : "kernel";
            if (!strcmp(v, "op")) b.profile_by = LC_PROF_OP;
            else if (!strcmp(v, "kernel")) b.profile_by = LC_PROF_KERNEL;
            else if (!strcmp(v, "node")) b.profile_by = LC_PROF_NODE;
            else { fprintf(stderr, "layca-bench: --profile takes op, kernel or node, got '%s'\n", v); return 2; }
        }
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: layca-bench [--device SEL] [--model FILE]... [--batch N] [--steps N] [--json] [--quick]\n"
                   "                   [--profile[=op|kernel|node]] [--no-profile] [--device-only]\n");
            return 0;
        } else if (i + 1 < argc && !strcmp(a, "--startup-child")) {
            const char *m = argv[++i];
            for (int j = i + 1; j + 1 < argc; j++) {
                if (!strcmp(argv[j], "--device")) device = argv[j + 1];
                if (!strcmp(argv[j], "--batch")) b.batch = atoi(argv[j + 1]);
            }
            for (int j = i + 1; j < argc; j++) device_only |= !strcmp(argv[j], "--device-only");
            return startup_child(device && *device ? device : NULL, m, b.batch);
        } else if (i + 1 < argc && !strcmp(a, "--device")) device = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "--model")) {
            if (n_models < 64) models[n_models++] = argv[++i];
        } else if (i + 1 < argc && !strcmp(a, "--batch")) {
            b.batch = atoi(argv[++i]);
            if (b.batch < 1) { fprintf(stderr, "layca-bench: --batch needs a positive integer\n"); return 2; }
        } else if (i + 1 < argc && !strcmp(a, "--steps")) {
            b.steps = atoi(argv[++i]);
            if (b.steps < 1) { fprintf(stderr, "layca-bench: --steps needs a positive integer\n"); return 2; }
        } else {
            fprintf(stderr, "layca-bench: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (n_models == 0) {
        /* every model in models/ beside the binary's source tree, or ./models */
        const char *root = getenv("LAYCA_SOURCE_ROOT");
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/models", root ? root : ".");
        DIR *d = opendir(dir);
        if (!d) { fprintf(stderr, "layca-bench: no --model given and no %s folder\n", dir); return 2; }
        struct dirent *e;
        while ((e = readdir(d)) && n_owned < 64) {
            size_t l = strlen(e->d_name);
            if (l > 5 && !strcmp(e->d_name + l - 5, ".json")) {
                char *p = malloc(strlen(dir) + l + 2);
                sprintf(p, "%s/%s", dir, e->d_name);
                owned[n_owned++] = p;
            }
        }
        closedir(d);
        qsort(owned, (size_t)n_owned, sizeof *owned, cmp_str);
        for (int i = 0; i < n_owned; i++) models[n_models++] = owned[i];
    }

    /* start-up is measured on mlp11 (the target), else the first model */
    bool any_mlp11 = false;
    for (int m = 0; m < n_models; m++) any_mlp11 |= strstr(models[m], "mlp11") != NULL;
    lc_device_info *devs;
    int nd;
    if (lc_rt_list_devices(&devs, &nd) != LC_OK) return fail("listing devices");
    if (nd == 0) { fprintf(stderr, "layca-bench: no OpenCL device found\n"); return 1; }
    int rc = 0;
    for (int di = 0; di < nd; di++) {
        char sel[32];
        snprintf(sel, sizeof sel, "%d:%d", devs[di].platform, devs[di].device);
        if (device) {
            lc_rt *probe;
            if (lc_rt_create(&probe, device, false) != LC_OK) { free(devs); return fail(device); }
            bool same = probe->info.platform == devs[di].platform && probe->info.device == devs[di].device;
            lc_rt_destroy(probe);
            if (!same) continue;
        }
        lc_rt *rt;
        if (lc_rt_create_opts(&rt, &(lc_rt_opts){.selector = sel, .device_only = device_only}) != LC_OK) {
            rc = fail(sel);
            continue;
        }
        if (!b.json)
            printf("device %s: %s (%s, %s)\n", sel, rt->info.name, lc_rt_device_type_name(rt->info.type),
                   rt->info.platform_name);
        lc_status st = bench_copy(&b, rt);
        if (st == LC_OK && !quick) st = bench_gemm(&b, rt, 1024, 1024, 1024);
        if (st == LC_OK) st = bench_gemm(&b, rt, 128, 784, 784);
        for (int m = 0; m < n_models && st == LC_OK; m++) {
            st = bench_model(&b, rt, models[m]);
            if (st != LC_OK) { rc = fail(models[m]); st = LC_OK; }
        }
        for (int m = 0; m < n_models && st == LC_OK && !quick; m++)
            if (strstr(models[m], "mlp11") || (m == 0 && !any_mlp11)) st = bench_startup(&b, rt, sel, models[m]);
        if (st != LC_OK) rc = fail(rt->info.name);
        lc_rt_destroy(rt);
    }
    free(devs);
    for (int i = 0; i < n_owned; i++) free(owned[i]);
    return rc;
}

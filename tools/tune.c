/* `layca tune MODEL.json`: tunes CLBlast for the GEMM shapes of a model on
 * one device and stores the parameters where lc_rt_create finds them (the
 * cache folder, one file per device and driver).
 *
 * 1. The model's training step runs once on the device (convolutions
 *    lowered to device GEMMs) and the runtime lists the GEMM shapes it asked
 *    for, with their calls per step.
 * 2. Each shape is timed with CLBlast's current parameters ("untuned"), then
 *    with its direct and its padded kernel forced in turn.
 * 3. CLBlast's own tuners (Debian clblast-utils) run as child processes in
 *    a work folder on the shape with the most work: clblast_tuner_xgemm_direct
 *    (the single-kernel GEMM) and clblast_tuner_xgemm (the padded kernel, on
 *    the shape rounded up to multiples of 64).  By default each stops after
 *    its first phase (an exhaustive search of a fixed parameter set, its
 *    configurations divided by --fraction); --full lets them run all phases
 *    within --budget seconds.  The best result of each becomes a parameter
 *    set, applied with CLBlastOverrideParameters, and every shape is timed
 *    with both kernels again.
 * 4. Per kernel, the tuners' set is kept only if it makes the step's GEMMs
 *    faster, and XGEMM_MIN_INDIRECT_SIZE (GemmRoutine: shapes with fewer
 *    than its cube of multiply-adds take the direct kernel) is set to the
 *    threshold that makes them fastest; all measured in this run.
 * 5. Every shape is timed once more with the result ("tuned") when this
 *    process can still run it (CLBlast cannot return to its own parameters
 *    once overridden), the table is printed and the file written. */
#include "tune.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "cli_env.h"
#include "cli_parse.h"
#include "lc_train.h"

static const char *tune_help =
    "usage: layca tune MODEL.json [options]\n"
    "\n"
    "Tunes CLBlast for the GEMMs of MODEL's training step on one device, with CLBlast's tuners\n"
    "(Debian clblast-utils), and stores the parameters in the cache folder (LAYCA_CACHE_DIR, default\n"
    "~/.cache/layca), one file per device and driver; every later layca run on that device applies\n"
    "them.  Prints each GEMM shape's time with CLBlast's parameters before and after.\n"
    "\n"
    "  --device SEL     P:D index or a name substring (default: LAYCA_DEVICE, first GPU, first CPU)\n"
    "  --batch N        batch size whose GEMM shapes are tuned (default: the model's, else 128)\n"
    "  --budget S       seconds for the two tuners together (default 600); a tuner still running\n"
    "                   at its share is stopped and its finished phases are used\n"
    "  --fraction F     explore 1/F of the padded kernel's configurations (default 4; 1 = all)\n"
    "  --runs N         runs per configuration in the tuners (default 2)\n"
    "  --full           let the tuners run all their phases (random searches after the fixed sets)\n"
    "  --no-tuners      skip the tuners: only choose between CLBlast's two kernels per shape\n"
    "  --repeats N      timed samples per shape (default 5; the median is reported)\n"
    "  --tuner-dir DIR  folder of the clblast_tuner_* programs (default: PATH)\n"
    "  --work DIR       folder for the tuners' files and logs (default: a temporary one, removed)\n";

static int usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "layca: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see 'layca tune --help')\n");
    return 2;
}

static int fail(void)
{
    fprintf(stderr, "layca: error: %s\n", lc_error_message());
    return 1;
}

/* ---- timing a shape ---- */

typedef struct shape_bufs {
    lc_rt_gemm_shape s;
    cl_mem a, b, c;
    double untuned_ms;
    double direct_ms[2], padded_ms[2]; /* [0]: CLBlast's parameters, [1]: the tuners' */
    double tuned_ms;
} shape_bufs;

static lc_status alloc_shape(lc_rt *rt, shape_bufs *x)
{
    size_t m = x->s.m, n = x->s.n, k = x->s.k;
    LC_TRY(lc_rt_alloc(rt, m * k * 4, &x->a));
    LC_TRY(lc_rt_alloc(rt, k * n * 4, &x->b));
    LC_TRY(lc_rt_alloc(rt, m * n * 4, &x->c));
    LC_TRY(lc_rt_fill_zero(rt, x->a, 0, m * k * 4));
    LC_TRY(lc_rt_fill_zero(rt, x->b, 0, k * n * 4));
    return LC_OK;
}

static lc_status gemm_once(lc_rt *rt, const shape_bufs *x)
{
    const lc_rt_gemm_shape *s = &x->s;
    return lc_rt_sgemm_with(rt, LC_GEMM_CLBLAST, s->ta, s->tb, s->m, s->n, s->k, 1.0f, x->a, 0, s->ta ? s->m : s->k,
                            x->b, 0, s->tb ? s->k : s->n, 0.0f, x->c, 0, s->n);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median ms per call over `repeats` samples, after a warm-up call (which
 * compiles CLBlast's kernels for the parameters in force). */
static lc_status time_shape(lc_rt *rt, const shape_bufs *x, int repeats, double *ms)
{
    LC_TRY(gemm_once(rt, x));
    LC_TRY(lc_rt_finish(rt));
    double t0 = lc_now_s();
    LC_TRY(gemm_once(rt, x));
    LC_TRY(lc_rt_finish(rt));
    double one = lc_now_s() - t0;
    int calls = one >= 5e-3 ? 1 : one <= 5e-5 ? 100 : (int)ceil(5e-3 / one);
    double v[64];
    if (repeats > 64) repeats = 64;
    for (int r = 0; r < repeats; r++) {
        t0 = lc_now_s();
        for (int i = 0; i < calls; i++) LC_TRY(gemm_once(rt, x));
        LC_TRY(lc_rt_finish(rt));
        v[r] = (lc_now_s() - t0) / calls * 1e3;
    }
    qsort(v, (size_t)repeats, sizeof *v, cmp_d);
    *ms = repeats % 2 ? v[repeats / 2] : 0.5 * (v[repeats / 2 - 1] + v[repeats / 2]);
    return LC_OK;
}

/* ---- the model's GEMM shapes ---- */

static lc_status model_shapes(lc_rt *rt, const char *path, int batch_flag, int *batch_out)
{
    lc_graph *g = NULL;
    lc_exec *ex = NULL;
    lc_train_spec ts;
    float *x = NULL, *p = NULL;
    int32_t *y = NULL;
    LC_TRY(lc_model_load(path, &g, &ts));
    int batch = batch_flag > 0 ? batch_flag : ts.batch > 0 ? ts.batch : 128;
    *batch_out = batch;
    lc_status st = lc_exec_compile(g, batch, true, NULL);
    if (st == LC_OK) st = lc_exec_create(&ex, rt, g);
    if (st == LC_OK) {
        int64_t in = lc_shape_numel(&g->nodes[g->input].shape);
        x = malloc((size_t)(batch * in) * 4 + 4);
        y = malloc((size_t)batch * 4 + 4);
        p = malloc((size_t)g->param_floats * 4 + 4);
        if (!x || !y || !p) st = LC_ERR(LC_ERR_NOMEM, "out of memory");
        else {
            lc_rng r;
            lc_rng_seed(&r, 1);
            for (int64_t i = 0; i < batch * in; i++) x[i] = (float)lc_rng_normal(&r);
            for (int i = 0; i < batch; i++) y[i] = (int32_t)lc_rng_below(&r, (uint64_t)g->classes);
            lc_graph_init_params(g, p, 1);
        }
    }
    if (st == LC_OK) st = lc_exec_write_params(ex, p);
    if (st == LC_OK) st = lc_exec_set_batch(ex, x, y, batch);
    if (st == LC_OK) {
        lc_rt_gemm_shapes_clear(rt); /* the calls of one step only */
        st = lc_exec_forward(ex);
    }
    if (st == LC_OK) st = lc_exec_backward(ex);
    if (st == LC_OK) st = lc_rt_finish(rt);
    free(x);
    free(y);
    free(p);
    lc_exec_destroy(ex);
    lc_graph_destroy(g);
    return st;
}

/* ---- the tuners ---- */

static bool find_tuner(const char *dir, const char *name, char *out, size_t cap)
{
    if (dir) {
        snprintf(out, cap, "%s/%s", dir, name);
        return access(out, X_OK) == 0;
    }
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path ? path : "/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, cap, "%s/%s", *d ? d : ".", name);
        if (access(out, X_OK) == 0) return true;
    }
    return false;
}

/* True when the file exists and ends with the closing brace of a JSON object
 * (the tuner writes it at the end of a phase). */
static bool json_done(const char *path)
{
    uint8_t *d = NULL;
    size_t n = 0;
    if (lc_file_read(path, &d, &n) != LC_OK) {
        lc_error_clear();
        return false;
    }
    while (n && (d[n - 1] == '\n' || d[n - 1] == ' ')) n--;
    bool ok = n > 0 && d[n - 1] == '}';
    free(d);
    return ok;
}

/* Runs TUNER ARGS... in work, output to work/NAME.log, until it exits, the
 * deadline passes, or (first_only) its first phase's JSON file is complete.
 * Stops it (SIGTERM to its process, then SIGKILL) when it has to. */
static lc_status run_tuner(const char *tuner, char *const argv[], const char *work, const char *log_name,
                           const char *first_json, double deadline)
{
    char log[1200];
    snprintf(log, sizeof log, "%s/%s.log", work, log_name);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return LC_ERR(LC_ERR_IO, "fork failed: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0); /* its own process group: stopping it stops its children too */
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || chdir(work) != 0) _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execv(tuner, argv);
        _exit(127);
    }
    char first[1200];
    snprintf(first, sizeof first, "%s/%s", work, first_json ? first_json : "");
    int status = 0;
    bool stopped = false;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        bool enough = first_json && json_done(first);
        if (enough || lc_now_s() > deadline) {
            kill(-pid, SIGTERM);
            bool gone = false;
            for (int i = 0; i < 50 && !gone; i++) {
                gone = waitpid(pid, &status, WNOHANG) == pid;
                if (!gone) usleep(100000);
            }
            if (!gone) {
                kill(-pid, SIGKILL);
                waitpid(pid, &status, 0);
            }
            stopped = true;
            if (!enough) fprintf(stderr, "layca tune: %s stopped at its time budget\n", log_name);
            break;
        }
        usleep(200000);
    }
    if (!stopped && WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return LC_ERR(LC_ERR_IO, "cannot run %s (see %s)", tuner, log);
    return LC_OK;
}

/* Reads "best_time" and "best_parameters" of a tuner's JSON file. */
static bool read_best(const char *path, double *ms, char *params, size_t cap)
{
    uint8_t *d = NULL;
    size_t n = 0;
    if (lc_file_read(path, &d, &n) != LC_OK) {
        lc_error_clear();
        return false;
    }
    char *text = realloc(d, n + 1);
    if (!text) { free(d); return false; }
    text[n] = 0;
    bool ok = false;
    const char *t = strstr(text, "\"best_time\": \""), *p = strstr(text, "\"best_parameters\": \"");
    if (t && p) {
        *ms = strtod(t + 14, NULL);
        p += 20;
        size_t len = strcspn(p, "\"");
        if (len < cap) {
            memcpy(params, p, len);
            params[len] = 0;
            ok = *ms > 0;
        }
    }
    free(text);
    return ok;
}

/* "GEMMK=0 KREG=1 ... PRECISION=32" -> a kernel's parameter set */
static bool params_to_kernel(const char *name, const char *params, lc_tune_kernel *k)
{
    memset(k, 0, sizeof *k);
    snprintf(k->name, sizeof k->name, "%s", name);
    k->precision = 32;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", params);
    char *save = NULL;
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok) return false;
        *eq = 0;
        long long v;
        if (!lc_parse_long(eq + 1, 0, 1LL << 40, &v)) return false;
        if (!strcmp(tok, "PRECISION")) {
            k->precision = (int)v;
            continue;
        }
        if (k->n == LC_TUNE_MAX_PARAMS || strlen(tok) >= sizeof k->param[0]) return false;
        snprintf(k->param[k->n], sizeof k->param[k->n], "%s", tok);
        k->value[k->n++] = (size_t)v;
    }
    return k->n > 0 && k->precision == 32;
}

/* The best parameter set over the JSON files of one kernel family. */
static bool best_of(const char *work, const char *const files[], int n_files, const char *kernel, lc_tune_kernel *out,
                    double *best_ms, char *from, size_t from_cap)
{
    bool any = false;
    *best_ms = INFINITY;
    for (int i = 0; i < n_files; i++) {
        char path[1300], params[1024];
        double ms;
        snprintf(path, sizeof path, "%s/%s", work, files[i]);
        if (!read_best(path, &ms, params, sizeof params) || ms >= *best_ms) continue;
        lc_tune_kernel k;
        if (!params_to_kernel(kernel, params, &k)) {
            fprintf(stderr, "layca tune: %s: unreadable best_parameters '%s'\n", path, params);
            continue;
        }
        *out = k;
        *best_ms = ms;
        snprintf(from, from_cap, "%s", files[i]);
        any = true;
    }
    return any;
}

static void rm_work(const char *dir)
{
    static const char *const names[] = {
        "clblast_xgemm_1_32.json", "clblast_xgemm_2_32.json", "clblast_xgemm_11_32.json",
        "clblast_xgemm_12_32.json", "clblast_xgemm_direct_1_32.json", "clblast_xgemm_direct_2_32.json",
        "xgemm.log", "xgemm_direct.log"};
    char p[1300];
    for (size_t i = 0; i < LC_COUNTOF(names); i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        remove(p);
    }
    rmdir(dir);
}

/* ---- the command ---- */

static size_t up64(size_t v) { return (v + 63) / 64 * 64; }

static double step_ms(const shape_bufs *x, int n, int which)
{
    double t = 0;
    for (int i = 0; i < n; i++) {
        double ms = which == 0 ? x[i].untuned_ms : x[i].tuned_ms;
        t += ms * (double)x[i].s.calls;
    }
    return t;
}

static bool is_direct(const lc_rt_gemm_shape *s, size_t t)
{
    return (double)s->m * (double)s->n * (double)s->k < (double)t * (double)t * (double)t;
}

/* Times every shape with the direct kernel, then the padded one, forced
 * through GemmRoutine over the sets of t; results in slot `which`. */
static lc_status time_both(lc_rt *rt, const lc_tune_file *t, lc_tune_kernel *routine, shape_bufs *x, int nx,
                           int repeats, int which)
{
    for (int pass = 0; pass < 2; pass++) {
        lc_tune_file only = *t;
        routine->value[0] = pass == 0 ? (size_t)1 << 20 : 1;
        LC_TRY(lc_rt_tune_set(&only, routine));
        LC_TRY(lc_rt_tune_apply(rt, &only));
        for (int i = 0; i < nx; i++)
            LC_TRY(time_shape(rt, &x[i], repeats, pass == 0 ? &x[i].direct_ms[which] : &x[i].padded_ms[which]));
    }
    return LC_OK;
}

/* The flags of `layca tune`. */
typedef struct tune_args {
    const char *model, *device, *tuner_dir, *work_flag;
    long long batch, budget, fraction, runs, repeats;
    bool full, no_tuners;
} tune_args;

/* Parses argv into a; returns -1 to go on, else the exit code (--help, a
 * usage error). */
static int parse_tune_args(int argc, char **argv, tune_args *a)
{
    *a = (tune_args){.budget = 600, .fraction = 4, .runs = 2, .repeats = 5};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(tune_help, stdout);
            return 0;
        }
        if (!strcmp(f, "--full")) { a->full = true; continue; }
        if (!strcmp(f, "--no-tuners")) { a->no_tuners = true; continue; }
        if (f[0] != '-') {
            if (a->model) return usage("unexpected argument '%s' (one model file only)", f);
            a->model = f;
            continue;
        }
        static const char *const valued[] = {"--device", "--tuner-dir", "--work", "--batch", "--budget",
                                             "--fraction", "--runs", "--repeats"};
        bool known = false;
        for (size_t j = 0; j < LC_COUNTOF(valued); j++) known |= !strcmp(f, valued[j]);
        if (!known) return usage("unknown option '%s' for tune", f);
        if (i + 1 >= argc) return usage("%s needs a value", f);
        const char *v = argv[++i];
        if (!strcmp(f, "--device")) a->device = v;
        else if (!strcmp(f, "--tuner-dir")) a->tuner_dir = v;
        else if (!strcmp(f, "--work")) a->work_flag = v;
        else if (!strcmp(f, "--batch")) { if (!lc_parse_long(v, 1, 1 << 20, &a->batch)) return usage("--batch '%s': expected a positive integer", v); }
        else if (!strcmp(f, "--budget")) { if (!lc_parse_long(v, 1, 1000000, &a->budget)) return usage("--budget '%s': expected seconds, a positive integer", v); }
        else if (!strcmp(f, "--fraction")) { if (!lc_parse_long(v, 1, 100000, &a->fraction)) return usage("--fraction '%s': expected a positive integer", v); }
        else if (!strcmp(f, "--runs")) { if (!lc_parse_long(v, 1, 1000, &a->runs)) return usage("--runs '%s': expected a positive integer", v); }
        else if (!strcmp(f, "--repeats")) { if (!lc_parse_long(v, 1, 64, &a->repeats)) return usage("--repeats '%s': expected an integer in [1, 64]", v); }
        else { --i; return usage("unknown option '%s' for tune", f); }
    }
    if (!a->model) return usage("%s", "tune needs a model file: layca tune MODEL.json");
    return -1;
}

/* The buffers of every GEMM shape of the step (*x, *nx: what was made, for
 * the caller to release), each timed with CLBlast's parameters.  Returns
 * the exit code so far: 0 or 1. */
static int prepare_shapes(lc_rt *rt, const tune_args *a, int batch_used, shape_bufs **x, int *nx)
{
    const lc_rt_gemm_shape *shapes;
    int ns = lc_rt_gemm_shapes(rt, &shapes);
    if (ns == 0) {
        fprintf(stderr, "layca: error: %s: the training step has no GEMM to tune\n", a->model);
        return 1;
    }
    *x = calloc((size_t)ns, sizeof **x);
    if (!*x) { fprintf(stderr, "layca: error: out of memory\n"); return 1; }
    for (int i = 0; i < ns; i++) {
        (*x)[*nx].s = shapes[i];
        if (alloc_shape(rt, &(*x)[*nx]) != LC_OK) return fail();
        (*nx)++;
    }
    fprintf(stderr, "layca tune: %d GEMM shapes per step at batch %d; timing them with CLBlast's parameters\n", *nx,
            batch_used);
    for (int i = 0; i < *nx; i++)
        if (time_shape(rt, &(*x)[i], (int)a->repeats, &(*x)[i].untuned_ms) != LC_OK) return fail();
    return 0;
}

/* The best set `tuner` wrote (files in work) for `kernel` into tf, described
 * in note (the tuned shape M x N x K).  Returns the exit code so far: 0 or
 * 1. */
static int keep_best(const char *work, const char *const files[], int n_files, const char *kernel, const char *tuner,
                     const char *M, const char *N, const char *K, lc_tune_file *tf, lc_strbuf *note)
{
    lc_tune_kernel k;
    double ms;
    char from[128];
    if (!best_of(work, files, n_files, kernel, &k, &ms, from, sizeof from)) {
        fprintf(stderr, "layca tune: %s gave no result (see its log): CLBlast's parameters kept for %s\n", tuner,
                kernel);
        return 0;
    }
    if (lc_rt_tune_set(tf, &k) != LC_OK) return fail();
    lc_strbuf_printf(note, "\n%s: best of %s on %sx%sx%s, %.3f ms in the tuner", kernel, from, M, N, K, ms);
    return 0;
}

/* CLBlast's tuners on shape `big` (the most work per step), in folder work
 * (--work, else a temporary one: *own_work); their best sets go into tf and
 * are described in note.  Returns the exit code so far: 0 or 1. */
static int run_tuners(const tune_args *a, const lc_device_info *info, const shape_bufs *big, char *xgemm,
                      char *direct, char *work, size_t work_len, bool *own_work, lc_tune_file *tf, lc_strbuf *note)
{
    if (a->work_flag) {
        snprintf(work, work_len, "%s", a->work_flag);
        if (lc_mkdirs(work) != LC_OK) return fail();
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(work, work_len, "%s/layca-tune-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(work)) { fprintf(stderr, "layca: error: cannot make a temporary folder\n"); return 1; }
        *own_work = true;
    }
    char P[16], D[16], M[32], N[32], K[32], Mp[32], Np[32], Kp[32], R[16], F[16];
    snprintf(P, sizeof P, "%d", info->platform);
    snprintf(D, sizeof D, "%d", info->device);
    snprintf(M, sizeof M, "%zu", big->s.m);
    snprintf(N, sizeof N, "%zu", big->s.n);
    snprintf(K, sizeof K, "%zu", big->s.k);
    snprintf(Mp, sizeof Mp, "%zu", up64(big->s.m));
    snprintf(Np, sizeof Np, "%zu", up64(big->s.n));
    snprintf(Kp, sizeof Kp, "%zu", up64(big->s.k));
    snprintf(R, sizeof R, "%lld", a->runs);
    snprintf(F, sizeof F, "%lld", a->fraction);
    double t0 = lc_now_s();
    char *dargv[] = {direct, "-platform", P, "-device", D, "-precision", "32", "-m", M, "-n", N, "-k", K,
                     "-runs", R, NULL};
    fprintf(stderr, "layca tune: clblast_tuner_xgemm_direct on %sx%sx%s (log in %s/xgemm_direct.log)\n", M, N,
            K, work);
    if (run_tuner(direct, dargv, work, "xgemm_direct", a->full ? NULL : "clblast_xgemm_direct_1_32.json",
                  t0 + a->budget * 0.35) != LC_OK) return fail();
    char *xargv[] = {xgemm, "-platform", P, "-device", D, "-precision", "32", "-m", Mp, "-n", Np, "-k", Kp,
                     "-runs", R, "-fraction", F, NULL};
    char *xargv_all[] = {xgemm, "-platform", P, "-device", D, "-precision", "32", "-m", Mp, "-n", Np, "-k", Kp,
                         "-runs", R, NULL};
    fprintf(stderr, "layca tune: clblast_tuner_xgemm on %sx%sx%s, 1/%s of the configurations (log in %s/xgemm.log)\n",
            Mp, Np, Kp, F, work);
    if (run_tuner(xgemm, a->fraction > 1 ? xargv : xargv_all, work, "xgemm", a->full ? NULL : "clblast_xgemm_1_32.json",
                  t0 + a->budget) != LC_OK) return fail();
    static const char *const dfiles[] = {"clblast_xgemm_direct_1_32.json", "clblast_xgemm_direct_2_32.json"};
    static const char *const xfiles[] = {"clblast_xgemm_1_32.json", "clblast_xgemm_2_32.json",
                                         "clblast_xgemm_11_32.json", "clblast_xgemm_12_32.json"};
    if (keep_best(work, dfiles, 2, "XgemmDirect", "clblast_tuner_xgemm_direct", M, N, K, tf, note)) return 1;
    return keep_best(work, xfiles, 4, "Xgemm", "clblast_tuner_xgemm", Mp, Np, Kp, tf, note);
}

/* The choice for the fastest step: per kernel CLBlast's set (0) or the
 * tuners' (1, where have[] says there is one: Xgemm, XgemmDirect), and the
 * direct kernel's threshold. */
typedef struct tune_choice {
    size_t t;
    int ds, ps;
} tune_choice;

static tune_choice choose_sets(const shape_bufs *x, int nx, const bool have[2])
{
    tune_choice best = {.t = (size_t)1 << 20};
    double best_total = INFINITY;
    for (int ds = 0; ds < (have[1] ? 2 : 1); ds++)
        for (int ps = 0; ps < (have[0] ? 2 : 1); ps++)
            for (int c = -2; c < nx; c++) {
                /* everything padded (1), everything direct (2^20), or shape c
                 * the largest direct one */
                size_t t = c == -2 ? 1 : c == -1 ? (size_t)1 << 20 : 0;
                if (c >= 0) {
                    double mnk = (double)x[c].s.m * (double)x[c].s.n * (double)x[c].s.k;
                    t = (size_t)floor(cbrt(mnk));
                    while ((double)t * t * t <= mnk) t++; /* mnk < t^3: shape c direct */
                }
                double total = 0;
                for (int i = 0; i < nx; i++)
                    total += (is_direct(&x[i].s, t) ? x[i].direct_ms[ds] : x[i].padded_ms[ps]) * (double)x[i].s.calls;
                if (total < best_total - 1e-12) {
                    best_total = total;
                    best = (tune_choice){t, ds, ps};
                }
            }
    return best;
}

/* tf reduced to the choice: the tuners' sets only where they won, and the
 * threshold in routine; note says why.  False when out of memory. */
static bool keep_choice(lc_tune_file *tf, lc_tune_kernel *routine, tune_choice best, const bool have[2],
                        lc_strbuf *note)
{
    lc_tune_file *chosen = calloc(1, sizeof *chosen);
    if (!chosen) { fprintf(stderr, "layca: error: out of memory\n"); return false; }
    snprintf(chosen->device, sizeof chosen->device, "%s", tf->device);
    snprintf(chosen->driver, sizeof chosen->driver, "%s", tf->driver);
    snprintf(chosen->platform, sizeof chosen->platform, "%s", tf->platform);
    for (int i = 0; i < tf->n; i++) {
        bool xg = !strcmp(tf->kernel[i].name, "Xgemm"), xd = !strcmp(tf->kernel[i].name, "XgemmDirect");
        if ((xg && best.ps == 1) || (xd && best.ds == 1)) lc_rt_tune_set(chosen, &tf->kernel[i]);
    }
    routine->value[0] = best.t;
    lc_rt_tune_set(chosen, routine);
    if (have[0] && best.ps == 0)
        lc_strbuf_printf(note, "\nXgemm: the tuners' set was slower than CLBlast's here, not kept");
    if (have[1] && best.ds == 0)
        lc_strbuf_printf(note, "\nXgemmDirect: the tuners' set was slower than CLBlast's here, not kept");
    lc_strbuf_printf(note, "\nGemmRoutine: XGEMM_MIN_INDIRECT_SIZE=%zu chosen by timing the model's shapes", best.t);
    *tf = *chosen;
    free(chosen);
    return true;
}

/* The table on stdout; note gets the step's totals. */
static void print_table(const lc_rt *rt, const tune_args *a, int batch_used, const shape_bufs *x, int nx, size_t best_t,
                        bool can_rerun, lc_strbuf *note)
{
    printf("CLBlast on %s (%s, driver %s), %s at batch %d; ms per call, median of %lld; direct and padded: one\n"
           "of CLBlast's two kernels forced; tuned: the stored choice\n\n", rt->info.name,
           rt->info.platform_name, rt->info.driver_version, a->model, batch_used, a->repeats);
    printf("| GEMM (trans, M x N x K) | calls/step | untuned | direct | direct, tuners' set | padded | "
           "padded, tuners' set | tuned | kernel | speed-up |\n"
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (int i = 0; i < nx; i++) {
        const shape_bufs *s = &x[i];
        printf("| %c%c %zu x %zu x %zu | %ld | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %s | %.2fx |\n",
               s->s.ta ? 'T' : 'N', s->s.tb ? 'T' : 'N', s->s.m, s->s.n, s->s.k, s->s.calls, s->untuned_ms,
               s->direct_ms[0], s->direct_ms[1], s->padded_ms[0], s->padded_ms[1], s->tuned_ms,
               is_direct(&s->s, best_t) ? "direct" : "padded", s->untuned_ms / s->tuned_ms);
    }
    double u = step_ms(x, nx, 0), t = step_ms(x, nx, 1);
    printf("| all GEMMs of a step | | %.3f | | | | | %.3f | | %.2fx |\n", u, t, u / t);
    if (!can_rerun)
        printf("\n(tuned: from the direct and padded passes above; CLBlast's own parameters cannot be restored in\n"
               "this process to time the final choice once more)\n");
    lc_strbuf_printf(note, "\nGEMMs of a step: %.3f ms untuned, %.3f ms tuned", u, t);
}

int lc_tune_main(int argc, char **argv)
{
    tune_args a;
    int rc = parse_tune_args(argc, argv, &a);
    if (rc >= 0) return rc;
    char xgemm[1100], direct[1100];
    if (!a.no_tuners && (!find_tuner(a.tuner_dir, "clblast_tuner_xgemm", xgemm, sizeof xgemm) ||
                         !find_tuner(a.tuner_dir, "clblast_tuner_xgemm_direct", direct, sizeof direct))) {
        fprintf(stderr, "layca: error: CLBlast's tuners (clblast_tuner_xgemm, clblast_tuner_xgemm_direct) are not in %s; "
                        "install clblast-utils (tools/setup.sh does), or use --no-tuners\n",
                a.tuner_dir ? a.tuner_dir : "PATH");
        return 1;
    }

    /* the device, and its tuning file moved aside so this run starts from
     * CLBlast's defaults (CLBlast keeps overrides for the whole process) */
    lc_device_info info;
    lc_rt_opts so = cli_env_rt_opts(a.device, false);
    if (lc_rt_select(&so, &info) != LC_OK) return fail();
    char path[1300], prev[1400];
    lc_rt_tune_path(&info, path, sizeof path);
    if (!path[0]) {
        fprintf(stderr, "layca: error: the cache folder is off (LAYCA_CACHE_DIR=off): nowhere to keep the parameters\n");
        return 1;
    }
    snprintf(prev, sizeof prev, "%s.prev", path);
    bool had_prev = access(path, F_OK) == 0;
    if (had_prev && rename(path, prev) != 0) {
        fprintf(stderr, "layca: error: cannot move %s aside: %s\n", path, strerror(errno));
        return 1;
    }
    char sel[32];
    snprintf(sel, sizeof sel, "%d:%d", info.platform, info.device);
    lc_rt *rt = NULL;
    shape_bufs *x = NULL;
    int nx = 0, batch_used = 0;
    rc = 1;
    char work[1100] = "";
    bool own_work = false;
    lc_tune_file *tf = calloc(1, sizeof *tf);
    lc_strbuf text = {0}, note = {0};
    if (!tf) { fprintf(stderr, "layca: error: out of memory\n"); goto out; }
    /* device-only: convolutions as device GEMMs, so their shapes are tuned too */
    lc_rt_opts ro = cli_env_rt_opts(sel, true);
    if (lc_rt_create_opts(&rt, &ro) != LC_OK) { rc = fail(); goto out; }
    fprintf(stderr, "layca tune: device %s %s (%s, driver %s)\n", sel, rt->info.name, rt->info.platform_name,
            rt->info.driver_version);
    if (model_shapes(rt, a.model, (int)a.batch, &batch_used) != LC_OK) {
        lc_error_prefix(LC_ERR_INVALID, "%s", a.model);
        rc = fail();
        goto out;
    }
    if ((rc = prepare_shapes(rt, &a, batch_used, &x, &nx)) != 0) goto out;
    rc = 1;

    snprintf(tf->device, sizeof tf->device, "%s", rt->info.name);
    snprintf(tf->driver, sizeof tf->driver, "%s", rt->info.driver_version);
    snprintf(tf->platform, sizeof tf->platform, "%s", rt->info.platform_version);
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&now));
    lc_strbuf_printf(&note, "written by 'layca tune %s' at batch %d, %s", a.model, batch_used, when);

    /* both kernels with CLBlast's parameters */
    lc_tune_kernel routine = {.precision = 32, .n = 1};
    snprintf(routine.name, sizeof routine.name, "GemmRoutine");
    snprintf(routine.param[0], sizeof routine.param[0], "XGEMM_MIN_INDIRECT_SIZE");
    fprintf(stderr, "layca tune: timing each shape with CLBlast's direct and padded kernels\n");
    if (time_both(rt, tf, &routine, x, nx, (int)a.repeats, 0) != LC_OK) { rc = fail(); goto out; }

    /* the tuners, on the shape with the most work per step */
    int big = 0;
    for (int i = 1; i < nx; i++)
        if ((double)x[i].s.m * (double)x[i].s.n * (double)x[i].s.k * (double)x[i].s.calls >
            (double)x[big].s.m * (double)x[big].s.n * (double)x[big].s.k * (double)x[big].s.calls)
            big = i;
    if (!a.no_tuners &&
        (rc = run_tuners(&a, &info, &x[big], xgemm, direct, work, sizeof work, &own_work, tf, &note)) != 0)
        goto out;
    rc = 1;

    /* the tuners' sets, then the choice: per kernel CLBlast's or the
     * tuners' set, and the threshold, for the fastest step */
    bool have[2] = {false, false}; /* tuned Xgemm, tuned XgemmDirect */
    for (int i = 0; i < tf->n; i++) {
        if (!strcmp(tf->kernel[i].name, "Xgemm")) have[0] = true;
        if (!strcmp(tf->kernel[i].name, "XgemmDirect")) have[1] = true;
    }
    if (have[0] || have[1]) {
        fprintf(stderr, "layca tune: timing each shape with the tuners' parameters\n");
        if (time_both(rt, tf, &routine, x, nx, (int)a.repeats, 1) != LC_OK) { rc = fail(); goto out; }
    } else {
        for (int i = 0; i < nx; i++) {
            x[i].direct_ms[1] = x[i].direct_ms[0];
            x[i].padded_ms[1] = x[i].padded_ms[0];
        }
    }
    tune_choice best = choose_sets(x, nx, have);
    if (!keep_choice(tf, &routine, best, have, &note)) goto out;
    /* CLBlast's own sets cannot be restored in this process: the final
     * timing runs only when every kernel in use has the tuners' set in force
     * (or none was overridden) */
    bool can_rerun = (!have[0] || best.ps == 1) && (!have[1] || best.ds == 1);
    if (lc_rt_tune_apply(rt, tf) != LC_OK) { rc = fail(); goto out; }
    for (int i = 0; i < nx; i++) {
        bool dir = is_direct(&x[i].s, best.t);
        x[i].tuned_ms = dir ? x[i].direct_ms[best.ds] : x[i].padded_ms[best.ps];
        if (can_rerun && time_shape(rt, &x[i], (int)a.repeats, &x[i].tuned_ms) != LC_OK) { rc = fail(); goto out; }
    }
    print_table(rt, &a, batch_used, x, nx, best.t, can_rerun, &note);

    lc_rt_tune_format(tf, note.s, &text);
    lc_tune_file check;
    if (text.oom || lc_rt_tune_parse(text.s, text.len, path, &check) != LC_OK) { rc = fail(); goto out; }
    if (lc_mkdirs(rt->cache_dir) != LC_OK || lc_file_write_atomic(path, text.s, text.len) != LC_OK) { rc = fail(); goto out; }
    printf("\nparameters written to %s (every layca run on this device and driver applies them;\n"
           "delete the file to go back to CLBlast's defaults)\n", path);
    rc = 0;
out:
    if (rc != 0 && had_prev) {
        if (rename(prev, path) != 0) fprintf(stderr, "layca: the previous tuning file is kept as %s\n", prev);
    } else if (had_prev) {
        remove(prev);
    }
    for (int i = 0; i < nx; i++) {
        if (x[i].a) clReleaseMemObject(x[i].a);
        if (x[i].b) clReleaseMemObject(x[i].b);
        if (x[i].c) clReleaseMemObject(x[i].c);
    }
    free(x);
    free(tf);
    lc_strbuf_free(&text);
    lc_strbuf_free(&note);
    lc_rt_destroy(rt);
    if (own_work) rm_work(work);
    return rc;
}

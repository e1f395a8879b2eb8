/* `layca study NAME`: the command line of the study module (src/study):
 * flags into lc_study_opts, the help text, the library's report on stdout
 * and its errors as exit codes. */
#include "cli_parse.h"
#include "study.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli_env.h"
#include "lc_study.h"

#define EXIT_USAGE 2

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
    "  --parallel-runs K    under mpirun -np K: the runs spread over the K processes, one run per\n"
    "                       process at a time (--max-runs counts per process)\n"
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

#define M_TOY (1u << LC_STUDY_MNIST_TOY)
#define M_CNN ((1u << LC_STUDY_ALPHA_SWEEP) | (1u << LC_STUDY_LR_GRID) | (1u << LC_STUDY_OPTIMIZERS) | \
               (1u << LC_STUDY_WEIGHT_DECAY))
#define M_ALL (M_TOY | M_CNN)

static bool allowed(const lc_study_opts *S, unsigned mask) { return (mask >> S->kind) & 1u; }

static int parse_schedule_opt(const char *s, lc_study_schedule *out)
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

static int parse_options(lc_study_opts *S, bool *dry_run, int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(study_help, stdout); return -1; }
        if (!strcmp(a, "--dry-run")) { *dry_run = true; continue; }
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
            {"--out", M_ALL}, {"--scale", M_ALL}, {"--rerun", M_ALL}, {"--device", M_ALL}, {"--max-runs", M_ALL}, {"--parallel-runs", M_ALL},
            {"--model", M_ALL}, {"--data", M_ALL}, {"--steps", M_ALL}, {"--batch", M_ALL},
            {"--seed", M_ALL}, {"--eval-every", M_ALL}, {"--per-class", M_ALL}, {"--train-subset", M_ALL},
            {"--test-subset", M_ALL}, {"--mnist", M_TOY}, {"--reps", M_TOY},
            {"--lr", M_TOY | (1u << LC_STUDY_WEIGHT_DECAY)}, {"--epochs", M_CNN}, {"--schedule", M_CNN},
            {"--lr-layca", 1u << LC_STUDY_ALPHA_SWEEP}, {"--lr-sgd", 1u << LC_STUDY_ALPHA_SWEEP}, {"--sgd-lr", 1u << LC_STUDY_ALPHA_SWEEP},
            {"--alphas", 1u << LC_STUDY_ALPHA_SWEEP}, {"--lrs", 1u << LC_STUDY_LR_GRID}, {"--optimizers", 1u << LC_STUDY_OPTIMIZERS},
            {"--no-schedule", M_CNN}, {"--flip", M_CNN}, {"--no-flip", M_CNN},
        };
        bool known = false;
        for (size_t k = 0; k < LC_COUNTOF(opts); k++)
            if (!strcmp(a, opts[k].name)) { known = true; mask = opts[k].mask; }
        if (!known) return usage_error("unknown option '%s' for study %s", a, lc_study_kind_name(S->kind));
        if (!allowed(S, mask)) return usage_error("%s does not apply to study %s", a, lc_study_kind_name(S->kind));
        if (i + 1 >= argc) return usage_error("%s needs a value", a);
        const char *v = argv[++i];
        double d;
        long long n;
        if (!strcmp(a, "--out")) {
            if (!*v || strlen(v) > 900) return usage_error("--out '%s': expected a folder path", v);
            S->out = v;
        } else if (!strcmp(a, "--scale")) {
            if (!strcmp(v, "quick")) S->scale = 0;
            else if (!strcmp(v, "paper")) S->scale = 1;
            else return usage_error("--scale '%s': expected quick or paper", v);
        } else if (!strcmp(a, "--device")) S->device = v;
        else if (!strcmp(a, "--parallel-runs")) {
            if (!lc_parse_long(v, 1, 1 << 20, &n)) return usage_error("--parallel-runs '%s': expected a positive integer", v);
            S->parallel_runs = (int)n;
        }
        else if (!strcmp(a, "--max-runs")) {
            if (!lc_parse_long(v, 1, 1000000, &n)) return usage_error("--max-runs '%s': expected a positive integer", v);
            S->max_runs = n;
        } else if (!strcmp(a, "--model")) S->model = v;
        else if (!strcmp(a, "--data")) S->data = v;
        else if (!strcmp(a, "--mnist")) S->mnist = v;
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
            int rc = parse_schedule_opt(v, &S->sched);
            if (rc) return rc;
            S->sched_set = 1;
        } else if (!strcmp(a, "--alphas")) {
            if (!parse_list(v, S->alphas, LC_STUDY_MAX_LIST, &S->n_alphas))
                return usage_error("--alphas '%s': expected a comma-separated list of numbers in (-1, 1)", v);
            for (int k = 0; k < S->n_alphas; k++)
                if (S->alphas[k] <= -1 || S->alphas[k] >= 1)
                    return usage_error("--alphas '%s': expected a comma-separated list of numbers in (-1, 1)", v);
        } else if (!strcmp(a, "--lrs")) {
            if (!parse_list(v, S->lrs, LC_STUDY_MAX_LIST, &S->n_lrs))
                return usage_error("--lrs '%s': expected a comma-separated list of positive numbers", v);
            for (int k = 0; k < S->n_lrs; k++)
                if (S->lrs[k] <= 0) return usage_error("--lrs '%s': expected a comma-separated list of positive numbers", v);
        } else if (!strcmp(a, "--optimizers")) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            int n_paper = lc_study_paper_optimizer_count();
            S->n_optimizers = 0;
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
                int k = 0;
                while (k < n_paper && strcasecmp(tok, lc_study_paper_optimizer(k))) k++;
                if (k == n_paper || S->n_optimizers >= LC_STUDY_MAX_OPTIMIZERS)
                    return usage_error("--optimizers '%s': expected a list of sgd, sgd_amom, adam, rmsprop, adagrad", v);
                snprintf(S->optimizers[S->n_optimizers++], sizeof S->optimizers[0], "%s", lc_study_paper_optimizer(k));
            }
            if (!S->n_optimizers) return usage_error("--optimizers '%s': empty list", v);
        }
    }
    if (S->epochs > 0 && S->steps > 0) return usage_error("%s", "give --epochs or --steps, not both");
    if (S->per_class > 0 && S->train_subset > 0) return usage_error("%s", "give --per-class or --train-subset, not both");
    return 0;
}

/* Runs the study; prints the report, the failures, and returns the exit code. */
static int run_study(lc_study *st)
{
    lc_strbuf report = {0};
    lc_study_summary sum;
    lc_status s = lc_study_run(st, &report, &sum);
    if (report.s) fputs(report.s, stdout);
    fflush(stdout);
    lc_strbuf_free(&report);
    if (s != LC_OK) return fail();
    if (sum.failed) {
        fprintf(stderr, "layca: error: %d run%s failed (%d in this invocation), see %s/results.csv; the others went on; "
                        "--retry-failed reruns them\n",
                sum.failed, sum.failed == 1 ? "" : "s", sum.failed_now, lc_study_out(st));
        return 1;
    }
    return 0;
}

int lc_study_main(int argc, char **argv, lc_dist *dist)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(study_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    lc_study_kind kind = lc_study_kind_from_name(argv[1]);
    if (kind == LC_STUDY_COUNT)
        return usage_error("unknown study '%s' (known: mnist-toy, alpha-sweep, lr-grid, optimizers, weight-decay)", argv[1]);
    lc_study_opts o;
    lc_study_opts_init(&o, kind);
    o.train_opts = cli_env_train_opts; /* LAYCA_DEVICE, LAYCA_GEMM, ... */
    o.dist = dist;
    bool dry_run = false;
    int rc = parse_options(&o, &dry_run, argc, argv);
    if (rc) return rc < 0 ? 0 : rc;
    /* mnist-toy's MNIST folder: $LAYCA_SHARED/data/mnist, else ../shared/data/mnist */
    char mnist_default[1024] = "";
    const char *sh = getenv("LAYCA_SHARED");
    if (sh && *sh) {
        snprintf(mnist_default, sizeof mnist_default, "%s/data/mnist", sh);
        o.mnist_default = mnist_default;
    }
    lc_study *st;
    bool usage;
    if (lc_study_create(&o, &st, &usage) != LC_OK) return usage ? usage_error("%s", lc_error_message()) : fail();
    if (dry_run) {
        lc_strbuf plan = {0};
        lc_status s = lc_study_plan_text(st, &plan);
        if (plan.s) fputs(plan.s, stdout);
        lc_strbuf_free(&plan);
        lc_study_destroy(st);
        return s == LC_OK ? 0 : fail();
    }
    rc = run_study(st);
    lc_study_destroy(st);
    return rc;
}

/* layca: the command-line tool.  Owns stdout (tables, JSON); progress and
 * errors go to stderr.  Exit codes: 0 success, 2 usage error, 1 any other
 * error. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_train.h"

#define EXIT_USAGE 2

static const char *usage_text =
    "usage: layca <command> [options]\n"
    "\n"
    "commands:\n"
    "  devices                      list OpenCL devices (index, name, type, memory)\n"
    "  train MODEL.json --data SPEC train a model (see 'layca train --help')\n"
    "  inspect MODEL.json [--json]  print the graph after each compiler pass\n"
    "  help                         this text\n";

static const char *train_help =
    "usage: layca train MODEL.json --data SPEC [options]\n"
    "\n"
    "data:\n"
    "  --data SPEC          mnist:DIR (the four idx files, raw or .gz: MNIST, Fashion-MNIST)\n"
    "                       idx:IMAGES,LABELS (one idx pair: training examples drawn from it by\n"
    "                       --per-class or --train-subset, tested on the rest)\n"
    "  --per-class N        keep N training examples per class (seeded draw)\n"
    "  --train-subset N     keep N training examples (seeded draw)\n"
    "  --test-subset N      evaluate on the first N test examples\n"
    "  --no-shuffle         keep the training order\n"
    "  --no-normalize       skip the global mean/std normalisation\n"
    "training (flags override the model file's \"train\" section):\n"
    "  --optimizer NAME     sgd (default)\n"
    "  --lr F               learning rate (default 0.01)\n"
    "  --momentum F         SGD momentum (default 0)\n"
    "  --nesterov           Nesterov momentum\n"
    "  --weight-decay F     L2 coefficient (the gradient gains 2*F*w)\n"
    "  --alpha F            layer-wise rates, eq. 1 of the Layca paper (default 0)\n"
    "  --schedule M1,M2,..:F  multiply the rate by F at each milestone epoch\n"
    "  --epochs N | --steps N\n"
    "  --batch N            (default 128)\n"
    "  --seed N             initialisation, data draw and shuffling (default 1)\n"
    "outputs:\n"
    "  --metrics FILE.jsonl one JSON object per evaluation\n"
    "  --eval-every N       evaluate on the test split every N epochs and after the last (default 1)\n"
    "  --init FILE.safetensors   start from these weights\n"
    "  --save FILE.safetensors   write the final weights (PyTorch names and layouts)\n"
    "  --device SEL         P:D index or a name substring (default: LAYCA_DEVICE, first GPU, first CPU)\n"
    "  --quiet              no per-epoch lines\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "layca: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see 'layca help')\n");
    return EXIT_USAGE;
}

static int fail(void)
{
    fprintf(stderr, "layca: error: %s\n", lc_error_message());
    return 1;
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

static bool parse_long(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static int cmd_devices(int argc, char **argv)
{
    if (argc > 2) return usage_error("devices takes no arguments, got '%s'", argv[2]);
    lc_device_info *d;
    int n;
    if (lc_rt_list_devices(&d, &n) != LC_OK) return fail();
    if (n == 0) {
        fprintf(stderr, "layca: no OpenCL device found (install pocl-opencl-icd for the CPU)\n");
        free(d);
        return 1;
    }
    printf("%-6s %-44s %-5s %10s %4s  %s\n", "index", "name", "type", "memory", "CUs", "platform");
    for (int i = 0; i < n; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d:%d", d[i].platform, d[i].device);
        printf("%-6s %-44.44s %-5s %7.1f GiB %4u  %s\n", idx, d[i].name, lc_rt_device_type_name(d[i].type),
               (double)d[i].global_mem_bytes / (1024.0 * 1024 * 1024), d[i].compute_units, d[i].platform_name);
    }
    free(d);
    return 0;
}

static int parse_schedule(const char *s, lc_train_spec *t)
{
    const char *colon = strrchr(s, ':');
    if (!colon) return usage_error("--schedule '%s': expected MILESTONES:FACTOR, e.g. 80,90,97:0.2", s);
    double f;
    if (!parse_double(colon + 1, &f) || f <= 0) return usage_error("--schedule '%s': the factor must be a positive number", s);
    t->factor = f;
    t->n_milestones = 0;
    char buf[512];
    size_t len = (size_t)(colon - s);
    if (len >= sizeof buf) return usage_error("--schedule '%s': too long", s);
    memcpy(buf, s, len);
    buf[len] = 0;
    int last = -1;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        long long v;
        if (!parse_long(tok, 1, 1000000, &v) || v <= last || t->n_milestones >= LC_MAX_MILESTONES)
            return usage_error("--schedule '%s': milestones must be increasing positive epoch numbers", s);
        t->milestones[t->n_milestones++] = last = (int)v;
    }
    return 0;
}

static int cmd_train(int argc, char **argv)
{
    lc_train_opts o;
    memset(&o, 0, sizeof o);
    lc_train_spec_unset(&o.spec);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(train_help, stdout); return 0; }
        if (a[0] != '-' || !a[1]) {
            if (o.model_path) return usage_error("unexpected argument '%s' (one model file only)", a);
            o.model_path = a;
            continue;
        }
        /* boolean flags */
        if (!strcmp(a, "--nesterov")) { o.spec.nesterov = 1; continue; }
        if (!strcmp(a, "--no-shuffle")) { o.no_shuffle = true; continue; }
        if (!strcmp(a, "--no-normalize")) { o.data.no_normalize = true; continue; }
        if (!strcmp(a, "--quiet")) { o.quiet = true; continue; }
        if (i + 1 >= argc) return usage_error("%s needs a value", a);
        const char *v = argv[++i];
        double d;
        long long n;
        if (!strcmp(a, "--data")) o.data_spec = v;
        else if (!strcmp(a, "--device")) o.device = v;
        else if (!strcmp(a, "--metrics")) o.metrics_path = v;
        else if (!strcmp(a, "--init")) o.init_path = v;
        else if (!strcmp(a, "--save")) o.save_path = v;
        else if (!strcmp(a, "--optimizer")) snprintf(o.spec.optimizer, sizeof o.spec.optimizer, "%s", v);
        else if (!strcmp(a, "--schedule")) { int r = parse_schedule(v, &o.spec); if (r) return r; }
        else if (!strcmp(a, "--lr")) { if (!parse_double(v, &d) || d < 0) return usage_error("--lr '%s': expected a non-negative number", v); o.spec.lr = d; }
        else if (!strcmp(a, "--momentum")) { if (!parse_double(v, &d) || d < 0 || d >= 1) return usage_error("--momentum '%s': expected a number in [0, 1)", v); o.spec.momentum = d; }
        else if (!strcmp(a, "--weight-decay")) { if (!parse_double(v, &d) || d < 0) return usage_error("--weight-decay '%s': expected a non-negative number", v); o.spec.weight_decay = d; }
        else if (!strcmp(a, "--alpha")) { if (!parse_double(v, &d) || d <= -1 || d >= 1) return usage_error("--alpha '%s': expected a number in (-1, 1)", v); o.spec.alpha = d; }
        else if (!strcmp(a, "--epochs")) { if (!parse_long(v, 1, 1000000, &n)) return usage_error("--epochs '%s': expected a positive integer", v); o.spec.epochs = (int)n; }
        else if (!strcmp(a, "--steps")) { if (!parse_long(v, 1, 2000000000LL, &n)) return usage_error("--steps '%s': expected a positive integer", v); o.spec.steps = n; }
        else if (!strcmp(a, "--batch")) { if (!parse_long(v, 1, 1 << 20, &n)) return usage_error("--batch '%s': expected a positive integer", v); o.spec.batch = (int)n; }
        else if (!strcmp(a, "--seed")) { if (!parse_long(v, 0, 2000000000LL, &n)) return usage_error("--seed '%s': expected a non-negative integer", v); o.spec.seed = n; }
        else if (!strcmp(a, "--eval-every")) { if (!parse_long(v, 1, 1000000, &n)) return usage_error("--eval-every '%s': expected a positive integer", v); o.eval_every = (int)n; }
        else if (!strcmp(a, "--per-class")) { if (!parse_long(v, 1, 1 << 30, &n)) return usage_error("--per-class '%s': expected a positive integer", v); o.data.per_class = (int)n; }
        else if (!strcmp(a, "--train-subset")) { if (!parse_long(v, 1, 1LL << 40, &n)) return usage_error("--train-subset '%s': expected a positive integer", v); o.data.train_subset = n; }
        else if (!strcmp(a, "--test-subset")) { if (!parse_long(v, 1, 1LL << 40, &n)) return usage_error("--test-subset '%s': expected a positive integer", v); o.data.test_subset = n; }
        else { --i; return usage_error("unknown option '%s' for train", a); }
    }
    if (!o.model_path) return usage_error("%s", "train needs a model file: layca train MODEL.json --data SPEC");
    if (!o.data_spec) return usage_error("%s", "train needs --data SPEC (e.g. mnist:/usr/share/datasets/fashion-mnist)");
    if (o.spec.epochs >= 0 && o.spec.steps >= 0) return usage_error("%s", "give --epochs or --steps, not both");
    lc_train_result r;
    if (lc_train_run(&o, &r) != LC_OK) return fail();
    fprintf(stderr, "done: %lld steps, test accuracy %.2f%%, %.1f training steps/s\n", (long long)r.steps,
            100 * r.test_acc, r.steps_per_s);
    return 0;
}

static int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    long long batch = 1;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--batch")) {
            if (i + 1 >= argc || !parse_long(argv[i + 1], 1, 1 << 20, &batch))
                return usage_error("%s", "--batch needs a positive integer");
            i++;
        } else if (argv[i][0] == '-') return usage_error("unknown option '%s' for inspect", argv[i]);
        else if (path) return usage_error("unexpected argument '%s'", argv[i]);
        else path = argv[i];
    }
    if (!path) return usage_error("%s", "inspect needs a model file");
    lc_graph *g;
    lc_train_spec ts;
    if (lc_model_load(path, &g, &ts) != LC_OK) return fail();
    if (lc_graph_compile(g, (int)batch, true, json ? NULL : stdout) != LC_OK) { lc_graph_destroy(g); return fail(); }
    if (json) {
        int L = lc_graph_kernel_layers(g, NULL, 0);
        int *kl = malloc((size_t)(L ? L : 1) * sizeof *kl);
        lc_graph_kernel_layers(g, kl, L);
        printf("{\"name\": \"%s\", \"nodes\": %d, \"backward_nodes\": %d, \"parameters\": %lld, \"kernel_layers\": [",
               g->name, g->n_forward, g->n_nodes - g->n_forward, (long long)lc_graph_trainable_count(g));
        for (int l = 0; l < L; l++) printf("%s\"%s\"", l ? ", " : "", g->nodes[g->params[kl[l]].node].name);
        printf("], \"batch\": %lld, \"activation_bytes\": %lld, \"parameter_bytes\": %lld}\n", batch,
               (long long)g->act_floats * 4, (long long)g->param_floats * 4);
        free(kl);
    }
    lc_graph_destroy(g);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) { fputs(usage_text, stderr); return EXIT_USAGE; }
    const char *c = argv[1];
    if (!strcmp(c, "help") || !strcmp(c, "--help") || !strcmp(c, "-h")) { fputs(usage_text, stdout); return 0; }
    if (!strcmp(c, "devices")) return cmd_devices(argc, argv);
    if (!strcmp(c, "train")) return cmd_train(argc, argv);
    if (!strcmp(c, "inspect")) return cmd_inspect(argc, argv);
    return usage_error("unknown command '%s'", c);
}

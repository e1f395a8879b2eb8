/* layca: the command-line tool.  Owns stdout (tables, JSON); progress and
 * errors go to stderr.  Exit codes: 0 success, 2 usage error, 1 any other
 * error. */
#include "cli_parse.h"
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_env.h"
#include "lc_metrics.h"
#include "lc_train.h"
#include "lc_plot.h"
#include "onnx_cli.h"
#include "study.h"
#include "tune.h"

#define EXIT_USAGE 2

static const char *usage_text =
    "usage: layca <command> [options]\n"
    "\n"
    "commands:\n"
    "  devices                      list OpenCL devices (index, name, type, memory)\n"
    "  train MODEL.json --data SPEC train a model (see 'layca train --help')\n"
    "  eval MODEL.json --init W --data SPEC  evaluate saved weights: loss, top-1/top-5, per-class\n"
    "                               accuracy, confusion matrix as JSON (see 'layca eval --help')\n"
    "  inspect MODEL.json           a summary: nodes, ops, shapes, parameters, FLOPs, memory plan\n"
    "                               (--passes: the graph after each compiler pass; --json)\n"
    "  plot METRICS.jsonl [...] [-o PREFIX]  layer rotation curves and training curves (PNG and SVG);\n"
    "                               several runs overlaid\n"
    "  study NAME [options]         the paper's studies: mnist-toy, alpha-sweep, lr-grid, optimizers,\n"
    "                               weight-decay (see 'layca study --help')\n"
    "  tune MODEL.json [options]    tune CLBlast for MODEL's GEMMs on a device (see 'layca tune --help')\n"
    "  import MODEL.onnx -o MODEL.json [--weights W.safetensors]  an ONNX model as a layca model and weights\n"
    "  export MODEL.json --weights W -o MODEL.onnx  a layca model as an ONNX inference graph\n"
    "  help                         this text; 'layca COMMAND --help' for each command\n"
    "  --version                    the version\n";

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
    "                       cifar10:DIR, cifar100:DIR, cifar100-coarse:DIR (official binary releases)\n"
    "                       images:DIR (train/<class>/*.jpg|png and test/<class>/...), tinyimagenet:DIR\n"
    "                       (see tools/datasets.sh where)\n"
    "  --val-split F        hold out a seeded fraction F of the training examples for validation\n"
    "  --flip               augmentation: random horizontal flips\n"
    "  --shift F            augmentation: random shifts up to F of the image size, reflect padding\n"
    "  --per-channel        normalise per channel (default: one global mean and std, as the paper)\n"
    "  --no-shuffle         keep the training order\n"
    "  --no-normalize       skip the global mean/std normalisation\n"
    "training (flags override the model file's \"train\" section):\n"
    "  --optimizer NAME     sgd (default), sgd_amom, adam, rmsprop, adagrad\n"
    "  --layca / --no-layca wrap the optimizer in Layca: each kernel layer rotates by arctan(rate)\n"
    "                       per step and keeps its initial norm (the paper's Algorithm 1)\n"
    "  --layca-skip-bias    under Layca, leave biases untouched (default: a plain inner step)\n"
    "  --lr F               learning rate; with --layca the rotation rate rho (default 0.01)\n"
    "  --momentum F         SGD momentum (default 0)\n"
    "  --nesterov           Nesterov momentum\n"
    "  --weight-decay F     L2 coefficient (the gradient gains 2*F*w)\n"
    "  --alpha F            layer-wise rates, eq. 1 of the Layca paper (default 0)\n"
    "  --schedule M1,M2,..:F  multiply the rate by F at each milestone epoch\n"
    "  --train-only NODE    train only this node's parameters, every other one frozen (single-layer training)\n"
    "  --fixed-gating       hold every ReLU's on/off pattern per example at its initial value, except the\n"
    "                       ReLU right after the --train-only node (the paper's \"prevent feedback improvement\")\n"
    "  --silhouette NODE    after each evaluation, the cosine silhouette of the loss gradient at NODE's output\n"
    "                       over the first --silhouette-samples test examples (default 1000), by class\n"
    "  --epochs N | --steps N\n"
    "  --batch N            (default 128)\n"
    "  --seed N             initialisation, data draw and shuffling (default 1)\n"
    "outputs:\n"
    "  --metrics FILE.jsonl one JSON object per evaluation (\"kind\": \"eval\") and per rotation record\n"
    "                       (\"kind\": \"rotation\": each kernel layer's 1 - cos(w, w0) and norm)\n"
    "  --rotation-every N   record rotation every N steps too (default: after each epoch's first batch)\n"
    "  --log-every N        record the training loss and accuracy over each N steps (default: about 200\n"
    "                       records per run; 0: none; the epoch's figures are always recorded)\n"
    "  --no-fuse            the unfused optimizer path (several launches per layer), for checking\n"
    "  --eval-every N       evaluate on the test split every N epochs and after the last (default 1);\n"
    "                       the per-epoch rotation record follows the same cadence\n"
    "  --init FILE.safetensors   start from these weights (a checkpoint's weights too, or a PyTorch\n"
    "                       state dict saved with safetensors; batchnorm's num_batches_tracked is ignored)\n"
    "  --init-map MAP       rename --init's tensors: FROM=TO,... with FROM a tensor name or a prefix\n"
    "                       ending at a '.' (e.g. features.0=conv1,classifier=fc)\n"
    "  --save FILE.safetensors   write the final weights (PyTorch names and layouts; the input\n"
    "                       normalisation in the metadata, for 'layca eval')\n"
    "  --on-nonfinite stop|continue  a non-finite training loss stops the run with exit 1, naming the\n"
    "                       step and the first layer holding a non-finite value (default: stop)\n"
    "checkpoints (outputs never overwrite an input or each other; their folders are checked first):\n"
    "  --checkpoint-every N | Ne   a checkpoint every N steps, or every N epochs with 'e' (e.g. 2e)\n"
    "  --checkpoint-dir DIR the checkpoints' folder (default: 'checkpoints' beside --save, else\n"
    "                       beside --metrics); files DIR/ckpt-<step>.safetensors\n"
    "  --checkpoint-keep K  keep the last K checkpoints (default 3)\n"
    "  --resume DIR|FILE    continue from a checkpoint (a folder: its latest) with the same model, data\n"
    "                       and settings (--epochs/--steps may grow); the weights and metrics come out\n"
    "                       as an uninterrupted run's on the same device\n"
    "                       SIGINT or SIGTERM finish the step, write a checkpoint (when a folder is\n"
    "                       known) and exit 130 / 143; a second Ctrl-C stops at once\n"
    "device and output:\n"
    "  --device SEL         P:D index or a name substring (default: LAYCA_DEVICE, else the first GPU, else\n"
    "                       the first CPU, among the devices that build layca's kernels)\n"    "                       under mpirun: SEL0,SEL1,... gives rank r of each machine item r (mod the\n"
    "                       count); unset: the machine's GPU r (mod the GPUs), else the default device\n"
    "  --device-only        no host shortcuts (host BLAS, host convolutions, host maps, the CPU optimizer\n"
    "                       layout): a CPU device runs exactly what a GPU runs\n"
    "  --progress auto|lines  a live line on a terminal (auto), or a plain line every ~10 s\n"
    "  --quiet              no progress or epoch lines\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "layca: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see 'layca help')\n");
    return EXIT_USAGE;
}

/* The MPI world when started by mpirun (tools/cli_env.c decides), else NULL. */
static lc_dist *dist;

static int fail(void)
{
    if (lc_dist_size(dist) > 1)
        fprintf(stderr, "layca: error (rank %d of %d): %s\n", lc_dist_rank(dist), lc_dist_size(dist), lc_error_message());
    else
        fprintf(stderr, "layca: error: %s\n", lc_error_message());
    return 1;
}


static int cmd_devices(int argc, char **argv)
{
    if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
        fputs("usage: layca devices\n\nLists the OpenCL devices: index (P:D, for --device), name, type, global memory, "
              "compute units,\nplatform.\n", stdout);
        return 0;
    }
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
    if (!lc_parse_double(colon + 1, &f) || f <= 0) return usage_error("--schedule '%s': the factor must be a positive number", s);
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
        if (!lc_parse_long(tok, 1, 1000000, &v) || v <= last || t->n_milestones >= LC_MAX_MILESTONES)
            return usage_error("--schedule '%s': milestones must be increasing positive epoch numbers", s);
        t->milestones[t->n_milestones++] = last = (int)v;
    }
    return 0;
}

/* SIGINT / SIGTERM: the trainer finishes its step, writes a checkpoint and
 * returns; the handler is reset so that a second signal stops at once. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) { stop_signal = sig; }

static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int cmd_train(int argc, char **argv)
{
    lc_train_opts o;
    lc_train_opts_init(&o);
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
        if (!strcmp(a, "--layca")) { o.spec.layca = 1; continue; }
        if (!strcmp(a, "--no-layca")) { o.spec.layca = 0; continue; }
        if (!strcmp(a, "--no-fuse")) { o.no_fuse = true; continue; }
        if (!strcmp(a, "--device-only")) { o.device_only = true; continue; }
        if (!strcmp(a, "--flip")) { o.flip = true; continue; }
        if (!strcmp(a, "--fixed-gating")) { o.fixed_gating = true; continue; }
        if (!strcmp(a, "--per-channel")) { o.data.per_channel = true; continue; }
        if (!strcmp(a, "--layca-skip-bias")) { o.layca_skip_non_kernel = true; continue; }
        if (i + 1 >= argc) return usage_error("%s needs a value", a);
        const char *v = argv[++i];
        double d;
        long long n;
        if (!strcmp(a, "--data")) o.data_spec = v;
        else if (!strcmp(a, "--device")) o.device = v;
        else if (!strcmp(a, "--metrics")) o.metrics_path = v;
        else if (!strcmp(a, "--init")) o.init_path = v;
        else if (!strcmp(a, "--init-map")) o.init_map = v;
        else if (!strcmp(a, "--save")) o.save_path = v;
        else if (!strcmp(a, "--optimizer")) snprintf(o.spec.optimizer, sizeof o.spec.optimizer, "%s", v);
        else if (!strcmp(a, "--schedule")) { int r = parse_schedule(v, &o.spec); if (r) return r; }
        else if (!strcmp(a, "--lr")) { if (!lc_parse_double(v, &d) || d < 0) return usage_error("--lr '%s': expected a non-negative number", v); o.spec.lr = d; }
        else if (!strcmp(a, "--momentum")) { if (!lc_parse_double(v, &d) || d < 0 || d >= 1) return usage_error("--momentum '%s': expected a number in [0, 1)", v); o.spec.momentum = d; }
        else if (!strcmp(a, "--weight-decay")) { if (!lc_parse_double(v, &d) || d < 0) return usage_error("--weight-decay '%s': expected a non-negative number", v); o.spec.weight_decay = d; }
        else if (!strcmp(a, "--alpha")) { if (!lc_parse_double(v, &d) || d <= -1 || d >= 1) return usage_error("--alpha '%s': expected a number in (-1, 1)", v); o.spec.alpha = d; }
        else if (!strcmp(a, "--epochs")) { if (!lc_parse_long(v, 1, 1000000, &n)) return usage_error("--epochs '%s': expected a positive integer", v); o.spec.epochs = (int)n; }
        else if (!strcmp(a, "--steps")) { if (!lc_parse_long(v, 1, 2000000000LL, &n)) return usage_error("--steps '%s': expected a positive integer", v); o.spec.steps = n; }
        else if (!strcmp(a, "--batch")) { if (!lc_parse_long(v, 1, 1 << 20, &n)) return usage_error("--batch '%s': expected a positive integer", v); o.spec.batch = (int)n; }
        else if (!strcmp(a, "--seed")) { if (!lc_parse_long(v, 0, 2000000000LL, &n)) return usage_error("--seed '%s': expected a non-negative integer", v); o.spec.seed = n; }
        else if (!strcmp(a, "--rotation-every")) { if (!lc_parse_long(v, 1, 2000000000LL, &n)) return usage_error("--rotation-every '%s': expected a positive integer", v); o.rotation_every = (int)n; }
        else if (!strcmp(a, "--log-every")) { if (!lc_parse_long(v, 0, 2000000000LL, &n)) return usage_error("--log-every '%s': expected a non-negative integer", v); o.log_every = (int)n; }
        else if (!strcmp(a, "--shift")) { if (!lc_parse_double(v, &d) || d < 0 || d >= 0.5) return usage_error("--shift '%s': expected a fraction in [0, 0.5)", v); o.shift = d; }
        else if (!strcmp(a, "--val-split")) { if (!lc_parse_double(v, &d) || d <= 0 || d >= 1) return usage_error("--val-split '%s': expected a fraction in (0, 1)", v); o.data.val_split = d; }
        else if (!strcmp(a, "--train-only")) o.train_only = v;
        else if (!strcmp(a, "--silhouette")) o.silhouette = v;
        else if (!strcmp(a, "--silhouette-samples")) { if (!lc_parse_long(v, 2, 1 << 20, &n)) return usage_error("--silhouette-samples '%s': expected an integer >= 2", v); o.silhouette_samples = (int)n; }
        else if (!strcmp(a, "--eval-every")) { if (!lc_parse_long(v, 1, 1000000, &n)) return usage_error("--eval-every '%s': expected a positive integer", v); o.eval_every = (int)n; }
        else if (!strcmp(a, "--per-class")) { if (!lc_parse_long(v, 1, 1 << 30, &n)) return usage_error("--per-class '%s': expected a positive integer", v); o.data.per_class = (int)n; }
        else if (!strcmp(a, "--train-subset")) { if (!lc_parse_long(v, 1, 1LL << 40, &n)) return usage_error("--train-subset '%s': expected a positive integer", v); o.data.train_subset = n; }
        else if (!strcmp(a, "--test-subset")) { if (!lc_parse_long(v, 1, 1LL << 40, &n)) return usage_error("--test-subset '%s': expected a positive integer", v); o.data.test_subset = n; }
        else if (!strcmp(a, "--checkpoint-every")) {
            size_t len = strlen(v);
            char num[32];
            bool epochs = len > 1 && v[len - 1] == 'e';
            snprintf(num, sizeof num, "%.*s", (int)(epochs ? len - 1 : len), v);
            if (len >= sizeof num || !lc_parse_long(num, 1, 1LL << 40, &n))
                return usage_error("--checkpoint-every '%s': expected N (steps) or Ne (epochs), N a positive integer", v);
            if (epochs) o.checkpoint_every_epochs = (int)LC_MIN(n, 1000000);
            else o.checkpoint_every = n;
        }
        else if (!strcmp(a, "--checkpoint-dir")) o.checkpoint_dir = v;
        else if (!strcmp(a, "--checkpoint-keep")) { if (!lc_parse_long(v, 1, 1000000, &n)) return usage_error("--checkpoint-keep '%s': expected a positive integer", v); o.checkpoint_keep = (int)n; }
        else if (!strcmp(a, "--resume")) o.resume = v;
        else if (!strcmp(a, "--on-nonfinite")) {
            if (!strcmp(v, "stop")) o.on_nonfinite = LC_NONFINITE_STOP;
            else if (!strcmp(v, "continue")) o.on_nonfinite = LC_NONFINITE_CONTINUE;
            else return usage_error("--on-nonfinite '%s': expected stop or continue", v);
        }
        else if (!strcmp(a, "--progress")) {
            if (!strcmp(v, "auto")) o.progress = LC_PROGRESS_AUTO;
            else if (!strcmp(v, "lines")) o.progress = LC_PROGRESS_LINES;
            else return usage_error("--progress '%s': expected auto or lines", v);
        }
        else { --i; return usage_error("unknown option '%s' for train", a); }
    }
    if (!o.model_path) return usage_error("%s", "train needs a model file: layca train MODEL.json --data SPEC");
    if (!o.data_spec) return usage_error("%s", "train needs --data SPEC (e.g. mnist:/usr/share/datasets/fashion-mnist)");
    if (o.spec.epochs >= 0 && o.spec.steps >= 0) return usage_error("%s", "give --epochs or --steps, not both");
    cli_env_train_opts(&o);
    o.stop = &stop_signal;
    o.dist = dist;
    catch_stop_signals();
    lc_train_result r;
    if (lc_train_run(&o, &r) != LC_OK) {
        int rc = fail();
        lc_dist_abort(dist, rc); /* the other ranks would wait for this one forever */
        return rc;
    }
    int code = 0;
    if (r.stop_signal) {
        if (lc_dist_rank(dist) == 0)
            fprintf(stderr, "stopped at step %lld%s%s\n", (long long)r.steps,
                    r.checkpoint[0] ? "; resume with --resume " : "", r.checkpoint);
        code = 128 + r.stop_signal;
    } else if (lc_dist_rank(dist) == 0) {
        fprintf(stderr, "done: %lld steps, test accuracy %.2f%%, %.1f training steps/s\n", (long long)r.steps,
                100 * r.test_acc, r.steps_per_s);
    }
    lc_train_result_free(&r);
    return code;
}

static const char *eval_help =
    "usage: layca eval MODEL.json --init W.safetensors --data SPEC [options]\n"
    "\n"
    "Evaluates saved weights on one split and prints one JSON object on stdout: examples, loss, top-1\n"
    "and top-5 accuracy, per-class accuracy and the confusion matrix (rows: true class, columns:\n"
    "prediction; a prediction with a NaN logit is a miss and in no column).  The input normalisation\n"
    "is the one stored in the weights by 'layca train --save'.\n"
    "\n"
    "  --init-map MAP           rename the weights' tensors (as for train)\n"
    "  --split test|val|train   (default test; val needs --val-split as in training)\n"
    "  --batch N                (default 256)\n"
    "  --per-class N, --train-subset N, --test-subset N, --val-split F, --seed N   as for train, to\n"
    "                           rebuild the same splits\n"
    "  --device SEL, --device-only\n";

static void print_json_array_d(const double *v, int n)
{
    printf("[");
    for (int i = 0; i < n; i++) printf(isfinite(v[i]) ? "%s%.6f" : "%snull", i ? ", " : "", v[i]);
    printf("]");
}

static int cmd_eval(int argc, char **argv)
{
    lc_eval_opts o;
    memset(&o, 0, sizeof o);
    o.split = 2;
    long long seed = 1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(eval_help, stdout); return 0; }
        if (a[0] != '-' || !a[1]) {
            if (o.model_path) return usage_error("unexpected argument '%s' (one model file only)", a);
            o.model_path = a;
            continue;
        }
        if (!strcmp(a, "--device-only")) { o.device_only = true; continue; }
        if (i + 1 >= argc) return usage_error("%s needs a value", a);
        const char *v = argv[++i];
        long long n;
        double d;
        if (!strcmp(a, "--init") || !strcmp(a, "--weights")) o.weights_path = v;
        else if (!strcmp(a, "--init-map")) o.weights_map = v;
        else if (!strcmp(a, "--data")) o.data_spec = v;
        else if (!strcmp(a, "--device")) o.device = v;
        else if (!strcmp(a, "--split")) {
            if (!strcmp(v, "test")) o.split = 2;
            else if (!strcmp(v, "val")) o.split = 1;
            else if (!strcmp(v, "train")) o.split = 0;
            else return usage_error("--split '%s': expected test, val or train", v);
        }
        else if (!strcmp(a, "--batch")) { if (!lc_parse_long(v, 1, 1 << 20, &n)) return usage_error("--batch '%s': expected a positive integer", v); o.batch = (int)n; }
        else if (!strcmp(a, "--seed")) { if (!lc_parse_long(v, 0, 2000000000LL, &n)) return usage_error("--seed '%s': expected a non-negative integer", v); seed = n; }
        else if (!strcmp(a, "--per-class")) { if (!lc_parse_long(v, 1, 1 << 30, &n)) return usage_error("--per-class '%s': expected a positive integer", v); o.data.per_class = (int)n; }
        else if (!strcmp(a, "--train-subset")) { if (!lc_parse_long(v, 1, 1LL << 40, &n)) return usage_error("--train-subset '%s': expected a positive integer", v); o.data.train_subset = n; }
        else if (!strcmp(a, "--test-subset")) { if (!lc_parse_long(v, 1, 1LL << 40, &n)) return usage_error("--test-subset '%s': expected a positive integer", v); o.data.test_subset = n; }
        else if (!strcmp(a, "--val-split")) { if (!lc_parse_double(v, &d) || d <= 0 || d >= 1) return usage_error("--val-split '%s': expected a fraction in (0, 1)", v); o.data.val_split = d; }
        else { --i; return usage_error("unknown option '%s' for eval", a); }
    }
    if (!o.model_path) return usage_error("%s", "eval needs a model file: layca eval MODEL.json --init W --data SPEC");
    if (!o.weights_path) return usage_error("%s", "eval needs --init WEIGHTS.safetensors");
    if (!o.data_spec) return usage_error("%s", "eval needs --data SPEC");
    o.data.seed = (uint64_t)seed;
    cli_env_eval_opts(&o);
    lc_eval_result r;
    if (lc_eval_run(&o, &r) != LC_OK) return fail();
    lc_strbuf b = {0};
    lc_strbuf_printf(&b, "{\"model\": ");
    lc_strbuf_json_string(&b, o.model_path);
    lc_strbuf_printf(&b, ", \"weights\": ");
    lc_strbuf_json_string(&b, o.weights_path);
    lc_strbuf_printf(&b, ", \"data\": ");
    lc_strbuf_json_string(&b, o.data_spec);
    lc_strbuf_printf(&b, ", \"split\": \"%s\", \"examples\": %lld, \"loss\": ", o.split == 2 ? "test" : o.split == 1 ? "val" : "train",
                     (long long)r.n);
    lc_strbuf_json_number(&b, "%.6f", r.loss);
    lc_strbuf_printf(&b, ", \"top1\": %.6f, \"top5\": %.6f, \"nan_predictions\": %lld, \"normalisation_from_weights\": %s",
                     r.top1, r.top5, (long long)r.nan_predictions, r.norm_from_weights ? "true" : "false");
    fputs(b.s, stdout);
    lc_strbuf_free(&b);
    printf(", \"per_class\": ");
    print_json_array_d(r.class_acc, r.classes);
    printf(", \"confusion\": [");
    for (int c = 0; c < r.classes; c++) {
        printf("%s[", c ? ", " : "");
        for (int k = 0; k < r.classes; k++) printf("%s%lld", k ? ", " : "", (long long)r.confusion[(size_t)c * r.classes + k]);
        printf("]");
    }
    printf("]}\n");
    fprintf(stderr, "%s: %lld examples, loss %.4f, top-1 %.2f%%, top-5 %.2f%%\n", r.data_desc, (long long)r.n, r.loss,
            100 * r.top1, 100 * r.top5);
    lc_eval_result_free(&r);
    return 0;
}

static const char *inspect_help =
    "usage: layca inspect MODEL.json [--batch N] [--passes | --json]\n"
    "\n"
    "A summary of the model compiled for training at batch N (default 1): each forward node with its op,\n"
    "output shape (per example), parameters and FLOPs, the totals (forward and backward FLOPs per step)\n"
    "and the memory plan.\n"
    "  --passes   the graph after each compiler pass (inference, fusion, autodiff, dead-code\n"
    "             elimination, memory planning) instead\n"
    "  --json     name, node counts, trainable parameters, kernel layers and plan sizes as JSON\n";

/* Parameters of forward node id: the sizes of the parameters it owns. */
static int64_t node_params(const lc_graph *g, int id, bool trainable_only)
{
    int64_t n = 0;
    const lc_node *nd = &g->nodes[id];
    for (int k = 0; k < nd->n_inputs; k++) {
        const lc_node *p = &g->nodes[nd->inputs[k]];
        if (p->op == LC_OP_PARAM && (!trainable_only || p->trainable)) n += lc_shape_numel(&p->shape);
    }
    return n;
}

static const char *count_str(double v, char *buf, size_t len)
{
    if (v >= 1e9) snprintf(buf, len, "%.2fG", v / 1e9);
    else if (v >= 1e6) snprintf(buf, len, "%.2fM", v / 1e6);
    else if (v >= 1e4) snprintf(buf, len, "%.1fk", v / 1e3);
    else snprintf(buf, len, "%.0f", v);
    return buf;
}

static void print_summary(const lc_graph *g, int batch)
{
    char sh[64], b1[32], b2[32];
    int nodes = 0;
    for (int i = 0; i < g->n_forward; i++) nodes += g->nodes[i].op != LC_OP_PARAM && g->nodes[i].op != LC_OP_LABELS;
    printf("model '%s': %d nodes, %d kernel layers, %lld trainable parameters\n\n", g->name, nodes,
           lc_graph_kernel_layers(g, NULL, 0), (long long)lc_graph_trainable_count(g));
    printf("%-24s %-22s %-18s %12s %12s\n", "node", "op", "output", "parameters", "FLOPs");
    double fwd = 0, bwd = 0;
    for (int i = 0; i < g->n_forward; i++) {
        const lc_node *nd = &g->nodes[i];
        if (nd->op == LC_OP_PARAM || nd->op == LC_OP_LABELS) continue;
        double fl = (double)lc_graph_node_flops(g, i, batch);
        fwd += fl;
        printf("%-24s %-22s %-18s %12s %12s\n", nd->name, lc_op_name(nd->op), lc_shape_str(&nd->shape, sh, sizeof sh),
               count_str((double)node_params(g, i, false), b1, sizeof b1), count_str(fl, b2, sizeof b2));
    }
    for (int i = g->n_forward; i < g->n_nodes; i++) bwd += (double)lc_graph_node_flops(g, i, batch);
    int64_t all = 0;
    for (int i = 0; i < g->n_params; i++) all += g->params[i].numel;
    printf("\ntotal: %lld parameters (%lld trainable, %.2f MiB); FLOPs at batch %d: forward %s, backward %s\n",
           (long long)all, (long long)lc_graph_trainable_count(g), (double)all * 4 / 1048576.0, batch,
           count_str(fwd, b1, sizeof b1), count_str(bwd, b2, sizeof b2));
    printf("memory plan at batch %d: activations %.2f MiB (largest workspace %.2f MiB), parameters %.2f MiB (x2 with "
           "gradients, more with optimizer state)\n", batch, (double)g->act_floats * 4 / 1048576.0,
           (double)g->aux_peak_floats * 4 / 1048576.0, (double)g->param_floats * 4 / 1048576.0);
}

static int print_inspect_json(const lc_graph *g, long long batch)
{
    int L = lc_graph_kernel_layers(g, NULL, 0);
    int *kl = malloc((size_t)(L ? L : 1) * sizeof *kl);
    if (!kl) { LC_ERR(LC_ERR_NOMEM, "out of memory"); return fail(); }
    lc_graph_kernel_layers(g, kl, L);
    /* names come from the model file: quoted and escaped as JSON strings */
    lc_strbuf b = {0};
    lc_strbuf_printf(&b, "{\"name\": ");
    lc_strbuf_json_string(&b, g->name);
    lc_strbuf_printf(&b, ", \"nodes\": %d, \"backward_nodes\": %d, \"parameters\": %lld, \"kernel_layers\": [",
                     g->n_forward, g->n_nodes - g->n_forward, (long long)lc_graph_trainable_count(g));
    for (int l = 0; l < L; l++) {
        if (l) lc_strbuf_printf(&b, ", ");
        lc_strbuf_json_string(&b, g->nodes[g->params[kl[l]].node].name);
    }
    lc_strbuf_printf(&b, "], \"batch\": %lld, \"activation_bytes\": %lld, \"parameter_bytes\": %lld}\n", batch,
                     (long long)g->act_floats * 4, (long long)g->param_floats * 4);
    free(kl);
    if (b.oom) { lc_strbuf_free(&b); LC_ERR(LC_ERR_NOMEM, "out of memory"); return fail(); }
    fputs(b.s, stdout);
    lc_strbuf_free(&b);
    return 0;
}

static int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false, passes = false;
    long long batch = 1;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(inspect_help, stdout); return 0; }
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--passes")) passes = true;
        else if (!strcmp(argv[i], "--batch")) {
            if (i + 1 >= argc || !lc_parse_long(argv[i + 1], 1, 1 << 20, &batch))
                return usage_error("%s", "--batch needs a positive integer");
            i++;
        } else if (argv[i][0] == '-') return usage_error("unknown option '%s' for inspect", argv[i]);
        else if (path) return usage_error("unexpected argument '%s'", argv[i]);
        else path = argv[i];
    }
    if (!path) return usage_error("%s", "inspect needs a model file (see 'layca inspect --help')");
    if (json && passes) return usage_error("%s", "--json and --passes: choose one");
    lc_graph *g;
    lc_train_spec ts;
    if (lc_model_load(path, &g, &ts) != LC_OK) return fail();
    if (lc_exec_compile(g, (int)batch, true, passes ? stdout : NULL) != LC_OK) { lc_graph_destroy(g); return fail(); }
    int rc = 0;
    if (json) rc = print_inspect_json(g, batch);
    else if (!passes) print_summary(g, (int)batch);
    lc_graph_destroy(g);
    return rc;
}

/* The x of evaluation i: its epoch, or, when a loss record has the same
 * step, that record's fractional epoch (a run cut short by --steps ends
 * inside an epoch). */
static double eval_x(const lc_metrics *m, int i)
{
    for (int k = m->n_loss - 1; k >= 0; k--)
        if (m->loss[k].step == m->eval[i].step) return m->loss[k].epoch;
    return m->eval[i].epoch;
}

/* Loss and accuracy figures: the loss records' windows (thin, light) under
 * the per-epoch train and test figures. */
static lc_status plot_training(const lc_metrics *m, const char *prefix, const char *title)
{
    int n = m->n_eval, ns = m->n_loss;
    double *x = malloc((size_t)(n + ns + 1) * sizeof *x), *v = malloc((size_t)(4 * n + 2 * ns + 1) * sizeof *v);
    if (!x || !v) { free(x); free(v); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    double *xs = x + n, *sl = v + 4 * n, *sa = sl + ns;
    for (int i = 0; i < n; i++) {
        x[i] = eval_x(m, i);
        v[i] = m->eval[i].train_loss;
        v[n + i] = m->eval[i].test_loss;
        v[2 * n + i] = 100 * m->eval[i].train_acc;
        v[3 * n + i] = 100 * m->eval[i].test_acc;
    }
    for (int i = 0; i < ns; i++) {
        xs[i] = m->loss[i].epoch;
        sl[i] = m->loss[i].loss;
        sa[i] = 100 * m->loss[i].acc;
    }
    char path[1100], t[300];
    double drops[64];
    int nd = lc_plot_lr_drops(m, drops, 64);
    const char *xl = nd ? "Epoch (dashed: learning-rate drops)" : "Epoch";
    const double light[3] = {0.62, 0.78, 0.91};
    bool pts = n < 30;
    lc_series loss[3] = {{.x = xs, .y = sl, .n = ns, .rgb = {light[0], light[1], light[2]}, .label = "train (steps)"},
                         {.x = x, .y = v, .n = n, .rgb = {0.12, 0.47, 0.71}, .label = "train (epoch)", .points = pts},
                         {.x = x, .y = v + n, .n = n, .rgb = {0.84, 0.15, 0.16}, .label = "test", .dashed = true, .points = pts}};
    int first = ns > 0 ? 0 : 1;
    if (!ns) loss[1].label = "train";
    snprintf(t, sizeof t, "%s: loss", title);
    lc_figure f = {.title = t, .xlabel = xl, .ylabel = "Cross-entropy loss", .legend = true, .vlines = drops,
                   .n_vlines = nd};
    snprintf(path, sizeof path, "%s-loss", prefix);
    lc_status st = lc_plot(path, &f, loss + first, 3 - first);
    if (st == LC_OK) {
        lc_series acc[3];
        memcpy(acc, loss, sizeof acc);
        acc[0].y = sa;
        acc[1].y = v + 2 * n;
        acc[2].y = v + 3 * n;
        snprintf(t, sizeof t, "%s: accuracy", title);
        lc_figure g = {.title = t, .xlabel = xl, .ylabel = "Accuracy (%)", .legend = true, .vlines = drops,
                       .n_vlines = nd};
        snprintf(path, sizeof path, "%s-accuracy", prefix);
        st = lc_plot(path, &g, acc + first, 3 - first);
    }
    free(x);
    free(v);
    return st;
}

static const char *plot_help =
    "usage: layca plot METRICS.jsonl [MORE.jsonl ...] [-o PREFIX] [--title TEXT]\n"
    "\n"
    "Draws a training run's figures from its metrics file (layca train --metrics) as PNG and SVG:\n"
    "PREFIX-rotation (each kernel layer's cosine distance to its initial weights), PREFIX-loss and\n"
    "PREFIX-accuracy.  PREFIX defaults to the metrics file without .jsonl; the title to its name.\n"
    "Several files (up to 10, -o required) overlay the runs, one colour and legend entry each (the file\n"
    "name, or its folder's for metrics.jsonl): their rotation (first layer solid), test loss and accuracy.\n";

/* Several runs: test loss and accuracy per run, one colour each. */
static lc_status plot_training_runs(const lc_metrics *m, const char *const *labels, int runs, const char *prefix,
                                    const char *title)
{
    int pts = 0;
    for (int r = 0; r < runs; r++) pts += m[r].n_eval;
    double *buf = malloc((size_t)(3 * pts + 1) * sizeof *buf);
    lc_series *s = calloc((size_t)runs * 2 + 1, sizeof *s);
    if (!buf || !s) { free(buf); free(s); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    double *p = buf;
    for (int r = 0; r < runs; r++) {
        int n = m[r].n_eval;
        double *x = p, *loss = p + n, *acc = p + 2 * n;
        p += 3 * n;
        for (int i = 0; i < n; i++) {
            x[i] = m[r].eval[i].epoch;
            loss[i] = m[r].eval[i].test_loss;
            acc[i] = 100 * m[r].eval[i].test_acc;
        }
        s[r] = (lc_series){.x = x, .y = loss, .n = n, .label = labels[r], .points = n < 30};
        s[runs + r] = (lc_series){.x = x, .y = acc, .n = n, .label = labels[r], .points = n < 30};
        lc_plot_run_colour(r, s[r].rgb);
        lc_plot_run_colour(r, s[runs + r].rgb);
    }
    char path[1100], t[300];
    snprintf(t, sizeof t, "%s: test loss", title);
    lc_figure f = {.title = t, .xlabel = "Epoch", .ylabel = "Cross-entropy loss", .legend = true};
    snprintf(path, sizeof path, "%s-loss", prefix);
    lc_status st = lc_plot(path, &f, s, runs);
    if (st == LC_OK) {
        snprintf(t, sizeof t, "%s: test accuracy", title);
        lc_figure g = {.title = t, .xlabel = "Epoch", .ylabel = "Accuracy (%)", .legend = true};
        snprintf(path, sizeof path, "%s-accuracy", prefix);
        st = lc_plot(path, &g, s + runs, runs);
    }
    free(buf);
    free(s);
    return st;
}

/* A run's label: its file name without .jsonl, or its folder's name when
 * that is "metrics" (runs/demo/metrics.jsonl: demo). */
static void run_label(const char *path, char *out, size_t cap)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    char *dot = strrchr(tmp, '.');
    if (dot && !strcmp(dot, ".jsonl")) *dot = 0;
    char *slash = strrchr(tmp, '/');
    const char *base = slash ? slash + 1 : tmp;
    if (!strcmp(base, "metrics") && slash) {
        *slash = 0;
        char *up = strrchr(tmp, '/');
        base = up ? up + 1 : tmp;
    }
    snprintf(out, cap, "%.*s", (int)(cap > 0 ? cap - 1 : 0), base);
}

#define PLOT_MAX_RUNS 10

static int cmd_plot(int argc, char **argv)
{
    const char *paths[PLOT_MAX_RUNS], *prefix = NULL, *title = NULL;
    int runs = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(plot_help, stdout); return 0; }
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--title")) {
            if (i + 1 >= argc) return usage_error("%s needs a value", argv[i]);
            if (argv[i][1] == 'o') prefix = argv[++i];
            else title = argv[++i];
        } else if (argv[i][0] == '-') return usage_error("unknown option '%s' for plot", argv[i]);
        else if (runs == PLOT_MAX_RUNS) return usage_error("more than 10 metrics files ('%s')", argv[i]);
        else paths[runs++] = argv[i];
    }
    if (!runs) return usage_error("%s", "plot needs a metrics file: layca plot METRICS.jsonl [-o PREFIX]");
    if (runs > 1 && !prefix)
        return usage_error("%s", "plot of several runs needs -o PREFIX (the figures' path without extension)");
    const char *path = paths[0];
    char pre[1024];
    if (!prefix) {
        snprintf(pre, sizeof pre, "%s", path);
        char *dot = strrchr(pre, '.');
        if (dot && !strcmp(dot, ".jsonl")) *dot = 0;
        prefix = pre;
    }
    if (!title) {
        const char *b = strrchr(path, '/');
        title = runs > 1 ? "runs" : b ? b + 1 : path;
    }
    lc_metrics m[PLOT_MAX_RUNS];
    char labels[PLOT_MAX_RUNS][128];
    const char *lp[PLOT_MAX_RUNS];
    int loaded = 0, rot = 0, ev = 0;
    lc_status st = LC_OK;
    for (; loaded < runs && st == LC_OK; loaded++) {
        st = lc_metrics_load(paths[loaded], &m[loaded]);
        if (st != LC_OK) break;
        run_label(paths[loaded], labels[loaded], sizeof labels[loaded]);
        lp[loaded] = labels[loaded];
        rot += m[loaded].n_rot > 0;
        ev += m[loaded].n_eval > 0;
    }
    char out[1100];
    if (st == LC_OK && rot) {
        snprintf(out, sizeof out, "%s-rotation", prefix);
        st = runs > 1 ? lc_plot_rotation_runs(m, lp, runs, out, title) : lc_plot_rotation(&m[0], out, title);
        if (st == LC_OK) printf("%s.png\n%s.svg\n", out, out);
    }
    if (st == LC_OK && ev) {
        st = runs > 1 ? plot_training_runs(m, lp, runs, prefix, title) : plot_training(&m[0], prefix, title);
        if (st == LC_OK) printf("%s-loss.png\n%s-loss.svg\n%s-accuracy.png\n%s-accuracy.svg\n", prefix, prefix, prefix, prefix);
    }
    for (int r = 0; r < loaded; r++) lc_metrics_deinit(&m[r]);
    return st == LC_OK ? 0 : fail();
}

static int run_command(int argc, char **argv);

/* Under mpirun every process joins the MPI world first; ranks other than 0
 * log warnings and errors only. */
static int start_dist(int *argc, char ***argv)
{
    int size = cli_env_load()->mpi_size;
    if (size == 0) return 0;
    if (!lc_dist_available()) {
        if (size == 1) return 0;
        fprintf(stderr, "layca: started by mpirun with %d processes, but this layca was built without MPI "
                "(install libopenmpi-dev and rebuild)\n", size);
        return 1;
    }
    if (lc_dist_create(&dist, argc, argv) != LC_OK) return fail();
    if (lc_dist_rank(dist) != 0 && lc_log_get_level() == LC_LOG_INFO) lc_log_set_level(LC_LOG_WARN);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) { fputs(usage_text, stderr); return EXIT_USAGE; }
    cli_env_load(); /* the log level and the cache folder, for every command */
    int rc = start_dist(&argc, &argv);
    if (rc) return rc;
    rc = run_command(argc, argv);
    lc_dist_destroy(dist);
    return rc;
}

static int run_command(int argc, char **argv)
{
    const char *c = argv[1];
    if (!strcmp(c, "help") || !strcmp(c, "--help") || !strcmp(c, "-h")) { fputs(usage_text, stdout); return 0; }
    if (!strcmp(c, "--version") || !strcmp(c, "version")) { printf("layca %s\n", LAYCA_VERSION); return 0; }
    if (!strcmp(c, "devices")) return cmd_devices(argc, argv);
    if (!strcmp(c, "train")) return cmd_train(argc, argv);
    if (!strcmp(c, "eval")) return cmd_eval(argc, argv);
    if (!strcmp(c, "inspect")) return cmd_inspect(argc, argv);
    if (!strcmp(c, "plot")) return cmd_plot(argc, argv);
    if (!strcmp(c, "study")) return lc_study_main(argc - 1, argv + 1, dist);
    if (!strcmp(c, "tune")) return lc_tune_main(argc - 1, argv + 1);
    if (!strcmp(c, "import")) return lc_onnx_import_main(argc - 1, argv + 1);
    if (!strcmp(c, "export")) return lc_onnx_export_main(argc - 1, argv + 1);
    return usage_error("unknown command '%s'", c);
}

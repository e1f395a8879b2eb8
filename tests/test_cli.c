/* The layca command line: exit codes (0 ok, 2 usage, 1 other errors) and
 * one-line error messages for broken model and data files. */
#include "lc_test.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lc_core.h"
#include "lc_test_idx.h"

static char layca[1024], src[1024], tmp[1024];

static void setup(void)
{
    if (layca[0]) return;
    const char *b = getenv("LAYCA_BUILD_ROOT"), *s = getenv("LAYCA_SOURCE_ROOT");
    snprintf(layca, sizeof layca, "%s/tools/layca", b ? b : "..");
    snprintf(src, sizeof src, "%s", s ? s : "..");
    snprintf(tmp, sizeof tmp, "%s/cli", lc_test_tmpdir());
    lc_mkdirs(tmp);
    char cache[1100];
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    setenv("LAYCA_CACHE_DIR", cache, 1);
}

/* Runs `PREFIX layca ARGS` in sh (PREFIX: variables or a command before,
 * may be ""), returns the exit code; out receives stdout+stderr. */
static int run_with(const char *prefix, const char *args, char *out, size_t len)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s %s 2>&1", prefix, layca, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = 0;
    int st = pclose(p);
    ck_assert_msg(WIFEXITED(st), "'%s' did not exit normally (crash?)", args);
    return WEXITSTATUS(st);
}

static int run(const char *args, char *out, size_t len) { return run_with("", args, out, len); }

/* Last line of the output (the error line) */
static const char *last_line(char *out)
{
    size_t n = strlen(out);
    while (n && out[n - 1] == '\n') out[--n] = 0;
    char *nl = strrchr(out, '\n');
    return nl ? nl + 1 : out;
}

static void expect_error(const char *args, int code, const char *substr)
{
    char out[16384];
    int rc = run(args, out, sizeof out);
    const char *line = last_line(out);
    ck_assert_msg(rc == code, "'%.300s': exit %d, expected %d; last line: %.300s", args, rc, code, line);
    ck_assert_msg(strstr(line, substr), "'%.300s': error line '%.300s' does not contain '%s'", args, line, substr);
    ck_assert_msg(!strncmp(line, "layca", 5), "'%.300s': error line '%.300s' should start with 'layca'", args, line);
}

START_TEST(usage_errors)
{
    setup();
    char out[8192];
    ck_assert_int_eq(run("", out, sizeof out), 2);
    ck_assert_int_eq(run("help", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage"));
    expect_error("frobnicate", 2, "unknown command 'frobnicate'");
    expect_error("train", 2, "needs a model file");
    expect_error("train models/mlp3.json", 2, "needs --data");
    expect_error("train m.json --data mnist:x --lr abc", 2, "--lr 'abc'");
    expect_error("train m.json --data mnist:x --epochs 0", 2, "--epochs '0'");
    expect_error("train m.json --data mnist:x --batch", 2, "--batch needs a value");
    expect_error("train m.json --data mnist:x --bogus 1", 2, "unknown option '--bogus'");
    expect_error("train m.json --data mnist:x --epochs 2 --steps 3", 2, "not both");
    expect_error("train m.json --data mnist:x --schedule 5,3:0.2", 2, "increasing");
    expect_error("train m.json --data mnist:x --alpha 1.5", 2, "--alpha");
    expect_error("train m.json --data mnist:x --log-every -3", 2, "--log-every '-3'");
    expect_error("inspect", 2, "needs a model file");
}
END_TEST

START_TEST(devices_lists_something)
{
    setup();
    char out[8192];
    int rc = run("devices", out, sizeof out);
    const char *req = getenv("LAYCA_REQUIRE_DEVICE");
    if (rc != 0 && !(req && *req && *req != '0')) return; /* no device here: covered by the device suites */
    ck_assert_msg(rc == 0, "layca devices: exit %d (LAYCA_REQUIRE_DEVICE is set):\n%s", rc, out);
    ck_assert_ptr_nonnull(strstr(out, "index"));
    ck_assert_ptr_nonnull(strstr(out, "0:0"));
}
END_TEST

/* Each broken model file of tests/data/models/bad gives exit 1 and a
 * one-line message naming the problem. */
START_TEST(broken_models)
{
    setup();
    char list[1200];
    snprintf(list, sizeof list, "%s/tests/data/models/bad/EXPECTED.txt", src);
    FILE *f = fopen(list, "r");
    ck_assert_msg(f != NULL, "missing %s", list);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char *sp = strchr(line, ' ');
        ck_assert_ptr_nonnull(sp);
        *sp = 0;
        char args[4096];
        snprintf(args, sizeof args, "inspect %s/tests/data/models/bad/%s", src, line);
        expect_error(args, 1, sp + 1);
        n++;
    }
    fclose(f);
    ck_assert_int_ge(n, 15);
}
END_TEST

static void be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* Writes a 4-file idx folder; `flaw` breaks one thing. */
static void make_data(const char *d, const char *flaw)
{
    lc_mkdirs(d);
    char p[1400];
    const char *names[2][2] = {{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
                               {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}};
    for (int s = 0; s < 2; s++) {
        int n = s ? 10 : 20;
        snprintf(p, sizeof p, "%s/%s", d, names[s][0]);
        if (!(s == 1 && !strcmp(flaw, "missing"))) {
            FILE *f = fopen(p, "wb");
            be32(f, !strcmp(flaw, "magic") && s == 0 ? 0x801 : 0x803);
            be32(f, (uint32_t)n); be32(f, 4); be32(f, 4);
            int bytes = n * 16 - (!strcmp(flaw, "truncated") && s == 0 ? 7 : 0);
            for (int i = 0; i < bytes; i++) fputc(i * 7 % 256, f);
            fclose(f);
        }
        snprintf(p, sizeof p, "%s/%s", d, names[s][1]);
        FILE *f = fopen(p, "wb");
        be32(f, 0x801);
        int nl = !strcmp(flaw, "count") && s == 0 ? n - 1 : n;
        be32(f, (uint32_t)nl);
        for (int i = 0; i < nl; i++) fputc(!strcmp(flaw, "label") && i == 3 && s == 0 ? 12 : i % 3, f);
        fclose(f);
    }
    if (!strcmp(flaw, "gzip")) {
        snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", d);
        FILE *f = fopen(p, "wb");
        unsigned char junk[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3};
        fwrite(junk, 1, sizeof junk, f);
        fclose(f);
        snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", d);
        remove(p);
    }
}

START_TEST(broken_data)
{
    setup();
    char model[1400];
    snprintf(model, sizeof model, "%s/m.json", tmp);
    FILE *f = fopen(model, "w");
    fputs("{\"format\": \"layca-model/1\", \"input\": {\"shape\": [16]}, \"classes\": 3,"
          " \"nodes\": [{\"name\": \"fc\", \"op\": \"dense\", \"units\": 3}]}", f);
    fclose(f);
    static const struct { const char *flaw, *expect; } cases[] = {
        {"magic", "magic"},
        {"truncated", "train-images-idx3-ubyte"},
        {"count", "19 labels"},
        {"label", "label"},
        {"missing", "t10k-images-idx3-ubyte"},
        {"gzip", "train-labels-idx1-ubyte.gz"},
    };
    for (size_t i = 0; i < LC_COUNTOF(cases); i++) {
        char d[1400], args[3000];
        snprintf(d, sizeof d, "%s/data_%s", tmp, cases[i].flaw);
        make_data(d, cases[i].flaw);
        snprintf(args, sizeof args, "train %s --data mnist:%s --steps 1", model, d);
        expect_error(args, 1, cases[i].expect);
    }
    /* and the unbroken folder trains */
    char d[1400], args[6000], out[16384];
    snprintf(d, sizeof d, "%s/data_ok", tmp);
    make_data(d, "none");
    snprintf(args, sizeof args, "train %s --data mnist:%s --steps 2 --batch 4", model, d);
    ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
    /* an unknown data kind */
    snprintf(args, sizeof args, "train %s --data cifar9:%s --steps 1", model, d);
    expect_error(args, 1, "cifar9");
    /* the examples are [1, 4, 4]: a channels-last [4, 4, 1] input has their
     * count in another layout (an error naming both, for train and eval);
     * [1, 4, 4], [4, 4] and the flat [16] train */
    static const struct { const char *shape; bool ok; } layouts[] = {
        {"[1, 4, 4]", true}, {"[4, 4]", true}, {"[4, 4, 1]", false}, {"[2, 8]", false}};
    char w[1400];
    snprintf(w, sizeof w, "%s/layout.safetensors", tmp);
    for (size_t i = 0; i < LC_COUNTOF(layouts); i++) {
        char m2[1400];
        snprintf(m2, sizeof m2, "%s/layout%zu.json", tmp, i);
        f = fopen(m2, "w");
        fprintf(f, "{\"format\": \"layca-model/1\", \"input\": {\"shape\": %s}, \"classes\": 3, \"nodes\": ["
                   "{\"name\": \"f\", \"op\": \"flatten\"}, {\"name\": \"fc\", \"op\": \"dense\", \"units\": 3}]}",
                layouts[i].shape);
        fclose(f);
        snprintf(args, sizeof args, "train %s --data mnist:%s --steps 1 --batch 4 --save %s", m2, d, w);
        if (layouts[i].ok) {
            ck_assert_msg(run(args, out, sizeof out) == 0, "%s: %s", layouts[i].shape, out);
            continue;
        }
        char want[128];
        snprintf(want, sizeof want, "examples are [1, 4, 4] (channels, height, width), model 'model' takes %s",
                 layouts[i].shape);
        expect_error(args, 1, want);
        snprintf(args, sizeof args, "eval %s --init %s --data mnist:%s", m2, w, d);
        expect_error(args, 1, want);
    }
}
END_TEST

/* Outputs, non-finite losses, checkpoints and evaluation through the
 * command line: exit codes and one-line errors before any training. */
START_TEST(train_outputs_and_eval)
{
    setup();
    char model[1400], d[1400], args[6000], out[65536], w[1400], m[1400];
    snprintf(model, sizeof model, "%s/mo.json", tmp);
    FILE *f = fopen(model, "w");
    fputs("{\"format\": \"layca-model/1\", \"input\": {\"shape\": [16]}, \"classes\": 3,"
          " \"nodes\": [{\"name\": \"fc1\", \"op\": \"dense\", \"units\": 8}, {\"name\": \"r\", \"op\": \"relu\"},"
          " {\"name\": \"fc\", \"op\": \"dense\", \"units\": 3}]}", f);
    fclose(f);
    snprintf(d, sizeof d, "%s/data_out", tmp);
    make_data(d, "none");
    snprintf(w, sizeof w, "%s/out-w.safetensors", tmp);
    snprintf(m, sizeof m, "%s/out-m.jsonl", tmp);
    uint8_t *before;
    size_t nb;
    ck_assert_int_eq(lc_file_read(model, &before, &nb), LC_OK);
    snprintf(args, sizeof args, "train %s --data mnist:%s --steps 2 --save %s", model, d, model);
    expect_error(args, 1, "would overwrite the model file");
    snprintf(args, sizeof args, "train %s --data mnist:%s --steps 2 --metrics %s/train-labels-idx1-ubyte", model, d, d);
    expect_error(args, 1, "data file");
    snprintf(args, sizeof args, "train %s --data mnist:%s --steps 2 --metrics %s --save %s", model, d, m, m);
    expect_error(args, 1, "name the same file");
    snprintf(args, sizeof args, "train %s --data mnist:%s --steps 2 --metrics /dev/full", model, d);
    expect_error(args, 1, "not a regular file");
    snprintf(args, sizeof args, "train %s --data mnist:%s --steps 2 --save %s/missing/w.safetensors", model, d, tmp);
    expect_error(args, 1, "does not exist");
    snprintf(args, sizeof args, "train %s --data mnist:%s --steps 2 --resume %s/no-such-checkpoint", model, d, tmp);
    expect_error(args, 1, "no such checkpoint");
    snprintf(args, sizeof args, "train %s --data mnist:%s --checkpoint-every 2x", model, d);
    expect_error(args, 2, "--checkpoint-every '2x'");
    snprintf(args, sizeof args, "train %s --data mnist:%s --on-nonfinite maybe", model, d);
    expect_error(args, 2, "--on-nonfinite 'maybe'");
    uint8_t *after;
    size_t na;
    ck_assert_int_eq(lc_file_read(model, &after, &na), LC_OK);
    ck_assert_msg(na == nb && !memcmp(before, after, nb), "the model file changed");
    free(before);
    free(after);
    /* a diverging run stops with exit 1; its metrics stay readable */
    snprintf(args, sizeof args, "train %s --data mnist:%s --epochs 3 --batch 4 --lr 1e30 --metrics %s", model, d, m);
    expect_error(args, 1, "not finite");
    snprintf(args, sizeof args, "plot %s -o %s/nan", m, tmp);
    ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
    snprintf(args, sizeof args, "train %s --data mnist:%s --epochs 3 --batch 4 --lr 1e30 --metrics %s --on-nonfinite continue",
             model, d, m);
    ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "not finite"));
    /* a finished run's weights evaluate to JSON with every field */
    snprintf(args, sizeof args, "train %s --data mnist:%s --epochs 2 --batch 4 --lr 0.1 --save %s", model, d, w);
    ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
    snprintf(args, sizeof args, "eval %s --init %s --data mnist:%s 2>/dev/null", model, w, d);
    ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
    static const char *const keys[] = {"\"examples\": 10", "\"loss\": ", "\"top1\": ", "\"top5\": 1.000000",
                                       "\"per_class\": [", "\"confusion\": [[", "\"normalisation_from_weights\": true"};
    for (size_t i = 0; i < LC_COUNTOF(keys); i++) ck_assert_msg(strstr(out, keys[i]), "'%s' not in %s", keys[i], out);
    snprintf(args, sizeof args, "eval %s --data mnist:%s", model, d);
    expect_error(args, 2, "needs --init");
    ck_assert_int_eq(run("eval --help", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "confusion"));
    ck_assert_int_eq(run("train --help", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "--resume"));
    /* --init-map reaches the loader, for train and eval */
    snprintf(args, sizeof args, "train %s --data mnist:%s --steps 1 --init %s --init-map fc", model, d, w);
    expect_error(args, 1, "--init-map: 'fc' is not FROM=TO");
    snprintf(args, sizeof args, "eval %s --init %s --init-map fc=other --data mnist:%s", model, w, d);
    expect_error(args, 1, "'fc.weight' is missing");
}
END_TEST

/* --version, --help of every command, and inspect's summary table */
START_TEST(help_version_inspect)
{
    setup();
    char out[65536], args[4096];
    ck_assert_int_eq(run("--version", out, sizeof out), 0);
    ck_assert_msg(!strcmp(out, "layca " LAYCA_VERSION "\n"), "%s", out);
    static const char *const cmds[] = {"devices", "train", "eval", "inspect", "plot", "study", "tune"};
    for (size_t i = 0; i < LC_COUNTOF(cmds); i++) {
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        ck_assert_msg(run(args, out, sizeof out) == 0, "%s: %s", args, out);
        char want[64];
        snprintf(want, sizeof want, "usage: layca %s", cmds[i]);
        ck_assert_msg(strstr(out, want), "%s: %.300s", args, out);
    }
    const char *src = getenv("LAYCA_SOURCE_ROOT");
    /* mlp3 at batch 2: fc1 has 784 x 784 weights and 2 * 2 * 784 * 784 FLOPs */
    snprintf(args, sizeof args, "inspect %s/models/mlp3.json --batch 2", src ? src : ".");
    ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
    static const char *const want[] = {"model 'mlp3': 7 nodes, 3 kernel layers, 1237152 trainable parameters",
                                       "614.7k", "2.46M", "memory plan at batch 2: activations", "FLOPs at batch 2"};
    for (size_t i = 0; i < LC_COUNTOF(want); i++) ck_assert_msg(strstr(out, want[i]), "'%s' not in %s", want[i], out);
    ck_assert_msg(!strstr(out, "== after"), "the summary shows the passes: %s", out);
    snprintf(args, sizeof args, "inspect %s/models/mlp3.json --passes", src ? src : ".");
    ck_assert_msg(run(args, out, sizeof out) == 0 && strstr(out, "== after memory planning"), "%s", out);
    snprintf(args, sizeof args, "inspect %s/models/mlp3.json --passes --json", src ? src : ".");
    expect_error(args, 2, "choose one");
}
END_TEST

START_TEST(inspect_json)
{
    setup();
    char args[1200], out[65536];
    snprintf(args, sizeof args, "inspect %s/models/mlp11.json --json", src);
    ck_assert_int_eq(run(args, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"kernel_layers\": [\"dense0.weight\""));
    ck_assert_ptr_nonnull(strstr(out, "\"parameters\": 6162250"));
    snprintf(args, sizeof args, "inspect %s/models/mlp3.json --passes", src);
    ck_assert_int_eq(run(args, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "after autodiff"));
    ck_assert_ptr_nonnull(strstr(out, "memory plan"));
}
END_TEST

/* The output is one JSON object: strings closed, brackets balanced. */
static bool json_shape_ok(const char *s)
{
    int depth = 0;
    bool in_str = false;
    for (; *s; s++) {
        if (in_str) {
            if ((unsigned char)*s < 0x20) return false;
            if (*s == '\\') {
                if (!*++s) return false;
            } else if (*s == '"') in_str = false;
        } else if (*s == '"') in_str = true;
        else if (*s == '{' || *s == '[') depth++;
        else if ((*s == '}' || *s == ']') && --depth < 0) return false;
    }
    return !in_str && depth == 0;
}

/* Names with '"' and '\' (the probe's quote_names.json) stay valid JSON. */
START_TEST(inspect_json_quotes)
{
    setup();
    char args[1200], out[65536];
    snprintf(args, sizeof args, "inspect %s/tests/data/probe/quote_names.json --json", src);
    ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(json_shape_ok(out), "not one JSON object: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "{\"name\": \"mlp3 \\\"quoted\\\" \\\\ name\", "));
    ck_assert_ptr_nonnull(strstr(out, "\"kernel_layers\": [\"fc\\\"1.weight\", \"fc2.weight\", \"fc3.weight\"]"));
}
END_TEST

/* A FIFO given as any input file is refused at once: the command would
 * otherwise wait forever for a writer. */
START_TEST(fifo_inputs)
{
    setup();
    char f[1200], args[4096];
    snprintf(f, sizeof f, "%s/input.fifo", tmp);
    unlink(f);
    ck_assert_int_eq(mkfifo(f, 0600), 0);
    snprintf(args, sizeof args, "inspect %s", f);
    expect_error(args, 1, "input.fifo: is a FIFO (named pipe); layca reads regular files only");
    snprintf(args, sizeof args, "plot %s", f);
    expect_error(args, 1, "input.fifo: is a FIFO");
    snprintf(args, sizeof args, "train %s/models/mlp3.json --data idx:%s,%s --per-class 1", src, f, f);
    expect_error(args, 1, "input.fifo: is a FIFO");
    unlink(f);
}
END_TEST

/* PREFIX-rotation, -loss and -accuracy exist as PNG and SVG files */
static void check_figures(const char *pre)
{
    static const char *names[] = {"-rotation", "-loss", "-accuracy"};
    for (size_t i = 0; i < LC_COUNTOF(names); i++) {
        char p[1400];
        uint8_t *d;
        size_t n;
        snprintf(p, sizeof p, "%s%s.png", pre, names[i]);
        ck_assert_msg(lc_file_read(p, &d, &n) == LC_OK, "%s missing", p);
        ck_assert_msg(n > 1000 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG", p);
        free(d);
        snprintf(p, sizeof p, "%s%s.svg", pre, names[i]);
        ck_assert_msg(lc_file_read(p, &d, &n) == LC_OK, "%s missing", p);
        d[n - 1] = 0;
        ck_assert_msg(strstr((char *)d, "<svg") && strstr((char *)d, "</svg>"), "%s is not an SVG", p);
        free(d);
    }
}

/* layca plot: valid PNG and SVG files from a metrics file (and from two, overlaid); a broken
 * metrics file gives a one-line error with the line number. */
START_TEST(plot_figures)
{
    setup();
    char m[1200], args[6000], out[16384];
    snprintf(m, sizeof m, "%s/run.jsonl", tmp);
    FILE *f = fopen(m, "w");
    for (int e = 0; e < 4; e++) {
        fprintf(f, "{\"kind\": \"rotation\", \"epoch\": %d.01, \"step\": %d, \"rotation\": {\"a\": %g, \"b\": %g, \"c\": %g}, "
                   "\"norm\": {\"a\": 1, \"b\": 2, \"c\": 3}}\n", e, e * 10 + 1, 0.1 * e, 0.2 * e, 0.25 * e);
        fprintf(f, "{\"kind\": \"eval\", \"epoch\": %d, \"step\": %d, \"lr\": 0.1, \"train_loss\": %g, \"train_acc\": %g, "
                   "\"test_loss\": %g, \"test_acc\": %g}\n", e + 1, e * 10 + 10, 2.0 / (e + 1), 0.5 + 0.1 * e, 2.2 / (e + 1), 0.45 + 0.1 * e);
    }
    fclose(f);
    char pre[1300];
    snprintf(pre, sizeof pre, "%s/fig", tmp);
    snprintf(args, sizeof args, "plot %s -o %s", m, pre);
    ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
    check_figures(pre);
    /* two runs overlaid (-o required); the labels are the files' names */
    char m2[1300];
    snprintf(m2, sizeof m2, "%s/other.jsonl", tmp);
    {
        uint8_t *d;
        size_t n;
        ck_assert_int_eq(lc_file_read(m, &d, &n), LC_OK);
        ck_assert_int_eq(lc_file_write_atomic(m2, d, n), LC_OK);
        free(d);
    }
    snprintf(args, sizeof args, "plot %s %s -o %s/both", m, m2, tmp);
    ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
    char both[1300];
    snprintf(both, sizeof both, "%s/both", tmp);
    check_figures(both);
    snprintf(args, sizeof args, "plot %s %s", m, m2);
    expect_error(args, 2, "needs -o PREFIX");
    snprintf(args, sizeof args, "plot %s -o %s", m, pre);
    f = fopen(m, "a");
    fputs("{\"kind\": \"rotation\", \"epoch\": 5, \"rotation\": {\"a\": 1}}\n", f);
    fclose(f);
    expect_error(args, 1, "run.jsonl:9");
    snprintf(args, sizeof args, "plot %s/nothing.jsonl", tmp);
    expect_error(args, 1, "nothing.jsonl");
}
END_TEST

/* inspect --json of the paper's networks: kernel layers (L) and trainable
 * parameter counts computed here from the architectures */
static int count_items(const char *json, const char *key)
{
    const char *p = strstr(json, key);
    if (!p) return -1;
    p = strchr(p, '[');
    int n = 0;
    for (; *p && *p != ']'; p++) n += *p == '"';
    return n / 2;
}

START_TEST(inspect_paper_networks)
{
    setup();
    /* conv kxk: k*k*cin*cout; dense: in*out; no biases, no BN affine */
    long long vgg = 0, cin = 3;
    for (int s = 0; s < 4; s++)
        for (int c = 0; c < 6; c++) { long long f = 32 << s; vgg += 9 * cin * f; cin = f; }
    vgg += 256 * 10;
    long long res = 9 * 3 * 16;
    int ch[3] = {16, 32, 64};
    cin = 16;
    for (int s = 0; s < 3; s++)
        for (int b = 0; b < 5; b++) {
            res += 9 * cin * ch[s] + 9 * ch[s] * ch[s];
            if (s > 0 && b == 0) res += cin * ch[s]; /* 1x1 shortcut */
            cin = ch[s];
        }
    res += 64 * 100;
    long long tiny = 0;
    cin = 3;
    for (int s = 0; s < 5; s++)
        for (int c = 0; c < 2; c++) { long long f = 32 << s; tiny += 9 * cin * f; cin = f; }
    tiny += 512 * 200;
    long long wil = 0;
    int reps[5] = {2, 2, 3, 3, 3}, fil[5] = {64, 128, 256, 512, 512};
    cin = 3;
    for (int s = 0; s < 5; s++)
        for (int c = 0; c < reps[s]; c++) { wil += 9 * cin * fil[s]; cin = fil[s]; }
    wil += 512 * 512 + 512 * 10;
    static const char *names[] = {"cifar10_vgg", "resnet32_cifar100", "tiny_imagenet_cnn", "wilson_vgg"};
    int L[] = {25, 34, 11, 15};
    long long P[] = {vgg, res, tiny, wil};
    for (int i = 0; i < 4; i++) {
        char args[1400], out[65536], want[64];
        snprintf(args, sizeof args, "inspect %s/models/%s.json --json", src, names[i]);
        ck_assert_int_eq(run(args, out, sizeof out), 0);
        ck_assert_msg(count_items(out, "\"kernel_layers\"") == L[i], "%s: %d kernel layers, want %d", names[i],
                      count_items(out, "\"kernel_layers\""), L[i]);
        snprintf(want, sizeof want, "\"parameters\": %lld", P[i]);
        ck_assert_msg(strstr(out, want), "%s: want %s in %.300s", names[i], want, out);
    }
}
END_TEST

/* layca-bench --json: one object per line with the documented keys, and
 * every kind of figure (times are not checked). */
START_TEST(bench_json_shape)
{
    setup();
    char model[1200], cmd[4096], line[4096];
    snprintf(model, sizeof model, "%s/bench.json", tmp);
    FILE *f = fopen(model, "w");
    fputs("{\"format\": \"layca-model/1\", \"name\": \"b\", \"input\": {\"shape\": [1, 8, 8]}, \"classes\": 3,"
          " \"nodes\": [{\"name\": \"c\", \"op\": \"conv2d\", \"filters\": 4, \"kernel\": 3}, {\"name\": \"r\", \"op\": \"relu\"},"
          " {\"name\": \"f\", \"op\": \"flatten\"}, {\"name\": \"d\", \"op\": \"dense\", \"units\": 3}]}", f);
    fclose(f);
    const char *b = getenv("LAYCA_BUILD_ROOT");
    snprintf(cmd, sizeof cmd, "%s/tools/layca-bench --json --batch 4 --steps 2 --model %s 2>/dev/null", b ? b : "..", model);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    static const char *whats[] = {"copy", "launch_latency", "gemm", "train_step", "memory", "optimizer_step", "startup"};
    int seen[7] = {0}, lines = 0;
    while (fgets(line, sizeof line, p)) {
        lines++;
        ck_assert_msg(line[0] == '{' && strstr(line, "}\n"), "not one JSON object per line: %s", line);
        ck_assert_msg(strstr(line, "\"device\": \"") && strstr(line, "\"what\": \""), "missing device/what: %s", line);
        for (int i = 0; i < 7; i++) {
            char w[64];
            snprintf(w, sizeof w, "\"what\": \"%s\"", whats[i]);
            if (strstr(line, w)) seen[i]++;
        }
        if (strstr(line, "\"what\": \"train_step\""))
            ck_assert_msg(strstr(line, "\"model\": \"") && strstr(line, "\"batch\": 4") && strstr(line, "\"ms\": ") &&
                              strstr(line, "\"images_per_s\": "), "train_step keys: %s", line);
        if (strstr(line, "\"what\": \"gemm\"")) ck_assert_msg(strstr(line, "\"gflops\": "), "gemm keys: %s", line);
        if (strstr(line, "\"what\": \"copy\"")) ck_assert_msg(strstr(line, "\"gbps\": "), "copy keys: %s", line);
        if (strstr(line, "\"what\": \"optimizer_step\""))
            ck_assert_msg(strstr(line, "\"variant\": ") && strstr(line, "\"share_of_copy\": "), "optimizer keys: %s", line);
    }
    int rc = pclose(p);
    ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "layca-bench failed");
    for (int i = 0; i < 7; i++) ck_assert_msg(seen[i] > 0, "no '%s' line in %d lines", whats[i], lines);
    ck_assert_int_eq(seen[5], 3); /* sgd, layca-fused, layca-unfused */
    ck_assert_int_eq(seen[6], 2); /* cold and warm */
}
END_TEST

/* A model larger than the device (the probe's dense512k: one dense layer of
 * 512k units, 6.25 GiB with an SGD optimizer's arenas) is refused before
 * training with one error line naming the planned bytes and both limits,
 * instead of an abort inside the OpenCL driver: on PoCL told it has 2 GiB
 * (POCL_MEMORY_LIMIT, read by PoCL), and on PoCL's full memory under an
 * 8 GiB address-space limit (the device's buffers live in the process). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LC_TEST_HAS_ASAN 1
#endif
#endif
#ifndef LC_TEST_HAS_ASAN
#define LC_TEST_HAS_ASAN 0
#endif

START_TEST(model_larger_than_device)
{
    setup();
    char out[16384], dev[32] = "";
    if (run("devices", out, sizeof out) == 0) {
        for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n"))
            if (strstr(l, "Portable Computing Language") && sscanf(l, "%31s", dev) == 1) break;
    }
    if (!dev[0] || !strchr(dev, ':')) {
        fprintf(stderr, "# no PoCL device: the memory refusal through the CLI is not checked here\n");
        return;
    }
    char model[1400], d[1400], args[4096];
    snprintf(model, sizeof model, "%s/dense512k.json", tmp);
    FILE *f = fopen(model, "w");
    fputs("{\"format\": \"layca-model/1\", \"name\": \"dense512k\", \"input\": {\"shape\": [784]}, \"classes\": 10,"
          " \"nodes\": [{\"name\": \"d1\", \"op\": \"dense\", \"units\": 262144}, {\"name\": \"r\", \"op\": \"relu\"},"
          " {\"name\": \"o\", \"op\": \"dense\", \"units\": 10}]}", f);
    fclose(f);
    snprintf(d, sizeof d, "%s/mnist28", tmp);
    ck_assert_int_eq(lc_mkdirs(d), LC_OK);
    lc_test_write_idx_sized(d, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 20, 1, 28, 10);
    lc_test_write_idx_sized(d, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10, 2, 28, 10);
    snprintf(args, sizeof args, "train %s --data mnist:%s --steps 1 --batch 8 --device %s", model, d, dev);
    /* parameters (no biases): 784 x 262144 + 262144 x 10 floats; with
     * gradients and Adam's two state arenas about 3.3 GB, below what PoCL
     * reports here (5 GiB and more) and above both limits below */
    char params[64];
    snprintf(params, sizeof params, "parameters %llu", (unsigned long long)(784ull * 262144 + 262144ull * 10) * 4);
    static const struct { const char *prefix, *limit; } runs[] = {
        {"POCL_MEMORY_LIMIT=2", "2147483648 bytes (2.00 GiB) of global memory"},
        {"ulimit -v 3145728 &&", "RLIMIT_AS"},
    };
    for (size_t i = 0; i < LC_COUNTOF(runs); i++) {
#if defined(__SANITIZE_ADDRESS__) || LC_TEST_HAS_ASAN
        /* AddressSanitizer reserves terabytes of address space for its
         * shadow memory, so an address-space limit stops it before layca runs */
        if (strstr(runs[i].prefix, "ulimit -v")) {
            fprintf(stderr, "# sanitizer build: the RLIMIT_AS refusal is checked in the plain builds only\n");
            continue;
        }
#endif
        int rc = run_with(runs[i].prefix, args, out, sizeof out);
        const char *line = last_line(out);
        ck_assert_msg(rc == 1, "%s: exit %d: %.600s", runs[i].prefix, rc, line);
        ck_assert_msg(!strncmp(line, "layca: error: model 'dense512k'", 31), "%s: %.600s", runs[i].prefix, line);
        ck_assert_msg(strstr(line, "needs ") && strstr(line, params) && strstr(line, "largest allocation of") &&
                          strstr(line, runs[i].limit),
                      "%s: %.800s", runs[i].prefix, line);
        ck_assert_msg(!strstr(out, "epoch 1"), "%s: it trained: %.600s", runs[i].prefix, out);
    }
}
END_TEST

/* --device-only is accepted by train and study and reaches the runtime. */
START_TEST(device_only_flag)
{
    setup();
    char d[1400], model[1400], args[4096], out[16384];
    snprintf(d, sizeof d, "%s/data_device_only", tmp);
    make_data(d, "none");
    snprintf(model, sizeof model, "%s/m2.json", tmp);
    FILE *f = fopen(model, "w");
    fputs("{\"format\": \"layca-model/1\", \"input\": {\"shape\": [16]}, \"classes\": 3,"
          " \"nodes\": [{\"name\": \"fc\", \"op\": \"dense\", \"units\": 3}]}", f);
    fclose(f);
    snprintf(args, sizeof args, "train %s --data mnist:%s --steps 2 --batch 4 --device-only", model, d);
    int rc = run_with("LAYCA_LOG=debug", args, out, sizeof out);
    if (strstr(out, "no OpenCL device")) return; /* no device here: the device suites say so */
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, ", device-only; program cache"), "the runtime was not told: %.2000s", out);
    ck_assert_ptr_nonnull(strstr(run("train --help", out, sizeof out) == 0 ? out : "", "--device-only"));
    ck_assert_ptr_nonnull(strstr(run("study mnist-toy --help", out, sizeof out) == 0 ? out : "", "--device-only"));
}
END_TEST

/* The small conv+dense model of the bench tests. */
static void tiny_model(char *path, size_t cap)
{
    snprintf(path, cap, "%s/bench.json", tmp);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"format\": \"layca-model/1\", \"name\": \"b\", \"input\": {\"shape\": [1, 8, 8]}, \"classes\": 3,"
          " \"nodes\": [{\"name\": \"c\", \"op\": \"conv2d\", \"filters\": 4, \"kernel\": 3}, {\"name\": \"r\", \"op\": \"relu\"},"
          " {\"name\": \"f\", \"op\": \"flatten\"}, {\"name\": \"d\", \"op\": \"dense\", \"units\": 3}]}", f);
    fclose(f);
}

/* Runs a shell command line, returns its exit code; out gets stdout (and
 * stderr when err_too). */
static int shell(const char *cmd, char *out, size_t len)
{
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = 0;
    int st = pclose(p);
    ck_assert_msg(WIFEXITED(st), "'%s' did not exit normally", cmd);
    return WEXITSTATUS(st);
}

static char *slurp(const char *path)
{
    uint8_t *d = NULL;
    size_t n = 0;
    ck_assert_msg(lc_file_read(path, &d, &n) == LC_OK, "%s: %s", path, lc_error_message());
    char *s = realloc(d, n + 1);
    ck_assert_ptr_nonnull(s);
    s[n] = 0;
    return s;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* layca-bench --compare --report: one table with a column per device (its
 * platform, driver and version), the report's files, its JSON with every
 * device that `layca devices` lists and a median within [min, max] per
 * device and row; with Mesa's rusticl installed, PoCL and rusticl side by
 * side. */
START_TEST(bench_compare_report)
{
    setup();
    char model[1200], cmd[4096], dir[1200], path[1400];
    static char out[1 << 16];
    tiny_model(model, sizeof model);
    const char *b = getenv("LAYCA_BUILD_ROOT");
    /* rusticl joins when it is there.  In the sanitizer build the leak
     * check is off for processes that load rusticl: LeakSanitizer's
     * stop-the-world at exit sometimes faults among llvmpipe's worker
     * threads (about 1 run in 5), whatever layca does */
#if defined(__SANITIZE_ADDRESS__) || LC_TEST_HAS_ASAN
    static char rusticl_env[1024];
    const char *ao = getenv("ASAN_OPTIONS");
    snprintf(rusticl_env, sizeof rusticl_env, "RUSTICL_ENABLE=llvmpipe ASAN_OPTIONS='%s%sdetect_leaks=0'", ao ? ao : "",
             ao && *ao ? ":" : "");
#else
    static const char rusticl_env[] = "RUSTICL_ENABLE=llvmpipe";
#endif
    snprintf(cmd, sizeof cmd, "%s %s devices 2>/dev/null", rusticl_env, layca);
    bool rusticl = shell(cmd, out, sizeof out) == 0 && strstr(out, "rusticl") != NULL;
    const char *env = rusticl ? rusticl_env : "";
    snprintf(cmd, sizeof cmd, "%s %s devices 2>/dev/null", env, layca);
    if (shell(cmd, out, sizeof out) != 0) return; /* no device: covered by the device suites */
    int n_dev = 0;
    char ids[16][16];
    for (char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        int p, d;
        if (sscanf(l, "%d:%d", &p, &d) == 2 && n_dev < 16) snprintf(ids[n_dev++], sizeof ids[0], "%d:%d", p, d);
    }
    ck_assert_int_ge(n_dev, 1);
    snprintf(dir, sizeof dir, "%s/report", tmp);
    snprintf(cmd, sizeof cmd,
             "%s %s/tools/layca-bench --compare --quick --repeats 2 --steps 1 --batch 4 --gemm 16x16x16 --copy-mib 1 "
             "--model %s --report %s 2>/dev/null",
             env, b ? b : "..", model, dir);
    ck_assert_msg(shell(cmd, out, sizeof out) == 0, "%s failed:\n%s", cmd, out);
    ck_assert_msg(strstr(out, "| measurement | unit |") && strstr(out, "| copy bandwidth | GB/s"), "%s", out);
    static const char *files[] = {"bench.md", "bench.json", "bench.png", "bench.svg"};
    for (size_t i = 0; i < LC_COUNTOF(files); i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        ck_assert_msg(stat(path, &st) == 0 && st.st_size > 100, "%s missing or empty", path);
    }
    snprintf(path, sizeof path, "%s/bench.json", dir);
    char *text = slurp(path);
    cJSON *root = cJSON_Parse(text);
    ck_assert_msg(root != NULL, "bench.json does not parse near: %.80s", cJSON_GetErrorPtr());
    ck_assert_str_eq(jstr(root, "format"), "layca-bench-report/1");
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(root, "devices");
    ck_assert_int_eq(cJSON_GetArraySize(devs), n_dev);
    bool saw_pocl = false, saw_rusticl = false;
    for (int i = 0; i < n_dev; i++) {
        const cJSON *d = cJSON_GetArrayItem(devs, i);
        ck_assert_str_eq(jstr(d, "id"), ids[i]);
        const char *plat = jstr(d, "platform"), *drv = jstr(d, "driver_version"), *ver = jstr(d, "platform_version");
        ck_assert_msg(plat && *plat && drv && *drv && ver && *ver, "device %s lacks platform, driver or version", ids[i]);
        ck_assert_msg(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(d, "error")), "device %s failed: %s", ids[i],
                      jstr(d, "error"));
        saw_pocl |= strstr(plat, "Portable Computing Language") != NULL;
        saw_rusticl |= !strcmp(plat, "rusticl");
        /* the table's header names the driver of each device */
        char want[300];
        snprintf(want, sizeof want, "driver %s)", drv);
        ck_assert_msg(strstr(out, want), "table header lacks '%s'", want);
    }
    if (rusticl) ck_assert_msg(saw_pocl && saw_rusticl, "PoCL and rusticl not both in the report");
    /* every row with a figure per device, median within its range */
    const cJSON *table = cJSON_GetObjectItemCaseSensitive(root, "table"), *row;
    int rows = 0, host_rows = 0;
    cJSON_ArrayForEach(row, table) {
        const char *sec = jstr(row, "section"), *what = jstr(row, "measurement");
        ck_assert_ptr_nonnull(what);
        const cJSON *cells = cJSON_GetObjectItemCaseSensitive(row, "cells");
        if (!strcmp(sec, "host")) {
            host_rows++;
            ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(cells, "host"));
            continue;
        }
        rows++;
        bool per_device = !strncmp(what, "copy bandwidth", 14) || !strncmp(what, "training step", 13) ||
                          !strncmp(what, "optimizer step", 14) || !strncmp(what, "SGEMM", 5);
        for (int i = 0; i < n_dev && per_device; i++) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(cells, ids[i]);
            ck_assert_msg(c != NULL, "row '%s' has no cell for %s", what, ids[i]);
            double med = cJSON_GetObjectItemCaseSensitive(c, "median")->valuedouble;
            double lo = cJSON_GetObjectItemCaseSensitive(c, "min")->valuedouble;
            double hi = cJSON_GetObjectItemCaseSensitive(c, "max")->valuedouble;
            ck_assert_msg(med > 0 && lo <= med && med <= hi, "row '%s' %s: %g (%g-%g)", what, ids[i], med, lo, hi);
            ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(c, "n")->valueint, 2);
        }
    }
    ck_assert_int_ge(rows, 8);
    cJSON_Delete(root);
    free(text);
    snprintf(path, sizeof path, "%s/bench.md", dir);
    text = slurp(path);
    ck_assert_msg(strstr(text, "## Side by side") && strstr(text, "| copy bandwidth |"), "%.300s", text);
    free(text);
}
END_TEST

/* `layca tune` with stand-in tuners that write one phase's result and then
 * linger: the parameters land in the cache folder's file for the device,
 * the tuners got the shape and options, were stopped after their first
 * phase, and the next run on the device says it is tuned. */
START_TEST(tune_with_fake_tuners)
{
    setup();
    char model[1200], fake[1200], work[1200], path[1400], cmd[4096];
    static char out[1 << 16];
    tiny_model(model, sizeof model);
    expect_error("tune", 2, "needs a model file");
    snprintf(cmd, sizeof cmd, "tune %s --fraction 0", model);
    expect_error(cmd, 2, "--fraction '0'");
    snprintf(cmd, sizeof cmd, "tune %s --bogus", model);
    expect_error(cmd, 2, "unknown option '--bogus'");
    snprintf(cmd, sizeof cmd, "tune %s --tuner-dir /nonexistent-layca-dir", model);
    expect_error(cmd, 1, "install clblast-utils");
    if (run("devices", out, sizeof out) != 0) return; /* no device */

    snprintf(fake, sizeof fake, "%s/fake-tuners", tmp);
    snprintf(work, sizeof work, "%s/tune-work", tmp);
    lc_mkdirs(fake);
    static const char *names[2] = {"clblast_tuner_xgemm", "clblast_tuner_xgemm_direct"};
    static const char *json[2] = {"clblast_xgemm_1_32.json", "clblast_xgemm_direct_1_32.json"};
    static const char *params[2] = {
        "GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8 MDIMC=8 MWG=32 NDIMB=8 NDIMC=8 NWG=32 PRECISION=32 SA=0 SB=0 STRM=0 "
        "STRN=0 VWM=1 VWN=1",
        "KWID=2 MDIMAD=8 MDIMCD=8 NDIMBD=8 NDIMCD=8 PADA=1 PADB=1 PRECISION=32 VWMD=1 VWND=1 WGD=8"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", fake, names[i]);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "#!/bin/sh\necho \"$@\" > args-%s.txt\n"
                   "printf '{\\n  \"best_time\": \"1.5\",\\n  \"best_parameters\": \"%s\",\\n  \"results\": []\\n}\\n' > %s\n"
                   "sleep 20\ntouch finished-%s.txt\n",
                names[i], params[i], json[i], names[i]);
        fclose(f);
        ck_assert_int_eq(chmod(path, 0755), 0);
    }
    snprintf(cmd, sizeof cmd, "tune %s --tuner-dir %s --work %s --batch 8 --repeats 1", model, fake, work);
    int rc = run(cmd, out, sizeof out);
    ck_assert_msg(rc == 0, "layca %s: exit %d\n%s", cmd, rc, out);
    ck_assert_msg(strstr(out, "| all GEMMs of a step |") && strstr(out, "parameters written to "), "%s", out);
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/finished-%s.txt", work, names[i]);
        ck_assert_msg(access(path, F_OK) != 0, "%s was not stopped after its first phase", names[i]);
        snprintf(path, sizeof path, "%s/args-%s.txt", work, names[i]);
        char *args = slurp(path);
        ck_assert_msg(strstr(args, "-platform ") && strstr(args, "-precision 32") && strstr(args, "-m "), "%s", args);
        if (i == 0) ck_assert_msg(strstr(args, "-fraction 4"), "%s", args);
        free(args);
    }
    /* the file in the cache folder */
    const char *cache = getenv("LAYCA_CACHE_DIR");
    DIR *d = opendir(cache);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    path[0] = 0;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "clblast-tuning-", 15)) snprintf(path, sizeof path, "%s/%s", cache, e->d_name);
    closedir(d);
    ck_assert_msg(path[0], "no clblast-tuning file in %s", cache);
    char *text = slurp(path);
    /* each tuner's result was read; its set is kept only where it made the
     * step faster (timed in the run), and the threshold is always there */
    ck_assert_msg(strstr(text, "layca-clblast-tuning 1\n") && strstr(text, "# Xgemm: best of clblast_xgemm_1_32.json") &&
                      strstr(text, "# XgemmDirect: best of clblast_xgemm_direct_1_32.json") &&
                      strstr(text, "\nkernel GemmRoutine 32 XGEMM_MIN_INDIRECT_SIZE="),
                  "%s", text);
    ck_assert_msg(strstr(text, "\nkernel Xgemm 32 GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8 MDIMC=8 MWG=32 NDIMB=8 NDIMC=8 "
                               "NWG=32 SA=0 SB=0 STRM=0 STRN=0 VWM=1 VWN=1\n") ||
                      strstr(text, "# Xgemm: the tuners' set was slower than CLBlast's here, not kept"),
                  "%s", text);
    ck_assert_msg(strstr(text, "\nkernel XgemmDirect 32 KWID=2 MDIMAD=8 MDIMCD=8 NDIMBD=8 NDIMCD=8 PADA=1 PADB=1 VWMD=1 "
                               "VWND=1 WGD=8\n") ||
                      strstr(text, "# XgemmDirect: the tuners' set was slower than CLBlast's here, not kept"),
                  "%s", text);
    free(text);
    /* applied by the next run on the device */
    const char *b = getenv("LAYCA_BUILD_ROOT");
    snprintf(cmd, sizeof cmd, "%s/tools/layca-bench --compare --quick --repeats 1 --steps 1 --batch 4 --gemm 16x16x16 "
             "--copy-mib 1 --model %s 2>/dev/null", b ? b : "..", model);
    ck_assert_int_eq(shell(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "| CLBlast parameters | | tuned"), "%s", out);
    remove(path);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, usage_errors);
    tcase_add_test(tc, devices_lists_something);
    tcase_add_test(tc, broken_models);
    tcase_add_test(tc, broken_data);
    tcase_add_test(tc, inspect_json);
    tcase_add_test(tc, help_version_inspect);
    tcase_add_test(tc, train_outputs_and_eval);
    tcase_add_test(tc, inspect_json_quotes);
    tcase_add_test(tc, fifo_inputs);
    tcase_add_test(tc, plot_figures);
    tcase_add_test(tc, inspect_paper_networks);
    tcase_add_test(tc, bench_json_shape);
    tcase_add_test(tc, model_larger_than_device);
    tcase_add_test(tc, device_only_flag);
    tcase_add_test(tc, bench_compare_report);
    tcase_add_test(tc, tune_with_fake_tuners);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lc_test_run(suite()); }

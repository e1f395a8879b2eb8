/* The layca command line: exit codes (0 ok, 2 usage, 1 other errors) and
 * one-line error messages for broken model and data files. */
#include "lc_test.h"

#include <stdint.h>
#include <string.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lc_core.h"

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

/* Runs `layca ARGS`, returns the exit code; out receives stdout+stderr. */
static int run(const char *args, char *out, size_t len)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", layca, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = 0;
    int st = pclose(p);
    ck_assert_msg(WIFEXITED(st), "'%s' did not exit normally (crash?)", args);
    return WEXITSTATUS(st);
}

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
    expect_error("inspect", 2, "needs a model file");
}
END_TEST

START_TEST(devices_lists_something)
{
    setup();
    char out[8192];
    int rc = run("devices", out, sizeof out);
    if (rc != 0) return; /* no device on this machine: covered by the device suites */
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
    char d[1400], args[3000], out[16384];
    snprintf(d, sizeof d, "%s/data_ok", tmp);
    make_data(d, "none");
    snprintf(args, sizeof args, "train %s --data mnist:%s --steps 2 --batch 4", model, d);
    ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
    /* an unknown data kind */
    snprintf(args, sizeof args, "train %s --data cifar9:%s --steps 1", model, d);
    expect_error(args, 1, "cifar9");
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
    snprintf(args, sizeof args, "inspect %s/models/mlp3.json", src);
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

/* layca plot: valid PNG and SVG files from a metrics file; a broken
 * metrics file gives a one-line error with the line number. */
START_TEST(plot_figures)
{
    setup();
    char m[1200], args[3000], out[16384];
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
    tcase_add_test(tc, inspect_json_quotes);
    tcase_add_test(tc, fifo_inputs);
    tcase_add_test(tc, plot_figures);
    tcase_add_test(tc, inspect_paper_networks);
    tcase_add_test(tc, bench_json_shape);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lc_test_run(suite()); }

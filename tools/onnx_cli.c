/* `layca import MODEL.onnx -o MODEL.json [--weights W.safetensors]` and
 * `layca export MODEL.json --weights W -o MODEL.onnx`.  Outputs are written
 * atomically and never over an input. */
#include "onnx_cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lc_onnx.h"

#define EXIT_USAGE 2

static const char *import_help =
    "usage: layca import MODEL.onnx -o MODEL.json [--weights W.safetensors]\n"
    "\n"
    "Turns an ONNX model into a layca model file and its weights (default: MODEL.safetensors beside\n"
    "MODEL.json).  Supported: Conv, Gemm, MatMul(+Add), Relu, LeakyRelu, MaxPool, AveragePool,\n"
    "GlobalAveragePool, BatchNormalization, Dropout, Flatten, Reshape (to [N, features]), Add, Constant,\n"
    "Identity, a constant Pad before a Conv or pooling (folded into its padding), and a final Softmax (it\n"
    "becomes the loss).  Anything else is an error naming the node (docs/onnx.md).\n";

static const char *export_help =
    "usage: layca export MODEL.json --weights W.safetensors -o MODEL.onnx\n"
    "\n"
    "Writes the model's inference graph as ONNX (opset 13): input 'input' [N, ...], output the logits\n"
    "(no Softmax); dropout is an inference-mode Dropout, batchnorm uses its running statistics.\n";

static int usage(const char *fmt, const char *arg, const char *help)
{
    fprintf(stderr, "layca: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", help);
    return EXIT_USAGE;
}

static int fail(void)
{
    fprintf(stderr, "layca: %s\n", lc_error_message());
    return 1;
}

static int no_onnx(void)
{
    fprintf(stderr, "layca: this build of layca has no ONNX support (protobuf-c was missing at build time; "
                    "docs/onnx.md)\n");
    return 1;
}

/* True when a and b name the same file (or the same path). */
static bool same_file(const char *a, const char *b)
{
    if (!strcmp(a, b)) return true;
    struct stat sa, sb;
    return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

typedef struct args {
    const char *in, *out, *weights;
} args;

static int parse_args(int argc, char **argv, const char *help, args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            fputs(help, stdout);
            return -1;
        }
        if (!strcmp(s, "-o") || !strcmp(s, "--output") || !strcmp(s, "--weights")) {
            if (i + 1 >= argc) return usage("%s needs a value", s, help);
            if (s[1] == 'o' || s[2] == 'o') a->out = argv[++i];
            else a->weights = argv[++i];
        } else if (s[0] == '-' && s[1]) {
            return usage("unknown option '%s'", s, help);
        } else if (a->in) {
            return usage("unexpected argument '%s' (one input file only)", s, help);
        } else {
            a->in = s;
        }
    }
    if (!a->in) return usage("%s", "an input file is needed", help);
    if (!a->out) return usage("%s", "-o OUTPUT is needed", help);
    return 0;
}

/* MODEL.json -> MODEL.safetensors */
static void default_weights(const char *json, char *out, size_t cap)
{
    size_t n = strlen(json);
    if (n > 5 && !strcmp(json + n - 5, ".json")) n -= 5;
    snprintf(out, cap, "%.*s.safetensors", (int)n, json);
}

int lc_onnx_import_main(int argc, char **argv)
{
    args a;
    int rc = parse_args(argc, argv, import_help, &a);
    if (rc) return rc < 0 ? 0 : rc;
    char wpath[PATH_MAX];
    if (a.weights) snprintf(wpath, sizeof wpath, "%s", a.weights);
    else default_weights(a.out, wpath, sizeof wpath);
    if (same_file(a.in, a.out) || same_file(a.in, wpath) || same_file(a.out, wpath))
        return usage("%s", "the outputs must differ from the input and from each other", import_help);
    if (!lc_onnx_available()) return no_onnx();
    uint8_t *bytes;
    size_t len;
    if (lc_file_read(a.in, &bytes, &len) != LC_OK) return fail();
    lc_onnx_import r;
    lc_status st = lc_onnx_import_parse(bytes, len, a.in, NULL, &r);
    free(bytes);
    if (st != LC_OK) return fail();
    /* the result must load as a model, with these weights */
    lc_graph *g = NULL;
    st = lc_model_parse(r.json, strlen(r.json), a.out, &g, NULL);
    float *params = st == LC_OK ? calloc((size_t)g->param_floats + 1, sizeof *params) : NULL;
    if (st == LC_OK && !params) st = LC_ERR(LC_ERR_NOMEM, "out of memory");
    if (st == LC_OK) st = lc_onnx_import_params(&r, g, params);
    if (st == LC_OK) st = lc_safetensors_write(wpath, r.tensors, r.n_tensors, NULL);
    if (st == LC_OK) st = lc_file_write_atomic(a.out, r.json, strlen(r.json));
    if (st == LC_OK)
        fprintf(stderr, "layca: %s -> %s (%d nodes), %s (%d tensors)%s\n", a.in, a.out, g->n_nodes, wpath, r.n_tensors,
                r.softmax_folded ? "; the final Softmax became the loss" : "");
    free(params);
    lc_graph_destroy(g);
    lc_onnx_import_deinit(&r);
    return st == LC_OK ? 0 : fail();
}

int lc_onnx_export_main(int argc, char **argv)
{
    args a;
    int rc = parse_args(argc, argv, export_help, &a);
    if (rc) return rc < 0 ? 0 : rc;
    if (!a.weights) return usage("%s", "--weights W.safetensors is needed", export_help);
    if (same_file(a.in, a.out) || same_file(a.weights, a.out))
        return usage("%s", "the output must differ from the inputs", export_help);
    if (!lc_onnx_available()) return no_onnx();
    lc_graph *g = NULL;
    if (lc_model_load(a.in, &g, NULL) != LC_OK) return fail();
    float *params = calloc((size_t)g->param_floats + 1, sizeof *params);
    lc_status st = params ? lc_model_load_params(a.weights, g, params) : LC_ERR(LC_ERR_NOMEM, "out of memory");
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (st == LC_OK) st = lc_onnx_export(g, params, &bytes, &len);
    if (st == LC_OK) st = lc_file_write_atomic(a.out, bytes, len);
    if (st == LC_OK) fprintf(stderr, "layca: %s + %s -> %s (%zu bytes)\n", a.in, a.weights, a.out, len);
    free(bytes);
    free(params);
    lc_graph_destroy(g);
    return st == LC_OK ? 0 : fail();
}

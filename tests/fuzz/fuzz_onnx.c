/* Fuzz target: ONNX models (lc_onnx_import_parse).  What imports must be a
 * model file that parses, with every parameter present in its shape
 * (lc_onnx_import_params), and must name its output node. */
#include <stdlib.h>
#include <string.h>

#include "lc_fuzz.h"
#include "lc_onnx.h"

const char *lc_fuzz_onnx(const uint8_t *data, size_t size)
{
    if (!lc_onnx_available()) { /* a build without ONNX support: the stub only says so */
        lc_onnx_import r;
        if (lc_onnx_import_parse(data, size, "fuzz.onnx", NULL, &r) == LC_OK) return "the stub imported a model";
        lc_fuzz_accepted++;
        return lc_fuzz_check_error(LC_ERR_UNSUPPORTED);
    }
    uint8_t *bytes = lc_fuzz_copy(data, size);
    if (!bytes) return NULL;
    lc_onnx_import r;
    const char *why = NULL;
    lc_error_clear();
    lc_status st = lc_onnx_import_parse(bytes, size, "fuzz.onnx", NULL, &r);
    free(bytes);
    if (st != LC_OK) {
        why = lc_fuzz_check_error(st);
        if (!why && (r.json || r.tensors)) why = "outputs left after an error";
        return why;
    }
    lc_fuzz_accepted++;
    lc_graph *g = NULL;
    if (!r.json || !r.output[0]) why = "no model text or no output node";
    else if (lc_model_parse(r.json, strlen(r.json), "imported", &g, NULL) != LC_OK) why = "the model text does not parse";
    else if (lc_graph_find(g, r.output) != g->logits) why = "the output node is not the logits";
    else if (g->param_floats <= ((int64_t)1 << 22)) {
        float *p = malloc((size_t)(g->param_floats + 1) * sizeof *p);
        if (p && lc_onnx_import_params(&r, g, p) != LC_OK) why = "the imported parameters do not fit the model";
        free(p);
    }
    lc_graph_destroy(g);
    lc_onnx_import_deinit(&r);
    return why;
}

/* ONNX support for a build without protobuf-c: every entry point says so. */
#include "lc_onnx.h"

#include <string.h>

#define NO_ONNX() LC_ERR(LC_ERR_UNSUPPORTED, "this build of layca has no ONNX support (protobuf-c, protoc-c or " \
                         "onnx.proto were missing at build time; see docs/onnx.md)")

bool lc_onnx_available(void) { return false; }

lc_status lc_onnx_value_parse(const uint8_t *bytes, size_t len, const char *where, lc_onnx_value *out)
{
    memset(out, 0, sizeof *out);
    return NO_ONNX();
}

void lc_onnx_value_deinit(lc_onnx_value *v) { (void)v; }

lc_status lc_onnx_import_parse(const uint8_t *bytes, size_t len, const char *where, const lc_onnx_import_opts *opts,
                               lc_onnx_import *out)
{
    memset(out, 0, sizeof *out);
    return NO_ONNX();
}

void lc_onnx_import_deinit(lc_onnx_import *r) { (void)r; }

lc_status lc_onnx_import_params(const lc_onnx_import *r, const lc_graph *g, float *params) { return NO_ONNX(); }

lc_status lc_onnx_model_ops(const uint8_t *bytes, size_t len, const char *where, char *buf, size_t cap)
{
    if (cap) buf[0] = 0;
    return NO_ONNX();
}

bool lc_onnx_op_supported(const char *op_type) { return false; }

lc_status lc_onnx_export(const lc_graph *g, const float *params, uint8_t **bytes, size_t *len)
{
    *bytes = NULL;
    *len = 0;
    return NO_ONNX();
}

/* ONNX import and export (docs/onnx.md).  Import turns an ONNX model into a
 * layca model file (JSON text) and its parameters; export turns a layca
 * graph and its parameters into an ONNX inference graph.  The protobuf code
 * is generated at build time by protoc-c from ONNX's onnx.proto; a build
 * without protobuf-c has the same functions, which fail with
 * LC_ERR_UNSUPPORTED (lc_onnx_available() is false).  Parsers work over
 * (bytes, length) with no global state. */
#ifndef LC_ONNX_H
#define LC_ONNX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_core.h"
#include "lc_ir.h"
#include "lc_model.h"

/* False when this build has no ONNX support. */
bool lc_onnx_available(void);

#define LC_ONNX_MAX_RANK 8

/* A tensor decoded from an ONNX TensorProto: FLOAT values in f, or INT64
 * values in i64 (the other is NULL); owned. */
typedef struct lc_onnx_value {
    char name[128];
    int rank;
    int64_t dims[LC_ONNX_MAX_RANK];
    int64_t numel;
    float *f;
    int64_t *i64;
} lc_onnx_value;
/* Decodes a serialized TensorProto (the .pb files of ONNX's test cases). */
lc_status lc_onnx_value_parse(const uint8_t *bytes, size_t len, const char *where, lc_onnx_value *out);
void lc_onnx_value_deinit(lc_onnx_value *v);

typedef struct lc_onnx_import_opts {
    /* Values for graph inputs besides the data input, matched by name: they
     * become constants as initializers do (ONNX's test cases pass weights
     * as inputs). */
    const lc_onnx_value *bind;
    int n_bind;
} lc_onnx_import_opts;

typedef struct lc_onnx_import {
    char *json;              /* the layca model file's text (owned) */
    lc_st_tensor *tensors;   /* the parameters, PyTorch names and layouts (data owned) */
    int n_tensors;
    int batch;               /* the data input's first dimension (0: symbolic) */
    char output[LC_NAME_MAX]; /* the layca node giving the ONNX graph's output */
    bool softmax_folded;     /* a final Softmax became the loss */
} lc_onnx_import;

/* Parses an ONNX model.  `where` names the input in messages, e.g.
 * "m.onnx: node 'conv1' (Conv): attribute 'group' = 2 is not supported
 * (layca convolutions have one group)".  opts may be NULL. */
lc_status lc_onnx_import_parse(const uint8_t *bytes, size_t len, const char *where, const lc_onnx_import_opts *opts,
                               lc_onnx_import *out);
void lc_onnx_import_deinit(lc_onnx_import *r);
/* Copies the imported parameters into g's parameter layout (param_floats
 * floats), checking that every parameter is there with its shape. */
lc_status lc_onnx_import_params(const lc_onnx_import *r, const lc_graph *g, float *params);
/* The distinct op types of a model's graph, comma-separated, into buf. */
lc_status lc_onnx_model_ops(const uint8_t *bytes, size_t len, const char *where, char *buf, size_t cap);
/* True for the ONNX op types the importer supports. */
bool lc_onnx_op_supported(const char *op_type);

/* Exports the forward graph of g (parsed, not compiled; params in its
 * layout) as an ONNX model (opset 13, IR version 7): the data input
 * "input" [N, ...], one output, the logits (the loss is not exported).
 * *bytes is allocated (caller frees). */
lc_status lc_onnx_export(const lc_graph *g, const float *params, uint8_t **bytes, size_t *len);

#endif

/* ONNX support shared by import and export: tensors, the op list. */
#include "onnx_int.h"

#include <stdlib.h>
#include <string.h>

bool lc_onnx_available(void) { return true; }

static const char *const supported_ops[] = {
    "Conv", "Gemm", "MatMul", "Add", "Relu", "LeakyRelu", "MaxPool", "AveragePool", "GlobalAveragePool",
    "BatchNormalization", "Dropout", "Flatten", "Reshape", "Softmax", "Constant", "Identity", "Pad", NULL};

bool lc_onnx_op_supported(const char *op_type)
{
    for (int i = 0; supported_ops[i]; i++)
        if (!strcmp(op_type, supported_ops[i])) return true;
    return false;
}

const char *lc_onnx_dtype_name(int32_t t)
{
    static const char *const names[] = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64",
                                        "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64",
                                        "COMPLEX128", "BFLOAT16"};
    return t >= 0 && (size_t)t < LC_COUNTOF(names) ? names[t] : "an unknown type";
}

void lc_onnx_value_deinit(lc_onnx_value *v)
{
    if (!v) return;
    free(v->f);
    free(v->i64);
    v->f = NULL;
    v->i64 = NULL;
}

/* Little-endian bytes to host values (the host is little endian, as
 * safetensors assumes too).  The sizes are checked against the data the
 * message holds before anything is allocated. */
static lc_status tensor_values(const Onnx__TensorProto *t, const char *where, lc_onnx_value *v)
{
    size_t esz = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? 4 : 8;
    size_t n = (size_t)v->numel;
    if (t->has_raw_data && t->raw_data.len != n * esz)
        return LC_ERR(LC_ERR_FORMAT, "%s: tensor '%s': %zu bytes of data for %zu values of %zu bytes", where, v->name,
                      t->raw_data.len, n, esz);
    size_t have = esz == 4 ? t->n_float_data : t->n_int64_data;
    if (!t->has_raw_data && have != n)
        return LC_ERR(LC_ERR_FORMAT, "%s: tensor '%s': %zu values for the shape's %zu", where, v->name, have, n);
    void *dst = malloc(n ? n * esz : 1);
    if (!dst) return LC_ERR(LC_ERR_NOMEM, "%s: tensor '%s': out of memory (%zu values)", where, v->name, n);
    if (esz == 4) v->f = dst; else v->i64 = dst;
    const void *src = t->has_raw_data ? (const void *)t->raw_data.data
                                      : esz == 4 ? (const void *)t->float_data : (const void *)t->int64_data;
    if (n) memcpy(dst, src, n * esz);
    return LC_OK;
}

lc_status lc_onnx_value_from_proto(const Onnx__TensorProto *t, const char *where, lc_onnx_value *v)
{
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", t->name ? t->name : "");
    if (t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL || t->n_external_data)
        return LC_ERR(LC_ERR_UNSUPPORTED, "%s: tensor '%s': external data is not supported (save the model with its "
                      "tensors inside)", where, v->name);
    if (t->segment)
        return LC_ERR(LC_ERR_UNSUPPORTED, "%s: tensor '%s': segmented tensors are not supported", where, v->name);
    if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        return LC_ERR(LC_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s (supported: FLOAT, and INT64 for shapes)", where,
                      v->name, lc_onnx_dtype_name(t->data_type));
    if (t->n_dims > LC_ONNX_MAX_RANK)
        return LC_ERR(LC_ERR_UNSUPPORTED, "%s: tensor '%s' has %zu dimensions (at most %d)", where, v->name, t->n_dims,
                      LC_ONNX_MAX_RANK);
    v->rank = (int)t->n_dims;
    v->numel = 1;
    for (int i = 0; i < v->rank; i++) {
        v->dims[i] = t->dims[i];
        int64_t d = t->dims[i], max = (int64_t)1 << 31;
        if (d < 0 || d > max || (d && v->numel > max / d))
            return LC_ERR(LC_ERR_FORMAT, "%s: tensor '%s': dimension %d (%lld) is negative or too large", where,
                          v->name, i, (long long)d);
        v->numel *= t->dims[i];
    }
    lc_status st = tensor_values(t, where, v);
    if (st != LC_OK) lc_onnx_value_deinit(v);
    return st;
}

lc_status lc_onnx_value_parse(const uint8_t *bytes, size_t len, const char *where, lc_onnx_value *out)
{
    memset(out, 0, sizeof *out);
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, bytes);
    if (!t) return LC_ERR(LC_ERR_FORMAT, "%s: not a serialized ONNX TensorProto (protobuf decoding failed)", where);
    lc_status st = lc_onnx_value_from_proto(t, where, out);
    onnx__tensor_proto__free_unpacked(t, NULL);
    return st;
}

lc_status lc_onnx_model_ops(const uint8_t *bytes, size_t len, const char *where, char *buf, size_t cap)
{
    buf[0] = 0;
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, bytes);
    if (!m) return LC_ERR(LC_ERR_FORMAT, "%s: not an ONNX model (protobuf decoding failed)", where);
    size_t o = 0;
    for (size_t i = 0; m->graph && i < m->graph->n_node; i++) {
        const char *op = m->graph->node[i]->op_type ? m->graph->node[i]->op_type : "";
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            seen |= m->graph->node[k]->op_type && !strcmp(m->graph->node[k]->op_type, op);
        if (!seen && o < cap) o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? "," : "", op);
    }
    onnx__model_proto__free_unpacked(m, NULL);
    return o < cap ? LC_OK : LC_ERR(LC_ERR_INVALID, "%s: the op list does not fit %zu bytes", where, cap);
}

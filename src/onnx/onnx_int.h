/* ONNX module internals: the generated protobuf code and shared helpers. */
#ifndef LC_ONNX_INT_H
#define LC_ONNX_INT_H

#include <stdio.h>

#include "lc_onnx.h"
#include "onnx.pb-c.h"

const char *lc_onnx_dtype_name(int32_t t);
/* A TensorProto's values (FLOAT or INT64) into v (owned). */
lc_status lc_onnx_value_from_proto(const Onnx__TensorProto *t, const char *where, lc_onnx_value *v);

#endif

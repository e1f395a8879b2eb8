/* layca graph -> ONNX (written below). */
#include "onnx_int.h"

lc_status lc_onnx_export(const lc_graph *g, const float *params, uint8_t **bytes, size_t *len)
{
    *bytes = NULL;
    *len = 0;
    return LC_ERR(LC_ERR_UNSUPPORTED, "ONNX export is not implemented yet");
}

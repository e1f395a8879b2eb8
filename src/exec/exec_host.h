/* Private to src/exec: ops computed on the host, on mapped buffers, for CPU
 * devices whose buffers live in host memory (lc_rt_host_blas_usable).  The
 * layouts and workspace are those of the device lowering (see exec.c and
 * conv.cl); the GEMMs run on the host BLAS, the layout loops on the rt's
 * host workers. */
#ifndef LC_EXEC_HOST_H
#define LC_EXEC_HOST_H

#include "lc_rt.h"

/* Sizes of a conv2d node. */
typedef struct conv_dims { int cin, h, w, cout, oh, ow, ohw, kh, kw, sh, sw, pt, pl, K; } conv_dims;

enum { HC_FWD, HC_DX, HC_DW };
/* schedules (see host_conv.c) */
enum { HC_CHUNKED = 1, HC_BLOCKED = 2, HC_WINO = 3, HC_WINO4 = 4 };

/* One conv2d node (kind HC_FWD, HC_DX or HC_DW) over nb examples.  The
 * workspace ws (ws_floats) is the node's planned one, (K + cout) * chunk *
 * ohw floats; unused when pointwise (1x1, stride 1, no padding: a GEMM per
 * example).
 *   HC_FWD: a = x, b = W, bias (NULL: none), out = y
 *   HC_DX:  a = dy, b = W, out = dx
 *   HC_DW:  a = dy, b = x, out = dW (overwritten) */
lc_status lc_host_conv(lc_rt *rt, int kind, int schedule, const conv_dims *d, int nb, int chunk, bool pointwise,
                       const float *a, const float *b, const float *bias, float *out, float *ws, size_t ws_floats);
/* Workers the blocked schedule can use within ws_floats (0: it does not fit). */
int lc_host_conv_blocked_threads(const conv_dims *d, int nb, int kind, int threads, size_t ws_floats);

/* 3x3 stride-1 convs (padding 0..2) with Winograd F(m x m, 3 x 3), m = 2
 * (HC_WINO) or 4 (HC_WINO4) (host_wino.c), same arguments as lc_host_conv;
 * lc_host_wino_threads: the workers it can use within ws_floats (0: it does
 * not apply or fit). */
bool lc_host_wino_applies(const conv_dims *d);
int lc_host_wino_threads(const conv_dims *d, int nb, int kind, int m, int threads, size_t ws_floats);
lc_status lc_host_wino(lc_rt *rt, int kind, int m, const conv_dims *d, int nb, const float *a, const float *b,
                       const float *bias, float *out, float *ws, size_t ws_floats);

#endif

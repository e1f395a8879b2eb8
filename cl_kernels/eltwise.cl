/* Elementwise ops and small reductions.  Offsets and element counts are
 * 64-bit (ulong, in floats), and so is every flat index: an arena or a
 * tensor may hold more than 2^31 floats.  Every kernel guards its range so
 * global sizes may be rounded up. */

/* ReLU forward and backward: 16 elements per work-item (explicit vectors:
 * PoCL's implicit vectorisation across work-items reached half the copy
 * bandwidth on these streams); global size ceil(n / 16) */
__kernel void lc_relu_fwd(__global float *y, ulong y_off, __global const float *x, ulong x_off, ulong n)
{
    __global float *yp = y + y_off;
    __global const float *xp = x + x_off;
    size_t i = get_global_id(0) * 16;
    if (i + 16 <= n) {
        vstore16(fmax(vload16(0, xp + i), 0.0f), 0, yp + i);
    } else {
        for (; i < n; i++) yp[i] = fmax(xp[i], 0.0f);
    }
}

/* dx = dy where the forward output y > 0 */
__kernel void lc_relu_bwd(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off,
                          __global const float *y, ulong y_off, ulong n)
{
    __global float *dxp = dx + dx_off;
    __global const float *dyp = dy + dy_off, *yp = y + y_off;
    size_t i = get_global_id(0) * 16;
    if (i + 16 <= n) {
        float16 g = vload16(0, dyp + i), v = vload16(0, yp + i);
        vstore16(select((float16)0.0f, g, v > 0.0f), 0, dxp + i);
    } else {
        for (; i < n; i++) dxp[i] = yp[i] > 0.0f ? dyp[i] : 0.0f;
    }
}

__kernel void lc_add(__global float *z, ulong z_off, __global const float *a, ulong a_off,
                     __global const float *b, ulong b_off, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n) z[z_off + i] = a[a_off + i] + b[b_off + i];
}

/* y[r, c] += b[c] (optionally followed by ReLU), rows x cols row-major */
__kernel void lc_bias_act(__global float *y, ulong y_off, __global const float *b, ulong b_off, int rows, int cols,
                          int relu)
{
    int c = get_global_id(0), r = get_global_id(1);
    if (c >= cols || r >= rows) return;
    size_t k = y_off + (size_t)r * cols + c;
    float v = y[k] + b[b_off + c];
    y[k] = relu ? fmax(v, 0.0f) : v;
}

/* db[c] = sum_r dy[r, c] */
__kernel void lc_bias_grad(__global float *db, ulong db_off, __global const float *dy, ulong dy_off, int rows,
                           int cols)
{
    int c = get_global_id(0);
    if (c >= cols) return;
    __global const float *g = dy + dy_off + c;
    float s = 0.0f;
    for (int r = 0; r < rows; r++) s += g[(size_t)r * cols];
    db[db_off + c] = s;
}

/* z = a * b (fixed gating: x times its recorded 0/1 mask) */
__kernel void lc_mul(__global float *z, ulong z_off, __global const float *a, ulong a_off, __global const float *b,
                     ulong b_off, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n) z[z_off + i] = a[a_off + i] * b[b_off + i];
}

/* GPU style (device-only mode and non-CPU devices): ReLU forward and
 * backward on 4 elements per work-item, neighbouring work-items on
 * neighbouring 16-byte vectors (coalesced); global size ceil(n / 4) */
__kernel void lc_gpu_relu_fwd(__global float *y, ulong y_off, __global const float *x, ulong x_off, ulong n)
{
    __global float *yp = y + y_off;
    __global const float *xp = x + x_off;
    size_t i = get_global_id(0) * 4;
    if (i + 4 <= n) {
        vstore4(fmax(vload4(0, xp + i), 0.0f), 0, yp + i);
    } else {
        for (; i < n; i++) yp[i] = fmax(xp[i], 0.0f);
    }
}

__kernel void lc_gpu_relu_bwd(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off,
                              __global const float *y, ulong y_off, ulong n)
{
    __global float *dxp = dx + dx_off;
    __global const float *dyp = dy + dy_off, *yp = y + y_off;
    size_t i = get_global_id(0) * 4;
    if (i + 4 <= n) {
        float4 g = vload4(0, dyp + i), v = vload4(0, yp + i);
        vstore4(select((float4)0.0f, g, v > 0.0f), 0, dxp + i);
    } else {
        for (; i < n; i++) dxp[i] = yp[i] > 0.0f ? dyp[i] : 0.0f;
    }
}

/* Elementwise ops and small reductions.  Offsets and element counts are
 * 64-bit (ulong, in floats), and so is every flat index: an arena or a
 * tensor may hold more than 2^31 floats.  Every kernel guards its range so
 * global sizes may be rounded up. */

/* ReLU forward and backward: LC_ELT_VEC (16, src/rt/lc_kconst.h) elements
 * per work-item (explicit vectors: PoCL's implicit vectorisation across
 * work-items reached half the copy bandwidth on these streams); global size
 * ceil(n / LC_ELT_VEC).  LC_GPU_ELT_VEC (4) for the GPU style below. */
#define LC_CAT_(a, b) a##b
#define LC_CAT(a, b) LC_CAT_(a, b)
#define floatE LC_CAT(float, LC_ELT_VEC)
#define vloadE LC_CAT(vload, LC_ELT_VEC)
#define vstoreE LC_CAT(vstore, LC_ELT_VEC)
#define floatG LC_CAT(float, LC_GPU_ELT_VEC)
#define vloadG LC_CAT(vload, LC_GPU_ELT_VEC)
#define vstoreG LC_CAT(vstore, LC_GPU_ELT_VEC)
__kernel void lc_relu_fwd(__global float *y, ulong y_off, __global const float *x, ulong x_off, ulong n)
{
    __global float *yp = y + y_off;
    __global const float *xp = x + x_off;
    size_t i = get_global_id(0) * LC_ELT_VEC;
    if (i + LC_ELT_VEC <= n) {
        vstoreE(fmax(vloadE(0, xp + i), 0.0f), 0, yp + i);
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
    size_t i = get_global_id(0) * LC_ELT_VEC;
    if (i + LC_ELT_VEC <= n) {
        floatE g = vloadE(0, dyp + i), v = vloadE(0, yp + i);
        vstoreE(select((floatE)0.0f, g, v > 0.0f), 0, dxp + i);
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
 * backward on LC_GPU_ELT_VEC elements per work-item, neighbouring work-items on
 * neighbouring vectors (coalesced); global size ceil(n / LC_GPU_ELT_VEC) */
__kernel void lc_gpu_relu_fwd(__global float *y, ulong y_off, __global const float *x, ulong x_off, ulong n)
{
    __global float *yp = y + y_off;
    __global const float *xp = x + x_off;
    size_t i = get_global_id(0) * LC_GPU_ELT_VEC;
    if (i + LC_GPU_ELT_VEC <= n) {
        vstoreG(fmax(vloadG(0, xp + i), 0.0f), 0, yp + i);
    } else {
        for (; i < n; i++) yp[i] = fmax(xp[i], 0.0f);
    }
}

__kernel void lc_gpu_relu_bwd(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off,
                              __global const float *y, ulong y_off, ulong n)
{
    __global float *dxp = dx + dx_off;
    __global const float *dyp = dy + dy_off, *yp = y + y_off;
    size_t i = get_global_id(0) * LC_GPU_ELT_VEC;
    if (i + LC_GPU_ELT_VEC <= n) {
        floatG g = vloadG(0, dyp + i), v = vloadG(0, yp + i);
        vstoreG(select((floatG)0.0f, g, v > 0.0f), 0, dxp + i);
    } else {
        for (; i < n; i++) dxp[i] = yp[i] > 0.0f ? dyp[i] : 0.0f;
    }
}

/* Leaky ReLU: y = x for x > 0, slope * x otherwise; one element per
 * work-item (both kernel styles: neighbouring items on neighbouring floats) */
__kernel void lc_leaky_relu_fwd(__global float *y, ulong y_off, __global const float *x, ulong x_off, ulong n,
                                float slope)
{
    size_t i = get_global_id(0);
    if (i < n) {
        float v = x[x_off + i];
        y[y_off + i] = v > 0.0f ? v : slope * v;
    }
}

/* dx = dy where the forward input x > 0, slope * dy elsewhere */
__kernel void lc_leaky_relu_bwd(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off,
                                __global const float *x, ulong x_off, ulong n, float slope)
{
    size_t i = get_global_id(0);
    if (i < n) {
        float g = dy[dy_off + i];
        dx[dx_off + i] = x[x_off + i] > 0.0f ? g : slope * g;
    }
}

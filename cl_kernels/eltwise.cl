/* Elementwise ops and small reductions.  Offsets are in floats; every
 * kernel guards its range so global sizes may be rounded up. */

/* ReLU forward and backward: 16 elements per work-item (explicit vectors:
 * PoCL's implicit vectorisation across work-items reached half the copy
 * bandwidth on these streams); global size ceil(n / 16) */
__kernel void lc_relu_fwd(__global float *y, int y_off, __global const float *x, int x_off, int n)
{
    int i = get_global_id(0) * 16;
    if (i + 16 <= n) {
        vstore16(fmax(vload16(0, x + x_off + i), 0.0f), 0, y + y_off + i);
    } else {
        for (; i < n; i++) y[y_off + i] = fmax(x[x_off + i], 0.0f);
    }
}

/* dx = dy where the forward output y > 0 */
__kernel void lc_relu_bwd(__global float *dx, int dx_off, __global const float *dy, int dy_off,
                          __global const float *y, int y_off, int n)
{
    int i = get_global_id(0) * 16;
    if (i + 16 <= n) {
        float16 g = vload16(0, dy + dy_off + i), v = vload16(0, y + y_off + i);
        vstore16(select((float16)0.0f, g, v > 0.0f), 0, dx + dx_off + i);
    } else {
        for (; i < n; i++) dx[dx_off + i] = y[y_off + i] > 0.0f ? dy[dy_off + i] : 0.0f;
    }
}

__kernel void lc_add(__global float *z, int z_off, __global const float *a, int a_off,
                     __global const float *b, int b_off, int n)
{
    int i = get_global_id(0);
    if (i < n) z[z_off + i] = a[a_off + i] + b[b_off + i];
}

/* y[r, c] += b[c] (optionally followed by ReLU), rows x cols row-major */
__kernel void lc_bias_act(__global float *y, int y_off, __global const float *b, int b_off, int rows, int cols,
                          int relu)
{
    int c = get_global_id(0), r = get_global_id(1);
    if (c >= cols || r >= rows) return;
    float v = y[y_off + r * cols + c] + b[b_off + c];
    y[y_off + r * cols + c] = relu ? fmax(v, 0.0f) : v;
}

/* db[c] = sum_r dy[r, c] */
__kernel void lc_bias_grad(__global float *db, int db_off, __global const float *dy, int dy_off, int rows, int cols)
{
    int c = get_global_id(0);
    if (c >= cols) return;
    float s = 0.0f;
    for (int r = 0; r < rows; r++) s += dy[dy_off + r * cols + c];
    db[db_off + c] = s;
}

/* z = a * b (fixed gating: x times its recorded 0/1 mask) */
__kernel void lc_mul(__global float *z, int z_off, __global const float *a, int a_off, __global const float *b,
                     int b_off, int n)
{
    int i = get_global_id(0);
    if (i < n) z[z_off + i] = a[a_off + i] * b[b_off + i];
}

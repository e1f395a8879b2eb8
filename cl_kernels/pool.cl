/* Pooling without padding (windows that do not fit are dropped), NCHW.
 * nc = batch * channels planes of h x w.  One work-item per output row
 * (forward) or input row (backward, a gather: no atomics), with a loop
 * along the row (see conv.cl on PoCL). */

/* first index (row-major window order) of the window's maximum */
static int lc_window_argmax(__global const float *xp, int w, int y0, int x0, int kh, int kw)
{
    int best = y0 * w + x0;
    float m = xp[best];
    for (int a = 0; a < kh; a++)
        for (int b = 0; b < kw; b++) {
            int k = (y0 + a) * w + x0 + b;
            if (xp[k] > m) { m = xp[k]; best = k; }
        }
    return best;
}

__kernel void lc_maxpool_fwd(__global float *y, int y_off, __global const float *x, int x_off, int nc, int h, int w,
                             int kh, int kw, int sh, int sw, int oh, int ow)
{
    int row = get_global_id(0);
    if (row >= nc * oh) return;
    int oy = row % oh, pl = row / oh;
    __global const float *xp = x + x_off + pl * h * w;
    __global float *d = y + y_off + row * ow;
    for (int ox = 0; ox < ow; ox++) d[ox] = xp[lc_window_argmax(xp, w, oy * sh, ox * sw, kh, kw)];
}

/* first and last window index (along one axis) that covers input position i */
static int lc_win_lo(int i, int k, int s) { int t = i - k + 1; return t <= 0 ? 0 : (t + s - 1) / s; }
static int lc_win_hi(int i, int s, int o) { int t = i / s; return t < o - 1 ? t : o - 1; }

/* dx = sum of dy over the windows whose (first) maximum is this element */
__kernel void lc_maxpool_bwd(__global float *dx, int dx_off, __global const float *dy, int dy_off,
                             __global const float *x, int x_off, int nc, int h, int w, int kh, int kw, int sh, int sw,
                             int oh, int ow)
{
    int row = get_global_id(0);
    if (row >= nc * h) return;
    int iy = row % h, pl = row / h;
    __global const float *xp = x + x_off + pl * h * w;
    __global const float *g = dy + dy_off + pl * oh * ow;
    __global float *d = dx + dx_off + row * w;
    int oy0 = lc_win_lo(iy, kh, sh), oy1 = lc_win_hi(iy, sh, oh);
    for (int ix = 0; ix < w; ix++) {
        int me = iy * w + ix, ox0 = lc_win_lo(ix, kw, sw), ox1 = lc_win_hi(ix, sw, ow);
        float s = 0.0f;
        for (int oy = oy0; oy <= oy1; oy++)
            for (int ox = ox0; ox <= ox1; ox++)
                if (lc_window_argmax(xp, w, oy * sh, ox * sw, kh, kw) == me) s += g[oy * ow + ox];
        d[ix] = s;
    }
}

/* The same when the windows tile the input (stride == window): one
 * work-item per output row writes its window rows (the window's first
 * maximum gets dy, the others 0) and the uncovered right columns; the last
 * one also clears the uncovered bottom rows. */
__kernel void lc_maxpool_bwd_tiled(__global float *dx, int dx_off, __global const float *dy, int dy_off,
                                   __global const float *x, int x_off, int nc, int h, int w, int kh, int kw, int oh,
                                   int ow)
{
    int row = get_global_id(0);
    if (row >= nc * oh) return;
    int oy = row % oh, pl = row / oh;
    __global const float *xp = x + x_off + pl * h * w;
    __global const float *g = dy + dy_off + row * ow;
    __global float *d = dx + dx_off + pl * h * w;
    for (int ox = 0; ox < ow; ox++) {
        int best = lc_window_argmax(xp, w, oy * kh, ox * kw, kh, kw);
        float gv = g[ox];
        for (int a = 0; a < kh; a++)
            for (int b = 0; b < kw; b++) {
                int k = (oy * kh + a) * w + ox * kw + b;
                d[k] = k == best ? gv : 0.0f;
            }
    }
    for (int a = 0; a < kh; a++)
        for (int b = ow * kw; b < w; b++) d[(oy * kh + a) * w + b] = 0.0f;
    if (oy == oh - 1)
        for (int k = oh * kh * w; k < h * w; k++) d[k] = 0.0f;
}

__kernel void lc_avgpool_fwd(__global float *y, int y_off, __global const float *x, int x_off, int nc, int h, int w,
                             int kh, int kw, int sh, int sw, int oh, int ow)
{
    int row = get_global_id(0);
    if (row >= nc * oh) return;
    int oy = row % oh, pl = row / oh;
    __global const float *xp = x + x_off + (pl * h + oy * sh) * w;
    __global float *d = y + y_off + row * ow;
    float inv = 1.0f / (float)(kh * kw);
    for (int ox = 0; ox < ow; ox++) {
        float s = 0.0f;
        for (int a = 0; a < kh; a++)
            for (int b = 0; b < kw; b++) s += xp[a * w + ox * sw + b];
        d[ox] = s * inv;
    }
}

__kernel void lc_avgpool_bwd(__global float *dx, int dx_off, __global const float *dy, int dy_off, int nc, int h,
                             int w, int kh, int kw, int sh, int sw, int oh, int ow)
{
    int row = get_global_id(0);
    if (row >= nc * h) return;
    int iy = row % h, pl = row / h;
    __global const float *g = dy + dy_off + pl * oh * ow;
    __global float *d = dx + dx_off + row * w;
    int oy0 = lc_win_lo(iy, kh, sh), oy1 = lc_win_hi(iy, sh, oh);
    float inv = 1.0f / (float)(kh * kw);
    for (int ix = 0; ix < w; ix++) {
        int ox0 = lc_win_lo(ix, kw, sw), ox1 = lc_win_hi(ix, sw, ow);
        float s = 0.0f;
        for (int oy = oy0; oy <= oy1; oy++)
            for (int ox = ox0; ox <= ox1; ox++) s += g[oy * ow + ox];
        d[ix] = s * inv;
    }
}

/* y[plane] = mean of the plane's hw values */
__kernel void lc_gap_fwd(__global float *y, int y_off, __global const float *x, int x_off, int nc, int hw)
{
    int i = get_global_id(0);
    if (i >= nc) return;
    float s = 0.0f;
    for (int k = 0; k < hw; k++) s += x[x_off + i * hw + k];
    y[y_off + i] = s / (float)hw;
}

/* dx[plane, :] = dy[plane] / hw */
__kernel void lc_gap_bwd(__global float *dx, int dx_off, __global const float *dy, int dy_off, int nc, int hw)
{
    int i = get_global_id(0);
    if (i >= nc) return;
    float v = dy[dy_off + i] / (float)hw;
    for (int k = 0; k < hw; k++) dx[dx_off + i * hw + k] = v;
}

/* Pooling, NCHW, windows that do not fit are dropped.  nc = batch *
 * channels planes of h x w.  The general kernels take the padding (pt on
 * top, pl on the left; the bottom and right padding only set oh and ow):
 * padded positions are not values (max ignores them; avg divides by kh * kw
 * when incl, else by the window's real values).  Each side's padding is
 * smaller than the window, so every window holds a real value.  The 2x2 and
 * tiled kernels are for unpadded windows.  One work-item per output row
 * (forward) or input row (backward, a gather: no atomics), with a loop
 * along the row (see conv.cl on PoCL).  Offsets are 64-bit (ulong) and so
 * is every index past a plane; within a plane (h * w) indices are ints. */

/* first index (row-major window order) of the maximum among the real
 * values of the window at (y0, x0) (negative in the padding) */
static int lc_window_argmax(__global const float *xp, int h, int w, int y0, int x0, int kh, int kw)
{
    int ya = max(y0, 0), yb = min(y0 + kh, h), xa = max(x0, 0), xb = min(x0 + kw, w);
    int best = ya * w + xa;
    float m = xp[best];
    for (int a = ya; a < yb; a++)
        for (int b = xa; b < xb; b++) {
            int k = a * w + b;
            if (xp[k] > m) { m = xp[k]; best = k; }
        }
    return best;
}

/* 1 / the divisor of the average over the window at (y0, x0) */
static float lc_window_inv(int h, int w, int y0, int x0, int kh, int kw, int incl)
{
    if (incl) return 1.0f / (float)(kh * kw);
    int rows = min(y0 + kh, h) - max(y0, 0), cols = min(x0 + kw, w) - max(x0, 0);
    return 1.0f / (float)(rows * cols);
}

__kernel void lc_maxpool_fwd(__global float *y, ulong y_off, __global const float *x, ulong x_off, int nc, int h, int w,
                             int kh, int kw, int sh, int sw, int pt, int pl, int oh, int ow)
{
    int row = get_global_id(0);
    if (row >= nc * oh) return;
    int oy = row % oh, p = row / oh;
    __global const float *xp = x + x_off + (size_t)p * h * w;
    __global float *d = y + y_off + (size_t)row * ow;
    for (int ox = 0; ox < ow; ox++) d[ox] = xp[lc_window_argmax(xp, h, w, oy * sh - pt, ox * sw - pl, kh, kw)];
}

/* first and last window index (along one axis) that covers position i of
 * the padded input (the input's i - pad) */
static int lc_win_lo(int i, int k, int s) { int t = i - k + 1; return t <= 0 ? 0 : (t + s - 1) / s; }
static int lc_win_hi(int i, int s, int o) { int t = i / s; return t < o - 1 ? t : o - 1; }

/* dx = sum of dy over the windows whose (first) maximum is this element */
__kernel void lc_maxpool_bwd(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off,
                             __global const float *x, ulong x_off, int nc, int h, int w, int kh, int kw, int sh, int sw,
                             int pt, int pl, int oh, int ow)
{
    int row = get_global_id(0);
    if (row >= nc * h) return;
    int iy = row % h, p = row / h;
    __global const float *xp = x + x_off + (size_t)p * h * w;
    __global const float *g = dy + dy_off + (size_t)p * oh * ow;
    __global float *d = dx + dx_off + (size_t)row * w;
    int oy0 = lc_win_lo(iy + pt, kh, sh), oy1 = lc_win_hi(iy + pt, sh, oh);
    for (int ix = 0; ix < w; ix++) {
        int me = iy * w + ix, ox0 = lc_win_lo(ix + pl, kw, sw), ox1 = lc_win_hi(ix + pl, sw, ow);
        float s = 0.0f;
        for (int oy = oy0; oy <= oy1; oy++)
            for (int ox = ox0; ox <= ox1; ox++)
                if (lc_window_argmax(xp, h, w, oy * sh - pt, ox * sw - pl, kh, kw) == me) s += g[oy * ow + ox];
        d[ix] = s;
    }
}

/* The same when the windows tile the input (stride == window): one
 * work-item per output row writes its window rows (the window's first
 * maximum gets dy, the others 0) and the uncovered right columns; the last
 * one also clears the uncovered bottom rows. */
__kernel void lc_maxpool_bwd_tiled(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off,
                                   __global const float *x, ulong x_off, int nc, int h, int w, int kh, int kw, int oh,
                                   int ow)
{
    int row = get_global_id(0);
    if (row >= nc * oh) return;
    int oy = row % oh, pl = row / oh;
    __global const float *xp = x + x_off + (size_t)pl * h * w;
    __global const float *g = dy + dy_off + (size_t)row * ow;
    __global float *d = dx + dx_off + (size_t)pl * h * w;
    for (int ox = 0; ox < ow; ox++) {
        int best = lc_window_argmax(xp, h, w, oy * kh, ox * kw, kh, kw);
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

/* the average over the real values of the window at (y0, x0) */
static float lc_window_avg(__global const float *xp, int h, int w, int y0, int x0, int kh, int kw, int incl)
{
    int ya = max(y0, 0), yb = min(y0 + kh, h), xa = max(x0, 0), xb = min(x0 + kw, w);
    float s = 0.0f;
    for (int a = ya; a < yb; a++)
        for (int b = xa; b < xb; b++) s += xp[a * w + b];
    return s * lc_window_inv(h, w, y0, x0, kh, kw, incl);
}

/* dx at (iy, ix) of a plane: the sum over the windows covering it of their
 * dy / divisor */
static float lc_avg_grad(__global const float *g, int h, int w, int iy, int ix, int kh, int kw, int sh, int sw, int pt,
                         int pl, int oh, int ow, int incl)
{
    int oy0 = lc_win_lo(iy + pt, kh, sh), oy1 = lc_win_hi(iy + pt, sh, oh);
    int ox0 = lc_win_lo(ix + pl, kw, sw), ox1 = lc_win_hi(ix + pl, sw, ow);
    float s = 0.0f;
    if (incl) {
        for (int oy = oy0; oy <= oy1; oy++)
            for (int ox = ox0; ox <= ox1; ox++) s += g[oy * ow + ox];
        return s * (1.0f / (float)(kh * kw));
    }
    for (int oy = oy0; oy <= oy1; oy++)
        for (int ox = ox0; ox <= ox1; ox++)
            s += g[oy * ow + ox] * lc_window_inv(h, w, oy * sh - pt, ox * sw - pl, kh, kw, 0);
    return s;
}

__kernel void lc_avgpool_fwd(__global float *y, ulong y_off, __global const float *x, ulong x_off, int nc, int h, int w,
                             int kh, int kw, int sh, int sw, int pt, int pl, int oh, int ow, int incl)
{
    int row = get_global_id(0);
    if (row >= nc * oh) return;
    int oy = row % oh, p = row / oh;
    __global const float *xp = x + x_off + (size_t)p * h * w;
    __global float *d = y + y_off + (size_t)row * ow;
    for (int ox = 0; ox < ow; ox++) d[ox] = lc_window_avg(xp, h, w, oy * sh - pt, ox * sw - pl, kh, kw, incl);
}

__kernel void lc_avgpool_bwd(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off, int nc, int h,
                             int w, int kh, int kw, int sh, int sw, int pt, int pl, int oh, int ow, int incl)
{
    int row = get_global_id(0);
    if (row >= nc * h) return;
    int iy = row % h, p = row / h;
    __global const float *g = dy + dy_off + (size_t)p * oh * ow;
    __global float *d = dx + dx_off + (size_t)row * w;
    for (int ix = 0; ix < w; ix++) d[ix] = lc_avg_grad(g, h, w, iy, ix, kh, kw, sh, sw, pt, pl, oh, ow, incl);
}

/* y[plane] = mean of the plane's hw values */
__kernel void lc_gap_fwd(__global float *y, ulong y_off, __global const float *x, ulong x_off, int nc, int hw)
{
    int i = get_global_id(0);
    if (i >= nc) return;
    float s = 0.0f;
    __global const float *xp = x + x_off + (size_t)i * hw;
    for (int k = 0; k < hw; k++) s += xp[k];
    y[y_off + i] = s / (float)hw;
}

/* dx[plane, :] = dy[plane] / hw */
__kernel void lc_gap_bwd(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off, int nc, int hw)
{
    int i = get_global_id(0);
    if (i >= nc) return;
    float v = dy[dy_off + i] / (float)hw;
    __global float *dp = dx + dx_off + (size_t)i * hw;
    for (int k = 0; k < hw; k++) dp[k] = v;
}

/* 2x2 windows with stride 2 (the common case), explicit float8: one
 * work-item per output row reads the two input rows 8 columns (4 windows)
 * at a time.  The forward writes the maxima; the backward gives each
 * window's first maximum (row-major order, as lc_window_argmax) its dy and
 * the other three 0, and clears the uncovered last column / row. */
__kernel void lc_maxpool2_fwd(__global float *y, ulong y_off, __global const float *x, ulong x_off, int nc, int h,
                              int w, int oh, int ow)
{
    int row = get_global_id(0);
    if (row >= nc * oh) return;
    int oy = row % oh, pl = row / oh;
    __global const float *r0 = x + x_off + ((size_t)pl * h + 2 * oy) * w, *r1 = r0 + w;
    __global float *d = y + y_off + (size_t)row * ow;
    int ox = 0;
    for (; ox + 4 <= ow; ox += 4) {
        float8 m = fmax(vload8(0, r0 + 2 * ox), vload8(0, r1 + 2 * ox));
        vstore4(fmax(m.even, m.odd), 0, d + ox);
    }
    for (; ox < ow; ox++) d[ox] = fmax(fmax(r0[2 * ox], r0[2 * ox + 1]), fmax(r1[2 * ox], r1[2 * ox + 1]));
}

__kernel void lc_maxpool2_bwd(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off,
                              __global const float *x, ulong x_off, int nc, int h, int w, int oh, int ow)
{
    int row = get_global_id(0);
    if (row >= nc * oh) return;
    int oy = row % oh, pl = row / oh;
    size_t o0 = ((size_t)pl * h + 2 * oy) * w;
    __global const float *r0 = x + x_off + o0, *r1 = r0 + w, *g = dy + dy_off + (size_t)row * ow;
    __global float *d0 = dx + dx_off + o0, *d1 = d0 + w;
    int ox = 0;
    for (; ox + 4 <= ow; ox += 4) {
        float8 u = vload8(0, r0 + 2 * ox), v = vload8(0, r1 + 2 * ox);
        float4 a = u.even, b = u.odd, c = v.even, e = v.odd, gv = vload4(0, g + ox);
        float4 m = fmax(fmax(a, b), fmax(c, e));
        int4 sa = a == m, sb = (b == m) & ~sa, sc = (c == m) & ~(sa | sb), se = ~(sa | sb | sc);
        float4 z = 0.0f;
        float4 ga = select(z, gv, sa), gb = select(z, gv, sb), gc = select(z, gv, sc), ge = select(z, gv, se);
        vstore8((float8)(ga.s0, gb.s0, ga.s1, gb.s1, ga.s2, gb.s2, ga.s3, gb.s3), 0, d0 + 2 * ox);
        vstore8((float8)(gc.s0, ge.s0, gc.s1, ge.s1, gc.s2, ge.s2, gc.s3, ge.s3), 0, d1 + 2 * ox);
    }
    for (; ox < ow; ox++) {
        float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], e = r1[2 * ox + 1], gv = g[ox];
        int k = 0;
        float m = a;
        if (b > m) { m = b; k = 1; }
        if (c > m) { m = c; k = 2; }
        if (e > m) { k = 3; }
        d0[2 * ox] = k == 0 ? gv : 0.0f;
        d0[2 * ox + 1] = k == 1 ? gv : 0.0f;
        d1[2 * ox] = k == 2 ? gv : 0.0f;
        d1[2 * ox + 1] = k == 3 ? gv : 0.0f;
    }
    if (2 * ow < w) { d0[w - 1] = 0.0f; d1[w - 1] = 0.0f; }
    if (oy == oh - 1 && 2 * oh < h) {
        __global float *dl = dx + dx_off + ((size_t)pl * h + h - 1) * w;
        for (int k = 0; k < w; k++) dl[k] = 0.0f;
    }
}

/* ---- GPU style (device-only mode and non-CPU devices) ----
 * One work-item per output element (forward) or input element (backward, a
 * gather) on (width, height, planes) ranges: neighbouring work-items touch
 * neighbouring columns.  Same window rules and tie order as above. */

/* range (ow, oh, nc) */
__kernel void lc_gpu_maxpool_fwd(__global float *y, ulong y_off, __global const float *x, ulong x_off, int nc, int h,
                                 int w, int kh, int kw, int sh, int sw, int pt, int pl, int oh, int ow)
{
    int ox = get_global_id(0), oy = get_global_id(1), p = get_global_id(2);
    if (ox >= ow || oy >= oh || p >= nc) return;
    __global const float *xp = x + x_off + (size_t)p * h * w;
    y[y_off + ((size_t)p * oh + oy) * ow + ox] = xp[lc_window_argmax(xp, h, w, oy * sh - pt, ox * sw - pl, kh, kw)];
}

/* dx = the sum of dy over the windows whose first maximum is this element;
 * range (w, h, nc) */
__kernel void lc_gpu_maxpool_bwd(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off,
                                 __global const float *x, ulong x_off, int nc, int h, int w, int kh, int kw, int sh,
                                 int sw, int pt, int pl, int oh, int ow)
{
    int ix = get_global_id(0), iy = get_global_id(1), p = get_global_id(2);
    if (ix >= w || iy >= h || p >= nc) return;
    __global const float *xp = x + x_off + (size_t)p * h * w;
    __global const float *g = dy + dy_off + (size_t)p * oh * ow;
    int me = iy * w + ix;
    int oy0 = lc_win_lo(iy + pt, kh, sh), oy1 = lc_win_hi(iy + pt, sh, oh);
    int ox0 = lc_win_lo(ix + pl, kw, sw), ox1 = lc_win_hi(ix + pl, sw, ow);
    float s = 0.0f;
    for (int oy = oy0; oy <= oy1; oy++)
        for (int ox = ox0; ox <= ox1; ox++)
            if (lc_window_argmax(xp, h, w, oy * sh - pt, ox * sw - pl, kh, kw) == me) s += g[oy * ow + ox];
    dx[dx_off + (size_t)p * h * w + me] = s;
}

/* The same when the windows tile the input (stride == window): one
 * work-item per window writes its kh x kw inputs (the first maximum gets
 * dy, the others 0); the last column's and row's work-items also clear the
 * inputs no window covers.  Range (ow, oh, nc). */
__kernel void lc_gpu_maxpool_bwd_tiled(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off,
                                       __global const float *x, ulong x_off, int nc, int h, int w, int kh, int kw,
                                       int oh, int ow)
{
    int ox = get_global_id(0), oy = get_global_id(1), pl = get_global_id(2);
    if (ox >= ow || oy >= oh || pl >= nc) return;
    __global const float *xp = x + x_off + (size_t)pl * h * w;
    __global float *d = dx + dx_off + (size_t)pl * h * w;
    int best = lc_window_argmax(xp, h, w, oy * kh, ox * kw, kh, kw);
    float gv = dy[dy_off + ((size_t)pl * oh + oy) * ow + ox];
    for (int a = 0; a < kh; a++)
        for (int b = 0; b < kw; b++) {
            int k = (oy * kh + a) * w + ox * kw + b;
            d[k] = k == best ? gv : 0.0f;
        }
    int y1 = oy == oh - 1 ? h : (oy + 1) * kh; /* rows this work-item clears right of the windows */
    if (ox == ow - 1)
        for (int a = oy * kh; a < y1; a++)
            for (int b = ow * kw; b < w; b++) d[a * w + b] = 0.0f;
    if (oy == oh - 1) /* below the windows, under this window's columns */
        for (int a = oh * kh; a < h; a++)
            for (int b = ox * kw; b < ox * kw + kw; b++) d[a * w + b] = 0.0f;
}

/* 2x2 windows with stride 2 (the common case) in straight-line code, one
 * work-item per window; range (ow, oh, nc).  The forward writes the maximum;
 * the backward gives the window's first maximum (row-major, as
 * lc_window_argmax) its dy and the other three 0, and the last column's and
 * row's work-items clear the uncovered last column / row. */
__kernel void lc_gpu_maxpool2_fwd(__global float *y, ulong y_off, __global const float *x, ulong x_off, int nc, int h,
                                  int w, int oh, int ow)
{
    int ox = get_global_id(0), oy = get_global_id(1), pl = get_global_id(2);
    if (ox >= ow || oy >= oh || pl >= nc) return;
    __global const float *r0 = x + x_off + ((size_t)pl * h + 2 * oy) * w + 2 * ox, *r1 = r0 + w;
    y[y_off + ((size_t)pl * oh + oy) * ow + ox] = fmax(fmax(r0[0], r0[1]), fmax(r1[0], r1[1]));
}

__kernel void lc_gpu_maxpool2_bwd(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off,
                                  __global const float *x, ulong x_off, int nc, int h, int w, int oh, int ow)
{
    int ox = get_global_id(0), oy = get_global_id(1), pl = get_global_id(2);
    if (ox >= ow || oy >= oh || pl >= nc) return;
    size_t o = ((size_t)pl * h + 2 * oy) * w + 2 * ox;
    __global const float *r0 = x + x_off + o, *r1 = r0 + w;
    __global float *d0 = dx + dx_off + o, *d1 = d0 + w;
    float a = r0[0], b = r0[1], c = r1[0], e = r1[1], gv = dy[dy_off + ((size_t)pl * oh + oy) * ow + ox];
    float m = fmax(fmax(a, b), fmax(c, e));
    bool sa = a == m, sb = !sa && b == m, sc = !sa && !sb && c == m, se = !sa && !sb && !sc;
    d0[0] = sa ? gv : 0.0f;
    d0[1] = sb ? gv : 0.0f;
    d1[0] = sc ? gv : 0.0f;
    d1[1] = se ? gv : 0.0f;
    if (ox == ow - 1 && 2 * ow < w) { d0[2] = 0.0f; d1[2] = 0.0f; }
    if (oy == oh - 1 && 2 * oh < h) {
        __global float *dl = d1 + w; /* the last row, under this window (and the corner) */
        dl[0] = 0.0f;
        dl[1] = 0.0f;
        if (ox == ow - 1 && 2 * ow < w) dl[2] = 0.0f;
    }
}

/* range (ow, oh, nc) */
__kernel void lc_gpu_avgpool_fwd(__global float *y, ulong y_off, __global const float *x, ulong x_off, int nc, int h,
                                 int w, int kh, int kw, int sh, int sw, int pt, int pl, int oh, int ow, int incl)
{
    int ox = get_global_id(0), oy = get_global_id(1), p = get_global_id(2);
    if (ox >= ow || oy >= oh || p >= nc) return;
    __global const float *xp = x + x_off + (size_t)p * h * w;
    y[y_off + ((size_t)p * oh + oy) * ow + ox] = lc_window_avg(xp, h, w, oy * sh - pt, ox * sw - pl, kh, kw, incl);
}

/* range (w, h, nc) */
__kernel void lc_gpu_avgpool_bwd(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off, int nc,
                                 int h, int w, int kh, int kw, int sh, int sw, int pt, int pl, int oh, int ow, int incl)
{
    int ix = get_global_id(0), iy = get_global_id(1), p = get_global_id(2);
    if (ix >= w || iy >= h || p >= nc) return;
    __global const float *g = dy + dy_off + (size_t)p * oh * ow;
    dx[dx_off + ((size_t)p * h + iy) * w + ix] = lc_avg_grad(g, h, w, iy, ix, kh, kw, sh, sw, pt, pl, oh, ow, incl);
}

/* dx[plane, p] = dy[plane] / hw; range (hw, nc) */
__kernel void lc_gpu_gap_bwd(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off, int nc, int hw)
{
    int p = get_global_id(0), pl = get_global_id(1);
    if (p >= hw || pl >= nc) return;
    dx[dx_off + (size_t)pl * hw + p] = dy[dy_off + pl] / (float)hw;
}

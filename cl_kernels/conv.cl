/* conv2d through im2col + GEMM (the GEMMs are CLBlast calls made by the
 * executor).  Layouts: activations NCHW, weights [cout, cin, kh, kw].  A
 * chunk of nc examples is processed at once: col[K, nc*oh*ow] with
 * K = cin*kh*kw and column j = n*oh*ow + oy*ow + ox; the GEMM output is
 * channel-major [cout, nc*oh*ow] and is scattered to NCHW.  Padding: pt rows
 * on top and pl columns on the left; the bottom/right padding is implied by
 * oh, ow.  Offsets are in floats, 64-bit (ulong), and so is every flat
 * index into a chunk or a batch (more than 2^31 floats is possible); the
 * per-example sizes (cin, h, w, ...) are ints.
 *
 * Each work-item handles one row (or one plane) with a plain loop: on PoCL
 * this avoids per-element integer divisions, which dominated the
 * one-work-item-per-element versions (10x slower on a 2-core CPU). */

/* col[k, j] = x[n, ci, oy*sh - pt + ki, ox*sw - pl + kj] (0 outside); one
 * work-item per (output row n*oh + oy, k) writes the row's ow values */
__kernel void lc_im2col(__global float *col, ulong col_off, __global const float *x, ulong x_off, int nc, int cin,
                        int h, int w, int kh, int kw, int sh, int sw, int pt, int pl, int oh, int ow)
{
    int row = get_global_id(0), k = get_global_id(1);
    if (row >= nc * oh || k >= cin * kh * kw) return;
    int n = row / oh, oy = row - n * oh;
    int ci = k / (kh * kw), r = k - ci * kh * kw, ki = r / kw, kj = r - ki * kw;
    int iy = oy * sh - pt + ki;
    __global float *dst = col + col_off + (size_t)k * ((size_t)nc * oh * ow) + (size_t)row * ow;
    if (iy < 0 || iy >= h) {
        for (int ox = 0; ox < ow; ox++) dst[ox] = 0.0f;
        return;
    }
    __global const float *src = x + x_off + (((size_t)n * cin + ci) * h + iy) * w;
    int ix = kj - pl;
    for (int ox = 0; ox < ow; ox++, ix += sw) dst[ox] = ix >= 0 && ix < w ? src[ix] : 0.0f;
}

/* first and last output index (along one axis) whose window, starting at
 * o*s - pad, covers input position i: o*s - pad <= i <= o*s - pad + k - 1 */
static int lc_cover_lo(int i, int k, int s, int pad)
{
    int t = i + pad - k + 1;
    return t <= 0 ? 0 : (t + s - 1) / s;
}
static int lc_cover_hi(int i, int s, int pad, int o)
{
    int t = i + pad;
    if (t < 0) return -1;
    t /= s;
    return t < o - 1 ? t : o - 1;
}

/* dx[n, ci, iy, ix] = sum of the col entries that im2col read from it; one
 * work-item per input row (n, ci, iy) */
__kernel void lc_col2im(__global float *dx, ulong dx_off, __global const float *col, ulong col_off, int nc,
                        int cin, int h, int w, int kh, int kw, int sh, int sw, int pt, int pl, int oh, int ow)
{
    int row = get_global_id(0);
    if (row >= nc * cin * h) return;
    int iy = row % h, t = row / h, ci = t % cin, n = t / cin;
    int ohw = oh * ow;
    size_t cols = (size_t)nc * ohw;
    int oy0 = lc_cover_lo(iy, kh, sh, pt), oy1 = lc_cover_hi(iy, sh, pt, oh);
    __global const float *cb = col + col_off + (size_t)ci * kh * kw * cols + (size_t)n * ohw;
    __global float *d = dx + dx_off + (size_t)row * w;
    for (int ix = 0; ix < w; ix++) {
        int ox0 = lc_cover_lo(ix, kw, sw, pl), ox1 = lc_cover_hi(ix, sw, pl, ow);
        float s = 0.0f;
        for (int oy = oy0; oy <= oy1; oy++) {
            int ki = iy + pt - oy * sh;
            for (int ox = ox0; ox <= ox1; ox++) {
                int kj = ix + pl - ox * sw;
                s += cb[(ki * kw + kj) * cols + oy * ow + ox];
            }
        }
        d[ix] = s;
    }
}

/* y[n, ch, :] = t[ch, n*hw : n*hw + hw] (+ b[ch]): channel-major chunk to
 * NCHW, one work-item per plane (n, ch) */
__kernel void lc_cn_to_nc(__global float *y, ulong y_off, __global const float *t, ulong t_off,
                          __global const float *b, ulong b_off, int has_bias, int nc, int c, int hw)
{
    int pl = get_global_id(0);
    if (pl >= nc * c) return;
    int n = pl / c, ch = pl - n * c;
    float bv = has_bias ? b[b_off + ch] : 0.0f;
    __global float *d = y + y_off + (size_t)pl * hw;
    __global const float *s = t + t_off + ((size_t)ch * nc + n) * hw;
    for (int p = 0; p < hw; p++) d[p] = s[p] + bv;
}

/* t[ch, n*hw + p] = y[n, ch, p]: NCHW chunk to channel-major */
__kernel void lc_nc_to_cn(__global float *t, ulong t_off, __global const float *y, ulong y_off, int nc, int c,
                          int hw)
{
    int pl = get_global_id(0);
    if (pl >= nc * c) return;
    int n = pl / c, ch = pl - n * c;
    __global float *d = t + t_off + ((size_t)ch * nc + n) * hw;
    __global const float *s = y + y_off + (size_t)pl * hw;
    for (int p = 0; p < hw; p++) d[p] = s[p];
}

/* y[n, ch, :] += b[ch] over the planes = n*c planes of hw */
__kernel void lc_channel_bias(__global float *y, ulong y_off, __global const float *b, ulong b_off, int c, int hw,
                              int planes)
{
    int pl = get_global_id(0);
    if (pl >= planes) return;
    float bv = b[b_off + pl % c];
    __global float *d = y + y_off + (size_t)pl * hw;
    for (int p = 0; p < hw; p++) d[p] += bv;
}

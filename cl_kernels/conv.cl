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

/* y[n, ch, :] = t[ch, n*hw : n*hw + hw] (+ b[ch]) (then max(., 0) when relu:
 * a fused ReLU): channel-major chunk to NCHW, one work-item per plane (n, ch) */
__kernel void lc_cn_to_nc(__global float *y, ulong y_off, __global const float *t, ulong t_off,
                          __global const float *b, ulong b_off, int has_bias, int relu, int nc, int c, int hw)
{
    int pl = get_global_id(0);
    if (pl >= nc * c) return;
    int n = pl / c, ch = pl - n * c;
    float bv = has_bias ? b[b_off + ch] : 0.0f;
    __global float *d = y + y_off + (size_t)pl * hw;
    __global const float *s = t + t_off + ((size_t)ch * nc + n) * hw;
    if (relu)
        for (int p = 0; p < hw; p++) d[p] = fmax(s[p] + bv, 0.0f);
    else
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

/* y[n, ch, :] += b[ch] (when has_bias; then max(., 0) when relu) over the
 * planes = n*c planes of hw */
__kernel void lc_channel_bias(__global float *y, ulong y_off, __global const float *b, ulong b_off, int has_bias,
                              int relu, int c, int hw, int planes)
{
    int pl = get_global_id(0);
    if (pl >= planes) return;
    float bv = has_bias ? b[b_off + pl % c] : 0.0f;
    __global float *d = y + y_off + (size_t)pl * hw;
    if (relu)
        for (int p = 0; p < hw; p++) d[p] = fmax(d[p] + bv, 0.0f);
    else
        for (int p = 0; p < hw; p++) d[p] += bv;
}

/* ---- GPU style (device-only mode and non-CPU devices) ----
 * One work-item per output element, on 3-D ranges whose dimension 0 runs
 * along memory (the pixels of a plane), so neighbouring work-items read and
 * write neighbouring floats (coalesced) and a work-item does at most a few
 * integer divisions.  Every kernel guards its range: any work-group size
 * the device allows works, and global sizes may be rounded up. */

/* col[k, n*ohw + p] = x[n, ci, oy*sh - pt + ki, ox*sw - pl + kj] (0 outside),
 * p = oy*ow + ox, k = (ci*kh + ki)*kw + kj; range (oh*ow, nc, cin): a
 * work-item writes the kh*kw rows of its column for its input channel, each
 * store contiguous across dimension 0 (one division per work-item) */
__kernel void lc_gpu_im2col(__global float *col, ulong col_off, __global const float *x, ulong x_off, int nc,
                            int cin, int h, int w, int kh, int kw, int sh, int sw, int pt, int pl, int oh, int ow)
{
    int p = get_global_id(0), n = get_global_id(1), ci = get_global_id(2);
    int ohw = oh * ow;
    if (p >= ohw || n >= nc || ci >= cin) return;
    int oy = p / ow, ox = p - oy * ow;
    size_t cols = (size_t)nc * ohw;
    __global float *dst = col + col_off + (size_t)ci * kh * kw * cols + (size_t)n * ohw + p;
    __global const float *src = x + x_off + ((size_t)n * cin + ci) * ((size_t)h * w);
    int iy0 = oy * sh - pt, ix0 = ox * sw - pl;
    for (int ki = 0; ki < kh; ki++) {
        int iy = iy0 + ki;
        bool row = iy >= 0 && iy < h;
        for (int kj = 0; kj < kw; kj++, dst += cols) {
            int ix = ix0 + kj;
            *dst = row && ix >= 0 && ix < w ? src[iy * w + ix] : 0.0f;
        }
    }
}

/* dx[n, ci, iy, ix] = the sum of the col entries im2col read from it (a
 * gather, in the order of lc_col2im: no atomics); range (h*w, nc, cin) */
__kernel void lc_gpu_col2im(__global float *dx, ulong dx_off, __global const float *col, ulong col_off, int nc,
                            int cin, int h, int w, int kh, int kw, int sh, int sw, int pt, int pl, int oh, int ow)
{
    int p = get_global_id(0), n = get_global_id(1), ci = get_global_id(2);
    if (p >= h * w || n >= nc || ci >= cin) return;
    int iy = p / w, ix = p - iy * w, ohw = oh * ow;
    size_t cols = (size_t)nc * ohw;
    int oy0 = lc_cover_lo(iy, kh, sh, pt), oy1 = lc_cover_hi(iy, sh, pt, oh);
    int ox0 = lc_cover_lo(ix, kw, sw, pl), ox1 = lc_cover_hi(ix, sw, pl, ow);
    __global const float *cb = col + col_off + (size_t)ci * kh * kw * cols + (size_t)n * ohw;
    float s = 0.0f;
    for (int oy = oy0; oy <= oy1; oy++) {
        int ki = iy + pt - oy * sh;
        for (int ox = ox0; ox <= ox1; ox++) {
            int kj = ix + pl - ox * sw;
            s += cb[(size_t)(ki * kw + kj) * cols + oy * ow + ox];
        }
    }
    dx[dx_off + ((size_t)n * cin + ci) * ((size_t)h * w) + p] = s;
}

/* y[n, ch, p] = t[ch, n*hw + p] (+ b[ch]) (then max(., 0) when relu);
 * range (hw, c, nc): the writes are contiguous along dimensions 0 and 1 */
__kernel void lc_gpu_cn_to_nc(__global float *y, ulong y_off, __global const float *t, ulong t_off,
                              __global const float *b, ulong b_off, int has_bias, int relu, int nc, int c, int hw)
{
    int p = get_global_id(0), ch = get_global_id(1), n = get_global_id(2);
    if (p >= hw || ch >= c || n >= nc) return;
    float v = t[t_off + ((size_t)ch * nc + n) * hw + p];
    if (has_bias) v += b[b_off + ch];
    if (relu) v = fmax(v, 0.0f);
    y[y_off + ((size_t)n * c + ch) * hw + p] = v;
}

/* t[ch, n*hw + p] = y[n, ch, p]; range (hw, nc, c): the writes are
 * contiguous along dimensions 0 and 1 */
__kernel void lc_gpu_nc_to_cn(__global float *t, ulong t_off, __global const float *y, ulong y_off, int nc, int c,
                              int hw)
{
    int p = get_global_id(0), n = get_global_id(1), ch = get_global_id(2);
    if (p >= hw || n >= nc || ch >= c) return;
    t[t_off + ((size_t)ch * nc + n) * hw + p] = y[y_off + ((size_t)n * c + ch) * hw + p];
}

/* y[n, ch, p] += b[ch] (when has_bias; then max(., 0) when relu); range
 * (hw, c, nb) */
__kernel void lc_gpu_channel_bias(__global float *y, ulong y_off, __global const float *b, ulong b_off, int has_bias,
                                  int relu, int nb, int c, int hw)
{
    int p = get_global_id(0), ch = get_global_id(1), n = get_global_id(2);
    if (p >= hw || ch >= c || n >= nb) return;
    size_t e = y_off + ((size_t)n * c + ch) * hw + p;
    float v = y[e];
    if (has_bias) v += b[b_off + ch];
    if (relu) v = fmax(v, 0.0f);
    y[e] = v;
}

/* dw[i] = (acc ? dw[i] : 0) + part[i] + part[count + i] + ... (slices
 * partial sums in order: a split-K weight gradient's reduction, the same
 * on every run); range count */
__kernel void lc_gpu_sum_slices(__global float *dw, ulong dw_off, __global const float *part, ulong part_off,
                                ulong count, int slices, int acc)
{
    size_t i = get_global_id(0);
    if (i >= count) return;
    float s = acc ? dw[dw_off + i] : 0.0f;
    __global const float *q = part + part_off + i;
    for (int k = 0; k < slices; k++) s += q[(size_t)k * count];
    dw[dw_off + i] = s;
}

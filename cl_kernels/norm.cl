/* Batch normalisation per channel over N and H*W (hw = 1 after a dense
 * layer), NCHW; and per-channel sums for bias gradients.
 * stats[0..c) = mean, stats[c..2c) = 1/sqrt(var + eps): written by the
 * forward (batch statistics in training, running ones in evaluation) and read
 * by the backward.  Reductions: one work-group of LC_RED_WG work-items per
 * channel, LC_RED_WG a power of two the executor chooses within the
 * device's and the kernel's limits.  Offsets are 64-bit (ulong), and so is
 * every index past a plane, and the count of a channel's n * hw elements. */
#ifndef LC_RED_WG
#define LC_RED_WG LC_RED_WG_CPU
#endif

/* tree sum of red[0..LC_RED_WG) seen by every work-item */
static float lc_wg_sum(__local float *red, float v)
{
    int t = get_local_id(0);
    red[t] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = LC_RED_WG / 2; s > 0; s >>= 1) {
        if (t < s) red[t] += red[t + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* Loop of work-item t over its share of the n*hw elements of channel ch:
 * a contiguous range of the channel's elements (planes of hw in order),
 * walked plane segment by plane segment, 8 at a time with float8 loads and a
 * scalar tail (PoCL does not vectorise across work-items around a loop, so
 * the vectors are explicit).  BODY8 sees the float8 offset e8 (from the
 * tensor start), BODY1 the scalar offset e; both accumulate into float8
 * accumulators, folded by lc_hsum8. */
#define LC_CHANNEL_RANGE(BODY8, BODY1)                                         \
    {                                                                          \
        long total_ = (long)n * hw, per_ = (total_ + LC_RED_WG - 1) / LC_RED_WG; \
        per_ = (per_ + 7) & ~7L;                                               \
        long i_ = t * per_, end_ = min(total_, i_ + per_);                     \
        while (i_ < end_) {                                                    \
            long ni_ = i_ / hw;                                                \
            int p_ = (int)(i_ - ni_ * hw);                                     \
            int seg_ = (int)min(end_ - i_, (long)(hw - p_));                   \
            size_t base_ = ((size_t)ni_ * c + ch) * hw + p_;                   \
            int k_ = 0;                                                        \
            for (; k_ + 8 <= seg_; k_ += 8) {                                  \
                size_t e8 = base_ + k_;                                        \
                BODY8                                                          \
            }                                                                  \
            for (; k_ < seg_; k_++) {                                          \
                size_t e = base_ + k_;                                         \
                BODY1                                                          \
            }                                                                  \
            i_ += seg_;                                                        \
        }                                                                      \
    }

static float lc_hsum8(float8 v)
{
    float4 a = v.lo + v.hi;
    float2 b = a.lo + a.hi;
    return b.x + b.y;
}

/* training: batch mean and biased variance (two passes), running update
 * (Keras: running = momentum * running + (1 - momentum) * batch) */
__kernel __attribute__((reqd_work_group_size(LC_RED_WG, 1, 1)))
void lc_bn_stats(__global float *stats, ulong s_off, __global float *rm, ulong rm_off, __global float *rv, ulong rv_off,
                 __global const float *x, ulong x_off, int n, int c, int hw, float eps, float momentum)
{
    __local float red[LC_RED_WG];
    int ch = get_group_id(0), t = get_local_id(0);
    float m = (float)((long)n * hw);
    __global const float *xb = x + x_off;
    float8 s8 = 0.0f;
    LC_CHANNEL_RANGE(s8 += vload8(0, xb + e8);, s8.s0 += xb[e];)
    float mean = lc_wg_sum(red, lc_hsum8(s8)) / m;
    float8 v8 = 0.0f;
    LC_CHANNEL_RANGE(float8 d = vload8(0, xb + e8) - mean; v8 = fma(d, d, v8);,
                     float d = xb[e] - mean; v8.s0 = fma(d, d, v8.s0);)
    float var = lc_wg_sum(red, lc_hsum8(v8)) / m;
    if (t == 0) {
        stats[s_off + ch] = mean;
        stats[s_off + c + ch] = rsqrt(var + eps);
        rm[rm_off + ch] = momentum * rm[rm_off + ch] + (1.0f - momentum) * mean;
        rv[rv_off + ch] = momentum * rv[rv_off + ch] + (1.0f - momentum) * var;
    }
}

/* evaluation: the running statistics */
__kernel void lc_bn_stats_eval(__global float *stats, ulong s_off, __global const float *rm, ulong rm_off,
                               __global const float *rv, ulong rv_off, int c, float eps)
{
    int ch = get_global_id(0);
    if (ch >= c) return;
    stats[s_off + ch] = rm[rm_off + ch];
    stats[s_off + c + ch] = rsqrt(rv[rv_off + ch] + eps);
}

/* y = (x - mean) / std * gamma + beta (then max(., 0) when relu: a fused
 * ReLU); one work-item per plane */
__kernel void lc_bn_apply(__global float *y, ulong y_off, __global const float *x, ulong x_off,
                          __global const float *stats, ulong s_off, __global const float *gm, ulong g_off,
                          __global const float *bt, ulong b_off, int affine, int relu, int c, int hw, int planes)
{
    int pl = get_global_id(0);
    if (pl >= planes) return;
    int ch = pl % c;
    float mean = stats[s_off + ch], inv = stats[s_off + c + ch];
    float a = affine ? inv * gm[g_off + ch] : inv, b = affine ? bt[b_off + ch] : 0.0f;
    __global const float *xs = x + x_off + (size_t)pl * hw;
    __global float *d = y + y_off + (size_t)pl * hw;
    int p = 0;
    if (relu) {
        for (; p + 8 <= hw; p += 8) vstore8(fmax(fma(vload8(0, xs + p) - mean, a, b), 0.0f), 0, d + p);
        for (; p < hw; p++) d[p] = fmax(fma(xs[p] - mean, a, b), 0.0f);
    } else {
        for (; p + 8 <= hw; p += 8) vstore8(fma(vload8(0, xs + p) - mean, a, b), 0, d + p);
        for (; p < hw; p++) d[p] = fma(xs[p] - mean, a, b);
    }
}

/* sums[ch] = sum dy, sums[c + ch] = sum dy * xhat */
__kernel __attribute__((reqd_work_group_size(LC_RED_WG, 1, 1)))
void lc_bn_bwd_sums(__global float *sums, ulong u_off, __global const float *dy, ulong dy_off, __global const float *x,
                    ulong x_off, __global const float *stats, ulong s_off, int n, int c, int hw)
{
    __local float red[LC_RED_WG];
    int ch = get_group_id(0), t = get_local_id(0);
    float mean = stats[s_off + ch], inv = stats[s_off + c + ch];
    __global const float *gb = dy + dy_off, *xb = x + x_off;
    float8 a8 = 0.0f, b8 = 0.0f;
    LC_CHANNEL_RANGE(float8 d = vload8(0, gb + e8); a8 += d; b8 = fma(d, vload8(0, xb + e8) - mean, b8);,
                     float d = gb[e]; a8.s0 += d; b8.s0 = fma(d, xb[e] - mean, b8.s0);)
    float a = lc_wg_sum(red, lc_hsum8(a8));
    float b = lc_wg_sum(red, lc_hsum8(b8)) * inv;
    if (t == 0) {
        sums[u_off + ch] = a;
        sums[u_off + c + ch] = b;
    }
}

/* training: dx = gamma/std/m * (m dy - sum dy - xhat sum(dy xhat)); one
 * work-item per plane */
__kernel void lc_bn_bwd_dx(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off,
                           __global const float *x, ulong x_off, __global const float *stats, ulong s_off,
                           __global const float *sums, ulong u_off, __global const float *gm, ulong g_off, int affine,
                           int n, int c, int hw)
{
    int pl = get_global_id(0);
    if (pl >= n * c) return;
    int ch = pl % c;
    float m = (float)((long)n * hw), mean = stats[s_off + ch], inv = stats[s_off + c + ch];
    float k = (affine ? gm[g_off + ch] : 1.0f) * inv / m;
    float s1 = sums[u_off + ch], s2 = sums[u_off + c + ch];
    __global const float *g = dy + dy_off + (size_t)pl * hw, *xs = x + x_off + (size_t)pl * hw;
    __global float *d = dx + dx_off + (size_t)pl * hw;
    /* in this order a single element per channel (m = 1) gives exactly 0 */
    float q = inv * s2;
    int p = 0;
    for (; p + 8 <= hw; p += 8)
        vstore8(k * (m * vload8(0, g + p) - s1 - (vload8(0, xs + p) - mean) * q), 0, d + p);
    for (; p < hw; p++) d[p] = k * (m * g[p] - s1 - (xs[p] - mean) * q);
}

/* evaluation (fixed statistics): dx = dy * gamma / std */
__kernel void lc_bn_bwd_dx_eval(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off,
                                __global const float *stats, ulong s_off, __global const float *gm, ulong g_off,
                                int affine, int c, int hw, int planes)
{
    int pl = get_global_id(0);
    if (pl >= planes) return;
    int ch = pl % c;
    float k = (affine ? gm[g_off + ch] : 1.0f) * stats[s_off + c + ch];
    __global const float *g = dy + dy_off + (size_t)pl * hw;
    __global float *d = dx + dx_off + (size_t)pl * hw;
    int p = 0;
    for (; p + 8 <= hw; p += 8) vstore8(vload8(0, g + p) * k, 0, d + p);
    for (; p < hw; p++) d[p] = g[p] * k;
}

/* dgamma[ch] = sum dy * xhat */
__kernel __attribute__((reqd_work_group_size(LC_RED_WG, 1, 1)))
void lc_bn_dgamma(__global float *dg, ulong dg_off, __global const float *dy, ulong dy_off, __global const float *x,
                  ulong x_off, __global const float *stats, ulong s_off, int n, int c, int hw)
{
    __local float red[LC_RED_WG];
    int ch = get_group_id(0), t = get_local_id(0);
    float mean = stats[s_off + ch], inv = stats[s_off + c + ch];
    __global const float *gb = dy + dy_off, *xb = x + x_off;
    float8 b8 = 0.0f;
    LC_CHANNEL_RANGE(b8 = fma(vload8(0, gb + e8), vload8(0, xb + e8) - mean, b8);,
                     b8.s0 = fma(gb[e], xb[e] - mean, b8.s0);)
    float b = lc_wg_sum(red, lc_hsum8(b8)) * inv;
    if (t == 0) dg[dg_off + ch] = b;
}

/* db[ch] = sum over n and hw of dy[n, ch, hw] (conv bias, batchnorm beta) */
__kernel __attribute__((reqd_work_group_size(LC_RED_WG, 1, 1)))
void lc_channel_sum(__global float *db, ulong db_off, __global const float *dy, ulong dy_off, int n, int c, int hw)
{
    __local float red[LC_RED_WG];
    int ch = get_group_id(0), t = get_local_id(0);
    __global const float *gb = dy + dy_off;
    float8 a8 = 0.0f;
    LC_CHANNEL_RANGE(a8 += vload8(0, gb + e8);, a8.s0 += gb[e];)
    float a = lc_wg_sum(red, lc_hsum8(a8));
    if (get_local_id(0) == 0) db[db_off + ch] = a;
}

/* dst[i] = src[skip + i] for i < count (a batchnorm's dgamma and dbeta
 * taken from the sums its input gradient already formed) */
__kernel void lc_copy_floats(__global float *dst, ulong dst_off, __global const float *src, ulong src_off, int skip,
                             int count)
{
    int i = get_global_id(0);
    if (i < count) dst[dst_off + i] = src[src_off + skip + i];
}

/* ---- GPU style (device-only mode and non-CPU devices) ----
 * Per-channel reductions in two launches: a (parts, channels) grid of
 * work-groups of LC_RED_WG work-items, group s of a channel reducing the
 * planes [s n / parts, (s + 1) n / parts) into partial results, then one
 * work-item per channel combining its parts in order (the same result on
 * every run, no atomics).  Within a group, coalesced strided loops: the
 * group is split into LC_RED_WG / P teams of P lanes (P the power of two at
 * or above hw, at most LC_RED_WG); team g takes planes n0 + g, n0 + g +
 * teams, ... and lane l of a team reads the plane's elements l, l + P, ...,
 * so neighbouring work-items read neighbouring floats.  BODY sees the
 * element's offset e from the tensor start.  Elementwise kernels: one
 * work-item per element on a (hw, c, n) range. */
#define LC_GPU_CHANNEL_LOOP(BODY)                                              \
    {                                                                          \
        int P_ = 1;                                                            \
        while (P_ < hw && P_ < LC_RED_WG) P_ <<= 1;                            \
        int teams_ = LC_RED_WG / P_, lane_ = t & (P_ - 1), team_ = t / P_;     \
        for (int ni_ = n0 + team_; ni_ < n1; ni_ += teams_) {                  \
            size_t base_ = ((size_t)ni_ * c + ch) * hw;                        \
            for (int p_ = lane_; p_ < hw; p_ += P_) {                          \
                size_t e = base_ + p_;                                         \
                BODY                                                           \
            }                                                                  \
        }                                                                      \
    }

/* the planes of part s of parts over n */
static int lc_part_lo(int s, int n, int parts) { return (int)((long)s * n / parts); }

/* Partial results live at part + p_off + skip (skip: past what the block
 * holds first, e.g. a batchnorm's statistics).
 * part[2 (ch parts + s)] = the mean of the part's elements, [.. + 1] =
 * the sum of their squared deviations from it (two passes over the part) */
__kernel __attribute__((reqd_work_group_size(LC_RED_WG, 1, 1)))
void lc_gpu_bn_part(__global float *part, ulong p_off, int skip, __global const float *x, ulong x_off, int n, int c,
                    int hw, int parts)
{
    __local float red[LC_RED_WG];
    int s = get_group_id(0), ch = get_group_id(1), t = get_local_id(0);
    int n0 = lc_part_lo(s, n, parts), n1 = lc_part_lo(s + 1, n, parts);
    float cnt = (float)((n1 - n0) * hw);
    __global const float *xb = x + x_off;
    float a = 0.0f;
    LC_GPU_CHANNEL_LOOP(a += xb[e];)
    float mean = cnt > 0.0f ? lc_wg_sum(red, a) / cnt : 0.0f;
    float v = 0.0f;
    LC_GPU_CHANNEL_LOOP(float d = xb[e] - mean; v = fma(d, d, v);)
    v = lc_wg_sum(red, v);
    if (t == 0) {
        size_t q = p_off + skip + 2 * ((size_t)ch * parts + s);
        part[q] = mean;
        part[q + 1] = v;
    }
}

/* training statistics from the parts (Chan et al.'s combination: the mean
 * of the part means weighted by their counts, the variance from the parts'
 * squared deviations plus their means' spread), running update as
 * lc_bn_stats; one work-item per channel */
__kernel void lc_gpu_bn_finish(__global float *stats, ulong s_off, __global float *rm, ulong rm_off, __global float *rv,
                               ulong rv_off, __global const float *part, ulong p_off, int skip, int n, int c, int hw,
                               int parts, float eps, float momentum)
{
    int ch = get_global_id(0);
    if (ch >= c) return;
    __global const float *q = part + p_off + skip + 2 * (size_t)ch * parts;
    float m = (float)(n * hw), mean = 0.0f;
    for (int s = 0; s < parts; s++)
        mean += (float)((lc_part_lo(s + 1, n, parts) - lc_part_lo(s, n, parts)) * hw) * q[2 * s];
    mean /= m;
    float v = 0.0f;
    for (int s = 0; s < parts; s++) {
        float d = q[2 * s] - mean, k = (float)((lc_part_lo(s + 1, n, parts) - lc_part_lo(s, n, parts)) * hw);
        v += q[2 * s + 1] + k * d * d;
    }
    float var = v / m;
    stats[s_off + ch] = mean;
    stats[s_off + c + ch] = rsqrt(var + eps);
    rm[rm_off + ch] = momentum * rm[rm_off + ch] + (1.0f - momentum) * mean;
    rv[rv_off + ch] = momentum * rv[rv_off + ch] + (1.0f - momentum) * var;
}

/* part[2 (ch parts + s)] = sum dy, [.. + 1] = sum dy (x - mean) over the
 * part (with_x; 0 otherwise, and x and stats are not read) */
__kernel __attribute__((reqd_work_group_size(LC_RED_WG, 1, 1)))
void lc_gpu_sums_part(__global float *part, ulong p_off, int skip, __global const float *dy, ulong dy_off,
                      __global const float *x, ulong x_off, __global const float *stats, ulong s_off, int with_x, int n,
                      int c, int hw, int parts)
{
    __local float red[LC_RED_WG];
    int s = get_group_id(0), ch = get_group_id(1), t = get_local_id(0);
    int n0 = lc_part_lo(s, n, parts), n1 = lc_part_lo(s + 1, n, parts);
    __global const float *gb = dy + dy_off, *xb = x + x_off;
    float a = 0.0f, b = 0.0f;
    if (with_x) {
        float mean = stats[s_off + ch];
        LC_GPU_CHANNEL_LOOP(float d = gb[e]; a += d; b = fma(d, xb[e] - mean, b);)
    } else {
        LC_GPU_CHANNEL_LOOP(a += gb[e];)
    }
    a = lc_wg_sum(red, a);
    b = lc_wg_sum(red, b);
    if (t == 0) {
        size_t q = p_off + skip + 2 * ((size_t)ch * parts + s);
        part[q] = a;
        part[q + 1] = b;
    }
}

/* the parts' sums in order: what 0: out[ch] = sum dy (a bias gradient);
 * 1: out[ch] = sum dy * xhat (gamma's gradient); 2: both, out[ch] and
 * out[c + ch] (a batchnorm input gradient's sums); one work-item per
 * channel */
__kernel void lc_gpu_sums_finish(__global float *out, ulong o_off, __global const float *part, ulong p_off, int skip,
                                 __global const float *stats, ulong s_off, int what, int c, int parts)
{
    int ch = get_global_id(0);
    if (ch >= c) return;
    __global const float *q = part + p_off + skip + 2 * (size_t)ch * parts;
    float a = 0.0f, b = 0.0f;
    for (int s = 0; s < parts; s++) {
        a += q[2 * s];
        b += q[2 * s + 1];
    }
    if (what == 0) {
        out[o_off + ch] = a;
        return;
    }
    b *= stats[s_off + c + ch];
    if (what == 1) {
        out[o_off + ch] = b;
        return;
    }
    out[o_off + ch] = a;
    out[o_off + c + ch] = b;
}

/* range (hw, c, n) */
__kernel void lc_gpu_bn_apply(__global float *y, ulong y_off, __global const float *x, ulong x_off,
                              __global const float *stats, ulong s_off, __global const float *gm, ulong g_off,
                              __global const float *bt, ulong b_off, int affine, int relu, int n, int c, int hw)
{
    int p = get_global_id(0), ch = get_global_id(1), ni = get_global_id(2);
    if (p >= hw || ch >= c || ni >= n) return;
    float mean = stats[s_off + ch], inv = stats[s_off + c + ch];
    float a = affine ? inv * gm[g_off + ch] : inv, b = affine ? bt[b_off + ch] : 0.0f;
    size_t e = ((size_t)ni * c + ch) * hw + p;
    float v = fma(x[x_off + e] - mean, a, b);
    y[y_off + e] = relu ? fmax(v, 0.0f) : v;
}

/* range (hw, c, n) */
__kernel void lc_gpu_bn_bwd_dx(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off,
                               __global const float *x, ulong x_off, __global const float *stats, ulong s_off,
                               __global const float *sums, ulong u_off, __global const float *gm, ulong g_off,
                               int affine, int n, int c, int hw)
{
    int p = get_global_id(0), ch = get_global_id(1), ni = get_global_id(2);
    if (p >= hw || ch >= c || ni >= n) return;
    float m = (float)(n * hw), mean = stats[s_off + ch], inv = stats[s_off + c + ch];
    float k = (affine ? gm[g_off + ch] : 1.0f) * inv / m;
    float s1 = sums[u_off + ch], q = inv * sums[u_off + c + ch];
    size_t e = ((size_t)ni * c + ch) * hw + p;
    dx[dx_off + e] = k * (m * dy[dy_off + e] - s1 - (x[x_off + e] - mean) * q);
}

/* range (hw, c, n) */
__kernel void lc_gpu_bn_bwd_dx_eval(__global float *dx, ulong dx_off, __global const float *dy, ulong dy_off,
                                    __global const float *stats, ulong s_off, __global const float *gm, ulong g_off,
                                    int affine, int n, int c, int hw)
{
    int p = get_global_id(0), ch = get_global_id(1), ni = get_global_id(2);
    if (p >= hw || ch >= c || ni >= n) return;
    float k = (affine ? gm[g_off + ch] : 1.0f) * stats[s_off + c + ch];
    size_t e = ((size_t)ni * c + ch) * hw + p;
    dx[dx_off + e] = dy[dy_off + e] * k;
}


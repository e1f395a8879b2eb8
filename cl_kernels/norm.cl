/* Batch normalisation per channel over N and H*W (hw = 1 after a dense
 * layer), NCHW; and per-channel sums for bias gradients.
 * stats[0..c) = mean, stats[c..2c) = 1/sqrt(var + eps): written by the
 * forward (batch statistics in training, running ones in evaluation) and read
 * by the backward.  Reductions: one work-group of LC_RED_WG work-items per
 * channel. */
#ifndef LC_RED_WG
#define LC_RED_WG 64
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

/* Loop of work-item t over the n*hw elements of channel ch: nested loops
 * when a plane fills the work-group (no divisions), a flat index otherwise.
 * BODY sees e, the element's offset from the tensor start. */
#define LC_CHANNEL_LOOP(BODY)                                                  \
    if (hw >= LC_RED_WG) {                                                     \
        for (int ni = 0; ni < n; ni++)                                         \
            for (int p = t; p < hw; p += LC_RED_WG) {                          \
                int e = (ni * c + ch) * hw + p;                                \
                BODY                                                           \
            }                                                                  \
    } else {                                                                   \
        for (int i = t; i < n * hw; i += LC_RED_WG) {                          \
            int ni = i / hw, e = (ni * c + ch) * hw + (i - ni * hw);           \
            BODY                                                               \
        }                                                                      \
    }

/* training: batch mean and biased variance (two passes), running update
 * (Keras: running = momentum * running + (1 - momentum) * batch) */
__kernel __attribute__((reqd_work_group_size(LC_RED_WG, 1, 1)))
void lc_bn_stats(__global float *stats, int s_off, __global float *rm, int rm_off, __global float *rv, int rv_off,
                 __global const float *x, int x_off, int n, int c, int hw, float eps, float momentum)
{
    __local float red[LC_RED_WG];
    int ch = get_group_id(0), t = get_local_id(0), m = n * hw;
    __global const float *xb = x + x_off;
    float s = 0.0f;
    LC_CHANNEL_LOOP(s += xb[e];)
    float mean = lc_wg_sum(red, s) / (float)m;
    float v = 0.0f;
    LC_CHANNEL_LOOP(float d = xb[e] - mean; v += d * d;)
    float var = lc_wg_sum(red, v) / (float)m;
    if (t == 0) {
        stats[s_off + ch] = mean;
        stats[s_off + c + ch] = rsqrt(var + eps);
        rm[rm_off + ch] = momentum * rm[rm_off + ch] + (1.0f - momentum) * mean;
        rv[rv_off + ch] = momentum * rv[rv_off + ch] + (1.0f - momentum) * var;
    }
}

/* evaluation: the running statistics */
__kernel void lc_bn_stats_eval(__global float *stats, int s_off, __global const float *rm, int rm_off,
                               __global const float *rv, int rv_off, int c, float eps)
{
    int ch = get_global_id(0);
    if (ch >= c) return;
    stats[s_off + ch] = rm[rm_off + ch];
    stats[s_off + c + ch] = rsqrt(rv[rv_off + ch] + eps);
}

/* y = (x - mean) / std * gamma + beta; one work-item per plane */
__kernel void lc_bn_apply(__global float *y, int y_off, __global const float *x, int x_off,
                          __global const float *stats, int s_off, __global const float *gm, int g_off,
                          __global const float *bt, int b_off, int affine, int c, int hw, int planes)
{
    int pl = get_global_id(0);
    if (pl >= planes) return;
    int ch = pl % c;
    float mean = stats[s_off + ch], inv = stats[s_off + c + ch];
    float a = affine ? inv * gm[g_off + ch] : inv, b = affine ? bt[b_off + ch] : 0.0f;
    __global const float *xs = x + x_off + pl * hw;
    __global float *d = y + y_off + pl * hw;
    for (int p = 0; p < hw; p++) d[p] = (xs[p] - mean) * a + b;
}

/* sums[ch] = sum dy, sums[c + ch] = sum dy * xhat */
__kernel __attribute__((reqd_work_group_size(LC_RED_WG, 1, 1)))
void lc_bn_bwd_sums(__global float *sums, int u_off, __global const float *dy, int dy_off, __global const float *x,
                    int x_off, __global const float *stats, int s_off, int n, int c, int hw)
{
    __local float red[LC_RED_WG];
    int ch = get_group_id(0), t = get_local_id(0);
    float mean = stats[s_off + ch], inv = stats[s_off + c + ch];
    __global const float *gb = dy + dy_off, *xb = x + x_off;
    float a = 0.0f, b = 0.0f;
    LC_CHANNEL_LOOP(float d = gb[e]; a += d; b += d * (xb[e] - mean) * inv;)
    a = lc_wg_sum(red, a);
    b = lc_wg_sum(red, b);
    if (t == 0) {
        sums[u_off + ch] = a;
        sums[u_off + c + ch] = b;
    }
}

/* training: dx = gamma/std/m * (m dy - sum dy - xhat sum(dy xhat)); one
 * work-item per plane */
__kernel void lc_bn_bwd_dx(__global float *dx, int dx_off, __global const float *dy, int dy_off,
                           __global const float *x, int x_off, __global const float *stats, int s_off,
                           __global const float *sums, int u_off, __global const float *gm, int g_off, int affine,
                           int n, int c, int hw)
{
    int pl = get_global_id(0);
    if (pl >= n * c) return;
    int ch = pl % c;
    float m = (float)(n * hw), mean = stats[s_off + ch], inv = stats[s_off + c + ch];
    float k = (affine ? gm[g_off + ch] : 1.0f) * inv / m;
    float s1 = sums[u_off + ch], s2 = sums[u_off + c + ch];
    __global const float *g = dy + dy_off + pl * hw, *xs = x + x_off + pl * hw;
    __global float *d = dx + dx_off + pl * hw;
    for (int p = 0; p < hw; p++) d[p] = k * (m * g[p] - s1 - (xs[p] - mean) * inv * s2);
}

/* evaluation (fixed statistics): dx = dy * gamma / std */
__kernel void lc_bn_bwd_dx_eval(__global float *dx, int dx_off, __global const float *dy, int dy_off,
                                __global const float *stats, int s_off, __global const float *gm, int g_off,
                                int affine, int c, int hw, int planes)
{
    int pl = get_global_id(0);
    if (pl >= planes) return;
    int ch = pl % c;
    float k = (affine ? gm[g_off + ch] : 1.0f) * stats[s_off + c + ch];
    __global const float *g = dy + dy_off + pl * hw;
    __global float *d = dx + dx_off + pl * hw;
    for (int p = 0; p < hw; p++) d[p] = g[p] * k;
}

/* dgamma[ch] = sum dy * xhat */
__kernel __attribute__((reqd_work_group_size(LC_RED_WG, 1, 1)))
void lc_bn_dgamma(__global float *dg, int dg_off, __global const float *dy, int dy_off, __global const float *x,
                  int x_off, __global const float *stats, int s_off, int n, int c, int hw)
{
    __local float red[LC_RED_WG];
    int ch = get_group_id(0), t = get_local_id(0);
    float mean = stats[s_off + ch], inv = stats[s_off + c + ch];
    __global const float *gb = dy + dy_off, *xb = x + x_off;
    float b = 0.0f;
    LC_CHANNEL_LOOP(b += gb[e] * (xb[e] - mean) * inv;)
    b = lc_wg_sum(red, b);
    if (t == 0) dg[dg_off + ch] = b;
}

/* db[ch] = sum over n and hw of dy[n, ch, hw] (conv bias, batchnorm beta) */
__kernel __attribute__((reqd_work_group_size(LC_RED_WG, 1, 1)))
void lc_channel_sum(__global float *db, int db_off, __global const float *dy, int dy_off, int n, int c, int hw)
{
    __local float red[LC_RED_WG];
    int ch = get_group_id(0), t = get_local_id(0);
    __global const float *gb = dy + dy_off;
    float a = 0.0f;
    LC_CHANNEL_LOOP(a += gb[e];)
    a = lc_wg_sum(red, a);
    if (get_local_id(0) == 0) db[db_off + ch] = a;
}

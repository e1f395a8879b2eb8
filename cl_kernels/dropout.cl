/* Inverted dropout with a counter-based mask: element i of a launch is kept
 * when the top 24 bits of mix64(key + (i + 1) * golden) are >= thr
 * (thr = floor(rate * 2^24)); kept elements are scaled by 1/(1 - rate).
 * key is set by the executor before each replay from (seed, step, node), so
 * the backward recomputes the forward's mask and nothing is stored.  The host
 * twin is lc_dropout_keep in src/exec.  Offsets, counts and indices are
 * 64-bit. */

static ulong lc_mix64(ulong z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}

static bool lc_keep(ulong key, ulong i, uint thr)
{
    return (uint)(lc_mix64(key + (i + 1) * 0x9E3779B97F4A7C15UL) >> 40) >= thr;
}

/* y = keep ? x * scale : 0 (used for the forward and, on dy, the backward) */
__kernel void lc_dropout(__global float *y, ulong y_off, __global const float *x, ulong x_off, ulong n, ulong key,
                         uint thr, float scale)
{
    size_t i = get_global_id(0);
    if (i < n) y[y_off + i] = lc_keep(key, i, thr) ? x[x_off + i] * scale : 0.0f;
}

__kernel void lc_copy(__global float *y, ulong y_off, __global const float *x, ulong x_off, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n) y[y_off + i] = x[x_off + i];
}

/* Device probe: a program that uses the OpenCL C features layca's kernels
 * rely on (64-bit offsets and indices, float16/float8 vector loads and
 * stores, a fixed work-group size with local memory and barriers, long4
 * tables, select/isfinite/fma/rsqrt/exp/log, FP_CONTRACT OFF, no fp64).  The
 * runtime builds it on each candidate device (src/rt/device.c): a device that
 * cannot is not chosen by default, and an explicitly chosen one fails with
 * the build log.  It is never launched. */
#pragma OPENCL FP_CONTRACT OFF

#ifndef LC_PROBE_WG
#define LC_PROBE_WG 16
#endif

__kernel __attribute__((reqd_work_group_size(LC_PROBE_WG, 1, 1)))
void lc_probe(__global float *y, ulong y_off, __global const float *x, ulong x_off, ulong n,
              __global const long4 *table, __global float *sums)
{
    __local float red[LC_PROBE_WG];
    size_t i = get_global_id(0);
    int t = (int)get_local_id(0);
    long4 e = table[get_group_id(0)];
    __global const float *xs = x + x_off + (size_t)e.x;
    float v = 0.0f;
    if ((ulong)i * 16 + 16 <= n) {
        float16 a = vload16(0, xs + i * 16);
        float16 b = select((float16)0.0f, a, isfinite(a));
        vstore16(fma(b, b, (float16)1.0f), 0, y + y_off + i * 16);
        float8 c = b.lo + b.hi;
        v = c.s0 + c.s7;
    }
    red[t] = rsqrt(exp(v) + 1.0f) + log(2.0f);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = LC_PROBE_WG / 2; s > 0; s >>= 1) {
        if (t < s) red[t] += red[t + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (t == 0) sums[get_group_id(0)] = red[0];
}

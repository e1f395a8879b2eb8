/* Microbenchmarks for layca-bench: copy bandwidth and launch latency. */

__kernel void lc_bench_copy(__global float4 *dst, __global const float4 *src, int n4)
{
    int i = get_global_id(0);
    if (i < n4) dst[i] = src[i];
}

__kernel void lc_bench_empty(__global float *x)
{
    if (get_global_id(0) == 0x7fffffff) x[0] = 1.0f;
}

/* Buffers, kernel arguments and launches. */
#include "lc_rt_internal.h"

#include <stdio.h>

lc_status lc_rt_alloc(lc_rt *rt, size_t bytes, cl_mem *out)
{
    if (!rt || !out) return LC_ERR(LC_ERR_INVALID, "lc_rt_alloc: NULL argument");
    *out = NULL;
    if (bytes == 0) return LC_ERR(LC_ERR_INVALID, "lc_rt_alloc: zero-byte buffer");
    if (rt->info.max_alloc_bytes && (uint64_t)bytes > rt->info.max_alloc_bytes)
        return LC_ERR(LC_ERR_DEVICE, "lc_rt_alloc: %zu bytes is more than the device's largest allocation (%llu bytes)",
                      bytes, (unsigned long long)rt->info.max_alloc_bytes);
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(rt->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS || !m) {
        lc_status st = lc_rt_check(err != CL_SUCCESS ? err : CL_MEM_OBJECT_ALLOCATION_FAILURE, "clCreateBuffer");
        return lc_error_prefix(st, "allocating %zu bytes", bytes);
    }
    *out = m;
    return LC_OK;
}

lc_status lc_rt_write(lc_rt *rt, cl_mem buf, size_t offset_bytes, size_t bytes, const void *src)
{
    if (!rt || !buf || (!src && bytes)) return LC_ERR(LC_ERR_INVALID, "lc_rt_write: NULL argument");
    if (bytes == 0) return LC_OK;
    cl_int err = clEnqueueWriteBuffer(rt->queue, buf, CL_TRUE, offset_bytes, bytes, src, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return lc_error_prefix(lc_rt_check(err, "clEnqueueWriteBuffer"), "writing %zu bytes at offset %zu", bytes,
                               offset_bytes);
    return LC_OK;
}

lc_status lc_rt_read(lc_rt *rt, cl_mem buf, size_t offset_bytes, size_t bytes, void *dst)
{
    if (!rt || !buf || (!dst && bytes)) return LC_ERR(LC_ERR_INVALID, "lc_rt_read: NULL argument");
    if (bytes == 0) return LC_OK;
    cl_int err = clEnqueueReadBuffer(rt->queue, buf, CL_TRUE, offset_bytes, bytes, dst, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return lc_error_prefix(lc_rt_check(err, "clEnqueueReadBuffer"), "reading %zu bytes at offset %zu", bytes,
                               offset_bytes);
    return LC_OK;
}

lc_status lc_rt_fill_zero(lc_rt *rt, cl_mem buf, size_t offset_bytes, size_t bytes)
{
    if (!rt || !buf) return LC_ERR(LC_ERR_INVALID, "lc_rt_fill_zero: NULL argument");
    if (bytes == 0) return LC_OK;
    static const uint32_t zero4 = 0;
    /* The pattern size must divide both the offset and the size. */
    size_t pat = (offset_bytes % 4 == 0 && bytes % 4 == 0) ? 4 : 1;
    cl_int err = clEnqueueFillBuffer(rt->queue, buf, &zero4, pat, offset_bytes, bytes, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return lc_error_prefix(lc_rt_check(err, "clEnqueueFillBuffer"), "zeroing %zu bytes at offset %zu", bytes,
                               offset_bytes);
    return LC_OK;
}

lc_status lc_rt_finish(lc_rt *rt)
{
    if (!rt) return LC_ERR(LC_ERR_INVALID, "lc_rt_finish: NULL rt");
    return lc_rt_check(clFinish(rt->queue), "clFinish");
}

lc_status lc_rt_set_args(cl_kernel k, const lc_arg *args, int n, const char *what)
{
    if (!k || (n > 0 && !args)) return LC_ERR(LC_ERR_INVALID, "lc_rt_set_args: NULL argument");
    for (int i = 0; i < n; i++) {
        cl_int err = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].ptr);
        if (err != CL_SUCCESS)
            return lc_error_prefix(lc_rt_check(err, "clSetKernelArg"), "%s: argument %d (%zu bytes)",
                                   what ? what : "kernel", i, args[i].size);
    }
    return LC_OK;
}

lc_status lc_rt_launch(lc_rt *rt, cl_kernel k, int dims, const size_t *global, const size_t *local,
                       const char *what)
{
    if (!rt || !k || !global) return LC_ERR(LC_ERR_INVALID, "lc_rt_launch: NULL argument");
    if (dims < 1 || dims > 3) return LC_ERR(LC_ERR_INVALID, "lc_rt_launch %s: %d dimensions", what ? what : "", dims);
    size_t g[3] = {1, 1, 1};
    for (int d = 0; d < dims; d++) {
        if (global[d] == 0) return LC_OK; /* nothing to do */
        g[d] = global[d];
        if (local) {
            if (local[d] == 0)
                return LC_ERR(LC_ERR_INVALID, "lc_rt_launch %s: local size 0 in dimension %d", what ? what : "", d);
            g[d] = (g[d] + local[d] - 1) / local[d] * local[d];
        }
    }
    cl_int err = clEnqueueNDRangeKernel(rt->queue, k, (cl_uint)dims, NULL, g, local, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        char sizes[160];
        if (dims == 1)
            snprintf(sizes, sizeof sizes, "global %zu local %zu", g[0], local ? local[0] : 0);
        else if (dims == 2)
            snprintf(sizes, sizeof sizes, "global %zux%zu local %zux%zu", g[0], g[1], local ? local[0] : 0,
                     local ? local[1] : 0);
        else
            snprintf(sizes, sizeof sizes, "global %zux%zux%zu local %zux%zux%zu", g[0], g[1], g[2],
                     local ? local[0] : 0, local ? local[1] : 0, local ? local[2] : 0);
        return lc_error_prefix(lc_rt_check(err, "clEnqueueNDRangeKernel"), "%s (%s)", what ? what : "kernel", sizes);
    }
    return LC_OK;
}

/* Buffers, kernel arguments and launches. */
#include "lc_rt_internal.h"

#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

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

uint64_t lc_rt_sub_buffer_start(const lc_rt *rt, uint64_t origin_bytes)
{
    uint64_t a = rt->info.mem_base_align ? rt->info.mem_base_align : 4096;
    return origin_bytes / a * a;
}

lc_status lc_rt_sub_buffer(lc_rt *rt, cl_mem parent, uint64_t origin_bytes, cl_mem *out, uint64_t *shift_bytes)
{
    if (!rt || !parent || !out || !shift_bytes) return LC_ERR(LC_ERR_INVALID, "lc_rt_sub_buffer: NULL argument");
    *out = NULL;
    size_t size = 0;
    LC_TRY(lc_rt_check(clGetMemObjectInfo(parent, CL_MEM_SIZE, sizeof size, &size, NULL), "clGetMemObjectInfo"));
    uint64_t start = lc_rt_sub_buffer_start(rt, origin_bytes);
    if (origin_bytes >= size)
        return LC_ERR(LC_ERR_INVALID, "lc_rt_sub_buffer: origin %llu is past the buffer's %zu bytes",
                      (unsigned long long)origin_bytes, size);
    cl_buffer_region region = {(size_t)start, size - (size_t)start};
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateSubBuffer(parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
    if (err != CL_SUCCESS || !m)
        return lc_error_prefix(lc_rt_check(err != CL_SUCCESS ? err : CL_INVALID_VALUE, "clCreateSubBuffer"),
                               "sub-buffer at byte %llu (alignment %u) of %zu", (unsigned long long)start,
                               rt->info.mem_base_align, size);
    *out = m;
    *shift_bytes = origin_bytes - start;
    return LC_OK;
}

lc_status lc_rt_copy(lc_rt *rt, cl_mem dst, size_t dst_off, cl_mem src, size_t src_off, size_t bytes)
{
    if (!rt || !dst || !src) return LC_ERR(LC_ERR_INVALID, "lc_rt_copy: NULL argument");
    if (bytes == 0) return LC_OK;
    cl_int err = clEnqueueCopyBuffer(rt->queue, src, dst, src_off, dst_off, bytes, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return lc_error_prefix(lc_rt_check(err, "clEnqueueCopyBuffer"), "copying %zu bytes", bytes);
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
    if (!k) return LC_ERR(LC_ERR_INVALID, "lc_rt_set_args: NULL argument");
    cl_uint want = 0;
    LC_TRY(lc_rt_check(clGetKernelInfo(k, CL_KERNEL_NUM_ARGS, sizeof want, &want, NULL), "clGetKernelInfo"));
    if ((cl_uint)n != want)
        return LC_ERR(LC_ERR_INVALID, "%s: %d arguments given, the kernel takes %u", what ? what : "kernel", n, want);
    return lc_rt_reset_args(k, args, n, what);
}

lc_status lc_rt_reset_args(cl_kernel k, const lc_arg *args, int n, const char *what)
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

/* ---- memory limits of a plan ---- */

/* "1.55 GiB" style sizes */
static void human(char *out, size_t cap, uint64_t b)
{
    if (b >= ((uint64_t)1 << 30)) snprintf(out, cap, "%.2f GiB", (double)b / (double)((uint64_t)1 << 30));
    else if (b >= ((uint64_t)1 << 20)) snprintf(out, cap, "%.1f MiB", (double)b / (double)((uint64_t)1 << 20));
    else snprintf(out, cap, "%.1f KiB", (double)b / 1024.0);
}

/* Bytes the process has mapped (field 0 of /proc/self/statm) and its data
 * segment (field 5), 0 when unknown. */
static void process_mapped(uint64_t *vm, uint64_t *data)
{
    *vm = *data = 0;
#ifdef __linux__
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return;
    unsigned long long size = 0, res = 0, shared = 0, text = 0, lib = 0, dat = 0;
    if (fscanf(f, "%llu %llu %llu %llu %llu %llu", &size, &res, &shared, &text, &lib, &dat) == 6) {
        long page = sysconf(_SC_PAGESIZE);
        if (page > 0) {
            *vm = size * (uint64_t)page;
            *data = dat * (uint64_t)page;
        }
    }
    fclose(f);
#endif
}

void lc_rt_memory_limits(const lc_rt *rt, uint64_t *global_bytes, uint64_t *max_alloc_bytes, char *why, size_t cap)
{
    uint64_t g = rt->info.global_mem_bytes, a = rt->info.max_alloc_bytes;
    if (why && cap) snprintf(why, cap, "as the device reports");
    /* a CPU device whose buffers live in host memory allocates them in this
     * process: they must also fit what the process may still map */
    if ((rt->info.type & CL_DEVICE_TYPE_CPU) && rt->info.host_unified_memory) {
        uint64_t vm, data;
        process_mapped(&vm, &data);
        static const struct { int res; const char *name; } lims[] = {{RLIMIT_AS, "RLIMIT_AS"},
                                                                       {RLIMIT_DATA, "RLIMIT_DATA"}};
        for (size_t i = 0; i < LC_COUNTOF(lims); i++) {
            struct rlimit rl;
            if (getrlimit(lims[i].res, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) continue;
            uint64_t used = lims[i].res == RLIMIT_AS ? vm : data;
            uint64_t left = (uint64_t)rl.rlim_cur > used ? (uint64_t)rl.rlim_cur - used : 0;
            if (left < g) {
                g = left;
                if (why && cap) {
                    char lim[32], u[32];
                    human(lim, sizeof lim, (uint64_t)rl.rlim_cur);
                    human(u, sizeof u, used);
                    snprintf(why, cap, "the device's buffers live in this process, whose %s of %s leaves that much "
                             "beside the %s it has mapped", lims[i].name, lim, u);
                }
            }
            if (left < a) a = left;
        }
    }
    if (a > g) a = g;
    if (global_bytes) *global_bytes = g;
    if (max_alloc_bytes) *max_alloc_bytes = a;
}

lc_status lc_rt_check_plan(const lc_rt *rt, const char *what, uint64_t total_bytes, uint64_t largest_bytes,
                           const char *detail)
{
    uint64_t g = 0, a = 0;
    char why[256];
    lc_rt_memory_limits(rt, &g, &a, why, sizeof why);
    bool unknown_g = g == 0, unknown_a = a == 0; /* a device that reports nothing is not judged */
    if ((unknown_g || total_bytes <= g) && (unknown_a || largest_bytes <= a)) return LC_OK;
    char ht[32], hl[32], hg[32], ha[32];
    human(ht, sizeof ht, total_bytes);
    human(hl, sizeof hl, largest_bytes);
    human(hg, sizeof hg, g);
    human(ha, sizeof ha, a);
    return LC_ERR(LC_ERR_DEVICE,
                  "%s needs %llu bytes (%s%s%s) of device memory with a largest buffer of %llu bytes (%s), but device "
                  "%d:%d %s has %llu bytes (%s) of global memory and a largest allocation of %llu bytes (%s) (%s); "
                  "nothing was allocated (use a smaller batch or model)",
                  what ? what : "the plan", (unsigned long long)total_bytes, ht, detail && *detail ? ": " : "",
                  detail ? detail : "", (unsigned long long)largest_bytes, hl, rt->info.platform, rt->info.device,
                  rt->info.name, (unsigned long long)g, hg, (unsigned long long)a, ha, why);
}

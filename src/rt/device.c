/* OpenCL error names, device enumeration, device choice, context/queue. */
#include "lc_rt_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ---- */

const char *lc_rt_cl_error_name(cl_int err)
{
    switch (err) {
    case 0: return "CL_SUCCESS";
    case -1: return "CL_DEVICE_NOT_FOUND";
    case -2: return "CL_DEVICE_NOT_AVAILABLE";
    case -3: return "CL_COMPILER_NOT_AVAILABLE";
    case -4: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case -5: return "CL_OUT_OF_RESOURCES";
    case -6: return "CL_OUT_OF_HOST_MEMORY";
    case -7: return "CL_PROFILING_INFO_NOT_AVAILABLE";
    case -8: return "CL_MEM_COPY_OVERLAP";
    case -9: return "CL_IMAGE_FORMAT_MISMATCH";
    case -10: return "CL_IMAGE_FORMAT_NOT_SUPPORTED";
    case -11: return "CL_BUILD_PROGRAM_FAILURE";
    case -12: return "CL_MAP_FAILURE";
    case -13: return "CL_MISALIGNED_SUB_BUFFER_OFFSET";
    case -14: return "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST";
    case -15: return "CL_COMPILE_PROGRAM_FAILURE";
    case -16: return "CL_LINKER_NOT_AVAILABLE";
    case -17: return "CL_LINK_PROGRAM_FAILURE";
    case -18: return "CL_DEVICE_PARTITION_FAILED";
    case -19: return "CL_KERNEL_ARG_INFO_NOT_AVAILABLE";
    case -30: return "CL_INVALID_VALUE";
    case -31: return "CL_INVALID_DEVICE_TYPE";
    case -32: return "CL_INVALID_PLATFORM";
    case -33: return "CL_INVALID_DEVICE";
    case -34: return "CL_INVALID_CONTEXT";
    case -35: return "CL_INVALID_QUEUE_PROPERTIES";
    case -36: return "CL_INVALID_COMMAND_QUEUE";
    case -37: return "CL_INVALID_HOST_PTR";
    case -38: return "CL_INVALID_MEM_OBJECT";
    case -39: return "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR";
    case -40: return "CL_INVALID_IMAGE_SIZE";
    case -41: return "CL_INVALID_SAMPLER";
    case -42: return "CL_INVALID_BINARY";
    case -43: return "CL_INVALID_BUILD_OPTIONS";
    case -44: return "CL_INVALID_PROGRAM";
    case -45: return "CL_INVALID_PROGRAM_EXECUTABLE";
    case -46: return "CL_INVALID_KERNEL_NAME";
    case -47: return "CL_INVALID_KERNEL_DEFINITION";
    case -48: return "CL_INVALID_KERNEL";
    case -49: return "CL_INVALID_ARG_INDEX";
    case -50: return "CL_INVALID_ARG_VALUE";
    case -51: return "CL_INVALID_ARG_SIZE";
    case -52: return "CL_INVALID_KERNEL_ARGS";
    case -53: return "CL_INVALID_WORK_DIMENSION";
    case -54: return "CL_INVALID_WORK_GROUP_SIZE";
    case -55: return "CL_INVALID_WORK_ITEM_SIZE";
    case -56: return "CL_INVALID_GLOBAL_OFFSET";
    case -57: return "CL_INVALID_EVENT_WAIT_LIST";
    case -58: return "CL_INVALID_EVENT";
    case -59: return "CL_INVALID_OPERATION";
    case -60: return "CL_INVALID_GL_OBJECT";
    case -61: return "CL_INVALID_BUFFER_SIZE";
    case -62: return "CL_INVALID_MIP_LEVEL";
    case -63: return "CL_INVALID_GLOBAL_WORK_SIZE";
    case -64: return "CL_INVALID_PROPERTY";
    case -65: return "CL_INVALID_IMAGE_DESCRIPTOR";
    case -66: return "CL_INVALID_COMPILER_OPTIONS";
    case -67: return "CL_INVALID_LINKER_OPTIONS";
    case -68: return "CL_INVALID_DEVICE_PARTITION_COUNT";
    case -69: return "CL_INVALID_PIPE_SIZE";
    case -70: return "CL_INVALID_DEVICE_QUEUE";
    case -71: return "CL_INVALID_SPEC_ID";
    case -72: return "CL_MAX_SIZE_RESTRICTION_EXCEEDED";
    case -1000: return "CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    case -1057: return "CL_DEVICE_PARTITION_FAILED_EXT";
    case -1058: return "CL_INVALID_PARTITION_COUNT_EXT";
    case -1059: return "CL_INVALID_PARTITION_NAME_EXT";
    }
    return "CL_UNKNOWN_ERROR";
}

lc_status lc_rt_check(cl_int err, const char *call)
{
    if (err == CL_SUCCESS) return LC_OK;
    return LC_ERR(LC_ERR_DEVICE, "%s failed: %s (%d)", call ? call : "OpenCL call", lc_rt_cl_error_name(err),
                  (int)err);
}

const char *lc_rt_device_type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return "GPU";
    if (t & CL_DEVICE_TYPE_CPU) return "CPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "ACCELERATOR";
    if (t & CL_DEVICE_TYPE_CUSTOM) return "CUSTOM";
    if (t & CL_DEVICE_TYPE_DEFAULT) return "DEFAULT";
    return "OTHER";
}

bool lc_rt_loop_workgroups(const lc_device_info *d)
{
    return (d->type & CL_DEVICE_TYPE_CPU) && strstr(d->platform_name, "Portable Computing Language") != NULL;
}

/* ---- enumeration ---- */

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    size_t i = 0;
    while (s[i] && isspace((unsigned char)s[i])) i++;
    if (i) memmove(s, s + i, n - i + 1);
}

static void device_string(cl_device_id d, cl_device_info what, char *out, size_t cap)
{
    out[0] = 0;
    if (clGetDeviceInfo(d, what, cap, out, NULL) != CL_SUCCESS) out[0] = 0;
    out[cap - 1] = 0;
    trim(out);
}

static void platform_string(cl_platform_id p, cl_platform_info what, char *out, size_t cap)
{
    out[0] = 0;
    if (clGetPlatformInfo(p, what, cap, out, NULL) != CL_SUCCESS) out[0] = 0;
    out[cap - 1] = 0;
    trim(out);
}

static void fill_info(lc_device_info *di, int pi, int dj, cl_platform_id p, cl_device_id d)
{
    memset(di, 0, sizeof *di);
    di->platform = pi;
    di->device = dj;
    device_string(d, CL_DEVICE_NAME, di->name, sizeof di->name);
    device_string(d, CL_DEVICE_VENDOR, di->vendor, sizeof di->vendor);
    device_string(d, CL_DRIVER_VERSION, di->driver_version, sizeof di->driver_version);
    platform_string(p, CL_PLATFORM_NAME, di->platform_name, sizeof di->platform_name);
    platform_string(p, CL_PLATFORM_VERSION, di->platform_version, sizeof di->platform_version);
    cl_device_type t = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL) == CL_SUCCESS) di->type = t;
    cl_ulong u = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof u, &u, NULL) == CL_SUCCESS)
        di->global_mem_bytes = (uint64_t)u;
    u = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof u, &u, NULL) == CL_SUCCESS)
        di->max_alloc_bytes = (uint64_t)u;
    cl_uint cu = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL) == CL_SUCCESS)
        di->compute_units = (uint32_t)cu;
    size_t wg = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL) == CL_SUCCESS)
        di->max_work_group = wg;
    size_t items[3] = {0, 0, 0};
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof items, items, NULL) == CL_SUCCESS)
        di->max_work_item0 = items[0];
    if (di->max_work_item0 == 0) di->max_work_item0 = di->max_work_group;
    cl_uint align_bits = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits, NULL) == CL_SUCCESS)
        di->mem_base_align = align_bits / 8;
    if (di->mem_base_align < 4) di->mem_base_align = 4096; /* unknown: a generous guess */
    cl_device_fp_config fp = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp, &fp, NULL) == CL_SUCCESS)
        di->fp64 = fp != 0;
    cl_bool b = CL_FALSE;
    if (clGetDeviceInfo(d, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof b, &b, NULL) == CL_SUCCESS)
        di->host_unified_memory = b == CL_TRUE;
    b = CL_FALSE;
    if (clGetDeviceInfo(d, CL_DEVICE_COMPILER_AVAILABLE, sizeof b, &b, NULL) == CL_SUCCESS)
        di->compiler_available = b == CL_TRUE;
    device_string(d, CL_DEVICE_OPENCL_C_VERSION, di->opencl_c_version, sizeof di->opencl_c_version);
}

bool lc_rt_opencl_c_at_least(const char *version, int major, int minor)
{
    static const char prefix[] = "OpenCL C ";
    if (!version || strncmp(version, prefix, sizeof prefix - 1) != 0) return false;
    const char *p = version + sizeof prefix - 1;
    if (!isdigit((unsigned char)*p)) return false;
    char *end;
    long ma = strtol(p, &end, 10);
    if (*end != '.' || !isdigit((unsigned char)end[1])) return false;
    long mi = strtol(end + 1, &end, 10);
    return ma > major || (ma == major && mi >= minor);
}

/* Enumerates everything; optionally also returns the platform/device ids in
 * the same order (arrays malloc'ed). */
static lc_status enumerate(lc_device_info **out, cl_platform_id **plats_out, cl_device_id **devs_out, int *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (plats_out) *plats_out = NULL;
    if (devs_out) *devs_out = NULL;

    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR: no ICD installed */ || (err == CL_SUCCESS && np == 0))
        return LC_OK;
    LC_TRY(lc_rt_check(err, "clGetPlatformIDs"));
    cl_platform_id *plats = calloc(np, sizeof *plats);
    if (!plats) return LC_ERR(LC_ERR_NOMEM, "out of memory listing OpenCL platforms");
    err = clGetPlatformIDs(np, plats, NULL);
    if (err != CL_SUCCESS) {
        free(plats);
        return lc_rt_check(err, "clGetPlatformIDs");
    }

    lc_device_info *infos = NULL;
    cl_platform_id *pl = NULL;
    cl_device_id *dv = NULL;
    int n = 0, cap = 0;
    lc_status st = LC_OK;
    for (cl_uint pi = 0; pi < np && st == LC_OK; pi++) {
        cl_uint nd = 0;
        err = clGetDeviceIDs(plats[pi], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
        if (err != CL_SUCCESS || nd == 0) {
            if (err != CL_SUCCESS && err != CL_DEVICE_NOT_FOUND)
                LC_DEBUG("OpenCL platform %u skipped: clGetDeviceIDs: %s (%d)", pi, lc_rt_cl_error_name(err), err);
            continue;
        }
        cl_device_id *ids = calloc(nd, sizeof *ids);
        if (!ids) { st = LC_ERR(LC_ERR_NOMEM, "out of memory listing OpenCL devices"); break; }
        err = clGetDeviceIDs(plats[pi], CL_DEVICE_TYPE_ALL, nd, ids, NULL);
        if (err != CL_SUCCESS) {
            LC_DEBUG("OpenCL platform %u skipped: clGetDeviceIDs: %s (%d)", pi, lc_rt_cl_error_name(err), err);
            free(ids);
            continue;
        }
        for (cl_uint dj = 0; dj < nd; dj++) {
            if (n == cap) {
                int nc = cap ? cap * 2 : 8;
                lc_device_info *ni = realloc(infos, (size_t)nc * sizeof *ni);
                if (ni) infos = ni;
                cl_platform_id *np2 = ni ? realloc(pl, (size_t)nc * sizeof *np2) : NULL;
                if (np2) pl = np2;
                cl_device_id *nd2 = np2 ? realloc(dv, (size_t)nc * sizeof *nd2) : NULL;
                if (nd2) dv = nd2;
                if (!nd2) { st = LC_ERR(LC_ERR_NOMEM, "out of memory listing OpenCL devices"); break; }
                cap = nc;
            }
            fill_info(&infos[n], (int)pi, (int)dj, plats[pi], ids[dj]);
            pl[n] = plats[pi];
            dv[n] = ids[dj];
            n++;
        }
        free(ids);
    }
    free(plats);
    if (st != LC_OK) {
        free(infos); free(pl); free(dv);
        return st;
    }
    *out = infos;
    *n_out = n;
    if (plats_out) *plats_out = pl; else free(pl);
    if (devs_out) *devs_out = dv; else free(dv);
    return LC_OK;
}

lc_status lc_rt_list_devices(lc_device_info **out, int *n)
{
    if (!out || !n) return LC_ERR(LC_ERR_INVALID, "lc_rt_list_devices: NULL argument");
    return enumerate(out, NULL, NULL, n);
}

/* ---- choice ---- */

static int contains_nocase(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    if (nl == 0) return 1;
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < nl && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == nl) return 1;
    }
    return 0;
}

/* "P:D" with both parts decimal integers. */
static int parse_index(const char *s, int *p, int *d)
{
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10);
    if (end == s || *end != ':' || errno) return 0;
    const char *s2 = end + 1;
    if (!isdigit((unsigned char)*s2)) return 0;
    long b = strtol(s2, &end, 10);
    if (*end != 0 || errno || a < 0 || b < 0 || a > 1 << 20 || b > 1 << 20) return 0;
    *p = (int)a;
    *d = (int)b;
    return 1;
}

static lc_status no_match(const char *sel, const char *origin, const lc_device_info *infos, int n)
{
    char list[768];
    size_t pos = 0;
    list[0] = 0;
    for (int i = 0; i < n && pos < sizeof list; i++) {
        int w = snprintf(list + pos, sizeof list - pos, "%s%d:%d %s (%s, %s)", i ? "; " : "", infos[i].platform,
                         infos[i].device, infos[i].name, lc_rt_device_type_name(infos[i].type),
                         infos[i].platform_name);
        if (w < 0) break;
        pos += (size_t)w;
    }
    return LC_ERR(LC_ERR_NOT_FOUND, "no OpenCL device matches %s'%s'; available: %s", origin, sel, list);
}

/* The explicitly selected device (opts' selector), or -1 in *pick when none
 * is given (the default choice). */
static lc_status choose_explicit(const lc_rt_opts *o, const lc_device_info *infos, int n, int *pick)
{
    *pick = -1;
    const char *selector = o->selector;
    char origin[64] = "";
    if (o->selector_source && *o->selector_source) snprintf(origin, sizeof origin, "%s=", o->selector_source);
    if (!selector || !*selector) return LC_OK;
    int p, d;
    if (parse_index(selector, &p, &d)) {
        for (int i = 0; i < n; i++)
            if (infos[i].platform == p && infos[i].device == d) { *pick = i; return LC_OK; }
        return no_match(selector, origin, infos, n);
    }
    for (int i = 0; i < n; i++)
        if (contains_nocase(infos[i].name, selector)) { *pick = i; return LC_OK; }
    return no_match(selector, origin, infos, n);
}

/* Why a device cannot run layca's kernels before anything is built on it
 * (NULL: nothing known against it). */
static const char *static_unfit(const lc_device_info *d)
{
    if (!lc_rt_opencl_c_at_least(d->opencl_c_version, 1, 2)) return "OpenCL C older than 1.2";
    if (!d->compiler_available) return "no OpenCL C compiler";
    return NULL;
}

/* Context and queue on the chosen device; the rt is half made on failure
 * (the caller destroys it). */
static lc_status open_device(lc_rt *rt)
{
    cl_int err = CL_SUCCESS;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)rt->platform, 0};
    rt->ctx = clCreateContext(props, 1, &rt->device, NULL, NULL, &err);
    if (err != CL_SUCCESS || !rt->ctx) {
        rt->ctx = NULL;
        lc_status st = lc_rt_check(err != CL_SUCCESS ? err : CL_INVALID_CONTEXT, "clCreateContext");
        return lc_error_prefix(st, "device %d:%d %s", rt->info.platform, rt->info.device, rt->info.name);
    }
    cl_command_queue_properties qp = rt->profiling ? CL_QUEUE_PROFILING_ENABLE : 0;
    rt->queue = clCreateCommandQueue(rt->ctx, rt->device, qp, &err);
    if (err != CL_SUCCESS || !rt->queue) {
        rt->queue = NULL;
        lc_status st = lc_rt_check(err != CL_SUCCESS ? err : CL_INVALID_COMMAND_QUEUE, "clCreateCommandQueue");
        return lc_error_prefix(st, "device %d:%d %s", rt->info.platform, rt->info.device, rt->info.name);
    }
    lc_cache_dir(rt->cache_dir, sizeof rt->cache_dir);
    return LC_OK;
}

/* Builds the probe program (cl_kernels/probe.cl: the OpenCL C features the
 * engine's kernels use); its failure carries the build log. */
static lc_status probe(lc_rt *rt)
{
    const char *why = static_unfit(&rt->info);
    if (why)
        return LC_ERR(LC_ERR_DEVICE, "device %d:%d %s (%s) cannot build layca's kernels: %s", rt->info.platform,
                      rt->info.device, rt->info.name, rt->info.opencl_c_version[0] ? rt->info.opencl_c_version : "?",
                      why);
    lc_status st = lc_rt_probe_build(rt);
    if (st != LC_OK)
        lc_error_prefix(st, "device %d:%d %s cannot build layca's kernels", rt->info.platform, rt->info.device,
                        rt->info.name);
    return st;
}

/* The options that live in the rt past creation: the kernel folder, the
 * host thread count and the GEMM backend (lc_rt.info set). */
static lc_status apply_opts(lc_rt_impl *impl, const lc_rt_opts *o)
{
    lc_rt *rt = &impl->pub;
    if (o->kernel_dir && *o->kernel_dir && !(impl->kernel_dir = strdup(o->kernel_dir)))
        return LC_ERR(LC_ERR_NOMEM, "out of memory creating the OpenCL runtime");
    int n = o->host_threads > 0 ? o->host_threads : rt->info.compute_units > 0 ? (int)rt->info.compute_units : 1;
    impl->host_threads = n > 64 ? 64 : n;
    /* On a host-memory CPU device the host BLAS won every shape of the
     * project's models by 8-20x on PoCL (layca-bench), and timing CLBlast
     * costs a cold compile of its kernels (~6 s): it is the default there,
     * and LC_GEMM_MODE_TIME times both per shape instead. */
    bool host = lc_rt_host_blas_usable(rt);
    impl->gemm_fixed = !host || o->gemm == LC_GEMM_MODE_CLBLAST ? LC_GEMM_CLBLAST
                       : o->gemm == LC_GEMM_MODE_TIME           ? LC_GEMM_AUTO
                                                                : LC_GEMM_HOST;
    return LC_OK;
}

/* Options refused before any device is touched. */
static lc_status check_opts(const lc_rt_opts *o)
{
    if (o->host_threads < 0)
        return LC_ERR(LC_ERR_INVALID, "lc_rt_opts.host_threads is %d; want 0 (the compute units) or more",
                      o->host_threads);
    if (o->gemm < 0 || o->gemm >= LC_GEMM_MODE_COUNT)
        return LC_ERR(LC_ERR_INVALID, "lc_rt_opts.gemm is %d; want an lc_rt_gemm_mode (0 to %d)", o->gemm,
                      LC_GEMM_MODE_COUNT - 1);
    return LC_OK;
}

/* A new rt on device i of the enumeration, opened and probed. */
static lc_status try_device(const lc_rt_opts *o, const lc_device_info *info, cl_platform_id plat, cl_device_id dev,
                            lc_rt **out)
{
    *out = NULL;
    lc_rt_impl *impl = calloc(1, sizeof *impl);
    if (!impl) return LC_ERR(LC_ERR_NOMEM, "out of memory creating the OpenCL runtime");
    lc_rt *rt = &impl->pub;
    rt->info = *info;
    rt->platform = plat;
    rt->device = dev;
    rt->profiling = o->profiling;
    rt->device_only = o->device_only;
    lc_status st = apply_opts(impl, o);
    if (st == LC_OK) st = open_device(rt);
    if (st == LC_OK) st = probe(rt);
    if (st != LC_OK) {
        lc_rt_destroy(rt);
        return st;
    }
    lc_rt_tune_load(rt); /* CLBlast parameters from `layca tune`, if any */
    *out = rt;
    return LC_OK;
}

lc_status lc_rt_select(const lc_rt_opts *opts, lc_device_info *out)
{
    if (!opts || !out) return LC_ERR(LC_ERR_INVALID, "lc_rt_select: NULL argument");
    LC_TRY(check_opts(opts));
    lc_device_info *infos = NULL;
    int n = 0, pick = -1;
    LC_TRY(enumerate(&infos, NULL, NULL, &n));
    lc_status st = n == 0 ? LC_ERR(LC_ERR_DEVICE, "no OpenCL device found; install pocl-opencl-icd for the CPU")
                          : choose_explicit(opts, infos, n, &pick);
    if (st == LC_OK && pick >= 0) *out = infos[pick];
    free(infos);
    if (st != LC_OK || pick >= 0) return st;
    /* the default device: the one lc_rt_create_opts would open */
    lc_rt *rt;
    LC_TRY(lc_rt_create_opts(&rt, opts));
    *out = rt->info;
    lc_rt_destroy(rt);
    return LC_OK;
}

lc_status lc_rt_create_opts(lc_rt **out, const lc_rt_opts *opts)
{
    if (!out || !opts) return LC_ERR(LC_ERR_INVALID, "lc_rt_create_opts: NULL argument");
    *out = NULL;
    LC_TRY(check_opts(opts));
    lc_device_info *infos = NULL;
    cl_platform_id *plats = NULL;
    cl_device_id *devs = NULL;
    int n = 0;
    LC_TRY(enumerate(&infos, &plats, &devs, &n));
    lc_status st = LC_OK;
    int pick = -1;
    if (n == 0) {
        st = LC_ERR(LC_ERR_DEVICE, "no OpenCL device found; install pocl-opencl-icd for the CPU");
        goto done;
    }
    if ((st = choose_explicit(opts, infos, n, &pick)) != LC_OK) goto done;
    if (pick >= 0) {
        st = try_device(opts, &infos[pick], plats[pick], devs[pick], out);
        goto done;
    }
    /* the default: GPUs, then CPUs, then the rest, each in enumeration
     * order; the first that builds the probe wins */
    char reasons[1024];
    size_t pos = 0;
    reasons[0] = 0;
    for (int pass = 0; pass < 3 && !*out; pass++)
        for (int i = 0; i < n && !*out; i++) {
            cl_device_type t = infos[i].type;
            bool gpu = (t & CL_DEVICE_TYPE_GPU) != 0, cpu = !gpu && (t & CL_DEVICE_TYPE_CPU) != 0;
            if ((pass == 0 && !gpu) || (pass == 1 && !cpu) || (pass == 2 && (gpu || cpu))) continue;
            const char *why = static_unfit(&infos[i]);
            lc_status s2 = LC_OK;
            if (!why) {
                s2 = try_device(opts, &infos[i], plats[i], devs[i], out);
                if (s2 == LC_OK) break;
                why = lc_error_message();
            }
            LC_DEBUG("OpenCL device %d:%d %s skipped: %s", infos[i].platform, infos[i].device, infos[i].name, why);
            if (pos < sizeof reasons) {
                int w = snprintf(reasons + pos, sizeof reasons - pos, "%s%d:%d %s: %.200s", pos ? "; " : "",
                                 infos[i].platform, infos[i].device, infos[i].name, why);
                if (w > 0) pos += (size_t)w;
            }
        }
    if (!*out) st = LC_ERR(LC_ERR_DEVICE, "no OpenCL device can build layca's kernels (%s)", reasons);
done:
    free(infos); free(plats); free(devs);
    if (st == LC_OK && *out) {
        lc_rt *rt = *out;
        LC_DEBUG("OpenCL device %d:%d %s (%s, %s, %s, driver %s)%s; program cache %s", rt->info.platform,
                 rt->info.device, rt->info.name, lc_rt_device_type_name(rt->info.type), rt->info.platform_version,
                 rt->info.opencl_c_version, rt->info.driver_version, rt->device_only ? ", device-only" : "",
                 rt->cache_dir[0] ? rt->cache_dir : "off");
    }
    return st;
}

lc_status lc_rt_create(lc_rt **out, const char *selector, bool profiling)
{
    lc_rt_opts o = {.selector = selector, .profiling = profiling};
    return lc_rt_create_opts(out, &o);
}

void lc_rt_destroy(lc_rt *rt)
{
    if (!rt) return;
    lc_rt_impl *impl = lc_rt_impl_of(rt);
    if (rt->queue) clFinish(rt->queue);
    lc_rt_programs_release(impl);
    lc_rt_gemm_release(impl);
    lc_rt_pool_release(impl);
    lc_rt_choices_release(impl);
    if (rt->queue) clReleaseCommandQueue(rt->queue);
    if (rt->ctx) clReleaseContext(rt->ctx);
    free(impl->kernel_dir);
    free(impl);
}

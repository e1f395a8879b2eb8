/* OpenCL runtime: device choice, context and queue, program building with a
 * disk cache of binaries, buffers, kernel launches, CLBlast GEMM.
 * Knows nothing of the IR or of JSON.  Every OpenCL/CLBlast failure becomes
 * an lc_status with a message naming the call and the code. */
#ifndef LC_RT_H
#define LC_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <CL/cl.h>

#include "lc_core.h"

typedef struct lc_device_info {
    int platform, device;         /* indices as enumerated */
    char name[256];
    char vendor[128];
    char platform_name[256];
    char driver_version[128];
    char platform_version[256];
    cl_device_type type;
    uint64_t global_mem_bytes;
    uint64_t max_alloc_bytes;
    uint32_t compute_units;
    size_t max_work_group;        /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
    size_t max_work_item0;        /* CL_DEVICE_MAX_WORK_ITEM_SIZES[0] */
    uint32_t mem_base_align;      /* CL_DEVICE_MEM_BASE_ADDR_ALIGN in bytes (sub-buffer origins) */
    bool fp64;
    bool host_unified_memory;     /* CL_DEVICE_HOST_UNIFIED_MEMORY */
    bool compiler_available;      /* CL_DEVICE_COMPILER_AVAILABLE */
    char opencl_c_version[128];   /* CL_DEVICE_OPENCL_C_VERSION, e.g. "OpenCL C 1.2 PoCL" */
} lc_device_info;

/* True when an OpenCL C version string ("OpenCL C 1.2 ...") names at least
 * major.minor; false for anything unparsable. */
bool lc_rt_opencl_c_at_least(const char *version, int major, int minor);

/* True for CPU devices whose compiler turns a work-group into a loop over
 * its work-items (PoCL): there a work-group of one work-item walking a long
 * contiguous chunk is the fastest geometry for streaming kernels.  Other CPU
 * implementations (Mesa's rusticl on llvmpipe) spread a work-group's items
 * over SIMD lanes, and one-item groups run about 5x slower there (Layca's
 * fused optimizer step on mlp3: 270 ms against 43 ms). */
bool lc_rt_loop_workgroups(const lc_device_info *d);

/* All devices of all platforms.  *out is malloc'ed (caller frees); zero
 * devices is not an error (n == 0). */
lc_status lc_rt_list_devices(lc_device_info **out, int *n);
const char *lc_rt_device_type_name(cl_device_type t); /* "GPU", "CPU", ... */

typedef struct lc_rt {
    lc_device_info info;
    cl_platform_id platform;
    cl_device_id device;
    cl_context ctx;
    cl_command_queue queue;
    bool profiling;
    /* Device-only mode: every host shortcut is off (host BLAS GEMMs, host
     * convolutions, whole-buffer maps, the CPU optimizer geometry), so a CPU
     * device runs exactly the code a GPU runs. */
    bool device_only;
    /* introspection, for tests: SGEMM calls per backend (index
     * lc_rt_gemm_backend) and whole-buffer host maps made so far */
    long gemm_calls[3];
    long host_maps;
    /* program cache statistics, for tests and the progress line */
    int programs_built;       /* compiled from source in this process */
    int programs_from_cache;  /* loaded from the disk cache */
    char cache_dir[1024];     /* empty when the disk cache is disabled */
} lc_rt;

/* Options of lc_rt_create_opts; all-zero is the default of every field.
 * selector: "P:D" indices, or a case-insensitive substring of the device
 * name, or NULL/"" for the default device: the first GPU, else the first
 * CPU, else the first device, among the devices that can build layca's
 * kernels (OpenCL C 1.2 or later, a compiler, and a probe program that
 * builds); the others are skipped, with the reason at debug level.  An
 * explicitly selected device is not skipped: when it cannot build the probe
 * program the error carries the build log.  The library reads no
 * environment variable: the CLIs fill these fields from theirs
 * (docs/environment.md). */
typedef enum lc_rt_gemm_mode {
    LC_GEMM_MODE_DEFAULT = 0, /* the host BLAS where usable (lc_rt_host_blas_usable), else CLBlast */
    LC_GEMM_MODE_CLBLAST,     /* CLBlast always */
    LC_GEMM_MODE_HOST,        /* the host BLAS where usable, else CLBlast */
    LC_GEMM_MODE_TIME,        /* where the host BLAS is usable: per shape, by timing both once (beta == 0
                               * only), the choice kept per device beside the program cache */
    LC_GEMM_MODE_COUNT
} lc_rt_gemm_mode;
typedef struct lc_rt_opts {
    const char *selector;
    /* Where the selector came from, named in a no-match error ("no OpenCL
     * device matches SOURCE='x'"), e.g. "LAYCA_DEVICE"; NULL: not named. */
    const char *selector_source;
    bool profiling;    /* queue with CL_QUEUE_PROFILING_ENABLE */
    bool device_only;  /* no host shortcuts (lc_rt.device_only) */
    /* Development: kernel sources are read from KERNEL_DIR/NAME.cl instead
     * of the embedded ones (the probe falls back to the embedded one);
     * NULL/"": the embedded sources.  Copied at creation. */
    const char *kernel_dir;
    /* Host worker threads (lc_rt_host_threads): 0 = the device's compute
     * units; at most 64 are used; negative is LC_ERR_INVALID. */
    int host_threads;
    int gemm;          /* lc_rt_gemm_mode: the backend of lc_rt_sgemm, resolved at creation */
} lc_rt_opts;
/* No match: LC_ERR_NOT_FOUND listing the devices; no device at all, or none
 * that builds the kernels: LC_ERR_DEVICE with each device's reason.  The rt
 * carries private state past these fields: only lc_rt_create(_opts) makes
 * one; lc_rt_destroy(NULL) is a no-op.  One thread at a time per rt. */
lc_status lc_rt_create_opts(lc_rt **out, const lc_rt_opts *opts);
/* The same with device_only off. */
lc_status lc_rt_create(lc_rt **out, const char *selector, bool profiling);
void lc_rt_destroy(lc_rt *rt);

/* Kernel sources embedded at build time (the .cl files of cl_kernels); "name" is the
 * file name without .cl.  A non-empty kernel_dir (lc_rt_opts.kernel_dir) is
 * read instead (KERNEL_DIR/NAME.cl). */
lc_status lc_rt_kernel_source(const char *kernel_dir, const char *name, const char **src, size_t *len);
/* Embedded sources are static, 0-terminated.  A source read from a kernel
 * folder lives in a per-thread buffer until the next lc_rt_kernel_source
 * call on the same thread; _dup gives a malloc'ed, 0-terminated copy
 * instead (caller frees).  Unknown name: LC_ERR_NOT_FOUND. */
lc_status lc_rt_kernel_source_dup(const char *kernel_dir, const char *name, char **src, size_t *len);

/* Builds (or loads from the disk cache) the program of source `name` (the
 * rt's kernel folder's, else the embedded one) with `options`.  Cache key:
 * source, options, device name, driver version, platform version.  Cache
 * folder: lc_cache_dir at creation (rt->cache_dir); none: no disk cache.
 * Writes are atomic; a corrupt entry is rebuilt from source. */
/* The rt owns the program (released by lc_rt_destroy); asking again for the
 * same (name, options) returns the same cl_program.  options are passed to
 * clBuildProgram verbatim (NULL = "").  A build failure is LC_ERR_DEVICE with
 * the first lines of the build log in the message. */
lc_status lc_rt_program(lc_rt *rt, const char *name, const char *options, cl_program *out);
/* The caller owns the kernel (clReleaseKernel). */
lc_status lc_rt_kernel(lc_rt *rt, cl_program prog, const char *kernel_name, cl_kernel *out);

/* Work-group sizes.  lc_rt_wg_cap: the largest power of two <= want that
 * the device allows in dimension 0 (CL_DEVICE_MAX_WORK_GROUP_SIZE and
 * CL_DEVICE_MAX_WORK_ITEM_SIZES[0]); at least 1.  lc_rt_kernel_wg: the
 * kernel's own limit on this device (CL_KERNEL_WORK_GROUP_SIZE), which
 * register or local-memory use may put below the device's. */
size_t lc_rt_wg_cap(const lc_rt *rt, size_t want);
lc_status lc_rt_kernel_wg(lc_rt *rt, cl_kernel k, size_t *out);
/* A program whose kernels have a fixed work-group size given at build time
 * by the macro `macro` (each such kernel declares
 * reqd_work_group_size(macro, 1, 1)): builds `name` with `options` plus
 * -D<macro>=<wg>, wg = lc_rt_wg_cap(rt, want), then checks each kernel of
 * `kernels` (n_kernels names) and, while one of them allows less, rebuilds
 * with the largest power of two it allows.  *wg gets the size to launch
 * with.  A limit found this way is remembered per device, program and macro
 * (lc_rt_choice_*), so later builds start there instead of building twice. */
lc_status lc_rt_program_wg(lc_rt *rt, const char *name, const char *options, const char *macro, size_t want,
                           const char *const *kernels, int n_kernels, cl_program *out, size_t *wg);

/* Buffers. */
lc_status lc_rt_alloc(lc_rt *rt, size_t bytes, cl_mem *out);
/* A sub-buffer of `parent` that starts at the largest multiple of the
 * device's base address alignment not past `origin_bytes` and runs to the
 * parent's end; *shift_bytes gets origin_bytes minus its start.  The caller
 * owns it (clReleaseMemObject).  For calls that take 32-bit offsets
 * (CLBlast) on buffers larger than 2^31 elements. */
lc_status lc_rt_sub_buffer(lc_rt *rt, cl_mem parent, uint64_t origin_bytes, cl_mem *out, uint64_t *shift_bytes);
/* The start lc_rt_sub_buffer would choose for origin_bytes. */
uint64_t lc_rt_sub_buffer_start(const lc_rt *rt, uint64_t origin_bytes);
/* Device-side copy of bytes between (or within) buffers. */
lc_status lc_rt_copy(lc_rt *rt, cl_mem dst, size_t dst_off, cl_mem src, size_t src_off, size_t bytes);

/* Memory limits for a plan: the device's global memory and largest
 * allocation, and on CPU devices whose buffers live in host memory also what
 * the process may still map under its address-space limit (RLIMIT_AS,
 * less the current mapping); why (optional, cap bytes) names what set them.
 * lc_rt_check_plan refuses a plan of total_bytes whose largest buffer is
 * largest_bytes when it exceeds either limit, before anything is allocated:
 * LC_ERR_DEVICE, one line naming what (e.g. "model 'x'"), detail (the
 * arenas, may be NULL), the planned bytes and both limits. */
void lc_rt_memory_limits(const lc_rt *rt, uint64_t *global_bytes, uint64_t *max_alloc_bytes, char *why, size_t cap);
lc_status lc_rt_check_plan(const lc_rt *rt, const char *what, uint64_t total_bytes, uint64_t largest_bytes,
                           const char *detail);
lc_status lc_rt_write(lc_rt *rt, cl_mem buf, size_t offset_bytes, size_t bytes, const void *src);
lc_status lc_rt_read(lc_rt *rt, cl_mem buf, size_t offset_bytes, size_t bytes, void *dst);
lc_status lc_rt_fill_zero(lc_rt *rt, cl_mem buf, size_t offset_bytes, size_t bytes);
lc_status lc_rt_finish(lc_rt *rt);

/* Launch helpers: args is an array of (size, pointer) pairs as for
 * clSetKernelArg.  global sizes are rounded up to a multiple of local when
 * local is non-NULL (kernels must guard their index); a zero global size is
 * a no-op.  Buffer writes and reads are blocking. */
typedef struct lc_arg { size_t size; const void *ptr; } lc_arg;
#define LC_ARG(x) ((lc_arg){sizeof(x), &(x)})
/* Sets a kernel's n arguments; n must be the kernel's argument count
 * (asked of the driver).  lc_rt_reset_args sets them again without asking,
 * for a kernel whose count was checked before (arguments updated every
 * step). */
lc_status lc_rt_set_args(cl_kernel k, const lc_arg *args, int n, const char *what);
lc_status lc_rt_reset_args(cl_kernel k, const lc_arg *args, int n, const char *what);
lc_status lc_rt_launch(lc_rt *rt, cl_kernel k, int dims, const size_t *global, const size_t *local,
                       const char *what);

/* GEMM backends.  CLBlast works everywhere; on CPU devices whose buffers
 * live in host memory (and not in device-only mode), a host BLAS (OpenBLAS)
 * on mapped buffers is the default (it won every measured shape there by 8-20x, and it spares the
 * cold compile of CLBlast's kernels).  lc_rt_opts.gemm forces one, or
 * (LC_GEMM_MODE_TIME) chooses per shape by timing both once (only for beta
 * == 0, when C is a pure output) and keeps the choice per device beside the
 * program cache. */
typedef enum lc_rt_gemm_backend { LC_GEMM_AUTO = 0, LC_GEMM_CLBLAST, LC_GEMM_HOST } lc_rt_gemm_backend;
const char *lc_rt_gemm_backend_name(int b);
/* True when the host shortcuts are usable on this rt: a CPU device whose
 * buffers live in host memory, a build with a host BLAS, and not
 * device-only mode.  Every host path (host GEMM backend, host convolutions,
 * lc_rt_map) asks this. */
bool lc_rt_host_blas_usable(const lc_rt *rt);
/* The backend the next call of this shape will use (LC_GEMM_AUTO: not yet
 * decided). */
int lc_rt_gemm_backend_for(lc_rt *rt, bool trans_a, bool trans_b, size_t m, size_t n, size_t k);
/* SGEMM with an explicit backend (benchmarks, tests). */
lc_status lc_rt_sgemm_with(lc_rt *rt, int backend, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                           float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb,
                           float beta, cl_mem c, size_t c_off, size_t ldc);

/* CLBlast passes offsets and leading dimensions to its kernels as 32-bit
 * ints: through it, every operand must end before this many elements of
 * its buffer (offset + extent); lc_rt_sgemm refuses larger ones (rebase
 * them with lc_rt_sub_buffer). */
#define LC_RT_CLBLAST_MAX_ELEMS ((uint64_t)0x7fffffff)
/* Row-major SGEMM: C = alpha op(A) op(B) + beta C, offsets in elements, the
 * backend chosen per shape as above.  Enqueued on rt->queue (the host
 * backend waits for the queue, then computes on mapped buffers); m == 0 or
 * n == 0 is a no-op.  Failures name the CLBlast status ("kInvalidLeadDimA
 * (-1016)"). */
lc_status lc_rt_sgemm(lc_rt *rt, bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
                      cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta,
                      cl_mem c, size_t c_off, size_t ldc);

/* CLBlast's temporary buffer (padded or transposed copies of A, B, C for its
 * indirect kernel).  By default each rt keeps one scratch buffer, grown to
 * the largest size CLBlast asks for (CLBlastSGemmTempBufferSize) and handed
 * to CLBlastSgemmWithTempBuffer, so no GEMM allocates; reuse == false lets
 * CLBlast allocate and free its own at every call (benchmarks, tests). */
void lc_rt_clblast_reuse_temp(lc_rt *rt, bool reuse);
size_t lc_rt_clblast_scratch_bytes(const lc_rt *rt); /* current scratch size, 0 before the first need */
/* Bytes of temporary buffer CLBlast needs for this call with the parameters
 * in force (0: its direct kernel, or nothing to pad). */
lc_status lc_rt_clblast_temp_bytes(lc_rt *rt, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                                   size_t a_off, size_t lda, size_t b_off, size_t ldb, size_t c_off, size_t ldc,
                                   size_t *bytes);

/* The distinct shapes lc_rt_sgemm was asked for on this rt, in first-call
 * order, with the number of calls since the last clear (tools: the GEMMs of
 * a model's step, for tuning).  lc_rt_sgemm_with calls are not recorded. */
typedef struct lc_rt_gemm_shape {
    bool ta, tb;
    size_t m, n, k;
    long calls;
} lc_rt_gemm_shape;
int lc_rt_gemm_shapes(const lc_rt *rt, const lc_rt_gemm_shape **out);
void lc_rt_gemm_shapes_clear(lc_rt *rt);

/* CLBlast tuning parameters (src/rt/tune.c).  A tuning file holds, for one
 * device and driver, a full parameter set per CLBlast kernel:
 *     layca-clblast-tuning 1
 *     device <CL_DEVICE_NAME>
 *     driver <CL_DRIVER_VERSION>
 *     platform <CL_PLATFORM_VERSION>
 *     kernel <Xgemm|XgemmDirect|GemmRoutine|Copy|Pad|Transpose|Padtranspose> <precision> NAME=VALUE...
 * ('#' starts a comment line).  `layca tune` writes it into the cache folder
 * (lc_rt_tune_path); lc_rt_create applies the file of its device, if any,
 * through CLBlastOverrideParameters.  CLBlast keeps overrides per device for
 * the whole process. */
#define LC_TUNE_MAX_KERNELS 8
#define LC_TUNE_MAX_PARAMS 24
typedef struct lc_tune_kernel {
    char name[32];
    int precision; /* 16, 32, 64, 3232 or 6464 (CLBlastPrecision) */
    int n;
    char param[LC_TUNE_MAX_PARAMS][32];
    size_t value[LC_TUNE_MAX_PARAMS];
} lc_tune_kernel;
typedef struct lc_tune_file {
    char device[256], driver[128], platform[256];
    int n;
    lc_tune_kernel kernel[LC_TUNE_MAX_KERNELS];
} lc_tune_file;
/* Parses a tuning file's text (len bytes; `name` prefixes the messages:
 * "NAME:LINE: what").  Anything malformed is LC_ERR_FORMAT. */
lc_status lc_rt_tune_parse(const char *text, size_t len, const char *name, lc_tune_file *out);
/* The file's text (comment: extra '#' lines, may be NULL); caller frees
 * out->s. */
void lc_rt_tune_format(const lc_tune_file *t, const char *comment, lc_strbuf *out);
/* Sets or replaces one kernel's parameter set in t. */
lc_status lc_rt_tune_set(lc_tune_file *t, const lc_tune_kernel *k);
/* Where the tuning file of this device and driver lives (empty when the
 * cache is off). */
void lc_rt_tune_path(const lc_device_info *d, char *out, size_t cap);
/* Overrides CLBlast's parameters for rt's device with every kernel of t.  t
 * must name this device and driver (else LC_ERR_INVALID); a rejected set
 * is LC_ERR_DEVICE naming the kernel and CLBlast's status. */
lc_status lc_rt_tune_apply(lc_rt *rt, const lc_tune_file *t);
/* Reads, parses and applies the file at path (messages name it). */
lc_status lc_rt_tune_apply_file(lc_rt *rt, const char *path);
/* What lc_rt_create did about tuning: "default" (no file), "tuned (PATH)",
 * or "ignored PATH: <why>" (the file could not be used; creation goes on
 * with CLBlast's defaults and logs a warning). */
const char *lc_rt_tune_state(const lc_rt *rt);

/* The device opts' selector picks (the rules of lc_rt_create_opts), without
 * keeping anything (the default device is found by creating it with opts). */
lc_status lc_rt_select(const lc_rt_opts *opts, lc_device_info *out);

/* Strided-batched row-major SGEMM on the device (CLBlast, whatever the
 * backend of plain SGEMMs): for i < batch, C_i = alpha op(A_i) op(B_i) +
 * beta C_i with X_i at x_off + i * x_stride (a stride may be 0: one matrix
 * shared by all).  Operands must end before LC_RT_CLBLAST_MAX_ELEMS; m, n
 * or batch 0 is a no-op. */
lc_status lc_rt_sgemm_strided_batched(lc_rt *rt, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                                      float alpha, cl_mem a, size_t a_off, size_t lda, size_t a_stride, cl_mem b,
                                      size_t b_off, size_t ldb, size_t b_stride, float beta, cl_mem c, size_t c_off,
                                      size_t ldc, size_t c_stride, size_t batch);

/* Host access, for CPU devices whose buffers live in host memory
 * (lc_rt_host_blas_usable; LC_ERR_UNSUPPORTED otherwise, e.g. in
 * device-only mode): lc_rt_map maps a whole buffer for reading and
 * writing and waits for the work queued before it (a queue drain);
 * lc_rt_unmap enqueues the unmap (later launches see the host's writes). */
lc_status lc_rt_map(lc_rt *rt, cl_mem buf, float **ptr);
lc_status lc_rt_unmap(lc_rt *rt, cl_mem buf, float *ptr);
/* Row-major SGEMM on host memory with the host BLAS; LC_ERR_UNSUPPORTED in
 * a build without one (lc_rt_host_sgemm_available). */
bool lc_rt_host_sgemm_available(void);
lc_status lc_rt_host_sgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                           size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc);
/* Sets the host BLAS's own thread count (n > 0; OpenBLAS) and returns the
 * previous one (1 when it cannot be known): SGEMMs called from several
 * host workers at once each run with 1. */
int lc_rt_host_blas_threads(int n);
/* Runs fn(ctx, i) for every i in [0, n) on the calling thread and the rt's
 * host workers (lc_rt_host_threads in all: the device's compute units, or
 * lc_rt_opts.host_threads), in any order; returns when all are done.  Workers
 * sleep between calls. */
int lc_rt_host_threads(const lc_rt *rt);
void lc_rt_host_parallel(lc_rt *rt, int n, void (*fn)(void *ctx, int i), void *ctx);
/* Small integer choices made by timing (an implementation per shape), kept
 * per device beside the program cache like the GEMM backends.  Keys have no
 * spaces; get returns -1 for an unknown key. */
int lc_rt_choice_get(lc_rt *rt, const char *key);
void lc_rt_choice_set(lc_rt *rt, const char *key, int value);

/* "clFoo failed: CL_OUT_OF_RESOURCES (-5)" style names. */
const char *lc_rt_cl_error_name(cl_int err);
lc_status lc_rt_check(cl_int err, const char *call);
/* CLBlast status names ("kInvalidLeadDimA"); OpenCL codes as above. */
const char *lc_rt_clblast_status_name(int status);

#endif

/* Row-major SGEMM through CLBlast. */
#include "lc_rt_internal.h"

#include <clblast_c.h>

const char *lc_rt_clblast_status_name(int status)
{
    switch (status) {
    case CLBlastNotImplemented: return "kNotImplemented";
    case CLBlastInvalidMatrixA: return "kInvalidMatrixA";
    case CLBlastInvalidMatrixB: return "kInvalidMatrixB";
    case CLBlastInvalidMatrixC: return "kInvalidMatrixC";
    case CLBlastInvalidVectorX: return "kInvalidVectorX";
    case CLBlastInvalidVectorY: return "kInvalidVectorY";
    case CLBlastInvalidDimension: return "kInvalidDimension";
    case CLBlastInvalidLeadDimA: return "kInvalidLeadDimA";
    case CLBlastInvalidLeadDimB: return "kInvalidLeadDimB";
    case CLBlastInvalidLeadDimC: return "kInvalidLeadDimC";
    case CLBlastInvalidIncrementX: return "kInvalidIncrementX";
    case CLBlastInvalidIncrementY: return "kInvalidIncrementY";
    case CLBlastInsufficientMemoryA: return "kInsufficientMemoryA";
    case CLBlastInsufficientMemoryB: return "kInsufficientMemoryB";
    case CLBlastInsufficientMemoryC: return "kInsufficientMemoryC";
    case CLBlastInsufficientMemoryX: return "kInsufficientMemoryX";
    case CLBlastInsufficientMemoryY: return "kInsufficientMemoryY";
    case CLBlastInsufficientMemoryTemp: return "kInsufficientMemoryTemp";
    case CLBlastInvalidBatchCount: return "kInvalidBatchCount";
    case CLBlastInvalidOverrideKernel: return "kInvalidOverrideKernel";
    case CLBlastMissingOverrideParameter: return "kMissingOverrideParameter";
    case CLBlastInvalidLocalMemUsage: return "kInvalidLocalMemUsage";
    case CLBlastNoHalfPrecision: return "kNoHalfPrecision";
    case CLBlastNoDoublePrecision: return "kNoDoublePrecision";
    case CLBlastInvalidVectorScalar: return "kInvalidVectorScalar";
    case CLBlastInsufficientMemoryScalar: return "kInsufficientMemoryScalar";
    case CLBlastDatabaseError: return "kDatabaseError";
    case CLBlastUnknownError: return "kUnknownError";
    case CLBlastUnexpectedError: return "kUnexpectedError";
    }
    /* The remaining codes are OpenCL's own. */
    return lc_rt_cl_error_name((cl_int)status);
}

/* ---- backend choice ---- */

#ifdef LC_HAVE_HOST_BLAS
#include <cblas.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *lc_rt_gemm_backend_name(int b)
{
    switch (b) {
    case LC_GEMM_CLBLAST: return "clblast";
    case LC_GEMM_HOST: return "host-blas";
    default: return "auto";
    }
}

bool lc_rt_host_blas_usable(const lc_rt *rt)
{
#ifdef LC_HAVE_HOST_BLAS
    if (rt->device_only) return false;
    return (rt->info.type & CL_DEVICE_TYPE_CPU) && rt->info.host_unified_memory;
#else
    (void)rt;
    return false;
#endif
}

/* A memoised answer of CLBlastSGemmTempBufferSize for one call's geometry. */
typedef struct lc_rt_temp_memo {
    bool ta, tb;
    size_t m, n, k, a_off, lda, b_off, ldb, c_off, ldc;
    size_t bytes;
} lc_rt_temp_memo;
enum { TEMP_MEMO_MAX = 128 };

void lc_rt_gemm_release(lc_rt_impl *impl)
{
    free(impl->gemm);
    impl->gemm = NULL;
    impl->n_gemm = impl->cap_gemm = 0;
    if (impl->clblast_tmp) clReleaseMemObject(impl->clblast_tmp);
    impl->clblast_tmp = NULL;
    impl->clblast_tmp_bytes = 0;
    free(impl->temp_memo);
    impl->temp_memo = NULL;
    impl->n_temp_memo = 0;
    free(impl->shapes);
    impl->shapes = NULL;
    impl->n_shapes = impl->cap_shapes = 0;
}

void lc_rt_gemm_forget_temp_sizes(lc_rt_impl *impl) { impl->n_temp_memo = 0; }

void lc_rt_clblast_reuse_temp(lc_rt *rt, bool reuse) { lc_rt_impl_of(rt)->clblast_per_call = !reuse; }

size_t lc_rt_clblast_scratch_bytes(const lc_rt *rt) { return ((const lc_rt_impl *)rt)->clblast_tmp_bytes; }

lc_status lc_rt_clblast_temp_bytes(lc_rt *rt, bool ta, bool tb, size_t m, size_t n, size_t k, size_t a_off,
                                   size_t lda, size_t b_off, size_t ldb, size_t c_off, size_t ldc, size_t *bytes)
{
    lc_rt_impl *impl = lc_rt_impl_of(rt);
    for (int i = 0; i < impl->n_temp_memo; i++) {
        const lc_rt_temp_memo *e = &impl->temp_memo[i];
        if (e->ta == ta && e->tb == tb && e->m == m && e->n == n && e->k == k && e->a_off == a_off &&
            e->lda == lda && e->b_off == b_off && e->ldb == ldb && e->c_off == c_off && e->ldc == ldc) {
            *bytes = e->bytes;
            return LC_OK;
        }
    }
    size_t need = 0;
    CLBlastStatusCode s = CLBlastSGemmTempBufferSize(
        CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo, tb ? CLBlastTransposeYes : CLBlastTransposeNo,
        m, n, k, a_off, lda, b_off, ldb, c_off, ldc, &rt->queue, &need);
    if (s != CLBlastSuccess)
        return LC_ERR(LC_ERR_DEVICE, "CLBlastSGemmTempBufferSize failed: %s (%d) (trans %c%c, m=%zu n=%zu k=%zu)",
                      lc_rt_clblast_status_name((int)s), (int)s, ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k);
    if (!impl->temp_memo) impl->temp_memo = malloc(TEMP_MEMO_MAX * sizeof *impl->temp_memo);
    if (impl->temp_memo && impl->n_temp_memo < TEMP_MEMO_MAX)
        impl->temp_memo[impl->n_temp_memo++] = (lc_rt_temp_memo){ta, tb, m, n, k, a_off, lda, b_off, ldb, c_off, ldc, need};
    *bytes = need;
    return LC_OK;
}

int lc_rt_gemm_shapes(const lc_rt *rt, const lc_rt_gemm_shape **out)
{
    const lc_rt_impl *impl = (const lc_rt_impl *)rt;
    *out = impl->shapes;
    return impl->n_shapes;
}

void lc_rt_gemm_shapes_clear(lc_rt *rt) { lc_rt_impl_of(rt)->n_shapes = 0; }

static void record_shape(lc_rt *rt, bool ta, bool tb, size_t m, size_t n, size_t k)
{
    lc_rt_impl *impl = lc_rt_impl_of(rt);
    for (int i = 0; i < impl->n_shapes; i++) {
        lc_rt_gemm_shape *s = &impl->shapes[i];
        if (s->ta == ta && s->tb == tb && s->m == m && s->n == n && s->k == k) {
            s->calls++;
            return;
        }
    }
    if (impl->n_shapes == impl->cap_shapes) {
        int nc = impl->cap_shapes ? impl->cap_shapes * 2 : 16;
        lc_rt_gemm_shape *ns = realloc(impl->shapes, (size_t)nc * sizeof *ns);
        if (!ns) return; /* a statistic: dropping it is harmless */
        impl->shapes = ns;
        impl->cap_shapes = nc;
    }
    impl->shapes[impl->n_shapes++] = (lc_rt_gemm_shape){ta, tb, m, n, k, 1};
}

static void choices_path(lc_rt *rt, char *out, size_t cap)
{
    char key[1024];
    snprintf(key, sizeof key, "%s|%s|%s|gemm-choice-1", rt->info.name, rt->info.driver_version,
             rt->info.platform_version);
    snprintf(out, cap, "%s/gemm-%016llx.txt", rt->cache_dir,
             (unsigned long long)lc_hash64(key, strlen(key), 0x6e77));
}

static lc_status add_choice(lc_rt_impl *impl, lc_rt_gemm_choice c)
{
    if (impl->n_gemm == impl->cap_gemm) {
        int nc = impl->cap_gemm ? impl->cap_gemm * 2 : 32;
        lc_rt_gemm_choice *ng = realloc(impl->gemm, (size_t)nc * sizeof *ng);
        if (!ng) return LC_ERR(LC_ERR_NOMEM, "out of memory");
        impl->gemm = ng;
        impl->cap_gemm = nc;
    }
    impl->gemm[impl->n_gemm++] = c;
    return LC_OK;
}

/* Reads the per-device choices once; a malformed file is ignored. */
static void load_choices(lc_rt *rt)
{
    lc_rt_impl *impl = lc_rt_impl_of(rt);
    if (impl->gemm_loaded) return;
    impl->gemm_loaded = true;
    if (!rt->cache_dir[0]) return;
    char path[1200];
    choices_path(rt, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) return;
    int ta, tb, be;
    size_t m, n, k;
    while (fscanf(f, "%d %d %zu %zu %zu %d", &ta, &tb, &m, &n, &k, &be) == 6)
        if ((be == LC_GEMM_CLBLAST || (be == LC_GEMM_HOST && lc_rt_host_blas_usable(rt))))
            add_choice(impl, (lc_rt_gemm_choice){ta != 0, tb != 0, m, n, k, be});
    fclose(f);
}

static void save_choices(lc_rt *rt)
{
    lc_rt_impl *impl = lc_rt_impl_of(rt);
    if (!rt->cache_dir[0] || lc_mkdirs(rt->cache_dir) != LC_OK) return;
    size_t cap = (size_t)impl->n_gemm * 64 + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) return;
    for (int i = 0; i < impl->n_gemm; i++) {
        const lc_rt_gemm_choice *c = &impl->gemm[i];
        len += (size_t)snprintf(buf + len, cap - len, "%d %d %zu %zu %zu %d\n", c->ta, c->tb, c->m, c->n, c->k,
                                c->backend);
    }
    char path[1200];
    choices_path(rt, path, sizeof path);
    if (lc_file_write_atomic(path, buf, len) != LC_OK) LC_DEBUG("cannot write %s: %s", path, lc_error_message());
    free(buf);
}

int lc_rt_gemm_backend_for(lc_rt *rt, bool ta, bool tb, size_t m, size_t n, size_t k)
{
    lc_rt_impl *impl = lc_rt_impl_of(rt);
    if (impl->gemm_fixed != LC_GEMM_AUTO) return impl->gemm_fixed; /* lc_rt_opts.gemm, resolved at creation */
    load_choices(rt);
    for (int i = 0; i < impl->n_gemm; i++) {
        const lc_rt_gemm_choice *c = &impl->gemm[i];
        if (c->ta == ta && c->tb == tb && c->m == m && c->n == n && c->k == k) return c->backend;
    }
    return LC_GEMM_AUTO;
}

/* Elements from an operand's offset to its last one (rows x cols, ld). */
static uint64_t extent(size_t off, size_t rows, size_t cols, size_t ld)
{
    if (rows == 0 || cols == 0) return off;
    return (uint64_t)off + (uint64_t)(rows - 1) * ld + cols;
}

/* CLBlast's kernels use the work-group sizes of its tuning database (up to
 * 16 x 16), checked only against the device's maximum.  For a device that
 * allows fewer, or a built kernel that does (a launch failing with
 * CL_INVALID_WORK_GROUP_SIZE or CL_OUT_OF_RESOURCES), every kernel SGEMM
 * uses is given a plain configuration of d x d work-items, d the largest
 * power of two up to 8 with d * d within cap (CLBlastOverrideParameters:
 * it recompiles them on the next call).  Returns false when CLBlast refused
 * the parameters. */
static bool clblast_small_groups(lc_rt *rt, size_t cap)
{
    size_t d = 1;
    while (d < 8 && (2 * d) * (2 * d) <= cap) d *= 2;
    static const char *xgemm_names[] = {"GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB",
                                        "NDIMC", "NWG", "SA", "SB", "STRM", "STRN", "VWM", "VWN"};
    size_t xgemm[] = {0, 1, 16, 2, d, d, 16, d, d, 16, 0, 0, 0, 0, 1, 1};
    static const char *direct_names[] = {"KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD",
                                         "PADA", "PADB",   "VWMD",   "VWND",   "WGD"};
    size_t direct[] = {2, d, d, d, d, 1, 1, 1, 1, 16};
    static const char *copy_names[] = {"COPY_DIMX", "COPY_DIMY", "COPY_VW", "COPY_WPT"};
    size_t copy[] = {d, d, 1, 1};
    static const char *pad_names[] = {"PAD_DIMX", "PAD_DIMY", "PAD_WPTX", "PAD_WPTY"};
    size_t pad[] = {d, d, 1, 1};
    static const char *tra_names[] = {"TRA_DIM", "TRA_PAD", "TRA_SHUFFLE", "TRA_WPT"};
    size_t tra[] = {d, 0, 0, 1};
    static const char *padtra_names[] = {"PADTRA_PAD", "PADTRA_TILE", "PADTRA_WPT"};
    size_t padtra[] = {0, d, 1};
    struct { const char *kernel; size_t n; const char **names; const size_t *values; } o[] = {
        {"Xgemm", LC_COUNTOF(xgemm), xgemm_names, xgemm},
        {"XgemmDirect", LC_COUNTOF(direct), direct_names, direct},
        {"Copy", LC_COUNTOF(copy), copy_names, copy},
        {"Pad", LC_COUNTOF(pad), pad_names, pad},
        {"Transpose", LC_COUNTOF(tra), tra_names, tra},
        {"Padtranspose", LC_COUNTOF(padtra), padtra_names, padtra},
    };
    bool ok = true;
    for (size_t i = 0; i < LC_COUNTOF(o); i++) {
        CLBlastStatusCode s = CLBlastOverrideParameters(rt->device, o[i].kernel, CLBlastPrecisionSingle, o[i].n,
                                                        o[i].names, o[i].values);
        if (s != CLBlastSuccess) {
            LC_DEBUG("CLBlastOverrideParameters(%s): %s (%d)", o[i].kernel, lc_rt_clblast_status_name((int)s), (int)s);
            ok = false;
        }
    }
    LC_DEBUG("CLBlast on %s: %zux%zu work-groups (a limit of %zu work-items)", rt->info.name, d, d, cap);
    return ok;
}

void lc_rt_clblast_prepare(lc_rt *rt)
{
    lc_rt_impl *impl = lc_rt_impl_of(rt);
    if (!impl->clblast_groups_set) {
        impl->clblast_groups_set = true;
        size_t cap = lc_rt_wg_cap(rt, 256);
        if (cap < 256) clblast_small_groups(rt, cap);
    }
}

bool lc_rt_clblast_shrink(lc_rt *rt)
{
    lc_rt_impl *impl = lc_rt_impl_of(rt);
    if (impl->clblast_groups_small) return false;
    impl->clblast_groups_small = true;
    return clblast_small_groups(rt, LC_MIN(lc_rt_wg_cap(rt, 256), 16));
}

static lc_status clblast_sgemm(lc_rt *rt, bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
                               cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta,
                               cl_mem c, size_t c_off, size_t ldc)
{
    lc_rt_impl *impl = lc_rt_impl_of(rt);
    lc_rt_clblast_prepare(rt);
    /* CLBlast hands offsets and sizes to its kernels as ints */
    uint64_t ea = extent(a_off, trans_a ? k : m, trans_a ? m : k, lda);
    uint64_t eb = extent(b_off, trans_b ? n : k, trans_b ? k : n, ldb);
    uint64_t ec = extent(c_off, m, n, ldc);
    if (ea > LC_RT_CLBLAST_MAX_ELEMS || eb > LC_RT_CLBLAST_MAX_ELEMS || ec > LC_RT_CLBLAST_MAX_ELEMS)
        return LC_ERR(LC_ERR_UNSUPPORTED,
                      "CLBlast sgemm (m=%zu n=%zu k=%zu): an operand reaches element %llu of its buffer, past the "
                      "2^31 - 1 CLBlast can index (offsets %zu %zu %zu); rebase it on a sub-buffer",
                      m, n, k, (unsigned long long)LC_MAX(ea, LC_MAX(eb, ec)), a_off, b_off, c_off);
    rt->gemm_calls[LC_GEMM_CLBLAST]++;
    CLBlastTranspose ta = trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastTranspose tb = trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
    cl_mem tmp = NULL;
    if (!impl->clblast_per_call && k > 0) {
        /* one scratch buffer per rt instead of CLBlast's allocation per call;
         * the queue is in order, so consecutive GEMMs may share it */
        size_t need = 0;
        /* a query CLBlast rejects (bad dimensions) falls through to
         * CLBlastSgemm, whose status names the argument */
        if (lc_rt_clblast_temp_bytes(rt, trans_a, trans_b, m, n, k, a_off, lda, b_off, ldb, c_off, ldc, &need) != LC_OK) {
            lc_error_clear();
            need = 0;
        }
        if (need > impl->clblast_tmp_bytes) {
            size_t bytes = (need + 65535) & ~(size_t)65535;
            cl_int err = CL_SUCCESS;
            cl_mem nb = clCreateBuffer(rt->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
            if (err != CL_SUCCESS || !nb)
                return lc_error_prefix(lc_rt_check(err != CL_SUCCESS ? err : CL_MEM_OBJECT_ALLOCATION_FAILURE,
                                                   "clCreateBuffer"),
                                       "CLBlast temporary buffer of %zu bytes (m=%zu n=%zu k=%zu)", bytes, m, n, k);
            /* GEMMs still queued keep the old buffer alive until they finish */
            if (impl->clblast_tmp) clReleaseMemObject(impl->clblast_tmp);
            impl->clblast_tmp = nb;
            impl->clblast_tmp_bytes = bytes;
        }
        if (need > 0) tmp = impl->clblast_tmp;
    }
#define LC_SGEMM_CALL()                                                                                             \
    (tmp ? CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb,  \
                                      beta, c, c_off, ldc, &rt->queue, NULL, tmp)                                 \
         : CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, \
                        ldc, &rt->queue, NULL))
    CLBlastStatusCode s = LC_SGEMM_CALL();
    if (s == CLBlastInsufficientMemoryTemp && tmp) {
        /* the sizes memoised here predate parameters another rt of this
         * device overrode (CLBlast keeps them per process): ask again later,
         * and let CLBlast allocate this once */
        lc_rt_gemm_forget_temp_sizes(impl);
        tmp = NULL;
        s = LC_SGEMM_CALL();
    }
    if ((s == CL_INVALID_WORK_GROUP_SIZE || s == CL_OUT_OF_RESOURCES) && lc_rt_clblast_shrink(rt)) {
        /* a built kernel allows fewer work-items than the device: smaller
         * groups (and CLBlast's own temporary sizes), once */
        lc_rt_gemm_forget_temp_sizes(impl);
        tmp = NULL;
        s = LC_SGEMM_CALL();
    }
#undef LC_SGEMM_CALL
    if (s != CLBlastSuccess)
        return LC_ERR(LC_ERR_DEVICE,
                      "CLBlastSgemm failed: %s (%d) (trans %c%c, m=%zu n=%zu k=%zu, lda=%zu ldb=%zu ldc=%zu, "
                      "offsets %zu %zu %zu)",
                      lc_rt_clblast_status_name((int)s), (int)s, trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k,
                      lda, ldb, ldc, a_off, b_off, c_off);
    return LC_OK;
}

#ifdef LC_HAVE_HOST_BLAS
/* Host BLAS on mapped buffers: each distinct buffer is mapped once (blocking,
 * which also waits for the work queued before), used, and unmapped. */
static lc_status host_sgemm(lc_rt *rt, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, cl_mem a,
                            size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta, cl_mem c,
                            size_t c_off, size_t ldc)
{
    cl_mem bufs[3] = {a, b, c};
    float *ptr[3] = {NULL, NULL, NULL};
    lc_status st = LC_OK;
    for (int i = 0; i < 3 && st == LC_OK; i++) {
        for (int j = 0; j < i; j++)
            if (bufs[j] == bufs[i]) ptr[i] = ptr[j];
        if (ptr[i]) continue;
        size_t size = 0;
        cl_int err = clGetMemObjectInfo(bufs[i], CL_MEM_SIZE, sizeof size, &size, NULL);
        if (err != CL_SUCCESS) { st = lc_rt_check(err, "clGetMemObjectInfo"); break; }
        ptr[i] = clEnqueueMapBuffer(rt->queue, bufs[i], CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, size, 0, NULL, NULL,
                                    &err);
        if (err != CL_SUCCESS) { ptr[i] = NULL; st = lc_rt_check(err, "clEnqueueMapBuffer"); }
        else rt->host_maps++;
    }
    if (st == LC_OK) rt->gemm_calls[LC_GEMM_HOST]++;
    if (st == LC_OK)
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                    (int)k, alpha, ptr[0] + a_off, (int)lda, ptr[1] + b_off, (int)ldb, beta, ptr[2] + c_off, (int)ldc);
    for (int i = 0; i < 3; i++) {
        bool first = ptr[i] != NULL;
        for (int j = 0; j < i; j++)
            if (bufs[j] == bufs[i]) first = false;
        if (first) {
            cl_int err = clEnqueueUnmapMemObject(rt->queue, bufs[i], ptr[i], 0, NULL, NULL);
            if (err != CL_SUCCESS && st == LC_OK) st = lc_rt_check(err, "clEnqueueUnmapMemObject");
        }
    }
    return st;
}
#endif

lc_status lc_rt_sgemm_with(lc_rt *rt, int backend, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                           cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta,
                           cl_mem c, size_t c_off, size_t ldc)
{
    if (!rt || !a || !b || !c) return LC_ERR(LC_ERR_INVALID, "lc_rt_sgemm: NULL argument");
    if (m == 0 || n == 0) return LC_OK; /* empty C */
#ifdef LC_HAVE_HOST_BLAS
    if (backend == LC_GEMM_HOST) {
        if (!lc_rt_host_blas_usable(rt))
            return LC_ERR(LC_ERR_UNSUPPORTED, "host BLAS is not usable on device %s", rt->info.name);
        if (lda < (ta ? m : k) || ldb < (tb ? k : n) || ldc < n)
            return LC_ERR(LC_ERR_INVALID, "host sgemm: leading dimension too small (lda=%zu ldb=%zu ldc=%zu)", lda,
                          ldb, ldc);
        return host_sgemm(rt, ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc);
    }
#endif
    return clblast_sgemm(rt, ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc);
}

/* Times one backend on this shape: a warm-up call, then the best of 3. */
static double time_backend(lc_rt *rt, int be, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, cl_mem a,
                           size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, cl_mem c, size_t c_off,
                           size_t ldc)
{
    double best = 1e30;
    for (int r = 0; r < 4; r++) {
        clFinish(rt->queue);
        double t0 = lc_now_s();
        if (lc_rt_sgemm_with(rt, be, ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, 0.0f, c, c_off, ldc) !=
            LC_OK)
            return 1e30;
        clFinish(rt->queue);
        double t = lc_now_s() - t0;
        if (r > 0 && t < best) best = t;
    }
    return best;
}

lc_status lc_rt_sgemm(lc_rt *rt, bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
                      cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta,
                      cl_mem c, size_t c_off, size_t ldc)
{
    if (!rt || !a || !b || !c) return LC_ERR(LC_ERR_INVALID, "lc_rt_sgemm: NULL argument");
    if (m == 0 || n == 0) return LC_OK;
    record_shape(rt, trans_a, trans_b, m, n, k);
    int be = lc_rt_gemm_backend_for(rt, trans_a, trans_b, m, n, k);
    if (be == LC_GEMM_AUTO) {
        if (beta != 0.0f) {
            be = LC_GEMM_CLBLAST; /* C is an input too: no trial runs */
        } else {
            double tc = time_backend(rt, LC_GEMM_CLBLAST, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, b, b_off,
                                     ldb, c, c_off, ldc);
            double th = time_backend(rt, LC_GEMM_HOST, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, b, b_off, ldb,
                                     c, c_off, ldc);
            be = th < tc ? LC_GEMM_HOST : LC_GEMM_CLBLAST;
            LC_DEBUG("gemm %c%c %zux%zux%zu: clblast %.3f ms, host-blas %.3f ms -> %s", trans_a ? 'T' : 'N',
                     trans_b ? 'T' : 'N', m, n, k, tc * 1e3, th * 1e3, lc_rt_gemm_backend_name(be));
            lc_rt_impl *impl = lc_rt_impl_of(rt);
            if (add_choice(impl, (lc_rt_gemm_choice){trans_a, trans_b, m, n, k, be}) == LC_OK) save_choices(rt);
        }
    }
    return lc_rt_sgemm_with(rt, be, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off,
                            ldc);
}

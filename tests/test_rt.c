/* OpenCL runtime: devices, buffers, launches, CLBlast SGEMM, program cache. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "lc_rt.h"
#include "lc_test.h"

#include <ctype.h>
#include <dirent.h>
#include <ftw.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static lc_device_info *g_devs;
static int g_ndev;

/* ---- helpers ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

static void rm_rf(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static int contains_nocase(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < nl && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == nl) return 1;
    }
    return nl == 0;
}

/* A fresh, empty folder under the test temp folder. */
static void fresh_dir(char *out, size_t cap, const char *tag)
{
    static int counter;
    snprintf(out, cap, "%s/%s-%d", lc_test_tmpdir(), tag, counter++);
    rm_rf(out);
    ck_assert_int_eq(mkdir(out, 0700), 0);
}

/* Number of *.bin files in dir; the last one's path in path. */
static int find_bins(const char *dir, char *path, size_t cap)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".bin") == 0) {
            n++;
            if (path) snprintf(path, cap, "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    return n;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static lc_rt *make_rt_opts(const lc_rt_opts *o)
{
    lc_rt *rt = NULL;
    lc_status st = lc_rt_create_opts(&rt, o);
    ck_assert_msg(st == LC_OK, "lc_rt_create(%s): %s", o->selector ? o->selector : "NULL", lc_error_message());
    ck_assert_ptr_nonnull(rt);
    return rt;
}

static lc_rt *make_rt(const char *sel)
{
    lc_rt_opts o = {.selector = sel};
    return make_rt_opts(&o);
}

#define OK(expr)                                                                                                 \
    do {                                                                                                         \
        lc_status st_ = (expr);                                                                                  \
        ck_assert_msg(st_ == LC_OK, "%s: %s", #expr, lc_error_message());                                        \
    } while (0)

/* Runs lc_axpy (y = a x + y) on n elements through `prog` and checks it. */
static void check_axpy(lc_rt *rt, cl_program prog, int n)
{
    cl_kernel k;
    OK(lc_rt_kernel(rt, prog, "lc_axpy", &k));
    float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
    float *got = malloc(sizeof(float) * ((size_t)n + 64));
    for (int i = 0; i < n; i++) { x[i] = (float)i * 0.5f - 3.0f; y[i] = (float)(i % 7) - 1.0f; }
    cl_mem bx, by;
    /* y gets 64 spare floats after n that the rounded-up global size must not touch. */
    OK(lc_rt_alloc(rt, sizeof(float) * (size_t)n, &bx));
    OK(lc_rt_alloc(rt, sizeof(float) * ((size_t)n + 64), &by));
    for (int i = 0; i < 64; i++) got[n + i] = 42.0f;
    OK(lc_rt_write(rt, bx, 0, sizeof(float) * (size_t)n, x));
    OK(lc_rt_write(rt, by, 0, sizeof(float) * (size_t)n, y));
    OK(lc_rt_write(rt, by, sizeof(float) * (size_t)n, sizeof(float) * 64, got + n));
    float a = 1.5f;
    lc_arg args[] = {LC_ARG(n), LC_ARG(a), LC_ARG(bx), LC_ARG(by)};
    OK(lc_rt_set_args(k, args, 4, "lc_axpy"));
    size_t global = (size_t)n, local = 16;
    OK(lc_rt_launch(rt, k, 1, &global, &local, "lc_axpy"));
    OK(lc_rt_read(rt, by, 0, sizeof(float) * ((size_t)n + 64), got));
    for (int i = 0; i < n; i++) ck_assert_float_eq_tol(got[i], 1.5f * x[i] + y[i], 1e-5f);
    for (int i = 0; i < 64; i++) ck_assert_float_eq(got[n + i], 42.0f);
    clReleaseMemObject(bx);
    clReleaseMemObject(by);
    clReleaseKernel(k);
    free(x); free(y); free(got);
}

/* ---- devices ---- */

START_TEST(test_list_devices)
{
    ck_assert_int_gt(g_ndev, 0);
    for (int i = 0; i < g_ndev; i++) {
        ck_assert_int_gt(strlen(g_devs[i].name), 0);
        ck_assert_int_ge(g_devs[i].platform, 0);
        ck_assert_int_ge(g_devs[i].device, 0);
        ck_assert_ptr_nonnull(lc_rt_device_type_name(g_devs[i].type));
        ck_assert_uint_gt(g_devs[i].max_alloc_bytes, 0);
        ck_assert_uint_gt(g_devs[i].max_work_group, 0);
    }
    ck_assert_str_eq(lc_rt_device_type_name(CL_DEVICE_TYPE_GPU), "GPU");
    ck_assert_str_eq(lc_rt_device_type_name(CL_DEVICE_TYPE_CPU), "CPU");
}
END_TEST

START_TEST(test_create_default)
{
    lc_rt_destroy(NULL);
    lc_rt *rt = make_rt(NULL);
    ck_assert_ptr_nonnull(rt->ctx);
    ck_assert_ptr_nonnull(rt->queue);
    ck_assert_ptr_nonnull(rt->device);
    ck_assert_int_gt(strlen(rt->info.name), 0);
    ck_assert(!rt->profiling);
    ck_assert_int_eq(rt->programs_built, 0);
    ck_assert_int_eq(rt->programs_from_cache, 0);
    lc_rt_destroy(rt);
    rt = make_rt("");
    lc_rt_destroy(rt);
}
END_TEST

START_TEST(test_create_index)
{
    char sel[32];
    snprintf(sel, sizeof sel, "%d:%d", g_devs[0].platform, g_devs[0].device);
    lc_rt *rt = NULL;
    OK(lc_rt_create(&rt, sel, true));
    ck_assert_int_eq(rt->info.platform, g_devs[0].platform);
    ck_assert_int_eq(rt->info.device, g_devs[0].device);
    ck_assert_str_eq(rt->info.name, g_devs[0].name);
    ck_assert(rt->profiling);
    lc_rt_destroy(rt);
    if (g_devs[0].platform == 0 && g_devs[0].device == 0) {
        rt = make_rt("0:0");
        ck_assert_str_eq(rt->info.name, g_devs[0].name);
        lc_rt_destroy(rt);
    }
}
END_TEST

START_TEST(test_create_name)
{
    /* A middle part of the first device's name, with its case flipped. */
    const char *name = g_devs[0].name;
    size_t l = strlen(name), from = l > 6 ? 2 : 0, len = l > 6 ? l - 4 : l;
    char sub[256];
    for (size_t i = 0; i < len; i++) {
        char c = name[from + i];
        sub[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    sub[len] = 0;
    lc_rt *rt = make_rt(sub);
    /* The first device whose name matches. */
    int want = -1;
    for (int i = 0; i < g_ndev && want < 0; i++)
        if (contains_nocase(g_devs[i].name, sub)) want = i;
    ck_assert_int_ge(want, 0);
    ck_assert_str_eq(rt->info.name, g_devs[want].name);
    ck_assert_int_eq(rt->info.platform, g_devs[want].platform);
    ck_assert_int_eq(rt->info.device, g_devs[want].device);
    lc_rt_destroy(rt);
}
END_TEST

START_TEST(test_create_bad)
{
    lc_rt *rt = (lc_rt *)1;
    lc_status st = lc_rt_create(&rt, "no-such-device-xyzzy", false);
    ck_assert_int_ne(st, LC_OK);
    ck_assert_ptr_null(rt);
    const char *msg = lc_error_message();
    ck_assert_msg(strstr(msg, "no-such-device-xyzzy") != NULL, "%s", msg);
    for (int i = 0; i < g_ndev; i++) ck_assert_msg(strstr(msg, g_devs[i].name) != NULL, "%s", msg);
    ck_assert_msg(strchr(msg, '\n') == NULL, "one line: %s", msg);

    st = lc_rt_create(&rt, "97:3", false);
    ck_assert_int_ne(st, LC_OK);
    ck_assert_msg(strstr(lc_error_message(), g_devs[0].name) != NULL, "%s", lc_error_message());

    /* The selector's source is named in the error (the CLIs: LAYCA_DEVICE). */
    lc_rt_opts o = {.selector = "still-no-such-device", .selector_source = "LAYCA_DEVICE"};
    st = lc_rt_create_opts(&rt, &o);
    ck_assert_int_ne(st, LC_OK);
    ck_assert_msg(strstr(lc_error_message(), "LAYCA_DEVICE='still-no-such-device'") != NULL, "%s",
                  lc_error_message());
    char sel[32];
    snprintf(sel, sizeof sel, "%d:%d", g_devs[g_ndev - 1].platform, g_devs[g_ndev - 1].device);
    o.selector = sel;
    rt = make_rt_opts(&o);
    ck_assert_str_eq(rt->info.name, g_devs[g_ndev - 1].name);
    lc_rt_destroy(rt);
    /* Options refused before any device is touched. */
    lc_rt_opts bad = {.host_threads = -1};
    ck_assert_int_eq(lc_rt_create_opts(&rt, &bad), LC_ERR_INVALID);
    ck_assert_ptr_null(rt);
    bad = (lc_rt_opts){.gemm = LC_GEMM_MODE_COUNT};
    ck_assert_int_eq(lc_rt_create_opts(&rt, &bad), LC_ERR_INVALID);
    ck_assert_msg(strstr(lc_error_message(), "gemm") != NULL, "%s", lc_error_message());
}
END_TEST

/* ---- errors ---- */

START_TEST(test_error_names)
{
    ck_assert_int_eq(lc_rt_check(CL_SUCCESS, "clFoo"), LC_OK);
    ck_assert_int_eq(lc_rt_check(CL_INVALID_VALUE, "clCreateBuffer"), LC_ERR_DEVICE);
    ck_assert_str_eq(lc_error_message(), "clCreateBuffer failed: CL_INVALID_VALUE (-30)");
    ck_assert_str_eq(lc_rt_cl_error_name(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
    ck_assert_str_eq(lc_rt_cl_error_name(CL_BUILD_PROGRAM_FAILURE), "CL_BUILD_PROGRAM_FAILURE");
    ck_assert_str_eq(lc_rt_cl_error_name(CL_INVALID_KERNEL_NAME), "CL_INVALID_KERNEL_NAME");
    ck_assert_str_eq(lc_rt_cl_error_name(CL_INVALID_DEVICE_PARTITION_COUNT), "CL_INVALID_DEVICE_PARTITION_COUNT");
    ck_assert_str_eq(lc_rt_cl_error_name(-12345), "CL_UNKNOWN_ERROR");
    ck_assert_str_eq(lc_rt_clblast_status_name(-1016), "kInvalidLeadDimA");
    ck_assert_str_eq(lc_rt_clblast_status_name(-5), "CL_OUT_OF_RESOURCES");
}
END_TEST

/* ---- buffers and launches ---- */

START_TEST(test_buffers)
{
    lc_rt *rt = make_rt(NULL);
    enum { N = 1001 };
    float src[N], dst[N];
    for (int i = 0; i < N; i++) src[i] = (float)i * 0.25f - 7.0f;
    cl_mem b;
    OK(lc_rt_alloc(rt, sizeof src, &b));
    OK(lc_rt_write(rt, b, 0, sizeof src, src));
    memset(dst, 0, sizeof dst);
    OK(lc_rt_read(rt, b, 0, sizeof dst, dst));
    ck_assert_int_eq(memcmp(src, dst, sizeof src), 0);
    /* Partial write and read at offsets. */
    float part[5] = {1, 2, 3, 4, 5}, back[7];
    OK(lc_rt_write(rt, b, 10 * sizeof(float), sizeof part, part));
    OK(lc_rt_read(rt, b, 9 * sizeof(float), sizeof back, back));
    ck_assert_float_eq(back[0], src[9]);
    for (int i = 0; i < 5; i++) ck_assert_float_eq(back[1 + i], part[i]);
    ck_assert_float_eq(back[6], src[15]);
    /* Zero a range (4-byte aligned) and an odd byte range. */
    OK(lc_rt_fill_zero(rt, b, 100 * sizeof(float), 50 * sizeof(float)));
    OK(lc_rt_finish(rt));
    OK(lc_rt_read(rt, b, 0, sizeof dst, dst));
    for (int i = 0; i < N; i++) {
        if (i >= 10 && i < 15) ck_assert_float_eq(dst[i], part[i - 10]);
        else if (i >= 100 && i < 150) ck_assert_float_eq(dst[i], 0.0f);
        else ck_assert_float_eq(dst[i], src[i]);
    }
    unsigned char bytes[16];
    memset(bytes, 0xab, sizeof bytes);
    OK(lc_rt_write(rt, b, 0, sizeof bytes, bytes));
    OK(lc_rt_fill_zero(rt, b, 3, 7));
    OK(lc_rt_read(rt, b, 0, sizeof bytes, bytes));
    for (int i = 0; i < 16; i++) ck_assert_uint_eq(bytes[i], (i >= 3 && i < 10) ? 0 : 0xab);
    /* Errors name the call. */
    lc_status st = lc_rt_read(rt, b, sizeof src - 4, 64, dst);
    ck_assert_int_eq(st, LC_ERR_DEVICE);
    ck_assert_msg(strstr(lc_error_message(), "clEnqueueReadBuffer failed: CL_INVALID_VALUE") != NULL, "%s",
                  lc_error_message());
    cl_mem z = NULL;
    ck_assert_int_ne(lc_rt_alloc(rt, 0, &z), LC_OK);
    ck_assert_ptr_null(z);
    clReleaseMemObject(b);
    lc_rt_destroy(rt);
}
END_TEST

START_TEST(test_selftest_kernel)
{
    const char *src = NULL;
    size_t len = 0;
    OK(lc_rt_kernel_source(NULL, "rt_selftest", &src, &len));
    ck_assert_uint_eq(strlen(src), len);
    ck_assert_ptr_nonnull(strstr(src, "lc_axpy"));
    ck_assert_int_eq(lc_rt_kernel_source(NULL, "no_such_kernel_file", &src, &len), LC_ERR_NOT_FOUND);

    lc_rt *rt = make_rt(NULL);
    cl_program p1, p2, p3;
    OK(lc_rt_program(rt, "rt_selftest", "-cl-std=CL1.2", &p1));
    OK(lc_rt_program(rt, "rt_selftest", "-cl-std=CL1.2", &p2));
    ck_assert_ptr_eq(p1, p2); /* memo */
    ck_assert_int_eq(rt->programs_built + rt->programs_from_cache, 1);
    OK(lc_rt_program(rt, "rt_selftest", NULL, &p3));
    ck_assert_ptr_ne(p1, p3);
    ck_assert_int_eq(rt->programs_built + rt->programs_from_cache, 2);
    check_axpy(rt, p1, 1);
    check_axpy(rt, p1, 1001);
    check_axpy(rt, p3, 33);

    cl_kernel k = NULL;
    ck_assert_int_eq(lc_rt_kernel(rt, p1, "no_such_kernel", &k), LC_ERR_DEVICE);
    ck_assert_msg(strstr(lc_error_message(), "clCreateKernel failed: CL_INVALID_KERNEL_NAME (-46)") != NULL, "%s",
                  lc_error_message());
    ck_assert_int_eq(lc_rt_program(rt, "no_such_kernel_file", "", &p2), LC_ERR_NOT_FOUND);

    /* A wrong argument count names the call and both counts; a bad
     * argument (an int for a buffer) the call and the OpenCL error. */
    OK(lc_rt_kernel(rt, p1, "lc_axpy", &k));
    int n = 1;
    lc_arg args[] = {LC_ARG(n), LC_ARG(n), LC_ARG(n), LC_ARG(n), LC_ARG(n)};
    ck_assert_int_eq(lc_rt_set_args(k, args, 5, "axpy-test"), LC_ERR_INVALID);
    ck_assert_msg(strstr(lc_error_message(), "axpy-test: 5 arguments given, the kernel takes 4"), "%s",
                  lc_error_message());
    ck_assert_int_eq(lc_rt_set_args(k, args, 4, "axpy-test"), LC_ERR_DEVICE);
    ck_assert_msg(strstr(lc_error_message(), "axpy-test") && strstr(lc_error_message(), "clSetKernelArg failed"),
                  "%s", lc_error_message());
    clReleaseKernel(k);
    lc_rt_destroy(rt);
}
END_TEST

/* ---- SGEMM ---- */

static void gemm_case_with(lc_rt *rt, int backend, float beta, lc_rng *rng, bool ta, bool tb, size_t m, size_t n,
                           size_t k)
{
    size_t a_rows = ta ? k : m, a_cols = ta ? m : k, lda = a_cols + 3;
    size_t b_rows = tb ? n : k, b_cols = tb ? k : n, ldb = b_cols + 2;
    size_t ldc = n + 1;
    size_t a_off = 5, b_off = 7, c_off = 3;
    size_t na = a_off + a_rows * lda, nb = b_off + b_rows * ldb, nc = c_off + m * ldc + 4;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c);
    float *got = malloc(nc * sizeof *got);
    for (size_t i = 0; i < na; i++) a[i] = (float)(2.0 * lc_rng_uniform(rng) - 1.0);
    for (size_t i = 0; i < nb; i++) b[i] = (float)(2.0 * lc_rng_uniform(rng) - 1.0);
    for (size_t i = 0; i < nc; i++) c[i] = (float)(2.0 * lc_rng_uniform(rng) - 1.0);
    cl_mem da, db, dc;
    OK(lc_rt_alloc(rt, na * sizeof *a, &da));
    OK(lc_rt_alloc(rt, nb * sizeof *b, &db));
    OK(lc_rt_alloc(rt, nc * sizeof *c, &dc));
    OK(lc_rt_write(rt, da, 0, na * sizeof *a, a));
    OK(lc_rt_write(rt, db, 0, nb * sizeof *b, b));
    OK(lc_rt_write(rt, dc, 0, nc * sizeof *c, c));
    const float alpha = 0.75f;
    lc_status st = backend == LC_GEMM_AUTO
                       ? lc_rt_sgemm(rt, ta, tb, m, n, k, alpha, da, a_off, lda, db, b_off, ldb, beta, dc, c_off, ldc)
                       : lc_rt_sgemm_with(rt, backend, ta, tb, m, n, k, alpha, da, a_off, lda, db, b_off, ldb, beta,
                                          dc, c_off, ldc);
    ck_assert_msg(st == LC_OK, "sgemm %c%c m=%zu n=%zu k=%zu: %s", ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k,
                  lc_error_message());
    OK(lc_rt_read(rt, dc, 0, nc * sizeof *got, got));
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            double s = 0, mag = 0;
            for (size_t p = 0; p < k; p++) {
                double av = ta ? a[a_off + p * lda + i] : a[a_off + i * lda + p];
                double bv = tb ? b[b_off + j * ldb + p] : b[b_off + p * ldb + j];
                s += av * bv;
                mag += fabs(av * bv);
            }
            double c0 = c[c_off + i * ldc + j];
            double ref = alpha * s + beta * c0;
            double scale = fabs(alpha) * mag + fabs(beta * c0);
            double g = got[c_off + i * ldc + j];
            ck_assert_msg(fabs(g - ref) <= 1e-4 * fmax(scale, 1e-6),
                          "sgemm %c%c m=%zu n=%zu k=%zu at (%zu,%zu): got %.7g want %.7g", ta ? 'T' : 'N',
                          tb ? 'T' : 'N', m, n, k, i, j, g, ref);
        }
    }
    /* Outside the C window nothing changes. */
    for (size_t idx = 0; idx < nc; idx++) {
        bool inside = idx >= c_off && idx < c_off + m * ldc && (idx - c_off) % ldc < n;
        if (!inside) ck_assert_float_eq(got[idx], c[idx]);
    }
    clReleaseMemObject(da);
    clReleaseMemObject(db);
    clReleaseMemObject(dc);
    free(a); free(b); free(c); free(got);
}

static void set_cache_dir_early(char *dir, size_t cap, const char *tag)
{
    fresh_dir(dir, cap, tag);
    OK(lc_cache_dir_set(dir));
}

static void gemm_case(lc_rt *rt, lc_rng *rng, bool ta, bool tb, size_t m, size_t n, size_t k)
{
    gemm_case_with(rt, LC_GEMM_AUTO, -0.5f, rng, ta, tb, m, n, k);
}

/* Every backend usable here, on the same odd shapes, with and without beta. */
START_TEST(test_sgemm_backends)
{
    char dir[512];
    set_cache_dir_early(dir, sizeof dir, "gemm");
    lc_rt *rt = make_rt(NULL);
    lc_rng rng;
    lc_rng_seed(&rng, 99);
    static const size_t sizes[][3] = {{1, 1, 1}, {31, 33, 65}, {65, 31, 33}, {33, 65, 1}};
    int backends[2] = {LC_GEMM_CLBLAST, LC_GEMM_HOST};
    int nb = lc_rt_host_blas_usable(rt) ? 2 : 1;
    for (int be = 0; be < nb; be++)
        for (int t = 0; t < 4; t++)
            for (size_t s = 0; s < LC_COUNTOF(sizes); s++) {
                gemm_case_with(rt, backends[be], -0.5f, &rng, t & 1, (t >> 1) & 1, sizes[s][0], sizes[s][1], sizes[s][2]);
                gemm_case_with(rt, backends[be], 0.0f, &rng, t & 1, (t >> 1) & 1, sizes[s][0], sizes[s][1], sizes[s][2]);
            }
    /* the host BLAS is the default where it is usable */
    ck_assert_int_eq(lc_rt_gemm_backend_for(rt, false, true, 64, 48, 40), nb == 2 ? LC_GEMM_HOST : LC_GEMM_CLBLAST);
    /* with LC_GEMM_MODE_TIME and beta == 0 the automatic choice times the
     * candidates once and remembers the winner, also for the next rt */
    lc_rt_destroy(rt);
    lc_rt_opts timed = {.gemm = LC_GEMM_MODE_TIME};
    rt = make_rt_opts(&timed);
    ck_assert_int_eq(lc_rt_gemm_backend_for(rt, false, true, 64, 48, 40), nb == 2 ? LC_GEMM_AUTO : LC_GEMM_CLBLAST);
    gemm_case_with(rt, LC_GEMM_AUTO, 0.0f, &rng, false, true, 64, 48, 40);
    int chosen = lc_rt_gemm_backend_for(rt, false, true, 64, 48, 40);
    ck_assert(chosen == LC_GEMM_CLBLAST || chosen == LC_GEMM_HOST);
    lc_rt_destroy(rt);
    rt = make_rt_opts(&timed);
    ck_assert_int_eq(lc_rt_gemm_backend_for(rt, false, true, 64, 48, 40), chosen);
    lc_rt_destroy(rt);
    /* forced backends */
    lc_rt_opts forced = {.gemm = LC_GEMM_MODE_CLBLAST};
    rt = make_rt_opts(&forced);
    ck_assert_int_eq(lc_rt_gemm_backend_for(rt, false, true, 64, 48, 40), LC_GEMM_CLBLAST);
    lc_rt_destroy(rt);
    forced.gemm = LC_GEMM_MODE_HOST;
    rt = make_rt_opts(&forced);
    ck_assert_int_eq(lc_rt_gemm_backend_for(rt, false, true, 64, 48, 40), nb == 2 ? LC_GEMM_HOST : LC_GEMM_CLBLAST);
    lc_rt_destroy(rt);
}
END_TEST

START_TEST(test_sgemm)
{
    lc_rt *rt = make_rt(NULL);
    lc_rng rng;
    lc_rng_seed(&rng, 1234);
    static const size_t sizes[][3] = {{1, 1, 1}, {31, 33, 65}, {65, 31, 33}, {33, 65, 1}, {1, 65, 31}, {65, 1, 33}};
    for (int t = 0; t < 4; t++)
        for (size_t s = 0; s < LC_COUNTOF(sizes); s++)
            gemm_case(rt, &rng, t & 1, (t >> 1) & 1, sizes[s][0], sizes[s][1], sizes[s][2]);
    /* shapes large enough for CLBlast's indirect kernel (padded copies) */
    static const size_t large[][3] = {{32, 784, 784}, {784, 784, 32}, {100, 300, 257}};
    for (int t = 0; t < 4; t++)
        for (size_t s = 0; s < LC_COUNTOF(large); s++)
            gemm_case_with(rt, LC_GEMM_CLBLAST, -0.5f, &rng, t & 1, (t >> 1) & 1, large[s][0], large[s][1],
                           large[s][2]);

    /* A leading dimension smaller than the row: CLBlast's status is named. */
    cl_mem d;
    OK(lc_rt_alloc(rt, 1024 * sizeof(float), &d));
    lc_status st = lc_rt_sgemm_with(rt, LC_GEMM_CLBLAST, false, false, 4, 4, 8, 1.0f, d, 0, 2, d, 0, 4, 0.0f, d, 0, 4);
    ck_assert_int_eq(st, LC_ERR_DEVICE);
    ck_assert_msg(strstr(lc_error_message(), "CLBlastSgemm failed: kInvalidLeadDimA (-1016)") != NULL, "%s",
                  lc_error_message());
    OK(lc_rt_sgemm(rt, false, false, 0, 4, 8, 1.0f, d, 0, 8, d, 0, 4, 0.0f, d, 0, 4)); /* empty */
    clReleaseMemObject(d);
    lc_rt_destroy(rt);
}
END_TEST

/* Strided-batched SGEMM against a double-precision loop: odd shapes, every
 * transpose, offsets, leading dimensions past the rows, strides past the
 * matrices (A shared by all: stride 0), beta 0 and not; nothing outside
 * the C windows changes; bad arguments are refused. */
static void sb_case(lc_rt *rt, lc_rng *rng, bool ta, bool tb, size_t m, size_t n, size_t k, size_t batch, float beta,
                    bool shared_a)
{
    size_t a_rows = ta ? k : m, a_cols = ta ? m : k, lda = a_cols + 1;
    size_t b_rows = tb ? n : k, b_cols = tb ? k : n, ldb = b_cols + 2;
    size_t ldc = n + 3;
    size_t sa = shared_a ? 0 : a_rows * lda + 5, sb = b_rows * ldb + 1, sc = m * ldc + 7;
    size_t a_off = 3, b_off = 9, c_off = 2;
    size_t na = a_off + (batch - 1) * sa + a_rows * lda, nbf = b_off + (batch - 1) * sb + b_rows * ldb;
    size_t nc = c_off + (batch - 1) * sc + m * ldc + 4;
    float *a = malloc(na * 4), *b = malloc(nbf * 4), *c = malloc(nc * 4), *got = malloc(nc * 4);
    for (size_t i = 0; i < na; i++) a[i] = (float)(2.0 * lc_rng_uniform(rng) - 1.0);
    for (size_t i = 0; i < nbf; i++) b[i] = (float)(2.0 * lc_rng_uniform(rng) - 1.0);
    for (size_t i = 0; i < nc; i++) c[i] = (float)(2.0 * lc_rng_uniform(rng) - 1.0);
    cl_mem da, db, dc;
    OK(lc_rt_alloc(rt, na * 4, &da));
    OK(lc_rt_alloc(rt, nbf * 4, &db));
    OK(lc_rt_alloc(rt, nc * 4, &dc));
    OK(lc_rt_write(rt, da, 0, na * 4, a));
    OK(lc_rt_write(rt, db, 0, nbf * 4, b));
    OK(lc_rt_write(rt, dc, 0, nc * 4, c));
    const float alpha = 1.25f;
    lc_status st = lc_rt_sgemm_strided_batched(rt, ta, tb, m, n, k, alpha, da, a_off, lda, sa, db, b_off, ldb, sb,
                                               beta, dc, c_off, ldc, sc, batch);
    ck_assert_msg(st == LC_OK, "batched sgemm %c%c m=%zu n=%zu k=%zu batch %zu: %s", ta ? 'T' : 'N', tb ? 'T' : 'N',
                  m, n, k, batch, lc_error_message());
    OK(lc_rt_read(rt, dc, 0, nc * 4, got));
    char *inside = calloc(nc, 1);
    for (size_t q = 0; q < batch; q++)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                const float *aq = a + a_off + q * sa, *bq = b + b_off + q * sb;
                double s = 0, mag = 0;
                for (size_t p = 0; p < k; p++) {
                    double av = ta ? aq[p * lda + i] : aq[i * lda + p], bv = tb ? bq[j * ldb + p] : bq[p * ldb + j];
                    s += av * bv;
                    mag += fabs(av * bv);
                }
                size_t at = c_off + q * sc + i * ldc + j;
                double ref = alpha * s + beta * c[at], g = got[at];
                ck_assert_msg(fabs(g - ref) <= 1e-4 * fmax(fabs(alpha) * mag + fabs(beta * c[at]), 1e-6),
                              "batched sgemm %c%c m=%zu n=%zu k=%zu, matrix %zu at (%zu,%zu): got %.7g want %.7g",
                              ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, q, i, j, g, ref);
                inside[at] = 1;
            }
    for (size_t i = 0; i < nc; i++)
        if (!inside[i]) ck_assert_float_eq(got[i], c[i]);
    free(inside);
    clReleaseMemObject(da);
    clReleaseMemObject(db);
    clReleaseMemObject(dc);
    free(a); free(b); free(c); free(got);
}

START_TEST(test_sgemm_strided_batched)
{
    lc_rt *rt = make_rt(NULL);
    lc_rng rng;
    lc_rng_seed(&rng, 4321);
    static const size_t sizes[][4] = {{1, 1, 1, 1}, {31, 33, 65, 3}, {65, 31, 33, 2}, {33, 65, 1, 5}, {3, 17, 31, 33}};
    long calls = rt->gemm_calls[LC_GEMM_CLBLAST];
    for (int t = 0; t < 4; t++)
        for (size_t s = 0; s < LC_COUNTOF(sizes); s++)
            sb_case(rt, &rng, t & 1, (t >> 1) & 1, sizes[s][0], sizes[s][1], sizes[s][2], sizes[s][3],
                    s % 2 ? 0.0f : -0.5f, t == 1 || s == 4);
    ck_assert_int_ge(rt->gemm_calls[LC_GEMM_CLBLAST] - calls, 20); /* through CLBlast, whatever the plain backend */
    cl_mem d;
    OK(lc_rt_alloc(rt, 1024 * sizeof(float), &d));
    /* a leading dimension smaller than the row */
    ck_assert_int_eq(lc_rt_sgemm_strided_batched(rt, false, false, 4, 4, 8, 1.0f, d, 0, 2, 0, d, 0, 4, 32, 0.0f, d, 0,
                                                 4, 16, 2),
                     LC_ERR_INVALID);
    ck_assert_msg(strstr(lc_error_message(), "leading dimension"), "%s", lc_error_message());
    /* past CLBlast's 32-bit range */
    ck_assert_int_eq(lc_rt_sgemm_strided_batched(rt, false, false, 4, 4, 8, 1.0f, d, 0, 8, 0, d, 0, 4, (size_t)1 << 30,
                                                 0.0f, d, 0, 4, 16, 3),
                     LC_ERR_UNSUPPORTED);
    ck_assert_int_eq(lc_rt_sgemm_strided_batched(rt, false, false, 4, 4, 8, 1.0f, NULL, 0, 8, 0, d, 0, 4, 0, 0.0f, d,
                                                 0, 4, 16, 2),
                     LC_ERR_INVALID);
    OK(lc_rt_sgemm_strided_batched(rt, false, false, 4, 4, 8, 1.0f, d, 0, 8, 0, d, 0, 4, 0, 0.0f, d, 0, 4, 16, 0));
    clReleaseMemObject(d);
    lc_rt_destroy(rt);
}
END_TEST

/* ---- host access (CPU devices whose buffers live in host memory) ---- */

typedef struct par_ctx { int *hits; } par_ctx;
static void par_task(void *p, int i) { __atomic_fetch_add(&((par_ctx *)p)->hits[i], 1, __ATOMIC_RELAXED); }

/* The worker pool runs every index once, also many times in a row; maps see
 * the device's writes and the device sees the host's; choices made by
 * timing survive a new rt; the host SGEMM on host pointers. */
START_TEST(test_host_access)
{
    char dir[512];
    set_cache_dir_early(dir, sizeof dir, "host");
    /* the thread count: the option, at most 64 */
    lc_rt_opts th = {.host_threads = 3};
    lc_rt *rt = make_rt_opts(&th);
    ck_assert_int_eq(lc_rt_host_threads(rt), 3);
    lc_rt_destroy(rt);
    th.host_threads = 1000;
    rt = make_rt_opts(&th);
    ck_assert_int_eq(lc_rt_host_threads(rt), 64);
    lc_rt_destroy(rt);
    rt = make_rt(NULL);
    ck_assert_int_ge(lc_rt_host_threads(rt), 1);
    enum { N = 1001 };
    int *hits = calloc(N, sizeof *hits);
    par_ctx c = {hits};
    for (int rep = 0; rep < 50; rep++) lc_rt_host_parallel(rt, rep == 0 ? 1 : N, par_task, &c);
    ck_assert_int_eq(hits[0], 50);
    for (int i = 1; i < N; i++) ck_assert_int_eq(hits[i], 49);
    lc_rt_host_parallel(rt, 0, par_task, &c); /* nothing */
    free(hits);

    ck_assert_int_eq(lc_rt_choice_get(rt, "test|key"), -1);
    lc_rt_choice_set(rt, "test|key", 3);
    lc_rt_choice_set(rt, "test|other", 1);
    lc_rt_choice_set(rt, "test|key", 2);
    ck_assert_int_eq(lc_rt_choice_get(rt, "test|key"), 2);

    if (lc_rt_host_blas_usable(rt)) {
        cl_mem b;
        OK(lc_rt_alloc(rt, 64 * sizeof(float), &b));
        float v[64];
        for (int i = 0; i < 64; i++) v[i] = (float)i;
        OK(lc_rt_write(rt, b, 0, sizeof v, v));
        float *p;
        OK(lc_rt_map(rt, b, &p));
        for (int i = 0; i < 64; i++) ck_assert_float_eq(p[i], (float)i);
        /* C (2x3) = A (2x4) B (4x3) on the host, into the mapped buffer */
        for (int i = 0; i < 8; i++) p[i] = (float)(i + 1);       /* A */
        for (int i = 0; i < 12; i++) p[8 + i] = (float)(i % 5);  /* B */
        OK(lc_rt_host_sgemm(false, false, 2, 3, 4, 1.0f, p, 4, p + 8, 3, 0.0f, p + 20, 3));
        OK(lc_rt_unmap(rt, b, p));
        OK(lc_rt_read(rt, b, 0, sizeof v, v));
        for (int r = 0; r < 2; r++)
            for (int col = 0; col < 3; col++) {
                float want = 0;
                for (int k = 0; k < 4; k++) want += (float)(r * 4 + k + 1) * (float)((k * 3 + col) % 5);
                ck_assert_float_eq_tol(v[20 + r * 3 + col], want, 1e-4f);
            }
        clReleaseMemObject(b);
        int old = lc_rt_host_blas_threads(1);
        ck_assert_int_ge(old, 1);
        ck_assert_int_eq(lc_rt_host_blas_threads(old), 1);
    }
    lc_rt_destroy(rt);
    rt = make_rt(NULL);
    ck_assert_int_eq(lc_rt_choice_get(rt, "test|key"), 2);
    ck_assert_int_eq(lc_rt_choice_get(rt, "test|other"), 1);
    lc_rt_destroy(rt);
}
END_TEST

/* ---- program cache ---- */

static void set_cache_dir(char *dir, size_t cap, const char *tag)
{
    fresh_dir(dir, cap, tag);
    OK(lc_cache_dir_set(dir));
}

/* Fresh rt, builds rt_selftest, checks where it came from, runs it. */
static void cache_round(int want_built, int want_cached)
{
    lc_rt *rt = make_rt(NULL);
    cl_program p;
    OK(lc_rt_program(rt, "rt_selftest", "-cl-std=CL1.2", &p));
    ck_assert_int_eq(rt->programs_built, want_built);
    ck_assert_int_eq(rt->programs_from_cache, want_cached);
    check_axpy(rt, p, 37);
    lc_rt_destroy(rt);
}

START_TEST(test_program_cache)
{
    char dir[512], bin[1024];
    set_cache_dir(dir, sizeof dir, "cache");
    lc_rt *rt = make_rt(NULL);
    ck_assert_str_eq(rt->cache_dir, dir);
    lc_rt_destroy(rt);

    cache_round(1, 0); /* builds, writes the entry */
    ck_assert_int_eq(find_bins(dir, bin, sizeof bin), 1);
    cache_round(0, 1); /* loads it */

    /* Flip bytes in the middle of the binary. */
    uint8_t *data;
    size_t len;
    OK(lc_file_read(bin, &data, &len));
    ck_assert_uint_gt(len, 64);
    for (size_t i = 0; i < 8; i++) data[len / 2 + i] ^= 0x5a;
    write_file(bin, data, len);
    cache_round(1, 0); /* rejected, rebuilt, rewritten */
    cache_round(0, 1);

    /* Truncated in the binary, then in the header. */
    write_file(bin, data, len - 100);
    cache_round(1, 0);
    write_file(bin, data, 20);
    cache_round(1, 0);
    cache_round(0, 1);

    /* A header whose key is changed. */
    free(data);
    OK(lc_file_read(bin, &data, &len));
    data[20] ^= 1;
    write_file(bin, data, len);
    cache_round(1, 0);
    /* An empty file. */
    write_file(bin, data, 0);
    cache_round(1, 0);
    cache_round(0, 1);
    free(data);
    ck_assert_int_eq(find_bins(dir, NULL, 0), 1);

    /* Other options are another entry. */
    rt = make_rt(NULL);
    cl_program p;
    OK(lc_rt_program(rt, "rt_selftest", "-cl-std=CL1.2 -DLC_UNUSED=1", &p));
    ck_assert_int_eq(rt->programs_built, 1);
    lc_rt_destroy(rt);
    ck_assert_int_eq(find_bins(dir, NULL, 0), 2);

    /* No cache folder: no disk cache. */
    OK(lc_cache_dir_set(NULL));
    rt = make_rt(NULL);
    ck_assert_str_eq(rt->cache_dir, "");
    OK(lc_rt_program(rt, "rt_selftest", "-cl-std=CL1.2", &p));
    ck_assert_int_eq(rt->programs_built, 1);
    ck_assert_int_eq(rt->programs_from_cache, 0);
    lc_rt_destroy(rt);
    set_cache_dir(dir, sizeof dir, "cache-after");
}
END_TEST

/* The two .bin entries of dir: the one listing lc_axpy (rt_selftest) in
 * mine, the other in theirs. */
static void two_entries(const char *dir, char *mine, char *theirs, size_t cap)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    mine[0] = theirs[0] = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l <= 4 || strcmp(e->d_name + l - 4, ".bin")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        uint8_t *data;
        size_t len;
        OK(lc_file_read(p, &data, &len));
        ck_assert_uint_gt(len, 64);
        bool axpy = false;
        for (size_t i = 64; i + 8 <= len && !axpy; i++) axpy = !memcmp(data + i, "lc_axpy\n", 8);
        snprintf(axpy ? mine : theirs, cap, "%s", p);
        free(data);
        n++;
    }
    closedir(d);
    ck_assert_int_eq(n, 2);
    ck_assert(mine[0] && theirs[0]);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Writes at `path` the entry `from` re-labelled with path's key (and, when
 * names is not NULL, that kernel list) and a correct checksum, as a
 * misplaced or forged file would be: every header check passes. */
static void forge_entry(const char *path, const char *from, const char *names)
{
    uint8_t *own, *other;
    size_t own_len, other_len;
    OK(lc_file_read(path, &own, &own_len));
    OK(lc_file_read(from, &other, &other_len));
    uint64_t nlen = 0;
    for (int i = 0; i < 8; i++) nlen |= (uint64_t)other[48 + i] << (8 * i);
    size_t nl = names ? strlen(names) : (size_t)nlen, bl = other_len - 64 - (size_t)nlen;
    size_t len = 64 + nl + bl;
    uint8_t *f = malloc(len);
    ck_assert_ptr_nonnull(f);
    memcpy(f, other, 64);
    memcpy(f + 16, own + 16, 32); /* the key */
    put_le64(f + 48, nl);
    memcpy(f + 64, names ? (const uint8_t *)names : other + 64, nl);
    memcpy(f + 64 + nl, other + 64 + nlen, bl);
    put_le64(f + 8, lc_hash64(f + 16, len - 16, 0x4c4342494e32ULL));
    write_file(path, f, len);
    free(f);
    free(own);
    free(other);
}

/* A cache entry that passes every header check but holds another program's
 * valid binary (the probe's entry made every later run fail with
 * CL_INVALID_KERNEL_NAME) is rejected, rebuilt from source and rewritten. */
START_TEST(test_program_cache_foreign)
{
    char dir[512], mine[1024], theirs[1024];
    set_cache_dir(dir, sizeof dir, "cache-foreign");
    lc_rt *rt = make_rt(NULL);
    cl_program p;
    OK(lc_rt_program(rt, "rt_selftest", "-cl-std=CL1.2", &p));
    OK(lc_rt_program(rt, "bench", "-cl-std=CL1.2", &p));
    ck_assert_int_eq(rt->programs_built, 2);
    lc_rt_destroy(rt);
    two_entries(dir, mine, theirs, sizeof mine);

    /* bench's entry under rt_selftest's key: its kernels are not in the source */
    forge_entry(mine, theirs, NULL);
    cache_round(1, 0); /* rejected, rebuilt, lc_axpy runs */
    cache_round(0, 1); /* and the entry was rewritten */

    /* the same binary claiming rt_selftest's kernel list: the loaded
     * program's kernels do not match the list */
    forge_entry(mine, theirs, "lc_axpy\n");
    cache_round(1, 0);
    cache_round(0, 1);
    /* an extra kernel listed */
    forge_entry(mine, mine, "lc_axpy\nlc_other\n");
    cache_round(1, 0);
    cache_round(0, 1);
}
END_TEST

START_TEST(test_build_error)
{
    char cache[512], kdir[512], path[700];
    set_cache_dir(cache, sizeof cache, "cache-broken");
    fresh_dir(kdir, sizeof kdir, "kernels-broken");
    snprintf(path, sizeof path, "%s/rt_selftest.cl", kdir);
    const char *broken = "__kernel void lc_axpy(__global float *y)\n{\n    y[0] = lc_undeclared_thing + ;\n}\n";
    write_file(path, broken, strlen(broken));

    const char *src = NULL;
    size_t len = 0;
    OK(lc_rt_kernel_source(kdir, "rt_selftest", &src, &len));
    ck_assert_uint_eq(len, strlen(broken));
    ck_assert_str_eq(src, broken);
    char *dup = NULL;
    OK(lc_rt_kernel_source_dup(kdir, "rt_selftest", &dup, &len));
    ck_assert_str_eq(dup, broken);
    free(dup);
    ck_assert_int_eq(lc_rt_kernel_source(kdir, "not_in_the_folder", &src, &len), LC_ERR_NOT_FOUND);

    lc_rt_opts ko = {.kernel_dir = kdir};
    lc_rt *rt = make_rt_opts(&ko);
    cl_program p = NULL;
    lc_status st = lc_rt_program(rt, "rt_selftest", "-cl-std=CL1.2", &p);
    const char *msg = lc_error_message();
    ck_assert_int_eq(st, LC_ERR_DEVICE);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(msg, "rt_selftest") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "CL_BUILD_PROGRAM_FAILURE") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "error") != NULL, "build log expected: %s", msg);
    ck_assert_msg(strchr(msg, '\n') == NULL, "one line: %s", msg);
    ck_assert_int_eq(rt->programs_built, 0);
    ck_assert_int_eq(find_bins(cache, NULL, 0), 0);
    lc_rt_destroy(rt);

    /* Without the folder, the embedded source. */
    rt = make_rt(NULL);
    OK(lc_rt_program(rt, "rt_selftest", "-cl-std=CL1.2", &p));
    check_axpy(rt, p, 5);
    lc_rt_destroy(rt);
}
END_TEST

/* ---- device-only mode, device choice, work-groups, memory, 64-bit ---- */

/* Device-only mode turns every host path off: GEMMs go to CLBlast (even
 * when the options ask for the host backend), no buffer is mapped, lc_rt_map and
 * the host backend refuse; the same GEMMs on a default rt of a host-memory
 * CPU device do take the host BLAS (the switch is what makes the
 * difference). */
START_TEST(test_device_only)
{
    lc_rt *rt = NULL;
    lc_rt_opts o = {.device_only = true};
    OK(lc_rt_create_opts(&rt, &o));
    ck_assert(rt->device_only);
    ck_assert(!lc_rt_host_blas_usable(rt));
    ck_assert_int_eq(lc_rt_gemm_backend_for(rt, false, true, 64, 48, 40), LC_GEMM_CLBLAST);
    lc_rt_destroy(rt);
    o.gemm = LC_GEMM_MODE_HOST;
    OK(lc_rt_create_opts(&rt, &o));
    ck_assert_int_eq(lc_rt_gemm_backend_for(rt, false, true, 64, 48, 40), LC_GEMM_CLBLAST);
    lc_rng rng;
    lc_rng_seed(&rng, 5);
    gemm_case(rt, &rng, false, true, 33, 31, 65);
    gemm_case(rt, &rng, true, false, 17, 9, 5);
    ck_assert_int_eq(rt->gemm_calls[LC_GEMM_CLBLAST], 2);
    ck_assert_int_eq(rt->gemm_calls[LC_GEMM_HOST], 0);
    cl_mem b;
    OK(lc_rt_alloc(rt, 256, &b));
    float *p = NULL;
    ck_assert_int_eq(lc_rt_map(rt, b, &p), LC_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(lc_error_message(), "device-only") != NULL, "%s", lc_error_message());
    ck_assert_ptr_null(p);
    ck_assert_int_eq(lc_rt_sgemm_with(rt, LC_GEMM_HOST, false, false, 2, 2, 2, 1.0f, b, 0, 2, b, 4, 2, 0.0f, b, 8, 2),
                     LC_ERR_UNSUPPORTED);
    ck_assert_int_eq(rt->host_maps, 0);
    clReleaseMemObject(b);
    lc_rt_destroy(rt);

    rt = make_rt(NULL);
    ck_assert(!rt->device_only);
    if (lc_rt_host_blas_usable(rt)) {
        gemm_case(rt, &rng, false, true, 33, 31, 65);
        ck_assert_int_eq(rt->gemm_calls[LC_GEMM_HOST], 1);
        ck_assert_int_gt(rt->host_maps, 0);
    }
    lc_rt_destroy(rt);
}
END_TEST

START_TEST(test_opencl_c_version)
{
    ck_assert(lc_rt_opencl_c_at_least("OpenCL C 1.2 PoCL", 1, 2));
    ck_assert(lc_rt_opencl_c_at_least("OpenCL C 1.2 ", 1, 2));
    ck_assert(lc_rt_opencl_c_at_least("OpenCL C 3.0", 1, 2));
    ck_assert(lc_rt_opencl_c_at_least("OpenCL C 2.10 x", 2, 2));
    ck_assert(!lc_rt_opencl_c_at_least("OpenCL C 1.1 Mesa", 1, 2));
    ck_assert(!lc_rt_opencl_c_at_least("OpenCL C 1.0", 1, 2));
    ck_assert(!lc_rt_opencl_c_at_least("OpenCL 1.2", 1, 2));
    ck_assert(!lc_rt_opencl_c_at_least("OpenCL C x.y", 1, 2));
    ck_assert(!lc_rt_opencl_c_at_least("", 1, 2));
    ck_assert(!lc_rt_opencl_c_at_least(NULL, 1, 2));
    /* every device the runtime accepts by default builds OpenCL C 1.2 */
    lc_rt *rt = make_rt(NULL);
    ck_assert_msg(lc_rt_opencl_c_at_least(rt->info.opencl_c_version, 1, 2), "%s", rt->info.opencl_c_version);
    ck_assert(rt->info.compiler_available);
    lc_rt_destroy(rt);
}
END_TEST

/* Work-group sizes come from the device's and the kernel's limits: the
 * probe kernel (a fixed size from a build-time macro) is built for at most
 * 64 work-items, runs with the size chosen, and computes y = x^2 + 1. */
START_TEST(test_work_groups)
{
    lc_rt *rt = make_rt(NULL);
    size_t maxwg = rt->info.max_work_group;
    for (size_t want = 0; want <= 300; want += 7) {
        size_t c = lc_rt_wg_cap(rt, want);
        ck_assert_uint_ge(c, 1);
        ck_assert_uint_eq(c & (c - 1), 0);
        ck_assert_uint_le(c, want > 0 ? want : 1);
        ck_assert_uint_le(c, maxwg);
        ck_assert_uint_gt(2 * c, LC_MIN(want, LC_MIN(maxwg, rt->info.max_work_item0)));
    }
    static const char *const kn[] = {"lc_probe"};
    cl_program prog;
    size_t wg = 0;
    OK(lc_rt_program_wg(rt, "probe", "", "LC_PROBE_WG", 64, kn, 1, &prog, &wg));
    ck_assert_uint_ge(wg, 1);
    ck_assert_uint_le(wg, 64);
    ck_assert_uint_le(wg, maxwg);
    ck_assert_uint_eq(wg & (wg - 1), 0);
    cl_kernel k;
    OK(lc_rt_kernel(rt, prog, "lc_probe", &k));
    size_t kwg = 0;
    OK(lc_rt_kernel_wg(rt, k, &kwg));
    ck_assert_uint_ge(kwg, wg);
    size_t groups = 3, n = groups * wg * 16;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    for (size_t i = 0; i < n; i++) x[i] = (float)((int)(i % 13) - 6) * 0.5f;
    cl_mem bx, by, bt, bs;
    cl_long4 table[3];
    memset(table, 0, sizeof table);
    OK(lc_rt_alloc(rt, n * 4, &bx));
    OK(lc_rt_alloc(rt, n * 4, &by));
    OK(lc_rt_alloc(rt, sizeof table, &bt));
    OK(lc_rt_alloc(rt, groups * 4, &bs));
    OK(lc_rt_write(rt, bx, 0, n * 4, x));
    OK(lc_rt_write(rt, bt, 0, sizeof table, table));
    cl_ulong off = 0, nn = n;
    lc_arg args[] = {LC_ARG(by), LC_ARG(off), LC_ARG(bx), LC_ARG(off), LC_ARG(nn), LC_ARG(bt), LC_ARG(bs)};
    OK(lc_rt_set_args(k, args, 7, "lc_probe"));
    size_t global = groups * wg;
    OK(lc_rt_launch(rt, k, 1, &global, &wg, "lc_probe"));
    OK(lc_rt_read(rt, by, 0, n * 4, y));
    for (size_t i = 0; i < n; i++) ck_assert_float_eq(y[i], x[i] * x[i] + 1.0f);
    /* more work-items than the kernel allows is refused by the device */
    if (kwg < 4096) {
        size_t big = kwg * 2, gbig = big;
        ck_assert_int_eq(lc_rt_launch(rt, k, 1, &gbig, &big, "lc_probe"), LC_ERR_DEVICE);
    }
    clReleaseKernel(k);
    cl_mem bufs[] = {bx, by, bt, bs};
    for (int i = 0; i < 4; i++) clReleaseMemObject(bufs[i]);
    free(x);
    free(y);
    lc_rt_destroy(rt);
}
END_TEST

/* A device whose compiler cannot build the probe program: chosen
 * explicitly, the error carries the build log; by default, no device is
 * left and the error gives each one's reason. */
START_TEST(test_probe_failure)
{
    char cache[512], kdir[512], path[700];
    set_cache_dir(cache, sizeof cache, "cache-probe");
    fresh_dir(kdir, sizeof kdir, "kernels-probe");
    snprintf(path, sizeof path, "%s/probe.cl", kdir);
    const char *broken = "__kernel void lc_probe(__global float *y)\n{\n    y[0] = lc_no_such_builtin_xyzzy(1.0f);\n}\n";
    write_file(path, broken, strlen(broken));
    char sel[32];
    snprintf(sel, sizeof sel, "%d:%d", g_devs[0].platform, g_devs[0].device);
    lc_rt *rt = (lc_rt *)1;
    lc_rt_opts ko = {.selector = sel, .kernel_dir = kdir};
    lc_status st = lc_rt_create_opts(&rt, &ko);
    const char *msg = lc_error_message();
    ck_assert_int_eq(st, LC_ERR_DEVICE);
    ck_assert_ptr_null(rt);
    ck_assert_msg(strstr(msg, "cannot build layca's kernels") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, g_devs[0].name) != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "lc_no_such_builtin_xyzzy") != NULL, "build log expected: %s", msg);
    ck_assert_msg(strchr(msg, '\n') == NULL, "one line: %s", msg);
    ko.selector = NULL;
    st = lc_rt_create_opts(&rt, &ko);
    msg = lc_error_message();
    ck_assert_int_eq(st, LC_ERR_DEVICE);
    ck_assert_ptr_null(rt);
    ck_assert_msg(strstr(msg, "no OpenCL device can build layca's kernels") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, g_devs[0].name) != NULL, "%s", msg);
    rt = make_rt(sel);
    lc_rt_destroy(rt);
}
END_TEST

/* Sub-buffers start at the device's alignment at or before the origin
 * asked for and see the parent's bytes; CLBlast refuses operands past its
 * 32-bit range before launching anything. */
START_TEST(test_sub_buffers)
{
    lc_rt *rt = make_rt(NULL);
    ck_assert_uint_ge(rt->info.mem_base_align, 4);
    enum { N = 1 << 16 };
    float *v = malloc(N * 4), *got = malloc(N * 4);
    for (int i = 0; i < N; i++) v[i] = (float)i;
    cl_mem b;
    OK(lc_rt_alloc(rt, N * 4, &b));
    OK(lc_rt_write(rt, b, 0, N * 4, v));
    static const uint64_t origins[] = {0, 4, 4 * 1001, 4 * 40000 + 4 * 7, 4 * (N - 1)};
    for (size_t i = 0; i < LC_COUNTOF(origins); i++) {
        cl_mem sub;
        uint64_t shift = 99;
        OK(lc_rt_sub_buffer(rt, b, origins[i], &sub, &shift));
        uint64_t start = lc_rt_sub_buffer_start(rt, origins[i]);
        ck_assert_uint_eq(start % rt->info.mem_base_align, 0);
        ck_assert_uint_eq(start + shift, origins[i]);
        ck_assert_uint_lt(shift, rt->info.mem_base_align);
        float f;
        OK(lc_rt_read(rt, sub, (size_t)shift, 4, &f));
        ck_assert_float_eq(f, (float)(origins[i] / 4));
        clReleaseMemObject(sub);
    }
    cl_mem sub;
    uint64_t shift;
    ck_assert_int_eq(lc_rt_sub_buffer(rt, b, (uint64_t)N * 4, &sub, &shift), LC_ERR_INVALID);
    long before = rt->gemm_calls[LC_GEMM_CLBLAST];
    size_t far = (size_t)1 << 31;
    ck_assert_int_eq(lc_rt_sgemm_with(rt, LC_GEMM_CLBLAST, false, false, 2, 2, 2, 1.0f, b, far, 2, b, 0, 2, 0.0f, b,
                                      8, 2),
                     LC_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(lc_error_message(), "2^31") != NULL, "%s", lc_error_message());
    ck_assert_int_eq(rt->gemm_calls[LC_GEMM_CLBLAST], before);
    clReleaseMemObject(b);
    free(v);
    free(got);
    lc_rt_destroy(rt);
}
END_TEST

/* Plans are judged against the device's limits before any allocation; on a
 * CPU device whose buffers live in this process, the process's
 * address-space limit counts too. */
START_TEST(test_memory_limits)
{
    lc_rt *rt = make_rt(NULL);
    uint64_t g = 0, a = 0;
    char why[256];
    lc_rt_memory_limits(rt, &g, &a, why, sizeof why);
    ck_assert_uint_gt(g, 0);
    ck_assert_uint_gt(a, 0);
    ck_assert_uint_le(a, g);
    ck_assert_uint_le(g, rt->info.global_mem_bytes);
    OK(lc_rt_check_plan(rt, "a small plan", 1 << 20, 1 << 20, NULL));
    OK(lc_rt_check_plan(rt, "a plan at the limits", g, a, NULL));
    /* too much in all: the message names the bytes and both limits */
    ck_assert_int_eq(lc_rt_check_plan(rt, "model 'big'", g + 4096, 4096, "parameters 1 byte"), LC_ERR_DEVICE);
    const char *msg = lc_error_message();
    char num[64];
    snprintf(num, sizeof num, "%llu bytes", (unsigned long long)(g + 4096));
    ck_assert_msg(strstr(msg, num) != NULL, "%s lacks %s", msg, num);
    snprintf(num, sizeof num, "%llu bytes", (unsigned long long)g);
    ck_assert_msg(strstr(msg, num) != NULL, "%s lacks %s", msg, num);
    snprintf(num, sizeof num, "%llu bytes", (unsigned long long)a);
    ck_assert_msg(strstr(msg, num) != NULL, "%s lacks %s", msg, num);
    ck_assert_msg(strstr(msg, "model 'big'") && strstr(msg, "parameters 1 byte") && strstr(msg, rt->info.name), "%s",
                  msg);
    ck_assert_msg(strchr(msg, '\n') == NULL, "one line: %s", msg);
    /* one buffer too large */
    ck_assert_int_eq(lc_rt_check_plan(rt, "model 'wide'", a + 4, a + 4, NULL), LC_ERR_DEVICE);
    if ((rt->info.type & CL_DEVICE_TYPE_CPU) && rt->info.host_unified_memory) {
        struct rlimit old, lim;
        ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
        FILE *f = fopen("/proc/self/statm", "r");
        unsigned long long pages = 0;
        if (f) {
            if (fscanf(f, "%llu", &pages) != 1) pages = 0;
            fclose(f);
        }
        uint64_t vm = pages * (uint64_t)sysconf(_SC_PAGESIZE), room = (uint64_t)256 << 20;
        if (vm > 0 && (old.rlim_max == RLIM_INFINITY || old.rlim_max >= vm + room)) {
            lim = old;
            lim.rlim_cur = (rlim_t)(vm + room);
            ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
            uint64_t g2 = 0, a2 = 0;
            lc_rt_memory_limits(rt, &g2, &a2, why, sizeof why);
            lc_status st = lc_rt_check_plan(rt, "model 'under a limit'", (uint64_t)512 << 20, 4096, NULL);
            char msg2[1024];
            snprintf(msg2, sizeof msg2, "%s", lc_error_message());
            ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
            ck_assert_uint_le(g2, room);
            ck_assert_uint_le(a2, g2);
            ck_assert_msg(strstr(why, "RLIMIT_AS") != NULL, "%s", why);
            ck_assert_int_eq(st, LC_ERR_DEVICE);
            ck_assert_msg(strstr(msg2, "RLIMIT_AS") != NULL, "%s", msg2);
        }
    }
    lc_rt_destroy(rt);
}
END_TEST

/* ---- CLBlast tuning files and the reused temporary buffer ---- */

static void expect_parse_error(const char *text, const char *want)
{
    lc_tune_file t;
    lc_status st = lc_rt_tune_parse(text, strlen(text), "t.txt", &t);
    ck_assert_msg(st == LC_ERR_FORMAT, "accepted:\n%s", text);
    ck_assert_msg(strstr(lc_error_message(), want) != NULL, "message '%s' lacks '%s'", lc_error_message(), want);
}

/* The parser rejects malformed files with a message naming the line; a
 * well-formed file survives format + parse. */
START_TEST(test_tune_parse)
{
#define HDR "layca-clblast-tuning 1\ndevice D\ndriver 1.0\n"
    expect_parse_error("", "t.txt: empty");
    expect_parse_error("# only a comment\n", "t.txt: empty");
    expect_parse_error("hello\n", "t.txt:1: not a layca CLBlast tuning file");
    expect_parse_error("layca-clblast-tuning 2\n", "t.txt:1: tuning file version '2'");
    expect_parse_error(HDR "kernel Xgemm 32 MWG\n", "t.txt:4: kernel Xgemm: 'MWG' is not NAME=VALUE");
    expect_parse_error(HDR "kernel Xgemm 32 MWG=-4\n", "t.txt:4: kernel Xgemm: MWG='-4' is not a non-negative integer");
    expect_parse_error(HDR "kernel Xgemm 32 MWG=4x\n", "MWG='4x' is not a non-negative integer");
    expect_parse_error(HDR "kernel Xgemm 32 mwg=4\n", "t.txt:4: kernel Xgemm: bad parameter name");
    expect_parse_error(HDR "kernel Xgemm 32 MWG=4 MWG=8\n", "t.txt:4: kernel Xgemm: parameter MWG given twice");
    expect_parse_error(HDR "kernel Xgemv 32 WGS=64\n", "t.txt:4: unknown CLBlast kernel 'Xgemv'");
    expect_parse_error(HDR "kernel Xgemm 33 MWG=4\n", "t.txt:4: kernel Xgemm: precision '33'");
    expect_parse_error(HDR "kernel Xgemm\n", "t.txt:4: kernel Xgemm: precision ''");
    expect_parse_error(HDR "kernel Xgemm 32\n", "t.txt:4: kernel Xgemm: no parameters");
    expect_parse_error(HDR "kernel GemmRoutine 32 XGEMM_MIN_INDIRECT_SIZE=1\nkernel GemmRoutine 32 XGEMM_MIN_INDIRECT_SIZE=2\n",
                       "t.txt:5: kernel GemmRoutine precision 32 given twice");
    expect_parse_error(HDR "colour blue\n", "t.txt:4: unknown entry 'colour'");
    expect_parse_error(HDR "device E\n", "t.txt:4: 'device' given twice");
    expect_parse_error("layca-clblast-tuning 1\ndriver 1\nkernel Pad 32 PAD_WPTX=1\n", "t.txt: no 'device' line");
    expect_parse_error("layca-clblast-tuning 1\ndevice D\nkernel Pad 32 PAD_WPTX=1\n", "t.txt: no 'driver' line");
    expect_parse_error(HDR, "t.txt: no 'kernel' line");
    const char nul[] = "layca-clblast-tuning 1\ndevice D\0x\n";
    lc_tune_file t;
    ck_assert_int_eq(lc_rt_tune_parse(nul, sizeof nul - 1, "t.txt", &t), LC_ERR_FORMAT);
    ck_assert_msg(strstr(lc_error_message(), "t.txt:2: a NUL byte"), "%s", lc_error_message());

    const char *good = "# comment\nlayca-clblast-tuning 1\n\ndevice My Device  \ndriver 3.1 (x)\nplatform OpenCL 3.0 P\n"
                       "kernel GemmRoutine 32 XGEMM_MIN_INDIRECT_SIZE=448\n"
                       "kernel XgemmDirect 32 KWID=2 MDIMAD=8 MDIMCD=8 NDIMBD=8 NDIMCD=8 PADA=1 PADB=1 VWMD=2 VWND=2 WGD=16\n";
    OK(lc_rt_tune_parse(good, strlen(good), "good", &t));
    ck_assert_str_eq(t.device, "My Device");
    ck_assert_str_eq(t.driver, "3.1 (x)");
    ck_assert_str_eq(t.platform, "OpenCL 3.0 P");
    ck_assert_int_eq(t.n, 2);
    ck_assert_str_eq(t.kernel[1].name, "XgemmDirect");
    ck_assert_int_eq(t.kernel[1].precision, 32);
    ck_assert_int_eq(t.kernel[1].n, 10);
    ck_assert_str_eq(t.kernel[1].param[9], "WGD");
    ck_assert_uint_eq(t.kernel[1].value[9], 16);
    ck_assert_uint_eq(t.kernel[0].value[0], 448);
    lc_strbuf sb = {0};
    lc_rt_tune_format(&t, "made by a test\nsecond line", &sb);
    ck_assert_msg(strstr(sb.s, "# made by a test\n# second line\n") != NULL, "%s", sb.s);
    lc_tune_file t2;
    OK(lc_rt_tune_parse(sb.s, sb.len, "formatted", &t2));
    ck_assert_int_eq(memcmp(&t, &t2, sizeof t), 0);
    lc_strbuf_free(&sb);
#undef HDR
}
END_TEST

static void routine_file(lc_tune_file *t, const lc_device_info *d, size_t min_indirect)
{
    memset(t, 0, sizeof *t);
    snprintf(t->device, sizeof t->device, "%s", d->name);
    snprintf(t->driver, sizeof t->driver, "%s", d->driver_version);
    snprintf(t->platform, sizeof t->platform, "%s", d->platform_version);
    lc_tune_kernel k = {.precision = 32, .n = 1};
    snprintf(k.name, sizeof k.name, "GemmRoutine");
    snprintf(k.param[0], sizeof k.param[0], "XGEMM_MIN_INDIRECT_SIZE");
    k.value[0] = min_indirect;
    OK(lc_rt_tune_set(t, &k));
}

/* Overrides change what CLBlast does (its direct/indirect choice shows in
 * the temporary buffer it asks for); invalid ones are reported; the
 * device's file in the cache folder is applied by lc_rt_create; the indirect
 * path with the reused scratch buffer (and without) stays correct.  Last in
 * the suite: CLBlast keeps overrides for the rest of the process. */
START_TEST(test_tune_apply)
{
    char dir[512];
    set_cache_dir_early(dir, sizeof dir, "tune");
    lc_rt *rt = make_rt(NULL);
    ck_assert_str_eq(lc_rt_tune_state(rt), "default");
    lc_tune_file t;
    size_t bytes = 1;
    /* everything direct: no temporary buffer */
    routine_file(&t, &rt->info, 100000);
    OK(lc_rt_tune_apply(rt, &t));
    OK(lc_rt_clblast_temp_bytes(rt, false, false, 65, 33, 31, 0, 31, 0, 33, 0, 33, &bytes));
    ck_assert_uint_eq(bytes, 0);
    /* everything indirect: odd sizes need padded copies */
    routine_file(&t, &rt->info, 1);
    OK(lc_rt_tune_apply(rt, &t));
    OK(lc_rt_clblast_temp_bytes(rt, false, false, 65, 33, 31, 0, 31, 0, 33, 0, 33, &bytes));
    ck_assert_uint_gt(bytes, 0);
    /* the indirect path through the scratch buffer, growing over shapes, and
     * with CLBlast's own allocation per call */
    lc_rng rng;
    lc_rng_seed(&rng, 5);
    static const size_t sizes[][3] = {{31, 33, 65}, {65, 31, 33}, {129, 67, 45}, {1, 65, 31}};
    size_t largest = 0;
    for (int reuse = 1; reuse >= 0; reuse--) {
        lc_rt_clblast_reuse_temp(rt, reuse);
        for (int tr = 0; tr < 4; tr++)
            for (size_t s = 0; s < LC_COUNTOF(sizes); s++) {
                gemm_case_with(rt, LC_GEMM_CLBLAST, -0.5f, &rng, tr & 1, tr >> 1, sizes[s][0], sizes[s][1], sizes[s][2]);
                gemm_case_with(rt, LC_GEMM_CLBLAST, 0.0f, &rng, tr & 1, tr >> 1, sizes[s][0], sizes[s][1], sizes[s][2]);
                if (reuse) {
                    size_t need = 0;
                    /* gemm_case_with's geometry: lda, ldb, ldc padded, offsets 5, 7, 3 */
                    size_t m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
                    OK(lc_rt_clblast_temp_bytes(rt, tr & 1, tr >> 1, m, n, k, 5, ((tr & 1) ? m : k) + 3, 7,
                                                ((tr >> 1) ? k : n) + 2, 3, n + 1, &need));
                    largest = need > largest ? need : largest;
                    ck_assert_uint_ge(lc_rt_clblast_scratch_bytes(rt), largest);
                }
            }
    }
    ck_assert_uint_gt(largest, 0);
    lc_rt_clblast_reuse_temp(rt, true);

    /* an incomplete parameter set is refused by CLBlast and reported */
    lc_tune_file bad = t;
    lc_tune_kernel k = {.precision = 32, .n = 1};
    snprintf(k.name, sizeof k.name, "Xgemm");
    snprintf(k.param[0], sizeof k.param[0], "MWG");
    k.value[0] = 64;
    OK(lc_rt_tune_set(&bad, &k));
    lc_status st = lc_rt_tune_apply(rt, &bad);
    ck_assert_int_eq(st, LC_ERR_DEVICE);
    ck_assert_msg(strstr(lc_error_message(), "kernel Xgemm precision 32: CLBlastOverrideParameters failed: "
                                             "kMissingOverrideParameter"), "%s", lc_error_message());
    /* a file of another device or driver is refused */
    lc_tune_file other = t;
    snprintf(other.driver, sizeof other.driver, "not-%.100s", rt->info.driver_version);
    ck_assert_int_eq(lc_rt_tune_apply(rt, &other), LC_ERR_INVALID);
    ck_assert_msg(strstr(lc_error_message(), "tuned for device"), "%s", lc_error_message());

    /* lc_rt_create applies the device's file from the cache folder */
    routine_file(&t, &rt->info, 100000);
    OK(lc_rt_tune_apply(rt, &t));
    lc_device_info info = rt->info;
    lc_rt_destroy(rt);
    char path[1300];
    lc_rt_tune_path(&info, path, sizeof path);
    ck_assert_msg(strncmp(path, dir, strlen(dir)) == 0, "%s not under %s", path, dir);
    routine_file(&t, &info, 1);
    lc_strbuf sb = {0};
    lc_rt_tune_format(&t, "test", &sb);
    write_file(path, sb.s, sb.len);
    lc_strbuf_free(&sb);
    char sel[32];
    snprintf(sel, sizeof sel, "%d:%d", info.platform, info.device);
    rt = make_rt(sel);
    ck_assert_msg(strncmp(lc_rt_tune_state(rt), "tuned (", 7) == 0, "%s", lc_rt_tune_state(rt));
    OK(lc_rt_clblast_temp_bytes(rt, false, false, 65, 33, 31, 0, 31, 0, 33, 0, 33, &bytes));
    ck_assert_uint_gt(bytes, 0);
    lc_rt_destroy(rt);
    /* a broken file is ignored (CLBlast's defaults stay), and said so */
    write_file(path, "layca-clblast-tuning 1\ndevice x\n", 32);
    rt = make_rt(sel);
    ck_assert_msg(strstr(lc_rt_tune_state(rt), "ignored") && strstr(lc_rt_tune_state(rt), "no 'driver' line"), "%s",
                  lc_rt_tune_state(rt));
    lc_rt_destroy(rt);
    remove(path);
    lc_device_info picked;
    lc_rt_opts so = {.selector = sel};
    OK(lc_rt_select(&so, &picked));
    ck_assert_str_eq(picked.name, info.name);
    so.selector = "no-such-device-xyzzy";
    ck_assert_int_eq(lc_rt_select(&so, &picked), LC_ERR_NOT_FOUND);
}
END_TEST

static Suite *rt_suite(void)
{
    Suite *s = suite_create("rt");
    TCase *tc = tcase_create("rt");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_list_devices);
    tcase_add_test(tc, test_create_default);
    tcase_add_test(tc, test_create_index);
    tcase_add_test(tc, test_create_name);
    tcase_add_test(tc, test_create_bad);
    tcase_add_test(tc, test_error_names);
    tcase_add_test(tc, test_buffers);
    tcase_add_test(tc, test_selftest_kernel);
    tcase_add_test(tc, test_sgemm);
    tcase_add_test(tc, test_sgemm_backends);
    tcase_add_test(tc, test_sgemm_strided_batched);
    tcase_add_test(tc, test_host_access);
    tcase_add_test(tc, test_program_cache);
    tcase_add_test(tc, test_program_cache_foreign);
    tcase_add_test(tc, test_build_error);
    tcase_add_test(tc, test_device_only);
    tcase_add_test(tc, test_opencl_c_version);
    tcase_add_test(tc, test_work_groups);
    tcase_add_test(tc, test_probe_failure);
    tcase_add_test(tc, test_sub_buffers);
    tcase_add_test(tc, test_memory_limits);
    tcase_add_test(tc, test_tune_parse);
    tcase_add_test(tc, test_tune_apply); /* last: CLBlast keeps overrides for the process */
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (lc_rt_list_devices(&g_devs, &g_ndev) != LC_OK || g_ndev == 0) lc_test_skip_all("no OpenCL device");
    /* Keep the program cache out of $HOME. */
    char cache[512];
    snprintf(cache, sizeof cache, "%s/cache-main", lc_test_tmpdir());
    if (lc_cache_dir_set(cache) != LC_OK) return 1;
    int rc = lc_test_run(rt_suite());
    rm_rf(lc_test_tmpdir());
    free(g_devs);
    return rc;
}

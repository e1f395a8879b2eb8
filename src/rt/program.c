/* Kernel sources (embedded or a kernel folder), program building with an
 * in-process memo and a disk cache of program binaries, kernels. */
#include "lc_rt_internal.h"
#include "lc_rt_embedded.h"
#include "lc_kconst.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LC_CACHE_FORMAT "layca-program-cache-2"
/* A cache entry, <cache folder>/<key>.bin (integers little-endian):
 *   0   magic "LCBIN2\0\0"
 *   8   checksum u64: lc_hash64(bytes 16 to the end, LC_SUM_SEED)
 *   16  key: 32 hex digits, the entry's file name (a hash of the format,
 *       source, options, device, driver and platform versions)
 *   48  names length u64, 56 binary length u64
 *   64  the program's kernel names, sorted, each ended by '\n'; then the binary
 * An entry is used only when all of this holds and the program loaded from
 * the binary has exactly the listed kernels, each defined by the source
 * asked for: a valid binary of another program is rejected, rebuilt from
 * source and rewritten.  "Defined by the source" means the name followed by
 * '(' appears in the text, so kernel names must be written out in the .cl
 * files, not pasted together by macros (such a program would never load
 * from the cache; LAYCA_LOG=debug says why). */
#define LC_CACHE_MAGIC "LCBIN2\0\0"
#define LC_CACHE_HEADER 64
#define LC_KEY_SEED_A 0x6c61796361413031ULL
#define LC_KEY_SEED_B 0x9e3779b97f4a7c15ULL
#define LC_SUM_SEED 0x4c4342494e32ULL

/* ---- sources ---- */

static int valid_kernel_name(const char *name)
{
    if (!name || !*name) return 0;
    for (const char *p = name; *p; p++)
        if (*p == '/' || *p == '\\') return 0;
    return strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Malloc'ed, 0-terminated copy of the source of `name` (from folder dir
 * when it is non-empty). */
static lc_status source_dup(const char *dir, const char *name, char **src, size_t *len)
{
    *src = NULL;
    *len = 0;
    if (!valid_kernel_name(name)) return LC_ERR(LC_ERR_INVALID, "bad kernel source name '%s'", name ? name : "(null)");
    if (dir && *dir) {
        size_t pl = strlen(dir) + strlen(name) + 8;
        char *path = malloc(pl);
        if (!path) return LC_ERR(LC_ERR_NOMEM, "out of memory");
        snprintf(path, pl, "%s/%s.cl", dir, name);
        uint8_t *data = NULL;
        size_t n = 0;
        lc_status st = lc_file_read(path, &data, &n);
        if (st != LC_OK) {
            lc_error_prefix(st, "kernel source '%s' (kernel folder %s)", name, dir);
            free(path);
            return st == LC_ERR_IO ? LC_ERR_NOT_FOUND : st;
        }
        free(path);
        char *s = realloc(data, n + 1);
        if (!s) { free(data); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
        s[n] = 0;
        *src = s;
        *len = n;
        return LC_OK;
    }
    for (int i = 0; i < lc_embedded_kernel_count; i++) {
        if (strcmp(lc_embedded_kernels[i].name, name) == 0) {
            size_t n = lc_embedded_kernels[i].len;
            char *s = malloc(n + 1);
            if (!s) return LC_ERR(LC_ERR_NOMEM, "out of memory");
            memcpy(s, lc_embedded_kernels[i].data, n);
            s[n] = 0;
            *src = s;
            *len = n;
            return LC_OK;
        }
    }
    return LC_ERR(LC_ERR_NOT_FOUND, "no embedded kernel source '%s' (is it listed in cl_kernels/meson.build?)", name);
}

lc_status lc_rt_kernel_source_dup(const char *kernel_dir, const char *name, char **src, size_t *len)
{
    if (!src || !len) return LC_ERR(LC_ERR_INVALID, "lc_rt_kernel_source_dup: NULL argument");
    return source_dup(kernel_dir, name, src, len);
}

/* The text read from a kernel folder lives here until the next call on the
 * same thread (embedded sources are static). */
static _Thread_local char *lc_rt_source_buf_;

lc_status lc_rt_kernel_source(const char *kernel_dir, const char *name, const char **src, size_t *len)
{
    if (!src || !len) return LC_ERR(LC_ERR_INVALID, "lc_rt_kernel_source: NULL argument");
    *src = NULL;
    *len = 0;
    if (kernel_dir && *kernel_dir) {
        char *s = NULL;
        size_t n = 0;
        LC_TRY(source_dup(kernel_dir, name, &s, &n));
        free(lc_rt_source_buf_);
        lc_rt_source_buf_ = s;
        *src = s;
        *len = n;
        return LC_OK;
    }
    if (!valid_kernel_name(name)) return LC_ERR(LC_ERR_INVALID, "bad kernel source name '%s'", name ? name : "(null)");
    for (int i = 0; i < lc_embedded_kernel_count; i++) {
        if (strcmp(lc_embedded_kernels[i].name, name) == 0) {
            *src = (const char *)lc_embedded_kernels[i].data;
            *len = lc_embedded_kernels[i].len;
            return LC_OK;
        }
    }
    return LC_ERR(LC_ERR_NOT_FOUND, "no embedded kernel source '%s' (is it listed in cl_kernels/meson.build?)", name);
}

/* ---- disk cache ---- */

typedef struct {
    uint8_t *buf;
    size_t len, cap;
} kbuf;

static int kbuf_put(kbuf *b, const void *data, size_t n)
{
    uint64_t n64 = (uint64_t)n;
    size_t need = b->len + sizeof n64 + n;
    if (need > b->cap) {
        size_t nc = b->cap ? b->cap : 1024;
        while (nc < need) nc *= 2;
        uint8_t *nb = realloc(b->buf, nc);
        if (!nb) return -1;
        b->buf = nb;
        b->cap = nc;
    }
    memcpy(b->buf + b->len, &n64, sizeof n64);
    b->len += sizeof n64;
    if (n) memcpy(b->buf + b->len, data, n);
    b->len += n;
    return 0;
}

static lc_status cache_key(const lc_rt *rt, const char *src, size_t src_len, const char *options, char key[33])
{
    kbuf b = {0};
    int bad = 0;
    bad |= kbuf_put(&b, LC_CACHE_FORMAT, strlen(LC_CACHE_FORMAT));
    bad |= kbuf_put(&b, src, src_len);
    bad |= kbuf_put(&b, options, strlen(options));
    bad |= kbuf_put(&b, rt->info.name, strlen(rt->info.name));
    bad |= kbuf_put(&b, rt->info.driver_version, strlen(rt->info.driver_version));
    bad |= kbuf_put(&b, rt->info.platform_version, strlen(rt->info.platform_version));
    if (bad) {
        free(b.buf);
        return LC_ERR(LC_ERR_NOMEM, "out of memory");
    }
    uint64_t h1 = lc_hash64(b.buf, b.len, LC_KEY_SEED_A);
    uint64_t h2 = lc_hash64(b.buf, b.len, LC_KEY_SEED_B);
    free(b.buf);
    snprintf(key, 33, "%016llx%016llx", (unsigned long long)h1, (unsigned long long)h2);
    return LC_OK;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The kernels of a built program: their names sorted, each ended by '\n'
 * (malloc'ed, 0-terminated), or NULL (reason at debug). */
static char *kernel_names(cl_program prog, const char *name)
{
    cl_uint n = 0;
    cl_int err = clCreateKernelsInProgram(prog, 0, NULL, &n);
    if (err != CL_SUCCESS) {
        LC_DEBUG("program '%s': clCreateKernelsInProgram: %s", name, lc_rt_cl_error_name(err));
        return NULL;
    }
    cl_kernel *ks = calloc(n ? n : 1, sizeof *ks);
    char **names = calloc(n ? n : 1, sizeof *names);
    char *out = NULL;
    size_t total = 1;
    if (!ks || !names) goto done;
    if (n && (err = clCreateKernelsInProgram(prog, n, ks, NULL)) != CL_SUCCESS) {
        LC_DEBUG("program '%s': clCreateKernelsInProgram: %s", name, lc_rt_cl_error_name(err));
        memset(ks, 0, n * sizeof *ks);
        goto done;
    }
    for (cl_uint i = 0; i < n; i++) {
        size_t sz = 0;
        if (clGetKernelInfo(ks[i], CL_KERNEL_FUNCTION_NAME, 0, NULL, &sz) != CL_SUCCESS || !(names[i] = calloc(1, sz + 1)) ||
            clGetKernelInfo(ks[i], CL_KERNEL_FUNCTION_NAME, sz, names[i], NULL) != CL_SUCCESS)
            goto done;
        total += strlen(names[i]) + 1;
    }
    qsort(names, n, sizeof *names, cmp_cstr);
    if (!(out = malloc(total))) goto done;
    size_t o = 0;
    for (cl_uint i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        memcpy(out + o, names[i], l);
        out[o + l] = '\n';
        o += l + 1;
    }
    out[o] = 0;
done:
    for (cl_uint i = 0; ks && names && i < n; i++) {
        if (ks[i]) clReleaseKernel(ks[i]);
        free(names[i]);
    }
    free(ks);
    free(names);
    return out;
}

static bool ident_char(char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

/* Whether src defines a function `name`: the whole identifier followed by '('. */
static bool source_defines(const char *src, size_t src_len, const char *name, size_t nl)
{
    for (size_t i = 0; nl && i + nl <= src_len; i++) {
        if (memcmp(src + i, name, nl) || (i > 0 && ident_char(src[i - 1]))) continue;
        size_t j = i + nl;
        while (j < src_len && (src[j] == ' ' || src[j] == '\t' || src[j] == '\n' || src[j] == '\r')) j++;
        if (j < src_len && src[j] == '(') return true;
    }
    return false;
}

/* Entries are <key>.bin; the device probe's are <key>.probe (kept apart
 * from the programs an rt counts). */
static void cache_path(const lc_rt *rt, const char *name, const char *key, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.%s", rt->cache_dir, key, strcmp(name, "probe") == 0 ? "probe" : "bin");
}

/* Returns a built program from the cache entry, or NULL (reason at debug). */
static cl_program cache_load(lc_rt *rt, const char *name, const char *key, const char *options, const char *src,
                             size_t src_len)
{
    char path[1200];
    cache_path(rt, name, key, path, sizeof path);
    uint8_t *data = NULL;
    size_t n = 0;
    if (lc_file_read(path, &data, &n) != LC_OK) {
        LC_DEBUG("program '%s': no cache entry %s (%s)", name, path, lc_error_message());
        lc_error_clear();
        return NULL;
    }
    const char *why = NULL;
    uint64_t nlen = 0, blen = 0;
    if (n < LC_CACHE_HEADER) why = "shorter than the header";
    else if (memcmp(data, LC_CACHE_MAGIC, 8) != 0) why = "bad magic (another format or version)";
    else if (memcmp(data + 16, key, 32) != 0) why = "key mismatch (the entry of another program)";
    else if ((nlen = get_u64(data + 48)) > n - LC_CACHE_HEADER || (blen = get_u64(data + 56)) != n - LC_CACHE_HEADER - nlen ||
             blen == 0)
        why = "length mismatch";
    else if (get_u64(data + 8) != lc_hash64(data + 16, n - 16, LC_SUM_SEED)) why = "checksum mismatch";
    if (why) {
        LC_DEBUG("program '%s': cache entry %s rejected: %s; rebuilding", name, path, why);
        free(data);
        return NULL;
    }
    /* every listed kernel must be one the source defines */
    const char *names = (const char *)data + LC_CACHE_HEADER;
    for (size_t i = 0; i < nlen && !why;) {
        const char *nl = memchr(names + i, '\n', nlen - i);
        size_t l = nl ? (size_t)(nl - (names + i)) : nlen - i;
        if (!nl || !source_defines(src, src_len, names + i, l)) {
            LC_DEBUG("program '%s': cache entry %s rejected: it lists the kernel '%.*s', which the source does not "
                     "define (the binary of another program); rebuilding", name, path, (int)LC_MIN(l, (size_t)64),
                     names + i);
            why = "foreign kernel";
        }
        i += l + 1;
    }
    if (why) {
        free(data);
        return NULL;
    }
    const unsigned char *bin = data + LC_CACHE_HEADER + nlen;
    size_t bin_len = (size_t)blen;
    cl_int bin_status = CL_SUCCESS, err = CL_SUCCESS;
    cl_program prog = clCreateProgramWithBinary(rt->ctx, 1, &rt->device, &bin_len, &bin, &bin_status, &err);
    if (err != CL_SUCCESS || bin_status != CL_SUCCESS || !prog) {
        LC_DEBUG("program '%s': cache entry %s rejected: clCreateProgramWithBinary: %s (%d), binary status %s (%d)",
                 name, path, lc_rt_cl_error_name(err), err, lc_rt_cl_error_name(bin_status), bin_status);
        if (prog) clReleaseProgram(prog);
        free(data);
        return NULL;
    }
    err = clBuildProgram(prog, 1, &rt->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        LC_DEBUG("program '%s': cache entry %s rejected: clBuildProgram: %s (%d)", name, path,
                 lc_rt_cl_error_name(err), err);
        clReleaseProgram(prog);
        free(data);
        return NULL;
    }
    /* the binary must hold exactly the kernels listed */
    char *have = kernel_names(prog, name);
    if (!have || strlen(have) != nlen || memcmp(have, names, nlen) != 0) {
        for (char *c = have; c && *c; c++)
            if (*c == '\n') *c = c[1] ? ' ' : 0;
        LC_DEBUG("program '%s': cache entry %s rejected: the binary's kernels (%s) are not the ones listed; "
                 "rebuilding", name, path, have ? have : "unknown");
        free(have);
        clReleaseProgram(prog);
        free(data);
        return NULL;
    }
    free(have);
    free(data);
    return prog;
}

static void cache_store(lc_rt *rt, const char *name, const char *key, cl_program prog)
{
    size_t bin_len = 0;
    cl_int err = clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof bin_len, &bin_len, NULL);
    if (err != CL_SUCCESS || bin_len == 0) {
        LC_DEBUG("program '%s': no binary to cache (%s)", name, lc_rt_cl_error_name(err));
        return;
    }
    char *names = kernel_names(prog, name);
    if (!names) {
        LC_DEBUG("program '%s': not cached (its kernel names are unknown)", name);
        return;
    }
    size_t nlen = strlen(names), total = LC_CACHE_HEADER + nlen + bin_len;
    uint8_t *file = malloc(total);
    if (!file) {
        free(names);
        return;
    }
    unsigned char *bin = file + LC_CACHE_HEADER + nlen;
    err = clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL);
    if (err != CL_SUCCESS) {
        LC_DEBUG("program '%s': clGetProgramInfo(CL_PROGRAM_BINARIES): %s", name, lc_rt_cl_error_name(err));
        free(names);
        free(file);
        return;
    }
    memcpy(file, LC_CACHE_MAGIC, 8);
    memcpy(file + 16, key, 32);
    put_u64(file + 48, (uint64_t)nlen);
    put_u64(file + 56, (uint64_t)bin_len);
    memcpy(file + LC_CACHE_HEADER, names, nlen);
    free(names);
    put_u64(file + 8, lc_hash64(file + 16, total - 16, LC_SUM_SEED));
    char path[1200];
    cache_path(rt, name, key, path, sizeof path);
    lc_status st = lc_mkdirs(rt->cache_dir);
    if (st == LC_OK) st = lc_file_write_atomic(path, file, total);
    if (st != LC_OK) LC_DEBUG("program '%s': cache write failed: %s", name, lc_error_message());
    else LC_DEBUG("program '%s': cached %zu bytes in %s", name, bin_len, path);
    free(file);
}

/* ---- building ---- */

/* "first lines | of the | build log", at most `cap` bytes. */
static void log_summary(const char *log, char *out, size_t cap)
{
    size_t pos = 0;
    int lines = 0;
    out[0] = 0;
    const char *p = log;
    while (*p && lines < 8 && pos + 1 < cap) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        while (l > 0 && (p[l - 1] == '\r' || p[l - 1] == ' ' || p[l - 1] == '\t')) l--;
        size_t skip = 0;
        while (skip < l && (p[skip] == ' ' || p[skip] == '\t')) skip++;
        if (l > skip) {
            int w = snprintf(out + pos, cap - pos, "%s%.*s", lines ? " | " : "", (int)(l - skip), p + skip);
            if (w < 0) break;
            pos += (size_t)w;
            if (pos >= cap) { pos = cap - 1; break; }
            lines++;
        }
        if (!e) break;
        p = e + 1;
    }
}

static lc_status build_from_source(lc_rt *rt, const char *name, const char *src, size_t len, const char *options,
                                   cl_program *out)
{
    *out = NULL;
    cl_int err = CL_SUCCESS;
    const char *srcs[1] = {src};
    cl_program prog = clCreateProgramWithSource(rt->ctx, 1, srcs, &len, &err);
    if (err != CL_SUCCESS || !prog) {
        lc_status st = lc_rt_check(err != CL_SUCCESS ? err : CL_INVALID_PROGRAM, "clCreateProgramWithSource");
        return lc_error_prefix(st, "kernel program '%s'", name);
    }
    err = clBuildProgram(prog, 1, &rt->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        size_t log_len = 0;
        char *log = NULL;
        if (clGetProgramBuildInfo(prog, rt->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_len) == CL_SUCCESS &&
            log_len > 0 && (log = calloc(1, log_len + 1)) != NULL) {
            if (clGetProgramBuildInfo(prog, rt->device, CL_PROGRAM_BUILD_LOG, log_len, log, NULL) != CL_SUCCESS)
                log[0] = 0;
        }
        char summary[640];
        log_summary(log ? log : "", summary, sizeof summary);
        if (log && log[0]) LC_DEBUG("build log of kernel program '%s':\n%s", name, log);
        free(log);
        clReleaseProgram(prog);
        return LC_ERR(LC_ERR_DEVICE, "building kernel program '%s' (options '%s') failed: clBuildProgram: %s (%d): %s",
                      name, options, lc_rt_cl_error_name(err), (int)err, summary[0] ? summary : "(empty build log)");
    }
    *out = prog;
    return LC_OK;
}

/* Builds src (program `name`) with options through the disk cache;
 * *from_cache tells where it came from. */
static lc_status build_cached(lc_rt *rt, const char *name, const char *src, size_t len, const char *options,
                              cl_program *out, bool *from_cache)
{
    *out = NULL;
    *from_cache = false;
    char key[33] = {0};
    bool use_cache = rt->cache_dir[0] != 0;
    if (use_cache && cache_key(rt, src, len, options, key) != LC_OK) use_cache = false;
    cl_program prog = use_cache ? cache_load(rt, name, key, options, src, len) : NULL;
    if (prog) {
        LC_DEBUG("program '%s' loaded from the disk cache (%s)", name, key);
        *from_cache = true;
        *out = prog;
        return LC_OK;
    }
    double t0 = lc_now_s();
    LC_TRY(build_from_source(rt, name, src, len, options, &prog));
    LC_DEBUG("program '%s' built from source in %.2f s", name, lc_now_s() - t0);
    if (use_cache) cache_store(rt, name, key, prog);
    *out = prog;
    return LC_OK;
}

lc_status lc_rt_program(lc_rt *rt, const char *name, const char *options, cl_program *out)
{
    if (!rt || !name || !out) return LC_ERR(LC_ERR_INVALID, "lc_rt_program: NULL argument");
    *out = NULL;
    /* the shared constants (lc_kconst.h) first */
    char consts[256], full[1024];
    snprintf(full, sizeof full, "%s%s%s", lc_kconst_options(consts, sizeof consts), options && *options ? " " : "",
             options ? options : "");
    options = full;
    lc_rt_impl *impl = lc_rt_impl_of(rt);
    for (lc_rt_prog_entry *e = impl->programs; e; e = e->next) {
        if (strcmp(e->name, name) == 0 && strcmp(e->options, options) == 0) {
            *out = e->prog;
            return LC_OK;
        }
    }

    char *src = NULL;
    size_t len = 0;
    LC_TRY(source_dup(impl->kernel_dir, name, &src, &len));

    lc_rt_prog_entry *entry = calloc(1, sizeof *entry);
    if (entry) {
        entry->name = strdup(name);
        entry->options = strdup(options);
    }
    if (!entry || !entry->name || !entry->options) {
        if (entry) { free(entry->name); free(entry->options); }
        free(entry);
        free(src);
        return LC_ERR(LC_ERR_NOMEM, "out of memory");
    }
    cl_program prog = NULL;
    bool cached = false;
    lc_status st = build_cached(rt, name, src, len, options, &prog, &cached);
    free(src);
    if (st != LC_OK) {
        free(entry->name); free(entry->options); free(entry);
        return st;
    }
    if (cached) rt->programs_from_cache++;
    else rt->programs_built++;
    entry->prog = prog;
    entry->next = impl->programs;
    impl->programs = entry;
    *out = prog;
    return LC_OK;
}

lc_status lc_rt_probe_build(lc_rt *rt)
{
    /* the kernel folder may hold a probe.cl (development); else the embedded one */
    char *src = NULL;
    size_t len = 0;
    const char *dir = lc_rt_impl_of(rt)->kernel_dir;
    if (dir && *dir && source_dup(dir, "probe", &src, &len) != LC_OK) {
        lc_error_clear();
        src = NULL;
    }
    if (!src) {
        for (int i = 0; i < lc_embedded_kernel_count && !src; i++)
            if (strcmp(lc_embedded_kernels[i].name, "probe") == 0) {
                len = lc_embedded_kernels[i].len;
                src = malloc(len + 1);
                if (!src) return LC_ERR(LC_ERR_NOMEM, "out of memory");
                memcpy(src, lc_embedded_kernels[i].data, len);
                src[len] = 0;
            }
        if (!src) return LC_ERR(LC_ERR_NOT_FOUND, "no embedded kernel source 'probe'");
    }
    cl_program prog = NULL;
    bool cached = false;
    lc_status st = build_cached(rt, "probe", src, len, "", &prog, &cached);
    free(src);
    if (prog) clReleaseProgram(prog);
    return st;
}

void lc_rt_programs_release(lc_rt_impl *impl)
{
    lc_rt_prog_entry *e = impl->programs;
    while (e) {
        lc_rt_prog_entry *next = e->next;
        if (e->prog) clReleaseProgram(e->prog);
        free(e->name);
        free(e->options);
        free(e);
        e = next;
    }
    impl->programs = NULL;
}

lc_status lc_rt_kernel(lc_rt *rt, cl_program prog, const char *kernel_name, cl_kernel *out)
{
    if (!rt || !prog || !kernel_name || !out) return LC_ERR(LC_ERR_INVALID, "lc_rt_kernel: NULL argument");
    cl_int err = CL_SUCCESS;
    *out = clCreateKernel(prog, kernel_name, &err);
    if (err != CL_SUCCESS || !*out) {
        *out = NULL;
        lc_status st = lc_rt_check(err != CL_SUCCESS ? err : CL_INVALID_KERNEL, "clCreateKernel");
        return lc_error_prefix(st, "kernel '%s'", kernel_name);
    }
    return LC_OK;
}

/* ---- work-group sizes ---- */

size_t lc_rt_wg_cap(const lc_rt *rt, size_t want)
{
    size_t lim = rt->info.max_work_group;
    if (rt->info.max_work_item0 && rt->info.max_work_item0 < lim) lim = rt->info.max_work_item0;
    if (lim == 0) lim = 1;
    if (want < lim) lim = want;
    size_t p = 1;
    while (p * 2 <= lim) p *= 2;
    return p;
}

lc_status lc_rt_kernel_wg(lc_rt *rt, cl_kernel k, size_t *out)
{
    if (!rt || !k || !out) return LC_ERR(LC_ERR_INVALID, "lc_rt_kernel_wg: NULL argument");
    *out = 0;
    size_t wg = 0;
    LC_TRY(lc_rt_check(clGetKernelWorkGroupInfo(k, rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg, NULL),
                       "clGetKernelWorkGroupInfo(CL_KERNEL_WORK_GROUP_SIZE)"));
    *out = wg;
    return LC_OK;
}

lc_status lc_rt_program_wg(lc_rt *rt, const char *name, const char *options, const char *macro, size_t want,
                           const char *const *kernels, int n_kernels, cl_program *out, size_t *wg)
{
    if (!rt || !name || !macro || !out || !wg || (n_kernels > 0 && !kernels))
        return LC_ERR(LC_ERR_INVALID, "lc_rt_program_wg: NULL argument");
    *out = NULL;
    *wg = 0;
    size_t w = lc_rt_wg_cap(rt, want ? want : 1);
    /* a size a kernel of this program refused before (on this device, kept
     * with the timing choices) is not tried again */
    char key[160];
    snprintf(key, sizeof key, "wg-limit|%s|%s", name, macro);
    int known = lc_rt_choice_get(rt, key);
    if (known > 0 && (size_t)known < w) w = lc_rt_wg_cap(rt, (size_t)known);
    for (;;) {
        char opts[512];
        int len = snprintf(opts, sizeof opts, "%s%s-D%s=%zu", options ? options : "", options && *options ? " " : "",
                           macro, w);
        if (len < 0 || (size_t)len >= sizeof opts)
            return LC_ERR(LC_ERR_INVALID, "program '%s': build options too long", name);
        cl_program p;
        LC_TRY(lc_rt_program(rt, name, opts, &p));
        size_t allowed = w;
        for (int i = 0; i < n_kernels; i++) {
            cl_kernel k;
            LC_TRY(lc_rt_kernel(rt, p, kernels[i], &k));
            size_t kw = 0;
            lc_status st = lc_rt_kernel_wg(rt, k, &kw);
            clReleaseKernel(k);
            LC_TRY(st);
            if (kw > 0 && kw < allowed) allowed = kw;
        }
        if (allowed >= w) {
            *out = p;
            *wg = w;
            return LC_OK;
        }
        size_t nw = lc_rt_wg_cap(rt, allowed);
        LC_DEBUG("program '%s': a kernel allows %zu work-items per group, not %zu: rebuilt with %s=%zu", name, allowed,
                 w, macro, nw);
        if (allowed <= (size_t)INT32_MAX) lc_rt_choice_set(rt, key, (int)allowed);
        if (nw >= w) return LC_ERR(LC_ERR_DEVICE, "program '%s': no work-group size fits (%zu)", name, allowed);
        w = nw;
    }
}

/* O_TMPFILE, linkat */
#define _GNU_SOURCE
#include "lc_core.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char lc_msg_[1024];

/* Copies text into out (cap bytes, always 0-terminated) so that it prints as
 * one line of plain text whatever the input held: control bytes (and, unless
 * keep_lines, newlines and tabs), DEL, the C1 controls U+0080..U+009F and bytes
 * that are not well-formed UTF-8 become \xNN.  Never cuts an escape or a
 * UTF-8 sequence in half.  Applying it twice changes nothing.  Returns the
 * length written. */
static size_t escape_text(char *out, size_t cap, const char *text, bool keep_lines)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t o = 0;
    while (*p) {
        unsigned c = *p;
        size_t seq = 1; /* bytes of a UTF-8 sequence to copy as is, 0: escape one byte */
        if (c < 0x20 || c == 0x7f) {
            seq = keep_lines && (c == '\n' || c == '\t') ? 1 : 0;
        } else if (c >= 0x80) {
            size_t need = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
            for (size_t k = 1; k < need; k++)
                if ((p[k] & 0xc0) != 0x80) need = 0; /* stops at the terminating 0 too */
            /* overlong 3- and 4-byte forms, surrogates, above U+10FFFF, C1 controls */
            if (need == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))) need = 0;
            if (need == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))) need = 0;
            if (need == 2 && c == 0xc2 && p[1] < 0xa0) need = 0;
            seq = need;
        }
        if (seq == 0) {
            if (o + 4 >= cap) break;
            static const char hex[] = "0123456789abcdef";
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
            p++;
        } else {
            if (o + seq >= cap) break;
            memcpy(out + o, p, seq);
            o += seq;
            p += seq;
        }
    }
    if (cap) out[o < cap ? o : cap - 1] = 0;
    return o;
}

lc_status lc_error_set(lc_status st, const char *fmt, ...)
{
    char raw[sizeof lc_msg_];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    escape_text(lc_msg_, sizeof lc_msg_, raw, false);
    return st;
}

lc_status lc_error_prefix(lc_status st, const char *fmt, ...)
{
    char pre[512], old[1024], raw[sizeof lc_msg_];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, lc_msg_, sizeof old);
    size_t pl = strlen(pre), ol = strlen(old);
    if (ol > sizeof raw - pl - 3) ol = sizeof raw - pl - 3;
    memcpy(raw, pre, pl);
    memcpy(raw + pl, ": ", 2);
    memcpy(raw + pl + 2, old, ol);
    raw[pl + 2 + ol] = 0;
    escape_text(lc_msg_, sizeof lc_msg_, raw, false);
    return st;
}

size_t lc_text_escape(char *out, size_t cap, const char *text) { return escape_text(out, cap, text, false); }

const char *lc_error_message(void) { return lc_msg_[0] ? lc_msg_ : "unknown error"; }
void lc_error_clear(void) { lc_msg_[0] = 0; }

const char *lc_status_name(lc_status st)
{
    switch (st) {
    case LC_OK: return "ok";
    case LC_ERR_INVALID: return "invalid input";
    case LC_ERR_IO: return "i/o error";
    case LC_ERR_FORMAT: return "format error";
    case LC_ERR_NOMEM: return "out of memory";
    case LC_ERR_DEVICE: return "device error";
    case LC_ERR_UNSUPPORTED: return "unsupported";
    case LC_ERR_NOT_FOUND: return "not found";
    }
    return "?";
}

/* ---- logging ---- */
static int lc_log_level_ = -1;

lc_log_level lc_log_get_level(void)
{
    if (lc_log_level_ < 0) lc_log_level_ = LC_LOG_INFO;
    return (lc_log_level)lc_log_level_;
}

void lc_log_set_level(lc_log_level lvl) { lc_log_level_ = (int)lvl; }

void lc_log(lc_log_level lvl, const char *fmt, ...)
{
    if ((int)lvl > (int)lc_log_get_level()) return;
    static const char *tag[] = {"error", "warning", "info", "debug"};
    /* Formatted first, then escaped: messages quote names and text from
     * input files, which must not reach a terminal as control sequences.
     * Newlines stay (debug lines carry whole build logs). */
    char small[1024], *raw = small;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof small && (raw = malloc((size_t)n + 1)) != NULL) {
        va_start(ap, fmt);
        vsnprintf(raw, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    if (!raw) raw = small; /* cut, but printed */
    size_t cap = 4 * strlen(raw) + 1;
    char *esc = malloc(cap);
    if (esc) escape_text(esc, cap, raw, true);
    fprintf(stderr, "layca %s: %s\n", tag[lvl], esc ? esc : "(out of memory formatting a message)");
    free(esc);
    if (raw != small) free(raw);
}

/* ---- RNG: xoshiro256** seeded through splitmix64 ---- */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void lc_rng_seed(lc_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t lc_rng_next(lc_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}

double lc_rng_uniform(lc_rng *r) { return (double)(lc_rng_next(r) >> 11) * 0x1.0p-53; }

double lc_rng_normal(lc_rng *r)
{
    double u1, u2;
    do { u1 = lc_rng_uniform(r); } while (u1 <= 0.0);
    u2 = lc_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t lc_rng_below(lc_rng *r, uint64_t n)
{
    if (n <= 1) return 0;
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, v;
    do { v = lc_rng_next(r); } while (v >= lim);
    return v % n;
}

void lc_rng_shuffle_i32(lc_rng *r, int32_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)lc_rng_below(r, i);
        int32_t t = a[i - 1]; a[i - 1] = a[j]; a[j] = t;
    }
}

uint64_t lc_hash64(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < len; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
    return h;
}

/* ---- files ---- */

/* "a FIFO", "a folder", ... for messages about st_mode. */
static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m)) return "a folder";
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISLNK(m)) return "a symbolic link";
    return "not a regular file";
}

lc_status lc_file_read(const char *path, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    /* stat first so that no device is even opened; then open without
     * blocking (a FIFO swapped in meanwhile would wait for a writer) and
     * check what was opened. */
    struct stat sb;
    if (stat(path, &sb) != 0) return LC_ERR(LC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return LC_ERR(LC_ERR_INVALID, "%s: is %s; layca reads regular files only", path, file_kind(sb.st_mode));
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return LC_ERR(LC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return LC_ERR(LC_ERR_INVALID, "%s: is %s; layca reads regular files only", path, file_kind(sb.st_mode));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    /* The size is a hint: the file may change while it is read. */
    size_t cap = sb.st_size > 0 && (uint64_t)sb.st_size < SIZE_MAX - 1 ? (size_t)sb.st_size + 1 : 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return LC_ERR(LC_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, cap);
    }
    for (;;) {
        if (n == cap) {
            size_t nc = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
            uint8_t *nb = nc > cap ? realloc(buf, nc) : NULL;
            if (!nb) {
                free(buf);
                close(fd);
                return LC_ERR(LC_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap = nc;
        }
        ssize_t got = read(fd, buf + n, LC_MIN(cap - n, (size_t)1 << 30));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            lc_status st = LC_ERR(LC_ERR_IO, "%s: read error: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return st;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    close(fd);
    *data = buf;
    *len = n;
    return LC_OK;
}

/* The file a path names once symbolic links are followed (malloc'ed): the
 * path itself when it is not a link or does not exist; for a dangling link,
 * the missing target.  Relative link targets are taken from the link's
 * folder.  NULL with the error set on a loop or a read failure. */
static char *final_target(const char *path)
{
    char *p = strdup(path);
    if (!p) {
        LC_ERR(LC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int hops = 0;; hops++) {
        struct stat sb;
        if (lstat(p, &sb) != 0 || !S_ISLNK(sb.st_mode)) return p;
        if (hops == 40) {
            LC_ERR(LC_ERR_INVALID, "%s: too many levels of symbolic links", path);
            free(p);
            return NULL;
        }
        char link[PATH_MAX];
        ssize_t k = readlink(p, link, sizeof link - 1);
        if (k < 0) {
            LC_ERR(LC_ERR_IO, "%s: cannot read the symbolic link %s: %s", path, p, strerror(errno));
            free(p);
            return NULL;
        }
        link[k] = 0;
        char *next;
        const char *slash = strrchr(p, '/');
        if (link[0] == '/' || !slash) {
            next = strdup(link);
        } else {
            size_t dl = (size_t)(slash - p) + 1;
            next = malloc(dl + (size_t)k + 1);
            if (next) {
                memcpy(next, p, dl);
                memcpy(next + dl, link, (size_t)k + 1);
            }
        }
        free(p);
        if (!next) {
            LC_ERR(LC_ERR_NOMEM, "out of memory");
            return NULL;
        }
        p = next;
    }
}

static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, LC_MIN(len, (size_t)1 << 30));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static _Atomic unsigned long lc_tmp_counter_;

/* Removes the temporary files that earlier writers of the same destination
 * left in folder dfd when they were killed (between linking the unnamed file
 * and renaming it, or anywhere on the named path): ".PREFIX.tmp-PID-N" whose
 * PID is not this process and no longer runs.  A live writer's file is never
 * touched. */
static void sweep_stale_temporaries(int dfd, const char *prefix)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return;
    }
    size_t plen = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strncmp(e->d_name, prefix, plen) != 0) continue;
        const char *q = e->d_name + plen;
        char *end;
        long pid = strtol(q, &end, 10);
        if (end == q || *end != '-' || pid <= 0 || pid > INT_MAX || pid == (long)getpid()) continue;
        q = end + 1;
        strtoul(q, &end, 10);
        if (end == q || *end) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        unlinkat(dirfd(dir), e->d_name, 0);
    }
    closedir(dir);
}

lc_status lc_file_write_atomic(const char *path, const void *data, size_t len)
{
    if (!path || !*path) return LC_ERR(LC_ERR_INVALID, "cannot write: empty file name");
    char *target = final_target(path);
    if (!target) return lc_error_prefix(LC_ERR_INVALID, "%s: cannot write", path);
    lc_status st = LC_OK;
    int dfd = -1, fd = -1;
    char *dir = NULL, tmp[64 + NAME_MAX] = "";
    const char *shown = strcmp(target, path) ? target : NULL; /* named in messages when it differs */

    struct stat sb;
    bool exists = lstat(target, &sb) == 0;
    if (!exists && errno != ENOENT) {
        st = LC_ERR(LC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        goto done;
    }
    if (exists && !S_ISREG(sb.st_mode)) {
        st = LC_ERR(LC_ERR_INVALID, "%s%s%s: is %s; refusing to replace it (give the path of a regular file)", path,
                    shown ? " -> " : "", shown ? shown : "", file_kind(sb.st_mode));
        goto done;
    }
    mode_t mode = exists ? (sb.st_mode & 07777) : 0;

    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
        st = LC_ERR(LC_ERR_INVALID, "%s: cannot write: not a file name", path);
        goto done;
    }
    dir = slash ? strndup(target, slash == target ? 1 : (size_t)(slash - target)) : strdup(".");
    if (!dir) {
        st = LC_ERR(LC_ERR_NOMEM, "out of memory");
        goto done;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        st = LC_ERR(LC_ERR_IO, "%s: cannot write: folder %s: %s", path, dir, strerror(errno));
        goto done;
    }
    unsigned long seq = ++lc_tmp_counter_;
    char prefix[NAME_MAX + 8];
    snprintf(prefix, sizeof prefix, ".%.*s.tmp-", (int)LC_MIN(strlen(base), (size_t)NAME_MAX - 48), base);
    snprintf(tmp, sizeof tmp, "%s%ld-%lu", prefix, (long)getpid(), seq);

    bool named = false; /* the temporary name exists and must go on failure */
#ifdef O_TMPFILE
    /* An unnamed file: a kill before the link below leaves nothing at all. */
    fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
    if (fd >= 0) {
        if (write_all(fd, data, len) != 0 || (exists && fchmod(fd, mode) != 0) || fsync(fd) != 0) {
            st = LC_ERR(LC_ERR_IO, "%s: write failed: %s", path, strerror(errno));
            goto done;
        }
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, proc, dfd, tmp, AT_SYMLINK_FOLLOW) == 0) {
            named = true;
        } else {
            /* no /proc: write a named file after all */
            close(fd);
            fd = -1;
        }
    }
#endif
    if (fd < 0) {
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, exists ? mode : 0666);
        if (fd < 0) {
            st = LC_ERR(LC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
            goto done;
        }
        named = true;
        if (write_all(fd, data, len) != 0 || (exists && fchmod(fd, mode) != 0) || fsync(fd) != 0) {
            st = LC_ERR(LC_ERR_IO, "%s: write failed: %s", path, strerror(errno));
            goto done;
        }
    }
    if (close(fd) != 0) {
        fd = -1;
        st = LC_ERR(LC_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        goto done;
    }
    fd = -1;
    if (renameat(dfd, tmp, dfd, base) != 0) {
        st = LC_ERR(LC_ERR_IO, "%s: write failed: rename: %s", path, strerror(errno));
        goto done;
    }
    named = false;
    fsync(dfd); /* the rename itself survives a power loss */
    sweep_stale_temporaries(dfd, prefix);
done:
    if (fd >= 0) close(fd);
    if (st != LC_OK && named && dfd >= 0) unlinkat(dfd, tmp, 0);
    if (dfd >= 0) close(dfd);
    free(dir);
    free(target);
    return st;
}

lc_status lc_mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return LC_ERR(LC_ERR_INVALID, "bad folder path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return LC_ERR(LC_ERR_IO, "%s: cannot create folder: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    return LC_OK;
}

double lc_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- text buffers ---- */
static int strbuf_reserve(lc_strbuf *b, size_t more)
{
    if (b->oom) return 0;
    if (b->len + more + 1 <= b->cap) return 1;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + more + 1) nc *= 2;
    char *ns = realloc(b->s, nc);
    if (!ns) { b->oom = 1; return 0; }
    b->s = ns;
    b->cap = nc;
    return 1;
}

void lc_strbuf_printf(lc_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0 || !strbuf_reserve(b, (size_t)n)) return;
    if ((size_t)n < sizeof small) {
        memcpy(b->s + b->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void lc_strbuf_json_string(lc_strbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (!strbuf_reserve(b, 6 * n + 2)) return;
    char *o = b->s + b->len;
    *o++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            *o++ = '\\';
            *o++ = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            o += sprintf(o, "\\u%04x", *p);
        } else {
            *o++ = (char)*p;
        }
    }
    *o++ = '"';
    *o = 0;
    b->len = (size_t)(o - b->s);
}

void lc_strbuf_json_number(lc_strbuf *b, const char *fmt, double v)
{
    if (!isfinite(v)) {
        lc_strbuf_printf(b, "null");
        return;
    }
    char tmp[64];
    snprintf(tmp, sizeof tmp, fmt, v);
    lc_strbuf_printf(b, "%s", tmp);
}

void lc_strbuf_clear(lc_strbuf *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->s) b->s[0] = 0;
}

void lc_strbuf_free(lc_strbuf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

/* The process's cache folder (lc_cache_dir_set); NULL: no disk cache. */
static char *lc_cache_dir_;

lc_status lc_cache_dir_set(const char *dir)
{
    char *copy = NULL;
    if (dir && *dir && !(copy = strdup(dir))) return LC_ERR(LC_ERR_NOMEM, "out of memory setting the cache folder");
    free(lc_cache_dir_);
    lc_cache_dir_ = copy;
    return LC_OK;
}

void lc_cache_dir(char *out, size_t cap)
{
    if (!cap) return;
    out[0] = 0;
    if (!lc_cache_dir_) return;
    int w = snprintf(out, cap, "%s", lc_cache_dir_);
    if (w < 0 || (size_t)w >= cap) out[0] = 0; /* unusable: no disk cache */
}

void lc_cache_dir_resolve(const char *layca_cache_dir, const char *xdg_cache_home, const char *home, char *out,
                          size_t cap)
{
    if (!cap) return;
    out[0] = 0;
    int w = -1;
    if (layca_cache_dir && *layca_cache_dir) {
        if (strcasecmp(layca_cache_dir, "off") == 0) return;
        w = snprintf(out, cap, "%s", layca_cache_dir);
    } else if (xdg_cache_home && *xdg_cache_home) {
        w = snprintf(out, cap, "%s/layca", xdg_cache_home);
    } else if (home && *home) {
        w = snprintf(out, cap, "%s/.cache/layca", home);
    }
    if (w < 0 || (size_t)w >= cap) out[0] = 0; /* unusable: no disk cache */
}

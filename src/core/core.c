#include "lc_core.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char lc_msg_[1024];

lc_status lc_error_set(lc_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lc_msg_, sizeof lc_msg_, fmt, ap);
    va_end(ap);
    return st;
}

lc_status lc_error_prefix(lc_status st, const char *fmt, ...)
{
    char pre[512], old[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, lc_msg_, sizeof old);
    size_t pl = strlen(pre);
    if (pl + 2 >= sizeof lc_msg_) pl = sizeof lc_msg_ - 3;
    memcpy(lc_msg_, pre, pl);
    lc_msg_[pl] = ':';
    lc_msg_[pl + 1] = ' ';
    size_t room = sizeof lc_msg_ - pl - 3, ol = strlen(old);
    if (ol > room) ol = room;
    memcpy(lc_msg_ + pl + 2, old, ol);
    lc_msg_[pl + 2 + ol] = 0;
    return st;
}

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
    if (lc_log_level_ < 0) {
        const char *e = getenv("LAYCA_LOG");
        lc_log_level_ = LC_LOG_INFO;
        if (e) {
            if (!strcasecmp(e, "error")) lc_log_level_ = LC_LOG_ERROR;
            else if (!strcasecmp(e, "warn")) lc_log_level_ = LC_LOG_WARN;
            else if (!strcasecmp(e, "debug")) lc_log_level_ = LC_LOG_DEBUG;
        }
    }
    return (lc_log_level)lc_log_level_;
}

void lc_log_set_level(lc_log_level lvl) { lc_log_level_ = (int)lvl; }

void lc_log(lc_log_level lvl, const char *fmt, ...)
{
    if ((int)lvl > (int)lc_log_get_level()) return;
    static const char *tag[] = {"error", "warning", "info", "debug"};
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "layca %s: ", tag[lvl]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
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
lc_status lc_file_read(const char *path, uint8_t **data, size_t *len)
{
    *data = NULL; *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return LC_ERR(LC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) { fclose(f); return LC_ERR(LC_ERR_NOMEM, "%s: out of memory", path); }
    for (;;) {
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); fclose(f); return LC_ERR(LC_ERR_NOMEM, "%s: out of memory", path); }
            buf = nb; cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); return LC_ERR(LC_ERR_IO, "%s: read error", path); }
    *data = buf; *len = n;
    return LC_OK;
}

lc_status lc_file_write_atomic(const char *path, const void *data, size_t len)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 32);
    if (!tmp) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    snprintf(tmp, pl + 32, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        lc_status st = LC_ERR(LC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        free(tmp);
        return st;
    }
    int ok = fwrite(data, 1, len, f) == len;
    ok = (fflush(f) == 0) && ok;
    if (ok) fsync(fileno(f));
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        lc_status st = LC_ERR(LC_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return LC_OK;
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

/* Core services shared by every module: status codes with a thread-local
 * error message, logging to stderr, a seeded serialisable RNG, and small
 * helpers.  Pure C11, no dependencies. */
#ifndef LC_CORE_H
#define LC_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

typedef enum lc_status {
    LC_OK = 0,
    LC_ERR_INVALID,   /* bad argument or bad user input (model, data, flag) */
    LC_ERR_IO,        /* file system */
    LC_ERR_FORMAT,    /* malformed file contents */
    LC_ERR_NOMEM,     /* host allocation failed */
    LC_ERR_DEVICE,    /* OpenCL / CLBlast failure */
    LC_ERR_UNSUPPORTED,
    LC_ERR_NOT_FOUND,
} lc_status;

/* Sets the thread-local message and returns `st`.  Messages are one line of
 * printable text: control bytes, DEL, C1 controls and malformed UTF-8 (from
 * names and text quoted out of input files) are written as \xNN. */
lc_status lc_error_set(lc_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with "prefix: ". Returns `st`. */
lc_status lc_error_prefix(lc_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *lc_error_message(void);
/* The same escaping for text a caller prints itself: writes at most cap bytes
 * (0-terminated, never cutting an escape) and returns the length. */
size_t lc_text_escape(char *out, size_t cap, const char *text);
void lc_error_clear(void);
const char *lc_status_name(lc_status st);

/* LC_FAIL(st, fmt, ...) records "file:line: message" and returns st from the
 * calling function. */
#define LC_ERR(st, ...) lc_error_set((st), __VA_ARGS__)
#define LC_TRY(expr)                                                           \
    do {                                                                       \
        lc_status lc_try_st_ = (expr);                                         \
        if (lc_try_st_ != LC_OK) return lc_try_st_;                            \
    } while (0)

/* Logging: everything goes to stderr, escaped as error messages are (newlines
 * and tabs kept).  Level: info until lc_log_set_level (the CLIs set it from
 * LAYCA_LOG). */
typedef enum { LC_LOG_ERROR = 0, LC_LOG_WARN, LC_LOG_INFO, LC_LOG_DEBUG } lc_log_level;
void lc_log(lc_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lc_log_set_level(lc_log_level lvl);
lc_log_level lc_log_get_level(void);
#define LC_INFO(...) lc_log(LC_LOG_INFO, __VA_ARGS__)
#define LC_WARN(...) lc_log(LC_LOG_WARN, __VA_ARGS__)
#define LC_DEBUG(...) lc_log(LC_LOG_DEBUG, __VA_ARGS__)

/* Seeded RNG (xoshiro256**), state is plain data so it can be saved. */
typedef struct lc_rng { uint64_t s[4]; } lc_rng;
void lc_rng_seed(lc_rng *r, uint64_t seed);
uint64_t lc_rng_next(lc_rng *r);
double lc_rng_uniform(lc_rng *r);           /* [0, 1) */
double lc_rng_normal(lc_rng *r);            /* N(0, 1), Box-Muller */
uint64_t lc_rng_below(lc_rng *r, uint64_t n); /* [0, n), unbiased */
void lc_rng_shuffle_i32(lc_rng *r, int32_t *a, size_t n);

/* Hashing (FNV-1a 64 and a 128-bit hex digest from two passes), used for
 * cache keys. */
uint64_t lc_hash64(const void *data, size_t len, uint64_t seed);

/* layca's cache folder, one answer for every module (compiled programs,
 * timing choices, CLBlast tuning, decoded images): the folder last given to
 * lc_cache_dir_set, "" (no disk cache) when none was given, NULL or "" was,
 * or the path does not fit in cap.  The library reads no environment: the
 * caller sets it (call it before creating runtimes or datasets; it is not
 * synchronised with them).  A failed set leaves the old folder. */
lc_status lc_cache_dir_set(const char *dir);
void lc_cache_dir(char *out, size_t cap);
/* The folder the CLIs use, from the values of their environment variables
 * (each may be NULL): LAYCA_CACHE_DIR, else XDG_CACHE_HOME/layca, else
 * HOME/.cache/layca; "" when LAYCA_CACHE_DIR is "off" (any case), when none
 * is set, or when the path does not fit.  Reads nothing itself. */
void lc_cache_dir_resolve(const char *layca_cache_dir, const char *xdg_cache_home, const char *home, char *out,
                          size_t cap);

/* Whole-file helpers.  lc_file_read allocates (caller frees).  It reads
 * regular files only: a FIFO, device, socket or folder is refused at once
 * with LC_ERR_INVALID (never blocks waiting for a writer). */
lc_status lc_file_read(const char *path, uint8_t **data, size_t *len);
/* Replaces path's contents atomically: readers see the old file or the new
 * one, never a mix, and a crash or kill at any point leaves one of the two.
 * The data goes to an unnamed file (Linux O_TMPFILE) in the destination's
 * folder, is synced, linked under a temporary name and renamed over the
 * destination, and the folder is synced; where the file system has no
 * O_TMPFILE a named temporary file (".NAME.tmp-*") is used instead and
 * removed on every error.  A writer killed between the link and the rename
 * (or anywhere on the named path) leaves its temporary file; the next
 * successful write of the same destination removes those of processes that
 * no longer run.  A symbolic link is followed: its final target is
 * replaced and the link kept.  An existing file keeps its permission bits.  A
 * destination that exists but is not a regular file (folder, FIFO, device,
 * socket) is refused with LC_ERR_INVALID and left alone. */
lc_status lc_file_write_atomic(const char *path, const void *data, size_t len);
/* mkdir -p */
lc_status lc_mkdirs(const char *path);

double lc_now_s(void); /* monotonic seconds */

/* A growing text buffer, for lines that must reach a file in one write
 * (metrics) and for JSON.  A failed allocation sets oom and drops later
 * appends; s is always 0-terminated once anything was appended. */
typedef struct lc_strbuf {
    char *s;
    size_t len, cap;
    int oom;
} lc_strbuf;
void lc_strbuf_printf(lc_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string: quoted, with '"', '\\' and control bytes escaped. */
void lc_strbuf_json_string(lc_strbuf *b, const char *s);
/* A JSON number with printf format fmt ("%.6g"), or null when v is NaN or
 * infinite (JSON has no such numbers). */
void lc_strbuf_json_number(lc_strbuf *b, const char *fmt, double v);
void lc_strbuf_clear(lc_strbuf *b); /* length 0, keeps the memory */
void lc_strbuf_free(lc_strbuf *b);

#define LC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LC_MAX(a, b) ((a) > (b) ? (a) : (b))
#define LC_COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

#endif

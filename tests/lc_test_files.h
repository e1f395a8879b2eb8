/* File helpers of the trainer and resume suites: whole files as text, byte
 * comparison, metrics without their wall-clock values; the processes of
 * the suites that run the CLI. */
#ifndef LC_TEST_FILES_H
#define LC_TEST_FILES_H

#include <check.h>
#include <errno.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "lc_core.h"

extern char **environ;

/* `/bin/sh -c cmd` started; its pid. */
static inline pid_t lc_test_spawn_sh(const char *cmd)
{
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ), 0);
    return pid;
}

/* The exit code of the process, or minus the signal that ended it. */
static inline int lc_test_wait_exit(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0) ck_assert_int_eq(errno, EINTR);
    if (WIFSIGNALED(st)) return -WTERMSIG(st);
    return WEXITSTATUS(st);
}

/* The file's bytes, 0-terminated (caller frees). */
static inline char *lc_test_read_text(const char *path)
{
    uint8_t *b;
    size_t n;
    ck_assert_msg(lc_file_read(path, &b, &n) == LC_OK, "%s", lc_error_message());
    char *t = realloc(b, n + 1);
    ck_assert_ptr_nonnull(t);
    t[n] = 0;
    return t;
}

/* A metrics file's text without its "time_s" values (wall clock, the only
 * bytes a resumed run may change). */
static inline char *lc_test_metrics_without_time(const char *path)
{
    char *t = lc_test_read_text(path), *w = t;
    for (const char *r = t; *r;) {
        if (!strncmp(r, "\"time_s\": ", 10)) {
            r += 10;
            while (*r && *r != '}' && *r != ',') r++;
            continue;
        }
        *w++ = *r++;
    }
    *w = 0;
    return t;
}

/* "line N:\n  A\n  B" for the first line where texts a and b differ
 * (lines cut to 300 bytes), so a failure message stays within Check's
 * limits; "" when they are equal. */
static inline const char *lc_test_first_diff(const char *a, const char *b)
{
    static char out[800];
    out[0] = 0;
    int line = 1;
    const char *la = a, *lb = b;
    while (*a && *a == *b) {
        if (*a == '\n') {
            line++;
            la = a + 1;
            lb = b + 1;
        }
        a++;
        b++;
    }
    if (*a == *b) return out;
    int na = (int)strcspn(la, "\n"), nb = (int)strcspn(lb, "\n");
    snprintf(out, sizeof out, "line %d:\n  %.*s\n  %.*s", line, na < 300 ? na : 300, la, nb < 300 ? nb : 300, lb);
    return out;
}

/* Whether two files hold the same bytes (false when either is missing). */
static inline bool lc_test_same_bytes(const char *a, const char *b)
{
    uint8_t *x, *y;
    size_t nx, ny;
    if (lc_file_read(a, &x, &nx) != LC_OK) return false;
    if (lc_file_read(b, &y, &ny) != LC_OK) {
        free(x);
        return false;
    }
    bool same = nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

#endif

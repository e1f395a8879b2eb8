/* Strict number parsing for command-line flags (the whole string must be a
 * finite number in range). */
#ifndef LC_CLI_PARSE_H
#define LC_CLI_PARSE_H

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

static inline bool lc_parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

static inline bool lc_parse_long(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

#endif

/* Shared helpers for the Check suites: TAP on stdout, no forking (an OpenCL
 * context in a forked child hangs on PoCL), device skip handling. */
#ifndef LC_TEST_H
#define LC_TEST_H

#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs the suite with TAP output on stdout; returns the process exit code. */
static inline int lc_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

/* Call before a suite that needs an OpenCL device.  With no device it prints
 * a TAP skip plan and exits 0, unless LAYCA_REQUIRE_DEVICE is set (CI), in
 * which case the missing device is a failure. */
static inline void lc_test_skip_all(const char *why)
{
    const char *req = getenv("LAYCA_REQUIRE_DEVICE");
    if (req && *req && *req != '0') {
        printf("1..1\nnot ok 1 - %s (LAYCA_REQUIRE_DEVICE is set)\n", why);
        fflush(stdout);
        exit(1);
    }
    printf("1..0 # SKIP %s\n", why);
    fflush(stdout);
    exit(0);
}

/* True when the real data in ../shared/data must be there: CI sets
 * LAYCA_REQUIRE_DATA (the folder is part of every CI machine), and a test on
 * real data then fails instead of noting that the data is missing. */
static inline bool lc_test_data_required(void)
{
    const char *req = getenv("LAYCA_REQUIRE_DATA");
    return req && *req && *req != '0';
}

/* Relative difference with an absolute floor. */
static inline double lc_test_rel(double a, double b, double floor_)
{
    double d = fabs(a - b), s = fmax(fabs(a), fabs(b));
    return d / fmax(s, floor_);
}

/* Test temp folder: $MESON_BUILD_ROOT-independent, under TMPDIR. */
static inline const char *lc_test_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/layca-test-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir)) { perror("mkdtemp"); exit(1); }
    }
    return dir;
}

#endif

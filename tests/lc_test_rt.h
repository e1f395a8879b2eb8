/* The device configuration of a test run.  tools/test.sh runs the device
 * suites in several configurations through two environment variables read
 * here, by the test harness, and handed to the library as options (the
 * library reads no such variable):
 *   LAYCA_TEST_DEVICE       an lc_rt selector ("llvmpipe", "0:0"); unset:
 *                           the default device
 *   LAYCA_TEST_DEVICE_ONLY  1: device-only mode (no host shortcuts) */
#ifndef LC_TEST_RT_H
#define LC_TEST_RT_H

#include <stdbool.h>
#include <stdlib.h>

#include "lc_rt.h"
#include "lc_test.h"

static inline const char *lc_test_device(void)
{
    const char *d = getenv("LAYCA_TEST_DEVICE");
    return d && *d ? d : NULL;
}

static inline bool lc_test_device_only(void)
{
    const char *d = getenv("LAYCA_TEST_DEVICE_ONLY");
    return d && *d && *d != '0';
}

/* The cache folder the CLIs would use (LAYCA_CACHE_DIR, else
 * XDG_CACHE_HOME/layca, else ~/.cache/layca; LAYCA_CACHE_DIR=off: none),
 * set on the first call unless the suite set one already: compiled
 * programs are reused between runs as they are by the CLIs. */
static inline void lc_test_cache_default(void)
{
    static bool done;
    if (done) return;
    done = true;
    char dir[4096];
    lc_cache_dir(dir, sizeof dir);
    if (dir[0]) return;
    lc_cache_dir_resolve(getenv("LAYCA_CACHE_DIR"), getenv("XDG_CACHE_HOME"), getenv("HOME"), dir, sizeof dir);
    if (lc_cache_dir_set(dir) != LC_OK) fprintf(stderr, "# %s\n", lc_error_message());
}

/* True when the run is not the default configuration (another device or
 * device-only): slow tests of the default path may trim themselves. */
static inline bool lc_test_extra_config(void) { return lc_test_device() || lc_test_device_only(); }

/* The rt options of the configuration (sets the default cache folder). */
static inline lc_rt_opts lc_test_rt_opts(void)
{
    lc_test_cache_default();
    lc_rt_opts o = {.selector = lc_test_device(), .device_only = lc_test_device_only()};
    return o;
}

/* The rt of the configuration; no device: the suite is skipped (or fails
 * under LAYCA_REQUIRE_DEVICE). */
static inline lc_rt *lc_test_rt_create(void)
{
    lc_rt_opts o = lc_test_rt_opts();
    lc_rt *rt = NULL;
    if (lc_rt_create_opts(&rt, &o) != LC_OK) {
        fprintf(stderr, "# %s\n", lc_error_message());
        lc_test_skip_all("no OpenCL device for this configuration");
    }
    fprintf(stderr, "# device %s (%s)%s\n", rt->info.name, rt->info.platform_name,
            rt->device_only ? ", device-only" : "");
    return rt;
}

#endif

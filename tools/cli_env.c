/* LAYCA_* variables into option defaults (cli_env.h).  Each parse keeps the
 * rule the variable has always had, invalid values included. */
#include "cli_env.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The variable's value, NULL when unset or empty. */
static const char *var(const char *name)
{
    const char *e = getenv(name);
    return e && *e ? e : NULL;
}

/* LAYCA_LOG: error, warn, debug (any case); anything else is info. */
static lc_log_level log_level(const char *e)
{
    if (e && !strcasecmp(e, "error")) return LC_LOG_ERROR;
    if (e && !strcasecmp(e, "warn")) return LC_LOG_WARN;
    if (e && !strcasecmp(e, "debug")) return LC_LOG_DEBUG;
    return LC_LOG_INFO;
}

/* LAYCA_GEMM: clblast, host or time; anything else is the default. */
static int gemm_mode(const char *e)
{
    if (e && !strcmp(e, "clblast")) return LC_GEMM_MODE_CLBLAST;
    if (e && !strcmp(e, "host")) return LC_GEMM_MODE_HOST;
    if (e && !strcmp(e, "time")) return LC_GEMM_MODE_TIME;
    return LC_GEMM_MODE_DEFAULT;
}

/* A whole decimal integer (strtol's leading blanks allowed), else false. */
static bool whole_long(const char *e, long *v)
{
    if (!e) return false;
    char *end;
    *v = strtol(e, &end, 10);
    return !*end;
}

/* LAYCA_OPTIM_WG (a power of two from 1 up), LAYCA_OPTIM_VEC (4, 8 or
 * 16), LAYCA_OPTIM_FP64 (0: double-float sums); anything else: automatic. */
static lc_optim_geometry_opts optim_geometry(const char *wg, const char *vec, const char *fp64)
{
    lc_optim_geometry_opts g = {0};
    long v;
    if (whole_long(wg, &v) && v >= 1 && v <= INT_MAX && (v & (v - 1)) == 0) g.wg = (int)v;
    if (whole_long(vec, &v) && (v == 4 || v == 8 || v == 16)) g.vec = (int)v;
    g.no_fp64 = whole_long(fp64, &v) && v == 0;
    return g;
}

const cli_env *cli_env_load(void)
{
    static cli_env env;
    static bool loaded;
    if (loaded) return &env;
    loaded = true;
    lc_log_set_level(log_level(var("LAYCA_LOG")));
    char cache[4096];
    lc_cache_dir_resolve(getenv("LAYCA_CACHE_DIR"), getenv("XDG_CACHE_HOME"), getenv("HOME"), cache, sizeof cache);
    if (lc_cache_dir_set(cache) != LC_OK) LC_WARN("%s", lc_error_message());
    env.device = var("LAYCA_DEVICE");
    env.rt.kernel_dir = var("LAYCA_KERNEL_DIR");
    const char *threads = var("LAYCA_HOST_THREADS");
    int n = threads ? atoi(threads) : 0;
    env.rt.host_threads = n > 0 ? n : 0;
    env.rt.gemm = gemm_mode(var("LAYCA_GEMM"));
    env.host_conv = getenv("LAYCA_CONV");
    env.optim = optim_geometry(var("LAYCA_OPTIM_WG"), var("LAYCA_OPTIM_VEC"), var("LAYCA_OPTIM_FP64"));
    /* mpirun (Open MPI, PMIx launchers, MPICH's hydra) tells its processes the world's size */
    const char *mpi = var("OMPI_COMM_WORLD_SIZE");
    if (!mpi) mpi = var("PMIX_SIZE");
    if (!mpi) mpi = var("PMI_SIZE");
    long size;
    env.mpi_size = whole_long(mpi, &size) && size > 0 && size <= INT_MAX ? (int)size : 0;
    return &env;
}

lc_rt_opts cli_env_rt_opts(const char *selector, bool device_only)
{
    const cli_env *env = cli_env_load();
    lc_rt_opts o = env->rt;
    o.device_only = device_only;
    if (selector && *selector) {
        o.selector = selector;
    } else if (env->device) {
        o.selector = env->device;
        o.selector_source = "LAYCA_DEVICE";
    }
    return o;
}

lc_exec_opts cli_env_exec_opts(void)
{
    lc_exec_opts o = {.host_conv = cli_env_load()->host_conv};
    return o;
}

void cli_env_train_opts(lc_train_opts *o)
{
    lc_rt_opts ro = cli_env_rt_opts(o->device, o->device_only);
    o->device = ro.selector;
    o->rt = ro;
    o->host_conv = cli_env_load()->host_conv;
    o->optim_geometry = cli_env_load()->optim;
}

void cli_env_eval_opts(lc_eval_opts *o)
{
    lc_rt_opts ro = cli_env_rt_opts(o->device, o->device_only);
    o->device = ro.selector;
    o->rt = ro;
    o->host_conv = cli_env_load()->host_conv;
}

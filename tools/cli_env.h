/* The LAYCA_* environment variables of the CLIs (layca, layca-bench, layca
 * tune), read once into defaults of their flags and options: the library
 * reads no environment (docs/environment.md lists every variable). */
#ifndef LC_CLI_ENV_H
#define LC_CLI_ENV_H

#include <stdbool.h>

#include "lc_train.h"

typedef struct cli_env {
    const char *device;            /* LAYCA_DEVICE: --device's default (NULL: unset or empty) */
    lc_rt_opts rt;                 /* LAYCA_KERNEL_DIR, LAYCA_HOST_THREADS, LAYCA_GEMM (no selector) */
    const char *host_conv;         /* LAYCA_CONV: lc_exec_opts.host_conv */
    lc_optim_geometry_opts optim;  /* LAYCA_OPTIM_WG, LAYCA_OPTIM_VEC, LAYCA_OPTIM_FP64 */
    int mpi_size;                  /* processes of an MPI launch (OMPI_COMM_WORLD_SIZE, PMIX_SIZE or
                                    * PMI_SIZE, set by mpirun); 0: not started by mpirun */
} cli_env;

/* Reads every variable on the first call (later calls return the same
 * answer), sets the log level (LAYCA_LOG) and the cache folder
 * (LAYCA_CACHE_DIR, XDG_CACHE_HOME, HOME) of the library.  Values that
 * cannot be used are ignored, as they always were: the default stands. */
const cli_env *cli_env_load(void);

/* Runtime options: selector (--device; NULL or "": LAYCA_DEVICE, named in
 * a no-match error) and device_only (--device-only) over the variables. */
lc_rt_opts cli_env_rt_opts(const char *selector, bool device_only);
/* Executor options with the variables' host conv schedule. */
lc_exec_opts cli_env_exec_opts(void);
/* Fills the module settings of trainer and evaluator options after their
 * flags are parsed (a --device left unset takes LAYCA_DEVICE). */
void cli_env_train_opts(lc_train_opts *o);
void cli_env_eval_opts(lc_eval_opts *o);

#endif

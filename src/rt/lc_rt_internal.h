/* Private to src/rt: the rt as allocated (public part first) and helpers
 * shared between the module's files. */
#ifndef LC_RT_INTERNAL_H
#define LC_RT_INTERNAL_H

#include "lc_rt.h"

typedef struct lc_rt_prog_entry {
    struct lc_rt_prog_entry *next;
    char *name;
    char *options;
    cl_program prog;
} lc_rt_prog_entry;

/* The GEMM backend chosen for one shape (by timing, once per device). */
typedef struct lc_rt_gemm_choice {
    bool ta, tb;
    size_t m, n, k;
    int backend; /* lc_rt_gemm_backend */
} lc_rt_gemm_choice;

typedef struct lc_rt_pool lc_rt_pool;
struct choice;

typedef struct lc_rt_impl {
    lc_rt pub; /* must stay first: lc_rt * and lc_rt_impl * convert */
    lc_rt_prog_entry *programs; /* in-process memo, owned */
    lc_rt_gemm_choice *gemm;    /* per-shape backend choices, owned */
    int n_gemm, cap_gemm;
    bool gemm_loaded;           /* choices read from the disk cache */
    bool clblast_groups_set;    /* CLBlast's work-group sizes checked against the device (gemm.c) */
    bool clblast_groups_small;  /* ... and made small after a failed launch */
    lc_rt_pool *pool;           /* host worker threads (host.c), made on first use */
    struct choice *choice;      /* other choices made by timing (host.c) */
    int n_choice, cap_choice;
    bool choice_loaded;
    /* CLBlast (gemm.c): the reused temporary buffer, memoised temp sizes,
     * the shapes asked for */
    cl_mem clblast_tmp;
    size_t clblast_tmp_bytes;
    bool clblast_per_call;      /* reuse off: CLBlast allocates per call */
    struct lc_rt_temp_memo *temp_memo;
    int n_temp_memo;
    lc_rt_gemm_shape *shapes;
    int n_shapes, cap_shapes;
    char tune_state[1400];      /* tune.c: lc_rt_tune_state */
    /* lc_rt_opts, resolved at creation */
    char *kernel_dir;           /* NULL: the embedded sources */
    int host_threads;           /* lc_rt_host_threads */
    int gemm_fixed;             /* the backend of every SGEMM; LC_GEMM_AUTO: by timing per shape */
} lc_rt_impl;

/* gemm.c */
void lc_rt_gemm_release(lc_rt_impl *impl);
/* Forget memoised CLBlast temp sizes (after parameter overrides). */
void lc_rt_gemm_forget_temp_sizes(lc_rt_impl *impl);
/* tune.c: applies the device's tuning file, if any, at creation */
void lc_rt_tune_load(lc_rt *rt);
/* CLBlast's work-group sizes checked against the device once (smaller ones
 * given to it when the device allows fewer than its defaults); _shrink
 * makes them small after a launch failed for its work-group size, once:
 * true when the caller should retry. */
void lc_rt_clblast_prepare(lc_rt *rt);
bool lc_rt_clblast_shrink(lc_rt *rt);
/* host.c */
void lc_rt_pool_release(lc_rt_impl *impl);
void lc_rt_choices_release(lc_rt_impl *impl);

static inline lc_rt_impl *lc_rt_impl_of(lc_rt *rt) { return (lc_rt_impl *)rt; }

/* program.c */
void lc_rt_programs_release(lc_rt_impl *impl);
/* Builds the probe program (cl_kernels/probe.cl, or the kernel folder's when
 * there is one) through the disk cache, not counted in the rt's program
 * statistics and not kept; a failure carries the build log. */
lc_status lc_rt_probe_build(lc_rt *rt);

#endif

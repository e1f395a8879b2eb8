/* layca-bench's measurements as data: what layca-bench.c records and
 * bench_report.c turns into the side-by-side table, the markdown and JSON
 * report and the figure. */
#ifndef LC_BENCH_H
#define LC_BENCH_H

#include <stdbool.h>
#include <stdio.h>

#include "lc_rt.h"

#define BENCH_MAXREP 64   /* repeats kept per figure */
#define BENCH_MAXFIG 10   /* figures per record */
#define BENCH_MAXDEV 16   /* devices compared */

/* One figure of a record: a string (shape, variant...) or numbers, one per
 * repeat. */
typedef struct bench_fig {
    char key[32];
    char s[128];
    bool is_str;
    int n;
    double v[BENCH_MAXREP];
} bench_fig;

/* One measurement: what was measured (copy, gemm, train_step...), on which
 * device (an index into the device list; -1: the host, not an OpenCL
 * device), for which model and batch. */
typedef struct bench_rec {
    int dev;
    char what[32];
    char model[128];
    int batch;
    int nf;
    bench_fig f[BENCH_MAXFIG];
} bench_rec;

typedef struct bench_dev {
    char id[16];            /* "P:D" */
    lc_device_info info;
    char tune[256];         /* CLBlast parameters: "default", "tuned", "ignored..." */
    bool host_shortcuts;    /* host BLAS / host convolutions in the training step */
    char error[512];        /* non-empty: the device failed (its message) */
} bench_dev;

typedef struct bench_results {
    bench_rec *rec;
    int n, cap;
    bench_dev dev[BENCH_MAXDEV];
    int n_dev;
    /* settings, for the report */
    int repeats, batch, steps;
    bool quick, device_only;
    const char *models[64];
    int n_models;
    char host_cpu[256];     /* CPU model of the host */
    int host_threads;
} bench_results;

/* Median, minimum and maximum of the finite values (NaN when none). */
void bench_stats(const double *v, int n, double *med, double *lo, double *hi);
/* A number with about 4 significant digits and no exponent. */
void bench_num(char *out, size_t cap, double v);
/* The side-by-side tables (OpenCL devices, then the host) as markdown. */
void bench_print_tables(const bench_results *r, FILE *out);
/* Writes DIR/bench.md, DIR/bench.json, DIR/bench.png and DIR/bench.svg. */
lc_status bench_write_report(const bench_results *r, const char *dir);

#endif

/* The tests' names for the reference graph interpreter (src/ref/graph.c). */
#ifndef LC_REF_GRAPH_H
#define LC_REF_GRAPH_H

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "lc_ir.h"
#include "lc_ref.h"

typedef lc_ref_run ref_run;
typedef lc_ref_opts ref_opts;

static inline void ref_run_free(ref_run *r, const lc_graph *g) { lc_ref_run_free(r, g); }

/* params: arena layout (floats) of g; x: n * input numel; y: n labels. */
static inline void ref_run_graph_opts(ref_run *r, const lc_graph *g, const float *params, const float *x,
                                      const int32_t *y, int n, const ref_opts *o)
{
    if (lc_ref_run_graph(r, g, params, x, y, n, o) != LC_OK) {
        fprintf(stderr, "reference interpreter: %s\n", lc_error_message());
        abort();
    }
}

static inline void ref_run_graph(ref_run *r, const lc_graph *g, const float *params, const float *x,
                                 const int32_t *y, int n)
{
    ref_run_graph_opts(r, g, params, x, y, n, NULL);
}

/* max |a-b| / max |b| over n values */
static inline double ref_rel_err_f(const float *a, const double *b, size_t n)
{
    double md = 0, mb = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > md || d != d) md = d != d ? INFINITY : d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / mb;
}

#endif

/* Line figures through PLplot, written as PNG and SVG; the layer rotation
 * figure that `layca plot` and the studies draw. */
#ifndef LC_PLOT_H
#define LC_PLOT_H

#include <stdbool.h>

#include "lc_core.h"
#include "lc_metrics.h"

typedef struct lc_series {
    const double *x, *y;
    int n;
    double rgb[3];       /* 0..1 */
    const char *label;   /* legend text, NULL for none */
    bool dashed;
    bool points;         /* draw markers too */
} lc_series;

typedef struct lc_figure {
    const char *title, *xlabel, *ylabel;
    double xmin, xmax, ymin, ymax; /* xmin == xmax: from the data */
    bool logx;
    const char *colorbar_low, *colorbar_high; /* a viridis bar with these ends, or NULL */
    bool legend;
    const double *vlines;  /* x positions of dashed grey vertical lines (learning-rate drops) */
    int n_vlines;
} lc_figure;

/* Viridis colour at t in [0, 1]. */
void lc_viridis(double t, double rgb[3]);
/* Writes PREFIX.png and PREFIX.svg. */
lc_status lc_plot(const char *prefix, const lc_figure *fig, const lc_series *s, int n);
/* A run's rotation curves as the paper draws them, to PREFIX.png and
 * PREFIX.svg: x the epoch with 0 prepended (distance 0), one line per layer
 * coloured viridis from first to last, the layers' names in a legend up to
 * LC_PLOT_LEGEND_MAX layers, else a colour bar "First layer" .. "Last
 * layer"; learning-rate drops as dashed vertical lines. */
lc_status lc_plot_rotation(const lc_metrics *m, const char *prefix, const char *title);
#define LC_PLOT_LEGEND_MAX 12
/* Several runs' rotation curves in one figure: a colour per run (labels[r]
 * in the legend, on its first layer's line), every layer of a run in its
 * colour, first layer solid, the others dashed. */
lc_status lc_plot_rotation_runs(const lc_metrics *m, const char *const *labels, int runs, const char *prefix,
                                const char *title);
/* A colour per run (a qualitative palette, repeating after 10). */
void lc_plot_run_colour(int run, double rgb[3]);
/* The epochs at which the learning rate of m's evaluation records drops
 * (the end of the last epoch at the higher rate), into x (at most max);
 * returns the count. */
int lc_plot_lr_drops(const lc_metrics *m, double *x, int max);

#endif

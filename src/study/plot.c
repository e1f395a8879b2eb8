/* PLplot figures: white background, black axes, coloured lines. */
#include "lc_plot.h"

#include <math.h>
#include <plplot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lc_viridis(double t, double rgb[3])
{
    static const double k[9][3] = {{68, 1, 84},    {72, 40, 120},  {62, 74, 137},  {49, 104, 142}, {38, 130, 142},
                                   {31, 158, 137}, {53, 183, 121}, {109, 205, 89}, {253, 231, 37}};
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    double p = t * 8;
    int i = (int)p;
    if (i >= 8) i = 7;
    double f = p - i;
    for (int c = 0; c < 3; c++) rgb[c] = ((1 - f) * k[i][c] + f * k[i + 1][c]) / 255.0;
}

static void set_rgb(int idx, const double rgb[3])
{
    plscol0(idx, (int)lround(rgb[0] * 255), (int)lround(rgb[1] * 255), (int)lround(rgb[2] * 255));
    plcol0(idx);
}

static void draw(const lc_figure *f, const lc_series *s, int n)
{
    double xmin = f->xmin, xmax = f->xmax, ymin = f->ymin, ymax = f->ymax;
    if (xmin == xmax || ymin == ymax) {
        double a = INFINITY, b = -INFINITY, c = INFINITY, d = -INFINITY;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < s[i].n; j++) {
                if (!isfinite(s[i].x[j]) || !isfinite(s[i].y[j])) continue;
                a = fmin(a, s[i].x[j]);
                b = fmax(b, s[i].x[j]);
                c = fmin(c, s[i].y[j]);
                d = fmax(d, s[i].y[j]);
            }
        if (!isfinite(a)) { a = 0; b = 1; c = 0; d = 1; }
        if (xmin == xmax) { xmin = a; xmax = b > a ? b : a + 1; }
        if (ymin == ymax) {
            double pad = (d - c) * 0.05 + 1e-12;
            ymin = c - pad;
            ymax = d + pad;
        }
    }
    if (f->logx) { xmin = log10(xmin); xmax = log10(xmax); }
    plscol0(0, 255, 255, 255);
    plscol0(1, 0, 0, 0);
    plinit();
    pladv(0);
    plschr(0, 0.9);
    double right = f->colorbar_low ? 0.80 : 0.95;
    plvpor(0.11, right, 0.12, 0.90);
    plwind(xmin, xmax, ymin, ymax);
    plcol0(1);
    plbox(f->logx ? "bcnstl" : "bcnst", 0, 0, "bcnstv", 0, 0);
    pllab(f->xlabel ? f->xlabel : "", f->ylabel ? f->ylabel : "", f->title ? f->title : "");
    for (int i = 0; i < n; i++) {
        double xs[4096], ys[4096];
        int m = 0;
        for (int j = 0; j < s[i].n && m < 4096; j++) {
            if (!isfinite(s[i].x[j]) || !isfinite(s[i].y[j])) continue;
            xs[m] = f->logx ? log10(s[i].x[j]) : s[i].x[j];
            ys[m] = s[i].y[j];
            m++;
        }
        set_rgb(15, s[i].rgb);
        plwidth(2.0);
        pllsty(s[i].dashed ? 2 : 1);
        if (m > 1) plline(m, xs, ys);
        if (s[i].points && m > 0) plpoin(m, xs, ys, 17);
    }
    static const double grey[3] = {0.55, 0.55, 0.55};
    for (int i = 0; i < f->n_vlines; i++) {
        double vx = f->logx ? log10(f->vlines[i]) : f->vlines[i];
        double xx[2] = {vx, vx}, yy[2] = {ymin, ymax};
        set_rgb(15, grey);
        plwidth(1.0);
        pllsty(3);
        plline(2, xx, yy);
    }
    pllsty(1);
    plwidth(1.0);
    if (f->legend) {
        /* a simple legend: coloured sample lines with labels, top left */
        double lx = xmin + 0.04 * (xmax - xmin), ly = ymax - 0.06 * (ymax - ymin);
        for (int i = 0; i < n; i++) {
            if (!s[i].label) continue;
            double xx[2] = {lx, lx + 0.07 * (xmax - xmin)}, yy[2] = {ly, ly};
            set_rgb(15, s[i].rgb);
            plwidth(2.0);
            pllsty(s[i].dashed ? 2 : 1);
            plline(2, xx, yy);
            pllsty(1);
            plcol0(1);
            plptex(xx[1] + 0.02 * (xmax - xmin), ly, 1, 0, 0, s[i].label);
            ly -= 0.06 * (ymax - ymin);
        }
    }
    if (f->colorbar_low) {
        plvpor(0.86, 0.89, 0.12, 0.90);
        plwind(0, 1, 0, 1);
        for (int i = 0; i < 64; i++) {
            double rgb[3], xx[4] = {0, 1, 1, 0}, yy[4] = {i / 64.0, i / 64.0, (i + 1) / 64.0, (i + 1) / 64.0};
            lc_viridis(i / 63.0, rgb);
            set_rgb(15, rgb);
            plfill(4, xx, yy);
        }
        plcol0(1);
        plbox("bc", 0, 0, "bc", 0, 0);
        plmtex("b", 1.5, 0.5, 0.5, f->colorbar_low);
        plmtex("t", 1.0, 0.5, 0.5, f->colorbar_high);
    }
    plend();
}

lc_status lc_plot(const char *prefix, const lc_figure *fig, const lc_series *s, int n)
{
    static const char *dev[2] = {"pngcairo", "svgcairo"}, *ext[2] = {"png", "svg"};
    for (int k = 0; k < 2; k++) {
        char path[1100], tmp[1200];
        snprintf(path, sizeof path, "%s.%s", prefix, ext[k]);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *probe = fopen(tmp, "w");
        if (!probe) return LC_ERR(LC_ERR_IO, "%s: cannot write", path);
        fclose(probe);
        plsdev(dev[k]);
        plsfnam(tmp);
        plsetopt("geometry", "900x600");
        draw(fig, s, n);
        /* drawn to a temp name, then put in place by the atomic writer: no
         * half-written figure, a symbolic link is written through, and a
         * folder, FIFO or device at the path is refused */
        uint8_t *bytes;
        size_t len;
        lc_status st = lc_file_read(tmp, &bytes, &len);
        remove(tmp);
        if (st != LC_OK) return lc_error_prefix(st, "%s: the finished figure", path);
        st = lc_file_write_atomic(path, bytes, len);
        free(bytes);
        if (st != LC_OK) return st;
    }
    return LC_OK;
}

lc_status lc_plot_rotation(const lc_metrics *m, const char *prefix, const char *title)
{
    int L = m->n_layers, n = m->n_rot + 1;
    double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * L * sizeof *y);
    lc_series *s = calloc((size_t)(L ? L : 1), sizeof *s);
    if (!x || !y || !s) { free(x); free(y); free(s); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    double ymax = 0;
    x[0] = 0;
    for (int i = 0; i < m->n_rot; i++) x[i + 1] = m->rot[i].epoch;
    for (int l = 0; l < L; l++) {
        y[l * n] = 0;
        for (int i = 0; i < m->n_rot; i++) {
            y[l * n + i + 1] = m->rot[i].rotation[l];
            if (isfinite(m->rot[i].rotation[l])) ymax = fmax(ymax, m->rot[i].rotation[l]);
        }
        s[l] = (lc_series){.x = x, .y = y + l * n, .n = n};
        lc_viridis(L > 1 ? (double)l / (L - 1) : 0, s[l].rgb);
    }
    /* the paper's y range: the smallest of 1e-3, 1e-2, 1e-1 above the data,
     * else [0, 1.1] */
    double top = ymax <= 1e-3 ? 1e-3 : ymax <= 1e-2 ? 1e-2 : ymax <= 1e-1 ? 1e-1 : fmax(1.1, ymax * 1.02);
    bool names = L <= LC_PLOT_LEGEND_MAX;
    for (int l = 0; names && l < L; l++) s[l].label = m->layer[l];
    double drops[64];
    int nd = lc_plot_lr_drops(m, drops, 64);
    lc_figure f = {.title = title, .xlabel = nd ? "Epoch (dashed: learning-rate drops)" : "Epoch",
                   .ylabel = "Cosine distance", .xmin = 0, .xmax = x[n - 1] > 0 ? x[n - 1] : 1, .ymin = 0, .ymax = top,
                   .colorbar_low = names ? NULL : "First layer", .colorbar_high = names ? NULL : "Last layer",
                   .legend = names, .vlines = drops, .n_vlines = nd};
    lc_status st = lc_plot(prefix, &f, s, L);
    free(x);
    free(y);
    free(s);
    return st;
}

int lc_plot_lr_drops(const lc_metrics *m, double *x, int max)
{
    int n = 0;
    for (int i = 1; i < m->n_eval && n < max; i++)
        if (m->eval[i].lr < m->eval[i - 1].lr && m->eval[i].epoch > m->eval[i - 1].epoch)
            x[n++] = m->eval[i - 1].epoch;
    return n;
}

void lc_plot_run_colour(int run, double rgb[3])
{
    static const unsigned char pal[10][3] = {{31, 119, 180}, {214, 39, 40},  {44, 160, 44},   {255, 127, 14},
                                             {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                             {188, 189, 34},  {23, 190, 207}};
    for (int k = 0; k < 3; k++) rgb[k] = pal[run % 10][k] / 255.0;
}

lc_status lc_plot_rotation_runs(const lc_metrics *m, const char *const *labels, int runs, const char *prefix,
                                const char *title)
{
    int total = 0, pts = 0;
    for (int r = 0; r < runs; r++) {
        total += m[r].n_layers;
        pts += (m[r].n_rot + 1) * (m[r].n_layers + 1);
    }
    lc_series *s = calloc((size_t)(total ? total : 1), sizeof *s);
    double *buf = malloc((size_t)(pts ? pts : 1) * sizeof *buf);
    if (!s || !buf) { free(s); free(buf); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    double ymax = 0, xmax = 0, *p = buf;
    int k = 0;
    for (int r = 0; r < runs; r++) {
        int n = m[r].n_rot + 1;
        double *x = p;
        p += n;
        x[0] = 0;
        for (int i = 0; i < m[r].n_rot; i++) x[i + 1] = m[r].rot[i].epoch;
        xmax = fmax(xmax, x[n - 1]);
        for (int l = 0; l < m[r].n_layers; l++, k++) {
            double *y = p;
            p += n;
            y[0] = 0;
            for (int i = 0; i < m[r].n_rot; i++) {
                y[i + 1] = m[r].rot[i].rotation[l];
                if (isfinite(y[i + 1])) ymax = fmax(ymax, y[i + 1]);
            }
            s[k] = (lc_series){.x = x, .y = y, .n = n, .label = l == 0 ? labels[r] : NULL, .dashed = l > 0};
            lc_plot_run_colour(r, s[k].rgb);
        }
    }
    double top = ymax <= 1e-3 ? 1e-3 : ymax <= 1e-2 ? 1e-2 : ymax <= 1e-1 ? 1e-1 : fmax(1.1, ymax * 1.02);
    lc_figure f = {.title = title, .xlabel = "Epoch", .ylabel = "Cosine distance (first layer solid)", .xmin = 0,
                   .xmax = xmax > 0 ? xmax : 1, .ymin = 0, .ymax = top, .legend = true};
    lc_status st = lc_plot(prefix, &f, s, k);
    free(s);
    free(buf);
    return st;
}

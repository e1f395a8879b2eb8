/* layca-bench's side-by-side tables, markdown and JSON report and figure. */
#include "bench.h"

#include <math.h>
#include <plplot.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lc_plot.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void bench_stats(const double *v, int n, double *med, double *lo, double *hi)
{
    double s[BENCH_MAXREP];
    int m = 0;
    for (int i = 0; i < n && m < BENCH_MAXREP; i++)
        if (isfinite(v[i])) s[m++] = v[i];
    if (m == 0) {
        *med = *lo = *hi = NAN;
        return;
    }
    qsort(s, (size_t)m, sizeof *s, cmp_double);
    *lo = s[0];
    *hi = s[m - 1];
    *med = m % 2 ? s[m / 2] : 0.5 * (s[m / 2 - 1] + s[m / 2]);
}

void bench_num(char *out, size_t cap, double v)
{
    if (!isfinite(v)) {
        snprintf(out, cap, "-");
        return;
    }
    double a = fabs(v);
    if (a < 1e12 && v == floor(v)) {
        snprintf(out, cap, "%.0f", v);
        return;
    }
    int dec = a == 0 ? 0 : 3 - (int)floor(log10(a));
    if (dec < 0) dec = 0;
    if (dec > 6) dec = 6;
    snprintf(out, cap, "%.*f", dec, v);
}

/* ---- rows of the comparison ---- */

/* The headline figures of each measurement, in table order. */
static const struct headline {
    const char *what, *key, *label, *unit;
    int better; /* +1 higher is better, -1 lower, 0 neither */
} headlines[] = {
    {"copy", "gbps", "copy bandwidth", "GB/s", +1},
    {"launch_latency", "us", "launch latency", "us", -1},
    {"gemm", "gflops", "SGEMM", "GFLOP/s", +1},
    {"train_step", "ms", "training step", "ms", -1},
    {"train_step", "images_per_s", "training throughput", "images/s", +1},
    {"optimizer_step", "ms", "optimizer step", "ms", -1},
    {"memory", "device_mib", "device memory", "MiB", 0},
    {"startup", "s", "start-up", "s", -1},
};

typedef struct row {
    char label[256];
    const struct headline *h;
    int cell_rec[BENCH_MAXDEV + 1]; /* per device (last: the host); -1: none */
    int cell_fig[BENCH_MAXDEV + 1];
} row;

static const bench_fig *find_fig(const bench_rec *r, const char *key)
{
    for (int i = 0; i < r->nf; i++)
        if (!strcmp(r->f[i].key, key)) return &r->f[i];
    return NULL;
}

/* Rows for the device records (host == false) or the host's; *n rows. */
static row *make_rows(const bench_results *res, bool host, int *n_out)
{
    row *rows = NULL;
    int n = 0, cap = 0;
    for (size_t h = 0; h < LC_COUNTOF(headlines); h++) {
        for (int ri = 0; ri < res->n; ri++) {
            const bench_rec *r = &res->rec[ri];
            if ((r->dev < 0) != host || strcmp(r->what, headlines[h].what) != 0) continue;
            const bench_fig *f = find_fig(r, headlines[h].key);
            if (!f || f->is_str) continue;
            char label[256];
            int len = snprintf(label, sizeof label, "%s", headlines[h].label);
            for (int i = 0; i < r->nf && len < (int)sizeof label; i++)
                if (r->f[i].is_str && strcmp(r->f[i].key, "path") != 0)
                    len += snprintf(label + len, sizeof label - (size_t)len, " %s", r->f[i].s);
            if (r->model[0] && len < (int)sizeof label)
                len += snprintf(label + len, sizeof label - (size_t)len, " %s", r->model);
            if (r->batch && len < (int)sizeof label) snprintf(label + len, sizeof label - (size_t)len, " b%d", r->batch);
            int k = 0;
            while (k < n && strcmp(rows[k].label, label) != 0) k++;
            if (k == n) {
                if (n == cap) {
                    int nc = cap ? cap * 2 : 32;
                    row *nr = realloc(rows, (size_t)nc * sizeof *nr);
                    if (!nr) break;
                    rows = nr;
                    cap = nc;
                }
                memset(&rows[n], 0, sizeof rows[n]);
                snprintf(rows[n].label, sizeof rows[n].label, "%s", label);
                rows[n].h = &headlines[h];
                for (int d = 0; d <= BENCH_MAXDEV; d++) rows[n].cell_rec[d] = -1;
                n++;
            }
            int col = r->dev < 0 ? BENCH_MAXDEV : r->dev;
            rows[k].cell_rec[col] = ri;
            rows[k].cell_fig[col] = (int)(f - r->f);
        }
    }
    *n_out = n;
    return rows;
}

static void cell_text(const bench_results *res, const row *rw, int col, char *out, size_t cap)
{
    if (rw->cell_rec[col] < 0) {
        snprintf(out, cap, "-");
        return;
    }
    const bench_fig *f = &res->rec[rw->cell_rec[col]].f[rw->cell_fig[col]];
    double med, lo, hi;
    bench_stats(f->v, f->n, &med, &lo, &hi);
    char a[32], b[32], c[32];
    bench_num(a, sizeof a, med);
    if (f->n > 1) {
        bench_num(b, sizeof b, lo);
        bench_num(c, sizeof c, hi);
        snprintf(out, cap, "%s (%s-%s)", a, b, c);
    } else {
        snprintf(out, cap, "%s", a);
    }
}

/* "OpenCL 3.0 PoCL 3.1+debian  Linux, None+Asserts, ..." -> up to the first comma */
static void short_version(const char *v, char *out, size_t cap)
{
    size_t n = strcspn(v, ",");
    while (n && v[n - 1] == ' ') n--;
    snprintf(out, cap, "%.*s", (int)n, v);
}

static void dev_header(const bench_dev *d, char *out, size_t cap)
{
    char pv[128];
    short_version(d->info.platform_version, pv, sizeof pv);
    int n = snprintf(out, cap, "%s %s (%s, %s, driver %s)", d->id, d->info.name, d->info.platform_name, pv,
                     d->info.driver_version);
    if (n < 0 || (size_t)n >= cap) out[cap - 1] = 0; /* cut: a very long name */
}

static const char *better_text(int b) { return b > 0 ? "higher is better" : b < 0 ? "lower is better" : ""; }

static void print_device_table(const bench_results *res, FILE *out)
{
    int n;
    row *rows = make_rows(res, false, &n);
    fprintf(out, "| measurement | unit |");
    for (int d = 0; d < res->n_dev; d++) {
        char h[700];
        dev_header(&res->dev[d], h, sizeof h);
        fprintf(out, " %s |", h);
    }
    fprintf(out, "\n| --- | --- |");
    for (int d = 0; d < res->n_dev; d++) fprintf(out, " --- |");
    fprintf(out, "\n");
    fprintf(out, "| CLBlast parameters | |");
    for (int d = 0; d < res->n_dev; d++) fprintf(out, " %s |", res->dev[d].tune[0] ? res->dev[d].tune : "-");
    fprintf(out, "\n| training step path | |");
    for (int d = 0; d < res->n_dev; d++)
        fprintf(out, " %s |", res->dev[d].error[0] ? "-" : res->dev[d].host_shortcuts ? "host shortcuts (host BLAS)" : "device only");
    fprintf(out, "\n");
    for (int i = 0; i < n; i++) {
        fprintf(out, "| %s | %s%s%s |", rows[i].label, rows[i].h->unit, rows[i].h->better ? ", " : "",
                better_text(rows[i].h->better));
        for (int d = 0; d < res->n_dev; d++) {
            char c[128];
            cell_text(res, &rows[i], d, c, sizeof c);
            fprintf(out, " %s |", c);
        }
        fprintf(out, "\n");
    }
    bool any_err = false;
    for (int d = 0; d < res->n_dev; d++) any_err |= res->dev[d].error[0] != 0;
    if (any_err) {
        fprintf(out, "| error | |");
        for (int d = 0; d < res->n_dev; d++) fprintf(out, " %s |", res->dev[d].error[0] ? res->dev[d].error : "");
        fprintf(out, "\n");
    }
    free(rows);
}

static void print_host_table(const bench_results *res, FILE *out)
{
    int n;
    row *rows = make_rows(res, true, &n);
    if (n > 0) {
        fprintf(out, "\nHost BLAS on host memory (a property of the host CPU and its BLAS, not of an OpenCL device):\n\n");
        fprintf(out, "| measurement | unit | host: %s, %d threads |\n| --- | --- | --- |\n", res->host_cpu, res->host_threads);
        for (int i = 0; i < n; i++) {
            char c[128];
            cell_text(res, &rows[i], BENCH_MAXDEV, c, sizeof c);
            fprintf(out, "| %s | %s%s%s | %s |\n", rows[i].label, rows[i].h->unit, rows[i].h->better ? ", " : "",
                    better_text(rows[i].h->better), c);
        }
    }
    free(rows);
}

void bench_print_tables(const bench_results *res, FILE *out)
{
    fprintf(out, "Median (minimum-maximum) of %d repeats; batch %d, %d steps per repeat%s%s.\n\n", res->repeats,
            res->batch, res->steps, res->quick ? ", quick" : "", res->device_only ? ", device only" : "");
    print_device_table(res, out);
    print_host_table(res, out);
    fflush(out);
}

/* ---- the report ---- */

/* "median": M, "min": L, "max": H of a figure's samples */
static void json_stats(lc_strbuf *sb, const bench_fig *f)
{
    double med, lo, hi;
    bench_stats(f->v, f->n, &med, &lo, &hi);
    lc_strbuf_printf(sb, "\"median\": ");
    lc_strbuf_json_number(sb, "%.6g", med);
    lc_strbuf_printf(sb, ", \"min\": ");
    lc_strbuf_json_number(sb, "%.6g", lo);
    lc_strbuf_printf(sb, ", \"max\": ");
    lc_strbuf_json_number(sb, "%.6g", hi);
}

static void json_fig(lc_strbuf *sb, const bench_fig *f)
{
    lc_strbuf_json_string(sb, f->key);
    lc_strbuf_printf(sb, ": ");
    if (f->is_str) {
        lc_strbuf_json_string(sb, f->s);
        return;
    }
    lc_strbuf_printf(sb, "{");
    json_stats(sb, f);
    lc_strbuf_printf(sb, ", \"samples\": [");
    for (int i = 0; i < f->n; i++) {
        if (i) lc_strbuf_printf(sb, ", ");
        lc_strbuf_json_number(sb, "%.6g", f->v[i]);
    }
    lc_strbuf_printf(sb, "]}");
}

static void json_kv(lc_strbuf *sb, const char *k, const char *v, bool comma)
{
    lc_strbuf_json_string(sb, k);
    lc_strbuf_printf(sb, ": ");
    lc_strbuf_json_string(sb, v);
    if (comma) lc_strbuf_printf(sb, ", ");
}

static void json_report(const bench_results *res, lc_strbuf *sb)
{
    lc_strbuf_printf(sb, "{\"format\": \"layca-bench-report/1\",\n \"settings\": {\"repeats\": %d, \"batch\": %d, "
                         "\"steps\": %d, \"quick\": %s, \"device_only\": %s, \"models\": [",
                     res->repeats, res->batch, res->steps, res->quick ? "true" : "false",
                     res->device_only ? "true" : "false");
    for (int i = 0; i < res->n_models; i++) {
        if (i) lc_strbuf_printf(sb, ", ");
        lc_strbuf_json_string(sb, res->models[i]);
    }
    lc_strbuf_printf(sb, "]},\n \"host\": {");
    json_kv(sb, "cpu", res->host_cpu, true);
    lc_strbuf_printf(sb, "\"threads\": %d},\n \"devices\": [", res->host_threads);
    for (int d = 0; d < res->n_dev; d++) {
        const bench_dev *v = &res->dev[d];
        lc_strbuf_printf(sb, "%s\n  {", d ? "," : "");
        json_kv(sb, "id", v->id, true);
        json_kv(sb, "name", v->info.name, true);
        json_kv(sb, "vendor", v->info.vendor, true);
        json_kv(sb, "type", lc_rt_device_type_name(v->info.type), true);
        json_kv(sb, "platform", v->info.platform_name, true);
        json_kv(sb, "platform_version", v->info.platform_version, true);
        json_kv(sb, "driver_version", v->info.driver_version, true);
        lc_strbuf_printf(sb, "\"compute_units\": %u, \"global_mem_mib\": %.0f, ", v->info.compute_units,
                         (double)v->info.global_mem_bytes / 1048576.0);
        json_kv(sb, "clblast_parameters", v->tune, true);
        lc_strbuf_printf(sb, "\"host_shortcuts\": %s, \"error\": ", v->host_shortcuts ? "true" : "false");
        if (v->error[0]) lc_strbuf_json_string(sb, v->error);
        else lc_strbuf_printf(sb, "null");
        lc_strbuf_printf(sb, "}");
    }
    lc_strbuf_printf(sb, "],\n \"results\": [");
    for (int i = 0; i < res->n; i++) {
        const bench_rec *r = &res->rec[i];
        lc_strbuf_printf(sb, "%s\n  {\"device\": ", i ? "," : "");
        lc_strbuf_json_string(sb, r->dev < 0 ? "host" : res->dev[r->dev].id);
        lc_strbuf_printf(sb, ", ");
        json_kv(sb, "what", r->what, false);
        if (r->model[0]) {
            lc_strbuf_printf(sb, ", ");
            json_kv(sb, "model", r->model, false);
        }
        if (r->batch) lc_strbuf_printf(sb, ", \"batch\": %d", r->batch);
        lc_strbuf_printf(sb, ", \"figures\": {");
        for (int j = 0; j < r->nf; j++) {
            if (j) lc_strbuf_printf(sb, ", ");
            json_fig(sb, &r->f[j]);
        }
        lc_strbuf_printf(sb, "}}");
    }
    /* the comparison table as data */
    lc_strbuf_printf(sb, "],\n \"table\": [");
    int first = 1;
    for (int host = 0; host < 2; host++) {
        int n;
        row *rows = make_rows(res, host, &n);
        for (int i = 0; i < n; i++) {
            lc_strbuf_printf(sb, "%s\n  {", first ? "" : ",");
            first = 0;
            json_kv(sb, "section", host ? "host" : "opencl", true);
            json_kv(sb, "measurement", rows[i].label, true);
            json_kv(sb, "unit", rows[i].h->unit, true);
            json_kv(sb, "better", rows[i].h->better > 0 ? "higher" : rows[i].h->better < 0 ? "lower" : "none", true);
            lc_strbuf_printf(sb, "\"cells\": {");
            int nc = 0;
            for (int d = 0; d <= BENCH_MAXDEV; d++) {
                if (rows[i].cell_rec[d] < 0) continue;
                const bench_fig *f = &res->rec[rows[i].cell_rec[d]].f[rows[i].cell_fig[d]];
                if (nc++) lc_strbuf_printf(sb, ", ");
                lc_strbuf_json_string(sb, d == BENCH_MAXDEV ? "host" : res->dev[d].id);
                lc_strbuf_printf(sb, ": {");
                json_stats(sb, f);
                lc_strbuf_printf(sb, ", \"n\": %d}", f->n);
            }
            lc_strbuf_printf(sb, "}}");
        }
        free(rows);
    }
    lc_strbuf_printf(sb, "]}\n");
}

/* Whether PLplot has a device driver (its drivers are loaded at run time:
 * a binary carried to another machine may have none). */
static bool have_driver(const char *name)
{
    const char *menu[64], *names[64];
    const char **m = menu, **d = names;
    int n = 64;
    plgDevs(&m, &d, &n);
    for (int i = 0; i < n && i < 64; i++)
        if (d[i] && !strcmp(d[i], name)) return true;
    return false;
}

/* Horizontal bars: for each measurement with a direction, each device's
 * median relative to the best device (1 = best), log scale, with the
 * min-max range as a whisker. */
static lc_status figure(const bench_results *res, const char *prefix)
{
    int n;
    row *rows = make_rows(res, false, &n);
    int keep[256], nk = 0;
    for (int i = 0; i < n && nk < 256; i++)
        if (rows[i].h->better != 0) keep[nk++] = i;
    if (nk == 0 || res->n_dev == 0) {
        free(rows);
        return LC_OK;
    }
    /* relative values: rel = best / v for lower-is-better, v / best else */
    double lo_all = 1.0;
    static double rel[256][BENCH_MAXDEV][3];
    for (int k = 0; k < nk; k++) {
        const row *rw = &rows[keep[k]];
        double best = NAN;
        for (int d = 0; d < res->n_dev; d++) {
            if (rw->cell_rec[d] < 0) continue;
            const bench_fig *f = &res->rec[rw->cell_rec[d]].f[rw->cell_fig[d]];
            double med, lo, hi;
            bench_stats(f->v, f->n, &med, &lo, &hi);
            if (!(med > 0)) continue;
            if (!isfinite(best) || (rw->h->better > 0 ? med > best : med < best)) best = med;
        }
        for (int d = 0; d < res->n_dev; d++) {
            rel[k][d][0] = rel[k][d][1] = rel[k][d][2] = NAN;
            if (rw->cell_rec[d] < 0 || !isfinite(best)) continue;
            const bench_fig *f = &res->rec[rw->cell_rec[d]].f[rw->cell_fig[d]];
            double m[3];
            bench_stats(f->v, f->n, &m[0], &m[1], &m[2]);
            for (int j = 0; j < 3; j++) {
                double v = m[j] > 0 ? (rw->h->better > 0 ? m[j] / best : best / m[j]) : NAN;
                rel[k][d][j] = v;
                if (v > 0 && v < lo_all) lo_all = v;
            }
        }
    }
    double xmin = floor(log10(lo_all) - 0.05);
    if (xmin > -1) xmin = -1;
    if (xmin < -6) xmin = -6;
    double xmax = 0.1; /* whiskers may pass 1 (the best device's own spread) */
    static const char *dev[2] = {"pngcairo", "svgcairo"}, *ext[2] = {"png", "svg"};
    lc_status st = LC_OK;
    int head = 50 + 22 * res->n_dev; /* title and legend, pixels */
    int height = head + 70 + nk * (16 * res->n_dev + 12);
    for (int e = 0; e < 2 && st == LC_OK; e++) {
        if (!have_driver(dev[e])) {
            fprintf(stderr, "layca-bench: PLplot has no %s driver here: no %s.%s figure\n", dev[e], prefix, ext[e]);
            continue;
        }
        char path[1300], tmp[1400], geom[64];
        snprintf(path, sizeof path, "%s.%s", prefix, ext[e]);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *probe = fopen(tmp, "w");
        if (!probe) { st = LC_ERR(LC_ERR_IO, "%s: cannot write", path); break; }
        fclose(probe);
        plsdev(dev[e]);
        plsfnam(tmp);
        snprintf(geom, sizeof geom, "1100x%d", height);
        plsetopt("geometry", geom);
        plscol0(0, 255, 255, 255);
        plscol0(1, 0, 0, 0);
        plinit();
        pladv(0);
        plschr(0, 0.75);
        double top = 1.0 - (double)head / height, bottom = 55.0 / height;
        /* title and legend: the devices, one line each */
        plvpor(0.02, 0.98, top + 10.0 / height, 1.0 - 8.0 / height);
        plwind(0, 1, 0, res->n_dev + 1.5);
        plcol0(1);
        plschr(0, 0.7);
        plptex(0.5, res->n_dev + 0.9, 1, 0, 0.5,
               "layca-bench: each measurement relative to the best device (1 = best), median and min-max");
        for (int d = 0; d < res->n_dev; d++) {
            double rgb[3];
            lc_viridis(res->n_dev > 1 ? (double)d / (res->n_dev - 1) * 0.85 : 0.3, rgb);
            plscol0(15, (int)lround(rgb[0] * 255), (int)lround(rgb[1] * 255), (int)lround(rgb[2] * 255));
            double y = res->n_dev - d - 0.5;
            double xs[4] = {0.0, 0.025, 0.025, 0.0}, ys[4] = {y - 0.3, y - 0.3, y + 0.3, y + 0.3};
            plcol0(15);
            plfill(4, xs, ys);
            plcol0(1);
            char h[700];
            dev_header(&res->dev[d], h, sizeof h);
            plptex(0.035, y, 1, 0, 0, h);
        }
        /* the bars */
        plschr(0, 0.75);
        plvpor(0.40, 0.97, bottom, top);
        double ymax = nk * (res->n_dev + 0.6);
        plwind(xmin, xmax, 0, ymax);
        plcol0(1);
        plbox("bcnstgl", 0, 0, "bc", 0, 0);
        pllab("relative to the best device (log scale)", "", "");
        for (int k = 0; k < nk; k++) {
            const row *rw = &rows[keep[k]];
            double y0 = ymax - k * (res->n_dev + 0.6) - 0.3;
            char lab[300];
            snprintf(lab, sizeof lab, "%s (%s)", rw->label, rw->h->unit);
            plcol0(1);
            plmtex("lv", 0.6, (y0 - res->n_dev / 2.0) / ymax, 1.0, lab);
            for (int d = 0; d < res->n_dev; d++) {
                double rgb[3];
                lc_viridis(res->n_dev > 1 ? (double)d / (res->n_dev - 1) * 0.85 : 0.3, rgb);
                plscol0(15, (int)lround(rgb[0] * 255), (int)lround(rgb[1] * 255), (int)lround(rgb[2] * 255));
                double yb = y0 - d - 0.9, yt = y0 - d - 0.1;
                double v = rel[k][d][0];
                if (!(v > 0)) continue;
                double xv = log10(v);
                if (xv < xmin) xv = xmin;
                double xs[4] = {xmin, xv, xv, xmin}, ys[4] = {yb, yb, yt, yt};
                plcol0(15);
                plfill(4, xs, ys);
                /* whisker: min..max */
                double a = rel[k][d][1], c = rel[k][d][2];
                if (a > 0 && c > 0) {
                    double wx[2] = {fmax(xmin, log10(fmin(a, c))), fmin(xmax, fmax(xmin, log10(fmax(a, c))))};
                    double wy[2] = {(yb + yt) / 2, (yb + yt) / 2};
                    plcol0(1);
                    plline(2, wx, wy);
                }
            }
        }
        plend();
        if (rename(tmp, path) != 0) {
            remove(tmp);
            st = LC_ERR(LC_ERR_IO, "%s: cannot rename the finished figure", path);
        }
    }
    free(rows);
    return st;
}

static lc_status markdown(const bench_results *res, const char *dir, lc_strbuf *sb)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&now));
    fprintf(m, "# layca-bench report\n\n%s. Host: %s, %d threads.\n\n", when, res->host_cpu, res->host_threads);
    fprintf(m, "Models:");
    for (int i = 0; i < res->n_models; i++) fprintf(m, " `%s`", res->models[i]);
    fprintf(m, ".\n\n## Devices\n\n| id | device | type | compute units | memory | platform | platform version | driver |\n"
               "| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (int d = 0; d < res->n_dev; d++) {
        const bench_dev *v = &res->dev[d];
        fprintf(m, "| %s | %s | %s | %u | %.1f GiB | %s | %s | %s |\n", v->id, v->info.name,
                lc_rt_device_type_name(v->info.type), v->info.compute_units,
                (double)v->info.global_mem_bytes / (1024.0 * 1024 * 1024), v->info.platform_name,
                v->info.platform_version, v->info.driver_version);
    }
    fprintf(m, "\n## Side by side\n\n");
    bench_print_tables(res, m);
    fprintf(m, "\n![each measurement relative to the best device](bench.png)\n\n");
    fprintf(m, "Definitions: `layca-bench --help` and docs/bench.md. Full data: bench.json.\n");
    fclose(m);
    lc_strbuf_printf(sb, "%s", buf ? buf : "");
    free(buf);
    (void)dir;
    return LC_OK;
}

lc_status bench_write_report(const bench_results *res, const char *dir)
{
    LC_TRY(lc_mkdirs(dir));
    char path[1200];
    lc_strbuf sb = {0};
    json_report(res, &sb);
    snprintf(path, sizeof path, "%s/bench.json", dir);
    lc_status st = sb.oom ? LC_ERR(LC_ERR_NOMEM, "out of memory") : lc_file_write_atomic(path, sb.s, sb.len);
    lc_strbuf_clear(&sb);
    if (st == LC_OK) st = markdown(res, dir, &sb);
    snprintf(path, sizeof path, "%s/bench.md", dir);
    if (st == LC_OK) st = lc_file_write_atomic(path, sb.s ? sb.s : "", sb.len);
    lc_strbuf_free(&sb);
    snprintf(path, sizeof path, "%s/bench", dir);
    if (st != LC_OK) return st;
    /* Drawn in this process, as `layca plot` does (have_driver skips a
     * missing PLplot driver).  Not in a forked child: the OpenCL drivers
     * keep threads, and a child of a threaded process may find an allocator
     * lock held forever (seen under ASan with rusticl) */
    if (figure(res, path) != LC_OK)
        fprintf(stderr, "layca-bench: no figure (%s); bench.md and bench.json are written\n", lc_error_message());
    return LC_OK;
}

/* A study's figures (PNG and SVG in its folder): accuracy against the swept
 * setting beside the paper's numbers, training curves, each chosen run's
 * layer rotation as `layca plot` draws it. */
#include "study_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_metrics.h"
#include "lc_plot.h"

static const double C_LAYCA[3] = {0.84, 0.15, 0.16}, C_SGD[3] = {0.12, 0.47, 0.71};
static const double C_LAYCA_P[3] = {0.96, 0.62, 0.60}, C_SGD_P[3] = {0.62, 0.78, 0.91};


/* lc_plot's legend sits in the top left corner: with an automatic y range,
 * leave room above the data for it. */
static lc_status plot(const study *S, lc_strbuf *F, const char *name, const lc_figure *f0, const lc_series *s, int n)
{
    char prefix[1100];
    snprintf(prefix, sizeof prefix, "%s/%s", S->out, name);
    lc_figure f = *f0;
    if (f.legend && f.ymin == f.ymax) {
        double lo = INFINITY, hi = -INFINITY;
        int entries = 0;
        for (int i = 0; i < n; i++) {
            entries += s[i].label != NULL;
            for (int j = 0; j < s[i].n; j++)
                if (isfinite(s[i].y[j])) { lo = fmin(lo, s[i].y[j]); hi = fmax(hi, s[i].y[j]); }
        }
        if (isfinite(lo)) {
            double pad = (hi - lo) * 0.05 + 1e-9 + (hi == lo ? fabs(hi) * 0.05 + 0.5 : 0);
            double q = 0.06 * entries + 0.05; /* the legend's share of the height */
            f.ymin = lo - pad;
            f.ymax = f.ymin + (hi + pad - f.ymin) / (1 - q);
        }
    }
    LC_TRY(lc_plot(prefix, &f, s, n));
    lc_strbuf_printf(F, "figure: %s.{png,svg}\n", prefix);
    return LC_OK;
}

/* A run's rotation curves, drawn as `layca plot` draws them. */
static lc_status plot_rotation(const study *S, lc_strbuf *F, const run *r, const char *name, const char *title)
{
    char path[1200], dir[1100], prefix[1100];
    lc_study_run_dir(S, r, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    lc_metrics m;
    LC_TRY(lc_metrics_load(path, &m));
    lc_status st = LC_OK;
    if (m.n_layers > 0 && m.n_rot > 0) {
        snprintf(prefix, sizeof prefix, "%s/%s", S->out, name);
        st = lc_plot_rotation(&m, prefix, title);
        if (st == LC_OK) lc_strbuf_printf(F, "figure: %s.{png,svg}\n", prefix);
    }
    lc_metrics_deinit(&m);
    return st;
}

/* one curve per run from its metrics: train loss (which 0) or test accuracy
 * in % (which 1) against the epoch */
static lc_status curve(const study *S, const run *r, int which, double **xs, double **ys, int *n)
{
    char path[1200], dir[1100];
    lc_study_run_dir(S, r, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    lc_metrics m;
    *xs = *ys = NULL;
    *n = 0;
    LC_TRY(lc_metrics_load(path, &m));
    int k = m.n_eval;
    *xs = malloc((size_t)(k ? k : 1) * sizeof **xs);
    *ys = malloc((size_t)(k ? k : 1) * sizeof **ys);
    if (!*xs || !*ys) { lc_metrics_deinit(&m); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < k; i++) {
        (*xs)[i] = m.eval[i].epoch;
        (*ys)[i] = which ? 100 * m.eval[i].test_acc : m.eval[i].train_loss;
    }
    *n = k;
    lc_metrics_deinit(&m);
    return LC_OK;
}

static lc_status curves_figure(const study *S, lc_strbuf *F, const run **rs, int nr, int which, const char *name,
                               const char *title, char labels[][48], const double (*rgb)[3], const bool *dashed)
{
    double *xs[32] = {0}, *ys[32] = {0};
    lc_series s[32];
    int n = 0;
    lc_status st = LC_OK;
    for (int i = 0; i < nr && i < 32 && st == LC_OK; i++) {
        int k;
        st = curve(S, rs[i], which, &xs[n], &ys[n], &k);
        if (st != LC_OK) break;
        s[n] = (lc_series){.x = xs[n], .y = ys[n], .n = k, .label = labels[i], .dashed = dashed && dashed[i], .points = k < 30};
        memcpy(s[n].rgb, rgb[i], sizeof s[n].rgb);
        n++;
    }
    if (st == LC_OK && n > 0) {
        lc_figure f = {.title = title, .xlabel = "Epoch", .ylabel = which ? "Test accuracy (%)" : "Training loss",
                       .legend = true};
        st = plot(S, F, name, &f, s, n);
    }
    for (int i = 0; i < 32; i++) { free(xs[i]); free(ys[i]); }
    return st;
}

/* mnist-toy: mean test accuracy against the trained layer, beside the paper */
static lc_status figures_toy(const study *S, lc_strbuf *F, const char *scale)
{
    char title[640];
    int L = S->n_layers_toy;
    double *x = calloc((size_t)L, sizeof *x), *y = calloc((size_t)L * 4, sizeof *y);
    if (!x || !y) { free(x); free(y); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    int nok[2] = {0, 0};
    for (int l = 0; l < L; l++) {
        x[l] = l;
        for (int m = 0; m < 2; m++) {
            double sum = 0;
            int n = 0;
            for (int i = 0; i < S->n_runs; i++) {
                const run *r = &S->runs[i];
                if (r->layer == l && r->fixed == (m == 1) && r->status == R_OK && isfinite(r->test_acc)) {
                    sum += 100 * r->test_acc;
                    n++;
                }
            }
            y[m * L + l] = n ? sum / n : NAN;
            nok[m] += n > 0;
            y[(2 + m) * L + l] = S->task == TASK_MNIST && l < 10 ? lc_study_paper_toy[m][l] : NAN;
        }
    }
    lc_series s[4];
    int n = 0;
    if (nok[0]) s[n++] = (lc_series){.x = x, .y = y, .n = L, .rgb = {C_SGD[0], C_SGD[1], C_SGD[2]}, .label = "normal", .points = true};
    if (nok[1]) s[n++] = (lc_series){.x = x, .y = y + L, .n = L, .rgb = {C_LAYCA[0], C_LAYCA[1], C_LAYCA[2]}, .label = "fixed gating", .points = true};
    if (S->task == TASK_MNIST) {
        s[n++] = (lc_series){.x = x, .y = y + 2 * L, .n = L, .rgb = {C_SGD_P[0], C_SGD_P[1], C_SGD_P[2]}, .label = "paper: normal", .dashed = true};
        s[n++] = (lc_series){.x = x, .y = y + 3 * L, .n = L, .rgb = {C_LAYCA_P[0], C_LAYCA_P[1], C_LAYCA_P[2]}, .label = "paper: fixed", .dashed = true};
    }
    snprintf(title, sizeof title, "MNIST toy, one layer trained (%s)", scale);
    lc_figure f = {.title = title, .xlabel = "Index of the trained layer", .ylabel = "Test accuracy (%)",
                   .legend = true, .xmin = -0.5, .xmax = L - 0.5};
    lc_status st = n ? plot(S, F, "accuracy-by-layer", &f, s, n) : LC_OK;
    free(x);
    free(y);
    return st;
}

/* alpha-sweep: the rotation curves at alpha 0 and the Layca training-loss
 * plateaus for alpha 0 .. 0.4 */
static lc_status figures_alpha_runs(const study *S, lc_strbuf *F, const char *scale)
{
    char title[640];
    const run *a0[2] = {NULL, NULL};
    const run *pl[5];
    char lab[5][48];
    double rgb[5][3];
    int npl = 0;
    static const double plateau_alphas[5] = {0, 0.1, 0.2, 0.3, 0.4};
    for (int i = 0; i < S->n_runs; i++) {
        const run *r = &S->runs[i];
        if (r->status != R_OK) continue;
        if (r->alpha == 0) a0[r->layca ? 0 : 1] = r;
    }
    for (int j = 0; j < 5; j++)
        for (int i = 0; i < S->n_runs; i++) {
            const run *r = &S->runs[i];
            if (r->status == R_OK && r->layca && fabs(r->alpha - plateau_alphas[j]) < 1e-9) {
                pl[npl] = r;
                snprintf(lab[npl], sizeof lab[0], "alpha %.1f", r->alpha);
                lc_viridis(plateau_alphas[j] / 0.4 * 0.9, rgb[npl]);
                npl++;
            }
        }
    for (int k = 0; k < 2; k++) {
        if (!a0[k]) continue;
        snprintf(title, sizeof title, "%s, %s, alpha 0: layer rotation (%s)", S->model_name, k ? "SGD" : "Layca", scale);
        LC_TRY(plot_rotation(S, F, a0[k], k ? "rotation-alpha0-sgd" : "rotation-alpha0-layca", title));
    }
    if (npl) {
        snprintf(title, sizeof title, "%s, Layca: training loss for alpha 0 .. 0.4 (plateaus, %s)", S->model_name, scale);
        LC_TRY(curves_figure(S, F, pl, npl, 0, "loss-layca-alphas", title, lab, (const double(*)[3])rgb, NULL));
    }
    return LC_OK;
}

/* alpha-sweep and lr-grid: test accuracy against alpha or the rate, beside
 * the paper */
static lc_status figures_alpha_lr(const study *S, lc_strbuf *F, const char *scale)
{
    char title[640];
    bool known = S->task == TASK_C10 || S->task == TASK_C100 || S->task == TASK_TINY;
    double x[2][LC_STUDY_MAX_LIST], y[2][LC_STUDY_MAX_LIST], px[2][13], py[2][13];
    int n[2] = {0, 0}, np[2] = {0, 0};
    for (int i = 0; i < S->n_runs; i++) {
        const run *r = &S->runs[i];
        int k = S->kind == LC_STUDY_ALPHA_SWEEP && !r->layca ? 1 : 0;
        if (r->status != R_OK || n[k] >= LC_STUDY_MAX_LIST) continue;
        x[k][n[k]] = S->kind == LC_STUDY_ALPHA_SWEEP ? r->alpha : r->lr;
        y[k][n[k]++] = 100 * r->test_acc;
    }
    if (known) {
        int cnt = S->kind == LC_STUDY_ALPHA_SWEEP ? 13 : 10;
        for (int k = 0; k < (S->kind == LC_STUDY_ALPHA_SWEEP ? 2 : 1); k++)
            for (int j = 0; j < cnt; j++) {
                px[k][np[k]] = S->kind == LC_STUDY_ALPHA_SWEEP ? lc_study_paper_alphas[j] : pow(3.0, j - 7);
                py[k][np[k]++] = fabs(S->kind == LC_STUDY_ALPHA_SWEEP ? lc_study_paper_alpha_acc[S->task][k][j] : lc_study_paper_lr_acc[S->task][j]);
            }
    }
    lc_series s[4];
    int ns = 0;
    if (S->kind == LC_STUDY_ALPHA_SWEEP) {
        if (n[0]) s[ns++] = (lc_series){.x = x[0], .y = y[0], .n = n[0], .rgb = {C_LAYCA[0], C_LAYCA[1], C_LAYCA[2]}, .label = "Layca", .points = true};
        if (n[1]) s[ns++] = (lc_series){.x = x[1], .y = y[1], .n = n[1], .rgb = {C_SGD[0], C_SGD[1], C_SGD[2]}, .label = "SGD", .points = true};
        if (known) {
            s[ns++] = (lc_series){.x = px[0], .y = py[0], .n = 13, .rgb = {C_LAYCA_P[0], C_LAYCA_P[1], C_LAYCA_P[2]}, .label = "paper: Layca", .dashed = true};
            s[ns++] = (lc_series){.x = px[1], .y = py[1], .n = 13, .rgb = {C_SGD_P[0], C_SGD_P[1], C_SGD_P[2]}, .label = "paper: SGD", .dashed = true};
        }
        snprintf(title, sizeof title, "%s: test accuracy against alpha (%s)", S->model_name, scale);
        lc_figure f = {.title = title, .xlabel = "alpha (< 0: first layers faster, > 0: last layers faster)",
                       .ylabel = "Test accuracy (%)", .legend = true, .xmin = -1, .xmax = 1};
        if (ns) LC_TRY(plot(S, F, "accuracy-vs-alpha", &f, s, ns));
        LC_TRY(figures_alpha_runs(S, F, scale));
    } else {
        if (n[0]) s[ns++] = (lc_series){.x = x[0], .y = y[0], .n = n[0], .rgb = {C_SGD[0], C_SGD[1], C_SGD[2]}, .label = "SGD, alpha 0", .points = true};
        if (known) s[ns++] = (lc_series){.x = px[0], .y = py[0], .n = 10, .rgb = {C_SGD_P[0], C_SGD_P[1], C_SGD_P[2]}, .label = "paper", .dashed = true};
        snprintf(title, sizeof title, "%s: SGD test accuracy against the learning rate (%s)", S->model_name, scale);
        double lo = INFINITY, hi = 0;
        for (int i = 0; i < ns; i++)
            for (int j = 0; j < s[i].n; j++) { lo = fmin(lo, s[i].x[j]); hi = fmax(hi, s[i].x[j]); }
        lc_figure f = {.title = title, .xlabel = "Learning rate", .ylabel = "Test accuracy (%)", .legend = true,
                       .logx = true, .xmin = lo / 2, .xmax = hi * 2};
        if (ns) LC_TRY(plot(S, F, "accuracy-vs-lr", &f, s, ns));
    }
    return LC_OK;
}

/* optimizers, weight decay: test accuracy curves and each run's rotation */
static lc_status figures_runs(const study *S, lc_strbuf *F, const char *scale)
{
    char title[640];
    const run *rs[32];
    char lab[32][48];
    double rgb[32][3];
    bool dashed[32];
    int nr = 0;
    for (int i = 0; i < S->n_runs && nr < 32; i++) {
        const run *r = &S->runs[i];
        if (r->status != R_OK) continue;
        rs[nr] = r;
        if (S->kind == LC_STUDY_OPTIMIZERS) {
            snprintf(lab[nr], sizeof lab[0], "%s%s", lc_study_paper_optims[r->paper_idx].label, r->layca ? " + Layca" : " + L2");
            lc_viridis(r->paper_idx / 4.0 * 0.9, rgb[nr]);
            dashed[nr] = !r->layca;
        } else {
            snprintf(lab[nr], sizeof lab[0], "L2 %g", r->weight_decay);
            memcpy(rgb[nr], r->weight_decay > 0 ? C_SGD : C_LAYCA, sizeof rgb[0]);
            dashed[nr] = false;
        }
        nr++;
    }
    if (nr) {
        snprintf(title, sizeof title, "%s: test accuracy (%s)", S->model_name, scale);
        LC_TRY(curves_figure(S, F, rs, nr, 1, "accuracy-curves", title, lab, (const double(*)[3])rgb, dashed));
    }
    for (int i = 0; i < nr; i++) {
        char name[128];
        snprintf(name, sizeof name, "rotation-%s", rs[i]->id);
        snprintf(title, sizeof title, "%s, %.47s: layer rotation (%s)", S->model_name, lab[i], scale);
        LC_TRY(plot_rotation(S, F, rs[i], name, title));
    }
    return LC_OK;
}

lc_status lc_study_figures(const study *S, lc_strbuf *list)
{
    const char *scale = S->quick ? "quick scale" : "paper scale";
    if (S->kind == LC_STUDY_MNIST_TOY) return figures_toy(S, list, scale);
    if (S->kind == LC_STUDY_ALPHA_SWEEP || S->kind == LC_STUDY_LR_GRID) return figures_alpha_lr(S, list, scale);
    return figures_runs(S, list, scale);
}

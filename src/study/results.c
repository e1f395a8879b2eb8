/* A study's results: each run's result.json (written and read back), the
 * study's results.csv and results.json, and the summary table beside the
 * paper's numbers. */
#include "study_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* result.json's numbers, in the file's order ("layers" is written between
 * wall_s and rotation_median) */
#define N_RESULT_NUMS 11
static const char *const result_keys[N_RESULT_NUMS] = {"test_acc", "test_loss", "train_acc", "train_loss", "steps", "epochs",
                                                     "train_s", "wall_s", "rotation_median", "rotation_min",
                                                     "rotation_max"};

static void result_nums(const run *r, double v[N_RESULT_NUMS])
{
    const double a[N_RESULT_NUMS] = {r->test_acc, r->test_loss, r->train_acc, r->train_loss, r->steps_done,
                                     r->epochs_done, r->train_s, r->wall_s, r->rot_med, r->rot_min, r->rot_max};
    memcpy(v, a, sizeof a);
}

lc_status lc_study_write_result(const study *S, const run *r)
{
    lc_strbuf b = {0};
    double v[N_RESULT_NUMS];
    result_nums(r, v);
    lc_strbuf_printf(&b, "{\n  \"id\": ");
    lc_study_json_str(&b, r->id);
    lc_strbuf_printf(&b, ",\n  \"status\": \"%s\"", lc_study_status_names[r->status]);
    for (int k = 0; k < N_RESULT_NUMS; k++) {
        if (k == 8) lc_strbuf_printf(&b, ",\n  \"layers\": %d", r->n_layers);
        lc_strbuf_printf(&b, ",\n  \"%s\": ", result_keys[k]);
        lc_strbuf_json_number(&b, "%.9g", v[k]);
    }
    lc_strbuf_printf(&b, ",\n  \"message\": ");
    lc_study_json_str(&b, r->message);
    lc_strbuf_printf(&b, ",\n  \"config\": ");
    lc_study_json_str(&b, r->config);
    lc_strbuf_printf(&b, "\n}\n");
    if (b.oom) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    char path[1200], dir[1100];
    lc_study_run_dir(S, r, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/result.json", dir);
    lc_status st = lc_file_write_atomic(path, b.s, b.len);
    lc_strbuf_free(&b);
    return st;
}

static double num_item(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str_item(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* result.json's contents into r; false when it is not a finished run's */
static bool parse_result(const cJSON *o, run *r, char *config, size_t clen)
{
    const char *status = str_item(o, "status"), *cfg = str_item(o, "config");
    int s = -1;
    for (int i = R_OK; status && i <= R_ERROR; i++)
        if (!strcmp(status, lc_study_status_names[i])) s = i;
    if (!cfg || s < 0) return false;
    snprintf(config, clen, "%s", cfg);
    r->status = (run_status)s;
    double v[N_RESULT_NUMS];
    for (int k = 0; k < N_RESULT_NUMS; k++) v[k] = num_item(o, result_keys[k]);
    r->test_acc = v[0];
    r->test_loss = v[1];
    r->train_acc = v[2];
    r->train_loss = v[3];
    r->steps_done = v[4];
    r->epochs_done = v[5];
    r->train_s = v[6];
    r->wall_s = v[7];
    r->rot_med = v[8];
    r->rot_min = v[9];
    r->rot_max = v[10];
    double nl = num_item(o, "layers");
    r->n_layers = isfinite(nl) ? (int)nl : 0;
    const char *msg = str_item(o, "message");
    snprintf(r->message, sizeof r->message, "%s", msg ? msg : "");
    return true;
}

bool lc_study_load_result(const study *S, run *r, char *config, size_t clen)
{
    char path[1200], dir[1100];
    lc_study_run_dir(S, r, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/result.json", dir);
    if (!lc_study_file_exists(path)) return false;
    uint8_t *data;
    size_t len;
    if (lc_file_read(path, &data, &len) != LC_OK) {
        fprintf(S->log, "study: warning: %s\n", lc_error_message());
        return false;
    }
    cJSON *o = cJSON_ParseWithLength((const char *)data, len);
    free(data);
    bool ok = cJSON_IsObject(o) && parse_result(o, r, config, clen);
    cJSON_Delete(o);
    if (!ok) fprintf(S->log, "study: warning: %s is not a finished run's result; running it again\n", path);
    return ok;
}

/* labels of a run for the CSV and JSON, per study */
static int label_names(const study *S, const char **names)
{
    switch (S->kind) {
    case LC_STUDY_MNIST_TOY: names[0] = "repetition"; names[1] = "layer"; names[2] = "mode"; return 3;
    case LC_STUDY_ALPHA_SWEEP: names[0] = "optimizer"; names[1] = "alpha"; return 2;
    case LC_STUDY_LR_GRID: names[0] = "lr"; return 1;
    case LC_STUDY_OPTIMIZERS: names[0] = "optimizer"; names[1] = "layca"; names[2] = "lr"; names[3] = "weight_decay"; return 4;
    case LC_STUDY_WEIGHT_DECAY: names[0] = "weight_decay"; names[1] = "lr"; return 2;
    default: return 0;
    }
}

static void label_values(const study *S, const run *r, char v[4][64])
{
    switch (S->kind) {
    case LC_STUDY_MNIST_TOY:
        snprintf(v[0], 64, "%d", r->rep);
        snprintf(v[1], 64, "%d", r->layer);
        snprintf(v[2], 64, "%s", r->group);
        break;
    case LC_STUDY_ALPHA_SWEEP:
        snprintf(v[0], 64, "%s", r->group);
        snprintf(v[1], 64, "%.9g", r->alpha);
        break;
    case LC_STUDY_LR_GRID: snprintf(v[0], 64, "%.9g", r->lr); break;
    case LC_STUDY_OPTIMIZERS:
        snprintf(v[0], 64, "%s", r->optimizer);
        snprintf(v[1], 64, "%s", r->layca ? "true" : "false");
        snprintf(v[2], 64, "%.9g", r->lr);
        snprintf(v[3], 64, "%.9g", r->weight_decay);
        break;
    case LC_STUDY_WEIGHT_DECAY:
        snprintf(v[0], 64, "%.9g", r->weight_decay);
        snprintf(v[1], 64, "%.9g", r->lr);
        break;
    default: break;
    }
}

/* The summary table */
#define TCOLS 12
#define TCELL 48
typedef struct table {
    int nc, nr;
    char head[TCOLS][TCELL];
    char (*cell)[TCOLS][TCELL];
    char title[512];
    char lines[6][512]; /* under the table */
    int nlines;
} table;

static void t_head(table *t, const char *h)
{
    if (t->nc < TCOLS) snprintf(t->head[t->nc++], TCELL, "%s", h);
}

static char (*t_row(table *t))[TCELL]
{
    if (t->nr >= MAX_RUNS) return NULL;
    memset(t->cell[t->nr], 0, sizeof t->cell[0]);
    return t->cell[t->nr++];
}

static void t_line(table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void t_line(table *t, const char *fmt, ...)
{
    if (t->nlines >= 6) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->lines[t->nlines++], sizeof t->lines[0], fmt, ap);
    va_end(ap);
}

static const char *status_cell(const run *r, char *buf, size_t len, double frac)
{
    if (r->status == R_OK && !isfinite(r->train_loss)) {
        char a[32];
        snprintf(buf, len, "%s (NaN loss)", lc_study_fmt_pct(a, sizeof a, frac));
        return buf;
    }
    if (r->status == R_OK) return lc_study_fmt_pct(buf, len, frac);
    snprintf(buf, len, "%s", lc_study_status_names[r->status]);
    return buf;
}

/* mnist-toy: mean test accuracy per trained layer and mode, over repetitions */
static void table_toy(const study *S, table *t, const char *scale)
{
    snprintf(t->title, sizeof t->title, "mnist-toy (%s): test accuracy (%%) with one layer trained alone, over repetitions",
             scale);
    t_head(t, "layer");
    t_head(t, "mode");
    t_head(t, "runs");
    t_head(t, "test acc mean");
    t_head(t, "std");
    t_head(t, "paper");
    double mean_n[2][64];
    for (int l = 0; l < S->n_layers_toy; l++)
        for (int m = 0; m < 2; m++) {
            const char *mode = m ? "fixed" : "normal";
            double sum = 0, sq = 0;
            int n = 0, err = 0, total = 0;
            for (int i = 0; i < S->n_runs; i++) {
                const run *r = &S->runs[i];
                if (r->layer != l || strcmp(r->group, mode)) continue;
                total++;
                if (r->status == R_OK && isfinite(r->test_acc)) { n++; sum += 100 * r->test_acc; sq += 1e4 * r->test_acc * r->test_acc; }
                err += r->status == R_ERROR;
            }
            char (*row)[TCELL] = t_row(t);
            if (!row) return;
            snprintf(row[0], TCELL, "%d", l);
            snprintf(row[1], TCELL, "%s", mode);
            snprintf(row[2], TCELL, "%d/%d", n, total);
            double mean = n ? sum / n : NAN;
            if (l < 64) mean_n[m][l] = mean;
            if (n) snprintf(row[3], TCELL, "%.2f", mean);
            else snprintf(row[3], TCELL, "%s", err ? "error" : "pending");
            if (n >= 2) snprintf(row[4], TCELL, "%.2f", sqrt(fmax(0, (sq - sum * sum / n) / (n - 1))));
            else snprintf(row[4], TCELL, "-");
            if (S->task == TASK_MNIST && l < 10) lc_study_fmt_paper(row[5], TCELL, lc_study_paper_toy[m][l]);
            else snprintf(row[5], TCELL, "-");
        }
    if (S->task == TASK_MNIST)
        t_line(t, "paper: section 6.3 (Fig. 1a/1c), means over 10 runs of 4000 steps; fixed = feedback improvement "
                  "prevented");
    else t_line(t, "paper: none shown (the paper's numbers are for models/mlp11.json)");
    if (S->n_layers_toy >= 10 && isfinite(mean_n[0][1]) && isfinite(mean_n[0][9]))
        t_line(t, "normal, layer 1 minus layer 9: %.2f points (paper: 18.46, the \"nearly 20%%\")",
               mean_n[0][1] - mean_n[0][9]);
    t_line(t, "std: sample standard deviation over the repetitions that finished");
}

/* alpha-sweep and lr-grid: one row per run */
static void table_alpha_lr(const study *S, table *t, const char *scale)
{
    char b1[32], b2[32];
    bool known = S->task == TASK_C10 || S->task == TASK_C100 || S->task == TASK_TINY;
    if (S->kind == LC_STUDY_ALPHA_SWEEP) {
        snprintf(t->title, sizeof t->title, "alpha-sweep (%s, %s): test and final train accuracy (%%)", scale,
                 S->model_name);
        t_head(t, "alpha");
        t_head(t, "optimizer");
        t_head(t, "rate");
    } else {
        snprintf(t->title, sizeof t->title, "lr-grid (%s, %s): SGD at alpha 0, test and final train accuracy (%%)",
                 scale, S->model_name);
        t_head(t, "lr");
        t_head(t, "log3 lr");
    }
    t_head(t, "test acc");
    t_head(t, "train acc");
    t_head(t, "median cos");
    t_head(t, known ? "paper" : "paper (none)");
    for (int k = 0; k < (S->kind == LC_STUDY_ALPHA_SWEEP ? 2 : 1); k++)
        for (int i = 0; i < S->n_runs; i++) {
            const run *r = &S->runs[i];
            if (S->kind == LC_STUDY_ALPHA_SWEEP && r->layca != (k == 0)) continue;
            char (*row)[TCELL] = t_row(t);
            if (!row) return;
            int c = 0;
            if (S->kind == LC_STUDY_ALPHA_SWEEP) {
                snprintf(row[c++], TCELL, "%+.2f", r->alpha);
                snprintf(row[c++], TCELL, "%s", r->layca ? "Layca" : "SGD");
                snprintf(row[c++], TCELL, "%s %.4g", r->layca ? "rho" : "lr", r->lr);
            } else {
                snprintf(row[c++], TCELL, "%.6g", r->lr);
                double e = log(r->lr) / log(3.0);
                if (fabs(e - lround(e)) < 1e-6) snprintf(row[c++], TCELL, "%+ld", lround(e));
                else snprintf(row[c++], TCELL, "%.2f", e);
            }
            status_cell(r, row[c++], TCELL, r->test_acc);
            if (r->status == R_OK) {
                lc_study_fmt_pct(b1, sizeof b1, r->train_acc);
                snprintf(row[c], TCELL, "%s%s", b1, isfinite(r->train_acc) && r->train_acc < 0.98 ? "*" : "");
            }
            c++;
            snprintf(row[c++], TCELL, "%s", r->status == R_OK && isfinite(r->rot_med) ? lc_study_fmt_g(b2, sizeof b2, r->rot_med) : "-");
            if (known && r->paper_idx >= 0)
                lc_study_fmt_paper(row[c], TCELL, S->kind == LC_STUDY_ALPHA_SWEEP ? lc_study_paper_alpha_acc[S->task][r->layca ? 0 : 1][r->paper_idx]
                                                            : lc_study_paper_lr_acc[S->task][r->paper_idx]);
            else snprintf(row[c], TCELL, "-");
        }
    if (known)
        t_line(t, "paper: %s, section %s (V1, final-epoch test accuracy%s)", lc_study_task_title[S->task],
               S->kind == LC_STUDY_ALPHA_SWEEP ? "6.1 / Figure 2" : "6.2", S->task == TASK_TINY ? ", best-validation checkpoint" : "");
    else t_line(t, "paper: no numbers for model '%s' (they exist for cifar10_vgg, resnet32_cifar100, tiny_imagenet_cnn)",
                S->model_name);
    t_line(t, "*: final train accuracy < 98%% (the paper leaves such runs out of its figure)");
    t_line(t, "median cos: median over layers of the final cosine distance to the initial weights (layer rotation)");
}

/* optimizers: one row per run, beside the paper's section 6.4 */
static void table_optim(const study *S, table *t, const char *scale)
{
    char b2[32];
    snprintf(t->title, sizeof t->title, "optimizers (%s, %s): test accuracy (%%) and final median layer rotation", scale,
             S->model_name);
    t_head(t, "optimizer");
    t_head(t, "layca");
    t_head(t, "rate");
    t_head(t, "L2");
    t_head(t, "test acc");
    t_head(t, "paper");
    t_head(t, "train acc");
    t_head(t, "median cos");
    t_head(t, "paper cos");
    for (int i = 0; i < S->n_runs; i++) {
        const run *r = &S->runs[i];
        const optim_paper *p = &lc_study_paper_optims[r->paper_idx];
        char (*row)[TCELL] = t_row(t);
        if (!row) return;
        snprintf(row[0], TCELL, "%s", p->label);
        snprintf(row[1], TCELL, "%s", r->layca ? "yes" : "no");
        snprintf(row[2], TCELL, "%s %.4g", r->layca ? "rho" : "lr", r->lr);
        snprintf(row[3], TCELL, "%g", r->weight_decay);
        status_cell(r, row[4], TCELL, r->test_acc);
        lc_study_fmt_paper(row[5], TCELL, r->layca ? p->acc_layca : p->acc_plain);
        if (r->status == R_OK) lc_study_fmt_pct(row[6], TCELL, r->train_acc);
        snprintf(row[7], TCELL, "%s", r->status == R_OK ? lc_study_fmt_g(b2, sizeof b2, r->rot_med) : "-");
        if (r->layca) snprintf(row[8], TCELL, ">= 0.98");
        else if (isnan(p->cos_plain)) snprintf(row[8], TCELL, "-");
        else snprintf(row[8], TCELL, "%.3f", p->cos_plain);
    }
    t_line(t, "paper: %s, section 6.4 (V1, test accuracy at epoch 250; median per-layer cosine distance at the end)",
           lc_study_task_title[TASK_WILSON]);
    if (S->task != TASK_WILSON) t_line(t, "(this study ran on '%s', not the paper's network)", S->model_name);
}

/* weight-decay: SGD with and without L2 */
static void table_wd(const study *S, table *t, const char *scale)
{
    char b2[32];
    snprintf(t->title, sizeof t->title, "weight-decay (%s, %s): SGD with and without L2", scale, S->model_name);
    t_head(t, "L2");
    t_head(t, "test acc");
    t_head(t, "paper");
    t_head(t, "train acc");
    t_head(t, "paper train");
    t_head(t, "median cos");
    t_head(t, "min-max cos");
    t_head(t, "paper cos");
    static const double p_test[2] = {92.58, 87.41}, p_train[2] = {99.53, 91.00};
    static const char *p_cos[2] = {"0.997", "0.33 (0.15-0.83)"};
    for (int i = 0; i < S->n_runs; i++) {
        const run *r = &S->runs[i];
        char (*row)[TCELL] = t_row(t);
        if (!row) return;
        snprintf(row[0], TCELL, "%g", r->weight_decay);
        status_cell(r, row[1], TCELL, r->test_acc);
        lc_study_fmt_paper(row[2], TCELL, p_test[r->paper_idx]);
        if (r->status == R_OK) lc_study_fmt_pct(row[3], TCELL, r->train_acc);
        lc_study_fmt_paper(row[4], TCELL, p_train[r->paper_idx]);
        snprintf(row[5], TCELL, "%s", r->status == R_OK ? lc_study_fmt_g(b2, sizeof b2, r->rot_med) : "-");
        if (r->status == R_OK && isfinite(r->rot_min)) snprintf(row[6], TCELL, "%.3g-%.3g", r->rot_min, r->rot_max);
        else snprintf(row[6], TCELL, "-");
        snprintf(row[7], TCELL, "%s", p_cos[r->paper_idx]);
    }
    t_line(t, "paper: %s, section 6.5 (V1, SGD lr 0.5, 250 epochs)", lc_study_task_title[TASK_WILSON]);
    if (S->task != TASK_WILSON) t_line(t, "(this study ran on '%s', not the paper's network)", S->model_name);
}

static void build_table(const study *S, table *t)
{
    const char *scale = S->quick ? "quick scale" : "paper scale";
    if (S->kind == LC_STUDY_MNIST_TOY) table_toy(S, t, scale);
    else if (S->kind == LC_STUDY_ALPHA_SWEEP || S->kind == LC_STUDY_LR_GRID) table_alpha_lr(S, t, scale);
    else if (S->kind == LC_STUDY_OPTIMIZERS) table_optim(S, t, scale);
    else table_wd(S, t, scale);
}

static void table_format(const study *S, const table *t, lc_strbuf *b)
{
    int w[TCOLS];
    for (int c = 0; c < t->nc; c++) {
        w[c] = (int)strlen(t->head[c]);
        for (int r = 0; r < t->nr; r++) w[c] = LC_MAX(w[c], (int)strlen(t->cell[r][c]));
    }
    lc_strbuf_printf(b, "%s\n", t->title);
    for (int i = 0; i < S->n_notes; i++) lc_strbuf_printf(b, "  scale: %s\n", S->notes[i]);
    if (!S->n_notes) lc_strbuf_printf(b, "  scale: the paper's settings\n");
    for (int c = 0; c < t->nc; c++) lc_strbuf_printf(b, "%s%-*s", c ? "  " : "", w[c], t->head[c]);
    lc_strbuf_printf(b, "\n");
    for (int c = 0; c < t->nc; c++) {
        lc_strbuf_printf(b, "%s", c ? "  " : "");
        for (int k = 0; k < w[c]; k++) lc_strbuf_printf(b, "-");
    }
    lc_strbuf_printf(b, "\n");
    for (int r = 0; r < t->nr; r++) {
        for (int c = 0; c < t->nc; c++) lc_strbuf_printf(b, "%s%-*s", c ? "  " : "", w[c], t->cell[r][c][0] ? t->cell[r][c] : "-");
        lc_strbuf_printf(b, "\n");
    }
    for (int i = 0; i < t->nlines; i++) lc_strbuf_printf(b, "%s\n", t->lines[i]);
}

lc_status lc_study_write_results(const study *S)
{
    const char *ln[4];
    int nl = label_names(S, ln);
    lc_strbuf csv = {0}, js = {0};
    lc_strbuf_printf(&csv, "id,status");
    for (int k = 0; k < nl; k++) lc_strbuf_printf(&csv, ",%s", ln[k]);
    lc_strbuf_printf(&csv, ",test_acc,test_loss,train_acc,train_loss,steps,epochs,train_s,wall_s,rotation_median,rotation_min,"
                    "rotation_max,message\n");
    lc_strbuf_printf(&js, "{\n  \"format\": \"layca-study-results/1\",\n  \"study\": \"%s\",\n  \"scale\": \"%s\",\n  \"model\": ",
              S->name, S->quick ? "quick" : "paper");
    lc_study_json_str(&js, S->model);
    lc_strbuf_printf(&js, ",\n  \"data\": ");
    lc_study_json_str(&js, S->data);
    lc_strbuf_printf(&js, ",\n  \"scale_notes\": [");
    for (int i = 0; i < S->n_notes; i++) {
        lc_strbuf_printf(&js, "%s", i ? ", " : "");
        lc_study_json_str(&js, S->notes[i]);
    }
    lc_strbuf_printf(&js, "],\n  \"runs\": [");
    int nrows = 0;
    for (int i = 0; i < S->n_runs; i++) {
        const run *r = &S->runs[i];
        if (r->status == R_PENDING) continue;
        char lv[4][64];
        label_values(S, r, lv);
        char nb[N_RESULT_NUMS][40];
        double vals[N_RESULT_NUMS];
        result_nums(r, vals);
        for (int k = 0; k < N_RESULT_NUMS; k++) {
            if (isfinite(vals[k])) snprintf(nb[k], sizeof nb[k], "%.9g", vals[k]);
            else nb[k][0] = 0;
        }
        lc_strbuf_printf(&csv, "%s,%s", r->id, lc_study_status_names[r->status]);
        for (int k = 0; k < nl; k++) lc_strbuf_printf(&csv, ",%s", lv[k]);
        for (int k = 0; k < N_RESULT_NUMS; k++) lc_strbuf_printf(&csv, ",%s", nb[k]);
        lc_strbuf_printf(&csv, ",");
        lc_study_csv_str(&csv, r->message);
        lc_strbuf_printf(&csv, "\n");

        lc_strbuf_printf(&js, "%s\n    {\"id\": \"%s\", \"status\": \"%s\"", nrows ? "," : "", r->id, lc_study_status_names[r->status]);
        for (int k = 0; k < nl; k++) {
            bool num = strcmp(ln[k], "mode") && strcmp(ln[k], "optimizer") && strcmp(ln[k], "layca");
            if (!strcmp(ln[k], "layca")) lc_strbuf_printf(&js, ", \"%s\": %s", ln[k], lv[k]);
            else if (num) lc_strbuf_printf(&js, ", \"%s\": %s", ln[k], lv[k]);
            else lc_strbuf_printf(&js, ", \"%s\": \"%s\"", ln[k], lv[k]);
        }
        for (int k = 0; k < N_RESULT_NUMS; k++) lc_strbuf_printf(&js, ", \"%s\": %s", result_keys[k], nb[k][0] ? nb[k] : "null");
        lc_strbuf_printf(&js, ", \"message\": ");
        lc_study_json_str(&js, r->message);
        lc_strbuf_printf(&js, "}");
        nrows++;
    }
    lc_strbuf_printf(&js, "\n  ],\n  \"table\": {\"title\": ");
    table t = {0};
    t.cell = calloc(MAX_RUNS, sizeof *t.cell);
    if (!t.cell) { lc_strbuf_free(&csv); lc_strbuf_free(&js); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    build_table(S, &t);
    lc_study_json_str(&js, t.title);
    lc_strbuf_printf(&js, ", \"columns\": [");
    for (int c = 0; c < t.nc; c++) {
        lc_strbuf_printf(&js, "%s", c ? ", " : "");
        lc_study_json_str(&js, t.head[c]);
    }
    lc_strbuf_printf(&js, "],\n    \"rows\": [");
    for (int r = 0; r < t.nr; r++) {
        lc_strbuf_printf(&js, "%s\n      [", r ? "," : "");
        for (int c = 0; c < t.nc; c++) {
            lc_strbuf_printf(&js, "%s", c ? ", " : "");
            lc_study_json_str(&js, t.cell[r][c]);
        }
        lc_strbuf_printf(&js, "]");
    }
    lc_strbuf_printf(&js, "],\n    \"notes\": [");
    for (int i = 0; i < t.nlines; i++) {
        lc_strbuf_printf(&js, "%s", i ? ", " : "");
        lc_study_json_str(&js, t.lines[i]);
    }
    lc_strbuf_printf(&js, "]}\n}\n");
    lc_strbuf txt = {0};
    table_format(S, &t, &txt);
    free(t.cell);
    lc_status st = LC_OK;
    if (csv.oom || js.oom || txt.oom) st = LC_ERR(LC_ERR_NOMEM, "out of memory");
    char path[1100];
    if (st == LC_OK) {
        snprintf(path, sizeof path, "%s/results.csv", S->out);
        st = lc_file_write_atomic(path, csv.s, csv.len);
    }
    if (st == LC_OK) {
        snprintf(path, sizeof path, "%s/results.json", S->out);
        st = lc_file_write_atomic(path, js.s, js.len);
    }
    if (st == LC_OK) {
        snprintf(path, sizeof path, "%s/table.txt", S->out);
        st = lc_file_write_atomic(path, txt.s, txt.len);
    }
    lc_strbuf_free(&csv);
    lc_strbuf_free(&js);
    lc_strbuf_free(&txt);
    return st;
}


lc_status lc_study_table_text(const study *S, lc_strbuf *b)
{
    table t = {0};
    t.cell = calloc(MAX_RUNS, sizeof *t.cell);
    if (!t.cell) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    build_table(S, &t);
    table_format(S, &t, b);
    free(t.cell);
    return b->oom ? LC_ERR(LC_ERR_NOMEM, "out of memory") : LC_OK;
}

/* Evaluation of saved weights (layca eval): loss, top-1 and top-5 accuracy,
 * per-class accuracy and the confusion matrix over one split, with the
 * input normalisation stored in the weights' metadata. */
#include "lc_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lc_eval_result_free(lc_eval_result *r)
{
    free(r->class_acc);
    free(r->confusion);
    r->class_acc = NULL;
    r->confusion = NULL;
}

/* "0.1,0.2,0.3" -> values; false when malformed or too many. */
static bool parse_list(const char *s, double *v, int max, int *n)
{
    *n = 0;
    while (s && *s) {
        if (*n == max) return false;
        char *end;
        v[*n] = strtod(s, &end);
        if (end == s || !isfinite(v[*n])) return false;
        (*n)++;
        if (*end == 0) return true;
        if (*end != ',') return false;
        s = end + 1;
    }
    return *n > 0;
}

/* The normalisation of the weights file into data options. */
static lc_status norm_from_meta(const char *path, lc_data_opts *d, bool *found)
{
    lc_st_file f;
    LC_TRY(lc_safetensors_load(path, &f));
    const char *kind = lc_st_file_meta(&f, "layca.normalisation");
    const char *mean = lc_st_file_meta(&f, "layca.norm_mean"), *std = lc_st_file_meta(&f, "layca.norm_std");
    lc_status st = LC_OK;
    *found = kind != NULL;
    if (kind && !strcmp(kind, "none")) {
        d->no_normalize = true;
        d->fixed_nstats = 0;
    } else if (kind) {
        int nm = 0, ns = 0;
        if (!parse_list(mean, d->fixed_mean, LC_DATA_MAX_CHANNELS, &nm) ||
            !parse_list(std, d->fixed_std, LC_DATA_MAX_CHANNELS, &ns) || nm != ns)
            st = LC_ERR(LC_ERR_FORMAT, "%s: metadata layca.norm_mean / layca.norm_std are malformed ('%.60s', '%.60s')",
                        path, mean ? mean : "", std ? std : "");
        for (int c = 0; st == LC_OK && c < ns; c++)
            if (!(d->fixed_std[c] > 0))
                st = LC_ERR(LC_ERR_FORMAT, "%s: metadata layca.norm_std holds %g, not a positive number", path,
                            d->fixed_std[c]);
        if (st == LC_OK) d->fixed_nstats = nm;
    }
    lc_st_file_deinit(&f);
    return st;
}

lc_status lc_eval_run(const lc_eval_opts *o, lc_eval_result *r)
{
    memset(r, 0, sizeof *r);
    lc_graph *g = NULL;
    lc_rt *rt = NULL;
    lc_exec *ex = NULL;
    lc_dataset tr = {0}, va = {0}, te = {0};
    float *params = NULL, *logits = NULL;
    lc_status st;
#define CHECK(x) do { st = (x); if (st != LC_OK) goto done; } while (0)
    CHECK(lc_model_load(o->model_path, &g, NULL));
    lc_data_opts d = o->data;
    d.classes = g->classes;
    CHECK(norm_from_meta(o->weights_path, &d, &r->norm_from_weights));
    if (!r->norm_from_weights)
        LC_WARN("%s holds no normalisation (not saved by layca train --save?): normalising with the training "
                "examples' statistics, as training does", o->weights_path);
    lc_data_info info;
    CHECK(lc_data_open3(o->data_spec, &d, &tr, o->split == 1 ? &va : NULL, &te, &info, r->data_desc,
                        sizeof r->data_desc));
    r->nstats = info.nstats;
    memcpy(r->mean, info.mean, sizeof r->mean);
    memcpy(r->std, info.std, sizeof r->std);
    const lc_dataset *ds = o->split == 0 ? &tr : o->split == 1 ? &va : &te;
    CHECK(lc_train_check_input(g, ds, o->data_spec));
    if (ds->classes > g->classes)
        CHECK(LC_ERR(LC_ERR_INVALID, "%s: the data has %d classes, model '%s' has %d outputs", o->data_spec,
                     ds->classes, g->name, g->classes));
    if (ds->n == 0) CHECK(LC_ERR(LC_ERR_INVALID, "%s: the %s split is empty", o->data_spec,
                                 o->split == 0 ? "training" : o->split == 1 ? "validation" : "test"));
    int batch = (int)LC_MIN((int64_t)(o->batch > 0 ? o->batch : 256), ds->n);
    CHECK(lc_exec_compile(g, batch, false, NULL));
    params = malloc((size_t)(g->param_floats ? g->param_floats : 1) * 4);
    int C = g->classes;
    logits = malloc((size_t)batch * (size_t)C * 4);
    r->classes = C;
    r->class_acc = calloc((size_t)C, sizeof *r->class_acc);
    r->confusion = calloc((size_t)C * (size_t)C, sizeof *r->confusion);
    if (!params || !logits || !r->class_acc || !r->confusion) CHECK(LC_ERR(LC_ERR_NOMEM, "out of memory"));
    lc_graph_init_params(g, params, 1);
    CHECK(lc_model_load_params_map(o->weights_path, g, params, o->weights_map));
    lc_rt_opts ro = o->rt;
    ro.selector = o->device;
    ro.device_only = o->device_only;
    CHECK(lc_rt_create_opts(&rt, &ro));
    lc_exec_opts xo = {.host_conv = o->host_conv};
    CHECK(lc_exec_create_opts(&ex, rt, g, &xo));
    CHECK(lc_exec_set_mode(ex, false));
    CHECK(lc_exec_write_params(ex, params));
    int64_t es = lc_dataset_example_size(ds);
    for (int64_t i = 0; i < ds->n; i += batch) {
        int n = (int)LC_MIN((int64_t)batch, ds->n - i);
        CHECK(lc_exec_set_batch(ex, ds->x + i * es, ds->y + i, n));
        CHECK(lc_exec_forward(ex));
        CHECK(lc_exec_read_node(ex, g->logits, logits));
        for (int k = 0; k < n; k++) {
            const float *z = logits + (size_t)k * C;
            int am = 0;
            bool nan = false;
            for (int c = 0; c < C; c++) {
                nan |= isnan(z[c]);
                if (z[c] > z[am]) am = c; /* ties keep the lowest index, as the loss kernel */
            }
            int y = ds->y[i + k];
            if (nan) r->nan_predictions++;
            else r->confusion[(size_t)y * C + am]++;
        }
    }
    double ls, c1, c5;
    CHECK(lc_exec_stats5(ex, &ls, &c1, &c5, true));
    r->n = ds->n;
    r->loss = ls / (double)ds->n;
    r->top1 = c1 / (double)ds->n;
    r->top5 = c5 / (double)ds->n;
    /* per class over all its examples (a NaN prediction is in no column) */
    int64_t *count = calloc((size_t)C, sizeof *count);
    if (!count) CHECK(LC_ERR(LC_ERR_NOMEM, "out of memory"));
    for (int64_t k = 0; k < ds->n; k++) count[ds->y[k]]++;
    for (int c = 0; c < C; c++) r->class_acc[c] = count[c] ? (double)r->confusion[(size_t)c * C + c] / (double)count[c] : NAN;
    free(count);
    st = LC_OK;
done:
#undef CHECK
    if (st != LC_OK) lc_eval_result_free(r);
    lc_exec_destroy(ex);
    lc_rt_destroy(rt);
    lc_graph_destroy(g);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&va);
    lc_dataset_deinit(&te);
    free(params);
    free(logits);
    return st;
}

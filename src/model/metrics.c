/* The metrics file (JSON lines): records to lines and lines to records. */
#include "lc_metrics.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lc_metrics_deinit(lc_metrics *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_rot; i++) {
        free(m->rot[i].rotation);
        free(m->rot[i].norm);
    }
    free(m->rot);
    free(m->eval);
    free(m->loss);
    free(m->layer);
    memset(m, 0, sizeof *m);
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static lc_eval_rec eval_rec(const cJSON *o)
{
    return (lc_eval_rec){.epoch = num(o, "epoch"), .step = num(o, "step"), .lr = num(o, "lr"),
                         .train_loss = num(o, "train_loss"), .train_acc = num(o, "train_acc"),
                         .test_loss = num(o, "test_loss"), .test_acc = num(o, "test_acc"),
                         .test_top5 = num(o, "test_top5"),
                         .has_val = cJSON_GetObjectItemCaseSensitive(o, "val_loss") != NULL,
                         .val_loss = num(o, "val_loss"), .val_acc = num(o, "val_acc"), .val_top5 = num(o, "val_top5"),
                         .time_s = num(o, "time_s")};
}

static lc_status parse_rot(lc_metrics *m, const cJSON *o, const char *where, int line)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "rotation");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "norm");
    if (!cJSON_IsObject(r)) return LC_ERR(LC_ERR_FORMAT, "%s:%d: a rotation line needs a \"rotation\" object", where, line);
    int n = cJSON_GetArraySize(r);
    if (m->n_rot == 0) {
        m->n_layers = n;
        m->layer = calloc((size_t)(n > 0 ? n : 1), sizeof *m->layer);
        if (!m->layer) return LC_ERR(LC_ERR_NOMEM, "out of memory");
        int i = 0;
        for (const cJSON *it = r->child; it; it = it->next, i++) snprintf(m->layer[i], 64, "%s", it->string);
    } else if (n != m->n_layers) {
        return LC_ERR(LC_ERR_FORMAT, "%s:%d: %d layers, earlier rotation lines had %d", where, line, n, m->n_layers);
    }
    lc_rot_rec *nr = realloc(m->rot, (size_t)(m->n_rot + 1) * sizeof *nr);
    if (!nr) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    m->rot = nr;
    lc_rot_rec *rec = &m->rot[m->n_rot];
    rec->epoch = num(o, "epoch");
    rec->step = num(o, "step");
    rec->rotation = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    rec->norm = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (!rec->rotation || !rec->norm) { free(rec->rotation); free(rec->norm); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    m->n_rot++;
    int i = 0;
    for (const cJSON *it = r->child; it; it = it->next, i++) {
        char name[sizeof *m->layer]; /* names are kept to 63 bytes: compare what was kept */
        snprintf(name, sizeof name, "%s", it->string);
        if (strcmp(name, m->layer[i]))
            return LC_ERR(LC_ERR_FORMAT, "%s:%d: layer %d is '%s', earlier lines have '%s'", where, line, i, it->string,
                          m->layer[i]);
        rec->rotation[i] = cJSON_IsNumber(it) ? it->valuedouble : NAN;
        const cJSON *nv = cJSON_IsObject(nm) ? cJSON_GetObjectItemCaseSensitive(nm, it->string) : NULL;
        rec->norm[i] = cJSON_IsNumber(nv) ? nv->valuedouble : NAN;
    }
    return LC_OK;
}

static lc_status parse_loss(lc_metrics *m, const cJSON *o, const char *where, int line)
{
    lc_loss_rec r = {.epoch = num(o, "epoch"), .step = num(o, "step"), .lr = num(o, "lr"),
                     .loss = num(o, "train_loss"), .acc = num(o, "train_acc"), .examples = num(o, "examples")};
    if (isnan(r.step) || isnan(r.epoch))
        return LC_ERR(LC_ERR_FORMAT, "%s:%d: a loss line needs \"epoch\" and \"step\"", where, line);
    lc_loss_rec *n = realloc(m->loss, (size_t)(m->n_loss + 1) * sizeof *n);
    if (!n) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    m->loss = n;
    m->loss[m->n_loss++] = r;
    return LC_OK;
}

/* Older layca versions printed non-finite numbers as C does (nan, -nan,
 * inf, -inf), which JSON lacks.  A copy of the line with those tokens (and
 * NaN, Infinity) outside strings turned into null, or NULL when there are
 * none. */
static char *nonfinite_to_null(const char *t, size_t l)
{
    static const char *const toks[] = {"-nan", "nan", "-inf", "inf", "NaN", "-NaN", "Infinity", "-Infinity"};
    char *o = malloc(l + 4 * l / 3 + 8); /* "inf" (3) -> "null" (4) at worst */
    if (!o) return NULL;
    size_t k = 0;
    bool in_str = false, changed = false;
    for (size_t i = 0; i < l;) {
        char c = t[i];
        if (in_str) {
            o[k++] = c;
            i++;
            if (c == '\\' && i < l) o[k++] = t[i++];
            else if (c == '"') in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
            o[k++] = c;
            i++;
            continue;
        }
        /* a token starts after a separator */
        bool at_start = k == 0 || strchr(":[,{ \t", o[k - 1]) != NULL;
        size_t hit = 0;
        for (size_t j = 0; at_start && !hit && j < sizeof toks / sizeof *toks; j++) {
            size_t n = strlen(toks[j]);
            if (n <= l - i && !memcmp(t + i, toks[j], n) && (i + n == l || strchr(",]} \t\r", t[i + n]))) hit = n;
        }
        if (hit) {
            memcpy(o + k, "null", 4);
            k += 4;
            i += hit;
            changed = true;
        } else {
            o[k++] = c;
            i++;
        }
    }
    o[k] = 0;
    if (!changed) {
        free(o);
        return NULL;
    }
    return o;
}

lc_status lc_metrics_parse(const char *text, size_t len, const char *where, lc_metrics *out)
{
    memset(out, 0, sizeof *out);
    size_t pos = 0;
    int line = 0;
    bool warned_nonfinite = false;
    lc_status st = LC_OK;
    while (pos < len && st == LC_OK) {
        size_t e = pos;
        while (e < len && text[e] != '\n') e++;
        line++;
        size_t l = e - pos;
        bool blank = true;
        for (size_t i = pos; i < e; i++)
            if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r') blank = false;
        if (!blank) {
            cJSON *o = cJSON_ParseWithLength(text + pos, l);
            if (!o) {
                char *fixed = nonfinite_to_null(text + pos, l);
                if (fixed) {
                    o = cJSON_Parse(fixed);
                    free(fixed);
                    if (o && !warned_nonfinite) {
                        LC_WARN("%s:%d: non-finite numbers written as nan/inf (not JSON) are read as missing values",
                                where, line);
                        warned_nonfinite = true;
                    }
                }
            }
            if (!cJSON_IsObject(o) && e == len) {
                /* The last line has no newline: the writer was stopped in the
                 * middle of it (a kill, a full disk).  Everything before it is
                 * whole, so the file is still worth reading. */
                LC_WARN("%s:%d: ignoring the unfinished last line (%zu bytes, no newline at the end: the run was "
                        "stopped while writing it)", where, line, l);
            } else if (!cJSON_IsObject(o)) {
                st = LC_ERR(LC_ERR_FORMAT, "%s:%d: not a JSON object", where, line);
            } else {
                const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "kind");
                const char *kind = cJSON_IsString(k) ? k->valuestring : "eval";
                if (!strcmp(kind, "rotation")) {
                    st = parse_rot(out, o, where, line);
                } else if (!strcmp(kind, "eval")) {
                    lc_eval_rec *ne = realloc(out->eval, (size_t)(out->n_eval + 1) * sizeof *ne);
                    if (!ne) st = LC_ERR(LC_ERR_NOMEM, "out of memory");
                    else {
                        out->eval = ne;
                        out->eval[out->n_eval++] = eval_rec(o);
                        if (isnan(out->eval[out->n_eval - 1].epoch))
                            st = LC_ERR(LC_ERR_FORMAT, "%s:%d: an evaluation line needs \"epoch\"", where, line);
                    }
                } else if (!strcmp(kind, "loss")) {
                    st = parse_loss(out, o, where, line);
                }
                /* other kinds are for other readers: skipped */
            }
            cJSON_Delete(o);
        }
        pos = e + 1;
    }
    if (st != LC_OK) lc_metrics_deinit(out);
    return st;
}

lc_status lc_metrics_load(const char *path, lc_metrics *out)
{
    uint8_t *b;
    size_t n;
    LC_TRY(lc_file_read(path, &b, &n));
    lc_status st = lc_metrics_parse((const char *)b, n, path, out);
    free(b);
    if (st == LC_OK && out->n_eval == 0 && out->n_rot == 0)
        st = LC_ERR(LC_ERR_FORMAT, "%s: no evaluation or rotation lines", path);
    return st;
}

/* ---- writing ---- */

/* ", \"key\": value" with null for a non-finite value */
static void field(lc_strbuf *b, const char *key, const char *fmt, double v, bool *nonfinite)
{
    lc_strbuf_printf(b, ", \"%s\": ", key);
    lc_strbuf_json_number(b, fmt, v);
    if (!isfinite(v)) *nonfinite = true;
}

void lc_metrics_line_settings(lc_strbuf *b, int n, const char *const *keys, const char *const *values, int n_layers,
                              char (*layer)[LC_NAME_MAX])
{
    lc_strbuf_printf(b, "{\"kind\": \"settings\"");
    for (int i = 0; i < n; i++) {
        lc_strbuf_printf(b, ", ");
        lc_strbuf_json_string(b, keys[i]);
        lc_strbuf_printf(b, ": %s", values[i]);
    }
    lc_strbuf_printf(b, ", \"layers\": [");
    for (int l = 0; l < n_layers; l++) {
        if (l) lc_strbuf_printf(b, ", ");
        lc_strbuf_json_string(b, layer[l]);
    }
    lc_strbuf_printf(b, "]}");
}

void lc_metrics_line_eval(lc_strbuf *b, const lc_eval_rec *r)
{
    bool nf = false;
    lc_strbuf_printf(b, "{\"kind\": \"eval\", \"epoch\": %d, \"step\": %lld", (int)r->epoch, (long long)r->step);
    field(b, "lr", "%.9g", r->lr, &nf);
    field(b, "train_loss", "%.6f", r->train_loss, &nf);
    field(b, "train_acc", "%.6f", r->train_acc, &nf);
    if (r->has_val) {
        field(b, "val_loss", "%.6f", r->val_loss, &nf);
        field(b, "val_acc", "%.6f", r->val_acc, &nf);
        field(b, "val_top5", "%.6f", r->val_top5, &nf);
    }
    field(b, "test_loss", "%.6f", r->test_loss, &nf);
    field(b, "test_acc", "%.6f", r->test_acc, &nf);
    field(b, "test_top5", "%.6f", r->test_top5, &nf);
    if (nf) lc_strbuf_printf(b, ", \"nonfinite\": true");
    lc_strbuf_printf(b, ", \"time_s\": %.3f}", r->time_s);
}

void lc_metrics_line_loss(lc_strbuf *b, const lc_loss_rec *r)
{
    bool nf = false;
    lc_strbuf_printf(b, "{\"kind\": \"loss\", \"epoch\": %.6f, \"step\": %lld", r->epoch, (long long)r->step);
    field(b, "lr", "%.9g", r->lr, &nf);
    field(b, "train_loss", "%.6f", r->loss, &nf);
    field(b, "train_acc", "%.6f", r->acc, &nf);
    lc_strbuf_printf(b, ", \"examples\": %lld%s}", (long long)r->examples, nf ? ", \"nonfinite\": true" : "");
}

void lc_metrics_line_rotation(lc_strbuf *b, const lc_rot_rec *r, int n_layers, char (*layer)[LC_NAME_MAX])
{
    bool nf = false;
    lc_strbuf_printf(b, "{\"kind\": \"rotation\", \"epoch\": %.6f, \"step\": %lld, \"rotation\": {", r->epoch,
                     (long long)r->step);
    for (int pass = 0; pass < 2; pass++) {
        const double *v = pass ? r->norm : r->rotation;
        if (pass) lc_strbuf_printf(b, "}, \"norm\": {");
        for (int l = 0; l < n_layers; l++) {
            if (l) lc_strbuf_printf(b, ", ");
            lc_strbuf_json_string(b, layer[l]);
            lc_strbuf_printf(b, ": ");
            lc_strbuf_json_number(b, "%.7g", v[l]);
            nf |= !isfinite(v[l]);
        }
    }
    lc_strbuf_printf(b, "}%s}", nf ? ", \"nonfinite\": true" : "");
}

void lc_metrics_line_silhouette(lc_strbuf *b, int epoch, int64_t step, const char *node, double value)
{
    bool nf = false;
    lc_strbuf_printf(b, "{\"kind\": \"silhouette\", \"epoch\": %d, \"step\": %lld, \"node\": ", epoch, (long long)step);
    lc_strbuf_json_string(b, node);
    field(b, "value", "%.6f", value, &nf);
    lc_strbuf_printf(b, "%s}", nf ? ", \"nonfinite\": true" : "");
}

void lc_metrics_line_nonfinite(lc_strbuf *b, int epoch, int64_t step, double loss, const char *where)
{
    bool nf = false;
    lc_strbuf_printf(b, "{\"kind\": \"nonfinite\", \"epoch\": %d, \"step\": %lld", epoch, (long long)step);
    field(b, "train_loss", "%.6f", loss, &nf);
    lc_strbuf_printf(b, ", \"where\": ");
    lc_strbuf_json_string(b, where);
    lc_strbuf_printf(b, ", \"nonfinite\": true}");
}

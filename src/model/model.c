/* JSON model files -> IR graph.  Strict: unknown keys, wrong types,
 * dangling names and shape mismatches are errors naming the JSON path. */
#include "lc_model.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NODES 4096
#define MAX_JSON_INPUTS 4 /* names in a node's "inputs" */

typedef struct ctx {
    const char *where;
    char path[256];
} ctx;

static lc_status perr(const ctx *c, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static lc_status perr(const ctx *c, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *k = key ? key : "";
    const char *sep = c->path[0] && k[0] ? "." : "";
    if (!c->path[0] && !k[0]) return lc_error_set(LC_ERR_INVALID, "%s: %s", c->where, msg);
    return lc_error_set(LC_ERR_INVALID, "%s: %s%s%s: %s", c->where, c->path, sep, k, msg);
}

static const char *json_type(const cJSON *v)
{
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsNull(v)) return "null";
    return "something else";
}

/* Every key of obj must be in the NULL-terminated list `known`. */
static lc_status check_keys(const ctx *c, const cJSON *obj, const char *const *known)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        bool ok = false;
        for (int i = 0; known[i]; i++)
            if (!strcmp(it->string, known[i])) ok = true;
        if (!ok) {
            char list[256] = "";
            for (int i = 0; known[i]; i++) {
                strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
                strncat(list, known[i], sizeof list - strlen(list) - 1);
            }
            return perr(c, it->string, "unknown key (known here: %s)", list);
        }
    }
    /* cJSON keeps duplicates; a duplicated key is almost always a mistake */
    for (const cJSON *a = obj->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (!strcmp(a->string, b->string)) return perr(c, a->string, "key appears twice");
    return LC_OK;
}

static lc_status get_int(const ctx *c, const cJSON *obj, const char *key, bool required, int lo, int hi, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return required ? perr(c, key, "missing (an integer is required)") : LC_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return perr(c, key, "expected an integer, got %s", json_type(v));
    if (v->valuedouble < lo || v->valuedouble > hi)
        return perr(c, key, "expected an integer in [%d, %d], got %.17g", lo, hi, v->valuedouble);
    *out = (int)v->valuedouble;
    return LC_OK;
}

static lc_status get_num(const ctx *c, const cJSON *obj, const char *key, double lo, double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return LC_OK;
    if (!cJSON_IsNumber(v)) return perr(c, key, "expected a number, got %s", json_type(v));
    if (!(v->valuedouble >= lo && v->valuedouble <= hi))
        return perr(c, key, "expected a number in [%g, %g], got %.17g", lo, hi, v->valuedouble);
    *out = v->valuedouble;
    return LC_OK;
}

static lc_status get_bool(const ctx *c, const cJSON *obj, const char *key, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return LC_OK;
    if (!cJSON_IsBool(v)) return perr(c, key, "expected true or false, got %s", json_type(v));
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return LC_OK;
}

static lc_status get_str(const ctx *c, const cJSON *obj, const char *key, bool required, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return required ? perr(c, key, "missing (a string is required)") : LC_OK;
    if (!cJSON_IsString(v)) return perr(c, key, "expected a string, got %s", json_type(v));
    *out = v->valuestring;
    return LC_OK;
}

static lc_status parse_init(const ctx *c, const char *key, const char *s, lc_init *out)
{
    static const struct { const char *n; lc_init i; } t[] = {
        {"he_uniform", LC_INIT_HE_UNIFORM}, {"he_normal", LC_INIT_HE_NORMAL},
        {"glorot_uniform", LC_INIT_GLOROT_UNIFORM}, {"zeros", LC_INIT_ZEROS}, {"constant", LC_INIT_CONSTANT}};
    for (size_t i = 0; i < LC_COUNTOF(t); i++)
        if (!strcmp(s, t[i].n)) { *out = t[i].i; return LC_OK; }
    return perr(c, key, "unknown initialiser '%s' (known: he_uniform, he_normal, glorot_uniform, zeros, constant)", s);
}

typedef struct defaults {
    int bias;
    lc_init init, bias_init;
    double bias_value;
} defaults;

static lc_status parse_defaults(ctx *c, const cJSON *d, defaults *df)
{
    static const char *const keys[] = {"bias", "init", "bias_init", "bias_value", NULL};
    if (!cJSON_IsObject(d)) return perr(c, "defaults", "expected an object, got %s", json_type(d));
    snprintf(c->path, sizeof c->path, "defaults");
    LC_TRY(check_keys(c, d, keys));
    LC_TRY(get_bool(c, d, "bias", &df->bias));
    const char *s = NULL;
    LC_TRY(get_str(c, d, "init", false, &s));
    if (s) LC_TRY(parse_init(c, "init", s, &df->init));
    s = NULL;
    LC_TRY(get_str(c, d, "bias_init", false, &s));
    if (s) LC_TRY(parse_init(c, "bias_init", s, &df->bias_init));
    LC_TRY(get_num(c, d, "bias_value", -1e6, 1e6, &df->bias_value));
    c->path[0] = 0;
    return LC_OK;
}

/* The ops a model file may name (the registry's json ops), into buf. */
static const char *known_ops(char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < LC_OP_COUNT && o < len; i++)
        if (lc_op_get((lc_op)i)->json) o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "", lc_op_name((lc_op)i));
    return buf;
}

/* The registry-parsed attributes of node id (real numbers stored in the
 * node), from the JSON object nd; new_node applied the defaults. */
static lc_status get_registry_attrs(const ctx *c, lc_graph *g, int id, const cJSON *nd)
{
    const lc_op_info *o = lc_op_get(g->nodes[id].op);
    for (int k = 0; k < o->n_attrs; k++) {
        const lc_attr_spec *a = &o->attrs[k];
        if (!a->at) continue;
        if (a->required && !cJSON_GetObjectItemCaseSensitive(nd, a->key))
            return perr(c, a->key, "missing (a number is required)");
        double lo = a->lo, hi = a->hi, *v = (double *)((char *)&g->nodes[id] + a->at);
        if (lo == 0 && hi == 0) lo = -DBL_MAX, hi = DBL_MAX;
        LC_TRY(get_num(c, nd, a->key, lo, hi, v));
    }
    return LC_OK;
}

/* An integer or an array [h, w] of two integers, each in [lo, hi]. */
static lc_status get_pair(const ctx *c, const cJSON *obj, const char *key, bool required, int lo, int hi, int out[2])
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return required ? perr(c, key, "missing (an integer or [h, w] is required)") : LC_OK;
    int tmp[2] = {0, 0};
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
            return perr(c, key, "expected an integer in [%d, %d] or [h, w], got %.17g", lo, hi, v->valuedouble);
        tmp[0] = tmp[1] = (int)v->valuedouble;
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2) {
        int k = 0;
        for (const cJSON *it = v->child; it; it = it->next, k++) {
            if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || it->valuedouble < lo ||
                it->valuedouble > hi)
                return perr(c, key, "element %d: expected an integer in [%d, %d]", k, lo, hi);
            tmp[k] = (int)it->valuedouble;
        }
    } else {
        return perr(c, key, "expected an integer or [h, w], got %s", json_type(v));
    }
    out[0] = tmp[0];
    out[1] = tmp[1];
    return LC_OK;
}

/* A pooling node's "pad": an integer, [h, w] or [top, left, bottom, right],
 * each side in [0, window along its axis) so that every window holds a
 * real value; absent: none. */
static lc_status get_pool_pads(const ctx *c, const cJSON *nd, const int k[2], int pads[4])
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(nd, "pad");
    if (!v) return LC_OK;
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    if (n == 4) {
        int i = 0;
        for (const cJSON *it = v->child; it; it = it->next, i++) {
            if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || it->valuedouble < 0 ||
                it->valuedouble > 1024)
                return perr(c, "pad", "element %d: expected an integer in [0, 1024]", i);
            pads[i] = (int)it->valuedouble;
        }
    } else if (cJSON_IsNumber(v) || n == 2) {
        int p[2] = {0, 0};
        LC_TRY(get_pair(c, nd, "pad", false, 0, 1024, p));
        pads[0] = pads[2] = p[0];
        pads[1] = pads[3] = p[1];
    } else {
        if (cJSON_IsArray(v))
            return perr(c, "pad", "expected an integer, [h, w] or [top, left, bottom, right], got an array of %d", n);
        return perr(c, "pad", "expected an integer, [h, w] or [top, left, bottom, right], got %s", json_type(v));
    }
    static const char *const side[4] = {"top", "left", "bottom", "right"};
    for (int i = 0; i < 4; i++)
        if (pads[i] >= k[i % 2])
            return perr(c, "pad", "the %s padding %d must be smaller than the window's %s %d", side[i], pads[i],
                        i % 2 ? "width" : "height", k[i % 2]);
    return LC_OK;
}

/* init / bias / bias_init / bias_value of a layer with parameters */
typedef struct layer_init {
    int bias;
    lc_init init, bias_init;
    double bias_value;
} layer_init;

static lc_status get_layer_init(const ctx *c, const cJSON *nd, const defaults *df, layer_init *li)
{
    li->bias = df->bias;
    li->init = df->init;
    li->bias_init = df->bias_init;
    li->bias_value = df->bias_value;
    LC_TRY(get_bool(c, nd, "bias", &li->bias));
    const char *s = NULL;
    LC_TRY(get_str(c, nd, "init", false, &s));
    if (s) LC_TRY(parse_init(c, "init", s, &li->init));
    s = NULL;
    LC_TRY(get_str(c, nd, "bias_init", false, &s));
    if (s) LC_TRY(parse_init(c, "bias_init", s, &li->bias_init));
    LC_TRY(get_num(c, nd, "bias_value", -1e6, 1e6, &li->bias_value));
    return LC_OK;
}

/* Names end up in checkpoints, metrics and terminals: no control bytes. */
static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

static lc_status parse_node(ctx *c, lc_graph *g, const cJSON *nd, int index, int prev, const defaults *df,
                            int *out_id)
{
    snprintf(c->path, sizeof c->path, "nodes[%d]", index);
    if (!cJSON_IsObject(nd)) return perr(c, NULL, "expected an object, got %s", json_type(nd));
    const char *name = NULL, *op = NULL;
    LC_TRY(get_str(c, nd, "name", true, &name));
    LC_TRY(get_str(c, nd, "op", true, &op));
    if (!name[0] || strlen(name) >= LC_NAME_MAX - 16 || strchr(name, '.') || has_control(name))
        return perr(c, "name", "'%s' is not a valid node name (1-%d characters, no '.', no control characters)", name,
                    LC_NAME_MAX - 17);
    if (lc_graph_find(g, name) >= 0) return perr(c, "name", "'%s' is used by an earlier node", name);

    /* inputs: default to the previous node */
    int ins[LC_MAX_INPUTS], nin = 0;
    const cJSON *iv = cJSON_GetObjectItemCaseSensitive(nd, "inputs");
    if (iv) {
        if (!cJSON_IsArray(iv) || cJSON_GetArraySize(iv) < 1 || cJSON_GetArraySize(iv) > MAX_JSON_INPUTS)
            return perr(c, "inputs", "expected an array of 1 to %d node names", MAX_JSON_INPUTS);
        int k = 0;
        for (const cJSON *it = iv->child; it; it = it->next, k++) {
            char key[32];
            snprintf(key, sizeof key, "inputs[%d]", k);
            if (!cJSON_IsString(it)) return perr(c, key, "expected a node name, got %s", json_type(it));
            int id = lc_graph_find(g, it->valuestring);
            if (id < 0 || g->nodes[id].op == LC_OP_PARAM || g->nodes[id].op == LC_OP_LABELS)
                return perr(c, key, "'%s' is not an earlier node (inputs may only name nodes defined above)",
                            it->valuestring);
            ins[nin++] = id;
        }
    } else {
        ins[nin++] = prev;
    }

    int opid = lc_op_find(op);
    if (opid < 0) {
        char known[512];
        return perr(c, "op", "unknown op '%s' (known: %s)", op, known_ops(known, sizeof known));
    }
    const lc_op_info *oi = lc_op_get((lc_op)opid);
    const char *keys[3 + 16] = {"name", "op", "inputs"};
    for (int k = 0; k < oi->n_attrs && k < 15; k++) keys[3 + k] = oi->attrs[k].key;
    LC_TRY(check_keys(c, nd, keys));
    int want = oi->nin >= 0 ? oi->nin : 1; /* the inputs besides its parameters */
    if (nin != want)
        return perr(c, "inputs", want == 1 ? "%s takes one input, got %d" : "%s takes exactly two inputs, got %d", op,
                    nin);
    int id = -1;
    if (!strcmp(op, "dense")) {
        int units = 0, bias = df->bias;
        LC_TRY(get_int(c, nd, "units", true, 1, 1 << 24, &units));
        LC_TRY(get_bool(c, nd, "bias", &bias));
        lc_init init = df->init, binit = df->bias_init;
        double bval = df->bias_value;
        const char *s = NULL;
        LC_TRY(get_str(c, nd, "init", false, &s));
        if (s) LC_TRY(parse_init(c, "init", s, &init));
        s = NULL;
        LC_TRY(get_str(c, nd, "bias_init", false, &s));
        if (s) LC_TRY(parse_init(c, "bias_init", s, &binit));
        LC_TRY(get_num(c, nd, "bias_value", -1e6, 1e6, &bval));
        id = lc_graph_add_dense(g, name, ins[0], units, bias != 0, init, binit, bval);
    } else if (!strcmp(op, "conv2d")) {
        int filters = 0, k[2] = {0, 0}, st[2] = {1, 1}, pd[2] = {0, 0};
        LC_TRY(get_int(c, nd, "filters", true, 1, 1 << 20, &filters));
        LC_TRY(get_pair(c, nd, "kernel", true, 1, 1024, k));
        LC_TRY(get_pair(c, nd, "stride", false, 1, 1024, st));
        lc_pad_mode pm = LC_PAD_SAME;
        const cJSON *pv = cJSON_GetObjectItemCaseSensitive(nd, "pad");
        if (pv && cJSON_IsString(pv)) {
            if (!strcmp(pv->valuestring, "same")) pm = LC_PAD_SAME;
            else if (!strcmp(pv->valuestring, "valid")) pm = LC_PAD_VALID;
            else return perr(c, "pad", "expected \"same\", \"valid\", an integer or [h, w], got '%s'", pv->valuestring);
        } else if (pv) {
            if (!cJSON_IsNumber(pv) && !cJSON_IsArray(pv))
                return perr(c, "pad", "expected \"same\", \"valid\", an integer or [h, w], got %s", json_type(pv));
            LC_TRY(get_pair(c, nd, "pad", false, 0, 1024, pd));
            pm = LC_PAD_EXPLICIT;
        }
        layer_init li;
        LC_TRY(get_layer_init(c, nd, df, &li));
        id = lc_graph_add_conv2d(g, name, ins[0], filters, k[0], k[1], st[0], st[1], pm, pd[0], pd[1], li.bias != 0,
                                 li.init, li.bias_init, li.bias_value);
    } else if (!strcmp(op, "batchnorm")) {
        double momentum = 0.99, eps = 1e-3;
        int affine = 0;
        LC_TRY(get_num(c, nd, "momentum", 0, 1, &momentum));
        LC_TRY(get_num(c, nd, "epsilon", 1e-12, 1, &eps));
        LC_TRY(get_bool(c, nd, "affine", &affine));
        id = lc_graph_add_batchnorm(g, name, ins[0], momentum, eps, affine != 0);
    } else if (!strcmp(op, "maxpool") || !strcmp(op, "avgpool")) {
        int k[2] = {0, 0};
        LC_TRY(get_pair(c, nd, "kernel", true, 1, 1024, k));
        int st[2] = {k[0], k[1]};
        LC_TRY(get_pair(c, nd, "stride", false, 1, 1024, st));
        int pads[4] = {0, 0, 0, 0}, incl = 1; /* count_include_pad defaults to true */
        LC_TRY(get_pool_pads(c, nd, k, pads));
        LC_TRY(get_bool(c, nd, "count_include_pad", &incl));
        id = lc_graph_add_pool_pad(g, op[0] == 'm' ? LC_OP_MAXPOOL : LC_OP_AVGPOOL, name, ins[0], k[0], k[1], st[0],
                                   st[1], pads, incl != 0);
    } else if (!strcmp(op, "dropout")) {
        double rate = -1;
        if (!cJSON_GetObjectItemCaseSensitive(nd, "rate")) return perr(c, "rate", "missing (a number in [0, 1) is required)");
        LC_TRY(get_num(c, nd, "rate", 0, 0.999999, &rate));
        id = lc_graph_add_dropout(g, name, ins[0], rate);
    } else { /* no builder: the registry's arity and attributes */
        id = lc_graph_add_node(g, (lc_op)opid, name, ins, nin);
        if (id >= 0) LC_TRY(get_registry_attrs(c, g, id, nd));
    }
    if (id < 0) return lc_error_prefix(LC_ERR_INVALID, "%s: %s", c->where, c->path);
    *out_id = id;
    return LC_OK;
}

void lc_train_spec_unset(lc_train_spec *t)
{
    memset(t, 0, sizeof *t);
    t->layca = -1;
    t->lr = t->momentum = t->alpha = t->weight_decay = t->factor = NAN;
    t->nesterov = -1;
    t->n_milestones = -1;
    t->epochs = t->batch = -1;
    t->steps = -1;
    t->seed = -1;
}

static lc_status parse_train(ctx *c, const cJSON *t, lc_train_spec *ts)
{
    static const char *const keys[] = {"optimizer", "layca", "lr", "momentum", "nesterov", "alpha", "weight_decay",
                                       "schedule", "epochs", "batch", "steps", "seed", NULL};
    snprintf(c->path, sizeof c->path, "train");
    if (!cJSON_IsObject(t)) return perr(c, NULL, "expected an object, got %s", json_type(t));
    LC_TRY(check_keys(c, t, keys));
    const char *s = NULL;
    LC_TRY(get_str(c, t, "optimizer", false, &s));
    if (s) {
        static const char *const opts[] = {"sgd", "sgd_amom", "adam", "rmsprop", "adagrad"};
        bool ok = false;
        for (size_t i = 0; i < LC_COUNTOF(opts); i++) ok |= !strcmp(s, opts[i]);
        if (!ok) return perr(c, "optimizer", "unknown optimizer '%s' (known: sgd, sgd_amom, adam, rmsprop, adagrad)", s);
        snprintf(ts->optimizer, sizeof ts->optimizer, "%s", s);
    }
    LC_TRY(get_bool(c, t, "layca", &ts->layca));
    LC_TRY(get_bool(c, t, "nesterov", &ts->nesterov));
    LC_TRY(get_num(c, t, "lr", 0, 1e6, &ts->lr));
    LC_TRY(get_num(c, t, "momentum", 0, 0.999999, &ts->momentum));
    LC_TRY(get_num(c, t, "alpha", -0.999999, 0.999999, &ts->alpha));
    LC_TRY(get_num(c, t, "weight_decay", 0, 1e3, &ts->weight_decay));
    LC_TRY(get_int(c, t, "epochs", false, 1, 1000000, &ts->epochs));
    LC_TRY(get_int(c, t, "batch", false, 1, 1 << 20, &ts->batch));
    int steps = -1, seed = -1;
    LC_TRY(get_int(c, t, "steps", false, 1, 2000000000, &steps));
    LC_TRY(get_int(c, t, "seed", false, 0, 2000000000, &seed));
    ts->steps = steps;
    ts->seed = seed;
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(t, "schedule");
    if (sc) {
        static const char *const skeys[] = {"milestones", "factor", NULL};
        snprintf(c->path, sizeof c->path, "train.schedule");
        if (!cJSON_IsObject(sc)) return perr(c, NULL, "expected an object {\"milestones\": [...], \"factor\": f}");
        LC_TRY(check_keys(c, sc, skeys));
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(sc, "milestones");
        if (!ms || !cJSON_IsArray(ms)) return perr(c, "milestones", "expected an array of epoch numbers");
        int k = 0, last = -1;
        for (const cJSON *it = ms->child; it; it = it->next, k++) {
            if (k >= LC_MAX_MILESTONES) return perr(c, "milestones", "at most %d milestones", LC_MAX_MILESTONES);
            if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || it->valuedouble <= last ||
                it->valuedouble < 1 || it->valuedouble > 1000000)
                return perr(c, "milestones", "element %d: expected increasing epoch numbers in [1, 1000000]", k);
            ts->milestones[k] = last = (int)it->valuedouble;
        }
        ts->n_milestones = k;
        if (!cJSON_GetObjectItemCaseSensitive(sc, "factor")) return perr(c, "factor", "missing (a number is required)");
        LC_TRY(get_num(c, sc, "factor", 0, 1e3, &ts->factor));
    }
    c->path[0] = 0;
    return LC_OK;
}

static lc_status json_syntax_error(const char *where, const char *text, size_t len)
{
    const char *ep = cJSON_GetErrorPtr();
    if (!ep || ep < text || ep > text + len)
        return lc_error_set(LC_ERR_INVALID, "%s: not valid JSON", where);
    int line = 1, col = 1;
    for (const char *p = text; p < ep; p++) {
        if (*p == '\n') { line++; col = 1; } else col++;
    }
    char near[24];
    size_t k = 0;
    for (const char *p = ep; k < sizeof near - 1 && p < text + len && *p && *p != '\n' && *p != '\r'; p++)
        near[k++] = (*p < ' ') ? ' ' : *p;
    near[k] = 0;
    return lc_error_set(LC_ERR_INVALID, "%s:%d:%d: not valid JSON near '%s'", where, line, col, near);
}

lc_status lc_model_parse(const char *text, size_t len, const char *where, lc_graph **out, lc_train_spec *train)
{
    *out = NULL;
    if (train) lc_train_spec_unset(train);
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) return json_syntax_error(where, text, len);
    ctx c = {.where = where};
    lc_graph *g = NULL;
    lc_status st = LC_OK;
#define CHECK(x) do { st = (x); if (st != LC_OK) goto fail; } while (0)
    static const char *const keys[] = {"format", "name", "input", "classes", "defaults", "nodes", "loss", "train",
                                       "description", NULL};
    if (!cJSON_IsObject(root)) { st = perr(&c, NULL, "the model must be a JSON object"); goto fail; }
    CHECK(check_keys(&c, root, keys));
    const char *fmt = NULL, *name = "model", *loss = NULL;
    CHECK(get_str(&c, root, "format", true, &fmt));
    if (strcmp(fmt, "layca-model/1")) { st = perr(&c, "format", "'%s' is not supported (expected \"layca-model/1\")", fmt); goto fail; }
    CHECK(get_str(&c, root, "name", false, &name));
    if (strlen(name) >= LC_NAME_MAX || has_control(name)) {
        st = perr(&c, "name", "'%s' is not a valid model name (at most %d characters, no control characters)", name,
                  LC_NAME_MAX - 1);
        goto fail;
    }
    const char *desc = NULL;
    CHECK(get_str(&c, root, "description", false, &desc));
    int classes = 0;
    CHECK(get_int(&c, root, "classes", true, 2, 1 << 20, &classes));
    CHECK(get_str(&c, root, "loss", false, &loss));
    if (loss && strcmp(loss, "softmax_cross_entropy")) {
        st = perr(&c, "loss", "unknown loss '%s' (known: softmax_cross_entropy)", loss);
        goto fail;
    }

    g = lc_graph_create(name);
    if (!g) { st = lc_error_set(LC_ERR_NOMEM, "out of memory"); goto fail; }

    /* input */
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(root, "input");
    if (!in) { st = perr(&c, "input", "missing (e.g. {\"shape\": [1, 28, 28]})"); goto fail; }
    if (!cJSON_IsObject(in)) { st = perr(&c, "input", "expected an object, got %s", json_type(in)); goto fail; }
    static const char *const ikeys[] = {"shape", NULL};
    snprintf(c.path, sizeof c.path, "input");
    CHECK(check_keys(&c, in, ikeys));
    const cJSON *shp = cJSON_GetObjectItemCaseSensitive(in, "shape");
    lc_shape ishape = {0, {0}};
    if (!shp || !cJSON_IsArray(shp) || cJSON_GetArraySize(shp) < 1 || cJSON_GetArraySize(shp) > 3) {
        st = perr(&c, "shape", "expected an array of 1 to 3 positive integers ([features] or [channels, height, width])");
        goto fail;
    }
    for (const cJSON *it = shp->child; it; it = it->next) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > 1 << 24 || it->valuedouble != floor(it->valuedouble)) {
            st = perr(&c, "shape", "element %d: expected a positive integer", ishape.rank);
            goto fail;
        }
        ishape.dims[ishape.rank++] = (int)it->valuedouble;
    }
    if (lc_shape_numel(&ishape) > LC_MAX_NUMEL) {
        char b[64];
        double k = 1;
        for (int i = 0; i < ishape.rank; i++) k *= ishape.dims[i];
        st = perr(&c, "shape", "%s has %.3g values per example, more than the %lld supported",
                  lc_shape_str(&ishape, b, sizeof b), k, (long long)LC_MAX_NUMEL);
        goto fail;
    }
    c.path[0] = 0;
    int prev = lc_graph_add_input(g, "input", &ishape);
    if (prev < 0) { st = LC_ERR_INVALID; goto fail; }

    defaults df = {.bias = 0, .init = LC_INIT_GLOROT_UNIFORM, .bias_init = LC_INIT_ZEROS, .bias_value = 0};
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "defaults");
    if (d) CHECK(parse_defaults(&c, d, &df));

    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(root, "nodes");
    if (!nodes || !cJSON_IsArray(nodes) || cJSON_GetArraySize(nodes) < 1) {
        st = perr(&c, "nodes", "expected a non-empty array of node objects");
        goto fail;
    }
    if (cJSON_GetArraySize(nodes) > MAX_NODES) { st = perr(&c, "nodes", "more than %d nodes", MAX_NODES); goto fail; }
    int idx = 0;
    for (const cJSON *nd = nodes->child; nd; nd = nd->next, idx++) {
        CHECK(parse_node(&c, g, nd, idx, prev, &df, &prev));
        /* shapes are checked as nodes are added so the error names the node */
        lc_status s2 = lc_graph_infer(g);
        if (s2 != LC_OK) {
            st = lc_error_prefix(s2, "%s: nodes[%d]", where, idx);
            goto fail;
        }
    }
    c.path[0] = 0;
    g->logits = prev;
    lc_graph_add_labels(g, "labels", classes);
    int lins[2] = {prev, g->labels};
    g->loss = lc_graph_add_node(g, LC_OP_SOFTMAX_CE, "loss", lins, 2);
    if (g->loss < 0) { st = LC_ERR_NOMEM; goto fail; }
    st = lc_graph_infer(g);
    if (st != LC_OK) { st = lc_error_prefix(st, "%s: nodes[%d] (the last node gives the logits)", where, idx - 1); goto fail; }
    if (g->nodes[g->logits].shape.rank != 1) { st = perr(&c, "nodes", "the last node must be flat"); goto fail; }

    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "train");
    if (t) {
        lc_train_spec tmp;
        lc_train_spec_unset(&tmp);
        CHECK(parse_train(&c, t, &tmp));
        if (train) *train = tmp;
    }
    cJSON_Delete(root);
    *out = g;
    return LC_OK;
fail:
#undef CHECK
    cJSON_Delete(root);
    lc_graph_destroy(g);
    return st == LC_OK ? LC_ERR_INVALID : st;
}

lc_status lc_model_load(const char *path, lc_graph **out, lc_train_spec *train)
{
    uint8_t *bytes;
    size_t len;
    LC_TRY(lc_file_read(path, &bytes, &len));
    lc_status st = lc_model_parse((const char *)bytes, len, path, out, train);
    free(bytes);
    return st;
}

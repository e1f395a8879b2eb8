/* safetensors: 8-byte little-endian header length, JSON header, raw data.
 * F32, F64, I32, I64 and U8 tensors are written and read; parameters must
 * be F32. */
#include "lc_model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const dtype_names[] = {"F32", "F64", "I32", "I64", "U8"};
static const size_t dtype_sizes[] = {4, 8, 4, 8, 1};

const char *lc_st_dtype_name(lc_st_dtype d)
{
    return (unsigned)d < LC_COUNTOF(dtype_names) ? dtype_names[d] : "?";
}

size_t lc_st_dtype_size(lc_st_dtype d) { return (unsigned)d < LC_COUNTOF(dtype_sizes) ? dtype_sizes[d] : 0; }

lc_status lc_safetensors_write(const char *path, const lc_st_tensor *t, int n, const char *const *metadata)
{
    for (int i = 0; i < n; i++)
        if (!lc_st_dtype_size(t[i].dtype) || (!t[i].raw && (t[i].dtype != LC_ST_F32 || !t[i].data)))
            return LC_ERR(LC_ERR_INVALID, "%s: tensor '%s': unknown dtype or no data", path, t[i].name);
    cJSON *h = cJSON_CreateObject();
    if (!h) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    if (metadata && metadata[0]) {
        cJSON *m = cJSON_AddObjectToObject(h, "__metadata__");
        for (int i = 0; metadata[i] && metadata[i + 1]; i += 2) cJSON_AddStringToObject(m, metadata[i], metadata[i + 1]);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(h, t[i].name);
        cJSON_AddStringToObject(e, "dtype", lc_st_dtype_name(t[i].dtype));
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        int64_t numel = 1;
        for (int k = 0; k < t[i].rank; k++) {
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t[i].shape[k]));
            numel *= t[i].shape[k];
        }
        cJSON *of = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        off += (uint64_t)numel * lc_st_dtype_size(t[i].dtype);
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
    }
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!js) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    size_t hl = strlen(js), pad = (8 - hl % 8) % 8; /* keep the data 8-byte aligned */
    size_t total = 8 + hl + pad + off;
    uint8_t *buf = malloc(total);
    if (!buf) { free(js); return LC_ERR(LC_ERR_NOMEM, "out of memory for %zu bytes", total); }
    uint64_t hlen = hl + pad;
    for (int k = 0; k < 8; k++) buf[k] = (uint8_t)(hlen >> (8 * k));
    memcpy(buf + 8, js, hl);
    memset(buf + 8 + hl, ' ', pad);
    free(js);
    uint8_t *d = buf + 8 + hlen;
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int k = 0; k < t[i].rank; k++) numel *= t[i].shape[k];
        size_t bytes = (size_t)numel * lc_st_dtype_size(t[i].dtype);
        if (bytes) memcpy(d, t[i].raw ? t[i].raw : (const void *)t[i].data, bytes);
        d += bytes;
    }
    lc_status st = lc_file_write_atomic(path, buf, total);
    free(buf);
    return st;
}

void lc_st_file_deinit(lc_st_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_key[i]);
        free(f->meta_value[i]);
    }
    free(f->meta_key);
    free(f->meta_value);
    free(f->tensors);
    free(f->bytes);
    memset(f, 0, sizeof *f);
}

/* "__metadata__": an object of strings. */
static lc_status parse_meta(const cJSON *m, const char *where, lc_st_file *out)
{
    if (!cJSON_IsObject(m) || out->n_meta)
        return LC_ERR(LC_ERR_FORMAT, "%s: \"__metadata__\" must be one object of strings", where);
    int n = cJSON_GetArraySize(m);
    out->meta_key = calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
    out->meta_value = calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
    if (!out->meta_key || !out->meta_value) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    for (const cJSON *e = m->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return LC_ERR(LC_ERR_FORMAT, "%s: metadata entry '%.60s' is not a string", where, e->string);
        out->meta_key[out->n_meta] = strdup(e->string);
        out->meta_value[out->n_meta] = strdup(e->valuestring);
        out->n_meta++;
        if (!out->meta_key[out->n_meta - 1] || !out->meta_value[out->n_meta - 1])
            return LC_ERR(LC_ERR_NOMEM, "out of memory");
    }
    return LC_OK;
}

const char *lc_st_file_meta(const lc_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_key[i], key)) return f->meta_value[i];
    return NULL;
}

lc_status lc_safetensors_parse(uint8_t *bytes, size_t len, const char *where, lc_st_file *out)
{
    memset(out, 0, sizeof *out);
    out->bytes = bytes;
    if (len < 8) {
        lc_st_file_deinit(out);
        return LC_ERR(LC_ERR_FORMAT, "%s: not a safetensors file (%zu bytes, shorter than the 8-byte header length)", where, len);
    }
    uint64_t hl = 0;
    for (int k = 0; k < 8; k++) hl |= (uint64_t)bytes[k] << (8 * k);
    if (hl > len - 8 || hl > (100u << 20)) {
        lc_st_file_deinit(out);
        return LC_ERR(LC_ERR_FORMAT, "%s: header length %llu exceeds the file (%zu bytes): truncated or not safetensors",
                      where, (unsigned long long)hl, len);
    }
    cJSON *h = cJSON_ParseWithLength((const char *)bytes + 8, (size_t)hl);
    if (!h || !cJSON_IsObject(h)) {
        cJSON_Delete(h);
        lc_st_file_deinit(out);
        return LC_ERR(LC_ERR_FORMAT, "%s: the safetensors header is not a JSON object", where);
    }
    int n = cJSON_GetArraySize(h);
    out->tensors = calloc((size_t)(n > 0 ? n : 1), sizeof *out->tensors);
    if (!out->tensors) { cJSON_Delete(h); lc_st_file_deinit(out); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    /* The data must be aligned for float access; a header length that is
     * not a multiple of 8 (other writers pad to 8, not all do) moves the data
     * down to the header's 8-aligned start. */
    uint8_t *data = bytes + 8 + hl;
    uint64_t dlen = len - 8 - hl;
    if ((uintptr_t)data % 8) {
        memmove(bytes + 8, data, (size_t)dlen);
        data = bytes + 8;
    }
    lc_status st = LC_OK;
    for (const cJSON *e = h->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            st = parse_meta(e, where, out);
            if (st != LC_OK) break;
            continue;
        }
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2) {
            st = LC_ERR(LC_ERR_FORMAT, "%s: tensor '%s': header entry needs dtype, shape and data_offsets", where, e->string);
            break;
        }
        int dtype = -1;
        for (int k = 0; k < (int)LC_COUNTOF(dtype_names); k++)
            if (!strcmp(dt->valuestring, dtype_names[k])) dtype = k;
        if (dtype < 0) {
            st = LC_ERR(LC_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %.16s; layca reads F32, F64, I32, I64 and U8",
                        where, e->string, dt->valuestring);
            break;
        }
        lc_st_tensor *t = &out->tensors[out->n];
        t->dtype = (lc_st_dtype)dtype;
        size_t esize = dtype_sizes[dtype];
        if (strlen(e->string) >= sizeof t->name || cJSON_GetArraySize(sh) > LC_MAX_RANK) {
            st = LC_ERR(LC_ERR_FORMAT, "%s: tensor '%.60s': name too long or rank above %d", where, e->string, LC_MAX_RANK);
            break;
        }
        snprintf(t->name, sizeof t->name, "%s", e->string);
        int64_t numel = 1;
        for (int k = 0; k < out->n; k++)
            if (!strcmp(out->tensors[k].name, t->name)) {
                st = LC_ERR(LC_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", where, t->name);
                goto done;
            }
        for (const cJSON *d = sh->child; d; d = d->next) {
            if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e12 ||
                d->valuedouble != floor(d->valuedouble) || (double)numel * d->valuedouble > 1e12) {
                st = LC_ERR(LC_ERR_FORMAT, "%s: tensor '%s': bad shape (dimensions must be whole numbers, at most 1e12 values)",
                            where, e->string);
                goto done;
            }
            t->shape[t->rank++] = (int64_t)d->valuedouble;
            numel *= (int64_t)d->valuedouble;
        }
        double b = cJSON_GetArrayItem(of, 0)->valuedouble, en = cJSON_GetArrayItem(of, 1)->valuedouble;
        if (!(b >= 0 && en >= b && en <= (double)dlen) || (uint64_t)(en - b) != (uint64_t)numel * esize ||
            (dtype == LC_ST_F32 && fmod(b, 4) != 0)) {
            st = LC_ERR(LC_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%.0f, %.0f] do not fit %lld %s values inside the %llu data bytes",
                        where, e->string, b, en, (long long)numel, dtype_names[dtype], (unsigned long long)dlen);
            break;
        }
        t->raw = data + (uint64_t)b;
        t->data = dtype == LC_ST_F32 ? (const float *)t->raw : NULL;
        out->n++;
    }
done:
    cJSON_Delete(h);
    if (st != LC_OK) lc_st_file_deinit(out);
    return st;
}

lc_status lc_safetensors_load(const char *path, lc_st_file *out)
{
    uint8_t *bytes;
    size_t len;
    LC_TRY(lc_file_read(path, &bytes, &len));
    /* data must be 4-byte aligned for float access: the header length is
     * not always a multiple of 8 in files from elsewhere, so copy if needed */
    return lc_safetensors_parse(bytes, len, path, out);
}

const lc_st_tensor *lc_st_file_find(const lc_st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

lc_status lc_model_save_params(const char *path, const lc_graph *g, const float *params)
{
    return lc_model_save_params_meta(path, g, params, NULL);
}

lc_status lc_model_save_params_meta(const char *path, const lc_graph *g, const float *params,
                                    const char *const *extra_meta)
{
    lc_st_tensor *t = calloc((size_t)g->n_params + 1, sizeof *t);
    if (!t) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->n_params; i++) {
        const lc_node *n = &g->nodes[g->params[i].node];
        snprintf(t[i].name, sizeof t[i].name, "%s", n->name);
        t[i].rank = n->shape.rank;
        for (int k = 0; k < n->shape.rank; k++) t[i].shape[k] = n->shape.dims[k];
        t[i].data = params + g->params[i].offset;
    }
    const char *meta[64] = {"format", "pt", "producer", "layca", "model", g->name};
    int nm = 6;
    for (int i = 0; extra_meta && extra_meta[i] && extra_meta[i + 1] && nm + 3 < (int)LC_COUNTOF(meta); i += 2) {
        meta[nm++] = extra_meta[i];
        meta[nm++] = extra_meta[i + 1];
    }
    meta[nm] = NULL;
    lc_status st = lc_safetensors_write(path, t, g->n_params, meta);
    free(t);
    return st;
}

/* One pair of a name map: FROM=TO. */
typedef struct name_pair { char from[LC_NAME_MAX], to[LC_NAME_MAX]; } name_pair;

/* Parses "FROM=TO,FROM=TO" into pairs (at most max). */
static lc_status parse_map(const char *map, name_pair *out, int max, int *n)
{
    *n = 0;
    for (const char *p = map; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p || eq + 1 == p + len)
            return LC_ERR(LC_ERR_INVALID, "--init-map: '%.*s' is not FROM=TO", (int)len, p);
        size_t fl = (size_t)(eq - p), tl = len - fl - 1;
        if (fl >= LC_NAME_MAX || tl >= LC_NAME_MAX)
            return LC_ERR(LC_ERR_INVALID, "--init-map: '%.*s': a name longer than %d characters", (int)len, p,
                          LC_NAME_MAX - 1);
        if (*n == max) return LC_ERR(LC_ERR_INVALID, "--init-map: more than %d pairs", max);
        memcpy(out[*n].from, p, fl);
        out[*n].from[fl] = 0;
        memcpy(out[*n].to, eq + 1, tl);
        out[*n].to[tl] = 0;
        (*n)++;
        p = end ? end + 1 : p + len;
    }
    return LC_OK;
}

/* The model's name of the file's tensor `name` under the map, into out. */
static void map_name(const char *name, const name_pair *m, int n, char *out, size_t cap)
{
    for (int i = 0; i < n; i++) {
        size_t fl = strlen(m[i].from);
        if (!strncmp(name, m[i].from, fl) && (name[fl] == 0 || name[fl] == '.')) {
            snprintf(out, cap, "%s%s", m[i].to, name + fl);
            return;
        }
    }
    snprintf(out, cap, "%s", name);
}

static bool is_bn_counter(const lc_st_tensor *t, const char *mapped)
{
    const char *suffix = ".num_batches_tracked";
    size_t n = strlen(mapped), s = strlen(suffix);
    return n > s && !strcmp(mapped + n - s, suffix) && (t->dtype == LC_ST_I64 || t->dtype == LC_ST_I32) &&
           t->rank <= 1;
}

/* Copies parameter i from the file's tensor t (checked: dtype, shape, finite values). */
static lc_status copy_param(const char *path, const lc_graph *g, int i, const lc_st_tensor *t, float *params)
{
    const lc_node *n = &g->nodes[g->params[i].node];
    char b[64];
    if (t->dtype != LC_ST_F32)
        return LC_ERR(LC_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; parameters must be F32", path, t->name,
                      lc_st_dtype_name(t->dtype));
    bool same = t->rank == n->shape.rank;
    for (int k = 0; same && k < t->rank; k++) same = t->shape[k] == n->shape.dims[k];
    if (!same) {
        char tb[96] = "[";
        for (int k = 0; k < t->rank; k++)
            snprintf(tb + strlen(tb), sizeof tb - strlen(tb), k ? ", %lld" : "%lld", (long long)t->shape[k]);
        strncat(tb, "]", sizeof tb - strlen(tb) - 1);
        return LC_ERR(LC_ERR_INVALID, "%s: tensor '%s' has shape %s, the model's '%s' needs %s", path, t->name, tb,
                      n->name, lc_shape_str(&n->shape, b, sizeof b));
    }
    float *dst = params + g->params[i].offset;
    memcpy(dst, t->data, (size_t)g->params[i].numel * 4);
    for (int64_t k = 0; k < g->params[i].numel; k++)
        if (!isfinite(dst[k]))
            return LC_ERR(LC_ERR_INVALID, "%s: tensor '%s' holds a non-finite value at index %lld", path, t->name,
                          (long long)k);
    return LC_OK;
}

lc_status lc_model_load_params(const char *path, const lc_graph *g, float *params)
{
    return lc_model_load_params_map(path, g, params, NULL);
}

lc_status lc_model_load_params_map(const char *path, const lc_graph *g, float *params, const char *map)
{
    name_pair pairs[64];
    int np;
    LC_TRY(parse_map(map, pairs, (int)LC_COUNTOF(pairs), &np));
    lc_st_file f;
    LC_TRY(lc_safetensors_load(path, &f));
    lc_status st = LC_OK;
    char (*mapped)[LC_NAME_MAX + 64] = calloc((size_t)f.n + 1, sizeof *mapped);
    char *used = calloc((size_t)f.n + 1, 1);
    if (!mapped || !used) st = LC_ERR(LC_ERR_NOMEM, "out of memory");
    int counters = 0;
    for (int k = 0; k < f.n && st == LC_OK; k++) {
        map_name(f.tensors[k].name, pairs, np, mapped[k], sizeof mapped[k]);
        if (is_bn_counter(&f.tensors[k], mapped[k])) used[k] = 1, counters++;
        if (!strncmp(f.tensors[k].name, "layca.", 6)) used[k] = 1; /* a checkpoint's training state */
    }
    for (int i = 0; i < g->n_params && st == LC_OK; i++) {
        const lc_node *n = &g->nodes[g->params[i].node];
        int k = 0;
        while (k < f.n && (used[k] || strcmp(mapped[k], n->name))) k++;
        char b[64];
        if (k == f.n)
            st = LC_ERR(LC_ERR_INVALID, "%s: tensor '%s' is missing (the model needs %s)%s", path, n->name,
                        lc_shape_str(&n->shape, b, sizeof b), np ? "" : "; --init-map renames the file's tensors");
        else if ((st = copy_param(path, g, i, &f.tensors[k], params)) == LC_OK)
            used[k] = 1;
    }
    for (int k = 0; k < f.n && st == LC_OK; k++) {
        if (used[k]) continue;
        char as[LC_NAME_MAX + 80] = "";
        if (strcmp(mapped[k], f.tensors[k].name)) snprintf(as, sizeof as, " (mapped to '%s')", mapped[k]);
        st = LC_ERR(LC_ERR_INVALID, "%s: tensor '%s'%s is not a parameter of model '%s' (a checkpoint of another "
                    "model?%s)", path, f.tensors[k].name, as, g->name, np ? "" : " --init-map renames the file's tensors");
    }
    if (st == LC_OK && counters)
        LC_INFO("%s: %d batchnorm counters (num_batches_tracked) ignored", path, counters);
    free(mapped);
    free(used);
    lc_st_file_deinit(&f);
    return st;
}

/* Data sets in memory: allocation, seeded subsetting, normalisation (global
 * or per channel), the validation split, and the spec strings ("mnist:DIR",
 * "idx:IMAGES,LABELS", "cifar10:DIR", "images:DIR", ...) that tie loaders
 * together. */
#include "lc_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lc_status lc_dataset_alloc(lc_dataset *d, int64_t n, int c, int h, int w, int classes)
{
    memset(d, 0, sizeof *d);
    if (n < 0 || c <= 0 || h <= 0 || w <= 0)
        return LC_ERR(LC_ERR_INVALID, "lc_dataset_alloc: invalid shape n=%lld %dx%dx%d", (long long)n, c, h, w);
    int64_t per = (int64_t)c * h * w;
    if (n > 0 && (uint64_t)per > (uint64_t)(SIZE_MAX / sizeof(float)) / (uint64_t)n)
        return LC_ERR(LC_ERR_INVALID, "lc_dataset_alloc: %lld examples of %lld values are too large", (long long)n,
                      (long long)per);
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->classes = classes;
    if (n == 0) return LC_OK;
    d->x = malloc((size_t)n * (size_t)per * sizeof *d->x);
    d->y = malloc((size_t)n * sizeof *d->y);
    if (!d->x || !d->y) {
        lc_dataset_deinit(d);
        return LC_ERR(LC_ERR_NOMEM, "out of memory for %lld examples of %lld floats", (long long)n, (long long)per);
    }
    return LC_OK;
}

static void free_names(char **names, int count)
{
    if (!names) return;
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
}

void lc_dataset_deinit(lc_dataset *d)
{
    if (!d) return;
    free(d->x);
    free(d->y);
    free_names(d->class_names, d->classes);
    memset(d, 0, sizeof *d);
}

lc_status lc_dataset_set_class_names(lc_dataset *d, const char *const *names, int count)
{
    if (names && count != d->classes)
        return LC_ERR(LC_ERR_INVALID, "%d class names given for a data set of %d classes", count, d->classes);
    char **v = NULL;
    if (names && count > 0) {
        v = calloc((size_t)count, sizeof *v);
        if (!v) return LC_ERR(LC_ERR_NOMEM, "out of memory for %d class names", count);
        for (int i = 0; i < count; i++) {
            size_t k = strlen(names[i]);
            v[i] = malloc(k + 1);
            if (!v[i]) {
                free_names(v, count);
                return LC_ERR(LC_ERR_NOMEM, "out of memory for %d class names", count);
            }
            memcpy(v[i], names[i], k + 1);
        }
    }
    free_names(d->class_names, d->classes);
    d->class_names = v;
    return LC_OK;
}

/* Changes the class count; names are kept only when the count is unchanged. */
static void set_classes(lc_dataset *d, int classes)
{
    if (classes == d->classes) return;
    free_names(d->class_names, d->classes);
    d->class_names = NULL;
    d->classes = classes;
}

int64_t lc_dataset_example_size(const lc_dataset *d) { return (int64_t)d->c * d->h * d->w; }

/* Copies the examples with keep[i] == want (in order) into out. */
static lc_status gather(const lc_dataset *src, const uint8_t *keep, bool want, lc_dataset *out)
{
    int64_t count = 0;
    for (int64_t i = 0; i < src->n; i++) count += (keep[i] != 0) == want;
    if (count == 0) {
        memset(out, 0, sizeof *out);
        return LC_OK;
    }
    LC_TRY(lc_dataset_alloc(out, count, src->c, src->h, src->w, src->classes));
    if (src->class_names) {
        lc_status st = lc_dataset_set_class_names(out, (const char *const *)src->class_names, src->classes);
        if (st != LC_OK) {
            lc_dataset_deinit(out);
            return st;
        }
    }
    size_t es = (size_t)lc_dataset_example_size(src);
    int64_t j = 0;
    for (int64_t i = 0; i < src->n; i++) {
        if ((keep[i] != 0) != want) continue;
        memcpy(out->x + (size_t)j * es, src->x + (size_t)i * es, es * sizeof(float));
        out->y[j] = src->y[i];
        j++;
    }
    return LC_OK;
}

lc_status lc_dataset_split(const lc_dataset *src, const uint8_t *keep, lc_dataset *kept, lc_dataset *rest)
{
    if (kept) LC_TRY(gather(src, keep, true, kept));
    if (rest) {
        lc_status st = gather(src, keep, false, rest);
        if (st != LC_OK) {
            lc_dataset_deinit(kept);
            return st;
        }
    }
    return LC_OK;
}

lc_status lc_dataset_head(const lc_dataset *src, int64_t count, lc_dataset *out)
{
    if (count < 0 || count > src->n)
        return LC_ERR(LC_ERR_INVALID, "cannot keep the first %lld of %lld examples", (long long)count,
                      (long long)src->n);
    LC_TRY(lc_dataset_alloc(out, count, src->c, src->h, src->w, src->classes));
    if (src->class_names) {
        lc_status st = lc_dataset_set_class_names(out, (const char *const *)src->class_names, src->classes);
        if (st != LC_OK) {
            lc_dataset_deinit(out);
            return st;
        }
    }
    if (count == 0) return LC_OK;
    size_t es = (size_t)lc_dataset_example_size(src);
    memcpy(out->x, src->x, (size_t)count * es * sizeof(float));
    memcpy(out->y, src->y, (size_t)count * sizeof(int32_t));
    return LC_OK;
}

void lc_dataset_stats(const lc_dataset *d, double *mean, double *std)
{
    size_t total = (size_t)d->n * (size_t)lc_dataset_example_size(d);
    if (total == 0) {
        *mean = 0;
        *std = 0;
        return;
    }
    /* Two passes in double: exact enough for tens of millions of values. */
    double s = 0;
    for (size_t i = 0; i < total; i++) s += d->x[i];
    double m = s / (double)total, v = 0;
    for (size_t i = 0; i < total; i++) {
        double e = d->x[i] - m;
        v += e * e;
    }
    *mean = m;
    *std = sqrt(v / (double)total);
}

void lc_dataset_normalize(lc_dataset *d, double mean, double std)
{
    size_t total = (size_t)d->n * (size_t)lc_dataset_example_size(d);
    double inv = 1.0 / std;
    for (size_t i = 0; i < total; i++) d->x[i] = (float)((d->x[i] - mean) * inv);
}

void lc_dataset_stats_per_channel(const lc_dataset *d, double *mean, double *std)
{
    size_t plane = (size_t)d->h * (size_t)d->w, es = (size_t)lc_dataset_example_size(d);
    double count = (double)d->n * (double)plane;
    for (int c = 0; c < d->c; c++) {
        if (count == 0) {
            mean[c] = std[c] = 0;
            continue;
        }
        double s = 0, v = 0;
        for (int64_t i = 0; i < d->n; i++) {
            const float *x = d->x + (size_t)i * es + (size_t)c * plane;
            for (size_t k = 0; k < plane; k++) s += x[k];
        }
        double m = s / count;
        for (int64_t i = 0; i < d->n; i++) {
            const float *x = d->x + (size_t)i * es + (size_t)c * plane;
            for (size_t k = 0; k < plane; k++) {
                double e = x[k] - m;
                v += e * e;
            }
        }
        mean[c] = m;
        std[c] = sqrt(v / count);
    }
}

void lc_dataset_normalize_per_channel(lc_dataset *d, const double *mean, const double *std)
{
    size_t plane = (size_t)d->h * (size_t)d->w, es = (size_t)lc_dataset_example_size(d);
    for (int c = 0; c < d->c; c++) {
        double m = mean[c], inv = 1.0 / std[c];
        for (int64_t i = 0; i < d->n; i++) {
            float *x = d->x + (size_t)i * es + (size_t)c * plane;
            for (size_t k = 0; k < plane; k++) x[k] = (float)((x[k] - m) * inv);
        }
    }
}

/* ---- seeded draws ---- */

/* Picks k of the m indices in idx[] uniformly without replacement (partial
 * Fisher-Yates: the pick ends up in idx[0..k)) and marks them in keep. */
static void pick(lc_rng *r, int32_t *idx, int64_t m, int64_t k, uint8_t *keep)
{
    for (int64_t i = 0; i < k; i++) {
        int64_t j = i + (int64_t)lc_rng_below(r, (uint64_t)(m - i));
        int32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        keep[idx[i]] = 1;
    }
}

lc_status lc_data_draw_per_class(const lc_dataset *d, int per_class, uint64_t seed, const char *where, uint8_t *keep)
{
    if (!where) where = "data";
    if (per_class <= 0) return LC_ERR(LC_ERR_INVALID, "%s: per_class = %d must be positive", where, per_class);
    if (d->classes <= 0) return LC_ERR(LC_ERR_INVALID, "%s: number of classes is unknown (%d)", where, d->classes);
    if (d->n > INT32_MAX) return LC_ERR(LC_ERR_INVALID, "%s: %lld examples is too many", where, (long long)d->n);
    memset(keep, 0, (size_t)d->n);

    /* Bucket the indices by class (counting sort keeps pool order inside a class). */
    int64_t *start = calloc((size_t)d->classes + 1, sizeof *start);
    int32_t *idx = malloc((size_t)LC_MAX(d->n, 1) * sizeof *idx);
    if (!start || !idx) {
        free(start);
        free(idx);
        return LC_ERR(LC_ERR_NOMEM, "%s: out of memory", where);
    }
    lc_status st = LC_OK;
    for (int64_t i = 0; i < d->n; i++) {
        int32_t c = d->y[i];
        if (c < 0 || c >= d->classes) {
            st = LC_ERR(LC_ERR_FORMAT, "%s: label %d at index %lld is out of range (classes = %d)", where, (int)c,
                        (long long)i, d->classes);
            goto done;
        }
        start[c + 1]++;
    }
    for (int c = 0; c < d->classes; c++) {
        if (start[c + 1] < per_class) {
            st = LC_ERR(LC_ERR_INVALID, "%s: class %d has %lld examples, fewer than per_class = %d", where, c,
                        (long long)start[c + 1], per_class);
            goto done;
        }
        start[c + 1] += start[c];
    }
    {
        int64_t *fill = calloc((size_t)d->classes, sizeof *fill);
        if (!fill) {
            st = LC_ERR(LC_ERR_NOMEM, "%s: out of memory", where);
            goto done;
        }
        for (int64_t i = 0; i < d->n; i++) {
            int32_t c = d->y[i];
            idx[start[c] + fill[c]++] = (int32_t)i;
        }
        free(fill);
    }
    /* One stream, classes in order: the draw depends only on seed and pool. */
    lc_rng r;
    lc_rng_seed(&r, seed);
    for (int c = 0; c < d->classes; c++) pick(&r, idx + start[c], start[c + 1] - start[c], per_class, keep);
done:
    free(start);
    free(idx);
    return st;
}

lc_status lc_data_draw_subset(const lc_dataset *d, int64_t k, uint64_t seed, const char *where, uint8_t *keep)
{
    if (!where) where = "data";
    if (k <= 0 || k > d->n)
        return LC_ERR(LC_ERR_INVALID, "%s: train_subset = %lld must be in 1..%lld (the examples available)", where,
                      (long long)k, (long long)d->n);
    if (d->n > INT32_MAX) return LC_ERR(LC_ERR_INVALID, "%s: %lld examples is too many", where, (long long)d->n);
    int32_t *idx = malloc((size_t)d->n * sizeof *idx);
    if (!idx) return LC_ERR(LC_ERR_NOMEM, "%s: out of memory", where);
    for (int64_t i = 0; i < d->n; i++) idx[i] = (int32_t)i;
    memset(keep, 0, (size_t)d->n);
    lc_rng r;
    lc_rng_seed(&r, seed);
    pick(&r, idx, d->n, k, keep);
    free(idx);
    return LC_OK;
}

/* Replaces *d by the examples drawn from it (per_class or k). */
static lc_status draw_into(lc_dataset *d, const lc_data_opts *o, const char *where, lc_dataset *rest)
{
    uint8_t *keep = malloc((size_t)LC_MAX(d->n, 1));
    if (!keep) return LC_ERR(LC_ERR_NOMEM, "%s: out of memory", where);
    lc_status st = o->per_class > 0 ? lc_data_draw_per_class(d, o->per_class, o->seed, where, keep)
                                    : lc_data_draw_subset(d, o->train_subset, o->seed, where, keep);
    lc_dataset kept = {0};
    if (st == LC_OK) st = lc_dataset_split(d, keep, &kept, rest);
    free(keep);
    if (st != LC_OK) return st;
    lc_dataset_deinit(d);
    *d = kept;
    return LC_OK;
}

/* A seeded draw of k test examples, kept in their order (image folders and
 * CIFAR test files can be sorted by class, so the first k would not do). */
static lc_status apply_test_subset(lc_dataset *test, int64_t k, uint64_t seed, const char *spec)
{
    if (k <= 0) return LC_OK;
    if (k > test->n)
        return LC_ERR(LC_ERR_INVALID, "%s: test_subset = %lld exceeds the %lld test examples", spec, (long long)k,
                      (long long)test->n);
    uint8_t *keep = calloc((size_t)test->n, 1);
    if (!keep) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    lc_dataset kept, rest;
    lc_status st = lc_data_draw_subset(test, k, seed ^ 0x7e57u, spec, keep);
    if (st == LC_OK) st = lc_dataset_split(test, keep, &kept, &rest);
    free(keep);
    LC_TRY(st);
    lc_dataset_deinit(&rest);
    lc_dataset_deinit(test);
    *test = kept;
    return LC_OK;
}

/* Highest label + 1 (the class count of an idx pool when not given). */
static int infer_classes(const lc_dataset *d)
{
    int32_t m = 0;
    for (int64_t i = 0; i < d->n; i++) m = LC_MAX(m, d->y[i]);
    return (int)m + 1;
}

static const char *const KNOWN_KINDS =
    "mnist:DIR, idx:IMAGES,LABELS, cifar10:DIR, cifar100:DIR, cifar100-coarse:DIR, images:DIR, tinyimagenet:DIR";

/* Highest label + 1 over both splits. */
static int infer_classes2(const lc_dataset *a, const lc_dataset *b)
{
    return LC_MAX(infer_classes(a), infer_classes(b));
}

/* opts.classes for loaders with a known class count: it must hold the labels. */
static lc_status apply_classes(lc_dataset *train, lc_dataset *test, int classes, const char *spec)
{
    if (classes <= 0) return LC_OK;
    int need = infer_classes2(train, test);
    if (classes < need)
        return LC_ERR(LC_ERR_INVALID, "%s: classes = %d but the labels go up to %d", spec, classes, need - 1);
    set_classes(train, classes);
    set_classes(test, classes);
    return LC_OK;
}

/* The part of spec after "kind:", or NULL if spec is not of that kind. */
static const char *spec_arg(const char *spec, const char *kind)
{
    size_t k = strlen(kind);
    return strncmp(spec, kind, k) == 0 && spec[k] == ':' ? spec + k + 1 : NULL;
}

static const uint64_t VAL_SALT = 0x76616c5f73706c74ULL; /* "val_splt": the validation draw's own stream */

/* Releases the three splits (val may be NULL) and returns st. */
static lc_status open_fail(lc_dataset *train, lc_dataset *val, lc_dataset *test, lc_status st)
{
    lc_dataset_deinit(train);
    lc_dataset_deinit(test);
    if (val) lc_dataset_deinit(val);
    return st;
}

/* lc_data_open3, step 1: options that cannot work with spec. */
static lc_status check_open_opts(const char *spec, const lc_data_opts *o, const lc_dataset *val)
{
    if (!spec) return LC_ERR(LC_ERR_INVALID, "no data spec given (known kinds: %s)", KNOWN_KINDS);
    if (o->per_class < 0 || o->train_subset < 0 || o->test_subset < 0 || o->classes < 0 || o->classes > 256)
        return LC_ERR(LC_ERR_INVALID,
                      "%s: invalid options per_class=%d train_subset=%lld test_subset=%lld classes=%d", spec,
                      o->per_class, (long long)o->train_subset, (long long)o->test_subset, o->classes);
    if (o->per_class > 0 && o->train_subset > 0)
        return LC_ERR(LC_ERR_INVALID, "%s: per_class (%d) and train_subset (%lld) are exclusive; set one", spec,
                      o->per_class, (long long)o->train_subset);
    if (!(o->val_split >= 0 && o->val_split < 1))
        return LC_ERR(LC_ERR_INVALID, "%s: val_split = %g must be 0 (none) or a fraction in (0, 1)", spec,
                      o->val_split);
    if (o->val_split > 0 && !val)
        return LC_ERR(LC_ERR_INVALID, "%s: val_split = %g needs somewhere to put the validation split (lc_data_open3)",
                      spec, o->val_split);
    return LC_OK;
}

/* Step 2 for idx:IMAGES,LABELS: the pool, the training examples drawn from
 * it and the rest as the test split; drawn gets the description.  On a
 * failure after loading, the splits are released. */
static lc_status load_idx_pool(const char *spec, const char *args, const lc_data_opts *o, lc_dataset *train,
                               lc_dataset *val, lc_dataset *test, char *drawn, size_t drawn_len)
{
    const char *comma = strchr(args, ',');
    if (!comma || comma == args || !comma[1] || strchr(comma + 1, ','))
        return LC_ERR(LC_ERR_INVALID, "%s: expected idx:IMAGES,LABELS (two paths separated by one comma)", spec);
    if (o->per_class <= 0 && o->train_subset <= 0)
        return LC_ERR(LC_ERR_INVALID,
                      "%s: an idx pool needs per_class or train_subset to draw the training examples "
                      "(the rest is the test split)",
                      spec);
    size_t ilen = (size_t)(comma - args);
    char *images = malloc(ilen + 1);
    if (!images) return LC_ERR(LC_ERR_NOMEM, "%s: out of memory", spec);
    memcpy(images, args, ilen);
    images[ilen] = 0;
    lc_dataset pool;
    lc_status st = lc_idx_load_pair(images, comma + 1, o->classes > 0 ? o->classes : 256, &pool);
    free(images);
    if (st != LC_OK) return st;
    pool.classes = o->classes > 0 ? o->classes : infer_classes(&pool);
    st = draw_into(&pool, o, spec, test);
    if (st != LC_OK) {
        lc_dataset_deinit(&pool);
        return open_fail(train, val, test, st);
    }
    *train = pool;
    if (test->n == 0)
        return open_fail(train, val, test,
                         LC_ERR(LC_ERR_INVALID,
                                "%s: drawing %lld training examples leaves no test examples in the pool", spec,
                                (long long)train->n));
    if (o->per_class > 0)
        snprintf(drawn, drawn_len, " (%d per class from a pool of %lld, seed %llu)", o->per_class,
                 (long long)(train->n + test->n), (unsigned long long)o->seed);
    else
        snprintf(drawn, drawn_len, " (random subset of a pool of %lld, seed %llu)", (long long)(train->n + test->n),
                 (unsigned long long)o->seed);
    return LC_OK;
}

/* Step 2: the splits of spec's loader.  *fixed: the loader has its own
 * train/test split (subsets are drawn from train later); drawn and source
 * get parts of the description.  On a failure after loading, the splits
 * are released. */
static lc_status load_spec(const char *spec, const lc_data_opts *o, lc_dataset *train, lc_dataset *val,
                           lc_dataset *test, lc_data_info *info, char *drawn, size_t drawn_len, char *source,
                           size_t source_len, bool *fixed)
{
    const char *arg;
    *fixed = true;
    if ((arg = spec_arg(spec, "mnist"))) {
        if (!*arg) return LC_ERR(LC_ERR_INVALID, "%s: empty folder (expected mnist:DIR)", spec);
        return lc_mnist_load_dir(arg, train, test);
    }
    if ((arg = spec_arg(spec, "cifar10"))) {
        if (!*arg) return LC_ERR(LC_ERR_INVALID, "%s: empty folder (expected cifar10:DIR)", spec);
        return lc_cifar10_load_dir(arg, train, test);
    }
    if ((arg = spec_arg(spec, "cifar100")) || (arg = spec_arg(spec, "cifar100-coarse"))) {
        if (!*arg) return LC_ERR(LC_ERR_INVALID, "%s: empty folder (expected cifar100:DIR)", spec);
        return lc_cifar100_load_dir(arg, spec[8] == '-', train, test);
    }
    if ((arg = spec_arg(spec, "images")) || (arg = spec_arg(spec, "tinyimagenet"))) {
        bool tiny = spec[0] == 't';
        if (!*arg)
            return LC_ERR(LC_ERR_INVALID, "%s: empty folder (expected %s:DIR)", spec, tiny ? "tinyimagenet" : "images");
        lc_images_opts io = {.cache_dir = o->cache_dir, .no_cache = o->no_cache, .quiet = o->quiet};
        lc_images_info ii;
        LC_TRY(lc_images_load_dir(arg, tiny ? LC_IMAGES_TINYIMAGENET : LC_IMAGES_FOLDERS, &io, train, test, &ii));
        int hits = ii.from_cache[0] + ii.from_cache[1];
        if (info) {
            info->cache_hits = hits;
            info->cache_misses = 2 - hits;
        }
        snprintf(source, source_len, hits == 2 ? ", from the decode cache" : hits == 1 ? ", partly decoded"
                                                                                      : ", decoded");
        return LC_OK;
    }
    if ((arg = spec_arg(spec, "idx"))) {
        *fixed = false;
        return load_idx_pool(spec, arg, o, train, val, test, drawn, drawn_len);
    }
    const char *colon = strchr(spec, ':');
    return LC_ERR(LC_ERR_INVALID, "%s: unknown data spec kind '%.*s' (known kinds: %s)", spec,
                  colon ? (int)(colon - spec) : (int)strlen(spec), spec, KNOWN_KINDS);
}

/* Step 3 for loaders with their own split: the classes, then the training
 * examples drawn (per_class or train_subset); drawn gets the description. */
static lc_status draw_fixed(const char *spec, const lc_data_opts *o, lc_dataset *train, lc_dataset *test,
                            char *drawn, size_t drawn_len)
{
    LC_TRY(apply_classes(train, test, o->classes, spec));
    if (o->per_class > 0 || o->train_subset > 0) {
        int64_t pool = train->n;
        LC_TRY(draw_into(train, o, spec, NULL));
        if (o->per_class > 0)
            snprintf(drawn, drawn_len, " (%d per class of %lld, seed %llu)", o->per_class, (long long)pool,
                     (unsigned long long)o->seed);
        else
            snprintf(drawn, drawn_len, " (random subset of %lld, seed %llu)", (long long)pool,
                     (unsigned long long)o->seed);
    }
    return LC_OK;
}

/* Step 5: val_split of train moved into val; vald gets the description. */
static lc_status split_validation(const char *spec, const lc_data_opts *o, lc_dataset *train, lc_dataset *val,
                                  char *vald, size_t vald_len)
{
    int64_t k = llround(o->val_split * (double)train->n);
    if (k < 1 || k >= train->n)
        return LC_ERR(LC_ERR_INVALID,
                      "%s: val_split = %g of %lld training examples gives %lld validation examples; it must leave "
                      "at least one in each split",
                      spec, o->val_split, (long long)train->n, (long long)k);
    uint8_t *keep = malloc((size_t)train->n);
    if (!keep) return LC_ERR(LC_ERR_NOMEM, "%s: out of memory", spec);
    lc_dataset rest = {0};
    lc_status st = lc_data_draw_subset(train, k, o->seed ^ VAL_SALT, spec, keep);
    if (st == LC_OK) st = lc_dataset_split(train, keep, val, &rest);
    free(keep);
    if (st != LC_OK) return st;
    lc_dataset_deinit(train);
    *train = rest;
    snprintf(vald, vald_len, ", %lld val (%g of train, seed %llu)", (long long)val->n, o->val_split,
             (unsigned long long)o->seed);
    return LC_OK;
}

/* Step 6: the normalisation statistics (m, s, *nstats: from the training
 * split, or the fixed ones, which also set o's no_normalize and
 * per_channel) applied to every split. */
static lc_status normalise_splits(const char *spec, lc_data_opts *o, lc_dataset *train, lc_dataset *val,
                                  lc_dataset *test, double *m, double *s, int *nstats)
{
    if (o->per_channel) {
        if (train->c > LC_DATA_MAX_CHANNELS)
            return LC_ERR(LC_ERR_UNSUPPORTED,
                          "%s: per-channel normalisation supports up to %d channels, the data has %d", spec,
                          LC_DATA_MAX_CHANNELS, train->c);
        *nstats = train->c;
        for (int c = 0; c < *nstats; c++) s[c] = 1;
    }
    if (o->fixed_nstats > 0) {
        if ((o->fixed_nstats != 1 && o->fixed_nstats != train->c) || o->fixed_nstats > LC_DATA_MAX_CHANNELS)
            return LC_ERR(LC_ERR_INVALID, "%s: %d normalisation values given, the data has %d channels", spec,
                          o->fixed_nstats, train->c);
        o->no_normalize = false;
        o->per_channel = o->fixed_nstats > 1;
        *nstats = o->fixed_nstats;
        for (int c = 0; c < *nstats; c++) {
            m[c] = o->fixed_mean[c];
            s[c] = o->fixed_std[c];
        }
    }
    if (o->no_normalize) return LC_OK;
    if (o->fixed_nstats > 0)
        ; /* given */
    else if (o->per_channel)
        lc_dataset_stats_per_channel(train, m, s);
    else
        lc_dataset_stats(train, &m[0], &s[0]);
    for (int c = 0; c < *nstats; c++) {
        if (!(s[c] > 1e-12) || !isfinite(m[c])) {
            if (o->per_channel)
                return LC_ERR(LC_ERR_INVALID,
                              "%s: channel %d of the %lld training examples has std %g (mean %g): cannot normalise; "
                              "use no_normalize",
                              spec, c, (long long)train->n, s[c], m[c]);
            return LC_ERR(LC_ERR_INVALID,
                          "%s: the %lld training examples have std %g (mean %g): cannot normalise; use "
                          "no_normalize",
                          spec, (long long)train->n, s[c], m[c]);
        }
    }
    lc_dataset *all[3] = {train, val, test};
    for (int k = 0; k < 3; k++) {
        if (!all[k] || all[k]->n == 0) continue;
        if (o->per_channel)
            lc_dataset_normalize_per_channel(all[k], m, s);
        else
            lc_dataset_normalize(all[k], m[0], s[0]);
    }
    return LC_OK;
}

lc_status lc_data_open3(const char *spec, const lc_data_opts *opts, lc_dataset *train, lc_dataset *val,
                        lc_dataset *test, lc_data_info *info, char *desc, size_t desc_len)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (val) memset(val, 0, sizeof *val);
    if (info) memset(info, 0, sizeof *info);
    if (desc && desc_len) desc[0] = 0;
    lc_data_opts o = {0};
    if (opts) o = *opts;
    LC_TRY(check_open_opts(spec, &o, val));

    lc_status st = LC_OK;
    char drawn[160] = "", source[96] = "";
    bool fixed = true; /* a loader with its own train/test split (subsets drawn from train) */
    LC_TRY(load_spec(spec, &o, train, val, test, info, drawn, sizeof drawn, source, sizeof source, &fixed));
    if (fixed && (st = draw_fixed(spec, &o, train, test, drawn, sizeof drawn)) != LC_OK) goto fail;

    char tested[64] = "";
    if (o.test_subset > 0)
        snprintf(tested, sizeof tested, " (%lld drawn from %lld)", (long long)o.test_subset, (long long)test->n);
    st = apply_test_subset(test, o.test_subset, o.seed, spec);
    if (st != LC_OK) goto fail;

    char vald[96] = "";
    if (o.val_split > 0 && (st = split_validation(spec, &o, train, val, vald, sizeof vald)) != LC_OK) goto fail;

    double m[LC_DATA_MAX_CHANNELS] = {0}, s[LC_DATA_MAX_CHANNELS] = {1, 1, 1, 1};
    int nstats = 1;
    if ((st = normalise_splits(spec, &o, train, val, test, m, s, &nstats)) != LC_OK) goto fail;
    if (info) {
        info->nstats = nstats;
        for (int c = 0; c < nstats; c++) {
            info->mean[c] = m[c];
            info->std[c] = s[c];
        }
    }
    if (desc && desc_len)
        snprintf(desc, desc_len, "%s: %lld train%s%s, %lld test%s, %dx%dx%d, %d classes%s%s", spec,
                 (long long)train->n, drawn, vald, (long long)test->n, tested, train->c, train->h, train->w,
                 train->classes, o.no_normalize ? ", not normalised" : o.per_channel ? ", per-channel normalised" : "",
                 source);
    return LC_OK;

fail:
    return open_fail(train, val, test, st);
}

lc_status lc_data_open(const char *spec, const lc_data_opts *opts, lc_dataset *train, lc_dataset *test,
                       double *mean, double *std, char *desc, size_t desc_len)
{
    lc_data_info info;
    lc_status st = lc_data_open3(spec, opts, train, NULL, test, &info, desc, desc_len);
    if (st != LC_OK) return st;
    if (mean) *mean = info.mean[0];
    if (std) *std = info.std[0];
    return LC_OK;
}

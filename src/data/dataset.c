/* Data sets in memory: allocation, seeded subsetting, normalisation, and the
 * spec strings ("mnist:DIR", "idx:IMAGES,LABELS") that tie loaders together. */
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

void lc_dataset_deinit(lc_dataset *d)
{
    if (!d) return;
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
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

static lc_status apply_test_subset(lc_dataset *test, int64_t k, const char *spec)
{
    if (k <= 0) return LC_OK;
    if (k > test->n)
        return LC_ERR(LC_ERR_INVALID, "%s: test_subset = %lld exceeds the %lld test examples", spec, (long long)k,
                      (long long)test->n);
    lc_dataset head;
    LC_TRY(lc_dataset_head(test, k, &head));
    lc_dataset_deinit(test);
    *test = head;
    return LC_OK;
}

/* Highest label + 1 (the class count of an idx pool when not given). */
static int infer_classes(const lc_dataset *d)
{
    int32_t m = 0;
    for (int64_t i = 0; i < d->n; i++) m = LC_MAX(m, d->y[i]);
    return (int)m + 1;
}

static const char *const KNOWN_KINDS = "mnist:DIR, idx:IMAGES,LABELS";

lc_status lc_data_open(const char *spec, const lc_data_opts *opts, lc_dataset *train, lc_dataset *test,
                       double *mean, double *std, char *desc, size_t desc_len)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (desc && desc_len) desc[0] = 0;
    lc_data_opts o = {0};
    if (opts) o = *opts;
    if (!spec) return LC_ERR(LC_ERR_INVALID, "no data spec given (known kinds: %s)", KNOWN_KINDS);
    if (o.per_class < 0 || o.train_subset < 0 || o.test_subset < 0 || o.classes < 0 || o.classes > 256)
        return LC_ERR(LC_ERR_INVALID,
                      "%s: invalid options per_class=%d train_subset=%lld test_subset=%lld classes=%d", spec,
                      o.per_class, (long long)o.train_subset, (long long)o.test_subset, o.classes);
    if (o.per_class > 0 && o.train_subset > 0)
        return LC_ERR(LC_ERR_INVALID, "%s: per_class (%d) and train_subset (%lld) are exclusive; set one", spec,
                      o.per_class, (long long)o.train_subset);

    lc_status st = LC_OK;
    char drawn[160] = "";
    if (strncmp(spec, "mnist:", 6) == 0) {
        const char *dir = spec + 6;
        if (!*dir) return LC_ERR(LC_ERR_INVALID, "%s: empty folder (expected mnist:DIR)", spec);
        LC_TRY(lc_mnist_load_dir(dir, train, test));
        if (o.classes > 0) {
            /* The loader checked labels < 10; a smaller count must still hold them. */
            int need = LC_MAX(infer_classes(train), infer_classes(test));
            if (o.classes < need) {
                st = LC_ERR(LC_ERR_INVALID, "%s: classes = %d but the labels go up to %d", spec, o.classes,
                            need - 1);
                goto fail;
            }
            train->classes = test->classes = o.classes;
        }
        if (o.per_class > 0 || o.train_subset > 0) {
            int64_t pool = train->n;
            st = draw_into(train, &o, spec, NULL);
            if (st != LC_OK) goto fail;
            if (o.per_class > 0)
                snprintf(drawn, sizeof drawn, " (%d per class of %lld, seed %llu)", o.per_class, (long long)pool,
                         (unsigned long long)o.seed);
            else
                snprintf(drawn, sizeof drawn, " (random subset of %lld, seed %llu)", (long long)pool,
                         (unsigned long long)o.seed);
        }
    } else if (strncmp(spec, "idx:", 4) == 0) {
        const char *args = spec + 4, *comma = strchr(args, ',');
        if (!comma || comma == args || !comma[1] || strchr(comma + 1, ','))
            return LC_ERR(LC_ERR_INVALID, "%s: expected idx:IMAGES,LABELS (two paths separated by one comma)", spec);
        if (o.per_class <= 0 && o.train_subset <= 0)
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
        st = lc_idx_load_pair(images, comma + 1, o.classes > 0 ? o.classes : 256, &pool);
        free(images);
        if (st != LC_OK) return st;
        pool.classes = o.classes > 0 ? o.classes : infer_classes(&pool);
        st = draw_into(&pool, &o, spec, test);
        if (st != LC_OK) {
            lc_dataset_deinit(&pool);
            goto fail;
        }
        *train = pool;
        if (test->n == 0) {
            st = LC_ERR(LC_ERR_INVALID, "%s: drawing %lld training examples leaves no test examples in the pool",
                        spec, (long long)train->n);
            goto fail;
        }
        if (o.per_class > 0)
            snprintf(drawn, sizeof drawn, " (%d per class from a pool of %lld, seed %llu)", o.per_class,
                     (long long)(train->n + test->n), (unsigned long long)o.seed);
        else
            snprintf(drawn, sizeof drawn, " (random subset of a pool of %lld, seed %llu)",
                     (long long)(train->n + test->n), (unsigned long long)o.seed);
    } else {
        const char *colon = strchr(spec, ':');
        return LC_ERR(LC_ERR_INVALID, "%s: unknown data spec kind '%.*s' (known kinds: %s)", spec,
                      colon ? (int)(colon - spec) : (int)strlen(spec), spec, KNOWN_KINDS);
    }

    char tested[64] = "";
    if (o.test_subset > 0)
        snprintf(tested, sizeof tested, " (first %lld of %lld)", (long long)o.test_subset, (long long)test->n);
    st = apply_test_subset(test, o.test_subset, spec);
    if (st != LC_OK) goto fail;

    double m = 0, s = 1;
    if (!o.no_normalize) {
        lc_dataset_stats(train, &m, &s);
        if (!(s > 1e-12) || !isfinite(m)) {
            st = LC_ERR(LC_ERR_INVALID,
                        "%s: the %lld training examples have std %g (mean %g): cannot normalise; use no_normalize",
                        spec, (long long)train->n, s, m);
            goto fail;
        }
        lc_dataset_normalize(train, m, s);
        lc_dataset_normalize(test, m, s);
    }
    if (mean) *mean = m;
    if (std) *std = s;
    if (desc && desc_len)
        snprintf(desc, desc_len, "%s: %lld train%s, %lld test%s, %dx%dx%d, %d classes%s", spec,
                 (long long)train->n, drawn, (long long)test->n, tested, train->c, train->h, train->w, train->classes,
                 o.no_normalize ? ", not normalised" : "");
    return LC_OK;

fail:
    lc_dataset_deinit(train);
    lc_dataset_deinit(test);
    return st;
}

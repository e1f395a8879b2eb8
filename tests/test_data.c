/* Tests for the data module: idx parsing (raw and gzip), specs, seeded draws,
 * normalisation, batching, and broken-data messages.  Data files are
 * generated in the official idx format in a temp folder. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include <zlib.h>

#include "lc_data.h"
#include "lc_test.h"

/* ---- helpers ---- */

#define ASSERT_MSG_HAS(sub)                                                                              \
    ck_assert_msg(strstr(lc_error_message(), (sub)) != NULL, "error message \"%s\" lacks \"%s\"",          \
                  lc_error_message(), (sub))

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Pixel k of image i: bytes 0 and 1 encode i (so a draw can be traced back to
 * its pool index); the rest is a pattern that spans 0..255. */
static uint8_t pixel(int i, int k)
{
    if (k == 0) return (uint8_t)(i & 255);
    if (k == 1) return (uint8_t)(i >> 8);
    return (uint8_t)((i * 31 + k * 7) % 256);
}

static int label_of(int i) { return (i * 3 + i / 10) % 10; }

/* idx3 image file bytes: magic, n, h, w, pixels. */
static uint8_t *images_bytes(uint32_t n, uint32_t h, uint32_t w, size_t *len)
{
    *len = 16 + (size_t)n * h * w;
    uint8_t *b = malloc(*len);
    ck_assert_ptr_nonnull(b);
    put_be32(b, 0x00000803);
    put_be32(b + 4, n);
    put_be32(b + 8, h);
    put_be32(b + 12, w);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < h * w; k++) b[16 + (size_t)i * h * w + k] = pixel((int)i, (int)k);
    return b;
}

/* idx1 label file bytes: magic, n, labels. */
static uint8_t *labels_bytes(uint32_t n, size_t *len)
{
    *len = 8 + (size_t)n;
    uint8_t *b = malloc(*len);
    ck_assert_ptr_nonnull(b);
    put_be32(b, 0x00000801);
    put_be32(b + 4, n);
    for (uint32_t i = 0; i < n; i++) b[8 + i] = (uint8_t)label_of((int)i);
    return b;
}

static void write_raw(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(b, 1, len, f), len);
    fclose(f);
}

/* mode "wb" writes one gzip member, "ab" appends another. */
static void write_gz_mode(const char *path, const uint8_t *b, size_t len, const char *mode)
{
    gzFile g = gzopen(path, mode);
    ck_assert_msg(g != NULL, "cannot gzopen %s", path);
    ck_assert_int_eq(gzwrite(g, b, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(g), Z_OK);
}

static void write_gz(const char *path, const uint8_t *b, size_t len) { write_gz_mode(path, b, len, "wb"); }

static uint8_t *read_all(const char *path, size_t *len)
{
    uint8_t *b;
    ck_assert_int_eq(lc_file_read(path, &b, len), LC_OK);
    return b;
}

/* A fresh folder under the test temp folder. */
static const char *make_dir(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", lc_test_tmpdir(), name);
    mkdir(buf, 0755);
    return buf;
}

static const char *join(char *buf, size_t cap, const char *dir, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

/* Writes an idx image/label pair of n examples (h x w) as dir/base{-images,-labels}. */
static void write_pair(const char *dir, const char *img_name, const char *lab_name, uint32_t n, uint32_t h,
                       uint32_t w, bool gz)
{
    char p[1024];
    size_t il, ll;
    uint8_t *ib = images_bytes(n, h, w, &il), *lb = labels_bytes(n, &ll);
    (gz ? write_gz : write_raw)(join(p, sizeof p, dir, img_name), ib, il);
    (gz ? write_gz : write_raw)(join(p, sizeof p, dir, lab_name), lb, ll);
    free(ib);
    free(lb);
}

/* An MNIST-style folder: train gzip (n_train), test raw (n_test), 5x4 images. */
static const char *make_mnist_dir(const char *name, char *buf, size_t cap, uint32_t n_train, uint32_t n_test)
{
    const char *dir = make_dir(name, buf, cap);
    write_pair(dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", n_train, 5, 4, true);
    write_pair(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", n_test, 5, 4, false);
    return dir;
}

/* Pool index of an un-normalised example (pixels 0 and 1 encode it). */
static int index_of(const lc_dataset *d, int64_t j)
{
    const float *x = d->x + j * lc_dataset_example_size(d);
    return (int)lroundf(x[0] * 255.0f) + 256 * (int)lroundf(x[1] * 255.0f);
}

static void stats_double(const lc_dataset *d, double *mean, double *std)
{
    size_t t = (size_t)d->n * (size_t)lc_dataset_example_size(d);
    double s = 0, v = 0;
    for (size_t i = 0; i < t; i++) s += d->x[i];
    double m = s / (double)t;
    for (size_t i = 0; i < t; i++) v += ((double)d->x[i] - m) * ((double)d->x[i] - m);
    *mean = m;
    *std = sqrt(v / (double)t);
}

/* ---- parsing ---- */

START_TEST(t_parse_roundtrip)
{
    size_t il, ll;
    uint8_t *ib = images_bytes(7, 5, 4, &il), *lb = labels_bytes(7, &ll);
    ib[16] = 0; /* make sure the extremes are present */
    ib[17] = 255;
    lc_dataset d;
    ck_assert_int_eq(lc_idx_parse_images(ib, il, "mem-images", &d), LC_OK);
    ck_assert_int_eq(d.n, 7);
    ck_assert_int_eq(d.c, 1);
    ck_assert_int_eq(d.h, 5);
    ck_assert_int_eq(d.w, 4);
    ck_assert_int_eq(lc_dataset_example_size(&d), 20);
    ck_assert_ptr_null(d.y);
    for (size_t i = 0; i < 7 * 20; i++) ck_assert_float_eq(d.x[i], (float)ib[16 + i] / 255.0f);
    ck_assert_float_eq(d.x[0], 0.0f);
    ck_assert_float_eq(d.x[1], 1.0f);

    int32_t *y;
    int64_t n;
    ck_assert_int_eq(lc_idx_parse_labels(lb, ll, "mem-labels", &y, &n), LC_OK);
    ck_assert_int_eq(n, 7);
    for (int i = 0; i < 7; i++) ck_assert_int_eq(y[i], label_of(i));
    free(y);
    lc_dataset_deinit(&d);
    lc_dataset_deinit(&d); /* idempotent */
    lc_dataset_deinit(NULL);
    free(ib);
    free(lb);
}
END_TEST

START_TEST(t_gzip_equals_raw)
{
    char db[512], a[1024], b[1024], c[1024], e[1024];
    const char *dir = make_dir("gz_vs_raw", db, sizeof db);
    write_pair(dir, "raw-images", "raw-labels", 33, 7, 3, false);
    write_pair(dir, "gz-images.gz", "gz-labels.gz", 33, 7, 3, true);
    lc_dataset r, g;
    ck_assert_int_eq(lc_idx_load_pair(join(a, sizeof a, dir, "raw-images"), join(b, sizeof b, dir, "raw-labels"), 10, &r),
                     LC_OK);
    ck_assert_int_eq(lc_idx_load_pair(join(a, sizeof a, dir, "gz-images.gz"), join(b, sizeof b, dir, "gz-labels.gz"), 10,
                                      &g),
                     LC_OK);
    ck_assert_int_eq(r.n, 33);
    ck_assert_int_eq(g.n, r.n);
    ck_assert_int_eq(g.h, 7);
    ck_assert_int_eq(g.w, 3);
    ck_assert_int_eq(g.classes, 10);
    ck_assert_int_eq(memcmp(r.x, g.x, 33 * 21 * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(r.y, g.y, 33 * sizeof(int32_t)), 0);

    /* Several gzip members back to back (as `cat a.gz b.gz` makes) read as one stream. */
    size_t il;
    uint8_t *ib = images_bytes(33, 7, 3, &il);
    join(c, sizeof c, dir, "multi-images.gz");
    write_gz_mode(c, ib, 100, "wb");
    write_gz_mode(c, ib + 100, il - 100, "ab");
    lc_dataset m;
    ck_assert_int_eq(lc_idx_load_pair(c, join(e, sizeof e, dir, "raw-labels"), 10, &m), LC_OK);
    ck_assert_int_eq(memcmp(r.x, m.x, 33 * 21 * sizeof(float)), 0);
    free(ib);
    lc_dataset_deinit(&r);
    lc_dataset_deinit(&g);
    lc_dataset_deinit(&m);
}
END_TEST

/* ---- specs, normalisation, draws ---- */

START_TEST(t_mnist_dir_normalise)
{
    char db[512], desc[512], spec[600];
    const char *dir = make_mnist_dir("mnist_ok", db, sizeof db, 60, 25);
    snprintf(spec, sizeof spec, "mnist:%s", dir);

    lc_dataset raw_tr, raw_te, tr, te;
    lc_data_opts raw_opts = {.no_normalize = true};
    double m0, s0, m, s;
    ck_assert_int_eq(lc_data_open(spec, &raw_opts, &raw_tr, &raw_te, &m0, &s0, NULL, 0), LC_OK);
    ck_assert(m0 == 0.0 && s0 == 1.0);
    ck_assert_int_eq(raw_tr.n, 60);
    ck_assert_int_eq(raw_te.n, 25);

    ck_assert_int_eq(lc_data_open(spec, NULL, &tr, &te, &m, &s, desc, sizeof desc), LC_OK);
    char want[700];
    snprintf(want, sizeof want, "%s: 60 train, 25 test, 1x5x4, 10 classes", spec);
    ck_assert_str_eq(desc, want);

    /* The stored mean/std are those of the raw training data... */
    double rm, rs;
    stats_double(&raw_tr, &rm, &rs);
    ck_assert_double_eq_tol(m, rm, 1e-12);
    ck_assert_double_eq_tol(s, rs, 1e-12);
    /* ...the training data is now mean 0 / std 1... */
    double tm, ts;
    stats_double(&tr, &tm, &ts);
    ck_assert_double_eq_tol(tm, 0.0, 1e-6);
    ck_assert_double_eq_tol(ts, 1.0, 1e-5);
    /* ...and the test split used the same transform. */
    for (int64_t i = 0; i < te.n * 20; i++)
        ck_assert_double_eq_tol(te.x[i], (raw_te.x[i] - m) / s, 1e-5);
    ck_assert_int_eq(memcmp(te.y, raw_te.y, 25 * sizeof(int32_t)), 0);

    lc_dataset_deinit(&raw_tr);
    lc_dataset_deinit(&raw_te);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
}
END_TEST

START_TEST(t_mnist_subsets)
{
    char db[512], spec[600];
    const char *dir = make_mnist_dir("mnist_sub", db, sizeof db, 60, 25);
    snprintf(spec, sizeof spec, "mnist:%s", dir);
    lc_dataset tr, te;
    lc_data_opts o = {.train_subset = 13, .test_subset = 7, .seed = 5, .no_normalize = true};
    char desc[800];
    ck_assert_int_eq(lc_data_open(spec, &o, &tr, &te, NULL, NULL, desc, sizeof desc), LC_OK);
    ck_assert_msg(strstr(desc, ": 13 train (random subset of 60, seed 5), 7 test (first 7 of 25), 1x5x4, 10 classes, "
                               "not normalised"),
                  "desc: %s", desc);
    ck_assert_int_eq(tr.n, 13);
    ck_assert_int_eq(te.n, 7);
    for (int64_t j = 0; j < te.n; j++) ck_assert_int_eq(index_of(&te, j), (int)j); /* first N */
    for (int64_t j = 1; j < tr.n; j++) ck_assert_int_lt(index_of(&tr, j - 1), index_of(&tr, j));
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);

    lc_data_opts pc = {.per_class = 3, .seed = 5};
    ck_assert_int_eq(lc_data_open(spec, &pc, &tr, &te, NULL, NULL, NULL, 0), LC_OK);
    ck_assert_int_eq(tr.n, 30);
    ck_assert_int_eq(te.n, 25);
    int count[10] = {0};
    for (int64_t j = 0; j < tr.n; j++) count[tr.y[j]]++;
    for (int c = 0; c < 10; c++) ck_assert_int_eq(count[c], 3);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
}
END_TEST

/* Writes the 200-example pool once and returns its idx: spec. */
static const char *pool_spec(void)
{
    static char spec[2100];
    if (!spec[0]) {
        char db[512], a[1024], b[1024];
        const char *dir = make_dir("pool", db, sizeof db);
        /* images gzip, labels raw: both kinds in one spec */
        size_t il, ll;
        uint8_t *ib = images_bytes(200, 3, 3, &il), *lb = labels_bytes(200, &ll);
        write_gz(join(a, sizeof a, dir, "pool-images.gz"), ib, il);
        write_raw(join(b, sizeof b, dir, "pool-labels"), lb, ll);
        free(ib);
        free(lb);
        snprintf(spec, sizeof spec, "idx:%s,%s", a, b);
    }
    return spec;
}

static int pool_class_count(int c)
{
    int k = 0;
    for (int i = 0; i < 200; i++) k += label_of(i) == c;
    return k;
}

/* Pool indices of the examples of d, in order. */
static void indices(const lc_dataset *d, int *out)
{
    for (int64_t j = 0; j < d->n; j++) out[j] = index_of(d, j);
}

START_TEST(t_per_class_draw)
{
    const char *spec = pool_spec();
    lc_dataset tr, te;
    lc_data_opts o = {.per_class = 5, .seed = 42, .no_normalize = true};
    char desc[2400];
    ck_assert_int_eq(lc_data_open(spec, &o, &tr, &te, NULL, NULL, desc, sizeof desc), LC_OK);
    ck_assert_msg(strstr(desc, ": 50 train (5 per class from a pool of 200, seed 42), 150 test, 1x3x3, 10 classes"),
                  "desc: %s", desc);
    ck_assert_int_eq(tr.n, 50);
    ck_assert_int_eq(tr.classes, 10);
    int count[10] = {0}, first[50], again[50], other[50];
    for (int64_t j = 0; j < tr.n; j++) count[tr.y[j]]++;
    for (int c = 0; c < 10; c++) ck_assert_int_eq(count[c], 5);
    indices(&tr, first);
    for (int j = 0; j < 50; j++) ck_assert_int_eq(tr.y[j], label_of(first[j])); /* labels travel with images */
    for (int j = 1; j < 50; j++) ck_assert_int_lt(first[j - 1], first[j]);     /* pool order kept */
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);

    /* Same seed: same draw.  Another seed: another draw. */
    ck_assert_int_eq(lc_data_open(spec, &o, &tr, &te, NULL, NULL, NULL, 0), LC_OK);
    indices(&tr, again);
    ck_assert_int_eq(memcmp(first, again, sizeof first), 0);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
    o.seed = 43;
    ck_assert_int_eq(lc_data_open(spec, &o, &tr, &te, NULL, NULL, NULL, 0), LC_OK);
    ck_assert_int_eq(tr.n, 50);
    indices(&tr, other);
    ck_assert_int_ne(memcmp(first, other, sizeof first), 0);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
}
END_TEST

/* Train and test indices are disjoint, ordered, and cover the pool. */
static void check_split(const lc_dataset *tr, const lc_dataset *te)
{
    ck_assert_int_eq(tr->n + te->n, 200);
    int seen[200] = {0}, idx[200];
    indices(tr, idx);
    for (int64_t j = 0; j < tr->n; j++) {
        ck_assert(j == 0 || idx[j - 1] < idx[j]);
        seen[idx[j]]++;
    }
    indices(te, idx);
    for (int64_t j = 0; j < te->n; j++) {
        ck_assert(j == 0 || idx[j - 1] < idx[j]);
        ck_assert_int_eq(te->y[j], label_of(idx[j]));
        seen[idx[j]]++;
    }
    for (int i = 0; i < 200; i++) ck_assert_int_eq(seen[i], 1);
}

START_TEST(t_idx_pool_split)
{
    const char *spec = pool_spec();
    lc_dataset tr, te;
    lc_data_opts o = {.per_class = 7, .seed = 1, .no_normalize = true};
    ck_assert_int_eq(lc_data_open(spec, &o, &tr, &te, NULL, NULL, NULL, 0), LC_OK);
    ck_assert_int_eq(tr.n, 70);
    ck_assert_int_eq(te.n, 130);
    check_split(&tr, &te);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);

    lc_data_opts s = {.train_subset = 37, .seed = 9, .no_normalize = true};
    ck_assert_int_eq(lc_data_open(spec, &s, &tr, &te, NULL, NULL, NULL, 0), LC_OK);
    ck_assert_int_eq(tr.n, 37);
    check_split(&tr, &te);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);

    /* Normalised: the kept training examples have mean 0 / std 1. */
    lc_data_opts nrm = {.per_class = 7, .seed = 1};
    double m, sd, tm, ts;
    ck_assert_int_eq(lc_data_open(spec, &nrm, &tr, &te, &m, &sd, NULL, 0), LC_OK);
    stats_double(&tr, &tm, &ts);
    ck_assert_double_eq_tol(tm, 0.0, 1e-6);
    ck_assert_double_eq_tol(ts, 1.0, 1e-5);
    ck_assert(m > 0 && sd > 0);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
}
END_TEST

/* ---- batching ---- */

static void make_seq(lc_dataset *d, int64_t n)
{
    ck_assert_int_eq(lc_dataset_alloc(d, n, 3, 1, 1, (int)n), LC_OK);
    for (int64_t i = 0; i < n; i++) {
        d->y[i] = (int32_t)i;
        for (int k = 0; k < 3; k++) d->x[i * 3 + k] = (float)i + 0.25f * (float)k;
    }
}

/* Runs the rest of the epoch; fills order[] with the labels seen; checks batch sizes and that x matches y. */
static int64_t run_epoch(lc_batcher *b, int32_t *order, int batch)
{
    float x[64 * 3];
    int32_t y[64];
    int64_t total = 0;
    for (;;) {
        int64_t left = b->epoch == 0 ? b->d->n : b->d->n - b->pos;
        int count = lc_batcher_next(b, x, y);
        ck_assert_int_eq(count, left < batch ? left : batch);
        if (count == 0) break;
        for (int k = 0; k < count; k++) {
            for (int j = 0; j < 3; j++) ck_assert_float_eq(x[k * 3 + j], (float)y[k] + 0.25f * (float)j);
            order[total + k] = y[k];
        }
        total += count;
    }
    ck_assert_int_eq(lc_batcher_next(b, x, y), 0); /* stays exhausted */
    return total;
}

static void check_permutation(const int32_t *order, int64_t n)
{
    int seen[64] = {0};
    for (int64_t i = 0; i < n; i++) {
        ck_assert(order[i] >= 0 && order[i] < n);
        seen[order[i]]++;
    }
    for (int64_t i = 0; i < n; i++) ck_assert_int_eq(seen[i], 1);
}

START_TEST(t_batcher_shuffle)
{
    lc_dataset d;
    make_seq(&d, 23);
    lc_batcher b;
    ck_assert_int_eq(lc_batcher_init(&b, &d, 5, true, 77), LC_OK);
    int32_t e1[23], e2[23];
    lc_batcher_begin_epoch(&b);
    ck_assert_int_eq(run_epoch(&b, e1, 5), 23);
    check_permutation(e1, 23);
    lc_batcher_begin_epoch(&b);
    ck_assert_int_eq(run_epoch(&b, e2, 5), 23);
    check_permutation(e2, 23);
    ck_assert_int_eq(b.epoch, 2);
    ck_assert_int_ne(memcmp(e1, e2, sizeof e1), 0); /* reshuffled */
    int in_order = 1;
    for (int i = 0; i < 23; i++) in_order &= e1[i] == i;
    ck_assert(!in_order);

    /* Same seed, same epochs. */
    lc_batcher c;
    ck_assert_int_eq(lc_batcher_init(&c, &d, 5, true, 77), LC_OK);
    int32_t f1[23];
    ck_assert_int_eq(run_epoch(&c, f1, 5), 23); /* next() starts epoch 1 by itself */
    ck_assert_int_eq(c.epoch, 1);
    ck_assert_int_eq(memcmp(e1, f1, sizeof e1), 0);
    lc_batcher_deinit(&b);
    lc_batcher_deinit(&c);
    lc_batcher_deinit(&c);
    lc_dataset_deinit(&d);
}
END_TEST

START_TEST(t_batcher_in_order)
{
    lc_dataset d;
    make_seq(&d, 23);
    lc_batcher b;
    int32_t o[23];
    /* batch 5: 5,5,5,5,3 (run_epoch checks the partial last batch) */
    ck_assert_int_eq(lc_batcher_init(&b, &d, 5, false, 1), LC_OK);
    for (int e = 0; e < 2; e++) {
        lc_batcher_begin_epoch(&b);
        ck_assert_int_eq(run_epoch(&b, o, 5), 23);
        for (int i = 0; i < 23; i++) ck_assert_int_eq(o[i], i);
    }
    lc_batcher_deinit(&b);
    /* a batch larger than the data set: one partial batch */
    ck_assert_int_eq(lc_batcher_init(&b, &d, 64, false, 1), LC_OK);
    float x[64 * 3];
    int32_t y[64];
    lc_batcher_begin_epoch(&b);
    ck_assert_int_eq(lc_batcher_next(&b, x, y), 23);
    ck_assert_int_eq(lc_batcher_next(&b, x, y), 0);
    lc_batcher_deinit(&b);
    /* bad arguments */
    ck_assert_int_eq(lc_batcher_init(&b, &d, 0, false, 1), LC_ERR_INVALID);
    ASSERT_MSG_HAS("batch size 0");
    lc_dataset_deinit(&d);
}
END_TEST

START_TEST(t_batcher_resume)
{
    lc_dataset d;
    make_seq(&d, 23);
    lc_batcher a, r;
    ck_assert_int_eq(lc_batcher_init(&a, &d, 4, true, 3), LC_OK);
    float x[64 * 3];
    int32_t y[64], rest_a[23], rest_r[23];
    lc_batcher_begin_epoch(&a);
    lc_batcher_begin_epoch(&a);
    ck_assert_int_eq(lc_batcher_next(&a, x, y), 4);
    ck_assert_int_eq(lc_batcher_next(&a, x, y), 4);

    /* Save the plain-data state and restore it into a fresh batcher. */
    ck_assert_int_eq(lc_batcher_init(&r, &d, 4, true, 999), LC_OK);
    r.rng = a.rng;
    r.pos = a.pos;
    r.epoch = a.epoch;
    memcpy(r.order, a.order, 23 * sizeof(int32_t));
    ck_assert_int_eq(lc_batcher_check(&r), LC_OK);
    for (int e = 0; e < 2; e++) {
        int64_t na = run_epoch(&a, rest_a, 4), nr = run_epoch(&r, rest_r, 4);
        ck_assert_int_eq(na, nr);
        ck_assert_int_eq(memcmp(rest_a, rest_r, (size_t)na * sizeof(int32_t)), 0);
        lc_batcher_begin_epoch(&a);
        lc_batcher_begin_epoch(&r);
    }
    ck_assert_int_eq(a.epoch, 4);

    /* A corrupt restored order is caught. */
    r.order[5] = r.order[6];
    ck_assert_int_eq(lc_batcher_check(&r), LC_ERR_INVALID);
    ASSERT_MSG_HAS("not a permutation");
    lc_batcher_deinit(&a);
    lc_batcher_deinit(&r);
    lc_dataset_deinit(&d);
}
END_TEST

/* ---- broken data ---- */

START_TEST(t_bad_magic)
{
    size_t il, ll;
    uint8_t *ib = images_bytes(3, 2, 2, &il), *lb = labels_bytes(3, &ll);
    lc_dataset d;
    ck_assert_int_eq(lc_idx_parse_images(lb, ll, "/x/train-images-idx3-ubyte.gz", &d), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("/x/train-images-idx3-ubyte.gz: idx magic 0x00000801 is not an image file (expected 0x00000803)");
    ck_assert_ptr_null(d.x);
    int32_t *y;
    int64_t n;
    ck_assert_int_eq(lc_idx_parse_labels(ib, il, "lab", &y, &n), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("lab: idx magic 0x00000803 is not a label file (expected 0x00000801)");
    ck_assert_ptr_null(y);
    /* not idx at all, and empty */
    const uint8_t png[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    ck_assert_int_eq(lc_idx_parse_images(png, sizeof png, "pic.png", &d), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("idx magic 0x89504e47");
    ck_assert_int_eq(lc_idx_parse_images(png, 0, "empty", &d), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("empty: empty file");
    ck_assert_int_eq(lc_idx_parse_images(ib, 10, "short", &d), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("short: idx header is truncated (10 of 16 bytes)");
    free(ib);
    free(lb);
}
END_TEST

START_TEST(t_truncated_raw)
{
    char db[512], a[1024], b[1024];
    const char *dir = make_dir("trunc_raw", db, sizeof db);
    size_t il, ll;
    uint8_t *ib = images_bytes(10, 4, 4, &il), *lb = labels_bytes(10, &ll);
    ck_assert_uint_eq(il, 176);
    write_raw(join(a, sizeof a, dir, "images"), ib, il - 9);
    write_raw(join(b, sizeof b, dir, "labels"), lb, ll);
    lc_dataset d;
    ck_assert_int_eq(lc_idx_load_pair(a, b, 10, &d), LC_ERR_FORMAT);
    ASSERT_MSG_HAS(a);
    ASSERT_MSG_HAS("truncated: header declares 10 images (160 bytes of data, file size 176) but the file has 167");
    /* one byte too many is also an error */
    uint8_t *lb2 = malloc(ll + 1);
    memcpy(lb2, lb, ll);
    lb2[ll] = 0;
    int32_t *y;
    int64_t n;
    ck_assert_int_eq(lc_idx_parse_labels(lb2, ll + 1, "long-labels", &y, &n), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("long-labels: too long: header declares 10 labels (10 bytes of data, file size 18) but the file has 19");
    free(lb2);
    free(ib);
    free(lb);
}
END_TEST

START_TEST(t_truncated_gzip)
{
    char db[512], a[1024];
    const char *dir = make_dir("trunc_gz", db, sizeof db);
    size_t il, gl;
    uint8_t *ib = images_bytes(50, 6, 6, &il);
    write_gz(join(a, sizeof a, dir, "images.gz"), ib, il);
    uint8_t *gz = read_all(a, &gl);
    lc_dataset d;
    ck_assert_int_eq(lc_idx_parse_images(gz, gl, "img.gz", &d), LC_OK);
    lc_dataset_deinit(&d);
    /* cut in the middle of the deflate data */
    ck_assert_int_eq(lc_idx_parse_images(gz, gl / 2, "half.gz", &d), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("half.gz: gzip stream is truncated");
    ck_assert_ptr_null(d.x);
    /* cut inside the 8-byte trailer: all pixels arrive, the CRC does not */
    ck_assert_int_eq(lc_idx_parse_images(gz, gl - 3, "trailer.gz", &d), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("trailer.gz: gzip stream is truncated");
    /* a corrupt byte in the stream */
    uint8_t *bad = malloc(gl);
    memcpy(bad, gz, gl);
    for (size_t i = 20; i < 30; i++) bad[i] ^= 0x5a;
    ck_assert_int_eq(lc_idx_parse_images(bad, gl, "bad.gz", &d), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("bad.gz: ");
    ASSERT_MSG_HAS("gzip");
    /* a flipped CRC */
    memcpy(bad, gz, gl);
    bad[gl - 6] ^= 1;
    ck_assert_int_eq(lc_idx_parse_images(bad, gl, "crc.gz", &d), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("crc.gz: corrupt gzip stream");
    ASSERT_MSG_HAS("incorrect data check");
    /* a valid gzip of a truncated idx file: decompressed size is checked */
    write_gz(a, ib, il - 36);
    free(gz);
    gz = read_all(a, &gl);
    ck_assert_int_eq(lc_idx_parse_images(gz, gl, "short.gz", &d), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("short.gz: truncated: header declares 50 images (1800 bytes of data, 1816 decompressed) but the gzip data holds 1780");
    free(bad);
    free(gz);
    free(ib);
}
END_TEST

START_TEST(t_label_out_of_range)
{
    char db[512], a[1024], b[1024];
    const char *dir = make_dir("label_range", db, sizeof db);
    size_t il, ll;
    uint8_t *ib = images_bytes(6, 2, 2, &il), *lb = labels_bytes(6, &ll);
    lb[8 + 3] = 12;
    write_raw(join(a, sizeof a, dir, "images"), ib, il);
    write_gz(join(b, sizeof b, dir, "labels.gz"), lb, ll);
    lc_dataset d;
    ck_assert_int_eq(lc_idx_load_pair(a, b, 10, &d), LC_ERR_FORMAT);
    ASSERT_MSG_HAS(b);
    ASSERT_MSG_HAS("label 12 at index 3 is out of range (classes = 10)");
    ck_assert_ptr_null(d.x);
    ck_assert_int_eq(lc_idx_load_pair(a, b, 13, &d), LC_OK);
    lc_dataset_deinit(&d);
    free(ib);
    free(lb);
}
END_TEST

START_TEST(t_count_mismatch)
{
    char db[512], a[1024], b[1024], want[2200];
    const char *dir = make_dir("mismatch", db, sizeof db);
    size_t il, ll;
    uint8_t *ib = images_bytes(7, 2, 2, &il), *lb = labels_bytes(6, &ll);
    write_raw(join(a, sizeof a, dir, "images"), ib, il);
    write_raw(join(b, sizeof b, dir, "labels"), lb, ll);
    lc_dataset d;
    ck_assert_int_eq(lc_idx_load_pair(a, b, 10, &d), LC_ERR_FORMAT);
    snprintf(want, sizeof want, "%s has 7 images but %s has 6 labels", a, b);
    ASSERT_MSG_HAS(want);
    free(ib);
    free(lb);
}
END_TEST

START_TEST(t_missing_file)
{
    char db[512], p[1024], spec[600];
    const char *dir = make_mnist_dir("mnist_missing", db, sizeof db, 10, 10);
    remove(join(p, sizeof p, dir, "t10k-labels-idx1-ubyte"));
    snprintf(spec, sizeof spec, "mnist:%s", dir);
    lc_dataset tr, te;
    ck_assert_int_eq(lc_data_open(spec, NULL, &tr, &te, NULL, NULL, NULL, 0), LC_ERR_NOT_FOUND);
    ASSERT_MSG_HAS("missing t10k-labels-idx1-ubyte");
    ASSERT_MSG_HAS(dir);
    ck_assert_ptr_null(tr.x);
    ck_assert_int_eq(lc_mnist_load_dir("/nonexistent/layca-data", &tr, &te), LC_ERR_NOT_FOUND);
    ASSERT_MSG_HAS("/nonexistent/layca-data: cannot open data folder");
    ck_assert_int_eq(lc_idx_load_pair("/nonexistent/i", "/nonexistent/l", 10, &tr), LC_ERR_IO);
    ASSERT_MSG_HAS("/nonexistent/i: cannot open");
}
END_TEST

START_TEST(t_bad_specs)
{
    lc_dataset tr, te;
    ck_assert_int_eq(lc_data_open("cifar:/data/cifar", NULL, &tr, &te, NULL, NULL, NULL, 0), LC_ERR_INVALID);
    ASSERT_MSG_HAS("unknown data spec kind 'cifar'");
    ASSERT_MSG_HAS("mnist:DIR");
    ASSERT_MSG_HAS("idx:IMAGES,LABELS");
    ck_assert_int_eq(lc_data_open("justapath", NULL, &tr, &te, NULL, NULL, NULL, 0), LC_ERR_INVALID);
    ASSERT_MSG_HAS("unknown data spec kind");

    const char *spec = pool_spec();
    ck_assert_int_eq(lc_data_open(spec, NULL, &tr, &te, NULL, NULL, NULL, 0), LC_ERR_INVALID);
    ASSERT_MSG_HAS("needs per_class or train_subset");
    ck_assert_int_eq(lc_data_open("idx:/only/one/path", &(lc_data_opts){.per_class = 1}, &tr, &te, NULL, NULL, NULL, 0),
                     LC_ERR_INVALID);
    ASSERT_MSG_HAS("expected idx:IMAGES,LABELS");
    ck_assert_int_eq(lc_data_open(spec, &(lc_data_opts){.per_class = 1, .train_subset = 5}, &tr, &te, NULL, NULL, NULL, 0),
                     LC_ERR_INVALID);
    ASSERT_MSG_HAS("exclusive");

    /* more per class than the pool has */
    char want[128];
    ck_assert_int_eq(lc_data_open(spec, &(lc_data_opts){.per_class = 50}, &tr, &te, NULL, NULL, NULL, 0), LC_ERR_INVALID);
    snprintf(want, sizeof want, "class 0 has %d examples, fewer than per_class = 50", pool_class_count(0));
    ASSERT_MSG_HAS(want);
    ck_assert_ptr_null(tr.x);
    ck_assert_ptr_null(te.x);
    /* the whole pool drawn: no test split */
    ck_assert_int_eq(lc_data_open(spec, &(lc_data_opts){.train_subset = 200}, &tr, &te, NULL, NULL, NULL, 0),
                     LC_ERR_INVALID);
    ASSERT_MSG_HAS("leaves no test examples");
    ck_assert_int_eq(lc_data_open(spec, &(lc_data_opts){.train_subset = 201}, &tr, &te, NULL, NULL, NULL, 0),
                     LC_ERR_INVALID);
    ASSERT_MSG_HAS("train_subset = 201 must be in 1..200");
    ck_assert_int_eq(lc_data_open(spec, &(lc_data_opts){.train_subset = 20, .test_subset = 500}, &tr, &te, NULL, NULL,
                                  NULL, 0),
                     LC_ERR_INVALID);
    ASSERT_MSG_HAS("test_subset = 500 exceeds the 180 test examples");
}
END_TEST

START_TEST(t_zero_and_huge_headers)
{
    uint8_t h[16];
    put_be32(h, 0x00000803);
    put_be32(h + 4, 0);
    put_be32(h + 8, 28);
    put_be32(h + 12, 28);
    lc_dataset d;
    ck_assert_int_eq(lc_idx_parse_images(h, 16, "zero", &d), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("zero: header declares zero examples");
    put_be32(h + 4, 5);
    put_be32(h + 8, 0);
    ck_assert_int_eq(lc_idx_parse_images(h, 16, "flat", &d), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("invalid image size 0x28");
    /* A forged header declaring a huge set, gzip-compressed: rejected as
     * truncated without allocating what it declares. */
    put_be32(h + 4, 2000000000u);
    put_be32(h + 8, 28);
    uint8_t gz[256];
    uInt cap = sizeof gz;
    z_stream zs = {0};
    ck_assert_int_eq(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = h;
    zs.avail_in = 16;
    zs.next_out = gz;
    zs.avail_out = cap;
    ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t gl = cap - zs.avail_out;
    deflateEnd(&zs);
    ck_assert_int_eq(lc_idx_parse_images(gz, gl, "forged.gz", &d), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("forged.gz: truncated: header declares 2000000000 images");
    ASSERT_MSG_HAS("holds 16");
}
END_TEST

/* ---- real data (optional) ---- */

START_TEST(t_real_mnist_toy)
{
    char base[1024], img[1200], lab[1200], spec[2500];
    const char *shared = getenv("LAYCA_SHARED"), *root = getenv("LAYCA_SOURCE_ROOT");
    if (shared && *shared)
        snprintf(base, sizeof base, "%s", shared);
    else
        snprintf(base, sizeof base, "%s/../shared", root && *root ? root : ".");
    snprintf(img, sizeof img, "%s/data/mnist/t10k-images-idx3-ubyte.gz", base);
    snprintf(lab, sizeof lab, "%s/data/mnist/t10k-labels-idx1-ubyte.gz", base);
    struct stat sb;
    if (stat(img, &sb) != 0 || stat(lab, &sb) != 0) {
        fprintf(stderr, "# note: %s not found, skipping the real MNIST test\n", img);
        return;
    }
    snprintf(spec, sizeof spec, "idx:%s,%s", img, lab);
    lc_dataset tr, te;
    lc_data_opts o = {.per_class = 10, .seed = 1};
    double m, s;
    char desc[3000];
    ck_assert_msg(lc_data_open(spec, &o, &tr, &te, &m, &s, desc, sizeof desc) == LC_OK, "%s", lc_error_message());
    fprintf(stderr, "# %s (mean %.4f, std %.4f)\n", desc, m, s);
    ck_assert_int_eq(tr.n, 100);
    ck_assert_int_eq(te.n, 9900);
    ck_assert_int_eq(tr.c, 1);
    ck_assert_int_eq(tr.h, 28);
    ck_assert_int_eq(tr.w, 28);
    ck_assert_int_eq(tr.classes, 10);
    ck_assert_int_eq(te.classes, 10);
    int count[10] = {0};
    for (int64_t j = 0; j < tr.n; j++) count[tr.y[j]]++;
    for (int c = 0; c < 10; c++) ck_assert_int_eq(count[c], 10);
    double tm, ts;
    stats_double(&tr, &tm, &ts);
    ck_assert_double_eq_tol(tm, 0.0, 1e-6);
    ck_assert_double_eq_tol(ts, 1.0, 1e-5);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);

    /* The whole pool has the well-known MNIST test statistics (pixel scale check). */
    lc_dataset all;
    ck_assert_int_eq(lc_idx_load_pair(img, lab, 10, &all), LC_OK);
    stats_double(&all, &tm, &ts);
    ck_assert_double_eq_tol(tm, 0.1325, 0.001);
    ck_assert_double_eq_tol(ts, 0.3105, 0.001);
    lc_dataset_deinit(&all);
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *p = tcase_create("parse");
    tcase_add_test(p, t_parse_roundtrip);
    tcase_add_test(p, t_gzip_equals_raw);
    suite_add_tcase(s, p);
    TCase *o = tcase_create("open");
    tcase_add_test(o, t_mnist_dir_normalise);
    tcase_add_test(o, t_mnist_subsets);
    tcase_add_test(o, t_per_class_draw);
    tcase_add_test(o, t_idx_pool_split);
    suite_add_tcase(s, o);
    TCase *b = tcase_create("batcher");
    tcase_add_test(b, t_batcher_shuffle);
    tcase_add_test(b, t_batcher_in_order);
    tcase_add_test(b, t_batcher_resume);
    suite_add_tcase(s, b);
    TCase *e = tcase_create("broken");
    tcase_add_test(e, t_bad_magic);
    tcase_add_test(e, t_truncated_raw);
    tcase_add_test(e, t_truncated_gzip);
    tcase_add_test(e, t_label_out_of_range);
    tcase_add_test(e, t_count_mismatch);
    tcase_add_test(e, t_missing_file);
    tcase_add_test(e, t_bad_specs);
    tcase_add_test(e, t_zero_and_huge_headers);
    suite_add_tcase(s, e);
    TCase *r = tcase_create("real");
    tcase_set_timeout(r, 120);
    tcase_add_test(r, t_real_mnist_toy);
    suite_add_tcase(s, r);
    return s;
}

/* rm -r of the generated files (folders of plain files). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        char sub[2048];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            remove_tree(sub);
        }
        closedir(d);
    }
    remove(path);
}

int main(void)
{
    int rc = lc_test_run(data_suite());
    remove_tree(lc_test_tmpdir()); /* clean up the generated files */
    return rc;
}

/* Tests for the data module: idx parsing (raw and gzip), CIFAR-10/100
 * binary, image folders (JPEG/PNG, Tiny ImageNet layout, decode cache),
 * specs, seeded draws, normalisation (global, per channel), validation
 * split, batching, augmentation, and broken-data messages.  Data files are
 * generated in the official formats in a temp folder. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
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
    int k = snprintf(buf, cap, "%s/%s", dir, name);
    ck_assert_msg(k > 0 && (size_t)k < cap, "path too long: %s/%s", dir, name);
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

/* A FIFO given as a data file is refused at once (reading it would wait
 * forever for a writer), naming the file and what it is. */
START_TEST(t_fifo_inputs)
{
    char db[512], a[1024], b[1024], f[1024], spec[2100];
    const char *dir = make_dir("fifo", db, sizeof db);
    write_pair(dir, "images", "labels", 5, 4, 4, false);
    join(f, sizeof f, dir, "pipe");
    ck_assert_int_eq(mkfifo(f, 0600), 0);
    alarm(30); /* a blocked read would end the run here instead of hanging */
    lc_dataset d;
    ck_assert_int_eq(lc_idx_load_pair(f, join(b, sizeof b, dir, "labels"), 10, &d), LC_ERR_INVALID);
    ASSERT_MSG_HAS("pipe: is a FIFO");
    ck_assert_int_eq(lc_idx_load_pair(join(a, sizeof a, dir, "images"), f, 10, &d), LC_ERR_INVALID);
    ASSERT_MSG_HAS("pipe: is a FIFO");
    ck_assert_int_eq(d.n, 0);
    lc_dataset tr, te;
    lc_data_opts o = {.per_class = 1, .seed = 1};
    snprintf(spec, sizeof spec, "idx:%s,%s", f, b);
    ck_assert_int_eq(lc_data_open(spec, &o, &tr, &te, NULL, NULL, NULL, 0), LC_ERR_INVALID);
    ASSERT_MSG_HAS("pipe: is a FIFO");
    /* found by name in a data folder: said to be what it is, not "missing" */
    char m[1100], p[1200];
    snprintf(m, sizeof m, "%s/mnist", dir);
    ck_assert_int_eq(lc_mkdirs(m), LC_OK);
    write_pair(m, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 5, 4, 4, false);
    write_pair(m, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 5, 4, 4, false);
    join(p, sizeof p, m, "t10k-labels-idx1-ubyte");
    unlink(p);
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    ck_assert_int_eq(lc_mnist_load_dir(m, &tr, &te), LC_ERR_INVALID);
    ASSERT_MSG_HAS("t10k-labels-idx1-ubyte: is not a regular file");
    snprintf(m, sizeof m, "%s/cifar-10-batches-bin", dir);
    ck_assert_int_eq(lc_mkdirs(m), LC_OK);
    static const char *const batches[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                           "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    for (int i = 0; i < 6; i++) {
        join(p, sizeof p, m, batches[i]);
        if (i == 2) ck_assert_int_eq(mkfifo(p, 0600), 0);
        else write_raw(p, (const uint8_t *)"", 0);
    }
    ck_assert_int_eq(lc_cifar10_load_dir(dir, &tr, &te), LC_ERR_INVALID);
    ASSERT_MSG_HAS("data_batch_3.bin: is not a regular file");
    alarm(0);
    unlink(f);
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
    ck_assert_msg(strstr(desc, ": 13 train (random subset of 60, seed 5), 7 test (7 drawn from 25), 1x5x4, 10 classes, "
                               "not normalised"),
                  "desc: %s", desc);
    ck_assert_int_eq(tr.n, 13);
    ck_assert_int_eq(te.n, 7);
    /* a seeded draw, in the original order, not simply the first N */
    bool first = true;
    for (int64_t j = 1; j < te.n; j++) ck_assert_int_lt(index_of(&te, j - 1), index_of(&te, j));
    for (int64_t j = 0; j < te.n; j++) first &= index_of(&te, j) == (int)j;
    ck_assert(!first);
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
        ck_assert_msg(!lc_test_data_required(), "%s not found (LAYCA_REQUIRE_DATA is set)", img);
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

/* ==== CIFAR binary ==== */

/* Pixel byte of record i, channel ch, row r, column c: a plane-major pattern. */
static uint8_t cifar_px(int i, int ch, int r, int c) { return (uint8_t)((i * 37 + ch * 85 + r * 7 + c * 3) & 255); }

/* n CIFAR records; label_bytes 1 (CIFAR-10: label = lab0(i)) or 2 (CIFAR-100: coarse, fine). */
static uint8_t *cifar_bytes(int n, int label_bytes, int first, size_t *len)
{
    size_t rec = (size_t)label_bytes + 3072;
    *len = rec * (size_t)n;
    uint8_t *b = malloc(*len);
    ck_assert_ptr_nonnull(b);
    for (int k = 0; k < n; k++) {
        int i = first + k;
        uint8_t *r = b + rec * (size_t)k;
        if (label_bytes == 1)
            r[0] = (uint8_t)(i % 10);
        else {
            r[0] = (uint8_t)(i % 20);
            r[1] = (uint8_t)((i * 7) % 100);
        }
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) r[label_bytes + ch * 1024 + y * 32 + x] = cifar_px(i, ch, y, x);
    }
    return b;
}

/* Example j of d holds record i (pixels exact in [0,1] scale). */
static void check_cifar_example(const lc_dataset *d, int64_t j, int i)
{
    const float *x = d->x + j * 3072;
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < 32; y++)
            for (int c = 0; c < 32; c++)
                ck_assert_float_eq(x[ch * 1024 + y * 32 + c], (float)cifar_px(i, ch, y, c) / 255.0f);
}

static void write_cifar_file(const char *dir, const char *name, int n, int label_bytes, int first)
{
    char p[1024];
    size_t len;
    uint8_t *b = cifar_bytes(n, label_bytes, first, &len);
    write_raw(join(p, sizeof p, dir, name), b, len);
    free(b);
}

/* DIR/cifar-10-batches-bin: batches of 2,3,1,2,2 records (0..9), test 3 records (100..102). */
static const char *make_cifar10(const char *name, char *buf, size_t cap)
{
    char sub[1024];
    const char *dir = make_dir(name, buf, cap);
    join(sub, sizeof sub, dir, "cifar-10-batches-bin");
    mkdir(sub, 0755);
    static const int sizes[5] = {2, 3, 1, 2, 2};
    int first = 0;
    for (int k = 0; k < 5; k++) {
        char fn[32];
        snprintf(fn, sizeof fn, "data_batch_%d.bin", k + 1);
        write_cifar_file(sub, fn, sizes[k], 1, first);
        first += sizes[k];
    }
    write_cifar_file(sub, "test_batch.bin", 3, 1, 100);
    return dir;
}

START_TEST(t_cifar10_roundtrip)
{
    size_t len;
    uint8_t *b = cifar_bytes(4, 1, 0, &len);
    ck_assert_uint_eq(len, 4 * 3073);
    lc_dataset d;
    ck_assert_int_eq(lc_cifar10_parse(b, len, "mem", &d), LC_OK);
    ck_assert_int_eq(d.n, 4);
    ck_assert_int_eq(d.c, 3);
    ck_assert_int_eq(d.h, 32);
    ck_assert_int_eq(d.w, 32);
    ck_assert_int_eq(d.classes, 10);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(d.y[i], i % 10);
        check_cifar_example(&d, i, i);
    }
    /* Plane-major: the green value of pixel (row 2, col 5) of record 1 is byte 1 + 1024 + 2*32 + 5 of the record. */
    ck_assert_float_eq(d.x[3072 + 1024 + 69], (float)b[3073 + 1 + 1024 + 69] / 255.0f);
    lc_dataset_deinit(&d);
    free(b);

    /* A folder (its parent, holding cifar-10-batches-bin) through the spec. */
    char db[512], spec[600], desc[1024];
    const char *dir = make_cifar10("cifar10", db, sizeof db);
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    lc_dataset tr, te;
    lc_data_opts o = {.no_normalize = true};
    ck_assert_msg(lc_data_open(spec, &o, &tr, &te, NULL, NULL, desc, sizeof desc) == LC_OK, "%s", lc_error_message());
    ck_assert_msg(strstr(desc, ": 10 train, 3 test, 3x32x32, 10 classes, not normalised"), "desc: %s", desc);
    ck_assert_int_eq(tr.n, 10);
    ck_assert_int_eq(te.n, 3);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(tr.y[i], i % 10); /* batches concatenated in order */
        check_cifar_example(&tr, i, i);
    }
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(te.y[i], (100 + i) % 10);
        check_cifar_example(&te, i, 100 + i);
    }
    ck_assert_ptr_nonnull(tr.class_names);
    ck_assert_str_eq(tr.class_names[0], "airplane");
    ck_assert_str_eq(te.class_names[9], "truck");
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);

    /* The batches folder itself also works, and batches.meta.txt names the classes. */
    char sub[1024], meta[1100];
    join(sub, sizeof sub, dir, "cifar-10-batches-bin");
    const char *names = "a0\nb1\nc2\nd3\ne4\nf5\ng6\nh7\ni8\nj9\n\n";
    write_raw(join(meta, sizeof meta, sub, "batches.meta.txt"), (const uint8_t *)names, strlen(names));
    ck_assert_int_eq(lc_cifar10_load_dir(sub, &tr, &te), LC_OK);
    ck_assert_int_eq(tr.n, 10);
    ck_assert_str_eq(tr.class_names[3], "d3");
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
}
END_TEST

START_TEST(t_cifar100_roundtrip)
{
    char db[512], p[1024], spec[600];
    const char *dir = make_dir("cifar100", db, sizeof db);
    write_cifar_file(dir, "train.bin", 150, 2, 0);
    write_cifar_file(dir, "test.bin", 7, 2, 500);
    lc_dataset tr, te;
    lc_data_opts o = {.no_normalize = true};
    snprintf(spec, sizeof spec, "cifar100:%s", dir);
    ck_assert_msg(lc_data_open(spec, &o, &tr, &te, NULL, NULL, NULL, 0) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(tr.n, 150);
    ck_assert_int_eq(te.n, 7);
    ck_assert_int_eq(tr.classes, 100);
    ck_assert_ptr_null(tr.class_names); /* no fine_label_names.txt */
    for (int i = 0; i < 150; i++) ck_assert_int_eq(tr.y[i], (i * 7) % 100);
    for (int i = 0; i < 7; i++) ck_assert_int_eq(te.y[i], ((500 + i) * 7) % 100);
    check_cifar_example(&tr, 149, 149);
    check_cifar_example(&te, 6, 506);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);

    /* coarse labels, with a names file */
    FILE *f = fopen(join(p, sizeof p, dir, "coarse_label_names.txt"), "w");
    for (int c = 0; c < 20; c++) fprintf(f, "super%d\n", c);
    fclose(f);
    snprintf(spec, sizeof spec, "cifar100-coarse:%s", dir);
    ck_assert_msg(lc_data_open(spec, &o, &tr, &te, NULL, NULL, NULL, 0) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(tr.classes, 20);
    for (int i = 0; i < 150; i++) ck_assert_int_eq(tr.y[i], i % 20);
    ck_assert_str_eq(tr.class_names[19], "super19");
    check_cifar_example(&tr, 3, 3);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);

    /* parser over bytes */
    size_t len;
    uint8_t *b = cifar_bytes(3, 2, 40, &len);
    lc_dataset d;
    ck_assert_int_eq(lc_cifar100_parse(b, len, "mem", false, &d), LC_OK);
    ck_assert_int_eq(d.y[2], (42 * 7) % 100);
    lc_dataset_deinit(&d);
    ck_assert_int_eq(lc_cifar100_parse(b, len, "mem", true, &d), LC_OK);
    ck_assert_int_eq(d.y[2], 42 % 20);
    lc_dataset_deinit(&d);
    free(b);
}
END_TEST

START_TEST(t_cifar_broken)
{
    char db[512], p[1024], spec[600], want[1200];
    const char *dir = make_cifar10("cifar10_bad", db, sizeof db);
    char sub[1024];
    join(sub, sizeof sub, dir, "cifar-10-batches-bin");
    lc_dataset tr, te;

    /* truncated: one byte short of two records */
    size_t len;
    uint8_t *b = cifar_bytes(2, 1, 0, &len);
    write_raw(join(p, sizeof p, sub, "data_batch_4.bin"), b, len - 1);
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    ck_assert_int_eq(lc_data_open(spec, NULL, &tr, &te, NULL, NULL, NULL, 0), LC_ERR_FORMAT);
    ASSERT_MSG_HAS(p);
    ASSERT_MSG_HAS("size 6145 is not a multiple of the 3073-byte record (1 records and 3072 bytes left over)");
    ck_assert_ptr_null(tr.x);

    /* label out of range */
    b[3073] = 10;
    write_raw(p, b, len);
    ck_assert_int_eq(lc_cifar10_load_dir(dir, &tr, &te), LC_ERR_FORMAT);
    ASSERT_MSG_HAS(p);
    ASSERT_MSG_HAS("record 1 (at offset 3073): label 10 is out of range (0..9)");
    free(b);
    b = cifar_bytes(2, 2, 0, &len);
    b[3074 + 1] = 100;
    ck_assert_int_eq(lc_cifar100_parse(b, len, "c100", false, &tr), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("c100: record 1 (at offset 3074): coarse label 1 / fine label 100 out of range");
    ck_assert_int_eq(lc_cifar100_parse(b, 3074 * 2 - 3070, "short100", false, &tr), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("short100: truncated or not a CIFAR-100 binary file");
    ck_assert_int_eq(lc_cifar10_parse(b, 0, "empty", &tr), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("empty: empty file");
    free(b);

    /* missing file */
    remove(join(p, sizeof p, sub, "data_batch_3.bin"));
    ck_assert_int_eq(lc_data_open(spec, NULL, &tr, &te, NULL, NULL, NULL, 0), LC_ERR_NOT_FOUND);
    snprintf(want, sizeof want, "%s: missing data_batch_3.bin (looked for %s)", dir, p);
    ASSERT_MSG_HAS(want);
    ck_assert_int_eq(lc_data_open("cifar100:/nonexistent/c100", NULL, &tr, &te, NULL, NULL, NULL, 0), LC_ERR_NOT_FOUND);
    ASSERT_MSG_HAS("/nonexistent/c100: cannot open data folder");
    const char *d100 = make_dir("cifar100_missing", db, sizeof db);
    write_cifar_file(d100, "train.bin", 2, 2, 0);
    snprintf(spec, sizeof spec, "cifar100:%s", d100);
    ck_assert_int_eq(lc_data_open(spec, NULL, &tr, &te, NULL, NULL, NULL, 0), LC_ERR_NOT_FOUND);
    ASSERT_MSG_HAS("missing test.bin");
}
END_TEST

/* ==== image files ==== */

/* Value of channel ch at (y, x) of image idx of class cls: smooth, < 256. */
static uint8_t img_px(int cls, int idx, int y, int x, int ch) { return (uint8_t)(cls * 30 + idx * 10 + y * 6 + x * 4 + ch * 20); }

static uint8_t *make_rgb(int cls, int idx, int w, int h)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    ck_assert_ptr_nonnull(p);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < 3; ch++) p[(y * w + x) * 3 + ch] = img_px(cls, idx, y, x, ch);
    return p;
}

/* JPEG, 4:4:4, given quality; comps 3 (RGB) or 1 (gray). */
static void write_jpeg(const char *path, int w, int h, int comps, const uint8_t *px, int quality)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = comps;
    ci.in_color_space = comps == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    if (comps == 3) ci.comp_info[0].h_samp_factor = ci.comp_info[0].v_samp_factor = 1;
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)ci.next_scanline * (size_t)w * (size_t)comps);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    fclose(f);
}

/* PNG of the given color type and bit depth; px holds packed rows (rowbytes each). */
static void write_png_rows(const char *path, int w, int h, int color_type, int depth, const uint8_t *px,
                           size_t rowbytes, const png_color *palette, int npal)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, palette, npal);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, px + (size_t)y * rowbytes);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

static void write_png_rgb(const char *path, int w, int h, const uint8_t *rgb)
{
    write_png_rows(path, w, h, PNG_COLOR_TYPE_RGB, 8, rgb, (size_t)w * 3, NULL, 0);
}

/* An image of class cls, number idx, w x h, as PNG or JPEG (by the name's extension). */
static void write_img(const char *dir, const char *name, int cls, int idx, int w, int h)
{
    char p[1024];
    uint8_t *rgb = make_rgb(cls, idx, w, h);
    join(p, sizeof p, dir, name);
    const char *dot = strrchr(name, '.');
    if (dot && (dot[1] == 'p' || dot[1] == 'P'))
        write_png_rgb(p, w, h, rgb);
    else
        write_jpeg(p, w, h, 3, rgb, 100);
    free(rgb);
}

static const char *sub_dir(char *buf, size_t cap, const char *a, const char *b)
{
    join(buf, cap, a, b);
    mkdir(buf, 0755);
    return buf;
}

/* DIR/train/{zebra,apple,mango} (created in that order; sorted: apple 0,
 * mango 1, zebra 2) with a0.png, a1.png, b0.jpg each (idx 0, 1, 2), and
 * DIR/test/<class>/t.png (idx 5).  8 wide, 6 high. */
static const char *const TREE_CLASSES[3] = {"apple", "mango", "zebra"};
static const char *make_tree(const char *name, char *buf, size_t cap)
{
    const char *dir = make_dir(name, buf, cap);
    char tr[1024], te[1024], c[1100];
    sub_dir(tr, sizeof tr, dir, "train");
    sub_dir(te, sizeof te, dir, "test");
    static const int order[3] = {2, 0, 1};
    for (int k = 0; k < 3; k++) {
        int cls = order[k];
        sub_dir(c, sizeof c, tr, TREE_CLASSES[cls]);
        write_img(c, "a0.png", cls, 0, 8, 6);
        write_img(c, "b0.jpg", cls, 2, 8, 6);
        write_img(c, "a1.PNG", cls, 1, 8, 6);
        char notes[1200];
        write_raw(join(notes, sizeof notes, c, "notes.txt"), (const uint8_t *)"x", 1); /* ignored */
        sub_dir(c, sizeof c, te, TREE_CLASSES[cls]);
        write_img(c, "t.png", cls, 5, 8, 6);
    }
    return dir;
}

/* Max and mean |x*255 - expected| over example j (CHW floats) of image (cls, idx). */
static void img_err(const lc_dataset *d, int64_t j, int cls, int idx, double *max_err, double *mean_err)
{
    const float *x = d->x + j * lc_dataset_example_size(d);
    double mx = 0, sum = 0;
    int n = 0;
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < d->h; y++)
            for (int c = 0; c < d->w; c++) {
                double e = fabs((double)x[(ch * d->h + y) * d->w + c] * 255.0 - img_px(cls, idx, y, c, ch));
                mx = fmax(mx, e);
                sum += e;
                n++;
            }
    *max_err = mx;
    *mean_err = sum / n;
}

static lc_images_opts cache_opts(const char *name, char *buf, size_t cap)
{
    lc_images_opts o = {.cache_dir = make_dir(name, buf, cap), .quiet = true};
    return o;
}

START_TEST(t_images_folder)
{
    char db[512], cb[512];
    const char *dir = make_tree("tree", db, sizeof db);
    lc_images_opts io = cache_opts("cache_tree", cb, sizeof cb);
    lc_dataset tr, te;
    lc_images_info info;
    ck_assert_msg(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, &info) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(tr.n, 9);
    ck_assert_int_eq(te.n, 3);
    ck_assert_int_eq(tr.c, 3);
    ck_assert_int_eq(tr.h, 6);
    ck_assert_int_eq(tr.w, 8);
    ck_assert_int_eq(tr.classes, 3);
    for (int c = 0; c < 3; c++) {
        ck_assert_str_eq(tr.class_names[c], TREE_CLASSES[c]);
        ck_assert_str_eq(te.class_names[c], TREE_CLASSES[c]);
    }
    /* sorted classes, sorted files: a0.png, a1.PNG, b0.jpg */
    for (int c = 0; c < 3; c++) {
        for (int k = 0; k < 3; k++) {
            int64_t j = c * 3 + k;
            ck_assert_int_eq(tr.y[j], c);
            double mx, mean;
            img_err(&tr, j, c, k, &mx, &mean);
            if (k < 2)
                ck_assert_msg(mx < 1e-3, "PNG example %lld differs by %g", (long long)j, mx); /* exact */
            else
                ck_assert_msg(mx <= 8 && mean < 2, "JPEG example %lld: max error %g, mean %g", (long long)j, mx, mean);
        }
        ck_assert_int_eq(te.y[c], c);
        double mx, mean;
        img_err(&te, c, c, 5, &mx, &mean);
        ck_assert(mx < 1e-3);
    }
    ck_assert_int_eq(info.from_cache[0], 0);
    ck_assert_int_eq(info.from_cache[1], 0);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);

    /* Through the spec, with a val split: class names travel with the splits. */
    char spec[600], desc[1200];
    snprintf(spec, sizeof spec, "images:%s", dir);
    lc_dataset va;
    lc_data_info di;
    lc_data_opts o = {.cache_dir = io.cache_dir, .quiet = true, .val_split = 0.34, .seed = 3};
    ck_assert_msg(lc_data_open3(spec, &o, &tr, &va, &te, &di, desc, sizeof desc) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(tr.n, 6);
    ck_assert_int_eq(va.n, 3);
    ck_assert_int_eq(di.cache_hits, 2);
    ck_assert_msg(strstr(desc, ": 6 train, 3 val (0.34 of train, seed 3), 3 test, 3x6x8, 3 classes, from the decode cache"),
                  "desc: %s", desc);
    ck_assert_str_eq(va.class_names[2], "zebra");
    ck_assert_str_eq(tr.class_names[1], "mango");
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&va);
    lc_dataset_deinit(&te);
}
END_TEST

START_TEST(t_image_decode_kinds)
{
    char db[512], p[1024];
    const char *dir = make_dir("kinds", db, sizeof db);
    const int w = 5, h = 3;
    uint8_t gray[15], rgba[60], rgb16[90], pal_idx[15], ga[30];
    for (int i = 0; i < 15; i++) {
        gray[i] = (uint8_t)(i * 17);
        pal_idx[i] = (uint8_t)(i % 4);
        ga[2 * i] = (uint8_t)(255 - i * 9);
        ga[2 * i + 1] = (uint8_t)(i * 3);
        for (int ch = 0; ch < 4; ch++) rgba[4 * i + ch] = (uint8_t)(i * 10 + ch * 50);
        for (int ch = 0; ch < 3; ch++) {
            uint16_t v = (uint16_t)((i * 5 + ch * 60) * 257);
            rgb16[6 * i + 2 * ch] = (uint8_t)(v >> 8); /* PNG is big-endian */
            rgb16[6 * i + 2 * ch + 1] = (uint8_t)v;
        }
    }
    png_color pal[4] = {{1, 2, 3}, {40, 50, 60}, {200, 100, 0}, {255, 255, 255}};
    struct {
        const char *name;
        int type, depth;
        const uint8_t *px;
        size_t rowbytes;
    } cases[5] = {{"gray.png", PNG_COLOR_TYPE_GRAY, 8, gray, 5},
                  {"rgba.png", PNG_COLOR_TYPE_RGBA, 8, rgba, 20},
                  {"rgb16.png", PNG_COLOR_TYPE_RGB, 16, rgb16, 30},
                  {"pal.png", PNG_COLOR_TYPE_PALETTE, 8, pal_idx, 5},
                  {"ga.png", PNG_COLOR_TYPE_GRAY_ALPHA, 8, ga, 10}};
    for (int k = 0; k < 5; k++) {
        join(p, sizeof p, dir, cases[k].name);
        write_png_rows(p, w, h, cases[k].type, cases[k].depth, cases[k].px, cases[k].rowbytes,
                       cases[k].type == PNG_COLOR_TYPE_PALETTE ? pal : NULL, 4);
        size_t len;
        uint8_t *b = read_all(p, &len);
        lc_image im;
        ck_assert_msg(lc_image_decode(b, len, p, &im) == LC_OK, "%s", lc_error_message());
        free(b);
        ck_assert_int_eq(im.w, w);
        ck_assert_int_eq(im.h, h);
        for (int i = 0; i < 15; i++)
            for (int ch = 0; ch < 3; ch++) {
                int want = k == 0   ? gray[i]                  /* gray replicated */
                           : k == 1 ? rgba[4 * i + ch]         /* alpha dropped */
                           : k == 2 ? (i * 5 + ch * 60)        /* 16 -> 8 bits */
                           : k == 3 ? (&pal[pal_idx[i]].red)[ch] /* palette expanded */
                                    : ga[2 * i];               /* gray + alpha */
                ck_assert_msg(im.rgb[3 * i + ch] == want, "%s: pixel %d channel %d is %d, expected %d", cases[k].name, i,
                              ch, im.rgb[3 * i + ch], want);
            }
        lc_image_deinit(&im);
    }
    /* grayscale JPEG -> 3 equal channels close to the gray value */
    join(p, sizeof p, dir, "gray.jpg");
    write_jpeg(p, w, h, 1, gray, 100);
    size_t len;
    uint8_t *b = read_all(p, &len);
    lc_image im;
    ck_assert_int_eq(lc_image_decode(b, len, p, &im), LC_OK);
    for (int i = 0; i < 15; i++) {
        ck_assert_int_eq(im.rgb[3 * i], im.rgb[3 * i + 1]);
        ck_assert_int_eq(im.rgb[3 * i], im.rgb[3 * i + 2]);
        ck_assert_int_le(abs(im.rgb[3 * i] - gray[i]), 4);
    }
    lc_image_deinit(&im);
    lc_image_deinit(NULL);
    free(b);
}
END_TEST

START_TEST(t_bad_images)
{
    char db[512], p[1024], q[1024], c[1100];
    const char *dir = make_tree("tree_bad", db, sizeof db);
    char cb[512];
    lc_images_opts io = cache_opts("cache_bad", cb, sizeof cb);
    lc_dataset tr, te;
    /* garbage bytes named .jpg */
    join(c, sizeof c, dir, "train/mango");
    join(p, sizeof p, c, "c_garbage.jpg");
    const uint8_t junk[64] = {0x12, 0x34, 0x56, 0x78, 'g', 'a', 'r', 'b', 'a', 'g', 'e'};
    write_raw(p, junk, sizeof junk);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, NULL), LC_ERR_FORMAT);
    ASSERT_MSG_HAS(p);
    ASSERT_MSG_HAS("not a JPEG or PNG image (starts with 12 34 56 78)");
    ck_assert_ptr_null(tr.x);
    ck_assert_ptr_null(te.x);
    /* a JPEG signature followed by garbage */
    uint8_t fake[200];
    for (size_t i = 0; i < sizeof fake; i++) fake[i] = (uint8_t)(i * 97 + 13);
    fake[0] = 0xff, fake[1] = 0xd8, fake[2] = 0xff, fake[3] = 0xe0;
    write_raw(p, fake, sizeof fake);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, NULL), LC_ERR_FORMAT);
    ASSERT_MSG_HAS(p);
    ASSERT_MSG_HAS("corrupt JPEG");
    /* a truncated JPEG */
    join(q, sizeof q, c, "b0.jpg");
    size_t len;
    uint8_t *b = read_all(q, &len);
    write_raw(p, b, len * 2 / 3);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, NULL), LC_ERR_FORMAT);
    ASSERT_MSG_HAS(p);
    ASSERT_MSG_HAS("corrupt JPEG");
    free(b);
    remove(p);
    /* a truncated PNG, and a PNG with a flipped byte (CRC error) */
    join(q, sizeof q, c, "a0.png");
    b = read_all(q, &len);
    join(p, sizeof p, c, "c_bad.png");
    write_raw(p, b, len - 20);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, NULL), LC_ERR_FORMAT);
    ASSERT_MSG_HAS(p);
    ASSERT_MSG_HAS("corrupt PNG");
    b[len / 2] ^= 0x40;
    write_raw(p, b, len);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, NULL), LC_ERR_FORMAT);
    ASSERT_MSG_HAS(p);
    ASSERT_MSG_HAS("corrupt PNG");
    free(b);
    remove(p);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, NULL), LC_OK);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
}
END_TEST

/* A few hundred bytes claiming 16384 x 16384 pixels: the decoder stops at
 * the end of the data (baseline) or refuses the buffer a progressive file
 * would need, instead of spending seconds and most of a gigabyte. */
START_TEST(t_image_huge_claims)
{
    const char *root = getenv("LAYCA_SOURCE_ROOT");
    static const struct { const char *file; lc_status st; const char *msg; } cases[] = {
        {"regress/image/huge_baseline_truncated.jpg", LC_ERR_FORMAT, "corrupt JPEG: the data ends early"},
        {"regress/image/huge_progressive_truncated.jpg", LC_ERR_UNSUPPORTED,
         "JPEG of 16384x16384 pixels needs more than the 256 MiB layca gives the decoder"},
    };
    for (size_t i = 0; i < LC_COUNTOF(cases); i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/tests/fuzz/%s", root ? root : "..", cases[i].file);
        size_t len;
        uint8_t *b = read_all(p, &len);
        ck_assert_uint_lt(len, 2000);
        lc_image im;
        ck_assert_int_eq(lc_image_decode(b, len, p, &im), cases[i].st);
        ASSERT_MSG_HAS(cases[i].msg);
        ck_assert_ptr_null(im.rgb);
        free(b);
    }
    /* a small progressive file still decodes */
    char p[1024];
    snprintf(p, sizeof p, "%s/tests/fuzz/corpus/image/progressive8x8.jpg", root ? root : "..");
    size_t len;
    uint8_t *b = read_all(p, &len);
    lc_image im;
    ck_assert_msg(lc_image_decode(b, len, p, &im) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(im.w, 8);
    ck_assert_int_eq(im.h, 8);
    lc_image_deinit(&im);
    free(b);
}
END_TEST

START_TEST(t_image_folder_errors)
{
    char db[512], cb[512], p[1024], q[1024], want[2048];
    lc_images_opts io = cache_opts("cache_err", cb, sizeof cb);
    lc_dataset tr, te;

    /* an unknown class folder in test */
    const char *dir = make_tree("tree_unknown", db, sizeof db);
    sub_dir(p, sizeof p, dir, "test/kiwi");
    write_img(p, "k.png", 0, 0, 8, 6);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, NULL), LC_ERR_INVALID);
    ASSERT_MSG_HAS("unknown class folder 'kiwi' in test (the train classes are: apple, mango, zebra)");
    ASSERT_MSG_HAS(p);

    /* a class folder missing in test */
    dir = make_tree("tree_missing", db, sizeof db);
    join(p, sizeof p, dir, "test/mango/t.png");
    remove(p);
    join(p, sizeof p, dir, "test/mango");
    rmdir(p);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, NULL), LC_ERR_NOT_FOUND);
    ASSERT_MSG_HAS("missing class folder 'mango' in test");

    /* an empty class folder */
    dir = make_tree("tree_empty", db, sizeof db);
    sub_dir(p, sizeof p, dir, "train/empty");
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, NULL), LC_ERR_INVALID);
    snprintf(want, sizeof want, "%s: class folder 'empty' of the train split holds no images", p);
    ASSERT_MSG_HAS(want);

    /* one image of another size */
    dir = make_tree("tree_size", db, sizeof db);
    join(p, sizeof p, dir, "train/mango");
    write_img(p, "a1.PNG", 1, 1, 7, 6);
    join(q, sizeof q, p, "a1.PNG");
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, NULL), LC_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: image is 7x6 (width x height) but the train split's first image %s/train/apple/a0.png is 8x6",
             q, dir);
    ASSERT_MSG_HAS(want);
    ck_assert_ptr_null(tr.x);

    /* test images of another size than train */
    dir = make_tree("tree_size2", db, sizeof db);
    static const char *const cls[3] = {"apple", "mango", "zebra"};
    for (int c = 0; c < 3; c++) {
        char t[1200];
        snprintf(t, sizeof t, "%s/test/%s", dir, cls[c]);
        write_img(t, "t.png", c, 5, 4, 4);
    }
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, NULL), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("test images are 4x4");
    ASSERT_MSG_HAS("but train images are 8x6");

    /* no test folder; an archive instead of a folder; no folder */
    dir = make_dir("tree_notest", db, sizeof db);
    sub_dir(p, sizeof p, dir, "train");
    sub_dir(p, sizeof p, dir, "train/a");
    write_img(p, "x.png", 0, 0, 2, 2);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, NULL), LC_ERR_NOT_FOUND);
    ASSERT_MSG_HAS("missing the test folder");
    join(p, sizeof p, dir, "train.tar.gz");
    write_raw(p, (const uint8_t *)"\x1f\x8b", 2);
    snprintf(want, sizeof want, "images:%s", p);
    ck_assert_int_eq(lc_data_open(want, NULL, &tr, &te, NULL, NULL, NULL, 0), LC_ERR_INVALID);
    ASSERT_MSG_HAS("archives are not read; extract it first (e.g. tar xzf");
    ck_assert_int_eq(lc_data_open("images:/nonexistent/imgs", NULL, &tr, &te, NULL, NULL, NULL, 0), LC_ERR_NOT_FOUND);
    ASSERT_MSG_HAS("/nonexistent/imgs: cannot open image folder");
}
END_TEST

static void assert_same_data(const lc_dataset *a, const lc_dataset *b)
{
    ck_assert_int_eq(a->n, b->n);
    ck_assert_int_eq(a->h, b->h);
    ck_assert_int_eq(a->w, b->w);
    ck_assert_int_eq(a->classes, b->classes);
    ck_assert_int_eq(memcmp(a->x, b->x, (size_t)a->n * (size_t)lc_dataset_example_size(a) * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a->y, b->y, (size_t)a->n * sizeof(int32_t)), 0);
    for (int c = 0; c < a->classes; c++) ck_assert_str_eq(a->class_names[c], b->class_names[c]);
}

START_TEST(t_image_cache)
{
    char db[512], cb[512], p[1024];
    const char *dir = make_tree("tree_cache", db, sizeof db);
    lc_images_opts io = cache_opts("cache_c", cb, sizeof cb);
    lc_dataset tr0, te0, tr, te;
    lc_images_info info;
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr0, &te0, &info), LC_OK);
    ck_assert_int_eq(info.from_cache[0] + info.from_cache[1], 0);
    ck_assert_msg(strncmp(info.cache_path[0], cb, strlen(cb)) == 0 && strstr(info.cache_path[0], ".lcimg"), "%s",
                  info.cache_path[0]);
    ck_assert_str_ne(info.cache_path[0], info.cache_path[1]);

    /* second load: both splits from the cache, identical data */
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, &info), LC_OK);
    ck_assert_int_eq(info.from_cache[0], 1);
    ck_assert_int_eq(info.from_cache[1], 1);
    assert_same_data(&tr0, &tr);
    assert_same_data(&te0, &te);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);

    /* a corrupted train entry (one pixel byte flipped) and a truncated test entry: rebuilt */
    char trc[4096], tec[4096];
    snprintf(trc, sizeof trc, "%s", info.cache_path[0]);
    snprintf(tec, sizeof tec, "%s", info.cache_path[1]);
    size_t len;
    uint8_t *b = read_all(trc, &len);
    b[len - 100] ^= 0x01;
    write_raw(trc, b, len);
    free(b);
    b = read_all(tec, &len);
    write_raw(tec, b, len / 2);
    free(b);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, &info), LC_OK);
    ck_assert_int_eq(info.from_cache[0], 0);
    ck_assert_int_eq(info.from_cache[1], 0);
    assert_same_data(&tr0, &tr);
    assert_same_data(&te0, &te);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, &info), LC_OK);
    ck_assert_int_eq(info.from_cache[0] + info.from_cache[1], 2); /* rewritten */
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);

    /* garbage in the file under the right name: rebuilt */
    write_raw(trc, (const uint8_t *)"not a cache", 11);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, &info), LC_OK);
    ck_assert_int_eq(info.from_cache[0], 0);
    ck_assert_int_eq(info.from_cache[1], 1);
    assert_same_data(&tr0, &tr);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);

    /* a changed image (content and size): another key, decoded again, new pixels */
    join(p, sizeof p, dir, "train/apple");
    write_img(p, "a0.png", 2, 2, 8, 6);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &io, &tr, &te, &info), LC_OK);
    ck_assert_int_eq(info.from_cache[0], 0);
    ck_assert_int_eq(info.from_cache[1], 1);
    ck_assert_str_ne(info.cache_path[0], trc);
    double mx, mean;
    img_err(&tr, 0, 2, 2, &mx, &mean);
    ck_assert(mx < 1e-3);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);

    /* the process's cache folder (lc_cache_dir_set) is the default folder;
     * no_cache touches none */
    char env[600];
    snprintf(env, sizeof env, "%s/envcache", lc_test_tmpdir());
    ck_assert_int_eq(lc_cache_dir_set(env), LC_OK);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &(lc_images_opts){.quiet = true}, &tr, &te, &info), LC_OK);
    ck_assert_int_eq(info.from_cache[0], 0);
    ck_assert_msg(strncmp(info.cache_path[0], env, strlen(env)) == 0 && strstr(info.cache_path[0], "/envcache/data/"),
                  "%s", info.cache_path[0]);
    struct stat sb;
    ck_assert_int_eq(stat(info.cache_path[0], &sb), 0);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &(lc_images_opts){.quiet = true, .no_cache = true}, &tr,
                                        &te, &info),
                     LC_OK);
    ck_assert_int_eq(info.from_cache[0], 0);
    ck_assert_str_eq(info.cache_path[0], "");
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
    /* LAYCA_CACHE_DIR=off as the CLIs resolve it: no decode cache anywhere
     * (not a folder named off) */
    char off[600];
    lc_cache_dir_resolve("off", "/xdg", "/home", off, sizeof off);
    ck_assert_str_eq(off, "");
    ck_assert_int_eq(lc_cache_dir_set(off), LC_OK);
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_FOLDERS, &(lc_images_opts){.quiet = true}, &tr, &te, &info), LC_OK);
    ck_assert_int_eq(info.from_cache[0], 0);
    ck_assert_str_eq(info.cache_path[0], "");
    ck_assert_int_ne(stat("off", &sb), 0);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
    lc_dataset_deinit(&tr0);
    lc_dataset_deinit(&te0);
}
END_TEST

START_TEST(t_tinyimagenet)
{
    char db[512], cb[512], p[1024], q[1100];
    const char *dir = make_dir("tiny", db, sizeof db);
    static const char *const wnids[2] = {"n02", "n01"}; /* sorted: n01 = 0, n02 = 1 */
    sub_dir(p, sizeof p, dir, "train");
    for (int k = 0; k < 2; k++) {
        char c[1100], im[1200], box[1200];
        sub_dir(c, sizeof c, p, wnids[k]);
        snprintf(box, sizeof box, "%s/%s_boxes.txt", c, wnids[k]);
        write_raw(box, (const uint8_t *)"x\t0\t0\t1\t1\n", 10);
        sub_dir(im, sizeof im, c, "images");
        int cls = k == 0 ? 1 : 0;
        for (int i = 0; i < 2; i++) {
            char fn[64];
            snprintf(fn, sizeof fn, "%s_%d.JPEG", wnids[k], i);
            write_img(im, fn, cls, i, 8, 8);
        }
    }
    sub_dir(p, sizeof p, dir, "val");
    sub_dir(q, sizeof q, p, "images");
    write_img(q, "val_0.JPEG", 1, 7, 8, 8);
    write_img(q, "val_1.JPEG", 0, 8, 8, 8);
    write_img(q, "val_2.JPEG", 1, 9, 8, 8);
    const char *ann = "val_1.JPEG\tn01\t0\t0\t8\t8\r\nval_0.JPEG\tn02\t1\t1\t5\t5\r\nval_2.JPEG\tn02\t0\t0\t3\t3\r\n";
    char ap[1200];
    snprintf(ap, sizeof ap, "%s/val_annotations.txt", p);
    write_raw(ap, (const uint8_t *)ann, strlen(ann));

    lc_images_opts io = cache_opts("cache_tiny", cb, sizeof cb);
    lc_dataset tr, te;
    ck_assert_msg(lc_images_load_dir(dir, LC_IMAGES_TINYIMAGENET, &io, &tr, &te, NULL) == LC_OK, "%s",
                  lc_error_message());
    ck_assert_int_eq(tr.n, 4);
    ck_assert_int_eq(te.n, 3);
    ck_assert_str_eq(tr.class_names[0], "n01");
    ck_assert_str_eq(tr.class_names[1], "n02");
    int want_tr[4] = {0, 0, 1, 1}, want_te[3] = {1, 0, 1};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(tr.y[i], want_tr[i]);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(te.y[i], want_te[i]);
    double mx, mean;
    img_err(&te, 1, 0, 8, &mx, &mean);
    ck_assert_msg(mx <= 8 && mean < 2, "max %g mean %g", mx, mean);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);

    /* the spec; and images: on this layout points at tinyimagenet: */
    char spec[600];
    snprintf(spec, sizeof spec, "tinyimagenet:%s", dir);
    lc_data_opts o = {.cache_dir = io.cache_dir, .quiet = true};
    ck_assert_int_eq(lc_data_open(spec, &o, &tr, &te, NULL, NULL, NULL, 0), LC_OK);
    ck_assert_int_eq(tr.n, 4);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
    snprintf(spec, sizeof spec, "images:%s", dir);
    ck_assert_int_eq(lc_data_open(spec, &o, &tr, &te, NULL, NULL, NULL, 0), LC_ERR_NOT_FOUND);
    ASSERT_MSG_HAS("for Tiny ImageNet use tinyimagenet:");

    /* an unknown wnid; an unlisted file */
    const char *bad = "val_1.JPEG\tn01\t0\t0\t8\t8\nval_0.JPEG\tn09\t1\t1\t5\t5\n";
    write_raw(ap, (const uint8_t *)bad, strlen(bad));
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_TINYIMAGENET, &io, &tr, &te, NULL), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("val_annotations.txt:2: class 'n09' is not a folder of train/");
    const char *few = "val_1.JPEG\tn01\nval_0.JPEG\tn02\n";
    write_raw(ap, (const uint8_t *)few, strlen(few));
    ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_TINYIMAGENET, &io, &tr, &te, NULL), LC_ERR_FORMAT);
    ASSERT_MSG_HAS("val_2.JPEG: not listed in");
    /* empty, or blank lines only (the probe's empty file passed NULL to
     * qsort and bsearch): a clear error naming the file */
    static const char *const empty[] = {"", "\n\r\n  \n"};
    for (int k = 0; k < 2; k++) {
        write_raw(ap, (const uint8_t *)empty[k], strlen(empty[k]));
        ck_assert_int_eq(lc_images_load_dir(dir, LC_IMAGES_TINYIMAGENET, &io, &tr, &te, NULL), LC_ERR_FORMAT);
        ASSERT_MSG_HAS("val/val_annotations.txt: lists no images");
        ck_assert_int_eq(tr.n, 0);
        ck_assert_int_eq(te.n, 0);
    }
}
END_TEST

/* ==== normalisation and validation split ==== */

START_TEST(t_per_channel_norm)
{
    char db[512], spec[600], desc[1200];
    const char *dir = make_cifar10("cifar10_pc", db, sizeof db);
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    lc_dataset rtr, rte, tr, te;
    ck_assert_int_eq(lc_data_open(spec, &(lc_data_opts){.no_normalize = true}, &rtr, &rte, NULL, NULL, NULL, 0), LC_OK);
    lc_data_info info;
    lc_data_opts o = {.per_channel = true};
    ck_assert_int_eq(lc_data_open3(spec, &o, &tr, NULL, &te, &info, desc, sizeof desc), LC_OK);
    ck_assert_msg(strstr(desc, "per-channel normalised"), "%s", desc);
    ck_assert_int_eq(info.nstats, 3);
    for (int c = 0; c < 3; c++) {
        double s = 0, v = 0, n = 10.0 * 1024;
        for (int64_t i = 0; i < tr.n; i++)
            for (int k = 0; k < 1024; k++) s += tr.x[i * 3072 + c * 1024 + k];
        double m = s / n;
        for (int64_t i = 0; i < tr.n; i++)
            for (int k = 0; k < 1024; k++) v += pow(tr.x[i * 3072 + c * 1024 + k] - m, 2);
        ck_assert_double_eq_tol(m, 0.0, 1e-6);
        ck_assert_double_eq_tol(sqrt(v / n), 1.0, 1e-5);
        /* the test split uses the training statistics */
        for (int64_t i = 0; i < te.n; i++)
            for (int k = 0; k < 1024; k += 37) {
                size_t at = (size_t)(i * 3072 + c * 1024 + k);
                ck_assert_double_eq_tol(te.x[at], (rte.x[at] - info.mean[c]) / info.std[c], 1e-5);
            }
    }
    ck_assert(info.mean[0] != info.mean[1]);
    /* lc_data_open's scalars are channel 0's */
    double m, s;
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
    ck_assert_int_eq(lc_data_open(spec, &o, &tr, &te, &m, &s, NULL, 0), LC_OK);
    ck_assert_double_eq(m, info.mean[0]);
    ck_assert_double_eq(s, info.std[0]);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
    /* global (the default) */
    ck_assert_int_eq(lc_data_open3(spec, NULL, &tr, NULL, &te, &info, NULL, 0), LC_OK);
    ck_assert_int_eq(info.nstats, 1);
    double tm, ts;
    stats_double(&tr, &tm, &ts);
    ck_assert_double_eq_tol(tm, 0.0, 1e-6);
    ck_assert_double_eq_tol(ts, 1.0, 1e-5);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
    lc_dataset_deinit(&rtr);
    lc_dataset_deinit(&rte);
}
END_TEST

START_TEST(t_val_split)
{
    char db[512], spec[600], desc[1200];
    const char *dir = make_mnist_dir("mnist_val", db, sizeof db, 60, 25);
    snprintf(spec, sizeof spec, "mnist:%s", dir);
    lc_dataset tr, va, te;
    lc_data_opts o = {.val_split = 0.25, .seed = 11, .no_normalize = true};
    ck_assert_int_eq(lc_data_open3(spec, &o, &tr, &va, &te, NULL, desc, sizeof desc), LC_OK);
    ck_assert_msg(strstr(desc, ": 45 train, 15 val (0.25 of train, seed 11), 25 test"), "%s", desc);
    ck_assert_int_eq(tr.n, 45);
    ck_assert_int_eq(va.n, 15);
    ck_assert_int_eq(te.n, 25);
    int seen[60] = {0}, first[15];
    for (int64_t j = 0; j < tr.n; j++) seen[index_of(&tr, j)]++;
    for (int64_t j = 0; j < va.n; j++) {
        first[j] = index_of(&va, j);
        seen[first[j]]++;
        ck_assert_int_eq(va.y[j], label_of(first[j]));
        ck_assert(j == 0 || first[j - 1] < first[j]);
    }
    for (int i = 0; i < 60; i++) ck_assert_int_eq(seen[i], 1); /* disjoint, covering */
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&va);
    lc_dataset_deinit(&te);

    /* same seed, same split; another seed, another */
    int again[15];
    ck_assert_int_eq(lc_data_open3(spec, &o, &tr, &va, &te, NULL, NULL, 0), LC_OK);
    for (int j = 0; j < 15; j++) again[j] = index_of(&va, j);
    ck_assert_int_eq(memcmp(first, again, sizeof first), 0);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&va);
    lc_dataset_deinit(&te);
    o.seed = 12;
    ck_assert_int_eq(lc_data_open3(spec, &o, &tr, &va, &te, NULL, NULL, 0), LC_OK);
    for (int j = 0; j < 15; j++) again[j] = index_of(&va, j);
    ck_assert_int_ne(memcmp(first, again, sizeof first), 0);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&va);
    lc_dataset_deinit(&te);

    /* with a per_class draw first, normalised by the remaining training examples */
    lc_data_opts pc = {.per_class = 4, .val_split = 0.5, .seed = 2};
    lc_data_info info;
    ck_assert_int_eq(lc_data_open3(spec, &pc, &tr, &va, &te, &info, NULL, 0), LC_OK);
    ck_assert_int_eq(tr.n, 20);
    ck_assert_int_eq(va.n, 20);
    double tm, ts;
    stats_double(&tr, &tm, &ts);
    ck_assert_double_eq_tol(tm, 0.0, 1e-6);
    ck_assert_double_eq_tol(ts, 1.0, 1e-5);
    stats_double(&va, &tm, &ts);
    ck_assert(fabs(tm) > 1e-9 || fabs(ts - 1) > 1e-7); /* val is transformed, not standardised on itself */
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&va);
    lc_dataset_deinit(&te);

    /* no split: val left empty */
    ck_assert_int_eq(lc_data_open3(spec, NULL, &tr, &va, &te, NULL, NULL, 0), LC_OK);
    ck_assert_int_eq(va.n, 0);
    ck_assert_ptr_null(va.x);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);

    /* errors */
    ck_assert_int_eq(lc_data_open(spec, &o, &tr, &te, NULL, NULL, NULL, 0), LC_ERR_INVALID);
    ASSERT_MSG_HAS("lc_data_open3");
    o.val_split = 1.0;
    ck_assert_int_eq(lc_data_open3(spec, &o, &tr, &va, &te, NULL, NULL, 0), LC_ERR_INVALID);
    ASSERT_MSG_HAS("val_split = 1 must be 0 (none) or a fraction in (0, 1)");
    o.val_split = 0.001;
    ck_assert_int_eq(lc_data_open3(spec, &o, &tr, &va, &te, NULL, NULL, 0), LC_ERR_INVALID);
    ASSERT_MSG_HAS("gives 0 validation examples");
    ck_assert_ptr_null(tr.x);
    ck_assert_ptr_null(va.x);
}
END_TEST

/* ==== augmentation ==== */

/* c x h x w example with distinct values: v = 1000*ch + 10*row + col. */
static void fill_grid(float *x, int c, int h, int w)
{
    for (int k = 0; k < c; k++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) x[(k * h + i) * w + j] = (float)(1000 * k + 10 * i + j);
}

START_TEST(t_augment_flip)
{
    enum { C = 2, H = 3, W = 5 };
    float src[C * H * W], dst[C * H * W];
    fill_grid(src, C, H, W);
    lc_augment_example(dst, src, C, H, W, true, 0, 0);
    for (int k = 0; k < C; k++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) ck_assert_float_eq(dst[(k * H + i) * W + j], src[(k * H + i) * W + (W - 1 - j)]);
    lc_augment_example(dst, src, C, H, W, false, 0, 0);
    ck_assert_int_eq(memcmp(dst, src, sizeof src), 0);

    /* through the batcher: each example is itself or its exact mirror, both occur */
    lc_dataset d;
    ck_assert_int_eq(lc_dataset_alloc(&d, 40, C, H, W, 2), LC_OK);
    for (int n = 0; n < 40; n++) {
        fill_grid(d.x + n * C * H * W, C, H, W);
        d.x[n * C * H * W] += (float)n * 0.001f; /* mark (top-left of channel 0) */
        d.y[n] = n % 2;
    }
    lc_batcher b;
    ck_assert_int_eq(lc_batcher_init(&b, &d, 40, false, 5), LC_OK);
    ck_assert_int_eq(lc_batcher_set_augment(&b, true, 0.0), LC_OK);
    static float x[40 * C * H * W];
    int32_t y[40];
    ck_assert_int_eq(lc_batcher_next(&b, x, y), 40);
    int flipped = 0;
    for (int n = 0; n < 40; n++) {
        const float *s = d.x + n * C * H * W, *o = x + n * C * H * W;
        if (memcmp(s, o, sizeof src) == 0) continue;
        lc_augment_example(dst, s, C, H, W, true, 0, 0);
        ck_assert_int_eq(memcmp(dst, o, sizeof dst), 0);
        flipped++;
    }
    ck_assert_msg(flipped > 5 && flipped < 35, "%d of 40 flipped", flipped);
    lc_batcher_deinit(&b);
    lc_dataset_deinit(&d);
}
END_TEST

START_TEST(t_augment_shift)
{
    enum { C = 3, H = 6, W = 7 };
    float src[C * H * W], dst[C * H * W];
    fill_grid(src, C, H, W);
    /* dy = +1: row i shows row i+1; the last row reflects to row H-2.  dx = -2:
     * column j shows column j-2; columns 0, 1 reflect to 2, 1. */
    lc_augment_example(dst, src, C, H, W, false, 1, -2);
    ck_assert_float_eq(dst[(0 * H + 0) * W + 0], src[(0 * H + 1) * W + 2]);      /* (0,0) <- (1, reflect(-2)=2) */
    ck_assert_float_eq(dst[(1 * H + 2) * W + 1], src[(1 * H + 3) * W + 1]);      /* (2,1) <- (3, reflect(-1)=1) */
    ck_assert_float_eq(dst[(2 * H + 3) * W + 5], src[(2 * H + 4) * W + 3]);      /* interior: plain move */
    ck_assert_float_eq(dst[(0 * H + 5) * W + 6], src[(0 * H + 4) * W + 4]);      /* (5,6) <- (reflect(6)=4, 4) */
    ck_assert_float_eq(dst[(0 * H + 5) * W + 6], 44.0f);
    /* flip and shift together: column j' = W-1-j, then + dx */
    lc_augment_example(dst, src, C, H, W, true, -1, 1);
    ck_assert_float_eq(dst[(0 * H + 0) * W + 0], src[(0 * H + 1) * W + 5]); /* row reflect(-1)=1, col reflect(6+1)=5 */
    ck_assert_float_eq(dst[(0 * H + 2) * W + 6], src[(0 * H + 1) * W + 1]); /* row 1, col 0+1 */

    /* through the batcher, 32x32 with shift 0.125: s = 4, every example is
     * some (flip, dy, dx) within range, and shifts do happen */
    lc_dataset d;
    ck_assert_int_eq(lc_dataset_alloc(&d, 12, 1, 32, 32, 1), LC_OK);
    for (int n = 0; n < 12; n++) {
        for (int k = 0; k < 1024; k++) d.x[n * 1024 + k] = (float)(k * 7 % 1021) + 0.5f * (float)n;
        d.y[n] = 0;
    }
    lc_batcher b;
    ck_assert_int_eq(lc_batcher_init(&b, &d, 12, false, 9), LC_OK);
    ck_assert_int_eq(lc_batcher_set_augment(&b, true, 0.125), LC_OK);
    ck_assert_int_eq(b.aug_dy, 4);
    ck_assert_int_eq(b.aug_dx, 4);
    static float x[12 * 1024], t[1024];
    int32_t y[12];
    ck_assert_int_eq(lc_batcher_next(&b, x, y), 12);
    int moved = 0;
    for (int n = 0; n < 12; n++) {
        int found = 0;
        for (int f = 0; f < 2 && !found; f++)
            for (int dy = -4; dy <= 4 && !found; dy++)
                for (int dx = -4; dx <= 4 && !found; dx++) {
                    lc_augment_example(t, d.x + n * 1024, 1, 32, 32, f, dy, dx);
                    if (memcmp(t, x + n * 1024, sizeof t) == 0) {
                        found = 1;
                        moved += dy != 0 || dx != 0;
                    }
                }
        ck_assert_msg(found, "example %d is not a flip/shift within 4 pixels", n);
    }
    ck_assert_int_gt(moved, 6);
    ck_assert_int_eq(lc_batcher_check(&b), LC_OK);
    ck_assert_int_eq(lc_batcher_set_augment(&b, false, 1.0), LC_ERR_INVALID);
    ASSERT_MSG_HAS("shift fraction 1 must be in [0, 1)");
    lc_batcher_deinit(&b);
    lc_dataset_deinit(&d);
}
END_TEST

START_TEST(t_augment_seeded)
{
    lc_dataset d;
    ck_assert_int_eq(lc_dataset_alloc(&d, 30, 3, 8, 8, 30), LC_OK);
    for (int n = 0; n < 30; n++) {
        for (int k = 0; k < 192; k++) d.x[n * 192 + k] = (float)((n * 31 + k * 17) % 101);
        d.y[n] = n;
    }
    static float xa[8 * 192], xb[8 * 192], xc[8 * 192];
    int32_t ya[8], yb[8], yc[8];
    lc_batcher a, b, c, plain;
    ck_assert_int_eq(lc_batcher_init(&a, &d, 8, true, 21), LC_OK);
    ck_assert_int_eq(lc_batcher_init(&b, &d, 8, true, 21), LC_OK);
    ck_assert_int_eq(lc_batcher_init(&c, &d, 8, true, 22), LC_OK);
    ck_assert_int_eq(lc_batcher_init(&plain, &d, 8, true, 21), LC_OK);
    ck_assert_int_eq(lc_batcher_set_augment(&a, true, 0.25), LC_OK);
    ck_assert_int_eq(lc_batcher_set_augment(&b, true, 0.25), LC_OK);
    ck_assert_int_eq(lc_batcher_set_augment(&c, true, 0.25), LC_OK);
    int differ_c = 0;
    for (int k = 0; k < 4; k++) {
        int na = lc_batcher_next(&a, xa, ya), nb = lc_batcher_next(&b, xb, yb);
        lc_batcher_next(&c, xc, yc);
        float xp[8 * 192];
        int32_t yp[8];
        lc_batcher_next(&plain, xp, yp);
        ck_assert_int_eq(na, nb);
        ck_assert_int_eq(memcmp(xa, xb, (size_t)na * 192 * sizeof(float)), 0); /* same seed, same result */
        ck_assert_int_eq(memcmp(ya, yb, (size_t)na * sizeof(int32_t)), 0);
        ck_assert_int_eq(memcmp(ya, yp, (size_t)na * sizeof(int32_t)), 0); /* augmentation keeps the order */
        differ_c |= memcmp(xa, xc, (size_t)na * 192 * sizeof(float)) != 0;
    }
    ck_assert(differ_c);

    /* resume: the plain-data state, aug_rng included, continues identically */
    lc_batcher r;
    ck_assert_int_eq(lc_batcher_init(&r, &d, 8, true, 999), LC_OK);
    ck_assert_int_eq(lc_batcher_set_augment(&r, true, 0.25), LC_OK);
    r.rng = a.rng;
    r.aug_rng = a.aug_rng;
    r.pos = a.pos;
    r.epoch = a.epoch;
    memcpy(r.order, a.order, 30 * sizeof(int32_t));
    ck_assert_int_eq(lc_batcher_check(&r), LC_OK);
    for (int k = 0; k < 6; k++) {
        if (k == 2) {
            lc_batcher_begin_epoch(&a);
            lc_batcher_begin_epoch(&r);
        }
        int na = lc_batcher_next(&a, xa, ya), nr = lc_batcher_next(&r, xb, yb);
        ck_assert_int_eq(na, nr);
        ck_assert_int_eq(memcmp(xa, xb, (size_t)na * 192 * sizeof(float)), 0);
    }
    lc_batcher_deinit(&a);
    lc_batcher_deinit(&b);
    lc_batcher_deinit(&c);
    lc_batcher_deinit(&plain);
    lc_batcher_deinit(&r);
    lc_dataset_deinit(&d);
}
END_TEST

/* ==== real CIFAR-10 JPEG folders (optional) ==== */

START_TEST(t_real_cifar_jpeg)
{
    char base[1024], tgz[1200];
    const char *shared = getenv("LAYCA_SHARED"), *root = getenv("LAYCA_SOURCE_ROOT"), *ext = getenv("LAYCA_CIFAR_JPEG");
    if (shared && *shared)
        snprintf(base, sizeof base, "%s", shared);
    else
        snprintf(base, sizeof base, "%s/../shared", root && *root ? root : ".");
    snprintf(tgz, sizeof tgz, "%s/data/cifar10-jpeg/train.tar.gz", base);
    struct stat sb;
    if (stat(tgz, &sb) != 0) {
        ck_assert_msg(!lc_test_data_required(), "%s not found (LAYCA_REQUIRE_DATA is set)", tgz);
        fprintf(stderr, "# note: %s not found, skipping the real CIFAR-10 JPEG test\n", tgz);
        return;
    }
    /* an extracted copy (LAYCA_CIFAR_JPEG), or one extracted here by
     * tools/datasets.sh into the test's temporary folder */
    char dir[1400], cmd[4096];
    if (ext && *ext) {
        snprintf(dir, sizeof dir, "%s", ext);
    } else {
        snprintf(dir, sizeof dir, "%s/cifar10-jpeg", lc_test_tmpdir());
        snprintf(cmd, sizeof cmd, "LAYCA_SHARED='%s' '%s/tools/datasets.sh' cifar10-jpeg '%s' 1>&2", base,
                 root && *root ? root : ".", dir);
        ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
    }
    ck_assert_msg(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode), "%s is not a folder", dir);
    char spec[1600], desc[2000];
    snprintf(spec, sizeof spec, "images:%s", dir);
    lc_dataset tr, te;
    double m, s;
    double t0 = lc_now_s();
    ck_assert_msg(lc_data_open(spec, &(lc_data_opts){.no_normalize = true, .no_cache = true}, &tr, &te, &m, &s, desc,
                               sizeof desc) == LC_OK,
                  "%s", lc_error_message());
    fprintf(stderr, "# %s (%.1f s)\n", desc, lc_now_s() - t0);
    ck_assert_int_eq(tr.n, 50000);
    ck_assert_int_eq(te.n, 10000);
    ck_assert_int_eq(tr.c, 3);
    ck_assert_int_eq(tr.h, 32);
    ck_assert_int_eq(tr.w, 32);
    ck_assert_int_eq(tr.classes, 10);
    static const char *const names[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                          "dog",      "frog",       "horse", "ship", "truck"};
    int count[10] = {0};
    for (int c = 0; c < 10; c++) ck_assert_str_eq(tr.class_names[c], names[c]);
    for (int64_t i = 0; i < tr.n; i++) count[tr.y[i]]++;
    for (int c = 0; c < 10; c++) ck_assert_int_eq(count[c], 5000);
    /* The well-known CIFAR-10 training statistics (re-encoded JPEGs: close, not equal). */
    double tm, ts;
    stats_double(&tr, &tm, &ts);
    fprintf(stderr, "# CIFAR-10 JPEG train: mean %.4f, std %.4f\n", tm, ts);
    ck_assert_double_eq_tol(tm, 0.4734, 0.01);
    ck_assert_double_eq_tol(ts, 0.2516, 0.01);
    lc_dataset_deinit(&tr);
    lc_dataset_deinit(&te);
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
    tcase_add_test(e, t_fifo_inputs);
    tcase_add_test(e, t_bad_specs);
    tcase_add_test(e, t_zero_and_huge_headers);
    suite_add_tcase(s, e);
    TCase *cf = tcase_create("cifar");
    tcase_add_test(cf, t_cifar10_roundtrip);
    tcase_add_test(cf, t_cifar100_roundtrip);
    tcase_add_test(cf, t_cifar_broken);
    suite_add_tcase(s, cf);
    TCase *im = tcase_create("images");
    tcase_set_timeout(im, 120);
    tcase_add_test(im, t_images_folder);
    tcase_add_test(im, t_image_decode_kinds);
    tcase_add_test(im, t_bad_images);
    tcase_add_test(im, t_image_huge_claims);
    tcase_add_test(im, t_image_folder_errors);
    tcase_add_test(im, t_image_cache);
    tcase_add_test(im, t_tinyimagenet);
    suite_add_tcase(s, im);
    TCase *nv = tcase_create("normalise_val");
    tcase_add_test(nv, t_per_channel_norm);
    tcase_add_test(nv, t_val_split);
    suite_add_tcase(s, nv);
    TCase *au = tcase_create("augment");
    tcase_add_test(au, t_augment_flip);
    tcase_add_test(au, t_augment_shift);
    tcase_add_test(au, t_augment_seeded);
    suite_add_tcase(s, au);
    TCase *r = tcase_create("real");
    tcase_set_timeout(r, 900);
    tcase_add_test(r, t_real_mnist_toy);
    tcase_add_test(r, t_real_cifar_jpeg);
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

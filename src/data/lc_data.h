/* Data module: idx (MNIST / Fashion-MNIST) readers, data set specs with
 * seeded subsetting and normalisation, and a resumable batcher.
 *
 * Parsers work over (bytes, length) with no global state so that a fuzzer can
 * drive them directly.  Every error sets a one-line message (lc_error_message)
 * that names the file and the problem with the values involved. */
#ifndef LC_DATA_H
#define LC_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_core.h"

/* ---- data sets ---- */

typedef struct lc_dataset {
    int64_t n;          /* examples */
    int c, h, w;        /* per-example shape; MNIST: 1, 28, 28 */
    int classes;        /* number of classes (10 for MNIST) */
    float *x;           /* n*c*h*w floats, owned, NCHW */
    int32_t *y;         /* n labels in [0, classes), owned */
} lc_dataset;

/* Allocates x and y for n examples of shape c x h x w (contents
 * uninitialised).  `d` is overwritten, not freed. */
lc_status lc_dataset_alloc(lc_dataset *d, int64_t n, int c, int h, int w, int classes);
void lc_dataset_deinit(lc_dataset *d);                /* frees, zeroes; NULL-safe */
int64_t lc_dataset_example_size(const lc_dataset *d); /* c*h*w */

/* Copies the examples whose keep[i] is nonzero into `kept` and the others into
 * `rest`, each in the original order.  Either output may be NULL.  An output
 * that would receive zero examples is left zeroed (n = 0, no buffers). */
lc_status lc_dataset_split(const lc_dataset *src, const uint8_t *keep, lc_dataset *kept,
                           lc_dataset *rest);
/* Keeps the first `count` examples (count <= n) in `out`, a copy. */
lc_status lc_dataset_head(const lc_dataset *src, int64_t count, lc_dataset *out);

/* Global scalar mean and (population) standard deviation over every value of
 * x, accumulated in double. */
void lc_dataset_stats(const lc_dataset *d, double *mean, double *std);
/* x = (x - mean) / std, in place. */
void lc_dataset_normalize(lc_dataset *d, double mean, double std);

/* Seeded draws, writing keep[0..n) as 0/1 (the selection, in pool order).
 * per_class: per_class examples of every class in [0, classes), uniformly
 * without replacement; error if a class has fewer (names class and counts).
 * subset: k examples uniformly without replacement, 0 < k <= n.
 * `where` names the source for messages. */
lc_status lc_data_draw_per_class(const lc_dataset *d, int per_class, uint64_t seed,
                                 const char *where, uint8_t *keep);
lc_status lc_data_draw_subset(const lc_dataset *d, int64_t k, uint64_t seed, const char *where,
                              uint8_t *keep);

/* ---- idx format ---- */

#define LC_IDX_MAGIC_IMAGES 0x00000803u /* unsigned bytes, 3 dims: n, h, w */
#define LC_IDX_MAGIC_LABELS 0x00000801u /* unsigned bytes, 1 dim: n */

/* Parsers over bytes (no global state, fuzzable). `where` names the source for
 * messages.  Accept raw or gzip (detected by the 1f 8b magic; concatenated
 * gzip members are accepted).  Data shorter or longer than the header
 * declares is an error.  Outputs are overwritten, not freed; on error they
 * are left zeroed. */
/* Sets n, c = 1, h, w and x scaled to [0, 1] (byte / 255); classes = 0, y = NULL. */
lc_status lc_idx_parse_images(const uint8_t *bytes, size_t len, const char *where, lc_dataset *out);
/* *labels: n int32 values 0..255 (caller frees). */
lc_status lc_idx_parse_labels(const uint8_t *bytes, size_t len, const char *where, int32_t **labels,
                              int64_t *n);
/* Reads both files, checks the counts match and every label < classes
 * (1 <= classes <= 256). */
lc_status lc_idx_load_pair(const char *images_path, const char *labels_path, int classes,
                           lc_dataset *out);
/* A folder with the four standard files, each raw or .gz:
 * train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
 * t10k-labels-idx1-ubyte (MNIST and Fashion-MNIST names; the variant with a
 * dot, train-images.idx3-ubyte, is also found).  10 classes.  A missing file
 * is an error naming it and the paths tried. */
lc_status lc_mnist_load_dir(const char *dir, lc_dataset *train, lc_dataset *test);

/* ---- data set specs ---- */

typedef struct lc_data_opts {
    int per_class;        /* >0: keep this many training examples per class (seeded random draw) */
    int64_t train_subset; /* >0: keep this many training examples (seeded random draw) */
    int64_t test_subset;  /* >0: keep the first N test examples */
    uint64_t seed;
    bool no_normalize;    /* default false: normalise */
    int classes;          /* >0: number of classes; 0: 10 for mnist:, max label + 1 for idx: */
} lc_data_opts;

/* spec:
 *   "mnist:DIR"          -> lc_mnist_load_dir; subsets applied to the train split.
 *   "idx:IMAGES,LABELS"  -> one idx pair is a pool: the training examples are drawn from it by
 *                           per_class or train_subset (one of them is required), and the test
 *                           split is every remaining example (the paper's MNIST toy: 10 per class
 *                           from the 10k MNIST test set, test on the other 9,900).
 * per_class and train_subset are exclusive.  Unknown prefix -> error listing the known kinds.
 * After subsetting both splits are normalised by the global scalar mean and std of the training
 * examples kept (x = (x - mean) / std); *mean and *std receive them (0 and 1 with no_normalize).
 * opts, mean, std and desc may be NULL.  desc receives a one-line description, e.g.
 * "mnist:/usr/share/datasets/fashion-mnist: 60000 train, 10000 test, 1x28x28, 10 classes".
 * On error train and test are left zeroed. */
lc_status lc_data_open(const char *spec, const lc_data_opts *opts, lc_dataset *train, lc_dataset *test,
                       double *mean, double *std, char *desc, size_t desc_len);

/* ---- batching ---- */

/* Plain-data state so it can be saved and restored for resumption: save rng,
 * order[0..n), pos and epoch; restore them into a batcher made by
 * lc_batcher_init over the same data set and check it with lc_batcher_check.
 * Each epoch's order is the identity permutation shuffled by the rng, so it
 * depends only on the seed and the epoch number. */
typedef struct lc_batcher {
    const lc_dataset *d;
    int batch;
    bool shuffle;
    lc_rng rng;
    int32_t *order;   /* permutation of [0, n), owned */
    int64_t pos;      /* next index into order */
    int64_t epoch;    /* epochs started */
} lc_batcher;

lc_status lc_batcher_init(lc_batcher *b, const lc_dataset *d, int batch, bool shuffle, uint64_t seed);
void lc_batcher_deinit(lc_batcher *b);          /* frees, zeroes; NULL-safe */
void lc_batcher_begin_epoch(lc_batcher *b);     /* reshuffles when shuffle; pos = 0; epoch++ */
/* Copies up to `batch` examples (x: count*example_size floats, y: count
 * labels) into the caller's buffers; returns count, 0 when the epoch is
 * exhausted.  The last batch may be partial.  If no epoch was started yet
 * (epoch == 0), starts one. */
int lc_batcher_next(lc_batcher *b, float *x, int32_t *y);
/* Validates restored state: batch > 0, 0 <= pos <= n, order a permutation. */
lc_status lc_batcher_check(const lc_batcher *b);

#endif

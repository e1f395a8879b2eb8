/* Data module: idx (MNIST / Fashion-MNIST) readers, CIFAR-10/100 binary
 * readers, image folders (JPEG / PNG, with a decode cache), data set specs
 * with seeded subsetting, validation split and normalisation, and a resumable
 * batcher with seeded augmentation.
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
    char **class_names; /* NULL, or `classes` owned strings (image folders, CIFAR meta files) */
} lc_dataset;

/* Allocates x and y for n examples of shape c x h x w (contents
 * uninitialised).  `d` is overwritten, not freed. */
lc_status lc_dataset_alloc(lc_dataset *d, int64_t n, int c, int h, int w, int classes);
void lc_dataset_deinit(lc_dataset *d);                /* frees, zeroes; NULL-safe */
/* Replaces d->class_names by copies of names[0..count) (count must equal
 * d->classes); names == NULL clears them. */
lc_status lc_dataset_set_class_names(lc_dataset *d, const char *const *names, int count);
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
/* Per channel (c values each, NCHW): mean[k], std[k] over every value of
 * channel k of every example; and the matching in-place transform. */
void lc_dataset_stats_per_channel(const lc_dataset *d, double *mean, double *std);
void lc_dataset_normalize_per_channel(lc_dataset *d, const double *mean, const double *std);

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

/* ---- CIFAR-10 / CIFAR-100 binary format ----
 * CIFAR-10 record: 1 label byte (0..9) + 3072 pixel bytes: the 32x32 red
 * plane, then green, then blue, each row-major (so a record is already CHW).
 * CIFAR-100 record: 1 coarse label byte (0..19) + 1 fine label byte (0..99) +
 * the same 3072 pixel bytes.  Parsers over bytes: a length that is not a
 * positive multiple of the record size or a label out of range is an error
 * naming `where` and the values.  x is byte / 255, shape 3x32x32. */
#define LC_CIFAR_PIXELS 3072
lc_status lc_cifar10_parse(const uint8_t *bytes, size_t len, const char *where, lc_dataset *out);
/* coarse: use the coarse label (20 classes) instead of the fine one (100). */
lc_status lc_cifar100_parse(const uint8_t *bytes, size_t len, const char *where, bool coarse, lc_dataset *out);
/* dir is the extracted cifar-10-batches-bin folder (or its parent): train =
 * data_batch_1.bin .. data_batch_5.bin in order, test = test_batch.bin.
 * Class names come from batches.meta.txt when present (else the standard
 * ten).  A missing file is an error naming it before anything is parsed. */
lc_status lc_cifar10_load_dir(const char *dir, lc_dataset *train, lc_dataset *test);
/* dir is cifar-100-binary (or its parent): train.bin, test.bin; class names
 * from fine_label_names.txt / coarse_label_names.txt when present. */
lc_status lc_cifar100_load_dir(const char *dir, bool coarse, lc_dataset *train, lc_dataset *test);

/* ---- images: JPEG (libjpeg-turbo) and PNG (libpng) ---- */

/* An 8-bit RGB image, pixels interleaved row-major (HWC), owned. */
typedef struct lc_image {
    int w, h;
    uint8_t *rgb; /* w*h*3 bytes */
} lc_image;

/* Decodes JPEG or PNG bytes (told apart by their signature) into RGB:
 * grayscale is replicated into 3 channels, alpha is dropped, palettes are
 * expanded, 16-bit samples are reduced to 8.  Corrupt or truncated data is
 * an error naming `where` (libjpeg and libpng errors never exit).  Images
 * over 16384 pixels on a side are refused.  *out is overwritten. */
lc_status lc_image_decode(const uint8_t *bytes, size_t len, const char *where, lc_image *out);
void lc_image_deinit(lc_image *im); /* NULL-safe */

/* ---- image folders ----
 * LC_IMAGES_FOLDERS: DIR/train/<class>/<file> and DIR/test/<class>/<file>,
 *   files *.jpg, *.jpeg, *.png (any case); classes = the sorted subfolder
 *   names of train; test must have exactly the same class folders.
 * LC_IMAGES_TINYIMAGENET: DIR/train/<wnid>/images/<file>, and as the test
 *   split DIR/val/images/<file> labelled by DIR/val/val_annotations.txt
 *   (tab-separated: file, wnid, box...).
 * Within a class, files are taken in sorted name order.  An empty class, an
 * unknown or missing class folder, an image of another size than the
 * split's first (naming both files and sizes) and a corrupt image are errors.
 * Decoded splits are cached (see lc_images_opts). */
typedef enum lc_images_layout { LC_IMAGES_FOLDERS = 0, LC_IMAGES_TINYIMAGENET } lc_images_layout;

typedef struct lc_images_opts {
    /* Cache folder for decoded splits; NULL: the data folder of layca's
     * cache (lc_cache_dir: the process's cache folder, lc_cache_dir_set;
     * none when it has none).  A cache file is
     * keyed on the folder's real path, the split, the file list with sizes and modification times; it
     * stores uint8 pixels, labels and class names with a checksum, is
     * written atomically, and a corrupt or mismatching entry is rebuilt. */
    const char *cache_dir;
    bool no_cache;      /* neither read nor write the cache */
    bool quiet;         /* no progress lines on stderr */
} lc_images_opts;

/* Per split: whether it came from the cache (1) or was decoded (0), and the
 * cache file used ("" when there is none). */
typedef struct lc_images_info {
    int from_cache[2];        /* [0] train, [1] test */
    char cache_path[2][4096];
} lc_images_info;

/* Loads both splits (x in [0, 1], NCHW, c = 3) with class names.  opts and
 * info may be NULL.  On error both outputs are left zeroed. */
lc_status lc_images_load_dir(const char *dir, lc_images_layout layout, const lc_images_opts *opts,
                             lc_dataset *train, lc_dataset *test, lc_images_info *info);

/* ---- data set specs ---- */

typedef struct lc_data_opts {
    int per_class;        /* >0: keep this many training examples per class (seeded random draw) */
    int64_t train_subset; /* >0: keep this many training examples (seeded random draw) */
    int64_t test_subset;  /* >0: keep N test examples (seeded draw, original order kept) */
    uint64_t seed;
    bool no_normalize;    /* default false: normalise */
    int classes;          /* >0: number of classes; 0: 10 for mnist:, max label + 1 for idx: */
    bool per_channel;     /* normalise each channel by its own mean/std (default: one global scalar) */
    double val_split;     /* in (0, 1): this fraction of the kept training examples (seeded random
                             draw) becomes the validation split (lc_data_open3 only); 0: none */
    const char *cache_dir;/* image folders: decode cache folder (NULL: the data folder of layca's
                             cache, as lc_images_opts) */
    bool no_cache;        /* image folders: do not read or write the decode cache */
    bool quiet;           /* image folders: no decoding progress on stderr */
    int fixed_nstats;     /* >0: normalise with fixed_mean/fixed_std (1 global value, or one per
                             channel) instead of the training examples' statistics, e.g. those
                             stored with trained weights; per_channel and no_normalize are ignored */
    double fixed_mean[4], fixed_std[4];
} lc_data_opts;

#define LC_DATA_MAX_CHANNELS 4
/* What lc_data_open3 did. */
typedef struct lc_data_info {
    int nstats;                          /* 1 (global) or c (per channel) */
    double mean[LC_DATA_MAX_CHANNELS];   /* normalisation applied (0 and 1 with no_normalize) */
    double std[LC_DATA_MAX_CHANNELS];
    int cache_hits;                      /* image folders: splits read from the decode cache */
    int cache_misses;                    /* image folders: splits decoded (and cached) */
} lc_data_info;

/* spec:
 *   "mnist:DIR"          -> lc_mnist_load_dir; subsets applied to the train split.
 *   "cifar10:DIR"        -> lc_cifar10_load_dir (cifar-10-batches-bin).
 *   "cifar100:DIR"       -> lc_cifar100_load_dir, fine labels (100 classes);
 *   "cifar100-coarse:DIR"   the same with the coarse labels (20 classes).
 *   "images:DIR"         -> lc_images_load_dir, train/<class>/ and test/<class>/ folders.
 *   "tinyimagenet:DIR"   -> lc_images_load_dir, Tiny ImageNet layout (val/ is the test split).
 *                           Archives are not read: extract them first, e.g.
 *                           tar xzf ../shared/data/cifar10-jpeg/train.tar.gz -C /some/dir.
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

/* The same with a validation split: with opts->val_split in (0, 1),
 * round(val_split * n) of the kept training examples (seeded by opts->seed,
 * in their original order) move to *val; val is left zeroed when val_split
 * is 0.  Normalisation (global, or per channel with opts->per_channel) is
 * computed on the remaining training examples and applied to all three.
 * val, info, desc may be NULL (val only when val_split is 0).  lc_data_open is
 * lc_data_open3 without val; with per_channel its *mean and *std receive
 * channel 0's values (all of them are in lc_data_info). */
lc_status lc_data_open3(const char *spec, const lc_data_opts *opts, lc_dataset *train, lc_dataset *val,
                        lc_dataset *test, lc_data_info *info, char *desc, size_t desc_len);

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
    /* augmentation (lc_batcher_set_augment), applied to each copied example */
    bool aug_flip;    /* horizontal flip with probability 0.5 */
    int aug_dy, aug_dx; /* maximum shift in pixels (rows, columns) */
    lc_rng aug_rng;   /* seeded from the batcher seed; part of the saved state */
    /* data parallelism (lc_batcher_set_shard): of each global batch this
     * process copies the share of shard `shard` out of `shards` */
    int shard, shards;
    int64_t last_start; /* index into order of the first example copied by the last lc_batcher_next */
    int last_global;    /* examples of the last global batch, over all shards */
} lc_batcher;

lc_status lc_batcher_init(lc_batcher *b, const lc_dataset *d, int batch, bool shuffle, uint64_t seed);
void lc_batcher_deinit(lc_batcher *b);          /* frees, zeroes; NULL-safe */
void lc_batcher_begin_epoch(lc_batcher *b);     /* reshuffles when shuffle; pos = 0; epoch++ */
/* Copies up to `batch` examples (x: count*example_size floats, y: count
 * labels) into the caller's buffers; returns count, 0 when the epoch is
 * exhausted.  The last batch may be partial.  If no epoch was started yet
 * (epoch == 0), starts one. */
int lc_batcher_next(lc_batcher *b, float *x, int32_t *y);
/* Training augmentation, seeded and resumable (aug_rng is plain data, seeded
 * by lc_batcher_init from its seed): each example copied by lc_batcher_next
 * is, independently, mirrored left-right with probability 0.5 (flip) and
 * shifted by (dy, dx) drawn uniformly from [-s, s] each, s = round(shift_fraction
 * * size) pixels per axis (0.125 at 32 -> 4), with reflect padding:
 *   out[c][i][j] = in[c][reflect(i + dy)][reflect(j' + dx)],  j' = flip ? w-1-j : j
 * (reflect mirrors about the edge pixel without repeating it: -1 -> 1, h -> h-2).
 * Random draws per example, in this order: flip (if on), dy, dx (if s > 0).
 * shift_fraction in [0, 1); s is capped at size - 1.  (false, 0) turns it off. */
lc_status lc_batcher_set_augment(lc_batcher *b, bool flip, double shift_fraction);
/* Data parallelism: `batch` stays the global batch, and each lc_batcher_next
 * walks the same seeded global order on every process but copies only
 * positions [count * shard / shards, count * (shard + 1) / shards) of the
 * global batch of `count` examples (the union over the shards is the
 * 1-process batch).  The augmentation stream draws for every example of the
 * global batch, so each example gets the 1-process transform and every
 * shard's state stays the same.  The default is shard 0 of 1. */
lc_status lc_batcher_set_shard(lc_batcher *b, int shard, int shards);
/* Applies one augmentation to a single c x h x w example (src != dst). */
void lc_augment_example(float *dst, const float *src, int c, int h, int w, bool flip, int dy, int dx);
/* Validates restored state: batch > 0, 0 <= pos <= n, order a permutation. */
lc_status lc_batcher_check(const lc_batcher *b);

#endif

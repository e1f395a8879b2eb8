/* Minibatch iteration with a seeded, resumable order and optional seeded
 * augmentation (flip, reflect-padded shifts).  All state lives in lc_batcher
 * as plain data (rng, order, pos, epoch, aug_rng). */
#include "lc_data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

lc_status lc_batcher_init(lc_batcher *b, const lc_dataset *d, int batch, bool shuffle, uint64_t seed)
{
    memset(b, 0, sizeof *b);
    if (!d || d->n <= 0) return LC_ERR(LC_ERR_INVALID, "batcher: the data set is empty");
    if (d->n > INT32_MAX)
        return LC_ERR(LC_ERR_INVALID, "batcher: %lld examples is more than the supported %d", (long long)d->n,
                      INT32_MAX);
    if (batch <= 0) return LC_ERR(LC_ERR_INVALID, "batcher: batch size %d must be positive", batch);
    b->order = malloc((size_t)d->n * sizeof *b->order);
    if (!b->order) return LC_ERR(LC_ERR_NOMEM, "batcher: out of memory for %lld indices", (long long)d->n);
    for (int64_t i = 0; i < d->n; i++) b->order[i] = (int32_t)i;
    b->d = d;
    b->batch = batch;
    b->shuffle = shuffle;
    lc_rng_seed(&b->rng, seed);
    /* The augmentation stream is separate so that turning augmentation on
     * does not change the data order. */
    lc_rng_seed(&b->aug_rng, seed ^ 0x6175676d656e7421ULL);
    b->pos = 0;
    b->epoch = 0;
    b->shard = 0;
    b->shards = 1;
    return LC_OK;
}

lc_status lc_batcher_set_shard(lc_batcher *b, int shard, int shards)
{
    if (shards < 1 || shard < 0 || shard >= shards)
        return LC_ERR(LC_ERR_INVALID, "batcher: shard %d of %d does not exist", shard, shards);
    b->shard = shard;
    b->shards = shards;
    return LC_OK;
}

void lc_batcher_deinit(lc_batcher *b)
{
    if (!b) return;
    free(b->order);
    memset(b, 0, sizeof *b);
}

void lc_batcher_begin_epoch(lc_batcher *b)
{
    /* Start from the identity so that an epoch's order depends only on the
     * rng state, not on the previous epoch's permutation. */
    for (int64_t i = 0; i < b->d->n; i++) b->order[i] = (int32_t)i;
    if (b->shuffle) lc_rng_shuffle_i32(&b->rng, b->order, (size_t)b->d->n);
    b->pos = 0;
    b->epoch++;
}

/* Mirror index into [0, n) without repeating the edge: -1 -> 1, n -> n-2. */
static inline int reflect(int i, int n)
{
    if (n == 1) return 0;
    int period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}

void lc_augment_example(float *dst, const float *src, int c, int h, int w, bool flip, int dy, int dx)
{
    size_t plane = (size_t)h * (size_t)w;
    for (int i = 0; i < h; i++) {
        int si = reflect(i + dy, h);
        for (int j = 0; j < w; j++) {
            int sj = reflect((flip ? w - 1 - j : j) + dx, w);
            size_t o = (size_t)i * w + (size_t)j, s = (size_t)si * w + (size_t)sj;
            for (int k = 0; k < c; k++) dst[(size_t)k * plane + o] = src[(size_t)k * plane + s];
        }
    }
}

lc_status lc_batcher_set_augment(lc_batcher *b, bool flip, double shift_fraction)
{
    if (!b->d) return LC_ERR(LC_ERR_INVALID, "batcher: not initialised");
    if (!(shift_fraction >= 0 && shift_fraction < 1))
        return LC_ERR(LC_ERR_INVALID, "batcher: shift fraction %g must be in [0, 1)", shift_fraction);
    int h = b->d->h, w = b->d->w;
    b->aug_flip = flip;
    b->aug_dy = (int)LC_MIN(lround(shift_fraction * h), (long)h - 1);
    b->aug_dx = (int)LC_MIN(lround(shift_fraction * w), (long)w - 1);
    return LC_OK;
}

int lc_batcher_next(lc_batcher *b, float *x, int32_t *y)
{
    if (b->epoch == 0) lc_batcher_begin_epoch(b);
    const lc_dataset *d = b->d;
    int64_t left = d->n - b->pos;
    b->last_global = 0;
    if (left <= 0) return 0;
    int count = (int)LC_MIN((int64_t)b->batch, left);
    int shards = b->shards > 0 ? b->shards : 1;
    int lo = (int)((int64_t)count * b->shard / shards), hi = (int)((int64_t)count * (b->shard + 1) / shards);
    size_t es = (size_t)lc_dataset_example_size(d);
    bool aug = b->aug_flip || b->aug_dy > 0 || b->aug_dx > 0;
    for (int k = 0; k < count; k++) {
        if (!aug && (k < lo || k >= hi)) continue;
        int32_t i = b->order[b->pos + k];
        const float *src = d->x + (size_t)i * es;
        float *dst = x + (size_t)(k - lo) * es;
        if (!aug) {
            memcpy(dst, src, es * sizeof(float));
        } else {
            /* every shard draws for every example: the same stream everywhere */
            bool flip = b->aug_flip && (lc_rng_next(&b->aug_rng) >> 63);
            int dy = b->aug_dy > 0 ? (int)lc_rng_below(&b->aug_rng, (uint64_t)(2 * b->aug_dy + 1)) - b->aug_dy : 0;
            int dx = b->aug_dx > 0 ? (int)lc_rng_below(&b->aug_rng, (uint64_t)(2 * b->aug_dx + 1)) - b->aug_dx : 0;
            if (k < lo || k >= hi) continue;
            lc_augment_example(dst, src, d->c, d->h, d->w, flip, dy, dx);
        }
        y[k - lo] = d->y[i];
    }
    b->last_start = b->pos + lo;
    b->last_global = count;
    b->pos += count;
    return hi - lo;
}

lc_status lc_batcher_check(const lc_batcher *b)
{
    if (!b->d || !b->order) return LC_ERR(LC_ERR_INVALID, "batcher: not initialised");
    int64_t n = b->d->n;
    if (b->batch <= 0) return LC_ERR(LC_ERR_INVALID, "batcher: batch size %d must be positive", b->batch);
    if (b->pos < 0 || b->pos > n)
        return LC_ERR(LC_ERR_INVALID, "batcher: position %lld is outside 0..%lld", (long long)b->pos, (long long)n);
    if (b->epoch < 0) return LC_ERR(LC_ERR_INVALID, "batcher: epoch %lld is negative", (long long)b->epoch);
    if (b->aug_dy < 0 || b->aug_dy > b->d->h - 1 || b->aug_dx < 0 || b->aug_dx > b->d->w - 1)
        return LC_ERR(LC_ERR_INVALID, "batcher: augmentation shift %d x %d pixels is outside 0..%d x 0..%d", b->aug_dy,
                      b->aug_dx, b->d->h - 1, b->d->w - 1);
    uint8_t *seen = calloc((size_t)n, 1);
    if (!seen) return LC_ERR(LC_ERR_NOMEM, "batcher: out of memory");
    for (int64_t k = 0; k < n; k++) {
        int32_t i = b->order[k];
        if (i < 0 || i >= n || seen[i]) {
            free(seen);
            return LC_ERR(LC_ERR_INVALID, "batcher: order[%lld] = %d makes the order not a permutation of 0..%lld",
                          (long long)k, (int)i, (long long)(n - 1));
        }
        seen[i] = 1;
    }
    free(seen);
    return LC_OK;
}

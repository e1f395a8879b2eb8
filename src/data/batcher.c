/* Minibatch iteration with a seeded, resumable order.  All state lives in
 * lc_batcher as plain data (rng, order, pos, epoch). */
#include "lc_data.h"

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
    b->pos = 0;
    b->epoch = 0;
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

int lc_batcher_next(lc_batcher *b, float *x, int32_t *y)
{
    if (b->epoch == 0) lc_batcher_begin_epoch(b);
    const lc_dataset *d = b->d;
    int64_t left = d->n - b->pos;
    if (left <= 0) return 0;
    int count = (int)LC_MIN((int64_t)b->batch, left);
    size_t es = (size_t)lc_dataset_example_size(d);
    for (int k = 0; k < count; k++) {
        int32_t i = b->order[b->pos + k];
        memcpy(x + (size_t)k * es, d->x + (size_t)i * es, es * sizeof(float));
        y[k] = d->y[i];
    }
    b->pos += count;
    return count;
}

lc_status lc_batcher_check(const lc_batcher *b)
{
    if (!b->d || !b->order) return LC_ERR(LC_ERR_INVALID, "batcher: not initialised");
    int64_t n = b->d->n;
    if (b->batch <= 0) return LC_ERR(LC_ERR_INVALID, "batcher: batch size %d must be positive", b->batch);
    if (b->pos < 0 || b->pos > n)
        return LC_ERR(LC_ERR_INVALID, "batcher: position %lld is outside 0..%lld", (long long)b->pos, (long long)n);
    if (b->epoch < 0) return LC_ERR(LC_ERR_INVALID, "batcher: epoch %lld is negative", (long long)b->epoch);
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

/* Fuzz target: idx images and labels, raw or gzip (lc_idx_parse_images,
 * lc_idx_parse_labels), on the same bytes. */
#include <stdlib.h>

#include "lc_data.h"
#include "lc_fuzz.h"

const char *lc_fuzz_idx(const uint8_t *data, size_t size)
{
    uint8_t *b = lc_fuzz_copy(data, size);
    if (!b) return NULL;
    const char *why = NULL;
    lc_dataset d;
    lc_error_clear();
    lc_status st = lc_idx_parse_images(b, size, "fuzz-images", &d);
    if (st != LC_OK) {
        why = lc_fuzz_check_error(st);
        if (!why && (d.x || d.n)) why = "outputs not cleared after an error";
    } else {
        lc_fuzz_accepted++;
        int64_t k = d.n * (int64_t)d.h * d.w;
        if (d.n <= 0 || d.h <= 0 || d.w <= 0 || d.c != 1 || !d.x) why = "a data set with a bad shape";
        for (int64_t i = 0; i < k && !why; i++)
            if (!(d.x[i] >= 0.0f && d.x[i] <= 1.0f)) why = "a pixel outside [0, 1]";
        lc_dataset_deinit(&d);
    }
    int32_t *y = NULL;
    int64_t n = 0;
    lc_error_clear();
    st = lc_idx_parse_labels(b, size, "fuzz-labels", &y, &n);
    if (st != LC_OK) {
        if (!why) why = lc_fuzz_check_error(st);
        if (!why && (y || n)) why = "outputs not cleared after an error";
    } else {
        lc_fuzz_accepted++;
        if (n <= 0 || !y) why = why ? why : "labels with a bad count";
        for (int64_t i = 0; i < n && !why; i++)
            if (y[i] < 0 || y[i] > 255) why = "a label outside 0..255";
    }
    free(y);
    free(b);
    return why;
}

/* Fuzz target: CIFAR-10 and CIFAR-100 (fine and coarse) binary records. */
#include <stdlib.h>

#include "lc_data.h"
#include "lc_fuzz.h"

static const char *one(lc_status st, lc_dataset *d, int classes, size_t size, size_t rec)
{
    const char *why = NULL;
    if (st != LC_OK) {
        why = lc_fuzz_check_error(st);
        if (!why && (d->x || d->y || d->n)) why = "outputs not cleared after an error";
        return why;
    }
    lc_fuzz_accepted++;
    if (d->n <= 0 || (size_t)d->n * rec != size || d->c != 3 || d->h != 32 || d->w != 32 || d->classes != classes)
        why = "a data set with a bad shape or count";
    for (int64_t i = 0; i < d->n && !why; i++)
        if (d->y[i] < 0 || d->y[i] >= classes) why = "a label out of range";
    for (int64_t i = 0; i < d->n * LC_CIFAR_PIXELS && !why; i++)
        if (!(d->x[i] >= 0.0f && d->x[i] <= 1.0f)) why = "a pixel outside [0, 1]";
    lc_dataset_deinit(d);
    return why;
}

const char *lc_fuzz_cifar(const uint8_t *data, size_t size)
{
    uint8_t *b = lc_fuzz_copy(data, size);
    if (!b) return NULL;
    lc_dataset d;
    lc_error_clear();
    const char *why = one(lc_cifar10_parse(b, size, "fuzz.bin", &d), &d, 10, size, LC_CIFAR_PIXELS + 1);
    if (!why) why = one(lc_cifar100_parse(b, size, "fuzz.bin", false, &d), &d, 100, size, LC_CIFAR_PIXELS + 2);
    if (!why) why = one(lc_cifar100_parse(b, size, "fuzz.bin", true, &d), &d, 20, size, LC_CIFAR_PIXELS + 2);
    free(b);
    return why;
}

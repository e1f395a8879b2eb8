/* Fuzz target: the checkpoint reader (lc_checkpoint_parse): the
 * safetensors container, the checkpoint mark, the checksum over every
 * tensor and the loop state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lc_fuzz.h"
#include "lc_train.h"

const char *lc_fuzz_checkpoint(const uint8_t *data, size_t size)
{
    uint8_t *bytes = lc_fuzz_copy(data, size);
    if (!bytes) return NULL;
    lc_checkpoint c;
    lc_error_clear();
    lc_status st = lc_checkpoint_parse(bytes, size, "fuzz.ckpt", &c); /* takes bytes */
    if (st != LC_OK) {
        const char *why = lc_fuzz_check_error(st);
        if (!why && (c.file.tensors || c.file.bytes || c.file.n || c.file.n_meta)) why = "outputs not cleared after an error";
        return why;
    }
    lc_fuzz_accepted++;
    const char *why = NULL;
    if (c.step < 0 || c.epoch < 0 || c.in_epoch < 0 || c.seen < 0 || c.exec_step < 0 || c.batcher_pos < 0 ||
        c.batcher_epoch < 0 || c.optim_steps != c.step)
        why = "a negative or inconsistent loop state accepted";
    else if (!isfinite(c.elapsed_s) || c.elapsed_s < 0)
        why = "a bad elapsed time accepted";
    else if (!lc_st_file_meta(&c.file, "layca.checkpoint"))
        why = "accepted without the checkpoint mark";
    const lc_st_tensor *order = lc_st_file_find(&c.file, "layca.data.order");
    if (!why && order && order->dtype == LC_ST_I32 && order->rank == 1 && order->shape[0] > 0) {
        int32_t first, last;
        memcpy(&first, order->raw, 4); /* the sanitizer checks both ends */
        memcpy(&last, (const uint8_t *)order->raw + 4 * (order->shape[0] - 1), 4);
        (void)first;
        (void)last;
    }
    lc_checkpoint_deinit(&c);
    return why;
}

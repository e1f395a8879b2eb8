/* Fuzz target: the safetensors reader (lc_safetensors_parse). */
#include <stdlib.h>
#include <string.h>

#include "lc_fuzz.h"
#include "lc_model.h"

const char *lc_fuzz_safetensors(const uint8_t *data, size_t size)
{
    uint8_t *bytes = lc_fuzz_copy(data, size);
    if (!bytes) return NULL;
    lc_st_file f;
    lc_error_clear();
    lc_status st = lc_safetensors_parse(bytes, size, "fuzz.safetensors", &f); /* takes bytes */
    if (st != LC_OK) {
        const char *why = lc_fuzz_check_error(st);
        if (!why && (f.tensors || f.bytes || f.n)) why = "outputs not cleared after an error";
        return why;
    }
    lc_fuzz_accepted++;
    const char *why = NULL;
    const uint8_t *lo = f.bytes, *hi = f.bytes + size;
    volatile float sink = 0;
    for (int i = 0; i < f.n && !why; i++) {
        const lc_st_tensor *t = &f.tensors[i];
        if (t->rank < 0 || t->rank > LC_MAX_RANK) why = "a rank out of range";
        int64_t numel = 1;
        for (int k = 0; k < t->rank && !why; k++) {
            if (t->shape[k] < 0) why = "a negative dimension";
            else numel *= t->shape[k];
        }
        if (why) break;
        const uint8_t *p = (const uint8_t *)t->raw;
        size_t es = lc_st_dtype_size(t->dtype);
        if (!es) why = "an unknown dtype";
        else if ((t->dtype == LC_ST_F32) != (t->data != NULL) || (t->data && (const void *)t->data != t->raw))
            why = "F32 data and raw data disagree";
        else if (t->data && (uintptr_t)p % 4) why = "F32 tensor data that is not 4-byte aligned";
        else if (!p || p < lo || p > hi || (uint64_t)numel > (uint64_t)(hi - p) / es) why = "tensor data outside the file";
        else if (numel > 0) sink += p[0] + p[numel * es - 1]; /* the sanitizer checks both ends */
        if (!why && lc_st_file_find(&f, t->name) != t) why = "a tensor name found twice or not at all";
        if (!why && strlen(t->name) >= sizeof t->name) why = "a name that is not terminated";
    }
    for (int i = 0; i < f.n_meta && !why; i++)
        if (!f.meta_key[i] || !f.meta_value[i] || lc_st_file_meta(&f, f.meta_key[i]) == NULL) why = "a metadata entry lost";
    (void)sink;
    lc_st_file_deinit(&f);
    return why;
}

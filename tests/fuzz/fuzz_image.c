/* Fuzz target: JPEG and PNG decoding (lc_image_decode). */
#include <stdlib.h>

#include "lc_data.h"
#include "lc_fuzz.h"

const char *lc_fuzz_image(const uint8_t *data, size_t size)
{
    uint8_t *b = lc_fuzz_copy(data, size);
    if (!b) return NULL;
    lc_image im;
    lc_error_clear();
    lc_status st = lc_image_decode(b, size, "fuzz-image", &im);
    free(b);
    if (st != LC_OK) {
        const char *why = lc_fuzz_check_error(st);
        if (!why && (im.rgb || im.w || im.h)) why = "outputs not cleared after an error";
        return why;
    }
    lc_fuzz_accepted++;
    const char *why = NULL;
    if (im.w < 1 || im.h < 1 || im.w > 16384 || im.h > 16384 || !im.rgb) why = "an image size out of range";
    else {
        /* the sanitizer checks that all w*h*3 bytes exist */
        volatile unsigned sum = im.rgb[0] + im.rgb[(size_t)im.w * im.h * 3 - 1];
        (void)sum;
    }
    lc_image_deinit(&im);
    return why;
}

/* Helpers shared by the fuzz targets. */
#include "lc_fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "lc_core.h"

long lc_fuzz_accepted;

const char *lc_fuzz_check_error(int status)
{
    if (status == LC_OK) return "an error path returned LC_OK";
    const char *m = lc_error_message();
    if (!m || !m[0] || !strcmp(m, "unknown error")) return "an error without a message";
    for (const unsigned char *p = (const unsigned char *)m; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return "an error message with a control byte (not one printable line)";
    if (strlen(m) >= 1024) return "an error message longer than the message buffer";
    return NULL;
}

uint8_t *lc_fuzz_copy(const uint8_t *data, size_t size)
{
    uint8_t *b = malloc(size ? size : 1);
    if (b && size) memcpy(b, data, size);
    return b;
}

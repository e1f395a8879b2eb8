/* The table of OpenCL kernel sources embedded at build time by
 * tools/embed_cl.c (cl_kernels/meson.build lists the files). */
#ifndef LC_RT_EMBEDDED_H
#define LC_RT_EMBEDDED_H

#include <stddef.h>

typedef struct lc_embedded_kernel {
    const char *name;          /* file name without ".cl" */
    const unsigned char *data; /* the bytes, followed by a 0 byte */
    size_t len;                /* length without the 0 byte */
} lc_embedded_kernel;

extern const lc_embedded_kernel lc_embedded_kernels[];
extern const int lc_embedded_kernel_count;

#endif

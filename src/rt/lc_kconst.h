/* Constants shared by the C code and the OpenCL kernels.  The C code uses
 * these names; lc_rt_program passes every one to every program build as a
 * -D option (lc_kconst_options), so the kernels use the same names and no
 * value is written twice. */
#ifndef LC_KCONST_H
#define LC_KCONST_H

#include <stddef.h>
#include <stdio.h>

/* X(name, value) */
#define LC_KCONST_TABLE(X)                                                                                             \
    X(LC_ELT_VEC, 16)        /* floats per work-item of the CPU-style ReLU kernels (eltwise.cl) */                     \
    X(LC_GPU_ELT_VEC, 4)     /* floats per work-item of the GPU-style ReLU kernels (eltwise.cl) */                     \
    X(LC_RED_WG_CPU, 64)     /* work-items wanted per group of the CPU-style reductions (norm.cl, loss.cl) */          \
    X(LC_RED_WG_GPU, 256)    /* work-items wanted per group of the GPU-style reductions (norm.cl) */

enum {
#define LC_KC_ENUM_(name, value) name = value,
    LC_KCONST_TABLE(LC_KC_ENUM_)
#undef LC_KC_ENUM_
};

/* "-DLC_ELT_VEC=16 ..." into buf (len >= 256). */
static inline const char *lc_kconst_options(char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = 0;
#define LC_KC_OPT_(name, value)                                                                                        \
    if (o < len) o += (size_t)snprintf(buf + o, len - o, "%s-D" #name "=%d", o ? " " : "", (int)(value));
    LC_KCONST_TABLE(LC_KC_OPT_)
#undef LC_KC_OPT_
    return buf;
}

#endif

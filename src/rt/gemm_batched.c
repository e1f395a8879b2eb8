/* Strided-batched row-major SGEMM through CLBlast (CLBlastSgemmStridedBatched):
 * batch GEMMs of one shape whose operands sit at fixed strides, in one call.
 * Kept apart from gemm.c (the backend choice of plain SGEMMs). */
#include "lc_rt_internal.h"

#include <clblast_c.h>

/* Elements from an operand's offset to the end of its last matrix. */
static uint64_t batched_extent(size_t off, size_t rows, size_t cols, size_t ld, size_t stride, size_t batch)
{
    if (rows == 0 || cols == 0 || batch == 0) return off;
    return (uint64_t)off + (uint64_t)(batch - 1) * stride + (uint64_t)(rows - 1) * ld + cols;
}

lc_status lc_rt_sgemm_strided_batched(lc_rt *rt, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                                      cl_mem a, size_t a_off, size_t lda, size_t a_stride, cl_mem b, size_t b_off,
                                      size_t ldb, size_t b_stride, float beta, cl_mem c, size_t c_off, size_t ldc,
                                      size_t c_stride, size_t batch)
{
    if (!rt || !a || !b || !c) return LC_ERR(LC_ERR_INVALID, "lc_rt_sgemm_strided_batched: NULL argument");
    if (m == 0 || n == 0 || batch == 0) return LC_OK;
    if (lda < (ta ? m : k) || ldb < (tb ? k : n) || ldc < n)
        return LC_ERR(LC_ERR_INVALID,
                      "strided-batched sgemm: leading dimension too small (m=%zu n=%zu k=%zu, lda=%zu ldb=%zu "
                      "ldc=%zu)",
                      m, n, k, lda, ldb, ldc);
    uint64_t ea = batched_extent(a_off, ta ? k : m, ta ? m : k, lda, a_stride, batch);
    uint64_t eb = batched_extent(b_off, tb ? n : k, tb ? k : n, ldb, b_stride, batch);
    uint64_t ec = batched_extent(c_off, m, n, ldc, c_stride, batch);
    if (ea > LC_RT_CLBLAST_MAX_ELEMS || eb > LC_RT_CLBLAST_MAX_ELEMS || ec > LC_RT_CLBLAST_MAX_ELEMS)
        return LC_ERR(LC_ERR_UNSUPPORTED,
                      "CLBlast strided-batched sgemm (m=%zu n=%zu k=%zu, batch %zu): an operand reaches element %llu "
                      "of its buffer, past the 2^31 - 1 CLBlast can index; rebase it on a sub-buffer",
                      m, n, k, batch, (unsigned long long)LC_MAX(ea, LC_MAX(eb, ec)));
    lc_rt_clblast_prepare(rt);
    CLBlastStatusCode s = CLBlastSuccess;
    for (int attempt = 0; attempt < 2; attempt++) {
        rt->gemm_calls[LC_GEMM_CLBLAST]++;
        s = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
                                       tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off, lda,
                                       a_stride, b, b_off, ldb, b_stride, beta, c, c_off, ldc, c_stride, batch,
                                       &rt->queue, NULL);
        /* a built kernel that allows fewer work-items than the device:
         * smaller groups, once (as for plain SGEMMs) */
        if (attempt > 0 || (s != CL_INVALID_WORK_GROUP_SIZE && s != CL_OUT_OF_RESOURCES) || !lc_rt_clblast_shrink(rt))
            break;
    }
    if (s != CLBlastSuccess)
        return LC_ERR(LC_ERR_DEVICE,
                      "CLBlastSgemmStridedBatched failed: %s (%d) (trans %c%c, m=%zu n=%zu k=%zu, batch %zu, lda=%zu "
                      "ldb=%zu ldc=%zu, strides %zu %zu %zu, offsets %zu %zu %zu)",
                      lc_rt_clblast_status_name((int)s), (int)s, ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, batch, lda,
                      ldb, ldc, a_stride, b_stride, c_stride, a_off, b_off, c_off);
    return LC_OK;
}

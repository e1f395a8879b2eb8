/* Row-major SGEMM through CLBlast. */
#include "lc_rt_internal.h"

#include <clblast_c.h>

const char *lc_rt_clblast_status_name(int status)
{
    switch (status) {
    case CLBlastNotImplemented: return "kNotImplemented";
    case CLBlastInvalidMatrixA: return "kInvalidMatrixA";
    case CLBlastInvalidMatrixB: return "kInvalidMatrixB";
    case CLBlastInvalidMatrixC: return "kInvalidMatrixC";
    case CLBlastInvalidVectorX: return "kInvalidVectorX";
    case CLBlastInvalidVectorY: return "kInvalidVectorY";
    case CLBlastInvalidDimension: return "kInvalidDimension";
    case CLBlastInvalidLeadDimA: return "kInvalidLeadDimA";
    case CLBlastInvalidLeadDimB: return "kInvalidLeadDimB";
    case CLBlastInvalidLeadDimC: return "kInvalidLeadDimC";
    case CLBlastInvalidIncrementX: return "kInvalidIncrementX";
    case CLBlastInvalidIncrementY: return "kInvalidIncrementY";
    case CLBlastInsufficientMemoryA: return "kInsufficientMemoryA";
    case CLBlastInsufficientMemoryB: return "kInsufficientMemoryB";
    case CLBlastInsufficientMemoryC: return "kInsufficientMemoryC";
    case CLBlastInsufficientMemoryX: return "kInsufficientMemoryX";
    case CLBlastInsufficientMemoryY: return "kInsufficientMemoryY";
    case CLBlastInsufficientMemoryTemp: return "kInsufficientMemoryTemp";
    case CLBlastInvalidBatchCount: return "kInvalidBatchCount";
    case CLBlastInvalidOverrideKernel: return "kInvalidOverrideKernel";
    case CLBlastMissingOverrideParameter: return "kMissingOverrideParameter";
    case CLBlastInvalidLocalMemUsage: return "kInvalidLocalMemUsage";
    case CLBlastNoHalfPrecision: return "kNoHalfPrecision";
    case CLBlastNoDoublePrecision: return "kNoDoublePrecision";
    case CLBlastInvalidVectorScalar: return "kInvalidVectorScalar";
    case CLBlastInsufficientMemoryScalar: return "kInsufficientMemoryScalar";
    case CLBlastDatabaseError: return "kDatabaseError";
    case CLBlastUnknownError: return "kUnknownError";
    case CLBlastUnexpectedError: return "kUnexpectedError";
    }
    /* The remaining codes are OpenCL's own. */
    return lc_rt_cl_error_name((cl_int)status);
}

lc_status lc_rt_sgemm(lc_rt *rt, bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
                      cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta,
                      cl_mem c, size_t c_off, size_t ldc)
{
    if (!rt || !a || !b || !c) return LC_ERR(LC_ERR_INVALID, "lc_rt_sgemm: NULL argument");
    if (m == 0 || n == 0) return LC_OK; /* empty C */
    CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                       trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off,
                                       lda, b, b_off, ldb, beta, c, c_off, ldc, &rt->queue, NULL);
    if (s != CLBlastSuccess)
        return LC_ERR(LC_ERR_DEVICE,
                      "CLBlastSgemm failed: %s (%d) (trans %c%c, m=%zu n=%zu k=%zu, lda=%zu ldb=%zu ldc=%zu, "
                      "offsets %zu %zu %zu)",
                      lc_rt_clblast_status_name((int)s), (int)s, trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k,
                      lda, ldb, ldc, a_off, b_off, c_off);
    return LC_OK;
}

// Argument checks and status mapping shared by the CUDA ops. Each check
// records one message of the form "cuda.<op>: <arg> ..." so a failing call
// names the op and the argument without the caller adding context.
#include <inttypes.h>
#include <stdint.h>

#include "cuda_internal.h"

sq_status_t sq_cuda_error(const char *op, const char *call, cudaError_t err)
{
    // Clears the error if it is not sticky; a sticky one (a kernel fault)
    // poisons the context and will come back from every later call anyway.
    cudaGetLastError();
    sq_status_t st = err == cudaErrorMemoryAllocation ? SQ_ERR_NOMEM : SQ_ERR_CUDA;
    return sq_error_set(st, "cuda.%s: %s failed: %s (%s)", op, call, cudaGetErrorString(err),
                        cudaGetErrorName(err));
}

sq_status_t sq_cublas_error(const char *op, const char *call, cublasStatus_t st)
{
    sq_status_t code = st == CUBLAS_STATUS_ALLOC_FAILED ? SQ_ERR_NOMEM : SQ_ERR_CUDA;
    return sq_error_set(code, "cuda.%s: %s failed: %s", op, call, cublasGetStatusString(st));
}

sq_status_t sq_cuda_begin(const char *op, sq_backend_t *be)
{
    if (!be || !be->ctx || !be->ops || be->ops->device != SQ_DEVICE_CUDA)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.%s: backend is NULL or not a CUDA backend",
                            op);
    // cheap when the device is already current; lets any host thread (a
    // transport thread, say) call into the backend
    SQ_CUDA_TRY(op, cudaSetDevice(sq_cuda_ctx(be)->device));
    return SQ_OK;
}

static sq_status_t check_common(const char *op, const char *name, const sq_tensor_t *t,
                                unsigned dtypes)
{
    if (!t) return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.%s: %s is NULL", op, name);
    if (t->device != SQ_DEVICE_CUDA)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.%s: %s is not in device memory (device field %d)", op, name,
                            (int)t->device);
    if (t->dtype < 0 || t->dtype >= SQ_DTYPE_COUNT || !(dtypes & SQ_DT(t->dtype)))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.%s: %s has dtype %s, which this op does not take%s",
                            op, name,
                            t->dtype >= 0 && t->dtype < SQ_DTYPE_COUNT ? sq_dtype_name(t->dtype)
                                                                       : "(invalid)",
                            dtypes == SQ_DT(SQ_DTYPE_F32) ? " (F32 only)" : " (F32/F16/BF16)");
    if (t->ndim < 1 || t->ndim > SQ_MAX_DIMS)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.%s: %s has ndim %d", op, name, t->ndim);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0)
            return sq_error_set(SQ_ERR_INVALID_ARG,
                                "cuda.%s: %s has negative dim %d (%" PRId64 ")", op, name, i,
                                t->shape[i]);
    return SQ_OK;
}

sq_status_t sq_cuda_check_mat_dt(const char *op, const char *name, const sq_tensor_t *t,
                                 int64_t rows, int64_t cols, unsigned dtypes)
{
    SQ_TRY(check_common(op, name, t, dtypes));
    if (t->ndim < 2)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.%s: %s must be a 2-D [rows, cols] view", op,
                            name);
    int64_t r = sq_tensor_rows(t), c = sq_tensor_cols(t);
    if (t->ld != 0 && t->ld < c)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.%s: %s has ld %" PRId64 " smaller than its %" PRId64 " cols",
                            op, name, t->ld, c);
    if (rows >= 0 && r != rows)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.%s: %s has %" PRId64 " rows, expected %" PRId64, op, name, r,
                            rows);
    if (cols >= 0 && c != cols)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.%s: %s has %" PRId64 " cols, expected %" PRId64, op, name, c,
                            cols);
    if (r > 0 && c > 0 && !t->data)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.%s: %s has no data", op, name);
    return SQ_OK;
}

sq_status_t sq_cuda_check_vec_dt(const char *op, const char *name, const sq_tensor_t *t,
                                 int64_t n, unsigned dtypes)
{
    SQ_TRY(check_common(op, name, t, dtypes));
    int64_t numel = sq_tensor_numel(t);
    if (numel != n)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.%s: %s has %" PRId64 " elements, expected %" PRId64, op, name,
                            numel, n);
    if (t->ld != 0 && t->ld != sq_tensor_cols(t) && sq_tensor_rows(t) > 1)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.%s: %s must be contiguous", op, name);
    if (n > 0 && !t->data)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.%s: %s has no data", op, name);
    return SQ_OK;
}

sq_status_t sq_cuda_check_rows(const char *op, const sq_cuda_ctx_t *ctx, int64_t need)
{
    if (need > ctx->i32_cap)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.%s: %" PRId64 " rows exceed the scratch reserved for max_rows "
                            "= %" PRId64 " (call reserve with the model's limits first)",
                            op, need, ctx->i32_cap);
    return SQ_OK;
}

// Byte span [lo, hi) a matrix view touches; empty views span nothing.
static void span(const sq_tensor_t *t, uintptr_t *lo, uintptr_t *hi)
{
    int64_t r = sq_tensor_rows(t), c = sq_tensor_cols(t);
    int64_t es = (int64_t)sq_dtype_size(t->dtype);
    *lo = (uintptr_t)t->data;
    *hi = *lo;
    if (r > 0 && c > 0) *hi = *lo + (uintptr_t)(((r - 1) * sq_tensor_ld(t) + c) * es);
}

int sq_cuda_overlaps(const sq_tensor_t *a, const sq_tensor_t *b)
{
    uintptr_t alo, ahi, blo, bhi;
    span(a, &alo, &ahi);
    span(b, &blo, &bhi);
    if (!(alo < bhi && blo < ahi)) return 0;
    // Column views of one buffer (q|k|v, gate|up) interleave their spans
    // without sharing an element: with a common ld and element size their
    // columns are disjoint arcs modulo ld.
    size_t es = sq_dtype_size(a->dtype);
    int64_t ld = sq_tensor_ld(a);
    if (es != sq_dtype_size(b->dtype) || ld != sq_tensor_ld(b) || ld <= 0 ||
        ((blo > alo ? blo - alo : alo - blo) % es) != 0)
        return 1;
    int64_t ca = sq_tensor_cols(a), cb = sq_tensor_cols(b);
    int64_t d = blo >= alo ? (int64_t)((blo - alo) / es) : -(int64_t)((alo - blo) / es);
    int64_t ab = ((d % ld) + ld) % ld, ba = (ld - ab) % ld;
    return ab < ca || ba < cb;
}

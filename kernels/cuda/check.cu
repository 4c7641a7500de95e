// Status mapping and the backend/scratch checks of the CUDA ops; the tensor
// checks are sparq/tensor_check.h's, shared with the CPU backend.
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
    return sq_error_set(code, "cuda.%s: %s failed: %s", op, call, sq_cublas.GetStatusString(st));
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

sq_status_t sq_cuda_check_rows(const char *op, const sq_cuda_ctx_t *ctx, int64_t need)
{
    if (need > ctx->i32_cap)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.%s: %" PRId64 " rows exceed the scratch reserved for max_rows "
                            "= %" PRId64 " (call reserve with the model's limits first)",
                            op, need, ctx->i32_cap);
    return SQ_OK;
}

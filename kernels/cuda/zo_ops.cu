// The backend's zo_perturb / zo_update ops: argument checks, then the kernels
// of zo.cu on the backend's stream. Tensors and masks are device memory;
// seeds and g are host arrays (passed to the kernel by value).
#include <inttypes.h>

#include "cuda_internal.h"
#include "cuda_zo.h"

namespace {

// A contiguous F32 device tensor, as kernels/cpu/zo.c requires on the CPU.
sq_status_t check_vec(const char *op, const char *name, const sq_tensor_t *t)
{
    SQ_TRY(sq_cuda_check_vec(op, name, t, t ? sq_tensor_numel(t) : 0));
    return SQ_OK;
}

// The kernels dereference mask on the device: a pageable host array would
// fault there, so it is refused here with a message instead.
sq_status_t check_mask(const char *op, const uint8_t *mask)
{
    if (!mask) return SQ_OK;
    cudaPointerAttributes attr;
    SQ_CUDA_TRY(op, cudaPointerGetAttributes(&attr, mask));
    if (attr.type == cudaMemoryTypeUnregistered)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.%s: mask is pageable host memory; the CUDA backend needs it in "
                            "device (or mapped) memory",
                            op);
    return SQ_OK;
}

} // namespace

sq_status_t sq_cuda_zo_perturb_op(sq_backend_t *be, const sq_tensor_t *src, uint64_t seed,
                                  uint64_t tensor_id, int64_t offset, float scale,
                                  const uint8_t *mask, sq_tensor_t *dst)
{
    SQ_TRY(sq_cuda_begin("zo_perturb", be));
    SQ_TRY(check_vec("zo_perturb", "src", src));
    // dst F32, or BF16/F16: the perturbed weight formed as a 16-bit GEMM operand
    SQ_TRY(sq_cuda_check_vec_dt("zo_perturb", "dst", dst, dst ? sq_tensor_numel(dst) : 0,
                                SQ_DT_FLOATS));
    const int64_t n = sq_tensor_numel(src);
    if (sq_tensor_numel(dst) != n || offset < 0)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.zo_perturb: %" PRId64 " elements into %" PRId64
                            " (offset %" PRId64 ")",
                            n, sq_tensor_numel(dst), offset);
    SQ_TRY(check_mask("zo_perturb", mask));
    return sq_cuda_zo_perturb_cast((const float *)src->data, dst->data, dst->dtype, n, seed,
                                   tensor_id, offset, scale, mask, sq_cuda_ctx(be)->stream);
}

sq_status_t sq_cuda_zo_update_op(sq_backend_t *be, sq_tensor_t *w, int n, const uint64_t *seeds,
                                 const float *g, uint64_t tensor_id, float lr, float wd,
                                 const uint8_t *mask)
{
    SQ_TRY(sq_cuda_begin("zo_update", be));
    SQ_TRY(check_vec("zo_update", "w", w));
    SQ_TRY(check_mask("zo_update", mask));
    return sq_cuda_zo_update((float *)w->data, sq_tensor_numel(w), n, seeds, g, tensor_id, lr, wd,
                             mask, sq_cuda_ctx(be)->stream);
}

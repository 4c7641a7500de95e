// embedding: y[i,:] (+)= table[ids[i],:]. One op serves token tables and
// learned position tables (accumulate = 1 adds positions onto tokens). The
// ids arrive in host memory: they are range-checked there, all of them before
// anything is queued (a bad batch leaves y untouched, as on the CPU), then
// uploaded into reserved scratch. The table may be F32, F16 or BF16.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <inttypes.h>

#include "cuda_internal.h"

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float to_f32(float v)
{
    return v;
}
__device__ __forceinline__ float to_f32(__half v)
{
    return __half2float(v);
}
__device__ __forceinline__ float to_f32(__nv_bfloat16 v)
{
    return __bfloat162float(v);
}

template <typename Tt>
__global__ void embedding_kernel(const Tt *__restrict__ table, int64_t ldt,
                                 const int32_t *__restrict__ ids, int64_t n, int64_t cols,
                                 int accumulate, float *y, int64_t ldy)
{
    for (int64_t r = blockIdx.y; r < n; r += gridDim.y) {
        const Tt *tr = table + (int64_t)ids[r] * ldt;
        float *yr = y + r * ldy;
        for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < cols;
             j += (int64_t)gridDim.x * blockDim.x) {
            const float v = to_f32(tr[j]);
            yr[j] = accumulate ? yr[j] + v : v;
        }
    }
}

} // namespace

sq_status_t sq_cuda_embedding(sq_backend_t *be, const sq_tensor_t *table, const int32_t *ids,
                              int64_t n, int accumulate, sq_tensor_t *y)
{
    SQ_TRY(sq_cuda_begin("embedding", be));
    SQ_TRY(sq_cuda_check_mat_dt("embedding", "table", table, -1, -1, SQ_DT_FLOATS));
    int64_t vocab = sq_tensor_rows(table), c = sq_tensor_cols(table);
    SQ_TRY(sq_cuda_check_mat("embedding", "y", y, -1, c));
    if (n < 0 || n > sq_tensor_rows(y))
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.embedding: n = %" PRId64 " but y has %" PRId64 " rows", n,
                            sq_tensor_rows(y));
    if (n > 0 && !ids) return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.embedding: ids is NULL");
    if (sq_cuda_overlaps(y, table))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.embedding: y overlaps the table");
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab)
            return sq_error_set(SQ_ERR_RANGE,
                                "cuda.embedding: ids[%" PRId64 "] = %" PRId32
                                " is outside the table's %" PRId64 " rows",
                                i, ids[i], vocab);
    if (n == 0 || c == 0) return SQ_OK;
    SQ_TRY(sq_cuda_upload_i32(be, "embedding", ids, n));

    sq_cuda_ctx_t *ctx = sq_cuda_ctx(be);
    dim3 grid = sq_cuda_grid_2d(n, c, kThreads);
    const int64_t ldt = sq_tensor_ld(table), ldy = sq_tensor_ld(y);
    float *yd = (float *)y->data;
    switch (table->dtype) {
    case SQ_DTYPE_F16:
        embedding_kernel<<<grid, kThreads, 0, ctx->stream>>>(
            (const __half *)table->data, ldt, ctx->d_i32, n, c, accumulate, yd, ldy);
        break;
    case SQ_DTYPE_BF16:
        embedding_kernel<<<grid, kThreads, 0, ctx->stream>>>(
            (const __nv_bfloat16 *)table->data, ldt, ctx->d_i32, n, c, accumulate, yd, ldy);
        break;
    default:
        embedding_kernel<<<grid, kThreads, 0, ctx->stream>>>(
            (const float *)table->data, ldt, ctx->d_i32, n, c, accumulate, yd, ldy);
        break;
    }
    SQ_CUDA_LAUNCHED("embedding");
    return SQ_OK;
}

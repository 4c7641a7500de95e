// linear: y[N,out] (+)= x[N,in] · W (+ bias) with cuBLAS.
//
// cuBLAS is column-major; a row-major [r, c] matrix with leading dimension
// ld is the column-major [c, r] matrix with the same ld. So the row-major
// product y = x·op(W) is computed as the column-major y^T = op(W)^T x^T:
//   m = out, n = N, k = in; B = x (ld ldx), C = y (ld ldy);
//   W[out,in] (SQ_WEIGHT_OUT_IN) is column-major [in, out] -> transa = T;
//   W[in,out] (SQ_WEIGHT_IN_OUT) is column-major [out, in] -> transa = N.
// The bias is written into y first (y = bias, or y += bias when
// accumulating) and the GEMM then adds onto it with beta = 1, the order the
// CPU backend uses. F32 weights: fp32 GEMM (TF32 after sq_backend_cuda_set_tf32).
// F16/BF16 weights: x is rounded to the weight's type into reserved scratch,
// in row chunks if need be, and multiplied with fp32 accumulation into fp32 y.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <inttypes.h>
#include <limits.h>

#include "cuda_internal.h"

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float load_f32(const float *p, int64_t i)
{
    return p[i];
}
__device__ __forceinline__ float load_f32(const __half *p, int64_t i)
{
    return __half2float(p[i]);
}
__device__ __forceinline__ float load_f32(const __nv_bfloat16 *p, int64_t i)
{
    return __bfloat162float(p[i]);
}

__device__ __forceinline__ void store_from_f32(__half *p, int64_t i, float v)
{
    p[i] = __float2half_rn(v);
}
__device__ __forceinline__ void store_from_f32(__nv_bfloat16 *p, int64_t i, float v)
{
    p[i] = __float2bfloat16_rn(v);
}

// y[r, :] = bias (accumulate: y[r, :] += bias)
template <typename Tb>
__global__ void bias_rows_kernel(const Tb *__restrict__ bias, float *y, int64_t ldy, int64_t rows,
                                 int64_t cols, int accumulate)
{
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
        for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < cols;
             j += (int64_t)gridDim.x * blockDim.x) {
            const float b = load_f32(bias, j);
            y[r * ldy + j] = accumulate ? y[r * ldy + j] + b : b;
        }
}

// dst[rows, cols] (packed) = x[rows, cols] (ld ldx) rounded to nearest even
template <typename Td>
__global__ void convert_rows_kernel(const float *__restrict__ x, int64_t ldx, Td *__restrict__ dst,
                                    int64_t rows, int64_t cols)
{
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
        for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < cols;
             j += (int64_t)gridDim.x * blockDim.x)
            store_from_f32(dst, r * cols + j, x[r * ldx + j]);
}

sq_status_t add_bias(cudaStream_t s, const sq_tensor_t *bias, int accumulate, float *y,
                     int64_t ldy, int64_t rows, int64_t cols)
{
    dim3 grid = sq_cuda_grid_2d(rows, cols, kThreads);
    switch (bias->dtype) {
    case SQ_DTYPE_F16:
        bias_rows_kernel<<<grid, kThreads, 0, s>>>((const __half *)bias->data, y, ldy, rows, cols,
                                                   accumulate);
        break;
    case SQ_DTYPE_BF16:
        bias_rows_kernel<<<grid, kThreads, 0, s>>>((const __nv_bfloat16 *)bias->data, y, ldy,
                                                   rows, cols, accumulate);
        break;
    default:
        bias_rows_kernel<<<grid, kThreads, 0, s>>>((const float *)bias->data, y, ldy, rows, cols,
                                                   accumulate);
        break;
    }
    SQ_CUDA_LAUNCHED("linear");
    return SQ_OK;
}

} // namespace

sq_status_t sq_cuda_linear(sq_backend_t *be, const sq_tensor_t *x, const sq_tensor_t *w,
                           sq_wlayout_t layout, const sq_tensor_t *bias, int accumulate,
                           sq_tensor_t *y)
{
    SQ_TRY(sq_cuda_begin("linear", be));
    if (layout != SQ_WEIGHT_OUT_IN && layout != SQ_WEIGHT_IN_OUT)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.linear: unknown weight layout %d",
                            (int)layout);
    SQ_TRY(sq_cuda_check_mat("linear", "x", x, -1, -1));
    int64_t n_rows = sq_tensor_rows(x), in = sq_tensor_cols(x);
    SQ_TRY(sq_cuda_check_mat("linear", "y", y, n_rows, -1));
    int64_t out = sq_tensor_cols(y);
    if (layout == SQ_WEIGHT_OUT_IN)
        SQ_TRY(sq_cuda_check_mat_dt("linear", "w[out,in]", w, out, in, SQ_DT_FLOATS));
    else
        SQ_TRY(sq_cuda_check_mat_dt("linear", "w[in,out]", w, in, out, SQ_DT_FLOATS));
    if (bias) SQ_TRY(sq_cuda_check_vec_dt("linear", "bias", bias, out, SQ_DT_FLOATS));
    if (n_rows > INT_MAX || in > INT_MAX || out > INT_MAX || sq_tensor_ld(x) > INT_MAX ||
        sq_tensor_ld(w) > INT_MAX || sq_tensor_ld(y) > INT_MAX)
        return sq_error_set(SQ_ERR_RANGE, "cuda.linear: a dimension exceeds the cuBLAS int range");
    if (sq_cuda_overlaps(y, x) || sq_cuda_overlaps(y, w) || (bias && sq_cuda_overlaps(y, bias)))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.linear: y overlaps an input");
    if (n_rows == 0 || out == 0) return SQ_OK;

    sq_cuda_ctx_t *ctx = sq_cuda_ctx(be);
    cudaStream_t s = ctx->stream;
    float *yd = (float *)y->data;
    const int64_t ldy = sq_tensor_ld(y);
    float beta = accumulate ? 1.0f : 0.0f;
    if (bias) {
        SQ_TRY(add_bias(s, bias, accumulate, yd, ldy, n_rows, out));
        beta = 1.0f;
    }
    if (in == 0) { // an empty sum: y = bias, or 0, or unchanged
        if (beta == 0.0f)
            SQ_CUDA_TRY("linear", cudaMemset2DAsync(yd, (size_t)ldy * sizeof(float), 0,
                                                    (size_t)out * sizeof(float), (size_t)n_rows,
                                                    s));
        return SQ_OK;
    }

    const float one = 1.0f;
    const cublasOperation_t transa = layout == SQ_WEIGHT_OUT_IN ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int lda = (int)sq_tensor_ld(w);
    if (w->dtype == SQ_DTYPE_F32) {
        const cublasComputeType_t ct =
            ctx->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
        SQ_CUBLAS_TRY("linear",
                      sq_cublas.GemmEx(ctx->cublas, transa, CUBLAS_OP_N, (int)out, (int)n_rows,
                                   (int)in, &one, w->data, CUDA_R_32F, lda, x->data, CUDA_R_32F,
                                   (int)sq_tensor_ld(x), &beta, yd, CUDA_R_32F, (int)ldy, ct,
                                   CUBLAS_GEMM_DEFAULT));
        return SQ_OK;
    }

    // 16-bit weights: both operands in the weight's type, fp32 accumulation
    const cudaDataType_t wt = w->dtype == SQ_DTYPE_F16 ? CUDA_R_16F : CUDA_R_16BF;
    if (in > ctx->conv_cap)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.linear: a row of %" PRId64 " inputs exceeds the 16-bit "
                            "conversion scratch of %" PRId64
                            " elements (reserve with max_cols >= %" PRId64 ")",
                            in, ctx->conv_cap, in);
    const int64_t chunk = ctx->conv_cap / in; // >= 1 row
    const float *xd = (const float *)x->data;
    const int64_t ldx = sq_tensor_ld(x);
    // The scratch is reused chunk after chunk: the conversion of the next
    // chunk is queued after the GEMM that reads the previous one.
    for (int64_t r0 = 0; r0 < n_rows; r0 += chunk) {
        const int64_t rows = n_rows - r0 < chunk ? n_rows - r0 : chunk;
        dim3 grid = sq_cuda_grid_2d(rows, in, kThreads);
        if (w->dtype == SQ_DTYPE_F16)
            convert_rows_kernel<<<grid, kThreads, 0, s>>>(xd + r0 * ldx, ldx,
                                                          (__half *)ctx->d_conv, rows, in);
        else
            convert_rows_kernel<<<grid, kThreads, 0, s>>>(xd + r0 * ldx, ldx,
                                                          (__nv_bfloat16 *)ctx->d_conv, rows, in);
        SQ_CUDA_LAUNCHED("linear");
        SQ_CUBLAS_TRY("linear",
                      sq_cublas.GemmEx(ctx->cublas, transa, CUBLAS_OP_N, (int)out, (int)rows, (int)in,
                                   &one, w->data, wt, lda, ctx->d_conv, wt, (int)in, &beta,
                                   yd + r0 * ldy, CUDA_R_32F, (int)ldy, CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT));
    }
    return SQ_OK;
}

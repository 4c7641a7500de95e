// cross_entropy: nll[i] = logsumexp(logits[i,:]) - logits[i, target[i]], one
// thread block per row. The precision mirrors softmax.c: fp32 max, exp of
// fp32 differences summed in double, lse = (double)max + log(sum) in double,
// and one rounding of lse - logit to fp32. Targets arrive in host memory,
// are range-checked there and uploaded; nll goes back to host memory, so
// this op waits for the stream.
#include <inttypes.h>
#include <math.h>

#include "cuda_internal.h"
#include "cuda_reduce.cuh"

namespace {

__global__ void cross_entropy_kernel(const float *__restrict__ logits, int64_t ld, int64_t vocab,
                                     const int32_t *__restrict__ targets, float *__restrict__ nll)
{
    __shared__ sq_block_slots<float> fslots;
    __shared__ sq_block_slots<double> dslots;
    const int64_t r = blockIdx.x;
    const int32_t t = targets[r];
    if (t < 0) { // padding / ignored position; the whole block leaves
        if (threadIdx.x == 0) nll[r] = 0.0f;
        return;
    }
    const float *xr = logits + r * ld;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) mx = fmaxf(mx, xr[j]);
    mx = sq_block_max(mx, &fslots);
    if (isinf(mx)) { // the same value in every thread: the block leaves together
        // +inf anywhere: lse is inf; all -inf: the target has prob 0
        if (threadIdx.x == 0) nll[r] = INFINITY;
        return;
    }
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) s += (double)expf(xr[j] - mx);
    s = sq_block_sum(s, &dslots);
    if (threadIdx.x == 0) {
        const double lse = (double)mx + log(s);
        nll[r] = (float)(lse - (double)xr[t]);
    }
}

} // namespace

sq_status_t sq_cuda_cross_entropy(sq_backend_t *be, const sq_tensor_t *logits,
                                  const int32_t *targets, float *nll)
{
    SQ_TRY(sq_cuda_begin("cross_entropy", be));
    SQ_TRY(sq_cuda_check_mat("cross_entropy", "logits", logits, -1, -1));
    int64_t n = sq_tensor_rows(logits), vocab = sq_tensor_cols(logits);
    if (n > 0 && (!targets || !nll))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.cross_entropy: targets or nll is NULL");
    for (int64_t i = 0; i < n; i++)
        if (targets[i] >= vocab)
            return sq_error_set(SQ_ERR_RANGE,
                                "cuda.cross_entropy: targets[%" PRId64 "] = %" PRId32
                                " is outside the %" PRId64 " logits",
                                i, targets[i], vocab);
    if (n == 0) return SQ_OK;
    if (n > INT32_MAX)
        return sq_error_set(SQ_ERR_RANGE, "cuda.cross_entropy: %" PRId64 " rows exceed the grid",
                            n);
    SQ_TRY(sq_cuda_upload_i32(be, "cross_entropy", targets, n));

    sq_cuda_ctx_t *ctx = sq_cuda_ctx(be);
    const int threads = vocab >= 8192 ? 1024 : vocab >= 1024 ? 512 : 128;
    cross_entropy_kernel<<<(unsigned)n, threads, 0, ctx->stream>>>(
        (const float *)logits->data, sq_tensor_ld(logits), vocab, ctx->d_i32, ctx->d_nll);
    SQ_CUDA_LAUNCHED("cross_entropy");
    SQ_CUDA_TRY("cross_entropy", cudaMemcpyAsync(nll, ctx->d_nll, (size_t)n * sizeof(float),
                                                 cudaMemcpyDeviceToHost, ctx->stream));
    SQ_CUDA_TRY("cross_entropy", cudaStreamSynchronize(ctx->stream));
    return SQ_OK;
}

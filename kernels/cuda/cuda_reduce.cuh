// Warp and block reductions shared by the row kernels (norm.cu, softmax.cu,
// attention.cu). Block reductions need blockDim.x to be a multiple of 32
// (every warp full, so full-mask shuffles are legal), at most 1024, and
// every thread of the block to call them (they contain __syncthreads).
#ifndef SQ_KERNELS_CUDA_REDUCE_CUH
#define SQ_KERNELS_CUDA_REDUCE_CUH

#define SQ_FULL_MASK 0xffffffffu

// Butterfly reductions: every lane ends with the same value (each step adds
// or maxes a pair in both orders, and both are exact-commutative in IEEE).
template <typename T>
__device__ __forceinline__ T sq_warp_sum(T v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(SQ_FULL_MASK, v, o);
    return v;
}

__device__ __forceinline__ float sq_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(SQ_FULL_MASK, v, o));
    return v;
}

// Shared slots of one block reduction: one per warp plus the result.
template <typename T>
struct sq_block_slots {
    T warp[32];
    T result;
};

// Sum over the block, returned to every thread. `s` may be reused by the
// next call: the leading barrier keeps a fast warp from overwriting a slot
// another warp has not read yet.
template <typename T>
__device__ T sq_block_sum(T v, sq_block_slots<T> *s)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nwarps = (int)(blockDim.x >> 5);
    v = sq_warp_sum(v);
    __syncthreads();
    if (lane == 0) s->warp[warp] = v;
    __syncthreads();
    if (warp == 0) {
        T t = lane < nwarps ? s->warp[lane] : T(0);
        t = sq_warp_sum(t);
        if (lane == 0) s->result = t;
    }
    __syncthreads();
    return s->result;
}

// Max over the block (NaN lanes lose to numbers, as fmaxf does).
__device__ inline float sq_block_max(float v, sq_block_slots<float> *s)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nwarps = (int)(blockDim.x >> 5);
    v = sq_warp_max(v);
    __syncthreads();
    if (lane == 0) s->warp[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float t = lane < nwarps ? s->warp[lane] : -INFINITY;
        t = sq_warp_max(t);
        if (lane == 0) s->result = t;
    }
    __syncthreads();
    return s->result;
}

#endif

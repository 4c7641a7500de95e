// Causal self-attention with GQA, flash style: no [T, T] scores in memory.
//
// One thread block per (tile of kBQ queries, query head h, sequence b), in
// fp32 throughout. The block stages its queries in shared memory once, then
// walks the key/value tiles of kBK keys that its queries can see (keys
// 0 .. last query of the tile), each staged in shared memory. Every warp
// owns kQPW queries; in a key tile, lane j scores key j0 + j against each of
// them (a dot product over D from shared memory), the warp folds the tile
// into an online softmax (running max m, running sum l, rescaled output),
// and each lane accumulates output dims lane, lane + 32, ... with the
// probabilities broadcast by shuffles. The output is o / l.
//
// Shared-memory layout: q [kBQ][DP] with DP = 32 * DC >= D (zero padded),
// k and v [kBK][DP + 1]: the odd row stride puts lane j's column reads of
// row j in distinct banks. DC is a template parameter so the per-lane output
// o[kQPW][DC] lives in registers.
#include <inttypes.h>
#include <math.h>

#include "cuda_internal.h"
#include "cuda_reduce.cuh"

namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kBQ = 32;              // queries per block
constexpr int kQPW = kBQ / kWarps;   // queries per warp
constexpr int kBK = 32;              // keys per tile: one per lane
constexpr int kMaxDC = SQ_CUDA_MAX_HEAD_DIM / 32;
static_assert(kBQ % kWarps == 0, "queries must split evenly over warps");

struct attn_args {
    const float *q, *k, *v; // first column of the q / k / v views
    float *out;
    int64_t ldq, ldk, ldv, ldo;
    int T, D, group;        // group = H / K query heads per kv head
    float scale;
};

constexpr size_t smem_bytes(int dc)
{
    return ((size_t)kBQ * (32 * dc) + 2 * (size_t)kBK * (32 * dc + 1)) * sizeof(float);
}

template <int DC>
__global__ void __launch_bounds__(kThreads) attention_kernel(attn_args a)
{
    constexpr int DP = 32 * DC; // padded head dim
    constexpr int KS = DP + 1;  // k/v row stride in shared memory
    extern __shared__ float smem[];
    float *qs = smem;          // [kBQ][DP]
    float *ks = qs + kBQ * DP; // [kBK][KS]
    float *vs = ks + kBK * KS; // [kBK][KS]

    const int tile = (int)(gridDim.x - 1 - blockIdx.x); // longest tiles first
    const int h = (int)blockIdx.y, kvh = h / a.group;
    const int64_t row0 = (int64_t)blockIdx.z * a.T; // first row of this sequence
    const int q0 = tile * kBQ;
    const int warp = (int)(threadIdx.x >> 5), lane = (int)(threadIdx.x & 31);
    const int D = a.D;

    const float *qg = a.q + (int64_t)h * D;
    const float *kg = a.k + (int64_t)kvh * D;
    const float *vg = a.v + (int64_t)kvh * D;

    // the query tile, zero past T and past D (made visible by the barrier at
    // the top of the key loop)
    for (int e = threadIdx.x; e < kBQ * DP; e += kThreads) {
        const int i = e / DP, d = e - i * DP, qi = q0 + i;
        qs[e] = (qi < a.T && d < D) ? qg[(row0 + qi) * a.ldq + d] : 0.0f;
    }

    const int wq0 = q0 + warp * kQPW; // this warp's first query
    float m[kQPW], l[kQPW], o[kQPW][DC];
#pragma unroll
    for (int i = 0; i < kQPW; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
#pragma unroll
        for (int t = 0; t < DC; t++) o[i][t] = 0.0f;
    }

    // keys [0, key_end) are visible to some query of the block (q0 < T)
    const int key_end = q0 + kBQ < a.T ? q0 + kBQ : a.T;
    for (int j0 = 0; j0 < key_end; j0 += kBK) {
        __syncthreads(); // the previous tile is consumed by every warp
        for (int e = threadIdx.x; e < kBK * DP; e += kThreads) {
            const int j = e / DP, d = e - j * DP, key = j0 + j;
            float kv = 0.0f, vv = 0.0f;
            if (key < a.T && d < D) {
                kv = kg[(row0 + key) * a.ldk + d];
                vv = vg[(row0 + key) * a.ldv + d];
            }
            ks[j * KS + d] = kv;
            vs[j * KS + d] = vv;
        }
        __syncthreads();
        // warp-uniform: none of this warp's queries sees a key of this tile
        // (or the warp holds only padding queries past T)
        if (j0 > wq0 + kQPW - 1 || wq0 >= a.T) continue;

        // scores: lane <-> key j0 + lane
        const int key = j0 + lane;
        float s[kQPW];
#pragma unroll
        for (int i = 0; i < kQPW; i++) s[i] = 0.0f;
        const float *kr = ks + lane * KS;
        const float *qw = qs + warp * kQPW * DP;
        for (int d = 0; d < D; d++) {
            const float kd = kr[d];
#pragma unroll
            for (int i = 0; i < kQPW; i++) s[i] = fmaf(qw[i * DP + d], kd, s[i]);
        }

        // online softmax; the first tile holds key 0, visible to every query,
        // so m is finite from the first tile on and exp never sees inf - inf
        float p[kQPW];
#pragma unroll
        for (int i = 0; i < kQPW; i++) {
            const int qi = wq0 + i;
            const bool vis = key <= qi && key < a.T;
            const float si = vis ? s[i] * a.scale : -INFINITY;
            const float mnew = fmaxf(m[i], sq_warp_max(si));
            const float pi = vis ? expf(si - mnew) : 0.0f;
            const float corr = expf(m[i] - mnew); // 0 on the first tile (m = -inf)
            l[i] = l[i] * corr + sq_warp_sum(pi);
            m[i] = mnew;
#pragma unroll
            for (int t = 0; t < DC; t++) o[i][t] *= corr;
            p[i] = pi;
        }

        // o += p · V over the tile's keys; lanes own dims lane + 32 t. Padded
        // keys and dims hold zeros, and masked keys have p = 0.
        for (int j = 0; j < kBK; j++) {
            const float *vr = vs + j * KS + lane;
            float vj[DC];
#pragma unroll
            for (int t = 0; t < DC; t++) vj[t] = vr[32 * t];
#pragma unroll
            for (int i = 0; i < kQPW; i++) {
                const float pj = __shfl_sync(SQ_FULL_MASK, p[i], j);
#pragma unroll
                for (int t = 0; t < DC; t++) o[i][t] = fmaf(pj, vj[t], o[i][t]);
            }
        }
    }

#pragma unroll
    for (int i = 0; i < kQPW; i++) {
        const int qi = wq0 + i;
        if (qi >= a.T) continue;
        float *orow = a.out + (row0 + qi) * a.ldo + (int64_t)h * D;
#pragma unroll
        for (int t = 0; t < DC; t++) {
            const int d = lane + 32 * t;
            if (d < D) orow[d] = o[i][t] / l[i];
        }
    }
}

typedef void (*attn_kernel_t)(attn_args);

attn_kernel_t kernel_for(int dc)
{
    switch (dc) {
    case 1: return attention_kernel<1>;
    case 2: return attention_kernel<2>;
    case 3: return attention_kernel<3>;
    case 4: return attention_kernel<4>;
    case 5: return attention_kernel<5>;
    case 6: return attention_kernel<6>;
    case 7: return attention_kernel<7>;
    default: return attention_kernel<8>;
    }
}
static_assert(kMaxDC == 8, "kernel_for covers DC = 1 .. 8");

} // namespace

sq_status_t sq_cuda_attention_setup(void)
{
    for (int dc = 1; dc <= kMaxDC; dc++)
        SQ_CUDA_TRY("create", cudaFuncSetAttribute((const void *)kernel_for(dc),
                                                   cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                   (int)smem_bytes(dc)));
    return SQ_OK;
}

sq_status_t sq_cuda_attention(sq_backend_t *be, const sq_tensor_t *q, const sq_tensor_t *k,
                              const sq_tensor_t *v, int B, int T, int n_heads, int n_kv_heads,
                              int head_dim, float scale, sq_tensor_t *out)
{
    SQ_TRY(sq_cuda_begin("attention", be));
    if (B < 0 || T < 0 || n_heads <= 0 || n_kv_heads <= 0 || head_dim <= 0)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.attention: bad sizes B=%d T=%d H=%d K=%d D=%d", B, T, n_heads,
                            n_kv_heads, head_dim);
    if (n_heads % n_kv_heads != 0)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.attention: %d query heads do not group evenly over %d kv heads",
                            n_heads, n_kv_heads);
    if (!isfinite(scale))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.attention: scale %g is not finite",
                            (double)scale);
    if (head_dim > SQ_CUDA_MAX_HEAD_DIM)
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "cuda.attention: head_dim %d exceeds the %d the kernel supports",
                            head_dim, SQ_CUDA_MAX_HEAD_DIM);
    int64_t n = (int64_t)B * T;
    int64_t qc = (int64_t)n_heads * head_dim, kc = (int64_t)n_kv_heads * head_dim;
    SQ_TRY(sq_cuda_check_mat("attention", "q", q, n, qc));
    SQ_TRY(sq_cuda_check_mat("attention", "k", k, n, kc));
    SQ_TRY(sq_cuda_check_mat("attention", "v", v, n, kc));
    SQ_TRY(sq_cuda_check_mat("attention", "out", out, n, qc));
    if (sq_cuda_overlaps(out, q) || sq_cuda_overlaps(out, k) || sq_cuda_overlaps(out, v))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.attention: out overlaps q, k or v");
    if (n == 0) return SQ_OK;
    if (n_heads > 65535 || B > 65535)
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "cuda.attention: H=%d or B=%d exceeds the grid's 65535", n_heads, B);

    attn_args a;
    a.q = (const float *)q->data;
    a.k = (const float *)k->data;
    a.v = (const float *)v->data;
    a.out = (float *)out->data;
    a.ldq = sq_tensor_ld(q);
    a.ldk = sq_tensor_ld(k);
    a.ldv = sq_tensor_ld(v);
    a.ldo = sq_tensor_ld(out);
    a.T = T;
    a.D = head_dim;
    a.group = n_heads / n_kv_heads;
    a.scale = scale;
    const int dc = (head_dim + 31) / 32;
    dim3 grid((unsigned)((T + kBQ - 1) / kBQ), (unsigned)n_heads, (unsigned)B);
    kernel_for(dc)<<<grid, kThreads, smem_bytes(dc), sq_cuda_ctx(be)->stream>>>(a);
    SQ_CUDA_LAUNCHED("attention");
    return SQ_OK;
}

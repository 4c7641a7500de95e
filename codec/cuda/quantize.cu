// Pass 1 of the GPU encoder: one warp per row/group (grid-stride over the
// R * C/G groups). The warp takes the absmax over the group's bits (as the
// CPU's sq_amax_bits: >= 0x7f800000 iff a NaN/Inf is present), computes the
// scale by the FORMAT.md rule, stores it in the message's scales section,
// then quantizes every element into the int8 scratch dq (element order
// i = r*C + c, whatever ld is) and counts the non-zero codes. A group with a
// NaN/Inf records its first element (atomicMin of the linear index, so the
// host names the first one in row-major order), a group whose fp16 scale
// overflows records its scale index; neither writes codes (encode fails).
#include "codec_gpu_internal.h"

namespace {

struct quant_args {
    const float *x; // [rows, ld]
    uint64_t ld, rows, cols;
    uint64_t gs, gpr; // group size, groups per row
    int qmax, thr, f16;
    uint64_t seed, stream;
    uint8_t *scales;   // scales section of the message (wire format)
    int8_t *q;         // [rows * cols] codes
    sq_gpu_state_t *st;
};

template <bool STOCHASTIC>
__global__ void __launch_bounds__(SQ_GPU_THREADS) quantize_kernel(const quant_args a)
{
    const unsigned lane = threadIdx.x & 31u;
    const uint64_t warp0 = ((uint64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const uint64_t nwarps = ((uint64_t)gridDim.x * blockDim.x) >> 5;
    const uint64_t ngroups = a.rows * a.gpr;
    unsigned long long nnz = 0;
    // gi is the same in every lane: the loop and every branch on m / ok / s
    // below are warp-uniform, so the full-mask shuffles are reached by all.
    for (uint64_t gi = warp0; gi < ngroups; gi += nwarps) {
        const uint64_t r = gi / a.gpr;
        const uint64_t c0 = (gi - r * a.gpr) * a.gs;
        const uint32_t *xb = (const uint32_t *)(a.x + r * a.ld + c0);
        const uint64_t i0 = r * a.cols + c0; // element index of the group's first element

        uint32_t m = 0;
        for (uint64_t c = lane; c < a.gs; c += 32)
            m = max(m, xb[c] & 0x7fffffffu);
        m = sq_warp_max_u32(m);
        if (m >= 0x7f800000u) {
            unsigned long long first = ~0ull;
            for (uint64_t c = lane; c < a.gs; c += 32)
                if ((xb[c] & 0x7fffffffu) >= 0x7f800000u) {
                    first = c;
                    break;
                }
            first = sq_warp_min_u64(first);
            if (lane == 0) atomicMin(&a.st->bad_elem, i0 + first);
            continue;
        }

        float s;
        uint32_t wire;
        const int ok = sq_gpu_scale(__uint_as_float(m), a.qmax, a.f16, &s, &wire);
        if (lane == 0) {
            if (!ok)
                atomicMin(&a.st->bad_scale, gi);
            else if (a.f16)
                ((uint16_t *)a.scales)[gi] = (uint16_t)wire;
            else
                ((uint32_t *)a.scales)[gi] = wire;
        }
        if (!ok) continue;
        if (s == 0.0f) { // all-zero group: x / s would be NaN, codes are 0
            for (uint64_t c = lane; c < a.gs; c += 32)
                a.q[i0 + c] = 0;
            continue;
        }
        if (!STOCHASTIC) {
            for (uint64_t c = lane; c < a.gs; c += 32) {
                const int q = sq_gpu_quant_nearest(__uint_as_float(xb[c]), s, a.qmax, a.thr);
                a.q[i0 + c] = (int8_t)q;
                nnz += q != 0;
            }
        } else {
            // One Philox block per lane per step: block b dithers elements
            // 4b .. 4b+3 (FORMAT.md: w = philox_block(seed, stream, i / 4),
            // u = uniform(w[i % 4])), of which those inside the group are ours.
            const uint64_t b0 = i0 >> 2, b1 = (i0 + a.gs - 1) >> 2;
            for (uint64_t b = b0 + lane; b <= b1; b += 32) {
                uint32_t w[4];
                sq_philox_block(a.seed, a.stream, b, w);
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    const uint64_t i = 4 * b + (uint64_t)j;
                    if (i < i0 || i >= i0 + a.gs) continue;
                    const int q = sq_gpu_quant_stochastic(__uint_as_float(xb[i - i0]), s, a.qmax,
                                                          a.thr, sq_philox_uniform(w[j]));
                    a.q[i] = (int8_t)q;
                    nnz += q != 0;
                }
            }
        }
    }
    sq_block_add(nnz, &a.st->nnz);
}

// The bits of x at the first NaN/Inf, if any: read while x is still the
// input (later work on the stream may overwrite it), for the error message.
__global__ void bad_bits_kernel(const float *x, uint64_t ld, uint64_t cols, sq_gpu_state_t *st)
{
    const unsigned long long i = st->bad_elem;
    if (threadIdx.x == 0 && i != ~0ull)
        st->bad_bits = *(const uint32_t *)(x + (i / cols) * ld + i % cols);
}

} // namespace

sq_status_t sq_gpu_quantize(sq_codec_gpu_t *g, const sq_codec_params_t *p, const float *x,
                            int64_t rows, int64_t cols, int64_t ld, uint8_t *dscales,
                            cudaStream_t st)
{
    quant_args a;
    a.x = x;
    a.ld = (uint64_t)ld;
    a.rows = (uint64_t)rows;
    a.cols = (uint64_t)cols;
    a.gs = p->granularity == SQ_CODEC_PER_GROUP ? p->group_size : (uint64_t)cols;
    a.gpr = a.cols / a.gs;
    a.qmax = sq_codec_qmax(p->bits);
    a.thr = (int)p->threshold;
    a.f16 = p->scale_dtype == SQ_DTYPE_F16;
    a.seed = p->seed;
    a.stream = p->stream;
    a.scales = dscales;
    a.q = g->dq;
    a.st = g->dstate;
    const uint64_t ngroups = a.rows * a.gpr;
    const unsigned grid = sq_gpu_grid(g, ngroups, SQ_GPU_THREADS / 32);
    if (p->rounding == SQ_CODEC_ROUND_STOCHASTIC)
        quantize_kernel<true><<<grid, SQ_GPU_THREADS, 0, st>>>(a);
    else
        quantize_kernel<false><<<grid, SQ_GPU_THREADS, 0, st>>>(a);
    SQ_TRY(sq_gpu_launched("quantize"));
    bad_bits_kernel<<<1, 32, 0, st>>>(x, a.ld, a.cols, g->dstate); // one warp, lane 0 reads
    return sq_gpu_launched("quantize (non-finite input)");
}

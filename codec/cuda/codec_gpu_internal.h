// Internals of the GPU codec (codec/cuda): the workspace, the flag words a
// call reads back, the decoder's check ranks, and the device twins of the
// scalar rules of codec/FORMAT.md (fp16 conversions, the scale rule, code
// extraction). Everything here must give the bits the CPU codec gives:
// every float operation is spelled as an _rn intrinsic so nvcc can neither
// contract nor reorder it, and the fp16 conversions are the integer ports
// of base/tensor.c (cuda_fp16's conversions canonicalise NaN payloads).
#ifndef SPARQ_CODEC_GPU_INTERNAL_H
#define SPARQ_CODEC_GPU_INTERNAL_H

#include <cuda_runtime.h>
#include <stdint.h>

#include "codec_internal.h"
#include "sparq/codec_gpu.h"
#include "sparq/philox.h"

// Threads per block of every codec kernel (a multiple of 32; the block
// reductions below assume at most 32 warps).
#define SQ_GPU_THREADS 256

// Flags and counters of one call, in device memory; a call initialises them
// from hinit, its kernels update them with atomics, and the host reads them
// back once (encode: after the quantizer; decode: at the end).
typedef struct sq_gpu_state {
    unsigned long long nnz;       // enc: non-zero codes; dec: non-zero codes found
    unsigned long long bad_elem;  // enc: linear index of the first NaN/Inf (~0: none)
    unsigned long long bad_scale; // enc: first scale index whose fp16 overflows (~0: none)
    unsigned long long err;       // dec: smallest check key (see sq_gpu_key; ~0: none)
    unsigned long long bad_bits;  // enc: the bits of x at bad_elem (sq_gpu_quantize)
} sq_gpu_state_t;

// An encode between sq_codec_gpu_encode_begin and _end: what end needs to
// lay the message out.
typedef struct sq_gpu_pending {
    int active;
    sq_codec_params_t p;
    int64_t rows, cols;
    uint8_t *msg;
    size_t cap;
    cudaStream_t st;
    size_t done_size; // LOSSLESS: begin wrote the whole message (its size)
} sq_gpu_pending_t;

struct sq_codec_gpu {
    int device;                 // the device current at create()
    int sm_count;               // multiprocessors: grid-stride kernels size their grids by it
    int64_t max_rows, max_elems;
    uint64_t max_words;         // ceil(max_elems / 32): presence words of a bitmap
    int8_t *dq;                 // [max_elems] codes of the tensor being encoded (device)
    unsigned long long *dcnt;   // [max_words] non-zero codes per 32-element word (device)
    unsigned long long *doff;   // [max_words] exclusive prefix sums of dcnt (device)
    void *dtemp;                // CUB scan scratch, temp_bytes (device)
    size_t temp_bytes;
    sq_gpu_state_t *dstate;     // flags of the current call (device)
    sq_gpu_state_t *hstate;     // read-back copy of dstate (pinned host)
    sq_gpu_state_t *hinit;      // initial flags, written once at create (pinned host)
    cudaEvent_t flags_ready;    // recorded after each read-back of the flags
    sq_gpu_pending_t pend;      // the encode in flight
};

// Decoder checks in the order of FORMAT.md's table. An error is recorded as
// key = rank << 48 | position and the smallest key wins (atomicMin), so the
// reported failure is the first check of the table that fails, at its
// smallest position: deterministic, though not always the one the CPU
// decoder (which walks row by row) names first when a message has several
// faults. Positions are element indices (CSR: entry index; scales: scale index).
enum sq_gpu_check {
    SQ_GCHK_PAD_CODES = 1, // FORMAT: padding after the codes
    SQ_GCHK_SCALE_BAD,     // RANGE: scale NaN, Inf or negative (-0 too)
    SQ_GCHK_SCALE_OVF,     // RANGE: qmax * scale overflows fp32
    SQ_GCHK_PAD_SCALES,    // FORMAT: padding after the scales
    SQ_GCHK_PAD_STRUCT,    // FORMAT: padding after the outliers / structure
    SQ_GCHK_CSR_RP,        // FORMAT: row pointer 0 != 0, decreasing or > nnz
    SQ_GCHK_CSR_COL_RANGE, // RANGE: column index >= cols
    SQ_GCHK_CSR_COL_ORDER, // FORMAT: column indices not strictly increasing in a row
    SQ_GCHK_BITMAP_EXCESS, // FORMAT: more bits set than nnz
    SQ_GCHK_CODE,          // RANGE: -2^(b-1), 0 < |q| <= t, or a zero code in a list
    SQ_GCHK_NNZ,           // FORMAT: non-zero codes found != nnz
    SQ_GCHK_PAD_BITS,      // FORMAT: bitmap bits after N or code bits after the last code
    SQ_GCHK_COUNT
};

#define SQ_GPU_KEY_POS_MASK ((1ull << 48) - 1)

static __host__ __device__ __forceinline__ unsigned long long sq_gpu_key(int check, uint64_t pos)
{
    return ((unsigned long long)check << 48) | (pos & SQ_GPU_KEY_POS_MASK);
}

#define SQ_CUDA_TRY(call, what)                                                                    \
    do {                                                                                           \
        cudaError_t sq_cu_err_ = (call);                                                           \
        if (sq_cu_err_ != cudaSuccess)                                                             \
            return sq_error_set(SQ_ERR_CUDA, "codec gpu: %s: %s", (what),                          \
                                cudaGetErrorString(sq_cu_err_));                                   \
    } while (0)

// ---- host helpers (workspace.cu) ----

// Blocks for a grid-stride kernel over `items` with `per_block` items per
// block: enough to fill the device, never 0.
unsigned sq_gpu_grid(const sq_codec_gpu_t *g, uint64_t items, uint64_t per_block);
// SQ_ERR_CUDA naming `what` when the last launch failed.
sq_status_t sq_gpu_launched(const char *what);
// doff[0, n) = exclusive prefix sums of dcnt[0, n) (n <= max_words).
sq_status_t sq_gpu_scan_words(sq_codec_gpu_t *g, uint64_t n, cudaStream_t st);
// Reset the flags (async) / read them back into g->hstate (waits for the
// read-back, so for everything queued on st before it).
sq_status_t sq_gpu_state_reset(sq_codec_gpu_t *g, cudaStream_t st);
sq_status_t sq_gpu_state_read(sq_codec_gpu_t *g, cudaStream_t st);
// Queue the read-back of the flags into g->hstate and record flags_ready
// after it (the host waits on that event alone, not on st).
sq_status_t sq_gpu_state_read_async(sq_codec_gpu_t *g, cudaStream_t st);

// ---- the quantizer (quantize.cu) ----

// Pass 1 of the encoder: scales of every row/group into dscales (the scales
// section of the message, wire format), codes into g->dq [rows*cols] (dense,
// element order), non-zero count, first NaN/Inf (and its bits) and first
// fp16-overflowing scale into g->dstate. Asynchronous on st; x is not read
// by anything queued after it.
sq_status_t sq_gpu_quantize(sq_codec_gpu_t *g, const sq_codec_params_t *p, const float *x,
                            int64_t rows, int64_t cols, int64_t ld, uint8_t *dscales,
                            cudaStream_t st);

// ---- device helpers ----

// base/tensor.c's sq_f16_to_f32, bit for bit (NaN payloads kept).
static __device__ __forceinline__ float sq_gpu_h2f(uint32_t h)
{
    uint32_t sign = (h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { // subnormal: normalise
            int e = -1;
            do {
                e++;
                mant <<= 1;
            } while (!(mant & 0x400u));
            mant &= 0x3ffu;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    return __uint_as_float(bits);
}

// base/tensor.c's sq_f32_to_f16 on the bits of a float (RNE, subnormals,
// overflow to Inf, NaN -> quiet NaN with the sign kept).
static __device__ __forceinline__ uint32_t sq_gpu_f2h(uint32_t x)
{
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) return sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u);
    if (absx >= 0x477ff000u) return sign | 0x7c00u;
    if (absx < 0x38800000u) {
        if (absx < 0x33000000u) return sign;
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e;
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (r & 1u))) r++;
        return sign | r;
    }
    uint32_t r = absx + 0xc8000fffu + ((absx >> 13) & 1u);
    return sign | (r >> 13);
}

// sq_codec_scale (codec/format.c) for amax finite >= 0: returns 1 with the
// value the quantizer uses and its wire bits, 0 when the fp16 scale overflows.
static __device__ __forceinline__ int sq_gpu_scale(float amax, int qmax, int f16, float *s,
                                                   uint32_t *wire)
{
    if (!(amax > 0.0f)) {
        *s = 0.0f;
        *wire = 0;
        return 1;
    }
    const double dq = (double)qmax, da = (double)amax;
    float s32 = __fdiv_rn(amax, (float)qmax);
    if (f16) {
        uint32_t h = sq_gpu_f2h(__float_as_uint(s32));
        if (h >= 0x7c00u) return 0;
        float v = sq_gpu_h2f(h);
        while (__dmul_rn((double)v, dq) < da) {
            if (++h >= 0x7c00u) return 0;
            v = sq_gpu_h2f(h);
        }
        *s = v;
        *wire = h;
        return 1;
    }
    // s32 >= 0 here, so nextafterf towards +Inf / 0 is +1 / -1 on the bits.
    while (__dmul_rn((double)s32, dq) < da)
        s32 = __uint_as_float(__float_as_uint(s32) + 1u);
    while (isinf(__fmul_rn(s32, (float)qmax)))
        s32 = __uint_as_float(__float_as_uint(s32) - 1u);
    *s = s32;
    *wire = __float_as_uint(s32);
    return 1;
}

// FORMAT.md "How the encoder fills it": the code of x under a scale s > 0.
static __device__ __forceinline__ int sq_gpu_quant_nearest(float x, float s, int qmax, int thr)
{
    const float fq = (float)qmax;
    float v = __fdiv_rn(x, s);
    v = v > fq ? fq : v;
    v = v < -fq ? -fq : v;
    const int q = __float2int_rn(v); // rint: ties to even
    return (q <= thr && q >= -thr) ? 0 : q;
}

static __device__ __forceinline__ int sq_gpu_quant_stochastic(float x, float s, int qmax, int thr,
                                                              float u)
{
    const float fq = (float)qmax;
    float v = __fdiv_rn(x, s);
    v = v > fq ? fq : v;
    v = v < -fq ? -fq : v;
    const float fl = floorf(v);
    const int q = (int)fl + (u < __fsub_rn(v, fl) ? 1 : 0);
    return (q <= thr && q >= -thr) ? 0 : q;
}

// The raw b-bit pattern of code k of an LSB-first stream, and its value.
static __device__ __forceinline__ uint32_t sq_gpu_code_raw(const uint8_t *codes, uint64_t k,
                                                           int bits)
{
    const uint64_t bit = k * (uint64_t)bits;
    return ((uint32_t)codes[bit >> 3] >> (bit & 7u)) & ((1u << bits) - 1u);
}

static __device__ __forceinline__ int sq_gpu_sext(uint32_t raw, int bits)
{
    int q = (int)raw;
    if (q >= (1 << (bits - 1))) q -= 1 << bits;
    return q;
}

// Is a decoded code invalid? (-2^(b-1), 0 < |q| <= t, or 0 where a list
// holds only non-zero codes.)
static __device__ __forceinline__ int sq_gpu_code_bad(uint32_t raw, int q, int bits, int thr,
                                                      int list)
{
    const int a = q < 0 ? -q : q;
    return raw == (1u << (bits - 1)) || (a != 0 && a <= thr) || (list && a == 0);
}

static __device__ __forceinline__ uint32_t sq_warp_max_u32(uint32_t v)
{
    for (int o = 16; o; o >>= 1)
        v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

static __device__ __forceinline__ unsigned long long sq_warp_min_u64(unsigned long long v)
{
    for (int o = 16; o; o >>= 1)
        v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

static __device__ __forceinline__ unsigned long long sq_warp_sum_u64(unsigned long long v)
{
    for (int o = 16; o; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// *dst += the sum of v over the block (one atomic per block). Every thread
// of the (1-D, <= 1024 threads) block must call it, once, at the end.
static __device__ __forceinline__ void sq_block_add(unsigned long long v, unsigned long long *dst)
{
    __shared__ unsigned long long part[32];
    v = sq_warp_sum_u64(v);
    const unsigned lane = threadIdx.x & 31u, wid = threadIdx.x >> 5;
    if (lane == 0) part[wid] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned long long t = 0;
        for (unsigned i = 0; i < (blockDim.x + 31u) / 32u; i++)
            t += part[i];
        if (t) atomicAdd(dst, t);
    }
}

// Codes [e, e + 32) of the dense int8 scratch q[0, n) as four little-endian
// 64-bit words (bytes past n read as 0). q is 256-byte aligned and e a
// multiple of 32, so the full case is two aligned 16-byte loads.
static __device__ __forceinline__ void sq_gpu_load32(const int8_t *q, uint64_t e, uint64_t n,
                                                     uint64_t raw[4])
{
    if (e + 32 <= n) {
        const uint4 *p = (const uint4 *)(q + e);
        const uint4 a = p[0], b = p[1];
        raw[0] = (uint64_t)a.x | ((uint64_t)a.y << 32);
        raw[1] = (uint64_t)a.z | ((uint64_t)a.w << 32);
        raw[2] = (uint64_t)b.x | ((uint64_t)b.y << 32);
        raw[3] = (uint64_t)b.z | ((uint64_t)b.w << 32);
        return;
    }
    raw[0] = raw[1] = raw[2] = raw[3] = 0;
#pragma unroll
    for (int t = 0; t < 32; t++)
        if (e + (uint64_t)t < n) raw[t >> 3] |= (uint64_t)(uint8_t)q[e + t] << (8 * (t & 7));
}

// Presence mask of 32 codes loaded by sq_gpu_load32: bit t set iff code t != 0.
static __device__ __forceinline__ uint32_t sq_gpu_nz_mask32(const uint64_t raw[4])
{
    uint32_t m = 0;
#pragma unroll
    for (int t = 0; t < 32; t++)
        m |= (uint32_t)(((raw[t >> 3] >> (8 * (t & 7))) & 0xffu) != 0) << t;
    return m;
}

#endif

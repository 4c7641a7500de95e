/* sparq/philox.h — counter-based random numbers (Philox4x32-10).
 *
 * Random values in sparq are pure functions of (seed, stream, index): no
 * hidden generator state, so any stage (CPU or CUDA) regenerates exactly the
 * same numbers without communication. The CUDA kernels implement the same
 * integer rounds, so the bits are identical on both sides.
 *
 * Counter layout: ctr = {index lo, index hi, stream lo, stream hi},
 * key = {seed lo, seed hi}. One call yields 4 x 32 random bits for the
 * four consecutive elements 4*index .. 4*index+3 of a stream.
 */
#ifndef SPARQ_PHILOX_H
#define SPARQ_PHILOX_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__CUDACC__)
#define SQ_HD __host__ __device__ __forceinline__
#else
#define SQ_HD static inline
#endif

#define SQ_PHILOX_M0 0xD2511F53u
#define SQ_PHILOX_M1 0xCD9E8D57u
#define SQ_PHILOX_W0 0x9E3779B9u
#define SQ_PHILOX_W1 0xBB67AE85u

SQ_HD void sq_philox4x32_10(const uint32_t ctr_in[4], const uint32_t key_in[2], uint32_t out[4])
{
    uint32_t c0 = ctr_in[0], c1 = ctr_in[1], c2 = ctr_in[2], c3 = ctr_in[3];
    uint32_t k0 = key_in[0], k1 = key_in[1];
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)SQ_PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)SQ_PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += SQ_PHILOX_W0;
        k1 += SQ_PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* 4 x 32 random bits for block `index` of stream `stream` under `seed`. */
SQ_HD void sq_philox_block(uint64_t seed, uint64_t stream, uint64_t index, uint32_t out[4])
{
    uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), (uint32_t)stream,
                       (uint32_t)(stream >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    sq_philox4x32_10(ctr, key, out);
}

/* Uniform float in (0, 1): the top 23 bits, centred in their cell, so never
 * 0 or 1 (safe for log). Exact in fp32, identical on every platform. */
SQ_HD float sq_philox_uniform(uint32_t bits)
{
    return (float)(bits >> 9) * 0x1p-23f + 0x1p-24f;
}

#ifdef __cplusplus
}
#endif
#endif

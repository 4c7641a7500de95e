/* 16 Philox blocks (64 normals) at a time, written lane by lane so the
 * compiler vectorises it (AVX-512: one lane per block). Bit-identical to
 * sq_zo_normal4 (zo_rng.h), its reference twin: the same operations in the
 * same order, only the quadrant switch is turned into selects. */
#ifndef SPARQ_KERNELS_CPU_ZO_NORMALS_H
#define SPARQ_KERNELS_CPU_ZO_NORMALS_H

#include <stdint.h>
#include <string.h>

#include "sparq/zo_rng.h"

#define SQ_ZO_LANES 16

/* out[4*l + j] = normal j of block b0 + l. */
static inline void sq_zo_normals16(uint64_t seed, uint64_t tensor_id, uint64_t b0,
                                   float out[4 * SQ_ZO_LANES])
{
    uint32_t c0[SQ_ZO_LANES], c1[SQ_ZO_LANES], c2[SQ_ZO_LANES], c3[SQ_ZO_LANES];
    const uint32_t k0i = (uint32_t)seed, k1i = (uint32_t)(seed >> 32);
    for (int l = 0; l < SQ_ZO_LANES; l++) {
        uint64_t b = b0 + (uint64_t)l;
        c0[l] = (uint32_t)b;
        c1[l] = (uint32_t)(b >> 32);
        c2[l] = (uint32_t)tensor_id;
        c3[l] = (uint32_t)(tensor_id >> 32);
    }
    uint32_t k0 = k0i, k1 = k1i;
    for (int r = 0; r < 10; r++) {
        for (int l = 0; l < SQ_ZO_LANES; l++) {
            uint64_t p0 = (uint64_t)SQ_PHILOX_M0 * c0[l];
            uint64_t p1 = (uint64_t)SQ_PHILOX_M1 * c2[l];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
            c1[l] = (uint32_t)p1;
            c3[l] = (uint32_t)p0;
            c0[l] = n0;
            c2[l] = n2;
        }
        k0 += SQ_PHILOX_W0;
        k1 += SQ_PHILOX_W1;
    }
    /* Box-Muller over all 32 pairs at once: pair j of block l uses words
     * (2j, 2j+1) and writes normals 4l+2j (cos) and 4l+2j+1 (sin). */
    uint32_t w1[2 * SQ_ZO_LANES], w2[2 * SQ_ZO_LANES];
    float zc[2 * SQ_ZO_LANES], zs[2 * SQ_ZO_LANES];
    for (int l = 0; l < SQ_ZO_LANES; l++) {
        w1[l] = c0[l];
        w2[l] = c1[l];
        w1[SQ_ZO_LANES + l] = c2[l];
        w2[SQ_ZO_LANES + l] = c3[l];
    }
    for (int l = 0; l < 2 * SQ_ZO_LANES; l++) {
        float u1 = sq_philox_uniform(w1[l]), u2 = sq_philox_uniform(w2[l]);
        float r = SQ_FSQRT(SQ_FMUL(-2.0f, sq_zo_logf(u1)));
        /* sq_zo_sincos2pi with the switch as selects */
        int q;
        float s, c;
        sq_zo_sincos_quarter(u2, &q, &s, &c);
        float sin_v = (q & 1) ? c : s, cos_v = (q & 1) ? s : c;
        sin_v = (q & 2) ? -sin_v : sin_v;
        cos_v = ((q + 1) & 2) ? -cos_v : cos_v;
        zc[l] = SQ_FMUL(r, cos_v);
        zs[l] = SQ_FMUL(r, sin_v);
    }
    for (int l = 0; l < SQ_ZO_LANES; l++) {
        out[4 * l + 0] = zc[l];
        out[4 * l + 1] = zs[l];
        out[4 * l + 2] = zc[SQ_ZO_LANES + l];
        out[4 * l + 3] = zs[SQ_ZO_LANES + l];
    }
}

#endif

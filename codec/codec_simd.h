/* Inline helpers of the fast path: fp16 conversions and the Philox dither
 * in bulk. Each has a portable form; instruction-set forms are used when the
 * build targets them (-march=native), and tests check both agree with the
 * reference forms in base/ and sparq/philox.h. */
#ifndef SPARQ_CODEC_SIMD_H
#define SPARQ_CODEC_SIMD_H

#include <stdint.h>

#include "codec_internal.h"
#include "sparq/philox.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) &&                      \
    defined(__AVX512VBMI2__) && defined(__AVX512VPOPCNTDQ__)
#include <immintrin.h>
#define SQ_CODEC_AVX512 1
#else
#define SQ_CODEC_AVX512 0
#endif

/* Exact conversions of finite values (the codec validates scales and
 * outliers as finite before converting; lossless fp16 uses base/). */
static inline float sq_codec_h2f(uint16_t h)
{
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    return sq_f16_to_f32(h);
#endif
}

static inline uint16_t sq_codec_f2h(float f)
{
#if defined(__F16C__)
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
    return sq_f32_to_f16(f);
#endif
}

/* Same rule as sq_codec_scale() (format.c), with the inline conversions:
 * it runs once per group, and groups can be 32 elements. */
static inline int sq_codec_scale_fast(float amax, int qmax, sq_dtype_t sdt, float *s,
                                      uint32_t *wire)
{
    if (!(amax > 0.0f)) {
        *s = 0.0f;
        *wire = 0;
        return 0;
    }
    float s32 = amax / (float)qmax;
    if (sdt == SQ_DTYPE_F16) {
        uint16_t h = sq_codec_f2h(s32);
        if (h >= 0x7c00u) return -1;
        float v = sq_codec_h2f(h);
        while ((double)v * qmax < (double)amax) {
            if (++h >= 0x7c00u) return -1;
            v = sq_codec_h2f(h);
        }
        *s = v;
        *wire = h;
        return 0;
    }
    if ((double)s32 * qmax < (double)amax || s32 * (float)qmax > 3.4028235e38f)
        return sq_codec_scale(amax, qmax, sdt, s, wire);
    *s = s32;
    memcpy(wire, &s32, 4);
    return 0;
}

/* Random bits of blocks [b0, b0 + nb) of a Philox stream, block j at
 * out[4j .. 4j+3]; the same integer rounds as sq_philox4x32_10. */
static inline void sq_codec_philox_blocks(uint64_t seed, uint64_t stream, uint64_t b0, int nb,
                                          uint32_t *out)
{
    int j = 0;
#if SQ_CODEC_AVX512
    /* 16 blocks per step, one per lane: the 32x32->64 products come from
     * two vpmuludq (even and odd lanes). */
    const __m512i m0 = _mm512_set1_epi64(SQ_PHILOX_M0), m1 = _mm512_set1_epi64(SQ_PHILOX_M1);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i s_lo = _mm512_set1_epi32((int)(uint32_t)stream);
    const __m512i s_hi = _mm512_set1_epi32((int)(uint32_t)(stream >> 32));
    for (; j + 16 <= nb; j += 16) {
        uint64_t base = b0 + (uint64_t)j;
        __m512i c0 = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)base), lane);
        /* the low word may wrap inside the 16 lanes: carry into the high word */
        __mmask16 wrap = _mm512_cmplt_epu32_mask(c0, _mm512_set1_epi32((int)(uint32_t)base));
        __m512i c1 = _mm512_mask_add_epi32(_mm512_set1_epi32((int)(uint32_t)(base >> 32)), wrap,
                                           _mm512_set1_epi32((int)(uint32_t)(base >> 32)),
                                           _mm512_set1_epi32(1));
        __m512i c2 = s_lo, c3 = s_hi;
        uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
        for (int r = 0; r < 10; r++) {
            __m512i p0e = _mm512_mul_epu32(c0, m0);
            __m512i p0o = _mm512_mul_epu32(_mm512_srli_epi64(c0, 32), m0);
            __m512i p1e = _mm512_mul_epu32(c2, m1);
            __m512i p1o = _mm512_mul_epu32(_mm512_srli_epi64(c2, 32), m1);
            const __m512i lo_mask = _mm512_set1_epi64(0xffffffffu);
            __m512i lo0 =
                _mm512_or_si512(_mm512_and_si512(p0e, lo_mask), _mm512_slli_epi64(p0o, 32));
            __m512i hi0 =
                _mm512_or_si512(_mm512_srli_epi64(p0e, 32), _mm512_andnot_si512(lo_mask, p0o));
            __m512i lo1 =
                _mm512_or_si512(_mm512_and_si512(p1e, lo_mask), _mm512_slli_epi64(p1o, 32));
            __m512i hi1 =
                _mm512_or_si512(_mm512_srli_epi64(p1e, 32), _mm512_andnot_si512(lo_mask, p1o));
            __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)k0));
            __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)k1));
            c0 = n0;
            c1 = lo1;
            c2 = n2;
            c3 = lo0;
            k0 += SQ_PHILOX_W0;
            k1 += SQ_PHILOX_W1;
        }
        /* transpose 4 x 16 (word-major) into 16 x 4 (block-major) */
        __m512i t0 = _mm512_unpacklo_epi32(c0, c1); /* c0 c1 of blocks 0,1 | 4,5 | ... */
        __m512i t1 = _mm512_unpackhi_epi32(c0, c1);
        __m512i t2 = _mm512_unpacklo_epi32(c2, c3);
        __m512i t3 = _mm512_unpackhi_epi32(c2, c3);
        __m512i u0 = _mm512_unpacklo_epi64(t0, t2); /* block 0 | 4 | 8 | 12 */
        __m512i u1 = _mm512_unpackhi_epi64(t0, t2); /* block 1 | 5 | 9 | 13 */
        __m512i u2 = _mm512_unpacklo_epi64(t1, t3); /* block 2 | 6 | 10 | 14 */
        __m512i u3 = _mm512_unpackhi_epi64(t1, t3); /* block 3 | 7 | 11 | 15 */
        __m512i a = _mm512_permutex2var_epi64(u0, _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), u1);
        __m512i b = _mm512_permutex2var_epi64(u2, _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), u3);
        __m512i c =
            _mm512_permutex2var_epi64(u0, _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15), u1);
        __m512i d =
            _mm512_permutex2var_epi64(u2, _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15), u3);
        /* a = blocks 0,1,4,5  b = 2,3,6,7  c = 8,9,12,13  d = 10,11,14,15 */
        uint32_t *o = out + 4 * j;
        _mm512_storeu_si512(o, _mm512_shuffle_i64x2(a, b, 0x44));      /* 0,1,2,3 */
        _mm512_storeu_si512(o + 16, _mm512_shuffle_i64x2(a, b, 0xee)); /* 4,5,6,7 */
        _mm512_storeu_si512(o + 32, _mm512_shuffle_i64x2(c, d, 0x44)); /* 8..11 */
        _mm512_storeu_si512(o + 48, _mm512_shuffle_i64x2(c, d, 0xee)); /* 12..15 */
    }
#endif
    for (; j < nb; j++)
        sq_philox_block(seed, stream, b0 + (uint64_t)j, out + 4 * j);
}

#endif

/* sparq/zo_rng.h — the perturbation direction z of zeroth-order training.
 *
 * z(step_seed, tensor_id, i) ~ N(0, 1) is a pure function: Philox4x32-10
 * bits (philox.h) turned into normals by Box–Muller. To give the same bits
 * on the CPU and in CUDA kernels, the transform avoids libm: log and
 * sin/cos are fixed polynomials evaluated with explicit fused multiply-adds,
 * every other operation is a single correctly rounded IEEE op (sqrt and
 * division included), and floating-point contraction is off, so no compiler
 * may fuse differently on either side.
 *
 * Element i of a tensor uses Philox block i/4 of stream tensor_id; the four
 * words give two Box–Muller pairs: normals 4k..4k+3.
 */
#ifndef SPARQ_ZO_RNG_H
#define SPARQ_ZO_RNG_H

#include <stdint.h>
#include <string.h>

#include "sparq/philox.h"

#if defined(__clang__) && !defined(__CUDACC__)
#pragma clang fp contract(off)
#endif

#if defined(__CUDA_ARCH__)
#define SQ_FMA(a, b, c) __fmaf_rn((a), (b), (c))
#define SQ_FMUL(a, b) __fmul_rn((a), (b))
#define SQ_FADD(a, b) __fadd_rn((a), (b))
#define SQ_FSUB(a, b) __fsub_rn((a), (b))
#define SQ_FDIV(a, b) __fdiv_rn((a), (b))
#define SQ_FSQRT(a) __fsqrt_rn(a)
#else
#include <math.h>
#define SQ_FMA(a, b, c) fmaf((a), (b), (c))
#define SQ_FMUL(a, b) ((a) * (b))
#define SQ_FADD(a, b) ((a) + (b))
#define SQ_FSUB(a, b) ((a) - (b))
#define SQ_FDIV(a, b) ((a) / (b))
#define SQ_FSQRT(a) sqrtf(a)
#endif

/* Most SPSA samples per step (optimizer.n_spsa): run-log entries, the
 * pipeline's gradient message and the GPU update kernel hold this many. */
#define SQ_MAX_SPSA 64

#ifdef __cplusplus
extern "C" {
#endif

/* Stable id of a tensor from its name (FNV-1a 64): z never depends on load
 * order, stage layout or which process holds the tensor. */
static inline uint64_t sq_zo_tensor_id(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Seed of step t of a run (and of SPSA sample k within the step). */
SQ_HD uint64_t sq_zo_step_seed(uint64_t run_seed, uint64_t step, uint32_t sample)
{
    uint32_t b[4];
    sq_philox_block(run_seed, 0x5eed0000ull + sample, step, b);
    return ((uint64_t)b[1] << 32) | b[0];
}

/* ln(u) for u in (0, 1): u = m * 2^e with m in [sqrt(1/2), sqrt(2)),
 * ln(m) = 2 atanh(s), s = (m - 1)/(m + 1), |s| < 0.172 (odd series to s^11). */
SQ_HD float sq_zo_logf(float u)
{
    uint32_t bits;
#if defined(__CUDA_ARCH__)
    bits = __float_as_uint(u);
#else
    memcpy(&bits, &u, 4);
#endif
    int e = (int)((bits >> 23) & 0xff) - 127;
    uint32_t mb = (bits & 0x7fffffu) | 0x3f800000u; /* m in [1, 2) */
    uint32_t hi = mb > 0x3fb504f3u ? 1u : 0u; /* m > sqrt(2): halve it (branch-free) */
    mb -= hi << 23;
    e += (int)hi;
    float m;
#if defined(__CUDA_ARCH__)
    m = __uint_as_float(mb);
#else
    memcpy(&m, &mb, 4);
#endif
    float s = SQ_FDIV(SQ_FSUB(m, 1.0f), SQ_FADD(m, 1.0f));
    float s2 = SQ_FMUL(s, s);
    float p = SQ_FMA(s2, 0.18181818f, 0.22222222f); /* 2/11, 2/9 */
    p = SQ_FMA(s2, p, 0.28571429f);                  /* 2/7 */
    p = SQ_FMA(s2, p, 0.4f);                         /* 2/5 */
    p = SQ_FMA(s2, p, 0.66666667f);                  /* 2/3 */
    p = SQ_FMA(s2, p, 2.0f);
    float lm = SQ_FMUL(s, p);
    return SQ_FMA((float)e, 0.69314718f, lm);
}

/* The quarter-turn part of sin/cos(2*pi*a), a in [0, 1): q = round(4a) mod 4
 * and sin/cos of (4a - round(4a)) * pi/2 in [-pi/4, pi/4] by Taylor
 * polynomials. Shared by the scalar path and the vectorised twin. */
SQ_HD void sq_zo_sincos_quarter(float a, int *q_out, float *s_out, float *c_out)
{
    float a4 = SQ_FMUL(a, 4.0f);
    float qf = (float)(int)SQ_FADD(a4, 0.5f); /* a4 >= 0: truncation rounds half up */
    float f = SQ_FSUB(a4, qf);               /* in [-0.5, 0.5], exact */
    float y = SQ_FMUL(f, 1.57079633f);
    float y2 = SQ_FMUL(y, y);
    float sp = SQ_FMA(y2, 2.75573192e-6f, -1.98412698e-4f);
    sp = SQ_FMA(y2, sp, 8.33333333e-3f);
    sp = SQ_FMA(y2, sp, -1.66666667e-1f);
    float cp = SQ_FMA(y2, -2.75573192e-7f, 2.48015873e-5f);
    cp = SQ_FMA(y2, cp, -1.38888889e-3f);
    cp = SQ_FMA(y2, cp, 4.16666667e-2f);
    cp = SQ_FMA(y2, cp, -0.5f);
    *q_out = (int)qf & 3;
    *s_out = SQ_FMA(SQ_FMUL(y, y2), sp, y);
    *c_out = SQ_FMA(y2, cp, 1.0f);
}

/* sin and cos of 2*pi*a for a in [0, 1). */
SQ_HD void sq_zo_sincos2pi(float a, float *s_out, float *c_out)
{
    int q;
    float s, c;
    sq_zo_sincos_quarter(a, &q, &s, &c);
    switch (q) {
    case 0: *s_out = s; *c_out = c; break;
    case 1: *s_out = c; *c_out = -s; break;
    case 2: *s_out = -s; *c_out = -c; break;
    default: *s_out = -c; *c_out = s; break;
    }
}

/* The four normals of block k (elements 4k .. 4k+3). */
SQ_HD void sq_zo_normal4(uint64_t seed, uint64_t tensor_id, uint64_t k, float z[4])
{
    uint32_t b[4];
    sq_philox_block(seed, tensor_id, k, b);
    for (int j = 0; j < 2; j++) {
        float u1 = sq_philox_uniform(b[2 * j]), u2 = sq_philox_uniform(b[2 * j + 1]);
        float r = SQ_FSQRT(SQ_FMUL(-2.0f, sq_zo_logf(u1)));
        float s, c;
        sq_zo_sincos2pi(u2, &s, &c);
        z[2 * j] = SQ_FMUL(r, c);
        z[2 * j + 1] = SQ_FMUL(r, s);
    }
}

#ifdef __cplusplus
}
#endif
#endif

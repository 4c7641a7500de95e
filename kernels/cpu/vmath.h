/* kernels/cpu/vmath.h — exp-family functions written so that gcc vectorizes
 * them inside `#pragma omp simd` loops (libm's expf/tanhf/erff are scalar
 * calls and would dominate softmax, cross-entropy and GELU).
 *
 * Internal to kernels/cpu. Accuracy (checked by tests/kernels against libm in
 * double): sq_vexpf within 2 ulp over its range; the derived functions within
 * a few 1e-7 relative where their result is not tiny.
 */
#ifndef SQ_KERNELS_CPU_VMATH_H
#define SQ_KERNELS_CPU_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp(x) = 2^n * exp(r), n = round(x / ln2), |r| <= ln2/2; exp(r) by the
 * Cephes expf polynomial. Inputs below about -87.3 (including -inf) give 0 or
 * the smallest normal range, above 88.7 saturate near FLT_MAX; NaN stays NaN.
 * Rounding uses the 1.5*2^23 trick instead of rintf so no call is emitted. */
static inline float sq_vexpf(float x)
{
    float xc = x < -88.0f ? -88.0f : x;
    xc = xc > 88.3762626647949f ? 88.3762626647949f : xc;
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = fmaf(n, -0.693359375f, xc); /* ln2 split in two: hi part exact */
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r) + 1.0f;
    /* n = -127 (x <= -88) gives exponent bits 0, i.e. a scale of +0. A NaN
     * input is already NaN in p; keep it out of the int conversion (UB). */
    int32_t ni = (int32_t)(n == n ? n : 0.0f);
    uint32_t bits = (uint32_t)(ni + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* 1 / (1 + exp(-x)) */
static inline float sq_vsigmoidf(float x)
{
    return 1.0f / (1.0f + sq_vexpf(-x));
}

/* x * sigmoid(x) */
static inline float sq_vsiluf(float x)
{
    return x / (1.0f + sq_vexpf(-x));
}

/* GPT-2 gelu_new: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
 * Since 1 + tanh(u) = 2 sigmoid(2u) this is x * sigmoid(2u), which avoids
 * the cancellation of 1 + tanh(u) for negative x. */
static inline float sq_vgelu_tanhf(float x)
{
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return x / (1.0f + sq_vexpf(-2.0f * u));
}

/* erfc(z) by the Chebyshev-fitted form of Numerical Recipes (erfcc),
 * fractional error below 1.2e-7 everywhere. */
static inline float sq_verfcf(float z)
{
    float az = fabsf(z);
    float t = 1.0f / (1.0f + 0.5f * az);
    float p = 0.17087277f;
    p = fmaf(p, t, -0.82215223f);
    p = fmaf(p, t, 1.48851587f);
    p = fmaf(p, t, -1.13520398f);
    p = fmaf(p, t, 0.27886807f);
    p = fmaf(p, t, -0.18628806f);
    p = fmaf(p, t, 0.09678418f);
    p = fmaf(p, t, 0.37409196f);
    p = fmaf(p, t, 1.00002368f);
    p = fmaf(p, t, -1.26551223f);
    float e = t * sq_vexpf(-az * az + p);
    return z >= 0.0f ? e : 2.0f - e;
}

/* exact GELU: 0.5 x (1 + erf(x/sqrt2)) = 0.5 x erfc(-x/sqrt2); the erfc form
 * keeps relative accuracy in the negative tail. */
static inline float sq_vgelu_erff(float x)
{
    return 0.5f * x * sq_verfcf(-0.70710678118654752f * x);
}

#endif

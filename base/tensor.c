/* Tensor views, dtype conversions. */
#include "sparq/tensor.h"

#include <string.h>

size_t sq_dtype_size(sq_dtype_t dt)
{
    switch (dt) {
    case SQ_DTYPE_F32: return 4;
    case SQ_DTYPE_F16: return 2;
    case SQ_DTYPE_BF16: return 2;
    case SQ_DTYPE_I8: return 1;
    case SQ_DTYPE_I32: return 4;
    default: return 0;
    }
}

const char *sq_dtype_name(sq_dtype_t dt)
{
    switch (dt) {
    case SQ_DTYPE_F32: return "F32";
    case SQ_DTYPE_F16: return "F16";
    case SQ_DTYPE_BF16: return "BF16";
    case SQ_DTYPE_I8: return "I8";
    case SQ_DTYPE_I32: return "I32";
    default: return "?";
    }
}

int64_t sq_tensor_numel(const sq_tensor_t *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

int64_t sq_tensor_cols(const sq_tensor_t *t)
{
    return t->ndim > 0 ? t->shape[t->ndim - 1] : 1;
}

int64_t sq_tensor_rows(const sq_tensor_t *t)
{
    int64_t n = 1;
    for (int i = 0; i + 1 < t->ndim; i++) n *= t->shape[i];
    return n;
}

int64_t sq_tensor_ld(const sq_tensor_t *t)
{
    return t->ld ? t->ld : sq_tensor_cols(t);
}

sq_tensor_t sq_tensor_2d(void *data, sq_dtype_t dt, int64_t rows, int64_t cols)
{
    sq_tensor_t t = {.data = data, .dtype = dt, .device = SQ_DEVICE_CPU, .ndim = 2};
    t.shape[0] = rows;
    t.shape[1] = cols;
    return t;
}

sq_tensor_t sq_tensor_1d(void *data, sq_dtype_t dt, int64_t n)
{
    sq_tensor_t t = {.data = data, .dtype = dt, .device = SQ_DEVICE_CPU, .ndim = 1};
    t.shape[0] = n;
    return t;
}

sq_tensor_t sq_tensor_rows_view(const sq_tensor_t *t, int64_t r0, int64_t n)
{
    sq_tensor_t v = *t;
    int64_t ld = sq_tensor_ld(t);
    v.data = (uint8_t *)t->data + (size_t)(r0 * ld) * sq_dtype_size(t->dtype);
    v.ndim = 2;
    v.shape[0] = n;
    v.shape[1] = sq_tensor_cols(t);
    v.ld = t->ld;
    return v;
}

sq_tensor_t sq_tensor_cols_view(const sq_tensor_t *t, int64_t c0, int64_t n)
{
    sq_tensor_t v = *t;
    v.data = (uint8_t *)t->data + (size_t)c0 * sq_dtype_size(t->dtype);
    v.ndim = 2;
    v.shape[0] = sq_tensor_rows(t);
    v.shape[1] = n;
    v.ld = sq_tensor_ld(t);
    return v;
}

/* IEEE half <-> float, handling subnormals, Inf and NaN. */
float sq_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                mant <<= 1;
            } while (!(mant & 0x400));
            mant &= 0x3ff;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t sq_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* Inf or NaN */
        return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to Inf */
        return (uint16_t)(sign | 0x7c00u);
    if (absx < 0x38800000u) { /* below the smallest normal half: subnormal */
        if (absx < 0x33000000u) return (uint16_t)sign; /* < 2^-25 rounds to 0 */
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* half subnormal = m * 2^(e-126) units of 2^-24 */
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (r & 1u))) r++; /* RNE */
        return (uint16_t)(sign | r);
    }
    uint32_t r = absx + 0xc8000fffu + ((absx >> 13) & 1u); /* rebias + RNE */
    return (uint16_t)(sign | (r >> 13));
}

float sq_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t sq_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

sq_status_t sq_convert_to_f32(const void *src, sq_dtype_t src_dt, float *dst, int64_t n)
{
    const uint16_t *h = src;
    switch (src_dt) {
    case SQ_DTYPE_F32: memcpy(dst, src, (size_t)n * 4); return SQ_OK;
    case SQ_DTYPE_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = sq_f16_to_f32(h[i]);
        return SQ_OK;
    case SQ_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = sq_bf16_to_f32(h[i]);
        return SQ_OK;
    default:
        return sq_error_set(SQ_ERR_UNSUPPORTED, "cannot convert %s to F32", sq_dtype_name(src_dt));
    }
}

sq_status_t sq_convert_from_f32(const float *src, void *dst, sq_dtype_t dst_dt, int64_t n)
{
    uint16_t *h = dst;
    switch (dst_dt) {
    case SQ_DTYPE_F32: memcpy(dst, src, (size_t)n * 4); return SQ_OK;
    case SQ_DTYPE_F16:
        for (int64_t i = 0; i < n; i++) h[i] = sq_f32_to_f16(src[i]);
        return SQ_OK;
    case SQ_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++) h[i] = sq_f32_to_bf16(src[i]);
        return SQ_OK;
    default:
        return sq_error_set(SQ_ERR_UNSUPPORTED, "cannot convert F32 to %s", sq_dtype_name(dst_dt));
    }
}

#pragma once
/* Emulated cuda_fp16.h: __half as its bits, conversions round to nearest even. */
#include "sq_emu_half.h"
struct __half { uint16_t __x; };
typedef struct __half half;
static inline __half __float2half_rn(float f) { __half h; h.__x = sq_emu_f32_to_f16(f); return h; }
static inline __half __float2half(float f) { return __float2half_rn(f); }
static inline float __half2float(__half h) { return sq_emu_f16_to_f32(h.__x); }

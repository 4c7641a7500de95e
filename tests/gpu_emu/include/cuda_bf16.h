#pragma once
/* Emulated cuda_bf16.h: __nv_bfloat16 as its bits, conversions round to nearest even. */
#include "sq_emu_half.h"
struct __nv_bfloat16 { uint16_t __x; };
static inline __nv_bfloat16 __float2bfloat16_rn(float f) { __nv_bfloat16 h; h.__x = sq_emu_f32_to_bf16(f); return h; }
static inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
static inline float __bfloat162float(__nv_bfloat16 h) { return sq_emu_bf16_to_f32(h.__x); }

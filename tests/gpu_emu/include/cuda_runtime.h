/* Device-side emulation: every CUDA thread of a block is a fiber;
 * __syncthreads and the shuffles are barriers resolved by a scheduler,
 * blocks run one after the other, launches are queued on their stream.
 * Atomics are plain read-modify-writes (fibers switch only at barriers). */
#ifndef SQ_EMU_CUDA_RUNTIME_H
#define SQ_EMU_CUDA_RUNTIME_H
#include "cuda_runtime_api.h"
#include <math.h>
#include <string.h>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#ifndef __restrict__
#define __restrict__ __restrict
#endif

struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct uint4 { unsigned x, y, z, w; };

struct sq_emu_thread { uint3 tid, bid; dim3 bdim, gdim; };
extern sq_emu_thread *sq_emu_cur;
#define threadIdx (sq_emu_cur->tid)
#define blockIdx (sq_emu_cur->bid)
#define blockDim (sq_emu_cur->bdim)
#define gridDim (sq_emu_cur->gdim)

/* A kernel launch, queued on stream s (emu.cpp runs it when the stream gets
 * there). transform.py turns `k<<<grid, block, shmem, s>>>(args)` into
 * sq_emu_launch(grid, block, shmem, s, [=](auto... p) { k(p...); }, args):
 * the arguments are copied here, at the launch, as CUDA copies kernel
 * parameters (a host struct passed by value may be reused at once).
 * `extern __shared__ T name[];` becomes a pointer to sq_emu_dyn_smem(), the
 * launch's shmem bytes, poisoned with 0xff bytes at every block. */
void sq_emu_launch_body(dim3 grid, dim3 block, size_t shmem, cudaStream_t s,
                        std::function<void()> body);
/* Queues work on stream s (the emulated libraries, e.g. CUB's scan). */
void sq_emu_enqueue(cudaStream_t s, std::function<void()> work);
/* A pointer argument must be device or pinned memory (or NULL). */
void sq_emu_check_arg(const void *p, int i);
template <class T> static inline void sq_emu_check_arg_t(const T &v, int i)
{
    if constexpr (std::is_pointer<T>::value && !std::is_function<std::remove_pointer_t<T>>::value)
        sq_emu_check_arg((const void *)v, i);
}
template <class K, class... A>
static inline void sq_emu_launch(dim3 grid, dim3 block, size_t shmem, cudaStream_t s, K kernel,
                                 A &&...args)
{
    std::tuple<std::decay_t<A>...> copy(std::forward<A>(args)...);
    int i = 0;
    std::apply([&i](const auto &...v) { (sq_emu_check_arg_t(v, i++), ...); }, copy);
    sq_emu_launch_body(grid, block, shmem, s, [kernel, copy] { std::apply(kernel, copy); });
}
void *sq_emu_dyn_smem(void);
void __syncthreads(void);
enum { SQ_EMU_SHFL_XOR, SQ_EMU_SHFL_IDX, SQ_EMU_SHFL_DOWN, SQ_EMU_SHFL_UP };
uint64_t sq_emu_shfl(unsigned mask, uint64_t v, int o, int mode, int width);
static inline uint64_t sq_emu_shfl_xor(unsigned mask, uint64_t v, int o)
{ return sq_emu_shfl(mask, v, o, SQ_EMU_SHFL_XOR, 32); }

template <class T> static inline T sq_emu_shfl_t(unsigned mask, T v, int o, int mode, int width)
{
    static_assert(sizeof(T) <= 8, "shuffle of more than 64 bits");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof v);
    b = sq_emu_shfl(mask, b, o, mode, width);
    T r;
    memcpy(&r, &b, sizeof r);
    return r;
}
template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int o, int width = 32)
{ return sq_emu_shfl_t(mask, v, o, SQ_EMU_SHFL_XOR, width); }
template <class T> static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32)
{ return sq_emu_shfl_t(mask, v, src, SQ_EMU_SHFL_IDX, width); }
template <class T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32)
{ return sq_emu_shfl_t(mask, v, (int)d, SQ_EMU_SHFL_DOWN, width); }
template <class T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32)
{ return sq_emu_shfl_t(mask, v, (int)d, SQ_EMU_SHFL_UP, width); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { (void)mask; }
template <class T> static inline T __ldg(const T *p) { return *p; }
template <class T> static inline T max(T a, T b) { return a > b ? a : b; }
template <class T> static inline T min(T a, T b) { return a < b ? a : b; }
static inline int __popc(unsigned v) { return __builtin_popcount(v); }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __frcp_rn(float a) { return 1.0f / a; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline int __float2int_rn(float v) { return (int)rintf(v); }
static inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
static inline unsigned long long atomicMin(unsigned long long *p, unsigned long long v)
{ unsigned long long o = *p; if (v < o) *p = v; return o; }
static inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v)
{ unsigned long long o = *p; *p = o + v; return o; }
static inline unsigned atomicOr(unsigned *p, unsigned v) { unsigned o = *p; *p = o | v; return o; }
#endif

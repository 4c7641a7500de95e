/* Host emulation of the CUDA device side for tests/codec/gpu_emu (see README.md). */
#include "cuda_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>
#include <vector>

sq_emu_thread *sq_emu_cur;

extern "C" int sq_cuda_available(void) { return 1; }

enum { F_RUN, F_SYNC, F_SHFL, F_DONE };
struct fiber {
    ucontext_t ctx;
    sq_emu_thread t;
    int state;
    uint64_t val, res;
    int off;
    char *stack;
};
static const size_t kStack = 128 * 1024;
static std::vector<fiber> fibers;
static ucontext_t sched_ctx;
static fiber *cur;
static const std::function<void()> *cur_body;
static unsigned long long launches, fiber_runs;

static void entry(void)
{
    (*cur_body)();
    cur->state = F_DONE;
}

static void yield_to_sched(void) { swapcontext(&cur->ctx, &sched_ctx); sq_emu_cur = &cur->t; }

void __syncthreads(void)
{
    cur->state = F_SYNC;
    yield_to_sched();
}

uint64_t sq_emu_shfl_xor(unsigned mask, uint64_t v, int o)
{
    if (mask != 0xffffffffu) { fprintf(stderr, "EMU: partial shfl mask\n"); abort(); }
    cur->val = v;
    cur->off = o;
    cur->state = F_SHFL;
    yield_to_sched();
    return cur->res;
}

void sq_emu_launch(dim3 grid, dim3 block, const std::function<void()> &body)
{
    launches++;
    const unsigned nt = block.x * block.y * block.z;
    if (block.y != 1 || block.z != 1 || nt == 0 || nt > 1024 || nt % 32) {
        fprintf(stderr, "EMU: unsupported block %u %u %u\n", block.x, block.y, block.z);
        abort();
    }
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535) {
        fprintf(stderr, "EMU: invalid grid %u %u %u\n", grid.x, grid.y, grid.z);
        abort();
    }
    if (fibers.size() < nt) {
        size_t old = fibers.size();
        fibers.resize(nt);
        for (size_t i = old; i < nt; i++) fibers[i].stack = (char *)malloc(kStack);
    }
    cur_body = &body;
    for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
    for (unsigned bx = 0; bx < grid.x; bx++) {
        for (unsigned i = 0; i < nt; i++) {
            fiber &f = fibers[i];
            f.t.tid = {i, 0, 0};
            f.t.bid = {bx, by, bz};
            f.t.bdim = block;
            f.t.gdim = grid;
            f.state = F_RUN;
            getcontext(&f.ctx);
            f.ctx.uc_stack.ss_sp = f.stack;
            f.ctx.uc_stack.ss_size = kStack;
            f.ctx.uc_link = &sched_ctx;
            makecontext(&f.ctx, entry, 0);
        }
        for (;;) {
            int ran = 0;
            for (unsigned i = 0; i < nt; i++) {
                fiber &f = fibers[i];
                if (f.state != F_RUN) continue;
                cur = &f;
                sq_emu_cur = &f.t;
                swapcontext(&sched_ctx, &f.ctx);
                fiber_runs++;
                ran = 1;
            }
            if (ran) continue;
            unsigned done = 0, sync = 0;
            for (unsigned i = 0; i < nt; i++) {
                done += fibers[i].state == F_DONE;
                sync += fibers[i].state == F_SYNC;
            }
            if (done == nt) break;
            if (sync && sync + done == nt) {
                if (done) { fprintf(stderr, "EMU: __syncthreads with exited threads\n"); abort(); }
                for (unsigned i = 0; i < nt; i++) fibers[i].state = F_RUN;
                continue;
            }
            int resolved = 0;
            for (unsigned w = 0; w < nt / 32; w++) {
                fiber *l = &fibers[32 * w];
                unsigned sh = 0;
                for (int k = 0; k < 32; k++) sh += l[k].state == F_SHFL;
                if (sh == 0) continue;
                if (sh != 32) {
                    fprintf(stderr, "EMU: warp %u: shfl reached by %u of 32 lanes (others exited or at another barrier)\n", w, sh);
                    abort();
                }
                for (int k = 0; k < 32; k++) l[k].res = l[k ^ l[k].off].val;
                for (int k = 0; k < 32; k++) l[k].state = F_RUN;
                resolved = 1;
            }
            if (!resolved) { fprintf(stderr, "EMU: deadlock\n"); abort(); }
        }
    }
    sq_emu_cur = NULL;
}

/* ---- runtime ---- */
extern "C" {
cudaError_t cudaMalloc(void **p, size_t n)
{
    void *q = NULL;
    if (posix_memalign(&q, 256, n ? n : 1)) return cudaErrorMemoryAllocation;
    *p = q;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaMallocHost(void **p, size_t n) { return cudaMalloc(p, n); }
cudaError_t cudaFreeHost(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) { if (n) memmove(d, s, n); return cudaSuccess; }
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t) { return cudaMemcpy(d, s, n, k); }
cudaError_t cudaMemset(void *d, int v, size_t n) { if (n) memset(d, v, n); return cudaSuccess; }
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) { return cudaMemset(d, v, n); }
cudaError_t cudaMemset2DAsync(void *d, size_t pitch, int v, size_t w, size_t h, cudaStream_t)
{
    if (w > pitch) return cudaErrorInvalidValue;
    for (size_t r = 0; r < h; r++) memset((char *)d + r * pitch, v, w);
    return cudaSuccess;
}
static char stream_obj;
cudaError_t cudaStreamCreate(cudaStream_t *s) { *s = (cudaStream_t)&stream_obj; return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
const char *cudaGetErrorString(cudaError_t e) { return e ? "emulated error" : "no error"; }
cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int)
{
    *v = a == cudaDevAttrMultiProcessorCount ? 2 : a == cudaDevAttrMemoryClockRate ? 2619000 : 5120;
    return cudaSuccess;
}
}

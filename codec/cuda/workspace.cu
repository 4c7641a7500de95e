// The GPU codec's workspace: device scratch sized once at create() (codes,
// per-word counts and their scan, CUB's scan storage, the flag words) and
// the pinned host words the flags are read back into. No call allocates.
#include "codec_gpu_internal.h"

#include <cub/device/device_scan.cuh>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

unsigned sq_gpu_grid(const sq_codec_gpu_t *g, uint64_t items, uint64_t per_block)
{
    uint64_t blocks = (items + per_block - 1) / per_block;
    const uint64_t cap = (uint64_t)(g->sm_count > 0 ? g->sm_count : 1) * 32u;
    if (blocks > cap) blocks = cap; // grid-stride loops cover the rest
    return blocks ? (unsigned)blocks : 1u;
}

sq_status_t sq_gpu_launched(const char *what)
{
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess)
        return sq_error_set(SQ_ERR_CUDA, "codec gpu: %s: launch failed: %s", what,
                            cudaGetErrorString(err));
    return SQ_OK;
}

sq_status_t sq_gpu_scan_words(sq_codec_gpu_t *g, uint64_t n, cudaStream_t st)
{
    if (n == 0 || n > g->max_words)
        return sq_error_set(SQ_ERR_INTERNAL, "codec gpu: scan of %llu words (workspace %llu)",
                            (unsigned long long)n, (unsigned long long)g->max_words);
    size_t bytes = 0;
    SQ_CUDA_TRY(cub::DeviceScan::ExclusiveSum(nullptr, bytes, g->dcnt, g->doff, (int)n, st),
                "scan size");
    if (bytes > g->temp_bytes)
        return sq_error_set(SQ_ERR_INTERNAL,
                            "codec gpu: scan of %llu words needs %zu bytes, %zu reserved",
                            (unsigned long long)n, bytes, g->temp_bytes);
    bytes = g->temp_bytes;
    SQ_CUDA_TRY(cub::DeviceScan::ExclusiveSum(g->dtemp, bytes, g->dcnt, g->doff, (int)n, st),
                "scan");
    return SQ_OK;
}

sq_status_t sq_gpu_state_reset(sq_codec_gpu_t *g, cudaStream_t st)
{
    SQ_CUDA_TRY(cudaMemcpyAsync(g->dstate, g->hinit, sizeof *g->dstate, cudaMemcpyHostToDevice, st),
                "reset flags");
    return SQ_OK;
}

sq_status_t sq_gpu_state_read_async(sq_codec_gpu_t *g, cudaStream_t st)
{
    SQ_CUDA_TRY(cudaMemcpyAsync(g->hstate, g->dstate, sizeof *g->hstate, cudaMemcpyDeviceToHost, st),
                "read flags");
    SQ_CUDA_TRY(cudaEventRecord(g->flags_ready, st), "record the flags' read-back");
    return SQ_OK;
}

sq_status_t sq_gpu_state_read(sq_codec_gpu_t *g, cudaStream_t st)
{
    SQ_TRY(sq_gpu_state_read_async(g, st));
    SQ_CUDA_TRY(cudaEventSynchronize(g->flags_ready), "wait for the flags");
    return SQ_OK;
}

extern "C" sq_status_t sq_codec_gpu_create(int64_t max_rows, int64_t max_elems,
                                           sq_codec_gpu_t **out)
{
    if (!out) return sq_error_set(SQ_ERR_INVALID_ARG, "codec gpu create: out is NULL");
    if (max_rows < 1 || max_elems < 1 || (uint64_t)max_elems > SQ_CODEC_MAX_ELEMS)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "codec gpu create: max_rows = %lld, max_elems = %lld (need >= 1, "
                            "max_elems <= 2^40)",
                            (long long)max_rows, (long long)max_elems);
    const uint64_t words = ((uint64_t)max_elems + 31) / 32;
    if (words > (uint64_t)INT_MAX) // CUB's scan takes an int count
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "codec gpu create: max_elems = %lld above 2^36 (scan limit)",
                            (long long)max_elems);
    int ndev = 0;
    cudaError_t err = cudaGetDeviceCount(&ndev);
    if (err != cudaSuccess || ndev == 0) {
        cudaGetLastError(); // clear the sticky "no device" error
        return sq_error_set(SQ_ERR_UNSUPPORTED, "codec gpu: no CUDA device visible (%s)",
                            err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
    }

    sq_status_t st = SQ_OK;
    sq_codec_gpu_t *g = (sq_codec_gpu_t *)calloc(1, sizeof *g);
    if (!g) return sq_error_set(SQ_ERR_NOMEM, "codec gpu create: workspace struct");
    g->max_rows = max_rows;
    g->max_elems = max_elems;
    g->max_words = words;
    size_t bytes = 0;
#define SQ_GPU_CREATE_TRY(call, what)                                                              \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            st = sq_error_set(e_ == cudaErrorMemoryAllocation ? SQ_ERR_NOMEM : SQ_ERR_CUDA,        \
                              "codec gpu create: %s: %s", (what), cudaGetErrorString(e_));         \
            goto undo;                                                                             \
        }                                                                                          \
    } while (0)
    SQ_GPU_CREATE_TRY(cudaGetDevice(&g->device), "current device");
    SQ_GPU_CREATE_TRY(
        cudaDeviceGetAttribute(&g->sm_count, cudaDevAttrMultiProcessorCount, g->device),
        "multiprocessor count");
    SQ_GPU_CREATE_TRY(cudaMalloc((void **)&g->dq, (size_t)max_elems), "code scratch");
    SQ_GPU_CREATE_TRY(cudaMalloc((void **)&g->dcnt, words * sizeof *g->dcnt), "word counts");
    SQ_GPU_CREATE_TRY(cudaMalloc((void **)&g->doff, words * sizeof *g->doff), "word offsets");
    SQ_GPU_CREATE_TRY(cub::DeviceScan::ExclusiveSum(nullptr, bytes, g->dcnt, g->doff, (int)words),
                      "scan size");
    g->temp_bytes = bytes ? bytes : 1;
    SQ_GPU_CREATE_TRY(cudaMalloc(&g->dtemp, g->temp_bytes), "scan scratch");
    SQ_GPU_CREATE_TRY(cudaMalloc((void **)&g->dstate, sizeof *g->dstate), "flags");
    SQ_GPU_CREATE_TRY(cudaMallocHost((void **)&g->hstate, sizeof *g->hstate), "pinned flags");
    SQ_GPU_CREATE_TRY(cudaMallocHost((void **)&g->hinit, sizeof *g->hinit), "pinned init flags");
    SQ_GPU_CREATE_TRY(cudaEventCreateWithFlags(&g->flags_ready, cudaEventDisableTiming),
                      "flags event");
#undef SQ_GPU_CREATE_TRY
    memset(g->hstate, 0, sizeof *g->hstate);
    g->hinit->nnz = 0;
    g->hinit->bad_elem = ~0ull;
    g->hinit->bad_scale = ~0ull;
    g->hinit->err = ~0ull;
    g->hinit->bad_bits = 0;
    *out = g;
    return SQ_OK;

undo: // every pointer is NULL or allocated: destroy frees exactly those
    sq_codec_gpu_destroy(g);
    return st;
}

extern "C" void sq_codec_gpu_destroy(sq_codec_gpu_t *g)
{
    if (!g) return;
    // cudaFree / cudaFreeHost of NULL are no-ops; an encode still in flight
    // (begin without end) must finish before its scratch goes
    if (g->pend.active) cudaStreamSynchronize(g->pend.st);
    if (g->flags_ready) cudaEventDestroy(g->flags_ready);
    cudaFreeHost(g->hinit);
    cudaFreeHost(g->hstate);
    cudaFree(g->dstate);
    cudaFree(g->dtemp);
    cudaFree(g->doff);
    cudaFree(g->dcnt);
    cudaFree(g->dq);
    free(g);
}

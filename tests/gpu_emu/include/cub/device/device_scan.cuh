#pragma once
#include <cuda_runtime.h>
namespace cub {
struct DeviceScan {
    template <class I, class O>
    static cudaError_t ExclusiveSum(void *tmp, size_t &bytes, I in, O out, int n, cudaStream_t st = 0)
    {
        const size_t need = 4096 + (size_t)n / 64;
        if (!tmp) { bytes = need; return cudaSuccess; }
        if (bytes < need) return cudaErrorInvalidValue;
        // queued on st like the device scan; in and out are read when it runs
        sq_emu_enqueue(st, [=] {
            unsigned long long acc = 0;
            for (int i = 0; i < n; i++) { unsigned long long v = in[i]; out[i] = acc; acc += v; }
        });
        return cudaSuccess;
    }
};
}

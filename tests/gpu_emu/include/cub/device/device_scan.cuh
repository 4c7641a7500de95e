#pragma once
#include <cuda_runtime.h>
namespace cub {
struct DeviceScan {
    template <class I, class O>
    static cudaError_t ExclusiveSum(void *tmp, size_t &bytes, I in, O out, int n, cudaStream_t = 0)
    {
        if (!tmp) { bytes = 4096 + (size_t)n / 64; return cudaSuccess; }
        unsigned long long acc = 0;
        for (int i = 0; i < n; i++) { unsigned long long v = in[i]; out[i] = acc; acc += v; }
        return cudaSuccess;
    }
};
}

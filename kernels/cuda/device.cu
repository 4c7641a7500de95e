// CUDA device discovery and description. The backend itself
// (sq_backend_cuda_create and its ops) lives in backend_cuda.cu and the op
// files next to it.
#include "sparq/backend.h"

#include <cuda_runtime.h>
#include <stdio.h>

extern "C" int sq_cuda_available(void)
{
    return sq_cuda_device_count() > 0;
}

extern "C" int sq_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky "no device" error
        return 0;
    }
    return n;
}

extern "C" sq_status_t sq_cuda_mem_info(size_t *free_bytes, size_t *total_bytes)
{
    size_t fr = 0, total = 0;
    cudaError_t err = cudaMemGetInfo(&fr, &total);
    if (err != cudaSuccess) {
        cudaGetLastError();
        return sq_error_set(SQ_ERR_CUDA, "cuda.mem_info: cudaMemGetInfo failed: %s",
                            cudaGetErrorString(err));
    }
    if (free_bytes) *free_bytes = fr;
    if (total_bytes) *total_bytes = total;
    return SQ_OK;
}

extern "C" void sq_cuda_print_device(int device)
{
    cudaDeviceProp prop;
    int mem_khz = 0, bus_bits = 0;
    if (cudaGetDeviceProperties(&prop, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device) != cudaSuccess) {
        cudaGetLastError();
        printf("cuda device %d: not available\n", device);
        return;
    }
    // double data rate: two transfers per memory clock over the whole bus
    const double gbps = 2.0 * (double)mem_khz * 1e3 * (double)bus_bits / 8.0 / 1e9;
    printf("cuda device %d: %s, sm_%d%d, %d SMs, %.1f GiB, %.0f GB/s peak memory bandwidth\n",
           device, prop.name, prop.major, prop.minor, prop.multiProcessorCount,
           (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), gbps);
}

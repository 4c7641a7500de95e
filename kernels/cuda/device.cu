// CUDA device discovery. The CUDA backend's ops arrive with issue 7; until
// then sq_backend_cuda_create() reports that plainly instead of pretending.
#include "sparq/backend.h"

#include <cuda_runtime.h>

extern "C" int sq_cuda_available(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky "no device" error
        return 0;
    }
    return n > 0;
}

extern "C" sq_status_t sq_backend_cuda_create(int device, sq_backend_t **out)
{
    (void)out;
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess || n == 0)
        return sq_error_set(SQ_ERR_UNSUPPORTED, "no CUDA device visible (%s)",
                            err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
    if (device < 0 || device >= n)
        return sq_error_set(SQ_ERR_RANGE, "CUDA device %d out of range (%d visible)", device, n);
    return sq_error_set(SQ_ERR_UNSUPPORTED,
                        "the CUDA backend's ops are not implemented yet (tracked by issue 7)");
}

/* Built instead of kernels/cuda when CUDA is off: the CUDA entry points
 * report that this build has none. */
#include "sparq/backend.h"

sq_status_t sq_backend_cuda_create(int device, sq_backend_t **out)
{
    (void)device;
    (void)out;
    return sq_error_set(SQ_ERR_UNSUPPORTED, "this sparq was built without CUDA (SPARQ_CUDA=OFF "
                                            "or no nvcc at configure time)");
}

int sq_cuda_available(void)
{
    return 0;
}

void *sq_backend_cuda_stream(sq_backend_t *be)
{
    (void)be;
    return NULL;
}

sq_status_t sq_backend_cuda_set_tf32(sq_backend_t *be, int on)
{
    (void)be;
    (void)on;
    return sq_error_set(SQ_ERR_INVALID_ARG, "tf32: not a CUDA backend");
}

int sq_cuda_device_count(void)
{
    return 0;
}

sq_status_t sq_cuda_mem_info(size_t *free_bytes, size_t *total_bytes)
{
    (void)free_bytes;
    (void)total_bytes;
    return sq_error_set(SQ_ERR_UNSUPPORTED, "this sparq was built without CUDA");
}

void sq_cuda_print_device(int device)
{
    (void)device;
}

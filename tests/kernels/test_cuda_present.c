/* The CUDA entry points on whatever machine runs the suite. Without a device
 * the test reports itself skipped (exit 77, ctest SKIP_RETURN_CODE); with
 * one, sq_backend_cuda_create must answer with a status, not crash, and
 * reject an out-of-range device. The ops themselves arrive with issue 7. */
#include <stdio.h>

#include "sparq/backend.h"

int main(void)
{
    if (!sq_cuda_available()) {
        sq_backend_t *be = NULL;
        sq_status_t st = sq_backend_cuda_create(0, &be);
        if (st != SQ_ERR_UNSUPPORTED || be != NULL) {
            fprintf(stderr, "FAIL: no device, yet sq_backend_cuda_create gave %s\n",
                    sq_status_string(st));
            return 1;
        }
        printf("SKIPPED: no CUDA device (%s)\n", sq_error_last());
        return 77;
    }
    int failures = 0;
    sq_backend_t *be = NULL;
    sq_status_t st = sq_backend_cuda_create(0, &be);
    if (st == SQ_OK) {
        /* once issue 7 lands: a usable CUDA backend */
        if (!be || !be->ops || be->ops->device != SQ_DEVICE_CUDA) {
            fprintf(stderr, "FAIL: device 0 backend is malformed\n");
            failures++;
        }
        sq_backend_destroy(be);
    } else if (st != SQ_ERR_UNSUPPORTED || be != NULL) {
        fprintf(stderr, "FAIL: device 0: %s (%s)\n", sq_status_string(st), sq_error_last());
        failures++;
    } else {
        printf("device 0: %s\n", sq_error_last());
    }
    be = NULL;
    st = sq_backend_cuda_create(1 << 20, &be);
    if (st != SQ_ERR_RANGE || be != NULL) {
        fprintf(stderr, "FAIL: device 1<<20 gave %s, expected %s\n", sq_status_string(st),
                sq_status_string(SQ_ERR_RANGE));
        failures++;
    }
    printf("%s\n", failures ? "FAILED" : "OK");
    return failures ? 1 : 0;
}

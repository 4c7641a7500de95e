/* The GPU's ZO kernels against the CPU's, bit for bit: perturbation of
 * slices at every alignment, with and without masks, and the update with
 * 1..3 SPSA samples and weight decay. Skipped (exit 77) without a device. */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_zo.h"
#include "sparq/backend.h"

static int failures;

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "FAIL: %s: %s\n", #call, cudaGetErrorString(e_));                      \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void *to_device(const void *h, size_t bytes)
{
    void *d = NULL;
    CK(cudaMalloc(&d, bytes ? bytes : 1));
    if (h && bytes) CK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}

static void same(const char *what, const float *cpu, const float *gpu_dev, int64_t n)
{
    float *g = malloc(sizeof(float) * (size_t)(n ? n : 1));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(g, gpu_dev, sizeof(float) * (size_t)n, cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&cpu[i], &g[i], sizeof(float)) != 0) {
            fprintf(stderr, "FAIL: %s: element %lld: cpu %.9g gpu %.9g\n", what, (long long)i,
                    cpu[i], g[i]);
            failures++;
            break;
        }
    free(g);
}

int main(void)
{
    if (!sq_cuda_available()) {
        printf("SKIPPED: no CUDA device visible\n");
        return 77;
    }
    sq_backend_t *cpu;
    SQ_CHECK(sq_backend_cpu_create(1, &cpu));
    const int64_t N = 10007; /* not a multiple of 4 or 64 */
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    uint8_t *mask = malloc((size_t)N);
    srand(7);
    for (int64_t i = 0; i < N; i++) {
        x[i] = (float)rand() / RAND_MAX - 0.5f;
        mask[i] = (uint8_t)(rand() % 3 != 0);
    }
    float *dx = to_device(x, sizeof(float) * N), *dy = to_device(NULL, sizeof(float) * N);
    uint8_t *dmask = to_device(mask, (size_t)N);
    static const int64_t offsets[] = {0, 1, 3, 63, 64, 1000};
    static const int64_t lengths[] = {1, 5, 64, 4097, 10007};
    for (size_t oi = 0; oi < sizeof offsets / sizeof *offsets; oi++)
        for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++)
            for (int m = 0; m < 2; m++) {
                const int64_t off = offsets[oi], n = lengths[li] < N ? lengths[li] : N;
                sq_tensor_t src = sq_tensor_1d(x, SQ_DTYPE_F32, n),
                            dst = sq_tensor_1d(y, SQ_DTYPE_F32, n);
                SQ_CHECK(cpu->ops->zo_perturb(cpu, &src, 0x1234abcdULL, 0x9e37ULL, off, 1e-3f,
                                              m ? mask : NULL, &dst));
                SQ_CHECK(sq_cuda_zo_perturb(dx, dy, n, 0x1234abcdULL, 0x9e37ULL, off, 1e-3f,
                                            m ? dmask : NULL, NULL));
                char what[96];
                snprintf(what, sizeof what, "zo_perturb offset %lld n %lld mask %d", (long long)off,
                         (long long)n, m);
                same(what, y, dy, n);
            }
    /* into a bf16 / fp16 operand: the CPU's fp32 sum rounded once to nearest
     * even; scale 0 is a plain conversion */
    uint16_t *yb = malloc(sizeof *yb * N), *gb = malloc(sizeof *gb * N);
    void *dyb = to_device(NULL, sizeof *yb * N);
    static const float scales[] = {1e-3f, 0.0f};
    static const sq_dtype_t halves[] = {SQ_DTYPE_BF16, SQ_DTYPE_F16};
    for (int hi = 0; hi < 2; hi++)
        for (int si = 0; si < 2; si++)
            for (int m = 0; m < 2; m++) {
                const int64_t off = 3, n = N - 5;
                sq_tensor_t src = sq_tensor_1d(x, SQ_DTYPE_F32, n),
                            dst = sq_tensor_1d(y, SQ_DTYPE_F32, n);
                SQ_CHECK(cpu->ops->zo_perturb(cpu, &src, 77, 0x51ULL, off, scales[si],
                                              m ? mask : NULL, &dst));
                const sq_dtype_t dt = halves[hi];
                for (int64_t i = 0; i < n; i++)
                    yb[i] = dt == SQ_DTYPE_BF16 ? sq_f32_to_bf16(y[i]) : sq_f32_to_f16(y[i]);
                SQ_CHECK(sq_cuda_zo_perturb_cast(dx, dyb, dt, n, 77, 0x51ULL, off, scales[si],
                                                 m ? dmask : NULL, NULL));
                CK(cudaDeviceSynchronize());
                CK(cudaMemcpy(gb, dyb, sizeof *gb * (size_t)n, cudaMemcpyDeviceToHost));
                for (int64_t i = 0; i < n; i++)
                    if (yb[i] != gb[i]) {
                        fprintf(stderr,
                                "FAIL: zo_perturb %s scale %g mask %d: element %lld: cpu "
                                "0x%04x gpu 0x%04x\n",
                                sq_dtype_name(dt), scales[si], m, (long long)i, yb[i], gb[i]);
                        failures++;
                        break;
                    }
            }
    cudaFree(dyb);
    free(yb), free(gb);

    const uint64_t seeds[3] = {11, 0xfeedbeefULL, 1ULL << 63};
    const float g[3] = {0.75f, -1.5f, 3.25f};
    for (int ns = 1; ns <= 3; ns++)
        for (int m = 0; m < 2; m++) {
            memcpy(y, x, sizeof(float) * N);
            CK(cudaMemcpy(dy, x, sizeof(float) * N, cudaMemcpyHostToDevice));
            sq_tensor_t w = sq_tensor_1d(y, SQ_DTYPE_F32, N);
            SQ_CHECK(cpu->ops->zo_update(cpu, &w, ns, seeds, g, 42, 1e-2f, 0.1f, m ? mask : NULL));
            SQ_CHECK(
                sq_cuda_zo_update(dy, N, ns, seeds, g, 42, 1e-2f, 0.1f, m ? dmask : NULL, NULL));
            char what[64];
            snprintf(what, sizeof what, "zo_update %d samples mask %d", ns, m);
            same(what, y, dy, N);
        }
    if (sq_cuda_zo_update(dy, N, SQ_MAX_SPSA + 1, seeds, g, 42, 1e-2f, 0, NULL, NULL) !=
        SQ_ERR_INVALID_ARG) {
        fprintf(stderr, "FAIL: zo_update accepted %d samples\n", SQ_MAX_SPSA + 1);
        failures++;
    }
    cudaFree(dx), cudaFree(dy), cudaFree(dmask);
    free(x), free(y), free(mask);
    sq_backend_destroy(cpu);
    printf("%s\n", failures ? "FAILED" : "cuda zo kernels bit-identical to the CPU's");
    return failures ? 1 : 0;
}

/* bench_codec_gpu — the GPU activation codec (include/sparq/codec_gpu.h) at
 * OPT-1.3B / 6.7B stage-boundary shapes: rows = 4 x 2048 tokens, cols = 2048
 * and 4096, "real-ish" activations (Gaussian, with a fraction --small of the
 * values tiny or exactly zero, so that 50-80% of the codes are 0 at 8/4 bits).
 *
 *  1. encode (device x -> device message) and decode (device message ->
 *     device y) for bitmap, CSR and dense at 8 and 4 bits: cudaEvent time
 *     over --reps calls after --warmup, GB/s = (fp32 input bytes + message
 *     bytes) / time and as a fraction of the device's peak memory bandwidth.
 *     Every case is also checked once: message == the CPU encoder's bytes
 *     (after the host reseal) and y == the CPU decoder's output ("wrong").
 *  2. where cuSPARSE might pay: the decoded activation fed to the next linear
 *     layer, W [cols, out] fp32, at code densities 5/20/50%:
 *       sparse: sq_codec_gpu_decode_csr + cusparseSpMM (CSR x dense, row-major)
 *       dense:  sq_codec_gpu_decode + cublasSgemm (fp32, default math mode)
 *
 * Built when CUDA is on, run by hand; prints "no CUDA device visible: nothing
 * measured" and exits 0 without a GPU. Exit 1 when a check fails. */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusparse.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "sparq/codec.h"
#include "sparq/codec_gpu.h"

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "bench_codec_gpu: %s:%d: %s: %s\n", __FILE__, __LINE__, #call,         \
                    cudaGetErrorString(e_));                                                       \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
#define CKB(call)                                                                                  \
    do {                                                                                           \
        cublasStatus_t e_ = (call);                                                                \
        if (e_ != CUBLAS_STATUS_SUCCESS) {                                                         \
            fprintf(stderr, "bench_codec_gpu: %s:%d: %s: cuBLAS status %d\n", __FILE__, __LINE__, \
                    #call, (int)e_);                                                               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
#define CKS(call)                                                                                  \
    do {                                                                                           \
        cusparseStatus_t e_ = (call);                                                              \
        if (e_ != CUSPARSE_STATUS_SUCCESS) {                                                       \
            fprintf(stderr, "bench_codec_gpu: %s:%d: %s: %s\n", __FILE__, __LINE__, #call,         \
                    cusparseGetErrorString(e_));                                                   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_codec_gpu [--rows N] [--cols N[,N...]] [--out N] [--reps N]\n"
            "                       [--warmup N] [--small F] [--csv FILE] [--no-spmm]\n"
            "  --rows N     activation rows (tokens), default 8192 (4 x 2048)\n"
            "  --cols list  activation widths, default 2048,4096 (OPT-1.3B, 6.7B)\n"
            "  --out N      output width of the linear layer in the SpMM part (default: cols)\n"
            "  --reps N     timed calls per measurement (default 50), after --warmup (5)\n"
            "  --small F    fraction of values drawn tiny or zero (default 0.6)\n"
            "  --csv FILE   also write the codec rows as CSV\n"
            "  GB/s = (rows*cols*4 input bytes + message bytes) / time, 1e9 bytes;\n"
            "  %%peak = of 2 * memory clock * bus width (cudaDevAttrMemoryClockRate/BusWidth).\n");
}

static double unif(uint64_t *s)
{
    return ((double)(sq_bench_splitmix64(s) >> 11) + 0.5) * 0x1p-53;
}

static float gaussian(uint64_t *s)
{
    return (float)(sqrt(-2.0 * log(unif(s))) * cos(6.283185307179586 * unif(s)));
}

/* Activation-like: Gaussian, a fraction `small` replaced by exact zeros (a
 * third) or values ~1e-3 sigma (quantize to 0 at 8 and 4 bits). */
static void fill_act(float *x, size_t n, double small, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        double u = unif(&s);
        if (u < small / 3)
            x[i] = 0.0f;
        else if (u < small)
            x[i] = 1e-3f * gaussian(&s);
        else
            x[i] = gaussian(&s);
    }
}

/* Code density d at 8 bits per row: a fraction d of |x| in [0.6, 1], the rest 0. */
static void fill_density(float *x, size_t n, double d, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        float v = 0.0f;
        if (unif(&s) < d) {
            v = 0.6f + 0.4f * (float)unif(&s);
            if (sq_bench_splitmix64(&s) & 1) v = -v;
        }
        x[i] = v;
    }
}

typedef struct gpu {
    cudaStream_t st;
    cudaEvent_t t0, t1;
    double peak; /* bytes/s, 0 when unknown */
} gpu_t;

/* ms per call of the last timed loop */
static double elapsed_ms(const gpu_t *g, int reps)
{
    float ms = 0;
    CK(cudaEventSynchronize(g->t1));
    CK(cudaEventElapsedTime(&ms, g->t0, g->t1));
    return (double)ms / reps;
}

#define TIMED(g, warmup, reps, call)                                                               \
    do {                                                                                           \
        for (int w_ = 0; w_ < (warmup); w_++)                                                      \
            SQ_CHECK(call);                                                                        \
        CK(cudaEventRecord((g)->t0, (g)->st));                                                     \
        for (int r_ = 0; r_ < (reps); r_++)                                                        \
            SQ_CHECK(call);                                                                        \
        CK(cudaEventRecord((g)->t1, (g)->st));                                                     \
    } while (0)

static int parse_cols(const char *s, long *cols, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1) return -1;
        cols[n++] = v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

int main(int argc, char **argv)
{
    long rows = 8192, cols[8] = {2048, 4096}, out = 0, reps = 50, warmup = 5;
    int ncols = 2, spmm = 1;
    double small = 0.6;
    const char *csv_path = NULL;
    for (int a = 1; a < argc; a++) {
        const char *o = argv[a];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(o, "--no-spmm")) {
            spmm = 0;
        } else if (a + 1 < argc && !strcmp(o, "--rows")) {
            rows = strtol(argv[++a], NULL, 10);
        } else if (a + 1 < argc && !strcmp(o, "--cols")) {
            ncols = parse_cols(argv[++a], cols, 8);
            if (ncols < 1) goto bad;
        } else if (a + 1 < argc && !strcmp(o, "--out")) {
            out = strtol(argv[++a], NULL, 10);
        } else if (a + 1 < argc && !strcmp(o, "--reps")) {
            reps = strtol(argv[++a], NULL, 10);
        } else if (a + 1 < argc && !strcmp(o, "--warmup")) {
            warmup = strtol(argv[++a], NULL, 10);
        } else if (a + 1 < argc && !strcmp(o, "--small")) {
            small = strtod(argv[++a], NULL);
        } else if (a + 1 < argc && !strcmp(o, "--csv")) {
            csv_path = argv[++a];
        } else {
            goto bad;
        }
    }
    if (rows < 1 || reps < 1 || warmup < 0 || out < 0 || small < 0 || small > 1) goto bad;

    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        cudaGetLastError();
        printf("no CUDA device visible: nothing measured\n");
        return 0;
    }

    gpu_t g;
    int dev = 0, clk_khz = 0, bus_bits = 0;
    CK(cudaGetDevice(&dev));
    struct cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, dev));
    /* cudaDeviceProp.memoryClockRate is gone in CUDA 13: ask the attributes */
    if (cudaDeviceGetAttribute(&clk_khz, cudaDevAttrMemoryClockRate, dev) != cudaSuccess)
        clk_khz = 0;
    if (cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev) != cudaSuccess)
        bus_bits = 0;
    cudaGetLastError();
    g.peak = 2.0 * clk_khz * 1000.0 * (bus_bits / 8.0);
    CK(cudaStreamCreate(&g.st));
    CK(cudaEventCreate(&g.t0));
    CK(cudaEventCreate(&g.t1));

    sq_bench_print_machine();
    printf("device: %s, %d SMs, memory %d-bit at %.0f MHz: peak %.0f GB/s%s\n", prop.name,
           prop.multiProcessorCount, bus_bits, clk_khz / 1000.0, g.peak * 1e-9,
           g.peak > 0 ? "" : " (unknown: %peak columns are 0)");
    printf("codec: per-row fp32 scales, round to nearest; %ld timed calls after %ld warm-up; "
           "%.0f%% of inputs tiny or zero\n\n",
           reps, warmup, small * 100);

    FILE *csv = NULL;
    if (csv_path) {
        csv = fopen(csv_path, "w");
        if (!csv) {
            fprintf(stderr, "bench_codec_gpu: cannot write %s\n", csv_path);
            return 1;
        }
        fprintf(csv, "rows,cols,bits,encoding,density,bytes,enc_us,enc_gbs,enc_peak,dec_us,"
                     "dec_gbs,dec_peak,wrong,msg_equal\n");
    }

    int failures = 0;
    printf("| shape | bits | layout | density %% | bytes | x fp32 | enc us | enc GB/s | enc %%peak "
           "| dec us | dec GB/s | dec %%peak | wrong | msg == cpu |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int ci = 0; ci < ncols; ci++) {
        const int64_t R = rows, C = cols[ci];
        const size_t n = (size_t)R * (size_t)C;
        float *x = malloc(n * sizeof(float)), *yc = malloc(n * sizeof(float));
        float *yh = malloc(n * sizeof(float));
        if (!x || !yc || !yh) {
            fprintf(stderr, "bench_codec_gpu: out of host memory\n");
            return 1;
        }
        fill_act(x, n, small, 0xac7u + (uint64_t)C);
        sq_codec_gpu_t *w;
        SQ_CHECK(sq_codec_gpu_create(R, (int64_t)n, &w));
        size_t cap = 0;
        for (int e = 0; e < 3; e++) {
            sq_codec_params_t p = sq_codec_params_default();
            p.encoding = (sq_codec_encoding_t)e;
            size_t m = sq_codec_max_size(&p, R, C);
            cap = m > cap ? m : cap;
        }
        float *dx, *dy;
        uint8_t *dmsg, *hmsg = malloc(cap), *cmsg = malloc(cap);
        CK(cudaMalloc((void **)&dx, n * sizeof(float)));
        CK(cudaMalloc((void **)&dy, n * sizeof(float)));
        CK(cudaMalloc((void **)&dmsg, cap));
        CK(cudaMemcpy(dx, x, n * sizeof(float), cudaMemcpyHostToDevice));
        const sq_codec_encoding_t encs[] = {SQ_CODEC_BITMAP, SQ_CODEC_CSR, SQ_CODEC_DENSE};
        for (int bits = 8; bits >= 4; bits /= 2)
            for (int e = 0; e < 3; e++) {
                sq_codec_params_t p = sq_codec_params_default();
                p.encoding = encs[e];
                p.bits = bits;
                size_t len = 0;
                sq_codec_stats_t stats;
                TIMED(&g, warmup, reps,
                      sq_codec_gpu_encode(w, &p, dx, R, C, C, dmsg, cap, &len, &stats, g.st));
                const double enc_ms = elapsed_ms(&g, (int)reps);
                /* checks: bytes against the CPU encoder, values against the CPU decoder */
                CK(cudaStreamSynchronize(g.st));
                CK(cudaMemcpy(hmsg, dmsg, len, cudaMemcpyDeviceToHost));
                SQ_CHECK(sq_codec_reseal(hmsg, len));
                size_t clen = 0;
                SQ_CHECK(sq_codec_encode(&p, x, R, C, C, cmsg, cap, &clen, NULL));
                const int same = clen == len && memcmp(cmsg, hmsg, len) == 0;
                sq_codec_header_t h;
                SQ_CHECK(sq_codec_check(hmsg, len, &h));
                TIMED(&g, warmup, reps, sq_codec_gpu_decode(w, &h, dmsg, dy, R, C, C, g.st));
                const double dec_ms = elapsed_ms(&g, (int)reps);
                CK(cudaMemcpy(yh, dy, n * sizeof(float), cudaMemcpyDeviceToHost));
                SQ_CHECK(sq_codec_decode(hmsg, len, yc, R, C, C));
                uint64_t wrong = 0;
                for (size_t i = 0; i < n; i++)
                    wrong += memcmp(&yh[i], &yc[i], 4) != 0;
                failures += wrong != 0 || !same;

                const double io = (double)n * 4 + (double)len;
                const double enc_gbs = io / (enc_ms * 1e-3) * 1e-9;
                const double dec_gbs = io / (dec_ms * 1e-3) * 1e-9;
                const double enc_pk = g.peak > 0 ? io / (enc_ms * 1e-3) / g.peak : 0;
                const double dec_pk = g.peak > 0 ? io / (dec_ms * 1e-3) / g.peak : 0;
                printf("| %lldx%lld | %d | %s | %.1f | %zu | %.2f | %.1f | %.1f | %.2f | %.1f | "
                       "%.1f | %.2f | %llu | %s |\n",
                       (long long)R, (long long)C, bits, sq_codec_encoding_name(encs[e]),
                       stats.density * 100, len, (double)n * 4 / (double)len, enc_ms * 1e3,
                       enc_gbs, enc_pk, dec_ms * 1e3, dec_gbs, dec_pk, (unsigned long long)wrong,
                       same ? "yes" : "NO");
                fflush(stdout);
                if (csv)
                    fprintf(csv, "%lld,%lld,%d,%s,%.6f,%zu,%.3f,%.3f,%.4f,%.3f,%.3f,%.4f,%llu,%d\n",
                            (long long)R, (long long)C, bits, sq_codec_encoding_name(encs[e]),
                            stats.density, len, enc_ms * 1e3, enc_gbs, enc_pk, dec_ms * 1e3,
                            dec_gbs, dec_pk, (unsigned long long)wrong, same);
            }

        if (spmm) {
            const int64_t O = out ? out : C;
            float *dw, *dz, *dval, *hw = malloc((size_t)C * (size_t)O * sizeof(float));
            int32_t *drp, *dci;
            CK(cudaMalloc((void **)&dw, (size_t)C * (size_t)O * sizeof(float)));
            CK(cudaMalloc((void **)&dz, (size_t)R * (size_t)O * sizeof(float)));
            CK(cudaMalloc((void **)&drp, (size_t)(R + 1) * sizeof(int32_t)));
            CK(cudaMalloc((void **)&dci, n * sizeof(int32_t)));
            CK(cudaMalloc((void **)&dval, n * sizeof(float)));
            uint64_t ws = 0x5eedu;
            for (size_t i = 0; i < (size_t)C * (size_t)O; i++)
                hw[i] = 0.02f * gaussian(&ws);
            CK(cudaMemcpy(dw, hw, (size_t)C * (size_t)O * sizeof(float), cudaMemcpyHostToDevice));
            cublasHandle_t bh;
            cusparseHandle_t sh;
            CKB(cublasCreate(&bh));
            CKB(cublasSetStream(bh, g.st));
            CKS(cusparseCreate(&sh));
            CKS(cusparseSetStream(sh, g.st));
            const float one = 1.0f, zero = 0.0f;
            printf("\nnext linear layer: y [%lld, %lld] x W [%lld, %lld], fp32; CSR 8-bit "
                   "messages\n\n",
                   (long long)R, (long long)C, (long long)C, (long long)O);
            printf("| shape | density %% | csr->arrays us | SpMM us | sparse total us | decode us | "
                   "SGEMM us | dense total us | dense/sparse | max rel diff |\n");
            printf("|---|---|---|---|---|---|---|---|---|---|\n");
            const double dens[] = {0.05, 0.20, 0.50};
            for (int di = 0; di < 3; di++) {
                fill_density(x, n, dens[di], 0xd0u + (uint64_t)di);
                CK(cudaMemcpy(dx, x, n * sizeof(float), cudaMemcpyHostToDevice));
                sq_codec_params_t p = sq_codec_params_default();
                p.encoding = SQ_CODEC_CSR;
                size_t len = 0;
                sq_codec_stats_t stats;
                SQ_CHECK(sq_codec_gpu_encode(w, &p, dx, R, C, C, dmsg, cap, &len, &stats, g.st));
                CK(cudaStreamSynchronize(g.st));
                CK(cudaMemcpy(hmsg, dmsg, len, cudaMemcpyDeviceToHost));
                SQ_CHECK(sq_codec_reseal(hmsg, len));
                sq_codec_header_t h;
                SQ_CHECK(sq_codec_check(hmsg, len, &h));

                TIMED(&g, warmup, reps,
                      sq_codec_gpu_decode_csr(w, &h, dmsg, drp, dci, dval, g.st));
                const double arr_ms = elapsed_ms(&g, (int)reps);
                cusparseSpMatDescr_t A;
                cusparseDnMatDescr_t B, Z;
                CKS(cusparseCreateCsr(&A, R, C, (int64_t)h.nnz, drp, dci, dval, CUSPARSE_INDEX_32I,
                                      CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO, CUDA_R_32F));
                CKS(cusparseCreateDnMat(&B, C, O, O, dw, CUDA_R_32F, CUSPARSE_ORDER_ROW));
                CKS(cusparseCreateDnMat(&Z, R, O, O, dz, CUDA_R_32F, CUSPARSE_ORDER_ROW));
                size_t bsz = 0;
                void *dbuf = NULL;
                CKS(cusparseSpMM_bufferSize(sh, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                            CUSPARSE_OPERATION_NON_TRANSPOSE, &one, A, B, &zero, Z,
                                            CUDA_R_32F, CUSPARSE_SPMM_ALG_DEFAULT, &bsz));
                CK(cudaMalloc(&dbuf, bsz ? bsz : 1));
                for (int wu = 0; wu < warmup; wu++)
                    CKS(cusparseSpMM(sh, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                     CUSPARSE_OPERATION_NON_TRANSPOSE, &one, A, B, &zero, Z,
                                     CUDA_R_32F, CUSPARSE_SPMM_ALG_DEFAULT, dbuf));
                CK(cudaEventRecord(g.t0, g.st));
                for (int r = 0; r < reps; r++)
                    CKS(cusparseSpMM(sh, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                     CUSPARSE_OPERATION_NON_TRANSPOSE, &one, A, B, &zero, Z,
                                     CUDA_R_32F, CUSPARSE_SPMM_ALG_DEFAULT, dbuf));
                CK(cudaEventRecord(g.t1, g.st));
                const double spmm_ms = elapsed_ms(&g, (int)reps);
                float *zs = malloc((size_t)R * (size_t)O * sizeof(float));
                float *zd = malloc((size_t)R * (size_t)O * sizeof(float));
                CK(cudaMemcpy(zs, dz, (size_t)R * (size_t)O * sizeof(float),
                              cudaMemcpyDeviceToHost));

                TIMED(&g, warmup, reps, sq_codec_gpu_decode(w, &h, dmsg, dy, R, C, C, g.st));
                const double dec_ms = elapsed_ms(&g, (int)reps);
                /* row-major Z [R, O] = Y [R, C] W [C, O] is column-major
                 * Z^T [O, R] = W^T [O, C] Y^T [C, R] */
                for (int wu = 0; wu < warmup; wu++)
                    CKB(cublasSgemm(bh, CUBLAS_OP_N, CUBLAS_OP_N, (int)O, (int)R, (int)C, &one, dw,
                                    (int)O, dy, (int)C, &zero, dz, (int)O));
                CK(cudaEventRecord(g.t0, g.st));
                for (int r = 0; r < reps; r++)
                    CKB(cublasSgemm(bh, CUBLAS_OP_N, CUBLAS_OP_N, (int)O, (int)R, (int)C, &one, dw,
                                    (int)O, dy, (int)C, &zero, dz, (int)O));
                CK(cudaEventRecord(g.t1, g.st));
                const double gemm_ms = elapsed_ms(&g, (int)reps);
                CK(cudaMemcpy(zd, dz, (size_t)R * (size_t)O * sizeof(float),
                              cudaMemcpyDeviceToHost));
                double maxrel = 0, scale = 0;
                for (size_t i = 0; i < (size_t)R * (size_t)O; i++)
                    scale = fmax(scale, fabs(zd[i]));
                for (size_t i = 0; i < (size_t)R * (size_t)O; i++)
                    maxrel = fmax(maxrel, fabs(zs[i] - zd[i]) / (scale > 0 ? scale : 1));
                failures += !(maxrel < 1e-4);
                const double sp = arr_ms + spmm_ms, dn = dec_ms + gemm_ms;
                printf("| %lldx%lld | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | "
                       "%.1e |\n",
                       (long long)R, (long long)C, stats.density * 100, arr_ms * 1e3,
                       spmm_ms * 1e3, sp * 1e3, dec_ms * 1e3, gemm_ms * 1e3, dn * 1e3, dn / sp,
                       maxrel);
                fflush(stdout);
                free(zd);
                free(zs);
                cudaFree(dbuf);
                cusparseDestroyDnMat(Z);
                cusparseDestroyDnMat(B);
                cusparseDestroySpMat(A);
            }
            cusparseDestroy(sh);
            cublasDestroy(bh);
            cudaFree(dval);
            cudaFree(dci);
            cudaFree(drp);
            cudaFree(dz);
            cudaFree(dw);
            free(hw);
        }
        printf("\n");
        cudaFree(dmsg);
        cudaFree(dy);
        cudaFree(dx);
        sq_codec_gpu_destroy(w);
        free(cmsg);
        free(hmsg);
        free(yh);
        free(yc);
        free(x);
    }
    if (csv) fclose(csv);
    printf("%s: %d failing checks (message != CPU bytes, decoded values != CPU decode, or "
           "SpMM != SGEMM beyond 1e-4)\n",
           failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
bad:
    usage(stderr);
    return 2;
}

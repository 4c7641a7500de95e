// cuBLAS is loaded at run time, not linked (kernels/cuda/cublas_load.cu):
// a process that never creates a CUDA backend must not map it, and
// sq_cublas_load() must find it and resolve every entry point sparq calls.
// Needs no GPU (dlopen and symbol lookup only), so it runs in CI.
#include <stdio.h>
#include <string.h>

#include "cuda_internal.h"

static int mapped(const char *lib)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, lib)) found = 1;
    if (f) fclose(f);
    return found;
}

int main(void)
{
    int failures = 0;
    if (mapped("libcublas")) {
        fprintf(stderr, "FAIL: libcublas is mapped before sq_cublas_load (linked?)\n");
        failures++;
    }
    if (sq_cublas_load() != SQ_OK) {
        fprintf(stderr, "FAIL: %s\n", sq_error_last());
        return 1;
    }
    if (sq_cublas_load() != SQ_OK) failures++, fprintf(stderr, "FAIL: second load\n");
    const void *fns[] = {
        (const void *)sq_cublas.Create,    (const void *)sq_cublas.Destroy,
        (const void *)sq_cublas.SetStream, (const void *)sq_cublas.SetWorkspace,
        (const void *)sq_cublas.GemmEx,    (const void *)sq_cublas.GetStatusString};
    for (size_t i = 0; i < sizeof fns / sizeof *fns; i++)
        if (!fns[i]) failures++, fprintf(stderr, "FAIL: entry point %zu not resolved\n", i);
    if (!mapped("libcublas.so")) failures++, fprintf(stderr, "FAIL: libcublas not mapped\n");
    const char *s =
        sq_cublas.GetStatusString ? sq_cublas.GetStatusString(CUBLAS_STATUS_NOT_SUPPORTED) : NULL;
    if (!s || !*s) failures++, fprintf(stderr, "FAIL: cublasGetStatusString\n");
    printf("%s: cuBLAS loaded on demand (%s)\n", failures ? "FAILED" : "ok", s ? s : "-");
    return failures ? 1 : 0;
}

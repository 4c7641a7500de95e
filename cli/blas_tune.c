/* Debian 12's OpenBLAS (0.3.21, DYNAMIC_ARCH) does not recognise AVX-512 on
 * AMD Zen 4 and runs its Haswell/Zen kernels there: sgemm at about a third of
 * what the SkylakeX kernels reach on the same core (bench: 74 vs 209 GFLOP/s
 * on 2 EPYC cores). The core type is fixed when the library loads, before
 * main, so the only lever is the environment: re-execute once with
 * OPENBLAS_CORETYPE=SkylakeX. A user's own OPENBLAS_CORETYPE always wins. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

void sq_cli_tune_blas(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") || getenv("SPARQ_NO_BLAS_TUNE")) return;
    const char *core = openblas_get_corename();
    if (!core || (strcasecmp(core, "haswell") && strcasecmp(core, "zen"))) return;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl"))
        return;
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); /* exec failed: carry on with what we have */
}

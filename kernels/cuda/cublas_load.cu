// cuBLAS loaded on first use (cuda_internal.h, sq_cublas_load). Linking
// libcublas maps libcublasLt (~540 MB on disk) and costs every process
// ~216 MB of resident memory at start-up, before main: `sparq --help` and
// CPU stage workers included. Loaded here when the first CUDA backend is
// created, it costs only the processes that compute on a GPU.
//
// The function types come from cublas_v2.h (decltype), so a signature that
// changes between toolkits fails to compile instead of calling through a
// wrong pointer. Symbol names are the exported ones (cublas_v2.h #defines
// cublasCreate as cublasCreate_v2, and so on). The EMU build links its
// emulated cuBLAS and takes the addresses directly.
#include <pthread.h>
#include <stdio.h>

#include "cuda_internal.h"

#ifndef SQ_CUDA_EMU
#include <dlfcn.h>
#endif

sq_cublas_api_t sq_cublas;

// GemmEx's spelled-out type must name one of the header's cublasGemmEx
// (unevaluated: no reference to the symbol)
static_assert(sizeof(sq_cublas.GemmEx = &cublasGemmEx) != 0, "cublasGemmEx signature");

namespace
{

pthread_once_t once = PTHREAD_ONCE_INIT;
char load_error[512]; // empty: loaded

#ifdef SQ_CUDA_EMU
void load(void)
{
    sq_cublas.Create = &cublasCreate;
    sq_cublas.Destroy = &cublasDestroy;
    sq_cublas.SetStream = &cublasSetStream;
    sq_cublas.SetWorkspace = &cublasSetWorkspace;
    sq_cublas.GemmEx = &cublasGemmEx;
    sq_cublas.GetStatusString = &cublasGetStatusString;
}
#else
template <class F> bool resolve(void *lib, const char *name, F *out)
{
    *out = reinterpret_cast<F>(dlsym(lib, name));
    if (*out) return true;
    snprintf(load_error, sizeof load_error, "%s has no symbol %s", SQ_CUBLAS_SONAME, name);
    return false;
}

void load(void)
{
    // the toolkit sparq was built against first, then the loader's search
    // (LD_LIBRARY_PATH, ldconfig) for a machine that keeps it elsewhere
    void *lib = dlopen(SQ_CUDA_LIBDIR "/" SQ_CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen(SQ_CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error,
                 "cannot load cuBLAS (%s, or %s on the library "
                 "path): %s",
                 SQ_CUDA_LIBDIR "/" SQ_CUBLAS_SONAME, SQ_CUBLAS_SONAME,
                 why ? why : "unknown error");
        return;
    }
    // never dlclose'd: cuBLAS stays loaded for the life of the process
    if (!resolve(lib, "cublasCreate_v2", &sq_cublas.Create) ||
        !resolve(lib, "cublasDestroy_v2", &sq_cublas.Destroy) ||
        !resolve(lib, "cublasSetStream_v2", &sq_cublas.SetStream) ||
        !resolve(lib, "cublasSetWorkspace_v2", &sq_cublas.SetWorkspace) ||
        !resolve(lib, "cublasGemmEx", &sq_cublas.GemmEx) ||
        !resolve(lib, "cublasGetStatusString", &sq_cublas.GetStatusString))
        sq_cublas = sq_cublas_api_t{};
}
#endif

} // namespace

sq_status_t sq_cublas_load(void)
{
    pthread_once(&once, load);
    if (load_error[0]) return sq_error_set(SQ_ERR_UNSUPPORTED, "cuda backend: %s", load_error);
    return SQ_OK;
}

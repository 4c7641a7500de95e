/* Helpers every benchmark shares. */
#include "bench.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double sq_bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int sq_bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void sq_bench_print_machine(void)
{
    char model[256] = "unknown CPU", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *colon = strchr(line, ':');
            if (colon) {
                snprintf(model, sizeof model, "%s", colon + 2);
                model[strcspn(model, "\n")] = 0;
            }
            break;
        }
    }
    if (f) fclose(f);
    time_t now = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    printf("machine: %s, %ld cores online, %d threads; OpenBLAS core %s (%s); %s\n", model,
           sysconf(_SC_NPROCESSORS_ONLN), omp_get_max_threads(), openblas_get_corename(),
           openblas_get_config(), date);
}

/* One n^3 sgemm, either by OpenBLAS's own threads or as `threads` row blocks
 * on OpenMP threads with single-threaded OpenBLAS (how the CPU backend runs). */
static double sgemm_gflops(int threads, int omp_split, int n, const float *a, const float *b,
                           float *c)
{
    double t0 = sq_bench_now();
    if (!omp_split) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                    c, n);
    } else {
#pragma omp parallel num_threads(threads)
        {
            int id = omp_get_thread_num(), nt = omp_get_num_threads();
            int r0 = n * id / nt, r1 = n * (id + 1) / nt;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, n, n, 1.0f,
                        a + (size_t)r0 * n, n, b, n, 0.0f, c + (size_t)r0 * n, n);
        }
    }
    return 2.0 * n * n * (double)n / (sq_bench_now() - t0) * 1e-9;
}

double sq_bench_sgemm_peak(int threads, int n, int reps)
{
    if (threads <= 0) threads = omp_get_max_threads();
    int saved = openblas_get_num_threads();
    float *a = malloc(sizeof(float) * (size_t)n * n), *b = malloc(sizeof(float) * (size_t)n * n);
    float *c = malloc(sizeof(float) * (size_t)n * n);
    double best = 0;
    if (a && b && c) {
        for (size_t i = 0; i < (size_t)n * n; i++) {
            a[i] = (float)((i * 7) % 13) * 0.01f;
            b[i] = (float)((i * 5) % 11) * 0.01f;
        }
        for (int split = 0; split < 2; split++) {
            openblas_set_num_threads(split ? 1 : threads);
            for (int r = 0; r < reps + 1; r++) { /* first run of each mode is warm-up */
                double gf = sgemm_gflops(threads, split, n, a, b, c);
                if (r > 0 && gf > best) best = gf;
            }
        }
    }
    openblas_set_num_threads(saved);
    free(a);
    free(b);
    free(c);
    return best;
}

/* A "Name:   123 kB" line of /proc/self/status, or -1. */
static long status_kb(const char *field)
{
    char line[256];
    long kb = -1;
    const size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') kb = atol(line + n + 1);
    if (f) fclose(f);
    return kb;
}

long sq_bench_peak_rss_kb(void) { return status_kb("VmHWM"); }
long sq_bench_rss_kb(void) { return status_kb("VmRSS"); }

uint64_t sq_bench_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

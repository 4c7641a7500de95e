/* kernels/cuda: every op of the CUDA backend against the CPU backend.
 *
 * Each case builds random operands at awkward sizes (not multiples of 32),
 * most of them as views inside wider buffers (ld > cols, column views of one
 * qkv or gate|up buffer), runs the op on the CPU backend and on the CUDA
 * backend with identical data, copies the device buffer back with the
 * backend's own to_host and compares: inside the view with the op's named
 * tolerance, outside it (padding columns) bit for bit. Data moves through
 * the backend's alloc / from_host / to_host, which are tested on the way.
 * Error paths and the ZO ops (bit-identical to the CPU) are checked too.
 * Skipped (exit 77) where no CUDA device is visible.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparq/backend.h"

/* ---- named tolerances: |gpu - cpu| <= abs + rel * |cpu| ---- */

typedef struct tol {
    double abs, rel;
} tol_t;

static const tol_t TOL_EXACT = {0.0, 0.0};  /* gathers, copies, single fp32 adds */
static const tol_t TOL_AXPBY = {0.0, 1e-6}; /* explicitly rounded on both sides */
static const tol_t TOL_NORM = {1e-5, 1e-5}; /* double stats on both; fp32 output */
static const tol_t TOL_ACT = {1e-6, 2e-5};  /* CUDA expf/erfcf vs vmath.h forms */
static const tol_t TOL_ROPE = {1e-6, 1e-5}; /* same fp32 angle; sincosf vs glibc */
static const tol_t TOL_ATTN = {2e-5, 1e-4}; /* online softmax vs sgemm + softmax */
static const tol_t TOL_XENT = {1e-5, 1e-5}; /* both sum exp in double */
/* GEMMs: the abs part grows with the reduction length K (fp32 sums of K
 * terms of size <= 1 in different orders) */
#define TOL_GEMM_F32(k) ((tol_t){1e-6 * (double)(k), 1e-5})
/* 16-bit weights: x is rounded to the weight type on both sides, so only
 * the accumulation differs; the tolerance is the 16-bit one all the same */
#define TOL_GEMM_16(k) ((tol_t){1e-3 * sqrt((double)(k)), 1e-2})

static int failures;
static sq_backend_t *cpu, *gpu;

#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL: %s:%d: ", __FILE__, __LINE__);                                  \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* ---- deterministic random numbers ---- */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rng_u32(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* uniform in [-1, 1) */
static float frand(void)
{
    return (float)((double)rng_u32() / 2147483648.0 - 1.0);
}

static int irand(int n)
{
    return (int)(rng_u32() % (uint32_t)n);
}

/* ---- device memory through the backend ---- */

static void *dev_alloc(size_t bytes)
{
    void *p = NULL;
    SQ_CHECK(gpu->ops->alloc(gpu, bytes, "test buffer", &p));
    return p;
}

/* raw bytes as a 1-D I8 tensor */
static sq_tensor_t bytes_view(void *d, size_t bytes)
{
    sq_tensor_t t = sq_tensor_1d(d, SQ_DTYPE_I8, (int64_t)bytes);
    t.device = SQ_DEVICE_CUDA;
    return t;
}

static void upload(void *d, const void *h, size_t bytes)
{
    sq_tensor_t t = bytes_view(d, bytes);
    SQ_CHECK(gpu->ops->from_host(gpu, h, bytes, &t));
}

static void download(void *h, void *d, size_t bytes)
{
    sq_tensor_t t = bytes_view(d, bytes);
    SQ_CHECK(gpu->ops->to_host(gpu, &t, h, bytes));
}

static sq_tensor_t view2d(void *data, sq_dtype_t dt, sq_device_t dev, int64_t rows, int64_t cols,
                          int64_t ld)
{
    sq_tensor_t t = sq_tensor_2d(data, dt, rows, cols);
    t.device = dev;
    t.ld = ld;
    return t;
}

/* ---- matrices living on both sides ---- */

#define PAD_VALUE 1234.5f /* fills the columns past cols; must survive every op */

typedef struct mat {
    int64_t rows, cols, ld;
    float *h;       /* [rows * ld] host copy: the CPU backend's operand */
    float *d;       /* [rows * ld] device copy: the CUDA backend's operand */
    sq_tensor_t ht; /* [rows, cols] view of h, ld honoured */
    sq_tensor_t dt; /* [rows, cols] view of d */
} mat_t;

static size_t mat_bytes(const mat_t *m)
{
    return (size_t)(m->rows * m->ld) * sizeof(float);
}

/* Send the host copy (padding included) to the device. */
static void mat_push(mat_t *m)
{
    if (mat_bytes(m)) upload(m->d, m->h, mat_bytes(m));
}

/* Random values in [-scale, scale) inside the view, PAD_VALUE outside. */
static mat_t mat_new(int64_t rows, int64_t cols, int64_t ld, float scale)
{
    mat_t m = {.rows = rows, .cols = cols, .ld = ld};
    size_t n = (size_t)(rows * ld);
    m.h = malloc((n ? n : 1) * sizeof(float));
    if (!m.h) abort();
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < ld; c++)
            m.h[r * ld + c] = c < cols ? scale * frand() : PAD_VALUE;
    m.d = n ? dev_alloc(n * sizeof(float)) : NULL;
    mat_push(&m);
    m.ht = view2d(m.h, SQ_DTYPE_F32, SQ_DEVICE_CPU, rows, cols, ld);
    m.dt = view2d(m.d, SQ_DTYPE_F32, SQ_DEVICE_CUDA, rows, cols, ld);
    return m;
}

static void mat_free(mat_t *m)
{
    free(m->h);
    gpu->ops->free(gpu, m->d);
    m->h = NULL;
    m->d = NULL;
}

/* Element-wise comparison of `got` (GPU) with `want` (CPU) over a
 * [rows, cols] region; NaN matches NaN, inf matches the same inf. Prints
 * the worst element on failure, the largest difference on success. */
static int compare(const char *what, const float *want, const float *got, int64_t rows,
                   int64_t cols, int64_t ld, tol_t tol)
{
    double worst = 0.0, max_diff = 0.0;
    int64_t wr = -1, wc = -1;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            float a = want[r * ld + c], b = got[r * ld + c];
            if (isnan(a) || isnan(b) || isinf(a) || isinf(b)) {
                int same = (isnan(a) && isnan(b)) || (!isnan(a) && !isnan(b) && a == b);
                if (!same && worst < INFINITY) worst = INFINITY, wr = r, wc = c;
                continue;
            }
            double diff = fabs((double)a - (double)b);
            double bound = tol.abs + tol.rel * fabs((double)a);
            double ratio = diff == 0.0 ? 0.0 : bound == 0.0 ? INFINITY : diff / bound;
            if (diff > max_diff) max_diff = diff;
            if (ratio > worst) worst = ratio, wr = r, wc = c;
        }
    if (worst > 1.0) {
        float a = want[wr * ld + wc], b = got[wr * ld + wc];
        fprintf(stderr,
                "FAIL: %s: worst element [%" PRId64 ", %" PRId64 "]: cpu %.9g gpu %.9g "
                "(|diff| %.3g, tolerance %.3g + %.3g * |cpu|)\n",
                what, wr, wc, (double)a, (double)b, fabs((double)a - (double)b), tol.abs,
                tol.rel);
        failures++;
        return 0;
    }
    printf("ok   %-60s max |diff| %.3g\n", what, max_diff);
    return 1;
}

/* Download m's device buffer and compare it with the host copy: the view
 * with `tol`, the padding columns bit for bit. */
static void mat_check(const char *what, const mat_t *m, tol_t tol)
{
    size_t bytes = mat_bytes(m);
    float *got = malloc(bytes ? bytes : 1);
    if (!got) abort();
    if (bytes) download(got, m->d, bytes);
    if (compare(what, m->h, got, m->rows, m->cols, m->ld, tol))
        for (int64_t r = 0; r < m->rows; r++)
            for (int64_t c = m->cols; c < m->ld; c++)
                if (memcmp(&m->h[r * m->ld + c], &got[r * m->ld + c], sizeof(float)) != 0) {
                    fprintf(stderr, "FAIL: %s: padding [%" PRId64 ", %" PRId64 "] changed to %g\n",
                            what, r, c, (double)got[r * m->ld + c]);
                    failures++;
                    r = m->rows;
                    break;
                }
    free(got);
}

/* ---- 16-bit helpers ---- */

static uint16_t to16(sq_dtype_t dt, float v)
{
    return dt == SQ_DTYPE_BF16 ? sq_f32_to_bf16(v) : sq_f32_to_f16(v);
}

static float from16(sq_dtype_t dt, uint16_t b)
{
    return dt == SQ_DTYPE_BF16 ? sq_bf16_to_f32(b) : sq_f16_to_f32(b);
}

/* Round m's host copy through dt in place and return a device buffer with
 * the 16-bit values (same rows / ld), for the GPU operand. */
static void *round_and_upload16(mat_t *m, sq_dtype_t dt)
{
    size_t n = (size_t)(m->rows * m->ld);
    uint16_t *bits = malloc((n ? n : 1) * sizeof(uint16_t));
    if (!bits) abort();
    for (size_t i = 0; i < n; i++) {
        bits[i] = to16(dt, m->h[i]);
        m->h[i] = from16(dt, bits[i]);
    }
    void *d = dev_alloc(n * sizeof(uint16_t));
    upload(d, bits, n * sizeof(uint16_t));
    free(bits);
    mat_push(m); /* keep the F32 device copy in step (unused by the 16-bit op) */
    return d;
}

/* ---- cases ---- */

static const char *act_name(sq_act_t a)
{
    static const char *names[] = {"none", "relu", "gelu_tanh", "gelu_erf", "silu"};
    return names[a];
}

static void test_copies(void)
{
    /* to_host / from_host of a strided view: packed on the host side */
    mat_t m = mat_new(13, 21, 29, 1.0f);
    float packed[13 * 21], back[13 * 21];
    SQ_CHECK(gpu->ops->to_host(gpu, &m.dt, packed, sizeof packed));
    int bad = 0;
    for (int r = 0; r < 13; r++)
        for (int c = 0; c < 21; c++)
            bad += memcmp(&packed[r * 21 + c], &m.h[r * 29 + c], sizeof(float)) != 0;
    EXPECT(bad == 0, "to_host of a strided view: %d elements differ", bad);
    for (int i = 0; i < 13 * 21; i++) packed[i] = frand();
    SQ_CHECK(gpu->ops->from_host(gpu, packed, sizeof packed, &m.dt));
    for (int r = 0; r < 13; r++)
        for (int c = 0; c < 21; c++) m.h[r * 29 + c] = packed[r * 21 + c];
    mat_check("from_host into a strided view", &m, TOL_EXACT);
    SQ_CHECK(gpu->ops->to_host(gpu, &m.dt, back, sizeof back));
    EXPECT(memcmp(back, packed, sizeof back) == 0, "from_host then to_host is not the identity");
    /* a single-row view (contiguous path) with ld > cols */
    sq_tensor_t row = sq_tensor_rows_view(&m.dt, 4, 1);
    float r4[21];
    SQ_CHECK(gpu->ops->to_host(gpu, &row, r4, sizeof r4));
    EXPECT(memcmp(r4, &packed[4 * 21], sizeof r4) == 0, "to_host of one row differs");
    EXPECT(gpu->ops->to_host(gpu, &m.dt, back, sizeof back - 4) == SQ_ERR_INVALID_ARG,
           "to_host accepted a wrong byte count");
    mat_free(&m);
}

static void test_linear(int64_t N, int64_t in, int64_t out, sq_dtype_t wdt, sq_wlayout_t layout,
                        int has_bias, int acc)
{
    int out_in = layout == SQ_WEIGHT_OUT_IN;
    int64_t wr = out_in ? out : in, wc = out_in ? in : out;
    mat_t x = mat_new(N, in, in + 3, 1.0f);
    mat_t w = mat_new(wr, wc, wc + 1, 1.0f);
    mat_t b = mat_new(1, out, out, 1.0f);
    mat_t y = mat_new(N, out, out + 5, 1.0f);
    sq_tensor_t xc = x.ht, wd = w.dt, bd = b.dt;
    void *w16 = NULL, *b16 = NULL;
    float *xr = NULL;
    if (wdt != SQ_DTYPE_F32) {
        w16 = round_and_upload16(&w, wdt);
        wd = view2d(w16, wdt, SQ_DEVICE_CUDA, wr, wc, wc + 1);
        b16 = round_and_upload16(&b, wdt);
        bd = view2d(b16, wdt, SQ_DEVICE_CUDA, 1, out, out);
        /* the GPU rounds x to wdt before its GEMM; give the CPU the same x */
        xr = malloc(mat_bytes(&x) ? mat_bytes(&x) : 1);
        if (!xr) abort();
        for (int64_t i = 0; i < N * (in + 3); i++) xr[i] = from16(wdt, to16(wdt, x.h[i]));
        xc = view2d(xr, SQ_DTYPE_F32, SQ_DEVICE_CPU, N, in, in + 3);
    }
    SQ_CHECK(cpu->ops->linear(cpu, &xc, &w.ht, layout, has_bias ? &b.ht : NULL, acc, &y.ht));
    SQ_CHECK(gpu->ops->linear(gpu, &x.dt, &wd, layout, has_bias ? &bd : NULL, acc, &y.dt));
    char what[128];
    snprintf(what, sizeof what, "linear %s %s bias %d acc %d N=%" PRId64 " in=%" PRId64
             " out=%" PRId64, sq_dtype_name(wdt), out_in ? "out_in" : "in_out", has_bias, acc, N,
             in, out);
    mat_check(what, &y, wdt == SQ_DTYPE_F32 ? TOL_GEMM_F32(in) : TOL_GEMM_16(in));
    free(xr);
    gpu->ops->free(gpu, w16);
    gpu->ops->free(gpu, b16);
    mat_free(&x), mat_free(&w), mat_free(&b), mat_free(&y);
}

static void test_linear_all(void)
{
    static const int64_t sizes[][3] = {{37, 70, 45}, {130, 300, 257}, {1, 5, 3}};
    static const sq_dtype_t dts[] = {SQ_DTYPE_F32, SQ_DTYPE_BF16, SQ_DTYPE_F16};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (size_t d = 0; d < sizeof dts / sizeof *dts; d++)
            for (int l = 0; l < 2; l++)
                for (int bias = 0; bias < 2; bias++)
                    for (int acc = 0; acc < 2; acc++)
                        test_linear(sizes[s][0], sizes[s][1], sizes[s][2], dts[d],
                                    l ? SQ_WEIGHT_IN_OUT : SQ_WEIGHT_OUT_IN, bias, acc);
    /* an empty reduction: y = bias / 0 / unchanged */
    test_linear(7, 0, 9, SQ_DTYPE_F32, SQ_WEIGHT_IN_OUT, 1, 0);
    test_linear(7, 0, 9, SQ_DTYPE_F32, SQ_WEIGHT_OUT_IN, 0, 0);
    test_linear(7, 0, 9, SQ_DTYPE_F32, SQ_WEIGHT_OUT_IN, 0, 1);
}

static void test_norms(void)
{
    for (int kind = 0; kind < 3; kind++) /* layernorm, layernorm without b, rmsnorm */
        for (int inplace = 0; inplace < 2; inplace++) {
            const int64_t N = 37, C = 333;
            mat_t x = mat_new(N, C, C + 7, 2.0f);
            for (int64_t c = 0; c < C; c++) x.h[5 * x.ld + c] += 1000.0f; /* drifted row */
            mat_push(&x);
            mat_t g = mat_new(1, C, C, 1.0f), b = mat_new(1, C, C, 1.0f);
            mat_t y = mat_new(N, C, C + 2, 1.0f);
            mat_t *out = inplace ? &x : &y;
            if (kind < 2) {
                const sq_tensor_t *bh = kind == 0 ? &b.ht : NULL, *bd = kind == 0 ? &b.dt : NULL;
                SQ_CHECK(cpu->ops->layernorm(cpu, &x.ht, &g.ht, bh, 1e-5f, &out->ht));
                SQ_CHECK(gpu->ops->layernorm(gpu, &x.dt, &g.dt, bd, 1e-5f, &out->dt));
            } else {
                SQ_CHECK(cpu->ops->rmsnorm(cpu, &x.ht, &g.ht, 1e-6f, &out->ht));
                SQ_CHECK(gpu->ops->rmsnorm(gpu, &x.dt, &g.dt, 1e-6f, &out->dt));
            }
            char what[96];
            snprintf(what, sizeof what, "%s%s N=%" PRId64 " C=%" PRId64,
                     kind == 0 ? "layernorm" : kind == 1 ? "layernorm (no b)" : "rmsnorm",
                     inplace ? " in place" : "", N, C);
            mat_check(what, out, TOL_NORM);
            mat_free(&x), mat_free(&g), mat_free(&b), mat_free(&y);
        }
    /* a wide row (1024-thread blocks) */
    mat_t x = mat_new(3, 5000, 5000, 1.0f), g = mat_new(1, 5000, 5000, 1.0f);
    mat_t y = mat_new(3, 5000, 5003, 1.0f);
    SQ_CHECK(cpu->ops->rmsnorm(cpu, &x.ht, &g.ht, 1e-6f, &y.ht));
    SQ_CHECK(gpu->ops->rmsnorm(gpu, &x.dt, &g.dt, 1e-6f, &y.dt));
    mat_check("rmsnorm N=3 C=5000", &y, TOL_NORM);
    mat_free(&x), mat_free(&g), mat_free(&y);
}

static void test_activations(void)
{
    for (int a = SQ_ACT_NONE; a <= SQ_ACT_SILU; a++) {
        const int64_t N = 29, C = 301;
        mat_t x = mat_new(N, C, C + 9, 4.0f);
        x.h[3 * x.ld + 17] = NAN;
        x.h[4 * x.ld + 2] = -30.0f;
        x.h[4 * x.ld + 3] = 30.0f;
        mat_push(&x);
        SQ_CHECK(cpu->ops->activation(cpu, (sq_act_t)a, &x.ht));
        SQ_CHECK(gpu->ops->activation(gpu, (sq_act_t)a, &x.dt));
        char what[64];
        snprintf(what, sizeof what, "activation %s N=%" PRId64 " C=%" PRId64, act_name(a), N, C);
        mat_check(what, &x, TOL_ACT);
        mat_free(&x);
    }
    for (int a = SQ_ACT_NONE; a <= SQ_ACT_SILU; a++)
        for (int inplace = 0; inplace < 2; inplace++) {
            const int64_t N = 23, F = 203;
            mat_t gu = mat_new(N, 2 * F, 2 * F + 3, 4.0f); /* gate | up */
            mat_t y = mat_new(N, F, F + 1, 1.0f);
            sq_tensor_t gh = sq_tensor_cols_view(&gu.ht, 0, F), uh = sq_tensor_cols_view(&gu.ht, F, F);
            sq_tensor_t gd = sq_tensor_cols_view(&gu.dt, 0, F), ud = sq_tensor_cols_view(&gu.dt, F, F);
            SQ_CHECK(cpu->ops->glu(cpu, (sq_act_t)a, &gh, &uh, inplace ? &gh : &y.ht));
            SQ_CHECK(gpu->ops->glu(gpu, (sq_act_t)a, &gd, &ud, inplace ? &gd : &y.dt));
            char what[64];
            snprintf(what, sizeof what, "glu %s%s N=%" PRId64 " F=%" PRId64, act_name(a),
                     inplace ? " into gate" : "", N, F);
            mat_check(what, inplace ? &gu : &y, TOL_ACT);
            mat_free(&gu), mat_free(&y);
        }
}

static void test_add_axpby(void)
{
    {
        mat_t x = mat_new(31, 77, 80, 1.0f), y = mat_new(31, 77, 79, 1.0f);
        SQ_CHECK(cpu->ops->add(cpu, &x.ht, &y.ht));
        SQ_CHECK(gpu->ops->add(gpu, &x.dt, &y.dt));
        mat_check("add N=31 C=77", &y, TOL_EXACT);
        mat_free(&x), mat_free(&y);
    }
    static const float ab[][2] = {{1, 0}, {1, -1}, {1, 1}, {0.37f, -2.5f}, {2, 0}};
    for (size_t i = 0; i < sizeof ab / sizeof *ab; i++) {
        mat_t x = mat_new(31, 77, 80, 1.0f), y = mat_new(31, 77, 79, 1.0f);
        if (ab[i][1] == 0.0f) { /* beta == 0 must not read y */
            for (int64_t r = 0; r < y.rows; r++)
                for (int64_t c = 0; c < y.cols; c++) y.h[r * y.ld + c] = NAN;
            mat_push(&y);
        }
        SQ_CHECK(cpu->ops->axpby(cpu, ab[i][0], &x.ht, ab[i][1], &y.ht));
        SQ_CHECK(gpu->ops->axpby(gpu, ab[i][0], &x.dt, ab[i][1], &y.dt));
        char what[64];
        snprintf(what, sizeof what, "axpby alpha %g beta %g", (double)ab[i][0], (double)ab[i][1]);
        mat_check(what, &y, TOL_AXPBY);
        mat_free(&x), mat_free(&y);
    }
}

static void test_embedding(void)
{
    const int64_t V = 50, C = 77, n = 23;
    int32_t ids[23];
    for (int i = 0; i < n; i++) ids[i] = irand((int)V);
    ids[0] = 0;
    ids[1] = (int32_t)V - 1;
    for (int dt16 = 0; dt16 < 3; dt16++) {
        sq_dtype_t tdt = dt16 == 0 ? SQ_DTYPE_F32 : dt16 == 1 ? SQ_DTYPE_BF16 : SQ_DTYPE_F16;
        for (int acc = 0; acc < 2; acc++) {
            mat_t table = mat_new(V, C, C + 3, 1.0f);
            mat_t y = mat_new(30, C, C + 4, 1.0f); /* n < rows: rows n.. stay as they are */
            sq_tensor_t td = table.dt;
            void *t16 = NULL;
            if (tdt != SQ_DTYPE_F32) {
                t16 = round_and_upload16(&table, tdt);
                td = view2d(t16, tdt, SQ_DEVICE_CUDA, V, C, C + 3);
            }
            SQ_CHECK(cpu->ops->embedding(cpu, &table.ht, ids, n, acc, &y.ht));
            SQ_CHECK(gpu->ops->embedding(gpu, &td, ids, n, acc, &y.dt));
            char what[64];
            snprintf(what, sizeof what, "embedding %s acc %d n=%" PRId64 " C=%" PRId64,
                     sq_dtype_name(tdt), acc, n, C);
            mat_check(what, &y, TOL_EXACT);
            gpu->ops->free(gpu, t16);
            mat_free(&table), mat_free(&y);
        }
    }
    /* a bad id: SQ_ERR_RANGE naming it, y untouched */
    mat_t table = mat_new(V, C, C, 1.0f), y = mat_new(30, C, C, 1.0f);
    int32_t bad[23];
    memcpy(bad, ids, sizeof bad);
    bad[7] = (int32_t)V;
    sq_status_t st = gpu->ops->embedding(gpu, &table.dt, bad, n, 0, &y.dt);
    EXPECT(st == SQ_ERR_RANGE && strstr(sq_error_last(), "ids[7] = 50"),
           "embedding with id %d gave %s (%s), expected range error naming ids[7]", (int)V,
           sq_status_string(st), sq_error_last());
    bad[7] = -1;
    st = gpu->ops->embedding(gpu, &table.dt, bad, n, 1, &y.dt);
    EXPECT(st == SQ_ERR_RANGE, "embedding with id -1 gave %s", sq_status_string(st));
    mat_check("embedding: y untouched after bad ids", &y, TOL_EXACT);
    mat_free(&table), mat_free(&y);
}

static void test_rope(void)
{
    static const int dims[] = {64, 80};
    static const float thetas[] = {10000.0f, 500000.0f};
    const int64_t N = 37;
    const int H = 3, K = 1;
    int32_t pos[37];
    for (int i = 0; i < N; i++) pos[i] = irand(4096);
    pos[0] = 0;
    for (int style = 0; style < 2; style++)
        for (size_t di = 0; di < 2; di++)
            for (size_t ti = 0; ti < 2; ti++) {
                const int D = dims[di];
                /* q | k | v buffer; rope on the q and k column views */
                mat_t qkv = mat_new(N, (int64_t)(H + 2 * K) * D, (int64_t)(H + 2 * K) * D + 3, 1.0f);
                sq_tensor_t qh = sq_tensor_cols_view(&qkv.ht, 0, (int64_t)H * D);
                sq_tensor_t kh = sq_tensor_cols_view(&qkv.ht, (int64_t)H * D, (int64_t)K * D);
                sq_tensor_t qd = sq_tensor_cols_view(&qkv.dt, 0, (int64_t)H * D);
                sq_tensor_t kd = sq_tensor_cols_view(&qkv.dt, (int64_t)H * D, (int64_t)K * D);
                SQ_CHECK(cpu->ops->rope(cpu, (sq_rope_style_t)style, &qh, H, D, pos, thetas[ti]));
                SQ_CHECK(cpu->ops->rope(cpu, (sq_rope_style_t)style, &kh, K, D, pos, thetas[ti]));
                SQ_CHECK(gpu->ops->rope(gpu, (sq_rope_style_t)style, &qd, H, D, pos, thetas[ti]));
                SQ_CHECK(gpu->ops->rope(gpu, (sq_rope_style_t)style, &kd, K, D, pos, thetas[ti]));
                char what[96];
                snprintf(what, sizeof what, "rope %s D=%d theta %g (q and k views)",
                         style == SQ_ROPE_HALF ? "half" : "interleaved", D, (double)thetas[ti]);
                mat_check(what, &qkv, TOL_ROPE);
                mat_free(&qkv);
            }
    mat_t x = mat_new(N, 64, 64, 1.0f);
    int32_t neg[37];
    memcpy(neg, pos, sizeof neg);
    neg[9] = -2;
    sq_status_t st = gpu->ops->rope(gpu, SQ_ROPE_HALF, &x.dt, 1, 64, neg, 10000.0f);
    EXPECT(st == SQ_ERR_RANGE, "rope with pos -2 gave %s", sq_status_string(st));
    mat_free(&x);
}

static void test_attention_case(int B, int T, int H, int K, int D)
{
    const int64_t N = (int64_t)B * T, width = (int64_t)(H + 2 * K) * D;
    mat_t qkv = mat_new(N, width, width + 5, 1.0f);
    mat_t out = mat_new(N, (int64_t)H * D, (int64_t)H * D + 7, 1.0f);
    sq_tensor_t qh = sq_tensor_cols_view(&qkv.ht, 0, (int64_t)H * D);
    sq_tensor_t kh = sq_tensor_cols_view(&qkv.ht, (int64_t)H * D, (int64_t)K * D);
    sq_tensor_t vh = sq_tensor_cols_view(&qkv.ht, (int64_t)(H + K) * D, (int64_t)K * D);
    sq_tensor_t qd = sq_tensor_cols_view(&qkv.dt, 0, (int64_t)H * D);
    sq_tensor_t kd = sq_tensor_cols_view(&qkv.dt, (int64_t)H * D, (int64_t)K * D);
    sq_tensor_t vd = sq_tensor_cols_view(&qkv.dt, (int64_t)(H + K) * D, (int64_t)K * D);
    const float scale = 1.0f / sqrtf((float)D);
    SQ_CHECK(cpu->ops->attention(cpu, &qh, &kh, &vh, B, T, H, K, D, scale, &out.ht));
    SQ_CHECK(gpu->ops->attention(gpu, &qd, &kd, &vd, B, T, H, K, D, scale, &out.dt));
    char what[96];
    snprintf(what, sizeof what, "attention B=%d T=%d H=%d K=%d D=%d", B, T, H, K, D);
    mat_check(what, &out, TOL_ATTN);
    mat_check("attention: q|k|v untouched", &qkv, TOL_EXACT);
    mat_free(&qkv), mat_free(&out);
}

static void test_attention(void)
{
    test_attention_case(2, 97, 4, 2, 64);
    test_attention_case(2, 97, 4, 2, 80);
    test_attention_case(1, 100, 8, 2, 128);
    test_attention_case(1, 33, 2, 2, 32);
    test_attention_case(3, 1, 4, 1, 16);
    test_attention_case(1, 70, 2, 1, 256);
    test_attention_case(2, 65, 4, 4, 8);
    test_attention_case(1, 45, 3, 1, 50);
    /* head_dim past the kernel's limit */
    const int D = 264;
    mat_t q = mat_new(4, D, D, 1.0f), o = mat_new(4, D, D, 1.0f);
    sq_status_t st = gpu->ops->attention(gpu, &q.dt, &q.dt, &q.dt, 1, 4, 1, 1, D, 0.1f, &o.dt);
    EXPECT(st == SQ_ERR_UNSUPPORTED, "attention with D=%d gave %s", D, sq_status_string(st));
    mat_free(&q), mat_free(&o);
}

static void test_cross_entropy_case(int64_t N, int64_t V, float spread)
{
    mat_t logits = mat_new(N, V, V + 3, spread);
    int32_t *targets = malloc((size_t)N * sizeof(int32_t));
    float *nc = malloc((size_t)N * sizeof(float)), *ng = malloc((size_t)N * sizeof(float));
    if (!targets || !nc || !ng) abort();
    for (int64_t i = 0; i < N; i++) targets[i] = irand(5) == 0 ? -1 : irand((int)V);
    targets[0] = (int32_t)V - 1;
    for (int64_t i = 0; i < N; i++) ng[i] = NAN;
    SQ_CHECK(cpu->ops->cross_entropy(cpu, &logits.ht, targets, nc));
    SQ_CHECK(gpu->ops->cross_entropy(gpu, &logits.dt, targets, ng));
    char what[64];
    snprintf(what, sizeof what, "cross_entropy N=%" PRId64 " V=%" PRId64, N, V);
    compare(what, nc, ng, 1, N, N, TOL_XENT);
    targets[N - 1] = (int32_t)V;
    sq_status_t st = gpu->ops->cross_entropy(gpu, &logits.dt, targets, ng);
    EXPECT(st == SQ_ERR_RANGE, "cross_entropy with target %" PRId64 " gave %s", V,
           sq_status_string(st));
    free(targets), free(nc), free(ng);
    mat_free(&logits);
}

static void test_cross_entropy(void)
{
    test_cross_entropy_case(37, 1000, 8.0f);
    test_cross_entropy_case(3, 50257, 5.0f);
    test_cross_entropy_case(5, 77, 1.0f);
}

/* The ZO ops through the backend, bit for bit against the CPU's. */
static void test_zo(void)
{
    const int64_t n = 10007;
    mat_t src = mat_new(1, n, n, 1.0f), dst = mat_new(1, n, n, 1.0f);
    uint8_t *mask = malloc((size_t)n);
    if (!mask) abort();
    for (int64_t i = 0; i < n; i++) mask[i] = (uint8_t)(irand(3) != 0);
    uint8_t *dmask = dev_alloc((size_t)n);
    upload(dmask, mask, (size_t)n);
    sq_tensor_t sh = sq_tensor_1d(src.h, SQ_DTYPE_F32, n), dh = sq_tensor_1d(dst.h, SQ_DTYPE_F32, n);
    sq_tensor_t sd = sh, dd = dh;
    sd.data = src.d, sd.device = SQ_DEVICE_CUDA;
    dd.data = dst.d, dd.device = SQ_DEVICE_CUDA;
    for (int m = 0; m < 2; m++) {
        SQ_CHECK(cpu->ops->zo_perturb(cpu, &sh, 0xabcdef12ULL, 77, 3, 1e-3f, m ? mask : NULL, &dh));
        SQ_CHECK(gpu->ops->zo_perturb(gpu, &sd, 0xabcdef12ULL, 77, 3, 1e-3f, m ? dmask : NULL, &dd));
        mat_check(m ? "zo_perturb with mask (bit for bit)" : "zo_perturb (bit for bit)", &dst,
                  TOL_EXACT);
    }
    const uint64_t seeds[2] = {5, 0xfeedfaceULL};
    const float g[2] = {0.5f, -1.25f};
    SQ_CHECK(cpu->ops->zo_update(cpu, &sh, 2, seeds, g, 99, 1e-2f, 0.1f, mask));
    SQ_CHECK(gpu->ops->zo_update(gpu, &sd, 2, seeds, g, 99, 1e-2f, 0.1f, dmask));
    mat_check("zo_update 2 samples with mask (bit for bit)", &src, TOL_EXACT);
    sq_status_t st = gpu->ops->zo_perturb(gpu, &sd, 1, 2, 0, 1e-3f, mask, &dd);
    EXPECT(st == SQ_ERR_INVALID_ARG, "zo_perturb with a pageable host mask gave %s",
           sq_status_string(st));
    gpu->ops->free(gpu, dmask);
    free(mask);
    mat_free(&src), mat_free(&dst);
}

static void test_errors(void)
{
    mat_t x = mat_new(4, 5, 5, 1.0f), y = mat_new(4, 5, 5, 1.0f);
    sq_status_t st = gpu->ops->add(gpu, &x.ht, &y.dt);
    EXPECT(st == SQ_ERR_INVALID_ARG && strstr(sq_error_last(), "cuda.add"),
           "a host tensor given to cuda add gave %s (%s)", sq_status_string(st), sq_error_last());
    st = gpu->ops->add(gpu, &x.dt, &y.ht);
    EXPECT(st == SQ_ERR_INVALID_ARG, "a host y given to cuda add gave %s", sq_status_string(st));
    sq_tensor_t wide = x.dt;
    wide.shape[1] = 6;
    st = gpu->ops->add(gpu, &wide, &y.dt);
    EXPECT(st == SQ_ERR_INVALID_ARG, "add of mismatched shapes gave %s", sq_status_string(st));
    sq_tensor_t bad_ld = x.dt;
    bad_ld.ld = 3;
    st = gpu->ops->activation(gpu, SQ_ACT_RELU, &bad_ld);
    EXPECT(st == SQ_ERR_INVALID_ARG, "ld < cols gave %s", sq_status_string(st));
    sq_tensor_t i32 = x.dt;
    i32.dtype = SQ_DTYPE_I32;
    st = gpu->ops->activation(gpu, SQ_ACT_RELU, &i32);
    EXPECT(st == SQ_ERR_INVALID_ARG, "an I32 activation gave %s", sq_status_string(st));
    mat_free(&x), mat_free(&y);

    /* more host-fed rows than reserved */
    const int64_t rows = 257; /* the reserve below is 256 */
    mat_t table = mat_new(3, 4, 4, 1.0f), big = mat_new(rows, 4, 4, 1.0f);
    int32_t *ids = calloc((size_t)rows, sizeof(int32_t));
    if (!ids) abort();
    st = gpu->ops->embedding(gpu, &table.dt, ids, rows, 0, &big.dt);
    EXPECT(st == SQ_ERR_INVALID_ARG && strstr(sq_error_last(), "reserve"),
           "embedding past max_rows gave %s (%s)", sq_status_string(st), sq_error_last());
    free(ids);
    mat_free(&table), mat_free(&big);

    EXPECT(sq_backend_cuda_stream(gpu) != NULL, "the CUDA backend has no stream");
    EXPECT(sq_backend_cuda_stream(cpu) == NULL, "the CPU backend reported a stream");
    sq_backend_t *none = NULL;
    st = sq_backend_cuda_create(1 << 20, &none);
    EXPECT(st == SQ_ERR_RANGE && none == NULL, "device 1<<20 gave %s", sq_status_string(st));
}

/* F16/BF16 linear large enough that x is converted in row chunks. */
static void test_linear_chunked(void)
{
    const sq_backend_limits_t lim = {.max_rows = 3000, .max_seq = 128, .max_heads = 8,
                                     .max_cols = 4000};
    SQ_CHECK(gpu->ops->reserve(gpu, &lim));
    test_linear(3000, 4000, 9, SQ_DTYPE_BF16, SQ_WEIGHT_OUT_IN, 1, 0);
    test_linear(2500, 3999, 11, SQ_DTYPE_F16, SQ_WEIGHT_IN_OUT, 0, 1);
}

int main(void)
{
    if (!sq_cuda_available()) {
        printf("SKIPPED: no CUDA device visible\n");
        return 77;
    }
    SQ_CHECK(sq_backend_cpu_create(1, &cpu));
    SQ_CHECK(sq_backend_cuda_create(0, &gpu));
    EXPECT(gpu->ops->device == SQ_DEVICE_CUDA && strcmp(gpu->ops->name, "cuda") == 0,
           "the CUDA backend is malformed");
    const sq_backend_limits_t lim = {.max_rows = 256, .max_seq = 128, .max_heads = 8,
                                     .max_cols = 1024};
    SQ_CHECK(cpu->ops->reserve(cpu, &lim));
    SQ_CHECK(gpu->ops->reserve(gpu, &lim));
    SQ_CHECK(gpu->ops->reserve(gpu, &lim)); /* idempotent */

    test_copies();
    test_linear_all();
    test_norms();
    test_activations();
    test_add_axpby();
    test_embedding();
    test_rope();
    test_attention();
    test_cross_entropy();
    test_zo();
    test_errors();
    test_linear_chunked();

    SQ_CHECK(gpu->ops->sync(gpu));
    sq_backend_destroy(gpu);
    sq_backend_destroy(cpu);
    printf("%s (%d failure%s)\n", failures ? "FAILED" : "all CUDA ops match the CPU backend",
           failures, failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}

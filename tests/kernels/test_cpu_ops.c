/* kernels/cpu: every op of the CPU backend against its _ref twin (ref.h).
 *
 * Each case runs the op and the reference on identical copies of the same
 * buffers. Views sit inside wider parent buffers (ld > cols, column offset)
 * followed by a guard region; everything outside an output view must be
 * bit-for-bit what it was before the op. Every case runs on a 1-thread and a
 * 3-thread backend (3 so that work splits unevenly).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparq/backend.h"
#include "ref.h"
#include "vmath.h"

/* ---- named tolerances: |got - want| <= abs + rel * |want| ---- */

typedef struct tol {
    double abs, rel;
} tol_t;

static const tol_t TOL_GEMM = {2e-5, 2e-5}; /* fp32 sgemm vs double dot, K <= 600 */
static const tol_t TOL_NORM = {1e-6, 1e-6}; /* two-pass stats, fp32 output */
static const tol_t TOL_ACT = {5e-7, 1e-6};  /* vmath.h exp-based forms vs libm */
static const tol_t TOL_EXACT = {0.0, 0.0};  /* copies and single fp32 adds */
static const tol_t TOL_ROPE = {1e-6, 1e-6}; /* same fp32 angle, fp32 rotation */
static const tol_t TOL_ATTN = {2e-6, 2e-5}; /* sgemm scores + vexp softmax */
static const tol_t TOL_XENT = {2e-5, 2e-6}; /* fp32 logsumexp of up to 50k terms */
static const double TOL_VEXP_REL = 2.5e-7;  /* sq_vexpf vs exp, 2 ulp */

/* ---- deterministic random numbers ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static float rng_uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)((rng_next() >> 40) * 0x1p-24);
}

static int rng_int(int lo, int hi_excl)
{
    return lo + (int)(rng_next() % (uint64_t)(hi_excl - lo));
}

/* ---- buffers: a view inside a parent [rows, ld] block plus a guard ---- */

#define GUARD 64
static const uint32_t SENTINEL = 0x7fa5a5a5u; /* a NaN no op produces */

typedef struct mat {
    float *mem;
    size_t nmem;
    int64_t rows, ld, c0, cols;
    sq_tensor_t t;
} mat_t;

static float sentinel(void)
{
    float f;
    memcpy(&f, &SENTINEL, 4);
    return f;
}

/* rows x cols view at column c0 of a parent with row stride ld; the cells
 * outside the view get random values, the guard gets the sentinel */
static mat_t mat_new(int64_t rows, int64_t cols, int64_t ld, int64_t c0)
{
    mat_t m = {.rows = rows, .ld = ld, .c0 = c0, .cols = cols};
    assert_true(ld >= c0 + cols);
    m.nmem = (size_t)(rows * ld + GUARD);
    m.mem = malloc(m.nmem * sizeof(float));
    assert_non_null(m.mem);
    for (size_t i = 0; i < m.nmem; i++)
        m.mem[i] = rng_uniform(-9.f, 9.f);
    for (size_t i = (size_t)(rows * ld); i < m.nmem; i++)
        m.mem[i] = sentinel();
    m.t = sq_tensor_2d(m.mem + c0, SQ_DTYPE_F32, rows, cols);
    m.t.ld = ld;
    return m;
}

static mat_t mat_dense(int64_t rows, int64_t cols)
{
    return mat_new(rows, cols, cols, 0);
}

static float *mat_at(const mat_t *m, int64_t r, int64_t c)
{
    return m->mem + r * m->ld + m->c0 + c;
}

static void mat_fill(mat_t *m, float lo, float hi)
{
    for (int64_t r = 0; r < m->rows; r++)
        for (int64_t c = 0; c < m->cols; c++)
            *mat_at(m, r, c) = rng_uniform(lo, hi);
}

static mat_t mat_clone(const mat_t *m)
{
    mat_t c = *m;
    c.mem = malloc(m->nmem * sizeof(float));
    assert_non_null(c.mem);
    memcpy(c.mem, m->mem, m->nmem * sizeof(float));
    c.t.data = c.mem + m->c0;
    return c;
}

static void mat_free(mat_t *m)
{
    free(m->mem);
    m->mem = NULL;
}

static int in_view(const mat_t *m, size_t i)
{
    if (i >= (size_t)(m->rows * m->ld)) return 0;
    int64_t c = (int64_t)(i % (size_t)m->ld);
    return c >= m->c0 && c < m->c0 + m->cols;
}

/* Everything outside m's view (gaps between rows, other columns of the
 * parent, the guard) must be bitwise what `before` holds. */
static void expect_untouched(const mat_t *m, const mat_t *before, const char *what)
{
    for (size_t i = 0; i < m->nmem; i++) {
        if (in_view(m, i)) continue;
        if (memcmp(&m->mem[i], &before->mem[i], 4) != 0)
            fail_msg("%s: element %zu outside the output view was written", what, i);
    }
}

/* Compare the views of got and want; NaN equals NaN. */
static void expect_close(const mat_t *got, const mat_t *want, tol_t tol, const char *what)
{
    int64_t bad = 0;
    double worst = 0.0;
    for (int64_t r = 0; r < got->rows; r++)
        for (int64_t c = 0; c < got->cols; c++) {
            double g = *mat_at(got, r, c), w = *mat_at(want, r, c);
            if (isnan(g) && isnan(w)) continue;
            double err = fabs(g - w), lim = tol.abs + tol.rel * fabs(w);
            if (!(err <= lim)) {
                if (bad < 5)
                    print_error("%s: [%lld,%lld] got %.9g want %.9g (err %.3g > %.3g)\n", what,
                                (long long)r, (long long)c, g, w, err, lim);
                bad++;
            }
            if (lim > 0 && err / lim > worst) worst = err / lim;
        }
    if (getenv("SQ_TEST_VERBOSE")) printf("  %-60s worst err/tol %.3f\n", what, worst);
    if (bad)
        fail_msg("%s: %lld of %lld elements outside tolerance", what, (long long)bad,
                 (long long)(got->rows * got->cols));
}

static void expect_close_vec(const float *got, const float *want, int64_t n, tol_t tol,
                             const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (isnan(g) && isnan(w)) continue;
        if (!(fabs(g - w) <= tol.abs + tol.rel * fabs(w)))
            fail_msg("%s: [%lld] got %.9g want %.9g", what, (long long)i, g, w);
    }
}

static void expect_error(sq_status_t st, sq_status_t want, const char *needle)
{
    if (st != want)
        fail_msg("expected %s, got %s (%s)", sq_status_string(want), sq_status_string(st),
                 sq_error_last());
    if (needle && !strstr(sq_error_last(), needle))
        fail_msg("message \"%s\" does not mention \"%s\"", sq_error_last(), needle);
}

/* ---- fixture: a 1-thread and a 3-thread backend ---- */

typedef struct backends {
    sq_backend_t *be[2];
} backends_t;

static const sq_backend_limits_t LIMITS = {
    .max_rows = 4096, .max_seq = 256, .max_heads = 16, .max_cols = 50272};

static int setup(void **state)
{
    backends_t *b = calloc(1, sizeof *b);
    if (!b) return -1;
    int nt[2] = {1, 3};
    for (int i = 0; i < 2; i++) {
        if (sq_backend_cpu_create(nt[i], &b->be[i]) != SQ_OK) return -1;
        if (b->be[i]->ops->reserve(b->be[i], &LIMITS) != SQ_OK) return -1;
    }
    *state = b;
    return 0;
}

static int teardown(void **state)
{
    backends_t *b = *state;
    for (int i = 0; i < 2; i++)
        sq_backend_destroy(b->be[i]);
    free(b);
    return 0;
}

#define FOR_EACH_BACKEND(st, be)                                                                   \
    for (int be_i_ = 0; be_i_ < 2; be_i_++)                                                        \
        for (sq_backend_t *be = ((backends_t *)*(st))->be[be_i_]; be; be = NULL)

/* ---- linear ---- */

static void test_linear(void **state)
{
    static const int64_t shapes[][3] = {
        /* N, in, out */
        {1, 1, 1},       {3, 5, 7},     {17, 64, 33}, {128, 96, 200},
        {130, 192, 576}, {8, 64, 1000}, {5, 600, 48}, {2, 0, 3},
    };
    char what[160];
    FOR_EACH_BACKEND(state, be)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int layout = 0; layout < 2; layout++)
            for (int variant = 0; variant < 4; variant++) {
                int use_bias = variant & 1, acc = (variant >> 1) & 1;
                int64_t n = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
                int strided = (s + variant) % 2; /* every other case uses wide parents */
                mat_t x = strided ? mat_new(n, in, in + 3, 1) : mat_dense(n, in);
                mat_t w = layout == SQ_WEIGHT_OUT_IN
                              ? (strided ? mat_new(out, in, in + 2, 2) : mat_dense(out, in))
                              : (strided ? mat_new(in, out, out + 5, 0) : mat_dense(in, out));
                mat_t bias = mat_dense(1, out);
                mat_t y = strided ? mat_new(n, out, out + 7, 3) : mat_dense(n, out);
                mat_fill(&x, -1, 1);
                mat_fill(&w, -1, 1);
                mat_fill(&bias, -1, 1);
                mat_fill(&y, -1, 1);
                sq_tensor_t bvec = sq_tensor_1d(bias.mem, SQ_DTYPE_F32, out);
                mat_t y_ref = mat_clone(&y), before = mat_clone(&y);

                snprintf(what, sizeof what,
                         "linear N=%lld in=%lld out=%lld layout=%d bias=%d acc=%d", (long long)n,
                         (long long)in, (long long)out, layout, use_bias, acc);
                sq_status_t st = be->ops->linear(be, &x.t, &w.t, (sq_wlayout_t)layout,
                                                 use_bias ? &bvec : NULL, acc, &y.t);
                if (st != SQ_OK) fail_msg("%s: %s", what, sq_error_last());
                sq_linear_ref(&x.t, &w.t, (sq_wlayout_t)layout, use_bias ? &bvec : NULL, acc,
                              &y_ref.t);
                expect_close(&y, &y_ref, TOL_GEMM, what);
                expect_untouched(&y, &before, what);
                mat_free(&x), mat_free(&w), mat_free(&bias), mat_free(&y), mat_free(&y_ref),
                    mat_free(&before);
            }
}

/* ---- layernorm, rmsnorm ---- */

static void test_norms(void **state)
{
    static const int64_t shapes[][2] = {{1, 1}, {5, 192}, {37, 1000}, {64, 768}, {3, 4097}};
    char what[128];
    FOR_EACH_BACKEND(state, be)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int variant = 0; variant < 6; variant++) {
            int64_t n = shapes[s][0], c = shapes[s][1];
            int kind = variant % 3;     /* 0 layernorm+b, 1 layernorm, 2 rmsnorm */
            int inplace = variant >= 3; /* y is x */
            mat_t x = mat_new(n, c, c + 5, 2);
            /* a large common offset: what a one-pass fp32 variance gets wrong */
            float off = (s % 2) ? 300.0f : 0.0f;
            mat_fill(&x, off - 2.0f, off + 2.0f);
            mat_t g = mat_dense(1, c), b = mat_dense(1, c);
            mat_fill(&g, 0.5f, 1.5f);
            mat_fill(&b, -1, 1);
            sq_tensor_t gv = sq_tensor_1d(g.mem, SQ_DTYPE_F32, c);
            sq_tensor_t bv = sq_tensor_1d(b.mem, SQ_DTYPE_F32, c);
            mat_t y = inplace ? mat_clone(&x) : mat_new(n, c, c + 1, 0);
            mat_t x_ref = mat_clone(&x), y_ref = mat_clone(&y), before = mat_clone(&y);
            snprintf(what, sizeof what, "%s N=%lld C=%lld offset=%g inplace=%d",
                     kind == 2 ? "rmsnorm" : "layernorm", (long long)n, (long long)c, (double)off,
                     inplace);
            sq_tensor_t *xin = inplace ? &y.t : &x.t, *xin_ref = inplace ? &y_ref.t : &x_ref.t;
            sq_status_t st;
            if (kind == 2) {
                st = be->ops->rmsnorm(be, xin, &gv, 1e-6f, &y.t);
                sq_rmsnorm_ref(xin_ref, &gv, 1e-6f, &y_ref.t);
            } else {
                st = be->ops->layernorm(be, xin, &gv, kind == 0 ? &bv : NULL, 1e-5f, &y.t);
                sq_layernorm_ref(xin_ref, &gv, kind == 0 ? &bv : NULL, 1e-5f, &y_ref.t);
            }
            if (st != SQ_OK) fail_msg("%s: %s", what, sq_error_last());
            expect_close(&y, &y_ref, TOL_NORM, what);
            expect_untouched(&y, &before, what);
            mat_free(&x), mat_free(&g), mat_free(&b), mat_free(&y), mat_free(&x_ref),
                mat_free(&y_ref), mat_free(&before);
        }
}

/* ---- activation, glu, add ---- */

static const char *act_name(int a)
{
    static const char *names[] = {"none", "relu", "gelu_tanh", "gelu_erf", "silu"};
    return names[a];
}

/* values over the whole interesting range, plus the edges */
static void fill_act_inputs(mat_t *m)
{
    static const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 30.f,  -30.f,
                                    88.f, -88.f, 100.f,  -100.f,  1e30f, -1e30f};
    mat_fill(m, -12.f, 12.f);
    int64_t k = 0;
    for (int64_t r = 0; r < m->rows && k < 12; r++)
        for (int64_t c = 0; c < m->cols && k < 12; c += 3)
            *mat_at(m, r, c) = special[k++];
}

static void test_activation(void **state)
{
    static const int64_t shapes[][2] = {{1, 1}, {7, 33}, {64, 768}, {129, 300}};
    char what[128];
    FOR_EACH_BACKEND(state, be)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int act = 0; act <= SQ_ACT_SILU; act++) {
            int64_t n = shapes[s][0], c = shapes[s][1];
            mat_t x = s % 2 ? mat_new(n, c, c + 4, 1) : mat_dense(n, c);
            fill_act_inputs(&x);
            mat_t x_ref = mat_clone(&x), before = mat_clone(&x);
            snprintf(what, sizeof what, "activation %s N=%lld C=%lld", act_name(act), (long long)n,
                     (long long)c);
            sq_status_t st = be->ops->activation(be, (sq_act_t)act, &x.t);
            if (st != SQ_OK) fail_msg("%s: %s", what, sq_error_last());
            sq_activation_ref((sq_act_t)act, &x_ref.t);
            expect_close(&x, &x_ref, TOL_ACT, what);
            expect_untouched(&x, &before, what);
            mat_free(&x), mat_free(&x_ref), mat_free(&before);
        }
}

static void test_glu(void **state)
{
    static const int64_t shapes[][2] = {{1, 1}, {9, 40}, {64, 768}};
    char what[128];
    FOR_EACH_BACKEND(state, be)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int act = 0; act <= SQ_ACT_SILU; act++)
            for (int alias = 0; alias < 2; alias++) {
                int64_t n = shapes[s][0], c = shapes[s][1];
                /* gate and up as the two halves of one fused [N, 2F] buffer */
                mat_t fused = mat_new(n, 2 * c, 2 * c + 3, 0);
                fill_act_inputs(&fused);
                sq_tensor_t gate = sq_tensor_cols_view(&fused.t, 0, c);
                sq_tensor_t up = sq_tensor_cols_view(&fused.t, c, c);
                mat_t y = mat_new(n, c, c + 2, 1);
                mat_t ref_fused = mat_clone(&fused), y_ref = mat_clone(&y);
                sq_tensor_t gate_ref = sq_tensor_cols_view(&ref_fused.t, 0, c);
                sq_tensor_t up_ref = sq_tensor_cols_view(&ref_fused.t, c, c);
                snprintf(what, sizeof what, "glu %s N=%lld F=%lld y_is_gate=%d", act_name(act),
                         (long long)n, (long long)c, alias);
                sq_status_t st;
                if (alias) {
                    /* y == gate: the result lands in the left half of fused */
                    mat_t before = mat_clone(&fused);
                    st = be->ops->glu(be, (sq_act_t)act, &gate, &up, &gate);
                    if (st != SQ_OK) fail_msg("%s: %s", what, sq_error_last());
                    sq_glu_ref((sq_act_t)act, &gate_ref, &up_ref, &gate_ref);
                    fused.cols = ref_fused.cols = c; /* compare the gate half only */
                    expect_close(&fused, &ref_fused, TOL_ACT, what);
                    expect_untouched(&fused, &before, what);
                    mat_free(&before);
                } else {
                    mat_t before = mat_clone(&y);
                    st = be->ops->glu(be, (sq_act_t)act, &gate, &up, &y.t);
                    if (st != SQ_OK) fail_msg("%s: %s", what, sq_error_last());
                    sq_glu_ref((sq_act_t)act, &gate_ref, &up_ref, &y_ref.t);
                    expect_close(&y, &y_ref, TOL_ACT, what);
                    expect_untouched(&y, &before, what);
                    mat_free(&before);
                }
                mat_free(&fused), mat_free(&y), mat_free(&ref_fused), mat_free(&y_ref);
            }
}

static void test_add(void **state)
{
    static const int64_t shapes[][2] = {{1, 1}, {13, 17}, {256, 192}};
    FOR_EACH_BACKEND(state, be)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t n = shapes[s][0], c = shapes[s][1];
        mat_t x = mat_new(n, c, c + 1, 1), y = mat_new(n, c, c + 9, 4);
        mat_fill(&x, -3, 3);
        mat_fill(&y, -3, 3);
        mat_t y_ref = mat_clone(&y), before = mat_clone(&y);
        assert_int_equal(be->ops->add(be, &x.t, &y.t), SQ_OK);
        sq_add_ref(&x.t, &y_ref.t);
        expect_close(&y, &y_ref, TOL_EXACT, "add");
        expect_untouched(&y, &before, "add");
        mat_free(&x), mat_free(&y), mat_free(&y_ref), mat_free(&before);
    }
}

/* ---- embedding ---- */

static void test_embedding(void **state)
{
    char what[96];
    FOR_EACH_BACKEND(state, be)
    for (int acc = 0; acc < 2; acc++)
        for (int s = 0; s < 3; s++) {
            int64_t vocab = s == 0 ? 1 : 1000, c = s == 2 ? 192 : 24, n = s == 0 ? 3 : 300;
            mat_t table = mat_new(vocab, c, c + 3, 2);
            mat_fill(&table, -1, 1);
            /* y has two rows more than n: rows past n stay as they were */
            mat_t y = mat_new(n + 2, c, c + 1, 0);
            mat_fill(&y, -1, 1);
            int32_t *ids = malloc((size_t)n * sizeof *ids);
            assert_non_null(ids);
            for (int64_t i = 0; i < n; i++)
                ids[i] = rng_int(0, (int)vocab);
            ids[0] = (int32_t)vocab - 1;
            mat_t y_ref = mat_clone(&y), before = mat_clone(&y);
            snprintf(what, sizeof what, "embedding V=%lld C=%lld n=%lld acc=%d", (long long)vocab,
                     (long long)c, (long long)n, acc);
            sq_status_t st = be->ops->embedding(be, &table.t, ids, n, acc, &y.t);
            if (st != SQ_OK) fail_msg("%s: %s", what, sq_error_last());
            sq_embedding_ref(&table.t, ids, n, acc, &y_ref.t);
            expect_close(&y, &y_ref, TOL_EXACT, what);
            expect_untouched(&y, &before, what);
            for (int64_t c2 = 0; c2 < c; c2++)
                assert_memory_equal(mat_at(&y, n, c2), mat_at(&before, n, c2), 4);

            /* a bad id anywhere: SQ_ERR_RANGE naming it, y untouched */
            memcpy(y.mem, before.mem, y.nmem * sizeof(float));
            ids[n - 1] = acc ? -1 : (int32_t)vocab;
            expect_error(be->ops->embedding(be, &table.t, ids, n, acc, &y.t), SQ_ERR_RANGE,
                         "embedding");
            assert_memory_equal(y.mem, before.mem, y.nmem * sizeof(float));
            free(ids);
            mat_free(&table), mat_free(&y), mat_free(&y_ref), mat_free(&before);
        }
}

/* ---- rope ---- */

static void test_rope(void **state)
{
    static const int dims[][2] = {{1, 2}, {3, 6}, {4, 64}, {2, 128}, {1, 260}};
    static const float thetas[] = {10000.0f, 500000.0f};
    char what[128];
    FOR_EACH_BACKEND(state, be)
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
        for (int style = 0; style < 2; style++)
            for (int ti = 0; ti < 2; ti++) {
                int h = dims[d][0], hd = dims[d][1];
                int64_t n = 37, c = (int64_t)h * hd;
                /* x is the q part of a fused [N, q | k | v] buffer */
                mat_t fused = mat_new(n, c, 3 * c + 1, c);
                mat_fill(&fused, -2, 2);
                int32_t pos[37];
                for (int i = 0; i < 37; i++)
                    pos[i] = i < 5 ? i : rng_int(0, 8192);
                mat_t ref = mat_clone(&fused), before = mat_clone(&fused);
                snprintf(what, sizeof what, "rope %s H=%d D=%d theta=%g",
                         style ? "interleaved" : "half", h, hd, (double)thetas[ti]);
                sq_status_t st =
                    be->ops->rope(be, (sq_rope_style_t)style, &fused.t, h, hd, pos, thetas[ti]);
                if (st != SQ_OK) fail_msg("%s: %s", what, sq_error_last());
                sq_rope_ref((sq_rope_style_t)style, &ref.t, h, hd, pos, thetas[ti]);
                expect_close(&fused, &ref, TOL_ROPE, what);
                expect_untouched(&fused, &before, what);
                mat_free(&fused), mat_free(&ref), mat_free(&before);
            }
}

/* The pairing of each style, by hand: D = 4, pos = 1, so pair 0 turns by
 * 1 rad and pair 1 by theta^(-1/2) rad. Guards against op and ref sharing a
 * wrong pairing. */
static void test_rope_pairs(void **state)
{
    FOR_EACH_BACKEND(state, be)
    for (int style = 0; style < 2; style++) {
        float x[4] = {1, 2, 3, 4};
        int32_t pos = 1;
        sq_tensor_t t = sq_tensor_2d(x, SQ_DTYPE_F32, 1, 4);
        assert_int_equal(be->ops->rope(be, (sq_rope_style_t)style, &t, 1, 4, &pos, 100.0f), SQ_OK);
        double a0 = 1.0, a1 = 0.1; /* 100^(-2/4) */
        int p00 = 0, p01 = style ? 1 : 2, p10 = style ? 2 : 1, p11 = 3;
        double in[4] = {1, 2, 3, 4}, want[4];
        want[p00] = in[p00] * cos(a0) - in[p01] * sin(a0);
        want[p01] = in[p00] * sin(a0) + in[p01] * cos(a0);
        want[p10] = in[p10] * cos(a1) - in[p11] * sin(a1);
        want[p11] = in[p10] * sin(a1) + in[p11] * cos(a1);
        for (int i = 0; i < 4; i++)
            assert_float_equal(x[i], want[i], 1e-6);
    }
}

/* ---- attention ---- */

static void test_attention(void **state)
{
    static const int cfg[][5] = {
        /* B, T, H, K, D */
        {1, 1, 1, 1, 4},   {2, 5, 4, 4, 8},    {3, 63, 4, 2, 16},  {1, 64, 4, 1, 32},
        {2, 65, 8, 2, 64}, {1, 130, 2, 2, 64}, {2, 129, 6, 3, 24}, {1, 200, 4, 1, 8},
    };
    char what[128];
    FOR_EACH_BACKEND(state, be)
    for (size_t s = 0; s < sizeof cfg / sizeof cfg[0]; s++) {
        int B = cfg[s][0], T = cfg[s][1], H = cfg[s][2], K = cfg[s][3], D = cfg[s][4];
        int64_t n = (int64_t)B * T, qc = (int64_t)H * D, kc = (int64_t)K * D;
        /* q, k, v are column views of one fused [N, (H + 2K) D + 1] buffer */
        mat_t fused = mat_new(n, qc + 2 * kc, qc + 2 * kc + 1, 0);
        mat_fill(&fused, -2, 2);
        sq_tensor_t q = sq_tensor_cols_view(&fused.t, 0, qc);
        sq_tensor_t k = sq_tensor_cols_view(&fused.t, qc, kc);
        sq_tensor_t v = sq_tensor_cols_view(&fused.t, qc + kc, kc);
        mat_t out = mat_new(n, qc, qc + 3, 2);
        mat_t out_ref = mat_clone(&out), before = mat_clone(&out), fused_before = mat_clone(&fused);
        float scale = 1.0f / sqrtf((float)D);
        snprintf(what, sizeof what, "attention B=%d T=%d H=%d K=%d D=%d", B, T, H, K, D);
        sq_status_t st = be->ops->attention(be, &q, &k, &v, B, T, H, K, D, scale, &out.t);
        if (st != SQ_OK) fail_msg("%s: %s", what, sq_error_last());
        sq_attention_ref(&q, &k, &v, B, T, H, K, D, scale, &out_ref.t);
        expect_close(&out, &out_ref, TOL_ATTN, what);
        expect_untouched(&out, &before, what);
        assert_memory_equal(fused.mem, fused_before.mem, fused.nmem * sizeof(float));
        /* causality by hand: the first token of each sequence sees only
         * itself, so its output is its own (GQA-mapped) v row */
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int e = 0; e < D; e++)
                    assert_float_equal(
                        *mat_at(&out, (int64_t)b * T, (int64_t)h * D + e),
                        *mat_at(&fused, (int64_t)b * T, qc + kc + (h / (H / K)) * D + e), 1e-6);
        mat_free(&fused), mat_free(&out), mat_free(&out_ref), mat_free(&before),
            mat_free(&fused_before);
    }
}

/* ---- cross-entropy ---- */

static void test_cross_entropy(void **state)
{
    static const int64_t shapes[][2] = {{1, 1}, {4, 17}, {33, 1000}, {5, 50272}};
    char what[96];
    FOR_EACH_BACKEND(state, be)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t n = shapes[s][0], vocab = shapes[s][1];
        mat_t logits = s % 2 ? mat_new(n, vocab, vocab + 5, 3) : mat_dense(n, vocab);
        mat_fill(&logits, -15, 15);
        if (n > 2) /* huge logits: only a max-shifted sum survives */
            for (int64_t c = 0; c < vocab; c++)
                *mat_at(&logits, 2, c) += 1e4f;
        int32_t *tg = malloc((size_t)n * sizeof *tg);
        float *nll = malloc((size_t)n * sizeof *nll), *nll_ref = malloc((size_t)n * sizeof *nll);
        assert_true(tg && nll && nll_ref);
        for (int64_t i = 0; i < n; i++)
            tg[i] = rng_int(0, (int)vocab);
        tg[0] = 0;             /* the first class is a class, not padding */
        if (n > 1) tg[1] = -1; /* ignored row */
        snprintf(what, sizeof what, "cross_entropy N=%lld V=%lld", (long long)n, (long long)vocab);
        sq_status_t st = be->ops->cross_entropy(be, &logits.t, tg, nll);
        if (st != SQ_OK) fail_msg("%s: %s", what, sq_error_last());
        sq_cross_entropy_ref(&logits.t, tg, nll_ref);
        expect_close_vec(nll, nll_ref, n, TOL_XENT, what);
        if (n > 1) assert_true(nll[1] == 0.0f);

        tg[n - 1] = (int32_t)vocab;
        expect_error(be->ops->cross_entropy(be, &logits.t, tg, nll), SQ_ERR_RANGE, "cross_entropy");
        free(tg), free(nll), free(nll_ref);
        mat_free(&logits);
    }
}

/* ---- host copies ---- */

static void test_copies(void **state)
{
    FOR_EACH_BACKEND(state, be)
    {
        mat_t m = mat_new(5, 7, 11, 2);
        mat_fill(&m, -1, 1);
        float host[35], back[35];
        assert_int_equal(be->ops->to_host(be, &m.t, host, sizeof host), SQ_OK);
        for (int r = 0; r < 5; r++)
            for (int c = 0; c < 7; c++)
                assert_true(host[r * 7 + c] == *mat_at(&m, r, c));
        for (int i = 0; i < 35; i++)
            back[i] = (float)i;
        mat_t before = mat_clone(&m);
        assert_int_equal(be->ops->from_host(be, back, sizeof back, &m.t), SQ_OK);
        for (int r = 0; r < 5; r++)
            for (int c = 0; c < 7; c++)
                assert_true(*mat_at(&m, r, c) == (float)(r * 7 + c));
        expect_untouched(&m, &before, "from_host");
        expect_error(be->ops->to_host(be, &m.t, host, sizeof host - 4), SQ_ERR_INVALID_ARG,
                     "to_host");
        expect_error(be->ops->from_host(be, back, sizeof back + 4, &m.t), SQ_ERR_INVALID_ARG,
                     "from_host");
        /* I32 tensors (token ids) copy too */
        int32_t ids[6] = {1, 2, 3, 4, 5, 6}, ids_back[6] = {0};
        sq_tensor_t it = sq_tensor_2d(ids, SQ_DTYPE_I32, 2, 3);
        assert_int_equal(be->ops->to_host(be, &it, ids_back, sizeof ids_back), SQ_OK);
        assert_memory_equal(ids, ids_back, sizeof ids);
        mat_free(&m), mat_free(&before);
    }
}

/* ---- rejections: wrong shapes, dtypes, ids, scratch ---- */

static void test_rejections(void **state)
{
    sq_backend_t *be = ((backends_t *)*state)->be[1];
    const sq_backend_ops_t *op = be->ops;
    float buf[64 * 64];
    uint16_t hbuf[16];
    for (int i = 0; i < 64 * 64; i++)
        buf[i] = 0.5f;
    sq_tensor_t x = sq_tensor_2d(buf, SQ_DTYPE_F32, 4, 8);
    sq_tensor_t y = sq_tensor_2d(buf + 1024, SQ_DTYPE_F32, 4, 6);
    sq_tensor_t w = sq_tensor_2d(buf + 2048, SQ_DTYPE_F32, 6, 8);
    sq_tensor_t w16 = sq_tensor_2d(hbuf, SQ_DTYPE_F16, 2, 8);
    sq_tensor_t v8 = sq_tensor_1d(buf + 3072, SQ_DTYPE_F32, 8);
    sq_tensor_t v6 = sq_tensor_1d(buf + 3072, SQ_DTYPE_F32, 6);

    /* linear */
    expect_error(op->linear(be, &x, &w16, SQ_WEIGHT_OUT_IN, NULL, 0, &y), SQ_ERR_INVALID_ARG,
                 "F16");
    expect_error(op->linear(be, &x, &w, SQ_WEIGHT_IN_OUT, NULL, 0, &y), SQ_ERR_INVALID_ARG,
                 "linear");
    expect_error(op->linear(be, &x, &w, SQ_WEIGHT_OUT_IN, &v8, 0, &y), SQ_ERR_INVALID_ARG, "bias");
    expect_error(op->linear(be, &x, &w, (sq_wlayout_t)7, NULL, 0, &y), SQ_ERR_INVALID_ARG,
                 "layout");
    expect_error(op->linear(be, NULL, &w, SQ_WEIGHT_OUT_IN, NULL, 0, &y), SQ_ERR_INVALID_ARG,
                 "NULL");
    sq_tensor_t yx = sq_tensor_2d(buf, SQ_DTYPE_F32, 4, 6); /* overlaps x */
    expect_error(op->linear(be, &x, &w, SQ_WEIGHT_OUT_IN, NULL, 0, &yx), SQ_ERR_INVALID_ARG,
                 "overlap");
    sq_tensor_t bad_ld = x;
    bad_ld.ld = 5;
    expect_error(op->linear(be, &bad_ld, &w, SQ_WEIGHT_OUT_IN, NULL, 0, &y), SQ_ERR_INVALID_ARG,
                 "ld");
    sq_tensor_t y3 = sq_tensor_2d(buf + 1024, SQ_DTYPE_F32, 3, 6);
    expect_error(op->linear(be, &x, &w, SQ_WEIGHT_OUT_IN, NULL, 0, &y3), SQ_ERR_INVALID_ARG,
                 "rows");
    sq_tensor_t x1 = sq_tensor_1d(buf, SQ_DTYPE_F32, 8);
    expect_error(op->linear(be, &x1, &w, SQ_WEIGHT_OUT_IN, NULL, 0, &y), SQ_ERR_INVALID_ARG, "2-D");
    sq_tensor_t xdev = x;
    xdev.device = SQ_DEVICE_CUDA;
    expect_error(op->linear(be, &xdev, &w, SQ_WEIGHT_OUT_IN, NULL, 0, &y), SQ_ERR_INVALID_ARG,
                 "host");

    /* norms, elementwise */
    expect_error(op->layernorm(be, &x, &v6, NULL, 1e-5f, &x), SQ_ERR_INVALID_ARG, "layernorm");
    expect_error(op->layernorm(be, &x, &v8, NULL, -1.0f, &x), SQ_ERR_INVALID_ARG, "eps");
    expect_error(op->rmsnorm(be, &x, &v8, 1e-5f, &y), SQ_ERR_INVALID_ARG, "rmsnorm");
    expect_error(op->activation(be, (sq_act_t)99, &x), SQ_ERR_INVALID_ARG, "activation");
    expect_error(op->glu(be, SQ_ACT_SILU, &x, &y, &x), SQ_ERR_INVALID_ARG, "glu");
    sq_tensor_t shifted = sq_tensor_2d(buf + 1, SQ_DTYPE_F32, 4, 8);
    sq_tensor_t up = sq_tensor_2d(buf + 2048, SQ_DTYPE_F32, 4, 8);
    expect_error(op->glu(be, SQ_ACT_SILU, &x, &up, &shifted), SQ_ERR_INVALID_ARG, "overlap");
    expect_error(op->add(be, &x, &y), SQ_ERR_INVALID_ARG, "add");

    /* embedding */
    int32_t ids[4] = {0, 1, 6, 2};
    sq_tensor_t ey = sq_tensor_2d(buf + 1024, SQ_DTYPE_F32, 4, 8);
    expect_error(op->embedding(be, &w, ids, 4, 0, &ey), SQ_ERR_RANGE, "ids[2] = 6");
    expect_error(op->embedding(be, &w, ids, 5, 0, &ey), SQ_ERR_INVALID_ARG, "embedding");
    expect_error(op->embedding(be, &w, NULL, 2, 0, &ey), SQ_ERR_INVALID_ARG, "ids");
    expect_error(op->embedding(be, &w, ids, 2, 0, &y), SQ_ERR_INVALID_ARG, "cols");

    /* rope */
    int32_t pos[4] = {0, 1, 2, -3};
    expect_error(op->rope(be, SQ_ROPE_HALF, &x, 2, 3, pos, 1e4f), SQ_ERR_INVALID_ARG, "even");
    expect_error(op->rope(be, SQ_ROPE_HALF, &x, 4, 4, pos, 1e4f), SQ_ERR_INVALID_ARG, "cols");
    expect_error(op->rope(be, SQ_ROPE_HALF, &x, 2, 4, pos, 1e4f), SQ_ERR_RANGE, "pos[3]");
    expect_error(op->rope(be, (sq_rope_style_t)5, &x, 2, 4, pos, 1e4f), SQ_ERR_INVALID_ARG,
                 "style");
    expect_error(op->rope(be, SQ_ROPE_HALF, &x, 2, 4, pos, 0.0f), SQ_ERR_INVALID_ARG, "theta");

    /* attention: q [4, 8] = 2 seqs x 2 tokens, 2 heads of 4 */
    sq_tensor_t q = sq_tensor_2d(buf, SQ_DTYPE_F32, 4, 8);
    sq_tensor_t k = sq_tensor_2d(buf + 512, SQ_DTYPE_F32, 4, 4);
    sq_tensor_t vv = sq_tensor_2d(buf + 768, SQ_DTYPE_F32, 4, 4);
    sq_tensor_t o = sq_tensor_2d(buf + 1024, SQ_DTYPE_F32, 4, 8);
    assert_int_equal(op->attention(be, &q, &k, &vv, 2, 2, 2, 1, 4, 0.5f, &o), SQ_OK);
    expect_error(op->attention(be, &q, &k, &vv, 2, 2, 2, 3, 4, 0.5f, &o), SQ_ERR_INVALID_ARG,
                 "attention");
    expect_error(op->attention(be, &q, &k, &vv, 1, 2, 2, 1, 4, 0.5f, &o), SQ_ERR_INVALID_ARG,
                 "rows");
    expect_error(op->attention(be, &q, &k, &vv, 2, 2, 2, 2, 4, 0.5f, &o), SQ_ERR_INVALID_ARG,
                 "cols");
    expect_error(op->attention(be, &q, &k, &vv, 2, 2, 2, 1, 4, 0.5f, &q), SQ_ERR_INVALID_ARG,
                 "overlap");
    expect_error(op->attention(be, &q, &k, &vv, 2, 2, 2, 1, 4, NAN, &o), SQ_ERR_INVALID_ARG,
                 "scale");

    /* attention scratch must have been reserved for T */
    sq_backend_t *small = NULL;
    assert_int_equal(sq_backend_cpu_create(2, &small), SQ_OK);
    expect_error(small->ops->attention(small, &q, &k, &vv, 2, 2, 2, 1, 4, 0.5f, &o),
                 SQ_ERR_INVALID_ARG, "attention");
    sq_backend_limits_t lim = {.max_rows = 4, .max_seq = 1, .max_heads = 2, .max_cols = 8};
    assert_int_equal(small->ops->reserve(small, &lim), SQ_OK);
    expect_error(small->ops->attention(small, &q, &k, &vv, 2, 2, 2, 1, 4, 0.5f, &o),
                 SQ_ERR_INVALID_ARG, "max_seq");
    lim.max_seq = 2;
    assert_int_equal(small->ops->reserve(small, &lim), SQ_OK);
    assert_int_equal(small->ops->attention(small, &q, &k, &vv, 2, 2, 2, 1, 4, 0.5f, &o), SQ_OK);
    lim.max_seq = 1; /* grows only: still fine for T = 2 */
    assert_int_equal(small->ops->reserve(small, &lim), SQ_OK);
    assert_int_equal(small->ops->attention(small, &q, &k, &vv, 2, 2, 2, 1, 4, 0.5f, &o), SQ_OK);
    lim.max_seq = -1;
    expect_error(small->ops->reserve(small, &lim), SQ_ERR_INVALID_ARG, "reserve");
    expect_error(small->ops->reserve(small, NULL), SQ_ERR_INVALID_ARG, "reserve");
    sq_backend_destroy(small);

    /* cross-entropy */
    int32_t tg[4] = {0, 7, 8, -5};
    float nll[4];
    expect_error(op->cross_entropy(be, &x, tg, nll), SQ_ERR_RANGE, "targets[2] = 8");
    expect_error(op->cross_entropy(be, &x, tg, NULL), SQ_ERR_INVALID_ARG, "cross_entropy");
    expect_error(op->cross_entropy(be, &w16, tg, nll), SQ_ERR_INVALID_ARG, "F16");

    expect_error(sq_backend_cpu_create(1, NULL), SQ_ERR_INVALID_ARG, NULL);
}

/* ---- determinism ---- */

/* Same inputs twice on one backend, and on 1 vs 3 threads for the ops whose
 * work split does not touch the arithmetic: bitwise equal results. */
static void test_determinism(void **state)
{
    backends_t *bs = *state;
    int B = 2, T = 100, H = 4, K = 2, D = 32;
    int64_t n = (int64_t)B * T, vocab = 5000;
    mat_t q = mat_dense(n, H * D), k = mat_dense(n, K * D), v = mat_dense(n, K * D);
    mat_t logits = mat_dense(n, vocab), w = mat_dense(vocab, H * D);
    mat_fill(&q, -2, 2), mat_fill(&k, -2, 2), mat_fill(&v, -2, 2), mat_fill(&w, -1, 1);
    int32_t *tg = malloc((size_t)n * sizeof *tg);
    assert_non_null(tg);
    for (int64_t i = 0; i < n; i++)
        tg[i] = rng_int(0, (int)vocab);
    float *out[3], *nll[3], *lg[3];
    for (int run = 0; run < 3; run++) {
        sq_backend_t *be = bs->be[run == 0 ? 0 : 1];
        out[run] = malloc((size_t)(n * H * D) * sizeof(float));
        nll[run] = malloc((size_t)n * sizeof(float));
        lg[run] = malloc((size_t)(n * vocab) * sizeof(float));
        assert_true(out[run] && nll[run] && lg[run]);
        sq_tensor_t o = sq_tensor_2d(out[run], SQ_DTYPE_F32, n, H * D);
        sq_tensor_t l = sq_tensor_2d(lg[run], SQ_DTYPE_F32, n, vocab);
        assert_int_equal(be->ops->attention(be, &q.t, &k.t, &v.t, B, T, H, K, D, 0.2f, &o), SQ_OK);
        assert_int_equal(be->ops->linear(be, &o, &w.t, SQ_WEIGHT_OUT_IN, NULL, 0, &l), SQ_OK);
        assert_int_equal(be->ops->cross_entropy(be, &logits.t, tg, nll[run]), SQ_OK);
    }
    /* runs 1 and 2: same 3-thread backend */
    assert_memory_equal(out[1], out[2], (size_t)(n * H * D) * sizeof(float));
    assert_memory_equal(lg[1], lg[2], (size_t)(n * vocab) * sizeof(float));
    assert_memory_equal(nll[1], nll[2], (size_t)n * sizeof(float));
    /* runs 0 and 1: 1 vs 3 threads, for the thread-independent ops */
    assert_memory_equal(out[0], out[1], (size_t)(n * H * D) * sizeof(float));
    assert_memory_equal(nll[0], nll[1], (size_t)n * sizeof(float));
    for (int run = 0; run < 3; run++)
        free(out[run]), free(nll[run]), free(lg[run]);
    free(tg);
    mat_free(&q), mat_free(&k), mat_free(&v), mat_free(&logits), mat_free(&w);
}

/* ---- vmath.h against libm ---- */

static void test_vexp(void **state)
{
    (void)state;
    double worst = 0.0;
    for (float x = -87.0f; x < 88.3f; x += 0.0137f) {
        double want = exp((double)x);
        double rel = fabs(sq_vexpf(x) - want) / want;
        if (rel > worst) worst = rel;
    }
    if (!(worst <= TOL_VEXP_REL)) fail_msg("sq_vexpf: worst relative error %.3g", worst);
    assert_true(sq_vexpf(-INFINITY) == 0.0f);
    assert_true(sq_vexpf(-1000.0f) == 0.0f);
    assert_true(isnan(sq_vexpf(NAN)));
    assert_true(isfinite(sq_vexpf(1000.0f)));
    assert_true(sq_vexpf(0.0f) == 1.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vexp),
        cmocka_unit_test_setup_teardown(test_linear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_norms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_activation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_glu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embedding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rope_pairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_entropy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_determinism, setup, teardown),
    };
    return cmocka_run_group_tests_name("cpu_ops", tests, NULL, NULL);
}

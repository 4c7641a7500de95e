/* ZO kernels: the vectorised normals match the scalar reference bit for bit,
 * slices perturb like the whole tensor, and the update is exactly the formula
 * w -= lr * (mean_k g_k z_k + wd w). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/cpu/cpu_zo.h"
#include "../../kernels/cpu/zo_normals.h"
#include "sparq/zo_rng.h"

static void test_normals16_matches_reference(void **state)
{
    (void)state;
    float o[64], r[4];
    for (uint64_t b0 = 0; b0 < 4096; b0 += 16) {
        sq_zo_normals16(0x1234567890abcdefull, 0xfeedull << 33, b0 + (1ull << 32), o);
        for (int l = 0; l < 16; l++) {
            sq_zo_normal4(0x1234567890abcdefull, 0xfeedull << 33, b0 + (1ull << 32) + l, r);
            assert_memory_equal(&o[4 * l], r, sizeof r);
        }
    }
}

static void test_normal_moments(void **state)
{
    (void)state;
    double m = 0, v = 0;
    const int n = 1 << 20;
    float z[4];
    for (int k = 0; k < n / 4; k++) {
        sq_zo_normal4(3, 4, (uint64_t)k, z);
        for (int j = 0; j < 4; j++) m += z[j], v += (double)z[j] * z[j];
    }
    m /= n;
    v = v / n - m * m;
    assert_true(fabs(m) < 5.0 / sqrt(n)); /* 5 sigma */
    assert_true(fabs(v - 1.0) < 0.01);
    /* the id comes from the name, not from anything else */
    assert_true(sq_zo_tensor_id("a.weight") == sq_zo_tensor_id("a.weight"));
    assert_true(sq_zo_tensor_id("a.weight") != sq_zo_tensor_id("a.bias"));
}

static void test_perturb_slices_and_mask(void **state)
{
    (void)state;
    enum { N = 1000 };
    float w[N], full[N], part[N];
    uint8_t mask[N];
    for (int i = 0; i < N; i++) w[i] = (float)i * 0.001f, mask[i] = (uint8_t)(i % 3 != 0);
    sq_tensor_t tw = sq_tensor_1d(w, SQ_DTYPE_F32, N), tf = sq_tensor_1d(full, SQ_DTYPE_F32, N);
    SQ_CHECK(sq_cpu_zo_perturb(NULL, &tw, 11, 22, 0, 0.5f, NULL, &tf));
    for (int i = 0; i < N; i += 4) { /* against the scalar twin */
        float z[4];
        sq_zo_normal4(11, 22, (uint64_t)i / 4, z);
        for (int j = 0; j < 4 && i + j < N; j++)
            assert_true(full[i + j] == fmaf(0.5f, z[j], w[i + j]));
    }
    /* any slice [a, b) with offset a gives the same elements */
    const int cuts[][2] = {{0, 1}, {3, 70}, {63, 64}, {64, 129}, {500, 1000}, {999, 1000}};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        int a = cuts[c][0], b = cuts[c][1];
        sq_tensor_t ts = sq_tensor_1d(w + a, SQ_DTYPE_F32, b - a);
        sq_tensor_t tp = sq_tensor_1d(part, SQ_DTYPE_F32, b - a);
        SQ_CHECK(sq_cpu_zo_perturb(NULL, &ts, 11, 22, a, 0.5f, NULL, &tp));
        assert_memory_equal(part, full + a, sizeof(float) * (size_t)(b - a));
    }
    /* in place, masked: masked-out elements unchanged */
    memcpy(part, w, sizeof w);
    sq_tensor_t tin = sq_tensor_1d(part, SQ_DTYPE_F32, N);
    SQ_CHECK(sq_cpu_zo_perturb(NULL, &tin, 11, 22, 0, 0.5f, mask, &tin));
    for (int i = 0; i < N; i++) assert_true(part[i] == (mask[i] ? full[i] : w[i]));
}

static void test_update_formula(void **state)
{
    (void)state;
    enum { N = 333 };
    float w[N], want[N];
    uint64_t seeds[3] = {101, 202, 303};
    float g[3] = {0.7f, -1.3f, 0.05f};
    const float lr = 0.01f, wd = 0.1f;
    for (int i = 0; i < N; i++) w[i] = sinf((float)i);
    for (int i = 0; i < N; i++) { /* the formula, with the scalar generator */
        float acc = 0;
        for (int k = 0; k < 3; k++) {
            float z[4];
            sq_zo_normal4(seeds[k], 77, (uint64_t)i / 4, z);
            acc = fmaf(g[k], z[i % 4], acc);
        }
        float step = fmaf(wd, w[i], acc * (1.0f / 3.0f));
        want[i] = w[i] - lr * step;
    }
    sq_tensor_t tw = sq_tensor_1d(w, SQ_DTYPE_F32, N);
    SQ_CHECK(sq_cpu_zo_update(NULL, &tw, 3, seeds, g, 77, lr, wd, NULL));
    assert_memory_equal(w, want, sizeof w);
    assert_int_equal(sq_cpu_zo_update(NULL, &tw, 0, seeds, g, 77, lr, wd, NULL),
                     SQ_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normals16_matches_reference),
        cmocka_unit_test(test_normal_moments),
        cmocka_unit_test(test_perturb_slices_and_mask),
        cmocka_unit_test(test_update_formula),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

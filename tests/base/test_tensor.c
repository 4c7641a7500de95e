/* base: dtype conversions, views, arena. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "sparq/tensor.h"

static void test_f16_roundtrip_all(void **state)
{
    (void)state;
    /* every finite half converts to float and back to itself */
    for (uint32_t h = 0; h < 0x10000u; h++) {
        uint32_t e = (h >> 10) & 0x1f;
        float f = sq_f16_to_f32((uint16_t)h);
        if (e == 31 && (h & 0x3ff)) {
            assert_true(isnan(f));
            continue;
        }
        assert_int_equal(sq_f32_to_f16(f), h);
    }
}

static void test_f16_rounding(void **state)
{
    (void)state;
    assert_int_equal(sq_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(sq_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(sq_f32_to_f16(65520.0f), 0x7c00); /* overflow */
    assert_int_equal(sq_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); /* tie to even */
    assert_int_equal(sq_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
    assert_int_equal(sq_f32_to_f16(0x1p-24f), 0x0001); /* smallest subnormal */
    assert_int_equal(sq_f32_to_f16(0x1p-25f), 0x0000); /* tie to even -> 0 */
    assert_int_equal(sq_f32_to_f16(0x1.8p-25f), 0x0001);
    assert_int_equal(sq_f32_to_f16(-2.0f), 0xc000);
}

static void test_bf16(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float f = sq_bf16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        assert_int_equal(sq_f32_to_bf16(f), h);
    }
    assert_int_equal(sq_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80); /* tie to even */
    assert_int_equal(sq_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-12f), 0x3f81);
}

static void test_views(void **state)
{
    (void)state;
    float buf[6 * 4];
    for (int i = 0; i < 24; i++) buf[i] = (float)i;
    sq_tensor_t t = sq_tensor_2d(buf, SQ_DTYPE_F32, 6, 4);
    sq_tensor_t c = sq_tensor_cols_view(&t, 1, 2);
    assert_int_equal(sq_tensor_ld(&c), 4);
    assert_int_equal(sq_tensor_cols(&c), 2);
    sq_tensor_t r = sq_tensor_rows_view(&c, 2, 3);
    assert_int_equal(sq_tensor_rows(&r), 3);
    assert_true(((float *)r.data)[0] == 9.0f);
    assert_int_equal(sq_tensor_ld(&r), 4);
}

static void test_arena(void **state)
{
    (void)state;
    sq_arena_t a;
    assert_int_equal(sq_arena_create(256, &a), SQ_OK);
    void *p, *q;
    assert_int_equal(sq_arena_alloc(&a, 10, "p", &p), SQ_OK);
    assert_int_equal(((uintptr_t)p) % 64, 0);
    assert_int_equal(sq_arena_alloc(&a, 100, "q", &q), SQ_OK);
    assert_true((uint8_t *)q - (uint8_t *)p == 64);
    assert_int_equal(sq_arena_alloc(&a, 200, "too big", &q), SQ_ERR_NOMEM);
    assert_non_null(strstr(sq_error_last(), "too big"));
    sq_arena_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_roundtrip_all), cmocka_unit_test(test_f16_rounding),
        cmocka_unit_test(test_bf16),              cmocka_unit_test(test_views),
        cmocka_unit_test(test_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Philox4x32-10 against the Random123 known-answer vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sparq/philox.h"

static void test_kat(void **state)
{
    (void)state;
    /* Random123 kat_vectors: philox4x32 10 rounds */
    const uint32_t ctr0[4] = {0, 0, 0, 0}, key0[2] = {0, 0};
    const uint32_t exp0[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    const uint32_t ctr1[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    const uint32_t key1[2] = {0xffffffffu, 0xffffffffu};
    const uint32_t exp1[4] = {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu};
    const uint32_t ctr2[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
    const uint32_t key2[2] = {0xa4093822u, 0x299f31d0u};
    const uint32_t exp2[4] = {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u};
    uint32_t out[4];
    sq_philox4x32_10(ctr0, key0, out);
    for (int i = 0; i < 4; i++) assert_int_equal(out[i], exp0[i]);
    sq_philox4x32_10(ctr1, key1, out);
    for (int i = 0; i < 4; i++) assert_int_equal(out[i], exp1[i]);
    sq_philox4x32_10(ctr2, key2, out);
    for (int i = 0; i < 4; i++) assert_int_equal(out[i], exp2[i]);
}

static void test_uniform_range(void **state)
{
    (void)state;
    assert_true(sq_philox_uniform(0) > 0.0f);
    assert_true(sq_philox_uniform(0xffffffffu) < 1.0f);
    double sum = 0;
    const int n = 1 << 16;
    for (int i = 0; i < n / 4; i++) {
        uint32_t b[4];
        sq_philox_block(42, 7, (uint64_t)i, b);
        for (int j = 0; j < 4; j++) sum += sq_philox_uniform(b[j]);
    }
    double mean = sum / n; /* sd of the mean = sqrt(1/12/n) ~ 0.0011 */
    assert_true(mean > 0.495 && mean < 0.505);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_kat),
                                       cmocka_unit_test(test_uniform_range)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

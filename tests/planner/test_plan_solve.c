/* The stage-boundary search against brute force on random profiles: the
 * slowest stage is optimal, the memory cap holds, and among partitions within
 * the slack the plan sends the fewest bytes; balance-only balances compute. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sparq/planner.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static sq_plan_profile_t *random_profile(int U)
{
    sq_plan_profile_t *p = calloc(1, sizeof *p);
    p->n_units = U;
    p->units = calloc((size_t)U, sizeof *p->units);
    p->cands = calloc((size_t)U, sizeof *p->cands);
    p->B = 4, p->T = 16, p->tokens_per_micro = 64, p->fwd_per_step = 4;
    for (int u = 0; u < U; u++) {
        p->units[u].fwd_s = 1e-3 * (0.2 + urand());
        p->units[u].update_s = 1e-4 * urand();
        p->units[u].param_bytes = (size_t)(1e6 * (0.5 + urand()));
        p->units[u].act_bytes = (size_t)(1e5 * (0.5 + urand()));
        snprintf(p->units[u].name, sizeof p->units[u].name, "u%d", u);
    }
    for (int i = 0; i < U - 1; i++) {
        sq_plan_cand_t *c = &p->cands[i];
        c->cand.unit = i + 1;
        snprintf(c->cand.name, sizeof c->cand.name, "c%d", i + 1);
        c->fp16_bytes_per_token = urand() < 0.3 ? 1000 : 200;
        c->use = (int)(urand() * SQ_PLAN_N_BITS);
        c->codec_bytes[c->use] = c->fp16_bytes_per_token * (0.05 + 0.5 * urand());
        c->enc_s[c->use] = 1e-5 * urand();
        c->dec_s[c->use] = 1e-5 * urand();
    }
    return p;
}

/* Brute force over every placement of S-1 cuts. */
typedef struct best {
    double opt;            /* optimal bottleneck (time_s, or compute_s for balance-only) */
    double min_bytes;      /* fewest bytes among partitions within (1 + slack) x opt */
} best_t;

static double objective(const sq_plan_t *pl, int balance_only)
{
    return balance_only ? pl->compute_bottleneck_s : pl->bottleneck_s;
}

static int fits(const sq_plan_t *pl, double cap)
{
    for (int s = 0; s < pl->stages; s++)
        if (cap > 0 && pl->st[s].mem_bytes > cap) return 0;
    return 1;
}

static void enumerate(const sq_plan_profile_t *p, const sq_plan_opts_t *o, int *cuts, int s,
                      double limit, best_t *b)
{
    const int S = o->stages, U = p->n_units;
    if (s == S) {
        cuts[S] = U;
        sq_plan_t pl;
        sq_plan_evaluate(p, o, cuts, &pl);
        if (!fits(&pl, o->mem_cap_bytes)) return;
        const double v = objective(&pl, o->balance_only);
        if (limit < 0) {
            if (v < b->opt) b->opt = v;
        } else if (v <= limit && pl.bytes_per_token < b->min_bytes) {
            b->min_bytes = pl.bytes_per_token;
        }
        return;
    }
    for (int c = cuts[s - 1] + 1; c <= U - (S - s); c++) {
        cuts[s] = c;
        enumerate(p, o, cuts, s + 1, limit, b);
    }
}

static void check_against_brute_force(const sq_plan_profile_t *p, const sq_plan_opts_t *o)
{
    sq_plan_t pl;
    sq_status_t st = sq_plan_solve(p, o, &pl);
    int cuts[SQ_PLAN_MAX_STAGES + 1] = {0};
    best_t b = {INFINITY, INFINITY};
    enumerate(p, o, cuts, 1, -1, &b);
    if (!isfinite(b.opt)) {
        assert_int_equal(st, SQ_ERR_RANGE);
        return;
    }
    assert_int_equal(st, SQ_OK);
    assert_true(fits(&pl, o->mem_cap_bytes));
    const double got = objective(&pl, o->balance_only);
    if (o->balance_only) {
        assert_true(fabs(got - b.opt) <= 1e-12 * b.opt);
        return;
    }
    const double limit = b.opt * (1 + o->slack) * (1 + 1e-12);
    assert_true(got <= limit);
    enumerate(p, o, cuts, 1, limit, &b);
    assert_true(fabs(pl.bytes_per_token - b.min_bytes) <= 1e-9 * b.min_bytes);
    if (o->slack == 0) assert_true(fabs(got - b.opt) <= 1e-12 * b.opt);
}

static void free_profile(sq_plan_profile_t *p)
{
    free(p->units);
    free(p->cands);
    free(p);
}

static void test_matches_brute_force(void **state)
{
    (void)state;
    for (int trial = 0; trial < 300; trial++) {
        const int U = 3 + (int)(urand() * 9); /* 3 .. 11 units */
        sq_plan_profile_t *p = random_profile(U);
        sq_plan_opts_t o = {.stages = 1 + (int)(urand() * (U < 5 ? U : 5)),
                            .link_bytes_per_s = urand() < 0.3 ? 0 : 1e6 * (0.1 + urand()),
                            .slack = urand() < 0.3 ? 0.0 : 0.2 * urand(),
                            .balance_only = urand() < 0.25};
        if (urand() < 0.3) o.mem_cap_bytes = 1e6 * (1 + 4 * urand());
        check_against_brute_force(p, &o);
        free_profile(p);
    }
}

static void test_errors(void **state)
{
    (void)state;
    sq_plan_profile_t *p = random_profile(5);
    sq_plan_t pl;
    sq_plan_opts_t o = {.stages = 6};
    assert_int_equal(sq_plan_solve(p, &o, &pl), SQ_ERR_INVALID_ARG);
    o.stages = 2;
    o.mem_cap_bytes = 1.0; /* nothing fits */
    assert_int_equal(sq_plan_solve(p, &o, &pl), SQ_ERR_RANGE);
    assert_non_null(strstr(sq_error_last(), "memory cap"));
    free_profile(p);
}

/* Sparsity matters: with equal compute everywhere, the cut goes to the
 * candidate sending the fewest bytes, and balance-only does not look. */
static void test_prefers_sparse_boundary(void **state)
{
    (void)state;
    sq_plan_profile_t *p = random_profile(8);
    for (int u = 0; u < 8; u++) p->units[u].fwd_s = 1e-3, p->units[u].update_s = 0;
    for (int i = 0; i < 7; i++) p->cands[i].codec_bytes[p->cands[i].use] = 100;
    p->cands[4].codec_bytes[p->cands[4].use] = 10; /* boundary before unit 5 */
    sq_plan_opts_t o = {.stages = 2, .link_bytes_per_s = 1e9, .slack = 0.3};
    sq_plan_t pl;
    assert_int_equal(sq_plan_solve(p, &o, &pl), SQ_OK);
    assert_int_equal(pl.st[1].begin, 5);
    o.balance_only = 1;
    assert_int_equal(sq_plan_solve(p, &o, &pl), SQ_OK);
    assert_int_equal(pl.st[1].begin, 4);
    free_profile(p);
}

/* Bits per boundary: the fewest bytes among the bit widths that keep the
 * gradient correlation, 8-bit where none does. */
static void test_choose_bits(void **state)
{
    (void)state;
    sq_plan_profile_t *p = random_profile(3);
    const double corr[2][3] = {{0.999, 0.97, 0.5}, {0.9, 0.8, 0.7}};
    for (int i = 0; i < 2; i++)
        for (int b = 0; b < 3; b++) {
            p->cands[i].fid_steps = 8;
            p->cands[i].fid_corr[b] = corr[i][b];
            p->cands[i].codec_bytes[b] = 100.0 / (1 << b);
        }
    assert_int_equal(sq_plan_choose_bits(p, 0.95), 1);
    assert_int_equal(sq_plan_bits[p->cands[0].use], 4);
    assert_int_equal(sq_plan_bits[p->cands[1].use], 8);
    assert_int_equal(sq_plan_choose_bits(p, 0.6), 0);
    assert_int_equal(sq_plan_bits[p->cands[1].use], 2);
    free_profile(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_brute_force),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_prefers_sparse_boundary),
        cmocka_unit_test(test_choose_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

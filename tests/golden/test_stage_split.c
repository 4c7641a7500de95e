/* Splitting a model into stages at any split candidate gives bit-identical
 * results to the whole model: each stage loads only its unit range, and the
 * boundary tensors are the only state that crosses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "sparq/model.h"

enum { B = 2, T = 9 };

static const char *const models[] = {
    SQ_REPO_DIR "/models/opt-mini",
    SQ_REPO_DIR "/models/gpt2-random",
    SQ_REPO_DIR "/models/llama-random",
    SQ_REPO_DIR "/models/stories260K/stories260K.bin",
};

static void make_batch(int vocab, int32_t *tok, int32_t *tgt)
{
    uint32_t x = 99;
    for (int i = 0; i < B * T; i++) {
        x = x * 1103515245u + 12345u;
        tok[i] = (int32_t)((x >> 8) % (uint32_t)vocab);
    }
    for (int i = 0; i < B * T; i++) tgt[i] = (i + 1) % T ? tok[i + 1] : -1;
}

/* Run stages [cuts[0]=0, cuts[1]), ..., [cuts[n-1], units) and return NLLs. */
static void run_split(sq_backend_t *be, const char *path, const int *cuts, int n, int units,
                      const int32_t *tok, const int32_t *tgt, float *nll)
{
    sq_batch_t batch = {.B = B, .T = T, .tokens = tok, .targets = tgt};
    sq_model_t *prev = NULL;
    for (int s = 0; s < n; s++) {
        sq_model_t *m;
        sq_model_load_opts_t lo = {.unit_begin = cuts[s],
                                   .unit_end = s + 1 < n ? cuts[s + 1] : units,
                                   .max_batch = B,
                                   .max_seq = T};
        SQ_CHECK(sq_model_load(path, &lo, be, &m));
        if (prev) { /* hand the boundary over, as the transport would */
            sq_boundary_t out, in;
            SQ_CHECK(sq_model_output_boundary(prev, B, T, &out));
            SQ_CHECK(sq_model_input_boundary(m, B, T, &in));
            assert_int_equal(out.n_tensors, in.n_tensors);
            for (int k = 0; k < in.n_tensors; k++) {
                assert_string_equal(out.names[k], in.names[k]);
                assert_int_equal(sq_tensor_numel(&out.t[k]), sq_tensor_numel(&in.t[k]));
                memcpy(in.t[k].data, out.t[k].data, (size_t)sq_tensor_numel(&in.t[k]) * 4);
            }
            sq_model_destroy(prev);
        }
        sq_head_out_t head = {.nll = nll};
        SQ_CHECK(sq_model_forward(m, &batch, s + 1 == n ? &head : NULL));
        prev = m;
    }
    sq_model_destroy(prev);
}

static void test_every_cut(void **state)
{
    (void)state;
    sq_backend_t *be;
    SQ_CHECK(sq_backend_cpu_create(1, &be));
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        sq_model_t *full;
        sq_model_load_opts_t lo = {.max_batch = B, .max_seq = T};
        SQ_CHECK(sq_model_load(models[mi], &lo, be, &full));
        const sq_model_config_t cfg_copy = *sq_model_config(full), *cfg = &cfg_copy;
        int units = sq_model_unit_count(cfg);
        int32_t tok[B * T], tgt[B * T];
        float want[B * T], got[B * T];
        make_batch(cfg->vocab_size, tok, tgt);
        sq_batch_t batch = {.B = B, .T = T, .tokens = tok, .targets = tgt};
        sq_head_out_t head = {.nll = want};
        SQ_CHECK(sq_model_forward(full, &batch, &head));
        sq_model_destroy(full);

        sq_split_candidate_t cand[256];
        int nc = sq_model_split_candidates(cfg, cand, 256);
        assert_int_equal(nc, units - 1);
        for (int c = 0; c < nc; c++) { /* two stages, cut at every candidate */
            int cuts[2] = {0, cand[c].unit};
            memset(got, 0xff, sizeof got);
            run_split(be, models[mi], cuts, 2, units, tok, tgt, got);
            if (memcmp(got, want, sizeof got) != 0)
                fail_msg("%s: cut at %s (unit %d) changed the NLL", models[mi], cand[c].name,
                         cand[c].unit);
        }
        /* unit by unit on one model equals the whole forward */
        SQ_CHECK(sq_model_load(models[mi], &lo, be, &full));
        for (int u = 0; u < units; u++) {
            memset(got, 0xff, sizeof got);
            head.nll = got;
            SQ_CHECK(sq_model_forward_units(full, &batch, u, u + 1, u + 1 == units ? &head : NULL));
        }
        assert_memory_equal(got, want, sizeof got);
        sq_boundary_t bd;
        assert_int_equal(sq_model_boundary(full, units + 1, B, T, &bd), SQ_ERR_RANGE);
        sq_model_destroy(full);

        int cuts3[3] = {0, 2, units - 2}; /* three stages, cuts inside blocks */
        run_split(be, models[mi], cuts3, 3, units, tok, tgt, got);
        assert_memory_equal(got, want, sizeof got);
    }
    sq_backend_destroy(be);
}

static void test_stage_loads_only_its_tensors(void **state)
{
    (void)state;
    sq_backend_t *be;
    SQ_CHECK(sq_backend_cpu_create(1, &be));
    sq_model_t *m;
    const char *path = SQ_REPO_DIR "/models/opt-mini";
    /* layer 2's attention only: LN1 (2) + q/k/v/out weights and biases (8) */
    sq_model_load_opts_t lo = {.unit_begin = 7, .unit_end = 8, .max_batch = 1, .max_seq = 4};
    SQ_CHECK(sq_model_load(path, &lo, be, &m));
    assert_int_equal(sq_model_param_count(m), 10);
    for (int i = 0; i < sq_model_param_count(m); i++)
        assert_non_null(strstr(sq_model_param(m, i)->name, "layers.2.self_attn"));
    sq_model_destroy(m);
    /* the head of a tied model carries the embedding matrix */
    const sq_model_config_t *cfg;
    lo = (sq_model_load_opts_t){.unit_begin = 0, .unit_end = 1, .max_batch = 1, .max_seq = 4};
    SQ_CHECK(sq_model_load(path, &lo, be, &m));
    cfg = sq_model_config(m);
    int units = sq_model_unit_count(cfg);
    sq_model_destroy(m);
    lo.unit_begin = units - 1;
    lo.unit_end = units;
    SQ_CHECK(sq_model_load(path, &lo, be, &m));
    assert_int_equal(sq_model_param_count(m), 3);
    int has_embed = 0;
    for (int i = 0; i < 3; i++)
        has_embed |= !strcmp(sq_model_param(m, i)->name, "model.decoder.embed_tokens.weight");
    assert_true(has_embed);
    sq_model_destroy(m);
    sq_backend_destroy(be);
}

static void test_bad_ranges(void **state)
{
    (void)state;
    sq_backend_t *be;
    sq_model_t *m = NULL;
    SQ_CHECK(sq_backend_cpu_create(1, &be));
    const char *path = SQ_REPO_DIR "/models/gpt2-random";
    sq_model_load_opts_t lo = {.unit_begin = 5, .unit_end = 3};
    assert_int_equal(sq_model_load(path, &lo, be, &m), SQ_ERR_RANGE);
    lo = (sq_model_load_opts_t){.unit_begin = 0, .unit_end = 99};
    assert_int_equal(sq_model_load(path, &lo, be, &m), SQ_ERR_RANGE);
    lo = (sq_model_load_opts_t){.max_seq = 65}; /* n_positions is 64 */
    assert_int_equal(sq_model_load(path, &lo, be, &m), SQ_ERR_RANGE);
    assert_int_equal(sq_model_load(SQ_REPO_DIR "/models/no-such-model", NULL, be, &m) == SQ_OK, 0);
    assert_null(m);
    lo = (sq_model_load_opts_t){.max_batch = 1, .max_seq = 8};
    SQ_CHECK(sq_model_load(path, &lo, be, &m));
    int32_t tok[16] = {0}, tgt[16];
    for (int i = 0; i < 16; i++) tgt[i] = -1;
    sq_batch_t big = {.B = 2, .T = 8, .tokens = tok, .targets = tgt};
    assert_int_equal(sq_model_forward(m, &big, NULL), SQ_ERR_RANGE);
    tok[3] = 5000; /* vocab is 1000 */
    sq_batch_t bad = {.B = 1, .T = 8, .tokens = tok, .targets = tgt};
    assert_int_equal(sq_model_forward(m, &bad, NULL), SQ_ERR_RANGE);
    sq_model_destroy(m);
    sq_backend_destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_cut),
        cmocka_unit_test(test_stage_loads_only_its_tensors),
        cmocka_unit_test(test_bad_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The forward of a stage's units, through the backend ops only. */
#include "model_internal.h"

#include <math.h>
#include <string.h>

#define SQ_OP(be, op, ...) (be)->ops->op((be), __VA_ARGS__)

static sq_tensor_t rows_f32(float *p, int64_t rows, int64_t cols)
{
    return sq_tensor_2d(p, SQ_DTYPE_F32, rows, cols);
}

#define P(m, s, layer) sq_model_slot_tensor((m), (s), (layer))

static sq_status_t norm(sq_model_t *m, const sq_tensor_t *x, sq_slot_t w, sq_slot_t b, int layer,
                        sq_tensor_t *y)
{
    sq_backend_t *be = m->be;
    if (m->cfg.norm == SQ_NORM_RMS) return SQ_OP(be, rmsnorm, x, P(m, w, layer), m->cfg.norm_eps, y);
    return SQ_OP(be, layernorm, x, P(m, w, layer), P(m, b, layer), m->cfg.norm_eps, y);
}

static sq_status_t unit_embed(sq_model_t *m, const sq_batch_t *bt, int64_t N)
{
    sq_backend_t *be = m->be;
    const sq_model_config_t *c = &m->cfg;
    sq_tensor_t h = rows_f32(m->h, N, c->d_model);
    if (!bt->tokens) return sq_error_set(SQ_ERR_INVALID_ARG, "forward: the embed unit needs tokens");
    SQ_TRY(SQ_OP(be, embedding, P(m, SQ_SLOT_EMBED, -1), bt->tokens, N, 0, &h));
    if (c->learned_pos)
        SQ_TRY(SQ_OP(be, embedding, P(m, SQ_SLOT_POS, -1), m->pos_ids, N, 1, &h));
    return SQ_OK;
}

static sq_status_t unit_attn(sq_model_t *m, int l, const sq_batch_t *bt, int64_t N)
{
    sq_backend_t *be = m->be;
    const sq_model_config_t *c = &m->cfg;
    const int H = c->n_heads, K = c->n_kv_heads, D = c->head_dim;
    const int64_t HD = (int64_t)H * D, KD = (int64_t)K * D;
    const sq_wlayout_t lay = sq_model_wlayout(c);
    sq_tensor_t h = rows_f32(m->h, N, c->d_model), x = rows_f32(m->x, N, c->d_model);
    sq_tensor_t qkv = rows_f32(m->qkv, N, HD + 2 * KD);
    sq_tensor_t q = sq_tensor_cols_view(&qkv, 0, HD);
    sq_tensor_t k = sq_tensor_cols_view(&qkv, HD, KD);
    sq_tensor_t v = sq_tensor_cols_view(&qkv, HD + KD, KD);
    sq_tensor_t att = rows_f32(m->att, N, HD);

    SQ_TRY(norm(m, &h, SQ_SLOT_LN1_W, SQ_SLOT_LN1_B, l, &x));
    if (P(m, SQ_SLOT_QKV_W, l)) {
        SQ_TRY(SQ_OP(be, linear, &x, P(m, SQ_SLOT_QKV_W, l), lay, P(m, SQ_SLOT_QKV_B, l), 0, &qkv));
    } else {
        SQ_TRY(SQ_OP(be, linear, &x, P(m, SQ_SLOT_Q_W, l), lay, P(m, SQ_SLOT_Q_B, l), 0, &q));
        SQ_TRY(SQ_OP(be, linear, &x, P(m, SQ_SLOT_K_W, l), lay, P(m, SQ_SLOT_K_B, l), 0, &k));
        SQ_TRY(SQ_OP(be, linear, &x, P(m, SQ_SLOT_V_W, l), lay, P(m, SQ_SLOT_V_B, l), 0, &v));
    }
    if (c->rope) {
        SQ_TRY(SQ_OP(be, rope, c->rope_style, &q, H, D, m->pos, c->rope_theta));
        SQ_TRY(SQ_OP(be, rope, c->rope_style, &k, K, D, m->pos, c->rope_theta));
    }
    SQ_TRY(SQ_OP(be, attention, &q, &k, &v, bt->B, bt->T, H, K, D, 1.0f / sqrtf((float)D), &att));
    return SQ_OP(be, linear, &att, P(m, SQ_SLOT_O_W, l), lay, P(m, SQ_SLOT_O_B, l), 1, &h);
}

static sq_status_t unit_mlp_in(sq_model_t *m, int l, int64_t N)
{
    sq_backend_t *be = m->be;
    const sq_model_config_t *c = &m->cfg;
    const sq_wlayout_t lay = sq_model_wlayout(c);
    sq_tensor_t h = rows_f32(m->h, N, c->d_model), x = rows_f32(m->x, N, c->d_model);
    sq_tensor_t a = rows_f32(m->a, N, c->d_ff);
    SQ_TRY(norm(m, &h, SQ_SLOT_LN2_W, SQ_SLOT_LN2_B, l, &x));
    if (c->glu) {
        sq_tensor_t up = rows_f32(m->up, N, c->d_ff);
        SQ_TRY(SQ_OP(be, linear, &x, P(m, SQ_SLOT_GATE_W, l), lay, P(m, SQ_SLOT_GATE_B, l), 0, &a));
        SQ_TRY(SQ_OP(be, linear, &x, P(m, SQ_SLOT_UP_W, l), lay, P(m, SQ_SLOT_UP_B, l), 0, &up));
        return SQ_OP(be, glu, c->act, &a, &up, &a);
    }
    SQ_TRY(SQ_OP(be, linear, &x, P(m, SQ_SLOT_UP_W, l), lay, P(m, SQ_SLOT_UP_B, l), 0, &a));
    return SQ_OP(be, activation, c->act, &a);
}

static sq_status_t unit_mlp_out(sq_model_t *m, int l, int64_t N)
{
    const sq_model_config_t *c = &m->cfg;
    sq_tensor_t h = rows_f32(m->h, N, c->d_model), a = rows_f32(m->a, N, c->d_ff);
    return SQ_OP(m->be, linear, &a, P(m, SQ_SLOT_DOWN_W, l), sq_model_wlayout(c),
                 P(m, SQ_SLOT_DOWN_B, l), 1, &h);
}

/* Logits are materialised head_chunk rows at a time: a [N, V] buffer would
 * dominate the stage's memory (2048 x 50272 fp32 = 412 MB). */
static sq_status_t unit_head(sq_model_t *m, const sq_batch_t *bt, int64_t N, sq_head_out_t *out)
{
    sq_backend_t *be = m->be;
    const sq_model_config_t *c = &m->cfg;
    const int64_t V = c->vocab_size;
    if (!out) return SQ_OK;
    for (int64_t r0 = 0; r0 < N; r0 += m->head_chunk) {
        int64_t n = N - r0 < m->head_chunk ? N - r0 : m->head_chunk;
        sq_tensor_t h = rows_f32(m->h + r0 * c->d_model, n, c->d_model);
        sq_tensor_t x = rows_f32(m->x, n, c->d_model);
        sq_tensor_t lg = rows_f32(m->logits, n, V);
        SQ_TRY(norm(m, &h, SQ_SLOT_NORMF_W, SQ_SLOT_NORMF_B, -1, &x));
        SQ_TRY(SQ_OP(be, linear, &x, P(m, SQ_SLOT_HEAD, -1), SQ_WEIGHT_OUT_IN, NULL, 0, &lg));
        if (out->nll) {
            if (!bt->targets)
                return sq_error_set(SQ_ERR_INVALID_ARG, "forward: nll requested without targets");
            SQ_TRY(SQ_OP(be, cross_entropy, &lg, bt->targets + r0, out->nll + r0));
        }
        if (!out->argmax && !out->logits) continue;
        if (be->ops->device != SQ_DEVICE_CPU)
            return sq_error_set(SQ_ERR_UNSUPPORTED, "forward: argmax/logit copies need the CPU backend");
        for (int64_t i = 0; i < n; i++) {
            const float *row = m->logits + i * V;
            if (out->argmax) {
                int64_t best = 0;
                for (int64_t j = 1; j < V; j++)
                    if (row[j] > row[best]) best = j;
                out->argmax[r0 + i] = (int32_t)best;
            }
            for (int k = 0; out->logits && k < out->n_logit_index; k++) {
                int32_t id = out->logit_index[k];
                if (id < 0 || id >= V)
                    return sq_error_set(SQ_ERR_RANGE, "forward: logit index %d outside vocab %lld",
                                        id, (long long)V);
                out->logits[(r0 + i) * out->n_logit_index + k] = row[id];
            }
        }
    }
    return SQ_OK;
}

sq_status_t sq_model_forward(sq_model_t *m, const sq_batch_t *bt, sq_head_out_t *head)
{
    const sq_model_config_t *c = &m->cfg;
    const int64_t N = (int64_t)bt->B * bt->T;
    if (bt->B <= 0 || bt->T <= 0 || N > m->max_rows || bt->T > m->max_seq)
        return sq_error_set(SQ_ERR_RANGE,
                            "forward: batch %d x %d tokens outside what the stage was loaded for "
                            "(%d rows, T <= %d)",
                            bt->B, bt->T, m->max_rows, m->max_seq);
    for (int64_t i = 0; i < N; i++) {
        m->pos[i] = (int32_t)(i % bt->T);
        m->pos_ids[i] = m->pos[i] + c->pos_offset;
    }
    for (int u = m->unit_begin; u < m->unit_end; u++) {
        int l;
        sq_status_t st = SQ_OK;
        sq_unit_kind_t k = sq_model_unit_kind(c, u, &l);
        switch (k) {
        case SQ_UNIT_EMBED: st = unit_embed(m, bt, N); break;
        case SQ_UNIT_ATTN: st = unit_attn(m, l, bt, N); break;
        case SQ_UNIT_MLP_IN: st = unit_mlp_in(m, l, N); break;
        case SQ_UNIT_MLP_OUT: st = unit_mlp_out(m, l, N); break;
        case SQ_UNIT_HEAD: st = unit_head(m, bt, N, head); break;
        }
        if (st != SQ_OK) return sq_error_push(st, "unit %d (%s, layer %d)", u, sq_unit_kind_name(k), l);
    }
    return SQ_OK;
}

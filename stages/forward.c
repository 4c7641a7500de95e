/* The forward of a stage's units, through the backend ops only. */
#include "model_internal.h"

#include <math.h>
#include <string.h>

#define SQ_OP(be, op, ...) (be)->ops->op((be), __VA_ARGS__)


#define P(m, s, layer) sq_model_slot_tensor((m), (s), (layer))

static sq_status_t norm(sq_model_t *m, const sq_tensor_t *x, sq_slot_t w, sq_slot_t b, int layer,
                        sq_tensor_t *y)
{
    sq_backend_t *be = m->be;
    if (m->cfg.norm == SQ_NORM_RMS) return SQ_OP(be, rmsnorm, x, P(m, w, layer), m->cfg.norm_eps, y);
    return SQ_OP(be, layernorm, x, P(m, w, layer), P(m, b, layer), m->cfg.norm_eps, y);
}

/* The copies unit `k` reads instead of the masters, in scratch: theta +
 * scale*z for the tuned parameters while a perturbation is set, and with
 * bf16/fp16 GEMMs every weight matrix as a 16-bit operand (perturbed on the
 * way when tuned: one pass writes the rounded sum). Embedding tables are skipped:
 * unit_embed perturbs just the rows it reads. */
static sq_status_t materialize(sq_model_t *m, sq_unit_kind_t k, int layer)
{
    if (!m->perturb_active && m->gemm_dtype == SQ_DTYPE_F32) return SQ_OK;
    int ns;
    int64_t used = 0;
    const sq_slot_t *slots = sq_model_unit_slots(k, &ns);
    for (int i = 0; i < ns; i++) {
        int idx = sq_model_slot_index(m, slots[i], layer);
        if (idx < 0) continue;
        sq_param_t *p = &m->params[idx];
        m->eff[idx] = p->t;
        const int tuned = m->perturb_active && m->pert.tuned[idx];
        const int cast = m->gemm_dtype != SQ_DTYPE_F32 && !p->is_vector;
        if ((!tuned && !cast) || k == SQ_UNIT_EMBED) continue;
        const int64_t n = sq_tensor_numel(&p->t);
        const int64_t take = sq_model_copy_floats(m, n, p->is_vector);
        if (used + take > m->scratch_floats)
            return sq_error_set(SQ_ERR_INTERNAL, "perturbation scratch too small for %s", p->name);
        sq_tensor_t d = p->t;
        d.data = m->scratch + used;
        if (cast) d.dtype = m->gemm_dtype;
        used += take;
        SQ_TRY(SQ_OP(m->be, zo_perturb, &p->t, m->pert.seed, p->zo_id, 0,
                     tuned ? m->pert.scale : 0.0f,
                     tuned && m->pert.masks ? m->pert.masks[idx] : NULL, &d));
        m->eff[idx] = d;
    }
    return SQ_OK;
}

/* y[i] (+)= table[ids[i]] (+ scale * z of that row when the table is tuned). */
static sq_status_t embed_rows(sq_model_t *m, sq_slot_t slot, const int32_t *ids, int64_t N,
                              sq_tensor_t *y)
{
    sq_backend_t *be = m->be;
    int idx = sq_model_slot_index(m, slot, -1);
    const sq_param_t *p = &m->params[idx];
    SQ_TRY(SQ_OP(be, embedding, &p->t, ids, N, 0, y));
    if (!m->perturb_active || !m->pert.tuned[idx]) return SQ_OK;
    const int64_t C = sq_tensor_cols(&p->t);
    const uint8_t *mask = m->pert.masks ? m->pert.masks[idx] : NULL;
    for (int64_t i = 0; i < N; i++) {
        sq_tensor_t row = sq_model_f32(m, (float *)y->data + i * C, 1, C);
        SQ_TRY(SQ_OP(be, zo_perturb, &row, m->pert.seed, p->zo_id, (int64_t)ids[i] * C,
                     m->pert.scale, mask ? mask + (int64_t)ids[i] * C : NULL, &row));
    }
    return SQ_OK;
}

static sq_status_t unit_embed(sq_model_t *m, const sq_batch_t *bt, int64_t N)
{
    sq_backend_t *be = m->be;
    const sq_model_config_t *c = &m->cfg;
    sq_tensor_t h = sq_model_f32(m, m->h, N, c->d_model);
    if (!bt->tokens) return sq_error_set(SQ_ERR_INVALID_ARG, "forward: the embed unit needs tokens");
    SQ_TRY(embed_rows(m, SQ_SLOT_EMBED, bt->tokens, N, &h));
    if (c->learned_pos) {
        sq_tensor_t x = sq_model_f32(m, m->x, N, c->d_model);
        SQ_TRY(embed_rows(m, SQ_SLOT_POS, m->pos_ids, N, &x));
        SQ_TRY(SQ_OP(be, add, &x, &h));
    }
    return SQ_OK;
}

static sq_status_t unit_attn(sq_model_t *m, int l, const sq_batch_t *bt, int64_t N)
{
    sq_backend_t *be = m->be;
    const sq_model_config_t *c = &m->cfg;
    const int H = c->n_heads, K = c->n_kv_heads, D = c->head_dim;
    const int64_t HD = (int64_t)H * D, KD = (int64_t)K * D;
    const sq_wlayout_t lay = sq_model_wlayout(c);
    sq_tensor_t h = sq_model_f32(m, m->h, N, c->d_model), x = sq_model_f32(m, m->x, N, c->d_model);
    sq_tensor_t qkv = sq_model_f32(m, m->qkv, N, HD + 2 * KD);
    sq_tensor_t q = sq_tensor_cols_view(&qkv, 0, HD);
    sq_tensor_t k = sq_tensor_cols_view(&qkv, HD, KD);
    sq_tensor_t v = sq_tensor_cols_view(&qkv, HD + KD, KD);
    sq_tensor_t att = sq_model_f32(m, m->att, N, HD);

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
    sq_tensor_t h = sq_model_f32(m, m->h, N, c->d_model), x = sq_model_f32(m, m->x, N, c->d_model);
    sq_tensor_t a = sq_model_f32(m, m->a, N, c->d_ff);
    SQ_TRY(norm(m, &h, SQ_SLOT_LN2_W, SQ_SLOT_LN2_B, l, &x));
    if (c->glu) {
        sq_tensor_t up = sq_model_f32(m, m->up, N, c->d_ff);
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
    sq_tensor_t h = sq_model_f32(m, m->h, N, c->d_model), a = sq_model_f32(m, m->a, N, c->d_ff);
    return SQ_OP(m->be, linear, &a, P(m, SQ_SLOT_DOWN_W, l), sq_model_wlayout(c),
                 P(m, SQ_SLOT_DOWN_B, l), 1, &h);
}

/* Host-side reductions over one chunk of logits (on a device: over the host
 * copy of the chunk). */
static sq_status_t head_reduce(sq_model_t *m, int64_t n, int64_t o0, sq_head_out_t *out)
{
    const int64_t V = m->cfg.vocab_size;
    const int K = out->n_logit_index;
    for (int k = 0; k < K; k++)
        if (out->logit_index[k] < 0 || out->logit_index[k] >= V)
            return sq_error_set(SQ_ERR_RANGE, "head: logit index %d outside the vocabulary (%lld)",
                                out->logit_index[k], (long long)V);
    const float *logits = m->logits;
    if (m->on_device) {
        sq_tensor_t lg = sq_model_f32(m, m->logits, n, V);
        SQ_TRY(m->be->ops->to_host(m->be, &lg, m->logits_host, sizeof(float) * (size_t)(n * V)));
        logits = m->logits_host;
    }
    for (int64_t i = 0; i < n; i++) {
        const float *row = logits + i * V;
        int64_t best = 0;
        for (int64_t j = 1; j < V; j++)
            if (row[j] > row[best]) best = j;
        if (out->argmax) out->argmax[o0 + i] = (int32_t)best;
        double lse = 0;
        if (out->logprobs) {
            for (int64_t j = 0; j < V; j++) lse += exp((double)row[j] - row[best]);
            lse = log(lse) + row[best];
        }
        for (int k = 0; k < K; k++) {
            float v = row[out->logit_index[k]];
            if (out->logits) out->logits[(o0 + i) * K + k] = v;
            if (out->logprobs) out->logprobs[(o0 + i) * K + k] = (float)((double)v - lse);
        }
    }
    return SQ_OK;
}

/* Logits are materialised head_chunk rows at a time: a [N, V] buffer would
 * dominate the stage's memory (2048 x 50272 fp32 = 412 MB). Selected rows
 * are gathered with the embedding op (a row gather by index). */
static sq_status_t unit_head(sq_model_t *m, const sq_batch_t *bt, int64_t N, sq_head_out_t *out)
{
    sq_backend_t *be = m->be;
    const sq_model_config_t *c = &m->cfg;
    const int64_t V = c->vocab_size, C = c->d_model;
    if (!out) return SQ_OK;
    const int64_t n_eval = out->rows ? out->n_rows : N;
    if (out->nll && !bt->targets)
        return sq_error_set(SQ_ERR_INVALID_ARG, "forward: nll requested without targets");
    sq_tensor_t h_all = sq_model_f32(m, m->h, N, C);
    for (int64_t r0 = 0; r0 < n_eval; r0 += m->head_chunk) {
        int64_t n = n_eval - r0 < m->head_chunk ? n_eval - r0 : m->head_chunk;
        sq_tensor_t h, x = sq_model_f32(m, m->x, n, C), lg = sq_model_f32(m, m->logits, n, V);
        const int32_t *tgt = bt->targets ? bt->targets + r0 : NULL;
        if (out->rows) {
            for (int64_t i = 0; i < n; i++) {
                int32_t r = out->rows[r0 + i];
                if (r < 0 || r >= N)
                    return sq_error_set(SQ_ERR_RANGE, "head: row %d outside the batch (%lld rows)",
                                        r, (long long)N);
                m->head_rows[i] = r;
                if (bt->targets) m->head_tgt[i] = bt->targets[r];
            }
            h = sq_model_f32(m, m->head_in, n, C);
            SQ_TRY(SQ_OP(be, embedding, &h_all, m->head_rows, n, 0, &h));
            tgt = bt->targets ? m->head_tgt : NULL;
        } else {
            h = sq_model_f32(m, m->h + r0 * C, n, C);
        }
        SQ_TRY(norm(m, &h, SQ_SLOT_NORMF_W, SQ_SLOT_NORMF_B, -1, &x));
        SQ_TRY(SQ_OP(be, linear, &x, P(m, SQ_SLOT_HEAD, -1), SQ_WEIGHT_OUT_IN, NULL, 0, &lg));
        if (out->nll) SQ_TRY(SQ_OP(be, cross_entropy, &lg, tgt, out->nll + r0));
        if (out->argmax || out->logits || out->logprobs) SQ_TRY(head_reduce(m, n, r0, out));
    }
    return SQ_OK;
}

sq_status_t sq_model_forward(sq_model_t *m, const sq_batch_t *bt, sq_head_out_t *head)
{
    return sq_model_forward_units(m, bt, m->unit_begin, m->unit_end, head);
}

sq_status_t sq_model_forward_units(sq_model_t *m, const sq_batch_t *bt, int u0, int u1,
                                   sq_head_out_t *head)
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
    if (u0 < m->unit_begin || u1 > m->unit_end || u0 > u1)
        return sq_error_set(SQ_ERR_RANGE, "forward: units [%d, %d) outside the stage's [%d, %d)",
                            u0, u1, m->unit_begin, m->unit_end);
    for (int u = u0; u < u1; u++) {
        int l;
        sq_status_t st = SQ_OK;
        sq_unit_kind_t k = sq_model_unit_kind(c, u, &l);
        st = materialize(m, k, l);
        if (st == SQ_OK) switch (k) {
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

/* llama2.c checkpoint reader (the "legacy" .bin that run.c loads).
 *
 * The file is a 7 x int32 header and bare fp32 arrays with no names or
 * sizes, so the header is all there is to check: it must describe exactly
 * the bytes the file holds. The arrays are exposed in place under HF LLaMA
 * names; per-layer views are slices of the stacked [L, ...] arrays.
 * Integers are read in host byte order, like run.c (little-endian hosts).
 */
#include "weights_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L2C_HEADER_BYTES 28
#define L2C_NAME_MAX 80 /* "model.layers.<int>.post_attention_layernorm.weight" fits */

static const sq_cfg_keys_t l2c_keys = {
    .vocab_size = "vocab_size",
    .d_model = "dim",
    .n_layers = "n_layers",
    .n_heads = "n_heads",
    .n_kv_heads = "n_kv_heads",
    .head_dim = "dim / n_heads",
    .d_ff = "hidden_dim",
    .max_pos = "seq_len",
    .norm_eps = "norm eps (1e-5)",
    .rope_theta = "rope theta (1e4)",
};

typedef struct l2c_builder {
    sq_weight_file_t *wf;
    const uint8_t *base;
    uint64_t off; /* running byte offset into the file */
} l2c_builder_t;

/* Append one tensor of `ndim` dims starting at the running offset. Sizes were
 * checked against the file before any tensor is added. */
static void l2c_add(l2c_builder_t *b, const char *name, int ndim, int64_t d0, int64_t d1)
{
    sq_weight_info_t *t = &b->wf->tensors[b->wf->n];
    char *nm = b->wf->names + b->wf->n * L2C_NAME_MAX;
    snprintf(nm, L2C_NAME_MAX, "%s", name);
    t->name = nm;
    t->dtype = SQ_DTYPE_F32;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim > 1 ? d1 : 0;
    t->nbytes = (size_t)(d0 * (ndim > 1 ? d1 : 1)) * sizeof(float);
    t->data = b->base + b->off;
    t->file = b->wf->file;
    b->wf->n++;
}

/* Per-layer slices of a stacked [L, d0, d1] array, then skip past it. */
static void l2c_add_layers(l2c_builder_t *b, int L, const char *suffix, int ndim, int64_t d0,
                           int64_t d1)
{
    char name[L2C_NAME_MAX];
    uint64_t per = (uint64_t)(d0 * (ndim > 1 ? d1 : 1)) * sizeof(float);
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix);
        l2c_add(b, name, ndim, d0, d1);
        b->off += per;
    }
}

/* acc += a * b * c (in floats -> bytes later), false on overflow. */
static int l2c_acc(uint64_t *acc, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t p;
    return !__builtin_mul_overflow(a, b, &p) && !__builtin_mul_overflow(p, c, &p) &&
           !__builtin_add_overflow(*acc, p, acc);
}

sq_status_t sq_llama2c_open(const char *path, sq_model_config_t *cfg, sq_weight_file_t **out)
{
    if (!path || !cfg || !out)
        return sq_error_set(SQ_ERR_INVALID_ARG, "sq_llama2c_open needs a path, cfg and out");
    sq_weight_file_t *wf;
    SQ_TRY(sq_wf_create(path, &wf));
    sq_status_t st;
    SQ_TRY_GOTO(st, sq_wf_map(wf, path), close_wf);
    if (wf->map_len < L2C_HEADER_BYTES) {
        st = sq_error_set(SQ_ERR_FORMAT,
                          "%s: file is %zu bytes, shorter than the %d-byte llama2.c header", path,
                          wf->map_len, L2C_HEADER_BYTES);
        goto close_wf;
    }
    int32_t h[7];
    memcpy(h, wf->map, sizeof h);
    const int dim = h[0], hidden = h[1], L = h[2], H = h[3], K = h[4], seq = h[6];
    /* A negative vocab_size is run.c's flag for "classifier stored at the end". */
    const int shared = h[5] > 0;
    const int V = h[5] == INT32_MIN ? 0 : (h[5] < 0 ? -h[5] : h[5]);

    sq_model_config_t c;
    memset(&c, 0, sizeof c);
    c.arch = SQ_ARCH_LLAMA;
    snprintf(c.model_type, sizeof c.model_type, "llama2c");
    c.vocab_size = V;
    c.d_model = dim;
    c.n_layers = L;
    c.n_heads = H;
    c.n_kv_heads = K;
    c.d_ff = hidden;
    c.max_pos = seq;
    c.norm = SQ_NORM_RMS;
    c.norm_eps = 1e-5f;
    c.act = SQ_ACT_SILU;
    c.glu = 1;
    c.rope = 1;
    c.rope_style = SQ_ROPE_INTERLEAVED;
    c.rope_theta = 10000.0f;
    c.tie_embeddings = shared;
    c.dtype = SQ_DTYPE_F32;
    if (dim > 0 && H > 0 && dim % H != 0) {
        st =
            sq_error_set(SQ_ERR_RANGE, "%s: llama2.c header: n_heads = %d does not divide dim = %d",
                         path, H, dim);
        goto close_wf;
    }
    c.head_dim = (dim > 0 && H > 0) ? dim / H : 0;
    char label[1100];
    snprintf(label, sizeof label, "%s: llama2.c header", path);
    SQ_TRY_GOTO(st, sq_model_config_validate_named(&c, label, &l2c_keys), close_wf);

    /* Everything is at most 2^24, yet products of three can pass 2^64. */
    const uint64_t kv_dim = (uint64_t)dim * K / H, hs = (uint64_t)(dim / H);
    uint64_t floats = 0;
    int ok = l2c_acc(&floats, V, dim, 1) &&           /* token_embedding */
             l2c_acc(&floats, L, dim, 1) &&           /* rms_att */
             l2c_acc(&floats, L, dim, dim) &&         /* wq */
             l2c_acc(&floats, L, kv_dim, dim) &&      /* wk */
             l2c_acc(&floats, L, kv_dim, dim) &&      /* wv */
             l2c_acc(&floats, L, dim, dim) &&         /* wo */
             l2c_acc(&floats, L, dim, 1) &&           /* rms_ffn */
             l2c_acc(&floats, L, hidden, dim) &&      /* w1 */
             l2c_acc(&floats, L, dim, hidden) &&      /* w2 */
             l2c_acc(&floats, L, hidden, dim) &&      /* w3 */
             l2c_acc(&floats, dim, 1, 1) &&           /* rms_final */
             l2c_acc(&floats, seq, hs / 2, 2) &&      /* freq_cis_real, freq_cis_imag */
             (shared || l2c_acc(&floats, V, dim, 1)); /* wcls */
    uint64_t expect = 0;
    ok = ok && !__builtin_mul_overflow(floats, (uint64_t)sizeof(float), &expect) &&
         !__builtin_add_overflow(expect, (uint64_t)L2C_HEADER_BYTES, &expect);
    if (!ok || expect != wf->map_len) {
        char want[32];
        if (ok)
            snprintf(want, sizeof want, "%llu", (unsigned long long)expect);
        else
            snprintf(want, sizeof want, "more than 2^64");
        st = sq_error_set(SQ_ERR_FORMAT,
                          "%s: llama2.c header (dim %d, hidden_dim %d, n_layers %d, n_heads %d, "
                          "n_kv_heads %d, vocab_size %d, seq_len %d) implies %s bytes but the "
                          "file has %zu",
                          path, dim, hidden, L, H, K, h[5], seq, want, wf->map_len);
        goto close_wf;
    }

    size_t count = 1 + 9 * (size_t)L + 1 + (shared ? 0 : 1);
    wf->tensors = calloc(count, sizeof *wf->tensors);
    wf->names = malloc(count * L2C_NAME_MAX);
    if (!wf->tensors || !wf->names) {
        st = sq_error_set(SQ_ERR_NOMEM, "%s: cannot allocate %zu tensors", path, count);
        goto close_wf;
    }
    l2c_builder_t b = {wf, wf->map, L2C_HEADER_BYTES};
    l2c_add(&b, "model.embed_tokens.weight", 2, V, dim);
    b.off += (uint64_t)V * dim * sizeof(float);
    l2c_add_layers(&b, L, "input_layernorm.weight", 1, dim, 0);
    l2c_add_layers(&b, L, "self_attn.q_proj.weight", 2, dim, dim);
    l2c_add_layers(&b, L, "self_attn.k_proj.weight", 2, (int64_t)kv_dim, dim);
    l2c_add_layers(&b, L, "self_attn.v_proj.weight", 2, (int64_t)kv_dim, dim);
    l2c_add_layers(&b, L, "self_attn.o_proj.weight", 2, dim, dim);
    l2c_add_layers(&b, L, "post_attention_layernorm.weight", 1, dim, 0);
    l2c_add_layers(&b, L, "mlp.gate_proj.weight", 2, hidden, dim); /* w1 */
    l2c_add_layers(&b, L, "mlp.down_proj.weight", 2, dim, hidden); /* w2 */
    l2c_add_layers(&b, L, "mlp.up_proj.weight", 2, hidden, dim);   /* w3 */
    l2c_add(&b, "model.norm.weight", 1, dim, 0);
    b.off += (uint64_t)dim * sizeof(float);
    b.off += 2 * (uint64_t)seq * (hs / 2) * sizeof(float); /* RoPE tables: recomputed */
    if (!shared) {
        l2c_add(&b, "lm_head.weight", 2, V, dim);
        b.off += (uint64_t)V * dim * sizeof(float);
    }
    if (b.off != wf->map_len) {
        st = sq_error_set(SQ_ERR_INTERNAL, "%s: tensor walk ended at %llu of %zu bytes", path,
                          (unsigned long long)b.off, wf->map_len);
        goto close_wf;
    }
    SQ_TRY_GOTO(st, sq_wf_finish(wf), close_wf);
    *cfg = c;
    *out = wf;
    return SQ_OK;

close_wf:
    sq_weights_close(wf);
    return st;
}

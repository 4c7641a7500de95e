/* Loading a stage's unit range into one arena, and its forward. */
#include "model_internal.h"

#include "sparq/zo_rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- which slots a unit reads ---- */

static const sq_slot_t attn_slots[] = {SQ_SLOT_LN1_W, SQ_SLOT_LN1_B, SQ_SLOT_Q_W,   SQ_SLOT_Q_B,
                                       SQ_SLOT_K_W,   SQ_SLOT_K_B,   SQ_SLOT_V_W,   SQ_SLOT_V_B,
                                       SQ_SLOT_QKV_W, SQ_SLOT_QKV_B, SQ_SLOT_O_W,   SQ_SLOT_O_B};
static const sq_slot_t mlp_in_slots[] = {SQ_SLOT_LN2_W, SQ_SLOT_LN2_B,  SQ_SLOT_UP_W,
                                         SQ_SLOT_UP_B,  SQ_SLOT_GATE_W, SQ_SLOT_GATE_B};
static const sq_slot_t mlp_out_slots[] = {SQ_SLOT_DOWN_W, SQ_SLOT_DOWN_B};
static const sq_slot_t embed_slots[] = {SQ_SLOT_EMBED, SQ_SLOT_POS};
static const sq_slot_t head_slots[] = {SQ_SLOT_NORMF_W, SQ_SLOT_NORMF_B, SQ_SLOT_HEAD};

const sq_slot_t *sq_model_unit_slots(sq_unit_kind_t k, int *n)
{
#define SQ_N(a) ((int)(sizeof(a) / sizeof((a)[0])))
    switch (k) {
    case SQ_UNIT_EMBED: *n = SQ_N(embed_slots); return embed_slots;
    case SQ_UNIT_ATTN: *n = SQ_N(attn_slots); return attn_slots;
    case SQ_UNIT_MLP_IN: *n = SQ_N(mlp_in_slots); return mlp_in_slots;
    case SQ_UNIT_MLP_OUT: *n = SQ_N(mlp_out_slots); return mlp_out_slots;
    case SQ_UNIT_HEAD: *n = SQ_N(head_slots); return head_slots;
    }
#undef SQ_N
    *n = 0;
    return NULL;
}

/* GPT-2 has no q/k/v split; the others no fused c_attn. */
static int slot_applies(const sq_model_config_t *cfg, sq_slot_t s)
{
    int fused = cfg->arch == SQ_ARCH_GPT2;
    switch (s) {
    case SQ_SLOT_Q_W:
    case SQ_SLOT_Q_B:
    case SQ_SLOT_K_W:
    case SQ_SLOT_K_B:
    case SQ_SLOT_V_W:
    case SQ_SLOT_V_B: return !fused;
    case SQ_SLOT_QKV_W:
    case SQ_SLOT_QKV_B: return fused;
    default: return 1;
    }
}

static int *slot_ref(sq_model_t *m, sq_slot_t s, int layer)
{
    if (s < SQ_SLOT_FIRST_LAYER) return &m->global_slot[s];
    return &m->layer_slot[(size_t)layer * SQ_LAYER_SLOTS + (s - SQ_SLOT_FIRST_LAYER)];
}

int sq_model_slot_index(const sq_model_t *m, sq_slot_t s, int layer)
{
    return s < SQ_SLOT_FIRST_LAYER
               ? m->global_slot[s]
               : m->layer_slot[(size_t)layer * SQ_LAYER_SLOTS + (s - SQ_SLOT_FIRST_LAYER)];
}

/* What the forward reads: the perturbed copy while a perturbation is set. */
const sq_tensor_t *sq_model_slot_tensor(const sq_model_t *m, sq_slot_t s, int layer)
{
    int idx = sq_model_slot_index(m, s, layer);
    return idx < 0 ? NULL : &m->eff[idx];
}

/* ---- opening the files ---- */

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static sq_status_t open_source(const char *path, sq_model_config_t *cfg, sq_weight_file_t **wf)
{
    char buf[1200];
    struct stat st;
    if (stat(path, &st) != 0)
        return sq_error_set(SQ_ERR_IO, "%s: no such model file or directory", path);
    if (ends_with(path, ".bin")) return sq_llama2c_open(path, cfg, wf);
    if (is_dir(path)) {
        snprintf(buf, sizeof buf, "%s/config.json", path);
        SQ_TRY(sq_model_config_load_hf(buf, cfg));
        return sq_safetensors_open(path, wf);
    }
    if (ends_with(path, ".safetensors") || ends_with(path, ".index.json")) {
        /* config.json sits beside the weights */
        snprintf(buf, sizeof buf, "%s", path);
        char *slash = strrchr(buf, '/');
        if (slash)
            snprintf(slash + 1, sizeof buf - (size_t)(slash + 1 - buf), "config.json");
        else
            snprintf(buf, sizeof buf, "config.json");
        SQ_TRY(sq_model_config_load_hf(buf, cfg));
        return sq_safetensors_open(path, wf);
    }
    return sq_error_set(SQ_ERR_INVALID_ARG,
                        "%s: not a model directory, .safetensors, .index.json or llama2.c .bin",
                        path);
}

/* ---- load ---- */

typedef struct pending {
    char name[192];
    const sq_weight_info_t *info;
    int64_t numel;
    int is_vector;
} pending_t;

static sq_status_t check_shape(const sq_weight_file_t *wf, const sq_weight_info_t *info,
                               const int64_t *shape, int ndim)
{
    int ok = info->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = info->shape[i] == shape[i];
    if (ok) return SQ_OK;
    char got[96] = "", want[96] = "";
    size_t g = 0, w = 0;
    for (int i = 0; i < info->ndim; i++)
        g += (size_t)snprintf(got + g, sizeof got - g, "%s%lld", i ? "," : "",
                              (long long)info->shape[i]);
    for (int i = 0; i < ndim; i++)
        w += (size_t)snprintf(want + w, sizeof want - w, "%s%lld", i ? "," : "",
                              (long long)shape[i]);
    return sq_error_set(SQ_ERR_FORMAT, "%s: tensor \"%s\" has shape [%s] but the config implies [%s]",
                        info->file ? info->file : sq_weights_path(wf), info->name, got, want);
}

static void model_free(sq_model_t *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_params; i++) free(m->params[i].name);
    free(m->params);
    free(m->eff);
    free(m->layer_slot);
    if (m->on_device) {
        m->be->ops->free(m->be, m->arena.base);
        free(m->host_ints);
        free(m->logits_host);
    } else {
        sq_arena_destroy(&m->arena);
    }
    free(m);
}

void sq_model_destroy(sq_model_t *m)
{
    model_free(m);
}

static sq_status_t alloc_f32(sq_model_t *m, int64_t n, const char *what, float **out)
{
    void *p;
    SQ_TRY(sq_arena_alloc(&m->arena, (size_t)n * sizeof(float), what, &p));
    *out = p;
    return SQ_OK;
}

static int range_has(const sq_model_t *m, sq_unit_kind_t k)
{
    for (int u = m->unit_begin; u < m->unit_end; u++)
        if (sq_model_unit_kind(&m->cfg, u, NULL) == k) return 1;
    return 0;
}

/* Activation buffers this range touches, in floats (ints counted as floats). */
static size_t act_plan(sq_model_t *m, int alloc_pass, sq_status_t *st)
{
    const sq_model_config_t *c = &m->cfg;
    const int64_t N = m->max_rows, C = c->d_model, F = c->d_ff;
    const int64_t QKV = (int64_t)(c->n_heads + 2 * c->n_kv_heads) * c->head_dim;
    const int64_t HD = (int64_t)c->n_heads * c->head_dim;
    int attn = range_has(m, SQ_UNIT_ATTN), mlp_in = range_has(m, SQ_UNIT_MLP_IN);
    int mlp_out = range_has(m, SQ_UNIT_MLP_OUT), head = range_has(m, SQ_UNIT_HEAD);
    int embed = range_has(m, SQ_UNIT_EMBED);
    /* a stage that starts right after MLP_IN receives mlp_act */
    int a_in = m->unit_begin > 0 &&
               sq_model_unit_kind(c, m->unit_begin - 1, NULL) == SQ_UNIT_MLP_IN;
    int a_out = m->unit_end < sq_model_unit_count(c) &&
                sq_model_unit_kind(c, m->unit_end - 1, NULL) == SQ_UNIT_MLP_IN;
    struct {
        int need;
        float **dst;
        int64_t n;
        const char *what;
        int host; /* read by the host (ids, positions): host memory on a device */
    } plan[] = {
        {1, &m->h, N * C, "hidden [N,C]", 0},
        {attn || mlp_in || head || embed, &m->x, N * C, "normed / position rows [N,C]", 0},
        {attn, &m->qkv, N * QKV, "qkv [N,(H+2K)D]", 0},
        {attn, &m->att, N * HD, "attention out [N,HD]", 0},
        {mlp_in || mlp_out || a_in || a_out, &m->a, N * F, "mlp_act [N,F]", 0},
        {mlp_in && c->glu, &m->up, N * F, "mlp up [N,F]", 0},
        {head, &m->logits, (int64_t)m->head_chunk * c->vocab_size, "logits [chunk,V]", 0},
        {head, &m->head_in, (int64_t)m->head_chunk * C, "head rows [chunk,C]", 0},
        {head, (float **)&m->head_rows, m->head_chunk, "head row ids [chunk]", 1},
        {head, (float **)&m->head_tgt, m->head_chunk, "head targets [chunk]", 1},
        {1, (float **)&m->pos, N, "positions [N]", 1},
        {1, (float **)&m->pos_ids, N, "position ids [N]", 1},
    };
    size_t bytes = 0, host = 0;
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        if (!plan[i].need) continue;
        if (m->on_device && plan[i].host) { /* packed into host_ints */
            if (alloc_pass && m->host_ints) *plan[i].dst = (float *)(m->host_ints + host);
            host += (size_t)plan[i].n;
            continue;
        }
        bytes += sq_arena_footprint((size_t)plan[i].n * sizeof(float));
        if (alloc_pass && *st == SQ_OK) *st = alloc_f32(m, plan[i].n, plan[i].what, plan[i].dst);
    }
    if (!alloc_pass && m->on_device) {
        m->host_ints = malloc(sizeof(int32_t) * (host ? host : 1));
        if (!m->host_ints) *st = sq_error_set(SQ_ERR_NOMEM, "model: out of host memory");
    }
    return bytes;
}

sq_status_t sq_model_load(const char *path, const sq_model_load_opts_t *opts, sq_backend_t *be,
                          sq_model_t **out)
{
    sq_status_t st = SQ_OK;
    sq_weight_file_t *wf = NULL;
    pending_t *pend = NULL;
    float *staging = NULL;
    sq_model_t *m = calloc(1, sizeof *m);
    if (!m) return sq_error_set(SQ_ERR_NOMEM, "model: out of host memory");
    m->be = be;
    m->on_device = be->ops->device != SQ_DEVICE_CPU;
    snprintf(m->path, sizeof m->path, "%s", path);

    SQ_TRY_GOTO(st, open_source(path, &m->cfg, &wf), fail);
    SQ_TRY_GOTO(st, sq_model_config_validate(&m->cfg, path), fail);
    const sq_model_config_t *c = &m->cfg;
    const int units = sq_model_unit_count(c);

    sq_model_load_opts_t o = opts ? *opts : (sq_model_load_opts_t){0};
    m->unit_begin = o.unit_begin;
    m->unit_end = o.unit_end > 0 ? o.unit_end : units;
    if (m->unit_begin < 0 || m->unit_begin >= m->unit_end || m->unit_end > units) {
        st = sq_error_set(SQ_ERR_RANGE, "%s: unit range [%d, %d) is not inside [0, %d)", path,
                          m->unit_begin, m->unit_end, units);
        goto fail;
    }
    m->max_seq = o.max_seq > 0 ? o.max_seq : c->max_pos;
    if (m->max_seq > c->max_pos) {
        st = sq_error_set(SQ_ERR_RANGE, "%s: max_seq %d exceeds the model's %d positions", path,
                          m->max_seq, c->max_pos);
        goto fail;
    }
    m->max_rows = (o.max_batch > 0 ? o.max_batch : 1) * m->max_seq;
    m->head_chunk = o.head_chunk > 0 ? o.head_chunk : 256;
    if (m->head_chunk > m->max_rows) m->head_chunk = m->max_rows;

    /* GPT-2 checkpoints come with or without the "transformer." prefix */
    const char *prefix = "";
    if (c->arch == SQ_ARCH_GPT2 && sq_weights_find(wf, "transformer.wte.weight"))
        prefix = "transformer.";

    for (int i = 0; i < SQ_SLOT_FIRST_LAYER; i++) m->global_slot[i] = -1;
    m->layer_slot = malloc(sizeof(int) * (size_t)c->n_layers * SQ_LAYER_SLOTS);
    pend = calloc((size_t)(m->unit_end - m->unit_begin) * 12 + 8, sizeof *pend);
    if (!m->layer_slot || !pend) {
        st = sq_error_set(SQ_ERR_NOMEM, "model: out of host memory");
        goto fail;
    }
    for (int i = 0; i < c->n_layers * SQ_LAYER_SLOTS; i++) m->layer_slot[i] = -1;

    /* pass 1: resolve every tensor the range reads, check shapes, size the arena */
    int n_pend = 0;
    size_t bytes = 0;
    for (int u = m->unit_begin; u < m->unit_end; u++) {
        int layer, ns;
        const sq_slot_t *slots = sq_model_unit_slots(sq_model_unit_kind(c, u, &layer), &ns);
        for (int k = 0; k < ns; k++) {
            sq_slot_t s = slots[k];
            char name[192];
            if (!slot_applies(c, s) || !sq_model_slot_name(c, prefix, s, layer, name, sizeof name))
                continue;
            int found = -1;
            for (int j = 0; j < n_pend; j++)
                if (strcmp(pend[j].name, name) == 0) found = j; /* tied head/embedding */
            if (found < 0) {
                const sq_weight_info_t *info = sq_weights_find(wf, name);
                if (!info) {
                    st = sq_error_set(SQ_ERR_NOT_FOUND, "%s: tensor \"%s\" is missing",
                                      sq_weights_path(wf), name);
                    goto fail;
                }
                int64_t shape[2];
                int nd = sq_model_slot_shape(c, s, shape);
                SQ_TRY_GOTO(st, check_shape(wf, info, shape, nd), fail);
                found = n_pend++;
                snprintf(pend[found].name, sizeof pend[found].name, "%s", name);
                pend[found].info = info;
                pend[found].numel = nd == 1 ? shape[0] : shape[0] * shape[1];
                pend[found].is_vector = nd == 1;
                bytes += sq_arena_footprint((size_t)pend[found].numel * sizeof(float));
            }
            *slot_ref(m, s, layer) = found;
        }
    }
    m->param_bytes = bytes;
    bytes += act_plan(m, 0, &st);
    if (st != SQ_OK) goto fail;
    const int half_gemm = o.gemm_dtype == SQ_DTYPE_BF16 || o.gemm_dtype == SQ_DTYPE_F16;
    if (o.gemm_dtype != SQ_DTYPE_F32 && (!half_gemm || !m->on_device)) {
        st = sq_error_set(SQ_ERR_UNSUPPORTED,
                          "%s: GEMM operand type %s: only f32, or bf16/f16 on a device backend "
                          "(the CPU backend's linear takes fp32 weights)",
                          path, sq_dtype_name(o.gemm_dtype));
        goto fail;
    }
    m->gemm_dtype = o.gemm_dtype;
    m->perturb_reserved = o.perturb;
    if (o.perturb || half_gemm) { /* the largest set of copies one unit makes at once */
        for (int u = m->unit_begin; u < m->unit_end; u++) {
            int layer, ns;
            int64_t sum = 0;
            sq_unit_kind_t kind = sq_model_unit_kind(c, u, &layer);
            const sq_slot_t *slots = sq_model_unit_slots(kind, &ns);
            for (int k = 0; k < ns && kind != SQ_UNIT_EMBED; k++) {
                int idx = sq_model_slot_index(m, slots[k], layer);
                if (idx >= 0) sum += sq_model_copy_floats(m, pend[idx].numel, pend[idx].is_vector);
            }
            if (sum > m->scratch_floats) m->scratch_floats = sum;
        }
        bytes += sq_arena_footprint((size_t)m->scratch_floats * sizeof(float));
    }
    int64_t max_numel = 0; /* host staging for the conversion of one tensor */
    for (int j = 0; j < n_pend; j++)
        if (pend[j].numel > max_numel) max_numel = pend[j].numel;
    if (m->on_device) {
        void *base;
        bytes = sq_arena_footprint(bytes ? bytes : 64);
        SQ_TRY_GOTO(st, be->ops->alloc(be, bytes, "the stage arena", &base), fail);
        m->arena = (sq_arena_t){.base = base, .size = bytes};
        if (m->head_chunk && range_has(m, SQ_UNIT_HEAD) &&
            !(m->logits_host = malloc(sizeof(float) * (size_t)m->head_chunk * c->vocab_size))) {
            st = sq_error_set(SQ_ERR_NOMEM, "model: out of host memory for the logits copy");
            goto fail;
        }
        if (!(staging = malloc(sizeof(float) * (size_t)(max_numel ? max_numel : 1)))) {
            st = sq_error_set(SQ_ERR_NOMEM, "model: out of host memory for weight staging");
            goto fail;
        }
    } else {
        SQ_TRY_GOTO(st, sq_arena_create(bytes, &m->arena), fail);
    }

    /* pass 2: fp32 masters, then activations */
    m->params = calloc((size_t)n_pend, sizeof *m->params);
    if (!m->params && n_pend) {
        st = sq_error_set(SQ_ERR_NOMEM, "model: out of host memory");
        goto fail;
    }
    for (int j = 0; j < n_pend; j++) {
        sq_param_t *p = &m->params[j];
        const sq_weight_info_t *info = pend[j].info;
        float *dst;
        SQ_TRY_GOTO(st, alloc_f32(m, pend[j].numel, pend[j].name, &dst), fail);
        p->t = pend[j].is_vector ? sq_tensor_1d(dst, SQ_DTYPE_F32, info->shape[0])
                                 : sq_tensor_2d(dst, SQ_DTYPE_F32, info->shape[0], info->shape[1]);
        p->t.device = be->ops->device;
        if (m->on_device) { /* convert on the host, then upload */
            SQ_TRY_GOTO(st, sq_convert_to_f32(info->data, info->dtype, staging, pend[j].numel), fail);
            SQ_TRY_GOTO(st, be->ops->from_host(be, staging, sizeof(float) * (size_t)pend[j].numel,
                                               &p->t), fail);
        } else {
            SQ_TRY_GOTO(st, sq_convert_to_f32(info->data, info->dtype, dst, pend[j].numel), fail);
        }
        p->name = strdup(pend[j].name);
        m->n_params = j + 1;
        if (!p->name) {
            st = sq_error_set(SQ_ERR_NOMEM, "model: out of host memory");
            goto fail;
        }
        p->file_dtype = info->dtype;
        p->is_vector = pend[j].is_vector;
        p->zo_id = sq_zo_tensor_id(p->name);
    }
    act_plan(m, 1, &st);
    if (st != SQ_OK) goto fail;
    if (m->scratch_floats)
        SQ_TRY_GOTO(st, alloc_f32(m, m->scratch_floats, "perturbation scratch", &m->scratch), fail);
    m->eff = malloc(sizeof *m->eff * (size_t)(n_pend ? n_pend : 1));
    if (!m->eff) {
        st = sq_error_set(SQ_ERR_NOMEM, "model: out of host memory");
        goto fail;
    }
    for (int j = 0; j < n_pend; j++) m->eff[j] = m->params[j].t;

    sq_backend_limits_t lim = {.max_rows = m->max_rows,
                               .max_seq = m->max_seq,
                               .max_heads = c->n_heads,
                               .max_cols = c->vocab_size};
    SQ_TRY_GOTO(st, be->ops->reserve(be, &lim), fail);

    free(pend);
    free(staging);
    sq_weights_close(wf); /* the masters are copies: the mapping can go */
    *out = m;
    return SQ_OK;

fail:
    free(pend);
    free(staging);
    sq_weights_close(wf);
    model_free(m);
    return st;
}

/* ---- accessors ---- */

const sq_model_config_t *sq_model_config(const sq_model_t *m)
{
    return &m->cfg;
}

sq_backend_t *sq_model_backend(const sq_model_t *m)
{
    return m->be;
}

const char *sq_model_path(const sq_model_t *m)
{
    return m->path;
}

void sq_model_unit_range(const sq_model_t *m, int *begin, int *end)
{
    *begin = m->unit_begin;
    *end = m->unit_end;
}

int sq_model_param_count(const sq_model_t *m)
{
    return m->n_params;
}

sq_param_t *sq_model_param(sq_model_t *m, int i)
{
    return (i >= 0 && i < m->n_params) ? &m->params[i] : NULL;
}

size_t sq_model_arena_bytes(const sq_model_t *m)
{
    return m->arena.size;
}

size_t sq_model_param_bytes(const sq_model_t *m)
{
    return m->param_bytes;
}

sq_status_t sq_model_param_read(sq_model_t *m, int i, float *host)
{
    const sq_param_t *p = sq_model_param(m, i);
    if (!p || !host) return sq_error_set(SQ_ERR_INVALID_ARG, "model: parameter %d or buffer", i);
    return m->be->ops->to_host(m->be, &p->t, host, sizeof(float) * (size_t)sq_tensor_numel(&p->t));
}

sq_status_t sq_model_param_write(sq_model_t *m, int i, const float *host)
{
    sq_param_t *p = sq_model_param(m, i);
    if (!p || !host) return sq_error_set(SQ_ERR_INVALID_ARG, "model: parameter %d or buffer", i);
    return m->be->ops->from_host(m->be, host, sizeof(float) * (size_t)sq_tensor_numel(&p->t),
                                 &p->t);
}

sq_status_t sq_model_set_perturbation(sq_model_t *m, const sq_perturbation_t *p)
{
    if (!p) {
        m->perturb_active = 0;
        for (int j = 0; j < m->n_params; j++) m->eff[j] = m->params[j].t;
        return SQ_OK;
    }
    if (!m->perturb_reserved)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "model: perturbation needs a model loaded with opts.perturb = 1");
    if (!p->tuned) return sq_error_set(SQ_ERR_INVALID_ARG, "model: perturbation without a selection");
    m->pert = *p;
    m->perturb_active = 1;
    return SQ_OK;
}

static sq_status_t boundary_at(sq_model_t *m, int unit, int B, int T, sq_boundary_t *out)
{
    memset(out, 0, sizeof *out);
    const int units = sq_model_unit_count(&m->cfg);
    if (unit <= 0 || unit >= units) return SQ_OK; /* before EMBED / after HEAD: nothing */
    int64_t N = (int64_t)B * T;
    if (B <= 0 || T <= 0 || N > m->max_rows || T > m->max_seq)
        return sq_error_set(SQ_ERR_RANGE, "model: batch %dx%d outside the loaded limits (%d rows, T<=%d)",
                            B, T, m->max_rows, m->max_seq);
    out->n_tensors = 1;
    out->names[0] = "hidden";
    out->t[0] = sq_model_f32(m, m->h, N, m->cfg.d_model);
    if (sq_model_unit_kind(&m->cfg, unit - 1, NULL) == SQ_UNIT_MLP_IN) {
        out->n_tensors = 2;
        out->names[1] = "mlp_act";
        out->t[1] = sq_model_f32(m, m->a, N, m->cfg.d_ff);
    }
    return SQ_OK;
}

sq_status_t sq_model_boundary(sq_model_t *m, int unit, int B, int T, sq_boundary_t *out)
{
    if (unit < m->unit_begin || unit > m->unit_end)
        return sq_error_set(SQ_ERR_RANGE, "model: boundary %d outside the stage's units [%d, %d]",
                            unit, m->unit_begin, m->unit_end);
    return boundary_at(m, unit, B, T, out);
}

sq_status_t sq_model_input_boundary(sq_model_t *m, int B, int T, sq_boundary_t *out)
{
    return boundary_at(m, m->unit_begin, B, T, out);
}

sq_status_t sq_model_output_boundary(sq_model_t *m, int B, int T, sq_boundary_t *out)
{
    return boundary_at(m, m->unit_end, B, T, out);
}

/* ---- boundary arithmetic (ZO pair coding) ---- */

typedef enum { B_SAVE, B_LOAD, B_DIFF, B_ADD } boundary_op_t;

static void boundary_apply(const sq_boundary_t *bd, float *buf, boundary_op_t op)
{
    for (int k = 0; k < bd->n_tensors; k++) {
        const sq_tensor_t *t = &bd->t[k];
        const int64_t rows = sq_tensor_rows(t), cols = sq_tensor_cols(t), ld = sq_tensor_ld(t);
        for (int64_t r = 0; r < rows; r++, buf += cols) {
            float *x = (float *)t->data + r * ld;
            switch (op) {
            case B_SAVE: memcpy(buf, x, sizeof(float) * (size_t)cols); break;
            case B_LOAD: memcpy(x, buf, sizeof(float) * (size_t)cols); break;
            case B_DIFF:
                for (int64_t c = 0; c < cols; c++) buf[c] = x[c] - buf[c];
                break;
            case B_ADD:
                for (int64_t c = 0; c < cols; c++) x[c] += buf[c];
                break;
            }
        }
    }
}

int64_t sq_boundary_numel(const sq_boundary_t *bd)
{
    int64_t n = 0;
    for (int k = 0; k < bd->n_tensors; k++) n += sq_tensor_rows(&bd->t[k]) * sq_tensor_cols(&bd->t[k]);
    return n;
}
void sq_boundary_save(const sq_boundary_t *bd, float *buf) { boundary_apply(bd, buf, B_SAVE); }
void sq_boundary_load(const sq_boundary_t *bd, const float *buf)
{
    boundary_apply(bd, (float *)buf, B_LOAD);
}
void sq_boundary_diff(const sq_boundary_t *bd, float *buf) { boundary_apply(bd, buf, B_DIFF); }
void sq_boundary_add(const sq_boundary_t *bd, const float *buf)
{
    boundary_apply(bd, (float *)buf, B_ADD);
}

int sq_boundary_pair_send(const sq_boundary_t *bd, int sign, float *buf)
{
    if (!buf || sign == 0) return 0;
    boundary_apply(bd, buf, sign > 0 ? B_SAVE : B_DIFF);
    return sign < 0;
}

void sq_boundary_pair_recv(const sq_boundary_t *bd, int sign, float *buf)
{
    if (!buf || sign == 0) return;
    boundary_apply(bd, buf, sign > 0 ? B_SAVE : B_ADD);
}

double sq_model_forward_flops(const sq_model_t *m, int B, int T)
{
    const sq_model_config_t *c = &m->cfg;
    const double N = (double)B * T, C = c->d_model, F = c->d_ff, V = c->vocab_size;
    const double HD = (double)c->n_heads * c->head_dim, KD = (double)c->n_kv_heads * c->head_dim;
    double f = 0;
    for (int u = m->unit_begin; u < m->unit_end; u++) {
        switch (sq_model_unit_kind(c, u, NULL)) {
        case SQ_UNIT_ATTN:
            f += 2 * N * C * (HD + 2 * KD) + 2 * N * HD * C;
            /* causal: query t attends t+1 keys; QK^T and PV each 2*D per key and head */
            f += (double)B * 4.0 * HD * ((double)T * (T + 1) / 2);
            break;
        case SQ_UNIT_MLP_IN: f += 2 * N * C * F * (c->glu ? 2 : 1); break;
        case SQ_UNIT_MLP_OUT: f += 2 * N * F * C; break;
        case SQ_UNIT_HEAD: f += 2 * N * C * V; break;
        default: break;
        }
    }
    return f;
}

/* Model loaders: the four fixture models, a sharded copy written here, and a
 * table of corrupt inputs each expected to fail with a given status and a
 * message naming the problem. Files are written to a mkdtemp() directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sparq/model_config.h"
#include "sparq/weights.h"

#define MODELS SQ_REPO_DIR "/models"

/* A fixture that must exist. */
static void *read_file(const char *path, size_t *len)
{
    void *b = sq_test_read_all(path, len);
    if (!b) fail_msg("%s: missing", path);
    return b;
}

static char g_dir[256];

/* ---- helpers ---- */

static void rm_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
                char sub[1024];
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                rm_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int setup_dir(void **state)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/sq_test_loaders_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    rm_tree(g_dir);
    return 0;
}

static void tmp_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", g_dir, name);
}

/* Status and message of a failed call, checked together. */
static void expect_error(sq_status_t got, sq_status_t want, const char *needle, const char *label)
{
    const char *msg = sq_error_last();
    if (got != want || !strstr(msg, needle) || (label && !strstr(msg, label)))
        fail_msg("got %s \"%s\", want %s containing \"%s\" and \"%s\"", sq_status_string(got), msg,
                 sq_status_string(want), needle, label ? label : "");
}

/* A safetensors image: u64 header length, header padded with spaces to a
 * multiple of 8 (so data is aligned), then data_len bytes of a pattern. */
static uint8_t *make_st(const char *header, size_t data_len, size_t *len)
{
    size_t h = strlen(header), hp = (h + 7) & ~(size_t)7;
    *len = 8 + hp + data_len;
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hp >> (8 * i));
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, ' ', hp - h);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + hp + i] = (uint8_t)(i * 7 + 1);
    return buf;
}

static uint16_t u16_at(const void *p, size_t i)
{
    uint16_t v;
    memcpy(&v, (const uint8_t *)p + 2 * i, 2);
    return v;
}

static float f32_at(const void *p, size_t i)
{
    float v;
    memcpy(&v, (const uint8_t *)p + 4 * i, 4);
    return v;
}

static const sq_weight_info_t *need(const sq_weight_file_t *wf, const char *name, sq_dtype_t dt,
                                    int ndim, int64_t d0, int64_t d1)
{
    const sq_weight_info_t *t = sq_weights_find(wf, name);
    if (!t) fail_msg("tensor %s not found", name);
    assert_string_equal(t->name, name);
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->ndim, ndim);
    assert_int_equal(t->shape[0], d0);
    if (ndim > 1) assert_int_equal(t->shape[1], d1);
    assert_int_equal(t->nbytes, (size_t)(d0 * (ndim > 1 ? d1 : 1)) * sq_dtype_size(dt));
    return t;
}

/* Every tensor is found by name, names are unique and data lies in order. */
static void check_table(const sq_weight_file_t *wf)
{
    size_t n = sq_weights_count(wf);
    for (size_t i = 0; i < n; i++) {
        const sq_weight_info_t *t = sq_weights_at(wf, i);
        assert_non_null(t);
        assert_ptr_equal(sq_weights_find(wf, t->name), t);
        assert_non_null(t->file);
    }
    assert_null(sq_weights_at(wf, n));
    assert_null(sq_weights_find(wf, "no.such.tensor"));
}

/* ---- fixture models ---- */

static void test_opt_mini(void **state)
{
    sq_model_config_t c;
    assert_int_equal(sq_model_config_load_hf(MODELS "/opt-mini/config.json", &c), SQ_OK);
    assert_int_equal(c.arch, SQ_ARCH_OPT);
    assert_string_equal(c.model_type, "opt");
    assert_int_equal(c.vocab_size, 50272);
    assert_int_equal(c.d_model, 192);
    assert_int_equal(c.n_layers, 6);
    assert_int_equal(c.n_heads, 6);
    assert_int_equal(c.n_kv_heads, 6);
    assert_int_equal(c.head_dim, 32);
    assert_int_equal(c.d_ff, 768);
    assert_int_equal(c.max_pos, 128);
    assert_int_equal(c.norm, SQ_NORM_LAYER);
    assert_float_equal(c.norm_eps, 1e-5f, 0);
    assert_int_equal(c.act, SQ_ACT_RELU);
    assert_int_equal(c.glu, 0);
    assert_int_equal(c.learned_pos, 1);
    assert_int_equal(c.pos_offset, 2);
    assert_int_equal(c.rope, 0);
    assert_int_equal(c.tie_embeddings, 1);
    assert_true(c.qkv_bias && c.out_bias && c.mlp_bias && c.norm_bias);
    assert_int_equal(c.dtype, SQ_DTYPE_F16);
    assert_int_equal(sq_model_config_validate(&c, "opt-mini"), SQ_OK);
    assert_string_equal(sq_arch_name(c.arch), "opt");

    sq_weight_file_t *wf;
    assert_int_equal(sq_safetensors_open(MODELS "/opt-mini", &wf), SQ_OK); /* a directory */
    assert_string_equal(sq_weights_path(wf), MODELS "/opt-mini");
    assert_int_equal(sq_weights_count(wf), 100); /* + "__metadata__" in the header */
    check_table(wf);
    const sq_weight_info_t *t =
        need(wf, "model.decoder.embed_positions.weight", SQ_DTYPE_F16, 2, 130, 192);
    assert_int_equal(u16_at(t->data, 0), 41063);
    assert_int_equal(u16_at(t->data, 1), 42142);
    assert_string_equal(t->file, MODELS "/opt-mini/model.safetensors");
    t = need(wf, "model.decoder.layers.0.fc1.weight", SQ_DTYPE_F16, 2, 768, 192);
    assert_int_equal(u16_at(t->data, 0), 40556);
    assert_int_equal(u16_at(t->data, 3), 43482);
    need(wf, "model.decoder.embed_tokens.weight", SQ_DTYPE_F16, 2, 50272, 192);
    need(wf, "model.decoder.final_layer_norm.bias", SQ_DTYPE_F16, 1, 192, 0);
    sq_weights_close(wf);
}

static void test_gpt2_random(void **state)
{
    sq_model_config_t c;
    assert_int_equal(sq_model_config_load_hf(MODELS "/gpt2-random/config.json", &c), SQ_OK);
    assert_int_equal(c.arch, SQ_ARCH_GPT2);
    assert_int_equal(c.d_model, 96);
    assert_int_equal(c.n_heads, 4);
    assert_int_equal(c.head_dim, 24);
    assert_int_equal(c.n_layers, 3);
    assert_int_equal(c.max_pos, 64);
    assert_int_equal(c.vocab_size, 1000);
    assert_int_equal(c.d_ff, 384); /* n_inner null -> 4 * n_embd */
    assert_int_equal(c.act, SQ_ACT_GELU_TANH);
    assert_float_equal(c.norm_eps, 1e-5f, 0);
    assert_int_equal(c.learned_pos, 1);
    assert_int_equal(c.pos_offset, 0);
    assert_int_equal(c.tie_embeddings, 1);
    assert_true(c.qkv_bias && c.out_bias && c.mlp_bias && c.norm_bias);
    assert_int_equal(c.dtype, SQ_DTYPE_F32);

    sq_weight_file_t *wf;
    assert_int_equal(sq_safetensors_open(MODELS "/gpt2-random/model.safetensors", &wf), SQ_OK);
    assert_int_equal(sq_weights_count(wf), 40);
    check_table(wf);
    const sq_weight_info_t *t = need(wf, "transformer.wte.weight", SQ_DTYPE_F32, 2, 1000, 96);
    assert_true(f32_at(t->data, 0) == -0.04086380451917648f);
    assert_true(f32_at(t->data, 1) == 0.08226174116134644f);
    t = need(wf, "transformer.h.0.attn.c_attn.weight", SQ_DTYPE_F32, 2, 96, 288);
    assert_true(f32_at(t->data, 0) == 0.03755011409521103f);
    need(wf, "transformer.wpe.weight", SQ_DTYPE_F32, 2, 64, 96);
    need(wf, "transformer.h.2.mlp.c_proj.weight", SQ_DTYPE_F32, 2, 384, 96);
    sq_weights_close(wf);
}

static void test_llama_random(void **state)
{
    sq_model_config_t c;
    assert_int_equal(sq_model_config_load_hf(MODELS "/llama-random/config.json", &c), SQ_OK);
    assert_int_equal(c.arch, SQ_ARCH_LLAMA);
    assert_string_equal(c.model_type, "llama");
    assert_int_equal(c.d_model, 128);
    assert_int_equal(c.d_ff, 344);
    assert_int_equal(c.n_heads, 8);
    assert_int_equal(c.n_kv_heads, 2);
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(c.n_layers, 3);
    assert_int_equal(c.max_pos, 128);
    assert_int_equal(c.vocab_size, 1000);
    assert_int_equal(c.norm, SQ_NORM_RMS);
    assert_float_equal(c.norm_eps, 1e-6f, 0);
    assert_int_equal(c.rope, 1);
    assert_int_equal(c.rope_style, SQ_ROPE_HALF);
    assert_float_equal(c.rope_theta, 10000.0f, 0);
    assert_int_equal(c.glu, 1);
    assert_int_equal(c.act, SQ_ACT_SILU);
    assert_int_equal(c.learned_pos, 0);
    assert_int_equal(c.tie_embeddings, 0);
    assert_false(c.qkv_bias || c.out_bias || c.mlp_bias || c.norm_bias);

    sq_weight_file_t *wf;
    assert_int_equal(sq_safetensors_open(MODELS "/llama-random", &wf), SQ_OK);
    assert_int_equal(sq_weights_count(wf), 30);
    check_table(wf);
    const sq_weight_info_t *t =
        need(wf, "model.layers.0.self_attn.k_proj.weight", SQ_DTYPE_BF16, 2, 32, 128);
    assert_int_equal(u16_at(t->data, 0), 15741);
    assert_int_equal(u16_at(t->data, 1), 48406);
    t = need(wf, "lm_head.weight", SQ_DTYPE_BF16, 2, 1000, 128);
    assert_int_equal(u16_at(t->data, 3), 48438);
    need(wf, "model.layers.2.mlp.down_proj.weight", SQ_DTYPE_BF16, 2, 128, 344);
    sq_weights_close(wf);
}

static void test_stories260k(void **state)
{
    sq_model_config_t c;
    sq_weight_file_t *wf;
    assert_int_equal(sq_llama2c_open(MODELS "/stories260K/stories260K.bin", &c, &wf), SQ_OK);
    assert_int_equal(c.arch, SQ_ARCH_LLAMA);
    assert_string_equal(c.model_type, "llama2c");
    assert_int_equal(c.d_model, 64);
    assert_int_equal(c.d_ff, 172);
    assert_int_equal(c.n_layers, 5);
    assert_int_equal(c.n_heads, 8);
    assert_int_equal(c.n_kv_heads, 4);
    assert_int_equal(c.head_dim, 8);
    assert_int_equal(c.vocab_size, 512);
    assert_int_equal(c.max_pos, 512);
    assert_int_equal(c.norm, SQ_NORM_RMS);
    assert_float_equal(c.norm_eps, 1e-5f, 0);
    assert_int_equal(c.rope_style, SQ_ROPE_INTERLEAVED);
    assert_float_equal(c.rope_theta, 10000.0f, 0);
    assert_int_equal(c.glu, 1);
    assert_int_equal(c.act, SQ_ACT_SILU);
    assert_int_equal(c.tie_embeddings, 1);
    assert_int_equal(c.dtype, SQ_DTYPE_F32);
    assert_false(c.qkv_bias || c.out_bias || c.mlp_bias || c.norm_bias);

    assert_int_equal(sq_weights_count(wf), 1 + 9 * 5 + 1);
    check_table(wf);
    const sq_weight_info_t *t = need(wf, "model.embed_tokens.weight", SQ_DTYPE_F32, 2, 512, 64);
    assert_true(f32_at(t->data, 0) == -0.29474878311157227f);
    assert_true(f32_at(t->data, 1) == 0.5618956089019775f);
    t = need(wf, "model.norm.weight", SQ_DTYPE_F32, 1, 64, 0);
    assert_true(f32_at(t->data, 0) == 2.4583089351654053f);
    t = need(wf, "model.layers.1.self_attn.q_proj.weight", SQ_DTYPE_F32, 2, 64, 64);
    assert_true(f32_at(t->data, 0) == 0.21412323415279388f);
    need(wf, "model.layers.4.self_attn.k_proj.weight", SQ_DTYPE_F32, 2, 32, 64);
    need(wf, "model.layers.0.mlp.gate_proj.weight", SQ_DTYPE_F32, 2, 172, 64);
    need(wf, "model.layers.0.mlp.down_proj.weight", SQ_DTYPE_F32, 2, 64, 172);
    need(wf, "model.layers.3.post_attention_layernorm.weight", SQ_DTYPE_F32, 1, 64, 0);
    assert_null(sq_weights_find(wf, "lm_head.weight")); /* shared classifier */
    sq_weights_close(wf);
}

/* A tiny unshared llama2.c file whose floats are their own index, so every
 * tensor's first element says where the loader thinks it starts. */
static void test_llama2c_layout(void **state)
{
    const int32_t hdr[7] = {8, 12, 2, 2, 1, -16, 4};
    const size_t floats = 1272;
    size_t len = 28 + floats * 4;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    memcpy(buf, hdr, 28);
    for (size_t i = 0; i < floats; i++) {
        float v = (float)i;
        memcpy(buf + 28 + 4 * i, &v, 4);
    }
    char path[512];
    tmp_path(path, sizeof path, "unshared.bin");
    sq_test_write_file(path, buf, len);

    sq_model_config_t c;
    sq_weight_file_t *wf;
    assert_int_equal(sq_llama2c_open(path, &c, &wf), SQ_OK);
    assert_int_equal(c.vocab_size, 16);
    assert_int_equal(c.tie_embeddings, 0);
    assert_int_equal(c.n_kv_heads, 1);
    assert_int_equal(c.head_dim, 4);
    check_table(wf);
    static const struct {
        const char *name;
        int ndim;
        int64_t d0, d1;
        float first;
    } want[] = {
        {"model.embed_tokens.weight", 2, 16, 8, 0},
        {"model.layers.0.input_layernorm.weight", 1, 8, 0, 128},
        {"model.layers.1.input_layernorm.weight", 1, 8, 0, 136},
        {"model.layers.0.self_attn.q_proj.weight", 2, 8, 8, 144},
        {"model.layers.1.self_attn.q_proj.weight", 2, 8, 8, 208},
        {"model.layers.0.self_attn.k_proj.weight", 2, 4, 8, 272},
        {"model.layers.1.self_attn.k_proj.weight", 2, 4, 8, 304},
        {"model.layers.0.self_attn.v_proj.weight", 2, 4, 8, 336},
        {"model.layers.1.self_attn.v_proj.weight", 2, 4, 8, 368},
        {"model.layers.0.self_attn.o_proj.weight", 2, 8, 8, 400},
        {"model.layers.1.self_attn.o_proj.weight", 2, 8, 8, 464},
        {"model.layers.0.post_attention_layernorm.weight", 1, 8, 0, 528},
        {"model.layers.1.post_attention_layernorm.weight", 1, 8, 0, 536},
        {"model.layers.0.mlp.gate_proj.weight", 2, 12, 8, 544},
        {"model.layers.1.mlp.gate_proj.weight", 2, 12, 8, 640},
        {"model.layers.0.mlp.down_proj.weight", 2, 8, 12, 736},
        {"model.layers.1.mlp.down_proj.weight", 2, 8, 12, 832},
        {"model.layers.0.mlp.up_proj.weight", 2, 12, 8, 928},
        {"model.layers.1.mlp.up_proj.weight", 2, 12, 8, 1024},
        {"model.norm.weight", 1, 8, 0, 1120},
        {"lm_head.weight", 2, 16, 8, 1144},
    };
    assert_int_equal(sq_weights_count(wf), sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const sq_weight_info_t *t =
            need(wf, want[i].name, SQ_DTYPE_F32, want[i].ndim, want[i].d0, want[i].d1);
        if (f32_at(t->data, 0) != want[i].first)
            fail_msg("%s starts at float %g, want %g", want[i].name, f32_at(t->data, 0),
                     want[i].first);
    }
    sq_weights_close(wf);
    free(buf);
}

/* ---- sharded copy of gpt2-random ---- */

/* Write the given tensors of src as one safetensors file. */
static void write_shard(const char *path, const sq_weight_file_t *src, const char *const *names,
                        size_t n)
{
    cJSON *h = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const sq_weight_info_t *t = sq_weights_find(src, names[i]);
        assert_non_null(t);
        cJSON *e = cJSON_AddObjectToObject(h, t->name);
        cJSON_AddStringToObject(e, "dtype", "F32");
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + t->nbytes)));
        off += t->nbytes;
    }
    char *text = cJSON_PrintUnformatted(h);
    size_t len;
    uint8_t *buf = make_st(text, off, &len);
    uint8_t *data = buf + len - off;
    for (size_t i = 0; i < n; i++) {
        const sq_weight_info_t *t = sq_weights_find(src, names[i]);
        memcpy(data, t->data, t->nbytes);
        data += t->nbytes;
    }
    sq_test_write_file(path, buf, len);
    free(buf);
    cJSON_free(text);
    cJSON_Delete(h);
}

/* index.json mapping names[i] to shards[i]. */
static void write_index(const char *path, const char *const *names, const char *const *shards,
                        size_t n)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
    cJSON_AddNumberToObject(meta, "total_size", 0);
    cJSON *map = cJSON_AddObjectToObject(root, "weight_map");
    for (size_t i = 0; i < n; i++)
        cJSON_AddStringToObject(map, names[i], shards[i]);
    char *text = cJSON_Print(root);
    sq_test_write_file(path, text, strlen(text));
    cJSON_free(text);
    cJSON_Delete(root);
}

static void test_sharded(void **state)
{
    sq_weight_file_t *one;
    assert_int_equal(sq_safetensors_open(MODELS "/gpt2-random/model.safetensors", &one), SQ_OK);
    size_t n = sq_weights_count(one);
    const char **names = calloc(n + 1, sizeof *names);
    const char **shard_of = calloc(n + 1, sizeof *shard_of);
    const char **part[2] = {calloc(n, sizeof(char *)), calloc(n, sizeof(char *))};
    size_t np[2] = {0, 0};
    static const char *const files[2] = {"model-00001-of-00002.safetensors",
                                         "model-00002-of-00002.safetensors"};
    for (size_t i = 0; i < n; i++) {
        names[i] = sq_weights_at(one, i)->name;
        int s = (int)(i % 2);
        shard_of[i] = files[s];
        part[s][np[s]++] = names[i];
    }
    char dir[512], path[600];
    tmp_path(dir, sizeof dir, "sharded");
    assert_int_equal(mkdir(dir, 0700), 0);
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[s]);
        write_shard(path, one, part[s], np[s]);
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    write_index(path, names, shard_of, n);

    /* Through the index file and through the directory. */
    for (int via_dir = 0; via_dir < 2; via_dir++) {
        sq_weight_file_t *sh;
        sq_status_t st = sq_safetensors_open(via_dir ? dir : path, &sh);
        if (st != SQ_OK) fail_msg("%s", sq_error_last());
        assert_string_equal(sq_weights_path(sh), via_dir ? dir : path);
        assert_int_equal(sq_weights_count(sh), n);
        check_table(sh);
        for (size_t i = 0; i < n; i++) {
            const sq_weight_info_t *a = sq_weights_at(one, i), *b = sq_weights_find(sh, a->name);
            assert_non_null(b);
            assert_int_equal(a->dtype, b->dtype);
            assert_int_equal(a->ndim, b->ndim);
            assert_memory_equal(a->shape, b->shape, sizeof a->shape);
            assert_int_equal(a->nbytes, b->nbytes);
            assert_memory_equal(a->data, b->data, a->nbytes);
            assert_non_null(strstr(b->file, files[i % 2]));
        }
        sq_weights_close(sh);
    }

    /* A shard the index names does not exist. */
    shard_of[n - 1] = "model-00003-of-00002.safetensors";
    snprintf(path, sizeof path, "%s/missing_shard.index.json", dir);
    write_index(path, names, shard_of, n);
    sq_weight_file_t *bad = NULL;
    expect_error(sq_safetensors_open(path, &bad), SQ_ERR_NOT_FOUND,
                 "model-00003-of-00002.safetensors", path);
    assert_null(bad);

    /* The index puts a tensor in a shard that does not hold it. */
    shard_of[n - 1] = files[n % 2]; /* the other shard */
    snprintf(path, sizeof path, "%s/wrong_shard.index.json", dir);
    write_index(path, names, shard_of, n);
    expect_error(sq_safetensors_open(path, &bad), SQ_ERR_NOT_FOUND, "which does not hold it",
                 names[n - 1]);
    shard_of[n - 1] = files[(n - 1) % 2];

    /* The index names a tensor that no shard holds. */
    names[n] = "transformer.h.9.attn.c_attn.weight";
    shard_of[n] = files[0];
    snprintf(path, sizeof path, "%s/absent_tensor.index.json", dir);
    write_index(path, names, shard_of, n + 1);
    expect_error(sq_safetensors_open(path, &bad), SQ_ERR_NOT_FOUND, names[n], path);

    /* A tensor held by two shards. */
    snprintf(path, sizeof path, "%s/dup.safetensors", dir);
    const char *dup[1] = {part[0][0]};
    write_shard(path, one, dup, 1);
    shard_of[n] = "dup.safetensors";
    names[n] = part[0][0]; /* a repeated weight_map key: one more shard to open */
    snprintf(path, sizeof path, "%s/dup.index.json", dir);
    write_index(path, names, shard_of, n + 1);
    expect_error(sq_safetensors_open(path, &bad), SQ_ERR_FORMAT, "is present in both", part[0][0]);

    /* A directory with neither file. */
    tmp_path(path, sizeof path, "empty_dir");
    assert_int_equal(mkdir(path, 0700), 0);
    expect_error(sq_safetensors_open(path, &bad), SQ_ERR_NOT_FOUND, "holds neither", path);

    free(part[0]);
    free(part[1]);
    free(shard_of);
    free(names);
    sq_weights_close(one);
}

/* ---- corrupt safetensors ---- */

typedef struct st_case {
    const char *what;
    const char *header; /* JSON text (padded to a multiple of 8) */
    size_t data_len;
    int64_t hlen; /* >= 0: write this header length instead of the real one */
    size_t cut;   /* bytes removed from the end of the image */
    sq_status_t st;
    const char *msg;
} st_case_t;

#define T1 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}"

static const st_case_t st_cases[] = {
    {"header length past the file", T1, 24, 4096, 0, SQ_ERR_FORMAT,
     "header length 4096 exceeds the"},
    {"header length 0", T1, 24, 0, 0, SQ_ERR_FORMAT, "header length is 0"},
    {"header length over the maximum", T1, 24, 200ll * 1024 * 1024, 0, SQ_ERR_FORMAT,
     "exceeds the 104857600-byte maximum"},
    {"file shorter than the length field", "{}", 0, -1, 12, SQ_ERR_FORMAT,
     "too short for the 8-byte header length"},
    {"truncated inside the header", T1, 0, -1, 8, SQ_ERR_FORMAT, "(truncated file?)"},
    {"truncated data", T1, 24, -1, 4, SQ_ERR_RANGE,
     "data_offsets [0, 24] run past the 20-byte data section"},
    {"non-JSON header", "{\"a\": not json", 0, -1, 0, SQ_ERR_FORMAT, "header is not valid JSON"},
    {"header not an object", "[1, 2, 3]", 0, -1, 0, SQ_ERR_FORMAT,
     "header is an array, not a JSON object"},
    {"garbage after the object", "{} x", 0, -1, 0, SQ_ERR_FORMAT,
     "unexpected bytes after the JSON header"},
    {"entry not an object", "{\"a\": 5}", 0, -1, 0, SQ_ERR_FORMAT,
     "tensor \"a\": entry is a number, not an object"},
    {"missing dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1, 0, SQ_ERR_FORMAT,
     "tensor \"a\": missing \"dtype\""},
    {"unknown dtype", "{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1, 0,
     SQ_ERR_FORMAT, "tensor \"a\": unknown dtype \"Q9\""},
    {"unsupported dtype", "{\"idx\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16,
     -1, 0, SQ_ERR_UNSUPPORTED, "tensor \"idx\": dtype I64 is not supported"},
    {"missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, -1, 0, SQ_ERR_FORMAT,
     "tensor \"a\": missing \"shape\""},
    {"negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-3],\"data_offsets\":[0,24]}}", 24, -1,
     0, SQ_ERR_FORMAT, "tensor \"a\": shape[1] is -3, not a non-negative integer"},
    {"fractional dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, -1,
     0, SQ_ERR_FORMAT, "shape[0] is 2.5"},
    {"string dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, -1, 0,
     SQ_ERR_FORMAT, "shape[0] is a string"},
    {"five dims", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, -1,
     0, SQ_ERR_UNSUPPORTED, "shape has 5 dimensions, at most 4"},
    {"element count overflow",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,8]}}", 8,
     -1, 0, SQ_ERR_FORMAT, "tensor \"a\": element count of the shape overflows"},
    {"byte size overflow",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,1073741824],\"data_offsets\":[0,8]}}", 8, -1,
     0, SQ_ERR_FORMAT, "byte size of the shape overflows"},
    {"missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, -1, 0, SQ_ERR_FORMAT,
     "missing \"data_offsets\""},
    {"data_offsets of three", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}",
     8, -1, 0, SQ_ERR_FORMAT, "\"data_offsets\" must be an array [begin, end]"},
    {"negative offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, -1,
     0, SQ_ERR_FORMAT, "data_offsets must be non-negative integers"},
    {"offsets reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, -1,
     0, SQ_ERR_FORMAT, "data_offsets [8, 0] end before they begin"},
    {"offsets out of range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
     16, -1, 0, SQ_ERR_RANGE, "tensor \"a\": data_offsets [8, 24] run past the 16-byte"},
    {"huge offsets",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[9007199254740984,"
     "9007199254740992]}}",
     8, -1, 0, SQ_ERR_RANGE, "run past"},
    {"offsets/shape mismatch",
     "{\"x.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", 24, -1, 0,
     SQ_ERR_FORMAT,
     "tensor \"x.weight\": data_offsets [0, 12] hold 12 bytes but shape [2,3] F32 needs 24"},
    {"overlapping tensors",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
     "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[8,16]}}",
     16, -1, 0, SQ_ERR_FORMAT, "tensors \"a\" [0, 16] and \"b\" [8, 16] overlap"},
    {"duplicate name",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     8, -1, 0, SQ_ERR_FORMAT, "tensor \"a\" appears twice"},
    {"misaligned data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 8, -1,
     0, SQ_ERR_UNSUPPORTED, "not aligned to its 4-byte F32 elements"},
    {"metadata not strings", "{\"__metadata__\":{\"format\":1}}", 0, -1, 0, SQ_ERR_FORMAT,
     "\"__metadata__\" entry \"format\" is a number"},
    {"metadata not an object", "{\"__metadata__\":[]}", 0, -1, 0, SQ_ERR_FORMAT,
     "\"__metadata__\" is an array, not an object"},
};

static void test_corrupt_safetensors(void **state)
{
    char path[512];
    for (size_t i = 0; i < sizeof st_cases / sizeof st_cases[0]; i++) {
        const st_case_t *c = &st_cases[i];
        size_t len;
        uint8_t *buf = make_st(c->header, c->data_len, &len);
        if (c->hlen >= 0)
            for (int b = 0; b < 8; b++)
                buf[b] = (uint8_t)((uint64_t)c->hlen >> (8 * b));
        assert_true(c->cut <= len);
        len -= c->cut;

        sq_weight_file_t *wf = NULL;
        sq_error_clear();
        sq_status_t st = sq_safetensors_parse(buf, len, "case.safetensors", &wf);
        if (st != c->st || !strstr(sq_error_last(), c->msg) ||
            strncmp(sq_error_last(), "case.safetensors: ", 18) != 0)
            fail_msg("parse, case \"%s\": got %s \"%s\", want %s \"%s\"", c->what,
                     sq_status_string(st), sq_error_last(), sq_status_string(c->st), c->msg);
        assert_null(wf);

        snprintf(path, sizeof path, "%s/case%02zu.safetensors", g_dir, i);
        sq_test_write_file(path, buf, len);
        st = sq_safetensors_open(path, &wf);
        if (st != c->st || !strstr(sq_error_last(), c->msg) || !strstr(sq_error_last(), path))
            fail_msg("open, case \"%s\": got %s \"%s\", want %s \"%s\"", c->what,
                     sq_status_string(st), sq_error_last(), sq_status_string(c->st), c->msg);
        assert_null(wf);
        free(buf);
    }
}

static void test_valid_edge_safetensors(void **state)
{
    /* metadata, a scalar, an empty tensor sharing an offset, gaps, padding */
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                    "\"e\":{\"dtype\":\"BF16\",\"shape\":[0,5],\"data_offsets\":[4,4]},"
                    "\"h\":{\"dtype\":\"F16\",\"shape\":[1,1,1,2],\"data_offsets\":[8,12]}}";
    size_t len;
    uint8_t *buf = make_st(h, 16, &len);
    sq_weight_file_t *wf;
    assert_int_equal(sq_safetensors_parse(buf, len, "edge", &wf), SQ_OK);
    assert_int_equal(sq_weights_count(wf), 3);
    check_table(wf);
    assert_string_equal(sq_weights_path(wf), "edge");
    const sq_weight_info_t *t = sq_weights_find(wf, "s");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->nbytes, 4);
    assert_ptr_equal(t->data, buf + len - 16);
    t = sq_weights_find(wf, "e");
    assert_int_equal(t->nbytes, 0);
    t = sq_weights_find(wf, "h");
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->shape[3], 2);
    assert_ptr_equal(t->data, buf + len - 8);
    assert_string_equal(t->file, "edge");
    /* names are sorted for lookup */
    assert_string_equal(sq_weights_at(wf, 0)->name, "e");
    sq_weights_close(wf);
    free(buf);

    /* An empty header object is a valid file with no tensors. */
    buf = make_st("{}", 0, &len);
    assert_int_equal(sq_safetensors_parse(buf, len, "empty", &wf), SQ_OK);
    assert_int_equal(sq_weights_count(wf), 0);
    assert_null(sq_weights_find(wf, "x"));
    sq_weights_close(wf);
    free(buf);

    /* A zero-byte file and a path that does not exist. */
    char path[512];
    tmp_path(path, sizeof path, "zero.safetensors");
    sq_test_write_file(path, "", 0);
    wf = NULL;
    expect_error(sq_safetensors_open(path, &wf), SQ_ERR_FORMAT, "file is 0 bytes", path);
    tmp_path(path, sizeof path, "nope.safetensors");
    expect_error(sq_safetensors_open(path, &wf), SQ_ERR_NOT_FOUND, "No such file", path);
    assert_null(wf);
    sq_weights_close(NULL);
}

/* ---- config.json ---- */

typedef struct cfg_case {
    const char *what;
    const char *json;
    sq_status_t st;
    const char *msg;
} cfg_case_t;

/* Each base leaves out the keys that the cases vary (cJSON keeps the first
 * of duplicate keys). */
#define OPT_BASE                                                                                   \
    "\"model_type\":\"opt\",\"ffn_dim\":768,\"num_attention_heads\":6,\"num_hidden_layers\":6,"    \
    "\"max_position_embeddings\":128,\"vocab_size\":50272"
#define LLAMA_BASE                                                                                 \
    "\"model_type\":\"llama\",\"hidden_size\":128,\"intermediate_size\":344,"                      \
    "\"num_attention_heads\":8,\"num_hidden_layers\":2,\"max_position_embeddings\":128"

static const cfg_case_t cfg_bad[] = {
    {"missing key", "{" OPT_BASE "}", SQ_ERR_CONFIG, "missing required key \"hidden_size\""},
    {"wrong type", "{" OPT_BASE ",\"hidden_size\":\"192\"}", SQ_ERR_CONFIG,
     "key \"hidden_size\" must be an integer, not a string"},
    {"fractional int", "{" OPT_BASE ",\"hidden_size\":192.5}", SQ_ERR_CONFIG,
     "key \"hidden_size\" must be an integer, not 192.5"},
    {"bool wrong type", "{" OPT_BASE ",\"hidden_size\":192,\"enable_bias\":1}", SQ_ERR_CONFIG,
     "key \"enable_bias\" must be true or false"},
    {"unknown model_type", "{\"model_type\":\"bert\",\"hidden_size\":192}", SQ_ERR_UNSUPPORTED,
     "model_type \"bert\" is not supported (supported: opt, gpt2, llama, mistral, qwen2)"},
    {"missing model_type", "{\"hidden_size\":192}", SQ_ERR_CONFIG,
     "missing required key \"model_type\""},
    {"not JSON", "{\"model_type\": opt}", SQ_ERR_FORMAT, "not valid JSON"},
    {"not an object", "[\"opt\"]", SQ_ERR_FORMAT, "not a JSON object"},
    {"heads not dividing hidden", "{" OPT_BASE ",\"hidden_size\":190}", SQ_ERR_RANGE,
     "num_attention_heads = 6 does not divide hidden_size = 190"},
    {"zero hidden", "{" OPT_BASE ",\"hidden_size\":0}", SQ_ERR_RANGE,
     "hidden_size = 0 is outside [1, 16777216]"},
    {"absurd vocab",
     "{\"model_type\":\"opt\",\"hidden_size\":192,\"ffn_dim\":768,\"num_attention_heads\":6,"
     "\"num_hidden_layers\":6,\"max_position_embeddings\":128,\"vocab_size\":33554432}",
     SQ_ERR_RANGE, "vocab_size = 33554432 is outside"},
    {"int overflow", "{" OPT_BASE ",\"hidden_size\":1e12}", SQ_ERR_RANGE,
     "hidden_size = 1e+12 is out of range"},
    {"post-LN OPT", "{" OPT_BASE ",\"hidden_size\":192,\"do_layer_norm_before\":false}",
     SQ_ERR_UNSUPPORTED, "post-LN OPT (opt-350m) is not supported"},
    {"OPT projection", "{" OPT_BASE ",\"hidden_size\":192,\"word_embed_proj_dim\":128}",
     SQ_ERR_UNSUPPORTED, "word_embed_proj_dim = 128 differs from hidden_size = 192"},
    {"OPT activation", "{" OPT_BASE ",\"hidden_size\":192,\"activation_function\":\"swish\"}",
     SQ_ERR_UNSUPPORTED, "activation_function \"swish\""},
    {"bad torch_dtype", "{" OPT_BASE ",\"hidden_size\":192,\"torch_dtype\":\"float64\"}",
     SQ_ERR_UNSUPPORTED, "torch_dtype \"float64\" is not supported"},
    {"kv heads not dividing heads",
     "{" LLAMA_BASE ",\"vocab_size\":1000,\"num_key_value_heads\":3}", SQ_ERR_RANGE,
     "num_key_value_heads = 3 does not divide num_attention_heads = 8"},
    {"eps zero", "{" LLAMA_BASE ",\"vocab_size\":1000,\"rms_norm_eps\":0}", SQ_ERR_RANGE,
     "rms_norm_eps = 0 is outside (0, 1)"},
    {"eps overflow", "{" LLAMA_BASE ",\"vocab_size\":1000,\"rms_norm_eps\":1e300}", SQ_ERR_RANGE,
     "rms_norm_eps = 1e+300 does not fit a float"},
    {"llama missing vocab", "{" LLAMA_BASE "}", SQ_ERR_CONFIG,
     "missing required key \"vocab_size\""},
    {"rope_scaling", "{" LLAMA_BASE ",\"vocab_size\":1000,\"rope_scaling\":{\"type\":\"linear\"}}",
     SQ_ERR_UNSUPPORTED, "rope_scaling"},
    {"hidden_act", "{" LLAMA_BASE ",\"vocab_size\":1000,\"hidden_act\":\"gelu\"}",
     SQ_ERR_UNSUPPORTED, "hidden_act \"gelu\""},
    {"odd head_dim", "{" LLAMA_BASE ",\"vocab_size\":1000,\"head_dim\":15}", SQ_ERR_RANGE,
     "head_dim = 15 must be even"},
    {"gpt2 bad n_inner",
     "{\"model_type\":\"gpt2\",\"n_embd\":96,\"n_head\":4,\"n_layer\":3,\"n_positions\":64,"
     "\"vocab_size\":1000,\"n_inner\":-1}",
     SQ_ERR_RANGE, "n_inner = -1 is outside"},
    {"gpt2 heads",
     "{\"model_type\":\"gpt2\",\"n_embd\":96,\"n_head\":5,\"n_layer\":3,"
     "\"n_positions\":64,\"vocab_size\":1000}",
     SQ_ERR_RANGE, "n_head = 5 does not divide n_embd = 96"},
    {"gpt2 tie type",
     "{\"model_type\":\"gpt2\",\"n_embd\":96,\"n_head\":4,\"n_layer\":3,"
     "\"n_positions\":64,\"vocab_size\":1000,\"tie_word_embeddings\":\"yes\"}",
     SQ_ERR_CONFIG, "key \"tie_word_embeddings\" must be true or false, not a string"},
};

static void test_config_errors(void **state)
{
    char path[512];
    for (size_t i = 0; i < sizeof cfg_bad / sizeof cfg_bad[0]; i++) {
        const cfg_case_t *c = &cfg_bad[i];
        snprintf(path, sizeof path, "%s/config%02zu.json", g_dir, i);
        sq_test_write_file(path, c->json, strlen(c->json));
        sq_model_config_t cfg;
        memset(&cfg, 0x5a, sizeof cfg);
        sq_error_clear();
        sq_status_t st = sq_model_config_load_hf(path, &cfg);
        if (st != c->st || !strstr(sq_error_last(), c->msg) || !strstr(sq_error_last(), path))
            fail_msg("case \"%s\": got %s \"%s\", want %s \"%s\"", c->what, sq_status_string(st),
                     sq_error_last(), sq_status_string(c->st), c->msg);
        assert_int_equal(cfg.d_model, 0x5a5a5a5a); /* untouched on failure */
    }
    sq_model_config_t cfg;
    tmp_path(path, sizeof path, "no_such_config.json");
    expect_error(sq_model_config_load_hf(path, &cfg), SQ_ERR_NOT_FOUND, "cannot open", path);
}

static void test_config_families(void **state)
{
    char path[512];
    sq_model_config_t c;
    tmp_path(path, sizeof path, "mistral.json");
    const char *mistral = "{\"model_type\":\"mistral\",\"hidden_size\":128,"
                          "\"intermediate_size\":344,\"num_attention_heads\":8,"
                          "\"num_key_value_heads\":null,\"num_hidden_layers\":2,"
                          "\"max_position_embeddings\":4096,\"vocab_size\":1000,"
                          "\"sliding_window\":4096,\"rope_theta\":1000000.0,"
                          "\"rope_scaling\":null,\"head_dim\":null,\"torch_dtype\":\"bfloat16\"}";
    sq_test_write_file(path, mistral, strlen(mistral));
    assert_int_equal(sq_model_config_load_hf(path, &c), SQ_OK);
    assert_string_equal(c.model_type, "mistral");
    assert_int_equal(c.arch, SQ_ARCH_LLAMA);
    assert_int_equal(c.n_kv_heads, 8);
    assert_int_equal(c.head_dim, 16);
    assert_float_equal(c.rope_theta, 1e6f, 0);
    assert_float_equal(c.norm_eps, 1e-6f, 0);
    assert_int_equal(c.dtype, SQ_DTYPE_BF16);
    assert_false(c.qkv_bias || c.out_bias);

    tmp_path(path, sizeof path, "qwen2.json");
    const char *qwen = "{\"model_type\":\"qwen2\",\"hidden_size\":128,\"intermediate_size\":344,"
                       "\"num_attention_heads\":8,\"num_key_value_heads\":2,"
                       "\"num_hidden_layers\":2,\"max_position_embeddings\":128,"
                       "\"vocab_size\":1000,\"rms_norm_eps\":1e-6,\"tie_word_embeddings\":true,"
                       "\"use_sliding_window\":false}";
    sq_test_write_file(path, qwen, strlen(qwen));
    assert_int_equal(sq_model_config_load_hf(path, &c), SQ_OK);
    assert_int_equal(c.qkv_bias, 1);
    assert_int_equal(c.out_bias, 0);
    assert_int_equal(c.mlp_bias, 0);
    assert_int_equal(c.tie_embeddings, 1);

    tmp_path(path, sizeof path, "llama_bias.json");
    const char *llama = "{" LLAMA_BASE ",\"vocab_size\":1000,\"attention_bias\":true,"
                        "\"mlp_bias\":true,\"head_dim\":32,\"dtype\":\"float16\"}";
    sq_test_write_file(path, llama, strlen(llama));
    assert_int_equal(sq_model_config_load_hf(path, &c), SQ_OK);
    assert_int_equal(c.qkv_bias, 1);
    assert_int_equal(c.out_bias, 1);
    assert_int_equal(c.mlp_bias, 1);
    assert_int_equal(c.head_dim, 32); /* H*D need not equal C for LLaMA */
    assert_int_equal(c.dtype, SQ_DTYPE_F16);

    tmp_path(path, sizeof path, "opt_gelu.json");
    const char *opt = "{" OPT_BASE ",\"hidden_size\":192,\"activation_function\":\"gelu\","
                      "\"enable_bias\":false,\"tie_word_embeddings\":false}";
    sq_test_write_file(path, opt, strlen(opt));
    assert_int_equal(sq_model_config_load_hf(path, &c), SQ_OK);
    assert_int_equal(c.act, SQ_ACT_GELU_ERF);
    assert_false(c.qkv_bias || c.out_bias || c.mlp_bias);
    assert_int_equal(c.norm_bias, 1);
    assert_int_equal(c.tie_embeddings, 0);

    /* The public validator, with our own field names. */
    c.n_kv_heads = 5;
    expect_error(sq_model_config_validate(&c, "cfg"), SQ_ERR_RANGE,
                 "n_kv_heads = 5 does not divide n_heads = 6", "cfg: ");
}

/* ---- corrupt llama2.c ---- */

static void test_corrupt_llama2c(void **state)
{
    size_t len;
    uint8_t *orig = read_file(MODELS "/stories260K/stories260K.bin", &len);
    uint8_t *buf = malloc(len + 8);
    assert_non_null(buf);
    char path[512];
    sq_model_config_t c;
    sq_weight_file_t *wf = NULL;

    /* truncated by one float */
    tmp_path(path, sizeof path, "trunc.bin");
    sq_test_write_file(path, orig, len - 4);
    expect_error(sq_llama2c_open(path, &c, &wf), SQ_ERR_FORMAT,
                 "implies 1056540 bytes but the file has 1056536", path);
    assert_null(wf);

    /* one float too many */
    memcpy(buf, orig, len);
    memset(buf + len, 0, 4);
    tmp_path(path, sizeof path, "long.bin");
    sq_test_write_file(path, buf, len + 4);
    expect_error(sq_llama2c_open(path, &c, &wf), SQ_ERR_FORMAT, "but the file has 1056544", path);

    /* shorter than the header */
    tmp_path(path, sizeof path, "tiny.bin");
    sq_test_write_file(path, orig, 20);
    expect_error(sq_llama2c_open(path, &c, &wf), SQ_ERR_FORMAT, "shorter than the 28-byte", path);

    static const struct {
        int field;
        int32_t value;
        sq_status_t st;
        const char *msg;
    } hdr[] = {
        {0, 1 << 30, SQ_ERR_RANGE, "dim = 1073741824 is outside"},
        {0, -64, SQ_ERR_RANGE, "dim = -64 is outside"},
        {1, 0, SQ_ERR_RANGE, "hidden_dim = 0 is outside"},
        {2, 1 << 24, SQ_ERR_FORMAT, "implies"}, /* sane per field, far too big a file */
        {3, 7, SQ_ERR_RANGE, "n_heads = 7 does not divide dim = 64"},
        {4, 3, SQ_ERR_RANGE, "n_kv_heads = 3 does not divide n_heads = 8"},
        {4, 16, SQ_ERR_RANGE, "n_kv_heads = 16 does not divide n_heads = 8"},
        {5, INT32_MIN, SQ_ERR_RANGE, "vocab_size = 0 is outside"},
        {5, -512, SQ_ERR_FORMAT, "vocab_size -512, seq_len 512) implies 1187612 bytes"},
        {6, 0x7fffffff, SQ_ERR_RANGE, "seq_len = 2147483647 is outside"},
        {3, 64, SQ_ERR_RANGE, "dim / n_heads = 1 must be even"}, /* RoPE rotates pairs */
    };
    for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++) {
        memcpy(buf, orig, len);
        memcpy(buf + 4 * hdr[i].field, &hdr[i].value, 4);
        snprintf(path, sizeof path, "%s/hdr%02zu.bin", g_dir, i);
        sq_test_write_file(path, buf, len);
        sq_status_t st = sq_llama2c_open(path, &c, &wf);
        if (st != hdr[i].st || !strstr(sq_error_last(), hdr[i].msg) ||
            !strstr(sq_error_last(), path))
            fail_msg("header field %d = %d: got %s \"%s\", want %s \"%s\"", hdr[i].field,
                     hdr[i].value, sq_status_string(st), sq_error_last(),
                     sq_status_string(hdr[i].st), hdr[i].msg);
        assert_null(wf);
    }
    free(buf);
    free(orig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opt_mini),
        cmocka_unit_test(test_gpt2_random),
        cmocka_unit_test(test_llama_random),
        cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_llama2c_layout),
        cmocka_unit_test(test_sharded),
        cmocka_unit_test(test_corrupt_safetensors),
        cmocka_unit_test(test_valid_edge_safetensors),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_families),
        cmocka_unit_test(test_corrupt_llama2c),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}

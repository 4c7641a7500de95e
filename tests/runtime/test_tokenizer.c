/* runtime: GPT-2 byte-level BPE tokenizer against ids from the reference
 * implementation, both file layouts, round trips and bad files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sparq/tokenizer.h"

#define GPT2_DIR SQ_REPO_DIR "/models/gpt2-tokenizer"
#define CASES SQ_REPO_DIR "/data/tokenizer-gpt2-cases.jsonl"
#define MOBY SQ_REPO_DIR "/data/text/moby-dick-ch1-12.txt"
#define GPT2_EOT 50256

/* ---- helpers ------------------------------------------------------------- */

static void write_str(const char *dir, const char *name, const char *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    sq_test_write_file(path, s, strlen(s));
}

static void write_json(const char *dir, const char *name, const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    assert_non_null(s);
    write_str(dir, name, s);
    free(s);
}

/* A scratch directory; files are removed by name, then the directory. */
typedef struct scratch {
    char dir[64];
} scratch_t;

static void scratch_make(scratch_t *s)
{
    strcpy(s->dir, "/tmp/sq_tok_test_XXXXXX");
    assert_non_null(mkdtemp(s->dir));
}

static void scratch_remove(scratch_t *s)
{
    const char *names[] = {"vocab.json", "merges.txt", "tokenizer.json", "pairs.json",
                           "tokenizer_config.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", s->dir, names[i]);
        unlink(path);
    }
    assert_int_equal(rmdir(s->dir), 0);
}

typedef struct tcase {
    char *text;
    size_t len;
    int32_t *ids;
    size_t n;
} tcase_t;

static tcase_t *load_cases(size_t *count)
{
    size_t len;
    char *buf = sq_test_read_all(CASES, &len);
    assert_non_null(buf);
    size_t cap = 64, n = 0;
    tcase_t *cs = malloc(cap * sizeof *cs);
    assert_non_null(cs);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(j, "text");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "ids");
        assert_true(cJSON_IsString(text) && cJSON_IsArray(ids));
        if (n == cap) cs = realloc(cs, (cap *= 2) * sizeof *cs);
        tcase_t *c = &cs[n++];
        c->text = strdup(text->valuestring);
        c->len = strlen(c->text);
        c->n = (size_t)cJSON_GetArraySize(ids);
        c->ids = malloc((c->n + 1) * sizeof *c->ids);
        size_t k = 0;
        for (const cJSON *v = ids->child; v; v = v->next)
            c->ids[k++] = (int32_t)v->valuedouble;
        cJSON_Delete(j);
    }
    free(buf);
    assert_true(n >= 20);
    *count = n;
    return cs;
}

static void free_cases(tcase_t *cs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(cs[i].text);
        free(cs[i].ids);
    }
    free(cs);
}

/* Encode into a fresh buffer sized by a first, counting call. */
static int32_t *encode_all(sq_tokenizer_t *tok, const char *text, size_t len, size_t *n)
{
    sq_status_t st = sq_tokenizer_encode(tok, text, len, NULL, 0, n);
    assert_true(st == SQ_OK || st == SQ_ERR_RANGE);
    int32_t *ids = malloc((*n + 1) * sizeof *ids);
    assert_non_null(ids);
    size_t n2;
    SQ_CHECK(sq_tokenizer_encode(tok, text, len, ids, *n, &n2));
    assert_int_equal(n2, *n);
    return ids;
}

static void assert_roundtrip(sq_tokenizer_t *tok, const char *text, size_t len)
{
    size_t n;
    int32_t *ids = encode_all(tok, text, len, &n);
    char *out = malloc(len + 1);
    size_t out_len;
    SQ_CHECK(sq_tokenizer_decode(tok, ids, n, out, len + 1, &out_len));
    assert_int_equal(out_len, len);
    assert_memory_equal(out, text, len);
    assert_int_equal(out[len], '\0');
    free(out);
    free(ids);
}

static void check_cases(sq_tokenizer_t *tok, const tcase_t *cs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        size_t n;
        int32_t *ids = encode_all(tok, cs[i].text, cs[i].len, &n);
        if (n != cs[i].n || memcmp(ids, cs[i].ids, n * sizeof *ids) != 0) {
            fprintf(stderr, "case %zu (\"%.40s\"): %zu ids, expected %zu\n", i, cs[i].text, n,
                    cs[i].n);
            fail();
        }
        free(ids);
        assert_roundtrip(tok, cs[i].text, cs[i].len);
    }
}

/* ---- GPT-2 files --------------------------------------------------------- */

static void test_gpt2_cases(void **state)
{
    (void)state;
    size_t count;
    tcase_t *cs = load_cases(&count);
    sq_tokenizer_t *tok;
    SQ_CHECK(sq_tokenizer_load(GPT2_DIR, &tok));
    assert_int_equal(sq_tokenizer_vocab_size(tok), 50257);
    assert_int_equal(sq_tokenizer_token_id(tok, "<|endoftext|>"), GPT2_EOT);
    assert_int_equal(sq_tokenizer_token_id(tok, "\xc4\xa0the"), 262); /* "Ġthe" */
    assert_int_equal(sq_tokenizer_token_id(tok, "no such token here"), -1);
    assert_string_equal(sq_tokenizer_token_str(tok, 262), "\xc4\xa0the");
    assert_null(sq_tokenizer_token_str(tok, 50257));
    assert_int_equal(sq_tokenizer_bos_id(tok), GPT2_EOT);
    assert_int_equal(sq_tokenizer_eos_id(tok), GPT2_EOT);
    check_cases(tok, cs, count);
    check_cases(tok, cs, count); /* second pass is served from the word cache */
    sq_tokenizer_destroy(tok);
    free_cases(cs, count);
}

static void test_gpt2_buffer_too_small(void **state)
{
    (void)state;
    sq_tokenizer_t *tok;
    SQ_CHECK(sq_tokenizer_load(GPT2_DIR, &tok));
    const char *text = "Hello world";
    int32_t ids[2] = {-7, -7};
    size_t n = 0;
    assert_int_equal(sq_tokenizer_encode(tok, text, strlen(text), ids, 1, &n), SQ_ERR_RANGE);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 15496);
    assert_int_equal(ids[1], -7);
    assert_non_null(strstr(sq_error_last(), "needs 2 ids"));
    SQ_CHECK(sq_tokenizer_encode(tok, text, strlen(text), ids, 2, &n));
    assert_int_equal(ids[1], 995);

    char buf[16];
    size_t len = 0;
    assert_int_equal(sq_tokenizer_decode(tok, ids, 2, buf, 5, &len), SQ_ERR_RANGE);
    assert_int_equal(len, 11);
    SQ_CHECK(sq_tokenizer_decode(tok, ids, 2, buf, 11, &len)); /* exact fit, no NUL */
    assert_memory_equal(buf, text, 11);

    int32_t bad[] = {15496, 50257};
    assert_int_equal(sq_tokenizer_decode(tok, bad, 2, buf, sizeof buf, &len), SQ_ERR_INVALID_ARG);
    assert_non_null(strstr(sq_error_last(), "ids[1] = 50257"));
    bad[1] = -1;
    assert_int_equal(sq_tokenizer_decode(tok, bad, 2, buf, sizeof buf, &len), SQ_ERR_INVALID_ARG);

    SQ_CHECK(sq_tokenizer_encode(tok, NULL, 0, NULL, 0, &n));
    assert_int_equal(n, 0);
    sq_tokenizer_destroy(tok);
}

static void test_gpt2_special(void **state)
{
    (void)state;
    sq_tokenizer_t *tok;
    SQ_CHECK(sq_tokenizer_load(GPT2_DIR, &tok));
    const char *text = "a<|endoftext|>b<|endoftext|><|endoftext|>";
    int32_t ids[32];
    size_t n;
    SQ_CHECK(sq_tokenizer_encode_special(tok, text, strlen(text), ids, 32, &n));
    const int32_t want[] = {64, GPT2_EOT, 65, GPT2_EOT, GPT2_EOT};
    assert_int_equal(n, 5);
    assert_memory_equal(ids, want, sizeof want);
    /* plain encode treats the marker as text */
    SQ_CHECK(sq_tokenizer_encode(tok, text, strlen(text), ids, 32, &n));
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(ids[i], GPT2_EOT);
    assert_roundtrip(tok, text, strlen(text));
    char buf[64];
    size_t len;
    SQ_CHECK(sq_tokenizer_decode(tok, want, 5, buf, sizeof buf, &len));
    assert_string_equal(buf, text);
    sq_tokenizer_destroy(tok);
}

/* Bytes that are not UTF-8 go through, each byte intact. */
static void test_gpt2_invalid_utf8(void **state)
{
    (void)state;
    sq_tokenizer_t *tok;
    SQ_CHECK(sq_tokenizer_load(GPT2_DIR, &tok));
    const char *samples[] = {
        "caf\xe9 au lait",          /* latin-1 */
        "\xff\xfe\xfd",             /* never valid */
        "abc\xe2\x82",              /* truncated 3-byte sequence at the end */
        "\xc0\xaf overlong",        /* overlong '/' */
        "\xed\xa0\x80 surrogate",   /* UTF-16 surrogate */
        " \x80\x80 it's \xf5\x80!", /* stray continuations, out-of-range lead */
        "nul\0inside",              /* NUL is just a byte */
    };
    size_t lens[] = {0, 0, 0, 0, 0, 0, 11};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
        assert_roundtrip(tok, samples[i], lens[i] ? lens[i] : strlen(samples[i]));

    /* a lone invalid byte between words is its own byte token */
    const char *latin1 = "caf\xe9";
    int32_t ids[8];
    size_t n;
    SQ_CHECK(sq_tokenizer_encode(tok, latin1, 4, ids, 8, &n));
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 66);   /* "c" */
    assert_int_equal(ids[1], 1878); /* "af" */
    assert_int_equal(ids[2], 165);  /* byte 0xe9 */

    /* every byte value, in a fixed pseudo-random order and grouping */
    uint32_t x = 12345;
    char buf[4096];
    for (int round = 0; round < 200; round++) {
        size_t len = 1 + round * 13 % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            x = x * 1664525u + 1013904223u;
            buf[i] = (char)(x >> 24);
        }
        assert_roundtrip(tok, buf, len);
    }
    sq_tokenizer_destroy(tok);
}

/* The whole of chapters 1-12: ids against the reference encoder.py, and speed. */
static void test_gpt2_moby_dick(void **state)
{
    (void)state;
    size_t len;
    char *text = sq_test_read_all(MOBY, &len);
    assert_non_null(text);
    sq_tokenizer_t *tok;
    SQ_CHECK(sq_tokenizer_load(GPT2_DIR, &tok));
    size_t n = 0;
    int32_t *ids = malloc(len * sizeof *ids);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    SQ_CHECK(sq_tokenizer_encode(tok, text, len, ids, len, &n));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6;
    printf("moby-dick-ch1-12: %zu bytes -> %zu ids in %.1f ms (cold cache)\n", len, n, ms);
    /* count and rolling hash of the ids from OpenAI's encoder.py algorithm */
    uint32_t h = 0;
    for (size_t i = 0; i < n; i++)
        h = h * 1000003u + (uint32_t)ids[i];
    assert_int_equal(n, 28395);
    assert_int_equal(h, 2520139050u);
    assert_true(ms < 2000); /* the bar is "well under a second"; leave room for sanitizers */
    assert_roundtrip(tok, text, len);
    free(ids);
    sq_tokenizer_destroy(tok);
    free(text);
}

/* One long word (no spaces): BPE must stay near-linear. */
static void test_gpt2_long_word(void **state)
{
    (void)state;
    sq_tokenizer_t *tok;
    SQ_CHECK(sq_tokenizer_load(GPT2_DIR, &tok));
    size_t len = 1 << 20;
    char *text = malloc(len);
    const char *jp = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"; /* 日本語 */
    for (size_t i = 0; i < len; i++)
        text[i] = jp[i % 9];
    len -= len % 9;
    assert_roundtrip(tok, text, len);
    memset(text, ' ', len);
    assert_roundtrip(tok, text, len);
    free(text);
    sq_tokenizer_destroy(tok);
}

/* ---- tokenizer.json ------------------------------------------------------ */

/* tokenizer.json equivalent of the GPT-2 directory, merges as "a b" or [a, b]. */
static void write_hf_json(const char *dir, const char *name, bool pairs)
{
    size_t len;
    char *vocab_txt = sq_test_read_all(GPT2_DIR "/vocab.json", &len);
    assert_non_null(vocab_txt);
    char *merges_txt = sq_test_read_all(GPT2_DIR "/merges.txt", &len);
    assert_non_null(merges_txt);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON *eot = cJSON_CreateObject();
    cJSON_AddNumberToObject(eot, "id", GPT2_EOT);
    cJSON_AddStringToObject(eot, "content", "<|endoftext|>");
    cJSON_AddBoolToObject(eot, "special", true);
    cJSON_AddItemToArray(added, eot);
    cJSON_AddNullToObject(root, "normalizer");
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    cJSON_AddBoolToObject(pre, "add_prefix_space", false);
    cJSON_AddBoolToObject(pre, "trim_offsets", true);
    cJSON_AddBoolToObject(pre, "use_regex", true);
    cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddStringToObject(model, "continuing_subword_prefix", "");
    cJSON_AddStringToObject(model, "end_of_word_suffix", "");
    cJSON_AddItemToObject(model, "vocab", cJSON_Parse(vocab_txt));
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    for (char *line = strtok(merges_txt, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "#version", 8) == 0) continue;
        if (!pairs) {
            cJSON_AddItemToArray(merges, cJSON_CreateString(line));
            continue;
        }
        char *sp = strchr(line, ' ');
        *sp = '\0';
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(line));
        cJSON_AddItemToArray(pair, cJSON_CreateString(sp + 1));
        cJSON_AddItemToArray(merges, pair);
    }
    write_json(dir, name, root);
    cJSON_Delete(root);
    free(vocab_txt);
    free(merges_txt);
}

static void test_hf_json_matches_gpt2(void **state)
{
    (void)state;
    size_t count;
    tcase_t *cs = load_cases(&count);
    scratch_t s;
    scratch_make(&s);
    write_hf_json(s.dir, "tokenizer.json", false);
    write_hf_json(s.dir, "pairs.json", true);
    char path[128];
    sq_tokenizer_t *gpt2, *by_dir, *by_pairs;
    SQ_CHECK(sq_tokenizer_load(GPT2_DIR, &gpt2));
    SQ_CHECK(sq_tokenizer_load(s.dir, &by_dir)); /* finds tokenizer.json */
    snprintf(path, sizeof path, "%s/pairs.json", s.dir);
    SQ_CHECK(sq_tokenizer_load(path, &by_pairs));
    sq_tokenizer_t *toks[] = {by_dir, by_pairs};
    for (int t = 0; t < 2; t++) {
        assert_int_equal(sq_tokenizer_vocab_size(toks[t]), 50257);
        assert_int_equal(sq_tokenizer_token_id(toks[t], "<|endoftext|>"), GPT2_EOT);
        assert_int_equal(sq_tokenizer_eos_id(toks[t]), GPT2_EOT);
        check_cases(toks[t], cs, count);
        for (size_t i = 0; i < count; i++) {
            size_t na, nb;
            int32_t *a = encode_all(gpt2, cs[i].text, cs[i].len, &na);
            int32_t *b = encode_all(toks[t], cs[i].text, cs[i].len, &nb);
            assert_int_equal(na, nb);
            assert_memory_equal(a, b, na * sizeof *a);
            free(a);
            free(b);
        }
    }
    /* tokenizer_config.json beside tokenizer.json names bos/eos */
    sq_tokenizer_destroy(by_dir);
    write_str(s.dir, "tokenizer_config.json",
              "{\"bos_token\": {\"content\": \"<|endoftext|>\"}, \"eos_token\": null}");
    SQ_CHECK(sq_tokenizer_load(s.dir, &by_dir));
    assert_int_equal(sq_tokenizer_bos_id(by_dir), GPT2_EOT);
    assert_int_equal(sq_tokenizer_eos_id(by_dir), -1);
    sq_tokenizer_destroy(by_dir);
    write_str(s.dir, "tokenizer_config.json", "{\"eos_token\": \"<|im_end|>\"}");
    assert_int_equal(sq_tokenizer_load(s.dir, &by_dir), SQ_ERR_FORMAT);
    assert_non_null(strstr(sq_error_last(), "tokenizer_config.json: eos_token '<|im_end|>'"));

    sq_tokenizer_destroy(by_pairs);
    sq_tokenizer_destroy(gpt2);
    scratch_remove(&s);
    free_cases(cs, count);
}

/* ---- small synthetic tokenizers and bad files ---------------------------- */

/* The 256 byte symbols of GPT-2's byte map, in UTF-8. */
static void byte_symbol(int b, char out[4])
{
    int printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    int cp = b;
    if (!printable) {
        cp = 0x100;
        for (int c = 0; c < b; c++)
            cp += !((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || c >= 0xae);
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = 0;
    }
}

/* vocab: 256 byte symbols (ids 0..255, byte order) plus extra[i] at 256 + i. */
static cJSON *byte_vocab(const char *const *extra, int n_extra)
{
    cJSON *v = cJSON_CreateObject();
    for (int b = 0; b < 256; b++) {
        char sym[4];
        byte_symbol(b, sym);
        cJSON_AddNumberToObject(v, sym, b);
    }
    for (int i = 0; i < n_extra; i++)
        cJSON_AddNumberToObject(v, extra[i], 256 + i);
    return v;
}

static void write_small_gpt2(const char *dir, const char *merges)
{
    const char *extra[] = {"ab", "abc",
                           ("\xc4\xa0"
                            "ab"),
                           "<|endoftext|>"};
    cJSON *v = byte_vocab(extra, 4);
    write_json(dir, "vocab.json", v);
    cJSON_Delete(v);
    write_str(dir, "merges.txt", merges);
}

static void expect_load_error(const char *path, sq_status_t want, const char *fragment)
{
    sq_tokenizer_t *tok = (sq_tokenizer_t *)0x1;
    sq_status_t st = sq_tokenizer_load(path, &tok);
    if (st != want || !strstr(sq_error_last(), fragment)) {
        fprintf(stderr, "load(%s): got %s \"%s\", want %s containing \"%s\"\n", path,
                sq_status_string(st), sq_error_last(), sq_status_string(want), fragment);
        fail();
    }
    assert_ptr_equal(tok, (sq_tokenizer_t *)0x1); /* untouched on failure */
}

static void test_small_vocab(void **state)
{
    (void)state;
    scratch_t s;
    scratch_make(&s);
    write_small_gpt2(s.dir, "#version: 0.2\r\na b\r\nab c\r\n\xc4\xa0 ab\r\n\r\n");
    sq_tokenizer_t *tok;
    SQ_CHECK(sq_tokenizer_load(s.dir, &tok));
    assert_int_equal(sq_tokenizer_vocab_size(tok), 260);
    int32_t ids[16];
    size_t n;
    SQ_CHECK(sq_tokenizer_encode(tok, "abc ab abab", 11, ids, 16, &n));
    const int32_t want[] = {257, 258, 258, 256}; /* abc, " ab", " ab", ab */
    assert_int_equal(n, 4);
    assert_memory_equal(ids, want, sizeof want);
    SQ_CHECK(sq_tokenizer_encode(tok, "aab", 3, ids, 16, &n));
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 'a'); /* byte symbols have id = byte here */
    assert_int_equal(ids[1], 256);
    assert_int_equal(sq_tokenizer_eos_id(tok), 259);
    sq_tokenizer_destroy(tok);
    scratch_remove(&s);
}

static void test_bad_files(void **state)
{
    (void)state;
    scratch_t s;
    scratch_make(&s);
    char path[128];

    expect_load_error("/nonexistent/sq-tokenizer", SQ_ERR_NOT_FOUND, "/nonexistent/sq-tokenizer");
    expect_load_error(s.dir, SQ_ERR_NOT_FOUND, "neither tokenizer.json nor vocab.json");

    write_small_gpt2(s.dir, "a b\n");
    snprintf(path, sizeof path, "%s/merges.txt", s.dir);
    unlink(path);
    expect_load_error(s.dir, SQ_ERR_NOT_FOUND, "merges.txt: cannot open");

    write_small_gpt2(s.dir, "#version: 0.2\na b\nab zz\n");
    expect_load_error(s.dir, SQ_ERR_FORMAT, "merges.txt:3: merge 'ab zz' names unknown token 'zz'");
    write_small_gpt2(s.dir, "a b\nb c\n");
    expect_load_error(s.dir, SQ_ERR_FORMAT, "merges.txt:2: merge 'b c' makes a token that is not");
    write_small_gpt2(s.dir, "a b\nab\n");
    expect_load_error(s.dir, SQ_ERR_FORMAT, "merges.txt:2: expected two tokens");
    write_small_gpt2(s.dir, "a b\na b\n");
    expect_load_error(s.dir, SQ_ERR_FORMAT, "merges.txt:2: merge 'a b' repeats merge number 1");

    write_str(s.dir, "merges.txt", "a b\n");
    write_str(s.dir, "vocab.json", "{\"a\": 0, \"b\": ");
    expect_load_error(s.dir, SQ_ERR_FORMAT, "vocab.json: invalid JSON near byte");
    write_str(s.dir, "vocab.json", "");
    expect_load_error(s.dir, SQ_ERR_FORMAT, "vocab.json: empty file");
    write_str(s.dir, "vocab.json", "[1, 2]");
    expect_load_error(s.dir, SQ_ERR_FORMAT, "is not a JSON object");
    write_str(s.dir, "vocab.json", "{\"a\": 0, \"b\": -1}");
    expect_load_error(s.dir, SQ_ERR_FORMAT, "entry 'b': id is not an integer");
    write_str(s.dir, "vocab.json", "{\"a\": 0, \"b\": 1.5}");
    expect_load_error(s.dir, SQ_ERR_FORMAT, "entry 'b': id is not an integer");
    write_str(s.dir, "vocab.json", "{\"a\": 0, \"b\": 99999999999}");
    expect_load_error(s.dir, SQ_ERR_FORMAT, "entry 'b': id is not an integer");
    write_str(s.dir, "vocab.json", "{\"a\": 0, \"b\": 0}");
    expect_load_error(s.dir, SQ_ERR_FORMAT, "'b' has id 0, already used by 'a'");
    write_str(s.dir, "vocab.json", "{\"a\": 0, \"a\": 1}");
    expect_load_error(s.dir, SQ_ERR_FORMAT, "'a' has id 1, but it already has id 0");
    write_str(s.dir, "vocab.json", "{\"a\": 0, \"b\": 1}");
    expect_load_error(s.dir, SQ_ERR_FORMAT, "no symbol");

    /* tokenizer.json */
    const char *extra[] = {"ab"};
    cJSON *root = cJSON_CreateObject();
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddItemToObject(model, "vocab", byte_vocab(extra, 1));
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    cJSON_AddItemToArray(merges, cJSON_CreateString("a b"));
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    write_json(s.dir, "tokenizer.json", root);
    snprintf(path, sizeof path, "%s/tokenizer.json", s.dir);
    sq_tokenizer_t *tok;
    SQ_CHECK(sq_tokenizer_load(path, &tok));
    assert_int_equal(sq_tokenizer_vocab_size(tok), 257);
    assert_int_equal(sq_tokenizer_eos_id(tok), -1);
    sq_tokenizer_destroy(tok);

    char *full = cJSON_PrintUnformatted(root);
    sq_test_write_file(path, full, strlen(full) / 2); /* truncated */
    expect_load_error(path, SQ_ERR_FORMAT, "tokenizer.json: invalid JSON near byte");
    free(full);

    cJSON_AddItemToArray(merges, cJSON_CreateString("ab q\xc4\xa0"));
    write_json(s.dir, "tokenizer.json", root);
    expect_load_error(path, SQ_ERR_FORMAT,
                      "tokenizer.json: model.merges[1]: merge 'ab q\xc4\xa0' names unknown token "
                      "'q\xc4\xa0'");
    cJSON_DeleteItemFromArray(merges, 1);
    cJSON_AddItemToArray(merges, cJSON_CreateNumber(3));
    write_json(s.dir, "tokenizer.json", root);
    expect_load_error(path, SQ_ERR_FORMAT, "model.merges[1]: expected \"a b\" or [\"a\", \"b\"]");
    cJSON_DeleteItemFromArray(merges, 1);

    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON *a0 = cJSON_CreateObject();
    cJSON_AddNumberToObject(a0, "id", 256);
    cJSON_AddStringToObject(a0, "content", "<|x|>");
    cJSON_AddItemToArray(added, a0);
    write_json(s.dir, "tokenizer.json", root);
    expect_load_error(path, SQ_ERR_FORMAT,
                      "added token 0 '<|x|>' has id 256, already used by 'ab'");
    cJSON_ReplaceItemInObject(a0, "id", cJSON_CreateNumber(1000));
    write_json(s.dir, "tokenizer.json", root);
    SQ_CHECK(sq_tokenizer_load(path, &tok)); /* ids 257..999 are holes */
    assert_int_equal(sq_tokenizer_vocab_size(tok), 1001);
    int32_t ids[8] = {1000, 300};
    char buf[16];
    size_t n;
    SQ_CHECK(sq_tokenizer_decode(tok, ids, 1, buf, sizeof buf, &n));
    assert_string_equal(buf, "<|x|>");
    assert_int_equal(sq_tokenizer_decode(tok, ids + 1, 1, buf, sizeof buf, &n), SQ_ERR_INVALID_ARG);
    SQ_CHECK(sq_tokenizer_encode_special(tok, "ab<|x|>ab", 9, ids, 8, &n));
    assert_int_equal(n, 3);
    assert_int_equal(ids[1], 1000);
    sq_tokenizer_destroy(tok);

    cJSON_ReplaceItemInObject(pre, "type", cJSON_CreateString("Metaspace"));
    write_json(s.dir, "tokenizer.json", root);
    expect_load_error(path, SQ_ERR_UNSUPPORTED, "pre_tokenizer 'Metaspace' is not supported");
    cJSON_ReplaceItemInObject(pre, "type", cJSON_CreateString("ByteLevel"));
    cJSON_AddBoolToObject(pre, "add_prefix_space", true);
    write_json(s.dir, "tokenizer.json", root);
    expect_load_error(path, SQ_ERR_UNSUPPORTED, "add_prefix_space");
    cJSON_DeleteItemFromObject(pre, "add_prefix_space");
    cJSON_ReplaceItemInObject(model, "type", cJSON_CreateString("WordPiece"));
    write_json(s.dir, "tokenizer.json", root);
    expect_load_error(path, SQ_ERR_UNSUPPORTED, "model.type 'WordPiece' is not supported");
    cJSON_DeleteItemFromObject(root, "model");
    write_json(s.dir, "tokenizer.json", root);
    expect_load_error(path, SQ_ERR_FORMAT, "no \"model\" object");
    cJSON_Delete(root);

    scratch_remove(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_cases),
        cmocka_unit_test(test_gpt2_buffer_too_small),
        cmocka_unit_test(test_gpt2_special),
        cmocka_unit_test(test_gpt2_invalid_utf8),
        cmocka_unit_test(test_gpt2_moby_dick),
        cmocka_unit_test(test_gpt2_long_word),
        cmocka_unit_test(test_hf_json_matches_gpt2),
        cmocka_unit_test(test_small_vocab),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

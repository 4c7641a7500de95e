/* Loading a byte-level BPE tokenizer: GPT-2 vocab.json + merges.txt, or an HF
 * tokenizer.json; tokenizer_config.json for bos/eos. Every check names the
 * file and the entry or line at fault. */
#include "tokenizer_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Tokenizer files are a few MB; this only stops a wrong path from being slurped. */
#define SQ_TOK_MAX_FILE (1024L * 1024L * 1024L)

/* ---- files --------------------------------------------------------------- */

static sq_status_t sq_tok_read_file(const char *path, char **buf_out, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return sq_error_set(errno == ENOENT ? SQ_ERR_NOT_FOUND : SQ_ERR_IO, "%s: cannot open: %s",
                            path, strerror(errno));
    sq_status_t st = SQ_OK;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        st = sq_error_set(SQ_ERR_IO, "%s: cannot size: %s", path, strerror(errno));
        goto close_file;
    }
    if (n > SQ_TOK_MAX_FILE) {
        st = sq_error_set(SQ_ERR_RANGE, "%s: %ld bytes, over the %ld-byte limit", path, n,
                          SQ_TOK_MAX_FILE);
        goto close_file;
    }
    buf = malloc((size_t)n + 1);
    if (!buf) {
        st = sq_error_set(SQ_ERR_NOMEM, "%s: no memory for %ld bytes", path, n);
        goto close_file;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        st = sq_error_set(SQ_ERR_IO, "%s: short read", path);
        goto free_buf;
    }
    buf[n] = '\0';
    *buf_out = buf;
    *len_out = (size_t)n;
    fclose(f);
    return SQ_OK;
free_buf:
    free(buf);
close_file:
    fclose(f);
    return st;
}

static sq_status_t sq_tok_read_json(const char *path, cJSON **out)
{
    char *buf;
    size_t len;
    SQ_TRY(sq_tok_read_file(path, &buf, &len));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root) {
        size_t off = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
        size_t line = 1;
        for (size_t i = 0; i < off; i++)
            line += buf[i] == '\n';
        free(buf);
        if (len == 0) return sq_error_set(SQ_ERR_FORMAT, "%s: empty file, expected JSON", path);
        return sq_error_set(SQ_ERR_FORMAT, "%s: invalid JSON near byte %zu (line %zu)", path, off,
                            line);
    }
    free(buf);
    *out = root;
    return SQ_OK;
}

static bool sq_tok_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static char *sq_tok_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* ---- vocabulary ---------------------------------------------------------- */

typedef struct sq_tok_entry {
    const char *s; /* spelling, NUL-terminated (cJSON's) */
    int32_t id;
    bool added; /* from added_tokens (or GPT-2's <|endoftext|>) */
    long index; /* position in added_tokens, for messages */
} sq_tok_entry_t;

typedef struct sq_tok_build {
    const char *file;
    sq_tok_entry_t *e;
    size_t n, cap;
} sq_tok_build_t;

static sq_status_t sq_tok_build_push(sq_tok_build_t *b, sq_tok_entry_t e)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 1024;
        sq_tok_entry_t *p = realloc(b->e, cap * sizeof *p);
        if (!p) return sq_error_set(SQ_ERR_NOMEM, "%s: no memory for the vocabulary", b->file);
        b->e = p;
        b->cap = cap;
    }
    b->e[b->n++] = e;
    return SQ_OK;
}

/* A JSON number that is an integer id in [0, SQ_TOK_MAX_IDS). */
static bool sq_tok_json_id(const cJSON *v, int32_t *id)
{
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d < SQ_TOK_MAX_IDS) || floor(d) != d) return false;
    *id = (int32_t)d;
    return true;
}

/* vocab: {"spelling": id, ...}; `what` names it in messages ("model.vocab"). */
static sq_status_t sq_tok_collect_vocab(sq_tok_build_t *b, const cJSON *vocab, const char *what)
{
    if (!cJSON_IsObject(vocab))
        return sq_error_set(SQ_ERR_FORMAT, "%s: %s is not a JSON object", b->file, what);
    for (const cJSON *v = vocab->child; v; v = v->next) {
        int32_t id;
        if (!sq_tok_json_id(v, &id))
            return sq_error_set(SQ_ERR_FORMAT,
                                "%s: %s entry '%.64s': id is not an integer in [0, %d)", b->file,
                                what, v->string, SQ_TOK_MAX_IDS);
        SQ_TRY(sq_tok_build_push(b, (sq_tok_entry_t){v->string, id, false, -1}));
    }
    if (b->n == 0) return sq_error_set(SQ_ERR_FORMAT, "%s: %s is empty", b->file, what);
    return SQ_OK;
}

/* Decode a spelling through the byte map; HF's ByteLevel decoder keeps a
 * token's raw UTF-8 when any of its characters is not a byte symbol. */
static size_t sq_tok_spelling_bytes(const char *s, uint8_t *out)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t k = 0;
    while (*p) {
        uint32_t cp;
        int n;
        if (p[0] < 0x80) {
            cp = p[0];
            n = 1;
        } else if ((p[0] & 0xe0) == 0xc0 && (p[1] & 0xc0) == 0x80) {
            cp = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
            n = 2;
        } else {
            n = 0; /* three-byte and longer characters are never byte symbols */
        }
        int b = n ? sq_tok_cp_to_byte(cp) : -1;
        if (b < 0) {
            size_t len = strlen(s);
            memcpy(out, s, len);
            return len;
        }
        out[k++] = (uint8_t)b;
        p += n;
    }
    return k;
}

static void sq_tok_utf8(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = '\0';
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = '\0';
    }
}

/* Lay out the id tables from the collected entries (model vocab first, then
 * added tokens) and check that ids and spellings are each used once. */
static sq_status_t sq_tok_finish_vocab(sq_tokenizer_t *tok, const sq_tok_build_t *b)
{
    int32_t max_id = -1;
    size_t blob = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->e[i].id > max_id) max_id = b->e[i].id;
        blob += strlen(b->e[i].s) + 1;
    }
    if (blob >= UINT32_MAX) return sq_error_set(SQ_ERR_RANGE, "%s: vocabulary over 4 GiB", b->file);
    tok->n_ids = max_id + 1;
    uint32_t slots = 16;
    while (slots < 2 * b->n)
        slots *= 2;
    tok->str_index_mask = slots - 1;
    tok->str_blob = malloc(blob);
    tok->str_off = malloc((size_t)tok->n_ids * sizeof *tok->str_off);
    tok->str_index = malloc(slots * sizeof *tok->str_index);
    tok->added = malloc((b->n + 1) * sizeof *tok->added);
    bool *raw = calloc((size_t)tok->n_ids, sizeof *raw);
    if (!tok->str_blob || !tok->str_off || !tok->str_index || !tok->added || !raw) {
        free(raw);
        return sq_error_set(SQ_ERR_NOMEM, "%s: no memory for %d ids", b->file, (int)tok->n_ids);
    }
    for (int32_t i = 0; i < tok->n_ids; i++)
        tok->str_off[i] = SQ_TOK_NO_STR;
    for (uint32_t i = 0; i < slots; i++)
        tok->str_index[i] = -1;

    sq_status_t st = SQ_OK;
    size_t used = 0;
    for (size_t i = 0; i < b->n; i++) {
        const sq_tok_entry_t *e = &b->e[i];
        size_t len = strlen(e->s);
        char where[64] = "model vocabulary";
        if (e->added) snprintf(where, sizeof where, "added token %ld", e->index);
        int32_t have = sq_tok_lookup(tok, e->s, len);
        if (have >= 0 && !(e->added && have == e->id)) {
            st = sq_error_set(SQ_ERR_FORMAT, "%s: %s '%.64s' has id %d, but it already has id %d",
                              b->file, where, e->s, (int)e->id, (int)have);
            goto free_raw;
        }
        if (have < 0) {
            if (tok->str_off[e->id] != SQ_TOK_NO_STR) {
                st = sq_error_set(SQ_ERR_FORMAT,
                                  "%s: %s '%.64s' has id %d, already used by '%.64s'", b->file,
                                  where, e->s, (int)e->id, tok->str_blob + tok->str_off[e->id]);
                goto free_raw;
            }
            memcpy(tok->str_blob + used, e->s, len + 1);
            tok->str_off[e->id] = (uint32_t)used;
            used += len + 1;
            uint32_t h = (uint32_t)sq_tok_hash_bytes(e->s, len) & tok->str_index_mask;
            while (tok->str_index[h] >= 0)
                h = (h + 1) & tok->str_index_mask;
            tok->str_index[h] = e->id;
            raw[e->id] = e->added; /* an added token outside the model vocab: literal text */
        }
        if (e->added) tok->added[tok->n_added++] = e->id;
    }

    /* decoded bytes are never longer than the spelling */
    tok->dec_blob = malloc(used ? used : 1);
    tok->dec_off = malloc(((size_t)tok->n_ids + 1) * sizeof *tok->dec_off);
    if (!tok->dec_blob || !tok->dec_off) {
        st = sq_error_set(SQ_ERR_NOMEM, "%s: no memory for the decode table", b->file);
        goto free_raw;
    }
    uint32_t k = 0;
    for (int32_t i = 0; i < tok->n_ids; i++) {
        tok->dec_off[i] = k;
        if (tok->str_off[i] == SQ_TOK_NO_STR) continue;
        const char *s = tok->str_blob + tok->str_off[i];
        if (raw[i]) {
            size_t len = strlen(s);
            memcpy(tok->dec_blob + k, s, len);
            k += (uint32_t)len;
        } else {
            k += (uint32_t)sq_tok_spelling_bytes(s, tok->dec_blob + k);
        }
    }
    tok->dec_off[tok->n_ids] = k;

    for (int b_ = 0; b_ < 256; b_++) {
        char sym[4];
        sq_tok_utf8(sq_tok_byte_to_cp((uint8_t)b_), sym);
        tok->byte_id[b_] = sq_tok_lookup(tok, sym, strlen(sym));
        if (tok->byte_id[b_] < 0) {
            st = sq_error_set(SQ_ERR_FORMAT,
                              "%s: vocabulary has no symbol '%s' for byte 0x%02x: not a "
                              "byte-level BPE vocabulary",
                              b->file, sym, b_);
            goto free_raw;
        }
    }
free_raw:
    free(raw);
    return st;
}

/* ---- merges -------------------------------------------------------------- */

static sq_status_t sq_tok_alloc_merges(sq_tokenizer_t *tok, size_t n, const char *file)
{
    if (n >= (size_t)INT32_MAX / 4)
        return sq_error_set(SQ_ERR_RANGE, "%s: %zu merges is too many", file, n);
    uint32_t slots = 16;
    while (slots < 2 * n)
        slots *= 2;
    tok->merges = calloc(slots, sizeof *tok->merges);
    if (!tok->merges) return sq_error_set(SQ_ERR_NOMEM, "%s: no memory for %zu merges", file, n);
    tok->merges_mask = slots - 1;
    return SQ_OK;
}

/* Add merge "a b" with the next rank. `where` names the line or entry. */
static sq_status_t sq_tok_add_merge(sq_tokenizer_t *tok, const char *a, size_t alen, const char *b,
                                    size_t blen, const char *where)
{
    int32_t ia = sq_tok_lookup(tok, a, alen);
    int32_t ib = sq_tok_lookup(tok, b, blen);
    if (ia < 0 || ib < 0) {
        const char *bad = ia < 0 ? a : b;
        int bad_len = (int)(ia < 0 ? alen : blen);
        return sq_error_set(SQ_ERR_FORMAT, "%s: merge '%.*s %.*s' names unknown token '%.*s'",
                            where, (int)(alen > 64 ? 64 : alen), a, (int)(blen > 64 ? 64 : blen), b,
                            bad_len > 64 ? 64 : bad_len, bad);
    }
    char small[256];
    char *ab = alen + blen < sizeof small ? small : malloc(alen + blen + 1);
    if (!ab) return sq_error_set(SQ_ERR_NOMEM, "%s: no memory", where);
    memcpy(ab, a, alen);
    memcpy(ab + alen, b, blen);
    ab[alen + blen] = '\0';
    int32_t im = sq_tok_lookup(tok, ab, alen + blen);
    if (ab != small) free(ab);
    if (im < 0)
        return sq_error_set(
            SQ_ERR_FORMAT, "%s: merge '%.*s %.*s' makes a token that is not in the vocabulary",
            where, (int)(alen > 64 ? 64 : alen), a, (int)(blen > 64 ? 64 : blen), b);

    uint64_t key = ((uint64_t)(uint32_t)(ia + 1) << 32) | (uint32_t)ib;
    const sq_tok_merge_t *dup = sq_tok_merge_find(tok, ia, ib);
    if (dup)
        return sq_error_set(SQ_ERR_FORMAT, "%s: merge '%.*s %.*s' repeats merge number %d", where,
                            (int)(alen > 64 ? 64 : alen), a, (int)(blen > 64 ? 64 : blen), b,
                            (int)dup->rank + 1);
    uint32_t i = (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & tok->merges_mask;
    while (tok->merges[i].key)
        i = (i + 1) & tok->merges_mask;
    tok->merges[i] = (sq_tok_merge_t){key, tok->n_merges++, im};
    return SQ_OK;
}

/* GPT-2 merges.txt: one "a b" per line; "#version" lines and blank lines skipped. */
static sq_status_t sq_tok_load_merges_txt(sq_tokenizer_t *tok, const char *path)
{
    char *buf;
    size_t len;
    SQ_TRY(sq_tok_read_file(path, &buf, &len));
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += buf[i] == '\n';
    sq_status_t st = sq_tok_alloc_merges(tok, lines, path);
    if (st != SQ_OK) goto free_buf;
    size_t lineno = 0;
    for (char *p = buf, *end = buf + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eol = nl ? nl : end;
        char *next = nl ? nl + 1 : end;
        lineno++;
        if (eol > p && eol[-1] == '\r') eol--;
        size_t n = (size_t)(eol - p);
        if (n == 0 || (n >= 8 && memcmp(p, "#version", 8) == 0)) {
            p = next;
            continue;
        }
        char where[64 + 4096];
        snprintf(where, sizeof where, "%s:%zu", path, lineno);
        char *sp = memchr(p, ' ', n);
        if (!sp || sp == p || sp == eol - 1 || memchr(sp + 1, ' ', (size_t)(eol - sp - 1)) ||
            memchr(p, '\0', n)) {
            st = sq_error_set(SQ_ERR_FORMAT, "%s: expected two tokens separated by one space",
                              where);
            goto free_buf;
        }
        st = sq_tok_add_merge(tok, p, (size_t)(sp - p), sp + 1, (size_t)(eol - sp - 1), where);
        if (st != SQ_OK) goto free_buf;
        p = next;
    }
free_buf:
    free(buf);
    return st;
}

/* tokenizer.json model.merges: "a b" strings (older files) or ["a", "b"] pairs. */
static sq_status_t sq_tok_load_merges_json(sq_tokenizer_t *tok, const cJSON *merges,
                                           const char *path)
{
    if (!cJSON_IsArray(merges))
        return sq_error_set(SQ_ERR_FORMAT, "%s: model.merges is missing or not an array", path);
    SQ_TRY(sq_tok_alloc_merges(tok, (size_t)cJSON_GetArraySize(merges), path));
    long i = 0;
    for (const cJSON *m = merges->child; m; m = m->next, i++) {
        char where[64 + 4096];
        snprintf(where, sizeof where, "%s: model.merges[%ld]", path, i);
        if (cJSON_IsString(m)) {
            const char *s = m->valuestring;
            const char *sp = strchr(s, ' ');
            if (!sp || sp == s || sp[1] == '\0' || strchr(sp + 1, ' '))
                return sq_error_set(SQ_ERR_FORMAT, "%s: expected \"a b\" (two tokens, one space)",
                                    where);
            SQ_TRY(sq_tok_add_merge(tok, s, (size_t)(sp - s), sp + 1, strlen(sp + 1), where));
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            const char *a = m->child->valuestring, *b = m->child->next->valuestring;
            SQ_TRY(sq_tok_add_merge(tok, a, strlen(a), b, strlen(b), where));
        } else {
            return sq_error_set(SQ_ERR_FORMAT, "%s: expected \"a b\" or [\"a\", \"b\"]", where);
        }
    }
    return SQ_OK;
}

/* ---- the two layouts ----------------------------------------------------- */

static sq_status_t sq_tok_load_gpt2(sq_tokenizer_t *tok, const char *vocab_path,
                                    const char *merges_path)
{
    cJSON *root;
    SQ_TRY(sq_tok_read_json(vocab_path, &root));
    sq_tok_build_t b = {vocab_path, NULL, 0, 0};
    sq_status_t st = sq_tok_collect_vocab(&b, root, "the top level");
    if (st != SQ_OK) goto free_build;
    /* GPT-2's one control token lives in vocab.json itself. */
    const cJSON *eot = cJSON_GetObjectItemCaseSensitive(root, "<|endoftext|>");
    int32_t eot_id;
    if (eot && sq_tok_json_id(eot, &eot_id)) {
        st = sq_tok_build_push(&b, (sq_tok_entry_t){eot->string, eot_id, true, 0});
        if (st != SQ_OK) goto free_build;
    }
    SQ_TRY_GOTO(st, sq_tok_finish_vocab(tok, &b), free_build);
    SQ_TRY_GOTO(st, sq_tok_load_merges_txt(tok, merges_path), free_build);
free_build:
    free(b.e);
    cJSON_Delete(root);
    return st;
}

/* Only the parts of tokenizer.json that change ids are checked; anything that
 * would make our output differ from HF's is refused rather than ignored. */
static sq_status_t sq_tok_check_hf_pipeline(const cJSON *root, const char *path)
{
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (norm && !cJSON_IsNull(norm)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(norm, "type");
        return sq_error_set(SQ_ERR_UNSUPPORTED, "%s: normalizer '%s' is not supported (only null)",
                            path, cJSON_IsString(t) ? t->valuestring : "?");
    }
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(pre, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "ByteLevel") != 0)
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: pre_tokenizer '%s' is not supported (only GPT-2's ByteLevel)",
                            path, cJSON_IsString(type) ? type->valuestring : "null");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pre, "add_prefix_space")))
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: pre_tokenizer.add_prefix_space = true is not supported", path);
    if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(pre, "use_regex")))
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: pre_tokenizer.use_regex = false is not supported", path);
    return SQ_OK;
}

static sq_status_t sq_tok_load_hf(sq_tokenizer_t *tok, const char *path)
{
    cJSON *root;
    SQ_TRY(sq_tok_read_json(path, &root));
    sq_tok_build_t b = {path, NULL, 0, 0};
    sq_status_t st = SQ_OK;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) {
        st = sq_error_set(SQ_ERR_FORMAT,
                          "%s: no \"model\" object (not a tokenizer.json? for vocab.json + "
                          "merges.txt pass their directory)",
                          path);
        goto free_build;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (type && !(cJSON_IsString(type) && strcmp(type->valuestring, "BPE") == 0)) {
        st = sq_error_set(SQ_ERR_UNSUPPORTED, "%s: model.type '%s' is not supported (only BPE)",
                          path, cJSON_IsString(type) ? type->valuestring : "?");
        goto free_build;
    }
    const char *affix[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, affix[i]);
        if (cJSON_IsString(v) && v->valuestring[0]) {
            st = sq_error_set(SQ_ERR_UNSUPPORTED, "%s: model.%s is not supported", path, affix[i]);
            goto free_build;
        }
    }
    SQ_TRY_GOTO(st, sq_tok_check_hf_pipeline(root, path), free_build);
    SQ_TRY_GOTO(
        st,
        sq_tok_collect_vocab(&b, cJSON_GetObjectItemCaseSensitive(model, "vocab"), "model.vocab"),
        free_build);

    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added)) {
        st = sq_error_set(SQ_ERR_FORMAT, "%s: added_tokens is not an array", path);
        goto free_build;
    }
    long i = 0;
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next, i++) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        int32_t id;
        if (!sq_tok_json_id(cJSON_GetObjectItemCaseSensitive(a, "id"), &id) ||
            !cJSON_IsString(content) || content->valuestring[0] == '\0') {
            st = sq_error_set(SQ_ERR_FORMAT,
                              "%s: added_tokens[%ld] needs an integer \"id\" in [0, %d) and a "
                              "non-empty \"content\"",
                              path, i, SQ_TOK_MAX_IDS);
            goto free_build;
        }
        SQ_TRY_GOTO(st, sq_tok_build_push(&b, (sq_tok_entry_t){content->valuestring, id, true, i}),
                    free_build);
    }
    SQ_TRY_GOTO(st, sq_tok_finish_vocab(tok, &b), free_build);
    SQ_TRY_GOTO(
        st, sq_tok_load_merges_json(tok, cJSON_GetObjectItemCaseSensitive(model, "merges"), path),
        free_build);
free_build:
    free(b.e);
    cJSON_Delete(root);
    return st;
}

/* bos/eos from tokenizer_config.json: a string, {"content": ...} or null. A
 * key the file does not have falls back to <|endoftext|>. */
static sq_status_t sq_tok_special_ids(sq_tokenizer_t *tok, const char *dir)
{
    int32_t eot = sq_tokenizer_token_id(tok, "<|endoftext|>");
    tok->bos = tok->eos = eot;
    char *path = sq_tok_join(dir, "tokenizer_config.json");
    if (!path) return sq_error_set(SQ_ERR_NOMEM, "%s: no memory", dir);
    sq_status_t st = SQ_OK;
    if (!sq_tok_exists(path)) goto free_path;
    cJSON *root;
    SQ_TRY_GOTO(st, sq_tok_read_json(path, &root), free_path);
    const char *keys[] = {"bos_token", "eos_token"};
    int32_t *ids[] = {&tok->bos, &tok->eos};
    for (int k = 0; k < 2; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[k]);
        if (!v) continue;
        if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsNull(v)) {
            *ids[k] = -1;
            continue;
        }
        if (!cJSON_IsString(v)) {
            st = sq_error_set(SQ_ERR_FORMAT, "%s: %s is not a string, {\"content\": ...} or null",
                              path, keys[k]);
            break;
        }
        *ids[k] = sq_tokenizer_token_id(tok, v->valuestring);
        if (*ids[k] < 0) {
            st = sq_error_set(SQ_ERR_FORMAT, "%s: %s '%.64s' is not in the vocabulary", path,
                              keys[k], v->valuestring);
            break;
        }
    }
    cJSON_Delete(root);
free_path:
    free(path);
    return st;
}

sq_status_t sq_tokenizer_load(const char *dir_or_file, sq_tokenizer_t **out)
{
    if (!dir_or_file || !out)
        return sq_error_set(SQ_ERR_INVALID_ARG, "sq_tokenizer_load: NULL argument");
    struct stat sb;
    if (stat(dir_or_file, &sb) != 0)
        return sq_error_set(errno == ENOENT ? SQ_ERR_NOT_FOUND : SQ_ERR_IO, "%s: %s", dir_or_file,
                            strerror(errno));
    sq_tokenizer_t *tok = calloc(1, sizeof *tok);
    char *json = NULL, *vocab = NULL, *merges = NULL, *dir = NULL;
    sq_status_t st = SQ_OK;
    if (!tok || !(tok->source = strdup(dir_or_file))) {
        st = sq_error_set(SQ_ERR_NOMEM, "%s: no memory", dir_or_file);
        goto free_tok;
    }
    if (S_ISDIR(sb.st_mode)) {
        dir = strdup(dir_or_file);
        json = sq_tok_join(dir_or_file, "tokenizer.json");
        vocab = sq_tok_join(dir_or_file, "vocab.json");
        merges = sq_tok_join(dir_or_file, "merges.txt");
        if (!dir || !json || !vocab || !merges) {
            st = sq_error_set(SQ_ERR_NOMEM, "%s: no memory", dir_or_file);
            goto free_tok;
        }
        if (sq_tok_exists(json)) {
            SQ_TRY_GOTO(st, sq_tok_load_hf(tok, json), free_tok);
        } else if (sq_tok_exists(vocab) || sq_tok_exists(merges)) {
            SQ_TRY_GOTO(st, sq_tok_load_gpt2(tok, vocab, merges), free_tok);
        } else {
            st = sq_error_set(SQ_ERR_NOT_FOUND,
                              "%s: holds neither tokenizer.json nor vocab.json + merges.txt",
                              dir_or_file);
            goto free_tok;
        }
    } else {
        dir = strdup(dir_or_file);
        if (!dir) {
            st = sq_error_set(SQ_ERR_NOMEM, "%s: no memory", dir_or_file);
            goto free_tok;
        }
        char *slash = strrchr(dir, '/');
        if (slash)
            slash[slash == dir ? 1 : 0] = '\0';
        else
            strcpy(dir, ".");
        SQ_TRY_GOTO(st, sq_tok_load_hf(tok, dir_or_file), free_tok);
    }
    SQ_TRY_GOTO(st, sq_tok_special_ids(tok, dir), free_tok);
    SQ_TRY_GOTO(st, sq_tok_init_runtime(tok), free_tok);
    free(dir);
    free(merges);
    free(vocab);
    free(json);
    *out = tok;
    return SQ_OK;
free_tok:
    free(dir);
    free(merges);
    free(vocab);
    free(json);
    sq_tokenizer_destroy(tok);
    return st;
}

/* GPT-2 byte-level BPE: pre-tokenize with PCRE2, merge by rank, decode.
 * Loading the files is in tokenizer_load.c. */
#include "tokenizer_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* GPT-2's pattern with \s and \S spelled out as the Unicode White_Space
 * property: PCRE2 10.42's UCP \s leaves out U+0085, which Python's `regex`
 * (the reference encoder.py used) and Rust's tokenizers count as space. */
#define SQ_TOK_WS                                                                                  \
    "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"       \
    "\\x{3000}"
static const char sq_tok_pattern[] = "'s|'t|'re|'ve|'m|'ll|'d"
                                     "| ?\\p{L}+"
                                     "| ?\\p{N}+"
                                     "| ?[^" SQ_TOK_WS "\\p{L}\\p{N}]+"
                                     "|[" SQ_TOK_WS "]+(?![^" SQ_TOK_WS "])"
                                     "|[" SQ_TOK_WS "]+";

/* ---- byte <-> unicode ---------------------------------------------------- */

static bool sq_tok_byte_printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
}

uint32_t sq_tok_byte_to_cp(uint8_t b)
{
    if (sq_tok_byte_printable(b)) return b;
    /* rank of b among the non-printable bytes */
    unsigned n = 0;
    for (unsigned c = 0; c < b; c++)
        n += !sq_tok_byte_printable(c);
    return 0x100 + n;
}

int sq_tok_cp_to_byte(uint32_t cp)
{
    if (cp < 0x100) return sq_tok_byte_printable(cp) ? (int)cp : -1;
    if (cp >= 0x100 + 68) return -1;
    unsigned n = cp - 0x100;
    for (unsigned c = 0; c < 256; c++)
        if (!sq_tok_byte_printable(c) && n-- == 0) return (int)c;
    return -1;
}

/* ---- hashing ------------------------------------------------------------- */

uint64_t sq_tok_hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: words are short, this is plenty */
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

int32_t sq_tok_lookup(const sq_tokenizer_t *tok, const char *s, size_t n)
{
    uint32_t mask = tok->str_index_mask;
    for (uint32_t i = (uint32_t)sq_tok_hash_bytes(s, n) & mask;; i = (i + 1) & mask) {
        int32_t id = tok->str_index[i];
        if (id < 0) return -1;
        const char *t = tok->str_blob + tok->str_off[id];
        if (strnlen(t, n + 1) == n && memcmp(t, s, n) == 0) return id;
    }
}

static uint32_t sq_tok_merge_slot(uint64_t key, uint32_t mask)
{
    return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

const sq_tok_merge_t *sq_tok_merge_find(const sq_tokenizer_t *tok, int32_t left, int32_t right)
{
    uint64_t key = ((uint64_t)(uint32_t)(left + 1) << 32) | (uint32_t)right;
    uint32_t mask = tok->merges_mask;
    for (uint32_t i = sq_tok_merge_slot(key, mask);; i = (i + 1) & mask) {
        const sq_tok_merge_t *m = &tok->merges[i];
        if (m->key == key) return m;
        if (m->key == 0) return NULL;
    }
}

/* ---- setup / teardown ---------------------------------------------------- */

static sq_status_t sq_tok_scratch_reserve(sq_tokenizer_t *tok, size_t n)
{
    if (n <= tok->scratch_cap) return SQ_OK;
    size_t cap = tok->scratch_cap ? tok->scratch_cap : 64;
    while (cap < n)
        cap *= 2;
    int32_t *id = realloc(tok->sym_id, cap * sizeof *id);
    if (id) tok->sym_id = id;
    int32_t *prev = realloc(tok->sym_prev, cap * sizeof *prev);
    if (prev) tok->sym_prev = prev;
    int32_t *next = realloc(tok->sym_next, cap * sizeof *next);
    if (next) tok->sym_next = next;
    sq_tok_cand_t *heap = realloc(tok->heap, 3 * cap * sizeof *heap);
    if (heap) tok->heap = heap;
    if (!id || !prev || !next || !heap)
        return sq_error_set(SQ_ERR_NOMEM, "%s: no memory for a %zu-byte pre-token", tok->source, n);
    tok->scratch_cap = cap;
    return SQ_OK;
}

sq_status_t sq_tok_init_runtime(sq_tokenizer_t *tok)
{
    int err;
    PCRE2_SIZE erroff;
    tok->re = pcre2_compile((PCRE2_SPTR)sq_tok_pattern, PCRE2_ZERO_TERMINATED,
                            PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &erroff, NULL);
    if (!tok->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return sq_error_set(SQ_ERR_INTERNAL, "tokenizer regex: %s at offset %zu", (char *)msg,
                            (size_t)erroff);
    }
    /* JIT is an optimization: pcre2_match() interprets when it is missing. */
    (void)pcre2_jit_compile(tok->re, PCRE2_JIT_COMPLETE);
    tok->md = pcre2_match_data_create_from_pattern(tok->re, NULL);
    tok->cache = calloc(SQ_TOK_CACHE_SLOTS, sizeof *tok->cache);
    if (tok->n_added) tok->added_next = calloc(tok->n_added, sizeof *tok->added_next);
    if (!tok->md || !tok->cache || (tok->n_added && !tok->added_next))
        return sq_error_set(SQ_ERR_NOMEM, "%s: no memory for the encoder", tok->source);
    return sq_tok_scratch_reserve(tok, 256);
}

void sq_tokenizer_destroy(sq_tokenizer_t *tok)
{
    if (!tok) return;
    pcre2_match_data_free(tok->md);
    pcre2_code_free(tok->re);
    free(tok->added_next);
    free(tok->heap);
    free(tok->sym_next);
    free(tok->sym_prev);
    free(tok->sym_id);
    free(tok->cache);
    free(tok->added);
    free(tok->merges);
    free(tok->str_index);
    free(tok->dec_off);
    free(tok->dec_blob);
    free(tok->str_off);
    free(tok->str_blob);
    free(tok->source);
    free(tok);
}

/* ---- accessors ----------------------------------------------------------- */

size_t sq_tokenizer_vocab_size(const sq_tokenizer_t *tok)
{
    return (size_t)tok->n_ids;
}

int32_t sq_tokenizer_token_id(const sq_tokenizer_t *tok, const char *token)
{
    if (!tok || !token) return -1;
    return sq_tok_lookup(tok, token, strlen(token));
}

const char *sq_tokenizer_token_str(const sq_tokenizer_t *tok, int32_t id)
{
    if (!tok || id < 0 || id >= tok->n_ids || tok->str_off[id] == SQ_TOK_NO_STR) return NULL;
    return tok->str_blob + tok->str_off[id];
}

int32_t sq_tokenizer_bos_id(const sq_tokenizer_t *tok)
{
    return tok->bos;
}

int32_t sq_tokenizer_eos_id(const sq_tokenizer_t *tok)
{
    return tok->eos;
}

/* ---- BPE ----------------------------------------------------------------- */

typedef struct sq_tok_out {
    int32_t *ids;
    size_t cap;
    size_t n; /* counts past cap, so the caller learns the size needed */
} sq_tok_out_t;

static inline void sq_tok_emit(sq_tok_out_t *o, int32_t id)
{
    if (o->n < o->cap) o->ids[o->n] = id;
    o->n++;
}

static inline bool sq_tok_cand_less(const sq_tok_cand_t *a, const sq_tok_cand_t *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void sq_tok_heap_push(sq_tok_cand_t *h, size_t *n, sq_tok_cand_t c)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!sq_tok_cand_less(&c, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = c;
}

static sq_tok_cand_t sq_tok_heap_pop(sq_tok_cand_t *h, size_t *n)
{
    sq_tok_cand_t top = h[0];
    sq_tok_cand_t last = h[--(*n)];
    size_t i = 0, count = *n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= count) break;
        size_t m = (l + 1 < count && sq_tok_cand_less(&h[l + 1], &h[l])) ? l + 1 : l;
        if (!sq_tok_cand_less(&h[m], &last)) break;
        h[i] = h[m];
        i = m;
    }
    if (count) h[i] = last;
    return top;
}

static void sq_tok_push_pair(const sq_tokenizer_t *tok, size_t *hn, int32_t pos)
{
    if (pos < 0) return;
    int32_t r = tok->sym_next[pos];
    if (r < 0) return;
    const sq_tok_merge_t *m = sq_tok_merge_find(tok, tok->sym_id[pos], tok->sym_id[r]);
    if (m)
        sq_tok_heap_push(tok->heap, hn,
                         (sq_tok_cand_t){m->rank, pos, tok->sym_id[pos], tok->sym_id[r]});
}

/* Merge the lowest-ranked adjacent pair until none is left, the leftmost first
 * among equal ranks. For merge lists where a merge never ranks below the
 * merges that built its halves (every trained BPE file), this is exactly
 * encoder.py's "merge every occurrence of the best bigram" loop; it is the
 * order HF tokenizers uses in any case. O(n log n), so a megabyte-long word
 * (no spaces in CJK text, a run of digits) stays cheap. */
static sq_status_t sq_tok_bpe(sq_tokenizer_t *tok, const uint8_t *p, size_t n, sq_tok_out_t *o)
{
    if (n == 1) {
        sq_tok_emit(o, tok->byte_id[p[0]]);
        return SQ_OK;
    }
    sq_tok_cache_slot_t *slot = NULL;
    if (n <= SQ_TOK_CACHE_KEY) {
        slot = &tok->cache[sq_tok_hash_bytes(p, n) & (SQ_TOK_CACHE_SLOTS - 1)];
        if (slot->klen == n && memcmp(slot->key, p, n) == 0) {
            for (unsigned i = 0; i < slot->nids; i++)
                sq_tok_emit(o, slot->ids[i]);
            return SQ_OK;
        }
    }
    SQ_TRY(sq_tok_scratch_reserve(tok, n));
    int32_t *id = tok->sym_id, *prev = tok->sym_prev, *next = tok->sym_next;
    for (size_t i = 0; i < n; i++) {
        id[i] = tok->byte_id[p[i]];
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++)
        sq_tok_push_pair(tok, &hn, (int32_t)i);
    while (hn) {
        sq_tok_cand_t c = sq_tok_heap_pop(tok->heap, &hn);
        int32_t r = next[c.pos];
        if (id[c.pos] != c.lid || r < 0 || id[r] != c.rid) continue; /* stale */
        id[c.pos] = sq_tok_merge_find(tok, c.lid, c.rid)->id;
        id[r] = -1;
        next[c.pos] = next[r];
        if (next[r] >= 0) prev[next[r]] = c.pos;
        sq_tok_push_pair(tok, &hn, prev[c.pos]);
        sq_tok_push_pair(tok, &hn, c.pos);
    }
    unsigned count = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) {
        sq_tok_emit(o, id[i]);
        count++;
    }
    if (slot && count <= SQ_TOK_CACHE_IDS) {
        slot->klen = (uint8_t)n;
        slot->nids = (uint8_t)count;
        memcpy(slot->key, p, n);
        unsigned k = 0;
        for (int32_t i = 0; i >= 0; i = next[i])
            slot->ids[k++] = id[i];
    }
    return SQ_OK;
}

/* Pre-tokenize and BPE one stretch of plain text. Bytes the regex skips are
 * invalid UTF-8 (every valid character matches some branch); each maximal run
 * of them is BPE'd as one piece so no byte is lost. */
static sq_status_t sq_tok_encode_plain(sq_tokenizer_t *tok, const uint8_t *text, size_t len,
                                       sq_tok_out_t *o)
{
    size_t pos = 0;
    while (pos < len) {
        int rc = pcre2_match(tok->re, text, len, pos, 0, tok->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) return sq_tok_bpe(tok, text + pos, len - pos, o);
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return sq_error_set(SQ_ERR_INTERNAL, "%s: pre-tokenizer failed at byte %zu: %s",
                                tok->source, pos, (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(tok->md);
        size_t start = ov[0], end = ov[1];
        if (start > pos) SQ_TRY(sq_tok_bpe(tok, text + pos, start - pos, o));
        if (end == start) return sq_error_set(SQ_ERR_INTERNAL, "%s: empty pre-token", tok->source);
        SQ_TRY(sq_tok_bpe(tok, text + start, end - start, o));
        pos = end;
    }
    return SQ_OK;
}

/* Offset of the first s[0..n) in text[from, len), SIZE_MAX when none
 * (memmem is a GNU extension). */
static size_t sq_tok_find(const uint8_t *text, size_t from, size_t len, const char *s, size_t n)
{
    for (size_t i = from; n && i + n <= len;) {
        const uint8_t *c = memchr(text + i, (uint8_t)s[0], len - n + 1 - i);
        if (!c) break;
        i = (size_t)(c - text);
        if (memcmp(c, s, n) == 0) return i;
        i++;
    }
    return SIZE_MAX;
}

/* Find the leftmost, then longest, added token in text[pos, len). Each
 * token's next occurrence is remembered, so the whole scan is linear in
 * len per added token. */
static bool sq_tok_next_added(sq_tokenizer_t *tok, const uint8_t *text, size_t pos, size_t len,
                              size_t *at, int32_t *which)
{
    bool found = false;
    size_t best_at = 0, best_len = 0;
    for (size_t k = 0; k < tok->n_added; k++) {
        int32_t aid = tok->added[k];
        const char *s = tok->str_blob + tok->str_off[aid];
        size_t sl = strlen(s);
        if (sl == 0) continue;
        size_t *nx = &tok->added_next[k];
        if (*nx != SIZE_MAX && *nx < pos) *nx = sq_tok_find(text, pos, len, s, sl);
        if (*nx == SIZE_MAX) continue;
        if (!found || *nx < best_at || (*nx == best_at && sl > best_len)) {
            found = true;
            best_at = *nx;
            best_len = sl;
            *which = aid;
        }
    }
    *at = best_at;
    return found;
}

static sq_status_t sq_tok_encode(sq_tokenizer_t *tok, const char *text, size_t len, bool special,
                                 int32_t *ids, size_t cap, size_t *n_out)
{
    if (!tok || !n_out || (!text && len) || (!ids && cap))
        return sq_error_set(SQ_ERR_INVALID_ARG, "sq_tokenizer_encode: NULL argument");
    if (len > (size_t)INT32_MAX)
        return sq_error_set(SQ_ERR_INVALID_ARG, "%s: text of %zu bytes is over the 2 GiB limit",
                            tok->source, len);
    const uint8_t *t = (const uint8_t *)text;
    sq_tok_out_t o = {ids, cap, 0};
    if (!special || tok->n_added == 0) {
        SQ_TRY(sq_tok_encode_plain(tok, t, len, &o));
    } else {
        size_t pos = 0;
        for (size_t k = 0; k < tok->n_added; k++) {
            const char *s = tok->str_blob + tok->str_off[tok->added[k]];
            tok->added_next[k] = sq_tok_find(t, 0, len, s, strlen(s));
        }
        while (pos < len) {
            size_t at;
            int32_t aid;
            if (!sq_tok_next_added(tok, t, pos, len, &at, &aid)) {
                SQ_TRY(sq_tok_encode_plain(tok, t + pos, len - pos, &o));
                break;
            }
            SQ_TRY(sq_tok_encode_plain(tok, t + pos, at - pos, &o));
            sq_tok_emit(&o, aid);
            pos = at + strlen(tok->str_blob + tok->str_off[aid]);
        }
    }
    *n_out = o.n;
    if (o.n > cap)
        return sq_error_set(SQ_ERR_RANGE, "%s: encoding needs %zu ids, buffer holds %zu",
                            tok->source, o.n, cap);
    return SQ_OK;
}

sq_status_t sq_tokenizer_encode(sq_tokenizer_t *tok, const char *text, size_t len, int32_t *ids,
                                size_t cap, size_t *n_out)
{
    return sq_tok_encode(tok, text, len, false, ids, cap, n_out);
}

sq_status_t sq_tokenizer_encode_special(sq_tokenizer_t *tok, const char *text, size_t len,
                                        int32_t *ids, size_t cap, size_t *n_out)
{
    return sq_tok_encode(tok, text, len, true, ids, cap, n_out);
}

/* ---- decode -------------------------------------------------------------- */

sq_status_t sq_tokenizer_decode(const sq_tokenizer_t *tok, const int32_t *ids, size_t n, char *buf,
                                size_t cap, size_t *len_out)
{
    if (!tok || !len_out || (!ids && n) || (!buf && cap))
        return sq_error_set(SQ_ERR_INVALID_ARG, "sq_tokenizer_decode: NULL argument");
    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= tok->n_ids || tok->str_off[id] == SQ_TOK_NO_STR)
            return sq_error_set(SQ_ERR_INVALID_ARG,
                                "%s: ids[%zu] = %d names no token (vocab size %d)", tok->source, i,
                                (int)id, (int)tok->n_ids);
        need += tok->dec_off[id + 1] - tok->dec_off[id];
    }
    *len_out = need;
    if (need > cap)
        return sq_error_set(SQ_ERR_RANGE, "%s: decoding needs %zu bytes, buffer holds %zu",
                            tok->source, need, cap);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t a = tok->dec_off[ids[i]], b = tok->dec_off[ids[i] + 1];
        memcpy(buf + k, tok->dec_blob + a, b - a);
        k += b - a;
    }
    if (cap > need) buf[need] = '\0';
    return SQ_OK;
}

/* Internal layout of sq_tokenizer_t, shared by tokenizer.c (encode/decode)
 * and tokenizer_load.c (file parsing). Not a public header. */
#ifndef SPARQ_TOKENIZER_INTERNAL_H
#define SPARQ_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>

#include "sparq/tokenizer.h"

/* Largest token id accepted; guards the id tables against a hostile file. */
#define SQ_TOK_MAX_IDS (1 << 24)
/* str_off value of an id that no token uses (vocabularies may have holes). */
#define SQ_TOK_NO_STR UINT32_MAX

/* Word cache: direct-mapped, fixed size, so memory stays bounded however much
 * text goes through. Words longer than KEY bytes or making more than IDS ids
 * are rare and simply not cached. */
#define SQ_TOK_CACHE_SLOTS 8192 /* power of two */
#define SQ_TOK_CACHE_KEY 22
#define SQ_TOK_CACHE_IDS 8

typedef struct sq_tok_cache_slot {
    uint8_t klen; /* 0: empty (pre-tokens are never empty) */
    uint8_t nids;
    uint8_t key[SQ_TOK_CACHE_KEY];
    int32_t ids[SQ_TOK_CACHE_IDS];
} sq_tok_cache_slot_t;

/* (left id, right id) -> (rank, merged id); key 0 marks an empty slot. */
typedef struct sq_tok_merge {
    uint64_t key; /* (left + 1) << 32 | right */
    int32_t rank;
    int32_t id;
} sq_tok_merge_t;

/* A candidate merge of the symbols at pos and next[pos], valid while both
 * still hold the ids they had when it was pushed. */
typedef struct sq_tok_cand {
    int32_t rank;
    int32_t pos;
    int32_t lid;
    int32_t rid;
} sq_tok_cand_t;

struct sq_tokenizer {
    char *source; /* path given to sq_tokenizer_load, for messages */
    int32_t n_ids;

    char *str_blob;     /* vocabulary spellings, each NUL-terminated */
    uint32_t *str_off;  /* (n_ids) offset into str_blob, or SQ_TOK_NO_STR */
    uint8_t *dec_blob;  /* bytes each id decodes to */
    uint32_t *dec_off;  /* (n_ids + 1) id i decodes to dec_blob[dec_off[i] .. dec_off[i+1]) */
    int32_t *str_index; /* (str_index_mask + 1) open addressing by spelling; -1 empty */
    uint32_t str_index_mask;

    sq_tok_merge_t *merges; /* (merges_mask + 1) open addressing */
    uint32_t merges_mask;
    int32_t n_merges;

    int32_t byte_id[256]; /* id of the one-byte symbol of each byte */

    int32_t *added; /* (n_added) ids of added tokens, matched by spelling */
    size_t n_added;
    int32_t bos, eos;

    pcre2_code *re;
    pcre2_match_data *md;

    sq_tok_cache_slot_t *cache; /* (SQ_TOK_CACHE_SLOTS) */

    /* BPE scratch, grown to the longest pre-token seen. */
    size_t scratch_cap;  /* symbols */
    int32_t *sym_id;     /* (scratch_cap) id at each byte position; -1 merged away */
    int32_t *sym_prev;   /* (scratch_cap) */
    int32_t *sym_next;   /* (scratch_cap) -1 at the end */
    sq_tok_cand_t *heap; /* (3 * scratch_cap) */
    size_t *added_next;  /* (n_added) next occurrence of each added token */
};

/* Shared between the two files. */
uint64_t sq_tok_hash_bytes(const void *p, size_t n);
int32_t sq_tok_lookup(const sq_tokenizer_t *tok, const char *s, size_t n);
const sq_tok_merge_t *sq_tok_merge_find(const sq_tokenizer_t *tok, int32_t left, int32_t right);

/* Compile the pre-tokenizer regex and allocate encode scratch (at load). */
sq_status_t sq_tok_init_runtime(sq_tokenizer_t *tok);

/* GPT-2's byte <-> unicode mapping: printable latin-1 bytes stand for
 * themselves, the other 68 bytes for U+0100.. in byte order. */
uint32_t sq_tok_byte_to_cp(uint8_t b);
/* -1 when cp is not one of the 256 byte symbols. */
int sq_tok_cp_to_byte(uint32_t cp);

#endif

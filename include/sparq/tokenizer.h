/* sparq/tokenizer.h — GPT-2 style byte-level BPE tokenizer.
 *
 * Text is split into pre-tokens by the GPT-2 regex
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (PCRE2, UTF + UCP, \s meaning the Unicode White_Space property as in the
 * Python `regex` module and the Rust tokenizers), each pre-token's bytes become
 * GPT-2's byte symbols, and BPE merges are applied by rank, lowest first. The
 * ids are those of OpenAI's encoder.py / HF tokenizers for the same files,
 * with one caveat: \p{L} and \p{N} come from PCRE2's Unicode tables (Unicode
 * 14 in PCRE2 10.42), so a character assigned in a later Unicode version is
 * unassigned here and may be split differently than by a newer reference.
 *
 * Input that is not valid UTF-8 is accepted: the regex never matches an
 * invalid sequence, so every maximal run of invalid bytes between matches
 * becomes a pre-token of its own (BPE-merged like any other). Byte-level BPE
 * covers all 256 bytes, so decode(encode(x)) == x for every byte string x.
 *
 * Files: a directory with vocab.json + merges.txt (GPT-2 format, an optional
 * "#version" first line), an HF tokenizer.json (model.type "BPE", merges as
 * "a b" strings or ["a", "b"] pairs, ByteLevel pre-tokenizer, added_tokens),
 * or a directory with tokenizer.json (preferred when both are present). A
 * tokenizer_config.json beside them, when present, names bos/eos; otherwise
 * "<|endoftext|>" is both when the vocabulary has it.
 *
 * Threads: encode uses scratch space and a word cache inside the tokenizer, so
 * calls to sq_tokenizer_encode* on one tokenizer must not overlap. Decode and
 * the accessors only read and may run concurrently with each other.
 */
#ifndef SPARQ_TOKENIZER_H
#define SPARQ_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "sparq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sq_tokenizer sq_tokenizer_t;

/* Load a tokenizer (see above for the accepted layouts). Errors name the file
 * and the problem: missing file (SQ_ERR_NOT_FOUND / SQ_ERR_IO), bad JSON or a
 * bad merge/vocab entry (SQ_ERR_FORMAT, with line or entry), an HF model or
 * pre-tokenizer other than byte-level BPE (SQ_ERR_UNSUPPORTED). */
sq_status_t sq_tokenizer_load(const char *dir_or_file, sq_tokenizer_t **out);
void sq_tokenizer_destroy(sq_tokenizer_t *tok);

/* Encode len bytes of text as plain text: "<|endoftext|>" in the text is
 * tokenized like any other characters (what OpenAI's encoder.py and
 * tiktoken's encode_ordinary do), so untrusted data cannot inject control
 * tokens. text may be NULL when len is 0.
 * On success *n_out is the number of ids written to ids[0..cap). When cap is
 * too small, returns SQ_ERR_RANGE with the count needed in *n_out (ids then
 * holds a prefix of the result); ids may be NULL when cap is 0. */
sq_status_t sq_tokenizer_encode(sq_tokenizer_t *tok, const char *text, size_t len, int32_t *ids,
                                size_t cap, size_t *n_out);

/* Like sq_tokenizer_encode, but the exact content of every added token
 * (tokenizer.json added_tokens; "<|endoftext|>" for a GPT-2 vocab.json)
 * becomes that token's id, leftmost and then longest match first, as HF
 * tokenizers do by default. The lstrip/rstrip/single_word options of added
 * tokens are not applied. */
sq_status_t sq_tokenizer_encode_special(sq_tokenizer_t *tok, const char *text, size_t len,
                                        int32_t *ids, size_t cap, size_t *n_out);

/* Decode n ids into bytes: buf receives *len_out bytes, plus a NUL after them
 * when cap > *len_out. When cap is too small, returns SQ_ERR_RANGE with the
 * length needed in *len_out. An id that names no token is SQ_ERR_INVALID_ARG.
 * Added tokens decode to their content. */
sq_status_t sq_tokenizer_decode(const sq_tokenizer_t *tok, const int32_t *ids, size_t n, char *buf,
                                size_t cap, size_t *len_out);

/* Number of ids: one more than the largest token id (vocab and added). */
size_t sq_tokenizer_vocab_size(const sq_tokenizer_t *tok);

/* Id of a token given in its vocabulary spelling (byte symbols: "Ġthe" for
 * " the"; added tokens as written, "<|endoftext|>"); -1 when absent. */
int32_t sq_tokenizer_token_id(const sq_tokenizer_t *tok, const char *token);

/* Vocabulary spelling of id (NUL-terminated, owned by tok); NULL when id
 * names no token. */
const char *sq_tokenizer_token_str(const sq_tokenizer_t *tok, int32_t id);

/* Begin/end-of-sequence ids; -1 when the files do not say and the vocabulary
 * has no "<|endoftext|>". For GPT-2 both are 50256. */
int32_t sq_tokenizer_bos_id(const sq_tokenizer_t *tok);
int32_t sq_tokenizer_eos_id(const sq_tokenizer_t *tok);

#ifdef __cplusplus
}
#endif
#endif

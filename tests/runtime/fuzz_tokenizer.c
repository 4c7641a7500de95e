/* Fuzz: encode arbitrary bytes with the GPT-2 tokenizer, then decode.
 * Byte-level BPE loses nothing, so decode(encode(x)) == x must hold for every
 * input (the contract promises it for valid UTF-8; the implementation keeps
 * it for invalid bytes too, and we check both). encode_special must also
 * round-trip. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparq/tokenizer.h"

static sq_tokenizer_t *tok;

static void check_roundtrip(const uint8_t *data, size_t size, int special)
{
    size_t cap = size + 1, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    char *out = malloc(size + 1);
    if (!ids || !out) abort();
    sq_status_t st = special
                         ? sq_tokenizer_encode_special(tok, (const char *)data, size, ids, cap, &n)
                         : sq_tokenizer_encode(tok, (const char *)data, size, ids, cap, &n);
    if (st != SQ_OK || n > size) {
        fprintf(stderr, "encode: %s (%s), %zu ids for %zu bytes\n", sq_status_string(st),
                sq_error_last(), n, size);
        abort();
    }
    /* the counting call must agree */
    size_t n2 = 0;
    st = special ? sq_tokenizer_encode_special(tok, (const char *)data, size, NULL, 0, &n2)
                 : sq_tokenizer_encode(tok, (const char *)data, size, NULL, 0, &n2);
    if (n2 != n || (n > 0 ? st != SQ_ERR_RANGE : st != SQ_OK)) abort();
    size_t len = 0;
    st = sq_tokenizer_decode(tok, ids, n, out, size + 1, &len);
    if (st != SQ_OK || len != size || memcmp(out, data, size) != 0) {
        fprintf(stderr, "decode(encode(x)) != x (%zu bytes in, %zu out)\n", size, len);
        abort();
    }
    free(out);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tok) {
        sq_status_t st = sq_tokenizer_load(SQ_REPO_DIR "/models/gpt2-tokenizer", &tok);
        if (st != SQ_OK) {
            fprintf(stderr, "fuzz_tokenizer: %s\n", sq_error_last());
            abort();
        }
    }
    check_roundtrip(data, size, 0);
    check_roundtrip(data, size, 1);
    return 0;
}

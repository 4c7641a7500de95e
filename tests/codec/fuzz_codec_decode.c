/* libFuzzer target: any byte string through sq_codec_peek and
 * sq_codec_decode. Each input runs twice: as given (the checksum rejects
 * almost all mutations) and with its checksum recomputed, which lets the
 * mutations reach the structural checks. The reference decoder runs beside
 * the fast one; they must agree on success, and on every value then. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sparq/codec.h"

#define FUZZ_MAX_ELEMS (1u << 20)
#define FUZZ_MAX_REF_WORK (1u << 22) /* the reference is O(rows * cols * outliers) */

static void fuzz_decode(const uint8_t *data, size_t size, unsigned ld_extra)
{
    sq_codec_header_t h;
    if (sq_codec_peek(data, size, &h) != SQ_OK) {
        float y1[4];
        if (sq_codec_decode(data, size, y1, 1, 1, 1) == SQ_OK) __builtin_trap();
        return;
    }
    uint64_t n = (uint64_t)h.rows * (uint64_t)h.cols;
    if (n > FUZZ_MAX_ELEMS) return;
    const int64_t ld = h.cols + (int64_t)ld_extra;
    const size_t cells = (size_t)(h.rows * ld);
    float *y = malloc(cells * sizeof(float)), *yr = malloc(cells * sizeof(float));
    if (!y || !yr) abort();
    memset(y, 0x5a, cells * sizeof(float));
    memset(yr, 0x5a, cells * sizeof(float));
    sq_status_t a = sq_codec_decode(data, size, y, h.rows, h.cols, ld);
    if (n * (1u + (uint64_t)h.n_outliers) <= FUZZ_MAX_REF_WORK) {
        sq_status_t b = sq_codec_decode_ref(data, size, yr, h.rows, h.cols, ld);
        if ((a == SQ_OK) != (b == SQ_OK)) __builtin_trap();
        if (a == SQ_OK && memcmp(y, yr, cells * sizeof(float)) != 0) __builtin_trap();
    }
    free(y);
    free(yr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned ld_extra = size ? data[size - 1] % 3u : 0;
    fuzz_decode(data, size, ld_extra);
    if (size >= SQ_CODEC_HEADER_SIZE) {
        uint8_t *copy = malloc(size); /* exact size: ASan sees any overread */
        if (!copy) abort();
        memcpy(copy, data, size);
        if (sq_codec_reseal(copy, size) == SQ_OK) fuzz_decode(copy, size, ld_extra);
        free(copy);
    }
    return 0;
}

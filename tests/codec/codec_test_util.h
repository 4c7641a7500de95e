/* Helpers shared by the codec tests: deterministic random matrices and
 * a buffer-checked encode/decode round trip. */
#ifndef SPARQ_CODEC_TEST_UTIL_H
#define SPARQ_CODEC_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "sparq/codec.h"

/* splitmix64: tests draw from their own seeded stream. */
uint64_t ct_rand(uint64_t *state);
double ct_uniform(uint64_t *state); /* [0, 1) */

/* x [rows, ld]: a fraction `density` of cells holds a value of magnitude in
 * [0.6, 1] * amp with random sign (non-zero at every bit width), the rest
 * exact zeros; cells past cols hold a poison value. */
void ct_fill_sparse(float *x, int64_t rows, int64_t cols, int64_t ld, double density, float amp,
                    uint64_t seed);
/* x [rows, ld]: gaussian-ish values (sum of uniforms) times amp. */
void ct_fill_smooth(float *x, int64_t rows, int64_t cols, int64_t ld, float amp, uint64_t seed);

/* Encode with the fast path into a fresh buffer of max_size bytes plus a
 * guard region that must stay untouched; returns the buffer (caller frees)
 * and the message size. Aborts the test on any failure. */
uint8_t *ct_encode(const sq_codec_params_t *p, const float *x, int64_t rows, int64_t cols,
                   int64_t ld, size_t *len, sq_codec_stats_t *stats);

/* Decode fast and ref into guarded buffers with stride ld; both must
 * succeed and agree bitwise; returns the fast output (caller frees). */
float *ct_decode_both(const uint8_t *msg, size_t len, int64_t rows, int64_t cols, int64_t ld);

#endif

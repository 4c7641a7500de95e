/* Codec measurement, reusable by `sparq bench codec` and by any caller
 * holding real activations: encode + decode one fp32 matrix with one set of
 * params, time both, check the decoded values against the reference twin. */
#ifndef SPARQ_BENCH_CODEC_MEASURE_H
#define SPARQ_BENCH_CODEC_MEASURE_H

#include <stddef.h>
#include <stdint.h>

#include "sparq/codec.h"

typedef struct sq_bench_codec_result {
    sq_codec_encoding_t encoding;             /* written (AUTO resolved) */
    uint64_t nnz;                             /* non-zero codes */
    double density;                           /* nnz / (rows * cols) */
    size_t bytes;                             /* message size, header included */
    size_t size_dense, size_bitmap, size_csr; /* exact size of each layout for this input */
    double ratio_fp16;                        /* rows * cols * 2 / bytes: vs sending fp16 dense */
    double bits_per_value;                    /* 8 * bytes / (rows * cols) */
    double enc_s, dec_s;                      /* median seconds of one call */
    double enc_gbs, dec_gbs;           /* GB/s (1e9 B) of fp32 source: rows * cols * 4 / time */
    double enc_best_gbs, dec_best_gbs; /* the same from the fastest rep (busy machines) */
    uint64_t wrong;     /* decoded values that differ (bitwise) from the reference x^ */
    uint64_t msg_diff;  /* 1 if the fast message differs from the reference's bytes */
    double max_abs_err; /* max |x - x^| over all cells */
    double rms_err;     /* sqrt(mean (x - x^)^2) */
} sq_bench_codec_result_t;

/* x [rows, cols] contiguous. Runs one warm-up and `reps` timed calls of
 * encode and of decode (single thread), reports medians. The reference
 * encode/decode runs once for the `wrong` count. Host OOM is fatal (bench
 * tool); a codec error comes back as its status. */
sq_status_t sq_bench_codec_measure(const float *x, int64_t rows, int64_t cols,
                                   const sq_codec_params_t *p, int reps,
                                   sq_bench_codec_result_t *res);

#endif

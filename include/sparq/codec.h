/* sparq/codec.h — the activation codec: quantize, sparsify, encode, decode.
 *
 * A pipeline stage hands the next stage an fp32 activation matrix x [R, C]
 * (rows = tokens, columns = channels; row stride ld). The codec quantizes it
 * to b-bit symmetric codes with absmax scales per row or per group of G
 * columns, which turns many codes into 0, and writes the codes as one
 * self-describing message in the smallest of three layouts:
 *
 *   dense   every code, b bits each
 *   bitmap  1 bit per element + the non-zero codes
 *   CSR     row pointers + column indices + the non-zero codes
 *
 * The byte-level wire format (header, sections, padding, checksum, every
 * check the decoder makes and the status it returns) is in codec/FORMAT.md.
 *
 * Quantization (b in {8, 4, 2}, qmax = 2^(b-1) - 1):
 *   scale s = absmax / qmax over the row or group (outlier columns excluded),
 *   rounded in the scale dtype and then bumped up by one ulp when needed so
 *   that s * qmax >= absmax holds exactly: no code ever clamps, and with
 *   round-to-nearest |x - q*s| <= s/2 for every element. (One exception:
 *   when absmax is within ~2^-17 of FLT_MAX no fp32 s covers it with
 *   qmax * s finite; s is then capped so that x^ stays finite, and the
 *   largest codes saturate at +-qmax, error <= s/2 + 2^-17 |x|.)
 *   An all-zero row/group gets s = 0 and all codes 0.
 *   nearest:    q = rint(x / s)                         (ties to even)
 *   stochastic: v = x / s, q = floor(v) + [u < v - floor(v)]
 *               with u = sq_philox_uniform() of element i = r*C + c under
 *               (seed, stream): P(q = floor(v) + 1) = frac(v), so E[q] = v.
 *               This is floor(v + u') for a uniform u' = 1 - u, computed
 *               without rounding v + u. Same seed => same codes.
 *   threshold t: codes with |q| <= t become 0 (t < qmax).
 *   decode:     x^ = (float)q * s in fp32 — identical for every encoding.
 *
 * fp16 scales: s is rounded to fp16 (then bumped up as above) and the
 * quantizer uses that fp16 value, so encoder and decoder agree. A scale too
 * small for fp16 becomes a small subnormal (>= 2^-24; the error bound still
 * holds, relative precision is lost for such tiny rows). A scale above the
 * fp16 maximum 65504 (absmax > 65504 * qmax) is rejected with SQ_ERR_RANGE
 * naming the row and group: use fp32 scales or make the channel an outlier.
 *
 * Outlier columns: values of the listed columns are carried in a side list
 * (fp32: bit-exact; fp16: rounded to nearest even) and excluded from the
 * scales; their codes are 0.
 *
 * Non-finite input: quantized modes reject NaN/Inf anywhere in x (outlier
 * columns included) with SQ_ERR_RANGE naming the first offending row and
 * column. LOSSLESS fp32 passes every bit through (NaN payloads, Inf, -0).
 *
 * Threading: every function is reentrant; encode/decode allocate nothing
 * (encode uses about 16 KiB of stack, decode about 7 KiB).
 */
#ifndef SPARQ_CODEC_H
#define SPARQ_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "sparq/status.h"
#include "sparq/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SQ_CODEC_MAGIC "SPQA"
#define SQ_CODEC_VERSION 1
#define SQ_CODEC_HEADER_SIZE 64
/* Largest rows * cols a message may carry (keeps every size in 64 bits). */
#define SQ_CODEC_MAX_ELEMS ((uint64_t)1 << 40)

/* Layout of the codes. The first four values appear on the wire. */
typedef enum sq_codec_encoding {
    SQ_CODEC_DENSE = 0,    /* all codes, b bits each */
    SQ_CODEC_BITMAP = 1,   /* presence bitmap + non-zero codes */
    SQ_CODEC_CSR = 2,      /* row pointers + column indices + non-zero codes */
    SQ_CODEC_LOSSLESS = 3, /* no quantization: raw fp32 or fp16 values */
    SQ_CODEC_AUTO = 4,     /* params only: the smallest of dense/bitmap/CSR */
    SQ_CODEC_ENCODING_COUNT
} sq_codec_encoding_t;

typedef enum sq_codec_granularity {
    SQ_CODEC_PER_ROW = 0,   /* one scale per row (token) */
    SQ_CODEC_PER_GROUP = 1, /* one scale per G consecutive columns of a row */
} sq_codec_granularity_t;

typedef enum sq_codec_rounding {
    SQ_CODEC_ROUND_NEAREST = 0,
    SQ_CODEC_ROUND_STOCHASTIC = 1,
} sq_codec_rounding_t;

/* What to send. Start from sq_codec_params_default() and change fields. */
typedef struct sq_codec_params {
    sq_codec_encoding_t encoding;       /* DENSE/BITMAP/CSR/AUTO/LOSSLESS */
    int bits;                           /* 8, 4 or 2 (quantized encodings) */
    sq_codec_granularity_t granularity; /* scale per row or per group */
    uint32_t group_size;                /* G: power of two dividing cols (PER_GROUP) */
    sq_dtype_t scale_dtype;             /* SQ_DTYPE_F32 or SQ_DTYPE_F16 */
    sq_codec_rounding_t rounding;       /* nearest or stochastic */
    uint64_t seed, stream;              /* dither of stochastic rounding */
    uint32_t threshold;                 /* drop codes with |q| <= threshold; < qmax */
    const uint32_t *outlier_cols;       /* strictly increasing column indices, or NULL */
    uint32_t n_outliers;                /* entries of outlier_cols */
    sq_dtype_t outlier_dtype;           /* F32 (exact) or F16 */
    sq_dtype_t lossless_dtype;          /* LOSSLESS values: F32 (bit-exact) or F16 */
    uint64_t tag;                       /* opaque, copied into the header */
} sq_codec_params_t;

/* 8 bits, per row, fp32 scales, nearest, no threshold/outliers, AUTO. */
sq_codec_params_t sq_codec_params_default(void);

/* Check params against a shape (rows, cols >= 1, rows*cols <= MAX_ELEMS,
 * outlier list in range and increasing, ...): SQ_ERR_INVALID_ARG naming the
 * field. Every function below runs this check first. */
sq_status_t sq_codec_params_check(const sq_codec_params_t *p, int64_t rows, int64_t cols);

/* Decoded header of a message (see codec/FORMAT.md for the wire layout). */
typedef struct sq_codec_header {
    uint16_t version;
    uint16_t header_size;
    uint32_t checksum;            /* CRC32C as stored */
    sq_codec_encoding_t encoding; /* DENSE, BITMAP, CSR or LOSSLESS */
    sq_dtype_t src_dtype;         /* dtype the encoder was given (F32) */
    int bits;                     /* 8/4/2; 0 for LOSSLESS */
    sq_codec_granularity_t granularity;
    uint32_t group_size; /* == cols for PER_ROW; 0 for LOSSLESS */
    sq_dtype_t scale_dtype;
    sq_codec_rounding_t rounding;
    uint32_t threshold;
    sq_dtype_t outlier_dtype;
    uint32_t index_bytes;   /* CSR column index width 2 or 4; else 0 */
    sq_dtype_t value_dtype; /* LOSSLESS value dtype */
    int64_t rows, cols;
    uint32_t n_outliers;
    uint64_t nnz;         /* non-zero codes (LOSSLESS: rows*cols) */
    uint64_t payload_len; /* bytes after the header */
    uint64_t tag;
    size_t total_size; /* header_size + payload_len */
} sq_codec_header_t;

/* Sizes and choices of one encode call. */
typedef struct sq_codec_stats {
    sq_codec_encoding_t encoding; /* the one written (AUTO resolved) */
    uint64_t nnz;                 /* non-zero codes written (outlier columns excluded) */
    double density;               /* nnz / (rows * cols) */
    size_t bytes_header;          /* per section, padding included */
    size_t bytes_scales;
    size_t bytes_outliers;  /* column list + values */
    size_t bytes_structure; /* bitmap, or row pointers + column indices */
    size_t bytes_codes;     /* codes, or LOSSLESS values */
    size_t bytes_total;     /* == *written */
    size_t size_dense;      /* exact size each encoding would have for this */
    size_t size_bitmap;     /* input (SIZE_MAX: not representable); */
    size_t size_csr;        /* 0 for LOSSLESS */
} sq_codec_stats_t;

/* Exact message size (header included) of each encoding for a tensor with
 * nnz non-zero codes; 0 when params/shape are invalid (error recorded),
 * SIZE_MAX for CSR when nnz > UINT32_MAX. LOSSLESS ignores nnz. */
size_t sq_codec_size_dense(const sq_codec_params_t *p, int64_t rows, int64_t cols, uint64_t nnz);
size_t sq_codec_size_bitmap(const sq_codec_params_t *p, int64_t rows, int64_t cols, uint64_t nnz);
size_t sq_codec_size_csr(const sq_codec_params_t *p, int64_t rows, int64_t cols, uint64_t nnz);
size_t sq_codec_size_lossless(const sq_codec_params_t *p, int64_t rows, int64_t cols);

/* Upper bound on the message size of encode(p, rows, cols) for any input:
 * a buffer of this size never fails for lack of room. Exact for DENSE,
 * LOSSLESS and AUTO (AUTO is never larger than dense). 0 when invalid. */
size_t sq_codec_max_size(const sq_codec_params_t *p, int64_t rows, int64_t cols);

/* Quantize and encode x [rows, cols] (row stride ld >= cols) into buf.
 * On success *written = message size and, when stats != NULL, *stats is
 * filled. Errors: SQ_ERR_INVALID_ARG (params, shape, NULL pointers),
 * SQ_ERR_RANGE (NaN/Inf in x naming row and column, fp16 scale or outlier
 * overflow, cap too small for the message). On error buf holds garbage and
 * *written and *stats are untouched. No allocation; AUTO and CSR read x twice
 * (count, then write), DENSE once, BITMAP once when cap >= max_size. */
sq_status_t sq_codec_encode(const sq_codec_params_t *p, const float *x, int64_t rows, int64_t cols,
                            int64_t ld, void *buf, size_t cap, size_t *written,
                            sq_codec_stats_t *stats);

/* Parse and validate the header of a message of len bytes: magic, version,
 * header size, every field, and that the payload length equals the size the
 * fields imply and fits in len. Does not read the payload nor the checksum
 * (decode does). Fills *hdr on success. */
sq_status_t sq_codec_peek(const void *buf, size_t len, sq_codec_header_t *hdr);

/* sq_codec_peek, then the checksum (SQ_ERR_CHECKSUM): what a receiver runs
 * on its host copy before handing the payload to sq_codec_gpu_decode(). */
sq_status_t sq_codec_check(const void *buf, size_t len, sq_codec_header_t *hdr);

/* Decode a message into y [rows, cols] (row stride ld >= cols); rows and
 * cols must equal the header's. Validates everything (codec/FORMAT.md lists
 * each check and its status) and never reads outside buf[0, len) nor writes
 * outside the rows x cols cells of y. Bytes after the message are ignored.
 * The checksum is verified before y is touched; when a later structural
 * check fails (a message with a valid checksum but bad content), y may hold
 * partial output. */
sq_status_t sq_codec_decode(const void *buf, size_t len, float *y, int64_t rows, int64_t cols,
                            int64_t ld);

/* Reference twins: plain element-by-element C, slow and obvious. They write
 * the same bytes and decode the same values as the fast path; tests and the
 * fuzzer compare the two. */
sq_status_t sq_codec_encode_ref(const sq_codec_params_t *p, const float *x, int64_t rows,
                                int64_t cols, int64_t ld, void *buf, size_t cap, size_t *written,
                                sq_codec_stats_t *stats);
sq_status_t sq_codec_decode_ref(const void *buf, size_t len, float *y, int64_t rows, int64_t cols,
                                int64_t ld);

/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor
 * 0xFFFFFFFF): sq_codec_crc32c(0, "123456789", 9) == 0xE3069283. Pass the
 * previous result as crc to continue over several pieces. */
uint32_t sq_codec_crc32c(uint32_t crc, const void *data, size_t n);

/* Recompute and store the checksum of the message in buf (tests, fuzzing,
 * tools that patch a message on purpose). SQ_ERR_FORMAT when the header's
 * sizes do not fit in len. */
sq_status_t sq_codec_reseal(void *buf, size_t len);

const char *sq_codec_encoding_name(sq_codec_encoding_t e);

#ifdef __cplusplus
}
#endif
#endif

/* Internals shared by the codec's fast path (encode.c, decode.c) and its
 * reference twin (ref.c): wire constants, the section layout, scale rules.
 * Not installed; tests may include it. */
#ifndef SPARQ_CODEC_INTERNAL_H
#define SPARQ_CODEC_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "sparq/codec.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the codec stores sections with native loads/stores: little-endian hosts only"
#endif

#ifdef __cplusplus
extern "C" { /* the GPU codec (codec/cuda) shares the header and layout code */
#endif

/* Header field offsets (codec/FORMAT.md, "Header"). */
enum {
    SQ_HDR_MAGIC = 0,
    SQ_HDR_VERSION = 4,
    SQ_HDR_HEADER_SIZE = 6,
    SQ_HDR_CHECKSUM = 8,
    SQ_HDR_ENCODING = 12,
    SQ_HDR_SRC_DTYPE = 13,
    SQ_HDR_BITS = 14,
    SQ_HDR_GRANULARITY = 15,
    SQ_HDR_SCALE_DTYPE = 16,
    SQ_HDR_ROUNDING = 17,
    SQ_HDR_THRESHOLD = 18,
    SQ_HDR_OUTLIER_DTYPE = 19,
    SQ_HDR_INDEX_BYTES = 20,
    SQ_HDR_VALUE_DTYPE = 21,
    SQ_HDR_RESERVED = 22,
    SQ_HDR_ROWS = 24,
    SQ_HDR_COLS = 28,
    SQ_HDR_GROUP_SIZE = 32,
    SQ_HDR_N_OUTLIERS = 36,
    SQ_HDR_NNZ = 40,
    SQ_HDR_PAYLOAD_LEN = 48,
    SQ_HDR_TAG = 56,
};

/* Byte offsets of every section of one message; *_len are the bytes of
 * data, each section then pads with zeros to the next multiple of 8. */
typedef struct sq_codec_layout {
    uint64_t n;              /* rows * cols */
    uint64_t groups_per_row; /* cols / group_size */
    uint64_t n_scales;       /* rows * groups_per_row */
    uint32_t scale_bytes;    /* 4 or 2 */
    uint32_t outlier_bytes;  /* 4 or 2 */
    uint64_t off_scales, len_scales;
    uint64_t off_outliers, len_outliers; /* column list (u32) then values */
    uint64_t off_outlier_vals;
    uint64_t off_struct, len_struct; /* bitmap, or row pointers then indices */
    uint64_t off_indices;            /* CSR column indices */
    uint64_t off_codes, len_codes;
    uint64_t total; /* header + every padded section */
} sq_codec_layout_t;

static inline uint64_t sq_codec_align8(uint64_t n)
{
    return (n + 7u) & ~(uint64_t)7u;
}

static inline int sq_codec_qmax(int bits)
{
    return (1 << (bits - 1)) - 1;
}

/* Section offsets of a header whose fields are already valid. */
void sq_codec_layout(const sq_codec_header_t *h, sq_codec_layout_t *l);

/* The header encode would write for params/shape/nnz/encoding (no checksum
 * nor payload length yet: the layout gives the latter). */
void sq_codec_header_from_params(const sq_codec_params_t *p, int64_t rows, int64_t cols,
                                 uint64_t nnz, sq_codec_encoding_t enc, sq_codec_header_t *h);

/* Serialize a header (payload_len and checksum included) into 64 bytes. */
void sq_codec_header_store(const sq_codec_header_t *h, uint8_t *out);

/* Compute and store the checksum over header + payload of a message whose
 * header is already stored. */
void sq_codec_seal(uint8_t *buf, uint64_t total);

/* The checksum a stored message should carry (field at offset 8 as zero). */
uint32_t sq_codec_message_crc(const uint8_t *buf, uint64_t total);
uint32_t sq_codec_crc32c_ref(uint32_t crc, const void *data, size_t n);

/* Scale for one row/group with absolute maximum amax (finite, >= 0):
 * returns 0 and sets *s (value the quantizer uses) and *wire (its bits in
 * the scale dtype: fp32 bits or fp16 bits), or -1 when the fp16 scale
 * overflows. See codec.h for the rounding-up rule. */
int sq_codec_scale(float amax, int qmax, sq_dtype_t sdt, float *s, uint32_t *wire);

/* Stored scale -> the fp32 value both sides multiply codes by. */
static inline float sq_codec_scale_value(uint32_t wire, sq_dtype_t sdt)
{
    if (sdt == SQ_DTYPE_F16) return sq_f16_to_f32((uint16_t)wire);
    float f;
    memcpy(&f, &wire, 4);
    return f;
}

/* Pick the smallest of dense/bitmap/CSR (ties: dense < bitmap < CSR). */
sq_codec_encoding_t sq_codec_pick(size_t dense, size_t bitmap, size_t csr);

/* Fill the size fields of stats from a layout. */
void sq_codec_stats_fill(const sq_codec_params_t *p, int64_t rows, int64_t cols,
                         const sq_codec_header_t *h, const sq_codec_layout_t *l,
                         sq_codec_stats_t *st);

/* First non-finite element of x in row-major order; 0 if none. */
int sq_codec_find_nonfinite(const float *x, int64_t rows, int64_t cols, int64_t ld, int64_t *r,
                            int64_t *c);

/* Little-endian loads/stores at any alignment. */
static inline uint16_t sq_ld16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static inline uint32_t sq_ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t sq_ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline void sq_st16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}
static inline void sq_st32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static inline void sq_st64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

#ifdef __cplusplus
}
#endif
#endif

/* Wire format: params checks, section layout and sizes, the header and its
 * validation (codec/FORMAT.md is the byte-level description). */
#include "codec_internal.h"

#include <inttypes.h>
#include <math.h>

_Static_assert(sizeof(size_t) == 8, "message sizes need a 64-bit size_t");

static const char *const sq_codec_encoding_names[SQ_CODEC_ENCODING_COUNT] = {
    [SQ_CODEC_DENSE] = "dense",       [SQ_CODEC_BITMAP] = "bitmap", [SQ_CODEC_CSR] = "csr",
    [SQ_CODEC_LOSSLESS] = "lossless", [SQ_CODEC_AUTO] = "auto",
};

const char *sq_codec_encoding_name(sq_codec_encoding_t e)
{
    if ((unsigned)e >= SQ_CODEC_ENCODING_COUNT) return "unknown";
    return sq_codec_encoding_names[e];
}

sq_codec_params_t sq_codec_params_default(void)
{
    sq_codec_params_t p;
    memset(&p, 0, sizeof p);
    p.encoding = SQ_CODEC_AUTO;
    p.bits = 8;
    p.granularity = SQ_CODEC_PER_ROW;
    p.group_size = 0;
    p.scale_dtype = SQ_DTYPE_F32;
    p.rounding = SQ_CODEC_ROUND_NEAREST;
    p.outlier_dtype = SQ_DTYPE_F32;
    p.lossless_dtype = SQ_DTYPE_F32;
    return p;
}

static int sq_is_f32_or_f16(sq_dtype_t dt)
{
    return dt == SQ_DTYPE_F32 || dt == SQ_DTYPE_F16;
}

static int sq_is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

static sq_status_t sq_check_shape(int64_t rows, int64_t cols)
{
    if (rows < 1 || cols < 1 || rows > UINT32_MAX || cols > UINT32_MAX)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "codec: shape [%" PRId64 ", %" PRId64 "]: rows and cols must be in "
                            "[1, 2^32)",
                            rows, cols);
    if ((uint64_t)rows * (uint64_t)cols > SQ_CODEC_MAX_ELEMS)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "codec: shape [%" PRId64 ", %" PRId64 "]: more than 2^40 elements",
                            rows, cols);
    return SQ_OK;
}

/* The quantizer fields, checked whatever p->encoding says (the size
 * functions price quantized encodings for any params). */
static sq_status_t sq_check_quant(const sq_codec_params_t *p, int64_t cols)
{
    if (p->bits != 8 && p->bits != 4 && p->bits != 2)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec params: bits = %d, expected 8, 4 or 2",
                            p->bits);
    if (p->granularity == SQ_CODEC_PER_GROUP) {
        if (!sq_is_pow2(p->group_size) || (uint64_t)cols % p->group_size)
            return sq_error_set(SQ_ERR_INVALID_ARG,
                                "codec params: group_size = %" PRIu32
                                " must be a power of two dividing cols = %" PRId64,
                                p->group_size, cols);
    } else if (p->granularity != SQ_CODEC_PER_ROW) {
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec params: granularity = %d unknown",
                            (int)p->granularity);
    }
    if (!sq_is_f32_or_f16(p->scale_dtype))
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec params: scale_dtype must be F32 or F16");
    if (p->rounding != SQ_CODEC_ROUND_NEAREST && p->rounding != SQ_CODEC_ROUND_STOCHASTIC)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec params: rounding = %d unknown",
                            (int)p->rounding);
    if (p->threshold >= (uint32_t)sq_codec_qmax(p->bits))
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "codec params: threshold = %" PRIu32 " must be below qmax = %d",
                            p->threshold, sq_codec_qmax(p->bits));
    if (p->n_outliers) {
        if (!p->outlier_cols)
            return sq_error_set(SQ_ERR_INVALID_ARG, "codec params: n_outliers > 0 but no list");
        if (!sq_is_f32_or_f16(p->outlier_dtype))
            return sq_error_set(SQ_ERR_INVALID_ARG,
                                "codec params: outlier_dtype must be F32 or F16");
        for (uint32_t i = 0; i < p->n_outliers; i++) {
            if (p->outlier_cols[i] >= (uint64_t)cols)
                return sq_error_set(SQ_ERR_INVALID_ARG,
                                    "codec params: outlier_cols[%" PRIu32 "] = %" PRIu32
                                    " out of range (cols = %" PRId64 ")",
                                    i, p->outlier_cols[i], cols);
            if (i && p->outlier_cols[i] <= p->outlier_cols[i - 1])
                return sq_error_set(
                    SQ_ERR_INVALID_ARG,
                    "codec params: outlier_cols[%" PRIu32 "] not strictly increasing", i);
        }
    }
    return SQ_OK;
}

sq_status_t sq_codec_params_check(const sq_codec_params_t *p, int64_t rows, int64_t cols)
{
    if (!p) return sq_error_set(SQ_ERR_INVALID_ARG, "codec: params is NULL");
    SQ_TRY(sq_check_shape(rows, cols));
    if ((unsigned)p->encoding > SQ_CODEC_AUTO)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec params: encoding = %d unknown",
                            (int)p->encoding);
    if (p->encoding == SQ_CODEC_LOSSLESS) {
        if (!sq_is_f32_or_f16(p->lossless_dtype))
            return sq_error_set(SQ_ERR_INVALID_ARG,
                                "codec params: lossless_dtype must be F32 or F16");
        return SQ_OK;
    }
    return sq_check_quant(p, cols);
}

void sq_codec_header_from_params(const sq_codec_params_t *p, int64_t rows, int64_t cols,
                                 uint64_t nnz, sq_codec_encoding_t enc, sq_codec_header_t *h)
{
    memset(h, 0, sizeof *h);
    h->version = SQ_CODEC_VERSION;
    h->header_size = SQ_CODEC_HEADER_SIZE;
    h->encoding = enc;
    h->src_dtype = SQ_DTYPE_F32;
    h->rows = rows;
    h->cols = cols;
    h->tag = p->tag;
    if (enc == SQ_CODEC_LOSSLESS) {
        h->value_dtype = p->lossless_dtype;
        h->nnz = (uint64_t)rows * (uint64_t)cols;
        return;
    }
    h->bits = p->bits;
    h->granularity = p->granularity;
    h->group_size = p->granularity == SQ_CODEC_PER_GROUP ? p->group_size : (uint32_t)cols;
    h->scale_dtype = p->scale_dtype;
    h->rounding = p->rounding;
    h->threshold = p->threshold;
    h->n_outliers = p->n_outliers;
    h->outlier_dtype = p->n_outliers ? p->outlier_dtype : SQ_DTYPE_F32;
    h->index_bytes = enc == SQ_CODEC_CSR ? (cols <= 65536 ? 2 : 4) : 0;
    h->nnz = nnz;
}

void sq_codec_layout(const sq_codec_header_t *h, sq_codec_layout_t *l)
{
    memset(l, 0, sizeof *l);
    uint64_t rows = (uint64_t)h->rows, cols = (uint64_t)h->cols;
    l->n = rows * cols;
    uint64_t off = SQ_CODEC_HEADER_SIZE;
    if (h->encoding == SQ_CODEC_LOSSLESS) {
        l->off_scales = l->off_outliers = l->off_outlier_vals = l->off_struct = off;
        l->off_indices = l->off_codes = off;
        l->len_codes = l->n * (h->value_dtype == SQ_DTYPE_F16 ? 2u : 4u);
        l->total = off + sq_codec_align8(l->len_codes);
        return;
    }
    l->groups_per_row = cols / h->group_size;
    l->n_scales = rows * l->groups_per_row;
    l->scale_bytes = h->scale_dtype == SQ_DTYPE_F16 ? 2 : 4;
    l->outlier_bytes = h->outlier_dtype == SQ_DTYPE_F16 ? 2 : 4;

    l->off_scales = off;
    l->len_scales = l->n_scales * l->scale_bytes;
    off += sq_codec_align8(l->len_scales);

    l->off_outliers = off;
    l->off_outlier_vals = off + 4u * (uint64_t)h->n_outliers;
    l->len_outliers = 4u * (uint64_t)h->n_outliers + rows * h->n_outliers * l->outlier_bytes;
    off += sq_codec_align8(l->len_outliers);

    l->off_struct = off;
    uint64_t ncodes = l->n;
    if (h->encoding == SQ_CODEC_BITMAP) {
        l->len_struct = (l->n + 7u) / 8u;
        ncodes = h->nnz;
    } else if (h->encoding == SQ_CODEC_CSR) {
        l->off_indices = off + 4u * (rows + 1u);
        l->len_struct = 4u * (rows + 1u) + h->nnz * h->index_bytes;
        ncodes = h->nnz;
    }
    off += sq_codec_align8(l->len_struct);

    l->off_codes = off;
    l->len_codes = (ncodes * (uint64_t)h->bits + 7u) / 8u;
    l->total = off + sq_codec_align8(l->len_codes);
}

static size_t sq_size_of(const sq_codec_params_t *p, int64_t rows, int64_t cols, uint64_t nnz,
                         sq_codec_encoding_t enc)
{
    if (!p) {
        sq_error_set(SQ_ERR_INVALID_ARG, "codec: params is NULL");
        return 0;
    }
    if (sq_check_shape(rows, cols) != SQ_OK) return 0;
    if (enc == SQ_CODEC_LOSSLESS) {
        if (!sq_is_f32_or_f16(p->lossless_dtype)) {
            sq_error_set(SQ_ERR_INVALID_ARG, "codec params: lossless_dtype must be F32 or F16");
            return 0;
        }
    } else if (sq_check_quant(p, cols) != SQ_OK) {
        return 0;
    }
    if (enc == SQ_CODEC_CSR && nnz > UINT32_MAX) return SIZE_MAX;
    if (nnz > (uint64_t)rows * (uint64_t)cols) nnz = (uint64_t)rows * (uint64_t)cols;
    sq_codec_header_t h;
    sq_codec_layout_t l;
    sq_codec_header_from_params(p, rows, cols, nnz, enc, &h);
    sq_codec_layout(&h, &l);
    return (size_t)l.total;
}

size_t sq_codec_size_dense(const sq_codec_params_t *p, int64_t rows, int64_t cols, uint64_t nnz)
{
    return sq_size_of(p, rows, cols, nnz, SQ_CODEC_DENSE);
}

size_t sq_codec_size_bitmap(const sq_codec_params_t *p, int64_t rows, int64_t cols, uint64_t nnz)
{
    return sq_size_of(p, rows, cols, nnz, SQ_CODEC_BITMAP);
}

size_t sq_codec_size_csr(const sq_codec_params_t *p, int64_t rows, int64_t cols, uint64_t nnz)
{
    return sq_size_of(p, rows, cols, nnz, SQ_CODEC_CSR);
}

size_t sq_codec_size_lossless(const sq_codec_params_t *p, int64_t rows, int64_t cols)
{
    return sq_size_of(p, rows, cols, 0, SQ_CODEC_LOSSLESS);
}

size_t sq_codec_max_size(const sq_codec_params_t *p, int64_t rows, int64_t cols)
{
    if (sq_codec_params_check(p, rows, cols) != SQ_OK) return 0;
    /* Outlier cells always hold code 0, so they bound nnz from above. */
    uint64_t nmax = (uint64_t)rows * (uint64_t)cols - (uint64_t)rows * p->n_outliers;
    switch (p->encoding) {
    case SQ_CODEC_LOSSLESS:
        return sq_codec_size_lossless(p, rows, cols);
    case SQ_CODEC_BITMAP:
        return sq_codec_size_bitmap(p, rows, cols, nmax);
    case SQ_CODEC_CSR:
        return sq_codec_size_csr(p, rows, cols, nmax > UINT32_MAX ? UINT32_MAX : nmax);
    default:
        return sq_codec_size_dense(p, rows, cols, 0);
    }
}

sq_codec_encoding_t sq_codec_pick(size_t dense, size_t bitmap, size_t csr)
{
    if (dense <= bitmap && dense <= csr) return SQ_CODEC_DENSE;
    return bitmap <= csr ? SQ_CODEC_BITMAP : SQ_CODEC_CSR;
}

void sq_codec_stats_fill(const sq_codec_params_t *p, int64_t rows, int64_t cols,
                         const sq_codec_header_t *h, const sq_codec_layout_t *l,
                         sq_codec_stats_t *st)
{
    memset(st, 0, sizeof *st);
    st->encoding = h->encoding;
    st->nnz = h->nnz;
    st->density = (double)h->nnz / ((double)rows * (double)cols);
    st->bytes_header = SQ_CODEC_HEADER_SIZE;
    st->bytes_scales = (size_t)(l->off_outliers - l->off_scales);
    st->bytes_outliers = (size_t)(l->off_struct - l->off_outliers);
    st->bytes_structure = (size_t)(l->off_codes - l->off_struct);
    st->bytes_codes = (size_t)(l->total - l->off_codes);
    st->bytes_total = (size_t)l->total;
    if (h->encoding != SQ_CODEC_LOSSLESS) {
        st->size_dense = sq_codec_size_dense(p, rows, cols, h->nnz);
        st->size_bitmap = sq_codec_size_bitmap(p, rows, cols, h->nnz);
        st->size_csr = sq_codec_size_csr(p, rows, cols, h->nnz);
    }
}

void sq_codec_header_store(const sq_codec_header_t *h, uint8_t *out)
{
    memset(out, 0, SQ_CODEC_HEADER_SIZE);
    memcpy(out + SQ_HDR_MAGIC, SQ_CODEC_MAGIC, 4);
    sq_st16(out + SQ_HDR_VERSION, h->version);
    sq_st16(out + SQ_HDR_HEADER_SIZE, h->header_size);
    sq_st32(out + SQ_HDR_CHECKSUM, h->checksum);
    out[SQ_HDR_ENCODING] = (uint8_t)h->encoding;
    out[SQ_HDR_SRC_DTYPE] = (uint8_t)h->src_dtype;
    out[SQ_HDR_BITS] = (uint8_t)h->bits;
    out[SQ_HDR_GRANULARITY] = (uint8_t)h->granularity;
    out[SQ_HDR_SCALE_DTYPE] = (uint8_t)h->scale_dtype;
    out[SQ_HDR_ROUNDING] = (uint8_t)h->rounding;
    out[SQ_HDR_THRESHOLD] = (uint8_t)h->threshold;
    out[SQ_HDR_OUTLIER_DTYPE] = (uint8_t)h->outlier_dtype;
    out[SQ_HDR_INDEX_BYTES] = (uint8_t)h->index_bytes;
    out[SQ_HDR_VALUE_DTYPE] = (uint8_t)h->value_dtype;
    sq_st32(out + SQ_HDR_ROWS, (uint32_t)h->rows);
    sq_st32(out + SQ_HDR_COLS, (uint32_t)h->cols);
    sq_st32(out + SQ_HDR_GROUP_SIZE, h->group_size);
    sq_st32(out + SQ_HDR_N_OUTLIERS, h->n_outliers);
    sq_st64(out + SQ_HDR_NNZ, h->nnz);
    sq_st64(out + SQ_HDR_PAYLOAD_LEN, h->payload_len);
    sq_st64(out + SQ_HDR_TAG, h->tag);
}

#define SQ_BAD_HDR(...) sq_error_set(SQ_ERR_FORMAT, "codec message: header: " __VA_ARGS__)

/* Field checks of a quantized header; the order is the one FORMAT.md lists. */
static sq_status_t sq_check_quant_header(const uint8_t *b, sq_codec_header_t *h)
{
    int bits = b[SQ_HDR_BITS];
    if (bits != 8 && bits != 4 && bits != 2)
        return SQ_BAD_HDR("bits = %d, expected 8, 4 or 2", bits);
    h->bits = bits;
    if (b[SQ_HDR_GRANULARITY] > SQ_CODEC_PER_GROUP)
        return SQ_BAD_HDR("granularity = %d unknown", b[SQ_HDR_GRANULARITY]);
    h->granularity = (sq_codec_granularity_t)b[SQ_HDR_GRANULARITY];
    uint64_t g = h->group_size, cols = (uint64_t)h->cols;
    if (h->granularity == SQ_CODEC_PER_ROW ? g != cols : (!sq_is_pow2(g) || cols % g))
        return SQ_BAD_HDR("group_size = %" PRIu64 " does not fit cols = %" PRIu64, g, cols);
    if (!sq_is_f32_or_f16((sq_dtype_t)b[SQ_HDR_SCALE_DTYPE]))
        return SQ_BAD_HDR("scale dtype = %d unknown", b[SQ_HDR_SCALE_DTYPE]);
    h->scale_dtype = (sq_dtype_t)b[SQ_HDR_SCALE_DTYPE];
    if (b[SQ_HDR_ROUNDING] > SQ_CODEC_ROUND_STOCHASTIC)
        return SQ_BAD_HDR("rounding = %d unknown", b[SQ_HDR_ROUNDING]);
    h->rounding = (sq_codec_rounding_t)b[SQ_HDR_ROUNDING];
    h->threshold = b[SQ_HDR_THRESHOLD];
    if (h->threshold >= (uint32_t)sq_codec_qmax(bits))
        return SQ_BAD_HDR("threshold = %" PRIu32 " not below qmax = %d", h->threshold,
                          sq_codec_qmax(bits));
    if (!sq_is_f32_or_f16((sq_dtype_t)b[SQ_HDR_OUTLIER_DTYPE]) ||
        (!h->n_outliers && b[SQ_HDR_OUTLIER_DTYPE] != SQ_DTYPE_F32))
        return SQ_BAD_HDR("outlier dtype = %d invalid", b[SQ_HDR_OUTLIER_DTYPE]);
    h->outlier_dtype = (sq_dtype_t)b[SQ_HDR_OUTLIER_DTYPE];
    if (h->n_outliers > cols)
        return SQ_BAD_HDR("%" PRIu32 " outlier columns but cols = %" PRIu64, h->n_outliers, cols);
    uint32_t want_idx = h->encoding == SQ_CODEC_CSR ? (cols <= 65536 ? 2 : 4) : 0;
    if (b[SQ_HDR_INDEX_BYTES] != want_idx)
        return SQ_BAD_HDR("index bytes = %d, expected %" PRIu32, b[SQ_HDR_INDEX_BYTES], want_idx);
    h->index_bytes = want_idx;
    if (b[SQ_HDR_VALUE_DTYPE] != 0) return SQ_BAD_HDR("value dtype set in a quantized message");
    uint64_t nmax = (uint64_t)h->rows * (cols - h->n_outliers);
    if (h->nnz > nmax)
        return SQ_BAD_HDR("nnz = %" PRIu64 " exceeds the %" PRIu64 " non-outlier cells", h->nnz,
                          nmax);
    if (h->encoding == SQ_CODEC_CSR && h->nnz > UINT32_MAX)
        return SQ_BAD_HDR("CSR nnz = %" PRIu64 " does not fit the 32-bit row pointers", h->nnz);
    return SQ_OK;
}

static sq_status_t sq_check_lossless_header(const uint8_t *b, sq_codec_header_t *h)
{
    for (int off = SQ_HDR_BITS; off <= SQ_HDR_INDEX_BYTES; off++)
        if (b[off]) return SQ_BAD_HDR("byte %d must be 0 in a lossless message", off);
    if (h->group_size || h->n_outliers)
        return SQ_BAD_HDR("group size / outliers set in a lossless message");
    if (!sq_is_f32_or_f16((sq_dtype_t)b[SQ_HDR_VALUE_DTYPE]))
        return SQ_BAD_HDR("value dtype = %d unknown", b[SQ_HDR_VALUE_DTYPE]);
    h->value_dtype = (sq_dtype_t)b[SQ_HDR_VALUE_DTYPE];
    if (h->nnz != (uint64_t)h->rows * (uint64_t)h->cols)
        return SQ_BAD_HDR("lossless nnz = %" PRIu64 " != rows * cols", h->nnz);
    return SQ_OK;
}

sq_status_t sq_codec_peek(const void *buf, size_t len, sq_codec_header_t *hdr)
{
    if (!buf || !hdr) return sq_error_set(SQ_ERR_INVALID_ARG, "codec peek: NULL argument");
    const uint8_t *b = buf;
    if (len < 4 || memcmp(b, SQ_CODEC_MAGIC, 4) != 0)
        return sq_error_set(SQ_ERR_FORMAT, "codec message: bad magic (not an SPQA message)");
    if (len < 6) return SQ_BAD_HDR("truncated at %zu bytes", len);
    sq_codec_header_t h;
    memset(&h, 0, sizeof h);
    h.version = sq_ld16(b + SQ_HDR_VERSION);
    if (h.version != SQ_CODEC_VERSION)
        return sq_error_set(SQ_ERR_VERSION,
                            "codec message: version %u not understood (this build reads %d)",
                            h.version, SQ_CODEC_VERSION);
    if (len < SQ_CODEC_HEADER_SIZE) return SQ_BAD_HDR("truncated at %zu bytes", len);
    h.header_size = sq_ld16(b + SQ_HDR_HEADER_SIZE);
    if (h.header_size != SQ_CODEC_HEADER_SIZE)
        return SQ_BAD_HDR("header size %u, version 1 has %d", h.header_size, SQ_CODEC_HEADER_SIZE);
    h.checksum = sq_ld32(b + SQ_HDR_CHECKSUM);
    if (b[SQ_HDR_ENCODING] > SQ_CODEC_LOSSLESS)
        return SQ_BAD_HDR("encoding = %d unknown", b[SQ_HDR_ENCODING]);
    h.encoding = (sq_codec_encoding_t)b[SQ_HDR_ENCODING];
    if (b[SQ_HDR_SRC_DTYPE] != SQ_DTYPE_F32)
        return SQ_BAD_HDR("source dtype = %d, only fp32 (0) exists", b[SQ_HDR_SRC_DTYPE]);
    h.src_dtype = SQ_DTYPE_F32;
    if (sq_ld16(b + SQ_HDR_RESERVED)) return SQ_BAD_HDR("reserved bytes 22-23 not zero");
    h.rows = sq_ld32(b + SQ_HDR_ROWS);
    h.cols = sq_ld32(b + SQ_HDR_COLS);
    if (h.rows < 1 || h.cols < 1 || (uint64_t)h.rows * (uint64_t)h.cols > SQ_CODEC_MAX_ELEMS)
        return SQ_BAD_HDR("shape [%" PRId64 ", %" PRId64 "] empty or above 2^40 elements", h.rows,
                          h.cols);
    h.group_size = sq_ld32(b + SQ_HDR_GROUP_SIZE);
    h.n_outliers = sq_ld32(b + SQ_HDR_N_OUTLIERS);
    h.nnz = sq_ld64(b + SQ_HDR_NNZ);
    h.payload_len = sq_ld64(b + SQ_HDR_PAYLOAD_LEN);
    h.tag = sq_ld64(b + SQ_HDR_TAG);
    if (h.encoding == SQ_CODEC_LOSSLESS)
        SQ_TRY(sq_check_lossless_header(b, &h));
    else
        SQ_TRY(sq_check_quant_header(b, &h));

    sq_codec_layout_t l;
    sq_codec_layout(&h, &l);
    if (h.payload_len != l.total - SQ_CODEC_HEADER_SIZE)
        return SQ_BAD_HDR("payload length %" PRIu64 " but the fields imply %" PRIu64, h.payload_len,
                          l.total - SQ_CODEC_HEADER_SIZE);
    if (l.total > len)
        return sq_error_set(SQ_ERR_FORMAT,
                            "codec message: truncated: %" PRIu64 " bytes announced, %zu received",
                            l.total, len);
    h.total_size = (size_t)l.total;
    *hdr = h;
    return SQ_OK;
}

sq_status_t sq_codec_reseal(void *buf, size_t len)
{
    if (!buf || len < SQ_CODEC_HEADER_SIZE)
        return sq_error_set(SQ_ERR_FORMAT, "codec reseal: no header in %zu bytes", len);
    const uint8_t *b = buf;
    uint64_t total = SQ_CODEC_HEADER_SIZE + sq_ld64(b + SQ_HDR_PAYLOAD_LEN);
    /* Only the framing has to hold: a reseal may follow a deliberate
     * corruption of any other field. */
    if (total < SQ_CODEC_HEADER_SIZE || total > len)
        return sq_error_set(SQ_ERR_FORMAT, "codec reseal: payload length does not fit %zu bytes",
                            len);
    sq_codec_seal(buf, total);
    return SQ_OK;
}

int sq_codec_scale(float amax, int qmax, sq_dtype_t sdt, float *s, uint32_t *wire)
{
    if (!(amax > 0.0f)) {
        *s = 0.0f;
        *wire = 0;
        return 0;
    }
    float s32 = amax / (float)qmax;
    /* s * qmax is exact in double (24 + 7 bits): bump s until it covers
     * amax, so |x / s| <= qmax for every element and nothing clamps. */
    if (sdt == SQ_DTYPE_F16) {
        uint16_t h = sq_f32_to_f16(s32);
        if (h >= 0x7c00u) return -1;
        float v = sq_f16_to_f32(h);
        while ((double)v * qmax < (double)amax) {
            if (++h >= 0x7c00u) return -1;
            v = sq_f16_to_f32(h);
        }
        *s = v;
        *wire = h;
        return 0;
    }
    while ((double)s32 * qmax < (double)amax)
        s32 = nextafterf(s32, INFINITY);
    /* Within ~2^-17 of FLT_MAX no fp32 scale both covers amax and keeps
     * q * s finite: keep x^ finite, the largest codes saturate at +-qmax. */
    while (isinf(s32 * (float)qmax))
        s32 = nextafterf(s32, 0.0f);
    *s = s32;
    memcpy(wire, &s32, 4);
    return 0;
}

int sq_codec_find_nonfinite(const float *x, int64_t rows, int64_t cols, int64_t ld, int64_t *r,
                            int64_t *c)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            if (!isfinite(x[i * ld + j])) {
                *r = i;
                *c = j;
                return 1;
            }
    return 0;
}

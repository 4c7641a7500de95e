/* Reference twin of the codec: one element at a time, one bit at a time,
 * every rule of codec.h / FORMAT.md spelled out plainly. It is the
 * definition the fast path (encode.c, decode.c) must match byte for byte;
 * speed does not matter here. */
#include "codec_internal.h"

#include <inttypes.h>
#include <math.h>

#include "sparq/philox.h"

static void ref_put_bits(uint8_t *base, uint64_t bitpos, uint32_t v, int nbits)
{
    for (int k = 0; k < nbits; k++, bitpos++)
        if ((v >> k) & 1u) base[bitpos >> 3] |= (uint8_t)(1u << (bitpos & 7));
}

static uint32_t ref_get_bits(const uint8_t *base, uint64_t bitpos, int nbits)
{
    uint32_t v = 0;
    for (int k = 0; k < nbits; k++, bitpos++)
        v |= (uint32_t)((base[bitpos >> 3] >> (bitpos & 7)) & 1u) << k;
    return v;
}

static int ref_sign_extend(uint32_t v, int bits)
{
    int q = (int)v;
    if (q >= (1 << (bits - 1))) q -= 1 << bits;
    return q;
}

static int ref_is_outlier(const uint32_t *cols, uint32_t n, uint64_t c)
{
    for (uint32_t i = 0; i < n; i++)
        if (cols[i] == c) return 1;
    return 0;
}

static float ref_uniform(const sq_codec_params_t *p, uint64_t i)
{
    uint32_t b[4];
    sq_philox_block(p->seed, p->stream, i >> 2, b);
    return sq_philox_uniform(b[i & 3]);
}

/* The code of element x (linear index i) under scale s. */
static int ref_quantize(const sq_codec_params_t *p, float x, float s, uint64_t i)
{
    if (s == 0.0f) return 0;
    int qmax = sq_codec_qmax(p->bits);
    float v = x / s;
    /* only a scale capped near FLT_MAX (sq_codec_scale) lets |v| pass qmax */
    v = v > (float)qmax ? (float)qmax : v;
    v = v < -(float)qmax ? -(float)qmax : v;
    int q;
    if (p->rounding == SQ_CODEC_ROUND_STOCHASTIC) {
        float fl = floorf(v);
        q = (int)fl + (ref_uniform(p, i) < v - fl ? 1 : 0);
    } else {
        q = (int)rintf(v);
    }
    if (q <= (int)p->threshold && q >= -(int)p->threshold) q = 0;
    return q;
}

/* Scale of group g of row r: 0 and *wire, or SQ_ERR_RANGE on fp16 overflow. */
static sq_status_t ref_scale(const sq_codec_params_t *p, const float *xr, int64_t r, uint64_t g,
                             uint64_t gs, float *s, uint32_t *wire)
{
    float amax = 0.0f;
    for (uint64_t c = g * gs; c < (g + 1) * gs; c++)
        if (!ref_is_outlier(p->outlier_cols, p->n_outliers, c) && fabsf(xr[c]) > amax)
            amax = fabsf(xr[c]);
    if (sq_codec_scale(amax, sq_codec_qmax(p->bits), p->scale_dtype, s, wire) != 0)
        return sq_error_set(SQ_ERR_RANGE,
                            "codec encode: row %" PRId64 " group %" PRIu64
                            ": absmax %g overflows an fp16 scale (use fp32 scales or outliers)",
                            r, g, (double)amax);
    return SQ_OK;
}

static sq_status_t ref_encode_lossless(const sq_codec_params_t *p, const float *x, int64_t rows,
                                       int64_t cols, int64_t ld, uint8_t *buf, size_t cap,
                                       size_t *written, sq_codec_stats_t *stats)
{
    sq_codec_header_t h;
    sq_codec_layout_t l;
    sq_codec_header_from_params(p, rows, cols, 0, SQ_CODEC_LOSSLESS, &h);
    sq_codec_layout(&h, &l);
    if (l.total > cap)
        return sq_error_set(SQ_ERR_RANGE,
                            "codec encode: buffer of %zu bytes, message needs %" PRIu64, cap,
                            l.total);
    memset(buf, 0, (size_t)l.total);
    uint8_t *out = buf + l.off_codes;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            float v = x[r * ld + c];
            if (h.value_dtype == SQ_DTYPE_F16) {
                sq_st16(out, sq_f32_to_f16(v));
                out += 2;
            } else {
                memcpy(out, &v, 4);
                out += 4;
            }
        }
    h.payload_len = l.total - SQ_CODEC_HEADER_SIZE;
    sq_codec_header_store(&h, buf);
    sq_st32(buf + SQ_HDR_CHECKSUM, sq_codec_message_crc(buf, l.total));
    if (stats) sq_codec_stats_fill(p, rows, cols, &h, &l, stats);
    *written = (size_t)l.total;
    return SQ_OK;
}

sq_status_t sq_codec_encode_ref(const sq_codec_params_t *p, const float *x, int64_t rows,
                                int64_t cols, int64_t ld, void *bufv, size_t cap, size_t *written,
                                sq_codec_stats_t *stats)
{
    SQ_TRY(sq_codec_params_check(p, rows, cols));
    if (!x || !bufv || !written)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec encode: NULL x, buf or written");
    if (ld < cols)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec encode: ld = %" PRId64 " < cols = %" PRId64,
                            ld, cols);
    uint8_t *buf = bufv;
    if (p->encoding == SQ_CODEC_LOSSLESS)
        return ref_encode_lossless(p, x, rows, cols, ld, buf, cap, written, stats);

    int64_t br, bc;
    if (sq_codec_find_nonfinite(x, rows, cols, ld, &br, &bc))
        return sq_error_set(SQ_ERR_RANGE,
                            "codec encode: x[%" PRId64 "][%" PRId64 "] = %g: quantized encodings "
                            "need finite input (row %" PRId64 ", column %" PRId64 ")",
                            br, bc, (double)x[br * ld + bc], br, bc);

    uint64_t gs = p->granularity == SQ_CODEC_PER_GROUP ? p->group_size : (uint64_t)cols;
    uint64_t gpr = (uint64_t)cols / gs;

    /* Pass 1: scales are checked and nnz counted. */
    uint64_t nnz = 0;
    for (int64_t r = 0; r < rows; r++)
        for (uint64_t g = 0; g < gpr; g++) {
            float s;
            uint32_t wire;
            const float *xr = x + r * ld;
            SQ_TRY(ref_scale(p, xr, r, g, gs, &s, &wire));
            for (uint64_t c = g * gs; c < (g + 1) * gs; c++)
                if (!ref_is_outlier(p->outlier_cols, p->n_outliers, c) &&
                    ref_quantize(p, xr[c], s, (uint64_t)r * cols + c) != 0)
                    nnz++;
        }

    sq_codec_encoding_t enc = p->encoding;
    size_t sd = sq_codec_size_dense(p, rows, cols, nnz);
    size_t sb = sq_codec_size_bitmap(p, rows, cols, nnz);
    size_t sc = sq_codec_size_csr(p, rows, cols, nnz);
    if (enc == SQ_CODEC_AUTO) enc = sq_codec_pick(sd, sb, sc);
    if (enc == SQ_CODEC_CSR && nnz > UINT32_MAX)
        return sq_error_set(SQ_ERR_RANGE, "codec encode: %" PRIu64 " non-zeros overflow CSR", nnz);

    sq_codec_header_t h;
    sq_codec_layout_t l;
    sq_codec_header_from_params(p, rows, cols, nnz, enc, &h);
    sq_codec_layout(&h, &l);
    if (l.total > cap)
        return sq_error_set(SQ_ERR_RANGE,
                            "codec encode: buffer of %zu bytes, message needs %" PRIu64, cap,
                            l.total);
    memset(buf, 0, (size_t)l.total);

    for (uint32_t j = 0; j < p->n_outliers; j++)
        sq_st32(buf + l.off_outliers + 4u * j, p->outlier_cols[j]);

    /* Pass 2: write every section. */
    uint64_t k = 0; /* non-zeros written so far */
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        if (enc == SQ_CODEC_CSR) sq_st32(buf + l.off_struct + 4u * (uint64_t)r, (uint32_t)k);
        for (uint64_t g = 0; g < gpr; g++) {
            float s;
            uint32_t wire;
            SQ_TRY(ref_scale(p, xr, r, g, gs, &s, &wire));
            uint64_t si = (uint64_t)r * gpr + g;
            if (p->scale_dtype == SQ_DTYPE_F16)
                sq_st16(buf + l.off_scales + 2u * si, (uint16_t)wire);
            else
                sq_st32(buf + l.off_scales + 4u * si, wire);
            for (uint64_t c = g * gs; c < (g + 1) * gs; c++) {
                uint64_t i = (uint64_t)r * cols + c;
                int q = ref_is_outlier(p->outlier_cols, p->n_outliers, c)
                            ? 0
                            : ref_quantize(p, xr[c], s, i);
                uint32_t bitsv = (uint32_t)q & ((1u << p->bits) - 1u);
                if (enc == SQ_CODEC_DENSE) {
                    ref_put_bits(buf + l.off_codes, i * p->bits, bitsv, p->bits);
                } else if (q != 0) {
                    if (enc == SQ_CODEC_BITMAP)
                        ref_put_bits(buf + l.off_struct, i, 1, 1);
                    else if (h.index_bytes == 2)
                        sq_st16(buf + l.off_indices + 2u * k, (uint16_t)c);
                    else
                        sq_st32(buf + l.off_indices + 4u * k, (uint32_t)c);
                    ref_put_bits(buf + l.off_codes, k * p->bits, bitsv, p->bits);
                    k++;
                }
            }
        }
        for (uint32_t j = 0; j < p->n_outliers; j++) {
            float v = xr[p->outlier_cols[j]];
            uint64_t oi = (uint64_t)r * p->n_outliers + j;
            if (p->outlier_dtype == SQ_DTYPE_F16) {
                uint16_t hv = sq_f32_to_f16(v);
                if ((hv & 0x7fffu) >= 0x7c00u)
                    return sq_error_set(SQ_ERR_RANGE,
                                        "codec encode: outlier x[%" PRId64 "][%" PRIu32
                                        "] = %g overflows fp16",
                                        r, p->outlier_cols[j], (double)v);
                sq_st16(buf + l.off_outlier_vals + 2u * oi, hv);
            } else {
                memcpy(buf + l.off_outlier_vals + 4u * oi, &v, 4);
            }
        }
    }
    if (enc == SQ_CODEC_CSR) sq_st32(buf + l.off_struct + 4u * (uint64_t)rows, (uint32_t)k);

    h.payload_len = l.total - SQ_CODEC_HEADER_SIZE;
    sq_codec_header_store(&h, buf);
    sq_st32(buf + SQ_HDR_CHECKSUM, sq_codec_message_crc(buf, l.total));
    if (stats) sq_codec_stats_fill(p, rows, cols, &h, &l, stats);
    *written = (size_t)l.total;
    return SQ_OK;
}

/* ---- decode ---- */

#define REF_FORMAT(...) sq_error_set(SQ_ERR_FORMAT, "codec message: " __VA_ARGS__)
#define REF_RANGE(...) sq_error_set(SQ_ERR_RANGE, "codec message: " __VA_ARGS__)

static int ref_zero_bytes(const uint8_t *p, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++)
        if (p[i]) return 0;
    return 1;
}

/* Bits [from, to) of a section all zero. */
static int ref_zero_bits(const uint8_t *p, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++)
        if ((p[i >> 3] >> (i & 7)) & 1u) return 0;
    return 1;
}

/* Is this non-zero code allowed? 0 ok, else the status. */
static sq_status_t ref_check_code(const sq_codec_header_t *h, int q, int64_t r, uint64_t c)
{
    int qmax = sq_codec_qmax(h->bits);
    if (q < -qmax || q > qmax)
        return REF_RANGE("code %d at [%" PRId64 "][%" PRIu64 "] outside +-%d", q, r, c, qmax);
    if (q != 0 && q <= (int)h->threshold && q >= -(int)h->threshold)
        return REF_RANGE("code %d at [%" PRId64 "][%" PRIu64 "] under the threshold %" PRIu32, q, r,
                         c, h->threshold);
    return SQ_OK;
}

sq_status_t sq_codec_decode_ref(const void *bufv, size_t len, float *y, int64_t rows, int64_t cols,
                                int64_t ld)
{
    if (!bufv || !y) return sq_error_set(SQ_ERR_INVALID_ARG, "codec decode: NULL buf or y");
    sq_codec_header_t h;
    SQ_TRY(sq_codec_peek(bufv, len, &h));
    if (h.rows != rows || h.cols != cols)
        return REF_RANGE("shape [%" PRId64 ", %" PRId64 "] but the caller's buffer is [%" PRId64
                         ", %" PRId64 "]",
                         h.rows, h.cols, rows, cols);
    if (ld < cols)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec decode: ld = %" PRId64 " < cols", ld);
    const uint8_t *b = bufv;
    uint8_t head[SQ_CODEC_HEADER_SIZE];
    memcpy(head, b, sizeof head);
    memset(head + SQ_HDR_CHECKSUM, 0, 4);
    uint32_t crc = sq_codec_crc32c_ref(0, head, sizeof head);
    crc = sq_codec_crc32c_ref(crc, b + SQ_CODEC_HEADER_SIZE, h.payload_len);
    if (crc != h.checksum)
        return sq_error_set(SQ_ERR_CHECKSUM,
                            "codec message: checksum 0x%08" PRIx32
                            " but the bytes give 0x%08" PRIx32,
                            h.checksum, crc);
    sq_codec_layout_t l;
    sq_codec_layout(&h, &l);
    if (!ref_zero_bytes(b, l.off_codes + l.len_codes, l.total))
        return REF_FORMAT("non-zero padding after the codes");

    if (h.encoding == SQ_CODEC_LOSSLESS) {
        const uint8_t *in = b + l.off_codes;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) {
                if (h.value_dtype == SQ_DTYPE_F16) {
                    y[r * ld + c] = sq_f16_to_f32(sq_ld16(in));
                    in += 2;
                } else {
                    memcpy(&y[r * ld + c], in, 4);
                    in += 4;
                }
            }
        return SQ_OK;
    }

    /* Scales. */
    for (uint64_t i = 0; i < l.n_scales; i++) {
        uint32_t w = h.scale_dtype == SQ_DTYPE_F16 ? sq_ld16(b + l.off_scales + 2 * i)
                                                   : sq_ld32(b + l.off_scales + 4 * i);
        float s = sq_codec_scale_value(w, h.scale_dtype);
        if (!isfinite(s) || signbit(s))
            return REF_RANGE("scale %" PRIu64 " = %g is not finite and >= 0", i, (double)s);
        if (isinf(s * (float)sq_codec_qmax(h.bits)))
            return REF_RANGE("scale %" PRIu64 " = %g: qmax * scale overflows fp32", i, (double)s);
    }
    if (!ref_zero_bytes(b, l.off_scales + l.len_scales, l.off_outliers))
        return REF_FORMAT("non-zero padding after the scales");

    /* Outliers. */
    const uint8_t *oc = b + l.off_outliers;
    for (uint32_t j = 0; j < h.n_outliers; j++) {
        uint32_t c = sq_ld32(oc + 4u * j);
        if (c >= (uint64_t)cols)
            return REF_RANGE("outlier column %" PRIu32 " out of range (cols = %" PRId64 ")", c,
                             cols);
        if (j && c <= sq_ld32(oc + 4u * (j - 1)))
            return REF_FORMAT("outlier columns not strictly increasing at entry %" PRIu32, j);
    }
    for (uint64_t i = 0; i < (uint64_t)rows * h.n_outliers; i++) {
        float v = h.outlier_dtype == SQ_DTYPE_F16
                      ? sq_f16_to_f32(sq_ld16(b + l.off_outlier_vals + 2 * i))
                      : sq_codec_scale_value(sq_ld32(b + l.off_outlier_vals + 4 * i), SQ_DTYPE_F32);
        if (!isfinite(v)) return REF_RANGE("outlier value %" PRIu64 " is not finite", i);
    }
    if (!ref_zero_bytes(b, l.off_outliers + l.len_outliers, l.off_struct))
        return REF_FORMAT("non-zero padding after the outliers");
    if (!ref_zero_bytes(b, l.off_struct + l.len_struct, l.off_codes))
        return REF_FORMAT("non-zero padding after the structure");

    const uint8_t *codes = b + l.off_codes;
    const int bits = h.bits;
    uint64_t gs = h.group_size, gpr = l.groups_per_row;
    uint64_t k = 0; /* non-zero codes consumed */
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * ld;
        for (int64_t c = 0; c < cols; c++)
            yr[c] = 0.0f;
        uint64_t kend = 0;
        if (h.encoding == SQ_CODEC_CSR) {
            uint32_t p0 = sq_ld32(b + l.off_struct + 4u * (uint64_t)r);
            uint32_t p1 = sq_ld32(b + l.off_struct + 4u * (uint64_t)(r + 1));
            if (r == 0 && p0 != 0) return REF_FORMAT("row pointer 0 = %" PRIu32 ", not 0", p0);
            if (p1 < p0 || p1 > h.nnz)
                return REF_FORMAT("row pointer %" PRId64 " = %" PRIu32 " not monotone within nnz",
                                  r + 1, p1);
            kend = p1;
        }
        for (int64_t c = 0; c < cols; c++) {
            int q = 0;
            int outl = 0;
            for (uint32_t j = 0; j < h.n_outliers; j++)
                if (sq_ld32(oc + 4u * j) == (uint64_t)c) outl = 1;
            if (h.encoding == SQ_CODEC_DENSE) {
                q = ref_sign_extend(ref_get_bits(codes, ((uint64_t)r * cols + c) * bits, bits),
                                    bits);
                if (q != 0) k++;
            } else if (h.encoding == SQ_CODEC_BITMAP) {
                uint64_t i = (uint64_t)r * cols + c;
                if ((b[l.off_struct + (i >> 3)] >> (i & 7)) & 1u) {
                    if (k >= h.nnz)
                        return REF_FORMAT("bitmap has more than nnz = %" PRIu64 " bits set", h.nnz);
                    q = ref_sign_extend(ref_get_bits(codes, k * bits, bits), bits);
                    if (q == 0) return REF_RANGE("zero code %" PRIu64 " in a sparse list", k);
                    k++;
                }
            } else if (k < kend) {
                uint64_t ci = h.index_bytes == 2 ? sq_ld16(b + l.off_indices + 2 * k)
                                                 : sq_ld32(b + l.off_indices + 4 * k);
                if (ci >= (uint64_t)cols)
                    return REF_RANGE("column index %" PRIu64 " out of range in row %" PRId64, ci,
                                     r);
                if (ci < (uint64_t)c)
                    return REF_FORMAT("column indices not strictly increasing in row %" PRId64, r);
                if (ci == (uint64_t)c) {
                    q = ref_sign_extend(ref_get_bits(codes, k * bits, bits), bits);
                    if (q == 0) return REF_RANGE("zero code %" PRIu64 " in a sparse list", k);
                    k++;
                }
            }
            SQ_TRY(ref_check_code(&h, q, r, (uint64_t)c));
            if (q != 0 && outl)
                return REF_FORMAT("non-zero code at outlier column %" PRId64 " of row %" PRId64, c,
                                  r);
            if (q != 0) {
                uint64_t si = (uint64_t)r * gpr + (uint64_t)c / gs;
                uint32_t w = h.scale_dtype == SQ_DTYPE_F16 ? sq_ld16(b + l.off_scales + 2 * si)
                                                           : sq_ld32(b + l.off_scales + 4 * si);
                yr[c] = (float)q * sq_codec_scale_value(w, h.scale_dtype);
            }
        }
        if (h.encoding == SQ_CODEC_CSR && k != kend)
            return REF_FORMAT("column indices not strictly increasing in row %" PRId64, r);
        for (uint32_t j = 0; j < h.n_outliers; j++) {
            uint64_t oi = (uint64_t)r * h.n_outliers + j;
            yr[sq_ld32(oc + 4u * j)] =
                h.outlier_dtype == SQ_DTYPE_F16
                    ? sq_f16_to_f32(sq_ld16(b + l.off_outlier_vals + 2 * oi))
                    : sq_codec_scale_value(sq_ld32(b + l.off_outlier_vals + 4 * oi), SQ_DTYPE_F32);
        }
    }
    if (k != h.nnz)
        return REF_FORMAT("%" PRIu64 " non-zero codes found, header says nnz = %" PRIu64, k, h.nnz);
    if (h.encoding == SQ_CODEC_CSR && sq_ld32(b + l.off_struct + 4u * (uint64_t)rows) != h.nnz)
        return REF_FORMAT("last row pointer != nnz");
    if (h.encoding == SQ_CODEC_BITMAP && !ref_zero_bits(b + l.off_struct, l.n, l.len_struct * 8))
        return REF_FORMAT("bitmap padding bits set");
    uint64_t ncodes = h.encoding == SQ_CODEC_DENSE ? l.n : h.nnz;
    if (!ref_zero_bits(codes, ncodes * bits, l.len_codes * 8))
        return REF_FORMAT("padding bits after the last code set");
    return SQ_OK;
}

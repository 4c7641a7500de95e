/* Fast decoder. Order of work: header (sq_codec_peek), caller shape,
 * checksum over the whole message, then the sections in wire order; codes
 * are validated chunk by chunk just before they are expanded into y, so the
 * payload is read twice in all (checksum, decode). Every read is inside a
 * section whose bounds follow from a validated header and total <= len;
 * every write to y is at a column checked < cols. The status of each check
 * is the one sq_codec_decode_ref() returns (codec/FORMAT.md lists them). */
#include "codec_internal.h"
#include "codec_simd.h"

#include <inttypes.h>
#include <math.h>

#define SQ_DEC_CHUNK 1024 /* columns (or CSR entries) per chunk: a multiple of 64 */
#define SQ_DEC_SLACK 64

typedef struct sq_dec {
    const uint8_t *b;
    sq_codec_header_t h;
    sq_codec_layout_t l;
    float *y;
    int64_t ld;
    int bits, qmax, thr;
    uint64_t gs, gpr, cols;
    uint64_t nwords; /* 64-bit words of the bitmap section */
} sq_dec_t;

#define SQ_DEC_FORMAT(...) sq_error_set(SQ_ERR_FORMAT, "codec message: " __VA_ARGS__)
#define SQ_DEC_RANGE(...) sq_error_set(SQ_ERR_RANGE, "codec message: " __VA_ARGS__)

static int sq_all_zero(const uint8_t *p, uint64_t n)
{
    uint8_t acc = 0;
    for (uint64_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static inline uint32_t sq_outlier_col(const sq_dec_t *d, uint32_t j)
{
    return sq_ld32(d->b + d->l.off_outliers + 4u * j);
}

static inline float sq_dec_scale(const sq_dec_t *d, uint64_t si)
{
    const uint8_t *p = d->b + d->l.off_scales + si * d->l.scale_bytes;
    if (d->h.scale_dtype == SQ_DTYPE_F16) return sq_codec_h2f(sq_ld16(p));
    return sq_codec_scale_value(sq_ld32(p), SQ_DTYPE_F32);
}

/* Codes [first, first + n) of a b-bit stream, sign-extended. */
static void sq_unpack(const uint8_t *src, uint64_t first, int n, int bits, int8_t *q)
{
    if (bits == 8) {
        memcpy(q, src + first, (size_t)n);
        return;
    }
    const int per = 8 / bits, sh = 8 - bits;
    int i = 0;
    uint64_t e = first;
    for (; (e % (uint64_t)per) && i < n; i++, e++) {
        uint8_t byte = src[e / (uint64_t)per];
        q[i] = (int8_t)((uint8_t)(byte << (sh - (int)(e % (uint64_t)per) * bits))) >> sh;
    }
    int nb = (n - i) / per;
    const uint8_t *s = src + e / (uint64_t)per;
    int8_t *o = q + i;
    if (bits == 4) {
        for (int j = 0; j < nb; j++) {
            o[2 * j] = (int8_t)(uint8_t)(s[j] << 4) >> 4;
            o[2 * j + 1] = (int8_t)s[j] >> 4;
        }
    } else {
        for (int j = 0; j < nb; j++) {
            o[4 * j] = (int8_t)(uint8_t)(s[j] << 6) >> 6;
            o[4 * j + 1] = (int8_t)(uint8_t)(s[j] << 4) >> 6;
            o[4 * j + 2] = (int8_t)(uint8_t)(s[j] << 2) >> 6;
            o[4 * j + 3] = (int8_t)s[j] >> 6;
        }
    }
    i += nb * per;
    e += (uint64_t)nb * (uint64_t)per;
    for (; i < n; i++, e++) {
        uint8_t byte = src[e / (uint64_t)per];
        q[i] = (int8_t)((uint8_t)(byte << (sh - (int)(e % (uint64_t)per) * bits))) >> sh;
    }
}

/* Any code not allowed? Valid non-zero codes have thr < |q| <= qmax; zeros
 * are valid only where allow_zero. */
static int sq_codes_bad(const int8_t *q, int n, int qmax, int thr, int allow_zero)
{
    int bad = 0;
    const unsigned span = (unsigned)(qmax - thr);
    for (int i = 0; i < n; i++) {
        int a = q[i] < 0 ? -q[i] : q[i];
        int ok = (unsigned)(a - thr - 1) < span;
        bad |= !(ok | (allow_zero & (a == 0)));
    }
    return bad;
}

static sq_status_t sq_codes_error(const sq_dec_t *d, const int8_t *q, int n, int allow_zero,
                                  int64_t r, const uint32_t *cols, uint64_t c0, uint64_t k0)
{
    for (int i = 0; i < n; i++) {
        int a = q[i] < 0 ? -q[i] : q[i];
        uint64_t c = cols ? cols[i] : c0 + (uint64_t)i;
        if (a == 0 && !allow_zero)
            return SQ_DEC_RANGE("zero code %" PRIu64 " in a sparse list", k0 + (uint64_t)i);
        if (a > d->qmax)
            return SQ_DEC_RANGE("code %d at [%" PRId64 "][%" PRIu64 "] outside +-%d", q[i], r, c,
                                d->qmax);
        if (a != 0 && a <= d->thr)
            return SQ_DEC_RANGE("code %d at [%" PRId64 "][%" PRIu64 "] under the threshold %d",
                                q[i], r, c, d->thr);
    }
    return sq_error_set(SQ_ERR_INTERNAL, "codec decode: bad code vanished");
}

static uint64_t sq_count_nz8(const int8_t *q, int n)
{
    uint64_t k = 0;
    for (int i = 0; i < n; i++)
        k += q[i] != 0;
    return k;
}

static void sq_scale_codes(const int8_t *q, int n, float s, float *y)
{
    for (int i = 0; i < n; i++)
        y[i] = (float)q[i] * s;
}

/* Bits [i, i + nb) of the bitmap (nb <= 64), reading only whole words of
 * the section. */
static inline uint64_t sq_bm_get(const sq_dec_t *d, uint64_t i, unsigned nb)
{
    const uint8_t *bm = d->b + d->l.off_struct;
    uint64_t w = i >> 6;
    unsigned sh = (unsigned)(i & 63);
    uint64_t v = sq_ld64(bm + 8 * w) >> sh;
    if (sh && w + 1 < d->nwords) v |= sq_ld64(bm + 8 * (w + 1)) << (64 - sh);
    return nb == 64 ? v : v & ((UINT64_C(1) << nb) - 1);
}

/* y[j] = code or 0 for the len columns at bit offset off of the chunk
 * masks m; codes are consumed from c. Returns the count consumed. */
static int sq_expand(const uint64_t *m, int off, int len, const int8_t *c, float s, float *y)
{
    int kk = 0, j = 0;
#if SQ_CODEC_AVX512
    if ((off & 15) == 0) {
        const __m512 sv = _mm512_set1_ps(s);
        for (; j < len; j += 16) {
            int bit = off + j;
            unsigned m16 = (unsigned)(m[bit >> 6] >> (bit & 63)) & 0xffffu;
            int rest = len - j;
            if (rest < 16) m16 &= (1u << rest) - 1u;
            __m128i v = _mm_loadu_si128((const __m128i *)(c + kk));
            __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)), sv);
            f = _mm512_maskz_expand_ps((__mmask16)m16, f);
            if (rest >= 16)
                _mm512_storeu_ps(y + j, f);
            else
                _mm512_mask_storeu_ps(y + j, (__mmask16)((1u << rest) - 1u), f);
            kk += _mm_popcnt_u32(m16);
        }
        return kk;
    }
#endif
    for (; j < len; j++) {
        int bit = off + j;
        int set = (int)((m[bit >> 6] >> (bit & 63)) & 1u);
        y[j] = set ? (float)c[kk] * s : 0.0f;
        kk += set;
    }
    return kk;
}

/* ---- per-row decoders ---- */

static sq_status_t sq_dec_outliers_zero(const sq_dec_t *d, const int8_t *q, int64_t r, uint64_t c0,
                                        int n, uint32_t *oj)
{
    for (; *oj < d->h.n_outliers && sq_outlier_col(d, *oj) < c0 + (uint64_t)n; (*oj)++)
        if (q[sq_outlier_col(d, *oj) - c0])
            return SQ_DEC_FORMAT("non-zero code at outlier column %" PRIu32 " of row %" PRId64,
                                 sq_outlier_col(d, *oj), r);
    return SQ_OK;
}

static sq_status_t sq_dec_row_dense(const sq_dec_t *d, int64_t r, uint64_t *count)
{
    const uint8_t *codes = d->b + d->l.off_codes;
    float *yr = d->y + r * d->ld;
    int8_t qbuf[SQ_DEC_CHUNK];
    uint32_t oj = 0;
    for (uint64_t c0 = 0; c0 < d->cols; c0 += SQ_DEC_CHUNK) {
        int n = (int)(d->cols - c0 < SQ_DEC_CHUNK ? d->cols - c0 : SQ_DEC_CHUNK);
        uint64_t e0 = (uint64_t)r * d->cols + c0;
        const int8_t *q = qbuf;
        if (d->bits == 8)
            q = (const int8_t *)(codes + e0);
        else
            sq_unpack(codes, e0, n, d->bits, qbuf);
        if (sq_codes_bad(q, n, d->qmax, d->thr, 1))
            return sq_codes_error(d, q, n, 1, r, NULL, c0, 0);
        SQ_TRY(sq_dec_outliers_zero(d, q, r, c0, n, &oj));
        *count += sq_count_nz8(q, n);
        for (uint64_t a = c0, b; a < c0 + (uint64_t)n; a = b) {
            uint64_t g = a / d->gs;
            b = (g + 1) * d->gs;
            if (b > c0 + (uint64_t)n) b = c0 + (uint64_t)n;
            sq_scale_codes(q + (a - c0), (int)(b - a), sq_dec_scale(d, (uint64_t)r * d->gpr + g),
                           yr + a);
        }
    }
    return SQ_OK;
}

static sq_status_t sq_dec_row_bitmap(const sq_dec_t *d, int64_t r, uint64_t *k)
{
    const uint8_t *codes = d->b + d->l.off_codes;
    float *yr = d->y + r * d->ld;
    uint64_t m[SQ_DEC_CHUNK / 64];
    int8_t packed[SQ_DEC_CHUNK + SQ_DEC_SLACK];
    uint32_t oj = 0;
    for (uint64_t c0 = 0; c0 < d->cols; c0 += SQ_DEC_CHUNK) {
        int n = (int)(d->cols - c0 < SQ_DEC_CHUNK ? d->cols - c0 : SQ_DEC_CHUNK);
        uint64_t e0 = (uint64_t)r * d->cols + c0;
        uint64_t pc = 0;
        for (int w = 0; w * 64 < n; w++) {
            unsigned nb = (unsigned)(n - w * 64 < 64 ? n - w * 64 : 64);
            m[w] = sq_bm_get(d, e0 + 64u * (uint64_t)w, nb);
            pc += (uint64_t)__builtin_popcountll(m[w]);
        }
        if (*k + pc > d->h.nnz)
            return SQ_DEC_FORMAT("bitmap has more than nnz = %" PRIu64 " bits set", d->h.nnz);
        for (; oj < d->h.n_outliers && sq_outlier_col(d, oj) < c0 + (uint64_t)n; oj++) {
            uint64_t bit = sq_outlier_col(d, oj) - c0;
            if ((m[bit >> 6] >> (bit & 63)) & 1u)
                return SQ_DEC_FORMAT("bit set at outlier column %" PRIu32 " of row %" PRId64,
                                     sq_outlier_col(d, oj), r);
        }
        sq_unpack(codes, *k, (int)pc, d->bits, packed);
        if (sq_codes_bad(packed, (int)pc, d->qmax, d->thr, 0))
            return sq_codes_error(d, packed, (int)pc, 0, r, NULL, c0, *k);
        memset(packed + pc, 0, 16); /* the vector expand reads 16 codes at a time */
        int kk = 0;
        for (uint64_t a = c0, b; a < c0 + (uint64_t)n; a = b) {
            uint64_t g = a / d->gs;
            b = (g + 1) * d->gs;
            if (b > c0 + (uint64_t)n) b = c0 + (uint64_t)n;
            kk += sq_expand(m, (int)(a - c0), (int)(b - a), packed + kk,
                            sq_dec_scale(d, (uint64_t)r * d->gpr + g), yr + a);
        }
        *k += pc;
    }
    return SQ_OK;
}

static sq_status_t sq_dec_row_csr(const sq_dec_t *d, int64_t r)
{
    const uint8_t *rp = d->b + d->l.off_struct;
    const uint8_t *ix = d->b + d->l.off_indices;
    const uint8_t *codes = d->b + d->l.off_codes;
    float *yr = d->y + r * d->ld;
    uint32_t p0 = sq_ld32(rp + 4u * (uint64_t)r), p1 = sq_ld32(rp + 4u * (uint64_t)(r + 1));
    if (r == 0 && p0 != 0) return SQ_DEC_FORMAT("row pointer 0 = %" PRIu32 ", not 0", p0);
    if (p1 < p0 || p1 > d->h.nnz)
        return SQ_DEC_FORMAT("row pointer %" PRId64 " = %" PRIu32 " not monotone within nnz", r + 1,
                             p1);
    memset(yr, 0, sizeof(float) * (size_t)d->cols);
    uint32_t idx[SQ_DEC_CHUNK];
    int8_t q[SQ_DEC_CHUNK];
    int64_t prev = -1;
    uint32_t oj = 0;
    const int per_row = d->gpr == 1;
    const float srow = per_row ? sq_dec_scale(d, (uint64_t)r) : 0.0f;
    const unsigned gshift = (unsigned)__builtin_ctzll(d->gs);
    for (uint64_t k0 = p0; k0 < p1; k0 += SQ_DEC_CHUNK) {
        int n = (int)(p1 - k0 < SQ_DEC_CHUNK ? p1 - k0 : SQ_DEC_CHUNK);
        if (d->h.index_bytes == 2)
            for (int i = 0; i < n; i++)
                idx[i] = sq_ld16(ix + 2u * (k0 + (uint64_t)i));
        else
            for (int i = 0; i < n; i++)
                idx[i] = sq_ld32(ix + 4u * (k0 + (uint64_t)i));
        uint32_t maxc = 0;
        int order = (int64_t)idx[0] > prev;
        for (int i = 0; i < n; i++)
            maxc = idx[i] > maxc ? idx[i] : maxc;
        for (int i = 1; i < n; i++)
            order &= idx[i] > idx[i - 1];
        if (maxc >= d->cols) {
            for (int i = 0; i < n; i++)
                if (idx[i] >= d->cols)
                    return SQ_DEC_RANGE("column index %" PRIu32 " out of range in row %" PRId64,
                                        idx[i], r);
        }
        if (!order)
            return SQ_DEC_FORMAT("column indices not strictly increasing in row %" PRId64, r);
        for (int i = 0; i < n && oj < d->h.n_outliers; i++) { /* merge with the outlier list */
            while (oj < d->h.n_outliers && sq_outlier_col(d, oj) < idx[i])
                oj++;
            if (oj < d->h.n_outliers && sq_outlier_col(d, oj) == idx[i])
                return SQ_DEC_FORMAT("non-zero code at outlier column %" PRIu32 " of row %" PRId64,
                                     idx[i], r);
        }
        sq_unpack(codes, k0, n, d->bits, q);
        if (sq_codes_bad(q, n, d->qmax, d->thr, 0))
            return sq_codes_error(d, q, n, 0, r, idx, 0, k0);
        if (per_row) {
            for (int i = 0; i < n; i++)
                yr[idx[i]] = (float)q[i] * srow;
        } else {
            for (int i = 0; i < n; i++)
                yr[idx[i]] =
                    (float)q[i] * sq_dec_scale(d, (uint64_t)r * d->gpr + (idx[i] >> gshift));
        }
        prev = idx[n - 1];
    }
    return SQ_OK;
}

static void sq_dec_outlier_values(const sq_dec_t *d, int64_t r)
{
    float *yr = d->y + r * d->ld;
    const uint8_t *v =
        d->b + d->l.off_outlier_vals + (uint64_t)r * d->h.n_outliers * d->l.outlier_bytes;
    for (uint32_t j = 0; j < d->h.n_outliers; j++)
        yr[sq_outlier_col(d, j)] = d->h.outlier_dtype == SQ_DTYPE_F16
                                       ? sq_codec_h2f(sq_ld16(v + 2u * j))
                                       : sq_codec_scale_value(sq_ld32(v + 4u * j), SQ_DTYPE_F32);
}

/* Sections before the codes: scales, outlier list, paddings. */
static sq_status_t sq_dec_check_side(const sq_dec_t *d)
{
    const uint8_t *b = d->b;
    const sq_codec_layout_t *l = &d->l;
    uint32_t worst = 0;
    if (d->h.scale_dtype == SQ_DTYPE_F16) {
        for (uint64_t i = 0; i < l->n_scales; i++) {
            uint32_t w = sq_ld16(b + l->off_scales + 2 * i);
            worst = w > worst ? w : worst;
        }
    } else {
        for (uint64_t i = 0; i < l->n_scales; i++) {
            uint32_t w = sq_ld32(b + l->off_scales + 4 * i);
            worst = w > worst ? w : worst;
        }
    }
    /* negative (sign bit) and Inf/NaN both compare above the largest finite */
    const uint32_t limit = d->h.scale_dtype == SQ_DTYPE_F16 ? 0x7c00u : 0x7f800000u;
    if (worst >= limit) {
        for (uint64_t i = 0; i < l->n_scales; i++) {
            uint32_t w = d->h.scale_dtype == SQ_DTYPE_F16 ? sq_ld16(b + l->off_scales + 2 * i)
                                                          : sq_ld32(b + l->off_scales + 4 * i);
            if (w >= limit)
                return SQ_DEC_RANGE("scale %" PRIu64 " = %g is not finite and >= 0", i,
                                    (double)(d->h.scale_dtype == SQ_DTYPE_F16
                                                 ? sq_f16_to_f32((uint16_t)w)
                                                 : sq_codec_scale_value(w, SQ_DTYPE_F32)));
        }
    }
    /* x^ = q * s must stay finite: the largest scale decides (fp16 never overflows) */
    if (d->h.scale_dtype == SQ_DTYPE_F32 &&
        isinf(sq_codec_scale_value(worst, SQ_DTYPE_F32) * (float)d->qmax)) {
        for (uint64_t i = 0; i < l->n_scales; i++) {
            float s = sq_codec_scale_value(sq_ld32(b + l->off_scales + 4 * i), SQ_DTYPE_F32);
            if (isinf(s * (float)d->qmax))
                return SQ_DEC_RANGE("scale %" PRIu64 " = %g: qmax * scale overflows fp32", i,
                                    (double)s);
        }
    }
    if (!sq_all_zero(b + l->off_scales + l->len_scales,
                     l->off_outliers - l->off_scales - l->len_scales))
        return SQ_DEC_FORMAT("non-zero padding after the scales");

    for (uint32_t j = 0; j < d->h.n_outliers; j++) {
        uint32_t c = sq_outlier_col(d, j);
        if (c >= d->cols)
            return SQ_DEC_RANGE("outlier column %" PRIu32 " out of range (cols = %" PRIu64 ")", c,
                                d->cols);
        if (j && c <= sq_outlier_col(d, j - 1))
            return SQ_DEC_FORMAT("outlier columns not strictly increasing at entry %" PRIu32, j);
    }
    uint64_t nv = (uint64_t)d->h.rows * d->h.n_outliers;
    for (uint64_t i = 0; i < nv; i++) {
        int bad = d->h.outlier_dtype == SQ_DTYPE_F16
                      ? (sq_ld16(b + l->off_outlier_vals + 2 * i) & 0x7fffu) >= 0x7c00u
                      : (sq_ld32(b + l->off_outlier_vals + 4 * i) & 0x7fffffffu) >= 0x7f800000u;
        if (bad) return SQ_DEC_RANGE("outlier value %" PRIu64 " is not finite", i);
    }
    if (!sq_all_zero(b + l->off_outliers + l->len_outliers,
                     l->off_struct - l->off_outliers - l->len_outliers))
        return SQ_DEC_FORMAT("non-zero padding after the outliers");
    if (!sq_all_zero(b + l->off_struct + l->len_struct,
                     l->off_codes - l->off_struct - l->len_struct))
        return SQ_DEC_FORMAT("non-zero padding after the structure");
    return SQ_OK;
}

/* Bits [from, to) of a section are zero (to - from < 64 + 8 * 8 here). */
static int sq_bits_zero(const uint8_t *p, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++)
        if ((p[i >> 3] >> (i & 7)) & 1u) return 0;
    return 1;
}

static sq_status_t sq_decode_lossless(const sq_dec_t *d, float *y, int64_t rows, int64_t cols,
                                      int64_t ld)
{
    const uint8_t *in = d->b + d->l.off_codes;
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * ld;
        if (d->h.value_dtype == SQ_DTYPE_F32) {
            memcpy(yr, in, (size_t)cols * 4u);
            in += (size_t)cols * 4u;
        } else { /* base/ conversion: NaN payloads as the reference */
            for (int64_t c = 0; c < cols; c++, in += 2)
                yr[c] = sq_f16_to_f32(sq_ld16(in));
        }
    }
    return SQ_OK;
}

/* The checksum of a message whose header sq_codec_peek() accepted (so
 * h->total_size bytes are readable): the one check sq_codec_decode() and
 * sq_codec_check() share. */
static sq_status_t sq_dec_verify_checksum(const uint8_t *b, const sq_codec_header_t *h)
{
    uint32_t crc = sq_codec_message_crc(b, h->total_size);
    if (crc != h->checksum)
        return sq_error_set(SQ_ERR_CHECKSUM,
                            "codec message: checksum 0x%08" PRIx32
                            " but the bytes give 0x%08" PRIx32,
                            h->checksum, crc);
    return SQ_OK;
}

sq_status_t sq_codec_check(const void *buf, size_t len, sq_codec_header_t *hdr)
{
    if (!buf || !hdr) return sq_error_set(SQ_ERR_INVALID_ARG, "codec check: NULL argument");
    sq_codec_header_t h;
    SQ_TRY(sq_codec_peek(buf, len, &h));
    SQ_TRY(sq_dec_verify_checksum(buf, &h));
    *hdr = h;
    return SQ_OK;
}

sq_status_t sq_codec_decode(const void *buf, size_t len, float *y, int64_t rows, int64_t cols,
                            int64_t ld)
{
    if (!buf || !y) return sq_error_set(SQ_ERR_INVALID_ARG, "codec decode: NULL buf or y");
    sq_dec_t d;
    memset(&d, 0, sizeof d);
    SQ_TRY(sq_codec_peek(buf, len, &d.h));
    if (d.h.rows != rows || d.h.cols != cols)
        return SQ_DEC_RANGE("shape [%" PRId64 ", %" PRId64 "] but the caller's buffer is [%" PRId64
                            ", %" PRId64 "]",
                            d.h.rows, d.h.cols, rows, cols);
    if (ld < cols)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec decode: ld = %" PRId64 " < cols", ld);
    d.b = buf;
    SQ_TRY(sq_dec_verify_checksum(d.b, &d.h));
    sq_codec_layout(&d.h, &d.l);
    const sq_codec_layout_t *l = &d.l;
    if (!sq_all_zero(d.b + l->off_codes + l->len_codes, l->total - l->off_codes - l->len_codes))
        return SQ_DEC_FORMAT("non-zero padding after the codes");
    if (d.h.encoding == SQ_CODEC_LOSSLESS) return sq_decode_lossless(&d, y, rows, cols, ld);

    d.y = y;
    d.ld = ld;
    d.bits = d.h.bits;
    d.qmax = sq_codec_qmax(d.bits);
    d.thr = (int)d.h.threshold;
    d.gs = d.h.group_size;
    d.gpr = l->groups_per_row;
    d.cols = (uint64_t)cols;
    d.nwords = (l->n + 63) / 64;
    SQ_TRY(sq_dec_check_side(&d));

    uint64_t k = 0;
    for (int64_t r = 0; r < rows; r++) {
        if (d.h.encoding == SQ_CODEC_DENSE)
            SQ_TRY(sq_dec_row_dense(&d, r, &k));
        else if (d.h.encoding == SQ_CODEC_BITMAP)
            SQ_TRY(sq_dec_row_bitmap(&d, r, &k));
        else
            SQ_TRY(sq_dec_row_csr(&d, r));
        if (d.h.n_outliers) sq_dec_outlier_values(&d, r);
    }
    if (d.h.encoding == SQ_CODEC_CSR) k = sq_ld32(d.b + l->off_struct + 4u * (uint64_t)rows);
    if (k != d.h.nnz) {
        if (d.h.encoding == SQ_CODEC_CSR) return SQ_DEC_FORMAT("last row pointer != nnz");
        return SQ_DEC_FORMAT("%" PRIu64 " non-zero codes found, header says nnz = %" PRIu64, k,
                             d.h.nnz);
    }
    if (d.h.encoding == SQ_CODEC_BITMAP &&
        !sq_bits_zero(d.b + l->off_struct, l->n, l->len_struct * 8))
        return SQ_DEC_FORMAT("bitmap padding bits set");
    uint64_t ncodes = d.h.encoding == SQ_CODEC_DENSE ? l->n : d.h.nnz;
    if (!sq_bits_zero(d.b + l->off_codes, ncodes * (uint64_t)d.bits, l->len_codes * 8))
        return SQ_DEC_FORMAT("padding bits after the last code set");
    return SQ_OK;
}

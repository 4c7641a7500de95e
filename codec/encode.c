/* Fast encoder. Rows are processed in chunks of SQ_ENC_CHUNK columns that
 * stay in L1: scale (absmax of the group), quantize to int8 codes, then emit
 * the chunk in the chosen layout (pack, or 64-column bitmap words plus
 * compaction of the non-zeros). The layouts whose offsets depend on nnz
 * (CSR, and AUTO which must know nnz to choose) take two sweeps: the first
 * writes scales and outliers and counts, the second reuses the stored scales
 * and writes the rest. Output must equal sq_codec_encode_ref() byte for byte. */
#include "codec_internal.h"
#include "codec_simd.h"

#include <inttypes.h>
#include <math.h>

#define SQ_ENC_CHUNK 1024 /* columns per chunk: a multiple of 64 */
#define SQ_ENC_SLACK 64   /* vector stores may run this far past the data */

/* LSB-first bit stream of b-bit codes; acc holds < 8 pending bits. */
typedef struct sq_bitw {
    uint8_t *p;
    uint32_t acc;
    int nacc;
} sq_bitw_t;

/* Flat bitmap writer: acc holds n < 64 pending bits. */
typedef struct sq_bmw {
    uint8_t *p;
    uint64_t acc;
    unsigned n;
} sq_bmw_t;

typedef enum { SQ_PASS_COUNT, SQ_PASS_WRITE, SQ_PASS_ONE } sq_pass_t;

typedef struct sq_enc {
    const sq_codec_params_t *p;
    const float *x;
    int64_t rows, cols, ld;
    int bits, qmax, thr;
    uint64_t gs, gpr;
    uint8_t *buf;
    sq_codec_header_t h;
    sq_codec_layout_t l;
    sq_pass_t pass;
    sq_codec_encoding_t enc; /* layout written by WRITE/ONE passes */
    uint64_t nnz;
    sq_bitw_t codes;
    sq_bmw_t bm;
    uint8_t *idx; /* next CSR column index */
    float s;      /* scale of the current group */
} sq_enc_t;

/* ---- small kernels (written so that gcc/clang vectorize them) ---- */

/* Largest |x| bit pattern: also the float absmax, and >= 0x7f800000 iff a
 * NaN or Inf is present. */
static uint32_t sq_amax_bits(const float *x, uint64_t n)
{
    uint32_t m = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        u &= 0x7fffffffu;
        m = u > m ? u : m;
    }
    return m;
}

static void sq_quant_nearest(const float *x, int n, float s, int qmax, int thr, int8_t *q)
{
    const float fq = (float)qmax;
    for (int i = 0; i < n; i++) {
        float v = x[i] / s;
        /* clamps only outlier columns (their codes are zeroed afterwards) */
        v = v > fq ? fq : v;
        v = v < -fq ? -fq : v;
        int qi = (int)rintf(v);
        q[i] = (int8_t)((qi <= thr && qi >= -thr) ? 0 : qi);
    }
}

static void sq_quant_stochastic(const float *x, int n, float s, int qmax, int thr,
                                const uint32_t *ubits, int8_t *q)
{
    const float fq = (float)qmax;
    int i = 0;
#if SQ_CODEC_AVX512
    /* gcc leaves this loop scalar (and branchy on random data): spell it
     * out. Same operations as below, lane by lane, so the same codes. */
    const __m512 sv = _mm512_set1_ps(s), hi = _mm512_set1_ps(fq), lo = _mm512_set1_ps(-fq);
    const __m512 ulp = _mm512_set1_ps(0x1p-23f), half = _mm512_set1_ps(0x1p-24f);
    const __m512i tv = _mm512_set1_epi32(thr), one = _mm512_set1_epi32(1);
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), sv);
        v = _mm512_max_ps(_mm512_min_ps(v, hi), lo);
        __m512 fl = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        __m512 f = _mm512_sub_ps(v, fl);
        __m512i ub = _mm512_srli_epi32(_mm512_maskz_loadu_epi32(m, ubits + i), 9);
        __m512 u = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(ub), ulp), half);
        __m512i qi = _mm512_cvttps_epi32(fl);
        qi = _mm512_mask_add_epi32(qi, _mm512_cmp_ps_mask(u, f, _CMP_LT_OQ), qi, one);
        qi = _mm512_maskz_mov_epi32(_mm512_cmpgt_epi32_mask(_mm512_abs_epi32(qi), tv), qi);
        _mm_mask_storeu_epi8(q + i, m, _mm512_cvtepi32_epi8(qi));
    }
#endif
    for (; i < n; i++) {
        float v = x[i] / s;
        v = v > fq ? fq : v;
        v = v < -fq ? -fq : v;
        float fl = floorf(v);
        int qi = (int)fl + (sq_philox_uniform(ubits[i]) < v - fl ? 1 : 0);
        q[i] = (int8_t)((qi <= thr && qi >= -thr) ? 0 : qi);
    }
}

static uint64_t sq_count_nz(const int8_t *q, int n)
{
    uint64_t k = 0;
    for (int i = 0; i < n; i++)
        k += q[i] != 0;
    return k;
}

/* Non-zero mask of 64 codes (q readable for 64 bytes). */
static inline uint64_t sq_nz_mask64(const int8_t *q)
{
#if SQ_CODEC_AVX512
    __m512i v = _mm512_loadu_si512(q);
    return _mm512_test_epi8_mask(v, v);
#else
    uint64_t m = 0;
    for (int i = 0; i < 64; i++)
        m |= (uint64_t)(q[i] != 0) << i;
    return m;
#endif
}

/* Non-zero codes of q[0, n) to out (dense, in order); column indices
 * c0 + i to idx (u16 or u32, idx_bytes; none when 0). q is readable and
 * zero-padded up to n rounded to 64. Returns the count. */
static int sq_compact(const int8_t *q, int n, uint32_t c0, int idx_bytes, int8_t *out, void *idx)
{
    int k = 0;
#if SQ_CODEC_AVX512
    for (int j = 0; j < n; j += 64) {
        __m512i v = _mm512_loadu_si512(q + j);
        __mmask64 m = _mm512_test_epi8_mask(v, v);
        _mm512_storeu_si512(out + k, _mm512_maskz_compress_epi8(m, v));
        if (idx_bytes == 2) {
            uint16_t *o = (uint16_t *)idx + k;
            const __m512i iota =
                _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15,
                                 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
            __m512i b0 = _mm512_add_epi16(_mm512_set1_epi16((short)(c0 + (uint32_t)j)), iota);
            __m512i b1 = _mm512_add_epi16(b0, _mm512_set1_epi16(32));
            __mmask32 m0 = (__mmask32)m, m1 = (__mmask32)(m >> 32);
            _mm512_storeu_si512(o, _mm512_maskz_compress_epi16(m0, b0));
            _mm512_storeu_si512(o + _mm_popcnt_u32(m0), _mm512_maskz_compress_epi16(m1, b1));
        } else if (idx_bytes == 4) {
            uint32_t *o = (uint32_t *)idx + k;
            const __m512i iota =
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            for (int t = 0; t < 4; t++) {
                __mmask16 mt = (__mmask16)(m >> (16 * t));
                __m512i b =
                    _mm512_add_epi32(_mm512_set1_epi32((int)(c0 + (uint32_t)j + 16u * t)), iota);
                _mm512_storeu_si512(o, _mm512_maskz_compress_epi32(mt, b));
                o += _mm_popcnt_u32(mt);
            }
        }
        k += (int)_mm_popcnt_u64(m);
    }
    (void)n;
#else
    for (int i = 0; i < n; i++) {
        out[k] = q[i];
        if (idx_bytes == 2) ((uint16_t *)idx)[k] = (uint16_t)(c0 + (uint32_t)i);
        if (idx_bytes == 4) ((uint32_t *)idx)[k] = c0 + (uint32_t)i;
        k += q[i] != 0;
    }
#endif
    return k;
}

/* Append n codes to a b-bit stream. */
static void sq_bitw_put(sq_bitw_t *w, const int8_t *q, int n, int bits)
{
    if (bits == 8) {
        memcpy(w->p, q, (size_t)n);
        w->p += n;
        return;
    }
    const uint32_t mask = (1u << bits) - 1u;
    const int per = 8 / bits;
    int i = 0;
    while (w->nacc && i < n) { /* finish the pending byte */
        w->acc |= ((uint32_t)q[i++] & mask) << w->nacc;
        w->nacc += bits;
        if (w->nacc == 8) {
            *w->p++ = (uint8_t)w->acc;
            w->acc = 0;
            w->nacc = 0;
        }
    }
    int nb = (n - i) / per;
    const int8_t *s = q + i;
    uint8_t *o = w->p;
    if (bits == 4) {
        for (int j = 0; j < nb; j++)
            o[j] = (uint8_t)(((uint32_t)s[2 * j] & 15u) | (((uint32_t)s[2 * j + 1] & 15u) << 4));
    } else {
        for (int j = 0; j < nb; j++)
            o[j] = (uint8_t)(((uint32_t)s[4 * j] & 3u) | (((uint32_t)s[4 * j + 1] & 3u) << 2) |
                             (((uint32_t)s[4 * j + 2] & 3u) << 4) |
                             (((uint32_t)s[4 * j + 3] & 3u) << 6));
    }
    w->p += nb;
    for (i += nb * per; i < n; i++) {
        w->acc |= ((uint32_t)q[i] & mask) << w->nacc;
        w->nacc += bits;
    }
}

static void sq_bitw_flush(sq_bitw_t *w)
{
    if (w->nacc) *w->p++ = (uint8_t)w->acc;
    w->acc = 0;
    w->nacc = 0;
}

/* Append nb (1..64) bits; bits of m above nb are zero. */
static inline void sq_bmw_put(sq_bmw_t *w, uint64_t m, unsigned nb)
{
    w->acc |= m << w->n; /* n < 64 */
    if (w->n + nb >= 64) {
        sq_st64(w->p, w->acc);
        w->p += 8;
        w->acc = w->n ? m >> (64 - w->n) : 0;
        w->n = w->n + nb - 64;
    } else {
        w->n += nb;
    }
}

static void sq_bmw_flush(sq_bmw_t *w)
{
    for (unsigned b = 0; b < w->n; b += 8)
        *w->p++ = (uint8_t)(w->acc >> b);
    w->acc = 0;
    w->n = 0;
}

/* ---- scales ---- */

static sq_status_t sq_enc_nonfinite(const sq_enc_t *e, int64_t r, uint64_t a, uint64_t b)
{
    const float *xr = e->x + r * e->ld;
    for (uint64_t c = a; c < b; c++)
        if (!isfinite(xr[c]))
            return sq_error_set(SQ_ERR_RANGE,
                                "codec encode: x[%" PRId64 "][%" PRIu64 "] = %g: quantized "
                                "encodings need finite input (row %" PRId64 ", column %" PRIu64 ")",
                                r, c, (double)xr[c], r, c);
    return sq_error_set(SQ_ERR_INTERNAL, "codec encode: non-finite value vanished");
}

/* First outlier index >= c. */
static uint32_t sq_outlier_lb(const sq_codec_params_t *p, uint64_t c)
{
    uint32_t lo = 0, hi = p->n_outliers;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (p->outlier_cols[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Scale of group g of row r, from x (COUNT/ONE) and stored, or read back
 * from the scales section (WRITE). */
static sq_status_t sq_enc_scale(sq_enc_t *e, int64_t r, uint64_t g)
{
    uint64_t si = (uint64_t)r * e->gpr + g;
    uint8_t *sp = e->buf + e->l.off_scales + si * e->l.scale_bytes;
    if (e->pass == SQ_PASS_WRITE) {
        uint32_t w = e->p->scale_dtype == SQ_DTYPE_F16 ? sq_ld16(sp) : sq_ld32(sp);
        e->s = e->p->scale_dtype == SQ_DTYPE_F16 ? sq_codec_h2f((uint16_t)w)
                                                 : sq_codec_scale_value(w, SQ_DTYPE_F32);
        return SQ_OK;
    }
    const float *xr = e->x + r * e->ld;
    uint64_t a = g * e->gs, b = a + e->gs;
    uint32_t m = sq_amax_bits(xr + a, b - a);
    if (m >= 0x7f800000u) return sq_enc_nonfinite(e, r, a, b);
    if (e->p->n_outliers) { /* absmax of the segments between outlier columns */
        const uint32_t *oc = e->p->outlier_cols;
        uint32_t j = sq_outlier_lb(e->p, a);
        if (j < e->p->n_outliers && oc[j] < b) {
            m = 0;
            for (uint64_t c = a; c < b; j++) {
                uint64_t stop = (j < e->p->n_outliers && oc[j] < b) ? oc[j] : b;
                uint32_t ms = sq_amax_bits(xr + c, stop - c);
                m = ms > m ? ms : m;
                c = stop + 1;
            }
        }
    }
    float amax, s;
    uint32_t wire;
    memcpy(&amax, &m, 4);
    if (sq_codec_scale_fast(amax, e->qmax, e->p->scale_dtype, &s, &wire) != 0)
        return sq_error_set(SQ_ERR_RANGE,
                            "codec encode: row %" PRId64 " group %" PRIu64
                            ": absmax %g overflows an fp16 scale (use fp32 scales or outliers)",
                            r, g, (double)amax);
    if (e->p->scale_dtype == SQ_DTYPE_F16)
        sq_st16(sp, (uint16_t)wire);
    else
        sq_st32(sp, wire);
    e->s = s;
    return SQ_OK;
}

static sq_status_t sq_enc_outlier_values(sq_enc_t *e, int64_t r)
{
    const sq_codec_params_t *p = e->p;
    const float *xr = e->x + r * e->ld;
    uint8_t *o = e->buf + e->l.off_outlier_vals + (uint64_t)r * p->n_outliers * e->l.outlier_bytes;
    for (uint32_t j = 0; j < p->n_outliers; j++) {
        float v = xr[p->outlier_cols[j]];
        if (p->outlier_dtype == SQ_DTYPE_F16) {
            uint16_t hv = sq_codec_f2h(v);
            if ((hv & 0x7fffu) >= 0x7c00u)
                return sq_error_set(SQ_ERR_RANGE,
                                    "codec encode: outlier x[%" PRId64 "][%" PRIu32
                                    "] = %g overflows fp16",
                                    r, p->outlier_cols[j], (double)v);
            sq_st16(o + 2u * j, hv);
        } else {
            memcpy(o + 4u * j, &v, 4);
        }
    }
    return SQ_OK;
}

/* ---- one row ---- */

static sq_status_t sq_enc_row(sq_enc_t *e, int64_t r)
{
    const sq_codec_params_t *p = e->p;
    const float *xr = e->x + r * e->ld;
    const uint64_t cols = (uint64_t)e->cols;
    int8_t q[SQ_ENC_CHUNK + SQ_ENC_SLACK];
    int8_t packed[SQ_ENC_CHUNK + SQ_ENC_SLACK];
    uint32_t idx[SQ_ENC_CHUNK + SQ_ENC_SLACK];
    uint32_t ubits[SQ_ENC_CHUNK + 8];
    const int stochastic = p->rounding == SQ_CODEC_ROUND_STOCHASTIC;
    uint32_t oj = 0; /* next outlier column */

    if (e->pass != SQ_PASS_WRITE && p->n_outliers) SQ_TRY(sq_enc_outlier_values(e, r));
    if (e->pass != SQ_PASS_COUNT && e->enc == SQ_CODEC_CSR)
        sq_st32(e->buf + e->l.off_struct + 4u * (uint64_t)r, (uint32_t)e->nnz);

    for (uint64_t c0 = 0; c0 < cols; c0 += SQ_ENC_CHUNK) {
        int n = (int)(cols - c0 < SQ_ENC_CHUNK ? cols - c0 : SQ_ENC_CHUNK);
        const uint64_t i0 = (uint64_t)r * cols + c0; /* element index of the chunk */
        if (stochastic) {
            uint64_t b0 = i0 >> 2;
            int nb = (int)(((i0 + (uint64_t)n - 1) >> 2) - b0 + 1);
            uint32_t blk[SQ_ENC_CHUNK + 8];
            sq_codec_philox_blocks(p->seed, p->stream, b0, nb, blk);
            memcpy(ubits, blk + (i0 & 3), sizeof(uint32_t) * (size_t)n);
        }
        for (uint64_t a = c0, b; a < c0 + (uint64_t)n; a = b) {
            uint64_t g = a / e->gs;
            b = (g + 1) * e->gs;
            if (b > c0 + (uint64_t)n) b = c0 + (uint64_t)n;
            if (a == g * e->gs) SQ_TRY(sq_enc_scale(e, r, g));
            int off = (int)(a - c0), len = (int)(b - a);
            if (e->s == 0.0f)
                memset(q + off, 0, (size_t)len);
            else if (stochastic)
                sq_quant_stochastic(xr + a, len, e->s, e->qmax, e->thr, ubits + off, q + off);
            else
                sq_quant_nearest(xr + a, len, e->s, e->qmax, e->thr, q + off);
        }
        for (; oj < p->n_outliers && p->outlier_cols[oj] < c0 + (uint64_t)n; oj++)
            q[p->outlier_cols[oj] - c0] = 0;
        memset(q + n, 0, SQ_ENC_SLACK); /* vector kernels read whole 64-code words */

        if (e->pass == SQ_PASS_COUNT) {
            e->nnz += sq_count_nz(q, n);
            continue;
        }
        if (e->enc == SQ_CODEC_DENSE) {
            e->nnz += sq_count_nz(q, n);
            sq_bitw_put(&e->codes, q, n, e->bits);
            continue;
        }
        int ib = e->enc == SQ_CODEC_CSR ? (int)e->h.index_bytes : 0;
        int k = sq_compact(q, n, (uint32_t)c0, ib, packed, idx);
        if (e->enc == SQ_CODEC_BITMAP) {
            for (int j = 0; j < n; j += 64) {
                unsigned nbits = (unsigned)(n - j < 64 ? n - j : 64);
                sq_bmw_put(&e->bm, sq_nz_mask64(q + j), nbits);
            }
        } else {
            memcpy(e->idx, idx, (size_t)k * (size_t)ib);
            e->idx += (size_t)k * (size_t)ib;
        }
        sq_bitw_put(&e->codes, packed, k, e->bits);
        e->nnz += (uint64_t)k;
    }
    return SQ_OK;
}

static sq_status_t sq_enc_sweep(sq_enc_t *e, sq_pass_t pass)
{
    e->pass = pass;
    e->nnz = 0;
    e->s = 0.0f;
    for (int64_t r = 0; r < e->rows; r++)
        SQ_TRY(sq_enc_row(e, r));
    return SQ_OK;
}

static void sq_zero_tail(uint8_t *buf, uint64_t from, uint64_t to)
{
    if (to > from) memset(buf + from, 0, (size_t)(to - from));
}

/* Set up header + layout for encoding enc with nnz (known or bound). */
static void sq_enc_layout(sq_enc_t *e, sq_codec_encoding_t enc, uint64_t nnz)
{
    e->enc = enc;
    sq_codec_header_from_params(e->p, e->rows, e->cols, nnz, enc, &e->h);
    sq_codec_layout(&e->h, &e->l);
}

static sq_status_t sq_enc_cap(const sq_enc_t *e, size_t cap, uint64_t need)
{
    if (need > cap)
        return sq_error_set(SQ_ERR_RANGE,
                            "codec encode: buffer of %zu bytes, message needs %" PRIu64, cap, need);
    return SQ_OK;
}

static sq_status_t sq_encode_lossless(const sq_codec_params_t *p, const float *x, int64_t rows,
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
    uint8_t *out = buf + l.off_codes;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        if (h.value_dtype == SQ_DTYPE_F32) {
            memcpy(out, xr, (size_t)cols * 4u);
            out += (size_t)cols * 4u;
        } else { /* base/ conversion: keeps NaN/Inf/-0 exactly like the reference */
            for (int64_t c = 0; c < cols; c++, out += 2)
                sq_st16(out, sq_f32_to_f16(xr[c]));
        }
    }
    sq_zero_tail(buf, l.off_codes + l.len_codes, l.total);
    h.payload_len = l.total - SQ_CODEC_HEADER_SIZE;
    sq_codec_header_store(&h, buf);
    sq_codec_seal(buf, l.total);
    if (stats) sq_codec_stats_fill(p, rows, cols, &h, &l, stats);
    *written = (size_t)l.total;
    return SQ_OK;
}

sq_status_t sq_codec_encode(const sq_codec_params_t *p, const float *x, int64_t rows, int64_t cols,
                            int64_t ld, void *bufv, size_t cap, size_t *written,
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
        return sq_encode_lossless(p, x, rows, cols, ld, buf, cap, written, stats);

    sq_enc_t e;
    memset(&e, 0, sizeof e);
    e.p = p;
    e.x = x;
    e.rows = rows;
    e.cols = cols;
    e.ld = ld;
    e.bits = p->bits;
    e.qmax = sq_codec_qmax(p->bits);
    e.thr = (int)p->threshold;
    e.gs = p->granularity == SQ_CODEC_PER_GROUP ? p->group_size : (uint64_t)cols;
    e.gpr = (uint64_t)cols / e.gs;
    e.buf = buf;

    sq_codec_encoding_t enc = p->encoding;
    const uint64_t nmax = (uint64_t)rows * ((uint64_t)cols - p->n_outliers);
    int one_pass = enc == SQ_CODEC_DENSE;
    if (enc == SQ_CODEC_BITMAP) { /* one sweep when even a full bitmap fits */
        sq_enc_layout(&e, SQ_CODEC_BITMAP, nmax);
        one_pass = e.l.total <= cap;
    }
    if (!one_pass) {
        /* Sweep 1: scales and outliers land where every layout has them. */
        sq_enc_layout(&e, SQ_CODEC_DENSE, 0);
        SQ_TRY(sq_enc_cap(&e, cap, e.l.off_struct));
        SQ_TRY(sq_enc_sweep(&e, SQ_PASS_COUNT));
        uint64_t nnz = e.nnz;
        if (enc == SQ_CODEC_AUTO)
            enc = sq_codec_pick(sq_codec_size_dense(p, rows, cols, nnz),
                                sq_codec_size_bitmap(p, rows, cols, nnz),
                                sq_codec_size_csr(p, rows, cols, nnz));
        if (enc == SQ_CODEC_CSR && nnz > UINT32_MAX)
            return sq_error_set(SQ_ERR_RANGE, "codec encode: %" PRIu64 " non-zeros overflow CSR",
                                nnz);
        sq_enc_layout(&e, enc, nnz);
    } else {
        sq_enc_layout(&e, enc, enc == SQ_CODEC_BITMAP ? nmax : 0);
    }
    SQ_TRY(sq_enc_cap(&e, cap, e.l.total));

    if (p->n_outliers)
        for (uint32_t j = 0; j < p->n_outliers; j++)
            sq_st32(buf + e.l.off_outliers + 4u * j, p->outlier_cols[j]);
    e.codes.p = buf + e.l.off_codes;
    e.bm.p = buf + e.l.off_struct;
    e.idx = buf + e.l.off_indices;
    SQ_TRY(sq_enc_sweep(&e, one_pass ? SQ_PASS_ONE : SQ_PASS_WRITE));
    sq_bitw_flush(&e.codes);
    if (enc == SQ_CODEC_BITMAP) sq_bmw_flush(&e.bm);
    if (enc == SQ_CODEC_CSR) sq_st32(buf + e.l.off_struct + 4u * (uint64_t)rows, (uint32_t)e.nnz);

    /* The final layout (bitmap with the true nnz may be shorter). */
    sq_enc_layout(&e, enc, e.nnz);
    sq_codec_layout_t *l = &e.l;
    sq_zero_tail(buf, l->off_scales + l->len_scales, l->off_outliers);
    sq_zero_tail(buf, l->off_outliers + l->len_outliers, l->off_struct);
    sq_zero_tail(buf, l->off_struct + l->len_struct, l->off_codes);
    sq_zero_tail(buf, l->off_codes + l->len_codes, l->total);
    e.h.payload_len = l->total - SQ_CODEC_HEADER_SIZE;
    sq_codec_header_store(&e.h, buf);
    sq_codec_seal(buf, l->total);
    if (stats) sq_codec_stats_fill(p, rows, cols, &e.h, l, stats);
    *written = (size_t)l->total;
    return SQ_OK;
}

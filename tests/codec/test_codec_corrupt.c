/* Corrupted messages: every check of codec/FORMAT.md returns its status,
 * the fast decoder and the reference agree, nothing is read or written out
 * of bounds (guard regions here, ASan in the sanitizer build). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <dirent.h>

#include "codec_internal.h"
#include "codec_test_util.h"
#include "sparq/codec.h"

#define GUARD 64

/* Decode with both decoders into guarded buffers; they must agree on the
 * status (strict; with several faults in one message each may report a
 * different one first, so then only on success vs failure) and on the
 * values when OK. Returns the fast decoder's status. */
static sq_status_t dec_both_mode(const uint8_t *msg, size_t len, int64_t rows, int64_t cols,
                                 int strict)
{
    /* an exact-size heap copy, so ASan sees any read past len */
    uint8_t *m = malloc(len ? len : 1);
    assert_non_null(m);
    if (len) memcpy(m, msg, len);
    const int64_t ld = cols + 1;
    size_t n = (size_t)(rows * ld) + GUARD;
    float *y = malloc(n * 4), *yr = malloc(n * 4);
    memset(y, 0x5a, n * 4);
    memset(yr, 0x5a, n * 4);
    sq_status_t a = sq_codec_decode(m, len, y, rows, cols, ld);
    char msg_a[1024];
    snprintf(msg_a, sizeof msg_a, "%s", sq_error_last());
    sq_status_t b = sq_codec_decode_ref(m, len, yr, rows, cols, ld);
    if (strict ? a != b : (a == SQ_OK) != (b == SQ_OK))
        fail_msg("fast says %s (%s), ref says %s (%s)", sq_status_string(a), msg_a,
                 sq_status_string(b), sq_error_last());
    if (a == SQ_OK) assert_memory_equal(y, yr, n * 4);
    for (size_t i = (size_t)(rows * ld); i < n; i++) {
        uint32_t u;
        memcpy(&u, &y[i], 4);
        assert_int_equal(u, 0x5a5a5a5au);
    }
    for (int64_t r = 0; r < rows; r++) { /* the column past cols is never written */
        uint32_t u;
        memcpy(&u, &y[r * ld + cols], 4);
        assert_int_equal(u, 0x5a5a5a5au);
    }
    free(m);
    free(y);
    free(yr);
    return a;
}

static sq_status_t dec_both(const uint8_t *msg, size_t len, int64_t rows, int64_t cols)
{
    return dec_both_mode(msg, len, rows, cols, 1);
}

typedef struct msgcase {
    uint8_t *buf;
    size_t len;
    int64_t rows, cols;
    sq_codec_header_t h;
    sq_codec_layout_t l;
} msgcase_t;

static const uint32_t k_outl[] = {2, 30};

static msgcase_t make(sq_codec_encoding_t enc, int bits, int outliers, int f16_group, double dens)
{
    msgcase_t m;
    m.rows = 5;
    m.cols = 40;
    float x[5 * 40];
    ct_fill_sparse(x, m.rows, m.cols, m.cols, dens, 2.0f, 42 + (uint64_t)enc * 7 + (uint64_t)bits);
    sq_codec_params_t p = sq_codec_params_default();
    p.encoding = enc;
    p.bits = bits;
    p.tag = 99;
    if (outliers) {
        p.outlier_cols = k_outl;
        p.n_outliers = 2;
        for (int r = 0; r < 5; r++)
            x[r * 40 + 2] = 50.0f, x[r * 40 + 30] = -7.0f;
    }
    if (f16_group) {
        p.scale_dtype = SQ_DTYPE_F16;
        p.granularity = SQ_CODEC_PER_GROUP;
        p.group_size = 8;
    }
    m.buf = ct_encode(&p, x, m.rows, m.cols, m.cols, &m.len, NULL);
    SQ_CHECK(sq_codec_peek(m.buf, m.len, &m.h));
    sq_codec_layout(&m.h, &m.l);
    assert_int_equal(dec_both(m.buf, m.len, m.rows, m.cols), SQ_OK);
    return m;
}

/* Patch a copy, reseal the checksum, decode: the expected status. */
static void expect_patched(const msgcase_t *m, size_t off, const void *bytes, size_t n,
                           sq_status_t want)
{
    uint8_t *c = malloc(m->len);
    memcpy(c, m->buf, m->len);
    memcpy(c + off, bytes, n);
    if (sq_codec_reseal(c, m->len) != SQ_OK) sq_codec_seal(c, m->len); /* lengths patched */
    sq_status_t st = dec_both(c, m->len, m->rows, m->cols);
    if (st != want)
        fail_msg("patch at %zu: got %s (%s), want %s", off, sq_status_string(st), sq_error_last(),
                 sq_status_string(want));
    free(c);
}

static void patch32(const msgcase_t *m, size_t off, uint32_t v, sq_status_t want)
{
    uint8_t b[4];
    memcpy(b, &v, 4);
    expect_patched(m, off, b, 4, want);
}

static void patch8(const msgcase_t *m, size_t off, uint8_t v, sq_status_t want)
{
    expect_patched(m, off, &v, 1, want);
}

static const sq_codec_encoding_t k_encs[] = {SQ_CODEC_DENSE, SQ_CODEC_BITMAP, SQ_CODEC_CSR,
                                             SQ_CODEC_LOSSLESS};

/* Any single-byte change is caught: header fields by their own checks,
 * everything else by the checksum. */
static void test_flip_every_byte(void **state)
{
    (void)state;
    for (size_t e = 0; e < 4; e++)
        for (int bits = 8; bits >= 2; bits /= 2) {
            msgcase_t m = make(k_encs[e], bits, e < 3 && bits == 4, bits == 2, 0.3);
            for (size_t i = 0; i < m.len; i++)
                for (int f = 0; f < 3; f++) {
                    const uint8_t flips[] = {0x01, 0x80, 0xff};
                    m.buf[i] ^= flips[f];
                    sq_status_t st = dec_both(m.buf, m.len, m.rows, m.cols);
                    m.buf[i] ^= flips[f];
                    if (i < 4)
                        assert_int_equal(st, SQ_ERR_FORMAT);
                    else if (i < 6)
                        assert_int_equal(st, SQ_ERR_VERSION);
                    else if ((i >= 8 && i < 12) || (i >= 56 && i < 64) || i >= 64)
                        assert_int_equal(st, SQ_ERR_CHECKSUM);
                    else if (i >= 24 && i < 32) /* shape: caller mismatch or framing */
                        assert_true(st == SQ_ERR_FORMAT || st == SQ_ERR_RANGE);
                    else
                        assert_true(st == SQ_ERR_FORMAT || st == SQ_ERR_CHECKSUM);
                }
            free(m.buf);
        }
}

static void test_truncate_everywhere(void **state)
{
    (void)state;
    for (size_t e = 0; e < 4; e++) {
        msgcase_t m = make(k_encs[e], 4, 0, 0, 0.3);
        for (size_t n = 0; n < m.len; n++) {
            assert_int_equal(dec_both(m.buf, n, m.rows, m.cols), SQ_ERR_FORMAT);
            sq_codec_header_t h;
            assert_true(sq_codec_peek(m.buf, n, &h) != SQ_OK);
        }
        /* trailing bytes after a message are ignored */
        uint8_t *big = calloc(1, m.len + 9);
        memcpy(big, m.buf, m.len);
        assert_int_equal(dec_both(big, m.len + 9, m.rows, m.cols), SQ_OK);
        free(big);
        free(m.buf);
    }
}

static void test_header_fields(void **state)
{
    (void)state;
    msgcase_t m = make(SQ_CODEC_CSR, 8, 0, 0, 0.3);
    uint16_t v2 = 2;
    expect_patched(&m, SQ_HDR_VERSION, &v2, 2, SQ_ERR_VERSION);
    uint16_t hs = 72;
    expect_patched(&m, SQ_HDR_HEADER_SIZE, &hs, 2, SQ_ERR_FORMAT);
    patch8(&m, SQ_HDR_ENCODING, 7, SQ_ERR_FORMAT);
    patch8(&m, SQ_HDR_SRC_DTYPE, SQ_DTYPE_F16, SQ_ERR_FORMAT);
    patch8(&m, SQ_HDR_BITS, 3, SQ_ERR_FORMAT);
    patch8(&m, SQ_HDR_GRANULARITY, 2, SQ_ERR_FORMAT);
    patch8(&m, SQ_HDR_SCALE_DTYPE, SQ_DTYPE_BF16, SQ_ERR_FORMAT);
    patch8(&m, SQ_HDR_ROUNDING, 2, SQ_ERR_FORMAT);
    patch8(&m, SQ_HDR_THRESHOLD, 127, SQ_ERR_FORMAT);
    patch8(&m, SQ_HDR_OUTLIER_DTYPE, SQ_DTYPE_F16, SQ_ERR_FORMAT); /* no outliers: must be 0 */
    patch8(&m, SQ_HDR_INDEX_BYTES, 4, SQ_ERR_FORMAT);
    patch8(&m, SQ_HDR_VALUE_DTYPE, 1, SQ_ERR_FORMAT);
    patch8(&m, SQ_HDR_RESERVED, 1, SQ_ERR_FORMAT);
    patch32(&m, SQ_HDR_GROUP_SIZE, 8, SQ_ERR_FORMAT); /* per-row needs group == cols */
    patch32(&m, SQ_HDR_N_OUTLIERS, 41, SQ_ERR_FORMAT);
    patch32(&m, SQ_HDR_NNZ, 201, SQ_ERR_FORMAT);                   /* > rows * cols */
    patch32(&m, SQ_HDR_NNZ, (uint32_t)m.h.nnz + 1, SQ_ERR_FORMAT); /* payload mismatch */
    patch32(&m, SQ_HDR_PAYLOAD_LEN, (uint32_t)m.h.payload_len + 8, SQ_ERR_FORMAT);
    patch32(&m, SQ_HDR_PAYLOAD_LEN, (uint32_t)m.h.payload_len - 8, SQ_ERR_FORMAT);
    patch32(&m, SQ_HDR_ROWS, 0, SQ_ERR_FORMAT);
    patch32(&m, SQ_HDR_ROWS, 1u << 31, SQ_ERR_FORMAT); /* payload length no longer fits */
    /* the caller's buffer does not match the shape */
    assert_int_equal(dec_both(m.buf, m.len, m.rows + 1, m.cols), SQ_ERR_RANGE);
    assert_int_equal(dec_both(m.buf, m.len, m.rows, m.cols - 1), SQ_ERR_RANGE);
    float y[5 * 40];
    assert_int_equal(sq_codec_decode(m.buf, m.len, y, 5, 40, 39), SQ_ERR_INVALID_ARG);
    assert_int_equal(sq_codec_decode(m.buf, m.len, NULL, 5, 40, 40), SQ_ERR_INVALID_ARG);
    /* a bad checksum, everything else intact */
    uint8_t *c = malloc(m.len);
    memcpy(c, m.buf, m.len);
    c[SQ_HDR_CHECKSUM] ^= 0x10;
    assert_int_equal(dec_both(c, m.len, m.rows, m.cols), SQ_ERR_CHECKSUM);
    assert_non_null(strstr(sq_error_last(), "checksum"));
    free(c);
    free(m.buf);
}

static void test_csr_structure(void **state)
{
    (void)state;
    msgcase_t m = make(SQ_CODEC_CSR, 8, 0, 0, 0.3);
    const size_t rp = m.l.off_struct, ix = m.l.off_indices;
    uint32_t p1 = sq_ld32(m.buf + rp + 4), p2 = sq_ld32(m.buf + rp + 8);
    assert_true(p1 > 1 && p2 > p1);
    patch32(&m, rp, 1, SQ_ERR_FORMAT);                             /* first != 0 */
    patch32(&m, rp + 4, p2 + 1, SQ_ERR_FORMAT);                    /* non-monotone */
    patch32(&m, rp + 4 * 5, (uint32_t)m.h.nnz - 1, SQ_ERR_FORMAT); /* last != nnz */
    patch32(&m, rp + 4 * 3, (uint32_t)m.h.nnz + 1, SQ_ERR_FORMAT); /* beyond nnz */
    uint16_t c0 = sq_ld16(m.buf + ix), c1 = sq_ld16(m.buf + ix + 2);
    uint16_t bad = 40;
    expect_patched(&m, ix + 2, &bad, 2, SQ_ERR_RANGE); /* column out of range */
    bad = 0xffff;
    expect_patched(&m, ix, &bad, 2, SQ_ERR_RANGE);
    expect_patched(&m, ix + 2, &c0, 2, SQ_ERR_FORMAT); /* duplicate */
    uint16_t sw[2] = {c1, c0};
    expect_patched(&m, ix, sw, 4, SQ_ERR_FORMAT);      /* decreasing */
    patch8(&m, m.l.off_codes, 0, SQ_ERR_RANGE);        /* zero code in the list */
    patch8(&m, m.l.off_codes + 1, 0x80, SQ_ERR_RANGE); /* -128 */
    if (m.l.off_struct + m.l.len_struct < m.l.off_codes)
        patch8(&m, m.l.off_codes - 1, 1, SQ_ERR_FORMAT); /* structure padding */
    free(m.buf);

    /* 4-bit codes: nibble 0x8 is -8, outside +-7 */
    m = make(SQ_CODEC_CSR, 4, 0, 0, 0.3);
    uint8_t b0 = m.buf[m.l.off_codes];
    patch8(&m, m.l.off_codes, (uint8_t)((b0 & 0xf0) | 0x8), SQ_ERR_RANGE);
    patch8(&m, m.l.off_codes, (uint8_t)(b0 & 0xf0), SQ_ERR_RANGE); /* zero */
    free(m.buf);
}

static void test_bitmap_structure(void **state)
{
    (void)state;
    msgcase_t m = make(SQ_CODEC_BITMAP, 2, 0, 0, 0.3);
    const size_t bm = m.l.off_struct;
    /* find a set and a clear bit */
    size_t set = 0, clr = 0;
    while (!((m.buf[bm + set / 8] >> (set % 8)) & 1))
        set++;
    while ((m.buf[bm + clr / 8] >> (clr % 8)) & 1)
        clr++;
    patch8(&m, bm + clr / 8, (uint8_t)(m.buf[bm + clr / 8] | (1u << (clr % 8))), SQ_ERR_FORMAT);
    patch8(&m, bm + set / 8, (uint8_t)(m.buf[bm + set / 8] & ~(1u << (set % 8))), SQ_ERR_FORMAT);
    /* 200 bits = 25 bytes, padded to 32: padding bytes must be zero */
    patch8(&m, bm + 26, 1, SQ_ERR_FORMAT);
    /* 2-bit code 0b10 is -2: outside +-1; 0b00 is a zero code */
    uint8_t c = m.buf[m.l.off_codes];
    patch8(&m, m.l.off_codes, (uint8_t)((c & 0xfc) | 2), SQ_ERR_RANGE);
    patch8(&m, m.l.off_codes, (uint8_t)(c & 0xfc), SQ_ERR_RANGE);
    /* bits after the last code */
    uint64_t endbit = m.h.nnz * 2;
    if (endbit % 8) {
        size_t at = m.l.off_codes + endbit / 8;
        patch8(&m, at, (uint8_t)(m.buf[at] | 0x80), SQ_ERR_FORMAT);
    }
    free(m.buf);

    /* a bitmap whose size is not a multiple of 8 bits: padding bits */
    float x[3 * 7] = {1, 0, 0, 2, 0, 0, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 5};
    sq_codec_params_t p = sq_codec_params_default();
    p.encoding = SQ_CODEC_BITMAP;
    msgcase_t o;
    o.rows = 3;
    o.cols = 7;
    o.buf = ct_encode(&p, x, 3, 7, 7, &o.len, NULL);
    SQ_CHECK(sq_codec_peek(o.buf, o.len, &o.h));
    sq_codec_layout(&o.h, &o.l);
    size_t last = o.l.off_struct + 2; /* bits 16..20 used, 21..23 padding */
    patch8(&o, last, (uint8_t)(o.buf[last] | 0x80), SQ_ERR_FORMAT);
    free(o.buf);
}

static void test_dense_and_side_sections(void **state)
{
    (void)state;
    msgcase_t m = make(SQ_CODEC_DENSE, 8, 1, 0, 0.3);
    /* -128 */
    size_t first_nz = m.l.off_codes;
    while (!m.buf[first_nz] || first_nz == m.l.off_codes + 2 || first_nz == m.l.off_codes + 30)
        first_nz++;
    patch8(&m, first_nz, 0x80, SQ_ERR_RANGE);
    patch8(&m, first_nz, 0, SQ_ERR_FORMAT);          /* nnz no longer matches */
    patch8(&m, m.l.off_codes + 2, 5, SQ_ERR_FORMAT); /* code at an outlier column */
    /* scales: NaN, Inf, negative, -0 */
    const uint32_t bad_scales[] = {0x7fc00000u, 0x7f800000u, 0xbf800000u, 0x80000000u,
                                   0x7f7fffffu /* 127 * s overflows */};
    for (int i = 0; i < 5; i++)
        patch32(&m, m.l.off_scales + 4, bad_scales[i], SQ_ERR_RANGE);
    /* outliers: column out of range, not increasing, value not finite */
    patch32(&m, m.l.off_outliers + 4, 40, SQ_ERR_RANGE);
    patch32(&m, m.l.off_outliers + 4, 2, SQ_ERR_FORMAT);
    patch32(&m, m.l.off_outlier_vals + 12, 0x7f800000u, SQ_ERR_RANGE);
    /* padding after the scales (5 fp32 scales = 20 bytes, padded to 24) */
    patch8(&m, m.l.off_scales + 21, 1, SQ_ERR_FORMAT);
    free(m.buf);

    /* outlier section padding: 2 columns + 5 x 2 fp16 values = 28 bytes -> 32 */
    {
        float xo[5 * 40];
        ct_fill_sparse(xo, 5, 40, 40, 0.3, 2.0f, 3);
        sq_codec_params_t po = sq_codec_params_default();
        po.encoding = SQ_CODEC_DENSE;
        po.outlier_cols = k_outl;
        po.n_outliers = 2;
        po.outlier_dtype = SQ_DTYPE_F16;
        msgcase_t o;
        o.rows = 5;
        o.cols = 40;
        o.buf = ct_encode(&po, xo, 5, 40, 40, &o.len, NULL);
        SQ_CHECK(sq_codec_peek(o.buf, o.len, &o.h));
        sq_codec_layout(&o.h, &o.l);
        assert_int_equal(o.l.len_outliers, 28);
        patch8(&o, o.l.off_outliers + 29, 1, SQ_ERR_FORMAT);
        const uint16_t inf16 = 0x7c00u;
        expect_patched(&o, o.l.off_outlier_vals + 2, &inf16, 2, SQ_ERR_RANGE);
        free(o.buf);
    }

    /* fp16 scales per group of 8 */
    m = make(SQ_CODEC_DENSE, 4, 0, 1, 0.3);
    const uint16_t bad16[] = {0x7c00u, 0x7e00u, 0xbc00u, 0x8000u};
    for (int i = 0; i < 4; i++)
        expect_patched(&m, m.l.off_scales + 2 * 3, &bad16[i], 2, SQ_ERR_RANGE);
    free(m.buf);

    /* threshold: a code under the threshold is invalid */
    float x[2 * 16];
    ct_fill_smooth(x, 2, 16, 16, 1.0f, 3);
    sq_codec_params_t p = sq_codec_params_default();
    p.encoding = SQ_CODEC_DENSE;
    p.threshold = 3;
    msgcase_t t;
    t.rows = 2;
    t.cols = 16;
    t.buf = ct_encode(&p, x, 2, 16, 16, &t.len, NULL);
    SQ_CHECK(sq_codec_peek(t.buf, t.len, &t.h));
    sq_codec_layout(&t.h, &t.l);
    size_t z = t.l.off_codes;
    while (t.buf[z])
        z++;
    patch8(&t, z, 3, SQ_ERR_RANGE);
    patch8(&t, z, (uint8_t)-2, SQ_ERR_RANGE);
    free(t.buf);
}

/* Random multi-byte damage, resealed so the structure checks are reached:
 * never a crash, and both decoders agree. */
static void test_random_damage(void **state)
{
    (void)state;
    uint64_t s = 2024;
    int ok = 0, total = 0;
    for (size_t e = 0; e < 4; e++)
        for (int bits = 8; bits >= 2; bits /= 2)
            for (int variant = 0; variant < 4; variant++) {
                msgcase_t m =
                    make(k_encs[e], bits, variant & 1, variant >> 1, 0.05 + 0.3 * variant);
                uint8_t *c = malloc(m.len);
                for (int it = 0; it < 600; it++) {
                    memcpy(c, m.buf, m.len);
                    int nflips = 1 + (int)(ct_rand(&s) % 3);
                    for (int f = 0; f < nflips; f++) {
                        size_t at = (size_t)(ct_rand(&s) % m.len);
                        if (it % 3 == 0 && at < 64) at += 64; /* mostly the payload */
                        if (at >= m.len) at = m.len - 1;
                        c[at] ^= (uint8_t)(1u << (ct_rand(&s) % 8));
                    }
                    sq_codec_reseal(c, m.len);
                    ok += dec_both_mode(c, m.len, m.rows, m.cols, 0) == SQ_OK;
                    total++;
                }
                free(c);
                free(m.buf);
            }
    print_message("%d of %d damaged messages still decode (resealed)\n", ok, total);
}

/* The committed seed corpus is made of valid messages of every encoding. */
static void test_corpus_valid(void **state)
{
    (void)state;
    const char *dir = SQ_REPO_DIR "/tests/codec/corpus";
    DIR *d = opendir(dir);
    assert_non_null(d);
    int files = 0, seen[SQ_CODEC_ENCODING_COUNT] = {0};
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        static uint8_t buf[16384];
        size_t n = fread(buf, 1, sizeof buf, f);
        assert_true(feof(f) || fgetc(f) == EOF); /* < 16 KiB */
        fclose(f);
        sq_codec_header_t h;
        if (sq_codec_peek(buf, n, &h) != SQ_OK) fail_msg("%s: %s", path, sq_error_last());
        assert_int_equal(dec_both(buf, n, h.rows, h.cols), SQ_OK);
        seen[h.encoding]++;
        files++;
    }
    closedir(d);
    assert_true(files >= 10);
    for (int i = 0; i <= SQ_CODEC_LOSSLESS; i++)
        assert_true(seen[i] > 0);
}

/* sq_codec_check: the header and checksum a receiver verifies on its host
 * copy before the payload goes to the GPU decoder. */
static void test_check(void **state)
{
    (void)state;
    for (size_t e = 0; e < 4; e++) {
        msgcase_t m = make(k_encs[e], 4, 0, 0, 0.3);
        sq_codec_header_t h, hp;
        memset(&h, 0, sizeof h);
        assert_int_equal(sq_codec_check(m.buf, m.len, &h), SQ_OK);
        assert_int_equal(sq_codec_peek(m.buf, m.len, &hp), SQ_OK);
        assert_memory_equal(&h, &hp, sizeof h);
        /* a flipped payload byte: only the checksum can tell, hdr untouched */
        for (size_t i = SQ_CODEC_HEADER_SIZE; i < m.len; i += 7) {
            m.buf[i] ^= 0x20;
            sq_codec_header_t h2 = hp;
            h2.tag = 12345;
            assert_int_equal(sq_codec_check(m.buf, m.len, &h2), SQ_ERR_CHECKSUM);
            assert_int_equal(h2.tag, 12345);
            assert_non_null(strstr(sq_error_last(), "checksum"));
            m.buf[i] ^= 0x20;
        }
        /* a flipped checksum byte */
        m.buf[SQ_HDR_CHECKSUM + 2] ^= 1;
        assert_int_equal(sq_codec_check(m.buf, m.len, &h), SQ_ERR_CHECKSUM);
        m.buf[SQ_HDR_CHECKSUM + 2] ^= 1;
        /* truncated anywhere: the header's framing fails first */
        for (size_t n = 0; n < m.len; n++)
            assert_int_equal(sq_codec_check(m.buf, n, &h), SQ_ERR_FORMAT);
        assert_int_equal(sq_codec_check(m.buf, m.len, &h), SQ_OK);
        assert_int_equal(sq_codec_check(NULL, m.len, &h), SQ_ERR_INVALID_ARG);
        assert_int_equal(sq_codec_check(m.buf, m.len, NULL), SQ_ERR_INVALID_ARG);
        free(m.buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flip_every_byte),  cmocka_unit_test(test_truncate_everywhere),
        cmocka_unit_test(test_header_fields),    cmocka_unit_test(test_csr_structure),
        cmocka_unit_test(test_bitmap_structure), cmocka_unit_test(test_dense_and_side_sections),
        cmocka_unit_test(test_random_damage),    cmocka_unit_test(test_corpus_valid),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

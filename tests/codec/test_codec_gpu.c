/* The GPU codec against the CPU codec (include/sparq/codec_gpu.h):
 *
 *  (a) encode: GPU message, resealed on the host, == the CPU's bytes, same
 *      size and stats, same status when the CPU refuses (NaN rows, fp16
 *      overflow); nothing written past the message.
 *  (b) decode: a CPU message checked with sq_codec_check, decoded on the GPU,
 *      == sq_codec_decode bit for bit, cells outside rows x cols untouched;
 *      CSR messages also through sq_codec_gpu_decode_csr.
 *  (c) corruption: payload bytes flipped (then resealed, so only the device
 *      checks can catch them) and hostile CSR/bitmap structures: the GPU
 *      fails iff the CPU fails and never writes outside y. The status class
 *      is compared loosely: with one fault both name the same check almost
 *      always, but the GPU reports the first check of FORMAT.md's table that
 *      fails while the CPU walks row by row, so a fault that breaks two
 *      checks (a flipped row pointer that also misplaces codes) may be
 *      FORMAT on one side and RANGE on the other. Mismatches are counted and
 *      printed; only FORMAT/RANGE are accepted from the GPU.
 *  (d) errors: NaN/Inf (naming the first in row-major order), outliers,
 *      small caps, bad arguments, a too-small workspace.
 *
 * Exit 77 (skipped) when no CUDA device is visible. SQ_GPU_TEST_QUICK=1
 * runs a reduced grid (for slow emulated runs). */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "codec_test_util.h"
#include "sparq/backend.h"
#include "sparq/codec.h"
#include "sparq/codec_gpu.h"

#define GUARD 256
#define POISON 0x5a

static int failures, checks, class_mismatch;
static int quick;

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "FATAL %s:%d: %s: %s\n", __FILE__, __LINE__, #call,                    \
                    cudaGetErrorString(e_));                                                       \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void failf(const char *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(const char *ctx, const char *fmt, ...)
{
    failures++;
    if (failures > 60) return;
    fprintf(stderr, "FAIL [%s]: ", ctx);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

#define EXPECT(ctx, cond, ...)                                                                     \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) failf((ctx), __VA_ARGS__);                                                    \
    } while (0)

/* ---- fixture: one workspace and device buffers sized for the largest case ---- */

typedef struct fixture {
    sq_codec_gpu_t *g;
    cudaStream_t stream;
    float *dx;      /* input, MAX_ELEMS_LD floats */
    uint8_t *dmsg;  /* message, MSG_BYTES + GUARD */
    float *dy;      /* output, MAX_ELEMS_LD floats + GUARD */
    int32_t *drp, *dci; /* decode_csr arrays */
    float *dval;
} fixture_t;

#define MAX_ROWS 4096
#define MAX_ELEMS (1 << 20)
#define MAX_ELEMS_LD (MAX_ELEMS + 4 * MAX_ROWS)
#define MSG_BYTES ((size_t)8 * MAX_ELEMS + (1 << 16))

static fixture_t fx;

static void fixture_init(void)
{
    SQ_CHECK(sq_codec_gpu_create(MAX_ROWS, MAX_ELEMS, &fx.g));
    CK(cudaStreamCreate(&fx.stream));
    CK(cudaMalloc((void **)&fx.dx, sizeof(float) * MAX_ELEMS_LD));
    CK(cudaMalloc((void **)&fx.dmsg, MSG_BYTES + GUARD));
    CK(cudaMalloc((void **)&fx.dy, sizeof(float) * MAX_ELEMS_LD + GUARD));
    CK(cudaMalloc((void **)&fx.drp, sizeof(int32_t) * (MAX_ROWS + 1)));
    CK(cudaMalloc((void **)&fx.dci, sizeof(int32_t) * MAX_ELEMS));
    CK(cudaMalloc((void **)&fx.dval, sizeof(float) * MAX_ELEMS));
}

static void fixture_fini(void)
{
    cudaFree(fx.dval);
    cudaFree(fx.dci);
    cudaFree(fx.drp);
    cudaFree(fx.dy);
    cudaFree(fx.dmsg);
    cudaFree(fx.dx);
    cudaStreamDestroy(fx.stream);
    sq_codec_gpu_destroy(fx.g);
}

/* ---- inputs ---- */

enum { K_ZERO, K_SPARSE, K_ACT, K_SMOOTH, K_TIES, K_EXTREME, K_COUNT };
static const char *const k_kind_names[K_COUNT] = {"zero",   "sparse", "act",
                                                  "smooth", "ties",   "extreme"};

static float gauss(uint64_t *s)
{
    return (float)(ct_uniform(s) + ct_uniform(s) + ct_uniform(s) - 1.5) * 2.0f;
}

/* x [rows, ld]; cells past cols hold a poison value the encoder must not read. */
static void fill(float *x, int64_t rows, int64_t cols, int64_t ld, int kind, uint64_t seed)
{
    uint64_t s = seed;
    switch (kind) {
    case K_SPARSE: ct_fill_sparse(x, rows, cols, ld, 0.05, 1.0f, seed); return;
    case K_SMOOTH: ct_fill_smooth(x, rows, cols, ld, 2.0f, seed); return;
    default: break;
    }
    static const float act_amp[] = {1.0f, 3e-3f, 1e-20f, 2e4f};
    static const float ext_amp[] = {1e30f, 3.0e38f, 1e-40f, 7.5e4f, 1.0f};
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < ld; c++) {
            float v = 0.0f;
            double u = ct_uniform(&s);
            if (c >= cols) {
                v = 12345.0f;
            } else if (kind == K_ZERO) {
                v = (u < 0.3) ? -0.0f : 0.0f;
            } else if (kind == K_ACT) {
                float amp = act_amp[r % 4];
                if (u < 0.45)
                    v = u < 0.05 ? -0.0f : 0.0f;
                else if (u < 0.70)
                    v = amp * 1e-4f * gauss(&s); /* quantizes to 0 */
                else if (u < 0.71)
                    v = (u < 0.705 ? 1e-41f : -3e-39f); /* subnormals */
                else
                    v = amp * gauss(&s);
            } else if (kind == K_TIES) {
                /* per-row 8-bit: absmax 127 gives s = 1 and x / s = k + 0.5 ties */
                v = c == 0 ? 127.0f : (float)((int)(c % 33) - 16) * 0.5f;
                if (r & 1) v = -v;
            } else { /* K_EXTREME: huge, FLT_MAX-near, subnormal and fp16-overflow rows */
                float amp = ext_amp[r % 5];
                v = amp * (float)(ct_uniform(&s) * 2.0 - 1.0);
                if (c == 1 && r % 5 == 1) v = 3.4028235e38f; /* FLT_MAX: the capped fp32 scale */
            }
            x[r * ld + c] = v;
        }
}

/* ---- helpers ---- */

static const char *section_of(const uint8_t *msg, size_t off)
{
    sq_codec_header_t h;
    if (off < SQ_CODEC_HEADER_SIZE) return "header";
    if (sq_codec_peek(msg, SIZE_MAX, &h) != SQ_OK) return "?";
    sq_codec_layout_t l;
    sq_codec_layout(&h, &l);
    if (off >= l.off_codes) return off < l.off_codes + l.len_codes ? "codes" : "codes padding";
    if (off >= l.off_struct) return off < l.off_struct + l.len_struct ? "structure" : "structure padding";
    if (off >= l.off_outliers) return "outliers";
    return off < l.off_scales + l.len_scales ? "scales" : "scales padding";
}

static void params_name(const sq_codec_params_t *p, char *out, size_t n)
{
    snprintf(out, n, "%s b%d %s%u %s %s t%u", sq_codec_encoding_name(p->encoding), p->bits,
             p->granularity == SQ_CODEC_PER_GROUP ? "G" : "row", p->group_size,
             p->scale_dtype == SQ_DTYPE_F16 ? "f16" : "f32",
             p->rounding == SQ_CODEC_ROUND_STOCHASTIC ? "stoch" : "near", p->threshold);
}

/* GPU decode of a (checked) host message into y [rows, ld = cols + 1] with
 * poisoned padding; returns the status and the output in *yout (rows*ld +
 * GUARD/4 floats, caller frees). Checks that the column past cols and the
 * guard are untouched whatever the status. */
static sq_status_t gpu_decode(const char *ctx, const uint8_t *msg, size_t len, int64_t rows,
                              int64_t cols, float **yout)
{
    const int64_t ld = cols + 1;
    const size_t ny = (size_t)(rows * ld), bytes = ny * 4 + GUARD;
    sq_codec_header_t h;
    sq_status_t st = sq_codec_check(msg, len, &h);
    if (st != SQ_OK) {
        failf(ctx, "sq_codec_check refused a message: %s: %s", sq_status_string(st),
              sq_error_last());
        return st;
    }
    /* an exact-size copy: compute-sanitizer (or the host emulation under
     * ASan) sees any read past the message */
    uint8_t *dm = NULL;
    CK(cudaMalloc((void **)&dm, len));
    CK(cudaMemcpy(dm, msg, len, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(fx.dmsg, msg, len, cudaMemcpyHostToDevice)); /* for decode_csr */
    CK(cudaMemset(fx.dy, POISON, bytes));
    st = sq_codec_gpu_decode(fx.g, &h, dm, fx.dy, rows, cols, ld, fx.stream);
    CK(cudaStreamSynchronize(fx.stream));
    CK(cudaFree(dm));
    float *y = malloc(bytes);
    CK(cudaMemcpy(y, fx.dy, bytes, cudaMemcpyDeviceToHost));
    const uint8_t *gb = (const uint8_t *)(y + ny);
    int bad = 0;
    for (size_t i = 0; i < GUARD; i++)
        bad |= gb[i] != POISON;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *pc = (const uint8_t *)&y[r * ld + cols];
        bad |= pc[0] != POISON || pc[1] != POISON || pc[2] != POISON || pc[3] != POISON;
    }
    EXPECT(ctx, !bad, "GPU decode (%s) wrote outside the rows x cols cells", sq_status_string(st));
    *yout = y;
    return st;
}

static float *cpu_decode(const uint8_t *msg, size_t len, int64_t rows, int64_t cols,
                         sq_status_t *st)
{
    const int64_t ld = cols + 1;
    const size_t bytes = (size_t)(rows * ld) * 4 + GUARD;
    float *y = malloc(bytes);
    memset(y, POISON, bytes);
    *st = sq_codec_decode(msg, len, y, rows, cols, ld);
    return y;
}

/* (b) for one valid message; also decode_csr for CSR. */
static void check_decode(const char *ctx, const uint8_t *msg, size_t len, int64_t rows,
                         int64_t cols)
{
    sq_status_t sc, sg;
    float *yc = cpu_decode(msg, len, rows, cols, &sc);
    float *yg = NULL;
    sg = gpu_decode(ctx, msg, len, rows, cols, &yg);
    EXPECT(ctx, sc == SQ_OK && sg == SQ_OK, "decode of a valid message: cpu %s, gpu %s (%s)",
           sq_status_string(sc), sq_status_string(sg), sq_error_last());
    if (sc == SQ_OK && sg == SQ_OK && yg) {
        const size_t n = (size_t)(rows * (cols + 1));
        if (memcmp(yc, yg, n * 4) != 0) {
            for (size_t i = 0; i < n; i++)
                if (memcmp(&yc[i], &yg[i], 4)) {
                    failf(ctx, "decoded value differs at row %zu col %zu: cpu %a gpu %a",
                          i / (size_t)(cols + 1), i % (size_t)(cols + 1), (double)yc[i],
                          (double)yg[i]);
                    break;
                }
        } else {
            checks++;
        }
    }
    sq_codec_header_t h;
    if (sc == SQ_OK && sq_codec_peek(msg, len, &h) == SQ_OK && h.encoding == SQ_CODEC_CSR) {
        sq_status_t sa = sq_codec_gpu_decode_csr(fx.g, &h, fx.dmsg, fx.drp, fx.dci, fx.dval,
                                                 fx.stream);
        CK(cudaStreamSynchronize(fx.stream));
        EXPECT(ctx, sa == SQ_OK, "decode_csr: %s: %s", sq_status_string(sa), sq_error_last());
        if (sa == SQ_OK) {
            int32_t *rp = malloc(sizeof(int32_t) * (size_t)(rows + 1));
            int32_t *ci = malloc(sizeof(int32_t) * (h.nnz ? h.nnz : 1));
            float *val = malloc(sizeof(float) * (h.nnz ? h.nnz : 1));
            CK(cudaMemcpy(rp, fx.drp, sizeof(int32_t) * (size_t)(rows + 1),
                          cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(ci, fx.dci, sizeof(int32_t) * h.nnz, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(val, fx.dval, sizeof(float) * h.nnz, cudaMemcpyDeviceToHost));
            /* scatter into a zero matrix and compare with the CPU's y */
            const int64_t ld = cols + 1;
            float *ys = calloc((size_t)(rows * ld), sizeof(float));
            int ok = rp[0] == 0 && (uint64_t)rp[rows] == h.nnz;
            for (int64_t r = 0; ok && r < rows; r++)
                for (int32_t k = rp[r]; ok && k < rp[r + 1]; k++) {
                    ok = ci[k] >= 0 && ci[k] < cols && (k == rp[r] || ci[k] > ci[k - 1]);
                    if (ok) ys[r * ld + ci[k]] = val[k];
                }
            for (int64_t r = 0; ok && r < rows; r++)
                ok = memcmp(ys + r * ld, yc + r * ld, (size_t)cols * 4) == 0;
            EXPECT(ctx, ok, "decode_csr arrays disagree with the CPU decode");
            free(ys);
            free(val);
            free(ci);
            free(rp);
        }
    }
    free(yc);
    free(yg);
}

/* (a) one encode on both sides; returns the CPU message (or NULL) for (b)/(c).
 * The GPU side runs as begin, then x overwritten with NaNs on the same
 * stream (as the next forward would), then end: nothing after begin may
 * read x. */
static uint8_t *check_encode(const char *ctx, const sq_codec_params_t *p, const float *x,
                             int64_t rows, int64_t cols, int64_t ld, size_t cap, size_t *len_out)
{
    uint8_t *cbuf = malloc(cap ? cap : 1);
    size_t clen = 0, glen = 0;
    sq_codec_stats_t cs, gs;
    memset(&cs, 0, sizeof cs);
    memset(&gs, 0, sizeof gs);
    sq_status_t sc = sq_codec_encode(p, x, rows, cols, ld, cbuf, cap, &clen, &cs);
    char cmsg[512];
    snprintf(cmsg, sizeof cmsg, "%s", sq_error_last());

    CK(cudaMemcpy(fx.dx, x, sizeof(float) * (size_t)(rows * ld), cudaMemcpyHostToDevice));
    /* garbage the encoder must overwrite (or leave alone past the message) */
    CK(cudaMemset(fx.dmsg, 0xA5, cap + 64 < MSG_BYTES ? cap + 64 : MSG_BYTES));
    sq_status_t sg = sq_codec_gpu_encode_begin(fx.g, p, fx.dx, rows, cols, ld, fx.dmsg, cap,
                                               fx.stream);
    if (sg == SQ_OK) {
        CK(cudaMemsetAsync(fx.dx, 0xff, sizeof(float) * (size_t)(rows * ld), fx.stream));
        sg = sq_codec_gpu_encode_end(fx.g, &glen, &gs);
    }
    CK(cudaStreamSynchronize(fx.stream));
    EXPECT(ctx, sc == sg, "status: cpu %s (%s), gpu %s (%s)", sq_status_string(sc), cmsg,
           sq_status_string(sg), sq_error_last());
    if (sc != SQ_OK || sg != SQ_OK) {
        free(cbuf);
        return NULL;
    }
    EXPECT(ctx, clen == glen, "size: cpu %zu gpu %zu", clen, glen);
    EXPECT(ctx, cs.encoding == gs.encoding && cs.nnz == gs.nnz && cs.bytes_total == gs.bytes_total,
           "stats: cpu %s nnz %llu, gpu %s nnz %llu", sq_codec_encoding_name(cs.encoding),
           (unsigned long long)cs.nnz, sq_codec_encoding_name(gs.encoding),
           (unsigned long long)gs.nnz);
    if (clen == glen) {
        uint8_t *gbuf = malloc(glen + 64);
        CK(cudaMemcpy(gbuf, fx.dmsg, glen + 64, cudaMemcpyDeviceToHost));
        int tail_ok = 1;
        for (size_t i = glen; i < glen + 64; i++)
            tail_ok &= gbuf[i] == 0xA5;
        EXPECT(ctx, tail_ok, "GPU encode wrote past the %zu-byte message", glen);
        uint32_t ck;
        memcpy(&ck, gbuf + SQ_HDR_CHECKSUM, 4);
        EXPECT(ctx, ck == 0, "GPU checksum field is 0x%08x, not 0", ck);
        SQ_CHECK(sq_codec_reseal(gbuf, glen));
        if (memcmp(cbuf, gbuf, glen) != 0) {
            /* name the first difference outside the checksum field (which
             * differs whenever anything else does) */
            size_t i = glen;
            for (size_t j = 0; j < glen && i == glen; j++)
                if (cbuf[j] != gbuf[j] && (j < SQ_HDR_CHECKSUM || j >= SQ_HDR_CHECKSUM + 4)) i = j;
            if (i == glen) i = SQ_HDR_CHECKSUM; /* only the checksum differs */
            failf(ctx, "bytes differ at %zu of %zu (%s): cpu %02x gpu %02x", i, glen,
                  section_of(cbuf, i), cbuf[i], gbuf[i]);
        } else {
            checks++;
        }
        free(gbuf);
    }
    *len_out = clen;
    return cbuf;
}

/* ---- (a) + (b): the grid ---- */

typedef struct shape {
    int64_t rows, cols;
} shape_t;

static void test_grid(void)
{
    static const shape_t shapes[] = {{1, 1},   {3, 7},     {17, 100}, {9, 192},
                                     {64, 4096}, {5, 70000}, {2, 65536}};
    const int nshapes = quick ? 4 : (int)(sizeof shapes / sizeof shapes[0]);
    static const sq_codec_encoding_t encs[] = {SQ_CODEC_DENSE, SQ_CODEC_BITMAP, SQ_CODEC_CSR,
                                               SQ_CODEC_AUTO};
    int ncases = 0;
    for (int si = 0; si < nshapes; si++) {
        const int64_t R = shapes[si].rows, C = shapes[si].cols;
        const int64_t ld = (si & 1) ? C + 3 : C;
        const int big = R * C > 100000;
        float *x = malloc(sizeof(float) * (size_t)(R * ld));
        for (int kind = 0; kind < K_COUNT; kind++) {
            if (big && kind != K_ACT && kind != K_SPARSE) continue;
            if (quick && kind != K_ACT && kind != K_EXTREME && kind != K_TIES) continue;
            fill(x, R, C, ld, kind, 1000u * (uint64_t)si + (uint64_t)kind);
            /* lossless, both value dtypes */
            for (int lf = 0; lf < 2; lf++) {
                sq_codec_params_t p = sq_codec_params_default();
                p.encoding = SQ_CODEC_LOSSLESS;
                p.lossless_dtype = lf ? SQ_DTYPE_F16 : SQ_DTYPE_F32;
                char ctx[160];
                snprintf(ctx, sizeof ctx, "%lldx%lld %s lossless %s", (long long)R, (long long)C,
                         k_kind_names[kind], lf ? "f16" : "f32");
                size_t len = 0;
                uint8_t *m = check_encode(ctx, &p, x, R, C, ld, sq_codec_max_size(&p, R, C), &len);
                if (m) check_decode(ctx, m, len, R, C);
                free(m);
                ncases++;
            }
            for (int bits = 8; bits >= 2; bits /= 2)
                for (int gi = 0; gi < 4; gi++) {
                    static const uint32_t gsz[] = {0, 32, 64, 16};
                    uint32_t G = gsz[gi];
                    if (G && (C % G != 0)) continue;
                    if (G == 16 && (C % 32 == 0)) continue; /* 16 only where 32 does not fit */
                    for (int f16 = 0; f16 < 2; f16++)
                        for (int sto = 0; sto < 2; sto++)
                            for (uint32_t thr = 0; thr < 2; thr++) {
                                if (thr >= (uint32_t)((1 << (bits - 1)) - 1)) continue;
                                if (quick && (sto + thr + f16) > 1) continue;
                                for (int e = 0; e < 4; e++) {
                                    sq_codec_params_t p = sq_codec_params_default();
                                    p.encoding = encs[e];
                                    p.bits = bits;
                                    if (G) {
                                        p.granularity = SQ_CODEC_PER_GROUP;
                                        p.group_size = G;
                                    }
                                    p.scale_dtype = f16 ? SQ_DTYPE_F16 : SQ_DTYPE_F32;
                                    if (sto) {
                                        p.rounding = SQ_CODEC_ROUND_STOCHASTIC;
                                        p.seed = 0x1234567890abcdefull + (uint64_t)si;
                                        p.stream = 7u + (uint64_t)kind;
                                    }
                                    p.threshold = thr;
                                    p.tag = 0xfeedull << 32 | (uint64_t)ncases;
                                    char ctx[200], pn[96];
                                    params_name(&p, pn, sizeof pn);
                                    snprintf(ctx, sizeof ctx, "%lldx%lld ld %lld %s %s",
                                             (long long)R, (long long)C, (long long)ld,
                                             k_kind_names[kind], pn);
                                    size_t len = 0;
                                    uint8_t *m = check_encode(ctx, &p, x, R, C, ld,
                                                              sq_codec_max_size(&p, R, C), &len);
                                    if (m) check_decode(ctx, m, len, R, C);
                                    free(m);
                                    ncases++;
                                }
                            }
                }
        }
        free(x);
    }
    printf("grid: %d encode cases\n", ncases);
}

/* ---- (c) corruption ---- */

/* Decode a damaged (resealed) copy on both sides and compare. */
static void compare_damaged(const char *ctx, uint8_t *c, size_t len, int64_t rows, int64_t cols)
{
    if (sq_codec_reseal(c, len) != SQ_OK) return;
    sq_codec_header_t h;
    if (sq_codec_check(c, len, &h) != SQ_OK) return; /* header damage: host-side business */
    sq_status_t sc, sg;
    float *yc = cpu_decode(c, len, rows, cols, &sc);
    float *yg = NULL;
    sg = gpu_decode(ctx, c, len, rows, cols, &yg);
    EXPECT(ctx, (sc == SQ_OK) == (sg == SQ_OK), "cpu %s, gpu %s (%s)", sq_status_string(sc),
           sq_status_string(sg), sq_error_last());
    if (sg != SQ_OK)
        EXPECT(ctx, sg == SQ_ERR_FORMAT || sg == SQ_ERR_RANGE, "gpu status %s",
               sq_status_string(sg));
    if (sc != SQ_OK && sg != SQ_OK && sc != sg) {
        if (class_mismatch < 10)
            printf("info [%s]: status class cpu %s, gpu %s\n", ctx, sq_status_string(sc),
                   sq_status_string(sg));
        class_mismatch++;
    }
    if (sc == SQ_OK && sg == SQ_OK && yg)
        EXPECT(ctx, memcmp(yc, yg, (size_t)(rows * (cols + 1)) * 4) == 0,
               "damaged but valid message decodes differently");
    free(yc);
    free(yg);
}

static void test_corruption(void)
{
    static const shape_t shapes[] = {{3, 7}, {17, 100}, {9, 192}, {4, 70000}};
    static const sq_codec_encoding_t encs[] = {SQ_CODEC_DENSE, SQ_CODEC_BITMAP, SQ_CODEC_CSR,
                                               SQ_CODEC_LOSSLESS};
    int nmsg = 0;
    uint64_t rs = 99;
    for (int si = 0; si < (quick ? 2 : 4); si++) {
        const int64_t R = shapes[si].rows, C = shapes[si].cols;
        float *x = malloc(sizeof(float) * (size_t)(R * C));
        fill(x, R, C, C, K_ACT, 77u + (uint64_t)si);
        for (int e = 0; e < 4; e++)
            for (int bits = 8; bits >= 2; bits /= 2) {
                if (encs[e] == SQ_CODEC_LOSSLESS && bits != 8) continue;
                sq_codec_params_t p = sq_codec_params_default();
                p.encoding = encs[e];
                p.bits = bits;
                p.threshold = bits == 8 ? 1 : 0;
                if (bits == 4 && C % 32 == 0) {
                    p.granularity = SQ_CODEC_PER_GROUP;
                    p.group_size = 32;
                    p.scale_dtype = SQ_DTYPE_F16;
                }
                if (encs[e] == SQ_CODEC_LOSSLESS) p.lossless_dtype = SQ_DTYPE_F16;
                size_t cap = sq_codec_max_size(&p, R, C), len;
                uint8_t *m = malloc(cap);
                SQ_CHECK(sq_codec_encode(&p, x, R, C, C, m, cap, &len, NULL));
                char ctx[160], pn[96];
                params_name(&p, pn, sizeof pn);
                snprintf(ctx, sizeof ctx, "corrupt %lldx%lld %s", (long long)R, (long long)C, pn);
                uint8_t *c = malloc(len);
                /* every payload byte of small messages, a sample of big ones */
                const size_t step = quick ? len / 61 + 1 : len > 4096 ? len / 997 : 1;
                for (size_t i = SQ_CODEC_HEADER_SIZE; i < len; i += step)
                    for (int f = 0; f < 3; f++) {
                        static const uint8_t flips[] = {0x01, 0x80, 0xff};
                        memcpy(c, m, len);
                        c[i] ^= flips[f];
                        char cx[200];
                        snprintf(cx, sizeof cx, "%s byte %zu (%s) ^%02x", ctx, i, section_of(m, i),
                                 flips[f]);
                        compare_damaged(cx, c, len, R, C);
                    }
                /* random multi-byte damage */
                for (int t = 0; t < (quick ? 30 : 200); t++) {
                    memcpy(c, m, len);
                    int nb = 1 + (int)(ct_rand(&rs) % 8);
                    for (int b = 0; b < nb; b++) {
                        size_t i = SQ_CODEC_HEADER_SIZE +
                                   (size_t)(ct_rand(&rs) % (len - SQ_CODEC_HEADER_SIZE));
                        c[i] = (uint8_t)ct_rand(&rs);
                    }
                    char cx[200];
                    snprintf(cx, sizeof cx, "%s random damage %d", ctx, t);
                    compare_damaged(cx, c, len, R, C);
                }
                /* hostile structures */
                sq_codec_header_t h;
                SQ_CHECK(sq_codec_peek(m, len, &h));
                sq_codec_layout_t l;
                sq_codec_layout(&h, &l);
                if (h.encoding == SQ_CODEC_CSR) {
                    static const uint32_t evil[] = {0xffffffffu, 0x80000000u, 1u, 0u};
                    for (int64_t r = 0; r <= R; r++)
                        for (int v = 0; v < 4; v++) {
                            memcpy(c, m, len);
                            uint32_t val = evil[v] == 1u ? (uint32_t)h.nnz + 1 : evil[v];
                            sq_st32(c + l.off_struct + 4u * (uint64_t)r, val);
                            char cx[200];
                            snprintf(cx, sizeof cx, "%s row pointer %lld = 0x%x", ctx,
                                     (long long)r, val);
                            compare_damaged(cx, c, len, R, C);
                        }
                    for (uint64_t k = 0; k < h.nnz; k += 1 + h.nnz / 50) {
                        memcpy(c, m, len);
                        if (h.index_bytes == 2)
                            sq_st16(c + l.off_indices + 2 * k, 0xffffu);
                        else
                            sq_st32(c + l.off_indices + 4 * k, 0xffffffffu);
                        char cx[200];
                        snprintf(cx, sizeof cx, "%s column index %llu = max", ctx,
                                 (unsigned long long)k);
                        compare_damaged(cx, c, len, R, C);
                    }
                }
                if (h.encoding == SQ_CODEC_BITMAP) { /* every presence bit set */
                    memcpy(c, m, len);
                    memset(c + l.off_struct, 0xff, (size_t)l.len_struct);
                    compare_damaged(ctx, c, len, R, C);
                    memcpy(c, m, len); /* every presence bit clear */
                    memset(c + l.off_struct, 0, (size_t)l.len_struct);
                    compare_damaged(ctx, c, len, R, C);
                }
                free(c);
                free(m);
                nmsg++;
            }
        free(x);
    }
    printf("corruption: %d messages, %d status-class differences (info)\n", nmsg, class_mismatch);
}

/* ---- (d) errors ---- */

static void test_errors(void)
{
    const int64_t R = 4, C = 100;
    float x[4 * 100];
    fill(x, R, C, C, K_ACT, 5);
    CK(cudaMemcpy(fx.dx, x, sizeof x, cudaMemcpyHostToDevice));
    sq_codec_params_t p = sq_codec_params_default();
    size_t cap = sq_codec_max_size(&p, R, C), len = 0;

    /* NaN and Inf: the first in row-major order is named, in every layout */
    float xn[4 * 100];
    memcpy(xn, x, sizeof x);
    xn[2 * C + 5] = NAN;
    xn[1 * C + 90] = INFINITY;
    xn[3 * C + 0] = -INFINITY;
    CK(cudaMemcpy(fx.dx, xn, sizeof xn, cudaMemcpyHostToDevice));
    for (int e = 0; e < 4; e++) {
        p.encoding = (sq_codec_encoding_t)e == SQ_CODEC_LOSSLESS ? SQ_CODEC_AUTO
                                                                 : (sq_codec_encoding_t)e;
        p.granularity = e & 1 ? SQ_CODEC_PER_GROUP : SQ_CODEC_PER_ROW;
        p.group_size = e & 1 ? 4 : 0;
        sq_status_t st =
            sq_codec_gpu_encode(fx.g, &p, fx.dx, R, C, C, fx.dmsg, cap, &len, NULL, fx.stream);
        EXPECT("nan", st == SQ_ERR_RANGE, "NaN/Inf input: %s", sq_status_string(st));
        EXPECT("nan", strstr(sq_error_last(), "row 1, column 90") != NULL, "message: %s",
               sq_error_last());
        EXPECT("nan", strstr(sq_error_last(), "= inf") != NULL, "message: %s", sq_error_last());
    }
    /* the value is named even when x is overwritten between begin and end */
    SQ_CHECK(sq_codec_gpu_encode_begin(fx.g, &p, fx.dx, R, C, C, fx.dmsg, cap, fx.stream));
    CK(cudaMemsetAsync(fx.dx, 0, sizeof xn, fx.stream));
    sq_status_t se = sq_codec_gpu_encode_end(fx.g, &len, NULL);
    EXPECT("nan", se == SQ_ERR_RANGE && strstr(sq_error_last(), "x[1][90] = inf") != NULL,
           "after overwrite: %s: %s", sq_status_string(se), sq_error_last());
    CK(cudaMemcpy(fx.dx, xn, sizeof xn, cudaMemcpyHostToDevice));
    /* one encode in flight per workspace */
    p = sq_codec_params_default();
    CK(cudaMemcpy(fx.dx, x, sizeof x, cudaMemcpyHostToDevice));
    se = sq_codec_gpu_encode_end(fx.g, &len, NULL);
    EXPECT("begin/end", se == SQ_ERR_INVALID_ARG, "end without begin: %s", sq_status_string(se));
    SQ_CHECK(sq_codec_gpu_encode_begin(fx.g, &p, fx.dx, R, C, C, fx.dmsg, cap, fx.stream));
    se = sq_codec_gpu_encode_begin(fx.g, &p, fx.dx, R, C, C, fx.dmsg, cap, fx.stream);
    EXPECT("begin/end", se == SQ_ERR_INVALID_ARG, "second begin: %s", sq_status_string(se));
    SQ_CHECK(sq_codec_gpu_encode_end(fx.g, &len, NULL));
    CK(cudaMemcpy(fx.dx, xn, sizeof xn, cudaMemcpyHostToDevice));
    /* lossless passes them through (fp32: bit-exact, NaN payloads included) */
    xn[7] = -0.0f;
    {
        const uint32_t payload = 0x7fa00001u; /* a signalling NaN with a payload */
        memcpy(&xn[8], &payload, 4);
    }
    for (int lf = 0; lf < 2; lf++) {
        p = sq_codec_params_default();
        p.encoding = SQ_CODEC_LOSSLESS;
        p.lossless_dtype = lf ? SQ_DTYPE_F16 : SQ_DTYPE_F32;
        size_t l2 = 0;
        uint8_t *m = check_encode(lf ? "nan lossless f16" : "nan lossless f32", &p, xn, R, C, C,
                                  sq_codec_max_size(&p, R, C), &l2);
        if (m) check_decode(lf ? "nan lossless f16" : "nan lossless f32", m, l2, R, C);
        free(m);
    }
    CK(cudaMemcpy(fx.dx, x, sizeof x, cudaMemcpyHostToDevice));

    /* outliers: unsupported on the GPU */
    p = sq_codec_params_default();
    const uint32_t oc[] = {3, 50};
    p.outlier_cols = oc;
    p.n_outliers = 2;
    sq_status_t st =
        sq_codec_gpu_encode(fx.g, &p, fx.dx, R, C, C, fx.dmsg, cap, &len, NULL, fx.stream);
    EXPECT("outliers", st == SQ_ERR_UNSUPPORTED, "encode with outliers: %s", sq_status_string(st));
    {
        uint8_t *m = malloc(sq_codec_max_size(&p, R, C));
        size_t ml;
        SQ_CHECK(sq_codec_encode(&p, x, R, C, C, m, sq_codec_max_size(&p, R, C), &ml, NULL));
        sq_codec_header_t h;
        SQ_CHECK(sq_codec_check(m, ml, &h));
        CK(cudaMemcpy(fx.dmsg, m, ml, cudaMemcpyHostToDevice));
        st = sq_codec_gpu_decode(fx.g, &h, fx.dmsg, fx.dy, R, C, C, fx.stream);
        EXPECT("outliers", st == SQ_ERR_UNSUPPORTED, "decode with outliers: %s",
               sq_status_string(st));
        free(m);
    }

    /* cap: exact fits, one byte less and tiny caps fail with RANGE, like the CPU */
    static const sq_codec_encoding_t encs[] = {SQ_CODEC_DENSE, SQ_CODEC_BITMAP, SQ_CODEC_CSR,
                                               SQ_CODEC_AUTO, SQ_CODEC_LOSSLESS};
    for (int e = 0; e < 5; e++) {
        p = sq_codec_params_default();
        p.encoding = encs[e];
        const size_t mcap = sq_codec_max_size(&p, R, C);
        uint8_t *cb = malloc(mcap);
        size_t exact = 0;
        SQ_CHECK(sq_codec_encode(&p, x, R, C, C, cb, mcap, &exact, NULL));
        const size_t caps[] = {exact, exact - 1, exact - 8, 70, 10, 0};
        for (int k = 0; k < 6; k++) {
            char ctx[64];
            snprintf(ctx, sizeof ctx, "cap %zu %s", caps[k], sq_codec_encoding_name(encs[e]));
            size_t l1 = 0;
            uint8_t *m = check_encode(ctx, &p, x, R, C, C, caps[k], &l1);
            EXPECT(ctx, (m != NULL) == (k == 0), "cap %zu of %zu", caps[k], exact);
            free(m);
        }
        free(cb);
    }

    /* arguments */
    p = sq_codec_params_default();
    st = sq_codec_gpu_encode(fx.g, &p, fx.dx, R, C, C - 1, fx.dmsg, cap, &len, NULL, fx.stream);
    EXPECT("args", st == SQ_ERR_INVALID_ARG, "ld < cols: %s", sq_status_string(st));
    st = sq_codec_gpu_encode(fx.g, &p, fx.dx, R, C, C, fx.dmsg + 4, cap, &len, NULL, fx.stream);
    EXPECT("args", st == SQ_ERR_INVALID_ARG, "misaligned message: %s", sq_status_string(st));
    p.bits = 3;
    st = sq_codec_gpu_encode(fx.g, &p, fx.dx, R, C, C, fx.dmsg, cap, &len, NULL, fx.stream);
    EXPECT("args", st == SQ_ERR_INVALID_ARG, "bits 3: %s", sq_status_string(st));
    p = sq_codec_params_default();
    st = sq_codec_gpu_encode(fx.g, &p, fx.dx, MAX_ROWS + 1, 1, 1, fx.dmsg, cap, &len, NULL,
                             fx.stream);
    EXPECT("args", st == SQ_ERR_RANGE, "rows above the workspace: %s", sq_status_string(st));

    /* decode arguments */
    {
        uint8_t *m = malloc(cap);
        size_t ml;
        SQ_CHECK(sq_codec_encode(&p, x, R, C, C, m, cap, &ml, NULL));
        sq_codec_header_t h;
        SQ_CHECK(sq_codec_check(m, ml, &h));
        CK(cudaMemcpy(fx.dmsg, m, ml, cudaMemcpyHostToDevice));
        st = sq_codec_gpu_decode(fx.g, &h, fx.dmsg, fx.dy, R + 1, C, C, fx.stream);
        EXPECT("dec args", st == SQ_ERR_RANGE, "shape mismatch: %s", sq_status_string(st));
        st = sq_codec_gpu_decode(fx.g, &h, fx.dmsg, fx.dy, R, C, C - 1, fx.stream);
        EXPECT("dec args", st == SQ_ERR_INVALID_ARG, "ld < cols: %s", sq_status_string(st));
        sq_codec_header_t hb = h;
        hb.total_size += 8;
        st = sq_codec_gpu_decode(fx.g, &hb, fx.dmsg, fx.dy, R, C, C, fx.stream);
        EXPECT("dec args", st == SQ_ERR_INVALID_ARG, "inconsistent header struct: %s",
               sq_status_string(st));
        hb = h;
        hb.group_size = 0;
        st = sq_codec_gpu_decode(fx.g, &hb, fx.dmsg, fx.dy, R, C, C, fx.stream);
        EXPECT("dec args", st == SQ_ERR_INVALID_ARG, "group size 0: %s", sq_status_string(st));
        st = sq_codec_gpu_decode_csr(fx.g, &h, fx.dmsg, fx.drp, fx.dci, fx.dval, fx.stream);
        EXPECT("dec args", st == SQ_ERR_INVALID_ARG || h.encoding == SQ_CODEC_CSR,
               "decode_csr of a %s message: %s", sq_codec_encoding_name(h.encoding),
               sq_status_string(st));
        free(m);
    }

    /* a workspace too small for the tensor */
    sq_codec_gpu_t *small = NULL;
    SQ_CHECK(sq_codec_gpu_create(2, 64, &small));
    st = sq_codec_gpu_encode(small, &p, fx.dx, R, C, C, fx.dmsg, cap, &len, NULL, fx.stream);
    EXPECT("workspace", st == SQ_ERR_RANGE, "too small a workspace: %s", sq_status_string(st));
    sq_codec_gpu_destroy(small);
    sq_codec_gpu_destroy(NULL);
}

int main(void)
{
    if (!sq_cuda_available()) {
        printf("SKIPPED: no CUDA device visible\n");
        return 77;
    }
    const char *q = getenv("SQ_GPU_TEST_QUICK");
    quick = q && *q && *q != '0';
    fixture_init();
    test_errors();
    test_grid();
    test_corruption();
    fixture_fini();
    printf("%s: %d checks, %d failures\n", failures ? "FAIL" : "ok", checks, failures);
    return failures ? 1 : 0;
}

// GPU decoder. The host has already run sq_codec_check() on its copy of the
// message (header fields, payload length, checksum); every other check of
// FORMAT.md's table runs here, on the device, and records a key in the flag
// word (codec_gpu_internal.h: the first check of the table that fails wins,
// at its smallest position). Kernels per call:
//
//   side      scales finite / non-negative / qmax*s finite (one thread per
//             scale); thread 0 checks every padding byte and trailing bit.
//   dense     one thread per (row, column): code -> check -> y; counts the
//             non-zeros (== nnz is checked on the host).
//   bitmap    words: popcount of each 32-bit presence word (bits past N
//             masked: they are padding, checked by `side`); CUB exclusive
//             scan -> position of each word's first code; then one thread per
//             (row, column): bit set -> code at scan + popcount below.
//             Positions >= nnz are flagged and never read.
//   CSR       rows: validates the row pointers (one thread per pointer);
//             entries: one warp per row, lanes over its entries. The entries
//             kernel re-checks p0 <= p1 <= nnz of its own row before using
//             them, so a bad pointer can never send it out of the message.
//   lossless  one thread per (row, column).
//
// Reads stay inside [dmsg, dmsg + 64 + payload_len): every offset comes from
// the layout of the (validated) header, code positions are bounded by nnz or
// N, CSR columns are checked < cols before they index anything. Writes go
// only to the rows x cols cells of y (row stride ld).
#include "codec_gpu_internal.h"

#include <inttypes.h>

namespace {

struct dec_args {
    const uint8_t *msg;
    sq_codec_layout_t l;
    float *y; // [rows, ld]
    uint64_t ld, rows, cols, n, nnz;
    int bits, qmax, thr, f16, per_row, encoding, ib;
    unsigned gshift; // log2(group size) when per group
    const unsigned long long *off; // bitmap: [nw] position of each word's first code
    unsigned long long *cnt;       // bitmap: [nw] popcounts
    sq_gpu_state_t *st;
    // CSR to arrays (sq_codec_gpu_decode_csr) instead of y when `arrays`
    int arrays;
    int32_t *row_ptr, *col_idx; // [rows + 1], [nnz]
    float *val;                 // [nnz]
};

static __device__ __forceinline__ void flag(const dec_args &a, int check, uint64_t pos)
{
    atomicMin(&a.st->err, sq_gpu_key(check, pos));
}

static __device__ __forceinline__ float scale_of(const dec_args &a, uint64_t r, uint64_t c)
{
    const uint64_t si = a.per_row ? r : r * a.l.groups_per_row + (c >> a.gshift);
    const uint8_t *sp = a.msg + a.l.off_scales;
    return a.f16 ? sq_gpu_h2f(((const uint16_t *)sp)[si]) : __uint_as_float(((const uint32_t *)sp)[si]);
}

// Bytes [from, to) of the message are zero.
static __device__ int zero_bytes(const uint8_t *msg, uint64_t from, uint64_t to)
{
    uint32_t acc = 0;
    for (uint64_t o = from; o < to; o++)
        acc |= msg[o];
    return acc == 0;
}

__global__ void __launch_bounds__(SQ_GPU_THREADS) side_kernel(const dec_args a)
{
    const uint64_t tid = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
    const uint8_t *sp = a.msg + a.l.off_scales;
    for (uint64_t si = tid; si < a.l.n_scales; si += stride) {
        if (a.f16) {
            // sign bit set or exponent all ones: both compare >= 0x7c00
            if (((const uint16_t *)sp)[si] >= 0x7c00u) flag(a, SQ_GCHK_SCALE_BAD, si);
        } else {
            const uint32_t w = ((const uint32_t *)sp)[si];
            if (w >= 0x7f800000u)
                flag(a, SQ_GCHK_SCALE_BAD, si);
            else if (isinf(__fmul_rn(__uint_as_float(w), (float)a.qmax)))
                flag(a, SQ_GCHK_SCALE_OVF, si);
        }
    }
    if (tid != 0) return;
    const sq_codec_layout_t &l = a.l;
    if (!zero_bytes(a.msg, l.off_codes + l.len_codes, l.total)) flag(a, SQ_GCHK_PAD_CODES, 0);
    if (!zero_bytes(a.msg, l.off_scales + l.len_scales, l.off_outliers))
        flag(a, SQ_GCHK_PAD_SCALES, 0);
    if (!zero_bytes(a.msg, l.off_outliers + l.len_outliers, l.off_struct))
        flag(a, SQ_GCHK_PAD_STRUCT, 0);
    if (!zero_bytes(a.msg, l.off_struct + l.len_struct, l.off_codes))
        flag(a, SQ_GCHK_PAD_STRUCT, 1);
    if (a.encoding == SQ_CODEC_LOSSLESS) return;
    // bits after the last code / after bit N lie in the last byte of their section
    const uint64_t ncodes = a.encoding == SQ_CODEC_DENSE ? l.n : a.nnz;
    const unsigned tail = (unsigned)((ncodes * (uint64_t)a.bits) & 7u);
    if (tail && (a.msg[l.off_codes + l.len_codes - 1] >> tail)) flag(a, SQ_GCHK_PAD_BITS, 1);
    if (a.encoding == SQ_CODEC_BITMAP && (l.n & 7u) &&
        (a.msg[l.off_struct + l.len_struct - 1] >> (l.n & 7u)))
        flag(a, SQ_GCHK_PAD_BITS, 0);
}

// One thread per column c of a block row; rows by grid-stride in y.
#define SQ_DEC_FOR_CELLS(a, r, c)                                                                  \
    const uint64_t c = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;                           \
    if (c < (a).cols)                                                                              \
        for (uint64_t r = blockIdx.y; r < (a).rows; r += gridDim.y)

template <int BITS>
__global__ void __launch_bounds__(SQ_GPU_THREADS) dense_kernel(const dec_args a)
{
    const uint8_t *codes = a.msg + a.l.off_codes;
    unsigned long long found = 0;
    SQ_DEC_FOR_CELLS(a, r, c)
    {
        const uint64_t i = r * a.cols + c;
        const uint32_t raw = sq_gpu_code_raw(codes, i, BITS);
        const int q = sq_gpu_sext(raw, BITS);
        if (sq_gpu_code_bad(raw, q, BITS, a.thr, 0)) flag(a, SQ_GCHK_CODE, i);
        found += q != 0;
        a.y[r * a.ld + c] = __fmul_rn((float)q, scale_of(a, r, c));
    }
    sq_block_add(found, &a.st->nnz);
}

__global__ void __launch_bounds__(SQ_GPU_THREADS) bitmap_words_kernel(const dec_args a)
{
    const uint32_t *bm = (const uint32_t *)(a.msg + a.l.off_struct);
    const uint64_t nw = (a.n + 31) / 32;
    const uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
    unsigned long long found = 0;
    for (uint64_t w = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; w < nw; w += stride) {
        uint32_t m = bm[w]; // 4 * nw <= the padded section: in bounds
        const uint64_t valid = a.n - 32u * w;
        if (valid < 32) m &= (1u << valid) - 1u;
        const unsigned c = (unsigned)__popc(m);
        a.cnt[w] = c;
        found += c;
    }
    sq_block_add(found, &a.st->nnz);
}

template <int BITS>
__global__ void __launch_bounds__(SQ_GPU_THREADS) bitmap_kernel(const dec_args a)
{
    const uint32_t *bm = (const uint32_t *)(a.msg + a.l.off_struct);
    const uint8_t *codes = a.msg + a.l.off_codes;
    SQ_DEC_FOR_CELLS(a, r, c)
    {
        const uint64_t i = r * a.cols + c;
        const uint32_t m = bm[i >> 5];
        const unsigned bit = (unsigned)(i & 31u);
        float v = 0.0f;
        if ((m >> bit) & 1u) {
            const uint64_t k = a.off[i >> 5] + (uint64_t)__popc(m & ((1u << bit) - 1u));
            if (k >= a.nnz) {
                flag(a, SQ_GCHK_BITMAP_EXCESS, i); // no such code: never read it
            } else {
                const uint32_t raw = sq_gpu_code_raw(codes, k, BITS);
                const int q = sq_gpu_sext(raw, BITS);
                if (sq_gpu_code_bad(raw, q, BITS, a.thr, 1)) flag(a, SQ_GCHK_CODE, i);
                v = __fmul_rn((float)q, scale_of(a, r, c));
            }
        }
        a.y[r * a.ld + c] = v;
    }
}

__global__ void __launch_bounds__(SQ_GPU_THREADS) csr_rows_kernel(const dec_args a)
{
    const uint32_t *rp = (const uint32_t *)(a.msg + a.l.off_struct);
    const uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t r = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; r <= a.rows; r += stride) {
        const uint32_t p1 = rp[r];
        if (a.arrays) a.row_ptr[r] = (int32_t)p1;
        if (r == 0) {
            if (p1 != 0) flag(a, SQ_GCHK_CSR_RP, 0);
            continue;
        }
        if (p1 < rp[r - 1] || p1 > a.nnz) flag(a, SQ_GCHK_CSR_RP, r);
        else if (r == a.rows && p1 != a.nnz) flag(a, SQ_GCHK_NNZ, r);
    }
}

template <int BITS>
__global__ void __launch_bounds__(SQ_GPU_THREADS) csr_entries_kernel(const dec_args a)
{
    const uint32_t *rp = (const uint32_t *)(a.msg + a.l.off_struct);
    const uint8_t *idx = a.msg + a.l.off_indices;
    const uint8_t *codes = a.msg + a.l.off_codes;
    const unsigned lane = threadIdx.x & 31u;
    const uint64_t nwarps = ((uint64_t)gridDim.x * blockDim.x) >> 5;
    for (uint64_t r = ((uint64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; r < a.rows;
         r += nwarps) {
        const uint64_t p0 = rp[r], p1 = rp[r + 1];
        if (p1 < p0 || p1 > a.nnz) continue; // flagged by csr_rows_kernel; unusable
        for (uint64_t k = p0 + lane; k < p1; k += 32) {
            const uint32_t col = a.ib == 2 ? ((const uint16_t *)idx)[k] : ((const uint32_t *)idx)[k];
            if (col >= a.cols) {
                flag(a, SQ_GCHK_CSR_COL_RANGE, k);
                continue;
            }
            if (k > p0) {
                const uint32_t prev =
                    a.ib == 2 ? ((const uint16_t *)idx)[k - 1] : ((const uint32_t *)idx)[k - 1];
                if (prev >= col) flag(a, SQ_GCHK_CSR_COL_ORDER, k);
            }
            const uint32_t raw = sq_gpu_code_raw(codes, k, BITS);
            const int q = sq_gpu_sext(raw, BITS);
            if (sq_gpu_code_bad(raw, q, BITS, a.thr, 1)) flag(a, SQ_GCHK_CODE, k);
            const float v = __fmul_rn((float)q, scale_of(a, r, col));
            if (a.arrays) {
                a.col_idx[k] = (int32_t)col;
                a.val[k] = v;
            } else {
                a.y[r * a.ld + col] = v;
            }
        }
    }
}

template <bool F16>
__global__ void __launch_bounds__(SQ_GPU_THREADS) lossless_kernel(const dec_args a)
{
    const uint8_t *in = a.msg + a.l.off_codes;
    SQ_DEC_FOR_CELLS(a, r, c)
    {
        const uint64_t i = r * a.cols + c;
        const uint32_t b = F16 ? __float_as_uint(sq_gpu_h2f(((const uint16_t *)in)[i]))
                               : ((const uint32_t *)in)[i];
        ((uint32_t *)a.y)[r * a.ld + c] = b; // bits: NaN payloads pass through
    }
}

// The header handed in must be what sq_codec_check() returned: recheck the
// fields the layout depends on, so that a wrong one cannot move a read
// outside the message (the bytes themselves were checked on the host).
sq_status_t header_sane(const sq_codec_header_t *h, sq_codec_layout_t *l)
{
    const uint64_t rows = (uint64_t)h->rows, cols = (uint64_t)h->cols;
    int ok = (unsigned)h->encoding <= SQ_CODEC_LOSSLESS && h->rows >= 1 && h->cols >= 1 &&
             rows <= UINT32_MAX && cols <= UINT32_MAX && rows * cols <= SQ_CODEC_MAX_ELEMS;
    if (ok && h->encoding == SQ_CODEC_LOSSLESS) {
        ok = (h->value_dtype == SQ_DTYPE_F32 || h->value_dtype == SQ_DTYPE_F16) &&
             h->nnz == rows * cols;
    } else if (ok) {
        const uint64_t gs = h->group_size;
        ok = (h->bits == 8 || h->bits == 4 || h->bits == 2) && gs >= 1 && cols % gs == 0 &&
             (h->granularity == SQ_CODEC_PER_ROW ? gs == cols
                                                 : h->granularity == SQ_CODEC_PER_GROUP &&
                                                       (gs & (gs - 1)) == 0) &&
             (h->scale_dtype == SQ_DTYPE_F32 || h->scale_dtype == SQ_DTYPE_F16) &&
             h->threshold < (uint32_t)sq_codec_qmax(h->bits) && h->n_outliers <= cols &&
             (h->outlier_dtype == SQ_DTYPE_F32 || h->outlier_dtype == SQ_DTYPE_F16) &&
             h->index_bytes == (h->encoding == SQ_CODEC_CSR ? (cols <= 65536 ? 2u : 4u) : 0u) &&
             h->nnz <= rows * (cols - h->n_outliers) &&
             (h->encoding != SQ_CODEC_CSR || h->nnz <= UINT32_MAX);
    }
    if (ok) {
        sq_codec_layout(h, l);
        ok = l->total == (uint64_t)h->total_size &&
             h->payload_len == l->total - SQ_CODEC_HEADER_SIZE;
    }
    if (!ok)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "codec gpu decode: the header struct is not one sq_codec_check() "
                            "returned (fields or sizes inconsistent)");
    return SQ_OK;
}

const char *check_name(int c)
{
    switch (c) {
    case SQ_GCHK_PAD_CODES: return "non-zero padding after the codes";
    case SQ_GCHK_SCALE_BAD: return "scale not finite and >= 0";
    case SQ_GCHK_SCALE_OVF: return "qmax * scale overflows fp32";
    case SQ_GCHK_PAD_SCALES: return "non-zero padding after the scales";
    case SQ_GCHK_PAD_STRUCT: return "non-zero padding after the outliers / structure";
    case SQ_GCHK_CSR_RP: return "row pointer not 0 at row 0, decreasing or above nnz";
    case SQ_GCHK_CSR_COL_RANGE: return "column index >= cols";
    case SQ_GCHK_CSR_COL_ORDER: return "column indices not strictly increasing in a row";
    case SQ_GCHK_BITMAP_EXCESS: return "bitmap has more bits set than nnz";
    case SQ_GCHK_CODE: return "invalid code (-2^(b-1), under the threshold, or 0 in a list)";
    case SQ_GCHK_NNZ: return "non-zero codes found != nnz";
    case SQ_GCHK_PAD_BITS: return "bits set after bit N / after the last code";
    default: return "unknown check";
    }
}

sq_status_t check_status(int c)
{
    switch (c) {
    case SQ_GCHK_SCALE_BAD:
    case SQ_GCHK_SCALE_OVF:
    case SQ_GCHK_CSR_COL_RANGE:
    case SQ_GCHK_CODE: return SQ_ERR_RANGE;
    default: return SQ_ERR_FORMAT;
    }
}

// Shared by decode and decode_csr: validate the arguments, fill the kernel
// arguments and run the side kernel.
sq_status_t dec_begin(sq_codec_gpu_t *g, const sq_codec_header_t *hdr, const void *dmsg,
                      dec_args *a, cudaStream_t st)
{
    if (!g || !hdr || !dmsg)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec gpu decode: NULL workspace, header or message");
    if ((uintptr_t)dmsg & 7u)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec gpu decode: message not 8-byte aligned");
    memset(a, 0, sizeof *a);
    SQ_TRY(header_sane(hdr, &a->l));
    if (hdr->n_outliers)
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "codec gpu decode: outlier columns are not supported on the GPU "
                            "(use the CPU codec)");
    a->msg = (const uint8_t *)dmsg;
    a->rows = (uint64_t)hdr->rows;
    a->cols = (uint64_t)hdr->cols;
    a->n = a->l.n;
    a->nnz = hdr->nnz;
    a->encoding = (int)hdr->encoding;
    if (hdr->encoding != SQ_CODEC_LOSSLESS) {
        a->bits = hdr->bits;
        a->qmax = sq_codec_qmax(hdr->bits);
        a->thr = (int)hdr->threshold;
        a->f16 = hdr->scale_dtype == SQ_DTYPE_F16;
        a->per_row = a->l.groups_per_row == 1;
        a->ib = (int)hdr->index_bytes;
        unsigned sh = 0;
        while ((1ull << sh) < hdr->group_size)
            sh++;
        a->gshift = sh; // used per group only, where the size is a power of two
    }
    if (hdr->encoding == SQ_CODEC_BITMAP && (a->n + 31) / 32 > g->max_words)
        return sq_error_set(SQ_ERR_RANGE,
                            "codec gpu decode: %" PRIu64 " elements exceed the workspace (%" PRId64
                            ")",
                            a->n, g->max_elems);
    a->off = g->doff;
    a->cnt = g->dcnt;
    a->st = g->dstate;
    SQ_TRY(sq_gpu_state_reset(g, st));
    side_kernel<<<sq_gpu_grid(g, a->l.n_scales, SQ_GPU_THREADS), SQ_GPU_THREADS, 0, st>>>(*a);
    return sq_gpu_launched("decode scales and paddings");
}

// Read the flags back and turn the smallest key into a status.
sq_status_t dec_end(sq_codec_gpu_t *g, const dec_args *a, cudaStream_t st)
{
    SQ_TRY(sq_gpu_state_read(g, st));
    unsigned long long key = g->hstate->err;
    const unsigned long long found = g->hstate->nnz;
    if (a->encoding == SQ_CODEC_DENSE || a->encoding == SQ_CODEC_BITMAP) {
        unsigned long long k = ~0ull;
        if (a->encoding == SQ_CODEC_BITMAP && found > a->nnz)
            k = sq_gpu_key(SQ_GCHK_BITMAP_EXCESS, a->n);
        else if (found != a->nnz)
            k = sq_gpu_key(SQ_GCHK_NNZ, 0);
        if (k < key) key = k;
    }
    if (key == ~0ull) return SQ_OK;
    const int check = (int)(key >> 48);
    const unsigned long long pos = key & SQ_GPU_KEY_POS_MASK;
    if (check == SQ_GCHK_NNZ && a->encoding != SQ_CODEC_CSR)
        return sq_error_set(SQ_ERR_FORMAT,
                            "codec message (gpu): %llu non-zero codes found, header says nnz = "
                            "%" PRIu64,
                            found, a->nnz);
    return sq_error_set(check_status(check), "codec message (gpu): %s (at %llu)",
                        check_name(check), pos);
}

dim3 cells_grid(uint64_t rows, uint64_t cols)
{
    const uint64_t gx = (cols + SQ_GPU_THREADS - 1) / SQ_GPU_THREADS;
    return dim3((unsigned)gx, (unsigned)(rows < 65535 ? rows : 65535), 1);
}

} // namespace

#define SQ_LAUNCH_BITS(kernel, bits, grid, st, a)                                                  \
    do {                                                                                           \
        if ((bits) == 8)                                                                           \
            kernel<8><<<(grid), SQ_GPU_THREADS, 0, (st)>>>(a);                                     \
        else if ((bits) == 4)                                                                      \
            kernel<4><<<(grid), SQ_GPU_THREADS, 0, (st)>>>(a);                                     \
        else                                                                                       \
            kernel<2><<<(grid), SQ_GPU_THREADS, 0, (st)>>>(a);                                     \
    } while (0)

extern "C" sq_status_t sq_codec_gpu_decode(sq_codec_gpu_t *g, const sq_codec_header_t *hdr,
                                           const void *dmsg, float *y, int64_t rows, int64_t cols,
                                           int64_t ld, void *stream)
{
    if (!y) return sq_error_set(SQ_ERR_INVALID_ARG, "codec gpu decode: y is NULL");
    if (hdr && (hdr->rows != rows || hdr->cols != cols))
        return sq_error_set(SQ_ERR_RANGE,
                            "codec message: shape [%" PRId64 ", %" PRId64 "] but the caller's "
                            "buffer is [%" PRId64 ", %" PRId64 "]",
                            hdr->rows, hdr->cols, rows, cols);
    if (ld < cols)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec gpu decode: ld = %" PRId64 " < cols", ld);
    cudaStream_t st = (cudaStream_t)stream;
    dec_args a;
    SQ_TRY(dec_begin(g, hdr, dmsg, &a, st));
    a.y = y;
    a.ld = (uint64_t)ld;
    const dim3 cells = cells_grid(a.rows, a.cols);
    switch (hdr->encoding) {
    case SQ_CODEC_LOSSLESS:
        if (hdr->value_dtype == SQ_DTYPE_F16)
            lossless_kernel<true><<<cells, SQ_GPU_THREADS, 0, st>>>(a);
        else
            lossless_kernel<false><<<cells, SQ_GPU_THREADS, 0, st>>>(a);
        break;
    case SQ_CODEC_DENSE:
        SQ_LAUNCH_BITS(dense_kernel, a.bits, cells, st, a);
        break;
    case SQ_CODEC_BITMAP: {
        const uint64_t nw = (a.n + 31) / 32;
        bitmap_words_kernel<<<sq_gpu_grid(g, nw, SQ_GPU_THREADS), SQ_GPU_THREADS, 0, st>>>(a);
        SQ_TRY(sq_gpu_launched("decode bitmap words"));
        SQ_TRY(sq_gpu_scan_words(g, nw, st));
        SQ_LAUNCH_BITS(bitmap_kernel, a.bits, cells, st, a);
        break;
    }
    default: { // CSR
        if (ld == cols)
            SQ_CUDA_TRY(cudaMemsetAsync(y, 0, (size_t)rows * (size_t)cols * sizeof(float), st),
                        "zero y");
        else
            SQ_CUDA_TRY(cudaMemset2DAsync(y, (size_t)ld * sizeof(float), 0,
                                          (size_t)cols * sizeof(float), (size_t)rows, st),
                        "zero y");
        csr_rows_kernel<<<sq_gpu_grid(g, a.rows + 1, SQ_GPU_THREADS), SQ_GPU_THREADS, 0, st>>>(a);
        SQ_TRY(sq_gpu_launched("decode row pointers"));
        const unsigned grid = sq_gpu_grid(g, a.rows, SQ_GPU_THREADS / 32);
        SQ_LAUNCH_BITS(csr_entries_kernel, a.bits, grid, st, a);
        break;
    }
    }
    SQ_TRY(sq_gpu_launched("decode"));
    return dec_end(g, &a, st);
}

extern "C" sq_status_t sq_codec_gpu_decode_csr(sq_codec_gpu_t *g, const sq_codec_header_t *hdr,
                                               const void *dmsg, int32_t *row_ptr,
                                               int32_t *col_idx, float *val, void *stream)
{
    if (!row_ptr || (hdr && hdr->nnz && (!col_idx || !val)))
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec gpu decode_csr: NULL output array");
    if (hdr && hdr->encoding != SQ_CODEC_CSR)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec gpu decode_csr: a %s message, not CSR",
                            sq_codec_encoding_name(hdr->encoding));
    if (hdr && (hdr->nnz > INT32_MAX || hdr->rows >= INT32_MAX || hdr->cols > INT32_MAX))
        return sq_error_set(SQ_ERR_RANGE,
                            "codec gpu decode_csr: [%" PRId64 ", %" PRId64 "] with %" PRIu64
                            " non-zeros does not fit 32-bit CSR indices",
                            hdr->rows, hdr->cols, hdr->nnz);
    cudaStream_t st = (cudaStream_t)stream;
    dec_args a;
    SQ_TRY(dec_begin(g, hdr, dmsg, &a, st));
    a.arrays = 1; // col_idx / val may be NULL when nnz == 0: no entry is ever written then
    a.row_ptr = row_ptr;
    a.col_idx = col_idx;
    a.val = val;
    csr_rows_kernel<<<sq_gpu_grid(g, a.rows + 1, SQ_GPU_THREADS), SQ_GPU_THREADS, 0, st>>>(a);
    SQ_TRY(sq_gpu_launched("decode_csr row pointers"));
    const unsigned grid = sq_gpu_grid(g, a.rows, SQ_GPU_THREADS / 32);
    SQ_LAUNCH_BITS(csr_entries_kernel, a.bits, grid, st, a);
    SQ_TRY(sq_gpu_launched("decode_csr entries"));
    return dec_end(g, &a, st);
}

// GPU encoder. Pass 1 (quantize.cu) leaves scales in the message and codes
// in the int8 scratch dq, and counts; one small read-back gives the host nnz
// and the NaN/Inf / fp16-overflow flags. The host then picks the layout
// (AUTO: the CPU codec's exact sizes and tie rule), builds the header with
// the CPU codec's own header code, and launches the layout's kernels:
//
//   dense   pack_dense: one thread per 8-byte output word (64/b codes).
//   bitmap  words: one thread per 32-element word -> presence bits (stored
//           as a little-endian u32, i.e. bit k = bit k%8 of byte k/8) and
//           its popcount; CUB exclusive scan of the counts -> the position
//           of each word's first non-zero code; compact: codes at those
//           positions.
//   CSR     the same count + scan over element order; compact writes the
//           column index of each non-zero and, for every row starting in
//           its word, the row pointer (= scan + popcount below the row).
//
// Compacted b-bit codes of neighbouring words share bytes: every thread
// writes its codes with plain stores into the 32-bit words it alone covers
// and with atomicOr into the (at most two) words shared with its
// neighbours; the codes section is zeroed first, padding included. Every
// other byte of the message (header, paddings, last row pointer) is written
// by the finish kernel, so the result never depends on what dmsg held.
// The checksum field stays 0: the host reseals its copy (codec_gpu.h).
#include "codec_gpu_internal.h"

#include <inttypes.h>
#include <string.h>

namespace {

template <int BITS>
__global__ void __launch_bounds__(SQ_GPU_THREADS)
    pack_dense_kernel(const int8_t *__restrict__ q, uint64_t n, uint64_t nwords,
                      unsigned long long *__restrict__ out)
{
    constexpr int per = 64 / BITS; // codes per output word
    constexpr uint64_t mask = (1u << BITS) - 1u;
    const uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t j = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; j < nwords; j += stride) {
        const uint64_t k0 = j * per;
        unsigned long long v = 0;
#pragma unroll
        for (int h = 0; h < per / 8; h++) {
            const uint64_t e = k0 + 8u * (uint64_t)h; // a multiple of 8: aligned in dq
            uint64_t raw = 0;
            if (e + 8 <= n) {
                raw = *(const uint64_t *)(q + e);
            } else {
                for (int t = 0; t < 8; t++)
                    if (e + (uint64_t)t < n) raw |= (uint64_t)(uint8_t)q[e + t] << (8 * t);
            }
#pragma unroll
            for (int t = 0; t < 8; t++)
                v |= ((raw >> (8 * t)) & mask) << ((8 * h + t) * BITS);
        }
        out[j] = v; // the codes section starts 8-byte aligned
    }
}

// Presence word and popcount of every 32-element word; bm (bitmap section,
// or NULL for CSR) gets the words.
__global__ void __launch_bounds__(SQ_GPU_THREADS)
    words_kernel(const int8_t *__restrict__ q, uint64_t n, uint64_t nw,
                 unsigned long long *__restrict__ cnt, uint32_t *__restrict__ bm)
{
    const uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t w = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; w < nw; w += stride) {
        uint64_t raw[4];
        sq_gpu_load32(q, 32u * w, n, raw);
        const uint32_t m = sq_gpu_nz_mask32(raw); // bits past n are 0
        cnt[w] = (unsigned long long)__popc(m);
        if (bm) bm[w] = m;
    }
}

struct compact_args {
    const int8_t *q;               // [n] codes
    uint64_t n, nw;                // elements, 32-element words
    const unsigned long long *off; // [nw] position of each word's first non-zero code
    uint32_t *codes;               // codes section (zeroed)
    // CSR only (rp == NULL for bitmap):
    uint32_t *rp;   // [rows] row pointers (rp[rows] is the finish kernel's)
    uint8_t *idx;   // column indices
    int ib;         // index bytes, 2 or 4
    uint64_t rows, cols;
};

// OR the bits `cur` into 32-bit word cw of the codes; the thread's own bits
// span [s, e): a word inside that span is this thread's alone.
static __device__ __forceinline__ void put_word(uint32_t *codes, uint64_t cw, uint32_t cur,
                                                uint64_t s, uint64_t e)
{
    if (32u * cw >= s && 32u * cw + 32u <= e)
        codes[cw] = cur;
    else if (cur)
        atomicOr(&codes[cw], cur);
}

template <int BITS>
__global__ void __launch_bounds__(SQ_GPU_THREADS) compact_kernel(const compact_args a)
{
    const uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t w = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; w < a.nw; w += stride) {
        const uint64_t e0 = 32u * w;
        uint64_t raw[4];
        sq_gpu_load32(a.q, e0, a.n, raw);
        const uint32_t m = sq_gpu_nz_mask32(raw);
        const unsigned long long k0 = a.off[w];

        if (a.rp) {
            // rows whose first element r*C falls in [e0, e0 + 32): each row
            // has exactly one such word; rp[r] counts the codes before it
            for (uint64_t r = (e0 + a.cols - 1) / a.cols; r < a.rows && r * a.cols < e0 + 32u;
                 r++) {
                const unsigned sh = (unsigned)(r * a.cols - e0); // 0 .. 31
                a.rp[r] = (uint32_t)(k0 + (unsigned long long)__popc(m & ((1u << sh) - 1u)));
            }
        }
        if (!m) continue;

        if (a.rp) { // column index of every non-zero, in element order
            uint64_t c = e0 % a.cols;
            unsigned long long k = k0;
            for (int t = 0; t < 32; t++) {
                if ((m >> t) & 1u) {
                    if (a.ib == 2)
                        ((uint16_t *)a.idx)[k] = (uint16_t)c;
                    else
                        ((uint32_t *)a.idx)[k] = (uint32_t)c;
                    k++;
                }
                if (++c == a.cols) c = 0;
            }
        }

        // codes k0 .. k0 + popc(m) - 1 occupy bits [s, e) of the stream; a
        // code never straddles a 32-bit word (BITS divides 32)
        constexpr uint32_t mask = (1u << BITS) - 1u;
        const uint64_t s = k0 * BITS, e = s + (uint64_t)__popc(m) * BITS;
        uint64_t pos = s, cw = s >> 5;
        uint32_t cur = 0;
#pragma unroll
        for (int t = 0; t < 32; t++) {
            if ((m >> t) & 1u) {
                const uint32_t code = (uint32_t)(raw[t >> 3] >> (8 * (t & 7))) & mask;
                if ((pos >> 5) != cw) {
                    put_word(a.codes, cw, cur, s, e);
                    cw = pos >> 5;
                    cur = 0;
                }
                cur |= code << (pos & 31u);
                pos += BITS;
            }
        }
        put_word(a.codes, cw, cur, s, e);
    }
}

template <bool F16>
__global__ void __launch_bounds__(SQ_GPU_THREADS)
    lossless_kernel(const float *__restrict__ x, uint64_t ld, uint64_t rows, uint64_t cols,
                    uint64_t nwords, unsigned long long *__restrict__ out)
{
    constexpr int per = F16 ? 4 : 2; // values per 8-byte output word
    const uint64_t n = rows * cols;
    const uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t j = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; j < nwords; j += stride) {
        const uint64_t e0 = j * per;
        unsigned long long v = 0;
        if (e0 < n) {
            uint64_t r = e0 / cols, c = e0 - r * cols;
            for (int t = 0; t < per && e0 + (uint64_t)t < n; t++) {
                const uint32_t xb = ((const uint32_t *)x)[r * ld + c]; // bits, never a float op
                if (F16)
                    v |= (unsigned long long)sq_gpu_f2h(xb) << (16 * t);
                else
                    v |= (unsigned long long)xb << (32 * t);
                if (++c == cols) {
                    c = 0;
                    r++;
                }
            }
        }
        out[j] = v;
    }
}

struct finish_args {
    unsigned long long hdr[8]; // the 64 header bytes
    uint8_t *msg;
    uint64_t zero_from[3], zero_to[3]; // byte ranges to zero (paddings, < 8 bytes each)
    uint64_t rp_last_off;              // CSR: byte offset of rp[rows]; 0: none
    uint32_t rp_last;
};

__global__ void finish_kernel(const finish_args a)
{
    const unsigned t = threadIdx.x;
    if (t < 8) ((unsigned long long *)a.msg)[t] = a.hdr[t];
    if (t < 3)
        for (uint64_t o = a.zero_from[t]; o < a.zero_to[t]; o++)
            a.msg[o] = 0;
    if (t == 3 && a.rp_last_off) *(uint32_t *)(a.msg + a.rp_last_off) = a.rp_last;
}

sq_status_t cap_error(size_t cap, uint64_t need)
{
    return sq_error_set(SQ_ERR_RANGE,
                        "codec gpu encode: buffer of %zu bytes, message needs %" PRIu64, cap, need);
}

// Header bytes + paddings: the last kernel of every encode.
sq_status_t launch_finish(const sq_codec_header_t *h, const sq_codec_layout_t *l, uint8_t *msg,
                          cudaStream_t st)
{
    uint8_t head[SQ_CODEC_HEADER_SIZE];
    sq_codec_header_store(h, head);
    finish_args a;
    memset(&a, 0, sizeof a);
    memcpy(a.hdr, head, sizeof head);
    a.msg = msg;
    if (h->encoding != SQ_CODEC_LOSSLESS) { // lossless: its kernel writes the padding
        a.zero_from[0] = l->off_scales + l->len_scales;
        a.zero_to[0] = l->off_outliers;
        a.zero_from[1] = l->off_outliers + l->len_outliers;
        a.zero_to[1] = l->off_struct;
        a.zero_from[2] = l->off_struct + l->len_struct; // bitmap: overlaps its last word's
        a.zero_to[2] = l->off_codes;                    // zero bits, same value
    }
    if (h->encoding == SQ_CODEC_CSR) {
        a.rp_last_off = l->off_struct + 4u * (uint64_t)h->rows;
        a.rp_last = (uint32_t)h->nnz;
    }
    finish_kernel<<<1, 32, 0, st>>>(a);
    return sq_gpu_launched("encode header");
}

sq_status_t encode_lossless(sq_codec_gpu_t *g, const sq_codec_params_t *p, const float *x,
                            int64_t rows, int64_t cols, int64_t ld, uint8_t *msg, size_t cap,
                            size_t *written, cudaStream_t st)
{
    sq_codec_header_t h;
    sq_codec_layout_t l;
    sq_codec_header_from_params(p, rows, cols, 0, SQ_CODEC_LOSSLESS, &h);
    sq_codec_layout(&h, &l);
    if (l.total > cap) return cap_error(cap, l.total);
    h.payload_len = l.total - SQ_CODEC_HEADER_SIZE;
    const uint64_t nwords = (l.total - l.off_codes) / 8;
    const unsigned grid = sq_gpu_grid(g, nwords, SQ_GPU_THREADS);
    unsigned long long *out = (unsigned long long *)(msg + l.off_codes);
    if (h.value_dtype == SQ_DTYPE_F16)
        lossless_kernel<true><<<grid, SQ_GPU_THREADS, 0, st>>>(x, (uint64_t)ld, (uint64_t)rows,
                                                              (uint64_t)cols, nwords, out);
    else
        lossless_kernel<false><<<grid, SQ_GPU_THREADS, 0, st>>>(x, (uint64_t)ld, (uint64_t)rows,
                                                               (uint64_t)cols, nwords, out);
    SQ_TRY(sq_gpu_launched("encode lossless"));
    SQ_TRY(launch_finish(&h, &l, msg, st));
    *written = (size_t)l.total;
    return SQ_OK;
}

sq_status_t launch_dense(sq_codec_gpu_t *g, int bits, uint64_t n, const sq_codec_layout_t *l,
                         uint8_t *msg, cudaStream_t st)
{
    const uint64_t nwords = (l->total - l->off_codes) / 8;
    const unsigned grid = sq_gpu_grid(g, nwords, SQ_GPU_THREADS);
    unsigned long long *out = (unsigned long long *)(msg + l->off_codes);
    if (bits == 8)
        pack_dense_kernel<8><<<grid, SQ_GPU_THREADS, 0, st>>>(g->dq, n, nwords, out);
    else if (bits == 4)
        pack_dense_kernel<4><<<grid, SQ_GPU_THREADS, 0, st>>>(g->dq, n, nwords, out);
    else
        pack_dense_kernel<2><<<grid, SQ_GPU_THREADS, 0, st>>>(g->dq, n, nwords, out);
    return sq_gpu_launched("encode dense");
}

sq_status_t launch_sparse(sq_codec_gpu_t *g, const sq_codec_header_t *h,
                          const sq_codec_layout_t *l, uint8_t *msg, cudaStream_t st)
{
    const uint64_t n = l->n, nw = (n + 31) / 32;
    const int csr = h->encoding == SQ_CODEC_CSR;
    SQ_CUDA_TRY(cudaMemsetAsync(msg + l->off_codes, 0, (size_t)(l->total - l->off_codes), st),
                "zero the codes");
    const unsigned grid = sq_gpu_grid(g, nw, SQ_GPU_THREADS);
    words_kernel<<<grid, SQ_GPU_THREADS, 0, st>>>(g->dq, n, nw, g->dcnt,
                                                  csr ? NULL : (uint32_t *)(msg + l->off_struct));
    SQ_TRY(sq_gpu_launched("encode presence words"));
    SQ_TRY(sq_gpu_scan_words(g, nw, st));
    compact_args a;
    memset(&a, 0, sizeof a);
    a.q = g->dq;
    a.n = n;
    a.nw = nw;
    a.off = g->doff;
    a.codes = (uint32_t *)(msg + l->off_codes);
    if (csr) {
        a.rp = (uint32_t *)(msg + l->off_struct);
        a.idx = msg + l->off_indices;
        a.ib = (int)h->index_bytes;
        a.rows = (uint64_t)h->rows;
        a.cols = (uint64_t)h->cols;
    }
    if (h->bits == 8)
        compact_kernel<8><<<grid, SQ_GPU_THREADS, 0, st>>>(a);
    else if (h->bits == 4)
        compact_kernel<4><<<grid, SQ_GPU_THREADS, 0, st>>>(a);
    else
        compact_kernel<2><<<grid, SQ_GPU_THREADS, 0, st>>>(a);
    return sq_gpu_launched("encode compact");
}

} // namespace

extern "C" sq_status_t sq_codec_gpu_encode_begin(sq_codec_gpu_t *g, const sq_codec_params_t *p,
                                                 const float *x, int64_t rows, int64_t cols,
                                                 int64_t ld, void *dmsg, size_t cap, void *stream)
{
    SQ_TRY(sq_codec_params_check(p, rows, cols));
    if (!g || !x || !dmsg)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec gpu encode: NULL workspace, x or buf");
    if (g->pend.active)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "codec gpu encode: the workspace has an encode in flight "
                            "(sq_codec_gpu_encode_end first)");
    if (ld < cols)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "codec gpu encode: ld = %" PRId64 " < cols = %" PRId64, ld, cols);
    if ((uintptr_t)dmsg & 7u)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec gpu encode: message buffer not 8-byte aligned");
    if (p->n_outliers)
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "codec gpu encode: outlier columns are not supported on the GPU "
                            "(use the CPU codec)");
    const uint64_t n = (uint64_t)rows * (uint64_t)cols;
    if (rows > g->max_rows || n > (uint64_t)g->max_elems)
        return sq_error_set(SQ_ERR_RANGE,
                            "codec gpu encode: [%" PRId64 ", %" PRId64 "] exceeds the workspace "
                            "(%" PRId64 " rows, %" PRId64 " elements)",
                            rows, cols, g->max_rows, g->max_elems);
    cudaStream_t st = (cudaStream_t)stream;
    uint8_t *msg = (uint8_t *)dmsg;
    sq_gpu_pending_t pend = {1, *p, rows, cols, msg, cap, st, 0};
    if (p->encoding == SQ_CODEC_LOSSLESS) {
        SQ_TRY(encode_lossless(g, p, x, rows, cols, ld, msg, cap, &pend.done_size, st));
        g->pend = pend;
        return SQ_OK;
    }
    // Pass 1 writes the scales into the message: they sit at the same place
    // in every layout, which must fit (dense: the whole message is known).
    sq_codec_header_t h;
    sq_codec_layout_t l;
    sq_codec_header_from_params(p, rows, cols, 0, SQ_CODEC_DENSE, &h);
    sq_codec_layout(&h, &l);
    if (p->encoding == SQ_CODEC_DENSE ? l.total > cap : l.off_struct > cap)
        return cap_error(cap, p->encoding == SQ_CODEC_DENSE ? l.total : l.off_struct);
    SQ_TRY(sq_gpu_state_reset(g, st));
    SQ_TRY(sq_gpu_quantize(g, p, x, rows, cols, ld, msg + l.off_scales, st));
    SQ_TRY(sq_gpu_state_read_async(g, st));
    g->pend = pend;
    return SQ_OK;
}

extern "C" sq_status_t sq_codec_gpu_encode_end(sq_codec_gpu_t *g, size_t *written,
                                               sq_codec_stats_t *stats)
{
    if (!g || !written)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec gpu encode: NULL workspace or written");
    if (!g->pend.active)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "codec gpu encode: no encode in flight (sq_codec_gpu_encode_begin "
                            "first)");
    const sq_gpu_pending_t e = g->pend;
    g->pend.active = 0;
    const sq_codec_params_t *p = &e.p;
    const int64_t rows = e.rows, cols = e.cols;
    sq_codec_header_t h;
    sq_codec_layout_t l;
    if (p->encoding == SQ_CODEC_LOSSLESS) {
        sq_codec_header_from_params(p, rows, cols, 0, SQ_CODEC_LOSSLESS, &h);
        sq_codec_layout(&h, &l);
        if (stats) sq_codec_stats_fill(p, rows, cols, &h, &l, stats);
        *written = e.done_size;
        return SQ_OK;
    }
    // the host waits for the quantizer's flags only, not for the stream
    SQ_CUDA_TRY(cudaEventSynchronize(g->flags_ready), "wait for the flags");
    const sq_gpu_state_t f = *g->hstate;

    if (f.bad_elem != ~0ull) {
        const int64_t br = (int64_t)(f.bad_elem / (uint64_t)cols);
        const int64_t bc = (int64_t)(f.bad_elem % (uint64_t)cols);
        const uint32_t bits = (uint32_t)f.bad_bits;
        float v;
        memcpy(&v, &bits, sizeof v);
        return sq_error_set(SQ_ERR_RANGE,
                            "codec gpu encode: x[%" PRId64 "][%" PRId64 "] = %g: quantized "
                            "encodings need finite input (row %" PRId64 ", column %" PRId64 ")",
                            br, bc, (double)v, br, bc);
    }
    sq_codec_header_from_params(p, rows, cols, 0, SQ_CODEC_DENSE, &h);
    if (f.bad_scale != ~0ull) {
        const uint64_t gpr = (uint64_t)cols / h.group_size;
        return sq_error_set(SQ_ERR_RANGE,
                            "codec gpu encode: row %" PRIu64 " group %" PRIu64
                            ": absmax overflows an fp16 scale (use fp32 scales or outliers)",
                            (uint64_t)(f.bad_scale / gpr), (uint64_t)(f.bad_scale % gpr));
    }

    const uint64_t nnz = f.nnz;
    sq_codec_encoding_t enc = p->encoding;
    if (enc == SQ_CODEC_AUTO)
        enc = sq_codec_pick(sq_codec_size_dense(p, rows, cols, nnz),
                            sq_codec_size_bitmap(p, rows, cols, nnz),
                            sq_codec_size_csr(p, rows, cols, nnz));
    if (enc == SQ_CODEC_CSR && nnz > UINT32_MAX)
        return sq_error_set(SQ_ERR_RANGE, "codec gpu encode: %" PRIu64 " non-zeros overflow CSR",
                            nnz);
    sq_codec_header_from_params(p, rows, cols, nnz, enc, &h);
    sq_codec_layout(&h, &l);
    if (l.total > e.cap) return cap_error(e.cap, l.total);
    h.payload_len = l.total - SQ_CODEC_HEADER_SIZE;
    h.checksum = 0;

    if (enc == SQ_CODEC_DENSE)
        SQ_TRY(launch_dense(g, h.bits, (uint64_t)rows * (uint64_t)cols, &l, e.msg, e.st));
    else
        SQ_TRY(launch_sparse(g, &h, &l, e.msg, e.st));
    SQ_TRY(launch_finish(&h, &l, e.msg, e.st));
    if (stats) sq_codec_stats_fill(p, rows, cols, &h, &l, stats);
    *written = (size_t)l.total;
    return SQ_OK;
}

extern "C" sq_status_t sq_codec_gpu_encode(sq_codec_gpu_t *g, const sq_codec_params_t *p,
                                           const float *x, int64_t rows, int64_t cols, int64_t ld,
                                           void *dmsg, size_t cap, size_t *written,
                                           sq_codec_stats_t *stats, void *stream)
{
    if (!written) return sq_error_set(SQ_ERR_INVALID_ARG, "codec gpu encode: written is NULL");
    SQ_TRY(sq_codec_gpu_encode_begin(g, p, x, rows, cols, ld, dmsg, cap, stream));
    return sq_codec_gpu_encode_end(g, written, stats);
}

/* Host emulation of the CUDA runtime and device side for SPARQ_CUDA=EMU builds (README.md). */
#include "cuda_runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <ucontext.h>
#include <deque>
#include <map>
#include <memory>
#include <vector>

// A misuse the emulation found: say what, and stop where a debugger can look.
[[noreturn]] __attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* Fiber switches. ucontext's swapcontext saves and restores the signal mask
 * with a system call at every switch, which made the emulation mostly kernel
 * time; on x86-64 a switch is instead the few instructions below (callee-saved
 * registers, MXCSR and the x87 control word, then the stack pointer).
 * Sanitizer builds keep ucontext, whose stack switches they understand. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SQ_EMU_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SQ_EMU_SANITIZED 1
#endif
#if defined(__x86_64__) && !defined(SQ_EMU_SANITIZED)
#define SQ_EMU_ASM_SWITCH 1
struct emu_ctx { void *sp; };
extern "C" void sq_emu_switch(void **save_sp, void *load_sp);
__asm__(".text\n"
        ".globl sq_emu_switch\n"
        ".type sq_emu_switch,@function\n"
        "sq_emu_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  subq $8, %rsp\n  stmxcsr (%rsp)\n  fnstcw 4(%rsp)\n"
        "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
        "  ldmxcsr (%rsp)\n  fldcw 4(%rsp)\n  addq $8, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size sq_emu_switch,.-sq_emu_switch\n");
static void ctx_switch(emu_ctx *from, emu_ctx *to) { sq_emu_switch(&from->sp, to->sp); }
// A fresh fiber: its first switch "returns" into entry() on its own stack,
// 16-byte aligned as after a call, with this thread's MXCSR and x87 control word.
static void ctx_make(emu_ctx *c, char *stack, size_t size, void (*entry)(void))
{
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 72);
    uint32_t csr[2];
    __asm__ volatile("stmxcsr %0\n fnstcw %1" : "=m"(csr[0]), "=m"(csr[1]));
    memcpy(&sp[0], csr, 8);
    for (int i = 1; i <= 6; i++) sp[i] = 0;   // r15 r14 r13 r12 rbx rbp
    sp[7] = (uint64_t)(uintptr_t)entry;      // ret
    sp[8] = 0;                               // entry's own return address: never used
    c->sp = sp;
}
#else
typedef ucontext_t emu_ctx;
static void ctx_switch(emu_ctx *from, emu_ctx *to) { swapcontext(from, to); }
static void ctx_make(emu_ctx *c, char *stack, size_t size, void (*entry)(void))
{
    getcontext(c);
    c->uc_stack.ss_sp = stack;
    c->uc_stack.ss_size = size;
    c->uc_link = NULL;
    makecontext(c, entry, 0);
}
#endif

sq_emu_thread *sq_emu_cur;

// weak: the CUDA backend's device.cu defines its own (from cudaGetDeviceCount)
extern "C" __attribute__((weak)) int sq_cuda_available(void) { return 1; }

enum { F_RUN, F_SYNC, F_SHFL, F_DONE };
struct fiber {
    emu_ctx ctx;
    sq_emu_thread t;
    int state;
    uint64_t val, res;
    int off, mode;
    char *stack;
};
static const size_t kStack = 128 * 1024;
// never destroyed, like the streams: their stacks stay reachable at exit
static std::vector<fiber> &fibers = *new std::vector<fiber>;
static emu_ctx sched_ctx;
static fiber *cur;
static const std::function<void()> *cur_body;
static unsigned long long launches, fiber_runs;
static char *dyn_smem;
static size_t dyn_cap, dyn_size;
static const size_t kMaxDynSmem = 227 * 1024; // Hopper's opt-in maximum per block

void *sq_emu_dyn_smem(void)
{
    if (!dyn_size) { fprintf(stderr, "EMU: extern __shared__ used by a launch with 0 dynamic bytes\n"); abort(); }
    return dyn_smem;
}

// A fiber's whole life: the kernel body, then back to the scheduler for good
// (a finished fiber is never switched to again; the next block makes it anew).
static void entry(void)
{
    (*cur_body)();
    cur->state = F_DONE;
    ctx_switch(&cur->ctx, &sched_ctx);
    abort();
}

static void yield_to_sched(void) { ctx_switch(&cur->ctx, &sched_ctx); sq_emu_cur = &cur->t; }

void __syncthreads(void)
{
    cur->state = F_SYNC;
    yield_to_sched();
}

uint64_t sq_emu_shfl(unsigned mask, uint64_t v, int o, int mode, int width)
{
    if (mask != 0xffffffffu) { fprintf(stderr, "EMU: partial shfl mask\n"); abort(); }
    if (width != 32) { fprintf(stderr, "EMU: shfl width %d not emulated\n", width); abort(); }
    cur->val = v;
    cur->off = o;
    cur->mode = mode;
    cur->state = F_SHFL;
    yield_to_sched();
    return cur->res;
}

// Runs a whole grid, block after block; called only by a queued launch when
// its stream gets there (a kernel never calls into the runtime).
static void run_grid(dim3 grid, dim3 block, size_t shmem, const std::function<void()> &body)
{
    if (cur_body) die("EMU: the fiber scheduler re-entered (a kernel ran inside a kernel)");
    launches++;
    if (shmem > dyn_cap) {
        free(dyn_smem);
        dyn_smem = (char *)aligned_alloc(256, (shmem + 255) / 256 * 256);
        dyn_cap = shmem;
    }
    dyn_size = shmem;
    // SQ_EMU_REVERSE=1 runs the threads of a block last to first between
    // barriers: a read of another thread's write with no barrier between
    // them then sees the other order (a missing __syncthreads shows up)
    static const int reverse = getenv("SQ_EMU_REVERSE") && atoi(getenv("SQ_EMU_REVERSE")) != 0;
    const unsigned nt = block.x * block.y * block.z;
    if (fibers.size() < nt) {
        size_t old = fibers.size();
        fibers.resize(nt);
        for (size_t i = old; i < nt; i++) fibers[i].stack = (char *)malloc(kStack);
    }
    cur_body = &body;
    for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
    for (unsigned bx = 0; bx < grid.x; bx++) {
        if (shmem) memset(dyn_smem, 0xff, shmem); // unwritten floats read as NaN
        for (unsigned i = 0; i < nt; i++) {
            fiber &f = fibers[i];
            f.t.tid = {i, 0, 0};
            f.t.bid = {bx, by, bz};
            f.t.bdim = block;
            f.t.gdim = grid;
            f.state = F_RUN;
            ctx_make(&f.ctx, f.stack, kStack, entry);
        }
        for (;;) {
            int ran = 0;
            for (unsigned ii = 0; ii < nt; ii++) {
                fiber &f = fibers[reverse ? nt - 1 - ii : ii];
                if (f.state != F_RUN) continue;
                cur = &f;
                sq_emu_cur = &f.t;
                ctx_switch(&sched_ctx, &f.ctx);
                fiber_runs++;
                ran = 1;
            }
            if (ran) continue;
            unsigned done = 0, sync = 0;
            for (unsigned i = 0; i < nt; i++) {
                done += fibers[i].state == F_DONE;
                sync += fibers[i].state == F_SYNC;
            }
            if (done == nt) break;
            if (sync && sync + done == nt) {
                if (done) { fprintf(stderr, "EMU: __syncthreads with exited threads\n"); abort(); }
                for (unsigned i = 0; i < nt; i++) fibers[i].state = F_RUN;
                continue;
            }
            int resolved = 0;
            for (unsigned w = 0; w < nt / 32; w++) {
                fiber *l = &fibers[32 * w];
                unsigned sh = 0;
                for (int k = 0; k < 32; k++) sh += l[k].state == F_SHFL;
                if (sh == 0) continue;
                if (sh != 32) {
                    fprintf(stderr, "EMU: warp %u: shfl reached by %u of 32 lanes (others exited or at another barrier)\n", w, sh);
                    abort();
                }
                for (int k = 0; k < 32; k++) {
                    if (l[k].mode != l[0].mode) {
                        fprintf(stderr, "EMU: warp %u: lanes at different shuffle kinds\n", w);
                        abort();
                    }
                    const int o = l[k].off;
                    int src = k;
                    switch (l[k].mode) {
                    case SQ_EMU_SHFL_XOR: src = k ^ (o & 31); break;
                    case SQ_EMU_SHFL_IDX: src = o & 31; break;
                    case SQ_EMU_SHFL_DOWN: src = k + o < 32 ? k + o : k; break;
                    case SQ_EMU_SHFL_UP: src = k - o >= 0 ? k - o : k; break;
                    }
                    l[k].res = l[src].val;
                }
                for (int k = 0; k < 32; k++) l[k].state = F_RUN;
                resolved = 1;
            }
            if (!resolved) { fprintf(stderr, "EMU: deadlock\n"); abort(); }
        }
    }
    sq_emu_cur = NULL;
    cur_body = NULL;
    dyn_size = 0;
}

/* ---- allocations, so copies and pointer queries can tell device memory
 * (cudaMalloc), pinned host memory (cudaMallocHost) and the rest apart ---- */
namespace {
struct alloc_info { size_t n; bool pinned; };
std::map<uintptr_t, alloc_info> allocs;
// the allocation holding [p, p + n), or NULL
const std::pair<const uintptr_t, alloc_info> *find_alloc(const void *p, size_t n)
{
    auto it = allocs.upper_bound((uintptr_t)p);
    if (it == allocs.begin()) return NULL;
    --it;
    const uintptr_t a = (uintptr_t)p;
    if (a < it->first || a - it->first > it->second.n || n > it->second.n - (a - it->first)) return NULL;
    return &*it;
}
bool is_device(const void *p, size_t n)
{
    auto a = find_alloc(p, n ? n : 1);
    return a && !a->second.pinned;
}
// Device-side ranges of a copy must lie inside one cudaMalloc allocation,
// host-side ones outside every device allocation.
void check_side(const char *call, const char *which, const void *p, size_t n, bool dev)
{
    if (!n) return;
    if (!p) { // the runtime answers cudaErrorInvalidValue; a test that passes NULL has a bug
        fprintf(stderr, "EMU: %s: %s is NULL\n", call, which);
        abort();
    }
    if (dev && !is_device(p, n)) {
        fprintf(stderr, "EMU: %s: %s [%p, +%zu) is not inside one device allocation\n", call, which, p, n);
        abort();
    }
    if (!dev && is_device(p, 1)) {
        fprintf(stderr, "EMU: %s: %s %p is device memory but the copy kind says host\n", call, which, p);
        abort();
    }
}
void check_copy(const char *call, void *d, const void *s, size_t dn, size_t sn, cudaMemcpyKind k)
{
    if (k == cudaMemcpyDefault) return;
    check_side(call, "destination", d, dn, k == cudaMemcpyHostToDevice || k == cudaMemcpyDeviceToDevice);
    check_side(call, "source", s, sn, k == cudaMemcpyDeviceToHost || k == cudaMemcpyDeviceToDevice);
}
} // namespace

/* ---- streams: FIFOs of deferred work (README.md, "Streams") ----
 * In lazy mode (the default) nothing queued on a stream runs before the host
 * has to see it: a synchronising call runs exactly the operations it waits
 * for, an "infinitely slow GPU". A missing synchronisation then reads stale
 * data. SQ_EMU_STREAMS=starve runs the other streams first when the host
 * waits; SQ_EMU_STREAMS=sync runs everything at the call instead. */
namespace {
struct emu_op {
    std::function<void()> work;    // a kernel, copy, memset, GEMM, event marker
    CUstream_st *wait = nullptr;   // or, without work: a wait for this stream ...
    uint64_t upto = 0;             // ... to have run this many operations
};
} // namespace
struct CUstream_st {
    std::deque<emu_op> q;
    uint64_t issued = 0, done = 0; // operations queued / run so far
    bool blocking = true;          // synchronises with the legacy default stream
    bool busy = false;             // its front operation is running (or waiting)
    bool destroyed = false;        // kept, so a stale handle or event is caught
    uint64_t limit = UINT64_MAX;   // starve mode: run no further than this
};
struct CUevent_st {
    CUstream_st *s = nullptr;      // where the latest record is: s after seq ops
    uint64_t seq = 0;
    std::shared_ptr<double> t;     // when that record's marker ran (< 0: not yet)
};

namespace {
// Never destroyed: code at exit (static destructors, atexit) may still call in.
CUstream_st *const legacy = new CUstream_st;
std::vector<CUstream_st *> &all_streams()
{
    static auto *v = new std::vector<CUstream_st *>{legacy};
    return *v;
}
bool in_op; // an operation's work is running: nothing may call into the runtime

// SQ_EMU_STREAMS: when queued work runs (README.md, "Streams").
enum { SYNC, LAZY, STARVE };
int mode(void)
{
    static const int m = [] {
        const char *e = getenv("SQ_EMU_STREAMS");
        if (!e || !*e || !strcmp(e, "lazy")) return LAZY;
        if (!strcmp(e, "starve")) return STARVE;
        if (!strcmp(e, "sync")) return SYNC;
        die("EMU: SQ_EMU_STREAMS=%s (lazy, starve or sync)", e);
    }();
    return m;
}

CUstream_st *stream_of(cudaStream_t h)
{
    if (!h) return legacy;
    if (h->destroyed) die("EMU: stream %p used after cudaStreamDestroy", (void *)h);
    return h;
}

// Runs s until `upto` of its operations are done; a wait first runs the
// stream it waits for. Stops short, returning false, where a stream would
// have to run past its `limit` (set only by starve mode's host_wait). Being
// asked to advance a stream whose own front operation is still waiting means
// the waits form a cycle, and nothing could ever run.
bool advance(CUstream_st *s, uint64_t upto)
{
    if (in_op) die("EMU: a CUDA call from inside a running kernel or copy");
    while (s->done < upto) {
        if (s->done >= s->limit) return false;
        if (s->busy) die("EMU: wait cycle between streams (through stream %p)", (void *)s);
        emu_op &o = s->q.front(); // stays put: nothing can queue on s meanwhile
        s->busy = true;
        const bool ready = !o.wait || advance(o.wait, o.upto);
        if (ready && !o.wait) {
            in_op = true;
            o.work();
            in_op = false;
        }
        s->busy = false;
        if (!ready) return false;
        s->q.pop_front();
        s->done++;
    }
    return true;
}
void run_until(CUstream_st *s, uint64_t upto) { advance(s, upto); }
void drain_all(void)
{
    for (CUstream_st *s : all_streams()) run_until(s, s->issued);
}
// The host waits until s has run `upto` operations. In starve mode every
// other stream first runs all it can without s going past that point: work
// queued later on another stream then runs before the awaited work, which
// finds a writer that does not wait for an earlier reader on another stream.
void host_wait(CUstream_st *s, uint64_t upto)
{
    if (mode() == STARVE) {
        s->limit = upto;
        for (CUstream_st *o : all_streams())
            if (o != s) advance(o, o->issued);
        s->limit = UINT64_MAX;
    }
    run_until(s, upto);
}
void drain(CUstream_st *s) { host_wait(s, s->issued); }

void push(CUstream_st *s, emu_op o)
{
    if (in_op) die("EMU: a CUDA call from inside a running kernel or copy");
    s->q.push_back(std::move(o));
    s->issued++;
}
void push_wait(CUstream_st *s, CUstream_st *on, uint64_t upto)
{
    if (on->done < upto) push(s, emu_op{{}, on, upto});
}
// The legacy default stream's implicit synchronisation: its work waits for
// the earlier work of every blocking stream, and a blocking stream's work for
// the earlier work of the legacy stream (cudaStreamNonBlocking opts out).
void implicit_waits(CUstream_st *s)
{
    if (s == legacy) {
        for (CUstream_st *b : all_streams())
            if (b != legacy && b->blocking) push_wait(legacy, b, b->issued);
    } else if (s->blocking) {
        push_wait(s, legacy, legacy->issued);
    }
}
CUstream_st *enqueue(cudaStream_t h, std::function<void()> work)
{
    CUstream_st *s = stream_of(h);
    implicit_waits(s);
    push(s, emu_op{std::move(work)});
    if (mode() == SYNC) run_until(s, s->issued);
    return s;
}
double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
} // namespace

void sq_emu_enqueue(cudaStream_t s, std::function<void()> work) { enqueue(s, std::move(work)); }

// A kernel dereferences its pointer arguments on the device, where pageable
// host memory would fault (pinned memory is mapped). One past the end of an
// allocation is fine: an empty range. (Pointers inside a struct argument are
// not checked.)
void sq_emu_check_arg(const void *p, int i)
{
    if (!p || find_alloc(p, 1) || find_alloc((const char *)p - 1, 1)) return;
    die("EMU: kernel argument %d (%p) is neither device nor pinned memory: it would fault", i, p);
}

// Configuration errors are caught at the launch, as CUDA reports them.
void sq_emu_launch_body(dim3 grid, dim3 block, size_t shmem, cudaStream_t s,
                        std::function<void()> body)
{
    if (shmem > kMaxDynSmem)
        die("EMU: %zu bytes of dynamic shared memory (at most %zu)", shmem, kMaxDynSmem);
    const unsigned nt = block.x * block.y * block.z;
    if (block.y != 1 || block.z != 1 || nt == 0 || nt > 1024 || nt % 32)
        die("EMU: unsupported block %u %u %u", block.x, block.y, block.z);
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535)
        die("EMU: invalid grid %u %u %u", grid.x, grid.y, grid.z);
    enqueue(s, [=] { run_grid(grid, block, shmem, body); });
}

namespace {
enum mem_kind { DEVICE, PINNED, PAGEABLE };
mem_kind kind_of(const void *p)
{
    auto a = find_alloc(p, 1);
    return !a ? PAGEABLE : a->second.pinned ? PINNED : DEVICE;
}
void copy_rows(char *d, size_t dpitch, const char *s, size_t spitch, size_t w, size_t h)
{
    for (size_t r = 0; r < h; r++) memmove(d + r * dpitch, s + r * spitch, w);
}
// Every copy, as CUDA times it (api-sync-behavior). cudaMemcpy (`blocking`)
// is on the legacy stream and returns when done, except device to device.
// The Async forms defer everything but a copy into pageable memory or
// between host buffers; a pageable source is staged at the call.
cudaError_t copy(const char *call, void *d, size_t dpitch, const void *s, size_t spitch, size_t w,
                 size_t h, cudaMemcpyKind k, cudaStream_t st, bool blocking)
{
    if (w > dpitch || w > spitch) return cudaErrorInvalidValue;
    if (!w || !h) return cudaSuccess;
    check_copy(call, d, s, (h - 1) * dpitch + w, (h - 1) * spitch + w, k);
    const mem_kind dk = kind_of(d), sk = kind_of(s);
    const bool host_sync = blocking ? dk != DEVICE || sk != DEVICE
                                    : dk == PAGEABLE || (dk == PINNED && sk != DEVICE);
    char *dst = (char *)d;
    if (sk == PAGEABLE && !host_sync) {
        auto staged = std::make_shared<std::vector<char>>(w * h);
        copy_rows(staged->data(), w, (const char *)s, spitch, w, h);
        enqueue(st, [=] { copy_rows(dst, dpitch, staged->data(), w, w, h); });
        return cudaSuccess;
    }
    const char *src = (const char *)s;
    CUstream_st *q = enqueue(st, [=] { copy_rows(dst, dpitch, src, spitch, w, h); });
    if (host_sync) drain(q);
    return cudaSuccess;
}
} // namespace

/* ---- runtime ---- */
extern "C" {
void sq_emu_enqueue_c(cudaStream_t s, void (*run)(void *), void *arg)
{
    enqueue(s, [run, arg] { run(arg); free(arg); });
}
void sq_emu_sync_all(void) { drain_all(); }

static cudaError_t emu_alloc(void **p, size_t n, bool pinned)
{
    void *q = NULL;
    if (posix_memalign(&q, 256, n ? n : 1)) return cudaErrorMemoryAllocation;
    allocs[(uintptr_t)q] = {n ? n : 1, pinned};
    *p = q;
    return cudaSuccess;
}
// cudaFree and cudaFreeHost synchronise the device: all queued work is run
// first, and none of it can touch the freed block afterwards.
static cudaError_t emu_free(void *p, bool pinned, const char *call)
{
    if (!p) return cudaSuccess;
    auto it = allocs.find((uintptr_t)p);
    if (it == allocs.end() || it->second.pinned != pinned)
        die("EMU: %s(%p): not an allocation of its kind", call, p);
    drain_all();
    allocs.erase(it);
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMalloc(void **p, size_t n) { return emu_alloc(p, n, false); }
cudaError_t cudaFree(void *p) { return emu_free(p, false, "cudaFree"); }
cudaError_t cudaMallocHost(void **p, size_t n) { return emu_alloc(p, n, true); }
cudaError_t cudaFreeHost(void *p) { return emu_free(p, true, "cudaFreeHost"); }
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind k)
{
    return copy("cudaMemcpy", d, n, s, n, n, 1, k, NULL, true);
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t st)
{
    return copy("cudaMemcpyAsync", d, n, s, n, n, 1, k, st, false);
}
cudaError_t cudaMemcpy2DAsync(void *d, size_t dpitch, const void *s, size_t spitch, size_t w,
                              size_t h, cudaMemcpyKind k, cudaStream_t st)
{
    return copy("cudaMemcpy2DAsync", d, dpitch, s, spitch, w, h, k, st, false);
}
// Memsets of device memory never wait for the host, cudaMemset included
// (it is queued on the legacy stream).
cudaError_t cudaMemset2DAsync(void *d, size_t pitch, int v, size_t w, size_t h, cudaStream_t st)
{
    if (w > pitch) return cudaErrorInvalidValue;
    if (!w || !h) return cudaSuccess;
    check_side("cudaMemset", "destination", d, (h - 1) * pitch + w, true);
    char *dst = (char *)d;
    enqueue(st, [=] {
        for (size_t r = 0; r < h; r++) memset(dst + r * pitch, v, w);
    });
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t st)
{
    return cudaMemset2DAsync(d, n, v, n, 1, st);
}
cudaError_t cudaMemset(void *d, int v, size_t n) { return cudaMemset2DAsync(d, n, v, n, 1, NULL); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
    CUstream_st *q = new CUstream_st;
    q->blocking = !(flags & cudaStreamNonBlocking);
    all_streams().push_back(q);
    *s = q;
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s)
{
    return cudaStreamCreateWithFlags(s, cudaStreamDefault);
}
// CUDA finishes the queued work of a destroyed stream in the background: it
// stays queued here until something waits for it (the object is kept).
cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    if (!s) return cudaErrorInvalidResourceHandle;
    stream_of(s)->destroyed = true;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) { drain(stream_of(s)); return cudaSuccess; }
cudaError_t cudaDeviceSynchronize(void) { drain_all(); return cudaSuccess; }
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
const char *cudaGetErrorString(cudaError_t e) { return e ? "emulated error" : "no error"; }
const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    }
    return "cudaErrorUnknown";
}
cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaMemGetInfo(size_t *fr, size_t *total)
{
    *fr = (size_t)60 << 30;
    *total = (size_t)80 << 30;
    return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void *f, enum cudaFuncAttribute a, int v)
{
    if (!f || a != cudaFuncAttributeMaxDynamicSharedMemorySize || v < 0 || (size_t)v > kMaxDynSmem)
        return cudaErrorInvalidValue;
    return cudaSuccess;
}
cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a, const void *p)
{
    auto al = find_alloc(p, 1);
    a->type = !al ? cudaMemoryTypeUnregistered : al->second.pinned ? cudaMemoryTypeHost : cudaMemoryTypeDevice;
    a->device = al ? 0 : -2;
    a->devicePointer = al ? (void *)p : NULL;
    a->hostPointer = !al || al->second.pinned ? (void *)p : NULL;
    return cudaSuccess;
}

/* Events: a record is a marker in its stream; the event remembers where its
 * latest record is, and waits and synchronisations run that stream up to it. */
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = new CUevent_st; return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { return cudaEventCreate(e); }
// A pending marker keeps its own time stamp: destroying the event is fine.
cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
    auto t = std::make_shared<double>(-1.0);
    CUstream_st *q = enqueue(s, [t] { *t = now(); });
    e->s = q;
    e->seq = q->issued;
    e->t = t;
    return cudaSuccess;
}
// Waits for the record current now; an event never recorded is complete.
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned)
{
    CUstream_st *q = stream_of(s);
    if (!e->s) return cudaSuccess;
    implicit_waits(q);
    push_wait(q, e->s, e->seq);
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
    if (e->s) host_wait(e->s, e->seq);
    return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b)
{
    if (!a->t || !b->t) return cudaErrorInvalidResourceHandle;
    if (*a->t < 0 || *b->t < 0) return cudaErrorNotReady;
    *ms = (float)((*b->t - *a->t) * 1e3);
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int dev)
{
    if (dev != 0) return cudaErrorInvalidDevice;
    memset(p, 0, sizeof *p);
    strcpy(p->name, "host emulation");
    p->multiProcessorCount = 2;
    p->major = 9;
    p->minor = 0;
    p->totalGlobalMem = (size_t)80 << 30;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int)
{
    *v = a == cudaDevAttrMultiProcessorCount ? 2 : a == cudaDevAttrMemoryClockRate ? 2619000 : 5120;
    return cudaSuccess;
}
}

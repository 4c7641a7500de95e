/* UCX transport: multi-process tests over 127.0.0.1 only.
 *
 * Every UCX call happens in forked children (the parent never initializes UCX,
 * so later forks stay clean); children report through their exit code and
 * pipes. Listeners bind port 0 and pass the real address through a pipe, so
 * tests never race for ports. UCX_NET_DEVICES defaults to lo here.
 *
 *  1. ping-pong: sizes 0 B .. 4 MB (eager and rendezvous), headers and
 *     payloads checked, more messages in flight than slots, both directions;
 *  2. strangers (bad token, bad plan hash, silent, garbage, wrong stage,
 *     duplicate, raw TCP junk) are refused while the real pair works;
 *  3. a peer killed with SIGKILL while we are blocked in recv / send is
 *     reported as SQ_ERR_TRANSPORT naming it, in < 10 s;
 *  4. timeouts: accept with nobody, recv from a silent peer, connect to
 *     nobody, a send the receiver never makes room for;
 *  5. a stage killed with its connection open listens on its port again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ucp/api/ucp.h>

#include "sparq/transport.h"
/* white box: the AM ids and wire structs, to play a misbehaving client */
#include "../../runtime/transport_internal.h"

#define TOKEN 0x5eed5eed12345678ull
#define HASH 0x0123456789abcdefull

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

/* ---------------------------------------------------------------- child plumbing */

/* In a child: report and leave with a non-zero code. */
#define CK(cond, ...)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "[pid %d] %s:%d: check failed: %s: ", (int)getpid(), __FILE__,         \
                    __LINE__, #cond);                                                              \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)
#define CKS(expr)                                                                                  \
    do {                                                                                           \
        sq_status_t ck_st_ = (expr);                                                               \
        CK(ck_st_ == SQ_OK, "%s: %s", sq_status_string(ck_st_), sq_error_last());                  \
    } while (0)

typedef int (*child_fn)(void *arg);

static pid_t spawn(child_fn fn, void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* no orphans if the test itself dies */
        _exit(fn(arg));
    }
    return pid;
}

/* Wait for a child (killing it after limit_s); its exit code, or 128+signal. */
static int reap(pid_t pid, double limit_s)
{
    double end = now_s() + limit_s;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (now_s() > end) {
            fprintf(stderr, "child %d still running after %.0f s: killed\n", (int)pid, limit_s);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return 999;
        }
        sleep_s(0.01);
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

/* Pipes carry fixed-size records (an address, "R", a result): a write of
 * REC bytes is atomic and a read of REC bytes takes exactly one, so several
 * children can read the same pipe. */
#define REC 128

static void put_line(int fd, const char *s)
{
    char buf[REC] = {0};
    snprintf(buf, sizeof buf, "%s", s);
    ssize_t w = write(fd, buf, REC);
    (void)w;
}

/* Read one record within limit_s; 0 on success. */
static int get_line(int fd, char *buf, size_t n, double limit_s)
{
    char rec[REC];
    double end = now_s() + limit_s;
    for (;;) {
        int ms = (int)((end - now_s()) * 1000);
        if (ms <= 0) return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, ms) <= 0) continue;
        ssize_t r = read(fd, rec, REC);
        if (r != REC) return -1;
        break;
    }
    rec[REC - 1] = 0;
    snprintf(buf, n, "%s", rec);
    return 0;
}

/* A pipe whose ends are inherited by every child forked after it. */
typedef struct chan {
    int rd, wr;
} chan_t;

static chan_t chan_new(void)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    return (chan_t){fd[0], fd[1]};
}

static void chan_close(chan_t c)
{
    close(c.rd);
    close(c.wr);
}

static sq_transport_opts_t opts(int stage, int n_stages, int listen, size_t max_msg,
                                double timeout_s)
{
    sq_transport_opts_t o = {0};
    o.listen_addr = listen ? "127.0.0.1:0" : NULL;
    o.job_token = TOKEN;
    o.plan_hash = HASH;
    o.stage = stage;
    o.n_stages = n_stages;
    o.max_msg = max_msg;
    o.timeout_s = timeout_s;
    return o;
}

/* Listener child: create, publish the address on c, accept `from`. */
static sq_transport_t *listen_and_publish(sq_transport_opts_t o, chan_t c, int copies)
{
    sq_transport_t *t;
    CKS(sq_transport_create(&o, &t));
    const char *a = sq_transport_listen_addr(t);
    CK(a && !strncmp(a, "127.0.0.1:", 10), "listen addr %s", a ? a : "(null)");
    for (int i = 0; i < copies; i++)
        put_line(c.wr, a);
    return t;
}

/* ---------------------------------------------------------------- payloads */

static void fill(uint8_t *b, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        b[i] = (uint8_t)(x >> 24);
    }
}

static size_t check(const uint8_t *b, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        if (b[i] != (uint8_t)(x >> 24)) return i + 1;
    }
    return 0;
}

static sq_msg_hdr_t hdr_for(int dir, int size_i, int i, size_t len)
{
    sq_msg_hdr_t h = {0};
    h.type = 0x10u + (uint32_t)dir;
    h.micro = (uint32_t)i;
    h.step = 1000 * (int64_t)size_i + i - 7;
    h.sign = i % 3 - 1;
    h.flags = 0xabc0u | (uint32_t)dir;
    h.len = len;
    h.tag = 0xdeadbeef00000000ull | (uint64_t)(i * 31 + size_i);
    return h;
}

static uint32_t seed_for(int dir, int size_i, int i)
{
    return (uint32_t)(dir * 100000 + size_i * 1000 + i);
}

/* ---------------------------------------------------------------- 1. ping-pong */

static const size_t pp_sizes[] = {0, 1, 4096, 65536, 4u << 20};
#define PP_NSIZES (int)(sizeof pp_sizes / sizeof pp_sizes[0])
#define PP_K 20   /* messages per size and direction: more than the 8 slots */
#define PP_HOLD 3 /* the receiver holds this many before releasing */

static uint8_t *pp_bufs[PP_K];

static void pp_alloc(void)
{
    for (int i = 0; i < PP_K; i++) {
        pp_bufs[i] = malloc(4u << 20);
        CK(pp_bufs[i], "malloc");
    }
}

/* Start PP_K sends of size index si in direction dir (sends complete later). */
static void pp_start(sq_peer_t *p, int dir, int si, sq_send_req_t **req)
{
    for (int i = 0; i < PP_K; i++) {
        size_t n = pp_sizes[si];
        fill(pp_bufs[i], n, seed_for(dir, si, i));
        sq_msg_hdr_t h = hdr_for(dir, si, i, n);
        CKS(sq_peer_send_start(p, &h, n ? pp_bufs[i] : NULL, &req[i]));
    }
}

static void pp_wait(sq_send_req_t **req)
{
    for (int i = 0; i < PP_K; i++)
        CKS(sq_peer_send_wait(req[i]));
}

/* Receive PP_K messages, holding up to PP_HOLD at a time, checking each. */
static void pp_recv(sq_peer_t *p, int dir, int si)
{
    int held = 0;
    for (int i = 0; i < PP_K; i++) {
        sq_msg_hdr_t h;
        const void *pl;
        CKS(sq_peer_recv(p, &h, &pl));
        held++;
        sq_msg_hdr_t e = hdr_for(dir, si, i, pp_sizes[si]);
        CK(!memcmp(&h, &e, sizeof h),
           "header of message %d size %zu dir %d: type %u micro %u step %lld sign %d flags %x "
           "len %llu tag %llx",
           i, pp_sizes[si], dir, h.type, h.micro, (long long)h.step, h.sign, h.flags,
           (unsigned long long)h.len, (unsigned long long)h.tag);
        CK(pl != NULL, "payload NULL");
        size_t bad = check(pl, h.len, seed_for(dir, si, i));
        CK(bad == 0, "payload of message %d (size %zu dir %d) differs at byte %zu", i, pp_sizes[si],
           dir, bad - 1);
        if (held == PP_HOLD || i == PP_K - 1)
            for (; held > 0; held--)
                sq_peer_release(p);
    }
}

typedef struct pp_arg {
    chan_t addr;
} pp_arg_t;

static int pp_server(void *arg)
{
    pp_arg_t *a = arg;
    pp_alloc();
    sq_transport_opts_t o = opts(1, 2, 1, 4u << 20, 20);
    o.send_depth = PP_K;
    sq_transport_t *t = listen_and_publish(o, a->addr, 1);
    sq_peer_t *p;
    CKS(sq_transport_accept(t, 0, &p));
    CK(sq_peer_stage(p) == 0, "peer stage %d", sq_peer_stage(p));
    sq_send_req_t *req[PP_K];
    for (int si = 0; si < PP_NSIZES; si++) {
        sleep_s(0.05); /* let the client run ahead: every slot fills, the rest waits in UCX */
        pp_recv(p, 0, si);
        pp_start(p, 1, si, req);
        pp_wait(req);
    }
    /* both protocols were seen, and messages waited for slots */
    sq_peer_stats_t ps;
    sq_peer_stats(p, &ps);
    fprintf(stderr, "ping-pong server: %llu eager, %llu rndv arrivals, %llu deferred (max %llu)\n",
            (unsigned long long)ps.eager, (unsigned long long)ps.rndv,
            (unsigned long long)ps.deferred, (unsigned long long)ps.max_deferred);
    CK(ps.eager > 0 && ps.rndv > 0 && ps.deferred > 0, "protocol coverage");
    CK(ps.received == (uint64_t)PP_K * PP_NSIZES, "received %llu", (unsigned long long)ps.received);
    /* both directions at once */
    for (int si = 0; si < PP_NSIZES; si++) {
        pp_start(p, 3, si, req);
        pp_recv(p, 2, si);
        pp_wait(req);
    }
    /* then PP_K empty type-97 messages, and a type-99: the oversize probe must
     * not have reached us */
    sq_msg_hdr_t h;
    const void *pl;
    for (int i = 0; i <= PP_K; i++) {
        CKS(sq_peer_recv(p, &h, &pl));
        CK(h.type == (i < PP_K ? 97u : 99u) && h.len == 0, "message %d: type %u len %llu", i,
           h.type, (unsigned long long)h.len);
        sq_peer_release(p);
    }
    sq_transport_destroy(t);
    return 0;
}

static int pp_client(void *arg)
{
    pp_arg_t *a = arg;
    pp_alloc();
    char addr[128];
    CK(get_line(a->addr.rd, addr, sizeof addr, 10) == 0, "no address");
    sq_transport_opts_t o = opts(0, 2, 0, 4u << 20, 20);
    o.send_depth = PP_K;
    sq_transport_t *t;
    CKS(sq_transport_create(&o, &t));
    sq_peer_t *p;
    CKS(sq_transport_connect(t, addr, 1, &p));
    CK(sq_peer_stage(p) == 1, "peer stage %d", sq_peer_stage(p));
    sq_send_req_t *req[PP_K];
    for (int si = 0; si < PP_NSIZES; si++) {
        pp_start(p, 0, si, req);
        pp_wait(req);
        pp_recv(p, 1, si);
    }
    for (int si = 0; si < PP_NSIZES; si++) {
        pp_start(p, 2, si, req);
        pp_recv(p, 3, si);
        pp_wait(req);
    }
    /* larger than the receiver's max_msg: refused here, nothing sent */
    sq_msg_hdr_t h = {.type = 98, .step = 4242, .len = (4u << 20) + 1};
    sq_status_t st = sq_peer_send(p, &h, pp_bufs[0]);
    CK(st == SQ_ERR_RANGE, "oversize send gave %s", sq_status_string(st));
    CK(strstr(sq_error_last(), "step 4242") && strstr(sq_error_last(), "stage 1"), "message: %s",
       sq_error_last());
    /* more sends in flight than send_depth */
    h = (sq_msg_hdr_t){.type = 97};
    for (int i = 0; i < PP_K; i++)
        CKS(sq_peer_send_start(p, &h, NULL, &req[i]));
    sq_send_req_t *extra;
    st = sq_peer_send_start(p, &h, NULL, &extra);
    CK(st == SQ_ERR_RANGE, "send beyond send_depth gave %s", sq_status_string(st));
    pp_wait(req);
    h = (sq_msg_hdr_t){.type = 99};
    CKS(sq_peer_send(p, &h, NULL));
    FILE *f = fopen("/dev/null", "w");
    sq_transport_describe(t, f);
    fclose(f);
    sq_transport_destroy(t);
    return 0;
}

static void test_pingpong(void **state)
{
    pp_arg_t a = {chan_new()};
    double t0 = now_s();
    pid_t s = spawn(pp_server, &a);
    pid_t c = spawn(pp_client, &a);
    int rc = reap(c, 60), rs = reap(s, 60);
    chan_close(a.addr);
    fprintf(stderr, "ping-pong: %.2f s\n", now_s() - t0);
    assert_int_equal(rc, 0);
    assert_int_equal(rs, 0);
}

/* ---------------------------------------------------------------- raw UCP stranger */

typedef struct raw {
    int got_reject, failed;
    char reason[TP_REASON_MAX];
} raw_t;

static ucs_status_t raw_reject_cb(void *arg, const void *header, size_t hlen, void *data,
                                  size_t length, const ucp_am_recv_param_t *param)
{
    raw_t *r = arg;
    r->got_reject = 1;
    if (hlen == sizeof(tp_reject_t)) { /* AM headers come unaligned: copy */
        tp_reject_t rj;
        memcpy(&rj, header, sizeof rj);
        rj.reason[TP_REASON_MAX - 1] = 0;
        snprintf(r->reason, sizeof r->reason, "%s", rj.reason);
    }
    return UCS_OK;
}

static void raw_err_cb(void *arg, ucp_ep_h ep, ucs_status_t st)
{
    ((raw_t *)arg)->failed = 1;
}

enum { RAW_SILENT, RAW_GARBAGE_HELLO, RAW_DATA_FIRST };

/* A UCX client that does not follow the protocol; returns 0 when the listener
 * refused it (REJECT whose reason contains `expect`) within limit_s. */
static int raw_client(const char *addr, int mode, const char *expect, double limit_s)
{
    raw_t r = {0};
    ucp_config_t *cfg;
    CK(ucp_config_read(NULL, NULL, &cfg) == UCS_OK, "config");
    ucp_config_modify(cfg, "POSIX_ERROR_HANDLING", "y");
    ucp_params_t up = {.field_mask = UCP_PARAM_FIELD_FEATURES, .features = UCP_FEATURE_AM};
    ucp_context_h ctx;
    CK(ucp_init(&up, cfg, &ctx) == UCS_OK, "ucp_init");
    ucp_config_release(cfg);
    ucp_worker_params_t wp = {.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                              .thread_mode = UCS_THREAD_MODE_SINGLE};
    ucp_worker_h w;
    CK(ucp_worker_create(ctx, &wp, &w) == UCS_OK, "worker");
    ucp_am_handler_param_t hp = {.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
                                               UCP_AM_HANDLER_PARAM_FIELD_CB |
                                               UCP_AM_HANDLER_PARAM_FIELD_ARG,
                                 .id = TP_AM_REJECT,
                                 .cb = raw_reject_cb,
                                 .arg = &r};
    CK(ucp_worker_set_am_recv_handler(w, &hp) == UCS_OK, "handler");
    struct sockaddr_in sin = {.sin_family = AF_INET};
    const char *colon = strrchr(addr, ':');
    sin.sin_port = htons((uint16_t)atoi(colon + 1));
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    ucp_ep_params_t ep = {0};
    ep.field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR |
                    UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
    ep.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
    ep.sockaddr.addr = (struct sockaddr *)&sin;
    ep.sockaddr.addrlen = sizeof sin;
    ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    ep.err_handler.cb = raw_err_cb;
    ep.err_handler.arg = &r;
    ucp_ep_h e;
    CK(ucp_ep_create(w, &ep, &e) == UCS_OK, "ep");
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = UCP_AM_SEND_FLAG_REPLY};
    static char junk[64] = "this is not a HELLO";
    void *req = NULL;
    if (mode == RAW_GARBAGE_HELLO)
        req = ucp_am_send_nbx(e, TP_AM_HELLO, junk, 7, NULL, 0, &prm);
    else if (mode == RAW_DATA_FIRST)
        req = ucp_am_send_nbx(e, TP_AM_DATA, junk, sizeof(tp_data_hdr_t), junk, 16, &prm);
    double end = now_s() + limit_s;
    while (!r.got_reject && now_s() < end) {
        ucp_worker_progress(w);
        sleep_s(0.0005);
    }
    if (UCS_PTR_IS_PTR(req)) ucp_request_free(req);
    ucp_request_param_t cp = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                              .flags = UCP_EP_CLOSE_FLAG_FORCE};
    void *cr = ucp_ep_close_nbx(e, &cp);
    while (UCS_PTR_IS_PTR(cr) && ucp_request_check_status(cr) == UCS_INPROGRESS)
        ucp_worker_progress(w);
    if (UCS_PTR_IS_PTR(cr)) ucp_request_free(cr);
    ucp_worker_destroy(w);
    ucp_cleanup(ctx);
    CK(r.got_reject, "mode %d: no REJECT within %.1f s (ep failed: %d)", mode, limit_s, r.failed);
    CK(strstr(r.reason, expect), "mode %d: reason \"%s\" lacks \"%s\"", mode, r.reason, expect);
    return 0;
}

/* ---------------------------------------------------------------- 2. strangers */

#define ST_N 60 /* messages each way in the real exchange */

typedef struct st_arg {
    chan_t addr;   /* the listener's address, one record per process */
    chan_t early;  /* early strangers (during accept) report here; the real client waits */
    chan_t paired; /* the real client says it is connected; late strangers wait */
    chan_t late;   /* late strangers (while the pair works) report here; the server waits */
    int kind;
} st_arg_t;

enum { ST_TOKEN, ST_HASH, ST_STAGE, ST_DUP, ST_SILENT, ST_GARBAGE, ST_DATA_FIRST, ST_TCP_JUNK };

/* who comes when: the early ones are refused while the listener sits in accept,
 * the late ones while the real pair exchanges messages */
static const struct {
    int kind, late;
} st_who[] = {{ST_TOKEN, 0}, {ST_HASH, 0},    {ST_GARBAGE, 0}, {ST_DATA_FIRST, 0},
              {ST_STAGE, 0}, {ST_SILENT, 1},  {ST_SILENT, 1},  {ST_DUP, 1},
              {ST_TOKEN, 1}, {ST_TCP_JUNK, 1}};
#define ST_WHO (int)(sizeof st_who / sizeof st_who[0])

static int st_count(int late)
{
    int n = 0;
    for (int i = 0; i < ST_WHO; i++)
        n += st_who[i].late == late;
    return n;
}

/* Take n records from fd within limit_s, progressing t (when given) meanwhile. */
static int st_collect(sq_transport_t *t, int fd, int n, double limit_s)
{
    char line[REC];
    double end = now_s() + limit_s;
    for (int got = 0; got < n;) {
        if (now_s() > end) return -1;
        if (t) sq_transport_progress(t);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 1) > 0) {
            if (get_line(fd, line, sizeof line, 1)) return -1;
            got++;
        }
    }
    return 0;
}

static int st_server(void *arg)
{
    st_arg_t *a = arg;
    sq_transport_opts_t o = opts(1, 3, 1, 65536, 10);
    o.hello_timeout_s = 1.0;
    sq_transport_t *t = listen_and_publish(o, a->addr, ST_WHO + 1);
    sq_peer_t *p;
    CKS(sq_transport_accept(t, 0, &p));
    uint8_t *buf = malloc(65536);
    for (int i = 0; i < ST_N; i++) {
        sq_msg_hdr_t h;
        const void *pl;
        CKS(sq_peer_recv(p, &h, &pl));
        CK(h.step == i && h.len == 65536 && check(pl, h.len, (uint32_t)i) == 0, "message %d", i);
        sq_peer_release(p);
        fill(buf, 65536, (uint32_t)(i + 7777));
        h.step = i + 7777;
        CKS(sq_peer_send(p, &h, buf));
        sleep_s(0.02); /* ~1.5 s of exchange: the late strangers come and go meanwhile */
    }
    free(buf);
    /* stay (and answer handshakes) until every late stranger is through */
    CK(st_collect(t, a->late.rd, st_count(1), 20) == 0, "late strangers did not finish");
    sq_transport_destroy(t);
    return 0;
}

static int st_real_client(void *arg)
{
    st_arg_t *a = arg;
    char addr[128];
    CK(get_line(a->addr.rd, addr, sizeof addr, 10) == 0, "no address");
    CK(st_collect(NULL, a->early.rd, st_count(0), 20) == 0, "early strangers did not finish");
    sq_transport_opts_t o = opts(0, 3, 0, 65536, 10);
    sq_transport_t *t;
    CKS(sq_transport_create(&o, &t));
    sq_peer_t *p;
    CKS(sq_transport_connect(t, addr, 1, &p));
    for (int i = 0; i < st_count(1); i++)
        put_line(a->paired.wr, "P");
    uint8_t *buf = malloc(65536);
    for (int i = 0; i < ST_N; i++) {
        fill(buf, 65536, (uint32_t)i);
        sq_msg_hdr_t h = {.type = 1, .step = i, .len = 65536};
        CKS(sq_peer_send(p, &h, buf));
        const void *pl;
        CKS(sq_peer_recv(p, &h, &pl));
        CK(h.step == i + 7777 && check(pl, h.len, (uint32_t)(i + 7777)) == 0, "echo %d", i);
        sq_peer_release(p);
    }
    free(buf);
    sq_transport_destroy(t);
    return 0;
}

static int st_stranger_run(st_arg_t *a, const char *addr)
{
    if (a->kind == ST_SILENT) return raw_client(addr, RAW_SILENT, "no HELLO within", 5);
    if (a->kind == ST_GARBAGE) return raw_client(addr, RAW_GARBAGE_HELLO, "malformed HELLO", 5);
    if (a->kind == ST_DATA_FIRST)
        return raw_client(addr, RAW_DATA_FIRST, "data before the handshake", 5);
    if (a->kind == ST_TCP_JUNK) { /* not even UCX: bytes at the listening socket */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sin = {.sin_family = AF_INET};
        sin.sin_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1));
        inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
        CK(connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0, "tcp connect");
        char junk[4096];
        memset(junk, 0xA5, sizeof junk);
        ssize_t w = write(fd, junk, sizeof junk);
        (void)w;
        sleep_s(0.5);
        close(fd);
        return 0;
    }
    sq_transport_opts_t o = opts(0, 3, 0, 65536, 5);
    const char *expect = "";
    if (a->kind == ST_TOKEN) {
        o.job_token ^= 1;
        expect = "bad job token";
    } else if (a->kind == ST_HASH) {
        o.plan_hash = 0x1111;
        expect = "plan hash 0x0000000000001111 (stage 0) != 0x0123456789abcdef (stage 1)";
    } else if (a->kind == ST_STAGE) {
        o.stage = 2;
        expect = "waits for stage 0 here, not stage 2";
    } else if (a->kind == ST_DUP) {
        expect = "stage 0 is already connected";
    }
    sq_transport_t *t;
    CKS(sq_transport_create(&o, &t));
    sq_peer_t *p;
    sq_status_t st = sq_transport_connect(t, addr, 1, &p);
    CK(st == SQ_ERR_TRANSPORT, "stranger %d connected (%s)", a->kind, sq_status_string(st));
    CK(strstr(sq_error_last(), "refused") && strstr(sq_error_last(), expect),
       "stranger %d: \"%s\" lacks \"%s\"", a->kind, sq_error_last(), expect);
    sq_transport_destroy(t);
    return 0;
}

static int st_stranger(void *arg)
{
    st_arg_t *a = arg;
    char addr[128], line[REC];
    CK(get_line(a->addr.rd, addr, sizeof addr, 10) == 0, "no address");
    int late = a->kind < 0;
    a->kind = late ? -a->kind - 1 : a->kind;
    if (late) CK(get_line(a->paired.rd, line, sizeof line, 20) == 0, "the pair never formed");
    int rc = st_stranger_run(a, addr);
    put_line(late ? a->late.wr : a->early.wr, "D");
    return rc;
}

static void test_strangers(void **state)
{
    st_arg_t a = {chan_new(), chan_new(), chan_new(), chan_new(), 0};
    double t0 = now_s();
    pid_t s = spawn(st_server, &a);
    pid_t pid[ST_WHO];
    st_arg_t arg[ST_WHO];
    for (int i = 0; i < ST_WHO; i++) {
        arg[i] = a;
        arg[i].kind = st_who[i].late ? -st_who[i].kind - 1 : st_who[i].kind;
        pid[i] = spawn(st_stranger, &arg[i]);
    }
    pid_t r = spawn(st_real_client, &a);
    int rr = reap(r, 40), rs = reap(s, 40);
    int bad = 0;
    for (int i = 0; i < ST_WHO; i++) {
        int rc = reap(pid[i], 30);
        if (rc) fprintf(stderr, "stranger %d (kind %d) exited %d\n", i, st_who[i].kind, rc);
        bad |= rc;
    }
    chan_close(a.addr);
    chan_close(a.early);
    chan_close(a.paired);
    chan_close(a.late);
    fprintf(stderr, "strangers: %.2f s\n", now_s() - t0);
    assert_int_equal(rr, 0);
    assert_int_equal(rs, 0);
    assert_int_equal(bad, 0);
}

/* ---------------------------------------------------------------- 3. killed peer */

typedef struct kill_arg {
    chan_t addr, ready, result;
    int sending; /* 0: A blocks in recv; 1: A keeps sending */
} kill_arg_t;

static int kill_b(void *arg)
{
    kill_arg_t *a = arg;
    sq_transport_opts_t o = opts(1, 2, 1, 1u << 20, 30);
    o.slots = 4;
    sq_transport_t *t = listen_and_publish(o, a->addr, 1);
    sq_peer_t *p;
    CKS(sq_transport_accept(t, 0, &p));
    sq_msg_hdr_t h = {.type = 1, .step = 5};
    CKS(sq_peer_send(p, &h, NULL));
    if (a->sending) {
        /* take a few, then stop receiving but keep progressing: A fills our
         * slots and then blocks (rendezvous) or keeps going (eager) */
        for (int i = 0; i < 10; i++) {
            const void *pl;
            CKS(sq_peer_recv(p, &h, &pl));
            sq_peer_release(p);
        }
        for (;;) {
            sq_transport_progress(t);
            sleep_s(0.001);
        }
    }
    for (;;)
        sleep_s(1); /* until SIGKILL */
}

static int kill_a(void *arg)
{
    kill_arg_t *a = arg;
    char addr[128], line[64];
    CK(get_line(a->addr.rd, addr, sizeof addr, 10) == 0, "no address");
    sq_transport_opts_t o = opts(0, 2, 0, 1u << 20, 30);
    sq_transport_t *t;
    CKS(sq_transport_create(&o, &t));
    sq_peer_t *p;
    CKS(sq_transport_connect(t, addr, 1, &p));
    sq_msg_hdr_t h;
    const void *pl;
    CKS(sq_peer_recv(p, &h, &pl));
    sq_peer_release(p);
    sq_status_t st;
    double t_r = now_s();
    if (!a->sending) {
        put_line(a->ready.wr, "R");
        st = sq_peer_recv(p, &h, &pl);
    } else {
        uint8_t *buf = calloc(1, 1u << 20);
        for (int i = 0;; i++) {
            if (i == 12) put_line(a->ready.wr, "R"), t_r = now_s();
            h = (sq_msg_hdr_t){.type = 2, .step = 100 + i, .len = 1u << 20};
            st = sq_peer_send(p, &h, buf);
            if (st != SQ_OK) break;
        }
        free(buf);
    }
    snprintf(line, sizeof line, "%d", (int)st);
    put_line(a->result.wr, line);
    fprintf(stderr, "peer killed (%s): %.2f s after ready: %s: %s\n",
            a->sending ? "sending" : "receiving", now_s() - t_r, sq_status_string(st),
            sq_error_last());
    CK(st == SQ_ERR_TRANSPORT, "%s", sq_status_string(st));
    CK(strstr(sq_error_last(), "stage 0 lost its connection to stage 1"), "message: %s",
       sq_error_last());
    sq_transport_destroy(t);
    return 0;
}

static void run_kill(int sending)
{
    kill_arg_t a = {chan_new(), chan_new(), chan_new(), sending};
    pid_t b = spawn(kill_b, &a);
    pid_t pa = spawn(kill_a, &a);
    char line[64];
    int ready = get_line(a.ready.rd, line, sizeof line, 20);
    /* A is blocked (in recv, or in a send B makes no room for) */
    sleep_s(getenv("SQ_KILL_DELAY") ? atof(getenv("SQ_KILL_DELAY")) : 0.3);
    kill(b, SIGKILL);
    double t_kill = now_s();
    int got = ready == 0 ? get_line(a.result.rd, line, sizeof line, 15) : -1;
    double dt = now_s() - t_kill;
    fprintf(stderr, "peer killed (%s): detected after %.2f s\n", sending ? "sending" : "receiving",
            dt);
    int ra = reap(pa, 20);
    reap(b, 5);
    chan_close(a.addr);
    chan_close(a.ready);
    chan_close(a.result);
    assert_int_equal(ready, 0);
    assert_int_equal(got, 0);
    assert_true(dt < 10.0);
    assert_int_equal(ra, 0);
}

static void test_killed_while_receiving(void **state)
{
    run_kill(0);
}

static void test_killed_while_sending(void **state)
{
    run_kill(1);
}

/* ---------------------------------------------------------------- 4. timeouts */

static int to_accept(void *arg)
{
    sq_transport_opts_t o = opts(1, 2, 1, 4096, 1.0);
    sq_transport_t *t;
    CKS(sq_transport_create(&o, &t));
    sq_peer_t *p;
    double t0 = now_s();
    sq_status_t st = sq_transport_accept(t, 0, &p);
    double dt = now_s() - t0;
    CK(st == SQ_ERR_TRANSPORT && strstr(sq_error_last(), "did not connect"), "%s: %s",
       sq_status_string(st), sq_error_last());
    CK(dt >= 0.95 && dt < 5, "accept returned after %.2f s", dt);
    sq_transport_destroy(t);
    return 0;
}

static int to_connect(void *arg)
{
    /* a port nobody listens on: bind one, note it, close it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    socklen_t sl = sizeof sin;
    CK(bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0, "bind");
    CK(getsockname(fd, (struct sockaddr *)&sin, &sl) == 0, "getsockname");
    close(fd);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", ntohs(sin.sin_port));
    sq_transport_opts_t o = opts(0, 2, 0, 4096, 1.0);
    sq_transport_t *t;
    CKS(sq_transport_create(&o, &t));
    sq_peer_t *p;
    double t0 = now_s();
    sq_status_t st = sq_transport_connect(t, addr, 1, &p);
    double dt = now_s() - t0;
    CK(st == SQ_ERR_TRANSPORT && strstr(sq_error_last(), "could not connect"), "%s: %s",
       sq_status_string(st), sq_error_last());
    CK(dt >= 0.9 && dt < 5, "connect returned after %.2f s", dt);
    sq_transport_destroy(t);
    return 0;
}

typedef struct to_arg {
    chan_t addr, done;
    int mode; /* 0: silent peer (recv times out); 1: receiver never makes room (send times out) */
} to_arg_t;

static int to_silent_server(void *arg)
{
    to_arg_t *a = arg;
    sq_transport_opts_t o = opts(1, 2, 1, 1u << 20, 10);
    o.slots = 1;
    sq_transport_t *t = listen_and_publish(o, a->addr, 1);
    sq_peer_t *p;
    CKS(sq_transport_accept(t, 0, &p));
    char line[16];
    /* keep progressing (so the client sees a live peer) but never send/receive */
    double end = now_s() + 10;
    while (now_s() < end) {
        sq_transport_progress(t);
        struct pollfd pfd = {.fd = a->done.rd, .events = POLLIN};
        if (poll(&pfd, 1, 1) > 0) break;
    }
    (void)line;
    sq_transport_destroy(t);
    return 0;
}

static int to_silent_client(void *arg)
{
    to_arg_t *a = arg;
    char addr[128];
    CK(get_line(a->addr.rd, addr, sizeof addr, 10) == 0, "no address");
    sq_transport_opts_t o = opts(0, 2, 0, 1u << 20, 1.0);
    sq_transport_t *t;
    CKS(sq_transport_create(&o, &t));
    sq_peer_t *p;
    CKS(sq_transport_connect(t, addr, 1, &p));
    double t0 = now_s(), dt;
    sq_status_t st;
    if (a->mode == 0) {
        sq_msg_hdr_t h;
        const void *pl;
        st = sq_peer_recv(p, &h, &pl);
        dt = now_s() - t0;
        CK(st == SQ_ERR_TRANSPORT && strstr(sq_error_last(), "no message from stage 1 within"),
           "%s: %s", sq_status_string(st), sq_error_last());
    } else {
        /* 1 slot of 1 MB at the receiver, which never receives: rendezvous sends
         * beyond it cannot complete (eager ones would, so send until one blocks) */
        uint8_t *buf = calloc(1, 1u << 20);
        for (int i = 0; i < 64; i++) {
            sq_msg_hdr_t h = {.type = 1, .step = i, .len = 1u << 20};
            t0 = now_s();
            st = sq_peer_send(p, &h, buf);
            if (st != SQ_OK) break;
        }
        dt = now_s() - t0;
        free(buf);
        CK(st == SQ_ERR_TRANSPORT && strstr(sq_error_last(), "did not complete within"), "%s: %s",
           sq_status_string(st), sq_error_last());
    }
    CK(dt >= 0.95 && dt < 5, "returned after %.2f s", dt);
    put_line(a->done.wr, "D");
    sq_transport_destroy(t);
    return 0;
}

static void test_timeouts(void **state)
{
    double t0 = now_s();
    pid_t p1 = spawn(to_accept, NULL);
    pid_t p2 = spawn(to_connect, NULL);
    int r1 = reap(p1, 20), r2 = reap(p2, 20);
    assert_int_equal(r1, 0);
    assert_int_equal(r2, 0);
    for (int mode = 0; mode < 2; mode++) {
        to_arg_t a = {chan_new(), chan_new(), mode};
        pid_t s = spawn(to_silent_server, &a);
        pid_t c = spawn(to_silent_client, &a);
        int rc = reap(c, 30), rs = reap(s, 30);
        chan_close(a.addr);
        chan_close(a.done);
        assert_int_equal(rc, 0);
        assert_int_equal(rs, 0);
    }
    fprintf(stderr, "timeouts: %.2f s\n", now_s() - t0);
}

/* ---------------------------------------------------------------- 5. restart on the same port */

typedef struct rl_arg {
    chan_t addr, ready;
    int second;     /* 0: the first life (killed); 1: the restart on the same port */
    char fixed[64]; /* second life: listen here */
} rl_arg_t;

static int rl_server(void *arg)
{
    rl_arg_t *a = arg;
    sq_transport_opts_t o = opts(1, 2, 1, 4096, 10);
    if (a->second) o.listen_addr = a->fixed;
    /* first life: one address record for the client, one for the parent */
    sq_transport_t *t = listen_and_publish(o, a->addr, a->second ? 1 : 2);
    sq_peer_t *p;
    CKS(sq_transport_accept(t, 0, &p));
    sq_msg_hdr_t h = {.type = 5, .step = 1};
    CKS(sq_peer_send(p, &h, NULL));
    if (a->second) {
        const void *pl;
        CKS(sq_peer_recv(p, &h, &pl));
        sq_peer_release(p);
        sq_transport_destroy(t);
        return 0;
    }
    for (;;)
        sleep_s(1); /* until SIGKILL, connection open */
}

static int rl_client(void *arg)
{
    rl_arg_t *a = arg;
    char addr[128];
    CK(get_line(a->addr.rd, addr, sizeof addr, 10) == 0, "no address");
    sq_transport_opts_t o = opts(0, 2, 0, 4096, 10);
    sq_transport_t *t;
    CKS(sq_transport_create(&o, &t));
    sq_peer_t *p;
    CKS(sq_transport_connect(t, addr, 1, &p));
    sq_msg_hdr_t h;
    const void *pl;
    CKS(sq_peer_recv(p, &h, &pl));
    CK(h.type == 5, "type %u", h.type);
    sq_peer_release(p);
    if (!a->second) {
        put_line(a->ready.wr, "R");
        sq_status_t st = sq_peer_recv(p, &h, &pl); /* the server dies */
        CK(st == SQ_ERR_TRANSPORT, "%s", sq_status_string(st));
    } else {
        h = (sq_msg_hdr_t){.type = 6};
        CKS(sq_peer_send(p, &h, NULL));
    }
    sq_transport_destroy(t);
    return 0;
}

/* A stage killed with its connection open can listen on the same port again
 * at once: the listener sets SO_REUSEADDR (UCX_TCP_CM_REUSEADDR), otherwise
 * the dead connection's TIME_WAIT holds the port for a minute. */
static void test_relisten_after_kill(void **state)
{
    rl_arg_t a = {chan_new(), chan_new(), 0, ""};
    pid_t s = spawn(rl_server, &a);
    pid_t c = spawn(rl_client, &a);
    char line[64], addr[128] = "";
    int got_addr = get_line(a.addr.rd, addr, sizeof addr, 10);
    int ready = get_line(a.ready.rd, line, sizeof line, 20);
    kill(s, SIGKILL);
    reap(s, 5);
    int rc1 = reap(c, 20);
    chan_close(a.addr);
    chan_close(a.ready);
    assert_int_equal(got_addr, 0);
    assert_int_equal(ready, 0);
    assert_int_equal(rc1, 0);

    rl_arg_t b = {chan_new(), chan_new(), 1, ""};
    snprintf(b.fixed, sizeof b.fixed, "%s", addr);
    s = spawn(rl_server, &b);
    c = spawn(rl_client, &b);
    int rc2 = reap(c, 20), rs2 = reap(s, 20);
    chan_close(b.addr);
    chan_close(b.ready);
    assert_int_equal(rc2, 0);
    assert_int_equal(rs2, 0);
}

/* ---------------------------------------------------------------- argument checks */

static void test_bad_opts(void **state)
{
    /* rejected before UCX is touched, so safe in the parent */
    sq_transport_t *t = NULL;
    sq_transport_opts_t o = opts(2, 2, 0, 4096, 1);
    assert_int_equal(sq_transport_create(&o, &t), SQ_ERR_INVALID_ARG);
    assert_non_null(strstr(sq_error_last(), "stage 2 of 2"));
    o = opts(0, 2, 0, 4096, 1);
    o.slots = -1;
    assert_int_equal(sq_transport_create(&o, &t), SQ_ERR_INVALID_ARG);
    o = opts(0, 2, 0, 4096, -1);
    assert_int_equal(sq_transport_create(&o, &t), SQ_ERR_INVALID_ARG);
    assert_int_equal(sq_transport_create(NULL, &t), SQ_ERR_INVALID_ARG);
    assert_null(t);
    sq_transport_destroy(NULL);
    assert_int_equal(sq_peer_stage(NULL), -1);
}

int main(int argc, char **argv)
{
    if (argc > 1) cmocka_set_test_filter(argv[1]); /* e.g. test_transport "*killed*" */
    setenv("UCX_NET_DEVICES", "lo", 0);            /* loopback only */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_opts),
        cmocka_unit_test(test_pingpong),
        cmocka_unit_test(test_strangers),
        cmocka_unit_test(test_killed_while_receiving),
        cmocka_unit_test(test_killed_while_sending),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_relisten_after_kill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

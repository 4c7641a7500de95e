/* Transport bandwidth: sq_peer_send between two stage processes over
 * loopback, against ucx_perftest's ucp_am_bw on the same UCX settings.
 *
 * The sender keeps a window of sends in flight (sq_peer_send_start / wait);
 * the receiver takes every message with sq_peer_recv / sq_peer_release (eager
 * data is copied into its slot, rendezvous data lands there) and acks the
 * last message of each burst, so a timed rep covers delivery, not just local
 * completion. Per size: one warm-up burst, then --reps times a short re-warm
 * (both sides awake) and a timed burst of ITERS messages, each followed by
 * one ucx_perftest run `-t ucp_am_bw -s SIZE -n ITERS -w WARM -O WINDOW -e`
 * (error handling on, like sparq's endpoints) with the UCX_* settings sparq
 * applies; interleaving keeps both under the same machine state (on a shared
 * VM it drifts by 2x within minutes). The table has the medians and the
 * ratio. Everything uses 127.0.0.1 (UCX_NET_DEVICES=lo unless set);
 * ucx_perftest's own control socket listens on all interfaces of this machine
 * for the moment of each run (it has no bind option). */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "sparq/transport.h"

#define BT_MAX_SIZES 32
#define BT_MAX_WINDOW 256
#define BT_TOKEN 0xb0b0cafe12345678ull

enum { BT_DATA = 2, BT_ACK = 3, BT_DONE = 4 };
#define BT_LAST 1u /* flags: the last message of a burst; the receiver acks it */

typedef struct bt_opts {
    size_t sizes[BT_MAX_SIZES];
    int n_sizes;
    long iters; /* per rep; 0: from the size */
    int reps, window, slots;
    int perftest;
    const char *csv;
} bt_opts_t;

static void usage(FILE *f)
{
    fprintf(f, "usage: sparq bench transport [--sizes 4K,64K,384K,1M,4M,16M] [--iters N]\n"
               "                             [--reps 5] [--window 16] [--slots 8] [--no-perftest]\n"
               "                             [--csv FILE]\n"
               "Unidirectional bandwidth of sq_peer_send between two processes over 127.0.0.1\n"
               "(median of reps, after a warm-up), next to ucx_perftest -t ucp_am_bw on the same\n"
               "sizes and UCX settings. 384K = opt-mini activations (2048 tokens x 192 x 1 byte).\n"
               "  --sizes LIST  message sizes, suffixes K/M/G (powers of 1024)\n"
               "  --iters N     messages per rep (default: about 1 GiB per rep, 16..100000)\n"
               "  --reps R      timed reps per size (median reported)\n"
               "  --window W    sends in flight (also ucx_perftest -O)\n"
               "  --slots S     receive slots of the receiving stage\n"
               "  --no-perftest skip ucx_perftest\n"
               "  --csv FILE    also write the table as CSV\n");
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0) return -1;
    double m = 1;
    if (*end == 'K' || *end == 'k')
        m = 1024, end++;
    else if (*end == 'M' || *end == 'm')
        m = 1024.0 * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        m = 1024.0 * 1024 * 1024, end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return -1;
    *out = (size_t)(v * m);
    return 0;
}

static int parse_sizes(const char *list, bt_opts_t *o)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    o->n_sizes = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (o->n_sizes == BT_MAX_SIZES || parse_size(tok, &o->sizes[o->n_sizes]) ||
            o->sizes[o->n_sizes] == 0)
            return -1;
        o->n_sizes++;
    }
    return o->n_sizes ? 0 : -1;
}

static long bt_iters(const bt_opts_t *o, size_t size)
{
    if (o->iters > 0) return o->iters;
    long n = (long)((1ul << 30) / size);
    return n < 16 ? 16 : n > 100000 ? 100000 : n;
}

/* Enough to touch every receive slot and fill the pipeline once. */
static long bt_warm(const bt_opts_t *o, long iters)
{
    long w = iters / 4, min = 2L * (o->slots + o->window);
    return w < min ? min : w;
}

static size_t bt_max_size(const bt_opts_t *o)
{
    size_t m = 0;
    for (int i = 0; i < o->n_sizes; i++)
        if (o->sizes[i] > m) m = o->sizes[i];
    return m;
}

static sq_transport_opts_t bt_topts(int stage, size_t max_msg, int window, int slots)
{
    sq_transport_opts_t t = {0};
    t.listen_addr = stage == 1 ? "127.0.0.1:0" : NULL;
    t.job_token = BT_TOKEN;
    t.plan_hash = 1;
    t.stage = stage;
    t.n_stages = 2;
    t.max_msg = max_msg;
    t.send_depth = window + 4;
    t.slots = slots;
    t.timeout_s = 30;
    return t;
}

/* ---------------------------------------------------------------- receiver (child) */

static int bt_receiver(const bt_opts_t *o, int addr_fd)
{
    sq_transport_opts_t to = bt_topts(1, bt_max_size(o), o->window, o->slots);
    sq_transport_t *t;
    sq_peer_t *p;
    sq_status_t st = sq_transport_create(&to, &t);
    if (st != SQ_OK) {
        fprintf(stderr, "bench transport receiver: %s\n", sq_error_last());
        return 1;
    }
    char addr[128] = {0};
    snprintf(addr, sizeof addr, "%s", sq_transport_listen_addr(t));
    if (write(addr_fd, addr, sizeof addr) != (ssize_t)sizeof addr) return 1;
    close(addr_fd);
    st = sq_transport_accept(t, 0, &p);
    for (;;) {
        sq_msg_hdr_t h;
        const void *pl;
        if (st == SQ_OK) st = sq_peer_recv(p, &h, &pl);
        if (st != SQ_OK) break;
        sq_peer_release(p);
        if (h.type == BT_DONE) { /* answer with our counters */
            sq_peer_stats_t ps;
            sq_peer_stats(p, &ps);
            sq_msg_hdr_t ack = {.type = BT_ACK, .len = sizeof ps};
            st = sq_peer_send(p, &ack, &ps);
            break;
        }
        if (h.type != BT_DATA) {
            st = sq_error_set(SQ_ERR_INTERNAL, "receiver: unexpected message type %u", h.type);
            break;
        }
        if (h.flags & BT_LAST) { /* end of a burst: tell the sender it all arrived */
            sq_msg_hdr_t ack = {.type = BT_ACK, .step = h.step};
            st = sq_peer_send(p, &ack, NULL);
        }
    }
    if (st != SQ_OK) fprintf(stderr, "bench transport receiver: %s\n", sq_error_last());
    sq_transport_destroy(t);
    return st == SQ_OK ? 0 : 1;
}

/* ---------------------------------------------------------------- sender (parent) */

static sq_status_t bt_wait_ack(sq_peer_t *p)
{
    sq_msg_hdr_t h;
    const void *pl;
    SQ_TRY(sq_peer_recv(p, &h, &pl));
    sq_peer_release(p);
    if (h.type != BT_ACK) return sq_error_set(SQ_ERR_INTERNAL, "sender: expected an ACK");
    return SQ_OK;
}

/* n messages of size bytes with `window` in flight. */
static sq_status_t bt_burst(sq_peer_t *p, const void *buf, size_t size, long n, int window,
                            sq_send_req_t **req)
{
    sq_status_t st = SQ_OK;
    for (long i = 0; i < n && st == SQ_OK; i++) {
        int k = (int)(i % window);
        if (i >= window) st = sq_peer_send_wait(req[k]);
        if (st != SQ_OK) return st;
        sq_msg_hdr_t h = {
            .type = BT_DATA, .step = i, .len = size, .flags = i == n - 1 ? BT_LAST : 0};
        st = sq_peer_send_start(p, &h, buf, &req[k]);
    }
    long inflight = n < window ? n : window;
    for (long i = n - inflight; i < n && st == SQ_OK; i++)
        st = sq_peer_send_wait(req[i % window]);
    return st == SQ_OK ? bt_wait_ack(p) : st;
}

/* ---------------------------------------------------------------- ucx_perftest */

static int bt_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    socklen_t sl = sizeof sin;
    int port = -1;
    if (!bind(fd, (struct sockaddr *)&sin, sizeof sin) &&
        !getsockname(fd, (struct sockaddr *)&sin, &sl))
        port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

static int bt_have_perftest(void)
{
    return system("command -v ucx_perftest >/dev/null 2>&1") == 0;
}

/* One ucp_am_bw run; GB/s (decimal) or -1. With lanes != NULL, UCX's info log
 * line describing the endpoint configuration is copied there. */
static double bt_perftest(size_t size, long iters, long warm, int window, char *lanes,
                          size_t lanes_n)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int port = bt_free_port();
        if (port < 0) return -1;
        char ps[16];
        snprintf(ps, sizeof ps, "%d", port);
        fflush(stdout);
        pid_t srv = fork();
        if (srv < 0) return -1;
        if (srv == 0) {
            FILE *n = freopen("/dev/null", "w", stdout);
            (void)n;
            n = freopen("/dev/null", "w", stderr);
            execlp("timeout", "timeout", "120", "ucx_perftest", "-p", ps, (char *)NULL);
            _exit(127);
        }
        usleep(300000); /* the server's control socket has to be up; no way to ask it */
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "%s timeout 120 ucx_perftest 127.0.0.1 -p %d -t ucp_am_bw -s %zu -n %ld -w %ld "
                 "-O %d -e -v 2>&1",
                 lanes ? "UCX_LOG_LEVEL=info" : "", port, size, iters, warm, window);
        FILE *f = popen(cmd, "r");
        double mbs = -1;
        char line[1024];
        while (f && fgets(line, sizeof line, f)) {
            long it;
            double lat50, lat, olat, bw, obw;
            if (lanes && strstr(line, "ep_cfg")) {
                char *s = strstr(line, "ep_cfg");
                s[strcspn(s, "\n")] = 0;
                snprintf(lanes, lanes_n, "%s", s);
            }
            if (sscanf(line, "%ld,%lf,%lf,%lf,%lf,%lf", &it, &lat50, &lat, &olat, &bw, &obw) == 6 &&
                it == iters)
                mbs = obw;
        }
        int rc = f ? pclose(f) : -1;
        int status;
        if (waitpid(srv, &status, 0) < 0) {
        }
        if (rc == 0 && mbs > 0) return mbs * 1048576.0 * 1e-9; /* perftest MB = 2^20 bytes */
        kill(srv, SIGKILL);
    }
    return -1;
}

/* ---------------------------------------------------------------- one size */

typedef struct bt_row {
    double sp, sp_lo, sp_hi; /* sparq GB/s: median, min, max over reps */
    double pt, pt_lo, pt_hi; /* ucx_perftest, the same (0: not run) */
} bt_row_t;

static void bt_stats(double *v, int n, double *med, double *lo, double *hi)
{
    if (n <= 0) return;
    qsort(v, (size_t)n, sizeof *v, sq_bench_cmp_double);
    *med = v[n / 2];
    *lo = v[0];
    *hi = v[n - 1];
}

/* Warm-up, then reps timed bursts; each followed by one ucx_perftest run of
 * the same size and count when perftest is on, so that both see the machine
 * in the same state (it drifts, on a shared VM by 2x within minutes). */
static sq_status_t bt_measure(sq_peer_t *p, const bt_opts_t *o, size_t size, const void *buf,
                              int perftest, char *lanes, size_t lanes_n, bt_row_t *row)
{
    const long iters = bt_iters(o, size), warm = bt_warm(o, iters);
    const long rewarm = 2L * (o->slots + o->window); /* before each rep: wake both sides */
    sq_send_req_t *req[BT_MAX_WINDOW];
    SQ_TRY(bt_burst(p, buf, size, warm, o->window, req));
    double *bw = calloc(2 * (size_t)o->reps, sizeof *bw), *pt = bw + o->reps;
    if (!bw) return sq_error_set(SQ_ERR_NOMEM, "bench transport: out of memory");
    sq_status_t st = SQ_OK;
    int npt = 0;
    for (int r = 0; r < o->reps && st == SQ_OK; r++) {
        st = bt_burst(p, buf, size, rewarm, o->window, req);
        double t0 = sq_bench_now();
        if (st == SQ_OK) st = bt_burst(p, buf, size, iters, o->window, req);
        bw[r] = (double)size * (double)iters / (sq_bench_now() - t0) * 1e-9;
        if (st == SQ_OK && perftest) {
            double g = bt_perftest(size, iters, warm, o->window, lanes && !lanes[0] ? lanes : NULL,
                                   lanes_n);
            if (g > 0) pt[npt++] = g;
        }
    }
    memset(row, 0, sizeof *row);
    if (st == SQ_OK) {
        bt_stats(bw, o->reps, &row->sp, &row->sp_lo, &row->sp_hi);
        bt_stats(pt, npt, &row->pt, &row->pt_lo, &row->pt_hi);
    }
    free(bw);
    return st;
}

/* ---------------------------------------------------------------- main */

static void bt_fmt_size(size_t s, char *buf, size_t n)
{
    if (s >= (1u << 20) && s % (1u << 20) == 0)
        snprintf(buf, n, "%zuM", s >> 20);
    else if (s >= 1024 && s % 1024 == 0)
        snprintf(buf, n, "%zuK", s >> 10);
    else
        snprintf(buf, n, "%zu", s);
}

/* UCX settings for ucx_perftest: the ones sq_transport_create applies, unless set. */
static void bt_perftest_env(void)
{
    if (!getenv("UCX_POSIX_ERROR_HANDLING") && !getenv("UCX_SYSV_ERROR_HANDLING")) {
        setenv("UCX_POSIX_ERROR_HANDLING", "y", 0);
        setenv("UCX_SYSV_ERROR_HANDLING", "y", 0);
    }
    setenv("UCX_KEEPALIVE_INTERVAL", "1s", 0);
    setenv("UCX_TCP_CM_REUSEADDR", "y", 0);
}

int sq_bench_transport_main(int argc, char **argv)
{
    static const struct option lopts[] = {{"sizes", required_argument, 0, 's'},
                                          {"iters", required_argument, 0, 'n'},
                                          {"reps", required_argument, 0, 'r'},
                                          {"window", required_argument, 0, 'w'},
                                          {"no-perftest", no_argument, 0, 'P'},
                                          {"csv", required_argument, 0, 'c'},
                                          {"slots", required_argument, 0, 'S'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    bt_opts_t o = {.reps = 5, .window = 16, .slots = 8, .perftest = 1};
    parse_sizes("4K,64K,384K,1M,4M,16M", &o);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:n:r:w:S:Pc:h", lopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (parse_sizes(optarg, &o)) {
                fprintf(stderr, "sparq bench transport: bad --sizes \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'n':
            o.iters = atol(optarg);
            break;
        case 'r':
            o.reps = atoi(optarg);
            break;
        case 'w':
            o.window = atoi(optarg);
            break;
        case 'S':
            o.slots = atoi(optarg);
            break;
        case 'P':
            o.perftest = 0;
            break;
        case 'c':
            o.csv = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || o.reps < 1 || o.window < 1 || o.window > BT_MAX_WINDOW || o.iters < 0 ||
        o.slots < 1) {
        usage(stderr);
        return 2;
    }
    setenv("UCX_NET_DEVICES", "lo", 0); /* loopback only */
    sq_bench_print_machine();

    /* fork before any UCX call */
    int pfd[2];
    if (pipe(pfd)) return 1;
    fflush(stdout);
    pid_t rx = fork();
    if (rx < 0) return 1;
    if (rx == 0) {
        close(pfd[0]);
        _exit(bt_receiver(&o, pfd[1]));
    }
    close(pfd[1]);
    char addr[128] = {0};
    ssize_t got = read(pfd[0], addr, sizeof addr);
    close(pfd[0]);
    if (got != (ssize_t)sizeof addr) {
        fprintf(stderr, "sparq bench transport: the receiver did not start\n");
        waitpid(rx, NULL, 0);
        return 1;
    }

    sq_transport_opts_t to = bt_topts(0, bt_max_size(&o), o.window, o.slots);
    sq_transport_t *t = NULL;
    sq_peer_t *p = NULL;
    sq_status_t st = sq_transport_create(&to, &t);
    if (st == SQ_OK) st = sq_transport_connect(t, addr, 1, &p);
    bt_row_t row[BT_MAX_SIZES] = {0};
    void *buf = NULL;
    int perftest = o.perftest && bt_have_perftest();
    char lanes[512] = "";
    if (st == SQ_OK) {
        printf("sparq transport: UCX over loopback, window %d, %d receive slots, %d reps\n",
               o.window, o.slots, o.reps);
        sq_transport_describe(t, stdout);
        if (o.perftest && !perftest) printf("ucx_perftest not found (apt install ucx-utils)\n");
        buf = malloc(bt_max_size(&o));
        if (!buf)
            st = sq_error_set(SQ_ERR_NOMEM, "bench transport: out of memory");
        else
            memset(buf, 0x5a, bt_max_size(&o));
    }
    if (perftest) bt_perftest_env(); /* after our create: ours are not "from the environment" */
    for (int i = 0; st == SQ_OK && i < o.n_sizes; i++)
        st = bt_measure(p, &o, o.sizes[i], buf, perftest, lanes, sizeof lanes, &row[i]);
    sq_peer_stats_t ps = {0}, rs_stats = {0};
    if (st == SQ_OK) {
        sq_msg_hdr_t d = {.type = BT_DONE};
        const void *pl;
        st = sq_peer_send(p, &d, NULL);
        if (st == SQ_OK) st = sq_peer_recv(p, &d, &pl);
        if (st == SQ_OK && d.type == BT_ACK && d.len == sizeof rs_stats)
            memcpy(&rs_stats, pl, sizeof rs_stats);
        if (st == SQ_OK) sq_peer_release(p);
        sq_peer_stats(p, &ps);
    }
    if (st != SQ_OK) fprintf(stderr, "sparq bench transport: %s\n", sq_error_last());
    sq_transport_destroy(t);
    free(buf);
    int rs;
    waitpid(rx, &rs, 0);
    if (st != SQ_OK) return 1;
    if (perftest)
        printf("ucx_perftest -t ucp_am_bw -e -O %d -n ITERS -w WARMUP, after each sparq rep, same "
               "UCX settings; its endpoint: %s\n",
               o.window, lanes[0] ? lanes : "(not reported)");

    FILE *csv = o.csv ? fopen(o.csv, "w") : NULL;
    if (o.csv && !csv) fprintf(stderr, "sparq bench transport: cannot write %s\n", o.csv);
    if (csv)
        fprintf(csv, "size,iters,sparq_gbs,sparq_min,sparq_max,perftest_gbs,perftest_min,"
                     "perftest_max,ratio\n");
    printf("\n%6s %6s %11s %15s %11s %15s %6s\n", "size", "iters", "sparq GB/s", "(min..max)",
           "perftest", "(min..max)", "ratio");
    for (int i = 0; i < o.n_sizes; i++) {
        const bt_row_t *w = &row[i];
        char sz[32], mm[48], pts[32] = "n/a", pmm[48] = "", rat[32] = "n/a";
        bt_fmt_size(o.sizes[i], sz, sizeof sz);
        snprintf(mm, sizeof mm, "(%.2f..%.2f)", w->sp_lo, w->sp_hi);
        if (w->pt > 0) {
            snprintf(pts, sizeof pts, "%.2f", w->pt);
            snprintf(pmm, sizeof pmm, "(%.2f..%.2f)", w->pt_lo, w->pt_hi);
            snprintf(rat, sizeof rat, "%.0f%%", 100 * w->sp / w->pt);
        }
        printf("%6s %6ld %11.2f %15s %11s %15s %6s\n", sz, bt_iters(&o, o.sizes[i]), w->sp, mm, pts,
               pmm, rat);
        if (csv)
            fprintf(csv, "%zu,%ld,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f\n", o.sizes[i],
                    bt_iters(&o, o.sizes[i]), w->sp, w->sp_lo, w->sp_hi, w->pt, w->pt_lo, w->pt_hi,
                    w->pt > 0 ? w->sp / w->pt : 0);
    }
    printf("GB/s = 1e9 payload bytes/s, median of %d reps; sender: %llu messages; receiver "
           "arrivals: %llu eager, %llu rendezvous, %llu waited for a free slot\n",
           o.reps, (unsigned long long)ps.sent, (unsigned long long)rs_stats.eager,
           (unsigned long long)rs_stats.rndv, (unsigned long long)rs_stats.deferred);
    if (csv) fclose(csv);
    return WIFEXITED(rs) && WEXITSTATUS(rs) == 0 ? 0 : 1;
}

#ifdef SQ_BENCH_STANDALONE
int main(int argc, char **argv)
{
    return sq_bench_transport_main(argc, argv);
}
#endif

/* UCX transport: context, worker, listener, handshake, progress, teardown.
 * Messages (slots, sends, receives) are in transport_peer.c.
 *
 * UCX settings. sq_transport_create applies these with ucp_config_modify,
 * each only when the user has not set the same UCX_* variable (theirs wins):
 *
 *   UCX_POSIX_ERROR_HANDLING=y, UCX_SYSV_ERROR_HANDLING=y (key MM_ERROR_HANDLING)
 *       Endpoints use UCP_ERR_HANDLING_MODE_PEER so that a dead stage is
 *       noticed. UCX 1.13 then drops every transport that does not claim
 *       peer-failure support; shared memory (posix, sysv) only claims it when
 *       this is on, so without it same-host stages fall back to tcp over
 *       loopback (several times slower). With it they use shared memory, and
 *       UCX checks that the peer process still exists (keepalive). cma (the
 *       zero-copy rendezvous) stays off under PEER mode in 1.13: large
 *       messages go as pipelined active-message fragments.
 *   UCX_KEEPALIVE_INTERVAL=1s (default 20 s)
 *       How often UCX checks its peers. Shared memory has no connection that
 *       breaks when a process dies; in practice the connection manager's
 *       socket reports a kill -9 at once, and this bounds the rest. A stage
 *       that computes for minutes without progressing is not affected: the
 *       shared-memory check looks at the process, not at replies.
 *   UCX_TCP_CM_REUSEADDR=y (key CM_REUSEADDR)
 *       The listener sets SO_REUSEADDR, so a restarted stage (kill -9, resume)
 *       can listen on its configured port again at once rather than failing
 *       for a minute while the dead run's connections sit in TIME_WAIT
 *       (test_relisten_after_kill).
 *   UCX_TCP_PUT_ENABLE=n (key PUT_ENABLE)
 *       Without it, a client-server endpoint between two same-host stages
 *       keeps a tcp-over-loopback lane and UCX picks it for rendezvous (tcp
 *       is the only transport there with zero-copy put): every message above
 *       8 KB then goes through the loopback socket (~2 GB/s for 64 KB
 *       messages here, against ~30 GB/s through shared memory).
 *       Without tcp put, rendezvous runs over the shared-memory AM lane, as
 *       ucx_perftest's endpoints do. Between hosts, rendezvous over tcp then
 *       moves as active-message fragments on the same socket.
 *
 * sq_transport_describe prints what was applied. A UCX that does not know a
 * key warns once at worker creation ("invalid configurations: KEY=...").
 */
#include "transport_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define TP_SPIN_S 200e-6   /* busy-poll this long before sleeping on the event fd */
#define TP_MAX_SLEEP_MS 10 /* never sleep longer: deadlines and keepalive stay on time */
#define TP_RETRY_S 0.1     /* connect: pause between attempts while nobody listens */
#define TP_CLOSE_MAX_S 5.0 /* destroy: give up flushing after this */

/* key: the name ucp_config_modify takes (UCX 1.13 hands unknown keys to each
 * transport's config, where a sub-table's fields carry its prefix: MM_ for the
 * shared-memory base of posix and sysv, CM_ for the tcp connection manager);
 * env: the variables by which a user sets the same thing (any set: theirs wins). */
typedef struct tp_knob {
    const char *key, *value;
    const char *env[2];
} tp_knob_t;

static const tp_knob_t tp_knobs[] = {
    {"MM_ERROR_HANDLING", "y", {"UCX_POSIX_ERROR_HANDLING", "UCX_SYSV_ERROR_HANDLING"}},
    {"KEEPALIVE_INTERVAL", "1s", {"UCX_KEEPALIVE_INTERVAL", NULL}},
    {"CM_REUSEADDR", "y", {"UCX_TCP_CM_REUSEADDR", NULL}},
    {"PUT_ENABLE", "n", {"UCX_TCP_PUT_ENABLE", NULL}},
};

double tp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- addresses */

static void tp_sockaddr_str(const struct sockaddr *sa, char *buf, size_t n)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        snprintf(buf, n, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        snprintf(buf, n, "[%s]:%u", host, port);
    } else {
        snprintf(buf, n, "(address family %d)", sa->sa_family);
    }
}

/* "HOST:PORT" or "[V6]:PORT" -> sockaddr. */
static sq_status_t tp_parse_addr(const sq_transport_t *t, const char *addr, const char *what,
                                 struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host)
        return sq_error_set(SQ_ERR_INVALID_ARG, "stage %d: %s address \"%s\" is not HOST:PORT",
                            t->o.stage, what, addr ? addr : "(null)");
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    if (host[0] == '[') {
        size_t hl = strlen(host);
        if (hl < 3 || host[hl - 1] != ']')
            return sq_error_set(SQ_ERR_INVALID_ARG, "stage %d: %s address \"%s\": bad [IPv6]",
                                t->o.stage, what, addr);
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
        return sq_error_set(SQ_ERR_INVALID_ARG, "stage %d: %s address \"%s\": bad port", t->o.stage,
                            what, addr);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc || !res)
        return sq_error_set(SQ_ERR_INVALID_ARG, "stage %d: %s address \"%s\": %s", t->o.stage, what,
                            addr, gai_strerror(rc));
    memset(ss, 0, sizeof *ss);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    return SQ_OK;
}

/* ---------------------------------------------------------------- peers */

struct sq_peer *tp_peer_by_ep(sq_transport_t *t, ucp_ep_h ep)
{
    if (!ep) return NULL;
    for (struct sq_peer *p = t->peers; p; p = p->next)
        if (p->ep == ep && !p->ep_closing) return p;
    return NULL;
}

static void tp_peer_link(sq_transport_t *t, struct sq_peer *p)
{
    p->next = t->peers;
    t->peers = p;
}

static void tp_peer_unlink(sq_transport_t *t, struct sq_peer *p)
{
    for (struct sq_peer **pp = &t->peers; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

static void tp_ep_err_cb(void *arg, ucp_ep_h ep, ucs_status_t status)
{
    struct sq_peer *p = arg;
    if (p->ep_status == UCS_OK) p->ep_status = status == UCS_OK ? UCS_ERR_IO_ERROR : status;
}

static void tp_req_reap(void **req)
{
    if (*req && ucp_request_check_status(*req) != UCS_INPROGRESS) {
        ucp_request_free(*req);
        *req = NULL;
    }
}

/* Header-only AM from memory that lives in the peer (UCX 1.13 may read the
 * header until the request completes), tracked in *slot. */
static ucs_status_t tp_send_ctl_on(struct sq_peer *p, void **slot, unsigned id, const void *hdr,
                                   size_t len)
{
    tp_req_reap(slot);
    if (*slot) {
        /* the previous one is still going out; UCX frees it when done */
        ucp_request_free(*slot);
        *slot = NULL;
    }
    ucp_request_param_t prm = {0};
    prm.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    prm.flags = UCP_AM_SEND_FLAG_REPLY | UCP_AM_SEND_FLAG_EAGER;
    void *r = ucp_am_send_nbx(p->ep, id, hdr, len, NULL, 0, &prm);
    if (UCS_PTR_IS_ERR(r)) return UCS_PTR_STATUS(r);
    *slot = r;
    return UCS_OK;
}

/* Handshake messages (HELLO, ACCEPT, REJECT): one at a time. */
static ucs_status_t tp_send_ctl(struct sq_peer *p, unsigned id, const void *hdr, size_t len)
{
    return tp_send_ctl_on(p, &p->hs_req, id, hdr, len);
}

/* Start closing the endpoint; the peer is freed by tp_service once UCX is done. */
static void tp_peer_start_close(sq_transport_t *t, struct sq_peer *p, int force)
{
    ucp_request_param_t prm = {0};
    prm.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    prm.flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0;
    void *r = p->ep ? ucp_ep_close_nbx(p->ep, &prm) : NULL;
    p->ep_closing = 1;
    p->close_req = UCS_PTR_IS_PTR(r) ? r : NULL;
    p->state = TP_PEER_CLOSING;
    p->deadline = tp_now() + TP_CLOSE_MAX_S;
}

static void tp_peer_free(sq_transport_t *t, struct sq_peer *p)
{
    tp_peer_unlink(t, p);
    if (p->hs_req) ucp_request_free(p->hs_req);
    if (p->bye_req) ucp_request_free(p->bye_req);
    if (p->ack_req) ucp_request_free(p->ack_req);
    tp_peer_bufs_destroy(p);
    free(p);
}

/* Refuse a connection on the listener side: REJECT (when the ep still works),
 * one line on stderr, close. */
static void tp_refuse(sq_transport_t *t, struct sq_peer *p, const char *reason)
{
    fprintf(stderr, "sparq: stage %d refused a connection from %s: %s\n", t->o.stage, p->addr,
            reason);
    t->n_refused++;
    snprintf(t->last_refusal, sizeof t->last_refusal, "%s: %s", p->addr, reason);
    int alive = p->ep_status == UCS_OK;
    if (alive) {
        p->reject.magic = TP_MAGIC;
        p->reject.version = SQ_TRANSPORT_PROTOCOL_VERSION;
        snprintf(p->reject.reason, sizeof p->reject.reason, "%s", reason);
        if (tp_send_ctl(p, TP_AM_REJECT, &p->reject, sizeof p->reject) != UCS_OK) alive = 0;
    }
    tp_peer_release_deferred(p);
    tp_peer_start_close(t, p, !alive);
}

static struct sq_peer *tp_established(sq_transport_t *t, int stage)
{
    for (struct sq_peer *p = t->peers; p; p = p->next)
        if (p->state == TP_PEER_ESTABLISHED && p->stage == stage) return p;
    return NULL;
}

/* Listener: is this HELLO acceptable (apart from which stage accept waits for)? */
static int tp_hello_bad(sq_transport_t *t, const struct sq_peer *p, char *why, size_t n)
{
    const tp_hello_t *h = &p->hello;
    if (h->magic != TP_MAGIC)
        snprintf(why, n, "not a sparq HELLO (magic 0x%08x)", h->magic);
    else if (h->version != SQ_TRANSPORT_PROTOCOL_VERSION)
        snprintf(why, n, "protocol version %u, this stage speaks %u", h->version,
                 SQ_TRANSPORT_PROTOCOL_VERSION);
    else if (h->job_token != t->o.job_token)
        snprintf(why, n, "bad job token");
    else if (h->n_stages != t->o.n_stages)
        snprintf(why, n, "n_stages %d != %d", h->n_stages, t->o.n_stages);
    else if (h->stage < 0 || h->stage >= t->o.n_stages || h->stage == t->o.stage)
        snprintf(why, n, "claims to be stage %d", h->stage);
    else if (h->plan_hash != t->o.plan_hash)
        snprintf(why, n, "plan hash 0x%016llx (stage %d) != 0x%016llx (stage %d)",
                 (unsigned long long)h->plan_hash, h->stage, (unsigned long long)t->o.plan_hash,
                 t->o.stage);
    else if (tp_established(t, h->stage))
        snprintf(why, n, "stage %d is already connected", h->stage);
    else
        return 0;
    return 1;
}

static void tp_server_ep_create(sq_transport_t *t, ucp_conn_request_h cr)
{
    char addr[64] = "(unknown address)";
    ucp_conn_request_attr_t ca = {0};
    ca.field_mask = UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR;
    if (ucp_conn_request_query(cr, &ca) == UCS_OK)
        tp_sockaddr_str((const struct sockaddr *)&ca.client_address, addr, sizeof addr);

    struct sq_peer *p = calloc(1, sizeof *p);
    if (!p) {
        fprintf(stderr, "sparq: stage %d refused a connection from %s: out of memory\n", t->o.stage,
                addr);
        ucp_listener_reject(t->listener, cr);
        return;
    }
    p->t = t;
    p->stage = -1;
    p->last_step = -1;
    p->last_sent_step = -1;
    snprintf(p->addr, sizeof p->addr, "%s", addr);

    ucp_ep_params_t ep = {0};
    ep.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                    UCP_EP_PARAM_FIELD_ERR_HANDLER;
    ep.conn_request = cr;
    ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    ep.err_handler.cb = tp_ep_err_cb;
    ep.err_handler.arg = p;
    ucs_status_t st = ucp_ep_create(t->worker, &ep, &p->ep);
    if (st != UCS_OK) {
        fprintf(stderr, "sparq: stage %d refused a connection from %s: endpoint: %s\n", t->o.stage,
                addr, ucs_status_string(st));
        t->n_refused++;
        free(p);
        return;
    }
    p->state = TP_PEER_WAIT_HELLO;
    p->deadline = tp_now() + t->o.hello_timeout_s;
    tp_peer_link(t, p);
}

/* Everything that is not a UCX callback: new connections, handshake verdicts
 * and deadlines, freeing closed endpoints. Returns how much it did. */
static unsigned tp_service(sq_transport_t *t)
{
    unsigned n = 0;
    for (int i = 0; i < t->n_connq; i++, n++)
        tp_server_ep_create(t, t->connq[i]);
    t->n_connq = 0;

    double now = tp_now();
    char why[TP_REASON_MAX];
    struct sq_peer *next;
    for (struct sq_peer *p = t->peers; p; p = next) {
        next = p->next;
        switch (p->state) {
        case TP_PEER_WAIT_HELLO:
            if (p->ep_status != UCS_OK) {
                snprintf(why, sizeof why, "connection failed before HELLO (%s)",
                         ucs_status_string(p->ep_status));
                tp_refuse(t, p, why), n++;
            } else if (p->bad[0]) {
                tp_refuse(t, p, p->bad), n++;
            } else if (p->hello_seen) {
                if (tp_hello_bad(t, p, why, sizeof why)) {
                    tp_refuse(t, p, why);
                } else {
                    p->stage = p->hello.stage;
                    p->state = TP_PEER_PARKED;
                    p->deadline = now + t->o.timeout_s;
                }
                n++;
            } else if (now > p->deadline) {
                snprintf(why, sizeof why, "no HELLO within %.1f s", t->o.hello_timeout_s);
                tp_refuse(t, p, why), n++;
            }
            break;
        case TP_PEER_PARKED:
            if (p->ep_status != UCS_OK) {
                snprintf(why, sizeof why, "stage %d's connection failed during the handshake (%s)",
                         p->stage, ucs_status_string(p->ep_status));
                tp_refuse(t, p, why), n++;
            } else if (p->bad[0]) {
                tp_refuse(t, p, p->bad), n++;
            } else if (t->accepting >= 0 && p->stage != t->accepting) {
                snprintf(why, sizeof why, "stage %d waits for stage %d here, not stage %d",
                         t->o.stage, t->accepting, p->stage);
                tp_refuse(t, p, why), n++;
            } else if (tp_established(t, p->stage)) {
                snprintf(why, sizeof why, "stage %d is already connected", p->stage);
                tp_refuse(t, p, why), n++;
            } else if (now > p->deadline) {
                snprintf(why, sizeof why, "stage %d was not expected (no accept within %.0f s)",
                         p->stage, t->o.timeout_s);
                tp_refuse(t, p, why), n++;
            }
            break;
        case TP_PEER_CLOSING:
            tp_req_reap(&p->close_req);
            if (!p->close_req && tp_peer_quiet(p)) tp_peer_free(t, p), n++;
            break;
        case TP_PEER_ESTABLISHED:
            if (p->ack_due && p->ep_status == UCS_OK) {
                /* every message sent before their BYE has been through our AM
                 * handler: they may close now */
                p->ack_due = 0;
                p->bye_ack.magic = TP_MAGIC;
                p->bye_ack.version = SQ_TRANSPORT_PROTOCOL_VERSION;
                p->bye_ack.n_sent = p->head_seq + (uint64_t)p->held;
                tp_send_ctl_on(p, &p->ack_req, TP_AM_BYE_ACK, &p->bye_ack, sizeof p->bye_ack);
                n++;
            }
            tp_req_reap(&p->bye_req);
            tp_req_reap(&p->ack_req);
            /* fall through */
        case TP_PEER_CONNECTING:
            tp_req_reap(&p->hs_req);
            break;
        }
    }
    return n;
}

unsigned tp_progress(sq_transport_t *t)
{
    unsigned n = 0, k;
    while ((k = ucp_worker_progress(t->worker)) != 0 && n < 4096)
        n += k;
    return n + tp_service(t);
}

int tp_wait_round(sq_transport_t *t, tp_waiter_t *w, double deadline)
{
    if (tp_progress(t)) {
        w->idle_since = 0;
        /* busy: look at the clock now and then only (a flood of other traffic
         * must not hide the deadline) */
        return (++w->busy_rounds & 63) == 0 && tp_now() > deadline;
    }
    double now = tp_now();
    if (now > deadline) return 1;
    if (w->idle_since == 0) {
        w->idle_since = now;
        return 0;
    }
    if (now - w->idle_since < TP_SPIN_S) return 0;
    double left_ms = (deadline - now) * 1e3;
    int ms = left_ms >= TP_MAX_SLEEP_MS ? TP_MAX_SLEEP_MS : (int)left_ms + 1;
    if (t->efd >= 0) {
        ucs_status_t st = ucp_worker_arm(t->worker);
        if (st == UCS_ERR_BUSY) return 0; /* events pending: progress again */
        if (st == UCS_OK) {
            struct pollfd pfd = {.fd = t->efd, .events = POLLIN};
            poll(&pfd, 1, ms);
            return 0;
        }
    }
    struct timespec ts = {0, 100000}; /* no event fd: a tiny sleep */
    nanosleep(&ts, NULL);
    return 0;
}

void sq_transport_progress(sq_transport_t *t)
{
    if (t) tp_progress(t);
}

/* ---------------------------------------------------------------- AM handlers */

static struct sq_peer *tp_am_peer(sq_transport_t *t, const ucp_am_recv_param_t *param)
{
    if (!(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)) return NULL;
    return tp_peer_by_ep(t, param->reply_ep);
}

static ucs_status_t tp_am_hello_cb(void *arg, const void *header, size_t hlen, void *data,
                                   size_t length, const ucp_am_recv_param_t *param)
{
    struct sq_peer *p = tp_am_peer(arg, param);
    if (!p || p->is_client) return UCS_OK;
    if (p->state != TP_PEER_WAIT_HELLO) {
        if (p->state == TP_PEER_PARKED)
            snprintf(p->bad, sizeof p->bad, "sent a second HELLO");
        else if (p->state == TP_PEER_ESTABLISHED && !p->proto_err[0])
            snprintf(p->proto_err, sizeof p->proto_err,
                     "stage %d: stage %d sent a HELLO on an established connection", p->t->o.stage,
                     p->stage);
        return UCS_OK;
    }
    if (hlen != sizeof(tp_hello_t) || length != 0)
        snprintf(p->bad, sizeof p->bad, "malformed HELLO (%zu header bytes, %zu data bytes)", hlen,
                 length);
    else {
        memcpy(&p->hello, header, sizeof p->hello);
        p->hello_seen = 1;
    }
    return UCS_OK;
}

static ucs_status_t tp_am_accept_cb(void *arg, const void *header, size_t hlen, void *data,
                                    size_t length, const ucp_am_recv_param_t *param)
{
    struct sq_peer *p = tp_am_peer(arg, param);
    if (!p || !p->is_client || p->state != TP_PEER_CONNECTING) return UCS_OK;
    if (hlen != sizeof(tp_hello_t)) {
        p->rejected = 1;
        snprintf(p->reject.reason, sizeof p->reject.reason,
                 "malformed ACCEPT (%zu header bytes): not a sparq stage", hlen);
        return UCS_OK;
    }
    memcpy(&p->answer, header, sizeof p->answer);
    p->accepted = 1;
    return UCS_OK;
}

static ucs_status_t tp_am_reject_cb(void *arg, const void *header, size_t hlen, void *data,
                                    size_t length, const ucp_am_recv_param_t *param)
{
    struct sq_peer *p = tp_am_peer(arg, param);
    if (!p || !p->is_client || p->state != TP_PEER_CONNECTING) return UCS_OK;
    p->rejected = 1;
    if (hlen == sizeof(tp_reject_t)) {
        memcpy(&p->reject, header, sizeof p->reject);
        p->reject.reason[TP_REASON_MAX - 1] = 0;
    } else {
        snprintf(p->reject.reason, sizeof p->reject.reason, "malformed REJECT (%zu bytes)", hlen);
    }
    return UCS_OK;
}

static ucs_status_t tp_am_bye_cb(void *arg, const void *header, size_t hlen, void *data,
                                 size_t length, const ucp_am_recv_param_t *param)
{
    struct sq_peer *p = tp_am_peer(arg, param);
    if (!p || p->state != TP_PEER_ESTABLISHED) return UCS_OK;
    tp_bye_t b;
    if (hlen != sizeof b) return UCS_OK;
    memcpy(&b, header, sizeof b);
    if (b.magic != TP_MAGIC) return UCS_OK;
    p->bye_seen = 1;
    p->bye_n_sent = b.n_sent;
    p->ack_due = 1;
    return UCS_OK;
}

static ucs_status_t tp_am_bye_ack_cb(void *arg, const void *header, size_t hlen, void *data,
                                     size_t length, const ucp_am_recv_param_t *param)
{
    struct sq_peer *p = tp_am_peer(arg, param);
    if (p && p->state == TP_PEER_ESTABLISHED && hlen == sizeof(tp_bye_t)) p->bye_acked = 1;
    return UCS_OK;
}

static void tp_conn_cb(ucp_conn_request_h cr, void *arg)
{
    sq_transport_t *t = arg;
    if (t->n_connq < TP_CONNQ_MAX) {
        t->connq[t->n_connq++] = cr;
        return;
    }
    fprintf(stderr, "sparq: stage %d refused a connection: %d already waiting\n", t->o.stage,
            TP_CONNQ_MAX);
    ucp_listener_reject(t->listener, cr);
}

/* ---------------------------------------------------------------- create / destroy */

static sq_status_t tp_opts_check(const sq_transport_opts_t *o)
{
    if (o->n_stages < 1 || o->stage < 0 || o->stage >= o->n_stages)
        return sq_error_set(SQ_ERR_INVALID_ARG, "transport: stage %d of %d is out of range",
                            o->stage, o->n_stages);
    if (o->slots < 0 || o->slots > 4096)
        return sq_error_set(SQ_ERR_INVALID_ARG, "transport (stage %d): slots = %d", o->stage,
                            o->slots);
    if (o->send_depth < 0 || o->send_depth > 65536)
        return sq_error_set(SQ_ERR_INVALID_ARG, "transport (stage %d): send_depth = %d", o->stage,
                            o->send_depth);
    if (!(o->timeout_s >= 0) || !(o->hello_timeout_s >= 0))
        return sq_error_set(SQ_ERR_INVALID_ARG, "transport (stage %d): negative timeout", o->stage);
    if (o->max_msg > ((size_t)1 << 40))
        return sq_error_set(SQ_ERR_INVALID_ARG, "transport (stage %d): max_msg %zu is too large",
                            o->stage, o->max_msg);
    if (o->listen_addr && strlen(o->listen_addr) >= 96)
        return sq_error_set(SQ_ERR_INVALID_ARG, "transport (stage %d): listen address too long",
                            o->stage);
    return SQ_OK;
}

static void tp_config_apply(sq_transport_t *t, ucp_config_t *cfg)
{
    size_t off = 0;
    t->applied[0] = 0;
    for (size_t i = 0; i < sizeof tp_knobs / sizeof tp_knobs[0]; i++) {
        const tp_knob_t *k = &tp_knobs[i];
        const char *user = NULL, *user_name = NULL;
        for (int e = 0; e < 2 && k->env[e] && !user; e++)
            if ((user = getenv(k->env[e]))) user_name = k->env[e];
        int n;
        if (user)
            n = snprintf(t->applied + off, sizeof t->applied - off,
                         "  %s=%s (from the environment)\n", user_name, user);
        else if (ucp_config_modify(cfg, k->key, k->value) == UCS_OK)
            n = snprintf(t->applied + off, sizeof t->applied - off, "  %s=%s (set by sparq)\n",
                         k->env[0], k->value);
        else
            n = snprintf(t->applied + off, sizeof t->applied - off,
                         "  %s=%s (not known to this UCX, not set)\n", k->env[0], k->value);
        if (n > 0 && (size_t)n < sizeof t->applied - off) off += (size_t)n;
    }
}

sq_status_t sq_transport_create(const sq_transport_opts_t *o, sq_transport_t **out)
{
    if (!o || !out) return sq_error_set(SQ_ERR_INVALID_ARG, "sq_transport_create: NULL argument");
    SQ_TRY(tp_opts_check(o));
    sq_status_t st = SQ_OK;
    ucs_status_t us;
    sq_transport_t *t = calloc(1, sizeof *t);
    if (!t) return sq_error_set(SQ_ERR_NOMEM, "transport (stage %d): out of memory", o->stage);
    t->o = *o;
    if (!t->o.slots) t->o.slots = 8;
    if (!t->o.send_depth) t->o.send_depth = 32;
    if (t->o.timeout_s == 0) t->o.timeout_s = 60;
    if (t->o.hello_timeout_s == 0) t->o.hello_timeout_s = t->o.timeout_s < 5 ? t->o.timeout_s : 5;
    if (o->listen_addr) {
        snprintf(t->listen_str, sizeof t->listen_str, "%s", o->listen_addr);
        t->o.listen_addr = t->listen_str;
    }
    t->efd = -1;
    t->accepting = -1;

    ucp_config_t *cfg;
    us = ucp_config_read(NULL, NULL, &cfg);
    if (us != UCS_OK) {
        st = sq_error_set(SQ_ERR_TRANSPORT, "stage %d: ucp_config_read: %s", o->stage,
                          ucs_status_string(us));
        goto err_free;
    }
    tp_config_apply(t, cfg);
    ucp_params_t up = {0};
    char name[32];
    snprintf(name, sizeof name, "sparq-stage-%d", o->stage);
    up.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_NAME;
    up.features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
    up.name = name;
    us = ucp_init(&up, cfg, &t->ctx);
    ucp_config_release(cfg);
    if (us != UCS_OK) {
        st = sq_error_set(SQ_ERR_TRANSPORT, "stage %d: ucp_init: %s", o->stage,
                          ucs_status_string(us));
        goto err_free;
    }

    ucp_worker_params_t wp = {0};
    wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    wp.thread_mode = UCS_THREAD_MODE_SINGLE;
    us = ucp_worker_create(t->ctx, &wp, &t->worker);
    if (us != UCS_OK) {
        st = sq_error_set(SQ_ERR_TRANSPORT, "stage %d: ucp_worker_create: %s", o->stage,
                          ucs_status_string(us));
        goto err_cleanup_ctx;
    }
    ucp_worker_attr_t wa = {0};
    wa.field_mask = UCP_WORKER_ATTR_FIELD_MAX_AM_HEADER;
    if (ucp_worker_query(t->worker, &wa) == UCS_OK && wa.max_am_header < sizeof(tp_reject_t)) {
        st = sq_error_set(SQ_ERR_TRANSPORT,
                          "stage %d: UCX allows %zu-byte AM headers, sparq needs %zu", o->stage,
                          wa.max_am_header, sizeof(tp_reject_t));
        goto err_destroy_worker;
    }
    if (ucp_worker_get_efd(t->worker, &t->efd) != UCS_OK) t->efd = -1;

    static const struct {
        unsigned id;
        ucp_am_recv_callback_t cb;
        uint32_t flags;
    } handlers[] = {
        {TP_AM_HELLO, tp_am_hello_cb, 0},
        {TP_AM_ACCEPT, tp_am_accept_cb, 0},
        {TP_AM_REJECT, tp_am_reject_cb, 0},
        /* PERSISTENT_DATA: eager data always comes as a descriptor we may keep
         * (UCS_INPROGRESS) when every slot is taken; without it, data that the
         * transport hands over inline (tcp) could only be copied or dropped. */
        {TP_AM_DATA, tp_am_data_cb, UCP_AM_FLAG_PERSISTENT_DATA},
        {TP_AM_BYE, tp_am_bye_cb, 0},
        {TP_AM_BYE_ACK, tp_am_bye_ack_cb, 0},
    };
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++) {
        ucp_am_handler_param_t hp = {0};
        hp.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                        UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS;
        hp.id = handlers[i].id;
        hp.cb = handlers[i].cb;
        hp.arg = t;
        hp.flags = handlers[i].flags;
        us = ucp_worker_set_am_recv_handler(t->worker, &hp);
        if (us != UCS_OK) {
            st = sq_error_set(SQ_ERR_TRANSPORT, "stage %d: ucp_worker_set_am_recv_handler: %s",
                              o->stage, ucs_status_string(us));
            goto err_destroy_worker;
        }
    }

    if (t->o.listen_addr) {
        struct sockaddr_storage ss;
        socklen_t sl;
        SQ_TRY_GOTO(st, tp_parse_addr(t, t->o.listen_addr, "listen", &ss, &sl), err_destroy_worker);
        ucp_listener_params_t lp = {0};
        lp.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER;
        lp.sockaddr.addr = (const struct sockaddr *)&ss;
        lp.sockaddr.addrlen = sl;
        lp.conn_handler.cb = tp_conn_cb;
        lp.conn_handler.arg = t;
        us = ucp_listener_create(t->worker, &lp, &t->listener);
        if (us != UCS_OK) {
            st = sq_error_set(SQ_ERR_TRANSPORT, "stage %d: cannot listen on %s: %s", o->stage,
                              t->o.listen_addr, ucs_status_string(us));
            goto err_destroy_worker;
        }
        ucp_listener_attr_t la = {0};
        la.field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR;
        if (ucp_listener_query(t->listener, &la) == UCS_OK)
            tp_sockaddr_str((const struct sockaddr *)&la.sockaddr, t->bound_addr,
                            sizeof t->bound_addr);
        else
            snprintf(t->bound_addr, sizeof t->bound_addr, "%s", t->o.listen_addr);
    }
    *out = t;
    return SQ_OK;

err_destroy_worker:
    ucp_worker_destroy(t->worker);
err_cleanup_ctx:
    ucp_cleanup(t->ctx);
err_free:
    free(t);
    return st;
}

const char *sq_transport_listen_addr(const sq_transport_t *t)
{
    return t && t->listener ? t->bound_addr : NULL;
}

void sq_transport_destroy(sq_transport_t *t)
{
    if (!t) return;
    /* 1. BYE to every live connected peer; wait (up to timeout_s) for their
     *    BYE_ACK, which says every message we sent before it went through their
     *    AM handler. Closing earlier could make UCX drop messages still queued
     *    at the peer (it discards arrivals on an endpoint that has failed),
     *    which a flush alone does not prevent on shared memory. Their BYEs are
     *    answered meanwhile (tp_service), so two stages leaving together do not
     *    wait for each other. */
    int waiting = 0;
    for (struct sq_peer *p = t->peers; p; p = p->next) {
        if (p->state != TP_PEER_ESTABLISHED || p->ep_status != UCS_OK) continue;
        p->bye.magic = TP_MAGIC;
        p->bye.version = SQ_TRANSPORT_PROTOCOL_VERSION;
        p->bye.n_sent = p->send_seq;
        if (tp_send_ctl_on(p, &p->bye_req, TP_AM_BYE, &p->bye, sizeof p->bye) == UCS_OK)
            p->bye_sent = waiting = 1;
    }
    double deadline = tp_now() + t->o.timeout_s;
    tp_waiter_t w = {0};
    while (waiting && tp_now() < deadline) {
        tp_wait_round(t, &w, deadline);
        waiting = 0;
        for (struct sq_peer *p = t->peers; p; p = p->next)
            if (p->bye_sent && !p->bye_acked && p->ep_status == UCS_OK) waiting = 1;
    }
    /* 2. Refuse pending handshakes, start every close: flush when the peer is
     *    alive and nothing of ours is still in flight on it; force when it is
     *    dead or a send/rendezvous receive is unfinished (a flush would wait
     *    for it forever, and UCX 1.13 aborts when a worker is destroyed with
     *    requests still on an endpoint; force completes them as cancelled). */
    for (struct sq_peer *p = t->peers; p; p = p->next) {
        if (p->state == TP_PEER_CLOSING) continue;
        int alive = p->ep_status == UCS_OK && tp_peer_quiet(p);
        if (alive && (p->state == TP_PEER_WAIT_HELLO || p->state == TP_PEER_PARKED)) {
            p->reject.magic = TP_MAGIC;
            p->reject.version = SQ_TRANSPORT_PROTOCOL_VERSION;
            snprintf(p->reject.reason, sizeof p->reject.reason, "stage %d is shutting down",
                     t->o.stage);
            if (tp_send_ctl(p, TP_AM_REJECT, &p->reject, sizeof p->reject) != UCS_OK) alive = 0;
        }
        tp_peer_release_deferred(p);
        tp_peer_start_close(t, p, !alive);
    }
    for (int i = 0; i < t->n_connq; i++)
        ucp_listener_reject(t->listener, t->connq[i]);
    t->n_connq = 0;
    /* 3. Let the flushes finish (bounded), freeing peers as their close completes. */
    double limit = t->o.timeout_s < TP_CLOSE_MAX_S ? t->o.timeout_s : TP_CLOSE_MAX_S;
    deadline = tp_now() + limit;
    while (t->peers && tp_now() < deadline)
        tp_wait_round(t, &w, deadline);
    for (struct sq_peer *p = t->peers; p; p = p->next)
        if (p->close_req && ucp_request_check_status(p->close_req) == UCS_INPROGRESS) {
            /* Destroying the worker now would abort in UCX; leave it all to
             * process exit instead (memory only, the process is leaving). */
            fprintf(stderr,
                    "sparq: stage %d: the endpoint to %s did not close within %.1f s; "
                    "leaving UCX to process exit\n",
                    t->o.stage, p->addr, limit);
            return;
        }
    if (t->listener) ucp_listener_destroy(t->listener);
    /* 4. The worker takes whatever did not finish; then nothing can call back. */
    ucp_worker_destroy(t->worker);
    while (t->peers) {
        struct sq_peer *p = t->peers;
        p->close_req = p->hs_req = p->bye_req = p->ack_req = NULL; /* gone with the worker */
        tp_peer_free(t, p);
    }
    ucp_cleanup(t->ctx);
    free(t);
}

/* ---------------------------------------------------------------- connect / accept */

static struct sq_peer *tp_peer_new(sq_transport_t *t, int is_client, int stage)
{
    struct sq_peer *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->t = t;
    p->is_client = is_client;
    p->stage = stage;
    p->last_step = -1;
    p->last_sent_step = -1;
    return p;
}

static void tp_hello_fill(const sq_transport_t *t, tp_hello_t *h)
{
    memset(h, 0, sizeof *h);
    h->magic = TP_MAGIC;
    h->version = SQ_TRANSPORT_PROTOCOL_VERSION;
    h->job_token = t->o.job_token;
    h->plan_hash = t->o.plan_hash;
    h->stage = t->o.stage;
    h->n_stages = t->o.n_stages;
    h->max_msg = t->o.max_msg;
}

/* Client: close this attempt's endpoint and wait for UCX to let go of it. */
static void tp_client_close(sq_transport_t *t, struct sq_peer *p, int force)
{
    tp_peer_release_deferred(p);
    ucp_request_param_t prm = {0};
    prm.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    prm.flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0;
    void *r = ucp_ep_close_nbx(p->ep, &prm);
    double deadline = tp_now() + TP_CLOSE_MAX_S;
    tp_waiter_t w = {0};
    p->ep_closing = 1; /* the peer must not match AMs of the dying ep */
    while (UCS_PTR_IS_PTR(r) && ucp_request_check_status(r) == UCS_INPROGRESS &&
           tp_now() < deadline)
        tp_wait_round(t, &w, deadline);
    if (UCS_PTR_IS_PTR(r)) ucp_request_free(r);
    if (p->hs_req) {
        ucp_request_free(p->hs_req);
        p->hs_req = NULL;
    }
    p->ep = NULL;
}

sq_status_t sq_transport_connect(sq_transport_t *t, const char *addr, int peer_stage,
                                 sq_peer_t **out)
{
    if (!t || !addr || !out)
        return sq_error_set(SQ_ERR_INVALID_ARG, "sq_transport_connect: NULL argument");
    const int me = t->o.stage;
    if (peer_stage < 0 || peer_stage >= t->o.n_stages || peer_stage == me)
        return sq_error_set(SQ_ERR_INVALID_ARG, "stage %d: cannot connect to stage %d (of %d)", me,
                            peer_stage, t->o.n_stages);
    if (tp_established(t, peer_stage))
        return sq_error_set(SQ_ERR_INVALID_ARG, "stage %d: already connected to stage %d", me,
                            peer_stage);
    struct sockaddr_storage ss;
    socklen_t sl;
    SQ_TRY(tp_parse_addr(t, addr, "connect", &ss, &sl));

    sq_status_t st;
    struct sq_peer *p = tp_peer_new(t, 1, peer_stage);
    if (!p) return sq_error_set(SQ_ERR_NOMEM, "stage %d: out of memory", me);
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    p->state = TP_PEER_CONNECTING;
    tp_peer_link(t, p);
    SQ_TRY_GOTO(st, tp_peer_bufs_create(p), err_free_peer);
    tp_hello_fill(t, &p->hello);

    const double t0 = tp_now(), deadline = t0 + t->o.timeout_s;
    char last[160] = "no attempt";
    int attempts = 0;
    tp_waiter_t w = {0};
    for (;;) {
        attempts++;
        tp_peer_bufs_reset(p);
        p->accepted = p->rejected = 0;
        p->ep_status = UCS_OK;
        p->ep_closing = 0;
        ucp_ep_params_t ep = {0};
        ep.field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR |
                        UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
        ep.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
        ep.sockaddr.addr = (const struct sockaddr *)&ss;
        ep.sockaddr.addrlen = sl;
        ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
        ep.err_handler.cb = tp_ep_err_cb;
        ep.err_handler.arg = p;
        ucs_status_t us = ucp_ep_create(t->worker, &ep, &p->ep);
        if (us != UCS_OK) {
            p->ep = NULL;
            snprintf(last, sizeof last, "ucp_ep_create: %s", ucs_status_string(us));
        } else if ((us = tp_send_ctl(p, TP_AM_HELLO, &p->hello, sizeof p->hello)) != UCS_OK) {
            snprintf(last, sizeof last, "sending HELLO: %s", ucs_status_string(us));
            tp_client_close(t, p, 1);
        } else {
            while (!p->accepted && !p->rejected && p->ep_status == UCS_OK && tp_now() < deadline)
                tp_wait_round(t, &w, deadline);
            if (p->rejected) {
                st = sq_error_set(SQ_ERR_TRANSPORT, "stage %d at %s refused stage %d: %s",
                                  peer_stage, addr, me, p->reject.reason);
                tp_client_close(t, p, 1);
                goto err_free_bufs;
            }
            if (p->accepted) {
                const tp_hello_t *a = &p->answer;
                char why[160] = "";
                if (a->magic != TP_MAGIC || a->version != SQ_TRANSPORT_PROTOCOL_VERSION)
                    snprintf(why, sizeof why, "not a sparq stage (or protocol version %u != %u)",
                             a->version, SQ_TRANSPORT_PROTOCOL_VERSION);
                else if (a->job_token != t->o.job_token)
                    snprintf(why, sizeof why, "it belongs to another job (job token differs)");
                else if (a->stage != peer_stage)
                    snprintf(why, sizeof why, "it is stage %d, not stage %d", a->stage, peer_stage);
                else if (a->plan_hash != t->o.plan_hash)
                    snprintf(why, sizeof why, "plan hash 0x%016llx != 0x%016llx (ours)",
                             (unsigned long long)a->plan_hash, (unsigned long long)t->o.plan_hash);
                if (why[0]) {
                    st = sq_error_set(SQ_ERR_TRANSPORT, "stage %d: the listener at %s: %s", me,
                                      addr, why);
                    tp_client_close(t, p, 1);
                    goto err_free_bufs;
                }
                p->remote_max_msg = a->max_msg;
                p->state = TP_PEER_ESTABLISHED;
                *out = p;
                return SQ_OK;
            }
            if (p->ep_status != UCS_OK)
                snprintf(last, sizeof last, "%s", ucs_status_string(p->ep_status));
            else
                snprintf(last, sizeof last, "no answer to HELLO");
            tp_client_close(t, p, 1);
        }
        if (tp_now() + TP_RETRY_S >= deadline) break;
        double resume = tp_now() + TP_RETRY_S;
        while (tp_now() < resume)
            tp_wait_round(t, &w, resume);
    }
    st = sq_error_set(SQ_ERR_TRANSPORT,
                      "stage %d could not connect to stage %d at %s within %.1f s "
                      "(%d attempts; last: %s)",
                      me, peer_stage, addr, t->o.timeout_s, attempts, last);
err_free_bufs:
err_free_peer:
    tp_peer_free(t, p);
    return st;
}

sq_status_t sq_transport_accept(sq_transport_t *t, int expected_stage, sq_peer_t **out)
{
    if (!t || !out) return sq_error_set(SQ_ERR_INVALID_ARG, "sq_transport_accept: NULL argument");
    const int me = t->o.stage;
    if (!t->listener)
        return sq_error_set(SQ_ERR_INVALID_ARG, "stage %d: accept without a listen address", me);
    if (expected_stage < 0 || expected_stage >= t->o.n_stages || expected_stage == me)
        return sq_error_set(SQ_ERR_INVALID_ARG, "stage %d: cannot accept stage %d (of %d)", me,
                            expected_stage, t->o.n_stages);
    if (tp_established(t, expected_stage))
        return sq_error_set(SQ_ERR_INVALID_ARG, "stage %d: stage %d is already connected", me,
                            expected_stage);
    const double deadline = tp_now() + t->o.timeout_s;
    const int refused0 = t->n_refused;
    tp_waiter_t w = {0};
    t->accepting = expected_stage;
    for (;;) {
        for (struct sq_peer *p = t->peers; p; p = p->next) {
            if (p->state != TP_PEER_PARKED || p->stage != expected_stage ||
                p->ep_status != UCS_OK || p->bad[0])
                continue;
            t->accepting = -1;
            sq_status_t st = tp_peer_bufs_create(p);
            if (st != SQ_OK) {
                tp_refuse(t, p, "out of memory for receive slots");
                return sq_error_push(st, "stage %d: accepting stage %d", me, expected_stage);
            }
            p->remote_max_msg = p->hello.max_msg;
            tp_hello_fill(t, &p->answer);
            ucs_status_t us = tp_send_ctl(p, TP_AM_ACCEPT, &p->answer, sizeof p->answer);
            if (us != UCS_OK) {
                tp_refuse(t, p, "could not send ACCEPT");
                return sq_error_set(SQ_ERR_TRANSPORT, "stage %d: sending ACCEPT to stage %d: %s",
                                    me, expected_stage, ucs_status_string(us));
            }
            p->state = TP_PEER_ESTABLISHED;
            *out = p;
            return SQ_OK;
        }
        if (tp_now() > deadline) break;
        tp_wait_round(t, &w, deadline);
    }
    t->accepting = -1;
    if (t->n_refused > refused0)
        return sq_error_set(SQ_ERR_TRANSPORT,
                            "stage %d: stage %d did not connect to %s within %.1f s "
                            "(%d connection(s) refused, last from %s)",
                            me, expected_stage, t->bound_addr, t->o.timeout_s,
                            t->n_refused - refused0, t->last_refusal);
    return sq_error_set(SQ_ERR_TRANSPORT, "stage %d: stage %d did not connect to %s within %.1f s",
                        me, expected_stage, t->bound_addr, t->o.timeout_s);
}

/* ---------------------------------------------------------------- describe */

void sq_transport_describe(const sq_transport_t *t, FILE *f)
{
    if (!t || !f) return;
    fprintf(f, "UCX %s, stage %d of %d%s%s\n", ucp_get_version_string(), t->o.stage, t->o.n_stages,
            t->listener ? ", listening on " : "", t->listener ? t->bound_addr : "");
    fprintf(f, "UCX settings:\n%s", t->applied);
    static const char *const env[] = {"UCX_TLS",         "UCX_NET_DEVICES",  "UCX_RNDV_THRESH",
                                      "UCX_RNDV_SCHEME", "UCX_ZCOPY_THRESH", "UCX_PROTO_ENABLE"};
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++) {
        const char *v = getenv(env[i]);
        if (v) fprintf(f, "  %s=%s (from the environment)\n", env[i], v);
    }
    for (const struct sq_peer *p = t->peers; p; p = p->next)
        if (p->state == TP_PEER_ESTABLISHED && p->ep) {
            fprintf(f, "peer stage %d (%s):\n", p->stage, p->addr);
            ucp_ep_print_info(p->ep, f);
        }
}

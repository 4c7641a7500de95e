/* Private to runtime/transport*.c: the objects behind sparq/transport.h and
 * the wire structs. transport.c owns the context, worker, listener, handshake
 * and progress; transport_peer.c owns slots, sends and receives. */
#ifndef SPARQ_TRANSPORT_INTERNAL_H
#define SPARQ_TRANSPORT_INTERNAL_H

#include <stdint.h>

#include <ucp/api/ucp.h>

#include "sparq/transport.h"

/* ---- wire (host byte order; see transport.h) ---- */

#define TP_MAGIC 0x50545153u /* "SQTP" little-endian */

/* Active Message ids. Small numbers: UCP keeps a table indexed by id. */
enum {
    TP_AM_HELLO = 1,   /* client -> listener, header only: tp_hello_t */
    TP_AM_ACCEPT = 2,  /* listener -> client, header only: tp_hello_t (listener's values) */
    TP_AM_REJECT = 3,  /* listener -> client, header only: tp_reject_t */
    TP_AM_DATA = 4,    /* either way: header tp_data_hdr_t, data = payload */
    TP_AM_BYE = 5,     /* either way, at destroy: tp_bye_t */
    TP_AM_BYE_ACK = 6, /* answer to BYE once every message before it was taken in: tp_bye_t */
};

typedef struct tp_hello {
    uint32_t magic, version;
    uint64_t job_token;
    uint64_t plan_hash;
    int32_t stage, n_stages;
    uint64_t max_msg;
} tp_hello_t;

#define TP_REASON_MAX 200
typedef struct tp_reject {
    uint32_t magic, version;
    char reason[TP_REASON_MAX]; /* NUL-terminated */
} tp_reject_t;

typedef struct tp_data_hdr {
    sq_msg_hdr_t h;
    uint64_t seq; /* per peer and direction, from 0: lets the receiver place by order */
} tp_data_hdr_t;

typedef struct tp_bye {
    uint32_t magic, version;
    uint64_t n_sent; /* data messages sent on this connection */
} tp_bye_t;

/* ---- objects ---- */

typedef enum tp_peer_state {
    TP_PEER_CONNECTING,  /* client: ep created, HELLO sent, waiting for ACCEPT/REJECT */
    TP_PEER_WAIT_HELLO,  /* listener: ep created from a conn request, no HELLO yet */
    TP_PEER_PARKED,      /* listener: valid HELLO, waiting for the accept that claims it */
    TP_PEER_ESTABLISHED, /* handed to the user */
    TP_PEER_CLOSING,     /* refused or failed handshake: ep close in flight, then freed */
} tp_peer_state_t;

typedef enum tp_slot_state {
    TP_SLOT_FREE,
    TP_SLOT_FILLING, /* rendezvous receive in flight */
    TP_SLOT_READY,   /* complete, not yet returned by sq_peer_recv */
    TP_SLOT_HELD,    /* returned by sq_peer_recv, until sq_peer_release */
} tp_slot_state_t;

typedef struct tp_slot {
    tp_slot_state_t state;
    uint64_t seq;
    sq_msg_hdr_t h;
    void *buf;           /* slot_size bytes inside the peer's registered slab */
    ucs_status_t status; /* rendezvous outcome */
    struct sq_peer *peer;
} tp_slot_t;

/* An arrival that found its slot taken: a UCX descriptor kept until then. */
typedef struct tp_deferred {
    tp_data_hdr_t w;
    void *desc; /* eager: persistent data (ucp_am_data_release); rndv: descriptor */
    int rndv;
} tp_deferred_t;

struct sq_send_req {
    struct sq_peer *peer;
    tp_data_hdr_t w; /* the AM header: UCX 1.13 reads it until the send completes */
    void *ucx;       /* UCP request, NULL when completed immediately */
    ucs_status_t status;
    int busy;      /* taken from the pool */
    int done;      /* UCX finished with it */
    int abandoned; /* the user gave up on it (error/timeout): recycle on completion */
};

struct sq_peer {
    sq_transport_t *t;
    struct sq_peer *next;
    tp_peer_state_t state;
    int is_client;
    int ep_closing; /* ucp_ep_close_nbx called: AMs on ep no longer map to us */
    int stage;      /* the other end (client: who we expect; listener: from HELLO) */
    ucp_ep_h ep;
    ucs_status_t ep_status; /* UCS_OK until the error callback fires */
    char addr[64];          /* remote "host:port" for messages */
    double deadline;        /* WAIT_HELLO / PARKED / CLOSING: when to give up */
    void *close_req;        /* CLOSING: ucp_ep_close_nbx request */

    /* handshake */
    int hello_seen;          /* listener: a HELLO arrived (copied to hello) */
    tp_hello_t hello;        /* listener: theirs; client: the one we sent (AM header) */
    char bad[TP_REASON_MAX]; /* listener: protocol violation seen before the handshake ended */
    int accepted, rejected;  /* client: the answer arrived */
    tp_hello_t answer;       /* client: their ACCEPT; listener: the ACCEPT we sent */
    tp_reject_t reject;      /* REJECT received (client) or being sent (listener) */
    void *hs_req;            /* HELLO/ACCEPT/REJECT/BYE send in flight */
    uint64_t remote_max_msg;
    tp_bye_t bye;            /* BYE we send at destroy */
    tp_bye_t bye_ack;        /* our answer to their BYE */
    void *bye_req, *ack_req; /* those two sends in flight */
    int bye_sent, bye_acked; /* our BYE went out / they answered it */
    int ack_due;             /* their BYE arrived: answer it (tp_service) */

    /* receive side */
    void *slab; /* slots * slot_size, ucp_mem_map'ed */
    ucp_mem_h memh;
    size_t slot_size;
    int nslots;
    tp_slot_t *slot;      /* [nslots]; message seq lives in slot[seq % nslots] */
    uint64_t head_seq;    /* oldest message not yet released */
    int held;             /* messages returned by recv and not released */
    tp_deferred_t *defer; /* [defer_cap], unordered */
    int n_defer, defer_cap;
    char proto_err[256]; /* protocol violation by an established peer ("" none) */
    int bye_seen;
    uint64_t bye_n_sent;
    int64_t last_step; /* step of the last message received (-1 none) */
    sq_peer_stats_t stats;

    /* send side */
    sq_send_req_t *req;  /* [send_depth] */
    int n_req, req_next; /* pool; where to look for a free one first */
    uint64_t send_seq;
    int64_t last_sent_step;
};

#define TP_CONNQ_MAX 32

struct sq_transport {
    sq_transport_opts_t o; /* defaults filled in; listen_addr points to listen_str */
    char listen_str[96];
    char bound_addr[96];
    ucp_context_h ctx;
    ucp_worker_h worker;
    ucp_listener_h listener;
    int efd;               /* worker event fd, -1 when UCX gave none (then we sleep) */
    struct sq_peer *peers; /* every endpoint, whatever its state */
    ucp_conn_request_h connq[TP_CONNQ_MAX]; /* arrived, ep not yet created */
    int n_connq;
    int accepting; /* stage an sq_transport_accept call waits for, -1 none */
    int n_refused; /* connections refused so far (for timeout messages) */
    char last_refusal[TP_REASON_MAX + 64];
    char applied[512]; /* the UCX settings sq_transport_create applied (for describe) */
};

/* ---- shared helpers ---- */

double tp_now(void);

/* Progress the worker until it is idle once, then run housekeeping
 * (new connections, handshake deadlines, closing endpoints). */
unsigned tp_progress(sq_transport_t *t);

/* Wait state for one blocking call: spin briefly, then sleep on the event fd. */
typedef struct tp_waiter {
    double idle_since; /* 0 = something happened on the last round */
    unsigned busy_rounds;
} tp_waiter_t;

/* One round of a blocking loop: progress; when nothing happened for a while,
 * block on the worker's event fd (at most until deadline, and 10 ms).
 * Returns 1 once the deadline has passed (checked when idle, and every 64
 * busy rounds), else 0. */
int tp_wait_round(sq_transport_t *t, tp_waiter_t *w, double deadline);

/* Find the peer that owns ep (NULL when none). */
struct sq_peer *tp_peer_by_ep(sq_transport_t *t, ucp_ep_h ep);

/* transport_peer.c */
sq_status_t tp_peer_bufs_create(struct sq_peer *p); /* slots + send requests */
void tp_peer_bufs_reset(struct sq_peer *p);         /* forget a failed attempt's state */
void tp_peer_release_deferred(struct sq_peer *p);   /* give held UCX descriptors back */
void tp_peer_bufs_destroy(struct sq_peer *p);       /* after the ep is gone */
int tp_peer_quiet(const struct sq_peer *p);         /* no UCX request into our buffers */
ucs_status_t tp_am_data_cb(void *arg, const void *header, size_t header_length, void *data,
                           size_t length, const ucp_am_recv_param_t *param);
void tp_peer_fail_reason(const struct sq_peer *p, char *buf, size_t n);

#endif

/* sparq/transport.h — stage-to-stage messages over UCX (UCP Active Messages).
 *
 * One sq_transport_t per stage process: a UCP context, one worker and, when
 * the stage listens, a ucp_listener. The previous stage connects to it
 * (sq_transport_connect), the listener side waits for it (sq_transport_accept);
 * either way the result is an sq_peer_t, a bidirectional endpoint that both
 * sides use with the same calls. Everything is single-threaded: the worker
 * only moves while a transport call runs (blocking calls progress it; a stage
 * that overlaps a send with compute calls sq_transport_progress now and then).
 *
 * Handshake. The client sends HELLO {magic, protocol version, job token,
 * plan hash, stage, n_stages, max_msg}; the listener answers ACCEPT (the same
 * fields, its own values) or REJECT {reason}. A listener refuses, with a
 * REJECT naming the reason and one line on stderr, a connection that
 *   - sends no HELLO within hello_timeout_s, or anything but a HELLO first,
 *   - has a different magic or protocol version, or the wrong job token,
 *   - disagrees on n_stages or on the plan hash,
 *   - claims a stage out of range, our own stage, a stage already connected,
 *     or a stage other than the one an sq_transport_accept() call is waiting
 *     for (a HELLO that arrives while no accept runs waits up to timeout_s for
 *     the accept that claims it).
 * A refused connection is closed and disturbs nothing else: the real peer can
 * connect before, during or after it. The client checks the ACCEPT too (job
 * token, stage), so it cannot end up talking to a stranger's listener.
 *
 * Messages. A message is an sq_msg_hdr_t plus h->len payload bytes (0 is
 * fine). The header travels in the UCP AM header (with a sequence number); the
 * payload as AM data, eager or rendezvous as UCX decides. Each peer owns
 * `slots` receive slots of max_msg bytes, allocated and registered with
 * ucp_mem_map once when the peer is created: eager data is copied into a
 * slot, rendezvous data lands in one directly (ucp_am_recv_data_nbx). When
 * every slot is taken, arrivals are kept as UCX descriptors (eager data held
 * by returning UCS_INPROGRESS, rendezvous receives not yet started, so the
 * sender's rendezvous send completes only when the receiver makes room) and
 * are moved into slots as sq_peer_release() frees them. Nothing is dropped,
 * and messages come out of sq_peer_recv() in the order they were sent. The
 * bookkeeping list of held descriptors starts at 4*slots entries and doubles
 * when a sender runs that far ahead (the only allocation after setup).
 *
 * Sizes. Both sides learn each other's max_msg in the handshake:
 * sq_peer_send refuses a message larger than the receiver's max_msg
 * (SQ_ERR_RANGE naming stage and step) before anything is sent, and a
 * receiver that still gets one (a broken peer) fails the peer with a protocol
 * error naming the stage and step.
 *
 * Failures. Endpoints use UCP_ERR_HANDLING_MODE_PEER. A peer that dies (kill
 * -9, node loss) or closes is detected within a few seconds (see transport.c
 * for the UCX settings this takes on one host); from then on a blocked or new
 * send, and a receive that finds no complete message queued, return
 * SQ_ERR_TRANSPORT naming both stages ("stage 2 lost its connection to stage
 * 1 (peer failure: Connection reset by remote peer) ..."). Messages that
 * arrived completely before the failure are still delivered first. Every
 * blocking call honours timeout_s. After any error on a peer, that peer is
 * unusable; destroy the transport.
 *
 * Byte order: the wire structs are sent in host order; stages of one job run
 * on hosts of the same endianness (the HELLO magic catches a mismatch).
 *
 * Fork: nothing happens at load time; fork before sq_transport_create.
 *
 * Tests: tests/runtime/test_transport.c. Benchmark: sparq bench transport
 * (bandwidth against ucx_perftest ucp_am_bw).
 */
#ifndef SPARQ_TRANSPORT_H
#define SPARQ_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sparq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Wire protocol version in HELLO/ACCEPT; bump when a wire struct changes. */
#define SQ_TRANSPORT_PROTOCOL_VERSION 1u

typedef struct sq_transport sq_transport_t; /* one per process: UCP context + worker (+ listener) */
typedef struct sq_peer sq_peer_t;           /* an endpoint to a neighbour stage (bidirectional) */
typedef struct sq_send_req sq_send_req_t;   /* a send in flight (owned by its peer, reused) */

typedef struct sq_transport_opts {
    const char *listen_addr; /* "HOST:PORT" to listen on ("127.0.0.1:0" picks a free port:
                                see sq_transport_listen_addr), or NULL for no listener */
    uint64_t job_token;      /* shared secret of the job; strangers without it are refused */
    uint64_t plan_hash;      /* hash of the model/plan as this stage sees it: must match */
    int stage, n_stages;     /* who we are: 0 <= stage < n_stages */
    size_t max_msg;          /* largest payload (bytes) we accept; receive slots are this big */
    int slots;               /* receive slots per peer (0: 8) */
    int send_depth;          /* sends in flight per peer, sq_peer_send_start (0: 32) */
    double timeout_s;        /* connect / handshake / accept / send / receive timeout (0: 60) */
    double hello_timeout_s;  /* listener: a connection must send HELLO within this
                                (0: min(5, timeout_s)) */
} sq_transport_opts_t;

/* Create the UCP context and worker (and the listener when listen_addr is
 * set). Applies sparq's UCX settings (see transport.c) unless the user set the
 * same UCX_* variable in the environment, which then wins. */
sq_status_t sq_transport_create(const sq_transport_opts_t *o, sq_transport_t **out);

/* Leave cleanly:
 *   1. send BYE to every live connected peer and wait (up to timeout_s) for
 *      its BYE_ACK, which the peer's transport sends (from any of its calls)
 *      once every message we sent before the BYE went through its AM handler;
 *      closing earlier could lose messages still queued there. Peers' own BYEs
 *      are answered meanwhile, so stages that leave together do not wait on
 *      each other. The peer then sees SQ_ERR_TRANSPORT "stage K closed the
 *      connection after N messages" once it has taken those N;
 *   2. refuse pending handshakes; close every endpoint: flush when the peer
 *      is alive and none of our sends or rendezvous receives is unfinished,
 *      force otherwise (sends not waited for are cancelled; messages not yet
 *      taken with sq_peer_recv are dropped), bounded by min(timeout_s, 5) s;
 *   3. destroy the listener, the worker and the context.
 * Invalidates every sq_peer_t and sq_send_req_t of t. NULL is fine. */
void sq_transport_destroy(sq_transport_t *t);

/* The address the listener is bound to ("127.0.0.1:40123", the real port when
 * listen_addr asked for port 0), or NULL when t does not listen. */
const char *sq_transport_listen_addr(const sq_transport_t *t);

/* Client side: connect to the listener of stage `peer_stage` at addr
 * ("HOST:PORT"), retrying until timeout_s while nobody listens there yet (the
 * peer may start later); send HELLO and wait for ACCEPT. A REJECT is final:
 * SQ_ERR_TRANSPORT with the listener's reason ("stage 1 refused stage 0: plan
 * hash 0x.. != 0x.."). */
sq_status_t sq_transport_connect(sq_transport_t *t, const char *addr, int peer_stage,
                                 sq_peer_t **out);

/* Server side: wait up to timeout_s for stage `expected_stage` to connect and
 * pass the handshake (see the top of this file for what is refused). */
sq_status_t sq_transport_accept(sq_transport_t *t, int expected_stage, sq_peer_t **out);

/* Progress the worker once without blocking (completes sends in flight,
 * lands arriving data, answers handshakes). Blocking calls do this already. */
void sq_transport_progress(sq_transport_t *t);

/* Print the UCX settings sparq applied (or found in the environment) and the
 * lanes of every connected peer (ucp_ep_print_info) to f. */
void sq_transport_describe(const sq_transport_t *t, FILE *f);

typedef struct sq_msg_hdr {
    uint32_t type;  /* message kind (the runtime defines: activations, gradient, control, stop) */
    uint32_t micro; /* micro-batch */
    int64_t step;
    int32_t sign; /* +1 / -1 / 0 */
    uint32_t flags;
    uint64_t len; /* payload bytes */
    uint64_t tag; /* free for the runtime */
} sq_msg_hdr_t;

/* Send one message: h->len bytes from payload (NULL when h->len == 0).
 * Returns when payload may be reused (eager: copied out; rendezvous: the
 * receiver has the data). */
sq_status_t sq_peer_send(sq_peer_t *p, const sq_msg_hdr_t *h, const void *payload);

/* Non-blocking send: starts it and returns a request; payload must stay
 * untouched until sq_peer_send_wait(*req) returns. At most send_depth sends
 * per peer may be started and not yet waited for (SQ_ERR_RANGE beyond). The
 * header is copied. Messages are delivered in the order they were started. */
sq_status_t sq_peer_send_start(sq_peer_t *p, const sq_msg_hdr_t *h, const void *payload,
                               sq_send_req_t **req);

/* Wait (up to timeout_s) for a started send to complete and give the request
 * back to its peer, whatever the outcome: req is invalid afterwards. */
sq_status_t sq_peer_send_wait(sq_send_req_t *req);

/* Non-blocking check: 1 when sq_peer_send_wait(req) would return at once. */
int sq_peer_send_test(sq_send_req_t *req);

/* Next message from this peer, in send order: blocks (progressing the
 * worker) up to timeout_s. *h is filled; *payload points into a registered
 * receive slot (h->len bytes) and stays valid until sq_peer_release(). A
 * stage may hold several messages at once, released oldest first; with all
 * `slots` held, sq_peer_recv is SQ_ERR_INVALID_ARG. */
sq_status_t sq_peer_recv(sq_peer_t *p, sq_msg_hdr_t *h, const void **payload);

/* Give back the oldest message returned by sq_peer_recv (its slot then takes
 * the next message waiting, if any). No-op when none is held. */
void sq_peer_release(sq_peer_t *p);

/* The stage at the other end. */
int sq_peer_stage(const sq_peer_t *p);

/* Counters of one connection (since it was established). */
typedef struct sq_peer_stats {
    uint64_t sent, bytes_sent;         /* messages / payload bytes whose send was started */
    uint64_t received, bytes_received; /* messages / payload bytes returned by sq_peer_recv */
    uint64_t eager, rndv;              /* arrivals by UCX protocol */
    uint64_t deferred;                 /* arrivals that found every slot taken and waited */
    uint64_t max_deferred;             /* most arrivals waiting at once */
} sq_peer_stats_t;

void sq_peer_stats(const sq_peer_t *p, sq_peer_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif

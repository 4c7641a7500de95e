/* UCX transport, message path: receive slots, the DATA Active Message
 * handler, sends and receives. See sparq/transport.h for the contract.
 *
 * Receive side. Message seq (per connection and direction, from 0) lives in
 * slot[seq % nslots]; the slots hold the window [head_seq, head_seq + nslots)
 * of messages not yet released. An arrival inside the window goes straight
 * into its slot (eager: memcpy from the UCX buffer; rendezvous:
 * ucp_am_recv_data_nbx into the registered slot). An arrival beyond the
 * window is kept as a UCX descriptor in `defer` and admitted by
 * sq_peer_release once the window moves over it. Placing by seq rather than
 * by arrival keeps the order right even if UCX were to hand over messages of
 * different protocols out of order.
 */
#include "transport_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TP_SLOT_ALIGN 64
#define TP_SLOT_COLOR (7 * 64)

/* ---------------------------------------------------------------- buffers */

sq_status_t tp_peer_bufs_create(struct sq_peer *p)
{
    sq_transport_t *t = p->t;
    if (p->slot) return SQ_OK;
    const int n = t->o.slots;
    size_t sz = t->o.max_msg ? t->o.max_msg : 1;
    sz = (sz + TP_SLOT_ALIGN - 1) / TP_SLOT_ALIGN * TP_SLOT_ALIGN;
    /* Slot stride: an odd number of cache lines past a page multiple, so that
     * the starts of the slots do not all fall into the same cache sets when
     * max_msg is a large power of two (measured: 3x on small messages). */
    const size_t stride = (sz + 4095) / 4096 * 4096 + TP_SLOT_COLOR;

    ucp_mem_map_params_t mp = {0};
    mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_LENGTH | UCP_MEM_MAP_PARAM_FIELD_FLAGS;
    mp.length = stride * (size_t)n;
    mp.flags = UCP_MEM_MAP_ALLOCATE;
    ucs_status_t us = ucp_mem_map(t->ctx, &mp, &p->memh);
    if (us != UCS_OK)
        return sq_error_set(SQ_ERR_NOMEM,
                            "stage %d: cannot allocate %d receive slots of %zu bytes for stage "
                            "%d: %s",
                            t->o.stage, n, sz, p->stage, ucs_status_string(us));
    ucp_mem_attr_t ma = {0};
    ma.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS;
    us = ucp_mem_query(p->memh, &ma);
    if (us != UCS_OK) {
        ucp_mem_unmap(t->ctx, p->memh);
        p->memh = NULL;
        return sq_error_set(SQ_ERR_TRANSPORT, "stage %d: ucp_mem_query: %s", t->o.stage,
                            ucs_status_string(us));
    }
    p->slab = ma.address;
    p->slot_size = sz;
    p->nslots = n;
    p->slot = calloc((size_t)n, sizeof *p->slot);
    p->defer_cap = 4 * n;
    p->defer = calloc((size_t)p->defer_cap, sizeof *p->defer);
    p->n_req = t->o.send_depth;
    p->req = calloc((size_t)p->n_req, sizeof *p->req);
    if (!p->slot || !p->defer || !p->req) {
        tp_peer_bufs_destroy(p);
        return sq_error_set(SQ_ERR_NOMEM, "stage %d: out of memory for peer stage %d", t->o.stage,
                            p->stage);
    }
    for (int i = 0; i < n; i++) {
        p->slot[i].buf = (char *)p->slab + (size_t)i * stride;
        p->slot[i].peer = p;
    }
    for (int i = 0; i < p->n_req; i++)
        p->req[i].peer = p;
    return SQ_OK;
}

void tp_peer_bufs_reset(struct sq_peer *p)
{
    tp_peer_release_deferred(p);
    for (int i = 0; i < p->nslots; i++) {
        p->slot[i].state = TP_SLOT_FREE;
        p->slot[i].status = UCS_OK;
    }
    p->head_seq = 0;
    p->held = 0;
    p->proto_err[0] = 0;
    p->bye_seen = 0;
    p->send_seq = 0;
    p->last_step = -1;
    memset(&p->stats, 0, sizeof p->stats);
}

void tp_peer_release_deferred(struct sq_peer *p)
{
    for (int i = 0; i < p->n_defer; i++)
        ucp_am_data_release(p->t->worker, p->defer[i].desc);
    p->n_defer = 0;
}

int tp_peer_quiet(const struct sq_peer *p)
{
    for (int i = 0; i < p->nslots; i++)
        if (p->slot[i].state == TP_SLOT_FILLING) return 0;
    for (int i = 0; i < p->n_req; i++)
        if (p->req[i].ucx) return 0;
    return 1;
}

void tp_peer_bufs_destroy(struct sq_peer *p)
{
    if (p->memh) ucp_mem_unmap(p->t->ctx, p->memh);
    p->memh = NULL;
    p->slab = NULL;
    free(p->slot);
    free(p->defer);
    free(p->req);
    p->slot = NULL;
    p->defer = NULL;
    p->req = NULL;
    p->nslots = p->n_req = p->n_defer = p->defer_cap = 0;
}

/* ---------------------------------------------------------------- errors */

void tp_peer_fail_reason(const struct sq_peer *p, char *buf, size_t n)
{
    snprintf(buf, n, "peer failure: %s", ucs_status_string(p->ep_status));
}

static sq_status_t tp_lost(const struct sq_peer *p, const char *doing)
{
    const sq_transport_t *t = p->t;
    char why[128];
    tp_peer_fail_reason(p, why, sizeof why);
    if (p->bye_seen)
        return sq_error_set(SQ_ERR_TRANSPORT,
                            "stage %d: stage %d closed its connection (%s; it had sent %llu "
                            "messages) %s",
                            t->o.stage, p->stage, why, (unsigned long long)p->bye_n_sent, doing);
    return sq_error_set(SQ_ERR_TRANSPORT, "stage %d lost its connection to stage %d (%s) %s",
                        t->o.stage, p->stage, why, doing);
}

static void tp_proto_err(struct sq_peer *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void tp_proto_err(struct sq_peer *p, const char *fmt, ...)
{
    if (p->proto_err[0]) return; /* keep the first */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->proto_err, sizeof p->proto_err, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- receive */

static void tp_rndv_done(void *request, ucs_status_t status, size_t length, void *user_data)
{
    tp_slot_t *s = user_data;
    s->status = status;
    s->state = TP_SLOT_READY;
    ucp_request_free(request);
}

/* Put message w (data/desc, len bytes) into its slot, which is free. */
static void tp_slot_fill(struct sq_peer *p, const tp_data_hdr_t *w, void *data, size_t len,
                         int rndv, int deferred)
{
    tp_slot_t *s = &p->slot[w->seq % (uint64_t)p->nslots];
    s->seq = w->seq;
    s->h = w->h;
    s->status = UCS_OK;
    if (!rndv) {
        if (len) memcpy(s->buf, data, len);
        if (deferred) ucp_am_data_release(p->t->worker, data);
        s->state = TP_SLOT_READY;
        return;
    }
    ucp_request_param_t rp = {0};
    rp.op_attr_mask =
        UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_MEMH;
    rp.cb.recv_am = tp_rndv_done;
    rp.user_data = s;
    rp.memh = p->memh;
    s->state = TP_SLOT_FILLING;
    void *r = ucp_am_recv_data_nbx(p->t->worker, data, s->buf, len, &rp);
    if (r == NULL) {
        s->state = TP_SLOT_READY;
    } else if (UCS_PTR_IS_ERR(r)) {
        s->status = UCS_PTR_STATUS(r);
        s->state = TP_SLOT_READY; /* recv reports the status */
    }
}

ucs_status_t tp_am_data_cb(void *arg, const void *header, size_t hlen, void *data, size_t length,
                           const ucp_am_recv_param_t *param)
{
    sq_transport_t *t = arg;
    const int rndv = (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) != 0;
    struct sq_peer *p = (param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)
                            ? tp_peer_by_ep(t, param->reply_ep)
                            : NULL;
    if (!p) return UCS_OK; /* nobody we know (or closing): drop; a rndv sender completes */
    if (!p->is_client && p->state != TP_PEER_ESTABLISHED) {
        if (!p->bad[0]) snprintf(p->bad, sizeof p->bad, "sent data before the handshake");
        return UCS_OK;
    }
    if (!p->slot || p->proto_err[0]) return UCS_OK;
    tp_data_hdr_t w;
    if (hlen != sizeof w) {
        tp_proto_err(p, "stage %d: stage %d sent a malformed message (%zu-byte header)", t->o.stage,
                     p->stage, hlen);
        return UCS_OK;
    }
    memcpy(&w, header, sizeof w);
    if (length > t->o.max_msg) {
        tp_proto_err(p,
                     "stage %d: stage %d sent a %zu-byte message at step %lld, larger than "
                     "max_msg %zu",
                     t->o.stage, p->stage, length, (long long)w.h.step, t->o.max_msg);
        return rndv ? UCS_ERR_MESSAGE_TRUNCATED : UCS_OK;
    }
    if (w.h.len != length) {
        tp_proto_err(p, "stage %d: stage %d sent %zu bytes at step %lld, its header says %llu",
                     t->o.stage, p->stage, length, (long long)w.h.step,
                     (unsigned long long)w.h.len);
        return UCS_OK;
    }
    if (w.seq < p->head_seq || (w.seq < p->head_seq + (uint64_t)p->nslots &&
                                p->slot[w.seq % (uint64_t)p->nslots].state != TP_SLOT_FREE)) {
        tp_proto_err(p, "stage %d: stage %d sent message %llu (step %lld) twice", t->o.stage,
                     p->stage, (unsigned long long)w.seq, (long long)w.h.step);
        return UCS_OK;
    }
    if (rndv)
        p->stats.rndv++;
    else
        p->stats.eager++;
    if (w.seq < p->head_seq + (uint64_t)p->nslots) {
        tp_slot_fill(p, &w, data, length, rndv, 0);
        return UCS_OK;
    }
    /* Every slot in use: keep the descriptor until sq_peer_release makes room. */
    if (!rndv && !(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_DATA)) {
        tp_proto_err(p,
                     "stage %d: UCX gave message %llu (step %lld) from stage %d without a "
                     "descriptor to keep, and every slot is taken",
                     t->o.stage, (unsigned long long)w.seq, (long long)w.h.step, p->stage);
        return UCS_OK;
    }
    if (p->n_defer == p->defer_cap) {
        /* The only allocation after setup: a sender far ahead of its receiver. */
        tp_deferred_t *d = realloc(p->defer, 2 * (size_t)p->defer_cap * sizeof *d);
        if (!d) {
            tp_proto_err(p, "stage %d: out of memory queueing message %llu from stage %d",
                         t->o.stage, (unsigned long long)w.seq, p->stage);
            return UCS_OK;
        }
        p->defer = d;
        p->defer_cap *= 2;
    }
    tp_deferred_t *d = &p->defer[p->n_defer++];
    d->w = w;
    d->desc = data;
    d->rndv = rndv;
    p->stats.deferred++;
    if ((uint64_t)p->n_defer > p->stats.max_deferred) p->stats.max_deferred = (uint64_t)p->n_defer;
    return UCS_INPROGRESS;
}

sq_status_t sq_peer_recv(sq_peer_t *p, sq_msg_hdr_t *h, const void **payload)
{
    if (!p || !h || !payload)
        return sq_error_set(SQ_ERR_INVALID_ARG, "sq_peer_recv: NULL argument");
    sq_transport_t *t = p->t;
    if (p->state != TP_PEER_ESTABLISHED)
        return sq_error_set(SQ_ERR_INVALID_ARG, "stage %d: stage %d is not connected", t->o.stage,
                            p->stage);
    if (p->held >= p->nslots)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "stage %d: all %d slots for stage %d are held; sq_peer_release first",
                            t->o.stage, p->nslots, p->stage);
    const uint64_t seq = p->head_seq + (uint64_t)p->held;
    tp_slot_t *s = &p->slot[seq % (uint64_t)p->nslots];
    const double deadline = tp_now() + t->o.timeout_s;
    tp_waiter_t w = {0};
    char doing[128];
    int expired = 0;
    for (;;) {
        if (s->state == TP_SLOT_READY && s->seq == seq) {
            if (s->status != UCS_OK) {
                tp_proto_err(p, "stage %d: receiving message %llu (step %lld) from stage %d: %s",
                             t->o.stage, (unsigned long long)seq, (long long)s->h.step, p->stage,
                             ucs_status_string(s->status));
                return sq_error_set(SQ_ERR_TRANSPORT, "%s", p->proto_err);
            }
            s->state = TP_SLOT_HELD;
            p->held++;
            p->last_step = s->h.step;
            p->stats.received++;
            p->stats.bytes_received += s->h.len;
            *h = s->h;
            *payload = s->buf;
            return SQ_OK;
        }
        if (p->proto_err[0]) return sq_error_set(SQ_ERR_TRANSPORT, "%s", p->proto_err);
        if (p->bye_seen && seq >= p->bye_n_sent)
            return sq_error_set(SQ_ERR_TRANSPORT,
                                "stage %d: stage %d closed the connection after %llu messages "
                                "(last step received: %lld)",
                                t->o.stage, p->stage, (unsigned long long)p->bye_n_sent,
                                (long long)p->last_step);
        if (p->ep_status != UCS_OK) {
            snprintf(doing, sizeof doing,
                     "while waiting for message %llu (last step received: %lld)",
                     (unsigned long long)seq, (long long)p->last_step);
            return tp_lost(p, doing);
        }
        if (expired)
            return sq_error_set(SQ_ERR_TRANSPORT,
                                "stage %d: no message from stage %d within %.1f s (waiting for "
                                "message %llu; last step received: %lld)",
                                t->o.stage, p->stage, t->o.timeout_s, (unsigned long long)seq,
                                (long long)p->last_step);
        expired = tp_wait_round(t, &w, deadline);
    }
}

void sq_peer_release(sq_peer_t *p)
{
    if (!p || p->held == 0) return;
    tp_slot_t *s = &p->slot[p->head_seq % (uint64_t)p->nslots];
    s->state = TP_SLOT_FREE;
    p->head_seq++;
    p->held--;
    const uint64_t limit = p->head_seq + (uint64_t)p->nslots;
    for (int i = 0; i < p->n_defer;) {
        if (p->defer[i].w.seq < limit) {
            tp_deferred_t d = p->defer[i];
            p->defer[i] = p->defer[--p->n_defer];
            tp_slot_fill(p, &d.w, d.desc, d.w.h.len, d.rndv, 1);
        } else {
            i++;
        }
    }
}

int sq_peer_stage(const sq_peer_t *p)
{
    return p ? p->stage : -1;
}

void sq_peer_stats(const sq_peer_t *p, sq_peer_stats_t *out)
{
    if (!out) return;
    if (p)
        *out = p->stats;
    else
        memset(out, 0, sizeof *out);
}

/* ---------------------------------------------------------------- send */

static void tp_send_done(void *request, ucs_status_t status, void *user_data)
{
    sq_send_req_t *r = user_data;
    r->status = status;
    r->done = 1;
    r->ucx = NULL;
    ucp_request_free(request);
    if (r->abandoned) r->busy = 0;
}

sq_status_t sq_peer_send_start(sq_peer_t *p, const sq_msg_hdr_t *h, const void *payload,
                               sq_send_req_t **req)
{
    if (!p || !h || !req || (h->len && !payload))
        return sq_error_set(SQ_ERR_INVALID_ARG, "sq_peer_send_start: NULL argument");
    sq_transport_t *t = p->t;
    const int me = t->o.stage;
    if (p->state != TP_PEER_ESTABLISHED)
        return sq_error_set(SQ_ERR_INVALID_ARG, "stage %d: stage %d is not connected", me,
                            p->stage);
    if (h->len > p->remote_max_msg)
        return sq_error_set(SQ_ERR_RANGE,
                            "stage %d: message of %llu bytes at step %lld is larger than the "
                            "max_msg %llu of stage %d",
                            me, (unsigned long long)h->len, (long long)h->step,
                            (unsigned long long)p->remote_max_msg, p->stage);
    char doing[96];
    if (p->ep_status != UCS_OK) {
        snprintf(doing, sizeof doing, "before sending step %lld", (long long)h->step);
        return tp_lost(p, doing);
    }
    if (p->proto_err[0]) return sq_error_set(SQ_ERR_TRANSPORT, "%s", p->proto_err);
    sq_send_req_t *r = NULL;
    for (int i = 0, k = p->req_next; i < p->n_req; i++, k = k + 1 == p->n_req ? 0 : k + 1)
        if (!p->req[k].busy) {
            r = &p->req[k];
            p->req_next = k + 1 == p->n_req ? 0 : k + 1;
            break;
        }
    if (!r)
        return sq_error_set(SQ_ERR_RANGE,
                            "stage %d: more than %d sends to stage %d in flight at step %lld "
                            "(send_depth)",
                            me, p->n_req, p->stage, (long long)h->step);
    r->busy = 1;
    r->done = 0;
    r->abandoned = 0;
    r->status = UCS_OK;
    r->ucx = NULL;
    r->w.h = *h;
    r->w.seq = p->send_seq++;

    ucp_request_param_t prm = {0};
    prm.op_attr_mask =
        UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_FLAGS;
    prm.cb.send = tp_send_done;
    prm.user_data = r;
    prm.flags = UCP_AM_SEND_FLAG_REPLY;
    void *u = ucp_am_send_nbx(p->ep, TP_AM_DATA, &r->w, sizeof r->w, payload, h->len, &prm);
    if (u == NULL) {
        r->done = 1;
    } else if (UCS_PTR_IS_ERR(u)) {
        r->busy = 0;
        if (p->ep_status != UCS_OK) {
            snprintf(doing, sizeof doing, "sending step %lld", (long long)h->step);
            return tp_lost(p, doing);
        }
        return sq_error_set(SQ_ERR_TRANSPORT, "stage %d: sending step %lld to stage %d: %s", me,
                            (long long)h->step, p->stage, ucs_status_string(UCS_PTR_STATUS(u)));
    } else {
        r->ucx = u;
    }
    p->last_sent_step = h->step;
    p->stats.sent++;
    p->stats.bytes_sent += h->len;
    *req = r;
    return SQ_OK;
}

int sq_peer_send_test(sq_send_req_t *r)
{
    if (!r) return 1;
    if (!r->done) tp_progress(r->peer->t);
    return r->done || r->peer->ep_status != UCS_OK;
}

sq_status_t sq_peer_send_wait(sq_send_req_t *r)
{
    if (!r || !r->busy) return sq_error_set(SQ_ERR_INVALID_ARG, "sq_peer_send_wait: no request");
    struct sq_peer *p = r->peer;
    sq_transport_t *t = p->t;
    const double deadline = tp_now() + t->o.timeout_s;
    tp_waiter_t w = {0};
    char doing[96];
    int expired = 0;
    for (;;) {
        if (r->done) {
            r->busy = 0;
            if (r->status == UCS_OK) return SQ_OK;
            snprintf(doing, sizeof doing, "while sending step %lld", (long long)r->w.h.step);
            if (p->ep_status != UCS_OK) return tp_lost(p, doing);
            return sq_error_set(SQ_ERR_TRANSPORT, "stage %d: sending step %lld to stage %d: %s",
                                t->o.stage, (long long)r->w.h.step, p->stage,
                                ucs_status_string(r->status));
        }
        if (p->ep_status != UCS_OK) {
            r->abandoned = 1; /* UCX completes it (with an error) when the ep goes */
            snprintf(doing, sizeof doing, "while sending step %lld", (long long)r->w.h.step);
            return tp_lost(p, doing);
        }
        if (expired) {
            r->abandoned = 1;
            return sq_error_set(SQ_ERR_TRANSPORT,
                                "stage %d: sending step %lld (%llu bytes) to stage %d did not "
                                "complete within %.1f s (is stage %d receiving?)",
                                t->o.stage, (long long)r->w.h.step, (unsigned long long)r->w.h.len,
                                p->stage, t->o.timeout_s, p->stage);
        }
        expired = tp_wait_round(t, &w, deadline);
    }
}

sq_status_t sq_peer_send(sq_peer_t *p, const sq_msg_hdr_t *h, const void *payload)
{
    sq_send_req_t *r = NULL;
    SQ_TRY(sq_peer_send_start(p, h, payload, &r));
    return sq_peer_send_wait(r);
}

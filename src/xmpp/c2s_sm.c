/* XEP-0198 stream management. See c2s_sm.h. */
#include "xmpp/c2s_sm.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "config.h"
#include "core/account.h"
#include "core/router.h"
#include "core/session.h"
#include "core/stanza.h"
#include "server.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "net/conn.h"
#include "xml/xml_writer.h"
#include "xmpp/c2s.h"

struct sm_entry {
	struct xml_node *stanza;
	size_t bytes;       /* what the copy costs (its arena) */
	bool stored;        /* its record is still in the offline store */
};

struct sm_waiter {
	struct sm_waiter *next;
	uint32_t upto;      /* fire once the client acked this many */
	void (*fn)(void *ctx);
	void *ctx;
};

struct sm {
	struct session *s;
	char *id;           /* SM-ID; NULL when not resumable */
	unsigned max;       /* resumption timeout, seconds */
	uint32_t h_in;      /* stanzas handled from the client */
	uint32_t sent;      /* stanzas sent to the client */
	uint32_t acked;     /* the client's last h */
	/* Unacknowledged stanzas, oldest first: entries for acked+1 .. sent,
	 * in a ring. */
	struct sm_entry *ring;
	size_t cap, head, len;
	size_t bytes;       /* sum of the entries' bytes */
	bool r_pending;     /* an <r/> is scheduled or unanswered */
	uint32_t r_at;      /* `sent` when the last <r/> went out */
	struct event *r_ev;
	struct event *timeout;
	struct sm_waiter *waiters;
	/* After a resume: the backlog goes out in slices (resend_more). */
	bool resending;
	uint32_t resend_next; /* number of the next stanza to resend */
};

static struct hashmap *resumable(struct server *srv)
{
	if (srv->sm_ids == NULL)
		srv->sm_ids = hashmap_new();
	return srv->sm_ids;
}

void sm_end_detached(struct server *srv)
{
	size_t pos = 0;
	void *v;

	if (srv->sm_ids == NULL)
		return;
	/* Ending a session removes it from the table: restart the walk
	 * after each one. */
	while (hashmap_next(srv->sm_ids, &pos, NULL, &v)) {
		struct session *s = v;
		if (s->stream == NULL) {
			session_end(s);
			pos = 0;
		}
	}
}

void sm_server_free(struct server *srv)
{
	sm_end_detached(srv);
	hashmap_free(srv->sm_ids);
	srv->sm_ids = NULL;
}

static void send_raw(struct session *s, const char *xml)
{
	if (s->stream != NULL)
		c2s_send_raw(s->stream, xml, strlen(xml));
}

void sm_features(struct c2s *c, struct buf *out)
{
	buf_append_str(out, "<sm xmlns='" NS_SM "'/>");
}

static void send_failed(struct c2s *c, const char *condition, const char *h)
{
	struct buf b = BUF_INIT;

	buf_append_str(&b, "<failed xmlns='" NS_SM "'");
	if (h != NULL)
		buf_appendf(&b, " h='%s'", h);
	buf_appendf(&b, "><%s xmlns='" NS_STANZAS "'/></failed>", condition);
	c2s_send_raw(c, b.data, b.len);
	buf_free(&b);
}

/* ---- the outbound queue ---- */

static struct sm_entry *entry_at(struct sm *sm, size_t i)
{
	return &sm->ring[(sm->head + i) % sm->cap];
}

static void queue_push(struct sm *sm, struct xml_node *stanza, bool stored)
{
	if (sm->len == sm->cap) {
		size_t ncap = sm->cap ? sm->cap * 2 : 16;
		struct sm_entry *n = xcalloc(ncap, sizeof(*n));
		for (size_t i = 0; i < sm->len; i++)
			n[i] = *entry_at(sm, i);
		free(sm->ring);
		sm->ring = n;
		sm->cap = ncap;
		sm->head = 0;
	}
	size_t bytes = arena_size(xml_arena(stanza));

	*entry_at(sm, sm->len) = (struct sm_entry){ stanza, bytes, stored };
	sm->len++;
	sm->bytes += bytes;
}

static void fire_waiters(struct sm *sm)
{
	struct sm_waiter **p = &sm->waiters;

	while (*p != NULL) {
		struct sm_waiter *w = *p;
		/* Serial-number arithmetic: h wraps at 2^32. */
		if ((int32_t)(sm->acked - w->upto) >= 0) {
			*p = w->next;
			w->fn(w->ctx);
			free(w);
		} else {
			p = &w->next;
		}
	}
}

/* The client says it handled h stanzas. Returns -1 if h acknowledges
 * more than we sent. */
static int process_ack(struct sm *sm, uint32_t h)
{
	uint32_t n = h - sm->acked; /* wraps correctly */

	if (n > sm->len)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		struct sm_entry *e = entry_at(sm, 0);
		xml_free(e->stanza);
		e->stanza = NULL;
		sm->bytes -= e->bytes;
		sm->head = (sm->head + 1) % sm->cap;
		sm->len--;
	}
	sm->acked = h;
	fire_waiters(sm);
	return 0;
}

/* ---- requesting acks ---- */

static void send_r(evutil_socket_t fd, short what, void *arg)
{
	struct sm *sm = arg;

	if (sm->s->stream == NULL || sm->len == 0) {
		sm->r_pending = false;
		return;
	}
	sm->r_at = sm->sent;
	send_raw(sm->s, "<r xmlns='" NS_SM "'/>");
}

/* One <r/> per burst: it goes out after the current loop pass, so a
 * batch of stanzas is acknowledged with one round trip. */
static void want_ack(struct sm *sm)
{
	if (sm->r_pending || sm->s->stream == NULL)
		return;
	sm->r_pending = true;
	event_active(sm->r_ev, 0, 0);
}

bool sm_stanza_out(struct session *s, const struct xml_node *stanza,
		   bool stored)
{
	struct sm *sm = s->sm;

	if (sm == NULL)
		return false;
	if (sm->len >= s->srv->cfg->sm_max_queue ||
	    sm->bytes >= s->srv->cfg->sm_max_queue_bytes) {
		/* The client stopped acknowledging: end the session (a
		 * detached one from its timeout event, now). This stanza is
		 * queued all the same (the queue goes over by the few that
		 * arrive before the session ends), so that when it does end
		 * everything unacknowledged is rerouted and nothing is
		 * dropped. */
		if (s->stream != NULL)
			c2s_stream_error(s->stream, "resource-constraint",
					 "too many unacknowledged stanzas");
		else if (sm->timeout != NULL)
			event_active(sm->timeout, EV_TIMEOUT, 0);
	}
	queue_push(sm, xml_copy(stanza), stored);
	sm->sent++;
	want_ack(sm);
	/* While the backlog of a resume is resent, new stanzas wait their
	 * turn in the queue (resend_more sends them). */
	return s->stream == NULL || sm->resending;
}

void sm_stanza_in(struct session *s)
{
	if (s->sm != NULL)
		s->sm->h_in++;
}

bool sm_when_acked(struct session *s, void (*fn)(void *ctx), void *ctx)
{
	struct sm *sm = s->sm;
	struct sm_waiter *w;

	if (sm == NULL)
		return false;
	w = xmalloc(sizeof(*w));
	w->upto = sm->sent;
	w->fn = fn;
	w->ctx = ctx;
	w->next = sm->waiters;
	sm->waiters = w;
	if (sm->len == 0)
		fire_waiters(sm);
	else
		want_ack(sm);
	return true;
}

/* ---- enable, resume ---- */

static struct sm *sm_new(struct session *s)
{
	struct sm *sm = xcalloc(1, sizeof(*sm));

	sm->s = s;
	sm->r_ev = event_new(s->srv->base, -1, 0, send_r, sm);
	return sm;
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct sm *sm = arg;
	struct session *s = sm->s;

	log_msg(LOG_INFO, s->full, "stream management: not resumed in time");
	session_end(s);
}

static void handle_enable(struct c2s *c, struct xml_node *el)
{
	struct session *s = c->session;
	const char *resume = xml_attr(el, "resume");
	const char *max = xml_attr(el, "max");
	unsigned timeout = c->srv->cfg->resume_timeout;
	struct buf b = BUF_INIT;
	struct sm *sm;

	if (s == NULL) {
		/* XEP-0198 §3: only after binding. */
		send_failed(c, "unexpected-request", NULL);
		return;
	}
	if (s->sm != NULL) {
		c2s_stream_error(c, "policy-violation",
				 "stream management is already enabled");
		return;
	}
	sm = s->sm = sm_new(s);
	buf_append_str(&b, "<enabled xmlns='" NS_SM "'");
	if (resume != NULL && (strcmp(resume, "true") == 0 ||
			       strcmp(resume, "1") == 0) && timeout > 0) {
		unsigned char rnd[18];
		char hex[37];

		if (max != NULL && strtoul(max, NULL, 10) > 0 &&
		    strtoul(max, NULL, 10) < timeout)
			timeout = (unsigned)strtoul(max, NULL, 10);
		sm->max = timeout;
		RAND_bytes(rnd, sizeof(rnd));
		for (size_t i = 0; i < sizeof(rnd); i++)
			snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
		sm->id = xstrdup(hex);
		hashmap_put(resumable(c->srv), sm->id, s);
		buf_appendf(&b, " id='%s' resume='true' max='%u'", sm->id, timeout);
	}
	buf_append_str(&b, "/>");
	c2s_send_raw(c, b.data, b.len);
	buf_free(&b);
	log_msg(LOG_DEBUG, c->log_ctx, "stream management on%s",
		sm->id ? ", resumable" : "");
}

static bool parse_h(const char *v, uint32_t *h_r)
{
	char *end;
	unsigned long long n;

	if (v == NULL || *v < '0' || *v > '9')
		return false;
	n = strtoull(v, &end, 10);
	if (*end != '\0' || n > UINT32_MAX)
		return false;
	*h_r = (uint32_t)n;
	return true;
}

/* Resends the backlog after a resume, in slices: each goes once the one
 * before is written. The queue may hold far more than max_outq bytes
 * (it is what a client that stopped reading left behind): written at
 * once it would cut the resumed stream off again, resume after resume.
 * Acks that arrive meanwhile shorten the queue from the front, hence the
 * position by stanza number. */
static void resend_more(void *arg)
{
	struct sm *sm = arg;
	struct session *s = sm->s;
	const struct config *cfg = s->srv->cfg;
	size_t budget = cfg->max_outq > cfg->max_stanza_size ?
			cfg->max_outq - cfg->max_stanza_size : 0;

	while (sm->resending && s->stream != NULL && !s->stream->outq_full) {
		uint32_t first = sm->acked + 1;
		uint32_t i;

		if ((int32_t)(sm->resend_next - first) < 0)
			sm->resend_next = first;
		i = sm->resend_next - first;
		if (i >= sm->len)
			break;
		if (conn_output_pending(s->stream->conn) > budget) {
			c2s_when_drained(s->stream, resend_more, sm);
			return;
		}
		sm->resend_next++;
		c2s_send_unqueued(s->stream, entry_at(sm, i)->stanza);
	}
	sm->resending = false;
	if (sm->len > 0 && s->stream != NULL) {
		sm->r_pending = false;
		want_ack(sm);
	}
}

static void resend_queue(struct session *s)
{
	struct sm *sm = s->sm;

	sm->resending = true;
	sm->resend_next = sm->acked + 1;
	resend_more(sm);
}

static void handle_resume(struct c2s *c, struct xml_node *el)
{
	const char *previd = xml_attr(el, "previd");
	struct session *s = previd ? hashmap_get(resumable(c->srv), previd) : NULL;
	struct c2s *old;
	uint32_t h;
	char hbuf[16];
	struct buf b = BUF_INIT;

	if (c->session != NULL) {
		send_failed(c, "unexpected-request", NULL);
		return;
	}
	if (!parse_h(xml_attr(el, "h"), &h)) {
		send_failed(c, "bad-request", NULL);
		return;
	}
	/* Only the account that made the session may take it back. */
	if (s == NULL || strcmp(s->jid.local, c->local) != 0 ||
	    strcmp(s->jid.domain, c->domain) != 0) {
		send_failed(c, "item-not-found", NULL);
		return;
	}
	snprintf(hbuf, sizeof(hbuf), "%" PRIu32, s->sm->h_in);
	if (process_ack(s->sm, h) < 0) {
		send_failed(c, "unexpected-request", hbuf);
		return;
	}
	old = s->stream;
	if (old != NULL) {
		/* The old connection is still open (the client noticed the
		 * break before we did): it loses the session. */
		old->session = NULL;
		c2s_drop_drained(old);
		s->stream = NULL;
		c2s_stream_error(old, "conflict", "the session was resumed elsewhere");
	}
	if (s->sm->timeout != NULL)
		event_del(s->sm->timeout);
	c2s_attach_session(c, s);
	buf_appendf(&b, "<resumed xmlns='" NS_SM "' previd='%s' h='%s'/>",
		    s->sm->id, hbuf);
	c2s_send_raw(c, b.data, b.len);
	buf_free(&b);
	log_msg(LOG_INFO, c->log_ctx, "resumed (%zu stanzas to resend)", s->sm->len);
	resend_queue(s);
}

bool sm_element(struct c2s *c, struct xml_node *el)
{
	struct session *s = c->session;
	uint32_t h;

	if (strcmp(el->ns, NS_SM) != 0)
		return false;
	if (strcmp(el->name, "enable") == 0) {
		handle_enable(c, el);
	} else if (strcmp(el->name, "resume") == 0) {
		handle_resume(c, el);
	} else if (strcmp(el->name, "r") == 0) {
		char a[64];
		if (s == NULL || s->sm == NULL)
			return false;
		snprintf(a, sizeof(a), "<a xmlns='" NS_SM "' h='%" PRIu32 "'/>",
			 s->sm->h_in);
		c2s_send_raw(c, a, strlen(a));
	} else if (strcmp(el->name, "a") == 0) {
		if (s == NULL || s->sm == NULL)
			return false;
		if (!parse_h(xml_attr(el, "h"), &h)) {
			c2s_stream_error(c, "bad-format", "<a/> without a valid h");
			return true;
		}
		if (process_ack(s->sm, h) < 0) {
			c2s_stream_error(c, "undefined-condition",
					 "handled-count-too-high");
			return true;
		}
		s->sm->r_pending = false;
		if ((int32_t)(s->sm->sent - s->sm->r_at) > 0)
			want_ack(s->sm);
	} else {
		return false;
	}
	return true;
}

/* ---- detach and end ---- */

bool sm_detach(struct session *s)
{
	struct sm *sm = s->sm;
	struct timeval tv;

	if (sm == NULL || sm->id == NULL || s->srv->shutting_down)
		return false;
	s->stream = NULL;
	sm->r_pending = false;
	sm->resending = false;
	tv.tv_sec = sm->max;
	tv.tv_usec = 0;
	if (sm->timeout == NULL)
		sm->timeout = evtimer_new(s->srv->base, on_timeout, sm);
	evtimer_add(sm->timeout, &tv);
	log_msg(LOG_INFO, s->full, "detached; resumable for %u s, %zu unacked",
		sm->max, sm->len);
	return true;
}

/* XEP-0198 §5: unacknowledged stanzas are treated like stanzas for an
 * unavailable resource. The session is out of the table, so routing a
 * message to its full JID falls through to the account's other resources
 * or the offline store; requests get an error; presence is moot. */
static bool is_copy(const struct xml_node *msg)
{
	return xml_child(msg, "sent", "urn:xmpp:carbons:2") != NULL ||
	       xml_child(msg, "received", "urn:xmpp:carbons:2") != NULL ||
	       xml_child(msg, "result", "urn:xmpp:mam:2") != NULL;
}

static void reroute(struct server *srv, struct sm_entry *e)
{
	struct xml_node *st = e->stanza;
	const char *type = xml_attr(st, "type");

	e->stanza = NULL;
	switch (stanza_kind(st)) {
	case STANZA_MESSAGE:
		/* Copies made for this session (carbons, archive results)
		 * are not messages of their own: the original is elsewhere. */
		if (!e->stored && !stanza_is_error(st) && !is_copy(st)) {
			router_route(srv, st);
			return;
		}
		break;
	case STANZA_IQ:
		if (type != NULL && (strcmp(type, "get") == 0 ||
				     strcmp(type, "set") == 0))
			router_bounce(srv, st, "recipient-unavailable", NULL);
		break;
	default:
		break;
	}
	xml_free(st);
}

void sm_session_end(struct session *s)
{
	struct sm *sm = s->sm;
	struct sm_waiter *w, *next;

	if (sm == NULL)
		return;
	s->sm = NULL;
	if (sm->id != NULL && hashmap_get(s->srv->sm_ids, sm->id) == s)
		hashmap_remove(s->srv->sm_ids, sm->id);
	if (sm->len > 0)
		log_msg(LOG_INFO, s->full, "rerouting %zu unacknowledged stanzas",
			sm->len);
	for (size_t i = 0; i < sm->len; i++)
		reroute(s->srv, entry_at(sm, i));
	for (w = sm->waiters; w != NULL; w = next) {
		next = w->next;
		free(w);
	}
	if (sm->timeout != NULL)
		event_free(sm->timeout);
	event_free(sm->r_ev);
	free(sm->ring);
	free(sm->id);
	free(sm);
}

#include "xmpp/c2s.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/rand.h>

#include "config.h"
#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "core/presence.h"
#include "core/router.h"
#include "core/session.h"
#include "core/stanza.h"
#include "net/addr_limit.h"
#include "net/conn.h"
#include "net/tls.h"
#include "seal/seal.h"
#include "server.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xml/xml_parser.h"
#include "xml/xml_writer.h"
#include "xmpp/c2s_intake.h"
#include "xmpp/c2s_sasl.h"
#include "xmpp/c2s_sm.h"
#include "xmpp/stream_error.h"

#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_ROSTERVER "urn:xmpp:features:rosterver"

/* Bytes taken from the socket buffer per parser feed: small enough to
 * bound the work per event, big enough to amortize the call. */
#define READ_CHUNK 16384

static const char *const state_names[] = {
	"wait-header", "pre-auth", "sasl", "pre-bind", "binding", "session",
	"closing", "closed",
};

static void c2s_update_log_ctx(struct c2s *c)
{
	snprintf(c->log_ctx, sizeof(c->log_ctx), "c2s#%llu %s%s%s",
		 (unsigned long long)c->id, c->conn ? c->conn->peer : "-",
		 c->session ? " " : "", c->session ? c->session->full : "");
}

void c2s_enter(struct c2s *c, enum c2s_state state)
{
	if (log_enabled(LOG_DEBUG))
		log_msg(LOG_DEBUG, c->log_ctx, "state %s -> %s",
			state_names[c->state], state_names[state]);
	c->state = state;
}

static void c2s_free(struct c2s *c)
{
	struct server *srv = c->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		srv->streams = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nstreams--;
	intake_forget(c);
	addr_limit_release(srv->addr_limit, c->conn->peer_ip);
	c2s_sasl_free(c);
	c2s_drop_drained(c);
	seal_unlocked_free(c->unlocked);
	if (c->timer)
		event_free(c->timer);
	event_free(c->free_ev);
	xml_parser_free(c->parser);
	conn_free(c->conn);
	free(c->domain);
	free(c->stream_id);
	free(c->local);
	free(c);
}

static void on_free_event(evutil_socket_t fd, short what, void *arg)
{
	struct c2s *c = arg;

	if (c->pending == 0)
		c2s_free(c);
	/* else the last c2s_release() schedules us again */
}

/* The one close path: end the session, drop the account, stop I/O, and
 * free from a fresh loop pass. */
static void c2s_finish(struct c2s *c, const char *why)
{
	if (c->state == C2S_CLOSED)
		return;
	log_msg(LOG_INFO, c->log_ctx, "closed: %s", why);
	c2s_enter(c, C2S_CLOSED);
	c2s_drop_drained(c);
	if (c->session != NULL) {
		struct session *s = c->session;
		c->session = NULL;
		/* A connection that died without </stream:stream> leaves a
		 * resumable session waiting (XEP-0198 §5). */
		if (c->clean_close || !sm_detach(s)) {
			s->stream = NULL;
			session_end(s);
		}
	}
	if (c->account != NULL) {
		account_unref(c->account);
		c->account = NULL;
	}
	if (c->timer)
		event_del(c->timer);
	event_active(c->free_ev, 0, 0);
}

void c2s_hold(struct c2s *c)
{
	c->pending++;
}

bool c2s_release(struct c2s *c)
{
	c->pending--;
	if (c->state == C2S_CLOSED) {
		if (c->pending == 0)
			event_active(c->free_ev, 0, 0);
		return false;
	}
	return c->state != C2S_CLOSING;
}

static void conn_flushed(void *ctx)
{
	struct c2s *c = ctx;
	c2s_finish(c, "stream closed");
}

struct c2s_drain_waiter {
	struct c2s_drain_waiter *next;
	void (*fn)(void *ctx);
	void *ctx;
};

void c2s_drop_drained(struct c2s *c)
{
	struct c2s_drain_waiter *w, *next;

	for (w = c->drain_waiters; w != NULL; w = next) {
		next = w->next;
		free(w);
	}
	c->drain_waiters = NULL;
}

static void conn_drained(void *ctx)
{
	struct c2s *c = ctx;
	struct c2s_drain_waiter *w = c->drain_waiters, *next;

	/* Everything queued before each waiter is out: all fire. A waiter
	 * that asks again lands on the fresh list. */
	c->drain_waiters = NULL;
	for (; w != NULL; w = next) {
		next = w->next;
		if (c->state != C2S_CLOSED && c->session != NULL)
			w->fn(w->ctx);
		free(w);
	}
}

void c2s_when_drained(struct c2s *c, void (*fn)(void *ctx), void *ctx)
{
	struct c2s_drain_waiter *w, **tail;

	if (c->state == C2S_CLOSED)
		return;
	w = xmalloc(sizeof(*w));
	w->fn = fn;
	w->ctx = ctx;
	w->next = NULL;
	for (tail = &c->drain_waiters; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = w;
	conn_want_drained(c->conn);
}

static void conn_error(void *ctx, const char *why)
{
	struct c2s *c = ctx;
	c2s_finish(c, why);
}

void c2s_send_raw(struct c2s *c, const char *xml, size_t len)
{
	struct timeval now = { 0, 0 };

	if (c->state == C2S_CLOSED || c->conn->closing || c->outq_full)
		return;
	conn_write(c->conn, xml, len);
	if (conn_output_pending(c->conn) > c->srv->cfg->max_outq) {
		/* A client that does not read must not make us buffer
		 * without bound. The stream ends from the timer, not from
		 * here: the caller may be going through the account's
		 * sessions or resending a queue, and ending the session
		 * under it would free what it holds. Until then nothing
		 * more is written; with stream management it stays queued
		 * for resumption or rerouting. */
		log_msg(LOG_WARN, c->log_ctx, "output queue over %zu bytes",
			c->srv->cfg->max_outq);
		c->outq_full = true;
		event_add(c->timer, &now);
	}
}

void c2s_send(struct c2s *c, const struct xml_node *stanza)
{
	/* Queued only (not written) while a resumed session's backlog is
	 * being resent: the order on the wire is the order of the queue. */
	if (c->session != NULL && sm_stanza_out(c->session, stanza, false))
		return;
	c2s_send_unqueued(c, stanza);
}

void c2s_send_unqueued(struct c2s *c, const struct xml_node *stanza)
{
	size_t len;
	const char *s = xml_serialize_reused(stanza, XML_NS_CLIENT, &len);

	c2s_send_raw(c, s, len);
}

/* Appends our stream header to b (with a fresh stream id). */
static void header_append(struct c2s *c, struct buf *b)
{
	unsigned char rnd[12];
	char hex[25];

	RAND_bytes(rnd, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	free(c->stream_id);
	c->stream_id = xstrdup(hex);
	buf_append_str(b, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
			  "xmlns:stream='" XML_NS_STREAM "' version='1.0' xml:lang='en' id='");
	buf_append_str(b, c->stream_id);
	buf_append_str(b, "'");
	if (c->domain != NULL) {
		buf_append_str(b, " from='");
		xml_escape(b, c->domain, strlen(c->domain), 1);
		buf_append_str(b, "'");
	}
	buf_append_str(b, ">");
	c->header_sent = true;
}

static void send_header(struct c2s *c)
{
	struct buf b = BUF_INIT;

	header_append(c, &b);
	c2s_send_raw(c, b.data, b.len);
	buf_free(&b);
}

/* How long a closing stream may take to flush its last bytes. */
#define CLOSE_TIMEOUT_S 10

static void arm_close_timeout(struct c2s *c)
{
	struct timeval tv = { CLOSE_TIMEOUT_S, 0 };

	if (!c->outq_full)
		event_add(c->timer, &tv);
}

void c2s_stream_error(struct c2s *c, const char *condition, const char *text)
{
	struct buf b = BUF_INIT;

	if (c->state == C2S_CLOSED || c->state == C2S_CLOSING)
		return;
	c->clean_close = true;
	/* RFC 6120 §4.9.1.1: an error before our header still needs one. */
	if (!c->header_sent)
		send_header(c);
	log_msg(LOG_INFO, c->log_ctx, "stream error: %s%s%s", condition,
		text ? ": " : "", text ? text : "");
	stream_error_append(&b, condition, text);
	c2s_send_raw(c, b.data, b.len);
	buf_free(&b);
	c2s_enter(c, C2S_CLOSING);
	arm_close_timeout(c);
	conn_close_after_flush(c->conn);
}

void c2s_close(struct c2s *c, const char *why)
{
	if (c->state == C2S_CLOSED || c->state == C2S_CLOSING)
		return;
	log_msg(LOG_INFO, c->log_ctx, "closing: %s", why);
	c->clean_close = true;
	if (!c->header_sent)
		send_header(c);
	c2s_send_raw(c, "</stream:stream>", 16);
	c2s_enter(c, C2S_CLOSING);
	arm_close_timeout(c);
	conn_close_after_flush(c->conn);
}

static void features_append(struct c2s *c, struct buf *b)
{
	const struct config *cfg = c->srv->cfg;

	buf_append_str(b, "<stream:features>");
	if (c->local == NULL) {
		if (!c->tls)
			buf_appendf(b, "<starttls xmlns='" NS_TLS "'>%s</starttls>",
				   cfg->require_tls ? "<required/>" : "");
		if (c->tls || !cfg->require_tls) {
			c2s_sasl_features(c, b);
			modules_preauth_features(c->srv, b);
		}
	} else {
		buf_append_str(b, "<bind xmlns='" NS_BIND "'/>"
				  "<session xmlns='" NS_SESSION "'><optional/></session>"
				  "<ver xmlns='" NS_ROSTERVER "'/>");
		sm_features(c, b);
		modules_stream_features(c->srv, b);
	}
	buf_append_str(b, "</stream:features>");
}

/* Timer: before authentication it limits how long a stream may stay
 * anonymous; afterwards it sends whitespace keepalives. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct c2s *c = arg;
	const struct config *cfg = c->srv->cfg;

	if (c->outq_full) {
		c2s_finish(c, "output queue full");
		return;
	}
	if (c->state == C2S_CLOSING) {
		/* A peer that never reads would keep a closing stream (and
		 * its buffers) forever. */
		c2s_finish(c, "the peer did not take the stream's end");
		return;
	}
	if (c->state < C2S_PRE_BIND) {
		c2s_stream_error(c, "connection-timeout",
				 "authentication took too long");
		return;
	}
	if (c->state == C2S_SESSION || c->state == C2S_PRE_BIND ||
	    c->state == C2S_BINDING) {
		c2s_send_raw(c, " ", 1);
		if (cfg->keepalive) {
			struct timeval tv = { cfg->keepalive, 0 };
			event_add(c->timer, &tv);
		}
	}
}

void c2s_authenticated(struct c2s *c, const char *local)
{
	const struct config *cfg = c->srv->cfg;

	c->local = xstrdup(local);
	/* Channel binding was SASL's last use of the SSL: from here on an
	 * idle client need not carry OpenSSL's state. */
	if (c->srv->cfg->tls_compact)
		conn_tls_compact(c->conn);
	c2s_enter(c, C2S_WAIT_HEADER);
	/* The next bytes are a new stream header (RFC 6120 §6.4.6). */
	xml_parser_reset(c->parser);
	c->restart_pending = true;
	event_del(c->timer);
	if (cfg->keepalive) {
		struct timeval tv = { cfg->keepalive, 0 };
		event_add(c->timer, &tv);
	}
	snprintf(c->log_ctx, sizeof(c->log_ctx), "c2s#%llu %s %s@%s",
		 (unsigned long long)c->id, c->conn->peer, local, c->domain);
}

/* --- stream header ------------------------------------------------- */

static void on_stream_open(void *ctx, const struct xml_node *header,
			   const char *content_ns)
{
	struct c2s *c = ctx;
	const char *to = xml_attr(header, "to");
	const char *version = xml_attr(header, "version");
	char *domain = NULL;
	struct buf b = BUF_INIT;

	if (c->state != C2S_WAIT_HEADER) {
		c2s_stream_error(c, "bad-format", "unexpected stream header");
		return;
	}
	if (strcmp(content_ns, XML_NS_CLIENT) != 0) {
		c2s_stream_error(c, "invalid-namespace", NULL);
		return;
	}
	if (to != NULL && c->domain != NULL && strcmp(to, c->domain) == 0) {
		/* A restart (after TLS, after SASL) naming the prepared
		 * domain again: preparation is idempotent, so stringprep
		 * would give the same string back. */
		domain = xstrdup(c->domain);
	} else if (to == NULL || jid_prep_domain(to, &domain) != 0 ||
		   !server_is_local_domain(c->srv, domain)) {
		free(domain);
		c2s_stream_error(c, "host-unknown", NULL);
		return;
	}
	if (c->domain != NULL && strcmp(c->domain, domain) != 0) {
		free(domain);
		c2s_stream_error(c, "host-unknown", "the host changed");
		return;
	}
	free(c->domain);
	c->domain = domain;
	/* RFC 6120 §4.7.5: we speak 1.0 and answer a higher version with
	 * ours; a peer without a version is pre-XMPP (0.9) and cannot do
	 * SASL. */
	if (version == NULL || atoi(version) < 1) {
		send_header(c);
		c2s_stream_error(c, "unsupported-version", NULL);
		return;
	}
	c2s_enter(c, c->local ? C2S_PRE_BIND : C2S_PRE_AUTH);
	/* Header and features in one write: one TLS record and one
	 * segment instead of two, three times per login. */
	header_append(c, &b);
	features_append(c, &b);
	c2s_send_raw(c, b.data, b.len);
	buf_free(&b);
}

static void on_stream_close(void *ctx)
{
	struct c2s *c = ctx;
	c2s_close(c, "peer closed the stream");
}

static void on_parse_error(void *ctx, const char *condition, const char *text)
{
	struct c2s *c = ctx;
	c2s_stream_error(c, condition, text);
}

/* --- pre-auth ------------------------------------------------------- */

static void handle_starttls(struct c2s *c)
{
	SSL *ssl;

	if (c->tls) {
		c2s_stream_error(c, "policy-violation", "TLS is already on");
		return;
	}
	c2s_send_raw(c, "<proceed xmlns='" NS_TLS "'/>", 50);
	ssl = tls_new_ssl(c->srv->tls, c->domain);
	xml_parser_reset(c->parser);
	c->restart_pending = true;
	c->header_sent = false;
	if (ssl == NULL || conn_starttls(c->conn, ssl) != 0) {
		c2s_finish(c, "cannot start TLS");
		return;
	}
	c->tls = true;
	c2s_enter(c, C2S_WAIT_HEADER);
}

static void handle_pre_auth(struct c2s *c, struct xml_node *el)
{
	const struct config *cfg = c->srv->cfg;

	if (xml_is(el, "starttls", NS_TLS)) {
		handle_starttls(c);
		return;
	}
	if (strcmp(el->ns, NS_SASL) == 0) {
		if (!c->tls && cfg->require_tls) {
			c2s_stream_error(c, "policy-violation",
					 "use STARTTLS first");
			return;
		}
		c2s_sasl_element(c, el);
		return;
	}
	if (stanza_kind(el) == STANZA_IQ && (c->tls || !cfg->require_tls) &&
	    modules_preauth_iq(c->srv, c, el))
		return;
	if (stanza_kind(el) != STANZA_OTHER) {
		c2s_stream_error(c, "not-authorized", NULL);
		return;
	}
	c2s_stream_error(c, "unsupported-stanza-type", NULL);
}

/* --- binding -------------------------------------------------------- */

struct bind_request {
	struct c2s *c;
	struct xml_node *iq;
	char *resource;
};

static void send_bind_result(struct c2s *c, struct xml_node *iq)
{
	struct xml_node *res = stanza_new("iq", NULL, NULL, "result",
					  xml_attr(iq, "id"));
	struct xml_node *bind = xml_add_child(res, "bind", NS_BIND);

	xml_add_text_child(bind, "jid", c->session->full);
	c2s_send(c, res);
	xml_free(res);
}

/* max_sessions_per_account: binding a resource in use replaces that
 * session, so it does not add one. Sessions waiting to be resumed count:
 * they hold as much as live ones. */
static bool over_session_limit(struct c2s *c, const struct account *a,
			       const char *resource)
{
	unsigned n = 0;

	for (const struct session *s = a->sessions; s; s = s->next_in_account) {
		if (resource != NULL && s->jid.resource != NULL &&
		    strcmp(s->jid.resource, resource) == 0)
			return false;
		n++;
	}
	return n >= c->srv->cfg->max_sessions_per_account;
}

static void bind_account_loaded(void *ctx, struct account *a)
{
	struct bind_request *br = ctx;
	struct c2s *c = br->c;

	if (!c2s_release(c)) {
		account_unref(a);
		goto out;
	}
	if (!a->loaded || !a->exists) {
		account_unref(a);
		/* Deleted between SASL and bind, or the store failed. */
		c2s_stream_error(c, a->exists ? "internal-server-error"
					      : "not-authorized", NULL);
		goto out;
	}
	if (over_session_limit(c, a, br->resource)) {
		/* RFC 6120 §7.6.2.1: the stream stays; the client may close
		 * another resource and try again. */
		struct xml_node *err = stanza_error_reply(br->iq,
			"resource-constraint", "too many resources bound");
		account_unref(a);
		log_msg(LOG_INFO, c->log_ctx, "bind refused: %u sessions",
			c->srv->cfg->max_sessions_per_account);
		c2s_enter(c, C2S_PRE_BIND);
		if (err != NULL) {
			c2s_send(c, err);
			xml_free(err);
		}
		goto out;
	}
	c->account = a; /* keeps the callback's reference */
	/* The keyring unlocked at SASL success now serves every session of
	 * the account (another session may have unlocked it already). */
	if (a->unlocked == NULL) {
		a->unlocked = c->unlocked;
		c->unlocked = NULL;
	}
	c->session = session_bind(c->srv, c, a, br->resource);
	c2s_update_log_ctx(c);
	log_msg(LOG_INFO, c->log_ctx, "bound");
	c2s_enter(c, C2S_SESSION);
	modules_session_bound(c->srv, c->session);
	send_bind_result(c, br->iq);
out:
	xml_free(br->iq);
	free(br->resource);
	free(br);
}

void c2s_attach_session(struct c2s *c, struct session *s)
{
	c->session = s;
	s->stream = c;
	if (c->account == NULL) {
		c->account = s->account;
		account_ref(c->account);
	}
	c2s_update_log_ctx(c);
	c2s_enter(c, C2S_SESSION);
}

static void handle_bind(struct c2s *c, struct xml_node *iq)
{
	struct xml_node *bind = xml_child(iq, "bind", NS_BIND);
	const char *type = xml_attr(iq, "type");
	const char *res = xml_child_text(bind, "resource", NS_BIND);
	struct bind_request *br;
	char *prepped = NULL;
	char *bare;

	if (type == NULL || strcmp(type, "set") != 0 || xml_attr(iq, "id") == NULL) {
		struct xml_node *err = stanza_error_reply(iq, "bad-request", NULL);
		if (err) {
			c2s_send(c, err);
			xml_free(err);
		}
		return;
	}
	if (res != NULL && *res != '\0' && jid_prep_resource(res, &prepped) != 0) {
		struct xml_node *err = stanza_error_reply(iq, "bad-request",
							  "invalid resource");
		c2s_send(c, err);
		xml_free(err);
		return;
	}
	br = xcalloc(1, sizeof(*br));
	br->c = c;
	br->iq = xml_copy(iq);
	br->resource = prepped;
	bare = xasprintf("%s@%s", c->local, c->domain);
	c2s_enter(c, C2S_BINDING);
	c2s_hold(c);
	/* c->local is set only by a SASL success, which found the user. */
	account_get_known(c->srv, bare, bind_account_loaded, br);
	free(bare);
}

static void handle_pre_bind(struct c2s *c, struct xml_node *el)
{
	if (sm_element(c, el))
		return;
	if (stanza_kind(el) == STANZA_IQ && xml_child(el, "bind", NS_BIND)) {
		handle_bind(c, el);
		return;
	}
	if (stanza_kind(el) == STANZA_IQ) {
		/* RFC 6120 §7.1: nothing but binding before a resource. */
		struct xml_node *err = stanza_error_reply(el, "not-authorized", NULL);
		if (err) {
			c2s_send(c, err);
			xml_free(err);
		}
		return;
	}
	c2s_stream_error(c, "not-authorized", "bind a resource first");
}

/* --- session -------------------------------------------------------- */

static void reply_error(struct c2s *c, const struct xml_node *st,
			const char *condition, const char *text)
{
	struct xml_node *err = stanza_error_reply(st, condition, text);

	if (err == NULL)
		return;
	/* The reply comes from the server on the recipient's behalf; the
	 * sender is this session. A 'to' that did not parse cannot be the
	 * reply's 'from'. */
	xml_set_attr(err, "to", c->session->full);
	if (strcmp(condition, "jid-malformed") == 0)
		xml_set_attr(err, "from", NULL);
	c2s_send(c, err);
	xml_free(err);
}

/* RFC 6120 §8.1.1-8.1.2 and §8.2.3: validate addressing and stamp 'from'.
 * Returns 0 if the stanza may proceed. */
static int check_stanza(struct c2s *c, struct xml_node *st, enum stanza_kind kind)
{
	const char *from = xml_attr(st, "from");
	const char *to = xml_attr(st, "to");
	const char *type = xml_attr(st, "type");
	struct session *s = c->session;

	if (from != NULL) {
		char *n = jid_normalize(from);
		bool ok = n != NULL && (strcmp(n, s->full) == 0 ||
					strcmp(n, s->account->bare) == 0);
		free(n);
		if (!ok) {
			c2s_stream_error(c, "invalid-from", NULL);
			return -1;
		}
	}
	xml_set_attr(st, "from", s->full);
	if (to != NULL) {
		char *n = jid_normalize(to);
		if (n == NULL) {
			reply_error(c, st, "jid-malformed", NULL);
			return -1;
		}
		xml_set_attr(st, "to", n);
		free(n);
	}
	if (kind == STANZA_IQ) {
		if (xml_attr(st, "id") == NULL || type == NULL ||
		    (strcmp(type, "get") != 0 && strcmp(type, "set") != 0 &&
		     strcmp(type, "result") != 0 && strcmp(type, "error") != 0)) {
			reply_error(c, st, "bad-request", "an iq needs an id and a type");
			return -1;
		}
		if ((strcmp(type, "get") == 0 || strcmp(type, "set") == 0) &&
		    xml_count_elements(st) != 1) {
			reply_error(c, st, "bad-request",
				    "an iq request carries exactly one payload");
			return -1;
		}
	}
	return 0;
}

static void handle_session_stanza(struct c2s *c, struct xml_node *st)
{
	enum stanza_kind kind = stanza_kind(st);

	if (kind == STANZA_OTHER) {
		if (!sm_element(c, st) && !modules_stream_element(c->session, st))
			c2s_stream_error(c, "unsupported-stanza-type", NULL);
		xml_free(st);
		return;
	}
	/* XEP-0198 'h': the stanza is handled by the time this returns. */
	sm_stanza_in(c->session);
	if (check_stanza(c, st, kind) != 0) {
		xml_free(st);
		return;
	}
	if (kind == STANZA_IQ && xml_child(st, "session", NS_SESSION) &&
	    xml_attr(st, "to") == NULL) {
		/* RFC 3921 session establishment: a no-op kept for old
		 * clients (RFC 6121 Appendix E). */
		struct xml_node *res = stanza_iq_result(st);
		xml_set_attr(res, "from", NULL);
		c2s_send(c, res);
		xml_free(res);
		xml_free(st);
		return;
	}
	if (kind == STANZA_IQ && xml_child(st, "bind", NS_BIND)) {
		reply_error(c, st, "not-allowed", "already bound");
		xml_free(st);
		return;
	}
	if (kind == STANZA_PRESENCE) {
		presence_from_session(c->session, st);
		return;
	}
	/* RFC 6120 §8.1.1.1: no 'to' means the user's own account. */
	if (xml_attr(st, "to") == NULL)
		xml_set_attr(st, "to", c->session->account->bare);
	if (kind == STANZA_MESSAGE) {
		/* A message the blocking list stops was never sent: no
		 * carbon copy, no archive (XEP-0191). */
		if (router_filter(c->srv, st)) {
			xml_free(st);
			return;
		}
		modules_message_sent(c->session, st);
		router_route_passed(c->srv, st);
		return;
	}
	router_route(c->srv, st);
}

static void on_stanza(void *ctx, struct xml_node *el)
{
	struct c2s *c = ctx;

	switch (c->state) {
	case C2S_PRE_AUTH:
	case C2S_SASL:
		handle_pre_auth(c, el);
		break;
	case C2S_PRE_BIND:
		handle_pre_bind(c, el);
		break;
	case C2S_BINDING:
		/* The client must wait for the bind result. */
		c2s_stream_error(c, "not-authorized", "bind is in progress");
		break;
	case C2S_SESSION:
		handle_session_stanza(c, el);
		return; /* ownership passed on */
	case C2S_WAIT_HEADER:
	case C2S_CLOSING:
	case C2S_CLOSED:
		break;
	}
	xml_free(el);
}

/* --- I/O ------------------------------------------------------------ */

void c2s_read_input(struct c2s *c)
{
	struct evbuffer *in = conn_input(c->conn);
	char chunk[READ_CHUNK];

	if (c->state == C2S_SESSION && intake_park(c))
		return;
	while (c->state != C2S_CLOSED && c->state != C2S_CLOSING &&
	       evbuffer_get_length(in) > 0) {
		int n = evbuffer_remove(in, chunk, sizeof(chunk));
		if (n <= 0)
			break;
		c->restart_pending = false;
		if (xml_parser_feed(c->parser, chunk, (size_t)n) != 0)
			break;
		/* After STARTTLS the remaining plaintext is gone already;
		 * after SASL success the client must wait for us, so any
		 * bytes left were sent too early and are dropped too. */
		if (c->restart_pending && !c->tls)
			break;
	}
}

static void conn_read(void *ctx)
{
	c2s_read_input(ctx);
}

static const struct conn_ops c2s_conn_ops = {
	.read = conn_read,
	.flushed = conn_flushed,
	.error = conn_error,
	.drained = conn_drained,
};

static const struct xml_parser_callbacks parser_callbacks = {
	.stream_open = on_stream_open,
	.stanza = on_stanza,
	.stream_close = on_stream_close,
	.error = on_parse_error,
};

/* Refuses a connection before any state is made for it: a header and a
 * stream error, written without blocking (a full socket buffer just
 * drops them). On the direct TLS port nothing can be said without a TLS
 * handshake, which is exactly the work a refusal must not cost: the
 * socket is just closed. */
static void refuse(int fd, bool direct_tls, const char *condition,
		   const char *text)
{
	struct buf b = BUF_INIT;
	char junk[4096];

	if (!direct_tls) {
		buf_append_str(&b, "<?xml version='1.0'?><stream:stream "
			       "xmlns='jabber:client' xmlns:stream='"
			       XML_NS_STREAM "' version='1.0'>");
		stream_error_append(&b, condition, text);
		buf_append_str(&b, "</stream:stream>");
		/* Unread input would turn close() into a reset that can
		 * destroy the error before the peer reads it. */
		for (int i = 0; i < 16 && read(fd, junk, sizeof(junk)) > 0; i++)
			;
		if (write(fd, b.data, b.len) < 0) {
			/* nothing more to do for a refused peer */
		}
		buf_free(&b);
	}
	close(fd);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void c2s_accept(struct server *srv, int fd, struct sockaddr *addr, int addrlen,
		bool direct_tls)
{
	const struct config *cfg = srv->cfg;
	struct xml_parser_limits limits = {
		.max_stanza_bytes = cfg->max_stanza_size,
		.max_depth = cfg->max_depth,
		.max_attrs = cfg->max_attrs,
	};
	struct c2s *c;
	SSL *ssl = NULL;
	struct timeval tv = { cfg->auth_timeout, 0 };
	char key[ADDR_KEY_MAX];
	const char *why;

	if (srv->shutting_down || srv->nstreams >= cfg->max_connections) {
		if (!srv->shutting_down)
			log_debug("refused a connection: max_connections (%u) reached",
				  cfg->max_connections);
		refuse(fd, direct_tls, "resource-constraint", NULL);
		return;
	}
	addr_limit_key(addr, key);
	if (addr_limit_admit(srv->addr_limit, key, now_ms(), &why) != 0) {
		log_msg(LOG_DEBUG, key, "refused a connection: %s", why);
		refuse(fd, direct_tls, "policy-violation", why);
		return;
	}
	if (direct_tls) {
		ssl = tls_new_ssl(srv->tls, NULL);
		if (ssl == NULL) {
			addr_limit_release(srv->addr_limit, key);
			close(fd);
			return;
		}
	}
	c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	c->id = ++srv->next_stream_id;
	c->tls = direct_tls;
	c->state = C2S_WAIT_HEADER;
	c->conn = conn_new(srv->base, fd, addr, addrlen, ssl, &c2s_conn_ops, c);
	if (srv->read_limit != NULL)
		conn_set_read_limit(c->conn, srv->read_limit);
	c->parser = xml_parser_new(&limits, &parser_callbacks, c);
	c->free_ev = event_new(srv->base, -1, 0, on_free_event, c);
	c->timer = evtimer_new(srv->base, on_timer, c);
	evtimer_add(c->timer, &tv);
	c->next = srv->streams;
	if (srv->streams)
		srv->streams->prev = c;
	srv->streams = c;
	srv->nstreams++;
	c2s_update_log_ctx(c);
	log_msg(LOG_INFO, c->log_ctx, "connected%s", direct_tls ? " (direct TLS)" : "");
}

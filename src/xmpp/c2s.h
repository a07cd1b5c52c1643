/* A client-to-server stream (RFC 6120): one per accepted connection. An
 * explicit state machine; c2s_enter() is the only place that changes the
 * state. A stream is never freed inside its own callbacks: c2s_close()
 * marks it and a deferred event frees it once no request is outstanding. */
#ifndef ROOST_XMPP_C2S_H
#define ROOST_XMPP_C2S_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sasl/scram.h"

struct account;
struct conn;
struct event;
struct server;
struct session;
struct xml_node;
struct xml_parser;
struct c2s_sasl;
struct c2s_drain_waiter;
struct seal_unlocked;

enum c2s_state {
	C2S_WAIT_HEADER,    /* waiting for <stream:stream> (first, after TLS, after SASL) */
	C2S_PRE_AUTH,       /* features sent; STARTTLS or SASL next */
	C2S_SASL,           /* inside a SASL exchange */
	C2S_PRE_BIND,       /* authenticated; resource binding next */
	C2S_BINDING,        /* waiting for the account to load */
	C2S_SESSION,        /* bound: stanzas flow */
	C2S_CLOSING,        /* </stream:stream> sent; flushing */
	C2S_CLOSED,         /* gone; freed when nothing refers to it */
};

struct c2s {
	struct server *srv;
	uint64_t id;
	char log_ctx[160];     /* "c2s#id peer jid" */
	struct conn *conn;
	struct xml_parser *parser;
	enum c2s_state state;
	bool tls;
	bool header_sent;      /* our stream header is out */
	bool restart_pending;  /* the parser was reset mid-feed */
	bool clean_close;      /* the stream is ending by the protocol, not a dropped connection */
	bool outq_full;        /* over max_outq: nothing more is written, the timer ends it */
	char *domain;          /* the stream's 'to', prepared */
	char *stream_id;

	struct c2s_sasl *sasl; /* during C2S_SASL */
	unsigned sasl_failures;
	char *local;           /* authenticated localpart */
	struct account *account;
	struct session *session;

	unsigned pending;      /* async requests that will call back */
	struct c2s_drain_waiter *drain_waiters; /* c2s_when_drained, in order */
	struct seal_unlocked *unlocked; /* keyring unlocked at SASL success, until bind */
	struct event *timer;   /* auth timeout, then keepalive */
	struct event *free_ev;
	struct c2s *prev, *next; /* srv->streams */
	bool parked;           /* c2s_intake.h: not read until the release */
	struct c2s *park_prev, *park_next; /* srv->parked */
};

/* Feeds the parser what the connection has read (c2s_intake.c calls it
 * again for a stream it parked). */
void c2s_read_input(struct c2s *c);

/* Takes over an accepted socket. */
void c2s_accept(struct server *srv, int fd, struct sockaddr *addr, int addrlen,
		bool direct_tls);

/* Calls fn(ctx) once everything queued on the stream so far has been
 * written to the socket: how flood delivery paces itself without stream
 * management. Never from inside this call; never after the stream closed
 * or lost its session (c2s_drop_drained). Waiters fire in order. */
void c2s_when_drained(struct c2s *c, void (*fn)(void *ctx), void *ctx);
/* Forgets every drain waiter: the session they were for left the stream. */
void c2s_drop_drained(struct c2s *c);

/* Serializes a stanza onto the stream (queued for stream management when
 * the stream has a session with it on). */
void c2s_send(struct c2s *c, const struct xml_node *stanza);
/* Serializes without the stream-management queue (the caller queued it). */
void c2s_send_unqueued(struct c2s *c, const struct xml_node *stanza);
/* Binds a resumed session to this stream (XEP-0198). */
void c2s_attach_session(struct c2s *c, struct session *s);
/* Sends raw, already serialized XML. */
void c2s_send_raw(struct c2s *c, const char *xml, size_t len);

/* Sends a stream error and closes the stream. */
void c2s_stream_error(struct c2s *c, const char *condition, const char *text);
/* Closes the stream gracefully (</stream:stream>), e.g. at shutdown. */
void c2s_close(struct c2s *c, const char *why);

/* For async requests made on behalf of the stream: hold it while one is
 * outstanding; on completion, release it and check c2s_alive(). */
void c2s_hold(struct c2s *c);
/* Returns false (and possibly frees the stream) if it closed meanwhile. */
bool c2s_release(struct c2s *c);

/* Called by the SASL code. */
void c2s_authenticated(struct c2s *c, const char *local);
void c2s_enter(struct c2s *c, enum c2s_state state);

#endif

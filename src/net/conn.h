/* A client connection: a libevent bufferevent over a socket, with TLS
 * either from the first byte (XEP-0368) or after STARTTLS. Protocol code
 * reads from conn_input() and writes with conn_write(); it never sees
 * OpenSSL except for channel binding. */
#ifndef ROOST_NET_CONN_H
#define ROOST_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "net/addr_limit.h"

struct event_base;
struct evbuffer;
struct bufferevent;
struct event;
struct ev_token_bucket_cfg;

struct conn_ops {
	/* Input arrived; read it from conn_input(). */
	void (*read)(void *ctx);
	/* The output queue emptied after conn_close_after_flush(): the
	 * owner should now release the connection. */
	void (*flushed)(void *ctx);
	/* The peer closed, the socket failed or TLS failed. `why` is a short
	 * static text for the log. The owner releases the connection. */
	void (*error)(void *ctx, const char *why);
	/* Everything queued has been handed to the kernel, after a
	 * conn_want_drained() call (once per call). */
	void (*drained)(void *ctx);
};

struct tls_rec;

struct conn {
	struct bufferevent *bev;
	SSL *ssl;                /* NULL before TLS and once `rec` took over */
	struct tls_rec *rec;     /* TLS 1.3 records done here (conn_tls_compact) */
	struct evbuffer *in;     /* conn_input() while `rec` is set, or NULL */
	struct ev_token_bucket_cfg *read_limit;
	const struct conn_ops *ops;
	void *ctx;
	char peer[64];           /* "ip:port" for logs */
	char peer_ip[ADDR_KEY_MAX]; /* for per-address limits: addr_limit_key() */
	bool closing;            /* no more reading; closing after the flush */
	bool want_drained;       /* call ops->drained when the output empties */
	bool want_compact;       /* conn_tls_compact() asked, not done yet */
	bool read_paused;        /* conn_pause_read(): kept across a new bev */
	struct event *drain_ev;  /* while want_drained or want_compact */
};

/* Takes over `fd`. ssl != NULL starts TLS at once (direct TLS). */
struct conn *conn_new(struct event_base *base, int fd,
		      const struct sockaddr *addr, int addrlen, SSL *ssl,
		      const struct conn_ops *ops, void *ctx);
/* Frees the connection and closes the socket now. */
void conn_free(struct conn *c);

/* Limits how fast the socket is read (a token bucket shared by nobody:
 * each connection has its own). Over the rate the socket is simply not
 * read until the bucket refills: nothing is dropped, TCP flow control
 * slows the peer down. `cfg` must outlive the connection. It applies to
 * the socket, so after STARTTLS it counts TLS bytes. */
void conn_set_read_limit(struct conn *c, struct ev_token_bucket_cfg *cfg);

/* Stops and restarts reading the socket (back-pressure: c2s_intake.h).
 * Input already read stays in conn_input(); resuming does not call
 * ops->read for it: the caller reads it. A closing connection stays
 * unread. */
void conn_pause_read(struct conn *c);
void conn_resume_read(struct conn *c);

struct evbuffer *conn_input(struct conn *c);
void conn_write(struct conn *c, const void *data, size_t len);
/* Bytes queued for the peer. */
size_t conn_output_pending(struct conn *c);

/* Switches to TLS as the server. Bytes already queued (the <proceed/>)
 * go out in plaintext first; unread plaintext input is discarded (RFC 6120
 * §5.3.3 forbids acting on it). Returns 0 or -1. */
int conn_starttls(struct conn *c, SSL *ssl);

/* The stream needs nothing more from OpenSSL than record protection
 * (channel binding is over): a TLS 1.3 connection then moves its records
 * to tls_rec (tls.h) and frees its SSL, about 14 KiB, as soon as no
 * output is pending and OpenSSL holds no partial record. From then on
 * c->ssl is NULL. Other connections (plain, TLS 1.2, ...) keep their SSL.
 * Nothing is called back from inside this call. */
void conn_tls_compact(struct conn *c);

/* Asks for one ops->drained call once everything queued so far is
 * written to the socket. If nothing is queued it comes from the next loop
 * pass, never from inside this call. */
void conn_want_drained(struct conn *c);

/* Stops reading; calls ops->flushed once everything queued is written. */
void conn_close_after_flush(struct conn *c);

#endif

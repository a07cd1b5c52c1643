#include "net/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "net/addr_limit.h"
#include "net/tls.h"
#include "util/log.h"
#include "util/xalloc.h"

/* Like xmalloc: out of memory is fatal (STYLE rule 5). */
static struct evbuffer *xevbuffer_new(void)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		log_error("out of memory");
		abort();
	}
	return b;
}

static void drained_now(evutil_socket_t fd, short what, void *arg);

/* Runs drained_now from the next loop pass. Its event exists only while
 * something waits for it: most connections, most of the time, have
 * nothing to be told. */
static void wake(struct conn *c)
{
	if (c->drain_ev == NULL)
		c->drain_ev = event_new(bufferevent_get_base(c->bev), -1, 0,
					drained_now, c);
	if (c->drain_ev == NULL) {
		log_error("out of memory");
		abort();
	}
	event_active(c->drain_ev, 0, 0);
}

static void drop_input(struct evbuffer *b)
{
	evbuffer_drain(b, evbuffer_get_length(b));
}

/* Records done by tls_rec: decrypt what arrived, hand the plaintext on.
 * The plaintext buffer exists only while there is plaintext: an idle
 * connection does not keep one. */
static void read_records(struct conn *c, struct evbuffer *raw)
{
	const char *why = NULL;
	int rc;

	if (c->in == NULL)
		c->in = xevbuffer_new();
	rc = tls_rec_read(c->rec, raw, c->in, bufferevent_get_output(c->bev),
			  &why);
	if (evbuffer_get_length(c->in) > 0)
		c->ops->read(c->ctx);
	if (evbuffer_get_length(c->in) == 0) {
		evbuffer_free(c->in);
		c->in = NULL;
	}
	if (rc == 0)
		return;
	/* Nothing after close_notify or a bad record is read. */
	bufferevent_disable(c->bev, EV_READ);
	drop_input(raw);
	if (rc > 0)
		c->ops->error(c->ctx, "connection closed");
	else {
		log_msg(LOG_DEBUG, c->peer, "%s", why);
		c->ops->error(c->ctx, "TLS error");
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closing) {
		drop_input(bufferevent_get_input(bev));
		if (c->in != NULL)
			drop_input(c->in);
		return;
	}
	if (c->rec != NULL) {
		read_records(c, bufferevent_get_input(bev));
		return;
	}
	c->ops->read(c->ctx);
	/* OpenSSL may have held part of a record at the last try. */
	if (c->want_compact)
		wake(c);
}

void conn_pause_read(struct conn *c)
{
	c->read_paused = true;
	bufferevent_disable(c->bev, EV_READ);
}

void conn_resume_read(struct conn *c)
{
	c->read_paused = false;
	if (!c->closing)
		bufferevent_enable(c->bev, EV_READ);
}

static void output_empty(struct conn *c)
{
	if (c->want_drained) {
		c->want_drained = false;
		c->ops->drained(c->ctx);
	}
	if (c->closing)
		c->ops->flushed(c->ctx);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	/* Called when the output drops to the low watermark (0); after
	 * STARTTLS the ciphertext may still wait in the socket layer. */
	if (conn_output_pending(c) == 0) {
		if (c->want_compact)
			wake(c);
		output_empty(c);
	}
}

/* After STARTTLS the filter hands ciphertext to the socket bufferevent
 * at once, so "the filter's output is empty" does not mean "written":
 * watch the socket layer's buffer drain too. */
static void on_socket_drained(struct evbuffer *buf,
			      const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;

	if (info->n_deleted > 0 && conn_output_pending(c) == 0) {
		if (c->want_compact)
			wake(c);
		output_empty(c);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	const char *why = "connection closed";

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = c->ssl ? bufferevent_get_openssl_error(bev) : 0;
		why = e ? "TLS error" : "socket error";
		if (e && log_enabled(LOG_DEBUG)) {
			char buf[160];
			ERR_error_string_n(e, buf, sizeof(buf));
			log_msg(LOG_DEBUG, c->peer, "TLS: %s", buf);
		}
	} else if (what & BEV_EVENT_TIMEOUT) {
		why = "timeout";
	}
	c->ops->error(c->ctx, why);
}

static void format_peer(struct conn *c, const struct sockaddr *sa)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
		snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
		snprintf(c->peer, sizeof(c->peer), "[%s]:%u", ip, port);
	} else {
		snprintf(c->peer, sizeof(c->peer), "unix");
	}
	addr_limit_key(sa, c->peer_ip);
}

static void setup_bev(struct conn *c)
{
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	/* A paused connection (STARTTLS or the record layer moving to a
	 * new bufferevent) stays unread until conn_resume_read. */
	bufferevent_enable(c->bev, c->read_paused ? EV_WRITE : EV_READ | EV_WRITE);
}

struct conn *conn_new(struct event_base *base, int fd,
		      const struct sockaddr *addr, int addrlen, SSL *ssl,
		      const struct conn_ops *ops, void *ctx)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	int one = 1;

	c->ops = ops;
	c->ctx = ctx;
	format_peer(c, addr);
	evutil_make_socket_nonblocking(fd);
	/* Stanzas are small and latency matters more than segment count. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (ssl != NULL) {
		c->ssl = ssl;
		c->bev = bufferevent_openssl_socket_new(base, fd, ssl,
			BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	} else {
		c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	setup_bev(c);
	return c;
}

void conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	/* With BEV_OPT_CLOSE_ON_FREE this frees the SSL, the underlying
	 * bufferevent of a STARTTLS filter and the socket. */
	bufferevent_free(c->bev);
	if (c->drain_ev != NULL)
		event_free(c->drain_ev);
	if (c->in != NULL)
		evbuffer_free(c->in);
	tls_rec_free(c->rec);
	free(c);
}

void conn_set_read_limit(struct conn *c, struct ev_token_bucket_cfg *cfg)
{
	/* Before STARTTLS c->bev is the socket; afterwards the limit stays
	 * on the socket bufferevent under the TLS filter. */
	struct bufferevent *under = bufferevent_get_underlying(c->bev);

	c->read_limit = cfg;
	bufferevent_set_rate_limit(under != NULL ? under : c->bev, cfg);
}

struct evbuffer *conn_input(struct conn *c)
{
	if (c->rec == NULL)
		return bufferevent_get_input(c->bev);
	if (c->in == NULL)
		c->in = xevbuffer_new();
	return c->in;
}

void conn_write(struct conn *c, const void *data, size_t len)
{
	if (c->rec != NULL)
		tls_rec_write(c->rec, data, len, bufferevent_get_output(c->bev));
	else
		bufferevent_write(c->bev, data, len);
}

size_t conn_output_pending(struct conn *c)
{
	struct bufferevent *under = bufferevent_get_underlying(c->bev);
	size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));

	if (under != NULL)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

int conn_starttls(struct conn *c, SSL *ssl)
{
	struct bufferevent *plain = c->bev;
	struct evbuffer *in = bufferevent_get_input(plain);
	struct bufferevent *tls;

	evbuffer_drain(in, evbuffer_get_length(in));
	tls = bufferevent_openssl_filter_new(bufferevent_get_base(plain), plain,
		ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	c->bev = tls;
	c->ssl = ssl;
	setup_bev(c);
	evbuffer_add_cb(bufferevent_get_output(plain), on_socket_drained, c);
	return 0;
}

/* Moves a TLS 1.3 connection's records from OpenSSL to tls_rec: a plain
 * socket bufferevent on a duplicate of the descriptor replaces the TLS
 * one, which goes with its SSL (and, after STARTTLS, the socket
 * bufferevent under it) and closes the original descriptor. Plaintext
 * OpenSSL decrypted but nobody read yet, and ciphertext read from the
 * socket that OpenSSL did not reach, carry over. */
static void try_compact(struct conn *c)
{
	struct bufferevent *under = bufferevent_get_underlying(c->bev);
	struct bufferevent *bev;
	struct tls_rec *rec;
	evutil_socket_t fd;
	int rc;

	if (c->closing || c->ssl == NULL) {
		c->want_compact = false;
		return;
	}
	if (conn_output_pending(c) != 0)
		return; /* on_write or on_socket_drained tries again */
	rc = tls_rec_take(c->ssl, &rec);
	if (rc == 0)
		return; /* on_read tries again */
	c->want_compact = false;
	if (rc < 0)
		return;
	fd = fcntl(bufferevent_getfd(c->bev), F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		log_msg(LOG_WARN, c->peer, "keeping OpenSSL's record layer: "
			"dup: %s", strerror(errno));
		tls_rec_free(rec);
		return;
	}
	bev = bufferevent_socket_new(bufferevent_get_base(c->bev), fd,
				     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		log_error("out of memory moving a TLS record layer");
		abort();
	}
	c->in = xevbuffer_new();
	evbuffer_add_buffer(c->in, bufferevent_get_input(c->bev));
	if (under != NULL)
		evbuffer_add_buffer(bufferevent_get_input(bev),
				    bufferevent_get_input(under));
	bufferevent_free(c->bev);
	c->bev = bev;
	c->ssl = NULL;
	c->rec = rec;
	setup_bev(c);
	if (c->read_limit != NULL)
		bufferevent_set_rate_limit(bev, c->read_limit);
	read_records(c, bufferevent_get_input(bev));
}

static void drained_now(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->want_compact)
		try_compact(c);
	if (c->want_drained && conn_output_pending(c) == 0)
		output_empty(c);
	/* Nobody asked again from the callbacks: the event goes (freeing
	 * it from its own callback is allowed). */
	if (!c->want_drained && !c->want_compact) {
		event_free(c->drain_ev);
		c->drain_ev = NULL;
	}
}

void conn_tls_compact(struct conn *c)
{
	if (c->ssl == NULL || c->closing)
		return;
	c->want_compact = true;
	wake(c);
}

void conn_want_drained(struct conn *c)
{
	c->want_drained = true;
	if (conn_output_pending(c) == 0)
		wake(c);
}

void conn_close_after_flush(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	if (conn_output_pending(c) == 0)
		c->ops->flushed(c->ctx);
}

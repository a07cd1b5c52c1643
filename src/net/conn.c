#include "net/conn.h"

#include <arpa/inet.h>
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
#include "util/log.h"
#include "util/xalloc.h"

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (!c->closing)
		c->ops->read(c->ctx);
	else
		evbuffer_drain(bufferevent_get_input(bev),
			       evbuffer_get_length(bufferevent_get_input(bev)));
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
	if (conn_output_pending(c) == 0)
		output_empty(c);
}

/* After STARTTLS the filter hands ciphertext to the socket bufferevent
 * at once, so "the filter's output is empty" does not mean "written":
 * watch the socket layer's buffer drain too. */
static void on_socket_drained(struct evbuffer *buf,
			      const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;

	if (info->n_deleted > 0 && conn_output_pending(c) == 0)
		output_empty(c);
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

static void drained_now(evutil_socket_t fd, short what, void *arg);

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
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
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
	c->drain_ev = event_new(base, -1, 0, drained_now, c);
	return c;
}

void conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	/* With BEV_OPT_CLOSE_ON_FREE this frees the SSL, the underlying
	 * bufferevent of a STARTTLS filter and the socket. */
	bufferevent_free(c->bev);
	event_free(c->drain_ev);
	free(c);
}

void conn_set_read_limit(struct conn *c, struct ev_token_bucket_cfg *cfg)
{
	/* Before STARTTLS c->bev is the socket; afterwards the limit stays
	 * on the socket bufferevent under the TLS filter. */
	struct bufferevent *under = bufferevent_get_underlying(c->bev);

	bufferevent_set_rate_limit(under != NULL ? under : c->bev, cfg);
}

struct evbuffer *conn_input(struct conn *c)
{
	return bufferevent_get_input(c->bev);
}

void conn_write(struct conn *c, const void *data, size_t len)
{
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

static void drained_now(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->want_drained && conn_output_pending(c) == 0)
		output_empty(c);
}

void conn_want_drained(struct conn *c)
{
	c->want_drained = true;
	if (conn_output_pending(c) == 0)
		event_active(c->drain_ev, 0, 0);
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

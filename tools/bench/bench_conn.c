/* One client connection: TCP from a chosen loopback source address,
 * STARTTLS or direct TLS, SCRAM, bind, presence; then stanzas go to the
 * scenario's callbacks.
 *
 * Input is split into top-level elements by a small resumable scanner
 * rather than a full XML parser: servers under test send well-formed,
 * re-serialized XML without CDATA or comments, and the load generator must
 * spend its CPU on sockets and TLS, not on building trees. Scenarios pick
 * the few values they need from a stanza with the st_*() helpers.
 *
 * A connection is never freed on its own callback's stack: bconn_die()
 * reports it closed and queues it for a reap event. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "bench.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define LOGIN_TIMEOUT_NS (60ull * 1000000000ull)
#define CLOSE_TIMEOUT_NS (5ull * 1000000000ull)

static const char *const state_names[] = {
	"connecting", "features", "proceed", "handshake", "features-tls",
	"register", "sasl-challenge", "sasl-success", "features-auth", "bind",
	"session", "ready-ping", "online", "closing", "dead",
};

static void bconn_die(struct bconn *c, const char *why);
static void on_io(evutil_socket_t fd, short what, void *arg);
static void flush(struct bconn *c);

void user_name(struct bench *b, unsigned user, char *out, size_t cap)
{
	snprintf(out, cap, "%s%u", b->o.prefix, user);
}

/* ---------------------------------------------------------------------
 * stanza helpers */

/* End of the tag starting at p ('<'): the '>' outside quotes. */
static const char *tag_end(const char *p, const char *end)
{
	char q = 0;

	for (; p < end; p++) {
		if (q) {
			if (*p == q)
				q = 0;
		} else if (*p == '\'' || *p == '"') {
			q = *p;
		} else if (*p == '>') {
			return p;
		}
	}
	return NULL;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int decode_into(const char *p, size_t len, char *out, size_t cap)
{
	size_t o = 0;

	if (cap == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char ch = p[i];
		if (ch == '&') {
			static const struct { const char *e; char c; } ents[] = {
				{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
				{ "&quot;", '"' }, { "&apos;", '\'' },
			};
			for (size_t k = 0; k < 5; k++) {
				size_t el = strlen(ents[k].e);
				if (len - i >= el && memcmp(p + i, ents[k].e, el) == 0) {
					ch = ents[k].c;
					i += el - 1;
					break;
				}
			}
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = ch;
	}
	out[o] = '\0';
	return (int)o;
}

/* Attribute `name` of the tag at p; returns its length or -1. */
static int tag_attr(const char *p, const char *end, const char *name,
		    char *out, size_t cap)
{
	const char *te = tag_end(p, end);
	size_t nl = strlen(name);

	if (te == NULL)
		return -1;
	p++;
	while (p < te && !is_space(*p) && *p != '/' && *p != '>')
		p++;
	for (;;) {
		const char *an, *v;
		size_t al;
		char q;

		while (p < te && is_space(*p))
			p++;
		if (p >= te || *p == '/')
			return -1;
		an = p;
		while (p < te && *p != '=' && !is_space(*p))
			p++;
		al = (size_t)(p - an);
		while (p < te && (is_space(*p) || *p == '='))
			p++;
		if (p >= te || (*p != '\'' && *p != '"'))
			return -1;
		q = *p++;
		v = p;
		while (p < te && *p != q)
			p++;
		if (p >= te)
			return -1;
		if (al == nl && memcmp(an, name, nl) == 0)
			return decode_into(v, (size_t)(p - v), out, cap);
		p++;
	}
}

int st_attr(const struct stanza *st, const char *name, char *out, size_t cap)
{
	return tag_attr(st->p, st->p + st->len, name, out, cap);
}

/* Does the tag at p have local name `name`? */
static bool tag_is(const char *p, const char *end, const char *name)
{
	size_t nl = strlen(name);
	const char *q = p + 1, *ne;

	ne = q;
	while (ne < end && !is_space(*ne) && *ne != '>' && *ne != '/')
		ne++;
	for (const char *c = q; c < ne; c++)
		if (*c == ':')
			q = c + 1;
	return (size_t)(ne - q) == nl && memcmp(q, name, nl) == 0;
}

static const char *find_from(const char *p, const char *end, const char *name)
{
	while (p < end) {
		p = memchr(p, '<', (size_t)(end - p));
		if (p == NULL || p + 1 >= end)
			return NULL;
		if (p[1] != '/' && tag_is(p, end, name))
			return p;
		p++;
	}
	return NULL;
}

const char *st_find(const struct stanza *st, const char *name)
{
	const char *end = st->p + st->len;
	const char *te = tag_end(st->p, end);

	return te ? find_from(te + 1, end, name) : NULL;
}

int st_text(const struct stanza *st, const char *name, char *out, size_t cap)
{
	const char *end = st->p + st->len;
	const char *p = st_find(st, name), *te, *lt;

	if (p == NULL || (te = tag_end(p, end)) == NULL)
		return -1;
	if (te[-1] == '/') {
		if (cap == 0)
			return -1;
		out[0] = '\0';
		return 0;
	}
	lt = memchr(te + 1, '<', (size_t)(end - te - 1));
	if (lt == NULL)
		return -1;
	return decode_into(te + 1, (size_t)(lt - te - 1), out, cap);
}

/* Text content of the top element (SASL payloads). */
static int top_text(const struct stanza *st, char *out, size_t cap)
{
	const char *end = st->p + st->len;
	const char *te = tag_end(st->p, end), *lt;

	if (te == NULL)
		return -1;
	if (te[-1] == '/') {
		out[0] = '\0';
		return 0;
	}
	lt = memchr(te + 1, '<', (size_t)(end - te - 1));
	if (lt == NULL)
		return -1;
	return decode_into(te + 1, (size_t)(lt - te - 1), out, cap);
}

int st_elem_attr(const struct stanza *st, const char *name, const char *attr,
		 char *out, size_t cap)
{
	const char *p = st_find(st, name);

	return p ? tag_attr(p, st->p + st->len, attr, out, cap) : -1;
}

/* Local name of the first child element of the element at p other than
 * <text/>. */
static void first_condition(const char *p, const char *end, char *out,
			    size_t cap)
{
	const char *te = tag_end(p, end);

	out[0] = '\0';
	if (te == NULL || te[-1] == '/')
		return;
	for (p = te + 1; p < end; p++) {
		p = memchr(p, '<', (size_t)(end - p));
		if (p == NULL || p[1] == '/')
			return;
		if (!tag_is(p, end, "text")) {
			const char *q = p + 1, *ne = q;
			size_t n;
			while (ne < end && !is_space(*ne) && *ne != '>' && *ne != '/')
				ne++;
			for (const char *c = q; c < ne; c++)
				if (*c == ':')
					q = c + 1;
			n = (size_t)(ne - q);
			if (n >= cap)
				n = cap - 1;
			memcpy(out, q, n);
			out[n] = '\0';
			return;
		}
		te = tag_end(p, end);
		if (te == NULL)
			return;
		p = te;
	}
}

void st_error_condition(const struct stanza *st, char *out, size_t cap)
{
	const char *end = st->p + st->len;

	if (strcmp(st->name, "error") == 0 || strcmp(st->name, "failure") == 0) {
		first_condition(st->p, end, out, cap);
		return;
	}
	const char *e = st_find(st, "error");
	if (e == NULL) {
		out[0] = '\0';
		return;
	}
	first_condition(e, end, out, cap);
}

/* ---------------------------------------------------------------------
 * output */

/* Output is queued per connection and written once per loop pass (the
 * flush event runs after the pass's other callbacks): one TLS record and
 * one syscall for everything a pass produced, like a real client. */
void bconn_send(struct bconn *c, const char *xml, size_t len)
{
	struct bench *b = c->b;

	if (c->state == BC_DEAD || c->state == BC_CONNECTING)
		return;
	if (c->out_cap - c->out_len < len) {
		size_t cap = c->out_cap ? c->out_cap : 1024;
		while (cap - c->out_len < len)
			cap *= 2;
		c->out = realloc(c->out, cap);
		if (c->out == NULL)
			abort();
		c->out_cap = cap;
	}
	if (b->o.verbose > 1)
		fprintf(stderr, "roost-bench: %u/%s >> %.*s\n", c->user, c->resource,
			(int)len, xml);
	memcpy(c->out + c->out_len, xml, len);
	c->out_len += len;
	if (!c->flush_queued && !c->want_write && c->state != BC_HANDSHAKE) {
		c->flush_queued = true;
		c->flush_next = b->flush;
		b->flush = c;
		event_active(b->flush_ev, 0, 0);
	}
}

void bench_flush(struct bench *b)
{
	while (b->flush != NULL) {
		struct bconn *c = b->flush;
		b->flush = c->flush_next;
		c->flush_queued = false;
		if (c->state != BC_DEAD)
			flush(c);
	}
}

void bconn_sendf(struct bconn *c, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		abort();   /* callers send bounded stanzas */
	bconn_send(c, buf, (size_t)n);
}

void bconn_ping(struct bconn *c, const char *id)
{
	bconn_sendf(c, "<iq type='get' id='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>",
		    id, c->b->o.domain);
}

static void send_header(struct bconn *c)
{
	bconn_sendf(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
		    "xmlns:stream='http://etherx.jabber.org/streams' to='%s' "
		    "version='1.0' xml:lang='en'>", c->b->o.domain);
}

/* ---------------------------------------------------------------------
 * life cycle */

static void reset_parser(struct bconn *c)
{
	c->in_len = c->scan = c->tag_start = c->elem_start = 0;
	c->depth = 0;
	c->in_tag = false;
	c->quote = 0;
	c->gen_reset = true;   /* stops a scan in progress */
}

static void fail(struct bconn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct bconn *c, const char *fmt, ...)
{
	char why[200], user[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	user_name(c->b, c->user, user, sizeof(user));
	bench_log(c->b, "%s/%s: %s", user, c->resource, why);
	bconn_die(c, why);
}

static void bconn_die(struct bconn *c, const char *why)
{
	struct bench *b = c->b;

	if (c->state == BC_DEAD)
		return;
	if (why != NULL && !c->was_online && c->goal == GOAL_LOGIN)
		b->login_failures++;
	if (why != NULL && b->first_error[0] == '\0')
		snprintf(b->first_error, sizeof(b->first_error), "%s", why);
	c->state = BC_DEAD;
	if (c->ev != NULL)
		event_del(c->ev);
	/* unlink from the live list, queue for the reaper */
	if (c->prev)
		c->prev->next = c->next;
	else
		b->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	b->nconns--;
	c->reap_next = b->reap;
	b->reap = c;
	event_active(b->reap_ev, 0, 0);
	if (!c->closed_reported) {
		c->closed_reported = true;
		if (c->ops && c->ops->closed)
			c->ops->closed(c, why);
	}
	bench_poke(b);
}

static void bconn_destroy(struct bconn *c)
{
	if (c->ev != NULL)
		event_free(c->ev);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	scram_client_free(c->scram);
	free(c->in);
	free(c->out);
	free(c);
}

void bench_reap(struct bench *b);
void bench_reap(struct bench *b)
{
	bench_flush(b);   /* the flush list may name a dead connection */
	while (b->reap != NULL) {
		struct bconn *c = b->reap;
		b->reap = c->reap_next;
		bconn_destroy(c);
	}
}

void bconn_close(struct bconn *c, bool graceful)
{
	if (c->state == BC_DEAD || c->state == BC_CLOSING)
		return;
	if (!graceful || c->state < BC_FEATURES || c->state == BC_HANDSHAKE) {
		bconn_die(c, NULL);
		return;
	}
	BCONN_SEND_LIT(c, "</stream:stream>");
	c->state = BC_CLOSING;
	c->deadline = now_ns() + CLOSE_TIMEOUT_NS;
}

void bconn_free_all(struct bench *b)
{
	while (b->conns != NULL)
		bconn_die(b->conns, NULL);
	bench_reap(b);
}

void bench_tick_conns(struct bench *b, uint64_t now)
{
	struct bconn *c = b->conns, *next;

	for (; c != NULL; c = next) {
		next = c->next;
		if (c->deadline == 0 || now < c->deadline)
			continue;
		if (c->state == BC_CLOSING)
			bconn_die(c, NULL);
		else
			fail(c, "timeout in state %s", state_names[c->state]);
	}
}

/* ---------------------------------------------------------------------
 * I/O: one edge-triggered event per socket, TLS through SSL_read and
 * SSL_write on the socket itself (read-ahead on: one read() per burst,
 * not two per record). */

static void ssl_fail(struct bconn *c, const char *what, int ret)
{
	int err = SSL_get_error(c->ssl, ret);
	unsigned long e = ERR_get_error();
	char buf[160] = "";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	if (c->state == BC_CLOSING) {
		bconn_die(c, NULL);
		return;
	}
	if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && e == 0))
		fail(c, "EOF in state %s (%s)", state_names[c->state], what);
	else
		fail(c, "TLS %s error in state %s: %s", what, state_names[c->state],
		     buf[0] ? buf : strerror(errno));
}

static void handshake(struct bconn *c)
{
	int r = SSL_do_handshake(c->ssl);

	if (r == 1) {
		c->state = BC_FEATURES_TLS;
		send_header(c);
		return;
	}
	int err = SSL_get_error(c->ssl, r);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return;
	ssl_fail(c, "handshake", r);
}

static void start_tls(struct bconn *c)
{
	c->ssl = SSL_new(c->b->ssl_ctx);
	if (c->ssl == NULL) {
		fail(c, "SSL_new failed");
		return;
	}
	SSL_set_tlsext_host_name(c->ssl, c->b->o.domain);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_connect_state(c->ssl);
	c->state = BC_HANDSHAKE;
	handshake(c);
}

static void flush(struct bconn *c)
{
	while (c->out_off < c->out_len) {
		size_t len = c->out_len - c->out_off;
		ssize_t n;

		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, c->out + c->out_off,
					  len > INT32_MAX ? INT32_MAX : (int)len);
			if (r <= 0) {
				int err = SSL_get_error(c->ssl, r);
				if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
					c->want_write = true;
					return;
				}
				ssl_fail(c, "write", r);
				return;
			}
			n = r;
		} else {
			n = write(c->fd, c->out + c->out_off, len);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR) {
					c->want_write = true;
					return;
				}
				if (c->state == BC_CLOSING)
					bconn_die(c, NULL);
				else
					fail(c, "write: %s", strerror(errno));
				return;
			}
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	c->want_write = false;
	if (c->out_cap > 65536) {   /* idle connections keep no big buffers */
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
}

static void scan_input(struct bconn *c);

/* Reads until the socket is drained (edge-triggered). */
static void do_read(struct bconn *c)
{
	for (;;) {
		ssize_t n;

		if (c->in_cap - c->in_len < 16384) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 16384 * 2;
			c->in = realloc(c->in, cap);
			if (c->in == NULL)
				abort();
			c->in_cap = cap;
		}
		if (c->ssl != NULL) {
			size_t room = c->in_cap - c->in_len;
			int r = SSL_read(c->ssl, c->in + c->in_len,
					 room > INT32_MAX ? INT32_MAX : (int)room);
			if (r <= 0) {
				int err = SSL_get_error(c->ssl, r);
				if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
					break;
				ssl_fail(c, "read", r);
				return;
			}
			n = r;
		} else {
			n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				if (c->state == BC_CLOSING)
					bconn_die(c, NULL);
				else if (n == 0)
					fail(c, "EOF in state %s", state_names[c->state]);
				else
					fail(c, "read: %s", strerror(errno));
				return;
			}
		}
		c->in_len += (size_t)n;
		scan_input(c);
		if (c->state == BC_DEAD || c->state == BC_HANDSHAKE)
			return;   /* STARTTLS: the handshake has begun */
	}
	/* an idle connection keeps no input buffer */
	if (c->in_len == 0 && c->in_cap > 0) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
	struct bconn *c = arg;

	if (c->state == BC_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			fail(c, "connect: %s", strerror(err));
			return;
		}
		if (c->direct_tls) {
			start_tls(c);
		} else {
			c->state = BC_FEATURES;
			send_header(c);
		}
		bench_poke(c->b);
		return;
	}
	if (c->state == BC_HANDSHAKE) {
		handshake(c);
		if (c->state != BC_FEATURES_TLS) {
			bench_poke(c->b);
			return;
		}
		/* fall through: the server may have spoken already */
		what |= EV_READ;
	}
	if ((what & EV_WRITE) && c->want_write) {
		c->want_write = false;
		flush(c);
	}
	if ((what & EV_READ) && c->state != BC_DEAD)
		do_read(c);
	bench_poke(c->b);
}

struct bconn *bconn_new(struct bench *b, unsigned user, const char *resource,
			enum bconn_goal goal, const struct bconn_ops *ops,
			void *ud)
{
	struct bconn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (c == NULL)
		abort();
	c->b = b;
	c->ops = ops;
	c->ud = ud;
	c->user = user;
	c->goal = goal;
	c->direct_tls = b->o.direct_tls;
	snprintf(c->resource, sizeof(c->resource), "%s", resource);
	c->fd = -1;
	c->state = BC_CONNECTING;
	c->t_start = now_ns();
	c->deadline = c->t_start + LOGIN_TIMEOUT_NS;
	c->next = b->conns;
	if (b->conns)
		b->conns->prev = c;
	b->conns = c;
	b->nconns++;
	b->conn_serial++;

	c->fd = socket(b->dst->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fail(c, "socket: %s", strerror(errno));
		return c;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (b->nsources > 0) {
		struct sockaddr_in src = { .sin_family = AF_INET };
		unsigned k = b->next_source++ % (unsigned)b->nsources;
		src.sin_addr.s_addr = htonl(0x7f000002u + k);
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			fail(c, "bind 127.0.0.%u: %s", 2 + k, strerror(errno));
			return c;
		}
	}
	if (connect(c->fd, (struct sockaddr *)b->dst, (socklen_t)b->dst_len) < 0 &&
	    errno != EINPROGRESS) {
		fail(c, "connect: %s", strerror(errno));
		return c;
	}
	c->ev = event_new(b->base, c->fd, EV_READ | EV_WRITE | EV_PERSIST | EV_ET,
			  on_io, c);
	event_add(c->ev, NULL);
	return c;
}

/* ---------------------------------------------------------------------
 * the login machine */

static void upgrade_starttls(struct bconn *c)
{
	reset_parser(c);
	start_tls(c);
}

static void send_auth(struct bconn *c, const struct stanza *st)
{
	char user[64], want[48];
	bool sha256 = strcmp(c->b->o.mech, "SCRAM-SHA-256") == 0;
	char *first;

	snprintf(want, sizeof(want), ">%s<", c->b->o.mech);
	if (memmem(st->p, st->len, want, strlen(want)) == NULL) {
		fail(c, "server does not offer %s", c->b->o.mech);
		return;
	}
	user_name(c->b, c->user, user, sizeof(user));
	c->scram = scram_client_new(c->b, sha256, user, c->b->o.password);
	first = scram_client_first(c->scram);
	bconn_sendf(c, "<auth xmlns='" NS_SASL "' mechanism='%s'>%s</auth>",
		    c->b->o.mech, first);
	free(first);
	c->state = BC_SASL_CHALLENGE;
}

static void send_register(struct bconn *c)
{
	char user[64];

	user_name(c->b, c->user, user, sizeof(user));
	bconn_sendf(c, "<iq type='set' id='reg'><query xmlns='jabber:iq:register'>"
		    "<username>%s</username><password>%s</password></query></iq>",
		    user, c->b->o.password);
	c->state = BC_REGISTER;
}

static void go_ready(struct bconn *c)
{
	if (c->presence)
		BCONN_SEND_LIT(c, "<presence/>");
	bconn_ping(c, "online");
	c->state = BC_READY_PING;
}

static bool needs_session(const struct stanza *st)
{
	const char *s = st_find(st, "session");
	const char *end = st->p + st->len;

	if (s == NULL)
		return false;
	const char *te = tag_end(s, end);
	if (te == NULL || te[-1] == '/')
		return true;   /* <session/> without <optional/> */
	const char *close = find_from(te, end, "optional");
	const char *next_end = strstr(te, "</");
	return close == NULL || (next_end != NULL && close > next_end);
}

static void handle_stanza(struct bconn *c, const struct stanza *st)
{
	char buf[512], id[64];
	const char *err;

	if (strcmp(st->name, "error") == 0) {   /* stream error */
		st_error_condition(st, buf, sizeof(buf));
		fail(c, "stream error <%s/> in state %s", buf, state_names[c->state]);
		return;
	}
	switch (c->state) {
	case BC_FEATURES:
		if (strcmp(st->name, "features") != 0)
			break;
		if (st_find(st, "starttls") == NULL) {
			fail(c, "no STARTTLS offered");
			return;
		}
		BCONN_SEND_LIT(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
		c->state = BC_PROCEED;
		return;
	case BC_PROCEED:
		if (strcmp(st->name, "proceed") == 0)
			upgrade_starttls(c);
		else
			fail(c, "STARTTLS refused (<%s/>)", st->name);
		return;
	case BC_FEATURES_TLS:
		if (strcmp(st->name, "features") != 0)
			break;
		if (c->goal == GOAL_REGISTER && st_find(st, "register") == NULL)
			fail(c, "no in-band registration (XEP-0077) offered");
		else if (c->goal == GOAL_REGISTER)
			send_register(c);
		else
			send_auth(c, st);
		return;
	case BC_SASL_CHALLENGE:
		if (strcmp(st->name, "challenge") == 0) {
			char *resp;
			if (top_text(st, buf, sizeof(buf)) < 0) {
				fail(c, "bad SASL challenge");
				return;
			}
			resp = scram_client_final(c->scram, buf, &err);
			if (resp == NULL) {
				fail(c, "SCRAM: %s", err);
				return;
			}
			bconn_sendf(c, "<response xmlns='" NS_SASL "'>%s</response>", resp);
			free(resp);
			c->state = BC_SASL_SUCCESS;
			return;
		}
		if (strcmp(st->name, "failure") == 0) {
			st_error_condition(st, buf, sizeof(buf));
			fail(c, "SASL failure <%s/>", buf);
			return;
		}
		break;
	case BC_SASL_SUCCESS:
		if (strcmp(st->name, "success") == 0 || strcmp(st->name, "challenge") == 0) {
			if (top_text(st, buf, sizeof(buf)) < 0) {
				fail(c, "bad SASL success data");
				return;
			}
			if (scram_client_verify(c->scram, buf, &err) < 0) {
				fail(c, "SCRAM: %s", err);
				return;
			}
			if (st->name[0] == 'c') {
				/* v= in a challenge, answered by an empty
				 * response (RFC 6120 6.4.6 allows it) */
				BCONN_SEND_LIT(c, "<response xmlns='" NS_SASL "'/>");
				return;
			}
			scram_client_free(c->scram);
			c->scram = NULL;
			reset_parser(c);
			c->state = BC_FEATURES_AUTH;
			send_header(c);
			return;
		}
		if (strcmp(st->name, "failure") == 0) {
			st_error_condition(st, buf, sizeof(buf));
			fail(c, "SASL failure <%s/>", buf);
			return;
		}
		break;
	case BC_FEATURES_AUTH:
		if (strcmp(st->name, "features") != 0)
			break;
		if (st_find(st, "bind") == NULL) {
			fail(c, "no resource binding offered");
			return;
		}
		c->need_session = needs_session(st);
		bconn_sendf(c, "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
			    "<resource>%s</resource></bind></iq>", c->resource);
		c->state = BC_BIND;
		return;
	case BC_BIND:
	case BC_SESSION:
		if (strcmp(st->name, "iq") != 0 || st_attr(st, "id", id, sizeof(id)) < 0 ||
		    strcmp(id, c->state == BC_BIND ? "bind" : "sess") != 0)
			break;
		st_attr(st, "type", buf, sizeof(buf));
		if (strcmp(buf, "result") != 0) {
			st_error_condition(st, buf, sizeof(buf));
			fail(c, "%s failed <%s/>", c->state == BC_BIND ? "bind" : "session", buf);
			return;
		}
		if (c->state == BC_BIND && c->need_session) {
			BCONN_SEND_LIT(c, "<iq type='set' id='sess'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
			c->state = BC_SESSION;
			return;
		}
		go_ready(c);
		return;
	case BC_READY_PING:
		if (strcmp(st->name, "iq") == 0 && st_attr(st, "id", id, sizeof(id)) > 0 &&
		    strcmp(id, "online") == 0) {
			c->state = BC_ONLINE;
			c->was_online = true;
			c->deadline = 0;
			if (c->ops->online)
				c->ops->online(c);
			return;
		}
		if (c->ops->stanza)
			c->ops->stanza(c, st);
		return;
	case BC_REGISTER:
		if (strcmp(st->name, "iq") == 0 && c->ops->stanza) {
			c->ops->stanza(c, st);
			return;
		}
		break;
	case BC_ONLINE:
	case BC_CLOSING:
		if (c->ops->stanza)
			c->ops->stanza(c, st);
		return;
	default:
		break;
	}
	/* Anything else before we are online is unexpected but harmless
	 * (e.g. a server's early presence); ignore it. */
}

/* Hands the element [s, e) to the login machine. Returns false to stop
 * scanning (the stream was reset or the connection died). */
static bool emit(struct bconn *c, size_t s, size_t e)
{
	struct stanza st;
	const char *q, *ne, *end;
	size_t n;

	st.p = c->in + s;
	st.len = e - s;
	end = st.p + st.len;
	q = ne = st.p + 1;
	while (ne < end && !is_space(*ne) && *ne != '>' && *ne != '/')
		ne++;
	for (const char *k = q; k < ne; k++)
		if (*k == ':')
			q = k + 1;
	n = (size_t)(ne - q);
	if (n >= sizeof(st.name))
		n = sizeof(st.name) - 1;
	memcpy(st.name, q, n);
	st.name[n] = '\0';
	if (c->b->o.verbose > 1)
		fprintf(stderr, "roost-bench: %u/%s << %.*s\n", c->user, c->resource,
			(int)st.len, st.p);
	c->gen_reset = false;
	handle_stanza(c, &st);
	return c->state != BC_DEAD && !c->gen_reset;
}

/* A complete tag [s, e) was scanned. Returns false to stop scanning. */
static bool handle_tag(struct bconn *c, size_t s, size_t e)
{
	const char *in = c->in;

	if (in[s + 1] == '?' || in[s + 1] == '!')
		return true;
	if (in[s + 1] == '/') {
		if (c->depth == 2) {
			c->depth = 1;
			return emit(c, c->elem_start, e);
		}
		if (c->depth == 1) {
			c->depth = 0;
			if (c->state == BC_CLOSING)
				bconn_die(c, NULL);
			else
				fail(c, "server closed the stream in state %s",
				     state_names[c->state]);
			return false;
		}
		if (c->depth > 0)
			c->depth--;
		return true;
	}
	bool selfclose = in[e - 2] == '/';
	if (c->depth == 0) {
		c->depth = 1;   /* the stream header */
		return true;
	}
	if (c->depth == 1) {
		c->elem_start = s;
		if (selfclose)
			return emit(c, s, e);
		c->depth = 2;
		return true;
	}
	if (!selfclose)
		c->depth++;
	return true;
}

static void scan_input(struct bconn *c)
{
	size_t i = c->scan;

	while (i < c->in_len) {
		if (!c->in_tag) {
			char *lt = memchr(c->in + i, '<', c->in_len - i);
			if (lt == NULL) {
				i = c->in_len;
				break;
			}
			i = (size_t)(lt - c->in);
			c->tag_start = i++;
			c->in_tag = true;
			c->quote = 0;
			continue;
		}
		char q = c->quote;
		for (; i < c->in_len; i++) {
			char ch = c->in[i];
			if (q) {
				if (ch == q)
					q = 0;
			} else if (ch == '\'' || ch == '"') {
				q = ch;
			} else if (ch == '>') {
				break;
			}
		}
		c->quote = q;
		if (i == c->in_len)
			break;
		c->in_tag = false;
		i++;
		if (!handle_tag(c, c->tag_start, i))
			return;   /* reset or dead: the buffer is no longer ours */
	}
	c->scan = i;
	/* keep only the unfinished element */
	size_t keep = c->depth >= 2 ? c->elem_start : c->in_tag ? c->tag_start : c->scan;
	if (keep > 0) {
		memmove(c->in, c->in + keep, c->in_len - keep);
		c->in_len -= keep;
		c->scan -= keep;
		if (c->tag_start >= keep)
			c->tag_start -= keep;
		if (c->elem_start >= keep)
			c->elem_start -= keep;
	}
	if (c->in_len > BENCH_MAX_STANZA)
		fail(c, "stanza over %u bytes", BENCH_MAX_STANZA);
}

/* Adds "pending=state:n,..." for connections that are neither online nor
 * gone: what a scenario that timed out was waiting for. */
void bench_pending_states(struct bench *b)
{
	unsigned n[BC_DEAD + 1] = { 0 };
	char buf[256];
	size_t len = 0;

	for (struct bconn *c = b->conns; c != NULL; c = c->next)
		if (c->state != BC_ONLINE)
			n[c->state]++;
	for (int i = 0; i <= BC_DEAD; i++)
		if (n[i] != 0 && len < sizeof(buf) - 40)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s:%u",
						len ? "," : "", state_names[i], n[i]);
	if (len > 0)
		sum_kv(b, "pending", "%s", buf);
}

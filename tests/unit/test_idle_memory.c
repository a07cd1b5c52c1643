/* What an idle connection keeps (issue 5): the XML parser lets go of
 * expat between stanzas, and a TLS 1.3 connection moves its record layer
 * out of OpenSSL (conn_tls_compact). The TLS tests drive a real
 * connection (src/net/conn.c, src/net/tls.c) on a socketpair against an
 * OpenSSL client in a thread: every byte the client reads back was
 * protected by whichever side holds the records at that moment. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "net/conn.h"
#include "net/tls.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/hashmap.h"
#include "xml/xml.h"
#include "xml/xml_parser.h"
#include "xml/xml_writer.h"

/* ---- the XML parser between stanzas ---------------------------------- */

#define STREAMS "http://etherx.jabber.org/streams"
#define HDR "<stream:stream xmlns='jabber:client' xmlns:stream='" STREAMS \
	"' to='example.com' version='1.0'>"
/* Expat's own state alone is several KiB; an idle parser holds less than
 * this. */
#define IDLE_MAX 1024

struct events {
	struct xml_parser *p;
	struct buf log;
	int opens, stanzas, closes, errors;
	char cond[64];
};

static void ev_open(void *ctx, const struct xml_node *hdr, const char *ns)
{
	struct events *ev = ctx;

	ev->opens++;
	buf_appendf(&ev->log, "open %s\n", ns);
}

static void ev_stanza(void *ctx, struct xml_node *st)
{
	struct events *ev = ctx;

	ev->stanzas++;
	buf_appendf(&ev->log, "stanza {%s}%s ", st->ns, st->name);
	xml_serialize(&ev->log, st, XML_NS_CLIENT);
	buf_append_str(&ev->log, "\n");
	for (struct xml_node *c = st->children; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT)
			buf_appendf(&ev->log, "  child {%s}%s\n", c->ns, c->name);
	xml_free(st);
}

static void ev_close(void *ctx)
{
	struct events *ev = ctx;

	ev->closes++;
	buf_append_str(&ev->log, "close\n");
}

static void ev_error(void *ctx, const char *cond, const char *text)
{
	struct events *ev = ctx;

	ev->errors++;
	snprintf(ev->cond, sizeof(ev->cond), "%s", cond);
	buf_appendf(&ev->log, "error %s\n", cond);
}

static const struct xml_parser_callbacks callbacks = {
	ev_open, ev_stanza, ev_close, ev_error,
};

static void ev_init(struct events *ev, size_t max_stanza)
{
	struct xml_parser_limits lim = { max_stanza, 16, 16 };

	memset(ev, 0, sizeof(*ev));
	ev->p = xml_parser_new(&lim, &callbacks, ev);
}

static void ev_done(struct events *ev)
{
	xml_parser_free(ev->p);
	buf_free(&ev->log);
}

static int feed(struct events *ev, const char *s)
{
	return xml_parser_feed(ev->p, s, strlen(s));
}

/* Feeds `s` in pieces of `step` bytes (0: at once). */
static int feed_steps(struct events *ev, const char *s, size_t step)
{
	size_t len = strlen(s);
	int rc = 0;

	if (step == 0)
		step = len;
	for (size_t i = 0; i < len && rc == 0; i += step)
		rc = xml_parser_feed(ev->p, s + i,
				     len - i < step ? len - i : step);
	return rc;
}

static void test_parser_idles_after_stanza(void **state)
{
	struct events ev;
	size_t busy;

	ev_init(&ev, 0);
	assert_int_equal(feed(&ev, HDR), 0);
	/* A header fed on its own keeps expat: a stanza is coming. */
	busy = xml_parser_memory(ev.p);
	assert_true(busy > IDLE_MAX);
	assert_int_equal(feed(&ev, "<presence/>"), 0);
	assert_true(xml_parser_memory(ev.p) < IDLE_MAX);
	/* Half a stanza needs the parser back; the whole one lets it go. */
	assert_int_equal(feed(&ev, "<message to='a@b'><body>hi"), 0);
	assert_true(xml_parser_memory(ev.p) > IDLE_MAX);
	assert_int_equal(feed(&ev, "</body></message>\n"), 0);
	assert_true(xml_parser_memory(ev.p) < IDLE_MAX);
	/* Keepalives do not bring it back. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(feed(&ev, " \n"), 0);
	assert_true(xml_parser_memory(ev.p) < IDLE_MAX);
	assert_int_equal(feed(&ev, "</stream:stream>"), 0);
	assert_int_equal(ev.stanzas, 2);
	assert_int_equal(ev.closes, 1);
	assert_int_equal(ev.errors, 0);
	ev_done(&ev);
}

/* The replayed header carries the peer's own prefixes: its root prefix
 * (the end tag must match) and a prefix the stanzas use. */
static const char prefixed[] =
	"<?xml version='1.0'?>"
	"<s:stream xmlns:s='" STREAMS "' xmlns='jabber:client'"
	" xmlns:x='urn:example:x&amp;&#9;y' to='example.com' version='1.0'>"
	"<x:ping id='1'/>\n"
	"<iq type='get' id='2'><x:q a='1'/></iq>"
	"<s:features/>"
	"<message id='3'><body>a &amp; b</body></message>"
	"</s:stream>";

static const char prefixed_log[] =
	"open jabber:client\n"
	"stanza {urn:example:x&\ty}ping <ping xmlns='urn:example:x&amp;&#9;y' id='1'/>\n"
	"stanza {jabber:client}iq <iq type='get' id='2'><q xmlns='urn:example:x&amp;&#9;y' a='1'/></iq>\n"
	"  child {urn:example:x&\ty}q\n"
	"stanza {" STREAMS "}features <stream:features/>\n"
	"stanza {jabber:client}message <message id='3'><body>a &amp; b</body></message>\n"
	"  child {jabber:client}body\n"
	"close\n";

static void test_parser_replay_keeps_namespaces(void **state)
{
	/* Byte by byte the parser idles between every stanza and after
	 * the keepalive; at once it never does. Same result either way. */
	for (size_t step = 0; step <= 3; step++) {
		struct events ev;

		ev_init(&ev, 0);
		assert_int_equal(feed_steps(&ev, prefixed, step), 0);
		assert_string_equal(ev.log.data, prefixed_log);
		ev_done(&ev);
	}
}

/* max_stanza_bytes counts the same whether or not expat was remade
 * between stanzas. */
static void test_parser_size_cap_after_idle(void **state)
{
	/* Longer than the header, which counts against the cap too. */
	const char *st = "<message><body>"
		"0123456789012345678901234567890123456789"
		"0123456789012345678901234567890123456789"
		"0123456789012345678901234567890123456789"
		"</body></message>";
	size_t n = strlen(st);

	for (int over = 0; over <= 1; over++) {
		struct events ev;

		ev_init(&ev, n - (size_t)over);
		assert_int_equal(feed(&ev, HDR), 0);
		assert_int_equal(feed(&ev, "<presence/>"), 0);
		assert_true(xml_parser_memory(ev.p) < IDLE_MAX);
		assert_int_equal(feed(&ev, "   "), 0);
		assert_int_equal(feed_steps(&ev, st, 7), over ? -1 : 0);
		assert_int_equal(ev.stanzas, over ? 1 : 2);
		if (over)
			assert_string_equal(ev.cond, "policy-violation");
		ev_done(&ev);
	}
}

static void test_parser_errors_after_idle(void **state)
{
	struct events ev;

	ev_init(&ev, 0);
	assert_int_equal(feed(&ev, HDR "<presence/>"), 0);
	assert_int_equal(feed(&ev, "hello"), -1);
	assert_string_equal(ev.cond, "bad-format");
	ev_done(&ev);

	ev_init(&ev, 0);
	assert_int_equal(feed(&ev, HDR "<presence/>"), 0);
	assert_int_equal(feed(&ev, "<a></b>"), -1);
	assert_string_equal(ev.cond, "not-well-formed");
	ev_done(&ev);

	ev_init(&ev, 0);
	assert_int_equal(feed(&ev, HDR "<presence/>"), 0);
	assert_int_equal(feed(&ev, "<!-- c -->"), -1);
	assert_string_equal(ev.cond, "restricted-xml");
	ev_done(&ev);

	/* An undeclared prefix stays undeclared in the replay. */
	ev_init(&ev, 0);
	assert_int_equal(feed(&ev, HDR "<presence/>"), 0);
	assert_int_equal(feed(&ev, "<y:a/>"), -1);
	assert_string_equal(ev.cond, "not-well-formed");
	ev_done(&ev);
}

static void test_parser_reset_while_idle(void **state)
{
	struct events ev;

	ev_init(&ev, 0);
	assert_int_equal(feed(&ev, HDR "<presence/>"), 0);
	assert_true(xml_parser_memory(ev.p) < IDLE_MAX);
	xml_parser_reset(ev.p);
	assert_int_equal(feed(&ev, "<stream:stream xmlns='jabber:server' "
			       "xmlns:stream='" STREAMS "'><presence/>"), 0);
	assert_int_equal(ev.opens, 2);
	assert_int_equal(ev.stanzas, 2);
	assert_int_equal(ev.errors, 0);
	/* Stanzas of a jabber:server stream are not jabber:client ones. */
	assert_non_null(strstr(ev.log.data, "open jabber:server\n"));
	ev_done(&ev);
}

/* Expat keeps every distinct element and attribute name of its stream;
 * remade between stanzas it keeps one stanza's worth. */
static void test_parser_names_do_not_pile_up(void **state)
{
	struct events ev;
	char st[128];

	ev_init(&ev, 0);
	assert_int_equal(feed(&ev, HDR), 0);
	for (int i = 0; i < 20000; i++) {
		snprintf(st, sizeof(st), "<iq id='%d'><q%d xmlns='urn:%d' a%d='x'/></iq>",
			 i, i, i, i);
		assert_int_equal(feed(&ev, st), 0);
		assert_true(xml_parser_memory(ev.p) < IDLE_MAX);
	}
	assert_int_equal(ev.stanzas, 20000);
	ev_done(&ev);
}

/* ---- small things kept for long --------------------------------------- */

/* A stanza kept for a session's life (its presence) is usually a hundred
 * bytes or two: its arena should be about that, and a big tree still
 * takes few blocks. */
static void test_arena_sized_to_use(void **state)
{
	struct arena *a = arena_new(0);
	size_t used = 0;

	arena_alloc(a, 150);
	assert_true(arena_size(a) <= 400);
	for (int i = 0; i < 1000; i++) {
		arena_alloc(a, 100);
		used += 100;
	}
	assert_true(arena_size(a) < 2 * used);
	arena_free(a);
	/* An explicit block size is kept as it is. */
	a = arena_new(1024);
	arena_alloc(a, 10);
	assert_true(arena_size(a) >= 1024);
	arena_free(a);
}

/* A map that empties gives its slots back and works on. */
static void test_hashmap_empty_and_again(void **state)
{
	struct hashmap *m = hashmap_new();
	char key[16], copy[16];
	const char *k;
	size_t pos = 0;
	int v = 1;

	assert_null(hashmap_get(m, "a"));
	assert_null(hashmap_remove(m, "a"));
	assert_int_equal(hashmap_next(m, &pos, NULL, NULL), 0);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 100; i++) {
			snprintf(key, sizeof(key), "k%d", i);
			assert_null(hashmap_put(m, key, &v));
		}
		assert_int_equal(hashmap_count(m), 100);
		/* Removing while iterating, down to empty. */
		for (pos = 0; hashmap_next(m, &pos, &k, NULL);) {
			snprintf(copy, sizeof(copy), "%s", k);
			assert_ptr_equal(hashmap_remove(m, copy), &v);
		}
		assert_int_equal(hashmap_count(m), 0);
		assert_null(hashmap_get(m, "k1"));
	}
	hashmap_free(m);
}

/* ---- TLS: the record layer moves out of OpenSSL --------------------- */

struct pki {
	char dir[64], crt[96], key[96];
};

static void make_pki(struct pki *k)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	FILE *f;

	assert_non_null(pkey);
	strcpy(k->dir, "/tmp/roost-idle-XXXXXX");
	assert_non_null(mkdtemp(k->dir));
	snprintf(k->crt, sizeof(k->crt), "%s/c.crt", k->dir);
	snprintf(k->key, sizeof(k->key), "%s/c.key", k->dir);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pkey);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, name);
	assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
	f = fopen(k->crt, "w");
	assert_non_null(f);
	PEM_write_X509(f, x);
	fclose(f);
	f = fopen(k->key, "w");
	assert_non_null(f);
	fchmod(fileno(f), 0600);
	PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pkey);
}

static void free_pki(struct pki *k)
{
	unlink(k->crt);
	unlink(k->key);
	rmdir(k->dir);
}

enum client_end {
	END_CLOSE_NOTIFY,	/* SSL_shutdown */
	END_GARBAGE,		/* a forged record after the takeover */
};

struct scenario {
	int max_version;	/* client's highest TLS version */
	const char *suites;	/* TLS 1.3 suites the client offers */
	bool starttls;		/* plain first, then STARTTLS */
	uint8_t mfl;		/* max_fragment_length the client asks */
	bool update_first;	/* a key update before the takeover */
	bool expect_rec;	/* the server takes the records over */
	enum client_end end;
};

struct server {
	struct event_base *base;
	struct tls *tls;
	struct conn *c;
	bool compact_asked;
	bool tls_on;
	char why[64];
	size_t bytes_echoed;
};

struct client {
	const struct scenario *sc;
	int fd;
	bool ok;
	char failure[160];
	unsigned status_polls;
};

static void srv_reply(struct server *s, const char *text)
{
	conn_write(s->c, text, strlen(text));
}

static void srv_read(void *ctx)
{
	struct server *s = ctx;
	struct evbuffer *in = conn_input(s->c);
	size_t n = evbuffer_get_length(in);
	char *data = malloc(n + 1);

	evbuffer_remove(in, data, n);
	data[n] = '\0';
	if (!s->tls_on && strcmp(data, "STARTTLS\n") == 0) {
		srv_reply(s, "OK\n");
		assert_int_equal(conn_starttls(s->c, tls_new_ssl(s->tls, NULL)), 0);
		s->tls_on = true;
	} else if (strcmp(data, "STATUS") == 0) {
		srv_reply(s, s->c->rec != NULL ? "REC" : "SSL");
	} else if (strcmp(data, "ROTATE") == 0 && s->c->rec != NULL) {
		tls_rec_update_write_key(s->c->rec,
					 bufferevent_get_output(s->c->bev));
		srv_reply(s, "ROTATED");
	} else {
		conn_write(s->c, data, n);
		s->bytes_echoed += n;
		if (!s->compact_asked) {
			/* As c2s does once SASL is over. */
			conn_tls_compact(s->c);
			s->compact_asked = true;
		}
	}
	free(data);
}

static void srv_error(void *ctx, const char *why)
{
	struct server *s = ctx;

	snprintf(s->why, sizeof(s->why), "%s", why);
	event_base_loopbreak(s->base);
}

static void srv_nothing(void *ctx)
{
}

static const struct conn_ops srv_ops = {
	.read = srv_read,
	.flushed = srv_nothing,
	.error = srv_error,
	.drained = srv_nothing,
};

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		snprintf(cl->failure, sizeof(cl->failure), __VA_ARGS__); \
		goto out; \
	} \
} while (0)

static bool read_exact(SSL *ssl, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		int n = SSL_read(ssl, (char *)buf + got, (int)(len - got));
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* Sends `len` bytes and expects the same back. */
static bool echo(SSL *ssl, const void *data, size_t len)
{
	unsigned char *back = malloc(len);
	bool ok = SSL_write(ssl, data, (int)len) == (int)len &&
	    read_exact(ssl, back, len) && memcmp(back, data, len) == 0;

	free(back);
	return ok;
}

static bool command(SSL *ssl, const char *cmd, const char *want)
{
	char got[16] = "";

	return SSL_write(ssl, cmd, (int)strlen(cmd)) == (int)strlen(cmd) &&
	    read_exact(ssl, got, strlen(want)) &&
	    memcmp(got, want, strlen(want)) == 0;
}

/* Counts the KeyUpdate messages the client receives. */
static void client_msg(int write_p, int version, int type, const void *buf,
		       size_t len, SSL *ssl, void *arg)
{
	unsigned *updates = arg;

	if (!write_p && type == SSL3_RT_HANDSHAKE && len > 0 &&
	    ((const unsigned char *)buf)[0] == 24)
		(*updates)++;
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	const struct scenario *sc = cl->sc;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = NULL;
	unsigned char big[100000];
	char line[4] = "";
	unsigned updates = 0;

	if (sc->starttls) {
		CHECK(write(cl->fd, "STARTTLS\n", 9) == 9, "write STARTTLS");
		CHECK(read(cl->fd, line, 3) == 3 && memcmp(line, "OK\n", 3) == 0,
		      "no OK to STARTTLS");
	}
	SSL_CTX_set_max_proto_version(ctx, sc->max_version);
	if (sc->suites != NULL)
		SSL_CTX_set_ciphersuites(ctx, sc->suites);
	ssl = SSL_new(ctx);
	if (sc->mfl)
		SSL_set_tlsext_max_fragment_length(ssl, sc->mfl);
	SSL_set_fd(ssl, cl->fd);
	SSL_set_msg_callback(ssl, client_msg);
	SSL_set_msg_callback_arg(ssl, &updates);
	CHECK(SSL_connect(ssl) == 1, "handshake failed");
	if (sc->update_first)
		CHECK(SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) == 1,
		      "key update");
	CHECK(echo(ssl, "hello", 5), "first echo");
	/* The takeover waits for a quiet moment; ask until it is done. */
	for (;;) {
		char st[4] = "";

		cl->status_polls++;
		CHECK(SSL_write(ssl, "STATUS", 6) == 6 && read_exact(ssl, st, 3),
		      "STATUS");
		if (memcmp(st, "REC", 3) == 0 || !sc->expect_rec ||
		    cl->status_polls > 200)
			break;
		usleep(1000);
	}
	CHECK(echo(ssl, "world", 5), "echo after the takeover");
	if (sc->max_version == TLS1_3_VERSION) {
		/* A requested key update is answered with one. */
		CHECK(SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) == 1,
		      "key update");
		updates = 0;
		CHECK(echo(ssl, "after update 1", 14),
		      "echo after a requested update");
		CHECK(updates == 1, "%u key updates in reply", updates);
		CHECK(SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED) == 1,
		      "key update");
		CHECK(echo(ssl, "after update 2", 14), "echo after an update");
		CHECK(updates == 1, "%u key updates in reply", updates);
	}
	if (sc->expect_rec) {
		CHECK(command(ssl, "ROTATE", "ROTATED"), "server key update");
		CHECK(updates == 2, "%u key updates", updates);
	}
	RAND_bytes(big, sizeof(big));
	CHECK(echo(ssl, big, sizeof(big)), "100 kB echo");
	CHECK(echo(ssl, "last", 4), "last echo");
	if (sc->end == END_GARBAGE) {
		/* application_data, 32 bytes that no key made. */
		unsigned char forged[5 + 32] = { 23, 3, 3, 0, 32 };

		RAND_bytes(forged + 5, 32);
		CHECK(write(cl->fd, forged, sizeof(forged)) ==
		      (ssize_t)sizeof(forged), "write forged record");
	} else {
		SSL_shutdown(ssl);
	}
	cl->ok = true;
out:
	if (!cl->ok)
		ERR_print_errors_fp(stderr);
	/* Wait for the server to hang up, then go. */
	shutdown(cl->fd, SHUT_WR);
	while (read(cl->fd, line, sizeof(line)) > 0)
		;
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return NULL;
}

static void run_scenario(const struct scenario *sc)
{
	struct config_vhost vh = { (char *)"localhost", NULL, NULL };
	struct config cfg;
	struct server s;
	struct client cl;
	struct pki pki;
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	pthread_t th;
	char *error = NULL;
	int sv[2];

	make_pki(&pki);
	vh.certificate = pki.crt;
	vh.key = pki.key;
	memset(&cfg, 0, sizeof(cfg));
	cfg.vhosts = &vh;
	cfg.nvhosts = 1;
	memset(&s, 0, sizeof(s));
	memset(&cl, 0, sizeof(cl));
	s.base = event_base_new();
	s.tls = tls_new(&cfg, &error);
	assert_non_null(s.tls);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s.tls_on = !sc->starttls;
	s.c = conn_new(s.base, sv[0], (struct sockaddr *)&un, sizeof(un),
		       sc->starttls ? NULL : tls_new_ssl(s.tls, NULL),
		       &srv_ops, &s);
	cl.sc = sc;
	cl.fd = sv[1];
	assert_int_equal(pthread_create(&th, NULL, client_main, &cl), 0);
	event_base_dispatch(s.base);
	if (cl.failure[0] != '\0')
		fail_msg("client: %s (server: %s)", cl.failure, s.why);
	assert_int_equal(s.c->rec != NULL, sc->expect_rec);
	assert_int_equal(s.c->ssl == NULL, sc->expect_rec);
	assert_string_equal(s.why, sc->end == END_GARBAGE ? "TLS error"
							  : "connection closed");
	conn_free(s.c);
	/* Bufferevents close their sockets from the loop. */
	event_base_loop(s.base, EVLOOP_NONBLOCK);
	pthread_join(th, NULL);
	close(sv[1]);
	assert_true(cl.ok);
	assert_true(s.bytes_echoed >= 100000);
	tls_free(s.tls);
	event_base_free(s.base);
	free_pki(&pki);
}

static void test_tls13_aes128(void **state)
{
	struct scenario sc = { .max_version = TLS1_3_VERSION,
			       .suites = "TLS_AES_128_GCM_SHA256",
			       .expect_rec = true };
	run_scenario(&sc);
}

static void test_tls13_aes256(void **state)
{
	struct scenario sc = { .max_version = TLS1_3_VERSION,
			       .suites = "TLS_AES_256_GCM_SHA384",
			       .expect_rec = true };
	run_scenario(&sc);
}

static void test_tls13_chacha(void **state)
{
	struct scenario sc = { .max_version = TLS1_3_VERSION,
			       .suites = "TLS_CHACHA20_POLY1305_SHA256",
			       .expect_rec = true };
	run_scenario(&sc);
}

static void test_tls13_starttls(void **state)
{
	struct scenario sc = { .max_version = TLS1_3_VERSION,
			       .starttls = true, .expect_rec = true };
	run_scenario(&sc);
}

/* The client reads records no longer than it asked for (RFC 6066). */
static void test_tls13_max_fragment(void **state)
{
	struct scenario sc = { .max_version = TLS1_3_VERSION,
			       .mfl = TLSEXT_max_fragment_length_512,
			       .expect_rec = true };
	run_scenario(&sc);
}

static void test_tls13_forged_record(void **state)
{
	struct scenario sc = { .max_version = TLS1_3_VERSION,
			       .starttls = true, .expect_rec = true,
			       .end = END_GARBAGE };
	run_scenario(&sc);
}

/* TLS 1.2 keeps OpenSSL (and the same behaviour). */
static void test_tls12_keeps_openssl(void **state)
{
	struct scenario sc = { .max_version = TLS1_2_VERSION };
	run_scenario(&sc);
}

/* A key update that OpenSSL saw moved the keys on: it keeps them. */
static void test_tls13_update_before_takeover(void **state)
{
	struct scenario sc = { .max_version = TLS1_3_VERSION,
			       .update_first = true };
	run_scenario(&sc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parser_idles_after_stanza),
		cmocka_unit_test(test_parser_replay_keeps_namespaces),
		cmocka_unit_test(test_parser_size_cap_after_idle),
		cmocka_unit_test(test_parser_errors_after_idle),
		cmocka_unit_test(test_parser_reset_while_idle),
		cmocka_unit_test(test_parser_names_do_not_pile_up),
		cmocka_unit_test(test_arena_sized_to_use),
		cmocka_unit_test(test_hashmap_empty_and_again),
		cmocka_unit_test(test_tls13_aes128),
		cmocka_unit_test(test_tls13_aes256),
		cmocka_unit_test(test_tls13_chacha),
		cmocka_unit_test(test_tls13_starttls),
		cmocka_unit_test(test_tls13_max_fragment),
		cmocka_unit_test(test_tls13_forged_record),
		cmocka_unit_test(test_tls12_keeps_openssl),
		cmocka_unit_test(test_tls13_update_before_takeover),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

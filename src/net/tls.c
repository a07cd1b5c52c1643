#include "net/tls.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>

#include "config.h"
#include "util/log.h"
#include "util/xalloc.h"

struct tls_vhost {
	char *domain;
	SSL_CTX *ctx;
};

struct tls {
	struct tls_vhost *vhosts;
	size_t nvhosts;
};

static char *ssl_error_string(void)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return xstrdup(buf);
}

/* SNI: switch to the vhost's context before the certificate is sent. */
static int sni_callback(SSL *ssl, int *alert, void *arg)
{
	struct tls *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	if (name == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	for (size_t i = 0; i < t->nvhosts; i++)
		if (strcasecmp(t->vhosts[i].domain, name) == 0) {
			SSL_set_SSL_CTX(ssl, t->vhosts[i].ctx);
			return SSL_TLSEXT_ERR_OK;
		}
	/* An unknown name still gets the default certificate; the stream
	 * header's 'to' is what decides (host-unknown). */
	return SSL_TLSEXT_ERR_NOACK;
}

/* XEP-0368 §3: direct TLS clients may offer ALPN "xmpp-client"; agree to
 * it, and carry on without ALPN for clients that offer something else. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = "\x0bxmpp-client";

	if (SSL_select_next_proto((unsigned char **)out, outlen, ours,
				  sizeof(ours) - 1, in, inlen) == OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_OK;
	return SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *make_ctx(struct tls *t, const struct config_vhost *vh,
			 char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	struct stat st;

	if (ctx == NULL) {
		*error_r = ssl_error_string();
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Idle connections keep no read/write buffers (issue 5's memory
	 * budget); compression is a known attack (CRIME). */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, vh->certificate) != 1) {
		char *e = ssl_error_string();
		*error_r = xasprintf("%s: cannot load certificate: %s",
				     vh->certificate, e);
		free(e);
		goto fail;
	}
	if (stat(vh->key, &st) == 0 && (st.st_mode & (S_IROTH | S_IWOTH))) {
		/* Like the seal key: a private key anyone on the machine
		 * can read (or replace) is not private. Group access is
		 * allowed for Debian's ssl-cert group (mode 0640). */
		*error_r = xasprintf("%s: refusing a private key that others "
				     "can read or write (mode %03o): chmod o-rw",
				     vh->key, (unsigned)(st.st_mode & 0777));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, vh->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		char *e = ssl_error_string();
		*error_r = xasprintf("%s: cannot load key: %s", vh->key, e);
		free(e);
		goto fail;
	}
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_callback);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls *tls_new(const struct config *cfg, char **error_r)
{
	struct tls *t = xcalloc(1, sizeof(*t));

	t->vhosts = xcalloc(cfg->nvhosts, sizeof(*t->vhosts));
	for (size_t i = 0; i < cfg->nvhosts; i++) {
		SSL_CTX *ctx = make_ctx(t, &cfg->vhosts[i], error_r);
		if (ctx == NULL) {
			tls_free(t);
			return NULL;
		}
		t->vhosts[i].domain = xstrdup(cfg->vhosts[i].domain);
		t->vhosts[i].ctx = ctx;
		t->nvhosts++;
	}
	return t;
}

void tls_free(struct tls *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nvhosts; i++) {
		SSL_CTX_free(t->vhosts[i].ctx);
		free(t->vhosts[i].domain);
	}
	free(t->vhosts);
	free(t);
}

SSL *tls_new_ssl(struct tls *t, const char *domain)
{
	SSL_CTX *ctx = t->vhosts[0].ctx;

	if (domain != NULL)
		for (size_t i = 0; i < t->nvhosts; i++)
			if (strcmp(t->vhosts[i].domain, domain) == 0)
				ctx = t->vhosts[i].ctx;
	return SSL_new(ctx);
}

size_t tls_channel_binding(SSL *ssl, const char *type, unsigned char *out)
{
	static const char exporter_label[] = "EXPORTER-Channel-Binding";
	int version = SSL_version(ssl);

	if (strcmp(type, "tls-exporter") == 0) {
		if (version < TLS1_3_VERSION)
			return 0;
		/* RFC 9266 §2: 32 bytes, empty context. */
		if (SSL_export_keying_material(ssl, out, 32, exporter_label,
					       sizeof(exporter_label) - 1,
					       NULL, 0, 0) != 1)
			return 0;
		return 32;
	}
	if (strcmp(type, "tls-unique") == 0) {
		/* RFC 5929 §3.1: the first Finished message of the latest
		 * handshake: the client's in a full handshake, ours in an
		 * abbreviated one. */
		if (SSL_session_reused(ssl))
			return SSL_get_finished(ssl, out, TLS_CB_MAX);
		return SSL_get_peer_finished(ssl, out, TLS_CB_MAX);
	}
	return 0;
}

const char *const *tls_channel_binding_types(SSL *ssl)
{
	static const char *const tls13[] = { "tls-exporter", "tls-unique", NULL };
	static const char *const tls12[] = { "tls-unique", NULL };

	return SSL_version(ssl) >= TLS1_3_VERSION ? tls13 : tls12;
}

#include "net/tls.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

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

/* ---- what a record layer handover needs from the handshake ----------- */

/* Kept per SSL from tls_new_ssl() until the SSL is freed: the application
 * traffic secrets, which OpenSSL gives out only through its key log
 * callback, and the records that went each way since the handshake
 * finished: the sequence numbers of the next ones. */
struct tls_track {
	uint64_t rseq, wseq;
	bool done;		/* the handshake finished */
	bool moved_on;		/* something after it (a key update, an alert)
				 * that this bookkeeping does not follow */
	size_t clen, slen;
	unsigned char csecret[EVP_MAX_MD_SIZE], ssecret[EVP_MAX_MD_SIZE];
};

/* The SSL ex_data slot of struct tls_track. OpenSSL's slot registry is
 * process-wide, so is this: set once by the first tls_new(), then only
 * read. */
static int track_idx = -1;

static void track_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
		       long argl, void *argp)
{
	if (ptr != NULL) {
		OPENSSL_cleanse(ptr, sizeof(struct tls_track));
		free(ptr);
	}
}

static struct tls_track *track_of(const SSL *ssl)
{
	return SSL_get_ex_data(ssl, track_idx);
}

static void track_info(const SSL *ssl, int where, int ret)
{
	struct tls_track *t = track_of(ssl);

	if (!(where & SSL_CB_HANDSHAKE_DONE) || t == NULL)
		return;
	if (t->done)
		t->moved_on = true;
	t->done = true;
	t->rseq = t->wseq = 0;
}

/* Every record header in either direction is reported here, as is every
 * handshake message and alert. */
static void track_msg(int write_p, int version, int content_type,
		      const void *buf, size_t len, SSL *ssl, void *arg)
{
	struct tls_track *t = arg;

	if (!t->done)
		return;
	if (content_type == SSL3_RT_HEADER) {
		if (write_p)
			t->wseq++;
		else
			t->rseq++;
	} else if (content_type == SSL3_RT_HANDSHAKE ||
		   content_type == SSL3_RT_ALERT ||
		   content_type == SSL3_RT_CHANGE_CIPHER_SPEC) {
		t->moved_on = true;
	}
}

/* "LABEL <client random> <secret>" in hex (the NSS key log format). */
static void track_keylog(const SSL *ssl, const char *line)
{
	static const char client[] = "CLIENT_TRAFFIC_SECRET_0 ";
	static const char server[] = "SERVER_TRAFFIC_SECRET_0 ";
	struct tls_track *t = track_of(ssl);
	unsigned char *secret;
	size_t *len_r;
	const char *hex;

	if (t == NULL)
		return;
	if (strncmp(line, client, sizeof(client) - 1) == 0) {
		secret = t->csecret;
		len_r = &t->clen;
	} else if (strncmp(line, server, sizeof(server) - 1) == 0) {
		secret = t->ssecret;
		len_r = &t->slen;
	} else {
		return;
	}
	hex = strchr(line + sizeof(client) - 1, ' ');
	if (hex == NULL || OPENSSL_hexstr2buf_ex(secret, EVP_MAX_MD_SIZE,
						 len_r, hex + 1, '\0') != 1)
		*len_r = 0;
}

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
	SSL_CTX_set_keylog_callback(ctx, track_keylog);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_callback);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls *tls_new(const struct config *cfg, char **error_r)
{
	struct tls *t;

	if (track_idx < 0)
		track_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, track_free);
	if (track_idx < 0) {
		*error_r = ssl_error_string();
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
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
	struct tls_track *track;
	SSL *ssl;

	if (domain != NULL)
		for (size_t i = 0; i < t->nvhosts; i++)
			if (strcmp(t->vhosts[i].domain, domain) == 0)
				ctx = t->vhosts[i].ctx;
	ssl = SSL_new(ctx);
	if (ssl == NULL)
		return NULL;
	track = xcalloc(1, sizeof(*track));
	if (SSL_set_ex_data(ssl, track_idx, track) != 1) {
		free(track);
		SSL_free(ssl);
		return NULL;
	}
	/* Per SSL, not per context: SNI may switch the context. */
	SSL_set_msg_callback(ssl, track_msg);
	SSL_set_msg_callback_arg(ssl, track);
	SSL_set_info_callback(ssl, track_info);
	return ssl;
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

/* ---- the TLS 1.3 record layer (RFC 8446 §5) ---------------------------- */

#define REC_HEADER 5
#define REC_TAG 16
#define REC_IV 12
#define REC_MAX_PLAIN 16384			/* 2^14 */
#define REC_MAX_CIPHER (REC_MAX_PLAIN + 256)
#define SECRET_MAX 48				/* SHA-384 */
/* §5.5: an AES-GCM key protects at most 2^24.5 full-size records; the
 * write key moves on well before. ChaCha20-Poly1305's limit is out of
 * reach. */
#define REC_KEY_USES (1ULL << 24)

enum { CT_ALERT = 21, CT_HANDSHAKE = 22, CT_APPDATA = 23 };
#define HS_KEY_UPDATE 24
#define ALERT_CLOSE_NOTIFY 0

struct tls_dir {
	uint64_t seq;
	unsigned char secret[SECRET_MAX];
	unsigned char key[32];
	unsigned char iv[REC_IV];
};

struct tls_rec {
	EVP_CIPHER *cipher;
	const EVP_MD *md;
	size_t key_len, hash_len;
	size_t max_plain;	/* 2^14, or the client's max_fragment_length */
	bool gcm;
	struct tls_dir rd, wr;
};

static void crypto_failed(const char *what)
{
	/* Only allocation fails with valid keys and lengths (STYLE 5). */
	log_error("TLS record layer: %s failed", what);
	abort();
}

/* HKDF-Expand-Label(secret, label, "", len) (§7.1). Every use here asks
 * for at most one hash length: a single HMAC block of HKDF-Expand. */
static void expand_label(const struct tls_rec *r, const unsigned char *secret,
			 const char *label, unsigned char *out, size_t len)
{
	unsigned char info[32], md[EVP_MAX_MD_SIZE];
	size_t llen = strlen(label), n = 0;
	unsigned int mdlen = 0;

	info[n++] = 0;
	info[n++] = (unsigned char)len;
	info[n++] = (unsigned char)(6 + llen);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, llen);
	n += llen;
	info[n++] = 0;		/* empty context */
	info[n++] = 1;		/* HKDF-Expand's block counter */
	if (HMAC(r->md, secret, (int)r->hash_len, info, n, md, &mdlen) == NULL ||
	    mdlen < len)
		crypto_failed("HKDF-Expand-Label");
	memcpy(out, md, len);
	OPENSSL_cleanse(md, sizeof(md));
}

/* §7.3: the key and IV of a traffic secret. */
static void set_keys(const struct tls_rec *r, struct tls_dir *d)
{
	expand_label(r, d->secret, "key", d->key, r->key_len);
	expand_label(r, d->secret, "iv", d->iv, REC_IV);
}

/* §7.2: the next application traffic secret, after a KeyUpdate. */
static void next_secret(const struct tls_rec *r, struct tls_dir *d)
{
	unsigned char next[SECRET_MAX];

	expand_label(r, d->secret, "traffic upd", next, r->hash_len);
	memcpy(d->secret, next, r->hash_len);
	OPENSSL_cleanse(next, sizeof(next));
	set_keys(r, d);
	d->seq = 0;
}

/* §5.3: the IV XORed with the sequence number. */
static void make_nonce(const struct tls_dir *d, unsigned char nonce[REC_IV])
{
	memcpy(nonce, d->iv, REC_IV);
	for (int i = 0; i < 8; i++)
		nonce[REC_IV - 1 - i] ^= (unsigned char)(d->seq >> (8 * i));
}

int tls_rec_take(SSL *ssl, struct tls_rec **rec_r)
{
	struct tls_track *t = track_of(ssl);
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	SSL_SESSION *sess = SSL_get_session(ssl);
	const char *name;
	const EVP_MD *md;
	struct tls_rec *r;
	size_t key_len;
	uint8_t mfl;

	*rec_r = NULL;
	if (t == NULL || t->moved_on || SSL_get_shutdown(ssl) != 0)
		return -1;
	if (!t->done)
		return 0;
	if (SSL_version(ssl) != TLS1_3_VERSION || c == NULL || sess == NULL)
		return -1;
	switch (SSL_CIPHER_get_protocol_id(c)) {
	case 0x1301:
		name = "AES-128-GCM";
		md = EVP_sha256();
		key_len = 16;
		break;
	case 0x1302:
		name = "AES-256-GCM";
		md = EVP_sha384();
		key_len = 32;
		break;
	case 0x1303:
		name = "ChaCha20-Poly1305";
		md = EVP_sha256();
		key_len = 32;
		break;
	default:
		return -1;
	}
	if (t->clen != (size_t)EVP_MD_get_size(md) || t->slen != t->clen)
		return -1;
	/* A record OpenSSL has begun (its header read, the rest not yet) or
	 * decrypted without handing it out would be lost. */
	if (SSL_has_pending(ssl) || strcmp(SSL_rstate_string(ssl), "RH") != 0)
		return 0;
	r = xcalloc(1, sizeof(*r));
	r->cipher = EVP_CIPHER_fetch(NULL, name, NULL);
	if (r->cipher == NULL) {
		free(r);
		return -1;
	}
	r->md = md;
	r->key_len = key_len;
	r->hash_len = t->clen;
	r->gcm = SSL_CIPHER_get_protocol_id(c) != 0x1303;
	mfl = SSL_SESSION_get_max_fragment_length(sess);
	r->max_plain = mfl >= TLSEXT_max_fragment_length_512 &&
	    mfl <= TLSEXT_max_fragment_length_4096 ? 256u << mfl : REC_MAX_PLAIN;
	memcpy(r->rd.secret, t->csecret, r->hash_len);
	memcpy(r->wr.secret, t->ssecret, r->hash_len);
	set_keys(r, &r->rd);
	set_keys(r, &r->wr);
	r->rd.seq = t->rseq;
	r->wr.seq = t->wseq;
	*rec_r = r;
	return 1;
}

void tls_rec_free(struct tls_rec *r)
{
	if (r == NULL)
		return;
	EVP_CIPHER_free(r->cipher);
	OPENSSL_cleanse(r, sizeof(*r));
	free(r);
}

/* Protects one record of `type` carrying `len` bytes into `rec`, which
 * has room for REC_HEADER + len + 1 + REC_TAG bytes (§5.2). */
static void seal_record(struct tls_rec *r, unsigned char *rec,
			unsigned char type, const void *data, size_t len)
{
	size_t clen = len + 1 + REC_TAG;
	unsigned char nonce[REC_IV], *p = rec + REC_HEADER;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0;
	bool ok;

	rec[0] = CT_APPDATA;
	rec[1] = 3;
	rec[2] = 3;
	rec[3] = (unsigned char)(clen >> 8);
	rec[4] = (unsigned char)clen;
	make_nonce(&r->wr, nonce);
	ok = ctx != NULL &&
	    EVP_EncryptInit_ex2(ctx, r->cipher, r->wr.key, nonce, NULL) == 1 &&
	    EVP_EncryptUpdate(ctx, NULL, &n, rec, REC_HEADER) == 1 &&
	    EVP_EncryptUpdate(ctx, p, &n, data, (int)len) == 1;
	p += ok ? n : 0;
	ok = ok && EVP_EncryptUpdate(ctx, p, &n, &type, 1) == 1;
	p += ok ? n : 0;
	ok = ok && EVP_EncryptFinal_ex(ctx, p, &n) == 1;
	p += ok ? n : 0;
	ok = ok && p == rec + REC_HEADER + len + 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, REC_TAG, p) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		crypto_failed("encryption");
	r->wr.seq++;
}

static void write_record(struct tls_rec *r, unsigned char type,
			 const void *data, size_t len, struct evbuffer *out)
{
	size_t total = REC_HEADER + len + 1 + REC_TAG;
	struct evbuffer_iovec v;

	if (evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) < 1)
		crypto_failed("buffer allocation");
	seal_record(r, v.iov_base, type, data, len);
	v.iov_len = total;
	evbuffer_commit_space(out, &v, 1);
}

void tls_rec_update_write_key(struct tls_rec *r, struct evbuffer *out)
{
	static const unsigned char update[] = {
		HS_KEY_UPDATE, 0, 0, 1, 0 /* update_not_requested */
	};

	write_record(r, CT_HANDSHAKE, update, sizeof(update), out);
	next_secret(r, &r->wr);
}

void tls_rec_write(struct tls_rec *r, const void *data, size_t len,
		   struct evbuffer *out)
{
	const unsigned char *p = data;

	while (len > 0) {
		size_t n = len < r->max_plain ? len : r->max_plain;

		if (r->gcm && r->wr.seq >= REC_KEY_USES)
			tls_rec_update_write_key(r, out);
		write_record(r, CT_APPDATA, p, n, out);
		p += n;
		len -= n;
	}
}

/* A handshake message after the handshake: only KeyUpdate (§4.6.3), alone
 * in its record because the key changes after it (§5.1). */
static int read_handshake(struct tls_rec *r, const unsigned char *m, size_t len,
			  struct evbuffer *out, const char **why_r)
{
	if (len != 5 || m[0] != HS_KEY_UPDATE || m[1] != 0 || m[2] != 0 ||
	    m[3] != 1 || m[4] > 1) {
		*why_r = "TLS: unexpected handshake message";
		return -1;
	}
	next_secret(r, &r->rd);
	if (m[4] == 1)
		tls_rec_update_write_key(r, out);
	return 0;
}

/* Opens the record at `rec` (header and `clen` bytes). Application data
 * goes to `plain`. */
static int open_record(struct tls_rec *r, const unsigned char *rec,
		       size_t clen, struct evbuffer *plain, struct evbuffer *out,
		       const char **why_r)
{
	size_t plen = clen - REC_TAG, i;
	unsigned char nonce[REC_IV], tag[REC_TAG], *pt;
	struct evbuffer_iovec v;
	EVP_CIPHER_CTX *ctx;
	int n = 0, m = 0;
	bool ok;

	if (evbuffer_reserve_space(plain, (ev_ssize_t)plen, &v, 1) < 1)
		crypto_failed("buffer allocation");
	pt = v.iov_base;
	memcpy(tag, rec + REC_HEADER + plen, REC_TAG);
	make_nonce(&r->rd, nonce);
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		crypto_failed("decryption");
	ok = EVP_DecryptInit_ex2(ctx, r->cipher, r->rd.key, nonce, NULL) == 1 &&
	    EVP_DecryptUpdate(ctx, NULL, &n, rec, REC_HEADER) == 1 &&
	    EVP_DecryptUpdate(ctx, pt, &n, rec + REC_HEADER, (int)plen) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, REC_TAG, tag) == 1 &&
	    EVP_DecryptFinal_ex(ctx, pt + n, &m) == 1 &&
	    (size_t)(n + m) == plen;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok) {
		*why_r = "TLS: bad record MAC";
		return -1;
	}
	r->rd.seq++;
	/* §5.4: the content type is the last non-zero byte; zeros after
	 * it are padding. */
	for (i = plen; i > 0 && pt[i - 1] == 0; i--)
		;
	if (i == 0) {
		*why_r = "TLS: record without a content type";
		return -1;
	}
	i--;
	if (i > REC_MAX_PLAIN) {
		*why_r = "TLS: record too long";
		return -1;
	}
	switch (pt[i]) {
	case CT_APPDATA:
		v.iov_len = i;
		evbuffer_commit_space(plain, &v, 1);
		return 0;
	case CT_ALERT:
		if (i == 2 && pt[1] == ALERT_CLOSE_NOTIFY)
			return 1;
		*why_r = "TLS alert";
		return -1;
	case CT_HANDSHAKE:
		return read_handshake(r, pt, i, out, why_r);
	default:
		*why_r = "TLS: unexpected record type";
		return -1;
	}
}

int tls_rec_read(struct tls_rec *r, struct evbuffer *raw,
		 struct evbuffer *plain, struct evbuffer *out,
		 const char **why_r)
{
	for (;;) {
		size_t avail = evbuffer_get_length(raw), clen;
		unsigned char hdr[REC_HEADER];
		int rc;

		if (avail < REC_HEADER)
			return 0;
		evbuffer_copyout(raw, hdr, REC_HEADER);
		clen = (size_t)hdr[3] << 8 | hdr[4];
		/* §5.2: after the handshake every record is protected and
		 * says application_data outside. */
		if (hdr[0] != CT_APPDATA) {
			*why_r = "TLS: unprotected record";
			return -1;
		}
		if (clen < 1 + REC_TAG || clen > REC_MAX_CIPHER) {
			*why_r = "TLS: bad record length";
			return -1;
		}
		if (avail < REC_HEADER + clen)
			return 0;
		rc = open_record(r, evbuffer_pullup(raw, (ev_ssize_t)(REC_HEADER + clen)),
				 clen, plain, out, why_r);
		evbuffer_drain(raw, REC_HEADER + clen);
		if (rc != 0)
			return rc;
	}
}

/* TLS contexts (one per virtual host, picked by SNI or the stream's 'to')
 * and channel binding data (RFC 5929 tls-unique, RFC 9266 tls-exporter). */
#ifndef ROOST_NET_TLS_H
#define ROOST_NET_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

struct config;
struct tls;

/* Loads every vhost's certificate and key. Returns NULL with an
 * xmalloc'd *error_r naming the file on failure. */
struct tls *tls_new(const struct config *cfg, char **error_r);
void tls_free(struct tls *t);

/* A new server-side SSL for `domain` (NULL: the first vhost; SNI may still
 * switch it during the handshake). */
SSL *tls_new_ssl(struct tls *t, const char *domain);

#define TLS_CB_MAX 64

/* Fills `out` with the channel binding data of `type` ("tls-unique",
 * "tls-exporter") for this connection. Returns the length, or 0 if the
 * type does not apply to the negotiated protocol or is unknown.
 * tls-exporter needs TLS 1.3. tls-unique is given on TLS 1.3 as well
 * (the Finished message, as OpenSSL and so Python's ssl compute it),
 * because clients such as slixmpp pick it whatever the version. */
size_t tls_channel_binding(SSL *ssl, const char *type, unsigned char *out);

/* The channel binding types this connection offers (XEP-0440), best
 * first, NULL-terminated. */
const char *const *tls_channel_binding_types(SSL *ssl);

/* The record layer of a TLS 1.3 connection without OpenSSL. An SSL holds
 * about 14 KiB for as long as it lives; once the handshake and anything
 * that needs the SSL itself (channel binding) are over, all a connection
 * needs is a key, an IV and a sequence number per direction. roost then
 * frees the SSL and protects records itself (RFC 8446 §5), answering key
 * updates (§4.6.3) and rotating its own write key before AES-GCM's usage
 * limit (§5.5). */
struct tls_rec;
struct evbuffer;

/* Takes the record layer over from `ssl` (an SSL made by tls_new_ssl()).
 * Returns 1 with *rec_r set: OpenSSL must then neither read nor write
 * another record and `ssl` may be freed. Returns 0 if not now: OpenSSL
 * holds part of a record. Returns -1 if never for this connection: not
 * TLS 1.3, a cipher suite other than AES-GCM or ChaCha20-Poly1305, or a
 * post-handshake message (key update) already went through OpenSSL. */
int tls_rec_take(SSL *ssl, struct tls_rec **rec_r);
void tls_rec_free(struct tls_rec *r);

/* Decrypts every whole record at the front of `raw` (and drains them),
 * appending application data to `plain`; a partial record stays in `raw`.
 * A key update the peer asks for is answered on `out`. Returns 0; 1 once
 * the peer sent close_notify (nothing after it is read); -1 on anything
 * else (bad record, alert, unexpected message) with a static reason in
 * *why_r. After a non-zero return the connection is done. */
int tls_rec_read(struct tls_rec *r, struct evbuffer *raw,
		 struct evbuffer *plain, struct evbuffer *out,
		 const char **why_r);
/* Appends `len` bytes as application data records to `out`. */
void tls_rec_write(struct tls_rec *r, const void *data, size_t len,
		   struct evbuffer *out);
/* Sends a KeyUpdate and moves to the next write key, as done by itself
 * before the key's usage limit (exposed for tests). */
void tls_rec_update_write_key(struct tls_rec *r, struct evbuffer *out);

#endif

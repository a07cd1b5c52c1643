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

#endif

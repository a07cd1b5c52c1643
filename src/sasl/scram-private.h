/* Internals of the SASL library shared between its files and its unit
 * tests. Not for the rest of the server: use scram.h and plain.h. */
#ifndef ROOST_SASL_SCRAM_PRIVATE_H
#define ROOST_SASL_SCRAM_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

struct scram_creds;
struct scram_server;

/* scram_server_first() with a given server nonce instead of a random one,
 * so that tests can replay the RFC 5802 / RFC 7677 examples. The nonce
 * must be non-empty printable ASCII without ','; returns -1 otherwise. */
int scram_server_first_with_nonce(struct scram_server *s,
				  const struct scram_creds *creds,
				  const char *server_nonce, const char **out_r,
				  size_t *out_len_r);

/* SASLprep for a query (RFC 3454 §7): unassigned code points are allowed,
 * as for a username at login. saslprep() is for stored strings. */
int saslprep_query(const char *in, char **out_r);

/* Strict UTF-8 (RFC 3629): no overlong forms, surrogates, code points over
 * U+10FFFF or NUL bytes. */
bool sasl_utf8_valid(const char *s, size_t len);

#endif

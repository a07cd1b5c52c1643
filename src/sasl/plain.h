/* SASL PLAIN (RFC 4616) message parsing. */
#ifndef ROOST_SASL_PLAIN_H
#define ROOST_SASL_PLAIN_H

#include <stddef.h>

/* Splits "authzid NUL authcid NUL passwd". Returns 0 with xmalloc'd parts
 * (*authzid_r NULL when empty) or -1 (malformed: wrong NUL count, an empty
 * authcid or password, a part over 1023 bytes, invalid UTF-8). The caller
 * wipes the password with xfree_secret. */
int sasl_plain_parse(const unsigned char *msg, size_t len, char **authzid_r,
		     char **authcid_r, char **passwd_r);

#endif

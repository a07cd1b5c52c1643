/* Strict base64 (RFC 4648 §4, with padding, no whitespace): SASL needs to
 * reject bad encodings with <incorrect-encoding/>. */
#ifndef ROOST_UTIL_BASE64_H
#define ROOST_UTIL_BASE64_H

#include <stddef.h>

/* Returns a NUL-terminated xmalloc'd string. */
char *base64_encode(const void *data, size_t len);
/* Decodes `len` chars of `in`. Returns 0 and an xmalloc'd buffer (with an
 * extra NUL byte, not counted in *out_len_r) or -1 on any invalid input:
 * characters outside the alphabet, wrong padding, length not a multiple of 4.
 * The empty string and "=" both decode to zero bytes (RFC 6120 §6.4.2 uses
 * "=" for an empty response). */
int base64_decode(const char *in, size_t len, unsigned char **out_r,
		  size_t *out_len_r);

#endif

#include "sasl/plain.h"
#include "sasl/scram-private.h"

#include <string.h>

#include "util/xalloc.h"

#define PLAIN_PART_MAX 1023 /* bytes; the same cap as a JID part */

/* Checks one part in place; nothing is copied until the whole message is
 * known to be good, so a rejected password never lands in a second
 * buffer. */
static bool part_valid(const unsigned char *p, size_t len, bool may_be_empty)
{
	if (len == 0)
		return may_be_empty;
	return len <= PLAIN_PART_MAX &&
	       sasl_utf8_valid((const char *)p, len);
}

int sasl_plain_parse(const unsigned char *msg, size_t len, char **authzid_r,
		     char **authcid_r, char **passwd_r)
{
	const unsigned char *nul1, *nul2, *authcid, *passwd;
	size_t zlen, clen, plen;

	*authzid_r = *authcid_r = *passwd_r = NULL;
	if (len > 3 * PLAIN_PART_MAX + 2)
		return -1;
	nul1 = memchr(msg, '\0', len);
	if (nul1 == NULL)
		return -1;
	authcid = nul1 + 1;
	nul2 = memchr(authcid, '\0', len - (size_t)(authcid - msg));
	if (nul2 == NULL)
		return -1;
	passwd = nul2 + 1;
	zlen = (size_t)(nul1 - msg);
	clen = (size_t)(nul2 - authcid);
	plen = len - (size_t)(passwd - msg);
	/* A third NUL is caught by the UTF-8 check of the password. */
	if (!part_valid(msg, zlen, true) || !part_valid(authcid, clen, false) ||
	    !part_valid(passwd, plen, false))
		return -1;
	if (zlen > 0)
		*authzid_r = xstrndup((const char *)msg, zlen);
	*authcid_r = xstrndup((const char *)authcid, clen);
	*passwd_r = xstrndup((const char *)passwd, plen);
	return 0;
}

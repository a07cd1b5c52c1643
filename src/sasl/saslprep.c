#include "sasl/scram.h"
#include "sasl/scram-private.h"

#include <stringprep.h>

#include <string.h>

#include "util/xalloc.h"

/* NFKC can expand a code point up to 18 times (U+FDFA) and a mapping up
 * to 4 times: grow the buffer on STRINGPREP_TOO_SMALL_BUFFER, within a
 * bound that no legitimate input reaches. */
#define PREP_GROWTH_MAX 64

/* Passwords go through here, so each buffer is wiped before it is freed.
 * libidn's own UCS-4 copies are freed without wiping: nothing we can do
 * about them short of reimplementing stringprep. */
static int prep(const char *in, Stringprep_profile_flags flags, char **out_r)
{
	size_t len = strlen(in);
	size_t maxlen = len + len / 2 + 16;
	int rc;

	for (;;) {
		char *b = xmalloc(maxlen);
		memcpy(b, in, len + 1);
		rc = stringprep(b, maxlen, flags, stringprep_saslprep);
		if (rc == STRINGPREP_OK) {
			*out_r = b;
			return 0;
		}
		xfree_secret(b, maxlen);
		if (rc != STRINGPREP_TOO_SMALL_BUFFER ||
		    maxlen > PREP_GROWTH_MAX * (len + 1))
			return -1;
		maxlen *= 2;
	}
}

int saslprep(const char *in, char **out_r)
{
	return prep(in, STRINGPREP_NO_UNASSIGNED, out_r);
}

int saslprep_query(const char *in, char **out_r)
{
	return prep(in, 0, out_r);
}

bool sasl_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + len;

	while (p < end) {
		unsigned char c = *p;
		size_t n;
		unsigned long cp;

		if (c == 0)
			return false;
		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			/* Continuation byte, 0xc0/0xc1 (always overlong) or
			 * beyond U+10FFFF. */
			return false;
		}
		if ((size_t)(end - p) <= n)
			return false;
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		p += n + 1;
	}
	return true;
}

#include "core/jid.h"

#include <arpa/inet.h>
#include <punycode.h>
#include <stringprep.h>

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/* The longest DNS label (RFC 1035 §2.3.4), measured on the ACE form so that
 * an internationalized label is held to what its A-label would be. */
#define LABEL_MAX 63
#define ACE_PREFIX_LEN 4 /* "xn--" */

enum prep_result { PREP_OK = 0, PREP_INVALID = -1, PREP_TOO_LONG = -2 };

/* Runs one stringprep profile over `len` bytes of `in`. The buffer is
 * sized so that a result over JID_PART_MAX comes back as
 * STRINGPREP_TOO_SMALL_BUFFER, which is "too long" anyway: no retry loop
 * is needed. libidn rejects invalid UTF-8 itself (STRINGPREP_ICONV_ERROR).
 * A result that is empty (everything mapped to nothing, e.g. only soft
 * hyphens) is invalid: no part of a JID may be empty. */
/* The three profiles on ASCII input, without libidn: every address a
 * chat message carries goes through here, and stringprep's conversions
 * to UCS-4 and back took a third of the loop's time. On ASCII, NFKC and
 * the B.1 mappings change nothing and no character is RandALCat, so what
 * is left is: Nodeprep and Nameprep fold A-Z (B.2); Nodeprep prohibits
 * ASCII space and controls (C.1.1, C.2.1) and "&'/:<>@ (RFC 6122 A.5);
 * Resourceprep prohibits the controls only; Nameprep prohibits nothing
 * ASCII (the label checks reject what is not a host name). Returns false
 * for input that is not all ASCII: libidn prepares it.
 * tests/unit/test_jid.c checks every ASCII character against libidn. */
static bool prep_ascii(const char *in, size_t len,
		       const Stringprep_profile *profile,
		       enum prep_result *res_r, char **out_r)
{
	bool fold = profile != stringprep_xmpp_resourceprep;
	char *b;

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)in[i] >= 0x80)
			return false;
	*res_r = PREP_INVALID;
	if (len > JID_PART_MAX) {
		*res_r = PREP_TOO_LONG;
		return true;
	}
	if (len == 0)
		return true;
	b = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (profile != stringprep_nameprep &&
		    (c < 0x20 || c == 0x7f))
			goto bad;
		if (profile == stringprep_xmpp_nodeprep &&
		    (c == ' ' || strchr("\"&'/:<>@", c) != NULL))
			goto bad;
		b[i] = (char)(fold && c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	b[len] = '\0';
	*res_r = PREP_OK;
	*out_r = b;
	return true;
bad:
	free(b);
	return true;
}

static enum prep_result prep(const char *in, size_t len,
			     const Stringprep_profile *profile, char **out_r)
{
	size_t maxlen = (len > JID_PART_MAX ? len : JID_PART_MAX) + 1;
	enum prep_result res = PREP_INVALID;
	char *b;
	int rc;

	if (prep_ascii(in, len, profile, &res, out_r))
		return res;
	b = xmalloc(maxlen);
	memcpy(b, in, len);
	b[len] = '\0';
	rc = stringprep(b, maxlen, 0, profile);
	if (rc == STRINGPREP_TOO_SMALL_BUFFER ||
	    (rc == STRINGPREP_OK && strlen(b) > JID_PART_MAX)) {
		res = PREP_TOO_LONG;
		goto bad;
	}
	if (rc != STRINGPREP_OK || b[0] == '\0')
		goto bad;
	/* Prepared parts live as long as streams and sessions do: keep
	 * their length, not the buffer's. */
	*out_r = xstrdup(b);
	free(b);
	return PREP_OK;
bad:
	free(b);
	return res;
}

static bool is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-';
}

/* A label of a prepared domain: letters, digits and hyphens (RFC 1123),
 * not starting or ending with a hyphen; non-ASCII characters already
 * passed Nameprep. A non-ASCII label's limit is that of its A-label, which
 * we compute with Punycode but do not keep (the JID stays in UTF-8). */
static bool label_valid(const char *l, size_t len)
{
	bool ascii = true;

	if (len == 0 || l[0] == '-' || l[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)l[i];
		if (c >= 0x80)
			ascii = false;
		else if (!is_ldh(c))
			return false;
	}
	if (ascii)
		return len <= LABEL_MAX;

	size_t n, outlen = LABEL_MAX - ACE_PREFIX_LEN;
	char ace[LABEL_MAX - ACE_PREFIX_LEN];
	uint32_t *ucs4 = stringprep_utf8_to_ucs4(l, (ssize_t)len, &n);
	int rc;

	if (ucs4 == NULL)
		return false;
	rc = punycode_encode(n, ucs4, NULL, &outlen, ace);
	free(ucs4);
	return rc == PUNYCODE_SUCCESS;
}

static bool only_digits_and_dots(const char *s)
{
	for (; *s != '\0'; s++)
		if (!(*s == '.' || (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

/* RFC 3490 §3.1 counts U+3002 IDEOGRAPHIC FULL STOP as a label separator;
 * Nameprep already maps U+FF0E and U+FF61 onto '.' and U+3002. */
static void map_ideographic_dots(char *s)
{
	char *w = s;

	for (const char *r = s; *r != '\0';) {
		/* Short-circuit: never reads past the NUL. */
		if (r[0] == '\xe3' && r[1] == '\x80' && r[2] == '\x82') {
			*w++ = '.';
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

static int prep_domain(const char *in, size_t len, char **out_r,
		       const char **error_r)
{
	char *d = NULL;
	size_t dlen;
	bool stripped;

	if (len == 0) {
		*error_r = "empty domainpart";
		return -1;
	}
	if (in[0] == '[') {
		/* An IPv6 literal (RFC 7622 §3.2 via RFC 3986 IP-literal),
		 * lowercased. Zone identifiers are not valid in a JID. */
		unsigned char addr[16];
		if (len < 3 || in[len - 1] != ']' ||
		    len - 2 >= INET6_ADDRSTRLEN)
			goto bad;
		d = xstrndup(in, len);
		d[len - 1] = '\0';
		if (inet_pton(AF_INET6, d + 1, addr) != 1)
			goto bad;
		d[len - 1] = ']';
		for (char *p = d; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');
		*out_r = d;
		return 0;
	}
	/* Drop an ASCII trailing dot before preparing so that it does not
	 * count against JID_PART_MAX; a mapped one (U+FF0E...) after. Only
	 * one: "example.com.." stays invalid. */
	stripped = in[len - 1] == '.';
	if (stripped)
		len--;
	switch (prep(in, len, stringprep_nameprep, &d)) {
	case PREP_OK:
		break;
	case PREP_TOO_LONG:
		*error_r = "domainpart too long";
		return -1;
	default:
		goto bad;
	}
	map_ideographic_dots(d);
	dlen = strlen(d);
	if (!stripped && dlen > 0 && d[dlen - 1] == '.')
		d[--dlen] = '\0';
	if (dlen == 0)
		goto bad;
	if (only_digits_and_dots(d)) {
		/* All-numeric names are not hostnames (RFC 1123 §2.1): it is
		 * an IPv4 literal or nothing. */
		unsigned char addr[4];
		if (inet_pton(AF_INET, d, addr) != 1)
			goto bad;
		*out_r = d;
		return 0;
	}
	for (const char *l = d;;) {
		const char *dot = strchr(l, '.');
		size_t llen = dot != NULL ? (size_t)(dot - l) : strlen(l);
		if (!label_valid(l, llen))
			goto bad;
		if (dot == NULL)
			break;
		l = dot + 1;
	}
	*out_r = d;
	return 0;
bad:
	free(d);
	*error_r = "invalid domainpart";
	return -1;
}

int jid_prep_local(const char *in, char **out_r)
{
	return prep(in, strlen(in), stringprep_xmpp_nodeprep, out_r) == PREP_OK
		       ? 0 : -1;
}

int jid_prep_domain(const char *in, char **out_r)
{
	const char *error;

	return prep_domain(in, strlen(in), out_r, &error);
}

int jid_prep_resource(const char *in, char **out_r)
{
	return prep(in, strlen(in), stringprep_xmpp_resourceprep, out_r) ==
		       PREP_OK ? 0 : -1;
}

int jid_parse(const char *s, struct jid *out, const char **error_r)
{
	const char *slash, *at, *dom;
	size_t dlen;
	struct jid j = { NULL, NULL, NULL };

	memset(out, 0, sizeof(*out));
	/* RFC 7622 §3.1: the first '/' starts the resourcepart, which may
	 * itself hold '@' and '/'; then the first '@' before it ends the
	 * localpart. */
	slash = strchr(s, '/');
	dlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	at = memchr(s, '@', dlen);
	dom = s;
	if (at != NULL) {
		if (at == s) {
			*error_r = "empty localpart";
			goto bad;
		}
		switch (prep(s, (size_t)(at - s), stringprep_xmpp_nodeprep,
			     &j.local)) {
		case PREP_OK:
			break;
		case PREP_TOO_LONG:
			*error_r = "localpart too long";
			goto bad;
		default:
			*error_r = "invalid localpart";
			goto bad;
		}
		dom = at + 1;
		dlen -= (size_t)(dom - s);
	}
	if (prep_domain(dom, dlen, &j.domain, error_r) < 0)
		goto bad;
	if (slash != NULL) {
		if (slash[1] == '\0') {
			*error_r = "empty resourcepart";
			goto bad;
		}
		switch (prep(slash + 1, strlen(slash + 1),
			     stringprep_xmpp_resourceprep, &j.resource)) {
		case PREP_OK:
			break;
		case PREP_TOO_LONG:
			*error_r = "resourcepart too long";
			goto bad;
		default:
			*error_r = "invalid resourcepart";
			goto bad;
		}
	}
	*out = j;
	return 0;
bad:
	jid_free(&j);
	return -1;
}

void jid_free(struct jid *jid)
{
	free(jid->local);
	free(jid->domain);
	free(jid->resource);
	jid->local = jid->domain = jid->resource = NULL;
}

void jid_copy(struct jid *dst, const struct jid *src)
{
	dst->local = src->local != NULL ? xstrdup(src->local) : NULL;
	dst->domain = src->domain != NULL ? xstrdup(src->domain) : NULL;
	dst->resource = src->resource != NULL ? xstrdup(src->resource) : NULL;
}

/* local@domain/resource with any part absent (NULL) left out, in one
 * allocation: JIDs are formatted for every routed message, and a printf
 * or a growing buffer cost more than the rest of the work. */
static char *format(const char *local, const char *domain,
		    const char *resource)
{
	size_t ll = local ? strlen(local) : 0, dl = strlen(domain);
	size_t rl = resource ? strlen(resource) : 0;
	char *out = xmalloc(ll + 1 + dl + 1 + rl + 1), *p = out;

	if (local != NULL) {
		memcpy(p, local, ll);
		p += ll;
		*p++ = '@';
	}
	memcpy(p, domain, dl);
	p += dl;
	if (resource != NULL) {
		*p++ = '/';
		memcpy(p, resource, rl);
		p += rl;
	}
	*p = '\0';
	return out;
}

char *jid_bare(const struct jid *jid)
{
	return format(jid->local, jid->domain, NULL);
}

char *jid_full(const struct jid *jid)
{
	return format(jid->local, jid->domain, jid->resource);
}

static char *normalize(const char *s, char *(*form)(const struct jid *))
{
	struct jid j;
	const char *error;
	char *out;

	if (jid_parse(s, &j, &error) < 0)
		return NULL;
	out = form(&j);
	jid_free(&j);
	return out;
}

char *jid_normalize(const char *s)
{
	return normalize(s, jid_full);
}

char *jid_normalize_bare(const char *s)
{
	return normalize(s, jid_bare);
}

/* Parts are compared after preparation, so bytes equality is JID
 * equality; absent parts only equal absent parts. */
static bool part_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

bool jid_bare_equal(const struct jid *a, const struct jid *b)
{
	return part_equal(a->local, b->local) &&
	       part_equal(a->domain, b->domain);
}

bool jid_equal(const struct jid *a, const struct jid *b)
{
	return jid_bare_equal(a, b) && part_equal(a->resource, b->resource);
}

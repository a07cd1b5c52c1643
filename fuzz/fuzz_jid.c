/* libFuzzer target: JID parsing and preparation (src/core/jid.c, RFC 6122
 * stringprep profiles through libidn). Every JID that parses must come
 * out the same when its prepared form is parsed again: routing, the
 * session table and the stores key on that form. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "core/jid.h"
#include "util/xalloc.h"

static void stable(const char *in, int (*prep)(const char *, char **))
{
	char *a, *b;

	if (prep(in, &a) != 0)
		return;
	if (prep(a, &b) != 0 || strcmp(a, b) != 0) {
		fprintf(stderr, "not stable: '%s' -> '%s'\n", in, a);
		abort();
	}
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);
	struct jid j, k, copy;
	const char *why;

	if (jid_parse(s, &j, &why) == 0) {
		char *full = jid_full(&j), *bare = jid_bare(&j);

		if (j.domain == NULL || strlen(j.domain) > JID_PART_MAX ||
		    (j.local && strlen(j.local) > JID_PART_MAX) ||
		    (j.resource && strlen(j.resource) > JID_PART_MAX))
			abort();
		if (jid_parse(full, &k, &why) != 0 || !jid_equal(&j, &k)) {
			fprintf(stderr, "'%s' -> '%s' does not parse back\n",
				s, full);
			abort();
		}
		jid_copy(&copy, &j);
		if (!jid_equal(&copy, &j) || !jid_bare_equal(&copy, &k))
			abort();
		jid_free(&copy);
		jid_free(&k);
		free(full);
		free(bare);
		jid_free(&j);
	} else if (why == NULL) {
		abort();
	}
	free(jid_normalize(s));
	free(jid_normalize_bare(s));
	stable(s, jid_prep_local);
	stable(s, jid_prep_domain);
	stable(s, jid_prep_resource);
	free(s);
	return 0;
}

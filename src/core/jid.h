/* JIDs (RFC 6122 / RFC 7622 §3 lengths) prepared with the stringprep
 * profiles Prosody and ejabberd use: Nodeprep for the localpart, Nameprep
 * for the domainpart, Resourceprep for the resourcepart. */
#ifndef ROOST_CORE_JID_H
#define ROOST_CORE_JID_H

#include <stdbool.h>
#include <stddef.h>

#define JID_PART_MAX 1023 /* bytes of each part after preparation */

struct jid {
	char *local;    /* NULL when absent */
	char *domain;   /* never NULL in a parsed JID */
	char *resource; /* NULL when absent */
};

/* Parses and prepares `s`. On success fills *out with xmalloc'd parts and
 * returns 0. On failure returns -1 with a short reason in *error_r (a
 * static string) and leaves *out zeroed. Rejects: empty parts ("@d", "l@",
 * "d/"), a part over JID_PART_MAX after preparation, characters a profile
 * prohibits (e.g. '"&'/:<>@' and spaces in the localpart), a domain that is
 * not a valid hostname or IP literal, invalid UTF-8. A trailing dot on the
 * domain is removed. */
int jid_parse(const char *s, struct jid *out, const char **error_r);
void jid_free(struct jid *jid);
/* Copies a parsed JID. */
void jid_copy(struct jid *dst, const struct jid *src);

/* "local@domain" or "domain"; xmalloc'd. */
char *jid_bare(const struct jid *jid);
/* "local@domain/resource" as far as present; xmalloc'd. */
char *jid_full(const struct jid *jid);

/* Each returns 0 and an xmalloc'd prepared string, or -1. */
int jid_prep_local(const char *in, char **out_r);
int jid_prep_domain(const char *in, char **out_r);
int jid_prep_resource(const char *in, char **out_r);

/* Parses `s` and returns its prepared full form (xmalloc'd), or NULL. */
char *jid_normalize(const char *s);
/* Parses `s` and returns its prepared bare form (xmalloc'd), or NULL. */
char *jid_normalize_bare(const char *s);

bool jid_equal(const struct jid *a, const struct jid *b);
bool jid_bare_equal(const struct jid *a, const struct jid *b);

#endif

/* PEP access models (XEP-0060 §4.5, §6.5.1; XEP-0163 §4, §5) and the
 * errors XEP-0060 gives for each refusal (§6.1.3, §6.5.9). */
#include <stdio.h>
#include <string.h>

#include "core/account.h"
#include "mod/mod_pep-private.h"

void pep_error_set(struct pep_error *err, const char *cond, const char *app,
		   const char *text)
{
	err->cond = cond;
	err->app = app;
	err->feature = NULL;
	snprintf(err->text, sizeof(err->text), "%s", text != NULL ? text : "");
}

static bool has_from(enum roster_sub sub)
{
	return sub == ROSTER_SUB_FROM || sub == ROSTER_SUB_BOTH;
}

bool pep_shares_presence(struct account *a, const char *bare)
{
	const struct roster_entry *e;

	if (strcmp(bare, a->bare) == 0)
		return true;
	e = account_roster_find(a, bare);
	return e != NULL && has_from(e->sub);
}

static bool in_groups(const struct roster_entry *e, const struct pep_config *c)
{
	for (size_t i = 0; i < e->ngroups; i++)
		for (size_t j = 0; j < c->ngroups; j++)
			if (strcmp(e->groups[i], c->groups[j]) == 0)
				return true;
	return false;
}

enum pep_denial pep_access_check(struct account *a, const struct pep_node *n,
				 const char *bare)
{
	const struct roster_entry *e;

	if (strcmp(bare, a->bare) == 0)
		return PEP_ALLOWED;
	switch (n->cfg.access) {
	case PEP_ACCESS_OPEN:
		return PEP_ALLOWED;
	case PEP_ACCESS_PRESENCE:
		return pep_shares_presence(a, bare) ? PEP_ALLOWED
						    : PEP_DENY_PRESENCE;
	case PEP_ACCESS_ROSTER:
		/* A contact on the roster (an entry kept only for a
		 * pending request is not), in one of the groups when the
		 * node names some. */
		e = account_roster_find(a, bare);
		if (e == NULL || e->hidden)
			return PEP_DENY_ROSTER;
		return n->cfg.ngroups == 0 || in_groups(e, &n->cfg)
			? PEP_ALLOWED : PEP_DENY_ROSTER;
	case PEP_ACCESS_WHITELIST:
		/* XEP-0223: the owner alone (we keep no member list). */
		return PEP_DENY_WHITELIST;
	}
	return PEP_DENY_WHITELIST;
}

void pep_denial_error(enum pep_denial d, struct pep_error *err)
{
	switch (d) {
	case PEP_DENY_PRESENCE:
		pep_error_set(err, "not-authorized",
			      "presence-subscription-required", NULL);
		break;
	case PEP_DENY_ROSTER:
		pep_error_set(err, "not-authorized", "not-in-roster-group",
			      NULL);
		break;
	case PEP_DENY_WHITELIST:
	case PEP_ALLOWED:
		pep_error_set(err, "not-allowed", "closed-node", NULL);
		break;
	}
}

/* XEP-0012 Last Activity.
 *
 * - To the server: its uptime in seconds (§5).
 * - To a user's bare JID, answered by the server on the user's behalf
 *   (§3): 0 while a resource is available; otherwise the seconds since
 *   the account's last available resource went away, with the status
 *   text of its unavailable presence. Only the user and contacts allowed
 *   to see the user's presence (subscription from or both) may ask;
 *   anyone else gets <forbidden/> (§3, §8). Blocked JIDs (XEP-0191)
 *   never get this far.
 * - To a full JID: the client's business; the router delivers it.
 *
 * The moment and the text are kept in the per-user store (space "last",
 * one item whose write time is the moment), so they survive restarts and
 * go with the account. They are written when the last available resource
 * sends unavailable presence (seen as the copy the server reflects to
 * that resource, RFC 6121 §4.5.2), or, failing that, when its session
 * ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "core/session.h"
#include "core/stanza.h"
#include "mod/modules.h"
#include "seal/seal.h"
#include "server.h"
#include "store/store.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"

#define NS_LAST "jabber:iq:last"
#define LAST_SPACE "last"
#define LAST_KEY "logout"

extern const struct module last_module;

/* A session's slot holds this address once its going away was recorded
 * (it sent unavailable presence); initial presence clears it. */
static char recorded_mark;

/* Our slot. modules_index() needs the module table, which does not exist
 * yet while init runs; the table is builtin_modules in that order. */
static unsigned last_index(void)
{
	unsigned i = 0;

	while (builtin_modules[i] != &last_module)
		i++;
	return i;
}

static int64_t monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* ---- recording ---- */

static void recorded(void *ctx, int result, const char *error)
{
	char *owner = ctx;

	if (result < 0)
		log_warn("last: %s: the logout time could not be stored: %s",
			 owner, error);
	free(owner);
}

static void record(struct account *a, const char *status)
{
	store_data_put(a->srv->store, a->bare, LAST_SPACE, LAST_KEY, status,
		       strlen(status), 0, recorded, xstrdup(a->bare));
}

static bool others_available(const struct session *s)
{
	account_foreach_session(s->account, o)
		if (o != s && o->available)
			return true;
	return false;
}

static void last_initial_presence(struct session *s)
{
	s->mod_ctx[last_index()] = NULL;
}

static bool last_session_filter(struct session *s, const struct xml_node *st)
{
	const char *type, *from, *to, *status;

	if (stanza_kind(st) != STANZA_PRESENCE ||
	    (type = xml_attr(st, "type")) == NULL ||
	    strcmp(type, "unavailable") != 0 ||
	    (from = xml_attr(st, "from")) == NULL ||
	    (to = xml_attr(st, "to")) == NULL ||
	    strcmp(from, s->full) != 0 || strcmp(to, s->full) != 0)
		return false;
	if (!others_available(s)) {
		status = xml_child_text(st, "status", XML_NS_CLIENT);
		record(s->account, status != NULL ? status : "");
		s->mod_ctx[last_index()] = &recorded_mark;
	}
	return false;
}

static void last_session_end(struct session *s)
{
	if (s->mod_ctx[last_index()] != &recorded_mark &&
	    !others_available(s))
		record(s->account, "");
}

/* ---- queries ---- */

static void server_get(const struct iq_request *req)
{
	struct xml_node *q = xml_new("query", NS_LAST);
	int64_t *start = req->srv->mod_ctx[last_index()];
	char seconds[24];

	snprintf(seconds, sizeof(seconds), "%lld",
		 (long long)(monotonic_s() - *start));
	xml_set_attr(q, "seconds", seconds);
	iq_reply(req, q);
}

struct pending {
	struct server *srv;
	struct xml_node *iq;
};

static void logout_loaded(void *ctx, int result,
			  const struct store_data_item *items, size_t n)
{
	struct pending *p = ctx;
	struct iq_request req = { .srv = p->srv, .iq = p->iq };

	if (result < 0) {
		iq_error(&req, "internal-server-error", NULL);
	} else if (n == 0) {
		/* Never logged out since this server keeps the time. */
		iq_error(&req, "item-not-found", NULL);
	} else {
		struct xml_node *q = xml_new("query", NS_LAST);
		int64_t ago = (seal_now_us() - items[0].stamp_us) / 1000000;
		char seconds[24];

		snprintf(seconds, sizeof(seconds), "%lld",
			 (long long)(ago > 0 ? ago : 0));
		xml_set_attr(q, "seconds", seconds);
		if (items[0].len > 0)
			xml_add_text(q, items[0].value, items[0].len);
		iq_reply(&req, q);
	}
	xml_free(p->iq);
	free(p);
}

static bool may_see_presence(struct account *a, const struct jid *from)
{
	const struct roster_entry *e;
	char *bare = jid_bare(from);

	e = strcmp(bare, a->bare) == 0 ? NULL : account_roster_find(a, bare);
	free(bare);
	return e != NULL &&
	       (e->sub == ROSTER_SUB_FROM || e->sub == ROSTER_SUB_BOTH);
}

static void user_get(const struct iq_request *req)
{
	char *owner = jid_bare(req->to);
	/* The router loaded the account before dispatching (it had to know
	 * it exists), and holds it meanwhile. */
	struct account *a = hashmap_get(req->srv->accounts, owner);
	struct pending *p;

	free(owner);
	if (a == NULL || !a->loaded) {
		iq_error(req, "internal-server-error", NULL);
		return;
	}
	if (!jid_bare_equal(req->from, req->to) &&
	    !may_see_presence(a, req->from)) {
		iq_error(req, "forbidden", NULL);
		return;
	}
	account_foreach_session(a, s) {
		if (s->available) {
			struct xml_node *q = xml_new("query", NS_LAST);

			xml_set_attr(q, "seconds", "0");
			iq_reply(req, q);
			return;
		}
	}
	p = xcalloc(1, sizeof(*p));
	p->srv = req->srv;
	p->iq = xml_copy(req->iq);
	store_data_get(req->srv->store, a->bare, LAST_SPACE, LAST_KEY,
		       logout_loaded, p);
}

/* ---- the module ---- */

static int last_init(struct server *srv)
{
	int64_t *start = xmalloc(sizeof(*start));

	*start = monotonic_s();
	srv->mod_ctx[last_index()] = start;
	return 0;
}

static void last_deinit(struct server *srv)
{
	free(srv->mod_ctx[last_index()]);
	srv->mod_ctx[last_index()] = NULL;
}

static const struct iq_handler last_handlers[] = {
	{ NS_LAST, "query", IQ_SCOPE_SERVER, server_get, NULL },
	{ NS_LAST, "query", IQ_SCOPE_ACCOUNT, user_get, NULL },
	{ NULL, NULL, 0, NULL, NULL },
};

static const char *const last_features[] = { NS_LAST, NULL };

const struct module last_module = {
	.name = "last",
	.iq_handlers = last_handlers,
	.server_features = last_features,
	.account_features = last_features,
	.init = last_init,
	.deinit = last_deinit,
	.initial_presence = last_initial_presence,
	.session_filter = last_session_filter,
	.session_end = last_session_end,
};

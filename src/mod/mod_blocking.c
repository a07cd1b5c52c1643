/* XEP-0191 Blocking Command: the list (get, block, unblock, unblock all,
 * pushes to the resources that asked for it), and its enforcement on
 * every routed stanza (route_filter).
 *
 * The list lives in memory (mod_blocking_list.c), changed first, with
 * the store following in order, like the roster: a stanza routed after
 * the request sees the new list, and the store, which carries out
 * requests in order, ends in the same state. The IQ result waits for the
 * store, so a client that got it knows the change is on disk.
 *
 * Enforcement (§3.3):
 * - from a blocked JID to the user: presence is dropped, messages (chat,
 *   normal) and IQ requests are answered <service-unavailable/> as if the
 *   user were not there, anything else is dropped. The filter runs before
 *   delivery, so such a message is neither delivered nor stored offline
 *   nor archived;
 * - from the user to a blocked JID: messages and IQ requests get
 *   <not-acceptable/> with <blocked xmlns='urn:xmpp:blocking:errors'/>;
 *   presence is dropped without an error (it is mostly the broadcast the
 *   server itself copies to each contact), except unsubscribe and
 *   unsubscribed, which only withdraw (removing a blocked contact from
 *   the roster must still cancel its subscription, as in Prosody);
 *   errors and IQ results are dropped, and so is what the server sends
 *   from the user's bare JID (PEP notifications): only clients are told.
 * The errors go straight to the sender's session when it is local.
 * The user's own resources, and the server's own domain, are never
 * blocked (§5: one resource is never blocked from another).
 *
 * Presence (§3.3): blocking a contact sends it unavailable from each
 * available resource of the user when it may see the user's presence, and
 * the user's resources get unavailable from the contact's, so neither
 * side keeps showing the other online; a subscription request from the
 * blocked contact that waits in the roster is dropped (it would be shown
 * at every login, and it cannot be refused any more). Unblocking probes
 * both ways (§3.4: the current presence is sent again). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "core/router.h"
#include "core/session.h"
#include "core/stanza.h"
#include "mod/mod_blocking.h"
#include "mod/modules.h"
#include "server.h"
#include "store/store.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"

#define NS_BLOCKING "urn:xmpp:blocking"
#define NS_BLOCKING_ERRORS "urn:xmpp:blocking:errors"

extern const struct module blocking_module;

struct blocking {
	struct blocklists *lists;
	/* The error this module is routing right now: it goes between the
	 * same two JIDs as the blocked stanza, and must pass the filter. */
	const struct xml_node *passing;
	uint64_t pushes;        /* for push ids */
};

/* A session's slot holds this address once it asked for the list: it
 * then gets the pushes (§3.3, "resources that have requested the
 * blocklist"). */
static char interested_mark;

/* Our slot. modules_index() needs the module table, which does not exist
 * yet while init runs; the table is builtin_modules in that order. */
static unsigned blocking_index(void)
{
	unsigned i = 0;

	while (builtin_modules[i] != &blocking_module)
		i++;
	return i;
}

static struct blocking *blocking_ctx(struct server *srv)
{
	return srv->mod_ctx[blocking_index()];
}

static bool interested(struct session *s)
{
	return s->mod_ctx[blocking_index()] == &interested_mark;
}

static bool has_from(enum roster_sub sub)
{
	return sub == ROSTER_SUB_FROM || sub == ROSTER_SUB_BOTH;
}

static bool has_to(enum roster_sub sub)
{
	return sub == ROSTER_SUB_TO || sub == ROSTER_SUB_BOTH;
}

static bool type_is(const struct xml_node *st, const char *type)
{
	const char *t = xml_attr(st, "type");

	return t != NULL && strcmp(t, type) == 0;
}

/* ---- enforcement ---- */

/* Answers `st` with an error (type cancel and <blocked/> for `blocked`). */
static void refuse(struct server *srv, struct blocking *b,
		   const struct xml_node *st, const char *condition,
		   bool blocked)
{
	struct xml_node *err = stanza_error_reply(st, condition, NULL);
	const struct xml_node *outer = b->passing;
	const char *to;
	struct session *s;

	if (err == NULL)
		return;
	to = xml_attr(err, "to");
	if (blocked) {
		/* stanza_error_reply appends <error/> last. The XEP's
		 * example has type='cancel': retrying cannot help. */
		struct xml_node *e = err->last_child;

		xml_set_attr(e, "type", "cancel");
		xml_add_child(e, "blocked", NS_BLOCKING_ERRORS);
	}
	/* Straight to the sender's session when it is one of ours: the
	 * error concerns that resource alone (no carbon copies of it).
	 * Otherwise through the router, past our own filter. */
	if (to != NULL && (s = session_find(srv, to)) != NULL) {
		session_send(s, err);
		xml_free(err);
		return;
	}
	b->passing = err;
	router_route(srv, err);
	b->passing = outer;
}

static void refuse_inbound(struct server *srv, struct blocking *b,
			   const struct xml_node *st)
{
	switch (stanza_kind(st)) {
	case STANZA_MESSAGE:
		if (xml_attr(st, "type") == NULL || type_is(st, "chat") ||
		    type_is(st, "normal"))
			refuse(srv, b, st, "service-unavailable", false);
		break;
	case STANZA_IQ:
		if (type_is(st, "get") || type_is(st, "set"))
			refuse(srv, b, st, "service-unavailable", false);
		break;
	case STANZA_PRESENCE:
	case STANZA_OTHER:
		break;
	}
}

/* Returns false for the stanzas that go on regardless. */
static bool refuse_outbound(struct server *srv, struct blocking *b,
			    const struct xml_node *st, const struct jid *from)
{
	if (stanza_kind(st) == STANZA_PRESENCE)
		return !type_is(st, "unsubscribe") &&
		       !type_is(st, "unsubscribed");
	/* Only a client is told (§3.3 "the user attempts to send"): what the
	 * server sends from the bare JID on the user's behalf (PEP
	 * notifications) just stays home. Errors and IQ results get
	 * nothing (stanza_error_reply). */
	if (from->resource != NULL)
		refuse(srv, b, st, "not-acceptable", true);
	return true;
}

static bool is_server_jid(struct server *srv, const struct jid *j)
{
	return j->local == NULL && j->resource == NULL &&
	       server_is_local_domain(srv, j->domain);
}

static bool blocking_route_filter(struct server *srv, struct xml_node *st,
				  const struct jid *from, const struct jid *to)
{
	struct blocking *b = blocking_ctx(srv);

	if (st == b->passing || blocklists_empty(b->lists))
		return false;
	if (jid_bare_equal(from, to) || is_server_jid(srv, from) ||
	    is_server_jid(srv, to))
		return false;
	if (blocklist_matches(blocklists_find_jid(b->lists, to), from)) {
		refuse_inbound(srv, b, st);
		return true;
	}
	if (blocklist_matches(blocklists_find_jid(b->lists, from), to))
		return refuse_outbound(srv, b, st, from);
	return false;
}

/* ---- presence on block and unblock ---- */

/* The items one request adds or removes, arranged for one walk over the
 * roster: `all` holds them (under the owner ""), `resources` those that
 * name a resource, under the bare JID they are a resource of. */
struct batch {
	struct blocklists *all, *resources;
	size_t n;
};

static void batch_init(struct batch *bt)
{
	bt->all = blocklists_new();
	bt->resources = blocklists_new();
	bt->n = 0;
}

static void batch_add(struct batch *bt, const char *item)
{
	struct jid it;
	const char *error;

	blocklists_add(bt->all, "", item);
	bt->n++;
	if (jid_parse(item, &it, &error) != 0)
		return;
	if (it.resource != NULL) {
		char *bare = jid_bare(&it);

		blocklists_add(bt->resources, bare, item);
		free(bare);
	}
	jid_free(&it);
}

static void batch_free(struct batch *bt)
{
	blocklists_free(bt->all);
	blocklists_free(bt->resources);
}

static const struct blocklist *batch_items(const struct batch *bt)
{
	return blocklists_find(bt->all, "");
}

/* Is the contact (a roster entry) concerned: blocked whole, or one of
 * its resources? */
static bool batch_concerns(const struct batch *bt, const struct jid *c,
			   const char *bare)
{
	return blocklist_matches(batch_items(bt), c) ||
	       blocklists_find(bt->resources, bare) != NULL;
}

struct jid_list {
	char **v;
	size_t n, cap;
};

static void jid_list_add(const char *s, void *ctx)
{
	struct jid_list *l = ctx;

	l->v = xgrow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
}

static void jid_list_free(struct jid_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static void send_unavailable(struct server *srv, const char *from,
			     const char *to)
{
	router_route(srv, stanza_new("presence", from, to, "unavailable",
				     NULL));
}

/* The user's resources stop seeing the blocked resources of contacts:
 * nothing from them reaches the user any more, not even their unavailable
 * presence. Only local contacts' presence is known here. */
static void contacts_go_offline(struct server *srv, struct account *a,
				const struct batch *bt)
{
	size_t pos = 0;
	const char *key;
	void *value;

	while (hashmap_next(a->roster, &pos, &key, &value)) {
		const struct roster_entry *e = value;
		struct account *c;

		if (!has_to(e->sub) ||
		    (c = hashmap_get(srv->accounts, e->jid)) == NULL ||
		    !c->loaded)
			continue;
		account_foreach_session(c, o) {
			if (!o->available ||
			    !blocklist_matches(batch_items(bt), &o->jid))
				continue;
			account_foreach_session(a, s) {
				struct xml_node *p;

				if (!s->available)
					continue;
				p = stanza_new("presence", o->full, s->full,
					       "unavailable", NULL);
				session_send(s, p);
				xml_free(p);
			}
		}
	}
}

/* Directed presence (RFC 6121 §4.6) to a blocked entity that does not
 * get the broadcast: only the session that sent it had it. */
static void directed_go_offline(struct server *srv, struct account *a,
				const struct batch *bt)
{
	account_foreach_session(a, s) {
		size_t pos = 0;
		const char *key;
		void *value;

		if (s->directed == NULL)
			continue;
		while (hashmap_next(s->directed, &pos, &key, &value)) {
			const struct roster_entry *e;
			struct jid c;
			const char *error;
			char *bare;

			if (jid_parse(key, &c, &error) != 0)
				continue;
			bare = jid_bare(&c);
			e = account_roster_find(a, bare);
			if (blocklist_matches(batch_items(bt), &c) &&
			    !(s->available && e != NULL && has_from(e->sub)))
				send_unavailable(srv, s->full, key);
			free(bare);
			jid_free(&c);
		}
	}
}

/* Called before the items enter the list, so that what it sends passes
 * the filter. */
static void presence_on_block(struct server *srv, struct account *a,
			      const struct batch *bt)
{
	struct jid_list targets = { 0 }, refused = { 0 };
	size_t pos = 0;
	const char *key;
	void *value;

	while (hashmap_next(a->roster, &pos, &key, &value)) {
		const struct roster_entry *e = value;
		struct jid c;
		const char *error;

		if (jid_parse(e->jid, &c, &error) != 0)
			continue;
		if (batch_concerns(bt, &c, e->jid)) {
			/* The whole contact, or the blocked resources. */
			if (has_from(e->sub) &&
			    blocklist_matches(batch_items(bt), &c))
				jid_list_add(e->jid, &targets);
			else if (has_from(e->sub))
				blocklist_foreach(
					blocklists_find(bt->resources, e->jid),
					jid_list_add, &targets);
			if (e->pending_in)
				jid_list_add(e->jid, &refused);
		}
		jid_free(&c);
	}
	account_foreach_session(a, s)
		if (s->available)
			for (size_t i = 0; i < targets.n; i++)
				send_unavailable(srv, s->full, targets.v[i]);
	directed_go_offline(srv, a, bt);
	contacts_go_offline(srv, a, bt);
	for (size_t i = 0; i < refused.n; i++) {
		struct roster_entry *e = account_roster_find(a, refused.v[i]);

		e->pending_in = false;
		if (e->hidden)
			account_roster_remove(a, refused.v[i]);
		else
			account_roster_save(a, e);
	}
	jid_list_free(&targets);
	jid_list_free(&refused);
}

/* After the items left the list: probes both ways for every contact they
 * concerned and that nothing blocks any more. The answers come through
 * the router like any presence. */
static void presence_on_unblock(struct server *srv, struct account *a,
				const struct blocklist *now,
				const struct batch *bt)
{
	struct jid_list from = { 0 }, to = { 0 };
	size_t pos = 0;
	const char *key;
	void *value;

	while (hashmap_next(a->roster, &pos, &key, &value)) {
		const struct roster_entry *e = value;
		struct jid c;
		const char *error;

		if (e->hidden || jid_parse(e->jid, &c, &error) != 0)
			continue;
		if (batch_concerns(bt, &c, e->jid) &&
		    !blocklist_matches(now, &c)) {
			if (has_from(e->sub))
				jid_list_add(e->jid, &from);
			if (has_to(e->sub))
				jid_list_add(e->jid, &to);
		}
		jid_free(&c);
	}
	/* A probe "from" the contact makes the user's server answer it
	 * with the user's current presence (RFC 6121 §4.3.2). */
	for (size_t i = 0; i < from.n; i++)
		router_route(srv, stanza_new("presence", from.v[i], a->bare,
					     "probe", NULL));
	for (size_t i = 0; i < to.n; i++)
		router_route(srv, stanza_new("presence", a->bare, to.v[i],
					     "probe", NULL));
	jid_list_free(&from);
	jid_list_free(&to);
}

/* ---- the protocol ---- */

/* Only the account's own resources read or change its list (§3: the
 * requests carry no 'to'). */
static bool own_request(const struct iq_request *req)
{
	return req->to->local != NULL && req->to->resource == NULL &&
	       jid_bare_equal(req->from, req->to);
}

static void add_item(const char *item, void *ctx)
{
	xml_set_attr(xml_add_child(ctx, "item", NULL), "jid", item);
}

static void blocklist_get(const struct iq_request *req)
{
	struct blocking *b = blocking_ctx(req->srv);
	struct xml_node *list;
	char *owner;

	if (!own_request(req)) {
		iq_error(req, "not-allowed", NULL);
		return;
	}
	owner = jid_bare(req->to);
	list = xml_new("blocklist", NS_BLOCKING);
	blocklist_foreach(blocklists_find(b->lists, owner), add_item, list);
	if (req->session != NULL)
		req->session->mod_ctx[blocking_index()] = &interested_mark;
	iq_reply(req, list);
	free(owner);
}

/* One block or unblock request while its store writes run. */
struct edit {
	struct server *srv;
	struct xml_node *iq;     /* a copy of the request */
	struct xml_node *push;   /* <block/> or <unblock/>, items prepared */
	char *owner;
	size_t pending;          /* store requests not done yet */
	bool failed;
};

static void push(struct server *srv, const char *owner,
		 const struct xml_node *payload)
{
	struct blocking *b = blocking_ctx(srv);
	struct account *a = hashmap_get(srv->accounts, owner);
	struct xml_node *iq;
	char id[40];

	if (a == NULL)
		return;
	snprintf(id, sizeof(id), "block-push-%" PRIu64, ++b->pushes);
	iq = stanza_new("iq", NULL, NULL, "set", id);
	xml_copy_into(iq, payload);
	account_foreach_session(a, s) {
		if (!interested(s))
			continue;
		xml_set_attr(iq, "to", s->full);
		session_send(s, iq);
	}
	xml_free(iq);
}

static void edit_finish(struct edit *e)
{
	struct iq_request req = { .srv = e->srv, .iq = e->iq };

	if (e->failed)
		iq_error(&req, "internal-server-error", NULL);
	else
		iq_reply(&req, NULL);
	/* The list in memory changed either way: every interested
	 * resource must know. */
	push(e->srv, e->owner, e->push);
	xml_free(e->iq);
	xml_free(e->push);
	free(e->owner);
	free(e);
}

static void edit_stored(void *ctx, int result, const char *error)
{
	struct edit *e = ctx;

	if (result < 0) {
		log_warn("blocking: %s: the list could not be stored: %s",
			 e->owner, error);
		e->failed = true;
	}
	if (--e->pending == 0)
		edit_finish(e);
}

/* The request's items, prepared, without repeats, as the children of a
 * new <block/> or <unblock/> (what the pushes carry); NULL once the error
 * is answered if one is not a JID. */
static struct xml_node *request_items(const struct iq_request *req,
				      size_t *n_r)
{
	struct xml_node *out = xml_new(req->payload->name, NS_BLOCKING);
	struct hashmap *seen = hashmap_new();
	size_t n = 0;

	for (struct xml_node *it = xml_child(req->payload, "item", NS_BLOCKING);
	     it != NULL; it = xml_next(it, "item", NS_BLOCKING)) {
		const char *jid = xml_attr(it, "jid");
		char *prep = jid != NULL ? jid_normalize(jid) : NULL;

		if (prep == NULL) {
			iq_error(req, "jid-malformed", NULL);
			xml_free(out);
			out = NULL;
			break;
		}
		if (hashmap_put(seen, prep, out) == NULL) {
			add_item(prep, out);
			n++;
		}
		free(prep);
	}
	hashmap_free(seen);
	*n_r = n;
	return out;
}

static void store_put(struct edit *e, const char *item)
{
	e->pending++;
	store_data_put(e->srv->store, e->owner, BLOCKLIST_SPACE, item, "", 0,
		       0, edit_stored, e);
}

static void store_delete(struct edit *e, const char *item)
{
	e->pending++;
	store_data_delete(e->srv->store, e->owner, BLOCKLIST_SPACE, item,
			  edit_stored, e);
}

static void apply_block(struct edit *e, struct account *a)
{
	struct blocking *b = blocking_ctx(e->srv);
	struct batch fresh;

	batch_init(&fresh);
	for (struct xml_node *it = xml_child(e->push, "item", NULL); it != NULL;
	     it = xml_next(it, "item", NULL)) {
		const char *item = xml_attr(it, "jid");

		if (!blocklist_has(blocklists_find(b->lists, e->owner), item))
			batch_add(&fresh, item);
	}
	if (a != NULL && fresh.n > 0)
		presence_on_block(e->srv, a, &fresh);
	for (struct xml_node *it = xml_child(e->push, "item", NULL); it != NULL;
	     it = xml_next(it, "item", NULL)) {
		const char *item = xml_attr(it, "jid");

		if (blocklist_has(batch_items(&fresh), item)) {
			blocklists_add(b->lists, e->owner, item);
			store_put(e, item);
		}
	}
	batch_free(&fresh);
}

static void batch_add_cb(const char *item, void *ctx)
{
	batch_add(ctx, item);
}

/* Unblocks the request's items, or everything when it names none. */
static void apply_unblock(struct edit *e, struct account *a)
{
	struct blocking *b = blocking_ctx(e->srv);
	struct batch removed;

	batch_init(&removed);
	if (xml_child(e->push, "item", NULL) == NULL) {
		blocklist_foreach(blocklists_find(b->lists, e->owner),
				  batch_add_cb, &removed);
		blocklists_clear(b->lists, e->owner);
		if (removed.n > 0)
			store_delete(e, NULL);
	} else {
		for (struct xml_node *it = xml_child(e->push, "item", NULL);
		     it != NULL; it = xml_next(it, "item", NULL)) {
			const char *item = xml_attr(it, "jid");

			if (!blocklist_has(blocklists_find(b->lists, e->owner),
					   item))
				continue;
			blocklists_remove(b->lists, e->owner, item);
			store_delete(e, item);
			batch_add(&removed, item);
		}
	}
	if (a != NULL && removed.n > 0)
		presence_on_unblock(e->srv, a,
				    blocklists_find(b->lists, e->owner),
				    &removed);
	batch_free(&removed);
}

static void blocklist_edit(const struct iq_request *req)
{
	struct blocking *b = blocking_ctx(req->srv);
	bool block = strcmp(req->payload->name, "block") == 0;
	struct account *a;
	struct xml_node *items;
	struct edit *e;
	size_t n;
	char *owner;

	if (!own_request(req)) {
		iq_error(req, "not-allowed", NULL);
		return;
	}
	if ((items = request_items(req, &n)) == NULL)
		return;
	/* §3.3: a block names at least one JID. */
	if (block && n == 0) {
		iq_error(req, "bad-request", "a block needs at least one item");
		xml_free(items);
		return;
	}
	owner = jid_bare(req->to);
	if (block) {
		const struct blocklist *bl = blocklists_find(b->lists, owner);
		size_t fresh = 0, max = req->srv->cfg->blocklist_max_items;

		for (struct xml_node *it = xml_child(items, "item", NULL);
		     it != NULL; it = xml_next(it, "item", NULL))
			fresh += !blocklist_has(bl, xml_attr(it, "jid"));
		if (blocklist_count(bl) + fresh > max) {
			char text[80];

			snprintf(text, sizeof(text),
				 "at most %zu blocked addresses", max);
			iq_error(req, "policy-violation", text);
			xml_free(items);
			free(owner);
			return;
		}
	}
	e = xcalloc(1, sizeof(*e));
	e->srv = req->srv;
	e->iq = xml_copy(req->iq);
	e->push = items;
	e->owner = owner;
	/* The account is loaded while one of its resources asks. */
	a = hashmap_get(req->srv->accounts, owner);
	if (a != NULL && !a->loaded)
		a = NULL;
	if (block)
		apply_block(e, a);
	else
		apply_unblock(e, a);
	/* Store callbacks never run inside the request call. */
	if (e->pending == 0)
		edit_finish(e);
}

void blocking_forget(struct server *srv, const char *bare)
{
	blocklists_clear(blocking_ctx(srv)->lists, bare);
}

void blocking_forget_unless(struct server *srv, const struct hashmap *keep)
{
	blocklists_keep_only(blocking_ctx(srv)->lists, keep);
}

/* ---- the module ---- */

static int blocking_init(struct server *srv)
{
	struct blocking *b = xcalloc(1, sizeof(*b));

	b->lists = blocklists_new();
	/* Without the lists nothing could be enforced: refuse to start. */
	if (blocklists_load(b->lists, srv->store) != 0) {
		log_error("blocking: the blocking lists could not be read");
		blocklists_free(b->lists);
		free(b);
		return -1;
	}
	srv->mod_ctx[blocking_index()] = b;
	return 0;
}

static void blocking_deinit(struct server *srv)
{
	struct blocking *b = blocking_ctx(srv);

	if (b == NULL)
		return;
	blocklists_free(b->lists);
	free(b);
	srv->mod_ctx[blocking_index()] = NULL;
}

static const struct iq_handler blocking_handlers[] = {
	{ NS_BLOCKING, "blocklist", IQ_SCOPE_ACCOUNT, blocklist_get, NULL },
	{ NS_BLOCKING, "block", IQ_SCOPE_ACCOUNT, NULL, blocklist_edit },
	{ NS_BLOCKING, "unblock", IQ_SCOPE_ACCOUNT, NULL, blocklist_edit },
	{ NULL, NULL, 0, NULL, NULL },
};

/* §3.1: clients look for it on their server; the account answers it. */
static const char *const blocking_features[] = { NS_BLOCKING, NULL };

const struct module blocking_module = {
	.name = "blocking",
	.iq_handlers = blocking_handlers,
	.server_features = blocking_features,
	.account_features = blocking_features,
	.init = blocking_init,
	.deinit = blocking_deinit,
	.route_filter = blocking_route_filter,
};

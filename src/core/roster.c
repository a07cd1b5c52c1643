/* The roster (RFC 6121 §2) and roster versioning (XEP-0237).
 *
 * The roster lives in struct account (write-through to the store); this
 * file is the jabber:iq:roster protocol on top of it: get, set, remove,
 * and the pushes every change makes. Subscription states are changed by
 * presence.c, never by a roster set (§2.1.2.5). */
#include "core/roster.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "core/account.h"
#include "core/jid.h"
#include "core/router.h"
#include "core/session.h"
#include "core/stanza.h"
#include "util/hashmap.h"
#include "util/xalloc.h"
#include "xml/xml.h"

#define NS_ROSTER "jabber:iq:roster"

/* §2.3.3 lets the server choose limits for names and groups. 1023 bytes
 * is what a JID part may hold; nobody needs a longer handle. The counts
 * keep one account from growing without bound. */
#define ROSTER_TEXT_MAX 1023
#define ROSTER_GROUPS_MAX 64
#define ROSTER_ITEMS_MAX 10000

static const char *sub_name(enum roster_sub sub)
{
	switch (sub) {
	case ROSTER_SUB_TO:
		return "to";
	case ROSTER_SUB_FROM:
		return "from";
	case ROSTER_SUB_BOTH:
		return "both";
	case ROSTER_SUB_NONE:
		break;
	}
	return "none";
}

void roster_item_xml(struct xml_node *query, const struct roster_entry *e)
{
	struct xml_node *item = xml_add_child(query, "item", NS_ROSTER);

	xml_set_attr(item, "jid", e->jid);
	if (e->name != NULL && e->name[0] != '\0')
		xml_set_attr(item, "name", e->name);
	xml_set_attr(item, "subscription", sub_name(e->sub));
	/* §2.1.2.2: ask='subscribe' marks "Pending Out". */
	if (e->ask)
		xml_set_attr(item, "ask", "subscribe");
	for (size_t i = 0; i < e->ngroups; i++)
		xml_add_text_child(item, "group", e->groups[i]);
}

/* <query xmlns='jabber:iq:roster' ver='N'/> as a child of `parent`, or as
 * a new tree when parent is NULL. */
static struct xml_node *roster_query(struct xml_node *parent,
				     const struct account *a)
{
	struct xml_node *query;
	char ver[24];

	if (parent != NULL)
		query = xml_add_child(parent, "query", NS_ROSTER);
	else
		query = xml_new("query", NS_ROSTER);
	snprintf(ver, sizeof(ver), "%" PRIu64, a->roster_ver);
	xml_set_attr(query, "ver", ver);
	return query;
}

/* §2.1.6 roster push, to every interested resource (§2.2). The id only
 * needs to let the client match its result (which the router drops): the
 * version plus a random tag is unique per account. */
void roster_push(struct account *a, const struct roster_entry *e,
		 const char *removed_jid)
{
	struct xml_node *iq, *query, *item;
	unsigned char rnd[4] = { 0 };
	char id[64];

	/* A hidden entry only records a pending inbound request (§3.1.3):
	 * it is not part of the roster the client sees. */
	if (e != NULL && e->hidden)
		return;
	if (e == NULL && removed_jid == NULL)
		return;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	snprintf(id, sizeof(id), "push%" PRIu64 "-%02x%02x%02x%02x",
		 a->roster_ver, rnd[0], rnd[1], rnd[2], rnd[3]);

	iq = stanza_new("iq", NULL, NULL, "set", id);
	query = roster_query(iq, a);
	if (e != NULL) {
		roster_item_xml(query, e);
	} else {
		item = xml_add_child(query, "item", NS_ROSTER);
		xml_set_attr(item, "jid", removed_jid);
		xml_set_attr(item, "subscription", "remove");
	}

	account_foreach_session(a, s) {
		if (!s->interested)
			continue;
		xml_set_attr(iq, "to", s->full);
		session_send(s, iq);
	}
	xml_free(iq);
}

/* Only the account's own resources may read or change its roster. */
static bool roster_authorized(const struct iq_request *req)
{
	return req->session != NULL && req->session->account != NULL &&
	       jid_bare_equal(req->from, req->to);
}

/* §2.1.3 roster get, §2.2 login; XEP-0237 §2.3/§2.4: a client that sends
 * the current version gets an empty result (no <query/>) and relies on
 * pushes from then on. */
static void roster_get(const struct iq_request *req)
{
	struct account *a;
	struct xml_node *query;
	const char *client_ver;
	char ver[24];
	size_t pos = 0;
	const char *key;
	void *value;

	if (!roster_authorized(req)) {
		iq_error(req, "forbidden", NULL);
		return;
	}
	a = req->session->account;
	req->session->interested = true;

	snprintf(ver, sizeof(ver), "%" PRIu64, a->roster_ver);
	client_ver = xml_attr(req->payload, "ver");
	if (client_ver != NULL && strcmp(client_ver, ver) == 0) {
		iq_reply(req, NULL);
		return;
	}

	query = roster_query(NULL, a);
	while (hashmap_next(a->roster, &pos, &key, &value)) {
		const struct roster_entry *e = value;

		if (!e->hidden)
			roster_item_xml(query, e);
	}
	iq_reply(req, query);
}

/* The parsed <item/> of a roster set. Strings point into the request. */
struct roster_set_item {
	char *jid;               /* prepared bare JID, xmalloc'd */
	const char *name;        /* NULL: none */
	bool remove;
	const char **groups;     /* xmalloc'd array */
	size_t ngroups;
};

static void roster_set_item_free(struct roster_set_item *it)
{
	free(it->jid);
	free(it->groups);
}

/* Checks the roster set against §2.3.3 (and §2.1.5 for the item); on
 * failure returns -1 with the error condition in *condition_r. */
static int roster_set_parse(const struct iq_request *req,
			    struct roster_set_item *it,
			    const char **condition_r, const char **text_r)
{
	const struct xml_node *item, *g;
	const char *jid, *sub;
	size_t cap = 0;

	memset(it, 0, sizeof(*it));
	*text_r = NULL;

	item = xml_child(req->payload, "item", NS_ROSTER);
	if (item == NULL || xml_count_elements(req->payload) != 1) {
		*condition_r = "bad-request";
		*text_r = "A roster set holds exactly one item";
		return -1;
	}
	jid = xml_attr(item, "jid");
	if (jid == NULL) {
		*condition_r = "bad-request";
		*text_r = "The item has no jid";
		return -1;
	}
	it->jid = jid_normalize_bare(jid);
	if (it->jid == NULL) {
		*condition_r = "jid-malformed";
		return -1;
	}
	/* The user's own JID is not a contact; Prosody refuses it the same
	 * way. */
	if (strcmp(it->jid, req->session->account->bare) == 0) {
		*condition_r = "not-allowed";
		*text_r = "Your own JID cannot be a roster item";
		return -1;
	}

	/* §2.1.2.5: in a roster set the server ignores every subscription
	 * value but "remove" (clients such as slixmpp send the current one);
	 * §2.1.2.2: and it ignores 'ask'. */
	sub = xml_attr(item, "subscription");
	if (sub != NULL && strcmp(sub, "remove") == 0) {
		it->remove = true;
		return 0;
	}

	it->name = xml_attr(item, "name");
	if (it->name != NULL && strlen(it->name) > ROSTER_TEXT_MAX) {
		*condition_r = "not-acceptable";
		*text_r = "The name is too long";
		return -1;
	}
	if (it->name != NULL && it->name[0] == '\0')
		it->name = NULL;

	for (g = xml_child(item, "group", NS_ROSTER); g != NULL;
	     g = xml_next(g, "group", NS_ROSTER)) {
		const char *text = xml_text(g);

		if (text[0] == '\0' || strlen(text) > ROSTER_TEXT_MAX) {
			*condition_r = "not-acceptable";
			*text_r = text[0] == '\0' ? "A group name is empty"
						  : "A group name is too long";
			return -1;
		}
		for (size_t i = 0; i < it->ngroups; i++) {
			if (strcmp(it->groups[i], text) == 0) {
				*condition_r = "bad-request";
				*text_r = "Duplicate group";
				return -1;
			}
		}
		if (it->ngroups == ROSTER_GROUPS_MAX) {
			*condition_r = "not-acceptable";
			*text_r = "Too many groups";
			return -1;
		}
		it->groups = xgrow(it->groups, &cap, it->ngroups + 1,
				   sizeof(*it->groups));
		it->groups[it->ngroups++] = text;
	}
	return 0;
}

/* Sends a subscription stanza from the user's bare JID (§3.1.2). */
static void send_subscription(struct server *srv, const char *from,
			      const char *to, const char *type)
{
	router_route(srv, stanza_new("presence", from, to, type, NULL));
}

/* §2.5.2: deleting an item also cancels the subscriptions both ways, so
 * that the contact's roster follows; then the item goes and every
 * interested resource hears of it. */
static void roster_remove_item(const struct iq_request *req,
			       struct roster_set_item *it)
{
	struct account *a = req->session->account;
	struct roster_entry *e = account_roster_find(a, it->jid);
	bool has_from, has_to;

	if (e == NULL || e->hidden) {
		iq_error(req, "item-not-found", NULL);
		return;
	}
	has_from = e->sub == ROSTER_SUB_FROM || e->sub == ROSTER_SUB_BOTH;
	has_to = e->sub == ROSTER_SUB_TO || e->sub == ROSTER_SUB_BOTH;

	if (has_from || e->pending_in) {
		/* §3.2.2: the contact stops seeing us, so it gets
		 * unavailable from every resource that is available. */
		if (has_from) {
			account_foreach_session(a, s) {
				if (s->available)
					router_route(a->srv, stanza_new(
						"presence", s->full, it->jid,
						"unavailable", NULL));
			}
		}
		send_subscription(a->srv, a->bare, it->jid, "unsubscribed");
	}
	if (has_to || e->ask)
		send_subscription(a->srv, a->bare, it->jid, "unsubscribe");

	account_roster_remove(a, it->jid);
	roster_push(a, NULL, it->jid);
	iq_reply(req, NULL);
}

/* §2.3.2 add, §2.4.2 update: only the name and the groups change; the
 * subscription state stays what the presence exchange made it. */
static void roster_update_item(const struct iq_request *req,
			       struct roster_set_item *it)
{
	struct account *a = req->session->account;
	struct roster_entry *e = account_roster_find(a, it->jid);

	if (e == NULL && hashmap_count(a->roster) >= ROSTER_ITEMS_MAX) {
		iq_error(req, "resource-constraint", "The roster is full");
		return;
	}
	if (e == NULL)
		e = account_roster_ensure(a, it->jid);
	/* A hidden entry (a pending inbound request) becomes a real item
	 * once the user adds the contact. */
	e->hidden = false;

	free(e->name);
	e->name = it->name != NULL ? xstrdup(it->name) : NULL;
	for (size_t i = 0; i < e->ngroups; i++)
		free(e->groups[i]);
	free(e->groups);
	e->groups = NULL;
	e->ngroups = 0;
	if (it->ngroups > 0) {
		e->groups = xcalloc(it->ngroups, sizeof(*e->groups));
		for (size_t i = 0; i < it->ngroups; i++)
			e->groups[i] = xstrdup(it->groups[i]);
		e->ngroups = it->ngroups;
	}

	account_roster_save(a, e);
	/* The push goes first: a client that waits for the result then
	 * finds its roster already up to date. */
	roster_push(a, e, NULL);
	iq_reply(req, NULL);
}

/* §2.1.5 roster set. */
static void roster_set(const struct iq_request *req)
{
	struct roster_set_item it;
	const char *condition, *text;

	if (!roster_authorized(req)) {
		iq_error(req, "forbidden", NULL);
		return;
	}
	if (roster_set_parse(req, &it, &condition, &text) < 0) {
		iq_error(req, condition, text);
		roster_set_item_free(&it);
		return;
	}
	if (it.remove)
		roster_remove_item(req, &it);
	else
		roster_update_item(req, &it);
	roster_set_item_free(&it);
}

static const struct iq_handler roster_iq_handlers[] = {
	{ NS_ROSTER, "query", IQ_SCOPE_ACCOUNT, roster_get, roster_set },
	{ NULL, NULL, 0, NULL, NULL },
};

/* Advertised by the server, as Prosody does: the roster is a service the
 * server gives its users. */
static const char *const roster_server_features[] = {
	NS_ROSTER,
	NULL,
};

const struct module roster_module = {
	.name = "roster",
	.iq_handlers = roster_iq_handlers,
	.server_features = roster_server_features,
};

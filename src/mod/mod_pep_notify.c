/* PEP event notifications (XEP-0163 §4, XEP-0060 §7.1.2, §7.2.2, §8.4,
 * §8.5) and the last published item (XEP-0163 §4.3.4).
 *
 * Who gets a notification of node N of owner O:
 * - every available resource of O whose caps list "N+notify";
 * - every available resource, with "N+notify", of each contact that
 *   shares presence with O (subscription from/both in O's roster) and
 *   that the node's access model admits (XEP-0163 §4, "auto-subscribe"
 *   and "filtered-notifications");
 * - explicit XEP-0060 subscribers the access model still admits: a full
 *   JID gets one notification while it is available; a bare JID one per
 *   resource that asked for N, or else one to the bare JID (XEP-0163
 *   §4.3.2 rules 2 and 3).
 * Each resource gets one copy however many rules name it. Notifications
 * go through the router, so XEP-0191 blocking applies (§4.3.3 rule 3),
 * and only to full JIDs of available resources (or bare JIDs, which the
 * router never stores a headline for), so none lands in offline
 * storage (XEP-0060 §12.6). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/account.h"
#include "core/jid.h"
#include "core/router.h"
#include "core/session.h"
#include "core/stanza.h"
#include "mod/mod_caps.h"
#include "mod/mod_pep-private.h"
#include "server.h"
#include "util/hashmap.h"
#include "util/xalloc.h"
#include "xml/xml.h"

#define NS_DELAY "urn:xmpp:delay"

static bool has_from(enum roster_sub sub)
{
	return sub == ROSTER_SUB_FROM || sub == ROSTER_SUB_BOTH;
}

static bool has_to(enum roster_sub sub)
{
	return sub == ROSTER_SUB_TO || sub == ROSTER_SUB_BOTH;
}

/* ---- recipients ---- */

struct recipients {
	struct hashmap *seen;
	const struct xml_node *msg;
	char id[33];
	unsigned n;
};

static void send_to(struct server *srv, struct recipients *r, const char *to)
{
	struct xml_node *copy;
	char id[48];

	if (hashmap_get(r->seen, to) != NULL)
		return;
	hashmap_put(r->seen, to, r);
	copy = xml_copy(r->msg);
	snprintf(id, sizeof(id), "%s-%u", r->id, r->n++);
	xml_set_attr(copy, "to", to);
	xml_set_attr(copy, "id", id);
	router_route(srv, copy);
}

/* The account's available resources that asked for the node; returns
 * how many. */
static unsigned send_to_interested(struct server *srv, struct recipients *r,
				   struct account *a, const char *node)
{
	unsigned n = 0;

	account_foreach_session(a, s) {
		if (s->available && caps_wants_notify(s, node)) {
			send_to(srv, r, s->full);
			n++;
		}
	}
	return n;
}

static struct account *loaded_account(struct server *srv, const char *bare)
{
	struct account *a = hashmap_get(srv->accounts, bare);
	return a != NULL && a->loaded ? a : NULL;
}

static void send_to_subscriber(struct server *srv, struct recipients *r,
			       struct account *owner,
			       const struct pep_node *n, const char *sub)
{
	const char *slash = strchr(sub, '/');
	char *bare = slash != NULL ? xstrndup(sub, (size_t)(slash - sub))
				   : xstrdup(sub);
	struct account *ca;
	struct session *s;

	if (pep_access_check(owner, n, bare) != PEP_ALLOWED)
		goto out;
	if (slash != NULL) {
		s = session_find(srv, sub);
		if (s != NULL && s->available)
			send_to(srv, r, sub);
		goto out;
	}
	ca = loaded_account(srv, bare);
	if (ca == NULL || send_to_interested(srv, r, ca, n->name) == 0)
		send_to(srv, r, bare);
out:
	free(bare);
}

static void notify(struct server *srv, struct account *a,
		   const struct pep_node *n, const struct xml_node *msg)
{
	struct recipients r = { .seen = hashmap_new(), .msg = msg };
	size_t pos = 0;
	const char *key;
	void *value;

	pep_new_id(r.id);
	send_to_interested(srv, &r, a, n->name);
	while (hashmap_next(a->roster, &pos, &key, &value)) {
		const struct roster_entry *e = value;
		struct account *ca;

		if (!has_from(e->sub) ||
		    pep_access_check(a, n, e->jid) != PEP_ALLOWED)
			continue;
		if ((ca = loaded_account(srv, e->jid)) != NULL)
			send_to_interested(srv, &r, ca, n->name);
	}
	for (size_t i = 0; i < n->nsubs; i++)
		send_to_subscriber(srv, &r, a, n, n->subs[i]);
	hashmap_free(r.seen);
}

/* <message from=owner type=...><event xmlns=...#event/></message> */
static struct xml_node *event_message(struct account *a,
				      const struct pep_node *n,
				      struct xml_node **event_r)
{
	struct xml_node *msg = stanza_new("message", a->bare, NULL,
					  n->cfg.type_normal ? "normal"
							     : "headline",
					  NULL);

	*event_r = xml_add_child(msg, "event", NS_PUBSUB_EVENT);
	return msg;
}

void pep_notify_item(struct server *srv, struct account *a,
		     const struct pep_node *n, const char *id,
		     const struct xml_node *payload)
{
	struct xml_node *msg, *event, *items, *el;

	if (!n->cfg.deliver_notifications)
		return;
	msg = event_message(a, n, &event);
	items = xml_add_child(event, "items", NULL);
	xml_set_attr(items, "node", n->name);
	el = xml_add_child(items, payload != NULL ? "item" : "retract", NULL);
	xml_set_attr(el, "id", id);
	if (payload != NULL && n->cfg.deliver_payloads)
		xml_copy_into(el, payload);
	notify(srv, a, n, msg);
	xml_free(msg);
}

void pep_notify_node(struct server *srv, struct account *a,
		     const struct pep_node *n, const char *what)
{
	struct xml_node *msg, *event, *el;

	if (!n->cfg.deliver_notifications)
		return;
	msg = event_message(a, n, &event);
	el = xml_add_child(event, what, NULL);
	xml_set_attr(el, "node", n->name);
	/* §8.2.5: the configuration itself when payloads are delivered. */
	if (strcmp(what, "configuration") == 0 && n->cfg.deliver_payloads) {
		struct xml_node *form = pep_config_form(&n->cfg, "result");
		xml_copy_into(el, form);
		xml_free(form);
	}
	notify(srv, a, n, msg);
	xml_free(msg);
}

/* ---- the last published item ---- */

#define STAMP_MAX 64
static void format_stamp(int64_t us, char out[STAMP_MAX])
{
	time_t secs = (time_t)(us / 1000000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(out, STAMP_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (long)(us % 1000000));
}

struct last {
	struct server *srv;
	char *owner, *node, *to;
	bool payloads, normal;
	/* Sent on presence: only while that resource is still available. */
	bool if_available;
};

static void last_read(void *ctx, int result, const struct pep_item *items,
		      size_t n)
{
	struct last *l = ctx;
	struct xml_node *msg, *el, *delay;
	struct session *s;
	char id[33], stamp[STAMP_MAX];

	if (result != 0 || n == 0)
		goto out;
	if (l->if_available) {
		s = session_find(l->srv, l->to);
		if (s == NULL || !s->available)
			goto out;
	}
	pep_new_id(id);
	msg = stanza_new("message", l->owner, l->to,
			 l->normal ? "normal" : "headline", id);
	el = xml_add_child(xml_add_child(msg, "event", NS_PUBSUB_EVENT),
			   "items", NULL);
	xml_set_attr(el, "node", l->node);
	pep_item_xml(el, NS_PUBSUB_EVENT, &items[n - 1], l->payloads);
	/* XEP-0163 §4.3.4: stamped with when it was published. */
	delay = xml_add_child(msg, "delay", NS_DELAY);
	xml_set_attr(delay, "from", l->owner);
	format_stamp(items[n - 1].stamp_us, stamp);
	xml_set_attr(delay, "stamp", stamp);
	router_route(l->srv, msg);
out:
	free(l->owner);
	free(l->node);
	free(l->to);
	free(l);
}

static void send_last(struct server *srv, struct account *a,
		      const struct pep_node *n, const char *to,
		      bool if_available)
{
	struct last *l;

	if (!n->cfg.deliver_notifications || n->cfg.send_last == PEP_SEND_NEVER ||
	    srv->shutting_down)
		return;
	l = xcalloc(1, sizeof(*l));
	l->srv = srv;
	l->owner = xstrdup(a->bare);
	l->node = xstrdup(n->name);
	l->to = xstrdup(to);
	l->payloads = n->cfg.deliver_payloads;
	l->normal = n->cfg.type_normal;
	l->if_available = if_available;
	pep_read_items(srv, a, n->name, NULL, 0, 1, last_read, l);
}

void pep_send_last(struct server *srv, struct account *a,
		   const struct pep_node *n, const char *to)
{
	send_last(srv, a, n, to, false);
}

/* One newly available (or newly interested) resource, and the owners
 * whose nodes it may want. */
struct interest {
	struct server *srv;
	char *full;         /* the resource */
	char *bare;         /* its account */
	struct caps_notify *now, *before;
	unsigned pending;   /* owners still loading */
};

static void interest_done(struct interest *in)
{
	if (--in->pending > 0)
		return;
	caps_notify_unref(in->now);
	caps_notify_unref(in->before);
	free(in->full);
	free(in->bare);
	free(in);
}

static void owner_ready(void *ctx, struct account *a, struct pep_account *pa)
{
	struct interest *in = ctx;
	size_t pos = 0;
	void *value;

	if (pa == NULL || !pep_shares_presence(a, in->bare))
		goto out;
	while (hashmap_next(pa->nodes, &pos, NULL, &value)) {
		const struct pep_node *n = value;

		if (n->cfg.send_last != PEP_SEND_ON_SUB_AND_PRESENCE ||
		    !caps_notify_has(in->now, n->name) ||
		    (in->before != NULL &&
		     caps_notify_has(in->before, n->name)) ||
		    pep_access_check(a, n, in->bare) != PEP_ALLOWED)
			continue;
		send_last(in->srv, a, n, in->full, true);
	}
out:
	account_unref(a);
	interest_done(in);
}

void pep_session_interest(struct session *s, const struct caps_notify *before)
{
	const struct caps_notify *now = caps_session_notify(s);
	struct account *a = s->account;
	struct interest *in;
	size_t pos = 0;
	const char *key;
	void *value;

	if (!s->available || now == NULL || s->srv->shutting_down)
		return;
	in = xcalloc(1, sizeof(*in));
	in->srv = s->srv;
	in->full = xstrdup(s->full);
	in->bare = xstrdup(a->bare);
	in->now = caps_notify_ref(now);
	in->before = caps_notify_ref(before);
	/* The account's own nodes (XEP-0163 §4.3.4 "including the account
	 * owner itself"), and those of every contact whose presence the
	 * user receives: those contacts share presence with it. */
	in->pending = 2;    /* this call's own, dropped at the end */
	pep_account_get(s->srv, a->bare, owner_ready, in);
	while (hashmap_next(a->roster, &pos, &key, &value)) {
		const struct roster_entry *e = value;
		char *domain = strchr(e->jid, '@');

		if (!has_to(e->sub) || domain == NULL ||
		    !server_is_local_domain(s->srv, domain + 1))
			continue;
		in->pending++;
		pep_account_get(s->srv, e->jid, owner_ready, in);
	}
	interest_done(in);
}

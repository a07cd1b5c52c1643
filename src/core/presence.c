/* Presence (RFC 6121 §3, §4, §8.5): the subscription state machine of
 * Appendix A, probes, broadcast and directed presence.
 *
 * Two directions, as in the RFC:
 * - outbound: presence_from_session(), a stanza a local user sent; the
 *   user's account is loaded and its roster changes at once;
 * - inbound: presence_to_account(), a stanza for a local account from
 *   anyone; the account is fetched with account_get (it may be offline).
 *
 * A roster entry holds the Appendix A state as sub (None/To/From/Both),
 * ask (Pending Out) and pending_in (Pending In). An entry that exists only
 * to remember an inbound request from someone the user never added is
 * `hidden`: it is not shown, not pushed, and goes away with the request. */
#include "core/module.h"
#include "core/presence.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/account.h"
#include "core/jid.h"
#include "core/roster.h"
#include "core/router.h"
#include "core/session.h"
#include "core/stanza.h"
#include "server.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"

/* How many entities one session may have sent directed presence to (we
 * must remember each to send it unavailable later); and how many entries
 * (hidden ones included) inbound requests may grow a roster to. */
#define DIRECTED_MAX 1000
#define ROSTER_ENTRIES_MAX 10000

static bool has_from(enum roster_sub sub)
{
	return sub == ROSTER_SUB_FROM || sub == ROSTER_SUB_BOTH;
}

static bool has_to(enum roster_sub sub)
{
	return sub == ROSTER_SUB_TO || sub == ROSTER_SUB_BOTH;
}

static enum roster_sub sub_add_from(enum roster_sub sub)
{
	return has_to(sub) ? ROSTER_SUB_BOTH : ROSTER_SUB_FROM;
}

static enum roster_sub sub_add_to(enum roster_sub sub)
{
	return has_from(sub) ? ROSTER_SUB_BOTH : ROSTER_SUB_TO;
}

static enum roster_sub sub_remove_from(enum roster_sub sub)
{
	return has_to(sub) ? ROSTER_SUB_TO : ROSTER_SUB_NONE;
}

static enum roster_sub sub_remove_to(enum roster_sub sub)
{
	return has_from(sub) ? ROSTER_SUB_FROM : ROSTER_SUB_NONE;
}

static bool type_is(const char *type, const char *name)
{
	return type != NULL && strcmp(type, name) == 0;
}

static bool is_subscription_type(const char *type)
{
	return type_is(type, "subscribe") || type_is(type, "subscribed") ||
	       type_is(type, "unsubscribe") || type_is(type, "unsubscribed");
}

/* Routes a copy of `pres` with new from/to (from NULL: keep it). */
static void route_copy(struct server *srv, const struct xml_node *pres,
		       const char *from, const char *to)
{
	struct xml_node *copy = xml_copy(pres);

	if (from != NULL)
		xml_set_attr(copy, "from", from);
	xml_set_attr(copy, "to", to);
	router_route(srv, copy);
}

static void route_new(struct server *srv, const char *from, const char *to,
		      const char *type)
{
	router_route(srv, stanza_new("presence", from, to, type, NULL));
}

/* The bare JIDs of the roster entries that `want` accepts, copied: what we
 * route to may come back into this account before we are done. */
static char **collect_contacts(struct account *a,
			       bool (*want)(const struct roster_entry *),
			       size_t *n_r)
{
	char **list = NULL;
	size_t n = 0, cap = 0, pos = 0;
	const char *key;
	void *value;

	while (hashmap_next(a->roster, &pos, &key, &value)) {
		const struct roster_entry *e = value;

		if (!want(e))
			continue;
		list = xgrow(list, &cap, n + 1, sizeof(*list));
		list[n++] = xstrdup(e->jid);
	}
	*n_r = n;
	return list;
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static bool want_from(const struct roster_entry *e)
{
	return has_from(e->sub);
}

static bool want_to(const struct roster_entry *e)
{
	return has_to(e->sub);
}

/* Sends `pres` (from each contact's point of view: the user's full JID)
 * to every contact subscribed to the user's presence. */
static void send_to_subscribers(struct session *s, const struct xml_node *pres)
{
	size_t n;
	char **list = collect_contacts(s->account, want_from, &n);

	for (size_t i = 0; i < n; i++)
		route_copy(s->srv, pres, NULL, list[i]);
	free_list(list, n);
}

/* Delivers `pres` to every available resource of the account, `except`
 * one (may be NULL), addressed to each resource's full JID. */
static void send_to_own_resources(struct account *a,
				  const struct xml_node *pres,
				  const struct session *except)
{
	struct xml_node *copy = xml_copy(pres);

	account_foreach_session(a, o) {
		if (o == except || !o->available)
			continue;
		xml_set_attr(copy, "to", o->full);
		session_send(o, copy);
	}
	xml_free(copy);
}

/* Sends the last presence of each available resource of the account to
 * `to` (§3.1.5, §4.3.2). Returns how many were sent. */
static unsigned send_current_presence(struct account *a, const char *to)
{
	unsigned n = 0;

	account_foreach_session(a, s) {
		if (!s->available || s->presence == NULL)
			continue;
		route_copy(a->srv, s->presence, s->full, to);
		n++;
	}
	return n;
}

/* Sends unavailable presence from each available resource of the account
 * to `to` (§3.2.2, §3.3.3): `to` may no longer see the user. */
static void send_unavailable_from_all(struct account *a, const char *to)
{
	account_foreach_session(a, s) {
		if (s->available)
			route_new(a->srv, s->full, to, "unavailable");
	}
}

/* RFC 6120 §8.3 error back to the sending session. */
static void bounce(struct session *s, const struct xml_node *pres,
		   const char *condition, const char *text)
{
	struct xml_node *err = stanza_error_reply(pres, condition, text);

	if (err == NULL)
		return;
	/* A malformed 'to' cannot be the error's 'from': the error then
	 * comes from the server. */
	if (strcmp(condition, "jid-malformed") == 0)
		xml_set_attr(err, "from", NULL);
	xml_set_attr(err, "to", s->full);
	session_send(s, err);
	xml_free(err);
}

/* §4.7.2.3: the priority is an integer in -128..127; anything else is
 * treated as 0 (Prosody does the same). */
static int presence_priority(const struct xml_node *pres)
{
	const char *text = xml_child_text(pres, "priority", XML_NS_CLIENT);
	char *end;
	long v;

	if (text == NULL)
		return 0;
	errno = 0;
	v = strtol(text, &end, 10);
	if (end == text || *end != '\0' || errno != 0)
		return 0;
	if (v < -128)
		return -128;
	if (v > 127)
		return 127;
	return (int)v;
}

/* ---- Outbound broadcast: §4.2.2, §4.4.2, §4.5.2 ---- */

/* §4.2.2 (after broadcasting initial presence): the new resource learns
 * the presence of the user's other resources, probes go to the contacts
 * the user is subscribed to (§4.3.1), and inbound subscription requests
 * that waited for an available resource are delivered (§3.1.3). */
static void initial_presence_extras(struct session *s)
{
	struct account *a = s->account;
	struct xml_node *copy;
	size_t n, pos = 0;
	char **list;
	const char *key;
	void *value;

	account_foreach_session(a, o) {
		if (o == s || !o->available || o->presence == NULL)
			continue;
		copy = xml_copy(o->presence);
		xml_set_attr(copy, "from", o->full);
		xml_set_attr(copy, "to", s->full);
		session_send(s, copy);
		xml_free(copy);
	}

	/* §4.3.1: probes come from the user's bare JID. */
	list = collect_contacts(a, want_to, &n);
	for (size_t i = 0; i < n; i++)
		route_new(s->srv, a->bare, list[i], "probe");
	free_list(list, n);

	while (hashmap_next(a->roster, &pos, &key, &value)) {
		const struct roster_entry *e = value;

		if (!e->pending_in)
			continue;
		copy = stanza_new("presence", e->jid, a->bare, "subscribe",
				  NULL);
		session_send(s, copy);
		xml_free(copy);
	}
}

/* §4.2.2 initial presence and §4.4.2 subsequent presence: to every
 * subscriber, and to all of the user's available resources including this
 * one (an entity is implicitly subscribed to its own presence). Entities
 * that only got directed presence are not sent updates (§4.6). */
static void broadcast_available(struct session *s, struct xml_node *pres)
{
	bool initial = !s->available;

	modules_presence_broadcast(s->srv, s, pres);
	s->available = true;
	s->priority = presence_priority(pres);
	xml_free(s->presence);
	s->presence = xml_copy(pres);

	send_to_subscribers(s, pres);
	send_to_own_resources(s->account, pres, NULL);
	if (initial) {
		initial_presence_extras(s);
		modules_initial_presence(s->srv, s);
	}
}

/* Sends `pres` (unavailable) to everyone in s->directed that the
 * subscriber broadcast did not already reach, then forgets the set. */
static void directed_unavailable(struct session *s, const struct xml_node *pres)
{
	size_t pos = 0;
	const char *key;
	void *value;

	if (s->directed == NULL)
		return;
	while (hashmap_next(s->directed, &pos, &key, &value)) {
		char *bare = jid_normalize_bare(key);
		const struct roster_entry *e =
			bare ? account_roster_find(s->account, bare) : NULL;

		/* A recipient that became a subscriber meanwhile already
		 * got the broadcast. */
		if (!(s->available && e != NULL && has_from(e->sub)))
			route_copy(s->srv, pres, NULL, key);
		free(bare);
	}
	hashmap_free(s->directed);
	s->directed = NULL;
}

/* §4.5.2 unavailable: to every subscriber, to the user's available
 * resources, and to every entity that got directed presence (§4.6.3).
 * `reflect`: also to the sending resource (not when it is going away). */
static void broadcast_unavailable(struct session *s, struct xml_node *pres,
				  bool reflect)
{
	if (s->available) {
		send_to_subscribers(s, pres);
		send_to_own_resources(s->account, pres, reflect ? NULL : s);
	}
	directed_unavailable(s, pres);
	s->available = false;
	s->priority = 0;
	xml_free(s->presence);
	s->presence = NULL;
}

/* ---- Outbound directed presence: §4.6.3 ---- */

static void directed_presence(struct session *s, struct xml_node *pres,
			      const struct jid *to, bool available)
{
	char *key = jid_full(to);
	char *bare = jid_bare(to);
	const struct roster_entry *e = account_roster_find(s->account, bare);

	/* Remember who must get unavailable at the end: everyone the
	 * broadcast will not reach, which is everyone while the session
	 * is not available. */
	if (!s->available || e == NULL || !has_from(e->sub)) {
		if (available) {
			if (s->directed == NULL)
				s->directed = hashmap_new();
			if (hashmap_get(s->directed, key) == NULL &&
			    hashmap_count(s->directed) >= DIRECTED_MAX) {
				bounce(s, pres, "resource-constraint",
				       "Too many directed presence recipients");
				xml_free(pres);
				goto out;
			}
			hashmap_put(s->directed, key, s); /* any non-NULL value */
		} else if (s->directed != NULL) {
			hashmap_remove(s->directed, key);
		}
	}
	xml_set_attr(pres, "to", key);
	router_route(s->srv, pres);
out:
	free(key);
	free(bare);
}

/* ---- Outbound subscription stanzas: §3, Appendix A.2 ---- */

/* §3.1.2, A.2.1: the request is always routed (the contact's server
 * answers for a subscription that already exists, §3.1.3); "None" and
 * "From" gain Pending Out. The push follows the routing. */
static void outbound_subscribe(struct session *s, struct xml_node *pres,
			       const char *contact)
{
	struct account *a = s->account;
	struct roster_entry *e = account_roster_find(a, contact);
	bool changed = false;

	if (e == NULL) {
		if (hashmap_count(a->roster) >= ROSTER_ENTRIES_MAX) {
			bounce(s, pres, "resource-constraint",
			       "The roster is full");
			xml_free(pres);
			return;
		}
		e = account_roster_ensure(a, contact);
		changed = true;
	}
	/* Asking for a contact's presence puts the contact on the roster. */
	if (e->hidden) {
		e->hidden = false;
		changed = true;
	}
	if (!has_to(e->sub) && !e->ask) {
		e->ask = true;
		changed = true;
	}
	if (changed)
		account_roster_save(a, e);
	router_route(s->srv, pres);
	if (changed)
		roster_push(a, e, NULL);
}

/* §3.3.2, A.2.2: routed; To and Pending Out are cancelled. */
static void outbound_unsubscribe(struct session *s, struct xml_node *pres,
				 const char *contact)
{
	struct account *a = s->account;
	struct roster_entry *e = account_roster_find(a, contact);
	bool changed = e != NULL && (has_to(e->sub) || e->ask);

	if (changed) {
		e->sub = sub_remove_to(e->sub);
		e->ask = false;
		account_roster_save(a, e);
	}
	router_route(s->srv, pres);
	if (changed)
		roster_push(a, e, NULL);
}

/* §3.1.5, A.2.3: approving a request that is pending (Pending In) makes
 * From; otherwise the stanza is not routed (we keep no pre-approvals,
 * §3.4 is optional). After the push, the contact gets the user's current
 * presence from each available resource. */
static void outbound_subscribed(struct session *s, struct xml_node *pres,
				const char *contact)
{
	struct account *a = s->account;
	struct roster_entry *e = account_roster_find(a, contact);

	if (e == NULL || !e->pending_in) {
		xml_free(pres);
		return;
	}
	e->pending_in = false;
	e->hidden = false;
	e->sub = sub_add_from(e->sub);
	account_roster_save(a, e);
	router_route(s->srv, pres);
	roster_push(a, e, NULL);
	send_current_presence(a, contact);
}

/* §3.2.2, A.2.4: cancelling From or refusing Pending In. The contact then
 * gets unavailable from each available resource. A hidden entry that held
 * only the refused request disappears. */
static void outbound_unsubscribed(struct session *s, struct xml_node *pres,
				  const char *contact)
{
	struct account *a = s->account;
	struct roster_entry *e = account_roster_find(a, contact);
	bool had_from;

	if (e == NULL || (!has_from(e->sub) && !e->pending_in)) {
		xml_free(pres);
		return;
	}
	had_from = has_from(e->sub);
	e->sub = sub_remove_from(e->sub);
	e->pending_in = false;
	if (e->hidden) {
		account_roster_remove(a, contact);
		e = NULL;
	} else {
		account_roster_save(a, e);
	}
	router_route(s->srv, pres);
	if (e != NULL)
		roster_push(a, e, NULL);
	if (had_from)
		send_unavailable_from_all(a, contact);
}

static void outbound_subscription(struct session *s, struct xml_node *pres,
				  const char *type, const struct jid *to)
{
	char *contact = jid_bare(to);

	/* No subscription to oneself: the user's resources see each other
	 * anyway (§4.2.2). */
	if (strcmp(contact, s->account->bare) == 0) {
		xml_free(pres);
		free(contact);
		return;
	}
	/* §3.1.2: stamped with the user's bare JID, addressed to the
	 * contact's bare JID. */
	xml_set_attr(pres, "from", s->account->bare);
	xml_set_attr(pres, "to", contact);

	if (strcmp(type, "subscribe") == 0)
		outbound_subscribe(s, pres, contact);
	else if (strcmp(type, "unsubscribe") == 0)
		outbound_unsubscribe(s, pres, contact);
	else if (strcmp(type, "subscribed") == 0)
		outbound_subscribed(s, pres, contact);
	else
		outbound_unsubscribed(s, pres, contact);
	free(contact);
}

void presence_from_session(struct session *s, struct xml_node *pres)
{
	const char *type = xml_attr(pres, "type");
	const char *to_attr = xml_attr(pres, "to");
	const char *error;
	struct jid to;

	if (s->account == NULL) {
		xml_free(pres);
		return;
	}

	if (to_attr == NULL) {
		if (type == NULL) {
			broadcast_available(s, pres);
		} else if (strcmp(type, "unavailable") == 0) {
			broadcast_unavailable(s, pres, true);
		} else if (strcmp(type, "error") != 0 &&
			   strcmp(type, "probe") != 0) {
			bounce(s, pres, "bad-request",
			       "This presence type needs a 'to'");
		}
		xml_free(pres);
		return;
	}

	if (jid_parse(to_attr, &to, &error) < 0) {
		bounce(s, pres, "jid-malformed", error);
		xml_free(pres);
		return;
	}

	if (type == NULL || strcmp(type, "unavailable") == 0) {
		directed_presence(s, pres, &to, type == NULL);
	} else if (is_subscription_type(type)) {
		outbound_subscription(s, pres, type, &to);
	} else if (strcmp(type, "error") == 0) {
		router_route(s->srv, pres);
	} else if (strcmp(type, "probe") == 0) {
		/* Probes are the server's business (§4.3). */
		xml_free(pres);
	} else {
		bounce(s, pres, "bad-request", "Unknown presence type");
		xml_free(pres);
	}
	jid_free(&to);
}

void presence_session_end(struct session *s)
{
	struct xml_node *pres;

	if (s->available || s->directed != NULL) {
		pres = stanza_new("presence", s->full, NULL, "unavailable",
				  NULL);
		broadcast_unavailable(s, pres, false);
		xml_free(pres);
	}
	xml_free(s->presence);
	s->presence = NULL;
	if (s->directed != NULL)
		hashmap_free(s->directed);
	s->directed = NULL;
	s->available = false;
}

/* ---- Inbound: §3.1.3, §3.1.6, §3.2.3, §3.3.3, §4.3.2, §8.5 ---- */

struct inbound {
	struct server *srv;
	struct xml_node *pres;
	struct jid to, from;
	char *from_bare;
};

/* Delivers to every available resource (§8.5.2.1.1). */
static void deliver_available(struct account *a, const struct xml_node *pres)
{
	account_foreach_session(a, s) {
		if (s->available)
			session_send(s, pres);
	}
}

/* Subscription state notifications go to the interested resources
 * (§3.1.6, §3.2.3, §3.3.3); an available resource that never asked for
 * the roster gets them too, since it may show subscriptions. */
static void deliver_interested(struct account *a, const struct xml_node *pres)
{
	account_foreach_session(a, s) {
		if (s->interested || s->available)
			session_send(s, pres);
	}
}

/* §3.1.3, A.3.1. */
static void inbound_subscribe(struct account *a, struct inbound *in)
{
	struct roster_entry *e = account_roster_find(a, in->from_bare);

	/* Already subscribed: answer for the user (§3.1.3), and send the
	 * current presence as a probe would get it (§4.3.2; Prosody does
	 * the same): the requester's state was evidently lost. */
	if (e != NULL && has_from(e->sub)) {
		route_new(a->srv, a->bare, in->from_bare, "subscribed");
		if (send_current_presence(a, in->from_bare) == 0)
			route_new(a->srv, a->bare, in->from_bare,
				  "unavailable");
		return;
	}
	/* Pending In already: no state change, not delivered again. */
	if (e != NULL && e->pending_in)
		return;
	if (e == NULL) {
		if (hashmap_count(a->roster) >= ROSTER_ENTRIES_MAX) {
			log_warn("%s: roster full, subscription request "
				 "from %s dropped", a->bare, in->from_bare);
			return;
		}
		/* A.1: "None + Pending In" creates no roster item. */
		e = account_roster_ensure(a, in->from_bare);
		e->hidden = true;
	}
	e->pending_in = true;
	account_roster_save(a, e);
	/* With no available resource the request waits in the roster and
	 * goes out with the next initial presence. */
	deliver_available(a, in->pres);
}

/* §3.1.6, A.3.3: only an approval the user asked for counts. The stanza
 * is delivered before the push. */
static void inbound_subscribed(struct account *a, struct inbound *in)
{
	struct roster_entry *e = account_roster_find(a, in->from_bare);

	if (e == NULL || !e->ask || has_to(e->sub))
		return;
	e->ask = false;
	e->sub = sub_add_to(e->sub);
	account_roster_save(a, e);
	deliver_interested(a, in->pres);
	roster_push(a, e, NULL);
}

/* §3.3.3, A.3.2: the contact no longer wants the user's presence (or
 * withdraws its request). It gets unavailable from each available
 * resource of the user. */
static void inbound_unsubscribe(struct account *a, struct inbound *in)
{
	struct roster_entry *e = account_roster_find(a, in->from_bare);
	bool had_from;

	if (e == NULL || (!has_from(e->sub) && !e->pending_in))
		return;
	had_from = has_from(e->sub);
	e->sub = sub_remove_from(e->sub);
	e->pending_in = false;
	if (e->hidden) {
		/* The request was the only trace: forget it. */
		account_roster_remove(a, in->from_bare);
		e = NULL;
	} else {
		account_roster_save(a, e);
	}
	deliver_interested(a, in->pres);
	if (e != NULL)
		roster_push(a, e, NULL);
	if (had_from)
		send_unavailable_from_all(a, in->from_bare);
}

/* §3.2.3, A.3.4: the contact refuses or cancels the user's subscription.
 * The contact's unavailable presence follows from its own server
 * (§3.2.2). */
static void inbound_unsubscribed(struct account *a, struct inbound *in)
{
	struct roster_entry *e = account_roster_find(a, in->from_bare);

	if (e == NULL || (!has_to(e->sub) && !e->ask))
		return;
	e->sub = sub_remove_to(e->sub);
	e->ask = false;
	account_roster_save(a, e);
	deliver_interested(a, in->pres);
	roster_push(a, e, NULL);
}

/* §4.3.2: a subscriber gets the last presence of each available resource
 * (or unavailable from the bare JID when there is none); anyone else gets
 * "unsubscribed", which makes its server cancel a stale subscription. */
static void inbound_probe(struct account *a, struct inbound *in)
{
	const struct roster_entry *e = account_roster_find(a, in->from_bare);
	char *prober;

	if (e == NULL || !has_from(e->sub)) {
		route_new(a->srv, a->bare, in->from_bare, "unsubscribed");
		return;
	}
	/* Probes come from a bare JID (§4.3.1); answer whatever sent it. */
	prober = jid_full(&in->from);
	if (send_current_presence(a, prober) == 0)
		route_new(a->srv, a->bare, prober, "unavailable");
	free(prober);
}

/* §8.5.2.1.1 (bare JID: every available resource), §8.5.3 (full JID: that
 * resource if it is connected, else ignored). */
static void inbound_presence(struct account *a, struct inbound *in,
			     bool error)
{
	struct session *s;
	char *full;

	if (in->to.resource == NULL) {
		if (!error)
			deliver_available(a, in->pres);
		return;
	}
	full = jid_full(&in->to);
	s = session_find(a->srv, full);
	if (s != NULL && s->account == a)
		session_send(s, in->pres);
	free(full);
}

/* §8.5.1: the account does not exist. We answer subscription requests and
 * probes with "unsubscribed" (the RFC's option (b)), which tells the
 * sender to stop; everything else is dropped. */
static void inbound_no_such_user(struct inbound *in, const char *type)
{
	char *bare;

	if (!type_is(type, "subscribe") && !type_is(type, "probe"))
		return;
	bare = jid_bare(&in->to);
	route_new(in->srv, bare, in->from_bare, "unsubscribed");
	free(bare);
}

static void inbound_free(struct inbound *in)
{
	xml_free(in->pres);
	jid_free(&in->to);
	jid_free(&in->from);
	free(in->from_bare);
	free(in);
}

static void inbound_account_ready(void *ctx, struct account *a)
{
	struct inbound *in = ctx;
	const char *type = xml_attr(in->pres, "type");

	if (a == NULL)
		goto out;
	if (!a->exists) {
		inbound_no_such_user(in, type);
		goto out;
	}
	if (!a->loaded) {
		log_warn("%s: roster not loaded, presence from %s dropped",
			 a->bare, in->from_bare);
		goto out;
	}
	/* Subscription stanzas and probes are about bare JIDs (§3.1.3:
	 * a full 'to' is treated as the bare JID). */
	if (is_subscription_type(type)) {
		if (strcmp(in->from_bare, a->bare) == 0)
			goto out;
		xml_set_attr(in->pres, "from", in->from_bare);
		xml_set_attr(in->pres, "to", a->bare);
		if (strcmp(type, "subscribe") == 0)
			inbound_subscribe(a, in);
		else if (strcmp(type, "subscribed") == 0)
			inbound_subscribed(a, in);
		else if (strcmp(type, "unsubscribe") == 0)
			inbound_unsubscribe(a, in);
		else
			inbound_unsubscribed(a, in);
	} else if (type_is(type, "probe")) {
		inbound_probe(a, in);
	} else if (type == NULL || strcmp(type, "unavailable") == 0) {
		inbound_presence(a, in, false);
	} else if (strcmp(type, "error") == 0) {
		inbound_presence(a, in, true);
	}
	/* Unknown types are dropped: answering could loop between
	 * servers. */
out:
	if (a != NULL)
		account_unref(a);
	inbound_free(in);
}

void presence_to_account(struct server *srv, struct xml_node *pres,
			 const struct jid *to, const struct jid *from)
{
	struct inbound *in;
	char *bare;

	if (to == NULL || from == NULL || to->local == NULL) {
		xml_free(pres);
		return;
	}
	in = xcalloc(1, sizeof(*in));
	in->srv = srv;
	in->pres = pres;
	jid_copy(&in->to, to);
	jid_copy(&in->from, from);
	in->from_bare = jid_bare(from);

	bare = jid_bare(to);
	account_get(srv, bare, inbound_account_ready, in);
	free(bare);
}

#include "core/router.h"

#include <stdlib.h>
#include <string.h>

#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "core/presence.h"
#include "core/session.h"
#include "core/stanza.h"
#include "server.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"

static bool type_is(const struct xml_node *st, const char *type)
{
	const char *t = xml_attr(st, "type");
	return t != NULL && strcmp(t, type) == 0;
}

static bool is_iq_request(const struct xml_node *st)
{
	return stanza_kind(st) == STANZA_IQ &&
	       (type_is(st, "get") || type_is(st, "set"));
}

static const char *message_type(const struct xml_node *st)
{
	const char *t = xml_attr(st, "type");
	return t ? t : "normal";
}

void router_bounce(struct server *srv, const struct xml_node *stanza,
		   const char *condition, const char *text)
{
	struct xml_node *err = stanza_error_reply(stanza, condition, text);

	if (err != NULL)
		router_route(srv, err);
}

/* Sessions one message reaches at most, as reported to modules: more
 * than this many resources of one account at one priority is not a real
 * case, and the hook must not allocate on the routing path. */
#define ROUTED_MAX 64

/* Deliver to one local session. */
static void deliver(struct session *s, struct xml_node *st)
{
	session_send(s, st);
	if (stanza_kind(st) == STANZA_MESSAGE)
		modules_message_routed(s->srv, st, &s, 1);
	xml_free(st);
}

/* RFC 6121 §8.5.2.1.1: a message for a bare JID goes to the available
 * resources of highest non-negative priority; "chat" and "normal" to all
 * of them when several tie (we do not try to guess the "most available"),
 * "headline" to every non-negative one. */
static void deliver_message_bare(struct server *srv, struct xml_node *st,
				 const struct jid *to, struct account *a)
{
	const char *type = message_type(st);
	bool headline = strcmp(type, "headline") == 0;
	struct session *routed[ROUTED_MAX];
	int best = -1;
	unsigned n = 0;

	if (strcmp(type, "groupchat") == 0) {
		router_bounce(srv, st, "service-unavailable", NULL);
		xml_free(st);
		return;
	}
	if (!stanza_is_error(st))
		modules_message_inbound(srv, st, to);
	if (a != NULL)
		account_foreach_session(a, s)
			if (s->available && s->priority >= 0 && s->priority > best)
				best = s->priority;
	if (best >= 0)
		account_foreach_session(a, s)
			if (s->available && s->priority >= 0 &&
			    (headline || s->priority == best)) {
				session_send(s, st);
				if (n < ROUTED_MAX)
					routed[n] = s;
				n++;
			}
	modules_message_routed(srv, st, routed, n < ROUTED_MAX ? n : ROUTED_MAX);
	if (n == 0 && !headline && !stanza_is_error(st)) {
		/* No available resource: a module may store it (XEP-0160);
		 * otherwise the sender learns it did not arrive (RFC 6121
		 * §8.5.2.2.1). */
		if (modules_message_undelivered(srv, st, to))
			return;
		router_bounce(srv, st, "service-unavailable", NULL);
	}
	xml_free(st);
}

/* Presence to an account, bare or full JID alike (RFC 6121 §4.3, §4.5):
 * presence.c decides, for which it needs the sender parsed. */
static void route_presence(struct server *srv, struct xml_node *st,
			   const struct jid *to)
{
	struct jid from;
	const char *error;

	if (jid_parse(xml_attr(st, "from"), &from, &error) == 0) {
		presence_to_account(srv, st, to, &from);
		jid_free(&from);
	} else {
		xml_free(st);
	}
}

struct bare_iq {
	struct xml_node *st;
	struct jid to;
};

static void iq_account_loaded(void *ctx, struct account *a)
{
	struct bare_iq *b = ctx;
	struct server *srv = a->srv;
	struct jid from;
	const char *error;

	if (!a->exists) {
		router_bounce(srv, b->st, "service-unavailable", NULL);
	} else if (jid_parse(xml_attr(b->st, "from"), &from, &error) == 0) {
		struct session *s = session_find(srv, xml_attr(b->st, "from"));
		modules_dispatch_iq(srv, b->st, &from, &b->to, s, IQ_SCOPE_ACCOUNT);
		jid_free(&from);
	}
	account_unref(a);
	xml_free(b->st);
	jid_free(&b->to);
	free(b);
}

void router_deliver_bare(struct server *srv, struct xml_node *st,
			 const struct jid *to)
{
	char *bare = jid_bare(to);
	struct account *a = hashmap_get(srv->accounts, bare);

	switch (stanza_kind(st)) {
	case STANZA_MESSAGE:
		deliver_message_bare(srv, st, to, a && a->loaded ? a : NULL);
		break;
	case STANZA_PRESENCE:
		route_presence(srv, st, to);
		break;
	case STANZA_IQ:
		if (is_iq_request(st)) {
			/* Answered by the server on the account's behalf
			 * (RFC 6121 §8.5.1), once we know it exists. */
			struct bare_iq *b = xcalloc(1, sizeof(*b));
			b->st = st;
			jid_copy(&b->to, to);
			free(b->to.resource);
			b->to.resource = NULL;
			account_get(srv, bare, iq_account_loaded, b);
		} else {
			xml_free(st); /* results and errors to a bare JID: nobody asked */
		}
		break;
	case STANZA_OTHER:
		xml_free(st);
		break;
	}
	free(bare);
}

static void route_to_full(struct server *srv, struct xml_node *st,
			  const struct jid *to, const char *to_str)
{
	struct session *s = session_find(srv, to_str);
	enum stanza_kind kind = stanza_kind(st);

	if (kind == STANZA_PRESENCE) {
		route_presence(srv, st, to);
		return;
	}
	if (s != NULL) {
		if (kind == STANZA_MESSAGE && !stanza_is_error(st))
			modules_message_inbound(srv, st, to);
		deliver(s, st);
		return;
	}
	/* RFC 6121 §8.5.3.2: no such resource. */
	if (kind == STANZA_MESSAGE) {
		const char *type = message_type(st);
		if (strcmp(type, "groupchat") == 0) {
			router_bounce(srv, st, "service-unavailable", NULL);
			xml_free(st);
		} else if (strcmp(type, "headline") == 0 || stanza_is_error(st)) {
			xml_free(st);
		} else {
			router_deliver_bare(srv, st, to);
		}
		return;
	}
	if (is_iq_request(st))
		router_bounce(srv, st, "service-unavailable", NULL);
	xml_free(st);
}

static void route_to_server(struct server *srv, struct xml_node *st,
			    const struct jid *to)
{
	if (stanza_kind(st) == STANZA_IQ && !is_iq_request(st)) {
		struct jid from;
		const char *error;
		if (jid_parse(xml_attr(st, "from"), &from, &error) == 0) {
			(void)modules_iq_response(srv, st, &from);
			jid_free(&from);
		}
	} else if (is_iq_request(st)) {
		struct jid from;
		const char *error;
		if (jid_parse(xml_attr(st, "from"), &from, &error) == 0) {
			struct session *s = session_find(srv, xml_attr(st, "from"));
			modules_dispatch_iq(srv, st, &from, to, s, IQ_SCOPE_SERVER);
			jid_free(&from);
		}
	} else if (stanza_kind(st) == STANZA_MESSAGE && !stanza_is_error(st) &&
		   !type_is(st, "headline") && !type_is(st, "groupchat")) {
		/* Nobody reads messages sent to the server itself. */
		router_bounce(srv, st, "service-unavailable", NULL);
	}
	xml_free(st);
}

/* Asks the modules (XEP-0191) whether the stanza may go on. A stanza
 * without a parseable 'from' is left to the paths below. */
static bool route_filtered(struct server *srv, struct xml_node *st,
			   const struct jid *to)
{
	const char *from_str = xml_attr(st, "from");
	struct jid from;
	const char *error;
	bool stop;

	if (!modules_filter_routes(srv->modules) || from_str == NULL ||
	    jid_parse(from_str, &from, &error) != 0)
		return false;
	stop = modules_route_filter(srv, st, &from, to);
	jid_free(&from);
	return stop;
}

bool router_filter(struct server *srv, struct xml_node *st)
{
	const char *to_str = xml_attr(st, "to");
	struct jid to;
	const char *error;
	bool stop;

	if (to_str == NULL || jid_parse(to_str, &to, &error) != 0)
		return false;
	stop = route_filtered(srv, st, &to);
	jid_free(&to);
	return stop;
}

static void route(struct server *srv, struct xml_node *st, bool filter)
{
	const char *to_str = xml_attr(st, "to");
	struct jid to;
	const char *error;

	if (to_str == NULL || jid_parse(to_str, &to, &error) != 0) {
		router_bounce(srv, st, "jid-malformed", NULL);
		xml_free(st);
		return;
	}
	if (filter && route_filtered(srv, st, &to)) {
		xml_free(st);
	} else if (!server_is_local_domain(srv, to.domain)) {
		/* No server-to-server yet: the one "not here" path. */
		if (stanza_kind(st) != STANZA_PRESENCE)
			router_bounce(srv, st, "remote-server-not-found", NULL);
		xml_free(st);
	} else if (to.local == NULL) {
		if (to.resource != NULL) {
			/* domain/resource: nothing lives there. */
			if (is_iq_request(st) || stanza_kind(st) == STANZA_MESSAGE)
				router_bounce(srv, st, "service-unavailable", NULL);
			xml_free(st);
		} else {
			route_to_server(srv, st, &to);
		}
	} else if (to.resource != NULL) {
		route_to_full(srv, st, &to, to_str);
	} else {
		router_deliver_bare(srv, st, &to);
	}
	jid_free(&to);
}

void router_route(struct server *srv, struct xml_node *st)
{
	route(srv, st, true);
}

void router_route_passed(struct server *srv, struct xml_node *st)
{
	route(srv, st, false);
}

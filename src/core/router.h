/* Stanza routing (RFC 6120 §10, RFC 6121 §8). The one place that decides
 * where a stanza goes: a local session, the server itself, an account
 * (handled on its behalf), or "not here" (remote domains: no s2s yet). */
#ifndef ROOST_CORE_ROUTER_H
#define ROOST_CORE_ROUTER_H

#include <stdbool.h>

struct jid;
struct server;
struct session;
struct xml_node;

/* Routes `stanza`, whose 'from' is set to the sender's full JID (or a
 * server/account JID) and whose 'to' is set and valid. Takes ownership.
 * Errors the rules call for are sent back to the sender (never for an
 * error stanza). */
void router_route(struct server *srv, struct xml_node *stanza);

/* Whether a module's route_filter (XEP-0191) stops `stanza`, whose 'from'
 * is set: it has then answered it, and the caller frees it. For what the
 * modules see before routing (message_sent hooks): route it then with
 * router_route_passed. A missing or bad 'to' is left to
 * router_route. */
bool router_filter(struct server *srv, struct xml_node *stanza);
/* router_route for a stanza router_filter has just let through (the
 * routing path parses and asks once, not twice). */
void router_route_passed(struct server *srv, struct xml_node *stanza);

/* Sends an error reply to `stanza` (which stays the caller's) through the
 * router. Does nothing if the stanza is an error. */
void router_bounce(struct server *srv, const struct xml_node *stanza,
		   const char *condition, const char *text);

/* Delivers a stanza addressed to a local account's bare JID the way RFC
 * 6121 §8.5.2 says for its kind. Takes ownership. Used by the router and by
 * presence/roster code for stanzas they generate. */
void router_deliver_bare(struct server *srv, struct xml_node *stanza,
			 const struct jid *to);

#endif

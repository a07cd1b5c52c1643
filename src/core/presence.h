/* Presence (RFC 6121 §3, §4): the subscription state machine, probes,
 * broadcast, directed presence. */
#ifndef ROOST_CORE_PRESENCE_H
#define ROOST_CORE_PRESENCE_H

struct jid;
struct server;
struct session;
struct xml_node;

/* A presence stanza sent by a local session; 'from' is already stamped
 * with the session's full JID. Takes ownership. Without 'to' it is a
 * broadcast (initial, update, unavailable: §4.2-4.5); with a 'to' it is
 * directed presence (§4.6) or a subscription request/answer (§3), or a
 * probe (refused: clients don't probe). */
void presence_from_session(struct session *s, struct xml_node *pres);

/* A presence stanza for a local account (bare or full 'to'), from anyone
 * (a local user now, a remote server later). Takes ownership. Inbound
 * subscription handling (§3.1.3, §3.2.3, §3.3.3, §3.4.3), probes (§4.3.2)
 * and delivery of available/unavailable presence. */
void presence_to_account(struct server *srv, struct xml_node *pres,
			 const struct jid *to, const struct jid *from);

/* The session is going away: broadcast unavailable presence if it was
 * available (to contacts with subscription from/both, and to everyone it
 * sent directed presence to), and forget its presence state. */
void presence_session_end(struct session *s);

#endif

/* A session is a bound resource: a full JID that can send and receive
 * stanzas. It belongs to a stream (struct c2s) while connected; it is kept
 * apart from the stream so that a later stream-management issue can detach
 * it and resume it on another connection. */
#ifndef ROOST_CORE_SESSION_H
#define ROOST_CORE_SESSION_H

#include <stdbool.h>

#include "core/jid.h"
#include "core/module.h"

struct account;
struct sm;
struct c2s;
struct server;
struct xml_node;

struct session {
	struct server *srv;
	struct account *account;   /* holds a reference */
	struct c2s *stream;        /* NULL when detached */
	struct jid jid;            /* full JID */
	char *full;                /* jid_full(&jid) */
	/* Presence (RFC 6121 §4). */
	bool available;            /* sent initial presence, not yet unavailable */
	bool interested;           /* requested the roster: gets roster pushes */
	int priority;              /* of the last broadcast presence */
	struct xml_node *presence; /* last broadcast available presence, or NULL */
	struct hashmap *directed;  /* full/bare JIDs we sent directed presence to */
	struct session *next_in_account;
	struct sm *sm;             /* XEP-0198 state, NULL when not enabled */
	void *mod_ctx[MODULES_MAX];  /* see module.h */
};

/* Binds `resource` (prepared; NULL = generate one) for the stream's
 * authenticated account. A session already bound to that full JID is
 * replaced: its stream gets a <conflict/> stream error. Returns the new
 * session; account must be loaded. */
struct session *session_bind(struct server *srv, struct c2s *stream,
			     struct account *account, const char *resource);
/* Ends the session: unavailable presence is broadcast if it was available,
 * it leaves the tables and is freed. Safe to call once per session. */
void session_end(struct session *s);

/* Calls fn(ctx) once what was sent to the session so far is certainly
 * delivered: acknowledged by the client with stream management
 * (XEP-0198), else written to its socket (see c2s_when_drained). Not
 * called if the session ends first: use the session_end hook to clean
 * up. */
void session_when_drained(struct session *s, void (*fn)(void *ctx), void *ctx);

struct session *session_find(struct server *srv, const char *full_jid);

/* Serializes `stanza` onto the session's stream (if attached), unless a
 * module's session_filter takes it over (XEP-0352). The stanza stays
 * owned by the caller. */
void session_send(struct session *s, const struct xml_node *stanza);
/* Same, past the filters: for the module that held the stanza back. */
void session_send_now(struct session *s, const struct xml_node *stanza);
/* For a stanza whose record stays in the offline store until the client
 * has it for certain: if the session ends unacknowledged it is not
 * rerouted (the store still has it). Past the filters too. */
void session_send_stored(struct session *s, const struct xml_node *stanza);

#endif

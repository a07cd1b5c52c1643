/* XEP-0198 stream management: acks in both directions, resumption of a
 * session whose TCP connection died, and no stanza lost when a session
 * ends with stanzas the client never acknowledged.
 *
 * The state lives in the session (not the stream) because resumption
 * moves the session to a new stream. */
#ifndef ROOST_XMPP_C2S_SM_H
#define ROOST_XMPP_C2S_SM_H

#include <stdbool.h>

struct buf;
struct c2s;
struct server;
struct session;
struct xml_node;

#define NS_SM "urn:xmpp:sm:3"

/* Appends <sm/> to an authenticated stream's features. */
void sm_features(struct c2s *c, struct buf *out);

/* Handles an element in NS_SM (enable, resume, r, a). Returns false if
 * it is not one (the caller treats it as unsupported). */
bool sm_element(struct c2s *c, struct xml_node *el);

/* One inbound stanza was handled (counts 'h'). */
void sm_stanza_in(struct session *s);

/* A stanza is being sent to the session (attached or not): if stream
 * management is on it is queued until acknowledged. Returns true when the
 * session is detached and the stanza was only queued. `stored` marks a
 * stanza whose authoritative copy stays in the offline store until the
 * ack: it is not rerouted if the session ends unacknowledged. */
bool sm_stanza_out(struct session *s, const struct xml_node *stanza,
		   bool stored);

/* The stream died without </stream:stream>. If the session may be
 * resumed, detaches it and returns true (it then lives until resumed or
 * its timeout); else returns false and the caller ends it. */
bool sm_detach(struct session *s);

/* The session ends: stanzas the client did not acknowledge go where a
 * stanza for a gone resource goes (another resource, the offline store,
 * or an error to the sender), then the state is freed. Called once the
 * session has left the session table. */
void sm_session_end(struct session *s);

/* Calls fn(ctx) once the client acknowledged everything sent to it so far;
 * false if stream management is off (use the socket drain instead). */
bool sm_when_acked(struct session *s, void (*fn)(void *ctx), void *ctx);

/* Ends every detached session now (shutdown): their unacknowledged
 * messages go to the offline store before it closes. */
void sm_end_detached(struct server *srv);

/* Ends what is left and frees the server's resumption table (at exit). */
void sm_server_free(struct server *srv);

#endif

/* Back-pressure on what clients send. While a consumer of routed stanzas
 * is behind (the archive's store batch, mod_mam), session streams stop
 * being read: their bytes wait in the socket, TCP flow control slows the
 * senders, and the loop goes on delivering what it has already read. The
 * store keeps working meanwhile; stopping the whole loop until the store
 * is idle (the older way) left one of the two busy at a time. */
#ifndef ROOST_XMPP_C2S_INTAKE_H
#define ROOST_XMPP_C2S_INTAKE_H

#include <stdbool.h>

struct c2s;
struct server;

/* Holds nest: reading resumes when every hold is released, from a fresh
 * loop pass (never inside intake_release). */
void intake_hold(struct server *srv);
void intake_release(struct server *srv);

/* c2s: called before reading a session stream. True if intake is held:
 * the stream stopped reading and is read again at the release. */
bool intake_park(struct c2s *c);
/* c2s: the stream is going away. */
void intake_forget(struct c2s *c);
/* Frees the server's intake state (shutdown). */
void intake_free(struct server *srv);

#endif

/* Back-pressure on what clients send. While a consumer of routed stanzas
 * is behind (a store batch of mod_mam or mod_offline), session streams stop
 * being read: their bytes wait in the socket, TCP flow control slows the
 * senders, and the loop goes on delivering what it has already read. The
 * store keeps working meanwhile; stopping the whole loop until the store
 * is idle (the older way) left one of the two busy at a time. */
#ifndef ROOST_XMPP_C2S_INTAKE_H
#define ROOST_XMPP_C2S_INTAKE_H

#include <stdbool.h>
#include <stddef.h>

struct c2s;
struct server;

/* Holds nest: reading resumes when every hold is released, from a fresh
 * loop pass (never inside intake_release). */
void intake_hold(struct server *srv);
void intake_release(struct server *srv);

/* A producer that queues work behind one batch in the store (mod_mam,
 * mod_offline) holds intake while its backlog is long and lets go when
 * the batch is done. `what` names it in the log ("mam"), `unit` what it
 * counts ("records"). Zero-initialize the flags. */
struct intake_backlog {
	const char *what, *unit;
	bool holding;             /* this producer holds intake */
	bool logged;              /* the first hold was logged */
};
/* After queueing: with a batch in the store (`busy`) and n >= pause or
 * bytes >= hold_bytes, holds intake (once; logged the first time), unless
 * the server is shutting down. */
void intake_backlog_check(struct server *srv, struct intake_backlog *b,
			  bool busy, size_t n, size_t bytes, size_t pause,
			  size_t hold_bytes);
/* The batch in the store is done: lets go of the hold, if any. */
void intake_backlog_done(struct server *srv, struct intake_backlog *b);
/* The backlog at which the whole loop waits for the store instead (and
 * so bounds the memory): four times `pause`, at least `min`. */
size_t intake_backlog_max(size_t pause, size_t min);

/* c2s: called before reading a session stream. True if intake is held:
 * the stream stopped reading and is read again at the release. */
bool intake_park(struct c2s *c);
/* c2s: the stream is going away. */
void intake_forget(struct c2s *c);
/* Frees the server's intake state (shutdown). */
void intake_free(struct server *srv);

#endif

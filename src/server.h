/* struct server: all of roostd's state hangs off it (DESIGN §1). No other
 * mutable globals, so that N loops stay possible later. */
#ifndef ROOST_SERVER_H
#define ROOST_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/module.h"

struct account;
struct addr_limit;
struct auth_throttle;
struct c2s;
struct config;
struct event;
struct event_base;
struct ev_token_bucket_cfg;
struct hashmap;
struct listener;
struct modules;
struct seal_keys;
struct store;
struct tls;
struct workq;

struct server {
	struct event_base *base;
	struct config *cfg;
	struct store *store;
	struct workq *workers;     /* CPU-bound jobs (PBKDF2); not the store's */
	struct tls *tls;           /* one SSL_CTX per vhost */
	struct modules *modules;   /* handlers registered by mod/ */
	struct seal_keys *seal_keys; /* derived from the seal key file (DESIGN §5) */
	struct auth_throttle *throttle;
	struct addr_limit *addr_limit; /* connections per address */
	struct ev_token_bucket_cfg *read_limit; /* per-connection read rate, or NULL */

	struct listener *listeners;
	struct c2s *streams;       /* every client stream, for shutdown */
	unsigned nstreams;
	/* xmpp/c2s_intake.h: holds, and the streams waiting for the release */
	unsigned intake_holds;
	struct c2s *parked, *parked_tail;
	struct event *intake_ev;
	uint64_t next_stream_id;

	struct hashmap *sessions;  /* full JID -> struct session (bound) */
	struct hashmap *accounts;  /* bare JID -> struct account (loaded) */
	struct hashmap *sm_ids;    /* XEP-0198 SM-ID -> resumable struct session */

	char *version_name;        /* for XEP-0092 */
	bool shutting_down;
	/* Per-module server-wide state, as in sessions and accounts (see
	 * core/module.h): a module finds its slot by modules_index. */
	void *mod_ctx[MODULES_MAX];
	struct event *sig_term, *sig_int, *shutdown_timer;
};

/* True if `domain` (prepared) is one of our virtual hosts. */
bool server_is_local_domain(const struct server *srv, const char *domain);

#endif

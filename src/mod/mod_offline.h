/* Private to mod_offline.c (storage, the per-session job engine, the
 * flood) and mod_offline_flex.c (XEP-0013 requests and their answers).
 *
 * Everything that reads a user's offline store runs as a job of one of
 * the user's sessions: the flood at initial presence and each XEP-0013
 * request. A session runs one job at a time, in the order they were
 * asked, so answers and delivered messages never interleave. */
#ifndef ROOST_MOD_MOD_OFFLINE_H
#define ROOST_MOD_MOD_OFFLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/module.h"
#include "seal/seal.h"

struct account;
struct c2s;
struct session;
struct store_offline;
struct xml_node;

#define NS_OFFLINE "http://jabber.org/protocol/offline"

/* XEP-0013 node ids are the record's seq, zero-padded to a fixed width so
 * that dictionary order is arrival order (XEP-0013 §2.3 allows clients
 * to sort them); u64 has at most 20 decimal digits. */
#define OFF_NODE_DIGITS 20

enum job_kind {
	JOB_FLOOD,    /* initial presence: deliver and remove */
	JOB_COUNT,    /* disco#info on the offline node */
	JOB_HEADERS,  /* disco#items on the offline node */
	JOB_VIEW,     /* <item action='view'/>: deliver, keep */
	JOB_FETCH,    /* <fetch/>: deliver all, keep */
	JOB_REMOVE,   /* <item action='remove'/> */
	JOB_PURGE,    /* <purge/> */
};

struct job {
	struct job *next;
	enum job_kind kind;
	struct xml_node *iq;  /* a copy of the request; NULL for the flood */
	uint64_t *seqs;       /* VIEW, REMOVE: requested, sorted, unique */
	size_t nseqs;
	bool started;         /* its first load was handled */
	size_t nsent, nbroken;
};

/* A drain registration (session_when_drained). Freed by its callback, or
 * by the session_end hook when the callback can no longer come. */
struct drain_tok {
	struct osess *o;      /* NULL: orphaned, the callback only frees */
};

/* Per session. It outlives the session while a store request is out or
 * while it is on the stack (busy): `s` is then NULL and the last one out
 * frees it. */
struct osess {
	struct session *s;
	unsigned pending;        /* store requests in flight with us as ctx */
	unsigned busy;           /* on the stack, possibly sending */
	struct job *job;         /* running */
	struct job *qhead, *qtail;
	size_t nqueued;
	/* The running job's delivery: sealed records copied out of the last
	 * load (its memory lives only during the callback), in seq order. */
	struct seal_record *win;
	size_t nwin, wpos, wcap;
	bool more;               /* the load held more than the window */
	uint64_t after;          /* the job has dealt with every seq up to here */
	uint64_t *batch;         /* flood: seqs sent, awaiting certainty */
	size_t nbatch;
	struct drain_tok *tok;   /* the drain registration, if any */
	struct c2s *tok_stream;  /* the stream whose drain slot holds it */
	bool in_wait;            /* inside session_when_drained */
	bool drained_now;        /* ... and it called back at once */
	bool reload;             /* a deposit landed during the flood */
	bool noticed;            /* the integrity notice was sent */
	bool told_wait;          /* the "wait for a password login" notice */
	uint64_t flood_high;     /* highest seq the flood handed this session */
	uint64_t keys_checked;   /* unopenable records up to here reported */
};

/* What a load leaves for the running job after housekeeping: indices
 * into off->genuine of the records this login can open and may deliver
 * (not expired, sealed to a key it holds), in seq order. */
struct off_scan {
	const struct store_offline *off;  /* NULL: the user has no keyring */
	size_t *ok;
	size_t nok;
};

/* ---- mod_offline.c, for the flex side ---- */

struct osess *off_session(struct session *s);
/* Queues a job (takes seqs; copies iq). false when the session already has
 * too many jobs waiting (the caller answers resource-constraint). */
bool off_job_add(struct osess *o, enum job_kind kind,
		 const struct xml_node *iq, uint64_t *seqs, size_t nseqs);
/* XEP-0013 §2.2: no flood for the account from now on. */
void off_mark_flexible(struct account *a);
/* The running job is over: next one. */
void off_job_done(struct osess *o);
void off_job_reply(struct osess *o, struct xml_node *payload);
void off_job_error(struct osess *o, const char *condition, const char *text);
/* Removes records for a REMOVE job; off_flex_done follows. */
void off_job_remove(struct osess *o, const uint64_t *seqs, size_t n);
/* Copies the scan's records with seq > o->after (and, for VIEW, among
 * job->seqs) into the window, up to its byte budget, and starts sending. */
void off_deliver(struct osess *o, const struct off_scan *sc);

void off_format_node(uint64_t seq, char out[OFF_NODE_DIGITS + 1]);
/* Client input: exactly OFF_NODE_DIGITS ASCII digits, a value >= 1. */
bool off_parse_node(const char *node, uint64_t *seq_r);

/* The message a genuine record holds, or NULL if this keyring cannot
 * open it or it does not parse back (never expected: logged). */
struct xml_node *off_open(struct account *a, const struct seal_record *rec);

/* ---- mod_offline_flex.c ---- */

/* The XEP-0013 part of a load's handling for COUNT, HEADERS, VIEW, FETCH
 * and REMOVE (result: as store_offline_cb; sc valid for the call). */
void off_flex_loaded(struct osess *o, int result, const struct off_scan *sc);
/* PURGE and REMOVE finished in the store. */
void off_flex_done(struct osess *o, int result);

extern const struct iq_handler off_flex_handlers[];
bool off_flex_disco_node(const struct iq_request *req, const char *node,
			 bool items);

#endif

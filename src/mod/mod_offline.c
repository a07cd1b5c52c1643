/* XEP-0160 offline messages over the sealed store (DESIGN §5, issue 3):
 * what is stored, the paced flood at initial presence, the notices, and
 * the per-session job engine that the flood and XEP-0013
 * (mod_offline_flex.c) share.
 *
 * Storing: a message no available resource took gets a XEP-0203 stamp and
 * goes whole to the store, which seals it to the recipient on its worker.
 * The sender hears only of failures: nothing is dropped without an error,
 * except content-free messages (chat states, receipts) nobody would want
 * days later.
 *
 * Delivering: a job loads the store (the walk decides what is genuine),
 * copies a window of still-sealed records out of the load, then opens and
 * sends them `batch` at a time. The next batch goes only once the client
 * has the previous one for certain (acked with XEP-0198, else written to
 * the socket), and only then does a flooded batch leave the store, so a
 * session that ends mid-way leaves the rest stored. Memory per session:
 * one window of ciphertext (WINDOW_BYTES) and one batch in flight. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "core/router.h"
#include "core/session.h"
#include "core/stanza.h"
#include "mod/mod_offline.h"
#include "seal/seal.h"
#include "server.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xml/xml_writer.h"
#include "xmpp/c2s.h"
#include "xmpp/c2s_intake.h"

#define NS_DELAY "urn:xmpp:delay"
#define NS_HINTS "urn:xmpp:hints"
#define NS_CONFERENCE "jabber:x:conference"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"

/* Ciphertext a session holds copied out of a load. Past it the job loads
 * again: each load walks the whole store (one HMAC per record), so a store
 * of N records bigger than this costs N * size / WINDOW_BYTES HMACs. */
#define WINDOW_BYTES (512u * 1024)
/* Jobs one session may have waiting: XEP-0013 requests beyond this get
 * <resource-constraint/>. */
#define JOBS_MAX 16

extern const struct module offline_module;

struct off_account {
	/* XEP-0013 §2.2: a session of the account used flexible retrieval,
	 * so none gets the flood while the account stays loaded, i.e. while
	 * that session or another one lives. */
	bool flexible;
};

static void job_start(struct osess *o);
static void pump(struct osess *o);
static void loaded(void *ctx, int result, const struct store_offline *off);
static void purged(void *ctx, int result, const char *error);

/* ---- context slots and lifetime ---- */

static unsigned slot(const struct server *srv)
{
	return modules_index(srv->modules, &offline_module);
}

static struct off_account *acct_ctx(struct account *a)
{
	void **p = &a->mod_ctx[slot(a->srv)];

	if (*p == NULL)
		*p = xcalloc(1, sizeof(struct off_account));
	return *p;
}

void off_mark_flexible(struct account *a)
{
	acct_ctx(a)->flexible = true;
}

struct osess *off_session(struct session *s)
{
	void **p = &s->mod_ctx[slot(s->srv)];

	if (*p == NULL) {
		struct osess *o = xcalloc(1, sizeof(*o));
		o->s = s;
		*p = o;
	}
	return *p;
}

static struct osess *session_find_ctx(struct session *s)
{
	return s->mod_ctx[slot(s->srv)];
}

static void job_free(struct job *j)
{
	if (j == NULL)
		return;
	xml_free(j->iq);
	free(j->seqs);
	free(j);
}

/* The window holds ciphertext only (sealed records are not secret). */
static void window_clear(struct osess *o)
{
	for (size_t i = o->wpos; i < o->nwin; i++)
		free(o->win[i].ct);
	free(o->win);
	o->win = NULL;
	o->nwin = o->wpos = o->wcap = 0;
	o->more = false;
}

static void osess_free(struct osess *o)
{
	struct job *j, *next;

	window_clear(o);
	free(o->batch);
	job_free(o->job);
	for (j = o->qhead; j != NULL; j = next) {
		next = j->next;
		job_free(j);
	}
	free(o);
}

/* Sending can end the session on the spot (its output queue overflows),
 * and the session_end hook must not free the context under a caller:
 * whoever may send holds it. Returns false (context freed or left to the
 * others) once the session is gone. */
static void hold(struct osess *o)
{
	o->busy++;
}

static bool release(struct osess *o)
{
	o->busy--;
	if (o->s != NULL)
		return true;
	if (o->busy == 0 && o->pending == 0)
		osess_free(o);
	return false;
}

/* A store callback's first step: the request is no longer pending; false
 * if the session went meanwhile (then nothing is to be done). */
static bool returned(struct osess *o)
{
	o->pending--;
	if (o->s != NULL)
		return true;
	if (o->busy == 0 && o->pending == 0)
		osess_free(o);
	return false;
}

/* ---- small helpers ---- */

static bool mode_sealed(const struct config *cfg)
{
	return cfg->mode != NULL && strcmp(cfg->mode, "sealed") == 0;
}

/* XEP-0082 DateTime in UTC; `ms` adds milliseconds, else to the minute
 * (enough for a notice). */
static void format_stamp(int64_t us, bool ms, char *out, size_t len)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	char date[32];

	gmtime_r(&t, &tm);
	if (!ms) {
		strftime(out, len, "%Y-%m-%dT%H:%MZ", &tm);
		return;
	}
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%s.%03dZ", date, (int)((us / 1000) % 1000));
}

void off_format_node(uint64_t seq, char out[OFF_NODE_DIGITS + 1])
{
	snprintf(out, OFF_NODE_DIGITS + 1, "%0*" PRIu64, OFF_NODE_DIGITS, seq);
}

bool off_parse_node(const char *node, uint64_t *seq_r)
{
	uint64_t v = 0;

	if (node == NULL)
		return false;
	for (int i = 0; i < OFF_NODE_DIGITS; i++) {
		unsigned d;

		if (node[i] < '0' || node[i] > '9')
			return false; /* also catches a short string's NUL */
		d = (unsigned)(node[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (node[OFF_NODE_DIGITS] != '\0' || v == 0)
		return false;
	*seq_r = v;
	return true;
}

static const char *plural(size_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* "90 days", "2 hours", "45 seconds": how long records are kept. */
static void format_duration(unsigned secs, char *out, size_t len)
{
	if (secs % 86400 == 0)
		snprintf(out, len, "%u %s", secs / 86400, plural(secs / 86400, "day", "days"));
	else if (secs % 3600 == 0)
		snprintf(out, len, "%u %s", secs / 3600, plural(secs / 3600, "hour", "hours"));
	else if (secs % 60 == 0)
		snprintf(out, len, "%u %s", secs / 60, plural(secs / 60, "minute", "minutes"));
	else
		snprintf(out, len, "%u %s", secs, plural(secs, "second", "seconds"));
}

/* A message from the server to one session. A notice the next load would
 * say again (withheld records, a login that cannot open the store) goes
 * like a stored message: not rerouted to the offline store if the session
 * ends unacknowledged. One about records just deleted is said once only,
 * so it goes the ordinary way and, unacknowledged, lands in the store. */
static void notice(struct osess *o, bool again_later, const char *subject,
		   const char *body)
{
	struct session *s = o->s;
	struct xml_node *m = stanza_new("message", s->jid.domain, s->full,
					"normal", NULL);

	xml_add_text_child(m, "subject", subject);
	xml_add_text_child(m, "body", body);
	if (again_later)
		session_send_stored(s, m);
	else
		session_send(s, m);
	xml_free(m);
}

static void removed_logged(void *ctx, int result, const char *error)
{
	char *bare = ctx;

	if (result != 0)
		log_msg(LOG_WARN, bare, "offline: removal failed: %s",
			error ? error : "store error");
	free(bare);
}

/* Removal that needs no answer: the records go, or stay and come again
 * (the store logs why). */
static void remove_seqs(struct account *a, const uint64_t *seqs, size_t n)
{
	if (n == 0)
		return;
	store_offline_remove(a->srv->store, a->local, a->domain, seqs, n,
			     removed_logged, xstrdup(a->bare));
}

/* ---- opening records ---- */

struct xml_node *off_open(struct account *a, const struct seal_record *rec)
{
	unsigned char *pt;
	size_t len;
	struct xml_node *st;

	if (a->unlocked == NULL ||
	    seal_record_open(a->unlocked, a->bare, SEAL_STORE_OFFLINE, rec,
			     &pt, &len) != 0) {
		log_msg(LOG_ERROR, a->bare, "offline: genuine record seq %" PRIu64
			" does not open", rec->seq);
		return NULL;
	}
	st = stanza_parse_message(pt, len);
	xfree_secret(pt, len);
	if (st == NULL)
		log_msg(LOG_ERROR, a->bare, "offline: record seq %" PRIu64
			" does not parse back", rec->seq);
	return st;
}

/* ---- storage (XEP-0160 §3, XEP-0334) ---- */

enum policy { POLICY_STORE, POLICY_BOUNCE, POLICY_DROP };

static bool has_hint(const struct xml_node *msg, const char *name)
{
	return xml_child(msg, name, NS_HINTS) != NULL;
}

/* Content worth keeping for later without a body: invitations to rooms
 * (XEP-0249 direct, XEP-0045 §7.8.2 mediated). */
static bool is_invitation(const struct xml_node *msg)
{
	const struct xml_node *x = xml_child(msg, "x", NS_MUC_USER);

	return xml_child(msg, "x", NS_CONFERENCE) != NULL ||
	       (x != NULL && xml_child(x, "invite", NS_MUC_USER) != NULL);
}

static enum policy store_policy(const struct xml_node *msg)
{
	const char *type = xml_attr(msg, "type");

	/* The router never asks for these; should it, XEP-0160 §3 says not
	 * to store them, and RFC 6121 §8.5.2.2.1 to drop headlines
	 * silently. Hints in errors are ignored (XEP-0334 §5). */
	if (type != NULL && strcmp(type, "groupchat") == 0)
		return POLICY_BOUNCE;
	if (type != NULL && (strcmp(type, "headline") == 0 ||
			     strcmp(type, "error") == 0))
		return POLICY_DROP;
	/* XEP-0334 §4.2: not even kept for later delivery. */
	if (has_hint(msg, "no-store"))
		return POLICY_BOUNCE;
	/* <no-permanent-store/> is not a reason to bounce: XEP-0334 §3.3
	 * names storing "temporarily as a normal part of delivery (e.g. if
	 * the recipient is offline)" as what the hint allows. Only the
	 * archive (mod_mam) leaves it out. */
	if (has_hint(msg, "store") ||
	    xml_child(msg, "body", XML_NS_CLIENT) != NULL ||
	    xml_child(msg, "subject", XML_NS_CLIENT) != NULL ||
	    is_invitation(msg))
		return POLICY_STORE;
	/* Chat states, receipts, markers alone (XEP-0160 §3: "SHOULD NOT
	 * be stored"): stale by the time the user is back, and an error
	 * for each would only tell the sender what presence already did. */
	return POLICY_DROP;
}

/* ---- deposits, in batches ----
 *
 * Messages for the store wait here for the end of the loop turn and go to
 * it as one batch, one transaction: a commit per message costs more than
 * sealing it. While a batch is in the store the next one accumulates, so
 * a busy store gets bigger batches instead of a longer queue. Whatever
 * reads the offline store first sends what waits here (requests on the
 * store run in order), so a load sees every message stored before it. */

struct deposit {
	struct xml_node *msg;   /* as received, to bounce it */
	char *bare, *local, *domain;
	char *data;             /* what is sealed: msg with its delay stamp */
	size_t len;
	int64_t stamp;
};

struct off_server {
	struct server *srv;
	struct event *flush_ev;
	struct deposit *pend;
	size_t n, cap, bytes;
	unsigned inflight;      /* batches in the store */
	struct intake_backlog backlog; /* holds client intake (c2s_intake.h) */
	bool warned;            /* logged the first back-pressure wait */
};

/* A batch in the store. */
struct dep_batch {
	struct off_server *os;
	struct deposit *d;
	size_t n;
};

/* Flush at once beyond these. */
#define BATCH_MAX 512
#define BATCH_BYTES (4u * 1024 * 1024)
/* Back-pressure, as in mod_mam: with [offline] backlog_pause deposits (or
 * HOLD_BYTES) waiting while a batch is in the store, session streams stop
 * being read until the batch is done (c2s_intake.h), the loop and the
 * store going on meanwhile; only at intake_backlog_max() does the loop
 * wait for the store (store_wait_idle), which bounds the memory at the cost of a
 * pause. */
#define HOLD_BYTES (16u * 1024 * 1024)
#define BACKLOG_MIN 32768
#define BACKLOG_BYTES (64u * 1024 * 1024)

static void flush_cb(evutil_socket_t fd, short what, void *arg);

/* Made at first use: during init the module table (and so our slot)
 * does not exist yet. */
static struct off_server *server_ctx(struct server *srv)
{
	void **p = &srv->mod_ctx[slot(srv)];
	struct off_server *os = *p;

	if (os == NULL) {
		os = xcalloc(1, sizeof(*os));
		os->srv = srv;
		os->flush_ev = event_new(srv->base, -1, 0, flush_cb, os);
		os->backlog = (struct intake_backlog){
			.what = "offline", .unit = "deposits" };
		*p = os;
	}
	return os;
}

static void deposit_free(struct deposit *d)
{
	xml_free(d->msg);
	free(d->bare);
	free(d->local);
	free(d->domain);
	if (d->data != NULL)
		xfree_secret(d->data, d->len);
}

/* A deposit landed while a session of the account floods: that flood
 * loads once more when it is through, so the message is not left behind
 * until the next login. */
static void wake_floods(struct server *srv, const char *bare)
{
	struct account *a = hashmap_get(srv->accounts, bare);

	if (a == NULL)
		return;
	account_foreach_session(a, sess) {
		struct osess *o = session_find_ctx(sess);
		if (o != NULL && o->job != NULL && o->job->kind == JOB_FLOOD)
			o->reload = true;
	}
}

/* The sender hears of every message that was not stored, and only of
 * those. */
static void deposited(struct server *srv, const struct deposit *d, int result)
{
	switch (result) {
	case 0:
		wake_floods(srv, d->bare);
		break;
	case 1:
		log_msg(LOG_INFO, d->bare, "offline: quota reached, message refused");
		router_bounce(srv, d->msg, "resource-constraint",
			      "offline storage quota exceeded");
		break;
	case 2:
		/* No such user, or one without a keyring to seal to. */
		router_bounce(srv, d->msg, "service-unavailable", NULL);
		break;
	default:
		router_bounce(srv, d->msg, "service-unavailable",
			      "the message could not be stored");
		break;
	}
}

static void flush(struct off_server *os, bool force);

static void batch_deposited(void *ctx, const int *results,
			    const uint64_t *seqs, size_t n)
{
	struct dep_batch *b = ctx;
	struct off_server *os = b->os;

	for (size_t i = 0; i < n; i++) {
		deposited(os->srv, &b->d[i], results[i]);
		deposit_free(&b->d[i]);
	}
	free(b->d);
	free(b);
	os->inflight--;
	/* Also while the store closes: it runs what this submits. */
	flush(os, false);
	intake_backlog_done(os->srv, &os->backlog);
}

/* Sends what waits to the store, unless (without force) a batch is still
 * there: its completion sends the next one. */
static void flush(struct off_server *os, bool force)
{
	struct store_offline_item *items;
	struct dep_batch *b;

	if (os->n == 0 || (!force && os->inflight > 0))
		return;
	b = xcalloc(1, sizeof(*b));
	b->os = os;
	b->d = os->pend;
	b->n = os->n;
	items = xcalloc(b->n, sizeof(*items));
	for (size_t i = 0; i < b->n; i++) {
		struct deposit *d = &b->d[i];
		items[i] = (struct store_offline_item){
			.local = d->local, .domain = d->domain,
			.stanza = d->data, .len = d->len, .stamp_us = d->stamp,
			.max_count = os->srv->cfg->max_messages,
			.max_bytes = os->srv->cfg->max_bytes,
		};
	}
	os->pend = NULL;
	os->n = os->cap = os->bytes = 0;
	os->inflight++;
	store_offline_deposit_batch(os->srv->store, items, b->n,
				    batch_deposited, b);
	free(items);
	/* The store copied the plaintext; it is not kept twice. */
	for (size_t i = 0; i < b->n; i++) {
		xfree_secret(b->d[i].data, b->d[i].len);
		b->d[i].data = NULL;
	}
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	flush(arg, false);
}

/* Before anything reads the offline store. */
static void flush_before_read(struct server *srv)
{
	flush(server_ctx(srv), true);
}

static void enqueue(struct server *srv, struct deposit *d)
{
	struct off_server *os = server_ctx(srv);

	os->pend = xgrow(os->pend, &os->cap, os->n + 1, sizeof(*os->pend));
	os->pend[os->n++] = *d;
	os->bytes += d->len;
	/* Shutting down, the loop may not turn again: no waiting. */
	if (srv->shutting_down) {
		flush(os, true);
	} else if (os->inflight > 0 &&
		   (os->n >= intake_backlog_max(srv->cfg->offline_backlog_pause,
						BACKLOG_MIN) ||
		    os->bytes >= BACKLOG_BYTES)) {
		if (!os->warned) {
			log_warn("offline: the store is behind by %zu messages: "
				 "waiting for it", os->n);
			os->warned = true;
		}
		store_wait_idle(srv->store);
		flush(os, true);
	} else if (os->n >= BATCH_MAX || os->bytes >= BATCH_BYTES) {
		flush(os, false);
	} else if (os->n == 1) {
		event_active(os->flush_ev, EV_TIMEOUT, 0);
	}
	intake_backlog_check(srv, &os->backlog, os->inflight > 0, os->n,
			     os->bytes, srv->cfg->offline_backlog_pause,
			     HOLD_BYTES);
}

/* XEP-0203: when the server took it. A <delay/> claiming to be from our
 * own domain can only be forged (or a leftover of ours): it goes. */
static struct xml_node *stamp_delay(struct xml_node *msg, const char *domain,
				    int64_t now)
{
	struct xml_node *d, *next, *delay;
	char stamp[64];

	for (d = xml_child(msg, "delay", NS_DELAY); d != NULL; d = next) {
		const char *from = xml_attr(d, "from");
		next = xml_next(d, "delay", NS_DELAY);
		if (from != NULL && strcmp(from, domain) == 0)
			xml_remove(d);
	}
	format_stamp(now, true, stamp, sizeof(stamp));
	delay = xml_add_child(msg, "delay", NS_DELAY);
	xml_set_attr(delay, "from", domain);
	xml_set_attr(delay, "stamp", stamp);
	xml_add_text(delay, "Offline Storage", 15);
	return delay;
}

static bool offline_undelivered(struct server *srv, struct xml_node *msg,
				const struct jid *to)
{
	const struct config *cfg = srv->cfg;
	struct deposit d;
	struct buf b = BUF_INIT;
	struct xml_node *delay;
	int64_t now;

	/* XEP-0160 §2: a server that does not store answers
	 * service-unavailable, which the router does when we decline. */
	if (to->local == NULL || !mode_sealed(cfg))
		return false;
	switch (store_policy(msg)) {
	case POLICY_BOUNCE:
		return false;
	case POLICY_DROP:
		xml_free(msg);
		return true;
	case POLICY_STORE:
		break;
	}
	now = seal_now_us();
	delay = stamp_delay(msg, to->domain, now);
	/* The whole stanza, 'from' and 'to' included, is what gets sealed:
	 * the sender is never in the clear on disk. */
	xml_serialize(&b, msg, XML_NS_CLIENT);
	xml_remove(delay); /* a bounce returns what the sender sent */
	d.msg = msg;
	d.bare = jid_bare(to);
	d.local = xstrdup(to->local);
	d.domain = xstrdup(to->domain);
	d.data = buf_steal(&b, &d.len);
	d.stamp = now;
	enqueue(srv, &d);
	return true;
}

/* ---- jobs ---- */

bool off_job_add(struct osess *o, enum job_kind kind,
		 const struct xml_node *iq, uint64_t *seqs, size_t nseqs)
{
	struct job *j;

	if (kind != JOB_FLOOD && o->nqueued >= JOBS_MAX) {
		free(seqs);
		return false;
	}
	j = xcalloc(1, sizeof(*j));
	j->kind = kind;
	j->iq = iq != NULL ? xml_copy(iq) : NULL;
	j->seqs = seqs;
	j->nseqs = nseqs;
	if (o->qtail != NULL)
		o->qtail->next = j;
	else
		o->qhead = j;
	o->qtail = j;
	o->nqueued++;
	if (o->job == NULL)
		job_start(o);
	return true;
}

/* Starts the next queued job. Every job begins with a store request, so
 * nothing is sent from here. */
static void job_start(struct osess *o)
{
	struct session *s = o->s;
	struct account *a = s->account;
	struct job *j = o->qhead;

	if (j == NULL)
		return;
	o->qhead = j->next;
	if (o->qhead == NULL)
		o->qtail = NULL;
	o->nqueued--;
	j->next = NULL;
	o->job = j;
	o->after = j->kind == JOB_FLOOD ? o->flood_high : 0;
	o->reload = false;
	o->pending++;
	flush_before_read(s->srv);
	if (j->kind == JOB_PURGE)
		store_offline_purge(a->srv->store, a->local, a->domain, purged, o);
	else
		store_offline_load(a->srv->store, a->local, a->domain, loaded, o);
}

void off_job_done(struct osess *o)
{
	job_free(o->job);
	o->job = NULL;
	window_clear(o);
	o->nbatch = 0;
	if (o->s != NULL)
		job_start(o);
}

void off_job_reply(struct osess *o, struct xml_node *payload)
{
	struct xml_node *res = stanza_iq_result(o->job->iq);

	if (payload != NULL) {
		xml_copy_into(res, payload);
		xml_free(payload);
	}
	router_route(o->s->srv, res);
}

void off_job_error(struct osess *o, const char *condition, const char *text)
{
	router_bounce(o->s->srv, o->job->iq, condition, text);
}

/* ---- the window and the batches ---- */

static void window_add(struct osess *o, const struct seal_record *rec)
{
	struct seal_record *w;

	o->win = xgrow(o->win, &o->wcap, o->nwin + 1, sizeof(*o->win));
	w = &o->win[o->nwin++];
	*w = *rec;
	w->ct = xmalloc(rec->ct_len + 1);
	memcpy(w->ct, rec->ct, rec->ct_len);
}

void off_deliver(struct osess *o, const struct off_scan *sc)
{
	const struct job *j = o->job;
	size_t bytes = 0, k = 0;

	window_clear(o);
	for (size_t i = 0; i < sc->nok; i++) {
		const struct seal_record *rec = &sc->off->genuine[sc->ok[i]];

		if (rec->seq <= o->after)
			continue;
		if (j->kind == JOB_VIEW) {
			/* Both lists ascend: one merge pass. */
			while (k < j->nseqs && j->seqs[k] < rec->seq)
				k++;
			if (k == j->nseqs)
				break;
			if (j->seqs[k] != rec->seq)
				continue;
		}
		if (o->nwin > 0 && bytes + rec->ct_len > WINDOW_BYTES) {
			o->more = true;
			break;
		}
		window_add(o, rec);
		bytes += rec->ct_len;
	}
	pump(o);
}

static void drain_noop(void *ctx)
{
}

static void batch_done(struct osess *o);

/* session_when_drained's callback: the client has the batch for certain. */
static void batch_drained(void *ctx)
{
	struct drain_tok *t = ctx;
	struct osess *o = t->o;

	free(t);
	if (o == NULL)
		return;
	o->tok = NULL;
	if (o->in_wait) {
		/* Called from inside session_when_drained (nothing was
		 * unacknowledged): pump() carries on. */
		o->drained_now = true;
		return;
	}
	hold(o);
	batch_done(o);
	pump(o);
	release(o);
}

static void wait_drained(struct osess *o)
{
	struct session *s = o->s;
	struct drain_tok *t = xmalloc(sizeof(*t));

	t->o = o;
	o->tok = t;
	/* Mirrors session_when_drained: without stream management the
	 * stream's drain slot holds the token (see forget_drain). */
	o->tok_stream = s->sm == NULL ? s->stream : NULL;
	o->in_wait = true;
	session_when_drained(s, batch_drained, t);
	o->in_wait = false;
}

/* The session ends with a drain registration out. */
static void forget_drain(struct osess *o, struct session *s)
{
	struct drain_tok *t = o->tok;

	if (t == NULL)
		return;
	o->tok = NULL;
	if (o->tok_stream == NULL) {
		/* A XEP-0198 waiter (sm_session_end frees it uncalled), or
		 * none was registered. */
		free(t);
	} else if (s->sm == NULL) {
		/* The stream outlives this call (streams are freed from a
		 * deferred event) and may still call its slot: a stream whose
		 * session was replaced (<conflict/>) is flushed while closing,
		 * and the flush calls the slot. Park a no-op there. */
		c2s_when_drained(o->tok_stream, drain_noop, NULL);
		free(t);
	} else {
		/* Stream management came on after we registered: the stream
		 * may be gone (detached), so it is not touched. The token is
		 * orphaned and freed if it is ever called. */
		t->o = NULL;
	}
}

static void flood_finish(struct osess *o);

/* The batch is certain: a flood's records leave the store now. */
static void batch_done(struct osess *o)
{
	if (o->job != NULL && o->job->kind == JOB_FLOOD && o->s != NULL)
		remove_seqs(o->s->account, o->batch, o->nbatch);
	o->nbatch = 0;
}

/* Opens and sends the next batch: at most cfg->batch messages and about a
 * quarter of the output queue limit (so a batch of big messages never
 * gets the client cut off), at least one. */
static void send_batch(struct osess *o)
{
	const struct config *cfg = o->s->srv->cfg;
	struct job *j = o->job;
	unsigned max = cfg->batch > 0 ? cfg->batch : 1;
	size_t budget = cfg->max_outq / 4, bytes = 0, n = 0;

	if (j->kind == JOB_FLOOD && o->batch == NULL)
		o->batch = xcalloc(max, sizeof(*o->batch));
	while (o->s != NULL && o->wpos < o->nwin && n < max &&
	       (n == 0 || bytes < budget)) {
		struct seal_record *rec = &o->win[o->wpos++];
		struct xml_node *st = off_open(o->s->account, rec);

		o->after = rec->seq;
		if (j->kind == JOB_FLOOD)
			o->flood_high = rec->seq;
		bytes += rec->ct_len;
		free(rec->ct);
		rec->ct = NULL;
		if (st == NULL) {
			/* Genuine and sealed to a key we hold, yet it does not
			 * open: kept (it is evidence) and reported. */
			j->nbroken++;
			continue;
		}
		if (j->kind != JOB_FLOOD) {
			/* XEP-0013 §2.4: each message names its node. */
			char node[OFF_NODE_DIGITS + 1];
			struct xml_node *mark = xml_add_child(st, "offline", NS_OFFLINE);
			off_format_node(rec->seq, node);
			xml_set_attr(xml_add_child(mark, "item", NULL), "node", node);
		} else {
			o->batch[o->nbatch++] = rec->seq;
		}
		n++;
		j->nsent++;
		/* Past the filters and never rerouted: its record stays in
		 * the store until the client has it for certain. */
		session_send_stored(o->s, st);
		xml_free(st);
	}
}

static void window_done(struct osess *o)
{
	struct job *j = o->job;
	bool again = o->more || (j->kind == JOB_FLOOD && o->reload);

	window_clear(o);
	if (again) {
		struct account *a = o->s->account;

		/* The records delivered so far were removed before this
		 * load (the store keeps request order); o->after skips any
		 * a flex job keeps. */
		o->reload = false;
		o->pending++;
		flush_before_read(a->srv);
		store_offline_load(a->srv->store, a->local, a->domain, loaded, o);
		return;
	}
	if (j->kind == JOB_FLOOD) {
		flood_finish(o);
		return;
	}
	/* VIEW, FETCH: the messages, then the result (XEP-0013 §2.4, §2.6). */
	off_job_reply(o, NULL);
	if (o->s != NULL)
		off_job_done(o);
}

/* Sends batches while each drains at once; returns when waiting for a
 * drain, when the job is over, or when the session ended. The caller
 * holds o. */
static void pump(struct osess *o)
{
	while (o->s != NULL && o->job != NULL) {
		if (o->job->kind == JOB_FLOOD && !o->s->available) {
			/* Unavailable again: the rest waits for the next
			 * initial presence. */
			flood_finish(o);
			return;
		}
		if (o->wpos == o->nwin) {
			window_done(o);
			return;
		}
		send_batch(o);
		if (o->s == NULL)
			return;
		wait_drained(o);
		if (!o->drained_now)
			return;
		o->drained_now = false;
		batch_done(o);
	}
}

/* ---- the flood (XEP-0160 §2) ---- */

static void flood_finish(struct osess *o)
{
	struct job *j = o->job;
	char body[256];

	if (j->nsent > 0)
		log_msg(LOG_INFO, o->s->full, "offline: %zu stored messages "
			"delivered", j->nsent);
	if (j->nbroken > 0) {
		snprintf(body, sizeof(body), "%zu stored %s could not be opened "
			 "and %s kept for the administrator to look into.",
			 j->nbroken, plural(j->nbroken, "message", "messages"),
			 plural(j->nbroken, "was", "were"));
		notice(o, true, "Offline messages kept", body);
		if (o->s == NULL)
			return;
	}
	off_job_done(o);
}

static void offline_initial_presence(struct session *s)
{
	struct account *a = s->account;
	struct osess *o;

	/* RFC 6121 §8.5.2.2.1: a negative priority takes no messages for
	 * the bare JID; XEP-0013 §2.2 and issue 4's MAM catch-up: the
	 * client reads the store (or the archive) itself. */
	if (s->priority < 0 || acct_ctx(a)->flexible || a->mam_catchup)
		return;
	o = off_session(s);
	if (o->job != NULL && o->job->kind == JOB_FLOOD)
		return;
	for (struct job *j = o->qhead; j != NULL; j = j->next)
		if (j->kind == JOB_FLOOD)
			return;
	off_job_add(o, JOB_FLOOD, NULL, NULL, 0);
}

/* ---- housekeeping at every load ---- */

/* Records sealed to a key this login's keyring does not hold, sent to
 * keyring_checked with the account's stored keyring row. */
struct keycheck {
	struct osess *o;
	uint64_t *seqs;
	uint32_t *ids;
	size_t n;
};

/* After an admin password reset records sealed to the old keyring can
 * never be opened (DESIGN §5): the user is told and they go. But a key
 * this login lacks may also be newer than the keyring the account holds
 * (the password changed while a session kept the account loaded): those
 * records must stay. The stored row settles it. */
static void keyring_checked(void *ctx, int result, const struct store_user *user)
{
	struct keycheck *k = ctx;
	struct osess *o = k->o;
	struct seal_keyring kr;
	struct account *a;
	size_t nlost = 0;
	char body[300];

	if (!returned(o))
		goto out;
	a = o->s->account;
	if (result != 1 || user->keyring == NULL ||
	    seal_keyring_decode(user->keyring, user->keyring_len, a->bare,
				&kr) != 0 ||
	    a->srv->seal_keys == NULL ||
	    seal_keyring_mac_check(a->srv->seal_keys, &kr) != 0) {
		log_msg(LOG_WARN, o->s->full, "offline: %zu records under an "
			"unknown key kept: the keyring row could not be checked",
			k->n);
		goto out;
	}
	for (size_t i = 0; i < k->n; i++)
		if (!seal_keyring_has_key(&kr, k->ids[i]))
			k->seqs[nlost++] = k->seqs[i];
	hold(o);
	if (nlost > 0) {
		log_msg(LOG_INFO, o->s->full, "offline: %zu records sealed to a "
			"key a password reset dropped: removed", nlost);
		snprintf(body, sizeof(body), "%zu stored %s could not be opened "
			 "after a password reset and %s deleted.", nlost,
			 plural(nlost, "message", "messages"),
			 plural(nlost, "was", "were"));
		remove_seqs(a, k->seqs, nlost);
		notice(o, false, "Offline messages deleted", body);
	}
	if (o->s != NULL && k->n > nlost) {
		size_t kept = k->n - nlost;
		log_msg(LOG_WARN, o->s->full, "offline: %zu records sealed to a "
			"newer key than this login unlocked: kept", kept);
		snprintf(body, sizeof(body), "%zu stored %s arrived after your "
			 "password changed and cannot be opened by this session. "
			 "%s delivered once all your sessions have ended and you "
			 "log in again.", kept, plural(kept, "message", "messages"),
			 plural(kept, "It will be", "They will be"));
		notice(o, true, "Offline messages waiting", body);
	}
	release(o);
out:
	free(k->seqs);
	free(k->ids);
	free(k);
}

static void integrity_notice(struct osess *o, const struct store_offline *off)
{
	char body[600], first[32], last[32];
	int n = 0;

	if (o->noticed ||
	    (off->nwithheld == 0 && off->nmissing == 0 && off->nfindings == 0))
		return;
	o->noticed = true;
	log_msg(LOG_WARN, o->s->full, "offline: integrity: %zu withheld, "
		"%zu missing, %zu findings", off->nwithheld, off->nmissing,
		off->nfindings);
	if (off->nwithheld > 0) {
		format_stamp(off->withheld_first, false, first, sizeof(first));
		format_stamp(off->withheld_last, false, last, sizeof(last));
		if (strcmp(first, last) == 0)
			n = snprintf(body, sizeof(body), "%zu stored %s failed "
				     "the integrity check and %s withheld "
				     "(stored at %s). ", off->nwithheld,
				     plural(off->nwithheld, "message", "messages"),
				     plural(off->nwithheld, "was", "were"), first);
		else
			n = snprintf(body, sizeof(body), "%zu stored %s failed "
				     "the integrity check and %s withheld "
				     "(stored between %s and %s). ",
				     off->nwithheld,
				     plural(off->nwithheld, "message", "messages"),
				     plural(off->nwithheld, "was", "were"),
				     first, last);
	}
	if (off->nmissing > 0 && n >= 0 && (size_t)n < sizeof(body))
		n += snprintf(body + n, sizeof(body) - (size_t)n, "%zu stored "
			      "%s missing: removed from the store by someone "
			      "else. ", off->nmissing,
			      plural(off->nmissing, "message is", "messages are"));
	if (off->nwithheld == 0 && off->nmissing == 0 && n >= 0 &&
	    (size_t)n < sizeof(body))
		n += snprintf(body + n, sizeof(body) - (size_t)n, "The "
			      "integrity check of your offline message store "
			      "found %zu %s. ", off->nfindings,
			      plural(off->nfindings, "problem", "problems"));
	if (n >= 0 && (size_t)n < sizeof(body))
		snprintf(body + n, sizeof(body) - (size_t)n,
			 "Your other messages are not affected.");
	notice(o, true, "Offline messages withheld", body);
}

/* Sorts the load's genuine records into those this login may deliver
 * (sc->ok), expired ones (removed now, with a notice) and ones sealed to
 * a key it does not hold (checked against the stored keyring). Returns
 * false if the session ended on the way. */
static bool housekeep(struct osess *o, const struct store_offline *off,
		      struct off_scan *sc)
{
	struct session *s = o->s;
	struct account *a = s->account;
	unsigned expiry = s->srv->cfg->expiry;
	int64_t cutoff = expiry ? seal_now_us() - (int64_t)expiry * 1000000 : 0;
	uint64_t *expired = NULL;
	struct keycheck *k = NULL;
	size_t nexpired = 0;

	sc->off = off;
	sc->ok = xcalloc(off->ngenuine + 1, sizeof(*sc->ok));
	sc->nok = 0;
	for (size_t i = 0; i < off->ngenuine; i++) {
		const struct seal_record *rec = &off->genuine[i];

		if (expiry != 0 && rec->stamp < cutoff) {
			if (expired == NULL)
				expired = xcalloc(off->ngenuine, sizeof(*expired));
			expired[nexpired++] = rec->seq;
		} else if (a->unlocked != NULL &&
			   !seal_unlocked_has_key(a->unlocked, rec->key_id)) {
			if (rec->seq <= o->keys_checked)
				continue; /* reported to this session already */
			if (k == NULL) {
				k = xcalloc(1, sizeof(*k));
				k->seqs = xcalloc(off->ngenuine, sizeof(*k->seqs));
				k->ids = xcalloc(off->ngenuine, sizeof(*k->ids));
			}
			k->seqs[k->n] = rec->seq;
			k->ids[k->n++] = rec->key_id;
			o->keys_checked = rec->seq;
		} else {
			sc->ok[sc->nok++] = i;
		}
	}
	if (k != NULL) {
		k->o = o;
		o->pending++;
		store_user_get(s->srv->store, a->local, a->domain,
			       keyring_checked, k);
	}
	if (nexpired > 0) {
		char body[300], age[32];

		remove_seqs(a, expired, nexpired);
		free(expired);
		log_msg(LOG_INFO, s->full, "offline: %zu records expired: "
			"removed", nexpired);
		format_duration(expiry, age, sizeof(age));
		snprintf(body, sizeof(body), "%zu stored %s expired unread after "
			 "%s and %s deleted.", nexpired,
			 plural(nexpired, "message", "messages"), age,
			 plural(nexpired, "was", "were"));
		notice(o, false, "Offline messages expired", body);
		if (o->s == NULL)
			return false;
	}
	integrity_notice(o, off);
	return o->s != NULL;
}

/* The flood's part of a load. */
static void flood_loaded(struct osess *o, int result, const struct off_scan *sc)
{
	struct account *a = o->s->account;

	if (result != 0) {
		/* No keyring, or the store failed (it logged why): nothing
		 * to deliver now; the records, if any, stay. */
		flood_finish(o);
		return;
	}
	if (a->unlocked == NULL) {
		/* DESIGN §5: a login that did not reveal the password cannot
		 * open the store. */
		if (sc->nok > 0 && !o->told_wait) {
			char body[200];
			o->told_wait = true;
			snprintf(body, sizeof(body), "%zu sealed %s for a "
				 "password login.", sc->nok,
				 plural(sc->nok, "message waits", "messages wait"));
			notice(o, true, "Offline messages waiting", body);
			if (o->s == NULL)
				return;
		}
		flood_finish(o);
		return;
	}
	off_deliver(o, sc);
}

/* Every job's load comes back here; the job's kind decides the rest. */
static void loaded(void *ctx, int result, const struct store_offline *off)
{
	struct osess *o = ctx;
	struct off_scan sc = { NULL, NULL, 0 };

	if (!returned(o))
		return;
	hold(o);
	if (result < 0)
		log_msg(LOG_WARN, o->s->full, "offline: the store could not be "
			"loaded");
	if (result == 0 && !housekeep(o, off, &sc))
		goto out;
	if (o->job->kind == JOB_FLOOD)
		flood_loaded(o, result, &sc);
	else
		off_flex_loaded(o, result, &sc);
out:
	free(sc.ok);
	release(o);
}

/* PURGE and REMOVE answer once the store is done. */
static void purged(void *ctx, int result, const char *error)
{
	struct osess *o = ctx;

	if (!returned(o))
		return;
	hold(o);
	off_flex_done(o, result);
	release(o);
}

void off_job_remove(struct osess *o, const uint64_t *seqs, size_t n)
{
	struct account *a = o->s->account;

	o->pending++;
	store_offline_remove(a->srv->store, a->local, a->domain, seqs, n,
			     purged, o);
}

/* ---- the session and the account go ---- */

static void offline_session_end(struct session *s)
{
	void **p = &s->mod_ctx[slot(s->srv)];
	struct osess *o = *p;

	if (o == NULL)
		return;
	*p = NULL;
	/* What was not certainly delivered stays in the store; queued
	 * requests go unanswered (their sender is gone). */
	forget_drain(o, s);
	o->s = NULL;
	if (o->busy == 0 && o->pending == 0)
		osess_free(o);
}

static void offline_account_free(struct account *a)
{
	void **p = &a->mod_ctx[slot(a->srv)];

	free(*p);
	*p = NULL;
}

/* Runs after the store closed (main.c): nothing can be stored any more.
 * Nothing waits by then: from the shutdown signal on every deposit goes
 * to the store at once, and closing the store runs each batch's
 * completion, which sends what waited behind it. */
static void offline_deinit(struct server *srv)
{
	struct off_server *os;
	void **p;

	/* A start-up that failed in a later module's init: no state yet. */
	if (srv->modules == NULL)
		return;
	p = &srv->mod_ctx[slot(srv)];
	if ((os = *p) == NULL)
		return;
	if (os->n > 0)
		log_error("offline: %zu messages were not stored at shutdown",
			  os->n);
	for (size_t i = 0; i < os->n; i++)
		deposit_free(&os->pend[i]);
	free(os->pend);
	event_free(os->flush_ev);
	free(os);
	*p = NULL;
}

/* XEP-0160 §4 "msgoffline"; XEP-0013 §2.1. */
static const char *const offline_server_features[] = {
	NS_OFFLINE, "msgoffline", NULL,
};
static const char *const offline_account_features[] = { NS_OFFLINE, NULL };

/* mode = off: nothing is stored, so neither XEP is offered. */
static bool offline_enabled(struct server *srv)
{
	return mode_sealed(srv->cfg);
}

const struct module offline_module = {
	.name = "offline",
	.deinit = offline_deinit,
	.iq_handlers = off_flex_handlers,
	.enabled = offline_enabled,
	.server_features = offline_server_features,
	.account_features = offline_account_features,
	.message_undelivered = offline_undelivered,
	.initial_presence = offline_initial_presence,
	.session_end = offline_session_end,
	.account_free = offline_account_free,
	.disco_node = off_flex_disco_node,
};

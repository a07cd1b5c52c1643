/* XEP-0313 Message Archive Management (urn:xmpp:mam:2, with #extended),
 * XEP-0359 stanza-ids, XEP-0441 preferences, and the MAM side of the
 * offline catch-up (issue 4).
 *
 * Archive. Every chat or normal message with a body (or a XEP-0334
 * <store/> hint), unless it asks not to be stored, goes into the archives
 * of both parties: the recipient's when it is routed (message_routed,
 * also when no resource took it and it went to the offline store, so a
 * client that catches up by MAM loses nothing), the sender's when a local
 * session sends it (message_sent). The store seals the whole stanza to
 * the user's key exactly like an offline record (store.h, DESIGN §5),
 * decides by the user's preferences inside the same worker step, and
 * refuses a second record with the same stanza-id: a message rerouted
 * after a session died unacknowledged (XEP-0198) keeps its stanza-id and
 * is not archived twice.
 *
 * Stanza-ids. message_inbound adds <stanza-id by=recipient's bare JID/>
 * to what it archives for the recipient, after removing any that claims
 * to come from one of our domains or accounts: message_sent strips those
 * from what clients send, so one that is still there on a message from a
 * local sender was put there by us (a reroute) and is kept, which is how
 * a message keeps one id across resumption, offline delivery and the
 * archive. The sender's archive gets its own id, never shown to the
 * recipient (XEP-0313 §"Communicating the archive ID").
 *
 * Queries (mod_mam_query.c) run on the store's worker (a walk of the
 * user's whole archive, then filters and XEP-0059 paging); results are
 * opened with the user's unlocked keyring and sent with session_send.
 * Records the walk did not accept are never sent: the session gets one
 * notice naming how many are withheld. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "config.h"
#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "core/session.h"
#include "core/stanza.h"
#include "mod/mod_mam.h"
#include "seal/seal.h"
#include "server.h"
#include "store/store.h"
#include "util/log.h"
#include "util/random.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xml/xml_writer.h"
#include "xmpp/c2s_intake.h"

/* Retention runs at most this often per loaded account. */
#define MAM_EXPIRE_EVERY_US (24LL * 3600 * 1000000)

/* ---- per-session and per-account state ---- */

/* Stanza-ids of a page sent to a session catching up before its initial
 * presence; once the page is acknowledged, the offline records that
 * carry them are delivered and go. */
struct catchup_batch {
	struct catchup_batch *next;
	uint64_t no;
	char **ids;
	size_t n;
};

/* One session_when_drained registration: "every batch up to `upto` is
 * with the client". Each is called once (or never, if the session ends
 * first: session_end frees what is left); handling every batch up to
 * its own makes the order in which they are called irrelevant. */
struct catchup_token {
	struct catchup_token *next;
	struct mam_session *ms;
	uint64_t upto;
};

struct mam_account {
	int64_t expired_at;         /* last retention run, µs */
};

static void **session_slot(struct session *s)
{
	return &s->mod_ctx[modules_index(s->srv->modules, &mam_module)];
}

struct mam_session *mam_session_ctx(struct session *s)
{
	void **slot = session_slot(s);

	if (*slot == NULL) {
		struct mam_session *ms = xcalloc(1, sizeof(*ms));
		ms->s = s;
		*slot = ms;
	}
	return *slot;
}

static void **account_slot(struct account *a)
{
	return &a->mod_ctx[modules_index(a->srv->modules, &mam_module)];
}

static void batch_free(struct catchup_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->ids[i]);
	free(b->ids);
	free(b);
}

/* ---- small helpers ---- */

bool mam_enabled(const struct server *srv)
{
	return srv->cfg->mam_enabled;
}

enum store_archive_mode mam_mode_of(const char *s)
{
	if (s != NULL && strcmp(s, "always") == 0)
		return STORE_ARCHIVE_ALWAYS;
	if (s != NULL && strcmp(s, "never") == 0)
		return STORE_ARCHIVE_NEVER;
	return STORE_ARCHIVE_ROSTER;
}

const char *mam_mode_name(enum store_archive_mode m)
{
	switch (m) {
	case STORE_ARCHIVE_ALWAYS: return "always";
	case STORE_ARCHIVE_NEVER: return "never";
	case STORE_ARCHIVE_ROSTER: break;
	}
	return "roster";
}

/* An id unique in the archive and unguessable: 16 hex digits of the time
 * in µs (so ids sort roughly in time) and 64 random bits. */
#define SID_LEN 33
static void new_stanza_id(char out[SID_LEN + 1])
{
	unsigned char rnd[8];
	uint64_t r = 0;

	if (random_bytes(rnd, sizeof(rnd)) != 0) {
		/* Without randomness an id could be guessed or repeat. */
		log_error("mam: no random bytes for a stanza-id");
		abort();
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		r = r << 8 | rnd[i];
	snprintf(out, SID_LEN + 1, "%016" PRIx64 "-%016" PRIx64,
		 (uint64_t)seal_now_us(), r);
}

/* Archived: chat or normal, not an error, with a body or a <store/> hint,
 * and no XEP-0334 hint against storing it. */
static bool archivable(const struct xml_node *msg)
{
	const char *type = xml_attr(msg, "type");

	if (type != NULL && strcmp(type, "chat") != 0 &&
	    strcmp(type, "normal") != 0)
		return false;
	if (xml_child(msg, "no-store", NS_HINTS) != NULL ||
	    xml_child(msg, "no-permanent-store", NS_HINTS) != NULL)
		return false;
	return xml_child(msg, "body", XML_NS_CLIENT) != NULL ||
	       xml_child(msg, "store", NS_HINTS) != NULL;
}

/* The prepared bare form of a JID string; NULL if `s` is NULL or not a
 * JID. (jid.c prepares ASCII without libidn, so this is cheap for the
 * three addresses of every archived message.) */
static char *bare_of(const char *s)
{
	return s != NULL ? jid_normalize_bare(s) : NULL;
}

/* True if `s` is a JID of one of our domains (a domain or an account). */
static bool jid_is_local(struct server *srv, const char *s)
{
	char *bare = bare_of(s);
	const char *at;
	bool local;

	if (bare == NULL)
		return false;
	at = strchr(bare, '@');
	local = server_is_local_domain(srv, at != NULL ? at + 1 : bare);
	free(bare);
	return local;
}

/* Removes <stanza-id/> elements that claim one of our domains or accounts
 * (XEP-0359 §3.1: the server must not let them through), except one by
 * `keep_by` when that is not NULL; returns that one, or NULL. */
static struct xml_node *strip_stanza_ids(struct server *srv,
					 struct xml_node *msg,
					 const char *keep_by)
{
	struct xml_node *el, *next, *kept = NULL;

	for (el = xml_child(msg, "stanza-id", NS_SID); el != NULL; el = next) {
		const char *by = xml_attr(el, "by");

		next = xml_next(el, "stanza-id", NS_SID);
		if (keep_by != NULL && kept == NULL && by != NULL &&
		    strcmp(by, keep_by) == 0 && xml_attr(el, "id") != NULL) {
			kept = el;
			continue;
		}
		if (by == NULL || jid_is_local(srv, by))
			xml_remove(el);
	}
	return kept;
}

static char *serialize(const struct xml_node *msg, size_t *len_r)
{
	char *s = xml_serialize_reused(msg, XML_NS_CLIENT, len_r);
	char *out = xmalloc(*len_r + 1);

	/* The copy at the exact size; the stanza is plaintext the store
	 * seals, so the reused buffer keeps no copy of it. */
	memcpy(out, s, *len_r + 1);
	OPENSSL_cleanse(s, *len_r);
	return out;
}

/* ---- archiving ---- */

/* Deposits wait here for the end of the loop iteration and go to the
 * store as one batch, one transaction: a commit per message costs more
 * than everything else an archived message costs together. While a batch
 * is in the store the next one accumulates (so a busy store gets bigger
 * batches instead of a longer queue); anything that reads the archive
 * flushes first, so it sees every message routed before it. */
struct mam_server {
	struct server *srv;
	struct event *flush_ev;
	/* The batch collecting (NULL when empty), its size and bytes. */
	struct store_archive_batch *pending;
	size_t n, bytes;
	unsigned inflight;        /* batches in the store */
	struct intake_backlog backlog; /* holds client intake (c2s_intake.h) */
	/* The stanza-id message_inbound made last, until message_routed
	 * archives that message: an id made in this routing pass is new. */
	char made_id[SID_LEN + 1];
	bool warned;              /* logged the first back-pressure wait */
};

/* Flush at once beyond these. */
#define MAM_BATCH_MAX 512
#define MAM_BATCH_BYTES (4u * 1024 * 1024)
/* One batch in the store at a time: the next one collects meanwhile, so
 * a busy store gets larger batches (cheaper per record: each user's
 * keyring row and index pages are written once a batch), not a queue. */
#define MAM_INFLIGHT_MAX 1
/* Back-pressure. With [mam] backlog_pause records (or MAM_HOLD_BYTES)
 * waiting behind the batch in the store, session streams stop being read
 * until the batch is done (c2s_intake.h): the loop goes on delivering,
 * the store goes on storing, and the senders slow down. The backlog can
 * still grow past that (bytes a stream had already read, messages from
 * elsewhere); at the hard limit the whole loop waits for the store
 * (store_wait_idle), which bounds the memory at the cost of a pause. */
#define MAM_HOLD_BYTES (16u * 1024 * 1024)
#define MAM_BACKLOG_MIN 65536
#define MAM_BACKLOG_BYTES (64u * 1024 * 1024)

static void flush_cb(evutil_socket_t fd, short what, void *arg);

/* Made at first use: during init the module table (and so our index)
 * does not exist yet. */
static struct mam_server *server_ctx(struct server *srv)
{
	void **slot = &srv->mod_ctx[modules_index(srv->modules, &mam_module)];
	struct mam_server *ms = *slot;

	if (ms == NULL) {
		ms = xcalloc(1, sizeof(*ms));
		ms->srv = srv;
		ms->flush_ev = event_new(srv->base, -1, 0, flush_cb, ms);
		ms->backlog = (struct intake_backlog){ .what = "mam", .unit = "records" };
		*slot = ms;
	}
	return ms;
}

static void flush(struct mam_server *ms, bool force);

static void batch_done(void *ctx, const int *results, size_t n)
{
	struct mam_server *ms = ctx;
	size_t failed = 0;

	for (size_t i = 0; i < n; i++)
		failed += results[i] < 0;
	if (failed > 0)
		log_warn("mam: %zu of %zu messages could not be archived",
			 failed, n);
	ms->inflight--;
	/* Also while shutting down: closing the store runs completions until
	 * none is left, so what waited behind this batch is still stored. */
	flush(ms, false);
	intake_backlog_done(ms->srv, &ms->backlog);
}

static void flush(struct mam_server *ms, bool force)
{
	struct server *srv = ms->srv;

	if (ms->n == 0 || (!force && ms->inflight >= MAM_INFLIGHT_MAX))
		return;
	ms->inflight++;
	store_archive_batch_submit(srv->store, ms->pending,
				   mam_mode_of(srv->cfg->mam_default),
				   batch_done, ms);
	ms->pending = NULL;
	ms->n = 0;
	ms->bytes = 0;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	flush(arg, false);
}

/* Before anything reads the archive: every message routed so far goes
 * to the store first (store requests run in order). */
void mam_flush_before_read(struct server *srv)
{
	flush(server_ctx(srv), true);
}

static void archive(struct server *srv, const char *owner_bare,
		    const char *with, const char *stanza_id, bool outgoing,
		    bool new_id, const struct xml_node *msg)
{
	struct mam_server *ms = server_ctx(srv);
	const char *at = strchr(owner_bare, '@');
	char local[JID_PART_MAX + 1];
	struct store_archive_item it;
	size_t llen;
	void *data;

	if (at == NULL || (llen = (size_t)(at - owner_bare)) > JID_PART_MAX)
		return;
	memcpy(local, owner_bare, llen);
	local[llen] = '\0';
	it = (struct store_archive_item){
		.local = local, .domain = at + 1, .with = with,
		.stanza_id = stanza_id, .outgoing = outgoing, .new_id = new_id,
		.stamp_us = seal_now_us(),
	};
	data = serialize(msg, &it.len);
	if (ms->pending == NULL)
		ms->pending = store_archive_batch_new();
	store_archive_batch_add(ms->pending, &it, data);
	ms->n++;
	ms->bytes += it.len;
	/* Shutting down, the loop may not run again: no waiting. */
	if (srv->shutting_down) {
		flush(ms, true);
	} else if (ms->inflight >= MAM_INFLIGHT_MAX &&
		   (ms->n >= intake_backlog_max(srv->cfg->mam_backlog_pause,
						 MAM_BACKLOG_MIN) ||
		    ms->bytes >= MAM_BACKLOG_BYTES)) {
		if (!ms->warned) {
			log_warn("mam: the archive is behind by %zu messages: "
				 "waiting for the store", ms->n);
			ms->warned = true;
		}
		store_wait_idle(srv->store);
		flush(ms, true);
	} else if (ms->n >= MAM_BATCH_MAX || ms->bytes >= MAM_BATCH_BYTES) {
		flush(ms, false);
	} else if (ms->n == 1) {
		event_active(ms->flush_ev, EV_TIMEOUT, 0);
	}
	intake_backlog_check(srv, &ms->backlog,
			     ms->inflight >= MAM_INFLIGHT_MAX, ms->n, ms->bytes,
			     srv->cfg->mam_backlog_pause, MAM_HOLD_BYTES);
}

/* Runs after the store closed (main.c): what is still pending cannot be
 * stored any more. It never is: at shutdown archive() flushes at once. */
static void mam_deinit(struct server *srv)
{
	void **slot;
	struct mam_server *ms;

	/* A start-up that failed in a later module's init: no state yet. */
	if (srv->modules == NULL)
		return;
	slot = &srv->mod_ctx[modules_index(srv->modules, &mam_module)];
	if ((ms = *slot) == NULL)
		return;
	if (ms->n > 0)
		log_error("mam: %zu messages were not archived at shutdown", ms->n);
	store_archive_batch_discard(ms->pending);
	event_free(ms->flush_ev);
	free(ms);
	*slot = NULL;
}

/* XEP-0359: a message for a local account gets our stanza-id before it
 * is delivered or stored. */
static void mam_message_inbound(struct server *srv, struct xml_node *msg,
				const struct jid *to)
{
	struct xml_node *sid;
	char *bare;
	char id[SID_LEN + 1];
	bool local_sender;

	if (!mam_enabled(srv))
		return;
	bare = jid_bare(to);
	local_sender = jid_is_local(srv, xml_attr(msg, "from"));
	sid = strip_stanza_ids(srv, msg, local_sender ? bare : NULL);
	if (sid == NULL && archivable(msg)) {
		new_stanza_id(id);
		sid = xml_add_child(msg, "stanza-id", NS_SID);
		xml_set_attr(sid, "by", bare);
		xml_set_attr(sid, "id", id);
		memcpy(server_ctx(srv)->made_id, id, sizeof(id));
	}
	free(bare);
}

/* The recipient's archive: once per message, whether resources took it
 * or it went to the offline store (n == 0). */
static void mam_message_routed(struct server *srv, const struct xml_node *msg,
			       struct session *const *to, size_t n)
{
	const struct xml_node *sid;
	char *bare, *with;

	if (!mam_enabled(srv) || stanza_is_error(msg) || !archivable(msg))
		return;
	bare = bare_of(xml_attr(msg, "to"));
	with = bare_of(xml_attr(msg, "from"));
	for (sid = xml_child(msg, "stanza-id", NS_SID); sid != NULL;
	     sid = xml_next(sid, "stanza-id", NS_SID))
		if (bare != NULL && xml_attr(sid, "by") != NULL &&
		    strcmp(xml_attr(sid, "by"), bare) == 0)
			break;
	if (bare != NULL && with != NULL && sid != NULL &&
	    xml_attr(sid, "id") != NULL) {
		struct mam_server *ms = server_ctx(srv);
		const char *id = xml_attr(sid, "id");
		bool new_id = ms->made_id[0] != '\0' &&
			      strcmp(id, ms->made_id) == 0;

		/* Only the first time: the same message rerouted later (its
		 * session died unacknowledged) must meet the check. */
		ms->made_id[0] = '\0';
		archive(srv, bare, with, id, false, new_id, msg);
	}
	free(bare);
	free(with);
}

/* What a local session sends: never with a stanza-id of ours that the
 * client made up; into the sender's archive. A message to the sender's
 * own account is archived once, on the receiving side. */
static void mam_message_sent(struct session *s, struct xml_node *msg)
{
	struct server *srv = s->srv;
	char id[SID_LEN + 1];
	char *with;

	if (!mam_enabled(srv))
		return;
	strip_stanza_ids(srv, msg, NULL);
	if (!archivable(msg))
		return;
	with = bare_of(xml_attr(msg, "to"));
	if (with != NULL && strcmp(with, s->account->bare) != 0) {
		new_stanza_id(id);
		archive(srv, s->account->bare, with, id, true, true, msg);
	}
	free(with);
}

/* ---- retention ---- */

static void expired(void *ctx, int result, uint64_t n)
{
	char *jid = ctx;

	if (result == 0 && n > 0)
		log_info("mam: %s: %" PRIu64 " archived messages expired", jid, n);
	free(jid);
}

/* At most once a day per loaded account: messages older than
 * retention_days go (oldest first, never leaving a hole). */
void mam_maybe_expire(struct account *a)
{
	struct server *srv = a->srv;
	struct mam_account **slot = (struct mam_account **)account_slot(a);
	int64_t now = seal_now_us();

	if (srv->cfg->mam_retention_days == 0)
		return;
	if (*slot == NULL)
		*slot = xcalloc(1, sizeof(**slot));
	if ((*slot)->expired_at != 0 &&
	    now - (*slot)->expired_at < MAM_EXPIRE_EVERY_US)
		return;
	(*slot)->expired_at = now;
	store_archive_expire(srv->store, a->local, a->domain,
			     now - (int64_t)srv->cfg->mam_retention_days *
			     86400 * 1000000, expired, xstrdup(a->bare));
}

/* ---- the offline catch-up (issue 4) ---- */

struct catchup_remove {
	struct account *a;   /* holds a reference */
	char **ids;          /* sorted */
	size_t n;
};

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static void catchup_removed(void *ctx, int result, const char *error)
{
	char *jid = ctx;

	if (result < 0)
		log_warn("mam: %s: offline records caught up by MAM could not "
			 "be removed: %s", jid, error ? error : "error");
	free(jid);
}

/* The stanza-id by `bare` in a message, or NULL. */
static const char *our_stanza_id(const struct xml_node *msg, const char *bare)
{
	const struct xml_node *sid;

	for (sid = xml_child(msg, "stanza-id", NS_SID); sid != NULL;
	     sid = xml_next(sid, "stanza-id", NS_SID))
		if (xml_attr(sid, "by") != NULL &&
		    strcmp(xml_attr(sid, "by"), bare) == 0)
			return xml_attr(sid, "id");
	return NULL;
}

/* Offline records whose message the client now holds through an
 * acknowledged MAM page are delivered: they go, as after a flood. Only
 * records the load's walk called genuine are looked at. */
static void catchup_loaded(void *ctx, int result, const struct store_offline *o)
{
	struct catchup_remove *rm = ctx;
	struct account *a = rm->a;
	uint64_t *seqs = NULL;
	size_t nseqs = 0;

	if (result == 0 && a->unlocked != NULL) {
		seqs = xcalloc(o->ngenuine + 1, sizeof(*seqs));
		for (size_t i = 0; i < o->ngenuine; i++) {
			unsigned char *pt;
			size_t len;
			struct xml_node *msg;
			const char *id;

			if (seal_record_open(a->unlocked, a->bare,
					     SEAL_STORE_OFFLINE, &o->genuine[i],
					     &pt, &len) != 0)
				continue;
			msg = stanza_parse_message(pt, len);
			xfree_secret(pt, len);
			if (msg == NULL)
				continue;
			id = our_stanza_id(msg, a->bare);
			if (id != NULL &&
			    bsearch(&id, rm->ids, rm->n, sizeof(*rm->ids),
				    cmp_str) != NULL)
				seqs[nseqs++] = o->genuine[i].seq;
			xml_free(msg);
		}
	}
	if (nseqs > 0) {
		log_msg(LOG_INFO, a->bare, "mam: %zu offline messages delivered "
			"by a MAM catch-up", nseqs);
		store_offline_remove(a->srv->store, a->local, a->domain, seqs,
				     nseqs, catchup_removed, xstrdup(a->bare));
	}
	free(seqs);
	for (size_t i = 0; i < rm->n; i++)
		free(rm->ids[i]);
	free(rm->ids);
	account_unref(a);
	free(rm);
}

/* A catch-up page is certainly with the client, and so is every page
 * sent before it. */
static void catchup_drained(void *ctx)
{
	struct catchup_token *tok = ctx, **tp;
	struct mam_session *ms = tok->ms;
	struct account *a = ms->s->account;
	struct catchup_remove *rm;
	size_t cap = 0;

	for (tp = &ms->tokens; *tp != NULL; tp = &(*tp)->next)
		if (*tp == tok) {
			*tp = tok->next;
			break;
		}
	rm = xcalloc(1, sizeof(*rm));
	while (ms->batches != NULL && ms->batches->no <= tok->upto) {
		struct catchup_batch *b = ms->batches;

		ms->batches = b->next;
		rm->ids = xgrow(rm->ids, &cap, rm->n + b->n + 1, sizeof(*rm->ids));
		memcpy(rm->ids + rm->n, b->ids, b->n * sizeof(*b->ids));
		rm->n += b->n;
		free(b->ids);
		free(b);
	}
	free(tok);
	if (rm->n == 0) {
		free(rm->ids);
		free(rm);
		return;
	}
	qsort(rm->ids, rm->n, sizeof(*rm->ids), cmp_str);
	rm->a = a;
	account_ref(a);
	store_offline_load(a->srv->store, a->local, a->domain, catchup_loaded,
			   rm);
}

/* Remembers the ids of a page just sent to a catching-up session and
 * asks to hear when the client has it. */
void mam_catchup_page(struct session *s, const char *const *ids, size_t n)
{
	struct mam_session *ms = mam_session_ctx(s);
	struct catchup_batch *b, **tail;
	struct catchup_token *tok;

	if (n == 0)
		return;
	b = xcalloc(1, sizeof(*b));
	b->no = ++ms->next_batch;
	b->ids = xcalloc(n, sizeof(*b->ids));
	for (size_t i = 0; i < n; i++)
		b->ids[b->n++] = xstrdup(ids[i]);
	for (tail = &ms->batches; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = b;
	tok = xcalloc(1, sizeof(*tok));
	tok->ms = ms;
	tok->upto = b->no;
	tok->next = ms->tokens;
	ms->tokens = tok;
	/* May run at once (nothing unacknowledged). */
	session_when_drained(s, catchup_drained, tok);
}

/* ---- session and account life ---- */

static void mam_initial_presence(struct session *s)
{
	if (mam_enabled(s->srv))
		mam_maybe_expire(s->account);
}

static void mam_session_end(struct session *s)
{
	void **slot = session_slot(s);
	struct mam_session *ms = *slot;

	if (ms == NULL)
		return;
	/* Pages never acknowledged leave their offline records stored:
	 * the next login delivers them (with the same stanza-ids). */
	while (ms->batches != NULL) {
		struct catchup_batch *b = ms->batches;
		ms->batches = b->next;
		batch_free(b);
	}
	while (ms->tokens != NULL) {
		struct catchup_token *t = ms->tokens;
		ms->tokens = t->next;
		free(t);
	}
	free(ms);
	*slot = NULL;
}

static void mam_account_free(struct account *a)
{
	void **slot = account_slot(a);

	free(*slot);
	*slot = NULL;
}

static const struct iq_handler mam_handlers[] = {
	{ NS_MAM, "query", IQ_SCOPE_ACCOUNT, mam_form_get, mam_query_set },
	{ NS_MAM, "prefs", IQ_SCOPE_ACCOUNT, mam_prefs_get, mam_prefs_set },
	{ NS_MAM, "metadata", IQ_SCOPE_ACCOUNT, mam_metadata_get, NULL },
	{ NULL, NULL, 0, NULL, NULL },
};

/* XEP-0313 §7: on the archive's JID, i.e. the account. XEP-0359 §6: the
 * server (which adds the ids) advertises urn:xmpp:sid:0. */
static const char *const mam_account_features[] = {
	NS_MAM, NS_MAM_EXT, NS_SID, NULL,
};
static const char *const mam_server_features[] = { NS_SID, NULL };

static bool mam_module_enabled(struct server *srv)
{
	return mam_enabled(srv);
}

const struct module mam_module = {
	.name = "mam",
	.iq_handlers = mam_handlers,
	.enabled = mam_module_enabled,
	.deinit = mam_deinit,
	.server_features = mam_server_features,
	.account_features = mam_account_features,
	.message_inbound = mam_message_inbound,
	.message_sent = mam_message_sent,
	.message_routed = mam_message_routed,
	.initial_presence = mam_initial_presence,
	.session_end = mam_session_end,
	.account_free = mam_account_free,
};


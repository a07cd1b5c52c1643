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
 * Queries run on the store's worker (a walk of the user's whole archive,
 * then filters and XEP-0059 paging); results are opened here with the
 * user's unlocked keyring and sent with session_send. Records the walk
 * did not accept are never sent: the session gets one notice naming how
 * many are withheld. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "config.h"
#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "core/session.h"
#include "core/stanza.h"
#include "seal/seal.h"
#include "server.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xml/xml_parser.h"
#include "xml/xml_writer.h"

#define NS_MAM "urn:xmpp:mam:2"
#define NS_MAM_EXT "urn:xmpp:mam:2#extended"
#define NS_SID "urn:xmpp:sid:0"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_DELAY "urn:xmpp:delay"
#define NS_RSM "http://jabber.org/protocol/rsm"
#define NS_XDATA "jabber:x:data"
#define NS_HINTS "urn:xmpp:hints"
#define NS_XDATA_VALIDATE "http://jabber.org/protocol/xdata-validate"

/* Results per page when the client sets no <max/>, and the most we send
 * for one query whatever it asks (XEP-0313 lets the server limit pages). */
#define MAM_DEFAULT_PAGE 50
#define MAM_MAX_PAGE 250
/* Ids in one 'ids' field, and JIDs in the preference lists. */
#define MAM_MAX_IDS 250
#define MAM_MAX_PREFS_JIDS 1000
/* Retention runs at most this often per loaded account. */
#define MAM_EXPIRE_EVERY_US (24LL * 3600 * 1000000)

extern const struct module mam_module;

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
 * with the client". Without XEP-0198 a stream has one drain slot, so a
 * later registration replaces an earlier one, which is then never
 * called: tokens stay listed until called or the session ends. */
struct catchup_token {
	struct catchup_token *next;
	struct mam_session *ms;
	uint64_t upto;
};

struct mam_session {
	struct session *s;
	size_t notified_withheld;   /* the count the last notice named */
	struct catchup_batch *batches; /* oldest first, not yet drained */
	uint64_t next_batch;
	struct catchup_token *tokens;
};

struct mam_account {
	int64_t expired_at;         /* last retention run, µs */
};

static void **session_slot(struct session *s)
{
	return &s->mod_ctx[modules_index(s->srv->modules, &mam_module)];
}

static struct mam_session *session_ctx(struct session *s)
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

static bool enabled(const struct server *srv)
{
	return srv->cfg->mam_enabled;
}

static enum store_archive_mode mode_of(const char *s)
{
	if (s != NULL && strcmp(s, "always") == 0)
		return STORE_ARCHIVE_ALWAYS;
	if (s != NULL && strcmp(s, "never") == 0)
		return STORE_ARCHIVE_NEVER;
	return STORE_ARCHIVE_ROSTER;
}

static const char *mode_name(enum store_archive_mode m)
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

	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		/* Without randomness an id could be guessed or repeat. */
		log_error("mam: no random bytes for a stanza-id");
		abort();
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		r = r << 8 | rnd[i];
	snprintf(out, SID_LEN + 1, "%016" PRIx64 "-%016" PRIx64,
		 (uint64_t)seal_now_us(), r);
}

/* XEP-0082 DateTime with microseconds, UTC. */
#define STAMP_MAX 64
static void format_stamp(int64_t us, char out[STAMP_MAX])
{
	time_t secs = (time_t)(us / 1000000);
	long frac = (long)(us % 1000000);
	struct tm tm;

	if (frac < 0) {
		frac += 1000000;
		secs--;
	}
	gmtime_r(&secs, &tm);
	snprintf(out, STAMP_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, frac);
}

static int digits(const char **p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return -1;
		*v = *v * 10 + (**p - '0');
	}
	return 0;
}

/* XEP-0082 DateTime: CCYY-MM-DDThh:mm:ss[.sss]TZD, TZD = Z | (+|-)hh:mm. */
static int parse_stamp(const char *s, int64_t *us_r)
{
	int y, mo, d, h, mi, sec, tzh = 0, tzm = 0;
	long frac = 0, scale = 100000;
	struct tm tm;
	int64_t t;

	if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) ||
	    *s++ != '-' || digits(&s, 2, &d) || *s++ != 'T' ||
	    digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi) ||
	    *s++ != ':' || digits(&s, 2, &sec))
		return -1;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return -1;
		for (; *s >= '0' && *s <= '9'; s++) {
			frac += scale * (*s - '0');
			scale /= 10;
		}
	}
	if (*s == 'Z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int sign = *s++ == '-' ? -1 : 1;
		if (digits(&s, 2, &tzh) || *s++ != ':' || digits(&s, 2, &tzm))
			return -1;
		tzh *= sign;
		tzm *= sign;
	} else {
		return -1;
	}
	if (*s != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (int64_t)timegm(&tm) - (int64_t)tzh * 3600 - (int64_t)tzm * 60;
	*us_r = t * 1000000 + frac;
	return 0;
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

static bool is_label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* The prepared bare form of a JID string, without stringprep when it
 * cannot change anything: lower-case ASCII, local@domain or domain, a
 * plain host name, nothing Nodeprep prohibits. Anything else goes through
 * jid_normalize_bare. NULL if `s` is not a JID. (Three stringprep runs
 * per message took a third of the loop's time.) */
static char *bare_of(const char *s)
{
	const char *p, *at = NULL, *dom;

	if (s == NULL)
		return NULL;
	for (p = s; *p != '\0' && *p != '/'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '@') {
			if (at != NULL)
				goto slow;
			at = p;
		} else if (c >= 0x80 || c <= ' ' || (c >= 'A' && c <= 'Z') ||
			   strchr("\"&':<>", c) != NULL) {
			goto slow;
		}
	}
	if ((*p == '/' && p[1] == '\0') || at == s)
		goto slow;
	dom = at != NULL ? at + 1 : s;
	if (dom == p || p - dom > JID_PART_MAX || (at != NULL && at - s > JID_PART_MAX))
		goto slow;
	/* Labels of [a-z0-9-], no empty one, no trailing dot. */
	for (const char *q = dom; q < p; q++)
		if (!(is_label_char((unsigned char)*q) ||
		      (*q == '.' && q > dom && q[-1] != '.' && q + 1 < p)))
			goto slow;
	return xstrndup(s, (size_t)(p - s));
slow:
	return jid_normalize_bare(s);
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
	struct buf b = BUF_INIT;

	xml_serialize(&b, msg, XML_NS_CLIENT);
	return buf_steal(&b, len_r);
}

/* ---- archiving ---- */

/* Deposits wait here for the end of the loop iteration and go to the
 * store as one batch, one transaction: a commit per message costs more
 * than everything else an archived message costs together. While a batch
 * is in the store the next one accumulates (so a busy store gets bigger
 * batches instead of a longer queue); anything that reads the archive
 * flushes first, so it sees every message routed before it. */
struct pending_item {
	char *local, *domain, *with, *stanza_id;
	bool outgoing;
	int64_t stamp;
	char *data;
	size_t len;
};

struct mam_server {
	struct server *srv;
	struct event *flush_ev;
	struct pending_item *items;
	size_t n, cap, bytes;
	unsigned inflight;        /* batches in the store */
	bool warned;              /* logged the first back-pressure wait */
};

/* Flush at once beyond these. */
#define MAM_BATCH_MAX 512
#define MAM_BATCH_BYTES (4u * 1024 * 1024)
/* Back-pressure: with this many waiting while a batch is in the store,
 * the loop waits for the store (store_wait_idle) instead of letting the
 * backlog grow without bound. Only under sustained overload: the store
 * takes ~10-20 µs a message, so this is a pause of ~0.1 s, during which
 * clients are not read, which is what slows them down. */
#define MAM_BACKLOG_MAX 8192
#define MAM_BACKLOG_BYTES (32u * 1024 * 1024)

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
	if (!ms->srv->shutting_down)
		flush(ms, false);
}

static void flush(struct mam_server *ms, bool force)
{
	struct server *srv = ms->srv;
	struct store_archive_item *items;

	if (ms->n == 0 || (!force && ms->inflight > 0))
		return;
	items = xcalloc(ms->n, sizeof(*items));
	for (size_t i = 0; i < ms->n; i++) {
		const struct pending_item *p = &ms->items[i];
		items[i] = (struct store_archive_item){
			.local = p->local, .domain = p->domain, .with = p->with,
			.stanza_id = p->stanza_id, .outgoing = p->outgoing,
			.stamp_us = p->stamp, .stanza = p->data, .len = p->len,
		};
	}
	ms->inflight++;
	store_archive_deposit(srv->store, items, ms->n,
			      mode_of(srv->cfg->mam_default), batch_done, ms);
	free(items);
	for (size_t i = 0; i < ms->n; i++) {
		struct pending_item *p = &ms->items[i];
		free(p->local);
		free(p->domain);
		free(p->with);
		free(p->stanza_id);
		xfree_secret(p->data, p->len);
	}
	ms->n = 0;
	ms->bytes = 0;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	flush(arg, false);
}

/* Before anything reads the archive: every message routed so far goes
 * to the store first (store requests run in order). */
static void flush_before_read(struct server *srv)
{
	flush(server_ctx(srv), true);
}

static void archive(struct server *srv, const char *owner_bare,
		    const char *with, const char *stanza_id, bool outgoing,
		    const struct xml_node *msg)
{
	struct mam_server *ms = server_ctx(srv);
	const char *at = strchr(owner_bare, '@');
	struct pending_item *p;

	if (at == NULL)
		return;
	ms->items = xgrow(ms->items, &ms->cap, ms->n + 1, sizeof(*ms->items));
	p = &ms->items[ms->n++];
	p->local = xstrndup(owner_bare, (size_t)(at - owner_bare));
	p->domain = xstrdup(at + 1);
	p->with = xstrdup(with);
	p->stanza_id = xstrdup(stanza_id);
	p->outgoing = outgoing;
	p->stamp = seal_now_us();
	p->data = serialize(msg, &p->len);
	ms->bytes += p->len;
	/* Shutting down, the loop may not run again: no waiting. */
	if (srv->shutting_down) {
		flush(ms, true);
	} else if (ms->inflight > 0 && (ms->n >= MAM_BACKLOG_MAX ||
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
	for (size_t i = 0; i < ms->n; i++) {
		free(ms->items[i].local);
		free(ms->items[i].domain);
		free(ms->items[i].with);
		free(ms->items[i].stanza_id);
		xfree_secret(ms->items[i].data, ms->items[i].len);
	}
	free(ms->items);
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

	if (!enabled(srv))
		return;
	bare = jid_bare(to);
	local_sender = jid_is_local(srv, xml_attr(msg, "from"));
	sid = strip_stanza_ids(srv, msg, local_sender ? bare : NULL);
	if (sid == NULL && archivable(msg)) {
		new_stanza_id(id);
		sid = xml_add_child(msg, "stanza-id", NS_SID);
		xml_set_attr(sid, "by", bare);
		xml_set_attr(sid, "id", id);
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

	if (!enabled(srv) || stanza_is_error(msg) || !archivable(msg))
		return;
	bare = bare_of(xml_attr(msg, "to"));
	with = bare_of(xml_attr(msg, "from"));
	for (sid = xml_child(msg, "stanza-id", NS_SID); sid != NULL;
	     sid = xml_next(sid, "stanza-id", NS_SID))
		if (bare != NULL && xml_attr(sid, "by") != NULL &&
		    strcmp(xml_attr(sid, "by"), bare) == 0)
			break;
	if (bare != NULL && with != NULL && sid != NULL &&
	    xml_attr(sid, "id") != NULL)
		archive(srv, bare, with, xml_attr(sid, "id"), false, msg);
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

	if (!enabled(srv))
		return;
	strip_stanza_ids(srv, msg, NULL);
	if (!archivable(msg))
		return;
	with = bare_of(xml_attr(msg, "to"));
	if (with != NULL && strcmp(with, s->account->bare) != 0) {
		new_stanza_id(id);
		archive(srv, s->account->bare, with, id, true, msg);
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
static void maybe_expire(struct account *a)
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

/* ---- reading stored stanzas back ---- */

/* One parser per page: a synthetic stream header, then each stored
 * stanza as a top-level child. */
struct reparse {
	struct server *srv;
	struct xml_parser *p;
	struct xml_node *got;
	bool failed;
};

static void rp_open(void *ctx, const struct xml_node *header,
		    const char *content_ns)
{
}

static void rp_stanza(void *ctx, struct xml_node *stanza)
{
	struct reparse *rp = ctx;

	if (rp->got != NULL)
		xml_free(rp->got);
	rp->got = stanza;
}

static void rp_close(void *ctx)
{
}

static void rp_error(void *ctx, const char *condition, const char *text)
{
	struct reparse *rp = ctx;

	rp->failed = true;
}

static const struct xml_parser_callbacks rp_callbacks = {
	rp_open, rp_stanza, rp_close, rp_error,
};

static const char rp_header[] =
	"<stream:stream xmlns='jabber:client' "
	"xmlns:stream='http://etherx.jabber.org/streams'>";

static void rp_start(struct reparse *rp)
{
	const struct config *cfg = rp->srv->cfg;
	/* What we stored passed these limits, plus the stanza-id we added. */
	struct xml_parser_limits limits = {
		.max_stanza_bytes = cfg->max_stanza_size + 4096,
		.max_depth = cfg->max_depth + 2,
		.max_attrs = cfg->max_attrs + 4,
	};

	rp->p = xml_parser_new(&limits, &rp_callbacks, rp);
	rp->failed = false;
	xml_parser_feed(rp->p, rp_header, sizeof(rp_header) - 1);
}

static void rp_init(struct reparse *rp, struct server *srv)
{
	memset(rp, 0, sizeof(*rp));
	rp->srv = srv;
}

/* The stored stanza as a tree (caller frees), or NULL. */
static struct xml_node *rp_parse(struct reparse *rp, const unsigned char *pt,
				 size_t len)
{
	struct xml_node *st;

	if (rp->p == NULL || rp->failed) {
		xml_parser_free(rp->p);
		rp_start(rp);
	}
	rp->got = NULL;
	if (xml_parser_feed(rp->p, (const char *)pt, len) != 0 || rp->got == NULL) {
		if (rp->got != NULL)
			xml_free(rp->got);
		rp->got = NULL;
		rp->failed = true;
		return NULL;
	}
	st = rp->got;
	rp->got = NULL;
	if (stanza_kind(st) != STANZA_MESSAGE) {
		xml_free(st);
		return NULL;
	}
	return st;
}

static void rp_done(struct reparse *rp)
{
	xml_parser_free(rp->p);
	rp->p = NULL;
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
	struct reparse rp;

	rp_init(&rp, a->srv);
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
			msg = rp_parse(&rp, pt, len);
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
	rp_done(&rp);
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
static void catchup_page(struct session *s, const char *const *ids, size_t n)
{
	struct mam_session *ms = session_ctx(s);
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

/* ---- access ---- */

/* Only the account's own sessions read or configure its archive
 * (XEP-0313 §"Data privacy": forbidden otherwise). */
static struct session *owner_session(const struct iq_request *req)
{
	if (req->session == NULL || req->to->local == NULL ||
	    req->to->resource != NULL || !jid_bare_equal(req->from, req->to) ||
	    req->session->account == NULL) {
		iq_error(req, "forbidden", NULL);
		return NULL;
	}
	if (!enabled(req->srv)) {
		iq_error(req, "service-unavailable", NULL);
		return NULL;
	}
	return req->session;
}

/* A request answered later: the IQ and what the answer needs. */
struct pending {
	struct server *srv;
	struct xml_node *iq;
	char *full;           /* the querying session */
	char *bare, *local, *domain;
	/* query */
	char *queryid;
	char *with_full;      /* 'with' had a resource: exact match */
	bool flip;
	bool catchup;         /* sent before the session's initial presence */
};

static struct pending *pending_new(const struct iq_request *req,
				   struct session *s)
{
	struct pending *p = xcalloc(1, sizeof(*p));
	struct account *a = s->account;

	p->srv = req->srv;
	p->iq = xml_copy(req->iq);
	p->full = xstrdup(s->full);
	p->bare = xstrdup(a->bare);
	p->local = xstrdup(a->local);
	p->domain = xstrdup(a->domain);
	return p;
}

static void pending_free(struct pending *p)
{
	xml_free(p->iq);
	free(p->full);
	free(p->bare);
	free(p->local);
	free(p->domain);
	free(p->queryid);
	free(p->with_full);
	free(p);
}

/* iq_reply/iq_error need only srv and iq. */
static struct iq_request pending_req(const struct pending *p)
{
	return (struct iq_request){ .srv = p->srv, .iq = p->iq };
}

/* The querying session if it is still there and still this account's. */
static struct session *pending_session(const struct pending *p)
{
	struct session *s = session_find(p->srv, p->full);

	if (s == NULL || s->account == NULL || strcmp(s->account->bare, p->bare) != 0)
		return NULL;
	return s;
}

/* ---- the query form (XEP-0313 §4.1.4 "Retrieving form fields") ---- */

static struct xml_node *add_field(struct xml_node *x, const char *var,
				  const char *type)
{
	struct xml_node *f = xml_add_child(x, "field", NULL);

	xml_set_attr(f, "type", type);
	xml_set_attr(f, "var", var);
	return f;
}

static void form_get(const struct iq_request *req)
{
	struct xml_node *q, *x, *f, *v;

	if (owner_session(req) == NULL)
		return;
	q = xml_new("query", NS_MAM);
	x = xml_add_child(q, "x", NS_XDATA);
	xml_set_attr(x, "type", "form");
	f = add_field(x, "FORM_TYPE", "hidden");
	xml_add_text_child(f, "value", NS_MAM);
	add_field(x, "with", "jid-single");
	add_field(x, "start", "text-single");
	add_field(x, "end", "text-single");
	add_field(x, "before-id", "text-single");
	add_field(x, "after-id", "text-single");
	/* 'ids' is open: the server never lists the possible values. */
	f = add_field(x, "ids", "list-multi");
	v = xml_add_child(f, "validate", NS_XDATA_VALIDATE);
	xml_set_attr(v, "datatype", "xs:string");
	xml_add_child(v, "open", NULL);
	iq_reply(req, q);
}

/* ---- queries ---- */

/* The parsed request; strings point into the IQ or into `ids`. */
struct parsed_query {
	struct store_archive_query q;
	const char *ids[MAM_MAX_IDS];
	char *with_bare, *with_full;
	bool flip;
};

static void parsed_free(struct parsed_query *pq)
{
	free(pq->with_bare);
	free(pq->with_full);
}

/* Digits only, at most 9 of them. */
static int parse_count(const char *s, size_t *v)
{
	size_t n = 0, k = 0;

	for (; s[k] >= '0' && s[k] <= '9' && k < 9; k++)
		n = n * 10 + (size_t)(s[k] - '0');
	if (k == 0 || s[k] != '\0')
		return -1;
	*v = n;
	return 0;
}

/* Returns NULL or the error (condition, text) to answer with. */
static const char *parse_form(const struct xml_node *x,
			      struct parsed_query *pq, const char **text_r)
{
	const struct xml_node *f;

	for (f = xml_child(x, "field", NS_XDATA); f != NULL;
	     f = xml_next(f, "field", NS_XDATA)) {
		const char *var = xml_attr(f, "var");
		const struct xml_node *vn = xml_child(f, "value", NS_XDATA);
		const char *val = vn != NULL ? xml_text(vn) : NULL;

		if (var == NULL) {
			*text_r = "a field without var";
			return "bad-request";
		}
		if (strcmp(var, "ids") == 0) {
			for (; vn != NULL; vn = xml_next(vn, "value", NS_XDATA)) {
				if (pq->q.nids == MAM_MAX_IDS) {
					*text_r = "too many ids";
					return "policy-violation";
				}
				pq->ids[pq->q.nids++] = xml_text(vn);
			}
			continue;
		}
		/* A field without a value is absent (XEP-0004 forms often
		 * carry empty fields). */
		if (val == NULL || *val == '\0') {
			if (strcmp(var, "FORM_TYPE") == 0 || strcmp(var, "with") == 0 ||
			    strcmp(var, "start") == 0 || strcmp(var, "end") == 0 ||
			    strcmp(var, "before-id") == 0 ||
			    strcmp(var, "after-id") == 0)
				continue;
		}
		if (strcmp(var, "FORM_TYPE") == 0) {
			if (strcmp(val, NS_MAM) != 0) {
				*text_r = "FORM_TYPE is not urn:xmpp:mam:2";
				return "bad-request";
			}
		} else if (strcmp(var, "with") == 0) {
			pq->with_full = jid_normalize(val);
			pq->with_bare = jid_normalize_bare(val);
			if (pq->with_full == NULL || pq->with_bare == NULL) {
				*text_r = "'with' is not a JID";
				return "jid-malformed";
			}
			if (strcmp(pq->with_full, pq->with_bare) == 0) {
				free(pq->with_full);
				pq->with_full = NULL;
			}
			pq->q.with = pq->with_bare;
		} else if (strcmp(var, "start") == 0 || strcmp(var, "end") == 0) {
			bool start = var[0] == 's';
			if (parse_stamp(val, start ? &pq->q.start_us
					: &pq->q.end_us) != 0) {
				*text_r = "not a XEP-0082 DateTime";
				return "bad-request";
			}
			*(start ? &pq->q.has_start : &pq->q.has_end) = true;
		} else if (strcmp(var, "before-id") == 0) {
			pq->q.before_id = val;
		} else if (strcmp(var, "after-id") == 0) {
			pq->q.after_id = val;
		} else {
			/* XEP-0313 §4.1.4: an unknown field. */
			*text_r = "unknown field";
			return "feature-not-implemented";
		}
	}
	return NULL;
}

static const char *parse_rsm(const struct xml_node *set,
			     struct parsed_query *pq, const char **text_r)
{
	const struct xml_node *n;
	size_t v;

	if ((n = xml_child(set, "max", NS_RSM)) != NULL) {
		if (parse_count(xml_text(n), &v) != 0) {
			*text_r = "<max/> is not a number";
			return "bad-request";
		}
		pq->q.max = v < MAM_MAX_PAGE ? v : MAM_MAX_PAGE;
	}
	if ((n = xml_child(set, "after", NS_RSM)) != NULL) {
		pq->q.rsm_after = xml_text(n);
		if (*pq->q.rsm_after == '\0') {
			*text_r = "empty <after/>";
			return "bad-request";
		}
	}
	if ((n = xml_child(set, "before", NS_RSM)) != NULL)
		pq->q.rsm_before = xml_text(n);
	if ((n = xml_child(set, "index", NS_RSM)) != NULL) {
		if (parse_count(xml_text(n), &pq->q.index) != 0) {
			*text_r = "<index/> is not a number";
			return "bad-request";
		}
		pq->q.has_index = true;
	}
	/* XEP-0313 §4.2.2: both at once are undefined; a range is what
	 * before-id and after-id are for. */
	if (pq->q.rsm_after != NULL && pq->q.rsm_before != NULL) {
		*text_r = "use after-id and before-id for a range";
		return "bad-request";
	}
	return NULL;
}

/* The withheld-records notice: once per session for each new count. */
static void notice_withheld(struct session *s, const char *bare, size_t n,
			    int64_t first, int64_t last)
{
	struct mam_session *ms = session_ctx(s);
	struct xml_node *msg;
	char a[STAMP_MAX], b[STAMP_MAX], *text;

	if (n == 0 || n == ms->notified_withheld)
		return;
	ms->notified_withheld = n;
	format_stamp(first, a);
	format_stamp(last, b);
	text = xasprintf("%zu message%s in your archive (stored between %s "
			 "and %s) failed an integrity check and %s withheld. "
			 "The server log names them.", n, n == 1 ? "" : "s",
			 a, b, n == 1 ? "is" : "are");
	msg = stanza_new("message", s->jid.domain, s->full, "normal", NULL);
	xml_add_text_child(msg, "body", text);
	session_send(s, msg);
	xml_free(msg);
	free(text);
	log_msg(LOG_WARN, s->full, "mam: %zu archived messages withheld", n);
}

/* The message's counterpart as stored: 'to' if the owner sent it. */
static bool counterpart_is(const struct xml_node *msg, bool outgoing,
			   const char *full)
{
	char *who = jid_normalize(xml_attr(msg, outgoing ? "to" : "from"));
	bool same = who != NULL && strcmp(who, full) == 0;

	free(who);
	return same;
}

static struct xml_node *result_message(const struct pending *p,
				       const struct store_archive_msg *m,
				       struct xml_node *stored)
{
	struct xml_node *msg, *res, *fwd, *delay;
	char stamp[STAMP_MAX];

	msg = stanza_new("message", p->bare, p->full, NULL, NULL);
	res = xml_add_child(msg, "result", NS_MAM);
	if (p->queryid != NULL)
		xml_set_attr(res, "queryid", p->queryid);
	xml_set_attr(res, "id", m->stanza_id);
	fwd = xml_add_child(res, "forwarded", NS_FORWARD);
	delay = xml_add_child(fwd, "delay", NS_DELAY);
	format_stamp(m->rec->stamp, stamp);
	xml_set_attr(delay, "stamp", stamp);
	xml_copy_into(fwd, stored);
	return msg;
}

static void query_done(void *ctx, int result,
		       const struct store_archive_page *page)
{
	struct pending *p = ctx;
	struct iq_request req = pending_req(p);
	struct session *s = pending_session(p);
	struct xml_node *fin, *set, *el;
	struct reparse rp;
	const char **sent_ids = NULL;
	size_t nsent = 0, unreadable = 0;
	char num[32];

	if (s == NULL)
		goto out;
	if (result == 3) {
		iq_error(&req, "item-not-found", NULL);
		goto out;
	}
	if (result < 0) {
		iq_error(&req, "internal-server-error", NULL);
		goto out;
	}
	if (result == 0 && s->account->unlocked == NULL) {
		iq_error(&req, "not-authorized", "the archive is sealed: log in "
			 "with your password to read it");
		goto out;
	}
	rp_init(&rp, p->srv);
	if (result == 0)
		sent_ids = xcalloc(page->n + 1, sizeof(*sent_ids));
	for (size_t k = 0; result == 0 && k < page->n; k++) {
		const struct store_archive_msg *m =
			&page->msgs[p->flip ? page->n - 1 - k : k];
		struct xml_node *stored, *out;
		unsigned char *pt;
		size_t len;

		/* Genuine by the walk, so opening fails only if the keyring
		 * changed under it (an admin reset): count it as withheld. */
		if (seal_record_open(s->account->unlocked, p->bare,
				     SEAL_STORE_ARCHIVE, m->rec, &pt, &len) != 0) {
			unreadable++;
			continue;
		}
		stored = rp_parse(&rp, pt, len);
		xfree_secret(pt, len);
		if (stored == NULL) {
			unreadable++;
			continue;
		}
		if (p->with_full == NULL ||
		    counterpart_is(stored, m->outgoing, p->with_full)) {
			out = result_message(p, m, stored);
			session_send(s, out);
			xml_free(out);
			sent_ids[nsent++] = m->stanza_id;
		}
		xml_free(stored);
	}
	rp_done(&rp);

	/* <fin/> with the page's first and last ids (XEP-0059 §2.6: no
	 * <first/> or <last/> for an empty page). */
	fin = xml_new("fin", NS_MAM);
	set = xml_add_child(fin, "set", NS_RSM);
	if (result == 0) {
		xml_set_attr(fin, "complete", page->complete ? "true" : "false");
		if (page->n > 0) {
			el = xml_add_text_child(set, "first", page->msgs[0].stanza_id);
			snprintf(num, sizeof(num), "%zu", page->first_index);
			xml_set_attr(el, "index", num);
			xml_add_text_child(set, "last",
					   page->msgs[page->n - 1].stanza_id);
		}
		snprintf(num, sizeof(num), "%zu", page->count);
		xml_add_text_child(set, "count", num);
	} else {
		/* No keyring: nothing was ever archived. */
		xml_set_attr(fin, "complete", "true");
		xml_add_text_child(set, "count", "0");
	}
	iq_reply(&req, fin);
	if (result == 0) {
		s = pending_session(p); /* sending may have ended it */
		if (s != NULL)
			notice_withheld(s, p->bare, page->nwithheld + unreadable,
					page->withheld_first, page->withheld_last);
		if (s != NULL && p->catchup)
			catchup_page(s, sent_ids, nsent);
	}
	free(sent_ids);
out:
	pending_free(p);
}

static void query_set(const struct iq_request *req)
{
	struct session *s = owner_session(req);
	struct parsed_query pq;
	const struct xml_node *x, *set;
	const char *cond = NULL, *text = NULL;
	struct pending *p;

	if (s == NULL)
		return;
	memset(&pq, 0, sizeof(pq));
	pq.q.max = MAM_DEFAULT_PAGE;
	if (xml_attr(req->payload, "node") != NULL) {
		/* XEP-0313 reserves it for pubsub archives (XEP-0442). */
		iq_error(req, "feature-not-implemented", "no pubsub archives");
		return;
	}
	if ((x = xml_child(req->payload, "x", NS_XDATA)) != NULL)
		cond = parse_form(x, &pq, &text);
	if (cond == NULL && (set = xml_child(req->payload, "set", NS_RSM)) != NULL)
		cond = parse_rsm(set, &pq, &text);
	if (cond != NULL) {
		iq_error(req, cond, text);
		parsed_free(&pq);
		return;
	}
	if (s->account->unlocked == NULL) {
		/* The login did not reveal the password (DESIGN §5): the
		 * records cannot be opened. not-authorized: a password login
		 * would be allowed to read them. */
		iq_error(req, "not-authorized", "the archive is sealed: log in "
			 "with your password to read it");
		parsed_free(&pq);
		return;
	}
	pq.q.ids = pq.ids;
	pq.flip = xml_child(req->payload, "flip-page", NS_MAM) != NULL;
	p = pending_new(req, s);
	if (xml_attr(req->payload, "queryid") != NULL)
		p->queryid = xstrdup(xml_attr(req->payload, "queryid"));
	p->with_full = pq.with_full;
	pq.with_full = NULL;
	p->flip = pq.flip;
	/* Issue 4: a session that asks the archive before its initial
	 * presence is catching up by MAM: no offline flood for it. */
	if (!s->available) {
		p->catchup = true;
		s->account->mam_catchup = true;
	}
	flush_before_read(req->srv);
	maybe_expire(s->account);
	store_archive_query(req->srv->store, p->local, p->domain, &pq.q,
			    query_done, p);
	parsed_free(&pq);
}

/* ---- metadata (urn:xmpp:mam:2#extended) ---- */

static void metadata_done(void *ctx, int result,
			  const struct store_archive_page *page)
{
	struct pending *p = ctx;
	struct iq_request req = pending_req(p);
	struct xml_node *md;
	char stamp[STAMP_MAX];

	if (result < 0) {
		iq_error(&req, "internal-server-error", NULL);
		goto out;
	}
	md = xml_new("metadata", NS_MAM);
	if (result == 0 && page->first_id != NULL) {
		struct xml_node *el = xml_add_child(md, "start", NULL);
		xml_set_attr(el, "id", page->first_id);
		format_stamp(page->first_stamp, stamp);
		xml_set_attr(el, "timestamp", stamp);
		el = xml_add_child(md, "end", NULL);
		xml_set_attr(el, "id", page->last_id);
		format_stamp(page->last_stamp, stamp);
		xml_set_attr(el, "timestamp", stamp);
	}
	iq_reply(&req, md);
out:
	pending_free(p);
}

static void metadata_get(const struct iq_request *req)
{
	struct session *s = owner_session(req);
	struct store_archive_query q = { .max = 0 };
	struct pending *p;

	if (s == NULL)
		return;
	p = pending_new(req, s);
	flush_before_read(req->srv);
	store_archive_query(req->srv->store, p->local, p->domain, &q,
			    metadata_done, p);
}

/* ---- preferences (XEP-0441) ---- */

static struct xml_node *prefs_node(enum store_archive_mode mode,
				   const char *const *always, size_t nalways,
				   const char *const *never, size_t nnever)
{
	struct xml_node *prefs = xml_new("prefs", NS_MAM), *list;

	xml_set_attr(prefs, "default", mode_name(mode));
	list = xml_add_child(prefs, "always", NULL);
	for (size_t i = 0; i < nalways; i++)
		xml_add_text_child(list, "jid", always[i]);
	list = xml_add_child(prefs, "never", NULL);
	for (size_t i = 0; i < nnever; i++)
		xml_add_text_child(list, "jid", never[i]);
	return prefs;
}

static void prefs_got(void *ctx, int result,
		      const struct store_archive_prefs *prefs)
{
	struct pending *p = ctx;
	struct iq_request req = pending_req(p);

	if (result < 0)
		iq_error(&req, "internal-server-error", NULL);
	else if (result == 1)
		iq_reply(&req, prefs_node(prefs->mode, prefs->always,
					  prefs->nalways, prefs->never,
					  prefs->nnever));
	else
		iq_reply(&req, prefs_node(mode_of(p->srv->cfg->mam_default),
					  NULL, 0, NULL, 0));
	pending_free(p);
}

static void prefs_get(const struct iq_request *req)
{
	struct session *s = owner_session(req);
	struct pending *p;

	if (s == NULL)
		return;
	p = pending_new(req, s);
	store_archive_prefs_get(req->srv->store, p->local, p->domain, prefs_got, p);
}

struct prefs_set_ctx {
	struct pending *p;
	struct xml_node *reply;
};

static void prefs_stored(void *ctx, int result, const char *error)
{
	struct prefs_set_ctx *c = ctx;
	struct iq_request req = pending_req(c->p);

	if (result < 0) {
		iq_error(&req, "internal-server-error", NULL);
		xml_free(c->reply);
	} else {
		iq_reply(&req, c->reply);
	}
	pending_free(c->p);
	free(c);
}

/* Reads <always/> or <never/>: bare JIDs, normalised (the archive keeps
 * and matches counterparts by bare JID). */
static int read_list(const struct xml_node *prefs, const char *name,
		     char ***v_r, size_t *n_r, size_t *total)
{
	const struct xml_node *list = xml_child(prefs, name, NS_MAM), *j;

	*v_r = NULL;
	*n_r = 0;
	if (list == NULL)
		return 0;
	for (j = xml_child(list, "jid", NS_MAM); j != NULL;
	     j = xml_next(j, "jid", NS_MAM)) {
		char *bare = jid_normalize_bare(xml_text(j));
		if (bare == NULL || ++*total > MAM_MAX_PREFS_JIDS) {
			free(bare);
			return -1;
		}
		*v_r = xrealloc(*v_r, (*n_r + 1) * sizeof(**v_r));
		(*v_r)[(*n_r)++] = bare;
	}
	return 0;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void prefs_set(const struct iq_request *req)
{
	struct session *s = owner_session(req);
	const char *dflt = xml_attr(req->payload, "default");
	struct store_archive_prefs prefs;
	struct prefs_set_ctx *c;
	char **always = NULL, **never = NULL;
	size_t nalways = 0, nnever = 0, total = 0;

	if (s == NULL)
		return;
	if (dflt == NULL || (strcmp(dflt, "roster") != 0 &&
			     strcmp(dflt, "always") != 0 &&
			     strcmp(dflt, "never") != 0)) {
		iq_error(req, "bad-request", "default must be roster, always or never");
		return;
	}
	if (read_list(req->payload, "always", &always, &nalways, &total) != 0 ||
	    read_list(req->payload, "never", &never, &nnever, &total) != 0) {
		iq_error(req, "not-acceptable", "a bad JID or too many JIDs");
		free_list(always, nalways);
		free_list(never, nnever);
		return;
	}
	prefs = (struct store_archive_prefs){
		.mode = mode_of(dflt),
		.always = (const char *const *)always, .nalways = nalways,
		.never = (const char *const *)never, .nnever = nnever,
	};
	/* Messages routed before the change are decided by the old
	 * preferences. */
	flush_before_read(req->srv);
	c = xcalloc(1, sizeof(*c));
	c->p = pending_new(req, s);
	c->reply = prefs_node(prefs.mode, prefs.always, nalways, prefs.never,
			      nnever);
	store_archive_prefs_set(req->srv->store, c->p->local, c->p->domain,
				&prefs, prefs_stored, c);
	free_list(always, nalways);
	free_list(never, nnever);
}

/* ---- session and account life ---- */

static void mam_initial_presence(struct session *s)
{
	if (enabled(s->srv))
		maybe_expire(s->account);
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
	{ NS_MAM, "query", IQ_SCOPE_ACCOUNT, form_get, query_set },
	{ NS_MAM, "prefs", IQ_SCOPE_ACCOUNT, prefs_get, prefs_set },
	{ NS_MAM, "metadata", IQ_SCOPE_ACCOUNT, metadata_get, NULL },
	{ NULL, NULL, 0, NULL, NULL },
};

/* XEP-0313 §7: on the archive's JID, i.e. the account. XEP-0359 §6: the
 * server (which adds the ids) advertises urn:xmpp:sid:0. */
static const char *const mam_account_features[] = {
	NS_MAM, NS_MAM_EXT, NS_SID, NULL,
};
static const char *const mam_server_features[] = { NS_SID, NULL };

const struct module mam_module = {
	.name = "mam",
	.iq_handlers = mam_handlers,
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

/* XEP-0160 offline storage and XEP-0013 flexible offline retrieval over the
 * sealed store (DESIGN §5, docs/offline.md).
 *
 * Storage: a message no available resource took is sealed to the
 * recipient by the store. Delivery: at initial presence the genuine
 * records are opened with the keyring the login unlocked and sent oldest
 * first, `batch` at a time; a batch leaves the store only once the client
 * has it for certain (acked with XEP-0198, else written to its socket),
 * then the next batch goes. Anything the walk did not accept is withheld
 * and the user is told. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "core/router.h"
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

#define NS_OFFLINE "http://jabber.org/protocol/offline"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_DELAY "urn:xmpp:delay"
#define NS_HINTS "urn:xmpp:hints"
#define NS_XDATA "jabber:x:data"
/* XEP-0013 view/remove requests name at most this many items. */
#define MAX_ITEMS 1000
#define NODE_DIGITS 20

extern const struct module offline_module;

/* Per account: XEP-0013 §2.2: once a session used flexible retrieval, no
 * session of the account gets the flood. */
struct off_account {
	bool flexible;
};

/* One record opened for delivery. */
struct off_msg {
	uint64_t seq;
	size_t size;            /* plaintext bytes: about what it costs to send */
	struct xml_node *stanza;
};

/* Per session. Outlives the session while a store request is out (dead
 * is then set and the callback frees it). */
struct off_session {
	struct session *s;         /* NULL once the session ended */
	unsigned pending;          /* store requests in flight */
	bool flooding;             /* the initial flood is running */
	bool again;                /* a deposit arrived meanwhile: load again */
	bool noticed;              /* integrity notice already sent */
	uint64_t sent_upto;        /* highest seq delivered to this session */
	uint64_t *batch;           /* seqs of the batch awaiting certainty */
	size_t nbatch;
	struct off_msg *queue;     /* opened, not yet sent */
	size_t nqueue, qpos;
};

/* ---- context slots ---- */

static struct off_account *acct_ctx(struct account *a)
{
	unsigned i = modules_index(a->srv->modules, &offline_module);

	if (a->mod_ctx[i] == NULL)
		a->mod_ctx[i] = xcalloc(1, sizeof(struct off_account));
	return a->mod_ctx[i];
}

static struct off_session *sess_ctx(struct session *s)
{
	unsigned i = modules_index(s->srv->modules, &offline_module);
	struct off_session *os = s->mod_ctx[i];

	if (os == NULL) {
		os = s->mod_ctx[i] = xcalloc(1, sizeof(*os));
		os->s = s;
	}
	return os;
}

static void queue_clear(struct off_session *os)
{
	for (size_t i = os->qpos; i < os->nqueue; i++)
		xml_free(os->queue[i].stanza);
	free(os->queue);
	os->queue = NULL;
	os->nqueue = os->qpos = 0;
}

static void sess_free(struct off_session *os)
{
	queue_clear(os);
	free(os->batch);
	free(os);
}

/* Called by a store callback: false if the session went away (and the
 * context was freed when nothing else waits on it). */
static bool sess_release(struct off_session *os)
{
	os->pending--;
	if (os->s == NULL) {
		if (os->pending == 0)
			sess_free(os);
		return false;
	}
	return true;
}

/* ---- helpers ---- */

static void format_stamp(int64_t us, char *out, size_t len)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	char date[32];

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%s.%03dZ", date, (int)((us / 1000) % 1000));
}

static void format_node(uint64_t seq, char *out, size_t len)
{
	snprintf(out, len, "%0*" PRIu64, NODE_DIGITS, seq);
}

/* Client input: exactly NODE_DIGITS digits. */
static bool parse_node(const char *node, uint64_t *seq_r)
{
	uint64_t v = 0;

	if (node == NULL || strlen(node) != NODE_DIGITS)
		return false;
	for (int i = 0; i < NODE_DIGITS; i++) {
		if (node[i] < '0' || node[i] > '9')
			return false;
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(node[i] - '0');
	}
	*seq_r = v;
	return v > 0;
}

/* A notice from the server to one session (issue 3: the user is told
 * about withheld, unreadable and expired messages). */
static void notice(struct session *s, const char *subject, const char *body)
{
	struct xml_node *m = stanza_new("message", s->jid.domain, s->full,
					"normal", NULL);

	xml_add_text_child(m, "subject", subject);
	xml_add_text_child(m, "body", body);
	session_send(s, m);
	xml_free(m);
}

struct parse_ctx {
	struct xml_node *stanza;
};

static void parsed_open(void *ctx, const struct xml_node *h, const char *ns) {}
static void parsed_close(void *ctx) {}
static void parsed_error(void *ctx, const char *c, const char *t) {}

static void parsed_stanza(void *ctx, struct xml_node *st)
{
	struct parse_ctx *p = ctx;

	if (p->stanza == NULL)
		p->stanza = st;
	else
		xml_free(st);
}

/* The plaintext is one serialized stanza; parse it back in a stream of
 * its own. */
static struct xml_node *parse_stanza(const unsigned char *xml, size_t len)
{
	static const char header[] =
		"<stream:stream xmlns='jabber:client' "
		"xmlns:stream='http://etherx.jabber.org/streams'>";
	static const struct xml_parser_callbacks cb = {
		.stream_open = parsed_open,
		.stanza = parsed_stanza,
		.stream_close = parsed_close,
		.error = parsed_error,
	};
	struct xml_parser_limits limits = {
		.max_stanza_bytes = len + 64, .max_depth = 256, .max_attrs = 256,
	};
	struct parse_ctx p = { NULL };
	struct xml_parser *parser = xml_parser_new(&limits, &cb, &p);

	if (xml_parser_feed(parser, header, sizeof(header) - 1) != 0 ||
	    xml_parser_feed(parser, (const char *)xml, len) != 0) {
		xml_free(p.stanza);
		p.stanza = NULL;
	}
	xml_parser_free(parser);
	return p.stanza;
}

/* Opens one genuine record. NULL if it cannot be opened with this
 * keyring (a reset dropped its key) or does not parse. */
static struct xml_node *open_record(struct account *a,
				    const struct seal_record *rec)
{
	unsigned char *pt;
	size_t len;
	struct xml_node *st;

	if (a->unlocked == NULL ||
	    seal_record_open(a->unlocked, a->bare, SEAL_STORE_OFFLINE, rec,
			     &pt, &len) != 0)
		return NULL;
	st = parse_stanza(pt, len);
	xfree_secret(pt, len);
	return st;
}

static bool expired(const struct server *srv, int64_t stamp)
{
	unsigned expiry = srv->cfg->expiry;

	return expiry != 0 && stamp < seal_now_us() - (int64_t)expiry * 1000000;
}

/* ---- storage (XEP-0160, XEP-0334) ---- */

struct deposit {
	struct server *srv;
	struct xml_node *msg;   /* a copy, to bounce it if it cannot be stored */
	char *bare;
};

static void flood_start(struct session *s);

static void deposited(void *ctx, int result, uint64_t seq)
{
	struct deposit *d = ctx;
	struct account *a;

	switch (result) {
	case 0:
		/* A session that is flooding right now picks it up after its
		 * current batch. */
		a = hashmap_get(d->srv->accounts, d->bare);
		if (a != NULL && a->loaded)
			account_foreach_session(a, s) {
				struct off_session *os = sess_ctx(s);
				if (os->flooding)
					os->again = true;
			}
		break;
	case 1:
		router_bounce(d->srv, d->msg, "resource-constraint",
			      "offline storage quota exceeded");
		break;
	case 2:
		router_bounce(d->srv, d->msg, "service-unavailable", NULL);
		break;
	default:
		router_bounce(d->srv, d->msg, "service-unavailable",
			      "the message could not be stored");
		break;
	}
	xml_free(d->msg);
	free(d->bare);
	free(d);
}

static bool has_hint(const struct xml_node *msg, const char *name)
{
	return xml_child(msg, name, NS_HINTS) != NULL;
}

static bool offline_store(struct server *srv, struct xml_node *msg,
			  const struct jid *to)
{
	const struct config *cfg = srv->cfg;
	const char *type = xml_attr(msg, "type");
	struct deposit *d;
	struct buf b = BUF_INIT;
	struct xml_node *delay;
	char stamp[64];
	int64_t now = seal_now_us();

	if (strcmp(cfg->mode, "sealed") != 0 || to->local == NULL)
		return false;
	/* XEP-0160 §3: chat and normal only. */
	if (type != NULL && strcmp(type, "chat") != 0 && strcmp(type, "normal") != 0)
		return false;
	/* XEP-0334: the sender asked us not to keep it: it is then just
	 * undeliverable. */
	if (has_hint(msg, "no-store") || has_hint(msg, "no-permanent-store"))
		return false;
	if (!has_hint(msg, "store") && xml_child(msg, "body", XML_NS_CLIENT) == NULL &&
	    xml_child(msg, "subject", XML_NS_CLIENT) == NULL) {
		/* Chat states, receipts and markers alone lose their meaning
		 * by the time the user is back: dropped, as XEP-0160 §3
		 * allows, without an error the sender could not act on. */
		xml_free(msg);
		return true;
	}
	/* XEP-0203: when the server got it. */
	format_stamp(now, stamp, sizeof(stamp));
	delay = xml_add_child(msg, "delay", NS_DELAY);
	xml_set_attr(delay, "from", to->domain);
	xml_set_attr(delay, "stamp", stamp);
	xml_serialize(&b, msg, XML_NS_CLIENT);

	d = xcalloc(1, sizeof(*d));
	d->srv = srv;
	d->msg = msg;
	d->bare = jid_bare(to);
	store_offline_deposit(srv->store, to->local, to->domain, b.data, b.len,
			      now, cfg->max_messages, cfg->max_bytes, deposited, d);
	buf_free(&b);
	return true;
}

/* ---- flood delivery, paced ---- */

static void flood_load(struct off_session *os);

static void removed(void *ctx, int result, const char *error)
{
	struct off_session *os = ctx;

	if (!sess_release(os))
		return;
	if (result != 0)
		log_msg(LOG_WARN, os->s->full, "offline: removal failed: %s",
			error ? error : "?");
}

static void remove_seqs(struct off_session *os, const uint64_t *seqs, size_t n)
{
	struct account *a = os->s->account;

	if (n == 0)
		return;
	os->pending++;
	store_offline_remove(a->srv->store, a->local, a->domain, seqs, n,
			     removed, os);
}

static void send_batch(struct off_session *os);

/* The client has the batch for certain: only now does it leave the
 * store. Then the next batch. */
static void batch_certain(void *ctx)
{
	struct off_session *os = ctx;

	remove_seqs(os, os->batch, os->nbatch);
	free(os->batch);
	os->batch = NULL;
	os->nbatch = 0;
	send_batch(os);
}

static void send_batch(struct off_session *os)
{
	struct session *s = os->s;
	unsigned batch = s->srv->cfg->batch;
	/* A batch also stops at half the output queue limit, so the flood
	 * never gets its own reader cut off for a full queue. */
	size_t budget = s->srv->cfg->max_outq / 2, bytes = 0;

	if (os->qpos == os->nqueue) {
		queue_clear(os);
		if (os->again) {
			os->again = false;
			flood_load(os);
		} else {
			os->flooding = false;
		}
		return;
	}
	os->batch = xcalloc(batch, sizeof(*os->batch));
	while (os->qpos < os->nqueue && os->nbatch < batch &&
	       (os->nbatch == 0 || bytes + os->queue[os->qpos].size <= budget)) {
		struct off_msg *m = &os->queue[os->qpos++];

		bytes += m->size;
		session_send_stored(s, m->stanza);
		xml_free(m->stanza);
		m->stanza = NULL;
		os->batch[os->nbatch++] = m->seq;
		if (m->seq > os->sent_upto)
			os->sent_upto = m->seq;
	}
	session_when_drained(s, batch_certain, os);
}

static void integrity_notice(struct off_session *os, const struct store_offline *o)
{
	char first[64], last[64], body[512];

	size_t n = 0;

	if (os->noticed || (o->nwithheld == 0 && o->nfindings == 0))
		return;
	os->noticed = true;
	format_stamp(o->withheld_first, first, sizeof(first));
	format_stamp(o->withheld_last, last, sizeof(last));
	if (o->nwithheld > 0)
		n += (size_t)snprintf(body, sizeof(body),
			 "%zu stored message%s failed the integrity check and %s "
			 "withheld (stored between %s and %s). ", o->nwithheld,
			 o->nwithheld == 1 ? "" : "s",
			 o->nwithheld == 1 ? "was" : "were", first, last);
	if (o->nmissing > 0 && n < sizeof(body))
		n += (size_t)snprintf(body + n, sizeof(body) - n,
			 "%zu stored message%s missing: removed from the store "
			 "by someone else. ", o->nmissing,
			 o->nmissing == 1 ? " is" : "s are");
	if (o->nwithheld == 0 && o->nmissing == 0 && n < sizeof(body))
		n += (size_t)snprintf(body + n, sizeof(body) - n,
			 "Your offline message store failed its integrity check. ");
	if (n < sizeof(body))
		snprintf(body + n, sizeof(body) - n,
			 "Your other messages were delivered normally.");
	log_msg(LOG_WARN, os->s->full, "offline: %zu withheld, %zu missing, "
		"%zu findings", o->nwithheld, o->nmissing, o->nfindings);
	notice(os->s, "Offline messages withheld", body);
}

static void loaded_for_flood(void *ctx, int result, const struct store_offline *o)
{
	struct off_session *os = ctx;
	struct session *s;
	struct account *a;
	uint64_t *drop;
	size_t ndrop = 0, nexpired = 0, nunreadable = 0;

	if (!sess_release(os))
		return;
	s = os->s;
	a = s->account;
	if (result != 0) {
		os->flooding = false;
		return;
	}
	integrity_notice(os, o);
	if (a->unlocked == NULL) {
		char body[200];
		os->flooding = false;
		if (o->ngenuine == 0)
			return;
		snprintf(body, sizeof(body), "%zu sealed message%s wait%s for a "
			 "login with your password.", o->ngenuine,
			 o->ngenuine == 1 ? "" : "s", o->ngenuine == 1 ? "s" : "");
		notice(s, "Offline messages waiting", body);
		return;
	}
	drop = xcalloc(o->ngenuine + 1, sizeof(*drop));
	os->queue = xcalloc(o->ngenuine + 1, sizeof(*os->queue));
	for (size_t i = 0; i < o->ngenuine; i++) {
		const struct seal_record *rec = &o->genuine[i];
		struct xml_node *st;

		if (rec->seq <= os->sent_upto)
			continue; /* this session has it already */
		if (expired(s->srv, rec->stamp)) {
			drop[ndrop++] = rec->seq;
			nexpired++;
			continue;
		}
		st = open_record(a, rec);
		if (st == NULL) {
			/* Genuine but not openable: sealed to a key an admin
			 * password reset dropped (issue 3). */
			drop[ndrop++] = rec->seq;
			nunreadable++;
			continue;
		}
		os->queue[os->nqueue].seq = rec->seq;
		os->queue[os->nqueue].size = rec->ct_len;
		os->queue[os->nqueue].stanza = st;
		os->nqueue++;
	}
	if (nunreadable > 0) {
		char body[300];
		snprintf(body, sizeof(body), "%zu stored message%s could not be "
			 "opened after a password reset and %s deleted.",
			 nunreadable, nunreadable == 1 ? "" : "s",
			 nunreadable == 1 ? "was" : "were");
		notice(s, "Offline messages deleted", body);
	}
	if (nexpired > 0) {
		char body[300];
		snprintf(body, sizeof(body), "%zu stored message%s expired unread "
			 "after %u days and %s deleted.", nexpired,
			 nexpired == 1 ? "" : "s", s->srv->cfg->expiry / 86400,
			 nexpired == 1 ? "was" : "were");
		notice(s, "Offline messages expired", body);
	}
	if (ndrop > 0)
		log_msg(LOG_INFO, s->full, "offline: %zu expired, %zu unreadable",
			nexpired, nunreadable);
	remove_seqs(os, drop, ndrop);
	free(drop);
	send_batch(os);
}

static void flood_load(struct off_session *os)
{
	struct account *a = os->s->account;

	os->flooding = true;
	os->pending++;
	store_offline_load(a->srv->store, a->local, a->domain, loaded_for_flood, os);
}

static void flood_start(struct session *s)
{
	struct off_session *os = sess_ctx(s);

	if (os->flooding)
		return;
	flood_load(os);
}

static void offline_initial_presence(struct session *s)
{
	struct account *a = s->account;

	if (strcmp(s->srv->cfg->mode, "sealed") != 0 || s->priority < 0 ||
	    acct_ctx(a)->flexible || a->mam_catchup)
		return;
	flood_start(s);
}

static void offline_session_end(struct session *s)
{
	unsigned i = modules_index(s->srv->modules, &offline_module);
	struct off_session *os = s->mod_ctx[i];

	if (os == NULL)
		return;
	s->mod_ctx[i] = NULL;
	/* What was not certainly delivered stays in the store. */
	os->s = NULL;
	if (os->pending == 0)
		sess_free(os);
}

static void offline_account_free(struct account *a)
{
	unsigned i = modules_index(a->srv->modules, &offline_module);

	free(a->mod_ctx[i]);
	a->mod_ctx[i] = NULL;
}

/* ---- XEP-0013 flexible offline retrieval ---- */

enum flex_op { FLEX_COUNT, FLEX_HEADERS, FLEX_VIEW, FLEX_REMOVE, FLEX_FETCH };

struct flex {
	struct server *srv;
	struct off_session *os;
	enum flex_op op;
	struct xml_node *iq;        /* copy of the request */
	uint64_t *seqs;             /* VIEW, REMOVE */
	size_t nseqs;
};

static void flex_free(struct flex *f)
{
	xml_free(f->iq);
	free(f->seqs);
	free(f);
}

static void flex_reply(struct flex *f, struct xml_node *payload)
{
	struct xml_node *res = stanza_iq_result(f->iq);

	if (payload != NULL) {
		xml_copy_into(res, payload);
		xml_free(payload);
	}
	router_route(f->srv, res);
}

static bool wanted(const struct flex *f, uint64_t seq)
{
	for (size_t i = 0; i < f->nseqs; i++)
		if (f->seqs[i] == seq)
			return true;
	return false;
}

static void flex_done_removed(void *ctx, int result, const char *error)
{
	struct flex *f = ctx;

	if (sess_release(f->os)) {
		if (result == 0)
			flex_reply(f, NULL);
		else
			router_bounce(f->srv, f->iq, "internal-server-error", NULL);
	}
	flex_free(f);
}

static void flex_loaded(void *ctx, int result, const struct store_offline *o)
{
	struct flex *f = ctx;
	struct off_session *os = f->os;
	struct session *s;
	struct account *a;
	size_t found = 0;

	if (!sess_release(os)) {
		flex_free(f);
		return;
	}
	s = os->s;
	a = s->account;
	if (result < 0) {
		router_bounce(f->srv, f->iq, "internal-server-error", NULL);
		flex_free(f);
		return;
	}
	if (result == 0)
		integrity_notice(os, o);
	if (f->op == FLEX_COUNT) {
		struct xml_node *q = xml_new("query", NS_DISCO_INFO);
		struct xml_node *id = xml_add_child(q, "identity", NULL);
		struct xml_node *x, *fld;
		char n[32];

		xml_set_attr(q, "node", NS_OFFLINE);
		xml_set_attr(id, "category", "automation");
		xml_set_attr(id, "type", "message-list");
		xml_set_attr(xml_add_child(q, "feature", NULL), "var", NS_OFFLINE);
		x = xml_add_child(q, "x", NS_XDATA);
		xml_set_attr(x, "type", "result");
		fld = xml_add_child(x, "field", NULL);
		xml_set_attr(fld, "var", "FORM_TYPE");
		xml_set_attr(fld, "type", "hidden");
		xml_add_text_child(fld, "value", NS_OFFLINE);
		fld = xml_add_child(x, "field", NULL);
		xml_set_attr(fld, "var", "number_of_messages");
		snprintf(n, sizeof(n), "%zu", result == 0 ? o->ngenuine : 0);
		xml_add_text_child(fld, "value", n);
		flex_reply(f, q);
		flex_free(f);
		return;
	}
	if (f->op == FLEX_HEADERS) {
		struct xml_node *q = xml_new("query", NS_DISCO_ITEMS);

		xml_set_attr(q, "node", NS_OFFLINE);
		for (size_t i = 0; result == 0 && i < o->ngenuine; i++) {
			struct xml_node *st = open_record(a, &o->genuine[i]);
			struct xml_node *item;
			char node[NODE_DIGITS + 1];

			if (st == NULL)
				continue;
			format_node(o->genuine[i].seq, node, sizeof(node));
			item = xml_add_child(q, "item", NULL);
			xml_set_attr(item, "jid", a->bare);
			xml_set_attr(item, "node", node);
			if (xml_attr(st, "from") != NULL)
				xml_set_attr(item, "name", xml_attr(st, "from"));
			xml_free(st);
		}
		flex_reply(f, q);
		flex_free(f);
		return;
	}
	if (f->op == FLEX_REMOVE) {
		for (size_t i = 0; result == 0 && i < o->ngenuine; i++)
			if (wanted(f, o->genuine[i].seq))
				found++;
		if (found < f->nseqs) {
			router_bounce(f->srv, f->iq, "item-not-found", NULL);
			flex_free(f);
			return;
		}
		os->pending++;
		store_offline_remove(a->srv->store, a->local, a->domain, f->seqs,
				     f->nseqs, flex_done_removed, f);
		return;
	}
	/* VIEW and FETCH: the messages, each marked with its node, then the
	 * result. They stay stored until removed (XEP-0013 §2.4, §2.6). */
	for (size_t i = 0; result == 0 && i < o->ngenuine; i++) {
		const struct seal_record *rec = &o->genuine[i];
		struct xml_node *st, *mark;
		char node[NODE_DIGITS + 1];

		if (f->op == FLEX_VIEW && !wanted(f, rec->seq))
			continue;
		found++;
		st = open_record(a, rec);
		if (st == NULL)
			continue;
		format_node(rec->seq, node, sizeof(node));
		mark = xml_add_child(st, "offline", NS_OFFLINE);
		xml_set_attr(xml_add_child(mark, "item", NULL), "node", node);
		xml_set_attr(st, "to", s->full);
		session_send_stored(s, st);
		xml_free(st);
	}
	if (f->op == FLEX_VIEW && found < f->nseqs)
		router_bounce(f->srv, f->iq, "item-not-found", NULL);
	else
		flex_reply(f, NULL);
	flex_free(f);
}

/* Only the account's own resources may read its offline messages
 * (XEP-0013: forbidden otherwise). */
static bool own_request(const struct iq_request *req)
{
	return req->session != NULL && req->from->local != NULL &&
	       req->to->local != NULL &&
	       strcmp(req->from->local, req->to->local) == 0 &&
	       strcmp(req->from->domain, req->to->domain) == 0;
}

static void flex_start(const struct iq_request *req, enum flex_op op,
		       uint64_t *seqs, size_t nseqs)
{
	struct session *s = req->session;
	struct account *a = s->account;
	struct flex *f = xcalloc(1, sizeof(*f));

	/* Any use of the node before initial presence means this client
	 * reads its messages itself: no flood for the account. */
	if (!s->available)
		acct_ctx(a)->flexible = true;
	f->srv = req->srv;
	f->os = sess_ctx(s);
	f->op = op;
	f->iq = xml_copy(req->iq);
	f->seqs = seqs;
	f->nseqs = nseqs;
	f->os->pending++;
	store_offline_load(a->srv->store, a->local, a->domain, flex_loaded, f);
}

static bool offline_disco_node(const struct iq_request *req, const char *node,
			       bool items)
{
	if (strcmp(node, NS_OFFLINE) != 0 || req->to->local == NULL)
		return false;
	if (!own_request(req)) {
		iq_error(req, "forbidden", NULL);
		return true;
	}
	if (strcmp(req->srv->cfg->mode, "sealed") != 0) {
		iq_error(req, "item-not-found", NULL);
		return true;
	}
	flex_start(req, items ? FLEX_HEADERS : FLEX_COUNT, NULL, 0);
	return true;
}

static void offline_iq(const struct iq_request *req)
{
	const struct xml_node *q = req->payload;
	const struct xml_node *item;
	uint64_t *seqs = NULL;
	size_t n = 0;
	const char *action = NULL;

	if (!own_request(req)) {
		iq_error(req, "forbidden", NULL);
		return;
	}
	if (strcmp(req->srv->cfg->mode, "sealed") != 0) {
		iq_error(req, "item-not-found", NULL);
		return;
	}
	if (xml_child(q, "purge", NS_OFFLINE) != NULL) {
		if (!req->set) {
			iq_error(req, "bad-request", "purge is a set");
			return;
		}
		struct flex *f = xcalloc(1, sizeof(*f));
		struct account *a = req->session->account;
		f->srv = req->srv;
		f->os = sess_ctx(req->session);
		f->iq = xml_copy(req->iq);
		f->os->pending++;
		store_offline_purge(a->srv->store, a->local, a->domain,
				    flex_done_removed, f);
		return;
	}
	if (xml_child(q, "fetch", NS_OFFLINE) != NULL) {
		if (req->set) {
			iq_error(req, "bad-request", "fetch is a get");
			return;
		}
		flex_start(req, FLEX_FETCH, NULL, 0);
		return;
	}
	for (item = xml_child(q, "item", NS_OFFLINE); item != NULL;
	     item = xml_next(item, "item", NS_OFFLINE)) {
		const char *act = xml_attr(item, "action");
		uint64_t seq;

		if (act == NULL || (action != NULL && strcmp(act, action) != 0) ||
		    n >= MAX_ITEMS) {
			free(seqs);
			iq_error(req, "bad-request", "one action per request");
			return;
		}
		action = act;
		if (!parse_node(xml_attr(item, "node"), &seq)) {
			free(seqs);
			iq_error(req, "item-not-found", NULL);
			return;
		}
		seqs = xrealloc(seqs, (n + 1) * sizeof(*seqs));
		seqs[n++] = seq;
	}
	if (n == 0) {
		iq_error(req, "bad-request", NULL);
		return;
	}
	if (strcmp(action, "view") == 0 && !req->set) {
		flex_start(req, FLEX_VIEW, seqs, n);
	} else if (strcmp(action, "remove") == 0 && req->set) {
		flex_start(req, FLEX_REMOVE, seqs, n);
	} else {
		free(seqs);
		iq_error(req, "bad-request", NULL);
	}
}

static const struct iq_handler offline_handlers[] = {
	{ NS_OFFLINE, "offline", IQ_SCOPE_ACCOUNT, offline_iq, offline_iq },
	{ NULL, NULL, 0, NULL, NULL },
};

/* "msgoffline": XEP-0160 §5, the server stores offline messages. */
static const char *const offline_features[] = { NS_OFFLINE, "msgoffline", NULL };

const struct module offline_module = {
	.name = "offline",
	.iq_handlers = offline_handlers,
	.server_features = offline_features,
	.account_features = offline_features,
	.message_undelivered = offline_store,
	.initial_presence = offline_initial_presence,
	.session_end = offline_session_end,
	.account_free = offline_account_free,
	.disco_node = offline_disco_node,
};

/* XEP-0013 Flexible Offline Message Retrieval on the sealed store: count,
 * headers, view, remove, fetch and purge, for the account's own sessions
 * only (§4: forbidden to anyone else). Each request becomes a job of the
 * requesting session (mod_offline.h), so requests are answered in order
 * and viewed or fetched messages go out paced, like the flood, before
 * the result. Viewed and fetched messages stay stored until removed
 * (§2.5). A request before initial presence marks the account: no flood
 * for its sessions while it stays loaded (§2.2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "core/session.h"
#include "mod/mod_offline.h"
#include "server.h"
#include "store/store.h"
#include "util/xalloc.h"
#include "xml/xml.h"

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_XDATA "jabber:x:data"

/* Items one request may name: viewing sends each message (paced, but the
 * request itself is bounded); removal only costs a lookup each. */
#define VIEW_MAX 100
#define REMOVE_MAX 1000

/* ---- requests ---- */

/* The session whose own store the request is about, or NULL: XEP-0013
 * §4, only "an authorized resource of the user". A request without 'to'
 * reaches us addressed to the account's bare JID (RFC 6120 §8.1.1.1); one
 * to the server itself means the requester's own store. */
static struct session *owner(const struct iq_request *req)
{
	struct session *s = req->session;

	if (s == NULL)
		return NULL; /* not one of our clients */
	if (req->to->local == NULL)
		return s;
	if (strcmp(req->to->local, s->account->local) != 0 ||
	    strcmp(req->to->domain, s->account->domain) != 0)
		return NULL;
	return s;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts and drops repeats: a node named twice is viewed once. */
static size_t sort_unique(uint64_t *v, size_t n)
{
	size_t m = 0;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 1; i < n; i++)
		if (v[i] != v[m])
			v[++m] = v[i];
	return m + 1;
}

static void enqueue(const struct iq_request *req, struct session *s,
		    enum job_kind kind, uint64_t *seqs, size_t n)
{
	if (!off_job_add(off_session(s), kind, req->iq, seqs, n)) {
		iq_error(req, "resource-constraint",
			 "too many offline requests waiting");
		return;
	}
	/* §2.2: a session that asks before its initial presence reads the
	 * store itself; one that asks afterwards already had its flood. */
	if (!s->available)
		off_mark_flexible(s->account);
}

/* <offline/>: items (view in a get, remove in a set), or one <fetch/>
 * (get) or <purge/> (set). Nodes are checked only after the shape, so a
 * malformed request is bad-request whatever its nodes. */
static void offline_iq(const struct iq_request *req)
{
	struct session *s = owner(req);
	const struct xml_node *q = req->payload, *c;
	const char *action = req->set ? "remove" : "view";
	size_t cap = req->set ? REMOVE_MAX : VIEW_MAX, n = 0;
	uint64_t *seqs;
	bool unknown = false;

	if (s == NULL) {
		iq_error(req, "forbidden", NULL);
		return;
	}
	c = xml_first_element(q);
	if (c == NULL) {
		iq_error(req, "bad-request", NULL);
		return;
	}
	if (xml_is(c, "fetch", NS_OFFLINE) || xml_is(c, "purge", NS_OFFLINE)) {
		bool fetch = strcmp(c->name, "fetch") == 0;
		if (xml_count_elements(q) != 1 || fetch == req->set) {
			iq_error(req, "bad-request", fetch ? "fetch is a get"
				 : "purge is a set");
			return;
		}
		enqueue(req, s, fetch ? JOB_FETCH : JOB_PURGE, NULL, 0);
		return;
	}
	if (xml_count_elements(q) > cap) {
		char text[64];
		snprintf(text, sizeof(text), "at most %zu items per request", cap);
		iq_error(req, "policy-violation", text);
		return;
	}
	seqs = xcalloc(cap, sizeof(*seqs));
	for (; c != NULL; c = xml_next(c, NULL, NULL)) {
		const char *act = xml_attr(c, "action");

		if (!xml_is(c, "item", NS_OFFLINE) || act == NULL ||
		    strcmp(act, action) != 0 || xml_attr(c, "node") == NULL) {
			free(seqs);
			iq_error(req, "bad-request", req->set
				 ? "a set names items with action='remove'"
				 : "a get names items with action='view'");
			return;
		}
		if (!off_parse_node(xml_attr(c, "node"), &seqs[n]))
			unknown = true; /* not one of ours: cannot exist */
		else
			n++;
	}
	if (unknown) {
		free(seqs);
		iq_error(req, "item-not-found", NULL);
		return;
	}
	n = sort_unique(seqs, n);
	enqueue(req, s, req->set ? JOB_REMOVE : JOB_VIEW, seqs, n);
}

const struct iq_handler off_flex_handlers[] = {
	{ NS_OFFLINE, "offline", IQ_SCOPE_ACCOUNT | IQ_SCOPE_SERVER,
	  offline_iq, offline_iq },
	{ NULL, NULL, 0, NULL, NULL },
};

/* disco#info (count, §2.2) and disco#items (headers, §2.3) on the node. */
bool off_flex_disco_node(const struct iq_request *req, const char *node,
			 bool items)
{
	struct session *s;

	if (node == NULL || strcmp(node, NS_OFFLINE) != 0)
		return false;
	s = owner(req);
	if (s == NULL)
		iq_error(req, "forbidden", NULL);
	else
		enqueue(req, s, items ? JOB_HEADERS : JOB_COUNT, NULL, 0);
	return true;
}

/* ---- answers ---- */

static void reply_count(struct osess *o, size_t count)
{
	struct xml_node *q = xml_new("query", NS_DISCO_INFO);
	struct xml_node *id = xml_add_child(q, "identity", NULL);
	struct xml_node *x, *f;
	char n[32];

	xml_set_attr(q, "node", NS_OFFLINE);
	xml_set_attr(id, "category", "automation");
	xml_set_attr(id, "type", "message-list");
	xml_set_attr(xml_add_child(q, "feature", NULL), "var", NS_OFFLINE);
	/* XEP-0128 data, the FORM_TYPE of XEP-0013 §7.4. */
	x = xml_add_child(q, "x", NS_XDATA);
	xml_set_attr(x, "type", "result");
	f = xml_add_child(x, "field", NULL);
	xml_set_attr(f, "var", "FORM_TYPE");
	xml_set_attr(f, "type", "hidden");
	xml_add_text_child(f, "value", NS_OFFLINE);
	f = xml_add_child(x, "field", NULL);
	xml_set_attr(f, "var", "number_of_messages");
	snprintf(n, sizeof(n), "%zu", count);
	xml_add_text_child(f, "value", n);
	off_job_reply(o, q);
}

/* One item per deliverable record: the sender's full JID needs the record
 * opened. The answer is one stanza, so it stops short of half the output
 * queue limit (a client must not be cut off by its own headers); XEP-0013
 * has no paging, and the rest shows once some are removed. */
static void reply_headers(struct osess *o, const struct off_scan *sc)
{
	struct account *a = o->s->account;
	size_t budget = o->s->srv->cfg->max_outq / 2, bytes = 0;
	struct xml_node *q = xml_new("query", NS_DISCO_ITEMS);

	xml_set_attr(q, "node", NS_OFFLINE);
	for (size_t i = 0; i < sc->nok; i++) {
		const struct seal_record *rec = &sc->off->genuine[sc->ok[i]];
		struct xml_node *st = off_open(a, rec), *item;
		const char *from;
		char node[OFF_NODE_DIGITS + 1];

		if (st == NULL)
			continue;
		from = xml_attr(st, "from");
		if (from == NULL)
			from = a->domain;
		bytes += strlen(a->bare) + strlen(from) + OFF_NODE_DIGITS + 40;
		if (bytes > budget) {
			xml_free(st);
			break;
		}
		off_format_node(rec->seq, node);
		item = xml_add_child(q, "item", NULL);
		xml_set_attr(item, "jid", a->bare);
		xml_set_attr(item, "node", node);
		xml_set_attr(item, "name", from);
		xml_free(st);
	}
	off_job_reply(o, q);
}

/* Is every requested seq a record of the load? Both ascend: one pass. */
static bool all_present(const struct job *j, const struct off_scan *sc,
			bool deliverable_only)
{
	size_t i = 0, n = 0;

	if (sc->off == NULL)
		return j->nseqs == 0;
	n = deliverable_only ? sc->nok : sc->off->ngenuine;
	for (size_t k = 0; k < j->nseqs; k++) {
		for (;;) {
			uint64_t seq;
			if (i == n)
				return false;
			seq = sc->off->genuine[deliverable_only ? sc->ok[i] : i].seq;
			if (seq >= j->seqs[k]) {
				if (seq != j->seqs[k])
					return false;
				break;
			}
			i++;
		}
	}
	return true;
}

void off_flex_loaded(struct osess *o, int result, const struct off_scan *sc)
{
	struct job *j = o->job;
	struct account *a = o->s->account;
	bool first = !j->started;
	struct off_scan empty = { NULL, NULL, 0 };

	j->started = true;
	if (result < 0) {
		off_job_error(o, "internal-server-error", NULL);
		goto done;
	}
	if (result != 0)
		sc = &empty; /* no keyring: nothing was ever stored */
	if (a->unlocked == NULL && sc->nok > 0 &&
	    (j->kind == JOB_HEADERS || j->kind == JOB_VIEW ||
	     j->kind == JOB_FETCH)) {
		/* DESIGN §5: the records open only with the keyring a
		 * password login unlocks. */
		off_job_error(o, "not-authorized", "sealed offline messages "
			      "open only after a login with the password");
		goto done;
	}
	switch (j->kind) {
	case JOB_COUNT:
		reply_count(o, sc->nok);
		goto done;
	case JOB_HEADERS:
		reply_headers(o, sc);
		goto done;
	case JOB_REMOVE:
		if (!all_present(j, sc, false)) {
			off_job_error(o, "item-not-found", NULL);
			goto done;
		}
		off_job_remove(o, j->seqs, j->nseqs);
		return;
	case JOB_VIEW:
		if (first && !all_present(j, sc, true)) {
			off_job_error(o, "item-not-found", NULL);
			goto done;
		}
		/* fall through */
	case JOB_FETCH:
		off_deliver(o, sc);
		return;
	case JOB_FLOOD:
	case JOB_PURGE:
		break;
	}
done:
	if (o->s != NULL)
		off_job_done(o);
}

void off_flex_done(struct osess *o, int result)
{
	if (result == 0)
		off_job_reply(o, NULL);
	else
		off_job_error(o, "internal-server-error", NULL);
	if (o->s != NULL)
		off_job_done(o);
}

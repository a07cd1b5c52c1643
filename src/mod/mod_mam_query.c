/* XEP-0313 queries (the form, filters, XEP-0059 paging, results sealed
 * at rest and opened here with the user's unlocked keyring), metadata
 * (urn:xmpp:mam:2#extended) and XEP-0441 preferences. The archiving side
 * and the hooks are in mod_mam.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
#include "util/xalloc.h"
#include "xml/xml.h"

/* Results per page when the client sets no <max/>, and the most we send
 * for one query whatever it asks (XEP-0313 lets the server limit pages). */
#define MAM_DEFAULT_PAGE 50
#define MAM_MAX_PAGE 250
/* Ids in one 'ids' field, and JIDs in the preference lists. */
#define MAM_MAX_IDS 250
#define MAM_MAX_PREFS_JIDS 1000

/* ---- time stamps (XEP-0082) ---- */

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
	if (!mam_enabled(req->srv)) {
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

void mam_form_get(const struct iq_request *req)
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
	struct mam_session *ms = mam_session_ctx(s);
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
	if (result == 0)
		sent_ids = xcalloc(page->n + 1, sizeof(*sent_ids));
	for (size_t k = 0; result == 0 && k < page->n; k++) {
		const struct store_archive_msg *m =
			&page->msgs[p->flip ? page->n - 1 - k : k];
		struct xml_node *stored, *out;
		unsigned char *pt;
		size_t len;

		/* Genuine by the walk's rules (the store walked, or checked
		 * the page's records one by one), so opening fails only if
		 * the keyring changed under it (an admin reset): count it as
		 * withheld. */
		if (seal_record_open(s->account->unlocked, p->bare,
				     SEAL_STORE_ARCHIVE, m->rec, &pt, &len) != 0) {
			unreadable++;
			continue;
		}
		stored = stanza_parse_message(pt, len);
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
			mam_catchup_page(s, sent_ids, nsent);
	}
	free(sent_ids);
out:
	pending_free(p);
}

void mam_query_set(const struct iq_request *req)
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
	mam_flush_before_read(req->srv);
	mam_maybe_expire(s->account);
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

void mam_metadata_get(const struct iq_request *req)
{
	struct session *s = owner_session(req);
	struct store_archive_query q = { .max = 0 };
	struct pending *p;

	if (s == NULL)
		return;
	p = pending_new(req, s);
	mam_flush_before_read(req->srv);
	store_archive_query(req->srv->store, p->local, p->domain, &q,
			    metadata_done, p);
}

/* ---- preferences (XEP-0441) ---- */

static struct xml_node *prefs_node(enum store_archive_mode mode,
				   const char *const *always, size_t nalways,
				   const char *const *never, size_t nnever)
{
	struct xml_node *prefs = xml_new("prefs", NS_MAM), *list;

	xml_set_attr(prefs, "default", mam_mode_name(mode));
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
		iq_reply(&req, prefs_node(mam_mode_of(p->srv->cfg->mam_default),
					  NULL, 0, NULL, 0));
	pending_free(p);
}

void mam_prefs_get(const struct iq_request *req)
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

void mam_prefs_set(const struct iq_request *req)
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
		.mode = mam_mode_of(dflt),
		.always = (const char *const *)always, .nalways = nalways,
		.never = (const char *const *)never, .nnever = nnever,
	};
	/* Messages routed before the change are decided by the old
	 * preferences. */
	mam_flush_before_read(req->srv);
	c = xcalloc(1, sizeof(*c));
	c->p = pending_new(req, s);
	c->reply = prefs_node(prefs.mode, prefs.always, nalways, prefs.never,
			      nnever);
	store_archive_prefs_set(req->srv->store, c->p->local, c->p->domain,
				&prefs, prefs_stored, c);
	free_list(always, nalways);
	free_list(never, nnever);
}


/* XEP-0163 Personal Eventing Protocol on XEP-0060, with XEP-0223 private
 * storage: every account is a pubsub service at its bare JID.
 *
 * This file is the protocol: the pubsub and pubsub#owner requests, the
 * account's disco, the hooks, and the mod_pep.h contract. What a request
 * does lives in mod_pep_items.c (items), mod_pep_node.c (nodes),
 * mod_pep_config.c (configuration), mod_pep_access.c (access models) and
 * mod_pep_notify.c (notifications); see mod_pep-private.h.
 *
 * Implemented (XEP-0060 §10 features, advertised on the account):
 * publish with auto-create and publish-options, item ids, retract,
 * items (all, the newest N, by id), create (and configure), configure,
 * default, delete, purge, subscribe/unsubscribe, subscriptions and
 * affiliations retrieval; the presence, open, roster and whitelist
 * access models; filtered notifications by XEP-0115 caps; the last item
 * on presence. Not implemented (answered with <unsupported/>):
 * subscription options, instant nodes, the authorize access model,
 * owner management of subscriptions and affiliations. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "core/router.h"
#include "core/session.h"
#include "core/stanza.h"
#include "mod/mod_caps.h"
#include "mod/mod_pep-private.h"
#include "mod/mod_pep.h"
#include "server.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"

/* ---- requests ---- */

/* A request answered later: a copy of the IQ and who asked. */
struct pep_req {
	struct server *srv;
	struct account *account; /* the owner's, referenced */
	struct xml_node *iq;
	struct xml_node *op;     /* the <pubsub/>'s operation child, in iq */
	char *from;              /* requester, full JID */
	char *from_bare;
	char *owner;             /* the service: the account's bare JID */
	char *node;              /* the op's 'node', or NULL */
	/* publish */
	struct pep_config want;
	pep_fields set;
	bool has_options;
	char *new_id;
	/* items */
	char **ids;
	size_t nids;
	size_t max;
	/* retract */
	int notify;
	/* disco */
	bool disco_items;
};

static void req_free(struct pep_req *r)
{
	pep_account_of(r->account)->busy--;
	account_unref(r->account);
	xml_free(r->iq);
	free(r->from);
	free(r->from_bare);
	free(r->owner);
	free(r->node);
	pep_config_free(&r->want);
	free(r->new_id);
	for (size_t i = 0; i < r->nids; i++)
		free(r->ids[i]);
	free(r->ids);
	free(r);
}

static bool req_is_owner(const struct pep_req *r)
{
	return strcmp(r->from_bare, r->owner) == 0;
}

static void send_error(struct server *srv, const struct xml_node *iq,
		       const struct pep_error *err)
{
	struct xml_node *reply = stanza_error_reply(
		iq, err->cond, err->text[0] != '\0' ? err->text : NULL);
	struct xml_node *app;

	if (reply == NULL)
		return;
	if (err->app != NULL) {
		app = xml_add_child(xml_child(reply, "error", XML_NS_CLIENT),
				    err->app, NS_PUBSUB_ERRORS);
		if (err->feature != NULL)
			xml_set_attr(app, "feature", err->feature);
	}
	router_route(srv, reply);
}

static void req_error(struct pep_req *r, const struct pep_error *err)
{
	send_error(r->srv, r->iq, err);
	req_free(r);
}

static void req_fail(struct pep_req *r, const char *cond, const char *app,
		     const char *text)
{
	struct pep_error err;

	pep_error_set(&err, cond, app, text);
	req_error(r, &err);
}

static void req_reply(struct pep_req *r, struct xml_node *payload)
{
	struct iq_request q = { .srv = r->srv, .iq = r->iq };

	iq_reply(&q, payload);
	req_free(r);
}

/* Answers at once, before any state is looked at. */
static void fail_now(const struct iq_request *req, const char *cond,
		     const char *app, const char *feature, const char *text)
{
	struct pep_error err;

	pep_error_set(&err, cond, app, text);
	err.feature = feature;
	send_error(req->srv, req->iq, &err);
}

static void unsupported(const struct iq_request *req, const char *feature)
{
	fail_now(req, "feature-not-implemented", "unsupported", feature, NULL);
}

/* A copy of the request, counted against the owner's requests in
 * flight: NULL (answered) when there are too many. The account is the
 * one the router loaded to dispatch the request. */
static struct pep_req *req_new(const struct iq_request *req,
			       const char *op_name)
{
	char *owner = jid_bare(req->to);
	struct account *a = hashmap_get(req->srv->accounts, owner);
	struct pep_account *pa;
	struct pep_req *r;

	if (a == NULL || !a->loaded) {
		fail_now(req, "internal-server-error", NULL, NULL, NULL);
		free(owner);
		return NULL;
	}
	pa = pep_account_of(a);
	if (pa->busy >= PEP_BUSY_MAX) {
		fail_now(req, "resource-constraint", NULL, NULL,
			 "too many requests at once");
		free(owner);
		return NULL;
	}
	pa->busy++;
	account_ref(a);
	r = xcalloc(1, sizeof(*r));
	r->srv = req->srv;
	r->account = a;
	r->iq = xml_copy(req->iq);
	r->op = op_name != NULL
		? xml_child(xml_first_element(r->iq), op_name, NULL) : NULL;
	r->from = jid_full(req->from);
	r->from_bare = jid_bare(req->from);
	r->owner = owner;
	if (r->op != NULL && xml_attr(r->op, "node") != NULL)
		r->node = xstrdup(xml_attr(r->op, "node"));
	pep_config_default(&r->want);
	r->notify = -1;
	return r;
}

/* <pubsub xmlns=ns><name node=node/></pubsub> */
static struct xml_node *pubsub_reply(const char *ns, const char *name,
				     const char *node, struct xml_node **el_r)
{
	struct xml_node *ps = xml_new("pubsub", ns);
	struct xml_node *el = xml_add_child(ps, name, NULL);

	if (node != NULL)
		xml_set_attr(el, "node", node);
	if (el_r != NULL)
		*el_r = el;
	return ps;
}

/* The common checks on the operation element: a node name (most
 * operations need one: XEP-0060 'nodeid-required'), and who may ask. */
static bool check_node(const struct iq_request *req,
		       const struct xml_node *op, bool owner_only,
		       const char *missing_cond)
{
	const char *node = xml_attr(op, "node");

	if (owner_only && !jid_bare_equal(req->from, req->to)) {
		fail_now(req, "forbidden", NULL, NULL, NULL);
		return false;
	}
	if (node == NULL || *node == '\0') {
		fail_now(req, missing_cond, "nodeid-required", NULL, NULL);
		return false;
	}
	if (strlen(node) > PEP_NODE_MAX) {
		fail_now(req, "not-acceptable", NULL, NULL,
			 "the node name is too long");
		return false;
	}
	return true;
}

struct stepper {
	struct pep_req *r;
	void (*step)(struct pep_req *, struct account *, struct pep_account *);
};

static void service_ready(void *ctx, struct account *a, struct pep_account *pa)
{
	struct stepper *st = ctx;

	if (pa == NULL)
		req_fail(st->r, a->exists ? "internal-server-error"
					  : "item-not-found", NULL, NULL);
	else
		st->step(st->r, a, pa);
	account_unref(a);
	free(st);
}

/* Runs `step` with the owner's service loaded. */
static void with_service(struct pep_req *r,
			 void (*step)(struct pep_req *, struct account *,
				      struct pep_account *))
{
	struct stepper *st = xmalloc(sizeof(*st));

	st->r = r;
	st->step = step;
	pep_account_get(r->srv, r->owner, service_ready, st);
}

/* The node, or the error for a missing one (§6.5.9.11 and the like). */
static struct pep_node *req_node(struct pep_req *r, struct pep_account *pa)
{
	struct pep_node *n = pep_node_find(pa, r->node);

	if (n == NULL)
		req_fail(r, "item-not-found", NULL, NULL);
	return n;
}

/* The node if the requester may read it, else answers the error. */
static struct pep_node *req_readable_node(struct pep_req *r, struct account *a,
					  struct pep_account *pa)
{
	struct pep_node *n = req_node(r, pa);
	enum pep_denial d;
	struct pep_error err;

	if (n == NULL)
		return NULL;
	d = pep_access_check(a, n, r->from_bare);
	if (d != PEP_ALLOWED) {
		pep_denial_error(d, &err);
		req_error(r, &err);
		return NULL;
	}
	return n;
}

/* ---- publish (XEP-0060 §7.1) ---- */

static void published(void *ctx, int result, const struct pep_error *err)
{
	struct pep_req *r = ctx;
	struct xml_node *ps, *pub;

	if (result != 0) {
		req_error(r, err);
		return;
	}
	ps = pubsub_reply(NS_PUBSUB, "publish", r->node, &pub);
	xml_set_attr(xml_add_child(pub, "item", NULL), "id", r->new_id);
	req_reply(r, ps);
}

static void publish_step(struct pep_req *r, struct account *a,
			 struct pep_account *pa)
{
	struct xml_node *item = xml_child(r->op, "item", NS_PUBSUB);

	(void)pa;
	pep_publish_item(r->srv, a, r->node, xml_attr(item, "id"),
			 xml_first_element(item),
			 r->has_options ? &r->want : NULL, r->set, &r->new_id,
			 published, r);
}

static void publish(const struct iq_request *req, const struct xml_node *op)
{
	const struct xml_node *ps = req->payload, *item, *po, *x;
	struct pep_req *r;
	struct pep_error err;
	size_t nitems = xml_count_elements(op);

	if (!check_node(req, op, true, "bad-request"))
		return;
	item = xml_child(op, "item", NS_PUBSUB);
	if (nitems == 0 || item == NULL) {
		fail_now(req, "bad-request", "item-required", NULL, NULL);
		return;
	}
	if (nitems > 1) {
		fail_now(req, "bad-request", "invalid-payload", NULL,
			 "one item per publish");
		return;
	}
	if (xml_count_elements(item) == 0) {
		fail_now(req, "bad-request", "payload-required", NULL, NULL);
		return;
	}
	if (xml_count_elements(item) > 1) {
		fail_now(req, "bad-request", "invalid-payload", NULL,
			 "one payload per item");
		return;
	}
	if ((r = req_new(req, "publish")) == NULL)
		return;
	po = xml_child(ps, "publish-options", NS_PUBSUB);
	if (po != NULL && xml_first_element(po) != NULL) {
		x = xml_child(po, "x", NS_XDATA);
		if (x == NULL || pep_config_apply_form(
			    &r->want, x, NS_PUBSUB_PUBLISH_OPTIONS,
			    req->srv->cfg->pep_max_items, &r->set, &err) != 0) {
			/* A malformed form is a bad request; options we
			 * cannot meet are unmet preconditions (§7.1.5). */
			if (x == NULL)
				pep_error_set(&err, "bad-request", NULL,
					      "publish-options without a form");
			else if (strcmp(err.cond, "bad-request") != 0) {
				err.cond = "conflict";
				err.app = "precondition-not-met";
			}
			req_error(r, &err);
			return;
		}
		r->has_options = true;
	}
	with_service(r, publish_step);
}

/* ---- retract (§7.2) ---- */

static void retracted(void *ctx, int result, const struct pep_error *err)
{
	struct pep_req *r = ctx;

	if (result != 0)
		req_error(r, err);
	else
		req_reply(r, NULL);
}

static void retract_step(struct pep_req *r, struct account *a,
			 struct pep_account *pa)
{
	const struct xml_node *item = xml_child(r->op, "item", NS_PUBSUB);

	(void)pa;
	pep_retract_item(r->srv, a, r->node, xml_attr(item, "id"), r->notify,
			 retracted, r);
}

static int parse_notify(const char *v)
{
	if (v == NULL)
		return -1;
	return strcmp(v, "1") == 0 || strcmp(v, "true") == 0 ? 1 : 0;
}

static void retract(const struct iq_request *req, const struct xml_node *op)
{
	const struct xml_node *item;
	struct pep_req *r;

	if (!check_node(req, op, true, "bad-request"))
		return;
	item = xml_child(op, "item", NS_PUBSUB);
	if (item == NULL || xml_attr(item, "id") == NULL ||
	    xml_count_elements(op) != 1) {
		fail_now(req, "bad-request", "item-required", NULL, NULL);
		return;
	}
	if ((r = req_new(req, "retract")) == NULL)
		return;
	r->notify = parse_notify(xml_attr(op, "notify"));
	with_service(r, retract_step);
}

/* ---- items (§6.5) ---- */

static void items_read(void *ctx, int result, const struct pep_item *items,
		       size_t n)
{
	struct pep_req *r = ctx;
	struct xml_node *ps, *el;

	if (result < 0) {
		req_fail(r, "internal-server-error", NULL, NULL);
		return;
	}
	if (result > 0) {
		req_fail(r, "item-not-found", NULL, NULL);
		return;
	}
	if (r->disco_items) {
		ps = xml_new("query", NS_DISCO_ITEMS);
		xml_set_attr(ps, "node", r->node);
		for (size_t i = 0; i < n; i++) {
			el = xml_add_child(ps, "item", NULL);
			xml_set_attr(el, "jid", r->owner);
			xml_set_attr(el, "name", items[i].id);
		}
		req_reply(r, ps);
		return;
	}
	ps = pubsub_reply(NS_PUBSUB, "items", r->node, &el);
	for (size_t i = 0; i < n; i++)
		pep_item_xml(el, NS_PUBSUB, &items[i], true);
	req_reply(r, ps);
}

static void items_step(struct pep_req *r, struct account *a,
		       struct pep_account *pa)
{
	if (req_readable_node(r, a, pa) == NULL)
		return;
	pep_read_items(r->srv, a, r->node, (const char *const *)r->ids,
		       r->nids, r->max, items_read, r);
}

static int parse_count(const char *v, size_t *out)
{
	char *end;
	unsigned long n;

	if (v == NULL || *v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (*end != '\0' || errno != 0 || n == 0)
		return -1;
	*out = n;
	return 0;
}

static void items(const struct iq_request *req, const struct xml_node *op)
{
	const struct xml_node *it;
	struct pep_req *r;
	const char *max = xml_attr(op, "max_items");
	size_t n = 0, nmax = 0;

	if (!check_node(req, op, false, "bad-request"))
		return;
	if (max != NULL && parse_count(max, &nmax) != 0) {
		fail_now(req, "bad-request", NULL, NULL,
			 "max_items must be a positive number");
		return;
	}
	for (it = xml_child(op, "item", NS_PUBSUB); it != NULL;
	     it = xml_next(it, "item", NS_PUBSUB)) {
		if (xml_attr(it, "id") == NULL) {
			fail_now(req, "bad-request", NULL, NULL,
				 "an item without an id");
			return;
		}
		if (++n > PEP_IDS_MAX) {
			fail_now(req, "policy-violation", NULL, NULL,
				 "too many item ids");
			return;
		}
	}
	if ((r = req_new(req, "items")) == NULL)
		return;
	r->max = nmax;
	r->ids = xcalloc(n + 1, sizeof(char *));
	for (it = xml_child(r->op, "item", NS_PUBSUB); it != NULL;
	     it = xml_next(it, "item", NS_PUBSUB))
		r->ids[r->nids++] = xstrdup(xml_attr(it, "id"));
	with_service(r, items_step);
}

/* ---- create (§8.1) ---- */

static void create_step(struct pep_req *r, struct account *a,
			struct pep_account *pa)
{
	if (pep_node_find(pa, r->node) != NULL) {
		req_fail(r, "conflict", NULL, NULL);
		return;
	}
	if (pep_node_count(pa) >= r->srv->cfg->pep_max_nodes) {
		req_fail(r, "policy-violation", "max-nodes-exceeded",
			 "too many nodes");
		return;
	}
	pep_node_create(a, pa, r->node, &r->want);
	req_reply(r, NULL);
}

static void create(const struct iq_request *req, const struct xml_node *op)
{
	const struct xml_node *conf = xml_child(req->payload, "configure",
						NS_PUBSUB);
	const struct xml_node *x;
	struct pep_req *r;
	struct pep_error err;

	/* §8.1.2: no instant nodes. */
	if (!check_node(req, op, true, "not-acceptable"))
		return;
	if ((r = req_new(req, "create")) == NULL)
		return;
	x = conf != NULL ? xml_child(conf, "x", NS_XDATA) : NULL;
	if (x != NULL && pep_config_apply_form(&r->want, x,
					       NS_PUBSUB_NODE_CONFIG,
					       req->srv->cfg->pep_max_items,
					       &r->set, &err) != 0) {
		req_error(r, &err);
		return;
	}
	with_service(r, create_step);
}

/* ---- subscriptions (§6.1, §6.2, §5.6) ---- */

/* The 'jid' of a (un)subscribe request, prepared, if it is the
 * requester's bare or full JID (§6.1.3.1). */
static char *own_jid(const struct iq_request *req, const struct xml_node *op)
{
	const char *jid = xml_attr(op, "jid");
	const char *error;
	struct jid j;
	char *out = NULL;

	if (jid == NULL || jid_parse(jid, &j, &error) != 0)
		return NULL;
	if (jid_bare_equal(&j, req->from))
		out = jid_full(&j);
	jid_free(&j);
	return out;
}

static bool node_has_sub(const struct pep_node *n, const char *jid, size_t *at)
{
	for (size_t i = 0; i < n->nsubs; i++)
		if (strcmp(n->subs[i], jid) == 0) {
			if (at != NULL)
				*at = i;
			return true;
		}
	return false;
}

static bool sub_of(const char *sub, const char *bare)
{
	size_t len = strlen(bare);

	return strncmp(sub, bare, len) == 0 &&
	       (sub[len] == '\0' || sub[len] == '/');
}

static void remove_sub(struct pep_node *n, size_t at)
{
	free(n->subs[at]);
	memmove(&n->subs[at], &n->subs[at + 1],
		(n->nsubs - at) * sizeof(char *));
	n->nsubs--;
}

/* One entity holds a few subscriptions to a node (its bare JID, some
 * resources): past that, its oldest goes, so that resources long gone
 * do not pile up and one entity cannot take every place. */
static void drop_oldest_of(struct pep_node *n, const char *bare)
{
	size_t count = 0, oldest = 0;

	for (size_t i = n->nsubs; i-- > 0;)
		if (sub_of(n->subs[i], bare)) {
			count++;
			oldest = i;
		}
	if (count >= PEP_SUBS_PER_ENTITY)
		remove_sub(n, oldest);
}

static struct xml_node *subscription_xml(struct xml_node *parent,
					 const char *node, const char *jid)
{
	struct xml_node *s = xml_add_child(parent, "subscription", NULL);

	xml_set_attr(s, "node", node);
	xml_set_attr(s, "jid", jid);
	xml_set_attr(s, "subscription", "subscribed");
	return s;
}

static void subscribe_step(struct pep_req *r, struct account *a,
			   struct pep_account *pa)
{
	struct pep_node *n = req_readable_node(r, a, pa);
	const char *jid;
	struct xml_node *ps;

	if (n == NULL)
		return;
	jid = r->ids[0];
	if (!node_has_sub(n, jid, NULL)) {
		drop_oldest_of(n, r->from_bare);
		if (n->nsubs >= PEP_SUBSCRIBERS_MAX) {
			req_fail(r, "policy-violation", "too-many-subscriptions",
				 NULL);
			return;
		}
		n->subs = xrealloc(n->subs, (n->nsubs + 2) * sizeof(char *));
		n->subs[n->nsubs++] = xstrdup(jid);
		n->subs[n->nsubs] = NULL;
		pep_node_save(a, n);
	}
	ps = xml_new("pubsub", NS_PUBSUB);
	subscription_xml(ps, n->name, jid);
	/* §6.1.7: the last item follows the result. */
	pep_send_last(r->srv, a, n, jid);
	req_reply(r, ps);
}

static void unsubscribe_step(struct pep_req *r, struct account *a,
			     struct pep_account *pa)
{
	struct pep_node *n = req_node(r, pa);
	size_t at;

	if (n == NULL)
		return;
	if (!node_has_sub(n, r->ids[0], &at)) {
		req_fail(r, "unexpected-request", "not-subscribed", NULL);
		return;
	}
	remove_sub(n, at);
	pep_node_save(a, n);
	req_reply(r, NULL);
}

/* <subscribe/> or <unsubscribe/>. */
static void subscription_change(const struct iq_request *req,
				const struct xml_node *op)
{
	bool subscribe = strcmp(op->name, "subscribe") == 0;
	struct pep_req *r;
	char *jid;

	if (!check_node(req, op, false, "bad-request"))
		return;
	if ((jid = own_jid(req, op)) == NULL) {
		if (subscribe)
			fail_now(req, "bad-request", "invalid-jid", NULL, NULL);
		else
			fail_now(req, "forbidden", NULL, NULL, NULL);
		return;
	}
	r = req_new(req, op->name);
	if (r == NULL) {
		free(jid);
		return;
	}
	r->ids = xcalloc(2, sizeof(char *));
	r->ids[r->nids++] = jid;
	with_service(r, subscribe ? subscribe_step : unsubscribe_step);
}

/* §5.6: the requester's own subscriptions; §5.7: affiliations (the
 * owner owns every node; nobody else has one). */
static void list_step(struct pep_req *r, struct account *a,
		      struct pep_account *pa)
{
	bool affiliations = strcmp(r->op->name, "affiliations") == 0;
	struct xml_node *ps = xml_new("pubsub", NS_PUBSUB);
	struct xml_node *list = xml_add_child(ps, r->op->name, NULL);
	size_t pos = 0;
	void *value;

	(void)a;
	if (r->node != NULL)
		xml_set_attr(list, "node", r->node);
	while (hashmap_next(pa->nodes, &pos, NULL, &value)) {
		const struct pep_node *n = value;

		if (r->node != NULL && strcmp(r->node, n->name) != 0)
			continue;
		if (affiliations) {
			struct xml_node *af;
			if (!req_is_owner(r))
				continue;
			af = xml_add_child(list, "affiliation", NULL);
			xml_set_attr(af, "node", n->name);
			xml_set_attr(af, "affiliation", "owner");
			continue;
		}
		for (size_t i = 0; i < n->nsubs; i++)
			if (sub_of(n->subs[i], r->from_bare))
				subscription_xml(list, n->name, n->subs[i]);
	}
	req_reply(r, ps);
}

static void list_own(const struct iq_request *req, const struct xml_node *op)
{
	struct pep_req *r = req_new(req, op->name);

	if (r != NULL)
		with_service(r, list_step);
}

/* ---- pubsub#owner: configure, default, delete, purge (§8) ---- */

static void configure_get_step(struct pep_req *r, struct account *a,
			       struct pep_account *pa)
{
	struct pep_node *n = req_node(r, pa);
	struct xml_node *ps, *el, *form;

	(void)a;
	if (n == NULL)
		return;
	ps = pubsub_reply(NS_PUBSUB_OWNER, "configure", r->node, &el);
	form = pep_config_form(&n->cfg, "form");
	xml_copy_into(el, form);
	xml_free(form);
	req_reply(r, ps);
}

/* Subscribers the new access model no longer admits lose their
 * subscription (XEP-0163 §7.1). */
static void drop_lost_subscribers(struct account *a, struct pep_node *n)
{
	size_t kept = 0;

	for (size_t i = 0; i < n->nsubs; i++) {
		const char *slash = strchr(n->subs[i], '/');
		char *bare = slash != NULL
			? xstrndup(n->subs[i], (size_t)(slash - n->subs[i]))
			: xstrdup(n->subs[i]);

		if (pep_access_check(a, n, bare) == PEP_ALLOWED)
			n->subs[kept++] = n->subs[i];
		else
			free(n->subs[i]);
		free(bare);
	}
	n->nsubs = kept;
	n->subs[kept] = NULL;
}

static void configured(void *ctx)
{
	req_reply(ctx, NULL);
}

static void configure_set_step(struct pep_req *r, struct account *a,
			       struct pep_account *pa)
{
	struct pep_node *n = req_node(r, pa);
	const struct xml_node *x;
	struct pep_config old, cfg;
	struct pep_error err;
	pep_fields set;

	if (n == NULL)
		return;
	x = xml_child(r->op, "x", NS_XDATA);
	if (x == NULL) {
		req_fail(r, "bad-request", NULL, "configure without a form");
		return;
	}
	/* §8.2.4: cancelling keeps the configuration. */
	if (xml_attr(x, "type") != NULL &&
	    strcmp(xml_attr(x, "type"), "cancel") == 0) {
		req_reply(r, NULL);
		return;
	}
	pep_config_copy(&cfg, &n->cfg);
	if (pep_config_apply_form(&cfg, x, NS_PUBSUB_NODE_CONFIG,
				  r->srv->cfg->pep_max_items, &set, &err) != 0) {
		pep_config_free(&cfg);
		req_error(r, &err);
		return;
	}
	old = n->cfg;
	n->cfg = cfg;
	drop_lost_subscribers(a, n);
	pep_node_save(a, n);
	if (n->cfg.notify_config)
		pep_notify_node(r->srv, a, n, "configuration");
	pep_items_reconfigure(r->srv, a, n, &old, configured, r);
	pep_config_free(&old);
}

static void delete_step(struct pep_req *r, struct account *a,
			struct pep_account *pa)
{
	struct pep_node *n = req_node(r, pa);
	char *node;

	if (n == NULL)
		return;
	if (n->cfg.notify_delete)
		pep_notify_node(r->srv, a, n, "delete");
	node = xstrdup(n->name);
	pep_node_delete(a, pa, node);
	pep_listeners_run(r->srv, a->bare, node, NULL);
	free(node);
	req_reply(r, NULL);
}

static void purge_step(struct pep_req *r, struct account *a,
		       struct pep_account *pa)
{
	struct pep_node *n = req_node(r, pa);
	struct pep_error err;

	if (n == NULL)
		return;
	if (!n->cfg.persist_items) {
		pep_error_set(&err, "feature-not-implemented", "unsupported",
			      NULL);
		err.feature = "persistent-items";
		req_error(r, &err);
		return;
	}
	pep_purge_items(r->srv, a, n);
	req_reply(r, NULL);
}

static void owner_op(const struct iq_request *req, const struct xml_node *op,
		     void (*step)(struct pep_req *, struct account *,
				  struct pep_account *))
{
	struct pep_req *r;

	if (!check_node(req, op, true, "bad-request"))
		return;
	if ((r = req_new(req, op->name)) != NULL)
		with_service(r, step);
}

static void owner_default(const struct iq_request *req,
			  const struct xml_node *op)
{
	struct pep_config c;
	struct xml_node *ps, *el, *form;

	(void)op;
	if (!jid_bare_equal(req->from, req->to)) {
		fail_now(req, "forbidden", NULL, NULL, NULL);
		return;
	}
	pep_config_default(&c);
	ps = pubsub_reply(NS_PUBSUB_OWNER, "default", NULL, &el);
	form = pep_config_form(&c, "form");
	xml_copy_into(el, form);
	xml_free(form);
	pep_config_free(&c);
	iq_reply(req, ps);
}

/* ---- dispatch ---- */

/* What the one child of a pubsub IQ may ask for: run handles it, or
 * step for an owner operation on a node, or (neither) the request is
 * not implemented and `feature` names the XEP-0060 feature. */
struct pubsub_op {
	const char *name;
	void (*run)(const struct iq_request *req, const struct xml_node *op);
	void (*step)(struct pep_req *r, struct account *a,
		     struct pep_account *pa);
	const char *feature;
};

static const struct pubsub_op pubsub_get_ops[] = {
	{ "items", items, NULL, NULL },
	{ "subscriptions", list_own, NULL, NULL },
	{ "affiliations", list_own, NULL, NULL },
	{ "options", NULL, NULL, "subscription-options" },
	{ "default", NULL, NULL, "retrieve-default-sub" },
	{ NULL, NULL, NULL, NULL },
};

static const struct pubsub_op pubsub_set_ops[] = {
	{ "publish", publish, NULL, NULL },
	{ "retract", retract, NULL, NULL },
	{ "create", create, NULL, NULL },
	{ "subscribe", subscription_change, NULL, NULL },
	{ "unsubscribe", subscription_change, NULL, NULL },
	{ "options", NULL, NULL, "subscription-options" },
	{ NULL, NULL, NULL, NULL },
};

static const struct pubsub_op owner_get_ops[] = {
	{ "configure", NULL, configure_get_step, NULL },
	{ "default", owner_default, NULL, NULL },
	{ "subscriptions", NULL, NULL, "manage-subscriptions" },
	{ "affiliations", NULL, NULL, "modify-affiliations" },
	{ NULL, NULL, NULL, NULL },
};

static const struct pubsub_op owner_set_ops[] = {
	{ "configure", NULL, configure_set_step, NULL },
	{ "delete", NULL, delete_step, NULL },
	{ "purge", NULL, purge_step, NULL },
	{ "subscriptions", NULL, NULL, "manage-subscriptions" },
	{ "affiliations", NULL, NULL, "modify-affiliations" },
	{ NULL, NULL, NULL, NULL },
};

static void dispatch(const struct iq_request *req, const char *ns,
		     const struct pubsub_op *ops, const char *unknown)
{
	const struct xml_node *op = xml_first_element(req->payload);

	if (op == NULL) {
		fail_now(req, "bad-request", NULL, NULL,
			 "pubsub without an operation");
		return;
	}
	for (; ops->name != NULL; ops++) {
		if (!xml_is(op, ops->name, ns))
			continue;
		if (ops->run != NULL)
			ops->run(req, op);
		else if (ops->step != NULL)
			owner_op(req, op, ops->step);
		else
			unsupported(req, ops->feature);
		return;
	}
	fail_now(req, "bad-request", NULL, NULL, unknown);
}

static void pubsub_get(const struct iq_request *req)
{
	dispatch(req, NS_PUBSUB, pubsub_get_ops, "unknown pubsub request");
}

static void pubsub_set(const struct iq_request *req)
{
	dispatch(req, NS_PUBSUB, pubsub_set_ops, "unknown pubsub request");
}

static void owner_get(const struct iq_request *req)
{
	dispatch(req, NS_PUBSUB_OWNER, owner_get_ops,
		 "unknown pubsub#owner request");
}

static void owner_set(const struct iq_request *req)
{
	dispatch(req, NS_PUBSUB_OWNER, owner_set_ops,
		 "unknown pubsub#owner request");
}

/* ---- disco (XEP-0060 §5.2-5.5, XEP-0163 §7.2) ---- */

static void disco_info_step(struct pep_req *r, struct account *a,
			    struct pep_account *pa)
{
	struct xml_node *q, *id;

	if (req_readable_node(r, a, pa) == NULL)
		return;
	q = xml_new("query", NS_DISCO_INFO);
	xml_set_attr(q, "node", r->node);
	id = xml_add_child(q, "identity", NULL);
	xml_set_attr(id, "category", "pubsub");
	xml_set_attr(id, "type", "leaf");
	xml_set_attr(xml_add_child(q, "feature", NULL), "var", NS_PUBSUB);
	req_reply(r, q);
}

static void disco_items_step(struct pep_req *r, struct account *a,
			     struct pep_account *pa)
{
	if (req_readable_node(r, a, pa) == NULL)
		return;
	pep_read_items(r->srv, a, r->node, NULL, 0, 0, items_read, r);
}

/* The account's nodes this requester may read (XEP-0163 §7.2). */
static void disco_nodes_step(struct pep_req *r, struct account *a,
			     struct pep_account *pa)
{
	struct xml_node *q = xml_new("query", NS_DISCO_ITEMS);
	size_t pos = 0;
	void *value;

	while (hashmap_next(pa->nodes, &pos, NULL, &value)) {
		const struct pep_node *n = value;
		struct xml_node *it;

		if (pep_access_check(a, n, r->from_bare) != PEP_ALLOWED)
			continue;
		it = xml_add_child(q, "item", NULL);
		xml_set_attr(it, "jid", r->owner);
		xml_set_attr(it, "node", n->name);
	}
	req_reply(r, q);
}

static bool pep_disco_node(const struct iq_request *req, const char *node,
			   bool items_wanted)
{
	struct pep_req *r;

	/* Nodes at an account are PEP nodes (other modules' account
	 * nodes come before this one in the module list). */
	if (req->to->local == NULL || (node == NULL && !items_wanted))
		return false;
	if ((r = req_new(req, NULL)) == NULL)
		return true;
	r->node = node != NULL ? xstrdup(node) : NULL;
	r->disco_items = true;
	if (node == NULL)
		with_service(r, disco_nodes_step);
	else
		with_service(r, items_wanted ? disco_items_step
					     : disco_info_step);
	return true;
}

/* ---- listeners (mod_pep.h) ---- */

#define LISTENERS_MAX 8

/* Registered once at start-up by other modules' init, read-only after:
 * the contract (pep_listen) has no server to hang them on. */
static struct {
	const char *node;
	pep_listener_fn *fn;
} listeners[LISTENERS_MAX];
static size_t nlisteners;

void pep_listen(const char *node, pep_listener_fn *fn)
{
	if (nlisteners == LISTENERS_MAX) {
		log_error("pep: more than %d listeners", LISTENERS_MAX);
		abort();
	}
	listeners[nlisteners].node = node;
	listeners[nlisteners].fn = fn;
	nlisteners++;
}

void pep_listeners_run(struct server *srv, const char *owner,
		       const char *node, const struct xml_node *item)
{
	for (size_t i = 0; i < nlisteners; i++)
		if (strcmp(listeners[i].node, node) == 0)
			listeners[i].fn(srv, owner, node, item);
}

/* ---- the mod_pep.h calls ---- */

struct api_op {
	struct server *srv;
	char *node, *id;
	struct xml_node *payload;
	struct pep_config want;
	pep_fields set;
	bool has_options;
	bool bad;            /* a node name or options we refuse */
	pep_done_cb *done;
	pep_items_cb *items_cb;
	pep_access_cb *access_cb;
	void *ctx;
};

static void api_free(struct api_op *op)
{
	free(op->node);
	free(op->id);
	xml_free(op->payload);
	pep_config_free(&op->want);
	free(op);
}

/* A publish or retract ends: the caller hears r (mod_pep.h). */
static void api_done(struct api_op *op, int r)
{
	if (op->done != NULL)
		op->done(op->ctx, r);
	api_free(op);
}

/* A mod_pep.h call's state, kept until its callback has run. */
static struct api_op *api_new(struct server *srv, const char *node,
			      const char *id, void *ctx)
{
	struct api_op *op = xcalloc(1, sizeof(*op));

	op->srv = srv;
	op->node = xstrdup(node != NULL ? node : "");
	op->id = id != NULL ? xstrdup(id) : NULL;
	op->ctx = ctx;
	pep_config_default(&op->want);
	return op;
}

static void api_published(void *ctx, int result, const struct pep_error *err)
{
	struct api_op *op = ctx;
	int r = 0;

	if (result != 0) {
		r = err->app != NULL &&
		    strcmp(err->app, "precondition-not-met") == 0 ? 1 : -1;
		if (r < 0)
			log_warn("pep: publishing to %s failed: %s", op->node,
				 err->cond);
	}
	api_done(op, r);
}

static void api_publish_ready(void *ctx, struct account *a,
			      struct pep_account *pa)
{
	struct api_op *op = ctx;

	if (pa == NULL || op->bad) {
		api_done(op, -1);
	} else {
		pep_publish_item(op->srv, a, op->node, op->id, op->payload,
				 op->has_options ? &op->want : NULL, op->set,
				 NULL, api_published, op);
	}
	account_unref(a);
}

/* The options as a publish-options form would set them. */
static int api_options(struct api_op *op, const struct pep_publish_options *o,
		       unsigned limit)
{
	struct xml_node *x = xml_new("x", NS_XDATA), *f;
	struct pep_error err;
	char num[24];
	int r;

	xml_set_attr(x, "type", "submit");
	f = xml_add_child(x, "field", NULL);
	xml_set_attr(f, "var", "FORM_TYPE");
	xml_add_text_child(f, "value", NS_PUBSUB_PUBLISH_OPTIONS);
	if (o->access_model != NULL) {
		f = xml_add_child(x, "field", NULL);
		xml_set_attr(f, "var", "pubsub#access_model");
		xml_add_text_child(f, "value", o->access_model);
	}
	if (o->max_items > 0) {
		f = xml_add_child(x, "field", NULL);
		xml_set_attr(f, "var", "pubsub#max_items");
		if (o->max_items >= limit)
			snprintf(num, sizeof(num), "max");
		else
			snprintf(num, sizeof(num), "%zu", o->max_items);
		xml_add_text_child(f, "value", num);
	}
	if (o->persist_items >= 0) {
		f = xml_add_child(x, "field", NULL);
		xml_set_attr(f, "var", "pubsub#persist_items");
		xml_add_text_child(f, "value", o->persist_items ? "1" : "0");
	}
	if (o->send_last_published_item != NULL) {
		f = xml_add_child(x, "field", NULL);
		xml_set_attr(f, "var", "pubsub#send_last_published_item");
		xml_add_text_child(f, "value", o->send_last_published_item);
	}
	r = pep_config_apply_form(&op->want, x, NS_PUBSUB_PUBLISH_OPTIONS,
				  limit, &op->set, &err);
	xml_free(x);
	op->has_options = r == 0;
	return r;
}

static bool api_node_ok(const char *node)
{
	return node != NULL && *node != '\0' && strlen(node) <= PEP_NODE_MAX;
}

void pep_publish(struct server *srv, const char *owner, const char *node,
		 const char *id, const struct xml_node *payload,
		 const struct pep_publish_options *opts, pep_done_cb *cb,
		 void *ctx)
{
	struct api_op *op = api_new(srv, node, id, ctx);

	op->payload = xml_copy(payload);
	op->done = cb;
	/* Refused later, not here: the callback never runs inside the
	 * call, as with the store. */
	if (!api_node_ok(node) ||
	    (opts != NULL && api_options(op, opts, srv->cfg->pep_max_items) != 0)) {
		log_error("pep: a module published with a bad node or options");
		op->bad = true;
	}
	pep_account_get(srv, owner, api_publish_ready, op);
}

static void api_retracted(void *ctx, int result, const struct pep_error *err)
{
	struct api_op *op = ctx;
	int r = 0;

	/* An item that was not there is retracted all the same. */
	if (result != 0 && strcmp(err->cond, "item-not-found") != 0)
		r = -1;
	api_done(op, r);
}

static void api_retract_ready(void *ctx, struct account *a,
			      struct pep_account *pa)
{
	struct api_op *op = ctx;

	if (pa == NULL) {
		api_done(op, -1);
	} else {
		pep_retract_item(op->srv, a, op->node, op->id, 1,
				 api_retracted, op);
	}
	account_unref(a);
}

void pep_retract(struct server *srv, const char *owner, const char *node,
		 const char *id, pep_done_cb *cb, void *ctx)
{
	struct api_op *op = api_new(srv, node, id, ctx);

	op->done = cb;
	pep_account_get(srv, owner, api_retract_ready, op);
}

static void api_read(void *ctx, int result, const struct pep_item *items,
		     size_t n)
{
	struct api_op *op = ctx;
	struct xml_node **list, *holder;

	if (result < 0) {
		op->items_cb(op->ctx, -1, NULL, 0);
		api_free(op);
		return;
	}
	/* One tree holds them all: the callback sees n <item/> elements. */
	holder = xml_new("items", NS_PUBSUB);
	list = xcalloc(n + 1, sizeof(*list));
	for (size_t i = 0; i < n; i++)
		list[i] = pep_item_xml(holder, NS_PUBSUB, &items[i], true);
	op->items_cb(op->ctx, (int)n, list, n);
	free(list);
	xml_free(holder);
	api_free(op);
}

static void api_items_ready(void *ctx, struct account *a,
			    struct pep_account *pa)
{
	struct api_op *op = ctx;
	const char *ids[1] = { op->id };

	if (pa == NULL) {
		op->items_cb(op->ctx, -1, NULL, 0);
		api_free(op);
	} else {
		pep_read_items(op->srv, a, op->node, ids, op->id ? 1 : 0, 0,
			       api_read, op);
	}
	account_unref(a);
}

void pep_items(struct server *srv, const char *owner, const char *node,
	       const char *id, pep_items_cb *cb, void *ctx)
{
	struct api_op *op = api_new(srv, node, id, ctx);

	op->items_cb = cb;
	pep_account_get(srv, owner, api_items_ready, op);
}

static void api_access_ready(void *ctx, struct account *a,
			     struct pep_account *pa)
{
	struct api_op *op = ctx;
	const struct pep_node *n = pa != NULL ? pep_node_find(pa, op->node)
					      : NULL;

	op->access_cb(op->ctx, n != NULL ? pep_access_name(n->cfg.access)
					 : NULL);
	api_free(op);
	account_unref(a);
}

void pep_node_access(struct server *srv, const char *owner, const char *node,
		     pep_access_cb *cb, void *ctx)
{
	struct api_op *op = api_new(srv, node, NULL, ctx);

	op->access_cb = cb;
	pep_account_get(srv, owner, api_access_ready, op);
}

/* ---- hooks ---- */

static void pep_caps_changed(struct session *s,
			     const struct caps_notify *before)
{
	pep_session_interest(s, before);
}

static void pep_initial_presence(struct session *s)
{
	pep_session_interest(s, NULL);
}

static void pep_account_free_hook(struct account *a)
{
	void **slot = &a->mod_ctx[modules_index(a->srv->modules, &pep_module)];

	pep_account_free(*slot);
	*slot = NULL;
}

static int pep_init(struct server *srv)
{
	(void)srv;
	caps_listen(pep_caps_changed);
	return 0;
}

static const struct iq_handler pep_handlers[] = {
	{ NS_PUBSUB, "pubsub", IQ_SCOPE_ACCOUNT, pubsub_get, pubsub_set },
	{ NS_PUBSUB_OWNER, "pubsub", IQ_SCOPE_ACCOUNT, owner_get, owner_set },
	{ NULL, NULL, 0, NULL, NULL },
};

static const char *const pep_features[] = {
	NS_PUBSUB,
	NS_PUBSUB "#access-open",
	NS_PUBSUB "#access-presence",
	NS_PUBSUB "#access-roster",
	NS_PUBSUB "#access-whitelist",
	NS_PUBSUB "#auto-create",
	NS_PUBSUB "#auto-subscribe",
	NS_PUBSUB "#config-node",
	/* "max" for pubsub#max_items: Conversations and Gajim use XEP-0402
	 * only where this is advertised. */
	NS_PUBSUB "#config-node-max",
	NS_PUBSUB "#create-and-configure",
	NS_PUBSUB "#create-nodes",
	NS_PUBSUB "#delete-items",
	NS_PUBSUB "#delete-nodes",
	NS_PUBSUB "#filtered-notifications",
	NS_PUBSUB "#item-ids",
	NS_PUBSUB "#last-published",
	NS_PUBSUB "#multi-items",
	NS_PUBSUB "#persistent-items",
	NS_PUBSUB "#presence-notifications",
	NS_PUBSUB "#presence-subscribe",
	NS_PUBSUB "#publish",
	NS_PUBSUB "#publish-options",
	NS_PUBSUB "#purge-nodes",
	NS_PUBSUB "#retract-items",
	NS_PUBSUB "#retrieve-affiliations",
	NS_PUBSUB "#retrieve-default",
	NS_PUBSUB "#retrieve-items",
	NS_PUBSUB "#retrieve-subscriptions",
	NS_PUBSUB "#subscribe",
	NULL,
};

static const struct disco_identity pep_identities[] = {
	{ "pubsub", "pep", NULL },
	{ NULL, NULL, NULL },
};

const struct module pep_module = {
	.name = "pep",
	.iq_handlers = pep_handlers,
	.account_features = pep_features,
	.account_identities = pep_identities,
	.init = pep_init,
	.initial_presence = pep_initial_presence,
	.account_free = pep_account_free_hook,
	.disco_node = pep_disco_node,
};

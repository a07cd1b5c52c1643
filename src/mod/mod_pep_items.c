/* PEP items (XEP-0060 §7.1 publish, §7.2 retract, §6.5 retrieve, §8.5
 * purge). A node that persists items keeps them in the store, space
 * "pep/<node>", one row per item id: republishing an id replaces the row
 * and makes it the newest, and the store's trim to max_items on every
 * write removes the oldest, which is XEP-0060's "retract-oldest". A node
 * that does not persist items keeps its last one in memory. */
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "core/account.h"
#include "mod/mod_pep-private.h"
#include "server.h"
#include "store/store.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xml/xml_document.h"

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void pep_new_id(char out[33])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[16];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		/* Without randomness an id could repeat. */
		log_error("pep: no random bytes for an item id");
		abort();
	}
	for (size_t i = 0; i < sizeof(rnd); i++) {
		out[2 * i] = hex[rnd[i] >> 4];
		out[2 * i + 1] = hex[rnd[i] & 15];
	}
	out[32] = '\0';
}

struct xml_node *pep_item_xml(struct xml_node *parent, const char *ns,
			      const struct pep_item *it, bool with_payload)
{
	struct xml_node *item = xml_add_child(parent, "item", ns);
	struct xml_node *payload;

	xml_set_attr(item, "id", it->id);
	if (with_payload && it->len > 0) {
		payload = xml_parse_document(it->data, it->len);
		if (payload != NULL)
			xml_copy_into(item, payload);
		else
			log_error("pep: item %s does not parse back", it->id);
		xml_free(payload);
	}
	return item;
}

/* The listeners' view of an item: <item id=...>payload</item>. */
static void run_listeners(struct server *srv, struct account *a,
			  const char *node, const char *id,
			  const struct xml_node *payload)
{
	struct xml_node *item = NULL;

	if (payload != NULL) {
		item = xml_new("item", NS_PUBSUB);
		xml_set_attr(item, "id", id);
		xml_copy_into(item, payload);
	}
	pep_listeners_run(srv, a->bare, node, item);
	xml_free(item);
}

/* ---- publish ---- */

struct publish_op {
	struct server *srv;
	struct account *a;
	char *node, *id;
	struct xml_node *payload;
	pep_op_cb *cb;
	void *ctx;
};

static void publish_finish(struct publish_op *op, int result,
			   const struct pep_error *err)
{
	struct pep_node *n;

	if (result == 0) {
		n = pep_node_find(pep_account_of(op->a), op->node);
		/* A node deleted meanwhile: its deletion was notified. */
		if (n != NULL)
			pep_notify_item(op->srv, op->a, n, op->id, op->payload);
		run_listeners(op->srv, op->a, op->node, op->id, op->payload);
	}
	if (op->cb != NULL)
		op->cb(op->ctx, result, err);
	account_unref(op->a);
	free(op->node);
	free(op->id);
	xml_free(op->payload);
	free(op);
}

static void item_stored(void *ctx, int result, const char *error)
{
	struct publish_op *op = ctx;
	struct pep_error err;

	if (result < 0) {
		log_error("pep: cannot store an item of %s on %s: %s",
			  op->a->bare, op->node, error != NULL ? error : "?");
		pep_error_set(&err, "internal-server-error", NULL, NULL);
		publish_finish(op, -1, &err);
		return;
	}
	publish_finish(op, 0, NULL);
}

static void fail(pep_op_cb *cb, void *ctx, const char *cond, const char *app,
		 const char *text)
{
	struct pep_error err;

	pep_error_set(&err, cond, app, text);
	if (cb != NULL)
		cb(ctx, -1, &err);
}

void pep_publish_item(struct server *srv, struct account *a,
		      const char *node, const char *id,
		      const struct xml_node *payload,
		      const struct pep_config *want, pep_fields set,
		      char **id_r, pep_op_cb *cb, void *ctx)
{
	const struct config *cfg = srv->cfg;
	struct pep_account *pa = pep_account_of(a);
	struct pep_node *n = pep_node_find(pa, node);
	struct pep_config dflt;
	struct publish_op *op;
	char newid[33];
	char *data, *space;
	size_t len;

	if (id == NULL) {
		pep_new_id(newid);
		id = newid;
	}
	if (strlen(id) > PEP_ITEM_ID_MAX || *id == '\0') {
		fail(cb, ctx, "bad-request", NULL, "the item id is too long");
		return;
	}
	data = xml_serialize_document(payload, &len);
	if (len > cfg->pep_max_item_size) {
		free(data);
		fail(cb, ctx, "not-acceptable", "payload-too-big", NULL);
		return;
	}
	if (n != NULL) {
		if (want != NULL &&
		    !pep_config_meets(&n->cfg, want, set, cfg->pep_max_items)) {
			free(data);
			fail(cb, ctx, "conflict", "precondition-not-met",
			     "the node's configuration differs from the "
			     "publish-options");
			return;
		}
	} else {
		if (pep_node_count(pa) >= cfg->pep_max_nodes) {
			free(data);
			fail(cb, ctx, "policy-violation", "max-nodes-exceeded",
			     "too many nodes");
			return;
		}
		pep_config_default(&dflt);
		n = pep_node_create(a, pa, node, want != NULL ? want : &dflt);
		pep_config_free(&dflt);
	}

	op = xcalloc(1, sizeof(*op));
	op->srv = srv;
	op->a = a;
	account_ref(a);
	op->node = xstrdup(node);
	op->id = xstrdup(id);
	op->payload = xml_copy(payload);
	op->cb = cb;
	op->ctx = ctx;
	if (id_r != NULL)
		*id_r = xstrdup(id);

	if (n->cfg.persist_items) {
		space = pep_items_space(node);
		store_data_put(srv->store, a->bare, space, id, data, len,
			       pep_config_max_items(&n->cfg, cfg->pep_max_items),
			       item_stored, op);
		free(space);
	} else {
		free(n->last_id);
		xml_free(n->last_payload);
		n->last_id = xstrdup(id);
		n->last_payload = xml_copy(payload);
		n->last_stamp = now_us();
		publish_finish(op, 0, NULL);
	}
	free(data);
}

/* ---- retract ---- */

struct retract_op {
	struct server *srv;
	struct account *a;
	char *node, *id;
	int notify;
	pep_op_cb *cb;
	void *ctx;
};

static void retract_finish(struct retract_op *op, int result,
			   const struct pep_error *err)
{
	struct pep_node *n;

	if (result == 0) {
		n = pep_node_find(pep_account_of(op->a), op->node);
		if (n != NULL && (op->notify > 0 ||
				  (op->notify < 0 && n->cfg.notify_retract)))
			pep_notify_item(op->srv, op->a, n, op->id, NULL);
		run_listeners(op->srv, op->a, op->node, op->id, NULL);
	}
	if (op->cb != NULL)
		op->cb(op->ctx, result, err);
	account_unref(op->a);
	free(op->node);
	free(op->id);
	free(op);
}

static void item_deleted(void *ctx, int result, const char *error)
{
	struct retract_op *op = ctx;
	struct pep_error err;

	if (result == 0) {
		retract_finish(op, 0, NULL);
		return;
	}
	if (result < 0) {
		log_error("pep: cannot remove an item of %s on %s: %s",
			  op->a->bare, op->node, error != NULL ? error : "?");
		pep_error_set(&err, "internal-server-error", NULL, NULL);
	} else {
		pep_error_set(&err, "item-not-found", NULL, NULL);
	}
	retract_finish(op, -1, &err);
}

void pep_retract_item(struct server *srv, struct account *a,
		      const char *node, const char *id, int notify,
		      pep_op_cb *cb, void *ctx)
{
	struct pep_node *n = pep_node_find(pep_account_of(a), node);
	struct retract_op *op;
	struct pep_error err;
	char *space;

	if (n == NULL) {
		fail(cb, ctx, "item-not-found", NULL, NULL);
		return;
	}
	op = xcalloc(1, sizeof(*op));
	op->srv = srv;
	op->a = a;
	account_ref(a);
	op->node = xstrdup(node);
	op->id = xstrdup(id);
	op->notify = notify;
	op->cb = cb;
	op->ctx = ctx;
	if (n->cfg.persist_items) {
		space = pep_items_space(node);
		store_data_delete(srv->store, a->bare, space, id, item_deleted,
				  op);
		free(space);
		return;
	}
	if (n->last_id == NULL || strcmp(n->last_id, id) != 0) {
		pep_error_set(&err, "item-not-found", NULL, NULL);
		retract_finish(op, -1, &err);
		return;
	}
	free(n->last_id);
	xml_free(n->last_payload);
	n->last_id = NULL;
	n->last_payload = NULL;
	retract_finish(op, 0, NULL);
}

/* ---- read ---- */

struct read_op {
	struct server *srv;
	struct account *a;
	char *owner, *space;
	char **ids;
	size_t nids, next;
	struct pep_item *found;
	size_t nfound;
	pep_read_cb *cb;
	void *ctx;
};

static void read_op_free(struct read_op *op)
{
	for (size_t i = 0; i < op->nids; i++)
		free(op->ids[i]);
	free(op->ids);
	for (size_t i = 0; i < op->nfound; i++) {
		free((char *)op->found[i].id);
		free((char *)op->found[i].data);
	}
	free(op->found);
	free(op->owner);
	free(op->space);
	account_unref(op->a);
	free(op);
}

static void listed(void *ctx, int result, const struct store_data_item *items,
		   size_t n)
{
	struct read_op *op = ctx;
	struct pep_item *list;

	if (result < 0) {
		log_error("pep: cannot read %s of %s", op->space, op->owner);
		op->cb(op->ctx, -1, NULL, 0);
		read_op_free(op);
		return;
	}
	list = xcalloc(n + 1, sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		list[i].id = items[i].key;
		list[i].data = items[i].value;
		list[i].len = items[i].len;
		list[i].stamp_us = items[i].stamp_us;
	}
	op->cb(op->ctx, 0, list, n);
	free(list);
	read_op_free(op);
}

static void get_next(struct read_op *op);

static void got_one(void *ctx, int result, const struct store_data_item *items,
		    size_t n)
{
	struct read_op *op = ctx;
	struct pep_item *it;

	if (result < 0) {
		log_error("pep: cannot read %s of %s", op->space, op->owner);
		op->cb(op->ctx, -1, NULL, 0);
		read_op_free(op);
		return;
	}
	if (n == 1) {
		it = &op->found[op->nfound++];
		it->id = xstrdup(items[0].key);
		it->data = xstrndup(items[0].value, items[0].len);
		it->len = items[0].len;
		it->stamp_us = items[0].stamp_us;
	}
	get_next(op);
}

static void get_next(struct read_op *op)
{
	if (op->next < op->nids) {
		store_data_get(op->srv->store, op->owner, op->space,
			       op->ids[op->next++], got_one, op);
		return;
	}
	op->cb(op->ctx, 0, op->found, op->nfound);
	read_op_free(op);
}

static bool wanted(const char *const *ids, size_t nids, const char *id)
{
	if (nids == 0)
		return true;
	for (size_t i = 0; i < nids; i++)
		if (strcmp(ids[i], id) == 0)
			return true;
	return false;
}

/* The node's in-memory item, serialized for the reader. */
static void read_transient(const struct pep_node *n, const char *const *ids,
			   size_t nids, pep_read_cb *cb, void *ctx)
{
	struct pep_item it;
	char *data;

	if (n->last_id == NULL || !wanted(ids, nids, n->last_id)) {
		cb(ctx, 0, NULL, 0);
		return;
	}
	data = xml_serialize_document(n->last_payload, &it.len);
	it.id = n->last_id;
	it.data = data;
	it.stamp_us = n->last_stamp;
	cb(ctx, 0, &it, 1);
	free(data);
}

void pep_read_items(struct server *srv, struct account *a, const char *node,
		    const char *const *ids, size_t nids, size_t max,
		    pep_read_cb *cb, void *ctx)
{
	struct pep_node *n = pep_node_find(pep_account_of(a), node);
	struct read_op *op;

	if (n == NULL) {
		cb(ctx, 1, NULL, 0);
		return;
	}
	if (!n->cfg.persist_items) {
		read_transient(n, ids, nids, cb, ctx);
		return;
	}
	op = xcalloc(1, sizeof(*op));
	op->srv = srv;
	op->a = a;
	account_ref(a);
	op->owner = xstrdup(a->bare);
	op->space = pep_items_space(node);
	op->cb = cb;
	op->ctx = ctx;
	if (nids == 0) {
		store_data_list(srv->store, a->bare, op->space, max, listed, op);
		return;
	}
	/* One read per id, in order: a client asks for a few (an OMEMO
	 * bundle, a bookmark), never for a whole node this way. */
	op->ids = xcalloc(nids, sizeof(char *));
	op->found = xcalloc(nids, sizeof(*op->found));
	for (size_t i = 0; i < nids; i++)
		op->ids[op->nids++] = xstrdup(ids[i]);
	get_next(op);
}

/* ---- purge and reconfiguration ---- */

static void done_logged(void *ctx, int result, const char *error)
{
	char *what = ctx;

	if (result < 0)
		log_error("pep: %s failed: %s", what, error != NULL ? error : "?");
	free(what);
}

void pep_purge_items(struct server *srv, struct account *a,
		     struct pep_node *n)
{
	char *space = pep_items_space(n->name);

	store_data_delete(srv->store, a->bare, space, NULL, done_logged,
			  xasprintf("purging %s of %s", n->name, a->bare));
	free(space);
	free(n->last_id);
	xml_free(n->last_payload);
	n->last_id = NULL;
	n->last_payload = NULL;
	if (n->cfg.notify_retract)
		pep_notify_node(srv, a, n, "purge");
	run_listeners(srv, a, n->name, NULL, NULL);
}

struct reconf_op {
	struct account *a;
	char *node;
	unsigned keep;
	void (*done)(void *ctx);
	void *ctx;
};

/* The change is in place (what it removes is queued to the store, so a
 * read that follows sees it): the caller may answer. */
static void reconf_free(struct reconf_op *op)
{
	op->done(op->ctx);
	account_unref(op->a);
	free(op->node);
	free(op);
}

/* persist_items turned off: the newest stored item becomes the node's
 * in-memory last item (unless one was published since), the rest go. */
static void unpersisted(void *ctx, int result,
			const struct store_data_item *items, size_t n)
{
	struct reconf_op *op = ctx;
	struct pep_node *node = pep_node_find(pep_account_of(op->a), op->node);

	if (result > 0 && n == 1 && node != NULL && node->last_id == NULL &&
	    !node->cfg.persist_items) {
		node->last_payload = xml_parse_document(items[0].value, items[0].len);
		if (node->last_payload != NULL) {
			node->last_id = xstrdup(items[0].key);
			node->last_stamp = items[0].stamp_us;
		}
	}
	reconf_free(op);
}

/* max_items lowered: the oldest beyond the new limit go. */
static void trimmed(void *ctx, int result, const struct store_data_item *items,
		    size_t n)
{
	struct reconf_op *op = ctx;
	char *space = pep_items_space(op->node);

	for (size_t i = 0; result >= 0 && i + op->keep < n; i++)
		store_data_delete(op->a->srv->store, op->a->bare, space,
				  items[i].key, done_logged,
				  xasprintf("trimming %s of %s", op->node,
					    op->a->bare));
	free(space);
	reconf_free(op);
}

static struct reconf_op *reconf_new(struct account *a, const char *node,
				    void (*done)(void *ctx), void *ctx)
{
	struct reconf_op *op = xcalloc(1, sizeof(*op));

	op->a = a;
	account_ref(a);
	op->node = xstrdup(node);
	op->done = done;
	op->ctx = ctx;
	return op;
}

void pep_items_reconfigure(struct server *srv, struct account *a,
			   struct pep_node *n, const struct pep_config *old,
			   void (*done)(void *ctx), void *ctx)
{
	unsigned limit = srv->cfg->pep_max_items;
	char *space = pep_items_space(n->name);
	struct reconf_op *op;
	size_t len;
	char *data;

	if (old->persist_items && !n->cfg.persist_items) {
		op = reconf_new(a, n->name, done, ctx);
		store_data_list(srv->store, a->bare, space, 1, unpersisted, op);
		store_data_delete(srv->store, a->bare, space, NULL, done_logged,
				  xasprintf("unpersisting %s of %s", n->name,
					    a->bare));
	} else if (!old->persist_items && n->cfg.persist_items) {
		if (n->last_id != NULL) {
			data = xml_serialize_document(n->last_payload, &len);
			store_data_put(srv->store, a->bare, space, n->last_id,
				       data, len, 0, done_logged,
				       xasprintf("persisting %s of %s",
						 n->name, a->bare));
			free(data);
		}
		free(n->last_id);
		xml_free(n->last_payload);
		n->last_id = NULL;
		n->last_payload = NULL;
		done(ctx);
	} else if (n->cfg.persist_items &&
		   pep_config_max_items(&n->cfg, limit) <
		   pep_config_max_items(old, limit)) {
		op = reconf_new(a, n->name, done, ctx);
		op->keep = pep_config_max_items(&n->cfg, limit);
		store_data_list(srv->store, a->bare, space, 0, trimmed, op);
	} else {
		done(ctx);
	}
	free(space);
}

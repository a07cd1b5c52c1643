/* An account's PEP nodes: loaded from the store ("pepnode") the first
 * time the account's service is used while it is in memory, kept in the
 * account's module slot, written through on every change. Every change
 * happens on the loop at once in memory and is queued to the store in
 * order, so a request that follows sees it whether it reads memory or
 * the store. */
#include <stdlib.h>
#include <string.h>

#include "core/account.h"
#include "core/module.h"
#include "mod/mod_pep-private.h"
#include "server.h"
#include "store/store.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"

#define SPACE_NODES "pepnode"

struct pep_waiter {
	struct pep_waiter *next;
	struct account *a;
	pep_account_cb *cb;
	void *ctx;
};

struct pep_account *pep_account_of(struct account *a)
{
	void **slot = &a->mod_ctx[modules_index(a->srv->modules, &pep_module)];
	struct pep_account *pa = *slot;

	if (pa == NULL) {
		pa = xcalloc(1, sizeof(*pa));
		pa->nodes = hashmap_new();
		*slot = pa;
	}
	return pa;
}

void pep_node_free(struct pep_node *n)
{
	if (n == NULL)
		return;
	free(n->name);
	pep_config_free(&n->cfg);
	for (size_t i = 0; i < n->nsubs; i++)
		free(n->subs[i]);
	free(n->subs);
	free(n->last_id);
	xml_free(n->last_payload);
	free(n);
}

void pep_account_free(struct pep_account *pa)
{
	size_t pos = 0;
	void *v;

	if (pa == NULL)
		return;
	while (hashmap_next(pa->nodes, &pos, NULL, &v))
		pep_node_free(v);
	hashmap_free(pa->nodes);
	free(pa);
}

struct pep_node *pep_node_find(struct pep_account *pa, const char *name)
{
	return hashmap_get(pa->nodes, name);
}

size_t pep_node_count(const struct pep_account *pa)
{
	return hashmap_count(pa->nodes);
}

char *pep_items_space(const char *node)
{
	return xasprintf("pep/%s", node);
}

static void stored(void *ctx, int result, const char *error)
{
	char *what = ctx;

	if (result < 0)
		log_error("pep: cannot store %s: %s", what,
			  error != NULL ? error : "?");
	free(what);
}

void pep_node_save(struct account *a, const struct pep_node *n)
{
	size_t len;
	char *data = pep_node_serialize(n, &len);

	store_data_put(a->srv->store, a->bare, SPACE_NODES, n->name, data, len,
		       0, stored, xasprintf("node %s of %s", n->name, a->bare));
	free(data);
}

struct pep_node *pep_node_create(struct account *a, struct pep_account *pa,
				 const char *name,
				 const struct pep_config *cfg)
{
	struct pep_node *n = xcalloc(1, sizeof(*n));

	n->name = xstrdup(name);
	pep_config_copy(&n->cfg, cfg);
	n->subs = xcalloc(1, sizeof(char *));
	hashmap_put(pa->nodes, name, n);
	pep_node_save(a, n);
	return n;
}

void pep_node_delete(struct account *a, struct pep_account *pa,
		     const char *name)
{
	char *space = pep_items_space(name);

	/* XEP-0060 §8.4: the items go before the node. */
	store_data_delete(a->srv->store, a->bare, space, NULL, stored,
			  xasprintf("the removal of %s's items of %s", a->bare,
				    name));
	store_data_delete(a->srv->store, a->bare, SPACE_NODES, name, stored,
			  xasprintf("the removal of node %s of %s", name,
				    a->bare));
	pep_node_free(hashmap_remove(pa->nodes, name));
	free(space);
}

/* ---- loading ---- */

static void run_waiters(struct pep_account *pa, bool ok)
{
	struct pep_waiter *w = pa->waiters, *next;

	pa->waiters = NULL;
	for (; w != NULL; w = next) {
		next = w->next;
		w->cb(w->ctx, w->a, ok ? pa : NULL);
		free(w);
	}
}

static void nodes_loaded(void *ctx, int result,
			 const struct store_data_item *items, size_t n)
{
	struct account *a = ctx;
	struct pep_account *pa = pep_account_of(a);

	pa->loading = false;
	if (result < 0) {
		log_error("pep: cannot load the nodes of %s", a->bare);
	} else {
		for (size_t i = 0; i < n; i++) {
			struct pep_node *node;

			if (hashmap_get(pa->nodes, items[i].key) != NULL)
				continue;
			node = pep_node_parse(items[i].key, items[i].value,
					      items[i].len);
			if (node == NULL) {
				log_error("pep: node %s of %s does not parse",
					  items[i].key, a->bare);
				continue;
			}
			hashmap_put(pa->nodes, node->name, node);
		}
		pa->loaded = true;
	}
	run_waiters(pa, result >= 0);
	account_unref(a);
}

void pep_nodes_load(struct account *a, struct pep_account *pa)
{
	pa->loading = true;
	account_ref(a);
	store_data_list(a->srv->store, a->bare, SPACE_NODES, 0, nodes_loaded,
			a);
}

struct getter {
	pep_account_cb *cb;
	void *ctx;
};

static void account_ready(void *ctx, struct account *a)
{
	struct getter *g = ctx;
	struct pep_account *pa;
	struct pep_waiter *w, **tail;

	if (!a->exists || !a->loaded) {
		g->cb(g->ctx, a, NULL);
		free(g);
		return;
	}
	pa = pep_account_of(a);
	if (pa->loaded) {
		g->cb(g->ctx, a, pa);
		free(g);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->a = a;
	w->cb = g->cb;
	w->ctx = g->ctx;
	free(g);
	/* In arrival order: requests are answered in the order made. */
	for (tail = &pa->waiters; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = w;
	if (!pa->loading)
		pep_nodes_load(a, pa);
}

void pep_account_get(struct server *srv, const char *bare,
		     pep_account_cb *cb, void *ctx)
{
	struct getter *g = xmalloc(sizeof(*g));

	g->cb = cb;
	g->ctx = ctx;
	account_get(srv, bare, account_ready, g);
}

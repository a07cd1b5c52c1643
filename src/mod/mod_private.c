/* XEP-0049 Private XML Storage: an account keeps elements of its own
 * namespaces on the server, one per (namespace, name), readable and
 * writable only by its own resources.
 *
 * Items live in the per-user data store, space "private", key
 * "{namespace}name", value the element as xml_serialize_document writes
 * it.
 * <storage xmlns='storage:bookmarks'/> is not kept here: mod_bookmarks
 * answers it from its XEP-0402 items, so that every client sees one set
 * of bookmarks.
 *
 * The account's items together may take at most private_max_size bytes.
 * To decide a write at once, without reading the account's items each
 * time (and so that pipelined writes cannot all pass the same check),
 * the size of each item is kept in memory while the account is loaded,
 * read once on its first write. Requests that arrive while that read is
 * under way wait behind it, in order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "core/session.h"
#include "mod/mod_bookmarks.h"
#include "server.h"
#include "store/store.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xml/xml_document.h"

#define NS_PRIVATE "jabber:iq:private"
#define NS_BOOKMARKS "storage:bookmarks"
#define SPACE "private"

extern const struct module private_module;

/* A request answered later: a copy of the IQ and the owner. */
struct pending {
	struct pending *next;
	struct server *srv;
	struct xml_node *iq;     /* copy; payload is its <query/> */
	char *owner;
	char *key;
	bool set;
	/* set: the element's serialization (NULL: remove the item) */
	char *value;
	size_t len;
};

/* Per loaded account: the sizes of its items, once read. */
struct priv_account {
	/* key -> (void *)(uintptr_t)bytes: a serialized element is never
	 * empty, so a stored item is never NULL. */
	struct hashmap *sizes;
	size_t total;
	bool loaded, loading;
	struct pending *wait_head, *wait_tail; /* behind the load */
};

static void pending_free(struct pending *p)
{
	xml_free(p->iq);
	free(p->owner);
	free(p->key);
	free(p->value);
	free(p);
}

/* iq_reply / iq_error need only srv and iq. */
static struct iq_request pending_req(const struct pending *p)
{
	return (struct iq_request){ .srv = p->srv, .iq = p->iq };
}

static void **acct_slot(struct account *a)
{
	return &a->mod_ctx[modules_index(a->srv->modules, &private_module)];
}

static struct priv_account *acct_ctx(struct account *a)
{
	void **p = acct_slot(a);

	if (*p == NULL)
		*p = xcalloc(1, sizeof(struct priv_account));
	return *p;
}

static void sizes_forget(struct priv_account *pa)
{
	hashmap_free(pa->sizes);
	pa->sizes = NULL;
	pa->total = 0;
	pa->loaded = false;
}

/* The XEP reserves these: a client must not store under them (§2.3,
 * "Not Acceptable"). */
static bool reserved_ns(const char *ns)
{
	return ns[0] == '\0' || strncmp(ns, "jabber:", 7) == 0 ||
	       strncmp(ns, "http://jabber.org/", 18) == 0 ||
	       strcmp(ns, "vcard-temp") == 0;
}

/* ---- get ---- */

static void got(void *ctx, int result, const struct store_data_item *items,
		size_t n)
{
	struct pending *p = ctx;
	struct iq_request req = pending_req(p);
	const struct xml_node *want = xml_first_element(xml_first_element(p->iq));
	struct xml_node *q, *stored = NULL;

	if (result < 0) {
		iq_error(&req, "internal-server-error", NULL);
		goto out;
	}
	if (n == 1) {
		stored = xml_parse_document(items[0].value, items[0].len);
		if (stored == NULL)
			log_error("private: %s: stored item %s is damaged",
				  p->owner, p->key);
	}
	q = xml_new("query", NS_PRIVATE);
	/* Nothing stored: the requested element comes back empty, which is
	 * what clients take for "nothing there" (as Prosody and ejabberd
	 * answer). */
	if (stored != NULL)
		xml_copy_into(q, stored);
	else
		xml_add_child(q, want->name, want->ns);
	iq_reply(&req, q);
out:
	if (stored != NULL)
		xml_free(stored);
	pending_free(p);
}

static void get_start(struct pending *p)
{
	store_data_get(p->srv->store, p->owner, SPACE, p->key, got, p);
}

/* ---- set ---- */

static void put_done(void *ctx, int result, const char *error)
{
	struct pending *p = ctx;
	struct iq_request req = pending_req(p);

	if (result < 0) {
		struct account *a = hashmap_get(p->srv->accounts, p->owner);

		log_error("private: %s: storing %s failed: %s", p->owner,
			  p->key, error ? error : "?");
		/* The sizes in memory assumed the write: read them again
		 * before the next one. */
		if (a != NULL && *acct_slot(a) != NULL) {
			struct priv_account *pa = *acct_slot(a);
			if (!pa->loading)
				sizes_forget(pa);
		}
		iq_error(&req, "internal-server-error", NULL);
	} else {
		iq_reply(&req, NULL);
	}
	pending_free(p);
}

/* Decides the write against the account's quota, with the sizes known. */
static void set_start(struct priv_account *pa, struct pending *p)
{
	const struct config *cfg = p->srv->cfg;
	size_t old = (uintptr_t)hashmap_get(pa->sizes, p->key);
	size_t total = pa->total - old + p->len;

	if (total > cfg->private_max_size) {
		struct iq_request req = pending_req(p);

		iq_error(&req, "not-acceptable",
			 "private XML storage is full for this account");
		pending_free(p);
		return;
	}
	pa->total = total;
	if (p->value == NULL) {
		hashmap_remove(pa->sizes, p->key);
		store_data_delete(p->srv->store, p->owner, SPACE, p->key,
				  put_done, p);
	} else {
		hashmap_put(pa->sizes, p->key, (void *)(uintptr_t)p->len);
		store_data_put(p->srv->store, p->owner, SPACE, p->key, p->value,
			       p->len, 0, put_done, p);
	}
}

static void run_pending(struct priv_account *pa, struct pending *p)
{
	if (p->set)
		set_start(pa, p);
	else
		get_start(p);
}

struct load {
	struct server *srv;
	char *owner;
};

static void sizes_loaded(void *ctx, int result,
			 const struct store_data_item *items, size_t n)
{
	struct load *l = ctx;
	/* Each waiting request holds the account (account_ref in
	 * enqueue), so it is still loaded. */
	struct account *a = hashmap_get(l->srv->accounts, l->owner);
	struct priv_account *pa = *acct_slot(a);
	struct pending *p, *waiting = pa->wait_head;
	size_t nwaiting = 0;

	pa->wait_head = pa->wait_tail = NULL;
	pa->loading = false;
	if (result >= 0) {
		pa->sizes = hashmap_new();
		pa->total = 0;
		for (size_t i = 0; i < n; i++) {
			hashmap_put(pa->sizes, items[i].key,
				    (void *)(uintptr_t)items[i].len);
			pa->total += items[i].len;
		}
		pa->loaded = true;
	}
	while ((p = waiting) != NULL) {
		waiting = p->next;
		nwaiting++;
		if (pa->loaded) {
			run_pending(pa, p);
		} else {
			struct iq_request req = pending_req(p);
			iq_error(&req, "internal-server-error", NULL);
			pending_free(p);
		}
	}
	/* Last: the final reference may unload the account (and free pa). */
	while (nwaiting-- > 0)
		account_unref(a);
	free(l->owner);
	free(l);
}

static void enqueue(struct account *a, struct pending *p)
{
	struct priv_account *pa = acct_ctx(a);

	if (pa->loaded && pa->wait_head == NULL) {
		run_pending(pa, p);
		return;
	}
	/* Waiting for the sizes: gets wait too, so that they see the
	 * writes that were sent before them. */
	account_ref(a);
	if (pa->wait_tail != NULL)
		pa->wait_tail->next = p;
	else
		pa->wait_head = p;
	pa->wait_tail = p;
	if (!pa->loaded && !pa->loading) {
		struct load *l = xcalloc(1, sizeof(*l));

		l->srv = a->srv;
		l->owner = xstrdup(a->bare);
		pa->loading = true;
		store_data_list(a->srv->store, a->bare, SPACE, 0, sizes_loaded,
				l);
	}
}

/* ---- the IQ ---- */

static void private_iq(const struct iq_request *req)
{
	struct session *s = req->session;
	struct xml_node *el;
	struct pending *p;
	size_t n = xml_count_elements(req->payload);

	/* §2.3, §4: only the account's own resources, and only on their
	 * own account ("Forbidden", which the XEP prefers). */
	if (s == NULL || req->to->resource != NULL ||
	    !jid_bare_equal(req->from, req->to)) {
		iq_error(req, "forbidden", NULL);
		return;
	}
	/* §2.3: at least one child, else "Not Acceptable"; one namespace
	 * per request (we take one element per request, set included, like
	 * Prosody). */
	if (n == 0) {
		iq_error(req, "not-acceptable", "the query needs one child element");
		return;
	}
	if (n > 1) {
		iq_error(req, "bad-request", "one child element per request");
		return;
	}
	el = xml_first_element(req->payload);
	if (reserved_ns(el->ns)) {
		iq_error(req, "not-acceptable", "this namespace is reserved");
		return;
	}
	if (xml_is(el, "storage", NS_BOOKMARKS)) {
		if (req->set)
			bookmarks_private_set(req);
		else
			bookmarks_private_get(req);
		return;
	}

	p = xcalloc(1, sizeof(*p));
	p->srv = req->srv;
	p->iq = xml_copy(req->iq);
	p->owner = xstrdup(s->account->bare);
	p->key = xasprintf("{%s}%s", el->ns, el->name);
	p->set = req->set;
	if (req->set) {
		/* An empty element (no children, no attributes) removes the
		 * item: storing it would give back what a get of nothing
		 * gives anyway. */
		if (el->children != NULL || el->attrs != NULL)
			p->value = xml_serialize_document(el, &p->len);
		if (p->len > req->srv->cfg->private_max_size) {
			iq_error(req, "not-acceptable",
				 "the element is larger than private XML storage allows");
			pending_free(p);
			return;
		}
	}
	enqueue(s->account, p);
}

static void private_account_free(struct account *a)
{
	void **slot = acct_slot(a);
	struct priv_account *pa = *slot;

	if (pa == NULL)
		return;
	/* Nothing waits: each waiting request holds the account. */
	hashmap_free(pa->sizes);
	free(pa);
	*slot = NULL;
}

static const struct iq_handler private_handlers[] = {
	{ NS_PRIVATE, "query", IQ_SCOPE_ACCOUNT, private_iq, private_iq },
	{ NULL, NULL, 0, NULL, NULL },
};

static const char *const private_features[] = { NS_PRIVATE, NULL };

const struct module private_module = {
	.name = "private",
	.iq_handlers = private_handlers,
	.server_features = private_features,
	.account_free = private_account_free,
};

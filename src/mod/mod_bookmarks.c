/* XEP-0402 PEP Native Bookmarks, with XEP-0048 compatibility
 * (XEP-0402 §5.3 "#compat" and "#compat-pep").
 *
 * The one copy of a user's bookmarks is the XEP-0402 node
 * urn:xmpp:bookmarks:1 (one item per room, item id = room JID), a
 * private node (XEP-0223: whitelist, persistent). The two XEP-0048 forms
 * are views of it:
 * - XEP-0049 private XML <storage xmlns='storage:bookmarks'/>
 *   (mod_private hands those requests here): a get builds the storage
 *   from the items; a set replaces the items, publishing what is new or
 *   changed and retracting what is gone (§5.3.2: no notification for an
 *   unchanged item);
 * - the PEP node storage:bookmarks (item "current" holding one
 *   <storage/>): rebuilt and republished whenever the XEP-0402 items
 *   change, and, when a client publishes to it, applied to the items
 *   like a private XML set.
 * <url/> bookmarks have no XEP-0402 form and are not kept.
 *
 * The conversions, per room: name and autojoin as attributes, nick and
 * password as elements, and every other child of a XEP-0048 conference
 * kept in XEP-0402's <extensions/> (and back), so that a round trip
 * changes nothing.
 *
 * Work on one account's bookmarks runs one job at a time, in order
 * (a private get after a set sees the set); the changes a job makes
 * come back through pep_listen and queue the rebuild of the other view,
 * which stops as soon as a view is already what it should be. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core/jid.h"
#include "core/module.h"
#include "mod/mod_bookmarks.h"
#include "mod/mod_pep.h"
#include "server.h"
#include "util/buf.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xml/xml_writer.h"

#define NS_BOOKMARKS2 "urn:xmpp:bookmarks:1"
#define NS_BOOKMARKS "storage:bookmarks"
#define NS_PRIVATE "jabber:iq:private"
#define LEGACY_ITEM "current"
/* Jobs waiting per account: a client that floods private XML requests
 * gets resource-constraint, not our memory. */
#define QUEUE_MAX 32

extern const struct module bookmarks_module;

enum job_kind {
	JOB_PRIVATE_GET,   /* answer a XEP-0049 get */
	JOB_PRIVATE_SET,   /* apply a XEP-0049 set, then answer */
	JOB_FROM_LEGACY,   /* apply what a client published to storage:bookmarks */
	JOB_TO_LEGACY,     /* republish storage:bookmarks from the items */
};

struct job {
	struct job *next;
	enum job_kind kind;
	struct xml_node *iq;       /* JOB_PRIVATE_*: a copy of the request */
	struct xml_node *storage;  /* JOB_PRIVATE_SET, JOB_FROM_LEGACY */
	/* The diff, while a set runs: items to publish, ids to retract. */
	struct xml_node *publish;  /* <list> of <item id>payload</item> */
	char **retract;
	size_t nretract, retracted;
	struct xml_node *pending;  /* the next <item/> of `publish` */
};

struct owner {
	struct server *srv;
	char *bare;
	struct job *head, *tail;
	size_t njobs;
	bool running;
	/* The storage:bookmarks payload we published last: its
	 * notification back to us is not a client's change. */
	char *published;
};

/* ---- per-account queues ---- */

static struct hashmap *owners(struct server *srv)
{
	void **slot = &srv->mod_ctx[modules_index(srv->modules,
						  &bookmarks_module)];

	if (*slot == NULL)
		*slot = hashmap_new();
	return *slot;
}

static void job_free(struct job *j)
{
	xml_free(j->iq);
	xml_free(j->storage);
	xml_free(j->publish);
	for (size_t i = 0; i < j->nretract; i++)
		free(j->retract[i]);
	free(j->retract);
	free(j);
}

static void run_next(struct owner *o);

static void job_done(struct owner *o)
{
	struct job *j = o->head;

	o->head = j->next;
	if (o->head == NULL)
		o->tail = NULL;
	o->njobs--;
	job_free(j);
	o->running = false;
	run_next(o);
}

static void reply_error(struct server *srv, struct xml_node *iq,
			const char *cond, const char *text);

static void enqueue(struct server *srv, const char *bare, struct job *j)
{
	struct hashmap *map = owners(srv);
	struct owner *o = hashmap_get(map, bare);

	if (o == NULL) {
		o = xcalloc(1, sizeof(*o));
		o->srv = srv;
		o->bare = xstrdup(bare);
		hashmap_put(map, bare, o);
	}
	/* A rebuild already waiting at the end does what this one would. */
	if (j->kind == JOB_TO_LEGACY && o->tail != NULL &&
	    o->tail->kind == JOB_TO_LEGACY && !(o->running && o->head == o->tail)) {
		job_free(j);
		return;
	}
	if (o->njobs >= QUEUE_MAX) {
		if (j->iq != NULL)
			reply_error(srv, j->iq, "resource-constraint",
				    "too many bookmark requests at once");
		else
			log_warn("bookmarks: %s: too much work queued, a "
				 "change to %s is not applied", bare, NS_BOOKMARKS);
		job_free(j);
		return;
	}
	if (o->tail != NULL)
		o->tail->next = j;
	else
		o->head = j;
	o->tail = j;
	o->njobs++;
	run_next(o);
}

/* ---- conversions ---- */

static bool is_true(const char *v)
{
	return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

/* A XEP-0048 <conference/> as a XEP-0402 payload. */
static struct xml_node *to_native(const struct xml_node *conf)
{
	struct xml_node *c = xml_new("conference", NS_BOOKMARKS2);
	struct xml_node *ext = NULL;
	const struct xml_node *el;
	const char *name = xml_attr(conf, "name");

	if (name != NULL)
		xml_set_attr(c, "name", name);
	if (is_true(xml_attr(conf, "autojoin")))
		xml_set_attr(c, "autojoin", "true");
	for (el = conf->children; el != NULL; el = el->next) {
		if (el->type != XML_ELEMENT)
			continue;
		if (xml_is(el, "nick", NS_BOOKMARKS) ||
		    xml_is(el, "password", NS_BOOKMARKS)) {
			xml_add_text_child(c, el->name, xml_text(el));
			continue;
		}
		if (ext == NULL)
			ext = xml_add_child(c, "extensions", NULL);
		xml_copy_into(ext, el);
	}
	return c;
}

/* A XEP-0402 item (id = room JID) as a XEP-0048 <conference/> appended
 * to `storage`. */
static void to_legacy(struct xml_node *storage, const char *jid,
		      const struct xml_node *native)
{
	struct xml_node *c = xml_add_child(storage, "conference", NS_BOOKMARKS);
	const struct xml_node *el, *ext;
	const char *name = xml_attr(native, "name");

	xml_set_attr(c, "jid", jid);
	if (name != NULL)
		xml_set_attr(c, "name", name);
	if (is_true(xml_attr(native, "autojoin")))
		xml_set_attr(c, "autojoin", "true");
	if ((el = xml_child(native, "nick", NS_BOOKMARKS2)) != NULL)
		xml_add_text_child(c, "nick", xml_text(el));
	if ((el = xml_child(native, "password", NS_BOOKMARKS2)) != NULL)
		xml_add_text_child(c, "password", xml_text(el));
	if ((ext = xml_child(native, "extensions", NS_BOOKMARKS2)) != NULL)
		for (el = ext->children; el != NULL; el = el->next)
			if (el->type == XML_ELEMENT)
				xml_copy_into(c, el);
}

static char *serialize(const struct xml_node *x)
{
	struct buf b = BUF_INIT;

	xml_serialize(&b, x, XML_NS_CLIENT);
	return buf_steal(&b, NULL);
}

/* The items as one XEP-0048 <storage/>. */
static struct xml_node *storage_of(struct xml_node *const *items, size_t n)
{
	struct xml_node *storage = xml_new("storage", NS_BOOKMARKS);

	for (size_t i = 0; i < n; i++) {
		const char *id = xml_attr(items[i], "id");
		const struct xml_node *c = xml_child(items[i], "conference",
						     NS_BOOKMARKS2);
		if (id != NULL && c != NULL)
			to_legacy(storage, id, c);
	}
	return storage;
}

/* An item as it would come back from a XEP-0048 round trip: what a
 * XEP-0048 client's view is compared with. */
static char *normalized(const char *id, const struct xml_node *native)
{
	struct xml_node *st = xml_new("storage", NS_BOOKMARKS);
	struct xml_node *back;
	char *s;

	to_legacy(st, id, native);
	back = to_native(xml_first_element(st));
	s = serialize(back);
	xml_free(back);
	xml_free(st);
	return s;
}

/* ---- answering XEP-0049 requests ---- */

static void reply(struct owner *o, struct xml_node *iq,
		  struct xml_node *payload)
{
	struct iq_request q = { .srv = o->srv, .iq = iq };
	iq_reply(&q, payload);
}

static void reply_error(struct server *srv, struct xml_node *iq,
			const char *cond, const char *text)
{
	struct iq_request q = { .srv = srv, .iq = iq };
	iq_error(&q, cond, text);
}

static void private_got(void *ctx, int result, struct xml_node *const *items,
			size_t n)
{
	struct owner *o = ctx;
	struct xml_node *q;

	if (result < 0) {
		reply_error(o->srv, o->head->iq, "internal-server-error", NULL);
	} else {
		struct xml_node *storage = storage_of(items, n);

		q = xml_new("query", NS_PRIVATE);
		xml_copy_into(q, storage);
		xml_free(storage);
		reply(o, o->head->iq, q);
	}
	job_done(o);
}

/* ---- applying a XEP-0048 storage ---- */

static const struct pep_publish_options native_options = {
	.access_model = "whitelist",
	.max_items = (size_t)-1,  /* "max" */
	.persist_items = 1,
	.send_last_published_item = "never",
};

static void apply_step(struct owner *o);

static void applied_one(void *ctx, int result)
{
	struct owner *o = ctx;
	struct job *j = o->head;

	if (result != 0) {
		log_warn("bookmarks: %s: cannot update %s (%s)", o->bare,
			 NS_BOOKMARKS2, result > 0 ? "the node is configured "
			 "differently" : "error");
		if (j->iq != NULL)
			reply_error(o->srv, j->iq, result > 0 ? "conflict"
				    : "internal-server-error",
				    result > 0 ? "the bookmarks node is not "
				    "private (XEP-0223)" : NULL);
		job_done(o);
		return;
	}
	apply_step(o);
}

static void apply_step(struct owner *o)
{
	struct job *j = o->head;
	struct xml_node *item = j->pending;

	if (o->srv->shutting_down) {
		job_done(o);
		return;
	}

	if (item != NULL) {
		j->pending = xml_next(item, "item", NULL);
		pep_publish(o->srv, o->bare, NS_BOOKMARKS2,
			    xml_attr(item, "id"), xml_first_element(item),
			    &native_options, applied_one, o);
		return;
	}
	if (j->retracted < j->nretract) {
		pep_retract(o->srv, o->bare, NS_BOOKMARKS2,
			    j->retract[j->retracted++], applied_one, o);
		return;
	}
	if (j->iq != NULL)
		reply(o, j->iq, NULL);
	job_done(o);
}

/* The rooms of a XEP-0048 storage, by prepared JID (the last one of a
 * JID wins), as XEP-0402 payloads in `list`. */
static struct hashmap *wanted_rooms(const struct xml_node *storage,
				    struct xml_node *list)
{
	struct hashmap *rooms = hashmap_new();
	const struct xml_node *c;

	for (c = xml_child(storage, "conference", NS_BOOKMARKS); c != NULL;
	     c = xml_next(c, "conference", NS_BOOKMARKS)) {
		const char *jid = xml_attr(c, "jid");
		char *room = jid != NULL ? jid_normalize(jid) : NULL;
		struct xml_node *item, *native;

		if (room == NULL)
			continue;
		item = hashmap_get(rooms, room);
		if (item != NULL)
			xml_remove(item);
		item = xml_add_child(list, "item", NULL);
		xml_set_attr(item, "id", room);
		native = to_native(c);
		xml_copy_into(item, native);
		xml_free(native);
		hashmap_put(rooms, room, item);
		free(room);
	}
	return rooms;
}

static void current_items(void *ctx, int result, struct xml_node *const *items,
			  size_t n)
{
	struct owner *o = ctx;
	struct job *j = o->head;
	struct xml_node *list = xml_new("list", NS_BOOKMARKS2);
	struct hashmap *rooms;
	size_t cap = 0;

	if (result < 0) {
		if (j->iq != NULL)
			reply_error(o->srv, j->iq, "internal-server-error", NULL);
		xml_free(list);
		job_done(o);
		return;
	}
	rooms = wanted_rooms(j->storage, list);
	if (hashmap_count(rooms) > o->srv->cfg->pep_max_items) {
		if (j->iq != NULL)
			reply_error(o->srv, j->iq, "not-acceptable",
				    "more bookmarks than the server keeps");
		else
			log_warn("bookmarks: %s: more bookmarks than the "
				 "server keeps", o->bare);
		hashmap_free(rooms);
		xml_free(list);
		job_done(o);
		return;
	}
	/* Unchanged rooms are left alone; rooms no longer there go. */
	for (size_t i = 0; i < n; i++) {
		const char *id = xml_attr(items[i], "id");
		const struct xml_node *have = xml_child(items[i], "conference",
							NS_BOOKMARKS2);
		struct xml_node *want = id != NULL ? hashmap_get(rooms, id)
						   : NULL;
		char *a, *b;

		if (id == NULL)
			continue;
		if (want == NULL) {
			j->retract = xgrow(j->retract, &cap, j->nretract + 1,
					   sizeof(char *));
			j->retract[j->nretract++] = xstrdup(id);
			continue;
		}
		if (have == NULL)
			continue;
		a = normalized(id, have);
		b = serialize(xml_first_element(want));
		if (strcmp(a, b) == 0)
			xml_remove(want);
		free(a);
		free(b);
	}
	hashmap_free(rooms);
	j->publish = list;
	j->pending = xml_child(list, "item", NULL);
	apply_step(o);
}

/* ---- rebuilding storage:bookmarks ---- */

static void legacy_published(void *ctx, int result)
{
	struct owner *o = ctx;

	if (result != 0)
		log_warn("bookmarks: %s: cannot update %s (%s)", o->bare,
			 NS_BOOKMARKS, result > 0 ? "the node is not private"
			 : "error");
	job_done(o);
}

struct rebuild {
	struct owner *o;
	struct xml_node *storage;
	char *text;
};

static void legacy_current(void *ctx, int result, struct xml_node *const *items,
			   size_t n)
{
	struct rebuild *rb = ctx;
	struct owner *o = rb->o;
	const struct xml_node *have = n == 1 ? xml_child(items[0], "storage",
							 NS_BOOKMARKS) : NULL;
	char *current = have != NULL ? serialize(have) : NULL;

	free(o->published);
	o->published = xstrdup(rb->text);
	/* Already right, or nothing to say and no node to say it in. */
	if (result < 0 || (current != NULL && strcmp(current, rb->text) == 0) ||
	    (current == NULL && rb->storage->children == NULL)) {
		job_done(o);
	} else {
		static const struct pep_publish_options legacy_options = {
			.access_model = "whitelist",
			.persist_items = 1,
		};
		pep_publish(o->srv, o->bare, NS_BOOKMARKS, LEGACY_ITEM,
			    rb->storage, &legacy_options, legacy_published, o);
	}
	free(current);
	xml_free(rb->storage);
	free(rb->text);
	free(rb);
}

static void native_for_legacy(void *ctx, int result,
			      struct xml_node *const *items, size_t n)
{
	struct owner *o = ctx;
	struct rebuild *rb;

	if (result < 0) {
		job_done(o);
		return;
	}
	rb = xcalloc(1, sizeof(*rb));
	rb->o = o;
	rb->storage = storage_of(items, n);
	rb->text = serialize(rb->storage);
	pep_items(o->srv, o->bare, NS_BOOKMARKS, LEGACY_ITEM, legacy_current,
		  rb);
}

/* ---- the queue ---- */

static void run_next(struct owner *o)
{
	struct job *j = o->head;

	if (o->running)
		return;
	/* Past the loop's end, store completions still run but nothing
	 * deferred to the loop would: start nothing more. */
	while (j != NULL && o->srv->shutting_down) {
		o->head = j->next;
		o->njobs--;
		job_free(j);
		j = o->head;
	}
	if (j == NULL) {
		hashmap_remove(owners(o->srv), o->bare);
		free(o->bare);
		free(o->published);
		free(o);
		return;
	}
	o->running = true;
	switch (j->kind) {
	case JOB_PRIVATE_GET:
		pep_items(o->srv, o->bare, NS_BOOKMARKS2, NULL, private_got, o);
		break;
	case JOB_PRIVATE_SET:
	case JOB_FROM_LEGACY:
		pep_items(o->srv, o->bare, NS_BOOKMARKS2, NULL, current_items,
			  o);
		break;
	case JOB_TO_LEGACY:
		pep_items(o->srv, o->bare, NS_BOOKMARKS2, NULL,
			  native_for_legacy, o);
		break;
	}
}

/* ---- entry points ---- */

static struct job *private_job(const struct iq_request *req,
			       enum job_kind kind, char **owner_r)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->kind = kind;
	j->iq = xml_copy(req->iq);
	*owner_r = jid_bare(req->to);
	return j;
}

void bookmarks_private_get(const struct iq_request *req)
{
	char *owner;
	struct job *j = private_job(req, JOB_PRIVATE_GET, &owner);

	enqueue(req->srv, owner, j);
	free(owner);
}

void bookmarks_private_set(const struct iq_request *req)
{
	char *owner;
	struct job *j = private_job(req, JOB_PRIVATE_SET, &owner);

	j->storage = xml_copy(xml_child(req->payload, "storage",
					NS_BOOKMARKS));
	enqueue(req->srv, owner, j);
	free(owner);
}

/* XEP-0402 items changed (by anyone, this module included). */
static void native_changed(struct server *srv, const char *owner,
			   const char *node, const struct xml_node *item)
{
	struct job *j = xcalloc(1, sizeof(*j));

	(void)node;
	(void)item;
	j->kind = JOB_TO_LEGACY;
	enqueue(srv, owner, j);
}

/* A client published to storage:bookmarks. A retraction or deletion of
 * that node is not taken as "no bookmarks": it removes a view only. */
static void legacy_changed(struct server *srv, const char *owner,
			   const char *node, const struct xml_node *item)
{
	struct owner *o = hashmap_get(owners(srv), owner);
	const struct xml_node *storage;
	struct job *j;
	char *text;
	bool ours;

	(void)node;
	if (item == NULL ||
	    (storage = xml_child(item, "storage", NS_BOOKMARKS)) == NULL)
		return;
	text = serialize(storage);
	ours = o != NULL && o->published != NULL &&
	       strcmp(o->published, text) == 0;
	free(text);
	if (ours)
		return;
	j = xcalloc(1, sizeof(*j));
	j->kind = JOB_FROM_LEGACY;
	j->storage = xml_copy(storage);
	enqueue(srv, owner, j);
}

static int bookmarks_init(struct server *srv)
{
	(void)srv;
	pep_listen(NS_BOOKMARKS2, native_changed);
	pep_listen(NS_BOOKMARKS, legacy_changed);
	return 0;
}

static void bookmarks_deinit(struct server *srv)
{
	void **slot;
	struct hashmap *map;
	size_t pos = 0;
	void *v;

	if (srv->modules == NULL)
		return;
	slot = &srv->mod_ctx[modules_index(srv->modules, &bookmarks_module)];
	if ((map = *slot) == NULL)
		return;
	/* Jobs still queued at shutdown wait on the store, which has
	 * completed every request by now: none are left but rebuilds that
	 * never started. */
	while (hashmap_next(map, &pos, NULL, &v)) {
		struct owner *o = v;
		struct job *j, *next;

		for (j = o->head; j != NULL; j = next) {
			next = j->next;
			job_free(j);
		}
		free(o->bare);
		free(o->published);
		free(o);
	}
	hashmap_free(map);
	*slot = NULL;
}

static const char *const bookmarks_features[] = {
	NS_BOOKMARKS2 "#compat",
	NS_BOOKMARKS2 "#compat-pep",
	/* XEP-0411 (deprecated, still read by older clients): private XML
	 * and storage:bookmarks are one. */
	"urn:xmpp:bookmarks-conversion:0",
	NULL,
};

const struct module bookmarks_module = {
	.name = "bookmarks",
	.account_features = bookmarks_features,
	.init = bookmarks_init,
	.deinit = bookmarks_deinit,
};

/* XEP-0115 Entity Capabilities.
 *
 * The server's own: a <c/> stream feature (§6.3) whose 'ver' hashes the
 * server's disco#info, built from the same module tables as mod_disco's
 * answer, and the answer to disco#info on the caps node "node#ver".
 *
 * Clients': the <c/> of every broadcast presence of a local session is
 * looked up in a server-wide cache of verified hashes; an unknown one is
 * asked for with a disco#info query from the server's domain to that
 * session (§6.2), whose answer is verified (§5.4) before it is cached.
 * What we keep of it is the client's "+notify" interests (XEP-0163
 * §4.2), which mod_pep reads through mod_caps.h. While a query is out,
 * other sessions announcing the same hash wait for its answer instead of
 * being asked too. A hash function we do not implement is asked of each
 * session and never cached (§5.4 step 2); a <c/> without 'hash' (the
 * legacy format, §9) is ignored. A presence without <c/> keeps what the
 * session announced before. */
#include <event2/event.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "core/router.h"
#include "core/session.h"
#include "core/stanza.h"
#include "mod/mod_caps-private.h"
#include "mod/mod_disco.h"
#include "server.h"
#include "util/buf.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"

#define CAPS_NODE "https://roost.example/caps"
#define CAPS_HASH "sha-1"
/* Queries in flight server-wide, sessions waiting on one, and how long
 * a client gets to answer. */
#define CAPS_QUERIES_MAX 256
#define CAPS_WAITERS_MAX 64
#define CAPS_QUERY_TIMEOUT 10
/* Attribute lengths we look at; longer ones are not caps we can use. */
#define CAPS_ATTR_MAX 1024
#define CAPS_LISTENERS_MAX 4

extern const struct module caps_module;

struct caps_server {
	char *ver;                 /* ours, computed on first use */
	struct xml_node *info;     /* our disco#info <query/> */
	struct hashmap *cache;     /* "hash\nver" -> struct caps_notify */
	struct hashmap *queries;   /* iq id -> struct caps_query */
	struct hashmap *by_key;    /* query key -> struct caps_query */
};

/* A session's announced caps and what we know of them. */
struct caps_sess {
	char *announced;           /* "hash\nver" of its last <c/> */
	struct caps_notify *set;
};

struct caps_query {
	struct server *srv;
	char *id;
	char *key;                 /* in by_key */
	char *announced, *hash, *ver, *disco_node;
	char *from;                /* our domain, for the query */
	char *target;              /* the full JID asked */
	bool verify;               /* a hash we implement: cache it */
	char **waiters;            /* full JIDs announcing the same */
	size_t nwaiters;
	struct event *timer;
};

/* Made at first use: during init the module table (and so our slot)
 * does not exist yet. */
static struct caps_server *server_ctx(struct server *srv)
{
	void **slot = &srv->mod_ctx[modules_index(srv->modules, &caps_module)];
	struct caps_server *cs = *slot;

	if (cs == NULL) {
		cs = xcalloc(1, sizeof(*cs));
		cs->cache = hashmap_new();
		cs->queries = hashmap_new();
		cs->by_key = hashmap_new();
		*slot = cs;
	}
	return cs;
}

static struct caps_sess *sess_ctx(struct session *s, bool create)
{
	void **slot = &s->mod_ctx[modules_index(s->srv->modules, &caps_module)];

	if (*slot == NULL && create)
		*slot = xcalloc(1, sizeof(struct caps_sess));
	return *slot;
}

/* ---- mod_caps.h ---- */

const struct caps_notify *caps_session_notify(struct session *s)
{
	struct caps_sess *cs = sess_ctx(s, false);
	return cs != NULL ? cs->set : NULL;
}

bool caps_wants_notify(struct session *s, const char *node)
{
	return caps_notify_has(caps_session_notify(s), node);
}

/* Registered by other modules' init, read-only after: at init there is
 * no module slot to keep them in. */
static caps_listener_fn *listeners[CAPS_LISTENERS_MAX];
static size_t nlisteners;

void caps_listen(caps_listener_fn *fn)
{
	if (nlisteners == CAPS_LISTENERS_MAX) {
		log_error("caps: more than %d listeners", CAPS_LISTENERS_MAX);
		abort();
	}
	listeners[nlisteners++] = fn;
}

/* The session's interests are now `set`. */
static void apply(struct session *s, struct caps_notify *set)
{
	struct caps_sess *cs = sess_ctx(s, true);
	struct caps_notify *before = cs->set;

	cs->set = caps_notify_ref(set);
	for (size_t i = 0; i < nlisteners; i++)
		listeners[i](s, before);
	caps_notify_unref(before);
}

/* ---- queries (§6.2) ---- */

static void query_free(struct caps_query *q)
{
	struct caps_server *cs = server_ctx(q->srv);

	if (q->id != NULL)
		hashmap_remove(cs->queries, q->id);
	hashmap_remove(cs->by_key, q->key);
	event_free(q->timer);
	for (size_t i = 0; i < q->nwaiters; i++)
		free(q->waiters[i]);
	free(q->waiters);
	free(q->id);
	free(q->key);
	free(q->announced);
	free(q->hash);
	free(q->ver);
	free(q->disco_node);
	free(q->from);
	free(q->target);
	free(q);
}

static void query_send(struct caps_query *q)
{
	struct caps_server *cs = server_ctx(q->srv);
	struct timeval tv = { CAPS_QUERY_TIMEOUT, 0 };
	struct xml_node *iq, *query;
	unsigned char rnd[12];

	if (q->id != NULL)
		hashmap_remove(cs->queries, q->id);
	free(q->id);
	/* Unguessable, so that nobody else can answer for the client. */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		log_error("caps: no random bytes for a query id");
		abort();
	}
	q->id = xasprintf("caps-%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x",
			  rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
			  rnd[6], rnd[7], rnd[8], rnd[9], rnd[10], rnd[11]);
	hashmap_put(cs->queries, q->id, q);
	iq = stanza_new("iq", q->from, q->target, "get", q->id);
	query = xml_add_child(iq, "query", NS_DISCO_INFO);
	xml_set_attr(query, "node", q->disco_node);
	evtimer_add(q->timer, &tv);
	router_route(q->srv, iq);
}

/* Does the session at `full` still announce q's caps? */
static struct session *still_announcing(struct caps_query *q, const char *full)
{
	struct session *s = session_find(q->srv, full);
	struct caps_sess *cs = s != NULL ? sess_ctx(s, false) : NULL;

	return cs != NULL && cs->announced != NULL &&
	       strcmp(cs->announced, q->announced) == 0 ? s : NULL;
}

/* The target did not answer (or answered something unusable): ask the
 * next session that announced the same, if any. */
static void query_next(struct caps_query *q)
{
	while (q->nwaiters > 0) {
		char *full = q->waiters[0];

		memmove(q->waiters, q->waiters + 1,
			--q->nwaiters * sizeof(char *));
		if (strcmp(full, q->target) != 0 &&
		    still_announcing(q, full) != NULL) {
			free(q->target);
			q->target = full;
			query_send(q);
			return;
		}
		free(full);
	}
	query_free(q);
}

static void query_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct caps_query *q = arg;

	(void)fd;
	(void)what;
	log_debug("caps: %s did not answer the disco#info query", q->target);
	query_next(q);
}

static void query_start(struct session *s, const char *key,
			const char *hash, const char *ver, const char *node,
			bool verify)
{
	struct caps_server *cs = server_ctx(s->srv);
	struct caps_query *q;

	if (hashmap_count(cs->queries) >= CAPS_QUERIES_MAX) {
		log_warn("caps: %d disco#info queries out already; %s's caps "
			 "stay unknown", CAPS_QUERIES_MAX, s->full);
		return;
	}
	q = xcalloc(1, sizeof(*q));
	q->srv = s->srv;
	q->key = xstrdup(key);
	q->announced = xstrdup(sess_ctx(s, true)->announced);
	q->hash = xstrdup(hash);
	q->ver = xstrdup(ver);
	q->disco_node = xasprintf("%s#%s", node, ver);
	q->from = xstrdup(s->account->domain);
	q->target = xstrdup(s->full);
	q->verify = verify;
	q->timer = evtimer_new(s->srv->base, query_timeout, q);
	hashmap_put(cs->by_key, q->key, q);
	query_send(q);
}

/* The answer of q's target: cache it if its hash holds, and give it to
 * every session that announced it. */
static void query_answered(struct caps_query *q, const struct xml_node *query)
{
	struct caps_server *cs = server_ctx(q->srv);
	struct caps_notify *set = caps_notify_from_query(query);
	char *ver = q->verify ? caps_hash_ver(query, q->hash) : NULL;
	struct session *s;

	if (q->verify && (ver == NULL || strcmp(ver, q->ver) != 0)) {
		/* §5.4 step 3.9: not cached; the target gets what it says
		 * of itself, the others are asked in turn. */
		log_info("caps: %s's disco#info does not hash to %s",
			 q->target, q->ver);
		if ((s = still_announcing(q, q->target)) != NULL)
			apply(s, set);
		caps_notify_unref(set);
		free(ver);
		query_next(q);
		return;
	}
	if (q->verify)
		caps_cache_put(cs->cache, q->announced, set);
	if ((s = still_announcing(q, q->target)) != NULL)
		apply(s, set);
	for (size_t i = 0; q->verify && i < q->nwaiters; i++)
		if ((s = still_announcing(q, q->waiters[i])) != NULL)
			apply(s, set);
	caps_notify_unref(set);
	free(ver);
	query_free(q);
}

static bool caps_iq_response(struct server *srv, struct xml_node *iq,
			     const struct jid *from)
{
	struct caps_server *cs = server_ctx(srv);
	const char *id = xml_attr(iq, "id");
	struct caps_query *q = id != NULL ? hashmap_get(cs->queries, id)
					  : NULL;
	const struct xml_node *query;
	char *full;
	bool ours;

	if (q == NULL)
		return false;
	full = jid_full(from);
	ours = strcmp(full, q->target) == 0;
	free(full);
	if (!ours)
		return true; /* our id, from someone we did not ask */
	query = xml_child(iq, "query", NS_DISCO_INFO);
	if (stanza_is_error(iq) || query == NULL)
		query_next(q);
	else
		query_answered(q, query);
	return true;
}

/* ---- presence (§6.1) ---- */

static bool attr_ok(const char *v)
{
	return v != NULL && *v != '\0' && strlen(v) <= CAPS_ATTR_MAX;
}

static void caps_presence(struct session *s, struct xml_node *pres)
{
	struct caps_server *srvc = server_ctx(s->srv);
	const struct xml_node *c = xml_child(pres, "c", NS_CAPS);
	const char *hash, *node, *ver;
	struct caps_sess *cs;
	struct caps_notify *set;
	struct caps_query *q;
	char *key;
	bool verify;

	if (c == NULL)
		return;
	hash = xml_attr(c, "hash");
	node = xml_attr(c, "node");
	ver = xml_attr(c, "ver");
	if (!attr_ok(hash) || !attr_ok(node) || !attr_ok(ver))
		return;
	cs = sess_ctx(s, true);
	key = xasprintf("%s\n%s", hash, ver);
	if (cs->announced != NULL && strcmp(cs->announced, key) == 0) {
		free(key);
		return;
	}
	free(cs->announced);
	cs->announced = key;
	verify = caps_hash_supported(hash);
	if (verify && (set = caps_cache_get(srvc->cache, key)) != NULL) {
		apply(s, set);
		return;
	}
	/* An unverifiable hash is asked of each session on its own. */
	key = verify ? xstrdup(cs->announced)
		     : xasprintf("%s\n%s", cs->announced, s->full);
	q = hashmap_get(srvc->by_key, key);
	if (q == NULL) {
		query_start(s, key, hash, ver, node, verify);
	} else if (q->nwaiters < CAPS_WAITERS_MAX &&
		   strcmp(q->target, s->full) != 0) {
		q->waiters = xrealloc(q->waiters,
				      (q->nwaiters + 1) * sizeof(char *));
		q->waiters[q->nwaiters++] = xstrdup(s->full);
	}
	free(key);
}

static void caps_session_end(struct session *s)
{
	void **slot = &s->mod_ctx[modules_index(s->srv->modules, &caps_module)];
	struct caps_sess *cs = *slot;

	if (cs == NULL)
		return;
	caps_notify_unref(cs->set);
	free(cs->announced);
	free(cs);
	*slot = NULL;
}

/* ---- the server's own caps (§6.3) ---- */

/* The server's disco#info, as mod_disco answers it; computed once the
 * module table is complete, i.e. at the first stream. */
static struct caps_server *own_caps(struct server *srv)
{
	struct caps_server *cs = server_ctx(srv);

	if (cs->ver != NULL)
		return cs;
	cs->info = disco_info_query(srv, true);
	cs->ver = caps_hash_ver(cs->info, CAPS_HASH);
	if (cs->ver == NULL) {
		log_error("caps: the server's disco#info does not hash");
		cs->ver = xstrdup("");
	}
	return cs;
}

static void caps_stream_features(struct server *srv, struct buf *out)
{
	struct caps_server *cs = own_caps(srv);

	buf_appendf(out, "<c xmlns='" NS_CAPS "' hash='" CAPS_HASH "' node='"
		    CAPS_NODE "' ver='%s'/>", cs->ver);
}

static bool caps_disco_node(const struct iq_request *req, const char *node,
			    bool items)
{
	struct caps_server *cs;
	struct xml_node *q;
	size_t len = strlen(CAPS_NODE);

	if (req->to->local != NULL || node == NULL ||
	    strncmp(node, CAPS_NODE "#", len + 1) != 0)
		return false;
	cs = own_caps(req->srv);
	if (strcmp(node + len + 1, cs->ver) != 0)
		return false;
	/* §6.2: the caps node is a phantom node without items. */
	q = items ? xml_new("query", "http://jabber.org/protocol/disco#items")
		  : xml_copy(cs->info);
	xml_set_attr(q, "node", node);
	iq_reply(req, q);
	return true;
}

/* ---- shutdown ---- */

static void caps_deinit(struct server *srv)
{
	void **slot;
	struct caps_server *cs;
	size_t pos = 0;
	void *v;

	if (srv->modules == NULL)
		return;
	slot = &srv->mod_ctx[modules_index(srv->modules, &caps_module)];
	if ((cs = *slot) == NULL)
		return;
	while (hashmap_next(cs->by_key, &pos, NULL, &v)) {
		query_free(v);
		pos = 0;
	}
	hashmap_free(cs->queries);
	hashmap_free(cs->by_key);
	caps_cache_free(cs->cache);
	xml_free(cs->info);
	free(cs->ver);
	free(cs);
	*slot = NULL;
}

static const char *const caps_features[] = { NS_CAPS, NULL };

const struct module caps_module = {
	.name = "caps",
	.server_features = caps_features,
	.deinit = caps_deinit,
	.presence_broadcast = caps_presence,
	.session_end = caps_session_end,
	.iq_response = caps_iq_response,
	.stream_features = caps_stream_features,
	.disco_node = caps_disco_node,
};

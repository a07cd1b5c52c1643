/* What the files of the PEP module (XEP-0163 on XEP-0060) share:
 *
 *   mod_pep.c         the IQ protocol (pubsub, pubsub#owner), disco,
 *                     hooks, the mod_pep.h contract
 *   mod_pep_config.c  node configuration: defaults, data forms,
 *                     publish-options preconditions
 *   mod_pep_node.c    an account's nodes: loading, creating, storing
 *   mod_pep_items.c   publishing, retracting, reading items
 *   mod_pep_access.c  access models and their errors
 *   mod_pep_notify.c  event notifications and the last published item
 *
 * Storage (store.h per-user data): node configurations in the space
 * "pepnode" keyed by node name; a node's items in "pep/<node>" keyed by
 * item id, the value being the serialized payload. The store keeps items
 * ordered by their last write and trims the oldest, which is exactly
 * XEP-0060's max_items ("retract-oldest"). */
#ifndef ROOST_MOD_PEP_PRIVATE_H
#define ROOST_MOD_PEP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct account;
struct hashmap;
struct server;
struct session;
struct xml_node;

#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define NS_PUBSUB_OWNER "http://jabber.org/protocol/pubsub#owner"
#define NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"
#define NS_PUBSUB_ERRORS "http://jabber.org/protocol/pubsub#errors"
#define NS_PUBSUB_PUBLISH_OPTIONS "http://jabber.org/protocol/pubsub#publish-options"
#define NS_PUBSUB_NODE_CONFIG "http://jabber.org/protocol/pubsub#node_config"
#define NS_XDATA "jabber:x:data"

/* Bounds on what clients can make us keep (STYLE rule 7); the item
 * count, node count and payload size come from the config ([pep]). */
#define PEP_NODE_MAX 1024       /* bytes of a node name */
#define PEP_ITEM_ID_MAX 3072    /* bytes of an item id (XEP-0402 ids are JIDs) */
#define PEP_TEXT_MAX 1024       /* bytes of title, description, type, a group */
#define PEP_GROUPS_MAX 64       /* pubsub#roster_groups_allowed values */
#define PEP_SUBSCRIBERS_MAX 64  /* explicit subscriptions per node */
#define PEP_SUBS_PER_ENTITY 4   /* ... of them by one bare JID */
#define PEP_IDS_MAX 256         /* item ids in one items request */
#define PEP_BUSY_MAX 64         /* requests in flight per service */

enum pep_access {
	PEP_ACCESS_OPEN,
	PEP_ACCESS_PRESENCE,
	PEP_ACCESS_ROSTER,
	PEP_ACCESS_WHITELIST,
};

enum pep_send_last {
	PEP_SEND_NEVER,
	PEP_SEND_ON_SUB,
	PEP_SEND_ON_SUB_AND_PRESENCE,
};

/* A node's configuration (XEP-0060 §16.4.3 pubsub#node_config), the
 * fields we implement. Strings are xmalloc'd, NULL when unset. */
struct pep_config {
	enum pep_access access;
	unsigned max_items;          /* 0: "max", i.e. the server's limit */
	bool persist_items;
	bool deliver_notifications;
	bool deliver_payloads;
	bool notify_retract;
	bool notify_delete;
	bool notify_config;
	bool type_normal;            /* notification_type normal, else headline */
	enum pep_send_last send_last;
	char *title, *description, *type;
	char **groups;               /* roster_groups_allowed */
	size_t ngroups;
};

struct pep_node {
	char *name;
	struct pep_config cfg;
	/* XEP-0060 §6.1 subscriptions: prepared JIDs, bare or full. */
	char **subs;
	size_t nsubs;
	/* A node that does not persist items keeps its last one here
	 * while the account is loaded (XEP-0060 §6.5.5). */
	char *last_id;
	struct xml_node *last_payload;
	int64_t last_stamp;
};

/* An account's PEP service, in its module slot while it is loaded. */
struct pep_account {
	struct hashmap *nodes;       /* name -> struct pep_node */
	bool loaded, loading;
	struct pep_waiter *waiters;
	unsigned busy;               /* requests in flight (PEP_BUSY_MAX) */
};

/* ---- mod_pep.c ---- */

extern const struct module pep_module;

/* Calls the pep_listen listeners for `node`. */
void pep_listeners_run(struct server *srv, const char *owner,
		       const char *node, const struct xml_node *item);

/* ---- mod_pep_config.c ---- */

void pep_config_default(struct pep_config *c);
void pep_config_copy(struct pep_config *dst, const struct pep_config *src);
void pep_config_free(struct pep_config *c);
/* The effective item limit: max_items, "max" and anything above the
 * server's limit meaning the limit. */
unsigned pep_config_max_items(const struct pep_config *c, unsigned limit);
const char *pep_access_name(enum pep_access a);

/* Which fields a submitted form set (bits by field, see the table in
 * mod_pep_config.c). */
typedef uint32_t pep_fields;

/* An error as XEP-0060 words it: a stanza error condition, an optional
 * pubsub#errors condition (and the 'feature' of <unsupported/>), text. */
struct pep_error {
	const char *cond, *app, *feature;
	char text[256];     /* "" for none */
};
void pep_error_set(struct pep_error *err, const char *cond, const char *app,
		   const char *text);

/* Applies a submitted data form of FORM_TYPE `form_type` (node_config or
 * publish-options) to *c. Returns 0 and the fields it set in *set_r, or
 * -1 with *err (c may then be partly changed). Values are checked
 * against `limit` (the server's max_items). */
int pep_config_apply_form(struct pep_config *c, const struct xml_node *x,
			  const char *form_type, unsigned limit,
			  pep_fields *set_r, struct pep_error *err);
/* Whether the node's configuration meets the preconditions: every field
 * in `set` as in `want` (XEP-0060 §7.1.5). */
bool pep_config_meets(const struct pep_config *node,
		      const struct pep_config *want, pep_fields set,
		      unsigned limit);
/* <x xmlns='jabber:x:data' type=type> describing c (type "form" for the
 * owner's configure and default requests). */
struct xml_node *pep_config_form(const struct pep_config *c, const char *type);

/* Stored form of a node (configuration and subscriptions), and back. */
char *pep_node_serialize(const struct pep_node *n, size_t *len_r);
struct pep_node *pep_node_parse(const char *name, const char *data,
				size_t len);

/* ---- mod_pep_node.c ---- */

/* The PEP state of a loaded account (created empty if need be). */
struct pep_account *pep_account_of(struct account *a);

/* cb(ctx, a, pa): the account (referenced: the callback unrefs it) with
 * its nodes loaded. pa is NULL if the account does not exist or could
 * not be loaded. Never called from inside this call. */
typedef void pep_account_cb(void *ctx, struct account *a,
			    struct pep_account *pa);
void pep_account_get(struct server *srv, const char *bare,
		     pep_account_cb *cb, void *ctx);

struct pep_node *pep_node_find(struct pep_account *pa, const char *name);
/* Creates the node with `cfg` (copied) and stores it. */
struct pep_node *pep_node_create(struct account *a, struct pep_account *pa,
				 const char *name,
				 const struct pep_config *cfg);
/* Stores the node's configuration and subscriptions after a change. */
void pep_node_save(struct account *a, const struct pep_node *n);
/* Removes the node, its items and its stored configuration. */
void pep_node_delete(struct account *a, struct pep_account *pa,
		     const char *name);
void pep_node_free(struct pep_node *n);
size_t pep_node_count(const struct pep_account *pa);
/* "pep/<node>": xmalloc'd. */
char *pep_items_space(const char *node);
/* Loads the account's nodes; runs waiters. */
void pep_nodes_load(struct account *a, struct pep_account *pa);
void pep_account_free(struct pep_account *pa);

/* ---- mod_pep_access.c ---- */

enum pep_denial {
	PEP_ALLOWED,
	PEP_DENY_PRESENCE,   /* not-authorized, presence-subscription-required */
	PEP_DENY_ROSTER,     /* not-authorized, not-in-roster-group */
	PEP_DENY_WHITELIST,  /* not-allowed, closed-node */
};

/* May `bare` (a prepared bare JID) retrieve items from and subscribe to
 * the node of owner `a` (loaded)? The owner always may. */
enum pep_denial pep_access_check(struct account *a, const struct pep_node *n,
				 const char *bare);
void pep_denial_error(enum pep_denial d, struct pep_error *err);
/* Does `bare` share presence with the owner (XEP-0163 §4: the owner
 * itself, or a contact with a subscription from/both)? */
bool pep_shares_presence(struct account *a, const char *bare);

/* ---- mod_pep_items.c ---- */

/* One item as the store or memory holds it. */
struct pep_item {
	const char *id;
	const char *data;   /* serialized payload */
	size_t len;
	int64_t stamp_us;
};

/* result: 0 done, -1 failed with *err. */
typedef void pep_op_cb(void *ctx, int result, const struct pep_error *err);

/* Publishes on behalf of the owner `a` (referenced for the call's
 * duration by the caller): creates the node (with `want`, or the
 * defaults) or checks `want` as preconditions (fields `set`), stores the
 * item and notifies. `id` NULL: a new id, given back in *id_r when
 * id_r is not NULL (xmalloc'd). `payload` is copied. */
void pep_publish_item(struct server *srv, struct account *a,
		      const char *node, const char *id,
		      const struct xml_node *payload,
		      const struct pep_config *want, pep_fields set,
		      char **id_r, pep_op_cb *cb, void *ctx);
/* Retracts; notify: 1 yes, 0 no, -1 as the node says. A missing item is
 * item-not-found (the mod_pep.h contract maps it to success). */
void pep_retract_item(struct server *srv, struct account *a,
		      const char *node, const char *id, int notify,
		      pep_op_cb *cb, void *ctx);
/* Reads items: `ids` (n of them) or, with n == 0, the newest `max` (0:
 * all), oldest first. result: 0 and the items, -1 error. A node that
 * does not exist gives result 1. */
typedef void pep_read_cb(void *ctx, int result, const struct pep_item *items,
			 size_t n);
void pep_read_items(struct server *srv, struct account *a, const char *node,
		    const char *const *ids, size_t nids, size_t max,
		    pep_read_cb *cb, void *ctx);
/* Removes every item (XEP-0060 §8.5), notifying as the node says. */
void pep_purge_items(struct server *srv, struct account *a,
		     struct pep_node *n);
/* Applies a configuration change to a node's stored items (persist
 * turned on or off, max_items lowered); done(ctx) runs once reads that
 * follow will see the change (maybe from inside this call). */
void pep_items_reconfigure(struct server *srv, struct account *a,
			   struct pep_node *n, const struct pep_config *old,
			   void (*done)(void *ctx), void *ctx);
/* <item id=id>payload</item> in namespace ns, appended to parent;
 * payload omitted when with_payload is false. */
struct xml_node *pep_item_xml(struct xml_node *parent, const char *ns,
			      const struct pep_item *it, bool with_payload);
/* A new unique item id (32 hex digits). */
void pep_new_id(char out[33]);

/* ---- mod_pep_notify.c ---- */

/* An item published (payload) or retracted (payload NULL). */
void pep_notify_item(struct server *srv, struct account *a,
		     const struct pep_node *n, const char *id,
		     const struct xml_node *payload);
/* <delete/>, <purge/> or <configuration/> for the node. */
void pep_notify_node(struct server *srv, struct account *a,
		     const struct pep_node *n, const char *what);
/* The last item of node n, to the full JID `to` (a subscriber that just
 * subscribed). */
void pep_send_last(struct server *srv, struct account *a,
		   const struct pep_node *n, const char *to);
/* Session s (available) may want the last items of its contacts and of
 * its own account: initial presence, or caps learned or changed
 * (`before`: the interests it had, NULL for none). */
struct caps_notify;
void pep_session_interest(struct session *s, const struct caps_notify *before);

#endif

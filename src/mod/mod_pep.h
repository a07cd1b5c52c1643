/* What other modules use of PEP (mod_pep.c): publishing and reading on an
 * account's behalf (XEP-0398 avatar conversion, XEP-0048 bookmark
 * compatibility), asking who may read a node, and learning of what the
 * account published. All of it
 * keeps XEP-0060's rules: the same node limits, notifications to
 * subscribers, access models. */
#ifndef ROOST_MOD_PEP_H
#define ROOST_MOD_PEP_H

#include <stddef.h>

struct server;
struct xml_node;

/* Options for a node the publish creates (a node that exists keeps its
 * own: then they act as XEP-0060 publish-options preconditions and a
 * mismatch fails with result 1). access_model NULL means "presence";
 * max_items 0 means the node's (or the config's) default, and a value at
 * or above the config's [pep] max_items (SIZE_MAX, say) means "max". */
struct pep_publish_options {
	const char *access_model;  /* open, presence, roster, whitelist */
	size_t max_items;
	int persist_items;         /* -1 default, 0 false, 1 true */
	/* never, on_sub, on_sub_and_presence; NULL: the default
	 * (XEP-0402 wants "never" for its private node). */
	const char *send_last_published_item;
};

/* result: 0 published, 1 precondition-not-met, -1 error (logged). */
typedef void pep_done_cb(void *ctx, int result);
/* Items newest last; each is an <item id='...'> element with its
 * payload, valid during the callback. result: number of items (>= 0),
 * -1 error. A node that does not exist has 0 items. */
typedef void pep_items_cb(void *ctx, int result,
			  struct xml_node *const *items, size_t n);

/* Publishes `payload` (copied) as item `id` (NULL: a new id) to owner's
 * (a local account's prepared bare JID) node, creating the node with
 * `opts` (NULL: defaults) when it does not exist, and notifies as a
 * client's publish would. cb may be NULL. */
void pep_publish(struct server *srv, const char *owner, const char *node,
		 const char *id, const struct xml_node *payload,
		 const struct pep_publish_options *opts, pep_done_cb *cb,
		 void *ctx);
/* Retracts item `id` (notifying), result 0 also when it was not there. */
void pep_retract(struct server *srv, const char *owner, const char *node,
		 const char *id, pep_done_cb *cb, void *ctx);
/* The node's items (id NULL: all of them, else that one), for the owner
 * (no access check). */
void pep_items(struct server *srv, const char *owner, const char *node,
	       const char *id, pep_items_cb *cb, void *ctx);

/* The access model of owner's node (XEP-0060 §4.5: "open", "presence",
 * "roster" or "whitelist", a static string), or NULL when the node does
 * not exist or the account's nodes could not be read: a caller deciding
 * whether something may be made public treats NULL as "no". The
 * configuration is the one in memory when cb runs; cb never runs inside
 * this call. */
typedef void pep_access_cb(void *ctx, const char *access_model);
void pep_node_access(struct server *srv, const char *owner, const char *node,
		     pep_access_cb *cb, void *ctx);

/* Called after every publish (item non-NULL) or retraction or node
 * deletion (item NULL) on any account's node whose name equals `node`,
 * however it came (a client or pep_publish). At most 8 listeners. */
typedef void pep_listener_fn(struct server *srv, const char *owner,
			     const char *node, const struct xml_node *item);
void pep_listen(const char *node, pep_listener_fn *fn);

#endif

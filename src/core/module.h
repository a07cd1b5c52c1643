/* What a module (mod/mod_*.c, and the core's roster) registers: IQ handlers by
 * namespace, disco features and identities, and hooks. The core knows no
 * XEP by name; it asks this table. */
#ifndef ROOST_CORE_MODULE_H
#define ROOST_CORE_MODULE_H

#include <stdbool.h>
#include <stddef.h>

struct account;
struct buf;
struct c2s;
struct jid;
struct modules;
struct server;
struct session;
struct xml_node;

/* Where an IQ handler answers: for the server's own JID (the domain), for
 * an account's bare JID (on the account's behalf, RFC 6121 §8.5.1), or
 * both. */
enum iq_scope { IQ_SCOPE_SERVER = 1, IQ_SCOPE_ACCOUNT = 2 };

struct iq_request {
	struct server *srv;
	struct xml_node *iq;        /* the request; owned by the caller */
	struct xml_node *payload;   /* its single child element */
	const struct jid *from;     /* sender, full JID */
	const struct jid *to;       /* the server domain or an account bare JID */
	struct session *session;    /* the sender's session if it is local, else NULL */
	bool set;                   /* type='set' (else 'get') */
};

/* A handler answers the request exactly once, now or later, with
 * iq_reply() or iq_error() (which copy what they need from the request:
 * a later answer must copy the request first). */
typedef void iq_handler_fn(const struct iq_request *req);

struct iq_handler {
	const char *ns;       /* payload namespace */
	const char *name;     /* payload element name, NULL = any */
	unsigned scope;       /* enum iq_scope bits */
	iq_handler_fn *get, *set; /* NULL: that type is not supported */
};

/* A XEP-0030 identity a module adds to disco#info. */
struct disco_identity {
	const char *category, *type, *name;  /* name may be NULL */
};

struct module {
	const char *name;
	const struct iq_handler *iq_handlers; /* terminated by { NULL } */
	const char *const *server_features;   /* NULL-terminated, or NULL */
	const char *const *account_features;  /* NULL-terminated, or NULL */
	/* Terminated by { NULL }, or NULL. */
	const struct disco_identity *server_identities;
	const struct disco_identity *account_identities;
	/* Optional: false when the configuration switches the module's
	 * protocol off; its IQ handlers, features and identities are then
	 * not offered (service-unavailable, not advertised). Asked once,
	 * after init. Its hooks still run: they check the config
	 * themselves. */
	bool (*enabled)(struct server *srv);
	/* Optional. Called once at start-up / shutdown. */
	int (*init)(struct server *srv);
	void (*deinit)(struct server *srv);

	/* Hooks, all optional, called in module order. */

	/* A message for a local account (bare JID, or a full JID whose
	 * resource is gone) that no available resource took. Return true to
	 * take ownership of `msg` (e.g. to store it: the module then owes
	 * the sender an error if it cannot); false passes it on, and in the
	 * end the router bounces it with service-unavailable. */
	bool (*message_undelivered)(struct server *srv, struct xml_node *msg,
				    const struct jid *to);
	/* A resource was just bound (the account is loaded), before the
	 * client has the bind result and so before it can send anything
	 * on the session: the moment to start reading what its first
	 * stanzas will need (the XEP-0153 photo hash). Not called for a
	 * XEP-0198 resumption (the session was bound before). */
	void (*session_bound)(struct session *s);
	/* The session sent its initial presence (it is now available). */
	void (*initial_presence)(struct session *s);
	/* The session is about to end (still in the tables). */
	void (*session_end)(struct session *s);
	/* The account is being unloaded: free its module context. */
	void (*account_free)(struct account *a);
	/* disco#info (items false) or disco#items for `node` at the request's
	 * target; return true if this module owns the node (and answered).
	 * `node` is NULL for disco#items on an account without a node (the
	 * account's own items: its PEP nodes). */
	bool (*disco_node)(const struct iq_request *req, const char *node,
			   bool items);
	/* A message for a local account is about to be delivered or stored:
	 * modules may add to it (XEP-0359 <stanza-id/>), once per message. */
	void (*message_inbound)(struct server *srv, struct xml_node *msg,
				const struct jid *to);
	/* A message a local session sent ('from' stamped, 'to' set), before
	 * it is routed (XEP-0280 sent copies, XEP-0313 archiving). */
	void (*message_sent)(struct session *s, struct xml_node *msg);
	/* A message for a local account was delivered to these sessions
	 * (n may be 0 when it went to storage instead). Once per message,
	 * not per resource (XEP-0280 received copies, XEP-0313). */
	void (*message_routed)(struct server *srv, const struct xml_node *msg,
			       struct session *const *to, size_t n);
	/* A stanza is about to be written to the session. Return true to take
	 * it over (XEP-0352 holds it while the client is inactive); the
	 * module then owns a copy it made, `stanza` stays the caller's. */
	bool (*session_filter)(struct session *s, const struct xml_node *stanza);
	/* A top-level element that is not a stanza, on a bound session
	 * (nonzas: XEP-0352 <active/>). Return true if handled. */
	bool (*stream_element)(struct session *s, struct xml_node *el);
	/* Appends stream features for an authenticated stream. */
	void (*stream_features)(struct server *srv, struct buf *out);

	/* A stanza about to be routed (router_route: 'from' is set and
	 * `to` parsed; client stanzas and the server's own alike). Return
	 * true to stop it: the module has sent whatever error it owes (with
	 * router_bounce) and the caller frees the stanza (XEP-0191). */
	bool (*route_filter)(struct server *srv, struct xml_node *stanza,
			     const struct jid *from, const struct jid *to);
	/* A local session's broadcast presence (available, no 'to'), before
	 * it is stored and sent: modules may read it (XEP-0115 caps) and add
	 * to it (XEP-0153 photo hash). */
	void (*presence_broadcast)(struct session *s, struct xml_node *pres);
	/* A result or error IQ addressed to the server (the answer to a
	 * request a module sent from the domain, e.g. a XEP-0115 disco#info
	 * query). Return true if it was this module's. */
	bool (*iq_response)(struct server *srv, struct xml_node *iq,
			    const struct jid *from);
	/* Before authentication (and after TLS, where TLS is required):
	 * stream features to offer, and IQs to answer (XEP-0077 in-band
	 * registration). An IQ hook returns true if the IQ was its own; it
	 * answers with c2s_send, and must c2s_hold/c2s_release the stream
	 * around anything asynchronous. `iq` stays the caller's. */
	void (*preauth_features)(struct server *srv, struct buf *out);
	bool (*preauth_iq)(struct c2s *c, struct xml_node *iq);
};

/* Per-module context slots in sessions and accounts (like nginx's module
 * ctx arrays): a module finds its slot by its index. */
#define MODULES_MAX 24

/* Index of `mod` in the table (aborts if it is not registered). */
unsigned modules_index(const struct modules *m, const struct module *mod);

/* Calls each module's hook that is set. */
bool modules_message_undelivered(struct server *srv, struct xml_node *msg,
				 const struct jid *to);
void modules_session_bound(struct server *srv, struct session *s);
void modules_initial_presence(struct server *srv, struct session *s);
void modules_session_end(struct server *srv, struct session *s);
void modules_account_free(struct server *srv, struct account *a);
bool modules_disco_node(const struct iq_request *req, const char *node,
			bool items);
void modules_message_inbound(struct server *srv, struct xml_node *msg,
			     const struct jid *to);
void modules_message_sent(struct session *s, struct xml_node *msg);
void modules_message_routed(struct server *srv, const struct xml_node *msg,
			    struct session *const *to, size_t n);
bool modules_session_filter(struct session *s, const struct xml_node *stanza);
bool modules_stream_element(struct session *s, struct xml_node *el);
void modules_stream_features(struct server *srv, struct buf *out);
/* Whether any module has a route_filter (spares the routing path the
 * parse of 'from' when none has). */
bool modules_filter_routes(const struct modules *m);
bool modules_route_filter(struct server *srv, struct xml_node *stanza,
			  const struct jid *from, const struct jid *to);
void modules_presence_broadcast(struct server *srv, struct session *s,
				struct xml_node *pres);
bool modules_iq_response(struct server *srv, struct xml_node *iq,
			 const struct jid *from);
void modules_preauth_features(struct server *srv, struct buf *out);
bool modules_preauth_iq(struct server *srv, struct c2s *c,
			struct xml_node *iq);
/* A message_undelivered hook that took a message (returned true) and then
 * decided, later, not to keep it, passes it on to the modules after
 * itself with this; returns true if one took it. `msg` stays the
 * caller's unless one did. */
bool modules_message_undelivered_after(struct server *srv,
				       const struct module *self,
				       struct xml_node *msg,
				       const struct jid *to);

struct modules;

/* Builds the table from mod/modules.c's list. */
struct modules *modules_new(struct server *srv);
void modules_free(struct server *srv, struct modules *m);

/* The handler for an IQ payload in the given scope, or NULL. */
const struct iq_handler *modules_find_iq(const struct modules *m,
					 const char *ns, const char *name,
					 enum iq_scope scope);
/* Calls fn(var, ctx) for every feature of the scope, sorted, unique. */
void modules_foreach_feature(const struct modules *m, enum iq_scope scope,
			     void (*fn)(const char *var, void *ctx), void *ctx);
/* Calls fn for every identity of the scope that a module adds, in module
 * order (the server's own server/im and the account's account/registered
 * come from mod_disco). */
void modules_foreach_identity(const struct modules *m, enum iq_scope scope,
			      void (*fn)(const struct disco_identity *id,
					 void *ctx),
			      void *ctx);

/* Dispatches an IQ get/set addressed to the server or an account to its
 * handler, or answers service-unavailable (RFC 6120 §8.4 / 6121 §8.5.1).
 * `iq` stays the caller's. */
void modules_dispatch_iq(struct server *srv, struct xml_node *iq,
			 const struct jid *from, const struct jid *to,
			 struct session *session, enum iq_scope scope);

/* Replies to a request: `payload` (may be NULL) becomes the result's child;
 * takes ownership of payload. */
void iq_reply(const struct iq_request *req, struct xml_node *payload);
void iq_error(const struct iq_request *req, const char *condition,
	      const char *text);

#endif

/* XEP-0077 In-Band Registration: the protocol. Before authentication, and
 * only when [register] enabled is on: the stream feature, the form and
 * account creation, under a per-address limit. After authentication,
 * whatever the setting (as Prosody does): the registration query, password
 * change and account removal by the account itself. The account changes
 * are in mod_register_account.c. */
#include "mod/mod_register.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "core/account.h"
#include "core/account_create.h"
#include "core/jid.h"
#include "core/module.h"
#include "core/session.h"
#include "core/stanza.h"
#include "mod/modules.h"
#include "net/conn.h"
#include "server.h"
#include "util/buf.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xmpp/c2s.h"

#define NS_REGISTER_FEATURE "http://jabber.org/features/iq-register"

/* Creations under way at once, server-wide: each costs two PBKDF2 runs,
 * and without this one stream could queue any number of them. */
#define REG_MAX_INFLIGHT 8
/* Addresses whose limit is tracked at once. A full table first forgets
 * the addresses whose allowance has grown back whole; if every one is
 * still in use, registration is refused until some are (fail closed). */
#define REG_MAX_TRACKED 10000

extern const struct module register_module;

/* Per address (IPv4, IPv6 /64: conn.h's peer_ip), a token bucket as
 * Prosody's registration throttle: max_per_address accounts at once,
 * growing back at max_per_address per window. */
struct reg_bucket {
	double tokens;
	uint64_t stamp_ms;
};

struct reg_server {
	struct hashmap *buckets;   /* peer_ip -> struct reg_bucket */
	unsigned inflight;
	struct event *sig_recheck; /* SIGUSR1: roostctl removed accounts */
};

/* Not modules_index: init runs before srv->modules is set. */
static unsigned register_index(void)
{
	unsigned i = 0;

	while (builtin_modules[i] != &register_module)
		i++;
	return i;
}

static struct reg_server *reg_server(struct server *srv)
{
	return srv->mod_ctx[register_index()];
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the per-address limit ---- */

static void bucket_refill(const struct config *cfg, struct reg_bucket *b,
			  uint64_t now)
{
	double max = cfg->register_max_per_address;

	b->tokens += (double)(now - b->stamp_ms) * max /
		     ((double)cfg->register_window * 1000.0);
	if (b->tokens > max)
		b->tokens = max;
	b->stamp_ms = now;
}

static void forget_full_buckets(struct server *srv, uint64_t now)
{
	struct reg_server *rs = reg_server(srv);
	size_t pos = 0;
	const char *key;
	void *v;
	size_t n = 0;
	char **drop = xcalloc(hashmap_count(rs->buckets) + 1, sizeof(*drop));

	while (hashmap_next(rs->buckets, &pos, &key, &v)) {
		struct reg_bucket *b = v;

		bucket_refill(srv->cfg, b, now);
		if (b->tokens >= srv->cfg->register_max_per_address)
			drop[n++] = xstrdup(key);
	}
	for (size_t i = 0; i < n; i++) {
		free(hashmap_remove(rs->buckets, drop[i]));
		free(drop[i]);
	}
	free(drop);
}

/* Takes one account from the address's allowance: false if none is left. */
static bool limit_take(struct server *srv, const char *addr)
{
	const struct config *cfg = srv->cfg;
	struct reg_server *rs = reg_server(srv);
	struct reg_bucket *b;
	uint64_t now = now_ms();

	if (cfg->register_max_per_address == 0)
		return true;
	b = hashmap_get(rs->buckets, addr);
	if (b == NULL) {
		if (hashmap_count(rs->buckets) >= REG_MAX_TRACKED)
			forget_full_buckets(srv, now);
		if (hashmap_count(rs->buckets) >= REG_MAX_TRACKED) {
			log_warn("register: %d addresses registering at once: "
				 "refused", REG_MAX_TRACKED);
			return false;
		}
		b = xcalloc(1, sizeof(*b));
		b->tokens = cfg->register_max_per_address;
		b->stamp_ms = now;
		hashmap_put(rs->buckets, addr, b);
	}
	bucket_refill(cfg, b, now);
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

/* Gives back what limit_take took for a creation that did not happen. */
static void limit_return(struct server *srv, const char *addr)
{
	struct reg_bucket *b = hashmap_get(reg_server(srv)->buckets, addr);

	if (b == NULL)
		return;
	b->tokens += 1.0;
	bucket_refill(srv->cfg, b, now_ms());
}

/* ---- before authentication ---- */

static void preauth_features(struct server *srv, struct buf *out)
{
	if (srv->cfg->register_enabled)
		buf_append_str(out, "<register xmlns='" NS_REGISTER_FEATURE
				    "'/>");
}

static void send_error(struct c2s *c, const struct xml_node *iq,
		       const char *condition, const char *text)
{
	struct xml_node *err = stanza_error_reply(iq, condition, text);

	if (err != NULL) {
		c2s_send(c, err);
		xml_free(err);
	}
}

static void send_form(struct c2s *c, const struct xml_node *iq)
{
	struct xml_node *res = stanza_iq_result(iq);
	struct xml_node *q = xml_add_child(res, "query", NS_REGISTER);

	xml_add_text_child(q, "instructions", "Choose a username and "
			   "password for use with this service.");
	xml_add_child(q, "username", NULL);
	xml_add_child(q, "password", NULL);
	c2s_send(c, res);
	xml_free(res);
}

/* A creation under way for a stream. */
struct preauth_create {
	struct c2s *c;             /* held */
	struct xml_node *iq;       /* the request without its payload */
	char *bare;
	char addr[ADDR_KEY_MAX];
};

static void preauth_created(void *ctx, enum reg_created result)
{
	struct preauth_create *p = ctx;
	struct c2s *c = p->c;
	struct server *srv = c->srv;
	struct xml_node *res;

	reg_server(srv)->inflight--;
	if (result != REG_CREATED)
		limit_return(srv, p->addr);
	if (!c2s_release(c))
		goto out;
	switch (result) {
	case REG_CREATED:
		log_msg(LOG_INFO, c->log_ctx, "registered %s", p->bare);
		res = stanza_iq_result(p->iq);
		c2s_send(c, res);
		xml_free(res);
		break;
	case REG_EXISTS:
		send_error(c, p->iq, "conflict", "this username is taken");
		break;
	case REG_BAD_PASSWORD:
		send_error(c, p->iq, "not-acceptable",
			   "this password cannot be used (SASLprep, RFC 4013)");
		break;
	case REG_FAILED:
		send_error(c, p->iq, "internal-server-error", NULL);
		break;
	}
out:
	xml_free(p->iq);
	free(p->bare);
	free(p);
}

static void preauth_set(struct c2s *c, const struct xml_node *iq,
			const struct xml_node *q)
{
	struct server *srv = c->srv;
	struct reg_server *rs = reg_server(srv);
	const char *username = xml_child_text(q, "username", NS_REGISTER);
	const char *password = xml_child_text(q, "password", NS_REGISTER);
	struct preauth_create *p;
	char *local = NULL;

	/* Nobody is logged in whose registration could be cancelled. */
	if (xml_child(q, "remove", NS_REGISTER) != NULL) {
		send_error(c, iq, "registration-required", NULL);
		return;
	}
	/* XEP-0077 §3.1: every field of the form, and never an empty
	 * password. */
	if (username == NULL || *username == '\0' || password == NULL ||
	    *password == '\0') {
		send_error(c, iq, "not-acceptable",
			   "a username and a password are required");
		return;
	}
	if (strlen(password) > ACCOUNT_PASSWORD_MAX) {
		send_error(c, iq, "not-acceptable", "the password is too long");
		return;
	}
	/* The username is a localpart: what a client types is prepared as
	 * SASL will prepare it at login (nodeprep). */
	if (jid_prep_local(username, &local) != 0) {
		send_error(c, iq, "jid-malformed",
			   "this username is not a valid JID localpart");
		return;
	}
	if (rs->inflight >= REG_MAX_INFLIGHT) {
		send_error(c, iq, "resource-constraint",
			   "too many registrations under way; try again later");
		goto out;
	}
	if (!limit_take(srv, c->conn->peer_ip)) {
		log_msg(LOG_INFO, c->log_ctx, "registration refused: over "
			"the limit for this address");
		send_error(c, iq, "resource-constraint", "too many accounts "
			   "created from this address; try again later");
		goto out;
	}
	p = xcalloc(1, sizeof(*p));
	p->c = c;
	p->iq = stanza_new("iq", xml_attr(iq, "from"), xml_attr(iq, "to"),
			   xml_attr(iq, "type"), xml_attr(iq, "id"));
	p->bare = xasprintf("%s@%s", local, c->domain);
	memcpy(p->addr, c->conn->peer_ip, sizeof(p->addr));
	rs->inflight++;
	c2s_hold(c);
	reg_account_create(srv, local, c->domain, password, preauth_created,
			   p);
out:
	free(local);
}

/* The IQ's 'to' may only name this stream's host. */
static bool to_this_host(const struct c2s *c, const struct xml_node *iq)
{
	const char *to = xml_attr(iq, "to");
	char *domain = NULL;
	bool ok;

	if (to == NULL)
		return true;
	ok = jid_prep_domain(to, &domain) == 0 &&
	     strcmp(domain, c->domain) == 0;
	free(domain);
	return ok;
}

static bool preauth_iq(struct c2s *c, struct xml_node *iq)
{
	struct xml_node *q = xml_first_element(iq);
	const char *type = xml_attr(iq, "type");

	if (q == NULL || !xml_is(q, "query", NS_REGISTER) ||
	    !to_this_host(c, iq))
		return false;
	if (type == NULL ||
	    (strcmp(type, "get") != 0 && strcmp(type, "set") != 0)) {
		/* Answers to nothing we asked: nothing to say. */
		if (type == NULL || (strcmp(type, "result") != 0 &&
				     strcmp(type, "error") != 0))
			send_error(c, iq, "bad-request", NULL);
		return true;
	}
	/* XEP-0077 §3.1: a host without in-band registration answers
	 * service-unavailable. */
	if (!c->srv->cfg->register_enabled) {
		send_error(c, iq, "service-unavailable", NULL);
		return true;
	}
	if (xml_count_elements(iq) != 1) {
		send_error(c, iq, "bad-request", NULL);
		return true;
	}
	if (strcmp(type, "get") == 0)
		send_form(c, iq);
	else
		preauth_set(c, iq, q);
	return true;
}

/* ---- after authentication ---- */

/* The sender's own session, asking its own server, or its own account:
 * an IQ without 'to' goes to the sender's bare JID (RFC 6120 §10.3.3),
 * which is how XEP-0077 §3.2 sends <remove/>. Nobody else may see or
 * change an account's registration. */
static struct session *own_session(const struct iq_request *req)
{
	struct session *s = req->session;

	if (s == NULL || (req->to->local != NULL ?
			  !jid_bare_equal(req->to, req->from) :
			  strcmp(req->to->domain, s->account->domain) != 0)) {
		iq_error(req, "forbidden", NULL);
		return NULL;
	}
	return s;
}

/* XEP-0077 §3.1: a registered entity sees <registered/> and its data. */
static void reg_get(const struct iq_request *req)
{
	struct session *s = own_session(req);
	struct xml_node *q;

	if (s == NULL)
		return;
	q = xml_new("query", NS_REGISTER);
	xml_add_child(q, "registered", NULL);
	xml_add_text_child(q, "username", s->account->local);
	/* XEP-0077 allows it empty; a client shows it as "unchanged". */
	xml_add_child(q, "password", NULL);
	iq_reply(req, q);
}

/* The username of a password change names this account: its localpart,
 * or its bare JID (the data-form style some clients send). */
static bool names_account(const char *username, const struct account *a)
{
	char *prepped = NULL;
	bool ok;

	if (strchr(username, '@') != NULL) {
		prepped = jid_normalize_bare(username);
		ok = prepped != NULL && strcmp(prepped, a->bare) == 0;
	} else {
		ok = jid_prep_local(username, &prepped) == 0 &&
		     strcmp(prepped, a->local) == 0;
	}
	free(prepped);
	return ok;
}

static void reg_set(const struct iq_request *req)
{
	struct session *s = own_session(req);
	const struct xml_node *q = req->payload;
	const char *username, *password;

	if (s == NULL)
		return;
	if (xml_child(q, "remove", NS_REGISTER) != NULL) {
		/* XEP-0077 §3.2: <remove/> alone. */
		if (xml_count_elements(q) != 1)
			iq_error(req, "bad-request", NULL);
		else
			reg_account_remove(req, s);
		return;
	}
	username = xml_child_text(q, "username", NS_REGISTER);
	password = xml_child_text(q, "password", NS_REGISTER);
	/* XEP-0077 §3.3: errors about a password change carry none of
	 * the request (iq_error drops IQ payloads). */
	if (username == NULL || password == NULL ||
	    !names_account(username, s->account)) {
		iq_error(req, "bad-request", NULL);
		return;
	}
	/* §3.3: never a null password; the old one stays. */
	if (*password == '\0') {
		iq_error(req, "not-acceptable", "the password must not be "
			 "empty");
		return;
	}
	if (strlen(password) > ACCOUNT_PASSWORD_MAX) {
		iq_error(req, "not-acceptable", "the password is too long");
		return;
	}
	reg_password_change(req, s, password);
}

static const struct iq_handler register_iq[] = {
	{ NS_REGISTER, "query", IQ_SCOPE_SERVER | IQ_SCOPE_ACCOUNT, reg_get,
	  reg_set },
	{ NULL },
};

static const char *const register_features[] = { NS_REGISTER, NULL };

static void on_recheck_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	reg_accounts_recheck(arg);
}

static int register_init(struct server *srv)
{
	struct reg_server *rs = xcalloc(1, sizeof(*rs));

	rs->buckets = hashmap_new();
	rs->sig_recheck = evsignal_new(srv->base, SIGUSR1, on_recheck_signal,
				       srv);
	if (rs->sig_recheck != NULL)
		event_add(rs->sig_recheck, NULL);
	srv->mod_ctx[register_index()] = rs;
	return 0;
}

static void register_deinit(struct server *srv)
{
	struct reg_server *rs = reg_server(srv);
	size_t pos = 0;
	void *v;

	while (hashmap_next(rs->buckets, &pos, NULL, &v))
		free(v);
	hashmap_free(rs->buckets);
	if (rs->sig_recheck != NULL)
		event_free(rs->sig_recheck);
	free(rs);
	srv->mod_ctx[register_index()] = NULL;
}

const struct module register_module = {
	.name = "register",
	.iq_handlers = register_iq,
	.server_features = register_features,
	.init = register_init,
	.deinit = register_deinit,
	.preauth_features = preauth_features,
	.preauth_iq = preauth_iq,
};

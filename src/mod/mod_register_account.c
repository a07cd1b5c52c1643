/* The account changes behind XEP-0077: creation (before authentication),
 * password change and removal (by the logged-in user). PBKDF2 and X25519
 * run on the worker pool, the store's part on the store's worker; the
 * loop wires them together and at the end acts on the sessions.
 *
 * Other sessions after a password change: ended with a <reset/> stream
 * error, as Prosody does (the password may have changed because it
 * leaked); the session that changed it stays. After a removal every
 * session and every stream authenticated as the account ends with
 * <not-authorized/> (XEP-0077 §3.2). */
#include "mod/mod_register.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "config.h"
#include "core/account.h"
#include "core/account_create.h"
#include "core/module.h"
#include "core/router.h"
#include "core/session.h"
#include "core/stanza.h"
#include "mod/mod_blocking.h"
#include "seal/seal.h"
#include "server.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/workq.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xmpp/c2s.h"

extern const struct module register_module;

/* ---- creation ---- */

struct create_job {
	struct server *srv;
	char *local, *domain, *bare;
	char *password;          /* until the worker has used it */
	reg_created_cb *cb;
	void *ctx;
	/* made on a worker */
	int derived;             /* account_secret_derive's result */
	struct account_secret sec;
	struct buf keyring;
};

static void create_finish(struct create_job *j, enum reg_created result)
{
	j->cb(j->ctx, result);
	if (j->password != NULL)
		xfree_secret(j->password, strlen(j->password));
	account_secret_clear(&j->sec);
	buf_free(&j->keyring);
	free(j->local);
	free(j->domain);
	free(j->bare);
	free(j);
}

static void create_stored(void *ctx, int result, const char *error)
{
	struct create_job *j = ctx;

	if (result < 0)
		log_error("register: %s: cannot store the new account: %s",
			  j->bare, error);
	create_finish(j, result == 0 ? REG_CREATED :
			 result == 1 ? REG_EXISTS : REG_FAILED);
}

/* Worker thread: the configuration and the seal keys are read-only. */
static void create_work(void *arg)
{
	struct create_job *j = arg;
	const char *why;

	j->derived = account_secret_derive(j->password,
					   j->srv->cfg->scram_iterations,
					   &j->sec, &why);
	xfree_secret(j->password, strlen(j->password));
	j->password = NULL;
	if (j->derived == 0 &&
	    account_keyring_new(j->srv->seal_keys, j->bare, &j->sec,
				&j->keyring) < 0)
		j->derived = -2;
}

static void create_derived(void *arg)
{
	struct create_job *j = arg;
	struct store_user user;

	if (j->derived == -1) {
		create_finish(j, REG_BAD_PASSWORD);
		return;
	}
	/* The store may be closing: ask nothing more of it. */
	if (j->derived < 0 || j->srv->shutting_down) {
		create_finish(j, REG_FAILED);
		return;
	}
	memset(&user, 0, sizeof(user));
	user.local = j->local;
	user.domain = j->domain;
	memcpy(user.creds, j->sec.creds, sizeof(user.creds));
	user.keyring = j->keyring.data;
	user.keyring_len = j->keyring.len;
	store_user_create(j->srv->store, &user, create_stored, j);
	account_secret_clear(&j->sec);
	OPENSSL_cleanse(&user, sizeof(user));
}

/* A taken name costs no PBKDF2. store_user_create has the last word. */
static void create_looked_up(void *ctx, int result, const struct store_user *u)
{
	struct create_job *j = ctx;

	if (result != 0) {
		create_finish(j, result == 1 ? REG_EXISTS : REG_FAILED);
		return;
	}
	workq_submit(j->srv->workers, create_work, create_derived, j);
}

void reg_account_create(struct server *srv, const char *local,
			const char *domain, const char *password,
			reg_created_cb *cb, void *ctx)
{
	struct create_job *j = xcalloc(1, sizeof(*j));

	j->srv = srv;
	j->local = xstrdup(local);
	j->domain = xstrdup(domain);
	j->bare = xasprintf("%s@%s", local, domain);
	j->password = xstrdup(password);
	j->cb = cb;
	j->ctx = ctx;
	j->keyring = (struct buf)BUF_INIT;
	store_user_get(srv->store, local, domain, create_looked_up, j);
}

/* ---- sessions ---- */

/* Ends a session with a stream error the way session_bind ends a
 * replaced one: out of the tables first, so that nothing more is routed
 * to a stream that is closing (stanzas it has not acknowledged go
 * elsewhere, XEP-0198), then the error. */
static void kick(struct session *s, const char *condition, const char *text)
{
	struct c2s *stream = s->stream;

	log_msg(LOG_INFO, s->full, "session ended: %s", text);
	if (stream != NULL) {
		stream->session = NULL;
		c2s_drop_drained(stream);
		s->stream = NULL;
	}
	session_end(s);
	if (stream != NULL)
		c2s_stream_error(stream, condition, text);
}

/* Ends every session of `a` but `keep` (NULL: all), resumable ones too,
 * and the streams that authenticated as `a` and have not bound yet. */
static void end_sessions(struct account *a, const struct session *keep,
			 const char *condition, const char *text)
{
	struct session *victim;

	for (;;) {
		victim = NULL;
		account_foreach_session(a, s)
			if (s != keep) {
				victim = s;
				break;
			}
		if (victim == NULL)
			break;
		kick(victim, condition, text);
	}
	for (struct c2s *c = a->srv->streams; c != NULL; c = c->next)
		if (c->session == NULL && c->local != NULL &&
		    c->domain != NULL && strcmp(c->local, a->local) == 0 &&
		    strcmp(c->domain, a->domain) == 0)
			c2s_stream_error(c, condition, text);
}

/* The account is gone from the store, whoever removed it: unknown from
 * now on (whoever needs it next loads it afresh and finds nothing; the
 * struct lives on only for its references), its sessions end, its
 * contacts learn that the subscriptions are gone, and nothing held in
 * memory applies to a new account of the same name. */
static void cancel_subscriptions(struct account *a);

static void account_gone(struct account *a)
{
	struct server *srv = a->srv;

	a->exists = false;
	if (hashmap_get(srv->accounts, a->bare) == a)
		hashmap_remove(srv->accounts, a->bare);
	/* Its blocking list is kept in memory for the route filter. */
	blocking_forget(srv, a->bare);
	if (srv->shutting_down)
		return;
	end_sessions(a, NULL, "not-authorized", "account removed");
	cancel_subscriptions(a);
	/* What was queued for the account before its sessions ended (a
	 * roster change, a published item) may have been written after the
	 * removal: a purge sweeps it up, and makes the store forget the
	 * account's chain anchors and the sealer's last seqs. */
	store_user_purge(srv->store, a->local, a->domain, NULL, NULL);
}

/* ---- changes by the logged-in user ---- */

/* The account's slot holds this while a change runs: the keyring must
 * be rewrapped from the one state it is in, never by two at once. */
static char busy_marker;

static void **busy_slot(struct account *a)
{
	return &a->mod_ctx[modules_index(a->srv->modules, &register_module)];
}

struct change {
	struct server *srv;
	struct account *a;        /* referenced */
	/* The request without its payload, which holds the password:
	 * enough to answer it (errors carry no payload, XEP-0077 §3.3). */
	struct xml_node *iq;
	char *full;               /* the requesting session */
	char *password;           /* until the worker has used it */
	int derived;
	struct account_secret sec;
	struct account_rewrap rw;
};

static struct change *change_new(const struct iq_request *req,
				 struct session *s)
{
	struct change *c = xcalloc(1, sizeof(*c));
	const struct xml_node *iq = req->iq;

	c->srv = req->srv;
	c->a = s->account;
	account_ref(c->a);
	*busy_slot(c->a) = &busy_marker;
	c->iq = stanza_new("iq", xml_attr(iq, "from"), xml_attr(iq, "to"),
			   xml_attr(iq, "type"), xml_attr(iq, "id"));
	c->full = xstrdup(s->full);
	return c;
}

static void change_free(struct change *c)
{
	*busy_slot(c->a) = NULL;
	account_unref(c->a);
	xml_free(c->iq);
	free(c->full);
	if (c->password != NULL)
		xfree_secret(c->password, strlen(c->password));
	account_secret_clear(&c->sec);
	seal_unlocked_free(c->rw.unlocked);
	free(c);
}

/* condition NULL: the result. */
static void change_answer(struct change *c, const char *condition,
			  const char *text)
{
	struct iq_request req = { .srv = c->srv, .iq = c->iq };

	if (condition == NULL)
		iq_reply(&req, NULL);
	else
		iq_error(&req, condition, text);
}

static bool refuse_if_busy(const struct iq_request *req, struct session *s)
{
	if (*busy_slot(s->account) == NULL)
		return false;
	iq_error(req, "resource-constraint",
		 "another change to this account is under way");
	return true;
}

/* ---- password change ---- */

static void change_stored(void *ctx, int result, const char *error)
{
	struct change *c = ctx;
	struct account *a = c->a;
	struct session *keep;

	if (result == 2) {
		/* The row fails its checks, or this login did not unlock
		 * it: a new wrap would drop what it protects. */
		log_msg(LOG_ERROR, c->full, "password not changed: the "
			"keyring cannot be rewrapped by this login");
		change_answer(c, "not-allowed", "the message store of this "
			      "account cannot be re-keyed from this login; "
			      "the password is unchanged");
		goto out;
	}
	if (result != 0) {
		log_msg(LOG_ERROR, c->full, "password not changed: %s",
			result == 1 ? "no such user" : error);
		change_answer(c, "internal-server-error", NULL);
		goto out;
	}
	/* The new keyring, unlocked, holds the retired keys too: whatever
	 * was sealed before the change still opens. */
	if (c->rw.unlocked != NULL) {
		seal_unlocked_free(a->unlocked);
		a->unlocked = c->rw.unlocked;
		c->rw.unlocked = NULL;
	}
	log_msg(LOG_INFO, c->full, "password changed");
	change_answer(c, NULL, NULL);
	if (!c->srv->shutting_down) {
		keep = session_find(c->srv, c->full);
		if (keep != NULL && keep->account != a)
			keep = NULL;
		end_sessions(a, keep, "reset", "password changed");
	}
out:
	change_free(c);
}

/* Worker thread. */
static void change_work(void *arg)
{
	struct change *c = arg;
	const char *why;

	c->derived = account_secret_derive(c->password,
					   c->srv->cfg->scram_iterations,
					   &c->sec, &why);
	xfree_secret(c->password, strlen(c->password));
	c->password = NULL;
}

static void change_derived(void *arg)
{
	struct change *c = arg;
	struct account *a = c->a;
	struct store_user user;

	if (c->derived == -1) {
		change_answer(c, "not-acceptable", "this password cannot be "
			      "used (SASLprep, RFC 4013)");
		change_free(c);
		return;
	}
	if (c->derived < 0 || c->srv->shutting_down) {
		change_answer(c, "internal-server-error", NULL);
		change_free(c);
		return;
	}
	c->rw.keys = c->srv->seal_keys;
	c->rw.bare = a->bare;
	c->rw.sec = &c->sec;
	/* Only change_stored replaces it, and the account is referenced,
	 * so it outlives the rewrap on the store's worker. */
	c->rw.old = a->unlocked;
	memset(&user, 0, sizeof(user));
	user.local = a->local;
	user.domain = a->domain;
	memcpy(user.creds, c->sec.creds, sizeof(user.creds));
	store_user_set_password(c->srv->store, &user, account_rewrap, &c->rw,
				change_stored, c);
	OPENSSL_cleanse(&user, sizeof(user));
}

void reg_password_change(const struct iq_request *req, struct session *s,
			 const char *password)
{
	struct change *c;

	if (refuse_if_busy(req, s))
		return;
	c = change_new(req, s);
	c->password = xstrdup(password);
	workq_submit(c->srv->workers, change_work, change_derived, c);
}

/* ---- removal ---- */

/* XEP-0077 §3.2 (RFC 6121 §3.2, §3.3): the contacts learn that the
 * subscriptions are gone, each in the direction it existed; their
 * rosters keep the item, as after any unsubscription. Collected first:
 * routing may run code that looks at rosters. */
static void cancel_subscriptions(struct account *a)
{
	size_t pos = 0, n = 0, cap = hashmap_count(a->roster);
	struct xml_node **out = xcalloc(2 * cap + 1, sizeof(*out));
	void *v;

	while (hashmap_next(a->roster, &pos, NULL, &v)) {
		const struct roster_entry *e = v;

		if (e->sub == ROSTER_SUB_FROM || e->sub == ROSTER_SUB_BOTH ||
		    e->pending_in)
			out[n++] = stanza_new("presence", a->bare, e->jid,
					      "unsubscribed", NULL);
		if (e->sub == ROSTER_SUB_TO || e->sub == ROSTER_SUB_BOTH ||
		    e->ask)
			out[n++] = stanza_new("presence", a->bare, e->jid,
					      "unsubscribe", NULL);
	}
	for (size_t i = 0; i < n; i++)
		router_route(a->srv, out[i]);
	free(out);
}

static void remove_done(void *ctx, int result, const char *error)
{
	struct change *c = ctx;
	struct account *a = c->a;

	if (result < 0) {
		log_msg(LOG_ERROR, c->full, "account not removed: %s", error);
		change_answer(c, "internal-server-error", NULL);
		change_free(c);
		return;
	}
	log_msg(LOG_INFO, c->full, "account removed by its user");
	change_answer(c, NULL, NULL);
	account_gone(a);
	change_free(c);
}

/* ---- removal by roostctl (another process) ---- */

/* `roostctl deluser` removes the rows and sends roostd SIGUSR1 (the pid
 * in data_dir/roostd.pid); roostd then lists the accounts the store
 * still has, and every account it holds in memory (loaded, or with a
 * blocking list) that is not among them is gone. */
static void recheck_listed(void *ctx, int result, const char *const *jids,
			   size_t n)
{
	struct server *srv = ctx;
	struct hashmap *exist;
	struct account **gone;
	size_t ngone = 0, pos = 0;
	void *v;

	if (result < 0) {
		log_warn("register: the account list could not be read: "
			 "removed accounts keep their sessions");
		return;
	}
	exist = hashmap_new();
	for (size_t i = 0; i < n; i++)
		hashmap_put(exist, jids[i], srv);
	gone = xcalloc(hashmap_count(srv->accounts) + 1, sizeof(*gone));
	while (hashmap_next(srv->accounts, &pos, NULL, &v)) {
		struct account *a = v;

		if (a->exists && hashmap_get(exist, a->bare) == NULL) {
			account_ref(a);
			gone[ngone++] = a;
		}
	}
	for (size_t i = 0; i < ngone; i++) {
		log_info("register: %s was removed from the store: its "
			 "sessions end", gone[i]->bare);
		account_gone(gone[i]);
		account_unref(gone[i]);
	}
	blocking_forget_unless(srv, exist);
	free(gone);
	hashmap_free(exist);
}

void reg_accounts_recheck(struct server *srv)
{
	if (!srv->shutting_down)
		store_user_list(srv->store, NULL, recheck_listed, srv);
}

void reg_account_remove(const struct iq_request *req, struct session *s)
{
	struct change *c;

	if (refuse_if_busy(req, s))
		return;
	c = change_new(req, s);
	store_user_purge(c->srv->store, c->a->local, c->a->domain,
			 remove_done, c);
}

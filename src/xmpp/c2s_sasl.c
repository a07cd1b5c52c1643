#include "xmpp/c2s_sasl.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "config.h"
#include "core/auth_throttle.h"
#include "core/jid.h"
#include "net/conn.h"
#include "net/tls.h"
#include "sasl/plain.h"
#include "sasl/scram.h"
#include "seal/seal.h"
#include "server.h"
#include "store/store.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/workq.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xmpp/c2s.h"
#include "xmpp/stream_error.h"

#define NS_SASL_CB "urn:xmpp:sasl-cb:0"
/* RFC 6120 §6.4.5: allow a few retries, then give up on the stream. */
#define MAX_SASL_FAILURES 5

enum mech_kind { MECH_SCRAM, MECH_PLAIN };

struct mechanism {
	const char *name;
	enum mech_kind kind;
	enum scram_hash hash;
	bool plus;
};

/* Strongest first: clients pick the first they support. */
static const struct mechanism mechanisms[] = {
	{ "SCRAM-SHA-256-PLUS", MECH_SCRAM, SCRAM_SHA256, true },
	{ "SCRAM-SHA-1-PLUS", MECH_SCRAM, SCRAM_SHA1, true },
	{ "SCRAM-SHA-256", MECH_SCRAM, SCRAM_SHA256, false },
	{ "SCRAM-SHA-1", MECH_SCRAM, SCRAM_SHA1, false },
	{ "PLAIN", MECH_PLAIN, SCRAM_SHA256, false },
};

enum sasl_step {
	STEP_CLIENT_FIRST,   /* SCRAM: waiting for client-first (empty initial response) */
	STEP_LOOKUP,         /* waiting for the store */
	STEP_CLIENT_FINAL,   /* SCRAM: challenge sent */
	STEP_VERIFY,         /* PLAIN: PBKDF2 on a worker */
	STEP_UNLOCK,         /* SCRAM verified: keyring unlock on a worker */
	STEP_FAILING,        /* failure answer delayed by the throttle */
};

struct c2s_sasl {
	const struct mechanism *mech;
	enum sasl_step step;
	struct scram_server *scram;
	char *local;               /* prepared authcid */
	const char *cb_type;       /* channel binding the client chose, owned by scram */
	char *password;            /* PLAIN only, wiped */
	struct scram_creds creds;
	bool user_found;
	bool verified;             /* PLAIN result from the worker */
	unsigned char client_key[SCRAM_MAX_HASH];
	struct seal_keyring *keyring; /* the user's, for the unlock at success */
	const char *success_data;  /* SCRAM server-final, owned by scram */
	size_t success_len;
	const char *fail_condition;
	struct event *delay;
};

static bool mech_offered(const struct c2s *c, const struct mechanism *m)
{
	if (m->plus && !c->tls)
		return false;
	if (m->kind == MECH_PLAIN && (!c->tls || !c->srv->cfg->allow_plain))
		return false;
	return true;
}

void c2s_sasl_features(struct c2s *c, struct buf *out)
{
	buf_append_str(out, "<mechanisms xmlns='" NS_SASL "'>");
	for (size_t i = 0; i < sizeof(mechanisms) / sizeof(mechanisms[0]); i++)
		if (mech_offered(c, &mechanisms[i]))
			buf_appendf(out, "<mechanism>%s</mechanism>",
				    mechanisms[i].name);
	buf_append_str(out, "</mechanisms>");
	if (c->tls && c->conn->ssl != NULL) {
		const char *const *types = tls_channel_binding_types(c->conn->ssl);
		buf_append_str(out, "<sasl-channel-binding xmlns='" NS_SASL_CB "'>");
		for (; *types != NULL; types++)
			buf_appendf(out, "<channel-binding type='%s'/>", *types);
		buf_append_str(out, "</sasl-channel-binding>");
	}
}

void c2s_sasl_free(struct c2s *c)
{
	struct c2s_sasl *s = c->sasl;

	if (s == NULL)
		return;
	if (s->delay)
		event_free(s->delay);
	scram_server_free(s->scram);
	free(s->keyring);
	if (s->password)
		xfree_secret(s->password, strlen(s->password));
	free(s->local);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
	c->sasl = NULL;
}

static void send_sasl(struct c2s *c, const char *element, const void *data,
		      size_t len)
{
	struct buf b = BUF_INIT;

	buf_appendf(&b, "<%s xmlns='" NS_SASL "'", element);
	if (data == NULL) {
		buf_append_str(&b, "/>");
	} else {
		char *enc = base64_encode(data, len);
		/* RFC 6120 §6.4.6: empty additional data is sent as "=". */
		buf_appendf(&b, ">%s</%s>", len ? enc : "=", element);
		free(enc);
	}
	c2s_send_raw(c, b.data, b.len);
	buf_free(&b);
}

static void send_failure_now(struct c2s *c, const char *condition)
{
	struct buf b = BUF_INIT;

	buf_appendf(&b, "<failure xmlns='" NS_SASL "'><%s/></failure>", condition);
	c2s_send_raw(c, b.data, b.len);
	buf_free(&b);
	c2s_sasl_free(c);
	c2s_enter(c, C2S_PRE_AUTH);
	if (++c->sasl_failures >= MAX_SASL_FAILURES)
		c2s_stream_error(c, "policy-violation", "too many failed attempts");
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
	struct c2s *c = arg;

	if (c2s_release(c))
		send_failure_now(c, c->sasl->fail_condition);
}

/* Protocol errors are answered at once; wrong credentials only after the
 * throttle's delay, so guessing gets slower with every miss. */
static void fail(struct c2s *c, const char *condition, bool throttle)
{
	struct c2s_sasl *s = c->sasl;
	unsigned ms;
	char *account = NULL;

	if (!throttle || s == NULL) {
		send_failure_now(c, condition);
		return;
	}
	if (s->local != NULL)
		account = xasprintf("%s@%s", s->local, c->domain);
	ms = auth_throttle_failure(c->srv->throttle, c->conn->peer_ip, account);
	log_msg(LOG_INFO, c->log_ctx, "authentication failed for %s (%s), answer in %u ms",
		account ? account : "?", condition, ms);
	free(account);
	s->fail_condition = condition;
	s->step = STEP_FAILING;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	s->delay = evtimer_new(c->srv->base, on_delay, c);
	c2s_hold(c);
	evtimer_add(s->delay, &tv);
}

/* DESIGN §5: the login's ClientKey unwraps the user's keyring. A failure
 * after a successful SASL exchange is an integrity event (the row was
 * changed), never a reason to make a new keyring; the login goes on and
 * the sealed messages are withheld. It is key derivation (HKDF, an X25519
 * multiplication): it runs on the worker pool, not on the loop (DESIGN
 * §1). Any thread; *why_r is NULL or a static reason. */
static struct seal_unlocked *unlock_keyring(const struct seal_keys *keys,
					    const struct seal_keyring *kr,
					    enum scram_hash h,
					    const unsigned char *client_key,
					    const char **why_r)
{
	struct seal_unlocked *u = NULL;

	*why_r = NULL;
	if (seal_keyring_mac_check(keys, kr) != 0)
		*why_r = "the keyring row fails its MAC";
	else if (seal_keyring_unlock(keys, kr, h, client_key, &u, why_r) != 0)
		u = NULL;
	return u;
}

/* The answer to a verified login: `unlocked` (may be NULL) becomes the
 * stream's until bind. */
static void succeed(struct c2s *c, struct seal_unlocked *unlocked,
		    const char *why)
{
	struct c2s_sasl *s = c->sasl;
	char *local = xstrdup(s->local);
	char *account = xasprintf("%s@%s", local, c->domain);

	auth_throttle_success(c->srv->throttle, account);
	log_msg(LOG_INFO, c->log_ctx, "authenticated as %s with %s", account,
		s->mech->name);
	if (why != NULL)
		log_msg(LOG_ERROR, c->log_ctx, "integrity: cannot unlock the "
			"keyring: %s", why);
	c->unlocked = unlocked;
	send_sasl(c, "success", s->success_data, s->success_len);
	/* ClientKey is wiped with the rest of the exchange. */
	c2s_sasl_free(c);
	c2s_authenticated(c, local);
	free(account);
	free(local);
}

struct unlock_job {
	struct c2s *c;
	const struct seal_keys *keys;
	struct seal_keyring *keyring;
	enum scram_hash hash;
	unsigned char client_key[SCRAM_MAX_HASH];
	struct seal_unlocked *unlocked;
	const char *why;
};

static void unlock_work(void *arg)
{
	struct unlock_job *j = arg;

	j->unlocked = unlock_keyring(j->keys, j->keyring, j->hash,
				     j->client_key, &j->why);
	OPENSSL_cleanse(j->client_key, sizeof(j->client_key));
}

static void unlock_done(void *arg)
{
	struct unlock_job *j = arg;
	struct c2s *c = j->c;

	if (c2s_release(c))
		succeed(c, j->unlocked, j->why);
	else
		seal_unlocked_free(j->unlocked);
	free(j->keyring);
	OPENSSL_cleanse(j, sizeof(*j));
	free(j);
}

/* The exchange verified the user (SCRAM): unlock on a worker, then
 * answer. Without a keyring (or without sealing) there is nothing to
 * unlock and the answer goes at once. */
static void verified(struct c2s *c)
{
	struct c2s_sasl *s = c->sasl;
	struct unlock_job *j;

	if (s->keyring == NULL || c->srv->seal_keys == NULL) {
		succeed(c, NULL, NULL);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->c = c;
	j->keys = c->srv->seal_keys;
	j->keyring = s->keyring;
	s->keyring = NULL;
	j->hash = s->mech->hash;
	memcpy(j->client_key, s->client_key, sizeof(j->client_key));
	OPENSSL_cleanse(s->client_key, sizeof(s->client_key));
	s->step = STEP_UNLOCK;
	c2s_hold(c);
	workq_submit(c->srv->workers, unlock_work, unlock_done, j);
}

/* After too many failures (auth_max_failures) an address or account is
 * refused without a look at the password, so guessing stops paying and
 * costs us nothing (no store lookup, no PBKDF2). local may be NULL. */
static bool refused(struct c2s *c, const char *local)
{
	char *account = local ? xasprintf("%s@%s", local, c->domain) : NULL;
	bool r = auth_throttle_refused(c->srv->throttle, c->conn->peer_ip,
				       account);

	if (r)
		log_msg(LOG_INFO, c->log_ctx, "authentication refused for %s: "
			"too many failures", account ? account : "this address");
	free(account);
	return r;
}

/* --- SCRAM ---------------------------------------------------------- */

static void keep_keyring(struct c2s_sasl *s, const struct store_user *u)
{
	char *jid;
	int r;

	if (u->keyring == NULL)
		return;
	s->keyring = xmalloc(sizeof(*s->keyring));
	jid = xasprintf("%s@%s", u->local, u->domain);
	r = seal_keyring_decode(u->keyring, u->keyring_len, jid, s->keyring);
	free(jid);
	if (r != 0) {
		free(s->keyring);
		s->keyring = NULL;
	}
}

static void scram_user_loaded(void *ctx, int result, const struct store_user *u)
{
	struct c2s *c = ctx;
	struct c2s_sasl *s;
	const char *out;
	size_t len;

	if (!c2s_release(c))
		return;
	s = c->sasl;
	if (result < 0) {
		fail(c, "temporary-auth-failure", false);
		return;
	}
	if (result == 1) {
		s->creds = u->creds[s->mech->hash];
		/* Credentials that failed their integrity check come back
		 * empty: treat them like an unknown user. */
		s->user_found = s->creds.salt_len > 0;
		keep_keyring(s, u);
	}
	/* An unknown user gets a fake challenge and fails at the end, so
	 * probing for accounts learns nothing. */
	if (scram_server_first(s->scram, s->user_found ? &s->creds : NULL,
			       &out, &len) != 0) {
		fail(c, "temporary-auth-failure", false);
		return;
	}
	s->step = STEP_CLIENT_FINAL;
	send_sasl(c, "challenge", out, len);
}

static bool authzid_ok(struct c2s *c, const char *authzid, const char *local)
{
	char *want, *got;
	bool ok;

	if (authzid == NULL || *authzid == '\0')
		return true;
	got = jid_normalize(authzid);
	want = xasprintf("%s@%s", local, c->domain);
	ok = got != NULL && strcmp(got, want) == 0;
	free(got);
	free(want);
	return ok;
}

static void scram_client_first(struct c2s *c, const unsigned char *msg, size_t len)
{
	struct c2s_sasl *s = c->sasl;
	const char *authcid, *authzid, *cb_type, *error;

	if (scram_server_client_first(s->scram, (const char *)msg, len, &authcid,
				      &authzid, &cb_type, &error) != 0) {
		fail(c, error, strcmp(error, "not-authorized") == 0);
		return;
	}
	if (jid_prep_local(authcid, &s->local) != 0) {
		s->local = NULL;
		fail(c, "not-authorized", true);
		return;
	}
	if (refused(c, s->local)) {
		fail(c, "temporary-auth-failure", false);
		return;
	}
	if (!authzid_ok(c, authzid, s->local)) {
		fail(c, "invalid-authzid", false);
		return;
	}
	s->cb_type = cb_type;
	s->step = STEP_LOOKUP;
	c2s_hold(c);
	store_user_get(c->srv->store, s->local, c->domain, scram_user_loaded, c);
}

static void scram_client_final(struct c2s *c, const unsigned char *msg, size_t len)
{
	struct c2s_sasl *s = c->sasl;
	unsigned char cb[TLS_CB_MAX];
	size_t cb_len = 0;
	const char *out, *error;
	size_t out_len;

	/* The data of the type the client named in client-first; a type
	 * this connection cannot give (tls-exporter before TLS 1.3) leaves
	 * cb_len 0 and the SCRAM check fails with not-authorized. */
	if (s->cb_type != NULL && c->conn->ssl != NULL)
		cb_len = tls_channel_binding(c->conn->ssl, s->cb_type, cb);
	if (scram_server_client_final(s->scram, (const char *)msg, len,
				      cb_len ? cb : NULL, cb_len, &out, &out_len,
				      s->client_key, &error) != 0) {
		OPENSSL_cleanse(cb, sizeof(cb));
		fail(c, error, true);
		return;
	}
	OPENSSL_cleanse(cb, sizeof(cb));
	if (!s->user_found) {
		fail(c, "not-authorized", true);
		return;
	}
	s->success_data = out;
	s->success_len = out_len;
	verified(c);
}

/* --- PLAIN ---------------------------------------------------------- */

struct plain_job {
	struct c2s *c;
	struct scram_creds creds;
	char *password;
	unsigned char client_key[SCRAM_MAX_HASH];
	bool ok;
	/* the unlock, in the same job (already on a worker) */
	const struct seal_keys *keys;
	struct seal_keyring *keyring;
	struct seal_unlocked *unlocked;
	const char *why;
};

static void plain_verify_work(void *arg)
{
	struct plain_job *j = arg;
	struct scram_creds derived;

	j->ok = j->creds.salt_len > 0 &&
		scram_derive(SCRAM_SHA256, j->password, j->creds.salt,
			     j->creds.salt_len, j->creds.iterations, &derived,
			     j->client_key) == 0 &&
		CRYPTO_memcmp(derived.stored_key, j->creds.stored_key,
			      scram_hash_len(SCRAM_SHA256)) == 0;
	OPENSSL_cleanse(&derived, sizeof(derived));
	if (j->ok && j->keyring != NULL && j->keys != NULL)
		j->unlocked = unlock_keyring(j->keys, j->keyring, SCRAM_SHA256,
					     j->client_key, &j->why);
	OPENSSL_cleanse(j->client_key, sizeof(j->client_key));
}

static void plain_verify_done(void *arg)
{
	struct plain_job *j = arg;
	struct c2s *c = j->c;

	xfree_secret(j->password, strlen(j->password));
	if (c2s_release(c)) {
		if (j->ok) {
			succeed(c, j->unlocked, j->why);
			j->unlocked = NULL;
		} else {
			fail(c, "not-authorized", true);
		}
	}
	seal_unlocked_free(j->unlocked);
	free(j->keyring);
	OPENSSL_cleanse(j, sizeof(*j));
	free(j);
}

static void plain_user_loaded(void *ctx, int result, const struct store_user *u)
{
	struct c2s *c = ctx;
	struct c2s_sasl *s;
	struct plain_job *j;

	if (!c2s_release(c))
		return;
	s = c->sasl;
	if (result < 0) {
		fail(c, "temporary-auth-failure", false);
		return;
	}
	if (result == 0) {
		fail(c, "not-authorized", true);
		return;
	}
	keep_keyring(s, u);
	/* PBKDF2 costs milliseconds: never on the loop (DESIGN §1). */
	j = xcalloc(1, sizeof(*j));
	j->c = c;
	j->creds = u->creds[SCRAM_SHA256];
	j->password = s->password;
	s->password = NULL;
	j->keys = c->srv->seal_keys;
	j->keyring = s->keyring;
	s->keyring = NULL;
	s->step = STEP_VERIFY;
	c2s_hold(c);
	workq_submit(c->srv->workers, plain_verify_work, plain_verify_done, j);
}

static void plain_start(struct c2s *c, const unsigned char *msg, size_t len)
{
	struct c2s_sasl *s = c->sasl;
	char *authzid = NULL, *authcid = NULL, *passwd = NULL, *prepped = NULL;

	if (sasl_plain_parse(msg, len, &authzid, &authcid, &passwd) != 0) {
		fail(c, "malformed-request", false);
		return;
	}
	if (jid_prep_local(authcid, &s->local) != 0) {
		s->local = NULL;
		fail(c, "not-authorized", true);
		goto out;
	}
	if (refused(c, s->local)) {
		fail(c, "temporary-auth-failure", false);
		goto out;
	}
	if (!authzid_ok(c, authzid, s->local)) {
		fail(c, "invalid-authzid", false);
		goto out;
	}
	if (saslprep(passwd, &prepped) != 0) {
		fail(c, "not-authorized", true);
		goto out;
	}
	s->password = prepped;
	s->step = STEP_LOOKUP;
	c2s_hold(c);
	store_user_get(c->srv->store, s->local, c->domain, plain_user_loaded, c);
out:
	free(authzid);
	free(authcid);
	if (passwd)
		xfree_secret(passwd, strlen(passwd));
}

/* --- dispatch ------------------------------------------------------- */

static int decode_payload(struct c2s *c, const struct xml_node *el,
			  unsigned char **data_r, size_t *len_r)
{
	const char *text = xml_text(el);

	if (strlen(text) > 2 * SCRAM_MAX_MESSAGE ||
	    base64_decode(text, strlen(text), data_r, len_r) != 0) {
		fail(c, "incorrect-encoding", false);
		return -1;
	}
	return 0;
}

static void handle_auth(struct c2s *c, const struct xml_node *el)
{
	const char *name = xml_attr(el, "mechanism");
	const struct mechanism *m = NULL;
	unsigned char *data;
	size_t len;

	if (c->sasl != NULL) {
		/* A new <auth/> in the middle of an exchange. */
		fail(c, "malformed-request", false);
		return;
	}
	for (size_t i = 0; name && i < sizeof(mechanisms) / sizeof(mechanisms[0]); i++)
		if (strcmp(mechanisms[i].name, name) == 0 && mech_offered(c, &mechanisms[i]))
			m = &mechanisms[i];
	if (m == NULL) {
		send_failure_now(c, "invalid-mechanism");
		return;
	}
	if (refused(c, NULL)) {
		send_failure_now(c, "temporary-auth-failure");
		return;
	}
	c->sasl = xcalloc(1, sizeof(*c->sasl));
	c->sasl->mech = m;
	c2s_enter(c, C2S_SASL);
	if (decode_payload(c, el, &data, &len) != 0)
		return;
	if (m->kind == MECH_PLAIN) {
		plain_start(c, data, len);
	} else {
		c->sasl->scram = scram_server_new(m->hash, m->plus, c->tls);
		c->sasl->step = STEP_CLIENT_FIRST;
		if (len == 0)
			send_sasl(c, "challenge", "", 0);
		else
			scram_client_first(c, data, len);
	}
	xfree_secret(data, len);
}

static void handle_response(struct c2s *c, const struct xml_node *el)
{
	struct c2s_sasl *s = c->sasl;
	unsigned char *data;
	size_t len;

	if (s == NULL) {
		fail(c, "malformed-request", false);
		return;
	}
	if (decode_payload(c, el, &data, &len) != 0)
		return;
	if (s->step == STEP_CLIENT_FIRST)
		scram_client_first(c, data, len);
	else
		scram_client_final(c, data, len);
	xfree_secret(data, len);
}

/* Waiting for the store, a worker or the throttle: the client must wait
 * for our answer, and the pending callback still needs the state. */
static bool sasl_busy(const struct c2s *c)
{
	return c->sasl != NULL && (c->sasl->step == STEP_LOOKUP ||
				   c->sasl->step == STEP_VERIFY ||
				   c->sasl->step == STEP_UNLOCK ||
				   c->sasl->step == STEP_FAILING);
}

void c2s_sasl_element(struct c2s *c, struct xml_node *el)
{
	if (sasl_busy(c)) {
		c2s_stream_error(c, "policy-violation",
				 "wait for the SASL answer");
		return;
	}
	if (strcmp(el->name, "auth") == 0) {
		handle_auth(c, el);
	} else if (strcmp(el->name, "response") == 0) {
		handle_response(c, el);
	} else if (strcmp(el->name, "abort") == 0) {
		send_failure_now(c, "aborted");
	} else {
		c2s_stream_error(c, "unsupported-stanza-type", NULL);
	}
}

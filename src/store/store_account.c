/* The account's life cycle where it touches the sealed stores: password
 * change (credentials and keyring row rewritten in one transaction that
 * reads the row) and removal (every row gone, and this process's memory
 * of the user's chains with it). Both run on the store's worker, in
 * order with every other request, so a deposit is either wholly before
 * or wholly after them. */
#include "store/store-private.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "util/arena.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"

struct acct_req {
	struct store *st;
	store_done_cb *cb;
	void *ctx;
	char *local, *domain, *jid;
	/* set_password */
	struct store_user user;
	store_rewrap_fn *rewrap;
	void *arg;
	/* result */
	int result;
	const char *error;
};

static struct acct_req *req_new(struct store *st, const char *local,
				const char *domain, store_done_cb *cb,
				void *ctx)
{
	struct acct_req *r = xcalloc(1, sizeof(*r));

	r->st = st;
	r->cb = cb;
	r->ctx = ctx;
	r->local = xstrdup(local);
	r->domain = xstrdup(domain);
	r->jid = xasprintf("%s@%s", local, domain);
	return r;
}

static void req_done(void *arg)
{
	struct acct_req *r = arg;

	if (r->cb != NULL)
		r->cb(r->ctx, r->result, r->result < 0 ? r->error : NULL);
	OPENSSL_cleanse(r->user.creds, sizeof(r->user.creds));
	free(r->local);
	free(r->domain);
	free(r->jid);
	free(r);
}

/* ---- password change ---- */

/* The row as the rewrap function must see it: a row that fails any check
 * is never rewrapped in place (re-MACing it would launder tampering). */
static int read_row(struct acct_req *r, struct seal_keyring *kr,
		    enum store_keyring_state *state_r)
{
	struct store *st = r->st;
	struct arena *pool = arena_new(0);
	const void *blob;
	size_t len;
	int got;

	got = st->backend->keyring_get(st, r->local, r->domain, pool, &blob,
				       &len, &r->error);
	memset(kr, 0, sizeof(*kr));
	*state_r = STORE_KEYRING_NONE;
	if (got == 1) {
		*state_r = STORE_KEYRING_BAD;
		if (seal_keyring_decode(blob, len, r->jid, kr) < 0)
			log_error("store: %s: the keyring row is corrupt",
				  r->jid);
		else if (seal_keyring_mac_check(st->seal_keys, kr) < 0)
			log_error("store: %s: the keyring row fails its MAC",
				  r->jid);
		else if (!store_anchor_matches(st, r->jid, SEAL_STORE_OFFLINE,
					       kr) ||
			 !store_anchor_matches(st, r->jid, SEAL_STORE_ARCHIVE,
					       kr))
			log_error("store: %s: the keyring row was rolled back "
				  "to an earlier state", r->jid);
		else
			*state_r = STORE_KEYRING_OK;
		if (*state_r != STORE_KEYRING_OK)
			memset(kr, 0, sizeof(*kr));
	}
	arena_free(pool);
	return got < 0 ? -1 : 0;
}

static void set_password_work(void *arg)
{
	struct acct_req *r = arg;
	struct store *st = r->st;
	const struct store_backend *be = st->backend;
	enum store_keyring_state state;
	struct seal_keyring kr;
	int ret;

	r->result = -1;
	if (st->seal_keys == NULL) {
		r->error = "no seal keys";
		return;
	}
	if (be->tx_begin(st, true, &r->error) < 0)
		return;
	ret = be->user_put_creds(st, &r->user, &r->error);
	if (ret != 0) {
		r->result = ret;
		goto rollback;
	}
	if (read_row(r, &kr, &state) < 0)
		goto rollback;
	if (r->rewrap(r->arg, state, &kr) < 0) {
		r->result = 2;
		goto rollback;
	}
	if (store_keyring_write(st, r->local, r->domain, &kr, &r->error) < 0 ||
	    be->tx_commit(st, &r->error) < 0)
		goto rollback;
	/* The chains are what was committed: a new keyring starts them
	 * afresh, a rewrapped one keeps them. */
	store_anchor_set(st, r->jid, SEAL_STORE_OFFLINE, &kr);
	store_anchor_set(st, r->jid, SEAL_STORE_ARCHIVE, &kr);
	r->result = 0;
	return;
rollback:
	be->tx_rollback(st);
}

void store_user_set_password(struct store *st, const struct store_user *user,
			     store_rewrap_fn *rewrap, void *arg,
			     store_done_cb *cb, void *ctx)
{
	struct acct_req *r = req_new(st, user->local, user->domain, cb, ctx);

	memcpy(r->user.creds, user->creds, sizeof(r->user.creds));
	r->user.local = r->local;
	r->user.domain = r->domain;
	r->rewrap = rewrap;
	r->arg = arg;
	store_submit(st, set_password_work, req_done, r);
}

/* ---- removal ---- */

/* A user made again under this name gets a new keyring whose chains
 * start at 0: the old anchors would call that a rollback, and the
 * sealer, which refuses any seq at or below the last it sealed for the
 * JID, would refuse every deposit. The sealer cannot forget one user, so
 * it is replaced; a fresh ephemeral pair makes forgetting every last seq
 * safe (no (K, nonce) can repeat), which is also what the sealer does
 * when its table is full. The other users' only cost is one X25519 each
 * at their next deposit. */
static void forget_user(struct store *st, const char *jid)
{
	struct seal_sealer *fresh;

	if (st->anchors != NULL)
		free(hashmap_remove(st->anchors, jid));
	if (st->sealer == NULL)
		return;
	fresh = seal_sealer_new(0);
	if (fresh == NULL) {
		log_error("store: %s: cannot make a new sealer; an account "
			  "made again under this name stores nothing until "
			  "restart", jid);
		return;
	}
	seal_sealer_free(st->sealer);
	st->sealer = fresh;
	st->sealer_rotated_us = seal_now_us();
}

static void purge_work(void *arg)
{
	struct acct_req *r = arg;
	struct store *st = r->st;
	const struct store_backend *be = st->backend;
	bool existed = false;

	r->result = -1;
	if (be->tx_begin(st, true, &r->error) < 0)
		return;
	if (be->user_purge(st, r->local, r->domain, &existed, &r->error) < 0 ||
	    be->tx_commit(st, &r->error) < 0) {
		be->tx_rollback(st);
		return;
	}
	/* Also when the row was gone already: another process (roostctl
	 * deluser) may have removed it while this one still remembers. */
	forget_user(st, r->jid);
	r->result = existed ? 0 : 1;
}

void store_user_purge(struct store *st, const char *local,
		      const char *domain, store_done_cb *cb, void *ctx)
{
	store_submit(st, purge_work, req_done, req_new(st, local, domain, cb,
						      ctx));
}

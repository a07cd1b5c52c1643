/* The sealed offline store's requests (store.h, DESIGN §5), built from the
 * backend's primitives so that every backend gets the same construction.
 *
 * Everything here except the request wrappers and the completions runs on
 * the store's single worker thread: sealing, the chain, the verification
 * walk and the per-user anchors need no locks. Each change to records and
 * to the keyring row is one transaction; the anchor moves only after the
 * commit, so a failed transaction leaves memory and disk in step. Deposits
 * come in batches, one transaction for the whole batch: with SQLite's WAL
 * a commit writes every page the transaction touched, which for a single
 * message costs more than sealing it. */
#include "store/store-private.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "seal/seal.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"

/* DESIGN §5: one ephemeral X25519 pair per process, rotated every few
 * hours. */
#define SEALER_ROTATE_US (4LL * 3600 * 1000000)

enum off_op {
	OFF_DEPOSIT, OFF_DEPOSIT_BATCH, OFF_LOAD, OFF_REMOVE, OFF_PURGE,
	OFF_VERIFY,
};

struct off_req {
	struct store *st;
	enum off_op op;
	char *local, *domain, *jid;
	void *ctx;
	union {
		store_deposit_cb *deposit;
		store_offline_batch_cb *batch;
		store_offline_cb *load;
		store_done_cb *done;
		store_verify_cb *verify;
	} cb;

	/* deposit: the items (strings in pool, stanzas in pts), and per
	 * item the result and the seq stored */
	struct arena *pool;
	struct store_offline_item *items;
	unsigned char **pts;
	size_t nitems;
	int *results;
	uint64_t *stored;
	/* remove */
	uint64_t *seqs;
	size_t nseqs;

	/* results */
	int result;
	const char *error;
	struct seal_record *recs;     /* every record read, owned */
	size_t nrecs;
	struct seal_record *genuine;  /* shallow copies into recs */
	struct store_offline info;
	struct seal_findings findings;
};

/* ---- credentials ---- */

int store_cred_macs(const struct store *st, const struct store_user *user,
		    unsigned char macs[2][32])
{
	char *jid;
	int ret = 0;

	if (st->seal_keys == NULL)
		return -1;
	jid = xasprintf("%s@%s", user->local, user->domain);
	for (int h = SCRAM_SHA1; h <= SCRAM_SHA256; h++)
		if (user->creds[h].salt_len > 0 &&
		    seal_cred_mac(st->seal_keys, jid, (enum scram_hash)h,
				  &user->creds[h], macs[h]) < 0)
			ret = -1;
	free(jid);
	return ret;
}

void store_cred_verify(const struct store *st, struct store_user *user,
		       const unsigned char *const macs[2])
{
	char *jid;

	if (st->seal_keys == NULL)
		return;
	jid = xasprintf("%s@%s", user->local, user->domain);
	for (int h = SCRAM_SHA1; h <= SCRAM_SHA256; h++) {
		struct scram_creds *c = &user->creds[h];
		if (c->salt_len == 0)
			continue;
		if (macs[h] != NULL &&
		    seal_cred_check(st->seal_keys, jid, (enum scram_hash)h, c,
				    macs[h]) == 0)
			continue;
		/* Copied from another account or edited: an integrity
		 * event, never a login. */
		log_error("store: %s: %s credentials fail their integrity "
			  "check; refusing them", jid,
			  scram_hash_name((enum scram_hash)h));
		OPENSSL_cleanse(c, sizeof(*c));
	}
	free(jid);
}

/* ---- state kept on the worker ---- */

void store_set_seal_keys(struct store *st, const struct seal_keys *keys)
{
	st->seal_keys = keys;
	if (st->sealer == NULL) {
		st->sealer = seal_sealer_new(0);
		st->sealer_rotated_us = seal_now_us();
		st->anchors = hashmap_new();
	}
}

void store_offline_cleanup(struct store *st)
{
	size_t pos = 0;
	void *v;

	seal_sealer_free(st->sealer);
	st->sealer = NULL;
	if (st->anchors != NULL) {
		while (hashmap_next(st->anchors, &pos, NULL, &v))
			free(v);
		hashmap_free(st->anchors);
		st->anchors = NULL;
	}
}

/* The value of st->anchors: one anchor per store of the user, each set
 * once this process has committed or cleanly verified that store. */
struct user_anchors {
	struct seal_chain chain[SEAL_NSTORES];
	bool set[SEAL_NSTORES];
};

const struct seal_chain *store_anchor_get(struct store *st, const char *jid,
					  enum seal_store store)
{
	const struct user_anchors *a = hashmap_get(st->anchors, jid);

	return a != NULL && a->set[store] ? &a->chain[store] : NULL;
}

void store_anchor_set(struct store *st, const char *jid,
		      enum seal_store store, const struct seal_keyring *kr)
{
	struct user_anchors *a = hashmap_get(st->anchors, jid);

	if (a == NULL) {
		a = xcalloc(1, sizeof(*a));
		hashmap_put(st->anchors, jid, a);
	}
	seal_anchor_of(kr, store, &a->chain[store]);
	a->set[store] = true;
}

bool store_anchor_matches(struct store *st, const char *jid,
			  enum seal_store store, const struct seal_keyring *kr)
{
	const struct seal_chain *a = store_anchor_get(st, jid, store);
	struct seal_chain now;

	if (a == NULL)
		return true;
	seal_anchor_of(kr, store, &now);
	return a->base_seq == now.base_seq && a->head_seq == now.head_seq &&
	       a->live == now.live && a->live_bytes == now.live_bytes &&
	       CRYPTO_memcmp(a->head_chain, now.head_chain, SEAL_KEY_LEN) == 0 &&
	       CRYPTO_memcmp(a->base_chain, now.base_chain, SEAL_KEY_LEN) == 0;
}

static const struct seal_chain *anchor_get(struct store *st, const char *jid)
{
	return store_anchor_get(st, jid, SEAL_STORE_OFFLINE);
}

static void anchor_set(struct store *st, const char *jid,
		       const struct seal_keyring *kr)
{
	store_anchor_set(st, jid, SEAL_STORE_OFFLINE, kr);
}

/* The row must be the one this process last committed: otherwise the store
 * was rolled back under us and sealing onto it would bless the old state. */
static bool anchor_matches(struct store *st, const char *jid,
			   const struct seal_keyring *kr)
{
	return store_anchor_matches(st, jid, SEAL_STORE_OFFLINE, kr);
}

void store_sealer_maybe_rotate(struct store *st)
{
	int64_t now = seal_now_us();

	if (now - st->sealer_rotated_us >= SEALER_ROTATE_US) {
		if (seal_sealer_rotate(st->sealer) == 0)
			st->sealer_rotated_us = now;
	}
}

/* store_keyring_read, telling a database error (-2) from a row that is
 * there but unusable (-1): a batch fails whole on the first only. */
static int keyring_load(struct store *st, const char *local,
			const char *domain, const char *jid, bool check_mac,
			struct seal_keyring *kr, const char **error_r)
{
	struct arena *pool = arena_new(0);
	const void *blob;
	size_t len;
	int got;

	got = st->backend->keyring_get(st, local, domain, pool, &blob, &len,
				       error_r);
	if (got < 0)
		got = -2;
	if (got == 1 && seal_keyring_decode(blob, len, jid, kr) < 0) {
		log_error("store: %s: the keyring row is corrupt", jid);
		*error_r = "corrupt keyring row";
		got = -1;
	}
	if (got == 1 && check_mac &&
	    seal_keyring_mac_check(st->seal_keys, kr) < 0) {
		log_error("store: %s: the keyring row fails its MAC", jid);
		*error_r = "keyring row fails its MAC";
		got = -1;
	}
	arena_free(pool);
	return got;
}

int store_keyring_read(struct store *st, const char *local,
		       const char *domain, const char *jid, bool check_mac,
		       struct seal_keyring *kr, const char **error_r)
{
	int got = keyring_load(st, local, domain, jid, check_mac, kr, error_r);

	return got < 0 ? -1 : got;
}

int store_keyring_write(struct store *st, const char *local,
			const char *domain, const struct seal_keyring *kr,
			const char **error_r)
{
	struct buf b = BUF_INIT;
	int ret;

	seal_keyring_encode(kr, &b);
	ret = st->backend->keyring_put(st, local, domain, b.data, b.len,
				       error_r);
	buf_free(&b);
	return ret;
}

void store_log_findings(const char *jid, enum seal_store store,
			const struct seal_findings *f)
{
	for (size_t i = 0; i < f->n; i++)
		log_warn("store: %s: %s store: seq %llu: %s", jid,
			 seal_store_label(store),
			 (unsigned long long)f->v[i].seq,
			 seal_finding_name(f->v[i].kind));
}

/* Reads and decodes the keyring row. Returns 1, 0 (no keyring) or -1.
 * With check_mac, a row whose MAC fails is -1 (and logged): it must never
 * be sealed to or changed. */
static int read_keyring(struct off_req *r, struct seal_keyring *kr,
			bool check_mac)
{
	return store_keyring_read(r->st, r->local, r->domain, r->jid,
				  check_mac, kr, &r->error);
}

static int write_keyring(struct off_req *r, const struct seal_keyring *kr)
{
	return store_keyring_write(r->st, r->local, r->domain, kr, &r->error);
}

/* Reads the keyring and every record, then walks them. Returns 1 when the
 * walk ran (r->findings, r->recs filled), 0 without keyring, -1 on error. */
static int read_and_walk(struct off_req *r, struct seal_keyring *kr,
			 bool write)
{
	struct store *st = r->st;
	const struct store_backend *be = st->backend;
	int got, rc;

	got = read_keyring(r, kr, write);
	if (got <= 0)
		return got;
	if (be->offline_list(st, r->local, r->domain, &r->recs, &r->nrecs,
			     &r->error) < 0)
		return -1;
	rc = seal_verify(st->seal_keys, kr, SEAL_STORE_OFFLINE, r->recs,
			 r->nrecs, anchor_get(st, r->jid), &r->findings);
	if (rc < 0) {
		r->error = "verification failed to run";
		return -1;
	}
	if (rc == 1)
		store_log_findings(r->jid, SEAL_STORE_OFFLINE, &r->findings);
	else if (anchor_get(st, r->jid) == NULL)
		anchor_set(st, r->jid, kr); /* first clean sight since start */
	return 1;
}

/* ---- deposit ---- */

/* A recipient's state during a deposit batch. */
struct dep_user {
	char *jid;
	const char *local, *domain;
	/* keyring: 1 usable, 0 none, -1 unusable (this user's items fail),
	 * -2 database error (the batch fails) */
	int got;
	struct seal_keyring kr;
	uint64_t first_seq, last_seq;  /* sealed in this batch, 0 if none */
};

static struct dep_user *dep_user(struct off_req *r, struct hashmap *users,
				 const struct store_offline_item *it)
{
	struct store *st = r->st;
	char *jid = xasprintf("%s@%s", it->local, it->domain);
	struct dep_user *u = hashmap_get(users, jid);
	const char *error = NULL;

	if (u != NULL) {
		free(jid);
		return u;
	}
	u = xcalloc(1, sizeof(*u));
	u->jid = jid;
	u->local = it->local;
	u->domain = it->domain;
	u->got = keyring_load(st, it->local, it->domain, jid, true, &u->kr,
			      &error);
	if (u->got == -2)
		r->error = error;
	if (u->got == 1 && !anchor_matches(st, jid, &u->kr)) {
		log_error("store: %s: the offline store was rolled back to an "
			  "earlier state; refusing to add to it", jid);
		u->got = -1;
	}
	hashmap_put(users, jid, u);
	return u;
}

/* Seals and inserts items[i] onto u's chain, in the caller's transaction.
 * Returns 0..2 as store.h says, -1 for this user only, or -2 when the
 * batch must be rolled back (a database error, or a record inserted
 * without its keyring update). */
static int deposit_one(struct off_req *r, struct dep_user *u, size_t i)
{
	struct store *st = r->st;
	const struct store_offline_item *it = &r->items[i];
	const struct seal_chain *oc = &u->kr.chains[SEAL_STORE_OFFLINE];
	struct seal_record rec;
	uint64_t seq;
	int ret = -2;

	if (u->got <= 0)
		return u->got == 0 ? 2 : u->got;
	if ((it->max_count != 0 && oc->live >= it->max_count) ||
	    (it->max_bytes != 0 &&
	     oc->live_bytes + it->len + SEAL_TAG_LEN > it->max_bytes))
		return 1;
	memset(&rec, 0, sizeof(rec));
	seq = oc->head_seq + 1;
	if (seal_record_seal(st->sealer, st->seal_keys, u->jid,
			     SEAL_STORE_OFFLINE, u->kr.pk, u->kr.key_id, seq,
			     it->stamp_us, oc->head_chain, r->pts[i], it->len,
			     &rec) < 0) {
		/* The sealer refuses a seq it sealed before: the row went
		 * back under us. Nothing of this user's is added. */
		log_error("store: %s: sealing seq %llu refused; the offline "
			  "store takes nothing more in this batch", u->jid,
			  (unsigned long long)seq);
		u->got = -1;
		return -1;
	}
	if (u->first_seq == 0)
		u->first_seq = seq;
	u->last_seq = seq;
	if (st->backend->offline_insert(st, u->local, u->domain, &rec,
					&r->error) == 0) {
		if (seal_keyring_advance(&u->kr, SEAL_STORE_OFFLINE,
					 &rec) == 0) {
			r->stored[i] = seq;
			ret = 0;
		} else {
			r->error = "keyring update failed";
		}
	}
	seal_record_clear(&rec);
	return ret;
}

static void deposit_work(struct off_req *r)
{
	struct store *st = r->st;
	const struct store_backend *be = st->backend;
	struct hashmap *users = hashmap_new();
	struct dep_user *u;
	size_t pos = 0;
	bool failed = false;
	void *v;

	store_sealer_maybe_rotate(st);
	if (be->tx_begin(st, true, &r->error) < 0) {
		failed = true;
		goto out;
	}
	for (size_t i = 0; i < r->nitems && !failed; i++) {
		r->results[i] = deposit_one(r, dep_user(r, users, &r->items[i]),
					    i);
		failed = r->results[i] == -2;
	}
	/* One row write per recipient, after all of its records. */
	while (!failed && hashmap_next(users, &pos, NULL, &v)) {
		u = v;
		/* The row's MAC once, over every record of the batch. */
		if (u->first_seq != 0 &&
		    (seal_keyring_mac_update(st->seal_keys, &u->kr) < 0 ||
		     store_keyring_write(st, u->local, u->domain, &u->kr,
					 &r->error) < 0))
			failed = true;
	}
	if (!failed && be->tx_commit(st, &r->error) < 0)
		failed = true;
	if (failed)
		be->tx_rollback(st);
out:
	pos = 0;
	while (hashmap_next(users, &pos, NULL, &v)) {
		u = v;
		if (u->first_seq != 0 && !failed)
			anchor_set(st, u->jid, &u->kr);
		/* Nothing was stored: those seqs may be used again, with a
		 * fresh ephemeral key so that no (K, nonce) repeats. */
		if (u->first_seq != 0 && failed)
			for (uint64_t q = u->last_seq; q >= u->first_seq; q--)
				seal_sealer_release(st->sealer, u->jid,
						    SEAL_STORE_OFFLINE, q);
		free(u->jid);
		free(u);
	}
	hashmap_free(users);
	if (failed) {
		for (size_t i = 0; i < r->nitems; i++) {
			r->results[i] = -1;
			r->stored[i] = 0;
		}
		if (r->error == NULL)
			r->error = "offline deposit failed";
		r->result = -1;
	} else {
		r->result = 0;
	}
}

/* ---- load and verify ---- */

/* Distinct seqs the walk found no record for: deleted messages, which
 * the user is told about by number. */
static size_t count_missing(const struct off_req *r,
			    const struct seal_chain *row,
			    const struct seal_chain *mem)
{
	uint64_t lo = row->base_seq, hi = row->head_seq, seq;
	size_t n = 0, i = 0;

	if (r->findings.n == 0)
		return 0;
	/* The in-memory anchor knows of records a rolled-back row forgot. */
	if (mem != NULL && mem->head_seq > hi)
		hi = mem->head_seq;
	if (mem != NULL && mem->base_seq > lo)
		lo = mem->base_seq;
	if (hi - lo > 10000000)
		return 0; /* a forged head: the findings say enough */
	for (seq = lo + 1; seq <= hi; seq++) {
		while (i < r->nrecs && r->recs[i].seq < seq)
			i++;
		if (i == r->nrecs || r->recs[i].seq != seq)
			n++;
	}
	return n;
}

static void load_work(struct off_req *r)
{
	struct store *st = r->st;
	const struct store_backend *be = st->backend;
	struct seal_keyring kr;
	struct store_offline *o = &r->info;
	int got;

	if (be->tx_begin(st, false, &r->error) < 0) {
		r->result = -1;
		return;
	}
	got = read_and_walk(r, &kr, false);
	be->tx_rollback(st); /* a read transaction: nothing to commit */
	if (got <= 0) {
		r->result = got == 0 ? 2 : -1;
		return;
	}
	r->genuine = xcalloc(r->nrecs + 1, sizeof(*r->genuine));
	for (size_t i = 0; i < r->nrecs; i++) {
		const struct seal_record *rec = &r->recs[i];

		switch (r->findings.state[i]) {
		case SEAL_REC_GENUINE:
			r->genuine[o->ngenuine++] = *rec;
			break;
		case SEAL_REC_BAD:
		case SEAL_REC_WITHHELD:
			if (rec->wiped)
				break;
			o->nwithheld++;
			if (o->withheld_first == 0 || rec->stamp < o->withheld_first)
				o->withheld_first = rec->stamp;
			if (rec->stamp > o->withheld_last)
				o->withheld_last = rec->stamp;
			break;
		case SEAL_REC_WIPED:
			break;
		}
	}
	o->genuine = r->genuine;
	o->nfindings = r->findings.n;
	o->nmissing = count_missing(r, &kr.chains[SEAL_STORE_OFFLINE],
				    store_anchor_get(r->st, r->jid,
						     SEAL_STORE_OFFLINE));
	o->live = kr.chains[SEAL_STORE_OFFLINE].live;
	o->live_bytes = kr.chains[SEAL_STORE_OFFLINE].live_bytes;
	r->result = 0;
}

static void verify_work(struct off_req *r)
{
	struct store *st = r->st;
	const struct store_backend *be = st->backend;
	struct seal_keyring kr;
	int got;

	if (be->tx_begin(st, false, &r->error) < 0) {
		r->result = -1;
		return;
	}
	got = read_and_walk(r, &kr, false);
	be->tx_rollback(st);
	if (got <= 0)
		r->result = got == 0 ? 2 : -1;
	else
		r->result = r->findings.n > 0 ? 1 : 0;
}

/* ---- removal ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Index of the only record at seq (recs are sorted by seq), or -1. */
static long find_seq(const struct seal_record *recs, size_t n, uint64_t seq)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (recs[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && recs[lo].seq == seq ? (long)lo : -1;
}

/* Once every record up to k is wiped, base moves to k and those rows go
 * (DESIGN §5 "Removal"). */
static int compact(struct off_req *r, struct seal_keyring *kr)
{
	struct store *st = r->st;
	const struct seal_chain *oc = &kr->chains[SEAL_STORE_OFFLINE];
	uint64_t k = oc->base_seq;
	const unsigned char *chain = oc->base_chain;

	for (size_t i = 0; i < r->nrecs; i++) {
		const struct seal_record *rec = &r->recs[i];

		if (rec->seq <= oc->base_seq)
			continue;
		if (rec->seq != k + 1 || r->findings.state[i] != SEAL_REC_WIPED ||
		    (i + 1 < r->nrecs && r->recs[i + 1].seq == rec->seq))
			break;
		k = rec->seq;
		chain = rec->chain;
	}
	if (k == oc->base_seq)
		return 0;
	if (st->backend->offline_delete(st, r->local, r->domain, k, &r->error) < 0)
		return -1;
	return seal_keyring_note_compact(st->seal_keys, kr, SEAL_STORE_OFFLINE,
					 k, chain);
}

static void remove_work(struct off_req *r)
{
	struct store *st = r->st;
	const struct store_backend *be = st->backend;
	struct seal_keyring kr;
	int got;

	if (be->tx_begin(st, true, &r->error) < 0)
		goto fail;
	got = read_and_walk(r, &kr, true);
	if (got <= 0)
		goto fail_rollback;
	qsort(r->seqs, r->nseqs, sizeof(*r->seqs), cmp_u64);
	for (size_t j = 0; j < r->nseqs; j++) {
		long i = find_seq(r->recs, r->nrecs, r->seqs[j]);
		struct seal_record *rec;

		/* Only what the walk accepted: a tomb over a tampered
		 * record would erase the evidence. */
		if (i < 0 || r->findings.state[i] != SEAL_REC_GENUINE)
			continue;
		rec = &r->recs[i];
		if (seal_record_wipe(st->seal_keys, r->jid, SEAL_STORE_OFFLINE,
				     rec) < 0 ||
		    be->offline_wipe(st, r->local, r->domain, rec->seq, rec->tomb,
				     &r->error) < 0 ||
		    seal_keyring_note_wipe(st->seal_keys, &kr, SEAL_STORE_OFFLINE,
					   rec->ct_len) < 0)
			goto fail_rollback;
		r->findings.state[i] = SEAL_REC_WIPED;
	}
	if (compact(r, &kr) < 0 || write_keyring(r, &kr) < 0 ||
	    be->tx_commit(st, &r->error) < 0)
		goto fail_rollback;
	anchor_set(st, r->jid, &kr);
	r->result = 0;
	return;
fail_rollback:
	be->tx_rollback(st);
fail:
	if (r->error == NULL)
		r->error = "offline removal failed";
	r->result = -1;
}

static void purge_work(struct off_req *r)
{
	struct store *st = r->st;
	const struct store_backend *be = st->backend;
	struct seal_keyring kr;
	struct seal_chain *oc = &kr.chains[SEAL_STORE_OFFLINE];

	if (be->tx_begin(st, true, &r->error) < 0)
		goto fail;
	if (read_keyring(r, &kr, true) <= 0)
		goto fail_rollback;
	/* The chain restarts at the authenticated head: records up to it
	 * are gone, and anything above it was never ours. */
	oc->base_seq = oc->head_seq;
	memcpy(oc->base_chain, oc->head_chain, SEAL_KEY_LEN);
	oc->live = 0;
	oc->live_bytes = 0;
	if (be->offline_delete(st, r->local, r->domain, UINT64_MAX,
			       &r->error) < 0 ||
	    seal_keyring_mac_update(st->seal_keys, &kr) < 0 ||
	    write_keyring(r, &kr) < 0 || be->tx_commit(st, &r->error) < 0)
		goto fail_rollback;
	anchor_set(st, r->jid, &kr);
	r->result = 0;
	return;
fail_rollback:
	be->tx_rollback(st);
fail:
	if (r->error == NULL)
		r->error = "offline purge failed";
	r->result = -1;
}

/* ---- requests ---- */

static void off_work(void *arg)
{
	struct off_req *r = arg;

	if (r->st->seal_keys == NULL) {
		r->result = -1;
		r->error = "the store has no seal keys";
		return;
	}
	switch (r->op) {
	case OFF_DEPOSIT:
	case OFF_DEPOSIT_BATCH:
		deposit_work(r);
		break;
	case OFF_LOAD:
		load_work(r);
		break;
	case OFF_REMOVE:
		remove_work(r);
		break;
	case OFF_PURGE:
		purge_work(r);
		break;
	case OFF_VERIFY:
		verify_work(r);
		break;
	}
	if (r->result < 0 &&
	    (r->op == OFF_DEPOSIT || r->op == OFF_DEPOSIT_BATCH))
		log_warn("store: offline: a batch of %zu messages: %s",
			 r->nitems, r->error ? r->error : "error");
	else if (r->result < 0)
		log_warn("store: %s: offline: %s", r->jid,
			 r->error ? r->error : "error");
}

static void off_done(void *arg)
{
	struct off_req *r = arg;

	switch (r->op) {
	case OFF_DEPOSIT:
		if (r->cb.deposit)
			r->cb.deposit(r->ctx, r->results[0], r->stored[0]);
		break;
	case OFF_DEPOSIT_BATCH:
		if (r->cb.batch)
			r->cb.batch(r->ctx, r->results, r->stored, r->nitems);
		break;
	case OFF_LOAD:
		if (r->cb.load)
			r->cb.load(r->ctx, r->result,
				   r->result == 0 ? &r->info : NULL);
		break;
	case OFF_REMOVE:
	case OFF_PURGE:
		if (r->cb.done)
			r->cb.done(r->ctx, r->result, r->error);
		break;
	case OFF_VERIFY:
		if (r->cb.verify)
			r->cb.verify(r->ctx, r->result, r->findings.v,
				     r->result == 1 ? r->findings.n : 0);
		break;
	}
	for (size_t i = 0; i < r->nrecs; i++)
		seal_record_clear(&r->recs[i]);
	free(r->recs);
	free(r->genuine);
	seal_findings_free(&r->findings);
	for (size_t i = 0; i < r->nitems; i++)
		xfree_secret(r->pts[i], r->items[i].len);
	free(r->pts);
	free(r->items);
	free(r->results);
	free(r->stored);
	if (r->pool != NULL)
		arena_free(r->pool);
	free(r->seqs);
	free(r->local);
	free(r->domain);
	free(r->jid);
	free(r);
}

static struct off_req *req_new(struct store *st, enum off_op op,
			       const char *local, const char *domain,
			       void *ctx)
{
	struct off_req *r = xcalloc(1, sizeof(*r));

	r->st = st;
	r->op = op;
	r->local = xstrdup(local);
	r->domain = xstrdup(domain);
	r->jid = xasprintf("%s@%s", local, domain);
	r->ctx = ctx;
	return r;
}

/* Copies the items: the request owns everything it reads on the worker. */
static struct off_req *deposit_req(struct store *st, enum off_op op,
				   const struct store_offline_item *items,
				   size_t n, void *ctx)
{
	struct off_req *r = req_new(st, op, "", "", ctx);

	r->pool = arena_new(256);
	r->nitems = n;
	r->items = xcalloc(n + 1, sizeof(*r->items));
	r->pts = xcalloc(n + 1, sizeof(*r->pts));
	r->results = xcalloc(n + 1, sizeof(*r->results));
	r->stored = xcalloc(n + 1, sizeof(*r->stored));
	for (size_t i = 0; i < n; i++) {
		struct store_offline_item *it = &r->items[i];

		*it = items[i];
		it->local = arena_strdup(r->pool, items[i].local);
		it->domain = arena_strdup(r->pool, items[i].domain);
		it->stanza = NULL;
		r->pts[i] = xmalloc(items[i].len + 1);
		memcpy(r->pts[i], items[i].stanza, items[i].len);
	}
	return r;
}

void store_offline_deposit(struct store *st, const char *local,
			   const char *domain, const void *stanza, size_t len,
			   int64_t stamp_us, uint64_t max_count,
			   uint64_t max_bytes, store_deposit_cb *cb, void *ctx)
{
	struct store_offline_item it = {
		.local = local, .domain = domain, .stanza = stanza, .len = len,
		.stamp_us = stamp_us, .max_count = max_count,
		.max_bytes = max_bytes,
	};
	struct off_req *r = deposit_req(st, OFF_DEPOSIT, &it, 1, ctx);

	r->cb.deposit = cb;
	store_submit(st, off_work, off_done, r);
}

void store_offline_deposit_batch(struct store *st,
				 const struct store_offline_item *items,
				 size_t n, store_offline_batch_cb *cb,
				 void *ctx)
{
	struct off_req *r = deposit_req(st, OFF_DEPOSIT_BATCH, items, n, ctx);

	r->cb.batch = cb;
	store_submit(st, off_work, off_done, r);
}

void store_offline_load(struct store *st, const char *local,
			const char *domain, store_offline_cb *cb, void *ctx)
{
	struct off_req *r = req_new(st, OFF_LOAD, local, domain, ctx);

	r->cb.load = cb;
	store_submit(st, off_work, off_done, r);
}

void store_offline_remove(struct store *st, const char *local,
			  const char *domain, const uint64_t *seqs, size_t n,
			  store_done_cb *cb, void *ctx)
{
	struct off_req *r = req_new(st, OFF_REMOVE, local, domain, ctx);

	r->cb.done = cb;
	r->seqs = xcalloc(n + 1, sizeof(*seqs));
	if (n > 0)
		memcpy(r->seqs, seqs, n * sizeof(*seqs));
	r->nseqs = n;
	store_submit(st, off_work, off_done, r);
}

void store_offline_purge(struct store *st, const char *local,
			 const char *domain, store_done_cb *cb, void *ctx)
{
	struct off_req *r = req_new(st, OFF_PURGE, local, domain, ctx);

	r->cb.done = cb;
	store_submit(st, off_work, off_done, r);
}

void store_offline_verify(struct store *st, const char *local,
			  const char *domain, store_verify_cb *cb, void *ctx)
{
	struct off_req *r = req_new(st, OFF_VERIFY, local, domain, ctx);

	r->cb.verify = cb;
	store_submit(st, off_work, off_done, r);
}

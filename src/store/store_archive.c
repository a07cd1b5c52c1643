/* The sealed message archive's requests (store.h, XEP-0313 and XEP-0441
 * preferences), built from the backend's primitives like the offline
 * store (store_offline.c), on the keyring's archive chain.
 *
 * Everything but the request wrappers and the completions runs on the
 * store's single worker thread, except the sealing of a deposit batch,
 * which it hands per user to helper threads (deposit_work). Each deposit
 * batch is one transaction (records, keyring rows); the anchor moves only
 * after the commit. A query is a read
 * transaction. It either reads every row of the user, walks them, and
 * only then filters and pages ("query by walking"), or, when the archive
 * is known clean, reads and checks only the records it returns ("query by
 * verifying the page", which says when and why that is as safe). Either
 * way a record is returned only if it is genuine by the walk's rules and
 * its clear metadata still carries the MAC made at deposit. */
#include "store/store-private.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "seal/seal.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/fanout.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"

#define META_KIND "archive-meta"
#define PREFS_KIND "archive-prefs"
/* Names in the query cache (never stored): a user's keyring, a result set. */
#define CACHE_KIND "archive-cache-user"
#define SET_KIND "archive-cache-set"
/* A query checks only its page if this process walked the user's whole
 * archive clean at most this long ago; otherwise it walks (again). The
 * walk is what reports findings about records no page touches. */
#define ARC_WALK_EVERY_US (10LL * 60 * 1000000)
#define STORE SEAL_STORE_ARCHIVE

enum arc_op {
	ARC_DEPOSIT, ARC_QUERY, ARC_EXPIRE, ARC_VERIFY, ARC_PREFS_GET,
	ARC_PREFS_SET,
};

struct arc_req {
	struct store *st;
	enum arc_op op;
	char *local, *domain, *jid;
	void *ctx;
	union {
		store_archive_batch_cb *deposit;
		store_archive_cb *query;
		store_count_cb *count;
		store_verify_cb *verify;
		store_archive_prefs_cb *prefs;
		store_done_cb *done;
	} cb;
	/* Request strings and result strings (prefs). */
	struct arena *pool;

	/* deposit: items (strings in pool, stanzas in pts), their results */
	struct store_archive_item *items;
	unsigned char **pts;
	size_t nitems;
	int *results;
	enum store_archive_mode dflt;
	/* query (strings in pool) */
	struct store_archive_query q;
	/* expire */
	int64_t cutoff;
	/* prefs (set: the request; get: the result) */
	struct store_archive_prefs prefs;

	/* results */
	int result;
	const char *error;
	uint64_t n;                     /* seq stored, or records expired */
	struct store_archive_row *rows; /* every row read, owned */
	size_t nrows;
	struct seal_record *recs;       /* shallow copies of rows[i].rec */
	bool *meta_ok;                  /* per row */
	struct seal_findings findings;
	struct store_archive_msg *msgs;
	struct store_archive_page page;
};

void store_archive_rows_free(struct store_archive_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		seal_record_clear(&rows[i].rec);
		free(rows[i].with);
		free(rows[i].stanza_id);
	}
	free(rows);
}

/* ---- clear data under MACs ---- */

static void meta_encode(struct buf *b, const struct seal_record *rec,
			const char *stanza_id, const char *with, bool outgoing)
{
	seal_put_u64(b, rec->seq);
	buf_append(b, rec->chain, SEAL_KEY_LEN);
	seal_put_lp_str(b, stanza_id);
	seal_put_lp_str(b, with);
	seal_put_u64(b, outgoing ? 1 : 0);
}

static int meta_mac(struct arc_req *r, const char *jid,
		    const struct seal_record *rec, const char *stanza_id,
		    const char *with, bool outgoing,
		    unsigned char out[SEAL_KEY_LEN])
{
	struct buf b = BUF_INIT;
	int ret;

	meta_encode(&b, rec, stanza_id, with, outgoing);
	ret = seal_aux_mac(r->st->seal_keys, jid, META_KIND, b.data, b.len, out);
	buf_free(&b);
	return ret;
}

static bool meta_check(struct arc_req *r, const struct store_archive_row *row)
{
	struct buf b = BUF_INIT;
	int ret;

	meta_encode(&b, &row->rec, row->stanza_id, row->with, row->outgoing);
	ret = seal_aux_check(r->st->seal_keys, r->jid, META_KIND, b.data,
			     b.len, row->meta);
	buf_free(&b);
	return ret == 0;
}

static const char *const mode_names[] = {
	[STORE_ARCHIVE_ROSTER] = "roster",
	[STORE_ARCHIVE_ALWAYS] = "always",
	[STORE_ARCHIVE_NEVER] = "never",
};

static int mode_parse(const char *s, enum store_archive_mode *mode_r)
{
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
		if (strcmp(s, mode_names[i]) == 0) {
			*mode_r = (enum store_archive_mode)i;
			return 0;
		}
	return -1;
}

static void prefs_encode(struct buf *b, const struct store_prefs_row *row)
{
	seal_put_lp_str(b, row->mode);
	seal_put_lp_str(b, row->always);
	seal_put_lp_str(b, row->never);
}

/* "a\nb" -> {"a", "b"} in pool. */
static const char *const *split_lines(struct arena *pool, const char *s,
				      size_t *n_r)
{
	const char **v;
	size_t n = 0, k = 0;

	for (const char *p = s; *p != '\0'; p++)
		n += *p == '\n';
	n += *s != '\0';
	v = arena_alloc(pool, (n + 1) * sizeof(*v));
	while (*s != '\0') {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		v[k++] = arena_strndup(pool, s, len);
		s += len + (nl != NULL);
	}
	v[k] = NULL;
	*n_r = k;
	return v;
}

static char *join_lines(const char *const *v, size_t n)
{
	struct buf b = BUF_INIT;

	buf_append(&b, "", 0);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_append(&b, "\n", 1);
		buf_append_str(&b, v[i]);
	}
	return buf_steal(&b, NULL);
}

/* Reads the user's preferences into *prefs (strings in r->pool).
 * Returns 1 found, 0 none (or a row that fails its MAC or does not
 * parse: logged, treated as none), -1 error. */
static int read_prefs(struct arc_req *r, const char *local, const char *domain,
		      const char *jid, struct store_archive_prefs *prefs)
{
	struct store *st = r->st;
	struct store_prefs_row row;
	struct buf b = BUF_INIT;
	int got;

	got = st->backend->archive_prefs_get(st, local, domain, r->pool, &row,
					     &r->error);
	if (got != 1)
		return got;
	prefs_encode(&b, &row);
	if (seal_aux_check(st->seal_keys, jid, PREFS_KIND, b.data, b.len,
			   row.mac) != 0 ||
	    mode_parse(row.mode, &prefs->mode) != 0) {
		log_error("store: %s: the archive preferences fail their "
			  "integrity check; using the server default", jid);
		got = 0;
	} else {
		prefs->always = split_lines(r->pool, row.always, &prefs->nalways);
		prefs->never = split_lines(r->pool, row.never, &prefs->nnever);
	}
	buf_free(&b);
	return got;
}

static bool listed(const char *const *v, size_t n, const char *jid)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], jid) == 0)
			return true;
	return false;
}

/* A user's state during a deposit batch. */
struct batch_user {
	char *jid;
	int got;                  /* keyring: 1 usable, 0 none, -1 unusable */
	struct seal_keyring kr;
	bool dirty;               /* kr changed: written before the commit */
	int prefs_got;            /* -2 not read yet, else read_prefs' */
	struct store_archive_prefs prefs;
	const char *local, *domain;
	uint64_t first_seq, last_seq; /* sealed in this batch, 0 if none */
	/* The items to archive, in batch order (indices into r->items),
	 * and their sealed rows, filled by seal_user. */
	size_t *todo;
	size_t ntodo, todo_cap;
	struct store_archive_row *rows;
	const char *seal_error;   /* set by seal_user if sealing failed */
	/* Stanza-ids of todo, made only once an item whose id may repeat
	 * one in the same batch comes (see batch_duplicate). */
	struct hashmap *ids;
};

/* XEP-0441: the lists win over the default; 'never' wins over 'always'
 * (the cautious reading of a JID listed in both). Returns 1 archive, 0
 * do not, -1 error. */
static int wanted(struct arc_req *r, struct batch_user *u,
		  const struct store_archive_item *it)
{
	struct store *st = r->st;
	enum store_archive_mode mode = r->dflt;

	if (u->prefs_got == -2) {
		u->prefs_got = read_prefs(r, it->local, it->domain, u->jid,
					  &u->prefs);
		if (u->prefs_got < 0)
			return -1;
	}
	if (u->prefs_got == 1) {
		if (listed(u->prefs.never, u->prefs.nnever, it->with))
			return 0;
		if (listed(u->prefs.always, u->prefs.nalways, it->with))
			return 1;
		mode = u->prefs.mode;
	}
	switch (mode) {
	case STORE_ARCHIVE_ALWAYS:
		return 1;
	case STORE_ARCHIVE_NEVER:
		return 0;
	case STORE_ARCHIVE_ROSTER:
		break;
	}
	if (strcmp(it->with, u->jid) == 0)
		return 1;
	return st->backend->roster_has(st, u->jid, it->with, &r->error);
}

/* ---- deposit ---- */

static struct batch_user *batch_user(struct arc_req *r, struct hashmap *users,
				     const struct store_archive_item *it)
{
	struct store *st = r->st;
	size_t llen = strlen(it->local), dlen = strlen(it->domain);
	char key[256], *jid;
	struct batch_user *u;

	/* Looked up per item: a formatted string per item cost more than
	 * the lookup. Longer JIDs (up to 2047 bytes) take the slow path. */
	if (llen + dlen + 2 <= sizeof(key)) {
		memcpy(key, it->local, llen);
		key[llen] = '@';
		memcpy(key + llen + 1, it->domain, dlen + 1);
		jid = key;
	} else {
		jid = xasprintf("%s@%s", it->local, it->domain);
	}
	u = hashmap_get(users, jid);
	if (u != NULL) {
		if (jid != key)
			free(jid);
		return u;
	}
	u = xcalloc(1, sizeof(*u));
	u->jid = jid == key ? xstrdup(key) : jid;
	jid = u->jid;
	u->local = it->local;
	u->domain = it->domain;
	u->prefs_got = -2;
	u->got = store_keyring_read(st, it->local, it->domain, jid, true, &u->kr,
				    &r->error);
	if (u->got == 1 && !store_anchor_matches(st, jid, STORE, &u->kr)) {
		log_error("store: %s: the archive was rolled back to an earlier "
			  "state; refusing to add to it", jid);
		u->got = -1;
	}
	hashmap_put(users, jid, u);
	return u;
}

/* True if an item of this batch already going into u's archive carries
 * the stanza-id (rows are inserted only after the batch is sealed, so the
 * database cannot tell yet). */
static bool batch_duplicate(struct arc_req *r, struct batch_user *u,
			    const char *stanza_id)
{
	if (u->ids == NULL) {
		u->ids = hashmap_new();
		for (size_t j = 0; j < u->ntodo; j++)
			hashmap_put(u->ids, r->items[u->todo[j]].stanza_id, u);
	}
	return hashmap_get(u->ids, stanza_id) != NULL;
}

/* Decides item i: 1..3 as store.h says, -1 for this owner only, -2 when
 * the batch must be rolled back (a database error), or 0 after queueing
 * it on u to be sealed and stored. */
static int deposit_decide(struct arc_req *r, struct batch_user *u, size_t i)
{
	const struct store_archive_item *it = &r->items[i];
	struct store *st = r->st;
	int got;

	if (u->got <= 0)
		return u->got == 0 ? 2 : -1;
	if (!it->new_id) {
		got = st->backend->archive_has_id(st, it->local, it->domain,
						  it->stanza_id, &r->error);
		if (got == 0 && batch_duplicate(r, u, it->stanza_id))
			got = 1;
		if (got != 0)
			return got < 0 ? -2 : 3;
	}
	got = wanted(r, u, it);
	if (got <= 0)
		return got < 0 ? -2 : 1;
	u->todo = xgrow(u->todo, &u->todo_cap, u->ntodo + 1, sizeof(*u->todo));
	u->todo[u->ntodo++] = i;
	if (u->ids != NULL)
		hashmap_put(u->ids, it->stanza_id, u);
	return 0;
}

/* A fanout task: seals one user's items of the batch, in order, on its
 * chain. Touches only u (and the sealer and keys, which lock themselves
 * or are read-only), so users run in parallel. */
struct seal_round {
	struct arc_req *r;
	struct batch_user **users; /* those with items to seal */
	size_t n;
};

static void seal_user(void *ctx, size_t k)
{
	const struct seal_round *round = ctx;
	struct arc_req *r = round->r;
	struct batch_user *u = round->users[k];
	struct store *st = r->st;

	u->rows = xcalloc(u->ntodo, sizeof(*u->rows));
	for (size_t j = 0; j < u->ntodo; j++) {
		const struct store_archive_item *it = &r->items[u->todo[j]];
		const struct seal_chain *c = &u->kr.chains[STORE];
		struct store_archive_row *row = &u->rows[j];
		uint64_t seq = c->head_seq + 1;

		if (seal_record_seal(st->sealer, st->seal_keys, u->jid, STORE,
				     u->kr.pk, u->kr.key_id, seq, it->stamp_us,
				     c->head_chain, r->pts[u->todo[j]], it->len,
				     &row->rec) < 0) {
			u->seal_error = "sealing failed";
			return;
		}
		if (u->first_seq == 0)
			u->first_seq = seq;
		u->last_seq = seq;
		row->with = (char *)it->with;
		row->stanza_id = (char *)it->stanza_id;
		row->outgoing = it->outgoing;
		if (meta_mac(r, u->jid, &row->rec, row->stanza_id, row->with,
			     row->outgoing, row->meta) < 0 ||
		    seal_keyring_advance(&u->kr, STORE, &row->rec) < 0) {
			u->seal_error = "sealing failed";
			return;
		}
		u->dirty = true;
	}
}

/* Inserts the rows seal_user made for u; -1 on a database error. */
static int insert_user(struct arc_req *r, struct batch_user *u)
{
	struct store *st = r->st;

	for (size_t j = 0; j < u->ntodo; j++)
		if (st->backend->archive_insert(st, u->local, u->domain,
						&u->rows[j], &r->error) < 0)
			return -1;
	return 0;
}

static void batch_user_free(struct batch_user *u)
{
	if (u->rows != NULL)
		for (size_t j = 0; j < u->ntodo; j++)
			seal_record_clear(&u->rows[j].rec);
	free(u->rows);
	free(u->todo);
	hashmap_free(u->ids);
	free(u->jid);
	free(u);
}

/* A batch in three steps, one transaction: decide every item in order
 * (preferences, roster and duplicate lookups read the database); seal
 * each user's items on its chain, users in parallel (st->sealers); insert
 * each user's rows as soon as they are sealed, then write the keyrings
 * and commit. Sealing is a quarter of a deposit's cost, so the store's
 * thread inserts while helpers seal. */
static void deposit_work(struct arc_req *r)
{
	struct store *st = r->st;
	const struct store_backend *be = st->backend;
	struct hashmap *users = hashmap_new();
	struct seal_round round = { .r = r };
	struct batch_user *u;
	size_t pos = 0;
	bool failed = false;
	ssize_t k;
	void *v;

	store_sealer_maybe_rotate(st);
	if (be->tx_begin(st, true, &r->error) < 0) {
		failed = true;
		goto out;
	}
	for (size_t i = 0; i < r->nitems && !failed; i++) {
		r->results[i] = deposit_decide(r, batch_user(r, users,
							      &r->items[i]), i);
		failed = r->results[i] == -2;
	}
	if (failed)
		goto rollback;
	round.users = xcalloc(hashmap_count(users) + 1, sizeof(*round.users));
	while (hashmap_next(users, &pos, NULL, &v))
		if (((struct batch_user *)v)->ntodo > 0)
			round.users[round.n++] = v;
	fanout_begin(st->sealers, round.n, seal_user, &round);
	while ((k = fanout_next(st->sealers)) >= 0) {
		u = round.users[k];
		if (failed)
			continue; /* the round must still be drained */
		if (u->seal_error != NULL) {
			r->error = u->seal_error;
			failed = true;
		} else if (insert_user(r, u) < 0) {
			failed = true;
		}
	}
	pos = 0;
	while (!failed && hashmap_next(users, &pos, NULL, &v)) {
		u = v;
		/* The row's MAC once, over every record of the batch. */
		if (u->dirty &&
		    (seal_keyring_mac_update(st->seal_keys, &u->kr) < 0 ||
		     store_keyring_write(st, u->local, u->domain, &u->kr,
					 &r->error) < 0))
			failed = true;
	}
	if (!failed && be->tx_commit(st, &r->error) < 0)
		failed = true;
rollback:
	if (failed)
		be->tx_rollback(st);
out:
	free(round.users);
	pos = 0;
	while (hashmap_next(users, &pos, NULL, &v)) {
		u = v;
		if (u->dirty && !failed)
			store_anchor_set(st, u->jid, STORE, &u->kr);
		/* Nothing was stored: those seqs may be used again, with a
		 * fresh ephemeral key so that no (K, nonce) repeats. */
		if (u->first_seq != 0 && failed)
			for (uint64_t q = u->last_seq; q >= u->first_seq; q--)
				seal_sealer_release(st->sealer, u->jid, STORE, q);
		batch_user_free(u);
	}
	hashmap_free(users);
	if (failed) {
		for (size_t i = 0; i < r->nitems; i++)
			r->results[i] = -1;
		r->result = -1;
		if (r->error == NULL)
			r->error = "archive deposit failed";
	} else {
		r->result = 0;
	}
}

/* ---- the query cache ----
 *
 * Per user, on the worker, in a fixed table (store-private.h): when this
 * process last walked the whole archive and found it clean, and the last
 * result set paged (its count and the place of its last page, so that
 * the next page needs no counting). An entry is named by a keyed hash of
 * the JID and the keyring's pk, so a new keyring (password change,
 * account made again) starts afresh; two users whose hashes share a pair
 * of slots evict each other, which costs a walk, never a wrong answer. */

/* Returns the user's slot, or NULL if none and !make (a made one is
 * zeroed but for its name). */
static struct store_arc_slot *slot_get(struct arc_req *r,
				       const struct seal_keyring *kr, bool make)
{
	struct store *st = r->st;
	unsigned char tag[SEAL_KEY_LEN];
	struct store_arc_slot *pair, *s;
	size_t i;

	if (seal_aux_mac(st->seal_keys, r->jid, CACHE_KIND, kr->pk,
			 sizeof(kr->pk), tag) != 0)
		return NULL;
	i = ((size_t)tag[0] << 8 | tag[1]) % (STORE_ARC_SLOTS / 2);
	pair = &st->arc_slots[2 * i];
	for (s = pair; s < pair + 2; s++)
		if (CRYPTO_memcmp(s->user, tag, sizeof(tag)) == 0) {
			s->used_us = seal_now_us();
			return s;
		}
	if (!make)
		return NULL;
	s = pair[0].used_us <= pair[1].used_us ? &pair[0] : &pair[1];
	memset(s, 0, sizeof(*s));
	memcpy(s->user, tag, sizeof(tag));
	s->used_us = seal_now_us();
	return s;
}

/* A result set's name: the form's filters, with after-id and before-id
 * as seqs (RSM paging moves within a result set, so it is not part of
 * it). */
static int set_key(struct arc_req *r, uint64_t after, uint64_t before,
		   unsigned char key[SEAL_KEY_LEN])
{
	const struct store_archive_query *q = &r->q;
	struct buf b = BUF_INIT;
	int ret;

	seal_put_lp_str(&b, q->with != NULL ? q->with : "");
	seal_put_u64(&b, q->with != NULL);
	seal_put_u64(&b, q->has_start);
	seal_put_u64(&b, (uint64_t)q->start_us);
	seal_put_u64(&b, q->has_end);
	seal_put_u64(&b, (uint64_t)q->end_us);
	seal_put_u64(&b, after);
	seal_put_u64(&b, before);
	ret = seal_aux_mac(r->st->seal_keys, r->jid, SET_KIND, b.data, b.len, key);
	buf_free(&b);
	return ret;
}

/* Remembers the page just answered as the result set's last one. */
static void note_page(struct arc_req *r, struct store_arc_slot *s,
		      const struct seal_chain *c, uint64_t after,
		      uint64_t before)
{
	const struct store_archive_page *p = &r->page;
	unsigned char key[SEAL_KEY_LEN];

	if (s == NULL || r->q.nids > 0 || set_key(r, after, before, key) != 0)
		return;
	memcpy(s->set, key, sizeof(key));
	s->set_base = c->base_seq;
	s->set_head = c->head_seq;
	s->count = p->count;
	s->first_index = p->first_index;
	s->n = p->n;
	s->first_seq = p->n > 0 ? p->msgs[0].rec->seq : 0;
	s->last_seq = p->n > 0 ? p->msgs[p->n - 1].rec->seq : 0;
}

/* ---- the walk ---- */

/* Reads every row, walks them and checks each genuine record's metadata
 * MAC; a clean walk is remembered in the user's slot. The caller holds
 * a transaction. */
static int walk_all(struct arc_req *r, const struct seal_keyring *kr)
{
	struct store *st = r->st;
	struct store_arc_slot *slot;
	int rc;

	if (st->backend->archive_list(st, r->local, r->domain, &r->rows,
				      &r->nrows, &r->error) < 0)
		return -1;
	r->recs = xcalloc(r->nrows + 1, sizeof(*r->recs));
	r->meta_ok = xcalloc(r->nrows + 1, sizeof(*r->meta_ok));
	for (size_t i = 0; i < r->nrows; i++)
		r->recs[i] = r->rows[i].rec;
	rc = seal_verify(st->seal_keys, kr, STORE, r->recs, r->nrows,
			 store_anchor_get(st, r->jid, STORE), &r->findings);
	if (rc < 0) {
		r->error = "verification failed to run";
		return -1;
	}
	if (rc == 1)
		store_log_findings(r->jid, STORE, &r->findings);
	for (size_t i = 0; i < r->nrows; i++) {
		if (r->findings.state[i] != SEAL_REC_GENUINE)
			continue;
		r->meta_ok[i] = meta_check(r, &r->rows[i]);
		if (!r->meta_ok[i]) {
			log_warn("store: %s: archive store: seq %llu: the clear "
				 "metadata fails its MAC", r->jid,
				 (unsigned long long)r->rows[i].rec.seq);
			rc = 1;
		}
	}
	if (rc == 0 && store_anchor_get(st, r->jid, STORE) == NULL)
		store_anchor_set(st, r->jid, STORE, kr); /* first clean sight */
	/* Only a clean walk lets later queries check just their pages: an
	 * archive with findings is walked at every query, so that the
	 * withheld count and the notice stay exact. */
	slot = slot_get(r, kr, rc == 0);
	if (slot != NULL)
		slot->walked_us = rc == 0 ? seal_now_us() : 0;
	return 0;
}

/* Reads the keyring and walks. Returns 1 when the walk ran, 0 without
 * keyring, -1 on error. The caller holds a transaction. */
static int read_and_walk(struct arc_req *r, struct seal_keyring *kr,
			 bool check_mac)
{
	int got;

	got = store_keyring_read(r->st, r->local, r->domain, r->jid, check_mac,
				 kr, &r->error);
	if (got <= 0)
		return got;
	return walk_all(r, kr) < 0 ? -1 : 1;
}

static bool deliverable(const struct arc_req *r, size_t i)
{
	return r->findings.state[i] == SEAL_REC_GENUINE && r->meta_ok[i];
}

/* ---- query by walking ---- */

/* The seq of the live row carrying stanza_id (genuine or withheld: a
 * bound needs only its place), or 0 if there is none. */
static uint64_t seq_of_id(const struct arc_req *r, const char *stanza_id)
{
	for (size_t i = 0; i < r->nrows; i++)
		if (!r->rows[i].rec.wiped &&
		    strcmp(r->rows[i].stanza_id, stanza_id) == 0)
			return r->rows[i].rec.seq;
	return 0;
}

static bool matches(const struct arc_req *r, size_t i, uint64_t after,
		    uint64_t before)
{
	const struct store_archive_query *q = &r->q;
	const struct store_archive_row *row = &r->rows[i];

	if (!deliverable(r, i) || row->rec.seq <= after || row->rec.seq >= before)
		return false;
	if (q->with != NULL && strcmp(row->with, q->with) != 0)
		return false;
	if ((q->has_start && row->rec.stamp < q->start_us) ||
	    (q->has_end && row->rec.stamp > q->end_us))
		return false;
	if (q->nids > 0 && !listed(q->ids, q->nids, row->stanza_id))
		return false;
	return true;
}

/* Resolves every id the query names. Returns 0, or 3 if one is not in
 * the archive. */
static int resolve_ids(struct arc_req *r, uint64_t *after, uint64_t *before,
		       uint64_t *rsm_after, uint64_t *rsm_before)
{
	const struct store_archive_query *q = &r->q;

	*after = 0;
	*before = UINT64_MAX;
	*rsm_after = 0;
	*rsm_before = UINT64_MAX;
	if (q->after_id != NULL && (*after = seq_of_id(r, q->after_id)) == 0)
		return 3;
	if (q->before_id != NULL && (*before = seq_of_id(r, q->before_id)) == 0)
		return 3;
	for (size_t i = 0; i < q->nids; i++)
		if (seq_of_id(r, q->ids[i]) == 0)
			return 3;
	if (q->rsm_after != NULL &&
	    (*rsm_after = seq_of_id(r, q->rsm_after)) == 0)
		return 3;
	if (q->rsm_before != NULL && q->rsm_before[0] != '\0' &&
	    (*rsm_before = seq_of_id(r, q->rsm_before)) == 0)
		return 3;
	return 0;
}

/* Answers from the walk's verdicts (r->rows, r->findings). */
static void walk_query(struct arc_req *r, const struct seal_keyring *kr)
{
	const struct store_archive_query *q = &r->q;
	struct store_archive_page *p = &r->page;
	uint64_t after, before, rsm_after, rsm_before;
	size_t *match, nmatch = 0, from, to;

	for (size_t i = 0; i < r->nrows; i++) {
		const struct seal_record *rec = &r->rows[i].rec;

		if (rec->wiped)
			continue;
		if (!deliverable(r, i)) {
			p->nwithheld++;
			if (p->withheld_first == 0 || rec->stamp < p->withheld_first)
				p->withheld_first = rec->stamp;
			if (rec->stamp > p->withheld_last)
				p->withheld_last = rec->stamp;
			continue;
		}
		if (p->first_id == NULL) {
			p->first_id = r->rows[i].stanza_id;
			p->first_stamp = rec->stamp;
		}
		p->last_id = r->rows[i].stanza_id;
		p->last_stamp = rec->stamp;
	}
	p->nfindings = r->findings.n;
	for (size_t i = 0; i < r->nrows; i++)
		if (r->findings.state[i] == SEAL_REC_GENUINE && !r->meta_ok[i])
			p->nfindings++;
	if ((r->result = resolve_ids(r, &after, &before, &rsm_after,
				     &rsm_before)) != 0)
		return;

	/* The result set, in archive order (rows come by seq). */
	match = xcalloc(r->nrows + 1, sizeof(*match));
	for (size_t i = 0; i < r->nrows; i++)
		if (matches(r, i, after, before))
			match[nmatch++] = i;
	p->count = nmatch;

	/* XEP-0059: the page after <after/>, before <before/>, at <index/>,
	 * or from the start. */
	if (q->rsm_before != NULL) {
		to = nmatch;
		if (q->rsm_before[0] != '\0')
			for (to = 0; to < nmatch &&
			     r->rows[match[to]].rec.seq < rsm_before; to++)
				;
		from = to > q->max ? to - q->max : 0;
		p->complete = from == 0;
	} else {
		from = 0;
		if (q->rsm_after != NULL)
			while (from < nmatch &&
			       r->rows[match[from]].rec.seq <= rsm_after)
				from++;
		else if (q->has_index)
			from = q->index < nmatch ? q->index : nmatch;
		to = nmatch - from > q->max ? from + q->max : nmatch;
		p->complete = to == nmatch;
	}
	p->first_index = from;
	r->msgs = xcalloc(to - from + 1, sizeof(*r->msgs));
	for (size_t k = from; k < to; k++) {
		const struct store_archive_row *row = &r->rows[match[k]];
		r->msgs[k - from] = (struct store_archive_msg){
			&r->recs[match[k]], row->stanza_id, row->with,
			row->outgoing
		};
	}
	p->msgs = r->msgs;
	p->n = to - from;
	free(match);
	note_page(r, slot_get(r, kr, false), &kr->chains[STORE], after, before);
	r->result = 0;
}

/* ---- query by verifying the page ----
 *
 * Walking the whole archive for every page makes paging through n
 * records cost O(n^2). When the archive is in the state a clean archive
 * is always in (seal_chain_tight: row MAC, in-memory anchor, nothing
 * removed between base and head) and this process walked it clean
 * lately (ARC_WALK_EVERY_US), a query reads and checks only the records
 * it returns, each against the row before it (seal_verify_link) and its
 * metadata MAC, plus the archive's first and last record (metadata, and
 * the head check the walk makes). A record passes exactly when the walk
 * would call it genuine, for the reasons seal_verify.c gives. Anything
 * unexpected (a record that fails, no row or several at a seq, a wiped
 * row) makes the query walk the whole archive after all, which reports
 * and withholds as usual.
 *
 * What this path does not see until the next walk: findings about
 * records it does not return. They are reported (log, notice) by the
 * next walk: the first query after a restart or eviction, one every
 * ARC_WALK_EVERY_US, or any query whose page touches them. Counts come
 * from the clear columns (XEP-0059 allows an approximate count): a
 * record changed since the last walk is still counted until then, but
 * never returned. */

/* Rows of a user read for one query: r->rows grows span by span. */
static int read_span(struct arc_req *r, uint64_t lo, uint64_t hi)
{
	struct store *st = r->st;
	struct store_archive_row *rows;
	size_t n;

	if (st->backend->archive_range(st, r->local, r->domain, lo, hi, &rows,
				       &n, &r->error) < 0)
		return -1;
	r->rows = xrealloc(r->rows, (r->nrows + n + 1) * sizeof(*r->rows));
	memcpy(r->rows + r->nrows, rows, n * sizeof(*rows));
	r->nrows += n;
	free(rows);
	return 0;
}

/* The live rows the span holds: in a tight archive every seq in base+1
 * .. head has one live row, so without filters this needs no reading. */
static int span_count(struct arc_req *r, const struct store_archive_span *sp,
		      uint64_t *n_r)
{
	struct store *st = r->st;

	if (sp->lo > sp->hi) {
		*n_r = 0;
		return 0;
	}
	if (sp->with == NULL && !sp->has_start && !sp->has_end) {
		*n_r = sp->hi - sp->lo + 1;
		return 0;
	}
	return st->backend->archive_count(st, r->local, r->domain, sp, n_r,
					  &r->error);
}

/* An id's seq: 1 found, 0 no such live row (the caller answers 3), -1. */
static int id_seq(struct arc_req *r, const char *id, uint64_t *seq_r)
{
	if (id == NULL)
		return 1;
	return r->st->backend->archive_seq_of(r->st, r->local, r->domain, id,
					      seq_r, &r->error);
}

static int seq_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts v and drops repeats; returns the new length. */
static size_t sort_unique(uint64_t *v, size_t n)
{
	size_t u = 0;

	qsort(v, n, sizeof(*v), seq_cmp);
	for (size_t i = 0; i < n; i++)
		if (u == 0 || v[u - 1] != v[i])
			v[u++] = v[i];
	return u;
}

/* Reads rows seq-1 .. seq for every seq in `want` (sorted, unique),
 * merging neighbours into one read, and checks each wanted record.
 * at[k] receives the index in r->rows of want[k]'s row. Returns 0 all
 * genuine, 1 the archive must be walked, -1 error. */
static int check_records(struct arc_req *r, const struct seal_keyring *kr,
			 const uint64_t *want, size_t nwant, size_t *at)
{
	const struct seal_chain *c = &kr->chains[STORE];
	size_t k = 0, pos = 0;

	while (k < nwant) {
		uint64_t lo = want[k] - 1, hi = want[k];

		while (++k < nwant && want[k] - 1 <= hi + 1)
			hi = want[k];
		if (read_span(r, lo, hi) < 0)
			return -1;
	}
	for (k = 0; k < nwant; k++) {
		const struct store_archive_row *pred = NULL, *row;
		size_t npred = 0, nrow = 0, first = 0;
		int rc;

		while (pos < r->nrows && r->rows[pos].rec.seq < want[k] - 1)
			pos++;
		for (; pos < r->nrows && r->rows[pos].rec.seq == want[k] - 1; pos++) {
			pred = &r->rows[pos];
			npred++;
		}
		for (first = pos; pos < r->nrows && r->rows[pos].rec.seq == want[k]; pos++)
			nrow++;
		if (nrow != 1)
			return 1;
		row = &r->rows[first];
		if (want[k] - 1 == c->base_seq)
			pred = NULL;  /* seal_verify_link uses base_chain */
		else if (npred != 1)
			return 1;
		rc = seal_verify_link(r->st->seal_keys, kr, STORE, &row->rec,
				      pred != NULL ? &pred->rec : NULL);
		if (rc <= 0)
			return rc < 0 ? -1 : 1;
		if (!meta_check(r, row))
			return 1;
		at[k] = first;
		/* The next wanted seq may be this one's successor. */
		pos = first;
	}
	return 0;
}

/* Whether this query may check only its page (see above). */
static bool page_path_ok(struct arc_req *r, const struct seal_keyring *kr)
{
	struct store *st = r->st;
	const struct store_backend *be = st->backend;
	struct store_arc_slot *slot;

	if (be->archive_seqs == NULL || be->archive_count == NULL ||
	    be->archive_range == NULL || be->archive_seq_of == NULL ||
	    r->q.nids > 0 || r->q.has_index)
		return false;
	if (!seal_chain_tight(st->seal_keys, kr, STORE,
			      store_anchor_get(st, r->jid, STORE)))
		return false;
	slot = slot_get(r, kr, false);
	return slot != NULL && slot->walked_us != 0 &&
	       seal_now_us() - slot->walked_us < ARC_WALK_EVERY_US;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Returns 0 answered (r->result set), 1 the archive must be walked,
 * -1 error. */
static int page_query(struct arc_req *r, const struct seal_keyring *kr)
{
	const struct store_archive_query *q = &r->q;
	const struct seal_chain *c = &kr->chains[STORE];
	struct store_archive_page *p = &r->page;
	struct store_arc_slot *slot = slot_get(r, kr, false);
	struct store_archive_span span, sp;
	unsigned char key[SEAL_KEY_LEN];
	uint64_t after = 0, before = UINT64_MAX, ra = 0, rb = UINT64_MAX;
	uint64_t *seqs, *want, count, ahead;
	size_t nseqs = 0, npage, nwant = 0, *at, page_at;
	bool same_set, back = q->rsm_before != NULL;
	int rc = -1;

	if (slot == NULL)
		return 1;
	if ((rc = id_seq(r, q->after_id, &after)) <= 0 ||
	    (rc = id_seq(r, q->before_id, &before)) <= 0 ||
	    (rc = id_seq(r, q->rsm_after, &ra)) <= 0 ||
	    (rc = id_seq(r, back && q->rsm_before[0] != '\0' ? q->rsm_before
			 : NULL, &rb)) <= 0) {
		if (rc < 0)
			return -1;
		r->result = 3;
		return 0;
	}
	rc = -1;

	/* The result set and its count. */
	span = (struct store_archive_span){
		.lo = max64(c->base_seq + 1, after + 1),
		.hi = min64(c->head_seq, before - 1),
		.with = q->with, .has_start = q->has_start,
		.has_end = q->has_end, .start_us = q->start_us,
		.end_us = q->end_us,
	};
	if (set_key(r, after, before, key) != 0)
		return rc;
	same_set = CRYPTO_memcmp(slot->set, key, sizeof(key)) == 0 &&
		   slot->set_base == c->base_seq && slot->set_head <= c->head_seq;
	sp = span;
	if (same_set)
		sp.lo = max64(span.lo, slot->set_head + 1);
	if (span_count(r, &sp, &count) < 0)
		return rc;
	if (same_set)
		count += slot->count;
	p->count = count;

	/* The page, one more record to tell whether it is the last, and
	 * its place among the result set. */
	seqs = xcalloc(q->max + 2, sizeof(*seqs));
	sp = span;
	if (back)
		sp.hi = min64(span.hi, rb - 1);
	else
		sp.lo = max64(span.lo, ra + 1);
	if (sp.lo <= sp.hi &&
	    r->st->backend->archive_seqs(r->st, r->local, r->domain, &sp, back,
					 q->max + 1, seqs, &nseqs,
					 &r->error) < 0)
		goto out;
	npage = nseqs < q->max ? nseqs : q->max;
	p->complete = nseqs <= q->max;
	if (back) {
		for (size_t i = 0; i < npage / 2; i++) {
			uint64_t t = seqs[i];
			seqs[i] = seqs[npage - 1 - i];
			seqs[npage - 1 - i] = t;
		}
		if (rb == UINT64_MAX)
			p->first_index = count > npage ? count - npage : 0;
		else if (same_set && slot->first_seq == rb)
			p->first_index = slot->first_index > npage
				? slot->first_index - npage : 0;
		else if (npage > 0) {
			sp = span;
			sp.hi = seqs[0] - 1;
			if (span_count(r, &sp, &ahead) < 0)
				goto out;
			p->first_index = ahead;
		}
	} else if (ra != 0) {
		if (same_set && slot->last_seq == ra)
			p->first_index = slot->first_index + slot->n;
		else {
			sp = span;
			sp.hi = min64(span.hi, ra);
			if (span_count(r, &sp, &ahead) < 0)
				goto out;
			p->first_index = ahead;
		}
	}

	/* What is checked: the page, the record after it, and the
	 * archive's first and last. */
	want = xcalloc(nseqs + 3, sizeof(*want));
	at = xcalloc(nseqs + 3, sizeof(*at));
	memcpy(want, seqs, nseqs * sizeof(*want));
	nwant = nseqs;
	if (c->head_seq > c->base_seq) {
		want[nwant++] = c->base_seq + 1;
		want[nwant++] = c->head_seq;
	}
	nwant = sort_unique(want, nwant);
	rc = check_records(r, kr, want, nwant, at);
	if (rc != 0)
		goto out_want;

	r->recs = xcalloc(r->nrows + 1, sizeof(*r->recs));
	for (size_t i = 0; i < r->nrows; i++)
		r->recs[i] = r->rows[i].rec;
	r->msgs = xcalloc(npage + 1, sizeof(*r->msgs));
	page_at = 0;
	for (size_t k = 0; k < npage; k++) {
		const struct store_archive_row *row;

		while (want[page_at] != seqs[k])
			page_at++;
		row = &r->rows[at[page_at]];
		r->msgs[k] = (struct store_archive_msg){
			&r->recs[at[page_at]], row->stanza_id, row->with,
			row->outgoing
		};
	}
	p->msgs = r->msgs;
	p->n = npage;
	if (c->head_seq > c->base_seq) {
		const struct store_archive_row *first = &r->rows[at[0]];
		const struct store_archive_row *last = &r->rows[at[nwant - 1]];

		p->first_id = first->stanza_id;
		p->first_stamp = first->rec.stamp;
		p->last_id = last->stanza_id;
		p->last_stamp = last->rec.stamp;
	}
	note_page(r, slot, c, after, before);
	r->result = 0;
out_want:
	free(want);
	free(at);
out:
	free(seqs);
	return rc;
}

/* Forgets what a page path that gave up had read. */
static void query_reset(struct arc_req *r)
{
	store_archive_rows_free(r->rows, r->nrows);
	free(r->recs);
	free(r->msgs);
	r->rows = NULL;
	r->recs = NULL;
	r->msgs = NULL;
	r->nrows = 0;
	memset(&r->page, 0, sizeof(r->page));
	r->result = 0;
}

static void query_work(struct arc_req *r)
{
	struct store *st = r->st;
	const struct store_backend *be = st->backend;
	struct seal_keyring kr;
	int got, rc = 1;

	if (be->tx_begin(st, false, &r->error) < 0) {
		r->result = -1;
		return;
	}
	got = store_keyring_read(st, r->local, r->domain, r->jid, false, &kr,
				 &r->error);
	if (got > 0 && page_path_ok(r, &kr)) {
		rc = page_query(r, &kr);
		if (rc == 1)
			query_reset(r);
	}
	if (got > 0 && rc == 1) {
		rc = walk_all(r, &kr);
		if (rc == 0)
			walk_query(r, &kr);
	}
	be->tx_rollback(st); /* a read transaction: nothing to commit */
	if (got <= 0)
		r->result = got == 0 ? 2 : -1;
	else if (rc < 0)
		r->result = -1;
}

/* ---- retention ---- */

/* Whether the oldest live record is older than the cutoff, from the
 * clear columns and without a walk: 1 yes (or cannot tell), 0 no, -1
 * error. Seqs follow arrival, so when the oldest is newer nothing can
 * expire, and the daily check at login costs two index reads instead of
 * a walk of the whole archive. A forged clear stamp can only postpone
 * expiry; the walk that does expire verifies every record. */
static int expire_needed(struct arc_req *r)
{
	struct store *st = r->st;
	const struct store_backend *be = st->backend;
	const struct store_archive_span all = { .lo = 0, .hi = UINT64_MAX };
	struct store_archive_row *rows;
	uint64_t seq;
	size_t n;
	int needed;

	if (be->archive_seqs == NULL || be->archive_range == NULL)
		return 1;
	if (be->archive_seqs(st, r->local, r->domain, &all, false, 1, &seq,
			     &n, &r->error) < 0)
		return -1;
	if (n == 0)
		return 0;
	if (be->archive_range(st, r->local, r->domain, seq, seq, &rows, &n,
			      &r->error) < 0)
		return -1;
	needed = n == 0 || rows[0].rec.stamp < r->cutoff;
	store_archive_rows_free(rows, n);
	return needed;
}

static void expire_work(struct arc_req *r)
{
	struct store *st = r->st;
	const struct store_backend *be = st->backend;
	struct seal_keyring kr;
	uint64_t removed = 0, k;
	const unsigned char *chain;
	int got;

	if (be->tx_begin(st, true, &r->error) < 0)
		goto fail;
	got = expire_needed(r);
	if (got <= 0) {
		be->tx_rollback(st);
		if (got < 0)
			goto fail;
		r->n = 0;
		r->result = 0;
		return;
	}
	got = read_and_walk(r, &kr, true);
	if (got <= 0) {
		if (got == 0) {
			r->result = 2;
			be->tx_rollback(st);
			return;
		}
		goto fail_rollback;
	}
	if (!store_anchor_matches(st, r->jid, STORE, &kr)) {
		r->error = "archive rolled back";
		goto fail_rollback;
	}
	/* The oldest first, never leaving a hole: stop at the first record
	 * that is newer or that the walk did not accept (a tomb over a
	 * tampered record would erase the evidence). */
	for (size_t i = 0; i < r->nrows; i++) {
		struct seal_record *rec = &r->rows[i].rec;

		if (r->findings.state[i] == SEAL_REC_WIPED)
			continue;
		if (!deliverable(r, i) || rec->stamp >= r->cutoff)
			break;
		if (seal_record_wipe(st->seal_keys, r->jid, STORE, rec) < 0 ||
		    be->archive_wipe(st, r->local, r->domain, rec->seq,
				     rec->tomb, &r->error) < 0 ||
		    seal_keyring_note_wipe(st->seal_keys, &kr, STORE,
					   rec->ct_len) < 0)
			goto fail_rollback;
		r->findings.state[i] = SEAL_REC_WIPED;
		removed++;
	}
	/* Compaction: base moves over the wiped prefix, those rows go. */
	k = kr.chains[STORE].base_seq;
	chain = kr.chains[STORE].base_chain;
	for (size_t i = 0; i < r->nrows; i++) {
		const struct seal_record *rec = &r->rows[i].rec;

		if (rec->seq <= kr.chains[STORE].base_seq)
			continue;
		if (rec->seq != k + 1 || r->findings.state[i] != SEAL_REC_WIPED ||
		    (i + 1 < r->nrows && r->rows[i + 1].rec.seq == rec->seq))
			break;
		k = rec->seq;
		chain = rec->chain;
	}
	if (k > kr.chains[STORE].base_seq &&
	    (be->archive_delete(st, r->local, r->domain, k, &r->error) < 0 ||
	     seal_keyring_note_compact(st->seal_keys, &kr, STORE, k, chain) < 0))
		goto fail_rollback;
	if (store_keyring_write(st, r->local, r->domain, &kr, &r->error) < 0 ||
	    be->tx_commit(st, &r->error) < 0)
		goto fail_rollback;
	store_anchor_set(st, r->jid, STORE, &kr);
	r->n = removed;
	r->result = 0;
	return;
fail_rollback:
	be->tx_rollback(st);
fail:
	if (r->error == NULL)
		r->error = "archive expiry failed";
	r->result = -1;
}

static void verify_work(struct arc_req *r)
{
	struct store *st = r->st;
	struct seal_keyring kr;
	int got;

	if (st->backend->tx_begin(st, false, &r->error) < 0) {
		r->result = -1;
		return;
	}
	got = read_and_walk(r, &kr, false);
	st->backend->tx_rollback(st);
	if (got <= 0) {
		r->result = got == 0 ? 2 : -1;
		return;
	}
	/* Metadata failures are findings too (as a changed record). */
	for (size_t i = 0; i < r->nrows; i++) {
		struct seal_findings *f = &r->findings;
		if (f->state[i] != SEAL_REC_GENUINE || r->meta_ok[i])
			continue;
		f->v = xgrow(f->v, &f->cap, f->n + 1, sizeof(*f->v));
		f->v[f->n++] = (struct seal_finding){
			SEAL_F_BAD_CHAIN, r->rows[i].rec.seq, 1, i
		};
	}
	r->result = r->findings.n > 0 ? 1 : 0;
}

/* ---- preferences ---- */

static void prefs_get_work(struct arc_req *r)
{
	r->result = read_prefs(r, r->local, r->domain, r->jid, &r->prefs);
}

static void prefs_set_work(struct arc_req *r)
{
	struct store *st = r->st;
	struct store_prefs_row row;
	struct buf b = BUF_INIT;
	char *always, *never;

	/* A JID never holds a newline (RFC 7622 forbids controls), so it
	 * can separate the list; refuse one that would split. */
	for (size_t i = 0; i < r->prefs.nalways + r->prefs.nnever; i++) {
		const char *jid = i < r->prefs.nalways ? r->prefs.always[i]
			: r->prefs.never[i - r->prefs.nalways];
		if (strchr(jid, '\n') != NULL || *jid == '\0') {
			r->result = -1;
			r->error = "a JID with a newline";
			return;
		}
	}
	if ((unsigned)r->prefs.mode > STORE_ARCHIVE_NEVER)
		r->prefs.mode = STORE_ARCHIVE_ROSTER;
	always = join_lines(r->prefs.always, r->prefs.nalways);
	never = join_lines(r->prefs.never, r->prefs.nnever);
	row.mode = mode_names[r->prefs.mode];
	row.always = always;
	row.never = never;
	prefs_encode(&b, &row);
	r->result = -1;
	if (seal_aux_mac(st->seal_keys, r->jid, PREFS_KIND, b.data, b.len,
			 row.mac) < 0)
		r->error = "MAC failed";
	else if (st->backend->tx_begin(st, true, &r->error) == 0) {
		if (st->backend->archive_prefs_put(st, r->local, r->domain, &row,
						   &r->error) == 0 &&
		    st->backend->tx_commit(st, &r->error) == 0)
			r->result = 0;
		else
			st->backend->tx_rollback(st);
	}
	buf_free(&b);
	free(always);
	free(never);
}

/* ---- requests ---- */

static void arc_work(void *arg)
{
	struct arc_req *r = arg;

	if (r->st->seal_keys == NULL) {
		r->result = -1;
		r->error = "the store has no seal keys";
		return;
	}
	switch (r->op) {
	case ARC_DEPOSIT:
		deposit_work(r);
		break;
	case ARC_QUERY:
		query_work(r);
		break;
	case ARC_EXPIRE:
		expire_work(r);
		break;
	case ARC_VERIFY:
		verify_work(r);
		break;
	case ARC_PREFS_GET:
		prefs_get_work(r);
		break;
	case ARC_PREFS_SET:
		prefs_set_work(r);
		break;
	}
	if (r->result < 0 && r->op == ARC_DEPOSIT)
		log_warn("store: archive: a batch of %zu messages: %s",
			 r->nitems, r->error ? r->error : "error");
	else if (r->result < 0)
		log_warn("store: %s: archive: %s", r->jid,
			 r->error ? r->error : "error");
}

static void arc_done(void *arg)
{
	struct arc_req *r = arg;

	switch (r->op) {
	case ARC_DEPOSIT:
		if (r->cb.deposit)
			r->cb.deposit(r->ctx, r->results, r->nitems);
		break;
	case ARC_QUERY:
		if (r->cb.query)
			r->cb.query(r->ctx, r->result,
				    r->result == 0 ? &r->page : NULL);
		break;
	case ARC_EXPIRE:
		if (r->cb.count)
			r->cb.count(r->ctx, r->result, r->n);
		break;
	case ARC_VERIFY:
		if (r->cb.verify)
			r->cb.verify(r->ctx, r->result, r->findings.v,
				     r->result == 1 ? r->findings.n : 0);
		break;
	case ARC_PREFS_GET:
		if (r->cb.prefs)
			r->cb.prefs(r->ctx, r->result,
				    r->result == 1 ? &r->prefs : NULL);
		break;
	case ARC_PREFS_SET:
		if (r->cb.done)
			r->cb.done(r->ctx, r->result, r->error);
		break;
	}
	store_archive_rows_free(r->rows, r->nrows);
	free(r->recs);
	free(r->meta_ok);
	free(r->msgs);
	seal_findings_free(&r->findings);
	for (size_t i = 0; i < r->nitems; i++)
		xfree_secret(r->pts[i], r->items[i].len);
	free(r->pts);
	free(r->items);
	free(r->results);
	arena_free(r->pool);
	free(r->local);
	free(r->domain);
	free(r->jid);
	free(r);
}

static struct arc_req *req_new(struct store *st, enum arc_op op,
			       const char *local, const char *domain,
			       void *ctx)
{
	struct arc_req *r = xcalloc(1, sizeof(*r));

	r->st = st;
	r->op = op;
	r->local = xstrdup(local);
	r->domain = xstrdup(domain);
	r->jid = xasprintf("%s@%s", local, domain);
	r->ctx = ctx;
	r->pool = arena_new(256);
	return r;
}

static const char *pool_dup(struct arena *pool, const char *s)
{
	return s != NULL ? arena_strdup(pool, s) : NULL;
}

static const char *const *pool_dupv(struct arena *pool,
				    const char *const *v, size_t n)
{
	const char **out = arena_alloc(pool, (n + 1) * sizeof(*out));

	for (size_t i = 0; i < n; i++)
		out[i] = arena_strdup(pool, v[i]);
	out[n] = NULL;
	return out;
}

/* A batch being built is an ARC_DEPOSIT request not yet submitted. */
struct store_archive_batch {
	struct arc_req *r;
	size_t cap;
};

struct store_archive_batch *store_archive_batch_new(void)
{
	struct store_archive_batch *b = xcalloc(1, sizeof(*b));

	b->r = req_new(NULL, ARC_DEPOSIT, "", "", NULL);
	/* Four strings per item, thousands of items: bigger blocks. */
	arena_free(b->r->pool);
	b->r->pool = arena_new(16384);
	return b;
}

void store_archive_batch_add(struct store_archive_batch *b,
			     const struct store_archive_item *item,
			     void *stanza)
{
	struct arc_req *r = b->r;
	struct store_archive_item *it;

	if (r->nitems == b->cap) {
		size_t items_cap = b->cap, pts_cap = b->cap;

		r->items = xgrow(r->items, &items_cap, r->nitems + 1,
				 sizeof(*r->items));
		r->pts = xgrow(r->pts, &pts_cap, r->nitems + 1,
			       sizeof(*r->pts));
		b->cap = items_cap;
	}
	it = &r->items[r->nitems];
	*it = *item;
	it->local = arena_strdup(r->pool, item->local);
	it->domain = arena_strdup(r->pool, item->domain);
	it->with = arena_strdup(r->pool, item->with);
	it->stanza_id = arena_strdup(r->pool, item->stanza_id);
	it->stanza = NULL;
	r->pts[r->nitems++] = stanza;
}

size_t store_archive_batch_count(const struct store_archive_batch *b)
{
	return b->r->nitems;
}

void store_archive_batch_submit(struct store *st,
				struct store_archive_batch *b,
				enum store_archive_mode dflt,
				store_archive_batch_cb *cb, void *ctx)
{
	struct arc_req *r = b->r;

	free(b);
	r->st = st;
	r->ctx = ctx;
	r->cb.deposit = cb;
	r->dflt = dflt;
	r->results = xcalloc(r->nitems + 1, sizeof(*r->results));
	store_submit(st, arc_work, arc_done, r);
}

void store_archive_batch_discard(struct store_archive_batch *b)
{
	if (b == NULL)
		return;
	b->r->cb.deposit = NULL;
	arc_done(b->r); /* frees: no callback without one */
	free(b);
}

void store_archive_deposit(struct store *st,
			   const struct store_archive_item *items, size_t n,
			   enum store_archive_mode dflt,
			   store_archive_batch_cb *cb, void *ctx)
{
	struct store_archive_batch *b = store_archive_batch_new();

	for (size_t i = 0; i < n; i++) {
		unsigned char *pt = xmalloc(items[i].len + 1);

		memcpy(pt, items[i].stanza, items[i].len);
		store_archive_batch_add(b, &items[i], pt);
	}
	store_archive_batch_submit(st, b, dflt, cb, ctx);
}

void store_archive_query(struct store *st, const char *local,
			 const char *domain,
			 const struct store_archive_query *q,
			 store_archive_cb *cb, void *ctx)
{
	struct arc_req *r = req_new(st, ARC_QUERY, local, domain, ctx);

	r->cb.query = cb;
	r->q = *q;
	r->q.with = pool_dup(r->pool, q->with);
	r->q.after_id = pool_dup(r->pool, q->after_id);
	r->q.before_id = pool_dup(r->pool, q->before_id);
	r->q.rsm_after = pool_dup(r->pool, q->rsm_after);
	r->q.rsm_before = pool_dup(r->pool, q->rsm_before);
	r->q.ids = pool_dupv(r->pool, q->ids, q->nids);
	store_submit(st, arc_work, arc_done, r);
}

void store_archive_expire(struct store *st, const char *local,
			  const char *domain, int64_t cutoff_us,
			  store_count_cb *cb, void *ctx)
{
	struct arc_req *r = req_new(st, ARC_EXPIRE, local, domain, ctx);

	r->cb.count = cb;
	r->cutoff = cutoff_us;
	store_submit(st, arc_work, arc_done, r);
}

void store_archive_verify(struct store *st, const char *local,
			  const char *domain, store_verify_cb *cb, void *ctx)
{
	struct arc_req *r = req_new(st, ARC_VERIFY, local, domain, ctx);

	r->cb.verify = cb;
	store_submit(st, arc_work, arc_done, r);
}

void store_archive_prefs_get(struct store *st, const char *local,
			     const char *domain, store_archive_prefs_cb *cb,
			     void *ctx)
{
	struct arc_req *r = req_new(st, ARC_PREFS_GET, local, domain, ctx);

	r->cb.prefs = cb;
	store_submit(st, arc_work, arc_done, r);
}

void store_archive_prefs_set(struct store *st, const char *local,
			     const char *domain,
			     const struct store_archive_prefs *prefs,
			     store_done_cb *cb, void *ctx)
{
	struct arc_req *r = req_new(st, ARC_PREFS_SET, local, domain, ctx);

	r->cb.done = cb;
	r->prefs = *prefs;
	r->prefs.always = pool_dupv(r->pool, prefs->always, prefs->nalways);
	r->prefs.never = pool_dupv(r->pool, prefs->never, prefs->nnever);
	store_submit(st, arc_work, arc_done, r);
}

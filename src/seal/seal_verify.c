/* The verification walk (DESIGN §5): which stored records of one store
 * (offline or archive) are genuine.
 *
 * The one fact everything rests on: without k_chain nobody can produce a
 * value HMAC(k_chain, chain label of the store || lp(JID) || seq || stamp
 * || key id || epk || nonce || lp(ct) || P). The server computes it once,
 * when it seals that record at that seq in that store, with P = the
 * authentic chain of seq-1 (the row is checked before every seal). So a
 * live record whose stored chain matches for some P is the server's
 * deposit at that seq for that JID and store, whatever P we had to try.
 * Likewise a valid tomb proves that the server wiped seq s of that store
 * whose chain was the stored value. A record moved from the other store
 * verifies nowhere here (its chain was made under the other label).
 *
 * Authentic chain values of seq s-1 (set A) are: base_chain when s-1 is
 * the base, the stored chain of a record at s-1 that verified, and the
 * stored chain of a wiped record at s-1 whose tomb is valid.
 * - A not empty: the record verifies against A or it was changed
 *   (BAD_CHAIN). Its untouched successor still verifies: it is checked
 *   against the *stored* chain of this record, which a change of the other
 *   fields leaves intact.
 * - A empty (predecessor deleted, or it failed too): we try the stored and
 *   recomputed chains of the records at s-1, then (budgeted) the stored
 *   chains of nearby and out-of-range records, where a moved record's
 *   chain may sit. The recomputed chain repairs a predecessor whose chain
 *   field alone was changed; the nearby ones repair a swap. If nothing
 *   verifies: UNVERIFIABLE.
 *
 * Caught (by an A1 who lacks the seal key), and what stays deliverable:
 * - any bit of seq, stamp, key id, epk, nonce or ct of a live record:
 *   BAD_CHAIN at it (a changed seq also shows as MISSING at the old seq
 *   and DUPLICATE or UNEXPECTED at the new one); successors verify.
 * - its chain field: BAD_CHAIN at it; the successor verifies through the
 *   recomputed chain (at head: also HEAD_MISMATCH).
 * - a wiped record's tomb: BAD_TOMB; its chain field: BAD_TOMB and the
 *   next live record is UNVERIFIABLE (a wiped record cannot be recomputed).
 * - deletion of a record: MISSING, and its successor is UNVERIFIABLE
 *   (the only copy of the chain it was sealed over is gone). Deleting the
 *   tail: MISSING plus HEAD_MISMATCH against the row's or memory's head.
 * - two records' contents swapped: BAD_CHAIN/UNVERIFIABLE at both; the
 *   record after them verifies through the swapped-away chain.
 * - a record copied onto another seq: BAD_CHAIN there (seq is MACed), the
 *   overwritten record's successor UNVERIFIABLE; copied as an extra row at
 *   an existing seq: DUPLICATE for the copy; beyond head or at or below
 *   base: UNEXPECTED.
 * - the keyring row edited: BAD_ROW_MAC; with no in-memory anchor
 *   nothing can then be trusted and every live record is WITHHELD.
 * - the row (and records) replaced by an earlier genuine state while the
 *   process runs: ROLLBACK against the in-memory anchor, which the walk
 *   then uses, so deleted-since records show as MISSING.
 * - a delivered (wiped) record restored from a backup: the records alone
 *   cannot tell, but live then exceeds the count the row allows:
 *   COUNT_MISMATCH and every live record WITHHELD, since which one is the
 *   replay is unknowable. In general, if U seqs are not accounted for
 *   (missing or bad) then live - genuine must equal U for replays to be
 *   excluded (each unaccounted seq must have been live); otherwise the
 *   store is suspect and genuine records are WITHHELD.
 * Not caught: a rollback of row and records together to an earlier
 * genuine state across a restart (no in-memory anchor); anything by A2
 * (holds the seal key) or A3. */
#include "seal/seal-private.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "util/xalloc.h"

#define MAX_AUTH 8       /* authentic chain values kept for one seq */
#define MAX_CAND 16      /* unauthenticated candidates for one seq */
#define NEAR 8           /* sorted positions searched either side */
#define MAX_OUTSIDE 16   /* out-of-range records searched */

struct ent {
	uint64_t seq;
	size_t i;
};

/* What the walk knows about seq `seq` when it checks seq + 1. */
struct prev {
	uint64_t seq;
	size_t nauth, ncand;
	unsigned char auth[MAX_AUTH][SEAL_KEY_LEN];
	unsigned char cand[MAX_CAND][SEAL_KEY_LEN];
};

struct walk {
	const struct seal_keys *keys;
	const char *jid;
	enum seal_store store;
	const struct seal_record *recs;
	size_t n;
	struct ent *ents;
	struct seal_findings *out;
	size_t budget;      /* fallback HMACs left */
	int err;
};

static int ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static void add(struct seal_findings *f, enum seal_finding_kind kind,
		uint64_t seq, uint64_t count, size_t index)
{
	f->v = xgrow(f->v, &f->cap, f->n + 1, sizeof(*f->v));
	f->v[f->n++] = (struct seal_finding){ kind, seq, count, index };
}

static void add_auth(struct prev *p, const unsigned char chain[SEAL_KEY_LEN])
{
	if (p->nauth < MAX_AUTH)
		memcpy(p->auth[p->nauth++], chain, SEAL_KEY_LEN);
}

static void add_cand(struct prev *p, const unsigned char chain[SEAL_KEY_LEN])
{
	for (size_t i = 0; i < p->ncand; i++)
		if (CRYPTO_memcmp(p->cand[i], chain, SEAL_KEY_LEN) == 0)
			return;
	if (p->ncand < MAX_CAND)
		memcpy(p->cand[p->ncand++], chain, SEAL_KEY_LEN);
}

/* 1 if HMAC(prefix || P) equals want, 0 if not; errors are sticky in w. */
static int try_link(struct walk *w, struct seal_mac *prefix,
		    const unsigned char p[SEAL_KEY_LEN],
		    const unsigned char want[SEAL_KEY_LEN],
		    unsigned char got[SEAL_KEY_LEN])
{
	struct seal_mac m;

	if (seal_mac_fork(prefix, &m) != 0) {
		seal_mac_end(&m, got);
		w->err = 1;
		return 0;
	}
	seal_mac_raw(&m, p, SEAL_KEY_LEN);
	if (seal_mac_end(&m, got) != 0) {
		w->err = 1;
		return 0;
	}
	return CRYPTO_memcmp(got, want, SEAL_KEY_LEN) == 0;
}

/* The chain MAC of rec up to (not including) P. */
static int chain_prefix(struct walk *w, const struct seal_record *rec,
			struct seal_mac *m)
{
	return seal_record_chain_begin(m, w->keys, w->jid, w->store, rec);
}

/* The outcome of checking one record. */
struct check {
	bool ok;           /* live: chain verified; wiped: tomb valid */
	bool have_x;       /* x: its chain recomputed over the first P */
	unsigned char x[SEAL_KEY_LEN];
};

/* Fallback for a live record with no authentic predecessor: stored
 * chains of records near it in seq order and of out-of-range records. */
static bool try_fallback(struct walk *w, struct seal_mac *prefix,
			 const struct seal_record *rec, size_t lo, size_t hi,
			 size_t outside_lo, size_t outside_hi)
{
	unsigned char got[SEAL_KEY_LEN];
	size_t from = lo > NEAR ? lo - NEAR : 0;
	size_t to = hi + NEAR < w->n ? hi + NEAR : w->n;
	size_t outside = 0;

	for (size_t k = from; k < to; k++) {
		const struct seal_record *r = &w->recs[w->ents[k].i];
		if ((k >= lo && k < hi) || w->budget == 0)
			continue;
		w->budget--;
		if (try_link(w, prefix, r->chain, rec->chain, got))
			return true;
	}
	/* Records outside base..head: a record moved out of the range
	 * (its seq changed) carries a chain someone may need. */
	for (size_t k = 0; k < w->n && outside < MAX_OUTSIDE; k++) {
		const struct seal_record *r = &w->recs[w->ents[k].i];
		if (k >= outside_lo && k < outside_hi)
			continue;
		if (k >= from && k < to)
			continue;
		outside++;
		if (w->budget == 0)
			break;
		w->budget--;
		if (try_link(w, prefix, r->chain, rec->chain, got))
			return true;
	}
	return false;
}

static void check_live(struct walk *w, const struct seal_record *rec,
		       const struct prev *prev, size_t lo, size_t hi,
		       size_t in_lo, size_t in_hi, struct check *c)
{
	unsigned char got[SEAL_KEY_LEN];
	struct seal_mac prefix;

	memset(c, 0, sizeof(*c));
	if (rec->ct == NULL || rec->ct_len < SEAL_TAG_LEN)
		return;
	if (chain_prefix(w, rec, &prefix) != 0) {
		w->err = 1;
		return;
	}
	/* The usual case, one authentic predecessor: no fork of the MAC. */
	if (prev->nauth == 1) {
		seal_mac_raw(&prefix, prev->auth[0], SEAL_KEY_LEN);
		if (seal_mac_end(&prefix, c->x) != 0) {
			w->err = 1;
			return;
		}
		c->have_x = true;
		c->ok = CRYPTO_memcmp(c->x, rec->chain, SEAL_KEY_LEN) == 0;
		return;
	}
	for (size_t k = 0; k < prev->nauth && !c->ok; k++) {
		c->ok = try_link(w, &prefix, prev->auth[k], rec->chain, got);
		if (k == 0) {
			memcpy(c->x, got, SEAL_KEY_LEN);
			c->have_x = true;
		}
	}
	/* Only without an authentic predecessor may other values be tried:
	 * otherwise a record from a forked history would pass. */
	if (prev->nauth == 0) {
		for (size_t k = 0; k < prev->ncand && !c->ok; k++) {
			c->ok = try_link(w, &prefix, prev->cand[k], rec->chain, got);
			if (k == 0) {
				memcpy(c->x, got, SEAL_KEY_LEN);
				c->have_x = true;
			}
		}
		if (!c->ok)
			c->ok = try_fallback(w, &prefix, rec, lo, hi, in_lo, in_hi);
	}
	seal_mac_end(&prefix, got);
}

static void check_wiped(struct walk *w, const struct seal_record *rec,
			struct check *c)
{
	unsigned char want[SEAL_KEY_LEN];

	memset(c, 0, sizeof(*c));
	if (seal_record_tomb(w->keys, w->jid, w->store, rec->seq, rec->chain,
			     want) != 0) {
		w->err = 1;
		return;
	}
	c->ok = CRYPTO_memcmp(want, rec->tomb, SEAL_KEY_LEN) == 0;
}

void seal_findings_free(struct seal_findings *f)
{
	free(f->v);
	free(f->state);
	memset(f, 0, sizeof(*f));
}

static bool anchors_equal(const struct seal_chain *a, const struct seal_chain *b)
{
	return a->base_seq == b->base_seq && a->head_seq == b->head_seq &&
	       a->live == b->live && a->live_bytes == b->live_bytes &&
	       CRYPTO_memcmp(a->base_chain, b->base_chain, SEAL_KEY_LEN) == 0 &&
	       CRYPTO_memcmp(a->head_chain, b->head_chain, SEAL_KEY_LEN) == 0;
}

int seal_verify(const struct seal_keys *keys, const struct seal_keyring *kr,
		enum seal_store store, const struct seal_record *recs,
		size_t nrecs, const struct seal_chain *mem,
		struct seal_findings *out)
{
	struct seal_chain row, a;
	struct walk w;
	struct prev *pair, *prev, *cur;
	struct check *checks;
	uint64_t next, covered = 0, genuine = 0, genuine_bytes = 0;
	size_t pos = 0, in_lo, in_hi, head_idx = SIZE_MAX;
	bool row_ok, trusted, suspect = false, compacting;
	bool head_present = false;

	memset(out, 0, sizeof(*out));
	if (seal_store_label(store) == NULL)
		return -1;
	out->nrecs = nrecs;
	out->state = xcalloc(nrecs ? nrecs : 1, sizeof(*out->state));
	if (seal_jid_ok(kr->jid) != 0) {
		/* No JID, no MAC input: nothing can be checked. */
		add(out, SEAL_F_BAD_ROW_MAC, 0, 1, SIZE_MAX);
		for (size_t i = 0; i < nrecs; i++)
			out->state[i] = SEAL_REC_BAD;
		out->nbad = nrecs;
		return 1;
	}

	row_ok = seal_keyring_mac_check(keys, kr) == 0;
	if (!row_ok)
		add(out, SEAL_F_BAD_ROW_MAC, 0, 1, SIZE_MAX);
	seal_anchor_of(kr, store, &row);
	a = mem != NULL ? *mem : row;
	if (mem != NULL && !anchors_equal(mem, &row))
		add(out, SEAL_F_ROLLBACK, row.head_seq, 1, SIZE_MAX);
	trusted = row_ok || mem != NULL;
	compacting = row_ok && (mem == NULL || anchors_equal(mem, &row));
	out->compact_seq = a.base_seq;
	memcpy(out->compact_chain, a.base_chain, SEAL_KEY_LEN);

	w = (struct walk){ keys, kr->jid, store, recs, nrecs, NULL, out,
			   16 * nrecs + 256, 0 };
	w.ents = xmalloc((nrecs ? nrecs : 1) * sizeof(*w.ents));
	for (size_t i = 0; i < nrecs; i++)
		w.ents[i] = (struct ent){ recs[i].seq, i };
	qsort(w.ents, nrecs, sizeof(*w.ents), ent_cmp);
	checks = xcalloc(nrecs ? nrecs : 1, sizeof(*checks));
	pair = xcalloc(2, sizeof(*pair));
	prev = pair;
	cur = pair + 1;

	/* At or below base: compaction deleted those rows in the same
	 * transaction that moved base, so any left is planted. */
	while (pos < nrecs && w.ents[pos].seq <= a.base_seq) {
		add(out, SEAL_F_UNEXPECTED, w.ents[pos].seq, 1, w.ents[pos].i);
		out->state[w.ents[pos].i] = SEAL_REC_BAD;
		pos++;
	}
	in_lo = pos;
	in_hi = pos;
	while (in_hi < nrecs && w.ents[in_hi].seq <= a.head_seq)
		in_hi++;

	prev->seq = a.base_seq;
	add_auth(prev, a.base_chain);
	next = a.base_seq + 1;
	while (pos < in_hi) {
		uint64_t s = w.ents[pos].seq;
		size_t end = pos, nok = 0, keep = SIZE_MAX;
		bool same = true;

		while (end < in_hi && w.ents[end].seq == s)
			end++;
		if (s > next) {
			add(out, SEAL_F_MISSING, next, s - next, SIZE_MAX);
			compacting = false;
			memset(prev, 0, sizeof(*prev));
			prev->seq = s - 1;
		}
		for (size_t k = pos; k < end; k++) {
			const struct seal_record *r = &recs[w.ents[k].i];
			struct check *c = &checks[w.ents[k].i];
			if (r->wiped)
				check_wiped(&w, r, c);
			else
				check_live(&w, r, prev, pos, end, in_lo, in_hi, c);
			if (c->ok) {
				if (keep == SIZE_MAX)
					keep = k;
				else if (r->wiped != recs[w.ents[keep].i].wiped ||
					 CRYPTO_memcmp(r->chain, recs[w.ents[keep].i].chain,
						SEAL_KEY_LEN) != 0)
					same = false;
				nok++;
			}
		}
		/* Several verified records at one seq: identical copies leave
		 * the first standing; different ones (a forked history) are
		 * all suspect. */
		if (nok > 1 && !same)
			keep = SIZE_MAX;
		memset(cur, 0, sizeof(*cur));
		cur->seq = s;
		for (size_t k = pos; k < end; k++) {
			size_t i = w.ents[k].i;
			const struct seal_record *r = &recs[i];
			struct check *c = &checks[i];

			if (c->ok)
				add_auth(cur, r->chain);
			add_cand(cur, r->chain);
			if (c->have_x)
				add_cand(cur, c->x);
			if (k == keep) {
				out->state[i] = r->wiped ? SEAL_REC_WIPED
							 : SEAL_REC_GENUINE;
				continue;
			}
			out->state[i] = SEAL_REC_BAD;
			if (end - pos > 1)
				add(out, SEAL_F_DUPLICATE, s, 1, i);
			else if (r->wiped)
				add(out, SEAL_F_BAD_TOMB, s, 1, i);
			else
				add(out, prev->nauth > 0 ? SEAL_F_BAD_CHAIN
							  : SEAL_F_UNVERIFIABLE,
				    s, 1, i);
		}
		if (keep != SIZE_MAX) {
			const struct seal_record *r = &recs[w.ents[keep].i];
			covered++;
			if (!r->wiped) {
				genuine++;
				genuine_bytes += r->ct_len;
			}
		}
		if (compacting && end - pos == 1 && keep == pos &&
		    recs[w.ents[keep].i].wiped) {
			out->compact_seq = s;
			memcpy(out->compact_chain, recs[w.ents[keep].i].chain,
			       SEAL_KEY_LEN);
		} else {
			compacting = false;
		}
		if (s == a.head_seq) {
			head_present = true;
			head_idx = keep != SIZE_MAX ? w.ents[keep].i : SIZE_MAX;
		}
		{
			struct prev *t = prev;
			prev = cur;
			cur = t;
		}
		next = s + 1;
		pos = end;
	}
	if (a.head_seq > a.base_seq && next <= a.head_seq)
		add(out, SEAL_F_MISSING, next, a.head_seq - next + 1, SIZE_MAX);
	for (; pos < nrecs; pos++) {
		add(out, SEAL_F_UNEXPECTED, w.ents[pos].seq, 1, w.ents[pos].i);
		out->state[w.ents[pos].i] = SEAL_REC_BAD;
	}

	/* The head: the row (or memory) names the chain of the last record;
	 * a missing tail shows here even if MISSING was not reported. */
	if (a.head_seq < a.base_seq) {
		add(out, SEAL_F_HEAD_MISMATCH, a.head_seq, 1, SIZE_MAX);
		suspect = true;
	} else if (a.head_seq == a.base_seq) {
		if (CRYPTO_memcmp(a.head_chain, a.base_chain, SEAL_KEY_LEN) != 0) {
			add(out, SEAL_F_HEAD_MISMATCH, a.head_seq, 1, SIZE_MAX);
			suspect = true;
		}
	} else if (!head_present) {
		add(out, SEAL_F_HEAD_MISMATCH, a.head_seq, 1, SIZE_MAX);
	} else if (head_idx != SIZE_MAX &&
		   CRYPTO_memcmp(recs[head_idx].chain, a.head_chain, SEAL_KEY_LEN) != 0) {
		/* A verified record that is not the head the row knows: the
		 * records come from another history. */
		add(out, SEAL_F_HEAD_MISMATCH, a.head_seq, 1, head_idx);
		suspect = true;
	}

	/* Replays of wiped records: see the comment at the top. */
	if (a.head_seq >= a.base_seq) {
		uint64_t unaccounted = a.head_seq - a.base_seq - covered;
		if (genuine > a.live || a.live - genuine != unaccounted ||
		    (unaccounted == 0 && genuine_bytes != a.live_bytes)) {
			add(out, SEAL_F_COUNT_MISMATCH, 0, 1, SIZE_MAX);
			suspect = true;
		}
	}

	for (size_t i = 0; i < nrecs; i++) {
		if (out->state[i] == SEAL_REC_GENUINE && (suspect || !trusted))
			out->state[i] = SEAL_REC_WITHHELD;
		switch (out->state[i]) {
		case SEAL_REC_GENUINE: out->ngenuine++; break;
		case SEAL_REC_WITHHELD: out->nwithheld++; break;
		case SEAL_REC_BAD: out->nbad++; break;
		case SEAL_REC_WIPED: break;
		}
	}
	if (!row_ok || (mem != NULL && !anchors_equal(mem, &row))) {
		out->compact_seq = a.base_seq;
		memcpy(out->compact_chain, a.base_chain, SEAL_KEY_LEN);
	}

	free(pair);
	free(checks);
	free(w.ents);
	if (w.err) {
		seal_findings_free(out);
		return -1;
	}
	return out->n > 0 ? 1 : 0;
}

/* ---- one record at a time ----
 *
 * Why a record can be judged alone in a tight store (seal.h), giving the
 * verdict the walk gives it:
 * - rec's chain verifies over P only if the server sealed exactly these
 *   fields (seq, stamp, key id, epk, nonce, ct) at this seq of this JID
 *   and store over P: nobody else can make that HMAC. Whether pred itself
 *   is intact does not matter: the walk too accepts a record over the
 *   stored chain of a changed predecessor (its candidates), and a change
 *   of pred's chain field makes the check fail here, so the caller walks
 *   and the walk recomputes that chain. Changed, moved or inserted
 *   records therefore fail, as in the walk.
 * - Replay: the walk's only defence against a removed record restored
 *   from a backup is the live count. Tight means live == head - base:
 *   nothing in base+1 .. head was ever removed in the history the row
 *   (and this process's anchor) describes, so no record there can be a
 *   replayed removed one; records at or below base or above head are
 *   refused here as in the walk (UNEXPECTED). A wiped row in that range
 *   comes from another history: pred must be live, else the caller walks
 *   (the walk then finds the counts do not add up).
 * - Rollback: the anchor must equal the row, as the walk would otherwise
 *   report ROLLBACK. Across a restart (no anchor) the caller walks.
 * - The head: a record that verifies at head but does not carry
 *   head_chain comes from another history, which makes the walk withhold
 *   everything; here it fails, and the caller walks.
 * - Duplicates: the caller passes only seqs holding exactly one row
 *   (several make it walk).
 * What only the walk sees: findings about records the caller did not
 * look at. Deleted or changed records elsewhere do not change the walk's
 * verdict on this one; but a wiped row planted elsewhere in the range
 * (a tomb from another history) makes the walk call the store suspect
 * and withhold every record, although each verified record is still the
 * server's deposit of this history. The caller reports such findings at
 * its next walk. */

bool seal_chain_tight(const struct seal_keys *keys,
		      const struct seal_keyring *kr, enum seal_store store,
		      const struct seal_chain *mem)
{
	struct seal_chain row;

	if (seal_store_label(store) == NULL || mem == NULL ||
	    seal_jid_ok(kr->jid) != 0 || seal_keyring_mac_check(keys, kr) != 0)
		return false;
	seal_anchor_of(kr, store, &row);
	if (!anchors_equal(mem, &row) || row.head_seq < row.base_seq ||
	    row.live != row.head_seq - row.base_seq)
		return false;
	if (row.head_seq == row.base_seq &&
	    (row.live_bytes != 0 ||
	     CRYPTO_memcmp(row.head_chain, row.base_chain, SEAL_KEY_LEN) != 0))
		return false;
	return true;
}

int seal_verify_link(const struct seal_keys *keys,
		     const struct seal_keyring *kr, enum seal_store store,
		     const struct seal_record *rec,
		     const struct seal_record *pred)
{
	const struct seal_chain *c;
	const unsigned char *p;
	unsigned char x[SEAL_KEY_LEN];

	if (seal_store_label(store) == NULL)
		return -1;
	c = &kr->chains[store];
	if (rec->wiped || rec->ct == NULL || rec->ct_len < SEAL_TAG_LEN ||
	    rec->seq <= c->base_seq || rec->seq > c->head_seq)
		return 0;
	if (rec->seq - 1 == c->base_seq) {
		if (pred != NULL)
			return 0;
		p = c->base_chain;
	} else {
		if (pred == NULL || pred->wiped || pred->seq != rec->seq - 1)
			return 0;
		p = pred->chain;
	}
	if (seal_record_chain(keys, kr->jid, store, rec, p, x) != 0)
		return -1;
	if (CRYPTO_memcmp(x, rec->chain, SEAL_KEY_LEN) != 0)
		return 0;
	if (rec->seq == c->head_seq &&
	    CRYPTO_memcmp(rec->chain, c->head_chain, SEAL_KEY_LEN) != 0)
		return 0;
	return 1;
}

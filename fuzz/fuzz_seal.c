/* libFuzzer target: what roostd and `roostctl verify` do with a sealed
 * store read from a database they cannot trust (DESIGN §5, threat A1):
 * decode the keyring row, check its MAC, unlock it, walk the records
 * (seal_verify) and open the ones the walk calls genuine. Nothing here
 * may crash, and without the seal key nothing may pass: a record the walk
 * accepts must be one the seed corpus sealed, so it opens. See
 * fuzz_seal.h for the input and seal_corpus.c for the seeds (genuine
 * stores, which the fuzzer then corrupts).
 *
 * Run it with -use_cmp=0 (scripts/fuzz.sh does): the walk recomputes
 * chains over records it is given and compares them with memcmp, and
 * libFuzzer's memcmp hook would feed those valid MACs back into its
 * mutations, forging records that only the seal key can make. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_seal.h"
#include "seal/seal.h"
#include "util/xalloc.h"

#define MAX_RECORDS 256

struct reader {
	const uint8_t *p;
	size_t left;
};

static bool take(struct reader *r, void *dst, size_t n)
{
	if (n > r->left)
		return false;
	if (dst != NULL)
		memcpy(dst, r->p, n);
	r->p += n;
	r->left -= n;
	return true;
}

static bool take_u64(struct reader *r, uint64_t *v)
{
	uint8_t b[8];

	if (!take(r, b, 8))
		return false;
	*v = 0;
	for (int i = 0; i < 8; i++)
		*v = *v << 8 | b[i];
	return true;
}

static bool take_u32(struct reader *r, uint32_t *v)
{
	uint8_t b[4];

	if (!take(r, b, 4))
		return false;
	*v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	     (uint32_t)b[2] << 8 | b[3];
	return true;
}

static struct seal_keys keys;

static void init(void)
{
	static bool done;
	unsigned char k[SEAL_KEY_LEN];

	if (done)
		return;
	memset(k, FUZZ_SEAL_KEY_BYTE, sizeof(k));
	if (seal_keys_derive(k, &keys) != 0)
		abort();
	done = true;
}

/* A record as the SQLite backend reads it: ct is the column's bytes; a
 * wiped record has no ct and whatever ct_len the row claims. */
static bool take_record(struct reader *r, struct seal_record *rec)
{
	uint64_t stamp;
	uint8_t wiped;
	uint32_t len;

	memset(rec, 0, sizeof(*rec));
	if (!take_u64(r, &rec->seq) || !take_u64(r, &stamp) ||
	    !take_u32(r, &rec->key_id) || !take(r, rec->epk, SEAL_KEY_LEN) ||
	    !take(r, rec->nonce, SEAL_NONCE_LEN) || !take(r, &wiped, 1) ||
	    !take_u32(r, &len))
		return false;
	rec->stamp = (int64_t)stamp;
	rec->wiped = wiped & 1;
	if (rec->wiped) {
		/* store_sqlite reads it from an int64 column: any value. */
		rec->ct_len = (wiped & 2) ? SIZE_MAX - len : len;
	} else {
		if (len > r->left)
			len = (uint32_t)r->left;
		rec->ct = xmalloc(len + 1);
		take(r, rec->ct, len);
		rec->ct_len = len;
	}
	take(r, rec->chain, SEAL_KEY_LEN);
	take(r, rec->tomb, SEAL_KEY_LEN);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader r = { data, size };
	struct seal_record *recs = NULL;
	struct seal_keyring kr;
	struct seal_chain anchor, *mem = NULL;
	struct seal_findings f;
	struct seal_unlocked *u = NULL;
	unsigned char ck[SEAL_KEY_LEN];
	enum seal_store store;
	uint8_t flags, lenb[2];
	size_t n = 0, krlen;
	const char *why;
	bool strict;
	int ret;

	init();
	if (!take(&r, &flags, 1))
		return 0;
	store = flags & FUZZ_SEAL_F_ARCHIVE ? SEAL_STORE_ARCHIVE :
					      SEAL_STORE_OFFLINE;
	if (flags & FUZZ_SEAL_F_ANCHOR) {
		if (!take_u64(&r, &anchor.base_seq) ||
		    !take(&r, anchor.base_chain, SEAL_KEY_LEN) ||
		    !take_u64(&r, &anchor.head_seq) ||
		    !take(&r, anchor.head_chain, SEAL_KEY_LEN) ||
		    !take_u64(&r, &anchor.live) ||
		    !take_u64(&r, &anchor.live_bytes))
			return 0;
		mem = &anchor;
	}
	if (!take(&r, lenb, 2))
		return 0;
	krlen = (size_t)lenb[0] << 8 | lenb[1];
	if (krlen > r.left)
		krlen = r.left;
	/* The row's blob as its own allocation, so ASan sees over-reads. */
	{
		uint8_t *blob = xmalloc(krlen ? krlen : 1);

		take(&r, blob, krlen);
		ret = seal_keyring_decode(blob, krlen, FUZZ_SEAL_JID, &kr);
		free(blob);
	}
	if (ret != 0)
		return 0;
	if (!mem && (flags & FUZZ_SEAL_F_ROW_ANCHOR)) {
		seal_anchor_of(&kr, store, &anchor);
		mem = &anchor;
	}
	recs = xcalloc(MAX_RECORDS, sizeof(*recs));
	while (n < MAX_RECORDS && take_record(&r, &recs[n]))
		n++;

	memset(ck, FUZZ_SEAL_CK_BYTE, sizeof(ck));
	if (seal_keyring_mac_check(&keys, &kr) == 0 &&
	    seal_keyring_unlock(&keys, &kr, SCRAM_SHA256, ck, &u, &why) != 0)
		u = NULL;

	memset(&f, 0, sizeof(f));
	ret = seal_verify(&keys, &kr, store, recs, n, mem, &f);
	if (getenv("FUZZ_SEAL_DEBUG") != NULL)
		fprintf(stderr, "store %d: %zu records, walk %d, %zu findings, "
			"%zu genuine, %zu withheld, %zu bad, unlocked %d\n",
			(int)store, n, ret, f.n, f.ngenuine, f.nwithheld,
			f.nbad, u != NULL);
	if (getenv("FUZZ_SEAL_DEBUG") != NULL && ret >= 0)
		for (size_t i = 0; i < f.n; i++)
			fprintf(stderr, "  finding %s seq %llu (flags %u)\n",
				seal_finding_name(f.v[i].kind),
				(unsigned long long)f.v[i].seq, flags);
	if (ret == 0 && (f.n != 0 || f.nbad != 0 || f.nwithheld != 0))
		abort();
	/* Whether every genuine record must open with this row's keys: when
	 * the walk is clean, or when it trusted this very row (no memory
	 * anchor) and the row unlocked. With an anchor from memory the walk
	 * may rightly call records genuine whose row was damaged (it cannot
	 * unlock then) or that a later keyring of the same user sealed. */
	strict = ret == 0 || (mem == NULL && u != NULL);
	if (ret >= 0) {
		if (f.nrecs != n || f.ngenuine + f.nwithheld + f.nbad > n)
			abort();
		for (size_t i = 0; i < n; i++) {
			unsigned char *pt;
			size_t len;

			if (f.state[i] != SEAL_REC_GENUINE || !strict)
				continue;
			/* Only the seeds' own records verify, and those were
			 * sealed to this keyring: they must open. */
			if (recs[i].wiped || u == NULL ||
			    seal_record_open(u, FUZZ_SEAL_JID, store, &recs[i],
					     &pt, &len) != 0) {
				fprintf(stderr, "genuine record %zu (seq %llu, "
					"key %u, ct_len %zu, stamp %lld) does not "
					"open (keyring key %u)\n", i,
					(unsigned long long)recs[i].seq,
					recs[i].key_id, recs[i].ct_len,
					(long long)recs[i].stamp, kr.key_id);
				abort();
			}
			xfree_secret(pt, len);
		}
		for (size_t i = 0; i < f.n; i++)
			(void)seal_finding_name(f.v[i].kind);
	}
	seal_findings_free(&f);
	seal_unlocked_free(u);
	for (size_t i = 0; i < n; i++)
		seal_record_clear(&recs[i]);
	free(recs);
	return 0;
}

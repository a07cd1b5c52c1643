/* Writes the seed corpus of fuzz_seal (see fuzz_seal.h): genuine sealed
 * stores of one user, one history, snapshots of it at several points
 * (records sealed, some removed, the base compacted, a password change
 * with a retired key). One history, so that whatever the fuzzer splices
 * together from the seeds, a record the walk accepts is one this user's
 * keyring opens.
 *   seal_corpus DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_seal.h"
#include "seal/seal.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define NREC 12

static struct seal_keys keys;
static struct seal_keyring kr;
static struct seal_record recs[2][NREC + 1]; /* per store, by seq */
static size_t nrecs[2];
static int nfiles;

static void put_u64(struct buf *b, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		unsigned char c = (unsigned char)(v >> (8 * i));
		buf_append(b, &c, 1);
	}
}

static void put_u32(struct buf *b, uint32_t v)
{
	for (int i = 3; i >= 0; i--) {
		unsigned char c = (unsigned char)(v >> (8 * i));
		buf_append(b, &c, 1);
	}
}

static void snapshot(const char *dir, const char *name, enum seal_store st,
		     unsigned flags)
{
	struct buf b = BUF_INIT, row = BUF_INIT;
	unsigned char f = (unsigned char)(flags | (st == SEAL_STORE_ARCHIVE));
	unsigned char len[2];
	char path[512];
	FILE *out;

	buf_append(&b, &f, 1);
	seal_keyring_encode(&kr, &row);
	len[0] = (unsigned char)(row.len >> 8);
	len[1] = (unsigned char)row.len;
	buf_append(&b, len, 2);
	buf_append(&b, row.data, row.len);
	for (size_t i = 1; i <= nrecs[st]; i++) {
		const struct seal_record *r = &recs[st][i];
		unsigned char w = r->wiped;

		if (r->seq == 0)
			continue; /* compacted away */
		put_u64(&b, r->seq);
		put_u64(&b, (uint64_t)r->stamp);
		put_u32(&b, r->key_id);
		buf_append(&b, r->epk, SEAL_KEY_LEN);
		buf_append(&b, r->nonce, SEAL_NONCE_LEN);
		buf_append(&b, &w, 1);
		put_u32(&b, (uint32_t)r->ct_len);
		if (!r->wiped)
			buf_append(&b, r->ct, r->ct_len);
		buf_append(&b, r->chain, SEAL_KEY_LEN);
		buf_append(&b, r->tomb, SEAL_KEY_LEN);
	}
	snprintf(path, sizeof(path), "%s/%02d-%s", dir, nfiles++, name);
	out = fopen(path, "wb");
	if (out == NULL || fwrite(b.data, 1, b.len, out) != b.len ||
	    fclose(out) != 0) {
		perror(path);
		exit(1);
	}
	buf_free(&b);
	buf_free(&row);
}

static void seal_one(struct seal_sealer *s, enum seal_store st, int64_t stamp,
		     const char *text)
{
	const struct seal_chain *c = &kr.chains[st];
	struct seal_record *r = &recs[st][c->head_seq + 1];

	if (seal_record_seal(s, &keys, FUZZ_SEAL_JID, st, kr.pk, kr.key_id,
			     c->head_seq + 1, stamp, c->head_chain, text,
			     strlen(text), r) != 0 ||
	    seal_keyring_note_seal(&keys, &kr, st, r) != 0) {
		fprintf(stderr, "seal failed\n");
		exit(1);
	}
	nrecs[st] = r->seq;
}

static void wipe(enum seal_store st, uint64_t seq)
{
	struct seal_record *r = &recs[st][seq];
	size_t len = r->ct_len;

	if (seal_record_wipe(&keys, FUZZ_SEAL_JID, st, r) != 0 ||
	    seal_keyring_note_wipe(&keys, &kr, st, len) != 0) {
		fprintf(stderr, "wipe failed\n");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	unsigned char k[SEAL_KEY_LEN], ck1[20], ck256[32];
	struct seal_unlocked *u = NULL, *u2 = NULL;
	struct seal_sealer *s;
	const char *dir = argc > 1 ? argv[1] : ".";
	int64_t t = 1700000000000000;

	memset(k, FUZZ_SEAL_KEY_BYTE, sizeof(k));
	memset(ck1, FUZZ_SEAL_CK_BYTE, sizeof(ck1));
	memset(ck256, FUZZ_SEAL_CK_BYTE, sizeof(ck256));
	if (seal_keys_derive(k, &keys) != 0 ||
	    seal_keyring_create(&keys, FUZZ_SEAL_JID, ck1, ck256, &kr, &u) != 0 ||
	    (s = seal_sealer_new(0)) == NULL)
		return 1;

	snapshot(dir, "empty", SEAL_STORE_OFFLINE, 0);
	seal_one(s, SEAL_STORE_OFFLINE, t += 1000, "<message to='juliet@example.org'><body>one</body></message>");
	snapshot(dir, "one", SEAL_STORE_OFFLINE, FUZZ_SEAL_F_ROW_ANCHOR);
	for (int i = 0; i < 4; i++)
		seal_one(s, SEAL_STORE_OFFLINE, t += 1000, "<message><body>more</body></message>");
	snapshot(dir, "five", SEAL_STORE_OFFLINE, 0);
	wipe(SEAL_STORE_OFFLINE, 2);
	snapshot(dir, "wiped-2", SEAL_STORE_OFFLINE, FUZZ_SEAL_F_ROW_ANCHOR);
	wipe(SEAL_STORE_OFFLINE, 1);
	snapshot(dir, "wiped-1-2", SEAL_STORE_OFFLINE, 0);
	/* Compaction: records 1..2 go, the base moves. */
	if (seal_keyring_note_compact(&keys, &kr, SEAL_STORE_OFFLINE, 2,
				      recs[SEAL_STORE_OFFLINE][2].chain) != 0)
		return 1;
	seal_record_clear(&recs[SEAL_STORE_OFFLINE][1]);
	seal_record_clear(&recs[SEAL_STORE_OFFLINE][2]);
	memset(&recs[SEAL_STORE_OFFLINE][1], 0, sizeof(recs[0][0]));
	memset(&recs[SEAL_STORE_OFFLINE][2], 0, sizeof(recs[0][0]));
	snapshot(dir, "compacted", SEAL_STORE_OFFLINE, 0);

	for (int i = 0; i < 3; i++)
		seal_one(s, SEAL_STORE_ARCHIVE, t += 1000, "<message><body>archived</body></message>");
	wipe(SEAL_STORE_ARCHIVE, 2);
	snapshot(dir, "archive", SEAL_STORE_ARCHIVE, FUZZ_SEAL_F_ROW_ANCHOR);

	/* A password change: the old pair is retired, new records use the
	 * new one, old ones still open. */
	if (seal_keyring_rekey(&keys, &kr, u, ck1, ck256, &u2) != 0)
		return 1;
	seal_one(s, SEAL_STORE_OFFLINE, t += 1000, "<message><body>after rekey</body></message>");
	seal_one(s, SEAL_STORE_OFFLINE, t += 1000, "<message><body>x</body></message>");
	snapshot(dir, "rekeyed", SEAL_STORE_OFFLINE, 0);
	snapshot(dir, "rekeyed-archive", SEAL_STORE_ARCHIVE, FUZZ_SEAL_F_ROW_ANCHOR);

	seal_unlocked_free(u);
	seal_unlocked_free(u2);
	seal_sealer_free(s);
	for (int st = 0; st < 2; st++)
		for (size_t i = 0; i <= NREC; i++)
			seal_record_clear(&recs[st][i]);
	seal_keys_clear(&keys);
	printf("%d seeds in %s\n", nfiles, dir);
	return 0;
}

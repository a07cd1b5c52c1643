/* Unit tests for src/seal (DESIGN §5): the construction checked against an
 * independent re-computation from the spec, sealing and opening, keyrings,
 * the row format, and the verification walk against each kind of
 * tampering. `test_seal --bench` (or ROOST_SEAL_BENCH=1) prints µs per
 * operation instead. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "sasl/scram.h"
#include "seal/seal.h"
#include "seal/seal-private.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define JID "juliet@capulet.example"
#define MAXRECS 64

static const unsigned char seal_key[32] = {
	0x52, 0x6f, 0x6f, 0x73, 0x74, 0x20, 0x73, 0x65, 0x61, 0x6c, 0x20, 0x6b,
	0x65, 0x79, 0x20, 0x66, 0x6f, 0x72, 0x20, 0x74, 0x65, 0x73, 0x74, 0x73,
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
};

static struct seal_keys K;

/* ---- an independent rendering of the spec, with HMAC() and EVP ---- */

static void ref_hmac(const unsigned char *key, size_t key_len,
		     const struct buf *in, unsigned char out[32])
{
	unsigned int n;
	assert_non_null(HMAC(EVP_sha256(), key, (int)key_len,
			     (const unsigned char *)in->data, in->len, out, &n));
	assert_int_equal(n, 32);
}

/* RFC 5869, written out. */
static void ref_hkdf(const unsigned char *salt, size_t salt_len,
		     const unsigned char *ikm, size_t ikm_len,
		     const void *info, size_t info_len, unsigned char out[32])
{
	static const unsigned char zeros[32];
	unsigned char prk[32];
	struct buf b = BUF_INIT;

	b.len = 0;
	buf_append(&b, ikm, ikm_len);
	ref_hmac(salt ? salt : zeros, salt ? salt_len : 32, &b, prk);
	buf_reset(&b);
	buf_append(&b, info, info_len);
	buf_append(&b, "\x01", 1);
	ref_hmac(prk, 32, &b, out);
	buf_free(&b);
}

static void put_be(struct buf *b, uint64_t v, int bytes)
{
	unsigned char p[8];
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
	buf_append(b, p, (size_t)bytes);
}

static void put_lp(struct buf *b, const void *p, size_t len)
{
	put_be(b, len, 4);
	buf_append(b, p, len);
}

static int ref_aead_open(const unsigned char key[32], const unsigned char nonce[12],
			 const struct buf *aad, const unsigned char *ct,
			 size_t ct_len, unsigned char *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n, ok;

	ok = EVP_DecryptInit_ex(c, EVP_chacha20_poly1305(), NULL, key, nonce) == 1 &&
	     EVP_DecryptUpdate(c, NULL, &n, (const unsigned char *)aad->data,
			       (int)aad->len) == 1 &&
	     EVP_DecryptUpdate(c, out, &n, ct, (int)(ct_len - 16)) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16,
				 (void *)(ct + ct_len - 16)) == 1 &&
	     EVP_DecryptFinal_ex(c, out + ct_len - 16, &n) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

static void ref_x25519(const unsigned char sk[32], const unsigned char peer[32],
		       unsigned char out[32])
{
	EVP_PKEY *a = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, 32);
	EVP_PKEY *b = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(a, NULL);
	size_t n = 32;

	assert_int_equal(EVP_PKEY_derive_init(c), 1);
	assert_int_equal(EVP_PKEY_derive_set_peer(c, b), 1);
	assert_int_equal(EVP_PKEY_derive(c, out, &n), 1);
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
}

/* SCRAM's ClientKey as a client computes it (RFC 5802 §3). */
static void ref_client_key(enum scram_hash h, const char *password,
			   const unsigned char *salt, size_t salt_len,
			   unsigned iterations, unsigned char *out)
{
	const EVP_MD *md = h == SCRAM_SHA256 ? EVP_sha256() : EVP_sha1();
	int hlen = EVP_MD_get_size(md);
	unsigned char salted[32];
	unsigned int n;

	assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt,
					   (int)salt_len, (int)iterations, md,
					   hlen, salted), 1);
	HMAC(md, salted, hlen, (const unsigned char *)"Client Key", 10, out, &n);
}

/* ---- a user's store, as the store module keeps it ---- */

struct tstore {
	struct seal_keyring kr;
	enum seal_store store;  /* the store the walk and ts_wipe are about */
	enum seal_store rec_store[MAXRECS]; /* which chain recs[i] is on */
	struct seal_record recs[MAXRECS];
	size_t n;
	struct seal_unlocked *u;
	struct seal_sealer *s;
	unsigned char ck1[20], ck256[32];
};

static void ts_init(struct tstore *t)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(RAND_bytes(t->ck1, sizeof(t->ck1)), 1);
	assert_int_equal(RAND_bytes(t->ck256, sizeof(t->ck256)), 1);
	assert_int_equal(seal_keyring_create(&K, JID, t->ck1, t->ck256, &t->kr,
					     &t->u), 0);
	t->s = seal_sealer_new(0);
	assert_non_null(t->s);
}

static void msg_of(size_t i, char *buf, size_t len)
{
	snprintf(buf, len, "<message from='romeo@montague.example'><body>"
		 "message %zu</body></message>", i);
}

/* Appends `count` records sealed onto the chain of `store`. */
static void ts_deposit(struct tstore *t, size_t count, enum seal_store store)
{
	for (size_t i = 0; i < count; i++) {
		struct seal_record *r = &t->recs[t->n];
		struct seal_chain *c = &t->kr.chains[store];
		char msg[128];

		assert_true(t->n < MAXRECS);
		msg_of(c->head_seq + 1, msg, sizeof(msg));
		assert_int_equal(seal_record_seal(t->s, &K, JID, store, t->kr.pk,
						  t->kr.key_id, c->head_seq + 1,
						  1700000000000000 + (int64_t)t->n,
						  c->head_chain, msg,
						  strlen(msg), r), 0);
		assert_int_equal(seal_keyring_note_seal(&K, &t->kr, store, r), 0);
		t->rec_store[t->n] = store;
		t->n++;
	}
}

static void ts_wipe(struct tstore *t, size_t i)
{
	size_t len = t->recs[i].ct_len;
	assert_int_equal(seal_record_wipe(&K, JID, t->store, &t->recs[i]), 0);
	assert_int_equal(seal_keyring_note_wipe(&K, &t->kr, t->store, len), 0);
}

/* Deletes recs[i] (the database row) by moving the rest down. */
static void ts_delete(struct tstore *t, size_t i)
{
	seal_record_clear(&t->recs[i]);
	memmove(&t->recs[i], &t->recs[i + 1], (t->n - i - 1) * sizeof(t->recs[0]));
	memmove(&t->rec_store[i], &t->rec_store[i + 1],
		(t->n - i - 1) * sizeof(t->rec_store[0]));
	t->n--;
	memset(&t->recs[t->n], 0, sizeof(t->recs[0]));
}

static void ts_free(struct tstore *t)
{
	for (size_t i = 0; i < t->n; i++)
		seal_record_clear(&t->recs[i]);
	seal_unlocked_free(t->u);
	seal_sealer_free(t->s);
}

static int ts_verify(struct tstore *t, const struct seal_chain *mem,
		     struct seal_findings *f)
{
	int r = seal_verify(&K, &t->kr, t->store, t->recs, t->n, mem, f);
	assert_int_not_equal(r, -1);
	return r;
}

static bool has_finding(const struct seal_findings *f,
			enum seal_finding_kind kind, uint64_t seq)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].kind == kind && f->v[i].seq == seq)
			return true;
	return false;
}

static void dump(const struct seal_findings *f)
{
	for (size_t i = 0; i < f->n; i++)
		print_message("  finding %s seq %llu count %llu\n",
			      seal_finding_name(f->v[i].kind),
			      (unsigned long long)f->v[i].seq,
			      (unsigned long long)f->v[i].count);
}

#define assert_finding(f, kind, seq) do { \
	if (!has_finding((f), (kind), (seq))) { \
		dump(f); \
		fail_msg("no %s finding at seq %llu", seal_finding_name(kind), \
			 (unsigned long long)(seq)); \
	} \
} while (0)

/* For each seq in `good` exactly one record is genuine; no other record
 * is. (By seq, not index: with duplicates, which copy stands is checked
 * separately.) */
static void assert_genuine(const struct tstore *t, const struct seal_findings *f,
			   const uint64_t *good, size_t ngood)
{
	for (size_t i = 0; i < t->n; i++) {
		bool listed = false;
		for (size_t k = 0; k < ngood; k++)
			listed |= t->recs[i].seq == good[k];
		if (!listed && f->state[i] == SEAL_REC_GENUINE) {
			dump(f);
			fail_msg("record %zu (seq %llu) genuine, want not", i,
				 (unsigned long long)t->recs[i].seq);
		}
	}
	for (size_t k = 0; k < ngood; k++) {
		size_t n = 0;
		for (size_t i = 0; i < t->n; i++)
			n += t->recs[i].seq == good[k] &&
			     f->state[i] == SEAL_REC_GENUINE;
		if (n != 1) {
			dump(f);
			fail_msg("seq %llu: %zu genuine records, want 1",
				 (unsigned long long)good[k], n);
		}
	}
	assert_int_equal(f->ngenuine, ngood);
}

static void assert_clean(struct tstore *t, const struct seal_chain *mem)
{
	struct seal_findings f;

	if (ts_verify(t, mem, &f) != 0) {
		dump(&f);
		fail_msg("findings in a clean store");
	}
	assert_int_equal(f.nbad, 0);
	assert_int_equal(f.nwithheld, 0);
	seal_findings_free(&f);
}

static int open_rec(struct tstore *t, size_t i, enum seal_store store,
		    const char *jid, char *expect)
{
	unsigned char *pt;
	size_t len;

	if (seal_record_open(t->u, jid, store, &t->recs[i], &pt, &len) != 0)
		return -1;
	if (expect != NULL) {
		assert_int_equal(len, strlen(expect));
		assert_memory_equal(pt, expect, len);
		assert_int_equal(pt[len], '\0');
	}
	xfree_secret(pt, len);
	return 0;
}

/* ---- encoding and keys ---- */

static void test_encoding(void **state)
{
	struct buf b = BUF_INIT;

	seal_put_u32(&b, 0x01020304);
	seal_put_u64(&b, 0x0102030405060708ULL);
	seal_put_lp_str(&b, "ab");
	assert_int_equal(b.len, 4 + 8 + 6);
	assert_memory_equal(b.data, "\x01\x02\x03\x04\x01\x02\x03\x04\x05\x06\x07\x08"
				    "\x00\x00\x00\x02" "ab", b.len);
	buf_free(&b);
	assert_string_equal(seal_store_label(SEAL_STORE_OFFLINE), "offline");
	assert_string_equal(seal_store_label(SEAL_STORE_ARCHIVE), "archive");
	assert_true(seal_now_us() > 1600000000LL * 1000000);
}

static void test_keys_derive(void **state)
{
	static const char *const infos[] = { "chain", "tomb", "row", "cred", "pepper" };
	const unsigned char *got[] = { K.k_chain, K.k_tomb, K.k_row, K.k_cred,
				       K.k_pepper };
	unsigned char want[32];
	char info[32];

	for (size_t i = 0; i < 5; i++) {
		int n = snprintf(info, sizeof(info), "roost/v1/%s", infos[i]);
		ref_hkdf(NULL, 0, seal_key, 32, info, (size_t)n, want);
		assert_memory_equal(got[i], want, 32);
		for (size_t j = 0; j < i; j++)
			assert_memory_not_equal(got[i], got[j], 32);
	}
}

static void write_key(const char *path, size_t len, mode_t mode)
{
	unsigned char data[64] = { 7 };
	FILE *f;

	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_key_load(void **state)
{
	char path[] = "/tmp/roost-seal-key-XXXXXX";
	unsigned char key[32];
	char *error = NULL;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	write_key(path, 32, 0400);
	assert_int_equal(seal_key_load(path, key, &error), 0);
	assert_int_equal(key[0], 7);
	write_key(path, 32, 0600);
	assert_int_equal(seal_key_load(path, key, &error), 0);
	write_key(path, 32, 0440);
	assert_int_equal(seal_key_load(path, key, &error), -1);
	assert_non_null(strstr(error, "group or others"));
	free(error);
	write_key(path, 32, 0404);
	assert_int_equal(seal_key_load(path, key, &error), -1);
	free(error);
	write_key(path, 31, 0400);
	assert_int_equal(seal_key_load(path, key, &error), -1);
	free(error);
	write_key(path, 33, 0400);
	assert_int_equal(seal_key_load(path, key, &error), -1);
	free(error);
	unlink(path);
	assert_int_equal(seal_key_load(path, key, &error), -1);
	free(error);
	assert_int_equal(seal_key_load("/tmp", key, &error), -1);
	free(error);
}

static void test_cred_mac(void **state)
{
	struct scram_creds a, b;
	unsigned char mac[32], mac_b[32];

	assert_int_equal(scram_derive(SCRAM_SHA256, "alice-pw",
				      (const unsigned char *)"salt-a", 6, 64, &a,
				      NULL), 0);
	assert_int_equal(scram_derive(SCRAM_SHA256, "bob-pw",
				      (const unsigned char *)"salt-b", 6, 64, &b,
				      NULL), 0);
	assert_int_equal(seal_cred_mac(&K, "alice@example", SCRAM_SHA256, &a, mac), 0);
	assert_int_equal(seal_cred_mac(&K, "bob@example", SCRAM_SHA256, &b, mac_b), 0);
	assert_int_equal(seal_cred_check(&K, "alice@example", SCRAM_SHA256, &a, mac), 0);
	/* Bob's credential row copied over Alice's, with or without its MAC. */
	assert_int_equal(seal_cred_check(&K, "alice@example", SCRAM_SHA256, &b, mac), -1);
	assert_int_equal(seal_cred_check(&K, "alice@example", SCRAM_SHA256, &b, mac_b), -1);
	/* The hash is bound: the same bytes as SHA-1 credentials fail. */
	assert_int_equal(seal_cred_check(&K, "alice@example", SCRAM_SHA1, &a, mac), -1);
	/* Fewer iterations (a downgrade) fail. */
	a.iterations = 63;
	assert_int_equal(seal_cred_check(&K, "alice@example", SCRAM_SHA256, &a, mac), -1);
	a.iterations = 64;
	a.stored_key[5] ^= 1;
	assert_int_equal(seal_cred_check(&K, "alice@example", SCRAM_SHA256, &a, mac), -1);
}

/* ---- sealing and opening ---- */

static void test_roundtrip_both_stores(void **state)
{
	struct tstore t;
	char msg[128];

	ts_init(&t);
	ts_deposit(&t, 3, SEAL_STORE_OFFLINE);
	ts_deposit(&t, 3, SEAL_STORE_ARCHIVE);
	for (size_t i = 0; i < 6; i++) {
		enum seal_store st = i < 3 ? SEAL_STORE_OFFLINE : SEAL_STORE_ARCHIVE;
		enum seal_store other = i < 3 ? SEAL_STORE_ARCHIVE : SEAL_STORE_OFFLINE;
		msg_of(i % 3 + 1, msg, sizeof(msg));
		assert_int_equal(open_rec(&t, i, st, JID, msg), 0);
		assert_int_equal(open_rec(&t, i, other, JID, NULL), -1);
		assert_int_equal(open_rec(&t, i, st, "romeo@montague.example", NULL), -1);
		assert_int_equal(t.recs[i].ct_len, strlen(msg) + 16);
		/* The nonce starts with seq; each store has its own. */
		assert_int_equal(t.recs[i].nonce[7], i % 3 + 1);
	}
	/* Plaintext never appears in the ciphertext. */
	assert_null(memmem(t.recs[0].ct, t.recs[0].ct_len, "message", 7));
	/* The empty message seals and opens too. */
	{
		struct seal_record r;
		unsigned char *pt;
		size_t len;
		assert_int_equal(seal_record_seal(t.s, &K, JID, SEAL_STORE_OFFLINE,
						  t.kr.pk, t.kr.key_id, 100, 5,
						  t.kr.chains[t.store].head_chain, "", 0, &r), 0);
		assert_int_equal(seal_record_open(t.u, JID, SEAL_STORE_OFFLINE, &r,
						  &pt, &len), 0);
		assert_int_equal(len, 0);
		xfree_secret(pt, len);
		seal_record_clear(&r);
	}
	ts_free(&t);
}

/* Everything DESIGN §5 fixes, recomputed here without src/seal: KEK,
 * wrap AAD, pk == X25519(sk), K, AAD, nonce, chain, tomb. */
static void test_construction_matches_spec(void **state)
{
	struct tstore t;
	struct buf b = BUF_INIT;
	unsigned char kek[32], sk[32], pk[32], shared[32], k[32], chain[32];
	unsigned char tomb[32], zero[32] = { 0 }, pt[256];
	char msg[128];
	size_t jlen = strlen(JID);

	ts_init(&t);
	t.store = SEAL_STORE_ARCHIVE;
	ts_deposit(&t, 2, SEAL_STORE_ARCHIVE);

	/* KEK_SHA-256 and the wrapped sk. */
	buf_append_str(&b, "roost/v1/keyring");
	put_lp(&b, "SHA-256", 7);
	put_lp(&b, JID, jlen);
	ref_hkdf(K.k_pepper, 32, t.ck256, 32, b.data, b.len, kek);
	buf_reset(&b);
	buf_append_str(&b, "roost/v1/wrap");
	put_lp(&b, "SHA-256", 7);
	put_lp(&b, JID, jlen);
	put_be(&b, t.kr.key_id, 8);
	buf_append(&b, t.kr.pk, 32);
	assert_int_equal(ref_aead_open(kek, t.kr.wrap[SCRAM_SHA256], &b,
				       t.kr.wrap[SCRAM_SHA256] + 12, 48, sk), 0);
	ref_x25519(sk, (const unsigned char[32]){ 9 }, pk);
	assert_memory_equal(pk, t.kr.pk, 32);

	/* K, AAD, nonce and the plaintext of record 2. */
	struct seal_record *r = &t.recs[1];
	ref_x25519(sk, r->epk, shared);
	buf_reset(&b);
	buf_append_str(&b, "roost/v1/seal");
	put_lp(&b, "archive", 7);
	buf_append(&b, r->epk, 32);
	buf_append(&b, t.kr.pk, 32);
	ref_hkdf(NULL, 0, shared, 32, b.data, b.len, k);
	buf_reset(&b);
	put_lp(&b, JID, jlen);
	put_be(&b, r->seq, 8);
	put_be(&b, (uint64_t)r->stamp, 8);
	put_be(&b, r->key_id, 8);
	assert_int_equal(ref_aead_open(k, r->nonce, &b, r->ct, r->ct_len, pt), 0);
	msg_of(2, msg, sizeof(msg));
	assert_memory_equal(pt, msg, strlen(msg));
	assert_memory_equal(r->nonce, "\0\0\0\0\0\0\0\x02", 8);

	/* chain_1 over chain_0 = zeros, chain_2 over chain_1. */
	for (size_t i = 0; i < 2; i++) {
		r = &t.recs[i];
		buf_reset(&b);
		buf_append_str(&b, "roost/v1/archive/chain");
		put_lp(&b, JID, jlen);
		put_be(&b, r->seq, 8);
		put_be(&b, (uint64_t)r->stamp, 8);
		put_be(&b, r->key_id, 8);
		buf_append(&b, r->epk, 32);
		buf_append(&b, r->nonce, 12);
		put_lp(&b, r->ct, r->ct_len);
		buf_append(&b, i == 0 ? zero : t.recs[0].chain, 32);
		ref_hmac(K.k_chain, 32, &b, chain);
		assert_memory_equal(chain, r->chain, 32);
	}
	assert_memory_equal(t.kr.chains[t.store].head_chain, t.recs[1].chain, 32);
	assert_memory_equal(t.kr.chains[t.store].base_chain, zero, 32);

	/* tomb. */
	ts_wipe(&t, 0);
	buf_reset(&b);
	buf_append_str(&b, "roost/v1/archive/tomb");
	put_lp(&b, JID, jlen);
	put_be(&b, 1, 8);
	buf_append(&b, t.recs[0].chain, 32);
	ref_hmac(K.k_tomb, 32, &b, tomb);
	assert_memory_equal(tomb, t.recs[0].tomb, 32);
	assert_null(t.recs[0].ct);
	assert_true(t.recs[0].wiped);

	buf_free(&b);
	ts_free(&t);
}

static void test_sealer_refuses_old_seq(void **state)
{
	struct tstore t;
	struct seal_record r;
	unsigned char epk[32];

	ts_init(&t);
#define SEAL(store_, jid, seq) \
	seal_record_seal(t.s, &K, (jid), (store_), t.kr.pk, t.kr.key_id, (seq), 0, \
			 t.kr.chains[SEAL_STORE_OFFLINE].head_chain, "x", 1, &r)
	assert_int_equal(SEAL(SEAL_STORE_OFFLINE, JID, 5), 0);
	memcpy(epk, r.epk, 32);
	seal_record_clear(&r);
	assert_int_equal(SEAL(SEAL_STORE_OFFLINE, JID, 5), -1);
	assert_int_equal(SEAL(SEAL_STORE_OFFLINE, JID, 4), -1);
	assert_int_equal(SEAL(SEAL_STORE_OFFLINE, JID, 0), -1);
	/* Other store, other user: their own sequences. */
	assert_int_equal(SEAL(SEAL_STORE_ARCHIVE, JID, 5), 0);
	seal_record_clear(&r);
	assert_int_equal(SEAL(SEAL_STORE_OFFLINE, "nurse@capulet.example", 1), 0);
	seal_record_clear(&r);
	/* Rotation keeps the memory of seqs but changes epk. */
	assert_int_equal(seal_sealer_rotate(t.s), 0);
	assert_int_equal(SEAL(SEAL_STORE_OFFLINE, JID, 5), -1);
	assert_int_equal(SEAL(SEAL_STORE_OFFLINE, JID, 6), 0);
	assert_memory_not_equal(r.epk, epk, 32);
	memcpy(epk, r.epk, 32);
	seal_record_clear(&r);
	/* A failed transaction gives its seq back, under a new pair. */
	assert_int_equal(seal_sealer_release(t.s, JID, SEAL_STORE_OFFLINE, 6), 0);
	assert_int_equal(SEAL(SEAL_STORE_OFFLINE, JID, 6), 0);
	assert_memory_not_equal(r.epk, epk, 32);
	seal_record_clear(&r);
	seal_sealer_free(t.s);

	/* A full table forgets, but only together with a new pair. */
	t.s = seal_sealer_new(2);
	assert_int_equal(SEAL(SEAL_STORE_OFFLINE, "a@x", 1), 0);
	memcpy(epk, r.epk, 32);
	seal_record_clear(&r);
	assert_int_equal(SEAL(SEAL_STORE_OFFLINE, "b@x", 1), 0);
	seal_record_clear(&r);
	assert_int_equal(SEAL(SEAL_STORE_OFFLINE, "a@x", 1), -1);
	assert_int_equal(SEAL(SEAL_STORE_OFFLINE, "c@x", 1), 0);
	assert_memory_not_equal(r.epk, epk, 32);
	seal_record_clear(&r);
	assert_int_equal(SEAL(SEAL_STORE_OFFLINE, "a@x", 1), 0);
	seal_record_clear(&r);
#undef SEAL
	ts_free(&t);
}

static void test_rotation_and_open_cache(void **state)
{
	struct tstore t;
	char msg[128];

	ts_init(&t);
	ts_deposit(&t, 2, SEAL_STORE_OFFLINE);
	assert_int_equal(seal_sealer_rotate(t.s), 0);
	ts_deposit(&t, 2, SEAL_STORE_OFFLINE);
	assert_memory_not_equal(t.recs[1].epk, t.recs[2].epk, 32);
	assert_memory_equal(t.recs[2].epk, t.recs[3].epk, 32);
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < 4; i++) {
			msg_of(i + 1, msg, sizeof(msg));
			assert_int_equal(open_rec(&t, i, SEAL_STORE_OFFLINE, JID, msg), 0);
		}
	assert_clean(&t, NULL);
	ts_free(&t);
}

/* ---- keyrings ---- */

static void test_keyring_unlock_per_hash(void **state)
{
	struct tstore t;
	struct seal_unlocked *u;
	struct seal_keyring kr2;
	unsigned char wrong[32];
	const char *error;

	ts_init(&t);
	assert_int_equal(seal_keyring_mac_check(&K, &t.kr), 0);
	assert_int_equal(seal_keyring_unlock(&K, &t.kr, SCRAM_SHA1, t.ck1, &u, &error), 0);
	assert_int_equal(seal_unlocked_key_id(u), t.kr.key_id);
	seal_unlocked_free(u);
	assert_int_equal(seal_keyring_unlock(&K, &t.kr, SCRAM_SHA256, t.ck256, &u, &error), 0);
	seal_unlocked_free(u);

	/* Wrong key; the right bytes for the other hash. */
	memcpy(wrong, t.ck256, 32);
	wrong[31] ^= 0x80;
	assert_int_equal(seal_keyring_unlock(&K, &t.kr, SCRAM_SHA256, wrong, &u, &error), -1);
	assert_null(u);
	assert_int_equal(seal_keyring_unlock(&K, &t.kr, SCRAM_SHA1, t.ck256, &u, &error), -1);
	assert_int_equal(seal_keyring_unlock(&K, &t.kr, SCRAM_SHA256, t.ck1, &u, &error), -1);

	/* Wraps swapped between hashes or moved to another user fail. */
	kr2 = t.kr;
	memcpy(kr2.wrap[SCRAM_SHA1], t.kr.wrap[SCRAM_SHA256], SEAL_WRAP_LEN);
	assert_int_equal(seal_keyring_unlock(&K, &kr2, SCRAM_SHA1, t.ck256, &u, &error), -1);
	kr2 = t.kr;
	strcpy(kr2.jid, "romeo@montague.example");
	assert_int_equal(seal_keyring_unlock(&K, &kr2, SCRAM_SHA256, t.ck256, &u, &error), -1);
	/* A row with another key pair's pk: the MAC fails, and so does the
	 * pk == X25519(sk) check even if the MAC were not looked at. */
	{
		struct tstore other;
		ts_init(&other);
		kr2 = t.kr;
		memcpy(kr2.pk, other.kr.pk, 32);
		assert_int_equal(seal_keyring_mac_check(&K, &kr2), -1);
		/* Here the wrap's AAD binds pk, so the unwrap already fails;
		 * with the attacker also re-encrypting nothing changes. */
		assert_int_equal(seal_keyring_unlock(&K, &kr2, SCRAM_SHA256, t.ck256,
						     &u, &error), -1);
		ts_free(&other);
	}

	/* Only SHA-256 credentials: no SHA-1 wrap. */
	assert_int_equal(seal_keyring_create(&K, JID, NULL, t.ck256, &kr2, NULL), 0);
	assert_false(kr2.has_wrap[SCRAM_SHA1]);
	assert_int_equal(seal_keyring_unlock(&K, &kr2, SCRAM_SHA1, t.ck1, &u, &error), -1);
	assert_string_equal(error, "no wrapped key for this hash");
	assert_int_equal(seal_keyring_unlock(&K, &kr2, SCRAM_SHA256, t.ck256, &u, NULL), 0);
	seal_unlocked_free(u);
	assert_int_equal(seal_keyring_create(&K, JID, NULL, NULL, &kr2, NULL), -1);
	ts_free(&t);
}

/* pk == X25519(sk) is checked on its own: a row whose pk was replaced
 * *and* whose wrap AAD was made to match (as if by someone with KEK)
 * still fails. Simulated by re-wrapping with the spec's formulas. */
static void test_keyring_pk_check(void **state)
{
	struct tstore t, other;
	struct seal_unlocked *u;
	struct buf aad = BUF_INIT;
	unsigned char kek[32], sk[32];
	const char *error = NULL;
	EVP_CIPHER_CTX *c;
	int n;

	ts_init(&t);
	ts_init(&other);
	/* sk of t, unwrapped the spec's way. */
	buf_append_str(&aad, "roost/v1/keyring");
	put_lp(&aad, "SHA-256", 7);
	put_lp(&aad, JID, strlen(JID));
	ref_hkdf(K.k_pepper, 32, t.ck256, 32, aad.data, aad.len, kek);
	buf_reset(&aad);
	buf_append_str(&aad, "roost/v1/wrap");
	put_lp(&aad, "SHA-256", 7);
	put_lp(&aad, JID, strlen(JID));
	put_be(&aad, t.kr.key_id, 8);
	buf_append(&aad, t.kr.pk, 32);
	assert_int_equal(ref_aead_open(kek, t.kr.wrap[SCRAM_SHA256], &aad,
				       t.kr.wrap[SCRAM_SHA256] + 12, 48, sk), 0);
	/* Re-wrap the same sk with AAD naming the other pk. */
	memcpy(t.kr.pk, other.kr.pk, 32);
	buf_reset(&aad);
	buf_append_str(&aad, "roost/v1/wrap");
	put_lp(&aad, "SHA-256", 7);
	put_lp(&aad, JID, strlen(JID));
	put_be(&aad, t.kr.key_id, 8);
	buf_append(&aad, t.kr.pk, 32);
	c = EVP_CIPHER_CTX_new();
	unsigned char *w = t.kr.wrap[SCRAM_SHA256];
	assert_int_equal(EVP_EncryptInit_ex(c, EVP_chacha20_poly1305(), NULL, kek, w), 1);
	assert_int_equal(EVP_EncryptUpdate(c, NULL, &n, (unsigned char *)aad.data,
					   (int)aad.len), 1);
	assert_int_equal(EVP_EncryptUpdate(c, w + 12, &n, sk, 32), 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, w + 44, &n), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, w + 44), 1);
	EVP_CIPHER_CTX_free(c);
	assert_int_equal(seal_keyring_unlock(&K, &t.kr, SCRAM_SHA256, t.ck256, &u,
					     &error), -1);
	assert_string_equal(error, "public key does not match the private key");
	buf_free(&aad);
	ts_free(&other);
	ts_free(&t);
}

/* PLAIN: the server derives ClientKey from the password (scram_derive);
 * SCRAM: it learns the client's ClientKey. Both must open the keyring. */
static void test_keyring_plain_and_scram(void **state)
{
	static const unsigned char salt[] = "0123456789abcdef";
	struct scram_creds c1, c256;
	unsigned char ck1[20], ck256[32], ref1[20], ref256[32];
	struct seal_keyring kr;
	struct seal_unlocked *u;

	/* Account creation (roostctl adduser): the password is known. */
	assert_int_equal(scram_derive(SCRAM_SHA1, "r0meo!", salt, 16, 4096, &c1, ck1), 0);
	assert_int_equal(scram_derive(SCRAM_SHA256, "r0meo!", salt, 16, 4096, &c256,
				      ck256), 0);
	assert_int_equal(seal_keyring_create(&K, JID, ck1, ck256, &kr, NULL), 0);

	/* SCRAM login: ClientKey as the client computes it. */
	ref_client_key(SCRAM_SHA1, "r0meo!", salt, 16, 4096, ref1);
	ref_client_key(SCRAM_SHA256, "r0meo!", salt, 16, 4096, ref256);
	assert_int_equal(seal_keyring_unlock(&K, &kr, SCRAM_SHA1, ref1, &u, NULL), 0);
	seal_unlocked_free(u);
	assert_int_equal(seal_keyring_unlock(&K, &kr, SCRAM_SHA256, ref256, &u, NULL), 0);
	seal_unlocked_free(u);

	/* PLAIN login: derived again from the password. */
	assert_int_equal(scram_derive(SCRAM_SHA256, "r0meo!", c256.salt, c256.salt_len,
				      c256.iterations, &c256, ck256), 0);
	assert_int_equal(seal_keyring_unlock(&K, &kr, SCRAM_SHA256, ck256, &u, NULL), 0);
	seal_unlocked_free(u);
	assert_int_equal(scram_derive(SCRAM_SHA256, "r0meo?", c256.salt, c256.salt_len,
				      c256.iterations, &c256, ck256), 0);
	assert_int_equal(seal_keyring_unlock(&K, &kr, SCRAM_SHA256, ck256, &u, NULL), -1);
}

static void test_keyring_rekey_keeps_old_records(void **state)
{
	struct tstore t;
	struct seal_unlocked *u2, *u3;
	unsigned char new1[20], new256[32];
	uint32_t first_id;
	char msg[128];

	ts_init(&t);
	ts_deposit(&t, 3, SEAL_STORE_OFFLINE);
	first_id = t.kr.key_id;
	assert_int_equal(RAND_bytes(new1, 20), 1);
	assert_int_equal(RAND_bytes(new256, 32), 1);
	assert_int_equal(seal_keyring_rekey(&K, &t.kr, t.u, new1, new256, &u2), 0);
	assert_int_not_equal(t.kr.key_id, first_id);
	assert_int_equal(t.kr.nretired, 1);
	assert_true(seal_keyring_has_key(&t.kr, first_id));
	assert_int_equal(seal_keyring_mac_check(&K, &t.kr), 0);
	/* The old password no longer unlocks; the new one does. */
	assert_int_equal(seal_keyring_unlock(&K, &t.kr, SCRAM_SHA256, t.ck256, &u3,
					     NULL), -1);
	assert_int_equal(seal_keyring_unlock(&K, &t.kr, SCRAM_SHA1, new1, &u3, NULL), 0);
	assert_true(seal_unlocked_has_key(u3, first_id));
	seal_unlocked_free(t.u);
	t.u = u3;
	ts_deposit(&t, 2, SEAL_STORE_OFFLINE);
	assert_int_equal(t.recs[3].key_id, t.kr.key_id);
	assert_int_equal(t.recs[0].key_id, first_id);

	/* A second change: two retired pairs, all five records open. */
	seal_unlocked_free(u2);
	assert_int_equal(seal_keyring_rekey(&K, &t.kr, t.u, t.ck1, NULL, &u2), 0);
	assert_int_equal(t.kr.nretired, 2);
	assert_false(t.kr.has_wrap[SCRAM_SHA256]);
	seal_unlocked_free(t.u);
	assert_int_equal(seal_keyring_unlock(&K, &t.kr, SCRAM_SHA1, t.ck1, &t.u, NULL), 0);
	for (size_t i = 0; i < 5; i++) {
		msg_of(i + 1, msg, sizeof(msg));
		assert_int_equal(open_rec(&t, i, SEAL_STORE_OFFLINE, JID, msg), 0);
	}
	seal_unlocked_free(u2);
	/* A retired id list that names a key the unlocked object lacks
	 * (edited row) fails to unwrap. */
	{
		struct seal_keyring kr2 = t.kr;
		struct seal_unlocked *u4;
		kr2.retired_ids[0] ^= 1;
		assert_int_equal(seal_keyring_unlock(&K, &kr2, SCRAM_SHA1, t.ck1, &u4,
						     NULL), -1);
	}
	assert_clean(&t, NULL);
	ts_free(&t);
}

static void test_keyring_retired_cap(void **state)
{
	struct tstore t;
	struct seal_unlocked *u;
	uint32_t first_id;

	ts_init(&t);
	ts_deposit(&t, 1, SEAL_STORE_OFFLINE);
	first_id = t.kr.key_id;
	for (int i = 0; i < SEAL_MAX_RETIRED + 1; i++) {
		assert_int_equal(seal_keyring_rekey(&K, &t.kr, t.u, t.ck1, t.ck256, &u), 0);
		seal_unlocked_free(t.u);
		t.u = u;
	}
	assert_int_equal(t.kr.nretired, SEAL_MAX_RETIRED);
	/* The oldest pair was dropped: its record can no longer open. */
	assert_false(seal_keyring_has_key(&t.kr, first_id));
	assert_int_equal(open_rec(&t, 0, SEAL_STORE_OFFLINE, JID, NULL), -1);
	seal_unlocked_free(t.u);
	assert_int_equal(seal_keyring_unlock(&K, &t.kr, SCRAM_SHA256, t.ck256, &t.u,
					     NULL), 0);
	ts_free(&t);
}

static void test_keyring_reset(void **state)
{
	struct tstore t;
	struct seal_unlocked *u;
	unsigned char new256[32];
	uint32_t old_id;
	char msg[128];

	ts_init(&t);
	ts_deposit(&t, 3, SEAL_STORE_OFFLINE);
	old_id = t.kr.key_id;
	assert_int_equal(RAND_bytes(new256, 32), 1);
	assert_int_equal(seal_keyring_reset(&K, &t.kr, NULL, new256, &u), 0);
	assert_int_equal(t.kr.nretired, 0);
	assert_false(seal_keyring_has_key(&t.kr, old_id));
	seal_unlocked_free(t.u);
	t.u = u;
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(open_rec(&t, i, SEAL_STORE_OFFLINE, JID, NULL), -1);
	/* The chain is untouched: verification stays green, new records
	 * open, and purging the unreadable ones keeps it green. */
	assert_clean(&t, NULL);
	ts_deposit(&t, 1, SEAL_STORE_OFFLINE);
	msg_of(4, msg, sizeof(msg));
	assert_int_equal(open_rec(&t, 3, SEAL_STORE_OFFLINE, JID, msg), 0);
	for (size_t i = 0; i < 3; i++)
		if (!seal_keyring_has_key(&t.kr, t.recs[i].key_id))
			ts_wipe(&t, i);
	assert_clean(&t, NULL);
	ts_free(&t);
}

/* ---- the row's binary form ---- */

static void test_keyring_codec(void **state)
{
	struct tstore t;
	struct seal_keyring kr;
	struct seal_unlocked *u;
	struct buf b = BUF_INIT, b2 = BUF_INIT;
	unsigned char junk[2048];

	ts_init(&t);
	ts_deposit(&t, 2, SEAL_STORE_OFFLINE);
	assert_int_equal(seal_keyring_rekey(&K, &t.kr, t.u, t.ck1, t.ck256, &u), 0);
	seal_unlocked_free(u);
	seal_keyring_encode(&t.kr, &b);
	assert_int_equal(seal_keyring_decode(b.data, b.len, JID, &kr), 0);
	seal_keyring_encode(&kr, &b2);
	assert_int_equal(b.len, b2.len);
	assert_memory_equal(b.data, b2.data, b.len);
	assert_int_equal(seal_keyring_mac_check(&K, &kr), 0);
	assert_string_equal(kr.jid, JID);
	assert_int_equal(kr.chains[SEAL_STORE_OFFLINE].head_seq, 2);
	assert_int_equal(kr.nretired, 1);
	assert_int_equal(seal_keyring_unlock(&K, &kr, SCRAM_SHA1, t.ck1, &u, NULL), 0);
	seal_unlocked_free(u);

	/* Every truncation and one extra byte are refused. */
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(seal_keyring_decode(b.data, n, JID, &kr), -1);
	buf_append(&b2, "", 1);
	assert_int_equal(seal_keyring_decode(b2.data, b2.len, JID, &kr), -1);
	/* Every single-byte change is refused by decode or by the MAC. */
	for (size_t i = 0; i < b.len; i++) {
		b.data[i] ^= 0x41;
		if (seal_keyring_decode(b.data, b.len, JID, &kr) == 0 &&
		    seal_keyring_mac_check(&K, &kr) == 0)
			fail_msg("byte %zu changed, still accepted", i);
		b.data[i] ^= 0x41;
	}
	/* Hostile lengths. */
	memcpy(b2.data, b.data, b.len);
	/* nretired, after magic, version, pk, key id, flags and two wraps */
	b2.data[4 + 32 + 4 + 1 + 2 * SEAL_WRAP_LEN] = 0x7f;
	assert_int_equal(seal_keyring_decode(b2.data, b.len, JID, &kr), -1);
	/* Garbage, including garbage that starts right. */
	for (int i = 0; i < 2000; i++) {
		size_t n = (size_t)(rand() % (int)sizeof(junk));
		assert_int_equal(RAND_bytes(junk, (int)sizeof(junk)), 1);
		if (i % 2)
			memcpy(junk, "RKR\x01", 4);
		(void)seal_keyring_decode(junk, n, JID, &kr);
	}
	assert_int_equal(seal_keyring_decode(NULL, 0, JID, &kr), -1);
	/* The blob holds no JID; the MAC binds it. */
	assert_null(memmem(b.data, b.len, JID, strlen(JID)));
	assert_int_equal(seal_keyring_decode(b.data, b.len, "mallory@example.org", &kr), 0);
	assert_int_equal(seal_keyring_mac_check(&K, &kr), -1);
	buf_free(&b);
	buf_free(&b2);
	ts_free(&t);
}

/* ---- verification: tampering with records ---- */

enum field { F_SEQ, F_SEQ_HIGH, F_STAMP, F_KEY_ID, F_EPK, F_NONCE, F_CT, F_CT_LEN,
	     F_CHAIN, F_NFIELDS };

static void flip(struct seal_record *r, enum field f)
{
	switch (f) {
	case F_SEQ: r->seq ^= 1; break;
	case F_SEQ_HIGH: r->seq ^= 1ULL << 40; break;
	case F_STAMP: r->stamp ^= 1LL << 20; break;
	case F_KEY_ID: r->key_id ^= 0x100; break;
	case F_EPK: r->epk[3] ^= 0x10; break;
	case F_NONCE: r->nonce[11] ^= 0x01; break;
	case F_CT: r->ct[r->ct_len / 2] ^= 0x04; break;
	case F_CT_LEN: r->ct_len--; break;
	case F_CHAIN: r->chain[0] ^= 0x80; break;
	case F_NFIELDS: break;
	}
}

static void test_each_field_flip(void **state)
{
	for (enum field fl = 0; fl < F_NFIELDS; fl++) {
		struct tstore t;
		struct seal_findings f;
		/* Record 3 (index 2) is changed; 6 records. */
		const uint64_t good[] = { 1, 2, 4, 5, 6 };

		ts_init(&t);
		ts_deposit(&t, 6, SEAL_STORE_OFFLINE);
		assert_clean(&t, NULL);
		flip(&t.recs[2], fl);
		assert_int_equal(ts_verify(&t, NULL, &f), 1);
		switch (fl) {
		case F_SEQ:       /* now a second record at seq 2 */
			assert_finding(&f, SEAL_F_MISSING, 3);
			assert_finding(&f, SEAL_F_DUPLICATE, 2);
			break;
		case F_SEQ_HIGH:  /* now beyond head */
			assert_finding(&f, SEAL_F_MISSING, 3);
			assert_finding(&f, SEAL_F_UNEXPECTED, 3 ^ (1ULL << 40));
			break;
		default:
			assert_finding(&f, SEAL_F_BAD_CHAIN, 3);
			break;
		}
		assert_int_equal(f.state[2], SEAL_REC_BAD);
		/* The neighbours and everything after stay deliverable. */
		assert_genuine(&t, &f, good, 5);
		seal_findings_free(&f);
		/* What binds the AEAD also stops opening. */
		if (fl != F_CHAIN)
			assert_int_equal(open_rec(&t, 2, SEAL_STORE_OFFLINE, JID, NULL), -1);
		else
			assert_int_equal(open_rec(&t, 2, SEAL_STORE_OFFLINE, JID, NULL), 0);
		ts_free(&t);
	}
}

/* The last record's chain is also the row's head chain. */
static void test_flip_head_record(void **state)
{
	struct tstore t;
	struct seal_findings f;
	const uint64_t good[] = { 1, 2, 3 };

	ts_init(&t);
	ts_deposit(&t, 4, SEAL_STORE_OFFLINE);
	flip(&t.recs[3], F_CHAIN);
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_BAD_CHAIN, 4);
	assert_genuine(&t, &f, good, 3);
	seal_findings_free(&f);
	ts_free(&t);
}

static void test_wiped_record_flips(void **state)
{
	struct tstore t;
	struct seal_findings f;

	/* The tomb. */
	ts_init(&t);
	ts_deposit(&t, 5, SEAL_STORE_OFFLINE);
	ts_wipe(&t, 2);
	assert_clean(&t, NULL);
	t.recs[2].tomb[7] ^= 2;
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_BAD_TOMB, 3);
	assert_int_equal(f.state[2], SEAL_REC_BAD);
	seal_findings_free(&f);
	/* The chain under a tomb: the tomb fails and the next record
	 * cannot be checked. */
	t.recs[2].tomb[7] ^= 2;
	t.recs[2].chain[9] ^= 1;
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_BAD_TOMB, 3);
	assert_finding(&f, SEAL_F_UNVERIFIABLE, 4);
	seal_findings_free(&f);
	/* A wiped record made to look live again (ct from a backup) is a
	 * replay: counts betray it and nothing is delivered. */
	t.recs[2].chain[9] ^= 1;
	ts_free(&t);

	{
		struct seal_record backup;
		ts_init(&t);
		ts_deposit(&t, 4, SEAL_STORE_OFFLINE);
		backup = t.recs[1];
		backup.ct = xmalloc(backup.ct_len);
		memcpy(backup.ct, t.recs[1].ct, backup.ct_len);
		ts_wipe(&t, 1);
		assert_clean(&t, NULL);
		t.recs[1] = backup; /* "unwiped" */
		assert_int_equal(ts_verify(&t, NULL, &f), 1);
		assert_finding(&f, SEAL_F_COUNT_MISMATCH, 0);
		assert_int_equal(f.ngenuine, 0);
		assert_int_equal(f.nwithheld, 4);
		seal_findings_free(&f);
		ts_free(&t);
	}
}

static void test_gap(void **state)
{
	struct tstore t;
	struct seal_findings f;
	/* Record 3 deleted: 4 was sealed over chain_3, which went with it. */
	const uint64_t good[] = { 1, 2, 5, 6 };

	ts_init(&t);
	ts_deposit(&t, 6, SEAL_STORE_OFFLINE);
	ts_delete(&t, 2);
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_MISSING, 3);
	assert_finding(&f, SEAL_F_UNVERIFIABLE, 4);
	assert_int_equal(f.v[0].count, 1);
	assert_genuine(&t, &f, good, 4);
	seal_findings_free(&f);
	ts_free(&t);

	/* Several in a row. */
	ts_init(&t);
	ts_deposit(&t, 8, SEAL_STORE_OFFLINE);
	ts_delete(&t, 2);
	ts_delete(&t, 2);
	ts_delete(&t, 2);
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_MISSING, 3);
	for (size_t i = 0; i < f.n; i++)
		if (f.v[i].kind == SEAL_F_MISSING)
			assert_int_equal(f.v[i].count, 3);
	{
		const uint64_t good2[] = { 1, 2, 7, 8 };
		assert_genuine(&t, &f, good2, 4);
	}
	seal_findings_free(&f);
	ts_free(&t);
}

static void swap_contents(struct seal_record *a, struct seal_record *b)
{
	struct seal_record tmp = *a;
	uint64_t sa = a->seq, sb = b->seq;
	*a = *b;
	*b = tmp;
	a->seq = sa;
	b->seq = sb;
}

static void test_swap_and_reorder(void **state)
{
	struct tstore t;
	struct seal_findings f;
	const uint64_t good[] = { 1, 2, 5, 6 };
	const uint64_t all[] = { 1, 2, 3, 4, 5, 6 };

	/* Rows 3 and 4 exchanged (the seq column kept). */
	ts_init(&t);
	ts_deposit(&t, 6, SEAL_STORE_OFFLINE);
	swap_contents(&t.recs[2], &t.recs[3]);
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_BAD_CHAIN, 3);
	assert_int_equal(f.state[3], SEAL_REC_BAD);
	assert_genuine(&t, &f, good, 4);
	seal_findings_free(&f);
	swap_contents(&t.recs[2], &t.recs[3]);
	assert_clean(&t, NULL);

	/* The array order is not the store's order: a shuffled read is
	 * fine. */
	{
		struct seal_record tmp = t.recs[0];
		t.recs[0] = t.recs[5];
		t.recs[5] = tmp;
		tmp = t.recs[1];
		t.recs[1] = t.recs[3];
		t.recs[3] = tmp;
	}
	assert_int_equal(ts_verify(&t, NULL, &f), 0);
	assert_genuine(&t, &f, all, 6);
	seal_findings_free(&f);
	ts_free(&t);
}

static void test_duplicates_and_insertions(void **state)
{
	struct tstore t;
	struct seal_findings f;
	const uint64_t all[] = { 1, 2, 3, 4, 5 };

	ts_init(&t);
	ts_deposit(&t, 5, SEAL_STORE_OFFLINE);

	/* An exact copy of record 3. */
	t.recs[5] = t.recs[2];
	t.recs[5].ct = xmalloc(t.recs[2].ct_len);
	memcpy(t.recs[5].ct, t.recs[2].ct, t.recs[2].ct_len);
	t.n = 6;
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_DUPLICATE, 3);
	assert_int_equal(f.state[5], SEAL_REC_BAD);
	assert_genuine(&t, &f, all, 5);
	seal_findings_free(&f);

	/* A forged record at seq 3 (other content, made-up chain). */
	t.recs[5].ct[0] ^= 1;
	t.recs[5].chain[0] ^= 1;
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_DUPLICATE, 3);
	assert_genuine(&t, &f, all, 5);
	seal_findings_free(&f);

	/* Beyond head, chained properly from the head (sealed by someone
	 * with this process's code but not the row): unexpected. */
	seal_record_clear(&t.recs[5]);
	assert_int_equal(seal_record_seal(t.s, &K, JID, SEAL_STORE_OFFLINE, t.kr.pk,
					  t.kr.key_id, 6, 0,
					  t.kr.chains[t.store].head_chain, "x",
					  1, &t.recs[5]), 0);
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_UNEXPECTED, 6);
	assert_genuine(&t, &f, all, 5);
	seal_findings_free(&f);
	seal_record_clear(&t.recs[5]);

	/* At seq 0 (at or below base). */
	t.recs[5] = t.recs[0];
	t.recs[5].ct = xmalloc(t.recs[0].ct_len);
	memcpy(t.recs[5].ct, t.recs[0].ct, t.recs[0].ct_len);
	t.recs[5].seq = 0;
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_UNEXPECTED, 0);
	assert_genuine(&t, &f, all, 5);
	seal_findings_free(&f);

	/* A copy of record 1 written over row 3 (seq kept). */
	seal_record_clear(&t.recs[5]);
	t.n = 5;
	free(t.recs[2].ct);
	t.recs[2] = t.recs[0];
	t.recs[2].ct = xmalloc(t.recs[0].ct_len);
	memcpy(t.recs[2].ct, t.recs[0].ct, t.recs[0].ct_len);
	t.recs[2].seq = 3;
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_BAD_CHAIN, 3);
	{
		/* 4 was sealed over the overwritten chain_3. */
		const uint64_t good[] = { 1, 2, 5 };
		assert_genuine(&t, &f, good, 3);
	}
	seal_findings_free(&f);
	ts_free(&t);
}

static void test_truncated_tail(void **state)
{
	struct tstore t;
	struct seal_findings f;
	struct seal_keyring old_row;
	struct seal_chain mem;
	const uint64_t good[] = { 1, 2, 3, 4 };

	ts_init(&t);
	ts_deposit(&t, 4, SEAL_STORE_OFFLINE);
	old_row = t.kr;      /* a backup of the row */
	ts_deposit(&t, 2, SEAL_STORE_OFFLINE);
	seal_anchor_of(&t.kr, t.store, &mem);

	/* The last two rows deleted: the row's head names them. */
	ts_delete(&t, 5);
	ts_delete(&t, 4);
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_MISSING, 5);
	assert_finding(&f, SEAL_F_HEAD_MISMATCH, 6);
	assert_genuine(&t, &f, good, 4);
	seal_findings_free(&f);

	/* ... and the row rolled back to the genuine backup: consistent on
	 * disk (this is the restart limitation DESIGN §5 states), caught
	 * against the head the process remembers. */
	t.kr = old_row;
	assert_int_equal(ts_verify(&t, NULL, &f), 0);
	seal_findings_free(&f);
	assert_int_equal(ts_verify(&t, &mem, &f), 1);
	assert_finding(&f, SEAL_F_ROLLBACK, 4);
	assert_finding(&f, SEAL_F_MISSING, 5);
	assert_finding(&f, SEAL_F_HEAD_MISMATCH, 6);
	assert_genuine(&t, &f, good, 4);
	assert_int_equal(f.compact_seq, 0);
	seal_findings_free(&f);
	ts_free(&t);
}

/* Row and records restored to before a delivery: only memory knows. */
static void test_rollback_replays_delivered(void **state)
{
	struct tstore t;
	struct seal_findings f;
	struct seal_keyring old_row;
	struct seal_record backup;
	struct seal_chain mem;

	ts_init(&t);
	ts_deposit(&t, 3, SEAL_STORE_OFFLINE);
	old_row = t.kr;
	backup = t.recs[0];
	backup.ct = xmalloc(backup.ct_len);
	memcpy(backup.ct, t.recs[0].ct, backup.ct_len);
	ts_wipe(&t, 0);
	seal_anchor_of(&t.kr, t.store, &mem);
	assert_clean(&t, &mem);

	t.kr = old_row;
	t.recs[0] = backup;
	assert_int_equal(ts_verify(&t, NULL, &f), 0); /* the limitation */
	seal_findings_free(&f);
	assert_int_equal(ts_verify(&t, &mem, &f), 1);
	assert_finding(&f, SEAL_F_ROLLBACK, 3);
	assert_finding(&f, SEAL_F_COUNT_MISMATCH, 0);
	assert_int_equal(f.ngenuine, 0);
	seal_findings_free(&f);
	ts_free(&t);
}

/* A delivered record restored while another row is deleted: the counts
 * alone would balance with "the deleted row was the wiped one", so the
 * replay is possible and nothing may be delivered. */
static void test_replay_hidden_by_deletion(void **state)
{
	struct tstore t;
	struct seal_findings f;
	struct seal_record backup;

	ts_init(&t);
	ts_deposit(&t, 4, SEAL_STORE_OFFLINE);
	backup = t.recs[1];
	backup.ct = xmalloc(backup.ct_len);
	memcpy(backup.ct, t.recs[1].ct, backup.ct_len);
	ts_wipe(&t, 1);
	t.recs[1] = backup;  /* seq 2 "unwiped" */
	ts_delete(&t, 2);    /* seq 3, live, deleted */
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_MISSING, 3);
	assert_finding(&f, SEAL_F_COUNT_MISMATCH, 0);
	assert_int_equal(f.ngenuine, 0);
	assert_int_equal(f.nwithheld, 2);
	seal_findings_free(&f);
	ts_free(&t);
}

/* A record the server did seal, but over another chain than this store's
 * (a history forked by a rollback across a restart): with an authentic
 * predecessor present it must not pass through another candidate. */
static void test_forked_record(void **state)
{
	struct tstore t;
	struct seal_findings f;
	struct seal_sealer *other = seal_sealer_new(0);
	const uint64_t good[] = { 1, 2, 3 };

	ts_init(&t);
	ts_deposit(&t, 4, SEAL_STORE_OFFLINE);
	seal_record_clear(&t.recs[3]);
	assert_int_equal(seal_record_seal(other, &K, JID, SEAL_STORE_OFFLINE,
					  t.kr.pk, t.kr.key_id, 4, 0,
					  t.recs[1].chain, "fork", 4,
					  &t.recs[3]), 0);
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_BAD_CHAIN, 4);
	assert_genuine(&t, &f, good, 3);
	seal_findings_free(&f);

	/* Both branches of the fork present at seq 3: each verifies, so
	 * neither can be preferred; the record after them still stands. */
	ts_free(&t);
	ts_init(&t);
	ts_deposit(&t, 4, SEAL_STORE_OFFLINE);
	seal_sealer_free(other);
	other = seal_sealer_new(0);
	assert_int_equal(seal_record_seal(other, &K, JID, SEAL_STORE_OFFLINE,
					  t.kr.pk, t.kr.key_id, 3, 0,
					  t.recs[1].chain, "fork", 4,
					  &t.recs[4]), 0);
	t.n = 5;
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_DUPLICATE, 3);
	assert_int_equal(f.state[2], SEAL_REC_BAD);
	assert_int_equal(f.state[4], SEAL_REC_BAD);
	{
		const uint64_t good2[] = { 1, 2, 4 };
		assert_genuine(&t, &f, good2, 3);
	}
	seal_findings_free(&f);
	seal_sealer_free(other);
	ts_free(&t);
}

static void test_row_tampering(void **state)
{
	struct tstore t;
	struct seal_findings f;
	struct seal_chain mem;
	const uint64_t all[] = { 1, 2, 3 };
	const uint64_t two[] = { 1, 2 };

	ts_init(&t);
	ts_deposit(&t, 3, SEAL_STORE_OFFLINE);
	seal_anchor_of(&t.kr, t.store, &mem);

	/* head rolled back by one in the row itself: the MAC fails, and
	 * without memory nothing is delivered. */
	t.kr.chains[t.store].head_seq--;
	memcpy(t.kr.chains[t.store].head_chain, t.recs[1].chain, 32);
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_BAD_ROW_MAC, 0);
	assert_finding(&f, SEAL_F_UNEXPECTED, 3);
	assert_int_equal(f.ngenuine, 0);
	assert_int_equal(f.nwithheld, 2);
	seal_findings_free(&f);
	(void)two;

	/* With memory the walk still has a trusted anchor. */
	assert_int_equal(ts_verify(&t, &mem, &f), 1);
	assert_finding(&f, SEAL_F_BAD_ROW_MAC, 0);
	assert_finding(&f, SEAL_F_ROLLBACK, 2);
	assert_genuine(&t, &f, all, 3);
	assert_int_equal(f.compact_seq, 0);
	seal_findings_free(&f);

	/* live changed. */
	t.kr.chains[t.store].head_seq++;
	memcpy(t.kr.chains[t.store].head_chain, t.recs[2].chain, 32);
	assert_int_equal(seal_keyring_mac_check(&K, &t.kr), 0);
	t.kr.chains[t.store].live_bytes++;
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_BAD_ROW_MAC, 0);
	seal_findings_free(&f);
	ts_free(&t);
}

static void test_wipe_and_compact(void **state)
{
	struct tstore t;
	struct seal_findings f;
	struct seal_chain mem;

	ts_init(&t);
	ts_deposit(&t, 6, SEAL_STORE_OFFLINE);
	ts_wipe(&t, 0);
	ts_wipe(&t, 1);
	ts_wipe(&t, 3); /* not 2: compaction stops before seq 3 */
	seal_anchor_of(&t.kr, t.store, &mem);
	assert_int_equal(t.kr.chains[t.store].live, 3);
	assert_int_equal(ts_verify(&t, &mem, &f), 0);
	assert_int_equal(f.compact_seq, 2);
	assert_memory_equal(f.compact_chain, t.recs[1].chain, 32);
	{
		const uint64_t good[] = { 3, 5, 6 };
		assert_genuine(&t, &f, good, 3);
	}
	/* The store deletes rows 1..2 and moves base in one transaction. */
	assert_int_equal(seal_keyring_note_compact(&K, &t.kr, t.store, f.compact_seq,
						   f.compact_chain), 0);
	seal_findings_free(&f);
	ts_delete(&t, 0);
	ts_delete(&t, 0);
	seal_anchor_of(&t.kr, t.store, &mem);
	assert_clean(&t, &mem);
	assert_clean(&t, NULL);

	/* Wipe the rest, compact to head, and the chain carries on. */
	ts_wipe(&t, 0);
	ts_wipe(&t, 2);
	ts_wipe(&t, 3);
	assert_int_equal(t.kr.chains[t.store].live, 0);
	assert_int_equal(t.kr.chains[t.store].live_bytes, 0);
	assert_int_equal(ts_verify(&t, NULL, &f), 0);
	assert_int_equal(f.compact_seq, 6);
	assert_int_equal(seal_keyring_note_compact(&K, &t.kr, t.store, f.compact_seq,
						   f.compact_chain), 0);
	seal_findings_free(&f);
	while (t.n > 0)
		ts_delete(&t, 0);
	assert_clean(&t, NULL);
	ts_deposit(&t, 2, SEAL_STORE_OFFLINE);
	assert_int_equal(t.recs[0].seq, 7);
	assert_clean(&t, NULL);
	/* A record planted below the new base is caught. */
	t.recs[2] = t.recs[0];
	t.recs[2].ct = xmalloc(t.recs[0].ct_len);
	memcpy(t.recs[2].ct, t.recs[0].ct, t.recs[0].ct_len);
	t.recs[2].seq = 4;
	t.n = 3;
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_UNEXPECTED, 4);
	seal_findings_free(&f);
	/* Bookkeeping refuses nonsense. */
	assert_int_equal(seal_keyring_note_compact(&K, &t.kr, t.store, 99,
						   t.kr.chains[t.store].head_chain),
			 -1);
	assert_int_equal(seal_keyring_note_seal(&K, &t.kr, t.store, &t.recs[0]), -1);
	ts_free(&t);
}

static void test_verify_hostile_input(void **state)
{
	struct tstore t;
	struct seal_findings f;

	ts_init(&t);
	ts_deposit(&t, 3, SEAL_STORE_OFFLINE);
	/* A ct pointer of NULL with a length, a length below the tag,
	 * a huge head: no crash, no endless loop. */
	free(t.recs[1].ct);
	t.recs[1].ct = NULL;
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	assert_finding(&f, SEAL_F_BAD_CHAIN, 2);
	seal_findings_free(&f);
	t.kr.chains[t.store].head_seq = UINT64_MAX;
	t.kr.chains[t.store].base_seq = UINT64_MAX - 1;
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	seal_findings_free(&f);
	t.kr.chains[t.store].base_seq = UINT64_MAX;
	t.kr.chains[t.store].head_seq = 2;
	assert_int_equal(ts_verify(&t, NULL, &f), 1);
	seal_findings_free(&f);
	/* Many records at one seq. */
	{
		struct seal_record many[40];
		for (size_t i = 0; i < 40; i++) {
			many[i] = t.recs[0];
			many[i].chain[0] = (unsigned char)i;
		}
		assert_int_equal(seal_verify(&K, &t.kr, t.store, many, 40, NULL, &f), 1);
		seal_findings_free(&f);
	}
	assert_int_equal(seal_verify(&K, &t.kr, t.store, NULL, 0, NULL, &f), 1);
	seal_findings_free(&f);
	ts_free(&t);
}

/* ---- threads ---- */

struct thread_arg {
	struct seal_sealer *s;
	struct seal_unlocked *u;
	const struct seal_keyring *kr;
	char jid[64];
	int failures;
};

static void *seal_thread(void *p)
{
	struct thread_arg *a = p;
	unsigned char prev[32] = { 0 };

	for (uint64_t seq = 1; seq <= 200; seq++) {
		struct seal_record r;
		unsigned char *pt;
		size_t len;
		if (seq % 50 == 0)
			seal_sealer_rotate(a->s);
		if (seal_record_seal(a->s, &K, a->jid, SEAL_STORE_OFFLINE, a->kr->pk,
				     a->kr->key_id, seq, 0, prev, "hi", 2, &r) != 0 ||
		    seal_record_open(a->u, a->jid, SEAL_STORE_OFFLINE, &r, &pt,
				     &len) != 0) {
			a->failures++;
			continue;
		}
		memcpy(prev, r.chain, 32);
		xfree_secret(pt, len);
		seal_record_clear(&r);
	}
	return NULL;
}

/* ---- two stores, two chains ---- */

/* Shallow copies of t's records that belong to `store` (ts_deposit order;
 * records added by hand count as t->store's). */
static size_t ts_of_store(const struct tstore *t, enum seal_store store,
			  struct seal_record *out)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n; i++)
		if (t->rec_store[i] == store)
			out[n++] = t->recs[i];
	return n;
}

static int walk_store(struct tstore *t, enum seal_store store,
		      const struct seal_chain *mem, struct seal_findings *f)
{
	struct seal_record recs[MAXRECS];
	size_t n = ts_of_store(t, store, recs);
	int r = seal_verify(&K, &t->kr, store, recs, n, mem, f);

	assert_int_not_equal(r, -1);
	return r;
}

/* Deposits alternate between the stores; each has seqs 1..n of its own. */
static void interleave(struct tstore *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ts_deposit(t, 1, SEAL_STORE_OFFLINE);
		ts_deposit(t, 1, SEAL_STORE_ARCHIVE);
	}
}

/* Index in t->recs of seq `seq` of `store`. */
static size_t idx_of(const struct tstore *t, enum seal_store store, uint64_t seq)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->rec_store[i] == store && t->recs[i].seq == seq)
			return i;
	fail_msg("no record %llu in store %d", (unsigned long long)seq, store);
	return 0;
}

static void test_chains_are_independent(void **state)
{
	struct tstore t;
	struct seal_findings f;
	const struct seal_chain *off, *arc;

	ts_init(&t);
	interleave(&t, 4);
	off = &t.kr.chains[SEAL_STORE_OFFLINE];
	arc = &t.kr.chains[SEAL_STORE_ARCHIVE];
	assert_int_equal(off->head_seq, 4);
	assert_int_equal(arc->head_seq, 4);
	assert_int_equal(off->live, 4);
	assert_int_equal(arc->live, 4);
	assert_memory_not_equal(off->head_chain, arc->head_chain, 32);
	for (enum seal_store st = 0; st < SEAL_NSTORES; st++) {
		assert_int_equal(walk_store(&t, st, NULL, &f), 0);
		assert_int_equal(f.ngenuine, 4);
		seal_findings_free(&f);
	}
	/* The stores' records do not open in each other's store. */
	assert_int_equal(open_rec(&t, idx_of(&t, SEAL_STORE_ARCHIVE, 1),
				  SEAL_STORE_OFFLINE, JID, NULL), -1);

	/* A changed archive record: the archive walk names it, the offline
	 * walk is clean. */
	t.recs[idx_of(&t, SEAL_STORE_ARCHIVE, 2)].ct[3] ^= 1;
	assert_int_equal(walk_store(&t, SEAL_STORE_ARCHIVE, NULL, &f), 1);
	assert_finding(&f, SEAL_F_BAD_CHAIN, 2);
	assert_int_equal(f.ngenuine, 3);
	seal_findings_free(&f);
	assert_int_equal(walk_store(&t, SEAL_STORE_OFFLINE, NULL, &f), 0);
	assert_int_equal(f.ngenuine, 4);
	seal_findings_free(&f);
	t.recs[idx_of(&t, SEAL_STORE_ARCHIVE, 2)].ct[3] ^= 1;

	/* A deleted offline record: the other way round. */
	ts_delete(&t, idx_of(&t, SEAL_STORE_OFFLINE, 3));
	assert_int_equal(walk_store(&t, SEAL_STORE_OFFLINE, NULL, &f), 1);
	assert_finding(&f, SEAL_F_MISSING, 3);
	seal_findings_free(&f);
	assert_int_equal(walk_store(&t, SEAL_STORE_ARCHIVE, NULL, &f), 0);
	assert_int_equal(f.ngenuine, 4);
	seal_findings_free(&f);
	ts_free(&t);
}

static void test_chain_bookkeeping_per_store(void **state)
{
	struct tstore t;
	struct seal_findings f;
	struct seal_chain off_before, mem;
	size_t i1, i2;

	ts_init(&t);
	interleave(&t, 3);
	off_before = t.kr.chains[SEAL_STORE_OFFLINE];
	/* Wipe and compact archive seqs 1..2: the offline chain is untouched. */
	t.store = SEAL_STORE_ARCHIVE;
	i1 = idx_of(&t, SEAL_STORE_ARCHIVE, 1);
	i2 = idx_of(&t, SEAL_STORE_ARCHIVE, 2);
	ts_wipe(&t, i1);
	ts_wipe(&t, i2);
	assert_int_equal(t.kr.chains[SEAL_STORE_ARCHIVE].live, 1);
	assert_int_equal(walk_store(&t, SEAL_STORE_ARCHIVE, NULL, &f), 0);
	assert_int_equal(f.compact_seq, 2);
	assert_int_equal(seal_keyring_note_compact(&K, &t.kr, SEAL_STORE_ARCHIVE,
						   f.compact_seq, f.compact_chain), 0);
	seal_findings_free(&f);
	ts_delete(&t, i2);
	ts_delete(&t, i1);
	assert_memory_equal(&off_before, &t.kr.chains[SEAL_STORE_OFFLINE],
			    sizeof(off_before));
	assert_int_equal(t.kr.chains[SEAL_STORE_ARCHIVE].base_seq, 2);
	assert_int_equal(walk_store(&t, SEAL_STORE_ARCHIVE, NULL, &f), 0);
	assert_int_equal(f.ngenuine, 1);
	seal_findings_free(&f);
	assert_int_equal(walk_store(&t, SEAL_STORE_OFFLINE, NULL, &f), 0);
	assert_int_equal(f.ngenuine, 3);
	seal_findings_free(&f);

	/* A tomb made for one store is not valid in the other. */
	{
		unsigned char tomb[32];
		assert_int_equal(seal_record_tomb(&K, JID, SEAL_STORE_OFFLINE, 1,
						  t.recs[0].chain, tomb), 0);
		assert_int_equal(seal_record_tomb(&K, JID, SEAL_STORE_ARCHIVE, 1,
						  t.recs[0].chain, t.recs[0].tomb), 0);
		assert_memory_not_equal(tomb, t.recs[0].tomb, 32);
		memset(t.recs[0].tomb, 0, 32);
	}

	/* Bad store values are refused everywhere. */
	assert_null(seal_store_label((enum seal_store)2));
	assert_int_equal(seal_keyring_note_wipe(&K, &t.kr, (enum seal_store)2, 0), -1);
	assert_int_equal(seal_keyring_note_compact(&K, &t.kr, (enum seal_store)7, 0,
						   t.kr.chains[0].base_chain), -1);
	assert_int_equal(seal_keyring_note_seal(&K, &t.kr, (enum seal_store)-1,
						&t.recs[0]), -1);
	assert_int_equal(seal_verify(&K, &t.kr, (enum seal_store)2, t.recs, t.n,
				     NULL, &f), -1);
	seal_findings_free(&f);
	seal_anchor_of(&t.kr, (enum seal_store)2, &mem);
	assert_int_equal(mem.head_seq, 0);
	ts_free(&t);
}

/* A record moved from one store's table into the other's never passes. */
static void test_cross_store_transplant(void **state)
{
	struct tstore t;
	struct seal_findings f;
	struct seal_record recs[MAXRECS], copy;
	size_t n, off1;

	ts_init(&t);
	interleave(&t, 3);
	off1 = idx_of(&t, SEAL_STORE_OFFLINE, 1);

	/* Offline seq 1 over archive seq 1: both chains start at zero, so
	 * only the per-store label tells them apart. */
	n = ts_of_store(&t, SEAL_STORE_ARCHIVE, recs);
	recs[0] = t.recs[off1];
	assert_int_equal(seal_verify(&K, &t.kr, SEAL_STORE_ARCHIVE, recs, n, NULL,
				     &f), 1);
	assert_finding(&f, SEAL_F_BAD_CHAIN, 1);
	assert_int_not_equal(f.state[0], SEAL_REC_GENUINE);
	seal_findings_free(&f);

	/* As an extra row next to the genuine archive seq 1. */
	n = ts_of_store(&t, SEAL_STORE_ARCHIVE, recs);
	recs[n++] = t.recs[off1];
	assert_int_equal(seal_verify(&K, &t.kr, SEAL_STORE_ARCHIVE, recs, n, NULL,
				     &f), 1);
	assert_finding(&f, SEAL_F_DUPLICATE, 1);
	assert_int_equal(f.state[n - 1], SEAL_REC_BAD);
	assert_int_equal(f.ngenuine, 3);
	seal_findings_free(&f);

	/* A wiped offline record (valid offline tomb) in the archive. */
	t.store = SEAL_STORE_OFFLINE;
	ts_wipe(&t, off1);
	copy = t.recs[off1];
	n = ts_of_store(&t, SEAL_STORE_ARCHIVE, recs);
	recs[0] = copy;
	assert_int_equal(seal_verify(&K, &t.kr, SEAL_STORE_ARCHIVE, recs, n, NULL,
				     &f), 1);
	assert_finding(&f, SEAL_F_BAD_TOMB, 1);
	seal_findings_free(&f);
	ts_free(&t);
}

/* The row is shared: its MAC covers both chains. An edit of the archive's
 * state makes the row fail for both walks, but with the in-memory anchors
 * the store keeps, the untouched store's records stay deliverable; a
 * rollback of the archive alone is caught by the archive's anchor and
 * leaves the offline walk clean. */
static void test_shared_row(void **state)
{
	struct tstore t;
	struct seal_findings f;
	struct seal_keyring old;
	struct seal_chain mem_off, mem_arc;

	ts_init(&t);
	interleave(&t, 2);
	seal_anchor_of(&t.kr, SEAL_STORE_OFFLINE, &mem_off);
	seal_anchor_of(&t.kr, SEAL_STORE_ARCHIVE, &mem_arc);

	t.kr.chains[SEAL_STORE_ARCHIVE].live_bytes++;
	assert_int_equal(walk_store(&t, SEAL_STORE_OFFLINE, &mem_off, &f), 1);
	assert_finding(&f, SEAL_F_BAD_ROW_MAC, 0);
	assert_int_equal(f.ngenuine, 2);
	seal_findings_free(&f);
	assert_int_equal(walk_store(&t, SEAL_STORE_ARCHIVE, &mem_arc, &f), 1);
	assert_finding(&f, SEAL_F_BAD_ROW_MAC, 0);
	assert_finding(&f, SEAL_F_ROLLBACK, 2);
	seal_findings_free(&f);
	/* Without anchors nothing can be trusted. */
	assert_int_equal(walk_store(&t, SEAL_STORE_OFFLINE, NULL, &f), 1);
	assert_int_equal(f.ngenuine, 0);
	assert_int_equal(f.nwithheld, 2);
	seal_findings_free(&f);
	t.kr.chains[SEAL_STORE_ARCHIVE].live_bytes--;

	/* The archive grows; then the old row (genuine, MAC valid) and the
	 * old archive records come back. */
	old = t.kr;
	ts_deposit(&t, 2, SEAL_STORE_ARCHIVE);
	seal_anchor_of(&t.kr, SEAL_STORE_ARCHIVE, &mem_arc);
	t.kr = old;
	seal_record_clear(&t.recs[--t.n]);
	seal_record_clear(&t.recs[--t.n]);
	assert_int_equal(walk_store(&t, SEAL_STORE_ARCHIVE, &mem_arc, &f), 1);
	assert_finding(&f, SEAL_F_ROLLBACK, 2);
	assert_finding(&f, SEAL_F_MISSING, 3);
	seal_findings_free(&f);
	assert_int_equal(walk_store(&t, SEAL_STORE_OFFLINE, &mem_off, &f), 0);
	assert_int_equal(f.ngenuine, 2);
	seal_findings_free(&f);
	ts_free(&t);
}

static void test_threads(void **state)
{
	struct tstore t;
	struct thread_arg args[4];
	pthread_t th[4];

	ts_init(&t);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ t.s, t.u, &t.kr, "", 0 };
		snprintf(args[i].jid, sizeof(args[i].jid), "user%d@example", i);
		assert_int_equal(pthread_create(&th[i], NULL, seal_thread, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	ts_free(&t);
}

/* ---- benchmark ---- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench(void)
{
	enum { N = 20000, NV = 1000, NU = 2000 };
	struct tstore t;
	static struct seal_record recs[NV];
	char msg[512];
	double t0, dt;
	int reps = N / NV;

	memset(msg, 'a', 400);
	msg[400] = '\0';
	ts_init(&t);
	/* Deposits: seal + note_seal (the row MAC), cache warm. */
	t0 = now_s();
	for (int rep = 0; rep < reps; rep++) {
		unsigned char head[32] = { 0 };
		seal_sealer_free(t.s);
		t.s = seal_sealer_new(0);
		for (int i = 0; i < NV; i++) {
			if (rep > 0)
				seal_record_clear(&recs[i]);
			if (seal_record_seal(t.s, &K, JID, SEAL_STORE_OFFLINE, t.kr.pk,
					     t.kr.key_id, (uint64_t)i + 1, 0, head,
					     msg, 400, &recs[i]) != 0)
				return 1;
			memcpy(head, recs[i].chain, 32);
			seal_keyring_mac_update(&K, &t.kr);
		}
	}
	dt = now_s() - t0;
	printf("seal+row MAC (400 B, K cached): %.2f us\n", dt * 1e6 / N);

	t0 = now_s();
	for (int rep = 0; rep < reps; rep++)
		for (int i = 0; i < NV; i++) {
			unsigned char *pt;
			size_t len;
			if (seal_record_open(t.u, JID, SEAL_STORE_OFFLINE, &recs[i],
					     &pt, &len) != 0)
				return 1;
			xfree_secret(pt, len);
		}
	dt = now_s() - t0;
	printf("open (K cached):                %.2f us\n", dt * 1e6 / N);

	t.kr.chains[t.store].head_seq = NV;
	t.kr.chains[t.store].live = NV;
	t.kr.chains[t.store].live_bytes = NV * 416ULL;
	memcpy(t.kr.chains[t.store].head_chain, recs[NV - 1].chain, 32);
	seal_keyring_mac_update(&K, &t.kr);
	t0 = now_s();
	for (int rep = 0; rep < reps; rep++) {
		struct seal_findings f;
		if (seal_verify(&K, &t.kr, t.store, recs, NV, NULL, &f) != 0)
			return 1;
		seal_findings_free(&f);
	}
	dt = now_s() - t0;
	printf("verify per record:              %.2f us\n", dt * 1e6 / N);

	t0 = now_s();
	for (int i = 0; i < NU; i++) {
		struct seal_unlocked *u;
		if (seal_keyring_mac_check(&K, &t.kr) != 0 ||
		    seal_keyring_unlock(&K, &t.kr, SCRAM_SHA256, t.ck256, &u, NULL) != 0)
			return 1;
		seal_unlocked_free(u);
	}
	dt = now_s() - t0;
	printf("unlock (row MAC + KEK + unwrap + pk check): %.2f us\n", dt * 1e6 / NU);

	t0 = now_s();
	for (int i = 0; i < NU; i++) {
		struct seal_record r;
		char jid[32];
		snprintf(jid, sizeof(jid), "u%d@example", i);
		if (seal_record_seal(t.s, &K, jid, SEAL_STORE_OFFLINE, t.kr.pk,
				     t.kr.key_id, 1, 0,
				     t.kr.chains[t.store].head_chain, msg, 400,
				     &r) != 0)
			return 1;
		seal_record_clear(&r);
	}
	dt = now_s() - t0;
	printf("seal, K not cached (new user):  %.2f us\n", dt * 1e6 / NU);

	for (int i = 0; i < NV; i++)
		seal_record_clear(&recs[i]);
	ts_free(&t);
	return 0;
}

static int group_setup(void **state)
{
	return seal_keys_derive(seal_key, &K);
}

static int group_teardown(void **state)
{
	seal_keys_clear(&K);
	return 0;
}

/* ChaCha20-Poly1305 as sealing uses it: the RFC 8439 §2.8.2 vector, with
 * each thread's reused context re-keyed between records (seal_crypto.c):
 * other keys, a failed open and another thread in between must not
 * change a result. */
static const char rfc8439_pt[] =
	"Ladies and Gentlemen of the class of '99: If I could offer you only "
	"one tip for the future, sunscreen would be it.";
static const unsigned char rfc8439_aad[] = {
	0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
};
static const unsigned char rfc8439_nonce[SEAL_NONCE_LEN] = {
	0x07, 0x00, 0x00, 0x00, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
};
static const unsigned char rfc8439_ct_head[16] = {
	0xd3, 0x1a, 0x8d, 0x34, 0x64, 0x8e, 0x60, 0xdb,
	0x7b, 0x86, 0xaf, 0xbc, 0x53, 0xef, 0x7e, 0xc2,
};
static const unsigned char rfc8439_tag[SEAL_TAG_LEN] = {
	0x1a, 0xe1, 0x0b, 0x59, 0x4f, 0x09, 0xe2, 0x6a,
	0x7e, 0x90, 0x2e, 0xcb, 0xd0, 0x60, 0x06, 0x91,
};

static void rfc8439_check(void)
{
	size_t len = sizeof(rfc8439_pt) - 1;
	unsigned char key[SEAL_KEY_LEN], other[SEAL_KEY_LEN];
	unsigned char ct[sizeof(rfc8439_pt) - 1 + SEAL_TAG_LEN];
	unsigned char junk[sizeof(ct)], pt[sizeof(rfc8439_pt)];

	for (int i = 0; i < SEAL_KEY_LEN; i++)
		key[i] = (unsigned char)(0x80 + i);
	assert_int_equal(RAND_bytes(other, sizeof(other)), 1);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(seal_aead_seal(key, rfc8439_nonce, rfc8439_aad,
						sizeof(rfc8439_aad), rfc8439_pt,
						len, ct), 0);
		assert_memory_equal(ct, rfc8439_ct_head, sizeof(rfc8439_ct_head));
		assert_memory_equal(ct + len, rfc8439_tag, SEAL_TAG_LEN);
		assert_int_equal(seal_aead_open(key, rfc8439_nonce, rfc8439_aad,
						sizeof(rfc8439_aad), ct,
						sizeof(ct), pt), 0);
		assert_memory_equal(pt, rfc8439_pt, len);
		/* another key, and an open that fails, in between */
		assert_int_equal(seal_aead_seal(other, rfc8439_nonce, NULL, 0,
						rfc8439_pt, len, junk), 0);
		assert_memory_not_equal(junk, ct, sizeof(ct));
		ct[len] ^= 1;
		assert_int_equal(seal_aead_open(key, rfc8439_nonce, rfc8439_aad,
						sizeof(rfc8439_aad), ct,
						sizeof(ct), pt), -1);
		ct[len] ^= 1;
		assert_int_equal(seal_aead_open(other, rfc8439_nonce,
						rfc8439_aad, sizeof(rfc8439_aad),
						ct, sizeof(ct), pt), -1);
	}
}

static void *rfc8439_thread(void *arg)
{
	(void)arg;
	rfc8439_check();
	return NULL;
}

static void test_aead_rfc8439_reused_context(void **state)
{
	pthread_t t;

	(void)state;
	rfc8439_check();
	assert_int_equal(pthread_create(&t, NULL, rfc8439_thread, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	rfc8439_check();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encoding),
		cmocka_unit_test(test_aead_rfc8439_reused_context),
		cmocka_unit_test(test_keys_derive),
		cmocka_unit_test(test_key_load),
		cmocka_unit_test(test_cred_mac),
		cmocka_unit_test(test_roundtrip_both_stores),
		cmocka_unit_test(test_construction_matches_spec),
		cmocka_unit_test(test_sealer_refuses_old_seq),
		cmocka_unit_test(test_rotation_and_open_cache),
		cmocka_unit_test(test_keyring_unlock_per_hash),
		cmocka_unit_test(test_keyring_pk_check),
		cmocka_unit_test(test_keyring_plain_and_scram),
		cmocka_unit_test(test_keyring_rekey_keeps_old_records),
		cmocka_unit_test(test_keyring_retired_cap),
		cmocka_unit_test(test_keyring_reset),
		cmocka_unit_test(test_keyring_codec),
		cmocka_unit_test(test_each_field_flip),
		cmocka_unit_test(test_flip_head_record),
		cmocka_unit_test(test_wiped_record_flips),
		cmocka_unit_test(test_gap),
		cmocka_unit_test(test_swap_and_reorder),
		cmocka_unit_test(test_duplicates_and_insertions),
		cmocka_unit_test(test_truncated_tail),
		cmocka_unit_test(test_rollback_replays_delivered),
		cmocka_unit_test(test_replay_hidden_by_deletion),
		cmocka_unit_test(test_forked_record),
		cmocka_unit_test(test_row_tampering),
		cmocka_unit_test(test_wipe_and_compact),
		cmocka_unit_test(test_verify_hostile_input),
		cmocka_unit_test(test_chains_are_independent),
		cmocka_unit_test(test_chain_bookkeeping_per_store),
		cmocka_unit_test(test_cross_store_transplant),
		cmocka_unit_test(test_shared_row),
		cmocka_unit_test(test_threads),
	};
	const char *env = getenv("ROOST_SEAL_BENCH");

	if ((argc > 1 && strcmp(argv[1], "--bench") == 0) ||
	    (env != NULL && *env != '\0' && strcmp(env, "0") != 0)) {
		int r;
		if (seal_keys_derive(seal_key, &K) != 0)
			return 1;
		r = bench();
		seal_keys_clear(&K);
		return r;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* Per-user keyrings (DESIGN §5 "Keys"): an X25519 pair whose private key
 * exists at rest only wrapped under KEKs derived from the user's SCRAM
 * ClientKeys, the retired pairs of earlier passwords, and the chain's
 * anchors, all under the row MAC. */
#include "seal/seal-private.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "util/xalloc.h"

static size_t retired_wrap_len(uint32_t n)
{
	return SEAL_NONCE_LEN + (size_t)SEAL_KEY_LEN * n + SEAL_TAG_LEN;
}

/* KEK_h = HKDF-SHA256(salt = k_pepper, ikm = ClientKey_h,
 * info = "roost/v1/keyring" || lp(hash name) || lp(JID)). */
static int derive_kek(const struct seal_keys *keys, const char *jid,
		      enum scram_hash h, const unsigned char *client_key,
		      unsigned char kek[SEAL_KEY_LEN])
{
	static const char label[] = "roost/v1/keyring";
	unsigned char info[sizeof(label) - 1 + 4 + 8 + 4 + SEAL_JID_MAX];
	const char *name = seal_hash_name(h);
	size_t nlen = strlen(name), jlen = strlen(jid), off = 0;

	memcpy(info, label, sizeof(label) - 1);
	off += sizeof(label) - 1;
	seal_be32(info + off, (uint32_t)nlen);
	memcpy(info + off + 4, name, nlen);
	off += 4 + nlen;
	seal_be32(info + off, (uint32_t)jlen);
	memcpy(info + off + 4, jid, jlen);
	off += 4 + jlen;
	return seal_hkdf(keys->k_pepper, SEAL_KEY_LEN, client_key,
			 seal_hash_len(h), info, off, kek);
}

/* The AAD shared by both wraps: label || lp(hash name) || lp(JID) ||
 * u64 key_id || pk; the retired wrap adds u64 n || u64 each id. */
static size_t wrap_aad(const struct seal_keyring *kr, enum scram_hash h,
		       bool retired, unsigned char *aad)
{
	const char *label = retired ? "roost/v1/retired" : "roost/v1/wrap";
	const char *name = seal_hash_name(h);
	size_t off = strlen(label), nlen = strlen(name), jlen = strlen(kr->jid);

	memcpy(aad, label, off);
	seal_be32(aad + off, (uint32_t)nlen);
	memcpy(aad + off + 4, name, nlen);
	off += 4 + nlen;
	seal_be32(aad + off, (uint32_t)jlen);
	memcpy(aad + off + 4, kr->jid, jlen);
	off += 4 + jlen;
	seal_be64(aad + off, kr->key_id);
	off += 8;
	memcpy(aad + off, kr->pk, SEAL_KEY_LEN);
	off += SEAL_KEY_LEN;
	if (retired) {
		seal_be64(aad + off, kr->nretired);
		off += 8;
		for (uint32_t i = 0; i < kr->nretired; i++, off += 8)
			seal_be64(aad + off, kr->retired_ids[i]);
	}
	return off;
}

#define WRAP_AAD_MAX (16 + 4 + 8 + 4 + SEAL_JID_MAX + 8 + SEAL_KEY_LEN + 8 + \
		      8 * SEAL_MAX_RETIRED)

static int random_nonce(unsigned char nonce[SEAL_NONCE_LEN])
{
	return RAND_bytes(nonce, SEAL_NONCE_LEN) == 1 ? 0 : -1;
}

/* ---- row MAC ---- */

static int row_mac(const struct seal_keys *keys, const struct seal_keyring *kr,
		   unsigned char out[SEAL_KEY_LEN])
{
	struct seal_mac m;

	if (seal_jid_ok(kr->jid) != 0 || kr->nretired > SEAL_MAX_RETIRED)
		return -1;
	if (seal_mac_begin(&m, keys, SEAL_MAC_ROW, "roost/v1/row") != 0)
		return -1;
	seal_mac_u64(&m, kr->version);
	seal_mac_lp_str(&m, kr->jid);
	seal_mac_raw(&m, kr->pk, SEAL_KEY_LEN);
	seal_mac_u64(&m, kr->key_id);
	for (int h = 0; h < SEAL_NHASH; h++) {
		seal_mac_u64(&m, kr->has_wrap[h]);
		if (!kr->has_wrap[h])
			continue;
		seal_mac_lp(&m, kr->wrap[h], SEAL_WRAP_LEN);
		seal_mac_lp(&m, kr->retired_wrap[h],
			    kr->nretired ? retired_wrap_len(kr->nretired) : 0);
	}
	seal_mac_u64(&m, kr->nretired);
	for (uint32_t i = 0; i < kr->nretired; i++)
		seal_mac_u64(&m, kr->retired_ids[i]);
	for (int st = 0; st < SEAL_NSTORES; st++) {
		const struct seal_chain *c = &kr->chains[st];
		seal_mac_u64(&m, c->base_seq);
		seal_mac_raw(&m, c->base_chain, SEAL_KEY_LEN);
		seal_mac_u64(&m, c->head_seq);
		seal_mac_raw(&m, c->head_chain, SEAL_KEY_LEN);
		seal_mac_u64(&m, c->live);
		seal_mac_u64(&m, c->live_bytes);
	}
	return seal_mac_end(&m, out);
}

int seal_keyring_mac_update(const struct seal_keys *keys,
			    struct seal_keyring *kr)
{
	return row_mac(keys, kr, kr->mac);
}

int seal_keyring_mac_check(const struct seal_keys *keys,
			   const struct seal_keyring *kr)
{
	unsigned char want[SEAL_KEY_LEN];
	int ret = -1;

	if (row_mac(keys, kr, want) == 0 &&
	    CRYPTO_memcmp(want, kr->mac, SEAL_KEY_LEN) == 0)
		ret = 0;
	return ret;
}

bool seal_keyring_has_key(const struct seal_keyring *kr, uint32_t key_id)
{
	if (key_id == kr->key_id)
		return true;
	for (uint32_t i = 0; i < kr->nretired && i < SEAL_MAX_RETIRED; i++)
		if (kr->retired_ids[i] == key_id)
			return true;
	return false;
}

/* ---- making key pairs ---- */

/* Gives kr a new pair and key id and wraps it, and the retired keys
 * (rids/rsks, n of them, already in kr->retired_ids order), under each
 * given client key. kr->jid and the chain fields are kept. On success
 * *pair_r is the new private key (the caller owns it). */
static int install_pair(const struct seal_keys *keys, struct seal_keyring *kr,
			const unsigned char *const client_keys[SEAL_NHASH],
			const unsigned char *rsks, EVP_PKEY **pair_r)
{
	unsigned char sk[SEAL_KEY_LEN], kek[SEAL_KEY_LEN], aad[WRAP_AAD_MAX];
	unsigned char idb[4];
	uint32_t id;
	EVP_PKEY *pair;
	size_t aad_len;
	int ret = -1;

	if (client_keys[SCRAM_SHA1] == NULL && client_keys[SCRAM_SHA256] == NULL)
		return -1;
	if ((pair = seal_x25519_generate()) == NULL)
		return -1;
	if (seal_x25519_public(pair, kr->pk) != 0 ||
	    seal_x25519_private(pair, sk) != 0)
		goto out;
	/* Records name their key by id: the new one must differ from every
	 * id this user's records may carry, retired or the one replaced. */
	do {
		if (RAND_bytes(idb, sizeof(idb)) != 1)
			goto out;
		id = seal_get32(idb);
	} while (id == kr->key_id || seal_keyring_has_key(kr, id));
	kr->key_id = id;
	for (int h = 0; h < SEAL_NHASH; h++) {
		kr->has_wrap[h] = client_keys[h] != NULL;
		memset(kr->wrap[h], 0, SEAL_WRAP_LEN);
		memset(kr->retired_wrap[h], 0, SEAL_RETIRED_WRAP_MAX);
		if (!kr->has_wrap[h])
			continue;
		if (derive_kek(keys, kr->jid, h, client_keys[h], kek) != 0)
			goto out;
		aad_len = wrap_aad(kr, h, false, aad);
		if (random_nonce(kr->wrap[h]) != 0 ||
		    seal_aead_seal(kek, kr->wrap[h], aad, aad_len, sk,
				   SEAL_KEY_LEN, kr->wrap[h] + SEAL_NONCE_LEN) != 0)
			goto out;
		if (kr->nretired > 0) {
			aad_len = wrap_aad(kr, h, true, aad);
			if (random_nonce(kr->retired_wrap[h]) != 0 ||
			    seal_aead_seal(kek, kr->retired_wrap[h], aad, aad_len,
					   rsks, (size_t)SEAL_KEY_LEN * kr->nretired,
					   kr->retired_wrap[h] + SEAL_NONCE_LEN) != 0)
				goto out;
		}
		OPENSSL_cleanse(kek, sizeof(kek));
	}
	if (seal_keyring_mac_update(keys, kr) != 0)
		goto out;
	*pair_r = pair;
	pair = NULL;
	ret = 0;
out:
	OPENSSL_cleanse(sk, sizeof(sk));
	OPENSSL_cleanse(kek, sizeof(kek));
	EVP_PKEY_free(pair);
	return ret;
}

/* The unlocked form of a keyring install_pair just made. */
static struct seal_unlocked *unlocked_of(const struct seal_keyring *kr,
					 EVP_PKEY *pair, const unsigned char *rsks)
{
	return seal_unlocked_new(kr->key_id, pair, kr->retired_ids, rsks,
				 kr->nretired);
}

static int finish(const struct seal_keyring *tmp, struct seal_keyring *kr,
		  EVP_PKEY *pair, const unsigned char *rsks,
		  struct seal_unlocked **unlocked_r)
{
	struct seal_unlocked *u = NULL;

	if (unlocked_r != NULL) {
		u = unlocked_of(tmp, pair, rsks);
		if (u == NULL)
			return -1;
		*unlocked_r = u;
	} else {
		EVP_PKEY_free(pair);
	}
	*kr = *tmp;
	return 0;
}

int seal_keyring_create(const struct seal_keys *keys, const char *jid,
			const unsigned char *client_key_sha1,
			const unsigned char *client_key_sha256,
			struct seal_keyring *out,
			struct seal_unlocked **unlocked_r)
{
	const unsigned char *cks[SEAL_NHASH] = { client_key_sha1, client_key_sha256 };
	struct seal_keyring *tmp;
	EVP_PKEY *pair;
	int ret = -1;

	if (seal_jid_ok(jid) != 0)
		return -1;
	/* Zeroed: every store's base = head = 0, chain_0 = 32 zero bytes,
	 * live 0. */
	tmp = xcalloc(1, sizeof(*tmp));
	tmp->version = SEAL_KEYRING_VERSION;
	memcpy(tmp->jid, jid, strlen(jid) + 1);
	if (install_pair(keys, tmp, cks, NULL, &pair) == 0)
		ret = finish(tmp, out, pair, NULL, unlocked_r);
	free(tmp);
	return ret;
}

int seal_keyring_unlock(const struct seal_keys *keys,
			const struct seal_keyring *kr, enum scram_hash h,
			const unsigned char *client_key,
			struct seal_unlocked **out, const char **error_r)
{
	unsigned char kek[SEAL_KEY_LEN], sk[SEAL_KEY_LEN], pk[SEAL_KEY_LEN];
	unsigned char aad[WRAP_AAD_MAX];
	unsigned char *rsks = NULL;
	size_t rlen = 0, aad_len;
	EVP_PKEY *pair = NULL;
	const char *dummy;
	int ret = -1;

	if (error_r == NULL)
		error_r = &dummy;
	*out = NULL;
	if ((h != SCRAM_SHA1 && h != SCRAM_SHA256) || seal_jid_ok(kr->jid) != 0 ||
	    kr->nretired > SEAL_MAX_RETIRED) {
		*error_r = "malformed keyring";
		return -1;
	}
	if (!kr->has_wrap[h]) {
		*error_r = "no wrapped key for this hash";
		return -1;
	}
	if (derive_kek(keys, kr->jid, h, client_key, kek) != 0) {
		*error_r = "key derivation failed";
		return -1;
	}
	aad_len = wrap_aad(kr, h, false, aad);
	if (seal_aead_open(kek, kr->wrap[h], aad, aad_len,
			   kr->wrap[h] + SEAL_NONCE_LEN,
			   SEAL_KEY_LEN + SEAL_TAG_LEN, sk) != 0) {
		*error_r = "private key does not unwrap";
		goto out;
	}
	/* pk is public and sits beside the wrap: a row whose pk was swapped
	 * for the attacker's must not get records sealed to it, nor pass
	 * here. */
	if ((pair = seal_x25519_from_private(sk)) == NULL ||
	    seal_x25519_public(pair, pk) != 0) {
		*error_r = "bad private key";
		goto out;
	}
	if (CRYPTO_memcmp(pk, kr->pk, SEAL_KEY_LEN) != 0) {
		*error_r = "public key does not match the private key";
		goto out;
	}
	if (kr->nretired > 0) {
		rlen = (size_t)SEAL_KEY_LEN * kr->nretired;
		rsks = xmalloc(rlen);
		aad_len = wrap_aad(kr, h, true, aad);
		if (seal_aead_open(kek, kr->retired_wrap[h], aad, aad_len,
				   kr->retired_wrap[h] + SEAL_NONCE_LEN,
				   rlen + SEAL_TAG_LEN, rsks) != 0) {
			*error_r = "retired keys do not unwrap";
			goto out;
		}
	}
	*out = seal_unlocked_new(kr->key_id, pair, kr->retired_ids, rsks,
				 kr->nretired);
	pair = NULL;
	if (*out == NULL) {
		*error_r = "bad private key";
		goto out;
	}
	ret = 0;
out:
	OPENSSL_cleanse(kek, sizeof(kek));
	OPENSSL_cleanse(sk, sizeof(sk));
	xfree_secret(rsks, rlen);
	EVP_PKEY_free(pair);
	return ret;
}

int seal_keyring_rekey(const struct seal_keys *keys, struct seal_keyring *kr,
		       const struct seal_unlocked *old,
		       const unsigned char *client_key_sha1,
		       const unsigned char *client_key_sha256,
		       struct seal_unlocked **unlocked_r)
{
	const unsigned char *cks[SEAL_NHASH] = { client_key_sha1, client_key_sha256 };
	/* Oldest first, the replaced current pair last. */
	uint32_t ids[SEAL_MAX_RETIRED + 1];
	unsigned char *sks;
	size_t sks_len = (size_t)SEAL_KEY_LEN * (SEAL_MAX_RETIRED + 1);
	struct seal_keyring *tmp;
	uint32_t n = 0, drop;
	EVP_PKEY *pair;
	int ret = -1;

	if (kr->nretired > SEAL_MAX_RETIRED ||
	    seal_unlocked_key_id(old) != kr->key_id)
		return -1;
	sks = xmalloc(sks_len);
	for (uint32_t i = 0; i < kr->nretired; i++, n++) {
		ids[n] = kr->retired_ids[i];
		if (seal_unlocked_raw(old, ids[n], sks + n * SEAL_KEY_LEN) != 0)
			goto out;
	}
	ids[n] = kr->key_id;
	if (seal_unlocked_raw(old, ids[n], sks + n * SEAL_KEY_LEN) != 0)
		goto out;
	n++;
	drop = n > SEAL_MAX_RETIRED ? n - SEAL_MAX_RETIRED : 0;

	tmp = xmalloc(sizeof(*tmp));
	*tmp = *kr;
	tmp->nretired = n - drop;
	memset(tmp->retired_ids, 0, sizeof(tmp->retired_ids));
	memcpy(tmp->retired_ids, ids + drop, sizeof(ids[0]) * (n - drop));
	if (install_pair(keys, tmp, cks, sks + drop * SEAL_KEY_LEN, &pair) == 0)
		ret = finish(tmp, kr, pair, sks + drop * SEAL_KEY_LEN, unlocked_r);
	free(tmp);
out:
	xfree_secret(sks, sks_len);
	return ret;
}

int seal_keyring_reset(const struct seal_keys *keys, struct seal_keyring *kr,
		       const unsigned char *client_key_sha1,
		       const unsigned char *client_key_sha256,
		       struct seal_unlocked **unlocked_r)
{
	const unsigned char *cks[SEAL_NHASH] = { client_key_sha1, client_key_sha256 };
	struct seal_keyring *tmp;
	EVP_PKEY *pair;
	int ret = -1;

	if (seal_jid_ok(kr->jid) != 0)
		return -1;
	tmp = xmalloc(sizeof(*tmp));
	*tmp = *kr;
	tmp->version = SEAL_KEYRING_VERSION;
	tmp->nretired = 0;
	memset(tmp->retired_ids, 0, sizeof(tmp->retired_ids));
	if (install_pair(keys, tmp, cks, NULL, &pair) == 0)
		ret = finish(tmp, kr, pair, NULL, unlocked_r);
	free(tmp);
	return ret;
}

/* ---- row bookkeeping ---- */

static bool store_ok(enum seal_store store)
{
	return store == SEAL_STORE_OFFLINE || store == SEAL_STORE_ARCHIVE;
}

int seal_keyring_advance(struct seal_keyring *kr, enum seal_store store,
			 const struct seal_record *rec)
{
	struct seal_chain *c;

	if (!store_ok(store))
		return -1;
	c = &kr->chains[store];
	if (rec->seq != c->head_seq + 1 || rec->wiped ||
	    c->live_bytes + rec->ct_len < c->live_bytes)
		return -1;
	c->head_seq = rec->seq;
	memcpy(c->head_chain, rec->chain, SEAL_KEY_LEN);
	c->live++;
	c->live_bytes += rec->ct_len;
	return 0;
}

int seal_keyring_note_seal(const struct seal_keys *keys,
			   struct seal_keyring *kr, enum seal_store store,
			   const struct seal_record *rec)
{
	struct seal_keyring tmp = *kr;

	if (seal_keyring_advance(&tmp, store, rec) != 0 ||
	    seal_keyring_mac_update(keys, &tmp) != 0)
		return -1;
	*kr = tmp;
	return 0;
}

int seal_keyring_note_wipe(const struct seal_keys *keys,
			   struct seal_keyring *kr, enum seal_store store,
			   size_t ct_len)
{
	struct seal_keyring tmp;
	struct seal_chain *c;

	if (!store_ok(store) || kr->chains[store].live == 0 ||
	    kr->chains[store].live_bytes < ct_len)
		return -1;
	tmp = *kr;
	c = &tmp.chains[store];
	c->live--;
	c->live_bytes -= ct_len;
	if (seal_keyring_mac_update(keys, &tmp) != 0)
		return -1;
	*kr = tmp;
	return 0;
}

int seal_keyring_note_compact(const struct seal_keys *keys,
			      struct seal_keyring *kr, enum seal_store store,
			      uint64_t seq,
			      const unsigned char chain[SEAL_KEY_LEN])
{
	struct seal_keyring tmp;
	struct seal_chain *c;

	if (!store_ok(store) || seq < kr->chains[store].base_seq ||
	    seq > kr->chains[store].head_seq)
		return -1;
	tmp = *kr;
	c = &tmp.chains[store];
	c->base_seq = seq;
	memcpy(c->base_chain, chain, SEAL_KEY_LEN);
	if (seal_keyring_mac_update(keys, &tmp) != 0)
		return -1;
	*kr = tmp;
	return 0;
}

void seal_anchor_of(const struct seal_keyring *kr, enum seal_store store,
		    struct seal_chain *out)
{
	if (!store_ok(store)) {
		memset(out, 0, sizeof(*out));
		return;
	}
	*out = kr->chains[store];
}

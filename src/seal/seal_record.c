/* Records: opening, the chain and tomb MACs, removal. Sealing lives with
 * the sealer (seal_sealer.c), which owns the ephemeral key. */
#include "seal/seal-private.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "util/xalloc.h"

void seal_record_clear(struct seal_record *rec)
{
	if (rec->ct != NULL)
		xfree_secret(rec->ct, rec->ct_len);
	memset(rec, 0, sizeof(*rec));
}

int seal_record_open(struct seal_unlocked *u, const char *jid,
		     enum seal_store store, const struct seal_record *rec,
		     unsigned char **pt_r, size_t *len_r)
{
	unsigned char k[SEAL_KEY_LEN], aad[SEAL_AAD_MAX];
	unsigned char *pt;
	size_t aad_len, len;

	if (rec->wiped || rec->ct == NULL || rec->ct_len < SEAL_TAG_LEN ||
	    rec->ct_len - SEAL_TAG_LEN > SEAL_MAX_PLAINTEXT ||
	    seal_jid_ok(jid) != 0)
		return -1;
	if (seal_unlocked_open_key(u, rec->key_id, store, rec->epk, k) != 0)
		return -1;
	len = rec->ct_len - SEAL_TAG_LEN;
	aad_len = seal_record_aad(jid, rec->seq, rec->stamp, rec->key_id, aad);
	pt = xmalloc(len + 1);
	if (seal_aead_open(k, rec->nonce, aad, aad_len, rec->ct, rec->ct_len,
			   pt) != 0) {
		OPENSSL_cleanse(k, sizeof(k));
		free(pt);
		return -1;
	}
	OPENSSL_cleanse(k, sizeof(k));
	pt[len] = '\0';
	*pt_r = pt;
	*len_r = len;
	return 0;
}

/* The per-store labels of the chain and tomb MACs (seal.h). */
static const char *chain_label(enum seal_store store)
{
	switch (store) {
	case SEAL_STORE_OFFLINE: return "roost/v1/chain";
	case SEAL_STORE_ARCHIVE: return "roost/v1/archive/chain";
	}
	return NULL;
}

static const char *tomb_label(enum seal_store store)
{
	switch (store) {
	case SEAL_STORE_OFFLINE: return "roost/v1/tomb";
	case SEAL_STORE_ARCHIVE: return "roost/v1/archive/tomb";
	}
	return NULL;
}

int seal_record_chain_begin(struct seal_mac *m, const struct seal_keys *keys,
			    const char *jid, enum seal_store store,
			    const struct seal_record *rec)
{
	const char *label = chain_label(store);

	if (label == NULL || seal_jid_ok(jid) != 0 ||
	    (rec->ct == NULL && rec->ct_len > 0))
		return -1;
	if (seal_mac_begin(m, keys, SEAL_MAC_CHAIN, label) != 0)
		return -1;
	seal_mac_lp_str(m, jid);
	seal_mac_u64(m, rec->seq);
	seal_mac_u64(m, (uint64_t)rec->stamp);
	seal_mac_u64(m, rec->key_id);
	seal_mac_raw(m, rec->epk, SEAL_KEY_LEN);
	seal_mac_raw(m, rec->nonce, SEAL_NONCE_LEN);
	seal_mac_lp(m, rec->ct, rec->ct_len);
	return 0;
}

int seal_record_chain(const struct seal_keys *keys, const char *jid,
		      enum seal_store store, const struct seal_record *rec,
		      const unsigned char prev_chain[SEAL_KEY_LEN],
		      unsigned char out[SEAL_KEY_LEN])
{
	struct seal_mac m;

	if (seal_record_chain_begin(&m, keys, jid, store, rec) != 0)
		return -1;
	seal_mac_raw(&m, prev_chain, SEAL_KEY_LEN);
	return seal_mac_end(&m, out);
}

int seal_record_tomb(const struct seal_keys *keys, const char *jid,
		     enum seal_store store, uint64_t seq,
		     const unsigned char chain[SEAL_KEY_LEN],
		     unsigned char out[SEAL_KEY_LEN])
{
	const char *label = tomb_label(store);
	struct seal_mac m;

	if (label == NULL || seal_jid_ok(jid) != 0)
		return -1;
	if (seal_mac_begin(&m, keys, SEAL_MAC_TOMB, label) != 0)
		return -1;
	seal_mac_lp_str(&m, jid);
	seal_mac_u64(&m, seq);
	seal_mac_raw(&m, chain, SEAL_KEY_LEN);
	return seal_mac_end(&m, out);
}

int seal_record_wipe(const struct seal_keys *keys, const char *jid,
		     enum seal_store store, struct seal_record *rec)
{
	unsigned char tomb[SEAL_KEY_LEN];

	if (rec->wiped || seal_record_tomb(keys, jid, store, rec->seq,
					   rec->chain, tomb) != 0)
		return -1;
	if (rec->ct != NULL)
		xfree_secret(rec->ct, rec->ct_len);
	rec->ct = NULL;
	rec->wiped = true;
	memcpy(rec->tomb, tomb, SEAL_KEY_LEN);
	return 0;
}

int seal_aux_mac(const struct seal_keys *keys, const char *jid,
		 const char *kind, const void *data, size_t len,
		 unsigned char out[SEAL_KEY_LEN])
{
	struct seal_mac m;

	if (seal_jid_ok(jid) != 0 || kind == NULL || (data == NULL && len > 0))
		return -1;
	if (seal_mac_begin(&m, keys, SEAL_MAC_ROW, "roost/v1/aux") != 0)
		return -1;
	seal_mac_lp_str(&m, jid);
	seal_mac_lp_str(&m, kind);
	seal_mac_lp(&m, data, len);
	return seal_mac_end(&m, out);
}

int seal_aux_check(const struct seal_keys *keys, const char *jid,
		   const char *kind, const void *data, size_t len,
		   const unsigned char mac[SEAL_KEY_LEN])
{
	unsigned char want[SEAL_KEY_LEN];

	if (seal_aux_mac(keys, jid, kind, data, len, want) != 0)
		return -1;
	return CRYPTO_memcmp(want, mac, SEAL_KEY_LEN) == 0 ? 0 : -1;
}

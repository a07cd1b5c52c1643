/* Internals shared by the seal_*.c files: the primitives, each a thin,
 * checked wrapper over OpenSSL 3, and the MAC-input writer that applies
 * DESIGN §5's encoding. Not for users of seal.h. */
#ifndef ROOST_SEAL_SEAL_PRIVATE_H
#define ROOST_SEAL_SEAL_PRIVATE_H

/* Before any OpenSSL header: seal_hmac.c uses SHA256_* (see seal_mac). */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "seal/seal.h"

/* Indexes of seal_keys.mac_tmpl. */
enum seal_mac_kind { SEAL_MAC_CHAIN, SEAL_MAC_TOMB, SEAL_MAC_ROW, SEAL_MAC_CRED };

/* Fetches the algorithms once per process (pthread_once). The handles are
 * never changed afterwards, so sharing them between threads is safe; this
 * is the only static state in src/seal/. Returns 0 or -1. */
int seal_algs_init(void);

/* HMAC-SHA256 on SHA-256's own compression state (seal_hmac.c): the key
 * is absorbed once into inner and outer states, and each MAC starts from
 * a plain copy of them. Through EVP_MAC every MAC paid for a context
 * duplicate, provider lookups and frees, more than the two or three
 * compressions of the small messages MACed here. OpenSSL 3 deprecates
 * the SHA256_* calls, not their implementation (the same code EVP uses),
 * hence OPENSSL_SUPPRESS_DEPRECATED above. */
/* An HMAC-SHA256 being computed: label || fields, encoded as DESIGN §5
 * says. Errors are sticky and reported by seal_mac_end. */
struct seal_mac {
	SHA256_CTX inner;
	const struct seal_hmac_key *key;
	int err;
};

/* The keyed states for `key`: NULL only if `key` is NULL. Free with
 * seal_hmac_key_free (wipes them). */
struct seal_hmac_key *seal_hmac_key_new(const unsigned char key[SEAL_KEY_LEN]);
void seal_hmac_key_free(struct seal_hmac_key *k);

int seal_mac_begin(struct seal_mac *m, const struct seal_keys *keys,
		   enum seal_mac_kind kind, const char *label);
void seal_mac_raw(struct seal_mac *m, const void *data, size_t len);
void seal_mac_u64(struct seal_mac *m, uint64_t v);
void seal_mac_lp(struct seal_mac *m, const void *data, size_t len);
void seal_mac_lp_str(struct seal_mac *m, const char *s);
/* Continues `m` in `copy` as well: both then go on from the same input,
 * so a common prefix is hashed once. 0 or -1 (copy is then unusable). */
int seal_mac_fork(struct seal_mac *m, struct seal_mac *copy);
/* Writes the MAC, frees the context; 0 or -1. */
int seal_mac_end(struct seal_mac *m, unsigned char out[SEAL_KEY_LEN]);
/* 0 when mac equals the computed one (constant-time), else -1; frees. */
int seal_mac_verify(struct seal_mac *m, const unsigned char mac[SEAL_KEY_LEN]);

/* HKDF-SHA256 (extract and expand) to 32 bytes; salt may be NULL. */
int seal_hkdf(const unsigned char *salt, size_t salt_len,
	      const unsigned char *ikm, size_t ikm_len,
	      const void *info, size_t info_len,
	      unsigned char out[SEAL_KEY_LEN]);

/* ChaCha20-Poly1305. seal writes len + 16 bytes (ct || tag) to `out`;
 * open writes ct_len - 16 bytes and fails on a bad tag. */
int seal_aead_seal(const unsigned char key[SEAL_KEY_LEN],
		   const unsigned char nonce[SEAL_NONCE_LEN],
		   const void *aad, size_t aad_len,
		   const void *pt, size_t len, unsigned char *out);
int seal_aead_open(const unsigned char key[SEAL_KEY_LEN],
		   const unsigned char nonce[SEAL_NONCE_LEN],
		   const void *aad, size_t aad_len,
		   const unsigned char *ct, size_t ct_len, unsigned char *out);

/* X25519 through EVP_PKEY: keys stay in OpenSSL's memory, which it
 * cleanses on free. */
EVP_PKEY *seal_x25519_generate(void);
EVP_PKEY *seal_x25519_from_private(const unsigned char sk[SEAL_KEY_LEN]);
int seal_x25519_public(const EVP_PKEY *key, unsigned char pk[SEAL_KEY_LEN]);
int seal_x25519_private(const EVP_PKEY *key, unsigned char sk[SEAL_KEY_LEN]);
/* Fails on an all-zero shared secret (low-order peer key). */
int seal_x25519_derive(EVP_PKEY *priv, const unsigned char peer[SEAL_KEY_LEN],
		       unsigned char out[SEAL_KEY_LEN]);

/* K = HKDF(ikm = X25519(priv, peer), info = "roost/v1/seal" || lp(store) ||
 * epk || pk). Sealing passes (esk, pk); opening passes (sk, epk). */
int seal_record_key(EVP_PKEY *priv, const unsigned char peer[SEAL_KEY_LEN],
		    enum seal_store store, const unsigned char epk[SEAL_KEY_LEN],
		    const unsigned char pk[SEAL_KEY_LEN],
		    unsigned char k[SEAL_KEY_LEN]);

/* AAD = lp(JID) || u64 seq || u64 stamp || u64 key_id, into `aad`
 * (at least SEAL_AAD_MAX bytes); returns its length. */
#define SEAL_AAD_MAX (4 + SEAL_JID_MAX + 3 * 8)
size_t seal_record_aad(const char *jid, uint64_t seq, int64_t stamp,
		       uint32_t key_id, unsigned char *aad);

/* Starts the chain MAC of `rec` in `store` (seal.h): everything up to,
 * not including, the predecessor's chain. The walk forks it to try
 * several predecessors. 0 or -1 (bad store, JID or record). */
int seal_record_chain_begin(struct seal_mac *m, const struct seal_keys *keys,
			    const char *jid, enum seal_store store,
			    const struct seal_record *rec);

/* ---- unlocked keyrings (seal_unlocked.c) ---- */

/* Takes ownership of `current` (whose raw private key must be readable).
 * rids/rsks: the retired key ids and their 32-byte private keys, copied. */
struct seal_unlocked *seal_unlocked_new(uint32_t key_id, EVP_PKEY *current,
					const uint32_t *rids,
					const unsigned char *rsks, size_t nret);
/* Copies the raw private key of key_id into sk; -1 if unknown. Reads only
 * what never changes after seal_unlocked_new, so it needs no lock. */
int seal_unlocked_raw(const struct seal_unlocked *u, uint32_t key_id,
		      unsigned char sk[SEAL_KEY_LEN]);
/* K for opening records of key_id sealed under epk in `store`: from the
 * cache, or derived (and cached). */
int seal_unlocked_open_key(struct seal_unlocked *u, uint32_t key_id,
			   enum seal_store store,
			   const unsigned char epk[SEAL_KEY_LEN],
			   unsigned char k[SEAL_KEY_LEN]);

/* A valid JID for MAC inputs: 1..SEAL_JID_MAX bytes. */
int seal_jid_ok(const char *jid);

const char *seal_hash_name(enum scram_hash h);
size_t seal_hash_len(enum scram_hash h);

static inline void seal_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static inline void seal_be32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static inline uint64_t seal_get64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static inline uint32_t seal_get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

#endif

/* The primitives of DESIGN §5 over OpenSSL 3's EVP API: HKDF-SHA256
 * (EVP_KDF), ChaCha20-Poly1305 (EVP_CIPHER) and X25519 (EVP_PKEY);
 * HMAC-SHA256 is in seal_hmac.c. Algorithms are fetched once: an
 * implicit fetch on every call costs more than the small inputs it would
 * serve. For the same reason each thread keeps one ChaCha20-Poly1305
 * context per direction and re-keys it per record. */
#include "seal/seal-private.h"

#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

static pthread_once_t algs_once = PTHREAD_ONCE_INIT;
static EVP_KDF *alg_hkdf;
static EVP_CIPHER *alg_chacha;
static int algs_ok;
/* The thread's AEAD contexts (enum aead_dir), freed when it exits. */
static pthread_key_t aead_key[2];

enum aead_dir { AEAD_SEAL, AEAD_OPEN };

static void aead_ctx_free(void *ctx)
{
	EVP_CIPHER_CTX_free(ctx); /* cleanses the last key schedule */
}

static void algs_fetch(void)
{
	alg_hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	alg_chacha = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
	algs_ok = alg_hkdf != NULL && alg_chacha != NULL &&
		  pthread_key_create(&aead_key[AEAD_SEAL], aead_ctx_free) == 0 &&
		  pthread_key_create(&aead_key[AEAD_OPEN], aead_ctx_free) == 0;
}

int seal_algs_init(void)
{
	if (pthread_once(&algs_once, algs_fetch) != 0 || !algs_ok)
		return -1;
	return 0;
}

/* ---- HKDF ---- */

int seal_hkdf(const unsigned char *salt, size_t salt_len,
	      const unsigned char *ikm, size_t ikm_len,
	      const void *info, size_t info_len,
	      unsigned char out[SEAL_KEY_LEN])
{
	OSSL_PARAM params[5], *p = params;
	EVP_KDF_CTX *ctx;
	int ret = -1;

	if (seal_algs_init() != 0 || (ctx = EVP_KDF_CTX_new(alg_hkdf)) == NULL)
		return -1;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						(char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						 (void *)ikm, ikm_len);
	if (salt != NULL)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
							 (void *)salt, salt_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
						 (void *)info, info_len);
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, SEAL_KEY_LEN, params) == 1)
		ret = 0;
	EVP_KDF_CTX_free(ctx); /* cleanses its copy of the key */
	return ret;
}

/* ---- ChaCha20-Poly1305 ---- */

/* The thread's context for `dir`, keyed with (key, nonce). A context
 * made once and re-keyed costs a fraction of one made per record (the
 * provider context, its parameters, the allocations). Between records it
 * holds the last record's key schedule: that K is also in the sealer's
 * or the unlocked keyring's cache, so nothing new stays in memory. */
static EVP_CIPHER_CTX *aead_ctx(enum aead_dir dir,
				const unsigned char key[SEAL_KEY_LEN],
				const unsigned char nonce[SEAL_NONCE_LEN])
{
	EVP_CIPHER_CTX *ctx = pthread_getspecific(aead_key[dir]);
	const EVP_CIPHER *alg = NULL;

	if (ctx == NULL) {
		if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
			return NULL;
		if (pthread_setspecific(aead_key[dir], ctx) != 0) {
			EVP_CIPHER_CTX_free(ctx);
			return NULL;
		}
		alg = alg_chacha; /* NULL later: re-key, keep the provider ctx */
	}
	if (EVP_CipherInit_ex2(ctx, alg, key, nonce, dir == AEAD_SEAL, NULL) != 1)
		return NULL;
	return ctx;
}

int seal_aead_seal(const unsigned char key[SEAL_KEY_LEN],
		   const unsigned char nonce[SEAL_NONCE_LEN],
		   const void *aad, size_t aad_len,
		   const void *pt, size_t len, unsigned char *out)
{
	EVP_CIPHER_CTX *ctx;
	int n;

	if (len > SEAL_MAX_PLAINTEXT || aad_len > INT32_MAX || seal_algs_init() != 0 ||
	    (ctx = aead_ctx(AEAD_SEAL, key, nonce)) == NULL)
		return -1;
	if (aad_len > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
		return -1;
	if (len > 0 && (EVP_EncryptUpdate(ctx, out, &n, pt, (int)len) != 1 ||
			(size_t)n != len))
		return -1;
	if (EVP_EncryptFinal_ex(ctx, out + len, &n) != 1 || n != 0)
		return -1;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, SEAL_TAG_LEN,
				out + len) != 1)
		return -1;
	return 0;
}

int seal_aead_open(const unsigned char key[SEAL_KEY_LEN],
		   const unsigned char nonce[SEAL_NONCE_LEN],
		   const void *aad, size_t aad_len,
		   const unsigned char *ct, size_t ct_len, unsigned char *out)
{
	unsigned char tag[SEAL_TAG_LEN];
	EVP_CIPHER_CTX *ctx;
	size_t len;
	int n, ret = -1;

	if (ct_len < SEAL_TAG_LEN || ct_len - SEAL_TAG_LEN > SEAL_MAX_PLAINTEXT ||
	    aad_len > INT32_MAX || seal_algs_init() != 0 ||
	    (ctx = aead_ctx(AEAD_OPEN, key, nonce)) == NULL)
		return -1;
	len = ct_len - SEAL_TAG_LEN;
	memcpy(tag, ct + len, SEAL_TAG_LEN);
	if (aad_len > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
		goto out;
	if (len > 0 && (EVP_DecryptUpdate(ctx, out, &n, ct, (int)len) != 1 ||
			(size_t)n != len))
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, SEAL_TAG_LEN, tag) != 1)
		goto out;
	if (EVP_DecryptFinal_ex(ctx, out + len, &n) != 1)
		goto out;
	ret = 0;
out:
	/* A failed open must not leave unauthenticated plaintext behind. */
	if (ret != 0 && len > 0)
		OPENSSL_cleanse(out, len);
	return ret;
}

/* ---- X25519 ---- */

EVP_PKEY *seal_x25519_generate(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
}

EVP_PKEY *seal_x25519_from_private(const unsigned char sk[SEAL_KEY_LEN])
{
	return EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, sk,
					       SEAL_KEY_LEN);
}

int seal_x25519_public(const EVP_PKEY *key, unsigned char pk[SEAL_KEY_LEN])
{
	size_t n = SEAL_KEY_LEN;

	if (EVP_PKEY_get_raw_public_key(key, pk, &n) != 1 || n != SEAL_KEY_LEN)
		return -1;
	return 0;
}

int seal_x25519_private(const EVP_PKEY *key, unsigned char sk[SEAL_KEY_LEN])
{
	size_t n = SEAL_KEY_LEN;

	if (EVP_PKEY_get_raw_private_key(key, sk, &n) != 1 || n != SEAL_KEY_LEN) {
		OPENSSL_cleanse(sk, SEAL_KEY_LEN);
		return -1;
	}
	return 0;
}

int seal_x25519_derive(EVP_PKEY *priv, const unsigned char peer[SEAL_KEY_LEN],
		       unsigned char out[SEAL_KEY_LEN])
{
	EVP_PKEY *pub;
	EVP_PKEY_CTX *ctx = NULL;
	size_t n = SEAL_KEY_LEN;
	int ret = -1;

	pub = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, peer,
					     SEAL_KEY_LEN);
	if (pub == NULL)
		return -1;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
	/* OpenSSL's X25519 derive refuses an all-zero result, so a
	 * low-order peer key cannot force a known K. */
	if (ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
	    EVP_PKEY_derive_set_peer_ex(ctx, pub, 0) == 1 &&
	    EVP_PKEY_derive(ctx, out, &n) == 1 && n == SEAL_KEY_LEN)
		ret = 0;
	if (ret != 0)
		OPENSSL_cleanse(out, SEAL_KEY_LEN);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pub);
	return ret;
}

int seal_record_key(EVP_PKEY *priv, const unsigned char peer[SEAL_KEY_LEN],
		    enum seal_store store, const unsigned char epk[SEAL_KEY_LEN],
		    const unsigned char pk[SEAL_KEY_LEN],
		    unsigned char k[SEAL_KEY_LEN])
{
	static const char label[] = "roost/v1/seal";
	unsigned char info[sizeof(label) - 1 + 4 + 16 + 2 * SEAL_KEY_LEN];
	unsigned char shared[SEAL_KEY_LEN];
	const char *name = seal_store_label(store);
	size_t nlen, off = 0;
	int ret;

	if (name == NULL || (nlen = strlen(name)) > 16)
		return -1;
	memcpy(info, label, sizeof(label) - 1);
	off += sizeof(label) - 1;
	seal_be32(info + off, (uint32_t)nlen);
	off += 4;
	memcpy(info + off, name, nlen);
	off += nlen;
	memcpy(info + off, epk, SEAL_KEY_LEN);
	off += SEAL_KEY_LEN;
	memcpy(info + off, pk, SEAL_KEY_LEN);
	off += SEAL_KEY_LEN;
	if (seal_x25519_derive(priv, peer, shared) != 0)
		return -1;
	ret = seal_hkdf(NULL, 0, shared, sizeof(shared), info, off, k);
	OPENSSL_cleanse(shared, sizeof(shared));
	return ret;
}

size_t seal_record_aad(const char *jid, uint64_t seq, int64_t stamp,
		       uint32_t key_id, unsigned char *aad)
{
	size_t jlen = strlen(jid);

	seal_be32(aad, (uint32_t)jlen);
	memcpy(aad + 4, jid, jlen);
	seal_be64(aad + 4 + jlen, seq);
	seal_be64(aad + 12 + jlen, (uint64_t)stamp);
	seal_be64(aad + 20 + jlen, key_id);
	return 28 + jlen;
}

int seal_jid_ok(const char *jid)
{
	size_t n;

	if (jid == NULL)
		return -1;
	n = strnlen(jid, SEAL_JID_MAX + 1);
	return n >= 1 && n <= SEAL_JID_MAX ? 0 : -1;
}

const char *seal_hash_name(enum scram_hash h)
{
	/* The names DESIGN §5 and scram_hash_name use; repeated here so that
	 * roost_seal does not link roost_sasl for two strings. */
	return h == SCRAM_SHA256 ? "SHA-256" : "SHA-1";
}

size_t seal_hash_len(enum scram_hash h)
{
	return h == SCRAM_SHA256 ? 32 : 20;
}

/* HMAC-SHA256 (RFC 2104) from precomputed inner and outer states: a MAC
 * is a struct copy, the message's compressions and one more for the
 * outer hash. seal-private.h says why not EVP_MAC. */
#include "seal/seal-private.h"

#include <string.h>

#include <openssl/crypto.h>

#include "util/xalloc.h"

#define BLOCK 64

struct seal_hmac_key {
	SHA256_CTX inner, outer; /* after key ^ ipad, key ^ opad */
};

struct seal_hmac_key *seal_hmac_key_new(const unsigned char key[SEAL_KEY_LEN])
{
	struct seal_hmac_key *k;
	unsigned char pad[BLOCK];

	if (key == NULL)
		return NULL;
	k = xmalloc(sizeof(*k));
	/* A 32-byte key is shorter than the block: zero-padded, not hashed. */
	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < SEAL_KEY_LEN; i++)
		pad[i] ^= key[i];
	SHA256_Init(&k->inner);
	SHA256_Update(&k->inner, pad, sizeof(pad));
	memset(pad, 0x5c, sizeof(pad));
	for (size_t i = 0; i < SEAL_KEY_LEN; i++)
		pad[i] ^= key[i];
	SHA256_Init(&k->outer);
	SHA256_Update(&k->outer, pad, sizeof(pad));
	OPENSSL_cleanse(pad, sizeof(pad));
	return k;
}

void seal_hmac_key_free(struct seal_hmac_key *k)
{
	if (k == NULL)
		return;
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

int seal_mac_begin(struct seal_mac *m, const struct seal_keys *keys,
		   enum seal_mac_kind kind, const char *label)
{
	m->err = 0;
	m->key = keys->mac_tmpl[kind];
	if (m->key == NULL) {
		m->err = 1;
		return -1;
	}
	m->inner = m->key->inner;
	seal_mac_raw(m, label, strlen(label));
	return 0;
}

void seal_mac_raw(struct seal_mac *m, const void *data, size_t len)
{
	if (m->key != NULL && len > 0)
		SHA256_Update(&m->inner, data, len);
}

void seal_mac_u64(struct seal_mac *m, uint64_t v)
{
	unsigned char b[8];

	seal_be64(b, v);
	seal_mac_raw(m, b, sizeof(b));
}

void seal_mac_lp(struct seal_mac *m, const void *data, size_t len)
{
	unsigned char b[4];

	if (len > UINT32_MAX) {
		m->err = 1;
		return;
	}
	seal_be32(b, (uint32_t)len);
	seal_mac_raw(m, b, sizeof(b));
	seal_mac_raw(m, data, len);
}

void seal_mac_lp_str(struct seal_mac *m, const char *s)
{
	seal_mac_lp(m, s, strlen(s));
}

int seal_mac_fork(struct seal_mac *m, struct seal_mac *copy)
{
	*copy = *m;
	if (m->key == NULL) {
		copy->err = 1;
		return -1;
	}
	return 0;
}

int seal_mac_end(struct seal_mac *m, unsigned char out[SEAL_KEY_LEN])
{
	unsigned char ih[SHA256_DIGEST_LENGTH];
	SHA256_CTX outer;
	int ret = -1;

	if (!m->err && m->key != NULL) {
		SHA256_Final(ih, &m->inner);
		outer = m->key->outer;
		SHA256_Update(&outer, ih, sizeof(ih));
		SHA256_Final(out, &outer);
		OPENSSL_cleanse(&outer, sizeof(outer));
		OPENSSL_cleanse(ih, sizeof(ih));
		ret = 0;
	}
	/* The states hold key-derived words. */
	OPENSSL_cleanse(&m->inner, sizeof(m->inner));
	m->key = NULL;
	return ret;
}

int seal_mac_verify(struct seal_mac *m, const unsigned char mac[SEAL_KEY_LEN])
{
	unsigned char got[SEAL_KEY_LEN];
	int ret = -1;

	if (seal_mac_end(m, got) == 0 && CRYPTO_memcmp(got, mac, SEAL_KEY_LEN) == 0)
		ret = 0;
	OPENSSL_cleanse(got, sizeof(got));
	return ret;
}

/* Sealing (DESIGN §5 "Records"): one ephemeral X25519 pair per process,
 * K per (user, store) cached, and the rule that a seq is never sealed
 * twice under one K, which is what keeps ChaCha20-Poly1305's nonces
 * unique. */
#include "seal/seal-private.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "util/hashmap.h"
#include "util/random.h"
#include "util/xalloc.h"

#define SEALER_DEFAULT_ENTRIES 4096
#define SEAL_ATTEMPTS 4

struct sealer_entry {
	uint64_t last_seq;          /* 0: none sealed yet (seqs start at 1) */
	uint64_t gen;               /* ephemeral pair K was derived under */
	bool have_k;
	unsigned char pk[SEAL_KEY_LEN];
	unsigned char k[SEAL_KEY_LEN];
};

struct seal_sealer {
	pthread_mutex_t lock;
	EVP_PKEY *esk;
	unsigned char epk[SEAL_KEY_LEN];
	uint64_t gen;               /* bumped by every rotation */
	struct hashmap *map[2];     /* per enum seal_store, keyed by JID */
	size_t count, max;
};

static void free_entries(struct hashmap *map)
{
	size_t pos = 0;
	const char *key;
	void *value;

	while (hashmap_next(map, &pos, &key, &value))
		xfree_secret(value, sizeof(struct sealer_entry));
	hashmap_free(map);
}

/* Installs a fresh pair. Every cached K becomes stale through gen; the
 * entries (and their last seq) stay. */
static int rotate_locked(struct seal_sealer *s)
{
	EVP_PKEY *key = seal_x25519_generate();
	unsigned char epk[SEAL_KEY_LEN];

	if (key == NULL || seal_x25519_public(key, epk) != 0) {
		EVP_PKEY_free(key);
		return -1;
	}
	EVP_PKEY_free(s->esk);
	s->esk = key;
	memcpy(s->epk, epk, SEAL_KEY_LEN);
	s->gen++;
	return 0;
}

struct seal_sealer *seal_sealer_new(size_t max_entries)
{
	struct seal_sealer *s = xcalloc(1, sizeof(*s));

	pthread_mutex_init(&s->lock, NULL);
	s->max = max_entries ? max_entries : SEALER_DEFAULT_ENTRIES;
	s->map[0] = hashmap_new();
	s->map[1] = hashmap_new();
	if (seal_algs_init() != 0 || rotate_locked(s) != 0) {
		seal_sealer_free(s);
		return NULL;
	}
	return s;
}

void seal_sealer_free(struct seal_sealer *s)
{
	if (s == NULL)
		return;
	free_entries(s->map[0]);
	free_entries(s->map[1]);
	EVP_PKEY_free(s->esk);
	pthread_mutex_destroy(&s->lock);
	xfree_secret(s, sizeof(*s));
}

int seal_sealer_rotate(struct seal_sealer *s)
{
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = rotate_locked(s);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int seal_sealer_release(struct seal_sealer *s, const char *jid,
			enum seal_store store, uint64_t seq)
{
	struct sealer_entry *e;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	e = hashmap_get(s->map[store == SEAL_STORE_ARCHIVE], jid);
	if (e != NULL && e->last_seq == seq) {
		e->last_seq = seq - 1;
		/* The lost ciphertext may have reached the disk (a WAL page):
		 * sealing the same seq again under the same K would repeat a
		 * nonce with probability 2^-32. A new pair makes it zero. */
		ret = rotate_locked(s);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Claims seq for (jid, store) and returns the K and epk to seal with. The
 * X25519 of a cache miss runs outside the lock; if a rotation happened
 * meanwhile the K is stale and the claim starts over. */
static int claim(struct seal_sealer *s, const char *jid, enum seal_store store,
		 const unsigned char pk[SEAL_KEY_LEN], uint64_t seq,
		 unsigned char k[SEAL_KEY_LEN], unsigned char epk[SEAL_KEY_LEN])
{
	struct hashmap *map;
	struct sealer_entry *e;
	EVP_PKEY *esk;
	uint64_t gen;

	for (int attempt = 0; attempt < SEAL_ATTEMPTS; attempt++) {
		pthread_mutex_lock(&s->lock);
		map = s->map[store == SEAL_STORE_ARCHIVE];
		e = hashmap_get(map, jid);
		if (e != NULL && seq <= e->last_seq)
			goto refuse;
		if (e != NULL && e->have_k && e->gen == s->gen &&
		    memcmp(e->pk, pk, SEAL_KEY_LEN) == 0) {
			e->last_seq = seq;
			memcpy(k, e->k, SEAL_KEY_LEN);
			memcpy(epk, s->epk, SEAL_KEY_LEN);
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
		esk = s->esk;
		EVP_PKEY_up_ref(esk);
		memcpy(epk, s->epk, SEAL_KEY_LEN);
		gen = s->gen;
		pthread_mutex_unlock(&s->lock);

		if (seal_record_key(esk, pk, store, epk, pk, k) != 0) {
			EVP_PKEY_free(esk);
			return -1;
		}
		EVP_PKEY_free(esk);

		pthread_mutex_lock(&s->lock);
		map = s->map[store == SEAL_STORE_ARCHIVE];
		if (s->gen != gen)
			goto again;
		e = hashmap_get(map, jid);
		if (e == NULL && s->count >= s->max) {
			/* Forgetting a user's last seq is only safe with a
			 * new pair: no K from before can be used again. */
			free_entries(s->map[0]);
			free_entries(s->map[1]);
			s->map[0] = hashmap_new();
			s->map[1] = hashmap_new();
			s->count = 0;
			if (rotate_locked(s) != 0) {
				pthread_mutex_unlock(&s->lock);
				OPENSSL_cleanse(k, SEAL_KEY_LEN);
				return -1;
			}
			goto again;
		}
		if (e == NULL) {
			e = xcalloc(1, sizeof(*e));
			hashmap_put(map, jid, e);
			s->count++;
		}
		if (seq <= e->last_seq)
			goto refuse;
		e->last_seq = seq;
		e->gen = gen;
		e->have_k = true;
		memcpy(e->pk, pk, SEAL_KEY_LEN);
		memcpy(e->k, k, SEAL_KEY_LEN);
		pthread_mutex_unlock(&s->lock);
		return 0;
again:
		pthread_mutex_unlock(&s->lock);
		OPENSSL_cleanse(k, SEAL_KEY_LEN);
	}
	return -1;
refuse:
	pthread_mutex_unlock(&s->lock);
	OPENSSL_cleanse(k, SEAL_KEY_LEN);
	return -1;
}

/* Undoes a claim whose ciphertext was never made. */
static void unclaim(struct seal_sealer *s, const char *jid,
		    enum seal_store store, uint64_t seq)
{
	struct sealer_entry *e;

	pthread_mutex_lock(&s->lock);
	e = hashmap_get(s->map[store == SEAL_STORE_ARCHIVE], jid);
	if (e != NULL && e->last_seq == seq)
		e->last_seq = seq - 1;
	pthread_mutex_unlock(&s->lock);
}

int seal_record_seal(struct seal_sealer *s, const struct seal_keys *keys,
		     const char *jid, enum seal_store store,
		     const unsigned char pk[SEAL_KEY_LEN], uint32_t key_id,
		     uint64_t seq, int64_t stamp,
		     const unsigned char prev_chain[SEAL_KEY_LEN],
		     const void *plaintext, size_t len,
		     struct seal_record *out)
{
	unsigned char k[SEAL_KEY_LEN], aad[SEAL_AAD_MAX];
	struct seal_record rec;
	size_t aad_len;

	if (seq == 0 || len > SEAL_MAX_PLAINTEXT || seal_jid_ok(jid) != 0 ||
	    (store != SEAL_STORE_OFFLINE && store != SEAL_STORE_ARCHIVE))
		return -1;
	memset(&rec, 0, sizeof(rec));
	if (claim(s, jid, store, pk, seq, k, rec.epk) != 0)
		return -1;
	rec.seq = seq;
	rec.stamp = stamp;
	rec.key_id = key_id;
	seal_be64(rec.nonce, seq);
	rec.ct_len = len + SEAL_TAG_LEN;
	rec.ct = xmalloc(rec.ct_len);
	aad_len = seal_record_aad(jid, seq, stamp, key_id, aad);
	if (random_bytes(rec.nonce + 8, SEAL_NONCE_LEN - 8) != 0 ||
	    seal_aead_seal(k, rec.nonce, aad, aad_len, plaintext, len, rec.ct) != 0 ||
	    seal_record_chain(keys, jid, store, &rec, prev_chain,
			      rec.chain) != 0) {
		OPENSSL_cleanse(k, sizeof(k));
		seal_record_clear(&rec);
		unclaim(s, jid, store, seq);
		return -1;
	}
	OPENSSL_cleanse(k, sizeof(k));
	*out = rec;
	return 0;
}

/* A keyring's private keys while its user has a session. The current key
 * is an EVP_PKEY from the start (unlock had to check it against pk); a
 * retired key becomes one only when a record needs it, so an unlock costs
 * one scalar multiplication however many passwords the user had. */
#include "seal/seal-private.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>

#include "util/xalloc.h"

/* Ks for (key id, store, epk): one process key per few hours and two
 * stores make a handful of live entries; replaced round robin. */
#define OPEN_CACHE 8

struct unlocked_key {
	uint32_t key_id;
	unsigned char sk[SEAL_KEY_LEN];
	unsigned char pk[SEAL_KEY_LEN]; /* valid once `pkey` is set */
	EVP_PKEY *pkey;                 /* NULL until first needed */
};

struct open_entry {
	bool used;
	uint32_t key_id;
	enum seal_store store;
	unsigned char epk[SEAL_KEY_LEN];
	unsigned char k[SEAL_KEY_LEN];
};

struct seal_unlocked {
	/* Guards `pkey` and `pk` of keys[] and the cache; key ids and sk
	 * never change after creation. */
	pthread_mutex_t lock;
	uint32_t key_id;
	size_t nkeys;
	/* Made on the first open: most sessions never open a record. */
	struct open_entry *cache;
	size_t cache_next;
	/* The current key and the retired ones: as many as the keyring has,
	 * since an unlocked keyring lives as long as its user's sessions. */
	size_t nalloc;
	struct unlocked_key keys[];
};

struct seal_unlocked *seal_unlocked_new(uint32_t key_id, EVP_PKEY *current,
					const uint32_t *rids,
					const unsigned char *rsks, size_t nret)
{
	struct seal_unlocked *u;

	if (nret > SEAL_MAX_RETIRED) {
		EVP_PKEY_free(current);
		return NULL;
	}
	u = xcalloc(1, sizeof(*u) + (1 + nret) * sizeof(u->keys[0]));
	u->nalloc = 1 + nret;
	pthread_mutex_init(&u->lock, NULL);
	u->key_id = key_id;
	u->keys[0].key_id = key_id;
	u->keys[0].pkey = current;
	u->nkeys = 1;
	if (seal_x25519_private(current, u->keys[0].sk) != 0 ||
	    seal_x25519_public(current, u->keys[0].pk) != 0) {
		seal_unlocked_free(u);
		return NULL;
	}
	for (size_t i = 0; i < nret; i++) {
		u->keys[1 + i].key_id = rids[i];
		memcpy(u->keys[1 + i].sk, rsks + i * SEAL_KEY_LEN, SEAL_KEY_LEN);
	}
	u->nkeys = 1 + nret;
	return u;
}

void seal_unlocked_free(struct seal_unlocked *u)
{
	if (u == NULL)
		return;
	for (size_t i = 0; i < u->nkeys; i++)
		EVP_PKEY_free(u->keys[i].pkey);
	pthread_mutex_destroy(&u->lock);
	if (u->cache != NULL)
		xfree_secret(u->cache, OPEN_CACHE * sizeof(*u->cache));
	xfree_secret(u, sizeof(*u) + u->nalloc * sizeof(u->keys[0]));
}

uint32_t seal_unlocked_key_id(const struct seal_unlocked *u)
{
	return u->key_id;
}

static const struct unlocked_key *find_key(const struct seal_unlocked *u,
					   uint32_t key_id)
{
	for (size_t i = 0; i < u->nkeys; i++)
		if (u->keys[i].key_id == key_id)
			return &u->keys[i];
	return NULL;
}

bool seal_unlocked_has_key(const struct seal_unlocked *u, uint32_t key_id)
{
	return find_key(u, key_id) != NULL;
}

int seal_unlocked_raw(const struct seal_unlocked *u, uint32_t key_id,
		      unsigned char sk[SEAL_KEY_LEN])
{
	const struct unlocked_key *k = find_key(u, key_id);

	if (k == NULL)
		return -1;
	memcpy(sk, k->sk, SEAL_KEY_LEN);
	return 0;
}

int seal_unlocked_open_key(struct seal_unlocked *u, uint32_t key_id,
			   enum seal_store store,
			   const unsigned char epk[SEAL_KEY_LEN],
			   unsigned char k[SEAL_KEY_LEN])
{
	struct unlocked_key *key = (struct unlocked_key *)find_key(u, key_id);
	struct open_entry *e;
	int ret = -1;

	if (key == NULL)
		return -1;
	pthread_mutex_lock(&u->lock);
	if (u->cache == NULL)
		u->cache = xcalloc(OPEN_CACHE, sizeof(*u->cache));
	for (size_t i = 0; i < OPEN_CACHE; i++) {
		e = &u->cache[i];
		if (e->used && e->key_id == key_id && e->store == store &&
		    memcmp(e->epk, epk, SEAL_KEY_LEN) == 0) {
			memcpy(k, e->k, SEAL_KEY_LEN);
			ret = 0;
			goto out;
		}
	}
	if (key->pkey == NULL) {
		key->pkey = seal_x25519_from_private(key->sk);
		if (key->pkey == NULL || seal_x25519_public(key->pkey, key->pk) != 0) {
			EVP_PKEY_free(key->pkey);
			key->pkey = NULL;
			goto out;
		}
	}
	/* A miss costs an X25519 (tens of µs), done under the lock: the
	 * object belongs to one user, whose records are opened in turn. */
	if (seal_record_key(key->pkey, epk, store, epk, key->pk, k) != 0)
		goto out;
	e = &u->cache[u->cache_next];
	u->cache_next = (u->cache_next + 1) % OPEN_CACHE;
	e->used = true;
	e->key_id = key_id;
	e->store = store;
	memcpy(e->epk, epk, SEAL_KEY_LEN);
	memcpy(e->k, k, SEAL_KEY_LEN);
	ret = 0;
out:
	pthread_mutex_unlock(&u->lock);
	return ret;
}

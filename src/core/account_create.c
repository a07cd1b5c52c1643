/* Credentials and keyrings for a new password (DESIGN §5 "Keys"). */
#include "core/account_create.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "seal/seal.h"
#include "util/xalloc.h"

int account_secret_derive(const char *password, unsigned iterations,
			  struct account_secret *out, const char **error_r)
{
	static const enum scram_hash hashes[] = { SCRAM_SHA1, SCRAM_SHA256 };
	unsigned char salt[SCRAM_SALT_LEN];
	char *prepped = NULL;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (iterations == 0)
		iterations = SCRAM_DEFAULT_ITERATIONS;
	if (strlen(password) > ACCOUNT_PASSWORD_MAX) {
		*error_r = "the password is too long";
		return -1;
	}
	if (saslprep(password, &prepped) < 0) {
		*error_r = "the password has characters SASLprep (RFC 4013) "
			   "prohibits";
		return -1;
	}
	/* XEP-0077 §3.3: never a null password, also not one that SASLprep
	 * maps to nothing. */
	if (*prepped == '\0') {
		*error_r = "the password is empty";
		goto out;
	}
	for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++) {
		enum scram_hash h = hashes[i];

		if (RAND_bytes(salt, sizeof(salt)) != 1 ||
		    scram_derive(h, prepped, salt, sizeof(salt), iterations,
				 &out->creds[h], out->client_keys[h]) < 0) {
			*error_r = "deriving the credentials failed";
			account_secret_clear(out);
			ret = -2;
			goto out;
		}
	}
	ret = 0;
out:
	xfree_secret(prepped, strlen(prepped));
	return ret;
}

void account_secret_clear(struct account_secret *sec)
{
	OPENSSL_cleanse(sec, sizeof(*sec));
}

int account_keyring_new(const struct seal_keys *keys, const char *bare,
			const struct account_secret *sec, struct buf *out)
{
	struct seal_keyring kr;

	if (seal_keyring_create(keys, bare, sec->client_keys[SCRAM_SHA1],
				sec->client_keys[SCRAM_SHA256], &kr, NULL) < 0)
		return -1;
	seal_keyring_encode(&kr, out);
	return 0;
}

int account_rewrap(void *arg, enum store_keyring_state state,
		   struct seal_keyring *kr)
{
	struct account_rewrap *rw = arg;
	const unsigned char *ck1 = rw->sec->client_keys[SCRAM_SHA1];
	const unsigned char *ck256 = rw->sec->client_keys[SCRAM_SHA256];
	struct seal_unlocked **unlocked_r = rw->reset ? NULL : &rw->unlocked;

	switch (state) {
	case STORE_KEYRING_OK:
		if (rw->reset)
			return seal_keyring_reset(rw->keys, kr, ck1, ck256,
						  NULL);
		/* rekey refuses an `old` that is not this row's. */
		if (rw->old == NULL)
			return -1;
		return seal_keyring_rekey(rw->keys, kr, rw->old, ck1, ck256,
					  unlocked_r);
	case STORE_KEYRING_BAD:
		/* Rewrapping a tampered row would bless it; only the
		 * operator's reset replaces it. */
		if (!rw->reset)
			return -1;
		rw->replaced_bad = true;
		break;
	case STORE_KEYRING_NONE:
		break;
	}
	rw->made_new = true;
	return seal_keyring_create(rw->keys, rw->bare, ck1, ck256, kr,
				   unlocked_r);
}

/* Credentials and keyrings for a new password, made the same way wherever
 * a password is set (DESIGN §5): in-band registration and password change
 * (mod_register), `roostctl adduser` and `roostctl passwd`. No loop, no
 * server: roostd calls these on a worker thread (PBKDF2 and X25519 are
 * too slow for the loop), roostctl directly. */
#ifndef ROOST_CORE_ACCOUNT_CREATE_H
#define ROOST_CORE_ACCOUNT_CREATE_H

#include <stdbool.h>

#include "sasl/scram.h"
#include "store/store.h"

struct buf;
struct seal_keys;
struct seal_keyring;
struct seal_unlocked;

/* Longest password accepted, in bytes: longer input is refused rather
 * than cut, since a shortened password would not be the one typed. */
#define ACCOUNT_PASSWORD_MAX 1023

/* What a password gives: SCRAM credentials and the ClientKeys that wrap
 * the keyring, per enum scram_hash. Secret: wipe with
 * account_secret_clear. */
struct account_secret {
	struct scram_creds creds[2];
	unsigned char client_keys[2][SCRAM_MAX_HASH];
};

/* SASLprep (RFC 4013), then SCRAM-SHA-1 and SCRAM-SHA-256 credentials
 * with fresh salts and `iterations` PBKDF2 rounds (0: the default).
 * Blocking. Returns 0; -1 for a password that is empty, too long, or
 * has characters SASLprep prohibits; -2 for a crypto failure; on error
 * with a static reason in *error_r. */
int account_secret_derive(const char *password, unsigned iterations,
			  struct account_secret *out, const char **error_r);
void account_secret_clear(struct account_secret *sec);

/* A new account's keyring for the canonical bare JID, appended to `out`
 * in the store's form (store_user.keyring). Returns 0 or -1. */
int account_keyring_new(const struct seal_keys *keys, const char *bare,
			const struct account_secret *sec, struct buf *out);

/* The keyring for a new password, as store_user_set_password's rewrap
 * function (account_rewrap, with a struct account_rewrap as its arg). */
struct account_rewrap {
	const struct seal_keys *keys;
	const char *bare;
	const struct account_secret *sec;
	/* false: the user changes the password (XEP-0077). `old` is the
	 * keyring the login unlocked: every key is kept, the current one
	 * retired under the new password (seal_keyring_rekey), so whatever
	 * was sealed before stays readable. Without a row a new keyring is
	 * made; a row that `old` cannot open (NULL, another key) or that
	 * fails its checks is never touched: the change is refused.
	 * true: an admin reset (roostctl passwd), which cannot unwrap
	 * anything: a new key pair, the old ones dropped
	 * (seal_keyring_reset); a row that fails its checks is replaced by
	 * a new keyring. */
	bool reset;
	const struct seal_unlocked *old;
	/* Out. unlocked: the new keyring, unlocked (password change only;
	 * the caller frees it with seal_unlocked_free). made_new: there was
	 * no usable row, a new keyring was made; replaced_bad: that was
	 * because the row failed its checks. */
	struct seal_unlocked *unlocked;
	bool made_new, replaced_bad;
};
int account_rewrap(void *arg, enum store_keyring_state state,
		   struct seal_keyring *kr);

#endif

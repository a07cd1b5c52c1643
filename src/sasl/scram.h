/* SCRAM (RFC 5802, RFC 7677) on the server side, with channel binding
 * (RFC 5929 tls-unique, RFC 9266 tls-exporter). Pure: no I/O, no store.
 * The caller looks the user's credentials up between the client-first
 * message and the server-first message. */
#ifndef ROOST_SASL_SCRAM_H
#define ROOST_SASL_SCRAM_H

#include <stdbool.h>
#include <stddef.h>

enum scram_hash { SCRAM_SHA1, SCRAM_SHA256 };

#define SCRAM_MAX_HASH 32   /* bytes of the longest digest */
#define SCRAM_SALT_LEN 16   /* bytes of salt roost generates */
#define SCRAM_DEFAULT_ITERATIONS 4096
#define SCRAM_MAX_MESSAGE 4096 /* longest SCRAM message accepted */

size_t scram_hash_len(enum scram_hash h);
/* "SHA-1" / "SHA-256" (DESIGN §5 uses these names). */
const char *scram_hash_name(enum scram_hash h);

/* What the server stores per hash: never the password. */
struct scram_creds {
	unsigned char salt[64];
	size_t salt_len;
	unsigned iterations;
	unsigned char stored_key[SCRAM_MAX_HASH];
	unsigned char server_key[SCRAM_MAX_HASH];
};

/* Derives credentials from a password that was already SASLprep'd.
 * client_key_r (may be NULL) receives ClientKey (hash-length bytes).
 * Runs PBKDF2: call it off the event loop. Returns 0 or -1. */
int scram_derive(enum scram_hash h, const char *password,
		 const unsigned char *salt, size_t salt_len, unsigned iterations,
		 struct scram_creds *out, unsigned char *client_key_r);

/* Fresh random salt and the default iterations, then scram_derive. */
int scram_make_creds(enum scram_hash h, const char *password,
		     struct scram_creds *out);

struct scram_server;

/* plus: this mechanism is the -PLUS variant. plus_offered: the server
 * advertised a -PLUS mechanism on this stream (so a client that sends the
 * "y" gs2 flag is being downgraded and must fail, RFC 5802 §6). */
struct scram_server *scram_server_new(enum scram_hash h, bool plus,
				      bool plus_offered);
/* Wipes and frees. */
void scram_server_free(struct scram_server *s);

/* Parses client-first-message. On success returns 0 and sets *authcid_r
 * (the SASLprep'd username, owned by `s`) and *cb_type_r ("tls-unique",
 * "tls-exporter", or NULL when no channel binding is used; owned by `s`).
 * An authzid, if given, is in *authzid_r (or NULL). On failure returns -1
 * with an RFC 6120 §6.5 condition in *error_r ("malformed-request",
 * "not-authorized", "invalid-authzid", "encryption-required"...). A -PLUS
 * mechanism without p=, or a plain mechanism with p=, fails. */
int scram_server_client_first(struct scram_server *s, const char *msg,
			      size_t len, const char **authcid_r,
			      const char **authzid_r, const char **cb_type_r,
			      const char **error_r);

/* Builds server-first-message with the user's credentials; *out_r is
 * owned by `s` and valid until the next call. For an unknown user pass
 * creds = NULL: a deterministic fake salt is used and the exchange will
 * fail at the end with not-authorized, so that user existence does not
 * leak. */
int scram_server_first(struct scram_server *s, const struct scram_creds *creds,
		       const char **out_r, size_t *out_len_r);

/* Checks client-final-message. cb_data is the channel binding data of the
 * type the client asked for (NULL/0 if none). On success returns 0, sets
 * *out_r to server-final-message ("v=...", owned by `s`) and copies
 * ClientKey into client_key_r (hash-length bytes) for the keyring. On
 * failure returns -1 with a condition in *error_r ("not-authorized" for a
 * wrong proof or channel binding mismatch, "malformed-request"). */
int scram_server_client_final(struct scram_server *s, const char *msg,
			      size_t len, const unsigned char *cb_data,
			      size_t cb_len, const char **out_r,
			      size_t *out_len_r, unsigned char *client_key_r,
			      const char **error_r);

/* Prepares a password or username with SASLprep (RFC 4013). Returns 0 and
 * an xmalloc'd string, or -1 for prohibited input. */
int saslprep(const char *in, char **out_r);

#endif

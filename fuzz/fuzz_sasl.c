/* libFuzzer target: SASL message parsing (src/sasl/): SCRAM client-first
 * and client-final (RFC 5802 / RFC 7677, with channel binding), PLAIN
 * (RFC 4616), SASLprep and the base64 layer c2s puts around them.
 *
 * Input: one mode byte, then the client-first message (or the PLAIN
 * message), then, after a 0xFF byte (which UTF-8 never contains), the
 * client-final message. The account "user" with password "pencil" uses
 * the salts and server nonces of the RFCs' examples, so the RFC
 * exchanges (in the seed corpus) succeed and the fuzzer starts from
 * messages that get all the way through. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sasl/plain.h"
#include "sasl/scram-private.h"
#include "sasl/scram.h"
#include "util/base64.h"
#include "util/xalloc.h"

/* RFC 5802 §5 (SHA-1) and RFC 7677 §3 (SHA-256). */
static const struct {
	const char *salt_b64;
	const char *server_nonce;
} vectors[2] = {
	[SCRAM_SHA1] = { "QSXCR+Q6sek8bf92", "3rfcNHYJY1ZVvWVs7j" },
	[SCRAM_SHA256] = { "W22ZaJ0SNY7soEsUEjb6gQ==",
			   "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" },
};

static struct scram_creds creds[2];

static void init(void)
{
	static bool done;

	if (done)
		return;
	for (int h = SCRAM_SHA1; h <= SCRAM_SHA256; h++) {
		unsigned char *salt;
		size_t salt_len;

		if (base64_decode(vectors[h].salt_b64,
				  strlen(vectors[h].salt_b64), &salt,
				  &salt_len) != 0 ||
		    scram_derive((enum scram_hash)h, "pencil", salt, salt_len,
				 4096, &creds[h], NULL) != 0)
			abort();
		free(salt);
	}
	done = true;
}

static void fuzz_scram(unsigned mode, const char *first, size_t first_len,
		       const char *final, size_t final_len)
{
	enum scram_hash h = mode & 0x04 ? SCRAM_SHA256 : SCRAM_SHA1;
	bool plus = mode & 0x08, plus_offered = (mode & 0x10) || plus;
	struct scram_server *s = scram_server_new(h, plus, plus_offered);
	const char *authcid, *authzid, *cb_type, *error, *out;
	unsigned char client_key[SCRAM_MAX_HASH];
	static const unsigned char cb[32] = "channel binding data, 32 bytes.";
	size_t out_len;

	if (scram_server_client_first(s, first, first_len, &authcid, &authzid,
				      &cb_type, &error) != 0) {
		if (error == NULL)
			abort();
		goto out;
	}
	if (authcid == NULL || *authcid == '\0')
		abort();
	if (scram_server_first_with_nonce(s,
			(mode & 0x20) || strcmp(authcid, "user") != 0 ?
				NULL : &creds[h],
			vectors[h].server_nonce, &out, &out_len) != 0)
		goto out;
	if (out_len != strlen(out))
		abort();
	if (scram_server_client_final(s, final, final_len,
				      cb_type != NULL && !(mode & 0x40) ? cb : NULL,
				      cb_type != NULL && !(mode & 0x40) ? sizeof(cb) : 0,
				      &out, &out_len, client_key, &error) == 0) {
		/* Only the password's owner gets here. */
		if ((mode & 0x20) || strcmp(authcid, "user") != 0)
			abort();
		if (getenv("FUZZ_SASL_DEBUG") != NULL)
			fprintf(stderr, "SCRAM success: %.*s\n", (int)out_len, out);
	} else if (error == NULL) {
		abort();
	}
out:
	scram_server_free(s);
}

static void fuzz_plain(const unsigned char *msg, size_t len)
{
	char *authzid, *authcid, *passwd, *prepped;

	if (sasl_plain_parse(msg, len, &authzid, &authcid, &passwd) != 0)
		return;
	if (authcid == NULL || passwd == NULL)
		abort();
	if (saslprep(passwd, &prepped) == 0)
		xfree_secret(prepped, strlen(prepped));
	free(authzid);
	free(authcid);
	xfree_secret(passwd, strlen(passwd));
}

static void fuzz_text(const char *s, size_t len)
{
	unsigned char *dec;
	size_t dec_len;
	char *out, *z = xstrndup(s, len);
	char *enc;

	if (base64_decode(s, len, &dec, &dec_len) == 0) {
		unsigned char *again;
		size_t again_len;

		/* Same length as the input (no skipped characters), and
		 * encoding round-trips. "=" is RFC 6120's empty response. */
		enc = base64_encode(dec, dec_len);
		if ((strlen(enc) != len && !(len == 1 && s[0] == '=')) ||
		    base64_decode(enc, strlen(enc), &again, &again_len) != 0 ||
		    again_len != dec_len || memcmp(again, dec, dec_len) != 0)
			abort();
		free(again);
		free(enc);
		free(dec);
	}
	(void)sasl_utf8_valid(s, len);
	if (saslprep(z, &out) == 0) {
		char *again;
		/* Prepared strings are stable under SASLprep. */
		if (saslprep(out, &again) != 0 || strcmp(again, out) != 0)
			abort();
		free(again);
		free(out);
	}
	if (saslprep_query(z, &out) == 0)
		free(out);
	free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg, *sep;
	size_t len, first_len;
	unsigned mode;

	if (size < 1)
		return 0;
	init();
	mode = data[0];
	msg = (const char *)data + 1;
	len = size - 1;
	sep = memchr(msg, 0xff, len);
	first_len = sep != NULL ? (size_t)(sep - msg) : len;
	switch (mode & 0x03) {
	case 0:
	case 1:
		fuzz_scram(mode, msg, first_len, sep ? sep + 1 : "",
			   sep ? len - first_len - 1 : 0);
		break;
	case 2:
		fuzz_plain((const unsigned char *)msg, len);
		break;
	case 3:
		fuzz_text(msg, len);
		break;
	}
	return 0;
}

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdlib.h>
#include <string.h>

#include "sasl/plain.h"
#include "sasl/scram-private.h"
#include "sasl/scram.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/xalloc.h"

/* ---- a client, written here from RFC 5802 §3 so that the server is not
 * checked against itself ---- */

static const EVP_MD *md_of(enum scram_hash h)
{
	return h == SCRAM_SHA256 ? EVP_sha256() : EVP_sha1();
}

/* Value of attribute `attr` in a SCRAM message, xmalloc'd, or NULL. */
static char *attr_value(const char *msg, char attr)
{
	const char *p = msg;

	for (;;) {
		const char *end = strchr(p, ',');
		if (p[0] == attr && p[1] == '=')
			return xstrndup(p + 2, end != NULL ? (size_t)(end - p - 2)
							   : strlen(p + 2));
		if (end == NULL)
			return NULL;
		p = end + 1;
	}
}

/* Returns the client-final-message for `server_first`, xmalloc'd, and
 * the server-final-message the client expects in *expect_r. */
static char *client_final(enum scram_hash h, const char *password,
			  const char *gs2_header, const unsigned char *cb_data,
			  size_t cb_len, const char *client_first_bare,
			  const char *server_first, char **expect_r)
{
	const EVP_MD *md = md_of(h);
	int hlen = EVP_MD_get_size(md);
	unsigned char salted[32], client_key[32], stored_key[32], sig[32];
	unsigned char proof[32], server_key[32];
	unsigned int n;
	char *nonce = attr_value(server_first, 'r');
	char *salt_b64 = attr_value(server_first, 's');
	char *iter = attr_value(server_first, 'i');
	unsigned char *salt;
	size_t salt_len;
	struct buf cbind = BUF_INIT, auth = BUF_INIT;
	char *c, *without_proof, *p64, *final;

	assert_non_null(nonce);
	assert_non_null(salt_b64);
	assert_non_null(iter);
	assert_int_equal(base64_decode(salt_b64, strlen(salt_b64), &salt,
				       &salt_len), 0);
	assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password),
					   salt, (int)salt_len, atoi(iter), md,
					   hlen, salted), 1);
	HMAC(md, salted, hlen, (const unsigned char *)"Client Key", 10,
	     client_key, &n);
	EVP_Digest(client_key, (size_t)hlen, stored_key, NULL, md, NULL);
	HMAC(md, salted, hlen, (const unsigned char *)"Server Key", 10,
	     server_key, &n);

	buf_append_str(&cbind, gs2_header);
	if (cb_data != NULL)
		buf_append(&cbind, cb_data, cb_len);
	c = base64_encode(cbind.data, cbind.len);
	without_proof = xasprintf("c=%s,r=%s", c, nonce);
	buf_appendf(&auth, "%s,%s,%s", client_first_bare, server_first,
		    without_proof);
	HMAC(md, stored_key, hlen, (unsigned char *)auth.data, auth.len, sig,
	     &n);
	for (int i = 0; i < hlen; i++)
		proof[i] = client_key[i] ^ sig[i];
	p64 = base64_encode(proof, (size_t)hlen);
	final = xasprintf("%s,p=%s", without_proof, p64);

	HMAC(md, server_key, hlen, (unsigned char *)auth.data, auth.len, sig,
	     &n);
	free(c);
	c = base64_encode(sig, (size_t)hlen);
	*expect_r = xasprintf("v=%s", c);

	free(c);
	free(p64);
	free(without_proof);
	buf_free(&cbind);
	buf_free(&auth);
	free(salt);
	free(nonce);
	free(salt_b64);
	free(iter);
	return final;
}

/* ---- helpers ---- */

static void creds_from_b64(enum scram_hash h, const char *password,
			   const char *salt_b64, struct scram_creds *c,
			   unsigned char *client_key)
{
	unsigned char *salt;
	size_t salt_len;

	assert_int_equal(base64_decode(salt_b64, strlen(salt_b64), &salt,
				       &salt_len), 0);
	assert_int_equal(scram_derive(h, password, salt, salt_len, 4096, c,
				      client_key), 0);
	free(salt);
}

static struct scram_server *start(enum scram_hash h, bool plus,
				  bool plus_offered, const char *client_first,
				  const char **authcid_r)
{
	struct scram_server *s = scram_server_new(h, plus, plus_offered);
	const char *authcid, *authzid, *cb, *error = NULL;

	if (scram_server_client_first(s, client_first, strlen(client_first),
				      &authcid, &authzid, &cb, &error) != 0)
		fail_msg("client-first \"%s\" rejected: %s", client_first, error);
	if (authcid_r != NULL)
		*authcid_r = authcid;
	return s;
}

/* Expects client-first to fail with `why`. */
static void first_fails(bool plus, bool plus_offered, const char *msg,
			size_t len, const char *why)
{
	struct scram_server *s = scram_server_new(SCRAM_SHA256, plus,
						  plus_offered);
	const char *authcid, *authzid, *cb, *error = NULL;

	if (scram_server_client_first(s, msg, len, &authcid, &authzid, &cb,
				      &error) == 0)
		fail_msg("client-first \"%.60s\" accepted", msg);
	assert_string_equal(error, why);
	assert_null(authcid);
	/* A failed exchange stays failed. */
	assert_int_equal(scram_server_first(s, NULL, &authcid, &len), -1);
	scram_server_free(s);
}

/* A complete exchange with our own client. cb_client is what the client
 * binds to, cb_server what the server sees. Returns the server's result
 * and its error in *error_r. */
static int exchange(enum scram_hash h, bool plus, bool plus_offered,
		    const char *gs2_header, const char *password_client,
		    const char *password_server, const char *cb_client,
		    const char *cb_server, const char **error_r)
{
	struct scram_creds creds;
	unsigned char key_stored[32], key_seen[32];
	char *first = xasprintf("%sn=user,r=cnonce-%d", gs2_header, (int)h);
	const char *bare = first + strlen(gs2_header);
	const char *authcid, *sfirst, *sfinal;
	char *cfinal, *expect;
	size_t len;
	int rc;

	assert_int_equal(scram_derive(h, password_server,
				      (const unsigned char *)"saltsalt", 8, 64,
				      &creds, key_stored), 0);
	struct scram_server *s = start(h, plus, plus_offered, first, &authcid);
	assert_string_equal(authcid, "user");
	assert_int_equal(scram_server_first(s, &creds, &sfirst, &len), 0);
	assert_int_equal(len, strlen(sfirst));
	cfinal = client_final(h, password_client, gs2_header,
			      (const unsigned char *)cb_client,
			      cb_client ? strlen(cb_client) : 0, bare, sfirst,
			      &expect);
	rc = scram_server_client_final(s, cfinal, strlen(cfinal),
				       (const unsigned char *)cb_server,
				       cb_server ? strlen(cb_server) : 0,
				       &sfinal, &len, key_seen, error_r);
	if (rc == 0) {
		assert_string_equal(sfinal, expect);
		assert_int_equal(len, strlen(sfinal));
		assert_memory_equal(key_seen, key_stored, scram_hash_len(h));
	}
	free(cfinal);
	free(expect);
	free(first);
	scram_server_free(s);
	return rc;
}

/* ---- the RFC examples ---- */

static void rfc_example(enum scram_hash h, const char *cnonce,
			const char *snonce, const char *salt_b64,
			const char *proof, const char *verifier)
{
	struct scram_creds creds;
	unsigned char client_key[32], key_seen[32], digest[32];
	const char *authcid, *authzid, *cb, *out, *error = NULL;
	char *first = xasprintf("n,,n=user,r=%s", cnonce);
	char *want_sfirst = xasprintf("r=%s%s,s=%s,i=4096", cnonce, snonce,
				      salt_b64);
	char *final = xasprintf("c=biws,r=%s%s,p=%s", cnonce, snonce, proof);
	size_t len;

	creds_from_b64(h, "pencil", salt_b64, &creds, client_key);
	EVP_Digest(client_key, scram_hash_len(h), digest, NULL, md_of(h), NULL);
	assert_memory_equal(digest, creds.stored_key, scram_hash_len(h));

	struct scram_server *s = scram_server_new(h, false, false);
	assert_int_equal(scram_server_client_first(s, first, strlen(first),
						   &authcid, &authzid, &cb,
						   &error), 0);
	assert_string_equal(authcid, "user");
	assert_null(authzid);
	assert_null(cb);
	assert_int_equal(scram_server_first_with_nonce(s, &creds, snonce, &out,
						       &len), 0);
	assert_string_equal(out, want_sfirst);
	assert_int_equal(len, strlen(want_sfirst));
	assert_int_equal(scram_server_client_final(s, final, strlen(final),
						   NULL, 0, &out, &len,
						   key_seen, &error), 0);
	assert_string_equal(out, verifier);
	assert_memory_equal(key_seen, client_key, scram_hash_len(h));

	/* Our client agrees with the RFC too. */
	char *mine, *expect;
	mine = client_final(h, "pencil", "n,,", NULL, 0, first + 3,
			    want_sfirst, &expect);
	assert_string_equal(mine, final);
	assert_string_equal(expect, verifier);
	free(mine);
	free(expect);

	scram_server_free(s);
	free(first);
	free(want_sfirst);
	free(final);
}

static void test_rfc5802_sha1(void **state)
{
	rfc_example(SCRAM_SHA1, "fyko+d2lbbFgONRv9qkxdawL",
		    "3rfcNHYJY1ZVvWVs7j", "QSXCR+Q6sek8bf92",
		    "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		    "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
}

static void test_rfc7677_sha256(void **state)
{
	rfc_example(SCRAM_SHA256, "rOprNGfwEbeRWgbNEkqO",
		    "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", "W22ZaJ0SNY7soEsUEjb6gQ==",
		    "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

/* ---- derivation ---- */

static void test_hash_names(void **state)
{
	assert_int_equal(scram_hash_len(SCRAM_SHA1), 20);
	assert_int_equal(scram_hash_len(SCRAM_SHA256), 32);
	assert_string_equal(scram_hash_name(SCRAM_SHA1), "SHA-1");
	assert_string_equal(scram_hash_name(SCRAM_SHA256), "SHA-256");
}

static void test_derive(void **state)
{
	struct scram_creds a, b;
	unsigned char key[32];

	assert_int_equal(scram_derive(SCRAM_SHA1, "pw", (const unsigned char *)"s",
				      0, 4096, &a, NULL), -1);
	assert_int_equal(scram_derive(SCRAM_SHA1, "pw", (const unsigned char *)"s",
				      1, 0, &a, NULL), -1);
	assert_int_equal(scram_derive(SCRAM_SHA1, "pw", a.salt, 65, 1, &a,
				      NULL), -1);

	assert_int_equal(scram_make_creds(SCRAM_SHA256, "secret", &a), 0);
	assert_int_equal(a.salt_len, SCRAM_SALT_LEN);
	assert_int_equal(a.iterations, SCRAM_DEFAULT_ITERATIONS);
	assert_int_equal(scram_make_creds(SCRAM_SHA256, "secret", &b), 0);
	assert_memory_not_equal(a.salt, b.salt, SCRAM_SALT_LEN);

	/* Re-deriving into the struct that holds the salt (PLAIN login
	 * against stored credentials) gives the same keys. */
	b = a;
	assert_int_equal(scram_derive(SCRAM_SHA256, "secret", b.salt,
				      b.salt_len, b.iterations, &b, key), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(scram_derive(SCRAM_SHA256, "Secret", b.salt,
				      b.salt_len, b.iterations, &b, key), 0);
	assert_memory_not_equal(a.stored_key, b.stored_key, 32);
}

/* ---- full exchanges ---- */

static void test_passwords(void **state)
{
	static const char *const passwords[] = {
		"pencil", "", "correct horse battery staple",
		"p\xc3\xa4ssw\xc3\xb6rd", ",=,=", "\xe2\x85\xa8",
	};
	const char *error;

	for (size_t i = 0; i < sizeof(passwords) / sizeof(*passwords); i++) {
		assert_int_equal(exchange(SCRAM_SHA1, false, false, "n,,",
					  passwords[i], passwords[i], NULL,
					  NULL, &error), 0);
		assert_int_equal(exchange(SCRAM_SHA256, false, true, "n,,",
					  passwords[i], passwords[i], NULL,
					  NULL, &error), 0);
	}
	/* "y": the client could bind but thinks we cannot; fine when we
	 * offered no -PLUS. */
	assert_int_equal(exchange(SCRAM_SHA256, false, false, "y,,", "pw", "pw",
				  NULL, NULL, &error), 0);
	assert_int_equal(exchange(SCRAM_SHA256, false, false,
				  "n,a=user@example.com,", "pw", "pw", NULL,
				  NULL, &error), 0);
}

static void test_wrong_password(void **state)
{
	const char *error = NULL;

	assert_int_equal(exchange(SCRAM_SHA1, false, false, "n,,", "pencil",
				  "pencil2", NULL, NULL, &error), -1);
	assert_string_equal(error, "not-authorized");
	error = NULL;
	assert_int_equal(exchange(SCRAM_SHA256, false, false, "n,,", "Pencil",
				  "pencil", NULL, NULL, &error), -1);
	assert_string_equal(error, "not-authorized");
}

static void test_channel_binding(void **state)
{
	const char *error = NULL;

	assert_int_equal(exchange(SCRAM_SHA256, true, true, "p=tls-exporter,,",
				  "pw", "pw", "EXPORTER-DATA-32-bytes........!!",
				  "EXPORTER-DATA-32-bytes........!!", &error), 0);
	assert_int_equal(exchange(SCRAM_SHA1, true, true,
				  "p=tls-unique,a=juliet@example.com,", "pw",
				  "pw", "finished", "finished", &error), 0);
	/* A man in the middle sees other binding data than the client. */
	assert_int_equal(exchange(SCRAM_SHA256, true, true, "p=tls-exporter,,",
				  "pw", "pw", "client-side", "server-side",
				  &error), -1);
	assert_string_equal(error, "not-authorized");
	error = NULL;
	/* The server could not get binding data. */
	assert_int_equal(exchange(SCRAM_SHA256, true, true, "p=tls-exporter,,",
				  "pw", "pw", "client-side", NULL, &error), -1);
	assert_string_equal(error, "not-authorized");
	error = NULL;
	/* The client bound nothing though it asked to. */
	assert_int_equal(exchange(SCRAM_SHA256, true, true, "p=tls-exporter,,",
				  "pw", "pw", NULL, "server-side", &error), -1);
	assert_string_equal(error, "not-authorized");
}

static void test_channel_binding_policy(void **state)
{
	struct scram_server *s;
	const char *authcid, *authzid, *cb, *error;
	const char *m;

	m = "p=tls-exporter,,n=user,r=abc";
	s = scram_server_new(SCRAM_SHA256, true, true);
	assert_int_equal(scram_server_client_first(s, m, strlen(m), &authcid,
						   &authzid, &cb, &error), 0);
	assert_string_equal(cb, "tls-exporter");
	scram_server_free(s);
	m = "p=tls-unique,,n=user,r=abc";
	s = scram_server_new(SCRAM_SHA1, true, true);
	assert_int_equal(scram_server_client_first(s, m, strlen(m), &authcid,
						   &authzid, &cb, &error), 0);
	assert_string_equal(cb, "tls-unique");
	scram_server_free(s);

	/* Downgrade: "y" while we offered -PLUS. */
	m = "y,,n=user,r=abc";
	first_fails(false, true, m, strlen(m), "not-authorized");
	/* Binding on a non-PLUS mechanism (RFC 5802 §6). */
	m = "p=tls-exporter,,n=user,r=abc";
	first_fails(false, true, m, strlen(m), "not-authorized");
	first_fails(false, false, m, strlen(m), "not-authorized");
	/* -PLUS without binding. */
	m = "n,,n=user,r=abc";
	first_fails(true, true, m, strlen(m), "malformed-request");
	m = "y,,n=user,r=abc";
	first_fails(true, true, m, strlen(m), "malformed-request");
	/* Binding types we do not know or that are not worth it. */
	m = "p=tls-server-end-point,,n=user,r=abc";
	first_fails(true, true, m, strlen(m), "malformed-request");
	m = "p=TLS-UNIQUE,,n=user,r=abc";
	first_fails(true, true, m, strlen(m), "malformed-request");
	m = "p=,,n=user,r=abc";
	first_fails(true, true, m, strlen(m), "malformed-request");
	m = "p=tls_unique,,n=user,r=abc";
	first_fails(true, true, m, strlen(m), "malformed-request");
}

static void test_client_first_parsing(void **state)
{
	struct scram_server *s;
	const char *authcid, *authzid, *cb, *error;
	const char *m;

	m = "n,a=juliet@x=2Cy=3Dz,n=us=2Cer=3D,r=abc,x=ext";
	s = scram_server_new(SCRAM_SHA256, false, false);
	assert_int_equal(scram_server_client_first(s, m, strlen(m), &authcid,
						   &authzid, &cb, &error), 0);
	assert_string_equal(authcid, "us,er=");
	assert_string_equal(authzid, "juliet@x,y=z");
	assert_null(cb);
	scram_server_free(s);

	/* The username is SASLprep'd: U+00AD is mapped to nothing, U+2168
	 * ROMAN NUMERAL NINE to "IX", and unassigned code points (U+0221
	 * in Unicode 3.2) are allowed in a query. */
	m = "n,,n=I\xc2\xadX\xe2\x85\xa8\xc8\xa1,r=abc";
	s = scram_server_new(SCRAM_SHA256, false, false);
	assert_int_equal(scram_server_client_first(s, m, strlen(m), &authcid,
						   &authzid, &cb, &error), 0);
	assert_string_equal(authcid, "IXIX\xc8\xa1");
	scram_server_free(s);

	static const char *const bad[] = {
		"", "n", "n,", "n,,", "n,,n=user", "n,,r=abc", "n,,n=user,",
		"n,,n=user,r=", "n,,n=user,r=abc,", "n,,n=user,r=abc,x",
		"n,,n=user,r=abc,1=x", "n,,n=user,r=abc,x=",
		"n,,r=abc,n=user", "n,n=user,r=abc", "x,,n=user,r=abc",
		"nn,,n=user,r=abc", "N,,n=user,r=abc",
		"n,,m=ext,n=user,r=abc", "n,,n=,r=abc", "n,,n=us=2cer,r=abc",
		"n,,n=us=41er,r=abc", "n,,n=user=,r=abc", "n,,n=user=2,r=abc",
		"n,a=,n=user,r=abc", "n,b=juliet,n=user,r=abc",
		"n,a=j=,n=user,r=abc", "n,,n=user,r=a b",
		"n,,n=user,r=a\x7f", "n,,n=user,r=\xc3\xa4",
		"n,,n=a\x07,r=abc", "n,,n=a\xc3,r=abc",
		"n,,n=\xd8\xa7" "1,r=abc", /* RFC 4013 §3 bidi example */
		"n,,n=\xc2\xad,r=abc",
		"n,a=\xff,n=user,r=abc",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		first_fails(false, false, bad[i], strlen(bad[i]),
			    "malformed-request");

	/* NUL bytes and overlong messages. */
	first_fails(false, false, "n,,n=us\0er,r=abc", 16, "malformed-request");
	struct buf b = BUF_INIT;
	buf_append_str(&b, "n,,n=user,r=");
	while (b.len < SCRAM_MAX_MESSAGE)
		buf_append(&b, "x", 1);
	s = scram_server_new(SCRAM_SHA256, false, false);
	assert_int_equal(scram_server_client_first(s, b.data, b.len, &authcid,
						   &authzid, &cb, &error), 0);
	scram_server_free(s);
	buf_append(&b, "x", 1);
	first_fails(false, false, b.data, b.len, "malformed-request");
	buf_free(&b);

	/* Out of order. */
	s = start(SCRAM_SHA1, false, false, "n,,n=user,r=abc", NULL);
	m = "n,,n=user,r=abc";
	assert_int_equal(scram_server_client_first(s, m, strlen(m), &authcid,
						   &authzid, &cb, &error), -1);
	scram_server_free(s);
	s = scram_server_new(SCRAM_SHA1, false, false);
	assert_int_equal(scram_server_first(s, NULL, &m, NULL), -1);
	scram_server_free(s);
	scram_server_free(NULL);
}

/* Runs a SHA-256 exchange up to server-first (user "user", password
 * "pencil", cnonce "abc", snonce "xyz") and feeds `final`. */
static int final_with(const char *final, size_t len, const char **error_r)
{
	struct scram_creds creds;
	const char *out;
	size_t out_len;
	unsigned char key[32];
	const char *again;
	int rc;

	assert_int_equal(scram_derive(SCRAM_SHA256, "pencil",
				      (const unsigned char *)"salt", 4, 16,
				      &creds, NULL), 0);
	struct scram_server *s = start(SCRAM_SHA256, false, false,
				       "n,,n=user,r=abc", NULL);
	assert_int_equal(scram_server_first_with_nonce(s, &creds, "xyz", &out,
						       &out_len), 0);
	rc = scram_server_client_final(s, final, len, NULL, 0, &out, &out_len,
				       key, error_r);
	/* Whatever happened, this exchange is over. */
	assert_int_equal(scram_server_client_final(s, final, len, NULL, 0, &out,
						   &out_len, key, &again), -1);
	assert_string_equal(again, "malformed-request");
	scram_server_free(s);
	return rc;
}

static void test_client_final_parsing(void **state)
{
	char *good, *expect, *m;
	const char *error;
	const char *sfirst = "r=abcxyz,s=c2FsdA==,i=16";

	good = client_final(SCRAM_SHA256, "pencil", "n,,", NULL, 0,
			    "n=user,r=abc", sfirst, &expect);
	assert_int_equal(final_with(good, strlen(good), &error), 0);
	const char *proof = strstr(good, ",p=") + 3;

	/* Tampered nonce: the client's part alone, another server part, a
	 * longer one. */
	static const char *const nonces[] = { "abc", "abcxyZ", "abcxyzz", "xyzabc" };
	for (size_t i = 0; i < sizeof(nonces) / sizeof(*nonces); i++) {
		m = xasprintf("c=biws,r=%s,p=%s", nonces[i], proof);
		error = NULL;
		assert_int_equal(final_with(m, strlen(m), &error), -1);
		assert_string_equal(error, "not-authorized");
		free(m);
	}
	/* Wrong gs2 header echoed back ("y,," instead of "n,,"). */
	m = xasprintf("c=eSws,r=abcxyz,p=%s", proof);
	assert_int_equal(final_with(m, strlen(m), &error), -1);
	assert_string_equal(error, "not-authorized");
	free(m);
	/* A flipped proof bit. */
	m = xstrdup(good);
	m[strlen(m) - 3] = m[strlen(m) - 3] == 'A' ? 'B' : 'A';
	assert_int_equal(final_with(m, strlen(m), &error), -1);
	assert_string_equal(error, "not-authorized");
	free(m);
	/* An extension changes the AuthMessage, so the proof no longer
	 * holds, but it parses. */
	m = xasprintf("c=biws,r=abcxyz,x=ext,p=%s", proof);
	assert_int_equal(final_with(m, strlen(m), &error), -1);
	assert_string_equal(error, "not-authorized");
	free(m);

	char *bad[] = {
		xstrdup(""),
		xstrdup("c=biws"),
		xstrdup("c=biws,r=abcxyz"),
		xasprintf("c=biws,p=%s", proof),
		xasprintf("r=abcxyz,p=%s", proof),
		xasprintf("c=biws,r=abcxyz,p=%s,x=y", proof),
		xasprintf("c=biws,p=%s,r=abcxyz", proof),
		xasprintf("r=abcxyz,c=biws,p=%s", proof),
		xasprintf("c=b!ws,r=abcxyz,p=%s", proof),
		xasprintf("c=biw,r=abcxyz,p=%s", proof),
		xasprintf("c=biws,r=abcxyz,p=%.43s", proof), /* bad length */
		xasprintf("c=biws,r=abcxyz,p=%.40s", proof), /* too short */
		xasprintf("c=biws,r=abcxyz,p=%sAAAA", proof),
		xasprintf("c=biws,r=abcxyz,p=%.42s$=", proof),
		xstrdup("c=biws,r=abcxyz,p="),
		xasprintf("c=biws,r=abcxyz,,p=%s", proof),
		xasprintf("c=biws,r=abcxyz,x,p=%s", proof),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		error = NULL;
		if (final_with(bad[i], strlen(bad[i]), &error) == 0)
			fail_msg("client-final \"%s\" accepted", bad[i]);
		assert_string_equal(error, "malformed-request");
		free(bad[i]);
	}
	/* NUL and overlong. */
	m = xasprintf("c=biws,r=abc\1xyz,p=%s", proof);
	m[12] = '\0';
	assert_int_equal(final_with(m, strlen(m + 13) + 13, &error), -1);
	assert_string_equal(error, "malformed-request");
	free(m);
	struct buf b = BUF_INIT;
	buf_append_str(&b, "c=biws,r=abcxyz,x=");
	while (b.len < SCRAM_MAX_MESSAGE)
		buf_append(&b, "x", 1);
	buf_appendf(&b, ",p=%s", proof);
	assert_int_equal(final_with(b.data, b.len, &error), -1);
	assert_string_equal(error, "malformed-request");
	buf_free(&b);

	free(good);
	free(expect);
}

static void test_unknown_user(void **state)
{
	const char *out, *error = NULL;
	char *salt1, *salt2, *salt3, *salt4, *cfinal, *expect;
	unsigned char key[32];
	size_t len;
	struct scram_server *s;

	s = start(SCRAM_SHA256, false, false, "n,,n=nobody,r=abc", NULL);
	assert_int_equal(scram_server_first(s, NULL, &out, &len), 0);
	assert_true(strncmp(out, "r=abc", 5) == 0);
	assert_non_null(strstr(out, ",i=4096"));
	salt1 = attr_value(out, 's');
	unsigned char *raw;
	size_t raw_len;
	assert_int_equal(base64_decode(salt1, strlen(salt1), &raw, &raw_len), 0);
	assert_int_equal(raw_len, SCRAM_SALT_LEN);
	free(raw);
	/* Even the right proof for the advertised salt fails. */
	cfinal = client_final(SCRAM_SHA256, "any", "n,,", NULL, 0,
			      "n=nobody,r=abc", out, &expect);
	assert_int_equal(scram_server_client_final(s, cfinal, strlen(cfinal),
						   NULL, 0, &out, &len, key,
						   &error), -1);
	assert_string_equal(error, "not-authorized");
	free(cfinal);
	free(expect);
	scram_server_free(s);

	/* The fake salt does not change between attempts (a real one
	 * would not), and differs between users and hashes. */
	s = start(SCRAM_SHA256, false, false, "n,,n=nobody,r=def", NULL);
	assert_int_equal(scram_server_first(s, NULL, &out, &len), 0);
	salt2 = attr_value(out, 's');
	scram_server_free(s);
	s = start(SCRAM_SHA256, false, false, "n,,n=somebody,r=def", NULL);
	assert_int_equal(scram_server_first(s, NULL, &out, &len), 0);
	salt3 = attr_value(out, 's');
	scram_server_free(s);
	s = start(SCRAM_SHA1, false, false, "n,,n=nobody,r=def", NULL);
	assert_int_equal(scram_server_first(s, NULL, &out, &len), 0);
	salt4 = attr_value(out, 's');
	scram_server_free(s);
	assert_string_equal(salt1, salt2);
	assert_string_not_equal(salt1, salt3);
	assert_string_not_equal(salt1, salt4);
	free(salt1);
	free(salt2);
	free(salt3);
	free(salt4);
}

static void test_server_nonce(void **state)
{
	struct scram_creds creds;
	const char *out;
	char *n1, *n2;
	size_t len;
	struct scram_server *s;

	assert_int_equal(scram_make_creds(SCRAM_SHA1, "pw", &creds), 0);
	s = start(SCRAM_SHA1, false, false, "n,,n=user,r=abc", NULL);
	assert_int_equal(scram_server_first(s, &creds, &out, &len), 0);
	n1 = attr_value(out, 'r');
	scram_server_free(s);
	s = start(SCRAM_SHA1, false, false, "n,,n=user,r=abc", NULL);
	assert_int_equal(scram_server_first(s, &creds, &out, &len), 0);
	n2 = attr_value(out, 'r');
	scram_server_free(s);
	/* 18 random bytes: 24 printable characters after "abc". */
	assert_int_equal(strlen(n1), 3 + 24);
	assert_string_not_equal(n1, n2);
	for (const char *p = n1; *p != '\0'; p++)
		assert_true(*p > 0x20 && *p < 0x7f && *p != ',');
	free(n1);
	free(n2);

	/* Injected nonces must be printable; credentials must be sane. */
	s = start(SCRAM_SHA1, false, false, "n,,n=user,r=abc", NULL);
	assert_int_equal(scram_server_first_with_nonce(s, &creds, "a,b", &out,
						       &len), -1);
	scram_server_free(s);
	s = start(SCRAM_SHA1, false, false, "n,,n=user,r=abc", NULL);
	assert_int_equal(scram_server_first_with_nonce(s, &creds, "", &out,
						       &len), -1);
	scram_server_free(s);
	creds.iterations = 0;
	s = start(SCRAM_SHA1, false, false, "n,,n=user,r=abc", NULL);
	assert_int_equal(scram_server_first(s, &creds, &out, &len), -1);
	scram_server_free(s);
}

/* ---- SASLprep ---- */

static void prep_is(const char *in, const char *want)
{
	char *out;

	if (saslprep(in, &out) != 0)
		fail_msg("saslprep(\"%s\") failed", in);
	assert_string_equal(out, want);
	free(out);
}

static void test_saslprep(void **state)
{
	char *out;

	/* RFC 4013 §3 examples. */
	prep_is("I\xc2\xadX", "IX");
	prep_is("user", "user");
	prep_is("USER", "USER");
	prep_is("\xc2\xaa", "a");
	prep_is("\xe2\x85\xa8", "IX");
	assert_int_equal(saslprep("\x07", &out), -1);
	assert_int_equal(saslprep("\xd8\xa7" "1", &out), -1);
	/* Non-ASCII spaces become U+0020. */
	prep_is("a\xc2\xa0" "b", "a b");
	prep_is("", "");
	/* Unassigned in Unicode 3.2: refused for stored strings only. */
	assert_int_equal(saslprep("a\xc8\xa1", &out), -1);
	assert_int_equal(saslprep_query("a\xc8\xa1", &out), 0);
	free(out);
	assert_int_equal(saslprep("a\xc3", &out), -1);
	/* Expansion past the first buffer: U+FDFA is 3 bytes in, 33 out. */
	struct buf b = BUF_INIT;
	for (int i = 0; i < 100; i++)
		buf_append_str(&b, "\xef\xb7\xba");
	assert_int_equal(saslprep(b.data, &out), 0);
	assert_true(strlen(out) > 3000);
	free(out);
	buf_free(&b);
}

static void test_utf8(void **state)
{
	assert_true(sasl_utf8_valid("", 0));
	assert_true(sasl_utf8_valid("abc", 3));
	assert_true(sasl_utf8_valid("\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80", 9));
	assert_true(sasl_utf8_valid("\xf4\x8f\xbf\xbf", 4));
	assert_false(sasl_utf8_valid("a\0b", 3));
	assert_false(sasl_utf8_valid("\xc3", 1));
	assert_false(sasl_utf8_valid("\xc0\xaf", 2));
	assert_false(sasl_utf8_valid("\xe0\x80\xaf", 3));
	assert_false(sasl_utf8_valid("\xf0\x80\x80\xaf", 4));
	assert_false(sasl_utf8_valid("\xed\xa0\x80", 3));
	assert_false(sasl_utf8_valid("\xf4\x90\x80\x80", 4));
	assert_false(sasl_utf8_valid("\xf8\x88\x80\x80\x80", 5));
	assert_false(sasl_utf8_valid("\x80", 1));
	assert_false(sasl_utf8_valid("\xe2\x82", 2));
	assert_false(sasl_utf8_valid("\xe2\x28\xa1", 3));
}

/* ---- PLAIN ---- */

/* A string literal and its length, NULs included. */
#define S(lit) lit, sizeof(lit) - 1

static int plain(const char *msg, size_t len, char **z, char **c, char **p)
{
	return sasl_plain_parse((const unsigned char *)msg, len, z, c, p);
}

static void test_plain(void **state)
{
	char *z, *c, *p;

	assert_int_equal(plain(S("\0juliet\0r0m30"), &z, &c, &p), 0);
	assert_null(z);
	assert_string_equal(c, "juliet");
	assert_string_equal(p, "r0m30");
	free(c);
	xfree_secret(p, strlen(p));

	assert_int_equal(plain(S("juliet@capulet.lit\0juliet\0r\xc3\xb6m30"), &z,
			       &c, &p), 0);
	assert_string_equal(z, "juliet@capulet.lit");
	assert_string_equal(c, "juliet");
	assert_string_equal(p, "r\xc3\xb6m30");
	free(z);
	free(c);
	free(p);

	static const struct {
		const char *msg;
		size_t len;
	} bad[] = {
		{ S("") },
		{ S("juliet") },
		{ S("\0juliet") },
		{ S("juliet\0r0m30") },
		{ S("\0juliet\0") },          /* empty password */
		{ S("\0\0r0m30") },           /* empty authcid */
		{ S("\0\0") },
		{ S("\0juliet\0r0m30\0") },   /* extra NUL */
		{ S("\0juliet\0r0\0m30") },
		{ S("a\0b\0c\0d") },
		{ S("\0jul\xc3" "iet\0r0m30") }, /* invalid UTF-8 */
		{ S("\0juliet\0r0m\xff" "30") },
		{ S("\xc0\xaf\0juliet\0r0m30") },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		z = c = p = (char *)"untouched";
		if (plain(bad[i].msg, bad[i].len, &z, &c, &p) == 0)
			fail_msg("PLAIN case %zu accepted", i);
		assert_null(z);
		assert_null(c);
		assert_null(p);
	}

	/* Each part is capped at 1023 bytes. */
	struct buf b = BUF_INIT;
	char big[1025];
	memset(big, 'x', sizeof(big));
	buf_append(&b, "", 1);
	buf_append(&b, "juliet", 6);
	buf_append(&b, "", 1);
	buf_append(&b, big, 1023);
	assert_int_equal(plain(b.data, b.len, &z, &c, &p), 0);
	assert_int_equal(strlen(p), 1023);
	free(c);
	free(p);
	buf_append(&b, "x", 1);
	assert_int_equal(plain(b.data, b.len, &z, &c, &p), -1);
	buf_reset(&b);
	buf_append(&b, big, 1024);
	buf_append(&b, "\0juliet\0pw", 10);
	assert_int_equal(plain(b.data, b.len, &z, &c, &p), -1);
	buf_reset(&b);
	buf_append(&b, "", 1);
	buf_append(&b, big, 1024);
	buf_append(&b, "\0pw", 3);
	assert_int_equal(plain(b.data, b.len, &z, &c, &p), -1);
	buf_reset(&b);
	buf_append(&b, big, 1023);
	buf_append(&b, "", 1);
	buf_append(&b, big, 1023);
	buf_append(&b, "", 1);
	buf_append(&b, big, 1023);
	assert_int_equal(plain(b.data, b.len, &z, &c, &p), 0);
	free(z);
	free(c);
	free(p);
	buf_free(&b);
}

/* ---- base64 (util/base64.c, used by SASL) ---- */

static void b64_is(const char *raw, const char *enc)
{
	char *e = base64_encode(raw, strlen(raw));
	unsigned char *d;
	size_t len;

	assert_string_equal(e, enc);
	free(e);
	assert_int_equal(base64_decode(enc, strlen(enc), &d, &len), 0);
	assert_int_equal(len, strlen(raw));
	assert_memory_equal(d, raw, len);
	assert_int_equal(d[len], '\0');
	free(d);
}

static void test_base64(void **state)
{
	unsigned char *d;
	size_t len;

	/* RFC 4648 §10. */
	b64_is("", "");
	b64_is("f", "Zg==");
	b64_is("fo", "Zm8=");
	b64_is("foo", "Zm9v");
	b64_is("foob", "Zm9vYg==");
	b64_is("fooba", "Zm9vYmE=");
	b64_is("foobar", "Zm9vYmFy");

	/* Every byte value and length round-trips. */
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	for (size_t n = 0; n <= sizeof(all); n++) {
		char *e = base64_encode(all, n);
		assert_int_equal(strlen(e), 4 * ((n + 2) / 3));
		assert_int_equal(base64_decode(e, strlen(e), &d, &len), 0);
		assert_int_equal(len, n);
		assert_memory_equal(d, all, n);
		free(d);
		free(e);
	}

	/* "=" is the empty response of RFC 6120 §6.4.2. */
	assert_int_equal(base64_decode("=", 1, &d, &len), 0);
	assert_int_equal(len, 0);
	free(d);
	/* Only `len` characters are read. */
	assert_int_equal(base64_decode("Zm9vYmFy", 4, &d, &len), 0);
	assert_int_equal(len, 3);
	free(d);

	static const char *const bad[] = {
		"Z", "Zg", "Zg=", "Zm9", "Zg===", "==", "===", "====",
		"Zg==Zg==", "Z===", "A=B=", "AB=C", "=AAA", "Zm=v",
		"Zh==", "Zm9=",            /* non-canonical: stray bits */
		"Zm9v\n", " Zm9v", "Zm 9v", "Zm9v\r\n",
		"Zm-v", "Zm_v", "Zm9\xc3", "Zm9v====",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		d = NULL;
		if (base64_decode(bad[i], strlen(bad[i]), &d, &len) == 0)
			fail_msg("base64 \"%s\" accepted", bad[i]);
		assert_null(d);
	}
	assert_int_equal(base64_decode("Zm\0v", 4, &d, &len), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc5802_sha1),
		cmocka_unit_test(test_rfc7677_sha256),
		cmocka_unit_test(test_hash_names),
		cmocka_unit_test(test_derive),
		cmocka_unit_test(test_passwords),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_channel_binding),
		cmocka_unit_test(test_channel_binding_policy),
		cmocka_unit_test(test_client_first_parsing),
		cmocka_unit_test(test_client_final_parsing),
		cmocka_unit_test(test_unknown_user),
		cmocka_unit_test(test_server_nonce),
		cmocka_unit_test(test_saslprep),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_base64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

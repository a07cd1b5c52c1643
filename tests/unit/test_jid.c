#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stringprep.h>

#include "core/jid.h"
#include "util/xalloc.h"

/* Parses `in` and checks its prepared full form. */
static void ok(const char *in, const char *want)
{
	struct jid j;
	const char *error = NULL;
	char *full;

	if (jid_parse(in, &j, &error) != 0)
		fail_msg("\"%s\" rejected: %s", in, error);
	full = jid_full(&j);
	assert_string_equal(full, want);
	free(full);
	jid_free(&j);
}

static void bad(const char *in)
{
	struct jid j;
	const char *error = NULL;

	if (jid_parse(in, &j, &error) == 0)
		fail_msg("\"%s\" accepted", in);
	assert_non_null(error);
	/* Contract: *out is zeroed on failure. */
	assert_null(j.local);
	assert_null(j.domain);
	assert_null(j.resource);
}

/* Rejected, and for the documented reason. */
static void bad_because(const char *in, const char *why)
{
	struct jid j;
	const char *error = NULL;

	if (jid_parse(in, &j, &error) == 0)
		fail_msg("\"%.40s...\" accepted", in);
	assert_string_equal(error, why);
}

static char *repeat(char c, size_t n)
{
	char *s = xmalloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* A hostname of exactly n bytes made of labels of at most 63. */
static char *make_domain(size_t n)
{
	char *s = xmalloc(n + 1);
	size_t at = 0;

	while (at < n) {
		size_t label = n - at < 63 ? n - at : 63;
		if (n - at - label == 1)
			label--; /* never end on "." */
		memset(s + at, 'a', label);
		at += label;
		if (at < n)
			s[at++] = '.';
	}
	s[n] = '\0';
	return s;
}

static void test_parts(void **state)
{
	struct jid j;
	const char *error;

	assert_int_equal(jid_parse("user@example.com/res", &j, &error), 0);
	assert_string_equal(j.local, "user");
	assert_string_equal(j.domain, "example.com");
	assert_string_equal(j.resource, "res");
	jid_free(&j);
	assert_null(j.domain);

	assert_int_equal(jid_parse("example.com", &j, &error), 0);
	assert_null(j.local);
	assert_string_equal(j.domain, "example.com");
	assert_null(j.resource);
	jid_free(&j);

	assert_int_equal(jid_parse("example.com/r", &j, &error), 0);
	assert_null(j.local);
	assert_string_equal(j.resource, "r");
	jid_free(&j);

	ok("localhost", "localhost");
	ok("a@b", "a@b");
}

static void test_empty_parts(void **state)
{
	bad("");
	bad_because("@example.com", "empty localpart");
	bad_because("u@", "empty domainpart");
	bad_because("u@d/", "empty resourcepart");
	bad("@");
	bad("/");
	bad("@example.com");
	bad("user@");
	bad("user@/res");
	bad("example.com/");
	bad("user@example.com/");
	bad("/res");
	bad("@/");
	/* Parts that preparation maps to nothing (U+00AD SOFT HYPHEN). */
	bad("\xc2\xad@example.com");
	bad("user@example.com/\xc2\xad");
}

static void test_case_folding(void **state)
{
	ok("User@Example.COM/Res", "user@example.com/Res");
	ok("USER@EXAMPLE.COM/RES", "user@example.com/RES");
	ok("\xc3\x84LICE@Example.COM/Res", "\xc3\xa4lice@example.com/Res");
	/* Full case folding: ß becomes "ss" in the localpart. */
	ok("Stra\xc3\x9f" "e@example.com", "strasse@example.com");
	/* The resourcepart keeps its case; NFKC still applies (U+FB01). */
	ok("a@b/\xef\xac\x81X", "a@b/fiX");
}

static void test_localpart_prohibited(void **state)
{
	static const char *const prohibited[] = {
		"a\"b", "a&b", "a'b", "a/b", "a:b", "a<b", "a>b", "a@b", "a b",
		"a\tb", "a\x7f" "b",
		"a\xc2\xa0" "b", /* U+00A0 NO-BREAK SPACE */
		"a\xe2\x80\xae" "b", /* U+202E RIGHT-TO-LEFT OVERRIDE */
		"a\xef\xbf\xbe" "b", /* U+FFFE non-character */
	};
	char *out;

	for (size_t i = 0; i < sizeof(prohibited) / sizeof(*prohibited); i++) {
		out = NULL;
		if (jid_prep_local(prohibited[i], &out) == 0)
			fail_msg("localpart \"%s\" accepted as \"%s\"",
				 prohibited[i], out);
	}
	bad("a b@example.com");
	bad("a\"b@example.com");
	bad("a&b@example.com");
	bad("a'b@example.com");
	bad("a:b@example.com");
	bad("a<b@example.com");
	bad("a>b@example.com");
	/* '/' ends the domain before any '@' is looked for. */
	ok("a/b@example.com", "a/b@example.com");
}

static void test_resource(void **state)
{
	ok("u@example.com/a b", "u@example.com/a b");
	ok("u@example.com/a/b/c", "u@example.com/a/b/c");
	ok("u@example.com/a@b", "u@example.com/a@b");
	ok("example.com/u@x/y z", "example.com/u@x/y z");
	ok("u@example.com/\"&'<>:", "u@example.com/\"&'<>:");
	/* Control characters are still prohibited. */
	bad("u@example.com/a\x01" "b");
	bad("u@example.com/a\xe2\x80\xae" "b");
}

static void test_domain(void **state)
{
	ok("u@example.com.", "u@example.com");
	ok("example.com.", "example.com");
	ok("u@Example.COM./r", "u@example.com/r");
	ok("u@a-b.example", "u@a-b.example");
	ok("u@xn--bcher-kva.example", "u@xn--bcher-kva.example");
	ok("u@B\xc3\x9c" "cher.example", "u@b\xc3\xbc" "cher.example");
	/* U+3002 IDEOGRAPHIC FULL STOP and U+FF0E separate labels. */
	ok("u@example\xe3\x80\x82" "com", "u@example.com");
	ok("u@example\xef\xbc\x8e" "com", "u@example.com");
	ok("u@123.example", "u@123.example");
	bad("u@example.com..");
	bad("u@.");
	bad("u@..");
	bad("u@.example.com");
	bad("u@a..b");
	bad("u@-a.example");
	bad("u@a-.example");
	bad("u@a_b.example");
	bad("u@a b.example");
	bad("u@a!b.example");
	bad("u@a@b.example");
	bad("u@a:5222");
	bad("u@exa\xe2\x80\xae" "mple.com");
}

static void test_domain_labels(void **state)
{
	char *l63 = repeat('a', 63), *l64 = repeat('a', 64);
	char *in;

	in = xasprintf("u@%s.example", l63);
	ok(in, in);
	free(in);
	in = xasprintf("u@%s.example", l64);
	bad(in);
	free(in);
	in = xasprintf("u@%s", l64);
	bad(in);
	free(in);
	free(l63);
	free(l64);

	/* A non-ASCII label is held to its A-label: "xn--" + Punycode of 20
	 * "ü" is 4 + 26 bytes, fine; of 60 it is over 63. */
	char twenty[41] = "", sixty[121] = "";
	for (int i = 0; i < 20; i++)
		strcat(twenty, "\xc3\xbc");
	for (int i = 0; i < 60; i++)
		strcat(sixty, "\xc3\xbc");
	in = xasprintf("u@%s.example", twenty);
	ok(in, in);
	free(in);
	in = xasprintf("u@%s.example", sixty);
	bad_because(in, "invalid domainpart");
	free(in);
}

static void test_ip_literals(void **state)
{
	ok("u@192.168.0.1/r", "u@192.168.0.1/r");
	ok("127.0.0.1", "127.0.0.1");
	ok("u@[::1]/r", "u@[::1]/r");
	ok("u@[2001:DB8::A]", "u@[2001:db8::a]");
	ok("[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]");
	bad("u@256.1.1.1");
	bad("u@1.2.3");
	bad("u@1.2.3.4.5");
	bad("u@::1");
	bad("u@[::1");
	bad("u@::1]");
	bad("u@[]");
	bad("u@[zz::1]");
	bad("u@[fe80::1%eth0]");
	bad("u@[127.0.0.1]");
	bad("u@[::1].");
}

static void test_lengths(void **state)
{
	char *p1023 = repeat('a', 1023), *p1024 = repeat('a', 1024);
	char *d1023 = make_domain(1023), *d1024 = make_domain(1024);
	char *in, *out;

	assert_int_equal(strlen(d1023), 1023);
	assert_int_equal(strlen(d1024), 1024);

	in = xasprintf("%s@example.com/%s", p1023, p1023);
	ok(in, in);
	free(in);
	in = xasprintf("%s@example.com", p1024);
	bad_because(in, "localpart too long");
	free(in);
	in = xasprintf("u@example.com/%s", p1024);
	bad_because(in, "resourcepart too long");
	free(in);
	in = xasprintf("u@%s/r", d1023);
	ok(in, in);
	free(in);
	in = xasprintf("u@%s/r", d1024);
	bad_because(in, "domainpart too long");
	free(in);
	/* The trailing dot does not count. */
	in = xasprintf("u@%s./r", d1023);
	out = xasprintf("u@%s/r", d1023);
	ok(in, out);
	free(in);
	free(out);

	/* Lengths are after preparation: U+3300 SQUARE APAATO (3 bytes)
	 * expands under NFKC to four katakana (12 bytes). */
	in = xasprintf("%.1020s\xe3\x8c\x80@example.com", p1023);
	assert_int_equal(strlen(in), 1023 + strlen("@example.com"));
	bad_because(in, "localpart too long");
	free(in);
	/* ...and soft hyphens, mapped to nothing, make a long input
	 * short. */
	struct { char c[2]; } shy[1100];
	for (size_t i = 0; i < 1100; i++)
		memcpy(shy[i].c, "\xc2\xad", 2);
	in = xasprintf("u@example.com/x%.*s", (int)sizeof(shy),
		       (const char *)shy);
	ok(in, "u@example.com/x");
	free(in);

	free(p1023);
	free(p1024);
	free(d1023);
	free(d1024);
}

static void test_invalid_utf8(void **state)
{
	bad("a\xc3@example.com");
	bad("a\xc0\xaf@example.com");       /* overlong '/' */
	bad("a\xed\xa0\x80@example.com");   /* surrogate */
	bad("a\xf4\x90\x80\x80@example.com"); /* over U+10FFFF */
	bad("u@exa\xffmple.com");
	bad("u@example.com/\x80");
}

static void test_prep_functions(void **state)
{
	char *out;

	assert_int_equal(jid_prep_local("\xc3\x84LICE", &out), 0);
	assert_string_equal(out, "\xc3\xa4lice");
	free(out);
	assert_int_equal(jid_prep_local("", &out), -1);

	assert_int_equal(jid_prep_domain("Example.COM.", &out), 0);
	assert_string_equal(out, "example.com");
	free(out);
	assert_int_equal(jid_prep_domain("[::1]", &out), 0);
	assert_string_equal(out, "[::1]");
	free(out);
	assert_int_equal(jid_prep_domain("", &out), -1);
	assert_int_equal(jid_prep_domain("a_b", &out), -1);

	assert_int_equal(jid_prep_resource("My Res/1@x", &out), 0);
	assert_string_equal(out, "My Res/1@x");
	free(out);
	assert_int_equal(jid_prep_resource("", &out), -1);
}

/* jid.c prepares ASCII without libidn: every ASCII character, alone and
 * between letters, must come out as libidn's own profiles make it. */
static int libidn_prep(const char *in, const Stringprep_profile *profile,
		       char out[64])
{
	snprintf(out, 64, "%s", in);
	return stringprep(out, 64, 0, profile) == STRINGPREP_OK &&
	       out[0] != '\0' ? 0 : -1;
}

static bool is_ldh_host(const char *s)
{
	for (const char *p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '-'))
			return false;
	return s[0] != '-' && s[0] != '\0' && s[strlen(s) - 1] != '-';
}

static void same_as_libidn(const char *in, const Stringprep_profile *profile,
			   int (*ours)(const char *, char **))
{
	char want[64], *got = NULL;
	int rc_want = libidn_prep(in, profile, want);

	assert_int_equal(ours(in, &got), rc_want);
	if (rc_want == 0)
		assert_string_equal(got, want);
	free(got);
}

static void test_ascii_matches_libidn(void **state)
{
	for (int c = 1; c < 0x80; c++) {
		char forms[2][4] = { { (char)c, 0 }, { 'A', (char)c, 'z', 0 } };

		for (int f = 0; f < 2; f++) {
			const char *in = forms[f];
			char want[64], *got = NULL;
			int rc_want, rc_got;

			same_as_libidn(in, stringprep_xmpp_nodeprep,
				       jid_prep_local);
			same_as_libidn(in, stringprep_xmpp_resourceprep,
				       jid_prep_resource);

			/* Nameprep, then the host-name rules (a lone '.' is a
			 * trailing dot: not compared). */
			if (c == '.')
				continue;
			rc_want = libidn_prep(in, stringprep_nameprep, want);
			if (rc_want == 0 && !is_ldh_host(want))
				rc_want = -1;
			if (rc_want == 0 && strspn(want, "0123456789") == strlen(want))
				rc_want = -1; /* all digits: not a host name */
			rc_got = jid_prep_domain(in, &got);
			assert_int_equal(rc_got, rc_want);
			if (rc_got == 0)
				assert_string_equal(got, want);
			free(got);
		}
	}
}

static void test_bare_full(void **state)
{
	struct jid j;
	const char *error;
	char *s;

	assert_int_equal(jid_parse("Juliet@Capulet.LIT/Balcony", &j, &error), 0);
	s = jid_bare(&j);
	assert_string_equal(s, "juliet@capulet.lit");
	free(s);
	s = jid_full(&j);
	assert_string_equal(s, "juliet@capulet.lit/Balcony");
	free(s);
	jid_free(&j);

	assert_int_equal(jid_parse("capulet.lit/r", &j, &error), 0);
	s = jid_bare(&j);
	assert_string_equal(s, "capulet.lit");
	free(s);
	s = jid_full(&j);
	assert_string_equal(s, "capulet.lit/r");
	free(s);
	jid_free(&j);
	jid_free(&j); /* idempotent */
}

static void test_normalize(void **state)
{
	char *s;

	s = jid_normalize("Romeo@Montague.LIT/Orchard");
	assert_string_equal(s, "romeo@montague.lit/Orchard");
	free(s);
	s = jid_normalize_bare("Romeo@Montague.LIT/Orchard");
	assert_string_equal(s, "romeo@montague.lit");
	free(s);
	s = jid_normalize_bare("Montague.LIT.");
	assert_string_equal(s, "montague.lit");
	free(s);
	assert_null(jid_normalize("romeo@"));
	assert_null(jid_normalize_bare("a b@montague.lit"));
}

static void test_equal_copy(void **state)
{
	struct jid a, b, c, d, e;
	const char *error;

	assert_int_equal(jid_parse("Romeo@Montague.lit/Orchard", &a, &error), 0);
	assert_int_equal(jid_parse("romeo@MONTAGUE.LIT./Orchard", &b, &error), 0);
	assert_int_equal(jid_parse("romeo@montague.lit/orchard", &c, &error), 0);
	assert_int_equal(jid_parse("romeo@montague.lit", &d, &error), 0);
	assert_int_equal(jid_parse("montague.lit/Orchard", &e, &error), 0);

	assert_true(jid_equal(&a, &b));
	assert_false(jid_equal(&a, &c)); /* resources are case-sensitive */
	assert_true(jid_bare_equal(&a, &c));
	assert_false(jid_equal(&a, &d));
	assert_false(jid_equal(&d, &a));
	assert_true(jid_bare_equal(&a, &d));
	assert_false(jid_bare_equal(&a, &e)); /* absent localpart */
	assert_false(jid_equal(&a, &e));

	struct jid copy;
	jid_copy(&copy, &a);
	assert_true(jid_equal(&copy, &a));
	assert_ptr_not_equal(copy.local, a.local);
	jid_free(&copy);
	jid_copy(&copy, &e);
	assert_null(copy.local);
	assert_true(jid_equal(&copy, &e));
	jid_free(&copy);

	jid_free(&a);
	jid_free(&b);
	jid_free(&c);
	jid_free(&d);
	jid_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parts),
		cmocka_unit_test(test_empty_parts),
		cmocka_unit_test(test_case_folding),
		cmocka_unit_test(test_localpart_prohibited),
		cmocka_unit_test(test_resource),
		cmocka_unit_test(test_domain),
		cmocka_unit_test(test_domain_labels),
		cmocka_unit_test(test_ip_literals),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_prep_functions),
		cmocka_unit_test(test_ascii_matches_libidn),
		cmocka_unit_test(test_bare_full),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_equal_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

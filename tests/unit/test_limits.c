/* Unit tests for the per-address connection limits (src/net/addr_limit.c)
 * and the authentication throttle's refusal (src/core/auth_throttle.c).
 * Both are compiled into roostd only, so this test builds their sources. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/auth_throttle.h"
#include "net/addr_limit.h"

static void key_of(const char *ip, char key[ADDR_KEY_MAX])
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *in6 = (void *)&ss;
		in6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	} else {
		struct sockaddr_in *in = (void *)&ss;
		in->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	}
	addr_limit_key((struct sockaddr *)&ss, key);
}

static void test_keys(void **state)
{
	char a[ADDR_KEY_MAX], b[ADDR_KEY_MAX];

	key_of("192.0.2.7", a);
	assert_string_equal(a, "192.0.2.7");
	/* One IPv6 host holds a /64: all of it is one address. */
	key_of("2001:db8:1:2:aaaa:bbbb:cccc:dddd", a);
	key_of("2001:db8:1:2::1", b);
	assert_string_equal(a, "2001:db8:1:2::/64");
	assert_string_equal(a, b);
	key_of("2001:db8:1:3::1", b);
	assert_string_not_equal(a, b);
	/* IPv4 through a v6 socket counts as the IPv4 address. */
	key_of("::ffff:192.0.2.7", a);
	assert_string_equal(a, "192.0.2.7");
}

static void test_concurrent(void **state)
{
	struct addr_limit *l = addr_limit_new(3, 0, 0);
	const char *why = NULL;

	for (int i = 0; i < 3; i++)
		assert_int_equal(addr_limit_admit(l, "a", 0, &why), 0);
	assert_int_equal(addr_limit_admit(l, "a", 0, &why), -1);
	assert_non_null(why);
	assert_int_equal(addr_limit_admit(l, "b", 0, &why), 0);
	addr_limit_release(l, "a");
	assert_int_equal(addr_limit_admit(l, "a", 0, &why), 0);
	for (int i = 0; i < 3; i++)
		addr_limit_release(l, "a");
	addr_limit_release(l, "b");
	/* Without a rate nothing is kept for idle addresses. */
	assert_int_equal(addr_limit_tracked(l), 0);
	addr_limit_free(l);
}

static void test_rate(void **state)
{
	struct addr_limit *l = addr_limit_new(0, 2, 5);
	const char *why;
	uint64_t t = 1000;

	/* A burst of five, then two a second. */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(addr_limit_admit(l, "a", t, &why), 0);
		addr_limit_release(l, "a");
	}
	assert_int_equal(addr_limit_admit(l, "a", t, &why), -1);
	assert_int_equal(addr_limit_admit(l, "a", t + 400, &why), -1);
	assert_int_equal(addr_limit_admit(l, "a", t + 500, &why), 0);
	addr_limit_release(l, "a");
	assert_int_equal(addr_limit_admit(l, "a", t + 600, &why), -1);
	/* Never more than the bucket, however long the pause. */
	t += 3600 * 1000;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(addr_limit_admit(l, "a", t, &why), 0);
		addr_limit_release(l, "a");
	}
	assert_int_equal(addr_limit_admit(l, "a", t, &why), -1);
	/* Another address has its own bucket. */
	assert_int_equal(addr_limit_admit(l, "b", t, &why), 0);
	addr_limit_release(l, "b");
	addr_limit_free(l);
}

static void test_sweep_bounds_memory(void **state)
{
	struct addr_limit *l = addr_limit_new(10, 1, 1);
	const char *why;
	char key[32];

	/* A hundred thousand addresses, one connection each, closed: the
	 * table keeps at most about twice what is live or refilling. */
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "10.%d.%d.%d", i >> 16, (i >> 8) & 255,
			 i & 255);
		assert_int_equal(addr_limit_admit(l, key, (uint64_t)i * 10, &why), 0);
		addr_limit_release(l, key);
	}
	assert_true(addr_limit_tracked(l) <= 2 * 4096);
	addr_limit_free(l);
}

static void test_throttle_refusal(void **state)
{
	struct auth_throttle *t = auth_throttle_new(0, 0, 3, 1);

	assert_false(auth_throttle_refused(t, "a", "u@x"));
	for (int i = 0; i < 3; i++)
		auth_throttle_failure(t, "a", "u@x");
	/* The address and the account are refused, from anywhere... */
	assert_true(auth_throttle_refused(t, "a", NULL));
	assert_true(auth_throttle_refused(t, "b", "u@x"));
	/* ... others are not. */
	assert_false(auth_throttle_refused(t, "b", "v@x"));
	assert_false(auth_throttle_refused(t, "b", NULL));
	/* Refusal ends once the window passes without a failure. */
	sleep(2);
	assert_false(auth_throttle_refused(t, "a", "u@x"));
	auth_throttle_free(t);

	/* 0: never refused. */
	t = auth_throttle_new(0, 0, 0, 600);
	for (int i = 0; i < 100; i++)
		auth_throttle_failure(t, "a", "u@x");
	assert_false(auth_throttle_refused(t, "a", "u@x"));
	auth_throttle_free(t);
}

static void test_throttle_delay(void **state)
{
	struct auth_throttle *t = auth_throttle_new(100, 800, 0, 600);

	assert_int_equal(auth_throttle_failure(t, "a", "u@x"), 100);
	assert_int_equal(auth_throttle_failure(t, "a", "u@x"), 200);
	assert_int_equal(auth_throttle_failure(t, "a", "u@x"), 400);
	assert_int_equal(auth_throttle_failure(t, "a", "u@x"), 800);
	assert_int_equal(auth_throttle_failure(t, "a", "u@x"), 800);
	/* A success clears the account, not the address. */
	auth_throttle_success(t, "u@x");
	assert_int_equal(auth_throttle_failure(t, "c", "u@x"), 100);
	assert_int_equal(auth_throttle_failure(t, "a", "v@x"), 800);
	auth_throttle_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_sweep_bounds_memory),
		cmocka_unit_test(test_throttle_refusal),
		cmocka_unit_test(test_throttle_delay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

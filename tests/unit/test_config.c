/* Unit tests for src/config.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "util/xalloc.h"

#define HOST "[host localhost]\n"

static bool is_zeroed(const struct config *cfg)
{
	static const struct config zero;
	return memcmp(cfg, &zero, sizeof(zero)) == 0;
}

static void load_ok(const char *text, struct config *cfg)
{
	char *error = NULL;

	if (config_load_string(text, cfg, &error) != 0)
		fail_msg("config rejected: %s\n---\n%s", error, text);
	assert_null(error);
}

/* Loads text that must fail with exactly `want`; a failed load leaves
 * nothing to free. */
static void load_fails(const char *text, const char *want)
{
	struct config cfg;
	char *error = NULL;

	memset(&cfg, 0xa5, sizeof(cfg));
	if (config_load_string(text, &cfg, &error) != -1)
		fail_msg("config accepted:\n%s", text);
	assert_non_null(error);
	if (strcmp(error, want) != 0)
		fail_msg("got error '%s', want '%s'", error, want);
	assert_true(is_zeroed(&cfg));
	config_free(&cfg);
	free(error);
}

/* Same, for a value of one key in [section], which sits on line 2. */
static void value_fails(const char *section, const char *key,
			const char *value, const char *why)
{
	char *text = xasprintf("[%s]\n%s = %s\n" HOST, section, key, value);
	char *want = xasprintf("<string>:2: %s: %s", key, why);

	load_fails(text, want);
	free(text);
	free(want);
}

static void assert_defaults(const struct config *cfg)
{
	assert_string_equal(cfg->data_dir, "/var/lib/roost");
	assert_string_equal(cfg->log_level, "info");
	assert_string_equal(cfg->seal_key_file, "/var/lib/roost/seal.key");
	assert_int_equal(cfg->workers, 2);
	assert_int_equal(cfg->shutdown_timeout, 5);
	assert_int_equal(cfg->nlisten, 1);
	assert_string_equal(cfg->listen[0], "127.0.0.1:5222");
	assert_null(cfg->listen[1]);
	assert_int_equal(cfg->ntls_listen, 1);
	assert_string_equal(cfg->tls_listen[0], "127.0.0.1:5223");
	assert_true(cfg->require_tls);
	assert_true(cfg->allow_plain);
	assert_int_equal(cfg->keepalive, 60);
	assert_int_equal(cfg->scram_iterations, 4096);
	assert_int_equal(cfg->max_stanza_size, 262144);
	assert_int_equal(cfg->max_depth, 64);
	assert_int_equal(cfg->max_attrs, 64);
	assert_int_equal(cfg->auth_timeout, 60);
	assert_int_equal(cfg->max_connections, 100000);
	assert_int_equal(cfg->max_outq, 1048576);
	assert_int_equal(cfg->auth_failure_delay_ms, 250);
	assert_int_equal(cfg->auth_failure_max_delay_ms, 8000);
}

static void assert_config_equal(const struct config *a, const struct config *b)
{
	assert_string_equal(a->data_dir, b->data_dir);
	assert_string_equal(a->log_level, b->log_level);
	assert_string_equal(a->seal_key_file, b->seal_key_file);
	assert_int_equal(a->workers, b->workers);
	assert_int_equal(a->shutdown_timeout, b->shutdown_timeout);
	assert_int_equal(a->nlisten, b->nlisten);
	for (size_t i = 0; i < a->nlisten; i++)
		assert_string_equal(a->listen[i], b->listen[i]);
	assert_int_equal(a->ntls_listen, b->ntls_listen);
	for (size_t i = 0; i < a->ntls_listen; i++)
		assert_string_equal(a->tls_listen[i], b->tls_listen[i]);
	assert_int_equal(a->require_tls, b->require_tls);
	assert_int_equal(a->allow_plain, b->allow_plain);
	assert_int_equal(a->keepalive, b->keepalive);
	assert_int_equal(a->scram_iterations, b->scram_iterations);
	assert_int_equal(a->max_stanza_size, b->max_stanza_size);
	assert_int_equal(a->max_depth, b->max_depth);
	assert_int_equal(a->max_attrs, b->max_attrs);
	assert_int_equal(a->auth_timeout, b->auth_timeout);
	assert_int_equal(a->max_connections, b->max_connections);
	assert_int_equal(a->max_outq, b->max_outq);
	assert_int_equal(a->auth_failure_delay_ms, b->auth_failure_delay_ms);
	assert_int_equal(a->auth_failure_max_delay_ms,
			 b->auth_failure_max_delay_ms);
	assert_int_equal(a->nvhosts, b->nvhosts);
	for (size_t i = 0; i < a->nvhosts; i++) {
		assert_string_equal(a->vhosts[i].domain, b->vhosts[i].domain);
		assert_string_equal(a->vhosts[i].certificate,
				    b->vhosts[i].certificate);
		assert_string_equal(a->vhosts[i].key, b->vhosts[i].key);
	}
}

static char *dump(const struct config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	config_dump(f, cfg);
	assert_int_equal(fclose(f), 0);
	return text;
}

static char *write_temp(const char *text)
{
	char *path = xstrdup("/tmp/roost-test-config-XXXXXX");
	int fd = mkstemp(path);
	size_t len = strlen(text);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
	struct config cfg;

	config_defaults(&cfg);
	assert_defaults(&cfg);
	assert_int_equal(cfg.nvhosts, 0);
	assert_null(cfg.vhosts);
	config_free(&cfg);
	assert_true(is_zeroed(&cfg));
	config_free(&cfg); /* harmless twice */
	config_free(NULL);
}

static void test_minimal(void **state)
{
	struct config cfg;

	load_ok(HOST, &cfg);
	assert_defaults(&cfg);
	assert_int_equal(cfg.nvhosts, 1);
	assert_string_equal(cfg.vhosts[0].domain, "localhost");
	assert_string_equal(cfg.vhosts[0].certificate,
			    "/var/lib/roost/certs/localhost.crt");
	assert_string_equal(cfg.vhosts[0].key,
			    "/var/lib/roost/certs/localhost.key");
	assert_ptr_equal(config_vhost(&cfg, "localhost"), &cfg.vhosts[0]);
	assert_null(config_vhost(&cfg, "example.org"));
	config_free(&cfg);
}

/* ---- every key and type ---- */

static const char full[] =
	"; a comment\n"
	"# another\n"
	"[server]\n"
	"data_dir = /srv/roost\n"
	"log_level = debug\n"
	"seal_key_file = /run/credentials/roostd/seal.key\n"
	"workers = 8\n"
	"shutdown_timeout = 0\n"
	"\n"
	"[c2s]\n"
	"listen = 0.0.0.0:5222, [::]:5222\n"
	"tls_listen = [2001:db8::1]:5223\n"
	"require_tls = no\n"
	"allow_plain = off\n"
	"keepalive = 0\n"
	"scram_iterations = 1000000\n"
	"[limits]\n"
	"max_stanza_size = 64K\n"
	"max_depth = 4\n"
	"max_attrs = 1000\n"
	"auth_timeout = 3600\n"
	"max_connections = 1\n"
	"max_outq = 2 MiB\n"
	"auth_failure_delay_ms = 0\n"
	"auth_failure_max_delay_ms = 600000\n"
	"[host example.org]\n"
	"certificate = /etc/ssl/example.org.pem\n"
	"key = /etc/ssl/private/example.org.key\n"
	"[host LocalHost]\n";

static void test_every_key(void **state)
{
	struct config cfg;

	load_ok(full, &cfg);
	assert_string_equal(cfg.data_dir, "/srv/roost");
	assert_string_equal(cfg.log_level, "debug");
	assert_string_equal(cfg.seal_key_file,
			    "/run/credentials/roostd/seal.key");
	assert_int_equal(cfg.workers, 8);
	assert_int_equal(cfg.shutdown_timeout, 0);
	assert_int_equal(cfg.nlisten, 2);
	assert_string_equal(cfg.listen[0], "0.0.0.0:5222");
	assert_string_equal(cfg.listen[1], "[::]:5222");
	assert_int_equal(cfg.ntls_listen, 1);
	assert_string_equal(cfg.tls_listen[0], "[2001:db8::1]:5223");
	assert_false(cfg.require_tls);
	assert_false(cfg.allow_plain);
	assert_int_equal(cfg.keepalive, 0);
	assert_int_equal(cfg.scram_iterations, 1000000);
	assert_int_equal(cfg.max_stanza_size, 65536);
	assert_int_equal(cfg.max_depth, 4);
	assert_int_equal(cfg.max_attrs, 1000);
	assert_int_equal(cfg.auth_timeout, 3600);
	assert_int_equal(cfg.max_connections, 1);
	assert_int_equal(cfg.max_outq, 2 * 1048576);
	assert_int_equal(cfg.auth_failure_delay_ms, 0);
	assert_int_equal(cfg.auth_failure_max_delay_ms, 600000);
	assert_int_equal(cfg.nvhosts, 2);
	assert_string_equal(cfg.vhosts[0].domain, "example.org");
	assert_string_equal(cfg.vhosts[0].certificate, "/etc/ssl/example.org.pem");
	assert_string_equal(cfg.vhosts[0].key, "/etc/ssl/private/example.org.key");
	/* Normalised, and its defaults follow the data_dir set above. */
	assert_string_equal(cfg.vhosts[1].domain, "localhost");
	assert_string_equal(cfg.vhosts[1].certificate,
			    "/srv/roost/certs/localhost.crt");
	assert_string_equal(cfg.vhosts[1].key, "/srv/roost/certs/localhost.key");
	assert_non_null(config_vhost(&cfg, "example.org"));
	config_free(&cfg);
	assert_true(is_zeroed(&cfg));
}

static void test_bool(void **state)
{
	static const struct {
		const char *text;
		bool value;
	} ok[] = {
		{ "true", true }, { "false", false }, { "yes", true },
		{ "no", false }, { "on", true }, { "off", false },
		{ "1", true }, { "0", false }, { "TRUE", true }, { "Off", false },
	};
	static const char *const bad[] = { "maybe", "2", "tru", "yes please",
					   "y", "01" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct config cfg;
		char *text = xasprintf("[c2s]\nallow_plain = %s\n" HOST,
				       ok[i].text);
		load_ok(text, &cfg);
		assert_int_equal(cfg.allow_plain, ok[i].value);
		config_free(&cfg);
		free(text);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *why = xasprintf("'%s' is not a boolean (true/false, "
				      "yes/no, on/off, 1/0)", bad[i]);
		value_fails("c2s", "require_tls", bad[i], why);
		free(why);
	}
	value_fails("c2s", "require_tls", "",
		    "'' is not a boolean (true/false, yes/no, on/off, 1/0)");
}

static void test_uint(void **state)
{
	struct config cfg;

	load_ok("[server]\nworkers = 64\n" HOST, &cfg);
	assert_int_equal(cfg.workers, 64);
	config_free(&cfg);
	load_ok("[server]\nworkers = 001\n" HOST, &cfg);
	assert_int_equal(cfg.workers, 1);
	config_free(&cfg);

	value_fails("server", "workers", "0", "0 is out of range (1..64)");
	value_fails("server", "workers", "65", "65 is out of range (1..64)");
	value_fails("c2s", "scram_iterations", "4095",
		    "4095 is out of range (4096..1000000)");
	value_fails("c2s", "scram_iterations", "1000001",
		    "1000001 is out of range (4096..1000000)");
	value_fails("limits", "max_depth", "3", "3 is out of range (4..1000)");
	value_fails("limits", "auth_timeout", "0",
		    "0 is out of range (1..3600)");
	/* Larger than unsigned long long: out of range, not wrapped. */
	value_fails("server", "workers", "99999999999999999999999",
		    "99999999999999999999999 is out of range (1..64)");
	value_fails("server", "workers", "4294967298",
		    "4294967298 is out of range (1..64)");
	/* Trailing garbage and other spellings strtoul would take. */
	value_fails("server", "workers", "4x", "'4x' is not a whole number");
	value_fails("server", "workers", "4 4", "'4 4' is not a whole number");
	value_fails("server", "workers", "-1", "'-1' is not a whole number");
	value_fails("server", "workers", "+4", "'+4' is not a whole number");
	value_fails("server", "workers", "0x4", "'0x4' is not a whole number");
	value_fails("server", "workers", "4.0", "'4.0' is not a whole number");
	value_fails("server", "workers", "", "'' is not a whole number");
	value_fails("server", "workers", "four", "'four' is not a whole number");
}

static void test_size(void **state)
{
	static const struct {
		const char *text;
		size_t value;
	} ok[] = {
		{ "1024", 1024 }, { "1K", 1024 }, { "1KiB", 1024 },
		{ "3 K", 3072 }, { "300 KiB", 307200 }, { "1M", 1048576 },
		{ "16 MiB", 16777216 }, { "16777216", 16777216 },
		{ "2000", 2000 },
	};
	static const char *const bad[] = { "1.5M", "1 kb", "1k", "1 KB",
					   "1 MB", "1G", "M", "1 M i B",
					   "1MiBx", "-1K", "K1" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct config cfg;
		char *text = xasprintf("[limits]\nmax_stanza_size = %s\n"
				       "max_outq = 16M\n" HOST, ok[i].text);
		load_ok(text, &cfg);
		assert_int_equal(cfg.max_stanza_size, ok[i].value);
		config_free(&cfg);
		free(text);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *why = xasprintf("'%s' is not a size (bytes, or a number "
				      "with K, KiB, M or MiB)", bad[i]);
		value_fails("limits", "max_stanza_size", bad[i], why);
		free(why);
	}
	value_fails("limits", "max_stanza_size", "1023",
		    "1023 is out of range (1 KiB..16 MiB)");
	value_fails("limits", "max_stanza_size", "17M",
		    "17M is out of range (1 KiB..16 MiB)");
	value_fails("limits", "max_stanza_size", "16777217",
		    "16777217 is out of range (1 KiB..16 MiB)");
	value_fails("limits", "max_stanza_size", "18446744073709551615 MiB",
		    "18446744073709551615 MiB is out of range (1 KiB..16 MiB)");
	value_fails("limits", "max_outq", "63K",
		    "63K is out of range (64 KiB..1024 MiB)");
}

static void test_strings(void **state)
{
	struct config cfg;

	load_ok("[server]\nlog_level = warn\ndata_dir = /a b/c;d#e\n" HOST, &cfg);
	assert_string_equal(cfg.log_level, "warn");
	assert_string_equal(cfg.data_dir, "/a b/c;d#e");
	config_free(&cfg);
	value_fails("server", "log_level", "verbose",
		    "'verbose' must be error, warn, info or debug");
	value_fails("server", "log_level", "INFO",
		    "'INFO' must be error, warn, info or debug");
	value_fails("server", "data_dir", "", "must not be empty");
	value_fails("server", "seal_key_file", "", "must not be empty");
}

/* ---- listen lists ---- */

static void test_listen(void **state)
{
	struct config cfg;

	load_ok("[c2s]\nlisten = 192.0.2.1:1,[::1]:65535 ,  10.0.0.1:5222\n"
		"tls_listen = [2001:DB8:0:0::0001]:05223\n" HOST, &cfg);
	assert_int_equal(cfg.nlisten, 3);
	assert_string_equal(cfg.listen[0], "192.0.2.1:1");
	assert_string_equal(cfg.listen[1], "[::1]:65535");
	assert_string_equal(cfg.listen[2], "10.0.0.1:5222");
	assert_null(cfg.listen[3]);
	assert_int_equal(cfg.ntls_listen, 1);
	/* Canonical form, so that duplicates are seen however spelt. */
	assert_string_equal(cfg.tls_listen[0], "[2001:db8::1]:5223");
	config_free(&cfg);

	/* Exactly CONFIG_MAX_LISTEN. */
	load_ok("[c2s]\nlisten = 10.0.0.1:1, 10.0.0.1:2, 10.0.0.1:3, "
		"10.0.0.1:4, 10.0.0.1:5, 10.0.0.1:6, 10.0.0.1:7, 10.0.0.1:8\n"
		HOST, &cfg);
	assert_int_equal(cfg.nlisten, CONFIG_MAX_LISTEN);
	config_free(&cfg);

	/* One list may be empty: TLS-only or STARTTLS-only servers. */
	load_ok("[c2s]\nlisten =\n" HOST, &cfg);
	assert_int_equal(cfg.nlisten, 0);
	assert_null(cfg.listen[0]);
	assert_int_equal(cfg.ntls_listen, 1);
	config_free(&cfg);

	value_fails("c2s", "listen", "127.0.0.1:0",
		    "'127.0.0.1:0': the port must be 1..65535");
	value_fails("c2s", "listen", "127.0.0.1:65536",
		    "'127.0.0.1:65536': the port must be 1..65535");
	value_fails("c2s", "listen", "127.0.0.1:",
		    "'127.0.0.1:': the port must be 1..65535");
	value_fails("c2s", "listen", "127.0.0.1:52x",
		    "'127.0.0.1:52x': the port must be 1..65535");
	value_fails("c2s", "listen", "[::1]:-1",
		    "'[::1]:-1': the port must be 1..65535");
	value_fails("c2s", "listen", "127.0.0.1",
		    "'127.0.0.1' has no port (address:port)");
	value_fails("c2s", "listen", "::1:5222",
		    "'::1:5222': an IPv6 address goes in brackets, "
		    "e.g. [::1]:5222");
	value_fails("c2s", "listen", "[::1]5222",
		    "'[::1]5222' is not [IPv6 address]:port");
	value_fails("c2s", "listen", "[::1:5222",
		    "'[::1:5222' is not [IPv6 address]:port");
	value_fails("c2s", "listen", "[127.0.0.1]:5222",
		    "'[127.0.0.1]:5222': '127.0.0.1' is not an IPv6 address");
	value_fails("c2s", "listen", "localhost:5222",
		    "'localhost:5222': 'localhost' is not an IPv4 address");
	value_fails("c2s", "listen", "256.0.0.1:5222",
		    "'256.0.0.1:5222': '256.0.0.1' is not an IPv4 address");
	value_fails("c2s", "listen", ":5222",
		    "':5222': '' is not an IPv4 address");
	value_fails("c2s", "listen", "127.0.0.1:5222,",
		    "empty address in the list");
	value_fails("c2s", "listen", "127.0.0.1:5222,,127.0.0.1:5224",
		    "empty address in the list");
	value_fails("c2s", "listen", "127.0.0.1:5222, 127.0.0.1:5222",
		    "127.0.0.1:5222 is listed twice");
	value_fails("c2s", "listen", "[::1]:5222, [0::1]:5222",
		    "[::1]:5222 is listed twice");
	value_fails("c2s", "listen", "10.0.0.1:1, 10.0.0.1:2, 10.0.0.1:3, "
		    "10.0.0.1:4, 10.0.0.1:5, 10.0.0.1:6, 10.0.0.1:7, "
		    "10.0.0.1:8, 10.0.0.1:9", "at most 8 addresses");

	load_fails("[c2s]\nlisten =\ntls_listen =\n" HOST,
		   "<string>:3: listen and tls_listen are both empty");
	load_fails("[c2s]\ntls_listen = 127.0.0.1:5222\n" HOST,
		   "<string>:2: 127.0.0.1:5222 is in both listen and tls_listen");
}

/* ---- structure errors ---- */

static void test_unknown(void **state)
{
	load_fails("[server]\nworkers = 2\nwrkers = 3\n" HOST,
		   "<string>:3: unknown key 'wrkers' in [server]");
	/* A key of another section. */
	load_fails("\n[c2s]\n\nworkers = 2\n" HOST,
		   "<string>:4: unknown key 'workers' in [c2s]");
	load_fails(HOST "certificate = /a\nkeyfile = /b\n",
		   "<string>:3: unknown key 'keyfile' in [host localhost]");
	load_fails("[server]\n[sever]\nworkers = 2\n" HOST,
		   "<string>:2: unknown section [sever]");
	/* Even an empty one: inih alone would not report it. */
	load_fails(HOST "[limit]\n",
		   "<string>:2: unknown section [limit]");
	load_fails("workers = 2\n" HOST,
		   "<string>:1: 'workers' comes before any [section]");
	load_fails(HOST "[server\n",
		   "<string>:2: missing ']' in section header");
	load_fails(HOST "[server] workers = 2\n",
		   "<string>:2: unexpected 'workers = 2' after ']'");
	load_fails(HOST "[server]\nworkers\n",
		   "<string>:3: expected 'key = value'");
	/* A key set twice, also across two [server] sections. */
	load_fails("[server]\nworkers = 2\n[c2s]\n[server]\nworkers = 3\n" HOST,
		   "<string>:5: workers is set twice (first on line 2)");
	load_fails(HOST "key = /a\nkey = /b\n",
		   "<string>:3: key is set twice (first on line 2)");
	/* The first error is the one reported. */
	load_fails("[server]\nworkers = 0\nfoo = 1\n[bar]\n",
		   "<string>:2: workers: 0 is out of range (1..64)");
}

static void test_sections_with_comments(void **state)
{
	struct config cfg;

	load_ok("[ server ] ; the server\n[server]# again\n"
		"[host example.org] ; main\n", &cfg);
	assert_int_equal(cfg.nvhosts, 1);
	assert_string_equal(cfg.vhosts[0].domain, "example.org");
	config_free(&cfg);
}

/* ---- hosts ---- */

static void test_hosts(void **state)
{
	struct config cfg;

	load_fails("", "<string>: no [host <domain>] section: "
		       "there is no domain to serve");
	load_fails("[server]\nworkers = 3\n", "<string>: no [host <domain>] "
		   "section: there is no domain to serve");
	load_fails(HOST "[c2s]\n" HOST,
		   "<string>:3: [host localhost] is defined twice "
		   "(first on line 1)");
	/* Duplicates are found after normalisation. */
	load_fails("[host example.org]\n[host EXAMPLE.org]\n",
		   "<string>:2: [host example.org] is defined twice "
		   "(first on line 1)");
	load_fails("[host]\n",
		   "<string>:1: [host] needs a domain, e.g. [host example.org]");
	load_fails("[host   ]\n",
		   "<string>:1: [host] needs a domain, e.g. [host example.org]");
	load_fails("[host exa mple.org]\n",
		   "<string>:1: [host exa mple.org]: not a valid domain");
	load_fails("[host a@b]\n",
		   "<string>:1: [host a@b]: not a valid domain");
	/* "hostname" is not "host name". */
	load_fails("[hostname]\n", "<string>:1: unknown section [hostname]");

	load_ok("[host LocalHost]\n[host\tExample.ORG ]\n", &cfg);
	assert_int_equal(cfg.nvhosts, 2);
	assert_string_equal(cfg.vhosts[0].domain, "localhost");
	assert_string_equal(cfg.vhosts[1].domain, "example.org");
	assert_string_equal(cfg.vhosts[1].certificate,
			    "/var/lib/roost/certs/example.org.crt");
	assert_ptr_equal(config_vhost(&cfg, "example.org"), &cfg.vhosts[1]);
	config_free(&cfg);

	/* Many hosts: the array grows. */
	{
		struct config big;
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		for (int i = 0; i < 100; i++)
			fprintf(f, "[host h%d.example]\nkey = /k%d\n", i, i);
		fclose(f);
		load_ok(text, &big);
		assert_int_equal(big.nvhosts, 100);
		assert_string_equal(big.vhosts[99].domain, "h99.example");
		assert_string_equal(big.vhosts[99].key, "/k99");
		assert_string_equal(big.vhosts[99].certificate,
				    "/var/lib/roost/certs/h99.example.crt");
		config_free(&big);
		free(text);
	}
}

/* ---- derived defaults and cross-key checks ---- */

static void test_derived(void **state)
{
	struct config cfg;

	/* data_dir after the host section still counts. */
	load_ok("[host example.org]\ncertificate = /etc/ssl/ex.pem\n"
		"[server]\ndata_dir = /srv/roost/\n", &cfg);
	assert_string_equal(cfg.seal_key_file, "/srv/roost/seal.key");
	assert_string_equal(cfg.vhosts[0].certificate, "/etc/ssl/ex.pem");
	assert_string_equal(cfg.vhosts[0].key,
			    "/srv/roost/certs/example.org.key");
	config_free(&cfg);

	load_ok("[server]\ndata_dir = /\n" HOST, &cfg);
	assert_string_equal(cfg.seal_key_file, "/seal.key");
	assert_string_equal(cfg.vhosts[0].key, "/certs/localhost.key");
	config_free(&cfg);

	load_ok("[server]\nseal_key_file = /keys/seal\ndata_dir = /d\n" HOST,
		&cfg);
	assert_string_equal(cfg.seal_key_file, "/keys/seal");
	config_free(&cfg);
}

static void test_cross_checks(void **state)
{
	struct config cfg;

	load_fails("[limits]\nauth_failure_delay_ms = 9000\n" HOST,
		   "<string>:2: auth_failure_max_delay_ms (8000) is below "
		   "auth_failure_delay_ms (9000)");
	load_fails("[limits]\nauth_failure_max_delay_ms = 100\n"
		   "auth_failure_delay_ms = 10\n\nauth_failure_delay_ms_x = 1\n",
		   "<string>:5: unknown key 'auth_failure_delay_ms_x' in [limits]");
	load_fails("[limits]\nmax_stanza_size = 2M\n" HOST,
		   "<string>:2: max_outq (1048576) is below "
		   "max_stanza_size (2097152)");
	load_ok("[limits]\nmax_stanza_size = 2M\nmax_outq = 2M\n"
		"auth_failure_delay_ms = 100\nauth_failure_max_delay_ms = 100\n"
		HOST, &cfg);
	config_free(&cfg);
}

/* ---- lexical details of the file format ---- */

static void test_syntax(void **state)
{
	struct config cfg;
	char *long_line, *text;

	/* Indentation is ignored; it never continues the previous value,
	 * as inih's multi-line mode would. Inline comments need " ;". */
	load_ok("[server]\n  workers = 3 ; three\n\tshutdown_timeout=7\n"
		"   ; indented comment\n[c2s]\nlisten : 127.0.0.1:1\n"
		"  [limits]\nmax_depth = 5 ;\n" HOST, &cfg);
	assert_int_equal(cfg.workers, 3);
	assert_int_equal(cfg.shutdown_timeout, 7);
	assert_string_equal(cfg.listen[0], "127.0.0.1:1");
	assert_int_equal(cfg.max_depth, 5);
	config_free(&cfg);
	load_fails("[limits]\nmax_depth = 5;\n" HOST,
		   "<string>:2: max_depth: '5;' is not a whole number");
	load_fails("[server]\nworkers = 3 # three\n" HOST,
		   "<string>:2: workers: '3 # three' is not a whole number");

	/* CRLF line endings and a UTF-8 byte order mark. */
	load_ok("\xEF\xBB\xBF[server]\r\nworkers = 9\r\n\r\n[host localhost]\r\n",
		&cfg);
	assert_int_equal(cfg.workers, 9);
	assert_string_equal(cfg.vhosts[0].domain, "localhost");
	config_free(&cfg);
	/* No newline at the end. */
	load_ok("[server]\nworkers = 9\n[host localhost]", &cfg);
	config_free(&cfg);

	/* A line inih would silently cut in two is refused; a long comment
	 * is fine. */
	long_line = xmalloc(301);
	memset(long_line, 'x', 300);
	long_line[300] = '\0';
	text = xasprintf("[server]\n#%s\ndata_dir = /%s\n" HOST, long_line,
			 long_line);
	load_fails(text, "<string>:3: line longer than 199 bytes");
	free(text);
	/* "data_dir = /" and 187 more: 199 bytes, the most there is room for
	 * (the paths derived from it are set, or they would not fit). */
	long_line[187] = '\0';
	text = xasprintf("[server]\ndata_dir = /%s\nseal_key_file = /k\n"
			 "[host localhost]\ncertificate = /c\nkey = /k\n",
			 long_line);
	load_ok(text, &cfg);
	assert_int_equal(strlen(cfg.data_dir), 188);
	config_free(&cfg);
	free(text);
	/* Derived, they would make lines `roostctl config` writes and
	 * config_load refuses. */
	text = xasprintf("[server]\ndata_dir = /%s\n" HOST, long_line);
	load_fails(text, "<string>:2: seal_key_file would be a 213-byte line in "
		   "the effective configuration, over the limit of 199 (shorten "
		   "data_dir or the domain, or set it)");
	free(text);
	free(long_line);
}

/* ---- files ---- */

static void test_file(void **state)
{
	struct config cfg;
	char *path, *error = NULL, *want;

	path = write_temp("[server]\nworkers = 5\n" HOST);
	assert_int_equal(config_load(path, &cfg, &error), 0);
	assert_int_equal(cfg.workers, 5);
	config_free(&cfg);
	unlink(path);
	free(path);

	path = write_temp("[server]\n\nworkers = 500\n" HOST);
	assert_int_equal(config_load(path, &cfg, &error), -1);
	want = xasprintf("%s:3: workers: 500 is out of range (1..64)", path);
	assert_string_equal(error, want);
	assert_true(is_zeroed(&cfg));
	free(want);
	free(error);
	error = NULL;

	/* A NUL byte cannot be in a value: refuse the line. */
	{
		FILE *f = fopen(path, "w");
		fwrite("[server]\nworkers = 5\0 junk\n" HOST, 1,
		       sizeof("[server]\nworkers = 5\0 junk\n" HOST) - 1, f);
		fclose(f);
	}
	assert_int_equal(config_load(path, &cfg, &error), -1);
	want = xasprintf("%s:2: NUL byte in line", path);
	assert_string_equal(error, want);
	free(want);
	free(error);
	error = NULL;
	unlink(path);

	assert_int_equal(config_load(path, &cfg, &error), -1);
	want = xasprintf("%s: No such file or directory", path);
	assert_string_equal(error, want);
	assert_true(is_zeroed(&cfg));
	config_free(&cfg);
	free(want);
	free(error);
	free(path);
}

/* ---- dump ---- */

static void round_trip(const char *text)
{
	struct config a, b;
	char *d1, *d2;

	load_ok(text, &a);
	d1 = dump(&a);
	load_ok(d1, &b);
	assert_config_equal(&a, &b);
	d2 = dump(&b);
	assert_string_equal(d1, d2);
	config_free(&a);
	config_free(&b);
	free(d1);
	free(d2);
}

static void test_dump_round_trip(void **state)
{
	round_trip(full);
	round_trip(HOST);
	round_trip("[c2s]\nlisten =\n[limits]\nmax_stanza_size = 1025\n"
		   "max_outq = 100000\n" HOST);
	round_trip("[c2s]\ntls_listen =\n[limits]\nmax_outq = 1024 MiB\n" HOST);
}

static void test_dump_format(void **state)
{
	struct config cfg;
	char *text;

	load_ok("[limits]\nmax_stanza_size = 1536\nmax_outq = 2048K\n"
		"[c2s]\nlisten = [::1]:1, 127.0.0.1:2\n" HOST, &cfg);
	text = dump(&cfg);
	assert_non_null(strstr(text, "\n[server]\ndata_dir = /var/lib/roost\n"));
	assert_non_null(strstr(text, "\nmax_stanza_size = 1536\n"));
	assert_non_null(strstr(text, "\nmax_outq = 2 MiB\n"));
	assert_non_null(strstr(text, "\nlisten = [::1]:1, 127.0.0.1:2\n"));
	assert_non_null(strstr(text, "\nrequire_tls = true\n"));
	assert_non_null(strstr(text, "\n[host localhost]\ncertificate = "
				     "/var/lib/roost/certs/localhost.crt\n"));
	free(text);
	config_free(&cfg);

	/* Defaults alone dump too (without a host, so not loadable). */
	config_defaults(&cfg);
	text = dump(&cfg);
	assert_non_null(strstr(text, "seal_key_file = /var/lib/roost/seal.key\n"));
	assert_null(strstr(text, "[host"));
	free(text);
	config_free(&cfg);
}

/* ---- the shipped example ---- */

static char *find_example(void)
{
	static const char *const candidates[] = {
		"etc/roost.conf.example",
		"../etc/roost.conf.example",
		"../../etc/roost.conf.example",
		"../../../etc/roost.conf.example",
	};
	char *dir = xstrdup(__FILE__), *slash = strrchr(dir, '/');
	char *path;

	/* Meson compiles with the source path relative to the build
	 * directory; also try the repository layout from the cwd. */
	if (slash != NULL) {
		*slash = '\0';
		path = xasprintf("%s/../../etc/roost.conf.example", dir);
		free(dir);
		if (access(path, R_OK) == 0)
			return path;
		free(path);
	} else {
		free(dir);
	}
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
		if (access(candidates[i], R_OK) == 0)
			return xstrdup(candidates[i]);
	return NULL;
}

static void test_example(void **state)
{
	struct config cfg, defaults;
	char *path = find_example(), *error = NULL, *text, *dumped, *line;
	FILE *f;
	size_t len = 0;

	if (path == NULL) {
		print_message("etc/roost.conf.example not found from here\n");
		skip();
	}
	if (config_load(path, &cfg, &error) != 0)
		fail_msg("%s", error);
	/* The example's values are the defaults... */
	config_defaults(&defaults);
	defaults.vhosts = cfg.vhosts;
	defaults.nvhosts = cfg.nvhosts;
	assert_config_equal(&cfg, &defaults);
	defaults.vhosts = NULL;
	defaults.nvhosts = 0;
	config_free(&defaults);
	assert_int_equal(cfg.nvhosts, 1);
	assert_string_equal(cfg.vhosts[0].domain, "localhost");

	/* ...and it names every key the dump writes, set or commented. */
	f = fopen(path, "r");
	assert_non_null(f);
	text = NULL;
	assert_true(getdelim(&text, &len, '\0', f) > 0);
	fclose(f);
	dumped = dump(&cfg);
	for (line = strtok(dumped, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		char *eq = strstr(line, " = ");
		char *set, *commented;
		if (eq == NULL)
			continue;
		*eq = '\0';
		set = xasprintf("\n%s = ", line);
		commented = xasprintf("\n#%s = ", line);
		if (strstr(text, set) == NULL && strstr(text, commented) == NULL)
			fail_msg("%s does not document '%s'", path, line);
		free(set);
		free(commented);
	}
	free(dumped);
	free(text);
	config_free(&cfg);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_sections_with_comments),
		cmocka_unit_test(test_hosts),
		cmocka_unit_test(test_derived),
		cmocka_unit_test(test_cross_checks),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_dump_round_trip),
		cmocka_unit_test(test_dump_format),
		cmocka_unit_test(test_example),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

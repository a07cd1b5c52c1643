/* Configuration: the table below drives defaults, parsing, validation and
 * dumping (STYLE rule 10), the way nginx's command arrays and Redis's
 * standardConfig do. Adding a key means adding a field to struct config
 * and one line here.
 *
 * inih splits "key = value" and strips comments. Everything else about
 * lines is done by our own line reader (parse_read_line), because Debian's
 * inih 55 (built with its defaults) would otherwise:
 * - call the handler only for keys, so an empty [host example.org] would
 *   silently serve nothing and a misspelled empty section would pass;
 * - treat an indented line as the continuation of the previous value
 *   (INI_ALLOW_MULTILINE), turning "  workers = 4" into part of another key;
 * - cut lines longer than its 200-byte buffer in two and parse the tail as
 *   a line of its own.
 * So the reader tracks sections and line numbers, strips indentation and
 * refuses over-long lines; inih sees only blank lines and key = value
 * lines. Inline comments start with " ;" (inih's rule); "#" and ";" start a
 * comment only at the beginning of a line. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "core/jid.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xalloc.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define KIB 1024ULL
#define MIB (1024ULL * 1024ULL)

enum config_type {
	CT_STRING, /* non-empty, taken verbatim */
	CT_BOOL,   /* true/false, yes/no, on/off, 1/0 */
	CT_UINT,   /* unsigned, decimal digits only */
	CT_SIZE,   /* size_t bytes, with an optional K, KiB, M or MiB */
	CT_LISTEN, /* comma-separated "a.b.c.d:port" / "[v6]:port" */
};

struct config_entry {
	const char *section; /* "host" for the keys of [host <domain>] */
	const char *key;
	enum config_type type;
	unsigned long long min, max; /* CT_UINT, CT_SIZE */
	/* The default, written as in the file and parsed like a value from
	 * it, so a default can never escape validation. A derived default is
	 * a template: "{data_dir}" and "{domain}" are filled in after the
	 * whole file is read, so key order does not matter. */
	const char *def;
	bool derived;
	/* Into struct config, or struct config_vhost for host keys. */
	size_t offset;
	size_t count_offset; /* CT_LISTEN: the size_t holding the count */
	/* Extra validation for CT_STRING; sets a static reason. */
	int (*check)(const char *value, const char **why_r);
};

static int check_log_level(const char *value, const char **why_r);
static int check_offline_mode(const char *value, const char **why_r);
static int check_mam_default(const char *value, const char **why_r);

#define OFF(f) offsetof(struct config, f)
#define VOFF(f) offsetof(struct config_vhost, f)

#define E_STRING(sec, name, dflt, chk) \
	{ .section = sec, .key = #name, .type = CT_STRING, .def = dflt, \
	  .offset = OFF(name), .check = chk }
#define E_DERIVED(sec, name, tmpl) \
	{ .section = sec, .key = #name, .type = CT_STRING, .def = tmpl, \
	  .derived = true, .offset = OFF(name) }
#define E_BOOL(sec, name, dflt) \
	{ .section = sec, .key = #name, .type = CT_BOOL, .def = dflt, \
	  .offset = OFF(name) }
#define E_UINT(sec, name, lo, hi, dflt) \
	{ .section = sec, .key = #name, .type = CT_UINT, .min = lo, .max = hi, \
	  .def = dflt, .offset = OFF(name) }
#define E_SIZE(sec, name, lo, hi, dflt) \
	{ .section = sec, .key = #name, .type = CT_SIZE, .min = lo, .max = hi, \
	  .def = dflt, .offset = OFF(name) }
#define E_LISTEN(sec, name, dflt) \
	{ .section = sec, .key = #name, .type = CT_LISTEN, .def = dflt, \
	  .offset = OFF(name), .count_offset = OFF(n##name) }
#define E_HOST_DERIVED(name, tmpl) \
	{ .section = "host", .key = #name, .type = CT_STRING, .def = tmpl, \
	  .derived = true, .offset = VOFF(name) }

/* Grouped by section, in the order config_dump writes them. Keep
 * etc/roost.conf.example in step (test_config checks that it names every
 * key and that its values are these defaults). */
static const struct config_entry entries[] = {
	E_STRING("server", data_dir, "/var/lib/roost", NULL),
	E_STRING("server", log_level, "info", check_log_level),
	E_DERIVED("server", seal_key_file, "{data_dir}/seal.key"),
	E_UINT("server", workers, 1, 64, "2"),
	E_UINT("server", shutdown_timeout, 0, 3600, "5"),
	E_STRING("server", user, "roost", NULL),
	E_BOOL("server", allow_root, "false"),

	E_LISTEN("c2s", listen, "127.0.0.1:5222"),
	E_LISTEN("c2s", tls_listen, "127.0.0.1:5223"),
	E_BOOL("c2s", require_tls, "true"),
	E_BOOL("c2s", allow_plain, "true"),
	E_UINT("c2s", keepalive, 0, 86400, "60"),
	E_UINT("c2s", resume_timeout, 0, 86400, "300"),
	E_UINT("c2s", sm_max_queue, 16, 1000000, "10000"),
	E_SIZE("c2s", sm_max_queue_bytes, 64 * KIB, 1024 * MIB, "4 MiB"),
	E_BOOL("c2s", tls_compact, "true"),
	E_UINT("c2s", scram_iterations, 4096, 1000000, "4096"),

	E_SIZE("limits", max_stanza_size, 1 * KIB, 16 * MIB, "256 KiB"),
	E_UINT("limits", max_depth, 4, 1000, "64"),
	E_UINT("limits", max_attrs, 4, 1000, "64"),
	E_UINT("limits", auth_timeout, 1, 3600, "60"),
	E_UINT("limits", max_connections, 1, 10000000, "100000"),
	E_SIZE("limits", max_outq, 64 * KIB, 1024 * MIB, "1 MiB"),
	E_UINT("limits", auth_failure_delay_ms, 0, 60000, "250"),
	E_UINT("limits", auth_failure_max_delay_ms, 0, 600000, "8000"),
	E_UINT("limits", auth_max_failures, 0, 1000000, "10"),
	E_UINT("limits", auth_failure_window, 1, 86400, "600"),
	E_SIZE("limits", read_rate, 0, 1024 * MIB, "64 KiB"),
	E_SIZE("limits", read_burst, 1 * KIB, 1024 * MIB, "256 KiB"),
	E_UINT("limits", max_connections_per_ip, 0, 10000000, "100"),
	E_UINT("limits", connection_rate, 0, 1000000, "5"),
	E_UINT("limits", connection_burst, 1, 1000000, "20"),
	E_UINT("limits", max_sessions_per_account, 1, 100000, "10"),

	E_STRING("offline", mode, "sealed", check_offline_mode),
	E_UINT("offline", max_messages, 0, 10000000, "1000"),
	E_SIZE("offline", max_bytes, 0, 1024 * MIB, "10 MiB"),
	E_UINT("offline", expiry, 0, 315360000, "7776000"),
	E_UINT("offline", batch, 1, 10000, "50"),
	{ .section = "offline", .key = "backlog_pause", .type = CT_UINT,
	  .min = 64, .max = 1048576, .def = "8192",
	  .offset = OFF(offline_backlog_pause) },

	/* [mam]: the keys are not C names ("default"), so spelled out. */
	{ .section = "mam", .key = "enabled", .type = CT_BOOL, .def = "true",
	  .offset = OFF(mam_enabled) },
	{ .section = "mam", .key = "default", .type = CT_STRING,
	  .def = "roster", .offset = OFF(mam_default),
	  .check = check_mam_default },
	{ .section = "mam", .key = "retention_days", .type = CT_UINT,
	  .min = 0, .max = 36500, .def = "365",
	  .offset = OFF(mam_retention_days) },
	{ .section = "mam", .key = "backlog_pause", .type = CT_UINT,
	  .min = 64, .max = 1048576, .def = "16384",
	  .offset = OFF(mam_backlog_pause) },

	{ .section = "pep", .key = "max_items", .type = CT_UINT, .min = 1,
	  .max = 100000, .def = "256", .offset = OFF(pep_max_items) },
	{ .section = "pep", .key = "max_nodes", .type = CT_UINT, .min = 1,
	  .max = 100000, .def = "256", .offset = OFF(pep_max_nodes) },
	{ .section = "pep", .key = "max_item_size", .type = CT_SIZE,
	  .min = 1 * KIB, .max = 16 * MIB, .def = "128 KiB",
	  .offset = OFF(pep_max_item_size) },

	{ .section = "register", .key = "enabled", .type = CT_BOOL,
	  .def = "false", .offset = OFF(register_enabled) },
	{ .section = "register", .key = "max_per_address", .type = CT_UINT,
	  .min = 0, .max = 1000000, .def = "3",
	  .offset = OFF(register_max_per_address) },
	{ .section = "register", .key = "window", .type = CT_UINT, .min = 1,
	  .max = 31536000, .def = "3600", .offset = OFF(register_window) },

	{ .section = "storage", .key = "vcard_max_size", .type = CT_SIZE,
	  .min = 1 * KIB, .max = 16 * MIB, .def = "128 KiB",
	  .offset = OFF(vcard_max_size) },
	{ .section = "storage", .key = "private_max_size", .type = CT_SIZE,
	  .min = 1 * KIB, .max = 64 * MIB, .def = "256 KiB",
	  .offset = OFF(private_max_size) },
	{ .section = "storage", .key = "blocklist_max_items", .type = CT_UINT,
	  .min = 1, .max = 1000000, .def = "1000",
	  .offset = OFF(blocklist_max_items) },
};

static const struct config_entry host_entries[] = {
	E_HOST_DERIVED(certificate, "{data_dir}/certs/{domain}.crt"),
	E_HOST_DERIVED(key, "{data_dir}/certs/{domain}.key"),
};

#define NENTRIES ARRAY_LEN(entries)
#define NHOST_ENTRIES ARRAY_LEN(host_entries)

enum parse_section { SEC_NONE, SEC_GLOBAL, SEC_HOST };

/* Where each key was set (0 = not set): for duplicate-key errors, for the
 * line of cross-key errors and to know which derived defaults to fill. */
struct host_lines {
	unsigned section;
	unsigned key[NHOST_ENTRIES];
};

struct parse {
	struct config *cfg;
	const char *path; /* for messages */

	/* Input: a file or a string. */
	FILE *file;
	const char *text;
	char *line;
	size_t line_cap;
	unsigned lineno;

	enum parse_section sec;
	const char *secname; /* SEC_GLOBAL: the table's section name */
	size_t vhost;        /* SEC_HOST: index into cfg->vhosts */
	size_t vhost_cap;

	unsigned key_line[NENTRIES];
	struct host_lines *host_lines;
	size_t host_lines_cap;

	char *error; /* the first error only: later ones may be its echoes */
	unsigned error_line;
	size_t max_line; /* inih's line buffer, less its NUL */
};

static void parse_fail(struct parse *ps, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void parse_fail(struct parse *ps, unsigned line, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (ps->error != NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	if (line > 0)
		ps->error = xasprintf("%s:%u: %s", ps->path, line, msg);
	else
		ps->error = xasprintf("%s: %s", ps->path, msg);
	ps->error_line = line;
	free(msg);
}

static void *field(void *base, const struct config_entry *e)
{
	return (char *)base + e->offset;
}

static const void *cfield(const void *base, const struct config_entry *e)
{
	return (const char *)base + e->offset;
}

static size_t *listen_count(void *base, const struct config_entry *e)
{
	return (size_t *)((char *)base + e->count_offset);
}

static int check_log_level(const char *value, const char **why_r)
{
	enum log_level level;

	if (log_level_parse(value, &level) < 0) {
		*why_r = "must be error, warn, info or debug";
		return -1;
	}
	return 0;
}

static int check_offline_mode(const char *value, const char **why_r)
{
	if (strcmp(value, "sealed") == 0 || strcmp(value, "off") == 0)
		return 0;
	*why_r = "must be sealed or off";
	return -1;
}

static int check_mam_default(const char *value, const char **why_r)
{
	if (strcmp(value, "roster") == 0 || strcmp(value, "always") == 0 ||
	    strcmp(value, "never") == 0)
		return 0;
	*why_r = "must be roster, always or never";
	return -1;
}

/* Decimal digits only: strtoul would take "-1", " 7" and "0x10". Returns 0,
 * -1 if there is no digit, -2 on overflow; *sp is left after the digits. */
static int parse_digits(const char **sp, unsigned long long *v_r)
{
	const char *s = *sp;
	unsigned long long v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	*sp = s;
	*v_r = v;
	return 0;
}

/* "262144", "256K", "256 KiB", "1M", "1 MiB". Same return codes as
 * parse_digits, and -1 for trailing garbage or an unknown unit. */
static int parse_size(const char *s, unsigned long long *v_r)
{
	static const struct {
		const char *name;
		unsigned long long mult;
	} units[] = { { "K", KIB }, { "KiB", KIB }, { "M", MIB }, { "MiB", MIB } };
	unsigned long long v;
	int r;

	if ((r = parse_digits(&s, &v)) < 0)
		return r;
	s += strspn(s, " \t");
	if (*s == '\0') {
		*v_r = v;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_LEN(units); i++) {
		if (strcmp(s, units[i].name) == 0) {
			if (v > ULLONG_MAX / units[i].mult)
				return -2;
			*v_r = v * units[i].mult;
			return 0;
		}
	}
	return -1;
}

/* The largest unit that divides the value exactly, so dumps read well and
 * parse back to the same number. */
static void format_size(char *out, size_t len, unsigned long long v)
{
	if (v >= MIB && v % MIB == 0)
		snprintf(out, len, "%llu MiB", v / MIB);
	else if (v >= KIB && v % KIB == 0)
		snprintf(out, len, "%llu KiB", v / KIB);
	else
		snprintf(out, len, "%llu", v);
}

static int parse_bool(const char *s, bool *v_r)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*v_r = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*v_r = false;
			return 0;
		}
	}
	return -1;
}

/* One "a.b.c.d:port" or "[v6]:port" (IP literals only: nothing resolves
 * names at start-up), returned in canonical form so that duplicates are
 * found however they are spelt. */
static int parse_listen_addr(const char *s, char **out_r, char **why_r)
{
	unsigned char bin[sizeof(struct in6_addr)];
	char addr[INET6_ADDRSTRLEN], canon[INET6_ADDRSTRLEN];
	const char *a, *port_s;
	unsigned long long port;
	size_t alen;
	int family;

	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':') {
			*why_r = xasprintf("'%s' is not [IPv6 address]:port", s);
			return -1;
		}
		family = AF_INET6;
		a = s + 1;
		alen = (size_t)(close - a);
		port_s = close + 2;
	} else {
		const char *colon = strrchr(s, ':');
		if (colon == NULL) {
			*why_r = xasprintf("'%s' has no port (address:port)", s);
			return -1;
		}
		if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
			*why_r = xasprintf("'%s': an IPv6 address goes in "
					   "brackets, e.g. [::1]:5222", s);
			return -1;
		}
		family = AF_INET;
		a = s;
		alen = (size_t)(colon - s);
		port_s = colon + 1;
	}
	if (alen == 0 || alen >= sizeof(addr))
		goto bad_addr;
	memcpy(addr, a, alen);
	addr[alen] = '\0';
	if (inet_pton(family, addr, bin) != 1)
		goto bad_addr;
	if (parse_digits(&port_s, &port) < 0 || *port_s != '\0' ||
	    port < 1 || port > 65535) {
		*why_r = xasprintf("'%s': the port must be 1..65535", s);
		return -1;
	}
	if (inet_ntop(family, bin, canon, sizeof(canon)) == NULL)
		goto bad_addr;
	if (family == AF_INET6)
		*out_r = xasprintf("[%s]:%llu", canon, port);
	else
		*out_r = xasprintf("%s:%llu", canon, port);
	return 0;
bad_addr:
	*why_r = xasprintf("'%s': '%.*s' is not an IP%s address", s, (int)alen,
			   a, family == AF_INET6 ? "v6" : "v4");
	return -1;
}

static void free_listen(char **list, size_t *n)
{
	for (size_t i = 0; i < *n; i++) {
		free(list[i]);
		list[i] = NULL;
	}
	*n = 0;
}

/* An empty value is an empty list: a server may listen on direct TLS
 * only, or on STARTTLS only. */
static int set_listen(const struct config_entry *e, void *base,
		      const char *value, char **why_r)
{
	char *list[CONFIG_MAX_LISTEN];
	size_t n = 0, len;
	int ret = -1;

	for (const char *s = value; *value != '\0'; s += len + 1) {
		const char *start = s, *end;
		char *item, *canon;

		len = strcspn(s, ",");
		end = s + len;
		while (start < end && (*start == ' ' || *start == '\t'))
			start++;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (start == end) {
			*why_r = xstrdup("empty address in the list");
			goto out;
		}
		if (n == CONFIG_MAX_LISTEN) {
			*why_r = xasprintf("at most %d addresses",
					   CONFIG_MAX_LISTEN);
			goto out;
		}
		item = xstrndup(start, (size_t)(end - start));
		if (parse_listen_addr(item, &canon, why_r) < 0) {
			free(item);
			goto out;
		}
		free(item);
		for (size_t i = 0; i < n; i++) {
			if (strcmp(list[i], canon) == 0) {
				*why_r = xasprintf("%s is listed twice", canon);
				free(canon);
				goto out;
			}
		}
		list[n++] = canon;
		if (s[len] == '\0')
			break;
	}
	free_listen(field(base, e), listen_count(base, e));
	memcpy(field(base, e), list, n * sizeof(list[0]));
	*listen_count(base, e) = n;
	n = 0;
	ret = 0;
out:
	free_listen(list, &n);
	return ret;
}

/* Parses `value` for entry `e` into the struct at `base`. Returns 0, or -1
 * with an xmalloc'd reason in *why_r; on error the field is unchanged. */
static int set_value(const struct config_entry *e, void *base,
		     const char *value, char **why_r)
{
	char lo[32], hi[32];
	unsigned long long v = 0;
	const char *why;
	bool b;
	int r;

	switch (e->type) {
	case CT_STRING:
		if (*value == '\0') {
			*why_r = xstrdup("must not be empty");
			return -1;
		}
		/* inih takes "key =;x" as ";x" but "key = ;x" as empty:
		 * such a value could not be written back (config_dump). */
		if (*value == ';') {
			*why_r = xasprintf("'%s' must not start with ';'", value);
			return -1;
		}
		if (e->check != NULL && e->check(value, &why) < 0) {
			*why_r = xasprintf("'%s' %s", value, why);
			return -1;
		}
		free(*(char **)field(base, e));
		*(char **)field(base, e) = xstrdup(value);
		return 0;
	case CT_BOOL:
		if (parse_bool(value, &b) < 0) {
			*why_r = xasprintf("'%s' is not a boolean (true/false, "
					   "yes/no, on/off, 1/0)", value);
			return -1;
		}
		*(bool *)field(base, e) = b;
		return 0;
	case CT_UINT:
	case CT_SIZE:
		if (e->type == CT_UINT) {
			const char *s = value;
			r = parse_digits(&s, &v);
			if (r == 0 && *s != '\0')
				r = -1;
			snprintf(lo, sizeof(lo), "%llu", e->min);
			snprintf(hi, sizeof(hi), "%llu", e->max);
		} else {
			r = parse_size(value, &v);
			format_size(lo, sizeof(lo), e->min);
			format_size(hi, sizeof(hi), e->max);
		}
		if (r == -1) {
			*why_r = xasprintf(e->type == CT_UINT ?
					   "'%s' is not a whole number" :
					   "'%s' is not a size (bytes, or a "
					   "number with K, KiB, M or MiB)",
					   value);
			return -1;
		}
		if (r < 0 || v < e->min || v > e->max) {
			*why_r = xasprintf("%s is out of range (%s..%s)", value,
					   lo, hi);
			return -1;
		}
		if (e->type == CT_UINT)
			*(unsigned *)field(base, e) = (unsigned)v;
		else
			*(size_t *)field(base, e) = (size_t)v;
		return 0;
	case CT_LISTEN:
		return set_listen(e, base, value, why_r);
	}
	abort();
}

static void free_value(const struct config_entry *e, void *base)
{
	switch (e->type) {
	case CT_STRING:
		free(*(char **)field(base, e));
		*(char **)field(base, e) = NULL;
		break;
	case CT_LISTEN:
		free_listen(field(base, e), listen_count(base, e));
		break;
	default:
		break;
	}
}

static void dump_value(FILE *out, const struct config_entry *e,
		       const void *base)
{
	char tmp[32];

	switch (e->type) {
	case CT_STRING: {
		const char *s = *(char *const *)cfield(base, e);
		fputs(s ? s : "", out);
		break;
	}
	case CT_BOOL:
		fputs(*(const bool *)cfield(base, e) ? "true" : "false", out);
		break;
	case CT_UINT:
		fprintf(out, "%u", *(const unsigned *)cfield(base, e));
		break;
	case CT_SIZE:
		format_size(tmp, sizeof(tmp), *(const size_t *)cfield(base, e));
		fputs(tmp, out);
		break;
	case CT_LISTEN: {
		char *const *list = cfield(base, e);
		size_t n = *(const size_t *)((const char *)base + e->count_offset);
		for (size_t i = 0; i < n; i++)
			fprintf(out, "%s%s", i ? ", " : "", list[i]);
		break;
	}
	}
}

/* Fills a derived default's template. Trailing slashes of data_dir are
 * dropped so that "/srv/roost/" does not give "/srv/roost//seal.key". */
static char *expand(const char *tmpl, const char *data_dir, const char *domain)
{
	struct buf b = BUF_INIT;
	size_t dlen = strlen(data_dir);

	while (dlen > 0 && data_dir[dlen - 1] == '/')
		dlen--;
	while (*tmpl != '\0') {
		if (strncmp(tmpl, "{data_dir}", 10) == 0) {
			buf_append(&b, data_dir, dlen);
			tmpl += 10;
		} else if (strncmp(tmpl, "{domain}", 8) == 0 && domain != NULL) {
			buf_append_str(&b, domain);
			tmpl += 8;
		} else {
			buf_append(&b, tmpl++, 1);
		}
	}
	return buf_steal(&b, NULL);
}

/* A bad default is a bug in the table, not in the user's file. */
static void set_default(const struct config_entry *e, void *base,
			const char *data_dir, const char *domain)
{
	char *value = e->derived ? expand(e->def, data_dir, domain) :
				   xstrdup(e->def);
	char *why;

	if (set_value(e, base, value, &why) < 0) {
		log_error("config: bad default for %s: %s", e->key, why);
		abort();
	}
	free(value);
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	/* Derived defaults last: they read data_dir. */
	for (size_t i = 0; i < NENTRIES; i++)
		if (!entries[i].derived)
			set_default(&entries[i], cfg, NULL, NULL);
	for (size_t i = 0; i < NENTRIES; i++)
		if (entries[i].derived)
			set_default(&entries[i], cfg, cfg->data_dir, NULL);
}

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < NENTRIES; i++)
		free_value(&entries[i], cfg);
	for (size_t v = 0; v < cfg->nvhosts; v++) {
		free(cfg->vhosts[v].domain);
		for (size_t i = 0; i < NHOST_ENTRIES; i++)
			free_value(&host_entries[i], &cfg->vhosts[v]);
	}
	free(cfg->vhosts);
	memset(cfg, 0, sizeof(*cfg));
}

const struct config_vhost *config_vhost(const struct config *cfg,
					const char *domain)
{
	for (size_t i = 0; i < cfg->nvhosts; i++)
		if (strcmp(cfg->vhosts[i].domain, domain) == 0)
			return &cfg->vhosts[i];
	return NULL;
}

void config_dump(FILE *out, const struct config *cfg)
{
	const char *sec = NULL;

	fputs("# roost: effective configuration\n", out);
	for (size_t i = 0; i < NENTRIES; i++) {
		const struct config_entry *e = &entries[i];
		if (sec == NULL || strcmp(sec, e->section) != 0) {
			sec = e->section;
			fprintf(out, "\n[%s]\n", sec);
		}
		fprintf(out, "%s = ", e->key);
		dump_value(out, e, cfg);
		fputc('\n', out);
	}
	for (size_t v = 0; v < cfg->nvhosts; v++) {
		fprintf(out, "\n[host %s]\n", cfg->vhosts[v].domain);
		for (size_t i = 0; i < NHOST_ENTRIES; i++) {
			fprintf(out, "%s = ", host_entries[i].key);
			dump_value(out, &host_entries[i], &cfg->vhosts[v]);
			fputc('\n', out);
		}
	}
}

/* ---- reading ---- */

static char *trim(char *s)
{
	char *end;

	s += strspn(s, " \t");
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	return s;
}

static void open_host(struct parse *ps, const char *domain)
{
	struct config *cfg = ps->cfg;
	char *prepped;

	if (*domain == '\0') {
		parse_fail(ps, ps->lineno,
			   "[host] needs a domain, e.g. [host example.org]");
		return;
	}
	if (jid_prep_domain(domain, &prepped) < 0) {
		parse_fail(ps, ps->lineno, "[host %s]: not a valid domain",
			   domain);
		return;
	}
	for (size_t i = 0; i < cfg->nvhosts; i++) {
		if (strcmp(cfg->vhosts[i].domain, prepped) == 0) {
			parse_fail(ps, ps->lineno,
				   "[host %s] is defined twice (first on line %u)",
				   prepped, ps->host_lines[i].section);
			free(prepped);
			return;
		}
	}
	cfg->vhosts = xgrow(cfg->vhosts, &ps->vhost_cap, cfg->nvhosts + 1,
			    sizeof(*cfg->vhosts));
	ps->host_lines = xgrow(ps->host_lines, &ps->host_lines_cap,
			       cfg->nvhosts + 1, sizeof(*ps->host_lines));
	memset(&cfg->vhosts[cfg->nvhosts], 0, sizeof(cfg->vhosts[0]));
	memset(&ps->host_lines[cfg->nvhosts], 0, sizeof(ps->host_lines[0]));
	cfg->vhosts[cfg->nvhosts].domain = prepped;
	ps->host_lines[cfg->nvhosts].section = ps->lineno;
	ps->vhost = cfg->nvhosts++;
	ps->sec = SEC_HOST;
}

/* "[name]", optionally followed by a comment. `line` is modified. */
static void open_section(struct parse *ps, char *line)
{
	char *close = strchr(line, ']');
	char *name, *rest;

	if (close == NULL) {
		parse_fail(ps, ps->lineno, "missing ']' in section header");
		return;
	}
	rest = close + 1;
	rest += strspn(rest, " \t");
	if (*rest != '\0' && *rest != ';' && *rest != '#') {
		parse_fail(ps, ps->lineno, "unexpected '%s' after ']'", rest);
		return;
	}
	*close = '\0';
	name = trim(line + 1);
	for (size_t i = 0; i < NENTRIES; i++) {
		if (strcmp(name, entries[i].section) == 0) {
			ps->sec = SEC_GLOBAL;
			ps->secname = entries[i].section;
			return;
		}
	}
	if (strncmp(name, "host", 4) == 0 &&
	    (name[4] == '\0' || name[4] == ' ' || name[4] == '\t')) {
		open_host(ps, trim(name + 4));
		return;
	}
	parse_fail(ps, ps->lineno, "unknown section [%s]", name);
}

/* The next physical line without its line ending, NUL-terminated in
 * ps->line; NULL at the end or on a read error (recorded). */
static char *next_line(struct parse *ps, size_t *len_r)
{
	size_t len;

	if (ps->file != NULL) {
		ssize_t n = getline(&ps->line, &ps->line_cap, ps->file);
		if (n < 0) {
			if (ferror(ps->file))
				parse_fail(ps, ps->lineno + 1, "read error: %s",
					   strerror(errno));
			return NULL;
		}
		len = (size_t)n;
	} else {
		if (*ps->text == '\0')
			return NULL;
		len = strcspn(ps->text, "\n");
		if (ps->text[len] == '\n')
			len++;
		ps->line = xgrow(ps->line, &ps->line_cap, len + 1, 1);
		memcpy(ps->line, ps->text, len);
		ps->line[len] = '\0';
		ps->text += len;
	}
	if (len > 0 && ps->line[len - 1] == '\n')
		ps->line[--len] = '\0';
	if (len > 0 && ps->line[len - 1] == '\r')
		ps->line[--len] = '\0';
	*len_r = len;
	return ps->line;
}

/* inih's ini_reader: called once per line (so its line numbers and ours
 * agree), it hands inih only blank lines and key = value lines. Returning
 * NULL ends the parse, which we do at the first error. */
static char *parse_read_line(char *str, int num, void *stream)
{
	struct parse *ps = stream;
	char *line;
	size_t len;

	if (ps->error != NULL || (line = next_line(ps, &len)) == NULL)
		return NULL;
	if (num > 1)
		ps->max_line = (size_t)num - 1;
	ps->lineno++;
	if (strlen(line) != len) {
		parse_fail(ps, ps->lineno, "NUL byte in line");
		return NULL;
	}
	if (ps->lineno == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
		line += 3;
	line += strspn(line, " \t");
	len = strlen(line);
	str[0] = '\0';
	if (*line == '\0' || *line == ';' || *line == '#')
		return str;
	if (*line == '[') {
		open_section(ps, line);
		return ps->error ? NULL : str;
	}
	if (num < 1 || len >= (size_t)num) {
		parse_fail(ps, ps->lineno, "line longer than %d bytes", num - 1);
		return NULL;
	}
	memcpy(str, line, len + 1);
	return str;
}

static int parse_key(void *user, const char *section, const char *name,
		     const char *value)
{
	struct parse *ps = user;
	const struct config_entry *table;
	size_t n;
	unsigned *lines;
	void *base;
	char *why;

	if (ps->error != NULL)
		return 0;
	switch (ps->sec) {
	case SEC_GLOBAL:
		table = entries;
		n = NENTRIES;
		lines = ps->key_line;
		base = ps->cfg;
		break;
	case SEC_HOST:
		table = host_entries;
		n = NHOST_ENTRIES;
		lines = ps->host_lines[ps->vhost].key;
		base = &ps->cfg->vhosts[ps->vhost];
		break;
	default:
		parse_fail(ps, ps->lineno, "'%s' comes before any [section]",
			   name);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const struct config_entry *e = &table[i];
		if (strcmp(e->key, name) != 0 ||
		    (ps->sec == SEC_GLOBAL && strcmp(e->section, ps->secname) != 0))
			continue;
		if (lines[i] != 0) {
			parse_fail(ps, ps->lineno,
				   "%s is set twice (first on line %u)", name,
				   lines[i]);
			return 0;
		}
		if (set_value(e, base, value, &why) < 0) {
			parse_fail(ps, ps->lineno, "%s: %s", name, why);
			free(why);
			return 0;
		}
		lines[i] = ps->lineno;
		return 1;
	}
	if (ps->sec == SEC_GLOBAL)
		parse_fail(ps, ps->lineno, "unknown key '%s' in [%s]", name,
			   ps->secname);
	else
		parse_fail(ps, ps->lineno, "unknown key '%s' in [host %s]", name,
			   ps->cfg->vhosts[ps->vhost].domain);
	return 0;
}

static unsigned key_line(const struct parse *ps, const char *key)
{
	for (size_t i = 0; i < NENTRIES; i++)
		if (strcmp(entries[i].key, key) == 0)
			return ps->key_line[i];
	abort();
}

static unsigned later(unsigned a, unsigned b)
{
	return a > b ? a : b;
}

/* The length of the line config_dump writes for `e`. */
static size_t dump_line_len(const struct config_entry *e, const void *base)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		abort();
	fprintf(f, "%s = ", e->key);
	dump_value(f, e, base);
	fclose(f);
	free(text);
	return len;
}

/* config_dump (`roostctl config`) must write what config_load reads
 * back: a derived default (data_dir + "/seal.key") or a listen list
 * written out canonically may not make a line longer than a file may
 * have. */
static void check_dump_lines(struct parse *ps, const struct config_entry *e,
			     const void *base, unsigned line)
{
	size_t len;

	if (ps->max_line == 0)
		return;
	len = dump_line_len(e, base);
	if (len > ps->max_line)
		parse_fail(ps, line, "%s would be a %zu-byte line in the "
			   "effective configuration, over the limit of %zu%s",
			   e->key, len, ps->max_line,
			   e->derived ? " (shorten data_dir or the domain, or "
					"set it)" : "");
}

/* After the whole file: derived defaults, then what no single key can
 * check alone. */
static void parse_finish(struct parse *ps)
{
	struct config *cfg = ps->cfg;

	for (size_t i = 0; i < NENTRIES; i++)
		if (entries[i].derived && ps->key_line[i] == 0)
			set_default(&entries[i], cfg, cfg->data_dir, NULL);
	for (size_t v = 0; v < cfg->nvhosts; v++)
		for (size_t i = 0; i < NHOST_ENTRIES; i++)
			if (host_entries[i].derived &&
			    ps->host_lines[v].key[i] == 0)
				set_default(&host_entries[i], &cfg->vhosts[v],
					    cfg->data_dir, cfg->vhosts[v].domain);

	for (size_t i = 0; i < NENTRIES; i++)
		check_dump_lines(ps, &entries[i], cfg,
				 ps->key_line[i] || !entries[i].derived ?
				 ps->key_line[i] : key_line(ps, "data_dir"));
	for (size_t v = 0; v < cfg->nvhosts; v++)
		for (size_t i = 0; i < NHOST_ENTRIES; i++)
			check_dump_lines(ps, &host_entries[i], &cfg->vhosts[v],
					 ps->host_lines[v].key[i] ?
					 ps->host_lines[v].key[i] :
					 ps->host_lines[v].section);
	if (cfg->auth_failure_max_delay_ms < cfg->auth_failure_delay_ms)
		parse_fail(ps, later(key_line(ps, "auth_failure_delay_ms"),
				     key_line(ps, "auth_failure_max_delay_ms")),
			   "auth_failure_max_delay_ms (%u) is below "
			   "auth_failure_delay_ms (%u)",
			   cfg->auth_failure_max_delay_ms,
			   cfg->auth_failure_delay_ms);
	/* A client must be able to receive a stanza as large as it may
	 * send, or routing one would cut the recipient off. */
	if (cfg->max_outq < cfg->max_stanza_size)
		parse_fail(ps, later(key_line(ps, "max_outq"),
				     key_line(ps, "max_stanza_size")),
			   "max_outq (%zu) is below max_stanza_size (%zu)",
			   cfg->max_outq, cfg->max_stanza_size);
	/* libevent's token bucket cannot hand out more than a bucket holds
	 * per second. */
	if (cfg->read_rate != 0 && cfg->read_burst < cfg->read_rate)
		parse_fail(ps, later(key_line(ps, "read_rate"),
				     key_line(ps, "read_burst")),
			   "read_burst (%zu) is below read_rate (%zu)",
			   cfg->read_burst, cfg->read_rate);
	if (cfg->connection_rate != 0 &&
	    cfg->connection_burst < cfg->connection_rate)
		parse_fail(ps, later(key_line(ps, "connection_rate"),
				     key_line(ps, "connection_burst")),
			   "connection_burst (%u) is below connection_rate (%u)",
			   cfg->connection_burst, cfg->connection_rate);
	if (cfg->nlisten + cfg->ntls_listen == 0)
		parse_fail(ps, later(key_line(ps, "listen"),
				     key_line(ps, "tls_listen")),
			   "listen and tls_listen are both empty");
	for (size_t i = 0; i < cfg->nlisten; i++)
		for (size_t j = 0; j < cfg->ntls_listen; j++)
			if (strcmp(cfg->listen[i], cfg->tls_listen[j]) == 0)
				parse_fail(ps, later(key_line(ps, "listen"),
						     key_line(ps, "tls_listen")),
					   "%s is in both listen and tls_listen",
					   cfg->listen[i]);
	if (cfg->nvhosts == 0)
		parse_fail(ps, 0, "no [host <domain>] section: "
			   "there is no domain to serve");
}

static int parse_run(struct parse *ps, struct config *cfg, char **error_r)
{
	int r;

	config_defaults(cfg);
	ps->cfg = cfg;
	r = ini_parse_stream(parse_read_line, ps, parse_key, ps);
	/* inih's own errors are lines without '=' (or ':'). Ours come with
	 * a reason and win when they are on the same line. */
	if (r > 0 && (ps->error == NULL || (unsigned)r < ps->error_line)) {
		free(ps->error);
		ps->error = NULL;
		parse_fail(ps, (unsigned)r, "expected 'key = value'");
	} else if (r < 0 && ps->error == NULL) {
		parse_fail(ps, 0, "cannot parse (inih error %d)", r);
	}
	if (ps->error == NULL)
		parse_finish(ps);
	free(ps->line);
	free(ps->host_lines);
	if (ps->error != NULL) {
		config_free(cfg);
		if (error_r != NULL)
			*error_r = ps->error;
		else
			free(ps->error);
		return -1;
	}
	return 0;
}

int config_load(const char *path, struct config *cfg, char **error_r)
{
	struct parse ps = { .path = path };
	int r;

	ps.file = fopen(path, "r");
	if (ps.file == NULL) {
		memset(cfg, 0, sizeof(*cfg));
		if (error_r != NULL)
			*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	r = parse_run(&ps, cfg, error_r);
	fclose(ps.file);
	return r;
}

int config_load_string(const char *text, struct config *cfg, char **error_r)
{
	struct parse ps = { .path = "<string>", .text = text };

	return parse_run(&ps, cfg, error_r);
}

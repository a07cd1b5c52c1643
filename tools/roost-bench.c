/* roost-bench: load generator for XMPP servers (issue 5).
 *
 *   roost-bench [options] login|idle|chat|offline|mam|register
 *
 * Every scenario ends with one machine-readable line
 *   result scenario=NAME server=LABEL key=value ...
 * and one line for people. The exit status is 0 when the scenario ran and
 * lost nothing, 1 when something was lost or failed, 2 for bad usage, 3
 * when the server does not support the scenario (status=unsupported).
 *
 * Loopback only: the target and the source addresses are in 127.0.0.0/8.
 * See BENCHMARKS.md and bench/compare for how the numbers are made. */

/* For the ENGINE calls in legacy_key_decoding(), deprecated in OpenSSL 3. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#ifndef OPENSSL_NO_ENGINE
#include <openssl/engine.h>
#endif
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "bench/bench.h"

void bench_reap(struct bench *b);

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t global_deadline;

void bench_log(struct bench *b, const char *fmt, ...)
{
	va_list ap;

	if (!b->o.verbose)
		return;
	va_start(ap, fmt);
	fputs("roost-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void bench_note_error(struct bench *b, const char *fmt, ...)
{
	va_list ap;

	if (b->first_error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(b->first_error, sizeof(b->first_error), fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------------
 * the loop */

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	bench_reap(arg);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	bench_flush(arg);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;
	uint64_t now = now_ns();

	bench_tick_conns(b, now);
	if (now >= global_deadline || b->stop)
		event_base_loopbreak(b->base);
	bench_poke(b);
}

static void on_phase_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;

	event_base_loopbreak(b->base);
}

void bench_poke(struct bench *b)
{
	if (b->done != NULL && b->done(b))
		event_base_loopbreak(b->base);
}

bool bench_run_until(struct bench *b, bool (*done)(struct bench *b),
		     double seconds)
{
	uint64_t now = now_ns(), until = now + (uint64_t)(seconds * 1e9);
	struct event *ev;
	struct timeval tv;
	bool ok;

	if (until > global_deadline)
		until = global_deadline;
	b->done = done;
	if (done(b)) {
		b->done = NULL;
		return true;
	}
	if (until <= now || b->stop) {
		b->done = NULL;
		return false;
	}
	tv.tv_sec = (time_t)((until - now) / 1000000000ull);
	tv.tv_usec = (suseconds_t)((until - now) % 1000000000ull / 1000);
	ev = evtimer_new(b->base, on_phase_deadline, b);
	evtimer_add(ev, &tv);
	while (!(ok = done(b)) && now_ns() < until && !b->stop) {
		event_base_loop(b->base, EVLOOP_ONCE);
	}
	event_free(ev);
	b->done = NULL;
	return ok;
}

/* ---------------------------------------------------------------------
 * measurements */

double server_cpu_s(struct bench *b)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;

	if (b->o.server_pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", b->o.server_pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* after ')': state(3) ppid pgrp session tty tpgid flags minflt
	 * cminflt majflt cmajflt utime(14) stime(15) */
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				&ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

void cpu_mark(struct bench *b, struct bench_cpu *m)
{
	getrusage(RUSAGE_SELF, &m->ru);
	m->server_s = server_cpu_s(b);
	m->t = now_ns();
}

static double tv_s(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

void cpu_report(struct bench *b, const char *prefix,
		const struct bench_cpu *from, const struct bench_cpu *to)
{
	char kc[64], ks[64];
	double wall = (double)(to->t - from->t) / 1e9;
	double self = tv_s(&to->ru.ru_utime) - tv_s(&from->ru.ru_utime) +
		      tv_s(&to->ru.ru_stime) - tv_s(&from->ru.ru_stime);

	if (wall <= 0)
		wall = 1e-9;
	snprintf(kc, sizeof(kc), "%sclient_cpu", prefix);
	snprintf(ks, sizeof(ks), "%sserver_cpu", prefix);
	sum_kv(b, kc, "%.0f", 100.0 * self / wall);
	if (from->server_s >= 0 && to->server_s >= 0)
		sum_kv(b, ks, "%.0f", 100.0 * (to->server_s - from->server_s) / wall);
	else
		sum_kv(b, ks, "na");
}

static long status_kib(const char *path, const char *key)
{
	char line[256];
	size_t kl = strlen(key);
	long v = -1;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, kl) == 0) {
			v = strtol(line + kl, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

long server_rss_kib(struct bench *b)
{
	char path[64];

	if (b->o.server_pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", b->o.server_pid);
	return status_kib(path, "VmRSS:");
}

long self_rss_kib(void)
{
	return status_kib("/proc/self/status", "VmRSS:");
}

void lat_add(struct latency *l, uint64_t ns)
{
	uint64_t us = ns / 1000;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4096;
		l->us = realloc(l->us, l->cap * sizeof(*l->us));
		if (l->us == NULL)
			abort();
	}
	l->us[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

double lat_pct(struct latency *l, double p)
{
	size_t i;

	if (l->n == 0)
		return 0;
	qsort(l->us, l->n, sizeof(*l->us), cmp_u32);
	i = (size_t)(p / 100.0 * (double)(l->n - 1) + 0.5);
	if (i >= l->n)
		i = l->n - 1;
	return l->us[i] / 1000.0;
}

void lat_free(struct latency *l)
{
	free(l->us);
	memset(l, 0, sizeof(*l));
}

/* ---------------------------------------------------------------------
 * summary */

void sum_begin(struct bench *b, const char *scenario)
{
	b->summary_len = 0;
	b->summary[0] = '\0';
	sum_kv(b, "result scenario", "%s", scenario);
	sum_kv(b, "server", "%s", b->o.server_name);
	sum_kv(b, "tls", "%s", b->o.direct_tls ? "direct" : "starttls");
	sum_kv(b, "mech", "%s", b->o.mech);
}

void sum_kv(struct bench *b, const char *key, const char *fmt, ...)
{
	char val[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	/* values never contain blanks: the line splits on them */
	for (char *p = val; *p; p++)
		if (*p == ' ' || *p == '\t' || *p == '\n')
			*p = '_';
	n = snprintf(b->summary + b->summary_len, sizeof(b->summary) - b->summary_len,
		     "%s%s=%s", b->summary_len ? " " : "", key, val);
	if (n > 0 && b->summary_len + (size_t)n < sizeof(b->summary))
		b->summary_len += (size_t)n;
}

void sum_end(struct bench *b, const char *human_fmt, ...)
{
	va_list ap;

	if (b->first_error[0] != '\0')
		sum_kv(b, "first_error", "%s", b->first_error);
	bench_pending_states(b);
	printf("%s\n", b->summary);
	va_start(ap, human_fmt);
	vprintf(human_fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* ---------------------------------------------------------------------
 * options */

static void usage(FILE *out)
{
	fprintf(out,
"usage: roost-bench [options] SCENARIO\n"
"scenarios: login idle chat offline mam register\n"
"connection:\n"
"  --host ADDR          server address in 127.0.0.0/8 (127.0.0.1)\n"
"  --port N             5222, or 5223 with --tls\n"
"  --tls                direct TLS (XEP-0368) instead of STARTTLS\n"
"  --domain NAME        XMPP domain (localhost)\n"
"  --prefix P           users are P1, P2, ... (bench)\n"
"  --password PW        every bench user's password (pw)\n"
"  --offset N           a scenario's users start at P(N+1) (0)\n"
"  --mech M             SCRAM-SHA-1 or SCRAM-SHA-256 (SCRAM-SHA-256)\n"
"  --sources N          bind to 127.0.0.2 .. 127.0.0.(N+1); 0 = no bind (4)\n"
"  --concurrency N      logins in flight (100)\n"
"  --scram-cache FILE   keep SaltedPassword between runs\n"
"measurement:\n"
"  --server-pid PID     report the server's CPU and RSS\n"
"  --server-name NAME   label in the summary (server)\n"
"  --timeout S          bound for the whole scenario (120)\n"
"  --duration S         chat: stop sending after S seconds (30)\n"
"sizes (defaults per scenario in BENCHMARKS.md):\n"
"  -n, --count N        login: logins; idle: connections; offline: messages;\n"
"                       mam: archive size; register: accounts\n"
"  --users K            login: distinct users; offline: recipients\n"
"  --pairs P            chat, mam: sender/receiver pairs\n"
"  --window W           chat: messages in flight per pair; offline/mam: batch\n"
"  --messages M         chat: messages per pair\n"
"  --senders S          offline: sending users\n"
"  --page N             mam: page size (50)\n"
"  --hold S             idle: seconds to hold the connections (5)\n"
"  --sample N           idle: connections pinged at the end\n"
"  --body-size N        extra bytes per message body (0)\n"
"  -v, --verbose        log failures to stderr; twice: every stanza\n");
}

enum {
	O_HOST = 256, O_PORT, O_TLS, O_DOMAIN, O_PREFIX, O_PASSWORD, O_OFFSET,
	O_MECH, O_SOURCES, O_CONC, O_CACHE, O_PID, O_NAME, O_TIMEOUT,
	O_DURATION, O_USERS, O_PAIRS, O_WINDOW, O_MESSAGES, O_SENDERS, O_PAGE,
	O_HOLD, O_SAMPLE, O_BODY,
};

static const struct option longopts[] = {
	{ "host", required_argument, NULL, O_HOST },
	{ "port", required_argument, NULL, O_PORT },
	{ "tls", no_argument, NULL, O_TLS },
	{ "domain", required_argument, NULL, O_DOMAIN },
	{ "prefix", required_argument, NULL, O_PREFIX },
	{ "users-prefix", required_argument, NULL, O_PREFIX },
	{ "password", required_argument, NULL, O_PASSWORD },
	{ "offset", required_argument, NULL, O_OFFSET },
	{ "mech", required_argument, NULL, O_MECH },
	{ "sources", required_argument, NULL, O_SOURCES },
	{ "concurrency", required_argument, NULL, O_CONC },
	{ "scram-cache", required_argument, NULL, O_CACHE },
	{ "server-pid", required_argument, NULL, O_PID },
	{ "server-name", required_argument, NULL, O_NAME },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "duration", required_argument, NULL, O_DURATION },
	{ "count", required_argument, NULL, 'n' },
	{ "users", required_argument, NULL, O_USERS },
	{ "pairs", required_argument, NULL, O_PAIRS },
	{ "window", required_argument, NULL, O_WINDOW },
	{ "messages", required_argument, NULL, O_MESSAGES },
	{ "senders", required_argument, NULL, O_SENDERS },
	{ "page", required_argument, NULL, O_PAGE },
	{ "hold", required_argument, NULL, O_HOLD },
	{ "sample", required_argument, NULL, O_SAMPLE },
	{ "body-size", required_argument, NULL, O_BODY },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static unsigned parse_uint(const char *opt, const char *s, unsigned max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v > max) {
		fprintf(stderr, "roost-bench: --%s: not a number in 0..%u: %s\n",
			opt, max, s);
		exit(2);
	}
	return (unsigned)v;
}

static double parse_secs(const char *opt, const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (*s == '\0' || *end != '\0' || !(v > 0) || v > 86400) {
		fprintf(stderr, "roost-bench: --%s: not a duration in seconds: %s\n", opt, s);
		exit(2);
	}
	return v;
}

static int accept_any_chain(X509_STORE_CTX *ctx, void *arg)
{
	return 1;
}

#ifndef OPENSSL_NO_ENGINE
static int legacy_pkey_meths(ENGINE *e, EVP_PKEY_METHOD **pmeth,
			     const int **nids, int nid)
{
	static const int ours[] = { EVP_PKEY_EC, EVP_PKEY_RSA };

	if (pmeth == NULL) {
		*nids = ours;
		return (int)(sizeof(ours) / sizeof(ours[0]));
	}
	*pmeth = (EVP_PKEY_METHOD *)EVP_PKEY_meth_find(nid);
	return *pmeth != NULL;
}
#endif

/* OpenSSL 3.0 turns the public key of every certificate it parses into a
 * key through its provider decoders, which costs a quarter of the load
 * generator's CPU per login (more than verifying the server's signature).
 * It takes the old direct path instead for key types an ENGINE claims:
 * this one claims EC and RSA keys and hands back OpenSSL's own built-in
 * methods, so the handshake, the bytes on the wire and the signature
 * checks stay exactly the same, only cheaper for the client. */
static void legacy_key_decoding(void)
{
#ifndef OPENSSL_NO_ENGINE
	ENGINE *e = ENGINE_new();

	if (e == NULL)
		return;
	if (ENGINE_set_id(e, "roost-bench-keys") &&
	    ENGINE_set_name(e, "roost-bench: built-in EC and RSA key methods") &&
	    ENGINE_set_pkey_meths(e, legacy_pkey_meths) && ENGINE_add(e))
		ENGINE_register_pkey_meths(e);
	ENGINE_free(e);
	ERR_clear_error();
#endif
}

static int setup(struct bench *b)
{
	struct sockaddr_in *sin = calloc(1, sizeof(struct sockaddr_storage));
	struct rlimit rl;

	if (sin == NULL)
		abort();
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)b->o.port);
	if (inet_pton(AF_INET, b->o.host, &sin->sin_addr) != 1 ||
	    (ntohl(sin->sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "roost-bench: --host must be an address in 127.0.0.0/8 "
			"(loopback only): %s\n", b->o.host);
		return -1;
	}
	b->dst = (struct sockaddr_storage *)sin;
	b->dst_len = sizeof(*sin);
	b->nsources = b->o.sources;

	/* as many descriptors as the hard limit allows */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);

	legacy_key_decoding();
	b->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (b->ssl_ctx == NULL)
		return -1;
	/* the servers under test use self-signed certificates */
	SSL_CTX_set_verify(b->ssl_ctx, SSL_VERIFY_NONE, NULL);
	/* and no chain building either: OpenSSL would build and check it
	 * even under SSL_VERIFY_NONE, only to ignore the result */
	SSL_CTX_set_cert_verify_callback(b->ssl_ctx, accept_any_chain, NULL);
	SSL_CTX_set_min_proto_version(b->ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(b->ssl_ctx, SSL_MODE_RELEASE_BUFFERS |
			 SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* one read() takes every record the socket holds */
	SSL_CTX_set_read_ahead(b->ssl_ctx, 1);
	/* every login is a full handshake, as for a client's first login */
	SSL_CTX_set_session_cache_mode(b->ssl_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(b->ssl_ctx, SSL_OP_NO_TICKET);

	struct event_config *cfg = event_config_new();
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	b->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (b->base == NULL)
		return -1;
	b->reap_ev = event_new(b->base, -1, 0, on_reap, b);
	b->flush_ev = event_new(b->base, -1, 0, on_flush, b);
	b->tick_ev = event_new(b->base, -1, EV_PERSIST, on_tick, b);
	struct timeval tick = { 0, 100000 };
	event_add(b->tick_ev, &tick);
	RAND_bytes((unsigned char *)&b->run_id, sizeof(b->run_id));
	b->run_id &= 0xffffffffffull;
	return 0;
}

static struct bench *the_bench;

static void on_signal(int sig)
{
	if (the_bench)
		the_bench->stop = true;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct bench *);
	} scenarios[] = {
		{ "login", scen_login }, { "idle", scen_idle }, { "chat", scen_chat },
		{ "offline", scen_offline }, { "mam", scen_mam },
		{ "register", scen_register },
	};
	struct bench *b = calloc(1, sizeof(*b));
	int ch, port = 0, rc = 2;

	if (b == NULL)
		abort();
	b->o.host = "127.0.0.1";
	b->o.domain = "localhost";
	b->o.prefix = "bench";
	b->o.password = "pw";
	b->o.mech = "SCRAM-SHA-256";
	b->o.sources = 4;
	b->o.server_name = "server";
	b->o.timeout = 120;
	b->o.duration = 30;
	b->o.concurrency = 100;
	b->o.page = 50;
	b->o.hold = 5;

	while ((ch = getopt_long(argc, argv, "n:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case O_HOST: b->o.host = optarg; break;
		case O_PORT: port = (int)parse_uint("port", optarg, 65535); break;
		case O_TLS: b->o.direct_tls = true; break;
		case O_DOMAIN: b->o.domain = optarg; break;
		case O_PREFIX: b->o.prefix = optarg; break;
		case O_PASSWORD: b->o.password = optarg; break;
		case O_OFFSET: b->o.user_offset = parse_uint("offset", optarg, 100000000); break;
		case O_MECH:
			if (strcmp(optarg, "SCRAM-SHA-1") != 0 && strcmp(optarg, "SCRAM-SHA-256") != 0) {
				fprintf(stderr, "roost-bench: --mech: SCRAM-SHA-1 or SCRAM-SHA-256\n");
				return 2;
			}
			b->o.mech = optarg;
			break;
		case O_SOURCES: b->o.sources = (int)parse_uint("sources", optarg, BENCH_MAX_SOURCES); break;
		case O_CONC: b->o.concurrency = parse_uint("concurrency", optarg, 1000000); break;
		case O_CACHE: b->o.scram_cache = optarg; break;
		case O_PID: b->o.server_pid = (int)parse_uint("server-pid", optarg, 1u << 30); break;
		case O_NAME: b->o.server_name = optarg; break;
		case O_TIMEOUT: b->o.timeout = parse_secs("timeout", optarg); break;
		case O_DURATION: b->o.duration = parse_secs("duration", optarg); break;
		case 'n': b->o.count = parse_uint("count", optarg, 100000000); break;
		case O_USERS: b->o.users = parse_uint("users", optarg, 10000000); break;
		case O_PAIRS: b->o.pairs = parse_uint("pairs", optarg, 1000000); break;
		case O_WINDOW: b->o.window = parse_uint("window", optarg, 1000000); break;
		case O_MESSAGES: b->o.messages = parse_uint("messages", optarg, 100000000); break;
		case O_SENDERS: b->o.senders = parse_uint("senders", optarg, 1000000); break;
		case O_PAGE: b->o.page = parse_uint("page", optarg, 100000); break;
		case O_HOLD: b->o.hold = parse_secs("hold", optarg); break;
		case O_SAMPLE: b->o.sample = parse_uint("sample", optarg, 10000000); break;
		case O_BODY: b->o.body_size = parse_uint("body-size", optarg, 4096); break;
		case 'v': b->o.verbose++; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	b->o.scenario = argv[optind];
	b->o.port = port ? port : b->o.direct_tls ? 5223 : 5222;
	if (b->o.concurrency == 0 || b->o.page == 0) {
		fprintf(stderr, "roost-bench: --concurrency and --page must be at least 1\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (strcmp(scenarios[i].name, b->o.scenario) != 0)
			continue;
		if (setup(b) < 0)
			return 2;
		the_bench = b;
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		global_deadline = now_ns() + (uint64_t)(b->o.timeout * 1e9);
		scram_cache_load(b);
		rc = scenarios[i].fn(b);
		scram_cache_save(b);
		bconn_free_all(b);
		scram_cache_free(b);
		event_free(b->tick_ev);
		event_free(b->reap_ev);
		event_free(b->flush_ev);
		event_base_free(b->base);
		SSL_CTX_free(b->ssl_ctx);
		free(b->dst);
		free(b);
		return rc;
	}
	fprintf(stderr, "roost-bench: unknown scenario %s\n", b->o.scenario);
	usage(stderr);
	return 2;
}

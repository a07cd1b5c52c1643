/* The scenarios: login, idle, chat, offline, mam, register.
 *
 * Each runs in phases (log in, measure, drain, close), every phase
 * bounded by bench_run_until()'s time limit and the global --timeout, and
 * prints one summary line. Message bodies carry the run id, the message
 * number and the send time, so that delivery is checked exactly once per
 * message (lost, duplicated, stale from an earlier run) and latency is
 * end to end. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define NS_MAM "urn:xmpp:mam:2"
#define NS_RSM "http://jabber.org/protocol/rsm"

/* ---------------------------------------------------------------------
 * launching logins with bounded concurrency */

struct launch {
	unsigned total, next;
	unsigned online, failed;   /* logins finished either way */
	unsigned live_cap;         /* live connections, closing ones included */
	bool launching;
	struct bconn *(*make)(struct bench *b, unsigned i);
};

static void launch_more(struct bench *b, struct launch *l)
{
	if (l->launching)
		return;   /* a synchronous failure inside make() */
	l->launching = true;
	while (l->next < l->total && !b->stop &&
	       l->next - (l->online + l->failed) < b->o.concurrency &&
	       (l->live_cap == 0 || b->nconns < l->live_cap))
		l->make(b, l->next++);
	l->launching = false;
}

static bool launch_finished(const struct launch *l)
{
	return l->online + l->failed >= l->total;
}

static double secs(uint64_t from, uint64_t to)
{
	return to > from ? (double)(to - from) / 1e9 : 0.0;
}

static double rate(unsigned n, uint64_t from, uint64_t to)
{
	double s = secs(from, to);

	return s > 0 ? n / s : 0.0;
}

static bool never(struct bench *b)
{
	return false;
}

static bool no_conns(struct bench *b)
{
	return b->nconns == 0;
}

static void close_all(struct bench *b)
{
	for (struct bconn *c = b->conns, *next; c != NULL; c = next) {
		next = c->next;
		bconn_close(c, true);
	}
	bench_run_until(b, no_conns, 10);
}

/* Parses "RUNID N ..." from a body: returns the run id and sets *rest. */
static uint64_t parse_hex(const char *p, const char **rest)
{
	uint64_t v = 0;

	for (;; p++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			break;
		v = v << 4 | (uint64_t)d;
	}
	*rest = p;
	return v;
}

static uint64_t parse_dec(const char *p, const char **rest)
{
	uint64_t v = 0;

	while (*p == ' ')
		p++;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	*rest = p;
	return v;
}

static char *padding(struct bench *b)
{
	char *p = malloc(b->o.body_size + 1);

	if (p == NULL)
		abort();
	memset(p, 'x', b->o.body_size);
	p[b->o.body_size] = '\0';
	return p;
}

static bool is_type(const struct stanza *st, const char *type)
{
	char t[16];

	return st_attr(st, "type", t, sizeof(t)) >= 0 && strcmp(t, type) == 0;
}

/* Servers may acknowledge before they store (an asynchronous store): the
 * work is done when the server's CPU falls quiet. Returns when the first
 * quiet 100 ms window began (under 10 ms of CPU in it), `since` if the
 * server was quiet at once, or now without --server-pid. Bounded by
 * max_s. */
static uint64_t server_quiet_since(struct bench *b, uint64_t since, double max_s)
{
	uint64_t until = now_ns() + (uint64_t)(max_s * 1e9);
	double cpu = server_cpu_s(b);

	if (cpu < 0)
		return now_ns();
	for (;;) {
		uint64_t t = now_ns();
		bench_run_until(b, never, 0.1);
		double c = server_cpu_s(b);
		if (c - cpu < 0.0101 || now_ns() >= until || b->stop)
			return t > since ? t : since;
		cpu = c;
	}
}

/* ---------------------------------------------------------------------
 * login */

static struct {
	struct launch l;
	struct latency lat;
	unsigned users;
	uint64_t t_last;
} L;

static void login_online(struct bconn *c)
{
	L.l.online++;
	lat_add(&L.lat, now_ns() - c->t_start);
	L.t_last = now_ns();
	bconn_close(c, true);
	launch_more(c->b, &L.l);
}

static void login_closed(struct bconn *c, const char *why)
{
	if (!c->was_online && why != NULL)
		L.l.failed++;
	launch_more(c->b, &L.l);   /* a slot may have freed up */
}

static const struct bconn_ops login_ops = {
	.online = login_online, .closed = login_closed,
};

static struct bconn *login_make(struct bench *b, unsigned i)
{
	char res[24];
	struct bconn *c;

	snprintf(res, sizeof(res), "l%u", i);
	c = bconn_new(b, b->o.user_offset + 1 + i % L.users, res, GOAL_LOGIN,
		      &login_ops, NULL);
	c->presence = true;
	return c;
}

static bool login_done(struct bench *b)
{
	return launch_finished(&L.l) && b->nconns == 0;
}

int scen_login(struct bench *b)
{
	unsigned n = b->o.count ? b->o.count : 1000;
	struct bench_cpu c0, c1;
	uint64_t t0, tw;
	unsigned warm_failed;

	L.users = b->o.users ? b->o.users : (n < 500 ? n : 500);
	if (L.users > n)
		L.users = n;
	/* Warm-up, untimed: one login per user fills the SCRAM cache, so
	 * the timed pass spends no client CPU on PBKDF2. */
	tw = now_ns();
	L.l = (struct launch){ .total = L.users, .make = login_make,
			       .live_cap = 2 * b->o.concurrency };
	launch_more(b, &L.l);
	bench_run_until(b, login_done, b->o.timeout);
	warm_failed = L.l.failed;
	lat_free(&L.lat);
	double warm_s = secs(tw, now_ns());

	b->login_failures = 0;
	L.l = (struct launch){ .total = warm_failed == L.users ? 0 : n,
			       .make = login_make,
			       .live_cap = 2 * b->o.concurrency };
	cpu_mark(b, &c0);
	t0 = c0.t;
	L.t_last = t0;
	launch_more(b, &L.l);
	bench_run_until(b, login_done, b->o.timeout);
	cpu_mark(b, &c1);
	uint64_t t_end = c1.t;

	sum_begin(b, "login");
	sum_kv(b, "logins", "%u", n);
	sum_kv(b, "users", "%u", L.users);
	sum_kv(b, "concurrency", "%u", b->o.concurrency);
	sum_kv(b, "ok", "%u", L.l.online);
	sum_kv(b, "failed", "%u", L.l.failed + (L.l.total - L.l.online - L.l.failed));
	sum_kv(b, "logins_per_s", "%.1f", rate(L.l.online, t0, L.t_last));
	sum_kv(b, "p50_ms", "%.2f", lat_pct(&L.lat, 50));
	sum_kv(b, "p99_ms", "%.2f", lat_pct(&L.lat, 99));
	sum_kv(b, "elapsed_s", "%.2f", secs(t0, L.t_last));
	sum_kv(b, "closed_s", "%.2f", secs(t0, t_end));
	sum_kv(b, "warmup_s", "%.2f", warm_s);
	sum_kv(b, "warmup_failed", "%u", warm_failed);
	cpu_report(b, "", &c0, &c1);
	sum_kv(b, "pbkdf2_runs", "%u", scram_cache_misses(b));
	bool ok = L.l.online == n;
	sum_kv(b, "lost", "%u", n - L.l.online);
	sum_kv(b, "status", "%s", ok ? "ok" : "failed");
	sum_end(b, "login: %u/%u logins in %.2f s = %.0f logins/s, p50 %.2f ms, p99 %.2f ms "
		"(%u in flight, %u users)", L.l.online, n, secs(t0, L.t_last),
		rate(L.l.online, t0, L.t_last), lat_pct(&L.lat, 50), lat_pct(&L.lat, 99),
		b->o.concurrency, L.users);
	lat_free(&L.lat);
	return ok ? 0 : 1;
}

/* ---------------------------------------------------------------------
 * idle */

static struct {
	struct launch l;
	unsigned dropped;
	unsigned pings_sent, pongs;
	bool holding;
} I;

static void idle_online(struct bconn *c)
{
	I.l.online++;
	launch_more(c->b, &I.l);
}

static void idle_stanza(struct bconn *c, const struct stanza *st)
{
	char id[16];

	if (strcmp(st->name, "iq") == 0 && st_attr(st, "id", id, sizeof(id)) > 0 &&
	    strcmp(id, "idle") == 0 && is_type(st, "result"))
		I.pongs++;
}

static void idle_closed(struct bconn *c, const char *why)
{
	if (why == NULL)
		return;
	if (!c->was_online) {
		I.l.failed++;
		launch_more(c->b, &I.l);
	} else {
		I.dropped++;
	}
}

static const struct bconn_ops idle_ops = {
	.online = idle_online, .stanza = idle_stanza, .closed = idle_closed,
};

static struct bconn *idle_make(struct bench *b, unsigned i)
{
	struct bconn *c = bconn_new(b, b->o.user_offset + 1 + i, "idle",
				    GOAL_LOGIN, &idle_ops, NULL);
	c->presence = true;
	return c;
}

static bool idle_ramped(struct bench *b)
{
	return launch_finished(&I.l);
}

static bool idle_ponged(struct bench *b)
{
	return I.pongs + I.dropped >= I.pings_sent;
}

int scen_idle(struct bench *b)
{
	unsigned n = b->o.count ? b->o.count : 1000;
	long rss0, rss1, rss2, self0 = self_rss_kib();
	struct bench_cpu c0, c1;
	uint64_t t0, t1;

	rss0 = server_rss_kib(b);
	I.l = (struct launch){ .total = n, .make = idle_make };
	cpu_mark(b, &c0);
	t0 = c0.t;
	launch_more(b, &I.l);
	bench_run_until(b, idle_ramped, b->o.timeout);
	t1 = now_ns();
	cpu_mark(b, &c1);
	/* let the server finish what the logins started */
	bench_run_until(b, never, 2);
	rss1 = server_rss_kib(b);
	bench_run_until(b, never, b->o.hold);
	rss2 = server_rss_kib(b);

	/* everyone still there? ping a sample spread over the connections */
	unsigned online = I.l.online - I.dropped;
	unsigned sample = b->o.sample ? b->o.sample : (online < 1000 ? online : 1000);
	if (sample > online)
		sample = online;
	unsigned step = sample ? online / sample : 1, k = 0;
	for (struct bconn *c = b->conns; c != NULL && I.pings_sent < sample; c = c->next)
		if (c->state == BC_ONLINE && k++ % step == 0) {
			bconn_ping(c, "idle");
			I.pings_sent++;
		}
	bench_run_until(b, idle_ponged, 30);

	long self1 = self_rss_kib();
	bool have_rss = rss0 >= 0 && rss1 >= 0 && online > 0;
	double per_conn = have_rss ? (double)(rss1 - rss0) / online : 0;
	bool ok = online == n && I.dropped == 0 && I.pongs == I.pings_sent;

	sum_begin(b, "idle");
	sum_kv(b, "connections", "%u", n);
	sum_kv(b, "online", "%u", online);
	sum_kv(b, "failed", "%u", n - I.l.online);
	sum_kv(b, "dropped", "%u", I.dropped);
	sum_kv(b, "ping_sent", "%u", I.pings_sent);
	sum_kv(b, "ping_ok", "%u", I.pongs);
	sum_kv(b, "rss_before_kib", "%ld", rss0);
	sum_kv(b, "rss_after_kib", "%ld", rss1);
	sum_kv(b, "rss_held_kib", "%ld", rss2);
	if (have_rss)
		sum_kv(b, "kib_per_conn", "%.2f", per_conn);
	else
		sum_kv(b, "kib_per_conn", "na");
	sum_kv(b, "client_rss_kib", "%ld", self1 - self0);
	sum_kv(b, "ramp_s", "%.2f", secs(t0, t1));
	sum_kv(b, "ramp_logins_per_s", "%.1f", rate(I.l.online, t0, t1));
	cpu_report(b, "ramp_", &c0, &c1);
	sum_kv(b, "lost", "%u", n - online);
	sum_kv(b, "status", "%s", ok ? "ok" : "failed");
	if (have_rss)
		sum_end(b, "idle: %u/%u connections online after %.0f s, %u/%u pings answered; "
			"server RSS %ld -> %ld KiB = %.1f KiB per connection", online, n,
			b->o.hold, I.pongs, I.pings_sent, rss0, rss1, per_conn);
	else
		sum_end(b, "idle: %u/%u connections online after %.0f s, %u/%u pings answered "
			"(no --server-pid: no RSS)", online, n, b->o.hold, I.pongs, I.pings_sent);
	close_all(b);
	return ok ? 0 : 1;
}

/* ---------------------------------------------------------------------
 * chat */

struct pair {
	unsigned idx;
	struct bconn *snd, *rcv;
	unsigned sent, delivered, errors, dup;
	uint8_t *seen;        /* one bit per message */
	bool stopped;
};

static struct {
	struct launch l;
	struct pair *pairs;
	unsigned npairs, window, per_pair;
	struct latency lat;
	uint64_t t0, t_stop, t_last;
	unsigned stale, in_flight;
	bool sending;
	char *pad;
} C;

static void chat_send_one(struct bench *b, struct pair *p)
{
	char to[80];

	user_name(b, p->rcv->user, to, sizeof(to));
	bconn_sendf(p->snd, "<message to='%s@%s' type='chat' id='c%u'><body>%010" PRIx64
		    " %u %u %" PRIu64 "%s</body></message>", to, b->o.domain, p->sent,
		    b->run_id, p->idx, p->sent, now_ns(), C.pad);
	p->sent++;
	C.in_flight++;
}

static void chat_refill(struct bench *b, struct pair *p)
{
	if (!C.sending || p->stopped)
		return;
	if (now_ns() >= C.t_stop) {
		C.sending = false;
		return;
	}
	while (p->sent < C.per_pair &&
	       p->sent - p->delivered - p->errors < C.window)
		chat_send_one(b, p);
}

static void chat_stanza(struct bconn *c, const struct stanza *st)
{
	struct pair *p = c->ud;
	char body[128];
	const char *r;

	if (strcmp(st->name, "message") != 0 || p == NULL)
		return;
	if (c == p->snd) {
		if (is_type(st, "error")) {
			char cond[48];
			st_error_condition(st, cond, sizeof(cond));
			p->errors++;
			C.in_flight--;
			bench_note_error(c->b, "message error <%s/>", cond);
			chat_refill(c->b, p);
		}
		return;
	}
	if (st_text(st, "body", body, sizeof(body)) < 0)
		return;
	if (parse_hex(body, &r) != c->b->run_id) {
		C.stale++;
		return;
	}
	unsigned pi = (unsigned)parse_dec(r, &r);
	unsigned seq = (unsigned)parse_dec(r, &r);
	uint64_t ts = parse_dec(r, &r);
	if (pi != p->idx || seq >= p->sent) {
		C.stale++;
		return;
	}
	if (p->seen[seq / 8] & (1u << (seq % 8))) {
		p->dup++;
		return;
	}
	p->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
	p->delivered++;
	C.in_flight--;
	uint64_t now = now_ns();
	lat_add(&C.lat, now - ts);
	C.t_last = now;
	chat_refill(c->b, p);
}

static void chat_online(struct bconn *c)
{
	C.l.online++;
	launch_more(c->b, &C.l);
}

static void chat_closed(struct bconn *c, const char *why)
{
	struct pair *p = c->ud;

	if (why != NULL && !c->was_online) {
		C.l.failed++;
		launch_more(c->b, &C.l);
	}
	if (p != NULL) {
		/* the pair is gone: what is in flight is lost */
		p->stopped = true;
		if (p->snd == c)
			p->snd = NULL;
		if (p->rcv == c)
			p->rcv = NULL;
	}
}

static const struct bconn_ops chat_ops = {
	.online = chat_online, .stanza = chat_stanza, .closed = chat_closed,
};

static struct bconn *chat_make(struct bench *b, unsigned i)
{
	struct pair *p = &C.pairs[i / 2];
	struct bconn *c = bconn_new(b, b->o.user_offset + 1 + i, "chat", GOAL_LOGIN,
				    &chat_ops, p);

	c->presence = true;
	if (c->state == BC_DEAD) {
		p->stopped = true;
		return c;
	}
	if (i % 2 == 0)
		p->snd = c;
	else
		p->rcv = c;
	return c;
}

static bool chat_logged_in(struct bench *b)
{
	return launch_finished(&C.l);
}

static bool chat_drained(struct bench *b)
{
	bool all_sent = true;

	for (unsigned i = 0; i < C.npairs; i++) {
		struct pair *p = &C.pairs[i];
		if (p->stopped)
			continue;
		if (p->delivered + p->errors < p->sent)
			return false;
		if (C.sending && p->sent < C.per_pair)
			all_sent = false;
	}
	return all_sent;
}

static bool chat_time_up(struct bench *b)
{
	if (C.sending && now_ns() >= C.t_stop)
		C.sending = false;
	return !C.sending || chat_drained(b);
}

/* Runs P pairs through W-message windows; shared with mam's fill. */
static int chat_run(struct bench *b, unsigned npairs, unsigned window,
		    unsigned per_pair, double duration, bool report)
{
	struct bench_cpu c0, c1;

	C.npairs = npairs;
	C.window = window;
	C.per_pair = per_pair;
	C.pad = padding(b);
	C.pairs = calloc(npairs, sizeof(*C.pairs));
	if (C.pairs == NULL)
		abort();
	for (unsigned i = 0; i < npairs; i++) {
		C.pairs[i].idx = i;
		C.pairs[i].seen = calloc(per_pair / 8 + 1, 1);
		if (C.pairs[i].seen == NULL)
			abort();
	}
	C.l = (struct launch){ .total = 2 * npairs, .make = chat_make };
	launch_more(b, &C.l);
	bench_run_until(b, chat_logged_in, b->o.timeout);
	/* messages stored for these users by an earlier run arrive now */
	bench_run_until(b, never, 0.5);
	unsigned live = 0;
	for (unsigned i = 0; i < npairs; i++) {
		struct pair *p = &C.pairs[i];
		if (p->snd == NULL || p->rcv == NULL || p->snd->state != BC_ONLINE ||
		    p->rcv->state != BC_ONLINE)
			p->stopped = true;
		else
			live++;
	}

	cpu_mark(b, &c0);
	C.t0 = C.t_last = c0.t;
	C.t_stop = C.t0 + (uint64_t)(duration * 1e9);
	C.sending = true;
	for (unsigned i = 0; i < npairs; i++)
		chat_refill(b, &C.pairs[i]);
	bench_run_until(b, chat_time_up, duration + 1);
	C.sending = false;
	/* drain: whatever is in flight may still arrive */
	bench_run_until(b, chat_drained, 10);
	cpu_mark(b, &c1);

	unsigned sent = 0, delivered = 0, errors = 0, dup = 0;
	for (unsigned i = 0; i < npairs; i++) {
		sent += C.pairs[i].sent;
		delivered += C.pairs[i].delivered;
		errors += C.pairs[i].errors;
		dup += C.pairs[i].dup;
	}
	unsigned lost = sent - delivered - errors;
	bool ok = live == npairs && lost == 0 && dup == 0 && errors == 0 && sent > 0;
	if (!report)
		return ok ? 0 : 1;
	/* the rate covers the time until the last delivery, not the drain */
	c1.t = C.t_last > C.t0 ? C.t_last : c1.t;

	sum_begin(b, "chat");
	sum_kv(b, "pairs", "%u", npairs);
	sum_kv(b, "pairs_online", "%u", live);
	sum_kv(b, "window", "%u", window);
	sum_kv(b, "body_bytes", "%u", 30 + b->o.body_size);
	sum_kv(b, "sent", "%u", sent);
	sum_kv(b, "delivered", "%u", delivered);
	sum_kv(b, "lost", "%u", lost);
	sum_kv(b, "dup", "%u", dup);
	sum_kv(b, "errors", "%u", errors);
	sum_kv(b, "stale", "%u", C.stale);
	sum_kv(b, "msgs_per_s", "%.0f", rate(delivered, C.t0, C.t_last));
	sum_kv(b, "p50_ms", "%.2f", lat_pct(&C.lat, 50));
	sum_kv(b, "p99_ms", "%.2f", lat_pct(&C.lat, 99));
	sum_kv(b, "elapsed_s", "%.2f", secs(C.t0, C.t_last));
	cpu_report(b, "", &c0, &c1);
	sum_kv(b, "status", "%s", ok ? "ok" : "failed");
	sum_end(b, "chat: %u messages delivered in %.2f s = %.0f msgs/s over %u pairs "
		"(window %u), p50 %.2f ms, p99 %.2f ms; lost %u, duplicated %u, errors %u",
		delivered, secs(C.t0, C.t_last), rate(delivered, C.t0, C.t_last),
		live, window, lat_pct(&C.lat, 50), lat_pct(&C.lat, 99), lost, dup, errors);
	return ok ? 0 : 1;
}

static void chat_free(void)
{
	for (unsigned i = 0; i < C.npairs; i++)
		free(C.pairs[i].seen);
	free(C.pairs);
	free(C.pad);
	lat_free(&C.lat);
	memset(&C, 0, sizeof(C));
}

int scen_chat(struct bench *b)
{
	unsigned pairs = b->o.pairs ? b->o.pairs : 100;
	unsigned window = b->o.window ? b->o.window : 10;
	unsigned per_pair = b->o.messages ? b->o.messages : 1000;
	int rc = chat_run(b, pairs, window, per_pair, b->o.duration, true);

	close_all(b);
	chat_free();
	return rc;
}

/* ---------------------------------------------------------------------
 * offline */

struct osender {
	struct bconn *c;
	unsigned next;     /* next message number (j = idx + k*S) */
	unsigned batch_id;
	bool waiting, done;
};

static struct {
	struct launch l;
	unsigned m, k, s, batch;
	struct osender *snd;
	unsigned *expected, *got_per;   /* per recipient */
	uint8_t *seen;
	unsigned errors, deposited_done, got, dup, delayed, misrouted, stale;
	char condition[48];
	uint64_t t_last;
	bool retrieving;
	char *pad;
} O;

static void off_send_batch(struct bench *b, struct osender *s)
{
	char to[80], id[24];
	unsigned n = 0;

	while (s->next < O.m && n < O.batch) {
		unsigned j = s->next;
		user_name(b, b->o.user_offset + O.s + 1 + j % O.k, to, sizeof(to));
		bconn_sendf(s->c, "<message to='%s@%s' type='chat' id='o%u'><body>%010" PRIx64
			    " %u %" PRIu64 "%s</body></message>", to, b->o.domain, j,
			    b->run_id, j, now_ns(), O.pad);
		s->next += O.s;
		n++;
	}
	snprintf(id, sizeof(id), "d%u", s->batch_id++);
	bconn_ping(s->c, id);
	s->waiting = true;
}

static void off_stanza(struct bconn *c, const struct stanza *st)
{
	char buf[128];
	const char *r;

	if (!O.retrieving) {   /* a sender */
		struct osender *s = c->ud;
		if (strcmp(st->name, "iq") == 0 && st_attr(st, "id", buf, sizeof(buf)) > 0 &&
		    buf[0] == 'd') {
			s->waiting = false;
			if (s->next < O.m) {
				off_send_batch(c->b, s);
			} else {
				s->done = true;
				O.deposited_done++;
				O.t_last = now_ns();
			}
			return;
		}
		if (strcmp(st->name, "message") == 0 && is_type(st, "error") &&
		    st_attr(st, "id", buf, sizeof(buf)) > 1 && buf[0] == 'o') {
			unsigned j = (unsigned)strtoul(buf + 1, NULL, 10);
			if (j < O.m) {
				O.errors++;
				O.expected[j % O.k]--;
			}
			if (O.condition[0] == '\0')
				st_error_condition(st, O.condition, sizeof(O.condition));
		}
		return;
	}
	/* a recipient */
	if (strcmp(st->name, "message") != 0 ||
	    st_text(st, "body", buf, sizeof(buf)) < 0)
		return;
	if (parse_hex(buf, &r) != c->b->run_id) {
		O.stale++;
		return;
	}
	unsigned j = (unsigned)parse_dec(r, &r);
	unsigned rcpt = (unsigned)(uintptr_t)c->ud;
	if (j >= O.m) {
		O.stale++;
		return;
	}
	if (j % O.k != rcpt)
		O.misrouted++;
	if (O.seen[j / 8] & (1u << (j % 8))) {
		O.dup++;
		return;
	}
	O.seen[j / 8] |= (uint8_t)(1u << (j % 8));
	O.got++;
	O.got_per[rcpt]++;
	if (st_find(st, "delay") != NULL)
		O.delayed++;
	O.t_last = now_ns();
}

static void off_online(struct bconn *c)
{
	O.l.online++;
	launch_more(c->b, &O.l);
}

static void off_closed(struct bconn *c, const char *why)
{
	if (why != NULL && !c->was_online) {
		O.l.failed++;
		launch_more(c->b, &O.l);
	}
	if (!O.retrieving && c->ud != NULL) {
		struct osender *s = c->ud;
		if (!s->done) {
			s->done = true;
			O.deposited_done++;
		}
		s->c = NULL;
	}
}

static const struct bconn_ops off_ops = {
	.online = off_online, .stanza = off_stanza, .closed = off_closed,
};

static struct bconn *off_make_sender(struct bench *b, unsigned i)
{
	struct bconn *c = bconn_new(b, b->o.user_offset + 1 + i, "offs",
				    GOAL_LOGIN, &off_ops, &O.snd[i]);

	c->presence = true;
	if (c->state != BC_DEAD)
		O.snd[i].c = c;
	return c;
}

static struct bconn *off_make_rcpt(struct bench *b, unsigned i)
{
	struct bconn *c = bconn_new(b, b->o.user_offset + O.s + 1 + i, "offr",
				    GOAL_LOGIN, &off_ops, (void *)(uintptr_t)i);

	c->presence = true;   /* the initial presence triggers the flood */
	return c;
}

static bool off_logged_in(struct bench *b)
{
	return launch_finished(&O.l);
}

static bool off_deposited(struct bench *b)
{
	return O.deposited_done >= O.s;
}

static bool off_retrieved(struct bench *b)
{
	return launch_finished(&O.l) && O.got >= O.m - O.errors;
}

int scen_offline(struct bench *b)
{
	struct bench_cpu c0, c1, c2, c3;

	O.m = b->o.count ? b->o.count : 10000;
	O.k = b->o.users ? b->o.users : 100;
	O.s = b->o.senders ? b->o.senders : (O.k < 10 ? O.k : 10);
	O.batch = b->o.window ? b->o.window : 100;
	if (O.k == 0 || O.s == 0) {
		fprintf(stderr, "roost-bench: offline needs --users and --senders >= 1\n");
		return 2;
	}
	O.pad = padding(b);
	O.snd = calloc(O.s, sizeof(*O.snd));
	O.expected = calloc(O.k, sizeof(unsigned));
	O.got_per = calloc(O.k, sizeof(unsigned));
	O.seen = calloc(O.m / 8 + 1, 1);
	if (!O.snd || !O.expected || !O.got_per || !O.seen)
		abort();
	for (unsigned j = 0; j < O.m; j++)
		O.expected[j % O.k]++;
	for (unsigned i = 0; i < O.s; i++)
		O.snd[i].next = i;

	/* senders online */
	O.l = (struct launch){ .total = O.s, .make = off_make_sender };
	launch_more(b, &O.l);
	bench_run_until(b, off_logged_in, b->o.timeout);
	unsigned senders_ok = O.l.online;

	/* deposit */
	cpu_mark(b, &c0);
	O.t_last = c0.t;
	for (unsigned i = 0; i < O.s; i++) {
		if (O.snd[i].c != NULL && O.snd[i].c->state == BC_ONLINE)
			off_send_batch(b, &O.snd[i]);
		else if (!O.snd[i].done) {
			O.snd[i].done = true;
			O.deposited_done++;
		}
	}
	bench_run_until(b, off_deposited, b->o.timeout);
	uint64_t t_ack = O.t_last;
	/* stored, not only acknowledged */
	uint64_t t_dep = server_quiet_since(b, t_ack, 60);
	cpu_mark(b, &c1);
	unsigned sent = 0;
	for (unsigned i = 0; i < O.s; i++)
		for (unsigned j = i; j < O.snd[i].next && j < O.m; j += O.s)
			sent++;
	/* late errors for the last batch may still be on their way */
	bench_run_until(b, never, 0.3);
	close_all(b);

	/* retrieve */
	O.retrieving = true;
	O.l = (struct launch){ .total = O.k, .make = off_make_rcpt };
	cpu_mark(b, &c2);
	O.t_last = c2.t;
	launch_more(b, &O.l);
	bench_run_until(b, off_retrieved, b->o.timeout);
	uint64_t t_ret = O.t_last;
	cpu_mark(b, &c3);
	/* a duplicate would come right behind */
	bench_run_until(b, never, 0.5);

	unsigned accepted = sent - O.errors;
	unsigned lost = accepted > O.got ? accepted - O.got : 0;
	const char *status;
	int rc;
	if (O.errors == sent && sent > 0 &&
	    (strcmp(O.condition, "service-unavailable") == 0 ||
	     strcmp(O.condition, "feature-not-implemented") == 0)) {
		status = "unsupported";
		rc = 3;
	} else if (lost || O.dup || O.errors || sent < O.m || O.misrouted ||
		   O.l.failed || senders_ok < O.s) {
		status = "failed";
		rc = 1;
	} else {
		status = "ok";
		rc = 0;
	}
	c1.t = t_dep > c0.t ? t_dep : c1.t;
	c3.t = t_ret > c2.t ? t_ret : c3.t;

	sum_begin(b, "offline");
	sum_kv(b, "messages", "%u", O.m);
	sum_kv(b, "recipients", "%u", O.k);
	sum_kv(b, "senders", "%u", O.s);
	sum_kv(b, "batch", "%u", O.batch);
	sum_kv(b, "sent", "%u", sent);
	sum_kv(b, "errors", "%u", O.errors);
	sum_kv(b, "error_condition", "%s", O.condition[0] ? O.condition : "none");
	sum_kv(b, "deposits_per_s", "%.0f", rate(accepted, c0.t, t_dep));
	sum_kv(b, "deposit_s", "%.2f", secs(c0.t, t_dep));
	sum_kv(b, "deposit_acked_s", "%.2f", secs(c0.t, t_ack));
	cpu_report(b, "deposit_", &c0, &c1);
	sum_kv(b, "retrieved", "%u", O.got);
	sum_kv(b, "lost", "%u", lost);
	sum_kv(b, "dup", "%u", O.dup);
	sum_kv(b, "delayed", "%u", O.delayed);
	sum_kv(b, "misrouted", "%u", O.misrouted);
	sum_kv(b, "stale", "%u", O.stale);
	sum_kv(b, "retrievals_per_s", "%.0f", rate(O.got, c2.t, t_ret));
	sum_kv(b, "retrieve_s", "%.2f", secs(c2.t, t_ret));
	cpu_report(b, "retrieve_", &c2, &c3);
	sum_kv(b, "status", "%s", status);
	if (rc == 3)
		sum_end(b, "offline: unsupported: all %u messages to offline users were "
			"answered <%s/>", sent, O.condition);
	else
		sum_end(b, "offline: %u messages to %u offline users: %.0f deposits/s; "
			"retrieved %u at %.0f/s; lost %u, duplicated %u, errors %u%s%s%s",
			sent, O.k, rate(accepted, c0.t, t_dep), O.got,
			rate(O.got, c2.t, t_ret), lost, O.dup, O.errors,
			O.errors ? " (<" : "", O.errors ? O.condition : "",
			O.errors ? "/>)" : "");
	close_all(b);
	free(O.pad);
	free(O.snd);
	free(O.expected);
	free(O.got_per);
	free(O.seen);
	memset(&O, 0, sizeof(O));
	return rc;
}

/* ---------------------------------------------------------------------
 * mam: fill an archive through chat pairs, then page through it */

struct pager {
	struct bconn *c;
	unsigned idx, pages, got, dup, stale;
	uint8_t *seen;
	char last[128];
	bool done, failed;
	uint64_t t_done;
};

static struct {
	struct pager *pg;
	unsigned n, per, page;
	char start[32];
	char condition[48];
	bool probing, probe_answered, probe_error;
	struct latency page_lat;
	uint64_t t_page;
} M;

static void mam_query(struct bench *b, struct pager *p, unsigned max)
{
	char with[80];

	user_name(b, b->o.user_offset + 1 + 2 * p->idx, with, sizeof(with));
	bconn_sendf(p->c, "<iq type='set' id='m%u'><query xmlns='" NS_MAM "' queryid='q%u'>"
		    "<x xmlns='jabber:x:data' type='submit'>"
		    "<field var='FORM_TYPE' type='hidden'><value>" NS_MAM "</value></field>"
		    "<field var='with'><value>%s@%s</value></field>"
		    "<field var='start'><value>%s</value></field></x>"
		    "<set xmlns='" NS_RSM "'><max>%u</max>%s%s%s</set></query></iq>",
		    p->pages, p->pages, with, b->o.domain, M.start, max,
		    p->last[0] ? "<after>" : "", p->last, p->last[0] ? "</after>" : "");
	M.t_page = now_ns();
}

static void mam_stanza(struct bconn *c, const struct stanza *st)
{
	struct pair *pair = c->ud;
	struct pager *p = pair ? &M.pg[pair->idx] : NULL;
	char buf[256];
	const char *r;

	if (M.probing) {
		if (strcmp(st->name, "iq") == 0 && st_attr(st, "id", buf, sizeof(buf)) > 0 &&
		    buf[0] == 'm') {
			M.probe_answered = true;
			if (!is_type(st, "result")) {
				M.probe_error = true;
				st_error_condition(st, M.condition, sizeof(M.condition));
			}
		}
		return;
	}
	if (p == NULL)
		return;
	if (strcmp(st->name, "message") == 0) {
		if (st_find(st, "result") == NULL || st_text(st, "body", buf, sizeof(buf)) < 0)
			return;
		if (parse_hex(buf, &r) != c->b->run_id) {
			p->stale++;
			return;
		}
		unsigned pi = (unsigned)parse_dec(r, &r);
		unsigned seq = (unsigned)parse_dec(r, &r);
		if (pi != p->idx || seq >= M.per) {
			p->stale++;
			return;
		}
		if (p->seen[seq / 8] & (1u << (seq % 8))) {
			p->dup++;
			return;
		}
		p->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
		p->got++;
		return;
	}
	if (strcmp(st->name, "iq") != 0 || st_attr(st, "id", buf, sizeof(buf)) < 0 ||
	    buf[0] != 'm')
		return;
	lat_add(&M.page_lat, now_ns() - M.t_page);
	p->pages++;
	if (!is_type(st, "result")) {
		p->failed = p->done = true;
		p->t_done = now_ns();
		st_error_condition(st, M.condition, sizeof(M.condition));
		return;
	}
	char complete[8] = "";
	st_elem_attr(st, "fin", "complete", complete, sizeof(complete));
	if (strcmp(complete, "true") == 0 ||
	    st_text(st, "last", p->last, sizeof(p->last)) <= 0 || p->pages > 1000000) {
		p->done = true;
		p->t_done = now_ns();
		return;
	}
	mam_query(c->b, p, M.page);
}

static bool mam_probed(struct bench *b)
{
	return M.probe_answered;
}

static bool mam_paged(struct bench *b)
{
	for (unsigned i = 0; i < M.n; i++)
		if (!M.pg[i].done)
			return false;
	return true;
}

int scen_mam(struct bench *b)
{
	unsigned per = b->o.count ? b->o.count : 1000;
	unsigned pairs = b->o.pairs ? b->o.pairs : 1;
	unsigned window = b->o.window ? b->o.window : 50;
	struct bench_cpu c0, c1;
	time_t t;
	struct tm tm;
	int rc;

	M.n = pairs;
	M.per = per;
	M.page = b->o.page;
	t = time(NULL) - 2;
	gmtime_r(&t, &tm);
	strftime(M.start, sizeof(M.start), "%Y-%m-%dT%H:%M:%SZ", &tm);
	M.pg = calloc(pairs, sizeof(*M.pg));
	if (M.pg == NULL)
		abort();

	/* fill: the chat machinery, receivers stay online */
	int fill_rc = chat_run(b, pairs, window, per, b->o.timeout, false);
	unsigned filled = 0;
	for (unsigned i = 0; i < pairs; i++)
		filled += C.pairs[i].delivered;
	double fill_s = secs(C.t0, C.t_last);

	/* Probe with the first receiver: a server without MAM answers with
	 * an error, and the scenario reports "unsupported". */
	struct bconn *probe = C.pairs[0].rcv;
	if (probe == NULL || probe->state != BC_ONLINE) {
		sum_begin(b, "mam");
		sum_kv(b, "status", "failed");
		sum_end(b, "mam: could not log in the archive owners");
		close_all(b);
		chat_free();
		free(M.pg);
		return 1;
	}
	for (unsigned i = 0; i < pairs; i++) {
		M.pg[i].idx = i;
		M.pg[i].c = C.pairs[i].rcv;
		M.pg[i].seen = calloc(per / 8 + 1, 1);
		if (M.pg[i].seen == NULL)
			abort();
		if (M.pg[i].c == NULL || M.pg[i].c->state != BC_ONLINE) {
			M.pg[i].done = M.pg[i].failed = true;
			continue;
		}
	}
	/* the receivers' stanzas now go to mam_stanza */
	static struct bconn_ops pager_ops;
	pager_ops = *probe->ops;
	pager_ops.stanza = mam_stanza;
	for (unsigned i = 0; i < pairs; i++)
		if (M.pg[i].c != NULL)
			M.pg[i].c->ops = &pager_ops;
	/* let asynchronous archive writes land */
	if (server_cpu_s(b) >= 0)
		server_quiet_since(b, now_ns(), 60);
	else
		bench_run_until(b, never, 1);
	M.probing = true;
	struct pager *p0 = &M.pg[0];
	mam_query(b, p0, 1);
	bench_run_until(b, mam_probed, 30);
	M.probing = false;
	lat_free(&M.page_lat);

	if (!M.probe_answered || M.probe_error) {
		bool unsup = M.probe_error &&
			(strcmp(M.condition, "service-unavailable") == 0 ||
			 strcmp(M.condition, "feature-not-implemented") == 0);
		sum_begin(b, "mam");
		sum_kv(b, "archive", "%u", per);
		sum_kv(b, "filled", "%u", filled);
		sum_kv(b, "error_condition", "%s", M.condition[0] ? M.condition : "timeout");
		sum_kv(b, "status", "%s", unsup ? "unsupported" : "failed");
		sum_end(b, "mam: %s: the server answered the archive query with <%s/>",
			unsup ? "unsupported" : "failed",
			M.condition[0] ? M.condition : "no answer");
		rc = unsup ? 3 : 1;
		goto out;
	}

	cpu_mark(b, &c0);
	for (unsigned i = 0; i < pairs; i++)
		if (!M.pg[i].done)
			mam_query(b, &M.pg[i], M.page);
	bench_run_until(b, mam_paged, b->o.timeout);
	cpu_mark(b, &c1);
	uint64_t t_end = c0.t;
	unsigned got = 0, dup = 0, pages = 0, failed = 0, stale = 0;
	for (unsigned i = 0; i < pairs; i++) {
		got += M.pg[i].got;
		dup += M.pg[i].dup;
		pages += M.pg[i].pages;
		stale += M.pg[i].stale;
		failed += M.pg[i].failed || !M.pg[i].done;
		if (M.pg[i].t_done > t_end)
			t_end = M.pg[i].t_done;
	}
	c1.t = t_end > c0.t ? t_end : c1.t;
	unsigned lost = filled > got ? filled - got : 0;
	bool ok = fill_rc == 0 && failed == 0 && lost == 0 && dup == 0;

	sum_begin(b, "mam");
	sum_kv(b, "archive", "%u", per);
	sum_kv(b, "pairs", "%u", pairs);
	sum_kv(b, "page", "%u", M.page);
	sum_kv(b, "filled", "%u", filled);
	sum_kv(b, "fill_msgs_per_s", "%.0f", fill_s > 0 ? filled / fill_s : 0);
	sum_kv(b, "retrieved", "%u", got);
	sum_kv(b, "pages", "%u", pages);
	sum_kv(b, "lost", "%u", lost);
	sum_kv(b, "dup", "%u", dup);
	sum_kv(b, "stale", "%u", stale);
	sum_kv(b, "msgs_per_s", "%.0f", rate(got, c0.t, t_end));
	sum_kv(b, "page_p50_ms", "%.2f", lat_pct(&M.page_lat, 50));
	sum_kv(b, "page_p99_ms", "%.2f", lat_pct(&M.page_lat, 99));
	sum_kv(b, "elapsed_s", "%.2f", secs(c0.t, t_end));
	cpu_report(b, "", &c0, &c1);
	if (M.condition[0])
		sum_kv(b, "error_condition", "%s", M.condition);
	sum_kv(b, "status", "%s", ok ? "ok" : "failed");
	sum_end(b, "mam: paged %u of %u archived messages in %u pages of %u in %.2f s = "
		"%.0f msgs/s; lost %u, duplicated %u", got, filled, pages, M.page,
		secs(c0.t, t_end), rate(got, c0.t, t_end), lost, dup);
	rc = ok ? 0 : 1;
out:
	close_all(b);
	for (unsigned i = 0; i < pairs; i++)
		free(M.pg[i].seen);
	free(M.pg);
	lat_free(&M.page_lat);
	memset(&M, 0, sizeof(M));
	chat_free();
	return rc;
}

/* ---------------------------------------------------------------------
 * register: create the bench users by XEP-0077 (servers that allow it) */

static struct {
	struct launch l;
	unsigned created, existed, refused, not_offered;
	char condition[48];
} R;

static void reg_stanza(struct bconn *c, const struct stanza *st)
{
	char cond[48];

	if (is_type(st, "result")) {
		R.created++;
	} else {
		st_error_condition(st, cond, sizeof(cond));
		if (strcmp(cond, "conflict") == 0) {
			R.existed++;
		} else {
			R.refused++;
			if (R.condition[0] == '\0')
				snprintf(R.condition, sizeof(R.condition), "%s", cond);
		}
	}
	R.l.online++;
	c->was_online = true;   /* finished: not a failed login */
	bconn_close(c, true);
	launch_more(c->b, &R.l);
}

static void reg_closed(struct bconn *c, const char *why)
{
	if (why != NULL && strstr(why, "XEP-0077") != NULL)
		R.not_offered++;
	if (why != NULL && !c->was_online)
		R.l.failed++;
	launch_more(c->b, &R.l);
}

static const struct bconn_ops reg_ops = {
	.stanza = reg_stanza, .closed = reg_closed,
};

static struct bconn *reg_make(struct bench *b, unsigned i)
{
	return bconn_new(b, b->o.user_offset + 1 + i, "reg", GOAL_REGISTER,
			 &reg_ops, NULL);
}

static bool reg_done(struct bench *b)
{
	return launch_finished(&R.l) && b->nconns == 0;
}

int scen_register(struct bench *b)
{
	unsigned n = b->o.count ? b->o.count : 100;
	uint64_t t0 = now_ns();

	R.l = (struct launch){ .total = n, .make = reg_make,
			       .live_cap = 2 * b->o.concurrency };
	launch_more(b, &R.l);
	bench_run_until(b, reg_done, b->o.timeout);
	uint64_t t1 = now_ns();
	bool unsup = R.created == 0 && R.existed == 0 &&
		(R.not_offered == n ||
		 (R.refused > 0 &&
		  (strcmp(R.condition, "service-unavailable") == 0 ||
		   strcmp(R.condition, "feature-not-implemented") == 0 ||
		   strcmp(R.condition, "not-allowed") == 0)));
	bool ok = R.created + R.existed == n;

	sum_begin(b, "register");
	sum_kv(b, "accounts", "%u", n);
	sum_kv(b, "created", "%u", R.created);
	sum_kv(b, "existed", "%u", R.existed);
	sum_kv(b, "refused", "%u", R.refused);
	sum_kv(b, "failed", "%u", R.l.failed);
	sum_kv(b, "per_s", "%.1f", rate(R.created + R.existed, t0, t1));
	if (R.condition[0])
		sum_kv(b, "error_condition", "%s", R.condition);
	sum_kv(b, "status", "%s", ok ? "ok" : unsup ? "unsupported" : "failed");
	sum_end(b, "register: %u created, %u existed, %u refused%s%s%s, %u failed, in %.2f s",
		R.created, R.existed, R.refused, R.condition[0] ? " (<" : "",
		R.condition, R.condition[0] ? "/>)" : "", R.l.failed, secs(t0, t1));
	return ok ? 0 : unsup ? 3 : 1;
}

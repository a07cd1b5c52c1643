/* roost-bench: a load generator for XMPP servers (issue 5).
 *
 * One process, one libevent loop, many client connections. A connection
 * (struct bconn) knows how to get online: TCP (from one of several
 * loopback source addresses), STARTTLS or direct TLS, SCRAM-SHA-1/-256,
 * resource binding, optional initial presence. Scenarios (bench_scen.c)
 * drive connections through callbacks and phases; roost-bench.c parses
 * options and prints the summary lines.
 *
 * Nothing here blocks, except the scenario drivers' calls to
 * bench_run_until(), which run the loop until a condition or a deadline. */
#ifndef ROOST_BENCH_H
#define ROOST_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#define BENCH_MAX_STANZA (1u << 20)  /* a bigger stanza is a protocol error */
#define BENCH_MAX_SOURCES 64

struct bench;
struct bconn;

/* A complete top-level element received on a stream, as raw bytes (not
 * NUL-terminated; valid only during the callback). name is the local
 * name of the top element ("message", "iq", "features", ...). */
struct stanza {
	const char *p;
	size_t len;
	char name[32];
};

enum bconn_state {
	BC_CONNECTING,
	BC_FEATURES,        /* waiting for <stream:features> before TLS */
	BC_PROCEED,         /* <starttls/> sent */
	BC_HANDSHAKE,       /* TLS handshake in progress */
	BC_FEATURES_TLS,    /* features on the encrypted stream */
	BC_REGISTER,        /* XEP-0077 request sent (register mode) */
	BC_SASL_CHALLENGE,  /* <auth/> sent */
	BC_SASL_SUCCESS,    /* <response/> sent */
	BC_FEATURES_AUTH,   /* features after authentication */
	BC_BIND,
	BC_SESSION,
	BC_READY_PING,      /* presence + ping sent: online at the pong */
	BC_ONLINE,
	BC_CLOSING,         /* </stream:stream> sent */
	BC_DEAD,
};

enum bconn_goal {
	GOAL_LOGIN,     /* authenticate and bind */
	GOAL_REGISTER,  /* XEP-0077 in-band registration, then close */
};

struct bconn_ops {
	/* Online (bound, presence sent if asked, first ping answered). */
	void (*online)(struct bconn *c);
	/* Any stanza once bound that the login machinery does not eat. */
	void (*stanza)(struct bconn *c, const struct stanza *st);
	/* The connection is gone. why is NULL after a clean close we asked
	 * for, else the reason (a failed login, an error, EOF). Called once;
	 * the connection is freed after the callback, from the loop. */
	void (*closed)(struct bconn *c, const char *why);
};

struct bconn {
	struct bench *b;
	const struct bconn_ops *ops;
	void *ud;            /* the scenario's */
	unsigned user;       /* user number (1-based) */
	char resource[24];
	enum bconn_goal goal;
	bool presence;       /* send initial presence when bound */
	bool direct_tls;
	enum bconn_state state;
	int fd;
	struct event *ev;    /* edge-triggered, read and write */
	SSL *ssl;            /* once TLS has started */
	char *out;           /* queued output */
	size_t out_len, out_cap, out_off;
	bool want_write;     /* the socket was full: wait for EV_WRITE */
	bool flush_queued;
	struct bconn *flush_next;
	uint64_t t_start;    /* ns, when connect() was called */
	uint64_t deadline;   /* ns; 0 = none. Checked by the tick. */
	/* the stanza splitter */
	char *in;
	size_t in_len, in_cap;
	size_t scan;         /* next byte to look at */
	size_t tag_start;    /* '<' of the tag being scanned */
	size_t elem_start;   /* '<' of the current depth-1 element */
	int depth;
	bool in_tag;
	char quote;
	/* SCRAM client state */
	struct scram_client *scram;
	struct bconn *next, *prev;   /* all live connections */
	struct bconn *reap_next;
	bool closed_reported;
	bool was_online;     /* reached BC_ONLINE (or finished registering) */
	bool gen_reset;      /* the parser was reset inside a callback */
	bool need_session;   /* RFC 3921 session required by the server */
	unsigned n_in;       /* scenario counters */
	unsigned n_out;
};

struct bench_opts {
	const char *scenario;
	const char *host;        /* 127.x.y.z */
	int port;
	bool direct_tls;
	const char *domain;
	const char *prefix;      /* user names: PREFIX1, PREFIX2, ... */
	const char *password;
	unsigned user_offset;    /* scenario users start at PREFIX(offset+1) */
	const char *mech;        /* SCRAM-SHA-1 / SCRAM-SHA-256 */
	int sources;             /* source addresses 127.0.0.2 .. */
	const char *server_name; /* label in the summary */
	int server_pid;
	double timeout;          /* seconds, whole scenario bound */
	double duration;         /* seconds, chat send phase bound */
	unsigned concurrency;    /* logins in flight */
	const char *scram_cache; /* file to keep SaltedPassword between runs */
	int verbose;             /* 1: failures; 2: every stanza too */
	/* sizes */
	unsigned count;          /* login: N; idle: C; offline: M; mam: A; register: N */
	unsigned users;          /* login: distinct users; offline: K */
	unsigned pairs;          /* chat, mam */
	unsigned window;         /* chat window; offline/mam batch */
	unsigned messages;       /* chat: per pair */
	unsigned senders;        /* offline */
	unsigned page;           /* mam page size */
	unsigned sample;         /* idle: pings at the end */
	double hold;             /* idle: seconds to hold */
	unsigned body_size;      /* extra body bytes */
};

/* Per-scenario counters that every summary shares. */
struct bench_cpu {
	struct rusage ru;
	double server_s;       /* server utime+stime, seconds; <0 unknown */
	uint64_t t;
};

struct latency {
	uint32_t *us;          /* microseconds */
	size_t n, cap;
};

struct bench {
	struct bench_opts o;
	struct event_base *base;
	SSL_CTX *ssl_ctx;
	struct sockaddr_storage *dst;
	int dst_len;
	unsigned next_source;
	int nsources;
	struct bconn *conns;
	size_t nconns;
	struct bconn *reap;
	struct event *reap_ev;
	struct event *flush_ev;
	struct bconn *flush;      /* connections with queued output */
	struct event *tick_ev;
	bool (*done)(struct bench *b);   /* bench_run_until's condition */
	bool stop;
	uint64_t run_id;               /* tags this run's message bodies */
	uint64_t conn_serial;
	unsigned login_failures;
	char first_error[160];
	/* SCRAM cache */
	struct scram_cache *cache;
	/* the summary line being built */
	char summary[2048];
	size_t summary_len;
};

/* time */
uint64_t now_ns(void);

/* bench core (roost-bench.c) */
void bench_note_error(struct bench *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void bench_log(struct bench *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Runs the loop until done(b) holds or `seconds` pass (or the global
 * timeout). Returns true if done(b) held. */
bool bench_run_until(struct bench *b, bool (*done)(struct bench *b),
		     double seconds);
/* Re-evaluates the current condition; scenario callbacks call it after
 * changing counters. */
void bench_poke(struct bench *b);
void cpu_mark(struct bench *b, struct bench_cpu *m);
/* Client and server CPU in percent of one core between two marks. */
void cpu_report(struct bench *b, const char *prefix,
		const struct bench_cpu *from, const struct bench_cpu *to);
long server_rss_kib(struct bench *b);
/* The server's utime+stime in seconds, or -1 without --server-pid. */
double server_cpu_s(struct bench *b);
long self_rss_kib(void);

void lat_add(struct latency *l, uint64_t ns);
/* p in [0, 100]; milliseconds. */
double lat_pct(struct latency *l, double p);
void lat_free(struct latency *l);

/* summary: key=value pairs appended to one line, then printed with a
 * human line. */
void sum_begin(struct bench *b, const char *scenario);
void sum_kv(struct bench *b, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void sum_end(struct bench *b, const char *human_fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* connections (bench_conn.c) */
struct bconn *bconn_new(struct bench *b, unsigned user, const char *resource,
			enum bconn_goal goal, const struct bconn_ops *ops,
			void *ud);
/* Appends raw XML to the output. */
void bconn_send(struct bconn *c, const char *xml, size_t len);
#define BCONN_SEND_LIT(c, lit) bconn_send((c), (lit), sizeof(lit) - 1)
void bconn_sendf(struct bconn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void bconn_ping(struct bconn *c, const char *id);
/* graceful: send </stream:stream> and wait (bounded) for the server's. */
void bconn_close(struct bconn *c, bool graceful);
/* JID pieces */
void user_name(struct bench *b, unsigned user, char *out, size_t cap);
void bconn_free_all(struct bench *b);
void bench_flush(struct bench *b);
void bench_pending_states(struct bench *b);
void bench_tick_conns(struct bench *b, uint64_t now);

/* stanza helpers (bench_conn.c): all bounded by the stanza */
/* Value of an attribute of the top element; returns length or -1. */
int st_attr(const struct stanza *st, const char *name, char *out, size_t cap);
/* Finds the first element whose local name is `name` (after the top
 * tag); returns a pointer to its '<' or NULL. */
const char *st_find(const struct stanza *st, const char *name);
/* Text content of the first `name` element (entities &amp; &lt; &gt;
 * &quot; &apos; decoded); returns length or -1. */
int st_text(const struct stanza *st, const char *name, char *out, size_t cap);
/* Attribute of the first `name` element; returns length or -1. */
int st_elem_attr(const struct stanza *st, const char *name, const char *attr,
		 char *out, size_t cap);
/* The first child element of <error> (the defined condition), or "". */
void st_error_condition(const struct stanza *st, char *out, size_t cap);

/* SCRAM (bench_scram.c) */
struct scram_client;
struct scram_client *scram_client_new(struct bench *b, bool sha256,
				      const char *user, const char *password);
void scram_client_free(struct scram_client *s);
/* base64 of client-first-message */
char *scram_client_first(struct scram_client *s);
/* challenge: base64 server-first; returns base64 client-final or NULL
 * with *error_r. */
char *scram_client_final(struct scram_client *s, const char *b64,
			 const char **error_r);
/* success data (base64 "v=..."); 0 if the server signature matches. */
int scram_client_verify(struct scram_client *s, const char *b64,
			const char **error_r);
void scram_cache_load(struct bench *b);
void scram_cache_save(struct bench *b);
void scram_cache_free(struct bench *b);
unsigned scram_cache_misses(struct bench *b);

/* scenarios (bench_scen.c); each returns the process exit status */
int scen_login(struct bench *b);
int scen_idle(struct bench *b);
int scen_chat(struct bench *b);
int scen_offline(struct bench *b);
int scen_mam(struct bench *b);
int scen_register(struct bench *b);

#endif

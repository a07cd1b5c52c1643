/* roostd: start-up, signals, shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "config.h"
#include "core/auth_throttle.h"
#include "core/module.h"
#include "core/session.h"
#include "net/addr_limit.h"
#include "net/listener.h"
#include "net/tls.h"
#include "seal/seal.h"
#include "seal/seal_keyfile.h"
#include "server.h"
#include "store/store.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/workq.h"
#include "util/xalloc.h"
#include "xmpp/c2s.h"
#include "xmpp/c2s_intake.h"
#include "xmpp/c2s_sm.h"

#define DEFAULT_CONFIG "/etc/roost/roost.conf"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: roostd [-c CONFIG] [-t]\n"
		"  -c CONFIG  configuration file (default " DEFAULT_CONFIG ")\n"
		"  -t         check the configuration and exit\n"
		"  -V         print the version and exit\n");
}

static int load_seal_keys(struct server *srv, const char *path, char **error_r)
{
	unsigned char key[SEAL_KEY_LEN];
	int ret;

	int made = seal_key_ensure(path, error_r);

	if (made < 0 || seal_key_load(path, key, error_r) != 0)
		return -1;
	if (made)
		log_info("created a new seal key in %s", path);
	srv->seal_keys = xcalloc(1, sizeof(*srv->seal_keys));
	ret = seal_keys_derive(key, srv->seal_keys);
	OPENSSL_cleanse(key, sizeof(key));
	if (ret != 0)
		*error_r = xstrdup("cannot derive the seal keys");
	return ret;
}

/* ---- privileges ------------------------------------------------------ */

/* Who to become after start-up: decided before anything is opened, so a
 * bad [server] user fails at once. */
struct run_as {
	bool drop;
	uid_t uid;
	gid_t gid;
	char *name;
};

static int plan_run_as(const struct config *cfg, struct run_as *ra,
		       char **error_r)
{
	struct passwd *pw;

	memset(ra, 0, sizeof(*ra));
	if (geteuid() != 0)
		return 0; /* nothing to drop: e.g. systemd's User= */
	errno = 0;
	pw = getpwnam(cfg->user);
	if (pw != NULL && pw->pw_uid != 0) {
		ra->drop = true;
		ra->uid = pw->pw_uid;
		ra->gid = pw->pw_gid;
		ra->name = xstrdup(pw->pw_name);
		return 0;
	}
	if (cfg->allow_root) {
		log_warn("running as root: [server] user '%s' %s and "
			 "allow_root = true", cfg->user,
			 pw == NULL ? "does not exist" : "is root");
		return 0;
	}
	if (pw == NULL)
		*error_r = xasprintf("started as root, and [server] user '%s' "
				     "does not exist: create that account, "
				     "name another unprivileged one, or (for "
				     "development only) set allow_root = true",
				     cfg->user);
	else
		*error_r = xasprintf("started as root with [server] user = %s: "
				     "roostd does not keep running as root "
				     "unless allow_root = true", cfg->user);
	return -1;
}

/* Files made while this is in force (the database, its WAL) belong to
 * the account roostd will run as, and the data_dir's permissions are
 * checked as that account: a data_dir it cannot use fails now, not at
 * the first write. */
static int become_effective(const struct run_as *ra, bool on)
{
	if (!ra->drop)
		return 0;
	if (on)
		return setegid(ra->gid) == 0 && seteuid(ra->uid) == 0 ? 0 : -1;
	return seteuid(0) == 0 && setegid(0) == 0 ? 0 : -1;
}

/* For good: after the ports are bound and the key files, certificates
 * and database are open. */
static int drop_privileges(const struct run_as *ra, char **error_r)
{
	if (!ra->drop)
		return 0;
	if (setgroups(1, &ra->gid) != 0 || setgid(ra->gid) != 0 ||
	    setuid(ra->uid) != 0) {
		*error_r = xasprintf("cannot switch to user %s: %s", ra->name,
				     strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0 || getegid() == 0) {
		*error_r = xstrdup("privileges could be regained after the "
				   "switch: refusing to run");
		return -1;
	}
	/* No set-uid program run from here on could raise them again. */
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	log_info("running as %s (uid %u, gid %u)", ra->name,
		 (unsigned)ra->uid, (unsigned)ra->gid);
	return 0;
}

static void shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval tv = { 0, 50000 };

	if (srv->nstreams == 0) {
		event_base_loopexit(srv->base, NULL);
		return;
	}
	event_add(srv->shutdown_timer, &tv);
}

static void shutdown_expired(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	log_warn("%u streams still open at the shutdown deadline", srv->nstreams);
	event_base_loopexit(srv->base, NULL);
}

/* Sessions waiting to be resumed (XEP-0198) will not be: end them while
 * the store still takes what their clients never acknowledged, which is
 * rerouted like for any session that ends (the offline store). */
static void end_detached_sessions(struct server *srv)
{
	struct session **v = NULL;
	size_t n = 0, cap = 0, pos = 0;
	void *val;

	if (srv->sm_ids == NULL)
		return;
	while (hashmap_next(srv->sm_ids, &pos, NULL, &val)) {
		struct session *s = val;
		if (s->stream == NULL) {
			v = xgrow(v, &cap, n + 1, sizeof(*v));
			v[n++] = s;
		}
	}
	for (size_t i = 0; i < n; i++)
		session_end(v[i]);
	free(v);
}

/* data_dir/roostd.pid: how `roostctl deluser` finds roostd to tell it
 * (SIGUSR1, mod_register) that accounts were removed. Written after the
 * privilege drop, so roostd can remove it at exit; NULL if it cannot be
 * written (roostctl then says roostd was not told). */
static char *write_pid_file(const char *data_dir)
{
	char *path = xasprintf("%s/%s", data_dir, ROOSTD_PID_FILE);
	FILE *f = fopen(path, "w");

	if (f == NULL || fprintf(f, "%ld\n", (long)getpid()) < 0 ||
	    fclose(f) != 0) {
		log_warn("%s: %s: roostctl deluser cannot end sessions",
			 path, strerror(errno));
		free(path);
		return NULL;
	}
	return path;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval deadline = { srv->cfg->shutdown_timeout, 0 };
	struct timeval now = { 0, 0 };

	if (srv->shutting_down)
		return;
	log_info("signal %d: shutting down", (int)sig);
	srv->shutting_down = true;
	listener_disable_all(srv->listeners);
	sm_end_detached(srv);
	for (struct c2s *c = srv->streams, *next; c != NULL; c = next) {
		next = c->next;
		c2s_stream_error(c, "system-shutdown", NULL);
	}
	end_detached_sessions(srv);
	srv->shutdown_timer = evtimer_new(srv->base, shutdown_tick, srv);
	event_add(srv->shutdown_timer, &now);
	event_base_once(srv->base, -1, EV_TIMEOUT, shutdown_expired, srv, &deadline);
}

static void on_accept(void *ctx, int fd, struct sockaddr *addr, int addrlen,
		      bool direct_tls)
{
	c2s_accept(ctx, fd, addr, addrlen, direct_tls);
}

static int open_listeners(struct server *srv, char **error_r)
{
	const struct config *cfg = srv->cfg;

	for (size_t i = 0; i < cfg->nlisten; i++)
		if (!listener_new(srv->base, &srv->listeners, cfg->listen[i], false,
				  on_accept, srv, error_r))
			return -1;
	for (size_t i = 0; i < cfg->ntls_listen; i++)
		if (!listener_new(srv->base, &srv->listeners, cfg->tls_listen[i], true,
				  on_accept, srv, error_r))
			return -1;
	for (size_t i = 0; i < cfg->nlisten; i++)
		log_info("listening on %s (c2s, STARTTLS)", cfg->listen[i]);
	for (size_t i = 0; i < cfg->ntls_listen; i++)
		log_info("listening on %s (c2s, direct TLS)", cfg->tls_listen[i]);
	return 0;
}

int main(int argc, char **argv)
{
	const char *config_path = DEFAULT_CONFIG;
	struct config cfg;
	struct server srv;
	struct run_as run_as = { 0 };
	enum log_level level;
	char *error = NULL, *pid_path = NULL;
	bool check_only = false;
	int opt, rc = 1;

	/* SIGUSR1 (roostctl deluser) would kill by default: ignored until
	 * mod_register's handler replaces this. */
	signal(SIGUSR1, SIG_IGN);
	while ((opt = getopt(argc, argv, "c:thV")) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'V':
			printf("roostd %s\n", ROOST_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	if (config_load(config_path, &cfg, &error) != 0) {
		fprintf(stderr, "roostd: %s\n", error);
		free(error);
		config_free(&cfg);
		return 1;
	}
	if (log_level_parse(cfg.log_level, &level) == 0)
		log_set_level(level);
	if (check_only) {
		printf("roostd: %s is valid\n", config_path);
		config_free(&cfg);
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
	memset(&srv, 0, sizeof(srv));
	srv.cfg = &cfg;
	srv.base = event_base_new();
	srv.sessions = hashmap_new();
	srv.accounts = hashmap_new();

	if (plan_run_as(&cfg, &run_as, &error) != 0)
		goto fail;
	if (mkdir(cfg.data_dir, 0700) == 0) {
		if (run_as.drop && chown(cfg.data_dir, run_as.uid, run_as.gid) != 0) {
			log_error("cannot chown %s: %s", cfg.data_dir, strerror(errno));
			goto out;
		}
	} else if (errno != EEXIST) {
		log_error("cannot create %s: %s", cfg.data_dir, strerror(errno));
		goto out;
	}
	/* Key files and certificates may be readable by root only. */
	if (load_seal_keys(&srv, cfg.seal_key_file, &error) != 0)
		goto fail;
	srv.tls = tls_new(&cfg, &error);
	if (srv.tls == NULL)
		goto fail;
	if (become_effective(&run_as, true) != 0) {
		error = xasprintf("cannot act as user %s: %s", run_as.name,
				  strerror(errno));
		goto fail;
	}
	srv.store = store_open_sqlite(srv.base, cfg.data_dir, &error);
	if (become_effective(&run_as, false) != 0) {
		log_error("cannot get root back: %s", strerror(errno));
		goto out;
	}
	if (srv.store == NULL) {
		if (run_as.drop) {
			char *e = xasprintf("%s (as user %s: the data_dir must "
					    "belong to it)", error, run_as.name);
			free(error);
			error = e;
		}
		goto fail;
	}
	store_set_seal_keys(srv.store, srv.seal_keys);
	srv.workers = workq_new(srv.base, cfg.workers);
	srv.throttle = auth_throttle_new(cfg.auth_failure_delay_ms,
					 cfg.auth_failure_max_delay_ms,
					 cfg.auth_max_failures,
					 cfg.auth_failure_window);
	srv.addr_limit = addr_limit_new(cfg.max_connections_per_ip,
					cfg.connection_rate,
					cfg.connection_burst);
	if (cfg.read_rate != 0) {
		/* Ten refills a second: reading pauses for at most 100 ms
		 * at a time, and the bucket holds read_burst. */
		struct timeval tick = { 0, 100000 };
		size_t per_tick = cfg.read_rate / 10 ? cfg.read_rate / 10 : 1;

		srv.read_limit = ev_token_bucket_cfg_new(per_tick, cfg.read_burst,
			EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX, &tick);
	}
	srv.modules = modules_new(&srv);
	if (srv.modules == NULL)
		goto out;
	if (open_listeners(&srv, &error) != 0)
		goto fail;
	if (drop_privileges(&run_as, &error) != 0)
		goto fail;

	srv.sig_term = evsignal_new(srv.base, SIGTERM, on_signal, &srv);
	srv.sig_int = evsignal_new(srv.base, SIGINT, on_signal, &srv);
	event_add(srv.sig_term, NULL);
	event_add(srv.sig_int, NULL);
	pid_path = write_pid_file(cfg.data_dir);
	log_info("roostd %s ready, data in %s", ROOST_VERSION, cfg.data_dir);

	event_base_dispatch(srv.base);

	/* Everything accepted is flushed to disk before we exit. */
	rc = 0;
	log_info("stopped");
	goto out;
fail:
	log_error("%s", error);
	free(error);
out:
	if (pid_path != NULL) {
		unlink(pid_path);
		free(pid_path);
	}
	for (struct c2s *c = srv.streams; c != NULL; c = c->next)
		c2s_close(c, "exit");
	/* Before the store closes: detached sessions hand their unacked
	 * messages to it. */
	if (srv.modules != NULL)
		sm_server_free(&srv);
	if (srv.store)
		store_close(srv.store);
	if (srv.workers)
		workq_free(srv.workers);
	modules_free(&srv, srv.modules);
	listener_free_all(srv.listeners);
	auth_throttle_free(srv.throttle);
	addr_limit_free(srv.addr_limit);
	intake_free(&srv);
	tls_free(srv.tls);
	if (srv.seal_keys != NULL) {
		seal_keys_clear(srv.seal_keys);
		free(srv.seal_keys);
	}
	if (srv.sig_term)
		event_free(srv.sig_term);
	if (srv.sig_int)
		event_free(srv.sig_int);
	if (srv.shutdown_timer)
		event_free(srv.shutdown_timer);
	sm_server_free(&srv);  /* a no-op unless start-up failed early */
	hashmap_free(srv.sessions);
	hashmap_free(srv.accounts);
	event_base_free(srv.base);
	/* After the base: bufferevents used it until they were freed. */
	if (srv.read_limit != NULL)
		ev_token_bucket_cfg_free(srv.read_limit);
	free(run_as.name);
	config_free(&cfg);
	return rc;
}

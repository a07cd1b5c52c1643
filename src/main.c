/* roostd: start-up, signals, shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "config.h"
#include "core/auth_throttle.h"
#include "core/module.h"
#include "net/listener.h"
#include "net/tls.h"
#include "server.h"
#include "store/store.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/workq.h"
#include "util/xalloc.h"
#include "xmpp/c2s.h"

#define DEFAULT_CONFIG "/etc/roost/roost.conf"
#define SEAL_KEY_LEN 32

static void usage(FILE *out)
{
	fprintf(out,
		"usage: roostd [-c CONFIG] [-t]\n"
		"  -c CONFIG  configuration file (default " DEFAULT_CONFIG ")\n"
		"  -t         check the configuration and exit\n"
		"  -V         print the version and exit\n");
}

/* DESIGN §5: the seal key is made at first start, readable by its owner
 * only; a key others can read is refused rather than used. */
static int ensure_seal_key(const char *path, char **error_r)
{
	struct stat st;
	unsigned char key[SEAL_KEY_LEN];
	int fd;

	if (stat(path, &st) == 0) {
		if (st.st_mode & 077) {
			*error_r = xasprintf("%s: readable by others (mode %03o); "
					     "chmod 0400 it", path, st.st_mode & 0777);
			return -1;
		}
		if (st.st_size != SEAL_KEY_LEN) {
			*error_r = xasprintf("%s: not a seal key (%lld bytes, want %d)",
					     path, (long long)st.st_size, SEAL_KEY_LEN);
			return -1;
		}
		return 0;
	}
	if (errno != ENOENT) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
	if (fd < 0) {
		*error_r = xasprintf("%s: cannot create: %s", path, strerror(errno));
		return -1;
	}
	if (RAND_bytes(key, sizeof(key)) != 1 ||
	    write(fd, key, sizeof(key)) != (ssize_t)sizeof(key) || fsync(fd) != 0) {
		*error_r = xasprintf("%s: cannot write the seal key", path);
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	log_info("created a new seal key in %s", path);
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
	for (struct c2s *c = srv->streams, *next; c != NULL; c = next) {
		next = c->next;
		c2s_stream_error(c, "system-shutdown", NULL);
	}
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
	enum log_level level;
	char *error = NULL;
	bool check_only = false;
	int opt, rc = 1;

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

	if (mkdir(cfg.data_dir, 0700) != 0 && errno != EEXIST) {
		log_error("cannot create %s: %s", cfg.data_dir, strerror(errno));
		goto out;
	}
	if (ensure_seal_key(cfg.seal_key_file, &error) != 0)
		goto fail;
	srv.tls = tls_new(&cfg, &error);
	if (srv.tls == NULL)
		goto fail;
	srv.store = store_open_sqlite(srv.base, cfg.data_dir, &error);
	if (srv.store == NULL)
		goto fail;
	srv.workers = workq_new(srv.base, cfg.workers);
	srv.throttle = auth_throttle_new(cfg.auth_failure_delay_ms,
					 cfg.auth_failure_max_delay_ms);
	srv.modules = modules_new(&srv);
	if (srv.modules == NULL)
		goto out;
	if (open_listeners(&srv, &error) != 0)
		goto fail;

	srv.sig_term = evsignal_new(srv.base, SIGTERM, on_signal, &srv);
	srv.sig_int = evsignal_new(srv.base, SIGINT, on_signal, &srv);
	event_add(srv.sig_term, NULL);
	event_add(srv.sig_int, NULL);
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
	for (struct c2s *c = srv.streams; c != NULL; c = c->next)
		c2s_close(c, "exit");
	if (srv.store)
		store_close(srv.store);
	if (srv.workers)
		workq_free(srv.workers);
	modules_free(&srv, srv.modules);
	listener_free_all(srv.listeners);
	auth_throttle_free(srv.throttle);
	tls_free(srv.tls);
	if (srv.sig_term)
		event_free(srv.sig_term);
	if (srv.sig_int)
		event_free(srv.sig_int);
	if (srv.shutdown_timer)
		event_free(srv.shutdown_timer);
	hashmap_free(srv.sessions);
	hashmap_free(srv.accounts);
	event_base_free(srv.base);
	config_free(&cfg);
	return rc;
}

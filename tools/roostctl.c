/* roostctl: account administration (smtpctl-style command table).
 *
 * It goes through the same asynchronous store API as roostd, with its own
 * event loop that it runs until each request's callback fires. The SQLite
 * store is in WAL mode with a busy timeout, so this works while roostd is
 * running on the same data directory. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "config.h"
#include "core/account_create.h"
#include "core/jid.h"
#include "seal/seal.h"
#include "seal/seal_keyfile.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xalloc.h"

#define DEFAULT_CONFIG "/etc/roost/roost.conf"
#define PASSWORD_MAX ACCOUNT_PASSWORD_MAX

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
};

struct ctl {
	const char *config_path; /* NULL: no configuration loaded */
	struct config cfg;
	bool have_config;
	const char *data_dir;
	const char *password_file;

	struct event_base *base;
	struct store *st;
	struct seal_keys keys;
	bool have_keys;

	/* The pending request's outcome, set by its callback. */
	bool done;
	int result;
	const char *error;
};

struct ctl_cmd {
	const char *name;
	const char *usage;
	int min_args, max_args;
	/* Accepts --password-file FILE anywhere after the command. */
	bool password_file;
	int (*handler)(struct ctl *ctl, int argc, char **argv);
};

static int cmd_adduser(struct ctl *ctl, int argc, char **argv);
static int cmd_passwd(struct ctl *ctl, int argc, char **argv);
static int cmd_deluser(struct ctl *ctl, int argc, char **argv);
static int cmd_list(struct ctl *ctl, int argc, char **argv);
static int cmd_config(struct ctl *ctl, int argc, char **argv);
static int cmd_verify(struct ctl *ctl, int argc, char **argv);
static int cmd_help(struct ctl *ctl, int argc, char **argv);

static const struct ctl_cmd commands[] = {
	{ "adduser", "JID [--password-file FILE]", 1, 1, true, cmd_adduser },
	{ "passwd", "JID [--password-file FILE]", 1, 1, true, cmd_passwd },
	{ "deluser", "JID", 1, 1, false, cmd_deluser },
	{ "list", "[DOMAIN]", 0, 1, false, cmd_list },
	{ "config", "", 0, 0, false, cmd_config },
	{ "verify", "[JID...]", 0, 4096, false, cmd_verify },
	{ "help", "", 0, 0, false, cmd_help },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void __attribute__((format(printf, 1, 2))) ctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("roostctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: roostctl [-c CONFIG] [-d DATA_DIR] COMMAND ...\n"
		     "\n"
		     "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %s%s%s\n", commands[i].name,
			*commands[i].usage ? " " : "", commands[i].usage);
	fprintf(out, "\n"
		     "The configuration is CONFIG, else $ROOST_CONFIG, else "
		     DEFAULT_CONFIG ".\n"
		     "-d DATA_DIR overrides its data_dir; then no configuration "
		     "is needed.\n"
		     "Passwords come from --password-file, else from standard "
		     "input when it is\n"
		     "not a terminal (first line), else from a prompt.\n");
}

/* ---- running store requests to completion ---- */

static void on_done(void *ctx, int result, const char *error)
{
	struct ctl *ctl = ctx;

	ctl->done = true;
	ctl->result = result;
	ctl->error = error;
}

static void on_user(void *ctx, int result, const struct store_user *user)
{
	on_done(ctx, result, result < 0 ? "store error" : NULL);
}

static void on_list(void *ctx, int result, const char *const *jids, size_t n)
{
	/* The names are valid only during the callback: print them here. */
	for (size_t i = 0; i < n; i++)
		printf("%s\n", jids[i]);
	on_done(ctx, result, result < 0 ? "store error" : NULL);
}

/* Runs the loop until the one pending request has called back; returns
 * its result. */
static int run_until_done(struct ctl *ctl)
{
	while (!ctl->done) {
		if (event_base_loop(ctl->base, EVLOOP_ONCE) < 0) {
			ctl_err("event loop failed");
			exit(EXIT_FAIL);
		}
	}
	ctl->done = false;
	return ctl->result;
}

/* The seal key signs credentials and keyrings (DESIGN §5); roostctl makes
 * it if roostd never ran on this data dir. */
static int load_seal_keys(struct ctl *ctl)
{
	const char *path = ctl->cfg.seal_key_file;
	unsigned char key[SEAL_KEY_LEN];
	char *error = NULL;
	int ret;

	if (seal_key_ensure(path, &error) < 0 ||
	    seal_key_load(path, key, &error) < 0) {
		ctl_err("%s", error);
		free(error);
		return -1;
	}
	ret = seal_keys_derive(key, &ctl->keys);
	OPENSSL_cleanse(key, sizeof(key));
	if (ret < 0) {
		ctl_err("cannot derive the seal keys");
		return -1;
	}
	ctl->have_keys = true;
	return 0;
}

static int open_store(struct ctl *ctl)
{
	char *error = NULL;

	ctl->base = event_base_new();
	if (ctl->base == NULL) {
		ctl_err("cannot create an event loop");
		return -1;
	}
	ctl->st = store_open_sqlite(ctl->base, ctl->data_dir, &error);
	if (ctl->st == NULL) {
		ctl_err("%s", error);
		free(error);
		return -1;
	}
	if (load_seal_keys(ctl) < 0)
		return -1;
	store_set_seal_keys(ctl->st, &ctl->keys);
	return 0;
}

static void close_store(struct ctl *ctl)
{
	store_close(ctl->st);
	ctl->st = NULL;
	if (ctl->have_keys)
		seal_keys_clear(&ctl->keys);
	ctl->have_keys = false;
	if (ctl->base != NULL)
		event_base_free(ctl->base);
	ctl->base = NULL;
}

/* ---- arguments ---- */

/* A bare JID with a localpart, on one of our hosts when a configuration
 * says which. Returns an exit code. */
static int parse_account(struct ctl *ctl, const char *arg, struct jid *jid)
{
	const char *why;

	if (jid_parse(arg, jid, &why) < 0) {
		ctl_err("invalid JID '%s': %s", arg, why);
		return EXIT_USAGE;
	}
	if (jid->local == NULL || jid->resource != NULL) {
		ctl_err("'%s' is not a bare JID with a localpart (user@domain)",
		      arg);
		jid_free(jid);
		return EXIT_USAGE;
	}
	if (ctl->have_config && config_vhost(&ctl->cfg, jid->domain) == NULL) {
		ctl_err("%s is not a host in %s", jid->domain, ctl->config_path);
		jid_free(jid);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* ---- passwords ---- */

/* Reads one line into buf (PASSWORD_MAX + 2 bytes) and strips the line
 * ending. Returns 0, or -1 with *error_r set. */
static int read_line(FILE *fp, char *buf, const char **error_r)
{
	size_t len;

	if (fgets(buf, PASSWORD_MAX + 2, fp) == NULL) {
		*error_r = ferror(fp) ? strerror(errno) : "no password given";
		return -1;
	}
	len = strlen(buf);
	if (len > 0 && buf[len - 1] == '\n') {
		buf[--len] = '\0';
		if (len > 0 && buf[len - 1] == '\r')
			buf[--len] = '\0';
	} else if (len > PASSWORD_MAX) {
		*error_r = "password too long";
		return -1;
	}
	if (len == 0) {
		*error_r = "empty password";
		return -1;
	}
	return 0;
}

static volatile sig_atomic_t tty_signal;

static void on_tty_signal(int sig)
{
	tty_signal = sig;
}

/* Reads a line from the terminal with echo off. A signal restores the
 * terminal first and is then delivered as if never caught, so that ^C
 * never leaves the operator's terminal without echo. */
static int read_tty(int fd, const char *prompt, char *buf, const char **error_r)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP };
	struct sigaction sa, old[sizeof(sigs) / sizeof(sigs[0])];
	struct termios term, saved;
	size_t len = 0;
	bool too_long = false;
	int ret = -1;
	char c;

	if (tcgetattr(fd, &saved) < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_tty_signal;
	sigemptyset(&sa.sa_mask);
	tty_signal = 0;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, &old[i]);
	term = saved;
	term.c_lflag &= ~(tcflag_t)ECHO;
	term.c_lflag |= ECHONL;
	(void)tcsetattr(fd, TCSAFLUSH, &term);
	if (write(fd, prompt, strlen(prompt)) < 0) {
		/* the prompt is a courtesy */
	}

	for (;;) {
		ssize_t n = read(fd, &c, 1);

		if (n < 0 && errno == EINTR && tty_signal == 0)
			continue;
		if (n < 0) {
			*error_r = tty_signal ? "interrupted" : strerror(errno);
			goto out;
		}
		if (n == 0 || c == '\n')
			break;
		if (len < PASSWORD_MAX)
			buf[len++] = c;
		else
			too_long = true;
	}
	c = 0;
	buf[len] = '\0';
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (too_long)
		*error_r = "password too long";
	else if (len == 0)
		*error_r = "empty password";
	else
		ret = 0;
out:
	(void)tcsetattr(fd, TCSAFLUSH, &saved);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &old[i], NULL);
	if (tty_signal != 0) {
		OPENSSL_cleanse(buf, PASSWORD_MAX + 2);
		raise(tty_signal);
	}
	return ret;
}

/* Fills buf (PASSWORD_MAX + 2 bytes) from the configured source. Returns
 * an exit code. */
static int read_password(struct ctl *ctl, char *buf)
{
	char again[PASSWORD_MAX + 2];
	const char *why = NULL;
	int fd, ret = EXIT_FAIL;
	FILE *fp;

	if (ctl->password_file != NULL) {
		fp = fopen(ctl->password_file, "re");
		if (fp == NULL) {
			ctl_err("%s: %s", ctl->password_file, strerror(errno));
			return EXIT_FAIL;
		}
		/* stdio buffered the file: wipe that copy too. */
		setvbuf(fp, NULL, _IONBF, 0);
		if (read_line(fp, buf, &why) < 0)
			ctl_err("%s: %s", ctl->password_file, why);
		else
			ret = EXIT_OK;
		fclose(fp);
		return ret;
	}
	if (!isatty(STDIN_FILENO)) {
		setvbuf(stdin, NULL, _IONBF, 0);
		if (read_line(stdin, buf, &why) < 0) {
			ctl_err("standard input: %s", why);
			return EXIT_FAIL;
		}
		return EXIT_OK;
	}

	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ctl_err("/dev/tty: %s", strerror(errno));
		return EXIT_FAIL;
	}
	if (read_tty(fd, "Password: ", buf, &why) < 0 ||
	    read_tty(fd, "Retype password: ", again, &why) < 0) {
		ctl_err("%s", why);
		goto out;
	}
	if (strcmp(buf, again) != 0) {
		ctl_err("passwords do not match");
		goto out;
	}
	ret = EXIT_OK;
out:
	OPENSSL_cleanse(again, sizeof(again));
	close(fd);
	return ret;
}

/* ---- commands ---- */

/* DESIGN §5: a keyring is made where the password is known. A new account
 * gets a new one. `passwd` is an admin reset without the old password:
 * the key pair is replaced and the retired keys dropped, so messages
 * sealed before can no longer be opened (the user is told at the next
 * login). The reset runs inside the store's transaction that reads the
 * row, because roostd may be moving its chains at the same time. */
static int store_password(struct ctl *ctl, const struct jid *jid, bool create,
			  const struct account_secret *sec)
{
	struct account_rewrap rw = {
		.keys = &ctl->keys, .sec = sec, .reset = true,
	};
	struct store_user user;
	struct buf kbuf = BUF_INIT;
	char *bare = jid_bare(jid);
	int ret = EXIT_FAIL, r;

	memset(&user, 0, sizeof(user));
	user.local = jid->local;
	user.domain = jid->domain;
	memcpy(user.creds, sec->creds, sizeof(user.creds));
	rw.bare = bare;
	if (create) {
		if (account_keyring_new(&ctl->keys, bare, sec, &kbuf) < 0) {
			ctl_err("cannot make the keyring");
			goto out;
		}
		user.keyring = kbuf.data;
		user.keyring_len = kbuf.len;
		store_user_create(ctl->st, &user, on_done, ctl);
	} else {
		store_user_set_password(ctl->st, &user, account_rewrap, &rw,
					on_done, ctl);
	}
	/* The checks made before can race with another roostctl; these
	 * results are the authoritative ones. */
	r = run_until_done(ctl);
	if (r < 0)
		ctl_err("store: %s", ctl->error);
	else if (r == 1 && create)
		ctl_err("user exists: %s", bare);
	else if (r == 1)
		ctl_err("no such user: %s", bare);
	else if (r == 2)
		ctl_err("cannot make the keyring");
	else
		ret = EXIT_OK;
	if (ret == EXIT_OK && rw.replaced_bad)
		ctl_err("warning: %s: the keyring row failed its integrity "
			"check and was replaced by a new one", bare);
out:
	OPENSSL_cleanse(&user, sizeof(user));
	buf_free(&kbuf);
	free(bare);
	return ret;
}

static int set_password(struct ctl *ctl, const char *arg, bool create)
{
	char password[PASSWORD_MAX + 2];
	struct account_secret sec;
	struct jid jid;
	const char *why;
	int ret, r;

	memset(&sec, 0, sizeof(sec));
	memset(password, 0, sizeof(password));
	ret = parse_account(ctl, arg, &jid);
	if (ret != EXIT_OK)
		return ret;
	ret = EXIT_FAIL;
	if (open_store(ctl) < 0)
		goto out;

	/* Ask first, so that nobody types a password for nothing. */
	store_user_get(ctl->st, jid.local, jid.domain, on_user, ctl);
	r = run_until_done(ctl);
	if (r < 0) {
		ctl_err("store: %s", ctl->error);
		goto out;
	}
	if (create && r == 1) {
		ctl_err("user exists: %s@%s", jid.local, jid.domain);
		goto out;
	}
	if (!create && r == 0) {
		ctl_err("no such user: %s@%s", jid.local, jid.domain);
		goto out;
	}

	if (read_password(ctl, password) != EXIT_OK)
		goto out;
	if (account_secret_derive(password, ctl->cfg.scram_iterations, &sec,
				  &why) < 0) {
		ctl_err("%s", why);
		goto out;
	}
	ret = store_password(ctl, &jid, create, &sec);
out:
	OPENSSL_cleanse(password, sizeof(password));
	account_secret_clear(&sec);
	close_store(ctl);
	jid_free(&jid);
	return ret;
}

static int cmd_adduser(struct ctl *ctl, int argc, char **argv)
{
	return set_password(ctl, argv[0], true);
}

static int cmd_passwd(struct ctl *ctl, int argc, char **argv)
{
	return set_password(ctl, argv[0], false);
}

/* Tells a roostd running on this data_dir (data_dir/roostd.pid, and a
 * process of that pid named roostd) that accounts were removed: it ends
 * their sessions (mod_register, SIGUSR1). */
static void notify_roostd(struct ctl *ctl)
{
	char *path = xasprintf("%s/%s", ctl->data_dir, ROOSTD_PID_FILE);
	char comm[64] = "", *proc;
	FILE *f = fopen(path, "r");
	long pid = 0;

	if (f == NULL) {
		free(path);
		return; /* roostd is not running here */
	}
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 1)
		pid = 0;
	fclose(f);
	free(path);
	if (pid == 0)
		return;
	/* A stale file may name a pid that another program reuses. */
	proc = xasprintf("/proc/%ld/comm", pid);
	f = fopen(proc, "r");
	free(proc);
	if (f != NULL) {
		if (fgets(comm, sizeof(comm), f) == NULL)
			comm[0] = '\0';
		fclose(f);
	}
	if (strcmp(comm, "roostd\n") != 0)
		return;
	if (kill((pid_t)pid, SIGUSR1) != 0)
		ctl_err("roostd (pid %ld) could not be told: %s; its sessions of "
			"the removed account go on until they end", pid,
			strerror(errno));
}

static int cmd_deluser(struct ctl *ctl, int argc, char **argv)
{
	struct jid jid;
	int ret, r;

	ret = parse_account(ctl, argv[0], &jid);
	if (ret != EXIT_OK)
		return ret;
	ret = EXIT_FAIL;
	if (open_store(ctl) < 0)
		goto out;
	store_user_delete(ctl->st, jid.local, jid.domain, on_done, ctl);
	r = run_until_done(ctl);
	if (r < 0)
		ctl_err("store: %s", ctl->error);
	else if (r == 1)
		ctl_err("no such user: %s@%s", jid.local, jid.domain);
	else
		ret = EXIT_OK;
out:
	close_store(ctl);
	if (ret == EXIT_OK)
		notify_roostd(ctl);
	jid_free(&jid);
	return ret;
}

static int cmd_list(struct ctl *ctl, int argc, char **argv)
{
	char *domain = NULL;
	int ret = EXIT_FAIL;

	if (argc > 0 && jid_prep_domain(argv[0], &domain) < 0) {
		ctl_err("invalid domain '%s'", argv[0]);
		return EXIT_USAGE;
	}
	if (open_store(ctl) < 0)
		goto out;
	store_user_list(ctl->st, domain, on_list, ctl);
	if (run_until_done(ctl) < 0)
		ctl_err("store: %s", ctl->error);
	else
		ret = EXIT_OK;
out:
	close_store(ctl);
	free(domain);
	return ret;
}

/* ---- verify ---- */

struct verify_run {
	struct ctl *ctl;
	const char *jid;
	bool archive;      /* walking the message archive (XEP-0313) */
	char **jids;       /* from the list request */
	size_t njids;
	unsigned findings;
};

static void on_jid_list(void *ctx, int result, const char *const *jids, size_t n)
{
	struct verify_run *v = ctx;

	v->jids = xcalloc(n + 1, sizeof(*v->jids));
	for (size_t i = 0; i < n; i++)
		v->jids[i] = xstrdup(jids[i]);
	v->njids = n;
	on_done(v->ctl, result, result < 0 ? "store error" : NULL);
}

static void on_verified(void *ctx, int result, const struct seal_finding *f,
			size_t n)
{
	struct verify_run *v = ctx;

	for (size_t i = 0; i < n; i++)
		printf("%s: %sseq %llu: %s\n", v->jid, v->archive ? "archive " : "",
		       (unsigned long long)f[i].seq, seal_finding_name(f[i].kind));
	if (result == 2 && v->archive)
		result = 0; /* said once, by the offline walk */
	if (result == 2)
		printf("%s: no keyring\n", v->jid);
	else if (result < 0)
		printf("%s: cannot be verified (store error)\n", v->jid);
	if (result != 0)
		v->findings += n > 0 ? (unsigned)n : 1;
	on_done(v->ctl, result, NULL);
}

/* The chain walk of every store with the seal key alone (DESIGN §5): it
 * cannot open a message, but it names every record that was changed,
 * inserted, deleted or moved. Exit 1 on any finding. */
static int cmd_verify(struct ctl *ctl, int argc, char **argv)
{
	struct verify_run v = { .ctl = ctl };
	char **jids = argv;
	size_t n = (size_t)argc;
	int ret = EXIT_FAIL;

	if (open_store(ctl) < 0)
		goto out;
	if (argc == 0) {
		store_user_list(ctl->st, NULL, on_jid_list, &v);
		if (run_until_done(ctl) < 0) {
			ctl_err("store: %s", ctl->error);
			goto out;
		}
		jids = v.jids;
		n = v.njids;
	}
	for (size_t i = 0; i < n; i++) {
		struct jid jid;
		const char *error;

		if (jid_parse(jids[i], &jid, &error) != 0 || jid.local == NULL ||
		    jid.resource != NULL) {
			ctl_err("not a bare JID: %s", jids[i]);
			if (jid.domain != NULL)
				jid_free(&jid);
			ret = EXIT_USAGE;
			goto out;
		}
		v.jid = jids[i];
		v.archive = false;
		store_offline_verify(ctl->st, jid.local, jid.domain, on_verified, &v);
		run_until_done(ctl);
		v.archive = true;
		store_archive_verify(ctl->st, jid.local, jid.domain, on_verified, &v);
		run_until_done(ctl);
		jid_free(&jid);
	}
	printf("%zu account%s verified, %u finding%s\n", n, n == 1 ? "" : "s",
	       v.findings, v.findings == 1 ? "" : "s");
	ret = v.findings > 0 ? EXIT_FAIL : EXIT_OK;
out:
	for (size_t i = 0; i < v.njids; i++)
		free(v.jids[i]);
	free(v.jids);
	close_store(ctl);
	return ret;
}

static int cmd_config(struct ctl *ctl, int argc, char **argv)
{
	config_dump(stdout, &ctl->cfg);
	return EXIT_OK;
}

static int cmd_help(struct ctl *ctl, int argc, char **argv)
{
	usage(stdout);
	return EXIT_OK;
}

/* ---- main ---- */

/* Takes --password-file out of the command's arguments. Returns 0, or -1
 * for a usage error. */
static int take_options(struct ctl *ctl, const struct ctl_cmd *cmd,
			int *argc, char **argv)
{
	int out = 0;

	for (int i = 0; i < *argc; i++) {
		const char *a = argv[i];

		if (cmd->password_file && strcmp(a, "--password-file") == 0) {
			if (i + 1 == *argc) {
				ctl_err("--password-file needs a FILE");
				return -1;
			}
			ctl->password_file = argv[++i];
		} else if (cmd->password_file &&
			   strncmp(a, "--password-file=", 16) == 0) {
			ctl->password_file = a + 16;
		} else if (strncmp(a, "--", 2) == 0 && a[2] != '\0') {
			/* No JID starts with "--" that an operator means. */
			ctl_err("%s: unknown option '%s'", cmd->name, a);
			return -1;
		} else {
			argv[out++] = argv[i];
		}
	}
	*argc = out;
	return 0;
}

/* Loads the configuration the options and environment name. Returns an
 * exit code. */
static int load_config(struct ctl *ctl, const char *path, const char *data_dir)
{
	char *error = NULL;

	if (path == NULL) {
		const char *env = getenv("ROOST_CONFIG");

		if (env != NULL && *env != '\0')
			path = env;
		/* With -d the default file is not needed and may not even
		 * be readable by this user. */
		else if (data_dir == NULL && access(DEFAULT_CONFIG, F_OK) == 0)
			path = DEFAULT_CONFIG;
	}
	if (path != NULL) {
		if (config_load(path, &ctl->cfg, &error) < 0) {
			ctl_err("%s", error);
			free(error);
			return EXIT_FAIL;
		}
		ctl->config_path = path;
		ctl->have_config = true;
	} else if (data_dir == NULL) {
		ctl_err("no configuration: " DEFAULT_CONFIG " does not exist "
		      "(use -c CONFIG or -d DATA_DIR)");
		return EXIT_FAIL;
	} else {
		config_defaults(&ctl->cfg);
	}
	if (data_dir != NULL) {
		free(ctl->cfg.data_dir);
		ctl->cfg.data_dir = xstrdup(data_dir);
		/* Without a configuration the seal key sits in the data
		 * dir, as roostd's default puts it. */
		if (!ctl->have_config) {
			free(ctl->cfg.seal_key_file);
			ctl->cfg.seal_key_file = xasprintf("%s/seal.key", data_dir);
		}
	}
	ctl->data_dir = ctl->cfg.data_dir;
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	const char *config_path = NULL, *data_dir = NULL;
	const struct ctl_cmd *cmd = NULL;
	struct ctl ctl;
	int c, ret;

	memset(&ctl, 0, sizeof(ctl));
	/* roostctl talks to the operator through ctl_err; the store's
	 * routine info lines (schema upgrades) are not news to them. */
	log_set_level(LOG_WARN);

	/* '+': options stop at the command, whose own arguments follow. */
	while ((c = getopt(argc, argv, "+c:d:h")) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'd':
			data_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd == NULL) {
		ctl_err("unknown command '%s'", argv[0]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cmd->handler == cmd_help)
		return cmd_help(&ctl, 0, NULL);
	argc--;
	argv++;
	if (take_options(&ctl, cmd, &argc, argv) < 0 ||
	    argc < cmd->min_args || argc > cmd->max_args) {
		fprintf(stderr, "usage: roostctl %s%s%s\n", cmd->name,
			*cmd->usage ? " " : "", cmd->usage);
		return EXIT_USAGE;
	}

	ret = load_config(&ctl, config_path, data_dir);
	if (ret == EXIT_OK)
		ret = cmd->handler(&ctl, argc, argv);
	config_free(&ctl.cfg);
	return ret;
}

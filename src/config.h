/* roostd's configuration: an INI file (inih) read into struct config.
 * One table in config.c (name, type, bounds, default, offset) drives
 * parsing, validation and dumping (STYLE rule 10). */
#ifndef ROOST_CONFIG_H
#define ROOST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CONFIG_MAX_LISTEN 8

struct config_vhost {
	char *domain;      /* prepared (nameprep'd) */
	char *certificate; /* PEM chain; default <data_dir>/certs/<domain>.crt */
	char *key;         /* PEM key;   default <data_dir>/certs/<domain>.key */
};

struct config {
	/* [server] */
	char *data_dir;          /* default /var/lib/roost */
/* In data_dir while roostd runs: its pid, for roostctl (src/main.c). */
#define ROOSTD_PID_FILE "roostd.pid"
	char *log_level;         /* error|warn|info|debug, default info */
	char *seal_key_file;     /* default <data_dir>/seal.key */
	unsigned workers;        /* worker threads, 1..64, default 2 */
	unsigned shutdown_timeout; /* seconds to flush at SIGTERM, default 5 */
	char *user;              /* run as this user after start-up; default roost */
	bool allow_root;         /* keep running as root when user is "root"/unknown; default false */

	/* [c2s] */
	char *listen[CONFIG_MAX_LISTEN];     /* "addr:port" / "[v6]:port"; default 127.0.0.1:5222 */
	size_t nlisten;
	char *tls_listen[CONFIG_MAX_LISTEN]; /* direct TLS (XEP-0368); default 127.0.0.1:5223 */
	size_t ntls_listen;
	bool require_tls;        /* default true; false allows auth without TLS */
	bool allow_plain;        /* SASL PLAIN over TLS; default true */
	unsigned keepalive;      /* seconds between whitespace pings, 0 = off; default 60 */
	unsigned resume_timeout; /* XEP-0198: seconds a dropped session waits to be resumed, 0 = no resumption; default 300 */
	unsigned sm_max_queue;   /* XEP-0198: unacknowledged stanzas kept per session; default 10000 */
	size_t sm_max_queue_bytes; /* ... and their memory; default 4 MiB */
	bool tls_compact;        /* after SASL, TLS 1.3 records are done by roost and OpenSSL's state is freed; default true */
	unsigned scram_iterations; /* for new credentials; 4096..1000000; default 4096 */

	/* [limits] */
	size_t max_stanza_size;  /* bytes, 1024..16 MiB, default 262144 */
	unsigned max_depth;      /* 4..1000, default 64 */
	unsigned max_attrs;      /* 4..1000, default 64 */
	unsigned auth_timeout;   /* seconds before an unauthenticated stream is closed; default 60 */
	unsigned max_connections; /* default 100000 */
	size_t max_outq;         /* bytes queued to a client before it is cut off; default 1 MiB */
	unsigned auth_failure_delay_ms; /* first delay after a failed auth, doubles; default 250 */
	unsigned auth_failure_max_delay_ms; /* cap; default 8000 */
	unsigned auth_max_failures; /* per address and per account within the window, then refused; 0 = never; default 10 */
	unsigned auth_failure_window; /* seconds of quiet after which failures are forgotten; default 600 */
	size_t read_rate;        /* bytes/s read per connection (token bucket), 0 = no limit; default 64 KiB */
	size_t read_burst;       /* bucket size; default 256 KiB */
	unsigned max_connections_per_ip; /* per IPv4 address / IPv6 /64, 0 = no limit; default 100 */
	unsigned connection_rate; /* new connections per second per address, 0 = no limit; default 5 */
	unsigned connection_burst; /* ... bucket size; default 20 */
	unsigned max_sessions_per_account; /* bound resources at once (detached resumable ones count); default 10 */

	/* [offline] (XEP-0160, XEP-0013; DESIGN §5) */
	char *mode;              /* "sealed" (default) or "off": bounce with service-unavailable */
	unsigned max_messages;   /* per user, 0 = no limit; default 1000 */
	size_t max_bytes;        /* per user (ciphertext bytes), 0 = no limit; default 10 MiB */
	unsigned expiry;         /* seconds a message is kept, 0 = forever; default 90 days */
	unsigned batch;          /* flood delivery batch size; default 50 */
	unsigned offline_backlog_pause; /* "backlog_pause": deposits waiting for the store before clients stop being read; default 8192 */

	/* [mam] (XEP-0313 message archive, sealed like [offline]) */
	bool mam_enabled;        /* "enabled"; default true */
	char *mam_default;       /* "default": roster|always|never, for users without preferences; default roster */
	unsigned mam_retention_days; /* "retention_days": older messages are removed, 0 = never; default 365 */
	unsigned mam_backlog_pause; /* "backlog_pause": records waiting for the store before clients stop being read; default 16384 */

	/* [pep] (XEP-0163 on XEP-0060) */
	unsigned pep_max_items;  /* "max_items": most items a node keeps (also what "max" means); default 256 */
	unsigned pep_max_nodes;  /* "max_nodes": nodes per account; default 256 */
	size_t pep_max_item_size; /* "max_item_size": bytes of one item's payload; default 128 KiB */

	/* [register] (XEP-0077) */
	bool register_enabled;   /* "enabled": in-band registration of new accounts; default false */
	unsigned register_max_per_address; /* "max_per_address": new accounts per address per window, 0 = no limit; default 3 */
	unsigned register_window; /* "window": seconds; default 3600 */

	/* [storage]: per-account XML documents */
	size_t vcard_max_size;   /* "vcard_max_size": XEP-0054 vCard bytes; default 128 KiB */
	size_t private_max_size; /* "private_max_size": XEP-0049 private XML bytes per account; default 256 KiB */
	unsigned blocklist_max_items; /* "blocklist_max_items": XEP-0191 blocked JIDs per account; default 1000 */

	/* [host <domain>] sections, at least one. */
	struct config_vhost *vhosts;
	size_t nvhosts;
};

/* Fills *cfg with every default (no vhost). */
void config_defaults(struct config *cfg);
/* Reads `path` over the defaults and validates. Returns 0, or -1 with an
 * xmalloc'd message naming the file, line and key in *error_r. Unknown
 * sections and keys are errors (a typo must not silently change
 * behaviour). A config without any [host ...] section is an error.
 * *cfg is filled from scratch (config_defaults first): pass an
 * uninitialised or freed struct, never one that holds a config. On failure
 * *cfg holds nothing (config_free on it is harmless). */
int config_load(const char *path, struct config *cfg, char **error_r);
/* Same, from a string (for tests and roostctl); messages name "<string>". */
int config_load_string(const char *text, struct config *cfg, char **error_r);
/* Writes the effective configuration (derived defaults included) as INI
 * that config_load accepts, given at least one vhost. */
void config_dump(FILE *out, const struct config *cfg);
/* Frees everything and zeroes *cfg; works on defaults-only and zeroed
 * configs and on NULL. */
void config_free(struct config *cfg);
/* The vhost for a prepared domain, or NULL. */
const struct config_vhost *config_vhost(const struct config *cfg,
					const char *domain);

#endif

/* XEP-0077, in two files: mod_register.c speaks the protocol (stream
 * feature, forms, checks, the per-address limit) and mod_register_account.c
 * makes the account changes behind it, each one asynchronous (PBKDF2 on
 * the worker pool, the store on its worker). */
#ifndef ROOST_MOD_MOD_REGISTER_H
#define ROOST_MOD_MOD_REGISTER_H

#include <stdbool.h>

struct iq_request;
struct server;
struct session;

#define NS_REGISTER "jabber:iq:register"

/* Outcome of an account creation. */
enum reg_created {
	REG_CREATED,
	REG_EXISTS,         /* the username is taken */
	REG_BAD_PASSWORD,   /* SASLprep refuses it, or it prepares to "" */
	REG_FAILED,         /* store or crypto failure, or shutting down */
};
typedef void reg_created_cb(void *ctx, enum reg_created result);

/* Creates local@domain (both prepared) with SCRAM-SHA-1 and -256
 * credentials and a keyring, as roostctl adduser does. cb runs later on
 * the loop, never from inside this call. The password is copied (and
 * wiped after use). */
void reg_account_create(struct server *srv, const char *local,
			const char *domain, const char *password,
			reg_created_cb *cb, void *ctx);

/* The user of session `s` changes the password (XEP-0077 §3.3) or removes
 * the account (§3.2). Each answers `req` itself, later. One change per
 * account at a time: a second while one runs is refused. */
void reg_password_change(const struct iq_request *req, struct session *s,
			 const char *password);
void reg_account_remove(const struct iq_request *req, struct session *s);
/* Ends what roostd holds of accounts that are no longer in the store
 * (removed by roostctl, which then sends SIGUSR1): their sessions end
 * with <not-authorized/>, as after XEP-0077 removal. Asynchronous. */
void reg_accounts_recheck(struct server *srv);

#endif

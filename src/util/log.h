/* printf-checked logging to stderr. Every line may carry a context (the
 * connection id, peer and JID) so that a session's story can be grepped.
 * Never pass passwords, keys, SASL payloads or message bodies. */
#ifndef ROOST_UTIL_LOG_H
#define ROOST_UTIL_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
/* Returns 0 and sets *level_r for "error", "warn", "info", "debug"; else -1. */
int log_level_parse(const char *name, enum log_level *level_r);
int log_enabled(enum log_level level);
/* ctx may be NULL; it is printed in brackets before the message. */
void log_msg(enum log_level level, const char *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_ERROR, NULL, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, NULL, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, NULL, __VA_ARGS__); } while (0)

#endif

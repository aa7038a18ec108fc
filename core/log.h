/*
 * log.h: the process log, to stderr or syslog.
 *
 * Every string that may come from a file name or a peer goes through
 * log_escape() first, so a name holding a newline or a terminal escape
 * cannot forge a log line.
 */
#ifndef ASYNCREP_LOG_H
#define ASYNCREP_LOG_H

#include <stddef.h>

enum log_level {
	LOG_LVL_ERROR = 0,	/* shown unless -q -q -q */
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,	/* shown by default */
	LOG_LVL_VERBOSE = 3,	/* -v */
	LOG_LVL_DEBUG = 4,	/* -vv */
};

void log_open(const char *ident, int use_syslog, int level);
void log_set_level(int level);
int log_get_level(void);
void log_msg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_verbose(...) log_msg(LOG_LVL_VERBOSE, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/*
 * Encode len bytes of s into out (size outlen, always NUL-terminated) with
 * C-style escapes for bytes outside printable ASCII, backslash included
 * ("\n", "\\", "\x80"). Truncates with "..." when out is too small.
 * Returns out, so it can be used in a log call.
 */
char *log_escape(const char *s, size_t len, char *out, size_t outlen);

/* Size of an out buffer that never truncates a PATH_MAX name. */
#define LOG_ESC_MAX (4 * 4096 + 8)

#endif

/*
 * log.c: the process log, to stderr or syslog.
 *
 * One line is formatted into a bounded buffer and written with a single
 * write(2), so lines from several threads never interleave mid-line
 * (stderr writes below PIPE_BUF are atomic on pipes).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

/* A line, ident and newline included; below PIPE_BUF for atomicity. */
#define LOG_LINE_MAX 4000
#define LOG_IDENT_MAX 64

static char log_ident[LOG_IDENT_MAX] = "asyncrep";
static int log_syslog;
static int log_level = LOG_LVL_INFO;

void
log_open(const char *ident, int use_syslog, int level)
{
	size_t len;

	if (ident != NULL) {
		len = strlen(ident);
		if (len >= sizeof log_ident)
			len = sizeof log_ident - 1;
		memcpy(log_ident, ident, len);
		log_ident[len] = '\0';
	}
	log_level = level;
	if (log_syslog)
		closelog();
	log_syslog = use_syslog;
	if (log_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_set_level(int level)
{
	log_level = level;
}

int
log_get_level(void)
{
	return log_level;
}

static int
log_priority(int level)
{
	switch (level) {
	case LOG_LVL_ERROR:
		return LOG_ERR;
	case LOG_LVL_WARN:
		return LOG_WARNING;
	case LOG_LVL_INFO:
	case LOG_LVL_VERBOSE:
		return LOG_INFO;
	default:
		return LOG_DEBUG;
	}
}

/* Write all of buf, retrying on EINTR and short writes. */
static void
log_write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;	/* nowhere left to report a logging failure */
		}
		buf += n;
		len -= (size_t)n;
	}
}

void
log_msg(int level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	va_list ap;
	size_t off;
	int n, saved_errno;

	if (level > log_level)
		return;
	/* Callers may log and then inspect errno. */
	saved_errno = errno;

	off = 0;
	if (!log_syslog) {
		n = snprintf(line, sizeof line, "%s: ", log_ident);
		if (n > 0)
			off = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
	}
	va_start(ap, fmt);
	n = vsnprintf(line + off, sizeof line - off, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof line - off) {
		/* Truncated: say so rather than cutting silently. */
		off = sizeof line - 5;
		memcpy(line + off, "...", 3);
		off += 3;
	} else
		off += (size_t)n;

	if (log_syslog) {
		line[off] = '\0';
		syslog(log_priority(level), "%s", line);
	} else {
		line[off++] = '\n';
		log_write_all(STDERR_FILENO, line, off);
	}
	errno = saved_errno;
}

/*
 * The escape of one byte into esc (at least 5 bytes); returns its length.
 */
static size_t
log_escape_byte(unsigned char c, char *esc)
{
	static const char hex[] = "0123456789abcdef";
	char letter;

	switch (c) {
	case '\\':
		letter = '\\';
		break;
	case '\n':
		letter = 'n';
		break;
	case '\r':
		letter = 'r';
		break;
	case '\t':
		letter = 't';
		break;
	case '\a':
		letter = 'a';
		break;
	case '\b':
		letter = 'b';
		break;
	case '\f':
		letter = 'f';
		break;
	case '\v':
		letter = 'v';
		break;
	default:
		letter = '\0';
		break;
	}
	if (letter != '\0') {
		esc[0] = '\\';
		esc[1] = letter;
		return 2;
	}
	if (c >= 0x20 && c < 0x7f) {
		esc[0] = (char)c;
		return 1;
	}
	/* Always two digits, so the reader knows where the escape ends. */
	esc[0] = '\\';
	esc[1] = 'x';
	esc[2] = hex[c >> 4];
	esc[3] = hex[c & 0xf];
	return 4;
}

char *
log_escape(const char *s, size_t len, char *out, size_t outlen)
{
	static const char dots[] = "...";
	char esc[5];
	size_t i, o, n, total, ndots;

	if (out == NULL || outlen == 0)
		return out;
	if (s == NULL) {
		s = "(null)";
		len = strlen(s);
	}

	/* A first pass decides whether the dots are needed at all. */
	total = 0;
	for (i = 0; i < len; i++)
		total += log_escape_byte((unsigned char)s[i], esc);
	if (total < outlen) {
		o = 0;
		for (i = 0; i < len; i++) {
			n = log_escape_byte((unsigned char)s[i], esc);
			memcpy(out + o, esc, n);
			o += n;
		}
		out[o] = '\0';
		return out;
	}

	/* Whole escapes only, never half of "\x80", then the dots. */
	ndots = sizeof dots - 1;
	if (ndots > outlen - 1)
		ndots = outlen - 1;
	o = 0;
	for (i = 0; i < len; i++) {
		n = log_escape_byte((unsigned char)s[i], esc);
		if (o + n + ndots + 1 > outlen)
			break;
		memcpy(out + o, esc, n);
		o += n;
	}
	memcpy(out + o, dots, ndots);
	o += ndots;
	out[o] = '\0';
	return out;
}

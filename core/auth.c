#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "auth.h"
#include "error.h"
#include "fs.h"
#include "log.h"

int
auth_load(struct auth *a, const char *path, char *err, size_t errlen)
{
	char buf[AUTH_TOKEN_MAX + 64];
	struct stat st;
	size_t len, start, i;
	int r;

	memset(a, 0, sizeof(*a));
	if (path == NULL)
		return 0;
	r = fs_read_small(AT_FDCWD, path, buf, sizeof(buf), &len);
	if (r == -AR_ENOMEM) {
		snprintf(err, errlen, "auth token file '%s': longer than %d "
		    "characters", path, AUTH_TOKEN_MAX);
		explicit_bzero(buf, sizeof(buf));
		return -AR_ECONFIG;
	}
	if (r != 0) {
		snprintf(err, errlen, "auth token file '%s': %s", path,
		    strerror(errno));
		return -AR_ECONFIG;
	}
	/* First line only, trimmed. */
	for (i = 0; i < len && buf[i] != '\n'; i++)
		;
	len = i;
	while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t' ||
	    buf[len - 1] == '\r'))
		len--;
	for (start = 0; start < len && (buf[start] == ' ' ||
	    buf[start] == '\t'); start++)
		;
	len -= start;
	if (len < AUTH_TOKEN_MIN || len > AUTH_TOKEN_MAX) {
		snprintf(err, errlen, "auth token file '%s': the token must "
		    "have %d to %d characters", path, AUTH_TOKEN_MIN,
		    AUTH_TOKEN_MAX);
		return -AR_ECONFIG;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[start + i];

		/* It travels in an HTTP header: visible ASCII only. */
		if (c <= 0x20 || c >= 0x7f) {
			snprintf(err, errlen, "auth token file '%s': the token "
			    "may hold only visible ASCII characters", path);
			return -AR_ECONFIG;
		}
	}
	/* A secret others can read is no secret: say so, but serve. */
	if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
		log_warn("auth token file '%s' can be read by other users "
		    "(mode %04o): chmod 600 it", path,
		    (unsigned)(st.st_mode & 07777));
	memcpy(a->token, buf + start, len);
	a->token[len] = '\0';
	a->len = len;
	a->enabled = 1;
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

void
auth_release(struct auth *a)
{
	tls_release(&a->tls);
	explicit_bzero(a->token, sizeof(a->token));
	a->enabled = 0;
	a->len = 0;
}

int
auth_listen_check(const struct auth *a, const struct config_addr *addr,
    int tls_mode, char *err, size_t errlen)
{
	if (auth_addr_is_loopback(&addr->ss) || a->tls.enabled)
		return 0;
	/* In clear only where the operator said so, and never open. */
	if (tls_mode != CONFIG_OFF) {
		snprintf(err, errlen, "listen %s: refusing a non-loopback "
		    "address without TLS: set tls_cert, tls_key and tls_trust "
		    "(or tls_ca), or write tls = off to serve in clear on a "
		    "private network", addr->text);
		return -AR_ECONFIG;
	}
	if (!a->enabled) {
		snprintf(err, errlen, "listen %s: refusing a non-loopback "
		    "address without authentication: set auth_token_file",
		    addr->text);
		return -AR_ECONFIG;
	}
	return 0;
}

int
auth_check(const struct auth *a, const char *header)
{
	static const char prefix[] = "Bearer ";
	const size_t plen = sizeof(prefix) - 1;
	unsigned char diff = 0;
	size_t hlen, i;

	if (!a->enabled)
		return 1;
	if (header == NULL)
		return 0;
	hlen = strlen(header);
	if (hlen != plen + a->len || strncmp(header, prefix, plen) != 0)
		return 0;
	/* Constant time over the token's length. */
	for (i = 0; i < a->len; i++)
		diff |= (unsigned char)(header[plen + i] ^ a->token[i]);
	return diff == 0;
}

int
auth_header(const struct auth *a, char *out, size_t outlen)
{
	int n;

	if (!a->enabled) {
		if (outlen > 0)
			out[0] = '\0';
		return 0;
	}
	n = snprintf(out, outlen, "Authorization: Bearer %s", a->token);
	if (n < 0 || (size_t)n >= outlen)
		return -AR_ENOMEM;
	return 0;
}

int
auth_addr_is_loopback(const void *sockaddr)
{
	const struct sockaddr *sa = sockaddr;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = sockaddr;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = sockaddr;

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return 1;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return in6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

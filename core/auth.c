#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

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

/* ------------------------------------------------------------------------
 * Failed authentications.
 */

static size_t
auth_backoff_bucket(const char *addr)
{
	uint32_t h = 2166136261u;

	while (*addr != '\0')
		h = (h ^ (uint8_t)*addr++) * 16777619u;
	return (size_t)(h % (AUTH_BACKOFF_SLOTS / AUTH_BACKOFF_WAYS)) *
	    AUTH_BACKOFF_WAYS;
}

/* addr's entry, or NULL; with make, a new one in place of the stalest. */
static struct auth_backoff_entry *
auth_backoff_find(struct auth_backoff *b, const char *addr, int make)
{
	struct auth_backoff_entry *e, *stale = NULL;
	size_t i, base = auth_backoff_bucket(addr);

	for (i = 0; i < AUTH_BACKOFF_WAYS; i++) {
		e = &b->e[base + i];
		if (strcmp(e->addr, addr) == 0 && e->addr[0] != '\0')
			return e;
		if (stale == NULL || e->addr[0] == '\0' ||
		    (stale->addr[0] != '\0' && e->last_ms < stale->last_ms))
			stale = e;
	}
	if (!make)
		return NULL;
	memset(stale, 0, sizeof(*stale));
	snprintf(stale->addr, sizeof(stale->addr), "%s", addr);
	return stale;
}

/* One more event worth a line: due now, or held back. */
static void
auth_backoff_log(struct auth_backoff_entry *e, uint64_t now_ms, int *log,
    uint64_t *held)
{
	*held = e->held;
	*log = e->logged_ms == 0 || now_ms - e->logged_ms >= AUTH_BACKOFF_LOG_MS;
	if (*log) {
		e->logged_ms = now_ms != 0 ? now_ms : 1;
		e->held = 0;
	} else
		e->held++;
}

int
auth_backoff_check(struct auth_backoff *b, const char *addr,
    uint64_t now_ms, uint64_t *wait_ms, int *log, uint64_t *held)
{
	struct auth_backoff_entry *e = auth_backoff_find(b, addr, 0);

	*wait_ms = 0;
	*log = 0;
	*held = 0;
	if (e == NULL || now_ms >= e->until_ms)
		return 0;
	*wait_ms = e->until_ms - now_ms;
	auth_backoff_log(e, now_ms, log, held);
	return -AR_EAUTH;
}

void
auth_backoff_fail(struct auth_backoff *b, const char *addr, uint64_t now_ms,
    int *log, uint64_t *held)
{
	struct auth_backoff_entry *e = auth_backoff_find(b, addr, 1);
	uint64_t ms;
	unsigned n;

	if (e->fails > 0 && now_ms - e->last_ms >= AUTH_BACKOFF_FORGET_MS)
		e->fails = 0;
	e->fails++;
	e->last_ms = now_ms;
	if (e->fails > AUTH_BACKOFF_FREE) {
		n = e->fails - AUTH_BACKOFF_FREE - 1;
		ms = n >= 8 ? AUTH_BACKOFF_MAX_MS :
		    (uint64_t)AUTH_BACKOFF_BASE_MS << n;
		if (ms > AUTH_BACKOFF_MAX_MS)
			ms = AUTH_BACKOFF_MAX_MS;
		e->until_ms = now_ms + ms;
	}
	auth_backoff_log(e, now_ms, log, held);
}

void
auth_backoff_ok(struct auth_backoff *b, const char *addr)
{
	struct auth_backoff_entry *e = auth_backoff_find(b, addr, 0);

	if (e != NULL && e->fails > 0)
		memset(e, 0, sizeof(*e));
}

/* ------------------------------------------------------------------------
 * The owner of a loopback peer's socket.
 */

int
auth_peer_uid(const struct sockaddr *peer, const struct sockaddr *local,
    uint32_t *uid)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} q;
	union {
		struct nlmsghdr nlh;
		uint8_t buf[1024];
	} a;
	struct sockaddr_nl nl;
	struct timeval tv = { 1, 0 };
	const struct inet_diag_msg *m;
	ssize_t n;
	int fd;

	memset(&q, 0, sizeof(q));
	q.nlh.nlmsg_len = sizeof(q);
	q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nlh.nlmsg_flags = NLM_F_REQUEST;
	q.req.sdiag_protocol = IPPROTO_TCP;
	q.req.idiag_states = ~0u;
	q.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	q.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (peer->sa_family == AF_INET && local->sa_family == AF_INET) {
		const struct sockaddr_in *p = (const void *)peer;
		const struct sockaddr_in *l = (const void *)local;

		q.req.sdiag_family = AF_INET;
		q.req.id.idiag_sport = p->sin_port;
		q.req.id.idiag_dport = l->sin_port;
		memcpy(q.req.id.idiag_src, &p->sin_addr, 4);
		memcpy(q.req.id.idiag_dst, &l->sin_addr, 4);
	} else if (peer->sa_family == AF_INET6 &&
	    local->sa_family == AF_INET6) {
		const struct sockaddr_in6 *p = (const void *)peer;
		const struct sockaddr_in6 *l = (const void *)local;

		q.req.sdiag_family = AF_INET6;
		q.req.id.idiag_sport = p->sin6_port;
		q.req.id.idiag_dport = l->sin6_port;
		memcpy(q.req.id.idiag_src, &p->sin6_addr, 16);
		memcpy(q.req.id.idiag_dst, &l->sin6_addr, 16);
	} else
		return -AR_EAUTH;
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -AR_EAUTH;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(&nl, 0, sizeof(nl));
	nl.nl_family = AF_NETLINK;
	if (sendto(fd, &q, sizeof(q), 0, (struct sockaddr *)&nl,
	    sizeof(nl)) != (ssize_t)sizeof(q)) {
		close(fd);
		return -AR_EAUTH;
	}
	n = recv(fd, a.buf, sizeof(a.buf), 0);
	close(fd);
	if (n < (ssize_t)NLMSG_LENGTH(sizeof(*m)) ||
	    !NLMSG_OK(&a.nlh, (size_t)n) ||
	    a.nlh.nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    a.nlh.nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return -AR_EAUTH;
	m = NLMSG_DATA(&a.nlh);
	*uid = m->idiag_uid;
	return 0;
}

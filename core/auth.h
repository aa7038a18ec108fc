/*
 * auth.h: how peers prove who they are: the shared token that every
 * request must carry and, with TLS, the keys of both ends (tls.h).
 *
 * The token is read from auth_token_file (first line, surrounding
 * whitespace removed) and compared in constant time, so a peer learns
 * nothing from response timing. With TLS it is a second factor.
 */
#ifndef ASYNCREP_AUTH_H
#define ASYNCREP_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "tls.h"

#define AUTH_TOKEN_MIN 16
#define AUTH_TOKEN_MAX 256

struct auth {
	int enabled;			/* 0: no token configured */
	size_t len;
	char token[AUTH_TOKEN_MAX + 1];
	struct tls tls;			/* tls_load fills it after auth_load */
};

/* path NULL disables authentication. Errors name the file and reason.
 * Clears all of *a, TLS included: load the token first. */
int auth_load(struct auth *a, const char *path, char *err, size_t errlen);

/* Wipe the token and release the TLS material. */
void auth_release(struct auth *a);

/*
 * Whether a server may listen on addr: a loopback address always; any
 * other only with TLS (a->tls), or with tls = off written (tls_mode,
 * enum config_onoff) and a token. Returns 0, or -AR_ECONFIG with the
 * reason in err.
 */
int auth_listen_check(const struct auth *a, const struct config_addr *addr,
    int tls_mode, char *err, size_t errlen);

/* 1 if an Authorization header value ("Bearer TOKEN") is acceptable:
 * always when authentication is disabled. */
int auth_check(const struct auth *a, const char *header);

/* The header line a client sends ("Authorization: Bearer TOKEN") into
 * out; "" when authentication is disabled. */
int auth_header(const struct auth *a, char *out, size_t outlen);

/* 1 if the socket address is a loopback address (127/8 or ::1). */
int auth_addr_is_loopback(const void *sockaddr);

/*
 * The uid owning the TCP socket at peer that is connected to local,
 * both on this host (loopback), from the kernel's socket diagnostics
 * (NETLINK_SOCK_DIAG, inet_diag): SO_PEERCRED is for Unix sockets only.
 * Returns 0, or -AR_EAUTH when the kernel does not tell (not found, not
 * TCP, no sock_diag).
 */
int auth_peer_uid(const struct sockaddr *peer, const struct sockaddr *local,
    uint32_t *uid);

/*
 * Failed authentications, per peer address (pure: the caller locks and
 * gives the time). AUTH_BACKOFF_FREE failures are free; each one after
 * refuses that address for twice as long as the last (AUTH_BACKOFF_BASE_MS
 * up to AUTH_BACKOFF_MAX_MS), without looking at what it sends; a success
 * or AUTH_BACKOFF_FORGET_MS without a failure clears it. Log lines about
 * an address are at most one per AUTH_BACKOFF_LOG_MS, with the count of
 * those held back. A full table forgets the stalest of AUTH_BACKOFF_WAYS
 * entries of a hash bucket.
 */
#define AUTH_BACKOFF_SLOTS 256
#define AUTH_BACKOFF_WAYS 8
#define AUTH_BACKOFF_ADDR_MAX 63
#define AUTH_BACKOFF_FREE 5
#define AUTH_BACKOFF_BASE_MS 100
#define AUTH_BACKOFF_MAX_MS 10000
#define AUTH_BACKOFF_FORGET_MS 600000
#define AUTH_BACKOFF_LOG_MS 10000

struct auth_backoff_entry {
	char addr[AUTH_BACKOFF_ADDR_MAX + 1];	/* "" : free */
	unsigned fails;		/* in a row, since the last success */
	uint64_t last_ms;	/* of the last failure */
	uint64_t until_ms;	/* refused until then */
	uint64_t logged_ms;	/* of the last log line, 0: none yet */
	uint64_t held;		/* log lines held back since */
};

struct auth_backoff {
	struct auth_backoff_entry e[AUTH_BACKOFF_SLOTS];
};

/* May addr try now? 0, or -AR_EAUTH with *wait_ms until it may (and a
 * log line due in *log, with *held lines held back before it). */
int auth_backoff_check(struct auth_backoff *b, const char *addr,
    uint64_t now_ms, uint64_t *wait_ms, int *log, uint64_t *held);
/* A failure of addr: *log says whether to log it now, *held how many
 * lines were held back before it. */
void auth_backoff_fail(struct auth_backoff *b, const char *addr,
    uint64_t now_ms, int *log, uint64_t *held);
/* A success of addr: forget its failures. */
void auth_backoff_ok(struct auth_backoff *b, const char *addr);

#endif

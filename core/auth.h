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

#endif

/*
 * client.h: the standby's HTTP transport (libcurl).
 *
 * One reusable easy handle, so requests share a kept-alive connection.
 * Bodies stream both ways through callbacks; nothing is buffered whole.
 * It maps transport failures onto the error enum: unreachable, stalled
 * or reset -> -AR_EUNREACH, 401 -> -AR_EAUTH, other HTTP errors ->
 * -AR_EPROTO, and a callback's own error is returned as is.
 */
#ifndef ASYNCREP_CLIENT_H
#define ASYNCREP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>

#include "auth.h"
#include "config.h"
#include "wire.h"

struct client;

/* Receives the response body in pieces; a negative return aborts the
 * transfer and is returned by the request function. */
typedef int client_body_cb(void *arg, const void *data, size_t len);
/* Produces request body bytes: > 0 bytes, 0 at the end, < 0 error. */
typedef ssize_t client_upload_cb(void *arg, void *buf, size_t len);
/* Restarts the upload from its first byte. */
typedef int client_rewind_cb(void *arg);

int client_new(const struct config_standby *cfg, const struct auth *auth,
    struct client **out);
void client_free(struct client *c);

/* GET path; the body goes to cb. */
int client_get(struct client *c, const char *path, client_body_cb *cb,
    void *arg);
/* POST a body held in memory. */
int client_post_buf(struct client *c, const char *path, const void *body,
    size_t len, client_body_cb *cb, void *arg);
/* POST a streamed body (chunked). */
int client_post_stream(struct client *c, const char *path,
    client_upload_cb *up, client_rewind_cb *rewind, void *uparg,
    client_body_cb *cb, void *arg);

/*
 * GET /v1/hello, offering WIRE_VERSION_MIN to WIRE_VERSION_MAX
 * (PROTOCOL.md "Versions"): *h is the one hello frame of the answer,
 * decoded, and h->version the version chosen, which every later request
 * of c names. A version outside our range, or the server's refusal (an X
 * frame with code 10), is -AR_EVERSION; an answer that is not exactly one
 * well-formed hello is -AR_EPROTO, and so is a 404 (the peer is not
 * asyncrep); each explained by client_errmsg; otherwise as client_get.
 */
int client_hello(struct client *c, struct wire_hello *h);

/* The protocol version the last hello chose (0 before any). */
uint32_t client_version(const struct client *c);
/* Name version in c's later requests, as a hello of c had chosen it:
 * for a second connection to a server whose hello was asked on another. */
int client_set_version(struct client *c, uint32_t version);

/* base, or base?key=VALUE with VALUE percent-encoded when not empty. */
int client_url(struct client *c, const char *base, const char *key,
    const char *value, char *out, size_t outlen);

/* Abort transfers (with -AR_ESIGNAL) once *flag becomes non-zero. */
void client_set_abort(struct client *c, volatile sig_atomic_t *flag);

struct rate;
/* Pace what c receives by r (bwlimit; shared by the clients of a run),
 * or NULL for no limit. */
void client_set_rate(struct client *c, struct rate *r);

/* Bytes sent and received on the wire (headers and bodies) so far. */
void client_traffic(const struct client *c, uint64_t *sent,
    uint64_t *received);

/* HTTP status of the last request (0 if none was answered). */
long client_status(const struct client *c);

/* The last error, explained ("connect to 127.0.0.1:9: refused"). */
const char *client_errmsg(const struct client *c);

#endif

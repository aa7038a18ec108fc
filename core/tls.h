/*
 * tls.h: mutual TLS between a standby and a primary or rescue (GnuTLS).
 *
 * This module owns the TLS material of a role, read from the files the
 * configuration names (tls_cert, tls_key, tls_ca) and the pins of
 * tls_trust: it checks it once, at start-up, and holds it in memory for
 * libmicrohttpd (server.c) and libcurl (client.c). It decides whether a
 * peer's certificate is one we trust: its key pinned, or its chain
 * signed by tls_ca and within its dates. It also makes the key and
 * self-signed certificate of asyncrep keygen.
 *
 * A pin is the identity of a key (pin.h): with pins, a certificate's
 * dates and names are not looked at, as in Syncthing.
 */
#ifndef ASYNCREP_TLS_H
#define ASYNCREP_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "pin.h"

/*
 * GnuTLS priorities of both ends: TLS 1.3 only, which has neither
 * renegotiation nor compression; the server issues no session tickets,
 * so that every connection presents its certificate. AES-128-GCM, which
 * every TLS 1.3 peer has, first and by the server's choice: a sixth
 * faster than AES-256-GCM here, and the bulk of the initial sync's cost.
 */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:" \
	"+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:%SERVER_PRECEDENCE:" \
	"%NO_TICKETS"

/* The largest certificate, key or CA bundle file read. */
#define TLS_FILE_MAX (1024 * 1024)

/* The files tls_load reads, as indexes of its dirfds argument. */
enum tls_file {
	TLS_FILE_CERT,
	TLS_FILE_KEY,
	TLS_FILE_CA,
	TLS_NFILES,
};

struct tls {
	int enabled;			/* 0: plain HTTP */
	char *cert;			/* our certificate chain, PEM, NUL-ended */
	size_t cert_len;
	char *key;			/* its private key, PEM; wiped at release */
	size_t key_len;
	char *ca;			/* tls_ca, PEM, or NULL */
	size_t ca_len;
	struct pin_list trust;		/* tls_trust; n = 0 when not set */
	uint8_t own[PIN_LEN];		/* the pin of our own key */
	void *ca_list;			/* gnutls_x509_trust_list_t of ca */
};

/*
 * Read and check the TLS material of c into t (t->enabled = 0 when TLS
 * is off: nothing is read). Each file is opened at its path, or, when
 * dirfds is not NULL and dirfds[file] is not AT_FDCWD, under that
 * directory as under a root (fs_open_in_root: a rescue reading the
 * primary's storage). The key must be readable by its owner only, the
 * certificate must hold the key's public half, tls_ca at least one
 * certificate. Errors (-AR_ECONFIG, -AR_ENOMEM) name the key and the
 * file.
 */
int tls_load(struct tls *t, const struct config_tls *c,
    const int dirfds[TLS_NFILES], char *err, size_t errlen);
void tls_release(struct tls *t);

/*
 * The server's check of a connection's peer, session a gnutls_session_t
 * after the handshake: 0 when its certificate's key is in t->trust or
 * its chain verifies against tls_ca (dates included); -AR_EAUTH
 * otherwise, with the pin seen in pin ("" without a certificate) and
 * the reason in why.
 */
int tls_peer_check(const struct tls *t, void *session,
    char pin[PIN_TEXT_LEN + 1], char *why, size_t whylen);

/*
 * The pin of the key the TLS server at sa presents, for the message of
 * a refusal (libcurl does not say which key it refused): a handshake of
 * our own, with no certificate, bounded by timeout_ms. Returns 0, or
 * -AR_EUNREACH with the reason in why.
 */
int tls_probe_pin(const struct sockaddr *sa, socklen_t salen,
    unsigned timeout_ms, char pin[PIN_TEXT_LEN + 1], char *why,
    size_t whylen);

/*
 * asyncrep keygen: a new ECDSA P-256 key in dir/key.pem (mode 0600) and
 * a self-signed certificate for it in dir/cert.pem, for both ends (no
 * expiry: with pins, dates do not matter). dir is created (0700) if
 * missing; existing files are never replaced (-AR_EIO, EEXIST). Its pin
 * goes to pin.
 */
int tls_keygen(const char *dir, char pin[PIN_TEXT_LEN + 1], char *err,
    size_t errlen);

#endif

/*
 * pin.h: key pins, the identities of tls_trust.
 *
 * A pin is the SHA-256 of a peer's DER SubjectPublicKeyInfo, written
 * "sha256:" and 64 hex digits: what
 * "openssl x509 -pubkey -noout | openssl pkey -pubin -outform der |
 * sha256sum" prints, and what asyncrep keygen prints. This module parses
 * and formats pins and lists of pins, and writes a list in curl's
 * CURLOPT_PINNEDPUBLICKEY form. Pure: no TLS library, no I/O, so it is
 * unit-tested and fuzzed (test/fuzz/fuzz-pin.c) on its own.
 */
#ifndef ASYNCREP_PIN_H
#define ASYNCREP_PIN_H

#include <stddef.h>
#include <stdint.h>

#define PIN_LEN 32		/* bytes of a SHA-256 */
#define PIN_PREFIX "sha256:"
#define PIN_TEXT_LEN (7 + 2 * PIN_LEN)	/* "sha256:" + hex, no NUL */
#define PIN_MAX 64		/* pins in one list */
/* curl's form of one pin: "sha256//" + base64 of 32 bytes (44). */
#define PIN_CURL_LEN (8 + 44)

struct pin_list {
	size_t n;
	uint8_t pin[PIN_MAX][PIN_LEN];
};

/*
 * Parse a comma-separated list of pins, blanks around each allowed, hex
 * digits of either case: "sha256:HEX, sha256:HEX". At least one pin, at
 * most PIN_MAX, none twice. Returns 0 and fills *out, or -AR_EUSAGE with
 * the reason in *why (a static string) and *out left alone.
 */
int pin_list_parse(const char *s, struct pin_list *out, const char **why);

/* 1 if pin is in the list. */
int pin_list_has(const struct pin_list *l, const uint8_t pin[PIN_LEN]);

/* "sha256:" and lowercase hex, NUL-terminated. */
void pin_format(const uint8_t pin[PIN_LEN], char out[PIN_TEXT_LEN + 1]);

/*
 * The list as CURLOPT_PINNEDPUBLICKEY takes it, "sha256//BASE64" joined
 * by ';', into out. Returns 0, or -AR_ENOMEM when it does not fit
 * (PIN_MAX * (PIN_CURL_LEN + 1) always does).
 */
int pin_list_curl(const struct pin_list *l, char *out, size_t outlen);

#endif

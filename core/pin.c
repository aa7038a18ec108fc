/*
 * pin.c: parsing and formatting of key pins (pin.h). Pure.
 */
#include <assert.h>
#include <string.h>

#include "error.h"
#include "pin.h"

static int
pin_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
pin_blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * One pin at *sp (blanks before it already skipped) into pin; *sp moves
 * past its last hex digit. Reads no byte past the first that does not
 * belong.
 */
static int
pin_parse_one(const char **sp, uint8_t pin[PIN_LEN], const char **why)
{
	const char *s = *sp;
	size_t i;
	int hi, lo;

	if (strncmp(s, PIN_PREFIX, sizeof(PIN_PREFIX) - 1) != 0) {
		*why = "a pin starts with 'sha256:'";
		return -AR_EUSAGE;
	}
	s += sizeof(PIN_PREFIX) - 1;
	for (i = 0; i < PIN_LEN; i++) {
		hi = pin_hexval(s[0]);
		lo = hi < 0 ? -1 : pin_hexval(s[1]);
		if (lo < 0) {
			*why = "a pin has 64 hex digits after 'sha256:'";
			return -AR_EUSAGE;
		}
		pin[i] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	if (pin_hexval(*s) >= 0) {
		*why = "a pin has 64 hex digits after 'sha256:'";
		return -AR_EUSAGE;
	}
	*sp = s;
	return 0;
}

int
pin_list_parse(const char *s, struct pin_list *out, const char **why)
{
	static struct pin_list empty;
	struct pin_list l = empty;
	uint8_t pin[PIN_LEN];

	assert(s != NULL && out != NULL && why != NULL);
	for (;;) {
		while (pin_blank(*s))
			s++;
		if (*s == '\0' && l.n == 0) {
			*why = "must not be empty";
			return -AR_EUSAGE;
		}
		if (pin_parse_one(&s, pin, why) != 0)
			return -AR_EUSAGE;
		if (pin_list_has(&l, pin)) {
			*why = "a pin is listed twice";
			return -AR_EUSAGE;
		}
		if (l.n == PIN_MAX) {
			*why = "too many pins (at most 64)";
			return -AR_EUSAGE;
		}
		memcpy(l.pin[l.n++], pin, PIN_LEN);
		while (pin_blank(*s))
			s++;
		if (*s == '\0')
			break;
		if (*s != ',') {
			*why = "pins are separated by commas";
			return -AR_EUSAGE;
		}
		s++;
	}
	*out = l;
	return 0;
}

int
pin_list_has(const struct pin_list *l, const uint8_t pin[PIN_LEN])
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (memcmp(l->pin[i], pin, PIN_LEN) == 0)
			return 1;
	}
	return 0;
}

void
pin_format(const uint8_t pin[PIN_LEN], char out[PIN_TEXT_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = sizeof(PIN_PREFIX) - 1;

	memcpy(out, PIN_PREFIX, o);
	for (i = 0; i < PIN_LEN; i++) {
		out[o++] = hex[pin[i] >> 4];
		out[o++] = hex[pin[i] & 15];
	}
	out[o] = '\0';
}

/* Base64 (RFC 4648, padded) of len bytes into out, NUL-terminated;
 * out holds 4 * ceil(len / 3) + 1 bytes. */
static void
pin_base64(const uint8_t *in, size_t len, char *out)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;
	uint32_t v;

	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = b64[v >> 6 & 63];
		out[o++] = b64[v & 63];
	}
	if (i < len) {
		v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
}

int
pin_list_curl(const struct pin_list *l, char *out, size_t outlen)
{
	char b64[45];
	size_t i, off = 0;

	if (outlen == 0)
		return -AR_ENOMEM;
	out[0] = '\0';
	for (i = 0; i < l->n; i++) {
		pin_base64(l->pin[i], PIN_LEN, b64);
		if (off + (i > 0) + PIN_CURL_LEN + 1 > outlen)
			return -AR_ENOMEM;
		if (i > 0)
			out[off++] = ';';
		memcpy(out + off, "sha256//", 8);
		memcpy(out + off + 8, b64, 44);
		off += PIN_CURL_LEN;
		out[off] = '\0';
	}
	return 0;
}

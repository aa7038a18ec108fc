/*
 * fuzz-pin.c: libFuzzer target for pin_list_parse, the parser of
 * tls_trust (a configuration value, and an option).
 *
 * The input is the value, cut at its first NUL as a C string would be.
 * The verdict and the pins must be those of an independent reference
 * (split at commas, blanks trimmed, each item "sha256:" and exactly 64
 * hex digits, at most 64 items, none twice); a refused list must leave
 * the output alone and give a reason; an accepted one must format back
 * into a list that parses to the same pins, and into curl's form.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "pin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Longer values are cut: a whole list of 64 pins is 4.6 KB. */
#define FUZZ_PIN_MAX 8192

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static int
ref_hex(char c, uint8_t *v)
{
	const char *digits = "0123456789abcdef";
	const char *p;

	if (c >= 'A' && c <= 'F')
		c = (char)(c - 'A' + 'a');
	p = c != '\0' ? strchr(digits, c) : NULL;
	if (p == NULL)
		return 0;
	*v = (uint8_t)(p - digits);
	return 1;
}

/* The reference: 1 and the pins in *l, or 0. */
static int
ref_parse(char *s, struct pin_list *l)
{
	char *item = s, *comma, *end;
	uint8_t hi, lo;
	size_t i, k;

	l->n = 0;
	for (;;) {
		comma = strchr(item, ',');
		if (comma != NULL)
			*comma = '\0';
		while (*item == ' ' || *item == '\t')
			item++;
		end = item + strlen(item);
		while (end > item && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t)(end - item) != PIN_TEXT_LEN ||
		    memcmp(item, "sha256:", 7) != 0 || l->n == PIN_MAX)
			return 0;
		for (i = 0; i < PIN_LEN; i++) {
			if (!ref_hex(item[7 + 2 * i], &hi) ||
			    !ref_hex(item[8 + 2 * i], &lo))
				return 0;
			l->pin[l->n][i] = (uint8_t)(hi << 4 | lo);
		}
		for (k = 0; k < l->n; k++) {
			if (memcmp(l->pin[k], l->pin[l->n], PIN_LEN) == 0)
				return 0;
		}
		l->n++;
		if (comma == NULL)
			return 1;
		item = comma + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char s[FUZZ_PIN_MAX + 1], copy[FUZZ_PIN_MAX + 1];
	static char again[PIN_MAX * (PIN_TEXT_LEN + 2) + 1];
	static char curl[PIN_MAX * (PIN_CURL_LEN + 1)];
	static struct pin_list out, before, ref, back;
	const char *why = NULL;
	size_t i, off;
	int r, ok;

	if (size > FUZZ_PIN_MAX)
		size = FUZZ_PIN_MAX;
	memcpy(s, data, size);
	s[size] = '\0';
	memcpy(copy, s, size + 1);
	ok = ref_parse(copy, &ref);

	memset(&out, 0xa5, sizeof(out));
	memcpy(&before, &out, sizeof(out));
	r = pin_list_parse(s, &out, &why);
	CHECK(r == 0 || r == -AR_EUSAGE);
	CHECK((r == 0) == ok);
	if (r != 0) {
		CHECK(why != NULL && why[0] != '\0');
		CHECK(memcmp(&out, &before, sizeof(out)) == 0);
		return 0;
	}
	CHECK(out.n >= 1 && out.n <= PIN_MAX && out.n == ref.n);
	CHECK(memcmp(out.pin, ref.pin, out.n * PIN_LEN) == 0);

	/* Formatted back, joined by ", ": the same pins. */
	off = 0;
	for (i = 0; i < out.n; i++) {
		CHECK(pin_list_has(&out, out.pin[i]));
		if (i > 0) {
			memcpy(again + off, ", ", 2);
			off += 2;
		}
		pin_format(out.pin[i], again + off);
		CHECK(strlen(again + off) == PIN_TEXT_LEN);
		off += PIN_TEXT_LEN;
	}
	CHECK(pin_list_parse(again, &back, &why) == 0);
	CHECK(back.n == out.n);
	CHECK(memcmp(back.pin, out.pin, out.n * PIN_LEN) == 0);

	CHECK(pin_list_curl(&out, curl, sizeof(curl)) == 0);
	CHECK(strlen(curl) == out.n * (PIN_CURL_LEN + 1) - 1);
	return 0;
}

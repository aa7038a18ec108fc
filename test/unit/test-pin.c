/*
 * test-pin.c: key pins (pin.h): parsing a tls_trust list, formatting,
 * lookup and curl's CURLOPT_PINNEDPUBLICKEY form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "pin.h"

#define HEX_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define HEX_B "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define PIN_A "sha256:" HEX_A
#define PIN_B "sha256:" HEX_B

static void
test_one_pin(void **state)
{
	struct pin_list l;
	const char *why = NULL;
	char text[PIN_TEXT_LEN + 1];

	(void)state;
	assert_int_equal(pin_list_parse(PIN_A, &l, &why), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.pin[0][0], 0x00);
	assert_int_equal(l.pin[0][1], 0x11);
	assert_int_equal(l.pin[0][31], 0xff);
	pin_format(l.pin[0], text);
	assert_string_equal(text, PIN_A);
	assert_int_equal(strlen(text), PIN_TEXT_LEN);
}

static void
test_list_with_blanks_and_case(void **state)
{
	struct pin_list l;
	const char *why = NULL;
	char text[PIN_TEXT_LEN + 1];

	(void)state;
	assert_int_equal(pin_list_parse(" \t" PIN_A " ,sha256:"
	    "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
	    "\t ", &l, &why), 0);
	assert_int_equal(l.n, 2);
	assert_true(pin_list_has(&l, l.pin[0]));
	pin_format(l.pin[1], text);
	assert_string_equal(text, PIN_B);	/* lowercase again */
}

/* Each is refused with a reason, and the output is left alone. */
static void
test_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"   ",
		",",
		PIN_A ",",
		"," PIN_A,
		PIN_A ",," PIN_B,
		PIN_A " " PIN_B,
		PIN_A ";" PIN_B,
		HEX_A,
		"sha1:" HEX_A,
		"SHA256:" HEX_A,
		"sha256:",
		"sha256:" HEX_A "0",
		"sha256:" HEX_A "00",
		"sha256:0011",
		"sha256:g0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		"sha256: " HEX_A,
		PIN_A "x",
		PIN_A ", " PIN_A,
	};
	struct pin_list l;
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&l, 0x5a, sizeof(l));
		why = NULL;
		if (pin_list_parse(bad[i], &l, &why) != -AR_EUSAGE)
			fail_msg("accepted: '%s'", bad[i]);
		assert_non_null(why);
		assert_int_equal(((unsigned char *)&l)[0], 0x5a);
	}
}

static void
test_at_most_64(void **state)
{
	char list[(PIN_TEXT_LEN + 2) * (PIN_MAX + 1) + 1];
	uint8_t pin[PIN_LEN];
	struct pin_list l;
	const char *why;
	size_t off = 0, i;

	(void)state;
	memset(pin, 0, sizeof(pin));
	for (i = 0; i <= PIN_MAX; i++) {
		pin[0] = (uint8_t)i;
		if (i > 0)
			list[off++] = ',';
		pin_format(pin, list + off);
		off += PIN_TEXT_LEN;
		if (i == PIN_MAX - 1) {
			assert_int_equal(pin_list_parse(list, &l, &why), 0);
			assert_int_equal(l.n, PIN_MAX);
			assert_true(pin_list_has(&l, pin));
		}
	}
	assert_int_equal(pin_list_parse(list, &l, &why), -AR_EUSAGE);
	assert_string_equal(why, "too many pins (at most 64)");
}

static void
test_has(void **state)
{
	struct pin_list l;
	const char *why;
	uint8_t other[PIN_LEN];

	(void)state;
	assert_int_equal(pin_list_parse(PIN_A, &l, &why), 0);
	memcpy(other, l.pin[0], PIN_LEN);
	assert_true(pin_list_has(&l, other));
	other[31] ^= 1;
	assert_false(pin_list_has(&l, other));
	l.n = 0;
	assert_false(pin_list_has(&l, l.pin[0]));
}

/* Base64 vectors: 0..31 and 32 bytes of 0xff, checked with
 * "xxd -r -p | base64". */
static void
test_curl_form(void **state)
{
	struct pin_list l;
	const char *why;
	char out[PIN_MAX * (PIN_CURL_LEN + 1)];

	(void)state;
	assert_int_equal(pin_list_parse(PIN_B ", sha256:"
	    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	    &l, &why), 0);
	assert_int_equal(pin_list_curl(&l, out, sizeof(out)), 0);
	assert_string_equal(out,
	    "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=;"
	    "sha256//" "//////////////////////////////////////////8=");
	/* Exactly the room needed, and one byte less. */
	assert_int_equal(pin_list_curl(&l, out, 2 * PIN_CURL_LEN + 2), 0);
	assert_int_equal(pin_list_curl(&l, out, 2 * PIN_CURL_LEN + 1),
	    -AR_ENOMEM);
	assert_int_equal(pin_list_curl(&l, out, 0), -AR_ENOMEM);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_pin),
		cmocka_unit_test(test_list_with_blanks_and_case),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_at_most_64),
		cmocka_unit_test(test_has),
		cmocka_unit_test(test_curl_form),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

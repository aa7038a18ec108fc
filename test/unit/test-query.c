/*
 * test-query.c: the arguments of GET /v1/changes (query_changes_parse,
 * query_changes_ack).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "query.h"

#define GEN "0123456789abcdef0123456789abcdef"

static void
test_all_arguments(void **state)
{
	struct query_changes q;

	(void)state;
	assert_int_equal(query_changes_parse("42", "30000", GEN,
	    "standby-1.a_b", &q), 0);
	assert_true(q.since == 42);
	assert_true(q.wait_ms == 30000);
	assert_string_equal(q.gen, GEN);
	assert_string_equal(q.id, "standby-1.a_b");
}

static void
test_wait_is_optional(void **state)
{
	struct query_changes q;

	(void)state;
	q.wait_ms = 7;
	assert_int_equal(query_changes_parse("0", NULL, GEN, "a", &q), 0);
	assert_true(q.since == 0);
	assert_true(q.wait_ms == 0);
}

static void
test_limits(void **state)
{
	struct query_changes q;
	char id[QUERY_ID_MAX + 2];

	(void)state;
	assert_int_equal(query_changes_parse("18446744073709551615", "60000",
	    GEN, "a", &q), 0);
	assert_true(q.since == UINT64_MAX);
	assert_true(q.wait_ms == QUERY_WAIT_MAX_MS);
	assert_int_equal(query_changes_parse("18446744073709551616", NULL,
	    GEN, "a", &q), -AR_EPROTO);
	assert_int_equal(query_changes_parse("99999999999999999999999", NULL,
	    GEN, "a", &q), -AR_EPROTO);
	assert_int_equal(query_changes_parse("1", "60001", GEN, "a", &q),
	    -AR_EPROTO);
	memset(id, 'x', QUERY_ID_MAX);
	id[QUERY_ID_MAX] = '\0';
	assert_int_equal(query_changes_parse("1", NULL, GEN, id, &q), 0);
	assert_string_equal(q.id, id);
	id[QUERY_ID_MAX] = 'x';
	id[QUERY_ID_MAX + 1] = '\0';
	assert_int_equal(query_changes_parse("1", NULL, GEN, id, &q),
	    -AR_EPROTO);
}

/* Digits only: no sign, space, hex or trailing bytes; never empty. */
static void
test_numbers_are_digits_only(void **state)
{
	static const char *const bad[] = {
		"", "-1", "+1", " 1", "1 ", "0x10", "1a", "1.0", "１",
	};
	struct query_changes q;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(query_changes_parse(bad[i], NULL, GEN, "a",
		    &q), -AR_EPROTO);
		assert_int_equal(query_changes_parse("1", bad[i], GEN, "a",
		    &q), -AR_EPROTO);
	}
	assert_int_equal(query_changes_parse("007", "0010", GEN, "a", &q), 0);
	assert_true(q.since == 7 && q.wait_ms == 10);
}

static void
test_missing_arguments(void **state)
{
	struct query_changes q;

	(void)state;
	assert_int_equal(query_changes_parse(NULL, NULL, GEN, "a", &q),
	    -AR_EPROTO);
	assert_int_equal(query_changes_parse("1", NULL, NULL, "a", &q),
	    -AR_EPROTO);
	assert_int_equal(query_changes_parse("1", NULL, GEN, NULL, &q),
	    -AR_EPROTO);
}

static void
test_generation(void **state)
{
	static const char *const bad[] = {
		"", "0123456789abcdef0123456789abcde",
		"0123456789abcdef0123456789abcdef0",
		"0123456789ABCDEF0123456789ABCDEF",
		"0123456789abcdef0123456789abcdeg",
		"0123456789abcdef0123456789abcde\n",
	};
	struct query_changes q;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(query_changes_parse("1", NULL, bad[i], "a",
		    &q), -AR_EPROTO);
}

static void
test_id(void **state)
{
	static const char *const bad[] = {
		"", "a/b", "a b", "a%2f", "..\n", "é", "a=b", "a&b",
	};
	struct query_changes q;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(query_changes_parse("1", NULL, GEN, bad[i],
		    &q), -AR_EPROTO);
	assert_int_equal(query_changes_parse("1", NULL, GEN, "..", &q), 0);
}

/* A refused query leaves the output as it was. */
static void
test_refused_leaves_output(void **state)
{
	struct query_changes q, before;

	(void)state;
	memset(&q, 0x5a, sizeof(q));
	memcpy(&before, &q, sizeof(q));
	assert_int_equal(query_changes_parse("1", "5", GEN, "a/b", &q),
	    -AR_EPROTO);
	assert_memory_equal(&q, &before, sizeof(q));
}

/* ack= (version 4): absent, it is since; present, digits up to since. */
static void
test_ack(void **state)
{
	static const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "x",
	    "43", "18446744073709551616" };
	struct query_changes q;
	size_t i;

	(void)state;
	assert_int_equal(query_changes_parse("42", NULL, GEN, "a", &q), 0);
	assert_true(q.ack == 42);
	assert_int_equal(query_changes_ack(NULL, &q), 0);
	assert_true(q.ack == 42);
	assert_int_equal(query_changes_ack("0", &q), 0);
	assert_true(q.ack == 0 && q.since == 42);
	assert_int_equal(query_changes_ack("42", &q), 0);
	assert_true(q.ack == 42);
	assert_int_equal(query_changes_ack("17", &q), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(query_changes_ack(bad[i], &q), -AR_EPROTO);
		assert_true(q.ack == 17);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_arguments),
		cmocka_unit_test(test_ack),
		cmocka_unit_test(test_wait_is_optional),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_numbers_are_digits_only),
		cmocka_unit_test(test_missing_arguments),
		cmocka_unit_test(test_generation),
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_refused_leaves_output),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

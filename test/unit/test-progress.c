/*
 * test-progress.c: the progress line of core/progress.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "progress.h"

#define SEC 1000000000ull

static void
test_format(void **state)
{
	struct progress p;
	char line[160];

	(void)state;
	memset(&p, 0, sizeof(p));
	p.start_ns = 10 * SEC;
	progress_totals(&p, 100, 4ull << 20);
	p.entries = 25;
	p.bytes = 1ull << 20;
	p.received = 2ull << 20;
	/* A quarter in 2 s: 6 s left; 2 MiB in 2 s is 1 MiB/s. */
	progress_format(&p, 12 * SEC, line, sizeof(line));
	assert_string_equal(line, " 25%  25/100 entries  1.0M/4.0M  1.0M/s  "
	    "0:00:06 ETA");
	/* Done: the time it took. */
	p.entries = 100;
	p.bytes = 4ull << 20;
	progress_format(&p, 3733 * SEC + 10 * SEC, line, sizeof(line));
	assert_string_equal(line, "100%  100/100 entries  4.0M/4.0M  561B/s  "
	    "1:02:13 elapsed");
	/* A tree of empty files goes by entries. */
	progress_totals(&p, 10, 0);
	p.entries = 5;
	p.bytes = 0;
	p.received = 0;
	progress_format(&p, 11 * SEC, line, sizeof(line));
	assert_string_equal(line, " 50%  5/10 entries  0B/0B  0B/s  "
	    "0:00:01 ETA");
}

static void
test_off_without_terminal(void **state)
{
	struct progress p;
	FILE *f = tmpfile();

	(void)state;
	assert_non_null(f);
	progress_init(&p, 1, f);
	assert_null(p.out);	/* a file is no terminal */
	progress_begin(&p, 0);
	progress_entry(&p, 5);
	progress_finish(&p);
	assert_int_equal(ftell(f), 0);
	fclose(f);
	progress_init(&p, 0, stderr);
	assert_null(p.out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_off_without_terminal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-rate.c: the token bucket of bwlimit, on a fake clock.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "rate.h"

#define NS UINT64_C(1000000000)
#define MIB (UINT64_C(1024) * 1024)

static uint64_t fake_now;

static uint64_t
fake_clock(void)
{
	return fake_now;
}

static void
test_unlimited(void **state)
{
	struct rate r;

	(void)state;
	fake_now = 5;
	rate_init(&r, 0, fake_clock);
	assert_int_equal(rate_take(&r, UINT64_C(1) << 40), 0);
	assert_int_equal(rate_room(&r, 12345), 12345);
	rate_release(&r);
}

static void
test_burst_then_debt(void **state)
{
	struct rate r;
	uint64_t burst = MIB / 10, w;

	(void)state;
	fake_now = 1000;
	rate_init(&r, MIB, fake_clock);
	/* A full bucket: a tenth of a second of rate goes at once. */
	assert_int_equal(rate_room(&r, UINT64_MAX), burst);
	assert_int_equal(rate_take(&r, burst), 0);
	assert_int_equal(rate_room(&r, UINT64_MAX), 0);
	/* One byte more is one byte of debt: 1/rate of a second. */
	w = rate_take(&r, 1);
	assert_int_equal(w, (NS + MIB - 1) / MIB);
	/* A MiB more: a second more. */
	w = rate_take(&r, MIB);
	assert_true(w >= NS && w <= NS + 2000);
	/* Waiting it out leaves no debt, and no credit. */
	fake_now += w;
	assert_int_equal(rate_room(&r, UINT64_MAX), 0);
	assert_int_equal(rate_take(&r, 0), 0);
	/* Idle for an hour: the bucket holds its burst, not an hour. */
	fake_now += 3600 * NS;
	assert_int_equal(rate_room(&r, UINT64_MAX), burst);
	rate_release(&r);
}

/* A sender that waits as told never beats the rate by more than the
 * burst, and loses nothing to rounding over a long run. */
static void
test_long_run_holds_the_rate(void **state)
{
	struct rate r;
	const uint64_t rate = 3 * MIB + 7, chunk = 16381;
	uint64_t start, sent = 0, i, w, burst = rate / 10;
	double elapsed, expect;

	(void)state;
	fake_now = start = 42;
	rate_init(&r, rate, fake_clock);
	for (i = 0; i < 20000; i++) {
		w = rate_take(&r, chunk);
		sent += chunk;
		fake_now += w;
		/* never more than rate × time + burst */
		assert_true((double)sent <= (double)rate *
		    (double)(fake_now - start) / (double)NS + (double)burst +
		    1.0);
	}
	elapsed = (double)(fake_now - start) / (double)NS;
	expect = (double)(sent - burst) / (double)rate;
	/* the time taken is the bytes over the rate, to a nanosecond each */
	assert_true(elapsed >= expect - 1e-6);
	assert_true(elapsed <= expect + 20000e-9 + 1e-6);
	rate_release(&r);
}

/* A clock that does not move (or goes back) earns nothing. */
static void
test_clock_standing_still(void **state)
{
	struct rate r;

	(void)state;
	fake_now = 10 * NS;
	rate_init(&r, 1000000, fake_clock);
	assert_int_equal(rate_take(&r, 1000000 / 10), 0);
	fake_now -= NS;
	assert_int_equal(rate_room(&r, UINT64_MAX), 0);
	assert_true(rate_take(&r, 1000000) >= NS);
	rate_release(&r);
}

static void
test_small_rate_small_burst(void **state)
{
	struct rate r;

	(void)state;
	fake_now = 0;
	rate_init(&r, 1024, fake_clock);
	assert_int_equal(rate_room(&r, UINT64_MAX), RATE_BURST_MIN);
	rate_release(&r);
}

static void
test_wait_stops_early(void **state)
{
	volatile sig_atomic_t stop = 1;

	(void)state;
	assert_int_equal(rate_wait(3600 * NS, &stop), -1);
	stop = 0;
	assert_int_equal(rate_wait(1000, &stop), 0);
	assert_int_equal(rate_wait(0, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unlimited),
		cmocka_unit_test(test_burst_then_debt),
		cmocka_unit_test(test_long_run_holds_the_rate),
		cmocka_unit_test(test_clock_standing_still),
		cmocka_unit_test(test_small_rate_small_burst),
		cmocka_unit_test(test_wait_stops_early),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test-guard.c: the storage watchdog. Its handler records instead of
 * ending the process. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "guard.h"

#define MS (1000ull * 1000ull)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int fired;
static struct guard_expiry seen;

static void
record(void *arg, const struct guard_expiry *e)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	fired++;
	seen = *e;
	pthread_mutex_unlock(&lock);
}

static int
fired_count(void)
{
	int n;

	pthread_mutex_lock(&lock);
	n = fired;
	pthread_mutex_unlock(&lock);
	return n;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int
setup(void **state)
{
	(void)state;
	fired = 0;
	memset(&seen, 0, sizeof(seen));
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	guard_stop();
	return 0;
}

/* A stretch that makes no progress past the limit fires, naming it. */
static void
test_stuck_fires(void **state)
{
	(void)state;
	assert_int_equal(guard_start(300 * MS, record, NULL), 0);
	guard_enter("reading the journal");
	sleep_ms(1500);
	guard_leave();
	assert_int_equal(fired_count(), 1);
	assert_string_equal(seen.what, "reading the journal");
	assert_true(seen.stuck_ns >= 300 * MS);
}

/* Progress restarts the clock: a long stretch that progresses lives. */
static void
test_progress_keeps_alive(void **state)
{
	int i;

	(void)state;
	assert_int_equal(guard_start(2000 * MS, record, NULL), 0);
	guard_enter("sending a large file");
	for (i = 0; i < 60; i++) {
		sleep_ms(50);
		guard_progress();
	}
	guard_leave();
	assert_int_equal(fired_count(), 0);
}

/* Outside a stretch, idling is fine; progress outside one is ignored. */
static void
test_idle_is_fine(void **state)
{
	(void)state;
	assert_int_equal(guard_start(200 * MS, record, NULL), 0);
	guard_progress();
	guard_enter("a short one");
	guard_leave();
	sleep_ms(800);
	assert_int_equal(fired_count(), 0);
}

/* Nested stretches: only the outermost pair closes the stretch. */
static void
test_nesting(void **state)
{
	(void)state;
	assert_int_equal(guard_start(300 * MS, record, NULL), 0);
	guard_enter("outer");
	guard_enter("inner");
	guard_leave();
	sleep_ms(1200);
	assert_int_equal(fired_count(), 1);
	assert_string_equal(seen.what, "outer");
	guard_leave();
}

static void *
stuck_thread(void *arg)
{
	(void)arg;
	guard_enter("answering a request");
	sleep_ms(1200);
	guard_leave();
	return NULL;
}

/* Another thread's stretch is watched too; the handler can be swapped
 * while the watchdog runs. */
static void
test_other_thread_and_handler(void **state)
{
	pthread_t t;

	(void)state;
	assert_int_equal(guard_start(300 * MS, NULL, NULL), 0);
	guard_handler(record, NULL);
	assert_int_equal(pthread_create(&t, NULL, stuck_thread, NULL), 0);
	pthread_join(t, NULL);
	assert_int_equal(fired_count(), 1);
	assert_string_equal(seen.what, "answering a request");
	/* A second start while running is refused. */
	assert_int_not_equal(guard_start(300 * MS, record, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stuck_fires, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_progress_keeps_alive,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_is_fine, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_nesting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_thread_and_handler,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

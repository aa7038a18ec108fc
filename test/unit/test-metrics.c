/*
 * test-metrics.c: the counters, their text, the collectors and the
 * textfile of core/metrics.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "fs.h"
#include "metrics.h"
#include "scratch.h"

/* The rendered text, NUL-terminated, to free. */
static char *
render(void)
{
	struct metrics_out out;
	char *s;

	assert_int_equal(metrics_render(&out), 0);
	s = strndup(out.buf, out.len);
	assert_non_null(s);
	metrics_out_release(&out);
	return s;
}

static void
test_roles(void **state)
{
	char *s;

	(void)state;
	metrics_init(METRICS_STANDBY);
	metrics_add(METRICS_RECV_FILES_WHOLE, 3);
	metrics_add(METRICS_SERVED_FILES_WHOLE, 5);	/* not a standby's */
	metrics_set(METRICS_APPLIED_SEQ, 42);
	metrics_set(METRICS_LAST_APPLY_NS, 1500000000ull);
	metrics_set_standby_state(METRICS_SB_COMPARING);
	s = render();
	assert_non_null(strstr(s, "# TYPE asyncrep_standby_received_files_"
	    "total counter\n"));
	assert_non_null(strstr(s, "\nasyncrep_standby_received_files_total"
	    "{kind=\"whole\"} 3\n"));
	assert_non_null(strstr(s, "\nasyncrep_standby_applied_sequence 42\n"));
	assert_non_null(strstr(s, "\nasyncrep_standby_last_apply_timestamp_"
	    "seconds 1.5\n"));
	assert_non_null(strstr(s, "{state=\"comparing\"} 1\n"));
	assert_non_null(strstr(s, "{state=\"following\"} 0\n"));
	assert_null(strstr(s, "asyncrep_served_files_total"));
	assert_null(strstr(s, "last_contact"));
	free(s);

	/* metrics_init starts from 0, in the role it names. */
	metrics_init(METRICS_PRIMARY);
	s = render();
	assert_non_null(strstr(s, "\nasyncrep_served_files_total"
	    "{kind=\"whole\"} 0\n"));
	assert_null(strstr(s, "asyncrep_standby_applied_sequence"));
	free(s);
}

static void
test_help_once(void **state)
{
	const char *p;
	char *s;
	int n = 0;

	(void)state;
	metrics_init(METRICS_PRIMARY);
	s = render();
	for (p = strstr(s, "# TYPE asyncrep_served_bytes_total "); p != NULL;
	    p = strstr(p + 1, "# TYPE asyncrep_served_bytes_total "))
		n++;
	assert_int_equal(n, 1);
	free(s);
}

static void
collect(struct metrics_out *out, void *arg)
{
	char esc[64], labels[96];

	metrics_out_family(out, "asyncrep_test_value", "gauge", "A test.");
	snprintf(labels, sizeof(labels), "standby=\"%s\"",
	    metrics_label_escape(arg, esc, sizeof(esc)));
	metrics_out_uint(out, "asyncrep_test_value", labels, 7);
}

static void
test_collector_and_escape(void **state)
{
	char esc[16], *s;

	(void)state;
	assert_string_equal(metrics_label_escape("a\"b\\c\nd", esc,
	    sizeof(esc)), "a\\\"b\\\\c\\nd");
	/* Bounded: cut, never overrun. */
	assert_true(strlen(metrics_label_escape("0123456789abcdefghij", esc,
	    sizeof(esc))) < sizeof(esc));
	metrics_init(METRICS_PRIMARY);
	metrics_set_collector(collect, (void *)"db\"1");
	s = render();
	assert_non_null(strstr(s, "\nasyncrep_test_value{standby=\"db\\\"1\"} "
	    "7\n"));
	free(s);
	metrics_set_collector(NULL, NULL);
	s = render();
	assert_null(strstr(s, "asyncrep_test_value"));
	free(s);
}

static void *
adder(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < 100000; i++)
		metrics_add(METRICS_REQUESTS, 1);
	return NULL;
}

static void
test_threads(void **state)
{
	pthread_t t[4];
	int i;

	(void)state;
	metrics_init(METRICS_PRIMARY);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, adder, NULL), 0);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(metrics_get(METRICS_REQUESTS), 400000);
}

static void
test_lag_age(void **state)
{
	char *s;

	(void)state;
	metrics_init(METRICS_STANDBY);
	s = render();
	assert_non_null(strstr(s, "\nasyncrep_standby_lag_seconds 0\n"));
	free(s);
	/* Disconnected after a contact: as old as the contact. */
	metrics_standby_contact();
	metrics_standby_disconnected();
	assert_int_equal(metrics_get(METRICS_BEHIND_NS),
	    metrics_get(METRICS_CONTACT_NS));
	/* Already behind: the older time stays. */
	metrics_set(METRICS_BEHIND_NS, 1000);
	metrics_standby_disconnected();
	assert_int_equal(metrics_get(METRICS_BEHIND_NS), 1000);
	s = render();
	assert_null(strstr(s, "\nasyncrep_standby_lag_seconds 0\n"));
	free(s);
}

static void
test_histogram(void **state)
{
	char *s;

	(void)state;
	metrics_init(METRICS_STANDBY);
	metrics_observe_apply(500000);		/* 0.5 ms */
	metrics_observe_apply(3000000);		/* 3 ms */
	metrics_observe_apply(120000000000ull);	/* 2 min */
	s = render();
	assert_non_null(strstr(s, "# TYPE asyncrep_standby_batch_apply_seconds "
	    "histogram\n"));
	/* Cumulative, ending with +Inf, _sum and _count. */
	assert_non_null(strstr(s, "_bucket{le=\"0.001\"} 1\n"));
	assert_non_null(strstr(s, "_bucket{le=\"0.005\"} 2\n"));
	assert_non_null(strstr(s, "_bucket{le=\"60\"} 2\n"));
	assert_non_null(strstr(s, "_bucket{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(s, "\nasyncrep_standby_batch_apply_seconds_sum "
	    "120.0035\n"));
	assert_non_null(strstr(s, "\nasyncrep_standby_batch_apply_seconds_count "
	    "3\n"));
	free(s);
}

static void
test_file(void **state)
{
	char dir[512], path[600], buf[65536];
	struct stat st;
	size_t len;

	(void)state;
	assert_int_equal(scratch_make(dir, sizeof(dir), "test-metrics"), 0);
	assert_int_equal(scratch_path(path, sizeof(path), dir, "a.prom"), 0);
	metrics_init(METRICS_STANDBY);
	metrics_set(METRICS_APPLIED_SEQ, 9);
	assert_int_equal(metrics_write_file(path), 0);
	assert_int_equal(fs_read_small(AT_FDCWD, path, buf, sizeof(buf), &len),
	    0);
	assert_non_null(strstr(buf, "\nasyncrep_standby_applied_sequence 9\n"));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	/* A directory that is not there: an error, nothing written. */
	assert_int_equal(scratch_path(path, sizeof(path), dir, "no/such"), 0);
	assert_int_equal(metrics_write_file(path), -AR_EIO);
	assert_int_equal(scratch_remove(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_help_once),
		cmocka_unit_test(test_collector_and_escape),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_lag_age),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

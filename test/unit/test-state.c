/*
 * test-state.c: the standby's state_dir: its lock, the generation
 * followed, closed generations, the position, and what status reads.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

#include "config.h"
#include "error.h"
#include "state.h"
#include "scratch.h"

#define GEN_A "0123456789abcdef0123456789abcdef"
#define GEN_B "fedcba9876543210fedcba9876543210"

struct tctx {
	char top[PATH_MAX];
	char dir[PATH_MAX];	/* the state_dir, made by state_open */
	struct state st;
	char err[512];
};

static int
setup(void **state)
{
	struct tctx *t;

	t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(scratch_make(t->top, sizeof(t->top), "test-state"),
	    0);
	assert_int_equal(scratch_path(t->dir, sizeof(t->dir), t->top,
	    "a/state"), 0);
	state_init(&t->st);
	assert_int_equal(state_open(&t->st, t->dir, t->err, sizeof(t->err)),
	    0);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tctx *t = *state;

	state_release(&t->st);
	scratch_remove(t->top);
	free(t);
	return 0;
}

static void
test_open_creates_private_and_locks(void **state)
{
	struct tctx *t = *state;
	struct state other;
	struct stat sb;

	assert_int_equal(stat(t->dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	state_init(&other);
	assert_int_equal(state_open(&other, t->dir, t->err, sizeof(t->err)),
	    -AR_ESTATE);
	assert_non_null(strstr(t->err, "another asyncrep sync is running"));
	state_release(&other);
	/* Released, the lock is free again. */
	state_release(&t->st);
	assert_int_equal(state_open(&t->st, t->dir, t->err, sizeof(t->err)),
	    0);
}

static void
test_position_belongs_to_its_generation(void **state)
{
	struct tctx *t = *state;
	uint64_t seq = 7;

	assert_int_equal(state_position_load(&t->st, GEN_A, &seq),
	    -AR_ESTATE);
	assert_int_equal(seq, 7);
	assert_int_equal(state_position_save(&t->st, GEN_A, 42, t->err,
	    sizeof(t->err)), 0);
	assert_int_equal(state_position_load(&t->st, GEN_A, &seq), 0);
	assert_int_equal(seq, 42);
	assert_int_equal(state_position_load(&t->st, GEN_B, &seq),
	    -AR_ESTATE);
	assert_int_equal(state_position_save(&t->st, GEN_A, UINT64_MAX,
	    t->err, sizeof(t->err)), 0);
	assert_int_equal(state_position_load(&t->st, GEN_A, &seq), 0);
	assert_true(seq == UINT64_MAX);
}

/* The closed file keeps the newest STATE_CLOSED_MAX (64) generations. */
static void
test_closed_generations_forget_the_oldest(void **state)
{
	struct tctx *t = *state;
	char gen[WIRE_GEN_LEN + 1];
	int i;

	assert_int_equal(state_gen_closed(&t->st, GEN_A), 0);
	for (i = 0; i < 65; i++) {
		snprintf(gen, sizeof(gen), "%032x", i);
		assert_int_equal(state_gen_close(&t->st, gen, 7, t->err,
		    sizeof(t->err)), 0);
	}
	snprintf(gen, sizeof(gen), "%032x", 0);
	assert_int_equal(state_gen_closed(&t->st, gen), 0);
	snprintf(gen, sizeof(gen), "%032x", 1);
	assert_int_equal(state_gen_closed(&t->st, gen), 1);
	snprintf(gen, sizeof(gen), "%032x", 64);
	assert_int_equal(state_gen_closed(&t->st, gen), 1);
	assert_int_equal(state_gen_closed(&t->st, GEN_A), 0);
}

static void
test_read_reports_what_sync_wrote(void **state)
{
	struct tctx *t = *state;
	struct state_info si;
	char missing[PATH_MAX + 16];

	assert_int_equal(state_read(t->dir, &si), 0);
	assert_string_equal(si.generation, "");
	assert_int_equal(si.have_position, 0);
	assert_int_equal(si.running, 1);
	assert_int_equal(state_gen_follow(&t->st, GEN_A, t->err,
	    sizeof(t->err)), 0);
	assert_int_equal(state_position_save(&t->st, GEN_A, 9, t->err,
	    sizeof(t->err)), 0);
	state_release(&t->st);
	assert_int_equal(state_read(t->dir, &si), 0);
	assert_string_equal(si.generation, GEN_A);
	assert_int_equal(si.have_position, 1);
	assert_string_equal(si.position_gen, GEN_A);
	assert_int_equal(si.position, 9);
	assert_true(si.position_time > 0);
	assert_int_equal(si.running, 0);
	assert_int_equal(scratch_path(missing, sizeof(missing), t->top,
	    "none"), 0);
	assert_int_equal(state_read(missing, &si), -AR_ESTATE);
	assert_string_equal(si.generation, "");
}

/* Complete: the generation followed was closed at the position held,
 * and stays so only while nothing else is followed or applied. */
static void
test_complete_needs_closed_generation_at_position(void **state)
{
	struct tctx *t = *state;
	struct state_info si;
	char gen[WIRE_GEN_LEN + 1];
	uint64_t seq = 0;

	assert_int_equal(state_complete(&t->st, gen, &seq), 0);
	assert_int_equal(state_gen_follow(&t->st, GEN_A, t->err,
	    sizeof(t->err)), 0);
	assert_int_equal(state_position_save(&t->st, GEN_A, 12, t->err,
	    sizeof(t->err)), 0);
	assert_int_equal(state_complete(&t->st, gen, &seq), 0);
	assert_int_equal(state_gen_close(&t->st, GEN_A, 12, t->err,
	    sizeof(t->err)), 0);
	assert_int_equal(state_complete(&t->st, gen, &seq), 1);
	assert_string_equal(gen, GEN_A);
	assert_int_equal(seq, 12);
	assert_int_equal(state_read(t->dir, &si), 0);
	assert_int_equal(si.complete, 1);
	assert_int_equal(si.complete_seq, 12);
	/* A new generation followed (failback): no longer complete. */
	assert_int_equal(state_gen_follow(&t->st, GEN_B, t->err,
	    sizeof(t->err)), 0);
	assert_int_equal(state_complete(&t->st, gen, &seq), 0);
	assert_int_equal(state_gen_follow(&t->st, GEN_A, t->err,
	    sizeof(t->err)), 0);
	assert_int_equal(state_complete(&t->st, gen, &seq), 1);
	/* Another position of it: not what the rescue closed. */
	assert_int_equal(state_position_save(&t->st, GEN_A, 11, t->err,
	    sizeof(t->err)), 0);
	assert_int_equal(state_complete(&t->st, gen, &seq), 0);
	assert_int_equal(state_read(t->dir, &si), 0);
	assert_int_equal(si.complete, 0);
}

static void
test_skipped_count_and_its_last_path(void **state)
{
	struct tctx *t = *state;
	struct state_info si;
	char last[STATE_SKIPPED_PATH_MAX + 1], big[2 * STATE_SKIPPED_PATH_MAX];
	int fd;

	assert_int_equal(state_skipped_load(&t->st, last), 0);
	assert_string_equal(last, "");
	assert_int_equal(state_skipped_save(&t->st, 3, "a/keep", t->err,
	    sizeof(t->err)), 0);
	assert_int_equal(state_skipped_load(&t->st, last), 3);
	assert_string_equal(last, "a/keep");
	assert_int_equal(state_read(t->dir, &si), 0);
	assert_int_equal(si.skipped, 3);
	assert_string_equal(si.skipped_last, "a/keep");
	/* A long path is cut, a count of 0 keeps none. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(state_skipped_save(&t->st, 1, big, t->err,
	    sizeof(t->err)), 0);
	assert_int_equal(state_skipped_load(&t->st, last), 1);
	assert_int_equal(strlen(last), STATE_SKIPPED_PATH_MAX);
	assert_int_equal(state_skipped_save(&t->st, 0, big, t->err,
	    sizeof(t->err)), 0);
	assert_int_equal(state_skipped_load(&t->st, last), 0);
	assert_string_equal(last, "");
	/* A garbled file reads as none. */
	fd = openat(t->st.dirfd, "skipped", O_WRONLY | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x1 a\n", 5), 5);
	close(fd);
	assert_int_equal(state_skipped_load(&t->st, last), 0);
}

static void
test_scratch_files_are_truncated(void **state)
{
	struct tctx *t = *state;
	char buf[8];
	int fd;

	assert_int_equal(state_scratch(&t->st, STATE_SCRATCH_MANIFEST, &fd,
	    t->err, sizeof(t->err)), 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	close(fd);
	assert_int_equal(state_scratch(&t->st, STATE_SCRATCH_MANIFEST, &fd,
	    t->err, sizeof(t->err)), 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 0);
	close(fd);
}

static void
test_standby_id_is_made_safe(void **state)
{
	struct config_standby cfg;
	char id[65];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.standby_id = "db 1/west&x";
	state_standby_id(&cfg, id, sizeof(id));
	assert_string_equal(id, "db_1_west_x");
	cfg.standby_id = "";
	state_standby_id(&cfg, id, sizeof(id));
	assert_string_equal(id, "standby");
	cfg.standby_id = NULL;
	state_standby_id(&cfg, id, sizeof(id));
	assert_true(id[0] != '\0');
	assert_null(strpbrk(id, " /&?"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_open_creates_private_and_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_position_belongs_to_its_generation, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_closed_generations_forget_the_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_read_reports_what_sync_wrote, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_complete_needs_closed_generation_at_position, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_skipped_count_and_its_last_path, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_scratch_files_are_truncated, setup, teardown),
		cmocka_unit_test(test_standby_id_is_made_safe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

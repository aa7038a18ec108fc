/*
 * test-source.c: the record of the tree a primary serves (source.c):
 * its format, what counts as the same filesystem, and the rule of
 * source_admit against a scratch spool and data directory.
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

#include "error.h"
#include "fs.h"
#include "source.h"
#include "scratch.h"

struct tctx {
	char top[PATH_MAX];
	int spoolfd;		/* top/spool */
	int datafd;		/* top/data */
	struct source_id rec;
	char err[1024];
};

static int
setup(void **state)
{
	struct tctx *t;
	char path[PATH_MAX];

	t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(scratch_make(t->top, sizeof(t->top), "test-source"),
	    0);
	assert_int_equal(scratch_path(path, sizeof(path), t->top, "spool"),
	    0);
	assert_int_equal(mkdir(path, 0700), 0);
	t->spoolfd = open(path, O_RDONLY | O_DIRECTORY);
	assert_true(t->spoolfd >= 0);
	assert_int_equal(scratch_path(path, sizeof(path), t->top, "data"),
	    0);
	assert_int_equal(mkdir(path, 0755), 0);
	t->datafd = open(path, O_RDONLY | O_DIRECTORY);
	assert_true(t->datafd >= 0);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tctx *t = *state;

	close(t->spoolfd);
	close(t->datafd);
	scratch_remove(t->top);
	free(t);
	return 0;
}

static const struct source_id sample = {
	0xef53, 0x280ba4cdd9ca87ddull, 254, 1, 2, 1, 1
};

static const char sample_text[] =
    "asyncrep-source 1\nfstype 0xef53\nfsid 0x280ba4cdd9ca87dd\n"
    "dev 254:1\nino 2\nmountpoint 1\nnonempty 1\n";

/* ---------------------------------------------------------------- */
/* The record */

static void
test_format_and_parse(void **state)
{
	struct source_id id;
	char buf[SOURCE_MAX];
	int n;

	(void)state;
	n = source_format(&sample, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen(sample_text));
	assert_string_equal(buf, sample_text);
	assert_int_equal(source_parse(buf, (size_t)n, &id), 0);
	assert_memory_equal(&id, &sample, sizeof(id));
	assert_int_equal(source_format(&sample, buf, 20), -AR_ENOMEM);

	memset(&id, 0, sizeof(id));
	id.fsid = UINT64_MAX;
	id.ino = UINT64_MAX;
	id.dev_major = UINT32_MAX;
	n = source_format(&id, buf, sizeof(buf));
	assert_true(n > 0);
	memset(&id, 1, sizeof(id));
	assert_int_equal(source_parse(buf, (size_t)n, &id), 0);
	assert_true(id.fsid == UINT64_MAX && id.ino == UINT64_MAX);
	assert_int_equal(id.dev_major, UINT32_MAX);
	assert_int_equal(id.mountpoint, 0);
}

static void
test_parse_refuses(void **state)
{
	static const char *const bad[] = {
		"",
		"asyncrep-source 2\nfstype 0xef53\nfsid 0x1\ndev 1:1\nino 2\n"
		    "mountpoint 1\nnonempty 1\n",
		"asyncrep-source 1\nfstype 0xEF53\nfsid 0x1\ndev 1:1\nino 2\n"
		    "mountpoint 1\nnonempty 1\n",
		"asyncrep-source 1\nfstype ef53\nfsid 0x1\ndev 1:1\nino 2\n"
		    "mountpoint 1\nnonempty 1\n",
		"asyncrep-source 1\nfstype 0x\nfsid 0x1\ndev 1:1\nino 2\n"
		    "mountpoint 1\nnonempty 1\n",
		"asyncrep-source 1\nfstype 0xef53\nfsid 0x10000000000000000\n"
		    "dev 1:1\nino 2\nmountpoint 1\nnonempty 1\n",
		"asyncrep-source 1\nfstype 0xef53\nfsid 0x1\ndev 11\nino 2\n"
		    "mountpoint 1\nnonempty 1\n",
		"asyncrep-source 1\nfstype 0xef53\nfsid 0x1\ndev 4294967296:1\n"
		    "ino 2\nmountpoint 1\nnonempty 1\n",
		"asyncrep-source 1\nfstype 0xef53\nfsid 0x1\ndev 1:\nino 2\n"
		    "mountpoint 1\nnonempty 1\n",
		"asyncrep-source 1\nfstype 0xef53\nfsid 0x1\ndev 1:1\nino -2\n"
		    "mountpoint 1\nnonempty 1\n",
		"asyncrep-source 1\nfstype 0xef53\nfsid 0x1\ndev 1:1\nino 2\n"
		    "mountpoint 2\nnonempty 1\n",
		"asyncrep-source 1\nfstype 0xef53\nfsid 0x1\ndev 1:1\nino 2\n"
		    "mountpoint 1\nnonempty 1",
		"asyncrep-source 1\nfstype 0xef53\nfsid 0x1\ndev 1:1\nino 2\n"
		    "mountpoint 1\nnonempty 1\nmore 1\n",
		"asyncrep-source 1\nfsid 0x1\nfstype 0xef53\ndev 1:1\nino 2\n"
		    "mountpoint 1\nnonempty 1\n",
		"asyncrep-source 1\nfstype  0xef53\nfsid 0x1\ndev 1:1\nino 2\n"
		    "mountpoint 1\nnonempty 1\n",
	};
	struct source_id id = sample;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(source_parse(bad[i], strlen(bad[i]), &id),
		    -AR_ESTATE);
		assert_memory_equal(&id, &sample, sizeof(id));
	}
	/* Cut anywhere, the record is refused. */
	for (i = 0; i < strlen(sample_text); i++)
		assert_int_equal(source_parse(sample_text, i, &id), -AR_ESTATE);
}

static void
test_same(void **state)
{
	struct source_id a = sample, b = sample;

	(void)state;
	assert_true(source_same(&a, &b));
	/* A device renumbered under the same filesystem id. */
	b.dev_minor = 7;
	assert_true(source_same(&a, &b));
	b = sample;
	b.fsid++;
	assert_false(source_same(&a, &b));
	b = sample;
	b.fstype = 0x01021994;
	assert_false(source_same(&a, &b));
	b = sample;
	b.ino = 3;
	assert_false(source_same(&a, &b));
	/* No filesystem id: the device, unless it is anonymous. */
	a.fsid = b.fsid = 0;
	b = a;
	assert_true(source_same(&a, &b));
	b.dev_minor = 7;
	assert_false(source_same(&a, &b));
	a.dev_major = b.dev_major = 0;
	assert_true(source_same(&a, &b));
	b.fsid = 1;
	assert_false(source_same(&a, &b));
}

/* ---------------------------------------------------------------- */
/* The rule */

static int
admit(struct tctx *t, int fresh, unsigned flags)
{
	t->err[0] = '\0';
	return source_admit(t->spoolfd, t->datafd, "/the/data", fresh, flags,
	    &t->rec, t->err, sizeof(t->err));
}

static int
has_record(struct tctx *t)
{
	return faccessat(t->spoolfd, SOURCE_FILE, F_OK, 0) == 0;
}

static void
put_record(struct tctx *t, const struct source_id *id)
{
	char buf[SOURCE_MAX];
	int n;

	n = source_format(id, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(fs_write_durable(t->spoolfd, SOURCE_FILE, buf,
	    (size_t)n, 0644), 0);
}

static void
get_record(struct tctx *t, struct source_id *id)
{
	char buf[SOURCE_MAX];
	size_t len;

	assert_int_equal(fs_read_small(t->spoolfd, SOURCE_FILE, buf,
	    sizeof(buf), &len), 0);
	assert_int_equal(source_parse(buf, len, id), 0);
}

static void
put_file(struct tctx *t, const char *name)
{
	int fd;

	fd = openat(t->datafd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static void
test_admit_fresh(void **state)
{
	struct tctx *t = *state;
	struct source_id id;

	/* A fresh spool and an empty data_dir: refused, nothing kept. */
	assert_int_equal(admit(t, 1, 0), -AR_ESOURCE);
	assert_non_null(strstr(t->err, "'/the/data' is empty"));
	assert_non_null(strstr(t->err, "--allow-empty"));
	assert_false(has_record(t));
	/* Our temp files are not a tree. */
	put_file(t, FS_TMP_PREFIX "x");
	assert_int_equal(admit(t, 1, 0), -AR_ESOURCE);
	/* Meant: recorded as served empty. */
	assert_int_equal(admit(t, 1, SOURCE_ALLOW_EMPTY), 0);
	get_record(t, &id);
	assert_memory_equal(&id, &t->rec, sizeof(id));
	assert_int_equal(id.nonempty, 0);
	/* The same empty tree again needs nothing. */
	assert_int_equal(admit(t, 0, 0), 0);
	/* It filled while served. */
	put_file(t, "f");
	assert_int_equal(source_note(t->spoolfd, t->datafd, &t->rec), 0);
	get_record(t, &id);
	assert_int_equal(id.nonempty, 1);
	assert_int_equal(t->rec.nonempty, 1);
}

static void
test_admit_fresh_tree_and_older_spool(void **state)
{
	struct tctx *t = *state;
	struct source_id id;

	/* An older spool, with a generation and no record: recorded. */
	assert_int_equal(admit(t, 0, 0), 0);
	get_record(t, &id);
	assert_int_equal(id.nonempty, 0);
	assert_int_equal(unlinkat(t->spoolfd, SOURCE_FILE, 0), 0);
	put_file(t, "f");
	assert_int_equal(admit(t, 1, 0), 0);
	get_record(t, &id);
	assert_int_equal(id.nonempty, 1);
	assert_int_equal(id.mountpoint, 0);
}

static void
test_admit_refuses_another_tree(void **state)
{
	struct tctx *t = *state;
	struct source_id was, id;

	put_file(t, "f");
	assert_int_equal(admit(t, 1, 0), 0);
	was = t->rec;

	/* Emptied while watch was stopped. */
	assert_int_equal(unlinkat(t->datafd, "f", 0), 0);
	assert_int_equal(admit(t, 0, 0), -AR_ESOURCE);
	assert_non_null(strstr(t->err, "is empty, but this spool served"));
	assert_non_null(strstr(t->err, "--reinit"));
	get_record(t, &id);
	assert_int_equal(id.nonempty, 1);
	/* --allow-empty is for a spool with no generation only. */
	assert_int_equal(admit(t, 0, SOURCE_ALLOW_EMPTY), -AR_ESOURCE);
	put_file(t, "f");

	/* It was a mount point: the mount is gone. */
	id = was;
	id.mountpoint = 1;
	put_record(t, &id);
	assert_int_equal(admit(t, 0, SOURCE_ALLOW_EMPTY), -AR_ESOURCE);
	assert_non_null(strstr(t->err, "is not a mount point, but was one"));

	/* Another filesystem, or another directory. */
	id = was;
	id.fsid ^= 1;
	id.fsid |= 2;
	put_record(t, &id);
	assert_int_equal(admit(t, 0, 0), -AR_ESOURCE);
	assert_non_null(strstr(t->err, "not on the filesystem this spool "
	    "served"));
	id = was;
	id.ino++;
	put_record(t, &id);
	assert_int_equal(admit(t, 0, 0), -AR_ESOURCE);

	/* --reinit: what is served from now on. */
	assert_int_equal(admit(t, 0, SOURCE_REINIT), 0);
	get_record(t, &id);
	assert_memory_equal(&id, &was, sizeof(id));

	/* A device renumbered under the same id: accepted, recorded. */
	id = was;
	id.dev_minor ^= 1;
	if (id.fsid != 0) {
		put_record(t, &id);
		assert_int_equal(admit(t, 0, 0), 0);
		get_record(t, &id);
		assert_memory_equal(&id, &was, sizeof(id));
	}

	/* A record that is not one. */
	assert_int_equal(fs_write_durable(t->spoolfd, SOURCE_FILE, "junk\n",
	    5, 0644), 0);
	assert_int_equal(admit(t, 0, 0), -AR_ESTATE);
	assert_non_null(strstr(t->err, "corrupt"));
}

/* What a rescue sees: the kinds of a file system type, the probe of a
 * directory, and the record read back. */
static void
test_caps(void **state)
{
	struct tctx *t = *state;
	struct source_id id;
	unsigned shown;

	assert_int_equal(source_fstype_caps(0xef53), SOURCE_CAP_ALL);
	assert_int_equal(source_fstype_caps(0x01021994), SOURCE_CAP_ALL);
	assert_int_equal(source_fstype_caps(0x4d44), 0);
	assert_int_equal(source_fstype_caps(0x858458f6), 0);
	assert_string_equal(source_cap_name(SOURCE_CAP_ACLS), "POSIX ACLs");
	assert_string_equal(source_cap_name(SOURCE_CAP_XATTRS),
	    "extended attributes");
	/* A scratch directory: ACLs only where xattrs are shown. */
	shown = source_caps_shown(t->datafd);
	assert_true((shown & ~SOURCE_CAP_ALL) == 0);
	if ((shown & SOURCE_CAP_ACLS) != 0)
		assert_true((shown & SOURCE_CAP_XATTRS) != 0);
	/* Not a directory of a file system at all. */
	assert_int_equal(source_caps_shown(-1) & SOURCE_CAP_ALL,
	    SOURCE_CAP_ALL);
	assert_int_equal(source_read(t->spoolfd, &id), -AR_ESTATE);
	assert_int_equal(source_admit(t->spoolfd, t->datafd, "data", 1,
	    SOURCE_ALLOW_EMPTY, &t->rec, t->err, sizeof(t->err)), 0);
	assert_int_equal(source_read(t->spoolfd, &id), 0);
	assert_memory_equal(&id, &t->rec, sizeof(id));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_and_parse),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_same),
		cmocka_unit_test_setup_teardown(test_admit_fresh, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_admit_fresh_tree_and_older_spool, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_admit_refuses_another_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

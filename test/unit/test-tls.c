/*
 * test-tls.c: the TLS material of a role (tls_load), asyncrep keygen
 * (tls_keygen) and the files a rescue reads under the primary's mount
 * (dirfds: confined to it).
 *
 * Keys are made with tls_keygen in a scratch directory removed
 * afterwards; the handshakes themselves are t0050-tls.sh's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/stat.h>
#include <sys/types.h>

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
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "error.h"
#include "scratch.h"
#include "tls.h"

struct tctx {
	char top[PATH_MAX];
	char a[PATH_MAX];		/* top/a: a keygen directory */
	char pin_a[PIN_TEXT_LEN + 1];
	char cert[PATH_MAX], key[PATH_MAX];	/* top/a/cert.pem, key.pem */
	char err[1024];
	struct tls t;
	struct config_tls c;
};

static void
join(char *out, const char *dir, const char *name)
{
	assert_int_equal(scratch_path(out, PATH_MAX, dir, name), 0);
}

static int
setup(void **state)
{
	struct tctx *t;

	t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(scratch_make(t->top, sizeof(t->top), "test-tls"), 0);
	join(t->a, t->top, "a");
	assert_int_equal(tls_keygen(t->a, t->pin_a, t->err, sizeof(t->err)),
	    0);
	join(t->cert, t->a, "cert.pem");
	join(t->key, t->a, "key.pem");
	t->c.cert = t->cert;
	t->c.key = t->key;
	t->c.trust = t->pin_a;
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tctx *t = *state;

	tls_release(&t->t);
	assert_int_equal(scratch_remove(t->top), 0);
	free(t);
	return 0;
}

/* keygen's files: the key for its owner only, the pin printed is the
 * pin of the certificate's key. */
static void
test_keygen_and_load(void **state)
{
	struct tctx *t = *state;
	char own[PIN_TEXT_LEN + 1];
	struct stat st;

	assert_int_equal(stat(t->key, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(t->a, &st), 0);
	assert_int_equal(st.st_mode & 0077, 0);
	assert_int_equal(strncmp(t->pin_a, "sha256:", 7), 0);
	assert_int_equal(strlen(t->pin_a), PIN_TEXT_LEN);
	assert_int_equal(tls_load(&t->t, &t->c, NULL, t->err,
	    sizeof(t->err)), 0);
	assert_true(t->t.enabled);
	pin_format(t->t.own, own);
	assert_string_equal(own, t->pin_a);
	assert_int_equal(t->t.trust.n, 1);
	assert_true(pin_list_has(&t->t.trust, t->t.own));
	assert_non_null(strstr(t->t.cert, "BEGIN CERTIFICATE"));
	assert_non_null(strstr(t->t.key, "PRIVATE KEY"));
	assert_null(t->t.ca);
}

static void
test_keygen_never_replaces(void **state)
{
	struct tctx *t = *state;
	char pin[PIN_TEXT_LEN + 1], before[4096], after[4096];
	int fd;
	ssize_t n, m;

	fd = open(t->key, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, before, sizeof(before));
	close(fd);
	assert_int_equal(tls_keygen(t->a, pin, t->err, sizeof(t->err)),
	    -AR_EIO);
	assert_non_null(strstr(t->err, "exists"));
	fd = open(t->key, O_RDONLY);
	assert_true(fd >= 0);
	m = read(fd, after, sizeof(after));
	close(fd);
	assert_true(n > 0 && n == m);
	assert_memory_equal(before, after, (size_t)n);
}

/* Like the token: a key others can read is refused, naming the file. */
static void
test_key_readable_by_others(void **state)
{
	struct tctx *t = *state;
	static const mode_t modes[] = { 0644, 0640, 0604, 0660, 0601 };
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(t->key, modes[i]), 0);
		assert_int_equal(tls_load(&t->t, &t->c, NULL, t->err,
		    sizeof(t->err)), -AR_ECONFIG);
		assert_false(t->t.enabled);
		assert_non_null(strstr(t->err, "tls_key"));
		assert_non_null(strstr(t->err, t->key));
		assert_non_null(strstr(t->err, "chmod 600"));
	}
	assert_int_equal(chmod(t->key, 0400), 0);
	assert_int_equal(tls_load(&t->t, &t->c, NULL, t->err,
	    sizeof(t->err)), 0);
}

static void
test_key_of_another_certificate(void **state)
{
	struct tctx *t = *state;
	char b[PATH_MAX], bkey[PATH_MAX], pin[PIN_TEXT_LEN + 1];

	join(b, t->top, "b");
	assert_int_equal(tls_keygen(b, pin, t->err, sizeof(t->err)), 0);
	assert_string_not_equal(pin, t->pin_a);
	join(bkey, b, "key.pem");
	t->c.key = bkey;
	assert_int_equal(tls_load(&t->t, &t->c, NULL, t->err,
	    sizeof(t->err)), -AR_ECONFIG);
	assert_non_null(strstr(t->err, "is not the key of the certificate"));
}

static void
test_bad_files(void **state)
{
	struct tctx *t = *state;
	char junk[PATH_MAX], missing[PATH_MAX];
	int fd;

	join(junk, t->top, "junk.pem");
	join(missing, t->top, "missing.pem");
	fd = open(junk, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not a certificate\n", 18), 18);
	close(fd);

	t->c.ca = junk;
	assert_int_equal(tls_load(&t->t, &t->c, NULL, t->err,
	    sizeof(t->err)), -AR_ECONFIG);
	assert_non_null(strstr(t->err, "tls_ca"));
	t->c.ca = NULL;

	t->c.cert = junk;
	assert_int_equal(tls_load(&t->t, &t->c, NULL, t->err,
	    sizeof(t->err)), -AR_ECONFIG);
	assert_non_null(strstr(t->err, "tls_cert"));

	t->c.cert = missing;
	assert_int_equal(tls_load(&t->t, &t->c, NULL, t->err,
	    sizeof(t->err)), -AR_ECONFIG);
	assert_non_null(strstr(t->err, "missing.pem"));
	assert_non_null(strstr(t->err, strerror(ENOENT)));

	t->c.cert = t->cert;
	t->c.key = junk;
	assert_int_equal(tls_load(&t->t, &t->c, NULL, t->err,
	    sizeof(t->err)), -AR_ECONFIG);
	assert_non_null(strstr(t->err, "tls_key"));
}

/* A certificate as tls_ca: one trust anchor is enough to load. */
static void
test_ca(void **state)
{
	struct tctx *t = *state;

	t->c.trust = NULL;
	t->c.ca = t->cert;
	assert_int_equal(tls_load(&t->t, &t->c, NULL, t->err,
	    sizeof(t->err)), 0);
	assert_non_null(t->t.ca_list);
	assert_int_equal(t->t.trust.n, 0);
}

static void
test_off(void **state)
{
	struct tctx *t = *state;

	t->c.mode = CONFIG_OFF;
	t->c.key = "/nonexistent/key.pem";
	assert_int_equal(tls_load(&t->t, &t->c, NULL, t->err,
	    sizeof(t->err)), 0);
	assert_false(t->t.enabled);
	assert_null(t->t.cert);
}

/* No session, or one without a certificate: refused, no pin. */
static void
test_peer_without_certificate(void **state)
{
	struct tctx *t = *state;
	char pin[PIN_TEXT_LEN + 1], why[128];

	assert_int_equal(tls_load(&t->t, &t->c, NULL, t->err,
	    sizeof(t->err)), 0);
	assert_int_equal(tls_peer_check(&t->t, NULL, pin, why, sizeof(why)),
	    -AR_EAUTH);
	assert_string_equal(pin, "");
	assert_string_equal(why, "no client certificate");
}

/*
 * The rescue's view of the primary's storage: absolute paths of the
 * primary's configuration under a root, where a symlink on that storage
 * that points out of it (an absolute target, or "..") is resolved in it,
 * never on this node.
 */
static void
test_files_under_a_root(void **state)
{
	struct tctx *t = *state;
	char root[PATH_MAX], dir[PATH_MAX], link[PATH_MAX], target[PATH_MAX];
	int dirfds[TLS_NFILES], rootfd, n;

	join(root, t->top, "root");
	assert_int_equal(mkdir(root, 0700), 0);
	join(dir, root, "keys");
	assert_int_equal(tls_keygen(dir, target, t->err, sizeof(t->err)), 0);
	rootfd = open(root, O_RDONLY | O_DIRECTORY);
	assert_true(rootfd >= 0);
	dirfds[TLS_FILE_CERT] = dirfds[TLS_FILE_KEY] = rootfd;
	dirfds[TLS_FILE_CA] = AT_FDCWD;
	t->c.cert = "/keys/cert.pem";
	t->c.key = "/keys/key.pem";
	assert_int_equal(tls_load(&t->t, &t->c, dirfds, t->err,
	    sizeof(t->err)), 0);
	tls_release(&t->t);

	/* keys/a-key.pem -> this node's top/a/key.pem, by an absolute
	 * target and by enough ".." to climb out: both stay in root. */
	join(link, dir, "abs.pem");
	assert_int_equal(symlink(t->key, link), 0);
	n = snprintf(target, sizeof(target), "../../../../../../../../..%s",
	    t->key);
	assert_true(n > 0 && (size_t)n < sizeof(target));
	join(link, dir, "up.pem");
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(access(t->key, R_OK), 0);
	t->c.key = "/keys/abs.pem";
	assert_int_equal(tls_load(&t->t, &t->c, dirfds, t->err,
	    sizeof(t->err)), -AR_ECONFIG);
	assert_non_null(strstr(t->err, "abs.pem"));
	t->c.key = "/keys/up.pem";
	assert_int_equal(tls_load(&t->t, &t->c, dirfds, t->err,
	    sizeof(t->err)), -AR_ECONFIG);
	t->c.key = "/keys/../../../../keys/key.pem";
	assert_int_equal(tls_load(&t->t, &t->c, dirfds, t->err,
	    sizeof(t->err)), 0);
	close(rootfd);
}

int
main(void)
{
#define ONE(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		ONE(test_keygen_and_load),
		ONE(test_keygen_never_replaces),
		ONE(test_key_readable_by_others),
		ONE(test_key_of_another_certificate),
		ONE(test_bad_files),
		ONE(test_ca),
		ONE(test_off),
		ONE(test_peer_without_certificate),
		ONE(test_files_under_a_root),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

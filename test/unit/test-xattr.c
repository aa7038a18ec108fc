/*
 * test-xattr.c: the Y frame's codec (every bound and every name rule a
 * hostile primary could break), the policy, and a set read back and
 * applied on a scratch file.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "scratch.h"
#include "xattr.h"

/* A Y payload of one name and value, by hand. */
static size_t
one(uint8_t *p, const char *name, size_t vlen)
{
	size_t nl = strlen(name), off = 0;

	p[off++] = 0;
	p[off++] = 0;
	p[off++] = 1;
	p[off++] = (uint8_t)nl;
	memcpy(p + off, name, nl);
	off += nl;
	p[off++] = (uint8_t)(vlen >> 24);
	p[off++] = (uint8_t)(vlen >> 16);
	p[off++] = (uint8_t)(vlen >> 8);
	p[off++] = (uint8_t)vlen;
	memset(p + off, 'v', vlen);
	return off + vlen;
}

static void
test_roundtrip(void **state)
{
	struct xattr_set *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	uint8_t *out = malloc(XATTR_WIRE_MAX);
	int n;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(out);
	xattr_clear(a);
	n = one(out + WIRE_HDR, "user.a", 3);
	assert_int_equal(xattr_get(out + WIRE_HDR, (size_t)n, a), 0);
	assert_int_equal(a->n, 1);
	n = xattr_put(out, XATTR_WIRE_MAX, a);
	assert_true(n > WIRE_HDR);
	assert_int_equal(out[0], WIRE_XATTRS);
	assert_int_equal(xattr_get(out + WIRE_HDR, (size_t)n - WIRE_HDR, b), 0);
	assert_int_equal(b->n, 1);
	assert_string_equal(b->ents[0].name, "user.a");
	assert_int_equal(b->ents[0].value_len, 3);
	assert_memory_equal(b->ents[0].value, "vvv", 3);
	free(a);
	free(b);
	free(out);
}

static void
test_hostile_refused(void **state)
{
	struct xattr_set *x = malloc(sizeof(*x));
	uint8_t *p = malloc(2 * XATTR_VALUE_MAX);
	size_t n;

	(void)state;
	assert_non_null(x);
	assert_non_null(p);
	/* Namespaces the protocol does not carry. */
	n = one(p, "system.evil", 1);
	assert_int_equal(xattr_get(p, n, x), -AR_EPROTO);
	n = one(p, "user.", 1);
	assert_int_equal(xattr_get(p, n, x), -AR_EPROTO);
	n = one(p, "nfs4.acl", 1);
	assert_int_equal(xattr_get(p, n, x), -AR_EPROTO);
	/* A value past 64 KiB. */
	n = one(p, "user.big", XATTR_VALUE_MAX + 1);
	assert_int_equal(xattr_get(p, n, x), -AR_EPROTO);
	n = one(p, "user.big", XATTR_VALUE_MAX);
	assert_int_equal(xattr_get(p, n, x), 0);
	/* Trailing bytes, a short value, an unknown flag. */
	n = one(p, "user.a", 2);
	assert_int_equal(xattr_get(p, n + 1, x), -AR_EPROTO);
	assert_int_equal(xattr_get(p, n - 1, x), -AR_EPROTO);
	p[0] = 2;
	assert_int_equal(xattr_get(p, n, x), -AR_EPROTO);
	/* Two names out of order, and a name twice. */
	p[0] = 0;
	p[2] = 2;
	memcpy(p + n, p + 3, n - 3);
	assert_int_equal(xattr_get(p, 2 * n - 3, x), -AR_EPROTO);
	free(x);
	free(p);
}

static void
test_policy(void **state)
{
	struct xattr_policy p;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(xattr_policy_parse("user, trusted", &p), 0);
	assert_true(p.user && p.trusted && !p.security);
	assert_int_equal(xattr_policy_parse("none", &p), 0);
	assert_false(p.user || p.trusted || p.security);
	assert_int_equal(xattr_policy_parse("user,system", &p), -AR_ECONFIG);
	assert_int_equal(xattr_policy_parse("security", &p), 0);
	p.acls = 1;
	p.selinux = 0;
	assert_true(xattr_allowed(&p, "security.capability"));
	assert_false(xattr_allowed(&p, "security.selinux"));
	assert_false(xattr_allowed(&p, "user.x"));
	assert_true(xattr_allowed(&p, XATTR_ACL_DEFAULT));
	p.selinux = 1;
	assert_true(xattr_allowed(&p, "security.selinux"));
}

static void
test_read_and_sync(void **state)
{
	struct xattr_set *a = malloc(sizeof(*a)), *l = malloc(sizeof(*l));
	struct xattr_policy p = { 1, 0, 0, 0, 1 };
	char dir[4096];
	int dfd, fd, changed;

	(void)state;
	assert_non_null(a);
	assert_non_null(l);
	assert_int_equal(scratch_make(dir, sizeof(dir), "test-xattr"), 0);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	fd = openat(dfd, "f", O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	if (fsetxattr(fd, "user.keep", "k", 1, 0) != 0) {
		close(fd);
		close(dfd);
		assert_int_equal(scratch_remove(dir), 0);
		free(a);
		free(l);
		skip();
	}
	assert_int_equal(fsetxattr(fd, "user.gone", "g", 1, 0), 0);
	assert_int_equal(xattr_read(dfd, "f", a), 0);
	assert_int_equal(a->n, 2);
	assert_string_equal(a->ents[0].name, "user.gone");
	/* Want only user.keep, changed: user.gone goes. */
	a->n = 1;
	a->ents[0] = a->ents[1];
	a->ents[0].value = (const uint8_t *)"K2";
	a->ents[0].value_len = 2;
	assert_int_equal(xattr_sync(dfd, "f", a, &p, l, &changed), 0);
	assert_int_equal(changed, XATTR_CHANGED_XATTR);
	assert_int_equal(xattr_read(dfd, "f", l), 0);
	assert_int_equal(l->n, 1);
	assert_int_equal(l->ents[0].value_len, 2);
	assert_int_equal(xattr_sync(dfd, "f", a, &p, l, &changed), 0);
	assert_int_equal(changed, 0);
	close(fd);
	close(dfd);
	assert_int_equal(scratch_remove(dir), 0);
	free(a);
	free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_hostile_refused),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_read_and_sync),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

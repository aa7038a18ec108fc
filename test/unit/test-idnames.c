/*
 * test-idnames.c: owners by name: the I frame's codec and its name
 * rules, the standby's map (a name of this host, an unknown name, id 0,
 * the bound) and the rewriting of an ACL's qualifiers.
 */
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "idnames.h"
#include "wire.h"

static void
test_frame_round_trip(void **state)
{
	struct wire_idname n;
	uint8_t buf[512];
	int len;

	(void)state;
	len = wire_put_idname(buf, sizeof(buf), WIRE_ID_GROUP, 1234, "staff",
	    5);
	assert_int_equal(len, WIRE_HDR + 1 + 4 + 1 + 5);
	assert_int_equal(buf[0], WIRE_IDNAME);
	assert_int_equal(wire_get_idname(buf + WIRE_HDR,
	    (size_t)len - WIRE_HDR, &n), 0);
	assert_int_equal(n.kind, WIRE_ID_GROUP);
	assert_int_equal(n.id, 1234);
	assert_int_equal(n.name_len, 5);
	assert_string_equal(n.name, "staff");
	/* Trailing bytes, a short payload, another kind, id 0. */
	assert_int_equal(wire_get_idname(buf + WIRE_HDR,
	    (size_t)len - WIRE_HDR + 1, &n), -AR_EPROTO);
	assert_int_equal(wire_get_idname(buf + WIRE_HDR,
	    (size_t)len - WIRE_HDR - 1, &n), -AR_EPROTO);
	buf[WIRE_HDR] = 'x';
	assert_int_equal(wire_get_idname(buf + WIRE_HDR,
	    (size_t)len - WIRE_HDR, &n), -AR_EPROTO);
	buf[WIRE_HDR] = WIRE_ID_USER;
	memset(buf + WIRE_HDR + 1, 0, 4);
	assert_int_equal(wire_get_idname(buf + WIRE_HDR,
	    (size_t)len - WIRE_HDR, &n), -AR_EPROTO);
	/* Nobody sends what the receiver would refuse. */
	assert_int_equal(wire_put_idname(buf, sizeof(buf), WIRE_ID_USER, 0,
	    "root", 4), -AR_EINTERNAL);
	assert_int_equal(wire_put_idname(buf, 4, WIRE_ID_USER, 7, "a", 1),
	    -AR_ENOMEM);
}

static void
test_name_rules(void **state)
{
	char longname[WIRE_IDNAME_MAX + 2];

	(void)state;
	assert_true(wire_idname_valid("alice", 5));
	assert_true(wire_idname_valid("svc-backup.1$", 13));
	assert_true(wire_idname_valid("DOMAIN\\user", 11));
	assert_false(wire_idname_valid("", 0));
	assert_false(wire_idname_valid(".", 1));
	assert_false(wire_idname_valid("..", 2));
	assert_false(wire_idname_valid("a b", 3));
	assert_false(wire_idname_valid("a:b", 3));
	assert_false(wire_idname_valid("a/b", 3));
	assert_false(wire_idname_valid("a,b", 3));
	assert_false(wire_idname_valid("a\nb", 3));
	assert_false(wire_idname_valid("a\0b", 3));
	memset(longname, 'x', sizeof(longname));
	assert_true(wire_idname_valid(longname, WIRE_IDNAME_MAX));
	assert_false(wire_idname_valid(longname, WIRE_IDNAME_MAX + 1));
}

static void
learn(struct idnames_map *m, uint8_t kind, uint32_t id, const char *name)
{
	struct wire_idname n;

	n.kind = kind;
	n.id = id;
	n.name_len = (uint8_t)strlen(name);
	memcpy(n.name, name, n.name_len + 1u);
	assert_int_equal(idnames_learn(m, &n), 0);
}

static void
test_map(void **state)
{
	struct idnames_map *m;
	struct wire_entry e;

	(void)state;
	assert_int_equal(idnames_map_new(&m), 0);
	/* Nothing learnt: every id is itself. */
	assert_int_equal(idnames_uid(m, 1000), 1000);
	/* root is uid 0 on every host. */
	learn(m, WIRE_ID_USER, 4321, "root");
	assert_int_equal(idnames_uid(m, 4321), 0);
	/* The same id under a group name: another kind. */
	assert_int_equal(idnames_gid(m, 4321), 4321);
	learn(m, WIRE_ID_USER, 777, "asyncrep-no-such-user");
	assert_int_equal(idnames_uid(m, 777), 777);
	/* Named again under another name (a rescue's host): followed. */
	learn(m, WIRE_ID_USER, 777, "root");
	assert_int_equal(idnames_uid(m, 777), 0);
	/* Id 0 is never mapped. */
	assert_int_equal(idnames_uid(m, 0), 0);
	memset(&e, 0, sizeof(e));
	e.uid = 4321;
	e.gid = 4321;
	idnames_entry(m, &e);
	assert_int_equal(e.uid, 0);
	assert_int_equal(e.gid, 4321);
	assert_int_equal(idnames_uid(NULL, 4321), 4321);
	idnames_map_free(m);
}

static void
test_map_bounded(void **state)
{
	struct idnames_map *m;
	uint32_t i;

	(void)state;
	assert_int_equal(idnames_map_new(&m), 0);
	for (i = 1; i <= IDNAMES_MAX; i++)
		learn(m, WIRE_ID_GROUP, 100000 + i, "asyncrep-no-such-group");
	/* Past the bound: learnt nothing, the number stays. */
	learn(m, WIRE_ID_GROUP, 5, "root");
	assert_int_equal(idnames_gid(m, 5), 5);
	/* Users have their own bound. */
	learn(m, WIRE_ID_USER, 5, "root");
	assert_int_equal(idnames_uid(m, 5), 0);
	idnames_map_free(m);
}

/* An ACL entry in the kernel's format, little-endian. */
static void
acl_ent(uint8_t *p, unsigned tag, unsigned perm, uint32_t id)
{
	p[0] = (uint8_t)tag;
	p[1] = (uint8_t)(tag >> 8);
	p[2] = (uint8_t)perm;
	p[3] = (uint8_t)(perm >> 8);
	p[4] = (uint8_t)id;
	p[5] = (uint8_t)(id >> 8);
	p[6] = (uint8_t)(id >> 16);
	p[7] = (uint8_t)(id >> 24);
}

static uint32_t
acl_id(const uint8_t *p)
{
	return (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
	    (uint32_t)p[7] << 24;
}

struct seen {
	uint32_t ids[8];
	uint8_t kinds[8];
	size_t n;
};

static void
collect(void *arg, uint8_t kind, uint32_t id)
{
	struct seen *s = arg;

	s->kinds[s->n] = kind;
	s->ids[s->n++] = id;
}

static void
test_acl(void **state)
{
	struct idnames_map *m;
	uint8_t v[4 + 7 * 8];
	struct seen seen;

	(void)state;
	memset(v, 0, sizeof(v));
	v[0] = 2;				/* version */
	acl_ent(v + 4, 0x01, 7, 0xffffffffu);	/* user:: */
	acl_ent(v + 12, 0x02, 6, 3000);		/* user:3000 (root there) */
	acl_ent(v + 20, 0x02, 4, 5);		/* user:5 */
	acl_ent(v + 28, 0x04, 5, 0xffffffffu);	/* group:: */
	acl_ent(v + 36, 0x08, 4, 42);		/* group:42 */
	acl_ent(v + 44, 0x10, 7, 0xffffffffu);	/* mask:: */
	acl_ent(v + 52, 0x20, 0, 0xffffffffu);	/* other:: */
	seen.n = 0;
	idnames_acl_ids(v, sizeof(v), collect, &seen);
	assert_int_equal(seen.n, 3);
	assert_int_equal(seen.kinds[0], WIRE_ID_USER);
	assert_int_equal(seen.ids[0], 3000);
	assert_int_equal(seen.ids[1], 5);
	assert_int_equal(seen.kinds[2], WIRE_ID_GROUP);
	assert_int_equal(seen.ids[2], 42);
	assert_int_equal(idnames_map_new(&m), 0);
	learn(m, WIRE_ID_USER, 3000, "root");
	assert_int_equal(idnames_acl(m, v, sizeof(v)), 0);
	/* user:3000 became user:0 and goes first again. */
	assert_int_equal(acl_id(v + 12), 0);
	assert_int_equal(v[14], 6);
	assert_int_equal(acl_id(v + 20), 5);
	assert_int_equal(v[22], 4);
	assert_int_equal(acl_id(v + 36), 42);
	assert_int_equal(acl_id(v + 4), 0xffffffffu);
	/* Not an ACL: left alone. */
	assert_int_equal(idnames_acl(m, v, sizeof(v) - 1), -AR_EPROTO);
	v[0] = 1;
	assert_int_equal(idnames_acl(m, v, sizeof(v)), -AR_EPROTO);
	seen.n = 0;
	idnames_acl_ids(v, sizeof(v), collect, &seen);
	assert_int_equal(seen.n, 0);
	idnames_map_free(m);
}

static void
test_sent_once(void **state)
{
	struct idnames_sent *t;
	struct wire_idname n;
	uint8_t buf[IDNAMES_ROOM];
	int len;

	(void)state;
	if (getpwuid(1) == NULL) {
		skip();
		return;
	}
	assert_int_equal(idnames_sent_new(&t), 0);
	/* uid 1 (daemon on Debian) has a name; gid 0 is never named. */
	len = idnames_put(t, 1, 0, NULL, buf, sizeof(buf));
	assert_true(len > WIRE_HDR);
	assert_int_equal(buf[0], WIRE_IDNAME);
	assert_int_equal(wire_get_idname(buf + WIRE_HDR, (size_t)len -
	    WIRE_HDR, &n), 0);
	assert_int_equal(n.kind, WIRE_ID_USER);
	assert_int_equal(n.id, 1);
	assert_string_equal(n.name, getpwuid(1)->pw_name);
	/* Once a stream. */
	assert_int_equal(idnames_put(t, 1, 0, NULL, buf, sizeof(buf)), 0);
	/* An id without a name here: nothing, then or later. */
	assert_int_equal(idnames_put(t, 3999999, 0, NULL, buf, sizeof(buf)),
	    0);
	idnames_sent_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_round_trip),
		cmocka_unit_test(test_name_rules),
		cmocka_unit_test(test_map),
		cmocka_unit_test(test_map_bounded),
		cmocka_unit_test(test_acl),
		cmocka_unit_test(test_sent_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

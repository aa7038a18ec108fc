/*
 * test-wire.c: the protocol's frames, byte for byte.
 *
 * Rejection cases are built by hand with a small byte builder rather than
 * through the encoders, because the encoders refuse to produce them and
 * because the layout itself (PROTOCOL.md) is what a peer relies on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "wire.h"

/* Big enough for any frame but data; static to keep test stacks small. */
static uint8_t frame[16384];

/* --- a byte builder for hand-made payloads ----------------------------- */

struct tb {
	uint8_t b[16384];
	size_t n;
};

static struct tb tb;

static void
tb_reset(void)
{
	tb.n = 0;
}

static void
tb_uint(uint64_t v, size_t n)
{
	size_t i;

	assert_true(tb.n + n <= sizeof(tb.b));
	for (i = 0; i < n; i++)
		tb.b[tb.n++] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static void
tb_bytes(const void *p, size_t n)
{
	assert_true(tb.n + n <= sizeof(tb.b));
	if (n > 0)
		memcpy(tb.b + tb.n, p, n);
	tb.n += n;
}

static void
tb_fill(uint8_t c, size_t n)
{
	assert_true(tb.n + n <= sizeof(tb.b));
	memset(tb.b + tb.n, c, n);
	tb.n += n;
}

/* An entry payload with every field chosen by the caller. */
static void
tb_entry(uint8_t type, const void *name, size_t nlen, uint32_t nsec,
    uint32_t mode, const void *target, size_t tlen)
{
	tb_reset();
	tb_uint(type, 1);
	tb_uint(nlen, 2);
	tb_bytes(name, nlen);
	tb_uint(1234, 8);
	tb_uint(1700000000, 8);
	tb_uint(nsec, 4);
	tb_uint(mode, 4);
	tb_uint(1000, 4);
	tb_uint(1000, 4);
	tb_uint(tlen, 2);
	tb_bytes(target, tlen);
}

/* --- helpers ------------------------------------------------------------ */

static uint32_t
frame_len(const uint8_t *f)
{
	return ((uint32_t)f[1] << 24) | ((uint32_t)f[2] << 16) |
	    ((uint32_t)f[3] << 8) | f[4];
}

/* Check the header an encoder wrote and return the payload length. */
static size_t
check_hdr(int n, uint8_t type)
{
	assert_true(n >= WIRE_HDR);
	assert_int_equal(frame[0], type);
	assert_int_equal(frame_len(frame), (uint32_t)n - WIRE_HDR);
	return (size_t)n - WIRE_HDR;
}

static void
set_entry(struct wire_entry *e, uint8_t type, const char *name, size_t nlen,
    const char *target, size_t tlen)
{
	memset(e, 0, sizeof(*e));
	e->type = type;
	e->name_len = (uint16_t)nlen;
	memcpy(e->name, name, nlen);
	e->size = 0x0102030405060708ull;
	e->mtime_sec = -5;
	e->mtime_nsec = 999999999;
	e->mode = 07755;
	e->uid = 0xfffffffeu;
	e->gid = 42;
	e->target_len = (uint16_t)tlen;
	if (tlen > 0)
		memcpy(e->target, target, tlen);
}

static void
assert_entry_equal(const struct wire_entry *a, const struct wire_entry *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->name_len, b->name_len);
	assert_memory_equal(a->name, b->name, a->name_len);
	assert_int_equal(b->name[b->name_len], '\0');
	assert_true(a->size == b->size);
	assert_true(a->mtime_sec == b->mtime_sec);
	assert_int_equal(a->mtime_nsec, b->mtime_nsec);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_int_equal(a->target_len, b->target_len);
	assert_memory_equal(a->target, b->target, a->target_len);
	assert_int_equal(b->target[b->target_len], '\0');
}

/*
 * Every strict prefix of a valid payload, and the payload with one byte
 * more, must be refused: a decoder consumes its layout exactly.
 */
typedef int decode_fn(const uint8_t *p, size_t len);

static void
check_exact(decode_fn *fn, const uint8_t *p, size_t len)
{
	static uint8_t copy[16384];
	size_t i;

	assert_true(len + 1 <= sizeof(copy));
	memcpy(copy, p, len);
	assert_int_equal(fn(copy, len), 0);
	for (i = 0; i < len; i++)
		assert_int_equal(fn(copy, i), -AR_EPROTO);
	copy[len] = 0;
	assert_int_equal(fn(copy, len + 1), -AR_EPROTO);
}

/* Every output size below what a frame needs is refused, not overrun. */
typedef int encode_fn(uint8_t *out, size_t outlen);

static void
check_space(encode_fn *fn)
{
	static uint8_t out[16384 + 16];
	int full;
	size_t i;

	full = fn(out, sizeof(out) - 16);
	assert_true(full > 0);
	for (i = 0; i < (size_t)full; i++) {
		memset(out, 0xee, sizeof(out));
		assert_int_equal(fn(out, i), -AR_ENOMEM);
		/* nothing written beyond what we were given */
		assert_int_equal(out[i], 0xee);
	}
	assert_int_equal(fn(out, (size_t)full), full);
}

/* --- paths and names ---------------------------------------------------- */

static void
test_path_valid(void **state)
{
	static char buf[WIRE_PATH_MAX + 2];
	size_t i;

	(void)state;
	assert_true(wire_path_valid("", 0));
	assert_true(wire_path_valid("a", 1));
	assert_true(wire_path_valid("a/b/c", 5));
	assert_true(wire_path_valid("...", 3));
	assert_true(wire_path_valid(".a/..b/c.", 9));
	assert_true(wire_path_valid("new\nline/\xff\xfe", 11));

	assert_false(wire_path_valid(".", 1));
	assert_false(wire_path_valid("..", 2));
	assert_false(wire_path_valid("a/../b", 6));
	assert_false(wire_path_valid("../a", 4));
	assert_false(wire_path_valid("a/..", 4));
	assert_false(wire_path_valid("./a", 3));
	assert_false(wire_path_valid("a/./b", 5));
	assert_false(wire_path_valid("/abs", 4));
	assert_false(wire_path_valid("/", 1));
	assert_false(wire_path_valid("a//b", 4));
	assert_false(wire_path_valid("a/", 2));
	assert_false(wire_path_valid("a\0b", 3));
	assert_false(wire_path_valid("\0", 1));

	/* one component: 255 bytes is the limit */
	memset(buf, 'x', sizeof(buf));
	assert_true(wire_path_valid(buf, WIRE_NAME_MAX));
	assert_false(wire_path_valid(buf, WIRE_NAME_MAX + 1));
	/* whole path: 4095 bytes of 255-byte components is the limit */
	for (i = WIRE_NAME_MAX; i < sizeof(buf); i += WIRE_NAME_MAX + 1)
		buf[i] = '/';
	buf[WIRE_PATH_MAX - 1] = 'x';
	assert_true(wire_path_valid(buf, WIRE_PATH_MAX));
	buf[WIRE_PATH_MAX] = 'x';
	assert_false(wire_path_valid(buf, WIRE_PATH_MAX + 1));
}

static void
test_name_valid(void **state)
{
	static char buf[WIRE_NAME_MAX + 1];

	(void)state;
	assert_true(wire_name_valid("a", 1));
	assert_true(wire_name_valid("...", 3));
	assert_true(wire_name_valid("\n\xff", 2));
	assert_false(wire_name_valid("", 0));
	assert_false(wire_name_valid(".", 1));
	assert_false(wire_name_valid("..", 2));
	assert_false(wire_name_valid("a/b", 3));
	assert_false(wire_name_valid("a\0", 2));
	memset(buf, 'n', sizeof(buf));
	assert_true(wire_name_valid(buf, WIRE_NAME_MAX));
	assert_false(wire_name_valid(buf, WIRE_NAME_MAX + 1));
}

/* --- hello -------------------------------------------------------------- */

static const char gen_ok[] = "0123456789abcdef0123456789abcdef";

static int
dec_hello(const uint8_t *p, size_t len)
{
	struct wire_hello h;

	return wire_get_hello(p, len, &h);
}

static int
enc_hello(uint8_t *out, size_t outlen)
{
	struct wire_hello h;

	memset(&h, 0, sizeof(h));
	h.version = 1;
	h.role = WIRE_ROLE_PRIMARY;
	memcpy(h.generation, gen_ok, sizeof(gen_ok));
	memcpy(h.server, "asyncrep 0.1", 13);
	return wire_put_hello(out, outlen, &h);
}

static void
test_hello_roundtrip(void **state)
{
	struct wire_hello h, d;
	size_t plen;
	int n;

	(void)state;
	memset(&h, 0, sizeof(h));
	h.version = 1;		/* version 1: no range follows the seq */
	h.role = WIRE_ROLE_RESCUE;
	memcpy(h.generation, gen_ok, sizeof(gen_ok));
	memset(h.server, 's', 63);
	h.seq = 0x0102030405060708ull;
	n = wire_put_hello(frame, sizeof(frame), &h);
	plen = check_hdr(n, 'H');
	assert_int_equal(plen, 4 + 4 + 1 + 32 + 1 + 63 + 8);
	assert_int_equal(wire_get_hello(frame + WIRE_HDR, plen, &d), 0);
	assert_true(d.seq == h.seq);
	assert_int_equal(d.version, 1);
	assert_int_equal(d.vmin, 1);
	assert_int_equal(d.vmax, 1);
	assert_int_equal(d.role, WIRE_ROLE_RESCUE);
	assert_string_equal(d.generation, gen_ok);
	assert_string_equal(d.server, h.server);

	/* the exact bytes of PROTOCOL.md */
	n = enc_hello(frame, sizeof(frame));
	plen = check_hdr(n, 'H');
	tb_reset();
	tb_uint(1, 4);
	tb_uint(1, 4);
	tb_uint(32, 1);
	tb_bytes(gen_ok, 32);
	tb_uint(12, 1);
	tb_bytes("asyncrep 0.1", 12);
	tb_uint(0, 8);
	assert_int_equal(plen, tb.n);
	assert_memory_equal(frame + WIRE_HDR, tb.b, tb.n);
	check_exact(dec_hello, tb.b, tb.n);
	check_space(enc_hello);
}

/* From version 2 on, the server's range follows the seq. */
static void
test_hello_v2_range(void **state)
{
	struct wire_hello h, d;
	size_t plen;
	int n;

	(void)state;
	memset(&h, 0, sizeof(h));
	h.version = 2;
	h.vmin = 1;
	h.vmax = 7;
	h.role = WIRE_ROLE_PRIMARY;
	memcpy(h.generation, gen_ok, sizeof(gen_ok));
	memcpy(h.server, "asyncrep 0.2", 13);
	h.seq = 9;
	n = wire_put_hello(frame, sizeof(frame), &h);
	plen = check_hdr(n, 'H');
	assert_int_equal(plen, 4 + 4 + 1 + 32 + 1 + 12 + 8 + 4 + 4);
	assert_int_equal(wire_get_hello(frame + WIRE_HDR, plen, &d), 0);
	assert_int_equal(d.version, 2);
	assert_int_equal(d.vmin, 1);
	assert_int_equal(d.vmax, 7);
	assert_true(d.seq == 9);
	/* a version-2 hello cut after the seq is a version-1 layout: short */
	assert_int_equal(wire_get_hello(frame + WIRE_HDR, plen - 8, &d),
	    -AR_EPROTO);
	/* a chosen version outside the announced range is malformed */
	frame[WIRE_HDR + plen - 5] = 3;	/* vmin = 3 > version 2 */
	assert_int_equal(wire_get_hello(frame + WIRE_HDR, plen, &d),
	    -AR_EPROTO);
	/* the encoder refuses it too, and a version 0 */
	h.vmin = 3;
	assert_int_equal(wire_put_hello(frame, sizeof(frame), &h),
	    -AR_EINTERNAL);
	h.vmin = 1;
	h.vmax = 1;
	assert_int_equal(wire_put_hello(frame, sizeof(frame), &h),
	    -AR_EINTERNAL);
	/* vmax 0: the version 1 layout with version 2 in it, as refused by
	 * a version 1 peer; a reader of version 2 finds it short */
	h.vmin = h.vmax = 0;
	n = wire_put_hello(frame, sizeof(frame), &h);
	plen = check_hdr(n, 'H');
	assert_int_equal(plen, 4 + 4 + 1 + 32 + 1 + 12 + 8);
	assert_int_equal(wire_get_hello(frame + WIRE_HDR, plen, &d),
	    -AR_EPROTO);
}

static void
test_versions_parse(void **state)
{
	uint32_t lo, hi, v;

	(void)state;
	assert_int_equal(wire_versions_parse("1-2", &lo, &hi), 0);
	assert_int_equal(lo, 1);
	assert_int_equal(hi, 2);
	assert_int_equal(wire_versions_parse("3", &lo, &hi), 0);
	assert_int_equal(lo, 3);
	assert_int_equal(hi, 3);
	assert_int_equal(wire_versions_parse("65535-65535", &lo, &hi), 0);
	assert_int_equal(wire_versions_parse("2-1", &lo, &hi), -AR_EPROTO);
	assert_int_equal(wire_versions_parse("0-2", &lo, &hi), -AR_EPROTO);
	assert_int_equal(wire_versions_parse("01-2", &lo, &hi), -AR_EPROTO);
	assert_int_equal(wire_versions_parse("1-65536", &lo, &hi), -AR_EPROTO);
	assert_int_equal(wire_versions_parse("1-", &lo, &hi), -AR_EPROTO);
	assert_int_equal(wire_versions_parse("-2", &lo, &hi), -AR_EPROTO);
	assert_int_equal(wire_versions_parse(" 1-2", &lo, &hi), -AR_EPROTO);
	assert_int_equal(wire_versions_parse("1-2 ", &lo, &hi), -AR_EPROTO);
	assert_int_equal(wire_versions_parse("1-2-3", &lo, &hi), -AR_EPROTO);
	assert_int_equal(wire_versions_parse("", &lo, &hi), -AR_EPROTO);
	assert_int_equal(wire_versions_parse("99999999999999999999", &lo,
	    &hi), -AR_EPROTO);
	assert_int_equal(wire_versions_parse(NULL, &lo, &hi), -AR_EPROTO);
	assert_int_equal(wire_version_parse("2", &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(wire_version_parse("2-3", &v), -AR_EPROTO);
	assert_int_equal(wire_version_parse("+2", &v), -AR_EPROTO);
	assert_int_equal(wire_version_parse(NULL, &v), -AR_EPROTO);
}

static void
test_version_pick(void **state)
{
	uint32_t v = 0;

	(void)state;
	assert_int_equal(wire_version_pick(1, 2, 1, 2, &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(wire_version_pick(1, 5, 2, 3, &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(wire_version_pick(1, 1, 1, 2, &v), 0);
	assert_int_equal(v, 1);	/* a version 1 standby: one in common */
	assert_int_equal(wire_version_pick(3, 4, 2, 3, &v), 0);
	assert_int_equal(v, 3);
	v = 0;
	assert_int_equal(wire_version_pick(3, 4, 1, 2, &v), -AR_EVERSION);
	assert_int_equal(wire_version_pick(1, 1, 2, 2, &v), -AR_EVERSION);
	assert_int_equal(v, 0);
}

static void
hello_raw(const char *gen, size_t glen, uint32_t role, const void *srv,
    size_t slen)
{
	tb_reset();
	tb_uint(1, 4);
	tb_uint(role, 4);
	tb_uint(glen, 1);
	tb_bytes(gen, glen);
	tb_uint(slen, 1);
	tb_bytes(srv, slen);
	tb_uint(7, 8);
}

static void
test_pathop(void **state)
{
	struct wire_pathop op;
	size_t plen;
	int n;

	(void)state;
	n = wire_put_pathop(frame, sizeof(frame), WIRE_MOVE, "a/b", 3,
	    "c\nd", 3);
	plen = check_hdr(n, 'M');
	assert_int_equal(wire_get_pathop(frame + WIRE_HDR, plen, WIRE_MOVE,
	    &op), 0);
	assert_string_equal(op.path, "a/b");
	assert_string_equal(op.path2, "c\nd");
	/* "" is the root: only a rescan may name it */
	n = wire_put_pathop(frame, sizeof(frame), WIRE_RESCAN, "", 0, NULL, 0);
	plen = check_hdr(n, 'S');
	assert_int_equal(wire_get_pathop(frame + WIRE_HDR, plen, WIRE_RESCAN,
	    &op), 0);
	assert_int_equal(op.path_len, 0);
	assert_int_equal(wire_put_pathop(frame, sizeof(frame), WIRE_GONE_PATH,
	    "", 0, NULL, 0), -AR_EINTERNAL);
	assert_int_equal(wire_get_pathop(frame + WIRE_HDR, plen,
	    WIRE_GONE_PATH, &op), -AR_EPROTO);
	assert_int_equal(wire_put_pathop(frame, sizeof(frame), WIRE_MOVE,
	    "../x", 4, "y", 1), -AR_EINTERNAL);
	/* a hostile second path */
	n = wire_put_pathop(frame, sizeof(frame), WIRE_MOVE, "a", 1, "b", 1);
	plen = check_hdr(n, 'M');
	frame[WIRE_HDR + 5] = '/';
	assert_int_equal(wire_get_pathop(frame + WIRE_HDR, plen, WIRE_MOVE,
	    &op), -AR_EPROTO);
	/* a state frame carries a whole path of any type */
	{
		struct wire_entry e, d;

		memset(&e, 0, sizeof(e));
		e.type = 'd';
		memcpy(e.name, "x/y", 4);
		e.name_len = 3;
		e.mode = 0755;
		n = wire_put_entry(frame, sizeof(frame), WIRE_STATE, &e);
		plen = check_hdr(n, 'U');
		assert_int_equal(wire_get_entry(frame + WIRE_HDR, plen,
		    WIRE_STATE, &d), 0);
		assert_string_equal(d.name, "x/y");
		assert_int_equal(d.type, 'd');
	}
}

static void
test_hello_reject(void **state)
{
	static char srv[70];
	struct wire_hello h;

	(void)state;
	memset(srv, 's', sizeof(srv));
	hello_raw(gen_ok, 32, 1, srv, 63);
	assert_int_equal(dec_hello(tb.b, tb.n), 0);
	hello_raw(gen_ok, 32, 2, srv, 0);
	assert_int_equal(dec_hello(tb.b, tb.n), 0);

	hello_raw("0123456789ABCDEF0123456789abcdef", 32, 1, srv, 3);
	assert_int_equal(dec_hello(tb.b, tb.n), -AR_EPROTO);
	hello_raw(gen_ok, 31, 1, srv, 3);
	assert_int_equal(dec_hello(tb.b, tb.n), -AR_EPROTO);
	hello_raw("0123456789abcdef0123456789abcdef0", 33, 1, srv, 3);
	assert_int_equal(dec_hello(tb.b, tb.n), -AR_EPROTO);
	hello_raw("0123456789abcdeg0123456789abcdef", 32, 1, srv, 3);
	assert_int_equal(dec_hello(tb.b, tb.n), -AR_EPROTO);
	hello_raw("0123456789abcde\0000123456789abcdef", 32, 1, srv, 3);
	assert_int_equal(dec_hello(tb.b, tb.n), -AR_EPROTO);
	hello_raw(gen_ok, 32, 0, srv, 3);
	assert_int_equal(dec_hello(tb.b, tb.n), -AR_EPROTO);
	hello_raw(gen_ok, 32, 3, srv, 3);
	assert_int_equal(dec_hello(tb.b, tb.n), -AR_EPROTO);
	hello_raw(gen_ok, 32, 1, srv, 64);
	assert_int_equal(dec_hello(tb.b, tb.n), -AR_EPROTO);
	hello_raw(gen_ok, 32, 1, "as\0x", 4);
	assert_int_equal(dec_hello(tb.b, tb.n), -AR_EPROTO);

	/* the encoder refuses what the decoder would */
	memset(&h, 0, sizeof(h));
	h.version = 1;
	h.role = 1;
	memcpy(h.generation, "0123456789ABCDEF0123456789abcdef", 33);
	assert_int_equal(wire_put_hello(frame, sizeof(frame), &h),
	    -AR_EINTERNAL);
	memcpy(h.generation, gen_ok, sizeof(gen_ok));
	h.role = 3;
	assert_int_equal(wire_put_hello(frame, sizeof(frame), &h),
	    -AR_EINTERNAL);
	h.role = 1;
	memset(h.server, 's', sizeof(h.server));	/* no NUL */
	assert_int_equal(wire_put_hello(frame, sizeof(frame), &h),
	    -AR_EINTERNAL);
}

/* --- dir ---------------------------------------------------------------- */

static int
dec_dir(const uint8_t *p, size_t len)
{
	static char path[WIRE_PATH_MAX + 1];
	size_t plen;

	return wire_get_dir(p, len, path, &plen);
}

static int
enc_dir(uint8_t *out, size_t outlen)
{
	return wire_put_dir(out, outlen, "sub/dir", 7);
}

static void
dir_raw(const void *p, size_t len)
{
	tb_reset();
	tb_uint(len, 2);
	tb_bytes(p, len);
}

static void
test_dir(void **state)
{
	static char path[WIRE_PATH_MAX + 1];
	static const char odd[] = "a\nb/\xff\xfe/c d";
	size_t plen, flen;
	int n;

	(void)state;
	n = wire_put_dir(frame, sizeof(frame), "", 0);
	flen = check_hdr(n, 'P');
	assert_int_equal(flen, 2);
	assert_int_equal(wire_get_dir(frame + WIRE_HDR, flen, path, &plen), 0);
	assert_int_equal(plen, 0);
	assert_string_equal(path, "");

	n = wire_put_dir(frame, sizeof(frame), odd, sizeof(odd) - 1);
	flen = check_hdr(n, 'P');
	assert_int_equal(wire_get_dir(frame + WIRE_HDR, flen, path, &plen), 0);
	assert_int_equal(plen, sizeof(odd) - 1);
	assert_memory_equal(path, odd, sizeof(odd));	/* with its NUL */
	check_exact(dec_dir, frame + WIRE_HDR, flen);
	check_space(enc_dir);

	dir_raw("/", 1);
	assert_int_equal(dec_dir(tb.b, tb.n), -AR_EPROTO);
	dir_raw("a/", 2);
	assert_int_equal(dec_dir(tb.b, tb.n), -AR_EPROTO);
	dir_raw("a/../b", 6);
	assert_int_equal(dec_dir(tb.b, tb.n), -AR_EPROTO);
	dir_raw("..", 2);
	assert_int_equal(dec_dir(tb.b, tb.n), -AR_EPROTO);
	dir_raw("a\0b", 3);
	assert_int_equal(dec_dir(tb.b, tb.n), -AR_EPROTO);
	/* a length pointing past the payload */
	tb_reset();
	tb_uint(5, 2);
	tb_bytes("abc", 3);
	assert_int_equal(dec_dir(tb.b, tb.n), -AR_EPROTO);

	assert_int_equal(wire_put_dir(frame, sizeof(frame), "/abs", 4),
	    -AR_EINTERNAL);
}

/* --- entry and file ----------------------------------------------------- */

static int
dec_entry(const uint8_t *p, size_t len)
{
	static struct wire_entry e;

	return wire_get_entry(p, len, WIRE_ENTRY, &e);
}

static int
dec_file(const uint8_t *p, size_t len)
{
	static struct wire_entry e;

	return wire_get_entry(p, len, WIRE_FILE, &e);
}

static int
enc_entry(uint8_t *out, size_t outlen)
{
	static struct wire_entry e;

	set_entry(&e, 'l', "link", 4, "../target", 9);
	return wire_put_entry(out, outlen, WIRE_ENTRY, &e);
}

static void
roundtrip_entry(uint8_t ftype, const struct wire_entry *e)
{
	static struct wire_entry d;
	size_t plen;
	int n;

	n = wire_put_entry(frame, sizeof(frame), ftype, e);
	plen = check_hdr(n, ftype);
	assert_int_equal(plen, 1 + 2 + e->name_len + 8 + 8 + 4 + 4 + 4 + 4 +
	    2 + e->target_len);
	memset(&d, 0x55, sizeof(d));
	assert_int_equal(wire_get_entry(frame + WIRE_HDR, plen, ftype, &d), 0);
	assert_entry_equal(e, &d);
	check_exact(ftype == WIRE_ENTRY ? dec_entry : dec_file,
	    frame + WIRE_HDR, plen);
}

static void
test_entry_roundtrip(void **state)
{
	static struct wire_entry e;
	static char longname[WIRE_NAME_MAX];
	static char longtarget[WIRE_TARGET_MAX];

	(void)state;
	set_entry(&e, 'f', "plain.txt", 9, NULL, 0);
	roundtrip_entry(WIRE_ENTRY, &e);
	set_entry(&e, 'd', "dir", 3, NULL, 0);
	e.mtime_sec = INT64_MIN;
	e.mtime_nsec = 0;
	e.mode = 0;
	roundtrip_entry(WIRE_ENTRY, &e);
	set_entry(&e, 'l', "ln", 2, "/abs/target\n\xff", 13);
	e.mtime_sec = INT64_MAX;
	roundtrip_entry(WIRE_ENTRY, &e);
	/* names travel unchanged: newline, invalid UTF-8 */
	set_entry(&e, 'f', "new\nline\xff\xfe\x80", 11, NULL, 0);
	roundtrip_entry(WIRE_ENTRY, &e);
	memset(longname, 'n', sizeof(longname));
	memset(longtarget, 't', sizeof(longtarget));
	set_entry(&e, 'l', longname, sizeof(longname), longtarget,
	    sizeof(longtarget));
	roundtrip_entry(WIRE_ENTRY, &e);

	/* the exact bytes of PROTOCOL.md */
	set_entry(&e, 'l', "ab", 2, "t", 1);
	assert_int_equal(wire_put_entry(frame, sizeof(frame), 'E', &e),
	    WIRE_HDR + 40);
	tb_reset();
	tb_uint('E', 1);
	tb_uint(40, 4);
	tb_uint('l', 1);
	tb_uint(2, 2);
	tb_bytes("ab", 2);
	tb_bytes("\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	tb_bytes("\xff\xff\xff\xff\xff\xff\xff\xfb", 8);	/* -5 */
	tb_uint(999999999, 4);
	tb_uint(07755, 4);
	tb_uint(0xfffffffeu, 4);
	tb_uint(42, 4);
	tb_uint(1, 2);
	tb_bytes("t", 1);
	assert_memory_equal(frame, tb.b, tb.n);

	check_space(enc_entry);
}

/* Version 5: special files, hard links, the A frame, holes; a hard
 * link out of the tree and a FIFO with a size are refused. */
static void
test_fidelity_frames(void **state)
{
	static struct wire_entry e, d;
	uint64_t hole;
	size_t plen;
	int n;

	(void)state;
	set_entry(&e, 'p', "fifo", 4, NULL, 0);
	e.size = 0;
	roundtrip_entry(WIRE_ENTRY, &e);
	set_entry(&e, 'c', "null", 4, NULL, 0);
	e.size = wire_rdev(1, 3);
	roundtrip_entry(WIRE_ENTRY, &e);
	set_entry(&e, 'h', "second", 6, "d/first", 7);
	roundtrip_entry(WIRE_ENTRY, &e);
	/* A hard link never goes outside the tree, nor in U or F. */
	set_entry(&e, 'h', "second", 6, "../etc/passwd", 13);
	assert_int_equal(wire_put_entry(frame, sizeof(frame), WIRE_ENTRY, &e),
	    -AR_EINTERNAL);
	set_entry(&e, 'h', "second", 6, "d/first", 7);
	n = wire_put_entry(frame, sizeof(frame), WIRE_ENTRY, &e);
	plen = check_hdr(n, WIRE_ENTRY);
	/* the target "d/first" is the last 7 bytes: make it "../fir" */
	memcpy(frame + WIRE_HDR + plen - 7, "../firs", 7);
	assert_int_equal(wire_get_entry(frame + WIRE_HDR, plen, WIRE_ENTRY,
	    &d), -AR_EPROTO);
	assert_int_equal(wire_get_entry(frame + WIRE_HDR, plen, WIRE_STATE,
	    &d), -AR_EPROTO);
	/* A FIFO has no size. */
	set_entry(&e, 's', "sock", 4, NULL, 0);
	e.size = 7;
	assert_int_equal(wire_put_entry(frame, sizeof(frame), WIRE_ENTRY, &e),
	    -AR_EINTERNAL);
	/* A: the root, "" allowed; a directory only. */
	set_entry(&e, 'd', "", 0, NULL, 0);
	n = wire_put_entry(frame, sizeof(frame), WIRE_ATTRS, &e);
	plen = check_hdr(n, WIRE_ATTRS);
	assert_int_equal(wire_get_entry(frame + WIRE_HDR, plen, WIRE_ATTRS,
	    &d), 0);
	assert_int_equal(wire_get_entry(frame + WIRE_HDR, plen, WIRE_STATE,
	    &d), -AR_EPROTO);
	set_entry(&e, 'f', "", 0, NULL, 0);
	assert_int_equal(wire_put_entry(frame, sizeof(frame), WIRE_ATTRS, &e),
	    -AR_EINTERNAL);
	/* O: 1 to WIRE_HOLE_MAX bytes. */
	n = wire_put_hole(frame, sizeof(frame), 4096);
	plen = check_hdr(n, WIRE_HOLE);
	assert_int_equal(wire_get_hole(frame + WIRE_HDR, plen, &hole), 0);
	assert_int_equal(hole, 4096);
	assert_int_equal(wire_put_hole(frame, sizeof(frame), 0),
	    -AR_EINTERNAL);
	assert_int_equal(wire_put_hole(frame, sizeof(frame),
	    WIRE_HOLE_MAX + 1), -AR_EINTERNAL);
}

static void
test_file_roundtrip(void **state)
{
	static struct wire_entry e;
	static char deep[WIRE_PATH_MAX];
	size_t i;

	(void)state;
	set_entry(&e, 'f', "a/b/c.txt", 9, NULL, 0);
	roundtrip_entry(WIRE_FILE, &e);
	set_entry(&e, 'f', "top", 3, NULL, 0);
	roundtrip_entry(WIRE_FILE, &e);
	memset(deep, 'p', sizeof(deep));
	for (i = WIRE_NAME_MAX; i < sizeof(deep); i += WIRE_NAME_MAX + 1)
		deep[i] = '/';
	set_entry(&e, 'f', deep, sizeof(deep), NULL, 0);
	roundtrip_entry(WIRE_FILE, &e);
}

static void
test_entry_reject(void **state)
{
	static char buf[WIRE_PATH_MAX + 1];
	static struct wire_entry e;
	size_t i;

	(void)state;
	/* control: the builder makes a good one */
	tb_entry('f', "a", 1, 0, 0644, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), 0);
	assert_int_equal(dec_file(tb.b, tb.n), 0);
	tb_entry('l', "a", 1, 999999999, 07777, "x", 1);
	assert_int_equal(dec_entry(tb.b, tb.n), 0);

	/* type byte */
	tb_entry('x', "a", 1, 0, 0644, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	tb_entry('o', "a", 1, 0, 0644, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	tb_entry('F', "a", 1, 0, 0644, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	tb_entry(0, "a", 1, 0, 0644, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	/* F carries a regular file only */
	tb_entry('d', "a", 1, 0, 0755, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), 0);
	assert_int_equal(dec_file(tb.b, tb.n), -AR_EPROTO);
	/* mode beyond permission bits, nanoseconds out of range */
	tb_entry('f', "a", 1, 0, 010000, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	tb_entry('f', "a", 1, 0, 0100644, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	tb_entry('f', "a", 1, 1000000000, 0644, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	tb_entry('f', "a", 1, 0xffffffffu, 0644, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	/* target only for a symlink, and a symlink needs one */
	tb_entry('f', "a", 1, 0, 0644, "t", 1);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	tb_entry('d', "a", 1, 0, 0644, "t", 1);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	tb_entry('l', "a", 1, 0, 0777, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	tb_entry('l', "a", 1, 0, 0777, "t\0u", 3);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	memset(buf, 't', sizeof(buf));
	tb_entry('l', "a", 1, 0, 0777, buf, WIRE_TARGET_MAX + 1);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);

	/* E: one component */
	tb_entry('f', "", 0, 0, 0644, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	tb_entry('f', ".", 1, 0, 0644, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	tb_entry('d', "..", 2, 0, 0644, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	tb_entry('f', "a/b", 3, 0, 0644, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	tb_entry('f', "a\0b", 3, 0, 0644, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);
	memset(buf, 'n', sizeof(buf));
	tb_entry('f', buf, WIRE_NAME_MAX + 1, 0, 0644, NULL, 0);
	assert_int_equal(dec_entry(tb.b, tb.n), -AR_EPROTO);

	/* F: a whole, non-empty, normalised path */
	tb_entry('f', "", 0, 0, 0644, NULL, 0);
	assert_int_equal(dec_file(tb.b, tb.n), -AR_EPROTO);
	tb_entry('f', "/abs", 4, 0, 0644, NULL, 0);
	assert_int_equal(dec_file(tb.b, tb.n), -AR_EPROTO);
	tb_entry('f', "a/../b", 6, 0, 0644, NULL, 0);
	assert_int_equal(dec_file(tb.b, tb.n), -AR_EPROTO);
	tb_entry('f', "..", 2, 0, 0644, NULL, 0);
	assert_int_equal(dec_file(tb.b, tb.n), -AR_EPROTO);
	tb_entry('f', "a//b", 4, 0, 0644, NULL, 0);
	assert_int_equal(dec_file(tb.b, tb.n), -AR_EPROTO);
	tb_entry('f', "a/", 2, 0, 0644, NULL, 0);
	assert_int_equal(dec_file(tb.b, tb.n), -AR_EPROTO);
	tb_entry('f', "a\0b", 3, 0, 0644, NULL, 0);
	assert_int_equal(dec_file(tb.b, tb.n), -AR_EPROTO);
	memset(buf, 'p', sizeof(buf));
	tb_entry('f', buf, WIRE_NAME_MAX + 1, 0, 0644, NULL, 0);
	assert_int_equal(dec_file(tb.b, tb.n), -AR_EPROTO);
	for (i = WIRE_NAME_MAX; i < sizeof(buf); i += WIRE_NAME_MAX + 1)
		buf[i] = '/';
	tb_entry('f', buf, WIRE_PATH_MAX, 0, 0644, NULL, 0);
	assert_int_equal(dec_file(tb.b, tb.n), 0);
	buf[WIRE_PATH_MAX] = 'p';
	tb_entry('f', buf, WIRE_PATH_MAX + 1, 0, 0644, NULL, 0);
	assert_int_equal(dec_file(tb.b, tb.n), -AR_EPROTO);

	/* a frame type that has no entry layout is the caller's bug */
	tb_entry('f', "a", 1, 0, 0644, NULL, 0);
	assert_int_equal(wire_get_entry(tb.b, tb.n, 'Z', &e), -AR_EINTERNAL);

	/* the encoder refuses the same things */
	set_entry(&e, 'f', "a/b", 3, NULL, 0);
	assert_int_equal(wire_put_entry(frame, sizeof(frame), 'E', &e),
	    -AR_EINTERNAL);
	assert_true(wire_put_entry(frame, sizeof(frame), 'F', &e) > 0);
	set_entry(&e, 'f', "a", 1, NULL, 0);
	e.mode = 0100644;
	assert_int_equal(wire_put_entry(frame, sizeof(frame), 'E', &e),
	    -AR_EINTERNAL);
	set_entry(&e, 'f', "a", 1, NULL, 0);
	e.mtime_nsec = 1000000000;
	assert_int_equal(wire_put_entry(frame, sizeof(frame), 'E', &e),
	    -AR_EINTERNAL);
	set_entry(&e, 'f', "a", 1, "t", 1);
	assert_int_equal(wire_put_entry(frame, sizeof(frame), 'E', &e),
	    -AR_EINTERNAL);
	set_entry(&e, 'd', "a", 1, NULL, 0);
	assert_int_equal(wire_put_entry(frame, sizeof(frame), 'F', &e),
	    -AR_EINTERNAL);
	set_entry(&e, 'f', "a", 1, NULL, 0);
	e.name_len = WIRE_PATH_MAX + 1;
	assert_int_equal(wire_put_entry(frame, sizeof(frame), 'F', &e),
	    -AR_ENOMEM);
	assert_int_equal(wire_put_entry(frame, sizeof(frame), 'E', &e),
	    -AR_ENOMEM);
}

/* --- end, error, req, trailer, retry, data ------------------------------ */

static int
dec_end(const uint8_t *p, size_t len)
{
	uint64_t c;

	return wire_get_end(p, len, &c);
}

static int
enc_end(uint8_t *out, size_t outlen)
{
	return wire_put_end(out, outlen, 7);
}

static void
test_end(void **state)
{
	uint64_t c = 0;
	size_t plen;
	int n;

	(void)state;
	n = wire_put_end(frame, sizeof(frame), 0xfedcba9876543210ull);
	plen = check_hdr(n, 'Z');
	assert_int_equal(plen, 8);
	assert_memory_equal(frame + WIRE_HDR,
	    "\xfe\xdc\xba\x98\x76\x54\x32\x10", 8);
	assert_int_equal(wire_get_end(frame + WIRE_HDR, plen, &c), 0);
	assert_true(c == 0xfedcba9876543210ull);
	check_exact(dec_end, frame + WIRE_HDR, plen);
	check_space(enc_end);
}

static int
dec_error(const uint8_t *p, size_t len)
{
	static struct wire_error e;

	return wire_get_error(p, len, &e);
}

static int
enc_error(uint8_t *out, size_t outlen)
{
	return wire_put_error(out, outlen, AR_EIO, "read \"x\": i/o error");
}

static void
test_error(void **state)
{
	static struct wire_error e;
	static char msg[WIRE_MSG_MAX + 2];
	size_t plen;
	int n;

	(void)state;
	n = wire_put_error(frame, sizeof(frame), AR_EIO, "disk gone");
	plen = check_hdr(n, 'X');
	assert_int_equal(plen, 4 + 2 + 9);
	assert_int_equal(wire_get_error(frame + WIRE_HDR, plen, &e), 0);
	assert_int_equal(e.code, AR_EIO);
	assert_int_equal(e.msg_len, 9);
	assert_string_equal(e.msg, "disk gone");
	check_exact(dec_error, frame + WIRE_HDR, plen);

	n = wire_put_error(frame, sizeof(frame), 0, "");
	plen = check_hdr(n, 'X');
	assert_int_equal(wire_get_error(frame + WIRE_HDR, plen, &e), 0);
	assert_int_equal(e.msg_len, 0);
	assert_string_equal(e.msg, "");

	/* a long message is cut at the limit, not refused */
	memset(msg, 'm', WIRE_MSG_MAX + 1);
	msg[WIRE_MSG_MAX + 1] = '\0';
	n = wire_put_error(frame, sizeof(frame), AR_EINTERNAL, msg);
	plen = check_hdr(n, 'X');
	assert_int_equal(plen, 4 + 2 + WIRE_MSG_MAX);
	assert_int_equal(wire_get_error(frame + WIRE_HDR, plen, &e), 0);
	assert_int_equal(e.msg_len, WIRE_MSG_MAX);
	assert_int_equal(strlen(e.msg), WIRE_MSG_MAX);

	/* but a peer's message beyond the limit is refused */
	tb_reset();
	tb_uint(AR_EIO, 4);
	tb_uint(WIRE_MSG_MAX + 1, 2);
	tb_fill('m', WIRE_MSG_MAX + 1);
	assert_int_equal(dec_error(tb.b, tb.n), -AR_EPROTO);
	tb_reset();
	tb_uint(AR_EIO, 4);
	tb_uint(3, 2);
	tb_bytes("a\0b", 3);
	assert_int_equal(dec_error(tb.b, tb.n), -AR_EPROTO);
	check_space(enc_error);
}

static int
dec_req(const uint8_t *p, size_t len)
{
	static struct wire_req r;

	return wire_get_req(p, len, &r);
}

static int
enc_req(uint8_t *out, size_t outlen)
{
	return wire_put_req(out, outlen, "d/f", 3, 99);
}

static void
req_raw(const void *p, size_t len)
{
	tb_reset();
	tb_uint(len, 2);
	tb_bytes(p, len);
	tb_uint(0, 8);
}

static void
test_req(void **state)
{
	static struct wire_req r;
	size_t plen;
	int n;

	(void)state;
	n = wire_put_req(frame, sizeof(frame), "dir/\nfile\xff", 10,
	    0x1122334455667788ull);
	plen = check_hdr(n, 'N');
	assert_int_equal(plen, 2 + 10 + 8);
	assert_int_equal(wire_get_req(frame + WIRE_HDR, plen, &r), 0);
	assert_int_equal(r.path_len, 10);
	assert_memory_equal(r.path, "dir/\nfile\xff", 11);
	assert_true(r.basis_size == 0x1122334455667788ull);
	check_exact(dec_req, frame + WIRE_HDR, plen);
	check_space(enc_req);

	req_raw("", 0);
	assert_int_equal(dec_req(tb.b, tb.n), -AR_EPROTO);
	req_raw("/etc/passwd", 11);
	assert_int_equal(dec_req(tb.b, tb.n), -AR_EPROTO);
	req_raw("../x", 4);
	assert_int_equal(dec_req(tb.b, tb.n), -AR_EPROTO);
	req_raw("a/../../x", 9);
	assert_int_equal(dec_req(tb.b, tb.n), -AR_EPROTO);
	req_raw("a\0", 2);
	assert_int_equal(dec_req(tb.b, tb.n), -AR_EPROTO);
	assert_int_equal(wire_put_req(frame, sizeof(frame), "", 0, 0),
	    -AR_EINTERNAL);
	assert_int_equal(wire_put_req(frame, sizeof(frame), "a/", 2, 0),
	    -AR_EINTERNAL);
}

static int
dec_trailer(const uint8_t *p, size_t len)
{
	struct wire_trailer t;

	return wire_get_trailer(p, len, &t);
}

static int
enc_trailer(uint8_t *out, size_t outlen)
{
	struct wire_trailer t;

	memset(&t, 0xab, sizeof(t));
	return wire_put_trailer(out, outlen, &t);
}

static void
test_trailer(void **state)
{
	struct wire_trailer t, d;
	size_t i, plen;
	int n;

	(void)state;
	t.size = 123456789012ull;
	for (i = 0; i < sizeof(t.hash); i++)
		t.hash[i] = (uint8_t)(i * 7 + 1);
	n = wire_put_trailer(frame, sizeof(frame), &t);
	plen = check_hdr(n, 'T');
	assert_int_equal(plen, 40);
	assert_int_equal(wire_get_trailer(frame + WIRE_HDR, plen, &d), 0);
	assert_true(d.size == t.size);
	assert_memory_equal(d.hash, t.hash, sizeof(t.hash));
	check_exact(dec_trailer, frame + WIRE_HDR, plen);
	check_space(enc_trailer);
}

static int
dec_retry(const uint8_t *p, size_t len)
{
	static struct wire_retry r;

	return wire_get_retry(p, len, &r);
}

static int
enc_retry(uint8_t *out, size_t outlen)
{
	return wire_put_retry(out, outlen, WIRE_RETRY_GONE, "x/y", 3);
}

static void
retry_raw(uint32_t reason, const void *p, size_t len)
{
	tb_reset();
	tb_uint(reason, 4);
	tb_uint(len, 2);
	tb_bytes(p, len);
}

static void
test_retry(void **state)
{
	static struct wire_retry r;
	uint32_t reason;
	size_t plen;
	int n;

	(void)state;
	for (reason = 1; reason <= 3; reason++) {
		n = wire_put_retry(frame, sizeof(frame), reason, "a/b", 3);
		plen = check_hdr(n, 'R');
		assert_int_equal(plen, 4 + 2 + 3);
		assert_int_equal(wire_get_retry(frame + WIRE_HDR, plen, &r), 0);
		assert_int_equal(r.reason, reason);
		assert_int_equal(r.path_len, 3);
		assert_string_equal(r.path, "a/b");
		check_exact(dec_retry, frame + WIRE_HDR, plen);
	}
	check_space(enc_retry);

	retry_raw(0, "a", 1);
	assert_int_equal(dec_retry(tb.b, tb.n), -AR_EPROTO);
	retry_raw(WIRE_RETRY_BASIS, "a", 1);
	assert_int_equal(dec_retry(tb.b, tb.n), 0);
	retry_raw(5, "a", 1);
	assert_int_equal(dec_retry(tb.b, tb.n), -AR_EPROTO);
	retry_raw(1, "", 0);
	assert_int_equal(dec_retry(tb.b, tb.n), -AR_EPROTO);
	retry_raw(1, "/a", 2);
	assert_int_equal(dec_retry(tb.b, tb.n), -AR_EPROTO);
	retry_raw(1, "a/./b", 5);
	assert_int_equal(dec_retry(tb.b, tb.n), -AR_EPROTO);
	assert_int_equal(wire_put_retry(frame, sizeof(frame), 0, "a", 1),
	    -AR_EINTERNAL);
	assert_int_equal(wire_put_retry(frame, sizeof(frame), 5, "a", 1),
	    -AR_EINTERNAL);
}

static void
test_data_hdr(void **state)
{
	(void)state;
	wire_put_data_hdr(frame, WIRE_DATA_CHUNK);
	assert_memory_equal(frame, "D\x00\x04\x00\x00", 5);
	wire_put_data_hdr(frame, 0);
	assert_memory_equal(frame, "D\x00\x00\x00\x00", 5);
}

/* --- the reader --------------------------------------------------------- */

/* What the callback saw: each frame's type, length and bytes. */
struct rec {
	size_t n;
	uint8_t type[64];
	uint32_t len[64];
	size_t off[64];
	uint8_t data[300000];
	size_t used;
	size_t stop_at;		/* return stop_rv on this frame (1-based) */
	int stop_rv;
	uintptr_t lo, hi;	/* the input fed, to tell copies from it */
	size_t direct;		/* frames handed over in place */
};

static struct rec rec;

static int
rec_cb(void *arg, uint8_t type, const uint8_t *payload, uint32_t len)
{
	struct rec *r = arg;

	assert_true(r->n < 64);
	assert_true(r->used + len <= sizeof(r->data));
	r->type[r->n] = type;
	r->len[r->n] = len;
	r->off[r->n] = r->used;
	memcpy(r->data + r->used, payload, len);
	r->used += len;
	if ((uintptr_t)payload >= r->lo && (uintptr_t)payload < r->hi)
		r->direct++;
	r->n++;
	if (r->stop_at == r->n)
		return r->stop_rv;
	return 0;
}

static uint8_t stream[300000];
static size_t stream_len;

/* A stream of every kind of frame, an empty payload and a big one. */
static void
make_stream(void)
{
	static struct wire_entry e;
	struct wire_trailer t;
	size_t i;
	int n;

	stream_len = 0;
	n = enc_hello(stream, sizeof(stream));
	assert_true(n > 0);
	stream_len += (size_t)n;
	n = wire_put_dir(stream + stream_len, sizeof(stream) - stream_len,
	    "", 0);
	assert_true(n > 0);
	stream_len += (size_t)n;
	set_entry(&e, 'f', "f\n", 2, NULL, 0);
	n = wire_put_entry(stream + stream_len, sizeof(stream) - stream_len,
	    'F', &e);
	assert_true(n > 0);
	stream_len += (size_t)n;
	wire_put_data_hdr(stream + stream_len, 0);
	stream_len += WIRE_HDR;
	wire_put_data_hdr(stream + stream_len, 200000);
	stream_len += WIRE_HDR;
	for (i = 0; i < 200000; i++)
		stream[stream_len + i] = (uint8_t)(i * 31 + (i >> 8));
	stream_len += 200000;
	memset(&t, 7, sizeof(t));
	n = wire_put_trailer(stream + stream_len, sizeof(stream) - stream_len,
	    &t);
	assert_true(n > 0);
	stream_len += (size_t)n;
	n = wire_put_end(stream + stream_len, sizeof(stream) - stream_len, 1);
	assert_true(n > 0);
	stream_len += (size_t)n;
}

/* The recorder must hold exactly the frames of the stream, in order. */
static void
check_rec(void)
{
	size_t pos = 0, i;
	uint32_t len;

	for (i = 0; i < rec.n; i++) {
		assert_true(pos + WIRE_HDR <= stream_len);
		len = frame_len(stream + pos);
		assert_int_equal(rec.type[i], stream[pos]);
		assert_int_equal(rec.len[i], len);
		assert_memory_equal(rec.data + rec.off[i],
		    stream + pos + WIRE_HDR, len);
		pos += WIRE_HDR + len;
	}
	assert_int_equal(pos, stream_len);
	assert_int_equal(rec.n, 7);
}

static void
test_reader_whole(void **state)
{
	struct wire_reader r;

	(void)state;
	make_stream();
	memset(&rec, 0, sizeof(rec));
	rec.lo = (uintptr_t)stream;
	rec.hi = (uintptr_t)(stream + stream_len);
	assert_int_equal(wire_reader_init(&r, WIRE_MAX_FRAME), 0);
	assert_true(wire_reader_idle(&r));
	assert_int_equal(wire_reader_feed(&r, stream, stream_len, rec_cb,
	    &rec), 0);
	assert_true(wire_reader_idle(&r));
	check_rec();
	/* whole frames in the input are not copied: data frames are big */
	assert_int_equal(rec.direct, rec.n);
	/* an empty feed is harmless */
	assert_int_equal(wire_reader_feed(&r, stream, 0, rec_cb, &rec), 0);
	assert_int_equal(rec.n, 7);
	wire_reader_release(&r);
	assert_null(r.buf);
}

static void
test_reader_bytewise(void **state)
{
	struct wire_reader r;
	size_t i;

	(void)state;
	make_stream();
	memset(&rec, 0, sizeof(rec));
	rec.lo = (uintptr_t)stream;
	rec.hi = (uintptr_t)(stream + stream_len);
	assert_int_equal(wire_reader_init(&r, WIRE_DATA_CHUNK), 0);
	for (i = 0; i < stream_len; i++) {
		assert_int_equal(wire_reader_feed(&r, stream + i, 1, rec_cb,
		    &rec), 0);
	}
	assert_true(wire_reader_idle(&r));
	check_rec();
	assert_int_equal(rec.direct, 0);
	wire_reader_release(&r);
}

/* Odd chunk sizes: headers and payloads split everywhere, and chunks that
 * end one frame and carry whole ones after it. */
static void
test_reader_chunks(void **state)
{
	struct wire_reader r;
	size_t pos, step, n;

	(void)state;
	make_stream();
	for (step = 2; step < 70; step += 3) {
		memset(&rec, 0, sizeof(rec));
		assert_int_equal(wire_reader_init(&r, WIRE_DATA_CHUNK), 0);
		for (pos = 0; pos < stream_len; pos += n) {
			n = stream_len - pos < step ? stream_len - pos : step;
			/* now and then a big chunk, taking the direct path */
			if ((pos / step) % 5 == 4 && stream_len - pos > 70000)
				n = 70000;
			assert_int_equal(wire_reader_feed(&r, stream + pos, n,
			    rec_cb, &rec), 0);
		}
		assert_true(wire_reader_idle(&r));
		check_rec();
		wire_reader_release(&r);
	}
}

static void
test_reader_idle(void **state)
{
	struct wire_reader r;
	uint8_t f[16];
	int n;

	(void)state;
	n = wire_put_end(f, sizeof(f), 3);
	assert_int_equal(n, 13);
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(wire_reader_init(&r, 64), 0);
	assert_true(wire_reader_idle(&r));
	assert_int_equal(wire_reader_feed(&r, f, 3, rec_cb, &rec), 0);
	assert_false(wire_reader_idle(&r));	/* inside a header */
	assert_int_equal(wire_reader_feed(&r, f + 3, 4, rec_cb, &rec), 0);
	assert_false(wire_reader_idle(&r));	/* inside a payload */
	assert_int_equal(rec.n, 0);
	assert_int_equal(wire_reader_feed(&r, f + 7, 6, rec_cb, &rec), 0);
	assert_true(wire_reader_idle(&r));
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.type[0], 'Z');
	assert_int_equal(rec.len[0], 8);
	wire_reader_release(&r);
}

static void
test_reader_oversized(void **state)
{
	struct wire_reader r;
	uint8_t f[32];
	int n;

	(void)state;
	/* a frame of exactly max_frame is fine */
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(wire_reader_init(&r, 8), 0);
	n = wire_put_end(f, sizeof(f), 1);
	assert_int_equal(wire_reader_feed(&r, f, (size_t)n, rec_cb, &rec), 0);
	assert_int_equal(rec.n, 1);

	/* one byte more is refused, whole header at once ... */
	wire_put_data_hdr(f, 9);
	assert_int_equal(wire_reader_feed(&r, f, WIRE_HDR, rec_cb, &rec),
	    -AR_EPROTO);
	/* ... and the failure sticks, even for good frames */
	n = wire_put_end(f, sizeof(f), 1);
	assert_int_equal(wire_reader_feed(&r, f, (size_t)n, rec_cb, &rec),
	    -AR_EPROTO);
	assert_false(wire_reader_idle(&r));
	assert_int_equal(rec.n, 1);
	wire_reader_release(&r);

	/* ... or a header arriving in pieces */
	assert_int_equal(wire_reader_init(&r, 8), 0);
	memcpy(f, "D\xff\xff\xff\xff", 5);
	assert_int_equal(wire_reader_feed(&r, f, 2, rec_cb, &rec), 0);
	assert_int_equal(wire_reader_feed(&r, f + 2, 3, rec_cb, &rec),
	    -AR_EPROTO);
	assert_false(wire_reader_idle(&r));
	wire_reader_release(&r);

	/* a limit above the protocol's is a caller bug */
	assert_int_equal(wire_reader_init(&r, WIRE_MAX_FRAME + 1),
	    -AR_EINTERNAL);
	wire_reader_release(&r);
}

static void
test_reader_stop(void **state)
{
	struct wire_reader r;
	size_t i;

	(void)state;
	make_stream();
	memset(&rec, 0, sizeof(rec));
	rec.stop_at = 2;
	rec.stop_rv = -AR_EPROTO;
	assert_int_equal(wire_reader_init(&r, WIRE_MAX_FRAME), 0);
	assert_int_equal(wire_reader_feed(&r, stream, stream_len, rec_cb,
	    &rec), -AR_EPROTO);
	assert_int_equal(rec.n, 2);	/* nothing after the refusal */
	wire_reader_release(&r);

	/* the same when the stopping frame came through the buffer */
	memset(&rec, 0, sizeof(rec));
	rec.stop_at = 3;
	rec.stop_rv = 42;
	assert_int_equal(wire_reader_init(&r, WIRE_MAX_FRAME), 0);
	for (i = 0; i < stream_len; i++) {
		int rv = wire_reader_feed(&r, stream + i, 1, rec_cb, &rec);

		if (rv != 0) {
			assert_int_equal(rv, 42);
			break;
		}
	}
	assert_int_equal(rec.n, 3);
	assert_true(i < stream_len);
	wire_reader_release(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_valid),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_hello_roundtrip),
		cmocka_unit_test(test_hello_v2_range),
		cmocka_unit_test(test_versions_parse),
		cmocka_unit_test(test_version_pick),
		cmocka_unit_test(test_hello_reject),
		cmocka_unit_test(test_pathop),
		cmocka_unit_test(test_dir),
		cmocka_unit_test(test_entry_roundtrip),
		cmocka_unit_test(test_fidelity_frames),
		cmocka_unit_test(test_file_roundtrip),
		cmocka_unit_test(test_entry_reject),
		cmocka_unit_test(test_end),
		cmocka_unit_test(test_error),
		cmocka_unit_test(test_req),
		cmocka_unit_test(test_trailer),
		cmocka_unit_test(test_retry),
		cmocka_unit_test(test_data_hdr),
		cmocka_unit_test(test_reader_whole),
		cmocka_unit_test(test_reader_bytewise),
		cmocka_unit_test(test_reader_chunks),
		cmocka_unit_test(test_reader_idle),
		cmocka_unit_test(test_reader_oversized),
		cmocka_unit_test(test_reader_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

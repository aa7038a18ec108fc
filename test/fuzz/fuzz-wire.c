/*
 * fuzz-wire.c: libFuzzer target for the frame decoders and the splitter.
 *
 * The first input byte picks a frame type (its letter, or any other byte
 * modulo the table) and the rest is decoded as that payload. The whole
 * input is also split as a stream twice, in one piece and in small
 * pieces, and both must see the same frames. Whatever a decoder accepts
 * must re-encode to the very same bytes and decode to the same values:
 * the layout has one encoding per value, so any difference is a bug.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Room for the largest non-data frame (an F with two maximal strings). */
static uint8_t out[WIRE_HDR + 16384];

static const uint8_t types[] = {
	WIRE_HELLO, WIRE_DIR, WIRE_ENTRY, WIRE_FILE, WIRE_END, WIRE_ERROR,
	WIRE_REQ, WIRE_TRAILER, WIRE_RETRY, WIRE_DATA,
};

#define CHECK(x) do { if (!(x)) abort(); } while (0)

/* A re-encoded frame must be the payload we decoded, byte for byte. */
static void
check_same(int n, uint8_t type, const uint8_t *p, size_t len)
{
	CHECK(n >= WIRE_HDR);
	CHECK((size_t)n == WIRE_HDR + len);
	CHECK(out[0] == type);
	CHECK(out[1] == (uint8_t)(len >> 24) && out[2] == (uint8_t)(len >> 16) &&
	    out[3] == (uint8_t)(len >> 8) && out[4] == (uint8_t)len);
	CHECK(len == 0 || memcmp(out + WIRE_HDR, p, len) == 0);
}

/* A decoded string is exactly its length long and NUL-terminated. */
static void
check_str(const char *s, size_t len)
{
	CHECK(s[len] == '\0');
	CHECK(memchr(s, '\0', len) == NULL);
}

static int
fz_hello(const uint8_t *p, size_t len)
{
	static struct wire_hello a, b;
	int r, n;

	r = wire_get_hello(p, len, &a);
	if (r != 0)
		return r;
	check_str(a.generation, WIRE_GEN_LEN);
	/* A version 1 hello reads as the range version-version and is
	 * written with vmax 0 (wire.h): the version 1 layout. */
	if (a.version < 2) {
		CHECK(a.vmin == a.version && a.vmax == a.version);
		a.vmin = a.vmax = 0;
	}
	n = wire_put_hello(out, sizeof(out), &a);
	check_same(n, WIRE_HELLO, p, len);
	CHECK(wire_get_hello(out + WIRE_HDR, len, &b) == 0);
	CHECK(a.version == b.version && a.role == b.role);
	CHECK(a.version < 2 ? b.vmin == a.version && b.vmax == a.version :
	    b.vmin == a.vmin && b.vmax == a.vmax);
	CHECK(strcmp(a.generation, b.generation) == 0);
	CHECK(strcmp(a.server, b.server) == 0);
	return 0;
}

static int
fz_dir(const uint8_t *p, size_t len)
{
	static char a[WIRE_PATH_MAX + 1], b[WIRE_PATH_MAX + 1];
	size_t alen, blen;
	int r, n;

	r = wire_get_dir(p, len, a, &alen);
	if (r != 0)
		return r;
	check_str(a, alen);
	CHECK(wire_path_valid(a, alen));
	n = wire_put_dir(out, sizeof(out), a, alen);
	check_same(n, WIRE_DIR, p, len);
	CHECK(wire_get_dir(out + WIRE_HDR, len, b, &blen) == 0);
	CHECK(alen == blen && memcmp(a, b, alen) == 0);
	return 0;
}

static int
fz_entry(uint8_t type, const uint8_t *p, size_t len)
{
	static struct wire_entry a, b;
	int r, n;

	r = wire_get_entry(p, len, type, &a);
	if (r != 0)
		return r;
	check_str(a.name, a.name_len);
	check_str(a.target, a.target_len);
	if (type == WIRE_ENTRY)
		CHECK(wire_name_valid(a.name, a.name_len));
	else
		CHECK(a.name_len > 0 && wire_path_valid(a.name, a.name_len));
	CHECK((a.mode & ~07777u) == 0 && a.mtime_nsec < 1000000000u);
	n = wire_put_entry(out, sizeof(out), type, &a);
	check_same(n, type, p, len);
	CHECK(wire_get_entry(out + WIRE_HDR, len, type, &b) == 0);
	CHECK(a.type == b.type && a.name_len == b.name_len &&
	    memcmp(a.name, b.name, a.name_len) == 0);
	CHECK(a.size == b.size && a.mtime_sec == b.mtime_sec &&
	    a.mtime_nsec == b.mtime_nsec && a.mode == b.mode &&
	    a.uid == b.uid && a.gid == b.gid);
	CHECK(a.target_len == b.target_len &&
	    memcmp(a.target, b.target, a.target_len) == 0);
	return 0;
}

static int
fz_end(const uint8_t *p, size_t len)
{
	uint64_t a, b;
	int r, n;

	r = wire_get_end(p, len, &a);
	if (r != 0)
		return r;
	n = wire_put_end(out, sizeof(out), a);
	check_same(n, WIRE_END, p, len);
	CHECK(wire_get_end(out + WIRE_HDR, len, &b) == 0 && a == b);
	return 0;
}

static int
fz_error(const uint8_t *p, size_t len)
{
	static struct wire_error a, b;
	int r, n;

	r = wire_get_error(p, len, &a);
	if (r != 0)
		return r;
	check_str(a.msg, a.msg_len);
	n = wire_put_error(out, sizeof(out), a.code, a.msg);
	check_same(n, WIRE_ERROR, p, len);
	CHECK(wire_get_error(out + WIRE_HDR, len, &b) == 0);
	CHECK(a.code == b.code && a.msg_len == b.msg_len &&
	    memcmp(a.msg, b.msg, a.msg_len) == 0);
	return 0;
}

static int
fz_req(const uint8_t *p, size_t len)
{
	static struct wire_req a, b;
	int r, n;

	r = wire_get_req(p, len, &a);
	if (r != 0)
		return r;
	check_str(a.path, a.path_len);
	CHECK(a.path_len > 0 && wire_path_valid(a.path, a.path_len));
	n = wire_put_req(out, sizeof(out), a.path, a.path_len, a.basis_size);
	check_same(n, WIRE_REQ, p, len);
	CHECK(wire_get_req(out + WIRE_HDR, len, &b) == 0);
	CHECK(a.path_len == b.path_len &&
	    memcmp(a.path, b.path, a.path_len) == 0 &&
	    a.basis_size == b.basis_size);
	return 0;
}

static int
fz_trailer(const uint8_t *p, size_t len)
{
	struct wire_trailer a, b;
	int r, n;

	r = wire_get_trailer(p, len, &a);
	if (r != 0)
		return r;
	n = wire_put_trailer(out, sizeof(out), &a);
	check_same(n, WIRE_TRAILER, p, len);
	CHECK(wire_get_trailer(out + WIRE_HDR, len, &b) == 0);
	CHECK(a.size == b.size && memcmp(a.hash, b.hash, sizeof(a.hash)) == 0);
	return 0;
}

static int
fz_retry(const uint8_t *p, size_t len)
{
	static struct wire_retry a, b;
	int r, n;

	r = wire_get_retry(p, len, &a);
	if (r != 0)
		return r;
	check_str(a.path, a.path_len);
	CHECK(a.reason >= 1 && a.reason <= WIRE_RETRY_BASIS);
	n = wire_put_retry(out, sizeof(out), a.reason, a.path, a.path_len);
	check_same(n, WIRE_RETRY, p, len);
	CHECK(wire_get_retry(out + WIRE_HDR, len, &b) == 0);
	CHECK(a.reason == b.reason && a.path_len == b.path_len &&
	    memcmp(a.path, b.path, a.path_len) == 0);
	return 0;
}

static int
fz_append(const uint8_t *p, size_t len)
{
	static struct wire_append a, b;
	int r, n;

	r = wire_get_append(p, len, &a);
	if (r != 0)
		return r;
	check_str(a.path, a.path_len);
	CHECK(a.path_len > 0 && wire_path_valid(a.path, a.path_len));
	n = wire_put_append(out, sizeof(out), &a);
	check_same(n, WIRE_APPEND, p, len);
	CHECK(wire_get_append(out + WIRE_HDR, len, &b) == 0);
	CHECK(a.path_len == b.path_len && a.size == b.size &&
	    memcmp(a.path, b.path, a.path_len) == 0 &&
	    memcmp(a.root, b.root, sizeof(a.root)) == 0);
	return 0;
}

static int
fz_block(const uint8_t *p, size_t len)
{
	struct wire_block a, b;
	int r, n;

	r = wire_get_block(p, len, &a);
	if (r != 0)
		return r;
	n = wire_put_block(out, sizeof(out), &a);
	check_same(n, WIRE_BLOCK, p, len);
	CHECK(wire_get_block(out + WIRE_HDR, len, &b) == 0);
	CHECK(a.index == b.index && memcmp(a.hash, b.hash,
	    sizeof(a.hash)) == 0);
	return 0;
}

static int
fz_idname(const uint8_t *p, size_t len)
{
	struct wire_idname a, b;
	int r, n;

	r = wire_get_idname(p, len, &a);
	if (r != 0)
		return r;
	n = wire_put_idname(out, sizeof(out), a.kind, a.id, a.name,
	    a.name_len);
	check_same(n, WIRE_IDNAME, p, len);
	CHECK(wire_get_idname(out + WIRE_HDR, len, &b) == 0);
	CHECK(a.kind == b.kind && a.id == b.id && a.name_len == b.name_len &&
	    memcmp(a.name, b.name, a.name_len) == 0);
	return 0;
}

/* Decode one payload as type; returns the decoder's verdict. */
static int
fz_frame(uint8_t type, const uint8_t *p, size_t len)
{
	int r;

	switch (type) {
	case WIRE_HELLO:
		r = fz_hello(p, len);
		break;
	case WIRE_DIR:
		r = fz_dir(p, len);
		break;
	case WIRE_ENTRY:
	case WIRE_FILE:
		r = fz_entry(type, p, len);
		break;
	case WIRE_END:
		r = fz_end(p, len);
		break;
	case WIRE_ERROR:
		r = fz_error(p, len);
		break;
	case WIRE_REQ:
		r = fz_req(p, len);
		break;
	case WIRE_TRAILER:
		r = fz_trailer(p, len);
		break;
	case WIRE_RETRY:
		r = fz_retry(p, len);
		break;
	case WIRE_APPEND:
		r = fz_append(p, len);
		break;
	case WIRE_BLOCK:
		r = fz_block(p, len);
		break;
	case WIRE_IDNAME:
		r = fz_idname(p, len);
		break;
	case WIRE_DATA:
		r = 0;		/* raw bytes: nothing to parse */
		break;
	default:
		r = 1;		/* not a frame type: the caller refuses it */
		break;
	}
	/* decoders only ever say yes or "protocol error" */
	CHECK(r == 0 || r == -AR_EPROTO || r == 1);
	return r;
}

/*
 * What a split saw, condensed: the number of frames and an FNV-1a hash
 * of their types, lengths, bytes and verdicts.
 */
struct seen {
	size_t frames;
	uint64_t hash;
};

static void
seen_add(struct seen *s, const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++) {
		s->hash ^= b[i];
		s->hash *= 0x100000001b3ull;
	}
}

static int
split_cb(void *arg, uint8_t type, const uint8_t *payload, uint32_t len)
{
	struct seen *s = arg;
	int r;

	CHECK(len <= 64 * 1024);
	r = fz_frame(type, payload, len);
	s->frames++;
	seen_add(s, &type, 1);
	seen_add(s, &len, sizeof(len));
	seen_add(s, payload, len);
	seen_add(s, &r, sizeof(r));
	return 0;
}

/* Split the input in pieces whose sizes the input itself chooses. */
static int
split(const uint8_t *data, size_t size, int whole, struct seen *s,
    int *idle)
{
	struct wire_reader r;
	size_t pos, n;
	int rv = 0;

	s->frames = 0;
	s->hash = 0xcbf29ce484222325ull;
	CHECK(wire_reader_init(&r, 64 * 1024) == 0);
	CHECK(wire_reader_idle(&r));
	if (whole)
		rv = wire_reader_feed(&r, data, size, split_cb, s);
	else {
		for (pos = 0; pos < size && rv == 0; pos += n) {
			n = 1 + data[pos] % 13;
			if (n > size - pos)
				n = size - pos;
			rv = wire_reader_feed(&r, data + pos, n, split_cb, s);
		}
	}
	*idle = wire_reader_idle(&r);
	wire_reader_release(&r);
	return rv;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen a, b;
	uint8_t type;
	size_t i;
	int ra, rb, ia, ib;

	if (size > 0) {
		type = types[data[0] % sizeof(types)];
		for (i = 0; i < sizeof(types); i++) {
			if (data[0] == types[i])
				type = data[0];
		}
		/* Types added later are named, not counted in the modulo:
		 * the corpus keeps its meaning. */
		if (data[0] == WIRE_IDNAME)
			type = data[0];
		(void)fz_frame(type, data + 1, size - 1);
		/* the validators must agree with themselves on any bytes */
		if (wire_name_valid((const char *)data + 1, size - 1))
			CHECK(wire_path_valid((const char *)data + 1, size - 1));
	}

	ra = split(data, size, 1, &a, &ia);
	rb = split(data, size, 0, &b, &ib);
	CHECK(ra == 0 || ra == -AR_EPROTO);
	CHECK(ra == rb && ia == ib);
	CHECK(a.frames == b.frames && a.hash == b.hash);
	return 0;
}

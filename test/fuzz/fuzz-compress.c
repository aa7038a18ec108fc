/*
 * fuzz-compress.c: libFuzzer target for the zstd wrapper (compress.c),
 * which decodes the body of every answer of a primary asked for
 * compress = zstd, and for the value of its X-Asyncrep-Compress header.
 *
 * The input is fed to the decompressor in one piece and in pieces whose
 * sizes the input chooses; both must agree on the verdict, on the bytes
 * and on whether the frame ended. The sink stops a stream past
 * FZ_OUT_MAX bytes (the window bounds memory, not output). With bit 0 of
 * the first byte set, the input is also compressed and must come back
 * byte for byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compress.h"
#include "error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)
#define FZ_OUT_MAX (1024u * 1024)

struct fz_seen {
	size_t bytes;
	uint64_t hash;
	const uint8_t *want;	/* round trip: the bytes expected */
	size_t want_len;
};

static int
fz_sink(void *arg, const void *data, size_t len)
{
	struct fz_seen *s = arg;
	const uint8_t *b = data;
	size_t i;

	CHECK(len > 0);
	if (s->want != NULL) {
		CHECK(s->bytes + len <= s->want_len);
		CHECK(memcmp(s->want + s->bytes, data, len) == 0);
	}
	if (len > FZ_OUT_MAX - s->bytes)
		return -AR_ENOMEM;
	for (i = 0; i < len; i++) {
		s->hash ^= b[i];
		s->hash *= 0x100000001b3ull;
	}
	s->bytes += len;
	return 0;
}

static int
fz_decode(struct compress_in *ci, const uint8_t *data, size_t size,
    int whole, struct fz_seen *s)
{
	size_t pos, n;
	int r = 0;

	memset(s, 0, sizeof(*s));
	s->hash = 0xcbf29ce484222325ull;
	compress_in_reset(ci);
	if (whole)
		return compress_in_feed(ci, data, size, fz_sink, s);
	for (pos = 0; pos < size && r == 0; pos += n) {
		n = 1 + data[pos] % 97;
		if (n > size - pos)
			n = size - pos;
		r = compress_in_feed(ci, data + pos, n, fz_sink, s);
	}
	return r;
}

struct fz_src {
	const uint8_t *p;
	size_t len, pos;
};

static ssize_t
fz_src(void *arg, uint8_t *buf, size_t max)
{
	struct fz_src *s = arg;
	size_t n = s->len - s->pos;

	/* small pieces, to cross zstd's buffers as a file read does */
	if (n > max)
		n = max;
	if (n > 1000)
		n = 1000;
	memcpy(buf, s->p + s->pos, n);
	s->pos += n;
	return (ssize_t)n;
}

static void
fz_round_trip(struct compress_in *ci, const uint8_t *data, size_t size)
{
	static uint8_t z[256 * 1024];
	struct compress_out *co;
	struct fz_src src = { data, size, 0 };
	struct fz_seen s;
	size_t zlen = 0;
	ssize_t n;
	int level = 1 + data[0] % 3;

	CHECK(compress_out_new(&co, level) == 0);
	for (;;) {
		CHECK(zlen < sizeof(z));
		n = compress_out_read(co, fz_src, &src, z + zlen,
		    sizeof(z) - zlen < 777 ? sizeof(z) - zlen : 777);
		CHECK(n >= 0);
		if (n == 0)
			break;
		zlen += (size_t)n;
	}
	compress_out_free(co);
	memset(&s, 0, sizeof(s));
	s.want = data;
	s.want_len = size;
	compress_in_reset(ci);
	CHECK(compress_in_feed(ci, z, zlen, fz_sink, &s) == 0);
	CHECK(s.bytes == size && compress_in_complete(ci));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct compress_in *ci;
	static char hdr[64];
	struct fz_seen a, b;
	int ra, rb, ca, cb, level;
	size_t n;

	if (ci == NULL)
		CHECK(compress_in_new(&ci) == 0);
	ra = fz_decode(ci, data, size, 1, &a);
	ca = compress_in_complete(ci);
	rb = fz_decode(ci, data, size, 0, &b);
	cb = compress_in_complete(ci);
	CHECK(ra == 0 || ra == -AR_EPROTO || ra == -AR_ENOMEM);
	CHECK(rb == 0 || rb == -AR_EPROTO || rb == -AR_ENOMEM);
	if (ra != -AR_ENOMEM && rb != -AR_ENOMEM)
		CHECK((ra == 0) == (rb == 0));
	if (ra == 0 && rb == 0)
		CHECK(ca == cb && a.bytes == b.bytes && a.hash == b.hash);
	if (size > 0 && (data[0] & 1) != 0 && size <= 64 * 1024)
		fz_round_trip(ci, data, size);

	n = size < sizeof(hdr) - 1 ? size : sizeof(hdr) - 1;
	memcpy(hdr, data, n);
	hdr[n] = '\0';
	if (compress_parse(hdr, &level) == 0)
		CHECK(level >= COMPRESS_LEVEL_MIN &&
		    level <= COMPRESS_LEVEL_MAX);
	return 0;
}

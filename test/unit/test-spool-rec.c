/*
 * test-spool-rec.c: the spool's record codec and segment header
 * (spool-rec.c): CRC-32C check values, round trips of every op and of the
 * longest paths, torn records reported as torn at every length, and each
 * rule of the format broken on its own and rejected.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "spool-rec.h"

/*
 * A record built by hand, so that each rule of the decoder can be broken
 * on its own: extra is appended to the body (after path2) and the CRC
 * is computed over the result, so only the intended flaw is there.
 */
static size_t
raw_rec(uint8_t *out, uint64_t seq, uint8_t op, const char *p, size_t plen,
    const char *p2, size_t p2len, size_t extra)
{
	size_t body = 21 + plen + p2len + extra, off = 8, i;
	uint32_t crc;

	for (i = 0; i < 8; i++)
		out[off++] = (uint8_t)(seq >> (56 - 8 * i));
	out[off++] = op;
	for (i = 0; i < 8; i++)
		out[off++] = (uint8_t)i;
	out[off++] = (uint8_t)(plen >> 8);
	out[off++] = (uint8_t)plen;
	memcpy(out + off, p, plen);
	off += plen;
	out[off++] = (uint8_t)(p2len >> 8);
	out[off++] = (uint8_t)p2len;
	memcpy(out + off, p2, p2len);
	off += p2len;
	memset(out + off, 'x', extra);
	out[0] = (uint8_t)(body >> 24);
	out[1] = (uint8_t)(body >> 16);
	out[2] = (uint8_t)(body >> 8);
	out[3] = (uint8_t)body;
	crc = spool_rec_crc32c(0, out + 8, body);
	out[4] = (uint8_t)(crc >> 24);
	out[5] = (uint8_t)(crc >> 16);
	out[6] = (uint8_t)(crc >> 8);
	out[7] = (uint8_t)crc;
	return 8 + body;
}

/* ------------------------------------------------------------------------
 * The codec.
 */

static void
test_crc32c(void **state)
{
	static const char v[] = "123456789";
	uint8_t big[1000];
	uint32_t c;
	size_t i;

	(void)state;
	/* The check value of CRC-32C (RFC 3720, B.4). */
	assert_int_equal(spool_rec_crc32c(0, v, 9), 0xe3069283u);
	c = spool_rec_crc32c(0, v, 4);
	assert_int_equal(spool_rec_crc32c(c, v + 4, 5), 0xe3069283u);
	assert_int_equal(spool_rec_crc32c(0, v, 0), 0);
	/* 32 zero bytes: RFC 3720 B.4. */
	memset(big, 0, 32);
	assert_int_equal(spool_rec_crc32c(0, big, 32), 0x8a9136aau);
	memset(big, 0xff, 32);
	assert_int_equal(spool_rec_crc32c(0, big, 32), 0x62a8ab43u);
	/* Any split gives the same value (both code paths, odd tails). */
	for (i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7 + 3);
	c = spool_rec_crc32c(0, big, sizeof big);
	for (i = 0; i < 20; i++)
		assert_int_equal(spool_rec_crc32c(spool_rec_crc32c(0, big, i),
		    big + i, sizeof big - i), c);
}

static void
roundtrip(uint64_t seq, uint8_t op, const char *p, size_t plen,
    const char *p2, size_t p2len)
{
	static uint8_t enc[SPOOL_REC_MAX], enc2[SPOOL_REC_MAX];
	static struct spool_rec in, out;
	size_t used = 0;
	int n, n2;

	memset(&in, 0, sizeof in);
	in.seq = seq;
	in.op = op;
	in.time_ns = UINT64_C(0x0123456789abcdef);
	in.path_len = (uint16_t)plen;
	memcpy(in.path, p, plen);
	in.path2_len = (uint16_t)p2len;
	memcpy(in.path2, p2, p2len);
	n = spool_rec_encode(&in, enc, sizeof enc);
	assert_int_equal(n, 8 + 21 + plen + p2len);
	assert_int_equal(spool_rec_size(&in), n);
	assert_int_equal(spool_rec_len(enc), n);
	assert_int_equal(spool_rec_seq(enc), seq);
	/* Exactly the room it needs is enough; one byte less is not. */
	assert_int_equal(spool_rec_encode(&in, enc2, (size_t)n), n);
	assert_int_equal(spool_rec_encode(&in, enc2, (size_t)n - 1),
	    -AR_ENOMEM);
	assert_int_equal(spool_rec_decode(enc, (size_t)n, &out, &used), 0);
	assert_int_equal(used, n);
	assert_int_equal(out.seq, seq);
	assert_int_equal(out.op, op);
	assert_int_equal(out.time_ns, in.time_ns);
	assert_int_equal(out.path_len, plen);
	assert_memory_equal(out.path, p, plen);
	assert_int_equal(out.path[plen], '\0');
	assert_int_equal(out.path2_len, p2len);
	assert_int_equal(out.path2[p2len], '\0');
	if (p2len > 0)
		assert_memory_equal(out.path2, p2, p2len);
	/* One encoding per value. */
	n2 = spool_rec_encode(&out, enc2, sizeof enc2);
	assert_int_equal(n2, n);
	assert_memory_equal(enc, enc2, (size_t)n);
	/* Trailing bytes are the next record's business. */
	assert_int_equal(spool_rec_decode(enc, sizeof enc, &out, &used), 0);
	assert_int_equal(used, n);
}

static void
test_codec_roundtrip(void **state)
{
	static char longp[4096];
	size_t i;

	(void)state;
	roundtrip(1, SPOOL_MODIFY, "a", 1, "", 0);
	roundtrip(SPOOL_REC_SEQ_MAX - 1, SPOOL_ATTRIB, "dir/new\nline", 12, "", 0);
	roundtrip(42, SPOOL_DELETE, "\xff\xfe/\x01\x7f", 5, "", 0);
	roundtrip(7, SPOOL_RENAME, "old name", 8, "new/\xffname\n", 10);
	roundtrip(8, SPOOL_MKDIR, "d\\e", 3, "", 0);
	roundtrip(9, SPOOL_SYMLINK, "l", 1, "", 0);
	roundtrip(10, SPOOL_RESCAN, "", 0, "", 0);
	roundtrip(11, SPOOL_RESCAN, "sub/tree", 8, "", 0);
	/* The longest paths: LIMIT_PATH_MAX bytes of 255-byte components. */
	for (i = 0; i < LIMIT_PATH_MAX; i++)
		longp[i] = (i % 256 == 255) ? '/' : 'a';
	longp[LIMIT_PATH_MAX - 1] = 'z';
	roundtrip(12, SPOOL_RENAME, longp, LIMIT_PATH_MAX, longp,
	    LIMIT_PATH_MAX);
}

static void
test_codec_reject(void **state)
{
	static uint8_t b[SPOOL_REC_MAX + 64];
	static struct spool_rec r;
	size_t n, used, i;

	(void)state;
	/* A valid one first: the hand encoder agrees with ours. */
	n = raw_rec(b, 5, SPOOL_MODIFY, "a/b", 3, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), 0);

	/* Torn at every prefix length: no error, nothing used. */
	n = raw_rec(b, 5, SPOOL_RENAME, "from", 4, "to/x", 4, 0);
	for (i = 0; i < n; i++) {
		used = 99;
		assert_int_equal(spool_rec_decode(b, i, &r, &used), 0);
		assert_int_equal(used, 0);
	}
	assert_int_equal(spool_rec_decode(b, n, &r, &used), 0);
	assert_int_equal(used, n);

	/* Bad checksum: any body byte, or the crc itself. */
	for (i = 4; i < n; i++) {
		b[i] ^= 0x01;
		assert_int_equal(spool_rec_decode(b, n, &r, &used),
		    -AR_EPROTO);
		b[i] ^= 0x01;
	}

	/* Bad op. */
	n = raw_rec(b, 5, 0, "a", 1, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	n = raw_rec(b, 5, 8, "a", 1, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	n = raw_rec(b, 5, 0xff, "a", 1, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);

	/* Seq 0 is never written. */
	n = raw_rec(b, 0, SPOOL_MODIFY, "a", 1, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);

	/* Nor is a seq at or past 2^62: 2^64-1 would wrap "released + 1". */
	n = raw_rec(b, SPOOL_REC_SEQ_MAX - 1, SPOOL_MODIFY, "a", 1, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), 0);
	assert_true(r.seq == SPOOL_REC_SEQ_MAX - 1);
	n = raw_rec(b, SPOOL_REC_SEQ_MAX, SPOOL_MODIFY, "a", 1, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	n = raw_rec(b, UINT64_MAX, SPOOL_MODIFY, "a", 1, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	assert_int_equal(spool_rec_put(b, sizeof(b), UINT64_MAX, SPOOL_MODIFY,
	    0, "a", 1, "", 0), -AR_EINTERNAL);
	assert_int_equal(spool_rec_put(b, sizeof(b), SPOOL_REC_SEQ_MAX,
	    SPOOL_MODIFY, 0, "a", 1, "", 0), -AR_EINTERNAL);

	/* Bad lengths: announced body too short, too long (even when only
	 * the start is there: it is not a record still to come), body with
	 * bytes after path2, path_len running past the body. */
	n = raw_rec(b, 5, SPOOL_MODIFY, "a", 1, "", 0, 0);
	b[3] = 20;
	b[2] = b[1] = b[0] = 0;
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	assert_int_equal(spool_rec_decode(b, 4, &r, &used), -AR_EPROTO);
	b[0] = 0xff;
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	assert_int_equal(spool_rec_decode(b, 4, &r, &used), -AR_EPROTO);
	n = raw_rec(b, 5, SPOOL_MODIFY, "a", 1, "", 0, 0);
	b[2] = (uint8_t)((SPOOL_REC_MAX - 7) >> 8);
	b[3] = (uint8_t)(SPOOL_REC_MAX - 7);
	assert_int_equal(spool_rec_decode(b, sizeof b, &r, &used),
	    -AR_EPROTO);
	n = raw_rec(b, 5, SPOOL_MODIFY, "a", 1, "", 0, 3);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	n = raw_rec(b, 5, SPOOL_MODIFY, "ab", 2, "", 0, 0);
	b[8 + 17] = 0;
	b[8 + 18] = 9;	/* path_len 9 in a 23-byte body */
	/* fix the crc so that only the length is wrong */
	{
		uint32_t c = spool_rec_crc32c(0, b + 8, n - 8);

		b[4] = (uint8_t)(c >> 24);
		b[5] = (uint8_t)(c >> 16);
		b[6] = (uint8_t)(c >> 8);
		b[7] = (uint8_t)c;
	}
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);

	/* path2 anywhere but in a RENAME; a RENAME without one. */
	n = raw_rec(b, 5, SPOOL_MODIFY, "a", 1, "b", 1, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	n = raw_rec(b, 5, SPOOL_RESCAN, "", 0, "b", 1, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	n = raw_rec(b, 5, SPOOL_RENAME, "a", 1, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	n = raw_rec(b, 5, SPOOL_RENAME, "a", 1, "../b", 4, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);

	/* Invalid paths; "" only for RESCAN. */
	n = raw_rec(b, 5, SPOOL_MODIFY, "", 0, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	n = raw_rec(b, 5, SPOOL_DELETE, "/etc", 4, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	n = raw_rec(b, 5, SPOOL_DELETE, "a//b", 4, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	n = raw_rec(b, 5, SPOOL_DELETE, "a/../b", 6, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	n = raw_rec(b, 5, SPOOL_DELETE, "a/", 2, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	n = raw_rec(b, 5, SPOOL_DELETE, "a\0b", 3, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);
	n = raw_rec(b, 5, SPOOL_RESCAN, ".", 1, "", 0, 0);
	assert_int_equal(spool_rec_decode(b, n, &r, &used), -AR_EPROTO);

	/* The encoder refuses what the decoder refuses. */
	memset(&r, 0, sizeof r);
	r.seq = 1;
	r.op = SPOOL_MODIFY;
	assert_int_equal(spool_rec_encode(&r, b, sizeof b), -AR_EINTERNAL);
	r.op = SPOOL_RENAME;
	r.path_len = 1;
	r.path[0] = 'a';
	assert_int_equal(spool_rec_encode(&r, b, sizeof b), -AR_EINTERNAL);
	r.op = 9;
	assert_int_equal(spool_rec_encode(&r, b, sizeof b), -AR_EINTERNAL);
	r.op = SPOOL_MODIFY;
	r.seq = 0;
	assert_int_equal(spool_rec_encode(&r, b, sizeof b), -AR_EINTERNAL);
	r.seq = 1;
	r.path_len = LIMIT_PATH_MAX + 1;
	assert_int_equal(spool_rec_encode(&r, b, sizeof b), -AR_ENOMEM);
}


/* Records back to back, as in a segment: each decodes in turn, and a
 * cut anywhere in the last one leaves it torn, never misread. */
static void
test_codec_stream(void **state)
{
	static uint8_t b[3 * SPOOL_REC_MIN + 64];
	static struct spool_rec r;
	size_t n = 0, first, second, off, used, cut;

	(void)state;
	first = raw_rec(b, 7, SPOOL_MKDIR, "d", 1, "", 0, 0);
	n += first;
	second = raw_rec(b + n, 8, SPOOL_MODIFY, "d/f", 3, "", 0, 0);
	n += second;
	n += raw_rec(b + n, 9, SPOOL_DELETE, "d/f", 3, "", 0, 0);
	for (cut = first + second; cut <= n; cut++) {
		off = 0;
		assert_int_equal(spool_rec_decode(b, cut, &r, &used), 0);
		assert_int_equal(used, first);
		assert_int_equal(r.seq, 7);
		off += used;
		assert_int_equal(spool_rec_decode(b + off, cut - off, &r,
		    &used), 0);
		assert_int_equal(used, second);
		assert_int_equal(r.seq, 8);
		off += used;
		assert_int_equal(spool_rec_decode(b + off, cut - off, &r,
		    &used), 0);
		if (cut < n)
			assert_int_equal(used, 0);
		else {
			assert_int_equal(used, n - off);
			assert_int_equal(r.seq, 9);
			assert_int_equal(r.op, SPOOL_DELETE);
		}
	}
}

static void
test_seg_header(void **state)
{
	uint8_t h[SPOOL_REC_SEG_HDR];

	(void)state;
	spool_rec_seg_header(h);
	assert_memory_equal(h, "ASRSPOOL\0\0\0\1\0\0\0\0", sizeof h);
	assert_int_equal(spool_rec_seg_check(h, sizeof h), 0);
	/* Reserved bytes are ignored. */
	h[15] = 0xff;
	assert_int_equal(spool_rec_seg_check(h, sizeof h), 0);
	assert_int_equal(spool_rec_seg_check(h, sizeof h - 1), -AR_EPROTO);
	h[11] = 2;
	assert_int_equal(spool_rec_seg_check(h, sizeof h), -AR_EVERSION);
	h[11] = 1;
	h[0] = 'a';
	assert_int_equal(spool_rec_seg_check(h, sizeof h), -AR_EPROTO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_codec_roundtrip),
		cmocka_unit_test(test_codec_reject),
		cmocka_unit_test(test_codec_stream),
		cmocka_unit_test(test_seg_header),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

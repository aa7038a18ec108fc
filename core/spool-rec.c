/*
 * spool-rec.c: encode and decode the spool's records and segment
 * headers (spool-rec.h, SPOOL.md). Pure: no I/O.
 *
 * The decoder reads bytes that a crash may have cut or a disk may have
 * damaged, and bytes a rescue reads over NFS: every length is checked
 * before it is used, and what it accepts re-encodes to the same bytes
 * (fuzz-spool.c checks that).
 */
#include <assert.h>
#include <pthread.h>
#include <string.h>

#include "error.h"
#include "spool-rec.h"
#include "wire.h"

#define SPOOL_REC_MAGIC "ASRSPOOL"
#define SPOOL_REC_VERSION 1
#define SPOOL_REC_BODY_MAX (SPOOL_REC_MAX - SPOOL_REC_HDR)

/* ------------------------------------------------------------------------
 * CRC-32C.
 *
 * The table is built once; on x86-64 the SSE4.2 instruction is used when
 * the CPU has it (checked at run time, so one binary runs everywhere).
 */

static uint32_t spool_rec_crc_table[256];
static int spool_rec_crc_hw;
static pthread_once_t spool_rec_crc_once = PTHREAD_ONCE_INIT;

static void
spool_rec_crc_init(void)
{
	uint32_t c;
	int i, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		spool_rec_crc_table[i] = c;
	}
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	__builtin_cpu_init();
	spool_rec_crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2")))
static uint32_t
spool_rec_crc_sse42(uint32_t c, const uint8_t *p, size_t len)
{
	uint64_t c64 = c, v;

	while (len >= 8) {
		memcpy(&v, p, 8);
		c64 = __builtin_ia32_crc32di(c64, v);
		p += 8;
		len -= 8;
	}
	c = (uint32_t)c64;
	while (len-- > 0)
		c = __builtin_ia32_crc32qi(c, *p++);
	return c;
}
#endif

uint32_t
spool_rec_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	assert(buf != NULL || len == 0);
	pthread_once(&spool_rec_crc_once, spool_rec_crc_init);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	if (spool_rec_crc_hw)
		return ~spool_rec_crc_sse42(c, p, len);
#endif
	while (len-- > 0)
		c = spool_rec_crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

/* ------------------------------------------------------------------------
 * Big-endian integers.
 */

static uint64_t
spool_rec_get_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static void
spool_rec_put_be(uint8_t *p, uint64_t v, size_t n)
{
	while (n-- > 0) {
		p[n] = (uint8_t)v;
		v >>= 8;
	}
}

/* ------------------------------------------------------------------------
 * Records.
 */

int
spool_rec_check(uint8_t op, const char *path, size_t len, const char *path2,
    size_t len2)
{
	if (op < SPOOL_MODIFY || op > SPOOL_RESCAN)
		return -AR_EINTERNAL;
	if (len > LIMIT_PATH_MAX || len2 > LIMIT_PATH_MAX)
		return -AR_ENOMEM;
	if (!wire_path_valid(path, len))
		return -AR_EINTERNAL;
	if (len == 0 && op != SPOOL_RESCAN)
		return -AR_EINTERNAL;
	if (op == SPOOL_RENAME) {
		if (len2 == 0 || !wire_path_valid(path2, len2))
			return -AR_EINTERNAL;
	} else if (len2 != 0)
		return -AR_EINTERNAL;
	return 0;
}

size_t
spool_rec_size(const struct spool_rec *r)
{
	return SPOOL_REC_MIN + (size_t)r->path_len + (size_t)r->path2_len;
}

int
spool_rec_put(uint8_t *out, size_t outlen, uint64_t seq, uint8_t op,
    uint64_t time_ns, const char *path, size_t len, const char *path2,
    size_t len2)
{
	size_t body, off;
	int r;

	r = spool_rec_check(op, path, len, path2, len2);
	if (r != 0)
		return r;
	if (seq == 0 || seq >= SPOOL_REC_SEQ_MAX)
		return -AR_EINTERNAL;
	body = SPOOL_REC_BODY_MIN + len + len2;
	assert(body <= SPOOL_REC_BODY_MAX);
	if (outlen < SPOOL_REC_HDR + body)
		return -AR_ENOMEM;
	off = SPOOL_REC_HDR;
	spool_rec_put_be(out + off, seq, 8);
	off += 8;
	out[off++] = op;
	spool_rec_put_be(out + off, time_ns, 8);
	off += 8;
	spool_rec_put_be(out + off, len, 2);
	off += 2;
	if (len > 0)
		memcpy(out + off, path, len);
	off += len;
	spool_rec_put_be(out + off, len2, 2);
	off += 2;
	if (len2 > 0)
		memcpy(out + off, path2, len2);
	assert(off + len2 == SPOOL_REC_HDR + body);
	spool_rec_put_be(out, body, 4);
	spool_rec_put_be(out + 4, spool_rec_crc32c(0, out + SPOOL_REC_HDR,
	    body), 4);
	return (int)(SPOOL_REC_HDR + body);
}

int
spool_rec_encode(const struct spool_rec *r, uint8_t *out, size_t outlen)
{
	if (r->path_len > LIMIT_PATH_MAX || r->path2_len > LIMIT_PATH_MAX)
		return -AR_ENOMEM;
	return spool_rec_put(out, outlen, r->seq, r->op, r->time_ns, r->path,
	    r->path_len, r->path2, r->path2_len);
}

int
spool_rec_decode(const uint8_t *buf, size_t len, struct spool_rec *r,
    size_t *used)
{
	const uint8_t *b;
	size_t body, plen, p2len;

	*used = 0;
	/* The length is checked before "torn" is answered, so garbage with
	 * a huge length is corrupt, not a record still to come. */
	if (len < 4)
		return 0;
	body = (size_t)spool_rec_get_be(buf, 4);
	if (body < SPOOL_REC_BODY_MIN || body > SPOOL_REC_BODY_MAX)
		return -AR_EPROTO;
	if (len < SPOOL_REC_HDR + body)
		return 0;
	b = buf + SPOOL_REC_HDR;
	if (spool_rec_crc32c(0, b, body) !=
	    (uint32_t)spool_rec_get_be(buf + 4, 4))
		return -AR_EPROTO;
	plen = (size_t)spool_rec_get_be(b + 17, 2);
	if (plen > body - SPOOL_REC_BODY_MIN)
		return -AR_EPROTO;
	p2len = (size_t)spool_rec_get_be(b + 19 + plen, 2);
	if (SPOOL_REC_BODY_MIN + plen + p2len != body)
		return -AR_EPROTO;
	r->seq = spool_rec_get_be(b, 8);
	r->op = b[8];
	r->time_ns = spool_rec_get_be(b + 9, 8);
	if (r->seq == 0 || r->seq >= SPOOL_REC_SEQ_MAX)
		return -AR_EPROTO;
	if (spool_rec_check(r->op, (const char *)b + 19, plen,
	    (const char *)b + 21 + plen, p2len) != 0)
		return -AR_EPROTO;
	r->path_len = (uint16_t)plen;
	memcpy(r->path, b + 19, plen);
	r->path[plen] = '\0';
	r->path2_len = (uint16_t)p2len;
	memcpy(r->path2, b + 21 + plen, p2len);
	r->path2[p2len] = '\0';
	*used = SPOOL_REC_HDR + body;
	assert(*used == spool_rec_size(r));
	return 0;
}

size_t
spool_rec_len(const uint8_t *rec)
{
	size_t body = (size_t)spool_rec_get_be(rec, 4);

	assert(body >= SPOOL_REC_BODY_MIN && body <= SPOOL_REC_BODY_MAX);
	return SPOOL_REC_HDR + body;
}

uint64_t
spool_rec_seq(const uint8_t *rec)
{
	return spool_rec_get_be(rec + SPOOL_REC_HDR, 8);
}

/* ------------------------------------------------------------------------
 * Segment headers.
 */

void
spool_rec_seg_header(uint8_t out[SPOOL_REC_SEG_HDR])
{
	memcpy(out, SPOOL_REC_MAGIC, 8);
	spool_rec_put_be(out + 8, SPOOL_REC_VERSION, 4);
	spool_rec_put_be(out + 12, 0, 4);
}

int
spool_rec_seg_check(const uint8_t *h, size_t len)
{
	if (len < SPOOL_REC_SEG_HDR || memcmp(h, SPOOL_REC_MAGIC, 8) != 0)
		return -AR_EPROTO;
	/* Reserved bytes are ignored, so a later version may use them. */
	if (spool_rec_get_be(h + 8, 4) != SPOOL_REC_VERSION)
		return -AR_EVERSION;
	return 0;
}

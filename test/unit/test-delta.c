/*
 * test-delta.c: the librsync wrapper, driven the way the HTTP callbacks
 * drive it (odd-sized pieces), with hostile signatures and deltas.
 *
 * Every test runs under alarm(): a patch that loops forever inside
 * librsync must fail the test, not hang make check.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gnutls/crypto.h>

#include "delta.h"
#include "error.h"
#include "hash.h"
#include "scratch.h"

#define MIB		(1024u * 1024)
#define TEST_ALARM	60	/* seconds per test, far above the need */

/* librsync delta opcodes used to craft hostile deltas. */
#define OP_END		0x00
#define OP_LITERAL_1	0x01	/* one literal byte follows */
#define OP_COPY_N4_N4	0x4f	/* u32 position, u32 length */

static char scratch[PATH_MAX];

/* Deterministic data so a failure can be reproduced. */
static uint64_t rng_state;

static uint64_t
rng_next(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

static void
rng_fill(uint8_t *buf, size_t len)
{
	size_t i;
	uint64_t v = 0;

	for (i = 0; i < len; i++) {
		if (i % 8 == 0)
			v = rng_next();
		buf[i] = (uint8_t)v;
		v >>= 8;
	}
}

static void
path_of(char *buf, size_t len, const char *name)
{
	int n;

	n = snprintf(buf, len, "%s/%s", scratch, name);
	assert_true(n > 0 && (size_t)n < len);
}

/* Create (or truncate) a scratch file holding buf; returns an O_RDWR fd. */
static int
file_with(const char *name, const void *buf, size_t len)
{
	char path[PATH_MAX];
	const uint8_t *p = buf;
	ssize_t n;
	int fd;

	path_of(path, sizeof path, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	while (len > 0) {
		n = write(fd, p, len);
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
	return fd;
}

static uint8_t *
read_all(int fd, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	ssize_t n;
	size_t done = 0;

	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	while (done < (size_t)st.st_size) {
		n = pread(fd, buf + done, (size_t)st.st_size - done,
		    (off_t)done);
		assert_true(n > 0);
		done += (size_t)n;
	}
	*len = done;
	return buf;
}

/* Odd piece sizes, so every header and command straddles a boundary. */
static const size_t pieces[] = { 1, 7, 13, 4093, 3, 65537, 11, 101 };

static size_t
piece(size_t i)
{
	return pieces[i % (sizeof pieces / sizeof pieces[0])];
}

/* Whole signature of fd, pulled through small odd-sized reads. */
static uint8_t *
make_sig(int fd, uint64_t size, size_t *siglen)
{
	struct delta_sig *s;
	uint8_t *buf = NULL, *nbuf;
	size_t len = 0, cap = 0, i;
	ssize_t n;

	assert_int_equal(delta_sig_new(fd, size, &s), 0);
	for (i = 0;; i++) {
		if (cap - len < 65537) {
			cap = cap * 2 + 65537;
			nbuf = realloc(buf, cap);
			assert_non_null(nbuf);
			buf = nbuf;
		}
		n = delta_sig_read(s, buf + len, piece(i));
		assert_true(n >= 0);
		if (n == 0)
			break;
		assert_true((size_t)n <= piece(i));
		len += (size_t)n;
	}
	/* The end is sticky. */
	assert_int_equal(delta_sig_read(s, buf, 1), 0);
	delta_sig_free(s);
	*siglen = len;
	return buf;
}

/* Load a signature fed in odd pieces. Returns 0 or the first error. */
static int
load_sig(const uint8_t *sig, size_t len, uint64_t max, rs_signature_t **out)
{
	struct delta_loadsig *l;
	size_t off = 0, n, i;
	int r = 0;

	*out = NULL;
	assert_int_equal(delta_loadsig_new(max, &l), 0);
	for (i = 0; off < len && r == 0; i++) {
		n = piece(i);
		if (n > len - off)
			n = len - off;
		r = delta_loadsig_feed(l, sig + off, n);
		off += n;
	}
	if (r == 0)
		r = delta_loadsig_finish(l, out);
	delta_loadsig_free(l);
	return r;
}

static uint8_t *
make_delta(rs_signature_t *sig, int fd, size_t *dlen, uint64_t *size,
    uint8_t hash[HASH_LEN])
{
	struct delta_gen *g;
	uint8_t *buf = NULL, *nbuf;
	size_t len = 0, cap = 0;
	ssize_t n;

	assert_int_equal(delta_gen_new(sig, fd, &g), 0);
	for (;;) {
		if (cap - len < 16384) {
			cap = cap * 2 + 16384;
			nbuf = realloc(buf, cap);
			assert_non_null(nbuf);
			buf = nbuf;
		}
		/* Like a 16 KiB libcurl/libmicrohttpd callback buffer. */
		n = delta_gen_read(g, buf + len, 16384 - 5);
		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	delta_gen_result(g, size, hash);
	delta_gen_free(g);
	*dlen = len;
	return buf;
}

/* Patch in odd pieces. Returns 0 or the first error. */
static int
apply(int basis_fd, const uint8_t *delta, size_t dlen, int out_fd,
    uint64_t max_out, uint64_t *size, uint8_t hash[HASH_LEN])
{
	struct delta_patch *p;
	size_t off = 0, n, i;
	int r = 0;

	assert_int_equal(delta_patch_new(basis_fd, out_fd, max_out, &p), 0);
	for (i = 0; off < dlen && r == 0; i++) {
		n = piece(i);
		if (n > dlen - off)
			n = dlen - off;
		r = delta_patch_feed(p, delta + off, n);
		off += n;
	}
	if (r == 0)
		r = delta_patch_finish(p, size, hash);
	delta_patch_free(p);
	return r;
}

static void
sha256(const void *buf, size_t len, uint8_t out[HASH_LEN])
{
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, len, out),
	    0);
}

/*
 * basis -> signature -> loaded signature -> delta of new -> patch of
 * basis; the output must be new, byte for byte, and both ends must agree
 * on its hash with an independent SHA-256.
 */
static void
round_trip(const uint8_t *basis, size_t blen, const uint8_t *new,
    size_t nlen, size_t *delta_len)
{
	rs_signature_t *sig;
	uint8_t *sigbuf, *delta, *got;
	uint8_t want[HASH_LEN], ghash[HASH_LEN], phash[HASH_LEN];
	uint64_t gsize, psize;
	size_t siglen, dlen, glen;
	int bfd, nfd, ofd;

	bfd = file_with("basis", basis, blen);
	nfd = file_with("new", new, nlen);
	ofd = file_with("out", NULL, 0);

	sigbuf = make_sig(bfd, blen, &siglen);
	assert_true(siglen >= 12);
	assert_int_equal(load_sig(sigbuf, siglen, 16 * MIB, &sig), 0);
	assert_non_null(sig);

	delta = make_delta(sig, nfd, &dlen, &gsize, ghash);
	sha256(new, nlen, want);
	assert_int_equal(gsize, nlen);
	assert_memory_equal(ghash, want, HASH_LEN);

	assert_int_equal(apply(bfd, delta, dlen, ofd, nlen, &psize, phash),
	    0);
	assert_int_equal(psize, nlen);
	assert_memory_equal(phash, want, HASH_LEN);
	got = read_all(ofd, &glen);
	assert_int_equal(glen, nlen);
	if (nlen > 0)
		assert_memory_equal(got, new, nlen);

	if (delta_len != NULL)
		*delta_len = dlen;
	free(got);
	free(delta);
	free(sigbuf);
	close(ofd);
	close(nfd);
	close(bfd);
}

static uint8_t *
random_buf(size_t len)
{
	uint8_t *buf;

	buf = malloc(len > 0 ? len : 1);
	assert_non_null(buf);
	rng_fill(buf, len);
	return buf;
}

/* ------------------------------------------------------------------ */

static void
test_modified_middle(void **state)
{
	size_t len = 3 * MIB;
	uint8_t *basis = random_buf(len), *new;

	(void)state;

	new = malloc(len);
	assert_non_null(new);
	memcpy(new, basis, len);
	rng_fill(new + len / 2, 100000);
	round_trip(basis, len, new, len, NULL);
	free(new);
	free(basis);
}

static void
test_appended(void **state)
{
	size_t len = 3 * MIB, extra = 200001;
	uint8_t *basis = random_buf(len), *new;

	(void)state;

	new = malloc(len + extra);
	assert_non_null(new);
	memcpy(new, basis, len);
	rng_fill(new + len, extra);
	round_trip(basis, len, new, len + extra, NULL);
	free(new);
	free(basis);
}

static void
test_truncated_new(void **state)
{
	size_t len = 3 * MIB;
	uint8_t *basis = random_buf(len);

	(void)state;

	round_trip(basis, len, basis, len / 2 + 17, NULL);
	free(basis);
}

static void
test_identical(void **state)
{
	size_t len = 3 * MIB, dlen;
	uint8_t *basis = random_buf(len);

	(void)state;

	round_trip(basis, len, basis, len, &dlen);
	assert_true(dlen < 4096);
	free(basis);
}

static void
test_empty_basis(void **state)
{
	size_t len = 3 * MIB;
	uint8_t *new = random_buf(len);

	(void)state;

	round_trip(new, 0, new, len, NULL);
	free(new);
}

static void
test_empty_new(void **state)
{
	size_t len = 3 * MIB;
	uint8_t *basis = random_buf(len);

	(void)state;

	round_trip(basis, len, basis, 0, NULL);
	round_trip(basis, 0, basis, 0, NULL);
	free(basis);
}

/* A 1 MiB change in a 16 MiB file costs about 1 MiB, not 16. */
static void
test_delta_small(void **state)
{
	size_t len = 16 * MIB, dlen;
	uint8_t *basis = random_buf(len), *new;

	(void)state;

	new = malloc(len);
	assert_non_null(new);
	memcpy(new, basis, len);
	rng_fill(new + 5 * MIB + 123, MIB);
	round_trip(basis, len, new, len, &dlen);
	assert_true(dlen > MIB);
	assert_true(dlen < MIB + MIB / 4);
	free(new);
	free(basis);
}

/* curl may rewind an upload: the second pass must be the same bytes. */
static void
test_sig_rewind(void **state)
{
	size_t len = MIB + 5, siglen, n1 = 0, n2 = 0;
	uint8_t *basis = random_buf(len), *sig, *a, *b;
	struct delta_sig *s;
	ssize_t n;
	int fd;

	(void)state;

	fd = file_with("basis", basis, len);
	sig = make_sig(fd, len, &siglen);
	a = malloc(siglen + 1);
	b = malloc(siglen + 1);
	assert_non_null(a);
	assert_non_null(b);

	assert_int_equal(delta_sig_new(fd, len, &s), 0);
	n = delta_sig_read(s, a, 1000);
	assert_int_equal(n, 1000);
	assert_memory_equal(a, sig, 1000);
	assert_int_equal(delta_sig_rewind(s), 0);
	for (;;) {
		n = delta_sig_read(s, b + n2, siglen + 1 - n2);
		assert_true(n >= 0);
		if (n == 0)
			break;
		n2 += (size_t)n;
	}
	assert_int_equal(n2, siglen);
	assert_memory_equal(b, sig, siglen);
	/* Rewind after the end, read it all in one go. */
	assert_int_equal(delta_sig_rewind(s), 0);
	n = delta_sig_read(s, a, siglen + 1);
	assert_true(n > 0);
	n1 = (size_t)n;
	while (n1 < siglen) {
		n = delta_sig_read(s, a + n1, siglen + 1 - n1);
		assert_true(n > 0);
		n1 += (size_t)n;
	}
	assert_int_equal(n1, siglen);
	assert_memory_equal(a, sig, siglen);
	assert_int_equal(delta_sig_read(s, a, 1), 0);
	delta_sig_free(s);

	/* The header is ours: BLAKE2, sane lengths. */
	assert_int_equal(sig[0], 0x72);
	assert_int_equal(sig[1], 0x73);
	assert_int_equal(sig[2], 0x01);
	assert_int_equal(sig[3], 0x47);
	free(b);
	free(a);
	free(sig);
	free(basis);
	close(fd);
}

/* ------------------------------------------------------------------ */
/* Hostile signatures. */

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static int
feed_header(uint32_t magic, uint32_t block_len, uint32_t strong_len)
{
	struct delta_loadsig *l;
	uint8_t hdr[12 + 36];
	rs_signature_t *sig = NULL;
	int r;

	put_u32(hdr, magic);
	put_u32(hdr + 4, block_len);
	put_u32(hdr + 8, strong_len);
	memset(hdr + 12, 0xab, sizeof hdr - 12);
	assert_int_equal(delta_loadsig_new(MIB, &l), 0);
	r = delta_loadsig_feed(l, hdr, 12);
	if (r == 0) {
		/* A legal header: one block must then load. */
		r = delta_loadsig_feed(l, hdr + 12, 4 + strong_len);
		assert_int_equal(r, 0);
		r = delta_loadsig_finish(l, &sig);
		assert_int_equal(r, 0);
		assert_non_null(sig);
		rs_free_sumset(sig);
	} else {
		/* The error is sticky. */
		assert_int_equal(delta_loadsig_feed(l, hdr, 1), r);
		assert_int_equal(delta_loadsig_finish(l, &sig), r);
		assert_null(sig);
	}
	delta_loadsig_free(l);
	return r;
}

static void
test_sig_header_limits(void **state)
{
	(void)state;

	assert_int_equal(feed_header(RS_RK_BLAKE2_SIG_MAGIC, 2048, 32), 0);
	assert_int_equal(feed_header(RS_RK_BLAKE2_SIG_MAGIC,
	    DELTA_MAX_BLOCK_LEN, 1), 0);
	assert_int_equal(feed_header(RS_MD4_SIG_MAGIC, 2048, 16),
	    -AR_EPROTO);
	assert_int_equal(feed_header(RS_RK_MD4_SIG_MAGIC, 2048, 16),
	    -AR_EPROTO);
	assert_int_equal(feed_header(RS_BLAKE2_SIG_MAGIC, 2048, 32),
	    -AR_EPROTO);
	assert_int_equal(feed_header(RS_DELTA_MAGIC, 2048, 32), -AR_EPROTO);
	assert_int_equal(feed_header(RS_RK_BLAKE2_SIG_MAGIC, 0, 32),
	    -AR_EPROTO);
	/* Below what rs_sig_args ever gives: block length 1 made a 65 MB
	 * signature cost 500 MB of the primary's memory. */
	assert_int_equal(feed_header(RS_RK_BLAKE2_SIG_MAGIC, 1, 32),
	    -AR_EPROTO);
	assert_int_equal(feed_header(RS_RK_BLAKE2_SIG_MAGIC,
	    DELTA_MIN_BLOCK_LEN - 1, 32), -AR_EPROTO);
	assert_int_equal(feed_header(RS_RK_BLAKE2_SIG_MAGIC,
	    DELTA_MIN_BLOCK_LEN, 32), 0);
	assert_int_equal(feed_header(RS_RK_BLAKE2_SIG_MAGIC, 2 * MIB, 32),
	    -AR_EPROTO);
	assert_int_equal(feed_header(RS_RK_BLAKE2_SIG_MAGIC,
	    DELTA_MAX_BLOCK_LEN + 1, 32), -AR_EPROTO);
	assert_int_equal(feed_header(RS_RK_BLAKE2_SIG_MAGIC, 0xffffffffu,
	    32), -AR_EPROTO);
	assert_int_equal(feed_header(RS_RK_BLAKE2_SIG_MAGIC, 2048, 33),
	    -AR_EPROTO);
	assert_int_equal(feed_header(RS_RK_BLAKE2_SIG_MAGIC, 2048, 0),
	    -AR_EPROTO);
	assert_int_equal(feed_header(RS_RK_BLAKE2_SIG_MAGIC, 2048,
	    0x80000000u), -AR_EPROTO);
}

static void
test_sig_max_bytes(void **state)
{
	size_t len = 3 * MIB, siglen;
	uint8_t *basis = random_buf(len), *sig;
	rs_signature_t *s;
	int fd;

	(void)state;

	fd = file_with("basis", basis, len);
	sig = make_sig(fd, len, &siglen);
	assert_true(siglen > 1000);
	assert_int_equal(load_sig(sig, siglen, siglen, &s), 0);
	rs_free_sumset(s);
	assert_int_equal(load_sig(sig, siglen, siglen - 1, &s), -AR_ENOMEM);
	assert_null(s);
	assert_int_equal(load_sig(sig, siglen, 12, &s), -AR_ENOMEM);
	assert_int_equal(load_sig(sig, siglen, 0, &s), -AR_ENOMEM);
	free(sig);
	free(basis);
	close(fd);
}

/* Feed a signature of nblocks blocks of block_len, strong_len 32, bounded
 * by file_size; returns the result of the feed and the finish. */
static int
feed_blocks(uint32_t block_len, uint64_t nblocks, uint64_t file_size,
    enum delta_refusal *why, char *msg, size_t msglen)
{
	struct delta_loadsig *l;
	rs_signature_t *sig = NULL;
	uint8_t blk[12 + 36];
	uint64_t i;
	int r;

	put_u32(blk, RS_RK_BLAKE2_SIG_MAGIC);
	put_u32(blk + 4, block_len);
	put_u32(blk + 8, 32);
	assert_int_equal(delta_loadsig_new(64 * MIB, &l), 0);
	delta_loadsig_bound(l, file_size);
	r = delta_loadsig_feed(l, blk, 12);
	for (i = 0; r == 0 && i < nblocks; i++) {
		put_u32(blk + 12, (uint32_t)i * 2654435761u);
		memset(blk + 16, (int)(i & 0xff), 32);
		r = delta_loadsig_feed(l, blk + 12, 36);
	}
	if (r == 0)
		r = delta_loadsig_finish(l, &sig);
	if (sig != NULL)
		rs_free_sumset(sig);
	*why = delta_loadsig_refusal(l);
	delta_loadsig_why(l, msg, msglen);
	delta_loadsig_free(l);
	return r;
}

static void
test_sig_bound(void **state)
{
	enum delta_refusal why;
	char msg[160];

	(void)state;
	/* 1000 bytes in blocks of 256: 4 blocks, one more allowed. */
	assert_int_equal(feed_blocks(256, 5, 1000, &why, msg, sizeof(msg)),
	    0);
	assert_int_equal(feed_blocks(256, 6, 1000, &why, msg, sizeof(msg)),
	    -AR_ENOMEM);
	assert_int_equal(why, DELTA_REFUSAL_TOO_MANY);
	assert_string_equal(msg, "signature of more than 5 blocks of 256 "
	    "bytes for a file of 1000 bytes");
	/* An empty file: one block at most. */
	assert_int_equal(feed_blocks(4096, 1, 0, &why, msg, sizeof(msg)), 0);
	assert_int_equal(feed_blocks(4096, 2, 0, &why, msg, sizeof(msg)),
	    -AR_ENOMEM);
	assert_int_equal(why, DELTA_REFUSAL_TOO_MANY);
	/* Exactly a multiple of the block length. */
	assert_int_equal(feed_blocks(512, 3, 1024, &why, msg, sizeof(msg)),
	    0);
	assert_int_equal(feed_blocks(512, 4, 1024, &why, msg, sizeof(msg)),
	    -AR_ENOMEM);
	/* The bound never raises max_bytes: 64 MiB stays the cap. */
	assert_int_equal(feed_blocks(256, 100000, UINT64_MAX / 2, &why, msg,
	    sizeof(msg)), 0);
	/* The block length is named when refused. */
	assert_int_equal(feed_blocks(1, 1, 1000, &why, msg, sizeof(msg)),
	    -AR_EPROTO);
	assert_int_equal(why, DELTA_REFUSAL_BLOCK_LEN);
	assert_string_equal(msg, "malformed signature: block length 1 "
	    "outside 256..1048576");
}

static void
test_sig_truncated(void **state)
{
	size_t len = MIB, siglen, bs;
	uint8_t *basis = random_buf(len), *sig;
	rs_signature_t *s;
	int fd;

	(void)state;

	fd = file_with("basis", basis, len);
	sig = make_sig(fd, len, &siglen);
	/* A partial block sum. librsync itself only notices a cut inside
	 * the strong sum; it drops a partial weak sum silently. */
	bs = 4 + (size_t)sig[11];		/* weak + strong_len */
	assert_true(bs >= 8 && bs <= 36);
	assert_int_equal(load_sig(sig, siglen - 1, MIB, &s), -AR_EPROTO);
	assert_null(s);
	assert_int_equal(load_sig(sig, siglen - 5, MIB, &s), -AR_EPROTO);
	assert_int_equal(load_sig(sig, siglen - (bs - 3), MIB, &s),
	    -AR_EPROTO);
	assert_int_equal(load_sig(sig, siglen - (bs - 2), MIB, &s),
	    -AR_EPROTO);
	assert_int_equal(load_sig(sig, siglen - (bs - 1), MIB, &s),
	    -AR_EPROTO);
	assert_null(s);
	assert_int_equal(load_sig(sig, siglen - bs, MIB, &s), 0);
	rs_free_sumset(s);
	/* A partial header, and nothing at all. */
	assert_int_equal(load_sig(sig, 11, MIB, &s), -AR_EPROTO);
	assert_int_equal(load_sig(sig, 1, MIB, &s), -AR_EPROTO);
	assert_int_equal(load_sig(sig, 0, MIB, &s), -AR_EPROTO);
	/* A header alone is the signature of an empty file. */
	assert_int_equal(load_sig(sig, 12, MIB, &s), 0);
	assert_non_null(s);
	rs_free_sumset(s);
	free(sig);
	free(basis);
	close(fd);
}

/* ------------------------------------------------------------------ */
/* Hostile deltas. */

/* Build the real delta of new against basis (both in memory). */
static uint8_t *
real_delta(const uint8_t *basis, size_t blen, const uint8_t *new,
    size_t nlen, size_t *dlen)
{
	rs_signature_t *sig;
	uint8_t *sigbuf, *delta, hash[HASH_LEN];
	uint64_t size;
	size_t siglen;
	int bfd, nfd;

	bfd = file_with("basis", basis, blen);
	nfd = file_with("new", new, nlen);
	sigbuf = make_sig(bfd, blen, &siglen);
	assert_int_equal(load_sig(sigbuf, siglen, 16 * MIB, &sig), 0);
	delta = make_delta(sig, nfd, dlen, &size, hash);
	free(sigbuf);
	close(nfd);
	close(bfd);
	return delta;
}

static off_t
fd_size(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_size;
}

static void
test_patch_max_out(void **state)
{
	size_t len = 3 * MIB, dlen;
	uint8_t *new = random_buf(len), *delta, hash[HASH_LEN];
	uint64_t size = 99;
	int bfd, ofd;

	(void)state;

	delta = real_delta(new, 0, new, len, &dlen);
	bfd = file_with("basis", NULL, 0);
	ofd = file_with("out", NULL, 0);
	assert_int_equal(apply(bfd, delta, dlen, ofd, MIB, &size, hash),
	    -AR_EPROTO);
	assert_int_equal(size, 99);	/* untouched on a failed feed */
	assert_true(fd_size(ofd) <= (off_t)MIB);
	close(ofd);
	ofd = file_with("out", NULL, 0);
	assert_int_equal(apply(bfd, delta, dlen, ofd, len - 1, &size, hash),
	    -AR_EPROTO);
	assert_true(fd_size(ofd) <= (off_t)len - 1);
	close(ofd);
	ofd = file_with("out", NULL, 0);
	assert_int_equal(apply(bfd, delta, dlen, ofd, len, &size, hash), 0);
	assert_int_equal(size, len);
	close(ofd);
	close(bfd);
	free(delta);
	free(new);
}

/* A delta of 905 bytes asking for 25 MiB stops at the cap. */
static void
test_patch_expansion(void **state)
{
	uint8_t delta[4 + 100 * 9 + 1], hash[HASH_LEN];
	uint8_t *basis = random_buf(MIB);
	uint64_t size;
	size_t off = 4;
	int i, bfd, ofd;

	(void)state;

	put_u32(delta, RS_DELTA_MAGIC);
	for (i = 0; i < 100; i++) {
		delta[off++] = OP_COPY_N4_N4;
		put_u32(delta + off, 0);
		put_u32(delta + off + 4, MIB / 4);
		off += 8;
	}
	delta[off++] = OP_END;
	assert_int_equal(off, sizeof delta);
	bfd = file_with("basis", basis, MIB);
	ofd = file_with("out", NULL, 0);
	assert_int_equal(apply(bfd, delta, off, ofd, 2 * MIB, &size, hash),
	    -AR_EPROTO);
	assert_true(fd_size(ofd) <= (off_t)(2 * MIB));
	close(ofd);
	/* With room for it all, the same delta works: the cap is the
	 * only thing that stopped it. */
	ofd = file_with("out", NULL, 0);
	assert_int_equal(apply(bfd, delta, off, ofd, 25 * MIB, &size, hash),
	    0);
	assert_int_equal(size, 25 * MIB);
	close(ofd);
	close(bfd);
	free(basis);
}

/* A delta made against a longer basis copies past our EOF. */
static void
test_patch_copy_past_eof(void **state)
{
	size_t len = 3 * MIB, dlen;
	uint8_t *basis = random_buf(len), *new, *delta, hash[HASH_LEN];
	uint8_t crafted[4 + 9 + 1];
	uint64_t size;
	int sfd, ofd;

	(void)state;

	new = malloc(len);
	assert_non_null(new);
	memcpy(new, basis, len);
	rng_fill(new + 1000, 10);
	delta = real_delta(basis, len, new, len, &dlen);
	assert_true(dlen < len / 10);

	sfd = file_with("short", basis, MIB);
	ofd = file_with("out", NULL, 0);
	assert_int_equal(apply(sfd, delta, dlen, ofd, len, &size, hash),
	    -AR_EPROTO);
	close(ofd);

	/* Straddling EOF: the first 5 bytes exist, the rest do not. */
	put_u32(crafted, RS_DELTA_MAGIC);
	crafted[4] = OP_COPY_N4_N4;
	put_u32(crafted + 5, MIB - 5);
	put_u32(crafted + 9, 10);
	crafted[13] = OP_END;
	ofd = file_with("out", NULL, 0);
	assert_int_equal(apply(sfd, crafted, sizeof crafted, ofd, len, &size,
	    hash), -AR_EPROTO);
	close(ofd);
	/* Wholly past EOF. */
	put_u32(crafted + 5, 0x7fffffff);
	ofd = file_with("out", NULL, 0);
	assert_int_equal(apply(sfd, crafted, sizeof crafted, ofd, len, &size,
	    hash), -AR_EPROTO);
	close(ofd);
	/* Against an empty basis. */
	put_u32(crafted + 5, 0);
	ofd = file_with("out", NULL, 0);
	close(sfd);
	sfd = file_with("short", NULL, 0);
	assert_int_equal(apply(sfd, crafted, sizeof crafted, ofd, len, &size,
	    hash), -AR_EPROTO);
	close(ofd);
	close(sfd);
	free(delta);
	free(new);
	free(basis);
}

/* An unreadable basis is our I/O error, not the peer's fault. */
static void
test_patch_basis_eio(void **state)
{
	uint8_t crafted[4 + 9 + 1], hash[HASH_LEN];
	uint64_t size;
	int ofd, bad;

	(void)state;

	put_u32(crafted, RS_DELTA_MAGIC);
	crafted[4] = OP_COPY_N4_N4;
	put_u32(crafted + 5, 0);
	put_u32(crafted + 9, 10);
	crafted[13] = OP_END;
	ofd = file_with("out", NULL, 0);
	bad = dup(ofd);
	assert_true(bad >= 0);
	close(bad);		/* a closed fd: pread fails with EBADF */
	assert_int_equal(apply(bad, crafted, sizeof crafted, ofd, MIB, &size,
	    hash), -AR_EIO);
	close(ofd);
}

static void
test_patch_truncated(void **state)
{
	size_t len = MIB, dlen, cut;
	uint8_t *basis = random_buf(len), *new, *delta, hash[HASH_LEN];
	uint64_t size;
	int bfd, ofd;
	const size_t cuts[] = { 1, 2, 3, 1000, 4096 };
	size_t i;

	(void)state;

	new = malloc(len);
	assert_non_null(new);
	memcpy(new, basis, len);
	rng_fill(new + 5000, 20000);
	delta = real_delta(basis, len, new, len, &dlen);
	bfd = file_with("basis", basis, len);
	for (i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		cut = cuts[i];
		assert_true(cut < dlen);
		ofd = file_with("out", NULL, 0);
		assert_int_equal(apply(bfd, delta, dlen - cut, ofd, len,
		    &size, hash), -AR_EPROTO);
		close(ofd);
	}
	/* Empty and header-only deltas. */
	ofd = file_with("out", NULL, 0);
	assert_int_equal(apply(bfd, delta, 0, ofd, len, &size, hash),
	    -AR_EPROTO);
	assert_int_equal(apply(bfd, delta, 4, ofd, len, &size, hash),
	    -AR_EPROTO);
	close(ofd);
	/* The untouched delta still works. */
	ofd = file_with("out", NULL, 0);
	assert_int_equal(apply(bfd, delta, dlen, ofd, len, &size, hash), 0);
	assert_int_equal(size, len);
	close(ofd);
	close(bfd);
	free(delta);
	free(new);
	free(basis);
}

static void
test_patch_corrupt(void **state)
{
	uint8_t d[16], hash[HASH_LEN], *basis = random_buf(4096);
	uint64_t size;
	int bfd, ofd;

	(void)state;

	bfd = file_with("basis", basis, 4096);

	/* Wrong magic: a signature is not a delta. */
	put_u32(d, RS_RK_BLAKE2_SIG_MAGIC);
	d[4] = OP_END;
	ofd = file_with("out", NULL, 0);
	assert_int_equal(apply(bfd, d, 5, ofd, MIB, &size, hash),
	    -AR_EPROTO);
	close(ofd);

	/* A reserved opcode. */
	put_u32(d, RS_DELTA_MAGIC);
	d[4] = 0xff;
	d[5] = OP_END;
	ofd = file_with("out", NULL, 0);
	assert_int_equal(apply(bfd, d, 6, ofd, MIB, &size, hash),
	    -AR_EPROTO);
	close(ofd);

	/* Bytes after END. */
	d[4] = OP_LITERAL_1;
	d[5] = 'x';
	d[6] = OP_END;
	d[7] = 'y';
	ofd = file_with("out", NULL, 0);
	assert_int_equal(apply(bfd, d, 8, ofd, MIB, &size, hash),
	    -AR_EPROTO);
	close(ofd);

	/* Zero-length COPY. */
	d[4] = OP_COPY_N4_N4;
	put_u32(d + 5, 0);
	put_u32(d + 9, 0);
	d[13] = OP_END;
	ofd = file_with("out", NULL, 0);
	assert_int_equal(apply(bfd, d, 14, ofd, MIB, &size, hash),
	    -AR_EPROTO);
	close(ofd);

	/* And the well-formed one-literal delta works. */
	d[4] = OP_LITERAL_1;
	d[5] = 'x';
	d[6] = OP_END;
	ofd = file_with("out", NULL, 0);
	assert_int_equal(apply(bfd, d, 7, ofd, MIB, &size, hash), 0);
	assert_int_equal(size, 1);
	close(ofd);
	close(bfd);
	free(basis);
}

/* Flipped bytes anywhere must give an error or an output whose hash
 * differs, never a crash or a hang. */
static void
test_patch_flipped(void **state)
{
	size_t len = 256 * 1024, dlen, i;
	uint8_t *basis = random_buf(len), *new, *delta, hash[HASH_LEN];
	uint8_t want[HASH_LEN];
	uint64_t size;
	int bfd, ofd, r, failed = 0, same = 0;

	(void)state;

	new = malloc(len);
	assert_non_null(new);
	memcpy(new, basis, len);
	rng_fill(new + 100000, 3000);
	delta = real_delta(basis, len, new, len, &dlen);
	sha256(new, len, want);
	bfd = file_with("basis", basis, len);
	for (i = 0; i < 200; i++) {
		size_t at = (size_t)(rng_next() % dlen);
		uint8_t old = delta[at];

		delta[at] ^= (uint8_t)(1u << (rng_next() % 8));
		ofd = file_with("out", NULL, 0);
		r = apply(bfd, delta, dlen, ofd, len, &size, hash);
		if (r != 0) {
			assert_int_equal(r, -AR_EPROTO);
			failed++;
		} else if (size == len && memcmp(hash, want, HASH_LEN) == 0)
			same++;
		close(ofd);
		delta[at] = old;
	}
	/* A flip is caught by the patch (command bytes) or by the hash
	 * (literal bytes): never a silent success. */
	assert_int_equal(same, 0);
	assert_true(failed < 200);
	close(bfd);
	free(delta);
	free(new);
	free(basis);
}

/* ------------------------------------------------------------------ */

static int
test_setup(void **state)
{
	(void)state;

	rng_state = 0x9e3779b97f4a7c15ULL;
	alarm(TEST_ALARM);
	return 0;
}

static int
test_teardown(void **state)
{
	(void)state;

	alarm(0);
	return 0;
}

static int
group_setup(void **state)
{
	(void)state;

	if (scratch_make(scratch, sizeof scratch, "test-delta") != 0)
		return -1;
	delta_global_init();
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;

	return scratch_remove(scratch);
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_modified_middle),
		T(test_appended),
		T(test_truncated_new),
		T(test_identical),
		T(test_empty_basis),
		T(test_empty_new),
		T(test_delta_small),
		T(test_sig_rewind),
		T(test_sig_header_limits),
		T(test_sig_max_bytes),
		T(test_sig_bound),
		T(test_sig_truncated),
		T(test_patch_max_out),
		T(test_patch_expansion),
		T(test_patch_copy_past_eof),
		T(test_patch_basis_eio),
		T(test_patch_truncated),
		T(test_patch_corrupt),
		T(test_patch_flipped),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

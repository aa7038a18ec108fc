/*
 * fuzz-blocks.c: libFuzzer target for the block store and cache files
 * (state_dir/blocks, spool_dir/blocks: blocks_store_decode) and the
 * list they hold.
 *
 * The first byte is a mode; the rest is the file. A file's checksum and
 * root guard it against a torn write, not against the fuzzer, so in the
 * modes with bit 0 (and bit 1) set, the input's checksum (and root) are
 * first made right, as a crafted file on a writable spool could have
 * them; the decoder's bounds are what stands then. Bit 2 picks the
 * format: the current one (the checksum after the path, over the header)
 * or version 1 (the checksum last, over the whole file), which is still
 * read. Whatever decodes must re-encode (in the current format) to the
 * same fields and hashes, and the list must reopen and extend as the
 * append path does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

/* The layout of blocks.c: magic, 48 bytes of fields, root, path length;
 * then the path, the checksum and the hashes (version 1: the path, the
 * hashes and the checksum). */
#define FZ_MAGIC_LEN 8
#define FZ_ROOT_AT (FZ_MAGIC_LEN + 48)
#define FZ_HDR (FZ_ROOT_AT + BLOCKS_ROOT_LEN + 2)
#define FZ_SUM 16

static uint32_t
fz_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
fz_get64(const uint8_t *p)
{
	return (uint64_t)fz_get32(p) << 32 | fz_get32(p + 4);
}

/* Write the root the input's own hashes give, where its layout holds. */
static void
fz_fix_root(uint8_t *p, size_t len, int v1)
{
	struct blocks b;
	uint32_t n;
	size_t plen;

	if (len < FZ_HDR + FZ_SUM)
		return;
	n = fz_get32(p + FZ_MAGIC_LEN + 44);
	plen = (size_t)p[FZ_HDR - 2] << 8 | p[FZ_HDR - 1];
	if (n > BLOCKS_MAX_COUNT ||
	    len != FZ_HDR + plen + (size_t)n * BLOCKS_HASH_LEN + FZ_SUM)
		return;
	CHECK(blocks_init(&b) == 0);
	b.h = malloc((size_t)n * BLOCKS_HASH_LEN + 1);
	CHECK(b.h != NULL);
	if (n > 0)
		memcpy(b.h, p + FZ_HDR + plen + (v1 ? 0 : FZ_SUM),
		    (size_t)n * BLOCKS_HASH_LEN);
	b.n = b.cap = n;
	b.size = fz_get64(p + FZ_MAGIC_LEN + 24);
	b.state = BLOCKS_ENDED;
	blocks_root(&b, p + FZ_ROOT_AT);
	blocks_release(&b);
}

static void
fz_list(struct blocks *b, const struct blocks_meta *m, const uint8_t *data,
    size_t size)
{
	static uint8_t zeros[BLOCKS_SIZE];
	uint8_t root[BLOCKS_ROOT_LEN];
	uint64_t at, from;
	size_t n;

	/* reopen where the input says, up to the end, as an append does;
	 * the bytes held below it are zeros here */
	at = m->size / 255 * data[0];
	CHECK(blocks_reopen(b, at, &from) == 0);
	CHECK(from <= at && at - from < BLOCKS_SIZE);
	CHECK(blocks_update(b, zeros, (size_t)(at - from)) == 0);
	n = size < 4096 ? size : 4096;
	CHECK(blocks_update(b, data, n) == 0 || at + n > BLOCKS_MAX_FILE);
	CHECK(blocks_end(b) == 0);
	CHECK(b->n == blocks_count(b->size));
	blocks_root(b, root);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[1u << 20];
	struct blocks_meta m;
	struct blocks b;
	uint8_t *p, mode;
	size_t len, plen;
	int r, v1;

	if (size < 1 || size > sizeof(out))
		return 0;
	mode = data[0];
	len = size - 1;
	p = malloc(len + 1);
	CHECK(p != NULL);
	memcpy(p, data + 1, len);
	v1 = (mode & 4) != 0;
	if (len >= FZ_MAGIC_LEN)
		memcpy(p, v1 ? "ARBLKS01" : "ARBLKS02", FZ_MAGIC_LEN);
	if ((mode & 2) != 0)
		fz_fix_root(p, len, v1);
	plen = len >= FZ_HDR ? (size_t)p[FZ_HDR - 2] << 8 | p[FZ_HDR - 1] : 0;
	if ((mode & 1) != 0 && v1 && len >= FZ_SUM)
		blocks_hash(p, len - FZ_SUM, p + len - FZ_SUM);
	else if ((mode & 1) != 0 && len >= FZ_HDR + plen + FZ_SUM)
		blocks_hash(p, FZ_HDR + plen, p + FZ_HDR + plen);

	r = blocks_store_decode(p, len, &m, &b);
	CHECK(r == 0 || r == -AR_EPROTO || r == -AR_ENOMEM);
	if (r == 0) {
		CHECK(b.state == BLOCKS_ENDED && b.size == m.size);
		CHECK(b.n == blocks_count(m.size) && b.n <= BLOCKS_MAX_COUNT);
		CHECK(m.path_len < sizeof(m.path) &&
		    m.path[m.path_len] == '\0');
		CHECK(m.mtime_nsec < 1000000000u);
		CHECK(blocks_store_len(b.n, m.path_len) == len);
		CHECK(blocks_store_encode(&m, &b, out, len) == 0);
		if (!v1)
			CHECK(memcmp(out, p, len) == 0);
		else {
			/* the same fields; the hashes after the checksum */
			CHECK(memcmp(out + FZ_MAGIC_LEN, p + FZ_MAGIC_LEN,
			    FZ_HDR - FZ_MAGIC_LEN + m.path_len) == 0);
			CHECK(memcmp(out + FZ_HDR + m.path_len + FZ_SUM,
			    p + FZ_HDR + m.path_len, b.n * BLOCKS_HASH_LEN) ==
			    0);
		}
		fz_list(&b, &m, data, size);
	}
	blocks_release(&b);
	free(p);
	return 0;
}

/*
 * fuzz-spool.c: libFuzzer target for the spool record decoder
 * (spool-rec.c).
 *
 * The input is read as the records of a segment, one after the other,
 * as spool_open and spool_read do: decode, advance by what was used, stop
 * at a torn record (nothing used) or a corrupt one (an error). Whatever
 * the decoder accepts must re-encode to the very same bytes: the layout
 * has one encoding per record, so any difference is a bug. Every torn
 * prefix of an accepted record must also be reported as torn, never as a
 * record.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "spool-rec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[SPOOL_REC_MAX];
static struct spool_rec rec, rec2;

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static void
check_str(const char *s, size_t len)
{
	CHECK(s[len] == '\0');
	CHECK(memchr(s, '\0', len) == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0, used, used2, cut;
	int r, n;

	while (off < size) {
		used = 0;
		r = spool_rec_decode(data + off, size - off, &rec, &used);
		if (r != 0) {
			CHECK(r == -AR_EPROTO);
			break;
		}
		if (used == 0)
			break;
		CHECK(used >= SPOOL_REC_MIN && used <= SPOOL_REC_MAX &&
		    used <= size - off);
		CHECK(used == spool_rec_size(&rec));
		CHECK(rec.seq != 0);
		CHECK(rec.op >= SPOOL_MODIFY && rec.op <= SPOOL_RESCAN);
		check_str(rec.path, rec.path_len);
		check_str(rec.path2, rec.path2_len);
		CHECK((rec.op == SPOOL_RENAME) == (rec.path2_len > 0));
		CHECK(rec.path_len > 0 || rec.op == SPOOL_RESCAN);

		n = spool_rec_encode(&rec, out, sizeof out);
		CHECK(n > 0 && (size_t)n == used);
		CHECK(memcmp(out, data + off, used) == 0);
		CHECK(spool_rec_decode(out, (size_t)n, &rec2, &used2) == 0);
		CHECK(used2 == used && rec2.seq == rec.seq &&
		    rec2.op == rec.op && rec2.time_ns == rec.time_ns &&
		    rec2.path_len == rec.path_len &&
		    rec2.path2_len == rec.path2_len &&
		    memcmp(rec2.path, rec.path, rec.path_len) == 0 &&
		    memcmp(rec2.path2, rec.path2, rec.path2_len) == 0);
		/* A few cuts, not all: keep each input fast. */
		for (cut = 0; cut < used; cut += 1 + used / 16)
			CHECK(spool_rec_decode(data + off, cut, &rec2,
			    &used2) == 0 && used2 == 0);
		off += used;
	}
	return 0;
}

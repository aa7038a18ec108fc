/*
 * fuzz-signature.c: a signature from a peer is untrusted input. Load it
 * with the wire limit and, if it loads, make a delta of a small fixed
 * file against it, so the loaded sums are really used for matching.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "delta.h"
#include "error.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Same content as the seed basis, so seed signatures produce matches. */
#define FUZZ_FILE_LEN (16 * 1024)

static int fuzz_fd = -1;

static void
fuzz_setup(void)
{
	static uint8_t buf[FUZZ_FILE_LEN];
	uint32_t x = 12345;
	size_t i, off;
	ssize_t n;

	delta_global_init();
	for (i = 0; i < sizeof buf; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	/* Differ from the basis in the middle, as a real change would. */
	for (i = 7000; i < 7100; i++)
		buf[i] ^= 0x5a;
	fuzz_fd = memfd_create("fuzz-signature", MFD_CLOEXEC);
	if (fuzz_fd < 0)
		abort();
	for (off = 0; off < sizeof buf; off += (size_t)n) {
		n = write(fuzz_fd, buf + off, sizeof buf - off);
		if (n <= 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct delta_loadsig *l;
	struct delta_gen *g;
	rs_signature_t *sig;
	uint8_t out[4096], hash[HASH_LEN];
	uint64_t n;
	size_t half = size / 2;
	ssize_t r;

	if (fuzz_fd < 0)
		fuzz_setup();
	if (delta_loadsig_new(1024 * 1024, &l) != 0)
		abort();
	/* Two pieces: the header may straddle them, as on the wire. */
	if (delta_loadsig_feed(l, data, half) != 0 ||
	    delta_loadsig_feed(l, data + half, size - half) != 0 ||
	    delta_loadsig_finish(l, &sig) != 0) {
		delta_loadsig_free(l);
		return 0;
	}
	delta_loadsig_free(l);

	if (delta_gen_new(sig, fuzz_fd, &g) != 0)
		return 0;
	do {
		r = delta_gen_read(g, out, sizeof out);
	} while (r > 0);
	if (r == 0) {
		delta_gen_result(g, &n, hash);
		if (n != FUZZ_FILE_LEN)
			abort();
	}
	delta_gen_free(g);
	return 0;
}

/*
 * fuzz-patch.c: a delta from a peer is untrusted input. Apply it to a
 * small fixed basis with a 1 MiB output cap; it must fail cleanly or
 * produce at most the cap, and never hang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "delta.h"
#include "error.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_BASIS_LEN	(16 * 1024)
#define FUZZ_MAX_OUT	(1024 * 1024)

static int basis_fd = -1;
static int out_fd = -1;

static void
fuzz_setup(void)
{
	static uint8_t buf[FUZZ_BASIS_LEN];
	uint32_t x = 12345;
	size_t i, off;
	ssize_t n;

	delta_global_init();
	/* The seed deltas were made against this same content. */
	for (i = 0; i < sizeof buf; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	basis_fd = memfd_create("fuzz-patch-basis", MFD_CLOEXEC);
	out_fd = memfd_create("fuzz-patch-out", MFD_CLOEXEC);
	if (basis_fd < 0 || out_fd < 0)
		abort();
	for (off = 0; off < sizeof buf; off += (size_t)n) {
		n = write(basis_fd, buf + off, sizeof buf - off);
		if (n <= 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct delta_patch *p;
	uint8_t hash[HASH_LEN];
	uint64_t n;
	size_t cut = size / 3;
	int r;

	if (basis_fd < 0)
		fuzz_setup();
	if (ftruncate(out_fd, 0) != 0)
		abort();
	if (delta_patch_new(basis_fd, out_fd, FUZZ_MAX_OUT, &p) != 0)
		abort();
	/* Two pieces, so commands straddle a feed boundary. */
	r = delta_patch_feed(p, data, cut);
	if (r == 0)
		r = delta_patch_feed(p, data + cut, size - cut);
	if (r == 0) {
		r = delta_patch_finish(p, &n, hash);
		if (r == 0 && n > FUZZ_MAX_OUT)
			abort();
	}
	if (r != 0 && r != -AR_EPROTO)
		abort();	/* only the peer can be at fault here */
	delta_patch_free(p);
	return 0;
}

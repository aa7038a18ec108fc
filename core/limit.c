/*
 * limit.c: the check of a generation id's spelling, shared by the wire
 * (a peer's hello) and gen.c (the generation file): pure, no I/O.
 */
#include <assert.h>

#include "limit.h"

int
limit_gen_valid(const char *s, size_t len)
{
	size_t i;

	assert(s != NULL);
	if (len != LIMIT_GEN_LEN)
		return 0;
	for (i = 0; i < len; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

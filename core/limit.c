/*
 * limit.c: the checks of a generation id's spelling, shared by the wire
 * (a peer's hello) and gen.c (the generation file), and of a standby
 * id's, shared by the query of /v1/changes, the configuration and the
 * rescue: pure, no I/O.
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

int
limit_id_valid(const char *s, size_t len)
{
	size_t i;

	assert(s != NULL);
	if (len == 0 || len > LIMIT_ID_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		    s[i] == '_' || s[i] == '-'))
			return 0;
	}
	return 1;
}

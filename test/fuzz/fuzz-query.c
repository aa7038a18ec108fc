/*
 * fuzz-query.c: libFuzzer target for query_changes_parse, the check of a
 * GET /v1/changes request's arguments.
 *
 * The input is a query string as the standby sends it,
 * "since=N&wait=MS&gen=HEX&id=NAME", split here the way libmicrohttpd
 * hands the values over (the first of a repeated key wins; a key without
 * '=' has no value; bytes after a NUL are not seen). The verdict and the
 * values must be those of an independent reference written with
 * strtoull, and a refused query must leave the output alone.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Longer queries are cut: the server's header limits are far below. */
#define FUZZ_QUERY_MAX 8192

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static const char *const keys[] = { "since", "wait", "gen", "id" };
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Split q in place; vals[i] is the first value of keys[i], or NULL. */
static void
fuzz_split(char *q, const char *vals[NKEYS])
{
	char *p = q, *amp, *eq;
	size_t i;

	for (i = 0; i < NKEYS; i++)
		vals[i] = NULL;
	while (p != NULL) {
		amp = strchr(p, '&');
		if (amp != NULL)
			*amp = '\0';
		eq = strchr(p, '=');
		if (eq != NULL)
			*eq = '\0';
		for (i = 0; i < NKEYS; i++) {
			if (strcmp(p, keys[i]) == 0 && vals[i] == NULL &&
			    eq != NULL)
				vals[i] = eq + 1;
		}
		p = amp != NULL ? amp + 1 : NULL;
	}
}

/* The reference for since= and wait=: what strtoull accepts whole. */
static int
ref_number(const char *v, unsigned long long max, unsigned long long *n)
{
	char *end;

	if (v == NULL || *v < '0' || *v > '9')
		return 0;
	errno = 0;
	*n = strtoull(v, &end, 10);
	return errno == 0 && *end == '\0' && *n <= max;
}

/* The references for gen= and id=: a length and an alphabet. */
static int
ref_spelled(const char *v, size_t min, size_t max, const char *alphabet)
{
	size_t len;

	if (v == NULL)
		return 0;
	len = strlen(v);
	return len >= min && len <= max && strspn(v, alphabet) == len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char q[FUZZ_QUERY_MAX + 1];
	const char *vals[NKEYS];
	struct query_changes out, before;
	unsigned long long since = 0, wait = 0;
	int r, ok;

	if (size > FUZZ_QUERY_MAX)
		size = FUZZ_QUERY_MAX;
	memcpy(q, data, size);
	q[size] = '\0';
	fuzz_split(q, vals);

	ok = ref_number(vals[0], ~0ull, &since) &&
	    (vals[1] == NULL ||
	    ref_number(vals[1], QUERY_WAIT_MAX_MS, &wait)) &&
	    ref_spelled(vals[2], WIRE_GEN_LEN, WIRE_GEN_LEN,
	    "0123456789abcdef") &&
	    ref_spelled(vals[3], 1, QUERY_ID_MAX, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");

	memset(&out, 0xa5, sizeof(out));
	memcpy(&before, &out, sizeof(out));
	r = query_changes_parse(vals[0], vals[1], vals[2], vals[3], &out);
	CHECK(r == 0 || r == -AR_EPROTO);
	CHECK((r == 0) == ok);
	if (r != 0) {
		CHECK(memcmp(&out, &before, sizeof(out)) == 0);
		return 0;
	}
	CHECK(out.since == since);
	CHECK(out.wait_ms == (vals[1] == NULL ? 0 : wait));
	CHECK(out.wait_ms <= QUERY_WAIT_MAX_MS);
	CHECK(strcmp(out.gen, vals[2]) == 0);
	CHECK(strcmp(out.id, vals[3]) == 0);
	return 0;
}

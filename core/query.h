/*
 * query.h: the arguments of a GET /v1/changes request, checked.
 *
 * Pure: the caller (serve-changes.c) looks the values up in the query
 * string; this module only decides whether they are well formed and
 * converts them. No libmicrohttpd, no I/O, so it is unit-tested and
 * fuzzed (test/fuzz/fuzz-query.c) on its own.
 */
#ifndef ASYNCREP_QUERY_H
#define ASYNCREP_QUERY_H

#include <stdint.h>

#include "limit.h"
#include "wire.h"

/* Longest long-poll a standby may ask for (wait=). */
#define QUERY_WAIT_MAX_MS 60000
/* Longest standby id (id=): [A-Za-z0-9._-], at least one. */
#define QUERY_ID_MAX LIMIT_ID_MAX

struct query_changes {
	uint64_t since;			/* the standby's position */
	uint64_t ack;			/* its durable position, <= since */
	uint64_t wait_ms;		/* long-poll at most this; 0: none */
	char gen[WIRE_GEN_LEN + 1];	/* the generation it follows */
	char id[QUERY_ID_MAX + 1];	/* the standby's id */
};

/*
 * Check and convert the values of since, wait, gen and id (NULL: the
 * argument is absent; only wait may be). since and wait are decimal
 * digits only (no sign, no space, no overflow), wait at most
 * QUERY_WAIT_MAX_MS; gen is WIRE_GEN_LEN lowercase hex digits. Returns 0
 * and fills *out, or -AR_EPROTO and leaves *out alone.
 */
int query_changes_parse(const char *since, const char *wait, const char *gen,
    const char *id, struct query_changes *out);

/*
 * The ack argument (version WIRE_V_LANES on; NULL: absent, and since is
 * the acknowledged position as before): decimal digits only, at most
 * q->since. Sets q->ack and returns 0, or -AR_EPROTO and leaves q alone.
 */
int query_changes_ack(const char *ack, struct query_changes *q);

#endif

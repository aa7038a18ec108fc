/*
 * query.c: the arguments of a GET /v1/changes request (see query.h).
 * They come from the network: every byte is checked here and nothing
 * else in the request is trusted before this said yes.
 */
#include <assert.h>
#include <string.h>

#include "error.h"
#include "gen.h"
#include "limit.h"
#include "query.h"

/* A decimal number: digits only, at least one, at most max. */
static int
query_u64(const char *v, uint64_t max, uint64_t *out)
{
	uint64_t n = 0;
	unsigned d;

	if (v == NULL || *v == '\0')
		return -AR_EPROTO;
	for (; *v != '\0'; v++) {
		if (*v < '0' || *v > '9')
			return -AR_EPROTO;
		d = (unsigned)(*v - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -AR_EPROTO;	/* overflow */
		n = n * 10 + d;
	}
	if (n > max)
		return -AR_EPROTO;
	*out = n;
	return 0;
}

int
query_changes_parse(const char *since, const char *wait, const char *gen,
    const char *id, struct query_changes *out)
{
	struct query_changes q;

	assert(out != NULL);
	memset(&q, 0, sizeof(q));
	if (query_u64(since, UINT64_MAX, &q.since) != 0)
		return -AR_EPROTO;
	if (wait != NULL && query_u64(wait, QUERY_WAIT_MAX_MS,
	    &q.wait_ms) != 0)
		return -AR_EPROTO;
	if (gen == NULL || strlen(gen) != WIRE_GEN_LEN || !gen_valid(gen))
		return -AR_EPROTO;
	memcpy(q.gen, gen, WIRE_GEN_LEN + 1);
	if (id == NULL || !limit_id_valid(id, strlen(id)))
		return -AR_EPROTO;
	memcpy(q.id, id, strlen(id) + 1);
	q.ack = q.since;
	*out = q;
	return 0;
}

int
query_changes_ack(const char *ack, struct query_changes *q)
{
	uint64_t v;

	assert(q != NULL);
	if (ack == NULL) {
		q->ack = q->since;
		return 0;
	}
	if (query_u64(ack, q->since, &v) != 0)
		return -AR_EPROTO;
	q->ack = v;
	return 0;
}

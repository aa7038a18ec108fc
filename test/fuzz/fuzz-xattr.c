/*
 * fuzz-xattr.c: libFuzzer target for the Y frame (xattrs and ACLs of an
 * entry, PROTOCOL.md) and the xattrs = list of [standby].
 *
 * Whatever xattr_get accepts must hold only valid names, strictly
 * sorted, within the bounds of xattr.h, and must re-encode to the very
 * same bytes (one encoding per set). The input, cut at its first NUL,
 * is also read as an xattrs = value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "xattr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static struct xattr_set a, b;
static uint8_t out[XATTR_WIRE_MAX];
static char list[256];

static void
fz_policy(const uint8_t *data, size_t size)
{
	struct xattr_policy p;
	size_t n = size < sizeof(list) - 1 ? size : sizeof(list) - 1;
	size_t i;
	int r;

	memcpy(list, data, n);
	list[n] = '\0';
	r = xattr_policy_parse(list, &p);
	CHECK(r == 0 || r == -AR_ECONFIG);
	if (r != 0)
		return;
	for (i = 0; i < a.n; i++)
		(void)xattr_allowed(&p, a.ents[i].name);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i, total = 0;
	int r, n;

	r = xattr_get(data, size, &a);
	CHECK(r == 0 || r == -AR_EPROTO);
	if (r == 0) {
		CHECK(a.n <= XATTR_NAMES_MAX);
		for (i = 0; i < a.n; i++) {
			const struct xattr_ent *e = &a.ents[i];

			CHECK(e->name[e->name_len] == '\0');
			CHECK(xattr_name_valid(e->name, e->name_len));
			CHECK(e->value_len <= XATTR_VALUE_MAX);
			total += e->name_len + e->value_len;
			if (i > 0) {
				const struct xattr_ent *d = &a.ents[i - 1];
				size_t m = d->name_len < e->name_len ?
				    d->name_len : e->name_len;
				int c = memcmp(d->name, e->name, m);

				CHECK(c < 0 || (c == 0 &&
				    d->name_len < e->name_len));
			}
			(void)xattr_is_acl(e->name);
		}
		CHECK(total <= XATTR_ENTRY_MAX + a.n);
		n = xattr_put(out, sizeof(out), &a);
		CHECK(n >= WIRE_HDR && (size_t)n == WIRE_HDR + size);
		CHECK(out[0] == WIRE_XATTRS);
		CHECK(memcmp(out + WIRE_HDR, data, size) == 0);
		CHECK(xattr_get(out + WIRE_HDR, size, &b) == 0);
		CHECK(a.n == b.n && a.incomplete == b.incomplete);
		for (i = 0; i < a.n; i++)
			CHECK(a.ents[i].value_len == b.ents[i].value_len &&
			    memcmp(a.ents[i].value, b.ents[i].value,
			    a.ents[i].value_len) == 0 &&
			    strcmp(a.ents[i].name, b.ents[i].name) == 0);
	}
	fz_policy(data, size);
	return 0;
}

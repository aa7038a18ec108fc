#include <gnutls/crypto.h>
#include <stdlib.h>

#include "error.h"
#include "hash.h"

int
hash_init(struct hash_ctx *h)
{
	gnutls_hash_hd_t hd;

	h->hd = NULL;
	if (gnutls_hash_init(&hd, GNUTLS_DIG_SHA256) < 0)
		return -AR_ENOMEM;
	h->hd = hd;
	return 0;
}

void
hash_update(struct hash_ctx *h, const void *buf, size_t len)
{
	if (len > 0)
		gnutls_hash((gnutls_hash_hd_t)h->hd, buf, len);
}

void
hash_final(struct hash_ctx *h, uint8_t out[HASH_LEN])
{
	gnutls_hash_deinit((gnutls_hash_hd_t)h->hd, out);
	h->hd = NULL;
}

void
hash_release(struct hash_ctx *h)
{
	if (h->hd != NULL)
		gnutls_hash_deinit((gnutls_hash_hd_t)h->hd, NULL);
	h->hd = NULL;
}

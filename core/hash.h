/*
 * hash.h: the whole-file hash (SHA-256) that travels with every file.
 *
 * librsync's delta format carries no whole-file checksum, so the sender
 * hashes exactly the bytes it fed into the delta or whole-file stream and
 * the receiver checks the result before anything becomes visible.
 */
#ifndef ASYNCREP_HASH_H
#define ASYNCREP_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_LEN 32

struct hash_ctx {
	void *hd;		/* gnutls_hash_hd_t */
};

int hash_init(struct hash_ctx *h);
void hash_update(struct hash_ctx *h, const void *buf, size_t len);
/* Writes the digest and releases the context. */
void hash_final(struct hash_ctx *h, uint8_t out[HASH_LEN]);
/* Release without a digest (error paths). Safe after hash_final. */
void hash_release(struct hash_ctx *h);

#endif

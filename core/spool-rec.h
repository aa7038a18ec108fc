/*
 * spool-rec.h: the bytes of the spool (SPOOL.md): a segment's header and
 * one change record, with its CRC-32C.
 *
 * Pure encode and decode, no I/O, so the format is unit tested and
 * fuzzed on its own, and every reader of a record's size (spool.c,
 * status.c) takes it from here. Everything else about the journal
 * (segments, commits, acks, recovery) is spool.c's.
 */
#ifndef ASYNCREP_SPOOL_REC_H
#define ASYNCREP_SPOOL_REC_H

#include <stddef.h>
#include <stdint.h>

#include "limit.h"

enum spool_op {
	SPOOL_MODIFY = 1,	/* a file was created or its content changed */
	SPOOL_ATTRIB = 2,	/* mode, owner or times changed */
	SPOOL_DELETE = 3,	/* path (file, link or whole directory) gone */
	SPOOL_RENAME = 4,	/* path moved to path2, both inside the tree */
	SPOOL_MKDIR = 5,	/* a directory was created */
	SPOOL_SYMLINK = 6,	/* a symlink was created or replaced */
	SPOOL_RESCAN = 7,	/* compare the subtree at path ("" = all) */
};

struct spool_rec {
	uint64_t seq;
	uint8_t op;		/* enum spool_op */
	uint64_t time_ns;	/* CLOCK_REALTIME when appended */
	uint16_t path_len;
	char path[LIMIT_PATH_MAX + 1];
	uint16_t path2_len;	/* RENAME only */
	char path2[LIMIT_PATH_MAX + 1];
};

/* A segment starts with this many bytes: magic, version, reserved. */
#define SPOOL_REC_SEG_HDR 16
/* A record: body length (4), CRC (4), then the body. */
#define SPOOL_REC_HDR 8
/* The body without its paths: seq, op, time, the two path lengths. */
#define SPOOL_REC_BODY_MIN (8 + 1 + 8 + 2 + 2)
/*
 * Sequences at or past this are refused by the encoder and the decoder:
 * a real spool never gets near it (2^62 records), and a crafted record
 * with seq 2^64-1 would wrap every "released + 1" the readers compute.
 * The same bound holds for acks (spool.c).
 */
#define SPOOL_REC_SEQ_MAX (UINT64_C(1) << 62)
/* Smallest and largest encoded record. */
#define SPOOL_REC_MIN (SPOOL_REC_HDR + SPOOL_REC_BODY_MIN)
#define SPOOL_REC_MAX (SPOOL_REC_MIN + 2 * LIMIT_PATH_MAX)

/* CRC-32C (Castagnoli), as in iSCSI and ext4. */
uint32_t spool_rec_crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * What a record may hold, the same for the encoder and the decoder: a
 * path is "" only in a RESCAN of the whole tree, path2 is there exactly
 * for a RENAME. Returns 0, -AR_ENOMEM for a path too long (a real tree
 * can hit that) or -AR_EINTERNAL for anything else.
 */
int spool_rec_check(uint8_t op, const char *path, size_t len,
    const char *path2, size_t len2);

/* Bytes of the record r once encoded. */
size_t spool_rec_size(const struct spool_rec *r);

/*
 * Encode one record into out from its fields (spool_rec_put) or from r
 * (spool_rec_encode); returns the length, or -AR_ENOMEM (out too small, a
 * path too long) or -AR_EINTERNAL (fields spool_rec_check refuses, seq 0
 * or seq >= SPOOL_REC_SEQ_MAX).
 */
int spool_rec_put(uint8_t *out, size_t outlen, uint64_t seq, uint8_t op,
    uint64_t time_ns, const char *path, size_t len, const char *path2,
    size_t len2);
int spool_rec_encode(const struct spool_rec *r, uint8_t *out, size_t outlen);

/*
 * Decode the record at buf. Returns 0 and sets *used to its length, or
 * to 0 when buf holds only the start of a record (a torn tail, or one
 * still to be read); -AR_EPROTO when the bytes are not a valid record
 * (bad length, checksum, op, path, or a seq of 0 or >= SPOOL_REC_SEQ_MAX).
 * A length out of range is corrupt at once, even before the rest of the
 * record is there.
 */
int spool_rec_decode(const uint8_t *buf, size_t len, struct spool_rec *r,
    size_t *used);

/* Length and seq of a record spool_rec_put wrote (trusted bytes). */
size_t spool_rec_len(const uint8_t *rec);
uint64_t spool_rec_seq(const uint8_t *rec);

/* A segment's header, and its check: 0, -AR_EPROTO (not a segment) or
 * -AR_EVERSION (another format version). */
void spool_rec_seg_header(uint8_t out[SPOOL_REC_SEG_HDR]);
int spool_rec_seg_check(const uint8_t *h, size_t len);

#endif

/*
 * blocks.h: a file's block-hash list and its hash-tree identity
 * (PROTOCOL.md "Block hashes"), and the small files that keep such a
 * list: the standby's block store (state_dir/blocks) and the primary's
 * cache (spool_dir/blocks, SPOOL.md).
 *
 * A file is cut into BLOCKS_SIZE blocks (the last one may be shorter),
 * each hashed with XXH3-128; the root is SHA-256 over the block size, the
 * file size and the XXH3-128 of each group of BLOCKS_GROUP hashes. The list is built while the bytes stream by
 * (one pass, memory of one hash state and 16 bytes a block), can be
 * reopened at any size to extend it by appended bytes (only the last
 * partial block is hashed again), and never grows past a cap, so a peer
 * cannot make us hold more than BLOCKS_MAX_COUNT hashes.
 */
#ifndef ASYNCREP_BLOCKS_H
#define ASYNCREP_BLOCKS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "hash.h"

#define BLOCKS_SIZE (64u * 1024)	/* bytes of a block */
#define BLOCKS_HASH_LEN 16		/* XXH3-128, canonical (big-endian) */
#define BLOCKS_ROOT_LEN HASH_LEN	/* SHA-256 */
/* Blocks of a group: the root hashes one XXH3-128 of each group's
 * hashes (64 MiB of file). */
#define BLOCKS_GROUP 1024
/* Most blocks a list holds: files up to 256 GiB. */
#define BLOCKS_MAX_COUNT (1u << 22)
#define BLOCKS_MAX_FILE ((uint64_t)BLOCKS_MAX_COUNT * BLOCKS_SIZE)

/* Where a list stands. */
enum blocks_state {
	BLOCKS_OPEN,		/* bytes may be added at the end */
	BLOCKS_ENDED,		/* the last partial block is hashed: a root */
};

struct blocks {
	enum blocks_state state;
	uint64_t size;		/* bytes the list covers */
	size_t n;		/* hashes in h */
	size_t cap;
	uint8_t *h;		/* n * BLOCKS_HASH_LEN */
	void *xs;		/* XXH3 state of the block being filled */
	uint32_t fill;		/* its bytes so far */
	/* The XXH3-128 of each whole group below gn (kept as the list
	 * grows, so a root costs the last group, not the list). */
	uint8_t *g;
	size_t gn, gcap;
	/* The lowest index changed since the list was read from or written
	 * to a store file: what an update in place writes (n: none). */
	size_t dirty;
};

/* ---------------------------------------------------------------- */
/* The list (pure) */

/* An empty, open list. */
int blocks_init(struct blocks *b);
void blocks_release(struct blocks *b);
/* Add bytes at the end of an open list; -AR_ENOMEM past
 * BLOCKS_MAX_COUNT blocks or out of memory. */
int blocks_update(struct blocks *b, const void *p, size_t len);
/* Add one block of len bytes (1 to BLOCKS_SIZE) by its hash h, to a
 * list that holds whole blocks only (its size a multiple of BLOCKS_SIZE,
 * nothing added by blocks_update since): a block shorter than
 * BLOCKS_SIZE is the last; -AR_EINTERNAL otherwise. */
int blocks_add_hash(struct blocks *b, const uint8_t h[BLOCKS_HASH_LEN],
    size_t len);
/* Add the bytes [from, to) of fd, read through buf (buflen bytes);
 * -AR_EIO, or -AR_ECHANGED when the file ends before to. */
int blocks_update_fd(struct blocks *b, int fd, uint64_t from, uint64_t to,
    uint8_t *buf, size_t buflen);
/* Hash the last partial block: the list is complete, at b->size. */
int blocks_end(struct blocks *b);
/*
 * Reopen the list at size at (<= b->size): the blocks wholly below the
 * block holding at are kept, the rest dropped; *from is where the
 * caller feeds bytes again (at rounded down to a block), first the
 * bytes it holds from *from to at, then any appended ones.
 */
int blocks_reopen(struct blocks *b, uint64_t at, uint64_t *from);
/* The root of an ended list. */
void blocks_root(const struct blocks *b, uint8_t out[BLOCKS_ROOT_LEN]);
/* A copy of src (ended) into dst (initialised, any state). */
int blocks_copy(struct blocks *dst, const struct blocks *src);
/* The hash of one block's bytes. */
void blocks_hash(const void *p, size_t len, uint8_t out[BLOCKS_HASH_LEN]);
/* Blocks of a file of size bytes. */
uint64_t blocks_count(uint64_t size);

/* ---------------------------------------------------------------- */
/* Store files: one list with the identity of the file it describes */

/* What a store file says of the file its list describes. */
struct blocks_meta {
	uint64_t dev, ino;
	uint64_t size;			/* as the list */
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint32_t flags;			/* enum blocks_flag */
	uint16_t path_len;		/* the path it had (standby) */
	char path[4096];
};

enum blocks_flag {
	/* primary: bytes were added by the append path since the whole
	 * file was last hashed (the background re-verification's work) */
	BLOCKS_F_APPENDED = 1,
};

/* Encoded size of a store file of n hashes and a path of plen bytes. */
size_t blocks_store_len(size_t n, size_t plen);
/* Encode (pure): out must hold blocks_store_len bytes. */
int blocks_store_encode(const struct blocks_meta *m, const struct blocks *b,
    uint8_t *out, size_t outlen);
/* Decode and check (pure): a bad magic, length, count or checksum is
 * -AR_EPROTO; b is initialised here and ends as an ended list. */
int blocks_store_decode(const uint8_t *p, size_t len, struct blocks_meta *m,
    struct blocks *b);

/* The store file's name for the file of stat st ("DEV-INO" in hex). */
void blocks_store_name(const struct stat *st, char *out, size_t outlen);
/* Write dirfd/name durably (temp file, fsync, rename, fsync dirfd); with
 * durable 0 without the fsyncs (a cache: a torn file fails its
 * checksum). */
int blocks_store_save(int dirfd, const char *name, const struct blocks_meta *m,
    const struct blocks *b, int durable);
/* Read dirfd/name: 0, -AR_EIO (absent or unreadable) or -AR_EPROTO
 * (corrupt); on success b is an initialised, ended list. */
int blocks_store_load(int dirfd, const char *name, struct blocks_meta *m,
    struct blocks *b);

/*
 * A store file as this process last read or wrote it: its stat and its
 * layout. While the file is still so (same inode, size, mtime and
 * ctime), nobody else wrote it, and the list in memory is the file's:
 * the next write changes only the hashes from b->dirty on, and the
 * header, in place.
 */
struct blocks_disk {
	int valid;
	uint64_t ino;
	int64_t size;
	int64_t mtime_sec, ctime_sec;
	long mtime_nsec, ctime_nsec;
	size_t hdr;		/* where the hashes start */
	size_t n;		/* hashes the file holds */
};

/* blocks_store_load, and d says what the file is (valid only for a
 * file of the current format). */
int blocks_store_read(int dirfd, const char *name, struct blocks_meta *m,
    struct blocks *b, struct blocks_disk *d);
/*
 * Write the entry without fsync (a cache, or a store entry that vouches
 * only while its file's stat matches): in place when d says the file is
 * still the one it describes (the hashes from b->dirty on, then the
 * header), else whole (temp file and rename). d then describes the
 * file written (valid 0 on failure, and the file removed).
 */
int blocks_store_write(int dirfd, const char *name,
    const struct blocks_meta *m, struct blocks *b, struct blocks_disk *d);
/* 1 if dirfd/name is still the file d describes. */
int blocks_store_fresh(int dirfd, const char *name,
    const struct blocks_disk *d);

/* ---------------------------------------------------------------- */
/* Lists kept in memory between uses (thread-safe, bounded) */

/* Entries and bytes of lists kept. */
#define BLOCKS_MEM_SLOTS 8
#define BLOCKS_MEM_BYTES (32u << 20)

struct blocks_mem;

int blocks_mem_new(struct blocks_mem **out);
void blocks_mem_free(struct blocks_mem *c);
/*
 * The entry dirfd/name: from memory when the file is still as it was
 * left (the memory copy is handed over: no other user has it until
 * blocks_mem_put), else read from the file (blocks_store_read). c may
 * be NULL (always the file).
 */
int blocks_mem_take(struct blocks_mem *c, int dirfd, const char *name,
    struct blocks_meta *m, struct blocks *b, struct blocks_disk *d);
/* Keep b (its buffers are taken over: b is an empty, open list after)
 * as the entry name, while d is valid. */
void blocks_mem_put(struct blocks_mem *c, const char *name,
    const struct blocks_meta *m, struct blocks *b,
    const struct blocks_disk *d);
/* Forget the entry name. */
void blocks_mem_drop(struct blocks_mem *c, const char *name);

#endif

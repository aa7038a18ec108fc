/*
 * journal.h: the journal of an in-place update (state_dir/inplace,
 * SPOOL.md "The in-place journal").
 *
 * On a file system without reflinks, a big file the operator named in
 * `inplace` is updated where it lies instead of being rebuilt: the
 * changed blocks, each verified, are first written to a journal in
 * state_dir, which is committed (a checksummed last record, fsync, fsync
 * of its directory) only once the new version's root has been checked.
 * Then the blocks are written into the copy, which is made durable, and
 * the journal is removed. Nothing touches the copy before the commit, so
 * a crash before it leaves the old version and a journal that is thrown
 * away; a crash after it leaves a journal that a restarted sync replays
 * before anything else (writing a block twice gives the same bytes), so
 * the copy becomes the new version. A reader may see a mix of the two
 * while the blocks are written into it.
 *
 * A journal is named after the copy's device and inode ("DEV-INO.j") and
 * holds: a head (magic, the copy's identity, the new version's size and
 * attributes, its path), records (offset, length, a hole flag, the
 * bytes) and a commit (the record count and the XXH3-64 of everything
 * before it). Every length is bounded: a record holds at most one block.
 */
#ifndef ASYNCREP_JOURNAL_H
#define ASYNCREP_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "wire.h"

#define JOURNAL_DIR "inplace"
/* The longest record: one block. */
#define JOURNAL_RECORD_MAX (64u * 1024)

/* What a journal is for: the copy it updates and the version it makes. */
struct journal_head {
	uint64_t dev, ino;	/* the copy, as fstat saw it */
	uint64_t size;		/* the new version */
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint32_t mode, uid, gid;
	uint16_t path_len;
	char path[WIRE_PATH_MAX + 1];	/* beneath data_dir */
};

/* A journal being written or read. */
struct journal {
	int dirfd;		/* state_dir/inplace, not owned */
	int fd;			/* the journal, or -1 */
	char name[64];		/* DEV-INO.j */
	uint64_t records;
	uint64_t off;		/* bytes written so far; once opened, where
				 * the records start */
	uint64_t size;		/* the new version's, once opened */
	void *xs;		/* XXH3 state of those bytes */
	uint8_t *buf;		/* one record, while reading */
};

void journal_init(struct journal *j, int dirfd);
/* The name of the journal of the copy dev/ino, into name (>= 64). */
void journal_name(uint64_t dev, uint64_t ino, char *name, size_t len);

/* Start the journal of h (replacing an uncommitted one of the same
 * copy). 0, -AR_EIO (errno kept) or -AR_ENOMEM. */
int journal_begin(struct journal *j, const struct journal_head *h);
/* One verified block: len bytes at off, or a hole of len bytes. */
int journal_put(struct journal *j, uint64_t off, const void *buf,
    uint32_t len, int hole);
/* The commit record, then fsync of the journal and of its directory:
 * from here on the new version is what a crash leads to. */
int journal_commit(struct journal *j);

/* Open the committed journal name, checking it whole: 0 and *h, or
 * -AR_EPROTO when it is torn, uncommitted or malformed (the copy was
 * not touched: remove it); -AR_EIO (it could not be read: keep it),
 * -AR_ENOMEM. */
int journal_open(struct journal *j, const char *name,
    struct journal_head *h);
/* Write the records of a committed journal into fd and give fd the new
 * size (no fsync, no attributes). */
int journal_apply(struct journal *j, int fd);

/* Close the journal, which stays where it is. */
void journal_release(struct journal *j);
/* Remove the journal and fsync its directory; close it. */
int journal_finish(struct journal *j);
/* Close and remove an uncommitted journal: nothing was written to the
 * copy. */
void journal_abort(struct journal *j);

#endif

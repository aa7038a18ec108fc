/*
 * spool.h: the primary's durable change journal (format: SPOOL.md).
 *
 * This module owns everything under spool_dir except the generation
 * (gen.c): append-only segment files of checksummed, sequenced change
 * records written with group commit; each standby's acknowledged
 * position; trimming and the size cap. A rescue helper on another node
 * opens the same directory read-only. The bytes of a record and of a
 * segment's header are spool-rec.h's.
 *
 * Thread safety: every function takes the spool's mutex, so the watcher
 * thread appends while server threads read and record acks.
 */
#ifndef ASYNCREP_SPOOL_H
#define ASYNCREP_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "spool-rec.h"

/* --- the journal --- */

struct spool;

struct spool_opts {
	int readonly;		/* a rescue: never writes, never truncates */
	uint64_t segment_size;	/* rotate past this, default 16M */
	uint64_t max_size;	/* spool_max_size: 0 = default 1G */
	uint64_t commit_ns;	/* group-commit bound, default 2ms */
};

/*
 * Open spool_dir (which gen_open already created and locked). Scans the
 * segments, drops a torn or corrupt tail (in place unless readonly) and
 * finds the first and last sequence numbers.
 */
int spool_open(const char *dir, const struct spool_opts *opts,
    struct spool **out, char *err, size_t errlen);
void spool_close(struct spool *sp);

/* Buffer one record; *seq is its sequence number. Not durable until
 * spool_commit() returns. */
int spool_append(struct spool *sp, uint8_t op, const char *path, size_t len,
    const char *path2, size_t len2, uint64_t *seq);
/* Write and fdatasync what is buffered; afterwards spool_durable_seq()
 * covers every record appended before the call. */
int spool_commit(struct spool *sp);

/*
 * Whether the journal can write: 0, or the errno of the write or fsync
 * that failed (ENOSPC, EROFS, EIO...), after which every append and
 * commit fails until spool_resume. Acks are still recorded meanwhile.
 */
int spool_failed(struct spool *sp);
/*
 * Make a failed journal write again, without a reopen: drop what was
 * buffered, cut the last segment back to its durable end, and commit a
 * RESCAN "" numbered past every seq the lost records took (SPOOL.md).
 * After ENOSPC it waits (fails) until the filesystem has room again.
 * On a healthy journal it only appends and commits the RESCAN. Returns
 * 0 with *seq the RESCAN's, or the error that keeps it failed.
 */
int spool_resume(struct spool *sp, uint64_t *seq);

/* Last durable sequence (0 if none ever), and the oldest still held
 * (first_seq > durable when the journal is empty). */
uint64_t spool_durable_seq(struct spool *sp);
uint64_t spool_first_seq(struct spool *sp);

/*
 * Read records with seq > after, in order, up to and including upto.
 * cb returns 0 to go on, non-zero to stop (returned). Returns -AR_ESTATE
 * when records after `after` were trimmed (the reader must do a full
 * compare instead).
 */
typedef int spool_rec_cb(void *arg, const struct spool_rec *r);
int spool_read(struct spool *sp, uint64_t after, uint64_t upto,
    spool_rec_cb *cb, void *arg);

/*
 * Record that standby `id` (1-64 chars of [A-Za-z0-9._-]) holds every
 * change up to seq, durably (temp file, fsync, rename); then trim the
 * segments every known standby has acknowledged.
 */
int spool_ack(struct spool *sp, const char *id, uint64_t seq);
/*
 * As spool_ack, for a standby that asks at the rate of the changes: when
 * its ack file was written less than SPOOL_ACK_BUSY_MS ago, the position
 * is put off (kept in memory; a later one replaces it) instead of two
 * fsyncs per request, and spool_ack_flush writes it once the file is
 * that old. An ack file thus lags at most about a second behind (and is
 * never ahead: a lost position is an older one that is still true).
 */
#define SPOOL_ACK_BUSY_MS 1000
int spool_ack_busy(struct spool *sp, const char *id, uint64_t seq);
/* Write the positions put off whose files are SPOOL_ACK_BUSY_MS old
 * (all of them with all set: at close). */
void spool_ack_flush(struct spool *sp, int all);
/* 1 if standby id has an ack file (it counts among the standbys with a
 * position), else 0. */
int spool_ack_held(struct spool *sp, const char *id);

/* Each standby's acknowledged position, for status and trimming. */
typedef void spool_ack_cb(void *arg, const char *id, uint64_t seq,
    uint64_t mtime_ns);
int spool_acks(struct spool *sp, spool_ack_cb *cb, void *arg);

/* Bytes of all segments. */
uint64_t spool_size(struct spool *sp);

#endif

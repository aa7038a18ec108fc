/*
 * spool.c: the primary's durable change journal (format: SPOOL.md).
 *
 * Records are buffered in memory by spool_append and made durable by
 * spool_commit (write at the end of the current segment, fdatasync), so
 * one fdatasync covers a whole batch. Only the last segment can hold a
 * torn or corrupt tail: it is scanned completely at open, earlier ones
 * are checked lazily, record by record, when they are read.
 *
 * Locking: mu guards everything in struct spool. spool_read takes it only
 * to find a segment and open it, and reads, decodes and calls back
 * without it: bytes below a segment's durable end never change. ackmu
 * orders the writes of ack files, so appends are not held up by an ack's
 * fsync; when both are taken, ackmu comes first.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fs.h"
#include "guard.h"
#include "limit.h"
#include "log.h"
#include "spool.h"
#include "util.h"

#define SPOOL_BUF_MAX (1024u * 1024)	/* appended, not yet committed */
#define SPOOL_CHUNK (256u * 1024)	/* one read of a segment */
#define SPOOL_SEG_NAME_LEN 24		/* "seg-" 16 hex ".log" */
#define SPOOL_SEGS_MAX (1u << 20)	/* more segments: not our spool */
#define SPOOL_ACKS_DIR "acks"
#define SPOOL_ID_MAX 64
#define SPOOL_ACK_FILE_MAX 32		/* "SEQ\n" with 20 digits fits */
/* Refresh an unchanged ack file's mtime once it is this old. */
#define SPOOL_ACK_TOUCH_S 3600
/* Ack values past this are corrupt: seq never gets near it. */
#define SPOOL_SEQ_SANE SPOOL_REC_SEQ_MAX

#define SPOOL_DEF_SEGMENT (16u * 1024 * 1024)
#define SPOOL_DEF_MAX (UINT64_C(1) << 30)
#define SPOOL_DEF_COMMIT_NS UINT64_C(2000000)

/* Acks put off by spool_ack_busy, written by spool_ack_flush. */
#define SPOOL_ACK_PENDING 16

struct spool_ack_pending {
	char id[LIMIT_ID_MAX + 1];	/* "" when free */
	uint64_t seq;
};

/* One segment file: its name is the seq of its first record. */
struct spool_seg {
	uint64_t first;
	uint64_t size;		/* bytes; for the current one, the durable end */
};

struct spool {
	pthread_mutex_t mu;
	pthread_mutex_t ackmu;
	char *dir;			/* for messages */
	int dirfd;
	int acksfd;			/* -1: no acks directory (readonly) */
	int curfd;			/* last segment, O_RDWR; -1: start a new one */
	int readonly;
	int err;			/* sticky: a failed write or fsync */
	int err_errno;			/* its errno, for spool_failed */
	int ack_errno;			/* the last ack's failure, 0: saved */
	/* under ackmu: positions acknowledged, not yet written */
	struct spool_ack_pending pend[SPOOL_ACK_PENDING];
	uint64_t segment_size;
	uint64_t max_size;
	uint64_t commit_ns;

	struct spool_seg *segs;		/* sorted by first */
	size_t nsegs;
	size_t segs_alloc;

	uint64_t durable_seq;
	uint64_t next_seq;

	uint8_t *buf;			/* encoded, not yet written */
	size_t buflen;
	uint64_t buf_since_ns;		/* CLOCK_MONOTONIC of buf's oldest */
};

/* ------------------------------------------------------------------------
 * Small helpers.
 */

/* A record's time: the wall clock, for status and for people. */
static uint64_t
spool_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) +
	    (uint64_t)ts.tv_nsec;
}

static void
spool_seg_name(char out[SPOOL_SEG_NAME_LEN + 1], uint64_t first)
{
	snprintf(out, SPOOL_SEG_NAME_LEN + 1, "seg-%016llx.log",
	    (unsigned long long)first);
}

/* 1 and *first when name is a segment's: only our own spelling, so two
 * names can never mean the same segment. */
static int
spool_seg_parse(const char *name, uint64_t *first)
{
	uint64_t v = 0;
	size_t i;
	char c;

	if (strlen(name) != SPOOL_SEG_NAME_LEN ||
	    memcmp(name, "seg-", 4) != 0 ||
	    memcmp(name + 20, ".log", 4) != 0)
		return 0;
	for (i = 4; i < 20; i++) {
		c = name[i];
		if (c >= '0' && c <= '9')
			v = (v << 4) | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = (v << 4) | (uint64_t)(c - 'a' + 10);
		else
			return 0;
	}
	if (v == 0 || v >= SPOOL_SEQ_SANE)
		return 0;
	*first = v;
	return 1;
}

/* A standby id names a file: a fixed alphabet, never "." or "..", never
 * one of fs_write_durable's temp names. */
static int
spool_id_valid(const char *id)
{
	size_t i, n;
	char c;

	n = strnlen(id, SPOOL_ID_MAX + 1);
	if (n == 0 || n > SPOOL_ID_MAX)
		return 0;
	if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return 0;
	if (strncmp(id, FS_TMP_PREFIX, sizeof FS_TMP_PREFIX - 1) == 0)
		return 0;
	for (i = 0; i < n; i++) {
		c = id[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '-'))
			return 0;
	}
	return 1;
}

/* "SEQ\n": 1-20 decimal digits, nothing else. */
static int
spool_ack_parse(const char *s, size_t len, uint64_t *seq)
{
	uint64_t v = 0;
	size_t i;

	if (len < 2 || len > 21 || s[len - 1] != '\n')
		return -AR_EPROTO;
	for (i = 0; i < len - 1; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -AR_EPROTO;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -AR_EPROTO;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v >= SPOOL_SEQ_SANE)
		return -AR_EPROTO;
	*seq = v;
	return 0;
}

static int
spool_fdatasync(int fd)
{
	int r;

	do {
		r = fdatasync(fd);
	} while (r == -1 && errno == EINTR);
	return r == 0 ? 0 : -AR_EIO;
}

/*
 * Call cb for every ack file. A file that is not a readable "SEQ\n" is
 * reported as 0 (after a warning), which keeps every segment: a broken
 * ack must never make us trim what a standby may still need.
 */
static int
spool_acks_each(int acksfd, spool_ack_cb *cb, void *arg)
{
	char buf[SPOOL_ACK_FILE_MAX];
	struct dirent *de;
	struct stat st;
	uint64_t seq;
	size_t len;
	DIR *d;
	int fd, r = 0;

	if (acksfd < 0)
		return 0;
	fd = openat(acksfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -AR_EIO;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -AR_EIO;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (de == NULL) {
			if (errno != 0)
				r = -AR_EIO;
			break;
		}
		if (!spool_id_valid(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode))
			continue;
		seq = 0;
		if (fs_read_entry(dirfd(d), de->d_name, buf, sizeof buf,
		    &len) != 0 || spool_ack_parse(buf, len, &seq) != 0) {
			log_warn("spool: ack file '%s' is unreadable or "
			    "corrupt, taken as 0", de->d_name);
			seq = 0;
		}
		cb(arg, de->d_name, seq,
		    (uint64_t)st.st_mtim.tv_sec * UINT64_C(1000000000) +
		    (uint64_t)st.st_mtim.tv_nsec);
	}
	closedir(d);
	return r;
}

struct spool_minmax {
	size_t count;
	uint64_t min;
	uint64_t max;
};

static void
spool_minmax_cb(void *arg, const char *id, uint64_t seq, uint64_t mtime_ns)
{
	struct spool_minmax *m = arg;

	(void)id;
	(void)mtime_ns;
	if (m->count == 0 || seq < m->min)
		m->min = seq;
	if (m->count == 0 || seq > m->max)
		m->max = seq;
	m->count++;
}

/* ------------------------------------------------------------------------
 * Reading a segment in bounded chunks.
 *
 * A record may straddle two chunks: what is left of a chunk moves to the
 * front before the next read, and a chunk always has room for the
 * largest record.
 */

struct spool_rd {
	int fd;
	uint64_t off;		/* file offset of buf[0] */
	uint64_t end;		/* read no byte at or past this */
	uint8_t *buf;
	size_t pos;
	size_t have;
	int eof;
};

/* What spool_rd_next found. */
enum spool_rd_res {
	SPOOL_RD_REC,		/* *r holds the next record */
	SPOOL_RD_END,		/* clean end: no byte left */
	SPOOL_RD_TORN,		/* bytes left that are only a record's start */
};

/* The next record, or how the segment ends, in *res. Returns 0,
 * -AR_EPROTO (a corrupt record at *recoff) or -AR_EIO. */
static int
spool_rd_next(struct spool_rd *rd, struct spool_rec *r, uint64_t *recoff,
    enum spool_rd_res *res)
{
	size_t used, want;
	ssize_t n;
	int d;

	for (;;) {
		assert(rd->pos <= rd->have && rd->have <= SPOOL_CHUNK);
		*recoff = rd->off + rd->pos;
		if (rd->pos < rd->have) {
			d = spool_rec_decode(rd->buf + rd->pos,
			    rd->have - rd->pos, r, &used);
			if (d < 0)
				return d;
			if (used > 0) {
				rd->pos += used;
				*res = SPOOL_RD_REC;
				return 0;
			}
			if (rd->eof) {
				*res = SPOOL_RD_TORN;
				return 0;
			}
		} else if (rd->eof) {
			*res = SPOOL_RD_END;
			return 0;
		}

		memmove(rd->buf, rd->buf + rd->pos, rd->have - rd->pos);
		rd->off += rd->pos;
		rd->have -= rd->pos;
		rd->pos = 0;
		want = SPOOL_CHUNK - rd->have;
		if (rd->end - (rd->off + rd->have) < want)
			want = (size_t)(rd->end - (rd->off + rd->have));
		if (want == 0) {
			rd->eof = 1;
			continue;
		}
		guard_progress();
		n = fs_pread_full(rd->fd, rd->buf + rd->have, want,
		    rd->off + rd->have);
		if (n < 0)
			return -AR_EIO;
		if ((size_t)n < want)
			rd->eof = 1;
		rd->have += (size_t)n;
	}
}

/*
 * Sequence numbers go up by one, except that a RESCAN of the whole tree
 * may jump forward: it is written after a truncation, past every seq a
 * standby may have seen (SPOOL.md, "Recovery").
 */
static int
spool_seq_follows(uint64_t prev, const struct spool_rec *r)
{
	if (r->seq == prev + 1)
		return 1;
	return r->op == SPOOL_RESCAN && r->path_len == 0 && r->seq > prev;
}

/* ------------------------------------------------------------------------
 * Segments.
 */

static int
spool_segs_push(struct spool *sp, uint64_t first, uint64_t size)
{
	int r;

	if (sp->nsegs >= SPOOL_SEGS_MAX)
		return -AR_ENOMEM;
	r = util_grow(&sp->segs, &sp->segs_alloc, sp->nsegs + 1,
	    sizeof *sp->segs, 16);
	if (r != 0)
		return r;
	sp->segs[sp->nsegs].first = first;
	sp->segs[sp->nsegs].size = size;
	sp->nsegs++;
	return 0;
}

static int
spool_seg_cmp(const void *a, const void *b)
{
	const struct spool_seg *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/* Index of the segment that holds seq: the last whose first <= seq. */
static size_t
spool_seg_find(const struct spool *sp, uint64_t seq)
{
	size_t lo = 0, hi = sp->nsegs, mid;

	assert(sp->nsegs > 0 && sp->segs[0].first <= seq);
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (sp->segs[mid].first <= seq)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static uint64_t
spool_first_locked(const struct spool *sp)
{
	return sp->nsegs > 0 ? sp->segs[0].first : sp->durable_seq + 1;
}

static int
spool_header_check(int fd, uint64_t *size)
{
	uint8_t h[SPOOL_REC_SEG_HDR];
	struct stat st;
	ssize_t n;
	int r;

	if (fstat(fd, &st) == -1)
		return -AR_EIO;
	n = fs_pread_full(fd, h, sizeof h, 0);
	if (n < 0)
		return -AR_EIO;
	r = spool_rec_seg_check(h, (size_t)n);
	if (r != 0)
		return r;
	*size = (uint64_t)st.st_size;
	return 0;
}

/*
 * Start a new segment for the record numbered first. It appears under
 * its name complete with its header or not at all (temp file, fsync,
 * rename, fsync directory), so an open never meets a half-made header.
 */
static int
spool_seg_create(struct spool *sp, uint64_t first)
{
	char name[SPOOL_SEG_NAME_LEN + 1];
	uint8_t h[SPOOL_REC_SEG_HDR];
	int fd, r;

	spool_rec_seg_header(h);
	spool_seg_name(name, first);
	/* Not logged here: a spool that cannot write says so through
	 * spool_failed, once per condition, not once per try. */
	r = fs_write_durable(sp->dirfd, name, h, sizeof h, 0644);
	if (r != 0)
		return -AR_EIO;
	fd = openat(sp->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1)
		return -AR_EIO;
	r = spool_segs_push(sp, first, SPOOL_REC_SEG_HDR);
	if (r != 0) {
		close(fd);
		return r;
	}
	if (sp->curfd != -1)
		close(sp->curfd);
	sp->curfd = fd;
	return 0;
}

/* Unlink segs[0]; the caller fsyncs the directory. */
static int
spool_seg_drop_oldest(struct spool *sp)
{
	char name[SPOOL_SEG_NAME_LEN + 1];

	/* The current segment always stays. */
	assert(sp->nsegs > 1);
	spool_seg_name(name, sp->segs[0].first);
	if (unlinkat(sp->dirfd, name, 0) == -1 && errno != ENOENT) {
		log_error("spool: cannot remove segment '%s': %s", name,
		    strerror(errno));
		return -AR_EIO;
	}
	memmove(sp->segs, sp->segs + 1, (sp->nsegs - 1) * sizeof *sp->segs);
	sp->nsegs--;
	return 0;
}

/* ------------------------------------------------------------------------
 * Trimming and the cap.
 */

struct spool_lag {
	uint64_t first;
	char names[512];
	size_t len;
};

static void
spool_lag_cb(void *arg, const char *id, uint64_t seq, uint64_t mtime_ns)
{
	struct spool_lag *l = arg;
	int n;

	(void)mtime_ns;
	if (seq + 1 >= l->first)
		return;
	n = snprintf(l->names + l->len, sizeof l->names - l->len, "%s'%s'",
	    l->len > 0 ? ", " : "", id);
	if (n > 0 && (size_t)n < sizeof l->names - l->len)
		l->len += (size_t)n;
}

/*
 * The cap wins over the acks: past max_size the oldest segments go even
 * if unacknowledged, and the standbys that needed them are sent to a full
 * compare by spool_read. The current segment always stays. Called with
 * mu held; returns with it held.
 */
static int
spool_cap_locked(struct spool *sp)
{
	struct spool_lag lag;
	uint64_t total = 0;
	size_t i, dropped = 0;
	int r = 0;

	for (i = 0; i < sp->nsegs; i++)
		total += sp->segs[i].size;
	while (total > sp->max_size && sp->nsegs > 1) {
		total -= sp->segs[0].size;
		r = spool_seg_drop_oldest(sp);
		if (r != 0)
			break;
		dropped++;
	}
	if (dropped == 0)
		return r;
	if (fs_fsync_dir(sp->dirfd) != 0 && r == 0)
		r = -AR_EIO;
	memset(&lag, 0, sizeof lag);
	lag.first = spool_first_locked(sp);
	spool_acks_each(sp->acksfd, spool_lag_cb, &lag);
	log_warn("spool: over spool_max_size (%llu bytes): dropped %zu "
	    "segment(s), records before %llu are gone; %s%s",
	    (unsigned long long)sp->max_size, dropped,
	    (unsigned long long)lag.first,
	    lag.len > 0 ? "standbys needing a full compare: " :
	    "no standby fell behind", lag.names);
	return r;
}

/* Drop the segments every standby acknowledged (none if no standby ever
 * did). Called with mu held. */
static int
spool_trim_locked(struct spool *sp, const struct spool_minmax *acks)
{
	size_t dropped = 0;
	int r = 0;

	if (acks->count == 0)
		return 0;
	while (sp->nsegs > 1 && sp->segs[1].first - 1 <= acks->min) {
		r = spool_seg_drop_oldest(sp);
		if (r != 0)
			break;
		dropped++;
	}
	if (dropped > 0 && fs_fsync_dir(sp->dirfd) != 0 && r == 0)
		r = -AR_EIO;
	return r;
}

/* ------------------------------------------------------------------------
 * Appending and committing.
 */

/* The journal refuses writes from now on (see spool_commit_locked). */
static int
spool_fail_locked(struct spool *sp)
{
	sp->err = -AR_EIO;
	sp->err_errno = errno != 0 ? errno : EIO;
	return sp->err;
}

/*
 * Write the buffer at the end of the current segment, starting a new
 * segment whenever the current one reached segment_size, and fdatasync
 * each part before durable_seq moves past it. Any failure is sticky until
 * spool_resume: after a failed fsync the kernel may have dropped the
 * dirty pages and cleared the error, so nothing written after the last
 * good fdatasync can be trusted.
 */
static int
spool_commit_locked(struct spool *sp)
{
	struct spool_seg *cur;
	size_t pos = 0, start, reclen;
	uint64_t last = 0, base;
	int r;

	if (sp->readonly)
		return -AR_ESTATE;
	if (sp->err != 0)
		return sp->err;
	while (pos < sp->buflen) {
		cur = sp->nsegs > 0 ? &sp->segs[sp->nsegs - 1] : NULL;
		if (sp->curfd == -1 || cur == NULL ||
		    (cur->size > SPOOL_REC_SEG_HDR &&
		    cur->size >= sp->segment_size)) {
			errno = 0;
			r = spool_seg_create(sp, spool_rec_seq(sp->buf + pos));
			if (r != 0)
				return spool_fail_locked(sp);
			cur = &sp->segs[sp->nsegs - 1];
		}
		base = cur->size;
		start = pos;
		while (pos < sp->buflen &&
		    (pos == start || base + (pos - start) < sp->segment_size)) {
			reclen = spool_rec_len(sp->buf + pos);
			last = spool_rec_seq(sp->buf + pos);
			pos += reclen;
		}
		errno = 0;
		if (fs_pwrite_full(sp->curfd, sp->buf + start, pos - start,
		    base) != 0 || spool_fdatasync(sp->curfd) != 0)
			return spool_fail_locked(sp);
		cur->size = base + (pos - start);
		assert(last > sp->durable_seq);
		sp->durable_seq = last;
	}
	/* The buffer holds whole records only. */
	assert(pos == sp->buflen);
	sp->buflen = 0;
	/* The records are durable: a failure to enforce the cap is logged
	 * there and retried at the next commit, not reported as a failed
	 * commit. */
	spool_cap_locked(sp);
	return 0;
}

static int
spool_append_locked(struct spool *sp, uint8_t op, const char *path,
    size_t len, const char *path2, size_t len2, uint64_t *seq)
{
	uint64_t now;
	int n, r;

	if (sp->readonly)
		return -AR_ESTATE;
	if (sp->err != 0)
		return sp->err;
	r = spool_rec_check(op, path, len, path2, len2);
	if (r != 0)
		return r;
	if (sp->buflen + SPOOL_REC_MAX > SPOOL_BUF_MAX) {
		r = spool_commit_locked(sp);
		if (r != 0)
			return r;
	}
	n = spool_rec_put(sp->buf + sp->buflen, SPOOL_BUF_MAX - sp->buflen,
	    sp->next_seq, op, spool_realtime_ns(), path, len, path2, len2);
	if (n < 0)
		return n;
	now = util_mono_ns();
	if (sp->buflen == 0)
		sp->buf_since_ns = now;
	sp->buflen += (size_t)n;
	assert(sp->buflen <= SPOOL_BUF_MAX && sp->next_seq > sp->durable_seq);
	if (seq != NULL)
		*seq = sp->next_seq;
	sp->next_seq++;
	/* The group-commit bound, while appends keep coming; the caller's
	 * timer commits an idle buffer. */
	if (now - sp->buf_since_ns >= sp->commit_ns)
		return spool_commit_locked(sp);
	return 0;
}

int
spool_append(struct spool *sp, uint8_t op, const char *path, size_t len,
    const char *path2, size_t len2, uint64_t *seq)
{
	int r;

	pthread_mutex_lock(&sp->mu);
	r = spool_append_locked(sp, op, path, len, path2, len2, seq);
	pthread_mutex_unlock(&sp->mu);
	return r;
}

int
spool_commit(struct spool *sp)
{
	int r;

	pthread_mutex_lock(&sp->mu);
	r = spool_commit_locked(sp);
	pthread_mutex_unlock(&sp->mu);
	return r;
}

/*
 * A segment's name is the seq of its first record: an emptied last
 * segment cannot take a record numbered next past its name. Remove it
 * (the next commit starts a new one); 0 or -AR_EIO with errno.
 */
static int
spool_drop_empty_last(struct spool *sp, uint64_t next)
{
	char name[SPOOL_SEG_NAME_LEN + 1];
	struct spool_seg *cur;

	cur = sp->nsegs > 0 ? &sp->segs[sp->nsegs - 1] : NULL;
	if (cur == NULL || cur->size != SPOOL_REC_SEG_HDR || cur->first == next)
		return 0;
	spool_seg_name(name, cur->first);
	if (unlinkat(sp->dirfd, name, 0) == -1 || fs_fsync_dir(sp->dirfd) != 0)
		return -AR_EIO;
	sp->nsegs--;
	if (sp->curfd != -1)
		close(sp->curfd);
	sp->curfd = -1;
	return 0;
}

/*
 * 1 when the spool's filesystem has room to record again after it ran
 * full: an eighth of it, at most a commit buffer. Resuming on the last
 * bytes of a page would fail again at the next record, and flap.
 */
static int
spool_has_room(struct spool *sp)
{
	struct statvfs vfs;
	uint64_t room, want;

	if (fstatvfs(sp->dirfd, &vfs) != 0)
		return 1;	/* let the write tell */
	room = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	want = (uint64_t)vfs.f_blocks * vfs.f_frsize / 8;
	if (want > SPOOL_BUF_MAX)
		want = SPOOL_BUF_MAX;
	return room >= want;
}

int
spool_resume(struct spool *sp, uint64_t *seq)
{
	struct spool_seg *cur;
	int r;

	pthread_mutex_lock(&sp->mu);
	if (sp->readonly) {
		r = -AR_ESTATE;
		goto out;
	}
	if (sp->err != 0) {
		if (sp->err_errno == ENOSPC && !spool_has_room(sp)) {
			r = sp->err;
			goto out;
		}
		/* The buffered records are lost; their numbers are never
		 * used again. Whatever a failed write left after the last
		 * good fdatasync was never durable nor served: cut it. */
		sp->buflen = 0;
		cur = sp->nsegs > 0 ? &sp->segs[sp->nsegs - 1] : NULL;
		errno = 0;
		if ((cur != NULL && sp->curfd != -1 &&
		    (ftruncate(sp->curfd, (off_t)cur->size) == -1 ||
		    fsync(sp->curfd) == -1)) ||
		    spool_drop_empty_last(sp, sp->next_seq) != 0) {
			r = spool_fail_locked(sp);
			goto out;
		}
		sp->err = 0;
		sp->err_errno = 0;
	}
	r = spool_append_locked(sp, SPOOL_RESCAN, "", 0, NULL, 0, seq);
	if (r == 0)
		r = spool_commit_locked(sp);
out:
	pthread_mutex_unlock(&sp->mu);
	return r;
}

int
spool_failed(struct spool *sp)
{
	int e;

	pthread_mutex_lock(&sp->mu);
	e = sp->err != 0 ? sp->err_errno : 0;
	pthread_mutex_unlock(&sp->mu);
	return e;
}

/* ------------------------------------------------------------------------
 * Opening.
 */

static int
spool_list(struct spool *sp, char *err, size_t errlen)
{
	struct dirent *de;
	uint64_t first;
	DIR *d;
	int fd, r = 0;

	fd = openat(sp->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd == -1 ? NULL : fdopendir(fd);
	if (d == NULL) {
		snprintf(err, errlen, "spool directory '%s': %s", sp->dir,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -AR_ESTATE;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (de == NULL) {
			if (errno != 0) {
				snprintf(err, errlen, "spool directory '%s': "
				    "%s", sp->dir, strerror(errno));
				r = -AR_ESTATE;
			}
			break;
		}
		/* A segment whose creation was cut short never got its
		 * name: its temp file is only litter. */
		if (!sp->readonly && strncmp(de->d_name,
		    FS_TMP_PREFIX "seg-", sizeof FS_TMP_PREFIX + 3) == 0) {
			unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (!spool_seg_parse(de->d_name, &first))
			continue;
		r = spool_segs_push(sp, first, 0);
		if (r != 0) {
			snprintf(err, errlen, "spool directory '%s': too many "
			    "segments", sp->dir);
			break;
		}
	}
	closedir(d);
	if (r == 0 && sp->nsegs > 1)
		qsort(sp->segs, sp->nsegs, sizeof *sp->segs, spool_seg_cmp);
	return r;
}

struct spool_scan {
	uint64_t good_end;	/* offset past the last good record */
	uint64_t last_seq;	/* its seq (first - 1 if none) */
	uint64_t file_end;	/* bytes found */
	const char *why;	/* NULL: clean */
};

/* Find the last good record of the last segment: every record is
 * decoded, checksummed and checked to follow the one before. */
static int
spool_scan_last(int fd, uint64_t first, struct spool_scan *sc)
{
	struct spool_rec *rec;
	struct spool_rd rd;
	struct stat st;
	enum spool_rd_res res;
	uint64_t recoff;
	int r;

	rec = malloc(sizeof *rec);
	memset(&rd, 0, sizeof rd);
	rd.buf = malloc(SPOOL_CHUNK);
	if (rec == NULL || rd.buf == NULL) {
		free(rec);
		free(rd.buf);
		return -AR_ENOMEM;
	}
	rd.fd = fd;
	rd.off = SPOOL_REC_SEG_HDR;
	rd.end = UINT64_MAX;
	sc->good_end = SPOOL_REC_SEG_HDR;
	sc->last_seq = first - 1;
	sc->why = NULL;
	for (;;) {
		r = spool_rd_next(&rd, rec, &recoff, &res);
		if (r == 0 && res == SPOOL_RD_REC) {
			if ((recoff == SPOOL_REC_SEG_HDR &&
			    rec->seq != first) ||
			    (recoff > SPOOL_REC_SEG_HDR &&
			    !spool_seq_follows(sc->last_seq, rec))) {
				sc->why = "record out of sequence";
				break;
			}
			sc->last_seq = rec->seq;
			sc->good_end = rd.off + rd.pos;
			continue;
		}
		if (r == 0 && res == SPOOL_RD_END)
			break;
		if (r == 0)
			sc->why = "torn record";
		else if (r == -AR_EPROTO)
			sc->why = "corrupt record";
		else {
			free(rec);
			free(rd.buf);
			return r;
		}
		break;
	}
	free(rec);
	free(rd.buf);
	/* Everything after the last good record is dropped, however long:
	 * the size is the file's, not what we happened to read. */
	if (fstat(fd, &st) == -1)
		return -AR_EIO;
	sc->file_end = (uint64_t)st.st_size;
	if (sc->file_end < sc->good_end)
		sc->file_end = sc->good_end;
	return 0;
}

static void
spool_ahead_cb(void *arg, const char *id, uint64_t seq, uint64_t mtime_ns)
{
	uint64_t *durable = arg;

	(void)mtime_ns;
	if (seq > *durable)
		log_warn("spool: standby '%s' acknowledged %llu, past the "
		    "journal's end %llu", id, (unsigned long long)seq,
		    (unsigned long long)*durable);
}

/*
 * After a truncation, or when a standby acknowledged more than the
 * journal holds, some standby may hold seqs whose records are gone. The
 * next record is a RESCAN of the whole tree numbered past all of them:
 * past every record the dropped bytes could have held (none is shorter
 * than SPOOL_REC_MIN) and past every ack. Whoever stands anywhere in the
 * lost range reads that RESCAN next and does a full compare.
 */
static int
spool_recover(struct spool *sp, uint64_t dropped, char *err, size_t errlen)
{
	struct spool_minmax acks;
	uint64_t next;
	int r;

	memset(&acks, 0, sizeof acks);
	if (spool_acks_each(sp->acksfd, spool_minmax_cb, &acks) != 0) {
		snprintf(err, errlen, "spool directory '%s': cannot list "
		    "'%s': %s", sp->dir, SPOOL_ACKS_DIR, strerror(errno));
		return -AR_ESTATE;
	}
	if (dropped == 0 && (acks.count == 0 || acks.max <= sp->durable_seq))
		return 0;
	if (acks.count > 0 && acks.max > sp->durable_seq)
		spool_acks_each(sp->acksfd, spool_ahead_cb, &sp->durable_seq);
	next = sp->durable_seq + (dropped + SPOOL_REC_MIN - 1) / SPOOL_REC_MIN;
	if (acks.count > 0 && acks.max > next)
		next = acks.max;
	next++;

	if (spool_drop_empty_last(sp, next) != 0) {
		snprintf(err, errlen, "spool directory '%s': cannot remove "
		    "its empty last segment: %s", sp->dir, strerror(errno));
		return -AR_EIO;
	}
	log_warn("spool: records %llu to %llu may be lost; a full compare "
	    "(RESCAN at %llu) follows", (unsigned long long)sp->durable_seq + 1,
	    (unsigned long long)next - 1, (unsigned long long)next);
	sp->next_seq = next;
	r = spool_append_locked(sp, SPOOL_RESCAN, "", 0, NULL, 0, NULL);
	if (r == 0)
		r = spool_commit_locked(sp);
	if (r != 0) {
		snprintf(err, errlen, "spool directory '%s': cannot write the "
		    "recovery record: %s", sp->dir, strerror(errno));
		return r;
	}
	return 0;
}

static int
spool_open_acks(struct spool *sp, char *err, size_t errlen)
{
	int created = 0;

	if (!sp->readonly) {
		if (mkdirat(sp->dirfd, SPOOL_ACKS_DIR, 0700) == 0)
			created = 1;
		else if (errno != EEXIST)
			goto fail;
	}
	sp->acksfd = openat(sp->dirfd, SPOOL_ACKS_DIR,
	    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (sp->acksfd == -1) {
		if (sp->readonly && errno == ENOENT)
			return 0;
		goto fail;
	}
	if (created && fs_fsync_dir(sp->dirfd) != 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "spool directory '%s': '%s': %s", sp->dir,
	    SPOOL_ACKS_DIR, strerror(errno));
	return -AR_ESTATE;
}

/* Check every header; scan and repair the last segment. */
static int
spool_open_segs(struct spool *sp, char *err, size_t errlen)
{
	char name[SPOOL_SEG_NAME_LEN + 1];
	struct spool_scan sc;
	struct spool_seg *s;
	size_t i;
	int fd, r;

	for (i = 0; i < sp->nsegs; i++) {
		s = &sp->segs[i];
		spool_seg_name(name, s->first);
		fd = openat(sp->dirfd, name, ((sp->readonly ||
		    i + 1 < sp->nsegs) ? O_RDONLY : O_RDWR) | O_CLOEXEC |
		    O_NOFOLLOW);
		if (fd == -1) {
			snprintf(err, errlen, "spool segment '%s/%s': %s",
			    sp->dir, name, strerror(errno));
			return -AR_ESTATE;
		}
		r = spool_header_check(fd, &s->size);
		if (r != 0) {
			snprintf(err, errlen, "spool segment '%s/%s': %s",
			    sp->dir, name, r == -AR_EIO ? strerror(errno) :
			    r == -AR_EVERSION ? "unsupported format version" :
			    "not a spool segment (bad header)");
			close(fd);
			return -AR_ESTATE;
		}
		if (i + 1 < sp->nsegs) {
			close(fd);
			continue;
		}

		r = spool_scan_last(fd, s->first, &sc);
		if (r != 0) {
			snprintf(err, errlen, "spool segment '%s/%s': %s",
			    sp->dir, name, strerror(errno));
			close(fd);
			return -AR_ESTATE;
		}
		sp->durable_seq = sc.last_seq;
		s->size = sc.good_end;
		if (sc.why != NULL || sc.file_end > sc.good_end) {
			log_warn("spool segment '%s/%s': %s at offset %llu; "
			    "%s %llu byte(s) after seq %llu", sp->dir, name,
			    sc.why != NULL ? sc.why : "trailing bytes",
			    (unsigned long long)sc.good_end,
			    sp->readonly ? "ignoring" : "dropping",
			    (unsigned long long)(sc.file_end - sc.good_end),
			    (unsigned long long)sc.last_seq);
		}
		if (sp->readonly) {
			close(fd);
			break;
		}
		sp->curfd = fd;
		if (sc.file_end > sc.good_end) {
			if (ftruncate(fd, (off_t)sc.good_end) == -1 ||
			    fsync(fd) == -1) {
				snprintf(err, errlen, "spool segment '%s/%s': "
				    "cannot truncate: %s", sp->dir, name,
				    strerror(errno));
				return -AR_EIO;
			}
			return spool_recover(sp, sc.file_end - sc.good_end,
			    err, errlen);
		}
	}
	if (sp->nsegs == 0)
		sp->durable_seq = 0;
	if (!sp->readonly)
		return spool_recover(sp, 0, err, errlen);
	return 0;
}

int
spool_open(const char *dir, const struct spool_opts *opts,
    struct spool **out, char *err, size_t errlen)
{
	struct spool *sp;
	int r;

	*out = NULL;
	sp = calloc(1, sizeof *sp);
	if (sp == NULL) {
		snprintf(err, errlen, "out of memory");
		return -AR_ENOMEM;
	}
	sp->dirfd = sp->acksfd = sp->curfd = -1;
	sp->readonly = opts != NULL && opts->readonly;
	sp->segment_size = opts != NULL && opts->segment_size != 0 ?
	    opts->segment_size : SPOOL_DEF_SEGMENT;
	sp->max_size = opts != NULL && opts->max_size != 0 ?
	    opts->max_size : SPOOL_DEF_MAX;
	sp->commit_ns = opts != NULL && opts->commit_ns != 0 ?
	    opts->commit_ns : SPOOL_DEF_COMMIT_NS;
	sp->dir = strndup(dir, 4096);
	if (sp->dir == NULL || pthread_mutex_init(&sp->mu, NULL) != 0) {
		free(sp->dir);
		free(sp);
		snprintf(err, errlen, "out of memory");
		return -AR_ENOMEM;
	}
	if (pthread_mutex_init(&sp->ackmu, NULL) != 0) {
		pthread_mutex_destroy(&sp->mu);
		free(sp->dir);
		free(sp);
		snprintf(err, errlen, "out of memory");
		return -AR_ENOMEM;
	}
	if (!sp->readonly) {
		sp->buf = malloc(SPOOL_BUF_MAX);
		if (sp->buf == NULL) {
			snprintf(err, errlen, "out of memory");
			r = -AR_ENOMEM;
			goto fail;
		}
	}
	if (fs_open_dir(dir, &sp->dirfd) != 0) {
		snprintf(err, errlen, "spool directory '%s': %s", dir,
		    strerror(errno));
		r = -AR_ESTATE;
		goto fail;
	}
	r = spool_open_acks(sp, err, errlen);
	if (r == 0)
		r = spool_list(sp, err, errlen);
	if (r == 0)
		r = spool_open_segs(sp, err, errlen);
	if (r != 0)
		goto fail;
	if (sp->next_seq <= sp->durable_seq)
		sp->next_seq = sp->durable_seq + 1;
	*out = sp;
	return 0;
fail:
	/* Nothing half-done must be committed on the way out. */
	sp->buflen = 0;
	sp->readonly = 1;
	spool_close(sp);
	return r;
}

void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	if (!sp->readonly && sp->acksfd != -1)
		spool_ack_flush(sp, 1);
	pthread_mutex_lock(&sp->mu);
	if (!sp->readonly && sp->err == 0 && sp->buflen > 0 &&
	    spool_commit_locked(sp) != 0)
		log_error("spool: records lost at close: the last commit "
		    "failed");
	pthread_mutex_unlock(&sp->mu);
	if (sp->curfd != -1)
		close(sp->curfd);
	if (sp->acksfd != -1)
		close(sp->acksfd);
	if (sp->dirfd != -1)
		close(sp->dirfd);
	pthread_mutex_destroy(&sp->ackmu);
	pthread_mutex_destroy(&sp->mu);
	free(sp->segs);
	free(sp->buf);
	free(sp->dir);
	free(sp);
}

/* ------------------------------------------------------------------------
 * Positions and size.
 */

uint64_t
spool_durable_seq(struct spool *sp)
{
	uint64_t v;

	pthread_mutex_lock(&sp->mu);
	v = sp->durable_seq;
	pthread_mutex_unlock(&sp->mu);
	return v;
}

uint64_t
spool_first_seq(struct spool *sp)
{
	uint64_t v;

	pthread_mutex_lock(&sp->mu);
	v = spool_first_locked(sp);
	pthread_mutex_unlock(&sp->mu);
	return v;
}

uint64_t
spool_size(struct spool *sp)
{
	uint64_t total = 0;
	size_t i;

	pthread_mutex_lock(&sp->mu);
	for (i = 0; i < sp->nsegs; i++)
		total += sp->segs[i].size;
	pthread_mutex_unlock(&sp->mu);
	return total;
}

/* ------------------------------------------------------------------------
 * Reading.
 */

/*
 * Under mu: open the segment to read next (the one holding seq when
 * prev_first is 0, else the one after prev_first) and snapshot its
 * durable end. Returns 0 (*fd -1 when there is none), -AR_ESTATE when
 * it was trimmed meanwhile, or -AR_EIO.
 */
static int
spool_read_seg(struct spool *sp, uint64_t seq, uint64_t prev_first, int *fd,
    uint64_t *first, uint64_t *end)
{
	char name[SPOOL_SEG_NAME_LEN + 1];
	size_t i;
	int r = 0;

	*fd = -1;
	pthread_mutex_lock(&sp->mu);
	if (sp->nsegs == 0)
		goto out;
	if (prev_first == 0) {
		if (seq < sp->segs[0].first) {
			r = -AR_ESTATE;
			goto out;
		}
		i = spool_seg_find(sp, seq);
	} else {
		/* The segment just read was dropped by the cap meanwhile:
		 * the ones after it may have gone too. */
		if (prev_first < sp->segs[0].first) {
			r = -AR_ESTATE;
			goto out;
		}
		i = spool_seg_find(sp, prev_first);
		if (sp->segs[i].first <= prev_first)
			i++;
		if (i >= sp->nsegs)
			goto out;
	}
	*first = sp->segs[i].first;
	/* The last segment ends at its durable end; an earlier one at its
	 * end of file, so a reader does not depend on a size it may have
	 * cached (NFS) and a torn earlier segment is noticed. */
	*end = i + 1 == sp->nsegs ? sp->segs[i].size : UINT64_MAX;
	spool_seg_name(name, *first);
	*fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (*fd == -1) {
		log_error("spool segment '%s/%s': %s", sp->dir, name,
		    strerror(errno));
		r = -AR_EIO;
	}
out:
	pthread_mutex_unlock(&sp->mu);
	return r;
}

int
spool_read(struct spool *sp, uint64_t after, uint64_t upto,
    spool_rec_cb *cb, void *arg)
{
	struct spool_rec *rec = NULL;
	struct spool_rd rd;
	enum spool_rd_res res;
	uint64_t durable, first, seg = 0, prev = 0, recoff;
	const char *why;
	int fd, r, done = 0;

	pthread_mutex_lock(&sp->mu);
	durable = sp->durable_seq;
	first = spool_first_locked(sp);
	pthread_mutex_unlock(&sp->mu);
	/* A position past the end was given by a journal that is gone (or
	 * by a confused peer): only a full compare can tell what it holds. */
	if (after > durable)
		return -AR_ESTATE;
	if (after + 1 < first)
		return -AR_ESTATE;
	if (upto > durable)
		upto = durable;
	if (after >= upto)
		return 0;
	assert(after < upto && upto <= durable);

	memset(&rd, 0, sizeof rd);
	rec = malloc(sizeof *rec);
	rd.buf = malloc(SPOOL_CHUNK);
	if (rec == NULL || rd.buf == NULL) {
		r = -AR_ENOMEM;
		goto out;
	}
	r = 0;
	while (!done) {
		r = spool_read_seg(sp, after + 1, seg, &fd, &seg, &rd.end);
		if (r != 0 || fd == -1)
			break;
		rd.fd = fd;
		rd.off = SPOOL_REC_SEG_HDR;
		rd.pos = rd.have = 0;
		rd.eof = 0;
		for (;;) {
			r = spool_rd_next(&rd, rec, &recoff, &res);
			if (r == 0 && res == SPOOL_RD_END)
				break;
			why = NULL;
			if (r == 0 && res == SPOOL_RD_REC &&
			    ((recoff == SPOOL_REC_SEG_HDR && rec->seq != seg) ||
			    (prev != 0 && !spool_seq_follows(prev, rec))))
				why = "record out of sequence";
			else if (r == 0 && res == SPOOL_RD_TORN)
				why = "torn record";
			else if (r == -AR_EPROTO)
				why = "corrupt record";
			else if (r == -AR_EIO)
				why = strerror(errno);
			if (why != NULL) {
				log_error("spool segment '%s/seg-%016llx.log': "
				    "%s at offset %llu", sp->dir,
				    (unsigned long long)seg, why,
				    (unsigned long long)recoff);
				r = r == -AR_EIO ? -AR_EIO : -AR_ESTATE;
				done = 1;
				break;
			}
			prev = rec->seq;
			if (rec->seq > upto) {
				done = 1;
				break;
			}
			assert(r == 0 && res == SPOOL_RD_REC);
			if (rec->seq > after) {
				r = cb(arg, rec);
				if (r != 0) {
					done = 1;
					break;
				}
			}
			if (rec->seq == upto) {
				done = 1;
				break;
			}
		}
		close(fd);
	}
	/* Every record up to upto was durable when we started: if one was
	 * not found, the journal has lost it. */
	if (r == 0 && prev < upto) {
		log_error("spool '%s': records %llu to %llu are missing",
		    sp->dir, (unsigned long long)prev + 1,
		    (unsigned long long)upto);
		r = -AR_ESTATE;
	}
out:
	free(rec);
	free(rd.buf);
	return r;
}

/* ------------------------------------------------------------------------
 * Acknowledgements.
 */

/*
 * An ack file's mtime says when its standby last asked (a rescue waits
 * only for those that asked within standby_expiry): a standby that asks
 * from the same place, on a quiet tree, refreshes it hourly. No fsync:
 * after a crash the time is at worst an hour older. Returns 0 or the
 * errno of a refresh that failed.
 */
static int
spool_ack_touch(int acksfd, const char *id)
{
	struct timespec now;
	struct stat st;

	clock_gettime(CLOCK_REALTIME, &now);
	if (fstatat(acksfd, id, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    now.tv_sec - st.st_mtim.tv_sec < SPOOL_ACK_TOUCH_S)
		return 0;
	if (utimensat(acksfd, id, NULL, AT_SYMLINK_NOFOLLOW) != 0)
		return errno != 0 ? errno : EIO;
	return 0;
}

/*
 * Under ackmu: whether an ack was saved (e == 0) or why not. Every poll
 * of every standby tries again: one line per condition, not per try.
 */
static void
spool_ack_saved(struct spool *sp, const char *id, int e)
{
	if (e != 0 && e != sp->ack_errno)
		log_error("spool: cannot save the position of standby '%s': "
		    "%s", id, strerror(e));
	else if (e == 0 && sp->ack_errno != 0)
		log_info("spool: the positions of standbys are saved again");
	sp->ack_errno = e;
}

/* Under ackmu, once id's file holds its latest position: whatever was
 * put off for it is not to be written over that. */
static void
spool_ack_forget(struct spool *sp, const char *id)
{
	size_t n;

	for (n = 0; n < SPOOL_ACK_PENDING; n++)
		if (strcmp(sp->pend[n].id, id) == 0)
			sp->pend[n].id[0] = '\0';
}

/*
 * Write id's ack file. A direct ack is the standby's latest word: once
 * it is written, any position of its put off before is forgotten, or a
 * flush would later write that older one over it; one that is refused
 * or fails leaves what was put off. A flush (flushing) writes only what
 * is still put off: if a direct ack came since, or a later one was put
 * off, its copy is stale and nothing is written.
 */
static int
spool_ack_write(struct spool *sp, const char *id, uint64_t seq, int flushing)
{
	struct spool_minmax acks;
	char line[SPOOL_ACK_FILE_MAX];
	int n, r, e, pending = 0;

	if (!spool_id_valid(id))
		return -AR_EPROTO;
	pthread_mutex_lock(&sp->ackmu);
	for (n = 0; n < SPOOL_ACK_PENDING; n++)
		if (strcmp(sp->pend[n].id, id) == 0 &&
		    sp->pend[n].seq == seq)
			pending = 1;
	if (flushing && !pending) {
		r = 0;
		goto out;
	}
	pthread_mutex_lock(&sp->mu);
	/* A journal that cannot write does not stop acks: they are files
	 * of their own, and durable_seq is still what was made durable. */
	if (sp->readonly)
		r = -AR_ESTATE;
	else if (seq > sp->durable_seq)
		r = -AR_EPROTO;	/* nobody was sent that */
	else
		r = 0;
	pthread_mutex_unlock(&sp->mu);
	if (r != 0)
		goto out;

	n = snprintf(line, sizeof line, "%llu\n", (unsigned long long)seq);
	if (n <= 0 || (size_t)n >= sizeof line) {
		r = -AR_EINTERNAL;
		goto out;
	}
	/* A standby asks again from the same place after every idle
	 * long-poll: no fsync when nothing moved. */
	{
		char cur[SPOOL_ACK_FILE_MAX];
		size_t clen;

		if (fs_read_entry(sp->acksfd, id, cur, sizeof cur, &clen) ==
		    0 && clen == (size_t)n && memcmp(cur, line, clen) == 0) {
			e = spool_ack_touch(sp->acksfd, id);
			if (e != 0)
				spool_ack_saved(sp, id, e);
			spool_ack_forget(sp, id);
			goto out;
		}
	}
	r = fs_write_durable(sp->acksfd, id, line, (size_t)n, 0644);
	spool_ack_saved(sp, id, r == 0 ? 0 : errno != 0 ? errno : EIO);
	if (r != 0) {
		r = -AR_EIO;
		goto out;
	}
	spool_ack_forget(sp, id);
	memset(&acks, 0, sizeof acks);
	if (spool_acks_each(sp->acksfd, spool_minmax_cb, &acks) != 0) {
		/* Saved; trimming waits for the next ack. */
		log_warn("spool: cannot list the acks: %s", strerror(errno));
		goto out;
	}
	pthread_mutex_lock(&sp->mu);
	if (spool_trim_locked(sp, &acks) != 0)
		log_warn("spool: trimming failed; retried at the next ack");
	spool_cap_locked(sp);
	pthread_mutex_unlock(&sp->mu);
out:
	pthread_mutex_unlock(&sp->ackmu);
	return r;
}

int
spool_ack(struct spool *sp, const char *id, uint64_t seq)
{
	return spool_ack_write(sp, id, seq, 0);
}

/* 1 if the ack file of id was written less than SPOOL_ACK_BUSY_MS
 * ago. */
static int
spool_ack_recent(struct spool *sp, const char *id)
{
	struct timespec now;
	struct stat st;
	int64_t age_ms;

	if (sp->acksfd >= 0 && fstatat(sp->acksfd, id, &st,
	    AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    clock_gettime(CLOCK_REALTIME, &now) == 0) {
		age_ms = ((int64_t)now.tv_sec - (int64_t)st.st_mtim.tv_sec) *
		    1000 + ((int64_t)now.tv_nsec - st.st_mtim.tv_nsec) /
		    1000000;
		/* A clock set back makes a file look new: not for long. */
		return age_ms >= 0 && age_ms < SPOOL_ACK_BUSY_MS;
	}
	return 0;
}

int
spool_ack_busy(struct spool *sp, const char *id, uint64_t seq)
{
	size_t i, free_i = SPOOL_ACK_PENDING;

	if (!spool_id_valid(id))
		return -AR_EPROTO;
	if (spool_ack_recent(sp, id)) {
		pthread_mutex_lock(&sp->ackmu);
		for (i = 0; i < SPOOL_ACK_PENDING; i++) {
			if (strcmp(sp->pend[i].id, id) == 0)
				break;
			if (sp->pend[i].id[0] == '\0' &&
			    free_i == SPOOL_ACK_PENDING)
				free_i = i;
		}
		if (i == SPOOL_ACK_PENDING)
			i = free_i;
		if (i < SPOOL_ACK_PENDING) {
			memcpy(sp->pend[i].id, id, strlen(id) + 1);
			sp->pend[i].seq = seq;
		}
		pthread_mutex_unlock(&sp->ackmu);
		/* Put off; with no room, written at once. */
		if (i < SPOOL_ACK_PENDING)
			return 0;
	}
	return spool_ack(sp, id, seq);
}

void
spool_ack_flush(struct spool *sp, int all)
{
	struct spool_ack_pending p[SPOOL_ACK_PENDING];
	size_t i, n = 0;

	pthread_mutex_lock(&sp->ackmu);
	for (i = 0; i < SPOOL_ACK_PENDING; i++)
		if (sp->pend[i].id[0] != '\0')
			p[n++] = sp->pend[i];
	pthread_mutex_unlock(&sp->ackmu);
	/* Each written only if still put off (spool_ack_write). */
	for (i = 0; i < n; i++)
		if (all || !spool_ack_recent(sp, p[i].id))
			(void)spool_ack_write(sp, p[i].id, p[i].seq, 1);
}

int
spool_ack_held(struct spool *sp, const char *id)
{
	struct stat st;

	return spool_id_valid(id) && sp->acksfd >= 0 &&
	    fstatat(sp->acksfd, id, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode);
}

int
spool_acks(struct spool *sp, spool_ack_cb *cb, void *arg)
{
	/* Ack files are replaced by rename, so a listing needs no lock. */
	return spool_acks_each(sp->acksfd, cb, arg);
}

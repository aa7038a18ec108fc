/*
 * reverify.c: the primary's background re-verification of the block
 * cache (SPOOL.md "Block cache", reverify_rate in asyncrep.conf(5)).
 *
 * The append path trusts that a file was only appended to since its
 * cache entry was made from a whole read; a rewrite of the prefix in
 * between cannot be seen without reading it. This thread reads, at
 * most reverify_rate bytes a second, the files whose entries the append
 * path extended (BLOCKS_F_APPENDED), and compares their blocks with the
 * entry: a mismatch drops the entry and records a change of the path,
 * so the standby asks again, its root no longer matches, and it takes
 * the general path. An entry that matches loses the flag. Entries of
 * files that are gone or replaced are removed on the way.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blocks.h"
#include "error.h"
#include "fs.h"
#include "log.h"
#include "reverify.h"
#include "util.h"

/* Bytes read between two checks of the rate and of a stop. */
#define REVERIFY_CHUNK (1024u * 1024)
/* Pause between two passes over the cache. */
#define REVERIFY_PASS_NS (2000u * 1000 * 1000)

struct reverify {
	struct reverify_opts o;
	int cachefd;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
};

/* Wait ns, or less when stopped; returns 1 when stopping. */
static int
reverify_sleep(struct reverify *rv, uint64_t ns)
{
	struct timespec ts;
	int stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ns / 1000000000u);
	ts.tv_nsec += (long)(ns % 1000000000u);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&rv->lock);
	if (!rv->stop)
		(void)pthread_cond_timedwait(&rv->cond, &rv->lock, &ts);
	stop = rv->stop;
	pthread_mutex_unlock(&rv->lock);
	return stop;
}

/* Hash the first b->size bytes of fd at the rate into b (open, empty);
 * -AR_ECHANGED when the file is shorter, -AR_ESIGNAL when stopping. */
static int
reverify_hash(struct reverify *rv, int fd, uint64_t size, struct blocks *b,
    uint8_t *buf)
{
	uint64_t off = 0, start = util_mono_ns(), due, now;
	size_t want;
	int r;

	while (off < size) {
		want = size - off < REVERIFY_CHUNK ? (size_t)(size - off) :
		    REVERIFY_CHUNK;
		r = blocks_update_fd(b, fd, off, off + want, buf, want);
		if (r != 0)
			return r;
		off += want;
		/* off bytes are due at start + off / rate. */
		due = start + off / rv->o.rate * 1000000000u +
		    off % rv->o.rate * 1000000000u / rv->o.rate;
		now = util_mono_ns();
		if (reverify_sleep(rv, due > now ? due - now : 0))
			return -AR_ESIGNAL;
	}
	return blocks_end(b);
}

/* 1 if the entry name no longer describes the version m did. */
static int
reverify_moved_on(struct reverify *rv, const char *name,
    const struct blocks_meta *m)
{
	struct blocks_meta *m2 = malloc(sizeof(*m2));
	struct blocks b2;
	int moved = 0;

	if (m2 == NULL)
		return 0;
	if (blocks_store_load(rv->cachefd, name, m2, &b2) == 0)
		moved = m2->size != m->size || m2->mtime_sec != m->mtime_sec ||
		    m2->mtime_nsec != m->mtime_nsec || m2->flags != m->flags;
	blocks_release(&b2);
	free(m2);
	return moved;
}

/* Check one entry of the cache. */
static int
reverify_entry(struct reverify *rv, const char *name, struct blocks_meta *m,
    uint8_t *buf)
{
	struct blocks b, now;
	struct stat st;
	char esc[LOG_ESC_MAX];
	int fd = -1, r, bad = 0;

	r = blocks_store_load(rv->cachefd, name, m, &b);
	if (r == -AR_EPROTO)
		log_warn("block cache: '%s' is corrupt: removed", name);
	if (r != 0 || m->path_len == 0 ||
	    fs_open_beneath(rv->o.rootfd, m->path, O_RDONLY | O_NONBLOCK, 0,
	    &fd) != 0 || fstat(fd, &st) != 0 ||
	    (uint64_t)st.st_dev != m->dev || (uint64_t)st.st_ino != m->ino) {
		/* Corrupt, gone or replaced: of no use (the cache holds no
		 * more entries than the tree has big files). */
		(void)unlinkat(rv->cachefd, name, 0);
		r = 0;
		goto out;
	}
	/* The entry of the version before the latest (".p", kept by the
	 * changed-blocks path) describes no current version: not hashed. */
	if (!(m->flags & BLOCKS_F_APPENDED) || strchr(name, '.') != NULL)
		goto out;
	r = blocks_init(&now);
	if (r == 0)
		r = reverify_hash(rv, fd, m->size, &now, buf);
	if (r == 0)
		bad = now.n != b.n || memcmp(now.h, b.h, b.n *
		    BLOCKS_HASH_LEN) != 0;
	else if (r == -AR_ECHANGED)
		bad = 1;		/* shrunk under the entry */
	blocks_release(&now);
	if (r == -AR_ESIGNAL)
		goto out;
	if (bad && reverify_moved_on(rv, name, m)) {
		/* Replaced while hashed (a changed-blocks or delta answer
		 * hashed the file whole since): that entry is not ours to
		 * judge, and the change that replaced it is recorded. */
		r = 0;
		goto out;
	}
	if (bad) {
		(void)unlinkat(rv->cachefd, name, 0);
		log_warn("block cache: '%s' was rewritten, not only appended "
		    "to: the standbys take it again", log_escape(m->path,
		    m->path_len, esc, sizeof(esc)));
		rv->o.changed(rv->o.arg, m->path, m->path_len);
		r = 0;
		goto out;
	}
	if (r == 0) {
		struct blocks_meta *m2 = malloc(sizeof(*m2));
		struct blocks_disk d;
		struct blocks b2;

		/* Verified: the flag goes, unless the entry moved on (the
		 * header only, in place, while the file is as read). */
		if (m2 != NULL && blocks_store_read(rv->cachefd, name, m2,
		    &b2, &d) == 0 && m2->size == m->size) {
			m2->flags &= ~(uint32_t)BLOCKS_F_APPENDED;
			(void)blocks_store_write(rv->cachefd, name, m2, &b2,
			    &d);
		}
		if (m2 != NULL)
			blocks_release(&b2);
		free(m2);
	}
out:
	if (fd >= 0)
		close(fd);
	blocks_release(&b);
	return r == -AR_ESIGNAL ? r : 0;
}

static void *
reverify_main(void *arg)
{
	struct reverify *rv = arg;
	struct blocks_meta *m = malloc(sizeof(*m));
	uint8_t *buf = malloc(REVERIFY_CHUNK);
	struct dirent *de;
	DIR *d;

	while (m != NULL && buf != NULL && !reverify_sleep(rv,
	    REVERIFY_PASS_NS)) {
		if (fs_opendir(rv->cachefd, &d) != 0)
			continue;
		for (;;) {
			de = readdir(d);
			if (de == NULL)
				break;
			if (de->d_name[0] == '.')
				continue;
			if (reverify_entry(rv, de->d_name, m, buf) != 0)
				break;
		}
		closedir(d);
	}
	free(m);
	free(buf);
	return NULL;
}

int
reverify_start(const struct reverify_opts *o, struct reverify **out)
{
	struct reverify *rv;

	*out = NULL;
	if (o->rate == 0 || o->cache_dir == NULL)
		return 0;
	rv = calloc(1, sizeof(*rv));
	if (rv == NULL)
		return -AR_ENOMEM;
	rv->o = *o;
	if (fs_open_dir(o->cache_dir, &rv->cachefd) != 0) {
		free(rv);
		return -AR_EIO;
	}
	pthread_mutex_init(&rv->lock, NULL);
	pthread_cond_init(&rv->cond, NULL);
	if (pthread_create(&rv->thread, NULL, reverify_main, rv) != 0) {
		close(rv->cachefd);
		free(rv);
		return -AR_EINTERNAL;
	}
	*out = rv;
	return 0;
}

void
reverify_stop(struct reverify *rv)
{
	if (rv == NULL)
		return;
	pthread_mutex_lock(&rv->lock);
	rv->stop = 1;
	pthread_cond_broadcast(&rv->cond);
	pthread_mutex_unlock(&rv->lock);
	pthread_join(rv->thread, NULL);
	pthread_mutex_destroy(&rv->lock);
	pthread_cond_destroy(&rv->cond);
	close(rv->cachefd);
	free(rv);
}

/*
 * gen.c: the generation of a primary incarnation (gen.h): the files
 * generation, lock and rescued in spool_dir, and starting afresh.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "error.h"
#include "fs.h"
#include "gen.h"
#include "log.h"
#include "source.h"
#include "util.h"
#include "walk.h"

#define GEN_FILE "generation"
#define LOCK_FILE "lock"

int
gen_valid(const char *s)
{
	/* limit_gen_valid stops at the first byte that is not hex, so a
	 * shorter string is never read past its NUL. */
	return limit_gen_valid(s, LIMIT_GEN_LEN) &&
	    (s[LIMIT_GEN_LEN] == '\0' || s[LIMIT_GEN_LEN] == '\n');
}

/*
 * Take the spool's lock (util_lock), or explain in err why not: a second
 * primary on the same spool, or an unusable directory.
 */
static int
gen_lock(int dirfd, const char *spool_dir, int *lockfd, char *err,
    size_t errlen)
{
	if (util_lock(dirfd, LOCK_FILE, 1, lockfd) == 0)
		return 0;
	snprintf(err, errlen, "spool directory '%s': %s", spool_dir,
	    errno == EWOULDBLOCK ? "locked by another asyncrep process" :
	    strerror(errno));
	return -AR_ESTATE;
}

/* spool_dir/name, a file of the spool itself: never a symlink, which
 * under --root could lead out of the storage. */
static int
gen_read_entry(const char *spool_dir, const char *name, char *buf,
    size_t buflen, size_t *len)
{
	int dirfd, r, saved;

	if (fs_open_dir(spool_dir, &dirfd) != 0)
		return -AR_EIO;
	r = fs_read_entry(dirfd, name, buf, buflen, len);
	saved = errno;
	close(dirfd);
	errno = saved;
	return r;
}

static int
gen_create(int dirfd, char out[LIMIT_GEN_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[LIMIT_GEN_LEN / 2];
	char line[LIMIT_GEN_LEN + 2];
	size_t i;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -AR_EIO;
	for (i = 0; i < sizeof(rnd); i++) {
		out[2 * i] = hex[rnd[i] >> 4];
		out[2 * i + 1] = hex[rnd[i] & 0xf];
	}
	out[LIMIT_GEN_LEN] = '\0';
	assert(gen_valid(out));
	memcpy(line, out, LIMIT_GEN_LEN);
	line[LIMIT_GEN_LEN] = '\n';
	return fs_write_durable(dirfd, GEN_FILE, line, LIMIT_GEN_LEN + 1, 0644);
}

int
gen_lock_dir(const char *spool_dir, int *dirfd, int *lockfd, char *err,
    size_t errlen)
{
	int fd;

	assert(spool_dir != NULL && dirfd != NULL && lockfd != NULL);
	*dirfd = -1;
	*lockfd = -1;
	if (fs_mkdir_p(spool_dir, 0700) != 0 ||
	    fs_open_dir(spool_dir, dirfd) != 0) {
		snprintf(err, errlen, "spool directory '%s': %s", spool_dir,
		    strerror(errno));
		*dirfd = -1;
		return -AR_ESTATE;
	}
	if (gen_lock(*dirfd, spool_dir, &fd, err, errlen) != 0) {
		close(*dirfd);
		*dirfd = -1;
		return -AR_ESTATE;
	}
	if (faccessat(*dirfd, GEN_RESCUED_FILE, F_OK, AT_SYMLINK_NOFOLLOW) ==
	    0) {
		snprintf(err, errlen, "spool directory '%s': its generation "
		    "was closed by a rescue (see '%s'); the standby now holds "
		    "the data: re-initialise with asyncrep watch --reinit",
		    spool_dir, GEN_RESCUED_FILE);
		close(*dirfd);
		close(fd);
		*dirfd = -1;
		return -AR_EFENCED;
	}
	*lockfd = fd;
	return 0;
}

int
gen_exists(int dirfd)
{
	return faccessat(dirfd, GEN_FILE, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int
gen_load(int dirfd, const char *spool_dir,
    char generation[LIMIT_GEN_LEN + 1], char *err, size_t errlen)
{
	char buf[128];
	size_t len;
	int r;

	r = fs_read_entry(dirfd, GEN_FILE, buf, sizeof(buf), &len);
	if (r != 0 && errno == ENOENT) {
		r = gen_create(dirfd, generation);
		if (r != 0)
			snprintf(err, errlen, "spool directory '%s': cannot "
			    "write the generation: %s", spool_dir,
			    strerror(errno));
	} else if (r != 0) {
		snprintf(err, errlen, "spool directory '%s': cannot read "
		    "'%s': %s", spool_dir, GEN_FILE, strerror(errno));
	} else if (len < LIMIT_GEN_LEN || !gen_valid(buf)) {
		snprintf(err, errlen, "spool directory '%s': '%s' is corrupt "
		    "(expected %d hex characters)", spool_dir, GEN_FILE,
		    LIMIT_GEN_LEN);
		r = -AR_ESTATE;
	} else {
		memcpy(generation, buf, LIMIT_GEN_LEN);
		generation[LIMIT_GEN_LEN] = '\0';
	}
	return r < 0 ? -AR_ESTATE : r;
}

int
gen_open(const char *spool_dir, int *lockfd,
    char generation[LIMIT_GEN_LEN + 1], char *err, size_t errlen)
{
	int dirfd, r;

	assert(generation != NULL);
	r = gen_lock_dir(spool_dir, &dirfd, lockfd, err, errlen);
	if (r != 0)
		return r;
	r = gen_load(dirfd, spool_dir, generation, err, errlen);
	close(dirfd);
	if (r != 0) {
		close(*lockfd);
		*lockfd = -1;
	}
	return r;
}

int
gen_read(const char *spool_dir, char generation[LIMIT_GEN_LEN + 1],
    char *err, size_t errlen)
{
	char buf[128];
	size_t len;

	if (gen_read_entry(spool_dir, GEN_FILE, buf, sizeof(buf), &len) != 0) {
		snprintf(err, errlen, "spool '%s': cannot read '%s': %s",
		    spool_dir, GEN_FILE, strerror(errno));
		return -AR_ESTORAGE;
	}
	if (len < LIMIT_GEN_LEN || !gen_valid(buf)) {
		snprintf(err, errlen, "spool '%s': '%s' is corrupt", spool_dir,
		    GEN_FILE);
		return -AR_ESTATE;
	}
	memcpy(generation, buf, LIMIT_GEN_LEN);
	generation[LIMIT_GEN_LEN] = '\0';
	return 0;
}

int
gen_fence(const char *spool_dir, const char *report, size_t len)
{
	int dirfd, r;

	if (fs_open_dir(spool_dir, &dirfd) != 0)
		return -AR_ESTORAGE;
	r = fs_write_durable(dirfd, GEN_RESCUED_FILE, report, len, 0644);
	close(dirfd);
	return r;
}

int
gen_fenced(const char *spool_dir, char *buf, size_t buflen)
{
	size_t len;

	if (gen_read_entry(spool_dir, GEN_RESCUED_FILE, buf, buflen, &len) !=
	    0)
		return 0;
	return 1;
}

/* Remove dirfd's entries named PREFIX*; a missing directory is fine. */
static int
gen_remove_prefixed(int dirfd, const char *prefix)
{
	struct walk_dir d;
	size_t i, plen = strlen(prefix);
	int r;

	walk_dir_init(&d);
	r = walk_list(dirfd, 0, &d);
	for (i = 0; r == 0 && i < d.n; i++) {
		if (d.ents[i].namelen >= plen &&
		    memcmp(d.ents[i].name, prefix, plen) == 0)
			r = fs_remove_tree(dirfd, d.ents[i].name);
	}
	walk_dir_release(&d);
	return r;
}

int
gen_reinit(const char *spool_dir, char *err, size_t errlen)
{
	char gen[LIMIT_GEN_LEN + 1];
	int dirfd, fd, r;

	if (fs_mkdir_p(spool_dir, 0700) != 0 ||
	    fs_open_dir(spool_dir, &dirfd) != 0) {
		snprintf(err, errlen, "spool directory '%s': %s", spool_dir,
		    strerror(errno));
		return -AR_ESTATE;
	}
	if (gen_lock(dirfd, spool_dir, &fd, err, errlen) != 0) {
		close(dirfd);
		return -AR_ESTATE;
	}
	/* The journal first: a crash half way leaves no generation file
	 * with an old journal, only an empty spool or a new generation. */
	r = gen_remove_prefixed(dirfd, "seg-");
	if (r == 0)
		r = fs_remove_tree(dirfd, "acks");
	if (r == 0)
		r = fs_remove_tree(dirfd, GEN_FILE);
	if (r == 0)
		r = fs_remove_tree(dirfd, GEN_RESCUED_FILE);
	if (r == 0)
		r = fs_remove_tree(dirfd, GEN_CONFIRMED_FILE);
	/* The tree the old generation served: the next start records
	 * what it serves. */
	if (r == 0)
		r = fs_remove_tree(dirfd, SOURCE_FILE);
	if (r == 0 && fs_fsync_dir(dirfd) != 0)
		r = -AR_EIO;
	if (r == 0)
		r = gen_create(dirfd, gen);
	if (r != 0)
		snprintf(err, errlen, "spool directory '%s': cannot "
		    "re-initialise: %s", spool_dir, strerror(errno));
	else
		log_info("spool '%s': new generation %s", spool_dir, gen);
	close(fd);
	close(dirfd);
	return r != 0 ? -AR_ESTATE : 0;
}

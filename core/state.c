/*
 * state.c: the standby's state_dir (see state.h): its lock, the
 * generation followed, the closed generations, the applied position and
 * the scratch files; the only code that knows their names and formats.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fs.h"
#include "journal.h"
#include "limit.h"
#include "state.h"
#include "util.h"

#define STATE_LOCK_FILE "lock"
#define STATE_GENERATION_FILE "generation"
#define STATE_POSITION_FILE "position"
#define STATE_CLOSED_FILE "closed"
#define STATE_COMPLETE_FILE "complete"
#define STATE_SKIPPED_FILE "skipped"
#define STATE_BLOCKS_DIR "blocks"
/* Closed generations remembered (the oldest are forgotten). */
#define STATE_CLOSED_MAX 64
/* One line of the closed file: a generation and '\n'. */
#define STATE_CLOSED_LINE (WIRE_GEN_LEN + 1)

static const char *const state_scratch_names[] = {
	[STATE_SCRATCH_MANIFEST] = "manifest",
	[STATE_SCRATCH_CHANGES] = "changes",
};

/* Replace file of state_dir with len bytes of data, durably; what it
 * holds names it in a message. */
static int
state_put(struct state *st, const char *file, const char *data, size_t len,
    const char *what, char *err, size_t errlen)
{
	if (fs_write_durable(st->dirfd, file, data, len, 0644) != 0) {
		snprintf(err, errlen, "state directory: cannot save %s: %s",
		    what, strerror(errno));
		return -AR_ESTATE;
	}
	return 0;
}

void
state_init(struct state *st)
{
	st->dirfd = -1;
	st->lockfd = -1;
	st->blocksfd = -1;
	st->inplacefd = -1;
	st->blocksmem = NULL;
}

int
state_open(struct state *st, const char *dir, char *err, size_t errlen)
{
	assert(st->dirfd < 0 && st->lockfd < 0);
	if (fs_mkdir_p(dir, 0700) != 0 || fs_open_dir(dir, &st->dirfd) != 0) {
		snprintf(err, errlen, "state directory '%s': %s", dir,
		    strerror(errno));
		return -AR_ESTATE;
	}
	if (util_lock(st->dirfd, STATE_LOCK_FILE, 1, &st->lockfd) != 0) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "state directory '%s': another "
			    "asyncrep sync is running", dir);
		else
			snprintf(err, errlen, "state directory '%s': %s", dir,
			    strerror(errno));
		return -AR_ESTATE;
	}
	/* The block store: without it, the append path is off. */
	if ((mkdirat(st->dirfd, STATE_BLOCKS_DIR, 0700) == 0 ||
	    errno == EEXIST))
		st->blocksfd = openat(st->dirfd, STATE_BLOCKS_DIR, O_RDONLY |
		    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	/* The in-place journals: a pending one must be found again. */
	if (mkdirat(st->dirfd, JOURNAL_DIR, 0700) == 0) {
		/* Made durable, as a journal in it will be. */
		if (fs_fsync_dir(st->dirfd) == 0)
			st->inplacefd = openat(st->dirfd, JOURNAL_DIR,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	} else if (errno == EEXIST)
		st->inplacefd = openat(st->dirfd, JOURNAL_DIR, O_RDONLY |
		    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (st->inplacefd < 0) {
		snprintf(err, errlen, "state directory '%s': %s/: %s", dir,
		    JOURNAL_DIR, strerror(errno));
		return -AR_ESTATE;
	}
	/* Without it (out of memory), every use reads its entry. */
	if (st->blocksfd >= 0 && blocks_mem_new(&st->blocksmem) != 0)
		st->blocksmem = NULL;
	return 0;
}

void
state_release(struct state *st)
{
	if (st->blocksfd >= 0)
		close(st->blocksfd);
	if (st->inplacefd >= 0)
		close(st->inplacefd);
	blocks_mem_free(st->blocksmem);
	if (st->lockfd >= 0)
		close(st->lockfd);
	if (st->dirfd >= 0)
		close(st->dirfd);
	state_init(st);
}

/* Write "GEN SEQ\n" to name durably; what names it in a message. */
static int
state_line_write(struct state *st, const char *name, const char *gen,
    uint64_t seq, const char *what, char *err, size_t errlen)
{
	char line[WIRE_GEN_LEN + 32];
	int n;

	assert(st->dirfd >= 0 && strlen(gen) == WIRE_GEN_LEN);
	n = snprintf(line, sizeof(line), "%s %llu\n", gen,
	    (unsigned long long)seq);
	assert(n > 0 && (size_t)n < sizeof(line));
	return state_put(st, name, line, (size_t)n, what, err, errlen);
}

/* 1 if the closed file of dirfd lists gen. */
static int
state_closed_has(int dirfd, const char *gen)
{
	char buf[STATE_CLOSED_MAX * STATE_CLOSED_LINE + 1];
	size_t len, i;

	if (dirfd < 0 || fs_read_entry(dirfd, STATE_CLOSED_FILE, buf,
	    sizeof(buf), &len) != 0)
		return 0;
	for (i = 0; i + WIRE_GEN_LEN <= len; i += STATE_CLOSED_LINE) {
		if (memcmp(buf + i, gen, WIRE_GEN_LEN) == 0)
			return 1;
	}
	return 0;
}

int
state_gen_closed(const struct state *st, const char *gen)
{
	return state_closed_has(st->dirfd, gen);
}

int
state_gen_close(struct state *st, const char *gen, uint64_t seq, char *err,
    size_t errlen)
{
	char buf[(STATE_CLOSED_MAX + 1) * STATE_CLOSED_LINE + 1];
	size_t len = 0, off = 0;
	int r;

	assert(st->dirfd >= 0 && strlen(gen) == WIRE_GEN_LEN);
	if (fs_read_entry(st->dirfd, STATE_CLOSED_FILE, buf, sizeof(buf) -
	    STATE_CLOSED_LINE, &len) != 0)
		len = 0;
	len -= len % STATE_CLOSED_LINE;
	if (len >= STATE_CLOSED_MAX * STATE_CLOSED_LINE)
		off = len - (STATE_CLOSED_MAX - 1) * STATE_CLOSED_LINE;
	memcpy(buf + len, gen, WIRE_GEN_LEN);
	buf[len + WIRE_GEN_LEN] = '\n';
	len += STATE_CLOSED_LINE;
	assert(len - off <= STATE_CLOSED_MAX * STATE_CLOSED_LINE);
	r = state_put(st, STATE_CLOSED_FILE, buf + off, len - off,
	    "the closed generation", err, errlen);
	/* After closed: complete counts only for a generation listed
	 * there, so a crash in between leaves the old behaviour. */
	if (r == 0)
		r = state_line_write(st, STATE_COMPLETE_FILE, gen, seq,
		    "the completed position", err, errlen);
	return r;
}

int
state_gen_follow(struct state *st, const char *gen, char *err,
    size_t errlen)
{
	char line[WIRE_GEN_LEN + 2], cur[64];
	size_t len;

	assert(st->dirfd >= 0 && strlen(gen) == WIRE_GEN_LEN);
	if (fs_read_entry(st->dirfd, STATE_GENERATION_FILE, cur, sizeof(cur),
	    &len) == 0 && len >= WIRE_GEN_LEN &&
	    memcmp(cur, gen, WIRE_GEN_LEN) == 0)
		return 0;
	memcpy(line, gen, WIRE_GEN_LEN);
	line[WIRE_GEN_LEN] = '\n';
	return state_put(st, STATE_GENERATION_FILE, line, WIRE_GEN_LEN + 1,
	    "the generation", err, errlen);
}

int
state_position_save(struct state *st, const char *gen, uint64_t seq,
    char *err, size_t errlen)
{
	return state_line_write(st, STATE_POSITION_FILE, gen, seq,
	    "the position", err, errlen);
}

/* Parse a "GENERATION SEQ\n" file (position, complete). */
static int
state_position_parse(const char *buf, size_t len,
    char gen[WIRE_GEN_LEN + 1], uint64_t *seq)
{
	char *end;

	if (len < WIRE_GEN_LEN + 2 || buf[WIRE_GEN_LEN] != ' ')
		return -AR_ESTATE;
	memcpy(gen, buf, WIRE_GEN_LEN);
	gen[WIRE_GEN_LEN] = '\0';
	errno = 0;
	*seq = strtoull(buf + WIRE_GEN_LEN + 1, &end, 10);
	if (errno != 0 || *end != '\n' || !limit_gen_valid(gen, WIRE_GEN_LEN))
		return -AR_ESTATE;
	return 0;
}

/* A "GENERATION SEQ\n" file of dirfd, parsed. */
static int
state_line_read(int dirfd, const char *name, char gen[WIRE_GEN_LEN + 1],
    uint64_t *seq)
{
	char buf[128];
	size_t len;

	if (fs_read_entry(dirfd, name, buf, sizeof(buf), &len) != 0)
		return -AR_ESTATE;
	return state_position_parse(buf, len, gen, seq);
}

static int
state_position_read(int dirfd, char gen[WIRE_GEN_LEN + 1], uint64_t *seq)
{
	return state_line_read(dirfd, STATE_POSITION_FILE, gen, seq);
}

/* The generation file of dirfd: 0 and gen, or -AR_ESTATE. */
static int
state_followed_read(int dirfd, char gen[WIRE_GEN_LEN + 1])
{
	char buf[64];
	size_t len;

	if (fs_read_entry(dirfd, STATE_GENERATION_FILE, buf, sizeof(buf),
	    &len) != 0 || len < WIRE_GEN_LEN ||
	    !limit_gen_valid(buf, WIRE_GEN_LEN))
		return -AR_ESTATE;
	memcpy(gen, buf, WIRE_GEN_LEN);
	gen[WIRE_GEN_LEN] = '\0';
	return 0;
}

/*
 * 1 and the generation and position when the standby of dirfd is
 * complete: it follows a generation that a rescue closed while it held
 * the final position, and holds that position still.
 */
static int
state_complete_read(int dirfd, char gen[WIRE_GEN_LEN + 1], uint64_t *seq)
{
	char followed[WIRE_GEN_LEN + 1], at[WIRE_GEN_LEN + 1];
	uint64_t pos;

	if (state_line_read(dirfd, STATE_COMPLETE_FILE, gen, seq) != 0 ||
	    state_followed_read(dirfd, followed) != 0 ||
	    state_position_read(dirfd, at, &pos) != 0)
		return 0;
	return strcmp(followed, gen) == 0 && strcmp(at, gen) == 0 &&
	    pos == *seq && state_closed_has(dirfd, gen);
}

int
state_complete(const struct state *st, char gen[WIRE_GEN_LEN + 1],
    uint64_t *seq)
{
	return st->dirfd >= 0 && state_complete_read(st->dirfd, gen, seq);
}

int
state_position_load(const struct state *st, const char *gen, uint64_t *seq)
{
	char saved[WIRE_GEN_LEN + 1];
	uint64_t v;

	if (st->dirfd < 0 || state_position_read(st->dirfd, saved, &v) != 0 ||
	    memcmp(saved, gen, WIRE_GEN_LEN) != 0)
		return -AR_ESTATE;
	*seq = v;
	return 0;
}

int
state_skipped_save(struct state *st, uint64_t count, const char *last,
    char *err, size_t errlen)
{
	char line[32 + STATE_SKIPPED_PATH_MAX + 2];
	int n;

	assert(st->dirfd >= 0);
	n = snprintf(line, sizeof(line), "%llu %.*s\n",
	    (unsigned long long)count, STATE_SKIPPED_PATH_MAX,
	    count > 0 ? last : "");
	assert(n > 0 && (size_t)n < sizeof(line));
	return state_put(st, STATE_SKIPPED_FILE, line, (size_t)n,
	    "the skipped count", err, errlen);
}

/* The skipped file of dirfd, parsed; 0 (last "") if none or garbled. */
static uint64_t
state_skipped_read(int dirfd, char *last)
{
	char buf[32 + STATE_SKIPPED_PATH_MAX + 2], *end;
	unsigned long long v;
	size_t len;

	if (last != NULL)
		last[0] = '\0';
	if (fs_read_entry(dirfd, STATE_SKIPPED_FILE, buf, sizeof(buf),
	    &len) != 0 || len == 0 || buf[len - 1] != '\n')
		return 0;
	buf[len - 1] = '\0';
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno != 0 || end == buf || *end != ' ')
		return 0;
	if (last != NULL) {
		len = strnlen(end + 1, STATE_SKIPPED_PATH_MAX);
		memcpy(last, end + 1, len);
		last[len] = '\0';
	}
	return v;
}

uint64_t
state_skipped_load(const struct state *st, char *last)
{
	if (st->dirfd < 0) {
		if (last != NULL)
			last[0] = '\0';
		return 0;
	}
	return state_skipped_read(st->dirfd, last);
}

int
state_scratch(const struct state *st, enum state_scratch which, int *fd,
    char *err, size_t errlen)
{
	assert(st->dirfd >= 0);
	assert((size_t)which < sizeof(state_scratch_names) /
	    sizeof(state_scratch_names[0]));
	*fd = openat(st->dirfd, state_scratch_names[which], O_RDWR |
	    O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0) {
		snprintf(err, errlen, "state directory: %s", strerror(errno));
		return -AR_ESTATE;
	}
	/* Unnamed at once: what a failed or killed run stored is never
	 * left behind in state_dir (the next open truncates the name a
	 * crash in between could leave). */
	if (unlinkat(st->dirfd, state_scratch_names[which], 0) != 0) {
		snprintf(err, errlen, "state directory: %s", strerror(errno));
		close(*fd);
		*fd = -1;
		return -AR_ESTATE;
	}
	return 0;
}

/* Entries of dirfd/name that are not ours in the making. */
static uint64_t
state_count_entries(int dirfd, const char *name)
{
	struct dirent *de;
	uint64_t n = 0;
	DIR *d;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd < 0)
		return 0;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return 0;
	}
	for (;;) {
		de = readdir(d);
		if (de == NULL)
			break;
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

uint64_t
state_inplace_pending(const struct state *st)
{
	return st->dirfd < 0 ? 0 : state_count_entries(st->dirfd,
	    JOURNAL_DIR);
}

int
state_read(const char *dir, struct state_info *info)
{
	char gen[WIRE_GEN_LEN + 1];
	struct stat sb;
	int dirfd;

	memset(info, 0, sizeof(*info));
	if (fs_open_dir(dir, &dirfd) != 0)
		return -AR_ESTATE;
	if (state_followed_read(dirfd, info->generation) != 0)
		info->generation[0] = '\0';
	info->complete = state_complete_read(dirfd, gen,
	    &info->complete_seq);
	info->have_position = state_position_read(dirfd, info->position_gen,
	    &info->position) == 0;
	if (fstatat(dirfd, STATE_POSITION_FILE, &sb, 0) == 0)
		info->position_time = (int64_t)sb.st_mtim.tv_sec;
	info->running = util_lock_held(dirfd, STATE_LOCK_FILE);
	info->skipped = state_skipped_read(dirfd, info->skipped_last);
	info->inplace_pending = state_count_entries(dirfd, JOURNAL_DIR);
	close(dirfd);
	return 0;
}

void
state_standby_id(const struct config_standby *cfg, char *out, size_t outlen)
{
	const char *src = cfg->standby_id;
	char host[256];
	size_t i;

	assert(outlen > 0);
	if (src == NULL) {
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "standby");
		host[sizeof(host) - 1] = '\0';
		src = host;
	}
	for (i = 0; i + 1 < outlen && src[i] != '\0'; i++)
		out[i] = src[i];
	out[i] = '\0';
	for (i = 0; out[i] != '\0'; i++) {
		char c = out[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '-'))
			out[i] = '_';
	}
	if (out[0] == '\0')
		snprintf(out, outlen, "standby");
}

/*
 * state.c: the standby's state_dir (see state.h): its lock, the
 * generation followed, the closed generations, the applied position and
 * the scratch files; the only code that knows their names and formats.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fs.h"
#include "limit.h"
#include "state.h"
#include "util.h"

#define STATE_LOCK_FILE "lock"
#define STATE_GENERATION_FILE "generation"
#define STATE_POSITION_FILE "position"
#define STATE_CLOSED_FILE "closed"
/* Closed generations remembered (the oldest are forgotten). */
#define STATE_CLOSED_MAX 64
/* One line of the closed file: a generation and '\n'. */
#define STATE_CLOSED_LINE (WIRE_GEN_LEN + 1)

static const char *const state_scratch_names[] = {
	[STATE_SCRATCH_MANIFEST] = "manifest",
	[STATE_SCRATCH_CHANGES] = "changes",
};

void
state_init(struct state *st)
{
	st->dirfd = -1;
	st->lockfd = -1;
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
	return 0;
}

void
state_release(struct state *st)
{
	if (st->lockfd >= 0)
		close(st->lockfd);
	if (st->dirfd >= 0)
		close(st->dirfd);
	state_init(st);
}

int
state_gen_closed(const struct state *st, const char *gen)
{
	char buf[STATE_CLOSED_MAX * STATE_CLOSED_LINE + 1];
	size_t len, i;

	if (st->dirfd < 0 || fs_read_small(st->dirfd, STATE_CLOSED_FILE, buf,
	    sizeof(buf), &len) != 0)
		return 0;
	for (i = 0; i + WIRE_GEN_LEN <= len; i += STATE_CLOSED_LINE) {
		if (memcmp(buf + i, gen, WIRE_GEN_LEN) == 0)
			return 1;
	}
	return 0;
}

int
state_gen_close(struct state *st, const char *gen, char *err,
    size_t errlen)
{
	char buf[(STATE_CLOSED_MAX + 1) * STATE_CLOSED_LINE + 1];
	size_t len = 0, off = 0;

	assert(st->dirfd >= 0 && strlen(gen) == WIRE_GEN_LEN);
	if (fs_read_small(st->dirfd, STATE_CLOSED_FILE, buf, sizeof(buf) -
	    STATE_CLOSED_LINE, &len) != 0)
		len = 0;
	len -= len % STATE_CLOSED_LINE;
	if (len >= STATE_CLOSED_MAX * STATE_CLOSED_LINE)
		off = len - (STATE_CLOSED_MAX - 1) * STATE_CLOSED_LINE;
	memcpy(buf + len, gen, WIRE_GEN_LEN);
	buf[len + WIRE_GEN_LEN] = '\n';
	len += STATE_CLOSED_LINE;
	assert(len - off <= STATE_CLOSED_MAX * STATE_CLOSED_LINE);
	if (fs_write_durable(st->dirfd, STATE_CLOSED_FILE, buf + off,
	    len - off, 0644) != 0) {
		snprintf(err, errlen, "state directory: cannot record the "
		    "closed generation: %s", strerror(errno));
		return -AR_ESTATE;
	}
	return 0;
}

int
state_gen_follow(struct state *st, const char *gen, char *err,
    size_t errlen)
{
	char line[WIRE_GEN_LEN + 2], cur[64];
	size_t len;

	assert(st->dirfd >= 0 && strlen(gen) == WIRE_GEN_LEN);
	if (fs_read_small(st->dirfd, STATE_GENERATION_FILE, cur, sizeof(cur),
	    &len) == 0 && len >= WIRE_GEN_LEN &&
	    memcmp(cur, gen, WIRE_GEN_LEN) == 0)
		return 0;
	memcpy(line, gen, WIRE_GEN_LEN);
	line[WIRE_GEN_LEN] = '\n';
	if (fs_write_durable(st->dirfd, STATE_GENERATION_FILE, line,
	    WIRE_GEN_LEN + 1, 0644) != 0) {
		snprintf(err, errlen, "state directory: cannot record the "
		    "generation: %s", strerror(errno));
		return -AR_ESTATE;
	}
	return 0;
}

int
state_position_save(struct state *st, const char *gen, uint64_t seq,
    char *err, size_t errlen)
{
	char line[WIRE_GEN_LEN + 32];
	int n;

	assert(st->dirfd >= 0 && strlen(gen) == WIRE_GEN_LEN);
	n = snprintf(line, sizeof(line), "%s %llu\n", gen,
	    (unsigned long long)seq);
	assert(n > 0 && (size_t)n < sizeof(line));
	if (fs_write_durable(st->dirfd, STATE_POSITION_FILE, line, (size_t)n,
	    0644) != 0) {
		snprintf(err, errlen, "state directory: cannot save the "
		    "position: %s", strerror(errno));
		return -AR_ESTATE;
	}
	return 0;
}

/* Parse the position file's "GENERATION SEQ\n". */
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

/* The position file of dirfd, parsed. */
static int
state_position_read(int dirfd, char gen[WIRE_GEN_LEN + 1], uint64_t *seq)
{
	char buf[128];
	size_t len;

	if (fs_read_small(dirfd, STATE_POSITION_FILE, buf, sizeof(buf),
	    &len) != 0)
		return -AR_ESTATE;
	return state_position_parse(buf, len, gen, seq);
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
	return 0;
}

int
state_read(const char *dir, struct state_info *info)
{
	char buf[64];
	struct stat sb;
	size_t len;
	int dirfd;

	memset(info, 0, sizeof(*info));
	if (fs_open_dir(dir, &dirfd) != 0)
		return -AR_ESTATE;
	if (fs_read_small(dirfd, STATE_GENERATION_FILE, buf, sizeof(buf),
	    &len) == 0 && len >= WIRE_GEN_LEN) {
		buf[WIRE_GEN_LEN] = '\0';
		if (limit_gen_valid(buf, WIRE_GEN_LEN))
			memcpy(info->generation, buf, WIRE_GEN_LEN + 1);
	}
	info->have_position = state_position_read(dirfd, info->position_gen,
	    &info->position) == 0;
	if (fstatat(dirfd, STATE_POSITION_FILE, &sb, 0) == 0)
		info->position_time = (int64_t)sb.st_mtim.tv_sec;
	info->running = util_lock_held(dirfd, STATE_LOCK_FILE);
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

/*
 * progress.c: the progress line of progress.h.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

#include "progress.h"
#include "util.h"

void
progress_init(struct progress *p, int want, FILE *out)
{
	memset(p, 0, sizeof(*p));
	p->statefd = -1;
	if (!want || out == NULL || !isatty(fileno(out)))
		return;
	p->out = out;
}

void
progress_save_to(struct progress *p, int statefd)
{
	p->statefd = statefd;
}

/* The counts into state_dir (see progress.h); force: now. */
static void
progress_save(struct progress *p, int force)
{
	char line[160], tmp[] = PROGRESS_FILE ".tmp";
	uint64_t now = util_mono_ns();
	int fd, n;

	if (p->statefd < 0 || (!force && now - p->saved_ns < PROGRESS_SAVE_NS))
		return;
	p->saved_ns = now;
	n = snprintf(line, sizeof(line), "%" PRIu64 " %" PRIu64 " %" PRIu64
	    " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", now - p->start_ns,
	    p->entries, p->total_entries, p->bytes, p->total_bytes,
	    p->received);
	fd = openat(p->statefd, tmp, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return;
	if (n > 0 && fs_write_full(fd, line, (size_t)n) == 0 && close(fd) == 0)
		(void)renameat(p->statefd, tmp, p->statefd, PROGRESS_FILE);
	else {
		close(fd);
		(void)unlinkat(p->statefd, tmp, 0);
	}
}

int
progress_load(int dirfd, struct progress *p, uint64_t *elapsed_ns)
{
	char buf[200];
	unsigned long long v[6];
	size_t len;

	memset(p, 0, sizeof(*p));
	p->statefd = -1;
	if (fs_read_entry(dirfd, PROGRESS_FILE, buf, sizeof(buf), &len) != 0 ||
	    sscanf(buf, "%llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
	    &v[3], &v[4], &v[5]) != 6)
		return -1;
	*elapsed_ns = v[0];
	p->entries = v[1];
	p->total_entries = v[2];
	p->bytes = v[3];
	p->total_bytes = v[4];
	p->received = v[5];
	return 0;
}

void
progress_begin(struct progress *p, uint64_t received)
{
	if (p->out == NULL && p->statefd < 0)
		return;
	p->start_ns = util_mono_ns();
	p->drawn_ns = 0;
	p->total_entries = p->total_bytes = 0;
	p->entries = p->bytes = 0;
	p->received = 0;
	p->received0 = received;
	p->drawn = 0;
	p->active = 1;
	p->saved_ns = 0;
}

void
progress_totals(struct progress *p, uint64_t entries, uint64_t bytes)
{
	p->total_entries = entries;
	p->total_bytes = bytes;
}

/* bytes as "12.3M" (binary units), into buf. */
static void
progress_size(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "BKMGTP";
	double d = (double)v;
	size_t u = 0;

	while (d >= 1024 && u + 1 < sizeof(units) - 1) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%lluB", (unsigned long long)v);
	else
		snprintf(buf, len, "%.1f%c", d, units[u]);
}

void
progress_format(const struct progress *p, uint64_t now_ns, char *buf,
    size_t len)
{
	char sofar[16], total[16], rate[16];
	double secs = (double)(now_ns - p->start_ns) / 1e9, frac, left;
	int done = p->entries >= p->total_entries;
	unsigned long eta;
	int n;

	progress_size(p->bytes, sofar, sizeof(sofar));
	progress_size(p->total_bytes, total, sizeof(total));
	progress_size(secs > 0 ? (uint64_t)((double)p->received / secs) : 0,
	    rate, sizeof(rate));
	/* By bytes, or by entries in a tree of empty files. */
	frac = p->total_bytes > 0 ? (double)p->bytes /
	    (double)p->total_bytes : p->total_entries > 0 ?
	    (double)p->entries / (double)p->total_entries : 1;
	if (frac > 1)
		frac = 1;
	/* Done: the time it took, not the time left. */
	left = done ? secs : frac > 0 ? secs * (1 - frac) / frac : 0;
	eta = (unsigned long)(left + 0.5);
	/* A line cut short on a narrow buffer is still a line. */
	n = snprintf(buf, len, "%3u%%  %llu/%llu entries  %s/%s  %s/s  "
	    "%lu:%02lu:%02lu %s", (unsigned)(frac * 100),
	    (unsigned long long)p->entries,
	    (unsigned long long)p->total_entries, sofar, total, rate,
	    eta / 3600, eta / 60 % 60, eta % 60, done ? "elapsed" : "ETA");
	if (n < 0 && len > 0)
		buf[0] = '\0';
}

static void
progress_draw(struct progress *p, int force)
{
	char line[160];
	uint64_t now = util_mono_ns();

	if (p->out == NULL ||
	    (!force && p->drawn && now - p->drawn_ns < PROGRESS_REDRAW_NS))
		return;
	progress_format(p, now, line, sizeof(line));
	fprintf(p->out, "\r%s\033[K", line);
	fflush(p->out);
	p->drawn = 1;
	p->drawn_ns = now;
}

void
progress_entry(struct progress *p, uint64_t size)
{
	if ((p->out == NULL && p->statefd < 0) || !p->active)
		return;
	p->entries++;
	p->bytes += size;
	progress_draw(p, 0);
	progress_save(p, 0);
}

void
progress_received(struct progress *p, uint64_t received)
{
	if ((p->out == NULL && p->statefd < 0) || !p->active)
		return;
	p->received = received - p->received0;
	progress_draw(p, 0);
	progress_save(p, 0);
}

void
progress_finish(struct progress *p)
{
	if ((p->out == NULL && p->statefd < 0) || !p->active)
		return;
	if (p->statefd >= 0)
		(void)unlinkat(p->statefd, PROGRESS_FILE, 0);
	p->active = 0;
	if (p->out == NULL)
		return;
	progress_draw(p, 1);
	fputc('\n', p->out);
	fflush(p->out);
}

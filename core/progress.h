/*
 * progress.h: the progress line of a compare of the whole tree on a
 * terminal (sync --progress: the one-shot sync, the full compares of
 * --follow), like rsync's --info=progress2: entries and bytes of the
 * files compared of the totals the primary's listing announced, the rate
 * of content received, and the time left.
 *
 * It owns nothing but its line on standard error, redrawn in place at
 * most every PROGRESS_REDRAW_NS, and only when standard error is a
 * terminal: never in a log, a pipe or a file.
 */
#ifndef ASYNCREP_PROGRESS_H
#define ASYNCREP_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#define PROGRESS_REDRAW_NS (250u * 1000 * 1000)

struct progress {
	FILE *out;		/* NULL: off */
	uint64_t start_ns, drawn_ns;
	uint64_t total_entries, total_bytes;	/* of the listing */
	uint64_t entries, bytes;		/* compared so far */
	uint64_t received;			/* content bytes written */
	uint64_t received0;			/* ... before this compare */
	int active;		/* between progress_begin and _finish */
	int drawn;		/* a line is on the terminal */
	int statefd;		/* state_dir, for status (-1: none) */
	uint64_t saved_ns;	/* when PROGRESS_FILE was last written */
};

/*
 * A follower's compare of the whole tree is also written, at most every
 * PROGRESS_SAVE_NS, to PROGRESS_FILE in state_dir for asyncrep status:
 * one line, "elapsed_ns entries total_entries bytes total_bytes
 * received\n", written to a temp name and renamed (not fsynced: a hint for
 * status, not state; a crash leaves at most a stale one, which status
 * tells by the lock), and removed when the compare ends.
 */
#define PROGRESS_FILE "progress"
#define PROGRESS_SAVE_NS (1000u * 1000 * 1000)

/* On when want is set and out is a terminal; off otherwise. */
void progress_init(struct progress *p, int want, FILE *out);
/* Also keep PROGRESS_FILE in the state directory statefd up to date. */
void progress_save_to(struct progress *p, int statefd);
/* PROGRESS_FILE of the state directory dirfd into *p, for
 * progress_format with now_ns = elapsed: 0, or -1 when there is none. */
int progress_load(int dirfd, struct progress *p, uint64_t *elapsed_ns);
/* A compare of the whole tree starts (received: content bytes written
 * so far), and ends: its last line, ended, if one was drawn. */
void progress_begin(struct progress *p, uint64_t received);
void progress_finish(struct progress *p);
/* The listing's totals, once it is stored. */
void progress_totals(struct progress *p, uint64_t entries, uint64_t bytes);
/* One entry of the listing compared, of size bytes (files). */
void progress_entry(struct progress *p, uint64_t size);
/* received: the content bytes written so far. */
void progress_received(struct progress *p, uint64_t received);
/* The line, for tests: into buf (at least 128 bytes). */
void progress_format(const struct progress *p, uint64_t now_ns, char *buf,
    size_t len);

#endif

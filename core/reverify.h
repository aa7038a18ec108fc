/*
 * reverify.h: the primary's background re-verification of the files
 * that the append path extended (see reverify.c); it owns nothing but
 * its thread, and drops entries of the block cache (spool_dir/blocks).
 */
#ifndef ASYNCREP_REVERIFY_H
#define ASYNCREP_REVERIFY_H

#include <stddef.h>
#include <stdint.h>

struct reverify_opts {
	int rootfd;			/* data_dir */
	const char *cache_dir;		/* spool_dir/blocks */
	uint64_t rate;			/* bytes a second; 0: off */
	/* a file was rewritten: record a change of path */
	void (*changed)(void *arg, const char *path, size_t len);
	void *arg;
};

struct reverify;

/* Start the thread (*out NULL when rate is 0). */
int reverify_start(const struct reverify_opts *o, struct reverify **out);
/* Stop it and wait for it; NULL is a no-op. */
void reverify_stop(struct reverify *rv);

#endif

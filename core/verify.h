/*
 * verify.h: content verification of a standby against its primary
 * (asyncrep verify), and the content compare that sync --checksum uses.
 *
 * It compares content, not metadata: every regular file both sides hold
 * is hashed on each side (SHA-256; the primary's hashes come from
 * POST /v1/sums from protocol version WIRE_V_OPS on, else from the
 * trailers of a whole transfer, POST /v1/files). A file whose primary
 * copy changes while it is verified is checked again, then reported as
 * changing, never as damaged. It writes nothing, and takes no lock of
 * state_dir, so it may run while sync --follow does.
 */
#ifndef ASYNCREP_VERIFY_H
#define ASYNCREP_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "auth.h"
#include "client.h"
#include "config.h"
#include "exclude.h"

/* What the content compare found for one file. */
enum verify_verdict {
	VERIFY_PENDING = 0,	/* not compared yet */
	VERIFY_SAME,		/* the same bytes on both sides */
	VERIFY_DIFFERS,		/* different bytes, neither side changing */
	VERIFY_CHANGING,	/* it changed while it was verified */
	VERIFY_GONE,		/* gone from the primary since the listing */
	VERIFY_UNREADABLE,	/* the primary could not read it */
	VERIFY_RECHECK,		/* differed while something moved: again */
};

/* A regular file on both sides, as the primary's listing has it. */
struct verify_item {
	char *path;			/* owned */
	uint64_t size;			/* the listing's */
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	enum verify_verdict verdict;
	uint64_t fsize;			/* the primary's stat at open (F) */
	int64_t fmtime_sec;
	uint32_t fmtime_nsec;
	int seen;			/* an F frame came for it */
	/* the first look, when it differed: its F, whether it moved */
	int moved;
	uint64_t size1;
	int64_t mtime1_sec;
	uint32_t mtime1_nsec;
};

struct verify_list {
	struct verify_item *items;
	size_t n, cap;
};

void verify_list_init(struct verify_list *l);
void verify_list_release(struct verify_list *l);
int verify_list_add(struct verify_list *l, const char *path, size_t len,
    uint64_t size, int64_t mtime_sec, uint32_t mtime_nsec);

/*
 * Compare the content of every item of l under rootfd with the
 * primary's, on c (after a hello), reading at most rate bytes a second
 * on each side (0: no bound; the primary is paced by the size of the
 * requests). Sets each item's verdict. Returns 0 or the error that
 * stopped it, explained in msg.
 */
int verify_sums(struct client *c, int rootfd, struct verify_list *l,
    uint64_t rate, char *msg, size_t msglen);

struct verify_opts {
	const struct config_standby *cfg;
	const struct auth *auth;
	FILE *out;		/* the itemized differences */
	uint64_t rate;		/* bytes a second, 0: no bound */
	int progress;		/* --progress: a line on a terminal */
};

struct verify_stats {
	uint64_t files;		/* files whose content was compared */
	uint64_t bytes;		/* bytes of them (the primary's sizes) */
	uint64_t differ;	/* entries that differ */
	uint64_t changing;	/* files that changed while verified */
	uint64_t unverified;	/* files the primary could not read */
};

/* 0 when the standby holds the primary's content, -AR_EDIFFER when it
 * does not (each difference on o->out), -AR_EPARTIAL when only some
 * files could not be read on the primary, or the error; msg explains. */
int verify_run(const struct verify_opts *o, struct verify_stats *st,
    char *msg, size_t msglen);

#endif

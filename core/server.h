/*
 * server.h: the HTTP side of a primary and of a rescue.
 *
 * It owns the listening socket and libmicrohttpd, authenticates every
 * request, parses request bodies with wire.c under hard limits, and
 * streams the manifest, whole files and librsync deltas from the tree
 * under rootfd (serve-files.c) and the batches of changes from the spool
 * (serve-changes.c). It never writes to the tree. server-int.h is what
 * those files share; nothing outside them includes it.
 */
#ifndef ASYNCREP_SERVER_H
#define ASYNCREP_SERVER_H

#include <stddef.h>

#include "auth.h"
#include "config.h"
#include "wire.h"

struct spool;
struct exclude;

struct server;

struct server_opts {
	const struct config_primary *cfg;
	int rootfd;			/* data_dir, O_DIRECTORY */
	const char *generation;
	int role;			/* enum wire_role */
	const struct auth *auth;
	struct spool *spool;		/* changes journal; NULL: none */
	const struct exclude *exclude;	/* never served; may be NULL */
	/* the primary's block cache (spool_dir/blocks, SPOOL.md); NULL:
	 * none (a rescue never uses it) */
	const char *cache_dir;
	/* rescue: told of what the standbys do (enum server_event), with
	 * the standby's id when the request names one (/v1/changes) and
	 * NULL otherwise; its answer to SERVER_EV_CONFIRM decides whether
	 * the standby holds the final position (not 0: it does). Called
	 * from the server's threads. NULL: every confirmation counts. */
	int (*event)(void *arg, int ev, const char *id);
	void *event_arg;
	/* rescue: ids named on its command line (--standby), accepted as
	 * if the primary's standbys list held them (without a pin). */
	const char *const *ids;
	size_t nids;
	/* rescue: its view of data_dir cannot show all the xattrs and
	 * ACLs the primary may hold (source.h): every Y frame is sent
	 * incomplete, so that no standby removes what it holds */
	int xattrs_hidden;
};

enum server_event {
	SERVER_EV_CONTACT = 1,	/* an authenticated request (id: from
				 * /v1/changes), or a transfer going on */
	SERVER_EV_COMPARE = 2,	/* the final batch is handed out to id */
	SERVER_EV_FINAL_SENT = 3, /* id was sent all of the final batch */
	SERVER_EV_CONFIRM = 4,	/* id asks for what follows the final
				 * position: may it confirm? */
};

/* Where a rescue stands; a primary stays in SERVER_PHASE_SPOOL. */
enum server_phase {
	SERVER_PHASE_SPOOL = 0,		/* serving the journal's changes */
	SERVER_PHASE_COMPARE = 1,	/* the final compare was handed out */
};
#define SERVER_PHASES 2
/* How many files sent by the compare a rescue names in its report. */
#define SERVER_COMPARE_ONLY 8

/* What went out, per phase of a rescue (index: enum server_phase). */
struct server_stats {
	uint64_t files[SERVER_PHASES];	/* whole files and deltas completed */
	uint64_t bytes[SERVER_PHASES];	/* bytes answered to files and deltas */
	/* the first files that only the compare sent */
	char compare_only[SERVER_COMPARE_ONLY][128];
	unsigned ncompare_only;
};
void server_get_stats(struct server *s, struct server_stats *st);
/* Connections open now (for metrics). */
unsigned server_connections(struct server *s);
/* The last sequence released to standbys. */
uint64_t server_released(struct server *s);

/* Bind, listen and start serving. Errors (-AR_EBIND...) are explained in
 * err. */
int server_start(const struct server_opts *opts, struct server **out,
    char *err, size_t errlen);
void server_stop(struct server *s);

/*
 * Make changes up to seq visible to standbys and wake the long-polls
 * waiting for them. Call it at least every 100 ms even without news:
 * it also ends long-polls whose time is up.
 */
void server_release(struct server *s, uint64_t seq);

/*
 * The primary's spool cannot record changes: lost counts those it could
 * not record so far (it only grows). Until server_recorded, a standby
 * that stands at the end of the journal is sent to compare the whole
 * tree (G) again whenever lost moved since it was last sent, and the
 * hello reports the position before the last released one (PROTOCOL.md,
 * "When the spool cannot record"). Call it when releasing.
 */
void server_unrecorded(struct server *s, uint64_t lost);
/* The spool records again: its RESCAN at seq is durable. Release it. */
void server_recorded(struct server *s, uint64_t seq);

#endif

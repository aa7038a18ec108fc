/*
 * metrics.h: what a running asyncrep counts, in the Prometheus text
 * exposition format (version 0.0.4).
 *
 * This module owns the process's counters and gauges (C11 atomics, so
 * any thread bumps them without a lock), their names, units and help
 * texts, the rendering of them as text, the optional listener that
 * serves GET /metrics on its own address (metrics_listen, no token: it
 * listens only where it is configured), and the durable textfile that a
 * one-shot sync leaves for node_exporter (--metrics-file). A process
 * plays one role (metrics_init); only that role's series are shown. A
 * role's series that need a look at its state when scraped (per
 * standby lags, the spool, the rescue's standbys) come from a collector
 * that the role registers (metrics_set_collector).
 */
#ifndef ASYNCREP_METRICS_H
#define ASYNCREP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* The roles, as a mask of the series each shows. */
enum metrics_role {
	METRICS_PRIMARY = 1,	/* asyncrep watch */
	METRICS_STANDBY = 2,	/* asyncrep sync */
	METRICS_RESCUE = 4,	/* asyncrep rescue */
};

/* The fixed series (metrics.c's table has a line for each). */
enum metrics_id {
	/* primary and rescue: the server */
	METRICS_SERVED_FILES_WHOLE,	/* files sent whole */
	METRICS_SERVED_FILES_DELTA,	/* files sent as a delta */
	METRICS_SERVED_FILES_APPEND,	/* files whose tail was sent */
	METRICS_SERVED_FILES_BLOCKS,	/* files whose changed blocks were
					 * sent (/v1/blocks) */
	METRICS_SERVED_BYTES_WHOLE,	/* bytes answered to /v1/files */
	METRICS_SERVED_BYTES_DELTA,	/* bytes answered to /v1/delta */
	METRICS_SERVED_BYTES_APPEND,	/* bytes answered to /v1/append */
	METRICS_SERVED_BYTES_BLOCKS,	/* bytes answered to /v1/blocks */
	METRICS_REQUESTS,		/* authenticated requests */
	METRICS_AUTH_FAILURES,		/* bad token or refused key */
	/* primary */
	METRICS_RELEASED_SEQ,		/* last released sequence */
	METRICS_WATCHED_DIRS,		/* directories watched now */
	METRICS_WATCH_OVERFLOWS,	/* IN_Q_OVERFLOW seen */
	METRICS_WATCH_REBUILDS,		/* inotify instance rebuilt */
	METRICS_WATCH_EVENTS,		/* kernel events read */
	/* standby */
	METRICS_APPLIED_SEQ,		/* the position durably applied */
	METRICS_LAST_APPLY_NS,		/* CLOCK_REALTIME of that, ns */
	METRICS_RECV_FILES_WHOLE,	/* files received whole */
	METRICS_RECV_FILES_DELTA,	/* files rebuilt from a delta */
	METRICS_RECV_FILES_APPEND,	/* files appended to in place */
	METRICS_RECV_FILES_BLOCKS,	/* files rebuilt from a clone and
					 * their changed blocks */
	METRICS_RECV_BYTES_WHOLE,	/* content bytes written, whole */
	METRICS_RECV_BYTES_DELTA,	/* content bytes written, delta */
	METRICS_RECV_BYTES_APPEND,	/* content bytes appended in place */
	METRICS_RECV_BYTES_BLOCKS,	/* content bytes of changed blocks */
	METRICS_FULL_COMPARES,		/* compares of the whole tree */
	METRICS_RECONNECTS,		/* follow sessions after the first */
	METRICS_BATCHES,		/* batches of changes applied */
	METRICS_BEHIND_NS,		/* CLOCK_REALTIME the standby's data
					 * is as old as; 0: caught up */
	METRICS_CONTACT_NS,		/* the last answer of the primary */
	METRICS_NIDS
};

/* What a standby is doing, shown as asyncrep_standby_state{state=...}. */
enum metrics_standby_state {
	METRICS_SB_STARTING = 0,	/* before the first hello */
	METRICS_SB_COMPARING,		/* a compare of the whole tree */
	METRICS_SB_FOLLOWING,		/* applying or waiting for batches */
	METRICS_SB_DISCONNECTED,	/* between sessions, retrying */
	METRICS_SB_DONE,		/* a one-shot sync that succeeded */
	METRICS_SB_FAILED,		/* a one-shot sync that did not */
	METRICS_SB_NSTATES
};

/* The text being rendered (growable, at most METRICS_TEXT_MAX bytes). */
#define METRICS_TEXT_MAX (4u * 1024 * 1024)
struct metrics_out {
	char *buf;
	size_t len, cap;
	int failed;		/* out of memory or past the bound */
};

/* A role's look at its state, called at each scrape (any thread). */
typedef void metrics_collect_cb(struct metrics_out *out, void *arg);

/* Which role's series this process shows; counters start at 0. */
void metrics_init(enum metrics_role role);
void metrics_add(enum metrics_id id, uint64_t n);
void metrics_set(enum metrics_id id, uint64_t v);
uint64_t metrics_get(enum metrics_id id);
void metrics_set_standby_state(enum metrics_standby_state st);
/* The standby heard from its primary now (an answer to a poll). */
void metrics_standby_contact(void);
/* The session ended: unless it was behind already, the standby is as
 * old as its last contact. */
void metrics_standby_disconnected(void);
/* A batch of changes took ns from its answer to its durable position:
 * the histogram asyncrep_standby_batch_apply_seconds. */
void metrics_observe_apply(uint64_t ns);
/* cb (NULL: none) adds series at each scrape until replaced. */
void metrics_set_collector(metrics_collect_cb *cb, void *arg);

/* A family's HELP and TYPE lines ("counter" or "gauge"), then its
 * samples: labels is "" or 'name="value",...' already escaped. */
void metrics_out_family(struct metrics_out *out, const char *name,
    const char *type, const char *help);
void metrics_out_uint(struct metrics_out *out, const char *name,
    const char *labels, uint64_t v);
void metrics_out_double(struct metrics_out *out, const char *name,
    const char *labels, double v);
/* value escaped as a label value (\\, \", \n) into buf. */
const char *metrics_label_escape(const char *value, char *buf, size_t len);

/* Everything this role shows, into out (release it with
 * metrics_out_release). Returns 0 or -AR_ENOMEM. */
int metrics_render(struct metrics_out *out);
void metrics_out_release(struct metrics_out *out);

/* The rendered text written durably to path (temp file in its
 * directory, fsync, rename, fsync of the directory). 0 or -AR_EIO. */
int metrics_write_file(const char *path);

/*
 * Serve GET /metrics on addr, in a thread of libmicrohttpd's own.
 * A listener that cannot start is a warning (logged), never an error:
 * *out is then NULL. Returns 0. metrics_stop(NULL) does nothing.
 */
struct metrics_server;
int metrics_start(const struct config_addr *addr,
    struct metrics_server **out);
void metrics_stop(struct metrics_server *m);

#endif

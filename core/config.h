/*
 * config.h: configuration of every role, from an INI file and long options.
 *
 * This module owns parsing and validation of [primary] and [standby]
 * sections (libinih), of durations ("200ms", "2s") and sizes ("64K", "1M"),
 * and of listen addresses ("IP:PORT"). It does no network or tree I/O.
 * Command-line options override file values key by key: every key has a
 * long option whose name is the key with '_' replaced by '-'.
 */
#ifndef ASYNCREP_CONFIG_H
#define ASYNCREP_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "limit.h"
#include "pin.h"

#define CONFIG_ERR_MAX 512
/* Most standby ids in a list (standbys, rescue --standby). */
#define CONFIG_IDS_MAX 64

/* A switch that may be left unset: tls = on | off. */
enum config_onoff {
	CONFIG_UNSET = 0,	/* not written: the default applies */
	CONFIG_OFF = 1,
	CONFIG_ON = 2,
};

/* The TLS keys, the same in both sections. */
struct config_tls {
	char *cert;			/* tls_cert: our certificate (PEM) */
	char *key;			/* tls_key: its private key (PEM) */
	char *trust;			/* tls_trust: pins of the peers' keys */
	char *ca;			/* tls_ca: a CA bundle (PEM) */
	int mode;			/* tls: enum config_onoff */
};

/* An IPv4 or IPv6 address and port; text keeps the operator's spelling. */
struct config_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[80];
	int set;
};

/* A count, or a percentage of a whole ("50%"): max_delete. */
struct config_portion {
	uint64_t n;		/* the count, or the percentage (0 to 100) */
	int percent;		/* n is a percentage */
};

struct config_primary {
	char *data_dir;
	char *spool_dir;
	struct config_addr listen;
	uint64_t interval_ns;		/* default 200ms */
	char *auth_token_file;		/* NULL: loopback only */
	unsigned max_connections;	/* default 64 */
	unsigned max_per_ip;		/* default 16 */
	uint64_t timeout_ns;		/* idle connection timeout, default 30s */
	uint64_t max_signature_size;	/* default 64M */
	unsigned max_deltas;		/* concurrent deltas, default 4 */
	uint64_t header_timeout_ns;	/* to authenticate, default 10s */
	uint64_t reverify_rate;		/* bytes/s re-read of appended files,
					 * 32M, 0: off */
	unsigned threads;		/* server threads, default 4 */
	char *watch_mode;		/* "inotify" (default) or "poll" */
	uint64_t poll_interval_ns;	/* poll mode scan period, default 1s */
	char *exclude;			/* comma-separated patterns */
	uint64_t spool_max_size;	/* past it, laggards do a full compare */
	char *standbys;			/* ids a rescue completes; NULL: acks */
	uint64_t standby_expiry_ns;	/* older acks: not waited for (168h) */
	struct config_tls tls;
	uint64_t bwlimit;		/* bytes/s of file data sent to all
					 * standbys together, 0: no limit */
	struct config_addr metrics_listen;	/* GET /metrics; unset: none */
};

struct config_standby {
	char *data_dir;
	char *state_dir;
	struct config_addr primary;
	char *auth_token_file;
	uint64_t connect_timeout_ns;	/* default 5s */
	uint64_t stall_timeout_ns;	/* no progress for this long: fail, default 30s */
	uint64_t delta_min_size;	/* smaller changed files are sent whole, default 64K */
	uint64_t lane_min_size;		/* bigger transfers run in a lane of
					 * their own while following, 0: none;
					 * default 8M */
	uint64_t batch_size;		/* bytes of small files per request, default 16M */
	unsigned batch_files;		/* files per request, default 1024 */
	char *standby_id;		/* name for the primary; default hostname */
	char *exclude;			/* comma-separated patterns */
	struct config_tls tls;
	struct config_portion max_delete; /* deletions a compare of the
					 * whole tree may make, 50% */
	uint64_t bwlimit;		/* bytes/s received, 0: no limit */
	char *compress;			/* "off" (default) or "zstd" */
	unsigned compress_level;	/* zstd level, 1 to 19, default 3 */
	struct config_addr metrics_listen;	/* GET /metrics; unset: none */
	uint64_t max_file_size;		/* larger files refused, 0: none */
	uint64_t max_stored_size;	/* a stored answer, default 4G */
	int specials;			/* FIFOs and sockets made: yes */
	int devices;			/* device nodes made (as root): yes */
	char *xattrs;			/* namespaces replicated, NULL: all of
					 * "user, trusted, security" */
	int selinux;			/* security.selinux too: no */
	int acls;			/* POSIX ACLs: yes */
	int map_users;			/* owners by name, as rsync without
					 * --numeric-ids: no */
	char *append;			/* "inplace" (default) or "atomic" */
	uint64_t append_min_size;	/* files with a block store, 1M */
	char *inplace;			/* patterns updated in place through
					 * a journal without reflinks, or NULL */
	uint64_t inplace_min_size;	/* ... from this size: 64M */
	int strip_setuid;		/* enum config_onoff, default off */
};

struct config {
	char *file;			/* the file read, or NULL */
	struct config_primary primary;
	struct config_standby standby;
};

/* Fill defaults; no allocation. */
void config_init(struct config *cfg);
void config_release(struct config *cfg);

/*
 * Read an INI file into cfg. Unknown sections and keys are errors.
 * On error returns -AR_ECONFIG and writes "FILE:LINE: key 'K': reason"
 * into err.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/*
 * The same as config_load, from len bytes of memory (no NUL needed);
 * name stands for the file name in messages. Used by the fuzzer.
 */
int config_load_buffer(struct config *cfg, const char *name, const char *buf,
    size_t len, char *err, size_t errlen);

/*
 * Set one key of one section ("primary" or "standby") from text, exactly
 * as a file line would. Returns 0, or -AR_EUSAGE with a message in err
 * that names the key. Used for long options.
 */
int config_set(struct config *cfg, const char *section, const char *key,
    const char *value, char *err, size_t errlen);

/*
 * Check that a role has what it needs (data_dir etc.); role is "primary"
 * or "standby". Returns 0 or -AR_ECONFIG / -AR_EUSAGE with a message.
 */
int config_check(const struct config *cfg, const char *role, char *err,
    size_t errlen);

/* NULL-terminated list of the keys of a section ("primary" or "standby"),
 * from which the command line builds its long options. */
const char *const *config_section_keys(const char *section);

/* 1 when TLS is on: tls = on, or tls not written and tls_cert set. */
int config_tls_enabled(const struct config_tls *t);

/* 1 if the key of section is an absolute path in the file (a relative
 * one given as an option means the current directory). */
int config_key_is_path(const char *section, const char *key);

/* Pure parsers, exposed for tests and fuzzing. Return 0 or -AR_EUSAGE. */
int config_parse_duration(const char *s, uint64_t *ns);
/* A duration of a timeout: as config_parse_duration, but a bare number
 * is seconds (as rsync and systemd read it). */
int config_parse_seconds(const char *s, uint64_t *ns);
int config_parse_size(const char *s, uint64_t *bytes);
int config_parse_addr(const char *s, struct config_addr *addr);
int config_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);
int config_parse_portion(const char *s, struct config_portion *out);

/*
 * The next id of a comma-separated list of standby ids (the standbys
 * key, already checked when it was set): 1 and the id in id, *list
 * moved past it; 0 at the end; -AR_EUSAGE for an item that is not an
 * id (limit_id_valid).
 */
int config_ids_next(const char **list, char id[LIMIT_ID_MAX + 1]);
/* The same, with the item's pin ("ID=sha256:HEX", lowercased) in pin,
 * "" for an id without one. */
int config_ids_next_pin(const char **list, char id[LIMIT_ID_MAX + 1],
    char pin[PIN_TEXT_LEN + 1]);

#endif

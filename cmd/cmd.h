/*
 * cmd.h: the command table of the asyncrep tool.
 *
 * Each cmd-<name>.c exports a struct cmd_entry that lists the options
 * of its command. cmd/asyncrep.c accepts, for a command, the options
 * common to every command, the command's own and one long option per
 * config key of its section, and nothing else: an option of another
 * command is a usage error. It turns them into a struct cmd_ctx, checks
 * the command's section once and calls the command's exec. Each
 * cmd-<name>.c is thin: it calls into core/. cmd/cmd.c holds what the
 * commands share.
 */
#ifndef ASYNCREP_CMD_H
#define ASYNCREP_CMD_H

#include <signal.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "init.h"

struct cmd_ctx {
	struct config cfg;
	int dry_run;		/* --dry-run / -n (sync) */
	int itemize;		/* --itemize-changes / -i (sync) */
	int follow;		/* --follow (sync) */
	int json;		/* --json (status) */
	int watch;		/* --watch (status) */
	int verbosity;		/* LOG_LVL_INFO, +1 per -v, -1 per -q */
	const char *config_path; /* -c FILE, or NULL */
	const char *root;	/* --root (rescue) */
	uint64_t timeout_ns;	/* --timeout (rescue), 0: default */
	uint64_t storage_timeout_ns; /* --storage-timeout (rescue), 0: default */
	uint64_t settle_ns;	/* --settle (rescue) */
	const char *status_file; /* --status-file (rescue, watch) */
	const char *standbys[CONFIG_IDS_MAX]; /* --standby (rescue) */
	size_t nstandbys;
	int any;		/* --any (rescue) */
	int reinit;		/* --reinit (watch) */
	const char **given;	/* the config keys set by options */
	size_t ngiven;
	int allow_empty;	/* --allow-empty (watch) */
	int force_delete;	/* --force-delete (sync) */
	const char *dir;	/* --dir (init) */
	const char *peer_pin;	/* --peer-pin (init) */
	const char *sets[INIT_SETS_MAX]; /* --set KEY=VALUE (init) */
	size_t nsets;
	const char *metrics_file; /* --metrics-file (sync) */
	int checksum;		/* --checksum (sync) */
	int progress;		/* --progress (sync) */
	uint64_t rate;		/* --rate (verify), bytes/s, 0: unbounded */
	int argc;		/* operands left after options */
	char **argv;
};

/* Values of the options without a short form (a short option's value is
 * its letter); config keys' options come after CMD_OPT_KEY. */
enum cmd_opt {
	CMD_OPT_SYSLOG = 256,
	CMD_OPT_FOLLOW,
	CMD_OPT_JSON,
	CMD_OPT_ROOT,
	CMD_OPT_TIMEOUT,
	CMD_OPT_STORAGE_TIMEOUT,
	CMD_OPT_SETTLE,
	CMD_OPT_STATUS_FILE,
	CMD_OPT_REINIT,
	CMD_OPT_STANDBY,
	CMD_OPT_ANY,
	CMD_OPT_ALLOW_EMPTY,
	CMD_OPT_FORCE_DELETE,
	CMD_OPT_DIR,
	CMD_OPT_PEER_PIN,
	CMD_OPT_SET,
	CMD_OPT_WATCH,
	CMD_OPT_METRICS_FILE,
	CMD_OPT_CHECKSUM,
	CMD_OPT_PROGRESS,
	CMD_OPT_RATE,
	CMD_OPT_KEY = 512,
};

struct cmd_option {
	const char *name;	/* long name, without "--"; NULL ends a list */
	int has_arg;		/* getopt's no_argument or required_argument */
	int val;		/* the short letter, or an enum cmd_opt */
	const char *arg;	/* the value's name in --help, NULL if none */
	const char *help;	/* one line */
};

struct cmd_entry {
	const char *name;
	const char *section;	/* config section: "primary" or "standby";
				 * NULL: whole files only, no key options */
	const char *usage;	/* one line, after "asyncrep NAME " */
	const char *help;	/* what it does, one line */
	/* The command's own options, ended by { NULL }; asyncrep.c adds
	 * the common ones and the keys of section. */
	const struct cmd_option *options;
	int (*exec)(struct cmd_ctx *ctx);	/* returns 0 or -enum ar_err */
	/* Not 0: the command reads storage that may hang (guard.h). The
	 * watchdog runs from before the configuration is read, with this
	 * limit unless --storage-timeout gives one. */
	uint64_t storage_guard_ns;
};

extern const struct cmd_entry cmd_watch_entry;
extern const struct cmd_entry cmd_sync_entry;
extern const struct cmd_entry cmd_status_entry;
extern const struct cmd_entry cmd_rescue_entry;
extern const struct cmd_entry cmd_keygen_entry;
extern const struct cmd_entry cmd_init_entry;
extern const struct cmd_entry cmd_verify_entry;

/*
 * The signals of a long-running command, put into *set: SIGINT and
 * SIGTERM, which stop it, and with hup SIGHUP, which the command takes
 * rather than dies of. With a handler, each is caught by it (without
 * SA_RESTART, so that a blocking call returns EINTR); without, they are
 * blocked in this thread and every thread it creates later, for the
 * caller to take with sigwait() or sigtimedwait(). SIGPIPE is ignored by
 * main() for every command. Returns 0 or -AR_EINTERNAL.
 */
int cmd_signals(sigset_t *set, int hup, void (*handler)(int));

/*
 * The token (token_file, NULL: none) and the TLS material (tls, files
 * opened as tls_load says with dirfds) into *a; errors are logged.
 * Returns 0 or the error; release *a with auth_release.
 */
int cmd_auth_load(struct auth *a, const char *token_file,
    const struct config_tls *tls, const int dirfds[TLS_NFILES]);

/* 1 if the command line set config key key (an option, not the file). */
int cmd_key_given(const struct cmd_ctx *ctx, const char *key);

#endif

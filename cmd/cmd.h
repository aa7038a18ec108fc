/*
 * cmd.h: the command table of the asyncrep tool.
 *
 * cmd/asyncrep.c parses the options common to every command (including
 * one long option per config key of the command's section) into a
 * struct cmd_ctx, then calls the command's exec. Each cmd-<name>.c is
 * thin: it checks the config and calls into core/. cmd/cmd.c holds what
 * the commands share.
 */
#ifndef ASYNCREP_CMD_H
#define ASYNCREP_CMD_H

#include <signal.h>
#include <stdint.h>

#include "config.h"

struct cmd_ctx {
	struct config cfg;
	int dry_run;		/* --dry-run / -n */
	int itemize;		/* --itemize-changes / -i */
	int follow;		/* --follow */
	int json;		/* --json */
	int verbosity;		/* LOG_LVL_INFO, +1 per -v, -1 per -q */
	const char *config_path; /* -c FILE, or NULL */
	const char *root;	/* --root (rescue) */
	uint64_t timeout_ns;	/* --timeout (rescue), 0: default */
	uint64_t storage_timeout_ns; /* --storage-timeout (rescue), 0: default */
	uint64_t settle_ns;	/* --settle (rescue) */
	const char *status_file; /* --status-file (rescue) */
	int reinit;		/* --reinit (watch) */
	int argc;		/* operands left after options */
	char **argv;
};

struct cmd_entry {
	const char *name;
	const char *section;	/* config section: "primary" or "standby";
				 * NULL: whole files only, no key options */
	const char *usage;	/* one line, after "asyncrep NAME " */
	const char *help;	/* what it does, one line */
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


#endif

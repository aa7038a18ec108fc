/*
 * asyncrep.c: main(), the command table and the options of every command.
 *
 * Nothing here replicates anything: main finds the command, turns the
 * options into a struct cmd_ctx (config file first, then one long option
 * per config key on top of it, whatever their order on the line), checks
 * that the command's section is complete, opens the log and calls the
 * command. Its exit status is the command's error, negated.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "error.h"
#include "guard.h"
#include "log.h"
#include "rescue.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* Bounds of the option table built from the config keys. */
#define ASYNCREP_MAX_KEYS 32
#define ASYNCREP_OPT_NAME 48

/* Values of long options without a short form; keys start at OPT_KEY. */
enum {
	OPT_SYSLOG = 256,
	OPT_FOLLOW,
	OPT_JSON,
	OPT_ROOT,
	OPT_TIMEOUT,
	OPT_STORAGE_TIMEOUT,
	OPT_SETTLE,
	OPT_STATUS_FILE,
	OPT_REINIT,
	OPT_KEY = 512,
};

static const struct cmd_entry *const asyncrep_commands[] = {
	&cmd_watch_entry,
	&cmd_sync_entry,
	&cmd_rescue_entry,
	&cmd_status_entry,
};

static const char *const no_keys[] = { NULL };
#define ASYNCREP_NCOMMANDS \
	(sizeof asyncrep_commands / sizeof asyncrep_commands[0])

struct asyncrep_option {
	const char *name;
	int has_arg;
	int val;
	const char *arg;	/* shown in help, NULL if none */
	const char *help;
};

static const struct asyncrep_option asyncrep_common[] = {
	{ "config", required_argument, 'c', "FILE",
	    "read FILE (its section for this command)" },
	{ "verbose", no_argument, 'v', NULL,
	    "more messages (twice: debugging)" },
	{ "quiet", no_argument, 'q', NULL,
	    "fewer messages (twice: errors only)" },
	{ "syslog", no_argument, OPT_SYSLOG, NULL,
	    "log to syslog instead of standard error" },
	{ "dry-run", no_argument, 'n', NULL,
	    "show what would be done, change nothing" },
	{ "itemize-changes", no_argument, 'i', NULL,
	    "print one line per changed file" },
	{ "follow", no_argument, OPT_FOLLOW, NULL,
	    "keep running and replicating until stopped" },
	{ "json", no_argument, OPT_JSON, NULL,
	    "print machine-readable output (status)" },
	{ "root", required_argument, OPT_ROOT, "DIR",
	    "rescue: the primary's paths lie under DIR" },
	{ "timeout", required_argument, OPT_TIMEOUT, "T",
	    "rescue: fail if no standby calls for T (default 300s)" },
	{ "storage-timeout", required_argument, OPT_STORAGE_TIMEOUT, "T",
	    "rescue: storage silent for T is hung (default 20s)" },
	{ "settle", required_argument, OPT_SETTLE, "T",
	    "rescue: wait T for the mount's caches to expire first" },
	{ "status-file", required_argument, OPT_STATUS_FILE, "FILE",
	    "rescue: keep the progress in FILE" },
	{ "reinit", no_argument, OPT_REINIT, NULL,
	    "watch: start a new generation (after a rescue)" },
	{ "help", no_argument, 'h', NULL, "show this help" },
};
#define ASYNCREP_NCOMMON (sizeof asyncrep_common / sizeof asyncrep_common[0])

/* A key option seen on the command line, applied after the file. */
struct asyncrep_set {
	const char *key;
	const char *opt;
	const char *value;
};

static void
asyncrep_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: asyncrep COMMAND [options]\n"
	    "       asyncrep --help | --version\n\ncommands:\n");
	for (i = 0; i < ASYNCREP_NCOMMANDS; i++) {
		fprintf(f, "  %-8s %s\n", asyncrep_commands[i]->name,
		    asyncrep_commands[i]->help);
	}
	fprintf(f, "\nRun 'asyncrep COMMAND --help' for the options of a "
	    "command; see asyncrep(1) and asyncrep.conf(5).\n");
}

static void
asyncrep_command_help(const struct cmd_entry *entry,
    const char *const *keys, char names[][ASYNCREP_OPT_NAME])
{
	const struct asyncrep_option *o;
	char left[ASYNCREP_OPT_NAME + 16];
	size_t i;

	printf("usage: asyncrep %s %s\n%s\n\noptions:\n", entry->name,
	    entry->usage, entry->help);
	for (i = 0; i < ASYNCREP_NCOMMON; i++) {
		o = &asyncrep_common[i];
		if (o->val < 256)
			snprintf(left, sizeof left, "-%c, --%s%s%s", o->val,
			    o->name, o->arg != NULL ? " " : "",
			    o->arg != NULL ? o->arg : "");
		else
			snprintf(left, sizeof left, "    --%s", o->name);
		printf("  %-26s %s\n", left, o->help);
	}
	if (entry->section == NULL)
		return;
	printf("\nconfiguration keys of [%s], overriding the file "
	    "(see asyncrep.conf(5)):\n", entry->section);
	for (i = 0; keys[i] != NULL; i++)
		printf("      --%.*s VALUE\n", ASYNCREP_OPT_NAME, names[i]);
}

/*
 * A relative path typed on the command line means the current directory,
 * as with every other tool; the config file insists on absolute paths
 * because nobody knows the directory cron or Pacemaker will start in.
 */
static int
asyncrep_absolute(const char *key, const char *value, char *out,
    size_t outlen)
{
	char cwd[PATH_MAX];
	size_t klen = strlen(key);
	int n;

	if (value[0] == '/' || value[0] == '\0' ||
	    !((klen > 4 && strcmp(key + klen - 4, "_dir") == 0) ||
	    (klen > 5 && strcmp(key + klen - 5, "_file") == 0))) {
		n = snprintf(out, outlen, "%s", value);
		return n < 0 || (size_t)n >= outlen ? -1 : 0;
	}
	if (getcwd(cwd, sizeof cwd) == NULL)
		return -1;
	n = snprintf(out, outlen, "%s/%s", cwd, value);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* --timeout (above 0), --storage-timeout (1s at least: the watchdog
 * looks four times a second) and --settle into ctx. */
static int
asyncrep_duration_opt(const struct cmd_entry *entry, int opt,
    const char *arg, struct cmd_ctx *ctx)
{
	uint64_t *out = opt == OPT_TIMEOUT ? &ctx->timeout_ns :
	    opt == OPT_STORAGE_TIMEOUT ? &ctx->storage_timeout_ns :
	    &ctx->settle_ns;
	const char *name = opt == OPT_TIMEOUT ? "timeout" :
	    opt == OPT_STORAGE_TIMEOUT ? "storage-timeout" : "settle";

	if (config_parse_duration(arg, out) != 0 ||
	    (opt == OPT_TIMEOUT && *out == 0) ||
	    (opt == OPT_STORAGE_TIMEOUT && *out < 1000000000ull)) {
		fprintf(stderr, "asyncrep: %s: --%s: bad duration '%s'%s\n",
		    entry->name, name, arg, opt == OPT_STORAGE_TIMEOUT ?
		    " (1s at least)" : "");
		return -1;
	}
	return 0;
}

/* The exit status for what a command returned. */
static int
asyncrep_status(int r)
{
	if (r > 0 || r <= -AR__MAX)
		return AR_EINTERNAL;
	return -r;
}

static int
asyncrep_run(const struct cmd_entry *entry, int argc, char **argv)
{
	static char names[ASYNCREP_MAX_KEYS][ASYNCREP_OPT_NAME];
	struct option longopts[ASYNCREP_NCOMMON + ASYNCREP_MAX_KEYS + 1];
	struct cmd_ctx ctx;
	struct asyncrep_set *sets = NULL;
	const char *const *keys;
	const char *config_path = NULL, *bad;
	char err[CONFIG_ERR_MAX], value[PATH_MAX + 1];
	size_t nkeys, nsets = 0, i, j;
	int c, use_syslog = 0, r;

	memset(&ctx, 0, sizeof ctx);
	config_init(&ctx.cfg);
	ctx.verbosity = LOG_LVL_INFO;

	/* A command of no section (status) reads whole files only. */
	keys = entry->section != NULL ? config_section_keys(entry->section) :
	    no_keys;
	if (keys == NULL) {
		fprintf(stderr, "asyncrep: %s: unknown section [%s]\n",
		    entry->name, entry->section);
		return AR_EINTERNAL;
	}
	for (i = 0; i < ASYNCREP_NCOMMON; i++) {
		longopts[i].name = asyncrep_common[i].name;
		longopts[i].has_arg = asyncrep_common[i].has_arg;
		longopts[i].flag = NULL;
		longopts[i].val = asyncrep_common[i].val;
	}
	for (nkeys = 0; keys[nkeys] != NULL; nkeys++) {
		if (nkeys == ASYNCREP_MAX_KEYS ||
		    strlen(keys[nkeys]) >= ASYNCREP_OPT_NAME) {
			fprintf(stderr, "asyncrep: too many or too long "
			    "config keys\n");
			return AR_EINTERNAL;
		}
		for (j = 0; keys[nkeys][j] != '\0'; j++)
			names[nkeys][j] = keys[nkeys][j] == '_' ? '-' :
			    keys[nkeys][j];
		names[nkeys][j] = '\0';
		longopts[ASYNCREP_NCOMMON + nkeys].name = names[nkeys];
		longopts[ASYNCREP_NCOMMON + nkeys].has_arg = required_argument;
		longopts[ASYNCREP_NCOMMON + nkeys].flag = NULL;
		longopts[ASYNCREP_NCOMMON + nkeys].val = OPT_KEY + (int)nkeys;
	}
	memset(&longopts[ASYNCREP_NCOMMON + nkeys], 0, sizeof longopts[0]);

	/* At most one key option per argument. */
	sets = calloc((size_t)argc + 1, sizeof *sets);
	if (sets == NULL) {
		fprintf(stderr, "asyncrep: out of memory\n");
		return AR_ENOMEM;
	}

	opterr = 0;
	optind = 1;
	r = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":c:vqnih", longopts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case 'c':
			config_path = optarg;
			ctx.config_path = optarg;
			break;
		case 'v':
			ctx.verbosity++;
			break;
		case 'q':
			ctx.verbosity--;
			break;
		case 'n':
			ctx.dry_run = 1;
			break;
		case 'i':
			ctx.itemize = 1;
			break;
		case 'h':
			asyncrep_command_help(entry, keys, names);
			goto out;
		case OPT_SYSLOG:
			use_syslog = 1;
			break;
		case OPT_FOLLOW:
			ctx.follow = 1;
			break;
		case OPT_JSON:
			ctx.json = 1;
			break;
		case OPT_ROOT:
			ctx.root = optarg;
			break;
		case OPT_TIMEOUT:
		case OPT_STORAGE_TIMEOUT:
		case OPT_SETTLE:
			if (asyncrep_duration_opt(entry, c, optarg, &ctx) != 0) {
				r = AR_EUSAGE;
				goto out;
			}
			break;
		case OPT_STATUS_FILE:
			ctx.status_file = optarg;
			break;
		case OPT_REINIT:
			ctx.reinit = 1;
			break;
		case ':':
			fprintf(stderr, "asyncrep: %s: option '%s' needs a "
			    "value\n", entry->name, argv[optind - 1]);
			r = AR_EUSAGE;
			goto out;
		case '?':
			/* A bad short option may sit inside a group. */
			bad = argv[optind - 1];
			if (optopt > 0 && optopt < 128 &&
			    strncmp(bad, "--", 2) != 0)
				fprintf(stderr, "asyncrep: %s: unknown option "
				    "'-%c'", entry->name, optopt);
			else
				fprintf(stderr, "asyncrep: %s: unknown or "
				    "malformed option '%s'", entry->name, bad);
			fprintf(stderr, " (try 'asyncrep %s --help')\n",
			    entry->name);
			r = AR_EUSAGE;
			goto out;
		default:
			if (c < OPT_KEY || c >= OPT_KEY + (int)nkeys) {
				fprintf(stderr, "asyncrep: unexpected option "
				    "%d\n", c);
				r = AR_EINTERNAL;
				goto out;
			}
			sets[nsets].key = keys[c - OPT_KEY];
			sets[nsets].opt = names[c - OPT_KEY];
			sets[nsets].value = optarg;
			nsets++;
			break;
		}
	}
	ctx.argc = argc - optind;
	ctx.argv = argv + optind;

	if (entry->storage_guard_ns != 0 && guard_start(
	    ctx.storage_timeout_ns ? ctx.storage_timeout_ns :
	    entry->storage_guard_ns, rescue_storage_hung,
	    (void *)ctx.status_file) != 0) {
		fprintf(stderr, "asyncrep: cannot start the storage watchdog\n");
		r = AR_EINTERNAL;
		goto out;
	}
	/* The file first, so that options win whatever their order. */
	if (config_path != NULL) {
		guard_enter("reading the configuration file");
		r = config_load(&ctx.cfg, config_path, err, sizeof err);
		guard_leave();
		if (r != 0) {
			fprintf(stderr, "asyncrep: %s\n", err);
			r = asyncrep_status(r);
			goto out;
		}
	}
	for (i = 0; i < nsets; i++) {
		if (asyncrep_absolute(sets[i].key, sets[i].value, value,
		    sizeof value) != 0) {
			fprintf(stderr, "asyncrep: --%s: path too long\n",
			    sets[i].opt);
			r = AR_EUSAGE;
			goto out;
		}
		r = config_set(&ctx.cfg, entry->section, sets[i].key, value,
		    err, sizeof err);
		if (r != 0) {
			fprintf(stderr, "asyncrep: option --%s: %s\n",
			    sets[i].opt, err);
			r = asyncrep_status(r);
			goto out;
		}
	}
	r = entry->section != NULL ? config_check(&ctx.cfg, entry->section,
	    err, sizeof err) : 0;
	if (r != 0) {
		fprintf(stderr, "asyncrep: %s: %s\n", entry->name, err);
		r = asyncrep_status(r);
		goto out;
	}

	log_open("asyncrep", use_syslog, ctx.verbosity);
	r = asyncrep_status(entry->exec(&ctx));
out:
	guard_stop();
	free(sets);
	config_release(&ctx.cfg);
	return r;
}

int
main(int argc, char **argv)
{
	const char *name;
	char q[128];
	size_t i;

	/* A vanished peer or reader is an error to handle, not a death. */
	signal(SIGPIPE, SIG_IGN);

	if (argc < 2) {
		asyncrep_usage(stderr);
		return AR_EUSAGE;
	}
	name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
		asyncrep_usage(stdout);
		return 0;
	}
	if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
		printf("asyncrep %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (name[0] == '-') {
		fprintf(stderr, "asyncrep: unknown option '%s' (a command "
		    "comes first; try 'asyncrep --help')\n", name);
		return AR_EUSAGE;
	}
	for (i = 0; i < ASYNCREP_NCOMMANDS; i++) {
		if (strcmp(asyncrep_commands[i]->name, name) == 0)
			return asyncrep_run(asyncrep_commands[i], argc - 1,
			    argv + 1);
	}
	fprintf(stderr, "asyncrep: unknown command '%s' (try 'asyncrep "
	    "--help')\n", log_escape(name, strlen(name), q, sizeof q));
	return AR_EUSAGE;
}

/*
 * asyncrep.c: main(), the command table and the options common to every
 * command.
 *
 * Nothing here replicates anything: main finds the command, turns the
 * options it takes (the common ones, the command's own from its
 * cmd_entry, and one long option per config key of its section) into a
 * struct cmd_ctx (config file first, then the key options on top of it,
 * whatever their order on the line), checks once that the command's
 * section is complete, opens the log and calls the command. An option
 * of another command is a usage error that names the commands it belongs
 * to. Its exit status is the command's error, negated.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "error.h"
#include "guard.h"
#include "limit.h"
#include "log.h"
#include "rescue.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* Bounds of the option table: common and own options, config keys. */
#define ASYNCREP_MAX_OPTS 32
#define ASYNCREP_MAX_KEYS 48
#define ASYNCREP_OPT_NAME 48

static const struct cmd_entry *const asyncrep_commands[] = {
	&cmd_watch_entry,
	&cmd_sync_entry,
	&cmd_verify_entry,
	&cmd_rescue_entry,
	&cmd_status_entry,
	&cmd_keygen_entry,
	&cmd_init_entry,
};

static const char *const no_keys[] = { NULL };
#define ASYNCREP_NCOMMANDS \
	(sizeof asyncrep_commands / sizeof asyncrep_commands[0])

/* The options of every command; each command adds its own. */
static const struct cmd_option asyncrep_common[] = {
	{ "config", required_argument, 'c', "FILE",
	    "read FILE (its section for this command)" },
	{ "verbose", no_argument, 'v', NULL,
	    "more messages (twice: debugging)" },
	{ "quiet", no_argument, 'q', NULL,
	    "fewer messages (twice: errors only)" },
	{ "syslog", no_argument, CMD_OPT_SYSLOG, NULL,
	    "log to syslog instead of standard error" },
	{ "help", no_argument, 'h', NULL, "show this help" },
	{ NULL, 0, 0, NULL, NULL },
};

/* A key option seen on the command line, applied after the file. */
struct asyncrep_set {
	const char *key;
	const char *opt;
	const char *value;
};

/* The option of a config key: its name with each '_' written '-'. */
static int
asyncrep_key_option(const char *key, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; key[i] != '\0'; i++) {
		if (i + 1 >= outlen)
			return -1;
		out[i] = key[i] == '_' ? '-' : key[i];
	}
	out[i] = '\0';
	return 0;
}

/* The config keys of a command's section, NULL for an unknown one. */
static const char *const *
asyncrep_keys(const struct cmd_entry *entry)
{
	return entry->section != NULL ? config_section_keys(entry->section) :
	    no_keys;
}

/*
 * Whether entry takes the option: the long one called name (if not
 * NULL), or the short one letter.
 */
static int
asyncrep_takes(const struct cmd_entry *entry, const char *name, int letter)
{
	const struct cmd_option *lists[2] = { asyncrep_common, entry->options };
	const struct cmd_option *o;
	const char *const *keys;
	char opt[ASYNCREP_OPT_NAME];
	size_t l;

	for (l = 0; l < 2; l++) {
		for (o = lists[l]; o != NULL && o->name != NULL; o++) {
			if (name != NULL ? strcmp(o->name, name) == 0 :
			    o->val == letter)
				return 1;
		}
	}
	keys = asyncrep_keys(entry);
	for (; name != NULL && keys != NULL && *keys != NULL; keys++) {
		if (asyncrep_key_option(*keys, opt, sizeof opt) == 0 &&
		    strcmp(opt, name) == 0)
			return 1;
	}
	return 0;
}

/*
 * An option that entry does not take, the long one called name or (name
 * NULL) the short one letter: if other commands take it, a usage error
 * that names them, since it is in the wrong place, not misspelled.
 * Returns 1 if it said so, 0 if no command takes it.
 */
static int
asyncrep_foreign(const struct cmd_entry *entry, const char *name, int letter)
{
	char owners[128];
	size_t off = 0, i;
	int n;

	if (name == NULL && (letter <= 0 || letter >= 128))
		return 0;
	for (i = 0; i < ASYNCREP_NCOMMANDS; i++) {
		if (asyncrep_commands[i] == entry ||
		    !asyncrep_takes(asyncrep_commands[i], name, letter))
			continue;
		n = snprintf(owners + off, sizeof owners - off, "%s%s",
		    off > 0 ? ", " : "", asyncrep_commands[i]->name);
		if (n < 0 || (size_t)n >= sizeof owners - off)
			break;
		off += (size_t)n;
	}
	if (off == 0)
		return 0;
	if (name != NULL)
		fprintf(stderr, "asyncrep: %s: option '--%s' is not an option "
		    "of %s (it belongs to %s)\n", entry->name, name,
		    entry->name, owners);
	else
		fprintf(stderr, "asyncrep: %s: option '-%c' is not an option "
		    "of %s (it belongs to %s)\n", entry->name, letter,
		    entry->name, owners);
	return 1;
}

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
asyncrep_option_help(const struct cmd_option *o)
{
	char left[ASYNCREP_OPT_NAME + 16];

	for (; o != NULL && o->name != NULL; o++) {
		if (o->val < 256)
			snprintf(left, sizeof left, "-%c, --%s%s%s", o->val,
			    o->name, o->arg != NULL ? " " : "",
			    o->arg != NULL ? o->arg : "");
		else
			snprintf(left, sizeof left, "    --%s%s%s", o->name,
			    o->arg != NULL ? " " : "",
			    o->arg != NULL ? o->arg : "");
		printf("  %-26s %s\n", left, o->help);
	}
}

static void
asyncrep_command_help(const struct cmd_entry *entry,
    const char *const *keys, char names[][ASYNCREP_OPT_NAME])
{
	size_t i;

	printf("usage: asyncrep %s %s\n%s\n\noptions:\n", entry->name,
	    entry->usage, entry->help);
	asyncrep_option_help(asyncrep_common);
	asyncrep_option_help(entry->options);
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
asyncrep_absolute(const char *section, const char *key, const char *value,
    char *out, size_t outlen)
{
	char cwd[PATH_MAX];
	size_t klen = strlen(key);
	int n;

	if (value[0] == '/' || value[0] == '\0' ||
	    !(config_key_is_path(section, key) ||
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
	uint64_t *out = opt == CMD_OPT_TIMEOUT ? &ctx->timeout_ns :
	    opt == CMD_OPT_STORAGE_TIMEOUT ? &ctx->storage_timeout_ns :
	    &ctx->settle_ns;
	const char *name = opt == CMD_OPT_TIMEOUT ? "timeout" :
	    opt == CMD_OPT_STORAGE_TIMEOUT ? "storage-timeout" : "settle";

	/* Timeouts all: a bare number is seconds. */
	if (config_parse_seconds(arg, out) != 0 ||
	    (opt == CMD_OPT_TIMEOUT && *out == 0) ||
	    (opt == CMD_OPT_STORAGE_TIMEOUT && *out < 1000000000ull)) {
		fprintf(stderr, "asyncrep: %s: --%s: bad duration '%s'%s\n",
		    entry->name, name, arg, opt == CMD_OPT_STORAGE_TIMEOUT ?
		    " (1s at least)" : "");
		return -1;
	}
	return 0;
}

/* --standby ID, repeatable: a valid id, once, at most CONFIG_IDS_MAX. */
static int
asyncrep_standby_opt(const struct cmd_entry *entry, const char *arg,
    struct cmd_ctx *ctx)
{
	char esc[128];
	size_t i;

	if (!limit_id_valid(arg, strlen(arg))) {
		fprintf(stderr, "asyncrep: %s: --standby: bad standby id '%s' "
		    "(1 to %d characters of [A-Za-z0-9._-])\n", entry->name,
		    log_escape(arg, strlen(arg), esc, sizeof(esc)),
		    LIMIT_ID_MAX);
		return -1;
	}
	for (i = 0; i < ctx->nstandbys; i++) {
		if (strcmp(ctx->standbys[i], arg) == 0)
			return 0;
	}
	if (ctx->nstandbys == CONFIG_IDS_MAX) {
		fprintf(stderr, "asyncrep: %s: --standby: at most %d standbys\n",
		    entry->name, CONFIG_IDS_MAX);
		return -1;
	}
	ctx->standbys[ctx->nstandbys++] = arg;
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

/*
 * The getopt tables of entry: the common options, its own and one per
 * key of its section (names[] holds those), into longopts and shorts.
 * Returns the number of keys, or -1 if a table is too small (a bug).
 */
static int
asyncrep_table(const struct cmd_entry *entry, const char *const *keys,
    char names[][ASYNCREP_OPT_NAME], struct option *longopts, char *shorts)
{
	const struct cmd_option *lists[2] = { asyncrep_common, entry->options };
	const struct cmd_option *o;
	size_t n = 0, ns = 0, nkeys, l;

	shorts[ns++] = ':';	/* a missing value is ':', not '?' */
	for (l = 0; l < 2; l++) {
		for (o = lists[l]; o != NULL && o->name != NULL; o++) {
			if (n == ASYNCREP_MAX_OPTS)
				return -1;
			longopts[n].name = o->name;
			longopts[n].has_arg = o->has_arg;
			longopts[n].flag = NULL;
			longopts[n].val = o->val;
			n++;
			if (o->val >= 256)
				continue;
			shorts[ns++] = (char)o->val;
			if (o->has_arg == required_argument)
				shorts[ns++] = ':';
		}
	}
	shorts[ns] = '\0';
	for (nkeys = 0; keys[nkeys] != NULL; nkeys++) {
		if (nkeys == ASYNCREP_MAX_KEYS || asyncrep_key_option(
		    keys[nkeys], names[nkeys], ASYNCREP_OPT_NAME) != 0)
			return -1;
		longopts[n].name = names[nkeys];
		longopts[n].has_arg = required_argument;
		longopts[n].flag = NULL;
		longopts[n].val = CMD_OPT_KEY + (int)nkeys;
		n++;
	}
	memset(&longopts[n], 0, sizeof longopts[0]);
	return (int)nkeys;
}

/*
 * getopt_long takes an unambiguous prefix of a long option for it: then
 * sync --standby (rescue's) would be sync --standby-id. 1 and the word
 * in *bad when the long option name just parsed was not spelled out.
 */
static int
asyncrep_abbreviated(char **argv, const char *name, const char **bad)
{
	const char *w = argv[optind - 1];
	size_t len;

	/* "--name VALUE": the value is the last word taken. */
	if (optarg != NULL && optarg == w && optind >= 2)
		w = argv[optind - 2];
	if (strncmp(w, "--", 2) != 0)
		return 0;
	len = strcspn(w + 2, "=");
	if (strlen(name) == len && strncmp(w + 2, name, len) == 0)
		return 0;
	*bad = w;
	return 1;
}

/* An option getopt refused: say why; its argument is argv[optind - 1]. */
static void
asyncrep_refused(const struct cmd_entry *entry, int c, const char *bad)
{
	/* A bad short option may sit inside a group. */
	int is_long = strncmp(bad, "--", 2) == 0;
	char name[ASYNCREP_OPT_NAME];
	size_t len;

	if (c == ':') {
		fprintf(stderr, "asyncrep: %s: option '%s' needs a value\n",
		    entry->name, bad);
		return;
	}
	if (is_long) {
		len = strcspn(bad + 2, "=");
		if (len < sizeof name) {
			memcpy(name, bad + 2, len);
			name[len] = '\0';
			if (asyncrep_foreign(entry, name, 0))
				return;
		}
	} else if (asyncrep_foreign(entry, NULL, optopt))
		return;
	if (!is_long && optopt > 0 && optopt < 128)
		fprintf(stderr, "asyncrep: %s: unknown option '-%c'",
		    entry->name, optopt);
	else
		fprintf(stderr, "asyncrep: %s: unknown or malformed option "
		    "'%s'", entry->name, bad);
	fprintf(stderr, " (try 'asyncrep %s --help')\n", entry->name);
}

static int
asyncrep_run(const struct cmd_entry *entry, int argc, char **argv)
{
	static char names[ASYNCREP_MAX_KEYS][ASYNCREP_OPT_NAME];
	struct option longopts[ASYNCREP_MAX_OPTS + ASYNCREP_MAX_KEYS + 1];
	char shorts[3 * ASYNCREP_MAX_OPTS + 2];
	struct cmd_ctx ctx;
	struct asyncrep_set *sets = NULL;
	const char **given = NULL;
	const char *const *keys;
	char err[CONFIG_ERR_MAX], value[PATH_MAX + 1];
	const char *bad;
	size_t nsets = 0, i;
	int c, idx, nkeys, use_syslog = 0, r;

	memset(&ctx, 0, sizeof ctx);
	config_init(&ctx.cfg);
	ctx.verbosity = LOG_LVL_INFO;

	/* A command of no section (status) reads whole files only. */
	keys = asyncrep_keys(entry);
	if (keys == NULL) {
		fprintf(stderr, "asyncrep: %s: unknown section [%s]\n",
		    entry->name, entry->section);
		return AR_EINTERNAL;
	}
	nkeys = asyncrep_table(entry, keys, names, longopts, shorts);
	if (nkeys < 0) {
		fprintf(stderr, "asyncrep: %s: too many or too long options\n",
		    entry->name);
		return AR_EINTERNAL;
	}

	/* At most one key option per argument. */
	sets = calloc((size_t)argc + 1, sizeof *sets);
	given = calloc((size_t)argc + 1, sizeof *given);
	if (sets == NULL || given == NULL) {
		fprintf(stderr, "asyncrep: out of memory\n");
		free(sets);
		free(given);
		return AR_ENOMEM;
	}

	opterr = 0;
	optind = 1;
	r = 0;
	for (;;) {
		idx = -1;
		c = getopt_long(argc, argv, shorts, longopts, &idx);
		if (c == -1)
			break;
		if (idx >= 0 && asyncrep_abbreviated(argv, longopts[idx].name,
		    &bad)) {
			asyncrep_refused(entry, '?', bad);
			r = AR_EUSAGE;
			goto out;
		}
		switch (c) {
		case 'c':
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
		case CMD_OPT_SYSLOG:
			use_syslog = 1;
			break;
		case CMD_OPT_FOLLOW:
			ctx.follow = 1;
			break;
		case CMD_OPT_JSON:
			ctx.json = 1;
			break;
		case CMD_OPT_WATCH:
			ctx.watch = 1;
			break;
		case CMD_OPT_ROOT:
			ctx.root = optarg;
			break;
		case CMD_OPT_TIMEOUT:
		case CMD_OPT_STORAGE_TIMEOUT:
		case CMD_OPT_SETTLE:
			if (asyncrep_duration_opt(entry, c, optarg, &ctx) != 0) {
				r = AR_EUSAGE;
				goto out;
			}
			break;
		case CMD_OPT_STATUS_FILE:
			ctx.status_file = optarg;
			break;
		case CMD_OPT_REINIT:
			ctx.reinit = 1;
			break;
		case CMD_OPT_STANDBY:
			if (asyncrep_standby_opt(entry, optarg, &ctx) != 0) {
				r = AR_EUSAGE;
				goto out;
			}
			break;
		case CMD_OPT_ANY:
			ctx.any = 1;
			break;
		case CMD_OPT_ALLOW_EMPTY:
			ctx.allow_empty = 1;
			break;
		case CMD_OPT_FORCE_DELETE:
			ctx.force_delete = 1;
			break;
		case CMD_OPT_DIR:
			ctx.dir = optarg;
			break;
		case CMD_OPT_PEER_PIN:
			ctx.peer_pin = optarg;
			break;
		case CMD_OPT_SET:
			if (ctx.nsets >= INIT_SETS_MAX) {
				fprintf(stderr, "asyncrep: %s: at most %d "
				    "--set options\n", entry->name,
				    INIT_SETS_MAX);
				r = AR_EUSAGE;
				goto out;
			}
			ctx.sets[ctx.nsets++] = optarg;
			break;
		case CMD_OPT_METRICS_FILE:
			ctx.metrics_file = optarg;
			break;
		case CMD_OPT_CHECKSUM:
			ctx.checksum = 1;
			break;
		case CMD_OPT_PROGRESS:
			ctx.progress = 1;
			break;
		case CMD_OPT_RATE:
			if (config_parse_size(optarg, &ctx.rate) != 0 ||
			    ctx.rate == 0) {
				fprintf(stderr, "asyncrep: %s: --rate: bad rate "
				    "'%s' (bytes per second: 50M, 1G)\n",
				    entry->name, optarg);
				r = AR_EUSAGE;
				goto out;
			}
			break;
		case ':':
		case '?':
			asyncrep_refused(entry, c, argv[optind - 1]);
			r = AR_EUSAGE;
			goto out;
		default:
			if (c < CMD_OPT_KEY || c >= CMD_OPT_KEY + nkeys) {
				fprintf(stderr, "asyncrep: unexpected option "
				    "%d\n", c);
				r = AR_EINTERNAL;
				goto out;
			}
			sets[nsets].key = keys[c - CMD_OPT_KEY];
			sets[nsets].opt = names[c - CMD_OPT_KEY];
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
	if (ctx.config_path != NULL) {
		guard_enter("reading the configuration file");
		r = config_load(&ctx.cfg, ctx.config_path, err, sizeof err);
		guard_leave();
		if (r != 0) {
			fprintf(stderr, "asyncrep: %s\n", err);
			r = asyncrep_status(r);
			goto out;
		}
	}
	for (i = 0; i < nsets; i++) {
		if (asyncrep_absolute(entry->section, sets[i].key,
		    sets[i].value, value, sizeof value) != 0) {
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
		given[i] = sets[i].key;
	}
	ctx.given = given;
	ctx.ngiven = nsets;
	/* The one check of the command's section: its exec relies on it. */
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
	free(given);
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
	/*
	 * Requests come and go at the rate of the changes (an append every
	 * 50 ms is a stream buffer, a response buffer and a block list
	 * each): freed memory stays with the process, up to these bounds,
	 * instead of going back to the kernel and faulting in, zeroed, at
	 * the next request (perf showed 15 % of the primary's CPU there).
	 */
	(void)mallopt(M_MMAP_THRESHOLD, 4 << 20);
	(void)mallopt(M_TRIM_THRESHOLD, 16 << 20);

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

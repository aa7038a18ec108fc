/*
 * init.c: asyncrep init (see init.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "fs.h"
#include "init.h"
#include "log.h"
#include "pin.h"
#include "tls.h"

#define INIT_CONF "asyncrep.conf"
#define INIT_TOKEN "token"
#define INIT_TLS "tls"
#define INIT_TOKEN_BYTES 32	/* 64 hex digits */
#define INIT_TEXT_MAX 8192	/* the configuration written */
#define INIT_VALUE_MAX 1024
/* The directory's path, short enough for every file's path below it. */
#define INIT_DIR_MAX (PATH_MAX - 64)

/* A key of the role's section and the value init writes. */
struct init_key {
	const char *key;
	char value[INIT_VALUE_MAX];
	const char *comment;	/* after the value, or NULL */
	int commented;		/* written as a comment: to be filled in */
};

/* The keys init writes for each role, in this order, then those of the
 * --set options it does not list. */
#define INIT_KEYS_MAX (16 + INIT_SETS_MAX)

struct init_conf {
	struct init_key k[INIT_KEYS_MAX];
	size_t n;
};

static int
init_fail(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
init_fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

/* The index of key (klen bytes) in c, or c->n when absent. */
static size_t
init_find(const struct init_conf *c, const char *key, size_t klen)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		if (strlen(c->k[i].key) == klen &&
		    memcmp(c->k[i].key, key, klen) == 0)
			break;
	}
	return i;
}

static int
init_put(struct init_conf *c, const char *key, const char *value,
    const char *comment, int commented)
{
	struct init_key *k;

	if (c->n >= INIT_KEYS_MAX)
		return -AR_EUSAGE;
	k = &c->k[c->n++];
	k->key = key;
	k->comment = comment;
	k->commented = commented;
	if (snprintf(k->value, sizeof k->value, "%s", value) >=
	    (int)sizeof k->value)
		return -AR_EUSAGE;
	return 0;
}

/* The role's defaults; paths below dir (absolute). */
static int
init_defaults(struct init_conf *c, const char *role, const char *dir,
    const char *peer_pin)
{
	char path[3][INIT_VALUE_MAX];
	int r = 0;

	if (snprintf(path[0], sizeof path[0], "%s/%s", dir, INIT_TOKEN) >=
	    (int)sizeof path[0] || snprintf(path[1], sizeof path[1],
	    "%s/%s/cert.pem", dir, INIT_TLS) >= (int)sizeof path[1] ||
	    snprintf(path[2], sizeof path[2], "%s/%s/key.pem", dir, INIT_TLS) >=
	    (int)sizeof path[2])
		return -AR_EUSAGE;
	if (strcmp(role, "primary") == 0) {
		r |= init_put(c, "data_dir", "/srv/data", "the tree to "
		    "replicate", 0);
		r |= init_put(c, "spool_dir", "/srv/asyncrep/spool", "the "
		    "journal: on the storage of data_dir, where a rescue reads "
		    "it", 0);
		r |= init_put(c, "listen", "127.0.0.1:8873", "the address "
		    "standbys dial (a virtual IP under a cluster manager)", 0);
	} else {
		r |= init_put(c, "data_dir", "/srv/replica", "the copy", 0);
		r |= init_put(c, "state_dir", "/var/lib/asyncrep", "this "
		    "standby's position and lock", 0);
		r |= init_put(c, "primary", "127.0.0.1:8873", "the primary's "
		    "listen address", 0);
	}
	r |= init_put(c, "auth_token_file", path[0], "the same token on "
	    "every node", 0);
	r |= init_put(c, "tls_cert", path[1], NULL, 0);
	r |= init_put(c, "tls_key", path[2], NULL, 0);
	if (peer_pin != NULL)
		r |= init_put(c, "tls_trust", peer_pin, NULL, 0);
	else
		r |= init_put(c, "tls_trust", strcmp(role, "primary") == 0 ?
		    "sha256:<the pin of each standby's key>" :
		    "sha256:<the pin of the primary's key>", "printed by "
		    "asyncrep init or keygen on that node", 1);
	return r != 0 ? -AR_EUSAGE : 0;
}

/* One --set KEY=VALUE of the role's section over the defaults. */
static int
init_set(struct init_conf *c, const char *role, const char *set, char *err,
    size_t errlen)
{
	const char *const *keys = config_section_keys(role);
	const char *eq = strchr(set, '='), *key = NULL;
	struct init_key *k;
	size_t klen, i;
	char q[256];

	log_escape(set, strlen(set), q, sizeof q);
	if (eq == NULL || eq == set)
		return init_fail(err, errlen, -AR_EUSAGE, "init: --set '%s': give "
		    "KEY=VALUE", q);
	klen = (size_t)(eq - set);
	for (; keys != NULL && *keys != NULL; keys++) {
		if (strlen(*keys) == klen && memcmp(*keys, set, klen) == 0)
			key = *keys;
	}
	if (key == NULL)
		return init_fail(err, errlen, -AR_EUSAGE, "init: --set '%s': not a "
		    "key of [%s] (see asyncrep.conf(5))", q, role);
	if (strpbrk(eq + 1, "\n\r") != NULL || eq[1] == '\0')
		return init_fail(err, errlen, -AR_EUSAGE, "init: --set '%s': the "
		    "value must be one non-empty line", q);
	i = init_find(c, set, klen);
	if (i == c->n) {
		if (init_put(c, key, eq + 1, NULL, 0) != 0)
			return init_fail(err, errlen, -AR_EUSAGE, "init: --set '%s': "
			    "too long or too many", q);
		return 0;
	}
	k = &c->k[i];
	if (snprintf(k->value, sizeof k->value, "%s", eq + 1) >=
	    (int)sizeof k->value)
		return init_fail(err, errlen, -AR_EUSAGE, "init: --set '%s': value "
		    "too long", q);
	k->comment = NULL;
	k->commented = 0;
	return 0;
}

static int
init_text(const struct init_conf *c, const char *role, char *buf,
    size_t buflen, size_t *len)
{
	size_t off, i;
	int n;

	n = snprintf(buf, buflen,
	    "# asyncrep.conf: written by asyncrep init %s. Every key is in\n"
	    "# asyncrep.conf(5). Check the paths and addresses below before "
	    "the first\n# start; lines starting with '#' are to be filled in.\n"
	    "#\n# A rescue reads the [primary] section, the token and the "
	    "primary's TLS\n# key through the primary's storage: in a cluster, "
	    "keep them on it (see\n# asyncrep(1), RESCUE WORKFLOW).\n\n[%s]\n",
	    role, role);
	if (n < 0 || (size_t)n >= buflen)
		return -AR_ENOMEM;
	off = (size_t)n;
	for (i = 0; i < c->n; i++) {
		n = snprintf(buf + off, buflen - off, "%s%s = %s%s%s\n",
		    c->k[i].commented ? "#" : "", c->k[i].key, c->k[i].value,
		    c->k[i].comment != NULL ? "   ; " : "",
		    c->k[i].comment != NULL ? c->k[i].comment : "");
		if (n < 0 || (size_t)n >= buflen - off)
			return -AR_ENOMEM;
		off += (size_t)n;
	}
	*len = off;
	return 0;
}

/* Refuse to write over dirfd/name, dir/name to the operator. */
static int
init_absent(int dirfd, const char *dir, const char *name, char *err,
    size_t errlen)
{
	struct stat st;
	char q[PATH_MAX];

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 &&
	    errno == ENOENT)
		return 0;
	return init_fail(err, errlen, -AR_EIO, "init: '%s/%s' exists: init "
	    "never replaces a file (remove it, or choose another --dir)",
	    log_escape(dir, strlen(dir), q, sizeof q), name);
}

static int
init_token(int dirfd, char *err, size_t errlen)
{
	uint8_t raw[INIT_TOKEN_BYTES];
	char hex[2 * INIT_TOKEN_BYTES + 2];
	size_t i;
	int r;

	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
		return init_fail(err, errlen, -AR_EIO, "init: no random bytes "
		    "for the token: %s", strerror(errno));
	for (i = 0; i < sizeof raw; i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	hex[2 * INIT_TOKEN_BYTES] = '\n';
	hex[2 * INIT_TOKEN_BYTES + 1] = '\0';
	explicit_bzero(raw, sizeof raw);
	r = fs_write_durable(dirfd, INIT_TOKEN, hex, 2 * INIT_TOKEN_BYTES + 1,
	    0600);
	explicit_bzero(hex, sizeof hex);
	if (r != 0)
		return init_fail(err, errlen, r, "init: cannot write the token: "
		    "%s", strerror(errno));
	return 0;
}

/* The directory as an absolute path, created if missing. */
static int
init_dir(const char *dir, char *abs, size_t abslen, int *fd, char *err,
    size_t errlen)
{
	char cwd[PATH_MAX], q[PATH_MAX];
	int n;

	log_escape(dir, strlen(dir), q, sizeof q);
	if (dir[0] == '/')
		n = snprintf(abs, abslen, "%s", dir);
	else if (getcwd(cwd, sizeof cwd) == NULL)
		return init_fail(err, errlen, -AR_EIO, "init: the current "
		    "directory: %s", strerror(errno));
	else
		n = snprintf(abs, abslen, "%s/%s", cwd, dir);
	if (n < 0 || (size_t)n >= abslen || strchr(abs, '\n') != NULL)
		return init_fail(err, errlen, -AR_EUSAGE, "init: --dir '%s': "
		    "too long, or not one line", q);
	while (n > 1 && abs[n - 1] == '/')
		abs[--n] = '\0';
	if (fs_mkdir_p(abs, 0700) != 0 || fs_open_dir(abs, fd) != 0)
		return init_fail(err, errlen, -AR_EIO, "init: '%s': %s", q,
		    strerror(errno));
	return 0;
}

/* The text is a configuration asyncrep accepts: as loaded, and (with
 * the peer's pin) complete. */
static int
init_check(const char *role, const char *text, size_t len, int complete,
    char *err, size_t errlen)
{
	struct config cfg;
	char why[CONFIG_ERR_MAX];
	int r;

	config_init(&cfg);
	r = config_load_buffer(&cfg, "the configuration init would write",
	    text, len, why, sizeof why);
	if (r == 0 && complete)
		r = config_check(&cfg, role, why, sizeof why);
	config_release(&cfg);
	if (r != 0)
		return init_fail(err, errlen, -AR_ECONFIG, "init: %s", why);
	return 0;
}

static void
init_report(const struct init_opts *o, const char *dir, const char *pin,
    const struct init_conf *c, FILE *out)
{
	int primary = strcmp(o->role, "primary") == 0;
	const char *akey = primary ? "listen" : "primary";
	size_t a = init_find(c, akey, strlen(akey));

	fprintf(out, "asyncrep init %s: wrote, in %s:\n", o->role, dir);
	fprintf(out, "  %s        the [%s] section: check its paths and "
	    "addresses\n", INIT_CONF, o->role);
	if (primary)
		fprintf(out, "  %s                new token (mode 0600)\n",
		    INIT_TOKEN);
	fprintf(out, "  %s/key.pem          this node's TLS key (mode 0600), "
	    "and %s/cert.pem\n", INIT_TLS, INIT_TLS);
	fprintf(out, "this node's pin: %s\n\nnext:\n", pin);
	if (primary) {
		fprintf(out, "  on each standby: asyncrep init standby --set "
		    "primary=%s --peer-pin %s\n", a < c->n ? c->k[a].value :
		    "ADDRESS", pin);
		fprintf(out, "  copy %s/%s to each standby's %s/%s, mode 0600 "
		    "(one token for all nodes)\n", dir, INIT_TOKEN, dir,
		    INIT_TOKEN);
		if (o->peer_pin == NULL)
			fprintf(out, "  put each standby's pin (its init "
			    "prints it) in tls_trust in %s/%s\n", dir,
			    INIT_CONF);
	} else {
		fprintf(out, "  copy the primary's token to %s/%s, mode 0600\n",
		    dir, INIT_TOKEN);
		fprintf(out, "  on the primary: add %s to tls_trust in its "
		    "asyncrep.conf\n", pin);
		if (o->peer_pin == NULL)
			fprintf(out, "  put the primary's pin in tls_trust in "
			    "%s/%s\n", dir, INIT_CONF);
	}
	fprintf(out, "then: asyncrep %s -c %s/%s\n", primary ? "watch" :
	    "sync --follow", dir, INIT_CONF);
}

int
init_run(const struct init_opts *o, FILE *out, char *err, size_t errlen)
{
	struct init_conf conf;
	char dir[INIT_DIR_MAX], tlsdir[INIT_DIR_MAX + sizeof("/" INIT_TLS)];
	char text[INIT_TEXT_MAX], pin[PIN_TEXT_LEN + 1];
	const char *why;
	struct pin_list pins;
	size_t len = 0, i;
	int dirfd = -1, tfd, primary, r;

	if (o->role == NULL || (strcmp(o->role, "primary") != 0 &&
	    strcmp(o->role, "standby") != 0))
		return init_fail(err, errlen, -AR_EUSAGE, "init: give the role "
		    "of this node: primary or standby");
	primary = o->role[0] == 'p';
	if (o->peer_pin != NULL && pin_list_parse(o->peer_pin, &pins, &why) !=
	    0)
		return init_fail(err, errlen, -AR_EUSAGE, "init: --peer-pin: %s",
		    why);
	memset(&conf, 0, sizeof conf);
	r = init_dir(o->dir != NULL ? o->dir : INIT_DIR_DEFAULT, dir,
	    sizeof dir, &dirfd, err, errlen);
	if (r != 0)
		return r;
	r = init_defaults(&conf, o->role, dir, o->peer_pin);
	if (r != 0) {
		init_fail(err, errlen, r, "init: --dir or --peer-pin too long");
		goto out;
	}
	for (i = 0; i < o->nsets && r == 0; i++)
		r = init_set(&conf, o->role, o->sets[i], err, errlen);
	if (r == 0 && init_text(&conf, o->role, text, sizeof text, &len) != 0)
		r = init_fail(err, errlen, -AR_EUSAGE, "init: the configuration "
		    "is too long");
	i = init_find(&conf, "tls_trust", strlen("tls_trust"));
	if (r == 0)
		r = init_check(o->role, text, len, i < conf.n &&
		    !conf.k[i].commented, err, errlen);
	/* Everything absent before anything is written. */
	if (r == 0)
		r = init_absent(dirfd, dir, INIT_CONF, err, errlen);
	if (r == 0 && primary)
		r = init_absent(dirfd, dir, INIT_TOKEN, err, errlen);
	memcpy(tlsdir, dir, strlen(dir));
	memcpy(tlsdir + strlen(dir), "/" INIT_TLS, sizeof("/" INIT_TLS));
	tfd = r == 0 ? openat(dirfd, INIT_TLS, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC | O_NOFOLLOW) : -1;
	if (tfd >= 0) {
		r = init_absent(tfd, tlsdir, "key.pem", err, errlen);
		if (r == 0)
			r = init_absent(tfd, tlsdir, "cert.pem", err, errlen);
		close(tfd);
	}
	if (r != 0)
		goto out;
	r = tls_keygen(tlsdir, pin, err, errlen);
	if (r == 0 && primary)
		r = init_token(dirfd, err, errlen);
	if (r == 0) {
		r = fs_write_durable(dirfd, INIT_CONF, text, len, 0644);
		if (r != 0)
			init_fail(err, errlen, r, "init: cannot write %s/%s: %s",
			    dir, INIT_CONF, strerror(errno));
	}
	if (r == 0)
		init_report(o, dir, pin, &conf, out);
out:
	close(dirfd);
	return r;
}

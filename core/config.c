/*
 * config.c: configuration of every role, from an INI file and long options.
 *
 * One table (config_keys) names every key with its section, type, place
 * in struct config, bounds and default; loading, config_set, defaults,
 * config_check and the list of long options are all driven by it, so a
 * new key is one line here and one field in config.h.
 *
 * libinih does the INI syntax. We feed it through our own line reader,
 * because the library is built without line numbers in its handler and
 * with a fixed line buffer: the reader counts lines, refuses lines that
 * would be split (inih would silently parse the rest as a new line),
 * refuses NUL bytes and unknown [sections] (inih reports a section only
 * through its keys), and strips indentation so that an indented key is
 * never taken for a continuation of the previous value.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "limit.h"
#include "log.h"
#include "pin.h"

/* Bigger than any sane configuration; bounds what we read into memory. */
#define CONFIG_FILE_MAX (1024 * 1024)

/* Room for a user-supplied value or name quoted in a message. */
#define CONFIG_QUOTE_MAX 100

#define NS_PER_S UINT64_C(1000000000)

enum config_type {
	CONFIG_T_PATH,		/* non-empty absolute path */
	CONFIG_T_STRING,	/* non-empty text, e.g. a file name */
	CONFIG_T_DURATION,	/* uint64_t nanoseconds, "200ms" */
	CONFIG_T_SECONDS,	/* a duration where a bare number is seconds */
	CONFIG_T_IDS,		/* standby ids, "a, b" (stored as text) */
	CONFIG_T_SIZE,		/* uint64_t bytes, "64K" */
	CONFIG_T_RATE,		/* uint64_t bytes per second, "10M"; 0: none */
	CONFIG_T_UINT,		/* unsigned, decimal */
	CONFIG_T_ADDR,		/* struct config_addr, "IP:PORT" */
	CONFIG_T_PINS,		/* key pins, "sha256:HEX, ..." (stored as text) */
	CONFIG_T_ONOFF,		/* int, enum config_onoff: "on"/"yes", "off"/"no" */
	CONFIG_T_PORTION,	/* struct config_portion, "10" or "50%" */
	CONFIG_T_YESNO,		/* int, 1 or 0: "yes" or "no" */
};

struct config_key {
	const char *section;
	const char *name;
	enum config_type type;
	size_t offset;		/* of the field in struct config */
	uint64_t min;		/* bounds of numeric types */
	uint64_t max;
	const char *def;	/* default as text, NULL: unset */
	int required;		/* config_check insists on it */
};

#define P(f) offsetof(struct config, primary.f)
#define S(f) offsetof(struct config, standby.f)
#define MS (NS_PER_S / 1000)
#define HOUR (3600 * NS_PER_S)
#define KIB UINT64_C(1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)
#define TIB (GIB * 1024)

static const struct config_key config_keys[] = {
	{ "primary", "data_dir", CONFIG_T_PATH, P(data_dir), 0, 0, NULL, 1 },
	{ "primary", "spool_dir", CONFIG_T_PATH, P(spool_dir), 0, 0, NULL, 1 },
	{ "primary", "listen", CONFIG_T_ADDR, P(listen), 0, 0, NULL, 1 },
	{ "primary", "interval", CONFIG_T_DURATION, P(interval_ns),
	    0, HOUR, "200ms", 0 },
	{ "primary", "auth_token_file", CONFIG_T_STRING, P(auth_token_file),
	    0, 0, NULL, 0 },
	{ "primary", "max_connections", CONFIG_T_UINT, P(max_connections),
	    1, 65536, "64", 0 },
	{ "primary", "max_per_ip", CONFIG_T_UINT, P(max_per_ip),
	    1, 65536, "16", 0 },
	{ "primary", "idle_timeout", CONFIG_T_SECONDS, P(timeout_ns),
	    NS_PER_S, 24 * HOUR, "30s", 0 },
	{ "primary", "max_signature_size", CONFIG_T_SIZE,
	    P(max_signature_size), 4 * KIB, 4 * GIB, "64M", 0 },
	{ "primary", "threads", CONFIG_T_UINT, P(threads), 1, 256, "4", 0 },
	{ "primary", "watch_mode", CONFIG_T_STRING, P(watch_mode),
	    0, 0, "inotify", 0 },
	{ "primary", "poll_interval", CONFIG_T_DURATION, P(poll_interval_ns),
	    10 * MS, HOUR, "1s", 0 },
	{ "primary", "exclude", CONFIG_T_STRING, P(exclude), 0, 0, NULL, 0 },
	{ "primary", "spool_max_size", CONFIG_T_SIZE, P(spool_max_size),
	    MIB, 64 * TIB, "1G", 0 },
	{ "primary", "standbys", CONFIG_T_IDS, P(standbys), 0, 0, NULL, 0 },
	{ "primary", "standby_expiry", CONFIG_T_SECONDS, P(standby_expiry_ns),
	    NS_PER_S, 87600 * HOUR, "168h", 0 },
	{ "primary", "reverify_rate", CONFIG_T_SIZE, P(reverify_rate),
	    0, 64 * GIB, "32M", 0 },
	{ "primary", "tls", CONFIG_T_ONOFF, P(tls.mode), 0, 0, NULL, 0 },
	{ "primary", "tls_cert", CONFIG_T_PATH, P(tls.cert), 0, 0, NULL, 0 },
	{ "primary", "tls_key", CONFIG_T_PATH, P(tls.key), 0, 0, NULL, 0 },
	{ "primary", "tls_trust", CONFIG_T_PINS, P(tls.trust), 0, 0, NULL, 0 },
	{ "primary", "tls_ca", CONFIG_T_PATH, P(tls.ca), 0, 0, NULL, 0 },
	{ "primary", "bwlimit", CONFIG_T_RATE, P(bwlimit), KIB, TIB, "0", 0 },
	{ "primary", "metrics_listen", CONFIG_T_ADDR, P(metrics_listen),
	    0, 0, NULL, 0 },
	{ "primary", "max_deltas", CONFIG_T_UINT, P(max_deltas),
	    1, 1024, "4", 0 },
	{ "primary", "header_timeout", CONFIG_T_SECONDS, P(header_timeout_ns),
	    100 * MS, HOUR, "10s", 0 },

	{ "standby", "data_dir", CONFIG_T_PATH, S(data_dir), 0, 0, NULL, 1 },
	{ "standby", "state_dir", CONFIG_T_PATH, S(state_dir), 0, 0, NULL, 1 },
	{ "standby", "primary", CONFIG_T_ADDR, S(primary), 0, 0, NULL, 1 },
	{ "standby", "auth_token_file", CONFIG_T_STRING, S(auth_token_file),
	    0, 0, NULL, 0 },
	{ "standby", "connect_timeout", CONFIG_T_SECONDS,
	    S(connect_timeout_ns), MS, HOUR, "5s", 0 },
	{ "standby", "stall_timeout", CONFIG_T_SECONDS, S(stall_timeout_ns),
	    NS_PER_S, 24 * HOUR, "30s", 0 },
	{ "standby", "delta_min_size", CONFIG_T_SIZE, S(delta_min_size),
	    0, TIB, "64K", 0 },
	{ "standby", "batch_size", CONFIG_T_SIZE, S(batch_size),
	    64 * KIB, GIB, "16M", 0 },
	{ "standby", "batch_files", CONFIG_T_UINT, S(batch_files),
	    1, 1024, "1024", 0 },
	{ "standby", "standby_id", CONFIG_T_STRING, S(standby_id),
	    0, 0, NULL, 0 },
	{ "standby", "exclude", CONFIG_T_STRING, S(exclude), 0, 0, NULL, 0 },
	{ "standby", "tls", CONFIG_T_ONOFF, S(tls.mode), 0, 0, NULL, 0 },
	{ "standby", "tls_cert", CONFIG_T_PATH, S(tls.cert), 0, 0, NULL, 0 },
	{ "standby", "tls_key", CONFIG_T_PATH, S(tls.key), 0, 0, NULL, 0 },
	{ "standby", "tls_trust", CONFIG_T_PINS, S(tls.trust), 0, 0, NULL, 0 },
	{ "standby", "tls_ca", CONFIG_T_PATH, S(tls.ca), 0, 0, NULL, 0 },
	{ "standby", "max_delete", CONFIG_T_PORTION, S(max_delete),
	    0, 0, "50%", 0 },
	{ "standby", "bwlimit", CONFIG_T_RATE, S(bwlimit), KIB, TIB, "0", 0 },
	{ "standby", "compress", CONFIG_T_STRING, S(compress), 0, 0, "off", 0 },
	{ "standby", "compress_level", CONFIG_T_UINT, S(compress_level),
	    1, 19, "3", 0 },
	{ "standby", "metrics_listen", CONFIG_T_ADDR, S(metrics_listen),
	    0, 0, NULL, 0 },
	{ "standby", "max_file_size", CONFIG_T_SIZE, S(max_file_size),
	    0, UINT64_C(1) << 62, NULL, 0 },
	{ "standby", "max_stored_size", CONFIG_T_SIZE, S(max_stored_size),
	    MIB, 64 * TIB, "4G", 0 },
	{ "standby", "specials", CONFIG_T_YESNO, S(specials), 0, 0, "yes", 0 },
	{ "standby", "devices", CONFIG_T_YESNO, S(devices), 0, 0, "yes", 0 },
	{ "standby", "xattrs", CONFIG_T_STRING, S(xattrs), 0, 0, NULL, 0 },
	{ "standby", "selinux", CONFIG_T_YESNO, S(selinux), 0, 0, "no", 0 },
	{ "standby", "acls", CONFIG_T_YESNO, S(acls), 0, 0, "yes", 0 },
	{ "standby", "map_users", CONFIG_T_YESNO, S(map_users), 0, 0, "no",
	    0 },
	{ "standby", "append", CONFIG_T_STRING, S(append), 0, 0, "inplace",
	    0 },
	{ "standby", "append_min_size", CONFIG_T_SIZE, S(append_min_size),
	    0, TIB, "1M", 0 },
	{ "standby", "inplace", CONFIG_T_STRING, S(inplace), 0, 0, NULL, 0 },
	{ "standby", "inplace_min_size", CONFIG_T_SIZE, S(inplace_min_size),
	    0, TIB, "64M", 0 },
	{ "standby", "strip_setuid", CONFIG_T_ONOFF, S(strip_setuid),
	    0, 0, "off", 0 },
	{ "standby", "lane_min_size", CONFIG_T_SIZE, S(lane_min_size),
	    0, TIB, "8M", 0 },
};
#define CONFIG_NKEYS (sizeof config_keys / sizeof config_keys[0])

static const char *const config_sections[] = { "primary", "standby" };
#define CONFIG_NSECTIONS (sizeof config_sections / sizeof config_sections[0])

/* A parsed value, before it is stored. */
union config_value {
	const char *str;
	uint64_t u64;
	unsigned u;
	struct config_addr addr;
	struct config_portion portion;
};

struct config_unit {
	const char *name;
	uint64_t mult;
};

static const struct config_unit config_duration_units[] = {
	{ "ns", 1 },
	{ "us", 1000 },
	{ "ms", 1000 * 1000 },
	{ "s", NS_PER_S },
	{ "m", 60 * NS_PER_S },
	{ "h", HOUR },
};

/* ---------------------------------------------------------------------- */
/* Messages */

static void config_err(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
config_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A user-supplied string made safe (and short enough) for a message. */
static const char *
config_quote(const char *s, char *out, size_t outlen)
{
	return log_escape(s, strlen(s), out, outlen);
}

/* ---------------------------------------------------------------------- */
/* Pure parsers */

/*
 * Leading decimal digits of s into *v; *end is the first other byte.
 * Signs, spaces and empty numbers are errors (strtoul would accept
 * " -1" and wrap it).
 */
static int
config_digits(const char *s, uint64_t *v, const char **end, const char **why)
{
	uint64_t n = 0;
	unsigned d;

	if (*s < '0' || *s > '9') {
		*why = "expected a decimal number";
		return -AR_EUSAGE;
	}
	for (; *s >= '0' && *s <= '9'; s++) {
		d = (unsigned)(*s - '0');
		if (n > (UINT64_MAX - d) / 10) {
			*why = "number too large";
			return -AR_EUSAGE;
		}
		n = n * 10 + d;
	}
	*v = n;
	*end = s;
	return 0;
}

static int
config_duration(const char *s, uint64_t *ns, const char **why)
{
	const char *unit;
	uint64_t n;
	size_t i;

	if (config_digits(s, &n, &unit, why) != 0)
		return -AR_EUSAGE;
	if (*unit == '\0') {
		/* A bare number is ambiguous here: "interval = 200" is
		 * more likely meant as 200ms than as 200 seconds. Only
		 * the timeouts read one as seconds (config_seconds). */
		if (n != 0) {
			*why = "a unit is needed (ns, us, ms, s, m or h): a "
			    "bare number could mean seconds or milliseconds "
			    "here, so write 200ms or 2s";
			return -AR_EUSAGE;
		}
		*ns = 0;
		return 0;
	}
	for (i = 0; i < sizeof config_duration_units /
	    sizeof config_duration_units[0]; i++) {
		if (strcmp(unit, config_duration_units[i].name) != 0)
			continue;
		if (n > UINT64_MAX / config_duration_units[i].mult) {
			*why = "duration too large";
			return -AR_EUSAGE;
		}
		*ns = n * config_duration_units[i].mult;
		return 0;
	}
	*why = "unknown unit (use ns, us, ms, s, m or h)";
	return -AR_EUSAGE;
}

/* A duration of a timeout: a bare number is seconds, as rsync and
 * systemd read it. */
static int
config_seconds(const char *s, uint64_t *ns, const char **why)
{
	const char *end;
	uint64_t n;

	if (config_digits(s, &n, &end, why) != 0)
		return -AR_EUSAGE;
	if (*end != '\0')
		return config_duration(s, ns, why);
	if (n > UINT64_MAX / NS_PER_S) {
		*why = "duration too large";
		return -AR_EUSAGE;
	}
	*ns = n * NS_PER_S;
	return 0;
}

static int
config_size(const char *s, uint64_t *bytes, const char **why)
{
	const char *suffix;
	uint64_t n;
	unsigned shift;

	if (config_digits(s, &n, &suffix, why) != 0)
		return -AR_EUSAGE;
	switch (*suffix) {
	case '\0':
		shift = 0;
		break;
	case 'K':
	case 'k':
		shift = 10;
		break;
	case 'M':
	case 'm':
		shift = 20;
		break;
	case 'G':
	case 'g':
		shift = 30;
		break;
	case 'T':
	case 't':
		shift = 40;
		break;
	default:
		*why = "unknown suffix (use K, M, G or T)";
		return -AR_EUSAGE;
	}
	if (shift != 0 && suffix[1] != '\0') {
		*why = "unknown suffix (use K, M, G or T)";
		return -AR_EUSAGE;
	}
	if (n > (UINT64_MAX >> shift)) {
		*why = "size too large";
		return -AR_EUSAGE;
	}
	*bytes = n << shift;
	return 0;
}

static int
config_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
    const char **why)
{
	const char *end;
	uint64_t n;

	if (config_digits(s, &n, &end, why) != 0)
		return -AR_EUSAGE;
	if (*end != '\0') {
		*why = "expected a decimal number";
		return -AR_EUSAGE;
	}
	if (n < min || n > max) {
		*why = "out of range";
		return -AR_EUSAGE;
	}
	*out = n;
	return 0;
}

static int
config_addr_parse(const char *s, struct config_addr *addr, const char **why)
{
	char host[INET6_ADDRSTRLEN];
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	const char *close, *colon, *hstart, *port;
	size_t slen, hlen;
	uint64_t pnum;
	int family;

	slen = strlen(s);
	if (slen >= sizeof addr->text) {
		*why = "address too long";
		return -AR_EUSAGE;
	}
	if (s[0] == '[') {
		close = strchr(s, ']');
		if (close == NULL) {
			*why = "missing ']' after an IPv6 address";
			return -AR_EUSAGE;
		}
		if (close[1] != ':') {
			*why = "expected [IPv6]:PORT";
			return -AR_EUSAGE;
		}
		hstart = s + 1;
		hlen = (size_t)(close - hstart);
		port = close + 2;
		family = AF_INET6;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			*why = "expected IP:PORT";
			return -AR_EUSAGE;
		}
		if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
			*why = "an IPv6 address needs brackets, as in [::1]:8873";
			return -AR_EUSAGE;
		}
		hstart = s;
		hlen = (size_t)(colon - s);
		port = colon + 1;
		family = AF_INET;
	}
	if (hlen == 0 || hlen >= sizeof host) {
		*why = family == AF_INET6 ? "not an IPv6 address" :
		    "not an IPv4 address";
		return -AR_EUSAGE;
	}
	memcpy(host, hstart, hlen);
	host[hlen] = '\0';
	if (config_uint(port, 1, 65535, &pnum, why) != 0) {
		*why = "port must be a number from 1 to 65535";
		return -AR_EUSAGE;
	}

	memset(addr, 0, sizeof *addr);
	if (family == AF_INET) {
		sin = (struct sockaddr_in *)&addr->ss;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			*why = "not an IPv4 address (host names are not resolved)";
			return -AR_EUSAGE;
		}
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)pnum);
		addr->len = sizeof *sin;
	} else {
		sin6 = (struct sockaddr_in6 *)&addr->ss;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			*why = "not an IPv6 address";
			return -AR_EUSAGE;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)pnum);
		addr->len = sizeof *sin6;
	}
	memcpy(addr->text, s, slen + 1);
	addr->set = 1;
	return 0;
}

/* A count ("10") or a percentage ("50%", at most 100). */
static int
config_portion(const char *s, struct config_portion *out, const char **why)
{
	const char *end;
	uint64_t n;

	if (config_digits(s, &n, &end, why) != 0) {
		*why = "expected a count or a percentage, as 50%";
		return -AR_EUSAGE;
	}
	if (*end == '%' && end[1] == '\0') {
		if (n > 100) {
			*why = "a percentage is at most 100%";
			return -AR_EUSAGE;
		}
		out->percent = 1;
	} else if (*end == '\0') {
		out->percent = 0;
	} else {
		*why = "expected a count or a percentage, as 50%";
		return -AR_EUSAGE;
	}
	out->n = n;
	return 0;
}

int
config_parse_portion(const char *s, struct config_portion *out)
{
	struct config_portion tmp;
	const char *why;
	int r;

	/* out is untouched on error. */
	r = config_portion(s, &tmp, &why);
	if (r == 0)
		*out = tmp;
	return r;
}

int
config_parse_duration(const char *s, uint64_t *ns)
{
	const char *why;

	return config_duration(s, ns, &why);
}

int
config_parse_seconds(const char *s, uint64_t *ns)
{
	const char *why;

	return config_seconds(s, ns, &why);
}

int
config_parse_size(const char *s, uint64_t *bytes)
{
	const char *why;

	return config_size(s, bytes, &why);
}

int
config_parse_addr(const char *s, struct config_addr *addr)
{
	struct config_addr tmp;
	const char *why;
	int r;

	/* addr is untouched on error. */
	r = config_addr_parse(s, &tmp, &why);
	if (r == 0)
		*addr = tmp;
	return r;
}

int
config_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	const char *why;
	uint64_t v;

	if (config_uint(s, min, max, &v, &why) != 0)
		return -AR_EUSAGE;
	*out = (unsigned)v;
	return 0;
}

int
config_ids_next_pin(const char **list, char id[LIMIT_ID_MAX + 1],
    char pin[PIN_TEXT_LEN + 1])
{
	const char *p = *list, *start, *eq, *why;
	struct pin_list one;
	size_t len;

	pin[0] = '\0';
	while (*p == ' ' || *p == '\t' || *p == ',')
		p++;
	if (*p == '\0') {
		*list = p;
		return 0;
	}
	start = p;
	while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
		p++;
	len = (size_t)(p - start);
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0' && *p != ',')
		return -AR_EUSAGE;	/* "a b": a comma is missing */
	*list = p;
	/* "ID=sha256:HEX": the id is accepted only from that key. */
	eq = memchr(start, '=', len);
	if (eq != NULL) {
		if ((size_t)(start + len - eq - 1) != PIN_TEXT_LEN)
			return -AR_EUSAGE;
		memcpy(pin, eq + 1, PIN_TEXT_LEN);
		pin[PIN_TEXT_LEN] = '\0';
		if (pin_list_parse(pin, &one, &why) != 0)
			return -AR_EUSAGE;
		pin_format(one.pin[0], pin);	/* lowercase */
		len = (size_t)(eq - start);
	}
	if (!limit_id_valid(start, len))
		return -AR_EUSAGE;
	memcpy(id, start, len);
	id[len] = '\0';
	return 1;
}

int
config_ids_next(const char **list, char id[LIMIT_ID_MAX + 1])
{
	char pin[PIN_TEXT_LEN + 1];

	return config_ids_next_pin(list, id, pin);
}

/* A list of standby ids: each valid, at most CONFIG_IDS_MAX, at least
 * one, none twice. */
static int
config_ids(const char *s, const char **why)
{
	char ids[CONFIG_IDS_MAX + 1][LIMIT_ID_MAX + 1];
	const char *p = s;
	size_t n = 0, i;
	int r;

	for (;;) {
		r = config_ids_next(&p, ids[n]);
		if (r != 1)
			break;
		for (i = 0; i < n; i++) {
			if (strcmp(ids[i], ids[n]) == 0) {
				*why = "an id is listed twice";
				return -AR_EUSAGE;
			}
		}
		if (++n > CONFIG_IDS_MAX) {
			*why = "too many ids (at most 64)";
			return -AR_EUSAGE;
		}
	}
	if (r != 0) {
		*why = "expected ids of [A-Za-z0-9._-], up to 64 characters "
		    "each, each with an optional =sha256:HEX, separated by "
		    "commas";
		return -AR_EUSAGE;
	}
	if (n == 0) {
		*why = "must not be empty";
		return -AR_EUSAGE;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* The table */

static const struct config_key *
config_find(const char *section, const char *name)
{
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].section, section) == 0 &&
		    strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	}
	return NULL;
}

static int
config_known_section(const char *section, size_t len)
{
	size_t i;

	for (i = 0; i < CONFIG_NSECTIONS; i++) {
		if (strlen(config_sections[i]) == len &&
		    memcmp(config_sections[i], section, len) == 0)
			return 1;
	}
	return 0;
}

/* The key's value is a string of its own (char *), freed at release. */
static int
config_is_text(const struct config_key *k)
{
	return k->type == CONFIG_T_PATH || k->type == CONFIG_T_STRING ||
	    k->type == CONFIG_T_IDS || k->type == CONFIG_T_PINS;
}

static void *
config_field(struct config *cfg, const struct config_key *k)
{
	return (char *)cfg + k->offset;
}

static const void *
config_cfield(const struct config *cfg, const struct config_key *k)
{
	return (const char *)cfg + k->offset;
}

/* A duration or size in the largest unit that divides it, for messages. */
static void
config_format(const struct config_key *k, uint64_t v, char *out,
    size_t outlen)
{
	static const char *const sizes = "KMGT";
	size_t i, u;

	if (v == 0) {
		snprintf(out, outlen, "0");
		return;
	}
	if (k->type == CONFIG_T_DURATION || k->type == CONFIG_T_SECONDS) {
		u = 0;
		for (i = 0; i < sizeof config_duration_units /
		    sizeof config_duration_units[0]; i++) {
			if (v % config_duration_units[i].mult == 0)
				u = i;
		}
		snprintf(out, outlen, "%llu%s", (unsigned long long)
		    (v / config_duration_units[u].mult),
		    config_duration_units[u].name);
		return;
	}
	if (k->type == CONFIG_T_SIZE || k->type == CONFIG_T_RATE) {
		for (i = 0; i < 4 && v % 1024 == 0; i++)
			v /= 1024;
		if (i == 0)
			snprintf(out, outlen, "%llu", (unsigned long long)v);
		else
			snprintf(out, outlen, "%llu%c", (unsigned long long)v,
			    sizes[i - 1]);
		return;
	}
	snprintf(out, outlen, "%llu", (unsigned long long)v);
}

/*
 * Parse text as the value of key k into *v, with the reason of a failure
 * in why. Strings are not copied: v->str points into text.
 */
static int
config_value_parse(const struct config_key *k, const char *text,
    union config_value *v, char *why, size_t whylen)
{
	char q[CONFIG_QUOTE_MAX], lo[32], hi[32];
	const char *reason;
	uint64_t n;
	int r;

	config_quote(text, q, sizeof q);
	switch (k->type) {
	case CONFIG_T_PATH:
	case CONFIG_T_STRING:
		if (*text == '\0') {
			config_err(why, whylen, "must not be empty");
			return -AR_EUSAGE;
		}
		if (strlen(text) >= PATH_MAX) {
			config_err(why, whylen, "path too long");
			return -AR_EUSAGE;
		}
		if (k->type == CONFIG_T_PATH && *text != '/') {
			config_err(why, whylen,
			    "'%s' is not an absolute path", q);
			return -AR_EUSAGE;
		}
		v->str = text;
		return 0;
	case CONFIG_T_IDS:
		if (config_ids(text, &reason) != 0) {
			config_err(why, whylen, "bad list '%s': %s", q,
			    reason);
			return -AR_EUSAGE;
		}
		v->str = text;
		return 0;
	case CONFIG_T_PINS: {
		struct pin_list pins;

		if (pin_list_parse(text, &pins, &reason) != 0) {
			config_err(why, whylen, "bad pins '%s': %s", q,
			    reason);
			return -AR_EUSAGE;
		}
		v->str = text;
		return 0;
	}
	case CONFIG_T_ONOFF:
		/* "yes" and "no" too, as rsync and sshd write them. */
		if (strcmp(text, "on") == 0 || strcmp(text, "yes") == 0)
			v->u = CONFIG_ON;
		else if (strcmp(text, "off") == 0 || strcmp(text, "no") == 0)
			v->u = CONFIG_OFF;
		else {
			config_err(why, whylen, "'%s' is neither 'on' nor "
			    "'off'", q);
			return -AR_EUSAGE;
		}
		return 0;
	case CONFIG_T_YESNO:
		/* Owners by name or by number: map_users also takes the
		 * two words for what it picks. */
		if (strcmp(k->name, "map_users") == 0 &&
		    (strcmp(text, "name") == 0 ||
		    strcmp(text, "numeric") == 0)) {
			v->u = strcmp(text, "name") == 0;
			return 0;
		}
		if (strcmp(text, "yes") != 0 && strcmp(text, "no") != 0) {
			config_err(why, whylen, "'%s' is neither 'yes' nor "
			    "'no'", q);
			return -AR_EUSAGE;
		}
		v->u = strcmp(text, "yes") == 0;
		return 0;
	case CONFIG_T_ADDR:
		r = config_addr_parse(text, &v->addr, &reason);
		if (r != 0) {
			config_err(why, whylen, "bad address '%s': %s", q,
			    reason);
			return r;
		}
		return 0;
	case CONFIG_T_PORTION:
		r = config_portion(text, &v->portion, &reason);
		if (r != 0) {
			config_err(why, whylen, "bad value '%s': %s", q,
			    reason);
			return r;
		}
		return 0;
	case CONFIG_T_DURATION:
	case CONFIG_T_SECONDS:
		r = k->type == CONFIG_T_SECONDS ? config_seconds(text, &n,
		    &reason) : config_duration(text, &n, &reason);
		if (r != 0) {
			config_err(why, whylen, "bad duration '%s': %s", q,
			    reason);
			return r;
		}
		break;
	case CONFIG_T_SIZE:
	case CONFIG_T_RATE:
		r = config_size(text, &n, &reason);
		if (r != 0) {
			config_err(why, whylen, "bad size '%s': %s", q,
			    reason);
			return r;
		}
		break;
	case CONFIG_T_UINT:
		r = config_uint(text, 0, UINT_MAX, &n, &reason);
		if (r != 0) {
			config_err(why, whylen, "bad number '%s': %s", q,
			    reason);
			return r;
		}
		break;
	default:
		config_err(why, whylen, "internal error: bad key type");
		return -AR_EINTERNAL;
	}
	/* A rate of 0 is no limit; a bare number is bytes, so rsync's
	 * KiB-per-second habit (bwlimit = 500) is caught by the minimum. */
	if (k->type == CONFIG_T_RATE && n != 0 && n < k->min) {
		config_err(why, whylen, "'%s' is below 1K bytes per second (a "
		    "bare number is bytes: write 500K for rsync's "
		    "--bwlimit=500; 0 is no limit)", q);
		return -AR_EUSAGE;
	}
	if ((n < k->min && k->type != CONFIG_T_RATE) || n > k->max) {
		config_format(k, k->min, lo, sizeof lo);
		config_format(k, k->max, hi, sizeof hi);
		config_err(why, whylen, "'%s' is out of range (%s to %s)", q,
		    lo, hi);
		return -AR_EUSAGE;
	}
	if (k->type == CONFIG_T_UINT)
		v->u = (unsigned)n;
	else
		v->u64 = n;
	return 0;
}

/* Store a parsed value; the only place that allocates. */
static int
config_value_store(struct config *cfg, const struct config_key *k,
    const union config_value *v)
{
	void *field = config_field(cfg, k);
	char *copy;

	switch (k->type) {
	case CONFIG_T_PATH:
	case CONFIG_T_STRING:
	case CONFIG_T_IDS:
	case CONFIG_T_PINS:
		copy = strdup(v->str);
		if (copy == NULL)
			return -AR_ENOMEM;
		free(*(char **)field);
		*(char **)field = copy;
		break;
	case CONFIG_T_ADDR:
		*(struct config_addr *)field = v->addr;
		break;
	case CONFIG_T_PORTION:
		*(struct config_portion *)field = v->portion;
		break;
	case CONFIG_T_DURATION:
	case CONFIG_T_SECONDS:
	case CONFIG_T_SIZE:
	case CONFIG_T_RATE:
		*(uint64_t *)field = v->u64;
		break;
	case CONFIG_T_UINT:
		*(unsigned *)field = v->u;
		break;
	case CONFIG_T_ONOFF:
	case CONFIG_T_YESNO:
		*(int *)field = (int)v->u;
		break;
	}
	return 0;
}

static int
config_apply(struct config *cfg, const struct config_key *k,
    const char *text, char *why, size_t whylen)
{
	union config_value v;
	int r;

	r = config_value_parse(k, text, &v, why, whylen);
	if (r != 0)
		return r;
	r = config_value_store(cfg, k, &v);
	if (r != 0)
		config_err(why, whylen, "out of memory");
	return r;
}

/* ---------------------------------------------------------------------- */
/* Life cycle */

void
config_init(struct config *cfg)
{
	union config_value v;
	const struct config_key *k;
	char why[8];
	size_t i;

	memset(cfg, 0, sizeof *cfg);
	for (i = 0; i < CONFIG_NKEYS; i++) {
		k = &config_keys[i];
		/* Only numeric keys have defaults, so nothing allocates. */
		if (k->def == NULL || config_is_text(k))
			continue;
		if (config_value_parse(k, k->def, &v, why, sizeof why) == 0)
			config_value_store(cfg, k, &v);
	}
}

void
config_release(struct config *cfg)
{
	size_t i;
	char **p;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (!config_is_text(&config_keys[i]))
			continue;
		p = config_field(cfg, &config_keys[i]);
		free(*p);
		*p = NULL;
	}
	free(cfg->file);
	cfg->file = NULL;
}

/* ---------------------------------------------------------------------- */
/* Loading */

struct config_parse {
	struct config *cfg;
	const char *name;	/* quoted file name for messages */
	const char *buf;
	size_t len;
	size_t off;
	int lineno;
	int seen[CONFIG_NKEYS];	/* line that set each key, or 0 */
	int err;		/* first error found by us, or 0 */
	int errline;
	char *errbuf;
	size_t errlen;
};

static void config_parse_err(struct config_parse *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* Record the first error, prefixed by FILE:LINE. */
static void
config_parse_err(struct config_parse *p, const char *fmt, ...)
{
	char msg[CONFIG_ERR_MAX];
	va_list ap;

	if (p->err != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	p->err = -AR_ECONFIG;
	p->errline = p->lineno;
	config_err(p->errbuf, p->errlen, "%s:%d: %s", p->name, p->lineno,
	    msg);
}

/* inih's fgets: one call, one whole line of the buffer. */
static char *
config_reader(char *str, int num, void *stream)
{
	struct config_parse *p = stream;
	char q[CONFIG_QUOTE_MAX];
	const char *line, *nl, *close;
	size_t left, len;

	if (p->err != 0 || p->off >= p->len || num < 2)
		return NULL;
	p->lineno++;
	line = p->buf + p->off;
	left = p->len - p->off;
	nl = memchr(line, '\n', left);
	len = nl != NULL ? (size_t)(nl - line) + 1 : left;
	p->off += len;

	if (memchr(line, '\0', len) != NULL) {
		config_parse_err(p, "NUL byte in line");
		return NULL;
	}
	if (p->lineno == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;
		len -= 3;
	}
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	if (len + 1 > (size_t)num) {
		config_parse_err(p, "line too long (at most %d bytes)",
		    num - 2);
		return NULL;
	}
	if (len > 0 && line[0] == '[') {
		close = memchr(line, ']', len);
		/* Without ']', inih reports the syntax error. */
		if (close != NULL && !config_known_section(line + 1,
		    (size_t)(close - line - 1))) {
			len = (size_t)(close - line - 1);
			if (len > sizeof q - 1)
				len = sizeof q - 1;
			config_parse_err(p, "unknown section [%s]",
			    log_escape(line + 1, len, q, sizeof q));
			return NULL;
		}
	}
	memcpy(str, line, len);
	str[len] = '\0';
	return str;
}

/*
 * A list of ids set again in the same section adds to it: a list with
 * pins does not fit in one line of libinih's (CONFIG_LINE_MAX bytes).
 * The whole list is checked again (CONFIG_IDS_MAX, duplicates).
 */
static int
config_append_ids(struct config_parse *p, const struct config_key *k,
    const char *qn, const char *value)
{
	char why[CONFIG_ERR_MAX / 2];
	const char *old = *(char **)config_field(p->cfg, k);
	char *all;
	size_t lo, lv;
	int r;

	assert(old != NULL);
	lo = strlen(old);
	lv = strlen(value);
	all = malloc(lo + 2 + lv + 1);
	if (all == NULL) {
		config_parse_err(p, "out of memory");
		return 0;
	}
	memcpy(all, old, lo);
	memcpy(all + lo, ", ", 2);
	memcpy(all + lo + 2, value, lv + 1);
	r = config_apply(p->cfg, k, all, why, sizeof why);
	free(all);
	if (r != 0) {
		config_parse_err(p, "key '%s': %s", qn, why);
		return 0;
	}
	return 1;
}

static int
config_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct config_parse *p = user;
	const struct config_key *k;
	char qs[CONFIG_QUOTE_MAX], qn[CONFIG_QUOTE_MAX];
	char why[CONFIG_ERR_MAX / 2];
	size_t idx;

	if (p->err != 0)
		return 1;	/* only the first error is reported */
	config_quote(name, qn, sizeof qn);
	if (*section == '\0') {
		config_parse_err(p, "key '%s' outside any section "
		    "([primary] or [standby])", qn);
		return 0;
	}
	k = config_find(section, name);
	if (k == NULL) {
		config_parse_err(p, "unknown key '%s' in section [%s]", qn,
		    config_quote(section, qs, sizeof qs));
		return 0;
	}
	idx = (size_t)(k - config_keys);
	if (p->seen[idx] != 0 && k->type == CONFIG_T_IDS)
		return config_append_ids(p, k, qn, value);
	if (p->seen[idx] != 0) {
		config_parse_err(p, "key '%s': duplicate in section [%s] "
		    "(first set on line %d)", qn, section, p->seen[idx]);
		return 0;
	}
	p->seen[idx] = p->lineno;
	if (config_apply(p->cfg, k, value, why, sizeof why) != 0) {
		config_parse_err(p, "key '%s': %s", qn, why);
		return 0;
	}
	return 1;
}

int
config_load_buffer(struct config *cfg, const char *name, const char *buf,
    size_t len, char *err, size_t errlen)
{
	struct config_parse p;
	char qname[CONFIG_QUOTE_MAX * 2];
	int r;

	memset(&p, 0, sizeof p);
	p.cfg = cfg;
	p.name = config_quote(name != NULL ? name : "(buffer)", qname,
	    sizeof qname);
	p.buf = buf;
	p.len = len;
	p.errbuf = err;
	p.errlen = errlen;

	r = ini_parse_stream(config_reader, &p, config_handler, &p);
	/* inih counts lines as we do: one reader call per line. */
	if (r > 0 && (p.err == 0 || r < p.errline)) {
		config_err(err, errlen, "%s:%d: syntax error (expected "
		    "'key = value', '[section]' or a comment)", p.name, r);
		return -AR_ECONFIG;
	}
	if (p.err != 0)
		return p.err;
	if (r < 0) {
		config_err(err, errlen, "%s: cannot parse (out of memory)",
		    p.name);
		return -AR_ECONFIG;
	}
	return 0;
}

int
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	char q[CONFIG_QUOTE_MAX * 2];
	struct stat st;
	char *buf = NULL, *file;
	size_t off;
	ssize_t n;
	int fd, r;

	config_quote(path, q, sizeof q);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		config_err(err, errlen, "%s: cannot open: %s", q,
		    strerror(errno));
		return -AR_ECONFIG;
	}
	if (fstat(fd, &st) != 0) {
		config_err(err, errlen, "%s: %s", q, strerror(errno));
		r = -AR_ECONFIG;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		config_err(err, errlen, "%s: not a regular file", q);
		r = -AR_ECONFIG;
		goto out;
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		config_err(err, errlen, "%s: too large (at most %d bytes)", q,
		    CONFIG_FILE_MAX);
		r = -AR_ECONFIG;
		goto out;
	}
	/* +1 so an empty file is not a zero-byte malloc. */
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		config_err(err, errlen, "%s: out of memory", q);
		r = -AR_ENOMEM;
		goto out;
	}
	/* The size seen by fstat bounds the read even if the file grows. */
	off = 0;
	while (off < (size_t)st.st_size) {
		n = read(fd, buf + off, (size_t)st.st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			config_err(err, errlen, "%s: read: %s", q,
			    strerror(errno));
			r = -AR_ECONFIG;
			goto out;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	r = config_load_buffer(cfg, path, buf, off, err, errlen);
	if (r != 0)
		goto out;
	file = strdup(path);
	if (file == NULL) {
		config_err(err, errlen, "%s: out of memory", q);
		r = -AR_ENOMEM;
		goto out;
	}
	free(cfg->file);
	cfg->file = file;
out:
	free(buf);
	close(fd);
	return r;
}

int
config_set(struct config *cfg, const char *section, const char *key,
    const char *value, char *err, size_t errlen)
{
	const struct config_key *k;
	char qk[CONFIG_QUOTE_MAX], qs[CONFIG_QUOTE_MAX];
	char why[CONFIG_ERR_MAX / 2];
	int r;

	config_quote(key, qk, sizeof qk);
	k = config_find(section, key);
	if (k == NULL) {
		config_err(err, errlen, "unknown key '%s' in section [%s]",
		    qk, config_quote(section, qs, sizeof qs));
		return -AR_EUSAGE;
	}
	r = config_apply(cfg, k, value, why, sizeof why);
	if (r != 0) {
		config_err(err, errlen, "key '%s': %s", qk, why);
		return r == -AR_ENOMEM ? r : -AR_EUSAGE;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Checks */

static int
config_is_set(const struct config *cfg, const struct config_key *k)
{
	const void *field = config_cfield(cfg, k);

	switch (k->type) {
	case CONFIG_T_PATH:
	case CONFIG_T_STRING:
	case CONFIG_T_IDS:
	case CONFIG_T_PINS:
		return *(char *const *)field != NULL;
	case CONFIG_T_ADDR:
		return ((const struct config_addr *)field)->set;
	default:
		return 1;
	}
}

/* Is path a or one of its descendants the same as b, lexically? */
static int
config_path_within(const char *a, const char *b)
{
	size_t alen = strlen(a), blen = strlen(b);

	while (alen > 1 && a[alen - 1] == '/')
		alen--;
	while (blen > 1 && b[blen - 1] == '/')
		blen--;
	if (blen == 1 && b[0] == '/')
		return 1;
	if (alen < blen || memcmp(a, b, blen) != 0)
		return 0;
	return alen == blen || a[blen] == '/';
}

/*
 * The replicated tree must not hold our own state: a spool inside
 * data_dir would be watched and replicated itself, and a state_dir
 * inside the standby's data_dir would be deleted by a full compare.
 */
static int
config_check_overlap(const char *role, const char *dir, const char *dname,
    const char *other, const char *oname, char *err, size_t errlen)
{
	if (dir == NULL || other == NULL)
		return 0;
	if (config_path_within(other, dir) || config_path_within(dir, other)) {
		config_err(err, errlen, "%s and %s overlap in [%s] "
		    "(they must be separate directories)", dname, oname, role);
		return -AR_ECONFIG;
	}
	return 0;
}

int
config_tls_enabled(const struct config_tls *t)
{
	return t->mode == CONFIG_ON || (t->mode == CONFIG_UNSET &&
	    t->cert != NULL);
}

/*
 * TLS is mutual: with it on, a role has its own certificate and key and
 * a way to recognise its peer (pins or a CA). With tls = off the other
 * keys may stay in place, unused; without tls written, a key that only
 * makes sense with a certificate is a mistake worth naming.
 */
static int
config_check_tls(const char *role, const struct config_tls *t, char *err,
    size_t errlen)
{
	if (!config_tls_enabled(t)) {
		if (t->mode == CONFIG_OFF || (t->key == NULL &&
		    t->trust == NULL && t->ca == NULL))
			return 0;
		config_err(err, errlen, "%s in [%s] needs tls_cert (TLS is "
		    "on only with a certificate)", t->key != NULL ? "tls_key" :
		    t->trust != NULL ? "tls_trust" : "tls_ca", role);
		return -AR_ECONFIG;
	}
	if (t->cert == NULL || t->key == NULL) {
		config_err(err, errlen, "TLS in [%s] needs both tls_cert and "
		    "tls_key", role);
		return -AR_ECONFIG;
	}
	if (t->trust == NULL && t->ca == NULL) {
		config_err(err, errlen, "TLS in [%s] needs the peer's identity: "
		    "set tls_trust (the pins of its key) or tls_ca", role);
		return -AR_ECONFIG;
	}
	return 0;
}

int
config_check(const struct config *cfg, const char *role, char *err,
    size_t errlen)
{
	const struct config_key *k;
	char msg[CONFIG_ERR_MAX], opt[64];
	size_t i, j, off = 0;
	int n, missing = 0;

	if (!config_known_section(role, strlen(role))) {
		config_err(err, errlen, "unknown role '%s'", role);
		return -AR_EUSAGE;
	}
	msg[0] = '\0';
	for (i = 0; i < CONFIG_NKEYS; i++) {
		k = &config_keys[i];
		if (strcmp(k->section, role) != 0 || !k->required ||
		    config_is_set(cfg, k))
			continue;
		for (j = 0; k->name[j] != '\0' && j < sizeof opt - 1; j++)
			opt[j] = k->name[j] == '_' ? '-' : k->name[j];
		opt[j] = '\0';
		n = snprintf(msg + off, sizeof msg - off,
		    "%smissing %s (set it in [%s] or with --%s)",
		    missing ? "; " : "", k->name, role, opt);
		if (n > 0 && (size_t)n < sizeof msg - off)
			off += (size_t)n;
		missing++;
	}
	if (missing) {
		config_err(err, errlen, "%s", msg);
		return -AR_ECONFIG;
	}
	if (strcmp(role, "primary") == 0 && cfg->primary.watch_mode != NULL &&
	    strcmp(cfg->primary.watch_mode, "inotify") != 0 &&
	    strcmp(cfg->primary.watch_mode, "poll") != 0) {
		config_err(err, errlen, "watch_mode in [primary] must be "
		    "'inotify' or 'poll'");
		return -AR_ECONFIG;
	}
	if (strcmp(role, "standby") == 0 && cfg->standby.compress != NULL &&
	    strcmp(cfg->standby.compress, "off") != 0 &&
	    strcmp(cfg->standby.compress, "zstd") != 0) {
		config_err(err, errlen, "compress in [standby] must be 'off' or "
		    "'zstd'");
		return -AR_ECONFIG;
	}
	if (strcmp(role, "standby") == 0 && cfg->standby.append != NULL &&
	    strcmp(cfg->standby.append, "inplace") != 0 &&
	    strcmp(cfg->standby.append, "atomic") != 0) {
		config_err(err, errlen, "append in [standby] must be "
		    "'inplace' or 'atomic'");
		return -AR_ECONFIG;
	}
	if (config_check_tls(role, strcmp(role, "primary") == 0 ?
	    &cfg->primary.tls : &cfg->standby.tls, err, errlen) != 0)
		return -AR_ECONFIG;
	if (strcmp(role, "primary") == 0)
		return config_check_overlap(role, cfg->primary.data_dir,
		    "data_dir", cfg->primary.spool_dir, "spool_dir", err,
		    errlen);
	return config_check_overlap(role, cfg->standby.data_dir, "data_dir",
	    cfg->standby.state_dir, "state_dir", err, errlen);
}

int
config_key_is_path(const char *section, const char *key)
{
	const struct config_key *k;

	if (section == NULL)
		return 0;
	k = config_find(section, key);
	return k != NULL && k->type == CONFIG_T_PATH;
}

const char *const *
config_section_keys(const char *section)
{
	static const char *keys[CONFIG_NSECTIONS][CONFIG_NKEYS + 1];
	size_t s, i, n;

	for (s = 0; s < CONFIG_NSECTIONS; s++) {
		if (strcmp(config_sections[s], section) == 0)
			break;
	}
	if (s == CONFIG_NSECTIONS)
		return NULL;
	/* Filled on every call with the same values: no init order. */
	n = 0;
	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].section, section) == 0)
			keys[s][n++] = config_keys[i].name;
	}
	keys[s][n] = NULL;
	return keys[s];
}

/*
 * test-config.c: unit tests of core/config.c.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "error.h"
#include "scratch.h"

static char test_dir[PATH_MAX];

static int
setup_dir(void **state)
{
	(void)state;
	return scratch_make(test_dir, sizeof test_dir, "test-config");
}

static int
teardown_dir(void **state)
{
	(void)state;
	return scratch_remove(test_dir);
}

/* Write text to test_dir/name; path receives the full name. */
static void
write_conf(const char *name, const char *text, char *path, size_t pathlen)
{
	FILE *f;
	int n;

	n = snprintf(path, pathlen, "%s/%s", test_dir, name);
	assert_true(n > 0 && (size_t)n < pathlen);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

/* Load text as a file; returns config_load's result, message in err. */
static int
load_text(struct config *cfg, const char *text, char *path, size_t pathlen,
    char *err, size_t errlen)
{
	write_conf("test.conf", text, path, pathlen);
	err[0] = '\0';
	return config_load(cfg, path, err, errlen);
}

/* The timeouts read a bare number as seconds; the periods insist on a
 * unit, and say why. */
static void
test_bare_seconds(void **state)
{
	static const char *const timeouts[][2] = {
		{ "primary", "idle_timeout" },
		{ "standby", "connect_timeout" },
		{ "standby", "stall_timeout" },
	};
	static const char *const periods[][2] = {
		{ "primary", "interval" },
		{ "primary", "poll_interval" },
	};
	struct config cfg;
	char err[CONFIG_ERR_MAX];
	uint64_t ns;
	size_t i;

	(void)state;
	assert_int_equal(config_parse_seconds("60", &ns), 0);
	assert_int_equal(ns, 60000000000ULL);
	assert_int_equal(config_parse_seconds("0", &ns), 0);
	assert_int_equal(ns, 0);
	assert_int_equal(config_parse_seconds("1500ms", &ns), 0);
	assert_int_equal(ns, 1500000000ULL);
	assert_int_equal(config_parse_seconds("2m", &ns), 0);
	assert_int_equal(ns, 120000000000ULL);
	assert_int_equal(config_parse_seconds("", &ns), -AR_EUSAGE);
	assert_int_equal(config_parse_seconds("-5", &ns), -AR_EUSAGE);
	assert_int_equal(config_parse_seconds("5 ", &ns), -AR_EUSAGE);
	assert_int_equal(config_parse_seconds("1.5", &ns), -AR_EUSAGE);
	assert_int_equal(config_parse_seconds("18446744074", &ns),
	    -AR_EUSAGE);
	/* The plain duration parser still wants a unit. */
	assert_int_equal(config_parse_duration("60", &ns), -AR_EUSAGE);

	config_init(&cfg);
	for (i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
		assert_int_equal(config_set(&cfg, timeouts[i][0],
		    timeouts[i][1], "7", err, sizeof err), 0);
		assert_int_equal(config_set(&cfg, timeouts[i][0],
		    timeouts[i][1], "7s", err, sizeof err), 0);
	}
	assert_int_equal(cfg.primary.timeout_ns, 7000000000ULL);
	assert_int_equal(cfg.standby.connect_timeout_ns, 7000000000ULL);
	assert_int_equal(cfg.standby.stall_timeout_ns, 7000000000ULL);
	/* Bounds hold in seconds too: 2 days is past idle_timeout's 24h. */
	assert_int_equal(config_set(&cfg, "primary", "idle_timeout",
	    "172800", err, sizeof err), -AR_EUSAGE);
	assert_non_null(strstr(err, "out of range"));
	for (i = 0; i < sizeof(periods) / sizeof(periods[0]); i++) {
		assert_int_equal(config_set(&cfg, periods[i][0],
		    periods[i][1], "200", err, sizeof err), -AR_EUSAGE);
		assert_non_null(strstr(err, "a unit is needed"));
		assert_non_null(strstr(err, "seconds or milliseconds"));
		assert_int_equal(config_set(&cfg, periods[i][0],
		    periods[i][1], "200ms", err, sizeof err), 0);
	}
	config_release(&cfg);
}

static void
test_duration(void **state)
{
	uint64_t ns;

	assert_int_equal(config_parse_duration("0", &ns), 0);
	assert_int_equal(ns, 0);
	assert_int_equal(config_parse_duration("200ms", &ns), 0);
	assert_int_equal(ns, 200000000ULL);
	assert_int_equal(config_parse_duration("7ns", &ns), 0);
	assert_int_equal(ns, 7);
	assert_int_equal(config_parse_duration("3us", &ns), 0);
	assert_int_equal(ns, 3000);
	assert_int_equal(config_parse_duration("2s", &ns), 0);
	assert_int_equal(ns, 2000000000ULL);
	assert_int_equal(config_parse_duration("2m", &ns), 0);
	assert_int_equal(ns, 120000000000ULL);
	assert_int_equal(config_parse_duration("1h", &ns), 0);
	assert_int_equal(ns, 3600000000000ULL);
	assert_int_equal(config_parse_duration("0s", &ns), 0);
	assert_int_equal(ns, 0);
	assert_int_equal(config_parse_duration("18446744073709551615ns", &ns),
	    0);
	assert_true(ns == UINT64_MAX);

	/* A bare number asks for a unit. */
	assert_int_equal(config_parse_duration("5", &ns), -AR_EUSAGE);
	assert_int_equal(config_parse_duration("", &ns), -AR_EUSAGE);
	assert_int_equal(config_parse_duration("s", &ns), -AR_EUSAGE);
	assert_int_equal(config_parse_duration("-1s", &ns), -AR_EUSAGE);
	assert_int_equal(config_parse_duration("+1s", &ns), -AR_EUSAGE);
	assert_int_equal(config_parse_duration(" 1s", &ns), -AR_EUSAGE);
	assert_int_equal(config_parse_duration("1s ", &ns), -AR_EUSAGE);
	assert_int_equal(config_parse_duration("1.5s", &ns), -AR_EUSAGE);
	assert_int_equal(config_parse_duration("1sec", &ns), -AR_EUSAGE);
	assert_int_equal(config_parse_duration("1S", &ns), -AR_EUSAGE);
	assert_int_equal(config_parse_duration("1d", &ns), -AR_EUSAGE);
	/* Overflow in the digits and in the unit. */
	assert_int_equal(config_parse_duration("18446744073709551616ns", &ns),
	    -AR_EUSAGE);
	assert_int_equal(config_parse_duration("5124096h", &ns), -AR_EUSAGE);
	assert_int_equal(config_parse_duration("18446744074s", &ns),
	    -AR_EUSAGE);
}

static void
test_size(void **state)
{
	uint64_t b;

	assert_int_equal(config_parse_size("0", &b), 0);
	assert_int_equal(b, 0);
	assert_int_equal(config_parse_size("123", &b), 0);
	assert_int_equal(b, 123);
	assert_int_equal(config_parse_size("64K", &b), 0);
	assert_int_equal(b, 65536);
	assert_int_equal(config_parse_size("64k", &b), 0);
	assert_int_equal(b, 65536);
	assert_int_equal(config_parse_size("16M", &b), 0);
	assert_int_equal(b, 16ULL << 20);
	assert_int_equal(config_parse_size("3G", &b), 0);
	assert_int_equal(b, 3ULL << 30);
	assert_int_equal(config_parse_size("2T", &b), 0);
	assert_int_equal(b, 2ULL << 40);
	assert_int_equal(config_parse_size("16777215T", &b), 0);
	assert_true(b == 16777215ULL << 40);
	assert_int_equal(config_parse_size("18446744073709551615", &b), 0);
	assert_true(b == UINT64_MAX);

	assert_int_equal(config_parse_size("16777216T", &b), -AR_EUSAGE);
	assert_int_equal(config_parse_size("18446744073709551616", &b),
	    -AR_EUSAGE);
	assert_int_equal(config_parse_size("", &b), -AR_EUSAGE);
	assert_int_equal(config_parse_size("K", &b), -AR_EUSAGE);
	assert_int_equal(config_parse_size("-1", &b), -AR_EUSAGE);
	assert_int_equal(config_parse_size("1KB", &b), -AR_EUSAGE);
	assert_int_equal(config_parse_size("1X", &b), -AR_EUSAGE);
	assert_int_equal(config_parse_size("1 K", &b), -AR_EUSAGE);
	assert_int_equal(config_parse_size("0x10", &b), -AR_EUSAGE);
}

static void
test_uint(void **state)
{
	unsigned u = 99;

	assert_int_equal(config_parse_uint("4", 1, 256, &u), 0);
	assert_int_equal(u, 4);
	assert_int_equal(config_parse_uint("1", 1, 256, &u), 0);
	assert_int_equal(config_parse_uint("256", 1, 256, &u), 0);
	assert_int_equal(u, 256);
	assert_int_equal(config_parse_uint("4294967295", 0, UINT_MAX, &u), 0);
	assert_true(u == UINT_MAX);

	u = 99;
	assert_int_equal(config_parse_uint("0", 1, 256, &u), -AR_EUSAGE);
	assert_int_equal(config_parse_uint("257", 1, 256, &u), -AR_EUSAGE);
	assert_int_equal(config_parse_uint("4294967296", 0, UINT_MAX, &u),
	    -AR_EUSAGE);
	assert_int_equal(config_parse_uint("-1", 0, UINT_MAX, &u), -AR_EUSAGE);
	assert_int_equal(config_parse_uint("", 0, 10, &u), -AR_EUSAGE);
	assert_int_equal(config_parse_uint("3x", 0, 10, &u), -AR_EUSAGE);
	assert_int_equal(config_parse_uint(" 3", 0, 10, &u), -AR_EUSAGE);
	assert_int_equal(u, 99);
}

static void
test_portion(void **state)
{
	struct config_portion p = { 7, 0 };

	assert_int_equal(config_parse_portion("10", &p), 0);
	assert_int_equal(p.n, 10);
	assert_int_equal(p.percent, 0);
	assert_int_equal(config_parse_portion("0", &p), 0);
	assert_int_equal(p.n, 0);
	assert_int_equal(config_parse_portion("50%", &p), 0);
	assert_int_equal(p.n, 50);
	assert_int_equal(p.percent, 1);
	assert_int_equal(config_parse_portion("100%", &p), 0);
	assert_int_equal(config_parse_portion("0%", &p), 0);
	assert_int_equal(p.n, 0);
	assert_int_equal(p.percent, 1);
	assert_int_equal(config_parse_portion("18446744073709551615", &p), 0);
	assert_true(p.n == UINT64_MAX);

	p.n = 7;
	p.percent = 0;
	assert_int_equal(config_parse_portion("101%", &p), -AR_EUSAGE);
	assert_int_equal(config_parse_portion("18446744073709551616", &p),
	    -AR_EUSAGE);
	assert_int_equal(config_parse_portion("", &p), -AR_EUSAGE);
	assert_int_equal(config_parse_portion("%", &p), -AR_EUSAGE);
	assert_int_equal(config_parse_portion("-1", &p), -AR_EUSAGE);
	assert_int_equal(config_parse_portion("5x", &p), -AR_EUSAGE);
	assert_int_equal(config_parse_portion("5%%", &p), -AR_EUSAGE);
	assert_int_equal(config_parse_portion("5 %", &p), -AR_EUSAGE);
	assert_int_equal(config_parse_portion(" 5", &p), -AR_EUSAGE);
	assert_int_equal(p.n, 7);
	assert_int_equal(p.percent, 0);
}

static void
test_addr(void **state)
{
	struct config_addr a;
	struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;
	struct in6_addr loop6 = IN6ADDR_LOOPBACK_INIT;
	size_t i;
	static const char *const bad[] = {
		"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
		"127.0.0.1:65536", ":8873", "localhost:8873", "300.1.1.1:1",
		"1.2.3.4:8a", "1.2.3.4:-1", "1.2.3.4: 80", "::1:8873",
		"[::1]", "[::1]8873", "[::1]:", "[::1", "[]:80",
		"[127.0.0.1]:80", "[::1]:0", "[fe80::1%eth0]:80",
		"[1:2:3:4:5:6:7:8:9]:80",
		"[0000:0000:0000:0000:0000:0000:0000:0001]:65535xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	};

	memset(&a, 0, sizeof a);
	assert_int_equal(config_parse_addr("127.0.0.1:8873", &a), 0);
	assert_int_equal(a.set, 1);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 8873);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(a.len, sizeof(struct sockaddr_in));
	assert_string_equal(a.text, "127.0.0.1:8873");

	assert_int_equal(config_parse_addr("[::1]:65535", &a), 0);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 65535);
	assert_memory_equal(&sin6->sin6_addr, &loop6, sizeof loop6);
	assert_int_equal(a.len, sizeof(struct sockaddr_in6));
	assert_string_equal(a.text, "[::1]:65535");

	assert_int_equal(config_parse_addr("[2001:db8::a:b]:1", &a), 0);
	assert_int_equal(ntohs(sin6->sin6_port), 1);
	assert_int_equal(config_parse_addr("0.0.0.0:80", &a), 0);

	/* A failure leaves the previous value untouched. */
	assert_int_equal(config_parse_addr("192.0.2.10:8873", &a), 0);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (config_parse_addr(bad[i], &a) != -AR_EUSAGE)
			fail_msg("accepted bad address '%s'", bad[i]);
		assert_string_equal(a.text, "192.0.2.10:8873");
		assert_int_equal(sin->sin_family, AF_INET);
	}
}

static void
test_defaults(void **state)
{
	struct config cfg;

	config_init(&cfg);
	assert_null(cfg.file);
	assert_null(cfg.primary.data_dir);
	assert_null(cfg.primary.spool_dir);
	assert_int_equal(cfg.primary.listen.set, 0);
	assert_null(cfg.primary.auth_token_file);
	assert_int_equal(cfg.primary.interval_ns, 200000000ULL);
	assert_int_equal(cfg.primary.max_connections, 64);
	assert_int_equal(cfg.primary.max_per_ip, 16);
	assert_int_equal(cfg.primary.timeout_ns, 30000000000ULL);
	assert_int_equal(cfg.primary.max_signature_size, 64ULL << 20);
	assert_int_equal(cfg.primary.max_deltas, 4);
	assert_int_equal(cfg.primary.threads, 4);
	assert_null(cfg.primary.standbys);
	assert_int_equal(cfg.primary.standby_expiry_ns,
	    7ULL * 24 * 3600 * 1000000000ULL);
	assert_null(cfg.standby.data_dir);
	assert_null(cfg.standby.state_dir);
	assert_int_equal(cfg.standby.primary.set, 0);
	assert_int_equal(cfg.primary.metrics_listen.set, 0);
	assert_int_equal(cfg.standby.metrics_listen.set, 0);
	assert_int_equal(cfg.standby.connect_timeout_ns, 5000000000ULL);
	assert_int_equal(cfg.standby.stall_timeout_ns, 30000000000ULL);
	assert_int_equal(cfg.standby.delta_min_size, 64 * 1024);
	assert_int_equal(cfg.standby.lane_min_size, 8 * 1024 * 1024);
	assert_int_equal(cfg.standby.batch_size, 16ULL << 20);
	assert_int_equal(cfg.standby.batch_files, 1024);
	assert_int_equal(cfg.standby.max_file_size, 0);
	assert_int_equal(cfg.standby.max_stored_size, 4ULL << 30);
	assert_int_equal(cfg.standby.strip_setuid, CONFIG_OFF);
	assert_int_equal(cfg.standby.max_delete.n, 50);
	assert_int_equal(cfg.standby.max_delete.percent, 1);
	config_release(&cfg);
}

static void
test_section_keys(void **state)
{
	const char *const *k;
	size_t n;

	k = config_section_keys("primary");
	assert_non_null(k);
	for (n = 0; k[n] != NULL; n++)
		;
	assert_int_equal(n, 26);
	assert_string_equal(k[0], "data_dir");
	assert_string_equal(k[2], "listen");
	assert_string_equal(k[9], "threads");
	assert_string_equal(k[10], "watch_mode");
	assert_string_equal(k[13], "spool_max_size");
	assert_string_equal(k[14], "standbys");
	assert_string_equal(k[15], "standby_expiry");
	assert_string_equal(k[16], "reverify_rate");
	assert_string_equal(k[17], "tls");
	assert_string_equal(k[21], "tls_ca");
	assert_string_equal(k[22], "bwlimit");
	assert_string_equal(k[23], "metrics_listen");
	assert_string_equal(k[24], "max_deltas");
	assert_string_equal(k[25], "header_timeout");

	k = config_section_keys("standby");
	assert_non_null(k);
	for (n = 0; k[n] != NULL; n++)
		;
	assert_int_equal(n, 35);
	assert_string_equal(k[1], "state_dir");
	assert_string_equal(k[8], "batch_files");
	assert_string_equal(k[9], "standby_id");
	assert_string_equal(k[10], "exclude");
	assert_string_equal(k[11], "tls");
	assert_string_equal(k[12], "tls_cert");
	assert_string_equal(k[15], "tls_ca");
	assert_string_equal(k[16], "max_delete");
	assert_string_equal(k[17], "bwlimit");
	assert_string_equal(k[18], "compress");
	assert_string_equal(k[19], "compress_level");
	assert_string_equal(k[20], "metrics_listen");
	assert_string_equal(k[21], "max_file_size");
	assert_string_equal(k[22], "max_stored_size");
	assert_string_equal(k[23], "specials");
	assert_string_equal(k[24], "devices");
	assert_string_equal(k[25], "xattrs");
	assert_string_equal(k[26], "selinux");
	assert_string_equal(k[27], "acls");
	assert_string_equal(k[28], "map_users");
	assert_string_equal(k[29], "append");
	assert_string_equal(k[30], "append_min_size");
	assert_string_equal(k[31], "inplace");
	assert_string_equal(k[32], "inplace_min_size");
	assert_string_equal(k[33], "strip_setuid");
	assert_string_equal(k[34], "lane_min_size");

	assert_null(config_section_keys("rescue"));
}

static const char both_sections[] =
    "# asyncrep configuration, shared by every node\n"
    "[primary]\n"
    "data_dir  = /srv/data            ; what is replicated\n"
    "spool_dir = /srv/asyncrep/spool  ; durable change journal\n"
    "listen    = 192.0.2.10:8873      ; service address\n"
    "interval  = 50ms\n"
    "auth_token_file = /etc/asyncrep/token\n"
    "max_connections = 8\n"
    "max_per_ip = 2\n"
    "idle_timeout = 2m\n"
    "max_signature_size = 1G\n"
    "threads = 16\n"
    "\n"
    "; a whole-line comment\n"
    "[standby]\r\n"
    "    data_dir  = /srv/replica#not-a-comment\n"
    "\tstate_dir = /var/lib/asyncrep\n"
    "  primary   = [2001:db8::10]:8873\n"
    "connect_timeout = 1500ms\n"
    "stall_timeout = 1h\n"
    "delta_min_size = 0\n"
    "batch_size = 1M\n"
    "batch_files = 10\n"
    "auth_token_file = token";		/* no final newline */

static void
test_load_both(void **state)
{
	struct config cfg;
	char path[PATH_MAX], err[CONFIG_ERR_MAX];
	struct sockaddr_in6 *sin6;

	config_init(&cfg);
	assert_int_equal(load_text(&cfg, both_sections, path, sizeof path,
	    err, sizeof err), 0);
	assert_string_equal(cfg.file, path);
	assert_string_equal(cfg.primary.data_dir, "/srv/data");
	assert_string_equal(cfg.primary.spool_dir, "/srv/asyncrep/spool");
	assert_string_equal(cfg.primary.listen.text, "192.0.2.10:8873");
	assert_int_equal(cfg.primary.interval_ns, 50000000ULL);
	assert_string_equal(cfg.primary.auth_token_file,
	    "/etc/asyncrep/token");
	assert_int_equal(cfg.primary.max_connections, 8);
	assert_int_equal(cfg.primary.max_per_ip, 2);
	assert_int_equal(cfg.primary.timeout_ns, 120000000000ULL);
	assert_int_equal(cfg.primary.max_signature_size, 1ULL << 30);
	assert_int_equal(cfg.primary.threads, 16);

	/* Indented lines are keys, not continuations; '#' inside a value
	 * is data; CRLF is accepted. */
	assert_string_equal(cfg.standby.data_dir,
	    "/srv/replica#not-a-comment");
	assert_string_equal(cfg.standby.state_dir, "/var/lib/asyncrep");
	sin6 = (struct sockaddr_in6 *)&cfg.standby.primary.ss;
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 8873);
	assert_int_equal(cfg.standby.connect_timeout_ns, 1500000000ULL);
	assert_int_equal(cfg.standby.stall_timeout_ns, 3600000000000ULL);
	assert_int_equal(cfg.standby.delta_min_size, 0);
	assert_int_equal(cfg.standby.batch_size, 1ULL << 20);
	assert_int_equal(cfg.standby.batch_files, 10);
	assert_string_equal(cfg.standby.auth_token_file, "token");

	assert_int_equal(config_check(&cfg, "primary", err, sizeof err), 0);
	assert_int_equal(config_check(&cfg, "standby", err, sizeof err), 0);
	config_release(&cfg);
	assert_null(cfg.file);
	assert_null(cfg.primary.data_dir);
}

/* Expect text to fail to load with -AR_ECONFIG and a message that
 * starts with PATH:LINE: and contains want. */
static void
expect_load_error(const char *text, int line, const char *want)
{
	struct config cfg;
	char path[PATH_MAX], err[CONFIG_ERR_MAX], prefix[PATH_MAX + 16];

	config_init(&cfg);
	memset(err, 'Z', sizeof err);
	assert_int_equal(load_text(&cfg, text, path, sizeof path, err,
	    sizeof err), -AR_ECONFIG);
	assert_non_null(memchr(err, '\0', sizeof err));
	snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
	if (strncmp(err, prefix, strlen(prefix)) != 0 ||
	    strstr(err, want) == NULL)
		fail_msg("message '%s' lacks '%s' or '%s'", err, prefix, want);
	config_release(&cfg);
}

static void
test_load_errors(void **state)
{
	expect_load_error("[primary]\ndata_dir = /a\n\n[standby]\n"
	    "bogus = 1\n", 5, "unknown key 'bogus' in section [standby]");
	/* A key of the other section is unknown here. */
	expect_load_error("[primary]\nstate_dir = /a\n", 2,
	    "unknown key 'state_dir' in section [primary]");
	expect_load_error("[primary]\ndata_dir = /a\n[rescue]\n", 3,
	    "unknown section [rescue]");
	expect_load_error("[Primary]\n", 1, "unknown section [Primary]");
	expect_load_error("data_dir = /a\n", 1, "outside any section");
	expect_load_error("[primary]\ndata_dir = /a\n; x\ndata_dir = /b\n", 4,
	    "key 'data_dir': duplicate in section [primary] "
	    "(first set on line 2)");
	/* The same key in each section is not a duplicate, but twice in
	 * a section split in two is. */
	expect_load_error("[primary]\ndata_dir = /a\n[standby]\n"
	    "data_dir = /b\n[primary]\ndata_dir = /c\n", 6, "duplicate");
	expect_load_error("[primary]\ninterval = 5\n", 2,
	    "key 'interval': bad duration '5': a unit is needed");
	expect_load_error("[primary]\ninterval = 2h\n", 2,
	    "key 'interval': '2h' is out of range (0 to 1h)");
	expect_load_error("[primary]\nthreads = 0\n", 2,
	    "key 'threads': '0' is out of range (1 to 256)");
	expect_load_error("[primary]\nmax_signature_size = 1K\n", 2,
	    "'1K' is out of range (4K to 4G)");
	expect_load_error("[standby]\nbatch_size = lots\n", 2,
	    "key 'batch_size': bad size 'lots'");
	expect_load_error("[standby]\nprimary = host:80\n", 2,
	    "key 'primary': bad address 'host:80'");
	expect_load_error("[standby]\ndata_dir = relative/dir\n", 2,
	    "key 'data_dir': 'relative/dir' is not an absolute path");
	expect_load_error("[standby]\nauth_token_file =\n", 2,
	    "key 'auth_token_file': must not be empty");
	expect_load_error("[standby]\n\njunk line\n", 3, "syntax error");
	expect_load_error("[standby\n", 1, "syntax error");
	/* The first error wins, whatever its kind. */
	expect_load_error("[standby]\njunk\nbogus = 1\n", 2, "syntax error");
	expect_load_error("[standby]\nbogus = 1\njunk\n", 2, "unknown key");
	/* A line inih would split is refused, not half-parsed. */
	{
		char text[400];

		memset(text, 'a', sizeof text);
		memcpy(text, "[standby]\ndata_dir = /", 22);
		text[sizeof text - 1] = '\0';
		expect_load_error(text, 2, "line too long");
	}
	/* A control character in a value is escaped in the message. */
	expect_load_error("[primary]\nlisten = \x1b[31m\n", 2,
	    "bad address '\\x1b[31m'");
}

static void
test_load_buffer(void **state)
{
	static const char nul[] = "[primary]\ndata_dir = /a\0b\n";
	struct config cfg;
	char err[CONFIG_ERR_MAX];

	config_init(&cfg);
	assert_int_equal(config_load_buffer(&cfg, "mem", nul, sizeof nul - 1,
	    err, sizeof err), -AR_ECONFIG);
	assert_string_equal(err, "mem:2: NUL byte in line");
	config_release(&cfg);

	/* len bounds the parse: no NUL terminator is needed. */
	config_init(&cfg);
	assert_int_equal(config_load_buffer(&cfg, "mem",
	    "[primary]\nthreads = 7\nthreads = 8\n", 22, err, sizeof err), 0);
	assert_int_equal(cfg.primary.threads, 7);
	config_release(&cfg);

	/* Empty input and comments only are valid. */
	config_init(&cfg);
	assert_int_equal(config_load_buffer(&cfg, "mem", "", 0, err,
	    sizeof err), 0);
	assert_int_equal(config_load_buffer(&cfg, "mem", "# x\n; y\n\n", 9,
	    err, sizeof err), 0);
	/* A UTF-8 byte order mark is allowed. */
	assert_int_equal(config_load_buffer(&cfg, "mem",
	    "\xef\xbb\xbf[primary]\nthreads = 3\n", 25, err, sizeof err), 0);
	assert_int_equal(cfg.primary.threads, 3);
	config_release(&cfg);
}

static void
test_load_missing(void **state)
{
	struct config cfg;
	char path[PATH_MAX], err[CONFIG_ERR_MAX];
	int n;

	config_init(&cfg);
	n = snprintf(path, sizeof path, "%s/absent.conf", test_dir);
	assert_true(n > 0 && (size_t)n < sizeof path);
	assert_int_equal(config_load(&cfg, path, err, sizeof err),
	    -AR_ECONFIG);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "cannot open"));
	assert_int_equal(config_load(&cfg, test_dir, err, sizeof err),
	    -AR_ECONFIG);
	assert_non_null(strstr(err, "not a regular file"));
	assert_null(cfg.file);
	/* A tiny err buffer is still terminated. */
	assert_int_equal(config_load(&cfg, path, err, 4), -AR_ECONFIG);
	assert_int_equal(strlen(err), 3);
	config_release(&cfg);
}

/* standbys: a list of ids; standby_expiry: a bare number is seconds. */
static void
test_standbys(void **state)
{
	static const char *const bad[] = { "", " , ", "a b", "a,,a",
	    "a/b", "a,b c", "x,y,x", NULL };
	const char *p;
	struct config cfg;
	char err[CONFIG_ERR_MAX], id[LIMIT_ID_MAX + 1], list[64 * 3 + 8];
	size_t i;

	(void)state;
	config_init(&cfg);
	assert_int_equal(config_set(&cfg, "primary", "standbys",
	    " db-1, db_2 ,x.y", err, sizeof err), 0);
	p = cfg.primary.standbys;
	assert_int_equal(config_ids_next(&p, id), 1);
	assert_string_equal(id, "db-1");
	assert_int_equal(config_ids_next(&p, id), 1);
	assert_string_equal(id, "db_2");
	assert_int_equal(config_ids_next(&p, id), 1);
	assert_string_equal(id, "x.y");
	assert_int_equal(config_ids_next(&p, id), 0);
	for (i = 0; bad[i] != NULL; i++) {
		assert_int_equal(config_set(&cfg, "primary", "standbys",
		    bad[i], err, sizeof err), -AR_EUSAGE);
		assert_non_null(strstr(err, "key 'standbys'"));
	}
	/* 64 ids, not 65. */
	list[0] = '\0';
	for (i = 0; i < 64; i++)
		snprintf(list + strlen(list), sizeof list - strlen(list),
		    "%s%02zx", i ? "," : "", i);
	assert_int_equal(config_set(&cfg, "primary", "standbys", list,
	    err, sizeof err), 0);
	snprintf(list + strlen(list), sizeof list - strlen(list), ",zz");
	assert_int_equal(config_set(&cfg, "primary", "standbys", list,
	    err, sizeof err), -AR_EUSAGE);
	assert_non_null(strstr(err, "too many"));

	assert_int_equal(config_set(&cfg, "primary", "standby_expiry", "90",
	    err, sizeof err), 0);
	assert_int_equal(cfg.primary.standby_expiry_ns, 90000000000ULL);
	assert_int_equal(config_set(&cfg, "primary", "standby_expiry", "2h",
	    err, sizeof err), 0);
	assert_int_equal(cfg.primary.standby_expiry_ns, 7200000000000ULL);
	assert_int_equal(config_set(&cfg, "primary", "standby_expiry", "0",
	    err, sizeof err), -AR_EUSAGE);
	assert_int_equal(config_set(&cfg, "primary", "standby_expiry",
	    "5x", err, sizeof err), -AR_EUSAGE);
	config_release(&cfg);
}

#define PIN_A "sha256:00112233445566778899aabbccddeeff" \
    "00112233445566778899aabbccddeeff"
#define PIN_B "sha256:FFEEDDCCBBAA99887766554433221100" \
    "FFEEDDCCBBAA99887766554433221100"

/* standbys = ID=PIN, ...: an id bound to a key; several lines append. */
static void
test_standbys_pins(void **state)
{
	static const char *const bad[] = { "a=", "a=sha256:00", "=" PIN_A,
	    "a=" PIN_A "0", "a=md5:00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff", "a=" PIN_A ",a", NULL };
	const char *p;
	struct config cfg;
	char err[CONFIG_ERR_MAX], id[LIMIT_ID_MAX + 1], pin[PIN_TEXT_LEN + 1];
	char path[PATH_MAX];
	size_t i;

	(void)state;
	config_init(&cfg);
	assert_int_equal(config_set(&cfg, "primary", "standbys",
	    "s1=" PIN_A ", s2 , s3=" PIN_B, err, sizeof err), 0);
	p = cfg.primary.standbys;
	assert_int_equal(config_ids_next_pin(&p, id, pin), 1);
	assert_string_equal(id, "s1");
	assert_string_equal(pin, PIN_A);
	assert_int_equal(config_ids_next_pin(&p, id, pin), 1);
	assert_string_equal(id, "s2");
	assert_string_equal(pin, "");
	assert_int_equal(config_ids_next(&p, id), 1);
	assert_string_equal(id, "s3");
	assert_int_equal(config_ids_next(&p, id), 0);
	p = cfg.primary.standbys;
	(void)config_ids_next(&p, id);
	(void)config_ids_next(&p, id);
	assert_int_equal(config_ids_next_pin(&p, id, pin), 1);
	/* Lowercased. */
	assert_string_equal(pin, "sha256:ffeeddccbbaa99887766554433221100"
	    "ffeeddccbbaa99887766554433221100");
	for (i = 0; bad[i] != NULL; i++) {
		assert_int_equal(config_set(&cfg, "primary", "standbys",
		    bad[i], err, sizeof err), -AR_EUSAGE);
		assert_non_null(strstr(err, "key 'standbys'"));
	}
	config_release(&cfg);

	/* Two pins do not fit in one line: the key may be set again. */
	config_init(&cfg);
	assert_int_equal(load_text(&cfg, "[primary]\n"
	    "standbys = s1=" PIN_A "\n"
	    "standbys = s2, s3=" PIN_B "\n", path, sizeof path, err,
	    sizeof err), 0);
	p = cfg.primary.standbys;
	assert_int_equal(config_ids_next_pin(&p, id, pin), 1);
	assert_string_equal(id, "s1");
	assert_int_equal(config_ids_next_pin(&p, id, pin), 1);
	assert_string_equal(id, "s2");
	assert_int_equal(config_ids_next_pin(&p, id, pin), 1);
	assert_string_equal(id, "s3");
	assert_int_equal(config_ids_next_pin(&p, id, pin), 0);
	config_release(&cfg);
	/* An id twice across lines is still an error, on its line. */
	expect_load_error("[primary]\nstandbys = s1\nstandbys = s2, s1\n", 3,
	    "listed twice");
}

static void
test_set(void **state)
{
	struct config cfg;
	char path[PATH_MAX], err[CONFIG_ERR_MAX];

	config_init(&cfg);
	assert_int_equal(load_text(&cfg, both_sections, path, sizeof path,
	    err, sizeof err), 0);
	/* Options override the file, strings are replaced. */
	assert_int_equal(config_set(&cfg, "standby", "data_dir", "/other",
	    err, sizeof err), 0);
	assert_string_equal(cfg.standby.data_dir, "/other");
	assert_int_equal(config_set(&cfg, "standby", "data_dir", "/third",
	    err, sizeof err), 0);
	assert_string_equal(cfg.standby.data_dir, "/third");
	assert_int_equal(config_set(&cfg, "primary", "interval", "1s",
	    err, sizeof err), 0);
	assert_int_equal(cfg.primary.interval_ns, 1000000000ULL);
	assert_int_equal(config_set(&cfg, "primary", "listen", "[::]:9",
	    err, sizeof err), 0);
	assert_string_equal(cfg.primary.listen.text, "[::]:9");
	assert_int_equal(config_set(&cfg, "standby", "batch_files", "5",
	    err, sizeof err), 0);
	assert_int_equal(cfg.standby.batch_files, 5);
	/* bwlimit: 0 is no limit, a size from 1K, a small bare number a
	 * likely KiB of rsync's. */
	assert_int_equal(cfg.standby.bwlimit, 0);
	assert_int_equal(config_set(&cfg, "standby", "bwlimit", "10M",
	    err, sizeof err), 0);
	assert_int_equal(cfg.standby.bwlimit, 10 * 1024 * 1024);
	assert_int_equal(config_set(&cfg, "primary", "bwlimit", "1024",
	    err, sizeof err), 0);
	assert_int_equal(cfg.primary.bwlimit, 1024);
	assert_int_equal(config_set(&cfg, "primary", "bwlimit", "1023",
	    err, sizeof err), -AR_EUSAGE);
	assert_non_null(strstr(err, "below 1K"));
	assert_int_equal(cfg.primary.bwlimit, 1024);
	assert_int_equal(config_set(&cfg, "primary", "bwlimit", "0",
	    err, sizeof err), 0);
	assert_int_equal(cfg.primary.bwlimit, 0);
	assert_int_equal(config_set(&cfg, "standby", "bwlimit", "2T",
	    err, sizeof err), -AR_EUSAGE);
	assert_non_null(strstr(err, "out of range"));
	/* map_users: name or numeric, as well as yes or no; nothing else,
	 * not even on other yes/no keys. */
	assert_int_equal(cfg.standby.map_users, 0);
	assert_int_equal(config_set(&cfg, "standby", "map_users", "name",
	    err, sizeof err), 0);
	assert_int_equal(cfg.standby.map_users, 1);
	assert_int_equal(config_set(&cfg, "standby", "map_users", "numeric",
	    err, sizeof err), 0);
	assert_int_equal(cfg.standby.map_users, 0);
	assert_int_equal(config_set(&cfg, "standby", "map_users", "yes",
	    err, sizeof err), 0);
	assert_int_equal(cfg.standby.map_users, 1);
	assert_int_equal(config_set(&cfg, "standby", "map_users", "names",
	    err, sizeof err), -AR_EUSAGE);
	assert_int_equal(cfg.standby.map_users, 1);
	assert_int_equal(config_set(&cfg, "standby", "acls", "name",
	    err, sizeof err), -AR_EUSAGE);

	/* Errors name the key and leave the value alone. */
	assert_int_equal(config_set(&cfg, "primary", "interval", "10",
	    err, sizeof err), -AR_EUSAGE);
	assert_non_null(strstr(err, "key 'interval'"));
	assert_non_null(strstr(err, "unit"));
	assert_int_equal(cfg.primary.interval_ns, 1000000000ULL);
	assert_int_equal(config_set(&cfg, "standby", "data_dir", "",
	    err, sizeof err), -AR_EUSAGE);
	assert_string_equal(cfg.standby.data_dir, "/third");
	assert_int_equal(config_set(&cfg, "standby", "listen", "[::]:9",
	    err, sizeof err), -AR_EUSAGE);
	assert_string_equal(err, "unknown key 'listen' in section [standby]");
	assert_int_equal(config_set(&cfg, "nosuch", "data_dir", "/x",
	    err, sizeof err), -AR_EUSAGE);
	/* err may be NULL. */
	assert_int_equal(config_set(&cfg, "primary", "threads", "x",
	    NULL, 0), -AR_EUSAGE);
	config_release(&cfg);
}

static void
test_check(void **state)
{
	struct config cfg;
	char err[CONFIG_ERR_MAX];

	config_init(&cfg);
	assert_int_equal(config_check(&cfg, "standby", err, sizeof err),
	    -AR_ECONFIG);
	assert_non_null(strstr(err,
	    "missing data_dir (set it in [standby] or with --data-dir)"));
	assert_non_null(strstr(err, "missing state_dir"));
	assert_non_null(strstr(err, "--state-dir"));
	assert_non_null(strstr(err, "missing primary"));

	assert_int_equal(config_set(&cfg, "standby", "data_dir", "/d",
	    err, sizeof err), 0);
	assert_int_equal(config_set(&cfg, "standby", "state_dir", "/s",
	    err, sizeof err), 0);
	assert_int_equal(config_check(&cfg, "standby", err, sizeof err),
	    -AR_ECONFIG);
	assert_string_equal(err,
	    "missing primary (set it in [standby] or with --primary)");
	assert_int_equal(config_set(&cfg, "standby", "primary",
	    "127.0.0.1:1", err, sizeof err), 0);
	assert_int_equal(config_check(&cfg, "standby", err, sizeof err), 0);

	/* The state must not live inside the replicated tree. */
	assert_int_equal(config_set(&cfg, "standby", "state_dir", "/d/.st",
	    err, sizeof err), 0);
	assert_int_equal(config_check(&cfg, "standby", err, sizeof err),
	    -AR_ECONFIG);
	assert_non_null(strstr(err, "overlap"));
	/* A common prefix is not containment. */
	assert_int_equal(config_set(&cfg, "standby", "state_dir", "/dd",
	    err, sizeof err), 0);
	assert_int_equal(config_check(&cfg, "standby", err, sizeof err), 0);
	assert_int_equal(config_set(&cfg, "standby", "state_dir", "/d/",
	    err, sizeof err), 0);
	assert_int_equal(config_check(&cfg, "standby", err, sizeof err),
	    -AR_ECONFIG);

	assert_int_equal(config_check(&cfg, "primary", err, sizeof err),
	    -AR_ECONFIG);
	assert_non_null(strstr(err,
	    "missing spool_dir (set it in [primary] or with --spool-dir)"));
	assert_non_null(strstr(err, "--listen"));
	assert_int_equal(config_set(&cfg, "primary", "data_dir", "/",
	    err, sizeof err), 0);
	assert_int_equal(config_set(&cfg, "primary", "spool_dir", "/spool",
	    err, sizeof err), 0);
	assert_int_equal(config_set(&cfg, "primary", "listen",
	    "127.0.0.1:1", err, sizeof err), 0);
	assert_int_equal(config_check(&cfg, "primary", err, sizeof err),
	    -AR_ECONFIG);
	assert_int_equal(config_set(&cfg, "primary", "data_dir", "/data",
	    err, sizeof err), 0);
	assert_int_equal(config_check(&cfg, "primary", err, sizeof err), 0);

	assert_int_equal(config_check(&cfg, "rescue", err, sizeof err),
	    -AR_EUSAGE);
	config_release(&cfg);
}

#define PIN1 "sha256:" \
	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

/* The TLS keys: values checked as they are read, then the rules of a
 * mutual TLS in config_check. */
static void
test_tls_keys(void **state)
{
	static const char conf[] =
	    "[primary]\n"
	    "data_dir = /d\n"
	    "spool_dir = /s\n"
	    "listen = 192.0.2.1:8873\n"
	    "tls_cert = /etc/a/cert.pem\n"
	    "tls_key = /etc/a/key.pem\n"
	    "tls_trust = " PIN1 "\n"
	    "[standby]\n"
	    "tls = off\n";
	static const char bad_pins[] =
	    "[standby]\ntls_trust = " PIN1 ", sha256:x\n";
	struct config cfg;
	char err[CONFIG_ERR_MAX];

	(void)state;
	config_init(&cfg);
	assert_int_equal(cfg.primary.tls.mode, CONFIG_UNSET);
	assert_false(config_tls_enabled(&cfg.primary.tls));
	assert_int_equal(config_load_buffer(&cfg, "mem", conf,
	    sizeof(conf) - 1, err, sizeof err), 0);
	assert_string_equal(cfg.primary.tls.cert, "/etc/a/cert.pem");
	assert_string_equal(cfg.primary.tls.trust, PIN1);
	/* On without "tls = on": a certificate is enough. */
	assert_true(config_tls_enabled(&cfg.primary.tls));
	assert_int_equal(config_check(&cfg, "primary", err, sizeof err), 0);
	assert_int_equal(cfg.standby.tls.mode, CONFIG_OFF);
	assert_false(config_tls_enabled(&cfg.standby.tls));

	/* Mutual: a certificate needs its key and the peer's identity. */
	assert_int_equal(config_set(&cfg, "primary", "tls", "off", err,
	    sizeof err), 0);
	assert_false(config_tls_enabled(&cfg.primary.tls));
	assert_int_equal(config_check(&cfg, "primary", err, sizeof err), 0);
	assert_int_equal(config_set(&cfg, "primary", "tls", "on", err,
	    sizeof err), 0);
	free(cfg.primary.tls.trust);
	cfg.primary.tls.trust = NULL;
	assert_int_equal(config_check(&cfg, "primary", err, sizeof err),
	    -AR_ECONFIG);
	assert_non_null(strstr(err, "tls_trust"));
	assert_non_null(strstr(err, "tls_ca"));
	assert_int_equal(config_set(&cfg, "primary", "tls_ca", "/etc/ca.pem",
	    err, sizeof err), 0);
	assert_int_equal(config_check(&cfg, "primary", err, sizeof err), 0);
	free(cfg.primary.tls.key);
	cfg.primary.tls.key = NULL;
	assert_int_equal(config_check(&cfg, "primary", err, sizeof err),
	    -AR_ECONFIG);
	assert_string_equal(err, "TLS in [primary] needs both tls_cert and "
	    "tls_key");

	/* Without tls written, a key that needs a certificate is named. */
	assert_int_equal(config_set(&cfg, "standby", "tls_trust", PIN1, err,
	    sizeof err), 0);
	assert_int_equal(config_set(&cfg, "standby", "data_dir", "/d", err,
	    sizeof err), 0);
	assert_int_equal(config_set(&cfg, "standby", "state_dir", "/s", err,
	    sizeof err), 0);
	assert_int_equal(config_set(&cfg, "standby", "primary",
	    "192.0.2.1:1", err, sizeof err), 0);
	assert_int_equal(config_check(&cfg, "standby", err, sizeof err), 0);
	cfg.standby.tls.mode = CONFIG_UNSET;
	assert_int_equal(config_check(&cfg, "standby", err, sizeof err),
	    -AR_ECONFIG);
	assert_string_equal(err, "tls_trust in [standby] needs tls_cert "
	    "(TLS is on only with a certificate)");

	/* Bad values, refused as they are read. */
	assert_int_equal(config_set(&cfg, "standby", "tls", "yes", err,
	    sizeof err), 0);
	assert_int_equal(cfg.standby.tls.mode, CONFIG_ON);
	assert_int_equal(config_set(&cfg, "standby", "tls", "no", err,
	    sizeof err), 0);
	assert_int_equal(cfg.standby.tls.mode, CONFIG_OFF);
	assert_int_equal(config_set(&cfg, "standby", "tls", "true", err,
	    sizeof err), -AR_EUSAGE);
	assert_non_null(strstr(err, "neither 'on' nor 'off'"));
	assert_int_equal(config_set(&cfg, "standby", "tls_trust",
	    "sha256:00", err, sizeof err), -AR_EUSAGE);
	assert_non_null(strstr(err, "bad pins"));
	assert_int_equal(config_set(&cfg, "standby", "tls_cert", "cert.pem",
	    err, sizeof err), -AR_EUSAGE);
	assert_non_null(strstr(err, "absolute"));
	config_release(&cfg);

	config_init(&cfg);
	assert_int_equal(config_load_buffer(&cfg, "mem", bad_pins,
	    sizeof(bad_pins) - 1, err, sizeof err), -AR_ECONFIG);
	assert_non_null(strstr(err, "mem:2: key 'tls_trust': bad pins"));
	config_release(&cfg);

	assert_true(config_key_is_path("primary", "tls_cert"));
	assert_true(config_key_is_path("standby", "tls_ca"));
	assert_true(config_key_is_path("standby", "data_dir"));
	assert_false(config_key_is_path("standby", "tls_trust"));
	assert_false(config_key_is_path("standby", "auth_token_file"));
	assert_false(config_key_is_path("nosuch", "tls_ca"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_bare_seconds),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_portion),
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_section_keys),
		cmocka_unit_test(test_load_both),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_load_buffer),
		cmocka_unit_test(test_load_missing),
		cmocka_unit_test(test_standbys_pins),
		cmocka_unit_test(test_standbys),
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_tls_keys),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}

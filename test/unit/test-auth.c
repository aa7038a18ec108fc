/*
 * test-auth.c: token file loading, the constant-time header check, the
 * header a client sends and loopback detection.
 *
 * Token files are written into a scratch directory removed afterwards.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"
#include "error.h"
#include "scratch.h"

#define TOKEN "0123456789abcdefGHIJ-_.~+/="	/* 27 visible characters */

struct tctx {
	char top[PATH_MAX];
	char path[PATH_MAX];	/* top/token: the file under test */
	struct auth a;
	char err[512];
};

static int
setup(void **state)
{
	struct tctx *t;
	int n;

	t = calloc(1, sizeof *t);
	assert_non_null(t);
	assert_int_equal(scratch_make(t->top, sizeof t->top, "test-auth"), 0);
	n = snprintf(t->path, sizeof t->path, "%s/token", t->top);
	assert_true(n > 0 && (size_t)n < sizeof t->path);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tctx *t = *state;

	assert_int_equal(scratch_remove(t->top), 0);
	free(t);
	return 0;
}

/* Replace the token file with len bytes of data. */
static void
put_file(const struct tctx *t, const void *data, size_t len)
{
	int fd;

	fd = open(t->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void
put_str(const struct tctx *t, const char *s)
{
	put_file(t, s, strlen(s));
}

/* Load the token file, expecting success. */
static void
load_ok(struct tctx *t)
{
	t->err[0] = '\0';
	assert_int_equal(auth_load(&t->a, t->path, t->err, sizeof t->err), 0);
	assert_true(t->a.enabled);
}

/* Load the token file, expecting a config error that names it, and that
 * the failed load did not leave a half-filled token behind. */
static void
load_bad(struct tctx *t, const char *why)
{
	memset(t->err, 0, sizeof t->err);
	assert_int_equal(auth_load(&t->a, t->path, t->err, sizeof t->err),
	    -AR_ECONFIG);
	assert_non_null(strstr(t->err, t->path));
	if (why != NULL)
		assert_non_null(strstr(t->err, why));
	assert_false(t->a.enabled);
	assert_int_equal(t->a.len, 0);
}

/* "Bearer " + s, into out. */
static const char *
bearer(char *out, size_t outlen, const char *s)
{
	int n;

	n = snprintf(out, outlen, "Bearer %s", s);
	assert_true(n > 0 && (size_t)n < outlen);
	return out;
}

/* ------------------------------------------------------------------ */
/* auth_load */

static void
test_load_disabled(void **state)
{
	struct tctx *t = *state;
	char out[64];

	memset(&t->a, 0x5a, sizeof t->a);
	assert_int_equal(auth_load(&t->a, NULL, t->err, sizeof t->err), 0);
	assert_false(t->a.enabled);
	/* Disabled: anything goes, even no header at all. */
	assert_true(auth_check(&t->a, NULL));
	assert_true(auth_check(&t->a, ""));
	assert_true(auth_check(&t->a, "Bearer whatever"));
	assert_true(auth_check(&t->a, "garbage"));
	memset(out, 'x', sizeof out);
	assert_int_equal(auth_header(&t->a, out, sizeof out), 0);
	assert_string_equal(out, "");
}

static void
test_load_good(void **state)
{
	struct tctx *t = *state;

	/* Surrounding blanks and the line end are not part of the token. */
	put_str(t, "  " TOKEN "  \n");
	load_ok(t);
	assert_int_equal(t->a.len, strlen(TOKEN));
	assert_string_equal(t->a.token, TOKEN);

	put_str(t, "\t" TOKEN "\t \r\n");
	load_ok(t);
	assert_string_equal(t->a.token, TOKEN);

	/* No newline at all. */
	put_str(t, TOKEN);
	load_ok(t);
	assert_string_equal(t->a.token, TOKEN);

	/* Only the first line counts. */
	put_str(t, TOKEN "\nsecond line with spaces\n");
	load_ok(t);
	assert_string_equal(t->a.token, TOKEN);
}

static void
test_load_length_limits(void **state)
{
	struct tctx *t = *state;
	char buf[AUTH_TOKEN_MAX + 200];

	/* Exactly the minimum and the maximum load. */
	memset(buf, 'a', sizeof buf);
	put_file(t, buf, AUTH_TOKEN_MIN);
	load_ok(t);
	assert_int_equal(t->a.len, AUTH_TOKEN_MIN);

	memset(buf, 'b', AUTH_TOKEN_MAX);
	buf[AUTH_TOKEN_MAX] = '\n';
	put_file(t, buf, AUTH_TOKEN_MAX + 1);
	load_ok(t);
	assert_int_equal(t->a.len, AUTH_TOKEN_MAX);
	assert_int_equal(strlen(t->a.token), AUTH_TOKEN_MAX);

	/* One short, one over. */
	put_file(t, buf, AUTH_TOKEN_MIN - 1);
	load_bad(t, NULL);
	memset(buf, 'c', sizeof buf);
	put_file(t, buf, AUTH_TOKEN_MAX + 1);
	load_bad(t, NULL);
	/* Far over: larger than the reader's buffer. */
	put_file(t, buf, sizeof buf);
	load_bad(t, NULL);

	/* Blanks do not count towards the minimum. */
	put_str(t, "   0123456789abcde   \n");	/* 15 */
	load_bad(t, NULL);

	/* Empty, or only blanks, or the token on the second line. */
	put_str(t, "");
	load_bad(t, NULL);
	put_str(t, "   \n");
	load_bad(t, NULL);
	put_str(t, "\n" TOKEN "\n");
	load_bad(t, NULL);
}

static void
test_load_bad_characters(void **state)
{
	struct tctx *t = *state;
	static const char nul_inside[] = "0123456789\0abcdefgh\n";

	put_str(t, "01234567 89abcdefgh\n");	/* embedded space */
	load_bad(t, "ASCII");
	put_str(t, "01234567\t89abcdefgh\n");	/* embedded tab */
	load_bad(t, "ASCII");
	put_str(t, "0123456789abcdef\xc3\xa9\n");	/* UTF-8 e-acute */
	load_bad(t, "ASCII");
	put_str(t, "\xff" "0123456789abcdefgh\n");
	load_bad(t, "ASCII");
	put_str(t, "0123456789abcdef\x7fgh\n");	/* DEL */
	load_bad(t, "ASCII");
	put_str(t, "0123456789abcdef\x1bgh\n");	/* ESC */
	load_bad(t, "ASCII");
	put_str(t, "01234567\r89abcdefgh\n");	/* a lone CR inside */
	load_bad(t, "ASCII");
	put_file(t, nul_inside, sizeof nul_inside - 1);
	load_bad(t, NULL);
}

static void
test_load_missing(void **state)
{
	struct tctx *t = *state;
	int n;

	/* t->path was never written. */
	load_bad(t, strerror(ENOENT));

	/* A directory is no token file either. */
	n = snprintf(t->path, sizeof t->path, "%s/dir", t->top);
	assert_true(n > 0 && (size_t)n < sizeof t->path);
	assert_int_equal(mkdir(t->path, 0700), 0);
	load_bad(t, NULL);
	assert_int_equal(rmdir(t->path), 0);
	n = snprintf(t->path, sizeof t->path, "%s/token", t->top);
	assert_true(n > 0 && (size_t)n < sizeof t->path);
}

static void
test_load_small_err_buffer(void **state)
{
	struct tctx *t = *state;
	char err[8];

	/* The message is cut, never overflows. */
	memset(err, 'x', sizeof err);
	assert_int_equal(auth_load(&t->a, t->path, err, sizeof err),
	    -AR_ECONFIG);
	assert_int_equal(strnlen(err, sizeof err), sizeof err - 1);
}

/* ------------------------------------------------------------------ */
/* auth_check */

static void
test_check(void **state)
{
	struct tctx *t = *state;
	char h[AUTH_TOKEN_MAX + 64], tok[AUTH_TOKEN_MAX + 8];
	size_t len = strlen(TOKEN);

	put_str(t, TOKEN "\n");
	load_ok(t);

	assert_true(auth_check(&t->a, "Bearer " TOKEN));

	/* Wrong tokens of other lengths. */
	assert_false(auth_check(&t->a, "Bearer 0123456789abcdefXXXXXX"));
	assert_false(auth_check(&t->a, "Bearer short"));
	assert_false(auth_check(&t->a, "Bearer "));

	/* Same length, differing in the first, a middle and the last
	 * character. */
	memcpy(tok, TOKEN, len + 1);
	tok[0] = 'X';
	assert_false(auth_check(&t->a, bearer(h, sizeof h, tok)));
	memcpy(tok, TOKEN, len + 1);
	tok[len / 2] ^= 0x01;
	assert_false(auth_check(&t->a, bearer(h, sizeof h, tok)));
	memcpy(tok, TOKEN, len + 1);
	tok[len - 1] = 'X';
	assert_false(auth_check(&t->a, bearer(h, sizeof h, tok)));

	/* A prefix of the token, the token plus one character. */
	memcpy(tok, TOKEN, len - 1);
	tok[len - 1] = '\0';
	assert_false(auth_check(&t->a, bearer(h, sizeof h, tok)));
	memcpy(tok, TOKEN, len);
	tok[len] = 'x';
	tok[len + 1] = '\0';
	assert_false(auth_check(&t->a, bearer(h, sizeof h, tok)));
	assert_false(auth_check(&t->a, "Bearer " TOKEN " "));
	assert_false(auth_check(&t->a, "Bearer " TOKEN "\n"));

	/* The scheme must be there, once, with one space. */
	assert_false(auth_check(&t->a, TOKEN));
	assert_false(auth_check(&t->a, "Bearer" TOKEN));
	assert_false(auth_check(&t->a, "Bearer  " TOKEN));
	assert_false(auth_check(&t->a, " Bearer " TOKEN));
	assert_false(auth_check(&t->a, "Basic " TOKEN));
	assert_false(auth_check(&t->a, "Bearer Bearer " TOKEN));
	/* Same total length as the good header, wrong scheme. */
	assert_false(auth_check(&t->a, "Beaxer " TOKEN));

	assert_false(auth_check(&t->a, ""));
	assert_false(auth_check(&t->a, NULL));

	/* Still good after all the refusals (nothing sticky). */
	assert_true(auth_check(&t->a, "Bearer " TOKEN));
}

static void
test_check_max_token(void **state)
{
	struct tctx *t = *state;
	char buf[AUTH_TOKEN_MAX + 1], h[AUTH_TOKEN_MAX + 64];

	memset(buf, 'Z', AUTH_TOKEN_MAX);
	buf[AUTH_TOKEN_MAX] = '\0';
	put_str(t, buf);
	load_ok(t);
	assert_true(auth_check(&t->a, bearer(h, sizeof h, buf)));
	buf[AUTH_TOKEN_MAX - 1] = 'Y';
	assert_false(auth_check(&t->a, bearer(h, sizeof h, buf)));
}

/* ------------------------------------------------------------------ */
/* auth_header */

static void
test_header(void **state)
{
	struct tctx *t = *state;
	static const char want[] = "Authorization: Bearer " TOKEN;
	char out[sizeof want + 16];

	put_str(t, TOKEN "\n");
	load_ok(t);
	assert_int_equal(auth_header(&t->a, out, sizeof out), 0);
	assert_string_equal(out, want);

	/* Exactly enough room, then one byte short. */
	assert_int_equal(auth_header(&t->a, out, sizeof want), 0);
	assert_string_equal(out, want);
	assert_int_equal(auth_header(&t->a, out, sizeof want - 1),
	    -AR_ENOMEM);

	/* What the client sends is what the server accepts. */
	assert_int_equal(auth_header(&t->a, out, sizeof out), 0);
	assert_true(auth_check(&t->a, out + strlen("Authorization: ")));
}

/* ------------------------------------------------------------------ */
/* auth_addr_is_loopback */

static int
loopback(const char *addr)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof ss);
	if (strchr(addr, ':') != NULL) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(8080);
		assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr),
		    1);
	} else {
		in->sin_family = AF_INET;
		in->sin_port = htons(8080);
		assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
	}
	return auth_addr_is_loopback(&ss);
}

static void
test_loopback(void **state)
{
	struct sockaddr_un un;

	(void)state;
	assert_true(loopback("127.0.0.1"));
	assert_true(loopback("127.5.6.7"));
	assert_true(loopback("127.255.255.255"));
	assert_false(loopback("10.0.0.1"));
	assert_false(loopback("0.0.0.0"));
	assert_false(loopback("128.0.0.1"));
	assert_false(loopback("1.0.0.127"));
	assert_false(loopback("255.255.255.255"));
	assert_true(loopback("::1"));
	assert_true(loopback("::ffff:127.0.0.1"));
	assert_true(loopback("::ffff:127.9.8.7"));
	assert_false(loopback("::ffff:10.0.0.1"));
	assert_false(loopback("::ffff:0.0.0.0"));
	assert_false(loopback("::"));
	assert_false(loopback("::2"));
	assert_false(loopback("2001:db8::1"));
	assert_false(loopback("fe80::1"));

	/* Not an internet address at all. */
	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	assert_false(auth_addr_is_loopback(&un));
}

/* Where a server may listen: loopback always; elsewhere with TLS, or in
 * clear when tls = off is written and a token is set. */
static void
test_listen_check(void **state)
{
	struct config_addr lo, any;
	struct auth a;
	char err[512];

	(void)state;
	assert_int_equal(config_parse_addr("127.0.0.2:1", &lo), 0);
	assert_int_equal(config_parse_addr("0.0.0.0:1", &any), 0);
	memset(&a, 0, sizeof(a));
	assert_int_equal(auth_listen_check(&a, &lo, CONFIG_UNSET, err,
	    sizeof(err)), 0);
	assert_int_equal(auth_listen_check(&a, &any, CONFIG_UNSET, err,
	    sizeof(err)), -AR_ECONFIG);
	assert_non_null(strstr(err, "without TLS"));
	assert_non_null(strstr(err, "tls = off"));
	/* A token alone is no longer enough... */
	a.enabled = 1;
	assert_int_equal(auth_listen_check(&a, &any, CONFIG_UNSET, err,
	    sizeof(err)), -AR_ECONFIG);
	/* ...unless the clear text was asked for. */
	assert_int_equal(auth_listen_check(&a, &any, CONFIG_OFF, err,
	    sizeof(err)), 0);
	a.enabled = 0;
	assert_int_equal(auth_listen_check(&a, &any, CONFIG_OFF, err,
	    sizeof(err)), -AR_ECONFIG);
	assert_non_null(strstr(err, "auth_token_file"));
	/* TLS authenticates the peers by itself. */
	a.tls.enabled = 1;
	assert_int_equal(auth_listen_check(&a, &any, CONFIG_UNSET, err,
	    sizeof(err)), 0);
}

static void
test_backoff(void **state)
{
	static struct auth_backoff b;
	uint64_t wait, held, now = 1000;
	int i, log;
	char addr[32];

	(void)state;
	memset(&b, 0, sizeof(b));
	/* Free failures: never refused; one log line per 10 s. */
	for (i = 0; i < AUTH_BACKOFF_FREE; i++) {
		assert_int_equal(auth_backoff_check(&b, "10.0.0.1", now, &wait,
		    &log, &held), 0);
		auth_backoff_fail(&b, "10.0.0.1", now, &log, &held);
		assert_int_equal(log, i == 0);
	}
	assert_int_equal(auth_backoff_check(&b, "10.0.0.1", now, &wait, &log,
	    &held), 0);
	/* The next one is refused for the base time, then twice as long. */
	auth_backoff_fail(&b, "10.0.0.1", now, &log, &held);
	assert_int_equal(auth_backoff_check(&b, "10.0.0.1", now + 1, &wait,
	    &log, &held), -AR_EAUTH);
	assert_true(wait == AUTH_BACKOFF_BASE_MS - 1);
	/* Another address is not. */
	assert_int_equal(auth_backoff_check(&b, "10.0.0.2", now, &wait, &log,
	    &held), 0);
	now += AUTH_BACKOFF_BASE_MS;
	assert_int_equal(auth_backoff_check(&b, "10.0.0.1", now, &wait, &log,
	    &held), 0);
	auth_backoff_fail(&b, "10.0.0.1", now, &log, &held);
	assert_int_equal(auth_backoff_check(&b, "10.0.0.1", now, &wait, &log,
	    &held), -AR_EAUTH);
	assert_true(wait == 2 * AUTH_BACKOFF_BASE_MS);
	/* Capped. */
	for (i = 0; i < 40; i++) {
		now += AUTH_BACKOFF_MAX_MS;
		auth_backoff_fail(&b, "10.0.0.1", now, &log, &held);
	}
	assert_int_equal(auth_backoff_check(&b, "10.0.0.1", now, &wait, &log,
	    &held), -AR_EAUTH);
	assert_true(wait == AUTH_BACKOFF_MAX_MS);
	/* Lines held back are counted in the next one. */
	auth_backoff_fail(&b, "10.0.0.1", now, &log, &held);
	assert_int_equal(log, 0);
	now += AUTH_BACKOFF_LOG_MS;
	auth_backoff_fail(&b, "10.0.0.1", now, &log, &held);
	assert_int_equal(log, 1);
	assert_true(held == 2);
	/* A success forgets. */
	auth_backoff_ok(&b, "10.0.0.1");
	assert_int_equal(auth_backoff_check(&b, "10.0.0.1", now, &wait, &log,
	    &held), 0);
	/* Many addresses: the table stays bounded, the newest is known. */
	for (i = 0; i < 10000; i++) {
		snprintf(addr, sizeof(addr), "10.1.%d.%d", i / 256, i % 256);
		auth_backoff_fail(&b, addr, now + (uint64_t)i, &log, &held);
	}
	for (i = 0; i < AUTH_BACKOFF_FREE; i++)
		auth_backoff_fail(&b, addr, now + 10000, &log, &held);
	assert_int_equal(auth_backoff_check(&b, addr, now + 10000, &wait,
	    &log, &held), -AR_EAUTH);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load_disabled, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_load_good, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_load_length_limits, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_load_bad_characters, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_load_missing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_load_small_err_buffer,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_max_token, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_header, setup, teardown),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_listen_check),
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

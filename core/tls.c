/*
 * tls.c: the TLS material of a role, the check of a peer's certificate,
 * and asyncrep keygen (tls.h), on GnuTLS.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fs.h"
#include "log.h"
#include "tls.h"

/* Certificates of a peer's chain looked at (leaf and intermediates). */
#define TLS_CHAIN_MAX 16
/* Room for a path quoted in a message. */
#define TLS_QUOTE_MAX 256

#define TLS_KEYGEN_KEY "key.pem"
#define TLS_KEYGEN_CERT "cert.pem"

static const char *const tls_keys[TLS_NFILES] = {
	"tls_cert", "tls_key", "tls_ca",
};

/* ---------------------------------------------------------------------- */
/* Reading the files */

/*
 * The whole file path (under dirfd as under a root, unless AT_FDCWD)
 * into a NUL-terminated malloc'd buffer. secret: refused when its mode
 * lets anyone but the owner in. Errors name the key and the file.
 */
static int
tls_read_file(int dirfd, enum tls_file which, const char *path, int secret,
    char **out, size_t *outlen, char *err, size_t errlen)
{
	const char *key = tls_keys[which];
	char q[TLS_QUOTE_MAX];
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd = -1, r;

	log_escape(path, strlen(path), q, sizeof(q));
	if (dirfd == AT_FDCWD) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		r = fd >= 0 ? 0 : -AR_EIO;
	} else
		r = fs_open_in_root(dirfd, path, O_RDONLY | O_NONBLOCK, &fd);
	if (r != 0) {
		snprintf(err, errlen, "%s '%s': %s", key, q, strerror(errno));
		return -AR_ECONFIG;
	}
	r = -AR_ECONFIG;
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s '%s': %s", key, q, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s '%s': not a regular file", key, q);
		goto out;
	}
	/* A key others can read is no longer this host's identity. */
	if (secret && (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s '%s' can be read by other users (mode "
		    "%04o): make it readable by its owner only (chmod 600)",
		    key, q, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_size > TLS_FILE_MAX) {
		snprintf(err, errlen, "%s '%s': larger than %d bytes", key, q,
		    TLS_FILE_MAX);
		goto out;
	}
	/* One byte more than the size tells a file that grew meanwhile. */
	buf = malloc((size_t)st.st_size + 2);
	if (buf == NULL) {
		snprintf(err, errlen, "%s '%s': out of memory", key, q);
		r = -AR_ENOMEM;
		goto out;
	}
	n = fs_read_full(fd, buf, (size_t)st.st_size + 1);
	if (n < 0 || n > st.st_size) {
		snprintf(err, errlen, "%s '%s': %s", key, q, n < 0 ?
		    strerror(errno) : "changed while read");
		goto out;
	}
	/* PEM is text: a NUL would end it early for libmicrohttpd. */
	if (n == 0 || memchr(buf, '\0', (size_t)n) != NULL) {
		snprintf(err, errlen, "%s '%s': %s", key, q, n == 0 ?
		    "empty file" : "not a PEM file (NUL byte)");
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = (size_t)n;
	buf = NULL;
	r = 0;
out:
	if (buf != NULL) {
		explicit_bzero(buf, (size_t)st.st_size + 2);
		free(buf);
	}
	close(fd);
	return r;
}

/* ---------------------------------------------------------------------- */
/* Pins */

/* The pin of a certificate's key: SHA-256 of its DER SubjectPublicKeyInfo. */
static int
tls_pin_of_crt(gnutls_x509_crt_t crt, uint8_t pin[PIN_LEN])
{
	gnutls_pubkey_t pk;
	gnutls_datum_t der = { NULL, 0 };
	int r = -AR_EAUTH;

	if (gnutls_pubkey_init(&pk) < 0)
		return -AR_ENOMEM;
	if (gnutls_pubkey_import_x509(pk, crt, 0) >= 0 &&
	    gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &der) >= 0 &&
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, der.data, der.size, pin) >= 0)
		r = 0;
	gnutls_free(der.data);
	gnutls_pubkey_deinit(pk);
	return r;
}

/* The pin of a DER certificate (as a peer sent it) into pin and text. */
static int
tls_pin_of_der(const gnutls_datum_t *der, uint8_t pin[PIN_LEN],
    char text[PIN_TEXT_LEN + 1])
{
	gnutls_x509_crt_t crt;
	int r = -AR_EAUTH;

	if (gnutls_x509_crt_init(&crt) < 0)
		return -AR_ENOMEM;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) >= 0)
		r = tls_pin_of_crt(crt, pin);
	gnutls_x509_crt_deinit(crt);
	if (r == 0)
		pin_format(pin, text);
	return r;
}

/* ---------------------------------------------------------------------- */
/* Loading */

/*
 * Parse our certificate chain and key; the first certificate must hold
 * the key's public half. Its pin goes to t->own.
 */
static int
tls_check_pair(struct tls *t, const struct config_tls *c, char *err,
    size_t errlen)
{
	gnutls_x509_crt_t *crts = NULL;
	gnutls_x509_privkey_t key = NULL;
	gnutls_datum_t d;
	unsigned ncrts = 0, i;
	uint8_t a[64], b[64];
	size_t alen = sizeof(a), blen = sizeof(b);
	char q[TLS_QUOTE_MAX];
	int g, r = -AR_ECONFIG;

	d.data = (unsigned char *)t->cert;
	d.size = (unsigned)t->cert_len;
	g = gnutls_x509_crt_list_import2(&crts, &ncrts, &d, GNUTLS_X509_FMT_PEM,
	    0);
	if (g < 0 || ncrts == 0) {
		snprintf(err, errlen, "tls_cert '%s': no PEM certificate (%s)",
		    log_escape(c->cert, strlen(c->cert), q, sizeof(q)),
		    g < 0 ? gnutls_strerror(g) : "none found");
		goto out;
	}
	log_escape(c->key, strlen(c->key), q, sizeof(q));
	d.data = (unsigned char *)t->key;
	d.size = (unsigned)t->key_len;
	if (gnutls_x509_privkey_init(&key) < 0) {
		r = -AR_ENOMEM;
		goto out;
	}
	g = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (g < 0) {
		snprintf(err, errlen, "tls_key '%s': not a PEM private key, or "
		    "an encrypted one (%s)", q, gnutls_strerror(g));
		goto out;
	}
	if (gnutls_x509_crt_get_key_id(crts[0], GNUTLS_KEYID_USE_SHA256, a,
	    &alen) < 0 || gnutls_x509_privkey_get_key_id(key,
	    GNUTLS_KEYID_USE_SHA256, b, &blen) < 0 || alen != blen ||
	    memcmp(a, b, alen) != 0) {
		snprintf(err, errlen, "tls_key '%s' is not the key of the "
		    "certificate in tls_cert", q);
		goto out;
	}
	r = tls_pin_of_crt(crts[0], t->own);
	if (r != 0)
		snprintf(err, errlen, "tls_cert: cannot read its public key");
out:
	for (i = 0; i < ncrts; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	return r;
}

static int
tls_load_ca(struct tls *t, const struct config_tls *c, char *err,
    size_t errlen)
{
	gnutls_x509_trust_list_t tl;
	gnutls_datum_t d;
	char q[TLS_QUOTE_MAX];
	int g;

	if (gnutls_x509_trust_list_init(&tl, 0) < 0)
		return -AR_ENOMEM;
	d.data = (unsigned char *)t->ca;
	d.size = (unsigned)t->ca_len;
	g = gnutls_x509_trust_list_add_trust_mem(tl, &d, NULL,
	    GNUTLS_X509_FMT_PEM, 0, 0);
	if (g <= 0) {
		gnutls_x509_trust_list_deinit(tl, 1);
		snprintf(err, errlen, "tls_ca '%s': no PEM certificate (%s)",
		    log_escape(c->ca, strlen(c->ca), q, sizeof(q)),
		    g < 0 ? gnutls_strerror(g) : "none found");
		return -AR_ECONFIG;
	}
	t->ca_list = tl;
	return 0;
}

int
tls_load(struct tls *t, const struct config_tls *c,
    const int dirfds[TLS_NFILES], char *err, size_t errlen)
{
	const char *why;
	int r;

	memset(t, 0, sizeof(*t));
	if (!config_tls_enabled(c))
		return 0;
	/* config_check saw to it; an assertion would do, but a message
	 * costs nothing. */
	if (c->cert == NULL || c->key == NULL || (c->trust == NULL &&
	    c->ca == NULL)) {
		snprintf(err, errlen, "TLS needs tls_cert, tls_key and "
		    "tls_trust or tls_ca");
		return -AR_ECONFIG;
	}
	if (c->trust != NULL && pin_list_parse(c->trust, &t->trust,
	    &why) != 0) {
		snprintf(err, errlen, "tls_trust: %s", why);
		return -AR_ECONFIG;
	}
	r = tls_read_file(dirfds != NULL ? dirfds[TLS_FILE_CERT] : AT_FDCWD,
	    TLS_FILE_CERT, c->cert, 0, &t->cert, &t->cert_len, err, errlen);
	if (r == 0)
		r = tls_read_file(dirfds != NULL ? dirfds[TLS_FILE_KEY] :
		    AT_FDCWD, TLS_FILE_KEY, c->key, 1, &t->key, &t->key_len,
		    err, errlen);
	if (r == 0 && c->ca != NULL)
		r = tls_read_file(dirfds != NULL ? dirfds[TLS_FILE_CA] :
		    AT_FDCWD, TLS_FILE_CA, c->ca, 0, &t->ca, &t->ca_len, err,
		    errlen);
	if (r == 0)
		r = tls_check_pair(t, c, err, errlen);
	if (r == 0 && t->ca != NULL)
		r = tls_load_ca(t, c, err, errlen);
	if (r != 0) {
		tls_release(t);
		return r;
	}
	t->enabled = 1;
	return 0;
}

void
tls_release(struct tls *t)
{
	if (t->key != NULL) {
		explicit_bzero(t->key, t->key_len);
		free(t->key);
	}
	free(t->cert);
	free(t->ca);
	if (t->ca_list != NULL)
		gnutls_x509_trust_list_deinit(t->ca_list, 1);
	memset(t, 0, sizeof(*t));
}

/* ---------------------------------------------------------------------- */
/* The peer */

/* Whether the peer's chain verifies against tls_ca; the reason in why. */
static int
tls_verify_ca(const struct tls *t, const gnutls_datum_t *peers, unsigned n,
    char *why, size_t whylen)
{
	gnutls_x509_crt_t crts[TLS_CHAIN_MAX];
	gnutls_datum_t out = { NULL, 0 };
	unsigned i, nc = 0, status = 0;
	int r = -AR_EAUTH;

	if (n > TLS_CHAIN_MAX)
		n = TLS_CHAIN_MAX;
	for (i = 0; i < n; i++) {
		if (gnutls_x509_crt_init(&crts[nc]) < 0)
			goto out;
		nc++;
		if (gnutls_x509_crt_import(crts[nc - 1], &peers[i],
		    GNUTLS_X509_FMT_DER) < 0) {
			snprintf(why, whylen, "a malformed certificate");
			goto out;
		}
	}
	/* Default flags: the dates of every certificate are checked. */
	if (gnutls_x509_trust_list_verify_crt2(t->ca_list, crts, nc, NULL, 0,
	    0, &status, NULL) < 0) {
		snprintf(why, whylen, "its chain cannot be verified");
		goto out;
	}
	if (status == 0) {
		r = 0;
		goto out;
	}
	if (gnutls_certificate_verification_status_print(status,
	    GNUTLS_CRT_X509, &out, 0) >= 0 && out.data != NULL) {
		size_t len = out.size;

		while (len > 0 && (out.data[len - 1] == ' ' ||
		    out.data[len - 1] == '.'))
			len--;
		snprintf(why, whylen, "not trusted by tls_ca: %.*s", (int)len,
		    (const char *)out.data);
	} else
		snprintf(why, whylen, "not trusted by tls_ca");
out:
	gnutls_free(out.data);
	for (i = 0; i < nc; i++)
		gnutls_x509_crt_deinit(crts[i]);
	return r;
}

int
tls_peer_check(const struct tls *t, void *session, char pin[PIN_TEXT_LEN + 1],
    char *why, size_t whylen)
{
	gnutls_session_t s = session;
	const gnutls_datum_t *peers;
	uint8_t raw[PIN_LEN];
	unsigned n = 0;

	pin[0] = '\0';
	peers = s != NULL ? gnutls_certificate_get_peers(s, &n) : NULL;
	if (peers == NULL || n == 0 ||
	    gnutls_certificate_type_get(s) != GNUTLS_CRT_X509) {
		snprintf(why, whylen, "no client certificate");
		return -AR_EAUTH;
	}
	if (tls_pin_of_der(&peers[0], raw, pin) != 0) {
		snprintf(why, whylen, "a malformed client certificate");
		return -AR_EAUTH;
	}
	if (t->trust.n > 0 && pin_list_has(&t->trust, raw))
		return 0;
	if (t->ca_list == NULL) {
		snprintf(why, whylen, "not in tls_trust");
		return -AR_EAUTH;
	}
	return tls_verify_ca(t, peers, n, why, whylen);
}

/* A connected TCP socket to sa, or -1; connect and I/O bounded by ms. */
static int
tls_probe_connect(const struct sockaddr *sa, socklen_t salen, unsigned ms)
{
	struct timeval tv;
	int fd;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	/* On Linux, connect(2) honours the send timeout. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    connect(fd, sa, salen) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int
tls_probe_pin(const struct sockaddr *sa, socklen_t salen, unsigned timeout_ms,
    char pin[PIN_TEXT_LEN + 1], char *why, size_t whylen)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_session_t s = NULL;
	const gnutls_datum_t *peers;
	uint8_t raw[PIN_LEN];
	unsigned n = 0;
	int fd, g, r = -AR_EUNREACH;

	pin[0] = '\0';
	fd = tls_probe_connect(sa, salen, timeout_ms);
	if (fd < 0) {
		snprintf(why, whylen, "connect: %s", strerror(errno));
		return -AR_EUNREACH;
	}
	if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
	    gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL) < 0 ||
	    gnutls_priority_set_direct(s, TLS_PRIORITIES, NULL) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0) {
		snprintf(why, whylen, "cannot set up a TLS session");
		r = -AR_ENOMEM;
		goto out;
	}
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, timeout_ms);
	do
		g = gnutls_handshake(s);
	while (g < 0 && gnutls_error_is_fatal(g) == 0);
	if (g < 0) {
		snprintf(why, whylen, "handshake: %s", gnutls_strerror(g));
		goto out;
	}
	peers = gnutls_certificate_get_peers(s, &n);
	if (peers == NULL || n == 0 || tls_pin_of_der(&peers[0], raw,
	    pin) != 0) {
		snprintf(why, whylen, "no certificate");
		goto out;
	}
	r = 0;
out:
	if (s != NULL)
		gnutls_deinit(s);
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
	close(fd);
	return r;
}

/* ---------------------------------------------------------------------- */
/* asyncrep keygen */

/* The certificate of key: self-signed, for a server and a client. */
static int
tls_keygen_cert(gnutls_x509_privkey_t key, gnutls_x509_crt_t crt)
{
	char cn[128], host[64];
	unsigned char serial[16];
	time_t now = time(NULL);

	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	snprintf(cn, sizeof(cn), "asyncrep%s%s", host[0] ? " " : "", host);
	if (gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)) < 0)
		return -1;
	serial[0] &= 0x7f;	/* a positive number */
	/* An hour back, for clocks a little behind; no expiry at all. */
	if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, (time_t)-1) < 0 ||
	    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
	    cn, (unsigned)strlen(cn)) < 0 ||
	    gnutls_x509_crt_set_key(crt, key) < 0 ||
	    gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) <
	    0 ||
	    gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER,
	    0) < 0 ||
	    gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT,
	    0) < 0 ||
	    gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0)
		return -1;
	return 0;
}

/* Refuse to replace dir/name: a key, once trusted, is an identity. */
static int
tls_keygen_absent(int dirfd, const char *dir, const char *name, char *err,
    size_t errlen)
{
	struct stat st;
	char q[TLS_QUOTE_MAX];

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 &&
	    errno == ENOENT)
		return 0;
	snprintf(err, errlen, "keygen: '%s/%s' exists: keygen never replaces "
	    "a key (remove it first, or choose another directory)",
	    log_escape(dir, strlen(dir), q, sizeof(q)), name);
	errno = EEXIST;
	return -AR_EIO;
}

int
tls_keygen(const char *dir, char pin[PIN_TEXT_LEN + 1], char *err,
    size_t errlen)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t kpem = { NULL, 0 }, cpem = { NULL, 0 };
	uint8_t raw[PIN_LEN];
	char q[TLS_QUOTE_MAX];
	int dirfd = -1, r;

	log_escape(dir, strlen(dir), q, sizeof(q));
	if (fs_mkdir_p(dir, 0700) != 0 || fs_open_dir(dir, &dirfd) != 0) {
		snprintf(err, errlen, "keygen: '%s': %s", q, strerror(errno));
		return -AR_EIO;
	}
	r = tls_keygen_absent(dirfd, dir, TLS_KEYGEN_KEY, err, errlen);
	if (r == 0)
		r = tls_keygen_absent(dirfd, dir, TLS_KEYGEN_CERT, err, errlen);
	if (r != 0)
		goto out;
	r = -AR_EINTERNAL;
	if (gnutls_x509_privkey_init(&key) < 0 ||
	    gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
	    gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
	    GNUTLS_PKCS_PLAIN, &kpem) < 0 ||
	    gnutls_x509_crt_init(&crt) < 0 || tls_keygen_cert(key, crt) != 0 ||
	    gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cpem) < 0 ||
	    tls_pin_of_crt(crt, raw) != 0) {
		snprintf(err, errlen, "keygen: cannot make a key and its "
		    "certificate");
		goto out;
	}
	/* The key first: a certificate without its key is of no use. */
	r = fs_write_durable(dirfd, TLS_KEYGEN_KEY, kpem.data, kpem.size, 0600);
	if (r == 0)
		r = fs_write_durable(dirfd, TLS_KEYGEN_CERT, cpem.data,
		    cpem.size, 0644);
	if (r != 0) {
		snprintf(err, errlen, "keygen: '%s': %s", q, strerror(errno));
		goto out;
	}
	pin_format(raw, pin);
	r = 0;
out:
	if (kpem.data != NULL) {
		explicit_bzero(kpem.data, kpem.size);
		gnutls_free(kpem.data);
	}
	gnutls_free(cpem.data);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	if (dirfd >= 0)
		close(dirfd);
	return r;
}

/*
 * client.c: the standby's HTTP transport (client.h) on libcurl, over TLS
 * when the standby has a certificate: libcurl's own TLS (OpenSSL here)
 * pins the primary's key or verifies it against tls_ca.
 */
#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "client.h"
#include "compress.h"
#include "error.h"
#include "log.h"
#include "pin.h"
#include "rate.h"
#include "tls.h"

/* How the body of an answer is encoded (COMPRESS_HDR_ENCODING). */
enum client_encoding {
	CLIENT_ENC_PLAIN,
	CLIENT_ENC_ZSTD,
	CLIENT_ENC_UNKNOWN,	/* a value we never asked for */
};

struct client {
	CURL *curl;
	struct curl_slist *headers;	/* every request's */
	struct curl_slist *vheaders;	/* headers + the version, or NULL */
	uint32_t version;		/* negotiated by the last hello, or 0 */
	const struct config_standby *cfg;
	int tls;			/* https, with our certificate */
	int pinned;			/* the primary's key is pinned */
	int ca;				/* and/or its chain checked by tls_ca */
	char base[128];			/* "http://IP:PORT" or "https://" */
	char errbuf[CURL_ERROR_SIZE];
	char msg[CURL_ERROR_SIZE + 768];
	uint64_t sent, received;

	/* Per request. */
	client_body_cb *body_cb;
	void *body_arg;
	client_upload_cb *up_cb;
	client_rewind_cb *rewind_cb;
	void *up_arg;
	int cb_err;			/* a callback's error */
	long status;
	/* start of an error response body: text, or an X frame */
	char errbody[WIRE_HDR + 6 + WIRE_MSG_MAX + 1];
	size_t errbody_len;
	volatile sig_atomic_t *abort_flag;
	int keepcnt;			/* keepalive probes: about stall_s */
	struct rate *rate;		/* bwlimit of what is received, or NULL */
	struct compress_in *zin;	/* compress = zstd: the decoder */
	int zask;			/* it is asked for in each request */
	enum client_encoding enc;	/* of the current answer */
};

#define CLIENT_KEEPALIVE_S 3L

/* Keepalive probes, unanswered, end a connection after about
 * stall_timeout, as the stall detector would (curl before 8.9 has no
 * option for the count). */
static int
sockopt_cb(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	const struct client *c = arg;

	if (purpose == CURLSOCKTYPE_IPCXN)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &c->keepcnt,
		    sizeof(c->keepcnt));
	return CURL_SOCKOPT_OK;
}

/* Ends a transfer (a long-poll above all) when the process is told to
 * stop. */
static int
progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct client *c = userdata;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (c->abort_flag != NULL && *c->abort_flag) {
		c->cb_err = -AR_ESIGNAL;
		return 1;
	}
	return 0;
}

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct client *c = userdata;
	size_t len = size * nmemb;
	long status = 0;
	int r;

	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		/* Keep the start of the server's explanation. */
		size_t room = sizeof(c->errbody) - 1 - c->errbody_len;

		if (len < room)
			room = len;
		memcpy(c->errbody + c->errbody_len, ptr, room);
		c->errbody_len += room;
		c->errbody[c->errbody_len] = '\0';
		return len;
	}
	if (c->enc == CLIENT_ENC_ZSTD)
		r = compress_in_feed(c->zin, ptr, len, c->body_cb, c->body_arg);
	else if (c->enc == CLIENT_ENC_PLAIN)
		r = c->body_cb(c->body_arg, ptr, len);
	else
		r = -AR_EPROTO;
	if (r < 0) {
		if (r == -AR_EPROTO && c->msg[0] == '\0')
			snprintf(c->msg, sizeof(c->msg), "primary %s: %s",
			    c->cfg->primary.text, c->enc == CLIENT_ENC_ZSTD ?
			    "corrupt zstd answer" : "answer in an encoding "
			    "not asked for");
		c->cb_err = r;
		return 0;	/* aborts the transfer */
	}
	/* bwlimit: what was received is paid for before the next read, so
	 * the socket's window closes and the primary slows down. */
	if (c->rate != NULL && rate_wait(rate_take(c->rate, len),
	    c->abort_flag) != 0) {
		c->cb_err = -AR_ESIGNAL;
		return 0;
	}
	return len;
}

/* The encoding of the answer's body, from its headers. */
static size_t
header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct client *c = userdata;
	size_t len = size * nitems, n = strlen(COMPRESS_HDR_ENCODING);
	const char *v;
	size_t vlen;

	if (len > n + 1 && strncasecmp(buf, COMPRESS_HDR_ENCODING, n) == 0 &&
	    buf[n] == ':') {
		v = buf + n + 1;
		vlen = len - n - 1;
		while (vlen > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vlen--;
		}
		while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
		    v[vlen - 1] == ' '))
			vlen--;
		c->enc = c->zask && vlen == 4 && memcmp(v, "zstd", 4) == 0 ?
		    CLIENT_ENC_ZSTD : CLIENT_ENC_UNKNOWN;
	}
	return len;
}

static size_t
read_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct client *c = userdata;
	ssize_t n;

	n = c->up_cb(c->up_arg, buf, size * nitems);
	if (n < 0) {
		c->cb_err = (int)n;
		return CURL_READFUNC_ABORT;
	}
	return (size_t)n;
}

static int
seek_cb(void *userdata, curl_off_t offset, int origin)
{
	struct client *c = userdata;

	/* curl rewinds an upload to resend it on a fresh connection. */
	if (offset != 0 || origin != SEEK_SET || c->rewind_cb == NULL)
		return CURL_SEEKFUNC_CANTSEEK;
	return c->rewind_cb(c->up_arg) == 0 ? CURL_SEEKFUNC_OK :
	    CURL_SEEKFUNC_FAIL;
}

/*
 * TLS 1.3 with our certificate, and the primary recognised by its pinned
 * key (peer verification off: curl checks the pin regardless, and a
 * pinned key needs no CA, name or dates), or by tls_ca: the chain, its
 * dates and the primary's address in its certificate. With both, both.
 * Only tls_ca is trusted: never the system's CAs.
 */
static int
client_tls(struct client *c, const struct tls *t)
{
	struct curl_blob cert, key, ca;
	char pins[PIN_MAX * (PIN_CURL_LEN + 1)];
	CURLcode cc;

	cert = (struct curl_blob){ t->cert, t->cert_len, CURL_BLOB_COPY };
	key = (struct curl_blob){ t->key, t->key_len, CURL_BLOB_COPY };
	ca = (struct curl_blob){ t->ca, t->ca_len, CURL_BLOB_COPY };
	cc = curl_easy_setopt(c->curl, CURLOPT_SSLVERSION,
	    (long)(CURL_SSLVERSION_TLSv1_3 | CURL_SSLVERSION_MAX_TLSv1_3));
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(c->curl, CURLOPT_SSLCERTTYPE, "PEM");
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(c->curl, CURLOPT_SSLCERT_BLOB, &cert);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(c->curl, CURLOPT_SSLKEYTYPE, "PEM");
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(c->curl, CURLOPT_SSLKEY_BLOB, &key);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(c->curl, CURLOPT_CAINFO, NULL);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(c->curl, CURLOPT_CAPATH, NULL);
	if (cc == CURLE_OK && t->ca != NULL)
		cc = curl_easy_setopt(c->curl, CURLOPT_CAINFO_BLOB, &ca);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER,
		    t->ca != NULL ? 1L : 0L);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST,
		    t->ca != NULL ? 2L : 0L);
	if (cc == CURLE_OK && t->trust.n > 0) {
		if (pin_list_curl(&t->trust, pins, sizeof(pins)) != 0)
			return -AR_EINTERNAL;
		cc = curl_easy_setopt(c->curl, CURLOPT_PINNEDPUBLICKEY, pins);
	}
	/* The primary speaks HTTP/1.1 (ALPN): offer nothing else. */
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(c->curl, CURLOPT_HTTP_VERSION,
		    (long)CURL_HTTP_VERSION_1_1);
	if (cc != CURLE_OK) {
		snprintf(c->msg, sizeof(c->msg), "libcurl without the TLS "
		    "asyncrep needs: %s", curl_easy_strerror(cc));
		return -AR_ECONFIG;
	}
	c->tls = 1;
	c->pinned = t->trust.n > 0;
	c->ca = t->ca != NULL;
	return 0;
}

int
client_new(const struct config_standby *cfg, const struct auth *auth,
    struct client **out)
{
	struct client *c;
	char hdr[AUTH_TOKEN_MAX + 64];
	const char *host = cfg->primary.text;
	long stall_s;
	int n, r;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -AR_ENOMEM;
	c->cfg = cfg;
	c->curl = curl_easy_init();
	if (c->curl == NULL) {
		free(c);
		return -AR_ENOMEM;
	}
	/* An address text always fits: a cut one would dial another. */
	n = snprintf(c->base, sizeof(c->base), "%s://%s",
	    auth->tls.enabled ? "https" : "http", host);
	if (n < 0 || (size_t)n >= sizeof(c->base)) {
		curl_easy_cleanup(c->curl);
		free(c);
		return -AR_EINTERNAL;
	}
	c->headers = curl_slist_append(NULL, "Expect:");
	c->headers = curl_slist_append(c->headers,
	    "Content-Type: application/x-asyncrep");
	if (auth_header(auth, hdr, sizeof(hdr)) == 0 && hdr[0] != '\0')
		c->headers = curl_slist_append(c->headers, hdr);
	explicit_bzero(hdr, sizeof(hdr));
	if (c->headers == NULL) {
		client_free(c);
		return -AR_ENOMEM;
	}
	stall_s = (long)(cfg->stall_timeout_ns / 1000000000u);
	if (stall_s < 1)
		stall_s = 1;
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	/* A primary that died holds the standby's long-poll open: no FIN,
	 * no RST. Once its address moved to a rescue (or back), the first
	 * keepalive probe gets an RST and the standby redials at once,
	 * instead of after stall_timeout. */
	curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPIDLE, CLIENT_KEEPALIVE_S);
	curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPINTVL, CLIENT_KEEPALIVE_S);
	c->keepcnt = (int)(stall_s / CLIENT_KEEPALIVE_S);
	if (c->keepcnt < 1)
		c->keepcnt = 1;
	curl_easy_setopt(c->curl, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
	curl_easy_setopt(c->curl, CURLOPT_SOCKOPTDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)(cfg->connect_timeout_ns / 1000000u));
	/* Stall detector: less than 1 byte/s for stall_s seconds. */
	curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME, stall_s);
	curl_easy_setopt(c->curl, CURLOPT_MAXAGE_CONN, 20L);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	/* The primary is dialled directly, whatever http_proxy says. */
	curl_easy_setopt(c->curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c->curl, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(c->curl, CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);
	if (auth->tls.enabled) {
		r = client_tls(c, &auth->tls);
		if (r != 0) {
			log_error("%s", c->msg);
			client_free(c);
			return r;
		}
	}
	*out = c;
	return 0;
}

void
client_free(struct client *c)
{
	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	curl_slist_free_all(c->headers);
	curl_slist_free_all(c->vheaders);
	compress_in_free(c->zin);
	free(c);
}

/*
 * The standby refused the primary's identity: say so, with the key the
 * primary presents (libcurl does not tell: a handshake of our own asks).
 */
static int
client_refused(struct client *c)
{
	const struct config_addr *a = &c->cfg->primary;
	char pin[PIN_TEXT_LEN + 1], why[128];
	unsigned ms = (unsigned)(c->cfg->connect_timeout_ns / 1000000u);

	if (tls_probe_pin((const struct sockaddr *)&a->ss, a->len,
	    ms > 0 ? ms : 1, pin, why, sizeof(why)) == 0)
		snprintf(c->msg, sizeof(c->msg), "the standby refused the "
		    "primary %s: its key %s %s (%s)", a->text, pin,
		    !c->ca ? "is not in tls_trust" : !c->pinned ?
		    "is not trusted by tls_ca" :
		    "is not in tls_trust or not trusted by tls_ca", c->errbuf);
	else
		snprintf(c->msg, sizeof(c->msg), "the standby refused the "
		    "primary %s: %s (its key could not be read again: %s)",
		    a->text, c->errbuf, why);
	return -AR_EAUTH;
}

static int
map_curl(struct client *c, CURLcode cc, const char *path)
{
	switch (cc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return client_refused(c);
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		snprintf(c->msg, sizeof(c->msg), "tls_cert, tls_key or tls_ca: "
		    "%s", c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
		return -AR_ECONFIG;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		snprintf(c->msg, sizeof(c->msg), "primary %s: %s",
		    c->cfg->primary.text, c->errbuf[0] ? c->errbuf :
		    curl_easy_strerror(cc));
		return -AR_EUNREACH;
	case CURLE_OUT_OF_MEMORY:
		snprintf(c->msg, sizeof(c->msg), "out of memory");
		return -AR_ENOMEM;
	default:
		snprintf(c->msg, sizeof(c->msg), "primary %s: %s: %s",
		    c->cfg->primary.text, path, c->errbuf[0] ? c->errbuf :
		    curl_easy_strerror(cc));
		return -AR_EPROTO;
	}
}

/*
 * The explanation of an error answer, escaped into esc: the message of
 * the X frame that is the whole body, or the body's text. Returns the X
 * frame's code, or 0.
 */
static uint32_t
client_errframe(struct client *c, char *esc, size_t esclen)
{
	const uint8_t *b = (const uint8_t *)c->errbody;
	struct wire_error we;
	size_t len = c->errbody_len;

	if (len >= WIRE_HDR && b[0] == WIRE_ERROR &&
	    ((size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 |
	    b[4]) == len - WIRE_HDR &&
	    wire_get_error(b + WIRE_HDR, len - WIRE_HDR, &we) == 0) {
		log_escape(we.msg, we.msg_len, esc, esclen);
		return we.code;
	}
	while (len > 0 && c->errbody[len - 1] == '\n')
		len--;
	log_escape(c->errbody, len, esc, esclen);
	return 0;
}

static int
perform(struct client *c, const char *path, client_body_cb *cb, void *arg)
{
	char url[128 + 3 * 4096], esc[512];
	curl_off_t up = 0, down = 0;
	long hdr = 0, req = 0;
	uint32_t code;
	CURLcode cc;
	int r = 0, n;

	/* Request paths are escaped wire paths: they fit, or it is a bug. */
	n = snprintf(url, sizeof(url), "%s%s", c->base, path);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		snprintf(c->msg, sizeof(c->msg), "primary %s: request path "
		    "too long (%zu bytes)", c->cfg->primary.text, strlen(path));
		return -AR_EINTERNAL;
	}
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	c->body_cb = cb;
	c->body_arg = arg;
	c->cb_err = 0;
	c->status = 0;
	c->errbuf[0] = '\0';
	c->errbody_len = 0;
	c->errbody[0] = '\0';
	c->msg[0] = '\0';
	c->enc = CLIENT_ENC_PLAIN;
	if (c->zin != NULL)
		compress_in_reset(c->zin);
	cc = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->status);
	curl_easy_getinfo(c->curl, CURLINFO_SIZE_UPLOAD_T, &up);
	curl_easy_getinfo(c->curl, CURLINFO_SIZE_DOWNLOAD_T, &down);
	curl_easy_getinfo(c->curl, CURLINFO_HEADER_SIZE, &hdr);
	curl_easy_getinfo(c->curl, CURLINFO_REQUEST_SIZE, &req);
	c->sent += (uint64_t)up + (uint64_t)req;
	c->received += (uint64_t)down + (uint64_t)hdr;
	if (c->cb_err != 0)
		return c->cb_err;
	if (cc != CURLE_OK)
		return map_curl(c, cc, path);
	if (c->status == 200 && c->enc == CLIENT_ENC_ZSTD &&
	    !compress_in_complete(c->zin)) {
		snprintf(c->msg, sizeof(c->msg), "primary %s: %s: the zstd "
		    "answer ends before its frame", c->cfg->primary.text, path);
		return -AR_EPROTO;
	}
	if (c->status == 200)
		return 0;
	code = client_errframe(c, esc, sizeof(esc));
	snprintf(c->msg, sizeof(c->msg), "primary %s: %s: HTTP %ld%s%s",
	    c->cfg->primary.text, path, c->status, esc[0] ? ": " : "", esc);
	/* 403: the primary refused our key (its X frame names it); 429:
	 * it refuses our address after failed authentications. */
	if (c->status == 401 || c->status == 429 ||
	    (c->status == 403 && code == AR_EAUTH))
		r = -AR_EAUTH;
	else
		r = -AR_EPROTO;
	return r;
}

int
client_get(struct client *c, const char *path, client_body_cb *cb, void *arg)
{
	curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	return perform(c, path, cb, arg);
}

int
client_post_buf(struct client *c, const char *path, const void *body,
    size_t len, client_body_cb *cb, void *arg)
{
	curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, NULL);
	curl_easy_setopt(c->curl, CURLOPT_SEEKFUNCTION, NULL);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)len);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	return perform(c, path, cb, arg);
}

int
client_post_stream(struct client *c, const char *path, client_upload_cb *up,
    client_rewind_cb *rewind, void *uparg, client_body_cb *cb, void *arg)
{
	int r;

	c->up_cb = up;
	c->rewind_cb = rewind;
	c->up_arg = uparg;
	curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
	curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(c->curl, CURLOPT_READDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_SEEKFUNCTION, seek_cb);
	curl_easy_setopt(c->curl, CURLOPT_SEEKDATA, c);
	r = perform(c, path, cb, arg);
	curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, NULL);
	curl_easy_setopt(c->curl, CURLOPT_SEEKFUNCTION, NULL);
	return r;
}

struct client_hello_ctx {
	struct client *c;
	struct wire_reader rd;
	struct wire_hello *h;
	int got;		/* the hello frame was seen */
};

static int
client_hello_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct client_hello_ctx *hc = arg;
	struct wire_error we;

	/* The server's refusal: no version in common. */
	if (type == WIRE_ERROR && !hc->got && wire_get_error(p, len, &we) == 0 &&
	    we.code == AR_EVERSION) {
		snprintf(hc->c->msg, sizeof(hc->c->msg), "primary %s refused "
		    "protocol versions %d to %d: %s", hc->c->cfg->primary.text,
		    WIRE_VERSION_MIN, WIRE_VERSION_MAX,
		    log_escape(we.msg, we.msg_len, hc->c->errbuf,
		    sizeof(hc->c->errbuf)));
		return -AR_EVERSION;
	}
	if (type != WIRE_HELLO || hc->got || wire_get_hello(p, len, hc->h) != 0)
		return -AR_EPROTO;
	hc->got = 1;
	return 0;
}

static int
client_hello_body(void *arg, const void *data, size_t len)
{
	struct client_hello_ctx *hc = arg;

	return wire_reader_feed(&hc->rd, data, len, client_hello_frame, hc);
}

/* c->headers and one more line; NULL when out of memory. */
static struct curl_slist *
client_headers_with(const struct client *c, const char *line)
{
	struct curl_slist *l = NULL, *n;
	const struct curl_slist *i;

	for (i = c->headers; i != NULL; i = i->next) {
		n = curl_slist_append(l, i->data);
		if (n == NULL)
			goto fail;
		l = n;
	}
	n = curl_slist_append(l, line);
	if (n != NULL)
		return n;
fail:
	curl_slist_free_all(l);
	return NULL;
}

int
client_hello(struct client *c, struct wire_hello *h)
{
	struct client_hello_ctx hc;
	struct curl_slist *offer;
	char line[64];
	int r;

	memset(h, 0, sizeof(*h));
	memset(&hc, 0, sizeof(hc));
	hc.c = c;
	hc.h = h;
	snprintf(line, sizeof(line), "%s: %d-%d", WIRE_HDR_VERSIONS,
	    WIRE_VERSION_MIN, WIRE_VERSION_MAX);
	offer = client_headers_with(c, line);
	if (offer == NULL)
		return -AR_ENOMEM;
	r = wire_reader_init(&hc.rd, 4096);
	if (r != 0) {
		curl_slist_free_all(offer);
		return r;
	}
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, offer);
	r = client_get(c, "/v1/hello", client_hello_body, &hc);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->vheaders != NULL ?
	    c->vheaders : c->headers);
	curl_slist_free_all(offer);
	if (r == 0 && (!hc.got || !wire_reader_idle(&hc.rd))) {
		r = -AR_EPROTO;
		snprintf(c->msg, sizeof(c->msg), "primary %s: no hello",
		    c->cfg->primary.text);
	} else if (r == -AR_EPROTO && c->status == 404) {
		/* A web server, not an asyncrep primary of any version. */
		snprintf(c->msg, sizeof(c->msg), "primary %s: not an asyncrep "
		    "server (HTTP 404 for /v1/hello)", c->cfg->primary.text);
	} else if (r == -AR_EPROTO && c->msg[0] == '\0') {
		snprintf(c->msg, sizeof(c->msg), "primary %s: malformed hello",
		    c->cfg->primary.text);
	} else if (r == 0 && (h->version < WIRE_VERSION_MIN ||
	    h->version > WIRE_VERSION_MAX)) {
		r = -AR_EVERSION;
		snprintf(c->msg, sizeof(c->msg), "primary %s speaks protocol "
		    "version %u; this asyncrep speaks versions %d to %d",
		    c->cfg->primary.text, h->version, WIRE_VERSION_MIN,
		    WIRE_VERSION_MAX);
	}
	wire_reader_release(&hc.rd);
	if (r != 0)
		return r;
	return client_set_version(c, h->version);
}

uint32_t
client_version(const struct client *c)
{
	return c->version;
}

int
client_set_version(struct client *c, uint32_t version)
{
	struct curl_slist *chosen;
	char line[64];

	/* Every later request names the version chosen, and asks for zstd
	 * when configured and the version has it. */
	snprintf(line, sizeof(line), "%s: %u", WIRE_HDR_VERSION, version);
	chosen = client_headers_with(c, line);
	if (chosen == NULL)
		return -AR_ENOMEM;
	c->zask = 0;
	if (c->cfg->compress != NULL && strcmp(c->cfg->compress, "zstd") == 0 &&
	    version >= WIRE_V_COMPRESS) {
		struct curl_slist *z;

		snprintf(line, sizeof(line), "%s: zstd:%u", COMPRESS_HDR_ASK,
		    c->cfg->compress_level);
		z = curl_slist_append(chosen, line);
		if (z == NULL || (c->zin == NULL &&
		    compress_in_new(&c->zin) != 0)) {
			curl_slist_free_all(z != NULL ? z : chosen);
			return -AR_ENOMEM;
		}
		chosen = z;
		c->zask = 1;
	}
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, chosen);
	curl_slist_free_all(c->vheaders);
	c->vheaders = chosen;
	c->version = version;
	return 0;
}

int
client_url(struct client *c, const char *base, const char *key,
    const char *value, char *out, size_t outlen)
{
	char *esc;
	int n;

	if (value == NULL || value[0] == '\0') {
		n = snprintf(out, outlen, "%s", base);
		return n < 0 || (size_t)n >= outlen ? -AR_ENOMEM : 0;
	}
	esc = curl_easy_escape(c->curl, value, (int)strlen(value));
	if (esc == NULL)
		return -AR_ENOMEM;
	n = snprintf(out, outlen, "%s?%s=%s", base, key, esc);
	curl_free(esc);
	return n < 0 || (size_t)n >= outlen ? -AR_ENOMEM : 0;
}

void
client_set_rate(struct client *c, struct rate *r)
{
	c->rate = r;
}

void
client_set_abort(struct client *c, volatile sig_atomic_t *flag)
{
	c->abort_flag = flag;
	curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, c);
	curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
}

void
client_traffic(const struct client *c, uint64_t *sent, uint64_t *received)
{
	*sent = c->sent;
	*received = c->received;
}

long
client_status(const struct client *c)
{
	return c->status;
}

const char *
client_errmsg(const struct client *c)
{
	return c->msg;
}

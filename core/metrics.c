/*
 * metrics.c: the counters and gauges of metrics.h, their text, their
 * listener and their textfile.
 */
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fs.h"
#include "log.h"
#include "metrics.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* How a fixed series is shown. */
enum metrics_kind {
	METRICS_COUNTER,	/* only grows: name ends in _total */
	METRICS_GAUGE,		/* a value that goes both ways */
	METRICS_TIME,		/* a gauge of nanoseconds shown as seconds */
	METRICS_AGE,		/* a time (ns since the epoch) shown as the
				 * seconds since then; 0 shows 0 */
	METRICS_HIDDEN,		/* kept, not shown */
};

struct metrics_def {
	const char *name;
	const char *labels;	/* "" or 'kind="whole"' */
	enum metrics_kind kind;
	unsigned roles;		/* enum metrics_role mask */
	const char *help;
};

#define M_SERVER (METRICS_PRIMARY | METRICS_RESCUE)

/* Series of one name are consecutive: HELP and TYPE come once. */
static const struct metrics_def metrics_defs[METRICS_NIDS] = {
	[METRICS_SERVED_FILES_WHOLE] = { "asyncrep_served_files_total",
	    "kind=\"whole\"", METRICS_COUNTER, M_SERVER,
	    "Files sent to standbys completely, by kind." },
	[METRICS_SERVED_FILES_DELTA] = { "asyncrep_served_files_total",
	    "kind=\"delta\"", METRICS_COUNTER, M_SERVER, NULL },
	[METRICS_SERVED_FILES_APPEND] = { "asyncrep_served_files_total",
	    "kind=\"append\"", METRICS_COUNTER, M_SERVER, NULL },
	[METRICS_SERVED_FILES_BLOCKS] = { "asyncrep_served_files_total",
	    "kind=\"blocks\"", METRICS_COUNTER, M_SERVER, NULL },
	[METRICS_SERVED_BYTES_WHOLE] = { "asyncrep_served_bytes_total",
	    "kind=\"whole\"", METRICS_COUNTER, M_SERVER,
	    "Bytes of answers to file and delta requests, by kind." },
	[METRICS_SERVED_BYTES_DELTA] = { "asyncrep_served_bytes_total",
	    "kind=\"delta\"", METRICS_COUNTER, M_SERVER, NULL },
	[METRICS_SERVED_BYTES_APPEND] = { "asyncrep_served_bytes_total",
	    "kind=\"append\"", METRICS_COUNTER, M_SERVER, NULL },
	[METRICS_SERVED_BYTES_BLOCKS] = { "asyncrep_served_bytes_total",
	    "kind=\"blocks\"", METRICS_COUNTER, M_SERVER, NULL },
	[METRICS_REQUESTS] = { "asyncrep_requests_total", "",
	    METRICS_COUNTER, M_SERVER,
	    "Authenticated requests received." },
	[METRICS_AUTH_FAILURES] = { "asyncrep_auth_failures_total", "",
	    METRICS_COUNTER, M_SERVER,
	    "Requests refused for a bad token or an untrusted key." },
	[METRICS_RELEASED_SEQ] = { "asyncrep_primary_released_sequence", "",
	    METRICS_GAUGE, METRICS_PRIMARY,
	    "Last change sequence released to standbys." },
	[METRICS_WATCHED_DIRS] = { "asyncrep_watcher_directories", "",
	    METRICS_GAUGE, METRICS_PRIMARY,
	    "Directories the watcher watches now." },
	[METRICS_WATCH_OVERFLOWS] = { "asyncrep_watcher_overflows_total", "",
	    METRICS_COUNTER, METRICS_PRIMARY,
	    "Event queue overflows of the watcher (each costs a compare)." },
	[METRICS_WATCH_REBUILDS] = { "asyncrep_watcher_rebuilds_total", "",
	    METRICS_COUNTER, METRICS_PRIMARY,
	    "Rebuilds of the watcher's inotify instance." },
	[METRICS_WATCH_EVENTS] = { "asyncrep_watcher_events_total", "",
	    METRICS_COUNTER, METRICS_PRIMARY,
	    "Kernel events the watcher read." },
	[METRICS_APPLIED_SEQ] = { "asyncrep_standby_applied_sequence", "",
	    METRICS_GAUGE, METRICS_STANDBY,
	    "Position of the primary's journal applied durably." },
	[METRICS_LAST_APPLY_NS] = {
	    "asyncrep_standby_last_apply_timestamp_seconds", "",
	    METRICS_TIME, METRICS_STANDBY,
	    "When the standby last made a position durable (Unix time)." },
	[METRICS_RECV_FILES_WHOLE] = { "asyncrep_standby_received_files_total",
	    "kind=\"whole\"", METRICS_COUNTER, METRICS_STANDBY,
	    "Files received and made durable, by kind." },
	[METRICS_RECV_FILES_DELTA] = { "asyncrep_standby_received_files_total",
	    "kind=\"delta\"", METRICS_COUNTER, METRICS_STANDBY, NULL },
	[METRICS_RECV_FILES_APPEND] = { "asyncrep_standby_received_files_total",
	    "kind=\"append\"", METRICS_COUNTER, METRICS_STANDBY, NULL },
	[METRICS_RECV_FILES_BLOCKS] = { "asyncrep_standby_received_files_total",
	    "kind=\"blocks\"", METRICS_COUNTER, METRICS_STANDBY, NULL },
	[METRICS_RECV_BYTES_WHOLE] = { "asyncrep_standby_received_bytes_total",
	    "kind=\"whole\"", METRICS_COUNTER, METRICS_STANDBY,
	    "Bytes of file content written, by kind." },
	[METRICS_RECV_BYTES_DELTA] = { "asyncrep_standby_received_bytes_total",
	    "kind=\"delta\"", METRICS_COUNTER, METRICS_STANDBY, NULL },
	[METRICS_RECV_BYTES_APPEND] = { "asyncrep_standby_received_bytes_total",
	    "kind=\"append\"", METRICS_COUNTER, METRICS_STANDBY, NULL },
	[METRICS_RECV_BYTES_BLOCKS] = { "asyncrep_standby_received_bytes_total",
	    "kind=\"blocks\"", METRICS_COUNTER, METRICS_STANDBY, NULL },
	[METRICS_FULL_COMPARES] = { "asyncrep_standby_full_compares_total", "",
	    METRICS_COUNTER, METRICS_STANDBY,
	    "Compares of the whole tree with the primary." },
	[METRICS_RECONNECTS] = { "asyncrep_standby_reconnects_total", "",
	    METRICS_COUNTER, METRICS_STANDBY,
	    "Sessions with the primary started again after one ended." },
	[METRICS_BATCHES] = { "asyncrep_standby_batches_total", "",
	    METRICS_COUNTER, METRICS_STANDBY,
	    "Batches of changes applied." },
	[METRICS_BEHIND_NS] = { "asyncrep_standby_lag_seconds", "",
	    METRICS_AGE, METRICS_STANDBY,
	    "Age of the oldest change received and not yet durable (0 "
	    "when caught up; since the last contact when disconnected)." },
	[METRICS_CONTACT_NS] = { "asyncrep_standby_last_contact", "",
	    METRICS_HIDDEN, METRICS_STANDBY, NULL },
};

static const char *const metrics_sb_names[METRICS_SB_NSTATES] = {
	[METRICS_SB_STARTING] = "starting",
	[METRICS_SB_COMPARING] = "comparing",
	[METRICS_SB_FOLLOWING] = "following",
	[METRICS_SB_DISCONNECTED] = "disconnected",
	[METRICS_SB_DONE] = "done",
	[METRICS_SB_FAILED] = "failed",
};

static _Atomic uint64_t metrics_values[METRICS_NIDS];
/* The upper bounds of the apply histogram's buckets, in ns: from a
 * small batch on a fast disk to a large one behind a slow link. */
static const uint64_t metrics_apply_le[] = {
	1000000ull, 5000000ull, 25000000ull, 100000000ull, 500000000ull,
	2000000000ull, 10000000000ull, 60000000000ull,
};
#define METRICS_APPLY_BUCKETS \
	(sizeof(metrics_apply_le) / sizeof(metrics_apply_le[0]))
static _Atomic uint64_t metrics_apply_count[METRICS_APPLY_BUCKETS + 1];
static _Atomic uint64_t metrics_apply_sum_ns;
static _Atomic int metrics_sb_state;
static _Atomic unsigned metrics_role_mask;
static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static metrics_collect_cb *metrics_collector;	/* under metrics_lock */
static void *metrics_collector_arg;

struct metrics_server {
	struct MHD_Daemon *mhd;
};

/* ---------------------------------------------------------------- */
/* The values */

void
metrics_init(enum metrics_role role)
{
	size_t i;

	for (i = 0; i < METRICS_NIDS; i++)
		atomic_store(&metrics_values[i], 0);
	for (i = 0; i <= METRICS_APPLY_BUCKETS; i++)
		atomic_store(&metrics_apply_count[i], 0);
	atomic_store(&metrics_apply_sum_ns, 0);
	atomic_store(&metrics_sb_state, METRICS_SB_STARTING);
	atomic_store(&metrics_role_mask, (unsigned)role);
}

void
metrics_add(enum metrics_id id, uint64_t n)
{
	if ((unsigned)id < METRICS_NIDS)
		atomic_fetch_add_explicit(&metrics_values[id], n,
		    memory_order_relaxed);
}

void
metrics_set(enum metrics_id id, uint64_t v)
{
	if ((unsigned)id < METRICS_NIDS)
		atomic_store_explicit(&metrics_values[id], v,
		    memory_order_relaxed);
}

uint64_t
metrics_get(enum metrics_id id)
{
	if ((unsigned)id >= METRICS_NIDS)
		return 0;
	return atomic_load_explicit(&metrics_values[id], memory_order_relaxed);
}

void
metrics_set_standby_state(enum metrics_standby_state st)
{
	if ((unsigned)st < METRICS_SB_NSTATES)
		atomic_store(&metrics_sb_state, (int)st);
}

void
metrics_observe_apply(uint64_t ns)
{
	size_t i;

	for (i = 0; i < METRICS_APPLY_BUCKETS && ns > metrics_apply_le[i];
	    i++)
		;
	atomic_fetch_add(&metrics_apply_count[i], 1);
	atomic_fetch_add(&metrics_apply_sum_ns, ns);
}

/* The histogram, cumulative as Prometheus wants its buckets. */
static void
metrics_out_apply(struct metrics_out *out)
{
	static const char name[] = "asyncrep_standby_batch_apply_seconds";
	char labels[32], sample[64];
	uint64_t cum = 0;
	size_t i;
	int n;

	metrics_out_family(out, name, "histogram", "Time from a batch's "
	    "answer to its durable position, by batch.");
	n = snprintf(sample, sizeof(sample), "%s_bucket", name);
	if (n < 0 || (size_t)n >= sizeof(sample))
		return;
	for (i = 0; i <= METRICS_APPLY_BUCKETS; i++) {
		cum += atomic_load(&metrics_apply_count[i]);
		if (i < METRICS_APPLY_BUCKETS)
			n = snprintf(labels, sizeof(labels), "le=\"%g\"",
			    (double)metrics_apply_le[i] / 1e9);
		else
			n = snprintf(labels, sizeof(labels), "le=\"+Inf\"");
		if (n < 0 || (size_t)n >= sizeof(labels))
			return;
		metrics_out_uint(out, sample, labels, cum);
	}
	n = snprintf(sample, sizeof(sample), "%s_sum", name);
	if (n > 0 && (size_t)n < sizeof(sample))
		metrics_out_double(out, sample, "",
		    (double)atomic_load(&metrics_apply_sum_ns) / 1e9);
	n = snprintf(sample, sizeof(sample), "%s_count", name);
	if (n > 0 && (size_t)n < sizeof(sample))
		metrics_out_uint(out, sample, "", cum);
}

static uint64_t
metrics_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void
metrics_standby_contact(void)
{
	metrics_set(METRICS_CONTACT_NS, metrics_now_ns());
}

void
metrics_standby_disconnected(void)
{
	uint64_t zero = 0;

	atomic_compare_exchange_strong(&metrics_values[METRICS_BEHIND_NS],
	    &zero, metrics_get(METRICS_CONTACT_NS));
}

void
metrics_set_collector(metrics_collect_cb *cb, void *arg)
{
	pthread_mutex_lock(&metrics_lock);
	metrics_collector = cb;
	metrics_collector_arg = arg;
	pthread_mutex_unlock(&metrics_lock);
}

/* ---------------------------------------------------------------- */
/* The text */

static void metrics_out_printf(struct metrics_out *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
metrics_out_printf(struct metrics_out *out, const char *fmt, ...)
{
	va_list ap;
	size_t cap;
	char *nb;
	int n;

	if (out->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(out->buf != NULL ? out->buf + out->len : NULL,
		    out->cap - out->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			out->failed = 1;
			return;
		}
		if ((size_t)n < out->cap - out->len) {
			out->len += (size_t)n;
			return;
		}
		cap = out->cap == 0 ? 16384 : out->cap * 2;
		while (cap - out->len <= (size_t)n)
			cap *= 2;
		if (cap > METRICS_TEXT_MAX) {
			out->failed = 1;
			return;
		}
		nb = realloc(out->buf, cap);
		if (nb == NULL) {
			out->failed = 1;
			return;
		}
		out->buf = nb;
		out->cap = cap;
	}
}

void
metrics_out_family(struct metrics_out *out, const char *name,
    const char *type, const char *help)
{
	metrics_out_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

void
metrics_out_uint(struct metrics_out *out, const char *name,
    const char *labels, uint64_t v)
{
	if (labels[0] != '\0')
		metrics_out_printf(out, "%s{%s} %llu\n", name, labels,
		    (unsigned long long)v);
	else
		metrics_out_printf(out, "%s %llu\n", name,
		    (unsigned long long)v);
}

void
metrics_out_double(struct metrics_out *out, const char *name,
    const char *labels, double v)
{
	if (labels[0] != '\0')
		metrics_out_printf(out, "%s{%s} %.9g\n", name, labels, v);
	else
		metrics_out_printf(out, "%s %.9g\n", name, v);
}

const char *
metrics_label_escape(const char *value, char *buf, size_t len)
{
	size_t o = 0;

	for (; *value != '\0' && o + 3 < len; value++) {
		if (*value == '\\' || *value == '"') {
			buf[o++] = '\\';
			buf[o++] = *value;
		} else if (*value == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else
			buf[o++] = *value;
	}
	buf[o] = '\0';
	return buf;
}

int
metrics_render(struct metrics_out *out)
{
	unsigned roles = atomic_load(&metrics_role_mask);
	const struct metrics_def *d;
	char labels[64];
	uint64_t v;
	size_t i;
	int st, n;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < METRICS_NIDS; i++) {
		d = &metrics_defs[i];
		if ((d->roles & roles) == 0 || d->kind == METRICS_HIDDEN)
			continue;
		if (d->help != NULL)
			metrics_out_family(out, d->name,
			    d->kind == METRICS_COUNTER ? "counter" : "gauge",
			    d->help);
		v = metrics_get((enum metrics_id)i);
		if (d->kind == METRICS_TIME)
			metrics_out_double(out, d->name, d->labels,
			    (double)v / 1e9);
		else if (d->kind == METRICS_AGE)
			metrics_out_double(out, d->name, d->labels,
			    v != 0 && metrics_now_ns() > v ?
			    (double)(metrics_now_ns() - v) / 1e9 : 0.0);
		else
			metrics_out_uint(out, d->name, d->labels, v);
	}
	if (roles & METRICS_STANDBY) {
		st = atomic_load(&metrics_sb_state);
		metrics_out_family(out, "asyncrep_standby_state", "gauge",
		    "What the standby does: 1 for its state, 0 for the others.");
		for (i = 0; i < METRICS_SB_NSTATES; i++) {
			n = snprintf(labels, sizeof(labels), "state=\"%s\"",
			    metrics_sb_names[i]);
			if (n < 0 || (size_t)n >= sizeof(labels))
				continue;
			metrics_out_uint(out, "asyncrep_standby_state", labels,
			    (int)i == st);
		}
		metrics_out_apply(out);
	}
	pthread_mutex_lock(&metrics_lock);
	if (metrics_collector != NULL)
		metrics_collector(out, metrics_collector_arg);
	pthread_mutex_unlock(&metrics_lock);
	if (out->failed) {
		metrics_out_release(out);
		return -AR_ENOMEM;
	}
	return 0;
}

void
metrics_out_release(struct metrics_out *out)
{
	free(out->buf);
	memset(out, 0, sizeof(*out));
}

int
metrics_write_file(const char *path)
{
	struct metrics_out out;
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t dlen;
	int dirfd, r;

	r = metrics_render(&out);
	if (r != 0)
		return r;
	if (slash == NULL) {
		dir[0] = '.';
		dir[1] = '\0';
	} else {
		dlen = slash == path ? 1 : (size_t)(slash - path);
		if (dlen >= sizeof(dir)) {
			metrics_out_release(&out);
			errno = ENAMETOOLONG;
			return -AR_EIO;
		}
		memcpy(dir, path, dlen);
		dir[dlen] = '\0';
	}
	r = fs_open_dir(dir, &dirfd);
	if (r == 0) {
		r = fs_write_durable(dirfd, slash != NULL ? slash + 1 : path,
		    out.buf != NULL ? out.buf : "", out.len, 0644);
		close(dirfd);
	}
	metrics_out_release(&out);
	return r;
}

/* ---------------------------------------------------------------- */
/* The listener */

static enum MHD_Result
metrics_reply(struct MHD_Connection *c, unsigned status, const char *type,
    char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, body, mode);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
metrics_handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **req_cls)
{
	static int first;
	struct metrics_out out;

	(void)cls;
	(void)version;
	(void)upload;
	if (*req_cls == NULL) {
		*req_cls = &first;	/* headers only: wait for the body */
		return MHD_YES;
	}
	if (*upload_size != 0) {
		*upload_size = 0;	/* a body is ignored */
		return MHD_YES;
	}
	if (strcmp(url, "/metrics") != 0)
		return metrics_reply(c, MHD_HTTP_NOT_FOUND, "text/plain",
		    (char *)"not found: try /metrics\n", 24,
		    MHD_RESPMEM_PERSISTENT);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return metrics_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "text/plain", (char *)"only GET\n", 9,
		    MHD_RESPMEM_PERSISTENT);
	if (metrics_render(&out) != 0)
		return metrics_reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "text/plain", (char *)"out of memory\n", 14,
		    MHD_RESPMEM_PERSISTENT);
	/* libmicrohttpd frees the text with free() once it is sent. */
	return metrics_reply(c, MHD_HTTP_OK, METRICS_CONTENT_TYPE,
	    out.buf, out.len,
	    MHD_RESPMEM_MUST_FREE);
}

static void metrics_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
metrics_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512], esc[1024];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	log_warn("metrics: %s", log_escape(buf, n, esc, sizeof(esc)));
}

int
metrics_start(const struct config_addr *addr, struct metrics_server **out)
{
	struct metrics_server *m;

	*out = NULL;
	if (!addr->set)
		return 0;
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		log_warn("metrics: listen %s: out of memory; no metrics",
		    addr->text);
		return 0;
	}
	/* One thread: a scraper calls every few seconds. */
	m->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
	    (addr->ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL,
	    metrics_handle, m,
	    MHD_OPTION_EXTERNAL_LOGGER, metrics_mhd_log, m,
	    MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&addr->ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)4,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
	    MHD_OPTION_END);
	if (m->mhd == NULL) {
		log_warn("metrics: cannot listen on %s: %s; going on without "
		    "metrics", addr->text, strerror(errno));
		free(m);
		return 0;
	}
	log_info("metrics on http://%s/metrics", addr->text);
	*out = m;
	return 0;
}

void
metrics_stop(struct metrics_server *m)
{
	if (m == NULL)
		return;
	MHD_stop_daemon(m->mhd);
	free(m);
}

/*
 * wire.c: encode and decode the protocol's frames (see PROTOCOL.md).
 *
 * Everything a peer sends passes through the decoders below before any
 * other code looks at it, so they accept exactly the documented layouts
 * and nothing else: every length is bounded, every string is checked and
 * NUL-terminated, and a payload must be consumed to its last byte.
 * The encoders refuse what the decoders would refuse, so we never put a
 * frame on the wire that a correct peer has to reject.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "wire.h"

/* ------------------------------------------------------------------------
 * Reading: a cursor with a sticky error.
 *
 * Each getter on a short cursor sets err and yields zero instead of
 * failing loudly, so a decoder reads its whole layout straight through and
 * checks once at the end; nothing is ever read past the end of the input.
 */

struct cur {
	const uint8_t *p;
	size_t len;
	int err;
};

static const uint8_t *
cur_bytes(struct cur *c, size_t n)
{
	const uint8_t *s;

	if (c->err || n > c->len) {
		c->err = 1;
		return NULL;
	}
	s = c->p;
	c->p += n;
	c->len -= n;
	return s;
}

static uint64_t
cur_uint(struct cur *c, size_t n)
{
	const uint8_t *s = cur_bytes(c, n);
	uint64_t v = 0;
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < n; i++)
		v = (v << 8) | s[i];
	return v;
}

static uint8_t
cur_u8(struct cur *c)
{
	return (uint8_t)cur_uint(c, 1);
}

static uint32_t
cur_u32(struct cur *c)
{
	return (uint32_t)cur_uint(c, 4);
}

static uint64_t
cur_u64(struct cur *c)
{
	return cur_uint(c, 8);
}

/*
 * A string with an n-byte length prefix, at most max bytes, copied into
 * dst (max + 1 bytes) and NUL-terminated. A string holding a NUL is
 * refused: the copy would silently end early for every later reader.
 * dst is always a valid (possibly empty) string afterwards.
 */
static void
cur_str(struct cur *c, size_t prefix, char *dst, size_t max, size_t *lenp)
{
	size_t n = (size_t)cur_uint(c, prefix);
	const uint8_t *s;

	dst[0] = '\0';
	*lenp = 0;
	if (n > max) {
		c->err = 1;
		return;
	}
	s = cur_bytes(c, n);
	if (s == NULL)
		return;
	if (memchr(s, '\0', n) != NULL) {
		c->err = 1;
		return;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
	*lenp = n;
}

/* The verdict of a decoder: all fields present and nothing left over. */
static int
cur_done(const struct cur *c)
{
	if (c->err || c->len != 0)
		return -AR_EPROTO;
	return 0;
}

static void
cur_init(struct cur *c, const uint8_t *p, size_t len)
{
	c->p = p;
	c->len = len;
	c->err = 0;
}

/* ------------------------------------------------------------------------
 * Writing: the same idea. The header goes first with a zero length that
 * wput_finish fills in, so no encoder computes its size twice.
 */

struct wput {
	uint8_t *p;
	size_t cap;
	size_t len;
	int err;
};

static void
wput_uint(struct wput *w, uint64_t v, size_t n)
{
	size_t i;

	if (w->err || n > w->cap - w->len) {
		w->err = 1;
		return;
	}
	for (i = 0; i < n; i++)
		w->p[w->len + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	w->len += n;
}

static void
wput_bytes(struct wput *w, const void *s, size_t n)
{
	if (w->err || n > w->cap - w->len) {
		w->err = 1;
		return;
	}
	if (n > 0)
		memcpy(w->p + w->len, s, n);
	w->len += n;
}

static void
wput_begin(struct wput *w, uint8_t *out, size_t outlen, uint8_t type)
{
	w->p = out;
	w->cap = outlen;
	w->len = 0;
	w->err = 0;
	wput_uint(w, type, 1);
	wput_uint(w, 0, 4);
}

static int
wput_finish(struct wput *w)
{
	size_t plen;

	if (w->err)
		return -AR_ENOMEM;
	plen = w->len - WIRE_HDR;
	w->p[1] = (uint8_t)(plen >> 24);
	w->p[2] = (uint8_t)(plen >> 16);
	w->p[3] = (uint8_t)(plen >> 8);
	w->p[4] = (uint8_t)plen;
	return (int)w->len;
}

/* ------------------------------------------------------------------------
 * Paths and names.
 */

static int
component_valid(const char *p, size_t len)
{
	if (len == 0 || len > WIRE_NAME_MAX)
		return 0;
	if (p[0] == '.' && (len == 1 || (len == 2 && p[1] == '.')))
		return 0;
	return 1;
}

int
wire_path_valid(const char *p, size_t len)
{
	size_t i, start = 0;

	if (len > WIRE_PATH_MAX)
		return 0;
	if (len == 0)
		return 1;
	for (i = 0; i < len; i++) {
		if (p[i] == '\0')
			return 0;
		if (p[i] != '/')
			continue;
		if (!component_valid(p + start, i - start))
			return 0;
		start = i + 1;
	}
	return component_valid(p + start, len - start);
}

int
wire_name_valid(const char *p, size_t len)
{
	if (len == 0 || len > WIRE_NAME_MAX)
		return 0;
	if (memchr(p, '/', len) != NULL || memchr(p, '\0', len) != NULL)
		return 0;
	return component_valid(p, len);
}

/*
 * Why an encoder refuses a path: too long is a limit a real tree can hit
 * (a deep directory), so the caller can skip it; anything else means the
 * caller built a path it should not have.
 */
static int
put_path_check(const char *p, size_t len, int allow_empty)
{
	if (len > WIRE_PATH_MAX)
		return -AR_ENOMEM;
	if ((len == 0 && !allow_empty) || !wire_path_valid(p, len))
		return -AR_EINTERNAL;
	return 0;
}

int
wire_type_special(uint8_t type)
{
	return type == 'p' || type == 's' || type == 'c' || type == 'b';
}

uint64_t
wire_rdev(unsigned major, unsigned minor)
{
	return (uint64_t)major << 32 | minor;
}

void
wire_rdev_split(uint64_t size, unsigned *major, unsigned *minor)
{
	*major = (unsigned)(size >> 32);
	*minor = (unsigned)(size & 0xffffffffu);
}

static int
entry_type_valid(uint8_t frame_type, uint8_t type)
{
	/* F announces the bytes of a regular file: nothing else is sent. */
	if (frame_type == WIRE_FILE)
		return type == 'f';
	/* A: the state of a directory itself. */
	if (frame_type == WIRE_ATTRS)
		return type == 'd';
	/* A hard link of an earlier entry: only in a manifest. */
	if (type == 'h')
		return frame_type == WIRE_ENTRY;
	return type == 'f' || type == 'd' || type == 'l' ||
	    wire_type_special(type);
}

/* A FIFO or socket has no size; a device's is its number. */
static int
entry_size_valid(const struct wire_entry *e)
{
	return !(e->type == 'p' || e->type == 's') || e->size == 0;
}

/* ------------------------------------------------------------------------
 * Encoders.
 */

int
wire_put_hello(uint8_t *out, size_t outlen, const struct wire_hello *h)
{
	struct wput w;
	const char *nul;
	size_t slen;

	nul = memchr(h->server, '\0', sizeof(h->server));
	if (nul == NULL)
		return -AR_EINTERNAL;
	slen = (size_t)(nul - h->server);
	if (memchr(h->generation, '\0', sizeof(h->generation)) == NULL ||
	    !limit_gen_valid(h->generation, strlen(h->generation)))
		return -AR_EINTERNAL;
	if (h->role != WIRE_ROLE_PRIMARY && h->role != WIRE_ROLE_RESCUE)
		return -AR_EINTERNAL;

	wput_begin(&w, out, outlen, WIRE_HELLO);
	wput_uint(&w, h->version, 4);
	wput_uint(&w, h->role, 4);
	wput_uint(&w, WIRE_GEN_LEN, 1);
	wput_bytes(&w, h->generation, WIRE_GEN_LEN);
	wput_uint(&w, slen, 1);
	wput_bytes(&w, h->server, slen);
	wput_uint(&w, h->seq, 8);
	/* vmax 0: the version 1 layout, whatever the version (the refusal
	 * of a version 1 peer names our lowest version in it). */
	if (h->vmax != 0) {
		if (h->version < 2 || h->vmin > h->version ||
		    h->vmax < h->version)
			return -AR_EINTERNAL;
		wput_uint(&w, h->vmin, 4);
		wput_uint(&w, h->vmax, 4);
	}
	return wput_finish(&w);
}

int
wire_put_dir(uint8_t *out, size_t outlen, const char *path, size_t len)
{
	struct wput w;
	int r;

	r = put_path_check(path, len, 1);
	if (r != 0)
		return r;
	wput_begin(&w, out, outlen, WIRE_DIR);
	wput_uint(&w, len, 2);
	wput_bytes(&w, path, len);
	return wput_finish(&w);
}

int
wire_put_entry(uint8_t *out, size_t outlen, uint8_t frame_type,
    const struct wire_entry *e)
{
	struct wput w;
	int r;

	if (frame_type == WIRE_ENTRY) {
		if (e->name_len > WIRE_NAME_MAX)
			return -AR_ENOMEM;
		if (!wire_name_valid(e->name, e->name_len))
			return -AR_EINTERNAL;
	} else if (frame_type == WIRE_FILE || frame_type == WIRE_STATE ||
	    frame_type == WIRE_ATTRS) {
		r = put_path_check(e->name, e->name_len,
		    frame_type == WIRE_ATTRS);
		if (r != 0)
			return r;
	} else
		return -AR_EINTERNAL;
	if (!entry_type_valid(frame_type, e->type) || !entry_size_valid(e) ||
	    (e->mode & ~07777u) != 0 || e->mtime_nsec >= 1000000000u)
		return -AR_EINTERNAL;
	if (e->type == 'l' || e->type == 'h') {
		if (e->target_len > WIRE_TARGET_MAX)
			return -AR_ENOMEM;
		if (e->target_len == 0 ||
		    memchr(e->target, '\0', e->target_len) != NULL)
			return -AR_EINTERNAL;
		if (e->type == 'h' && !wire_path_valid(e->target,
		    e->target_len))
			return -AR_EINTERNAL;
	} else if (e->target_len != 0)
		return -AR_EINTERNAL;

	wput_begin(&w, out, outlen, frame_type);
	wput_uint(&w, e->type, 1);
	wput_uint(&w, e->name_len, 2);
	wput_bytes(&w, e->name, e->name_len);
	wput_uint(&w, e->size, 8);
	wput_uint(&w, (uint64_t)e->mtime_sec, 8);
	wput_uint(&w, e->mtime_nsec, 4);
	wput_uint(&w, e->mode, 4);
	wput_uint(&w, e->uid, 4);
	wput_uint(&w, e->gid, 4);
	wput_uint(&w, e->target_len, 2);
	wput_bytes(&w, e->target, e->target_len);
	return wput_finish(&w);
}

int
wire_put_hole(uint8_t *out, size_t outlen, uint64_t len)
{
	struct wput w;

	if (len == 0 || len > WIRE_HOLE_MAX)
		return -AR_EINTERNAL;
	wput_begin(&w, out, outlen, WIRE_HOLE);
	wput_uint(&w, len, 8);
	return wput_finish(&w);
}

int
wire_get_hole(const uint8_t *p, size_t len, uint64_t *hole)
{
	struct cur c;

	cur_init(&c, p, len);
	*hole = cur_u64(&c);
	if (cur_done(&c) != 0 || *hole == 0 || *hole > WIRE_HOLE_MAX)
		return -AR_EPROTO;
	return 0;
}

int
wire_idname_valid(const char *p, size_t len)
{
	size_t i;

	if (len == 0 || len > WIRE_IDNAME_MAX)
		return 0;
	if (p[0] == '.' && (len == 1 || (len == 2 && p[1] == '.')))
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch <= ' ' || ch == 0x7f || ch == '/' || ch == ':' ||
		    ch == ',')
			return 0;
	}
	return 1;
}

int
wire_put_idname(uint8_t *out, size_t outlen, uint8_t kind, uint32_t id,
    const char *name, size_t len)
{
	struct wput w;

	if ((kind != WIRE_ID_USER && kind != WIRE_ID_GROUP) || id == 0 ||
	    !wire_idname_valid(name, len))
		return -AR_EINTERNAL;
	wput_begin(&w, out, outlen, WIRE_IDNAME);
	wput_uint(&w, kind, 1);
	wput_uint(&w, id, 4);
	wput_uint(&w, len, 1);
	wput_bytes(&w, name, len);
	return wput_finish(&w);
}

int
wire_get_idname(const uint8_t *p, size_t len, struct wire_idname *n)
{
	struct cur c;
	size_t nl;

	cur_init(&c, p, len);
	n->kind = cur_u8(&c);
	n->id = cur_u32(&c);
	cur_str(&c, 1, n->name, WIRE_IDNAME_MAX, &nl);
	n->name_len = (uint8_t)nl;
	if (cur_done(&c) != 0 || (n->kind != WIRE_ID_USER &&
	    n->kind != WIRE_ID_GROUP) || n->id == 0 ||
	    !wire_idname_valid(n->name, nl))
		return -AR_EPROTO;
	return 0;
}

int
wire_put_end(uint8_t *out, size_t outlen, uint64_t count)
{
	struct wput w;

	wput_begin(&w, out, outlen, WIRE_END);
	wput_uint(&w, count, 8);
	return wput_finish(&w);
}

/*
 * A message longer than the limit is cut rather than refused: failing to
 * report a failure would leave the peer with nothing at all.
 */
int
wire_put_error(uint8_t *out, size_t outlen, uint32_t code, const char *msg)
{
	struct wput w;
	size_t n;

	if (msg == NULL)
		msg = "";
	n = strlen(msg);
	if (n > WIRE_MSG_MAX)
		n = WIRE_MSG_MAX;
	wput_begin(&w, out, outlen, WIRE_ERROR);
	wput_uint(&w, code, 4);
	wput_uint(&w, n, 2);
	wput_bytes(&w, msg, n);
	return wput_finish(&w);
}

int
wire_put_req(uint8_t *out, size_t outlen, const char *path, size_t len,
    uint64_t basis_size)
{
	struct wput w;
	int r;

	r = put_path_check(path, len, 0);
	if (r != 0)
		return r;
	wput_begin(&w, out, outlen, WIRE_REQ);
	wput_uint(&w, len, 2);
	wput_bytes(&w, path, len);
	wput_uint(&w, basis_size, 8);
	return wput_finish(&w);
}

int
wire_put_trailer(uint8_t *out, size_t outlen, const struct wire_trailer *t)
{
	struct wput w;

	wput_begin(&w, out, outlen, WIRE_TRAILER);
	wput_uint(&w, t->size, 8);
	wput_bytes(&w, t->hash, sizeof(t->hash));
	return wput_finish(&w);
}

int
wire_put_retry(uint8_t *out, size_t outlen, uint32_t reason,
    const char *path, size_t len)
{
	struct wput w;
	int r;

	if (reason < WIRE_RETRY_CHANGED || reason > WIRE_RETRY_BASIS)
		return -AR_EINTERNAL;
	r = put_path_check(path, len, 0);
	if (r != 0)
		return r;
	wput_begin(&w, out, outlen, WIRE_RETRY);
	wput_uint(&w, reason, 4);
	wput_uint(&w, len, 2);
	wput_bytes(&w, path, len);
	return wput_finish(&w);
}

int
wire_put_append(uint8_t *out, size_t outlen, const struct wire_append *a)
{
	struct wput w;
	int r;

	r = put_path_check(a->path, a->path_len, 0);
	if (r != 0)
		return r;
	wput_begin(&w, out, outlen, WIRE_APPEND);
	wput_uint(&w, a->path_len, 2);
	wput_bytes(&w, a->path, a->path_len);
	wput_uint(&w, a->size, 8);
	wput_bytes(&w, a->root, sizeof(a->root));
	return wput_finish(&w);
}

int
wire_put_block(uint8_t *out, size_t outlen, const struct wire_block *b)
{
	struct wput w;

	wput_begin(&w, out, outlen, WIRE_BLOCK);
	wput_uint(&w, b->index, 8);
	wput_bytes(&w, b->hash, sizeof(b->hash));
	return wput_finish(&w);
}

/* Which path-op frames take a second path, and which allow "". */
static int
pathop_shape(uint8_t type, int *two, int *root_ok)
{
	*two = type == WIRE_MOVE;
	*root_ok = type == WIRE_RESCAN;
	return type == WIRE_MOVE || type == WIRE_GONE_PATH ||
	    type == WIRE_RESCAN ? 0 : -AR_EINTERNAL;
}

int
wire_put_pathop(uint8_t *out, size_t outlen, uint8_t type, const char *path,
    size_t len, const char *path2, size_t len2)
{
	struct wput w;
	int two, root_ok, r;

	r = pathop_shape(type, &two, &root_ok);
	if (r != 0)
		return r;
	r = put_path_check(path, len, root_ok);
	if (r == 0 && two)
		r = put_path_check(path2, len2, 0);
	if (r != 0)
		return r;
	wput_begin(&w, out, outlen, type);
	wput_uint(&w, len, 2);
	wput_bytes(&w, path, len);
	if (two) {
		wput_uint(&w, len2, 2);
		wput_bytes(&w, path2, len2);
	}
	return wput_finish(&w);
}

void
wire_put_data_hdr(uint8_t *out, uint32_t len)
{
	out[0] = WIRE_DATA;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

/* ------------------------------------------------------------------------
 * Decoders. On failure the output holds no promise beyond its strings
 * being NUL-terminated.
 */

int
wire_get_hello(const uint8_t *p, size_t len, struct wire_hello *h)
{
	struct cur c;
	size_t glen, slen;

	cur_init(&c, p, len);
	h->version = cur_u32(&c);
	h->role = cur_u32(&c);
	cur_str(&c, 1, h->generation, WIRE_GEN_LEN, &glen);
	cur_str(&c, 1, h->server, sizeof(h->server) - 1, &slen);
	h->seq = cur_u64(&c);
	/* Version 1 ends here; from 2 on the server's range follows. */
	if (h->version >= 2) {
		h->vmin = cur_u32(&c);
		h->vmax = cur_u32(&c);
	} else {
		h->vmin = h->vmax = h->version;
	}
	if (cur_done(&c) != 0)
		return -AR_EPROTO;
	if (h->version == 0 || h->vmin > h->version || h->vmax < h->version)
		return -AR_EPROTO;
	if (!limit_gen_valid(h->generation, glen))
		return -AR_EPROTO;
	if (h->role != WIRE_ROLE_PRIMARY && h->role != WIRE_ROLE_RESCUE)
		return -AR_EPROTO;
	return 0;
}

/* path must hold WIRE_PATH_MAX + 1 bytes. */
int
wire_get_dir(const uint8_t *p, size_t len, char *path, size_t *path_len)
{
	struct cur c;

	cur_init(&c, p, len);
	cur_str(&c, 2, path, WIRE_PATH_MAX, path_len);
	if (cur_done(&c) != 0 || !wire_path_valid(path, *path_len))
		return -AR_EPROTO;
	return 0;
}

int
wire_get_entry(const uint8_t *p, size_t len, uint8_t frame_type,
    struct wire_entry *e)
{
	struct cur c;
	size_t nlen, tlen, nmax;

	if (frame_type != WIRE_ENTRY && frame_type != WIRE_FILE &&
	    frame_type != WIRE_STATE && frame_type != WIRE_ATTRS)
		return -AR_EINTERNAL;
	nmax = frame_type == WIRE_ENTRY ? WIRE_NAME_MAX : WIRE_PATH_MAX;

	cur_init(&c, p, len);
	e->type = cur_u8(&c);
	cur_str(&c, 2, e->name, nmax, &nlen);
	e->name_len = (uint16_t)nlen;
	e->size = cur_u64(&c);
	e->mtime_sec = (int64_t)cur_u64(&c);
	e->mtime_nsec = cur_u32(&c);
	e->mode = cur_u32(&c);
	e->uid = cur_u32(&c);
	e->gid = cur_u32(&c);
	cur_str(&c, 2, e->target, WIRE_TARGET_MAX, &tlen);
	e->target_len = (uint16_t)tlen;
	if (cur_done(&c) != 0)
		return -AR_EPROTO;

	if (!entry_type_valid(frame_type, e->type) || !entry_size_valid(e))
		return -AR_EPROTO;
	if (frame_type == WIRE_ENTRY && !wire_name_valid(e->name, nlen))
		return -AR_EPROTO;
	if (frame_type != WIRE_ENTRY && ((nlen == 0 &&
	    frame_type != WIRE_ATTRS) || !wire_path_valid(e->name, nlen)))
		return -AR_EPROTO;
	if (e->mtime_nsec >= 1000000000u || (e->mode & ~07777u) != 0)
		return -AR_EPROTO;
	/* An empty target cannot be created (symlink(2) says ENOENT). */
	if ((e->type == 'l' || e->type == 'h') != (tlen != 0))
		return -AR_EPROTO;
	/* A hard link names a path of the tree: never ".." or "/". */
	if (e->type == 'h' && !wire_path_valid(e->target, tlen))
		return -AR_EPROTO;
	return 0;
}

int
wire_get_end(const uint8_t *p, size_t len, uint64_t *count)
{
	struct cur c;

	cur_init(&c, p, len);
	*count = cur_u64(&c);
	return cur_done(&c);
}

int
wire_get_error(const uint8_t *p, size_t len, struct wire_error *e)
{
	struct cur c;
	size_t mlen;

	cur_init(&c, p, len);
	e->code = cur_u32(&c);
	cur_str(&c, 2, e->msg, WIRE_MSG_MAX, &mlen);
	e->msg_len = (uint16_t)mlen;
	return cur_done(&c);
}

int
wire_get_req(const uint8_t *p, size_t len, struct wire_req *r)
{
	struct cur c;
	size_t plen;

	cur_init(&c, p, len);
	cur_str(&c, 2, r->path, WIRE_PATH_MAX, &plen);
	r->path_len = (uint16_t)plen;
	r->basis_size = cur_u64(&c);
	if (cur_done(&c) != 0 || plen == 0 || !wire_path_valid(r->path, plen))
		return -AR_EPROTO;
	return 0;
}

int
wire_get_trailer(const uint8_t *p, size_t len, struct wire_trailer *t)
{
	struct cur c;
	const uint8_t *h;

	cur_init(&c, p, len);
	t->size = cur_u64(&c);
	h = cur_bytes(&c, sizeof(t->hash));
	if (h != NULL)
		memcpy(t->hash, h, sizeof(t->hash));
	return cur_done(&c);
}

int
wire_get_retry(const uint8_t *p, size_t len, struct wire_retry *r)
{
	struct cur c;
	size_t plen;

	cur_init(&c, p, len);
	r->reason = cur_u32(&c);
	cur_str(&c, 2, r->path, WIRE_PATH_MAX, &plen);
	r->path_len = (uint16_t)plen;
	if (cur_done(&c) != 0)
		return -AR_EPROTO;
	if (r->reason < WIRE_RETRY_CHANGED || r->reason > WIRE_RETRY_BASIS)
		return -AR_EPROTO;
	if (plen == 0 || !wire_path_valid(r->path, plen))
		return -AR_EPROTO;
	return 0;
}

int
wire_get_pathop(const uint8_t *p, size_t len, uint8_t type,
    struct wire_pathop *op)
{
	struct cur c;
	size_t l1, l2 = 0;
	int two, root_ok;

	if (pathop_shape(type, &two, &root_ok) != 0)
		return -AR_EINTERNAL;
	cur_init(&c, p, len);
	cur_str(&c, 2, op->path, WIRE_PATH_MAX, &l1);
	op->path2[0] = '\0';
	if (two)
		cur_str(&c, 2, op->path2, WIRE_PATH_MAX, &l2);
	if (cur_done(&c) != 0)
		return -AR_EPROTO;
	op->path_len = (uint16_t)l1;
	op->path2_len = (uint16_t)l2;
	if ((l1 == 0 && !root_ok) || !wire_path_valid(op->path, l1))
		return -AR_EPROTO;
	if (two && (l2 == 0 || !wire_path_valid(op->path2, l2)))
		return -AR_EPROTO;
	return 0;
}

/* ------------------------------------------------------------------------
 * The frame splitter.
 *
 * Invariant: buf holds the first len bytes of one frame, never more; once
 * len >= WIRE_HDR the header in buf has been checked against max_frame.
 */

static uint32_t
hdr_len(const uint8_t *h)
{
	return ((uint32_t)h[1] << 24) | ((uint32_t)h[2] << 16) |
	    ((uint32_t)h[3] << 8) | (uint32_t)h[4];
}

int
wire_reader_init(struct wire_reader *r, uint32_t max_frame)
{
	memset(r, 0, sizeof(*r));
	/* The limit is a protocol constant, never something a user sets. */
	if (max_frame > WIRE_MAX_FRAME)
		return -AR_EINTERNAL;
	r->cap = WIRE_HDR + (size_t)max_frame;
	r->buf = malloc(r->cap);
	if (r->buf == NULL) {
		r->cap = 0;
		return -AR_ENOMEM;
	}
	r->max_frame = max_frame;
	return 0;
}

void
wire_reader_release(struct wire_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

int
wire_reader_feed(struct wire_reader *r, const void *data, size_t len,
    wire_frame_cb *cb, void *arg)
{
	const uint8_t *in = data;
	size_t need, n;
	uint32_t flen;
	int rv;

	if (r->failed)
		return -AR_EPROTO;
	while (len > 0) {
		/*
		 * Fast path: nothing buffered and the whole frame is in the
		 * input, so hand it over in place; data frames are up to
		 * 256 KiB and copying each one again would be waste.
		 */
		if (r->len == 0 && len >= WIRE_HDR) {
			flen = hdr_len(in);
			if (flen > r->max_frame) {
				r->failed = 1;
				return -AR_EPROTO;
			}
			if (len - WIRE_HDR >= flen) {
				rv = cb(arg, in[0], in + WIRE_HDR, flen);
				in += WIRE_HDR + flen;
				len -= WIRE_HDR + flen;
				if (rv != 0)
					return rv;
				continue;
			}
		}

		/* Slow path: complete the header, then the payload. */
		if (r->len < WIRE_HDR)
			need = WIRE_HDR - r->len;
		else
			need = WIRE_HDR + hdr_len(r->buf) - r->len;
		n = need < len ? need : len;
		memcpy(r->buf + r->len, in, n);
		r->len += n;
		in += n;
		len -= n;
		if (r->len < WIRE_HDR)
			continue;
		flen = hdr_len(r->buf);
		if (flen > r->max_frame) {
			r->failed = 1;
			return -AR_EPROTO;
		}
		if (r->len < WIRE_HDR + flen)
			continue;
		r->len = 0;
		rv = cb(arg, r->buf[0], r->buf + WIRE_HDR, flen);
		if (rv != 0)
			return rv;
	}
	return 0;
}

int
wire_reader_idle(const struct wire_reader *r)
{
	return !r->failed && r->len == 0;
}

/* ------------------------------------------------------------------------
 * Version negotiation.
 */

/* A decimal version at *s, 1 to WIRE_VERSION_LIMIT, no sign, no spaces. */
static int
version_number(const char **s, uint32_t *v)
{
	const char *p = *s;
	uint32_t n = 0;

	if (*p < '0' || *p > '9' || *p == '0')
		return -AR_EPROTO;
	while (*p >= '0' && *p <= '9') {
		n = n * 10 + (uint32_t)(*p - '0');
		if (n > WIRE_VERSION_LIMIT)
			return -AR_EPROTO;
		p++;
	}
	*v = n;
	*s = p;
	return 0;
}

int
wire_versions_parse(const char *s, uint32_t *lo, uint32_t *hi)
{
	if (s == NULL || version_number(&s, lo) != 0)
		return -AR_EPROTO;
	if (*s == '\0') {
		*hi = *lo;
		return 0;
	}
	if (*s != '-')
		return -AR_EPROTO;
	s++;
	if (version_number(&s, hi) != 0 || *s != '\0' || *lo > *hi)
		return -AR_EPROTO;
	return 0;
}

int
wire_version_parse(const char *s, uint32_t *v)
{
	if (s == NULL || version_number(&s, v) != 0 || *s != '\0')
		return -AR_EPROTO;
	return 0;
}

int
wire_version_pick(uint32_t lo, uint32_t hi, uint32_t my_lo, uint32_t my_hi,
    uint32_t *v)
{
	uint32_t top = hi < my_hi ? hi : my_hi;
	uint32_t bottom = lo > my_lo ? lo : my_lo;

	if (top < bottom)
		return -AR_EVERSION;
	*v = top;
	return 0;
}

int
wire_get_append(const uint8_t *p, size_t len, struct wire_append *a)
{
	struct cur c;
	const uint8_t *h;
	size_t plen;

	cur_init(&c, p, len);
	cur_str(&c, 2, a->path, WIRE_PATH_MAX, &plen);
	a->path_len = (uint16_t)plen;
	a->size = cur_u64(&c);
	h = cur_bytes(&c, sizeof(a->root));
	if (h != NULL)
		memcpy(a->root, h, sizeof(a->root));
	if (cur_done(&c) != 0 || plen == 0 || !wire_path_valid(a->path, plen))
		return -AR_EPROTO;
	return 0;
}

int
wire_get_block(const uint8_t *p, size_t len, struct wire_block *b)
{
	struct cur c;
	const uint8_t *h;

	cur_init(&c, p, len);
	b->index = cur_u64(&c);
	h = cur_bytes(&c, sizeof(b->hash));
	if (h != NULL)
		memcpy(b->hash, h, sizeof(b->hash));
	return cur_done(&c);
}

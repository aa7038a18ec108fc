/*
 * xattr.c: extended attributes and POSIX ACLs of one entry (xattr.h):
 * the Y frame's codec, reading them on the primary, comparing and
 * applying them on the standby.
 *
 * glibc has no *at form of the xattr calls: a name beneath a directory
 * fd is reached as /proc/self/fd/N/NAME with the l* calls, which follow
 * the directory's magic link but not the last component, so a symlink
 * is never followed and nothing escapes the directory fd.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/types.h>
#include <sys/xattr.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "xattr.h"

/* "/proc/self/fd/" + an int + "/" + a name */
#define XATTR_PATH_MAX (32 + XATTR_NAME_BYTES + 1)

void
xattr_clear(struct xattr_set *x)
{
	x->n = 0;
	x->incomplete = 0;
	x->used = 0;
}

static int
xattr_prefixed(const char *name, size_t len, const char *prefix)
{
	size_t pl = strlen(prefix);

	return len > pl && memcmp(name, prefix, pl) == 0;
}

int
xattr_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > XATTR_NAME_BYTES || memchr(name, '\0', len))
		return 0;
	if (xattr_prefixed(name, len, "user.") ||
	    xattr_prefixed(name, len, "trusted.") ||
	    xattr_prefixed(name, len, "security."))
		return 1;
	return (len == strlen(XATTR_ACL_ACCESS) &&
	    memcmp(name, XATTR_ACL_ACCESS, len) == 0) ||
	    (len == strlen(XATTR_ACL_DEFAULT) &&
	    memcmp(name, XATTR_ACL_DEFAULT, len) == 0);
}

int
xattr_is_acl(const char *name)
{
	return strcmp(name, XATTR_ACL_ACCESS) == 0 ||
	    strcmp(name, XATTR_ACL_DEFAULT) == 0;
}

int
xattr_allowed(const struct xattr_policy *p, const char *name)
{
	size_t len = strlen(name);

	if (xattr_is_acl(name))
		return p->acls;
	if (xattr_prefixed(name, len, "user."))
		return p->user;
	if (xattr_prefixed(name, len, "trusted."))
		return p->trusted;
	if (strcmp(name, "security.selinux") == 0)
		return p->security && p->selinux;
	if (xattr_prefixed(name, len, "security."))
		return p->security;
	return 0;
}

int
xattr_policy_parse(const char *list, struct xattr_policy *p)
{
	const char *s = list, *e;
	size_t n;

	p->user = p->trusted = p->security = 0;
	if (strcmp(list, "none") == 0)
		return 0;
	while (*s != '\0') {
		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		if (*s == '\0')
			break;
		e = s;
		while (*e != '\0' && *e != ',' && *e != ' ' && *e != '\t')
			e++;
		n = (size_t)(e - s);
		if (n == 4 && memcmp(s, "user", 4) == 0)
			p->user = 1;
		else if (n == 7 && memcmp(s, "trusted", 7) == 0)
			p->trusted = 1;
		else if (n == 8 && memcmp(s, "security", 8) == 0)
			p->security = 1;
		else
			return -AR_ECONFIG;
		s = e;
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* The Y frame */

static void
xattr_be(uint8_t *p, uint64_t v, size_t n)
{
	while (n-- > 0) {
		p[n] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
xattr_get_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | *p++;
	return v;
}

int
xattr_put(uint8_t *out, size_t outlen, const struct xattr_set *x)
{
	size_t i, len = 3;

	for (i = 0; i < x->n; i++)
		len += 1 + x->ents[i].name_len + 4 + x->ents[i].value_len;
	if (len > WIRE_MAX_FRAME || WIRE_HDR + len > outlen)
		return -AR_ENOMEM;
	out[0] = WIRE_XATTRS;
	xattr_be(out + 1, len, 4);
	out[WIRE_HDR] = x->incomplete ? XATTR_INCOMPLETE : 0;
	xattr_be(out + WIRE_HDR + 1, x->n, 2);
	len = WIRE_HDR + 3;
	for (i = 0; i < x->n; i++) {
		const struct xattr_ent *e = &x->ents[i];

		out[len++] = (uint8_t)e->name_len;
		memcpy(out + len, e->name, e->name_len);
		len += e->name_len;
		xattr_be(out + len, e->value_len, 4);
		len += 4;
		memcpy(out + len, e->value, e->value_len);
		len += e->value_len;
	}
	return (int)len;
}

/* Byte order of names, a prefix first. */
static int
xattr_cmp_names(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl;
}

/* Append name and value to the set; -AR_ENOMEM past the bounds. */
static int
xattr_add(struct xattr_set *x, const char *name, size_t nlen,
    const void *value, size_t vlen)
{
	struct xattr_ent *e;

	if (x->n == XATTR_NAMES_MAX || vlen > XATTR_VALUE_MAX ||
	    x->used + nlen + 1 + vlen > sizeof(x->buf) ||
	    x->used + nlen + vlen > XATTR_ENTRY_MAX + x->n)
		return -AR_ENOMEM;
	e = &x->ents[x->n++];
	memcpy(x->buf + x->used, name, nlen);
	x->buf[x->used + nlen] = '\0';
	e->name = (const char *)x->buf + x->used;
	e->name_len = nlen;
	x->used += nlen + 1;
	memmove(x->buf + x->used, value, vlen);
	e->value = x->buf + x->used;
	e->value_len = vlen;
	x->used += vlen;
	return 0;
}

int
xattr_get(const uint8_t *p, size_t len, struct xattr_set *x)
{
	size_t off = 3, i, n, nl, vl;

	xattr_clear(x);
	if (len < 3 || (p[0] & ~XATTR_INCOMPLETE) != 0)
		return -AR_EPROTO;
	x->incomplete = (p[0] & XATTR_INCOMPLETE) != 0;
	n = (size_t)xattr_get_be(p + 1, 2);
	if (n > XATTR_NAMES_MAX)
		return -AR_EPROTO;
	for (i = 0; i < n; i++) {
		if (len - off < 1)
			return -AR_EPROTO;
		nl = p[off++];
		if (len - off < nl + 4)
			return -AR_EPROTO;
		if (!xattr_name_valid((const char *)p + off, nl))
			return -AR_EPROTO;
		vl = (size_t)xattr_get_be(p + off + nl, 4);
		if (vl > XATTR_VALUE_MAX || len - off - nl - 4 < vl)
			return -AR_EPROTO;
		/* Strictly sorted: one value per name. */
		if (x->n > 0 && xattr_cmp_names(x->ents[x->n - 1].name,
		    x->ents[x->n - 1].name_len, (const char *)p + off,
		    nl) >= 0)
			return -AR_EPROTO;
		if (xattr_add(x, (const char *)p + off, nl, p + off + nl + 4,
		    vl) != 0)
			return -AR_EPROTO;
		off += nl + 4 + vl;
	}
	return off == len ? 0 : -AR_EPROTO;
}

/* ---------------------------------------------------------------- */
/* I/O */

/* The l* path of dirfd/name; "" (and the f* calls) for dirfd itself. */
static int
xattr_path(char *out, size_t outlen, int dirfd, const char *name)
{
	int n;

	if (name == NULL) {
		out[0] = '\0';
		return 0;
	}
	n = snprintf(out, outlen, "/proc/self/fd/%d/%s", dirfd, name);
	if (n < 0 || (size_t)n >= outlen) {
		errno = ENAMETOOLONG;
		return -AR_EIO;
	}
	return 0;
}

static ssize_t
xattr_list(int fd, const char *path, char *buf, size_t len)
{
	return path[0] == '\0' ? flistxattr(fd, buf, len) :
	    llistxattr(path, buf, len);
}

static ssize_t
xattr_value(int fd, const char *path, const char *name, void *buf,
    size_t len)
{
	return path[0] == '\0' ? fgetxattr(fd, name, buf, len) :
	    lgetxattr(path, name, buf, len);
}

static int
xattr_ent_cmp(const void *pa, const void *pb)
{
	const struct xattr_ent *a = pa, *b = pb;

	return xattr_cmp_names(a->name, a->name_len, b->name, b->name_len);
}

int
xattr_read(int dirfd, const char *name, struct xattr_set *x)
{
	char path[XATTR_PATH_MAX];
	ssize_t n, v;
	size_t off, nl, room;
	char *nm;

	xattr_clear(x);
	if (xattr_path(path, sizeof(path), dirfd, name) != 0)
		return -AR_EIO;
	n = xattr_list(dirfd, path, x->list, sizeof(x->list));
	if (n < 0) {
		if (errno == ENOTSUP || errno == ENODATA)
			return 0;
		if (errno == ERANGE) {
			x->incomplete = 1;
			return 0;
		}
		return -AR_EIO;
	}
	for (off = 0; off < (size_t)n; off += nl + 1) {
		nm = x->list + off;
		nl = strnlen(nm, (size_t)n - off);
		if (!xattr_name_valid(nm, nl))
			continue;	/* not carried (system.nfs4_acl...) */
		if (x->n == XATTR_NAMES_MAX || x->used + nl + 1 >
		    XATTR_ENTRY_MAX + x->n) {
			x->incomplete = 1;
			break;
		}
		room = XATTR_ENTRY_MAX + x->n - x->used - nl;
		if (room > XATTR_VALUE_MAX)
			room = XATTR_VALUE_MAX;
		/* The value goes where xattr_add puts it. */
		v = xattr_value(dirfd, path, nm, x->buf + x->used + nl + 1,
		    room);
		if (v < 0 && errno == ENODATA)
			continue;	/* removed since listed */
		if (v < 0 && errno == ERANGE) {
			x->incomplete = 1;
			continue;
		}
		if (v < 0)
			return -AR_EIO;
		if (xattr_add(x, nm, nl, x->buf + x->used + nl + 1,
		    (size_t)v) != 0) {
			x->incomplete = 1;
			break;
		}
	}
	if (x->n > 1)
		qsort(x->ents, x->n, sizeof(x->ents[0]), xattr_ent_cmp);
	return 0;
}

static const struct xattr_ent *
xattr_find(const struct xattr_set *x, const char *name)
{
	size_t i;

	for (i = 0; i < x->n; i++) {
		if (strcmp(x->ents[i].name, name) == 0)
			return &x->ents[i];
	}
	return NULL;
}

int
xattr_sync(int dirfd, const char *name, const struct xattr_set *want,
    const struct xattr_policy *p, struct xattr_set *local, int *changed)
{
	char path[XATTR_PATH_MAX];
	const struct xattr_ent *w, *l;
	size_t i;
	int r;

	*changed = 0;
	r = xattr_read(dirfd, name, local);
	if (r != 0)
		return r;
	if (xattr_path(path, sizeof(path), dirfd, name) != 0)
		return -AR_EIO;
	for (i = 0; !want->incomplete && i < local->n; i++) {
		l = &local->ents[i];
		if (!xattr_allowed(p, l->name) || xattr_find(want, l->name))
			continue;
		if ((path[0] == '\0' ? fremovexattr(dirfd, l->name) :
		    lremovexattr(path, l->name)) != 0 && errno != ENODATA)
			return -AR_EIO;
		*changed |= xattr_is_acl(l->name) ? XATTR_CHANGED_ACL :
		    XATTR_CHANGED_XATTR;
	}
	for (i = 0; i < want->n; i++) {
		w = &want->ents[i];
		if (!xattr_allowed(p, w->name))
			continue;
		l = xattr_find(local, w->name);
		if (l != NULL && l->value_len == w->value_len &&
		    memcmp(l->value, w->value, w->value_len) == 0)
			continue;
		if ((path[0] == '\0' ? fsetxattr(dirfd, w->name, w->value,
		    w->value_len, 0) : lsetxattr(path, w->name, w->value,
		    w->value_len, 0)) != 0)
			return -AR_EIO;
		*changed |= xattr_is_acl(w->name) ? XATTR_CHANGED_ACL :
		    XATTR_CHANGED_XATTR;
	}
	return 0;
}

/*
 * xattr.h: extended attributes and POSIX ACLs (protocol version
 * WIRE_V_FIDELITY, the Y frame of PROTOCOL.md).
 *
 * A set is every attribute of one entry that the protocol carries: the
 * namespaces user., trusted. and security., and the ACLs
 * system.posix_acl_access and system.posix_acl_default, which Linux
 * holds as xattrs in a portable byte format (numeric ids). Everything is
 * bounded: XATTR_VALUE_MAX bytes per value, XATTR_NAMES_MAX names and
 * XATTR_ENTRY_MAX bytes of names and values per entry; past them a set
 * is marked incomplete, never cut silently. The frame codec is pure;
 * xattr_read and xattr_sync do the I/O, anchored to a directory fd.
 */
#ifndef ASYNCREP_XATTR_H
#define ASYNCREP_XATTR_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define XATTR_VALUE_MAX (64u * 1024)	/* bytes of one value */
#define XATTR_NAME_BYTES 255		/* bytes of one name */
#define XATTR_NAMES_MAX 256		/* names of one entry */
#define XATTR_ENTRY_MAX (128u * 1024)	/* bytes of names and values */
/* The largest Y frame, header included. */
#define XATTR_WIRE_MAX (WIRE_HDR + 3 + XATTR_NAMES_MAX * 5 + \
	XATTR_ENTRY_MAX)
/* Bytes of a name list as llistxattr gives it (the kernel's limit). */
#define XATTR_LIST_BYTES (64u * 1024)

#define XATTR_INCOMPLETE 0x1	/* Y flag: the primary could not send all */

#define XATTR_ACL_ACCESS "system.posix_acl_access"
#define XATTR_ACL_DEFAULT "system.posix_acl_default"

struct xattr_ent {
	const char *name;	/* inside the set's buffer, NUL-terminated */
	size_t name_len;
	const uint8_t *value;	/* inside the set's buffer */
	size_t value_len;
};

struct xattr_set {
	size_t n;
	int incomplete;		/* some attribute did not fit or read */
	struct xattr_ent ents[XATTR_NAMES_MAX];	/* sorted by name bytes */
	size_t used;
	uint8_t buf[XATTR_ENTRY_MAX + XATTR_NAMES_MAX];	/* names (NUL-ended)
							 * and values */
	char list[XATTR_LIST_BYTES];	/* scratch of xattr_read */
};

/* What a standby applies (xattrs =, selinux =, acls = of [standby]). */
struct xattr_policy {
	int user, trusted, security;	/* the namespaces of xattrs = */
	int selinux;			/* security.selinux too */
	int acls;			/* system.posix_acl_* */
};

/* What xattr_sync changed, for the itemize letters a and x. */
#define XATTR_CHANGED_ACL 0x1
#define XATTR_CHANGED_XATTR 0x2

void xattr_clear(struct xattr_set *x);

/* 1 if name is one the protocol carries (a known namespace, or one of
 * the two ACLs; no NUL, 1 to XATTR_NAME_BYTES bytes). */
int xattr_name_valid(const char *name, size_t len);
/* 1 if the name (valid) is an ACL. */
int xattr_is_acl(const char *name);
/* 1 if the policy takes this name. */
int xattr_allowed(const struct xattr_policy *p, const char *name);

/*
 * Parse "user, trusted, security" (any subset, commas and blanks; or
 * "none") into p's namespaces. Returns 0 or -AR_ECONFIG.
 */
int xattr_policy_parse(const char *list, struct xattr_policy *p);

/*
 * The Y frame of the set (header included) into out: its length, or
 * -AR_ENOMEM if it does not fit. A set is sent only when it holds
 * something or is incomplete.
 */
int xattr_put(uint8_t *out, size_t outlen, const struct xattr_set *x);
/* Decode a Y payload: 0, or -AR_EPROTO (a name of another namespace,
 * names not strictly sorted, a length past the limits, trailing bytes). */
int xattr_get(const uint8_t *p, size_t len, struct xattr_set *x);

/*
 * Read the attributes of dirfd/name (name NULL: of dirfd itself),
 * without following a symlink. A file system without xattrs gives an
 * empty set. Returns 0 or -AR_EIO (errno set).
 */
int xattr_read(int dirfd, const char *name, struct xattr_set *x);

/*
 * Make the attributes of dirfd/name (NULL: dirfd) that the policy takes
 * those of want: set what differs, remove what want lacks (not when
 * want is incomplete). local is scratch. *changed gets XATTR_CHANGED_*.
 * Returns 0 or -AR_EIO (errno set: ENOTSUP for a file system without
 * them, EPERM for a namespace this process may not write).
 */
int xattr_sync(int dirfd, const char *name, const struct xattr_set *want,
    const struct xattr_policy *p, struct xattr_set *local, int *changed);

#endif

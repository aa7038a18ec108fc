/*
 * source.c: the identity of the tree a primary serves (source.h): the
 * record SOURCE_FILE in spool_dir, the probe of data_dir, and the rule
 * that refuses another tree or an empty one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <sys/sysmacros.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fs.h"
#include "log.h"
#include "source.h"

#define SOURCE_MAGIC "asyncrep-source 1"

/* Room for a description of one source_id in a message. */
#define SOURCE_DESC_MAX 160

/* ---------------------------------------------------------------- */
/* The record: pure */

int
source_format(const struct source_id *id, char *buf, size_t buflen)
{
	int n;

	n = snprintf(buf, buflen, SOURCE_MAGIC "\nfstype 0x%llx\nfsid 0x%llx\n"
	    "dev %lu:%lu\nino %llu\nmountpoint %d\nnonempty %d\n",
	    (unsigned long long)id->fstype, (unsigned long long)id->fsid,
	    (unsigned long)id->dev_major, (unsigned long)id->dev_minor,
	    (unsigned long long)id->ino, id->mountpoint != 0,
	    id->nonempty != 0);
	if (n < 0 || (size_t)n >= buflen)
		return -AR_ENOMEM;
	return n;
}

/* Where source_parse is in the record. */
struct source_cursor {
	const char *p;
	const char *end;
};

/* The next line, which must be "key VALUE\n": VALUE in *v, *vlen. */
static int
source_line(struct source_cursor *c, const char *key, const char **v,
    size_t *vlen)
{
	size_t klen = strlen(key), left = (size_t)(c->end - c->p);
	const char *nl;

	if (left < klen + 1 || memcmp(c->p, key, klen) != 0 ||
	    c->p[klen] != ' ')
		return -AR_ESTATE;
	*v = c->p + klen + 1;
	nl = memchr(*v, '\n', (size_t)(c->end - *v));
	if (nl == NULL || nl == *v)
		return -AR_ESTATE;
	*vlen = (size_t)(nl - *v);
	c->p = nl + 1;
	return 0;
}

/* Digits of base 10 or 16 (all of len, 1 to 20 of them) into *out. */
static int
source_number(const char *v, size_t len, int base, uint64_t max,
    uint64_t *out)
{
	uint64_t n = 0;
	unsigned d;
	size_t i;

	if (len == 0 || len > 20)
		return -AR_ESTATE;
	for (i = 0; i < len; i++) {
		if (v[i] >= '0' && v[i] <= '9')
			d = (unsigned)(v[i] - '0');
		else if (base == 16 && v[i] >= 'a' && v[i] <= 'f')
			d = (unsigned)(v[i] - 'a' + 10);
		else
			return -AR_ESTATE;
		if (n > (max - d) / (unsigned)base)
			return -AR_ESTATE;
		n = n * (unsigned)base + d;
	}
	*out = n;
	return 0;
}

/* A "0x" hex value of the record. */
static int
source_hex(const char *v, size_t len, uint64_t *out)
{
	if (len < 3 || v[0] != '0' || v[1] != 'x')
		return -AR_ESTATE;
	return source_number(v + 2, len - 2, 16, UINT64_MAX, out);
}

/* A 0 or 1 of the record. */
static int
source_flag(const char *v, size_t len, int *out)
{
	if (len != 1 || (v[0] != '0' && v[0] != '1'))
		return -AR_ESTATE;
	*out = v[0] == '1';
	return 0;
}

int
source_parse(const char *buf, size_t len, struct source_id *id)
{
	struct source_cursor c = { buf, buf + len };
	struct source_id t;
	const char *v, *colon;
	size_t vlen, mlen = strlen(SOURCE_MAGIC);
	uint64_t major, minor;

	memset(&t, 0, sizeof(t));
	if (len < mlen + 1 || memcmp(buf, SOURCE_MAGIC, mlen) != 0 ||
	    buf[mlen] != '\n')
		return -AR_ESTATE;
	c.p += mlen + 1;
	if (source_line(&c, "fstype", &v, &vlen) != 0 ||
	    source_hex(v, vlen, &t.fstype) != 0 ||
	    source_line(&c, "fsid", &v, &vlen) != 0 ||
	    source_hex(v, vlen, &t.fsid) != 0 ||
	    source_line(&c, "dev", &v, &vlen) != 0)
		return -AR_ESTATE;
	colon = memchr(v, ':', vlen);
	if (colon == NULL ||
	    source_number(v, (size_t)(colon - v), 10, UINT32_MAX, &major) != 0 ||
	    source_number(colon + 1, vlen - (size_t)(colon + 1 - v), 10,
	    UINT32_MAX, &minor) != 0)
		return -AR_ESTATE;
	t.dev_major = (uint32_t)major;
	t.dev_minor = (uint32_t)minor;
	if (source_line(&c, "ino", &v, &vlen) != 0 ||
	    source_number(v, vlen, 10, UINT64_MAX, &t.ino) != 0 ||
	    source_line(&c, "mountpoint", &v, &vlen) != 0 ||
	    source_flag(v, vlen, &t.mountpoint) != 0 ||
	    source_line(&c, "nonempty", &v, &vlen) != 0 ||
	    source_flag(v, vlen, &t.nonempty) != 0 || c.p != c.end)
		return -AR_ESTATE;
	*id = t;
	return 0;
}

/*
 * The same filesystem: the same type and id. A filesystem that gives no
 * id is known by its device, unless that is anonymous too (major 0, as
 * for FUSE), which a new mount renumbers: then by its type alone. A
 * device renumbered at boot under the same id is the same filesystem.
 */
int
source_same(const struct source_id *a, const struct source_id *b)
{
	if (a->fstype != b->fstype || a->ino != b->ino)
		return 0;
	if (a->fsid != 0 && b->fsid != 0)
		return a->fsid == b->fsid;
	if (a->fsid != b->fsid)
		return 0;
	if (a->dev_major == 0 && b->dev_major == 0)
		return 1;
	return a->dev_major == b->dev_major && a->dev_minor == b->dev_minor;
}

/* ---------------------------------------------------------------- */
/* Probing data_dir */

/*
 * Whether the directory open as fd (of stat st) is the root of a mount:
 * statx says so, bind mounts included; without it, a parent on another
 * device, or the directory is its own parent (/).
 */
static int
source_mountpoint(int fd, const struct stat *st)
{
	struct stat up;
#if defined(STATX_ATTR_MOUNT_ROOT)
	struct statx sx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_INO, &sx) == 0 &&
	    (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0)
		return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
#endif
	if (fstatat(fd, "..", &up, 0) != 0)
		return 0;
	return up.st_dev != st->st_dev || up.st_ino == st->st_ino;
}

int
source_probe(int rootfd, struct source_id *id)
{
	struct statfs sf;
	struct stat st;
	int fsid[2];
	uint64_t n = 0;

	_Static_assert(sizeof(sf.f_fsid) == sizeof(fsid), "f_fsid is 2 ints");
	memset(id, 0, sizeof(*id));
	if (fstat(rootfd, &st) != 0 || fstatfs(rootfd, &sf) != 0)
		return -AR_EIO;
	memcpy(fsid, &sf.f_fsid, sizeof(fsid));
	id->fstype = (uint64_t)(unsigned long)sf.f_type;
	id->fsid = (uint64_t)(uint32_t)fsid[0] << 32 | (uint32_t)fsid[1];
	id->dev_major = major(st.st_dev);
	id->dev_minor = minor(st.st_dev);
	id->ino = (uint64_t)st.st_ino;
	id->mountpoint = source_mountpoint(rootfd, &st);
	if (fs_count_tree(rootfd, NULL, 1, &n) != 0)
		return -AR_EIO;
	id->nonempty = n > 0;
	return 0;
}

/* ---------------------------------------------------------------- */
/* The rule */

/* A few filesystem types by name, for messages (statfs(2)). */
static const char *
source_type_name(uint64_t t)
{
	switch (t) {
	case 0xef53: return "ext2/3/4";
	case 0x58465342: return "xfs";
	case 0x9123683e: return "btrfs";
	case 0x01021994: return "tmpfs";
	case 0x6969: return "nfs";
	case 0x2fc12fc1: return "zfs";
	case 0x794c7630: return "overlayfs";
	case 0x65735546: return "fuse";
	default: return "type";
	}
}

static const char *
source_describe(const struct source_id *id, char *buf, size_t buflen)
{
	snprintf(buf, buflen, "%s 0x%llx, id %016llx, device %lu:%lu, inode "
	    "%llu, %s, %s", source_type_name(id->fstype),
	    (unsigned long long)id->fstype, (unsigned long long)id->fsid,
	    (unsigned long)id->dev_major, (unsigned long)id->dev_minor,
	    (unsigned long long)id->ino, id->mountpoint ? "a mount point" :
	    "not a mount point", id->nonempty ? "not empty" : "empty");
	return buf;
}

/* Write id as the spool's record, durably. */
static int
source_write(int spool_dirfd, const struct source_id *id)
{
	char buf[SOURCE_MAX];
	int n;

	n = source_format(id, buf, sizeof(buf));
	if (n < 0)
		return n;
	return fs_write_durable(spool_dirfd, SOURCE_FILE, buf, (size_t)n,
	    0644);
}

/* The reason data_dir (now) is not what the record (was) says, in err;
 * 0 if it is. */
static int
source_refusal(const struct source_id *was, const struct source_id *now,
    const char *data_dir, char *err, size_t errlen)
{
	char a[SOURCE_DESC_MAX], b[SOURCE_DESC_MAX];
	const char *reinit = "mount its storage, or serve it anyway as a new "
	    "generation, which every standby compares in full, with asyncrep "
	    "watch --reinit";

	source_describe(was, a, sizeof(a));
	source_describe(now, b, sizeof(b));
	if (was->mountpoint && !now->mountpoint) {
		snprintf(err, errlen, "data directory '%s' is not a mount "
		    "point, but was one when this spool served it: its "
		    "filesystem is not mounted (served: %s; now: %s); %s",
		    data_dir, a, b, reinit);
		return -AR_ESOURCE;
	}
	if (!source_same(was, now)) {
		snprintf(err, errlen, "data directory '%s' is not on the "
		    "filesystem this spool served, or not the same directory "
		    "(served: %s; now: %s); %s", data_dir, a, b, reinit);
		return -AR_ESOURCE;
	}
	if (was->nonempty && !now->nonempty) {
		snprintf(err, errlen, "data directory '%s' is empty, but this "
		    "spool served a tree from it: %s (standbys still refuse to "
		    "delete more than max_delete without --force-delete)",
		    data_dir, reinit);
		return -AR_ESOURCE;
	}
	return 0;
}

int
source_admit(int spool_dirfd, int rootfd, const char *data_dir, int fresh,
    unsigned flags, struct source_id *rec, char *err, size_t errlen)
{
	struct source_id now, was;
	char buf[SOURCE_MAX];
	size_t len;
	int r;

	if (source_probe(rootfd, &now) != 0) {
		snprintf(err, errlen, "data directory '%s': %s", data_dir,
		    strerror(errno));
		return -AR_EIO;
	}
	r = fs_read_entry(spool_dirfd, SOURCE_FILE, buf, sizeof(buf), &len);
	if (r != 0 && errno != ENOENT) {
		snprintf(err, errlen, "spool: cannot read '%s': %s",
		    SOURCE_FILE, strerror(errno));
		return -AR_ESTATE;
	}
	if ((flags & SOURCE_REINIT) != 0) {
		/* The operator said which tree is served from now on. */
	} else if (r == 0) {
		if (source_parse(buf, len, &was) != 0) {
			snprintf(err, errlen, "spool: '%s' is corrupt (re-"
			    "initialise with asyncrep watch --reinit)",
			    SOURCE_FILE);
			return -AR_ESTATE;
		}
		r = source_refusal(&was, &now, data_dir, err, errlen);
		if (r != 0)
			return r;
		if (memcmp(&was, &now, sizeof(now)) == 0) {
			*rec = now;
			return 0;
		}
	} else if (fresh && !now.nonempty &&
	    (flags & SOURCE_ALLOW_EMPTY) == 0) {
		snprintf(err, errlen, "data directory '%s' is empty and the "
		    "spool has no generation yet: if data_dir (or the spool) "
		    "lives on storage that should be mounted, it is not; to "
		    "start replicating an empty tree on purpose, start once "
		    "with --allow-empty", data_dir);
		return -AR_ESOURCE;
	}
	/*
	 * A spool of an older version has no record: it starts now. A
	 * spool that cannot be written (full, read-only) still serves, as
	 * watch does when it cannot record changes; the record is written
	 * when the tree next changes from empty to not, or at the next
	 * start.
	 */
	*rec = now;
	if (source_write(spool_dirfd, &now) != 0)
		log_warn("spool: cannot write '%s': %s", SOURCE_FILE,
		    strerror(errno));
	return 0;
}

int
source_note(int spool_dirfd, int rootfd, struct source_id *rec)
{
	struct source_id now = *rec;
	uint64_t n = 0;
	int r;

	if (fs_count_tree(rootfd, NULL, 1, &n) != 0)
		return -AR_EIO;
	now.nonempty = n > 0;
	if (now.nonempty == rec->nonempty)
		return 0;
	r = source_write(spool_dirfd, &now);
	if (r == 0) {
		*rec = now;
		log_verbose("data directory is %s now: recorded",
		    now.nonempty ? "not empty" : "empty");
	}
	return r;
}

/* ---------------------------------------------------------------- */
/* What a rescue sees */

unsigned
source_fstype_caps(uint64_t fstype)
{
	switch (fstype) {
	case 0x4d44:		/* MSDOS_SUPER_MAGIC (vfat) */
	case 0x2011bab0:	/* EXFAT_SUPER_MAGIC */
	case 0x858458f6:	/* RAMFS_MAGIC */
	case 0x9660:		/* ISOFS_SUPER_MAGIC */
		return 0;
	default:
		return SOURCE_CAP_ALL;
	}
}

/* 1 if errno says the file system has no such thing at all. */
static int
source_unsupported(void)
{
	return errno == ENOTSUP || errno == EOPNOTSUPP;
}

/* 1 if the file system of fd shows the attribute name (or could:
 * "no such attribute" is an answer, "not supported" is not). */
static int
source_shows(int fd, const char *name)
{
	char v[1];

	/* A size of 0 asks how long the value is: no buffer to fill. A
	 * refusal (trusted. as a user) tells nothing either way. */
	if (fgetxattr(fd, name, v, 0) >= 0)
		return 1;
	return !source_unsupported() && errno != EPERM && errno != EACCES;
}

unsigned
source_caps_shown(int rootfd)
{
	unsigned caps = 0;

	/* listxattr says nothing (a file system without xattrs lists the
	 * security module's names): one name of each namespace is asked
	 * for instead, none the primary would have set. */
	if (source_shows(rootfd, "user.asyncrep-probe") ||
	    source_shows(rootfd, "trusted.asyncrep-probe") ||
	    source_shows(rootfd, "security.asyncrep-probe"))
		caps |= SOURCE_CAP_XATTRS;
	/* Linux holds ACLs as xattrs; FUSE says "none set" of an ACL on a
	 * file system that shows no xattrs (sshfs). */
	if ((caps & SOURCE_CAP_XATTRS) != 0 &&
	    source_shows(rootfd, "system.posix_acl_access"))
		caps |= SOURCE_CAP_ACLS;
	return caps;
}

const char *
source_cap_name(unsigned cap)
{
	return cap == SOURCE_CAP_XATTRS ? "extended attributes" :
	    cap == SOURCE_CAP_ACLS ? "POSIX ACLs" : "?";
}

int
source_read(int spool_dirfd, struct source_id *id)
{
	char buf[SOURCE_MAX];
	size_t len;

	if (fs_read_small(spool_dirfd, SOURCE_FILE, buf, sizeof(buf),
	    &len) != 0 || source_parse(buf, len, id) != 0)
		return -AR_ESTATE;
	return 0;
}

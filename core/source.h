/*
 * source.h: the identity of the tree a primary serves, recorded in
 * spool_dir, so that watch never serves another one by accident.
 *
 * A data_dir whose filesystem is not mounted (a boot race, a failed NFS
 * or iSCSI mount) is an empty directory of the filesystem below it, and
 * a standby that compared with it would delete its whole copy. So the
 * spool's file SOURCE_FILE records what watch served: the filesystem
 * (type, id, device), the directory (its inode, whether it is a mount
 * point) and whether the tree held anything; at start, watch refuses
 * (-AR_ESOURCE) a data_dir that is not that tree, or an empty one where
 * it served a tree, and an empty data_dir for a spool that has no
 * generation yet. This module owns SOURCE_FILE: its format (pure, in
 * source_format and source_parse), the probe of data_dir and the rule.
 */
#ifndef ASYNCREP_SOURCE_H
#define ASYNCREP_SOURCE_H

#include <stddef.h>
#include <stdint.h>

/* In spool_dir: the record, replaced durably. */
#define SOURCE_FILE "source"
/* Its size bound: the format's six lines are far shorter. */
#define SOURCE_MAX 512

/* What is known of a data_dir. */
struct source_id {
	uint64_t fstype;	/* statfs f_type */
	uint64_t fsid;		/* statfs f_fsid, both words; 0: none given */
	uint32_t dev_major;	/* st_dev */
	uint32_t dev_minor;
	uint64_t ino;		/* st_ino of data_dir */
	int mountpoint;		/* data_dir is the root of a mount */
	int nonempty;		/* data_dir holds an entry */
};

/* How watch was started (source_admit). */
#define SOURCE_ALLOW_EMPTY 0x1	/* --allow-empty: a spool with no
				 * generation yet may start on an empty
				 * data_dir (never more: a recorded tree
				 * is only overridden by --reinit) */
#define SOURCE_REINIT 0x2	/* --reinit: a new generation, on purpose */

/* The record of id, NUL-terminated, into buf; its length, or -AR_ENOMEM
 * if buflen is too small. */
int source_format(const struct source_id *id, char *buf, size_t buflen);

/* A record (len bytes, no NUL needed) into *id; -AR_ESTATE if it is not
 * exactly the format source_format writes. */
int source_parse(const char *buf, size_t len, struct source_id *id);

/* 1 if a and b are the same directory of the same filesystem. */
int source_same(const struct source_id *a, const struct source_id *b);

/* What the data_dir open as rootfd is now; -AR_EIO (errno kept). */
int source_probe(int rootfd, struct source_id *id);

/*
 * The check at watch's start, under the spool's lock: data_dir (open as
 * rootfd) against the record in the spool open as spool_dirfd, fresh
 * when the spool has no generation yet. Returns 0 and the record now
 * kept in *rec (written durably when it changed), or -AR_ESOURCE with
 * the reason and the way out in err; -AR_ESTATE or -AR_EIO when the
 * record or data_dir cannot be read or written.
 */
int source_admit(int spool_dirfd, int rootfd, const char *data_dir,
    int fresh, unsigned flags, struct source_id *rec, char *err,
    size_t errlen);

/*
 * While watch serves: whether the tree holds anything now, recorded
 * when it changed, so that the record says what was served last.
 */
int source_note(int spool_dirfd, int rootfd, struct source_id *rec);

/*
 * What a rescue can see of the primary's tree. The rescue reads it
 * through a mount (NFS, sshfs, a bind mount) that may not show what
 * the primary's own file system holds: NFSv4 has no POSIX ACLs, sshfs
 * no extended attributes. Each kind the file system the record names
 * may hold and the rescue's view cannot show is not replicated by the
 * rescue: it warns once per kind and its run is partial.
 */
#define SOURCE_CAP_XATTRS 0x1	/* extended attributes */
#define SOURCE_CAP_ACLS 0x2	/* POSIX ACLs */
#define SOURCE_CAP_ALL (SOURCE_CAP_XATTRS | SOURCE_CAP_ACLS)

/* The kinds a file system of type fstype (statfs f_type) may hold: all,
 * but for the types known to lack some (vfat, exfat, ramfs, ...). */
unsigned source_fstype_caps(uint64_t fstype);
/* The kinds the directory open as rootfd shows: a name of each
 * namespace, and the access ACL, asked for on it, and the answer is not
 * "not supported" (ACLs only with xattrs). A probe that fails otherwise
 * counts as shown: the rescue never warns on a guess. */
unsigned source_caps_shown(int rootfd);
/* The kind's name, for messages ("extended attributes"). */
const char *source_cap_name(unsigned cap);
/* The record in the spool open as spool_dirfd: 0, or -AR_ESTATE when
 * it is missing (a spool of an older version) or malformed. */
int source_read(int spool_dirfd, struct source_id *id);

#endif

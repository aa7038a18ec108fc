/*
 * walk.h: sorted listing of one directory, the unit both sides compare.
 *
 * The manifest and the standby's compare proceed one directory at a time
 * in byte order of names, so memory holds one directory's listing, never
 * a tree.
 */
#ifndef ASYNCREP_WALK_H
#define ASYNCREP_WALK_H

#include <stddef.h>
#include <sys/stat.h>

enum walk_type {
	WALK_FILE = 'f',	/* regular file */
	WALK_DIR = 'd',		/* directory */
	WALK_LINK = 'l',	/* symbolic link */
	WALK_OTHER = 'o',	/* device, fifo, socket, as a listing has it */
	/* The special files as the wire names them (from protocol version
	 * WIRE_V_FIDELITY on): walk_special_of tells which a WALK_OTHER is. */
	WALK_FIFO = 'p',
	WALK_SOCK = 's',
	WALK_CHR = 'c',		/* character device */
	WALK_BLK = 'b',		/* block device */
	/* A manifest entry (WIRE_V_FIDELITY) of a regular file that is a
	 * hard link of an earlier entry, whose path is its target. */
	WALK_HARDLINK = 'h',
};

struct walk_ent {
	const char *name;	/* points into the listing's name storage */
	size_t namelen;
	int type;		/* enum walk_type */
	struct stat st;		/* fstatat(AT_SYMLINK_NOFOLLOW) */
};

struct walk_dir {
	struct walk_ent *ents;
	size_t n;
	size_t cap;
	char *names;		/* all names, NUL-separated */
	size_t names_len;
	size_t names_cap;
};

#define WALK_SKIP_TMP 0x1	/* leave out FS_TMP_PREFIX names */
#define WALK_TYPE_ONLY 0x2	/* st holds only the type (from d_type when
				 * the filesystem gives it): no stat */

/* Hard limit of entries in one directory listing. */
#define WALK_MAX_ENTRIES (16u * 1024 * 1024)

/* The enum walk_type of an st_mode. */
int walk_type_of(mode_t mode);
/* WALK_FIFO, WALK_SOCK, WALK_CHR or WALK_BLK for a special st_mode, else
 * 0. */
int walk_special_of(mode_t mode);

void walk_dir_init(struct walk_dir *d);
void walk_dir_release(struct walk_dir *d);

/*
 * List dirfd (not consumed; its offset is rewound) into d, replacing what
 * d held: every name but "." and "..", lstat-ed, sorted by memcmp of the
 * names. Returns 0, -AR_EIO, or -AR_ENOMEM past WALK_MAX_ENTRIES.
 */
int walk_list(int dirfd, int flags, struct walk_dir *d);

/* Binary search for name in a sorted listing; NULL if absent. */
struct walk_ent *walk_find(struct walk_dir *d, const char *name);

#endif

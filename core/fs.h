/*
 * fs.h: every filesystem operation that touches a replicated tree.
 *
 * This module owns confinement and durability. A relative path that came
 * from the wire is only ever resolved beneath an open directory fd, with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) (or a component-by-
 * component O_NOFOLLOW walk where openat2 is missing), so no path and no
 * symlink can lead outside the tree. Durable writes go through one helper:
 * temp file, fsync, rename, fsync directory.
 */
#ifndef ASYNCREP_FS_H
#define ASYNCREP_FS_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Names with this prefix are our temp files: never served, and removed
 * from a standby tree as leftovers of an interrupted run. */
#define FS_TMP_PREFIX ".asyncrep-tmp."

/* Complete write/pread/read, retrying on EINTR and short counts.
 * fs_read_full returns bytes read (< len only at EOF) or -AR_EIO. */
int fs_write_full(int fd, const void *buf, size_t len);
int fs_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
ssize_t fs_read_full(int fd, void *buf, size_t len);
ssize_t fs_pread_full(int fd, void *buf, size_t len, uint64_t off);

/* A whole block of this many zeros at an aligned offset is a hole: not
 * written by fs_pwrite_sparse, sent as a hole by the whole-file sender
 * (serve-files.c), as rsync -S writes them. */
#define FS_HOLE_BLOCK 4096
/* 1 if the block of buf (len bytes at file offset off) that starts at i
 * is a whole aligned FS_HOLE_BLOCK of zeros; *n is its length (to the
 * next aligned offset, or to len). */
int fs_zero_block(const uint8_t *buf, size_t len, size_t i, uint64_t off,
    size_t *n);
/*
 * fs_pwrite_full into a file that reads as zeros at [off, off + len) (a
 * new temp file, whose size the caller sets at the end): each whole
 * aligned FS_HOLE_BLOCK of zeros is skipped, left a hole. *written grows
 * by the bytes actually written.
 */
int fs_pwrite_sparse(int fd, const void *buf, size_t len, uint64_t off,
    uint64_t *written);

/* Open a directory given by an operator (follows symlinks: it is config,
 * not wire data). Returns 0 or -AR_EIO; *fd is O_RDONLY|O_DIRECTORY. */
int fs_open_dir(const char *path, int *fd);

/*
 * Open relpath beneath rootfd without following any symlink and without
 * leaving the tree. relpath must satisfy wire_path_valid() ("" means
 * rootfd itself). flags are open(2) flags (O_NOFOLLOW is added). Returns
 * 0, -AR_EPROTO when the path escapes or crosses a symlink, or -AR_EIO
 * (errno kept) when it does not exist or cannot be opened.
 */
int fs_open_beneath(int rootfd, const char *relpath, int flags, mode_t mode,
    int *fd);

/*
 * Open an operator's absolute path (from a configuration), as it is seen
 * under rootfd: the mount point of another node's storage. Resolved with
 * openat2(RESOLVE_IN_ROOT), so that neither ".." nor a symlink on that
 * storage leads out of it (an absolute symlink means rootfd's tree);
 * where openat2 is missing, with fs_open_beneath, which refuses symlinks
 * and "..". flags are open(2) flags without O_CREAT. Returns 0, -AR_EIO
 * (errno kept) or -AR_EPROTO as fs_open_beneath.
 */
int fs_open_in_root(int rootfd, const char *path, int flags, int *fd);
/* For tests: when non-zero, fs_open_beneath always takes the component-
 * by-component walk, so the path used where openat2 is missing (old
 * kernel, seccomp filter) is exercised on kernels that have it. */
extern int fs_force_fallback;

/*
 * Open the parent directory of relpath beneath rootfd (as above) and
 * point *base at the last component inside relpath. relpath must not be
 * "".
 */
int fs_open_parent(int rootfd, const char *relpath, int *dirfd,
    const char **base);

/*
 * Create a new temp file in dirfd named FS_TMP_PREFIX + base-derived
 * random suffix, O_RDWR|O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600. The name
 * is written into name (size namelen, >= NAME_MAX + 1).
 */
int fs_tmpfile(int dirfd, const char *base, int *fd, char *name,
    size_t namelen);

/* fsync a directory fd; -AR_EIO on failure. */
int fs_fsync_dir(int dirfd);

/*
 * Replace dirfd/name with len bytes of data, durably: temp file, write,
 * fsync, rename over name, fsync dirfd. For state and small files.
 */
int fs_write_durable(int dirfd, const char *name, const void *data,
    size_t len, mode_t mode);

/*
 * Read a whole small file dirfd/name (AT_FDCWD and a path work too) into
 * buf (size buflen, NUL-terminated); -AR_ENOMEM if it does not fit,
 * -AR_EIO if it cannot be read.
 */
int fs_read_small(int dirfd, const char *name, char *buf, size_t buflen,
    size_t *len);
/*
 * fs_read_small of an entry of one of our directories (a spool, a
 * state_dir, the storage a rescue reads under --root): a symlink there
 * is refused (-AR_EIO, errno ELOOP), never followed out of it.
 */
int fs_read_entry(int dirfd, const char *name, char *buf, size_t buflen,
    size_t *len);

/*
 * Remove dirfd/name whatever it is; a directory is removed with all it
 * holds, never following a symlink. ENOENT is success.
 */
int fs_remove_tree(int dirfd, const char *name);
/*
 * fs_remove_tree, but the blocks of a big regular file it unlinks are
 * freed by a thread of the module's own, after the call returns (the
 * name is gone before it does): what a follower deletes holds back no
 * later batch. fs.c says why.
 */
int fs_remove_tree_bg(int dirfd, const char *name);
/*
 * Wait, at most timeout_ms, until the release thread has freed the
 * blocks of every file it was given: 1 when it had some and is done (the
 * free space is worth asking again), 0 when it had none, -1 when it is
 * still at it.
 */
int fs_release_wait(unsigned timeout_ms);
/* For tests: hold (1) or let go (0) the release thread. */
void fs_release_hold(int hold);

/* Data of a big file written in order: [end - len, end) was just
 * written to fd; its writeback is started, and bounded (fs.c). */
#define FS_WRITEBACK_CHUNK (8u * 1024 * 1024)
void fs_writeback(int fd, uint64_t end, uint64_t len);

/*
 * A directory stream of dirfd in *dir, read from the top: on a dup of
 * dirfd, which stays open (their offset is shared). Returns 0 or
 * -AR_EIO; closedir(*dir) ends it.
 */
int fs_opendir(int dirfd, DIR **dir);

/*
 * Add to *count the entries beneath dirfd/name (name NULL: dirfd
 * itself), at every depth, leaving our temp files out and never
 * following a symlink, until *count reaches limit. What
 * fs_remove_tree would remove, less the directory itself: a name that
 * is not a directory holds nothing. Returns 0, -AR_EIO, or -AR_ENOMEM
 * past the depth fs_remove_tree descends to.
 */
int fs_count_tree(int dirfd, const char *name, uint64_t limit,
    uint64_t *count);

/*
 * Create (or keep) the directories of a path made from an operator's
 * config (mkdir -p, mode 0700 for new ones). Returns 0 or -AR_EIO.
 */
int fs_mkdir_p(const char *path, mode_t mode);

#endif

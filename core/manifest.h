/*
 * manifest.h: the primary's streamed description of its tree.
 *
 * A pull generator: each manifest_read() fills the caller's buffer with
 * the next frames (PROTOCOL.md: directory blocks of sorted entries, depth
 * first). It holds one sorted listing per directory level on the current
 * path, never the tree. Symlinks are described, never followed; our temp
 * files are left out, and so are devices, fifos and sockets below protocol
 * version WIRE_V_FIDELITY.
 */
#ifndef ASYNCREP_MANIFEST_H
#define ASYNCREP_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire.h"

struct manifest;

/* Walk the tree under rootfd (not consumed). */
int manifest_new(int rootfd, struct manifest **out);
/* Walk only the subtree at path (a directory beneath rootfd): the first
 * block is that directory's. -AR_EIO (errno set) if it is not one. */
int manifest_new_at(int rootfd, const char *path, size_t len,
    struct manifest **out);
/* Returns bytes written to buf (> 0), 0 at the end, or a negative error
 * (the stream then already ends with an X frame, if there was room). */
ssize_t manifest_read(struct manifest *m, void *buf, size_t len);
/* Leave out what x excludes (call before the first read). */
struct exclude;
void manifest_set_exclude(struct manifest *m, const struct exclude *x);
/* The protocol version of the request (default 1; call before the first
 * read): from WIRE_V_FIDELITY on, special files are listed, the first
 * P frame is followed by an A frame, the directory's own state, and an
 * entry with xattrs is preceded by a Y frame. 0 or -AR_ENOMEM. */
int manifest_set_version(struct manifest *m, uint32_t version);

/*
 * The Y frame of dirfd/name (name NULL: dirfd itself; path for the
 * warnings) into out, when it has xattrs or could not read them all: its
 * length, 0 when there is nothing to send, or a negative error. xs is
 * scratch. hidden: the tree is seen through a mount that cannot show
 * all of them (a rescue's, source.h): every set is sent incomplete, so
 * that the standby removes none of what it holds.
 */
struct xattr_set;
int manifest_put_xattrs(uint8_t *out, size_t outlen, int dirfd,
    const char *name, const char *path, size_t plen, struct xattr_set *xs,
    int hidden);
/* A rescue's manifest: its sets are incomplete (manifest_put_xattrs). */
void manifest_set_hidden(struct manifest *m, int hidden);
void manifest_free(struct manifest *m);

/* Fill a wire entry from a stat (no name, no target); type is a walk
 * type of the wire (a special's, for a special file). */
struct stat;
void manifest_entry_from_stat(struct wire_entry *e, int type,
    const struct stat *st);

#endif

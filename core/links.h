/*
 * links.h: hard-link groups of the primary's tree (protocol version
 * WIRE_V_FIDELITY): regular files with more than one link, keyed by
 * (device, inode), each remembered with the first path a manifest
 * listed it under, which the later names of the group name as their
 * target (an E frame of type 'h').
 */
#ifndef ASYNCREP_LINKS_H
#define ASYNCREP_LINKS_H

#include <stddef.h>
#include <sys/types.h>

/* Inodes remembered in one manifest; past it, later names go as copies. */
#define LINKS_MAX (1u << 22)

struct links;

int links_new(struct links **out);
void links_free(struct links *l);

/*
 * The inode (dev, ino) listed at path (len bytes): when an earlier path
 * of it is known, *target points to it (NUL-terminated, *tlen bytes,
 * owned by l) and 1 is returned; else path is remembered and 0 is
 * returned (0 too, and nothing remembered, past LINKS_MAX). -AR_ENOMEM
 * when memory runs out.
 */
int links_find_or_add(struct links *l, dev_t dev, ino_t ino,
    const char *path, size_t len, const char **target, size_t *tlen);

#endif

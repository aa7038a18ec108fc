/*
 * idnames.h: owners by name (map_users, protocol version WIRE_V_NAMES,
 * the I frame of PROTOCOL.md), as rsync does without --numeric-ids.
 *
 * The server side (idnames_sent) names, once per stream, the uids and
 * gids that the entries of a manifest or of a batch of changes use,
 * their owner and group and the qualifiers of their POSIX ACLs, as the
 * server's host calls them (getpwuid_r, getgrgid_r). The standby side
 * (idnames_map) resolves each name through the standby's own passwd
 * and group (getpwnam_r, getgrnam_r) and then gives every id of the
 * primary the standby's id of the same name. Id 0 is never named nor
 * mapped; an id without a name there, or a name unknown here, keeps
 * its number. Both tables are bounded (IDNAMES_MAX per kind); past it,
 * ids keep their numbers. The ACL rewriting is pure (unit tested).
 */
#ifndef ASYNCREP_IDNAMES_H
#define ASYNCREP_IDNAMES_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"
#include "xattr.h"

/* Ids of each kind named in one stream, and held by one standby. */
#define IDNAMES_MAX 4096
/* I frames of one answer at most: each id is named once. */
#define IDNAMES_PER_ANSWER (2u * IDNAMES_MAX)
/* I frames before one entry at most (owner, group, ACL qualifiers);
 * further qualifiers are named before a later entry. */
#define IDNAMES_ENTRY_MAX 32
/* Room an entry's I frames may take in an output buffer. */
#define IDNAMES_ROOM (IDNAMES_ENTRY_MAX * (WIRE_HDR + 6 + WIRE_IDNAME_MAX))

/* ---------------------------------------------------------------- */
/* The server: what one stream has named */

struct idnames_sent;

int idnames_sent_new(struct idnames_sent **out);
void idnames_sent_free(struct idnames_sent *t);

/*
 * The I frames of uid, gid and the ACL qualifiers of xs (NULL: none)
 * that this stream has not named yet, into out (outlen bytes): the
 * bytes written (0 when there is nothing to name), or -AR_ENOMEM. An id
 * without a name on this host is looked up once and never sent.
 */
int idnames_put(struct idnames_sent *t, uint32_t uid, uint32_t gid,
    const struct xattr_set *xs, uint8_t *out, size_t outlen);

/* ---------------------------------------------------------------- */
/* The standby: the primary's ids, as this host's */

struct idnames_map;

int idnames_map_new(struct idnames_map **out);
void idnames_map_free(struct idnames_map *m);

/* An I frame: what n's name is here (once per id and name). 0, or
 * -AR_ENOMEM. Thread-safe, as are the lookups below (lanes). */
int idnames_learn(struct idnames_map *m, const struct wire_idname *n);
/* The local id of the primary's id (itself when not mapped). */
uint32_t idnames_uid(struct idnames_map *m, uint32_t id);
uint32_t idnames_gid(struct idnames_map *m, uint32_t id);
/* e->uid and e->gid made local. */
void idnames_entry(struct idnames_map *m, struct wire_entry *e);

/*
 * The qualifiers of the ACL_USER and ACL_GROUP entries of an ACL value
 * (the kernel's system.posix_acl_* byte format) mapped in place, and
 * each run of them sorted again by id (as libacl keeps them). m NULL:
 * identity. 0, or -AR_EPROTO for a value that is not an ACL (left as
 * it is).
 */
int idnames_acl(struct idnames_map *m, uint8_t *value, size_t len);

/* Calls fn(arg, kind, id) for each named qualifier of an ACL value
 * (the server's side of idnames_acl). */
typedef void idnames_acl_cb(void *arg, uint8_t kind, uint32_t id);
void idnames_acl_ids(const uint8_t *value, size_t len, idnames_acl_cb *fn,
    void *arg);

#endif

/*
 * idnames.c: owners by name (see idnames.h).
 */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "idnames.h"

/* Slots of a table: both kinds, at most half full. */
#define IDNAMES_SLOTS (4u * IDNAMES_MAX)
/* Bytes a passwd or group lookup may take (a group with many members). */
#define IDNAMES_BUF_START 16384
#define IDNAMES_BUF_MAX (1u << 20)

/* The kernel's ACL format (linux/posix_acl_xattr.h), little-endian. */
#define IDNAMES_ACL_VERSION 2
#define IDNAMES_ACL_HDR 4
#define IDNAMES_ACL_ENT 8
#define IDNAMES_ACL_USER 0x02
#define IDNAMES_ACL_GROUP 0x08

/* One slot: key 0 is empty; else kind << 32 | id (kind is not 0). */
struct idnames_slot {
	uint64_t key;
	uint64_t name_hash;	/* map: the name it was resolved from */
	uint32_t local;		/* map: the id here */
};

struct idnames_tab {
	struct idnames_slot *slots;
	size_t count[2];	/* users, groups */
};

struct idnames_sent {
	struct idnames_tab tab;
	char name[WIRE_IDNAME_MAX + 1];
};

struct idnames_map {
	struct idnames_tab tab;
	pthread_mutex_t lock;
};

/* ---------------------------------------------------------------- */
/* The table */

static int
idnames_tab_init(struct idnames_tab *t)
{
	t->slots = calloc(IDNAMES_SLOTS, sizeof(*t->slots));
	t->count[0] = t->count[1] = 0;
	return t->slots != NULL ? 0 : -AR_ENOMEM;
}

static uint64_t
idnames_key(uint8_t kind, uint32_t id)
{
	return (uint64_t)kind << 32 | id;
}

static size_t
idnames_kind_index(uint8_t kind)
{
	return kind == WIRE_ID_USER ? 0 : 1;
}

/* The slot of key, or the empty slot where it would go. */
static struct idnames_slot *
idnames_tab_slot(struct idnames_tab *t, uint64_t key)
{
	size_t i = (size_t)((key * UINT64_C(0x9e3779b97f4a7c15)) >> 40) %
	    IDNAMES_SLOTS;

	while (t->slots[i].key != 0 && t->slots[i].key != key)
		i = (i + 1) % IDNAMES_SLOTS;
	return &t->slots[i];
}

/* The slot of (kind, id), added when new: NULL when the kind is full. */
static struct idnames_slot *
idnames_tab_add(struct idnames_tab *t, uint8_t kind, uint32_t id, int *added)
{
	uint64_t key = idnames_key(kind, id);
	struct idnames_slot *sl = idnames_tab_slot(t, key);
	size_t k = idnames_kind_index(kind);

	*added = 0;
	if (sl->key == key)
		return sl;
	if (t->count[k] >= IDNAMES_MAX)
		return NULL;
	sl->key = key;
	t->count[k]++;
	*added = 1;
	return sl;
}

static uint64_t
idnames_hash(const char *s, size_t len)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

/* ---------------------------------------------------------------- */
/* The system's databases */

/*
 * One lookup of the passwd or group database: by id (name NULL) or by
 * name. On success, *id and name (WIRE_IDNAME_MAX + 1 bytes, when
 * by id) hold the answer and 0 is returned; 1 when there is none (or
 * the name may not travel); -AR_ENOMEM.
 */
static int
idnames_lookup(uint8_t kind, uint32_t *id, const char *byname, char *name)
{
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	size_t cap = IDNAMES_BUF_START, len;
	const char *found;
	char *buf;
	int e;

	for (;;) {
		buf = malloc(cap);
		if (buf == NULL)
			return -AR_ENOMEM;
		if (kind == WIRE_ID_USER)
			e = byname != NULL ? getpwnam_r(byname, &pw, buf, cap,
			    &pwp) : getpwuid_r((uid_t)*id, &pw, buf, cap,
			    &pwp);
		else
			e = byname != NULL ? getgrnam_r(byname, &gr, buf, cap,
			    &grp) : getgrgid_r((gid_t)*id, &gr, buf, cap,
			    &grp);
		if (e != ERANGE || cap >= IDNAMES_BUF_MAX)
			break;
		free(buf);
		cap *= 2;
	}
	if (kind == WIRE_ID_USER ? pwp == NULL : grp == NULL) {
		free(buf);
		return 1;
	}
	if (byname != NULL) {
		*id = kind == WIRE_ID_USER ? (uint32_t)pw.pw_uid :
		    (uint32_t)gr.gr_gid;
		free(buf);
		return 0;
	}
	found = kind == WIRE_ID_USER ? pw.pw_name : gr.gr_name;
	len = strlen(found);
	if (!wire_idname_valid(found, len)) {
		free(buf);
		return 1;
	}
	memcpy(name, found, len + 1);
	free(buf);
	return 0;
}

/* ---------------------------------------------------------------- */
/* ACL values */

static uint32_t
idnames_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint16_t
idnames_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void
idnames_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static int
idnames_acl_ok(const uint8_t *value, size_t len)
{
	return len >= IDNAMES_ACL_HDR &&
	    (len - IDNAMES_ACL_HDR) % IDNAMES_ACL_ENT == 0 &&
	    idnames_le32(value) == IDNAMES_ACL_VERSION;
}

void
idnames_acl_ids(const uint8_t *value, size_t len, idnames_acl_cb *fn,
    void *arg)
{
	size_t off;
	uint16_t tag;

	if (!idnames_acl_ok(value, len))
		return;
	for (off = IDNAMES_ACL_HDR; off < len; off += IDNAMES_ACL_ENT) {
		tag = idnames_le16(value + off);
		if (tag == IDNAMES_ACL_USER)
			fn(arg, WIRE_ID_USER, idnames_le32(value + off + 4));
		else if (tag == IDNAMES_ACL_GROUP)
			fn(arg, WIRE_ID_GROUP, idnames_le32(value + off + 4));
	}
}

/* Sort the entries [from, to) of an ACL by id (a run of one tag; a few
 * entries, insertion sort). */
static void
idnames_acl_sort(uint8_t *value, size_t from, size_t to)
{
	uint8_t tmp[IDNAMES_ACL_ENT];
	size_t i, j;

	for (i = from + IDNAMES_ACL_ENT; i < to; i += IDNAMES_ACL_ENT) {
		memcpy(tmp, value + i, IDNAMES_ACL_ENT);
		for (j = i; j > from && idnames_le32(value + j -
		    IDNAMES_ACL_ENT + 4) > idnames_le32(tmp + 4);
		    j -= IDNAMES_ACL_ENT)
			memcpy(value + j, value + j - IDNAMES_ACL_ENT,
			    IDNAMES_ACL_ENT);
		memcpy(value + j, tmp, IDNAMES_ACL_ENT);
	}
}

int
idnames_acl(struct idnames_map *m, uint8_t *value, size_t len)
{
	size_t off, run = 0;
	uint16_t tag, run_tag = 0;
	uint32_t id;

	if (!idnames_acl_ok(value, len))
		return -AR_EPROTO;
	if (m == NULL)
		return 0;
	for (off = IDNAMES_ACL_HDR; off <= len; off += IDNAMES_ACL_ENT) {
		tag = off < len ? idnames_le16(value + off) : 0;
		if (tag != run_tag) {
			if (run_tag == IDNAMES_ACL_USER ||
			    run_tag == IDNAMES_ACL_GROUP)
				idnames_acl_sort(value, run, off);
			run = off;
			run_tag = tag;
		}
		if (off == len)
			break;
		if (tag != IDNAMES_ACL_USER && tag != IDNAMES_ACL_GROUP)
			continue;
		id = idnames_le32(value + off + 4);
		id = tag == IDNAMES_ACL_USER ? idnames_uid(m, id) :
		    idnames_gid(m, id);
		idnames_put_le32(value + off + 4, id);
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* The server */

int
idnames_sent_new(struct idnames_sent **out)
{
	struct idnames_sent *t = malloc(sizeof(*t));

	*out = NULL;
	if (t == NULL)
		return -AR_ENOMEM;
	/* The table (384 KiB) comes with the first id to name: an answer
	 * of root's files names none, and one comes with every append. */
	t->tab.slots = NULL;
	t->tab.count[0] = t->tab.count[1] = 0;
	*out = t;
	return 0;
}

void
idnames_sent_free(struct idnames_sent *t)
{
	if (t == NULL)
		return;
	free(t->tab.slots);
	free(t);
}

/* What idnames_put writes, through idnames_acl_ids. */
struct idnames_out {
	struct idnames_sent *t;
	uint8_t *out;
	size_t outlen, len;
	unsigned frames;
	int err;
};

static void
idnames_put_one(void *arg, uint8_t kind, uint32_t id)
{
	struct idnames_out *o = arg;
	struct idnames_slot *sl;
	int added, n;

	if (id == 0 || o->err != 0 || o->frames >= IDNAMES_ENTRY_MAX)
		return;
	if (o->t->tab.slots == NULL && idnames_tab_init(&o->t->tab) != 0) {
		o->err = -AR_ENOMEM;
		return;
	}
	sl = idnames_tab_add(&o->t->tab, kind, id, &added);
	if (sl == NULL || !added)
		return;
	/* Marked as named before the lookup: whatever it answers, this
	 * stream asks once (an open-addressed slot is never taken back). */
	n = idnames_lookup(kind, &id, NULL, o->t->name);
	if (n < 0) {
		o->err = n;
		return;
	}
	if (n != 0)
		return;		/* no name here: stays a number */
	n = wire_put_idname(o->out + o->len, o->outlen - o->len, kind, id,
	    o->t->name, strlen(o->t->name));
	if (n < 0) {
		o->err = n;
		return;
	}
	o->len += (size_t)n;
	o->frames++;
}

int
idnames_put(struct idnames_sent *t, uint32_t uid, uint32_t gid,
    const struct xattr_set *xs, uint8_t *out, size_t outlen)
{
	struct idnames_out o;
	size_t i;

	o.t = t;
	o.out = out;
	o.outlen = outlen;
	o.len = 0;
	o.frames = 0;
	o.err = 0;
	idnames_put_one(&o, WIRE_ID_USER, uid);
	idnames_put_one(&o, WIRE_ID_GROUP, gid);
	for (i = 0; xs != NULL && i < xs->n; i++)
		if (xattr_is_acl(xs->ents[i].name))
			idnames_acl_ids(xs->ents[i].value,
			    xs->ents[i].value_len, idnames_put_one, &o);
	if (o.err != 0)
		return o.err;
	return (int)o.len;
}

/* ---------------------------------------------------------------- */
/* The standby */

int
idnames_map_new(struct idnames_map **out)
{
	struct idnames_map *m = malloc(sizeof(*m));

	*out = NULL;
	if (m == NULL)
		return -AR_ENOMEM;
	if (idnames_tab_init(&m->tab) != 0) {
		free(m);
		return -AR_ENOMEM;
	}
	if (pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m->tab.slots);
		free(m);
		return -AR_ENOMEM;
	}
	*out = m;
	return 0;
}

void
idnames_map_free(struct idnames_map *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->tab.slots);
	free(m);
}

int
idnames_learn(struct idnames_map *m, const struct wire_idname *n)
{
	uint64_t h = idnames_hash(n->name, n->name_len);
	struct idnames_slot *sl;
	uint32_t local = n->id;
	int added, r;

	pthread_mutex_lock(&m->lock);
	sl = idnames_tab_add(&m->tab, n->kind, n->id, &added);
	if (sl == NULL || (!added && sl->name_hash == h)) {
		pthread_mutex_unlock(&m->lock);
		return 0;	/* full, or known: the number, or as before */
	}
	pthread_mutex_unlock(&m->lock);
	/* Not under the lock: the lookup may ask a directory service. */
	r = idnames_lookup(n->kind, &local, n->name, NULL);
	if (r < 0)
		return r;
	if (r != 0)
		local = n->id;	/* unknown here: the number */
	pthread_mutex_lock(&m->lock);
	sl = idnames_tab_slot(&m->tab, idnames_key(n->kind, n->id));
	sl->local = local;
	sl->name_hash = h;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static uint32_t
idnames_local(struct idnames_map *m, uint8_t kind, uint32_t id)
{
	struct idnames_slot *sl;
	uint32_t v = id;

	if (m == NULL || id == 0)
		return id;
	pthread_mutex_lock(&m->lock);
	sl = idnames_tab_slot(&m->tab, idnames_key(kind, id));
	if (sl->key != 0 && sl->name_hash != 0)
		v = sl->local;
	pthread_mutex_unlock(&m->lock);
	return v;
}

uint32_t
idnames_uid(struct idnames_map *m, uint32_t id)
{
	return idnames_local(m, WIRE_ID_USER, id);
}

uint32_t
idnames_gid(struct idnames_map *m, uint32_t id)
{
	return idnames_local(m, WIRE_ID_GROUP, id);
}

void
idnames_entry(struct idnames_map *m, struct wire_entry *e)
{
	e->uid = idnames_uid(m, e->uid);
	e->gid = idnames_gid(m, e->gid);
}

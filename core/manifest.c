/*
 * manifest.c: the manifest stream of manifest.h: one sorted listing per
 * level of the current path, turned into P and E frames depth first.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "error.h"
#include "exclude.h"
#include "fs.h"
#include "idnames.h"
#include "links.h"
#include "log.h"
#include "manifest.h"
#include "util.h"
#include "walk.h"
#include "xattr.h"

/* Deepest directory nesting served: the root and the 2048 directories of
 * the longest valid path ("a/a/.../a", WIRE_PATH_MAX bytes). */
#define MANIFEST_MAX_DEPTH ((WIRE_PATH_MAX + 1) / 2 + 1)
/* Room for the largest frame we emit (an entry with path and target). */
#define MANIFEST_OUT (2 * (WIRE_HDR + 32 + WIRE_PATH_MAX + WIRE_TARGET_MAX))
/* Kept free before an entry: the entry, and its Y frame before it. */
#define MANIFEST_ROOM (MANIFEST_OUT / 2 + XATTR_WIRE_MAX + IDNAMES_ROOM)

struct manifest_level {
	int fd;
	size_t path_len;	/* bytes of this directory's path in m->path */
	struct walk_dir list;
	int header_sent;	/* the P frame is out */
	size_t emit;		/* next entry to send as an E frame */
	size_t next;		/* next child to consider for descent */
};

struct manifest {
	struct manifest_level *levels;
	size_t depth;		/* levels in use */
	size_t cap;
	char path[WIRE_PATH_MAX + 2];
	uint8_t out[MANIFEST_OUT + XATTR_WIRE_MAX + IDNAMES_ROOM];
	size_t out_len, out_pos;
	uint64_t count;
	int done;
	struct wire_entry ent;
	const struct exclude *exclude;
	char xpath[WIRE_PATH_MAX + 2];	/* scratch for exclude matching */
	uint32_t version;		/* the request's protocol version */
	int attrs_sent;			/* the A frame of the top is out */
	struct xattr_set *xs;		/* WIRE_V_FIDELITY: scratch */
	struct links *links;		/* WIRE_V_FIDELITY: hard links */
	struct idnames_sent *names;	/* WIRE_V_NAMES: ids named */
	int xs_read;			/* m->xs is the current entry's */
	int hidden;			/* xattrs not all shown (rescue) */
	char cpath[WIRE_PATH_MAX + 2];	/* the current child's path */
};

void
manifest_entry_from_stat(struct wire_entry *e, int type, const struct stat *st)
{
	e->type = (uint8_t)type;
	e->size = type == WALK_FILE ? (uint64_t)st->st_size : 0;
	if (type == WALK_CHR || type == WALK_BLK)
		e->size = wire_rdev(major(st->st_rdev), minor(st->st_rdev));
	e->mtime_sec = st->st_mtim.tv_sec;
	e->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	e->mode = st->st_mode & 07777;
	e->uid = st->st_uid;
	e->gid = st->st_gid;
	e->target_len = 0;
	e->target[0] = '\0';
}

static int
manifest_level_push(struct manifest *m, int fd, size_t path_len)
{
	struct manifest_level *lv;
	int r, saved;

	assert(m->depth <= MANIFEST_MAX_DEPTH);
	if (m->depth == MANIFEST_MAX_DEPTH) {
		close(fd);
		return -AR_ENOMEM;
	}
	if (util_grow(&m->levels, &m->cap, m->depth + 1, sizeof(*m->levels),
	    16) != 0) {
		close(fd);
		return -AR_ENOMEM;
	}
	lv = &m->levels[m->depth];
	memset(lv, 0, sizeof(*lv));
	lv->fd = fd;
	lv->path_len = path_len;
	walk_dir_init(&lv->list);
	r = walk_list(fd, WALK_SKIP_TMP, &lv->list);
	if (r != 0) {
		saved = errno;
		walk_dir_release(&lv->list);
		close(fd);
		errno = saved;
		return r;
	}
	m->depth++;
	return 0;
}

static void
manifest_level_pop(struct manifest *m)
{
	struct manifest_level *lv;

	assert(m->depth > 0);
	lv = &m->levels[--m->depth];
	walk_dir_release(&lv->list);
	close(lv->fd);
}

static int
manifest_fits(const struct walk_ent *we, const struct manifest_level *lv)
{
	return we->namelen <= WIRE_NAME_MAX &&
	    lv->path_len + 1 + we->namelen <= WIRE_PATH_MAX;
}

/* Whether the exclude patterns leave this child out. */
static int
manifest_excluded(struct manifest *m, const struct manifest_level *lv,
    const struct walk_ent *we)
{
	size_t base = lv->path_len;

	if (m->exclude == NULL)
		return 0;
	memcpy(m->xpath, m->path, base);
	if (base > 0)
		m->xpath[base++] = '/';
	memcpy(m->xpath + base, we->name, we->namelen);
	m->xpath[base + we->namelen] = '\0';
	return exclude_match(m->exclude, m->xpath, base + we->namelen,
	    we->type == WALK_DIR);
}

void
manifest_set_exclude(struct manifest *m, const struct exclude *x)
{
	m->exclude = x;
}

int
manifest_set_version(struct manifest *m, uint32_t version)
{
	m->version = version;
	if (version >= WIRE_V_FIDELITY && m->xs == NULL) {
		m->xs = malloc(sizeof(*m->xs));
		if (m->xs == NULL)
			return -AR_ENOMEM;
	}
	if (version >= WIRE_V_NAMES && m->names == NULL &&
	    idnames_sent_new(&m->names) != 0)
		return -AR_ENOMEM;
	if (version >= WIRE_V_FIDELITY && m->links == NULL)
		return links_new(&m->links);
	return 0;
}

void
manifest_set_hidden(struct manifest *m, int hidden)
{
	m->hidden = hidden;
}

int
manifest_put_xattrs(uint8_t *out, size_t outlen, int dirfd,
    const char *name, const char *path, size_t plen, struct xattr_set *xs,
    int hidden)
{
	char esc[LOG_ESC_MAX];

	if (hidden) {
		/* Warned once by the rescue: what is shown, incomplete. */
		if (xattr_read(dirfd, name, xs) != 0)
			xattr_clear(xs);
		xs->incomplete = 1;
	} else if (xattr_read(dirfd, name, xs) != 0) {
		log_warn("'%s': cannot read its extended attributes: %s",
		    log_escape(path, plen, esc, sizeof(esc)), strerror(errno));
		xattr_clear(xs);
		xs->incomplete = 1;
	} else if (xs->incomplete)
		log_warn("'%s': extended attributes past the limits (%u "
		    "names, %u bytes each, %u bytes in all) are not "
		    "replicated", log_escape(path, plen, esc, sizeof(esc)),
		    XATTR_NAMES_MAX, XATTR_VALUE_MAX, XATTR_ENTRY_MAX);
	if (xs->n == 0 && !xs->incomplete)
		return 0;
	return xattr_put(out, outlen, xs);
}

/* The Y frame of dirfd/name (NULL: dirfd), at path, when it has any. */
static int
manifest_emit_xattrs(struct manifest *m, int dirfd, const char *name,
    const char *path, size_t path_len)
{
	int n;

	m->xs_read = 0;
	if (m->version < WIRE_V_FIDELITY)
		return 0;
	n = manifest_put_xattrs(m->out + m->out_len,
	    sizeof(m->out) - m->out_len, dirfd, name, path, path_len,
	    m->xs, m->hidden);
	if (n < 0)
		return n;
	m->out_len += (size_t)n;
	m->xs_read = 1;
	return 0;
}

/* WIRE_V_NAMES: the I frames of the ids e and its ACLs use, not named
 * yet in this manifest, before its E or A frame. */
static int
manifest_emit_names(struct manifest *m, const struct wire_entry *e)
{
	int n;

	if (m->names == NULL)
		return 0;
	n = idnames_put(m->names, e->uid, e->gid, m->xs_read ? m->xs : NULL,
	    m->out + m->out_len, sizeof(m->out) - m->out_len);
	if (n < 0)
		return n;
	m->out_len += (size_t)n;
	return 0;
}

/* The A frame: the state of the top directory itself. */
static int
manifest_emit_attrs(struct manifest *m, struct manifest_level *lv)
{
	struct wire_entry *e = &m->ent;
	struct stat st;
	int n;

	if (fstat(lv->fd, &st) != 0)
		return -AR_EIO;
	n = manifest_emit_xattrs(m, lv->fd, NULL, m->path, lv->path_len);
	if (n != 0)
		return n;
	manifest_entry_from_stat(e, WALK_DIR, &st);
	memcpy(e->name, m->path, lv->path_len);
	e->name[lv->path_len] = '\0';
	e->name_len = (uint16_t)lv->path_len;
	n = manifest_emit_names(m, e);
	if (n != 0)
		return n;
	n = wire_put_entry(m->out + m->out_len, sizeof(m->out) - m->out_len,
	    WIRE_ATTRS, e);
	if (n < 0)
		return n;
	m->out_len += (size_t)n;
	return 0;
}

/* Append the E frame of one entry of the level on top. */
static int
manifest_emit_entry(struct manifest *m, struct manifest_level *lv,
    struct walk_ent *we)
{
	struct wire_entry *e = &m->ent;
	char esc[LOG_ESC_MAX];
	ssize_t tl;
	int n, type = we->type;

	if (type == WALK_OTHER && m->version >= WIRE_V_FIDELITY)
		type = walk_special_of(we->st.st_mode);
	if (type != WALK_FILE && type != WALK_DIR && type != WALK_LINK &&
	    !wire_type_special((uint8_t)type))
		return 0;
	if (!manifest_fits(we, lv)) {
		log_warn("skipping '%s': path too long to replicate",
		    log_escape(we->name, we->namelen, esc, sizeof(esc)));
		return 0;
	}
	if (manifest_excluded(m, lv, we))
		return 0;
	manifest_entry_from_stat(e, type, &we->st);
	memcpy(e->name, we->name, we->namelen);
	e->name[we->namelen] = '\0';
	e->name_len = (uint16_t)we->namelen;
	if (we->type == WALK_LINK) {
		tl = readlinkat(lv->fd, we->name, e->target, WIRE_TARGET_MAX);
		if (tl <= 0)
			return 0;	/* vanished since listed */
		e->target[tl] = '\0';
		e->target_len = (uint16_t)tl;
	}
	if (m->version >= WIRE_V_FIDELITY) {
		size_t base = lv->path_len, clen;
		const char *t;
		size_t tlen;

		/* m->path names this level; the child's path. */
		memcpy(m->cpath, m->path, base);
		if (base > 0)
			m->cpath[base++] = '/';
		memcpy(m->cpath + base, we->name, we->namelen);
		clen = base + we->namelen;
		m->cpath[clen] = '\0';
		n = manifest_emit_xattrs(m, lv->fd, we->name, m->cpath, clen);
		if (n != 0)
			return n;
		/* A later name of a hard-link group names the first. */
		if (type == WALK_FILE && we->st.st_nlink > 1) {
			n = links_find_or_add(m->links, we->st.st_dev,
			    we->st.st_ino, m->cpath, clen, &t, &tlen);
			if (n < 0)
				return n;
			if (n == 1) {
				e->type = WALK_HARDLINK;
				memcpy(e->target, t, tlen + 1);
				e->target_len = (uint16_t)tlen;
			}
		}
	} else
		m->xs_read = 0;
	n = manifest_emit_names(m, e);
	if (n != 0)
		return n;
	n = wire_put_entry(m->out + m->out_len, sizeof(m->out) - m->out_len,
	    WIRE_ENTRY, e);
	if (n < 0)
		return n;
	m->out_len += (size_t)n;
	m->count++;
	return 0;
}

/* Open the next child directory of the level on top and push it; pops
 * the level when it has none left. */
static int
manifest_descend(struct manifest *m, struct manifest_level *lv)
{
	struct walk_ent *we;
	char esc[LOG_ESC_MAX];
	size_t base;
	int fd, r;

	while (lv->next < lv->list.n) {
		we = &lv->list.ents[lv->next++];
		if (we->type != WALK_DIR || !manifest_fits(we, lv) ||
		    manifest_excluded(m, lv, we))
			continue;
		base = lv->path_len;
		if (base > 0)
			m->path[base++] = '/';
		memcpy(m->path + base, we->name, we->namelen);
		m->path[base + we->namelen] = '\0';
		fd = openat(lv->fd, we->name, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			/* Vanished or replaced since listed: the next
			 * compare sees it. */
			if (errno == ENOENT || errno == ENOTDIR ||
			    errno == ELOOP)
				continue;
			r = -AR_EIO;
		} else {
			r = manifest_level_push(m, fd, base + we->namelen);
			/* level_push may have moved m->levels. */
			lv = &m->levels[m->depth - 1];
		}
		/* Unreadable, or removed while being listed: skipped, and
		 * the operator told. Anything else (out of fds or memory, an
		 * I/O error) fails the manifest rather than leave a subtree
		 * out of a stream that ends as if complete. */
		if (r == -AR_EIO && (errno == EACCES || errno == EPERM ||
		    errno == ENOENT)) {
			log_warn("skipping directory '%s': %s",
			    log_escape(m->path, base + we->namelen, esc,
			    sizeof(esc)), strerror(errno));
			continue;
		}
		if (r == -AR_EIO)
			log_error("directory '%s': %s", log_escape(m->path,
			    base + we->namelen, esc, sizeof(esc)),
			    strerror(errno));
		return r;
	}
	manifest_level_pop(m);
	return 0;
}

/* Fill m->out with as many frames as fit, or the end of the stream. */
static int
manifest_produce(struct manifest *m)
{
	struct manifest_level *lv;
	int n, r;

	while (!m->done && sizeof(m->out) - m->out_len >= MANIFEST_ROOM) {
		if (m->depth == 0) {
			n = wire_put_end(m->out + m->out_len,
			    sizeof(m->out) - m->out_len, m->count);
			if (n < 0)
				return n;
			m->out_len += (size_t)n;
			m->done = 1;
			break;
		}
		lv = &m->levels[m->depth - 1];
		if (!lv->header_sent) {
			n = wire_put_dir(m->out + m->out_len,
			    sizeof(m->out) - m->out_len, m->path, lv->path_len);
			if (n < 0)
				return n;
			m->out_len += (size_t)n;
			assert(m->out_len <= sizeof(m->out));
			lv->header_sent = 1;
		} else if (!m->attrs_sent) {
			m->attrs_sent = 1;
			if (m->version >= WIRE_V_FIDELITY) {
				r = manifest_emit_attrs(m, lv);
				if (r != 0)
					return r;
			}
		} else if (lv->emit < lv->list.n) {
			r = manifest_emit_entry(m, lv,
			    &lv->list.ents[lv->emit++]);
			if (r != 0)
				return r;
		} else {
			r = manifest_descend(m, lv);
			if (r != 0)
				return r;
		}
	}
	return 0;
}

int
manifest_new(int rootfd, struct manifest **out)
{
	return manifest_new_at(rootfd, "", 0, out);
}

int
manifest_new_at(int rootfd, const char *path, size_t len,
    struct manifest **out)
{
	struct manifest *m;
	int fd, r;

	if (len > WIRE_PATH_MAX || !wire_path_valid(path, len))
		return -AR_EPROTO;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -AR_ENOMEM;
	r = fs_open_beneath(rootfd, path, O_RDONLY | O_DIRECTORY, 0, &fd);
	if (r != 0) {
		free(m);
		return r;
	}
	memcpy(m->path, path, len);
	m->path[len] = '\0';
	r = manifest_level_push(m, fd, len);
	if (r != 0) {
		free(m->levels);
		free(m);
		return r;
	}
	*out = m;
	return 0;
}

void
manifest_free(struct manifest *m)
{
	if (m == NULL)
		return;
	while (m->depth > 0)
		manifest_level_pop(m);
	free(m->levels);
	free(m->xs);
	links_free(m->links);
	idnames_sent_free(m->names);
	free(m);
}

ssize_t
manifest_read(struct manifest *m, void *buf, size_t len)
{
	size_t avail;
	int r;

	if (m->out_pos == m->out_len) {
		m->out_pos = m->out_len = 0;
		if (m->done)
			return 0;
		r = manifest_produce(m);
		if (r != 0) {
			int n = wire_put_error(m->out + m->out_len,
			    sizeof(m->out) - m->out_len, (uint32_t)-r,
			    "cannot read the tree");

			if (n > 0)
				m->out_len += (size_t)n;
			m->done = 1;
			log_error("manifest: %s", ar_strerror(r));
		}
	}
	avail = m->out_len - m->out_pos;
	if (avail > len)
		avail = len;
	memcpy(buf, m->out + m->out_pos, avail);
	m->out_pos += avail;
	return (ssize_t)avail;
}

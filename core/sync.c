/*
 * sync.c: the standby's run (sync.h): the one-shot compare, which merges
 * the primary's manifest with the local tree one directory at a time,
 * the metadata it applies, and the life cycle of a run shared with
 * sync --follow (follow.c). Receiving files is fetch.c's; state_dir is
 * state.c's.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "client.h"
#include "error.h"
#include "exclude.h"
#include "fs.h"
#include "log.h"
#include "metrics.h"
#include "state.h"
#include "sync.h"
#include "syncer.h"
#include "util.h"
#include "walk.h"
#include "wire.h"

/* Changes a batch makes durable by fsync (sync_durable_fd) before a
 * syncfs is the cheaper way. */
#define SYNC_FSYNC_INLINE 8

static int sync_durable_at(struct syncer *s, int dirfd, const char *name);

int
sync_fail(struct syncer *s, int err, const char *fmt, ...)
{
	va_list ap;

	assert(err < 0 && s->msglen > 0);
	if (s->msg[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(s->msg, s->msglen, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* Two buffers rotate, so one message can quote two paths; each thread
 * (a lane's, lane.c) has its own. */
const char *
sync_esc(const char *p, size_t len)
{
	static _Thread_local char bufs[2][LOG_ESC_MAX];
	static _Thread_local int i;

	i ^= 1;
	return log_escape(p, len, bufs[i], sizeof(bufs[i]));
}

/* Join dir and name into out (WIRE_PATH_MAX + 1 bytes), its length in
 * *outlen; -AR_EPROTO (out "") when that is too long. */
static int
sync_join(char *out, const char *dir, size_t dlen, const char *name,
    size_t nlen, size_t *outlen)
{
	size_t len = dlen + (dlen > 0) + nlen;

	*outlen = 0;
	out[0] = '\0';
	if (len > WIRE_PATH_MAX)
		return -AR_EPROTO;
	memcpy(out, dir, dlen);
	if (dlen > 0)
		out[dlen] = '/';
	memcpy(out + dlen + (dlen > 0), name, nlen);
	out[len] = '\0';
	*outlen = len;
	return 0;
}

uint32_t
sync_version(const struct syncer *s)
{
	return s->client != NULL ? client_version(s->client) : 1;
}

void
sync_itemize(struct syncer *s, const char *code, const char *path, size_t len,
    const char *suffix)
{
	if (s->o->itemize == NULL)
		return;
	fprintf(s->o->itemize, "%s %s%s\n", code, sync_esc(path, len), suffix);
}

/* ---------------------------------------------------------------- */
/* Applying metadata */

static int
sync_same_mtime(const struct stat *st, const struct wire_entry *e)
{
	return st->st_mtim.tv_sec == e->mtime_sec &&
	    (uint32_t)st->st_mtim.tv_nsec == e->mtime_nsec;
}

/*
 * The mode a file of the primary's gets here: with strip_setuid, no
 * set-user-id or set-group-id bit (a standby run as root would
 * otherwise make setuid-root programs of a hostile primary's files, as
 * rsync -a does). Directories keep theirs (set-group-id there only
 * passes the group on).
 */
static uint32_t
sync_file_mode(const struct syncer *s, uint32_t mode)
{
	if (s->cfg->strip_setuid == CONFIG_ON)
		mode &= ~(uint32_t)(S_ISUID | S_ISGID);
	return mode;
}

int
sync_attrs_code(const struct syncer *s, const struct stat *st,
    const struct wire_entry *e, char *code)
{
	static const char none[] = "...........";
	uint32_t mode = e->type == WALK_FILE ? sync_file_mode(s, e->mode) :
	    e->mode;

	memcpy(code, none, SYNC_CODE_LEN + 1);
	/* A file's mtime goes with its content, which is fetched. */
	if (e->type != WALK_FILE && !sync_same_mtime(st, e))
		code[4] = 't';
	/* A symlink's own mode cannot be set on Linux. */
	if (e->type != WALK_LINK && (st->st_mode & 07777) != mode)
		code[5] = 'p';
	if (s->is_root && st->st_uid != e->uid)
		code[6] = 'o';
	if (s->is_root && st->st_gid != e->gid)
		code[7] = 'g';
	if (memcmp(code, none, SYNC_CODE_LEN) == 0)
		return 0;
	code[1] = e->type == WALK_DIR ? 'd' : e->type == WALK_LINK ? 'L' :
	    e->type == WALK_FIFO || e->type == WALK_SOCK ? 'S' :
	    e->type == WALK_CHR || e->type == WALK_BLK ? 'D' : 'f';
	return 1;
}

/* Owner, mode and mtime onto an open file or directory. */
int
sync_attrs_set_fd(struct syncer *s, int fd, uint32_t mode, uint32_t uid,
    uint32_t gid, int64_t sec, uint32_t nsec)
{
	struct timespec ts[2];
	struct stat st;

	if ((mode & (S_ISUID | S_ISGID)) != 0 &&
	    s->cfg->strip_setuid == CONFIG_ON) {
		if (fstat(fd, &st) != 0)
			return -AR_EIO;
		if (S_ISREG(st.st_mode))
			mode = sync_file_mode(s, mode);
	}
	/* chown first: it clears set-id bits that fchmod then sets. */
	if (s->is_root && fchown(fd, uid, gid) != 0)
		return -AR_EIO;
	if (fchmod(fd, mode) != 0)
		return -AR_EIO;
	ts[0].tv_sec = sec;
	ts[0].tv_nsec = nsec;
	ts[1] = ts[0];
	if (futimens(fd, ts) != 0)
		return -AR_EIO;
	return 0;
}

int
sync_attrs_set_at(struct syncer *s, int dirfd, const char *name,
    const struct wire_entry *e, int dir)
{
	int fd, r;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC | (dir ? O_DIRECTORY : 0));
	if (fd < 0)
		return -AR_EIO;
	r = sync_attrs_set_fd(s, fd, e->mode, e->uid, e->gid, e->mtime_sec,
	    e->mtime_nsec);
	close(fd);
	return r;
}

/*
 * The itemized line of a directory whose mode, owner or group the final
 * pass changes (rsync's ".d...pog... d/"). An mtime alone is not told:
 * every directory a run created or filled has one to set.
 */
static void
sync_dir_itemize(struct syncer *s, const char *code, const char *path,
    size_t plen)
{
	if (code[5] == '.' && code[6] == '.' && code[7] == '.')
		return;
	sync_itemize(s, code, plen > 0 ? path : ".", plen > 0 ? plen : 1,
	    "/");
}

int
sync_dir_attrs(struct syncer *s, int dirfd, const char *name,
    const char *path, size_t plen, const struct wire_entry *e)
{
	char code[SYNC_CODE_LEN + 1];
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !S_ISDIR(st.st_mode) || !sync_attrs_code(s, &st, e, code))
		return 0;
	if (sync_attrs_set_at(s, dirfd, name, e, 1) != 0)
		return sync_fail(s, -AR_EIO, "'%s': cannot set attributes: %s",
		    sync_esc(path, plen), strerror(errno));
	sync_dir_itemize(s, code, path, plen);
	return sync_durable_at(s, dirfd, name);
}

/* The A frame: the mode, owner and mtime of the directory at path
 * itself ("" is data_dir), after its contents are final. */
static int
sync_dir_attrs_path(struct syncer *s, const char *path, size_t plen,
    const struct wire_entry *e)
{
	const char *base;
	int dirfd, r;

	if (plen > 0) {
		if (exclude_match(s->exclude, path, plen, 1) ||
		    fs_open_parent(s->rootfd, path, &dirfd, &base) != 0) {
			s->xpending = 0;
			return 0;
		}
		r = sync_xattrs_apply(s, dirfd, base, path, plen, e);
		if (r == 0)
			r = sync_dir_attrs(s, dirfd, base, path, plen, e);
		close(dirfd);
		return r;
	}
	if (s->rootfd < 0) {
		s->xpending = 0;
		return 0;
	}
	r = sync_xattrs_apply(s, s->rootfd, NULL, "", 0, e);
	return r != 0 ? r : sync_root_attrs(s, e);
}

int
sync_root_attrs(struct syncer *s, const struct wire_entry *e)
{
	char code[SYNC_CODE_LEN + 1];
	struct stat st;

	if (s->rootfd < 0 || fstat(s->rootfd, &st) != 0 ||
	    !sync_attrs_code(s, &st, e, code))
		return 0;
	if (sync_attrs_set_fd(s, s->rootfd, e->mode, e->uid, e->gid,
	    e->mtime_sec, e->mtime_nsec) != 0)
		return sync_fail(s, -AR_EIO, "data directory '%s': cannot set "
		    "attributes: %s", s->cfg->data_dir, strerror(errno));
	sync_dir_itemize(s, code, "", 0);
	return sync_durable_fd(s, s->rootfd);
}

int
sync_idname_count(struct fetch_stored_ctx *st)
{
	if (sync_version(st->s) < WIRE_V_NAMES)
		return sync_fail(st->s, -AR_EPROTO, "primary sent an owner's "
		    "name (I) under protocol version %u",
		    sync_version(st->s));
	if (++st->names > IDNAMES_PER_ANSWER)
		return sync_fail(st->s, -AR_EPROTO, "primary named more than "
		    "%u users and groups in one answer", IDNAMES_PER_ANSWER);
	return 0;
}

int
sync_idname_frame(struct syncer *s, const uint8_t *p, uint32_t len)
{
	struct wire_idname n;

	if (sync_version(s) < WIRE_V_NAMES)
		return sync_fail(s, -AR_EPROTO, "primary sent an owner's name "
		    "(I) under protocol version %u", sync_version(s));
	if (wire_get_idname(p, len, &n) != 0)
		return sync_fail(s, -AR_EPROTO, "primary sent an invalid "
		    "user or group name");
	if (s->names == NULL)
		return 0;	/* map_users = no: numbers */
	if (idnames_learn(s->names, &n) != 0)
		return sync_fail(s, -AR_ENOMEM, "out of memory mapping owner "
		    "names");
	return 0;
}

void
sync_map_ids(struct syncer *s, struct wire_entry *e)
{
	if (s->names == NULL)
		return;
	if (sync_version(s) < WIRE_V_NAMES) {
		if (!s->names_warned)
			log_warn("map_users: the primary speaks protocol "
			    "version %u, which sends no owner names (%u "
			    "does): owners and groups are kept as numbers",
			    sync_version(s), WIRE_V_NAMES);
		s->names_warned = 1;
		return;
	}
	idnames_entry(s->names, e);
}

/* map_users: the qualifiers of the ACLs of want made this host's (the
 * I frames of their names came before the entry). */
static void
sync_map_acls(struct syncer *s, struct xattr_set *want)
{
	size_t i;

	if (s->names == NULL || sync_version(s) < WIRE_V_NAMES)
		return;
	for (i = 0; i < want->n; i++)
		if (xattr_is_acl(want->ents[i].name))
			(void)idnames_acl(s->names,
			    (uint8_t *)(uintptr_t)want->ents[i].value,
			    want->ents[i].value_len);
}

int
sync_xattr_frame(struct syncer *s, const uint8_t *p, uint32_t len)
{
	if (sync_version(s) < WIRE_V_FIDELITY)
		return sync_fail(s, -AR_EPROTO, "primary sent extended "
		    "attributes (Y) under protocol version %u",
		    sync_version(s));
	if (xattr_get(p, len, s->xwant) != 0)
		return sync_fail(s, -AR_EPROTO, "primary sent invalid extended "
		    "attributes");
	s->xpending = 1;
	return 0;
}

/* Names of want that this standby does not apply: the ones the
 * configuration takes but this process cannot (trusted. and security.
 * as a user) make the entry partial, with one warning a run; the ones
 * the configuration leaves out (or security.selinux, which a standby
 * labels itself) are left out. */
static void
sync_xattrs_refused(struct syncer *s, const char *path, size_t plen,
    int *partial)
{
	const struct xattr_set *w = s->xwant;
	size_t i;

	*partial = 0;
	for (i = 0; i < w->n; i++) {
		const char *nm = w->ents[i].name;

		if (xattr_allowed(&s->xpol, nm) || !xattr_allowed(&s->xcfg, nm))
			continue;
		*partial = 1;
		if (!s->xwarned)
			log_warn("'%s': extended attribute '%s' not "
			    "replicated: only a standby running as root "
			    "writes the trusted. and security. namespaces "
			    "(this warning is given once)", sync_esc(path,
			    plen), sync_esc(nm, w->ents[i].name_len));
		s->xwarned = 1;
	}
}

/*
 * An entry whose xattrs the primary could not send all of: past the
 * limits, or every entry of a rescue whose mount cannot show them all
 * (one warning there). The first SYNC_INCOMPLETE_NAMED are named, the
 * others counted.
 */
static void
sync_xattrs_incomplete(struct syncer *s, const char *path, size_t plen)
{
	if (s->xincomplete < SYNC_INCOMPLETE_NAMED) {
		(void)sync_unreplicated(s, path, plen, "the primary could not "
		    "send all of its extended attributes");
		if (++s->xincomplete == SYNC_INCOMPLETE_NAMED)
			log_warn("further entries whose extended attributes "
			    "the primary could not send all of are counted, "
			    "not named");
		return;
	}
	s->unreplicated++;
	s->skipped++;
	s->st->skipped++;
}

int
sync_xattrs_apply(struct syncer *s, int dirfd, const char *name,
    const char *path, size_t plen, const struct wire_entry *e)
{
	char code[SYNC_CODE_LEN + 1];
	int pending = s->xpending, changed, partial, r;

	s->xpending = 0;
	if (s->xwant == NULL || sync_version(s) < WIRE_V_FIDELITY)
		return 0;
	if (!pending)
		xattr_clear(s->xwant);
	else
		sync_map_acls(s, s->xwant);
	if (!s->xattrs_fs) {
		/* Warned at start: the entry is counted, not named. */
		if (s->xwant->n > 0) {
			s->unreplicated++;
			s->skipped++;
			s->st->skipped++;
		}
		return 0;
	}
	if (s->xwant->incomplete)
		sync_xattrs_incomplete(s, path, plen);
	sync_xattrs_refused(s, path, plen, &partial);
	if (partial) {
		s->unreplicated++;
		s->skipped++;
		s->st->skipped++;
	}
	r = xattr_sync(dirfd, name, s->xwant, &s->xpol, s->xlocal, &changed);
	/* Not made here (left out, refused, or its fetch failed): counted
	 * where that was decided. */
	if (r != 0 && (errno == ENOENT || errno == ENOTDIR))
		return 0;
	if (r != 0 && (errno == EPERM || errno == EACCES ||
	    errno == ENOTSUP || errno == E2BIG || errno == ENOSPC))
		return sync_unreplicated(s, path, plen, strerror(errno));
	if (r != 0)
		return sync_fail(s, -AR_EIO, "'%s': extended attributes: %s",
		    sync_esc(path, plen), strerror(errno));
	if (changed == 0)
		return 0;
	memcpy(code, "...........", SYNC_CODE_LEN + 1);
	code[0] = '.';
	code[1] = e->type == WALK_DIR ? 'd' : e->type == WALK_LINK ? 'L' :
	    e->type == WALK_FIFO || e->type == WALK_SOCK ? 'S' :
	    e->type == WALK_CHR || e->type == WALK_BLK ? 'D' : 'f';
	if (changed & XATTR_CHANGED_ACL)
		code[9] = 'a';
	if (changed & XATTR_CHANGED_XATTR)
		code[10] = 'x';
	sync_itemize(s, code, plen > 0 ? path : ".", plen > 0 ? plen : 1,
	    e->type == WALK_DIR ? "/" : "");
	s->st->attrs_set++;
	s->changed = 1;
	/* An access ACL and the group bits of the mode are one: the mode
	 * the primary has goes back on top. */
	if ((changed & XATTR_CHANGED_ACL) && e->type != WALK_LINK &&
	    (name == NULL ? fchmod(dirfd, e->mode) :
	    fchmodat(dirfd, name, e->mode, 0)) != 0)
		return sync_fail(s, -AR_EIO, "'%s': chmod: %s",
		    sync_esc(path, plen), strerror(errno));
	return 0;
}

int
sync_attrs_frame(struct syncer *s, const uint8_t *p, uint32_t len)
{
	if (sync_version(s) < WIRE_V_FIDELITY)
		return sync_fail(s, -AR_EPROTO, "primary sent a directory's "
		    "state (A) under protocol version %u",
		    sync_version(s));
	if (wire_get_entry(p, len, WIRE_ATTRS, &s->ent) == 0)
		sync_map_ids(s, &s->ent);
	else
		return sync_fail(s, -AR_EPROTO, "primary sent an invalid "
		    "directory state");
	return s->o->dry_run ? 0 : sync_dir_attrs_path(s, s->ent.name,
	    s->ent.name_len, &s->ent);
}

/* ---------------------------------------------------------------- */
/* What this standby excludes is its own */

/*
 * Names this standby excludes are its own: never replaced, removed or
 * renamed over, whatever the primary has there. Each is matched with
 * the type it has here, so a pattern for directories (keep/) guards a
 * directory even where the primary has a file of that name. Our temp
 * files are not: they are leftovers of an interrupted run.
 */
int
sync_is_own(const struct syncer *s, const char *path, size_t len, int type)
{
	const char *base = path + len;

	while (base > path && base[-1] != '/')
		base--;
	if ((size_t)(path + len - base) >= strlen(FS_TMP_PREFIX) &&
	    strncmp(base, FS_TMP_PREFIX, strlen(FS_TMP_PREFIX)) == 0)
		return 0;
	return exclude_match(s->exclude, path, len, type == WALK_DIR);
}

int
sync_skip(struct syncer *s, int type, const char *path, size_t len,
    int holds)
{
	log_warn("'%s': the primary's %s is not replicated: it would "
	    "replace %s excluded on this standby", sync_esc(path, len),
	    type == WALK_DIR ? "directory" : type == WALK_LINK ?
	    "symlink" : "file", holds ? "a directory holding names" :
	    "a name");
	s->skipped++;
	s->st->skipped++;
	(void)log_escape(path, len, s->skip_last, sizeof(s->skip_last));
	return 0;
}

/*
 * Remove dirfd/name (path, plen bytes, in a buffer of WIRE_PATH_MAX + 1
 * bytes, restored on return) but what this standby excludes beneath it,
 * which stays with the directories that lead to it (*kept is then set).
 * With look, nothing is removed (a dry run looks). Without patterns,
 * fs_remove_tree_bg does it all.
 */
static int
sync_remove_keeping(struct syncer *s, int dirfd, const char *name,
    char *path, size_t plen, int depth, int look, int *kept)
{
	struct walk_dir d;
	size_t i, clen;
	int fd, r, k = 0;

	if (exclude_empty(s->exclude)) {
		if (look)
			return 0;
		return fs_remove_tree_bg(dirfd, name);
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd < 0 && (errno == ENOTDIR || errno == ELOOP))
		return look ? 0 : fs_remove_tree_bg(dirfd, name);
	if (fd < 0)
		return errno == ENOENT ? 0 : -AR_EIO;
	if (depth >= SYNC_REMOVE_DEPTH) {
		close(fd);
		errno = ELOOP;
		return -AR_EIO;
	}
	walk_dir_init(&d);
	r = walk_list(fd, WALK_TYPE_ONLY, &d);
	for (i = 0; r == 0 && i < d.n; i++) {
		const struct walk_ent *e = &d.ents[i];

		clen = plen + (plen > 0) + e->namelen;
		if (clen > WIRE_PATH_MAX) {
			/* Beyond any path a pattern is matched against. */
			r = look ? 0 : fs_remove_tree_bg(fd, e->name);
			continue;
		}
		if (plen > 0)
			path[plen] = '/';
		memcpy(path + plen + (plen > 0), e->name, e->namelen + 1);
		if (sync_is_own(s, path, clen, e->type))
			k = 1;
		else if (e->type == WALK_DIR)
			r = sync_remove_keeping(s, fd, e->name, path, clen,
			    depth + 1, look, &k);
		else if (!look)
			r = fs_remove_tree_bg(fd, e->name);
		path[plen] = '\0';
	}
	walk_dir_release(&d);
	close(fd);
	if (r != 0)
		return r;
	if (k || look) {
		*kept |= k;
		return 0;
	}
	if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
		return 0;
	/* Filled again since it was listed: what is new is not ours to
	 * delete unseen. */
	if (errno == ENOTEMPTY || errno == EEXIST) {
		*kept = 1;
		return 0;
	}
	return -AR_EIO;
}

int
sync_remove_at(struct syncer *s, int dirfd, const char *name,
    const char *path, size_t plen, int *kept)
{
	char buf[WIRE_PATH_MAX + 1];

	*kept = 0;
	assert(plen <= WIRE_PATH_MAX);
	memcpy(buf, path, plen);
	buf[plen] = '\0';
	return sync_remove_keeping(s, dirfd, name, buf, plen, 0,
	    s->o->dry_run, kept);
}

int
sync_holds_own(struct syncer *s, int dirfd, const char *name,
    const char *path, size_t plen)
{
	char buf[WIRE_PATH_MAX + 1];
	int kept = 0;

	assert(plen <= WIRE_PATH_MAX);
	memcpy(buf, path, plen);
	buf[plen] = '\0';
	if (exclude_empty(s->exclude) || sync_remove_keeping(s, dirfd, name,
	    buf, plen, 0, 1, &kept) != 0)
		return 0;
	return kept;
}

int
sync_unreplicated(struct syncer *s, const char *path, size_t len,
    const char *why)
{
	log_warn("'%s': not replicated: %s", sync_esc(path, len), why);
	s->unreplicated++;
	s->skipped++;
	s->st->skipped++;
	(void)log_escape(path, len, s->skip_last, sizeof(s->skip_last));
	return 0;
}

/* ---------------------------------------------------------------- */
/* Merging one directory */

int
sync_remove_local(struct syncer *s, const struct walk_ent *le, int *kept)
{
	char path[WIRE_PATH_MAX + 1];
	size_t len;
	int k = 0, r;

	assert(s->blk.active);
	if (kept != NULL)
		*kept = 0;
	/* Too long a path (a local name no manifest can hold) reads "". */
	(void)sync_join(path, s->blk.path, s->blk.path_len, le->name,
	    le->namelen, &len);
	if (len > 0 && sync_is_own(s, path, len, le->type)) {
		if (kept != NULL)
			*kept = 1;
		return 0;
	}
	if (s->counting)
		return prune_count_local(s, le);
	if (s->blk.dirfd >= 0 && le->type == WALK_DIR) {
		r = sync_remove_at(s, s->blk.dirfd, le->name, path, len, &k);
		if (r != 0)
			return sync_fail(s, -AR_EIO, "'%s': cannot delete: %s",
			    sync_esc(path, len), strerror(errno));
	} else if (s->blk.dirfd >= 0 && !s->o->dry_run &&
	    fs_remove_tree_bg(s->blk.dirfd, le->name) != 0)
		return sync_fail(s, -AR_EIO, "'%s': cannot delete: %s",
		    sync_esc(path, len), strerror(errno));
	if (k) {
		log_verbose("'%s': kept, as it holds names excluded on this "
		    "standby; the rest of it is deleted", sync_esc(path, len));
		if (kept != NULL)
			*kept = 1;
	} else if (strncmp(le->name, FS_TMP_PREFIX,
	    strlen(FS_TMP_PREFIX)) != 0) {
		/* Our own leftovers go silently. */
		sync_itemize(s, "*deleting  ", path, len,
		    le->type == WALK_DIR ? "/" : "");
		s->st->deleted++;
	}
	/* A name removed from the block's directory is durable with that
	 * directory's fsync (sync_block_finish), not with a syncfs, which
	 * waits for all the dirty data of the file system: a lane's big
	 * temp file, other writers' files, before the next batch is asked
	 * for. What a directory held went from directories of its own:
	 * those the syncfs makes durable. */
	if (!s->o->dry_run && s->blk.dirfd >= 0) {
		s->blk.dirty = 1;
		if (le->type == WALK_DIR)
			s->changed = 1;
	}
	return 0;
}

int
sync_block_finish(struct syncer *s)
{
	struct sync_block *b = &s->blk;
	int r = 0;

	if (!b->active)
		return 0;
	assert(b->cursor <= b->local.n);
	while (r == 0 && b->cursor < b->local.n)
		r = sync_remove_local(s, &b->local.ents[b->cursor++], NULL);
	if (r == 0 && b->dirty && fs_fsync_dir(b->dirfd) != 0)
		r = sync_fail(s, -AR_EIO, "fsync of '%s': %s", sync_esc(b->path,
		    b->path_len), strerror(errno));
	if (b->dirfd >= 0)
		close(b->dirfd);
	b->dirfd = -1;
	b->active = 0;
	return r;
}

int
sync_block_start(struct syncer *s, const char *path, size_t len)
{
	struct sync_block *b = &s->blk;
	int r;

	/* The previous directory was finished: its fd is closed. */
	assert(!b->active && b->dirfd < 0);
	assert(len <= WIRE_PATH_MAX && path[len] == '\0');
	memcpy(b->path, path, len + 1);
	b->path_len = len;
	b->cursor = 0;
	b->have_last = 0;
	b->dirty = 0;
	b->dirfd = -1;
	b->local.n = 0;
	b->active = 1;
	if (s->rootfd < 0)
		return 0;	/* dry run into a missing data_dir */
	r = fs_open_beneath(s->rootfd, path, O_RDONLY | O_DIRECTORY, 0,
	    &b->dirfd);
	if (r != 0 && s->counting) {
		/* Nothing here to delete; the merge says why it cannot
		 * open it, if it cannot. */
		b->dirfd = -1;
		return 0;
	}
	if (r == -AR_EPROTO)
		return sync_fail(s, r, "primary named directory '%s', which "
		    "crosses a symlink on this side", sync_esc(path, len));
	if (r != 0) {
		b->dirfd = -1;
		if (s->o->dry_run && errno == ENOENT)
			return 0;	/* would have been created */
		return sync_fail(s, -AR_EIO, "directory '%s': %s",
		    sync_esc(path, len), strerror(errno));
	}
	/* Counting needs names and types only: no stat per entry. */
	r = walk_list(b->dirfd, s->counting ? WALK_SKIP_TMP | WALK_TYPE_ONLY :
	    0, &b->local);
	if (r != 0)
		return sync_fail(s, r, "directory '%s': cannot list: %s",
		    sync_esc(path, len), strerror(errno));
	if (s->counting)
		s->count_local += b->local.n;
	return 0;
}

static int
sync_entry_dir(struct syncer *s, const struct wire_entry *e,
    const struct walk_ent *le, const char *path, size_t plen)
{
	int r;

	assert(s->blk.active);
	if (le != NULL && le->type == WALK_DIR)
		return 0;	/* attributes in the final pass */
	if (le != NULL) {
		r = sync_remove_local(s, le, NULL);
		if (r != 0)
			return r;
	}
	sync_itemize(s, "cd+++++++++", path, plen, "/");
	s->st->dirs_created++;
	if (s->o->dry_run || s->blk.dirfd < 0)
		return 0;
	if (mkdirat(s->blk.dirfd, e->name, 0700) != 0)
		return sync_fail(s, -AR_EIO, "'%s': mkdir: %s", sync_esc(path,
		    plen), strerror(errno));
	s->blk.dirty = 1;
	s->changed = 1;
	return 0;
}

/* The mtime and (if owner) the owner of the symlink dirfd/name itself. */
static int
sync_link_set(int dirfd, const char *name, const struct wire_entry *e,
    int owner)
{
	struct timespec ts[2];

	ts[0].tv_sec = e->mtime_sec;
	ts[0].tv_nsec = e->mtime_nsec;
	ts[1] = ts[0];
	if (owner && fchownat(dirfd, name, e->uid, e->gid,
	    AT_SYMLINK_NOFOLLOW) != 0)
		return -AR_EIO;
	if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) != 0)
		return -AR_EIO;
	return 0;
}

/* A symlink with the right target: its owner and mtime, in place. */
static int
sync_link_attrs(struct syncer *s, const struct wire_entry *e,
    const struct walk_ent *le, const char *path, size_t plen)
{
	char code[SYNC_CODE_LEN + 1];

	if (!sync_attrs_code(s, &le->st, e, code))
		return 0;
	sync_itemize(s, code, path, plen, "");
	s->st->attrs_set++;
	if (s->o->dry_run || s->blk.dirfd < 0)
		return 0;
	s->changed = 1;
	if (sync_link_set(s->blk.dirfd, e->name, e, s->is_root) != 0)
		return sync_fail(s, -AR_EIO, "'%s': cannot set attributes: %s",
		    sync_esc(path, plen), strerror(errno));
	return 0;
}

static int
sync_entry_link(struct syncer *s, const struct wire_entry *e,
    const struct walk_ent *le, const char *path, size_t plen)
{
	char cur[WIRE_TARGET_MAX + 1], tmp[NAME_MAX + 1];
	ssize_t n;
	int fd, r;

	assert(s->blk.active);
	if (le != NULL && le->type == WALK_LINK) {
		n = readlinkat(s->blk.dirfd, e->name, cur, sizeof(cur));
		if (n == (ssize_t)e->target_len &&
		    memcmp(cur, e->target, e->target_len) == 0)
			return sync_link_attrs(s, e, le, path, plen);
	}
	sync_itemize(s, le != NULL ? "cL.t......." : "cL+++++++++", path, plen,
	    "");
	if (s->o->itemize != NULL)
		fprintf(s->o->itemize, "    -> %s\n",
		    sync_esc(e->target, e->target_len));
	s->st->links_set++;
	if (s->o->dry_run || s->blk.dirfd < 0)
		return 0;
	/* A fresh name, then rename over whatever is there. */
	r = fs_tmpfile(s->blk.dirfd, e->name, &fd, tmp, sizeof(tmp));
	if (r != 0)
		return sync_fail(s, -AR_EIO, "'%s': temp name: %s",
		    sync_esc(path, plen), strerror(errno));
	close(fd);
	if (unlinkat(s->blk.dirfd, tmp, 0) != 0 ||
	    symlinkat(e->target, s->blk.dirfd, tmp) != 0)
		return sync_fail(s, -AR_EIO, "'%s': symlink: %s", sync_esc(path,
		    plen), strerror(errno));
	if (sync_link_set(s->blk.dirfd, tmp, e, s->is_root) != 0) {
		unlinkat(s->blk.dirfd, tmp, 0);
		return sync_fail(s, -AR_EIO, "'%s': cannot set attributes: %s",
		    sync_esc(path, plen), strerror(errno));
	}
	if (renameat(s->blk.dirfd, tmp, s->blk.dirfd, e->name) != 0) {
		unlinkat(s->blk.dirfd, tmp, 0);
		return sync_fail(s, -AR_EIO, "'%s': rename: %s", sync_esc(path,
		    plen), strerror(errno));
	}
	s->blk.dirty = 1;
	s->changed = 1;
	return 0;
}

/* --checksum: files compared by content at a time, during the merge. */
#define SYNC_CHECKSUM_ROUND 4096
static int sync_checksum(struct syncer *s);

static int
sync_entry_file(struct syncer *s, const struct wire_entry *e,
    const struct walk_ent *le, const char *path, size_t plen)
{
	char code[SYNC_CODE_LEN + 1];
	enum append_outcome ao = APPEND_UNTRIED;
	int r, whole = 0, delta;

	assert(s->blk.active);
	/* A U of a big file that looks unchanged: the primary saw a change
	 * (a rewrite the append path missed, found by its
	 * re-verification, or only its mode), and the roots tell which. */
	if (s->confirming && !s->o->dry_run && s->blk.dirfd >= 0 &&
	    le != NULL && le->type == WALK_FILE &&
	    (uint64_t)le->st.st_size == e->size &&
	    sync_same_mtime(&le->st, e) && append_store_wanted(s, e->size)) {
		r = append_file(s, path, plen, &ao);
		if (r != 0)
			return r;
	}
	if (ao != APPEND_REFUSED && le != NULL && le->type == WALK_FILE &&
	    (uint64_t)le->st.st_size == e->size &&
	    sync_same_mtime(&le->st, e)) {
		if (s->checksumming && verify_list_add(&s->sums, path, plen,
		    e->size, e->mtime_sec, e->mtime_nsec) != 0)
			return -AR_ENOMEM;
		if (s->sums.n >= SYNC_CHECKSUM_ROUND) {
			r = sync_checksum(s);
			verify_list_release(&s->sums);
			if (r != 0)
				return r;
		}
		if (!sync_attrs_code(s, &le->st, e, code))
			return 0;
		sync_itemize(s, code, path, plen, "");
		s->st->attrs_set++;
		if (s->o->dry_run)
			return 0;
		s->changed = 1;
		if (sync_attrs_set_at(s, s->blk.dirfd, e->name, e, 0) != 0)
			return sync_fail(s, -AR_EIO, "'%s': cannot set "
			    "attributes: %s", sync_esc(path, plen),
			    strerror(errno));
		return 0;
	}
	if (s->cfg->max_file_size != 0 && e->size > s->cfg->max_file_size) {
		/* Counted as not replicated: a one-shot sync exits 3. */
		log_warn("'%s': %llu bytes, more than max_file_size (%llu): "
		    "not replicated", sync_esc(path, plen),
		    (unsigned long long)e->size,
		    (unsigned long long)s->cfg->max_file_size);
		s->st->files_failed++;
		return 0;
	}
	if (s->o->dry_run || s->blk.dirfd < 0) {
		sync_itemize(s, le != NULL ? ">f.st......" : ">f+++++++++",
		    path, plen, "");
		return 0;
	}
	/* Grown past what this standby holds: perhaps only appended to. */
	if (le != NULL && le->type == WALK_FILE &&
	    e->size > (uint64_t)le->st.st_size &&
	    append_store_wanted(s, (uint64_t)le->st.st_size)) {
		r = append_file(s, path, plen, &ao);
		if (r != 0 || ao == APPEND_DONE)
			return r;
	}
	/* Changed in place: perhaps only some of its blocks. A file that
	 * goes to a lane tries it there, beside later batches, which must
	 * not wait for its clone. */
	if (le != NULL && le->type == WALK_FILE && !lane_wanted(s, e->size) &&
	    append_store_wanted(s, (uint64_t)le->st.st_size) &&
	    append_store_wanted(s, e->size)) {
		enum clone_outcome co;

		r = clone_file(s, path, plen, &co);
		if (r != 0 || co == CLONE_DONE || co == CLONE_LATER)
			return r;
	}
	delta = le != NULL && le->type == WALK_FILE &&
	    (uint64_t)le->st.st_size >= s->cfg->delta_min_size &&
	    e->size >= s->cfg->delta_min_size;
	/* Following, a big transfer goes on beside later batches. */
	if (lane_wanted(s, e->size))
		return lane_start(s, path, plen, e->size, le != NULL, delta);
	if (delta) {
		r = fetch_delta_file(s, path, plen, &whole);
		if (r != 0 || !whole)
			return r;
		/* The primary asked for a retry: send it whole. */
	}
	/* A symlink in the way is replaced by the rename. */
	return fetch_batch_add(s, path, plen, e->size, le != NULL);
}

/*
 * Before the primary's entry e takes the name of the local entry *le:
 * *skip when it must not (see sync_is_own), as *le is this standby's
 * own, or a directory holding its own that e, of another type, would
 * replace (the rest of that directory is deleted). What else is in the
 * way and cannot be replaced by a rename (a directory, or neither a
 * file, a directory nor a symlink) is deleted, and *le is then NULL.
 */
static int
sync_make_room(struct syncer *s, const struct wire_entry *e,
    const struct walk_ent **le, const char *path, size_t plen, int *skip)
{
	int kept, r;

	*skip = 0;
	if (*le == NULL)
		return 0;
	if (sync_is_own(s, path, plen, (*le)->type)) {
		*skip = 1;
		return sync_skip(s, e->type, path, plen, 0);
	}
	if ((*le)->type != WALK_OTHER && ((*le)->type != WALK_DIR ||
	    e->type == WALK_DIR))
		return 0;
	/* A special file of the same kind: its attributes are compared. */
	if ((*le)->type == WALK_OTHER &&
	    walk_special_of((*le)->st.st_mode) == e->type)
		return 0;
	r = sync_remove_local(s, *le, &kept);
	if (r != 0)
		return r;
	if (kept) {
		*skip = 1;
		return sync_skip(s, e->type, path, plen, 1);
	}
	*le = NULL;
	return 0;
}

/* Mode, owner and mtime of the special file dirfd/name, by name: opening
 * a device or a FIFO could block or act. */
static int
sync_special_set(struct syncer *s, int dirfd, const char *name,
    const struct wire_entry *e)
{
	struct timespec ts[2];

	if (s->is_root && fchownat(dirfd, name, e->uid, e->gid,
	    AT_SYMLINK_NOFOLLOW) != 0)
		return -AR_EIO;
	if (fchmodat(dirfd, name, e->mode, 0) != 0)
		return -AR_EIO;
	ts[0].tv_sec = e->mtime_sec;
	ts[0].tv_nsec = e->mtime_nsec;
	ts[1] = ts[0];
	if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) != 0)
		return -AR_EIO;
	return 0;
}

/*
 * A special file (protocol WIRE_V_FIDELITY): a FIFO or a socket (the
 * inode, as rsync --specials makes it) with specials = yes, a device
 * with devices = yes and as root only: a device node sent to a standby
 * that is not root is refused (a warning with the path; the run is then
 * partial). Made under a temp name, then renamed over what is there.
 */
static int
sync_entry_special(struct syncer *s, const struct wire_entry *e,
    const struct walk_ent *le, const char *path, size_t plen)
{
	char code[SYNC_CODE_LEN + 1], tmp[NAME_MAX + 1];
	int dev = e->type == WALK_CHR || e->type == WALK_BLK;
	unsigned maj, min;
	mode_t fmt;
	dev_t rdev;
	int fd, r;

	assert(s->blk.active);
	wire_rdev_split(e->size, &maj, &min);
	rdev = dev ? makedev(maj, min) : 0;
	if (dev ? !s->cfg->devices : !s->cfg->specials) {
		log_verbose("'%s': not replicated (%s = no)", sync_esc(path,
		    plen), dev ? "devices" : "specials");
		return 0;
	}
	if (dev && !s->is_root)
		return sync_unreplicated(s, path, plen, "a device node is "
		    "made only by a standby running as root");
	if (le != NULL && le->type == WALK_OTHER &&
	    walk_special_of(le->st.st_mode) == e->type &&
	    (!dev || le->st.st_rdev == rdev)) {
		if (!sync_attrs_code(s, &le->st, e, code))
			return 0;
		sync_itemize(s, code, path, plen, "");
		s->st->attrs_set++;
		if (s->o->dry_run || s->blk.dirfd < 0)
			return 0;
		s->changed = 1;
		if (sync_special_set(s, s->blk.dirfd, e->name, e) != 0)
			return sync_fail(s, -AR_EIO, "'%s': cannot set "
			    "attributes: %s", sync_esc(path, plen),
			    strerror(errno));
		return 0;
	}
	sync_itemize(s, dev ? "cD+++++++++" : "cS+++++++++", path, plen, "");
	s->st->specials_set++;
	if (s->o->dry_run || s->blk.dirfd < 0)
		return 0;
	fmt = e->type == WALK_FIFO ? S_IFIFO : e->type == WALK_SOCK ?
	    S_IFSOCK : e->type == WALK_CHR ? S_IFCHR : S_IFBLK;
	r = fs_tmpfile(s->blk.dirfd, e->name, &fd, tmp, sizeof(tmp));
	if (r != 0)
		return sync_fail(s, -AR_EIO, "'%s': temp name: %s",
		    sync_esc(path, plen), strerror(errno));
	close(fd);
	if (unlinkat(s->blk.dirfd, tmp, 0) != 0 ||
	    mknodat(s->blk.dirfd, tmp, fmt | 0600, rdev) != 0) {
		if (errno == EPERM || errno == EOPNOTSUPP) {
			/* The file system cannot hold it (vfat, a mount
			 * with nodev...): partial, not fatal. */
			r = errno;
			return sync_unreplicated(s, path, plen, strerror(r));
		}
		return sync_fail(s, -AR_EIO, "'%s': mknod: %s", sync_esc(path,
		    plen), strerror(errno));
	}
	if (sync_special_set(s, s->blk.dirfd, tmp, e) != 0 ||
	    renameat(s->blk.dirfd, tmp, s->blk.dirfd, e->name) != 0) {
		r = errno;
		unlinkat(s->blk.dirfd, tmp, 0);
		return sync_fail(s, -AR_EIO, "'%s': %s", sync_esc(path, plen),
		    strerror(r));
	}
	s->blk.dirty = 1;
	s->changed = 1;
	return 0;
}

/* A later name of a hard-link group: linked after the files of the
 * compare are in (sync_links_apply), as its target may be one of them. */
static int
sync_entry_hardlink(struct syncer *s, const struct wire_entry *e,
    const char *path, size_t plen)
{
	struct sync_hardlink *h;

	if (util_grow(&s->hl, &s->hl_cap, s->nhl + 1, sizeof(*s->hl),
	    16) != 0)
		return -AR_ENOMEM;
	h = &s->hl[s->nhl];
	h->path = strndup(path, plen);
	h->target = strndup(e->target, e->target_len);
	h->size = e->size;
	if (h->path == NULL || h->target == NULL) {
		free(h->path);
		free(h->target);
		return -AR_ENOMEM;
	}
	s->nhl++;
	return 0;
}

static void
sync_links_clear(struct syncer *s)
{
	size_t i;

	for (i = 0; i < s->nhl; i++) {
		free(s->hl[i].path);
		free(s->hl[i].target);
	}
	s->nhl = 0;
}

/*
 * Link one name to its group's earlier path: a new name made with
 * linkat, renamed over what is there. 1 when it must be fetched as a
 * copy instead (the target is missing here, excluded, not a file, or on
 * another file system), with a warning.
 */
static int
sync_link_one(struct syncer *s, const struct sync_hardlink *h, int *existed)
{
	char tmp[NAME_MAX + 1];
	const char *base, *tbase;
	struct stat st, tst;
	int dirfd = -1, tdirfd = -1, fd, r = 0, e;
	size_t plen = strlen(h->path), tlen = strlen(h->target);

	*existed = 0;
	if (fs_open_parent(s->rootfd, h->path, &dirfd, &base) == 0)
		*existed = fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (fs_open_parent(s->rootfd, h->target, &tdirfd, &tbase) != 0 ||
	    fstatat(tdirfd, tbase, &tst, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !S_ISREG(tst.st_mode) || exclude_match(s->exclude, h->target,
	    tlen, 0)) {
		log_warn("'%s': its hard link '%s' is not here: copied",
		    sync_esc(h->path, plen), sync_esc(h->target, tlen));
		r = 1;
		goto out;
	}
	if (dirfd < 0) {
		r = sync_fail(s, -AR_EIO, "'%s': cannot open its directory: "
		    "%s", sync_esc(h->path, plen), strerror(errno));
		goto out;
	}
	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_dev == tst.st_dev && st.st_ino == tst.st_ino)
		goto out;	/* linked already */
	if (s->o->itemize != NULL)
		fprintf(s->o->itemize, "hf+++++++++ %s => %s\n",
		    sync_esc(h->path, plen), sync_esc(h->target, tlen));
	s->st->links_set++;
	if (s->o->dry_run)
		goto out;
	if (fs_tmpfile(dirfd, base, &fd, tmp, sizeof(tmp)) != 0) {
		r = sync_fail(s, -AR_EIO, "'%s': temp name: %s",
		    sync_esc(h->path, plen), strerror(errno));
		goto out;
	}
	close(fd);
	if (unlinkat(dirfd, tmp, 0) != 0 ||
	    linkat(tdirfd, tbase, dirfd, tmp, 0) != 0) {
		e = errno;
		log_warn("'%s': cannot be linked to '%s' (%s): copied",
		    sync_esc(h->path, plen), sync_esc(h->target, tlen),
		    strerror(e));
		r = 1;
		goto out;
	}
	if (renameat(dirfd, tmp, dirfd, base) != 0) {
		e = errno;
		(void)unlinkat(dirfd, tmp, 0);
		r = sync_fail(s, -AR_EIO, "'%s': rename: %s",
		    sync_esc(h->path, plen), strerror(e));
		goto out;
	}
	s->changed = 1;
	if (fs_fsync_dir(dirfd) != 0)
		r = sync_fail(s, -AR_EIO, "fsync of '%s': %s",
		    sync_esc(h->path, plen), strerror(errno));
out:
	if (dirfd >= 0)
		close(dirfd);
	if (tdirfd >= 0)
		close(tdirfd);
	return r;
}

/* After the files of a compare are in: the hard links it listed, and
 * the copies of those that could not be linked. */
static int
sync_links_apply(struct syncer *s)
{
	size_t i;
	int r = 0, copies = 0, existed;

	for (i = 0; r >= 0 && i < s->nhl; i++) {
		r = sync_link_one(s, &s->hl[i], &existed);
		if (r == 1 && !s->o->dry_run) {
			copies = 1;
			r = fetch_batch_add(s, s->hl[i].path,
			    strlen(s->hl[i].path), s->hl[i].size, existed);
		}
	}
	sync_links_clear(s);
	if (r >= 0 && copies)
		r = fetch_flush_all(s);
	return r < 0 ? r : 0;
}

int
sync_entry_apply(struct syncer *s, const struct wire_entry *e,
    const struct walk_ent *le, const char *path, size_t plen)
{
	int r, skip;

	if ((wire_type_special(e->type) || e->type == WALK_HARDLINK) &&
	    sync_version(s) < WIRE_V_FIDELITY)
		return sync_fail(s, -AR_EPROTO, "primary sent a special file "
		    "'%s' under protocol version %u", sync_esc(path, plen),
		    sync_version(s));
	r = sync_make_room(s, e, &le, path, plen, &skip);
	if (r != 0 || skip)
		return r;
	switch (e->type) {
	case WALK_DIR:
		return sync_entry_dir(s, e, le, path, plen);
	case WALK_LINK:
		return sync_entry_link(s, e, le, path, plen);
	case WALK_FIFO:
	case WALK_SOCK:
	case WALK_CHR:
	case WALK_BLK:
		return sync_entry_special(s, e, le, path, plen);
	case WALK_HARDLINK:
		return sync_entry_hardlink(s, e, path, plen);
	default:
		return sync_entry_file(s, e, le, path, plen);
	}
}

int
sync_merge_upto(struct syncer *s, const char *name, size_t nlen,
    const struct walk_ent **le)
{
	struct sync_block *b = &s->blk;
	int c, r;

	assert(b->active && b->cursor <= b->local.n);
	*le = NULL;
	while (b->cursor < b->local.n) {
		const struct walk_ent *x = &b->local.ents[b->cursor];
		size_t m = x->namelen < nlen ? x->namelen : nlen;

		c = memcmp(x->name, name, m);
		if (c == 0)
			c = x->namelen < nlen ? -1 : x->namelen > nlen;
		if (c > 0)
			break;
		b->cursor++;
		if (c == 0) {
			*le = x;
			break;
		}
		r = sync_remove_local(s, x, NULL);
		if (r != 0)
			return r;
	}
	return 0;
}

static int
sync_entry(struct syncer *s, const struct wire_entry *e)
{
	struct sync_block *b = &s->blk;
	const struct walk_ent *le = NULL;
	char path[WIRE_PATH_MAX + 1];
	size_t len;
	int c, r;

	if (!b->active)
		return sync_fail(s, -AR_EPROTO, "primary sent an entry outside "
		    "a directory");
	/* Entries must come strictly sorted: the merge relies on it. */
	if (b->have_last) {
		size_t m = b->last_len < e->name_len ? b->last_len :
		    e->name_len;

		c = memcmp(b->last, e->name, m);
		if (c > 0 || (c == 0 && b->last_len >= e->name_len))
			return sync_fail(s, -AR_EPROTO, "primary's listing of "
			    "'%s' is not sorted", sync_esc(b->path,
			    b->path_len));
	}
	memcpy(b->last, e->name, e->name_len + 1u);
	b->last_len = e->name_len;
	b->have_last = 1;
	if (sync_join(path, b->path, b->path_len, e->name, e->name_len,
	    &len) != 0)
		return sync_fail(s, -AR_EPROTO, "primary sent a path longer "
		    "than %d bytes", WIRE_PATH_MAX);
	if (strncmp(e->name, FS_TMP_PREFIX, strlen(FS_TMP_PREFIX)) == 0)
		return sync_fail(s, -AR_EPROTO, "primary sent a reserved name "
		    "'%s'", sync_esc(path, len));
	s->mf_entries++;
	/* Local names before this one are gone on the primary. */
	r = sync_merge_upto(s, e->name, e->name_len, &le);
	if (r != 0)
		return r;
	/* An excluded name is neither compared nor deleted. */
	if (exclude_match(s->exclude, path, len, e->type == WALK_DIR))
		return 0;
	/* Counting: what has another type here is replaced. */
	if (s->counting)
		return le != NULL && le->type != e->type &&
		    !(le->type == WALK_OTHER &&
		    walk_special_of(le->st.st_mode) == e->type) &&
		    !(le->type == WALK_FILE && e->type == WALK_HARDLINK) ?
		    sync_remove_local(s, le, NULL) : 0;
	s->st->entries++;
	return sync_entry_apply(s, e, le, path, len);
}

/* ---------------------------------------------------------------- */
/* The manifest */

int
sync_merge_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct syncer *s = arg;
	char path[WIRE_PATH_MAX + 1];
	size_t plen;
	uint64_t count;
	int r;

	switch (type) {
	case WIRE_DIR:
		r = sync_block_finish(s);
		if (r != 0)
			return r;
		if (wire_get_dir(p, len, path, &plen) != 0)
			return sync_fail(s, -AR_EPROTO, "primary sent an "
			    "invalid directory path");
		return sync_block_start(s, path, plen);
	case WIRE_ENTRY:
		if (wire_get_entry(p, len, WIRE_ENTRY, &s->ent) != 0)
			return sync_fail(s, -AR_EPROTO, "primary sent an "
			    "invalid entry%s%s", s->blk.active ? " in " : "",
			    s->blk.active ? sync_esc(s->blk.path,
			    s->blk.path_len) : "");
		sync_map_ids(s, &s->ent);
		r = sync_entry(s, &s->ent);
		/* Once: the counting merge of prune.c goes first. */
		if (!s->counting)
			progress_entry(&s->prog, s->ent.type == WALK_FILE ?
			    s->ent.size : 0);
		return r;
	case WIRE_ATTRS:
	case WIRE_XATTRS:
		/* Applied in the final pass, after the contents. */
		if (sync_version(s) < WIRE_V_FIDELITY)
			return sync_fail(s, -AR_EPROTO, "unexpected manifest "
			    "frame");
		return 0;
	case WIRE_IDNAME:
		return sync_idname_frame(s, p, len);
	case WIRE_END:
		if (wire_get_end(p, len, &count) != 0 ||
		    count != s->mf_entries)
			return sync_fail(s, -AR_EPROTO, "primary's manifest "
			    "count does not match its entries");
		return sync_block_finish(s);
	default:
		return sync_fail(s, -AR_EPROTO, "unexpected manifest frame");
	}
}

/* The final pass: directory modes, owners and mtimes, once their
 * contents are final. */
static int
sync_dirattr_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct syncer *s = arg;
	struct sync_block *b = &s->blk;
	char path[WIRE_PATH_MAX + 1];
	size_t plen;
	int r;

	/* Not in a merge: s->blk only names the directory being fixed. */
	assert(!b->active);
	if (type == WIRE_DIR) {
		s->xpending = 0;
		if (b->dirfd >= 0)
			close(b->dirfd);
		b->dirfd = -1;
		if (wire_get_dir(p, len, b->path, &b->path_len) != 0)
			return -AR_EPROTO;
		r = fs_open_beneath(s->rootfd, b->path, O_RDONLY | O_DIRECTORY,
		    0, &b->dirfd);
		if (r != 0)
			b->dirfd = -1;
		return 0;
	}
	if (type == WIRE_XATTRS)
		return sync_xattr_frame(s, p, len);
	if (type == WIRE_ATTRS)
		return sync_attrs_frame(s, p, len);
	if (type == WIRE_IDNAME)
		return sync_idname_frame(s, p, len);
	if (type != WIRE_ENTRY || b->dirfd < 0) {
		s->xpending = 0;
		return 0;
	}
	if (wire_get_entry(p, len, WIRE_ENTRY, &s->ent) != 0)
		return -AR_EPROTO;
	sync_map_ids(s, &s->ent);
	if (sync_join(path, b->path, b->path_len, s->ent.name,
	    s->ent.name_len, &plen) != 0 || exclude_match(s->exclude, path,
	    plen, s->ent.type == WALK_DIR)) {
		s->xpending = 0;
		return 0;
	}
	r = sync_xattrs_apply(s, b->dirfd, s->ent.name, path, plen, &s->ent);
	if (r != 0 || s->ent.type != WALK_DIR)
		return r;
	return sync_dir_attrs(s, b->dirfd, s->ent.name, path, plen, &s->ent);
}

/* ---------------------------------------------------------------- */
/* The run */

int
sync_hello(struct syncer *s)
{
	struct wire_hello h;
	int r;

	r = client_hello(s->client, &h);
	if (r != 0)
		return sync_fail(s, r, "%s", client_errmsg(s->client));
	/* A rescue may ask again to confirm what it closed. */
	if (h.role != WIRE_ROLE_RESCUE &&
	    state_gen_closed(&s->state, h.generation))
		return sync_fail(s, -AR_EFENCED, "primary %s serves generation "
		    "%s, which a rescue closed: refusing a resurrected primary "
		    "(re-initialise it with asyncrep watch --reinit)",
		    s->cfg->primary.text, h.generation);
	memcpy(s->st->generation, h.generation, WIRE_GEN_LEN + 1);
	memcpy(s->hello_gen, h.generation, WIRE_GEN_LEN + 1);
	s->hello_seq = h.seq;
	s->hello_role = h.role;
	log_verbose("primary %s: %s, generation %s, role %s, protocol "
	    "version %u", s->cfg->primary.text,
	    sync_esc(h.server, strlen(h.server)), h.generation,
	    h.role == WIRE_ROLE_RESCUE ? "rescue" : "primary", h.version);
	if (s->o->dry_run)
		return 0;
	return state_gen_follow(&s->state, h.generation, s->msg, s->msglen);
}

/*
 * Whether data_dir's file system holds extended attributes: one
 * warning at start when it does not (vfat, some network mounts), and
 * then every entry that has any is counted as not replicated.
 */
static void
sync_probe_xattrs(struct syncer *s)
{
	char tmp[NAME_MAX + 1];
	int fd;

	s->xattrs_fs = 1;
	if (s->rootfd < 0 || s->o->dry_run || fs_tmpfile(s->rootfd,
	    "xattr-probe", &fd, tmp, sizeof(tmp)) != 0)
		return;
	if (fsetxattr(fd, "user.asyncrep-probe", "1", 1, 0) != 0 &&
	    (errno == ENOTSUP || errno == EOPNOTSUPP)) {
		s->xattrs_fs = 0;
		log_warn("data directory '%s': its file system holds no "
		    "extended attributes: xattrs and ACLs are not replicated",
		    s->cfg->data_dir);
	}
	close(fd);
	(void)unlinkat(s->rootfd, tmp, 0);
}

int
sync_open(struct syncer *s)
{
	const struct config_standby *cfg = s->cfg;
	int r;

	if (s->o->dry_run && access(cfg->data_dir, F_OK) != 0 &&
	    errno == ENOENT) {
		s->rootfd = -1;	/* a dry run creates nothing */
	} else if (fs_mkdir_p(cfg->data_dir, 0755) != 0 ||
	    fs_open_dir(cfg->data_dir, &s->rootfd) != 0)
		return sync_fail(s, -AR_EIO, "data directory '%s': %s",
		    cfg->data_dir, strerror(errno));
	sync_probe_xattrs(s);
	r = state_open(&s->state, cfg->state_dir, s->msg, s->msglen);
	if (r == 0) {
		s->skipped = state_skipped_load(&s->state, s->skip_last);
		s->skipped_saved = s->skipped;
		if (s->rootfd >= 0 && !s->o->dry_run) {
			append_store_sweep(s);
			r = clone_journal_recover(s);
		}
	}
	return r;
}

int
sync_save_skipped(struct syncer *s)
{
	int r;

	if (s->o->dry_run || s->skipped == s->skipped_saved)
		return 0;
	r = state_skipped_save(&s->state, s->skipped, s->skip_last, s->msg,
	    s->msglen);
	if (r == 0)
		s->skipped_saved = s->skipped;
	return r;
}

/* Compare the subtree at path ("" = all) with the primary's and make
 * them equal. Not yet durable: the caller syncs. */
/* --progress: the listing's totals, from the stored manifest. */
static int
sync_progress_count(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct syncer *s = arg;

	if (type != WIRE_ENTRY)
		return 0;
	if (wire_get_entry(p, len, WIRE_ENTRY, &s->ent) != 0)
		return sync_fail(s, -AR_EPROTO, "primary sent an invalid "
		    "entry");
	progress_totals(&s->prog, s->prog.total_entries + 1,
	    s->prog.total_bytes + (s->ent.type == WALK_FILE ? s->ent.size :
	    0));
	return 0;
}

int
sync_compare(struct syncer *s, const char *path, int guard)
{
	int mfd = -1, r;

	s->mf_entries = 0;
	/* A whole compare meets every collision there is. */
	if (path[0] == '\0')
		s->skipped = 0;
	if (path[0] == '\0')
		metrics_add(METRICS_FULL_COMPARES, 1);
	r = fetch_manifest(s, path, &mfd);
	if (r == -AR_EPROTO && path[0] != '\0' &&
	    client_status(s->client) == 404) {
		/* Gone since the batch was made: its K frame or a later
		 * batch tells what became of it. */
		s->msg[0] = '\0';
		return 0;
	}
	if (r != 0)
		return r;
	assert(!guard || path[0] == '\0');
	r = guard ? prune_compare(s, mfd) : 0;
	if (path[0] == '\0')
		progress_begin(&s->prog, s->st->file_bytes);
	if (r == 0 && s->prog.active)
		r = fetch_replay(s, mfd, sync_progress_count);
	s->checksumming = s->o->checksum && path[0] == '\0';
	if (r == 0)
		r = fetch_replay(s, mfd, sync_merge_frame);
	if (r == 0)
		r = sync_block_finish(s);
	s->checksumming = 0;
	if (r == 0 && s->sums.n > 0)
		r = sync_checksum(s);
	verify_list_release(&s->sums);
	if (r == 0)
		r = fetch_flush_all(s);
	if (r == 0)
		r = sync_links_apply(s);
	sync_links_clear(s);
	if (r == 0 && !s->o->dry_run) {
		s->blk.dirfd = -1;
		r = fetch_replay(s, mfd, sync_dirattr_frame);
		if (s->blk.dirfd >= 0)
			close(s->blk.dirfd);
		s->blk.dirfd = -1;
	}
	close(mfd);
	/* Its last line, whatever the outcome: an error comes after it. */
	progress_finish(&s->prog);
	return r;
}

/*
 * --checksum: the files of the merge equal in size and mtime whose
 * content differs from the primary's (or changed while compared) are
 * fetched whole, which verifies them against the primary's hash.
 */
static int
sync_checksum(struct syncer *s)
{
	struct verify_item *it;
	size_t i;
	int r;

	log_verbose("comparing the content of %zu files equal in size and "
	    "mtime", s->sums.n);
	r = verify_sums(s->client, s->rootfd, &s->sums, 0, s->msg,
	    s->msglen);
	for (i = 0; r == 0 && i < s->sums.n; i++) {
		it = &s->sums.items[i];
		if (it->verdict != VERIFY_DIFFERS &&
		    it->verdict != VERIFY_CHANGING)
			continue;
		log_verbose("'%s': content differs from the primary's",
		    sync_esc(it->path, strlen(it->path)));
		if (s->o->dry_run) {
			sync_itemize(s, ">fc........", it->path,
			    strlen(it->path), "");
			continue;
		}
		r = fetch_batch_add(s, it->path, strlen(it->path), it->fsize,
		    1);
	}
	return r;
}

/* Deletions, links and attributes: durable before we say so. */
int
sync_make_durable(struct syncer *s)
{
	if (s->changed && s->rootfd >= 0 && syncfs(s->rootfd) != 0)
		return sync_fail(s, -AR_EIO, "syncfs: %s", strerror(errno));
	s->changed = 0;
	s->inline_fsyncs = 0;
	return 0;
}

/*
 * A batch of a change or two (the common case while following) then
 * costs the fsyncs of what it touched, not a syncfs, which waits for all
 * the dirty data of the file system, other writers' too: 6 ms on a busy
 * host, on the path of the next change. Past SYNC_FSYNC_INLINE, or once
 * a syncfs is due anyway, the syncfs does it.
 */
int
sync_durable_fd(struct syncer *s, int fd)
{
	if (s->changed || s->inline_fsyncs >= SYNC_FSYNC_INLINE) {
		s->changed = 1;
		return 0;
	}
	if (fsync(fd) != 0)
		return sync_fail(s, -AR_EIO, "fsync: %s", strerror(errno));
	s->inline_fsyncs++;
	return 0;
}

/* sync_durable_fd of the directory dirfd/name. */
static int
sync_durable_at(struct syncer *s, int dirfd, const char *name)
{
	int fd, r;

	if (s->changed || s->inline_fsyncs >= SYNC_FSYNC_INLINE) {
		s->changed = 1;
		return 0;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd < 0) {
		s->changed = 1;	/* the syncfs makes it durable */
		return 0;
	}
	r = sync_durable_fd(s, fd);
	close(fd);
	return r;
}

void
sync_pace(struct syncer *s, struct client *c)
{
	client_set_rate(c, s->cfg->bwlimit != 0 ? &s->bw : NULL);
}

static int
sync_once(struct syncer *s)
{
	int r;

	r = sync_open(s);
	if (r == 0)
		r = client_new(s->cfg, s->o->auth, &s->client);
	if (r == 0)
		sync_pace(s, s->client);
	if (r == 0)
		r = sync_hello(s);
	if (r == 0)
		r = sync_compare(s, "", 1);
	if (r == 0)
		r = sync_make_durable(s);
	/* A later --follow starts from here instead of comparing again. */
	if (r == 0 && !s->o->dry_run && s->st->files_failed == 0) {
		r = state_position_save(&s->state, s->hello_gen,
		    s->hello_seq, s->msg, s->msglen);
		if (r == 0)
			sync_metrics_applied(s->hello_seq);
	}
	if (r == 0)
		r = sync_save_skipped(s);
	if (r == 0 && s->st->files_failed > 0)
		r = sync_fail(s, -AR_EPARTIAL, "%llu files were not replicated",
		    (unsigned long long)s->st->files_failed);
	if (r == 0 && s->unreplicated > 0)
		r = sync_fail(s, -AR_EPARTIAL, "%llu entries of the primary "
		    "were not replicated (see the warnings)",
		    (unsigned long long)s->unreplicated);
	if (r == 0 && s->skipped > 0)
		r = sync_fail(s, -AR_EPARTIAL, "%llu entries of the primary "
		    "were not replicated: they would replace names excluded "
		    "on this standby", (unsigned long long)s->skipped);
	return r;
}

/* ---------------------------------------------------------------- */
/* Life cycle */

void
sync_metrics_applied(uint64_t seq)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	metrics_set(METRICS_APPLIED_SEQ, seq);
	metrics_set(METRICS_LAST_APPLY_NS, (uint64_t)now.tv_sec *
	    1000000000ull + (uint64_t)now.tv_nsec);
}

/* The xattr policy of [standby] (xattrs =, selinux =, acls =). */
static int
sync_init_xattrs(struct syncer *s)
{
	const struct config_standby *c = s->cfg;

	if (xattr_policy_parse(c->xattrs != NULL ? c->xattrs :
	    "user, trusted, security", &s->xcfg) != 0) {
		snprintf(s->msg, s->msglen, "key 'xattrs' of [standby]: '%s' "
		    "is not a list of user, trusted and security (or none)",
		    sync_esc(c->xattrs, strlen(c->xattrs)));
		return -AR_ECONFIG;
	}
	s->xcfg.selinux = c->selinux;
	s->xcfg.acls = c->acls;
	s->xpol = s->xcfg;
	if (!s->is_root)
		s->xpol.trusted = s->xpol.security = 0;
	s->xwant = malloc(sizeof(*s->xwant));
	s->xlocal = malloc(sizeof(*s->xlocal));
	if (s->xwant == NULL || s->xlocal == NULL)
		return -AR_ENOMEM;
	xattr_clear(s->xwant);
	return 0;
}

int
sync_init(struct syncer *s, const struct sync_opts *o,
    struct sync_stats *st, char *msg, size_t msglen)
{
	int r;

	memset(s, 0, sizeof(*s));
	memset(st, 0, sizeof(*st));
	s->o = o;
	s->cfg = o->cfg;
	s->st = st;
	s->rootfd = -1;
	state_init(&s->state);
	s->blk.dirfd = -1;
	s->is_root = geteuid() == 0;
	s->msg = msg;
	s->msglen = msglen;
	msg[0] = '\0';
	walk_dir_init(&s->blk.local);
	progress_init(&s->prog, o->progress, stderr);
	state_standby_id(s->cfg, s->id, sizeof(s->id));
	rate_init(&s->bw, s->cfg->bwlimit, NULL);
	r = exclude_new(&s->exclude);
	if (r == 0 && s->cfg->exclude != NULL &&
	    exclude_add_list(s->exclude, s->cfg->exclude, msg, msglen) != 0)
		r = -AR_ECONFIG;
	if (r == 0 && s->cfg->inplace != NULL && s->cfg->inplace[0] != '\0') {
		r = exclude_new(&s->inplace);
		if (r == 0 && exclude_add_list(s->inplace, s->cfg->inplace,
		    msg, msglen) != 0)
			r = -AR_ECONFIG;
	}
	if (r == 0)
		r = sync_init_xattrs(s);
	if (r == 0 && s->cfg->map_users)
		r = idnames_map_new(&s->names);
	return r;
}

void
sync_release(struct syncer *s)
{
	size_t i;

	lane_free(s);
	if (s->client != NULL)
		client_traffic(s->client, &s->st->net_sent,
		    &s->st->net_received);
	s->st->net_sent += s->lane_sent;
	s->st->net_received += s->lane_received;
	fetch_batch_clear(s);
	free(s->batch.items);
	verify_list_release(&s->sums);
	if (s->blk.dirfd >= 0)
		close(s->blk.dirfd);
	walk_dir_release(&s->blk.local);
	for (i = 0; i < s->nretry; i++)
		free(s->retry[i]);
	free(s->retry);
	for (i = 0; i < s->nrescan; i++)
		free(s->rescan[i]);
	free(s->rescan);
	exclude_free(s->exclude);
	exclude_free(s->inplace);
	free(s->xwant);
	free(s->xlocal);
	sync_links_clear(s);
	free(s->hl);
	idnames_map_free(s->names);
	client_free(s->client);
	rate_release(&s->bw);
	state_release(&s->state);
	if (s->rootfd >= 0)
		close(s->rootfd);
}

int
sync_follow(const struct sync_opts *o, struct sync_stats *st,
    volatile sig_atomic_t *stop, char *msg, size_t msglen)
{
	struct syncer s;
	int r;

	r = sync_init(&s, o, st, msg, msglen);
	if (r == 0)
		r = follow_run(&s, stop);
	sync_release(&s);
	return r;
}

int
sync_run(const struct sync_opts *o, struct sync_stats *st, char *msg,
    size_t msglen)
{
	struct syncer s;
	int r;

	r = sync_init(&s, o, st, msg, msglen);
	if (r == 0)
		r = sync_once(&s);
	if (r != 0 && msg[0] == '\0')
		snprintf(msg, msglen, "%s", ar_strerror(r));
	sync_release(&s);
	return r;
}


/*
 * wire.h: the asyncrep protocol's binary frames (see PROTOCOL.md).
 *
 * Pure encode/decode, no I/O, so every parser of peer data can be unit
 * tested and fuzzed on its own. A frame is: type (1 byte), payload length
 * (4 bytes, big-endian, at most WIRE_MAX_FRAME), payload.
 */
#ifndef ASYNCREP_WIRE_H
#define ASYNCREP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "limit.h"

/*
 * The range of protocol versions this build speaks. The standby offers
 * its range in the hello request (header WIRE_HDR_VERSIONS, "MIN-MAX"),
 * the server answers the highest version both speak, and the standby
 * names it in every later request (header WIRE_HDR_VERSION). No header
 * means a version 1 peer. A frame or field that a version adds is used
 * only when that version was negotiated.
 */
#define WIRE_VERSION_MIN 1
/* What each version adds (PROTOCOL.md "What each version adds"). */
#define WIRE_V_COMPRESS 3	/* zstd bodies (compress.h) */
#define WIRE_V_OPS 4		/* POST /v1/sums: whole-file hashes only;
				 * the W frame of a batch */
/* Version 5 (fidelity): special files in E and U frames (types p, s, c,
 * b), the A frame (a directory's own state: the root's attributes), the
 * Y frame (xattrs and ACLs, xattr.h), the O frame (a hole of a sparse
 * file sent whole). */
#define WIRE_V_FIDELITY 5
#define WIRE_V_APPEND 6		/* POST /v1/append: Q, B frames, R basis */
#define WIRE_V_LANES 7		/* GET /v1/changes takes ack= (the
				 * standby's durable position, at most
				 * since): a big file of an earlier batch
				 * is still sent in its own lane
				 * (PROTOCOL.md "Lanes") */
#define WIRE_V_BLOCKS 8		/* POST /v1/blocks: the blocks of a
				 * changed file that differ from the
				 * version the standby names in Q
				 * (PROTOCOL.md "The changed-blocks
				 * path") */
/* The I frame: the name of a uid or gid the next entries use, in the
 * manifest and in a batch of changes (map_users, idnames.h). */
#define WIRE_V_NAMES 9
#define WIRE_VERSION_MAX WIRE_V_NAMES	/* the highest of the above */
#define WIRE_VERSION_LIMIT 65535	/* highest version a peer may name */
#define WIRE_HDR_VERSIONS "X-Asyncrep-Versions"
#define WIRE_HDR_VERSION "X-Asyncrep-Version"
#define WIRE_HDR 5
#define WIRE_MAX_FRAME (1u << 20)	/* largest payload accepted */
#define WIRE_DATA_CHUNK (256u * 1024)	/* largest payload we send as data */
#define WIRE_PATH_MAX LIMIT_PATH_MAX	/* bytes of a relative path */
#define WIRE_NAME_MAX LIMIT_NAME_MAX	/* bytes of one component */
#define WIRE_TARGET_MAX LIMIT_TARGET_MAX /* bytes of a symlink target */
#define WIRE_MSG_MAX 1024		/* bytes of an error message */
#define WIRE_GEN_LEN LIMIT_GEN_LEN	/* hex characters of a generation id */

enum wire_type {
	WIRE_HELLO = 'H',	/* server hello */
	WIRE_DIR = 'P',		/* manifest: start of a directory's listing */
	WIRE_ENTRY = 'E',	/* manifest: one child of the current directory */
	WIRE_END = 'Z',		/* end of a stream, with a count */
	WIRE_ERROR = 'X',	/* the server gave up: code and message */
	WIRE_REQ = 'N',		/* request: one path (+ basis size) */
	WIRE_FILE = 'F',	/* file transfer header: stat at open */
	WIRE_DATA = 'D',	/* raw bytes (file content or delta) */
	WIRE_TRAILER = 'T',	/* file transfer end: size and hash */
	WIRE_RETRY = 'R',	/* file changed or vanished while sent */
	/* continuous replication (GET /v1/changes) */
	WIRE_MOVE = 'M',	/* rename path -> path2 on the standby */
	WIRE_STATE = 'U',	/* current state of a path (entry, whole path) */
	WIRE_GONE_PATH = 'K',	/* path no longer exists: delete it */
	WIRE_RESCAN = 'S',	/* compare the subtree at path ("" = all) */
	WIRE_GONE = 'G',	/* position unknown here: full compare (u64 seq) */
	WIRE_COMPLETE = 'C',	/* rescue: the generation ends at this position */
	WIRE_WHEN = 'W',	/* v4: when the oldest change of a batch was
				 * recorded (u64 ns since the epoch) */
	/* from WIRE_V_FIDELITY on */
	WIRE_ATTRS = 'A',	/* the state of a directory itself ("" root) */
	WIRE_XATTRS = 'Y',	/* xattrs and ACLs of the next E, U or A */
	WIRE_HOLE = 'O',	/* whole file: u64 bytes of zeros, a hole */
	/* the append path (WIRE_V_APPEND, POST /v1/append) */
	WIRE_APPEND = 'Q',	/* request: path, the size and root held */
	WIRE_BLOCK = 'B',	/* the index and hash of the block that follows */
	/* WIRE_V_NAMES */
	WIRE_IDNAME = 'I',	/* the name of a uid or gid (map_users) */
};

/* The kind of an I frame. */
enum wire_idkind {
	WIRE_ID_USER = 'u',
	WIRE_ID_GROUP = 'g',
};

#define WIRE_IDNAME_MAX 255	/* bytes of a user or group name */

/* An I frame: id (never 0) is called name on the server's host. */
struct wire_idname {
	uint8_t kind;			/* enum wire_idkind */
	uint32_t id;
	uint8_t name_len;
	char name[WIRE_IDNAME_MAX + 1];
};

enum wire_role {
	WIRE_ROLE_PRIMARY = 1,
	WIRE_ROLE_RESCUE = 2,
};

enum wire_retry_reason {
	WIRE_RETRY_CHANGED = 1,	/* stat or size differed after sending */
	WIRE_RETRY_GONE = 2,	/* vanished, or no longer a regular file */
	WIRE_RETRY_UNREADABLE = 3, /* open or read failed on the server */
	WIRE_RETRY_BASIS = 4,	/* append: the standby's version is not a
				 * prefix the server can prove (v3 on) */
};

struct wire_hello {
	uint32_t version;		/* the version chosen for this peer */
	uint32_t vmin, vmax;		/* the server's range (v2 on; v1 layout:
				 * vmax 0 to send, version on receipt) */
	uint32_t role;			/* enum wire_role */
	char generation[WIRE_GEN_LEN + 1];
	char server[64];		/* "asyncrep X.Y", NUL-terminated */
	uint64_t seq;			/* last released change sequence */
};

/*
 * One entry of the manifest, or the stat of a file being sent. From
 * WIRE_V_FIDELITY on, E and U frames also carry special files (types
 * 'p' FIFO, 's' socket, 'c' character and 'b' block device); a
 * device's size field is its number, major << 32 | minor (wire_rdev).
 */
struct wire_entry {
	uint8_t type;			/* enum walk_type: 'f', 'd', 'l', or a
					 * special: 'p', 's', 'c', 'b' */
	uint16_t name_len;
	char name[WIRE_PATH_MAX + 1];	/* ENTRY: a name; FILE: a path */
	uint64_t size;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint32_t mode;			/* permission bits only (07777) */
	uint32_t uid, gid;
	uint16_t target_len;
	char target[WIRE_TARGET_MAX + 1]; /* symlink target */
};

struct wire_req {
	uint16_t path_len;
	char path[WIRE_PATH_MAX + 1];
	uint64_t basis_size;		/* delta: size of the standby's file */
};

/* M, K and S frames: one path, or two for M. */
struct wire_pathop {
	uint16_t path_len;
	char path[WIRE_PATH_MAX + 1];
	uint16_t path2_len;
	char path2[WIRE_PATH_MAX + 1];
};

struct wire_trailer {
	uint64_t size;
	uint8_t hash[32];
};

/* A Q frame: the standby holds the first size bytes, of root root. */
struct wire_append {
	uint16_t path_len;
	char path[WIRE_PATH_MAX + 1];
	uint64_t size;
	uint8_t root[32];
};

/* A B frame: the hash of block index of the new version. */
struct wire_block {
	uint64_t index;
	uint8_t hash[16];
};

struct wire_error {
	uint32_t code;			/* enum ar_err */
	uint16_t msg_len;
	char msg[WIRE_MSG_MAX + 1];
};

struct wire_retry {
	uint32_t reason;		/* enum wire_retry_reason */
	uint16_t path_len;
	char path[WIRE_PATH_MAX + 1];
};

/*
 * A relative path from a peer is valid when it is "" (the root) or
 * components separated by single '/', none empty, "." or "..", none
 * longer than WIRE_NAME_MAX, no NUL, no leading or trailing '/', total at
 * most WIRE_PATH_MAX. Returns 1 if valid.
 */
int wire_path_valid(const char *p, size_t len);
/* A name (one component): non-empty, no '/', no NUL, not "." or "..". */
int wire_name_valid(const char *p, size_t len);

/*
 * Encoders write one whole frame (header included) into out (size
 * outlen) and return its length, -AR_ENOMEM if it does not fit or a
 * length exceeds its limit, or -AR_EINTERNAL for contents no caller
 * should build (an invalid path, mode or type). wire_put_entry takes
 * WIRE_ENTRY (a name), WIRE_FILE (a path, regular files only),
 * WIRE_STATE (a path, any type) or WIRE_ATTRS (a path, "" allowed, a
 * directory only).
 */
int wire_put_hello(uint8_t *out, size_t outlen, const struct wire_hello *h);
/* The size field of a device of number (major, minor), and back. */
uint64_t wire_rdev(unsigned major, unsigned minor);
void wire_rdev_split(uint64_t size, unsigned *major, unsigned *minor);
/* 1 if type is one of the special types of WIRE_V_FIDELITY. */
int wire_type_special(uint8_t type);
int wire_put_dir(uint8_t *out, size_t outlen, const char *path, size_t len);
int wire_put_entry(uint8_t *out, size_t outlen, uint8_t frame_type,
    const struct wire_entry *e);
int wire_put_end(uint8_t *out, size_t outlen, uint64_t count);
int wire_put_error(uint8_t *out, size_t outlen, uint32_t code,
    const char *msg);
int wire_put_req(uint8_t *out, size_t outlen, const char *path, size_t len,
    uint64_t basis_size);
int wire_put_trailer(uint8_t *out, size_t outlen,
    const struct wire_trailer *t);
int wire_put_retry(uint8_t *out, size_t outlen, uint32_t reason,
    const char *path, size_t len);
int wire_put_append(uint8_t *out, size_t outlen, const struct wire_append *a);
int wire_put_block(uint8_t *out, size_t outlen, const struct wire_block *b);
/* M (two paths), K (one path) or S (one path, "" allowed). */
int wire_put_pathop(uint8_t *out, size_t outlen, uint8_t type,
    const char *path, size_t len, const char *path2, size_t len2);
/* O: a hole of len bytes (1 to WIRE_HOLE_MAX) in a file sent whole. */
#define WIRE_HOLE_MAX (UINT64_C(1) << 30)
int wire_put_hole(uint8_t *out, size_t outlen, uint64_t len);
int wire_get_hole(const uint8_t *p, size_t len, uint64_t *hole);
/* I: a user or group name, as wire_idname_valid takes it; id not 0. */
int wire_put_idname(uint8_t *out, size_t outlen, uint8_t kind, uint32_t id,
    const char *name, size_t len);
int wire_get_idname(const uint8_t *p, size_t len, struct wire_idname *n);
/* 1 if a user or group name may travel: 1 to WIRE_IDNAME_MAX bytes,
 * none a control character, blank, '/', ':' or ',', not "." or "..". */
int wire_idname_valid(const char *p, size_t len);
/* Header of a data frame of len payload bytes (len <= WIRE_MAX_FRAME);
 * writes WIRE_HDR bytes. */
void wire_put_data_hdr(uint8_t *out, uint32_t len);

/*
 * Decoders take one frame's payload (type already known) and return 0,
 * or -AR_EPROTO for anything malformed: short, trailing bytes, invalid
 * path or name, bad type, lengths beyond the limits above.
 */
int wire_get_hello(const uint8_t *p, size_t len, struct wire_hello *h);

/*
 * Version negotiation, pure. wire_versions_parse reads a WIRE_HDR_VERSIONS
 * value ("MIN-MAX", or one number N for N-N; decimal, 1 to
 * WIRE_VERSION_LIMIT, MIN <= MAX) and returns 0 or -AR_EPROTO.
 * wire_version_parse reads a WIRE_HDR_VERSION value (one number).
 * wire_version_pick chooses the highest version in both [lo, hi] and
 * [my_lo, my_hi]: 0, or -AR_EVERSION when the ranges do not overlap.
 */
int wire_versions_parse(const char *s, uint32_t *lo, uint32_t *hi);
int wire_version_parse(const char *s, uint32_t *v);
int wire_version_pick(uint32_t lo, uint32_t hi, uint32_t my_lo,
    uint32_t my_hi, uint32_t *v);
int wire_get_dir(const uint8_t *p, size_t len, char *path, size_t *path_len);
int wire_get_entry(const uint8_t *p, size_t len, uint8_t frame_type,
    struct wire_entry *e);
int wire_get_end(const uint8_t *p, size_t len, uint64_t *count);
int wire_get_error(const uint8_t *p, size_t len, struct wire_error *e);
int wire_get_req(const uint8_t *p, size_t len, struct wire_req *r);
int wire_get_trailer(const uint8_t *p, size_t len, struct wire_trailer *t);
int wire_get_retry(const uint8_t *p, size_t len, struct wire_retry *r);
int wire_get_pathop(const uint8_t *p, size_t len, uint8_t type,
    struct wire_pathop *op);
int wire_get_append(const uint8_t *p, size_t len, struct wire_append *a);
int wire_get_block(const uint8_t *p, size_t len, struct wire_block *b);

/*
 * Incremental frame splitter for a byte stream (an HTTP body arriving in
 * pieces). It buffers at most one frame: WIRE_HDR + max_frame bytes.
 */
struct wire_reader {
	uint8_t *buf;
	size_t len;			/* bytes buffered */
	size_t cap;
	uint32_t max_frame;
	int failed;			/* sticky: a bad header was seen */
};

/* Called for each complete frame; a non-zero return stops the feed and is
 * returned by wire_reader_feed. */
typedef int wire_frame_cb(void *arg, uint8_t type, const uint8_t *payload,
    uint32_t len);

int wire_reader_init(struct wire_reader *r, uint32_t max_frame);
void wire_reader_release(struct wire_reader *r);
/* Split data into frames and call cb for each. Returns 0, the callback's
 * non-zero value, or -AR_EPROTO for a frame longer than max_frame. */
int wire_reader_feed(struct wire_reader *r, const void *data, size_t len,
    wire_frame_cb *cb, void *arg);
/* 1 when no partial frame is buffered (a stream may end here). */
int wire_reader_idle(const struct wire_reader *r);

#endif

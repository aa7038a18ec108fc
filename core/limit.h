/*
 * limit.h: the sizes every layer agrees on, and the pure checks of a
 * generation id and of a standby id.
 *
 * A path, a name or a symlink target longer than these is refused alike
 * by the filesystem layer (fs.c), the journal (spool-rec.c), the watcher
 * and the wire (wire.h gives them their protocol names), so no lower
 * module needs the protocol's header for a number. Not <limits.h>: core/
 * is on the include path, and that name would hide the system's.
 */
#ifndef ASYNCREP_LIMIT_H
#define ASYNCREP_LIMIT_H

#include <stddef.h>

#define LIMIT_PATH_MAX 4095	/* bytes of a relative path */
#define LIMIT_NAME_MAX 255	/* bytes of one component */
#define LIMIT_TARGET_MAX 4095	/* bytes of a symlink target */
#define LIMIT_GEN_LEN 32	/* hex characters of a generation id */
#define LIMIT_ID_MAX 64		/* characters of a standby id */

/*
 * 1 if the len bytes at s are a generation id: exactly LIMIT_GEN_LEN
 * lowercase hex digits. Reads no byte past the first that is not one.
 */
int limit_gen_valid(const char *s, size_t len);

/*
 * 1 if the len bytes at s are a standby id (standby_id, the id= of
 * /v1/changes, an ack file's name, --standby): 1 to LIMIT_ID_MAX
 * characters of [A-Za-z0-9._-].
 */
int limit_id_valid(const char *s, size_t len);

#endif

/*
 * status.h: what asyncrep status reports, from durable state.
 *
 * On a primary: the generation, the spool (sequence range, size, and
 * whether it records changes), each standby's acknowledged position and
 * its lag in records, bytes and seconds, and the watcher's figures that a
 * running watch leaves in spool_dir/watch.status. On a standby: the generation it follows, its
 * applied position, and its lag behind the primary when reachable.
 */
#ifndef ASYNCREP_STATUS_H
#define ASYNCREP_STATUS_H

#include <stdio.h>

#include "auth.h"
#include "config.h"
#include "primary.h"

/* What status reads from spool_dir: the file a running watch writes. */
#define STATUS_FILE PRIMARY_STATUS_FILE

int status_primary(const struct config_primary *cfg, int json, FILE *out,
    char *err, size_t errlen);
int status_standby(const struct config_standby *cfg, const struct auth *auth,
    int json, FILE *out, char *err, size_t errlen);

#endif

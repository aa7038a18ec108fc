/*
 * gen.h: the generation id of a primary incarnation, kept in spool_dir.
 *
 * A generation is 32 lowercase hex characters from getrandom(), created
 * the first time a primary starts on an empty spool directory and kept
 * (durably) for as long as that spool lives. The standby records the
 * generation it follows; a rescue closes it.
 */
#ifndef ASYNCREP_GEN_H
#define ASYNCREP_GEN_H

#include "wire.h"

/*
 * Open (creating if needed) the spool directory, take its exclusive lock
 * (a second primary on the same spool is refused with -AR_ESTATE), and
 * load or create the generation. *lockfd stays open while the lock is
 * needed.
 */
int gen_open(const char *spool_dir, int *lockfd,
    char generation[WIRE_GEN_LEN + 1], char *err, size_t errlen);

/* 1 if s is a well-formed generation id. */
int gen_valid(const char *s);

#endif

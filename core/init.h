/*
 * init.h: asyncrep init: a first configuration for one role, with the
 * credentials it names, for an operator setting up a node.
 *
 * In DIR (created 0700 if missing): asyncrep.conf, a commented
 * configuration of the role's section; tls/key.pem (0600) and
 * tls/cert.pem, a key pair made as asyncrep keygen makes it; and, for a
 * primary, token (0600), a new random token. Nothing that exists is ever
 * replaced: init checks that every file it would write is absent before
 * it writes any. The configuration is the last file written and is
 * checked as asyncrep checks a configuration before it is written;
 * without the peer's pin it lacks only tls_trust.
 */
#ifndef ASYNCREP_INIT_H
#define ASYNCREP_INIT_H

#include <stddef.h>
#include <stdio.h>

/* Most --set options of one init. */
#define INIT_SETS_MAX 32

struct init_opts {
	const char *role;	/* "primary" or "standby" */
	const char *dir;	/* NULL: /etc/asyncrep */
	const char *peer_pin;	/* the peer's pin(s) for tls_trust, or NULL */
	const char *sets[INIT_SETS_MAX];	/* "key=value" of the role */
	size_t nsets;
};

/* The directory init writes when none is given. */
#define INIT_DIR_DEFAULT "/etc/asyncrep"

/*
 * Write the files above and print to out what was written, this node's
 * pin and what to copy to the other nodes. Returns 0, -AR_EUSAGE (role,
 * a --set or the pin), -AR_ECONFIG (the configuration would not be
 * valid), or -AR_EIO (a file exists, or cannot be written), with the
 * reason in err.
 */
int init_run(const struct init_opts *o, FILE *out, char *err,
    size_t errlen);

#endif

/*
 * error.h: the one error enum of asyncrep.
 *
 * Every core function returns 0 or the negation of one of these values.
 * The command-line tool exits with the positive value, so each number is
 * also an exit status: documented in man/asyncrep.1 EXIT STATUS, never
 * renumbered, never reused.
 */
#ifndef ASYNCREP_ERROR_H
#define ASYNCREP_ERROR_H

enum ar_err {
	AR_OK = 0,		/* 0: success */
	AR_EUSAGE = 1,		/* 1: bad command line or option value */
	AR_ECONFIG = 2,		/* 2: bad configuration file */
	AR_EPARTIAL = 3,	/* 3: partial transfer: some files were not replicated */
	AR_EUNREACH = 4,	/* 4: primary unreachable (connect, timeout, reset) */
	AR_EAUTH = 5,		/* 5: authentication refused (token) */
	AR_EPROTO = 6,		/* 6: protocol error: malformed or hostile peer data */
	AR_EIO = 7,		/* 7: local I/O error (read, write, fsync, rename) */
	AR_ENOMEM = 8,		/* 8: out of memory or a size limit exceeded */
	AR_EBIND = 9,		/* 9: cannot listen on the configured address */
	AR_EVERSION = 10,	/* 10: peer speaks an unsupported protocol version */
	AR_ECHANGED = 11,	/* 11: source file changed while being sent (retry) */
	AR_EFENCED = 12,	/* 12: generation fenced (closed by a rescue) */
	AR_ESTATE = 13,		/* 13: local state (spool/state dir) unusable or locked */
	AR_EINTERNAL = 14,	/* 14: internal error (a bug) */
	AR_ESIGNAL = 15,	/* 15: interrupted by a signal */
	AR_ENOSTANDBY = 16,	/* 16: rescue: no standby came within --timeout */
	AR_ESTORAGE = 17,	/* 17: the primary's storage is unreadable or hung */
	AR_ERESCUE_PARTIAL = 18, /* 18: rescue: some standby was not completed */
	AR_EDIFFER = 19,	/* 19: verify: the standby differs from the primary */
	AR_ESOURCE = 20,	/* 20: data_dir is not the tree this spool served */
	AR_EMAXDELETE = 21,	/* 21: sync: more deletions than max_delete allows */
	AR__MAX
};

/* A short lowercase description of err (positive or negative). */
const char *ar_strerror(int err);

#endif

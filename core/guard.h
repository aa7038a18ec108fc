/*
 * guard.h: a bound on the time one thread may spend in filesystem work.
 *
 * A rescue reads a failed primary's storage over NFS. With a hard mount
 * whose server is gone, a read or a stat never returns and nothing in
 * the calling thread can notice. So every thread that touches that
 * storage marks its stretches of work (guard_enter ... guard_leave, with
 * guard_progress in long loops), and a watchdog thread checks the marks:
 * a stretch that made no progress for the limit calls the expiry handler,
 * which reports the hung storage and ends the process (a thread blocked
 * in the kernel cannot be cancelled, but the process can be killed).
 *
 * Without guard_start the marks cost two clock reads and do nothing else.
 */
#ifndef ASYNCREP_GUARD_H
#define ASYNCREP_GUARD_H

#include <stdint.h>

/* What the handler is told about the stretch that ran out of time. */
struct guard_expiry {
	const char *what;	/* the guard_enter label */
	uint64_t stuck_ns;	/* time since its last progress */
};

typedef void (*guard_expired_fn)(void *arg, const struct guard_expiry *e);

/* Start the watchdog: fn is called (from the watchdog thread, once) when
 * a stretch makes no progress for limit_ns. fn should not return. */
int guard_start(uint64_t limit_ns, guard_expired_fn fn, void *arg);
void guard_stop(void);

/* Replace the handler of a running watchdog (a command that knows more
 * about what it was doing, or has a status to record). */
void guard_handler(guard_expired_fn fn, void *arg);

/* Mark the start and the end of a stretch of work in this thread. what is
 * a static label for the report. Nested calls count: only the outermost
 * pair opens and closes the stretch. */
void guard_enter(const char *what);
void guard_leave(void);

/* The stretch is alive: restart its clock (per directory listed, per
 * block read). */
void guard_progress(void);

#endif

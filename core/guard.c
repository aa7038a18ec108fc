/*
 * guard.c: the watchdog of guard.h.
 *
 * Each thread that enters a stretch takes a slot of a fixed table the
 * first time (thread pool threads live as long as the process). A slot
 * holds the monotonic time of the stretch's last progress, 0 when the
 * thread is outside any stretch. The watchdog scans the table four times
 * a second.
 */
#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "error.h"
#include "guard.h"
#include "util.h"

#define GUARD_SLOTS 512
#define GUARD_TICK_NS (250ull * 1000 * 1000)

struct guard_slot {
	_Atomic uint64_t since;		/* last progress, 0: idle */
	_Atomic(const char *) what;
};

static struct guard_slot slots[GUARD_SLOTS];
static atomic_uint nslots;

static _Thread_local int my_slot = -1;	/* -2: table full */
static _Thread_local unsigned depth;

static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond;
static pthread_t wd_thread;
static int wd_running, wd_stop;
static uint64_t wd_limit;
static guard_expired_fn wd_fn;
static void *wd_arg;

/* The calling thread's slot, taken on its first call; NULL once the
 * table is full (that thread is not watched). */
static struct guard_slot *
guard_my_slot(void)
{
	unsigned i;

	if (my_slot == -1) {
		i = atomic_fetch_add(&nslots, 1);
		my_slot = i < GUARD_SLOTS ? (int)i : -2;
	}
	return my_slot >= 0 ? &slots[my_slot] : NULL;
}

void
guard_enter(const char *what)
{
	struct guard_slot *s;

	if (depth++ > 0)
		return;
	s = guard_my_slot();
	if (s == NULL)
		return;
	atomic_store(&s->what, what);
	atomic_store(&s->since, util_mono_ns());
}

void
guard_leave(void)
{
	struct guard_slot *s;

	/* Every leave closes an enter of the same thread. */
	assert(depth > 0);
	if (depth == 0 || --depth > 0)
		return;
	s = guard_my_slot();
	if (s == NULL)
		return;
	atomic_store(&s->since, 0);
}

void
guard_progress(void)
{
	struct guard_slot *s;

	if (depth == 0)
		return;
	s = guard_my_slot();
	if (s == NULL)
		return;
	atomic_store(&s->since, util_mono_ns());
}

static void *
guard_watchdog(void *arg)
{
	struct timespec until;
	struct guard_expiry e;
	uint64_t now, since;
	unsigned i, n;

	(void)arg;
	pthread_mutex_lock(&wd_lock);
	while (!wd_stop) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)GUARD_TICK_NS;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&wd_cond, &wd_lock, &until);
		if (wd_stop)
			break;
		now = util_mono_ns();
		n = atomic_load(&nslots);
		if (n > GUARD_SLOTS)
			n = GUARD_SLOTS;
		for (i = 0; i < n; i++) {
			since = atomic_load(&slots[i].since);
			if (since == 0 || now < since ||
			    now - since < wd_limit || wd_fn == NULL)
				continue;
			guard_expired_fn fn = wd_fn;
			void *fnarg = wd_arg;

			e.what = atomic_load(&slots[i].what);
			e.stuck_ns = now - since;
			pthread_mutex_unlock(&wd_lock);
			fn(fnarg, &e);
			return NULL;
		}
	}
	pthread_mutex_unlock(&wd_lock);
	return NULL;
}

void
guard_handler(guard_expired_fn fn, void *arg)
{
	pthread_mutex_lock(&wd_lock);
	wd_fn = fn;
	wd_arg = arg;
	pthread_mutex_unlock(&wd_lock);
}

int
guard_start(uint64_t limit_ns, guard_expired_fn fn, void *arg)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	int r;

	pthread_mutex_lock(&wd_lock);
	if (wd_running) {
		pthread_mutex_unlock(&wd_lock);
		return -AR_EINTERNAL;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wd_cond, &ca);
	pthread_condattr_destroy(&ca);
	wd_limit = limit_ns;
	wd_fn = fn;
	wd_arg = arg;
	wd_stop = 0;
	/* No signal for the watchdog: a command that waits for its
	 * signals (sigtimedwait) blocks them later, in its own thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&wd_thread, NULL, guard_watchdog, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	wd_running = r == 0;
	pthread_mutex_unlock(&wd_lock);
	return r == 0 ? 0 : -AR_EINTERNAL;
}

void
guard_stop(void)
{
	pthread_mutex_lock(&wd_lock);
	if (!wd_running) {
		pthread_mutex_unlock(&wd_lock);
		return;
	}
	wd_stop = 1;
	pthread_cond_signal(&wd_cond);
	pthread_mutex_unlock(&wd_lock);
	pthread_join(wd_thread, NULL);
	pthread_mutex_lock(&wd_lock);
	wd_running = 0;
	pthread_cond_destroy(&wd_cond);
	pthread_mutex_unlock(&wd_lock);
}

/*
 * rate.c: the token bucket of bwlimit (see rate.h).
 */
#include <errno.h>
#include <time.h>

#include "rate.h"
#include "util.h"

#define RATE_NS UINT64_C(1000000000)

void
rate_init(struct rate *r, uint64_t bytes_per_s, rate_clock_fn *clock)
{
	uint64_t burst = bytes_per_s / 10;

	pthread_mutex_init(&r->lock, NULL);
	r->rate = bytes_per_s;
	r->clock = clock != NULL ? clock : util_mono_ns;
	if (burst < RATE_BURST_MIN)
		burst = RATE_BURST_MIN;
	r->burst = (rate_credit)burst * RATE_NS;
	r->credit = r->burst;
	r->last_ns = r->clock();
	r->init = 1;
}

void
rate_release(struct rate *r)
{
	if (r->init)
		pthread_mutex_destroy(&r->lock);
	r->init = 0;
}

/* Add the credit earned since the last refill; under r->lock. */
static void
rate_refill(struct rate *r)
{
	uint64_t now = r->clock();

	if (now > r->last_ns) {
		r->credit += (rate_credit)(now - r->last_ns) * r->rate;
		if (r->credit > r->burst)
			r->credit = r->burst;
	}
	r->last_ns = now;
}

uint64_t
rate_take(struct rate *r, uint64_t n)
{
	rate_credit wait;

	if (!r->init || r->rate == 0)
		return 0;
	pthread_mutex_lock(&r->lock);
	rate_refill(r);
	r->credit -= (rate_credit)n * RATE_NS;
	wait = r->credit < 0 ? (-r->credit + r->rate - 1) / r->rate : 0;
	pthread_mutex_unlock(&r->lock);
	return wait > (rate_credit)UINT64_MAX ? UINT64_MAX : (uint64_t)wait;
}

uint64_t
rate_room(struct rate *r, uint64_t max)
{
	rate_credit room;

	if (!r->init || r->rate == 0)
		return max;
	pthread_mutex_lock(&r->lock);
	rate_refill(r);
	room = r->credit > 0 ? r->credit / RATE_NS : 0;
	pthread_mutex_unlock(&r->lock);
	return room < (rate_credit)max ? (uint64_t)room : max;
}

int
rate_wait(uint64_t ns, volatile sig_atomic_t *stop)
{
	struct timespec ts;
	uint64_t slice;

	while (ns > 0) {
		if (stop != NULL && *stop)
			return -1;
		slice = ns < RATE_SLICE_NS ? ns : RATE_SLICE_NS;
		ts.tv_sec = (time_t)(slice / RATE_NS);
		ts.tv_nsec = (long)(slice % RATE_NS);
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
			if (stop != NULL && *stop)
				return -1;
		}
		ns -= slice;
	}
	return 0;
}

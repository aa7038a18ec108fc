/*
 * rate.h: a token bucket on bytes (bwlimit), shared by the threads that
 * take from it.
 *
 * The bucket fills at rate bytes per second up to its burst (a tenth of a
 * second of rate, at least RATE_BURST_MIN). Taking bytes always succeeds
 * and may leave the bucket in debt; the answer is how long the caller
 * waits before it sends or takes more, so that over any interval the
 * bytes taken stay within rate × interval + burst. Credit is counted in
 * byte-nanoseconds, so no rounding drifts over a long transfer. The clock
 * is util_mono_ns unless a test gives its own.
 */
#ifndef ASYNCREP_RATE_H
#define ASYNCREP_RATE_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#define RATE_BURST_MIN (16 * 1024)
/* The most a waiter sleeps at once, so that it notices a stop. */
#define RATE_SLICE_NS (100 * 1000 * 1000)

typedef uint64_t rate_clock_fn(void);
/* Credit: byte-nanoseconds overflow 64 bits within a second at 18 GB/s. */
__extension__ typedef __int128 rate_credit;

struct rate {
	pthread_mutex_t lock;
	uint64_t rate;		/* bytes per second; 0: no limit */
	rate_credit credit;	/* byte-nanoseconds; negative: debt */
	rate_credit burst;		/* most credit, byte-nanoseconds */
	uint64_t last_ns;	/* clock at the last refill */
	rate_clock_fn *clock;
	int init;
};

/* A bucket of bytes_per_s (0: unlimited), full; clock NULL: monotonic. */
void rate_init(struct rate *r, uint64_t bytes_per_s, rate_clock_fn *clock);
void rate_release(struct rate *r);

/* Take n bytes; returns the nanoseconds to wait before the next (0: go
 * on at once). Thread-safe. */
uint64_t rate_take(struct rate *r, uint64_t n);

/* The bytes that may go now without debt (at most max; max when
 * unlimited), for a sender that can send less than it has. */
uint64_t rate_room(struct rate *r, uint64_t max);

/*
 * Wait out ns in slices of at most RATE_SLICE_NS; returns early (-1)
 * when *stop becomes non-zero (stop may be NULL), 0 otherwise.
 */
int rate_wait(uint64_t ns, volatile sig_atomic_t *stop);

#endif

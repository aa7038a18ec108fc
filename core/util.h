/*
 * util.h: the small helpers that every module needs and none owns: the
 * monotonic clock, growth of an array by doubling, a test for a run of
 * zeros (a hole to be), and the lock file that
 * keeps a second asyncrep process out of a spool or state directory.
 */
#ifndef ASYNCREP_UTIL_H
#define ASYNCREP_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds and in milliseconds. */
uint64_t util_mono_ns(void);
uint64_t util_mono_ms(void);

/*
 * Make room for at least need elements of size bytes in *arr, whose
 * capacity is *cap: doubles the capacity (first: min_cap) until it holds
 * need. On failure nothing changes and -AR_ENOMEM is returned.
 */
int util_grow(void *arr, size_t *cap, size_t need, size_t size,
    size_t min_cap);

/* 1 if the len bytes at buf are all zero (len 0 included). */
int util_all_zero(const void *buf, size_t len);

/* Big-endian integers of our on-disk formats. */
void util_put_be32(uint8_t *p, uint32_t v);
void util_put_be64(uint8_t *p, uint64_t v);
uint32_t util_get_be32(const uint8_t *p);
uint64_t util_get_be64(const uint8_t *p);

/*
 * Open (creating it 0600) the file name beneath dirfd and take an
 * exclusive, non-blocking flock on it. Returns the fd in *lockfd and 0;
 * -AR_ESTATE with errno EWOULDBLOCK when another process holds it; or
 * -AR_ESTATE with errno set by open or flock. create = 0 opens only an
 * existing file read-only (errno ENOENT when there is none).
 */
int util_lock(int dirfd, const char *name, int create, int *lockfd);

/* 1 when another process holds the lock file dirfd/name, else 0. */
int util_lock_held(int dirfd, const char *name);

#endif

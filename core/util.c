#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "util.h"

uint64_t
util_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
util_mono_ms(void)
{
	return util_mono_ns() / 1000000u;
}

int
util_grow(void *arr, size_t *cap, size_t need, size_t size, size_t min_cap)
{
	void **p = arr;
	size_t ncap = *cap;
	void *n;

	if (need <= *cap)
		return 0;
	if (ncap < min_cap)
		ncap = min_cap;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -AR_ENOMEM;
		ncap *= 2;
	}
	n = reallocarray(*p, ncap, size);
	if (n == NULL)
		return -AR_ENOMEM;
	*p = n;
	*cap = ncap;
	return 0;
}

int
util_lock(int dirfd, const char *name, int create, int *lockfd)
{
	int fd, e;

	*lockfd = -1;
	if (create)
		fd = openat(dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
	else
		fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -AR_ESTATE;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		e = errno;
		close(fd);
		errno = e;
		return -AR_ESTATE;
	}
	*lockfd = fd;
	return 0;
}

int
util_lock_held(int dirfd, const char *name)
{
	int fd, r;

	r = util_lock(dirfd, name, 0, &fd);
	if (r == 0) {
		close(fd);
		return 0;
	}
	return errno == EWOULDBLOCK;
}

int
util_all_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

void
util_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void
util_put_be64(uint8_t *p, uint64_t v)
{
	util_put_be32(p, (uint32_t)(v >> 32));
	util_put_be32(p + 4, (uint32_t)v);
}

uint32_t
util_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

uint64_t
util_get_be64(const uint8_t *p)
{
	return (uint64_t)util_get_be32(p) << 32 | util_get_be32(p + 4);
}

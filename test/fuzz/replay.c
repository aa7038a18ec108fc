/*
 * replay.c: the main() of a fuzz target built without libFuzzer. Runs
 * the target once on every regular file of each corpus directory given
 * (or of $FUZZ_CORPUS), in sorted order, and reports TAP; a crash or a
 * hang is the failure, so the corpus stays a regression test in make
 * check.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Larger inputs are not corpus material; they are reported, not run. */
#define REPLAY_MAX_INPUT (4u * 1024 * 1024)

/* One argument: a directory's sorted regular files, or a lone file. */
struct replay_set {
	const char	 *path;
	int		  is_dir;
	struct dirent	**names;
	int		  count;
};

static int
replay_filter(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/* Names come from the file system: keep TAP one line per test. */
static void
replay_print_path(FILE *f, const char *dir, const char *name)
{
	const char *parts[2] = { dir, name };
	const unsigned char *s;
	int i;

	for (i = 0; i < 2; i++) {
		if (parts[i] == NULL)
			continue;
		if (i == 1 && dir != NULL)
			putc('/', f);
		for (s = (const unsigned char *)parts[i]; *s != '\0'; s++)
			putc(*s >= 0x20 && *s < 0x7f ? *s : '?', f);
	}
}

/* Read a whole file into malloc'd memory, at most REPLAY_MAX_INPUT. */
static int
replay_load(int dirfd, const char *name, uint8_t **data, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0, size;
	ssize_t n;
	int fd;

	*data = NULL;
	*len = 0;
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > (off_t)REPLAY_MAX_INPUT) {
		close(fd);
		return -1;
	}
	size = (size_t)st.st_size;
	/* malloc(0) may return NULL; the target still gets a pointer. */
	buf = malloc(size > 0 ? size : 1);
	if (buf == NULL) {
		close(fd);
		return -1;
	}
	while (done < size) {
		n = read(fd, buf + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	if (done != size) {
		free(buf);
		return -1;
	}
	*data = buf;
	*len = size;
	return 0;
}

static int
replay_is_regular(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	return S_ISREG(st.st_mode);
}

/* Keep only the regular files of a scandir() result, in order. */
static int
replay_scan(struct replay_set *set)
{
	int dirfd, i, kept = 0;

	set->count = scandir(set->path, &set->names, replay_filter, alphasort);
	if (set->count < 0)
		return -1;
	dirfd = open(set->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -1;
	for (i = 0; i < set->count; i++) {
		if (replay_is_regular(dirfd, set->names[i]->d_name))
			set->names[kept++] = set->names[i];
		else
			free(set->names[i]);
	}
	close(dirfd);
	set->count = kept;
	return 0;
}

/* Run one input; returns 1 if it passed. */
static int
replay_one(int dirfd, const char *dir, const char *name, int num)
{
	uint8_t *data;
	size_t len;

	/* dirfd is -1 when the directory could not be reopened. */
	if ((dirfd < 0 && dirfd != AT_FDCWD) ||
	    replay_load(dirfd, name, &data, &len) != 0) {
		printf("not ok %d - ", num);
		replay_print_path(stdout, dir, name);
		printf(" # unreadable or larger than %u bytes\n",
		    REPLAY_MAX_INPUT);
		fflush(stdout);
		return 0;
	}
	/* Name the input before running it, so a crash points at it. */
	fprintf(stderr, "# running ");
	replay_print_path(stderr, dir, name);
	putc('\n', stderr);
	fflush(stderr);
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	printf("ok %d - ", num);
	replay_print_path(stdout, dir, name);
	putchar('\n');
	fflush(stdout);
	return 1;
}

int
main(int argc, char **argv)
{
	struct replay_set *sets;
	const char *env;
	struct stat st;
	int nsets, i, j, dirfd, total = 0, num = 0, failed = 0;

	if (argc > 1) {
		nsets = argc - 1;
		argv++;
	} else {
		env = getenv("FUZZ_CORPUS");
		if (env == NULL || *env == '\0') {
			fprintf(stderr, "usage: %s CORPUS_DIR... "
			    "(or set FUZZ_CORPUS)\n", argv[0]);
			return 2;
		}
		nsets = 1;
		argv[0] = (char *)(uintptr_t)env;
	}
	sets = calloc((size_t)nsets, sizeof *sets);
	if (sets == NULL) {
		printf("Bail out! out of memory\n");
		return 1;
	}

	/* Count first: TAP wants the plan before the results. */
	for (i = 0; i < nsets; i++) {
		sets[i].path = argv[i];
		if (stat(argv[i], &st) != 0) {
			printf("Bail out! cannot stat %s: %s\n", argv[i],
			    strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			sets[i].is_dir = 1;
			if (replay_scan(&sets[i]) != 0) {
				printf("Bail out! cannot read %s: %s\n",
				    argv[i], strerror(errno));
				return 1;
			}
		} else
			sets[i].count = 1;
		total += sets[i].count;
	}

	printf("1..%d\n", total);
	fflush(stdout);
	for (i = 0; i < nsets; i++) {
		if (!sets[i].is_dir) {
			if (!replay_one(AT_FDCWD, NULL, sets[i].path, ++num))
				failed++;
			continue;
		}
		dirfd = open(sets[i].path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		for (j = 0; j < sets[i].count; j++) {
			if (!replay_one(dirfd, sets[i].path,
			    sets[i].names[j]->d_name, ++num))
				failed++;
			free(sets[i].names[j]);
		}
		if (dirfd >= 0)
			close(dirfd);
		free(sets[i].names);
	}
	free(sets);
	return failed > 0 ? 1 : 0;
}

/*
 * delta.c: librsync's streaming job API, wrapped for bounded memory and
 * untrusted input.
 *
 * Every engine owns one librsync job and one fixed-size buffer; nothing
 * ever holds a whole file. librsync reports "blocked" both when it needs
 * input and when its output is full, so each driver loop below decides
 * which it was from what moved, and treats "nothing moved" as a bug
 * rather than spinning. Errors are sticky: librsync leaves a failed job's
 * state function in place, so calling it again could resume garbage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocks.h"
#include "delta.h"
#include "error.h"
#include "fs.h"
#include "util.h"
#include "guard.h"
#include "hash.h"

/* Size of the file-side buffer of each engine. 256 KiB keeps the number
 * of pread calls and job iterations low without holding much memory. */
#define DELTA_BUFSZ (256u * 1024)

/* The signature header: magic, block_len, strong_len, all u32 BE. */
#define DELTA_SIG_HDRLEN 12

/* BLAKE2 strong sums are at most 32 bytes. */
#define DELTA_MAX_STRONG_LEN 32

/* Map a librsync result to our error enum. Input from a peer that
 * librsync calls corrupt, truncated or of the wrong kind is a protocol
 * error; when untrusted is set anything else unexpected is blamed on the
 * peer too, since hostile input is the likeliest cause. */
static int
delta_err(rs_result r, int untrusted)
{
	switch (r) {
	case RS_DONE:
		return 0;
	case RS_MEM_ERROR:
		return -AR_ENOMEM;
	case RS_IO_ERROR:
		return -AR_EIO;
	case RS_CORRUPT:
	case RS_BAD_MAGIC:
	case RS_INPUT_ENDED:
		return -AR_EPROTO;
	default:
		return untrusted ? -AR_EPROTO : -AR_EINTERNAL;
	}
}

/* pread until len bytes or EOF. Returns bytes read or -AR_EIO. */
static ssize_t
delta_pread(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	size_t done = 0;
	ssize_t n;

	if (off > (uint64_t)INT64_MAX - len)
		return -AR_EIO;
	while (done < len) {
		n = pread(fd, p + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -AR_EIO;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Write all of buf at off, retrying on EINTR and short writes. */
static int
delta_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -AR_EIO;
		}
		if (n == 0)
			return -AR_EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static uint32_t
delta_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void
delta_trace_none(rs_loglevel level, const char *msg)
{
	(void)level;
	(void)msg;
}

void
delta_global_init(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	/* librsync logs every failed job at error level; more than that
	 * would let a peer flood our stderr with trace lines. */
	rs_trace_set_level(RS_LOG_ERR);
	/* Failures are reported through our own errors; librsync's lines
	 * would let a hostile peer add lines to our log. */
	rs_trace_to(delta_trace_none);
}

/* ------------------------------------------------------------------ */
/* A pull engine: file bytes in (pread), job output to the caller. */

/*
 * Shared by sig and gen: both read a local file sequentially and hand
 * whatever the job produces to the caller's buffer.
 */
struct delta_pull {
	rs_job_t	*job;
	int		 fd;
	uint64_t	 off;		/* next pread offset */
	size_t		 pos;		/* unconsumed input starts here */
	size_t		 avail;		/* unconsumed input bytes */
	int		 eof;		/* pread hit EOF: last input is in buf */
	int		 done;		/* job returned RS_DONE */
	int		 err;		/* sticky error, 0 if none */
	struct hash_ctx	*hash;		/* hash of bytes read, or NULL */
	struct blocks	*blocks;	/* block list of bytes read, or NULL */
	uint8_t		 buf[DELTA_BUFSZ];
};

static ssize_t
delta_pull_read(struct delta_pull *d, void *out, size_t len)
{
	rs_buffers_t b;
	rs_result r;
	ssize_t n;
	size_t in_before, out_before;

	if (d->err != 0)
		return d->err;
	if (d->done)
		return 0;
	if (len == 0)
		return -AR_EINTERNAL;

	memset(&b, 0, sizeof b);
	b.next_out = out;
	b.avail_out = len;
	while (b.avail_out > 0) {
		if (d->avail == 0 && !d->eof) {
			/* Matching blocks make little output: one call may
			 * read much of a large file (guard.h). */
			guard_progress();
			n = delta_pread(d->fd, d->buf, sizeof d->buf, d->off);
			if (n < 0) {
				d->err = (int)n;
				return d->err;
			}
			if (d->hash != NULL)
				hash_update(d->hash, d->buf, (size_t)n);
			/* A list that cannot grow is given up: it stays
			 * short of the file, and is not used. */
			if (d->blocks != NULL && blocks_update(d->blocks,
			    d->buf, (size_t)n) != 0)
				d->blocks = NULL;
			d->off += (uint64_t)n;
			d->pos = 0;
			d->avail = (size_t)n;
			/* A short read means EOF: no need for a second
			 * pread returning 0. */
			if ((size_t)n < sizeof d->buf)
				d->eof = 1;
		}
		b.next_in = (char *)d->buf + d->pos;
		b.avail_in = d->avail;
		b.eof_in = d->eof;
		in_before = b.avail_in;
		out_before = b.avail_out;

		r = rs_job_iter(d->job, &b);

		d->pos += in_before - b.avail_in;
		d->avail = b.avail_in;
		if (r == RS_DONE) {
			d->done = 1;
			break;
		}
		if (r != RS_BLOCKED) {
			d->err = delta_err(r, 0);
			return d->err;
		}
		/* Blocked with output room and input left, nothing moved:
		 * librsync would loop forever, so stop here. */
		if (in_before == b.avail_in && out_before == b.avail_out &&
		    (d->avail > 0 || d->eof)) {
			d->err = -AR_EINTERNAL;
			return d->err;
		}
	}
	return (ssize_t)(len - b.avail_out);
}

/* ------------------------------------------------------------------ */
/* Signature of a local file. */

struct delta_sig {
	uint64_t		 size;
	struct delta_pull	 pull;
};

static int
delta_sig_start(struct delta_sig *s)
{
	rs_magic_number magic = RS_RK_BLAKE2_SIG_MAGIC;
	/*
	 * The smallest strong sum that is safe against random collisions
	 * (strong_len "-1"): the signature is what the standby uploads, and
	 * the whole-file SHA-256 checked before any rename catches a crafted
	 * collision, after which the file is fetched whole.
	 */
	size_t block_len = 0, strong_len = (size_t)-1;
	rs_long_t fsize;
	rs_result r;

	if (s->size > (uint64_t)INT64_MAX)
		return -AR_EINTERNAL;
	fsize = (rs_long_t)s->size;
	r = rs_sig_args(fsize, &magic, &block_len, &strong_len);
	if (r != RS_DONE)
		return delta_err(r, 0);
	s->pull.job = rs_sig_begin(block_len, strong_len, magic);
	if (s->pull.job == NULL)
		return -AR_ENOMEM;
	s->pull.off = 0;
	s->pull.pos = 0;
	s->pull.avail = 0;
	s->pull.eof = 0;
	s->pull.done = 0;
	s->pull.err = 0;
	return 0;
}

int
delta_sig_new(int fd, uint64_t size, struct delta_sig **out)
{
	struct delta_sig *s;
	int r;

	*out = NULL;
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return -AR_ENOMEM;
	s->size = size;
	s->pull.fd = fd;
	s->pull.hash = NULL;
	r = delta_sig_start(s);
	if (r != 0) {
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

ssize_t
delta_sig_read(struct delta_sig *s, void *buf, size_t len)
{
	return delta_pull_read(&s->pull, buf, len);
}

int
delta_sig_rewind(struct delta_sig *s)
{
	if (s->pull.job != NULL)
		rs_job_free(s->pull.job);
	s->pull.job = NULL;
	return delta_sig_start(s);
}

void
delta_sig_free(struct delta_sig *s)
{
	if (s == NULL)
		return;
	if (s->pull.job != NULL)
		rs_job_free(s->pull.job);
	free(s);
}

/* ------------------------------------------------------------------ */
/* Signature from the wire. */

struct delta_loadsig {
	rs_job_t	*job;
	rs_signature_t	*sig;		/* owned until finish succeeds */
	uint64_t	 cap;		/* max_bytes as given */
	uint64_t	 max_bytes;	/* lowered by the header and bound */
	uint64_t	 total;		/* bytes fed so far */
	int		 bounded;	/* file_size is set */
	uint64_t	 file_size;	/* of the file the delta is made of */
	uint8_t		 hdr[DELTA_SIG_HDRLEN];
	size_t		 hdrlen;	/* header bytes seen (<= 12) */
	uint32_t	 block_len;	/* from the checked header */
	uint32_t	 strong_len;
	uint64_t	 max_blocks;	/* with the bound, else 0 */
	enum delta_refusal refusal;
	int		 err;		/* sticky error */
};

int
delta_loadsig_new(uint64_t max_bytes, struct delta_loadsig **out)
{
	struct delta_loadsig *l;

	*out = NULL;
	l = calloc(1, sizeof *l);
	if (l == NULL)
		return -AR_ENOMEM;
	l->cap = max_bytes;
	l->max_bytes = max_bytes;
	l->job = rs_loadsig_begin(&l->sig);
	if (l->job == NULL) {
		free(l);
		return -AR_ENOMEM;
	}
	*out = l;
	return 0;
}

void
delta_loadsig_bound(struct delta_loadsig *l, uint64_t file_size)
{
	l->bounded = 1;
	l->file_size = file_size;
}

/* Fail l with err for reason why (the first reason stays). */
static int
delta_loadsig_refuse(struct delta_loadsig *l, int err,
    enum delta_refusal why)
{
	if (l->refusal == DELTA_REFUSAL_NONE)
		l->refusal = why;
	l->err = err;
	return err;
}

/*
 * librsync trusts the header (it accepts MD4 and any block length), so
 * it is checked here before the job sees a byte of it. With a bound,
 * max_bytes becomes what ceil(file_size / block_len) + 1 blocks take:
 * librsync keeps every block sum (and its hash table) in memory.
 */
static int
delta_loadsig_check_header(struct delta_loadsig *l)
{
	uint32_t magic, block_len, strong_len;
	uint64_t blocks, most;

	magic = delta_get_u32(l->hdr);
	block_len = delta_get_u32(l->hdr + 4);
	strong_len = delta_get_u32(l->hdr + 8);
	l->block_len = block_len;
	if (magic != RS_RK_BLAKE2_SIG_MAGIC)
		return delta_loadsig_refuse(l, -AR_EPROTO,
		    DELTA_REFUSAL_MALFORMED);
	if (block_len < DELTA_MIN_BLOCK_LEN || block_len > DELTA_MAX_BLOCK_LEN)
		return delta_loadsig_refuse(l, -AR_EPROTO,
		    DELTA_REFUSAL_BLOCK_LEN);
	if (strong_len == 0 || strong_len > DELTA_MAX_STRONG_LEN)
		return delta_loadsig_refuse(l, -AR_EPROTO,
		    DELTA_REFUSAL_MALFORMED);
	l->strong_len = strong_len;
	if (l->bounded) {
		blocks = l->file_size / block_len +
		    (l->file_size % block_len != 0) + 1;
		l->max_blocks = blocks;
		/* blocks <= 2^64 / 256: the product fits. */
		most = DELTA_SIG_HDRLEN + blocks * (4 + strong_len);
		if (most < l->max_bytes)
			l->max_bytes = most;
		if (l->total > l->max_bytes)
			return delta_loadsig_refuse(l, -AR_ENOMEM,
			    DELTA_REFUSAL_TOO_MANY);
	}
	return 0;
}

enum delta_refusal
delta_loadsig_refusal(const struct delta_loadsig *l)
{
	/* Errors of librsync's own checks are malformed input. */
	if (l->refusal == DELTA_REFUSAL_NONE && l->err != 0)
		return DELTA_REFUSAL_MALFORMED;
	return l->refusal;
}

void
delta_loadsig_why(const struct delta_loadsig *l, char *buf, size_t len)
{
	switch (delta_loadsig_refusal(l)) {
	case DELTA_REFUSAL_NONE:
		snprintf(buf, len, "no error");
		break;
	case DELTA_REFUSAL_MALFORMED:
		snprintf(buf, len, "malformed signature");
		break;
	case DELTA_REFUSAL_BLOCK_LEN:
		snprintf(buf, len, "malformed signature: block length %lu "
		    "outside %u..%u", (unsigned long)l->block_len,
		    DELTA_MIN_BLOCK_LEN, DELTA_MAX_BLOCK_LEN);
		break;
	case DELTA_REFUSAL_TOO_LARGE:
		snprintf(buf, len, "signature too large");
		break;
	case DELTA_REFUSAL_TOO_MANY:
		snprintf(buf, len, "signature of more than %llu blocks of "
		    "%lu bytes for a file of %llu bytes",
		    (unsigned long long)l->max_blocks,
		    (unsigned long)l->block_len,
		    (unsigned long long)l->file_size);
		break;
	}
}

uint64_t
delta_loadsig_bytes(const struct delta_loadsig *l)
{
	return l->total;
}

/* Run the job over buf; a loadsig job produces no output. */
static int
delta_loadsig_run(struct delta_loadsig *l, const void *buf, size_t len,
    int eof)
{
	rs_buffers_t b;
	rs_result r;
	size_t before;

	memset(&b, 0, sizeof b);
	b.next_in = (char *)(uintptr_t)buf;
	b.avail_in = len;
	b.eof_in = eof;
	for (;;) {
		before = b.avail_in;
		r = rs_job_iter(l->job, &b);
		if (r == RS_DONE) {
			if (!eof || b.avail_in != 0)
				return -AR_EPROTO;
			return 0;
		}
		if (r != RS_BLOCKED)
			return delta_err(r, 1);
		if (b.avail_in == 0)
			return eof ? -AR_EPROTO : 0;
		if (b.avail_in == before)
			return -AR_EPROTO;
	}
}

int
delta_loadsig_feed(struct delta_loadsig *l, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t take;
	int r;

	if (l->err != 0)
		return l->err;
	if (len == 0)
		return 0;
	if (len > l->max_bytes || l->total > l->max_bytes - len)
		return delta_loadsig_refuse(l, -AR_ENOMEM,
		    l->max_bytes < l->cap ? DELTA_REFUSAL_TOO_MANY :
		    DELTA_REFUSAL_TOO_LARGE);
	l->total += len;

	if (l->hdrlen < DELTA_SIG_HDRLEN) {
		take = DELTA_SIG_HDRLEN - l->hdrlen;
		if (take > len)
			take = len;
		memcpy(l->hdr + l->hdrlen, p, take);
		l->hdrlen += take;
		if (l->hdrlen < DELTA_SIG_HDRLEN)
			return 0;	/* the job sees the header whole */
		r = delta_loadsig_check_header(l);
		if (r == 0)
			r = delta_loadsig_run(l, l->hdr, sizeof l->hdr, 0);
		if (r != 0) {
			l->err = r;
			return r;
		}
		p += take;
		len -= take;
		if (len == 0)
			return 0;
	}
	r = delta_loadsig_run(l, p, len, 0);
	if (r != 0)
		l->err = r;
	return r;
}

int
delta_loadsig_finish(struct delta_loadsig *l, rs_signature_t **sig)
{
	rs_result rr;
	int r;

	*sig = NULL;
	if (l->err != 0)
		return l->err;
	if (l->hdrlen < DELTA_SIG_HDRLEN) {
		l->err = -AR_EPROTO;
		return l->err;
	}
	/* librsync silently drops a partial last block sum. */
	if ((l->total - DELTA_SIG_HDRLEN) % (4 + l->strong_len) != 0) {
		l->err = -AR_EPROTO;
		return l->err;
	}
	r = delta_loadsig_run(l, NULL, 0, 1);
	if (r != 0) {
		l->err = r;
		return r;
	}
	rr = rs_build_hash_table(l->sig);
	if (rr != RS_DONE) {
		l->err = delta_err(rr, 1);
		return l->err;
	}
	*sig = l->sig;
	l->sig = NULL;
	l->err = -AR_EINTERNAL;		/* finished: no more feeding */
	return 0;
}

void
delta_loadsig_free(struct delta_loadsig *l)
{
	if (l == NULL)
		return;
	if (l->job != NULL)
		rs_job_free(l->job);
	if (l->sig != NULL)
		rs_free_sumset(l->sig);
	free(l);
}

/* ------------------------------------------------------------------ */
/* Delta of a local file against a signature. */

/*
 * The delta job is three times slower when its output space is small:
 * a 64 KiB literal command that does not fit stays in the job's tube and
 * pins its input, which it then shuffles on every call. So the job always
 * writes into out[] (like rdiff's 4 * MAX_DELTA_CMD) and callers are
 * served from there, whatever their buffer size.
 */
struct delta_gen {
	rs_signature_t		*sig;
	struct hash_ctx		 hash;
	int			 hashed;	/* digest taken into digest[] */
	uint8_t			 digest[HASH_LEN];
	size_t			 out_pos;	/* next byte of out[] to serve */
	size_t			 out_len;	/* bytes in out[] */
	uint8_t			 out[DELTA_BUFSZ];
	struct delta_pull	 pull;
};

int
delta_gen_new(rs_signature_t *sig, int fd, struct delta_gen **out)
{
	struct delta_gen *g;
	int r;

	*out = NULL;
	g = calloc(1, sizeof *g);
	if (g == NULL) {
		rs_free_sumset(sig);
		return -AR_ENOMEM;
	}
	g->sig = sig;
	r = hash_init(&g->hash);
	if (r != 0) {
		rs_free_sumset(sig);
		free(g);
		return r;
	}
	g->pull.fd = fd;
	g->pull.hash = &g->hash;
	g->pull.job = rs_delta_begin(sig);
	if (g->pull.job == NULL) {
		delta_gen_free(g);
		return -AR_ENOMEM;
	}
	*out = g;
	return 0;
}

void
delta_gen_set_blocks(struct delta_gen *g, struct blocks *b)
{
	g->pull.blocks = b;
}

ssize_t
delta_gen_read(struct delta_gen *g, void *buf, size_t len)
{
	ssize_t n;

	if (len == 0)
		return -AR_EINTERNAL;
	if (g->out_pos == g->out_len) {
		n = delta_pull_read(&g->pull, g->out, sizeof g->out);
		if (n < 0)
			return n;
		g->out_pos = 0;
		g->out_len = (size_t)n;
		if (g->pull.done && !g->hashed) {
			hash_final(&g->hash, g->digest);
			g->hashed = 1;
		}
		if (n == 0)
			return 0;
	}
	if (len > g->out_len - g->out_pos)
		len = g->out_len - g->out_pos;
	memcpy(buf, g->out + g->out_pos, len);
	g->out_pos += len;
	return (ssize_t)len;
}

void
delta_gen_result(struct delta_gen *g, uint64_t *size, uint8_t hash[HASH_LEN])
{
	*size = g->pull.off;
	if (g->hashed)
		memcpy(hash, g->digest, HASH_LEN);
	else
		memset(hash, 0, HASH_LEN);
}

void
delta_gen_free(struct delta_gen *g)
{
	if (g == NULL)
		return;
	if (g->pull.job != NULL)
		rs_job_free(g->pull.job);
	/* The job only borrowed the signature. */
	if (g->sig != NULL)
		rs_free_sumset(g->sig);
	hash_release(&g->hash);
	free(g);
}

/* ------------------------------------------------------------------ */
/* Patch. */

struct delta_patch {
	rs_job_t	*job;
	int		 basis_fd;
	int		 out_fd;
	uint64_t	 max_out;
	uint64_t	 total;		/* output bytes written */
	int		 sparse;	/* zero blocks left as holes */
	uint64_t	 written;	/* of total, bytes written (not holes) */
	delta_room_cb	*room;		/* asked before each write, or NULL */
	void		*room_arg;
	int		 done;		/* job returned RS_DONE */
	int		 err;		/* sticky error */
	struct hash_ctx	 hash;
	struct blocks	*blocks;	/* block list of the output, or NULL */
	uint8_t		 buf[DELTA_BUFSZ];
};

void
delta_patch_set_blocks(struct delta_patch *p, struct blocks *b)
{
	p->blocks = b;
}

int
delta_patch_blocks_ok(const struct delta_patch *p)
{
	return p->blocks != NULL;
}

/*
 * librsync asks for basis bytes by offset and length. A delta made
 * against another basis may point past our EOF: that must be an error,
 * because "done, 0 bytes" makes rs_job_iter loop forever, and RS_BLOCKED
 * is not allowed here.
 */
static rs_result
delta_patch_copy(void *arg, rs_long_t pos, size_t *len, void **buf)
{
	struct delta_patch *p = arg;
	ssize_t n;

	if (pos < 0)
		return RS_CORRUPT;
	if (*len == 0)
		return RS_INPUT_ENDED;
	n = delta_pread(p->basis_fd, *buf, *len, (uint64_t)pos);
	if (n < 0)
		return RS_IO_ERROR;
	if (n == 0)
		return RS_INPUT_ENDED;
	*len = (size_t)n;
	return RS_DONE;
}

int
delta_patch_new(int basis_fd, int out_fd, uint64_t max_out,
    struct delta_patch **out)
{
	struct delta_patch *p;
	int r;

	*out = NULL;
	p = calloc(1, sizeof *p);
	if (p == NULL)
		return -AR_ENOMEM;
	r = hash_init(&p->hash);
	if (r != 0) {
		free(p);
		return r;
	}
	p->basis_fd = basis_fd;
	p->out_fd = out_fd;
	p->max_out = max_out;
	p->job = rs_patch_begin(delta_patch_copy, p);
	if (p->job == NULL) {
		delta_patch_free(p);
		return -AR_ENOMEM;
	}
	*out = p;
	return 0;
}

void
delta_patch_set_sparse(struct delta_patch *p)
{
	p->sparse = 1;
}

void
delta_patch_set_room(struct delta_patch *p, delta_room_cb *room, void *arg)
{
	p->room = room;
	p->room_arg = arg;
}

/*
 * Write len bytes at off, after the room callback agreed; in a sparse
 * patch, each whole block of FS_HOLE_BLOCK zeros at an aligned offset is
 * skipped (the output is a new file, where it reads as zeros) and the
 * size is set at the end.
 */
static int
delta_patch_write(struct delta_patch *p, const uint8_t *buf, size_t len,
    uint64_t off)
{
	int e;

	if (p->room != NULL) {
		e = p->room(p->room_arg, p->written, len);
		if (e != 0)
			return e;
	}
	if (!p->sparse) {
		e = delta_pwrite(p->out_fd, buf, len, off);
		if (e == 0)
			p->written += len;
	} else
		e = fs_pwrite_sparse(p->out_fd, buf, len, off, &p->written);
	/* The output is written in order: written back as it grows, a
	 * bounded amount at a time (fs.c). */
	if (e == 0)
		fs_writeback(p->out_fd, off + len, len);
	return e;
}

/* Drive the job over the given delta bytes, writing all output. */
static int
delta_patch_run(struct delta_patch *p, const void *buf, size_t len, int eof)
{
	rs_buffers_t b;
	rs_result r;
	size_t made, in_before;
	int e;

	if (p->done)
		return len > 0 ? -AR_EPROTO : 0;	/* bytes after END */

	memset(&b, 0, sizeof b);
	b.next_in = (char *)(uintptr_t)buf;
	b.avail_in = len;
	b.eof_in = eof;
	for (;;) {
		b.next_out = (char *)p->buf;
		b.avail_out = sizeof p->buf;
		in_before = b.avail_in;

		r = rs_job_iter(p->job, &b);

		made = sizeof p->buf - b.avail_out;
		if (made > 0) {
			/* Check before writing: a tiny delta can ask for
			 * gigabytes. */
			if (made > p->max_out || p->total > p->max_out - made)
				return -AR_EPROTO;
			e = delta_patch_write(p, p->buf, made, p->total);
			if (e != 0)
				return e;
			hash_update(&p->hash, p->buf, made);
			/* Past the list's cap: no list, not an error. */
			if (p->blocks != NULL &&
			    blocks_update(p->blocks, p->buf, made) != 0)
				p->blocks = NULL;
			p->total += made;
		}
		if (r == RS_DONE) {
			p->done = 1;
			return b.avail_in > 0 ? -AR_EPROTO : 0;
		}
		if (r != RS_BLOCKED)
			return delta_err(r, 1);
		/* Output was full: there may be more without new input. */
		if (made == sizeof p->buf)
			continue;
		if (b.avail_in == 0)
			return eof ? -AR_EPROTO : 0;
		if (b.avail_in == in_before && made == 0)
			return -AR_EPROTO;
	}
}

int
delta_patch_feed(struct delta_patch *p, const void *buf, size_t len)
{
	int r;

	if (p->err != 0)
		return p->err;
	if (len == 0)
		return 0;
	r = delta_patch_run(p, buf, len, 0);
	if (r != 0)
		p->err = r;
	return r;
}

int
delta_patch_finish(struct delta_patch *p, uint64_t *size,
    uint8_t hash[HASH_LEN])
{
	int r;

	*size = 0;
	memset(hash, 0, HASH_LEN);
	if (p->err != 0)
		return p->err;
	r = delta_patch_run(p, NULL, 0, 1);
	if (r == 0 && !p->done)
		r = -AR_EPROTO;
	/* Zero blocks at the end were skipped: the size says they are. */
	if (r == 0 && p->sparse && ftruncate(p->out_fd, (off_t)p->total) != 0)
		r = -AR_EIO;
	if (r != 0) {
		p->err = r;
		return r;
	}
	*size = p->total;
	hash_final(&p->hash, hash);
	p->err = -AR_EINTERNAL;		/* finished: no more feeding */
	return 0;
}

void
delta_patch_free(struct delta_patch *p)
{
	if (p == NULL)
		return;
	if (p->job != NULL)
		rs_job_free(p->job);
	hash_release(&p->hash);
	free(p);
}

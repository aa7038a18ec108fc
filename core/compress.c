/*
 * compress.c: zstd streams on the wire (see compress.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "compress.h"
#include "error.h"

int
compress_parse(const char *v, int *level)
{
	char *end;
	long n;

	if (v == NULL || strncmp(v, "zstd:", 5) != 0 || v[5] < '0' ||
	    v[5] > '9')
		return -AR_EPROTO;
	n = strtol(v + 5, &end, 10);
	if (*end != '\0' || n < COMPRESS_LEVEL_MIN || n > COMPRESS_LEVEL_MAX)
		return -AR_EPROTO;
	*level = (int)n;
	return 0;
}

/* ---------------------------------------------------------------- */
/* Compressing */

struct compress_out {
	ZSTD_CCtx *cctx;
	uint8_t *in;		/* plain bytes from src */
	size_t in_cap, in_pos, in_len;
	uint8_t *out;		/* compressed, not yet handed out */
	size_t out_cap, out_pos, out_len;
	int src_ended;		/* src said 0 */
	int done;		/* the frame is complete */
};

int
compress_out_new(struct compress_out **out, int level)
{
	struct compress_out *co = calloc(1, sizeof(*co));

	if (co == NULL)
		return -AR_ENOMEM;
	co->cctx = ZSTD_createCCtx();
	co->in_cap = ZSTD_CStreamInSize();
	co->out_cap = ZSTD_CStreamOutSize();
	co->in = malloc(co->in_cap);
	co->out = malloc(co->out_cap);
	if (co->cctx == NULL || co->in == NULL || co->out == NULL ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(co->cctx,
	    ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(co->cctx, ZSTD_c_windowLog,
	    COMPRESS_WINDOW_LOG)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(co->cctx, ZSTD_c_checksumFlag,
	    1))) {
		compress_out_free(co);
		return -AR_ENOMEM;
	}
	*out = co;
	return 0;
}

void
compress_out_free(struct compress_out *co)
{
	if (co == NULL)
		return;
	ZSTD_freeCCtx(co->cctx);
	free(co->in);
	free(co->out);
	free(co);
}

ssize_t
compress_out_read(struct compress_out *co, compress_src_fn *src, void *arg,
    uint8_t *buf, size_t max)
{
	ZSTD_inBuffer in;
	ZSTD_outBuffer out;
	size_t left, n;
	ssize_t got;

	for (;;) {
		if (co->out_pos < co->out_len) {
			n = co->out_len - co->out_pos;
			if (n > max)
				n = max;
			memcpy(buf, co->out + co->out_pos, n);
			co->out_pos += n;
			return (ssize_t)n;
		}
		if (co->done)
			return 0;
		co->out_pos = co->out_len = 0;
		if (co->in_pos == co->in_len && !co->src_ended) {
			got = src(arg, co->in, co->in_cap);
			if (got < 0)
				return got;
			co->in_pos = 0;
			co->in_len = (size_t)got;
			if (got == 0)
				co->src_ended = 1;
		}
		in.src = co->in;
		in.size = co->in_len;
		in.pos = co->in_pos;
		out.dst = co->out;
		out.size = co->out_cap;
		out.pos = 0;
		left = ZSTD_compressStream2(co->cctx, &out, &in,
		    co->src_ended ? ZSTD_e_end : ZSTD_e_continue);
		if (ZSTD_isError(left))
			return -AR_EINTERNAL;
		co->in_pos = in.pos;
		co->out_len = out.pos;
		if (co->src_ended && left == 0)
			co->done = 1;
	}
}

/* ---------------------------------------------------------------- */
/* Decompressing */

/*
 * libzstd does not promise to catch every corrupt frame, and what it
 * catches depends on how the input is cut: a frame that declares 43
 * bytes and holds 32 is refused in one piece and accepted in pieces
 * (test-compress has it). So the frame's header is checked here, as
 * our primaries write it (RFC 8878): one zstd frame, with a content
 * checksum, which zstd then verifies; and when it declares its content
 * size, exactly that many bytes.
 */
#define COMPRESS_MAGIC UINT32_C(0xFD2FB528)
#define COMPRESS_HDR_MAX 18	/* magic, descriptor, window, id, size */
#define COMPRESS_FHD_CHECKSUM 0x04
#define COMPRESS_SIZE_UNKNOWN UINT64_MAX

struct compress_in {
	ZSTD_DCtx *dctx;
	uint8_t *out;
	size_t out_cap;
	int ended;		/* the frame is complete */
	int fed;		/* any byte since the reset */
	uint8_t hdr[COMPRESS_HDR_MAX];	/* the stream's first bytes */
	size_t hdr_len;
	int hdr_ok;		/* checked; size is what it declares */
	uint64_t size;		/* or COMPRESS_SIZE_UNKNOWN */
	uint64_t decoded;	/* bytes handed to the sink */
};

int
compress_in_new(struct compress_in **out)
{
	struct compress_in *ci = calloc(1, sizeof(*ci));

	if (ci == NULL)
		return -AR_ENOMEM;
	ci->dctx = ZSTD_createDCtx();
	ci->size = COMPRESS_SIZE_UNKNOWN;
	ci->out_cap = ZSTD_DStreamOutSize();
	ci->out = malloc(ci->out_cap);
	if (ci->dctx == NULL || ci->out == NULL ||
	    ZSTD_isError(ZSTD_DCtx_setParameter(ci->dctx,
	    ZSTD_d_windowLogMax, COMPRESS_WINDOW_LOG))) {
		compress_in_free(ci);
		return -AR_ENOMEM;
	}
	*out = ci;
	return 0;
}

void
compress_in_free(struct compress_in *ci)
{
	if (ci == NULL)
		return;
	ZSTD_freeDCtx(ci->dctx);
	free(ci->out);
	free(ci);
}

void
compress_in_reset(struct compress_in *ci)
{
	ZSTD_DCtx_reset(ci->dctx, ZSTD_reset_session_only);
	ci->ended = 0;
	ci->fed = 0;
	ci->hdr_len = 0;
	ci->hdr_ok = 0;
	ci->size = COMPRESS_SIZE_UNKNOWN;
	ci->decoded = 0;
}

/* Take the stream's first bytes and check the header once it is whole:
 * 0 (checked, or not whole yet), or -AR_EPROTO. */
static int
compress_in_header(struct compress_in *ci, const uint8_t *p, size_t len)
{
	unsigned long long n;
	uint32_t magic;
	size_t take;

	if (ci->hdr_ok)
		return 0;
	take = sizeof(ci->hdr) - ci->hdr_len;
	if (take > len)
		take = len;
	memcpy(ci->hdr + ci->hdr_len, p, take);
	ci->hdr_len += take;
	if (ci->hdr_len < 5)
		return 0;
	magic = (uint32_t)ci->hdr[0] | (uint32_t)ci->hdr[1] << 8 |
	    (uint32_t)ci->hdr[2] << 16 | (uint32_t)ci->hdr[3] << 24;
	if (magic != COMPRESS_MAGIC ||
	    (ci->hdr[4] & COMPRESS_FHD_CHECKSUM) == 0)
		return -AR_EPROTO;
	n = ZSTD_getFrameContentSize(ci->hdr, ci->hdr_len);
	if (n == ZSTD_CONTENTSIZE_ERROR)
		/* Short of its end yet, or not a frame at all. */
		return ci->hdr_len == sizeof(ci->hdr) ? -AR_EPROTO : 0;
	ci->size = n == ZSTD_CONTENTSIZE_UNKNOWN ? COMPRESS_SIZE_UNKNOWN :
	    (uint64_t)n;
	ci->hdr_ok = 1;
	return 0;
}

int
compress_in_feed(struct compress_in *ci, const void *data, size_t len,
    compress_sink_fn *sink, void *arg)
{
	ZSTD_inBuffer in = { data, len, 0 };
	ZSTD_outBuffer out;
	int full = 0, e;
	size_t r;

	if (len > 0)
		ci->fed = 1;
	if (compress_in_header(ci, data, len) != 0)
		return -AR_EPROTO;
	/* Until the input is used up and zstd holds no more output. */
	while (in.pos < in.size || full) {
		/* One frame per answer: bytes after its end are garbage. */
		if (ci->ended && in.pos < in.size)
			return -AR_EPROTO;
		out.dst = ci->out;
		out.size = ci->out_cap;
		out.pos = 0;
		r = ZSTD_decompressStream(ci->dctx, &out, &in);
		if (ZSTD_isError(r))
			return -AR_EPROTO;
		ci->decoded += out.pos;
		if (ci->hdr_ok && ci->size != COMPRESS_SIZE_UNKNOWN &&
		    ci->decoded > ci->size)
			return -AR_EPROTO;
		if (r == 0) {
			/* Its header is whole by its end. */
			if (!ci->hdr_ok || (ci->size != COMPRESS_SIZE_UNKNOWN &&
			    ci->decoded != ci->size))
				return -AR_EPROTO;
			ci->ended = 1;
		}
		full = out.pos == out.size;
		if (out.pos > 0) {
			e = sink(arg, ci->out, out.pos);
			if (e != 0)
				return e;
		}
	}
	return 0;
}

int
compress_in_complete(const struct compress_in *ci)
{
	return ci->fed && ci->ended;
}

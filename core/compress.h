/*
 * compress.h: zstd on the wire (compress = zstd).
 *
 * The standby asks for it in every request after the hello (header
 * X-Asyncrep-Compress: zstd:LEVEL) when the version chosen has it; the
 * server then sends the body of a manifest, files or delta answer as one
 * zstd frame (response header X-Asyncrep-Encoding: zstd), which the
 * standby decompresses as it arrives, before it reads the frames of the
 * protocol. Both ends stream with buffers of fixed size; the window is
 * at most 2^COMPRESS_WINDOW_LOG bytes, which the decompressor enforces,
 * so a peer cannot make either side hold more.
 */
#ifndef ASYNCREP_COMPRESS_H
#define ASYNCREP_COMPRESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define COMPRESS_HDR_ASK "X-Asyncrep-Compress"
#define COMPRESS_HDR_ENCODING "X-Asyncrep-Encoding"
#define COMPRESS_LEVEL_MIN 1
#define COMPRESS_LEVEL_MAX 19
#define COMPRESS_LEVEL_DEFAULT 3
#define COMPRESS_WINDOW_LOG 23	/* 8 MiB */

/* "zstd:N" (N a level, COMPRESS_LEVEL_MIN to _MAX) into *level;
 * 0, or -AR_EPROTO. */
int compress_parse(const char *v, int *level);

/* The compressing side: pulls plain bytes from src as it needs them. */
struct compress_out;
/* Plain bytes into buf (at most max): a count, 0 at the end, or a
 * negative error. */
typedef ssize_t compress_src_fn(void *arg, uint8_t *buf, size_t max);

int compress_out_new(struct compress_out **out, int level);
void compress_out_free(struct compress_out *co);
/*
 * Up to max bytes of the compressed stream of what src gives into buf:
 * a count (> 0), 0 once the stream is complete, or a negative error (of
 * src, or -AR_EINTERNAL).
 */
ssize_t compress_out_read(struct compress_out *co, compress_src_fn *src,
    void *arg, uint8_t *buf, size_t max);

/* The decompressing side: hands what it decodes to a sink. */
struct compress_in;
typedef int compress_sink_fn(void *arg, const void *data, size_t len);

int compress_in_new(struct compress_in **out);
void compress_in_free(struct compress_in *ci);
/* Ready for a new stream. */
void compress_in_reset(struct compress_in *ci);
/* Decode len bytes of the stream, giving the output to sink; 0, the
 * sink's error, or -AR_EPROTO (not zstd, a window too big, corrupt). */
int compress_in_feed(struct compress_in *ci, const void *data, size_t len,
    compress_sink_fn *sink, void *arg);
/* 1 when the stream fed so far ended exactly at the end of its frame. */
int compress_in_complete(const struct compress_in *ci);

#endif

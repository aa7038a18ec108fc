/*
 * delta.h: librsync's streaming job API, wrapped for bounded memory and
 * untrusted input.
 *
 * Four pull/push engines, each driven by the caller's HTTP callbacks:
 *   sig:     local basis fd  -> signature bytes (standby, uploaded)
 *   loadsig: signature bytes -> rs_signature_t  (primary, untrusted input)
 *   gen:     signature + new file fd -> delta bytes + hash of the file
 *   patch:   basis fd + delta bytes -> output fd, capped, hashed
 * Only RS_RK_BLAKE2_SIG_MAGIC signatures are made or accepted.
 */
#ifndef ASYNCREP_DELTA_H
#define ASYNCREP_DELTA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <librsync.h>

#include "hash.h"

/* Largest block_len accepted from a peer. */
#define DELTA_MAX_BLOCK_LEN (1u << 20)
/* Smallest: what rs_sig_args gives the smallest file. A block length of
 * 1 made a 65 MB signature cost the primary 500 MB. */
#define DELTA_MIN_BLOCK_LEN 256u

/* Call once at start-up: sets librsync's process-global trace level. */
void delta_global_init(void);

/* --- signature of a local file (pull) --- */
struct delta_sig;
/* fd is read from offset 0 with pread; size is its current size. */
int delta_sig_new(int fd, uint64_t size, struct delta_sig **out);
/* Fill buf with up to len signature bytes. Returns bytes produced (> 0),
 * 0 at the end of the signature, or a negative error. */
ssize_t delta_sig_read(struct delta_sig *s, void *buf, size_t len);
/* Start again from the first byte (curl may rewind an upload). */
int delta_sig_rewind(struct delta_sig *s);
void delta_sig_free(struct delta_sig *s);

/* --- signature from the wire (push, untrusted) --- */
struct delta_loadsig;

/* Why a signature was refused (delta_loadsig_refusal). */
enum delta_refusal {
	DELTA_REFUSAL_NONE,		/* not refused (yet) */
	DELTA_REFUSAL_MALFORMED,	/* bad magic, lengths or block sums */
	DELTA_REFUSAL_BLOCK_LEN,	/* block_len outside MIN..MAX */
	DELTA_REFUSAL_TOO_LARGE,	/* more bytes than max_bytes */
	DELTA_REFUSAL_TOO_MANY,		/* more blocks than the file needs */
};

/* max_bytes caps the whole signature stream. */
int delta_loadsig_new(uint64_t max_bytes, struct delta_loadsig **out);
/*
 * Bound the signature by the size of the file the delta will be made
 * of: a signature with more than ceil(file_size / block_len) + 1 blocks
 * describes a basis far bigger than that file, and each block costs
 * memory until the delta is done. Call before the first byte is fed.
 */
void delta_loadsig_bound(struct delta_loadsig *l, uint64_t file_size);
/* Feed bytes. The 12-byte header is checked as soon as it is complete:
 * -AR_EPROTO for a magic other than BLAKE2, block_len below
 * DELTA_MIN_BLOCK_LEN or above DELTA_MAX_BLOCK_LEN, strong_len 0 or above
 * 32; -AR_ENOMEM past max_bytes or past the bound of
 * delta_loadsig_bound. */
int delta_loadsig_feed(struct delta_loadsig *l, const void *buf, size_t len);
/* After an error: why, and a message for the peer (lowercase, no period). */
enum delta_refusal delta_loadsig_refusal(const struct delta_loadsig *l);
void delta_loadsig_why(const struct delta_loadsig *l, char *buf,
    size_t len);
/* Bytes fed so far (what the loaded signature holds, about). */
uint64_t delta_loadsig_bytes(const struct delta_loadsig *l);
/* End of stream: finish loading and build the hash table. On success the
 * caller owns *sig (rs_free_sumset). */
int delta_loadsig_finish(struct delta_loadsig *l, rs_signature_t **sig);
void delta_loadsig_free(struct delta_loadsig *l);

/* --- delta of a local file against a signature (pull) --- */
struct delta_gen;
/* Takes ownership of sig (hash table built). fd is read sequentially
 * from offset 0 with pread, exactly up to EOF. */
int delta_gen_new(rs_signature_t *sig, int fd, struct delta_gen **out);
/* Returns delta bytes produced (> 0), 0 at the end, or a negative error. */
struct blocks;
/* Also add the bytes read to b (open), the new version's block list
 * for the primary's cache; b is borrowed. */
void delta_gen_set_blocks(struct delta_gen *g, struct blocks *b);
ssize_t delta_gen_read(struct delta_gen *g, void *buf, size_t len);
/* After the end: how many bytes of fd went into the delta, and their hash. */
void delta_gen_result(struct delta_gen *g, uint64_t *size,
    uint8_t hash[HASH_LEN]);
void delta_gen_free(struct delta_gen *g);

/* --- patch (push, untrusted delta) --- */
struct delta_patch;
/* basis_fd is read with pread; output is appended to out_fd, which must
 * be empty. More than max_out output bytes is -AR_EPROTO. */
int delta_patch_new(int basis_fd, int out_fd, uint64_t max_out,
    struct delta_patch **out);
int delta_patch_feed(struct delta_patch *p, const void *buf, size_t len);
/* The output is a new, empty file: leave each aligned block of
 * FS_HOLE_BLOCK zeros as a hole (a sparse patch; call before feeding). */
void delta_patch_set_sparse(struct delta_patch *p);
/*
 * Before each write of at most len bytes of output, room(arg, written,
 * len) is asked, written being the bytes written so far (holes not
 * counted): a negative error from it fails the patch before the write.
 * The standby's free-space check (fetch.c).
 */
typedef int delta_room_cb(void *arg, uint64_t written, size_t len);
void delta_patch_set_room(struct delta_patch *p, delta_room_cb *room,
    void *arg);
/* Also hash the output into b (open, empty), block by block; if it
 * cannot hold them all, delta_patch_blocks_ok says 0 at the end. */
struct blocks;
void delta_patch_set_blocks(struct delta_patch *p, struct blocks *b);
int delta_patch_blocks_ok(const struct delta_patch *p);
/* End of delta: the job must be complete. Returns output size and hash. */
int delta_patch_finish(struct delta_patch *p, uint64_t *size,
    uint8_t hash[HASH_LEN]);
void delta_patch_free(struct delta_patch *p);

#endif

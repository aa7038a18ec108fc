#!/bin/sh
test_description='the free-space check counts what is written: a sparse file larger than the disk of the standby replicates, a dense one that does not fit fails with a clear message before the write that would fail, whole or by delta, and nothing replicated is harmed'
. "$SRCDIR/test/t/lib.sh"

# The standby's data_dir is on a 48 MiB ext4 image (loop-mounted: needs
# root). The primary holds a 1 GiB sparse file with 4 KiB of data and a
# 40 MiB file of written zeros (they fit: holes and zeros take no room),
# then a 60 MiB file of random data, then a file replaced by 60 MiB of
# random data, which goes by delta. Each of the last two fails with
# "N bytes do not fit in the M bytes free", exit 7 (local I/O), and no
# "No space left on device"; the replica is unchanged and no temp file
# is left.

if [ "$(id -u)" != 0 ] || ! command -v mkfs.ext4 >/dev/null; then
	test_skip 'the free-space check of sparse files' 'needs root and mkfs.ext4 to mount a small loop image'
	test_done
fi

test_cleanup() {
	stop_watch
	if mountpoint -q "$TRASH/sb"; then
		umount "$TRASH/sb" 2>/dev/null || umount -l "$TRASH/sb"
	fi
	return 0
}

# sync_sb [options]: a one-shot sync into the small file system; its
# standard error in sync.err.
sync_sb() {
	sync_to "$TRASH/sb/data" "$TRASH/state" --append-min-size 1T "$@" \
		2>"$TRASH/sync.err"
}

# refused NAME: the last sync named NAME in the clear message, did not
# hit ENOSPC, and left the replica as it was, without a temp file.
refused() {
	cp sync.err "sync.err.$1" &&
	grep -E "'$1': [0-9]+ bytes do not fit in the [0-9]+ bytes free" \
		sync.err &&
	! grep -i "no space left" sync.err &&
	tree_listing sb/data >after &&
	test_cmp before after &&
	find sb/data -name '.asyncrep-tmp.*' >tmpfiles &&
	test_cmp /dev/null tmpfiles
}

if ! { truncate -s 48M img && mkfs.ext4 -q -F -m 0 img && mkdir sb &&
	mount -o loop img sb; } >mount.log 2>&1; then
	test_skip 'the free-space check of sparse files' "cannot mount a loop image: $(cat mount.log)"
	test_done
fi

test_expect_success 'setup: a primary with a 1 GiB sparse file and 40 MiB of written zeros' '
	mkdir -p src sb/data &&
	head -c 300000 /dev/urandom >src/keep &&
	truncate -s 1G src/sparse &&
	head -c 4096 /dev/urandom |
		dd of=src/sparse bs=4096 seek=100000 conv=notrunc status=none &&
	dd if=/dev/zero of=src/zeros bs=1M count=40 status=none &&
	head -c 2097152 /dev/urandom >src/grow &&
	start_watch "$TRASH/src" "$TRASH/spool"
'

test_expect_success 'what is larger than the disk but sparse replicates' '
	sync_sb &&
	trees_equal src sb/data &&
	test "$(du --block-size=1 sb/data/sparse | cut -f1)" -le 8192 &&
	test "$(du --block-size=1 sb/data/zeros | cut -f1)" = 0 &&
	tree_listing sb/data >before
'

test_expect_success 'a dense file that does not fit: the clear message, nothing harmed' '
	head -c 62914560 /dev/urandom >src/dense &&
	test_must_fail 7 sync_sb &&
	refused dense &&
	rm src/dense
'

# The standby's signature of its copy went up: a delta.
test_expect_success 'by delta: the same, the old version kept' '
	head -c 62914560 /dev/urandom >src/grow &&
	test_must_fail 7 sync_sb -v &&
	sent=$(sed -n "s/.*sent \([0-9]*\) bytes .*/\1/p" sync.err) &&
	test "$sent" -gt 8192 &&
	refused grow
'

test_expect_success 'once it fits again, it replicates' '
	head -c 1048576 /dev/urandom >src/grow &&
	sync_sb &&
	trees_equal src sb/data
'

# The append path writes the new bytes in place: refused, what it wrote
# is the start of the new version and the rest of the replica is as it
# was.
test_expect_success 'appended past the free space: the clear message' '
	head -c 2097152 /dev/urandom >src/app &&
	sync_to "$TRASH/sb/data" "$TRASH/state" &&
	trees_equal src sb/data &&
	tree_listing sb/data | grep -v "^b'"'"'app'"'"' " >before &&
	head -c 62914560 /dev/urandom >>src/app &&
	test_must_fail 7 sync_to "$TRASH/sb/data" "$TRASH/state" -v \
		2>sync.err &&
	test "$(stat -c %s sb/data/app)" -gt 2097152 &&
	grep -E "'"'"'app'"'"': [0-9]+ bytes do not fit in the [0-9]+ bytes free" \
		sync.err &&
	! grep -i "no space left" sync.err &&
	cmp -n "$(stat -c %s sb/data/app)" src/app sb/data/app &&
	tree_listing sb/data | grep -v "^b'"'"'app'"'"' " >after &&
	test_cmp before after &&
	rm src/app &&
	sync_to "$TRASH/sb/data" "$TRASH/state" &&
	trees_equal src sb/data
'

# A change in place of a file that has a block store entry: its copy
# (no reflink on ext4) would take 30 MiB more.
test_expect_success 'changed in place, no room for the copy: the clear message' '
	head -c 31457280 /dev/urandom >src/blk &&
	sync_to "$TRASH/sb/data" "$TRASH/state" &&
	tree_listing sb/data >before &&
	head -c 4096 /dev/urandom |
		dd of=src/blk bs=4096 seek=1000 conv=notrunc status=none &&
	test_must_fail 7 sync_to "$TRASH/sb/data" "$TRASH/state" -v \
		2>sync.err &&
	refused blk
'

test_done

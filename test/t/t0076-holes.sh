#!/bin/sh
test_description='holes kept whatever the source shows: blocks of zeros travel as holes, from a primary (a file written with zeros arrives sparse, the zeros of an older primary are written as holes) and from a rescue through a mount that shows no holes (ramfs)'
. "$SRCDIR/test/t/lib.sh"
. "$SRCDIR/test/t/lib-rescue.sh"

# A 100 MB sparse file with four extents of 64 KiB, a file written with
# 8 MiB of zeros (dd if=/dev/zero: all allocated on the primary) and a
# file where data and zero blocks alternate. The standby takes no more
# room than the primary plus a block per extent, for the zero file none,
# and the zeros do not travel: a one-shot sync receives less than 1 MiB,
# a rescue serves less than 2 MiB for 208 MB of files. The rescue reads a
# ramfs copy of the tree, where SEEK_DATA calls every byte data, as NFSv3
# and sshfs do.

# alloc FILE: the bytes it takes on disk.
alloc() {
	du --block-size=1 "$1" | cut -f1
}

# room_ok PRIMARY STANDBY EXTENTS: the standby's copy takes at most the
# primary's room and a block per extent.
room_ok() {
	ro_p=$(alloc "$1") && ro_s=$(alloc "$2") &&
	test "$ro_s" -le $((ro_p + $3 * 4096)) || {
		echo "$2 takes $ro_s bytes, $1 takes $ro_p"
		return 1
	}
}

# sparse FILE: 100 MB, four extents of 64 KiB of random data.
sparse() {
	truncate -s 100M "$1" &&
	for mb in 0 10 50 99; do
		head -c 65536 /dev/urandom |
			dd of="$1" bs=64k seek=$((mb * 16)) conv=notrunc \
				iflag=fullblock status=none || return 1
	done
}

# zeros FILE: 8 MiB of written zeros.
zeros() {
	dd if=/dev/zero of="$1" bs=1M count=8 status=none
}

# mixed FILE: 4 KiB of data, 4 KiB of zeros, 1000 bytes of data, 24 KiB
# of zeros, 4 KiB of data (the first blocks' zeros within one read).
mixed() {
	{ head -c 4096 /dev/urandom && head -c 4096 /dev/zero &&
	  head -c 1000 /dev/urandom && head -c 24576 /dev/zero &&
	  head -c 4096 /dev/urandom; } >"$1"
}

# all_data FILE: the file system shows no hole in it (SEEK_HOLE finds
# only the end).
all_data() {
	"$PYTHON3" -c 'import os,sys
fd = os.open(sys.argv[1], os.O_RDONLY)
sys.exit(os.lseek(fd, 0, os.SEEK_HOLE) != os.fstat(fd).st_size)' "$1"
}

# received FILE: the bytes "sync -v" says it received.
received() {
	sed -n 's/.*received \([0-9]*\) bytes$/\1/p' "$1"
}

test_cleanup() {
	umount "$TRASH/view" 2>/dev/null
	return 0
}

test_expect_success 'setup: a primary with a sparse, a zero and a mixed file' '
	mkdir -p src/d &&
	sparse src/sparse && zeros src/d/zeros && mixed src/mixed &&
	test "$(alloc src/d/zeros)" -ge $((8 * 1048576)) &&
	write_conf r "$TRASH/src" "$TRASH/spool" 100ms &&
	start_primary r
'

test_expect_success 'one-shot: holes and written zeros arrive as holes, the zeros do not travel' '
	"$ASYNCREP" sync -v --data-dir "$TRASH/s1/data" \
		--state-dir "$TRASH/s1/state" --primary "$ADDR" >s1.out 2>&1 &&
	judge src s1/data &&
	room_ok src/sparse s1/data/sparse 4 &&
	test "$(alloc s1/data/d/zeros)" = 0 &&
	test "$(alloc s1/data/mixed)" -le 16384 &&
	n=$(received s1.out) && test -n "$n" &&
	{ test "$n" -lt 1048576 || { echo "received $n bytes"; false; }; }
'

test_expect_success 'an older primary (before holes): its zeros are written as holes' '
	V=$(sed -n "s/^#define WIRE_V_FIDELITY \([0-9]*\).*/\1/p" \
		"$SRCDIR/core/wire.h") &&
	PP=$(free_port "$TEST_IP") &&
	start_bg proxy.log "$PYTHON3" "$SRCDIR/test/t/version-cap.py" \
		"$TEST_IP" "$PP" "$TEST_IP" "$TEST_PORT" $((V - 1)) &&
	wait_for 10 grep -q "proxy listening" proxy.log &&
	"$ASYNCREP" sync -v --data-dir "$TRASH/s2/data" \
		--state-dir "$TRASH/s2/state" --primary "$TEST_IP:$PP" \
		>s2.out 2>&1 &&
	grep -q "protocol version $((V - 1))" s2.out &&
	trees_equal src s2/data &&
	room_ok src/sparse s2/data/sparse 4 &&
	test "$(alloc s2/data/d/zeros)" = 0 &&
	test "$(alloc s2/data/mixed)" -le 16384
'

if test "$(id -u)" != 0 || ! mkdir "$TRASH/probe" ||
	! mount -t ramfs none "$TRASH/probe"; then
	test_skip 'a rescue through a mount without holes' 'needs root and ramfs'
	test_done
fi
umount "$TRASH/probe"

test_expect_success 'a follower, then the primary dies with sparse files nobody saw' '
	start_follow rs &&
	wait_for 30 judge src rs/data &&
	kill -STOP $WATCH_PID && wait_for 10 is_stopped $WATCH_PID &&
	sparse src/unseen && zeros src/d/unseen.zeros &&
	kill9 $WATCH_PID &&
	mkdir view && mount -t ramfs none view &&
	rsync -aHS src/ view/ &&
	all_data view/unseen && all_data view/d/unseen.zeros &&
	sed "s|^data_dir .*|data_dir = $TRASH/view|" r.conf >v.conf
'

test_expect_success 'the rescue through the mount without holes: holes kept, zeros not sent' '
	start_rescue v --timeout 30s &&
	reap 120 "$RESCUE_PID" &&
	{ test "$RC" = 0 || test "$RC" = 3 ||
		{ echo "rescue exited $RC"; show_logs v rs; false; }; } &&
	reap 20 "$FOLLOW_PID" &&
	grep -q "the replica is complete" rs.follow.log &&
	judge src rs/data &&
	room_ok src/unseen rs/data/unseen 4 &&
	test "$(alloc rs/data/d/unseen.zeros)" = 0 &&
	sent=$(sed -n "s/^[a-z]* phase: [0-9]* files, \([0-9]*\) bytes.*/\1/p" \
		v.rescue.log | awk "{ n += \$1 } END { if (NR == 2) print n }") &&
	test -n "$sent" &&
	{ test "$sent" -lt 2097152 || { echo "rescue sent $sent bytes"; false; }; }
'

test_done

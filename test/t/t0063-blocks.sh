#!/bin/sh
test_description='a big file changed in place costs its changed blocks (POST /v1/blocks), built from a clone of the standby copy'
. "$SRCDIR/test/t/lib.sh"

# A big file replicated with a block store entry on the standby and a
# cache entry on the primary; 1 MiB overwritten in its middle must cost
# about 1 MiB on the wire (no signature, no delta), one-shot and
# following; a database-like workload with the standby killed must
# converge; a corrupt store or cache, and an older primary, go the delta
# path; on XFS the clone shares the copy's extents.

B=65536
MIB=1048576
converged() { trees_equal src dst; }
ino() { stat -c %i "$1"; }
# metric NAME: the value of series NAME (with its labels) on the primary.
metric() {
	v=$(curl -sf --noproxy "*" "http://127.0.0.1:$(cat mport)/metrics" |
		awk -v n="$1" '$1 == n { print $2 }')
	echo "${v:-0}" | sed 's/\..*//'
}
served() { metric "asyncrep_served_files_total{kind=\"$1\"}"; }
served_bytes() { metric "asyncrep_served_bytes_total{kind=\"$1\"}"; }
# note: the counters now, to compare with after a step.
note() {
	echo "$(served blocks) $(served delta) $(served whole) $(served_bytes blocks)" >counters
}
# since KIND: how many files of KIND were served since note.
since() {
	read -r nb nd nw nbb <counters &&
	case $1 in
	blocks) echo $(($(served blocks) - nb)) ;;
	delta) echo $(($(served delta) - nd)) ;;
	whole) echo $(($(served whole) - nw)) ;;
	bytes) echo $(($(served_bytes blocks) - nbb)) ;;
	esac
}

# Lazily: a standby still running (killed after this) may hold files.
test_cleanup() {
	umount -l "$TRASH/xfs" 2>/dev/null
	umount -l "$TRASH/dst" 2>/dev/null
	return 0
}

test_expect_success 'setup: a 96 MiB file replicated one-shot, entries on both sides' '
	mkdir -p src && head -c $((96 * MIB)) /dev/urandom >src/big &&
	echo small >src/small &&
	free_port 127.0.0.1 >mport &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 -v \
		--metrics-listen "127.0.0.1:$(cat mport)" &&
	sync_to "$TRASH/dst" "$TRASH/state" &&
	converged &&
	test -n "$(ls state/blocks)" &&
	test -n "$(ls spool/blocks)"
'

test_expect_success 'one-shot: 1 MiB overwritten in the middle costs its blocks, no delta' '
	note &&
	overwrite src/big $((40 * MIB + 1000)) $MIB &&
	sync_to "$TRASH/dst" "$TRASH/state" -v >s1.out 2>&1 &&
	converged &&
	grep -q "bytes of changed blocks into a clone" s1.out &&
	grep -q "0 by delta, 0 appended, 1 by changed blocks" s1.out &&
	n=$(since blocks) && d=$(since delta) && w=$(since whole) &&
	bytes=$(since bytes) &&
	say "blocks $n delta $d whole $w, $bytes bytes answered" &&
	test "$n" = 1 && test "$d" = 0 && test "$w" = 0 &&
	test "$bytes" -gt $MIB && test "$bytes" -lt $((MIB + 3 * B)) &&
	grep -q "big.: 17 of 1536 blocks sent" watch.log
'

test_expect_success 'following: each change in place costs its blocks' '
	note &&
	follow_to "$TRASH/dst" "$TRASH/state" &&
	wait_for 30 grep -q "following" follow.log &&
	overwrite src/big $((10 * MIB)) $MIB &&
	wait_for 60 converged &&
	overwrite src/big $((90 * MIB + 5)) 100 &&
	wait_for 60 converged &&
	n=$(since blocks) && d=$(since delta) && bytes=$(since bytes) &&
	say "blocks $n delta $d, $bytes bytes answered" &&
	test "$n" -ge 2 && test "$d" = 0 &&
	test "$bytes" -lt $((MIB + 8 * B))
'

test_expect_success 'grown and shrunk in place: the blocks path still converges' '
	note &&
	head -c 300000 /dev/urandom >>src/big &&
	overwrite src/big $((3 * MIB)) 10 &&
	wait_for 60 converged &&
	truncate -s $((95 * MIB + 3)) src/big &&
	wait_for 60 converged &&
	say "blocks $(since blocks) delta $(since delta) whole $(since whole)"
'

test_expect_success 'a corrupt block store entry on the standby: detected, the delta path' '
	kill_wait $FOLLOW_PID &&
	note &&
	f=state/blocks/$(ls state/blocks | head -n 1) &&
	printf "\377\377\377\377" | dd of="$f" bs=1 seek=200 conv=notrunc 2>/dev/null &&
	overwrite src/big $((20 * MIB)) 5000 &&
	sync_to "$TRASH/dst" "$TRASH/state" -v >s2.out 2>&1 &&
	converged &&
	grep -q "block store: entry .* is corrupt" s2.out &&
	! grep -q "into a clone" s2.out &&
	test "$(since delta)" = 1 && test "$(since blocks)" = 0
'

test_expect_success 'the next change takes the blocks path again' '
	note &&
	overwrite src/big $((21 * MIB)) 5000 &&
	sync_to "$TRASH/dst" "$TRASH/state" -v >s3.out 2>&1 &&
	converged &&
	grep -q "into a clone" s3.out &&
	test "$(since blocks)" = 1 && test "$(since delta)" = 0
'

test_expect_success 'data inserted at the front (every block shifted): the delta path' '
	note &&
	"$PYTHON3" -c "import os
f = os.open(\"src/big\", os.O_RDWR)
d = os.pread(f, os.fstat(f).st_size, 0)
os.pwrite(f, b\"inserted\" * 100 + d, 0)
os.fsync(f)" &&
	sync_to "$TRASH/dst" "$TRASH/state" -v >s3s.out 2>&1 &&
	converged &&
	grep -q "changed blocks: too many blocks differ: the delta path" s3s.out &&
	grep -q "1 by delta" s3s.out &&
	test "$(since delta)" = 1 && test "$(since blocks)" = 0 &&
	test "$(since bytes)" -lt $((100 * B))
'

test_expect_success 'two standbys at different versions: both by changed blocks' '
	sync_to "$TRASH/dst2" "$TRASH/state2" &&
	trees_equal src dst2 &&
	note &&
	overwrite src/big $((22 * MIB)) 5000 &&
	sync_to "$TRASH/dst" "$TRASH/state" &&
	overwrite src/big $((23 * MIB)) 5000 &&
	sync_to "$TRASH/dst2" "$TRASH/state2" -v >s3b.out 2>&1 &&
	sync_to "$TRASH/dst" "$TRASH/state" &&
	converged && trees_equal src dst2 &&
	grep -q "into a clone" s3b.out &&
	test "$(since blocks)" = 3 && test "$(since delta)" = 0 &&
	rm -rf dst2 state2
'

test_expect_success 'a corrupt cache entry on the primary: detected, the delta path' '
	note &&
	for f in spool/blocks/*; do
		printf "\377\377\377\377" | dd of="$f" bs=1 seek=300 conv=notrunc 2>/dev/null ||
		return 1
	done &&
	overwrite src/big $((30 * MIB)) 5000 &&
	sync_to "$TRASH/dst" "$TRASH/state" -v >s4.out 2>&1 &&
	converged &&
	grep -q "block cache: .* is corrupt" watch.log &&
	grep -q "changed blocks: the primary holds no list of this version" s4.out &&
	test "$(since delta)" = 1 && test "$(since blocks)" = 0
'

test_expect_success 'a cache of another version on the primary: the delta path' '
	f=$(ls spool/blocks | head -n 1) &&
	cp spool/blocks/$f older-entry &&
	overwrite src/big $((31 * MIB)) 5000 &&
	sync_to "$TRASH/dst" "$TRASH/state" &&
	converged &&
	cp older-entry spool/blocks/$f &&
	note &&
	overwrite src/big $((32 * MIB)) 5000 &&
	sync_to "$TRASH/dst" "$TRASH/state" -v >s5.out 2>&1 &&
	converged &&
	grep -q "changed blocks: the cache holds another version" watch.log &&
	test "$(since delta)" = 1 && test "$(since blocks)" = 0
'

test_expect_success 'no cache entry on the primary: the delta path' '
	note &&
	rm -f spool/blocks/* &&
	overwrite src/big $((33 * MIB)) 5000 &&
	sync_to "$TRASH/dst" "$TRASH/state" -v >s6.out 2>&1 &&
	converged &&
	grep -q "changed blocks: no cache entry" watch.log &&
	test "$(since delta)" = 1 && test "$(since blocks)" = 0
'

# A hostile primary of the changed-blocks version (fake-primary.py): what
# it announces is checked before a byte is written, and the delta path
# (answered honestly) does the work.
for mode in blocks-bad-block blocks-expand blocks-skip; do
	test_expect_success "a primary that lies in its changed blocks ($mode): refused, the delta path" '
		rm -rf dstf statef &&
		sync_to "$TRASH/dstf" "$TRASH/statef" &&
		FP=$(free_port) &&
		start_bg fake-$mode.log "$PYTHON3" "$SRCDIR/test/t/fake-primary.py" \
			--mode $mode --listen "$TEST_IP:$FP" --tree "$TRASH/src" \
			--victim big --ready-file ready-$mode --lifetime 120 &&
		fake=$last_pid &&
		wait_for 20 test -f ready-$mode &&
		timeout 120 "$ASYNCREP" sync -v --data-dir "$TRASH/dstf" \
			--state-dir "$TRASH/statef" --primary "$TEST_IP:$FP" 2>err-$mode &&
		grep -q "POST /v1/blocks" fake-$mode.log &&
		grep -q "POST /v1/delta" fake-$mode.log &&
		grep -q "changed blocks: .*: the delta path" err-$mode &&
		! grep -q "into a clone" err-$mode &&
		! cmp -s src/big dstf/big &&
		test "$(stat -c %s dstf/big)" = "$(stat -c %s src/big)" &&
		test -z "$(find dstf -name ".asyncrep-tmp*")" &&
		kill_wait $fake
	'
done

test_expect_success 'an older primary (below the changed-blocks version): the delta path' '
	V=$(sed -n "s/^#define WIRE_V_BLOCKS \([0-9]*\).*/\1/p" "$SRCDIR/core/wire.h") &&
	PP=$(free_port) &&
	start_bg proxy.log "$PYTHON3" "$SRCDIR/test/t/version-cap.py" \
		"$TEST_IP" "$PP" "$TEST_IP" "$TEST_PORT" $((V - 1)) &&
	wait_for 10 grep -q "proxy listening" proxy.log &&
	note &&
	overwrite src/big $((50 * MIB)) 5000 &&
	"$ASYNCREP" sync -v --data-dir "$TRASH/dst" --state-dir "$TRASH/state" \
		--primary "$TEST_IP:$PP" >s7.out 2>&1 &&
	converged &&
	grep -q "protocol version $((V - 1))" s7.out &&
	! grep -q "changed blocks:\|into a clone" s7.out &&
	test "$(since delta)" = 1 && test "$(since blocks)" = 0
'

test_expect_success 'a database-like workload, the standby killed mid-update: converges' '
	stop_watch &&
	rm -rf src dst state spool && mkdir src dst &&
	{ [ "$(id -u)" != 0 ] || mount -t tmpfs -o size=1g none dst; } &&
	head -c $((200 * MIB)) /dev/urandom >src/db &&
	WATCH_LOG=$TRASH/watch2.log start_watch "$TRASH/src" "$TRASH/spool" --interval 0 -v \
		--metrics-listen "127.0.0.1:$(cat mport)" &&
	sync_to "$TRASH/dst" "$TRASH/state" &&
	follow_to "$TRASH/dst" "$TRASH/state" &&
	wait_for 30 grep -q "following" follow.log &&
	note &&
	start_bg writer.log "$PYTHON3" -c "import os, random, sys, time
rng = random.Random(9)
f = os.open(\"src/db\", os.O_WRONLY)
for burst in range(int(sys.argv[1])):
    for i in range(20):
        os.pwrite(f, os.urandom(4096), rng.randrange(0, 200 * 256) * 4096)
        os.fsync(f)
    if burst == int(sys.argv[1]) // 2:
        open(\"half\", \"w\").close()
    time.sleep(0.5 + rng.random())
print(\"done\", flush=True)" 16 &&
	wait_for 60 test -e half &&
	kill_wait $FOLLOW_PID &&
	mv follow.log follow-1.log &&
	follow_to "$TRASH/dst" "$TRASH/state" &&
	wait_for 120 grep -q done writer.log &&
	wait_for 120 converged &&
	kill_wait $FOLLOW_PID &&
	say "blocks $(since blocks) delta $(since delta) whole $(since whole)" &&
	test "$(since blocks)" -ge 1 &&
	test "$(grep -c "into a clone" follow-1.log follow.log |
		awk -F: "{ n += \$2 } END { print n }")" -ge 1 &&
	rm -rf src/db && { [ "$(id -u)" != 0 ] || umount dst; }
'

# The reflink path: a loop-mounted XFS image for the standby.
if [ "$(id -u)" = 0 ] && command -v mkfs.xfs >/dev/null 2>&1 &&
	mkdir xfs && truncate -s 512M xfs.img && mkfs.xfs -q xfs.img 2>/dev/null &&
	mount -o loop xfs.img xfs 2>/dev/null; then
	test_expect_success 'on XFS: the clone shares the copy extents (reflink)' '
		{ ! kill -0 "${FOLLOW_PID:-0}" 2>/dev/null || kill_wait $FOLLOW_PID; } &&
		head -c $((64 * MIB)) /dev/urandom >src/x &&
		sync_to "$TRASH/xfs/dst" "$TRASH/xfs/state" &&
		trees_equal src xfs/dst &&
		ln xfs/dst/x xfs/old-x &&
		sync && used0=$(df -k --output=used xfs | tail -n 1) &&
		overwrite src/x $((30 * MIB)) $MIB &&
		sync_to "$TRASH/xfs/dst" "$TRASH/xfs/state" -v >x.out 2>&1 &&
		trees_equal src xfs/dst &&
		grep -q "into a clone (reflink)" x.out &&
		sync && used1=$(df -k --output=used xfs | tail -n 1) &&
		say "XFS used: $used0 KiB before, $used1 KiB after" &&
		test $((used1 - used0)) -lt 8192 &&
		filefrag -v xfs/dst/x >frag.out 2>&1 &&
		say "$(grep -c shared frag.out) extents shared" &&
		{ ! command -v filefrag >/dev/null 2>&1 || grep -q shared frag.out; }
	'
else
	test_skip 'on XFS: the clone shares the copy extents (reflink)' 'needs root, mkfs.xfs and a loop device'
fi

test_done

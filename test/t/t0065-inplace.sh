#!/bin/sh
test_description='inplace = PATTERNS: a big file changed in place is updated where it lies through a journal in state_dir, crash-safe at any point'
. "$SRCDIR/test/t/lib.sh"

# Without reflinks (ext4), a file the operator names in inplace gets
# its changed blocks written into the copy itself, through a journal in
# state_dir/inplace: the same inode, no copy of the whole file. The
# standby is killed (strace's fault injection: SIGKILL at the Nth system
# call of a kind on the journal or on the copy) before the journal is
# written, while it is, at its commit and while the blocks are written
# into the copy; a restarted sync that cannot reach any primary (so it
# does nothing but its recovery) must leave the copy exactly the old
# version or exactly the new one, never a mix, and say what it did.

MIB=1048576
ino() { stat -c %i "$1"; }
PAT="*.img"
DST=$TRASH/dst

test_cleanup() {
	umount -l "$TRASH/ext4" 2>/dev/null
	return 0
}

# The journal path is for file systems without reflinks: where the
# scratch directory has them, the standby's data_dir is a loop-mounted
# ext4 (as root).
head -c 4096 /dev/zero >rl.a
if cp --reflink=always rl.a rl.b 2>/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null &&
	    truncate -s 600M ext4.img && mkfs.ext4 -q -F ext4.img &&
	    mkdir -p ext4 && mount -o loop ext4.img ext4; then
		DST=$TRASH/ext4/dst
	else
		skip_all "the scratch file system has reflinks and no ext4 can be mounted here"
	fi
fi
rm -f rl.a rl.b
command -v strace >/dev/null || skip_all "strace is missing (apt-get install strace)"

# killed_at WHAT WHEN: a one-shot sync, killed with SIGKILL at the
# WHEN-th system call WHAT (strace -e inject) on the paths given in
# $KPATHS; its status in killed.st.
killed_at() {
	set -- -e "trace=$1" -e "inject=$1:signal=SIGKILL:when=$2"
	for p in $KPATHS; do set -- "$@" -P "$p"; done
	st=0
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
	strace -f -qq -o strace.out "$@" "$ASYNCREP" sync --data-dir "$DST" \
		--state-dir "$TRASH/state" --primary "$TEST_IP:$TEST_PORT" \
		--inplace "$PAT" --inplace-min-size 16M -v >killed.out 2>&1 || st=$?
	echo "$st" >killed.st
}
# recover: a sync that reaches no primary: it only recovers (exit 4).
recover() {
	st=0
	"$ASYNCREP" sync --data-dir "$DST" --state-dir "$TRASH/state" \
		--primary 127.0.0.1:1 --connect-timeout 2s --inplace "$PAT" --inplace-min-size 16M -v \
		>recover.out 2>&1 || st=$?
	test "$st" = 4 || { echo "recovery sync exited $st"; cat recover.out; return 1; }
}
journal() { echo "$TRASH/state/inplace/$(stat -c %d-%i "$DST/db.img").j"; }

test_expect_success 'setup: a 96 MiB image replicated, a block store entry' '
	mkdir -p src && head -c $((96 * MIB)) /dev/urandom >src/db.img &&
	echo small >src/small &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 &&
	sync_to "$DST" "$TRASH/state" --inplace "$PAT" --inplace-min-size 16M &&
	trees_equal src "$DST" &&
	test -n "$(ls state/blocks)" &&
	ino "$DST/db.img" >ino0
'

test_expect_success 'one-shot: 1 MiB changed is written in place through the journal, same inode' '
	overwrite src/db.img $((40 * MIB + 100)) $MIB &&
	sync_to "$DST" "$TRASH/state" --inplace "$PAT" --inplace-min-size 16M -v >s1.out 2>&1 &&
	trees_equal src "$DST" &&
	grep -q "bytes of changed blocks written in place, through the journal" s1.out &&
	test "$(ino "$DST/db.img")" = "$(cat ino0)" &&
	test -z "$(ls state/inplace)"
'

test_expect_success 'a path not named, or smaller than inplace_min_size, is rebuilt and renamed' '
	overwrite src/db.img $((10 * MIB)) 4096 &&
	sync_to "$DST" "$TRASH/state" --inplace "*.db" -v >s2.out 2>&1 &&
	trees_equal src "$DST" &&
	grep -q "into a clone" s2.out &&
	test "$(ino "$DST/db.img")" != "$(cat ino0)" &&
	ino "$DST/db.img" >ino0 &&
	overwrite src/db.img $((20 * MIB)) 4096 &&
	sync_to "$DST" "$TRASH/state" --inplace "*.img" --inplace-min-size 200M -v >s3.out 2>&1 &&
	trees_equal src "$DST" &&
	grep -q "into a clone" s3.out &&
	ino "$DST/db.img" >ino0
'

# One crash: change the primary, kill the standby at WHAT #WHEN on
# PATHS, check the copy is OLD or NEW (as EXPECT says, or either), then
# a full sync converges.
crash_case() {
	what=$1 when=$2 expect=$3 &&
	cp "$DST/db.img" old.img &&
	overwrite src/db.img $(( (when * 7 % 80) * MIB + 512)) $((2 * MIB)) &&
	cp src/db.img new.img &&
	KPATHS=$(eval echo "$KPATHS_OF") &&
	killed_at "$what" "$when" &&
	if [ "$(cat killed.st)" != 137 ]; then
		say "not killed at $what #$when (exit $(cat killed.st))" &&
		cat killed.out && return 1
	fi &&
	recover &&
	if cmp -s "$DST/db.img" old.img; then got=old
	elif cmp -s "$DST/db.img" new.img; then got=new
	else got=garbage
	fi &&
	say "killed at $what #$when on $KPATHS_OF: the copy is the $got version" &&
	case "$expect:$got" in
	old:old | new:new | either:old | either:new) ;;
	*) cat recover.out && return 1 ;;
	esac &&
	test -z "$(ls state/inplace)" &&
	test "$(ino "$DST/db.img")" = "$(cat ino0)" &&
	sync_to "$DST" "$TRASH/state" --inplace "$PAT" --inplace-min-size 16M >s4.out 2>&1 &&
	trees_equal src "$DST"
}

test_expect_success 'killed while the journal is written: the old version, the journal dropped' '
	KPATHS_OF="\$(journal)" &&
	for when in 1 2 5 9; do
		crash_case write "$when" old || return 1
	done &&
	grep -q "not committed: the copy is as it was" recover.out
'

# Killed at the commit's fsync, the journal is whole in the page cache:
# it is replayed.
test_expect_success 'killed at the commit (the fsync of the journal): the new version after recovery' '
	KPATHS_OF="\$(journal)" &&
	crash_case fsync 1 new
'

test_expect_success 'killed while the blocks are written into the copy: the new version after recovery' '
	KPATHS_OF="$DST/db.img" &&
	for when in 1 3 8 16 31; do
		crash_case pwrite64 "$when" new || return 1
	done &&
	grep -q "in-place update completed from its journal" recover.out
'

test_expect_success 'killed at the fsync of the copy: the new version after recovery' '
	KPATHS_OF="$DST/db.img" &&
	crash_case fsync 1 new
'

test_expect_success 'status shows a pending journal; a torn journal is dropped, the copy untouched' '
	cp "$DST/db.img" old.img &&
	overwrite src/db.img $((50 * MIB)) $MIB &&
	KPATHS=$(journal) &&
	killed_at fsync 1 &&
	test "$(cat killed.st)" = 137 &&
	printf "[standby]\nprimary = 127.0.0.1:1\ndata_dir = %s\nstate_dir = %s\nconnect_timeout = 1s\n" \
		"$DST" "$TRASH/state" >standby.conf &&
	{ "$ASYNCREP" status -c standby.conf >status.out 2>&1 || :; } &&
	cat status.out &&
	grep -q "1 in-place update pending" status.out &&
	j=$(ls state/inplace/*.j) &&
	truncate -s -3 "$j" &&
	recover &&
	grep -q "not committed" recover.out &&
	test -z "$(ls state/inplace)" &&
	cmp "$DST/db.img" old.img &&
	sync_to "$DST" "$TRASH/state" --inplace "$PAT" --inplace-min-size 16M >s5.out 2>&1 &&
	trees_equal src "$DST"
'

# A committed journal whose copy cannot be opened for writing (here:
# immutable) is kept, and the sync stops (13) rather than go on beside
# a half-written copy; once writable, the replay completes it.
if [ "$(id -u)" = 0 ] && command -v chattr >/dev/null; then
test_expect_success 'a committed journal is kept while its copy cannot be written' '
	cp src/db.img old.img &&
	overwrite src/db.img $((30 * MIB)) $MIB &&
	cp src/db.img new.img &&
	KPATHS=$DST/db.img &&
	killed_at pwrite64 2 &&
	test "$(cat killed.st)" = 137 &&
	chattr +i "$DST/db.img" &&
	st=0 &&
	{ "$ASYNCREP" sync --data-dir "$DST" --state-dir "$TRASH/state" \
		--primary 127.0.0.1:1 --connect-timeout 2s >imm.out 2>&1 ||
		st=$?; } &&
	chattr -i "$DST/db.img" &&
	cat imm.out &&
	test "$st" = 13 &&
	grep -q "cannot be opened to write it" imm.out &&
	test -n "$(ls state/inplace)" &&
	recover &&
	grep -q "in-place update completed from its journal" recover.out &&
	cmp "$DST/db.img" new.img &&
	test -z "$(ls state/inplace)"
'
else
	test_skip 'a committed journal is kept while its copy cannot be written' 'needs root and chattr'
fi

test_expect_success 'following: changes in place through the journal, same inode' '
	follow_to "$DST" "$TRASH/state" --inplace "$PAT" --inplace-min-size 16M &&
	for i in 1 2 3; do
		overwrite src/db.img $((i * 20 * MIB)) 65536 &&
		wait_for 60 trees_equal src "$DST" || return 1
	done &&
	test "$(ino "$DST/db.img")" = "$(cat ino0)" &&
	grep -q "written in place, through the journal" follow.log &&
	kill_wait "$FOLLOW_PID"
'

test_done

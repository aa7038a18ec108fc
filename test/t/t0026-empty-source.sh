#!/bin/sh
test_description='an empty or different source never wipes the standby'
. "$SRCDIR/test/t/lib.sh"

# Two guards, one on each side. The primary records in its spool the
# filesystem it serves (type, id, device, mount point) and whether the
# tree was empty, and refuses (exit 20) to serve another filesystem or an
# empty data_dir where it served a tree; a spool that has no generation
# yet does not make an empty data_dir look legitimate either. The
# standby refuses (exit 21) a compare that would delete more than
# max_delete (default 50 % of its tree), deleting nothing, unless
# --force-delete is given; a batch of changes deletes what the primary
# saw deleted, and is not held to it.

ADDR=$TEST_IP:$TEST_PORT

# count_files DIR: regular files beneath DIR.
count_files() {
	find "$1" -type f | wc -l | tr -d ' '
}

# fill DIR N: N files in DIR/d (and one at the top).
fill() {
	mkdir -p "$1/d" &&
	i=0 &&
	while [ $i -lt "$2" ]; do
		echo "file $i" >"$1/d/f$i" || return 1
		i=$((i + 1))
	done &&
	echo top >"$1/top"
}

# watch_once DATA SPOOL [options]: asyncrep watch in the foreground, for a
# start that must be refused (it returns when watch exits).
watch_once() {
	data=$1; spool=$2; shift 2
	timeout 20 "$ASYNCREP" watch --data-dir "$data" --spool-dir "$spool" \
		--listen "$ADDR" "$@"
}

# restart_watch DATA SPOOL [options]: start_watch with a fresh log.
restart_watch() {
	stop_watch &&
	{ [ ! -f watch.log ] || mv watch.log "watch.log.$(date +%s%N)"; } &&
	start_watch "$@"
}

# ---------------------------------------------------------------------
# The standby's guard: needs no privilege.

test_expect_success 'setup: a primary with 100 files and a standby in sync' '
	fill src 99 &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 &&
	sync_to dst state &&
	trees_equal src dst
'

test_expect_success 'a deletion below max_delete is applied' '
	rm src/d/f0 src/d/f1 &&
	sync_to dst state &&
	trees_equal src dst
'

test_expect_success 'a mass deletion on the primary is refused (21), nothing deleted' '
	rm src/d/f1* src/d/f2* src/d/f3* src/d/f4* src/d/f5* src/d/f6* &&
	test $(count_files src) -lt 40 &&
	test_must_fail 21 sync_to dst state 2>err &&
	cat err &&
	grep -F "max_delete" err &&
	grep -F -- "--force-delete" err &&
	test $(count_files dst) = 98
'

test_expect_success 'a dry run says so too, and deletes nothing' '
	test_must_fail 21 sync_to dst state -n -i >out 2>err &&
	! grep -F deleting out &&
	test $(count_files dst) = 98
'

test_expect_success 'a count below the deletion is refused, a count above passes' '
	test_must_fail 21 sync_to dst state --max-delete 10 2>err &&
	grep -F "max_delete" err &&
	test $(count_files dst) = 98 &&
	sync_to dst state --max-delete 70 &&
	trees_equal src dst
'

test_expect_success 'a deliberate mass deletion passes with --force-delete' '
	rm -r src/d &&
	test_must_fail 21 sync_to dst state &&
	test -d dst/d &&
	sync_to dst state --force-delete &&
	trees_equal src dst
'

test_expect_success 'a raised max_delete lets a mass deletion pass (percentage, file key)' '
	fill src 20 &&
	sync_to dst state &&
	trees_equal src dst &&
	rm -r src/d &&
	printf "[standby]\nmax_delete = 100%%\n" >sb.conf &&
	sync_to dst state -c sb.conf &&
	trees_equal src dst
'

test_expect_success 'max_delete values are checked' '
	test_must_fail 1 sync_to dst state --max-delete 101% 2>err &&
	grep -F "max_delete" err &&
	test_must_fail 1 sync_to dst state --max-delete -1 &&
	test_must_fail 1 sync_to dst state --max-delete 5x &&
	test_must_fail 1 sync_to dst state --max-delete "" &&
	test_must_fail 1 "$ASYNCREP" watch --force-delete 2>err &&
	grep -F "sync" err
'

test_expect_success 'following: a deletion the primary saw is applied, however large' '
	fill src 40 &&
	sync_to dst state &&
	start_bg follow.log timeout 60 "$ASYNCREP" sync --follow --data-dir dst \
		--state-dir state --primary "$ADDR" &&
	FOLLOW_PID=$last_pid &&
	echo one-more >src/one-more &&
	wait_for 20 test -f dst/one-more &&
	mv src/d gone-d &&
	wait_for 20 trees_equal src dst &&
	kill -0 "$FOLLOW_PID"
'

test_expect_success 'following: the compare of a restarted primary is held to max_delete (21)' '
	fill src 40 &&
	wait_for 20 trees_equal src dst &&
	stop_watch &&
	rm src/d/f1* src/d/f2* src/d/f3* &&
	restart_watch "$TRASH/src" "$TRASH/spool" --interval 0 &&
	{ wait "$FOLLOW_PID"; rc=$?; } &&
	cat follow.log &&
	test "$rc" = 21 &&
	grep -F "max_delete" follow.log &&
	test $(count_files dst/d) = 40
'

test_expect_success 'following again with --force-delete applies it' '
	start_bg follow2.log "$ASYNCREP" sync --follow --force-delete \
		--data-dir dst --state-dir state --primary "$ADDR" &&
	FOLLOW_PID=$last_pid &&
	wait_for 20 trees_equal src dst &&
	kill -TERM "$FOLLOW_PID" && wait "$FOLLOW_PID"
'

stop_watch

# ---------------------------------------------------------------------
# The primary's guard: data_dir a mount point whose filesystem is gone.

why=
[ "$(id -u)" = 0 ] || why="not root (mounts a tmpfs)"
if [ -z "$why" ]; then
	mkdir -p "$TRASH/probe" &&
	if mount -t tmpfs tmpfs "$TRASH/probe" 2>/dev/null; then
		umount "$TRASH/probe"
	else
		why="mount -t tmpfs is not permitted here"
	fi
fi
if [ -n "$why" ]; then
	test_skip "data_dir unmounted under a stopped watch" "$why"
	test_skip "spool on the same unmounted storage" "$why"
	test_done
fi

MOUNTS=
test_cleanup() {
	for m in $MOUNTS; do
		umount -l "$m" 2>/dev/null
	done
}

# mount_tmpfs DIR: a new, empty tmpfs on DIR.
mount_tmpfs() {
	mkdir -p "$1" &&
	mount -t tmpfs tmpfs "$1" &&
	MOUNTS="$MOUNTS $1"
}

test_expect_success 'setup: a tmpfs as data_dir with 100 files, a standby in sync' '
	mount_tmpfs "$TRASH/vol" &&
	fill vol 99 &&
	restart_watch "$TRASH/vol" "$TRASH/vspool" --interval 0 &&
	sync_to vdst vstate &&
	trees_equal vol vdst &&
	test -f vspool/source
'

test_expect_success 'data_dir unmounted under a stopped watch: refused (20), says why' '
	stop_watch &&
	umount "$TRASH/vol" &&
	test_must_fail 20 watch_once "$TRASH/vol" "$TRASH/vspool" 2>err &&
	cat err &&
	grep -F "vol" err &&
	grep -F "mount point" err &&
	grep -F -- "--reinit" err
'

test_expect_success 'the standby is untouched' '
	test $(count_files vdst) = 100
'

test_expect_success 'an empty tmpfs mounted in its place is another filesystem: refused' '
	mount_tmpfs "$TRASH/vol" &&
	test_must_fail 20 watch_once "$TRASH/vol" "$TRASH/vspool" 2>err &&
	cat err &&
	grep -F "filesystem" err &&
	test_must_fail 20 watch_once "$TRASH/vol" "$TRASH/vspool" --allow-empty \
		2>err &&
	umount "$TRASH/vol"
'

test_expect_success 'the same filesystem back (a bind mount): served, nothing lost' '
	mkdir -p store && fill store 99 &&
	mount --bind "$TRASH/store" "$TRASH/vol" && MOUNTS="$MOUNTS $TRASH/vol" &&
	restart_watch "$TRASH/vol" "$TRASH/bspool" --interval 0 &&
	sync_to bdst bstate &&
	trees_equal vol bdst &&
	stop_watch &&
	umount "$TRASH/vol" &&
	test_must_fail 20 watch_once "$TRASH/vol" "$TRASH/bspool" 2>err &&
	cat err &&
	grep -F "mount point" err &&
	mount --bind "$TRASH/store" "$TRASH/vol" &&
	restart_watch "$TRASH/vol" "$TRASH/bspool" --interval 0 &&
	sync_to bdst bstate &&
	trees_equal vol bdst
'

test_expect_success 'the same filesystem emptied while watch was stopped: refused' '
	stop_watch &&
	mkdir keep && mv store/* keep/ &&
	test_must_fail 20 watch_once "$TRASH/vol" "$TRASH/bspool" 2>err &&
	cat err &&
	grep -F "empty" err &&
	mv keep/* store/ &&
	restart_watch "$TRASH/vol" "$TRASH/bspool" --interval 0
'

test_expect_success '--reinit serves it on purpose; the standby still refuses to empty itself' '
	stop_watch &&
	umount "$TRASH/vol" &&
	restart_watch "$TRASH/vol" "$TRASH/bspool" --interval 0 --reinit &&
	test_must_fail 21 sync_to bdst bstate 2>err &&
	cat err &&
	test $(count_files bdst) = 100 &&
	stop_watch
'

test_expect_success 'spool on the same unmounted storage: a fresh spool and an empty data_dir are refused' '
	mount_tmpfs "$TRASH/vol2" &&
	mount_tmpfs "$TRASH/vol2-spool" &&
	fill vol2 99 &&
	restart_watch "$TRASH/vol2" "$TRASH/vol2-spool/spool" --interval 0 &&
	sync_to v2dst v2state &&
	trees_equal vol2 v2dst &&
	stop_watch &&
	umount "$TRASH/vol2" &&
	umount "$TRASH/vol2-spool" &&
	test_must_fail 20 watch_once "$TRASH/vol2" "$TRASH/vol2-spool/spool" \
		2>err &&
	cat err &&
	grep -F "empty" err &&
	grep -F -- "--allow-empty" err &&
	test ! -e vol2-spool/spool/generation &&
	test_must_fail 20 watch_once "$TRASH/vol2" "$TRASH/vol2-spool/spool" &&
	test $(count_files v2dst) = 100
'

test_expect_success '--allow-empty starts it on purpose; the standby still refuses (21)' '
	restart_watch "$TRASH/vol2" "$TRASH/vol2-spool/spool" --interval 0 \
		--allow-empty &&
	test_must_fail 21 sync_to v2dst v2state &&
	test $(count_files v2dst) = 100 &&
	stop_watch
'

test_expect_success 'a new, empty tree starts with --allow-empty, then fills' '
	mkdir fresh &&
	test_must_fail 20 watch_once "$TRASH/fresh" "$TRASH/fspool" 2>err &&
	cat err &&
	restart_watch "$TRASH/fresh" "$TRASH/fspool" --interval 0 --allow-empty &&
	echo first >fresh/first &&
	sync_to fdst fstate &&
	trees_equal fresh fdst &&
	stop_watch &&
	restart_watch "$TRASH/fresh" "$TRASH/fspool" --interval 0 &&
	stop_watch
'

test_done

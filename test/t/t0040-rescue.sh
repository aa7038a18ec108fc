#!/bin/sh
test_description='rescue: a third node takes over a dead primary and completes the standby'
# The interpreter itself, not a version-manager shim that costs most of a
# second per start (wait_for runs trees_equal many times).
: "${PYTHON3:=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}"
. "$SRCDIR/test/t/lib.sh"
. "$SRCDIR/test/t/lib-rescue.sh"

# ---------------------------------------------------------------------
# 1. The primary SIGKILLed in the middle of a workload.

test_expect_success 'setup: a primary on 127.0.0.2 and a following standby' '
	mkdir -p p1/data/pre && echo before >p1/data/pre/f &&
	write_conf p1 "$TRASH/p1/data" "$TRASH/p1/spool" 100ms &&
	start_primary p1 &&
	start_follow s1 &&
	wait_for 20 trees_equal p1/data s1/data
'

test_expect_success 'primary SIGKILLed mid-workload: every logged write reaches the standby' '
	start_bg workload.out "$PYTHON3" "$WRITES" write p1/data written.log &&
	WL_PID=$last_pid &&
	wait_for 20 test -f s1/data/d01/w00045 &&
	wait_for 20 logged_ge 300 &&
	kill9 $WATCH_PID &&
	sleep 0.3 && kill9 $WL_PID &&
	say "$(wc -l <written.log) writes logged, $(ls p1/data/d*/ | grep -c ^w) files" &&
	cp -a p1/spool p1-spool.before &&
	start_rescue p1 --timeout 30s &&
	rescued_ok p1 s1 &&
	"$PYTHON3" "$WRITES" check written.log s1/data &&
	trees_equal p1/data s1/data &&
	say "spool phase $(report_count p1 spool) files, compare phase $(report_count p1 compare) files"
'

# 7. Run again after success.
test_expect_success 'rescue run again after success: exit 0, prints the report' '
	timeout 20 "$ASYNCREP" rescue -c "$TRASH/p1.conf" --timeout 2s >again.out 2>again.err &&
	cat again.out again.err &&
	grep -q "^asyncrep rescue completed" again.out &&
	grep -q "^generation $(cat p1-spool.before/generation) closed" again.out &&
	grep -q "^spool phase: " again.out &&
	test_cmp p1/spool/rescued again.out
'

# ---------------------------------------------------------------------
# 2. Changes held in the spool by a long interval.

test_expect_success 'primary killed while a 30s interval holds changes: rescue ships them' '
	stop_strays &&
	mkdir -p p2/data && echo before >p2/data/pre &&
	write_conf p2 "$TRASH/p2/data" "$TRASH/p2/spool" 30s &&
	start_primary p2 &&
	start_follow s2 &&
	wait_for 20 trees_equal p2/data s2/data &&
	mkdir p2/data/held &&
	for i in 1 2 3 4 5; do
		echo "held $i" >p2/data/held/held-n$i || return 1
	done &&
	head -c 30000000 /dev/urandom >p2/data/held/held-big &&
	wait_for 10 grep -qa "held-n5" p2/spool/seg-*.log &&
	wait_for 10 grep -qa "held-big" p2/spool/seg-*.log &&
	sleep 0.3 &&
	test ! -e s2/data/held &&
	kill9 $WATCH_PID &&
	start_rescue p2 --timeout 30s &&
	rescued_ok p2 s2 &&
	trees_equal p2/data s2/data &&
	cat p2/spool/rescued &&
	test "$(report_count p2 spool)" = 6 &&
	test "$(report_count p2 compare)" = 0 &&
	! grep -q "found only by the compare" p2/spool/rescued
'

# report_secs NAME PHASE: the seconds the report gives PHASE.
report_secs() {
	sed -n "s/^$2 phase: .*, \([0-9.]*\) s$/\1/p" "$TRASH/$1.rescue.log" |
		tail -1
}

# positive NUMBER: NUMBER is a decimal number above 0.
positive() {
	awk -v n="$1" 'BEGIN { exit !(n ~ /^[0-9]+(\.[0-9]+)?$/ && n + 0 > 0) }'
}

test_expect_success 'the report times the spool phase (30 MB took more than 0 s)' '
	secs=$(report_secs p2 spool) &&
	say "waiting $(sed -n "s/^waiting for the standby: //p" p2.rescue.log), spool phase $secs s" &&
	positive "$secs"
'

# ---------------------------------------------------------------------
# 3. A change the spool never saw.

test_expect_success 'writes the watcher never saw (SIGSTOP) are found by the compare' '
	stop_strays &&
	mkdir -p p3/data && echo before >p3/data/pre &&
	write_conf p3 "$TRASH/p3/data" "$TRASH/p3/spool" 100ms &&
	start_primary p3 &&
	start_follow s3 &&
	wait_for 20 trees_equal p3/data s3/data &&
	kill -STOP $WATCH_PID && wait_for 10 is_stopped $WATCH_PID &&
	echo unseen1 >p3/data/unseen-c1 && mkdir p3/data/late &&
	echo unseen2 >p3/data/late/unseen-c2 && echo changed >p3/data/pre &&
	sync && kill9 $WATCH_PID &&
	! grep -qa "unseen-c" p3/spool/seg-*.log &&
	start_rescue p3 --timeout 30s &&
	rescued_ok p3 s3 &&
	trees_equal p3/data s3/data &&
	cat p3/spool/rescued &&
	grep -q "^found only by the compare: unseen-c1$" p3/spool/rescued &&
	grep -q "^found only by the compare: late/unseen-c2$" p3/spool/rescued &&
	grep -q "^found only by the compare: pre$" p3/spool/rescued &&
	test "$(report_count p3 compare)" = 3
'

# ---------------------------------------------------------------------
# 4. The standby, then the rescue, SIGKILLed mid-transfer.

test_expect_success 'setup: 4 x 50 MB written behind a stopped primary' '
	stop_strays &&
	mkdir -p p4/data && echo before >p4/data/pre &&
	write_conf p4 "$TRASH/p4/data" "$TRASH/p4/spool" 100ms &&
	start_primary p4 &&
	start_follow s4 &&
	wait_for 20 trees_equal p4/data s4/data &&
	kill -STOP $WATCH_PID && wait_for 10 is_stopped $WATCH_PID &&
	for i in 1 2 3 4; do
		head -c 50000000 /dev/urandom >p4/data/big$i || return 1
	done &&
	kill9 $WATCH_PID
'

test_expect_success 'standby SIGKILLed during the rescue and restarted: the rescue waits' '
	start_rescue p4 --timeout 30s &&
	wait_for 20 status_is p4 comparing &&
	kill9 $FOLLOW_PID &&
	test ! -f s4/data/big4 &&
	sleep 0.5 && kill -0 $RESCUE_PID && status_is p4 comparing &&
	start_follow s4 &&
	wait_for 30 test -f s4/data/big1 &&
	kill -STOP $FOLLOW_PID
'

# The standby is stopped in the middle of the compare phase's transfer:
# the rescue is killed with the transfer certainly unfinished.
test_expect_success 'rescue SIGKILLed mid-transfer and restarted: completes' '
	test ! -f s4/data/big4 &&
	kill9 $RESCUE_PID &&
	kill -CONT $FOLLOW_PID &&
	test ! -e p4/spool/rescued &&
	start_rescue p4 --timeout 30s &&
	rescued_ok p4 s4 &&
	trees_equal p4/data s4/data
'

# ---------------------------------------------------------------------
# 5. Fencing.

test_expect_success 'the old primary restarted after the rescue refuses to serve' '
	stop_strays &&
	test_must_fail 12 timeout 20 "$ASYNCREP" watch -c "$TRASH/p1.conf" 2>fenced.err &&
	cat fenced.err &&
	grep -q -- "--reinit" fenced.err &&
	! port_open $TEST_IP $TEST_PORT
'

test_expect_success 'a standby refuses the generation a rescue closed' '
	mv p1/spool p1/spool.rescued &&
	cp -a p1-spool.before p1/spool &&
	test ! -e p1/spool/rescued &&
	start_primary p1 &&
	test_must_fail 12 timeout 20 "$ASYNCREP" sync --follow \
		--data-dir "$TRASH/s1/data" --state-dir "$TRASH/s1/state" \
		--primary "$ADDR" 2>closed.err &&
	cat closed.err &&
	grep -q "closed" closed.err &&
	test_must_fail 12 timeout 20 "$ASYNCREP" sync \
		--data-dir "$TRASH/s1/data" --state-dir "$TRASH/s1/state" \
		--primary "$ADDR" &&
	trees_equal p1/data s1/data &&
	stop_watch &&
	rm -rf p1/spool && mv p1/spool.rescued p1/spool
'

test_expect_success 'after watch --reinit a standby follows the new generation' '
	old=$(cat p1-spool.before/generation) && test -n "$old" &&
	start_primary p1 --reinit &&
	new=$(cat p1/spool/generation) && test -n "$new" &&
	test "$new" != "$old" &&
	test ! -e p1/spool/rescued &&
	echo after-reinit >p1/data/new &&
	start_follow s1 &&
	wait_for 30 trees_equal p1/data s1/data &&
	echo more >p1/data/new2 &&
	wait_for 30 trees_equal p1/data s1/data &&
	kill -TERM $FOLLOW_PID && reap 20 $FOLLOW_PID && test "$RC" = 0 &&
	grep -q "comparing the whole tree with generation $new" s1.follow.log &&
	stop_watch
'

# ---------------------------------------------------------------------
# 6. Failures: the right status, a message naming the cause, never 0.

test_expect_success 'setup: a primary that ran once and died' '
	stop_strays &&
	mkdir -p p6/data && echo x >p6/data/f &&
	write_conf p6 "$TRASH/p6/data" "$TRASH/p6/spool" 100ms &&
	start_primary p6 && kill9 $WATCH_PID &&
	test -s p6/spool/generation
'

test_expect_success 'storage unreadable (empty --root): 17' '
	mkdir emptyroot &&
	test_must_fail 17 timeout 30 "$ASYNCREP" rescue -c "$TRASH/p6.conf" \
		--root "$TRASH/emptyroot" --timeout 2s 2>err &&
	cat err && grep -q "emptyroot$TRASH/p6/data" err
'

test_expect_success 'spool directory missing: 17' '
	write_conf p6nospool "$TRASH/p6/data" "$TRASH/p6/no-such-spool" 100ms &&
	test_must_fail 17 timeout 30 "$ASYNCREP" rescue \
		-c "$TRASH/p6nospool.conf" --timeout 2s 2>err &&
	cat err && grep -q "no-such-spool" err
'

test_expect_success 'config corrupt: 2' '
	printf "[primary]\ndata_dir = %s\nthis line is no key\n" "$TRASH/p6/data" >corrupt.conf &&
	test_must_fail 2 timeout 30 "$ASYNCREP" rescue -c "$TRASH/corrupt.conf" \
		--timeout 2s 2>err &&
	cat err && grep -q "corrupt.conf:3" err &&
	printf "[primary]\ndata_dir = %s\nspool_dir = %s\nlisten = nowhere\n" \
		"$TRASH/p6/data" "$TRASH/p6/spool" >corrupt2.conf &&
	test_must_fail 2 timeout 30 "$ASYNCREP" rescue -c "$TRASH/corrupt2.conf" \
		--timeout 2s 2>err &&
	cat err && grep -q "listen" err &&
	test_must_fail 2 timeout 30 "$ASYNCREP" rescue -c "$TRASH/no-such.conf" \
		--timeout 2s 2>err &&
	cat err && grep -q "no-such.conf" err
'

test_expect_success 'port in use: 9' '
	start_bg listener.log "$PYTHON3" -c "import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
time.sleep(60)" $TEST_IP $TEST_PORT &&
	LPID=$last_pid &&
	wait_for 10 port_open $TEST_IP $TEST_PORT &&
	if test_must_fail 9 timeout 30 "$ASYNCREP" rescue \
		-c "$TRASH/p6.conf" --timeout 2s 2>err
	then rc=0
	else rc=1
	fi &&
	kill9 $LPID && test $rc = 0 &&
	cat err && grep -q "listen $ADDR" err && grep -qi "in use" err
'

test_expect_success 'no standby within --timeout 2s: 16' '
	test_must_fail 16 timeout 30 "$ASYNCREP" rescue -c "$TRASH/p6.conf" \
		--timeout 2s 2>err &&
	cat err && grep -q "no standby" err &&
	test ! -e p6/spool/rescued &&
	test_cmp p6/data/f - <<-EOF
	x
	EOF
'

# ---------------------------------------------------------------------
# 8. --root: the primary's storage seen under a mount point.

FAKE=/srv/asyncrep-t0040.$$
MNT=$TRASH/mnt
test_cleanup() {
	umount "$MNT$FAKE" 2>/dev/null
	umount "$TRASH/ro" 2>/dev/null
	return 0
}

test_expect_success 'rescue with --root over a bind mount (or a copy) of the storage' '
	stop_strays &&
	mkdir -p p8/data && echo before >p8/data/pre &&
	write_conf p8 "$FAKE/data" "$FAKE/spool" 30s &&
	test ! -e "$FAKE" &&
	start_primary p8 --data-dir "$TRASH/p8/data" --spool-dir "$TRASH/p8/spool" &&
	start_follow s8 &&
	wait_for 20 trees_equal p8/data s8/data &&
	echo spooled >p8/data/held &&
	wait_for 10 grep -qa held p8/spool/seg-*.log &&
	kill -STOP $WATCH_PID && wait_for 10 is_stopped $WATCH_PID && echo unseen >p8/data/unseen &&
	kill9 $WATCH_PID &&
	mkdir -p "$MNT$FAKE" &&
	if mount --bind "$TRASH/p8" "$MNT$FAKE" 2>/dev/null
	then say "bind mount" && SP8=p8/spool && BOUND8=1
	else cp -a p8/. "$MNT$FAKE/" && say "copy" && SP8=$MNT$FAKE/spool && BOUND8=
	fi &&
	start_rescue p8 --root "$MNT" --timeout 30s &&
	reap 60 $RESCUE_PID && test "$RC" = 0 &&
	reap 20 $FOLLOW_PID && test "$RC" = 0 &&
	grep -q "the replica is complete" s8.follow.log &&
	test -f "$SP8/rescued" &&
	cat "$SP8/rescued" &&
	grep -q "^found only by the compare: unseen$" "$SP8/rescued" &&
	test "$(report_count p8 spool)" = 1 &&
	trees_equal p8/data s8/data &&
	{ test -z "$BOUND8" || umount "$MNT$FAKE"; }
'

# ---------------------------------------------------------------------
# A standby that is busy is not absent: --timeout is for a standby that
# never comes, not for a transfer longer than it.

test_expect_success 'a spool phase longer than --timeout completes' '
	stop_strays &&
	mkdir -p p5/data && echo before >p5/data/pre &&
	write_conf p5 "$TRASH/p5/data" "$TRASH/p5/spool" 30s &&
	start_primary p5 &&
	start_follow s5 &&
	wait_for 20 trees_equal p5/data s5/data &&
	for i in 1 2 3 4; do
		head -c 50000000 /dev/urandom >p5/data/big$i || return 1
	done &&
	"$PYTHON3" -c "
import os
os.makedirs(\"p5/data/many\")
for i in range(10000):
    with open(\"p5/data/many/many-f%05d\" % i, \"w\") as f:
        f.write(str(i))
" &&
	wait_for 20 grep -qa many-f09999 p5/spool/seg-*.log &&
	kill9 $WATCH_PID && kill9 $FOLLOW_PID &&
	start_rescue p5 --timeout 400ms &&
	wait_for 10 status_is p5 listening &&
	start_follow s5 &&
	reap 60 $RESCUE_PID &&
	cat p5.rescue.log && tail -n 4 s5.follow.log &&
	test "$RC" = 0 &&
	reap 20 $FOLLOW_PID && test "$RC" = 0 &&
	trees_equal p5/data s5/data
'

# ---------------------------------------------------------------------
# The standby confirmed, but the rescue could not write the marker (a
# read-only view of the storage): a second run on writable storage must
# still be able to finish.

if [ "$(id -u)" != 0 ] || ! mount --bind "$TRASH" "$TRASH" 2>/dev/null; then
	test_skip 'read-only storage' 'needs root for a read-only bind mount'
else
	umount "$TRASH"
	test_expect_success 'read-only storage: rescue fails, and a rerun completes' '
		stop_strays &&
		mkdir -p p9/data ro && echo before >p9/data/pre &&
		write_conf p9 "/p9/data" "/p9/spool" 100ms &&
		start_primary p9 --data-dir "$TRASH/p9/data" --spool-dir "$TRASH/p9/spool" &&
		start_follow s9 &&
		wait_for 20 trees_equal p9/data s9/data &&
		kill -STOP $WATCH_PID && wait_for 10 is_stopped $WATCH_PID && echo unseen >p9/data/unseen &&
		kill9 $WATCH_PID &&
		mount --bind "$TRASH" "$TRASH/ro" &&
		mount -o remount,ro,bind "$TRASH/ro" &&
		test_must_fail 17 timeout 30 "$ASYNCREP" rescue -c "$TRASH/p9.conf" \
			--root "$TRASH/ro" --timeout 10s 2>ro.err &&
		cat ro.err && grep -q "/p9/spool" ro.err &&
		umount "$TRASH/ro" &&
		test ! -e p9/spool/rescued &&
		if exited $FOLLOW_PID
		then
			reap 1 $FOLLOW_PID && say "the standby exited $RC" &&
			start_follow s9
		fi &&
		start_rescue p9 --root "$TRASH" --timeout 5s &&
		rescued_ok p9 s9 p9/spool &&
		trees_equal p9/data s9/data
	'
fi

# ---------------------------------------------------------------------
# --root confines: the primary's paths are resolved beneath the mount
# point, a ".." is refused and a symlink on the storage means the
# storage's own tree, so the rescue never serves this node's files.

# The storage of a primary that ran (its spool is real), under MNT10;
# this node's own "secret" files outside it.
test_expect_success 'setup: a stored primary, and files of the rescue node' '
	stop_strays &&
	mkdir -p p10/data secret && echo stored >p10/data/stored &&
	echo "of the rescue node" >secret/secret &&
	write_conf p10 "$TRASH/p10/data" "$TRASH/p10/spool" 100ms &&
	start_primary p10 &&
	kill9 $WATCH_PID &&
	MNT10=$TRASH/mnt10 && mkdir -p "$MNT10$FAKE" &&
	cp -a p10/. "$MNT10$FAKE/"
'

# refused_root NAME DATA_DIR STATUS TEXT: a rescue of a primary with that
# data_dir under --root MNT10 exits STATUS saying TEXT, and a standby
# that dials the address gets nothing of this node.
refused_root() {
	write_conf "$1" "$2" "$FAKE/spool" 100ms &&
	test_must_fail "$3" timeout 30 "$ASYNCREP" rescue -c "$TRASH/$1.conf" \
		--root "$MNT10" --timeout 2s 2>"$1.err" &&
	cat "$1.err" &&
	grep -q "$4" "$1.err" &&
	test_must_fail 4 timeout 30 "$ASYNCREP" sync --data-dir "$TRASH/$1.d" \
		--state-dir "$TRASH/$1.st" --primary "$ADDR" --connect-timeout 1s \
		2>/dev/null &&
	! test -e "$1.d/secret"
}

test_expect_success '--root: a data_dir with .. is refused (2)' '
	refused_root p10dd "$FAKE/../../../../../../../../..$TRASH/secret" 2 \
		"holds ....: refused under --root"
'

test_expect_success '--root: a symlink on the storage stays on the storage (17)' '
	rm -rf "$MNT10$FAKE/data" &&
	ln -s "$TRASH/secret" "$MNT10$FAKE/data" &&
	refused_root p10ln "$FAKE/data" 17 "No such file or directory"
'

# A file of the spool itself replaced by a symlink to a file of this
# node: with the spool reached through its descriptor, a followed
# symlink would lead out of --root. This node's copy holds a valid
# generation, so reading it would let the rescue go on.
test_expect_success '--root: a symlink in the spool is not followed (17)' '
	mkdir -p "$MNT10$TRASH/secret" "$MNT10$FAKE/spool2" &&
	cp -a "$MNT10$FAKE/spool/." "$MNT10$FAKE/spool2/" &&
	mv "$MNT10$FAKE/spool2/generation" secret/generation &&
	ln -s "$TRASH/secret/generation" "$MNT10$FAKE/spool2/generation" &&
	write_conf p10sp "$FAKE/data" "$FAKE/spool2" 100ms &&
	test_must_fail 17 timeout 30 "$ASYNCREP" rescue -c "$TRASH/p10sp.conf" \
		--root "$MNT10" --timeout 2s 2>p10sp.err &&
	cat p10sp.err &&
	grep -q "cannot read .generation.: Too many levels of symbolic links" \
		p10sp.err
'

test_expect_success '--root: a symlink the storage resolves is served from it' '
	mkdir -p "$MNT10$TRASH/secret" &&
	echo "of the storage" >"$MNT10$TRASH/secret/secret" &&
	write_conf p10ok "$FAKE/data" "$FAKE/spool" 100ms &&
	start_rescue p10ok --root "$MNT10" --timeout 30s &&
	wait_for 10 status_is p10ok listening &&
	start_follow s10 &&
	rescued_ok p10ok s10 "$MNT10$FAKE/spool" &&
	echo "of the storage" >expect &&
	test_cmp expect s10/data/secret
'

test_done

#!/bin/sh
test_description='rescue: a third node takes over a dead primary and completes the standby'
# The interpreter itself, not a version-manager shim that costs most of a
# second per start (wait_for runs trees_equal many times).
: "${PYTHON3:=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}"
. "$SRCDIR/test/t/lib.sh"

# The primary's service address is 127.0.0.2 (the issue's address); the
# rescue binds the same address once the primary is dead.
TEST_IP=127.0.0.2
TEST_PORT=$("$PYTHON3" -c 'import socket,sys
s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$TEST_IP") ||
	exit 99
ADDR=$TEST_IP:$TEST_PORT

# write_conf NAME DATA SPOOL INTERVAL: the primary's configuration file,
# as it would be deployed on the primary (and read by the rescue).
write_conf() {
	cat >"$TRASH/$1.conf" <<-EOF
	[primary]
	data_dir  = $2
	spool_dir = $3
	listen    = $ADDR
	interval  = $4
	EOF
}

# start_primary NAME [options]: asyncrep watch -c NAME.conf, serving;
# sets WATCH_PID.
start_primary() {
	name=$1; shift
	start_bg "$TRASH/$name.watch.log" "$ASYNCREP" watch -v \
		-c "$TRASH/$name.conf" "$@"
	WATCH_PID=$last_pid
	wait_for 10 grep -q "serving" "$TRASH/$name.watch.log" &&
	kill -0 "$WATCH_PID" || {
		cat "$TRASH/$name.watch.log"; return 1; }
}

# start_follow NAME: a following standby in NAME/ (data and state),
# dialling the primary's address; logs to NAME.follow.log (appended, so a
# restarted standby keeps the history). Sets FOLLOW_PID.
start_follow() {
	echo "--- start" >>"$TRASH/$1.follow.log"
	"$ASYNCREP" sync --follow -v --data-dir "$TRASH/$1/data" \
		--state-dir "$TRASH/$1/state" --primary "$ADDR" \
		>>"$TRASH/$1.follow.log" 2>&1 &
	FOLLOW_PID=$!
	BG_PIDS="$BG_PIDS $FOLLOW_PID"
	echo "$FOLLOW_PID" >>"$TRASH/.pids"
}

# start_rescue NAME [options]: asyncrep rescue -c NAME.conf in the
# background; status in NAME.rescue-status; sets RESCUE_PID.
start_rescue() {
	name=$1; shift
	echo "--- start" >>"$TRASH/$name.rescue.log"
	"$ASYNCREP" rescue -c "$TRASH/$name.conf" \
		--status-file "$TRASH/$name.rescue-status" "$@" \
		>>"$TRASH/$name.rescue.log" 2>&1 &
	RESCUE_PID=$!
	BG_PIDS="$BG_PIDS $RESCUE_PID"
	echo "$RESCUE_PID" >>"$TRASH/.pids"
}

# exited PID: the process is gone or a zombie (kill -0 still sees those).
exited() {
	[ ! -e "/proc/$1" ] ||
	[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = Z ]
}

# reap SECS PID: wait (bounded) for PID to exit; its status goes in $RC.
reap() {
	RC=
	wait_for "$1" exited "$2" || return 1
	RC=0
	wait "$2" || RC=$?
	return 0
}

# kill9 PID: SIGKILL and reap.
kill9() {
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# stop_strays: a scenario starts with nothing of an earlier one running
# (a standby left by a failed step would dial the next primary).
# Only our own children: a reaped pid may have been reused since.
stop_strays() {
	for pid in $BG_PIDS; do
		[ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null |
			cut -d" " -f2)" = "$$" ] || continue
		kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	return 0
}

# status_is NAME WORD: the rescue's status file starts with WORD.
status_is() {
	test "$(cut -d" " -f1 "$TRASH/$1.rescue-status" 2>/dev/null)" = "$2"
}

# report_count NAME PHASE: files sent in the report's PHASE (spool or
# compare).
report_count() {
	sed -n "s/^$2 phase: \([0-9]*\) files.*/\1/p" "$TRASH/$1.rescue.log" |
		tail -1
}

# rescued_ok P S: the rescue of primary P exited 0 and so did standby S
# (its pid in FOLLOW_PID), saying the replica is complete.
rescued_ok() {
	reap 60 "$RESCUE_PID" &&
	{ test "$RC" = 0 || { echo "rescue exited $RC"; show_logs "$1" "$2"; }; } &&
	reap 20 "$FOLLOW_PID" &&
	{ test "$RC" = 0 || { echo "standby exited $RC"; show_logs "$1" "$2"; }; } &&
	grep -q "the replica is complete" "$TRASH/$2.follow.log" &&
	grep -q "^asyncrep rescue completed" "$TRASH/$1.rescue.log" &&
	test -f "$1/spool/rescued" &&
	status_is "$1" complete
}

# logged_ge N: the workload logged at least N writes.
logged_ge() {
	test "$(wc -l <"$TRASH/written.log")" -ge "$1"
}

# show_logs P S: the ends of the rescue's and the standby's logs; fails.
show_logs() {
	for f in "$TRASH/$1.rescue.log" "$TRASH/$2.follow.log"; do
		echo "== $f"; tail -n 15 "$f"
	done
	return 1
}

# A workload: writes, fsyncs and only then logs "path sha256" of what the
# file holds, forever; every tenth step appends to an earlier file.
cat >workload.py <<'EOF'
import hashlib, os, random, sys, time
root, log = sys.argv[1], sys.argv[2]
rng = random.Random(40)
lf = open(log, "a")
i = 0
while True:
    sub = "d%02d" % (i // 40)
    os.makedirs(os.path.join(root, sub), exist_ok=True)
    if i % 10 == 9:
        name = "d%02d/w%05d" % ((i - 5) // 40, i - 5)
        flags = os.O_WRONLY | os.O_APPEND
    else:
        name = "%s/w%05d" % (sub, i)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    path = os.path.join(root, name)
    fd = os.open(path, flags, 0o644)
    os.write(fd, os.urandom(rng.randint(1, 48 * 1024)))
    os.fsync(fd)
    os.close(fd)
    dfd = os.open(os.path.dirname(path), os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
    with open(path, "rb") as f:
        h = hashlib.sha256(f.read()).hexdigest()
    lf.write("%s %s\n" % (name, h))
    lf.flush()
    i += 1
    time.sleep(0.002)
EOF

# check_log LOG DIR: the last logged hash of every logged file is what DIR
# holds.
cat >check_log.py <<'EOF'
import hashlib, os, sys
last = {}
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) == 2 and len(parts[1]) == 64:
        last[parts[0]] = parts[1]
bad = 0
for name, h in sorted(last.items()):
    p = os.path.join(sys.argv[2], name)
    try:
        got = hashlib.sha256(open(p, "rb").read()).hexdigest()
    except OSError as e:
        print("missing on the standby: %s (%s)" % (name, e))
        bad += 1
        continue
    if got != h:
        print("differs on the standby: %s" % name)
        bad += 1
print("%d logged files checked, %d bad" % (len(last), bad))
sys.exit(1 if bad or not last else 0)
EOF

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
	start_bg workload.out "$PYTHON3" workload.py p1/data written.log &&
	WL_PID=$last_pid &&
	wait_for 20 test -f s1/data/d01/w00045 &&
	wait_for 20 logged_ge 300 &&
	kill9 $WATCH_PID &&
	sleep 0.3 && kill9 $WL_PID &&
	say "$(wc -l <written.log) writes logged, $(ls p1/data/d*/ | grep -c ^w) files" &&
	cp -a p1/spool p1-spool.before &&
	start_rescue p1 --timeout 30s &&
	rescued_ok p1 s1 &&
	"$PYTHON3" check_log.py written.log s1/data &&
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

test_expect_success 'the report times the spool phase (30 MB took more than 0 s)' '
	say "waiting $(sed -n "s/^waiting for the standby: //p" p2.rescue.log), spool phase $(report_secs p2 spool) s" &&
	test "$(report_secs p2 spool)" != 0.000
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
	old=$(cat p1-spool.before/generation) &&
	start_primary p1 --reinit &&
	test "$(cat p1/spool/generation)" != "$old" &&
	test ! -e p1/spool/rescued &&
	echo after-reinit >p1/data/new &&
	start_follow s1 &&
	wait_for 30 trees_equal p1/data s1/data &&
	echo more >p1/data/new2 &&
	wait_for 30 trees_equal p1/data s1/data &&
	kill -TERM $FOLLOW_PID && reap 20 $FOLLOW_PID && test "$RC" = 0 &&
	grep -q "comparing the whole tree with generation $(cat p1/spool/generation)" s1.follow.log &&
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
	{ test_must_fail 9 timeout 30 "$ASYNCREP" rescue \
		-c "$TRASH/p6.conf" --timeout 2s 2>err; rc=$?; } ;
	kill9 $LPID && test $rc = 0 &&
	cat err && grep -q "listen $ADDR" err && grep -qi "in use" err
'

test_expect_success 'no standby within --timeout 2s: 16' '
	start=$(date +%s) &&
	test_must_fail 16 timeout 30 "$ASYNCREP" rescue -c "$TRASH/p6.conf" \
		--timeout 2s 2>err &&
	cat err && grep -q "no standby" err &&
	test $(( $(date +%s) - start )) -lt 10 &&
	test ! -e p6/spool/rescued &&
	test_cmp p6/data/f - <<-EOF
	x
	EOF
'

# ---------------------------------------------------------------------
# 8. --root: the primary's storage seen under a mount point.

FAKE=/srv/asyncrep-t0040.$$
MNT=$TRASH/mnt
trap 'umount "$MNT$FAKE" 2>/dev/null; umount "$TRASH/ro" 2>/dev/null; cleanup' EXIT

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
	then say "bind mount"; SP8=p8/spool
	else cp -a p8/. "$MNT$FAKE/" && say "copy"; SP8=$MNT$FAKE/spool
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
	umount "$MNT$FAKE" 2>/dev/null; :
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
		rescued_ok p9 s9 &&
		trees_equal p9/data s9/data
	'
fi

test_done

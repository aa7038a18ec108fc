#!/bin/sh
test_description='the spool: corrupt tail, size cap, inotify overflow'
. "$SRCDIR/test/t/lib.sh"

start_follow() {
	start_bg "$TRASH/follow.log" "$ASYNCREP" sync --follow -v \
		--data-dir "$TRASH/dst" --state-dir "$TRASH/state" \
		--primary "$TEST_IP:$TEST_PORT" "$@"
	FOLLOW_PID=$last_pid
}

stop_follow() {
	kill -TERM "$FOLLOW_PID" && wait "$FOLLOW_PID"
}

# restart_watch [options]: a new primary on the same spool.
restart_watch() {
	stop_watch &&
	mv watch.log "watch.log.$(date +%s%N)" &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 "$@"
}

converged() { trees_equal src dst; }

# The cap dropped the oldest segment, acknowledged or not.
first_segment_trimmed() {
	first=$(ls spool/seg-*.log | head -1) && test -n "$first" &&
	test "$first" != spool/seg-0000000000000001.log
}

# last_seq: the seq of the spool's last record, as asyncrep status says.
last_seq() {
	printf "[primary]\ndata_dir = %s\nspool_dir = %s\nlisten = %s\n" \
		"$TRASH/src" "$TRASH/spool" "$TEST_IP:$TEST_PORT" >"$TRASH/p.conf" &&
	"$ASYNCREP" status -c "$TRASH/p.conf" --json >"$TRASH/status.json" &&
	"$PYTHON3" -c "import json, sys
print(json.load(open(sys.argv[1]))[\"spool\"][\"last_seq\"])" "$TRASH/status.json"
}

received() {
	sed -n "s/.*received \([0-9]*\) bytes.*/\1/p" follow.log | tail -1
}

test_expect_success 'setup: a primary with a small spool cap, a standby' '
	mkdir src && head -c 5000000 /dev/urandom >src/big &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 \
		--spool-max-size 1M &&
	start_follow && wait_for 20 converged
'

# A record's start (a length of 256) and 25 bytes of the 264 it needs.
test_expect_success 'a torn spool tail is dropped and replication goes on' '
	stop_watch &&
	seg=$(ls spool/seg-*.log | tail -1) &&
	size=$(stat -c %s "$seg") &&
	last=$(last_seq) && test "$last" -gt 0 &&
	printf "\000\000\001\000garbage-that-is-no-record" >>"$seg" &&
	restart_watch --spool-max-size 1M &&
	grep "torn record" watch.log >torn &&
	cat torn &&
	grep -q "spool segment .$TRASH/$seg.: torn record at offset $size; dropping 29 byte(s) after seq $last$" torn &&
	! grep -qa garbage-that-is-no-record spool/seg-*.log &&
	test "$(last_seq)" -gt "$last" &&
	echo after-tear >src/t1 &&
	wait_for 20 converged
'

test_expect_success 'a standby away past the spool cap does a full compare' '
	stop_follow &&
	"$PYTHON3" -c "
import os
os.makedirs(\"src/many\", exist_ok=True)
for i in range(4000):
    p = \"src/many/a-rather-long-file-name-to-fill-the-spool-%05d\" % i
    with open(p, \"w\") as f:
        f.write(str(i))
for m in (0o600, 0o640, 0o644):
    for i in range(4000):
        os.chmod(\"src/many/a-rather-long-file-name-to-fill-the-spool-%05d\" % i, m)
" &&
	wait_for 30 first_segment_trimmed &&
	start_follow &&
	wait_for 60 converged &&
	grep -q "does not hold our position" follow.log &&
	stop_follow &&
	say "received $(received) bytes" &&
	test "$(received)" -lt 2000000 &&
	start_follow
'

if [ "$(id -u)" != 0 ] || ! test -w /proc/sys/fs/inotify/max_queued_events; then
	test_skip 'overflow' 'needs root to lower fs.inotify.max_queued_events'
else
	old_max=$(cat /proc/sys/fs/inotify/max_queued_events)
	trap 'echo "$old_max" >/proc/sys/fs/inotify/max_queued_events; cleanup' EXIT
	test_expect_success 'an inotify overflow converges without a full re-send' '
		echo 64 >/proc/sys/fs/inotify/max_queued_events &&
		restart_watch --spool-max-size 1M &&
		echo "$old_max" >/proc/sys/fs/inotify/max_queued_events &&
		stop_follow && start_follow && mkdir src/burst &&
		wait_for 30 converged &&
		kill -STOP "$WATCH_PID" && wait_for 10 is_stopped "$WATCH_PID" &&
		for i in $(seq 1 300); do echo "$i" >"src/burst/f$i" || return 1; done &&
		kill -CONT "$WATCH_PID" &&
		wait_for 60 converged &&
		grep -q "overflow" watch.log &&
		stop_follow &&
		say "received $(received) bytes" &&
		test "$(received)" -lt 2000000
	'
fi

test_done

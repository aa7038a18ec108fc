#!/bin/sh
test_description='sync --progress: a progress line on a terminal (tmux), none in a file or under -q'
. "$SRCDIR/test/t/lib.sh"

if ! command -v tmux >/dev/null 2>&1; then
	say "tmux not found (Debian package tmux): skipping"
	test_skip 'progress on a terminal' 'tmux is not installed'
	test_done
fi

# A tmux server of our own, its socket in $TRASH.
export TMUX_TMPDIR="$TRASH"
unset TMUX
TM="tmux -L t0083"
test_cleanup() { $TM kill-server 2>/dev/null; }

# on_tty NAME CMD: run CMD (a shell line) in a tmux window 200 wide;
# the screen is read with screen NAME, its status in NAME.rc.
on_tty() {
	$TM new-session -d -s "$1" -x 200 -y 20 \
		"$2; echo \$? >$TRASH/$1.rc; sleep 60"
}

screen() { $TM capture-pane -p -t "$1" >"$1.screen"; }

finished() { test -s "$TRASH/$1.rc"; }

test_expect_success 'setup: a primary with files to send' '
	mkdir -p src/d && for i in 1 2 3 4 5 6 7 8; do
		head -c 200000 /dev/urandom >src/d/f$i || return 1
	done &&
	echo small >src/small &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0
'

SYNC="$ASYNCREP sync --data-dir $TRASH/dst1 --state-dir $TRASH/state1 --primary $TEST_IP:$TEST_PORT"

test_expect_success 'on a terminal, sync --progress shows entries, bytes, rate and time' '
	on_tty p1 "$SYNC --progress" &&
	wait_for 30 finished p1 &&
	test "$(cat p1.rc)" = 0 &&
	screen p1 &&
	cat p1.screen &&
	grep -E "^100%  10/10 entries  1\.5M/1\.5M  [0-9.]+[BKMG]/s  0:00:[0-9]{2} elapsed" p1.screen &&
	trees_equal src dst1
'

test_expect_success 'verify --progress: the same line, for the content compare' '
	on_tty pv "$ASYNCREP verify --progress --data-dir $TRASH/dst1 --state-dir $TRASH/state1v --primary $TEST_IP:$TEST_PORT" &&
	wait_for 30 finished pv &&
	test "$(cat pv.rc)" = 0 &&
	screen pv &&
	cat pv.screen &&
	grep -E "^100%  10/10 entries  1\.5M/1\.5M  [0-9.]+[BKMG]/s  0:00:[0-9]{2} elapsed" pv.screen
'

test_expect_success 'under -q, nothing on the terminal' '
	on_tty p2 "$ASYNCREP sync -q --progress --data-dir $TRASH/dst2 --state-dir $TRASH/state2 --primary $TEST_IP:$TEST_PORT" &&
	wait_for 30 finished p2 &&
	test "$(cat p2.rc)" = 0 &&
	screen p2 &&
	! grep -q "entries" p2.screen &&
	trees_equal src dst2
'

test_expect_success 'standard error not a terminal: no progress line' '
	"$ASYNCREP" sync --progress --data-dir "$TRASH/dst3" \
		--state-dir "$TRASH/state3" --primary "$TEST_IP:$TEST_PORT" \
		2>err &&
	! grep -q "entries" err &&
	trees_equal src dst3
'

test_expect_success 'without --progress, nothing on the terminal' '
	on_tty p4 "$ASYNCREP sync --data-dir $TRASH/dst4 --state-dir $TRASH/state4 --primary $TEST_IP:$TEST_PORT" &&
	wait_for 30 finished p4 &&
	screen p4 &&
	! grep -q "entries" p4.screen
'

follows() { screen "$1" && grep -q "following" "$1.screen"; }
shows_done() { screen "$1" && grep -q "^100%  10/10 entries" "$1.screen"; }

test_expect_success 'sync --follow --progress shows its first compare, then follows' '
	on_tty p5 "$ASYNCREP sync --follow --progress --data-dir $TRASH/dst5 --state-dir $TRASH/state5 --primary $TEST_IP:$TEST_PORT" &&
	wait_for 30 shows_done p5 &&
	cat p5.screen &&
	wait_for 20 follows p5 &&
	echo later >src/later &&
	wait_for 20 trees_equal src dst5 &&
	$TM kill-session -t p5
'

# status_shows: asyncrep status of the follower below reports its
# compare (text and JSON), as state_dir/progress has it.
status_shows() {
	printf "[standby]\ndata_dir = %s\nstate_dir = %s\nprimary = %s\n" \
		"$TRASH/dst6" "$TRASH/state6" "$TEST_IP:$TEST_PORT" >s6.conf &&
	n=$(find src -mindepth 1 | wc -l) &&
	b=$(find src -type f -printf "%s\n" | awk "{ n += \$1 } END { print n }") &&
	"$ASYNCREP" status -c s6.conf >s6.status &&
	grep -q "comparing the whole tree: .* [0-9]*/$n entries" s6.status &&
	"$ASYNCREP" status -c s6.conf --json >s6.json &&
	"$PYTHON3" -c "import json, sys
c = json.load(open(\"s6.json\"))[\"compare\"]
assert c[\"total_entries\"] == int(sys.argv[1]), c
assert c[\"total_bytes\"] == int(sys.argv[2]), c
assert c[\"received_bytes\"] < c[\"total_bytes\"], c" "$n" "$b"
}

# 1.6 MB at bwlimit 64K takes 25 s: long enough to be seen comparing.
test_expect_success 'status shows a running follower'\''s compare, not once it is done' '
	follow_to "$TRASH/dst6" "$TRASH/state6" --bwlimit 64K &&
	wait_for 20 status_shows &&
	cat s6.status &&
	wait_for 60 trees_equal src dst6 &&
	wait_for 10 test ! -e state6/progress &&
	"$ASYNCREP" status -c s6.conf >s6.after &&
	! grep -q "comparing the whole tree" s6.after &&
	kill_wait "$FOLLOW_PID"
'

test_expect_success 'stop' '
	stop_watch
'

test_done

#!/bin/sh
test_description='sync --follow: a big transfer runs in a lane of its own,
small files keep flowing beside it, and the acknowledged position stays
below it until it is durable'
. "$SRCDIR/test/t/lib.sh"
# The version that adds lanes, as core/wire.h says.
VLANES=$(sed -n 's/^#define WIRE_V_LANES \([0-9]*\).*/\1/p' "$SRCDIR/core/wire.h")

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

# The append path (t0060) would bring an append up to date in place in
# milliseconds, before any small file: here it is off (append = atomic),
# so an append is a rebuild of the big file, the case lanes are for.
# Lanes for files of 1 MiB on; T0061_LANE_MIN=0 turns them off, which
# shows the ordering steps fail without them.
LANE_MIN=${T0061_LANE_MIN:-1M}
BIG_MB=300

converged() { trees_equal src dst; }
# The position the primary recorded for the standby, and the standby's own.
ack() { cat spool/acks/lanes; }
pos() { sed 's/.* //' state/position; }
acked_all() { test "$(ack)" = "$(pos)"; }
# A temp file of a transfer in progress in DIR.
in_flight() { ls -A "$1" | grep -q '^\.asyncrep-tmp\.'; }
# stage NAME: a big file beside the tree (same filesystem), moved in
# whole by the step, so the primary never sends it half written.
stage() {
	cp stage/big0 "stage/$1" && echo "$1" >>"stage/$1"
}
follow() {
	follow_to "$TRASH/dst" "$TRASH/state" --standby-id lanes \
		--lane-min-size "$LANE_MIN" --append atomic "$@"
}

test_expect_success 'setup: a primary at interval 0 and a following standby' '
	mkdir -p src/d src/k src/r src/q src/u stage &&
	echo hello >src/d/first &&
	dd if=/dev/urandom of=stage/big0 bs=1M count=$BIG_MB 2>/dev/null &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 &&
	follow &&
	wait_for 30 converged &&
	wait_for 20 acked_all
'

test_expect_success 'a small file written after a new big one arrives before it' '
	stage big1 &&
	a0=$(ack) &&
	mv stage/big1 src/d/big1 && echo small >src/d/small &&
	wait_for 60 test -f dst/d/small &&
	a=$(ack) && p=$(pos) &&
	test ! -e dst/d/big1 &&
	say "small file there, big one not yet; ack $a, position $p" &&
	test "$a" = "$a0" && test "$p" = "$a0" &&
	wait_for 120 converged &&
	grep -q "goes to a lane of its own" follow.log
'

test_expect_success 'the ack passes the big file once it is durable' '
	wait_for 20 acked_all &&
	test "$(ack)" -gt "$a0"
'

test_expect_success 'a small file written after an append to a big one arrives before it' '
	old=$(stat -c %s dst/d/big1) &&
	for i in 1 2 3; do
		head -c 100 /dev/urandom >>src/d/big1 && sync src/d/big1 &&
		echo "after append $i" >src/d/append-$i &&
		wait_for 60 test -f dst/d/append-$i &&
		test "$(stat -c %s dst/d/big1)" = "$old" &&
		wait_for 120 converged &&
		old=$(stat -c %s dst/d/big1) || return 1
	done
'

test_expect_success 'more small files while a big file is rewritten whole' '
	stage big2 &&
	mv stage/big2 src/d/big1 &&
	wait_for 60 in_flight dst/d &&
	echo one >src/d/s1 && echo two >src/s2 &&
	wait_for 60 test -f dst/s2 &&
	wait_for 60 test -f dst/d/s1 &&
	wait_for 120 converged
'

test_expect_success 'the standby SIGKILLed while a lane is in flight: nothing lost' '
	wait_for 20 acked_all &&
	a0=$(ack) &&
	stage big3 &&
	mv stage/big3 src/k/big3 &&
	wait_for 60 in_flight dst/k &&
	echo k-small >src/k/small &&
	wait_for 60 test -f dst/k/small &&
	kill_wait $FOLLOW_PID &&
	test "$(pos)" = "$a0" && test "$(ack)" = "$a0" &&
	echo while-down >src/k/down &&
	follow &&
	wait_for 120 converged
'

test_expect_success 'the in-flight file'\''s directory renamed while it is sent' '
	wait_for 20 acked_all &&
	stage big4 &&
	mv stage/big4 src/r/big4 &&
	wait_for 60 in_flight dst/r &&
	mv src/r src/r2 && echo after >src/r2/after &&
	wait_for 120 converged
'

test_expect_success 'the in-flight file'\''s directory deleted while it is sent' '
	wait_for 20 acked_all &&
	stage big5 &&
	mv stage/big5 src/q/big5 &&
	wait_for 60 in_flight dst/q &&
	rm -rf src/q && echo after >src/after-q &&
	wait_for 120 converged
'

test_expect_success 'the in-flight file appended to while it is sent' '
	wait_for 20 acked_all &&
	stage big6 &&
	mv stage/big6 src/u/big6 &&
	wait_for 60 in_flight dst/u &&
	echo tail >>src/u/big6 && echo u-small >src/u/small &&
	wait_for 120 converged
'

# A lane's rename in data_dir itself changes data_dir's mtime once more,
# after the batch gave data_dir its attributes (the A frame): they are
# given again once the lane is done.
root_mtime_equal() { test "$(stat -c %y src)" = "$(stat -c %y dst)"; }

test_expect_success 'a big file at the top: data_dir keeps its own mtime' '
	wait_for 20 acked_all &&
	stage topbig &&
	mv stage/topbig src/topbig &&
	wait_for 120 converged &&
	wait_for 20 root_mtime_equal
'

# get_raw URL OUT [curl options...]: the body of a request to the
# primary in OUT, its HTTP status in OUT.code.
get_raw() {
	u=$1 out=$2; shift 2
	curl -sS --noproxy '*' -o "$out" -w '%{http_code}' "$@" \
		"http://$TEST_IP:$TEST_PORT$u" >"$out.code"
}

test_expect_success 'ack= only from the lanes version on, and never past since' '
	test -n "$VLANES" &&
	gen=$(cat spool/generation) && p=$(pos) &&
	q="since=$p&wait=0&id=older&gen=$gen" &&
	get_raw "/v1/changes?$q" v1 &&
	test "$(cat v1.code)" = 200 && test "$(cat spool/acks/older)" = "$p" &&
	get_raw "/v1/changes?$q&ack=1" v2 -H "X-Asyncrep-Version: 2" &&
	test "$(cat v2.code)" = 400 && test "$(cat spool/acks/older)" = "$p" &&
	get_raw "/v1/changes?$q&ack=$((p + 1))" v4 -H "X-Asyncrep-Version: $VLANES" &&
	test "$(cat v4.code)" = 400 &&
	get_raw "/v1/changes?$q&ack=1" v4b -H "X-Asyncrep-Version: $VLANES" &&
	test "$(cat v4b.code)" = 200 && test "$(cat spool/acks/older)" = 1
'

FAKE="$SRCDIR/test/t/fake-primary.py"

test_expect_success 'a version 1 primary: a big file comes the old way' '
	stop_watch &&
	mkdir -p outside v1src/sub &&
	head -c 3000000 /dev/urandom >v1src/sub/big && echo s >v1src/small &&
	fport=$("$PYTHON3" -c "import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])" "$TEST_IP") &&
	start_bg "$TRASH/fake.log" "$PYTHON3" "$FAKE" --mode v1-only \
		--listen "$TEST_IP:$fport" --tree "$TRASH/v1src" \
		--outside "$TRASH/outside" --ready-file "$TRASH/ready" \
		--lifetime 120 &&
	wait_for 10 test -f ready &&
	timeout 100 "$ASYNCREP" sync --data-dir "$TRASH/v1dst" \
		--state-dir "$TRASH/v1dst.state" --primary "$TEST_IP:$fport" \
		--lane-min-size 1M -v >v1.out 2>&1 &&
	grep -q "protocol version 1" v1.out &&
	trees_equal v1src v1dst
'

test_done

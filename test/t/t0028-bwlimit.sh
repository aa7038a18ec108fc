#!/bin/sh
test_description='bwlimit: the standby paces what it receives, the primary
what it sends to all standbys together; bad rates are refused'
: "${PYTHON3:=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}"
. "$SRCDIR/test/t/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

# The one check of time here is a lower bound: a transfer of S bytes
# paced at R bytes per second cannot end before (S - burst) / R seconds,
# however slow or loaded the machine (slowness only lengthens it). The
# burst is a tenth of a second of rate.

# secs CMD...: run CMD, print its seconds (to stdout), fail as it fails.
secs() {
	s_start=$(date +%s.%N)
	"$@" || return 1
	s_end=$(date +%s.%N)
	awk -v a="$s_start" -v b="$s_end" 'BEGIN { printf "%.3f\n", b - a }'
}

at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

test_expect_success 'setup: 3 MiB in two files, a primary without a limit' '
	mkdir src &&
	head -c 2097152 /dev/urandom >src/a &&
	head -c 1048576 /dev/urandom >src/b &&
	start_watch src spool
'

test_expect_success 'a standby with bwlimit = 1M takes at least 2.7 s for 3 MiB' '
	secs sync_to d1 st1 --bwlimit 1M >t1 &&
	cat t1 &&
	trees_equal src d1 &&
	at_least "$(cat t1)" 2.7
'

test_expect_success 'the same standby without a limit: the tree moves at once' '
	rm -rf d1 st1 &&
	sync_to d1 st1 &&
	trees_equal src d1 &&
	stop_watch
'

test_expect_success 'a primary with bwlimit = 1M serves 3 MiB in at least 2.7 s' '
	start_watch src spool --bwlimit 1M &&
	secs sync_to d2 st2 >t2 &&
	cat t2 &&
	trees_equal src d2 &&
	at_least "$(cat t2)" 2.7
'

test_expect_success 'two standbys of that primary share its limit: 6 MiB in at least 5.7 s' '
	s_start=$(date +%s.%N) &&
	{ sync_to d3 st3 & p3=$!; } &&
	sync_to d4 st4 &&
	wait "$p3" &&
	s_end=$(date +%s.%N) &&
	t=$(awk -v a="$s_start" -v b="$s_end" "BEGIN { printf \"%.3f\", b - a }") &&
	echo "$t" &&
	trees_equal src d3 && trees_equal src d4 &&
	at_least "$t" 5.7 &&
	stop_watch
'

test_expect_success 'a bare number below 1K is refused, naming rsync'\''s unit' '
	printf "[standby]\nbwlimit = 500\n" >bad.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c bad.conf --data-dir "$TRASH/x" \
		--state-dir "$TRASH/xs" --primary 127.0.0.1:1 2>err &&
	grep -q "bad.conf:2: key .bwlimit.: .500. is below 1K bytes per second" err &&
	grep -q "500K" err &&
	test_must_fail 1 "$ASYNCREP" watch --bwlimit 10 --data-dir "$TRASH/src" \
		--spool-dir "$TRASH/sp" --listen 127.0.0.1:1 2>err &&
	grep -q "bwlimit" err &&
	test_must_fail 1 "$ASYNCREP" sync --bwlimit 2T --data-dir "$TRASH/x" \
		--state-dir "$TRASH/xs" --primary 127.0.0.1:1 2>err &&
	grep -q "out of range" err &&
	! test -e x
'

test_done

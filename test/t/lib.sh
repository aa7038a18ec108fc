# lib.sh: the integration test library (git's test-lib.sh in miniature).
#
# A test script sets test_description, sources this file, calls
# test_expect_success 'title' 'commands' for each step, and ends with
# test_done. Output is TAP. Each script gets its own scratch directory
# ($TRASH), removed on success, and every process it started with
# start_bg is SIGKILLed at exit. Every wait is bounded. Every body must
# chain its steps with && (the chain lint fails the test otherwise).

set -u
: "${ASYNCREP:?ASYNCREP must name the asyncrep binary}"
: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${PYTHON3:=python3}"

test_name=$(basename "$0" .sh)
TRASH=${TMPDIR:-/tmp}/asyncrep-test.$test_name.$$
rm -rf "$TRASH" && mkdir -p "$TRASH" || exit 99
cd "$TRASH" || exit 99

test_count=0
test_failures=0
test_skipped=0
BG_PIDS=

# Each script gets its own loopback address and port range so scripts can
# run in parallel: 127.0.<n>.<m> derived from the script number.
test_num=$(printf '%s' "$test_name" | sed -n 's/^t0*\([0-9][0-9]*\).*/\1/p')
test_num=${test_num:-0}
TEST_IP=127.0.$(( (test_num / 200) + 1 )).$(( (test_num % 200) + 2 ))
# free_port [IP]: a port the kernel says is free on IP ($TEST_IP) now.
free_port() {
	"$PYTHON3" -c 'import socket,sys
s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' \
		"${1:-$TEST_IP}"
}
TEST_PORT=$(free_port) || exit 99

# A script may define test_cleanup (say, to unmount what it mounted): it
# runs first. The scratch directory is removed without crossing into
# another filesystem, whatever a failed step left mounted.
cleanup() {
	if command -v test_cleanup >/dev/null 2>&1; then
		test_cleanup
	fi
	for pid in $BG_PIDS $(cat "$TRASH/.pids" 2>/dev/null); do
		kill -KILL "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	if [ "$test_failures" -eq 0 ] && [ -z "${KEEP_TRASH:-}" ]; then
		cd / && rm -rf --one-file-system "$TRASH"
	else
		echo "# scratch directory kept: $TRASH"
	fi
}
trap cleanup EXIT
# The deadline of `make check` (SH_LOG_COMPILER) ends a hung test with
# SIGTERM: say so and exit, so that cleanup runs, kills what the test
# started and keeps the scratch directory.
trap 'echo "# ended by SIGTERM (the deadline of make check?)"; test_failures=$((test_failures + 1)); exit 143' TERM
trap 'test_failures=$((test_failures + 1)); exit 130' INT

say() { echo "# $*"; }

# The body runs in this shell (as in git's test-lib), so variables it
# sets, such as WATCH_PID, live on; steps are chained with &&.
test_eval_() {
	eval "$1"
}

# test_chain_lint_ BODY: git's chain lint. BODY runs first in a subshell
# behind a command that exits 117: with every step &&-chained nothing of
# it runs and the status stays 117. A missing && (or a stray ;) lets what
# follows run and end with its own status; a here-document without its
# end swallows the echo. Only the top level of the body is checked, as
# in git before chainlint.pl: a loop or a { } group checks its own steps
# (|| return 1).
test_chain_lint_() {
	test "${TEST_CHAIN_LINT:-1}" = 0 && return 0
	test "OK-117" = "$(test_eval_ "(exit 117) && $1

echo OK-\$?" 2>/dev/null </dev/null)"
}

test_expect_success() {
	test_count=$((test_count + 1))
	say_title=$1
	if ! test_chain_lint_ "$2"; then
		test_failures=$((test_failures + 1))
		echo "not ok $test_count - $say_title"
		echo "#   broken &&-chain or run-away here-document in the body:"
		printf '%s\n' "$2" | sed 's/^/#   | /'
		return 0
	fi
	if test_eval_ "$2" >"$TRASH/.out.$test_count" 2>&1 </dev/null; then
		echo "ok $test_count - $say_title"
	else
		test_failures=$((test_failures + 1))
		echo "not ok $test_count - $say_title"
		sed 's/^/#   /' "$TRASH/.out.$test_count"
	fi
}

test_skip() {
	test_count=$((test_count + 1))
	test_skipped=$((test_skipped + 1))
	echo "ok $test_count # SKIP $1: $2"
}

test_done() {
	echo "1..$test_count"
	if [ "$test_failures" -gt 0 ]; then
		exit 1
	fi
	exit 0
}

# test_must_fail STATUS cmd...: cmd (our binary) must exit with STATUS.
test_must_fail() {
	want=$1; shift
	"$@" && { echo "expected exit $want, got 0: $*"; return 1; }
	got=$?
	if [ "$got" -ne "$want" ]; then
		echo "expected exit $want, got $got: $*"
		return 1
	fi
	return 0
}

test_cmp() { diff -u "$1" "$2"; }

# is_stopped PID: every thread of the process is stopped (SIGSTOP took
# effect): a signal is only pending until each thread next runs.
is_stopped() {
	for t in /proc/"$1"/task/*/stat; do
		test "$(sed 's/.*) \(.\).*/\1/' "$t" 2>/dev/null)" = T ||
			return 1
	done
}

# Start a command in the background, logging to FILE; its pid is in $!.
start_bg() {
	log=$1; shift
	# A restarted process reuses its log: the earlier run's lines are
	# kept in LOG.old for a failed step's scratch directory.
	if [ -s "$log" ]; then
		cat "$log" >>"$log.old"
	fi
	"$@" >"$log" 2>&1 &
	last_pid=$!
	BG_PIDS="$BG_PIDS $last_pid"
	echo "$last_pid" >>"$TRASH/.pids"
}

# wait_for SECONDS CMD...: retry CMD every 0.05s until it succeeds.
wait_for() {
	limit=$1; shift
	tries=$(awk -v s="$limit" 'BEGIN { print int(s / 0.05) + 1 }')
	while [ "$tries" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
		tries=$((tries - 1))
	done
	echo "timed out after ${limit}s waiting for: $*"
	return 1
}

# port_open IP PORT: something accepts TCP connections there.
port_open() {
	"$PYTHON3" -c 'import socket,sys
s=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5)
s.close()' "$1" "$2"
}

# start_watch DATA SPOOL [options...]: start a primary on $TEST_IP:$TEST_PORT
# and wait until it listens. It logs to $WATCH_LOG (default
# $TRASH/watch.log: a new one for each start, or the first's line
# "serving" would answer for the next). Sets WATCH_PID.
start_watch() {
	data=$1; spool=$2; shift 2
	sw_log=${WATCH_LOG:-$TRASH/watch.log}
	start_bg "$sw_log" "$ASYNCREP" watch --data-dir "$data" \
		--spool-dir "$spool" --listen "$TEST_IP:$TEST_PORT" "$@"
	WATCH_PID=$last_pid
	# Our own process must be the one serving: wait for its log line.
	wait_for 10 grep -q "serving" "$sw_log" &&
	kill -0 "$WATCH_PID" || {
		cat "$sw_log"; return 1; }
}

# stop_watch: SIGTERM the primary of start_watch (if any) and reap it; it
# must exit 0, as a clean shutdown does.
stop_watch() {
	[ -n "${WATCH_PID:-}" ] || return 0
	sw_pid=$WATCH_PID
	WATCH_PID=
	kill -TERM "$sw_pid" || return 1
	# A step that failed after SIGSTOP may have left it stopped.
	kill -CONT "$sw_pid" 2>/dev/null
	sw_st=0
	wait "$sw_pid" || sw_st=$?
	[ "$sw_st" = 0 ] && return 0
	echo "watch (pid $sw_pid) exited $sw_st after SIGTERM"
	return 1
}

# kill_wait PID [STATUS...]: SIGKILL our child PID and reap it. It must
# have died of the signal (status 137) or, for a child that may have
# finished first, exited with one of the STATUSes: a crash or an error
# exit fails.
kill_wait() {
	kw_pid=$1; shift
	kill -KILL "$kw_pid" 2>/dev/null
	kw_st=0
	wait "$kw_pid" || kw_st=$?
	for kw_ok in 137 "$@"; do
		[ "$kw_st" = "$kw_ok" ] && return 0
	done
	echo "pid $kw_pid exited $kw_st, not by SIGKILL (137)${1:+ nor with $*}"
	return 1
}

# sync_to DATA STATE [options...]: one-shot sync from the test primary.
sync_to() {
	data=$1; state=$2; shift 2
	"$ASYNCREP" sync --data-dir "$data" --state-dir "$state" \
		--primary "$TEST_IP:$TEST_PORT" "$@"
}

# follow_to DATA STATE [options...]: a following standby of the test
# primary, logging to follow.log; sets FOLLOW_PID.
follow_to() {
	data=$1; state=$2; shift 2
	start_bg "$TRASH/follow.log" "$ASYNCREP" sync --follow -v \
		--data-dir "$data" --state-dir "$state" \
		--primary "$TEST_IP:$TEST_PORT" "$@"
	FOLLOW_PID=$last_pid
}

# judge A B: rsync -aHAXS --checksum --dry-run -i --delete A/ B/ lists
# nothing (the judge of a faithful replica; its list in $TRASH/.judge).
judge() {
	rsync -aHAXS --checksum --dry-run -i --delete "$1/" "$2/" \
		>"$TRASH/.judge" 2>&1 &&
	test_cmp /dev/null "$TRASH/.judge"
}

# overwrite FILE OFFSET BYTES: random bytes over FILE at OFFSET, in
# place (the same inode), fsynced.
overwrite() {
	"$PYTHON3" -c 'import os, sys
f = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(f, os.urandom(int(sys.argv[3])), int(sys.argv[2]))
os.fsync(f)' "$1" "$2" "$3"
}

# tree_listing DIR: a canonical, byte-exact description of a tree:
# type, mode, size, mtime (ns), symlink target and content hash per path,
# owner and group.
tree_listing() {
	"$PYTHON3" "$SRCDIR/test/t/treelist.py" "$1"
}

# trees_equal A B: identical content, types, modes, mtimes and targets.
trees_equal() {
	tree_listing "$1" >"$TRASH/.tree.a" &&
	tree_listing "$2" >"$TRASH/.tree.b" &&
	test_cmp "$TRASH/.tree.a" "$TRASH/.tree.b"
}

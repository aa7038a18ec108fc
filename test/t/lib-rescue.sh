# lib-rescue.sh: helpers of the rescue tests (sourced after lib.sh).
# A primary on 127.0.0.2 (the issue's address), a following standby that
# dials it, and the rescue that binds the same address once the primary
# is dead. Each scenario NAME has NAME.conf, NAME.watch.log,
# NAME.follow.log, NAME.rescue.log and NAME.rescue-status in $TRASH.

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

# start_follow NAME [options]: a following standby in NAME/ (data and
# state), dialling the primary's address; logs to NAME.follow.log
# (appended, so a restarted standby keeps the history). Sets FOLLOW_PID.
start_follow() {
	name=$1; shift
	echo "--- start" >>"$TRASH/$name.follow.log"
	"$ASYNCREP" sync --follow -v --data-dir "$TRASH/$name/data" \
		--state-dir "$TRASH/$name/state" --primary "$ADDR" "$@" \
		>>"$TRASH/$name.follow.log" 2>&1 &
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

# rescued_ok P S [SPOOL]: the rescue of primary P exited 0 (or
# $RESCUE_OK_RC: 3 through a mount that cannot show xattrs) and standby
# S (its pid in FOLLOW_PID) exited 0, saying the replica is complete,
# and the spool (default: spool_dir of P.conf) holds the marker.
rescued_ok() {
	reap 60 "$RESCUE_PID" &&
	{ test "$RC" = "${RESCUE_OK_RC:-0}" || { echo "rescue exited $RC"; show_logs "$1" "$2"; }; } &&
	reap 20 "$FOLLOW_PID" &&
	{ test "$RC" = 0 || { echo "standby exited $RC"; show_logs "$1" "$2"; }; } &&
	grep -q "the replica is complete" "$TRASH/$2.follow.log" &&
	grep -q "^asyncrep rescue completed" "$TRASH/$1.rescue.log" &&
	test -f "${3:-$(sed -n 's/^spool_dir *= *//p' "$TRASH/$1.conf")}/rescued" &&
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

# The application of the workload tests: writes.py write ROOT LOG (see
# the script); writes.py check LOG TREE verifies a tree against its log.
WRITES=$SRCDIR/test/t/writes.py

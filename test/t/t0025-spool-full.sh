#!/bin/sh
test_description='a spool that cannot record: full, then read-only'
. "$SRCDIR/test/t/lib.sh"

# The spool's filesystem is a 300 KiB tmpfs that 6,000 new files fill
# while the standby is paused, then an ext4 image that goes read-only
# under the running watch. Both need root (mount). The watch runs under
# the OCF agent when resource-agents is installed, so that its monitor
# is checked too; otherwise it is started directly.
if [ "$(id -u)" != 0 ]; then
	test_skip 'a spool that cannot record' 'needs root to mount a tmpfs and a loop image'
	test_done
fi

: "${OCF_ROOT:=/usr/lib/ocf}"
export OCF_ROOT
HAVE_OCF=; [ -r "$OCF_ROOT/lib/heartbeat/ocf-shellfuncs" ] && HAVE_OCF=1
chmod 755 "$TRASH"
mkdir -p "$TRASH/run" "$TRASH/agents" &&
cp "$SRCDIR/hooks/asyncrep-watch" "$TRASH/agents/" &&
chmod 755 "$TRASH/agents" "$TRASH/agents/asyncrep-watch" || exit 99
WATCH_RA=$TRASH/agents/asyncrep-watch

test_cleanup() {
	stop_primary
	for m in "$TRASH/spoolfs" "$TRASH/rofs"; do
		if mountpoint -q "$m"; then
			umount "$m" 2>/dev/null || umount -l "$m"
		fi
	done
}

# ra ACTION [VAR=VALUE...]: one action of the watch agent, as Pacemaker
# runs a recurring monitor; its standard error is in $TRASH/ra.err.
ra() {
	ra_action=$1; shift
	env OCF_RA_VERSION_MAJOR=1 OCF_RA_VERSION_MINOR=0 \
		OCF_RESOURCE_INSTANCE=t0025 OCF_RESKEY_CRM_meta_timeout=20000 \
		OCF_RESKEY_CRM_meta_interval=10000 HA_LOGFACILITY= HA_LOGFILE= \
		HA_DEBUGLOG= OCF_RESKEY_config="$TRASH/p.conf" \
		OCF_RESKEY_binary="$ASYNCREP" \
		OCF_RESKEY_pidfile="$TRASH/run/watch.pid" "$@" \
		"$WATCH_RA" "$ra_action" >"$TRASH/ra.out" 2>"$TRASH/ra.err"
}

# monitor_is WANT: the agent's monitor exits WANT (no agent: true).
monitor_is() {
	[ -n "$HAVE_OCF" ] || return 0
	ra monitor
	mi_got=$?
	[ "$mi_got" -eq "$1" ] && return 0
	echo "monitor: expected $1, got $mi_got"
	cat "$TRASH/ra.err"
	return 1
}

# write_conf SPOOL_DIR: the primary's configuration.
write_conf() {
	cat >"$TRASH/p.conf" <<-EOF
	[primary]
	data_dir  = $TRASH/src
	spool_dir = $1
	listen    = $TEST_IP:$TEST_PORT
	interval  = 0
	EOF
}

# The watch's messages: the agent's log file, or our own.
WLOG=$TRASH/run/watch.log

start_primary() {
	if [ -n "$HAVE_OCF" ]; then
		ra start || { cat "$TRASH/ra.err" "$WLOG"; return 1; }
		WATCH_PID=$(cat "$TRASH/run/watch.pid")
	else
		start_bg "$WLOG" "$ASYNCREP" watch -c "$TRASH/p.conf" \
			--status-file "$TRASH/run/watch.status" &&
		WATCH_PID=$last_pid &&
		wait_for 10 grep -q "serving" "$WLOG"
	fi
}

stop_primary() {
	if [ -n "$HAVE_OCF" ]; then
		ra stop
	else
		stop_watch
	fi
	WATCH_PID=
}

start_follow() {
	start_bg "$TRASH/follow.log" "$ASYNCREP" sync --follow -v \
		--data-dir "$TRASH/dst" --state-dir "$TRASH/state" \
		--primary "$TEST_IP:$TEST_PORT"
	FOLLOW_PID=$last_pid
}

stop_follow() {
	kill -TERM "$FOLLOW_PID" && wait "$FOLLOW_PID"
}

converged() { trees_equal src dst; }

# many DIR N: N new files in src/DIR, with names long enough that their
# records fill a small spool.
many() {
	"$PYTHON3" -c '
import os, sys
d = os.path.join("src", sys.argv[1])
os.makedirs(d, exist_ok=True)
for i in range(int(sys.argv[2])):
    with open(os.path.join(d, "a-file-with-a-longer-name-%05d" % i), "w") as f:
        f.write(str(i))
' "$1" "$2"
}

# status_json: asyncrep status --json of the primary, in status.json.
status_json() {
	"$ASYNCREP" status -c "$TRASH/p.conf" --json >status.json
}

# spool_state STATE: status --json says the spool is in STATE.
spool_state() {
	status_json && grep -q "\"state\":\"$1\"" status.json
}

# log_count TEXT: how many lines of the watch's log hold TEXT.
log_count() {
	grep -c -- "$1" "$WLOG"
}

last_seq() {
	status_json &&
	sed -n 's/.*"last_seq":\([0-9]*\).*/\1/p' status.json
}

# The standby applied a batch from the spool that ends past $1.
applied_past() {
	sed -n 's/.*applied changes [0-9]*\.\.\([0-9]*\).*/\1/p' follow.log |
		awk -v min="$1" '$1 > min { ok = 1 } END { exit !ok }'
}

# --- a full spool ----------------------------------------------------------------

test_expect_success 'setup: the spool on a 300 KiB tmpfs, a following standby' '
	mkdir -p src dst spoolfs &&
	mount -t tmpfs -o size=300k tmpfs spoolfs &&
	mkdir spoolfs/spool &&
	write_conf "$TRASH/spoolfs/spool" &&
	echo hello >src/first &&
	start_primary &&
	start_follow &&
	wait_for 20 converged &&
	spool_state recording &&
	monitor_is 0
'

test_expect_success 'the spool fills while the standby is paused: one log line' '
	kill -STOP "$FOLLOW_PID" &&
	wait_for 5 is_stopped "$FOLLOW_PID" &&
	many many 6000 &&
	wait_for 20 spool_state full &&
	cat status.json &&
	test "$(log_count "cannot record")" -eq 1 &&
	! grep -q "restart to recover" "$WLOG"
'

test_expect_success 'status and the status file show the condition' '
	status_json &&
	grep -q "\"recording\":false" status.json &&
	grep -q "No space left on device" status.json &&
	"$ASYNCREP" status -c "$TRASH/p.conf" >status.txt &&
	cat status.txt &&
	grep -q "cannot record changes.*No space left on device" status.txt &&
	grep -q "^full " run/watch.status
'

test_expect_success 'the monitor reports a full spool and keeps the resource' '
	monitor_is 0 &&
	{ [ -z "$HAVE_OCF" ] || grep -q "cannot record changes" ra.err; }
'

test_expect_success 'the standby resumed converges by a compare while it is full' '
	kill -CONT "$FOLLOW_PID" &&
	wait_for 60 converged &&
	echo later >src/while-full &&
	mkdir src/dir-while-full &&
	wait_for 30 converged &&
	spool_state full &&
	test "$(log_count "cannot record")" -eq 1
'

# Restarted, it cuts what a failed write left after the journal's end,
# which may leave room for a few records: more changes fill it again.
test_expect_success 'a watch restarted on the full spool serves, the standby converges' '
	stop_primary &&
	start_primary &&
	many restarted 1000 &&
	wait_for 20 spool_state full &&
	monitor_is 0 &&
	echo restarted >src/after-restart &&
	wait_for 30 converged &&
	test "$(log_count "cannot record")" -eq 2
'

test_expect_success 'space back: the spool records again without a restart' '
	mount -o remount,size=8m spoolfs &&
	wait_for 20 spool_state recording &&
	test "$(log_count "recording changes again")" -eq 1 &&
	test "$(log_count "cannot record")" -eq 2 &&
	kill -0 "$WATCH_PID" &&
	"$ASYNCREP" status -c "$TRASH/p.conf" >status.txt &&
	! grep -q "cannot record" status.txt &&
	grep -q "^recording" run/watch.status &&
	monitor_is 0
'

test_expect_success 'later changes follow through the spool again' '
	wait_for 30 converged &&
	seq0=$(last_seq) &&
	echo after >src/after-space &&
	wait_for 30 converged &&
	wait_for 10 applied_past "$seq0"
'

test_expect_success 'a standby killed and restarted while the spool is full converges' '
	stop_follow &&
	{ dd if=/dev/zero of=spoolfs/filler bs=4k 2>/dev/null; test -s spoolfs/filler; } &&
	many again 2000 &&
	wait_for 20 spool_state full &&
	start_follow &&
	wait_for 20 grep -q "comparing\|applied changes" follow.log &&
	kill -KILL "$FOLLOW_PID" &&
	{ wait "$FOLLOW_PID" || :; } &&
	echo killed >src/while-killed &&
	mv follow.log follow.log.killed &&
	start_follow &&
	wait_for 60 converged &&
	spool_state full &&
	rm spoolfs/filler &&
	wait_for 20 spool_state recording &&
	test "$(log_count "cannot record")" -eq 3 &&
	test "$(log_count "recording changes again")" -eq 2 &&
	echo last >src/last &&
	wait_for 30 converged &&
	stop_follow
'

test_expect_success 'stop: the watch exits cleanly' '
	stop_primary &&
	umount spoolfs &&
	mv "$WLOG" "$WLOG.full"
'

# --- a spool that goes read-only ---------------------------------------------------

test_expect_success 'setup: the spool on an ext4 image, the standby following' '
	truncate -s 16M ro.img &&
	mkfs.ext4 -q ro.img &&
	mkdir rofs &&
	mount -o loop,errors=remount-ro ro.img rofs &&
	mkdir rofs/spool &&
	write_conf "$TRASH/rofs/spool" &&
	start_primary &&
	start_follow &&
	wait_for 30 converged &&
	spool_state recording
'

# A remount read-only is refused while the watch holds its segment open
# for writing (EBUSY); an error of the filesystem under errors=remount-ro
# turns it read-only all the same, as a failing disk would.
test_expect_success 'the spool turns read-only: one line, status and monitor say so' '
	dev=$(basename "$(findmnt -n -o SOURCE rofs)") &&
	echo "test" >"/sys/fs/ext4/$dev/trigger_fs_error" &&
	many ro 200 &&
	wait_for 30 spool_state failing &&
	cat status.json &&
	grep -q "Read-only file system" status.json &&
	test "$(log_count "cannot record")" -eq 1 &&
	{ [ -z "$HAVE_OCF" ] || {
		ra monitor; test $? -eq 1 && grep -q "ocf-exit-reason:.*cannot record" ra.err; }; }
'

test_expect_success 'the standby converges all the same, the log stays short' '
	wait_for 60 converged &&
	echo more >src/while-ro &&
	wait_for 30 converged &&
	test "$(log_count "cannot record")" -eq 1 &&
	test "$(wc -l <"$WLOG")" -lt 40
'

test_expect_success 'stop' '
	stop_follow &&
	stop_primary &&
	umount rofs
'

test_done

#!/bin/sh
# demo.sh: a guided tour of asyncrep on loopback (run by `make demo`).
#
#   sh test/demo.sh /path/to/asyncrep
#
# Part one: starts a primary (`asyncrep watch`) on 127.0.0.1:<free port>
# over a small mixed tree, replicates it to a standby dir with
# `asyncrep sync`, changes a few things, syncs again, shows that a third
# sync moves nothing, and checks the two trees are identical.
#
# Part two, the mission: a primary on 127.0.0.2:<free port> (from a
# configuration file) and a standby following it (`sync --follow`); an
# application writes and fsyncs files on the primary, logging each one it
# completed; the primary is SIGKILLed in the middle of the writes;
# `asyncrep rescue -c CONFIG` takes over the same address, reads the dead
# primary's spool and data, and completes the standby. The verdict counts
# the files written, the files on the standby and the files lost (by
# content: it must be 0), and prints the rescue's time per phase.
#
# Everything lives in a scratch dir under /tmp, removed at the end, and
# every process it started is stopped. Exits non-zero on any failure, and
# if a single logged write is missing or the trees differ.
set -eu

ASYNCREP=${1:?usage: demo.sh /path/to/asyncrep}
case $ASYNCREP in /*) ;; *) ASYNCREP=$(pwd)/$ASYNCREP ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON3=${PYTHON3:-python3}
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

SCRATCH=$(mktemp -d /tmp/asyncrep-demo.XXXXXX)
WATCH_PID='' FOLLOW_PID='' RESCUE_PID='' APP_PID=''
LOGS=$SCRATCH/watch.log
# stop PID: SIGTERM, then SIGKILL after 10 s; reaps it.
stop() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || :
	n=0
	while kill -0 "$1" 2>/dev/null && [ $n -lt 100 ]; do
		sleep 0.1; n=$((n + 1))
	done
	kill -KILL "$1" 2>/dev/null || :
	wait "$1" 2>/dev/null || :
}
cleanup() {
	st=$?
	trap - EXIT INT TERM
	for pid in "$APP_PID" "$RESCUE_PID" "$FOLLOW_PID" "$WATCH_PID"; do
		stop "$pid"
	done
	if [ $st -ne 0 ]; then
		echo
		echo "demo FAILED (exit $st); logs:"
		for f in $LOGS; do
			[ -f "$f" ] || continue
			echo "  $(basename "$f"):"
			tail -n 20 "$f" | sed 's/^/  | /'
		done
	fi
	rm -rf "$SCRATCH"
	exit $st
}
trap cleanup EXIT
trap 'exit 130' INT TERM

heading() {
	echo
	echo "=== $* ==="
}
# wait_listen IP PORT PID: until PID (a primary) accepts connections.
wait_listen() {
	n=0
	until "$PYTHON3" -c 'import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5).close()' \
		"$1" "$2" 2>/dev/null; do
		kill -0 "$3" 2>/dev/null || { echo "the primary exited"; exit 1; }
		n=$((n + 1))
		[ $n -lt 100 ] || { echo "the primary did not listen within 10s"; exit 1; }
		sleep 0.1
	done
}
run() {
	echo "\$ $*" | sed "s|$SCRATCH|\$DEMO|g"
	"$@"
}

P=$SCRATCH/primary
S=$SCRATCH/standby
PORT=$("$PYTHON3" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT

heading "1. a small mixed tree on the primary"
mkdir -p "$P/docs/notes" "$P/photos/2024" "$P/empty-dir"
printf 'asyncrep demo\n' >"$P/docs/README"
printf 'note one\n' >"$P/docs/notes/one.txt"
printf 'note two\n' >"$P/docs/notes/two.txt"
printf 'to be renamed\n' >"$P/docs/draft.txt"
printf 'to be deleted\n' >"$P/photos/2024/old.txt"
head -c 5242880 /dev/urandom >"$P/photos/2024/big.raw"
chmod 600 "$P/docs/notes/two.txt"
ln -s docs/README "$P/readme-link"
(cd "$P" && find . | LC_ALL=C sort | sed 's/^/  /')

heading "2. start the primary on $ADDR"
"$ASYNCREP" watch --data-dir "$P" --spool-dir "$SCRATCH/spool" \
	--listen "$ADDR" --interval 100ms >"$SCRATCH/watch.log" 2>&1 &
WATCH_PID=$!
wait_listen 127.0.0.1 "$PORT" "$WATCH_PID"
echo "  primary running, pid $WATCH_PID"

sync_standby() {
	run "$ASYNCREP" sync --data-dir "$S" --state-dir "$SCRATCH/state" \
		--primary "$ADDR" --itemize-changes "$@"
}

heading "3. first sync: everything moves"
sync_standby

heading "4. changes on the primary"
echo "  edit 4 KiB in the middle of photos/2024/big.raw"
head -c 4096 /dev/urandom | dd of="$P/photos/2024/big.raw" bs=4096 \
	seek=640 conv=notrunc status=none
echo "  delete photos/2024/old.txt"
rm "$P/photos/2024/old.txt"
echo "  add docs/notes/three.txt"
printf 'note three\n' >"$P/docs/notes/three.txt"
echo "  rename docs/draft.txt -> docs/final.txt"
mv "$P/docs/draft.txt" "$P/docs/final.txt"
# Let the watcher release the batch (its interval is 100ms).
sleep 1

heading "5. second sync: only the changes move (-v shows the byte counts)"
sync_standby -v

heading "6. third sync: nothing moves"
sync_standby

heading "7. compare the trees"
run diff -r --no-dereference "$P" "$S"
"$PYTHON3" "$HERE/t/treelist.py" "$P" >"$SCRATCH/list.primary"
"$PYTHON3" "$HERE/t/treelist.py" "$S" >"$SCRATCH/list.standby"
run diff -u "$SCRATCH/list.primary" "$SCRATCH/list.standby"
echo "  $(wc -l <"$SCRATCH/list.primary") paths: content, modes, mtimes and symlink targets match"
echo "  trees identical"
stop "$WATCH_PID"
WATCH_PID=

# ---------------------------------------------------------------------
# Part two: the mission.

echo
echo "######## part two: the primary dies mid-write; a rescue loses nothing"

M=$SCRATCH/mission
CONF=$M/asyncrep.conf
LOGS="$LOGS $M/watch.log $M/follow.log $M/rescue.log $M/app.log"
PORT2=$("$PYTHON3" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.2", 0)); print(s.getsockname()[1])')
ADDR2=127.0.0.2:$PORT2
mkdir -p "$M/primary/data/before"
printf 'written before the demo\n' >"$M/primary/data/before/hello.txt"

heading "8. one configuration file, the same on every node"
cat >"$CONF" <<EOF
[primary]
data_dir  = $M/primary/data
spool_dir = $M/primary/spool
listen    = $ADDR2
interval  = 1s

[standby]
data_dir  = $M/standby/data
state_dir = $M/standby/state
primary   = $ADDR2
EOF
sed "s|$SCRATCH|\$DEMO|g; s/^./  &/" "$CONF"
echo "  (interval = 1s: up to a second of changes waits in the spool, unreleased)"

heading "9. the primary on $ADDR2, a standby following it"
echo "\$ asyncrep watch -c \$DEMO/mission/asyncrep.conf &"
"$ASYNCREP" watch -c "$CONF" >"$M/watch.log" 2>&1 &
WATCH_PID=$!
wait_listen 127.0.0.2 "$PORT2" "$WATCH_PID"
echo "\$ asyncrep sync --follow -c \$DEMO/mission/asyncrep.conf &"
"$ASYNCREP" sync --follow -c "$CONF" >"$M/follow.log" 2>&1 &
FOLLOW_PID=$!
n=0
until [ -f "$M/standby/data/before/hello.txt" ]; do
	kill -0 "$FOLLOW_PID" 2>/dev/null || { echo "the standby exited"; exit 1; }
	n=$((n + 1))
	[ $n -lt 200 ] || { echo "the standby did not catch up within 20s"; exit 1; }
	sleep 0.1
done
echo "  primary pid $WATCH_PID, standby pid $FOLLOW_PID: the standby caught up"

# The application (test/t/writes.py): writes a file (1 byte to 64 KiB),
# fsyncs it and its directory, and only then logs "name sha256" of what it
# wrote: a logged line is a write the application was told is durable.
# Its "check" counts the last logged content of every file against a
# tree: "WRITTEN PRESENT LOST".
WRITES=$HERE/t/writes.py

heading "10. an application writes on the primary, fsyncing and logging each file"
echo "\$ python3 writes.py write \$DEMO/mission/primary/data written.log &"
"$PYTHON3" "$WRITES" write "$M/primary/data" "$M/written.log" 1 65536 50 \
	>"$M/app.log" 2>&1 &
APP_PID=$!
for t in 1 2 3; do
	sleep 1
	kill -0 "$APP_PID" 2>/dev/null || { echo "the application exited"; exit 1; }
	set -- $("$PYTHON3" "$WRITES" check "$M/written.log" "$M/standby/data" || :)
	echo "  after ${t} s: $1 files written, $2 of them already on the standby"
done

heading "11. the primary dies in the middle of the writes"
echo "\$ kill -KILL $WATCH_PID    # asyncrep watch"
kill -KILL "$WATCH_PID"
wait "$WATCH_PID" 2>/dev/null || :
WATCH_PID=
# The application outlives the watcher by a moment: its last writes are in
# no spool at all, only on the primary's disk.
sleep 0.3
echo "\$ kill -KILL $APP_PID    # the application, 0.3 s later"
kill -KILL "$APP_PID"
wait "$APP_PID" 2>/dev/null || :
APP_PID=
set -- $("$PYTHON3" "$WRITES" check "$M/written.log" "$M/standby/data" || :)
AT_CRASH=$3
echo "  $1 files written; the standby lacks $3 of them (missing or older)."
echo "  Plain asynchronous replication would lose those $3 files now."

heading "12. a third node: asyncrep rescue takes over $ADDR2"
echo "\$ asyncrep rescue -c \$DEMO/mission/asyncrep.conf --status-file rescue.status"
start=$(date +%s%N)
# elapsed: seconds since the rescue started, to 0.01 s.
elapsed() {
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	printf '%d.%02d s' $((ms / 1000)) $((ms % 1000 / 10))
}
"$ASYNCREP" rescue -c "$CONF" --timeout 30s \
	--status-file "$M/rescue.status" >"$M/rescue.out" 2>"$M/rescue.log" &
RESCUE_PID=$!
last=
while kill -0 "$RESCUE_PID" 2>/dev/null; do
	cur=$(cat "$M/rescue.status" 2>/dev/null || :)
	if [ -n "$cur" ] && [ "$cur" != "$last" ]; then
		echo "  $(elapsed)  status: $cur"
		last=$cur
	fi
	sleep 0.02
done
rc=0
wait "$RESCUE_PID" || rc=$?
RESCUE_PID=
cur=$(cat "$M/rescue.status" 2>/dev/null || :)
[ "$cur" = "$last" ] || echo "  $(elapsed)  status: $cur"
if [ $rc -ne 0 ]; then
	echo "  the rescue exited $rc:"
	sed 's/^/  | /' "$M/rescue.log"
	exit 1
fi
echo "  $(elapsed)  the rescue exited 0; its report (also kept in the spool, as 'rescued'):"
# The list of what only the compare found can be long: its first 5.
sed "s|$SCRATCH|\$DEMO|g" "$M/rescue.out" | awk '
	/^found only by the compare: / { if (++n > 5) next }
	{ print "  | " $0 }
	END { if (n > 5) printf "  | (and %d more found only by the compare)\n", n - 5 }'


echo
echo "  the standby's log:"
n=0
while kill -0 "$FOLLOW_PID" 2>/dev/null; do
	n=$((n + 1))
	[ $n -lt 200 ] || { echo "the standby did not exit within 20s"; exit 1; }
	sleep 0.1
done
rc=0
wait "$FOLLOW_PID" || rc=$?
FOLLOW_PID=
sed "s|$SCRATCH|\$DEMO|g; s/^/  | /" "$M/follow.log"
[ $rc -eq 0 ] || { echo "the standby exited $rc"; exit 1; }
grep -q "the replica is complete" "$M/follow.log" ||
	{ echo "the standby did not log that the replica is complete"; exit 1; }
echo "  sync --follow exited 0: the standby can be promoted"

heading "13. the old primary comes back: fenced"
echo "\$ asyncrep watch -c \$DEMO/mission/asyncrep.conf"
rc=0
"$ASYNCREP" watch -c "$CONF" >"$M/watch2.log" 2>&1 || rc=$?
sed "s|$SCRATCH|\$DEMO|g; s/^/  | /" "$M/watch2.log"
echo "  exit status $rc"
[ $rc -eq 12 ] || { echo "expected exit status 12 (fenced)"; exit 1; }

heading "14. verdict"
set -- $("$PYTHON3" "$WRITES" check -v "$M/written.log" "$M/standby/data" || :)
WRITTEN=${1:-} PRESENT=${2:-} LOST=${3:-}
case "$WRITTEN.$PRESENT.$LOST" in
*[!0-9.]* | .* | *..* | *.) echo "cannot count the files"; exit 1 ;;
esac
nfiles() { find "$1" -type f ! -name '.asyncrep-tmp.*' | wc -l; }
ONSTANDBY=$(nfiles "$M/standby/data")
ONPRIMARY=$(nfiles "$M/primary/data")
"$PYTHON3" "$HERE/t/treelist.py" "$M/primary/data" >"$M/list.primary"
"$PYTHON3" "$HERE/t/treelist.py" "$M/standby/data" >"$M/list.standby"
SAME=yes
cmp -s "$M/list.primary" "$M/list.standby" || SAME=no
phase() {
	sed -n "s/^$1 phase: \([0-9]*\) files, \([0-9]*\) bytes, \([0-9.]*\) s\$/\3 s (\1 files, \2 bytes)/p" \
		"$M/rescue.out"
}
printf '  %-52s %s\n' \
	"files written and fsynced (the application's log):" "$WRITTEN" \
	"of them on the standby, same content:" "$PRESENT" \
	"missing on the standby when the primary died:" "$AT_CRASH" \
	"files lost:" "$LOST" \
	"files on the primary's disk, in all:" "$ONPRIMARY" \
	"files on the standby, in all:" "$ONSTANDBY" \
	"standby tree identical to the primary's disk:" "$SAME" \
	"rescue, waiting for the standby to call:" \
	"$(sed -n 's/^waiting for the standby: //p' "$M/rescue.out")" \
	"rescue, spool phase:" "$(phase spool)" \
	"rescue, compare phase:" "$(phase compare)"
if [ "$LOST" -ne 0 ] || [ "$SAME" != yes ] || [ "$WRITTEN" -eq 0 ]; then
	echo
	echo "FAILED: $LOST files lost, trees identical: $SAME"
	diff -u "$M/list.primary" "$M/list.standby" | head -20
	exit 1
fi
echo
echo "nothing lost: the standby holds every write the primary made durable"

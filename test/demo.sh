#!/bin/sh
# demo.sh: a guided tour of asyncrep on loopback (run by `make demo`).
#
#   sh test/demo.sh /path/to/asyncrep
#
# Starts a primary (`asyncrep watch`) on 127.0.0.1:<free port> over a small
# mixed tree, replicates it to a standby dir with `asyncrep sync`, changes
# a few things, syncs again, shows that a third sync moves nothing, and
# checks the two trees are identical. Everything lives in a scratch dir
# under /tmp, removed at the end. Exits non-zero on any failure.
set -eu

ASYNCREP=${1:?usage: demo.sh /path/to/asyncrep}
case $ASYNCREP in /*) ;; *) ASYNCREP=$(pwd)/$ASYNCREP ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON3=${PYTHON3:-python3}
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

SCRATCH=$(mktemp -d /tmp/asyncrep-demo.XXXXXX)
WATCH_PID=
cleanup() {
	st=$?
	if [ -n "$WATCH_PID" ]; then
		kill -TERM "$WATCH_PID" 2>/dev/null || :
		n=0
		while kill -0 "$WATCH_PID" 2>/dev/null && [ $n -lt 100 ]; do
			sleep 0.1; n=$((n + 1))
		done
		kill -KILL "$WATCH_PID" 2>/dev/null || :
	fi
	if [ $st -ne 0 ]; then
		echo
		echo "demo FAILED (exit $st); primary log:"
		sed 's/^/  | /' "$SCRATCH/watch.log" 2>/dev/null || :
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
n=0
until "$PYTHON3" -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5).close()' \
	"$PORT" 2>/dev/null; do
	kill -0 "$WATCH_PID" 2>/dev/null || { echo "the primary exited"; exit 1; }
	n=$((n + 1))
	[ $n -lt 100 ] || { echo "the primary did not listen within 10s"; exit 1; }
	sleep 0.1
done
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
echo
echo "trees identical"

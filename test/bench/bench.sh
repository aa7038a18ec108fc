#!/bin/sh
# bench.sh: asyncrep against rsync (daemon on loopback) and cp -a, in one
# table (run by `make bench`).
#
#   sh test/bench/bench.sh /path/to/asyncrep
#
# Scenarios (full size; BENCH_SCALE=small divides every size by 20):
#   a  initial sync of 40 files of 50 MB (2 GB of random data)
#   b  initial sync of 50,000 files of 4 KiB in 500 directories
#   c  1 MiB changed in the middle of a 1 GB file already replicated
# Tools: asyncrep (watch + one-shot sync, always durable: fsync per file),
# rsync -a to an rsync daemon on 127.0.0.1 with and without --fsync, and
# cp -a (local, no network, no fsync; "cp -a + sync" adds a syncfs).
# Columns: wall seconds, MB/s of replicated data (for c: of the whole file
# brought up to date), files/s, bytes on the wire (rsync: --stats "Total
# bytes sent" + "received"; asyncrep: the "sent N bytes  received M bytes"
# line of `sync -v` if it prints one, else n/a), peak RSS (watch: VmHWM
# from /proc before it is stopped; sync: GNU time %M).
#
# As root, the page cache is dropped before each timed run
# (sync; echo 3 > /proc/sys/vm/drop_caches) so every tool reads its source
# cold; otherwise the table says "warm cache". Every size can be
# overridden: BENCH_A_FILES, BENCH_A_MB, BENCH_B_FILES, BENCH_B_DIRS,
# BENCH_C_MB, BENCH_C_CHANGE_KB. BENCH_DIR picks the scratch parent
# (default /tmp). Everything is removed at the end, daemons killed.
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi
set -euo pipefail

ASYNCREP=${1:?usage: bench.sh /path/to/asyncrep}
case $ASYNCREP in /*) ;; *) ASYNCREP=$(pwd)/$ASYNCREP ;; esac
PYTHON3=${PYTHON3:-python3}
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

div=1
[ "${BENCH_SCALE:-full}" = small ] && div=20
A_FILES=${BENCH_A_FILES:-40}
B_FILES=${BENCH_B_FILES:-$((50000 / div))}
B_DIRS=${BENCH_B_DIRS:-$((500 / div))}
C_MB=${BENCH_C_MB:-$((1000 / div))}
C_CHANGE_KB=${BENCH_C_CHANGE_KB:-1024}
A_BYTES=$((${BENCH_A_MB:-50} * 1000000 / div))	# bytes per file (MB = 10^6)

for t in rsync timeout; do
	command -v "$t" >/dev/null || { echo "bench: $t is missing (apt-get install -y $t)"; exit 1; }
done
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "bench: /usr/bin/time is missing (apt-get install -y time)"; exit 1; }
RSYNC_FSYNC=yes
rsync --help 2>/dev/null | grep -q -- '--fsync' || RSYNC_FSYNC=no

SCRATCH=$(mktemp -d "${BENCH_DIR:-/tmp}/asyncrep-bench.XXXXXX")
WATCH_PID= RSYNCD_PID=
stop_pid() {
	local pid=$1 n=0
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do
		sleep 0.1; n=$((n + 1))
	done
	kill -KILL "$pid" 2>/dev/null || :
	wait "$pid" 2>/dev/null || :
}
cleanup() {
	stop_pid "$WATCH_PID"
	stop_pid "$RSYNCD_PID"
	rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	"$PYTHON3" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
	local n=0
	until "$PYTHON3" -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5).close()' \
		"$1" 2>/dev/null; do
		n=$((n + 1))
		[ $n -lt 200 ] || { echo "bench: nothing listens on port $1"; return 1; }
		sleep 0.1
	done
}

CACHE="cold cache"
drop_caches() {
	sync
	if [ "$(id -u)" -eq 0 ] && echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
		:
	else
		CACHE="warm cache"
	fi
}

now() { date +%s.%N; }

# --- the rsync daemon ---------------------------------------------------------
RSYNC_PORT=$(free_port)
mkdir -p "$SCRATCH/rsyncd"
cat >"$SCRATCH/rsyncd.conf" <<EOF
pid file = $SCRATCH/rsyncd.pid
use chroot = no
uid = root
gid = root
read only = false
[bench]
	path = $SCRATCH/rsyncd
EOF
rsync --daemon --no-detach --config="$SCRATCH/rsyncd.conf" \
	--address=127.0.0.1 --port="$RSYNC_PORT" >"$SCRATCH/rsyncd.log" 2>&1 &
RSYNCD_PID=$!
wait_port "$RSYNC_PORT"

# --- results -----------------------------------------------------------------
ROWS=()
row() {		# scenario tool seconds bytes files wire rss
	local mbs fps
	mbs=$(awk -v b="$4" -v s="$3" 'BEGIN { printf "%.1f", (s > 0 ? b / s / 1e6 : 0) }')
	fps=$(awk -v f="$5" -v s="$3" 'BEGIN { r = (s > 0 ? f / s : 0); printf (r < 10 ? "%.2f" : "%.0f"), r }')
	ROWS+=("$(printf '%-3s %-16s %9.2f %9s %9s %14s  %s' "$1" "$2" "$3" "$mbs" "$fps" "$6" "$7")")
	printf '  %-16s %8.2fs %9s MB/s %9s files/s  wire %s  rss %s\n' "$2" "$3" "$mbs" "$fps" "$6" "$7"
}

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

human() {
	awk -v b="$1" 'BEGIN {
		if (b !~ /^[0-9]+$/) { print b; exit }
		split("B KB MB GB TB", u, " "); i = 1
		while (b >= 1000 && i < 5) { b /= 1000; i++ }
		printf (i == 1 ? "%d %s" : "%.2f %s"), b, u[i] }'
}

# check SRC DST: same file count and bytes (c: same content).
check() {
	local a b
	a=$(find "$1" -type f | wc -l):$(du -sb --apparent-size "$1" | cut -f1)
	b=$(find "$2" -type f | wc -l):$(du -sb --apparent-size "$2" | cut -f1)
	[ "$a" = "$b" ] || { echo "  MISMATCH: $1 has $a, $2 has $b (files:bytes)"; return 1; }
}

# run_asyncrep SCEN SRC DST BYTES FILES: one timed one-shot sync.
run_asyncrep() {
	local scen=$1 src=$2 dst=$3 bytes=$4 files=$5 port t0 t1 wire rss_w rss_s
	port=$(free_port)
	rm -rf "$SCRATCH/spool" "$SCRATCH/state"
	"$ASYNCREP" watch --data-dir "$src" --spool-dir "$SCRATCH/spool" \
		--listen "127.0.0.1:$port" >"$SCRATCH/watch.log" 2>&1 &
	WATCH_PID=$!
	wait_port "$port" || { cat "$SCRATCH/watch.log"; return 1; }
	drop_caches
	t0=$(now)
	if ! timeout 600 "$TIME" -f %M -o "$SCRATCH/sync.rss" "$ASYNCREP" sync -v \
		--data-dir "$dst" --state-dir "$SCRATCH/state" \
		--primary "127.0.0.1:$port" >"$SCRATCH/sync.log" 2>&1; then
		t1=$(now)
		echo "  asyncrep sync FAILED:"; tail -5 "$SCRATCH/sync.log" | sed 's/^/  | /'
		stop_pid "$WATCH_PID"; WATCH_PID=
		ROWS+=("$(printf '%-3s %-16s %9s' "$scen" asyncrep FAILED)")
		return 0
	fi
	t1=$(now)
	rss_w=$(awk '/^VmHWM/ { print $2 }' "/proc/$WATCH_PID/status" 2>/dev/null || echo '?')
	stop_pid "$WATCH_PID"; WATCH_PID=
	rss_s=$(tail -1 "$SCRATCH/sync.rss")
	wire=$(sed -n 's/.*sent \([0-9][0-9]*\) bytes *received \([0-9][0-9]*\) bytes.*/\1 \2/p' \
		"$SCRATCH/sync.log" | tail -1 | awk '{ print $1 + $2 }')
	wire=$(human "${wire:-n/a}")
	check "$src" "$dst" || :
	row "$scen" asyncrep "$(elapsed "$t0" "$t1")" "$bytes" "$files" "$wire" \
		"watch ${rss_w}K sync ${rss_s}K"
}

# run_rsync SCEN NAME SRC DSTNAME BYTES FILES [rsync options]
run_rsync() {
	local scen=$1 name=$2 src=$3 dst=$4 bytes=$5 files=$6 t0 t1 wire
	shift 6
	drop_caches
	t0=$(now)
	if ! timeout 600 rsync -a --stats "$@" "$src/" \
		"rsync://127.0.0.1:$RSYNC_PORT/bench/$dst/" >"$SCRATCH/rsync.log" 2>&1; then
		echo "  $name FAILED:"; tail -5 "$SCRATCH/rsync.log" | sed 's/^/  | /'
		ROWS+=("$(printf '%-3s %-16s %9s' "$scen" "$name" FAILED)")
		return 0
	fi
	t1=$(now)
	wire=$(awk -F: '/^Total bytes (sent|received)/ { gsub(/[ ,]/, "", $2); n += $2 }
		END { print n + 0 }' "$SCRATCH/rsync.log")
	check "$src" "$SCRATCH/rsyncd/$dst" || :
	row "$scen" "$name" "$(elapsed "$t0" "$t1")" "$bytes" "$files" "$(human "$wire")" -
}

# run_cp SCEN SRC DST BYTES FILES [sync]
run_cp() {
	local scen=$1 src=$2 dst=$3 bytes=$4 files=$5 t0 t1 name="cp -a"
	drop_caches
	t0=$(now)
	cp -a "$src" "$dst"
	if [ "${6:-}" = sync ]; then
		sync -f "$dst"
		name="cp -a + sync"
	fi
	t1=$(now)
	check "$src" "$dst" || :
	row "$scen" "$name" "$(elapsed "$t0" "$t1")" "$bytes" "$files" "(local)" -
}

# all_tools SCEN SRC BYTES FILES: every tool from an empty destination.
all_tools() {
	local scen=$1 src=$2 bytes=$3 files=$4
	run_asyncrep "$scen" "$src" "$SCRATCH/dst-asyncrep" "$bytes" "$files"
	rm -rf "$SCRATCH/dst-asyncrep"
	run_rsync "$scen" "rsync" "$src" "$scen-plain" "$bytes" "$files"
	rm -rf "$SCRATCH/rsyncd/$scen-plain"
	if [ "$RSYNC_FSYNC" = yes ]; then
		run_rsync "$scen" "rsync --fsync" "$src" "$scen-fsync" "$bytes" "$files" --fsync
		rm -rf "$SCRATCH/rsyncd/$scen-fsync"
	fi
	run_cp "$scen" "$src" "$SCRATCH/dst-cp" "$bytes" "$files"
	rm -rf "$SCRATCH/dst-cp"
	run_cp "$scen" "$src" "$SCRATCH/dst-cp" "$bytes" "$files" sync
	rm -rf "$SCRATCH/dst-cp"
}

START=$(now)
echo "asyncrep bench: scale ${BENCH_SCALE:-full}, scratch $SCRATCH"
echo "  $("$ASYNCREP" --version 2>/dev/null | head -1 || echo asyncrep)"
echo "  $(rsync --version | head -1)"

# --- a: 40 x 50 MB -----------------------------------------------------------
echo
echo "a: initial sync of $A_FILES files of $(human "$A_BYTES")"
mkdir -p "$SCRATCH/a"
# One random stream, written once and split, reused by every tool.
head -c $((A_FILES * A_BYTES)) /dev/urandom |
	split -a 3 -d -b "$A_BYTES" - "$SCRATCH/a/file-"
all_tools a "$SCRATCH/a" $((A_FILES * A_BYTES)) "$A_FILES"
rm -rf "$SCRATCH/a"

# --- b: 50,000 x 4 KiB in 500 dirs -------------------------------------------
echo
echo "b: initial sync of $B_FILES files of 4 KiB in $B_DIRS directories"
"$PYTHON3" - "$SCRATCH/b" "$B_FILES" "$B_DIRS" <<'EOF'
import os, sys
root, files, dirs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in range(dirs):
    os.makedirs(os.path.join(root, "d%03d" % d))
for i in range(files):
    with open(os.path.join(root, "d%03d" % (i % dirs), "f%05d" % i), "wb") as f:
        f.write(os.urandom(4096))
EOF
all_tools b "$SCRATCH/b" $((B_FILES * 4096)) "$B_FILES"
rm -rf "$SCRATCH/b"

# --- c: 1 MiB changed in a 1 GB file ---------------------------------------------
echo
echo "c: $((C_CHANGE_KB)) KiB changed in the middle of a $(human $((C_MB * 1000000))) file already replicated"
mkdir -p "$SCRATCH/c"
head -c $((C_MB * 1000000)) /dev/urandom >"$SCRATCH/c/big"
# Every destination starts as a faithful copy (mtime kept), as if an
# earlier run of that tool had replicated it.
cp -a "$SCRATCH/c" "$SCRATCH/dst-asyncrep"
cp -a "$SCRATCH/c" "$SCRATCH/rsyncd/c-plain"
[ "$RSYNC_FSYNC" = yes ] && cp -a "$SCRATCH/c" "$SCRATCH/rsyncd/c-fsync"
head -c $((C_CHANGE_KB * 1024)) /dev/urandom |
	dd of="$SCRATCH/c/big" bs=1024 seek=$((C_MB * 1000000 / 2048)) \
	conv=notrunc status=none
touch -d '+1 minute' "$SCRATCH/c/big" 2>/dev/null || touch "$SCRATCH/c/big"
C_BYTES=$((C_MB * 1000000))
run_asyncrep c "$SCRATCH/c" "$SCRATCH/dst-asyncrep" "$C_BYTES" 1
cmp -s "$SCRATCH/c/big" "$SCRATCH/dst-asyncrep/big" || echo "  MISMATCH: asyncrep's copy differs"
rm -rf "$SCRATCH/dst-asyncrep"
run_rsync c "rsync" "$SCRATCH/c" c-plain "$C_BYTES" 1
cmp -s "$SCRATCH/c/big" "$SCRATCH/rsyncd/c-plain/big" || echo "  MISMATCH: rsync's copy differs"
rm -rf "$SCRATCH/rsyncd/c-plain"
if [ "$RSYNC_FSYNC" = yes ]; then
	run_rsync c "rsync --fsync" "$SCRATCH/c" c-fsync "$C_BYTES" 1 --fsync
	rm -rf "$SCRATCH/rsyncd/c-fsync"
fi
run_cp c "$SCRATCH/c" "$SCRATCH/dst-cp" "$C_BYTES" 1
rm -rf "$SCRATCH/dst-cp"

# --- the table -------------------------------------------------------------------
echo
echo "asyncrep bench ($CACHE before each run, scale ${BENCH_SCALE:-full}, $(nproc) CPUs)"
echo "  a = $A_FILES x $(human "$A_BYTES") initial; b = $B_FILES x 4 KiB in $B_DIRS dirs initial;"
echo "  c = $C_CHANGE_KB KiB changed in a $(human "$C_BYTES") file (MB/s = whole file / seconds)"
[ "$RSYNC_FSYNC" = yes ] || echo "  (this rsync has no --fsync: those rows are missing)"
printf '%-3s %-16s %9s %9s %9s %14s  %s\n' "" tool seconds "MB/s" "files/s" "wire bytes" "peak RSS"
for r in "${ROWS[@]}"; do
	echo "$r"
done
echo "total bench time: $(elapsed "$START" "$(now)") s"

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
#
# Second part, continuous replication (see "follow part" below): asyncrep
# watch + sync --follow against lsyncd (delay = 0, default.rsync to the
# same rsync daemon): lag of a 4 KiB write, a burst of 4 KiB files, and
# watch start-up time and RSS on a large tree. BENCH_PART=copy runs only
# the first part, BENCH_PART=follow only the second (default: both).
#
# Third part, TLS (see "tls part" below): asyncrep over mutual TLS 1.3
# (keys by asyncrep keygen, pinned) against asyncrep in clear, for the
# initial sync of a, the lag of a 4 KiB write and the burst.
# BENCH_PART=tls runs only this part.
#
# Fourth part, metrics (see "metrics part" below): the lag of a 4 KiB
# write with both sides serving metrics and scraped every second, against
# without, in alternate rounds. BENCH_PART=metrics runs only this part.
# Fifth part, live big files (see "append part" below): a file of
# BENCH_APPEND_MB (1000) MB already replicated by watch + sync --follow;
# APPEND_COUNT (50) appends of 100 bytes, each fsynced, one at a time,
# timed until the standby's file holds them (p50, p99); then 20 appends a
# second for 20 s: the standby's lag when the writes stop, and the
# CPU-seconds (utime + stime from /proc/PID/stat) of watch and sync over
# that run. rsync --append --inplace to the daemon after each append, in
# the same run, as the anchor. BENCH_PART=append runs only this part.
# Sixth part, lanes (see "lanes part" below): a 10-byte new file written
# right after (a) a 100-byte append to an already replicated big file,
# (b) 1 MiB rewritten in its middle, in place, and (c) a new big file
# moved into the tree: the time until the small file
# is on the standby, asyncrep with lanes (--lane-min-size 8M),
# without (--lane-min-size 0) and lsyncd. BENCH_LANE_MB (default 1000,
# MB = 10^6) and BENCH_LANE_REPS (default 5) set the size and the
# repetitions. BENCH_PART=lanes runs only this part.
# Seventh part, changes in place (see "inplace part" below): a file of
# BENCH_INPLACE_MB (1000) MB replicated by asyncrep; 1 MiB of it
# overwritten in the middle, then a one-shot sync timed, then another
# 1 MiB overwritten with sync --follow running, timed until the standby's
# copy holds it; rsync -a, -a --inplace and -a --fsync of each change
# to the daemon in the same run, as the anchors. BENCH_INPLACE_REPS (3)
# repetitions, warm cache; the same again with the standby's and rsync's
# copies on a loop-mounted XFS (reflinks), as root; and on the local file
# system with inplace = big (the journaled in-place update, for file
# systems without reflinks; a row "journal"). A sync before each
# timed run, so that no tool pays for another's dirty pages.
# BENCH_PART=inplace runs only this part.
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
rsync --help 2>/dev/null | grep -- '--fsync' >/dev/null || RSYNC_FSYNC=no

PART=${BENCH_PART:-all}
case $PART in all|copy|follow|tls|metrics|append|lanes|inplace) ;; *) echo "bench: BENCH_PART is all, copy, follow, tls, metrics, append, lanes or inplace"; exit 1 ;; esac
if [ "$PART" = all ] || [ "$PART" = follow ] || [ "$PART" = lanes ]; then
	command -v lsyncd >/dev/null || { echo "bench: lsyncd is missing (apt-get install -y lsyncd)"; exit 1; }
fi
LAGPY=$(cd "$(dirname "$0")" && pwd)/lag.py
[ -r "$LAGPY" ] || { echo "bench: $LAGPY is missing"; exit 1; }

SCRATCH=$(mktemp -d "${BENCH_DIR:-/tmp}/asyncrep-bench.XXXXXX")
WATCH_PID= RSYNCD_PID= FOLLOW_PID= LSYNCD_PID=
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
# stop_tree PID: PID's children (lsyncd's rsync runs), then PID.
stop_tree() {
	local pid=$1 c
	[ -n "$pid" ] || return 0
	for c in $(cat "/proc/$pid/task/"*/children 2>/dev/null); do
		kill -TERM "$c" 2>/dev/null || :
	done
	stop_pid "$pid"
	# what is left of the process group it led (see start_lsyncd)
	kill -TERM -- "-$pid" 2>/dev/null || :
}
cleanup() {
	stop_pid "$FOLLOW_PID"
	stop_pid "$WATCH_PID"
	stop_tree "$LSYNCD_PID"
	stop_pid "$RSYNCD_PID"
	[ -z "${IP_MOUNTED:-}" ] || umount -l "$IP_MOUNTED" || :
	if [ -n "${BENCH_LOGS:-}" ] && [ -d "$SCRATCH/logs" ]; then
		mkdir -p "$BENCH_LOGS" && cp -a "$SCRATCH/logs/." "$BENCH_LOGS/" || :
	fi
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
row() {		# scenario tool seconds bytes files wire rss [cpu]
	local mbs fps
	mbs=$(awk -v b="$4" -v s="$3" 'BEGIN { printf "%.1f", (s > 0 ? b / s / 1e6 : 0) }')
	fps=$(awk -v f="$5" -v s="$3" 'BEGIN { r = (s > 0 ? f / s : 0); printf (r < 10 ? "%.2f" : "%.0f"), r }')
	ROWS+=("$(printf '%-3s %-16s %9.2f %9s %9s %14s  %s' "$1" "$2" "$3" "$mbs" "$fps" "$6" "$7")")
	printf '  %-16s %8.2fs %9s MB/s %9s files/s  wire %s  rss %s%s\n' "$2" "$3" "$mbs" "$fps" "$6" "$7" "${8:+  $8}"
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

# Options every asyncrep watch and sync of the bench gets (the TLS part
# sets them).
WATCH_OPTS=() SYNC_OPTS=()

# run_asyncrep SCEN SRC DST BYTES FILES [TOOL]: one timed one-shot sync;
# TOOL names its row (default asyncrep); SECONDS_RUN = its seconds.
SECONDS_RUN=
run_asyncrep() {
	local scen=$1 src=$2 dst=$3 bytes=$4 files=$5 tool=${6:-asyncrep}
	local port t0 t1 wire rss_w rss_s cpu_w cpu_u cpu_s
	port=$(free_port)
	rm -rf "$SCRATCH/spool" "$SCRATCH/state"
	"$ASYNCREP" watch --data-dir "$src" --spool-dir "$SCRATCH/spool" \
		--listen "127.0.0.1:$port" "${WATCH_OPTS[@]}" >"$SCRATCH/watch.log" 2>&1 &
	WATCH_PID=$!
	wait_port "$port" || { cat "$SCRATCH/watch.log"; return 1; }
	drop_caches
	cpu_w=$(ticks "$WATCH_PID")
	t0=$(now)
	SECONDS_RUN= CPU_RUN=
	if ! timeout 600 "$TIME" -f '%M %U %S' -o "$SCRATCH/sync.rss" "$ASYNCREP" sync -v \
		--data-dir "$dst" --state-dir "$SCRATCH/state" \
		--primary "127.0.0.1:$port" "${SYNC_OPTS[@]}" >"$SCRATCH/sync.log" 2>&1; then
		t1=$(now)
		echo "  $tool sync FAILED:"; tail -5 "$SCRATCH/sync.log" | sed 's/^/  | /'
		stop_pid "$WATCH_PID"; WATCH_PID=
		ROWS+=("$(printf '%-3s %-16s %9s' "$scen" "$tool" FAILED)")
		return 0
	fi
	t1=$(now)
	rss_w=$(awk '/^VmHWM/ { print $2 }' "/proc/$WATCH_PID/status" 2>/dev/null || echo '?')
	cpu_w=$(awk -v a="$cpu_w" -v b="$(ticks "$WATCH_PID")" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.2f", (b - a) / hz }')
	stop_pid "$WATCH_PID"; WATCH_PID=
	read -r rss_s cpu_u cpu_s < <(tail -1 "$SCRATCH/sync.rss")
	CPU_RUN=$(awk -v w="$cpu_w" -v u="$cpu_u" -v s="$cpu_s" \
		'BEGIN { printf "%.2f %.2f", w, u + s }')
	wire=$(sed -n 's/.*sent \([0-9][0-9]*\) bytes *received \([0-9][0-9]*\) bytes.*/\1 \2/p' \
		"$SCRATCH/sync.log" | tail -1 | awk '{ print $1 + $2 }')
	wire=$(human "${wire:-n/a}")
	check "$src" "$dst" || :
	SECONDS_RUN=$(elapsed "$t0" "$t1")
	row "$scen" "$tool" "$SECONDS_RUN" "$bytes" "$files" "$wire" \
		"watch ${rss_w}K sync ${rss_s}K" "cpu-s watch ${CPU_RUN% *} sync ${CPU_RUN#* }"
}
# ticks PID: the CPU time (user + system, clock ticks) PID has used so far.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

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

# warm_up SRC: one untimed copy of a freshly written source, synced and
# removed. On this kind of machine the first run after a tree is written
# is up to twice as slow, whatever the tool (measured: rsync --fsync
# 7.5 s first, 3.9 s second; asyncrep 6.5 s, then 2.6 to 3.5 s), most
# likely the virtual disk allocating the blocks the first writer gets;
# later runs reuse the blocks freed by the earlier ones. Without this,
# the first tool in the table pays for it.
warm_up() {
	sync
	cp -a "$1" "$SCRATCH/warm-up"
	sync
	rm -rf "$SCRATCH/warm-up"
	sync
}

# all_tools SCEN SRC BYTES FILES: every tool from an empty destination.
all_tools() {
	local scen=$1 src=$2 bytes=$3 files=$4
	warm_up "$src"
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

if [ "$PART" = all ] || [ "$PART" = copy ]; then	# first part: one-shot copies
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
fi	# first part

if [ "$PART" != copy ]; then	# second part: continuous replication
# --- follow part: asyncrep watch + sync --follow against lsyncd --------------
# Every asyncrep run: `asyncrep watch` on the primary tree and
# `asyncrep sync --follow` into a standby tree (both on this host, loopback);
# the standby applies every file durably (temp file, fsync, rename, fsync of
# the directory). lsyncd: delay = 0, default.rsync to the rsync daemon above,
# rsync without --fsync (lsyncd's default): its files are NOT durable when
# they appear, so its lag is a lower bound for a durable copy.
#   lag    LAG_WRITES writes of 4 KiB (a new file each, one at a time, after a
#          random 0-10 ms pause; 0-200 ms at interval 200ms so the writes are
#          not in phase with the timer); each is timed from before open() on
#          the primary until the standby's file holds the same bytes (polled
#          every 0.2 ms, at most 10 s): time.monotonic_ns in lag.py.
#          On an empty tree, then on a tree of TREE_FILES files of
#          TREE_FILE_SIZE bytes in TREE_DIRS directories: asyncrep's standby
#          is seeded with cp -a, then checked identical (names, sizes,
#          mtimes) before the timed writes; lsyncd's target is that same
#          standby tree afterwards (moved). The first two writes of every
#          run are not timed (they wait for the start-up compare).
#   burst  BURST_FILES x 4 KiB into BURST_DIRS new directories, written at
#          once; seconds from the first write until the standby holds all
#          of them with the right bytes (polled every 5 ms).
#   start  asyncrep watch: from exec until it logs "serving" (its inotify
#          watches are set before); lsyncd: from exec until it logs
#          "recursive startup rsync" (its watches are set before), and until
#          "Startup of ... finished" (its initial rsync against a target
#          that already holds the tree, i.e. a compare). Peak RSS = VmHWM of
#          the process (lsyncd: without its rsync children). The watch is
#          started twice: on a new spool (interval 0), and again on that
#          spool (interval 200ms) with the same standby state.
# Each section line carries [seconds since the part began]; the slowest
# writes of every lag run are listed after the tables. Sizes: BENCH_LAG_WRITES,
# BENCH_BURST_FILES, BENCH_BURST_DIRS, BENCH_TREE_FILES, BENCH_TREE_DIRS,
# BENCH_TREE_FILE_SIZE (1024). BENCH_LOGS=DIR keeps the logs and samples.
LAG_WRITES=${BENCH_LAG_WRITES:-$((200 / div))}
BURST_FILES=${BENCH_BURST_FILES:-$((5000 / div))}
BURST_DIRS=${BENCH_BURST_DIRS:-$((50 / div > 0 ? 50 / div : 1))}
TREE_FILES=${BENCH_TREE_FILES:-$((100000 / div))}
TREE_DIRS=${BENCH_TREE_DIRS:-$((10000 / div))}
TREE_SIZE=${BENCH_TREE_FILE_SIZE:-1024}
LAG_TIMEOUT=10		# seconds per write
mkdir -p "$SCRATCH/logs"

exec {NAPFD}<> <(:)
nap() { read -r -t "$1" -u "$NAPFD" _ || :; }	# sleep without a fork

# wait_log FILE ERE TIMEOUT PID T0: wait (polling every ~2 ms, no fork)
# until a line of FILE matches; WAITED = seconds since T0 ($EPOCHREALTIME).
WAITED=
wait_log() {
	local file=$1 rx=$2 limit=$3 pid=$4 t0=$5 fd= line buf= t1 n=0
	exec {fd}<"$file" || return 1
	while :; do
		while IFS= read -r -u "$fd" line; do
			line=$buf$line buf=
			if [[ $line =~ $rx ]]; then
				t1=$EPOCHREALTIME
				exec {fd}<&-
				WAITED=$(elapsed "$t0" "$t1")
				return 0
			fi
		done
		buf+=$line
		if ! kill -0 "$pid" 2>/dev/null; then
			exec {fd}<&-
			echo "  process $pid exited; its log:"; tail -5 "$file" | sed 's/^/  | /'
			return 1
		fi
		n=$((n + 1))
		if [ $n -gt $((limit * 400)) ]; then
			exec {fd}<&-
			echo "  no '$rx' in $file after ${limit}s"
			return 1
		fi
		nap 0.002
	done
}

hwm() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo '?'; }

# start_watch LOG SPOOL SRC [INTERVAL]: asyncrep watch on a new port, stderr
# to logs/watch-LOG.log, spool in spool-SPOOL; STARTUP = seconds to "serving".
STARTUP= WATCH_PORT= WATCH_LOG= FOLLOW_LOG= LSYNCD_LOG=
start_watch() {
	local log="$SCRATCH/logs/watch-$1.log" t0
	WATCH_LOG=$log
	WATCH_PORT=$(free_port)
	# --allow-empty: the empty trees of the lag runs are meant to be so
	local args=(watch --data-dir "$3" --spool-dir "$SCRATCH/spool-$2"
		--listen "127.0.0.1:$WATCH_PORT" --allow-empty "${WATCH_OPTS[@]}")
	[ -n "${4:-}" ] && args+=(--interval "$4")
	: >"$log"
	t0=$EPOCHREALTIME
	"$ASYNCREP" "${args[@]}" 2>>"$log" &
	WATCH_PID=$!
	wait_log "$log" 'serving' 300 "$WATCH_PID" "$t0" || return 1
	STARTUP=$WAITED
}
start_follow() {	# NAME DST: state in state-(NAME up to a "-"), log follow-NAME.log
	FOLLOW_LOG="$SCRATCH/logs/follow-$1.log"
	"$ASYNCREP" sync --follow --data-dir "$2" --state-dir "$SCRATCH/state-${1%%-*}" \
		--primary "127.0.0.1:$WATCH_PORT" "${SYNC_OPTS[@]}" 2>>"$FOLLOW_LOG" &
	FOLLOW_PID=$!
}
# start_lsyncd NAME SRC TARGET: STARTUP = until watches set, READY = until
# its startup rsync finished.
READY=
start_lsyncd() {
	local name=$1 src=$2 target=$3 t0 log="$SCRATCH/logs/lsyncd-$1.log"
	LSYNCD_LOG=$log
	cat >"$SCRATCH/lsyncd-$name.conf" <<LSY
settings { nodaemon = true, inotifyMode = "CloseWrite or Modify" }
sync { default.rsync, source = "$src", delay = 0,
	target = "rsync://127.0.0.1:$RSYNC_PORT/bench/$target/",
	rsync = { archive = true } }
LSY
	: >"$log"
	t0=$EPOCHREALTIME
	# In a session of its own (setsid does not fork here: a background
	# job of a script is no group leader), so that its rsync children can
	# be stopped with it, by its process group.
	setsid lsyncd "$SCRATCH/lsyncd-$name.conf" >>"$log" 2>&1 &
	LSYNCD_PID=$!
	wait_log "$log" 'recursive startup rsync' 300 "$LSYNCD_PID" "$t0" || return 1
	STARTUP=$WAITED
	[ "$(cat "/proc/$LSYNCD_PID/comm" 2>/dev/null)" = lsyncd ] ||
		echo "  (pid $LSYNCD_PID is not lsyncd itself: its VmHWM is not lsyncd's)"
	wait_log "$log" 'Startup of .* finished' 600 "$LSYNCD_PID" "$t0" || return 1
	READY=$WAITED
}
# died NAME PID LOG: say so if PID has exited by itself (it should not have).
died() {
	local st=0
	[ -n "$2" ] && ! kill -0 "$2" 2>/dev/null || return 0
	wait "$2" 2>/dev/null || st=$?
	echo "  $1 (pid $2) had EXITED by itself, status $st; the end of its log:"
	tail -5 "$3" | sed 's/^/  | /'
}
stop_all() {
	died "asyncrep sync --follow" "$FOLLOW_PID" "$FOLLOW_LOG"
	died "asyncrep watch" "$WATCH_PID" "$WATCH_LOG"
	died lsyncd "$LSYNCD_PID" "$LSYNCD_LOG"
	stop_pid "$FOLLOW_PID"; FOLLOW_PID=
	stop_pid "$WATCH_PID"; WATCH_PID=
	stop_tree "$LSYNCD_PID"; LSYNCD_PID=
}

# same SRC DST TIMEOUT [meta]: wait until DST is identical; CAUGHT_UP = s.
CAUGHT_UP=
same() {
	local out
	if out=$("$PYTHON3" "$LAGPY" same "$1" "$2" "$3" ${4:-}); then
		CAUGHT_UP=$out
		return 0
	fi
	echo "  standby never caught up: $out"
	return 1
}

LAG_ROWS=() BURST_ROWS=() OUTLIERS=()
num_le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0 && a != "nan") }'; }
verdict() {
	if [ -z "$1" ]; then echo "not measured"
	elif num_le "$1" "$2"; then echo met; else echo MISSED; fi
}

# lag TREE TOOL SRC DST GAP_MAX TAG [TARGETS]
lag() {
	local tree=$1 tool=$2 src=$3 dst=$4 gap=$5 tag=$6 out p50 p99 max ok to wf tgt=
	# First two unmeasured writes (waited for up to 10 minutes each): the
	# standby has finished its start-up compare, a reconnect is over.
	out=$("$PYTHON3" "$LAGPY" lag "$src" "$dst" "$LAG_WRITES" "$gap" \
		"$LAG_TIMEOUT" "$tag" "$SCRATCH/logs/lag-$tag.samples" 2 600)
	read -r p50 p99 max ok to wf <<<"$out"
	[ "${wf:-1}" = 0 ] || echo "  $tool: warm-up writes did not arrive ($out)"
	if [ "${7:-}" = target ]; then
		tgt="p50 <= 5 ms: $(verdict "$p50" 5); p99 <= 25 ms: $(verdict "$p99" 25)"
	fi
	printf '  %s%-34s p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (%d ok, %d timeouts)\n' \
		"$(at)" "$tool" "$p50" "$p99" "$max" "$ok" "$to"
	LAG_ROWS+=("$(printf '%-12s %-36s %8.2f ms %8.2f ms %8.2f ms %5s  %s' \
		"$tree" "$tool" "$p50" "$p99" "$max" "$to" "$tgt")")
	OUTLIERS+=("$(printf '%s %s: slowest writes (index ms): %s' "$tree" "$tool" \
		"$(sort -k2 -rn "$SCRATCH/logs/lag-$tag.samples" | head -5 | tr '\n' ' ')")")
}

burst() {	# TOOL SRC DST
	local out s w
	if ! out=$("$PYTHON3" "$LAGPY" burst "$2" "$3" "$BURST_FILES" "$BURST_DIRS" 300); then
		echo "  $1 burst FAILED: $out"
		BURST_ROWS+=("$(printf '%-36s %s' "$1" "FAILED ($out)")")
		return 0
	fi
	read -r s w <<<"$out"
	printf '  %s%-34s burst %8.3f s (written in %.3f s)\n' "$(at)" "$1" "$s" "$w"
	BURST_ROWS+=("$1|$s|$w")
}

# asyncrep's own complaints, for the notes.
log_check() {	# NAME FILE...
	local name=$1 f
	shift
	for f in "$@"; do
		[ -s "$f" ] || continue
		if grep -qiE 'error|warn|fail|cannot|overflow|refus|retry|reconnect' "$f"; then
			echo "  log lines of $(basename "$f") worth a look:"
			grep -iE 'error|warn|fail|cannot|overflow|refus|retry|reconnect' "$f" |
				sort | uniq -c | sort -rn | head -5 | sed 's/^/  | /'
		fi
	done
}

FSTART=$(now)
at() { printf '[%5.0f s] ' "$(elapsed "$FSTART" "$(now)")"; }
if [ "$PART" != tls ] && [ "$PART" != metrics ] && [ "$PART" != append ] && [ "$PART" != lanes ] && [ "$PART" != inplace ]; then	# the follow measurements
echo
echo "follow part: lag ($LAG_WRITES writes of 4 KiB), burst ($BURST_FILES x 4 KiB in $BURST_DIRS dirs),"
echo "  start-up and RSS on $TREE_FILES files of $TREE_SIZE bytes in $TREE_DIRS directories"
echo "  lsyncd $(lsyncd --version 2>&1 | sed -n 's/^Version: //p' | head -1)"

# --- empty tree ---------------------------------------------------------------
echo
echo "$(at)empty tree:"
mkdir -p "$SCRATCH/e0" "$SCRATCH/e0-dst" "$SCRATCH/e2" "$SCRATCH/e2-dst" \
	"$SCRATCH/el" "$SCRATCH/rsyncd/el"
if start_watch e0 e0 "$SCRATCH/e0" 0; then
	start_follow e0 "$SCRATCH/e0-dst"
	same "$SCRATCH/e0" "$SCRATCH/e0-dst" 60 &&
		lag empty "asyncrep interval 0" "$SCRATCH/e0" "$SCRATCH/e0-dst" 0.01 e0 target &&
		burst "asyncrep interval 0" "$SCRATCH/e0" "$SCRATCH/e0-dst"
	echo "  (watch VmHWM $(hwm "$WATCH_PID") MiB, sync --follow VmHWM $(hwm "$FOLLOW_PID") MiB)"
fi
stop_all
if start_watch e2 e2 "$SCRATCH/e2"; then	# the default interval (200ms)
	start_follow e2 "$SCRATCH/e2-dst"
	same "$SCRATCH/e2" "$SCRATCH/e2-dst" 60 &&
		lag empty "asyncrep interval 200ms (default)" "$SCRATCH/e2" "$SCRATCH/e2-dst" 0.2 e2
fi
stop_all
if start_lsyncd el "$SCRATCH/el" el; then
	same "$SCRATCH/el" "$SCRATCH/rsyncd/el" 60 &&
		lag empty "lsyncd delay 0 (no fsync)" "$SCRATCH/el" "$SCRATCH/rsyncd/el" 0.01 el &&
		burst "lsyncd delay 0 (no fsync)" "$SCRATCH/el" "$SCRATCH/rsyncd/el"
fi
stop_all
log_check empty "$SCRATCH/logs/watch-e0.log" "$SCRATCH/logs/follow-e0.log" \
	"$SCRATCH/logs/watch-e2.log" "$SCRATCH/logs/follow-e2.log"
rm -rf "$SCRATCH/e0" "$SCRATCH/e0-dst" "$SCRATCH/e2" "$SCRATCH/e2-dst" \
	"$SCRATCH/el" "$SCRATCH/rsyncd/el"

# --- large tree: start-up, RSS, lag ----------------------------------------------
echo
echo "$(at)tree of $TREE_FILES files in $TREE_DIRS directories:"
t0=$(now)
"$PYTHON3" "$LAGPY" mktree "$SCRATCH/t" "$TREE_FILES" "$TREE_DIRS" "$TREE_SIZE"
cp -a "$SCRATCH/t" "$SCRATCH/t-dst"
echo "  $(at)created (and copied with cp -a for the standby) in $(elapsed "$t0" "$(now)") s"
TREE="$((TREE_FILES / 1000))k files"
[ "$TREE_FILES" -lt 1000 ] && TREE="$TREE_FILES files"
W_START= W_RSS= W_RESTART= W_RSS2= W_RSS_END= L_START= L_READY= L_RSS= T_SAME=
drop_caches
if start_watch t0 t "$SCRATCH/t" 0; then
	W_START=$STARTUP W_RSS=$(hwm "$WATCH_PID")
	echo "  $(at)asyncrep watch: serving after $W_START s, VmHWM $W_RSS MiB"
	start_follow t "$SCRATCH/t-dst"
	if same "$SCRATCH/t" "$SCRATCH/t-dst" 600 meta; then
		echo "  $(at)asyncrep standby (seeded by cp -a): names, sizes, mtimes identical after $CAUGHT_UP s"
		lag "$TREE" "asyncrep interval 0" "$SCRATCH/t" "$SCRATCH/t-dst" 0.01 t0 target
	fi
	W_RSS_END=$(hwm "$WATCH_PID")
	echo "  $(at)(watch VmHWM now $W_RSS_END MiB, sync --follow VmHWM $(hwm "$FOLLOW_PID") MiB)"
fi
stop_all
# The same spool and standby state: a restart of both sides.
drop_caches
if start_watch t2 t "$SCRATCH/t"; then
	W_RESTART=$STARTUP W_RSS2=$(hwm "$WATCH_PID")
	echo "  $(at)asyncrep watch restarted (existing spool): serving after $W_RESTART s, VmHWM $W_RSS2 MiB"
	start_follow t-2 "$SCRATCH/t-dst"
	if same "$SCRATCH/t" "$SCRATCH/t-dst" 600 meta; then
		T_SAME=yes
		lag "$TREE" "asyncrep interval 200ms (default)" "$SCRATCH/t" "$SCRATCH/t-dst" 0.2 t2
	fi
fi
stop_all
log_check tree "$SCRATCH/logs/watch-t0.log" "$SCRATCH/logs/follow-t.log" \
	"$SCRATCH/logs/watch-t2.log" "$SCRATCH/logs/follow-t-2.log"
# lsyncd's target: asyncrep's standby tree, checked identical above (names,
# sizes, mtimes; the lag files by content), moved rather than copied again.
if [ "$T_SAME" = yes ]; then
	mv "$SCRATCH/t-dst" "$SCRATCH/rsyncd/tl"
else
	rm -rf "$SCRATCH/t-dst"
	cp -a "$SCRATCH/t" "$SCRATCH/rsyncd/tl"
fi
drop_caches
if start_lsyncd tl "$SCRATCH/t" tl; then
	L_START=$STARTUP L_READY=$READY L_RSS=$(hwm "$LSYNCD_PID")
	echo "  $(at)lsyncd: watches set after $L_START s, startup rsync finished after $L_READY s, VmHWM $L_RSS MiB"
	same "$SCRATCH/t" "$SCRATCH/rsyncd/tl" 600 meta &&
		lag "$TREE" "lsyncd delay 0 (no fsync)" "$SCRATCH/t" "$SCRATCH/rsyncd/tl" 0.01 tl
fi
stop_all
# Removing 2 x 100,000 files takes from 20 s to minutes here, depending on
# what else uses the disk: both at once, and timed.
t0=$(now)
rm -rf "$SCRATCH/t" & rm1=$!
rm -rf "$SCRATCH/rsyncd/tl" & rm2=$!
wait "$rm1" "$rm2" || :
echo "  $(at)trees removed in $(elapsed "$t0" "$(now)") s"

# --- the tables -------------------------------------------------------------------
echo
echo "follow part (scale ${BENCH_SCALE:-full}, $(nproc) CPUs; asyncrep applies durably, lsyncd's rsync does not fsync)"
echo
echo "lag: 4 KiB write on the primary -> same bytes on the standby, $LAG_WRITES writes one at a time"
printf '%-12s %-36s %11s %11s %11s %5s  %s\n' tree tool p50 p99 max t/o "target (asyncrep interval 0: p50 <= 5 ms, p99 <= 25 ms)"
for r in "${LAG_ROWS[@]}"; do echo "$r"; done
echo
echo "burst: $BURST_FILES x 4 KiB in $BURST_DIRS new dirs, written at once -> all on the standby"
lsy=
for r in "${BURST_ROWS[@]}"; do
	case $r in lsyncd*"|"*) lsy=$(echo "$r" | cut -d'|' -f2) ;; esac
done
printf '%-36s %10s %12s  %s\n' tool seconds "written in" "target (asyncrep <= 0.5 x lsyncd)"
for r in "${BURST_ROWS[@]}"; do
	case $r in
	*"|"*)
		IFS='|' read -r tool s w <<<"$r"
		tgt=
		case $tool in asyncrep*)
			if [ -n "$lsy" ]; then
				lim=$(awk -v l="$lsy" 'BEGIN { printf "%.3f", l / 2 }')
				tgt="<= $lim s: $(verdict "$s" "$lim") ($(awk -v a="$s" -v l="$lsy" 'BEGIN { printf "%.2f", a / l }') x lsyncd)"
			else
				tgt="(no lsyncd time)"
			fi ;;
		esac
		printf '%-36s %8.3f s %10.3f s  %s\n' "$tool" "$s" "$w" "$tgt" ;;
	*) echo "$r" ;;
	esac
done
echo
echo "start-up with $TREE_FILES files in $TREE_DIRS dirs ($CACHE), peak RSS (VmHWM)"
printf '%-46s %10s %10s  %s\n' "" start-up "VmHWM" "target (asyncrep: start-up <= lsyncd's watches set; RSS <= 16 MiB)"
tgt=
if [ -n "$W_START" ]; then
	[ -n "$L_START" ] && tgt="start-up <= $L_START s: $(verdict "$W_START" "$L_START"); "
	tgt+="RSS <= 16 MiB: $(verdict "$W_RSS" 16)"
fi
printf '%-46s %8s s %6s MiB  %s\n' "asyncrep watch, new spool: until \"serving\"" "${W_START:-?}" "${W_RSS:-?}" "$tgt"
printf '%-46s %8s s %6s MiB\n' "asyncrep watch, restart: until \"serving\"" "${W_RESTART:-?}" "${W_RSS2:-?}"
printf '%-46s %8s s %6s MiB  %s\n' "asyncrep watch after lag runs (RSS only)" "" "${W_RSS_END:-?}" \
	"$( [ -n "$W_RSS_END" ] && echo "RSS <= 16 MiB: $(verdict "$W_RSS_END" 16)")"
printf '%-46s %8s s %6s MiB\n' "lsyncd: until watches set (startup rsync starts)" "${L_START:-?}" "${L_RSS:-?}"
printf '%-46s %8s s %6s MiB\n' "lsyncd: until its startup rsync finished" "${L_READY:-?}" ""
echo
for r in "${OUTLIERS[@]}"; do echo "$r"; done
echo "follow part: $(elapsed "$FSTART" "$(now)") s"
fi	# the follow measurements

if [ "$PART" = all ] || [ "$PART" = tls ]; then	# third part: TLS
# --- tls part: asyncrep over mutual TLS against asyncrep in clear ----------
# Keys made by asyncrep keygen, each side pinning the other's (TLS 1.3,
# the primary checking the standby's key once per connection). The same
# runs as above, each in clear and over TLS:
#   a      initial sync of A_FILES x A_BYTES, one-shot (alternately plain,
#          TLS, plain, TLS: the best of two each, so that a burst of load
#          from elsewhere on the machine does not decide)
#   lag    LAG_WRITES 4 KiB writes at interval 0, on an empty tree
#   burst  BURST_FILES x 4 KiB in BURST_DIRS directories
# Targets: the initial sync at most 10 % slower over TLS, lag p50 over
# TLS at most 2 ms.
TSTART=$(now)
echo
echo "tls part: initial sync of $A_FILES x $(human "$A_BYTES"), lag ($LAG_WRITES writes of 4 KiB), burst ($BURST_FILES x 4 KiB)"
mkdir -p "$SCRATCH/tls"
PIN_P=$("$ASYNCREP" keygen "$SCRATCH/tls/p" 2>/dev/null)
PIN_S=$("$ASYNCREP" keygen "$SCRATCH/tls/s" 2>/dev/null)
TLS_W=(--tls-cert "$SCRATCH/tls/p/cert.pem" --tls-key "$SCRATCH/tls/p/key.pem"
	--tls-trust "$PIN_S")
TLS_S=(--tls-cert "$SCRATCH/tls/s/cert.pem" --tls-key "$SCRATCH/tls/s/key.pem"
	--tls-trust "$PIN_P")
# tls_mode plain|tls: the options of the runs that follow.
tls_mode() {
	if [ "$1" = tls ]; then
		WATCH_OPTS=("${TLS_W[@]}") SYNC_OPTS=("${TLS_S[@]}")
	else
		WATCH_OPTS=() SYNC_OPTS=()
	fi
}
best() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "") a = b; if (b == "") b = a; print (a < b ? a : b) }'; }

echo
echo "$(at)a: initial sync, plain and TLS alternately"
mkdir -p "$SCRATCH/ta"
head -c $((A_FILES * A_BYTES)) /dev/urandom |
	split -a 3 -d -b "$A_BYTES" - "$SCRATCH/ta/file-"
warm_up "$SCRATCH/ta"
A_PLAIN= A_TLS= A_PLAIN_CPU= A_TLS_CPU=
for round in 1 2; do
	for mode in plain tls; do
		tls_mode "$mode"
		run_asyncrep a "$SCRATCH/ta" "$SCRATCH/dst-ta" \
			$((A_FILES * A_BYTES)) "$A_FILES" "asyncrep $mode"
		rm -rf "$SCRATCH/dst-ta"
		if [ "$mode" = tls ]; then
			A_TLS=$(best "$A_TLS" "$SECONDS_RUN") A_TLS_CPU+="$CPU_RUN "
		else
			A_PLAIN=$(best "$A_PLAIN" "$SECONDS_RUN") A_PLAIN_CPU+="$CPU_RUN "
		fi
	done
done
rm -rf "$SCRATCH/ta"

LAG_ROWS=() BURST_ROWS=()
for mode in plain tls; do
	echo
	echo "$(at)empty tree, interval 0, $mode:"
	tls_mode "$mode"
	mkdir -p "$SCRATCH/tl-$mode" "$SCRATCH/tl-$mode-dst"
	sync	# what the run before left to write back is written now
	if start_watch "tl-$mode" "tl-$mode" "$SCRATCH/tl-$mode" 0; then
		start_follow "tl$mode" "$SCRATCH/tl-$mode-dst"
		same "$SCRATCH/tl-$mode" "$SCRATCH/tl-$mode-dst" 60 &&
			lag empty "asyncrep $mode" "$SCRATCH/tl-$mode" \
				"$SCRATCH/tl-$mode-dst" 0.01 "tl-$mode" &&
			burst "asyncrep $mode" "$SCRATCH/tl-$mode" "$SCRATCH/tl-$mode-dst"
	fi
	stop_all
	log_check tls "$SCRATCH/logs/watch-tl-$mode.log" "$SCRATCH/logs/follow-tl$mode.log"
done
# Removed only now: ext4 skips inodes freed in the last minute or so when
# it allocates one (recently_deleted, in find_inode_bit), and the scan
# past 10,000 just-freed inodes took as much CPU as the whole burst and
# slowed the writer of the run that came second 5x.
rm -rf "$SCRATCH/tl-plain" "$SCRATCH/tl-plain-dst" "$SCRATCH/tl-tls" "$SCRATCH/tl-tls-dst"
tls_mode plain

echo
echo "tls part (scale ${BENCH_SCALE:-full}, $(nproc) CPUs, $CACHE; TLS 1.3, pinned keys, both sides on loopback)"
printf '%-40s %12s %12s %9s  %s\n' "" plain TLS "TLS/plain" target
slow=$(awk -v p="$A_PLAIN" -v t="$A_TLS" 'BEGIN { if (p > 0 && t > 0) printf "%.3f", t / p; else print "nan" }')
printf '%-40s %10s s %10s s %9s  %s\n' "a: initial sync, best of 2" "${A_PLAIN:-?}" \
	"${A_TLS:-?}" "$slow" "<= 1.10: $(verdict "$slow" 1.10)"
# cpu_of "W S W S ...": the mean CPU seconds of the watch and the sync.
cpu_of() { echo "$1" | awk '{ for (i = 1; i < NF; i += 2) { w += $i; s += $(i + 1); n++ }
	if (n) printf "%.2f+%.2f", w / n, s / n; else print "?" }'; }
printf '%-40s %12s %12s\n' "a: CPU-s watch+sync, mean of 2" "$(cpu_of "$A_PLAIN_CPU")" \
	"$(cpu_of "$A_TLS_CPU")"
# The floor of what TLS must add: AES-128-GCM (the cipher negotiated)
# over the bytes of a, once on each side, at this CPU's rate.
if command -v openssl >/dev/null 2>&1; then
	aes=$(openssl speed -evp aes-128-gcm -bytes 16384 -seconds 1 2>/dev/null |
		awk '/^AES-128-GCM/ { sub(/k$/, "", $2); printf "%.2f", $2 * 1000 / 1e9 }')
	[ -n "$aes" ] && printf '%-40s %s GB/s (openssl speed): %s CPU-s per side for a\n' \
		"AES-128-GCM on this CPU" "$aes" \
		"$(awk -v g="$aes" -v b=$((A_FILES * A_BYTES)) 'BEGIN { printf "%.2f", b / 1e9 / g }')"
fi
lag_of() {	# MODE FIELD: p50 (4) or p99 (6) of the lag row of MODE
	local r
	for r in "${LAG_ROWS[@]}"; do
		case $r in *"asyncrep $1 "*) echo "$r" | awk -v f="$2" '{ print $f }'; return ;; esac
	done
}
bst_of() {	# MODE: the burst seconds of MODE
	local r
	for r in "${BURST_ROWS[@]}"; do
		case $r in "asyncrep $1|"*) echo "$r" | cut -d'|' -f2; return ;; esac
	done
}
printf '%-40s %9s ms %9s ms %9s  %s\n' "lag p50, 4 KiB write, interval 0" \
	"$(lag_of plain 4)" "$(lag_of tls 4)" "" "TLS <= 2 ms: $(verdict "$(lag_of tls 4)" 2)"
printf '%-40s %9s ms %9s ms\n' "lag p99" "$(lag_of plain 6)" "$(lag_of tls 6)"
printf '%-40s %10s s %10s s\n' "burst of $BURST_FILES x 4 KiB" "$(bst_of plain)" "$(bst_of tls)"
echo "tls part: $(elapsed "$TSTART" "$(now)") s"
fi	# third part

if [ "$PART" = all ] || [ "$PART" = metrics ]; then	# fourth part: metrics
# --- metrics part: lag with metrics scraped every second, against without ---
# ROUNDS rounds (BENCH_METRICS_ROUNDS, default 5), each a run without
# metrics and a run with them, in turn: watch and sync --follow each
# with --metrics-listen, and a scraper (curl) fetching both /metrics
# every second; each run LAG_WRITES timed 4 KiB writes at interval 0, on
# an empty tree, as in the follow part. Prints each run's p50 and p99,
# then the mean and the standard deviation over the rounds of the
# difference (with - without) of each.
MSTART=$(now)
ROUNDS=${BENCH_METRICS_ROUNDS:-5}
command -v curl >/dev/null || { echo "bench: curl is missing (apt-get install -y curl)"; exit 1; }
echo
echo "metrics part: $ROUNDS rounds of $LAG_WRITES writes of 4 KiB, without and with metrics scraped every second"
M_DIFF50=() M_DIFF99=() M_ROWS=()
SCRAPER=
for round in $(seq 1 "$ROUNDS"); do
	declare -A M_P50=() M_P99=()
	for mode in off on; do
		WATCH_OPTS=() SYNC_OPTS=()
		if [ "$mode" = on ]; then
			MP=$(free_port) MS=$(free_port)
			WATCH_OPTS=(--metrics-listen "127.0.0.1:$MP")
			SYNC_OPTS=(--metrics-listen "127.0.0.1:$MS")
		fi
		d="$SCRATCH/m-$mode"
		rm -rf "$d" "$d-dst" "$SCRATCH/spool-m-$mode" "$SCRATCH/state-m$mode"
		mkdir -p "$d" "$d-dst" && echo seed >"$d/seed"
		if start_watch "m-$mode-$round" "m-$mode" "$d" 0; then
			start_follow "m$mode" "$d-dst"
			if [ "$mode" = on ]; then
				( while :; do
					curl -sf -o /dev/null "http://127.0.0.1:$MP/metrics"
					curl -sf -o /dev/null "http://127.0.0.1:$MS/metrics"
					sleep 1
				done ) &
				SCRAPER=$!
			fi
			if same "$d" "$d-dst" 60; then
				out=$("$PYTHON3" "$LAGPY" lag "$d" "$d-dst" "$LAG_WRITES" 0.01 \
					"$LAG_TIMEOUT" "m$mode$round" - 2 600)
				read -r p50 p99 max ok to wf <<<"$out"
				M_P50[$mode]=$p50 M_P99[$mode]=$p99
				printf '  round %d, metrics %-3s  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (%d ok, %d timeouts)\n' \
					"$round" "$mode" "$p50" "$p99" "$max" "$ok" "$to"
			fi
			stop_pid "$SCRAPER"; SCRAPER=
		fi
		stop_all
	done
	if [ -n "${M_P50[on]:-}" ] && [ -n "${M_P50[off]:-}" ]; then
		M_DIFF50+=("$(awk -v a="${M_P50[on]}" -v b="${M_P50[off]}" 'BEGIN { print a - b }')")
		M_DIFF99+=("$(awk -v a="${M_P99[on]}" -v b="${M_P99[off]}" 'BEGIN { print a - b }')")
		M_ROWS+=("${M_P50[off]} ${M_P50[on]} ${M_P99[off]} ${M_P99[on]}")
	fi
	unset M_P50 M_P99
done
rm -rf "$SCRATCH/m-off" "$SCRATCH/m-off-dst" "$SCRATCH/m-on" "$SCRATCH/m-on-dst"
# mean_sd VALUES...: "mean sd" (sample standard deviation)
mean_sd() {
	[ $# -gt 0 ] || { echo "nan nan"; return; }
	printf '%s\n' "$@" | awk '{ s += $1; q += $1 * $1; n++ }
		END { if (n == 0) { print "nan nan"; exit }
		      m = s / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0
		      printf "%.2f %.2f", m, (v > 0 ? sqrt(v) : 0) }'
}
echo
echo "metrics part (scale ${BENCH_SCALE:-full}, $(nproc) CPUs; interval 0, empty tree, loopback)"
printf '%-44s %10s %10s\n' "" "mean" "sd"
read -r m50 s50 <<<"$(mean_sd "${M_DIFF50[@]}")"
read -r m99 s99 <<<"$(mean_sd "${M_DIFF99[@]}")"
read -r a50 b50 <<<"$(mean_sd $(for r in "${M_ROWS[@]}"; do echo "$r" | cut -d" " -f1; done))"
read -r c50 d50 <<<"$(mean_sd $(for r in "${M_ROWS[@]}"; do echo "$r" | cut -d" " -f2; done))"
printf '%-44s %7s ms %7s ms\n' "lag p50 without metrics" "$a50" "$b50"
printf '%-44s %7s ms %7s ms\n' "lag p50 with metrics, scraped every 1 s" "$c50" "$d50"
printf '%-44s %7s ms %7s ms\n' "p50 difference (with - without), per round" "$m50" "$s50"
printf '%-44s %7s ms %7s ms\n' "p99 difference (with - without), per round" "$m99" "$s99"
echo "metrics part: $(elapsed "$MSTART" "$(now)") s"
fi	# fourth part

if [ "$PART" = all ] || [ "$PART" = append ]; then	# fifth part: appends
# --- append part: a big file that grows ----------------------------------------
ASTART=$(now)
APPEND_MB=${BENCH_APPEND_MB:-$((1000 / div))}
APPEND_COUNT=${BENCH_APPEND_COUNT:-50}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
echo
echo "append part: a ${APPEND_MB} MB file, $APPEND_COUNT appends of 100 bytes, then 20/s for 20 s"
mkdir -p "$SCRATCH/ap" "$SCRATCH/ap-dst" "$SCRATCH/rsyncd/ap"
head -c $((APPEND_MB * 1000000)) /dev/urandom >"$SCRATCH/ap/big"
AP_ROWS=()
if start_watch ap ap "$SCRATCH/ap" 0; then
	start_follow ap "$SCRATCH/ap-dst"
	if same "$SCRATCH/ap" "$SCRATCH/ap-dst" 600; then
		# The source's own writeback (it was just written, on the same
		# file system) must not land in the first append's fsync.
		sync
		ino0=$(stat -c %i "$SCRATCH/ap-dst/big")
		for run in 1 2; do
			r=$("$PYTHON3" "$LAGPY" appendlag "$SCRATCH/ap/big" \
				"$SCRATCH/ap-dst/big" "$APPEND_COUNT" 100 10)
			AP_ROWS+=("$(printf '%-40s %s' "asyncrep append lag run $run" "$r")")
		done
		w0=$(cpu_ticks "$WATCH_PID") s0=$(cpu_ticks "$FOLLOW_PID")
		slag=$("$PYTHON3" "$LAGPY" steady "$SCRATCH/ap/big" \
			"$SCRATCH/ap-dst/big" 20 20 60) || :
		w1=$(cpu_ticks "$WATCH_PID") s1=$(cpu_ticks "$FOLLOW_PID")
		tck=$(getconf CLK_TCK)
		cpu=$(awk -v a=$((w1 - w0 + s1 - s0)) -v t="$tck" 'BEGIN { printf "%.2f", a / t }')
		AP_ROWS+=("$(printf '%-40s lag %s s, watch + sync %s CPU-s (watch %s, sync %s ticks)' \
			"asyncrep 20/s for 20 s" "$slag" "$cpu" $((w1 - w0)) $((s1 - s0)))")
		AP_ROWS+=("$(printf '%-40s %s' "standby file kept its inode" \
			"$([ "$(stat -c %i "$SCRATCH/ap-dst/big")" = "$ino0" ] && echo yes || echo NO)")")
	fi
	stop_all
fi
cp "$SCRATCH/ap/big" "$SCRATCH/rsyncd/ap/big"
r=$("$PYTHON3" "$LAGPY" appendlag "$SCRATCH/ap/big" - "$APPEND_COUNT" 100 10 \
	"rsync://127.0.0.1:$RSYNC_PORT/bench/ap/big")
AP_ROWS+=("$(printf '%-40s %s' "rsync --append --inplace per append" "$r")")
echo "append part (p50 p99 max ms, ok, timeouts; targets p50 <= 20 ms, p99 <= 50 ms, lag <= 0.5 s, <= 2 CPU-s)"
for r in "${AP_ROWS[@]}"; do echo "  $r"; done
rm -rf "$SCRATCH/ap" "$SCRATCH/ap-dst" "$SCRATCH/rsyncd/ap"
echo "append part: $(elapsed "$ASTART" "$(now)") s"
fi	# fifth part

if [ "$PART" = all ] || [ "$PART" = lanes ]; then	# sixth part: lanes
# --- lanes part: a small file behind a big one --------------------------------
# For each tool, with a big file already replicated (the standby seeded
# with cp -a): BENCH_LANE_REPS times a 100-byte fsynced append to it,
# then a 10-byte new file; BENCH_LANE_REPS times 1 MiB rewritten in its
# middle (fsynced), then a 10-byte new file; then BENCH_LANE_REPS times a new big file
# renamed into the tree, then a 10-byte new file. Each time: from before
# the big change until the small file is on the standby; the next
# repetition waits until the big file is there too (lag.py behind).
# Target: p99 <= 50 ms while the big file is sent.
NSTART=$(now)
LANE_MB=${BENCH_LANE_MB:-$((1000 / div))}
LANE_REPS=${BENCH_LANE_REPS:-5}
echo
echo "lanes part: a 10-byte new file right after (a) a 100-byte append to a replicated"
echo "  $LANE_MB MB file, (b) 1 MiB rewritten in its middle, (c) a new $LANE_MB MB file;"
echo "  $LANE_REPS times each"
mkdir -p "$SCRATCH/ln-stage"
dd if=/dev/urandom of="$SCRATCH/ln-stage/big0" bs=1000000 count="$LANE_MB" 2>/dev/null
LANE_ROWS=()
lane_rows() {	# TOOL SRC DST TAG
	local mode out p50 p99 max ok to tgt
	for mode in append rewrite new; do
		out=$("$PYTHON3" "$LAGPY" behind "$2" "$3" "$mode" "$SCRATCH/ln-stage" \
			"$LANE_REPS" 600 "$SCRATCH/logs/behind-$4-$mode.samples" \
			2>>"$SCRATCH/logs/behind-$4.log")
		read -r p50 p99 max ok to <<<"$out"
		tgt="p99 <= 50 ms: $(verdict "$p99" 50)"
		printf '  %s%-34s %-6s p50 %9.2f ms  p99 %9.2f ms  (%d ok, %d timeouts)\n' \
			"$(at)" "$1" "$mode" "$p50" "$p99" "$ok" "$to"
		LANE_ROWS+=("$(printf '%-8s %-34s %9.2f ms %9.2f ms %9.2f ms %5s  %s' \
			"$mode" "$1" "$p50" "$p99" "$max" "$to" "$tgt")")
	done
}
lane_seed() {	# DIR...: the big file, replicated
	local d
	for d in "$@"; do
		mkdir -p "$d" && cp -a "$SCRATCH/ln-stage/big0" "$d/big"
	done
}
for ln in 1 0; do
	rm -rf "$SCRATCH/ln$ln" "$SCRATCH/ln$ln-dst"
	lane_seed "$SCRATCH/ln$ln" &&
		cp -a "$SCRATCH/ln$ln" "$SCRATCH/ln$ln-dst"
	if [ "$ln" = 1 ]; then
		SYNC_OPTS=(--lane-min-size 8M) name="asyncrep, lanes (8M)"
	else
		SYNC_OPTS=(--lane-min-size 0) name="asyncrep, no lanes"
	fi
	if start_watch "ln$ln" "ln$ln" "$SCRATCH/ln$ln" 0; then
		start_follow "ln$ln" "$SCRATCH/ln$ln-dst"
		# The seed was just written (cp -a, on the same file system):
		# without a sync the first append's own fsync wrote it back,
		# 0.4-0.6 s of a 1000 MB seed in the first sample, before the
		# small file was even written (as in the append part).
		same "$SCRATCH/ln$ln" "$SCRATCH/ln$ln-dst" 600 meta && sync &&
			lane_rows "$name" "$SCRATCH/ln$ln" "$SCRATCH/ln$ln-dst" "ln$ln"
	fi
	stop_all
	log_check lanes "$SCRATCH/logs/watch-ln$ln.log" "$SCRATCH/logs/follow-ln$ln.log"
	rm -rf "$SCRATCH/ln$ln" "$SCRATCH/ln$ln-dst"
done
SYNC_OPTS=()
lane_seed "$SCRATCH/lnl" "$SCRATCH/rsyncd/lnl"
if start_lsyncd lnl "$SCRATCH/lnl" lnl; then
	same "$SCRATCH/lnl" "$SCRATCH/rsyncd/lnl" 600 meta && sync &&
		lane_rows "lsyncd delay 0 (no fsync)" "$SCRATCH/lnl" "$SCRATCH/rsyncd/lnl" lnl
fi
stop_all
rm -rf "$SCRATCH/lnl" "$SCRATCH/rsyncd/lnl" "$SCRATCH/ln-stage"
echo
echo "lanes part ($(nproc) CPUs, $LANE_MB MB big file, $LANE_REPS repetitions): time until the small file is on the standby"
printf '%-8s %-34s %12s %12s %12s %5s  %s\n' "" "" p50 p99 max lost target
for r in "${LANE_ROWS[@]}"; do echo "$r"; done
echo "lanes part: $(elapsed "$NSTART" "$(now)") s"
fi	# sixth part
if [ "$PART" = all ] || [ "$PART" = inplace ]; then	# seventh part: in place
# --- inplace part: 1 MiB overwritten in the middle of a big file ------------------
IPSTART=$(now)
IP_MB=${BENCH_INPLACE_MB:-$((1000 / div))}
IP_REPS=${BENCH_INPLACE_REPS:-3}
IP_SIZE=1048576
IP_ROWS=() IP_MOUNTED=
echo
echo "inplace part: 1 MiB overwritten in the middle of a $IP_MB MB file replicated by"
echo "  asyncrep, one-shot and following, against rsync of the same change ($IP_REPS repetitions, warm cache)"
mkdir -p "$SCRATCH/ip"
head -c $((IP_MB * 1000000)) /dev/urandom >"$SCRATCH/ip/big"
# stats NAME VALUES...: min, median and max of the seconds.
ip_stats() {
	local name=$1; shift
	IP_ROWS+=("$(printf '%s\n' "$@" | sort -n | awk -v n="$name" '
		{ v[NR] = $1 }
		END { if (NR == 0) { printf "%-44s n/a", n; exit }
		      printf "%-44s %8.3f %8.3f %8.3f  (%d runs)", n, v[1],
		      v[int((NR + 1) / 2)], v[NR], NR }')")
}
# ip_rsync DIR [options]: one timed rsync -a of the change to the daemon.
ip_rsync() {
	local d=$1 t0; shift
	sync	# no tool pays for another's dirty pages
	t0=$(now)
	timeout 600 rsync -a --stats "$@" "$SCRATCH/ip/" \
		"rsync://127.0.0.1:$RSYNC_PORT/bench/$d/" >"$SCRATCH/rsync.log" 2>&1 ||
		{ echo "  rsync $* FAILED"; tail -3 "$SCRATCH/rsync.log"; return 1; }
	elapsed "$t0" "$(now)"
	cmp -s "$SCRATCH/ip/big" "$SCRATCH/rsyncd/$d/big" || echo "  MISMATCH: rsync $* to $d" >&2
}
# ip_fs FS: the standby's copy and rsync's on FS (local: beside the
# source; xfs: a loop-mounted XFS image under the rsync module).
ip_fs() {
	local fs=$1 base=ip-$1 dst st one=() fol=() rp=() ri=() rf=() off t0 t r how wire
	dst="$SCRATCH/rsyncd/$base/asyncrep"
	st="$SCRATCH/state-ip$fs"
	mkdir -p "$SCRATCH/rsyncd/$base"
	for r in plain inplace fsync; do
		cp -a "$SCRATCH/ip" "$SCRATCH/rsyncd/$base/$r"
	done
	start_watch "ip$fs" "ip$fs" "$SCRATCH/ip" 0 || return 0
	# Replicated by asyncrep, so both sides hold its block lists.
	"$ASYNCREP" sync --data-dir "$dst" --state-dir "$st" \
		--primary "127.0.0.1:$WATCH_PORT" "${SYNC_OPTS[@]}" 2>"$SCRATCH/logs/sync-ip$fs.log" ||
		{ echo "  the first sync FAILED"; stop_all; return 0; }
	for rep in $(seq 1 "$IP_REPS"); do
		# one-shot: the change, then one sync
		off=$((IP_MB * 1000000 / 2 + rep * 3 * IP_SIZE + 12345))
		"$PYTHON3" "$LAGPY" overwrite "$SCRATCH/ip/big" "$off" "$IP_SIZE"
		sync
		t0=$(now)
		"$ASYNCREP" sync -v --data-dir "$dst" --state-dir "$st" \
			--primary "127.0.0.1:$WATCH_PORT" "${SYNC_OPTS[@]}" 2>"$SCRATCH/ip-sync.log" ||
			echo "  asyncrep sync FAILED"
		one+=("$(elapsed "$t0" "$(now)")")
		cmp -s "$SCRATCH/ip/big" "$dst/big" || echo "  MISMATCH: asyncrep one-shot"
		how=$(sed -n 's/.*changed blocks into a clone (\(.*\))/\1/p; s/.*changed blocks \(written in place\), through the journal/\1/p' \
			"$SCRATCH/ip-sync.log")
		wire=$(sed -n 's/.*sent \([0-9][0-9]*\) bytes *received \([0-9][0-9]*\) bytes.*/\1 \2/p' \
			"$SCRATCH/ip-sync.log" | tail -1 | awk '{ print $1 + $2 }')
		cat "$SCRATCH/ip-sync.log" >>"$SCRATCH/logs/sync-ip$fs.log"
		rp+=("$(ip_rsync "$base/plain")") || :
		ri+=("$(ip_rsync "$base/inplace" --inplace)") || :
		[ "$RSYNC_FSYNC" = yes ] && rf+=("$(ip_rsync "$base/fsync" --fsync)")
		# following: the change, timed until the standby's copy holds it
		start_follow "ip$fs-$rep" "$dst"
		wait_log "$FOLLOW_LOG" 'following' 300 "$FOLLOW_PID" "$(now)" || :
		sync
		t=$("$PYTHON3" "$LAGPY" inplacelag "$SCRATCH/ip/big" "$dst/big" \
			$((off + IP_SIZE + 54321)) "$IP_SIZE" 600) || :
		fol+=("$t")
		stop_pid "$FOLLOW_PID"; FOLLOW_PID=
		cmp -s "$SCRATCH/ip/big" "$dst/big" || echo "  MISMATCH: asyncrep following"
		rp+=("$(ip_rsync "$base/plain")") || :
		ri+=("$(ip_rsync "$base/inplace" --inplace)") || :
		[ "$RSYNC_FSYNC" = yes ] && rf+=("$(ip_rsync "$base/fsync" --fsync)")
		printf '  %s run %d: asyncrep one-shot %s s (%s, %s on the wire), following %s s; rsync -a %s s, --inplace %s s\n' \
			"$fs" "$rep" "${one[-1]}" "${how:-no clone}" "$(human "${wire:-n/a}")" "$t" "${rp[-2]}" "${ri[-2]}"
	done
	stop_all
	ip_stats "$fs: asyncrep one-shot" "${one[@]}"
	ip_stats "$fs: asyncrep following (write to visible)" "${fol[@]}"
	ip_stats "$fs: rsync -a" "${rp[@]}"
	ip_stats "$fs: rsync -a --inplace" "${ri[@]}"
	[ "$RSYNC_FSYNC" = yes ] && ip_stats "$fs: rsync -a --fsync" "${rf[@]}"
	IP_ROWS+=("$(printf '%-44s one-shot %s, following %s of rsync -a (medians)' "$fs: asyncrep / rsync -a" \
		"$(printf '%s\n' "${one[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }' |
			awk -v r="$(printf '%s\n' "${rp[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')" \
			'{ printf "%.2f", (r > 0 ? $1 / r : 0) }')" \
		"$(printf '%s\n' "${fol[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }' |
			awk -v r="$(printf '%s\n' "${rp[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')" \
			'{ printf "%.2f", (r > 0 ? $1 / r : 0) }')")")
	rm -rf "$SCRATCH/rsyncd/$base/"* "$st"
}
ip_fs local
# The same with inplace = big: without reflinks, the changed blocks are
# written into the copy through the journal, instead of a clone.
SYNC_OPTS=(--inplace big --inplace-min-size 0)
ip_fs journal
SYNC_OPTS=()
# The same with the standby (and rsync's copies) on XFS, which has reflinks.
if [ "$(id -u)" -eq 0 ] && command -v mkfs.xfs >/dev/null 2>&1 &&
	mkdir -p "$SCRATCH/rsyncd/ip-xfs" &&
	truncate -s $((IP_MB * 6 + 600))M "$SCRATCH/ip-xfs.img" &&
	mkfs.xfs -q "$SCRATCH/ip-xfs.img" &&
	mount -o loop "$SCRATCH/ip-xfs.img" "$SCRATCH/rsyncd/ip-xfs"; then
	IP_MOUNTED=$SCRATCH/rsyncd/ip-xfs
	ip_fs xfs
	umount "$IP_MOUNTED" && IP_MOUNTED=
else
	echo "  (no XFS row: needs root, mkfs.xfs and a loop device)"
fi
rm -rf "$SCRATCH/ip" "$SCRATCH/ip-xfs.img" "$SCRATCH/rsyncd/ip-"*
echo "inplace part (seconds: min median max; targets: asyncrep <= 0.5 x rsync, <= 0.25 x with reflinks)"
for r in "${IP_ROWS[@]}"; do echo "  $r"; done
echo "inplace part: $(elapsed "$IPSTART" "$(now)") s"
fi	# seventh part
fi	# second part

echo
echo "total bench time: $(elapsed "$START" "$(now)") s"

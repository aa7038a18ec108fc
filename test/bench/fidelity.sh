#!/bin/sh
# fidelity.sh: the fidelity rows of `make bench` (BENCH_ONLY=fidelity
# runs only these).
#
#   sh test/bench/fidelity.sh /path/to/asyncrep
#
#   x  initial sync of 50,000 files of 4 KiB in 500 directories, each
#      with a user. xattr and an access ACL (inherited from a default ACL
#      on its directory): asyncrep (watch + one-shot sync, durable)
#      against rsync -aHAX --fsync (local, no network)
#   s  initial sync of a 10 GB sparse file holding 100 MB of data in 100
#      extents: asyncrep against rsync -S (local)
# Columns: wall seconds (the best of BENCH_RUNS runs, default 3, and the
# spread: the worst minus the best), bytes on the wire (asyncrep: the
# "sent N bytes  received M bytes" line of sync -v; rsync: --stats
# "Total bytes sent" + "received", between its two local processes),
# KiB the copy takes on disk. BENCH_SCALE=small divides every size by 20;
# BENCH_FIDELITY=x or s runs one scenario only.
# Each run checks its copy with rsync -aHAXS --checksum --dry-run -i.
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi
set -euo pipefail

ASYNCREP=${1:?usage: fidelity.sh /path/to/asyncrep}
case $ASYNCREP in /*) ;; *) ASYNCREP=$(pwd)/$ASYNCREP ;; esac
PYTHON3=${PYTHON3:-python3}
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
for t in rsync setfacl; do
	command -v "$t" >/dev/null || { echo "bench: $t is missing"; exit 1; }
done

div=1
[ "${BENCH_SCALE:-full}" = small ] && div=20
X_FILES=$((50000 / div))
X_DIRS=$((500 / div))
S_GB=$((10000 / div))		# MB of the sparse file's size
S_DATA=$((100 / div))		# MB of data in it
RUNS=${BENCH_RUNS:-3}
ONLY=${BENCH_FIDELITY:-all}

SCRATCH=$(mktemp -d "${BENCH_DIR:-/tmp}/asyncrep-bench-fidelity.XXXXXX")
WATCH_PID=
cleanup() {
	[ -n "$WATCH_PID" ] && kill -TERM "$WATCH_PID" 2>/dev/null && wait "$WATCH_PID" 2>/dev/null
	rm -rf "$SCRATCH"
}
trap cleanup EXIT
cd "$SCRATCH"

IP=127.0.0.1
PORT=$("$PYTHON3" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

start_watch() {
	rm -rf spool
	"$ASYNCREP" watch --data-dir "$SCRATCH/$1" --spool-dir "$SCRATCH/spool" \
		--listen "$IP:$PORT" --interval 0 >watch.log 2>&1 &
	WATCH_PID=$!
	for _ in $(seq 200); do
		grep -q serving watch.log && return 0
		sleep 0.05
	done
	cat watch.log; exit 1
}
stop_watch() {
	kill -TERM "$WATCH_PID"; wait "$WATCH_PID" || true; WATCH_PID=
}

judge() {
	out=$(rsync -aHAXS --checksum --dry-run -i --delete "$1/" "$2/")
	[ -z "$out" ] || { echo "bench: $2 differs from $1:"; echo "$out" | head; exit 1; }
}

# run_asyncrep SRC: seconds and wire bytes of one initial sync; the copy
# stays in a.dst.
run_asyncrep() {
	rm -rf a.dst a.state
	sync
	t0=$(now)
	"$ASYNCREP" sync -v --data-dir "$SCRATCH/a.dst" --state-dir "$SCRATCH/a.state" \
		--primary "$IP:$PORT" >a.out 2>&1
	t1=$(now)
	wire=$(sed -n 's/.*sent \([0-9]*\) bytes  received \([0-9]*\) bytes.*/\1 \2/p' a.out |
		awk '{ print $1 + $2 }')
	echo "$(secs "$t0" "$t1") ${wire:-n/a}"
}

# run_rsync SRC OPTS...: the same for a local rsync.
run_rsync() {
	src=$1; shift
	rm -rf r.dst
	sync
	t0=$(now)
	rsync "$@" --stats "$src/" r.dst/ >r.out
	t1=$(now)
	wire=$(awk -F: '/^Total bytes sent/ { gsub(/[ ,]/, "", $2); s = $2 }
		/^Total bytes received/ { gsub(/[ ,]/, "", $2); r = $2 }
		END { print s + r }' r.out)
	echo "$(secs "$t0" "$t1") $wire"
}

# best_of CMD...: "best spread wire" over RUNS runs.
best_of() {
	local best= worst= wire= r
	for _ in $(seq "$RUNS"); do
		r=$("$@")
		set -- "$@"
		t=${r%% *}; wire=${r#* }
		if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
		if [ -z "$worst" ] || awk -v a="$t" -v b="$worst" 'BEGIN { exit !(a > b) }'; then worst=$t; fi
	done
	echo "$best $(secs "$best" "$worst") $wire"
}

row() { printf '%-4s %-28s %9s %8s %14s %12s\n' "$@"; }

echo "fidelity rows ($(nproc) cores, scale ${BENCH_SCALE:-full}, best of $RUNS runs)"
row scen tool seconds spread wire-bytes disk-KiB

# x: many small files with xattrs and ACLs.
if [ "$ONLY" = all ] || [ "$ONLY" = x ]; then
mkdir x.src
"$PYTHON3" - "$X_FILES" "$X_DIRS" <<'EOF'
import os, sys
files, dirs = int(sys.argv[1]), int(sys.argv[2])
for d in range(dirs):
    os.mkdir("x.src/d%03d" % d)
    os.system("setfacl -d -m u:1234:rw,g:2345:r x.src/d%03d" % d)
for i in range(files):
    p = "x.src/d%03d/f%05d" % (i % dirs, i)
    with open(p, "wb") as f:
        f.write(os.urandom(4096))
    os.setxattr(p, "user.tag", b"file-%d" % i)
EOF
start_watch x.src
r=$(best_of run_asyncrep x.src); judge x.src a.dst
row x "asyncrep sync" $r "$(du -sk a.dst | cut -f1)"
stop_watch
fs=--fsync
rsync --help 2>/dev/null | grep -q -- '--fsync' || fs=
r=$(best_of run_rsync x.src -aHAX $fs); judge x.src r.dst
row x "rsync -aHAX $fs" $r "$(du -sk r.dst | cut -f1)"
rm -rf x.src a.dst r.dst
fi

# s: a big sparse file with some data.
[ "$ONLY" = all ] || [ "$ONLY" = s ] || exit 0
truncate -s "${S_GB}M" s.src.file
mkdir s.src && mv s.src.file s.src/sparse
step=$((S_GB / 100))
for i in $(seq 0 99); do
	dd if=/dev/urandom of=s.src/sparse bs=$((S_DATA * 10))K count=1 \
		seek=$((i * step * 1024 / (S_DATA * 10))) conv=notrunc 2>/dev/null
done
start_watch s.src
r=$(best_of run_asyncrep s.src); judge s.src a.dst
row s "asyncrep sync" $r "$(du -sk a.dst | cut -f1)"
stop_watch
r=$(best_of run_rsync s.src -aS); judge s.src r.dst
row s "rsync -aS" $r "$(du -sk r.dst | cut -f1)"
echo "(s: ${S_GB} MB apparent, $(du -sk s.src | cut -f1) KiB on the primary)"

#!/bin/bash
# wan.sh: asyncrep over a rate-limited path, against rsync (run by `make
# bench`, after bench.sh and rescue.sh).
#
#   bash test/bench/wan.sh /path/to/asyncrep
#
# As root, it makes a network namespace joined to this one by a veth pair
# whose two ends are shaped with tc's tbf to BENCH_WAN_RATE (default
# 200mbit): the primary and an rsync daemon listen on the outer end
# (10.213.9.1), the standby and the rsync client run inside (10.213.9.2).
# Without root, or without tbf, it says so and exits 0.
#
# Part 1, compression: a tree of text-like data (BENCH_WAN_MB, default
# 2000 MB; BENCH_SCALE=small divides it by 20), replicated by asyncrep
# with and without compress = zstd, and by rsync -a with and without
# -z --compress-choice=zstd: seconds and bytes on the wire.
# Part 2, bwlimit: a file of random data (BENCH_BW_MB, default 64 MB)
# with the standby's bwlimit at BENCH_BW_RATE (default 4M, bytes per
# second) and then the primary's, with two standbys sharing it: the rate
# each achieved, against rsync --bwlimit at the same rate.
#
# The veth, the namespace, the daemons and the scratch directory are
# removed at the end.
set -euo pipefail

ASYNCREP=${1:?usage: wan.sh /path/to/asyncrep}
case $ASYNCREP in /*) ;; *) ASYNCREP=$(pwd)/$ASYNCREP ;; esac
PYTHON3=${PYTHON3:-python3}
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

div=1
[ "${BENCH_SCALE:-full}" = small ] && div=20
WAN_MB=$((${BENCH_WAN_MB:-2000} / div))
WAN_RATE=${BENCH_WAN_RATE:-200mbit}
BW_MB=$((${BENCH_BW_MB:-64} / div))
BW_RATE=${BENCH_BW_RATE:-4M}

echo "== wan: asyncrep over a path shaped to $WAN_RATE (tc tbf), against rsync"
if [ "$(id -u)" -ne 0 ]; then
	echo "  skipped: needs root (a network namespace and tc)"
	exit 0
fi
for t in ip tc rsync; do
	command -v "$t" >/dev/null || { echo "  skipped: $t is missing"; exit 0; }
done

NS=arwan$$
A=10.213.9.1 B=10.213.9.2
SCRATCH=$(mktemp -d "${BENCH_DIR:-/tmp}/asyncrep-wan.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$p" 2>/dev/null || :; done
	wait 2>/dev/null || :
	ip link del "v$NS" 2>/dev/null || :
	ip netns del "$NS" 2>/dev/null || :
	rm -rf "$SCRATCH"
}
trap cleanup EXIT

ip netns add "$NS"
ip link add "v$NS" type veth peer name eth0 netns "$NS"
ip addr add "$A/24" dev "v$NS"
ip link set "v$NS" up
ip -n "$NS" addr add "$B/24" dev eth0
ip -n "$NS" link set eth0 up
ip -n "$NS" link set lo up
if ! tc qdisc add dev "v$NS" root tbf rate "$WAN_RATE" burst 256k latency 100ms ||
	! tc -n "$NS" qdisc add dev eth0 root tbf rate "$WAN_RATE" burst 256k latency 100ms; then
	echo "  skipped: tc tbf is not available in this kernel"
	exit 0
fi
inside() { ip netns exec "$NS" "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
free_port() {
	"$PYTHON3" -c 'import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$A"
}
wait_port() {
	local i
	for i in $(seq 1 200); do
		"$PYTHON3" -c 'import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.2)' "$A" "$1" \
			2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SCRATCH/token"
chmod 600 "$SCRATCH/token"
PORT=$(free_port)
RPORT=$(free_port)
cat >"$SCRATCH/rsyncd.conf" <<EOF
use chroot = no
uid = root
gid = root
read only = false
[bench]
	path = $SCRATCH/rsyncd
EOF
mkdir -p "$SCRATCH/rsyncd"
rsync --daemon --no-detach --config="$SCRATCH/rsyncd.conf" --address="$A" \
	--port="$RPORT" >"$SCRATCH/rsyncd.log" 2>&1 &
PIDS+=($!)

# start_watch SRC [options]: a primary on A:PORT, tls off with a token.
start_watch() {
	local src=$1
	shift
	rm -rf "$SCRATCH/spool"
	"$ASYNCREP" watch --data-dir "$src" --spool-dir "$SCRATCH/spool" \
		--listen "$A:$PORT" --tls off --auth-token-file "$SCRATCH/token" \
		"$@" >"$SCRATCH/watch.log" 2>&1 &
	WATCH=$!
	PIDS+=("$WATCH")
	wait_port "$PORT" || { cat "$SCRATCH/watch.log"; exit 1; }
}
stop_watch() { kill "$WATCH" 2>/dev/null || :; wait "$WATCH" 2>/dev/null || :; }

# sync_in NAME [options]: a one-shot sync inside the namespace into
# $SCRATCH/NAME; prints "SECONDS WIREBYTES".
sync_in() {
	local name=$1 t0 t1 wire
	shift
	rm -rf "$SCRATCH/$name" "$SCRATCH/$name.state"
	t0=$(now)
	inside "$ASYNCREP" sync -v --data-dir "$SCRATCH/$name" \
		--state-dir "$SCRATCH/$name.state" --primary "$A:$PORT" \
		--auth-token-file "$SCRATCH/token" "$@" >"$SCRATCH/$name.log" 2>&1 ||
		{ tail -3 "$SCRATCH/$name.log"; echo "FAILED 0"; return 0; }
	t1=$(now)
	wire=$(sed -n 's/.*sent \([0-9]*\) bytes *received \([0-9]*\) bytes.*/\1 \2/p' \
		"$SCRATCH/$name.log" | tail -1 | awk '{ print $1 + $2 }')
	echo "$(elapsed "$t0" "$t1") ${wire:-0}"
}

# rsync_in NAME [options]: rsync -a inside the namespace to the daemon;
# prints "SECONDS WIREBYTES".
rsync_in() {
	local name=$1 src=$2 t0 t1 wire
	shift 2
	rm -rf "$SCRATCH/rsyncd/$name"
	t0=$(now)
	inside rsync -a --stats "$@" "$src/" "rsync://$A:$RPORT/bench/$name/" \
		>"$SCRATCH/$name.rsync.log" 2>&1 ||
		{ tail -3 "$SCRATCH/$name.rsync.log"; echo "FAILED 0"; return 0; }
	t1=$(now)
	wire=$(awk -F: '/^Total bytes (sent|received)/ { gsub(/[ ,]/, "", $2); n += $2 }
		END { print n + 0 }' "$SCRATCH/$name.rsync.log")
	echo "$(elapsed "$t0" "$t1") $wire"
}

same() { diff -rq "$1" "$2" >/dev/null && echo same || echo DIFFERENT; }

row() {	# tool seconds wire bytes verdict
	printf '  %-34s %8ss  %9s MB on the wire  %7s MB/s of data  %s\n' "$1" "$2" \
		"$(mb "$3")" "$(awk -v b="$4" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? b / s / 1e6 : 0) }')" "$5"
}

# --- part 1: compression ------------------------------------------------------
echo "-- compression: $WAN_MB MB of text-like data, initial sync (the standby pushes to the rsync daemon: same direction)"
mkdir -p "$SCRATCH/text"
"$PYTHON3" - "$SCRATCH/text" "$WAN_MB" <<'EOF'
# Log-like lines: a 64 MB corpus of varied lines (bigger than zstd's
# window), and files made of random 64 KiB slices of it.
import os, random, sys
root, mb = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
words = ("alpha beta gamma delta replica standby primary journal durable fsync "
         "rename spool generation position batch compare manifest INFO WARN "
         "ERROR GET POST /var/log/app /srv/data user=root status=200 status=404").split()
lines = []
size = 0
while size < 64 << 20:
    l = "2026-12-01T%02d:%02d:%02d.%06dZ %s %d %s\n" % (
        rnd.randrange(24), rnd.randrange(60), rnd.randrange(60), rnd.randrange(10**6),
        " ".join(rnd.choice(words) for _ in range(rnd.randrange(4, 14))),
        rnd.randrange(10**9), "%08x" % rnd.getrandbits(32))
    lines.append(l)
    size += len(l)
corpus = "".join(lines).encode()
n = max(1, mb // 50)
piece = 65536
for i in range(n):
    d = os.path.join(root, "d%02d" % (i % 10))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "log%03d.txt" % i), "wb") as f:
        left = mb * 1000000 // n
        while left > 0:
            o = rnd.randrange(len(corpus) - piece)
            f.write(corpus[o:o + min(piece, left)])
            left -= piece
EOF
BYTES=$(du -sb --apparent-size "$SCRATCH/text" | cut -f1)
start_watch "$SCRATCH/text"
read -r s w < <(sync_in plain)
row "asyncrep" "$s" "$w" "$BYTES" "$(same "$SCRATCH/text" "$SCRATCH/plain")"
read -r s w < <(sync_in z3 --compress zstd)
row "asyncrep compress = zstd (level 3)" "$s" "$w" "$BYTES" "$(same "$SCRATCH/text" "$SCRATCH/z3")"
read -r s w < <(sync_in z1 --compress zstd --compress-level 1)
row "asyncrep compress = zstd (level 1)" "$s" "$w" "$BYTES" "$(same "$SCRATCH/text" "$SCRATCH/z1")"
stop_watch
read -r s w < <(rsync_in r "$SCRATCH/text")
row "rsync -a" "$s" "$w" "$BYTES" "$(same "$SCRATCH/text" "$SCRATCH/rsyncd/r")"
RSYNC_HELP=$(rsync --help 2>&1 || :)
if grep -q -- --compress-choice <<<"$RSYNC_HELP"; then
	read -r s w < <(rsync_in rz "$SCRATCH/text" -z --compress-choice=zstd)
	row "rsync -az --compress-choice=zstd" "$s" "$w" "$BYTES" "$(same "$SCRATCH/text" "$SCRATCH/rsyncd/rz")"
fi
rm -rf "$SCRATCH/text" "$SCRATCH/plain" "$SCRATCH/z3" "$SCRATCH/z1" "$SCRATCH/rsyncd/r" "$SCRATCH/rsyncd/rz"

# --- part 2: bwlimit -----------------------------------------------------------
echo "-- bwlimit $BW_RATE: $BW_MB MB of random data"
mkdir -p "$SCRATCH/rnd"
head -c $((BW_MB * 1000000)) /dev/urandom >"$SCRATCH/rnd/f"
BYTES=$((BW_MB * 1000000))
RATE_B=$("$PYTHON3" -c 'import sys
s = sys.argv[1]; m = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
print(int(s[:-1]) * m[s[-1]] if s[-1] in m else int(s))' "$BW_RATE")
echo "  (the limit is $(mb "$RATE_B") MB/s)"
start_watch "$SCRATCH/rnd"
read -r s w < <(sync_in b1 --bwlimit "$BW_RATE")
row "asyncrep, standby's bwlimit" "$s" "$w" "$BYTES" "$(same "$SCRATCH/rnd" "$SCRATCH/b1")"
stop_watch
start_watch "$SCRATCH/rnd" --bwlimit "$BW_RATE"
t0=$(now)
sync_in b2 >"$SCRATCH/b2.t" &
p=$!
sync_in b3 >"$SCRATCH/b3.t"
wait "$p"
t1=$(now)
row "asyncrep, primary's bwlimit, 2 standbys" "$(elapsed "$t0" "$t1")" \
	"$(awk '{ n += $2 } END { print n }' "$SCRATCH/b2.t" "$SCRATCH/b3.t")" \
	$((2 * BYTES)) "$(same "$SCRATCH/rnd" "$SCRATCH/b2") $(same "$SCRATCH/rnd" "$SCRATCH/b3")"
stop_watch
read -r s w < <(rsync_in rb "$SCRATCH/rnd" --bwlimit=$((RATE_B / 1024)))
row "rsync -a --bwlimit (KiB/s)" "$s" "$w" "$BYTES" "$(same "$SCRATCH/rnd" "$SCRATCH/rsyncd/rb")"

#!/bin/sh
# rescue.sh: how long a rescue takes, by phase (run by make bench).
#
# For trees of 10,000 and 100,000 files, a standby follows the primary;
# the standby then stays away while 1,000 files of 64 KiB are written on
# the primary (so they are only in the spool), the primary is SIGKILLed,
# the standby comes back and a rescue takes over the primary's address.
# Prints the rescue's total time and its spool and compare phases, from
# its report. BENCH_SCALE=small shrinks the trees 20 times.
set -eu
A=${1:?usage: rescue.sh ASYNCREP}
case "$A" in /*) ;; *) A=$(pwd)/$A ;; esac
PY=${PYTHON3:-python3}
scale=${BENCH_SCALE:-full}
if [ "$scale" = small ]; then sizes="500 5000"; pending=100; else
	sizes="10000 100000"; pending=1000; fi
W=$(mktemp -d /tmp/asyncrep-rescue-bench.XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null || :; done
	wait 2>/dev/null || :
	rm -rf "$W"
}
trap cleanup EXIT INT TERM
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.2", 0)); print(s.getsockname()[1])')

wait_log() { # FILE PATTERN SECONDS
	i=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1)); [ "$i" -le $(($3 * 20)) ] || return 1
		sleep 0.05
	done
}

printf '\n%-26s %10s %10s %24s %12s\n' "rescue, 64 KiB files" "tree" "pending" "spool phase" "compare"
for n in $sizes; do
	R=$W/t$n
	mkdir -p "$R/src"
	$PY - "$R/src" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(b"x" * 512)
PY
	cat >"$R/p.conf" <<CONF
[primary]
data_dir = $R/src
spool_dir = $R/spool
listen = 127.0.0.2:$port
interval = 0
CONF
	"$A" watch -c "$R/p.conf" >"$R/watch.log" 2>&1 & wp=$!; pids="$pids $wp"
	wait_log "$R/watch.log" serving 60
	"$A" sync --follow -v --data-dir "$R/dst" --state-dir "$R/state" \
		--primary "127.0.0.2:$port" >"$R/follow.log" 2>&1 & fp=$!
	pids="$pids $fp"
	wait_log "$R/follow.log" "following" 300
	kill -TERM "$fp"; wait "$fp" || :
	# The standby is away: these changes stay in the spool.
	$PY - "$R/src" "$pending" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(os.path.join(root, "pending"), exist_ok=True)
for i in range(n):
    with open(os.path.join(root, "pending", "p%05d" % i), "wb") as f:
        f.write(os.urandom(65536))
        f.flush()
        os.fsync(f.fileno())
PY
	sleep 1
	kill -KILL "$wp"; wait "$wp" 2>/dev/null || :
	"$A" sync --follow -v --data-dir "$R/dst" --state-dir "$R/state" \
		--primary "127.0.0.2:$port" >"$R/follow2.log" 2>&1 & fp=$!
	pids="$pids $fp"
	t0=$($PY -c 'import time; print(time.monotonic())')
	"$A" rescue -c "$R/p.conf" --timeout 60s >"$R/report" 2>"$R/rescue.log"
	t1=$($PY -c 'import time; print(time.monotonic())')
	wait "$fp" || :
	sp=$(sed -n 's/^spool phase: \([0-9]*\) files, [0-9]* bytes, \([0-9.]*\) s$/\2 s (\1 files)/p' "$R/report")
	cp=$(sed -n 's/^compare phase: \([0-9]*\) files, [0-9]* bytes, \([0-9.]*\) s$/\2 s/p' "$R/report")
	total=$($PY -c "print('%.2f s' % ($t1 - $t0))")
	printf '%-26s %10s %10s %24s %12s\n' "total $total" "$n" "$pending" "$sp" "$cp"
	if ! diff -r "$R/src" "$R/dst" >/dev/null; then
		echo "  standby differs from the primary after the rescue!"
	fi
	rm -rf "$R"
done
echo "target: the spool phase within 1 s plus transfer time, whatever the tree size"

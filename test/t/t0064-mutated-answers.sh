#!/bin/sh
test_description='a real primary'"'"'s answers mutated frame by frame: the standby never writes anything but verified bytes, never crashes, and converges'
. "$SRCDIR/test/t/lib.sh"

# The frame-order state machines of the standby (core/fetch.c for whole
# files and deltas, core/append.c for appends, core/clone.c for changed
# blocks) read what mutate-proxy.py makes of a real primary's answers:
# frames dropped, repeated, exchanged, moved, retyped, flipped, grown,
# cut short, lengths that lie, answers cut. Each case changes the tree
# (appends to a 4 MiB log, blocks overwritten in place, data inserted,
# a middle-sized file edited, small files rewritten and created), runs a
# one-shot sync through the proxy with the case's seed, and checks:
#  - its exit status is one the standby documents for a hostile or
#    broken primary (0, 3, 4, 6, 7, 8, 11), not a signal (a sanitizer
#    build aborts) nor an internal error;
#  - every file holds the bytes it held before or the primary's, and
#    none that was there is gone; with status 0, every file holds the
#    primary's (nothing skipped silently); no temp file is left;
#  - an honest sync right after exits 0 and the trees are identical, so
#    nothing the mutated answers left behind (block store, temp files)
#    spoils the next run.
# MUTATE_CASES (default 30) and MUTATE_SEED (default 1) choose the cases;
# the proxy's log names each mutation, so a failing seed is reproduced.

CASES=${MUTATE_CASES:-30}
SEED0=${MUTATE_SEED:-1}
B=65536

cat >tool.py <<'EOF'
import hashlib, os, random, sys

def files(root):
    out = {}
    for d, dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            if os.path.islink(p) or not os.path.isfile(p):
                out[rel] = "special"
                continue
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out[rel] = h.hexdigest()
    return out

def change(src, seed):
    # What a busy server does to its tree between two syncs.
    rng = random.Random(seed)
    log = os.path.join(src, "log")
    size = os.path.getsize(log)
    kind = rng.choice(("append", "append", "overwrite", "insert", "none"))
    if size > (7 << 20):
        kind = "shrink"
    with open(log, "r+b") as f:
        if kind == "append":
            f.seek(0, 2)
            f.write(rng.randbytes(rng.choice((1, 100, 65536, 70000,
                                              300000))))
        elif kind == "overwrite":
            for _ in range(rng.randint(1, 3)):
                off = rng.randrange(size - 4096)
                f.seek(off)
                f.write(rng.randbytes(rng.choice((1, 4096, 65536))))
        elif kind == "insert":
            mid = size // 2
            f.seek(mid)
            rest = f.read()
            f.seek(mid)
            f.write(rng.randbytes(1000) + rest)
        elif kind == "shrink":
            f.truncate(4 << 20)
        os.fsync(f.fileno())
    med = os.path.join(src, "med")
    if rng.random() < 0.6:
        with open(med, "r+b") as f:
            f.seek(rng.randrange(300000))
            f.write(rng.randbytes(rng.choice((10, 5000))))
    for i in rng.sample(range(6), rng.randint(0, 3)):
        with open(os.path.join(src, "s%d" % i), "wb") as f:
            f.write(rng.randbytes(rng.choice((0, 10, 4096, 20000))))
    if rng.random() < 0.3:
        with open(os.path.join(src, "new%d" % seed), "wb") as f:
            f.write(rng.randbytes(rng.choice((5, 3000, 150000))))
    print(kind)

def prefix(dst, src, p, oldsize):
    # The append path writes in place: a run that fails part-way leaves
    # a verified prefix of the new version, no shorter than the old
    # (PROTOCOL.md, the documented exception).
    n = os.path.getsize(os.path.join(dst, p))
    if p not in oldsize or n < oldsize[p]:
        return False
    h = hashlib.sha256()
    with open(os.path.join(src, p), "rb") as f:
        while n > 0:
            chunk = f.read(min(n, 1 << 20))
            if not chunk:
                return False
            h.update(chunk)
            n -= len(chunk)
    with open(os.path.join(dst, p), "rb") as f:
        return hashlib.sha256(f.read()).digest() == h.digest()

def check(dst, before, src, status):
    # After a mutated run: old or new bytes, nothing lost, no temp file.
    old, oldsize = {}, {}
    with open(before) as f:
        for l in f:
            h, size, p = l.rstrip("\n").split(" ", 2)
            old[p], oldsize[p] = h, int(size)
    new = files(src)
    have = files(dst)
    bad = []
    for p, h in have.items():
        if ".asyncrep-tmp." in p:
            bad.append("temp file left: %s" % p)
        elif h not in (old.get(p), new.get(p)) and not prefix(dst, src, p,
                                                             oldsize):
            bad.append("%s holds neither its old bytes nor the primary's" % p)
        elif status == 0 and h != new.get(p):
            bad.append("%s: exit 0 but not the primary's bytes" % p)
    for p in old:
        if p not in have:
            bad.append("%s was there and is gone" % p)
    if status == 0:
        for p in new:
            if p not in have:
                bad.append("%s: exit 0 but missing" % p)
    for b in bad:
        print(b)
    return 1 if bad else 0

cmd = sys.argv[1]
if cmd == "snapshot":
    for p, h in sorted(files(sys.argv[2]).items()):
        print(h, os.lstat(os.path.join(sys.argv[2], p)).st_size, p)
elif cmd == "change":
    change(sys.argv[2], int(sys.argv[3]))
else:
    sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
EOF

test_expect_success 'setup: a log, a middle-sized file and small files replicated' '
	mkdir -p src &&
	head -c $((64 * B + 17)) /dev/urandom >src/log &&
	head -c 300000 /dev/urandom >src/med &&
	for i in 0 1 2 3 4 5; do head -c $((i * 1000)) /dev/urandom >src/s$i || return 1; done &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 &&
	sync_to "$TRASH/dst" "$TRASH/state" &&
	trees_equal src dst &&
	test -n "$(ls state/blocks)"
'

test_expect_success "$CASES cases of mutated answers: verified bytes only, then convergence" '
	PP=$(free_port) && statuses= && c=0 &&
	while [ "$c" -lt "$CASES" ]; do
		seed=$((SEED0 + c)) &&
		kind=$("$PYTHON3" tool.py change src "$seed") &&
		"$PYTHON3" tool.py snapshot dst >before &&
		rm -f proxy.ready &&
		start_bg proxy.log "$PYTHON3" "$SRCDIR/test/t/mutate-proxy.py" \
			--listen "$TEST_IP:$PP" --upstream "$TEST_IP:$TEST_PORT" \
			--seed "$seed" --ready-file proxy.ready --lifetime 120 &&
		proxy=$last_pid &&
		wait_for 10 test -f proxy.ready &&
		st=0 &&
		"$ASYNCREP" sync --data-dir "$TRASH/dst" --state-dir "$TRASH/state" \
			--primary "$TEST_IP:$PP" --stall-timeout 10s >mut.out 2>&1 || st=$? &&
		kill_wait "$proxy" &&
		case " 0 3 4 6 7 8 11 " in
		*" $st "*) ;;
		*) say "case $c (seed $seed, $kind): sync exited $st" &&
			cat proxy.log mut.out && return 1 ;;
		esac &&
		if ! "$PYTHON3" tool.py check dst before src "$st" >damage; then
			say "case $c (seed $seed, $kind), exit $st:" &&
			cat damage proxy.log mut.out && return 1
		fi &&
		statuses="$statuses $st" &&
		if ! sync_to "$TRASH/dst" "$TRASH/state" >honest.out 2>&1 ||
		    ! trees_equal src dst; then
			say "case $c (seed $seed, $kind): no convergence after exit $st" &&
			cat proxy.log mut.out honest.out && return 1
		fi &&
		cat proxy.log >>proxy.all &&
		c=$((c + 1))
	done &&
	say "exit statuses (count status):$(echo $statuses | tr " " "\n" | sort -n | uniq -c | tr -s " \n" " ")" &&
	say "$(grep -c "^mutate" proxy.all) answers mutated, $(grep -c "^pass POST" proxy.all) passed" &&
	grep -q "^mutate POST /v1/append" proxy.all &&
	grep -q "^mutate POST /v1/files" proxy.all
'

test_done

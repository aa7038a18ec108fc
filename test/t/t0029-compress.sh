#!/bin/sh
test_description='compress = zstd: listings, whole files and deltas travel
compressed when the standby asks and the version has it; plain otherwise'
: "${PYTHON3:=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}"
. "$SRCDIR/test/t/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

FAKE="$SRCDIR/test/t/fake-primary.py"

# text FILE N: N words of text-like data (compresses about 7:1).
text() {
	"$PYTHON3" -c 'import random, sys
random.seed(int(sys.argv[2]))
w = ["alpha", "beta", "gamma", "replica", "standby", "primary", "journal"]
open(sys.argv[1], "w").write(" ".join(random.choice(w) for _ in range(int(sys.argv[2]))))' "$1" "$2"
}

# received LOG: the bytes a sync -v says it received.
received() { sed -n "s/.*received \([0-9]*\) bytes.*/\1/p" "$1" | tail -1; }

test_expect_success 'setup: text files, a primary' '
	mkdir -p src/d &&
	text src/a.txt 400000 &&
	text src/d/b.txt 50000 &&
	head -c 100000 /dev/urandom >src/random &&
	start_watch src spool --interval 0
'

test_expect_success 'one-shot: the same tree, a fraction of the bytes' '
	sync_to plain st-plain -v 2>plain.log &&
	sync_to z st-z -v --compress zstd 2>z.log &&
	trees_equal src plain && trees_equal src z &&
	p=$(received plain.log) && c=$(received z.log) &&
	echo "plain $p, zstd $c" &&
	test "$c" -gt 0 && test $((c * 3)) -lt "$p"
'

test_expect_success 'a delta of a changed text file travels compressed too' '
	text src/a.txt 400001 &&
	sync_to plain st-plain -v 2>plain2.log &&
	sync_to z st-z -v --compress zstd --compress-level 9 2>z2.log &&
	grep -q "1 by delta" z2.log &&
	trees_equal src z &&
	p=$(received plain2.log) && c=$(received z2.log) &&
	echo "plain $p, zstd $c" &&
	test $((c * 2)) -lt "$p"
'

test_expect_success 'following with zstd: changes arrive, the tree converges' '
	follow_to f st-f --compress zstd &&
	wait_for 30 trees_equal src f &&
	text src/d/new.txt 30000 &&
	mv src/d/b.txt src/b-moved.txt &&
	wait_for 30 trees_equal src f &&
	kill_wait "$FOLLOW_PID"
'

test_expect_success 'a primary of version 1 is asked nothing and read plain' '
	FPORT=$("$PYTHON3" -c "import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])" "$TEST_IP") &&
	mkdir -p outside &&
	start_bg fake.log "$PYTHON3" "$FAKE" --mode v1-only \
		--listen "$TEST_IP:$FPORT" --tree "$TRASH/src" \
		--outside "$TRASH/outside" --ready-file "$TRASH/ready" \
		--lifetime 120 &&
	wait_for 10 test -f ready &&
	timeout 60 "$ASYNCREP" sync --data-dir old --state-dir old.state \
		--primary "$TEST_IP:$FPORT" --compress zstd -v 2>old.log &&
	grep -q "protocol version 1" old.log &&
	trees_equal src old
'

test_expect_success 'bad values: compress = gzip (2), a level out of range (1)' '
	printf "[standby]\ncompress = gzip\n" >bad.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c bad.conf --data-dir "$TRASH/x" \
		--state-dir "$TRASH/xs" --primary 127.0.0.1:1 2>err &&
	grep -q "compress in \[standby\] must be .off. or .zstd." err &&
	test_must_fail 1 "$ASYNCREP" sync --compress-level 20 --data-dir "$TRASH/x" \
		--state-dir "$TRASH/xs" --primary 127.0.0.1:1 2>err &&
	grep -q "compress-level" err &&
	! test -e x
'

test_done

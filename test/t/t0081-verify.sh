#!/bin/sh
test_description='verify compares content with the primary; sync --checksum repairs what size and mtime hide'
. "$SRCDIR/test/t/lib.sh"

converged() { trees_equal src dst; }

verify() {
	"$ASYNCREP" verify --data-dir "$TRASH/dst" --state-dir "$TRASH/state" \
		--primary "$TEST_IP:$TEST_PORT" "$@"
}

# flip FILE OFFSET: change one byte in place, keeping size and mtime.
flip() {
	cp -p "$1" "$TRASH/.ref" &&
	"$PYTHON3" -c 'import sys
f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b = f.read(1)
f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xff])); f.close()' "$1" "$2" &&
	touch -r "$TRASH/.ref" "$1"
}

test_expect_success 'setup: a primary and a standby synced once' '
	mkdir -p src/d/e && echo one >src/one && echo two >src/d/two &&
	head -c 300000 /dev/urandom >src/d/e/big && ln -s one src/link &&
	: >src/empty &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 &&
	sync_to "$TRASH/dst" "$TRASH/state" &&
	converged
'

test_expect_success 'verify of an identical tree exits 0 and prints nothing' '
	verify >out &&
	test ! -s out
'

test_expect_success 'one byte flipped, size and mtime kept: verify names that file, exit 19' '
	flip dst/d/e/big 150000 &&
	converged_meta=$(trees_equal src dst >/dev/null 2>&1 && echo same || echo differs) &&
	test "$converged_meta" = differs &&
	test_must_fail 19 verify >out &&
	echo ">fc........ d/e/big" >expect &&
	test_cmp expect out
'

test_expect_success 'a plain sync does not see it (same size and mtime)' '
	sync_to "$TRASH/dst" "$TRASH/state" -i >out &&
	test ! -s out &&
	test_must_fail 19 verify >/dev/null
'

test_expect_success 'sync --checksum repairs it, then verify exits 0' '
	sync_to "$TRASH/dst" "$TRASH/state" --checksum -i >out &&
	grep "d/e/big" out &&
	converged &&
	verify >out &&
	test ! -s out
'

test_expect_success 'sync --checksum --dry-run reports and changes nothing' '
	flip dst/one 1 &&
	sync_to "$TRASH/dst" "$TRASH/state" --checksum -n -i >out &&
	echo ">fc........ one" >expect &&
	test_cmp expect out &&
	test_must_fail 19 verify >/dev/null &&
	sync_to "$TRASH/dst" "$TRASH/state" --checksum &&
	verify
'

test_expect_success 'verify lists missing, extra, and retargeted entries' '
	rm dst/d/two && echo extra >dst/extra && ln -sf two dst/link &&
	test_must_fail 19 verify >out &&
	sort out >actual &&
	printf "%s\n" "*deleting   extra" ">f+++++++++ d/two" "cLc........ link" | sort >expect &&
	test_cmp expect actual &&
	sync_to "$TRASH/dst" "$TRASH/state" && verify
'

test_expect_success 'verify changes nothing and needs no lock: it runs beside sync --follow' '
	follow_to "$TRASH/dst" "$TRASH/state" &&
	wait_for 20 grep -q "following" follow.log &&
	tree_listing dst >before &&
	verify >out &&
	test ! -s out &&
	tree_listing dst >after &&
	test_cmp before after &&
	kill -TERM "$FOLLOW_PID" && wait "$FOLLOW_PID"
'

# A figure, not a timed assertion: how long a bounded verify took.
test_expect_success 'verify --rate reads at a bounded rate, and still verifies' '
	head -c 1000000 /dev/urandom >src/rated &&
	sync_to "$TRASH/dst" "$TRASH/state" &&
	start=$(date +%s%N) &&
	verify --rate 1M &&
	end=$(date +%s%N) &&
	say "verify --rate 1M of 1.3 MB took $(( (end - start) / 1000000 )) ms"
'

test_expect_success 'verify takes a bad --rate as a usage error' '
	test_must_fail 1 verify --rate fast
'

test_expect_success 'more files than one round of content compares: each difference named once' '
	"$PYTHON3" -c "import os
os.makedirs(\"src/many\", exist_ok=True)
for i in range(4500):
    open(\"src/many/f%05d\" % i, \"w\").write(\"file %d\\n\" % i)" &&
	sync_to "$TRASH/dst" "$TRASH/state" &&
	verify >out && test ! -s out &&
	flip dst/many/f00003 0 && flip dst/many/f04400 1 &&
	test_must_fail 19 verify >out &&
	printf ">fc........ many/f00003\n>fc........ many/f04400\n" >expect &&
	sort out >actual &&
	test_cmp expect actual &&
	sync_to "$TRASH/dst" "$TRASH/state" --checksum &&
	verify &&
	rm -rf src/many dst/many
'

test_expect_success 'the hash route is not there below its version' '
	curl -s -o /dev/null -w "%{http_code}" -X POST \
		-H "X-Asyncrep-Version: 2" --data-binary "" \
		"http://$TEST_IP:$TEST_PORT/v1/sums" >code &&
	test "$(cat code)" = 404
'

# grow FILE: append to FILE until the stop file appears (60 s at most).
grow() {
	"$PYTHON3" -c 'import os, sys, time
end = time.time() + 60
with open(sys.argv[1], "ab", buffering=0) as f:
    while time.time() < end and not os.path.exists(sys.argv[2]):
        f.write(b"x" * 64)
        time.sleep(0.0005)' "$1" "$2"
}

grown() { test "$(stat -c %s src/growing)" -gt 6400; }

test_expect_success 'a file that changes on the primary while verified is "changing", not damaged' '
	echo start >src/growing &&
	sync_to "$TRASH/dst" "$TRASH/state" &&
	start_bg grow.log grow src/growing "$TRASH/grow.stop" &&
	GROW_PID=$last_pid &&
	wait_for 10 grown &&
	verify >out &&
	touch "$TRASH/grow.stop" && wait "$GROW_PID" &&
	echo "changing    growing" >expect &&
	test_cmp expect out
'

test_expect_success 'stop' '
	stop_watch
'

FAKE="$SRCDIR/test/t/fake-primary.py"

test_expect_success 'a version 1 primary: verify hashes whole transfers instead' '
	rm -f src/growing dst/growing && mkdir -p outside &&
	FPORT=$(free_port) &&
	start_bg "$TRASH/fake.log" "$PYTHON3" "$FAKE" --mode v1-only \
		--listen "$TEST_IP:$FPORT" --tree "$TRASH/src" \
		--outside "$TRASH/outside" --ready-file "$TRASH/ready" \
		--lifetime 120 &&
	wait_for 10 test -f "$TRASH/ready" &&
	"$ASYNCREP" verify --data-dir "$TRASH/dst" --state-dir "$TRASH/state" \
		--primary "$TEST_IP:$FPORT" >out &&
	test ! -s out &&
	grep -q "POST /v1/files" fake.log &&
	! grep -q "/v1/sums" fake.log &&
	flip dst/d/e/big 7 &&
	test_must_fail 19 "$ASYNCREP" verify --data-dir "$TRASH/dst" \
		--state-dir "$TRASH/state" --primary "$TEST_IP:$FPORT" >out &&
	echo ">fc........ d/e/big" >expect &&
	test_cmp expect out
'

test_done

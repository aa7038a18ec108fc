#!/bin/sh
test_description='a hostile standby cannot exhaust the primary: crafted
signatures are bounded by the file they are for, deltas are capped'
. "$SRCDIR/test/t/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

HOSTILE="$SRCDIR/test/t/hostile-standby.py"

# hwm_kb PID: the peak resident size of PID, in KiB.
hwm_kb() {
	sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$1/status"
}

test_expect_success 'setup: a primary serving a small and a 1 MiB file' '
	mkdir src && echo hello >src/small &&
	"$PYTHON3" -c "import os, sys
sys.stdout.buffer.write(os.urandom(1 << 20))" >src/big &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 --max-deltas 2 &&
	hwm_kb "$WATCH_PID" >hwm.before &&
	test -s hwm.before
'

test_expect_success 'a signature of block length 1 is refused, saying why' '
	"$PYTHON3" "$HOSTILE" "$TEST_IP" "$TEST_PORT" sigbomb small 1 \
		100000 1 >actual &&
	echo "400 malformed signature: block length 1 outside 256..1048576" \
		>expect &&
	test_cmp expect actual &&
	grep -q "block length 1 outside" watch.log
'

# Six at once, 40 MB each, for a 1 MiB file: the bound is 4097 blocks
# (150 KB), so each is answered R (fetch it whole) and the primary never
# holds more than a few of its bounded signatures.
test_expect_success 'six 40 MB signatures for a 1 MiB file: R, memory bounded' '
	"$PYTHON3" "$HOSTILE" "$TEST_IP" "$TEST_PORT" sigbomb big 6 \
		40000000 256 >actual &&
	hwm_kb "$WATCH_PID" >hwm.after &&
	before=$(cat hwm.before) && after=$(cat hwm.after) &&
	say "VmHWM of the primary: $before kB before, $after kB after" &&
	for i in 1 2 3 4 5 6; do echo "200 RZ"; done >expect &&
	test_cmp expect actual &&
	test $((after - before)) -lt 51200
'

test_expect_success 'a signature within the bound still gets its delta' '
	"$PYTHON3" "$HOSTILE" "$TEST_IP" "$TEST_PORT" delta big >actual &&
	grep -q "^200 FD*TZ$" actual
'

# hold_delta N: a delta request whose signature stops after its header
# until "go" is written to fifo goN; its answer goes to holdN.out.
hold_delta() {
	mkfifo "go$1" &&
	start_bg "hold$1.out" sh -c 'exec "$1" "$2" "$3" "$4" hold big 60 <"$5"' \
		sh "$PYTHON3" "$HOSTILE" "$TEST_IP" "$TEST_PORT" "go$1"
}

# delta_until_retry: an honest delta request, until one is answered R
# (the held requests took their slots as soon as their N frame was read;
# at most 50 tries).
delta_until_retry() {
	tries=0
	while [ "$tries" -lt 50 ]; do
		"$PYTHON3" "$HOSTILE" "$TEST_IP" "$TEST_PORT" delta big \
			>third || return 1
		grep -q "^200 RZ$" third && return 0
		tries=$((tries + 1))
		sleep 0.1
	done
	cat third
	return 1
}

# max_deltas = 2: two requests hold their slot (their signatures still
# arriving); a third is answered R at once, and the two still complete.
test_expect_success 'past max_deltas a delta is answered R, then slots free up' '
	hold_delta 1 && hold1=$last_pid &&
	hold_delta 2 && hold2=$last_pid &&
	exec 7>go1 8>go2 &&
	wait_for 20 grep -q held hold1.out &&
	wait_for 20 grep -q held hold2.out &&
	delta_until_retry &&
	echo go >&7 && echo go >&8 && exec 7>&- 8>&- &&
	wait "$hold1" && wait "$hold2" &&
	grep -q "^200 FD*TZ$" hold1.out &&
	grep -q "^200 FD*TZ$" hold2.out &&
	"$PYTHON3" "$HOSTILE" "$TEST_IP" "$TEST_PORT" delta big >fourth &&
	grep -q "^200 FD*TZ$" fourth
'

test_expect_success 'a real standby still syncs, by delta where it can' '
	mkdir -p sb/data sb/state && cp -p src/big sb/data/big &&
	printf x | dd of=src/big bs=1 seek=1000 conv=notrunc 2>/dev/null &&
	sync_to "$TRASH/sb/data" "$TRASH/sb/state" &&
	trees_equal src sb/data
'

# --- guessing the token ------------------------------------------------------

test_expect_success 'setup: the primary again, with a token' '
	stop_watch &&
	"$PYTHON3" -c "import secrets; print(secrets.token_hex(32))" >token &&
	chmod 600 token &&
	mv watch.log watch.1.log &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 \
		--auth-token-file "$TRASH/token"
'

# After a few free failures an address is refused (429) for twice as
# long each time, its token not even looked at; one log line per 10 s.
test_expect_success '300 wrong tokens: most refused at once, few log lines' '
	start=$(date +%s) &&
	"$PYTHON3" "$HOSTILE" "$TEST_IP" "$TEST_PORT" badtoken 300 >counts &&
	elapsed=$(( $(date +%s) - start )) &&
	say "$(cat counts) in about $elapsed s" &&
	n401=$(sed -n "s/.*401 x\([0-9]*\).*/\1/p" counts) &&
	n429=$(sed -n "s/.*429 x\([0-9]*\).*/\1/p" counts) &&
	test $((n401 + n429)) -eq 300 &&
	test "$n401" -ge 5 &&
	test "$n401" -le $((14 + elapsed / 10)) &&
	grep -E "bad or missing token|failed authentications" watch.log \
		>authlines &&
	say "$(wc -l <authlines) log lines" &&
	test "$(wc -l <authlines)" -le $((2 + elapsed / 10))
'

test_expect_success 'the right token works again once the refusal ends' '
	wait_for 30 sync_to "$TRASH/sb2/data" "$TRASH/sb2/state" \
		--auth-token-file "$TRASH/token" &&
	trees_equal src sb2/data
'

# --- slowloris ------------------------------------------------------------------

# 40 connections that trickle a header line every second, never ending
# their headers: without a deadline they hold all 32 connections for as
# long as they like (idle_timeout never expires), and no standby gets in.
test_expect_success 'setup: the primary again, 32 connections, header_timeout 2' '
	stop_watch &&
	mv watch.log watch.2.log &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 \
		--auth-token-file "$TRASH/token" --max-connections 32 \
		--max-per-ip 64 --header-timeout 2
'

test_expect_success 'trickled headers are cut off; a real standby still syncs' '
	start_bg trickle.out "$PYTHON3" "$HOSTILE" "$TEST_IP" "$TEST_PORT" \
		trickle 40 60 &&
	trickle=$last_pid &&
	sleep 0.5 &&
	wait_for 30 sync_to "$TRASH/sb3/data" "$TRASH/sb3/state" \
		--auth-token-file "$TRASH/token" &&
	trees_equal src sb3/data &&
	wait "$trickle" &&
	cat trickle.out &&
	grep -q "^closed 40 of 40$" trickle.out &&
	grep -q "did not authenticate within header_timeout" watch.log
'

# --- a local user, and no token ------------------------------------------------

# setpriv, not runuser: the build directory may be one nobody cannot
# search (CI's mktemp -d is 0700), and setpriv execs the binary while
# it still holds root's capabilities, then runs it with none.
as_nobody() {
	setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" \
		--clear-groups "$@"
}

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
	test_expect_success 'setup: the primary again, without a token' '
		stop_watch &&
		mv watch.log watch.3.log &&
		start_watch "$TRASH/src" "$TRASH/spool" --interval 0 &&
		mkdir -p nob && chown nobody nob
	'

	# Without a token anyone on this host could read every file over
	# loopback: only root, the server's user or data_dir's owner may.
	test_expect_success 'no token: a local user other than those is refused (5)' '
		test_must_fail 5 as_nobody "$ASYNCREP" sync \
			--data-dir "$TRASH/nob/data" --state-dir "$TRASH/nob/state" \
			--primary "$TEST_IP:$TEST_PORT" 2>nob.err &&
		cat nob.err &&
		grep -q "only root, its own user or the owner of data_dir may connect from this host, not uid $(id -u nobody)" nob.err &&
		! test -e nob/data/big &&
		grep -q "not uid $(id -u nobody)" watch.log
	'

	test_expect_success 'no token: the owner of data_dir may' '
		chown nobody src &&
		as_nobody "$ASYNCREP" sync \
			--data-dir "$TRASH/nob/data2" --state-dir "$TRASH/nob/state2" \
			--primary "$TEST_IP:$TEST_PORT" &&
		test -f nob/data2/small &&
		chown root src
	'

	test_expect_success 'no token: root may' '
		sync_to "$TRASH/sb4/data" "$TRASH/sb4/state" &&
		trees_equal src sb4/data
	'
else
	test_skip 'no token, local user' 'needs root and setpriv'
fi

test_done

#!/bin/sh
test_description='appends to a big file reach the standby in place (the append path)'
. "$SRCDIR/test/t/lib.sh"

B=65536
converged() { trees_equal src dst; }
# grow FILE BYTES: append BYTES random bytes to FILE.
grow() { head -c "$2" /dev/urandom >>"$1"; }
ino() { stat -c %i "$1"; }

test_expect_success 'setup: a 3 MiB log replicated, with a block store entry' '
	mkdir -p src && head -c $((48 * B + 7)) /dev/urandom >src/log &&
	echo small >src/small &&
	MP=$(free_port) && MS=$(free_port) && echo "$MP $MS" >mports &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 \
		--metrics-listen "127.0.0.1:$MP" &&
	follow_to "$TRASH/dst" "$TRASH/state" --metrics-listen "127.0.0.1:$MS" &&
	wait_for 30 converged &&
	test -n "$(ls state/blocks)" &&
	test -n "$(ls spool/blocks)" &&
	echo "$(ino dst/log)" >ino0
'

test_expect_success 'appends of every size across block boundaries: in place' '
	for n in 1 $((B - 8)) 1 $B $((B + 1)) $((B - 1)) 100 $((3 * B + 5)) 0; do
		if [ "$n" -gt 0 ]; then grow src/log "$n"; fi &&
		wait_for 30 converged &&
		test "$(ino dst/log)" = "$(cat ino0)" || return 1
	done
'

# entry_inos: the inodes of the entries of log on both sides.
entry_inos() {
	echo "$(stat -c %i "spool/blocks/$(printf "%x-%x" \
		"$(stat -c %d src/log)" "$(ino src/log)")")" \
		"$(stat -c %i "state/blocks/$(printf "%x-%x" \
		"$(stat -c %d dst/log)" "$(ino dst/log)")")"
}

test_expect_success 'an append updates both entries in place, not by a new file' '
	grow src/log 100 && wait_for 30 converged &&
	entry_inos >einos0 &&
	for n in 100 $B 7; do
		grow src/log "$n" && wait_for 30 converged &&
		entry_inos >einos1 &&
		test_cmp einos0 einos1 || return 1
	done
'

# metric NAME PORT: the value of series NAME (with its labels) on PORT.
metric() {
	curl -sf --noproxy "*" "http://127.0.0.1:$2/metrics" |
		awk -v n="$1" '$1 == n { print $2 }'
}

test_expect_success 'the appends show in the metrics, kind append, on both sides' '
	read -r MP MS <mports &&
	f=$(metric "asyncrep_served_files_total{kind=\"append\"}" "$MP") &&
	r=$(metric "asyncrep_standby_received_files_total{kind=\"append\"}" "$MS") &&
	b=$(metric "asyncrep_standby_received_bytes_total{kind=\"append\"}" "$MS") &&
	echo "served $f received $r bytes $b" &&
	test "${f%.*}" -ge 8 && test "${r%.*}" -ge 8 &&
	test "${b%.*}" -ge $((5 * B))
'

test_expect_success 'the standby down while the log grows: caught up in place' '
	kill_wait $FOLLOW_PID &&
	grow src/log 5000 && grow src/log $((2 * B)) &&
	follow_to "$TRASH/dst" "$TRASH/state" &&
	wait_for 30 converged &&
	test "$(ino dst/log)" = "$(cat ino0)"
'

test_expect_success 'truncated and rewritten longer while the standby is down: rebuilt' '
	kill_wait $FOLLOW_PID &&
	size=$(stat -c %s src/log) &&
	head -c $((size + 1000)) /dev/urandom >src/log &&
	follow_to "$TRASH/dst" "$TRASH/state" &&
	wait_for 30 converged &&
	echo "$(ino dst/log)" >ino1 &&
	grow src/log 777 &&
	wait_for 30 converged &&
	test "$(ino dst/log)" = "$(cat ino1)"
'

test_expect_success 'the log rotated while appended to' '
	grow src/log 100 && mv src/log src/log.1 && grow src/log.1 300 &&
	head -c $((20 * B)) /dev/urandom >src/log &&
	wait_for 30 converged &&
	echo "$(ino dst/log)" >ino2 && echo "$(ino dst/log.1)" >ino3 &&
	grow src/log 4000 && grow src/log.1 10 &&
	wait_for 30 converged &&
	test "$(ino dst/log)" = "$(cat ino2)" &&
	test "$(ino dst/log.1)" = "$(cat ino3)"
'

test_expect_success 'a prefix rewritten with the size kept, then appended: converges' '
	printf "REWRITTEN" | dd of=src/log bs=1 seek=$((5 * B + 3)) conv=notrunc 2>/dev/null &&
	wait_for 30 converged &&
	echo "$(ino dst/log)" >ino4 &&
	grow src/log 123 &&
	wait_for 30 converged &&
	test "$(ino dst/log)" = "$(cat ino4)"
'

test_expect_success 'a corrupt block store entry on the standby: detected, converges' '
	for f in state/blocks/*; do
		printf "\377\377\377\377" | dd of="$f" bs=1 seek=200 conv=notrunc 2>/dev/null || return 1
	done &&
	grow src/log 999 &&
	wait_for 30 converged &&
	grep -q "block store: entry .* is corrupt" follow.log &&
	grow src/log 1000 &&
	wait_for 30 converged
'

test_expect_success 'a corrupt cache entry on the primary: detected, converges, in place' '
	echo "$(ino dst/log)" >ino5 &&
	for f in spool/blocks/*; do
		printf "\377\377\377\377" | dd of="$f" bs=1 seek=300 conv=notrunc 2>/dev/null || return 1
	done &&
	grow src/log 4242 &&
	wait_for 30 converged &&
	test "$(ino dst/log)" = "$(cat ino5)" &&
	grep -q "block cache: .* is corrupt" watch.log
'

# tail_flip FILE: what a torn update in place of an entry's tail may
# leave: a byte of its hash before the last one (a whole block, which an
# append does not read again) changed.
tail_flip() {
	sz=$(stat -c %s "$1") &&
	printf "\125" | dd of="$1" bs=1 seek=$((sz - 20)) conv=notrunc 2>/dev/null
}

test_expect_success 'store entries torn at their tail: detected, converges' '
	grow src/log 3000 && wait_for 30 converged &&
	fs=$(grep -c "block store: entry .* is corrupt" follow.log || :) &&
	for f in state/blocks/*; do
		tail_flip "$f" || return 1
	done &&
	grow src/log 5000 &&
	wait_for 30 converged &&
	test "$(grep -c "block store: entry .* is corrupt" follow.log)" -gt "$fs"
'

test_expect_success 'cache entries torn at their tail: detected, converges in place' '
	grow src/log 3000 && wait_for 30 converged &&
	echo "$(ino dst/log)" >ino6 &&
	ws=$(grep -c "block cache: .* is corrupt" watch.log || :) &&
	for f in spool/blocks/*; do
		tail_flip "$f" || return 1
	done &&
	grow src/log 70000 &&
	wait_for 30 converged &&
	test "$(grep -c "block cache: .* is corrupt" watch.log)" -gt "$ws" &&
	grow src/log 10 &&
	wait_for 30 converged &&
	test "$(ino dst/log)" = "$(cat ino6)"
'

test_expect_success 'a prefix rewritten, then appended while the standby is down: re-verified' '
	kill_wait $FOLLOW_PID &&
	printf "SILENT" | dd of=src/log bs=1 seek=$((7 * B + 11)) conv=notrunc 2>/dev/null &&
	grow src/log 55 &&
	follow_to "$TRASH/dst" "$TRASH/state" &&
	wait_for 30 converged &&
	grep -q "was rewritten, not only appended to" watch.log
'

test_expect_success 'append = atomic rebuilds instead' '
	kill_wait $FOLLOW_PID &&
	follow_to "$TRASH/dst" "$TRASH/state" --append atomic &&
	wait_for 30 converged &&
	before=$(ino dst/log) &&
	grow src/log 10 &&
	wait_for 30 converged &&
	test "$(ino dst/log)" != "$before"
'

test_expect_success 'append = other is refused' '
	test_must_fail 2 "$ASYNCREP" sync --data-dir dst --state-dir state2 \
		--primary "$TEST_IP:$TEST_PORT" --append sometimes 2>err &&
	grep -q "append in \[standby\] must be" err
'

test_expect_success 'a version 2 standby against this primary: the old path' '
	kill_wait $FOLLOW_PID &&
	follow_to "$TRASH/dst" "$TRASH/state" &&
	wait_for 30 converged &&
	code=$(curl -s -o v2.out -w "%{http_code}" -X POST \
		-H "X-Asyncrep-Version: 2" --data-binary @/dev/null \
		"http://$TEST_IP:$TEST_PORT/v1/append") &&
	test "$code" = 400 &&
	grep -q "needs protocol version" v2.out
'

test_expect_success 'entries of deleted files are swept at the next start' '
	rm src/log.1 &&
	wait_for 30 converged &&
	kill_wait $FOLLOW_PID &&
	touch state/blocks/.asyncrep-tmp.left &&
	follow_to "$TRASH/dst" "$TRASH/state" &&
	wait_for 30 converged &&
	test "$(ls -A state/blocks | wc -l)" = "$(find dst -type f -size +1023k | wc -l)"
'

# A hostile primary of the append version (fake-primary.py): what it announces for
# an append is checked before a byte of it is written.
for mode in append-bad-block append-expand; do
	test_expect_success "a primary that lies in an append ($mode): refused, copy kept" '
		{ [ -z "${FOLLOW_PID:-}" ] || kill_wait $FOLLOW_PID; } && FOLLOW_PID= &&
		stop_watch &&
		cp dst/log log.before && echo "$(ino dst/log)" >ino6 &&
		# a refusal drops the entry (the next run takes the general
		# path): each case starts from the entry the follower left
		{ [ -d blocks.saved ] || cp -a state/blocks blocks.saved; } &&
		rm -rf state/blocks && cp -a blocks.saved state/blocks &&
		start_bg fake-$mode.log "$PYTHON3" "$SRCDIR/test/t/fake-primary.py" \
			--mode $mode --listen "$TEST_IP:$TEST_PORT" --tree "$TRASH/src" \
			--victim log --ready-file ready-$mode --lifetime 60 &&
		fake=$last_pid &&
		wait_for 20 test -f ready-$mode &&
		test_must_fail 6 timeout 60 "$ASYNCREP" sync --data-dir dst \
			--state-dir state --primary "$TEST_IP:$TEST_PORT" 2>err-$mode &&
		grep -q "append" err-$mode &&
		grep -q "POST /v1/append" fake-$mode.log &&
		cmp log.before dst/log &&
		test "$(ino dst/log)" = "$(cat ino6)" &&
		kill_wait $fake
	'
done

test_done

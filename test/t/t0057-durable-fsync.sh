#!/bin/sh
test_description='a following standby makes a small batch durable with
fsyncs of what it touched, and a big one with one syncfs; a deletion
costs no syncfs, and a big file deleted is freed off the follow loop'
. "$SRCDIR/test/t/lib.sh"

# A change of one file used to end in a syncfs, which waits for all the
# dirty data of the standby's file system (other writers' too) before
# the next change is asked for. The fsyncs are counted with strace: a
# count of system calls, not a time. LeakSanitizer cannot run under
# ptrace: in a sanitizer build the traced standby checks no leaks.

if ! command -v strace >/dev/null 2>&1; then
	test_skip 'fsync instead of syncfs' 'no strace (Debian: strace)'
	test_done
fi

converged() { trees_equal src dst; }
# syncfs calls in the trace after line $1
syncfs_after() {
	tail -n +"$(($1 + 1))" trace | grep -c "syncfs(" || :
}

test_expect_success 'setup: a primary at interval 0, a standby under strace' '
	mkdir -p src && echo seed >src/seed &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 &&
	start_bg "$TRASH/follow.log" env \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -qq -e trace=syncfs,fsync,openat,unlinkat,close \
		-o "$TRASH/trace" "$ASYNCREP" sync --follow -v \
		--data-dir "$TRASH/dst" --state-dir "$TRASH/state" \
		--primary "$TEST_IP:$TEST_PORT" &&
	STRACE_PID=$last_pid &&
	wait_for 10 pgrep -P "$STRACE_PID" &&
	FOLLOW_PID=$(pgrep -P "$STRACE_PID") &&
	echo "$FOLLOW_PID" >>"$TRASH/.pids" &&
	wait_for 30 converged &&
	echo warm >src/warm && wait_for 20 converged
'

test_expect_success 'single new files: fsyncs, no syncfs' '
	mark=$(wc -l <trace) &&
	for i in 1 2 3 4 5; do
		echo "file $i" >src/one-$i && wait_for 20 converged || return 1
	done &&
	# the batch of one-5 is durable before the standby asks again, so
	# before it can fetch the next file
	echo last >src/last && wait_for 20 converged &&
	n=$(syncfs_after "$mark") &&
	say "syncfs calls for 5 single-file batches: $n" &&
	test "$n" = 0 &&
	test "$(tail -n +"$((mark + 1))" trace | grep -c "fsync(")" -ge 10
'

test_expect_success 'a new file in a subdirectory: no syncfs either' '
	mkdir -p src/d && wait_for 20 converged &&
	mark=$(wc -l <trace) &&
	echo sub >src/d/f && wait_for 20 converged &&
	echo last2 >src/last2 && wait_for 20 converged &&
	n=$(syncfs_after "$mark") &&
	test "$n" = 0
'

test_expect_success 'a directory of 20 files moved in at once: one syncfs' '
	mkdir -p stage/many &&
	for i in $(seq 1 20); do echo "m $i" >stage/many/f$i; done &&
	mark=$(wc -l <trace) &&
	mv stage/many src/many && wait_for 30 converged &&
	echo last3 >src/last3 && wait_for 20 converged &&
	n=$(syncfs_after "$mark") &&
	say "syncfs calls for the directory: $n" &&
	test "$n" -ge 1
'

# A deletion is durable with the fsync of its directory: a syncfs waited
# for all the dirty data of the file system (a lane's big temp file,
# other writers') before the next batch was asked for.
test_expect_success 'a deleted file: no syncfs' '
	echo gone >src/d/gone && wait_for 20 converged &&
	mark=$(wc -l <trace) &&
	rm src/d/gone && wait_for 20 converged &&
	rm src/one-1 && wait_for 20 converged &&
	echo last4 >src/last4 && wait_for 20 converged &&
	n=$(syncfs_after "$mark") &&
	say "syncfs calls for 2 deletions: $n" &&
	test "$n" = 0
'

# Unlinking a big file frees its blocks inside the unlink (0.35 s a GB
# on ext4 mounted with discard): the follow loop would not ask for the
# next batch meanwhile. The loop pins the file (O_PATH), unlinks the
# name, and another thread drops the last reference. Seen in the trace:
# the loop's openat and unlinkat, then the close of that descriptor by
# another thread.
released_elsewhere() {
	awk -v main="$FOLLOW_PID" '
	$1 == main && /openat\(.*"big".*O_PATH/ {
		fd = $0; sub(/.*= /, "", fd); sub(/ .*/, "", fd); next }
	fd != "" && $1 == main && /unlinkat\(.*"big"/ { gone = 1; next }
	gone && $1 != main && (index($0, "close(" fd ")") ||
	    index($0, "close(" fd " <")) { ok = 1 }
	END { exit !ok }' trace
}
test_expect_success 'a big deleted file is freed by another thread' '
	dd if=/dev/urandom of=src/big bs=1M count=16 2>/dev/null &&
	wait_for 60 converged &&
	rm src/big && wait_for 20 converged &&
	wait_for 20 released_elsewhere &&
	echo last5 >src/last5 && wait_for 20 converged
'

test_expect_success 'the standby stops cleanly on SIGTERM' '
	kill -TERM "$FOLLOW_PID" && wait "$STRACE_PID" &&
	trees_equal src dst
'

test_done

#!/bin/sh
test_description='a primary answers a standby that has a batch waiting
before it writes that standby ack down'
. "$SRCDIR/test/t/lib.sh"

# The durable write of an ack (two fsyncs) used to come before the
# answer when a batch was waiting: on the path of the change, 57 ms
# measured beside a big file written back. An ack only ever lags, so it
# is written once the answer went out. Seen in the order of the
# primary's system calls (strace): the batch's sendto or sendmsg (with
# its header, as one answer of known length), then the rename
# of the ack file. LeakSanitizer cannot run under ptrace: in a sanitizer
# build the traced primary checks no leaks.

if ! command -v strace >/dev/null 2>&1; then
	test_skip 'the ack after the answer' 'no strace (Debian: strace)'
	test_done
fi

converged() { trees_equal src dst; }

test_expect_success 'setup: a primary under strace at interval 0, a standby' '
	mkdir -p src && echo seed >src/seed &&
	start_bg "$TRASH/watch.log" env \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -qq -s 96 -e trace=sendto,sendmsg,renameat,rename \
		-o "$TRASH/ptrace" "$ASYNCREP" watch --data-dir "$TRASH/src" \
		--spool-dir "$TRASH/spool" --listen "$TEST_IP:$TEST_PORT" \
		--interval 0 &&
	STRACE_PID=$last_pid &&
	wait_for 10 grep -q "serving" "$TRASH/watch.log" &&
	wait_for 10 pgrep -P "$STRACE_PID" &&
	echo "$(pgrep -P "$STRACE_PID")" >>"$TRASH/.pids" &&
	start_bg "$TRASH/follow.log" "$ASYNCREP" sync --follow \
		--data-dir "$TRASH/dst" --state-dir "$TRASH/state" \
		--primary "$TEST_IP:$TEST_PORT" &&
	FOLLOW_PID=$last_pid &&
	wait_for 30 converged &&
	ID=$(ls "$TRASH/spool/acks") && test -n "$ID"
'

# The standby, stopped in its long-poll, is answered with first-f1le;
# second-f2le is recorded meanwhile. Once it runs again, it applies the
# first and asks from it, with the second waiting. The pause (more than
# the second of spool_ack_busy) makes the ack old enough to be written.
test_expect_success 'a batch waiting: sent before the ack is written' '
	kill -STOP "$FOLLOW_PID" &&
	echo one >src/first-f1le &&
	wait_for 10 grep -Eq "send(to|msg)\(.*first-f1le" ptrace &&
	echo two >src/second-f2le &&
	sleep 1.5 &&
	mark=$(wc -l <ptrace) &&
	kill -CONT "$FOLLOW_PID" &&
	wait_for 20 converged &&
	wait_for 10 grep -q "renameat(.*\"$ID\")" ptrace &&
	tail -n +"$((mark + 1))" ptrace | awk -v id="\"$ID\")" "
		/send(to|msg)\\(.*second-f2le/ && !sent { sent = NR }
		index(\$0, \"renameat(\") && index(\$0, id) && !acked {
			acked = NR }
		END { print \"batch sent at line \" sent \", ack renamed at \" acked
			exit !(sent > 0 && acked > sent) }"
'

test_expect_success 'the processes stop cleanly' '
	kill -CONT "$FOLLOW_PID" &&	# still stopped if the step above failed
	kill -TERM "$FOLLOW_PID" && wait "$FOLLOW_PID" &&
	kill -TERM "$(pgrep -P "$STRACE_PID")" && wait "$STRACE_PID" &&
	trees_equal src dst
'

test_done

#!/bin/sh
test_description='a faithful replica: special files and the root directory, judged by rsync -aHAXS'
. "$SRCDIR/test/t/lib.sh"
. "$SRCDIR/test/t/lib-rescue.sh"

# The judge of the whole issue: rsync -aHAXS --checksum --delete, in a
# dry run, finds nothing to do between the primary's tree and the
# standby's, the root directory's own line included. A FIFO, a socket
# (its inode), a character and a block device (root only) and the
# root's mode, owner and mtime are replicated one-shot, while following
# and through a rescue. A standby that is not root refuses device nodes
# with a warning naming each and a partial exit (3).

judge() {
	rsync -aHAXS --checksum --dry-run -i --delete "$1/" "$2/" \
		>"$TRASH/.judge" 2>&1 &&
	test_cmp /dev/null "$TRASH/.judge"
}

converged() { judge src dst; }

# mksock PATH: a socket inode, as a server that bound it leaves it.
mksock() {
	"$PYTHON3" -c 'import socket,sys
socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$1"
}

T1=200001021234.56
T2=199903040506.07

test_expect_success 'setup: special files of each kind, an odd root' '
	test "$(id -u)" = 0 &&
	mkdir -p src/d src/sub &&
	echo a >src/a && echo b >src/d/b &&
	mkfifo src/fifo && mkfifo -m 640 src/d/fifo2 &&
	mksock src/sock && mksock src/d/sock2 &&
	mknod src/null c 1 3 && mknod -m 600 src/blk b 7 200 &&
	chown 1234:2345 src/fifo src/blk &&
	touch -h -t $T1 src/fifo src/null &&
	chmod 751 src && chown 4321:5432 src && touch -t $T2 src
'

test_expect_success 'one-shot: every kind replicated, the root too, exit 0' '
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 &&
	sync_to "$TRASH/once" "$TRASH/state-once" -i >out &&
	judge src once &&
	grep -q "^cS+++++++++ fifo\$" out &&
	grep -q "^cS+++++++++ d/sock2\$" out &&
	grep -q "^cD+++++++++ blk\$" out
'

test_expect_success 'one-shot again: nothing to do' '
	sync_to "$TRASH/once" "$TRASH/state-once" -i >out &&
	test_cmp /dev/null out
'

test_expect_success 'the root directory alone changed: one-shot mends it' '
	chmod 705 src && touch -t $T1 src &&
	sync_to "$TRASH/once" "$TRASH/state-once" &&
	judge src once
'

test_expect_success 'specials = no and devices = no leave them out' '
	sync_to "$TRASH/nosp" "$TRASH/state-nosp" --specials no \
		--devices no &&
	test -f nosp/a && ! test -e nosp/fifo && ! test -e nosp/null &&
	! test -e nosp/d/sock2
'

test_expect_success 'following: every kind, then each changed' '
	follow_to "$TRASH/dst" "$TRASH/state" &&
	wait_for 20 converged &&
	rm src/fifo && echo now-a-file >src/fifo &&
	rm src/a && mkfifo src/a &&
	rm src/null && mknod src/null c 1 5 &&
	rm src/blk && mknod src/blk c 1 7 &&
	mkfifo src/sub/new && mksock src/sub/newsock &&
	chown 77:88 src/d/fifo2 && chmod 604 src/d/sock2 &&
	rm src/sock &&
	wait_for 20 converged
'

test_expect_success 'following: the root directory s mode, owner and mtime' '
	chmod 750 src && chown 99:98 src &&
	wait_for 20 converged &&
	touch -t $T2 src &&
	wait_for 20 converged
'

test_expect_success 'a standby that is not root: devices refused, named, exit 3' '
	mkdir nr && chown 65534:65534 nr &&
	test_must_fail 3 setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$ASYNCREP" sync --data-dir "$TRASH/nr/data" \
		--state-dir "$TRASH/nr/state" \
		--primary "$TEST_IP:$TEST_PORT" >nr.out 2>nr.err &&
	grep -q "null.*not replicated" nr.err &&
	grep -q "blk.*not replicated" nr.err &&
	! test -e nr/data/null && ! test -e nr/data/blk &&
	test -p nr/data/a && test -S nr/data/d/sock2
'

test_expect_success 'rescue: specials and the root held in the spool and unseen' '
	stop_watch && kill9 $FOLLOW_PID &&
	write_conf r "$TRASH/src" "$TRASH/rspool" 30s &&
	start_primary r &&
	start_follow rs &&
	wait_for 20 judge src rs/data &&
	rm src/d/fifo2 && mknod src/d/fifo2 b 8 1 &&
	mkfifo src/sub/spooled &&
	wait_for 10 grep -qa spooled rspool/seg-*.log &&
	kill -STOP $WATCH_PID && wait_for 10 is_stopped $WATCH_PID &&
	mksock src/sub/unseen && chmod 711 src && touch -t $T1 src &&
	kill9 $WATCH_PID &&
	start_rescue r --timeout 30s &&
	rescued_ok r rs &&
	judge src rs/data
'

test_done

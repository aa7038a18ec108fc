#!/bin/sh
test_description='re-sync after edits, truncation, growth, deletes, renames and type changes'
. "$SRCDIR/test/t/lib.sh"

# bytes_received: the "received N bytes" figure of a -v sync log.
bytes_received() {
	sed -n 's/.*received \([0-9]*\) bytes.*/\1/p' "$1"
}

test_expect_success 'setup: replicate a tree' '
	mkdir -p src/d1/d2 src/todir src/tolink &&
	head -c 4000000 /dev/urandom >src/big &&
	head -c 300000 /dev/urandom >src/grow &&
	head -c 300000 /dev/urandom >src/shrink &&
	echo small >src/small &&
	echo gone >src/d1/gone &&
	echo mover >src/d1/mover &&
	echo f >src/tofile-was-dir-file &&
	mkdir src/dirtofile && echo inner >src/dirtofile/inner &&
	echo x >src/filetodir &&
	ln -s target src/linktofile &&
	echo t >src/todir/t &&
	start_watch "$TRASH/src" "$TRASH/spool" &&
	sync_to "$TRASH/dst" "$TRASH/state" &&
	trees_equal src dst
'

test_expect_success 'edits of every kind replicate' '
	"$PYTHON3" -c "
f = open(\"src/big\", \"r+b\"); f.seek(2000000); f.write(b\"Z\" * 5000); f.close()" &&
	head -c 100000 /dev/urandom >>src/grow &&
	truncate -s 1000 src/shrink &&
	echo changed >src/small &&
	rm src/d1/gone &&
	mv src/d1/mover src/d1/d2/moved &&
	rm -r src/dirtofile && echo now-a-file >src/dirtofile &&
	rm src/filetodir && mkdir src/filetodir && echo deep >src/filetodir/deep &&
	rm src/linktofile && echo plain >src/linktofile &&
	rm -r src/tolink && ln -s elsewhere src/tolink &&
	chmod 600 src/small &&
	sync_to "$TRASH/dst" "$TRASH/state" -v -i >out 2>err &&
	trees_equal src dst &&
	grep -q "^\*deleting   d1/gone$" out &&
	grep -q "^>f.st...... big$" out
'

test_expect_success 'a change in the middle of a big file travels as a delta or its changed blocks' '
	"$PYTHON3" -c "
f = open(\"src/big\", \"r+b\"); f.seek(1000000); f.write(b\"Q\" * 3000); f.close()" &&
	sync_to "$TRASH/dst" "$TRASH/state" -v >out 2>err &&
	trees_equal src dst &&
	grep -Eq "1 by delta|1 by changed blocks" err &&
	test "$(bytes_received err)" -lt 400000
'

test_expect_success 'a second run with nothing changed moves no file data' '
	sync_to "$TRASH/dst" "$TRASH/state" -v -i >out 2>err &&
	test ! -s out &&
	grep -q "0 files whole, 0 by delta" err &&
	trees_equal src dst
'

test_expect_success 'local damage on the standby is repaired' '
	echo scribble >dst/small && touch -d "2001-01-01" dst/small &&
	rm dst/d1/d2/moved &&
	echo extra >dst/extra &&
	mkdir dst/extra-dir && echo e >dst/extra-dir/e &&
	sync_to "$TRASH/dst" "$TRASH/state" &&
	trees_equal src dst
'

test_expect_success 'a stale temp file from a killed run is removed' '
	echo junk >"dst/d1/.asyncrep-tmp.moved.abcdef" &&
	sync_to "$TRASH/dst" "$TRASH/state" &&
	test ! -e "dst/d1/.asyncrep-tmp.moved.abcdef" &&
	trees_equal src dst
'

test_expect_success 'two syncs on one state_dir: the second is refused' '
	"$PYTHON3" -c "
import fcntl, os, subprocess, sys
fd = os.open(\"state/lock\", os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
r = subprocess.run([os.environ[\"ASYNCREP\"], \"sync\", \"--data-dir\", \"$TRASH/dst\",
    \"--state-dir\", \"$TRASH/state\", \"--primary\", \"$TEST_IP:$TEST_PORT\"],
    capture_output=True, timeout=30)
sys.stderr.write(r.stderr.decode())
sys.exit(0 if r.returncode == 13 and b\"another\" in r.stderr else 1)
"
'

test_done

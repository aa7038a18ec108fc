#!/bin/sh
test_description='names excluded on the standby are never replaced, removed or renamed over'
. "$SRCDIR/test/t/lib.sh"

# The standby excludes keep/ (directories only) and holds its own
# keep/mine.txt, and proj/keep/mine.txt inside a directory the primary
# replicates. The primary's entries named keep that are not directories
# collide with the standby's own: they are skipped with a warning.

# same A B: identical trees but for the names called keep, and the
# directories that only hold them on the standby.
same() {
	tree_listing "$1" | grep -v "keep" | grep -v "^b.proj. " >"$TRASH/.same.a" &&
	tree_listing "$2" | grep -v "keep" | grep -v "^b.proj. " >"$TRASH/.same.b" &&
	test_cmp "$TRASH/.same.a" "$TRASH/.same.b"
}

mine_kept() {
	test "$(cat "$1/keep/mine.txt")" = mine &&
	test "$(cat "$1/proj/keep/mine.txt")" = mine-too
}

# skipped CONF: the skipped count that status --json reports.
skipped() {
	"$ASYNCREP" status -c "$1" --json >"$TRASH/.status.json" &&
	"$PYTHON3" -c "
import json, sys
print(json.load(open(sys.argv[1]))[\"skipped\"])" "$TRASH/.status.json"
}

test_expect_success 'setup: a primary, a following standby with its own keep/' '
	mkdir -p src/proj src/sub && echo x >src/x && echo p >src/proj/p &&
	echo s >src/sub/s &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 &&
	mkdir -p dst/keep dst/proj/keep &&
	echo mine >dst/keep/mine.txt && echo mine-too >dst/proj/keep/mine.txt &&
	follow_to "$TRASH/dst" "$TRASH/state" --exclude keep/ &&
	wait_for 20 same src dst && mine_kept dst &&
	printf "[standby]\ndata_dir = %s\nstate_dir = %s\nprimary = %s\n" \
		"$TRASH/dst" "$TRASH/state" "$TEST_IP:$TEST_PORT" >s.conf &&
	test "$(skipped s.conf)" = 0
'

test_expect_success 'following: a file renamed over keep is skipped, with a warning' '
	mv src/x src/keep && echo after >src/after &&
	wait_for 20 same src dst &&
	mine_kept dst &&
	test ! -e dst/x &&
	grep "keep" follow.log | grep -q "exclude" &&
	test "$(skipped s.conf)" -ge 1 &&
	"$ASYNCREP" status -c s.conf >status.out &&
	grep -q "entries of the primary not replicated" status.out
'

test_expect_success 'following: the colliding file changed, then renamed away' '
	echo again >src/keep && echo a2 >src/after2 &&
	wait_for 20 same src dst && mine_kept dst &&
	mv src/keep src/y &&
	wait_for 20 same src dst && mine_kept dst &&
	test "$(cat dst/y)" = again
'

test_expect_success 'following: a colliding file deleted, a symlink over keep' '
	echo z >src/keep && ln -s somewhere src/keep2 &&
	wait_for 20 same src dst &&
	rm src/keep && mv src/keep2 src/keep &&
	wait_for 20 same src dst && mine_kept dst &&
	rm src/keep && echo gone >src/gone &&
	wait_for 20 same src dst && mine_kept dst
'

test_expect_success 'following: a directory renamed to keep is excluded, not merged' '
	mkdir src/dd && echo in >src/dd/in &&
	wait_for 20 test -e dst/dd/in &&
	mv src/dd src/keep &&
	wait_for 20 same src dst && mine_kept dst &&
	test ! -e dst/keep/in && test ! -e dst/dd &&
	rm -r src/keep
'

test_expect_success 'following: a deleted directory keeps the excluded names inside it' '
	rm -r src/proj && echo q >src/q &&
	wait_for 20 same src dst &&
	mine_kept dst && test ! -e dst/proj/p
'

test_expect_success 'following: a directory renamed over a directory holding keep/' '
	mkdir -p src/proj && echo p >src/proj/p &&
	wait_for 20 test -e dst/proj/p &&
	mkdir src/other && echo o >src/other/o &&
	wait_for 20 test -e dst/other/o &&
	mv src/other src/proj2 && rm -r src/proj && mv src/proj2 src/proj &&
	wait_for 20 same src dst && mine_kept dst &&
	test ! -e dst/proj/p && test "$(cat dst/proj/o)" = o
'

test_expect_success 'one-shot: a file in the way of keep/ is skipped, exit 3' '
	mkdir -p one/keep one/proj/keep &&
	echo mine >one/keep/mine.txt && echo mine-too >one/proj/keep/mine.txt &&
	echo file-now >src/keep &&
	wait_for 20 same src dst &&
	test_must_fail 3 sync_to "$TRASH/one" "$TRASH/state-one" \
		--exclude keep/ 2>err &&
	grep "keep" err | grep -q "exclude" &&
	same src one && mine_kept one &&
	printf "[standby]\ndata_dir = %s\nstate_dir = %s\nprimary = %s\n" \
		"$TRASH/one" "$TRASH/state-one" "$TEST_IP:$TEST_PORT" >one.conf &&
	test "$(skipped one.conf)" = 1
'

test_expect_success 'one-shot: a directory gone on the primary keeps keep/ inside' '
	rm -r src/proj && rm src/keep &&
	sync_to "$TRASH/one" "$TRASH/state-one" --exclude keep/ &&
	same src one && mine_kept one &&
	test "$(skipped one.conf)" = 0
'

test_expect_success 'one-shot: a file where the standby has proj/, holding keep/' '
	echo now-a-file >src/proj &&
	test_must_fail 3 sync_to "$TRASH/one" "$TRASH/state-one" \
		--exclude keep/ 2>err &&
	grep "proj" err | grep -q "exclude" &&
	mine_kept one &&
	wait_for 20 same src dst && mine_kept dst
'

test_done

#!/bin/sh
test_description='a rescue through a mount that cannot show extended attributes or ACLs: one warning per kind, exit 3, nothing the standby holds removed'
. "$SRCDIR/test/t/lib.sh"
. "$SRCDIR/test/t/lib-rescue.sh"

# The primary's data is on a file system with xattrs and POSIX ACLs. The
# rescue node reads it through a mount that shows neither (a ramfs copy
# of the tree standing for an sshfs or NFS view): it warns once per kind,
# completes the standby with everything else (a file the primary wrote
# before it died, which only the rescue's compare finds), removes none
# of the xattrs and ACLs the standby holds, and exits 3; the report names
# what was not shown. A file the rescue sends anew (changed since the
# standby had it) comes without what the mount could not show: that is
# what the exit status says. Through a view that shows them, the same rescue
# exits 0 without such a warning.

test_cleanup() {
	umount "$TRASH/view" 2>/dev/null
	return 0
}

if test "$(id -u)" != 0 || ! command -v setfacl >/dev/null ||
	! mkdir "$TRASH/probe" || ! mount -t ramfs none "$TRASH/probe"; then
	test_skip 'rescue through a limited mount' 'needs root, setfacl and ramfs'
	test_done
fi
umount "$TRASH/probe"

test_expect_success 'setup: a tree with xattrs and ACLs, followed' '
	mkdir -p src/d && echo a >src/a && echo b >src/d/b &&
	setfattr -n user.color -v blue src/a &&
	setfattr -n trusted.t -v 1 src/d/b &&
	setfacl -m u:1234:rw src/a && setfacl -d -m u:99:rx src/d &&
	write_conf r "$TRASH/src" "$TRASH/spool" 30s &&
	start_primary r &&
	start_follow rs &&
	wait_for 20 judge src rs/data
'

test_expect_success 'the primary dies with a write nobody saw' '
	kill -STOP $WATCH_PID && wait_for 10 is_stopped $WATCH_PID &&
	echo unseen >src/unseen && echo more >>src/d/b &&
	kill9 $WATCH_PID &&
	mkdir view && mount -t ramfs none view &&
	rsync -rlptgoDH src/ view/ &&
	! getfattr -n user.color view/a 2>/dev/null &&
	sed "s|^data_dir .*|data_dir = $TRASH/view|" r.conf >v.conf
'

test_expect_success 'the rescue through it: a warning per kind, exit 3, the rest complete' '
	start_rescue v --timeout 30s &&
	reap 60 "$RESCUE_PID" &&
	{ test "$RC" = 3 || { echo "rescue exited $RC"; show_logs v rs; }; } &&
	test "$(grep -c "shows no extended attributes here" v.rescue.log)" = 1 &&
	test "$(grep -c "shows no POSIX ACLs here" v.rescue.log)" = 1 &&
	grep -q "^not shown by the mount, not replicated: extended attributes\$" v.rescue.log &&
	grep -q "^not shown by the mount, not replicated: POSIX ACLs\$" v.rescue.log &&
	grep -q "showed no extended attributes and no POSIX ACLs" v.rescue.log &&
	reap 20 "$FOLLOW_PID" &&
	grep -q "the replica is complete" rs.follow.log &&
	test "$(cat rs/data/unseen)" = unseen &&
	test "$(cat rs/data/d/b)" = "$(cat src/d/b)" &&
	test -f spool/rescued &&
	test "$(getfattr --only-values -n user.color rs/data/a)" = blue &&
	getfacl -n -p rs/data/a | grep -qx "user:1234:rw-" &&
	getfacl -n -p -d rs/data/d | grep -qx "user:99:r-x" &&
	{ judge src rs/data >/dev/null; sed "/ d\/b\$/d" .judge >judge.rest; } &&
	test_cmp /dev/null judge.rest
'

test_expect_success 'through a view that shows them: exit 0, no such warning' '
	rm spool/rescued &&
	echo again >src/again &&
	start_follow rs2 &&
	start_rescue r --timeout 30s &&
	rescued_ok r rs2 &&
	! grep -q "shows no" r.rescue.log &&
	judge src rs2/data
'

test_done

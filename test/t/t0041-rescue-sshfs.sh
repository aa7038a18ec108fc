#!/bin/sh
test_description='rescue over sshfs (FUSE over loopback): caching, a hung mount'
: "${PYTHON3:=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}"
. "$SRCDIR/test/t/lib.sh"
. "$SRCDIR/test/t/lib-rescue.sh"

# These machines have no NFS. sshfs reaches the primary's storage over a
# loopback TCP connection (sftp-serve.py runs the system's sftp-server on
# it) and caches attributes, directory listings and lookups as a network
# filesystem does. A stopped sshfs is a hung server: every access waits
# (killably, like an NFS hard mount) and never returns.
#
# The primary's storage is $TRASH/store; the third node sees it under
# ROOT: sshfs mounts $TRASH/store at $ROOT$TRASH/store, so --root ROOT
# puts the primary's absolute paths onto the mount.
ROOT=$TRASH/root
MNT=$ROOT$TRASH/store
SSHFS_PID= SFTP_PID=
# sshfs shows no extended attributes (nor ACLs): a rescue through it
# warns once per kind and exits 3 once the standby is complete.
RESCUE_OK_RC=3
# sftp keeps whole seconds of mtime: trees are compared at that resolution.
TREELIST_MTIME_RES=1000000000
export TREELIST_MTIME_RES
FUSERMOUNT=$(command -v fusermount3 || command -v fusermount || :)
SFTP_SERVER=
for f in /usr/lib/openssh/sftp-server /usr/lib/sftp-server /usr/libexec/sftp-server; do
	[ -x "$f" ] && { SFTP_SERVER=$f; break; }
done
why=
[ "$(id -u)" = 0 ] || why="not root"
[ -n "$why" ] || command -v sshfs >/dev/null 2>&1 || why="no sshfs (Debian: sshfs)"
[ -n "$why" ] || [ -n "$FUSERMOUNT" ] || why="no fusermount3 (Debian: fuse3)"
[ -n "$why" ] || [ -n "$SFTP_SERVER" ] || why="no sftp-server (Debian: openssh-sftp-server)"
[ -n "$why" ] || [ -c /dev/fuse ] || why="no /dev/fuse"
if [ -n "$why" ]; then
	test_skip "rescue over sshfs" "$why"
	test_done
fi

# mount_store [sshfs options]: sshfs of $TRASH/store at $MNT, in the
# foreground (SSHFS_PID is sshfs itself). Not in BG_PIDS: stop_strays
# between scenarios leaves the mount alone; test_cleanup ends it.
mount_store() {
	rm -f port &&
	{ "$PYTHON3" "$SRCDIR/test/t/sftp-serve.py" 127.0.0.1 port >sftp.log 2>&1 &
	  SFTP_PID=$!; } &&
	wait_for 10 test -s port &&
	mkdir -p "$MNT" &&
	{ sshfs -f -o directport="$(cat port)" "$@" \
		127.0.0.1:"$TRASH/store" "$MNT" >sshfs.log 2>&1 &
	  SSHFS_PID=$!; } &&
	wait_for 10 mountpoint -q "$MNT" || { cat sshfs.log sftp.log; return 1; }
}

umount_store() {
	[ -n "$SSHFS_PID" ] && kill -CONT "$SSHFS_PID" 2>/dev/null
	if mountpoint -q "$MNT" 2>/dev/null; then
		"$FUSERMOUNT" -u "$MNT" 2>/dev/null ||
		"$FUSERMOUNT" -uz "$MNT" 2>/dev/null ||
		umount -l "$MNT" 2>/dev/null
	fi
	for pid in $SSHFS_PID $SFTP_PID; do
		wait_for 10 exited "$pid" || kill -KILL "$pid"
	done
	SSHFS_PID= SFTP_PID=
	return 0
}

test_cleanup() {
	umount_store
}

# ---------------------------------------------------------------------
# 1. The third node's mount has cached the tree (attributes, listings)
# before the primary's last changes. Stale sizes would cut the journal
# short and stale metadata would hide changes from the compare (without
# --settle, the new file below is lost): --settle outwaits the caches
# (10 s here: sshfs's dcache_timeout; the kernel's attr_timeout is 1 s),
# and the rescue ships what the disk holds.

test_expect_success 'setup: a primary whose storage a third node has mounted and read' '
	mkdir -p store/p1/data/sub &&
	for i in 1 2 3 4 5 6; do
		head -c $((i * 20000)) /dev/urandom >store/p1/data/sub/f$i || return 1
	done &&
	echo same-size-a >store/p1/data/edit &&
	write_conf p1 "$TRASH/store/p1/data" "$TRASH/store/p1/spool" 30s &&
	start_primary p1 &&
	start_follow s1 &&
	wait_for 20 trees_equal store/p1/data s1/data &&
	mount_store -o dcache_timeout=10 &&
	ls -laR "$MNT/p1" >/dev/null &&
	cat "$MNT"/p1/data/sub/* "$MNT/p1/data/edit" >/dev/null
'

test_expect_success 'changes held by a 30 s interval, then the primary dies' '
	head -c 5000 /dev/urandom >>store/p1/data/sub/f1 &&
	: >store/p1/data/sub/f2 &&
	rm store/p1/data/sub/f3 &&
	mv store/p1/data/sub/f4 store/p1/data/moved &&
	echo same-size-b >store/p1/data/edit &&
	echo new >store/p1/data/sub/new &&
	wait_for 10 grep -qa moved store/p1/spool/seg-*.log &&
	kill -STOP $WATCH_PID && wait_for 10 is_stopped $WATCH_PID &&
	head -c 7000 /dev/urandom >>store/p1/data/sub/f5 &&
	echo unseen >store/p1/data/unseen &&
	kill9 $WATCH_PID &&
	! trees_equal store/p1/data s1/data
'

test_expect_success 'the mount still shows the old listing' '
	ls "$MNT/p1/data/sub" >listing &&
	cat listing &&
	! grep -qx new listing
'

test_expect_success 'rescue through the caching mount: the standby ends identical' '
	start_rescue p1 --root "$ROOT" --timeout 30s --settle 11s &&
	rescued_ok p1 s1 &&
	grep -q "waiting 11.0 s for the mount" p1.rescue.log &&
	! grep -q "is on FUSE" p1.rescue.log &&
	test "$(grep -c "shows no extended attributes here" p1.rescue.log)" = 1 &&
	test "$(grep -c "shows no POSIX ACLs here" p1.rescue.log)" = 1 &&
	cat "$MNT/p1/spool/rescued" &&
	grep -q "^found only by the compare: unseen$" "$MNT/p1/spool/rescued" &&
	trees_equal store/p1/data s1/data
'

# ---------------------------------------------------------------------
# 2. A hung mount: sshfs stopped. The rescue must fail with 17 within its
# --storage-timeout, wherever it was: reading the configuration, or
# serving the standby.

test_expect_success 'setup: a second primary that ran and died' '
	stop_strays &&
	mkdir -p store/p2/data && echo before >store/p2/data/f &&
	write_conf p2 "$TRASH/store/p2/data" "$TRASH/store/p2/spool" 30s &&
	cp p2.conf store/p2.conf &&
	start_primary p2 &&
	start_follow s2 &&
	wait_for 20 trees_equal store/p2/data s2/data &&
	echo held >store/p2/data/held &&
	wait_for 10 grep -qa held store/p2/spool/seg-*.log &&
	kill9 $WATCH_PID &&
	kill9 $FOLLOW_PID
'

test_expect_success 'hung while reading the configuration: 17, the storage timeout (not --timeout)' '
	kill -STOP $SSHFS_PID && wait_for 10 is_stopped $SSHFS_PID &&
	test_must_fail 17 timeout 60 "$ASYNCREP" rescue -c "$MNT/p2.conf" \
		--root "$ROOT" --storage-timeout 2s --timeout 30s \
		--status-file "$TRASH/cfg.status" 2>err &&
	cat err "$TRASH/cfg.status" &&
	grep -q "^failed storage hung .* reading the configuration file" "$TRASH/cfg.status" &&
	grep -q "storage hung" err && grep -q "configuration file" err &&
	kill -CONT $SSHFS_PID
'

test_expect_success 'hung while serving the standby: 17, the status says why' '
	stop_strays &&
	rm -f p2.rescue-status &&
	start_rescue p2 --root "$ROOT" --storage-timeout 2s --timeout 30s &&
	wait_for 10 status_is p2 listening &&
	kill -STOP $SSHFS_PID && wait_for 10 is_stopped $SSHFS_PID &&
	start_follow s2 &&
	reap 30 $RESCUE_PID && test "$RC" = 17 &&
	cat p2.rescue.log p2.rescue-status &&
	grep -q "storage hung" p2.rescue.log &&
	status_is p2 failed && grep -q "storage hung" p2.rescue-status &&
	grep -q "is on FUSE" p2.rescue.log &&
	kill -0 $FOLLOW_PID &&
	! grep -q "the replica is complete" s2.follow.log
'

test_expect_success 'the mount answers again: a rerun of the rescue completes' '
	kill -CONT $SSHFS_PID &&
	start_rescue p2 --root "$ROOT" --timeout 30s --settle 3s &&
	rescued_ok p2 s2 &&
	trees_equal store/p2/data s2/data
'

test_expect_success 'unmount' '
	stop_strays &&
	umount_store &&
	! mountpoint -q "$MNT"
'

test_done

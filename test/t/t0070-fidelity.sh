#!/bin/sh
test_description='a faithful replica: special files, the root directory, xattrs, ACLs, sparse files and hard links, judged by rsync -aHAXS'
. "$SRCDIR/test/t/lib.sh"
. "$SRCDIR/test/t/lib-rescue.sh"

# The judge of the whole issue: rsync -aHAXS --checksum --delete, in a
# dry run, finds nothing to do between the primary's tree and the
# standby's, the root directory's own line included. A FIFO, a socket
# (its inode), a character and a block device (root only) and the
# root's mode, owner and mtime are replicated one-shot, while following
# and through a rescue, and so are extended attributes (user., trusted.,
# security.) and POSIX ACLs (access and default) on files, directories,
# symlinks and the root. A standby that is not root refuses device nodes
# with a warning naming each and a partial exit (3); one that takes only
# the user. namespace never writes another. A 100 MB sparse file with 4
# KiB of data takes about 4 KiB on the standby and on the wire, one-shot,
# and keeps its holes through a punched hole and a sparse extension while
# following (whole and as a delta). A hard-link group stays one inode
# on the standby through new links, unlinks, renames and writes.

converged() { judge src dst; }

# kib PATH: the KiB a file takes on disk.
kib() { du -k "$1" | cut -f1; }

# mksock PATH: a socket inode, as a server that bound it leaves it.
mksock() {
	"$PYTHON3" -c 'import socket,sys
socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$1"
}

# Mounts made for the steps below, undone whatever happens.
test_cleanup() {
	for m in noxa vfat big bigdst; do
		umount "$TRASH/$m" 2>/dev/null
	done
	return 0
}

T1=200001021234.56
T2=199903040506.07

test_expect_success 'setup: special files of each kind, an odd root' '
	test "$(id -u)" = 0 &&
	mkdir -p src/d src/sub &&
	echo a >src/a && echo b >src/d/b && echo c >src/c &&
	mkfifo src/fifo && mkfifo -m 640 src/d/fifo2 &&
	mksock src/sock && mksock src/d/sock2 &&
	mknod src/null c 1 3 && mknod -m 600 src/blk b 7 200 &&
	chown 1234:2345 src/fifo src/blk &&
	touch -h -t $T1 src/fifo src/null &&
	setfattr -n user.color -v blue src/a &&
	setfattr -n user.empty src/d/b &&
	setfattr -n trusted.t -v 1 src/d/b &&
	setfattr -n security.s -v 2 src/d/b &&
	ln -s a src/lnk && setfattr -h -n trusted.link -v 3 src/lnk &&
	setfacl -m u:1234:rw,g:2345:r src/a &&
	setfacl -d -m u:99:rx src/d && echo i >src/d/inherits &&
	setfattr -n user.on-a-dir -v x src/sub &&
	echo h >src/h1 && ln src/h1 src/d/h2 && ln src/h1 src/sub/h3 &&
	truncate -s 100M src/sparse &&
	printf "%4096s" data | dd of=src/sparse bs=4096 seek=1000 \
		conv=notrunc 2>/dev/null &&
	truncate -s 10M src/tailhole && echo x >>src/tailhole &&
	truncate -s 20M src/tailhole &&
	setfattr -n user.root -v r src &&
	chmod 751 src && chown 4321:5432 src && touch -t $T2 src
'

test_expect_success 'one-shot: every kind replicated, the root too, exit 0' '
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 &&
	sync_to "$TRASH/once" "$TRASH/state-once" -i >out &&
	judge src once &&
	grep -q "^cS+++++++++ fifo\$" out &&
	grep -q "^cS+++++++++ d/sock2\$" out &&
	grep -q "^cD+++++++++ blk\$" out &&
	grep -q "^\.f\.\.\.\.\.\.\.ax a\$" out &&
	grep -q "^\.d\.\.\.\.\.\.\.a\. d/\$" out &&
	test "$(getfattr -h --only-values -n trusted.link once/lnk)" = 3 &&
	grep -q "^hf+++++++++ d/h2 => h1\$" out &&
	test "$(stat -c %i once/h1)" = "$(stat -c %i once/sub/h3)"
'

test_expect_success 'one-shot: a sparse file takes its data, on disk and on the wire' '
	sync_to "$TRASH/sparse1" "$TRASH/state-sparse1" -v >sp.out 2>&1 &&
	judge src sparse1 &&
	test "$(kib sparse1/sparse)" -le 64 &&
	test "$(kib sparse1/tailhole)" -le 64 &&
	got=$(sed -n "s/.*received \([0-9]*\) bytes.*/\1/p" sp.out) &&
	test -n "$got" && test "$got" -lt 1000000
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
	rm src/c && mkfifo src/c &&
	rm src/null && mknod src/null c 1 5 &&
	rm src/blk && mknod src/blk c 1 7 &&
	mkfifo src/sub/new && mksock src/sub/newsock &&
	chown 77:88 src/d/fifo2 && chmod 604 src/d/sock2 &&
	rm src/sock &&
	wait_for 20 converged
'

test_expect_success 'following: xattrs set, replaced, removed; ACLs changed and inherited' '
	setfattr -n user.color -v red src/a &&
	setfattr -x user.empty src/d/b &&
	setfattr -n trusted.t -v 11 src/d/b &&
	setfacl -m u:55:r src/d/b &&
	setfacl -x u:1234 src/a &&
	setfacl -d -m g:77:rwx src/d &&
	echo inherited >src/d/new && mkdir src/d/newdir &&
	setfattr -n user.root -v changed src &&
	wait_for 20 converged
'

test_expect_success 'following: a hole punched in a live file, a file extended sparsely' '
	wait_for 90 converged &&
	printf "%8192s" more | dd of=src/sparse bs=4096 seek=3000 \
		conv=notrunc 2>/dev/null &&
	wait_for 90 converged &&
	fallocate -p -o 4096000 -l 4096 src/sparse &&
	wait_for 90 converged &&
	truncate -s 200M src/tailhole &&
	wait_for 90 converged &&
	test "$(kib dst/sparse)" -le 256 &&
	test "$(kib dst/tailhole)" -le 256
'

test_expect_success 'following: a hard-link group through new links, unlinks, renames, writes' '
	ln src/h1 src/hnew &&
	wait_for 20 converged &&
	rm src/sub/h3 &&
	mv src/d/h2 src/sub/h2moved &&
	wait_for 20 converged &&
	echo more >>src/h1 &&
	wait_for 20 converged &&
	test "$(stat -c %i dst/hnew)" = "$(stat -c %i dst/sub/h2moved)"
'

test_expect_success 'following: the root directory s mode, owner and mtime' '
	chmod 750 src && chown 99:98 src &&
	wait_for 20 converged &&
	touch -t $T2 src &&
	wait_for 20 converged
'

test_expect_success 'poll mode sees special files and xattr changes too' '
	stop_watch &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 \
		--watch-mode poll --poll-interval 100ms &&
	wait_for 20 converged &&
	mkfifo src/sub/polled && setfattr -n user.polled -v p src/d/b &&
	setfacl -m u:66:r src/d/b &&
	setfattr -h -n trusted.polled -v q src/sub/newsock &&
	wait_for 20 converged
'

test_expect_success 'xattrs = user: no other namespace is written' '
	sync_to "$TRASH/onlyuser" "$TRASH/state-onlyuser" --xattrs user &&
	test "$(getfattr --only-values -n user.color onlyuser/a)" = red &&
	getfattr -d -m - onlyuser/d/b >attrs &&
	! grep -q "^trusted\." attrs && ! grep -q "^security\.s" attrs
'

# A primary without a token serves a local user only if it owns data_dir
# (the security issue's finding 4): the tree is lent to 65534 meanwhile.
test_expect_success 'a standby that is not root: devices refused, named, exit 3' '
	mkdir nr && chown 65534:65534 nr &&
	own=$(stat -c %u:%g src) && chown 65534 src &&
	st=0 && { setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$ASYNCREP" sync --data-dir "$TRASH/nr/data" \
		--state-dir "$TRASH/nr/state" \
		--primary "$TEST_IP:$TEST_PORT" >nr.out 2>nr.err || st=$?; } &&
	chown "$own" src &&
	test "$st" = 3 &&
	grep -q "null.*not replicated" nr.err &&
	grep -q "blk.*not replicated" nr.err &&
	grep -q "extended attribute .trusted\..* not replicated" nr.err &&
	! test -e nr/data/null && ! test -e nr/data/blk &&
	test -p nr/data/c && test -S nr/data/d/sock2
'

test_expect_success 'rescue: specials and the root held in the spool and unseen' '
	stop_watch && kill9 $FOLLOW_PID &&
	write_conf r "$TRASH/src" "$TRASH/rspool" 30s &&
	start_primary r &&
	start_follow rs &&
	wait_for 20 judge src rs/data &&
	rm src/d/fifo2 && mknod src/d/fifo2 b 8 1 &&
	mkfifo src/sub/spooled && ln src/h1 src/d/hspooled &&
	wait_for 10 grep -qa spooled rspool/seg-*.log &&
	kill -STOP $WATCH_PID && wait_for 10 is_stopped $WATCH_PID &&
	setfattr -n user.spooled -v s src/a &&
	mksock src/sub/unseen && chmod 711 src && touch -t $T1 src &&
	ln src/h1 src/sub/hunseen &&
	setfattr -n user.unseen -v u src/d/b && setfacl -m u:3:r src/sub &&
	kill9 $WATCH_PID &&
	start_rescue r --timeout 30s &&
	rescued_ok r rs &&
	judge src rs/data
'

test_expect_success 'a standby file system without xattrs: one warning at start, exit 3' '
	start_watch "$TRASH/src" "$TRASH/spool2" --interval 0 &&
	mkdir noxa && mount -t ramfs none noxa &&
	test_must_fail 3 sync_to "$TRASH/noxa/data" "$TRASH/state-noxa" \
		2>noxa.err &&
	test "$(grep -c "holds no extended attributes" noxa.err)" = 1 &&
	grep -q "not replicated (see the warnings)" noxa.err &&
	test -p noxa/data/sub/spooled &&
	test "$(cat noxa/data/h1)" = "$(cat src/h1)" &&
	umount noxa
'

# A vfat image also lacks symlinks, owners and special files; this
# kernel may not have vfat at all.
if mkdir vfat && truncate -s 64M vfat.img && mkfs.vfat vfat.img >/dev/null 2>&1 &&
	mount -o loop vfat.img vfat 2>/dev/null; then
	test_expect_success 'a vfat standby: warnings, exit 3' '
		test_must_fail 3 sync_to "$TRASH/vfat/data" "$TRASH/state-vfat" \
			2>vfat.err &&
		grep -q "holds no extended attributes" vfat.err
	'
else
	test_skip 'a vfat standby: warnings, exit 3' 'no vfat here (mkfs.vfat or the kernel module missing)'
fi

test_expect_success 'xattrs past the limits: the primary warns, the standby exits 3' '
	stop_watch &&
	mkdir big bigdst && mount -t tmpfs none big &&
	mount -t tmpfs none bigdst &&
	echo b >big/f &&
	for i in 1 2 3; do
		"$PYTHON3" -c "import os; os.setxattr(\"big/f\", \"trusted.big$i\", b\"x\" * 60000)" ||
		return 1
	done &&
	WATCH_LOG=$TRASH/big.watch.log start_watch "$TRASH/big" "$TRASH/bigspool" \
		--interval 0 &&
	test_must_fail 3 sync_to "$TRASH/bigdst" "$TRASH/state-bigdst" \
		2>big.err &&
	grep -q "past the limits" big.watch.log &&
	grep -q "f.: not replicated: the primary could not send all" big.err &&
	getfattr -d -m "^trusted\.big" bigdst/f >big.attrs &&
	test "$(grep -c "^trusted\.big" big.attrs)" = 2 &&
	stop_watch && umount big && umount bigdst
'

test_done

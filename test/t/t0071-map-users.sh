#!/bin/sh
test_description='map_users: owners, groups and ACL qualifiers mapped by name, as rsync does without --numeric-ids'
. "$SRCDIR/test/t/lib.sh"
. "$SRCDIR/test/t/lib-rescue.sh"

# The primary and the standby each run in a mount namespace of their own
# with their own /etc/passwd and /etc/group bind-mounted over, where
# alice, bob, staff and devs have other ids: with map_users = yes the
# standby's files, directories, symlinks, the root and the ACL entries
# take the standby's ids of those names; a name unknown on the standby
# (carol, ghosts), an id without a name on the primary (2999) and id 0
# keep their numbers; without map_users every number is kept. One-shot,
# following, through a rescue (which names the ids as its own host
# does), and against a primary that sends no names (warned once).

REAL_ASYNCREP=$ASYNCREP

# ns_wrapper NAME PASSWD GROUP: a script that runs asyncrep with PASSWD
# and GROUP as /etc/passwd and /etc/group (unshare -m, private mounts;
# unshare execs, so the pid is asyncrep's).
ns_wrapper() {
	{
		echo '#!/bin/sh' &&
		echo "exec unshare -m --propagation private sh -c 'mount --bind \"\$1\" /etc/passwd && mount --bind \"\$2\" /etc/group && shift 2 && exec \"\$@\"' sh \"$TRASH/$2\" \"$TRASH/$3\" \"$REAL_ASYNCREP\" \"\$@\""
	} >"$TRASH/$1" &&
	chmod +x "$TRASH/$1"
}

# as_primary / as_standby CMD...: a lib.sh helper, run with the asyncrep
# of that side's namespace.
as_primary() {
	ASYNCREP=$TRASH/prim.sh
	"$@"
	ap_st=$?
	ASYNCREP=$REAL_ASYNCREP
	return $ap_st
}
as_standby() {
	ASYNCREP=$TRASH/stby.sh
	"$@"
	as_st=$?
	ASYNCREP=$REAL_ASYNCREP
	return $as_st
}

# run_asyncrep ARGS...: $ASYNCREP as it is when called.
run_asyncrep() { "$ASYNCREP" "$@"; }

# owners DIR: "path uid:gid" of the entries of the test, one a line.
owners() {
	for p in . a d lnk c n r; do
		echo "$p $(stat -c %u:%g "$1/$p")" || return 1
	done
}

# acl DIR PATH [-d]: the ACL entries of DIR/PATH with numeric ids.
acl() {
	getfacl -n -p --omit-header ${3:-} "$1/$2" 2>/dev/null | grep -v '^$'
}

# The content, types, modes and mtimes agree (owners and ACLs are
# checked on their own: they are meant to differ).
content_same() {
	rsync -rlptDHXS --checksum --dry-run -i --delete "$1/" "$2/" \
		>"$TRASH/.judge" 2>&1 &&
	test_cmp /dev/null "$TRASH/.judge"
}

if test "$(id -u)" != 0 || ! unshare -m true 2>/dev/null ||
	! command -v setfacl >/dev/null; then
	test_skip 'map_users' 'needs root, unshare -m and setfacl'
	test_done
fi

printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
	'alice:x:2001:3001::/:/bin/sh' 'bob:x:2002:3002::/:/bin/sh' \
	'carol:x:2003:3001::/:/bin/sh' >p.passwd
printf '%s\n' 'root:x:0:' 'staff:x:3001:' 'devs:x:3002:' \
	'ghosts:x:3003:' >p.group
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
	'alice:x:5001:6001::/:/bin/sh' 'bob:x:5002:6002::/:/bin/sh' >s.passwd
printf '%s\n' 'root:x:0:' 'staff:x:6001:' 'devs:x:6002:' >s.group
printf '%s\n' '. 5002:6001' 'a 5001:6001' 'd 5002:6002' 'lnk 5001:3003' \
	'c 2003:6001' 'n 2999:2999' 'r 0:0' >expect.mapped
printf '%s\n' '. 2002:3001' 'a 2001:3001' 'd 2002:3002' 'lnk 2001:3003' \
	'c 2003:3001' 'n 2999:2999' 'r 0:0' >expect.numeric

test_expect_success 'setup: two hosts that name ids differently' '
	ns_wrapper prim.sh p.passwd p.group &&
	ns_wrapper stby.sh s.passwd s.group &&
	mkdir -p src/d && echo a >src/a && echo c >src/c && echo n >src/n &&
	echo r >src/r && ln -s a src/lnk &&
	chown 2001:3001 src/a && chown 2002:3002 src/d &&
	chown -h 2001:3003 src/lnk && chown 2003:3001 src/c &&
	chown 2999:2999 src/n && chown 0:0 src/r && chown 2002:3001 src &&
	setfacl -m u:2002:rw,g:3002:r,u:2003:r src/a &&
	setfacl -d -m u:2001:rx src/d &&
	as_primary start_watch "$TRASH/src" "$TRASH/spool" --interval 0
'

test_expect_success 'one-shot with map_users: the standby ids of the names' '
	as_standby sync_to "$TRASH/m" "$TRASH/state-m" --map-users yes &&
	content_same src m &&
	owners m >got && test_cmp expect.mapped got &&
	acl m a >a.acl &&
	grep -qx "user:5002:rw-" a.acl && grep -qx "group:6002:r--" a.acl &&
	grep -qx "user:2003:r--" a.acl &&
	acl m d -d >d.acl && grep -qx "user:5001:r-x" d.acl
'

test_expect_success 'one-shot without map_users: every number kept' '
	as_standby sync_to "$TRASH/num" "$TRASH/state-num" &&
	content_same src num &&
	owners num >got && test_cmp expect.numeric got &&
	acl num a >a.acl && grep -qx "user:2002:rw-" a.acl &&
	grep -qx "group:3002:r--" a.acl
'

test_expect_success 'map_users turned on: owners itemized as o and g, then mapped' '
	as_standby sync_to "$TRASH/num" "$TRASH/state-num" --map-users yes \
		-i >it.out &&
	grep -q "^\.f\.\.\.\.og\.\.\. a\$" it.out &&
	grep -q "^\.L\.\.\.\.o\.\.\.\. lnk\$" it.out &&
	grep -q "^\.d\.\.\.\.og\.\.\. d/\$" it.out &&
	grep -q "^\.d\.\.[.t]\.og\.\.\. \./\$" it.out &&
	! grep -q " n\$" it.out && ! grep -q " r\$" it.out &&
	owners num >got && test_cmp expect.mapped got &&
	acl num a >a.acl && grep -qx "user:5002:rw-" a.acl &&
	as_standby sync_to "$TRASH/num" "$TRASH/state-num" --map-users yes \
		-i >it2.out &&
	test_cmp /dev/null it2.out
'

following_mapped() {
	test "$(stat -c %u:%g f/new)" = 5002:6002 &&
	test "$(stat -c %u:%g f/c)" = 5001:6001 &&
	test "$(stat -c %u:%g f/d/sub)" = 2003:6002 &&
	acl f n >"$TRASH/.n.acl" &&
	grep -qx "user:5001:r--" "$TRASH/.n.acl" &&
	grep -qx "group:3003:r--" "$TRASH/.n.acl"
}

test_expect_success 'following with map_users: changes take the standby ids' '
	as_standby follow_to "$TRASH/f" "$TRASH/state-f" --map-users yes &&
	wait_for 20 content_same src f &&
	owners f >got && test_cmp expect.mapped got &&
	echo new >src/new && chown 2002:3002 src/new &&
	chown 2001 src/c && mkdir src/d/sub && chown 2003:3002 src/d/sub &&
	setfacl -m u:2001:r,g:3003:r src/n &&
	wait_for 30 following_mapped &&
	wait_for 10 content_same src f &&
	test "$(stat -c %u:%g f/r)" = 0:0 &&
	kill_wait $FOLLOW_PID
'

test_expect_success 'a rescue serves the names too' '
	stop_watch &&
	write_conf r "$TRASH/src" "$TRASH/rspool" 30s &&
	as_primary start_primary r &&
	as_standby start_follow rs --map-users yes &&
	wait_for 20 content_same src rs/data &&
	test "$(stat -c %u:%g rs/data/a)" = 5001:6001 &&
	test "$(stat -c %u:%g rs/data/c)" = 5001:6001 &&
	kill -STOP $WATCH_PID && wait_for 10 is_stopped $WATCH_PID &&
	echo u >src/unseen && chown 2001:3002 src/unseen &&
	chown 2002:3001 src/r &&
	kill9 $WATCH_PID &&
	as_primary start_rescue r --timeout 30s &&
	rescued_ok r rs &&
	test "$(stat -c %u:%g rs/data/unseen)" = 5001:6002 &&
	test "$(stat -c %u:%g rs/data/r)" = 5002:6001 &&
	test "$(stat -c %u:%g rs/data/n)" = 2999:2999 &&
	content_same src rs/data
'

test_expect_success 'a primary that sends no names: one warning, numbers kept' '
	FPORT=$(free_port) &&
	start_bg "$TRASH/fake.log" "$PYTHON3" "$SRCDIR/test/t/fake-primary.py" \
		--mode honest --listen "$TEST_IP:$FPORT" --tree "$TRASH/src" \
		--ready-file "$TRASH/ready" --lifetime 120 &&
	wait_for 10 test -f "$TRASH/ready" &&
	as_standby run_asyncrep sync --data-dir "$TRASH/old" \
		--state-dir "$TRASH/state-old" --primary "$TEST_IP:$FPORT" \
		--map-users yes 2>old.err &&
	test "$(grep -c "map_users: the primary speaks protocol version" old.err)" = 1 &&
	test "$(stat -c %u:%g old/a)" = 2001:3001 &&
	test "$(stat -c %u:%g old/d)" = 2002:3002
'

test_done

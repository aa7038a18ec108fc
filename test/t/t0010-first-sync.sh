#!/bin/sh
test_description='first sync of a mixed tree, byte for byte'
. "$SRCDIR/test/t/lib.sh"

make_tree() {
	mkdir -p src/a/b/c/d src/empty-dir src/"sp ace" &&
	echo hello >src/a/x &&
	: >src/empty-file &&
	head -c 5000000 /dev/urandom >src/big &&
	head -c 70000 /dev/urandom >src/a/b/medium &&
	printf 'line\n' >"src/new
line" &&
	printf 'bytes' >"$(printf 'src/bad\377utf8')" &&
	printf 'tab' >"$(printf 'src/a/ta\tb')" &&
	ln -s /etc/passwd src/abs-link &&
	ln -s ../x src/a/b/rel-link &&
	ln -s does-not-exist src/dangling &&
	ln -s c src/a/b/dir-link &&
	chmod 0640 src/a/x &&
	chmod 0750 src/a/b &&
	chmod 4755 src/a/b/medium &&
	touch -d '2001-02-03 04:05:06.123456789' src/a/x &&
	touch -h -d '2002-02-03 04:05:06' src/dangling &&
	touch -d '2003-02-03 04:05:06.5' src/a/b/c
}

test_expect_success 'setup: a mixed tree and a primary' '
	make_tree &&
	start_watch "$TRASH/src" "$TRASH/spool"
'

test_expect_success 'first sync makes an identical tree' '
	sync_to "$TRASH/dst" "$TRASH/state" -i >itemized &&
	trees_equal src dst &&
	grep -q "^>f+++++++++ big$" itemized &&
	grep -q "^cL+++++++++ abs-link$" itemized
'

test_expect_success 'symlinks are copied as links, never followed' '
	test -L dst/abs-link && test "$(readlink dst/abs-link)" = /etc/passwd &&
	test -L dst/a/b/dir-link && test -L dst/dangling
'

test_expect_success 'no temp files are left behind' '
	find dst -name ".asyncrep-tmp.*" >tmpfiles &&
	test_cmp /dev/null tmpfiles
'

test_expect_success 'a dry run on a fresh standby changes nothing' '
	sync_to "$TRASH/dry" "$TRASH/state-dry" --dry-run -i >dry.out &&
	grep -q "^>f+++++++++ big$" dry.out &&
	test ! -e dry
'

test_expect_success 'the generation is recorded in state_dir' '
	gen=$(cat spool/generation) && test -n "$gen" &&
	test "$(cat state/generation)" = "$gen"
'

test_done

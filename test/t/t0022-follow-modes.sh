#!/bin/sh
test_description='poll mode, exclude patterns, two standbys, status'
. "$SRCDIR/test/t/lib.sh"

start_follow() {
	name=$1; shift
	start_bg "$TRASH/follow-$name.log" "$ASYNCREP" sync --follow -v \
		--data-dir "$TRASH/$name" --state-dir "$TRASH/state-$name" \
		--standby-id "$name" --primary "$TEST_IP:$TEST_PORT" "$@"
}

# same A B: identical trees, leaving out what the test excludes.
same() {
	tree_listing "$1" >"$TRASH/.same.a.all" &&
	tree_listing "$2" >"$TRASH/.same.b.all" &&
	same_filter "$TRASH/.same.a.all" >"$TRASH/.same.a" &&
	same_filter "$TRASH/.same.b.all" >"$TRASH/.same.b" &&
	test_cmp "$TRASH/.same.a" "$TRASH/.same.b"
}

same_filter() {
	grep -v "keep\|\.tmp'" "$1"
}

test_expect_success 'setup: a polling primary with excludes, two standbys' '
	mkdir -p src/sub && echo a >src/a && echo junk >src/sub/x.tmp &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 \
		--watch-mode poll --poll-interval 100ms --exclude "*.tmp" &&
	mkdir one && echo mine >one/keep-local &&
	start_follow one --exclude "keep-*" &&
	start_follow two &&
	wait_for 20 same src one && wait_for 20 same src two
'

test_expect_success 'poll mode sees creates, edits and deletes' '
	echo b >src/b && echo changed >src/a && mkdir src/new &&
	echo n >src/new/n && rm src/sub/x.tmp && echo y >src/sub/y &&
	wait_for 20 same src one && wait_for 20 same src two
'

test_expect_success 'excluded on the primary: never sent' '
	echo secret >src/sub/z.tmp && echo v >src/v &&
	wait_for 20 test -e two/v &&
	test ! -e two/sub/z.tmp && test ! -e one/sub/z.tmp
'

test_expect_success 'excluded on the standby: kept, never deleted' '
	test "$(cat one/keep-local)" = mine
'

test_expect_success 'each standby has its own acknowledged position' '
	echo more >src/more &&
	wait_for 20 same src one && wait_for 20 same src two &&
	printf "[primary]\ndata_dir = %s\nspool_dir = %s\nlisten = %s\n" \
		"$TRASH/src" "$TRASH/spool" "$TEST_IP:$TEST_PORT" >p.conf &&
	wait_for 20 test -e spool/acks/one &&
	wait_for 20 test -e spool/acks/two &&
	"$ASYNCREP" status -c p.conf >status.out &&
	grep -q "standby one" status.out && grep -q "standby two" status.out &&
	"$ASYNCREP" status -c p.conf --json >status.json &&
	"$PYTHON3" -c "
import json
s = json.load(open(\"status.json\"))
assert s[\"role\"] == \"primary\" and s[\"running\"], s
ids = sorted(x[\"id\"] for x in s[\"standbys\"])
assert ids == [\"one\", \"two\"], ids
"
'

test_expect_success 'status of a standby reports its position' '
	printf "[standby]\ndata_dir = %s\nstate_dir = %s\nprimary = %s\n" \
		"$TRASH/two" "$TRASH/state-two" "$TEST_IP:$TEST_PORT" >s.conf &&
	"$ASYNCREP" status -c s.conf --json >sstatus.json &&
	"$PYTHON3" -c "
import json
s = json.load(open(\"sstatus.json\"))
assert s[\"role\"] == \"standby\" and s[\"primary_reachable\"], s
assert s[\"position\"] > 0, s
"
'

# rounds N: status --watch has printed N reports or more.
rounds() { test "$(grep -c "^Every 2s: asyncrep status" watch-status.out)" -ge "$1"; }

test_expect_success 'status --watch reports again until SIGTERM, then exits 0' '
	: >empty.conf &&
	start_bg watch-status.out "$ASYNCREP" status -c p.conf --watch &&
	sw=$last_pid &&
	wait_for 20 rounds 2 &&
	kill -TERM "$sw" &&
	wait "$sw" &&
	test "$(grep -c "standby one" watch-status.out)" -ge 2 &&
	test_must_fail 2 "$ASYNCREP" status -c empty.conf --watch
'

test_expect_success 'status without a usable section exits 2' '
	test_must_fail 2 "$ASYNCREP" status -c empty.conf
'

test_done

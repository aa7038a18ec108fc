#!/bin/sh
test_description='rescue: a big file the spool phase sends in a lane is in
place, durable, before the standby confirms the final position'
: "${PYTHON3:=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}"
. "$SRCDIR/test/t/lib.sh"
. "$SRCDIR/test/t/lib-rescue.sh"

test_expect_success 'setup: a primary holding changes 30 s, a following standby with lanes' '
	mkdir -p p1/data/held stage && echo before >p1/data/pre &&
	dd if=/dev/urandom of=stage/big bs=1M count=200 2>/dev/null &&
	write_conf p1 "$TRASH/p1/data" "$TRASH/p1/spool" 30s &&
	start_primary p1 &&
	start_follow s1 --lane-min-size 1M --standby-id s1 &&
	wait_for 20 trees_equal p1/data s1/data
'

test_expect_success 'primary killed with a big file and small ones held: the rescue completes' '
	mv stage/big p1/data/held/big &&
	for i in 1 2 3; do
		echo "small $i" >p1/data/held/small-$i || return 1
	done &&
	wait_for 10 grep -qa "small-3" p1/spool/seg-*.log &&
	test ! -e s1/data/held/small-1 && test ! -e s1/data/held/big &&
	kill9 $WATCH_PID &&
	start_rescue p1 --timeout 60s &&
	rescued_ok p1 s1 &&
	trees_equal p1/data s1/data &&
	grep -q "goes to a lane of its own" s1.follow.log &&
	grep -q "received in its lane" s1.follow.log
'

test_done

#!/bin/sh
# t0003-lib: the test library itself. Its chain lint fails a test whose
# body breaks the &&-chain (a step whose failure would go unnoticed), and
# the script with it.
test_description='lib.sh: the &&-chain lint'
. "$(dirname "$0")/lib.sh"

export SRCDIR ASYNCREP PYTHON3

# sub NAME: run the script NAME.sh (written below) on this lib.sh, its
# scratch directories under ours; TAP output in NAME.out, status in
# NAME.rc.
sub() {
	mkdir -p "$TRASH/tmp" &&
	if TMPDIR=$TRASH/tmp sh "$1.sh" >"$1.out" 2>&1
	then echo 0 >"$1.rc"
	else echo $? >"$1.rc"
	fi
}

# linted NAME: NAME.sh failed its only test on the lint, and exited 1.
linted() {
	sub "$1" &&
	cat "$1.out" &&
	test "$(cat "$1.rc")" = 1 &&
	grep -q "^not ok 1 - $1$" "$1.out" &&
	grep -q "^#   broken &&-chain or run-away here-document" "$1.out" &&
	grep -qx "1\.\.1" "$1.out"
}

head='. "$SRCDIR/test/t/lib.sh"'

cat >intact.sh <<EOF
$head
test_expect_success 'intact' '
	echo one >one &&
	for i in 1 2; do
		echo "\$i" >>two || return 1
	done &&
	if test -s one
	then echo yes >three
	fi &&
	{ false || echo recovered >four; } &&
	cat >five <<-END &&
	five
	END
	test_cmp - five <<-END
	five
	END
'
test_expect_success 'variables set by a body live on' '
	test "\$(cat four)" = recovered
'
test_done
EOF

cat >missing-and.sh <<EOF
$head
test_expect_success 'missing-and' '
	false
	true
'
test_done
EOF

cat >stray-semicolon.sh <<EOF
$head
test_expect_success 'stray-semicolon' '
	false; true
'
test_done
EOF

cat >or-colon.sh <<EOF
$head
test_expect_success 'or-colon' '
	false || : &&
	true
'
test_done
EOF

cat >runaway-heredoc.sh <<EOF
$head
test_expect_success 'runaway-heredoc' '
	cat >x <<-END &&
	x
	ENDX
'
test_done
EOF

cat >lint-off.sh <<EOF
$head
test_expect_success 'lint-off' '
	false
	true
'
test_done
EOF

cat >failing.sh <<EOF
$head
test_expect_success 'failing' '
	true &&
	false
'
test_done
EOF

test_expect_success 'a body chained with && passes the lint and runs' '
	sub intact &&
	cat intact.out &&
	test "$(cat intact.rc)" = 0 &&
	grep -q "^ok 1 - intact$" intact.out &&
	grep -q "^ok 2 - variables set by a body live on$" intact.out &&
	! grep -q "broken" intact.out
'

test_expect_success 'a missing && fails the test and the script' '
	linted missing-and
'

test_expect_success 'a stray ; fails the test' '
	linted stray-semicolon
'

test_expect_success 'a || : in the middle of the chain fails the test' '
	linted or-colon
'

test_expect_success 'a here-document without its end fails the test' '
	linted runaway-heredoc
'

test_expect_success 'TEST_CHAIN_LINT=0 turns the lint off' '
	TEST_CHAIN_LINT=0 &&
	export TEST_CHAIN_LINT &&
	sub lint-off &&
	unset TEST_CHAIN_LINT &&
	cat lint-off.out &&
	test "$(cat lint-off.rc)" = 0 &&
	grep -q "^ok 1 - lint-off$" lint-off.out
'

test_expect_success 'a failing step is reported without the lint message' '
	sub failing &&
	cat failing.out &&
	test "$(cat failing.rc)" = 1 &&
	grep -q "^not ok 1 - failing$" failing.out &&
	! grep -q "broken" failing.out
'

test_done

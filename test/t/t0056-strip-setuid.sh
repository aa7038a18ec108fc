#!/bin/sh
test_description='strip_setuid: a standby run as root makes no set-id
files of the primary, or does, as rsync -a does, when it is off'
. "$SRCDIR/test/t/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

if [ "$(id -u)" != 0 ]; then
	test_skip 'strip_setuid' 'needs root (set-id bits of files owned by 0)'
	test_done
fi

# mode_of PATH: the octal mode bits, set-id included.
mode_of() { stat -c %a "$1"; }

test_expect_success 'setup: a primary with a setuid, a setgid file, a setgid dir' '
	mkdir -p src/shared &&
	printf "#!/bin/sh\n" >src/suid && chmod 4755 src/suid &&
	printf "x\n" >src/sgid && chmod 2755 src/sgid &&
	chmod 2775 src/shared && printf "y\n" >src/shared/f &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0
'

test_expect_success 'strip_setuid off (the default): set-id bits kept, as rsync -a' '
	sync_to "$TRASH/keep" "$TRASH/keep.state" &&
	trees_equal src keep &&
	test "$(mode_of keep/suid)" = 4755 &&
	test "$(mode_of keep/sgid)" = 2755
'

test_expect_success 'strip_setuid = yes: files lose them, directories keep theirs' '
	printf "[standby]\nstrip_setuid = yes\n" >strip.conf &&
	sync_to "$TRASH/strip" "$TRASH/strip.state" -c "$TRASH/strip.conf" &&
	test "$(mode_of strip/suid)" = 755 &&
	test "$(mode_of strip/sgid)" = 755 &&
	test "$(mode_of strip/shared)" = 2775 &&
	cmp src/suid strip/suid
'

test_expect_success 'a second sync finds nothing to do (the stripped mode is the goal)' '
	sync_to "$TRASH/strip" "$TRASH/strip.state" -c "$TRASH/strip.conf" \
		--itemize-changes >items &&
	test_cmp /dev/null items &&
	test "$(mode_of strip/suid)" = 755
'

test_expect_success 'a standby that kept them strips them once it is turned on' '
	sync_to "$TRASH/keep" "$TRASH/keep.state" --strip-setuid on &&
	test "$(mode_of keep/suid)" = 755 &&
	test "$(mode_of keep/sgid)" = 755
'

test_done

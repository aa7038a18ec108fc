#!/bin/sh
# t0001-cli: the command line: help, version, bad commands and options.
# Every failure here happens before a command runs, so no network is used.
test_description='command line parsing and exit statuses'
. "$(dirname "$0")/lib.sh"

test_expect_success '--help prints the commands and exits 0' '
	"$ASYNCREP" --help >out 2>err &&
	grep -q "^usage: asyncrep COMMAND" out &&
	grep -q "^  watch " out &&
	grep -q "^  sync " out &&
	test_cmp /dev/null err
'

test_expect_success '--version prints the version and exits 0' '
	"$ASYNCREP" --version >out 2>err &&
	grep -qx "asyncrep [0-9][0-9.]*[0-9a-z.~+-]*" out &&
	test_cmp /dev/null err
'

test_expect_success 'no command is a usage error' '
	test_must_fail 1 "$ASYNCREP" >out 2>err &&
	grep -q "^usage: asyncrep" err
'

test_expect_success 'unknown command exits 1 and names it' '
	test_must_fail 1 "$ASYNCREP" frobnicate >out 2>err &&
	grep -q "^asyncrep: unknown command .frobnicate." err
'

test_expect_success 'an option before the command exits 1' '
	test_must_fail 1 "$ASYNCREP" --data-dir /x sync 2>err &&
	grep -q "^asyncrep: unknown option .--data-dir." err
'

for cmd in watch sync; do
	test_expect_success "$cmd --help lists every option and exits 0" '
		"$ASYNCREP" '"$cmd"' --help >out 2>err &&
		grep -q "^usage: asyncrep '"$cmd"' " out &&
		for o in config verbose quiet syslog dry-run itemize-changes \
		    follow json help data-dir auth-token-file; do
			grep -q -- "--$o" out || { echo "no --$o"; return 1; }
		done &&
		"$ASYNCREP" '"$cmd"' -h >out2 &&
		test_cmp out out2
	'
done

test_expect_success 'watch --help lists the [primary] keys only' '
	"$ASYNCREP" watch --help >out &&
	for o in spool-dir listen interval max-connections max-per-ip \
	    idle-timeout max-signature-size threads watch-mode poll-interval \
	    exclude spool-max-size; do
		grep -q -- "--$o VALUE" out || { echo "no --$o"; return 1; }
	done &&
	! grep -q -- "--state-dir" out
'

test_expect_success 'sync --help lists the [standby] keys only' '
	"$ASYNCREP" sync --help >out &&
	for o in state-dir primary connect-timeout stall-timeout \
	    delta-min-size batch-size batch-files standby-id exclude; do
		grep -q -- "--$o VALUE" out || { echo "no --$o"; return 1; }
	done &&
	! grep -q -- "--spool-dir" out
'

test_expect_success 'unknown long option exits 1 and names it' '
	test_must_fail 1 "$ASYNCREP" sync --no-such-option 2>err &&
	grep -q "^asyncrep: sync: .*--no-such-option" err
'

test_expect_success 'unknown short option exits 1 and names it' '
	test_must_fail 1 "$ASYNCREP" sync -Z 2>err &&
	grep -q "^asyncrep: sync: unknown option .-Z." err
'

test_expect_success 'a key of the other section is an unknown option' '
	test_must_fail 1 "$ASYNCREP" sync --spool-dir /s 2>err &&
	grep -q -- "--spool-dir" err &&
	test_must_fail 1 "$ASYNCREP" watch --state-dir /s 2>err &&
	grep -q -- "--state-dir" err
'

test_expect_success 'an option without its value exits 1' '
	test_must_fail 1 "$ASYNCREP" sync --data-dir 2>err &&
	grep -q "^asyncrep: sync: option .--data-dir. needs a value" err &&
	test_must_fail 1 "$ASYNCREP" sync -c 2>err &&
	grep -q "needs a value" err
'

test_expect_success 'a flag given a value exits 1' '
	test_must_fail 1 "$ASYNCREP" sync --follow=yes 2>err &&
	grep -q -- "--follow=yes" err
'

test_expect_success 'missing required keys exit 2 and name each key' '
	test_must_fail 2 "$ASYNCREP" sync 2>err &&
	grep -q "missing data_dir (set it in \[standby\] or with --data-dir)" err &&
	grep -q "missing state_dir" err &&
	grep -q "missing primary" err &&
	test_must_fail 2 "$ASYNCREP" watch --data-dir /d --listen 127.0.0.1:1 2>err &&
	grep -q "missing spool_dir (set it in \[primary\] or with --spool-dir)" err &&
	! grep -q "missing data_dir" err
'

test_expect_success 'bad duration on the command line exits 1 naming the option' '
	test_must_fail 1 "$ASYNCREP" watch --data-dir /d --spool-dir /s \
		--listen 127.0.0.1:1 --interval 5 2>err &&
	grep -q -- "--interval" err &&
	grep -q "unit" err &&
	test_must_fail 1 "$ASYNCREP" sync --stall-timeout=1x 2>err &&
	grep -q -- "--stall-timeout" err
'

test_expect_success 'rescue durations: bad values exit 1 before anything is read' '
	test_must_fail 1 "$ASYNCREP" rescue -c /nonexistent.conf \
		--storage-timeout 500ms 2>err &&
	grep -q -- "--storage-timeout: bad duration .500ms. (1s at least)" err &&
	test_must_fail 1 "$ASYNCREP" rescue -c /nonexistent.conf \
		--settle soon 2>err &&
	grep -q -- "--settle: bad duration" err &&
	test_must_fail 1 "$ASYNCREP" rescue -c /nonexistent.conf \
		--timeout 0 2>err &&
	grep -q -- "--timeout: bad duration" err &&
	! grep -q nonexistent err
'

test_expect_success 'rescue: a path too long under --root exits 1 naming it' '
	printf "[primary]\ndata_dir = /d\nspool_dir = /s\nlisten = 127.0.0.1:1\n" \
		>long.conf &&
	long=$(printf "%08000d" 0) &&
	test_must_fail 1 "$ASYNCREP" rescue -c long.conf \
		--root "/$long$long" 2>err &&
	grep -q "^asyncrep: rescue: data_dir ./d. under --root ./0*\.\.\..: path too long" err &&
	test_must_fail 1 "$ASYNCREP" rescue -c long.conf --root "/$long" \
		--auth-token-file "/token$(printf "%0300d" 0)" 2>err &&
	grep -q "^asyncrep: rescue: auth_token_file ./token0*\.\.\.. under --root" err
'

test_expect_success 'bad address, size and number on the command line exit 1' '
	test_must_fail 1 "$ASYNCREP" sync --primary localhost:80 2>err &&
	grep -q -- "--primary.*localhost:80" err &&
	test_must_fail 1 "$ASYNCREP" sync --primary "::1:80" 2>err &&
	grep -q "brackets" err &&
	test_must_fail 1 "$ASYNCREP" sync --primary 127.0.0.1:0 2>err &&
	grep -q "port" err &&
	test_must_fail 1 "$ASYNCREP" sync --batch-size 99999999999999999999T 2>err &&
	grep -q -- "--batch-size" err &&
	test_must_fail 1 "$ASYNCREP" watch --threads 0 2>err &&
	grep -q -- "--threads.*out of range" err &&
	test_must_fail 1 "$ASYNCREP" sync --data-dir "" 2>err &&
	grep -q -- "--data-dir.*empty" err
'

test_expect_success 'an option value is checked even when it comes first' '
	test_must_fail 1 "$ASYNCREP" sync --connect-timeout 10 \
		--data-dir /d --state-dir /s --primary 127.0.0.1:1 2>err &&
	grep -q -- "--connect-timeout" err
'

test_expect_success 'state_dir inside data_dir is refused before any work' '
	test_must_fail 2 "$ASYNCREP" sync --data-dir /d --state-dir /d/state \
		--primary 127.0.0.1:1 2>err &&
	grep -q "overlap" err
'

test_done

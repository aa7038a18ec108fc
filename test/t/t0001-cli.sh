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

# Each command's own options; every command also takes these.
common_opts='config verbose quiet syslog help'
watch_opts='reinit status-file allow-empty'
sync_opts='dry-run itemize-changes follow force-delete checksum progress metrics-file'
verify_opts='rate progress'
rescue_opts='root timeout standby any storage-timeout settle status-file'
status_opts='json watch'
keygen_opts=
init_opts='dir peer-pin set'
# The options of the config keys of each section.
primary_keys='data-dir spool-dir listen interval auth-token-file
	max-connections max-per-ip idle-timeout max-signature-size threads
	watch-mode poll-interval exclude spool-max-size standbys standby-expiry
	reverify-rate tls tls-cert tls-key tls-trust tls-ca bwlimit metrics-listen
	max-deltas header-timeout'
standby_keys='data-dir state-dir primary auth-token-file connect-timeout
	stall-timeout delta-min-size batch-size batch-files standby-id exclude
	tls tls-cert tls-key tls-trust tls-ca max-delete bwlimit compress
	compress-level metrics-listen max-file-size max-stored-size specials devices
	xattrs selinux acls map-users append append-min-size inplace inplace-min-size strip-setuid
	lane-min-size'
all_own="$watch_opts $sync_opts $verify_opts $rescue_opts $status_opts $keygen_opts $init_opts"

# The options a command takes, one per line, sorted.
takes() {
	eval "own=\$$1_opts" &&
	case $1 in
	watch|rescue) keys=$primary_keys ;;
	sync|verify) keys=$standby_keys ;;
	status|keygen|init) keys= ;;
	esac &&
	for o in $common_opts $own $keys; do echo "$o"; done | sort
}

for cmd in watch sync verify rescue status keygen init; do
	test_expect_success "$cmd --help lists its own options only" '
		"$ASYNCREP" '"$cmd"' --help >out 2>err &&
		test_cmp /dev/null err &&
		grep -q "^usage: asyncrep '"$cmd"' " out &&
		sed -n "s/^ *\(-., \)\{0,1\}--\([a-z-]*\).*/\2/p" out |
			sort >actual &&
		takes '"$cmd"' >expect &&
		test_cmp expect actual &&
		"$ASYNCREP" '"$cmd"' -h >out2 &&
		test_cmp out out2
	'

	test_expect_success "$cmd: an option of another command exits 1 naming it" '
		takes '"$cmd"' >mine &&
		for o in $all_own; do
			grep -qx -- "$o" mine || {
				test_must_fail 1 "$ASYNCREP" '"$cmd"' \
					-c /nonexistent.conf --$o 5s 2>err &&
				grep -q "^asyncrep: '"$cmd"': option .--$o. is not an option of '"$cmd"' (it belongs to [a-z, ]*)\$" err &&
				! grep -q nonexistent err
			} || { echo "--$o"; return 1; }
		done
	'
done

test_expect_success 'the owners of a foreign option are named' '
	test_must_fail 1 "$ASYNCREP" sync --timeout 5 2>err &&
	grep -qx "asyncrep: sync: option .--timeout. is not an option of sync (it belongs to rescue)" err &&
	test_must_fail 1 "$ASYNCREP" watch --follow 2>err &&
	grep -qx "asyncrep: watch: option .--follow. is not an option of watch (it belongs to sync)" err &&
	test_must_fail 1 "$ASYNCREP" sync --json 2>err &&
	grep -qx "asyncrep: sync: option .--json. is not an option of sync (it belongs to status)" err &&
	test_must_fail 1 "$ASYNCREP" status --root /x 2>err &&
	grep -qx "asyncrep: status: option .--root. is not an option of status (it belongs to rescue)" err &&
	test_must_fail 1 "$ASYNCREP" rescue --follow 2>err &&
	grep -qx "asyncrep: rescue: option .--follow. is not an option of rescue (it belongs to sync)" err &&
	test_must_fail 1 "$ASYNCREP" rescue --reinit 2>err &&
	grep -qx "asyncrep: rescue: option .--reinit. is not an option of rescue (it belongs to watch)" err &&
	test_must_fail 1 "$ASYNCREP" watch --settle=1s 2>err &&
	grep -qx "asyncrep: watch: option .--settle. is not an option of watch (it belongs to rescue)" err &&
	test_must_fail 1 "$ASYNCREP" sync --status-file=/x 2>err &&
	grep -qx "asyncrep: sync: option .--status-file. is not an option of sync (it belongs to watch, rescue)" err
'

test_expect_success 'a long option is spelled out: sync --standby is not --standby-id' '
	test_must_fail 1 "$ASYNCREP" sync --standby db1 2>err &&
	grep -qx "asyncrep: sync: option .--standby. is not an option of sync (it belongs to rescue)" err &&
	test_must_fail 1 "$ASYNCREP" sync --standby=db1 2>err &&
	grep -qx "asyncrep: sync: option .--standby. is not an option of sync (it belongs to rescue)" err &&
	test_must_fail 1 "$ASYNCREP" sync --foll 2>err &&
	grep -q "unknown or malformed option .--foll." err &&
	test_must_fail 1 "$ASYNCREP" rescue --standby "db/1" 2>err &&
	grep -q "bad standby id" err
'

test_expect_success 'a foreign short option exits 1, also inside a group' '
	for cmd in watch rescue status; do
		for o in n i; do
			test_must_fail 1 "$ASYNCREP" $cmd -$o 2>err &&
			grep -qx "asyncrep: $cmd: option .-$o. is not an option of $cmd (it belongs to sync)" err &&
			test_must_fail 1 "$ASYNCREP" $cmd -v$o 2>err &&
			grep -qx "asyncrep: $cmd: option .-$o. is not an option of $cmd (it belongs to sync)" err ||
				{ echo "$cmd -$o"; return 1; }
		done
	done
'

test_expect_success 'a config key of another section names the commands of that section' '
	test_must_fail 1 "$ASYNCREP" sync --spool-dir /s 2>err &&
	grep -qx "asyncrep: sync: option .--spool-dir. is not an option of sync (it belongs to watch, rescue)" err &&
	test_must_fail 1 "$ASYNCREP" watch --state-dir /s 2>err &&
	grep -qx "asyncrep: watch: option .--state-dir. is not an option of watch (it belongs to sync, verify)" err &&
	test_must_fail 1 "$ASYNCREP" rescue --primary 127.0.0.1:1 2>err &&
	grep -qx "asyncrep: rescue: option .--primary. is not an option of rescue (it belongs to sync, verify)" err &&
	test_must_fail 1 "$ASYNCREP" status --data-dir /d 2>err &&
	grep -qx "asyncrep: status: option .--data-dir. is not an option of status (it belongs to watch, sync, verify, rescue)" err
'

# With nothing configured, a command that parsed its options stops at the
# check of its section (exit 2), not at them (exit 1).
test_expect_success 'every own option is taken by its command' '
	test_must_fail 2 "$ASYNCREP" watch --reinit 2>err &&
	grep -q "missing data_dir" err &&
	test_must_fail 2 "$ASYNCREP" sync -n -i 2>err &&
	grep -q "missing data_dir" err &&
	test_must_fail 2 "$ASYNCREP" sync -ni --dry-run --itemize-changes 2>err &&
	grep -q "missing data_dir" err &&
	test_must_fail 2 "$ASYNCREP" sync --follow 2>err &&
	grep -q "missing data_dir" err &&
	test_must_fail 2 "$ASYNCREP" rescue --root /mnt --timeout 5s \
		--standby db1 --standby db2 --any \
		--storage-timeout 2s --settle 1s --status-file st 2>err &&
	grep -q "missing data_dir" err &&
	test_must_fail 2 "$ASYNCREP" status --json 2>err &&
	grep -q "no complete \[primary\] or \[standby\] section" err &&
	test_must_fail 2 "$ASYNCREP" watch -v -q --syslog 2>err &&
	grep -q "missing data_dir" err
'

test_expect_success 'a bare number is seconds for the timeouts, refused for the periods' '
	test_must_fail 2 "$ASYNCREP" rescue --timeout 60 --settle 1 \
		--storage-timeout 5 --idle-timeout 30 2>err &&
	grep -q "missing data_dir" err &&
	test_must_fail 2 "$ASYNCREP" sync --connect-timeout 5 \
		--stall-timeout 60 2>err &&
	grep -q "missing data_dir" err &&
	test_must_fail 1 "$ASYNCREP" rescue --storage-timeout 0 2>err &&
	grep -q "1s at least" err &&
	test_must_fail 1 "$ASYNCREP" watch --interval 200 2>err &&
	grep -q "a unit is needed.*seconds or milliseconds" err &&
	test_must_fail 1 "$ASYNCREP" watch --poll-interval 2 2>err &&
	grep -q "a unit is needed" err
'

test_expect_success 'unknown long option exits 1 and names it' '
	test_must_fail 1 "$ASYNCREP" sync --no-such-option 2>err &&
	grep -q "^asyncrep: sync: .*--no-such-option" err
'

test_expect_success 'unknown short option exits 1 and names it' '
	test_must_fail 1 "$ASYNCREP" sync -Z 2>err &&
	grep -q "^asyncrep: sync: unknown option .-Z." err
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
	printf "auth_token_file = /token%0110d\n" 0 >>long.conf &&
	test_must_fail 1 "$ASYNCREP" rescue -c long.conf \
		--root "/$long$(printf "%0100d" 0)" 2>err &&
	grep -q "^asyncrep: rescue: auth_token_file ./token0*. under --root" err
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
	test_must_fail 1 "$ASYNCREP" sync --connect-timeout 10x \
		--data-dir /d --state-dir /s --primary 127.0.0.1:1 2>err &&
	grep -q -- "--connect-timeout" err
'

test_expect_success 'state_dir inside data_dir is refused before any work' '
	test_must_fail 2 "$ASYNCREP" sync --data-dir /d --state-dir /d/state \
		--primary 127.0.0.1:1 2>err &&
	grep -q "overlap" err
'

# The watcher uses the kernel's inotify API; only test-watcher links
# libinotifytools (the proof of its defects).
if command -v readelf >/dev/null 2>&1; then
	test_expect_success 'the binary links only what it calls (no libinotifytools)' '
		readelf -d "$ASYNCREP" >needed &&
		grep -q "NEEDED.*librsync" needed &&
		! grep -q "inotifytools" needed
	'
else
	test_skip 'the binary links only what it calls' 'no readelf'
fi

test_done

#!/bin/sh
test_description='a hostile or broken primary cannot make the standby write
outside its data dir, damage what it already holds, or leave temp files'
. "$(dirname "$0")/lib.sh"

# Never route loopback test traffic through a proxy from the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

FAKE="$SRCDIR/test/t/fake-primary.py"

# Each attack gets its own case directory R:
#   R/src       the tree the fake primary serves honestly around its attack
#   R/outside   a sentinel directory outside the standby (attacks aim here)
#   R/sb/data   the standby's data dir: a previous replica of R/src (cp -a)
#   R/sb/state  the standby's state dir (fresh)
#   R/logs      logs and listings of this case
# R/src/link is a symlink to R/outside, so the standby already holds a
# symlink that leads out of its tree; it must never write through it.
#
# Expected exit status per attack (numbers from core/error.h):
#   6 (protocol)  whatever breaks the stream or the path rules: names or
#                 paths with "..", absolute paths, oversize frames or
#                 names, truncated or garbage manifests, an F frame whose
#                 path is not the one requested. The run stops.
#   3 or 6        content of one file is wrong (short, expanded, bad hash,
#                 corrupt or exploding delta, a path that crosses a
#                 symlink when the file is opened): failing only that file
#                 (3, partial) is acceptable, failing the run (6) too.
#   10 (version)  hello with another protocol version.
#   4 or 6        the connection closes in the middle of the manifest.
# Whatever the status, afterwards: R/outside unchanged, nothing new in R
# outside sb/data and sb/state, the replica unchanged byte for byte (for
# attacks caught while reading the manifest, directory mtimes included;
# for file transfers a temp file may have touched a directory's mtime, so
# only those are ignored), no .asyncrep-tmp.* left, and stderr explains:
# "protocol" or "primary" (6), the file's path (3), "version" (10).

"$PYTHON3" -c 'import os, sys
sys.stdout.buffer.write(os.urandom(1 << 20))' >"$TRASH/big.bin" || exit 99

case_no=0
PORT=

# scratch_listing: every path under R but the standby's own dirs and logs.
scratch_listing() {
	find "$R" \( -path "$R/sb/data" -o -path "$R/sb/state" \
		-o -path "$R/logs" \) -prune -o -print | LC_ALL=C sort
}

# setup_case NAME: make R and a replica of R/src in R/sb/data.
setup_case() {
	R=$TRASH/$1
	mkdir -p "$R/src/sub/deeper" "$R/outside" "$R/sb/state" "$R/logs" &&
	printf 'the standby keeps this\n' >"$R/src/doc.txt" &&
	printf 'bee\n' >"$R/src/sub/b.txt" &&
	printf 'deep\n' >"$R/src/sub/deeper/c.txt" &&
	cp "$TRASH/big.bin" "$R/src/big.bin" &&
	chmod 640 "$R/src/sub/b.txt" &&
	ln -s "$R/outside" "$R/src/link" &&
	printf 'sentinel\n' >"$R/outside/sentinel" &&
	touch -d '2021-03-04 05:06:07' "$R/src/doc.txt" "$R/src/big.bin" \
		"$R/src/sub/b.txt" "$R/src/sub/deeper/c.txt" \
		"$R/src/sub/deeper" "$R/src/sub" "$R/src" &&
	cp -a "$R/src" "$R/sb/data" &&
	tree_listing "$R/sb/data" >"$R/logs/data.before" &&
	tree_listing "$R/outside" >"$R/logs/outside.before" &&
	scratch_listing >"$R/logs/scratch.before"
}

# free_port: a port the kernel says is free on TEST_IP right now.
free_port() {
	"$PYTHON3" -c 'import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$TEST_IP"
}

# start_fake MODE: start the fake primary for the current case on its
# own port (in the main shell, so lib.sh kills it at exit). Sets PORT.
start_fake() {
	case_no=$((case_no + 1))
	PORT=$(free_port) || exit 99
	start_bg "$R/logs/fake.log" "$PYTHON3" "$FAKE" --mode "$1" \
		--listen "$TEST_IP:$PORT" --tree "$R/src" --outside "$R/outside" \
		--ready-file "$R/logs/ready" --lifetime 120
}

# expect_status "S1 S2..." CMD...: CMD (our binary) must exit with one of
# the listed statuses; the status is saved in R/logs/status.
expect_status() {
	want=$1; shift
	if "$@"; then got=0; else got=$?; fi
	echo "$got" >"$R/logs/status"
	for w in $want; do
		[ "$got" -eq "$w" ] && return 0
	done
	echo "expected exit status in {$want}, got $got: $*"
	return 1
}

# run_sync "STATUSES": one sync of R/sb/data from the fake on PORT,
# bounded so a hang fails (timeout's 124) instead of stalling the suite.
run_sync() {
	wait_for 60 test -f "$R/logs/ready" &&
	expect_status "$1" timeout 60 "$ASYNCREP" sync \
		--data-dir "$R/sb/data" --state-dir "$R/sb/state" \
		--primary "$TEST_IP:$PORT" ${SYNC_OPTS:-} \
		>"$R/logs/sync.out" 2>"$R/logs/sync.err"
	st=$?
	sed 's/^/sync: /' "$R/logs/sync.err"
	return $st
}

# strip_dir_mtimes: tree_listing without directory mtimes.
strip_dir_mtimes() {
	sed 's/\( d [0-7]* [0-9:]* - \)[0-9]*$/\1*/' "$1"
}

# check_unharmed strict|lenient: the checks every attack ends with.
check_unharmed() {
	tree_listing "$R/outside" >"$R/logs/outside.after" &&
	test_cmp "$R/logs/outside.before" "$R/logs/outside.after" &&
	scratch_listing >"$R/logs/scratch.after" &&
	test_cmp "$R/logs/scratch.before" "$R/logs/scratch.after" &&
	tree_listing "$R/sb/data" >"$R/logs/data.after" &&
	if [ "$1" = strict ]; then
		test_cmp "$R/logs/data.before" "$R/logs/data.after"
	else
		strip_dir_mtimes "$R/logs/data.before" >"$R/logs/data.before.s" &&
		strip_dir_mtimes "$R/logs/data.after" >"$R/logs/data.after.s" &&
		test_cmp "$R/logs/data.before.s" "$R/logs/data.after.s"
	fi &&
	find "$R/sb/data" -name '.asyncrep-tmp.*' >"$R/logs/tmpfiles" &&
	test_cmp /dev/null "$R/logs/tmpfiles"
}

# check_message VICTIM: stderr explains the failure it exited with.
check_message() {
	case $(cat "$R/logs/status") in
	6) grep -i -E "protocol|primary" "$R/logs/sync.err" ;;
	3) grep -F "$1" "$R/logs/sync.err" ;;
	10) grep -i version "$R/logs/sync.err" ;;
	8) grep -F max_stored_size "$R/logs/sync.err" ;;
	7) grep -F "$1" "$R/logs/sync.err" |
	   grep -E "[0-9]+ bytes do not fit in the [0-9]+ bytes free" ;;
	4) grep -i -E "$TEST_IP|connect|closed|reset|timed? ?out" \
		"$R/logs/sync.err" ;;
	*) echo "no message check for status $(cat "$R/logs/status")"
	   return 1 ;;
	esac
}

# check_delivered REGEX: the fake's log shows the attack was requested,
# so a passing case cannot come from the standby never asking.
check_delivered() {
	grep -E "$1" "$R/logs/fake.log" || {
		echo "the attack was not delivered: no request matching '$1'"
		sed 's/^/fake: /' "$R/logs/fake.log"
		return 1
	}
}

# attack MODE STATUSES strict|lenient REQUEST-REGEX VICTIM
attack() {
	mode=$1 statuses=$2 strictness=$3 request=$4 victim=$5
	setup_case "$mode" >"$TRASH/setup.$mode" 2>&1 || {
		cat "$TRASH/setup.$mode"; exit 99; }
	start_fake "$mode"
	test_expect_success "$mode: exit {$statuses}, nothing outside or in the replica changes" '
		run_sync "$statuses" &&
		check_delivered "$request" &&
		check_unharmed "$strictness" &&
		check_message "$victim"
	'
}

# --- the fake itself must be a valid primary --------------------------------
setup_case honest >"$TRASH/setup.honest" 2>&1 || { cat "$TRASH/setup.honest"; exit 99; }
start_fake honest
test_expect_success 'honest fake primary: sync exits 0 and changes nothing' '
	run_sync 0 &&
	check_delivered "GET /v1/manifest" &&
	trees_equal "$R/src" "$R/sb/data" &&
	check_unharmed strict
'

# --- attacks caught while reading the manifest ------------------------------
M='GET /v1/manifest'
attack traversal-entry  6     strict  "$M" ..
attack traversal-dir    6     strict  "$M" ../escape
attack absolute         6     strict  "$M" outside
attack oversize-frame   6     strict  "$M" -
attack oversize-name    6     strict  "$M" nnnnnnnn
attack truncated        6     strict  "$M" -
attack truncated-noend  6     strict  "$M" -
attack truncated-close  "4 6" strict  "$M" -
attack garbage          6     strict  "$M" -
attack hardlink-outside 6     strict  "$M" -
attack xattr-namespace  6     strict  "$M" -
attack idname-flood     6     strict  "$M" -
attack idname-bad       6     strict  "$M" -
attack wrong-version    10    strict  'GET /v1/hello' -
attack bad-version      10    strict  'GET /v1/hello' -

test_expect_success 'wrong-version: nothing is asked after the hello' '
	R=$TRASH/wrong-version &&
	! grep -v "GET /v1/hello" "$R/logs/fake.log"
'

# --- attacks on a file transfer --------------------------------------------
F='POST /v1/(files|delta) .*doc\.txt'
attack traversal-file   6     lenient "$F" doc.txt
attack oversize-data    6     lenient "$F" doc.txt
attack short-file       "3 6" lenient "$F" doc.txt
attack bad-hash         "3 6" lenient "$F" doc.txt
attack expand           "3 6" lenient "$F" doc.txt
attack symlink-escape   "3 6" lenient "$M" link/pwned

# --- attacks on a delta ------------------------------------------------------
D='POST /v1/delta big\.bin'
attack corrupt-delta       "3 6" lenient "$D" big.bin
attack delta-expand        "3 6" lenient "$D" big.bin
attack delta-copy-past-eof "3 6" lenient "$D" big.bin
attack delta-bomb          "3 6" lenient "$D" big.bin

# --- a primary filling the standby's disk -------------------------------------
SYNC_OPTS='--max-stored-size 1M'
attack endless-manifest 8     strict  "$M" -
SYNC_OPTS=
test_expect_success 'endless-manifest: stopped near the cap, nothing stored left' '
	R=$TRASH/endless-manifest &&
	ls -A "$R/sb/state" >"$R/logs/state.after" &&
	! grep -E "^(manifest|changes)$" "$R/logs/state.after" &&
	grep "endless manifest sent" "$R/logs/fake.log" >"$R/logs/sent" &&
	sent=$(sed "s/.*: \([0-9]*\) bytes.*/\1/" "$R/logs/sent") &&
	test "$sent" -lt $((64 << 20))
'
attack huge-file        7     lenient "$F" doc.txt
SYNC_OPTS='--max-file-size 1G'
R=$TRASH/huge-file-max
setup_case huge-file-max >"$TRASH/setup.huge-file-max" 2>&1 || {
	cat "$TRASH/setup.huge-file-max"; exit 99; }
start_fake huge-file
test_expect_success 'huge-file past max_file_size: 3, a warning, never asked for' '
	run_sync 3 &&
	check_unharmed lenient &&
	grep -F "doc.txt" "$R/logs/sync.err" | grep -q max_file_size &&
	! grep -E "$F" "$R/logs/fake.log"
'
SYNC_OPTS=

# --- a corrupt delta after a real first sync, then a real resync --------------
R=$TRASH/real
setup_case real >"$TRASH/setup.real" 2>&1 || { cat "$TRASH/setup.real"; exit 99; }
rm -rf "$R/sb/data" && mkdir "$R/sb/data" || exit 99
start_watch "$R/src" "$R/spool" >"$R/logs/start.out" 2>&1
test_expect_success 'real primary: first sync of the tree' '
	expect_status 0 sync_to "$R/sb/data" "$R/sb/state" &&
	trees_equal "$R/src" "$R/sb/data"
'
stop_watch
# The replica and the scratch listing as the real primary left them.
tree_listing "$R/sb/data" >"$R/logs/data.before"
scratch_listing >"$R/logs/scratch.before"
start_fake corrupt-delta
test_expect_success 'real then corrupt-delta: the replica survives' '
	run_sync "3 6" &&
	check_delivered "$D" &&
	check_unharmed lenient &&
	check_message big.bin
'
# start_watch waits for "serving" in watch.log: keep the first run's log
# out of its way.
mv "$TRASH/watch.log" "$R/logs/watch.1.log"
start_watch "$R/src" "$R/spool" >"$R/logs/start2.out" 2>&1
test_expect_success 'real primary again: sync exits 0, trees equal' '
	expect_status 0 sync_to "$R/sb/data" "$R/sb/state" &&
	trees_equal "$R/src" "$R/sb/data" &&
	find "$R/sb/data" -name ".asyncrep-tmp.*" >"$R/logs/tmpfiles" &&
	test_cmp /dev/null "$R/logs/tmpfiles"
'
stop_watch

test_done

#!/bin/sh
test_description='rescue fan-out: every standby completed, only a real one confirms'
: "${PYTHON3:=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}"
. "$SRCDIR/test/t/lib.sh"
. "$SRCDIR/test/t/lib-rescue.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

# http_get PATH OUT [TOKEN]: GET PATH from the service address, no proxy;
# prints the HTTP status, the body goes to OUT.
http_get() {
	"$PYTHON3" -c 'import sys, urllib.request, urllib.error
req = urllib.request.Request("http://%s%s" % (sys.argv[1], sys.argv[2]))
if len(sys.argv) > 4:
    req.add_header("Authorization", "Bearer " + sys.argv[4])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    r = opener.open(req, timeout=10)
    code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
open(sys.argv[3], "wb").write(body)
print(code)' "$ADDR" "$@"
}

# all_equal P S...: each standby's tree is the primary's.
all_equal() {
	p=$1; shift
	for s in "$@"; do
		trees_equal "$p/data" "$s/data" || return 1
	done
}

# acked P ID...: the primary's spool holds an acknowledgement of each.
acked() {
	p=$1; shift
	for id in "$@"; do
		test -s "$p/spool/acks/$id" || return 1
	done
}

# status_has NAME TEXT: the rescue's status file contains TEXT.
status_has() {
	grep -qF -- "$2" "$TRASH/$1.rescue-status"
}

# primary_with P ID...: a primary P (data before/f, P.conf with the
# options of $CONF_MORE) and a following standby per ID, with the options
# of $FOLLOW_MORE, once each holds the tree and has acknowledged it; the
# pid of standby ID is in $PID_ID.
primary_with() {
	p=$1; shift
	stop_strays &&
	mkdir -p "$p/data" && echo before >"$p/data/f" &&
	write_conf "$p" "$TRASH/$p/data" "$TRASH/$p/spool" 100ms &&
	if [ -n "${CONF_MORE:-}" ]; then echo "$CONF_MORE" >>"$p.conf"; fi &&
	start_primary "$p" &&
	for id in "$@"; do
		# shellcheck disable=SC2086 # options split on purpose
		start_follow "$id" --standby-id "$id" ${FOLLOW_MORE:-} &&
		eval "PID_$id=\$FOLLOW_PID" || return 1
	done &&
	wait_for 20 all_equal "$p" "$@" &&
	wait_for 10 acked "$p" "$@"
}

# reaped_ok SECS PID: PID exits 0 within SECS.
reaped_ok() {
	reap "$1" "$2" && { test "$RC" = 0 || { echo "pid $2 exited $RC"; false; }; }
}

# ---------------------------------------------------------------------
# 1. Two standbys, one of them paused across the rescue's start.

test_expect_success 'setup: a primary and two standbys, a1 and a2' '
	primary_with pa a1 a2 &&
	A1=$PID_a1 && A2=$PID_a2
'

test_expect_success 'a2 paused across the rescue start: the rescue waits, both complete' '
	kill -STOP $A2 && wait_for 10 is_stopped $A2 &&
	echo new >pa/data/new &&
	mkdir pa/data/dir &&
	head -c 3000000 /dev/urandom >pa/data/dir/big &&
	wait_for 10 grep -qa dir/big pa/spool/seg-*.log &&
	kill9 $WATCH_PID &&
	echo unseen >pa/data/unseen &&
	start_rescue pa --timeout 30s &&
	reaped_ok 30 $A1 &&
	grep -q "the replica is complete" a1.follow.log &&
	trees_equal pa/data a1/data &&
	wait_for 10 status_has pa "a1: complete; a2: never called" &&
	sleep 1 &&
	kill -0 $RESCUE_PID &&
	test ! -e pa/spool/rescued &&
	kill -CONT $A2 &&
	FOLLOW_PID=$A2 &&
	rescued_ok pa a2 &&
	all_equal pa a1 a2 &&
	cat pa/spool/rescued &&
	grep -q "^standby a1: complete$" pa/spool/rescued &&
	grep -q "^standby a2: complete$" pa/spool/rescued &&
	status_has pa "a1: complete; a2: complete"
'

# ---------------------------------------------------------------------
# 2. A completed standby restarted; then failback to a re-initialised
#    primary, which is a new generation.

test_expect_success 'a completed standby restarted exits 0 at once, and status says so' '
	gen=$(cat pa/spool/generation) &&
	start=$(date +%s) &&
	timeout 20 "$ASYNCREP" sync --follow --data-dir "$TRASH/a1/data" \
		--state-dir "$TRASH/a1/state" --primary "$ADDR" \
		--standby-id a1 2>again.err &&
	cat again.err &&
	test $(( $(date +%s) - start )) -lt 5 &&
	grep -q "the replica is complete: a rescue closed generation $gen at change" again.err &&
	! grep -q retrying again.err &&
	cat >a1.conf <<-EOF &&
	[standby]
	data_dir = $TRASH/a1/data
	state_dir = $TRASH/a1/state
	primary = $ADDR
	EOF
	"$ASYNCREP" status -c "$TRASH/a1.conf" >status.out &&
	cat status.out &&
	grep -q "the replica is complete: a rescue closed generation $gen" status.out &&
	"$ASYNCREP" status --json -c "$TRASH/a1.conf" >status.json &&
	grep -q "\"complete\":true" status.json
'

test_expect_success 'the old primary re-initialised: the completed standby follows the new generation' '
	old=$(cat pa/spool/generation) &&
	start_primary pa --reinit &&
	new=$(cat pa/spool/generation) &&
	test "$new" != "$old" &&
	echo failback >pa/data/failback &&
	start_follow a1 --standby-id a1 && A1=$FOLLOW_PID &&
	wait_for 30 trees_equal pa/data a1/data &&
	echo more >pa/data/more &&
	wait_for 30 trees_equal pa/data a1/data &&
	kill -0 $A1 &&
	grep -q "comparing the whole tree with generation $new" a1.follow.log &&
	"$ASYNCREP" status -c "$TRASH/a1.conf" >status.out &&
	! grep -q "replica is complete" status.out &&
	kill -TERM $A1 && reap 20 $A1 && test "$RC" = 0 &&
	stop_watch
'

# ---------------------------------------------------------------------
# 3. Three standbys, one never comes back: partial (18), then a re-run
#    completes it once it is started.

test_expect_success 'setup: a primary and three standbys, b1 to b3' '
	primary_with pb b1 b2 b3 &&
	B1=$PID_b1 && B2=$PID_b2 && B3=$PID_b3
'

test_expect_success 'b3 never comes back: exit 18, the report names it, b1 and b2 complete' '
	kill9 $B3 &&
	echo changed >pb/data/f &&
	for i in 1 2 3; do echo "$i" >pb/data/late-$i || return 1; done &&
	wait_for 10 grep -qa late-3 pb/spool/seg-*.log &&
	kill9 $WATCH_PID &&
	start=$(date +%s) &&
	test_must_fail 18 timeout 60 "$ASYNCREP" rescue -c "$TRASH/pb.conf" \
		--timeout 3s --status-file "$TRASH/pb.rescue-status" \
		>pb.out 2>pb.err &&
	cat pb.out pb.err &&
	test $(( $(date +%s) - start )) -lt 30 &&
	reaped_ok 20 $B1 && reaped_ok 20 $B2 &&
	all_equal pb b1 b2 &&
	! trees_equal pb/data b3/data &&
	grep -q "^asyncrep rescue partial " pb.out &&
	grep -q "^standby b1: complete$" pb.out &&
	grep -q "^standby b2: complete$" pb.out &&
	grep -q "^standby b3: never called$" pb.out &&
	grep -q "not complete: b3: never called" pb.err &&
	test_cmp pb.out pb/spool/rescued &&
	test_cmp - pb.rescue-status <<-EOF &&
	partial $(cat pb/spool/generation); b1: complete; b2: complete; b3: never called
	EOF
	test_must_fail 12 timeout 20 "$ASYNCREP" watch -c "$TRASH/pb.conf" 2>fenced.err
'

test_expect_success 'b3 started late: a re-run completes it, without waiting for b1 and b2' '
	start_follow b3 --standby-id b3 && B3=$FOLLOW_PID &&
	start_rescue pb --timeout 20s &&
	FOLLOW_PID=$B3 &&
	rescued_ok pb b3 &&
	all_equal pb b1 b2 b3 &&
	cat pb/spool/rescued &&
	grep -q "^asyncrep rescue completed " pb/spool/rescued &&
	grep -q "^standby b1: complete$" pb/spool/rescued &&
	grep -q "^standby b2: complete$" pb/spool/rescued &&
	grep -q "^standby b3: complete$" pb/spool/rescued &&
	timeout 20 "$ASYNCREP" rescue -c "$TRASH/pb.conf" --timeout 2s >again.out &&
	test_cmp pb/spool/rescued again.out
'

# ---------------------------------------------------------------------
# 4. With a token: requests that prove nothing.

test_expect_success 'setup: a primary with a token and one standby, c1' '
	stop_strays &&
	"$PYTHON3" -c "import secrets; print(secrets.token_hex(24))" >token &&
	chmod 600 token &&
	CONF_MORE="auth_token_file = $TRASH/token" \
	FOLLOW_MORE="--auth-token-file $TRASH/token" primary_with pc c1 &&
	kill9 $PID_c1 &&
	echo after >pc/data/after &&
	wait_for 10 grep -qa after pc/spool/seg-*.log &&
	kill9 $WATCH_PID
'

# noise: unauthenticated requests, until the file stop exists. The rescue
# must give up at its --timeout while the noise still goes on: none of it
# counts as a standby calling.
noise() {
	while [ ! -e stop ]; do
		http_get /nope noise.body >/dev/null
		http_get /v1/hello noise.body >/dev/null
		http_get "/v1/changes?since=1&id=c1&gen=$(cat pc/spool/generation)" noise.body >/dev/null
		http_get /v1/hello noise.body "not-the-token-at-all" >/dev/null
		sleep 0.1
	done
}

test_expect_success 'unauthenticated requests before the standby calls: still 16 at --timeout' '
	for mode in "" --any; do
		rm -f stop &&
		start_rescue pc --timeout 2s $mode &&
		wait_for 10 status_is pc listening &&
		{ noise & } && NOISE=$! &&
		reap 20 $RESCUE_PID &&
		kill -0 $NOISE &&
		touch stop && wait $NOISE &&
		test "$RC" = 16 &&
		status_is pc failed &&
		test ! -e pc/spool/rescued || return 1
	done &&
	grep -q "bad or missing token" pc.rescue.log
'

test_expect_success 'a token holder asking to confirm early is not a confirmation' '
	start_rescue pc --timeout 30s &&
	wait_for 10 status_is pc listening &&
	gen=$(cat pc/spool/generation) &&
	released=$(sed -n "s/.*journal up to change \([0-9]*\)$/\1/p" pc.rescue.log | tail -1) &&
	test -n "$released" &&
	final=$((released + 1)) &&
	for id in x c1; do
		code=$(http_get "/v1/changes?since=$final&id=$id&gen=$gen" early.body "$(cat token)") &&
		test "$code" = 200 &&
		test "$(head -c 1 early.body)" = G || return 1
	done &&
	sleep 1 &&
	kill -0 $RESCUE_PID &&
	test ! -e pc/spool/rescued &&
	! status_is pc complete &&
	grep -q "not sent the final batch" pc.rescue.log &&
	start_follow c1 --standby-id c1 --auth-token-file "$TRASH/token" &&
	rescued_ok pc c1 &&
	trees_equal pc/data c1/data &&
	grep -q "^standby c1: complete$" pc/spool/rescued &&
	grep -q "^standby x: called, incomplete (not waited for)$" pc/spool/rescued
'

# ---------------------------------------------------------------------
# 5. Which standbys: acknowledgements younger than standby_expiry, or
#    the standbys key.

test_expect_success 'setup: a primary, standby d1, and acks of two standbys gone for days' '
	primary_with pd d1 &&
	kill9 $PID_d1 &&
	echo after >pd/data/after &&
	wait_for 10 grep -qa after pd/spool/seg-*.log &&
	kill9 $WATCH_PID &&
	echo 1 >pd/spool/acks/old && touch -d "3 days ago" pd/spool/acks/old &&
	echo 1 >pd/spool/acks/older && touch -d "40 days ago" pd/spool/acks/older
'

test_expect_success 'acks older than standby_expiry (a bare number is seconds) are not waited for' '
	start_rescue pd --timeout 30s --standby-expiry 86400 &&
	start_follow d1 --standby-id d1 &&
	rescued_ok pd d1 &&
	trees_equal pd/data d1/data &&
	cat pd/spool/rescued &&
	grep -q "^standby d1: complete$" pd/spool/rescued &&
	grep -q "^standby old: never called (not waited for: last acknowledged 3.0 days ago, past standby_expiry)$" pd/spool/rescued &&
	grep -q "^standby older: never called (not waited for: last acknowledged 40.0 days ago" pd/spool/rescued
'

test_expect_success 'the standbys key: only those listed are waited for; a complete standby confirms again' '
	rm pd/spool/rescued &&
	echo 1 >pd/spool/acks/ghost &&
	start_rescue pd --timeout 30s --standbys d1 &&
	wait_for 10 status_is pd listening &&
	start_follow d1 --standby-id d1 &&
	rescued_ok pd d1 &&
	cat pd/spool/rescued &&
	grep -q "^standby d1: complete$" pd/spool/rescued &&
	! grep -q "ghost\|old" pd/spool/rescued
'

# The primary's standbys list refuses ids it does not hold, but an id
# the rescue was told to complete (--standby) is accepted all the same.
test_expect_success 'rescue --standby ID beyond the standbys list: that id completes' '
	rm pd/spool/rescued &&
	start_rescue pd --timeout 30s --standbys other --standby d1 &&
	wait_for 10 status_is pd listening &&
	start_follow d1 --standby-id d1 &&
	rescued_ok pd d1 &&
	grep -q "^standby d1: complete$" pd/spool/rescued
'

test_done

#!/bin/sh
test_description='OCF resource agents: asyncrep-watch and asyncrep-rescue'
. "$SRCDIR/test/t/lib.sh"

# The agents need ocf-shellfuncs (Debian: resource-agents); ocf-tester
# (same package) must run as root; xmllint (libxml2-utils) checks the
# meta-data against the OCF DTD. Each part is skipped, with its reason,
# when what it needs is missing.
: "${OCF_ROOT:=/usr/lib/ocf}"
export OCF_ROOT
OCF_FUNCS=$OCF_ROOT/lib/heartbeat/ocf-shellfuncs
OCF_DTD=
for d in /usr/share/resource-agents/ra-api-1.dtd /usr/share/pacemaker/ra-api-1.dtd; do
	[ -r "$d" ] && { OCF_DTD=$d; break; }
done
OCF_TESTER=$(command -v ocf-tester 2>/dev/null || ls /usr/sbin/ocf-tester 2>/dev/null)
XMLLINT=$(command -v xmllint 2>/dev/null)
IS_ROOT=; [ "$(id -u)" = 0 ] && IS_ROOT=1

# Work on copies with the mode make install gives them (ocf-tester checks
# that user nobody can run meta-data, so the scratch directory must be
# traversable).
chmod 755 "$TRASH"
mkdir -p "$TRASH/agents" "$TRASH/run" &&
cp "$SRCDIR/hooks/asyncrep-watch" "$SRCDIR/hooks/asyncrep-rescue" "$TRASH/agents/" &&
chmod 755 "$TRASH/agents" "$TRASH/agents/asyncrep-watch" "$TRASH/agents/asyncrep-rescue" ||
	exit 99
WATCH_RA=$TRASH/agents/asyncrep-watch
RESCUE_RA=$TRASH/agents/asyncrep-rescue

# ra AGENT ACTION [VAR=VALUE...]: run one action in an OCF environment like
# Pacemaker's (a recurring monitor unless OCF_RESKEY_CRM_meta_interval=0
# is given), with its standard error in $TRASH/ra.err. Returns its status.
ra() {
	ra_agent=$1 ra_action=$2; shift 2
	env OCF_RA_VERSION_MAJOR=1 OCF_RA_VERSION_MINOR=0 \
		OCF_RESOURCE_INSTANCE=t0030 OCF_RESKEY_CRM_meta_timeout=20000 \
		OCF_RESKEY_CRM_meta_interval=10000 HA_LOGFACILITY= HA_LOGFILE= \
		HA_DEBUGLOG= "$@" "$ra_agent" "$ra_action" >"$TRASH/ra.out" 2>"$TRASH/ra.err"
}

# expect_rc WANT AGENT ACTION [VAR=VALUE...]: the action exits WANT.
expect_rc() {
	er_want=$1; shift
	ra "$@"
	er_got=$?
	if [ "$er_got" -ne "$er_want" ]; then
		echo "expected $er_want, got $er_got: $*"
		cat "$TRASH/ra.err"
		return 1
	fi
	return 0
}

# reason_has TEXT: the last action gave an exit reason containing TEXT.
reason_has() {
	grep "ocf-exit-reason:.*$1" "$TRASH/ra.err" || {
		echo "no exit reason with '$1':"; cat "$TRASH/ra.err"; return 1; }
}

# --- always: the scripts parse, and share their helpers verbatim -------------

test_expect_success 'the agents are valid sh' '
	sh -n "$WATCH_RA" && sh -n "$RESCUE_RA"
'

helpers() {
	sed -n "/^# --- helpers shared with asyncrep-rescue/,/^# --- the agent/p" "$1"
}
test_expect_success 'both agents carry the same shared helpers' '
	helpers "$WATCH_RA" >w.helpers && helpers "$RESCUE_RA" >r.helpers &&
	test -s w.helpers && test_cmp w.helpers r.helpers
'

if ! [ -r "$OCF_FUNCS" ]; then
	test_skip 'OCF agents' "no $OCF_FUNCS (apt-get install resource-agents)"
	test_done
fi

# --- meta-data ------------------------------------------------------------------

for agent in asyncrep-watch asyncrep-rescue; do
	if [ -z "$XMLLINT" ]; then
		test_skip "$agent meta-data" 'xmllint not installed (apt-get install libxml2-utils)'
	elif [ -z "$OCF_DTD" ]; then
		test_expect_success "$agent meta-data is well-formed XML" '
			ra "$TRASH/agents/$agent" meta-data &&
			"$XMLLINT" --noout "$TRASH/ra.out"
		'
	else
		test_expect_success "$agent meta-data is valid against the OCF DTD" '
			ra "$TRASH/agents/$agent" meta-data &&
			"$XMLLINT" --noout --dtdvalid "$OCF_DTD" "$TRASH/ra.out" &&
			grep -q "<resource-agent name=\"$agent\"" "$TRASH/ra.out"
		'
	fi
done

# --- asyncrep-watch without ocf-tester ------------------------------------------

# A first file: a spool with no generation yet does not start on an
# empty data_dir without --allow-empty (asyncrep(1)).
mkdir -p "$TRASH/src" "$TRASH/spool" && echo seed >"$TRASH/src/seed"
cat >"$TRASH/p.conf" <<EOF
[primary]
data_dir  = $TRASH/src
spool_dir = $TRASH/spool
listen    = $TEST_IP:$TEST_PORT
interval  = 0
EOF
W="OCF_RESKEY_config=$TRASH/p.conf OCF_RESKEY_binary=$ASYNCREP OCF_RESKEY_pidfile=$TRASH/run/watch.pid"

# A binary that fails like `asyncrep watch` on a spool a rescue fenced.
cat >"$TRASH/fenced-asyncrep" <<'EOF'
#!/bin/sh
echo "asyncrep: spool fenced by a rescue: run asyncrep watch --reinit" >&2
exit 12
EOF
chmod 755 "$TRASH/fenced-asyncrep"

test_expect_success 'watch: validate-all: missing config is OCF_ERR_CONFIGURED' '
	expect_rc 6 "$WATCH_RA" validate-all OCF_RESKEY_binary="$ASYNCREP" \
		OCF_RESKEY_config="$TRASH/nonexistent.conf" &&
	reason_has "missing or unreadable" &&
	expect_rc 6 "$WATCH_RA" validate-all OCF_RESKEY_binary="$ASYNCREP"
'

test_expect_success 'watch: validate-all: bad syntax 6, no binary 5, good 0' '
	printf "[primary]\nbogus = 1\n" >bad.conf &&
	expect_rc 6 "$WATCH_RA" validate-all OCF_RESKEY_binary="$ASYNCREP" \
		OCF_RESKEY_config="$TRASH/bad.conf" &&
	reason_has "bogus" &&
	expect_rc 5 "$WATCH_RA" validate-all OCF_RESKEY_binary="$TRASH/nonexistent" \
		OCF_RESKEY_config="$TRASH/p.conf" &&
	expect_rc 0 "$WATCH_RA" validate-all OCF_RESKEY_binary="$ASYNCREP" \
		OCF_RESKEY_config="$TRASH/p.conf"
'

test_expect_success 'watch: a probe with no binary and no config is NOT_RUNNING' '
	expect_rc 7 "$WATCH_RA" monitor OCF_RESKEY_CRM_meta_interval=0 \
		OCF_RESKEY_binary=/nonexistent OCF_RESKEY_config=/nonexistent \
		OCF_RESKEY_pidfile="$TRASH/run/probe.pid"
'

test_expect_success 'watch: a fenced spool fails start with OCF_ERR_CONFIGURED' '
	expect_rc 6 "$WATCH_RA" start OCF_RESKEY_binary="$TRASH/fenced-asyncrep" \
		OCF_RESKEY_config="$TRASH/p.conf" OCF_RESKEY_pidfile="$TRASH/run/f.pid" &&
	reason_has "spool fenced by a rescue: re-initialise with asyncrep watch --reinit" &&
	expect_rc 6 "$WATCH_RA" monitor OCF_RESKEY_binary="$TRASH/fenced-asyncrep" \
		OCF_RESKEY_config="$TRASH/p.conf" OCF_RESKEY_pidfile="$TRASH/run/f.pid" &&
	expect_rc 0 "$WATCH_RA" stop OCF_RESKEY_binary="$TRASH/fenced-asyncrep" \
		OCF_RESKEY_config="$TRASH/p.conf" OCF_RESKEY_pidfile="$TRASH/run/f.pid" &&
	expect_rc 7 "$WATCH_RA" monitor OCF_RESKEY_binary="$TRASH/fenced-asyncrep" \
		OCF_RESKEY_config="$TRASH/p.conf" OCF_RESKEY_pidfile="$TRASH/run/f.pid"
'

test_expect_success 'watch: start serves, SIGKILL is a failure, stop cleans up' '
	expect_rc 0 "$WATCH_RA" start $W &&
	port_open "$TEST_IP" "$TEST_PORT" &&
	pid=$(cat "$TRASH/run/watch.pid") &&
	expect_rc 0 "$WATCH_RA" monitor $W &&
	kill -KILL "$pid" &&
	wait_for 5 test -f "$TRASH/run/watch.rc" &&
	expect_rc 1 "$WATCH_RA" monitor $W &&
	reason_has "status 137" &&
	expect_rc 0 "$WATCH_RA" stop $W &&
	expect_rc 7 "$WATCH_RA" monitor $W &&
	expect_rc 0 "$WATCH_RA" stop $W
'

# --- asyncrep-rescue with a fake binary -------------------------------------------

# It follows the contract of `asyncrep rescue`: it keeps --status-file
# updated atomically with `STATE [detail]`. FAKE_RESCUE_MODE picks the
# story: ok (listens, transfers, completes, exits 0), slow (listens for up
# to 30 s, then completes), nostandby (listens, then fails with 16),
# partial (completes db1 only, exits 18), unshown (completes, exits 3:
# the mount showed no xattrs).
cat >"$TRASH/fake-asyncrep" <<'EOF'
#!/bin/sh
[ "$1" = rescue ] || { echo "fake: only rescue" >&2; exit 1; }
shift
echo "$*" >"${FAKE_ARGS:-/dev/null}"
status=/run/asyncrep/rescue.status conf=
while [ $# -gt 0 ]; do
	case $1 in
	-c) conf=$2; shift 2 ;;
	--root|--listen|--timeout|--storage-timeout|--settle|--standby) shift 2 ;;
	--status-file) status=$2; shift 2 ;;
	*) echo "fake: unknown option $1" >&2; exit 1 ;;
	esac
done
st() { echo "$*" >"$status.tmp" && mv -f "$status.tmp" "$status"; }
nap() { i=0; while [ "$i" -lt "$1" ]; do sleep 0.1; i=$((i + 1)); done; }
st starting
[ -r "$conf" ] || { st failed cannot read "$conf"; echo "fake: $conf: unreadable" >&2; exit 2; }
nap 3
st listening 127.0.0.1:1
case ${FAKE_RESCUE_MODE:-ok} in
ok)	nap 5; st transferring spool; nap 3; st comparing; nap 3
	st complete 3 files, 42 bytes; exit 0 ;;
slow)	nap 300; st complete 0 files; exit 0 ;;
nostandby)
	nap 5; st failed no standby connected within 1s
	echo "fake: no standby connected within 1s" >&2; exit 16 ;;
partial)
	nap 5; st partial 4c79d267e63dba7947192bfac3dae1e5\; db1: complete\; db2: never called\; db3: called, incomplete
	echo "fake: partial" >&2; exit 18 ;;
unshown)
	nap 5; st complete 3 files, 42 bytes
	echo "fake: complete, but the mount showed no extended attributes" >&2
	exit 3 ;;
esac
exit 14
EOF
chmod 755 "$TRASH/fake-asyncrep"
R="OCF_RESKEY_config=$TRASH/p.conf OCF_RESKEY_binary=$TRASH/fake-asyncrep OCF_RESKEY_pidfile=$TRASH/run/rescue.pid OCF_RESKEY_status_file=$TRASH/run/rescue.status OCF_RESKEY_timeout=1"

rescue_rc() { cat "$TRASH/run/rescue.rc"; }

test_expect_success 'rescue: validate-all: missing config 6, no binary 5' '
	expect_rc 6 "$RESCUE_RA" validate-all $R OCF_RESKEY_config="$TRASH/nonexistent.conf" &&
	reason_has "missing or unreadable" &&
	expect_rc 6 "$RESCUE_RA" validate-all $R OCF_RESKEY_config= &&
	expect_rc 6 "$RESCUE_RA" validate-all $R OCF_RESKEY_timeout=soon &&
	expect_rc 6 "$RESCUE_RA" validate-all $R OCF_RESKEY_storage_timeout=0 &&
	reason_has "storage_timeout" &&
	expect_rc 6 "$RESCUE_RA" validate-all $R OCF_RESKEY_storage_timeout=0ms &&
	reason_has "storage_timeout" &&
	expect_rc 6 "$RESCUE_RA" validate-all $R OCF_RESKEY_settle=later &&
	reason_has "settle" &&
	expect_rc 0 "$RESCUE_RA" validate-all $R OCF_RESKEY_settle=60 OCF_RESKEY_storage_timeout=1m &&
	expect_rc 6 "$RESCUE_RA" validate-all $R OCF_RESKEY_standbys="db1 db/2" &&
	reason_has "standbys" &&
	expect_rc 0 "$RESCUE_RA" validate-all $R OCF_RESKEY_standbys="db1, db2" &&
	expect_rc 5 "$RESCUE_RA" validate-all $R OCF_RESKEY_binary="$TRASH/nonexistent" &&
	expect_rc 0 "$RESCUE_RA" validate-all $R
'

test_expect_success 'rescue: never started is NOT_RUNNING, stop succeeds' '
	expect_rc 7 "$RESCUE_RA" monitor $R OCF_RESKEY_CRM_meta_interval=0 &&
	expect_rc 7 "$RESCUE_RA" monitor $R &&
	expect_rc 0 "$RESCUE_RA" stop $R
'

test_expect_success 'rescue: start returns when listening; complete stays started' '
	expect_rc 0 "$RESCUE_RA" start $R FAKE_RESCUE_MODE=ok &&
	grep -q "^listening" "$TRASH/run/rescue.status" &&
	! test -f "$TRASH/run/rescue.rc" &&
	expect_rc 0 "$RESCUE_RA" monitor $R &&
	wait_for 10 test -f "$TRASH/run/rescue.rc" &&
	test "$(rescue_rc)" = 0 &&
	grep -q "^complete" "$TRASH/run/rescue.status" &&
	expect_rc 0 "$RESCUE_RA" monitor $R &&
	expect_rc 0 "$RESCUE_RA" monitor $R OCF_RESKEY_CRM_meta_interval=0 &&
	expect_rc 0 "$RESCUE_RA" start $R &&
	test "$(rescue_rc)" = 0 &&
	expect_rc 0 "$RESCUE_RA" stop $R &&
	! test -e "$TRASH/run/rescue.status" &&
	expect_rc 7 "$RESCUE_RA" monitor $R
'

test_expect_success 'rescue: wait_complete=true returns only after completion' '
	expect_rc 0 "$RESCUE_RA" start $R FAKE_RESCUE_MODE=ok OCF_RESKEY_wait_complete=true &&
	test "$(rescue_rc)" = 0 &&
	expect_rc 0 "$RESCUE_RA" stop $R
'

test_expect_success 'rescue: storage_timeout and settle reach asyncrep only when set' '
	expect_rc 0 "$RESCUE_RA" start $R FAKE_RESCUE_MODE=ok \
		OCF_RESKEY_wait_complete=true FAKE_ARGS="$TRASH/args" &&
	cat "$TRASH/args" &&
	grep -q -- "--timeout 1s" "$TRASH/args" &&
	! grep -q -- "--settle" "$TRASH/args" &&
	! grep -q -- "--storage-timeout" "$TRASH/args" &&
	expect_rc 0 "$RESCUE_RA" stop $R &&
	expect_rc 0 "$RESCUE_RA" start $R FAKE_RESCUE_MODE=ok \
		OCF_RESKEY_wait_complete=true FAKE_ARGS="$TRASH/args" \
		OCF_RESKEY_settle=60 OCF_RESKEY_storage_timeout=45s &&
	cat "$TRASH/args" &&
	grep -q -- "--settle 60s" "$TRASH/args" &&
	grep -q -- "--storage-timeout 45s" "$TRASH/args" &&
	expect_rc 0 "$RESCUE_RA" stop $R
'

test_expect_success 'rescue: a failure is OCF_ERR_GENERIC with status and detail' '
	expect_rc 0 "$RESCUE_RA" start $R FAKE_RESCUE_MODE=nostandby &&
	wait_for 10 test -f "$TRASH/run/rescue.rc" &&
	expect_rc 1 "$RESCUE_RA" monitor $R &&
	reason_has "status 16 (no standby connected within the timeout): no standby connected within 1s" &&
	expect_rc 1 "$RESCUE_RA" monitor $R OCF_RESKEY_CRM_meta_interval=0 &&
	reason_has "status 16" &&
	expect_rc 0 "$RESCUE_RA" stop $R &&
	expect_rc 7 "$RESCUE_RA" monitor $R &&
	expect_rc 1 "$RESCUE_RA" start $R FAKE_RESCUE_MODE=nostandby OCF_RESKEY_wait_complete=1 &&
	reason_has "status 16" &&
	expect_rc 0 "$RESCUE_RA" stop $R
'

test_expect_success 'rescue: partial (18) names the missing standbys; the next start runs it again' '
	expect_rc 0 "$RESCUE_RA" start $R FAKE_RESCUE_MODE=partial \
		OCF_RESKEY_standbys="db1, db2 db3" FAKE_ARGS="$TRASH/args" &&
	cat "$TRASH/args" &&
	grep -q -- "--standby db1 --standby db2 --standby db3" "$TRASH/args" &&
	wait_for 10 test -f "$TRASH/run/rescue.rc" &&
	test "$(rescue_rc)" = 18 &&
	expect_rc 1 "$RESCUE_RA" monitor $R &&
	reason_has "partial (status 18): not complete: db2 (never called), db3 (called, incomplete)" &&
	! reason_has "db1" &&
	expect_rc 0 "$RESCUE_RA" start $R FAKE_RESCUE_MODE=ok OCF_RESKEY_wait_complete=true &&
	test "$(rescue_rc)" = 0 &&
	expect_rc 0 "$RESCUE_RA" monitor $R &&
	expect_rc 0 "$RESCUE_RA" stop $R
'

test_expect_success 'rescue: complete through a mount without xattrs (3) stays started' '
	expect_rc 0 "$RESCUE_RA" start $R FAKE_RESCUE_MODE=unshown \
		OCF_RESKEY_wait_complete=true &&
	test "$(rescue_rc)" = 3 &&
	expect_rc 0 "$RESCUE_RA" monitor $R &&
	expect_rc 0 "$RESCUE_RA" start $R &&
	expect_rc 0 "$RESCUE_RA" stop $R
'

test_expect_success 'rescue: probes read no status file; stop kills a running rescue' '
	expect_rc 0 "$RESCUE_RA" start $R FAKE_RESCUE_MODE=slow &&
	pid=$(cat "$TRASH/run/rescue.pid") &&
	echo "failed forged by the test" >"$TRASH/run/rescue.status" &&
	expect_rc 1 "$RESCUE_RA" monitor $R &&
	reason_has "forged by the test" &&
	expect_rc 0 "$RESCUE_RA" monitor $R OCF_RESKEY_CRM_meta_interval=0 &&
	expect_rc 0 "$RESCUE_RA" stop $R &&
	! kill -0 "$pid" 2>/dev/null &&
	! test -e "$TRASH/run/rescue.pid" &&
	expect_rc 7 "$RESCUE_RA" monitor $R
'

# --- what a local user can make the monitor believe ---------------------------------

# mimic_ready PID UID: PID runs as UID with the arguments of a rescue
# (setpriv has exec'd the shell).
mimic_ready() {
	[ "$(stat -c %u "/proc/$1" 2>/dev/null)" = "$2" ] &&
	grep -q "p.conf" "/proc/$1/cmdline" &&
	! grep -q setpriv "/proc/$1/cmdline"
}

# A pid in the pid file held by another program, or by another user,
# with the very arguments of ours: not ours (a reused pid reads as
# "gone", not as "running").
test_expect_success 'monitor: a mimic of the arguments is not the rescue' '
	mkdir -p "$TRASH/run" && rm -f "$TRASH/run/rescue.rc" &&
	start_bg mimic1.log "$PYTHON3" -c "import time; time.sleep(60)" \
		rescue -c "$TRASH/p.conf" &&
	mimic1=$last_pid &&
	wait_for 10 grep -q "p.conf" "/proc/$mimic1/cmdline" &&
	echo "$mimic1" >"$TRASH/run/rescue.pid" &&
	expect_rc 1 "$RESCUE_RA" monitor $R &&
	reason_has "is gone and left no exit status" &&
	kill -KILL "$mimic1" && rm -f "$TRASH/run/rescue.pid"
'

test_expect_success 'monitor: the same program run by another user is not ours' '
	start_bg mimic2.log setpriv --reuid=nobody --regid=nogroup \
		--clear-groups /bin/sh -c "while :; do sleep 1; done" rescue \
		-c "$TRASH/p.conf" &&
	mimic2=$last_pid &&
	wait_for 10 mimic_ready "$mimic2" "$(id -u nobody)" &&
	echo "$mimic2" >"$TRASH/run/rescue.pid" &&
	expect_rc 1 "$RESCUE_RA" monitor $R &&
	kill -KILL "$mimic2" && rm -f "$TRASH/run/rescue.pid"
'

test_expect_success 'monitor: a recorded exit status wins over a live pid' '
	expect_rc 0 "$RESCUE_RA" start $R FAKE_RESCUE_MODE=slow &&
	expect_rc 0 "$RESCUE_RA" monitor $R &&
	echo 16 >"$TRASH/run/rescue.rc" &&
	expect_rc 1 "$RESCUE_RA" monitor $R &&
	reason_has "status 16" &&
	rm -f "$TRASH/run/rescue.rc" &&
	expect_rc 0 "$RESCUE_RA" stop $R
'

test_expect_success 'options are split, never glob-expanded' '
	mkdir -p globdir && : >globdir/--standby-is-a-file &&
	(cd globdir && ra "$RESCUE_RA" start $R FAKE_RESCUE_MODE=ok \
		OCF_RESKEY_options="--standby *" FAKE_ARGS="$TRASH/args" \
		OCF_RESKEY_wait_complete=true; true) &&
	cat "$TRASH/args" &&
	grep -q -- "--standby \*" "$TRASH/args" &&
	! grep -q -- "--standby-is-a-file" "$TRASH/args" &&
	expect_rc 0 "$RESCUE_RA" stop $R
'

test_expect_success 'a log file that is a symbolic link is refused' '
	rm -f "$TRASH/run/rescue.log" &&
	ln -s "$TRASH/elsewhere" "$TRASH/run/rescue.log" &&
	expect_rc 1 "$RESCUE_RA" start $R FAKE_RESCUE_MODE=ok &&
	reason_has "is a symbolic link" &&
	! test -e "$TRASH/elsewhere" &&
	rm "$TRASH/run/rescue.log"
'

# --- ocf-tester ------------------------------------------------------------------

if [ -z "$OCF_TESTER" ]; then
	test_skip 'ocf-tester' 'not installed (apt-get install resource-agents)'
elif [ -z "$IS_ROOT" ]; then
	test_skip 'ocf-tester' 'needs root'
else
	test_expect_success 'ocf-tester passes asyncrep-watch' '
		{ "$OCF_TESTER" -n test-watch -o config="$TRASH/p.conf" \
			-o binary="$ASYNCREP" -o pidfile="$TRASH/run/ot-watch.pid" \
			"$WATCH_RA" >ot-watch.log 2>&1 ||
		{ cat ot-watch.log; false; }; } &&
		grep -q "passed all tests" ot-watch.log
	'
	test_expect_success 'ocf-tester passes asyncrep-rescue (fake binary)' '
		{ FAKE_RESCUE_MODE=slow "$OCF_TESTER" -n test-rescue \
			-o config="$TRASH/p.conf" -o binary="$TRASH/fake-asyncrep" \
			-o pidfile="$TRASH/run/ot-rescue.pid" \
			-o status_file="$TRASH/run/ot-rescue.status" \
			"$RESCUE_RA" >ot-rescue.log 2>&1 ||
		{ cat ot-rescue.log; false; }; } &&
		grep -q "passed all tests" ot-rescue.log
	'
fi

# --- the real rescue, through the agent --------------------------------------------

if ! "$ASYNCREP" --help 2>&1 | grep -q '^ *rescue'; then
	test_skip 'rescue agent with the real binary' 'asyncrep rescue is not built in'
else
	test_expect_success 'setup: a primary from a config and a following standby' '
		mkdir -p src2 spool2 dst2 state2 &&
		sed "s|$TRASH/src|$TRASH/src2|; s|$TRASH/spool|$TRASH/spool2|" p.conf >p2.conf &&
		start_bg "$TRASH/watch2.log" "$ASYNCREP" watch -c "$TRASH/p2.conf" \
			--allow-empty &&
		WATCH2_PID=$last_pid &&
		wait_for 10 grep -q serving "$TRASH/watch2.log" &&
		start_bg "$TRASH/follow2.log" "$ASYNCREP" sync --follow \
			--data-dir "$TRASH/dst2" --state-dir "$TRASH/state2" \
			--primary "$TEST_IP:$TEST_PORT" &&
		FOLLOW2_PID=$last_pid &&
		for i in 1 2 3 4 5; do echo "file $i" >"src2/f$i" || return 1; done &&
		wait_for 10 trees_equal src2 dst2
	'
	test_expect_success 'primary SIGKILLed after unreleased writes: the agent rescues' '
		kill -STOP "$WATCH2_PID" &&
		for i in 6 7 8; do echo "late $i" >"src2/g$i" || return 1; done &&
		kill -KILL "$WATCH2_PID" &&
		expect_rc 0 "$RESCUE_RA" start OCF_RESKEY_config="$TRASH/p2.conf" \
			OCF_RESKEY_binary="$ASYNCREP" OCF_RESKEY_timeout=20s \
			OCF_RESKEY_pidfile="$TRASH/run/real.pid" \
			OCF_RESKEY_status_file="$TRASH/run/real.status" \
			OCF_RESKEY_wait_complete=true OCF_RESKEY_CRM_meta_timeout=45000 &&
		test "$(cat "$TRASH/run/real.rc")" = 0 &&
		grep -q "^complete" "$TRASH/run/real.status" &&
		trees_equal src2 dst2 &&
		expect_rc 0 "$RESCUE_RA" monitor OCF_RESKEY_config="$TRASH/p2.conf" \
			OCF_RESKEY_binary="$ASYNCREP" OCF_RESKEY_pidfile="$TRASH/run/real.pid" \
			OCF_RESKEY_status_file="$TRASH/run/real.status" &&
		expect_rc 0 "$RESCUE_RA" stop OCF_RESKEY_config="$TRASH/p2.conf" \
			OCF_RESKEY_binary="$ASYNCREP" OCF_RESKEY_pidfile="$TRASH/run/real.pid" \
			OCF_RESKEY_status_file="$TRASH/run/real.status"
	'
fi

test_done

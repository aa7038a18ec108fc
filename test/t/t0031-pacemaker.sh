#!/bin/sh
test_description='the OCF agents under a real single-node Pacemaker/Corosync cluster'
# The interpreter itself, not a version-manager shim (trees_equal runs it).
: "${PYTHON3:=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}"
. "$SRCDIR/test/t/lib.sh"
# The primary's service address as in t0040 (127.0.0.2, ADDR), exited and
# reap; the rescue binds ADDR once the primary is stopped.
. "$SRCDIR/test/t/lib-rescue.sh"

# t0030 runs the agents by hand and under ocf-tester; this script has
# Pacemaker run them: corosync and pacemakerd started by the test (root,
# no systemd needed), the agents installed under a provider of this run
# (ocf:asyncrep-tPID:...), resources created with cibadmin. Pacemaker's
# state lives in /var/lib/pacemaker whatever we do: it is backed up first
# and restored at exit, even on failure, and the daemons are stopped.
# One cluster per machine: the script holds a lock on
# /var/lib/pacemaker/cib and skips if a cluster already runs.

: "${OCF_ROOT:=/usr/lib/ocf}"
PCMK_DIR=/var/lib/pacemaker
PROVIDER=asyncrep-t$$
OCF_DIR=$OCF_ROOT/resource.d/$PROVIDER
NODE=$(uname -n)
W=t31-watch
R=t31-rescue

COROSYNC_PID= PCMKD_PID= PCMK_CHILDREN= BACKED_UP= OCF_INSTALLED= RUN_CRM_EXISTED=
WATCH_PID1= LOG_AT=0

# --- prerequisites: skip, with the reason, when one is missing -----------------

skip_all() {
	test_skip 'Pacemaker cluster' "$1"
	test_done
}

[ "$(id -u)" = 0 ] || skip_all 'needs root (starts corosync and pacemakerd)'
for c in corosync pacemakerd crm_mon crm_resource crm_attribute cibadmin \
	crm_failcount flock setsid timeout; do
	command -v "$c" >/dev/null 2>&1 ||
		skip_all "$c not found (apt-get install pacemaker corosync pacemaker-cli-utils)"
done
[ -r "$OCF_ROOT/lib/heartbeat/ocf-shellfuncs" ] ||
	skip_all "no $OCF_ROOT/lib/heartbeat/ocf-shellfuncs (apt-get install resource-agents)"
[ -d "$PCMK_DIR/cib" ] || skip_all "no $PCMK_DIR/cib (pacemaker not installed properly)"
id hacluster >/dev/null 2>&1 || skip_all 'no user hacluster (pacemaker not installed properly)'
"$ASYNCREP" --help 2>&1 | grep -q '^ *rescue' ||
	skip_all 'asyncrep rescue is not built in'
[ ! -e "$OCF_DIR" ] || skip_all "$OCF_DIR exists already"

# One test cluster at a time on this machine; the daemons do not inherit
# the lock (fd 9 is closed for them).
exec 9<"$PCMK_DIR/cib" && flock -n 9 ||
	skip_all "another run holds the lock on $PCMK_DIR/cib"

# cluster_procs: the live (not zombie) corosync and pacemaker daemons of
# the machine, as "pid name".
cluster_procs() {
	for s in /proc/[0-9]*/stat; do
		line=$(cat "$s" 2>/dev/null) || continue
		comm=${line#*\(}; comm=${comm%%\)*}
		st=${line##*) }; st=${st%% *}
		[ "$st" = Z ] && continue
		case $comm in
		corosync|pacemakerd|pacemaker-*)
			p=${s#/proc/}; echo "${p%/stat} $comm" ;;
		esac
	done
}
running=$(cluster_procs)
[ -n "$running" ] &&
	skip_all "a cluster already runs on this machine: $(echo $running)"

# --- helpers ---------------------------------------------------------------------

# poll SECS CMD...: retry CMD every 0.25 s (the cluster tools are slower
# than wait_for's pace) until it succeeds.
poll() {
	p_limit=$1; shift
	p_tries=$((p_limit * 4))
	while [ "$p_tries" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.25
		p_tries=$((p_tries - 1))
	done
	echo "timed out after ${p_limit}s waiting for: $*"
	return 1
}

# Every cluster tool is bounded: a stuck cluster must not hang the test.
pc() { timeout 20 "$@"; }

cluster_online() {
	pc crm_mon -1 >"$TRASH/crm_mon.out" 2>&1 &&
	grep -q "Current DC: $NODE " "$TRASH/crm_mon.out" &&
	grep -q "Online: \[ $NODE \]" "$TRASH/crm_mon.out"
}

# rsc_running NAME / rsc_stopped NAME: where Pacemaker says NAME is.
rsc_running() {
	pc crm_resource --locate --resource "$1" 2>&1 |
		grep -q "is running on: $NODE"
}
rsc_stopped() {
	pc crm_resource --locate --resource "$1" 2>&1 | grep -q "is NOT running"
}

# started_in_crm_mon NAME: crm_mon lists NAME as Started on this node.
started_in_crm_mon() {
	pc crm_mon -1 >"$TRASH/crm_mon.out" 2>&1 &&
	grep -q "$1[[:space:]].*Started $NODE" "$TRASH/crm_mon.out"
}

# rsc_started NAME: its start has completed. --locate alone also counts a
# start in progress (crm_mon says "Starting" then).
rsc_started() {
	started_in_crm_mon "$1" && rsc_running "$1"
}

# start_outcome SECS NAME: wait until Pacemaker has started NAME (0) or
# recorded a failed start of it (1, showing crm_mon); bounded.
start_outcome() {
	so_tries=$(($1 * 4))
	while [ "$so_tries" -gt 0 ]; do
		pc crm_mon -1 --include=failures >"$TRASH/crm_mon.out" 2>&1
		if grep -q "$2[[:space:]].*Started $NODE" "$TRASH/crm_mon.out"; then
			rsc_running "$2" && return 0
		fi
		if grep -q "$2 start on $NODE returned" "$TRASH/crm_mon.out"; then
			cat "$TRASH/crm_mon.out"
			return 1
		fi
		sleep 0.25
		so_tries=$((so_tries - 1))
	done
	echo "timed out after ${1}s waiting for the start of $2"
	cat "$TRASH/crm_mon.out"
	return 1
}

# failcount NAME: Pacemaker's fail count of NAME on this node (0: none);
# fails, saying why, when crm_failcount does.
failcount() {
	pc crm_failcount --query --resource "$1" --node "$NODE" \
		>"$TRASH/failcount.out" 2>&1 || {
		echo "crm_failcount failed:"; cat "$TRASH/failcount.out"; return 1; }
	sed -n 's/.*value=\([0-9A-Za-z]*\).*/\1/p' "$TRASH/failcount.out" |
		grep . || echo 0
}

set_target_role() {
	pc crm_resource --resource "$1" --meta --set-parameter target-role \
		--parameter-value "$2"
}

# add_primitive ID TYPE OP_INTERVAL_MONITOR NAME=VALUE...: create an
# ocf:$PROVIDER:TYPE primitive with these instance attributes, start and
# stop timeouts of 60 s and 30 s, and a recurring monitor.
add_primitive() {
	ap_id=$1 ap_type=$2 ap_iv=$3; shift 3
	{
		printf '<primitive id="%s" class="ocf" provider="%s" type="%s">' \
			"$ap_id" "$PROVIDER" "$ap_type"
		printf '<instance_attributes id="%s-ia">' "$ap_id"
		for nv in "$@"; do
			printf '<nvpair id="%s-ia-%s" name="%s" value="%s"/>' \
				"$ap_id" "${nv%%=*}" "${nv%%=*}" "${nv#*=}"
		done
		printf '</instance_attributes><operations>'
		printf '<op id="%s-start" name="start" interval="0" timeout="60s"/>' "$ap_id"
		printf '<op id="%s-stop" name="stop" interval="0" timeout="30s"/>' "$ap_id"
		printf '<op id="%s-monitor" name="monitor" interval="%s" timeout="20s"/>' \
			"$ap_id" "$ap_iv"
		printf '</operations></primitive>'
	} >"$TRASH/$ap_id.xml" &&
	pc cibadmin --create -o resources --xml-file "$TRASH/$ap_id.xml"
}

# pidfile_pid FILE: the live pid of an agent's pid file.
pidfile_pid() {
	p=$(cat "$1" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null &&
	echo "$p"
}

# new_pid FILE OLD: FILE names a live process other than OLD.
new_pid() {
	p=$(pidfile_pid "$1") && [ "$p" != "$2" ]
}

# pcmk_state DIR: what of Pacemaker's state directory the test may touch:
# names, modes, owners and sizes under cib, pengine, blackbox and cores.
pcmk_state() {
	for d in cib pengine blackbox cores; do
		[ -d "$1/$d" ] || continue
		(cd "$1/$d" && find . -printf "$d/%P %m %u:%g %s\n") | sort
	done
}

# machine_state: what the test may change outside $TRASH, to compare
# before and after.
machine_state() {
	pcmk_state "$PCMK_DIR"
	echo "$PCMK_DIR $(stat -c '%u:%g %a' "$PCMK_DIR")"
	find /var/log/pacemaker 2>/dev/null | sort
	ls -d /run/crm 2>/dev/null
	ls -A /dev/shm | grep '^qb-'
	ls -A "$OCF_ROOT/resource.d"
	return 0
}

show_logs() {
	for f in "$TRASH/pacemaker.log" "$TRASH/corosync.log"; do
		echo "== $f (errors, last 20)"
		grep -E "error|crit|warning" "$f" 2>/dev/null | tail -n 20
	done
	return 1
}

# --- setting up and tearing down the machine-wide state ---------------------------

# pcmk_backup: keep Pacemaker's state directories as they are, and start
# the CIB afresh with a short dc-deadtime (the default 20 s is spent
# waiting for peers a single node does not have).
pcmk_backup() {
	mkdir -p "$TRASH/pcmk-backup" &&
	for d in cib pengine blackbox cores; do
		[ -d "$PCMK_DIR/$d" ] || continue
		cp -a "$PCMK_DIR/$d" "$TRASH/pcmk-backup/$d" || return 1
	done &&
	stat -c '%u:%g %a' "$PCMK_DIR" >"$TRASH/pcmk-backup/top.stat" &&
	pcmk_state "$PCMK_DIR" >"$TRASH/pcmk-backup/state" &&
	ls -A /dev/shm >"$TRASH/pcmk-backup/shm" &&
	{ [ ! -e /run/crm ] || RUN_CRM_EXISTED=1; } &&
	BACKED_UP=1 &&
	find "$PCMK_DIR/cib" -mindepth 1 -delete &&
	cat >"$PCMK_DIR/cib/cib.xml" <<-EOF &&
	<cib validate-with="pacemaker-3.0" epoch="1" num_updates="0" admin_epoch="0">
	  <configuration>
	    <crm_config>
	      <cluster_property_set id="cib-bootstrap-options">
	        <nvpair id="cib-bootstrap-options-dc-deadtime" name="dc-deadtime" value="2s"/>
	      </cluster_property_set>
	    </crm_config>
	    <nodes/>
	    <resources/>
	    <constraints/>
	  </configuration>
	  <status/>
	</cib>
	EOF
	chown hacluster:haclient "$PCMK_DIR/cib/cib.xml" &&
	chmod 600 "$PCMK_DIR/cib/cib.xml"
}

pcmk_restore() {
	[ -n "$BACKED_UP" ] || return 0
	for d in cib pengine blackbox cores; do
		[ -d "$TRASH/pcmk-backup/$d" ] || continue
		# A crash leaves a blackbox or a core: keep it with the logs.
		if [ "$d" = blackbox ] || [ "$d" = cores ]; then
			for f in "$PCMK_DIR/$d"/*; do
				[ -e "$f" ] || continue
				[ -e "$TRASH/pcmk-backup/$d/${f##*/}" ] && continue
				mkdir -p "$TRASH/pcmk-$d" && mv "$f" "$TRASH/pcmk-$d/"
			done
		fi
		find "$PCMK_DIR/$d" -mindepth 1 -delete &&
		cp -a "$TRASH/pcmk-backup/$d/." "$PCMK_DIR/$d/"
	done
	# pacemakerd makes /var/lib/pacemaker its own: give it back.
	read -r own mode <"$TRASH/pcmk-backup/top.stat" &&
	chown "$own" "$PCMK_DIR" && chmod "$mode" "$PCMK_DIR"
	[ -n "$RUN_CRM_EXISTED" ] || rm -rf /run/crm
	# libqb's shared memory of the daemons, if one was killed.
	for f in /dev/shm/qb-*; do
		[ -e "$f" ] || continue
		grep -qxF "${f#/dev/shm/}" "$TRASH/pcmk-backup/shm" || rm -rf "$f"
	done
	BACKED_UP=
}

# stop_pid PID SECS: SIGTERM our child PID, SIGKILL it after SECS; reap it.
stop_pid() {
	kill -TERM "$1" 2>/dev/null
	wait_for "$2" exited "$1" >/dev/null || {
		echo "# pid $1 still runs after ${2}s: SIGKILL"
		kill -KILL "$1" 2>/dev/null
		wait_for 5 exited "$1" >/dev/null
	}
	wait "$1" 2>/dev/null
	return 0
}

# pcmk_teardown: stop pacemakerd (it stops the resources first), then
# corosync; kill what survives; restore the machine. Safe to call twice.
pcmk_teardown() {
	if [ -n "$PCMKD_PID" ]; then
		stop_pid "$PCMKD_PID" 60
		for p in $PCMK_CHILDREN; do
			exited "$p" || { echo "# killing pacemaker daemon $p"; kill -KILL "$p"; }
		done
		PCMKD_PID=
	fi
	# Daemons the agents launched, had Pacemaker not stopped them.
	for f in "$TRASH"/run/*.pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f" 2>/dev/null)
		case $p in ''|*[!0-9]*) continue ;; esac
		tr '\000' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$TRASH/" &&
			{ echo "# killing agent's process $p"; kill -KILL "$p"; }
	done
	if [ -n "$COROSYNC_PID" ]; then
		stop_pid "$COROSYNC_PID" 20
		COROSYNC_PID=
	fi
	pcmk_restore
	if [ -n "$OCF_INSTALLED" ]; then
		rm -rf "$OCF_DIR"
		OCF_INSTALLED=
	fi
	return 0
}

trap 'pcmk_teardown; cleanup' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the cluster ---------------------------------------------------------------

chmod 755 "$TRASH"
mkdir -p "$TRASH/run" "$TRASH/corosync-state"

cat >"$TRASH/corosync.conf" <<EOF
totem {
	version: 2
	cluster_name: asyncrep-t0031
	transport: knet
	crypto_cipher: none
	crypto_hash: none
}
nodelist {
	node {
		ring0_addr: 127.0.0.1
		name: $NODE
		nodeid: 1
	}
}
quorum {
	provider: corosync_votequorum
}
logging {
	to_logfile: yes
	logfile: $TRASH/corosync.log
	to_syslog: no
	to_stderr: no
	timestamp: on
}
system {
	state_dir: $TRASH/corosync-state
}
EOF

machine_state >"$TRASH/machine.before"
mkdir -p "$OCF_DIR" && OCF_INSTALLED=1 &&
cp "$SRCDIR/hooks/asyncrep-watch" "$SRCDIR/hooks/asyncrep-rescue" "$OCF_DIR/" &&
chmod 755 "$OCF_DIR" "$OCF_DIR/asyncrep-watch" "$OCF_DIR/asyncrep-rescue" ||
	exit 99
pcmk_backup || { echo "# cannot back up $PCMK_DIR"; exit 99; }

# pcmk_start: corosync, then pacemakerd, up to an online node that is DC.
# 0: up; 1: the cluster cannot run here (SKIP_REASON says why); 2: it runs
# but did not come up in time.
SKIP_REASON=
pcmk_start() {
	corosync -f -c "$TRASH/corosync.conf" >"$TRASH/corosync.out" 2>&1 9<&- &
	COROSYNC_PID=$!
	n=80
	while ! grep -q "ready to provide service" "$TRASH/corosync.log" 2>/dev/null; do
		if exited "$COROSYNC_PID" || [ "$n" -le 0 ]; then
			SKIP_REASON="corosync does not run here: $(cat "$TRASH/corosync.out" "$TRASH/corosync.log" 2>/dev/null |
				grep -Ei "error|crit|cannot|failed" | tail -n 2 | tr '\n' ' ')"
			return 1
		fi
		sleep 0.25
		n=$((n - 1))
	done
	env PCMK_logfile="$TRASH/pacemaker.log" PCMK_logfacility=none \
		PCMK_debug=pacemaker-execd \
		pacemakerd -f >"$TRASH/pacemakerd.out" 2>&1 9<&- &
	PCMKD_PID=$!
	n=240
	while ! cluster_online; do
		if exited "$PCMKD_PID"; then
			SKIP_REASON="pacemaker does not run here: $(cat "$TRASH/pacemakerd.out" "$TRASH/pacemaker.log" 2>/dev/null |
				grep -Ei "error|crit" | tail -n 2 | tr '\n' ' ')"
			return 1
		fi
		[ "$n" -le 0 ] && return 2
		sleep 0.25
		n=$((n - 1))
	done
	for s in /proc/[0-9]*/stat; do
		[ "$(cut -d' ' -f4 "$s" 2>/dev/null)" = "$PCMKD_PID" ] || continue
		p=${s#/proc/}
		PCMK_CHILDREN="$PCMK_CHILDREN ${p%/stat}"
	done
	return 0
}

T0=$(date +%s)
pcmk_start
PCMK_UP=$?
if [ "$PCMK_UP" = 1 ]; then
	pcmk_teardown
	skip_all "$SKIP_REASON"
fi
say "cluster started in $(( $(date +%s) - T0 ))s"

# --- 1. the cluster, and the agents' meta-data ------------------------------------

test_expect_success 'the cluster comes up; Pacemaker accepts the agents meta-data' '
	{ test "$PCMK_UP" = 0 || { echo "node not online within 60s"; cat crm_mon.out; show_logs; }; } &&
	pc crm_attribute --type crm_config --name stonith-enabled --update false &&
	pc crm_attribute --type crm_config --name no-quorum-policy --update ignore &&
	pc crm_attribute --type crm_config --name stonith-enabled --query | grep -q "value=false" &&
	pc crm_mon -1 &&
	pc crm_resource --show-metadata "ocf:$PROVIDER:asyncrep-watch" >watch.meta &&
	grep -q "<resource-agent name=\"asyncrep-watch\"" watch.meta &&
	grep -q "<parameter name=\"binary\"" watch.meta &&
	pc crm_resource --show-metadata "ocf:$PROVIDER:asyncrep-rescue" >rescue.meta &&
	grep -q "<resource-agent name=\"asyncrep-rescue\"" rescue.meta &&
	grep -q "<parameter name=\"status_file\"" rescue.meta
'
if [ "$test_failures" -gt 0 ]; then
	test_done
fi

# --- 2. the primary, started by Pacemaker ---------------------------------------

cat >"$TRASH/p.conf" <<EOF
[primary]
data_dir  = $TRASH/p/data
spool_dir = $TRASH/p/spool
listen    = $ADDR
interval  = 100ms
EOF
cat >"$TRASH/s.conf" <<EOF
[standby]
data_dir  = $TRASH/s/data
state_dir = $TRASH/s/state
primary   = $ADDR
EOF

test_expect_success 'asyncrep-watch started by Pacemaker serves a one-shot sync' '
	mkdir -p p/data/sub p/spool s/data s/state &&
	echo hello >p/data/a &&
	printf "\000\001binary\377" >p/data/sub/b &&
	head -c 100000 /dev/urandom >p/data/sub/big &&
	chmod 640 p/data/sub/b &&
	ln -s a p/data/link &&
	add_primitive $W asyncrep-watch 2s config="$TRASH/p.conf" \
		binary="$ASYNCREP" pidfile="$TRASH/run/watch.pid" &&
	{ start_outcome 60 $W || { cat run/watch.log; show_logs; }; } &&
	started_in_crm_mon $W &&
	port_open $TEST_IP $TEST_PORT &&
	WATCH_PID1=$(pidfile_pid run/watch.pid) &&
	timeout 30 "$ASYNCREP" sync -c "$TRASH/s.conf" &&
	trees_equal p/data s/data
'

# --- 3. the primary killed behind Pacemaker's back -------------------------------

test_expect_success 'SIGKILLed primary: the monitor notices, Pacemaker restarts it' '
	test "$(failcount $W)" = 0 &&
	kill -KILL "$WATCH_PID1" &&
	{ poll 30 new_pid run/watch.pid "$WATCH_PID1" || { pc crm_mon -1; show_logs; }; } &&
	WATCH_PID2=$(pidfile_pid run/watch.pid) &&
	say "watch pid $WATCH_PID1 -> $WATCH_PID2" &&
	start_outcome 20 $W &&
	wait_for 10 port_open $TEST_IP $TEST_PORT &&
	fc=$(failcount $W) && say "fail count $fc" && test "$fc" -ge 1 &&
	pc crm_mon -1 --include=failcounts,failures >crm_mon.fail &&
	cat crm_mon.fail &&
	grep -q "status 137 (killed by signal 9)" crm_mon.fail &&
	echo after-restart >p/data/c &&
	timeout 30 "$ASYNCREP" sync -c "$TRASH/s.conf" &&
	trees_equal p/data s/data
'

# --- 4. the primary stopped, the rescue takes over its address -----------------------

test_expect_success 'asyncrep-rescue started by Pacemaker completes a following standby' '
	set_target_role $W Stopped &&
	poll 40 rsc_stopped $W &&
	! port_open $TEST_IP $TEST_PORT 2>/dev/null &&
	test ! -e run/watch.pid &&
	mkdir p/data/late &&
	echo "never sent" >p/data/late/unsent &&
	echo "changed after the stop" >p/data/a &&
	head -c 50000 /dev/urandom >p/data/sub/big &&
	! trees_equal p/data s/data >/dev/null &&
	add_primitive $R asyncrep-rescue 2s config="$TRASH/p.conf" \
		binary="$ASYNCREP" pidfile="$TRASH/run/rescue.pid" \
		status_file="$TRASH/run/rescue.status" timeout=30s &&
	{ start_outcome 60 $R || { cat run/rescue.log; show_logs; }; } &&
	started_in_crm_mon $R &&
	cat run/rescue.status &&
	grep -Eq "^(listening|transferring|comparing|complete)" run/rescue.status &&
	start_bg "$TRASH/follow.log" "$ASYNCREP" sync --follow -v -c "$TRASH/s.conf" &&
	FOLLOW_PID=$last_pid &&
	reap 60 "$FOLLOW_PID" &&
	{ test "$RC" = 0 || { echo "standby exited $RC"; tail -n 20 follow.log; false; }; } &&
	grep -q "the replica is complete" follow.log &&
	trees_equal p/data s/data &&
	wait_for 20 test -f run/rescue.rc &&
	test "$(cat run/rescue.rc)" = 0 &&
	cat run/rescue.status &&
	grep -q "^complete" run/rescue.status &&
	test -f p/spool/rescued &&
	LOG_AT=$(wc -l <pacemaker.log)
'

# monitors_ok_since LINE N: pacemaker-execd (PCMK_debug) logged at least N
# runs of the rescue's recurring monitor after line LINE, all exiting 0.
monitors_ok_since() {
	tail -n +"$(($1 + 1))" "$TRASH/pacemaker.log" |
		grep "$R monitor (call [0-9]*, PID [0-9]*) exited with status" >"$TRASH/mon.lines"
	! grep -qv "exited with status 0 " "$TRASH/mon.lines" &&
	test "$(wc -l <"$TRASH/mon.lines")" -ge "$2"
}

RESCUED=$test_failures
test_expect_success 'after completion the rescue monitor reports success (Started, no failure)' '
	test "$RESCUED" = 0 &&
	{ poll 15 monitors_ok_since "$LOG_AT" 2 || { cat mon.lines; false; }; } &&
	cat mon.lines &&
	rsc_running $R &&
	started_in_crm_mon $R &&
	test "$(failcount $R)" = 0 &&
	pc crm_mon -1 --include=failures >crm_mon.fail &&
	! grep -q "$R.*returned" crm_mon.fail
'

# --- 5. stopping the rescue, stopping the cluster ---------------------------------

test_expect_success 'Pacemaker stops the rescue; the agent cleans its state' '
	set_target_role $R Stopped &&
	poll 40 rsc_stopped $R &&
	test ! -e run/rescue.pid &&
	test ! -e run/rescue.rc &&
	test ! -e run/rescue.status &&
	pc crm_mon -1 >crm_mon.out && cat crm_mon.out &&
	! grep -q "$R.*Started" crm_mon.out
'

test_expect_success 'the old primary started again on the fenced spool: start fails, stays down' '
	test "$RESCUED" = 0 &&
	set_target_role $W Started &&
	! start_outcome 40 $W &&
	grep -q "$W start on $NODE returned .*spool fenced by a rescue" crm_mon.out &&
	grep -q "not configured" crm_mon.out &&
	poll 20 rsc_stopped $W &&
	! port_open $TEST_IP $TEST_PORT 2>/dev/null
'

test_expect_success 'the cluster stops; nothing of it is left on the machine' '
	pcmk_teardown &&
	test -z "$(cluster_procs)" &&
	test ! -e "$OCF_DIR" &&
	machine_state >machine.after &&
	test_cmp machine.before machine.after &&
	say "total $(( $(date +%s) - T0 ))s from the start of the cluster"
'

test_done

#!/bin/sh
test_description='rescue soak: random workloads, the primary killed, the rescue and the standbys killed and restarted'
# Each trial: a primary (interval from the plan) followed by two standbys,
# sa and sb, a seeded mixed workload (test/t/soak.py), the primary and the
# workload SIGKILLed at a random moment (the host died), then the rescue
# on the primary's address, with the rescue or a standby SIGKILLed and
# restarted at random points. It passes only if the last rescue exited 0,
# every standby's `sync --follow` exited 0 on its own saying the replica
# is complete, and both standby trees are the primary's data_dir, byte
# for byte.
#
#   SOAK_TRIALS=N  trials (default 2; `make soak` runs 20)
#   SOAK_SEED=S    the first trial's seed (default random); trial i uses
#                  S+i-1. A failed trial prints its seed: replay it alone
#                  with SOAK_SEED=<its seed> SOAK_TRIALS=1.
: "${PYTHON3:=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}"
. "$SRCDIR/test/t/lib.sh"
. "$SRCDIR/test/t/lib-rescue.sh"

SOAK=$SRCDIR/test/t/soak.py
SOAK_TRIALS=${SOAK_TRIALS:-2}
SOAK_SEED=${SOAK_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d " ")}
case $SOAK_TRIALS$SOAK_SEED in *[!0-9]*) echo "SOAK_TRIALS and SOAK_SEED are numbers"; exit 99 ;; esac
[ "$SOAK_TRIALS" -le 200 ] || { echo "SOAK_TRIALS at most 200"; exit 99; }
say "soak: $SOAK_TRIALS trials from seed $SOAK_SEED (replay: SOAK_SEED=$SOAK_SEED SOAK_TRIALS=$SOAK_TRIALS)"

# note WORDS: a line of the trial's story, in its output and in the
# summary printed at the end (the output of a passed step is not shown).
note() {
	say "$*"
	echo "$*" >>"$TRASH/soak.notes"
}

# trial_sleep SECS: sleep a fraction of a second (0 is no sleep).
trial_sleep() {
	case $1 in 0|0.000) ;; *) sleep "$1" ;; esac
}

# secs_until AT NOW: how long from NOW to AT, 0 if AT is past.
secs_until() {
	awk -v a="$1" -v n="$2" 'BEGIN { d = a - n; printf "%.3f\n", (d > 0 ? d : 0) }'
}

# stop_and_status PID: SIGKILL our child PID and reap it; KST is 137 if
# the signal killed it, else the status it had exited with by itself.
stop_and_status() {
	kill -KILL "$1" 2>/dev/null
	KST=0
	wait "$1" || KST=$?
}

# follow_again T S: restart standby S of trial T (its id is S). The
# workload deletes most of what it wrote: a rescue's compare of the whole
# tree may legitimately delete most of a standby that never saw the
# journal's deletions, so max_delete is lifted here (t0026 tests it).
follow_again() {
	start_follow "$1/$2" --standby-id "$2" --max-delete 100% &&
	eval "PID_$2=\$FOLLOW_PID"
}

# standby_done T S: standby S of trial T exited 0 on its own, and its log
# since its last start says the replica is complete.
standby_done() {
	eval "sd_pid=\$PID_$2"
	reap 30 "$sd_pid" || { echo "standby $2 still running"; return 1; }
	test "$RC" = 0 || { echo "standby $2 exited $RC"; return 1; }
	sed -n '/^--- start$/h; /^--- start$/!H; ${x;p;}' "$TRASH/$1/$2.follow.log" |
		grep -q "the replica is complete" ||
		{ echo "standby $2 exited 0 without saying the replica is complete"; return 1; }
}

# one_exited: standby sa or sb has exited (or is a zombie).
one_exited() {
	exited "$PID_sa" || exited "$PID_sb"
}

# trial_logs T: what a failed trial leaves to read.
trial_logs() {
	for f in "$TRASH/$1"/*.log "$TRASH/$1"/p.rescue-status; do
		[ -f "$f" ] || continue
		echo "== $f (last 25 lines)"
		tail -n 25 "$f"
	done
	return 1
}

# soak_trial N SEED: one trial, in $TRASH/tN; fails with its seed and logs.
soak_trial() {
	t=t$1 seed=$2
	stop_strays
	eval "$("$PYTHON3" "$SOAK" plan "$seed")" || return 1
	note "trial $1 seed $seed: interval $INTERVAL, primary killed after ${KILL_AFTER}s" \
		"(workload ${WL_GAP}s $( [ "$WL_FIRST" = 1 ] && echo before || echo after))," \
		"paused at death: ${PAUSED:-none} (resumed at ${RESUME_AT}s), rescue events: $EVENTS"
	mkdir -p "$t/p/data" &&
	"$PYTHON3" "$SOAK" init "$t/p/data" "$seed" &&
	write_conf "$t/p" "$TRASH/$t/p/data" "$TRASH/$t/p/spool" "$INTERVAL" &&
	echo "standbys = sa, sb" >>"$t/p.conf" &&
	start_primary "$t/p" &&
	follow_again "$t" sa && follow_again "$t" sb &&
	wait_for 30 trees_equal "$t/p/data" "$t/sa/data" &&
	wait_for 30 trees_equal "$t/p/data" "$t/sb/data" || {
		echo "trial $1 (seed $seed): the standbys did not catch up"
		trial_logs "$t"; return 1; }

	# The workload, and the host's death in the middle of it.
	start_bg "$t/work.log" "$PYTHON3" "$SOAK" work "$t/p/data" "$seed" \
		"$(awk -v k="$KILL_AFTER" 'BEGIN { print k + 5 }')" 20000
	WL=$last_pid
	trial_sleep "$KILL_AFTER"
	if [ -n "$PAUSED" ]; then
		eval "kill -STOP \$PID_$PAUSED"
	fi
	if [ "$WL_FIRST" = 1 ]; then
		kill9 "$WL"; trial_sleep "$WL_GAP"; kill9 "$WATCH_PID"
	else
		kill9 "$WATCH_PID"; trial_sleep "$WL_GAP"; kill9 "$WL"
	fi
	note "trial $1: $(find "$t/p/data" -type f | wc -l) files," \
		"$(du -sk "$t/p/data" | cut -f1) KiB on the primary at its death"

	# The rescue, disrupted.
	start_rescue "$t/p" --timeout 20s
	now=0
	resumed=
	for ev in $EVENTS; do
		target=${ev%%:*} rest=${ev#*:}
		at=${rest%%:*} down=${rest#*:}
		if [ -n "$PAUSED" ] && [ -z "$resumed" ] &&
		    awk -v a="$RESUME_AT" -v b="$at" 'BEGIN { exit !(a <= b) }'; then
			trial_sleep "$(secs_until "$RESUME_AT" "$now")"
			eval "kill -CONT \$PID_$PAUSED"
			resumed=1
		fi
		trial_sleep "$(secs_until "$at" "$now")"
		now=$(awk -v a="$at" -v n="$now" -v d="$down" 'BEGIN { print (a > n ? a : n) + d }')
		case $target in
		rescue1)
			wait_for 10 one_exited
			target=rescue
			;;
		esac
		case $target in
		rescue)
			exited "$RESCUE_PID" && {
				note "trial $1: the rescue had already exited at ${at}s"
				continue; }
			stop_and_status "$RESCUE_PID"
			if [ "$KST" = 0 ]; then
				note "trial $1: the rescue exited 0 just before its kill at ${at}s"
				continue
			fi
			[ "$KST" = 137 ] || {
				echo "trial $1 (seed $seed): the rescue exited $KST before its kill"
				trial_logs "$t"; return 1; }
			note "trial $1: rescue SIGKILLed at ${at}s, restarted ${down}s later"
			trial_sleep "$down"
			start_rescue "$t/p" --timeout 20s
			;;
		*)
			eval "pid=\$PID_$target"
			stop_and_status "$pid"
			case $KST in
			137) note "trial $1: standby $target SIGKILLed at ${at}s, restarted ${down}s later" ;;
			0) note "trial $1: standby $target had completed; restarted ${down}s after ${at}s" ;;
			*) echo "trial $1 (seed $seed): standby $target exited $KST by itself"
			   trial_logs "$t"; return 1 ;;
			esac
			trial_sleep "$down"
			follow_again "$t" "$target"
			;;
		esac
	done
	if [ -n "$PAUSED" ] && [ -z "$resumed" ]; then
		trial_sleep "$(secs_until "$RESUME_AT" "$now")"
		eval "kill -CONT \$PID_$PAUSED"
	fi

	# The verdict.
	reap 60 "$RESCUE_PID" || {
		echo "trial $1 (seed $seed): the rescue did not exit within 60s"
		trial_logs "$t"; return 1; }
	test "$RC" = 0 || {
		echo "trial $1 (seed $seed): the rescue exited $RC"
		trial_logs "$t"; return 1; }
	for s in sa sb; do
		standby_done "$t" "$s" || {
			echo "trial $1 (seed $seed): standby $s"; trial_logs "$t"; return 1; }
	done
	for s in sa sb; do
		trees_equal "$t/p/data" "$t/$s/data" >"$t/$s.diff" || {
			echo "trial $1 (seed $seed): standby $s differs from the primary's data:"
			head -n 40 "$t/$s.diff"; trial_logs "$t"; return 1; }
	done
	test -f "$t/p/spool/rescued" && status_is "$t/p" complete || {
		echo "trial $1 (seed $seed): no rescued marker or status not complete"
		trial_logs "$t"; return 1; }
	note "trial $1: spool phase $(report_count "$t/p" spool) files, compare phase $(report_count "$t/p" compare) files"
	# A passed trial's scratch is removed as it goes: 20 trials of trees.
	rm -rf "$t"
}

# What the soak found first (seed 8, rescue1): the rescue killed after
# one standby confirmed and exited, then run again, waited for that
# standby until --timeout and exited 18. Each confirmation is now in
# spool_dir/rescue-confirmed before the standby is answered.
test_expect_success 'a rescue killed after one standby completed, run again, completes the other' '
	mkdir -p k/p/data && echo before >k/p/data/f &&
	write_conf k/p "$TRASH/k/p/data" "$TRASH/k/p/spool" 100ms &&
	echo "standbys = sa, sb" >>k/p.conf &&
	start_primary k/p &&
	follow_again k sa && follow_again k sb &&
	wait_for 20 trees_equal k/p/data k/sa/data &&
	wait_for 20 trees_equal k/p/data k/sb/data &&
	kill -STOP $PID_sb && wait_for 10 is_stopped $PID_sb &&
	echo new >k/p/data/new &&
	wait_for 10 grep -qa new k/p/spool/seg-*.log &&
	kill9 $WATCH_PID &&
	start_rescue k/p --timeout 20s &&
	reap 20 $PID_sa && test "$RC" = 0 &&
	grep -q "^standby sa: complete$" k/p/spool/rescue-confirmed &&
	kill9 $RESCUE_PID &&
	test ! -e k/p/spool/rescued &&
	start_rescue k/p --timeout 20s &&
	kill -CONT $PID_sb &&
	reap 30 $RESCUE_PID && test "$RC" = 0 &&
	reap 20 $PID_sb && test "$RC" = 0 &&
	trees_equal k/p/data k/sa/data && trees_equal k/p/data k/sb/data &&
	grep -q "^asyncrep rescue completed" k/p/spool/rescued &&
	grep -q "^standby sa: complete$" k/p/spool/rescued &&
	grep -q "^standby sb: complete$" k/p/spool/rescued &&
	test ! -e k/p/spool/rescue-confirmed
'

i=1
soak_start=$(date +%s)
while [ "$i" -le "$SOAK_TRIALS" ]; do
	seed=$((SOAK_SEED + i - 1))
	test_expect_success "trial $i (seed $seed): killed primary, disrupted rescue, two identical standbys" "
		soak_trial $i $seed
	"
	i=$((i + 1))
done
sed 's/^/# /' "$TRASH/soak.notes" 2>/dev/null
say "soak: $SOAK_TRIALS trials in $(( $(date +%s) - soak_start ))s"

test_done

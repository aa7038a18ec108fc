#!/bin/sh
test_description='rescue --metrics-listen: the phase and each standby state, never the primary metrics_listen'
: "${PYTHON3:=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}"
. "$SRCDIR/test/t/lib.sh"
. "$SRCDIR/test/t/lib-rescue.sh"

scrape() {
	curl -sf --max-time 5 "http://$TEST_IP:$MPORT/metrics" >"$1"
}

value() {
	awk -v s="$2" '$1 == s { print $2; found = 1 } END { exit !found }' "$1"
}

sb1_complete() {
	scrape r.now &&
	test "$(value r.now "asyncrep_rescue_standby_state{standby=\"sb1\",state=\"complete\"}")" = 1
}

test_expect_success 'setup: a primary whose own metrics address is in its file, a follower' '
	MPORT=$(free_port) && PMPORT=$(free_port) &&
	mkdir -p p/data && echo one >p/data/one &&
	write_conf p "$TRASH/p/data" "$TRASH/p/spool" 100ms &&
	echo "metrics_listen = $TEST_IP:$PMPORT" >>p.conf &&
	start_primary p &&
	grep -q "metrics on http://$TEST_IP:$PMPORT/metrics" p.watch.log &&
	start_follow s --standby-id sb1 &&
	wait_for 20 trees_equal p/data s/data
'

test_expect_success 'the rescue serves its metrics on --metrics-listen only' '
	kill9 $WATCH_PID &&
	echo two >p/data/two &&
	start_rescue p --timeout 8s --standby sb1 --standby ghost \
		--metrics-listen "$TEST_IP:$MPORT" &&
	wait_for 30 sb1_complete &&
	scrape r.txt &&
	test "$(value r.txt "asyncrep_rescue_standby_state{standby=\"ghost\",state=\"never_called\"}")" = 1 &&
	test "$(value r.txt "asyncrep_rescue_standby_state{standby=\"sb1\",state=\"called\"}")" = 0 &&
	test "$(value r.txt "asyncrep_rescue_phase{phase=\"comparing\"}")" = 1 &&
	test "$(value r.txt "asyncrep_served_files_total{kind=\"whole\"}")" -ge 1 &&
	! grep -q "$PMPORT" p.rescue.log &&
	! port_open "$TEST_IP" "$PMPORT" &&
	{ ! command -v promtool >/dev/null 2>&1 ||
		promtool check metrics <r.txt; }
'

test_expect_success 'partial when ghost never calls: exit 18' '
	reap 60 "$RESCUE_PID" &&
	test "$RC" = 18 &&
	trees_equal p/data s/data
'

test_done

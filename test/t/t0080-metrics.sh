#!/bin/sh
test_description='metrics: GET /metrics of watch and sync --follow, --metrics-file, judged by promtool'
. "$SRCDIR/test/t/lib.sh"

converged() { trees_equal src dst; }

# scrape PORT FILE: the metrics served on $TEST_IP:PORT, into FILE.
scrape() {
	curl -sf --max-time 5 "http://$TEST_IP:$1/metrics" >"$2"
}

# value FILE SERIES: the value of the sample SERIES (name with labels).
value() {
	awk -v s="$2" '$1 == s { print $2; found = 1 } END { exit !found }' "$1"
}

# promtool's verdict: no complaint at all, on stdout or stderr.
lint() {
	promtool check metrics <"$1" >"$1.lint" 2>&1 &&
	test ! -s "$1.lint" || { cat "$1.lint"; return 1; }
}

applied_past() {
	scrape "$SB_MPORT" sb.now &&
	v=$(value sb.now asyncrep_standby_applied_sequence) &&
	test "$v" -gt "$1"
}

acked_past() {
	scrape "$P_MPORT" p.now &&
	v=$(value p.now "asyncrep_standby_acked_sequence{standby=\"sb1\"}") &&
	test "$v" -gt "$1"
}

lag_records_past() {
	scrape "$P_MPORT" p.now &&
	v=$(value p.now "asyncrep_standby_lag_records{standby=\"sb1\"}") &&
	test "$v" -gt "$1"
}

if command -v promtool >/dev/null 2>&1; then
	HAVE_PROMTOOL=1
else
	HAVE_PROMTOOL=
	say "promtool not found (Debian package prometheus): no lint"
fi

test_expect_success 'setup: a primary and a follower, each with metrics' '
	P_MPORT=$(free_port) && SB_MPORT=$(free_port) &&
	mkdir src && echo one >src/one &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0 \
		--metrics-listen "$TEST_IP:$P_MPORT" &&
	follow_to "$TRASH/dst" "$TRASH/state" --standby-id sb1 \
		--metrics-listen "$TEST_IP:$SB_MPORT" &&
	wait_for 20 converged &&
	wait_for 10 port_open "$TEST_IP" "$SB_MPORT"
'

test_expect_success 'the primary serves its series in the text format' '
	scrape "$P_MPORT" p.txt &&
	grep "^# TYPE asyncrep_served_files_total counter" p.txt &&
	value p.txt asyncrep_primary_released_sequence &&
	value p.txt "asyncrep_spool_max_bytes" &&
	value p.txt "asyncrep_watcher_directories" &&
	value p.txt "asyncrep_standby_lag_seconds{standby=\"sb1\"}" &&
	test "$(value p.txt "asyncrep_served_files_total{kind=\"whole\"}")" -ge 1
'

if [ -n "$HAVE_PROMTOOL" ]; then
test_expect_success 'promtool check metrics finds nothing to say (primary)' '
	lint p.txt
'
fi

test_expect_success 'the follower serves its series: state following' '
	scrape "$SB_MPORT" sb.txt &&
	test "$(value sb.txt "asyncrep_standby_state{state=\"following\"}")" = 1 &&
	test "$(value sb.txt "asyncrep_standby_state{state=\"comparing\"}")" = 0 &&
	test "$(value sb.txt asyncrep_standby_full_compares_total)" -ge 1 &&
	value sb.txt asyncrep_standby_last_apply_timestamp_seconds
'

if [ -n "$HAVE_PROMTOOL" ]; then
test_expect_success 'promtool check metrics finds nothing to say (standby)' '
	lint sb.txt
'
fi

test_expect_success 'a change moves the applied and acknowledged sequences' '
	before=$(value sb.txt asyncrep_standby_applied_sequence) &&
	acked=$(value p.txt "asyncrep_standby_acked_sequence{standby=\"sb1\"}") &&
	files=$(value sb.txt "asyncrep_standby_received_files_total{kind=\"whole\"}") &&
	echo two >src/two &&
	wait_for 20 converged &&
	wait_for 20 applied_past "$before" &&
	wait_for 20 acked_past "$acked" &&
	scrape "$SB_MPORT" sb2.txt &&
	test "$(value sb2.txt "asyncrep_standby_received_files_total{kind=\"whole\"}")" -gt "$files" &&
	test "$(value sb2.txt asyncrep_standby_batches_total)" -ge 1 &&
	n=$(value sb2.txt asyncrep_standby_batch_apply_seconds_count) &&
	test "$n" -ge 1 &&
	test "$(value sb2.txt "asyncrep_standby_batch_apply_seconds_bucket{le=\"+Inf\"}")" = "$n" &&
	scrape "$P_MPORT" p2.txt &&
	test "$(value p2.txt "asyncrep_standby_lag_records{standby=\"sb1\"}")" = 0
'

# status_lag_bytes: the lag in bytes of sb1 as asyncrep status says it.
status_lag_bytes() {
	printf "[primary]\ndata_dir = %s\nspool_dir = %s\nlisten = %s\n" \
		"$TRASH/src" "$TRASH/spool" "$TEST_IP:$TEST_PORT" >p.conf &&
	"$ASYNCREP" status -c p.conf --json >status.json &&
	"$PYTHON3" -c "import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    for sb in o.get(\"standbys\", []):
        if sb[\"id\"] == \"sb1\":
            print(sb[\"lag_bytes\"])" status.json
}

test_expect_success 'a stopped standby shows lag in records, bytes and seconds' '
	kill -STOP "$FOLLOW_PID" &&
	echo three >src/three &&
	wait_for 20 lag_records_past 0 &&
	echo four >src/four && mkdir src/five && echo six >src/five/six &&
	wait_for 20 lag_records_past 3 &&
	scrape "$P_MPORT" p3.txt &&
	test "$(value p3.txt "asyncrep_standby_lag_bytes{standby=\"sb1\"}")" = "$(status_lag_bytes)" &&
	test "$(value p3.txt "asyncrep_standby_lag_bytes{standby=\"sb1\"}")" -gt 0 &&
	secs=$(value p3.txt "asyncrep_standby_lag_seconds{standby=\"sb1\"}") &&
	awk -v s="$secs" "BEGIN { exit !(s > 0) }" &&
	kill -CONT "$FOLLOW_PID" &&
	wait_for 20 converged
'

test_expect_success 'unknown paths get 404, other methods 405' '
	code=$(curl -s -o /dev/null -w "%{http_code}" "http://$TEST_IP:$P_MPORT/other") &&
	test "$code" = 404 &&
	code=$(curl -s -o /dev/null -w "%{http_code}" -X POST "http://$TEST_IP:$P_MPORT/metrics") &&
	test "$code" = 405
'

test_expect_success 'a metrics address that cannot be bound is a warning' '
	"$ASYNCREP" sync --data-dir "$TRASH/dst2" --state-dir "$TRASH/state2" \
		--primary "$TEST_IP:$TEST_PORT" \
		--metrics-listen "$TEST_IP:$P_MPORT" 2>bind.err &&
	grep "metrics: cannot listen on $TEST_IP:$P_MPORT" bind.err &&
	trees_equal src dst2
'

test_expect_success 'one-shot sync writes --metrics-file durably' '
	echo five >src/five-file &&
	"$ASYNCREP" sync --data-dir "$TRASH/dst3" --state-dir "$TRASH/state3" \
		--primary "$TEST_IP:$TEST_PORT" --metrics-file "$TRASH/sync.prom" &&
	test "$(value sync.prom asyncrep_standby_applied_sequence)" -gt 0 &&
	test "$(value sync.prom "asyncrep_standby_state{state=\"done\"}")" = 1 &&
	test "$(value sync.prom "asyncrep_standby_received_files_total{kind=\"whole\"}")" -ge 5 &&
	! ls .sync.prom* 2>/dev/null | grep . &&
	{ [ -z "$HAVE_PROMTOOL" ] || lint sync.prom; }
'

test_expect_success '--metrics-file is refused with --follow' '
	test_must_fail 1 "$ASYNCREP" sync --follow --data-dir "$TRASH/dst3" \
		--state-dir "$TRASH/state3" --primary "$TEST_IP:$TEST_PORT" \
		--metrics-file "$TRASH/x.prom" 2>refused.err &&
	grep "one-shot" refused.err
'

# frames FILE: the type letters of the frames in FILE, one line.
frames() {
	"$PYTHON3" -c 'import struct, sys
b = open(sys.argv[1], "rb").read(); i = 0; t = ""
while i + 5 <= len(b):
    t += chr(b[i]); i += 5 + struct.unpack(">I", b[i+1:i+5])[0]
print(t)' "$1"
}

test_expect_success 'from version 4, a batch says when its oldest change was recorded (W)' '
	curl -sf -o hello -H "X-Asyncrep-Versions: 1-65535" \
		"http://$TEST_IP:$TEST_PORT/v1/hello" &&
	gen=$("$PYTHON3" -c "import sys
b = open(\"hello\", \"rb\").read(); print(b[14:46].decode())") &&
	vmax=$("$PYTHON3" -c "import struct
b = open(\"hello\", \"rb\").read(); print(struct.unpack(\">I\", b[-4:])[0])") &&
	test "$vmax" -ge 4 &&
	for v in "$vmax" 2; do
		curl -sf -o batch$v -H "X-Asyncrep-Version: $v" \
			"http://$TEST_IP:$TEST_PORT/v1/changes?since=1&wait=0&id=probe$v&gen=$gen" ||
			return 1
	done &&
	frames "batch$vmax" >fnew && frames batch2 >f2 &&
	cat fnew f2 &&
	grep -q "WZ\$" fnew && ! grep -q W f2 && grep -q "Z\$" f2
'

disconnected() {
	scrape "$SB_MPORT" sb.now &&
	test "$(value sb.now "asyncrep_standby_state{state=\"disconnected\"}")" = 1
}

test_expect_success 'a follower whose primary is gone: disconnected, and lagging since its last contact' '
	scrape "$SB_MPORT" sb4.txt &&
	test "$(value sb4.txt asyncrep_standby_lag_seconds)" = 0 &&
	stop_watch &&
	wait_for 30 disconnected &&
	scrape "$SB_MPORT" sb5.txt &&
	secs=$(value sb5.txt asyncrep_standby_lag_seconds) &&
	awk -v s="$secs" "BEGIN { exit !(s > 0) }" &&
	test "$(value sb5.txt asyncrep_standby_reconnects_total)" -ge 1 &&
	{ [ -z "$HAVE_PROMTOOL" ] || lint sb5.txt; }
'

test_expect_success 'stop' '
	kill -TERM "$FOLLOW_PID" && wait "$FOLLOW_PID"
'

test_done

#!/bin/sh
test_description='bearer token: refused without it or with a wrong one,
accepted with the right one; no token means loopback only'
. "$(dirname "$0")/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

# Decisions written down here:
# - a missing, wrong, shortened or extended token: exit 5 (AR_EAUTH), and
#   the server answers HTTP 401 to every such request;
# - a primary without a token refuses a non-loopback listen address with
#   exit 1 (usage) or 2 (config), and says "loopback" or "token";
# - a token file readable by group or others (0644) is a warning only, on
#   both sides: the run goes on and succeeds;
# - a token file that is missing or empty: the command refuses to start
#   (1, 2 or 7) and names the file.

new_token() {
	"$PYTHON3" -c 'import secrets; print(secrets.token_hex(32))'
}

# http_status ADDR [TOKEN]: the HTTP status of GET /v1/hello, no proxy.
http_status() {
	"$PYTHON3" -c 'import sys, urllib.request, urllib.error
req = urllib.request.Request("http://%s/v1/hello" % sys.argv[1])
if len(sys.argv) > 2:
    req.add_header("Authorization", "Bearer " + sys.argv[2])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    print(opener.open(req, timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.code)' "$@"
}

# free_port: a port the kernel says is free on TEST_IP right now.
free_port() {
	"$PYTHON3" -c 'import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$TEST_IP"
}
PORT_ANY=$(free_port) && PORT_MISSING=$(free_port) && PORT_EMPTY=$(free_port) ||
	exit 99

expect_status() {
	want=$1; shift
	if "$@"; then got=0; else got=$?; fi
	for w in $want; do
		[ "$got" -eq "$w" ] && return 0
	done
	echo "expected exit status in {$want}, got $got: $*"
	return 1
}

mkdir -p src/sub &&
printf 'secret data\n' >src/a.txt &&
printf 'more\n' >src/sub/b.txt &&
new_token >token && chmod 600 token &&
new_token >wrong && chmod 600 wrong &&
token=$(cat token) &&
printf '%s\n' "${token%?}" >short && chmod 600 short &&
printf '%s\n' "${token}0" >long && chmod 600 long || exit 99

start_watch "$TRASH/src" "$TRASH/spool" --auth-token-file "$TRASH/token" \
	>start.out 2>&1

test_expect_success 'the primary answers 401 without the right token' '
	port_open "$TEST_IP" "$TEST_PORT" &&
	test "$(http_status "$TEST_IP:$TEST_PORT")" = 401 &&
	test "$(http_status "$TEST_IP:$TEST_PORT" "$(cat wrong)")" = 401 &&
	test "$(http_status "$TEST_IP:$TEST_PORT" "${token%?}")" = 401 &&
	test "$(http_status "$TEST_IP:$TEST_PORT" "$token")" = 200
'

test_expect_success 'standby without a token: exit 5, nothing written' '
	test_must_fail 5 timeout 60 "$ASYNCREP" sync --data-dir "$TRASH/d1" \
		--state-dir "$TRASH/s1" --primary "$TEST_IP:$TEST_PORT" 2>err &&
	cat err &&
	grep -i -E "auth|token|401" err &&
	{ ! [ -e d1 ] || test -z "$(ls -A d1)"; }
'

for t in wrong short long; do
	test_expect_success "standby with a $t token: exit 5" '
		test_must_fail 5 timeout 60 "$ASYNCREP" sync --data-dir "$TRASH/d-$t" \
			--state-dir "$TRASH/s-$t" --primary "$TEST_IP:$TEST_PORT" \
			--auth-token-file "$TRASH/$t" 2>err &&
		cat err &&
		grep -i -E "auth|token|401" err &&
		{ ! [ -e "d-$t" ] || test -z "$(ls -A "d-$t")"; }
	'
done

test_expect_success 'standby with the right token: exit 0, trees equal' '
	timeout 60 "$ASYNCREP" sync --data-dir "$TRASH/d2" --state-dir "$TRASH/s2" \
		--primary "$TEST_IP:$TEST_PORT" --auth-token-file "$TRASH/token" &&
	trees_equal src d2
'
stop_watch

test_expect_success 'no token: the primary refuses a non-loopback address' '
	expect_status "1 2" timeout 10 "$ASYNCREP" watch --data-dir "$TRASH/src" \
		--spool-dir "$TRASH/spool-any" --listen "0.0.0.0:$PORT_ANY" \
		2>err &&
	cat err &&
	grep -i -E "loopback|token" err
'

test_expect_success 'a missing token file: refused, the file named' '
	expect_status "1 2 7" timeout 10 "$ASYNCREP" watch --data-dir "$TRASH/src" \
		--spool-dir "$TRASH/spool-missing" --listen "$TEST_IP:$PORT_MISSING" \
		--auth-token-file "$TRASH/no-such-token" 2>err &&
	cat err &&
	grep -F "no-such-token" err &&
	expect_status "1 2 7" timeout 60 "$ASYNCREP" sync --data-dir "$TRASH/d3" \
		--state-dir "$TRASH/s3" --primary "$TEST_IP:$PORT_MISSING" \
		--auth-token-file "$TRASH/no-such-token" 2>err &&
	cat err &&
	grep -F "no-such-token" err
'

test_expect_success 'an empty token file: refused, the file named' '
	: >empty && chmod 600 empty &&
	expect_status "1 2 7" timeout 10 "$ASYNCREP" watch --data-dir "$TRASH/src" \
		--spool-dir "$TRASH/spool-empty" --listen "$TEST_IP:$PORT_EMPTY" \
		--auth-token-file "$TRASH/empty" 2>err &&
	cat err &&
	grep -F "empty" err
'

# A token file readable by others: a warning, not a refusal.
cp token open-token && chmod 644 open-token || exit 99
# start_watch waits for "serving" in watch.log: move the first run's log.
mv "$TRASH/watch.log" "$TRASH/watch.1.log"
start_watch "$TRASH/src" "$TRASH/spool" --auth-token-file "$TRASH/open-token" \
	>start2.out 2>&1
test_expect_success 'token file mode 0644: the primary warns and serves' '
	port_open "$TEST_IP" "$TEST_PORT" &&
	grep -i -E "permission|mode|readable|0?644" "$TRASH/watch.log"
'
test_expect_success 'token file mode 0644: the standby warns and syncs' '
	printf "changed\n" >src/c.txt &&
	timeout 60 "$ASYNCREP" sync --data-dir "$TRASH/d4" --state-dir "$TRASH/s4" \
		--primary "$TEST_IP:$TEST_PORT" --auth-token-file "$TRASH/open-token" \
		2>err &&
	cat err &&
	grep -i -E "permission|mode|readable|0?644" err &&
	trees_equal src d4
'
stop_watch

test_done

#!/bin/sh
test_description='an unreachable, silent or resetting primary: exit 4 with
the address named, within a bound, and the replica untouched'
. "$(dirname "$0")/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

FAKE="$SRCDIR/test/t/fake-primary.py"

# Every sync is wrapped in "timeout 60": a hang fails the test with 124
# instead of stalling the suite. That is a bound, not a timed assertion.
mkdir -p data state &&
printf 'kept\n' >data/kept.txt &&
mkdir data/dir && printf 'also kept\n' >data/dir/b.txt || exit 99
tree_listing data >data.before || exit 99

# replica_unchanged: the standby's tree is what it was, no temp files.
replica_unchanged() {
	tree_listing data >data.after &&
	test_cmp data.before data.after &&
	find data -name '.asyncrep-tmp.*' >tmpfiles &&
	test_cmp /dev/null tmpfiles
}

# free_port: a port the kernel says is free on TEST_IP right now.
free_port() {
	"$PYTHON3" -c 'import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$TEST_IP"
}
P_STALL=$(free_port) && P_MID=$(free_port) && P_RESET=$(free_port) &&
P_WWW=$(free_port) || exit 99

sync_at() {
	addr=$1; shift
	timeout 60 "$ASYNCREP" sync --data-dir data --state-dir state \
		--primary "$addr" "$@"
}

test_expect_success 'nothing listens: exit 4, the message names the address' '
	! port_open "$TEST_IP" "$TEST_PORT" &&
	test_must_fail 4 sync_at "$TEST_IP:$TEST_PORT" 2>err &&
	cat err &&
	grep -F "$TEST_IP:$TEST_PORT" err &&
	replica_unchanged
'

# A listener that accepts and never answers: the connect succeeds, so only
# the stall timeout can end the sync.
start_bg stall.log "$PYTHON3" "$FAKE" --mode stall \
	--listen "$TEST_IP:$P_STALL" --ready-file stall.ready --lifetime 60
test_expect_success 'a primary that accepts and never answers: exit 4' '
	wait_for 30 test -f stall.ready &&
	test_must_fail 4 sync_at "$TEST_IP:$P_STALL" \
		--connect-timeout 1s --stall-timeout 2s 2>err &&
	cat err &&
	grep -i -E "$TEST_IP:$P_STALL|stall|timed? ?out|timeout" err &&
	grep "accepted a connection" stall.log &&
	replica_unchanged
'

# Hello answered, then the manifest stops halfway and the connection is
# held open: a stall in the middle of a transfer.
start_bg stallmid.log "$PYTHON3" "$FAKE" --mode stall-mid --tree data \
	--listen "$TEST_IP:$P_MID" --ready-file stallmid.ready --lifetime 60
test_expect_success 'a primary that stops sending mid-manifest: exit 4, nothing deleted' '
	wait_for 30 test -f stallmid.ready &&
	test_must_fail 4 sync_at "$TEST_IP:$P_MID" \
		--connect-timeout 1s --stall-timeout 2s 2>err &&
	cat err &&
	grep -i -E "$TEST_IP:$P_MID|stall|timed? ?out|timeout" err &&
	grep "GET /v1/manifest" stallmid.log &&
	replica_unchanged
'

# A listener that accepts and resets each connection at once.
start_bg reset.log "$PYTHON3" "$FAKE" --mode reset \
	--listen "$TEST_IP:$P_RESET" --ready-file reset.ready --lifetime 60
test_expect_success 'a primary that resets the connection: exit 4' '
	wait_for 30 test -f reset.ready &&
	test_must_fail 4 sync_at "$TEST_IP:$P_RESET" --connect-timeout 1s 2>err &&
	cat err &&
	grep -F "$TEST_IP:$P_RESET" err &&
	replica_unchanged
'

# Something that speaks HTTP but is not an asyncrep primary (404 for
# /v1/hello): not "unreachable" and not a version mismatch (10 is for an
# asyncrep peer whose versions do not overlap): a protocol error, 6.
mkdir www || exit 99
start_bg www.log "$PYTHON3" -m http.server --bind "$TEST_IP" \
	--directory www "$P_WWW"
test_expect_success 'a web server that is not a primary: exit 6' '
	wait_for 30 port_open "$TEST_IP" "$P_WWW" &&
	test_must_fail 6 sync_at "$TEST_IP:$P_WWW" 2>err &&
	cat err &&
	grep -F "$TEST_IP:$P_WWW: not an asyncrep server" err &&
	replica_unchanged
'

test_done

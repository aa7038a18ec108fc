#!/bin/sh
test_description='init: a first configuration, key pair and token for each
role, that a primary and a standby then replicate with, over TLS'
: "${PYTHON3:=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}"
. "$SRCDIR/test/t/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

ADDR=$TEST_IP:$TEST_PORT

# mode FILE: its permission bits, in octal.
mode() { stat -c %a "$1"; }

# sums DIR: a checksum of every file under DIR, to show nothing changed.
sums() { find "$1" -type f -exec cksum {} + | sort; }

test_expect_success 'setup: a tree to replicate' '
	mkdir -p src/sub &&
	echo one >src/a &&
	head -c 300000 /dev/urandom >src/sub/big
'

test_expect_success 'init primary: a configuration, a key pair and a token, with their modes' '
	"$ASYNCREP" init --dir p --set "data_dir=$TRASH/src" \
		--set "spool_dir=$TRASH/spool" --set "listen=$ADDR" primary >p.out &&
	cat p.out &&
	test "$(mode p)" = 700 &&
	test "$(mode p/asyncrep.conf)" = 644 &&
	test "$(mode p/token)" = 600 &&
	test "$(mode p/tls/key.pem)" = 600 &&
	test -f p/tls/cert.pem &&
	grep -qx "\[primary\]" p/asyncrep.conf &&
	grep -q "^listen = $ADDR\$" p/asyncrep.conf &&
	grep -q "^auth_token_file = $TRASH/p/token" p/asyncrep.conf &&
	grep -q "^#tls_trust = " p/asyncrep.conf &&
	grep -qE "^[0-9a-f]{64}\$" p/token &&
	sed -n "s/^this node.s pin: //p" p.out >p.pin &&
	grep -qE "^sha256:[0-9a-f]{64}\$" p.pin &&
	grep -q "asyncrep init standby --set primary=$ADDR --peer-pin $(cat p.pin)" p.out
'

test_expect_success 'the pin printed is the key pair'\''s (as openssl computes it)' '
	if command -v openssl >/dev/null 2>&1; then
		printf "sha256:%s\n" "$(openssl x509 -in p/tls/cert.pem -pubkey -noout |
			openssl pkey -pubin -outform der | sha256sum | cut -d" " -f1)" >p.ossl &&
		test_cmp p.pin p.ossl
	fi
'

test_expect_success 'two tokens are never the same' '
	"$ASYNCREP" init --dir p2 primary >/dev/null &&
	! cmp -s p/token p2/token
'

test_expect_success 'without the peer pin, the primary is refused naming tls_trust (exit 2)' '
	test_must_fail 2 "$ASYNCREP" watch -c p/asyncrep.conf 2>err &&
	grep -q "tls_trust" err
'

test_expect_success 'init standby with the primary'\''s pin: a complete configuration, no token' '
	"$ASYNCREP" init --dir s --peer-pin "$(cat p.pin)" \
		--set "data_dir=$TRASH/dst" --set "state_dir=$TRASH/state" \
		--set "primary=$ADDR" --set standby_id=s1 standby >s.out &&
	cat s.out &&
	! test -e s/token &&
	grep -q "^tls_trust = $(cat p.pin)\$" s/asyncrep.conf &&
	grep -q "^standby_id = s1\$" s/asyncrep.conf &&
	grep -q "copy the primary.s token to $TRASH/s/token" s.out &&
	sed -n "s/^this node.s pin: //p" s.out >s.pin &&
	grep -q "add $(cat s.pin) to tls_trust" s.out
'

test_expect_success 'the steps it printed done, the two replicate over TLS' '
	cp p/token s/token && chmod 600 s/token &&
	sed -i "s|^#tls_trust = .*|tls_trust = $(cat s.pin)|" p/asyncrep.conf &&
	start_bg watch.log "$ASYNCREP" watch -c p/asyncrep.conf &&
	WATCH_PID=$last_pid &&
	wait_for 10 grep -q "serving" watch.log &&
	"$ASYNCREP" sync -c s/asyncrep.conf &&
	trees_equal src dst &&
	stop_watch
'

test_expect_success 'init never replaces a file: exit 7, nothing written' '
	sums p >before &&
	test_must_fail 7 "$ASYNCREP" init --dir p primary >out 2>err &&
	grep -q "asyncrep.conf. exists" err &&
	sums p >after &&
	test_cmp before after &&
	rm s/asyncrep.conf &&
	sums s >before &&
	test_must_fail 7 "$ASYNCREP" init --dir s standby 2>err &&
	grep -q "key.pem. exists" err &&
	! test -e s/asyncrep.conf &&
	sums s >after &&
	test_cmp before after
'

test_expect_success 'bad input: role, unknown key, bad value, bad pin; nothing written' '
	test_must_fail 1 "$ASYNCREP" init --dir x 2>err &&
	grep -q "primary or standby" err &&
	test_must_fail 1 "$ASYNCREP" init --dir x witness 2>err &&
	grep -q "primary or standby" err &&
	test_must_fail 1 "$ASYNCREP" init --dir x --set nosuchkey=1 primary 2>err &&
	grep -q "nosuchkey=1.: not a key of \[primary\]" err &&
	test_must_fail 1 "$ASYNCREP" init --dir x --set state_dir=/y primary 2>err &&
	grep -q "not a key of \[primary\]" err &&
	test_must_fail 1 "$ASYNCREP" init --dir x --set listen primary 2>err &&
	grep -q "KEY=VALUE" err &&
	test_must_fail 2 "$ASYNCREP" init --dir x --set listen=nowhere primary 2>err &&
	grep -q "listen" err &&
	test_must_fail 1 "$ASYNCREP" init --dir x --peer-pin sha256:12 standby 2>err &&
	grep -q "peer-pin" err &&
	test -z "$(find x -type f 2>/dev/null)"
'

test_done
